// SPDX-License-Identifier: GPL-2.0-only
/*
 * kvmi-ring: the BREAKPOINT event (Documentation/virt/kvm/kvmi.rst,
 * section 10.5): an INT3 of the guest reported with its registers and
 * address, and each reply action's effect as the guest sees it.
 *
 * Needs the #BP intercept of INT3 under SVM, which the runner's QEMU
 * provides (see kvmi_int3_exit_test).
 */
#include <pthread.h>
#include <sys/eventfd.h>

#include "kselftest_harness.h"
#include "kvmi_util.h"
#include "processor.h"
#include "ucall_common.h"

extern char bp_insn[], bp_insn2[];

static volatile int bp_count;
static volatile uint64_t bp_rip;

static void guest_bp_handler(struct ex_regs *regs)
{
	bp_count++;
	bp_rip = regs->rip;
}

/* Two INT3s; after each, report the #BPs the guest's handler saw. */
static void guest_code(void)
{
	asm volatile(".global bp_insn\n"
		     "bp_insn: int3\n");
	GUEST_SYNC2(bp_count, bp_rip);
	asm volatile(".global bp_insn2\n"
		     "bp_insn2: int3\n");
	GUEST_SYNC2(bp_count, bp_rip);
	GUEST_DONE();
}

FIXTURE(bp) {
	struct kvm_vm *vm;
	struct kvm_vcpu *vcpu;
	int fd;
	struct kvmi_maps m;
	int notify;
	int kick;
	struct kvmi_runner r;
};

KVMI_TRANSPORT_VARIANTS(bp);

FIXTURE_SETUP(bp)
{
	KVMI_REQUIRE();
	kvmi_use_transport(variant->transport);
	self->vm = vm_create_with_one_vcpu(&self->vcpu, guest_code);
	vm_install_exception_handler(self->vm, BP_VECTOR, guest_bp_handler);
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

FIXTURE_TEARDOWN(bp)
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

/* Enable the event, run to the first INT3; return the event's seq. */
static uint32_t start_bp(struct __test_metadata *_metadata,
			 FIXTURE_DATA(bp) *self)
{
	kvmi_control_events(self->fd, 0, KVMI_EVENT_BREAKPOINT, 1);
	kvmi_runner_start(&self->r, self->vcpu);
	return kvmi_wait_event(&self->m, 0, self->notify, 0);
}

static void reply(FIXTURE_DATA(bp) *self, uint32_t s, uint8_t action,
		  const struct kvmi_x86_regs *regs)
{
	kvmi_send_reply(&self->m, 0, s, KVMI_EVENT_BREAKPOINT, action,
			regs ? KVMI_REPLY_SET_REGS : 0, regs, self->kick);
}

/* The guest reached its first report, having seen @count #BPs. */
#define ASSERT_GUEST_SAW(self, count) do {			\
	kvmi_runner_join(&(self)->r);				\
	ASSERT_EQ(0, (self)->r.ret);				\
	ASSERT_EQ(UCALL_SYNC, (self)->r.ucall);			\
	ASSERT_EQ((count), (self)->r.args[0]);			\
} while (0)

TEST_F(bp, event_carries_registers_and_address)
{
	struct kvmi_event *ev = kvmi_event_slot(&self->m, 0);
	uint32_t s = start_bp(_metadata, self);

	ASSERT_EQ(KVMI_EVENT_BREAKPOINT, ev->id);
	ASSERT_EQ(KVMI_X86_MODE_PROT64, ev->mode);
	ASSERT_EQ(0, ev->cpl);
	ASSERT_EQ((uint64_t)bp_insn, ev->regs.rip);
	ASSERT_EQ((uint64_t)bp_insn, ev->data.breakpoint.gva);
	ASSERT_EQ(addr_gva2gpa(self->vm, (vm_vaddr_t)bp_insn),
		  ev->data.breakpoint.gpa);
	ASSERT_EQ(1, ev->data.breakpoint.insn_len);
	ASSERT_EQ(0, ev->data.breakpoint.padding[0]);
	reply(self, s, KVMI_ACTION_CONTINUE, NULL);
	ASSERT_GUEST_SAW(self, 0);
}

