// SPDX-License-Identifier: GPL-2.0-only
/*
 * kvmi-ring: KVMI_EVENT_DESCRIPTOR (Documentation/virt/kvm/kvmi.rst,
 * section 10.12): each of SIDT, SGDT, SLDT, STR, LIDT, LGDT, LLDT and LTR
 * executed by the guest raises the event with the right table and
 * direction; CONTINUE executes the instruction (the store writes the
 * register's value, the load changes it), DENY skips it, RETRY has it
 * executed again.
 */
#include <pthread.h>

#include "kselftest_harness.h"
#include "kvmi_util.h"
#include "processor.h"
#include "ucall_common.h"

/* The selftest library's TSS selector (lib/x86_64/processor.c). */
#define TSS_SEL			0x18

enum {
	G_SIDT = 1,
	G_SGDT,
	G_SLDT,
	G_STR,
	G_LIDT,
	G_LGDT,
	G_LLDT,
	G_LTR,
	G_NR,
};

static int scenario;
static struct desc_ptr dt_in;		/* what LIDT and LGDT load */
static struct desc_ptr dt_out;		/* what SIDT and SGDT store */
static uint16_t sel_out;		/* what SLDT and STR store */
static uint64_t gdt_base;		/* the GDT, for LTR's busy bit */

/* Runs the scenario, reports (vector, value, limit); again. */
static void guest_code(void)
{
	uint8_t v;

again:
	memset(&dt_out, 0xaa, sizeof(dt_out));
	sel_out = 0xaaaa;
	barrier();
	switch (READ_ONCE(scenario)) {
	case G_SIDT:
		v = kvm_asm_safe("sidt (%[p])", [p] "r"(&dt_out));
		break;
	case G_SGDT:
		v = kvm_asm_safe("sgdt (%[p])", [p] "r"(&dt_out));
		break;
	case G_SLDT:
		v = kvm_asm_safe("sldt (%[p])", [p] "r"(&sel_out));
		break;
	case G_STR:
		v = kvm_asm_safe("str (%[p])", [p] "r"(&sel_out));
		break;
	case G_LIDT:
		v = kvm_asm_safe("lidt (%[p])", [p] "r"(&dt_in));
		break;
	case G_LGDT:
		v = kvm_asm_safe("lgdt (%[p])", [p] "r"(&dt_in));
		break;
	case G_LLDT:
		v = kvm_asm_safe("lldt %[s]", [s] "r"((uint16_t)0));
		break;
	default:
		/* LTR needs an available TSS: clear the busy bit (type 11). */
		*(volatile uint8_t *)(gdt_base + TSS_SEL + 5) &= ~2;
		v = kvm_asm_safe("ltr %[s]", [s] "r"((uint16_t)TSS_SEL));
		break;
	}
	barrier();
	if (READ_ONCE(scenario) == G_SLDT || READ_ONCE(scenario) == G_STR)
		GUEST_SYNC3(v, READ_ONCE(sel_out), 0);
	GUEST_SYNC3(v, READ_ONCE(dt_out.address), READ_ONCE(dt_out.size));
	goto again;
}

static const struct {
	uint8_t descriptor, flags;
	uint8_t opcode1;	/* 0f 01 for IDTR/GDTR, 0f 00 for LDTR/TR */
} expect[G_NR] = {
	[G_SIDT] = { KVMI_DESC_IDTR, 0, 0x01 },
	[G_SGDT] = { KVMI_DESC_GDTR, 0, 0x01 },
	[G_SLDT] = { KVMI_DESC_LDTR, 0, 0x00 },
	[G_STR] = { KVMI_DESC_TR, 0, 0x00 },
	[G_LIDT] = { KVMI_DESC_IDTR, KVMI_DESC_LOAD, 0x01 },
	[G_LGDT] = { KVMI_DESC_GDTR, KVMI_DESC_LOAD, 0x01 },
	[G_LLDT] = { KVMI_DESC_LDTR, KVMI_DESC_LOAD, 0x00 },
	[G_LTR] = { KVMI_DESC_TR, KVMI_DESC_LOAD, 0x00 },
};

