// SPDX-License-Identifier: GPL-2.0-only
/*
 * kvmi-ring: the CR write event (Documentation/virt/kvm/kvmi.rst, section
 * 10.6): writes of CR0, CR3 and CR4 reported with the old and the new
 * value, enabled per register, and each reply's effect as the guest sees
 * it.
 */
#include <pthread.h>
#include <sys/eventfd.h>

#include "kselftest_harness.h"
#include "kvmi_util.h"
#include "processor.h"
#include "ucall_common.h"

/* What the guest does, chosen by the test before it runs. */
enum {
	OP_CR4_TSD,	/* set CR4.TSD */
	OP_CR0_WP,	/* set CR0.WP, then clear it */
	OP_CR0_TS,	/* flip CR0.TS: only the full CR0 intercept sees it */
	OP_CR3_RELOAD,	/* write CR3 with its own value */
};

static int op;

static inline void guest_set_cr0(uint64_t val)
{
	__asm__ __volatile__("mov %0, %%cr0" : : "r" (val) : "memory");
}

static inline void guest_set_cr3(uint64_t val)
{
	__asm__ __volatile__("mov %0, %%cr3" : : "r" (val) : "memory");
}

/* One write, then report the register (and a marker the test may set). */
static void guest_code(void)
{
	uint64_t cr0 = get_cr0();
	uint8_t vector;

	switch (op) {
	case OP_CR4_TSD:
		/* Reports the vector if the write faults. */
		vector = kvm_asm_safe("mov %[v], %%cr4",
				      [v] "r"(get_cr4() | X86_CR4_TSD));
		GUEST_SYNC2(get_cr4(), vector);
		/* A CR0 write, which only a CR0 event would see. */
		guest_set_cr0(cr0 | X86_CR0_TS);
		guest_set_cr0(cr0);
		GUEST_SYNC2(get_cr4(), 0x100);
		break;
	case OP_CR0_WP:
		guest_set_cr0(cr0 | X86_CR0_WP);
		guest_set_cr0(cr0 & ~X86_CR0_WP);
		GUEST_SYNC2(get_cr0(), 0);
		break;
	case OP_CR0_TS:
		guest_set_cr0(cr0 ^ X86_CR0_TS);
		GUEST_SYNC2(get_cr0() ^ cr0, 0);
		break;
	case OP_CR3_RELOAD:
		guest_set_cr3(get_cr3());
		GUEST_SYNC2(get_cr3(), 0);
		break;
	}
	GUEST_DONE();
}

FIXTURE(cr) {
	struct kvm_vm *vm;
	struct kvm_vcpu *vcpu;
	int fd;
	struct kvmi_maps m;
	int notify;
	int kick;
	struct kvmi_runner r;
};

KVMI_TRANSPORT_VARIANTS(cr);

FIXTURE_SETUP(cr)
{
	KVMI_REQUIRE();
	kvmi_use_transport(variant->transport);
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

FIXTURE_TEARDOWN(cr)
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

static void start(struct __test_metadata *_metadata, FIXTURE_DATA(cr) *self,
		  int guest_op)
{
	op = guest_op;
	sync_global_to_guest(self->vm, op);
	kvmi_runner_start(&self->r, self->vcpu);
}

static struct kvm_sregs sregs_of(struct kvm_vcpu *vcpu)
{
	struct kvm_sregs sregs;

	vcpu_sregs_get(vcpu, &sregs);
	return sregs;
}

/* Enable the event for @reg, run @guest_op to it; return the event's seq. */
static uint32_t start_cr(struct __test_metadata *_metadata,
			 FIXTURE_DATA(cr) *self, uint32_t reg, int guest_op)
{
	kvmi_control_events_param(self->fd, 0, KVMI_EVENT_CR, 1, reg);
	start(_metadata, self, guest_op);
	return kvmi_wait_event(&self->m, 0, self->notify, 0);
}

static void reply(FIXTURE_DATA(cr) *self, uint32_t s, uint8_t action,
		  uint64_t value, const struct kvmi_x86_regs *regs)
{
	struct kvmi_reply *rp = kvmi_reply_slot(&self->m, 0);

	memset(&rp->data, 0, sizeof(rp->data));
	rp->data.cr.new_value = value;
	kvmi_send_reply(&self->m, 0, s, KVMI_EVENT_CR, action,
			regs ? KVMI_REPLY_SET_REGS : 0, regs, self->kick);
}

/* The guest reached its first report. */
#define ASSERT_SYNC(self) do {					\
	kvmi_runner_join(&(self)->r);				\
	ASSERT_EQ(0, (self)->r.ret);				\
	ASSERT_EQ(UCALL_SYNC, (self)->r.ucall);			\
} while (0)