/* CONTINUE: past the INT3, no #BP for the guest. */
TEST_F(bp, continue_skips_int3)
{
	uint32_t s = start_bp(_metadata, self);

	reply(self, s, KVMI_ACTION_CONTINUE, NULL);
	ASSERT_GUEST_SAW(self, 0);
	ASSERT_EQ(KVMI_DONE_REPLY, kvmi_vcpu_state(&self->m, 0)->done_reason);
	ASSERT_EQ(KVMI_ACTION_CONTINUE,
		  kvmi_vcpu_state(&self->m, 0)->done_action);
}

/* ALLOW: the guest's own handler gets the #BP, return address past it. */
TEST_F(bp, allow_reinjects_bp)
{
	uint32_t s = start_bp(_metadata, self);

	reply(self, s, KVMI_ACTION_ALLOW, NULL);
	ASSERT_GUEST_SAW(self, 1);
	ASSERT_EQ((uint64_t)bp_insn + 1, self->r.args[1]);
}

/* RETRY after the tool restored the byte: it executes, no #BP. */
TEST_F(bp, retry_executes_restored_byte)
{
	uint8_t *insn = addr_gva2hva(self->vm, (vm_vaddr_t)bp_insn);
	uint32_t s = start_bp(_metadata, self);

	ASSERT_EQ(0xcc, *insn);
	*insn = 0x90;	/* NOP */
	reply(self, s, KVMI_ACTION_RETRY, NULL);
	ASSERT_GUEST_SAW(self, 0);
	ASSERT_EQ(1, kvmi_counters(&self->m, 0)->events);
}

/* RETRY without a change: the same INT3 is reported again. */
TEST_F(bp, retry_hits_again)
{
	uint32_t s = start_bp(_metadata, self);
	uint32_t s2;

	reply(self, s, KVMI_ACTION_RETRY, NULL);
	s2 = kvmi_wait_event(&self->m, 0, self->notify, s);
	ASSERT_EQ((uint64_t)bp_insn, kvmi_event_slot(&self->m, 0)->regs.rip);
	reply(self, s2, KVMI_ACTION_CONTINUE, NULL);
	ASSERT_GUEST_SAW(self, 0);
}

/* CONTINUE with a RIP of the tool's: exactly there, no advance. */
TEST_F(bp, continue_with_rip_goes_there)
{
	struct kvmi_x86_regs regs;
	uint32_t s = start_bp(_metadata, self);

	regs = kvmi_event_slot(&self->m, 0)->regs;
	regs.groups = KVMI_REGS_RIP;
	regs.rip = (uint64_t)bp_insn + 1;
	reply(self, s, KVMI_ACTION_CONTINUE, &regs);
	ASSERT_GUEST_SAW(self, 0);
}

/* ALLOW with KVMI_REGS_RIP is invalid: the default, ALLOW, applies. */
TEST_F(bp, allow_with_rip_is_invalid)
{
	struct kvmi_x86_regs regs;
	uint32_t s = start_bp(_metadata, self);

	regs = kvmi_event_slot(&self->m, 0)->regs;
	regs.groups = KVMI_REGS_RIP;
	reply(self, s, KVMI_ACTION_ALLOW, &regs);
	ASSERT_GUEST_SAW(self, 1);
	ASSERT_EQ(KVMI_DONE_BAD_REPLY,
		  kvmi_vcpu_state(&self->m, 0)->done_reason);
	ASSERT_EQ(KVMI_ACTION_ALLOW, kvmi_vcpu_state(&self->m, 0)->done_action);
}