FIXTURE(desc) {
	struct kvm_vm *vm;
	struct kvm_vcpu *vcpu;
	int fd;
	struct kvmi_maps m;
	struct kvmi_runner r;
	uint32_t seq;
	struct kvm_sregs sregs;	/* before the test */
};

KVMI_TRANSPORT_VARIANTS(desc);

FIXTURE_SETUP(desc)
{
	KVMI_REQUIRE();
	kvmi_use_transport(variant->transport);
	self->vm = vm_create_with_one_vcpu(&self->vcpu, guest_code);
	vcpu_sregs_get(self->vcpu, &self->sregs);
	gdt_base = self->sregs.gdt.base;
	sync_global_to_guest(self->vm, gdt_base);
	self->fd = kvmi_open(self->vm);
	kvmi_map_all(self->fd, &self->m);
	__atomic_or_fetch(&kvmi_tool_state(&self->m, 0)->flags,
			  KVMI_TOOL_POLLING, __ATOMIC_RELAXED);
	self->r.joined = true;
}

FIXTURE_TEARDOWN(desc)
{
	if (!self->r.joined) {
		close(self->fd);
		self->fd = -1;
		kvmi_runner_join(&self->r);
	}
	kvmi_unmap_all(&self->m);
	if (self->fd >= 0)
		close(self->fd);
	kvm_vm_free(self->vm);
}

static void start(FIXTURE_DATA(desc) *self, int what)
{
	scenario = what;
	sync_global_to_guest(self->vm, scenario);
	sync_global_to_guest(self->vm, dt_in);
	kvmi_runner_start(&self->r, self->vcpu);
}

/* The next event must be DESCRIPTOR for @what, at the instruction. */
static struct kvmi_event *next_event(struct __test_metadata *_metadata,
				     FIXTURE_DATA(desc) *self, int what)
{
	struct kvmi_event *ev = kvmi_event_slot(&self->m, 0);
	const uint8_t *insn;

	self->seq = kvmi_wait_event(&self->m, 0, -1, self->seq);
	EXPECT_EQ(KVMI_EVENT_DESCRIPTOR, ev->id);
	EXPECT_EQ(expect[what].descriptor, ev->data.descriptor.descriptor);
	EXPECT_EQ(expect[what].flags, ev->data.descriptor.flags);
	EXPECT_EQ(0, memcmp(ev->data.descriptor.padding, "\0\0\0\0\0\0", 6));
	insn = addr_gva2hva(self->vm, ev->regs.rip);
	if ((insn[0] & 0xf0) == 0x40)	/* REX */
		insn++;
	EXPECT_EQ(0x0f, insn[0]);
	EXPECT_EQ(expect[what].opcode1, insn[1]);
	return ev;
}

static void reply(FIXTURE_DATA(desc) *self, uint8_t action,
		  const struct kvmi_x86_regs *regs)
{
	kvmi_send_reply(&self->m, 0, self->seq, KVMI_EVENT_DESCRIPTOR, action,
			regs ? KVMI_REPLY_SET_REGS : 0, regs, -1);
	kvmi_wait_done(&self->m, 0, self->seq);
}

static void finish(struct __test_metadata *_metadata,
		   FIXTURE_DATA(desc) *self)
{
	kvmi_runner_join(&self->r);
	ASSERT_EQ(0, self->r.ret);
	ASSERT_EQ(UCALL_SYNC, self->r.ucall);
	ASSERT_EQ(0, self->r.args[0]);	/* no exception */
}

static bool tss_busy(FIXTURE_DATA(desc) *self)
{
	uint8_t *d = addr_gva2hva(self->vm, gdt_base + TSS_SEL + 5);

	return *d & 2;
}

