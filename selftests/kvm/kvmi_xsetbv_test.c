// SPDX-License-Identifier: GPL-2.0-only
/*
 * kvmi-ring: the XSETBV event (Documentation/virt/kvm/kvmi.rst, section
 * 10.8): the guest's XSETBV reported with the XCR's old and new value,
 * and the effect of each reply on the guest's XCR0.
 */
#include <pthread.h>
#include <sys/eventfd.h>

#include "kselftest_harness.h"
#include "kvmi_util.h"
#include "processor.h"
#include "ucall_common.h"

extern char xsetbv_insn[];

/* Turn on SSE state in XCR0 with XSETBV, report XCR0. */
static void guest_code(void)
{
	uint64_t xcr0;

	set_cr4(get_cr4() | X86_CR4_OSXSAVE);
	xcr0 = xgetbv(0) | XFEATURE_MASK_SSE;
	asm volatile(".global xsetbv_insn\n"
		     "xsetbv_insn: xsetbv"
		     : : "a"((uint32_t)xcr0), "d"((uint32_t)(xcr0 >> 32)),
		       "c"(0) : "memory");
	GUEST_SYNC2(xgetbv(0), 0);
	GUEST_DONE();
}

FIXTURE(xsetbv) {
	struct kvm_vm *vm;
	struct kvm_vcpu *vcpu;
	int fd;
	struct kvmi_maps m;
	int notify;
	int kick;
	struct kvmi_runner r;
};

KVMI_TRANSPORT_VARIANTS(xsetbv);

FIXTURE_SETUP(xsetbv)
{
	KVMI_REQUIRE();
	kvmi_use_transport(variant->transport);
	TEST_REQUIRE(kvm_cpu_has(X86_FEATURE_XSAVE));
	self->vm = vm_create_with_one_vcpu(&self->vcpu, guest_code);
	self->fd = kvmi_open(self->vm);
	kvmi_map_all(self->fd, &self->m);
	self->notify = eventfd(0, EFD_CLOEXEC);
	self->kick = eventfd(0, EFD_CLOEXEC);
	ASSERT_LE(0, self->notify);
	ASSERT_LE(0, self->kick);
	kvmi_set_doorbells(self->fd, KVMI_ALL_VCPUS,
			   KVMI_DOORBELL_NOTIFY | KVMI_DOORBELL_KICK,
			   self->notify, self->kick);
	self->r.joined = true;
}

FIXTURE_TEARDOWN(xsetbv)
{
	if (self->m.vm)
		kvmi_unmap_all(&self->m);
	if (self->fd >= 0)
		close(self->fd);
	if (!self->r.joined)
		kvmi_runner_join(&self->r);
	close(self->notify);
	close(self->kick);
	kvm_vm_free(self->vm);
}

static struct kvm_sregs sregs_of(struct kvm_vcpu *vcpu)
{
	struct kvm_sregs sregs;

	vcpu_sregs_get(vcpu, &sregs);
	return sregs;
}

/* Enable the event, run to the XSETBV; return the event's seq. */
static uint32_t start_xsetbv(struct __test_metadata *_metadata,
			     FIXTURE_DATA(xsetbv) *self)
{
	kvmi_control_events(self->fd, 0, KVMI_EVENT_XSETBV, 1);
	kvmi_runner_start(&self->r, self->vcpu);
	return kvmi_wait_event(&self->m, 0, self->notify, 0);
}

static void reply(FIXTURE_DATA(xsetbv) *self, uint32_t s, uint8_t action,
		  const struct kvmi_x86_regs *regs)
{
	kvmi_send_reply(&self->m, 0, s, KVMI_EVENT_XSETBV, action,
			regs ? KVMI_REPLY_SET_REGS : 0, regs, self->kick);
}

#define ASSERT_SYNC(self) do {					\
	kvmi_runner_join(&(self)->r);				\
	ASSERT_EQ(0, (self)->r.ret);				\
	ASSERT_EQ(UCALL_SYNC, (self)->r.ucall);			\
} while (0)