TEST_F(bp, crash_exits_to_vmm)
{
	uint32_t s = start_bp(_metadata, self);

	reply(self, s, KVMI_ACTION_CRASH, NULL);
	kvmi_runner_join(&self->r);
	ASSERT_EQ(0, self->r.ret);
	ASSERT_EQ(KVM_EXIT_SYSTEM_EVENT, self->r.exit_reason);
	ASSERT_EQ(KVM_SYSTEM_EVENT_CRASH,
		  self->vcpu->run->system_event.type);
}

/* Disabled again before the guest runs: no intercept, the guest's #BP. */
TEST_F(bp, disabled_event_leaves_bp_to_guest)
{
	kvmi_control_events(self->fd, 0, KVMI_EVENT_BREAKPOINT, 1);
	kvmi_control_events(self->fd, 0, KVMI_EVENT_BREAKPOINT, 0);
	kvmi_runner_start(&self->r, self->vcpu);
	ASSERT_GUEST_SAW(self, 1);
	ASSERT_EQ(0, kvmi_counters(&self->m, 0)->events);
}

static void set_sw_bp(struct kvm_vcpu *vcpu)
{
	struct kvm_guest_debug debug = {
		.control = KVM_GUESTDBG_ENABLE | KVM_GUESTDBG_USE_SW_BP,
	};

	vcpu_guest_debug_set(vcpu, &debug);
}

/* The VMM debugs the guest: ALLOW gives it its KVM_EXIT_DEBUG. */
TEST_F(bp, allow_with_vmm_sw_bp_exits_to_vmm)
{
	uint32_t s;

	set_sw_bp(self->vcpu);
	s = start_bp(_metadata, self);
	reply(self, s, KVMI_ACTION_ALLOW, NULL);
	kvmi_runner_join(&self->r);
	ASSERT_EQ(0, self->r.ret);
	ASSERT_EQ(KVM_EXIT_DEBUG, self->r.exit_reason);
	ASSERT_EQ(BP_VECTOR, self->vcpu->run->debug.arch.exception);
	ASSERT_EQ((uint64_t)bp_insn, self->vcpu->run->debug.arch.pc);
}

/* ... and CONTINUE keeps the INT3 from the VMM. */
TEST_F(bp, continue_with_vmm_sw_bp_stays_in_guest)
{
	uint32_t s;

	set_sw_bp(self->vcpu);
	s = start_bp(_metadata, self);
	reply(self, s, KVMI_ACTION_CONTINUE, NULL);
	ASSERT_GUEST_SAW(self, 0);
}

/*
 * The tool closes with the event pending: the default, ALLOW, gives the
 * guest its #BP; the intercept is gone, so the next INT3 goes straight
 * to the guest too.
 */
TEST_F(bp, close_allows_and_removes_intercept)
{
	struct ucall uc;

	start_bp(_metadata, self);
	kvmi_unmap_all(&self->m);
	self->m.vm = NULL;
	close(self->fd);
	self->fd = -1;
	ASSERT_GUEST_SAW(self, 1);
	vcpu_run(self->vcpu);
	ASSERT_EQ(UCALL_SYNC, get_ucall(self->vcpu, &uc));
	ASSERT_EQ(2, uc.args[0]);
	ASSERT_EQ((uint64_t)bp_insn2 + 1, uc.args[1]);
}

TEST_F(bp, control_events_bad_param)
{
	struct kvmi_control_events ce = {
		.vcpu = 0,
		.event = KVMI_EVENT_BREAKPOINT,
		.enable = 1,
		.param = 3,
	};

	ASSERT_EQ(-1, ioctl(self->fd, KVMI_IOCTL_CONTROL_EVENTS, &ce));
	ASSERT_EQ(EINVAL, errno);
	ASSERT_EQ(-1, __kvmi_control_events(self->fd, 1,
					    KVMI_EVENT_BREAKPOINT, 1));
	ASSERT_EQ(ENOENT, errno);
}

TEST_HARNESS_MAIN