/* CONTINUE: one event per instruction, which then does its job. */
TEST_F(desc, each_instruction_continue)
{
	struct kvm_sregs sregs;
	struct kvmi_event *ev;
	uint64_t idt_base = 0, gdt_limit = 0;
	int what;

	kvmi_control_events(self->fd, 0, KVMI_EVENT_DESCRIPTOR, 1);
	for (what = G_SIDT; what < G_NR; what++) {
		if (what == G_LIDT) {
			dt_in.address = self->sregs.idt.base;
			dt_in.size = self->sregs.idt.limit == 0x7ff ? 0x6ff : 0x7ff;
		} else if (what == G_LGDT) {
			dt_in.address = self->sregs.gdt.base;
			dt_in.size = self->sregs.gdt.limit == 0x7f ? 0x8f : 0x7f;
		}
		start(self, what);
		ev = next_event(_metadata, self, what);
		if (what == G_SIDT)
			idt_base = ev->regs.idt.base;
		if (what == G_SGDT)
			gdt_limit = ev->regs.gdt.limit;
		reply(self, KVMI_ACTION_CONTINUE, NULL);
		finish(_metadata, self);
		switch (what) {
		case G_SIDT:
			ASSERT_EQ(self->sregs.idt.base, self->r.args[1]);
			ASSERT_EQ(self->sregs.idt.limit, self->r.args[2]);
			ASSERT_EQ(self->sregs.idt.base, idt_base);
			break;
		case G_SGDT:
			ASSERT_EQ(self->sregs.gdt.base, self->r.args[1]);
			ASSERT_EQ(self->sregs.gdt.limit, self->r.args[2]);
			ASSERT_EQ(self->sregs.gdt.limit, gdt_limit);
			break;
		case G_SLDT:
			ASSERT_EQ(self->sregs.ldt.selector, self->r.args[1]);
			break;
		case G_STR:
			ASSERT_EQ(TSS_SEL, self->r.args[1]);
			break;
		case G_LTR:
			ASSERT_TRUE(tss_busy(self));
			break;
		}
		if (what == G_SLDT || what == G_STR) {
			/* The guest's second report; no event in it. */
			vcpu_run(self->vcpu);
		}
	}
	vcpu_sregs_get(self->vcpu, &sregs);
	ASSERT_EQ(dt_in.size, sregs.gdt.limit);
	ASSERT_NE(self->sregs.idt.limit, sregs.idt.limit);
	ASSERT_EQ(0, sregs.ldt.selector);
	ASSERT_EQ(TSS_SEL, sregs.tr.selector);
}

/* DENY: the instruction is skipped, nothing stored or loaded. */
TEST_F(desc, deny_skips)
{
	struct kvm_sregs sregs;

	kvmi_control_events(self->fd, 0, KVMI_EVENT_DESCRIPTOR, 1);
	start(self, G_SIDT);
	next_event(_metadata, self, G_SIDT);
	reply(self, KVMI_ACTION_DENY, NULL);
	finish(_metadata, self);
	ASSERT_EQ(0xaaaaaaaaaaaaaaaaULL, self->r.args[1]);
	ASSERT_EQ(0xaaaa, self->r.args[2]);

	dt_in.address = 0;
	dt_in.size = 0;
	start(self, G_LIDT);
	next_event(_metadata, self, G_LIDT);
	reply(self, KVMI_ACTION_DENY, NULL);
	finish(_metadata, self);

	start(self, G_LTR);
	next_event(_metadata, self, G_LTR);
	reply(self, KVMI_ACTION_DENY, NULL);
	finish(_metadata, self);
	/* The guest cleared the busy bit; LTR didn't set it again. */
	ASSERT_FALSE(tss_busy(self));

	vcpu_sregs_get(self->vcpu, &sregs);
	ASSERT_EQ(self->sregs.idt.base, sregs.idt.base);
	ASSERT_EQ(self->sregs.idt.limit, sregs.idt.limit);
}