TEST_F(xsetbv, event_and_continue)
{
	struct kvmi_event *ev = kvmi_event_slot(&self->m, 0);
	uint32_t s = start_xsetbv(_metadata, self);
	uint64_t old;

	ASSERT_EQ(KVMI_EVENT_XSETBV, ev->id);
	ASSERT_EQ(0, ev->data.xsetbv.xcr);
	ASSERT_EQ(0, ev->data.xsetbv.padding);
	old = ev->data.xsetbv.old_value;
	ASSERT_TRUE(old & XFEATURE_MASK_FP);
	ASSERT_EQ(old | XFEATURE_MASK_SSE, ev->data.xsetbv.new_value);
	ASSERT_EQ((uint64_t)xsetbv_insn, ev->regs.rip);
	reply(self, s, KVMI_ACTION_CONTINUE, NULL);
	ASSERT_SYNC(self);
	ASSERT_EQ(old | XFEATURE_MASK_SSE, self->r.args[0]);
}

/* SET_REGS changes what XSETBV writes. */
TEST_F(xsetbv, set_regs_changes_value)
{
	struct kvmi_event *ev = kvmi_event_slot(&self->m, 0);
	uint32_t s = start_xsetbv(_metadata, self);
	struct kvmi_x86_regs regs = ev->regs;

	regs.groups = KVMI_REGS_GPRS;
	regs.rax = XFEATURE_MASK_FP;
	regs.rdx = 0;
	reply(self, s, KVMI_ACTION_CONTINUE, &regs);
	ASSERT_SYNC(self);
	ASSERT_EQ(XFEATURE_MASK_FP, self->r.args[0]);
}

/* SET_REGS with RIP at the XSETBV: it isn't skipped and runs again. */
TEST_F(xsetbv, set_regs_rip_not_skipped)
{
	struct kvmi_event *ev = kvmi_event_slot(&self->m, 0);
	uint32_t s = start_xsetbv(_metadata, self);
	struct kvmi_x86_regs regs = ev->regs;

	regs.groups = KVMI_REGS_RIP;
	reply(self, s, KVMI_ACTION_CONTINUE, &regs);
	s = kvmi_wait_event(&self->m, 0, self->notify, s);
	ASSERT_EQ((uint64_t)xsetbv_insn, ev->regs.rip);
	/* The first one happened: the second writes the same value. */
	ASSERT_EQ(ev->data.xsetbv.new_value, ev->data.xsetbv.old_value);
	reply(self, s, KVMI_ACTION_CONTINUE, NULL);
	ASSERT_SYNC(self);
	ASSERT_EQ(2, kvmi_counters(&self->m, 0)->events);
}

/* DENY is not an action of this event: invalid, CONTINUE applies. */
TEST_F(xsetbv, deny_is_invalid)
{
	struct kvmi_event *ev = kvmi_event_slot(&self->m, 0);
	uint32_t s = start_xsetbv(_metadata, self);
	uint64_t new_value = ev->data.xsetbv.new_value;

	reply(self, s, KVMI_ACTION_DENY, NULL);
	ASSERT_SYNC(self);
	ASSERT_EQ(new_value, self->r.args[0]);
	ASSERT_EQ(KVMI_DONE_BAD_REPLY,
		  kvmi_vcpu_state(&self->m, 0)->done_reason);
}

TEST_F(xsetbv, crash_exits_to_vmm)
{
	uint32_t s = start_xsetbv(_metadata, self);
	struct kvm_regs regs;

	reply(self, s, KVMI_ACTION_CRASH, NULL);
	kvmi_runner_join(&self->r);
	ASSERT_EQ(0, self->r.ret);
	ASSERT_EQ(KVM_EXIT_SYSTEM_EVENT, self->r.exit_reason);
	ASSERT_EQ(KVM_SYSTEM_EVENT_CRASH, self->vcpu->run->system_event.type);
	vcpu_regs_get(self->vcpu, &regs);
	ASSERT_EQ((uint64_t)xsetbv_insn, regs.rip);
}

TEST_F(xsetbv, disabled_event_not_raised)
{
	kvmi_control_events(self->fd, 0, KVMI_EVENT_XSETBV, 1);
	kvmi_control_events(self->fd, 0, KVMI_EVENT_XSETBV, 0);
	kvmi_runner_start(&self->r, self->vcpu);
	ASSERT_SYNC(self);
	ASSERT_TRUE(self->r.args[0] & XFEATURE_MASK_SSE);
	ASSERT_EQ(0, kvmi_counters(&self->m, 0)->events);
}

TEST_F(xsetbv, control_events_param_must_be_zero)
{
	ASSERT_EQ(-1, __kvmi_control_events_param(self->fd, 0,
						  KVMI_EVENT_XSETBV, 1, 1));
	ASSERT_EQ(EINVAL, errno);
}

TEST_HARNESS_MAIN