TEST_F(cr, event_carries_old_and_new_value)
{
	struct kvmi_event *ev = kvmi_event_slot(&self->m, 0);
	uint32_t s = start_cr(_metadata, self, 4, OP_CR4_TSD);
	uint64_t old = ev->regs.cr4;

	ASSERT_EQ(KVMI_EVENT_CR, ev->id);
	ASSERT_EQ(KVMI_X86_MODE_PROT64, ev->mode);
	ASSERT_EQ(4, ev->data.cr.cr);
	ASSERT_EQ(0, ev->data.cr.padding);
	ASSERT_EQ(old, ev->data.cr.old_value);
	ASSERT_EQ(old | X86_CR4_TSD, ev->data.cr.new_value);
	ASSERT_EQ(0, old & X86_CR4_TSD);
	reply(self, s, KVMI_ACTION_CONTINUE, 0, NULL);
	ASSERT_SYNC(self);
	ASSERT_EQ(old | X86_CR4_TSD, self->r.args[0]);
	ASSERT_EQ(0, self->r.args[1]);
	ASSERT_EQ(KVMI_DONE_REPLY, kvmi_vcpu_state(&self->m, 0)->done_reason);
}

/* DENY: the guest goes on after the write, CR4 unchanged. */
TEST_F(cr, deny_blocks_cr4_write)
{
	struct kvmi_event *ev = kvmi_event_slot(&self->m, 0);
	uint32_t s = start_cr(_metadata, self, 4, OP_CR4_TSD);
	uint64_t old = ev->data.cr.old_value;

	reply(self, s, KVMI_ACTION_DENY, 0, NULL);
	ASSERT_SYNC(self);
	ASSERT_EQ(old, self->r.args[0]);
	ASSERT_EQ(KVMI_ACTION_DENY, kvmi_vcpu_state(&self->m, 0)->done_action);
}

/* ALLOW: the tool's value is written instead. */
TEST_F(cr, allow_writes_tool_value)
{
	struct kvmi_event *ev = kvmi_event_slot(&self->m, 0);
	uint32_t s = start_cr(_metadata, self, 4, OP_CR4_TSD);
	uint64_t old = ev->data.cr.old_value;

	reply(self, s, KVMI_ACTION_ALLOW, old | X86_CR4_PCE, NULL);
	ASSERT_SYNC(self);
	ASSERT_EQ(old | X86_CR4_PCE, self->r.args[0]);
}

/* ALLOW with a value KVM refuses: the write faults as the guest's would. */
TEST_F(cr, allow_with_reserved_bit_faults)
{
	struct kvmi_event *ev = kvmi_event_slot(&self->m, 0);
	uint32_t s = start_cr(_metadata, self, 4, OP_CR4_TSD);
	uint64_t old = ev->data.cr.old_value;

	reply(self, s, KVMI_ACTION_ALLOW, old | (1ULL << 63), NULL);
	ASSERT_SYNC(self);
	ASSERT_EQ(GP_VECTOR, self->r.args[1]);
	ASSERT_EQ(old, self->r.args[0]);
}

/* Only the registers enabled: with CR4 only, CR0 writes are not seen. */
TEST_F(cr, per_register)
{
	uint32_t s = start_cr(_metadata, self, 4, OP_CR4_TSD);
	struct ucall uc;

	reply(self, s, KVMI_ACTION_CONTINUE, 0, NULL);
	ASSERT_SYNC(self);
	vcpu_run(self->vcpu);
	ASSERT_EQ(UCALL_SYNC, get_ucall(self->vcpu, &uc));
	ASSERT_EQ(0x100, uc.args[1]);
	ASSERT_EQ(1, kvmi_counters(&self->m, 0)->events);
}