/* RETRY: the instruction executes again, and is reported again. */
TEST_F(desc, retry_reports_again)
{
	struct kvmi_event *ev;
	uint64_t rip;

	kvmi_control_events(self->fd, 0, KVMI_EVENT_DESCRIPTOR, 1);
	start(self, G_SGDT);
	ev = next_event(_metadata, self, G_SGDT);
	rip = ev->regs.rip;
	reply(self, KVMI_ACTION_RETRY, NULL);
	ev = next_event(_metadata, self, G_SGDT);
	ASSERT_EQ(rip, ev->regs.rip);
	reply(self, KVMI_ACTION_CONTINUE, NULL);
	finish(_metadata, self);
	ASSERT_EQ(self->sregs.gdt.base, self->r.args[1]);
}

/* CONTINUE or DENY with a new RIP, or ALLOW: invalid, CONTINUE applies. */
TEST_F(desc, bad_replies)
{
	struct kvmi_vcpu_state *vs = kvmi_vcpu_state(&self->m, 0);
	struct kvmi_x86_regs regs = { .groups = KVMI_REGS_RIP };
	struct kvmi_event *ev;

	kvmi_control_events(self->fd, 0, KVMI_EVENT_DESCRIPTOR, 1);
	start(self, G_SIDT);
	ev = next_event(_metadata, self, G_SIDT);
	regs.rip = ev->regs.rip;
	reply(self, KVMI_ACTION_CONTINUE, &regs);
	ASSERT_EQ(KVMI_DONE_BAD_REPLY, vs->done_reason);
	ASSERT_EQ(KVMI_ACTION_CONTINUE, vs->done_action);
	finish(_metadata, self);
	ASSERT_EQ(self->sregs.idt.base, self->r.args[1]);

	start(self, G_SIDT);
	next_event(_metadata, self, G_SIDT);
	reply(self, KVMI_ACTION_DENY, &regs);
	ASSERT_EQ(KVMI_DONE_BAD_REPLY, vs->done_reason);
	finish(_metadata, self);
	ASSERT_EQ(self->sregs.idt.base, self->r.args[1]);

	start(self, G_SIDT);
	next_event(_metadata, self, G_SIDT);
	reply(self, KVMI_ACTION_ALLOW, NULL);
	ASSERT_EQ(KVMI_DONE_BAD_REPLY, vs->done_reason);
	finish(_metadata, self);
	ASSERT_EQ(self->sregs.idt.base, self->r.args[1]);
}

TEST_F(desc, crash)
{
	kvmi_control_events(self->fd, 0, KVMI_EVENT_DESCRIPTOR, 1);
	start(self, G_SGDT);
	next_event(_metadata, self, G_SGDT);
	reply(self, KVMI_ACTION_CRASH, NULL);
	kvmi_runner_join(&self->r);
	ASSERT_EQ(0, self->r.ret);
	ASSERT_EQ(KVM_EXIT_SYSTEM_EVENT, self->r.exit_reason);
	ASSERT_EQ(KVM_SYSTEM_EVENT_CRASH, self->vcpu->run->system_event.type);
}

/* Disabled again: no event, the instructions run as usual. */
TEST_F(desc, disabled)
{
	kvmi_control_events(self->fd, 0, KVMI_EVENT_DESCRIPTOR, 1);
	kvmi_control_events(self->fd, 0, KVMI_EVENT_DESCRIPTOR, 0);
	start(self, G_SIDT);
	finish(_metadata, self);
	ASSERT_EQ(self->sregs.idt.base, self->r.args[1]);
	start(self, G_LTR);
	finish(_metadata, self);
	ASSERT_TRUE(tss_busy(self));
	ASSERT_EQ(0, kvmi_event_slot(&self->m, 0)->seq);
}

TEST_HARNESS_MAIN