/* The classic one: clearing CR0.WP, denied. */
TEST_F(cr, deny_keeps_cr0_wp)
{
	struct kvmi_event *ev = kvmi_event_slot(&self->m, 0);
	uint32_t s = start_cr(_metadata, self, 0, OP_CR0_WP);

	/* Setting WP: let it happen. */
	ASSERT_EQ(0, ev->data.cr.cr);
	ASSERT_TRUE(ev->data.cr.new_value & X86_CR0_WP);
	reply(self, s, KVMI_ACTION_CONTINUE, 0, NULL);
	/* Clearing it: deny. */
	s = kvmi_wait_event(&self->m, 0, self->notify, s);
	ASSERT_TRUE(ev->data.cr.old_value & X86_CR0_WP);
	ASSERT_FALSE(ev->data.cr.new_value & X86_CR0_WP);
	reply(self, s, KVMI_ACTION_DENY, 0, NULL);
	ASSERT_SYNC(self);
	ASSERT_TRUE(self->r.args[0] & X86_CR0_WP);
}

/* A CR0 write that changes only TS is reported too, and CONTINUE does it. */
TEST_F(cr, cr0_ts_write_reported)
{
	struct kvmi_event *ev = kvmi_event_slot(&self->m, 0);
	uint32_t s = start_cr(_metadata, self, 0, OP_CR0_TS);

	/* Only TS changes (ET reads as 1 in the guest, KVM may hold 0). */
	ASSERT_EQ(X86_CR0_TS, (ev->data.cr.old_value ^ ev->data.cr.new_value) &
			      ~X86_CR0_ET);
	reply(self, s, KVMI_ACTION_CONTINUE, 0, NULL);
	ASSERT_SYNC(self);
	ASSERT_EQ(X86_CR0_TS, self->r.args[0]);
}

/* CR3 writes, not intercepted by KVM under NPT, are reported. */
TEST_F(cr, cr3_write_reported)
{
	struct kvmi_event *ev = kvmi_event_slot(&self->m, 0);
	uint32_t s = start_cr(_metadata, self, 3, OP_CR3_RELOAD);

	ASSERT_EQ(3, ev->data.cr.cr);
	ASSERT_EQ(ev->regs.cr3, ev->data.cr.old_value);
	ASSERT_EQ(ev->data.cr.old_value, ev->data.cr.new_value);
	reply(self, s, KVMI_ACTION_DENY, 0, NULL);
	ASSERT_SYNC(self);
	ASSERT_EQ(ev->data.cr.old_value, self->r.args[0]);
}

/* SET_REGS with a general register: written, and the write goes on. */
TEST_F(cr, set_regs_then_continue)
{
	struct kvmi_event *ev = kvmi_event_slot(&self->m, 0);
	uint32_t s = start_cr(_metadata, self, 4, OP_CR4_TSD);
	struct kvmi_x86_regs regs = ev->regs;
	uint64_t old = ev->data.cr.old_value;

	regs.groups = KVMI_REGS_CRS;
	regs.cr2 = 0x1234000;
	reply(self, s, KVMI_ACTION_CONTINUE, 0, &regs);
	ASSERT_SYNC(self);
	ASSERT_EQ(old | X86_CR4_TSD, self->r.args[0]);
	ASSERT_EQ(0x1234000, sregs_of(self->vcpu).cr2);
}

/* SET_REGS with RIP is invalid here: the default, CONTINUE, applies. */
TEST_F(cr, set_regs_rip_is_invalid)
{
	struct kvmi_event *ev = kvmi_event_slot(&self->m, 0);
	uint32_t s = start_cr(_metadata, self, 4, OP_CR4_TSD);
	struct kvmi_x86_regs regs = ev->regs;
	uint64_t old = ev->data.cr.old_value;

	regs.groups = KVMI_REGS_RIP;
	reply(self, s, KVMI_ACTION_DENY, 0, &regs);
	ASSERT_SYNC(self);
	ASSERT_EQ(old | X86_CR4_TSD, self->r.args[0]);
	ASSERT_EQ(KVMI_DONE_BAD_REPLY,
		  kvmi_vcpu_state(&self->m, 0)->done_reason);
	ASSERT_EQ(KVMI_ACTION_CONTINUE,
		  kvmi_vcpu_state(&self->m, 0)->done_action);
}

/* RETRY is not an action of this event: invalid, CONTINUE applies. */
TEST_F(cr, retry_is_invalid)
{
	struct kvmi_event *ev = kvmi_event_slot(&self->m, 0);
	uint32_t s = start_cr(_metadata, self, 4, OP_CR4_TSD);
	uint64_t old = ev->data.cr.old_value;

	reply(self, s, KVMI_ACTION_RETRY, 0, NULL);
	ASSERT_SYNC(self);
	ASSERT_EQ(old | X86_CR4_TSD, self->r.args[0]);
	ASSERT_EQ(1, kvmi_counters(&self->m, 0)->bad_replies);
}

/* CRASH: the VMM gets the crash, RIP still at the write. */
TEST_F(cr, crash_exits_to_vmm)
{
	struct kvmi_event *ev = kvmi_event_slot(&self->m, 0);
	uint32_t s = start_cr(_metadata, self, 4, OP_CR4_TSD);
	uint64_t rip = ev->regs.rip;
	struct kvm_regs regs;

	reply(self, s, KVMI_ACTION_CRASH, 0, NULL);
	kvmi_runner_join(&self->r);
	ASSERT_EQ(0, self->r.ret);
	ASSERT_EQ(KVM_EXIT_SYSTEM_EVENT, self->r.exit_reason);
	ASSERT_EQ(KVM_SYSTEM_EVENT_CRASH, self->vcpu->run->system_event.type);
	vcpu_regs_get(self->vcpu, &regs);
	ASSERT_EQ(rip, regs.rip);
	ASSERT_EQ(0, sregs_of(self->vcpu).cr4 & X86_CR4_TSD);
}

/* Enabled, then disabled: the write goes straight through. */
TEST_F(cr, disabled_event_not_raised)
{
	kvmi_control_events_param(self->fd, 0, KVMI_EVENT_CR, 1, 0);
	kvmi_control_events_param(self->fd, 0, KVMI_EVENT_CR, 0, 0);
	start(_metadata, self, OP_CR0_TS);
	ASSERT_SYNC(self);
	ASSERT_EQ(X86_CR0_TS, self->r.args[0]);
	ASSERT_EQ(0, kvmi_counters(&self->m, 0)->events);
}

/* Enabled for every vCPU (KVMI_ALL_VCPUS). */
TEST_F(cr, all_vcpus)
{
	uint32_t s;

	kvmi_control_events_param(self->fd, KVMI_ALL_VCPUS, KVMI_EVENT_CR,
				  1, 3);
	start(_metadata, self, OP_CR3_RELOAD);
	s = kvmi_wait_event(&self->m, 0, self->notify, 0);
	ASSERT_EQ(3, kvmi_event_slot(&self->m, 0)->data.cr.cr);
	reply(self, s, KVMI_ACTION_CONTINUE, 0, NULL);
	ASSERT_SYNC(self);
}

/* The tool goes away with the event pending: CONTINUE, then no events. */
TEST_F(cr, close_continues)
{
	struct kvmi_event *ev = kvmi_event_slot(&self->m, 0);
	uint64_t old;

	start_cr(_metadata, self, 4, OP_CR4_TSD);
	old = ev->data.cr.old_value;
	kvmi_unmap_all(&self->m);
	self->m.vm = NULL;
	close(self->fd);
	self->fd = -1;
	ASSERT_SYNC(self);
	ASSERT_EQ(old | X86_CR4_TSD, self->r.args[0]);
}

TEST_F(cr, control_events_bad_param)
{
	int reg;

	for (reg = 0; reg < 16; reg++) {
		if (reg == 0 || reg == 3 || reg == 4)
			continue;
		ASSERT_EQ(-1, __kvmi_control_events_param(self->fd, 0,
							  KVMI_EVENT_CR, 1,
							  reg));
		ASSERT_EQ(EINVAL, errno);
	}
	ASSERT_EQ(-1, __kvmi_control_events_param(self->fd, 1, KVMI_EVENT_CR,
						  1, 0));
	ASSERT_EQ(ENOENT, errno);
}

TEST_F(cr, check_event)
{
	struct kvmi_check chk = { .id = KVMI_EVENT_CR };

	ASSERT_EQ(0, ioctl(self->fd, KVMI_IOCTL_CHECK_EVENT, &chk));
}

TEST_HARNESS_MAIN
