// SPDX-License-Identifier: GPL-2.0-only
/*
 * kvmi-ring: KVMI_EVENT_TRAP (Documentation/virt/kvm/kvmi.rst, section
 * 10.10): the exceptions the guest raises itself (#UD, #GP, #PF) and one
 * the tool injects are reported before the guest gets them; the reply lets
 * them through, replaces them or drops them, and the guest's handler sees
 * the outcome. With the event disabled, nothing is intercepted any more.
 */
#include <pthread.h>

#include "kselftest_harness.h"
#include "kvmi_util.h"
#include "processor.h"
#include "ucall_common.h"

/* A linear address the guest's page tables don't map. */
#define UNMAPPED_GVA		0x7f0000000000ULL
/* A non-canonical address: an access to it is a #GP(0). */
#define NONCANONICAL_GVA	0x8000000000000000ULL
/* How many faults the guest takes with the event disabled. */
#define NR_QUIET		1000

enum {
	GUEST_UD = 1,
	GUEST_GP,
	GUEST_PF,
	GUEST_HYPERCALL,
	GUEST_QUIET,
};

static int scenario;
static int exceptions;
static uint64_t last_vector, last_error_code;

static inline uint64_t guest_get_cr2(void)
{
	uint64_t cr2;

	__asm__ __volatile__("mov %%cr2, %0" : "=r"(cr2));
	return cr2;
}

/* For exceptions outside a KVM_ASM_SAFE() instruction (the injected one). */
static void guest_handler(struct ex_regs *regs)
{
	WRITE_ONCE(exceptions, exceptions + 1);
	WRITE_ONCE(last_vector, regs->vector);
	WRITE_ONCE(last_error_code, regs->error_code);
}

/*
 * Runs the scenario the test set, then reports (vector, error code, CR2)
 * of what the guest saw (vector 0: nothing), and again.
 */
static void guest_code(void)
{
	uint64_t ec;
	uint8_t v;
	int i;

again:
	ec = 0;
	v = 0;
	switch (READ_ONCE(scenario)) {
	case GUEST_UD:
		v = kvm_asm_safe_ec("ud2", ec);
		break;
	case GUEST_GP:
		v = kvm_asm_safe_ec("cmpb $0, (%[a])", ec,
				    [a] "r"(NONCANONICAL_GVA));
		break;
	case GUEST_PF:
		v = kvm_asm_safe_ec("cmpb $0, (%[a])", ec,
				    [a] "r"(UNMAPPED_GVA));
		break;
	case GUEST_HYPERCALL:
		kvm_hypercall(KVM_HC_KVMI, 0, 0, 0, 0);
		v = READ_ONCE(exceptions) ? READ_ONCE(last_vector) : 0;
		ec = READ_ONCE(last_error_code);
		break;
	case GUEST_QUIET:
		/* No exit for these, if nothing intercepts them. */
		for (i = 0; i < NR_QUIET; i++) {
			v |= kvm_asm_safe("cmpb $0, (%[a])",
					  [a] "r"(NONCANONICAL_GVA));
			v |= kvm_asm_safe("cmpb $0, (%[a])",
					  [a] "r"(UNMAPPED_GVA));
		}
		break;
	}
	GUEST_SYNC3(v, ec, guest_get_cr2());
	goto again;
}

FIXTURE(trap) {
	struct kvm_vm *vm;
	struct kvm_vcpu *vcpu;
	int fd;
	struct kvmi_maps m;
	struct kvmi_runner r;
	uint32_t seq;
};

KVMI_TRANSPORT_VARIANTS(trap);

FIXTURE_SETUP(trap)
{
	KVMI_REQUIRE();
	kvmi_use_transport(variant->transport);
	self->vm = vm_create_with_one_vcpu(&self->vcpu, guest_code);
	self->fd = kvmi_open(self->vm);
	kvmi_map_all(self->fd, &self->m);
	__atomic_or_fetch(&kvmi_tool_state(&self->m, 0)->flags,
			  KVMI_TOOL_POLLING, __ATOMIC_RELAXED);
	self->r.joined = true;
}

FIXTURE_TEARDOWN(trap)
{
	/* Whatever the test left pending: its default action. */
	if (!self->r.joined) {
		kvmi_control_events(self->fd, 0, KVMI_EVENT_TRAP, 0);
		close(self->fd);
		self->fd = -1;
		kvmi_runner_join(&self->r);
	}
	kvmi_unmap_all(&self->m);
	if (self->fd >= 0)
		close(self->fd);
	kvm_vm_free(self->vm);
}

/* Run the guest's @what with the TRAP event enabled (or not). */
static void start(FIXTURE_DATA(trap) *self, int what, bool trap)
{
	scenario = what;
	sync_global_to_guest(self->vm, scenario);
	if (trap)
		kvmi_control_events(self->fd, 0, KVMI_EVENT_TRAP, 1);
	kvmi_runner_start(&self->r, self->vcpu);
}

/* Wait for the next event, which must be @id; returns its slot. */
static struct kvmi_event *next_event(struct __test_metadata *_metadata,
				     FIXTURE_DATA(trap) *self, uint16_t id)
{
	struct kvmi_event *ev = kvmi_event_slot(&self->m, 0);

	self->seq = kvmi_wait_event(&self->m, 0, -1, self->seq);
	EXPECT_EQ(id, ev->id);
	return ev;
}

static void reply(FIXTURE_DATA(trap) *self, uint16_t id, uint8_t action,
		  const struct kvmi_reply_trap *t,
		  const struct kvmi_x86_regs *regs)
{
	struct kvmi_reply *rp = kvmi_reply_slot(&self->m, 0);

	memset(&rp->data, 0, sizeof(rp->data));
	if (t)
		rp->data.trap = *t;
	kvmi_send_reply(&self->m, 0, self->seq, id, action,
			regs ? KVMI_REPLY_SET_REGS : 0, regs, -1);
	kvmi_wait_done(&self->m, 0, self->seq);
}

/* Join the vCPU thread: the guest reported what it saw. */
static void finish(struct __test_metadata *_metadata,
		   FIXTURE_DATA(trap) *self)
{
	kvmi_runner_join(&self->r);
	ASSERT_EQ(0, self->r.ret);
	ASSERT_EQ(UCALL_SYNC, self->r.ucall);
}

static void check_trap(struct __test_metadata *_metadata,
		       const struct kvmi_event *ev, uint8_t vector,
		       uint8_t flags, uint32_t error_code, uint64_t cr2)
{
	const struct kvmi_event_trap *t = &ev->data.trap;

	EXPECT_EQ(vector, t->vector);
	EXPECT_EQ(flags, t->flags);
	EXPECT_EQ(error_code, t->error_code);
	EXPECT_EQ(0, t->padding[0] | t->padding[1]);
	EXPECT_EQ(cr2, t->cr2);
}

TEST_F(trap, ud_continue)
{
	struct kvmi_event *ev;

	start(self, GUEST_UD, true);
	ev = next_event(_metadata, self, KVMI_EVENT_TRAP);
	check_trap(_metadata, ev, UD_VECTOR, 0, 0, 0);
	/* RIP is the faulting instruction: UD2 is 0f 0b. */
	ASSERT_EQ(KVMI_X86_MODE_PROT64, ev->mode);
	ASSERT_EQ(0, memcmp(addr_gva2hva(self->vm, ev->regs.rip), "\x0f\x0b",
			    2));
	reply(self, KVMI_EVENT_TRAP, KVMI_ACTION_CONTINUE, NULL, NULL);
	finish(_metadata, self);
	ASSERT_EQ(UD_VECTOR, self->r.args[0]);
	ASSERT_EQ(KVMI_DONE_REPLY, kvmi_vcpu_state(&self->m, 0)->done_reason);
}

TEST_F(trap, gp_continue)
{
	struct kvmi_event *ev;

	start(self, GUEST_GP, true);
	ev = next_event(_metadata, self, KVMI_EVENT_TRAP);
	check_trap(_metadata, ev, GP_VECTOR, KVMI_EXCEPTION_ERROR_CODE, 0, 0);
	reply(self, KVMI_EVENT_TRAP, KVMI_ACTION_CONTINUE, NULL, NULL);
	finish(_metadata, self);
	ASSERT_EQ(GP_VECTOR, self->r.args[0]);
	ASSERT_EQ(0, self->r.args[1]);
}

/* A read of a non-present page at CPL 0: error code 0, CR2 the address. */
TEST_F(trap, pf_continue)
{
	struct kvmi_event *ev;

	start(self, GUEST_PF, true);
	ev = next_event(_metadata, self, KVMI_EVENT_TRAP);
	check_trap(_metadata, ev, PF_VECTOR, KVMI_EXCEPTION_ERROR_CODE, 0,
		   UNMAPPED_GVA);
	/* Not delivered yet: the guest's CR2 is not written. */
	ASSERT_NE(UNMAPPED_GVA, ev->regs.cr2);
	reply(self, KVMI_EVENT_TRAP, KVMI_ACTION_CONTINUE, NULL, NULL);
	finish(_metadata, self);
	ASSERT_EQ(PF_VECTOR, self->r.args[0]);
	ASSERT_EQ(0, self->r.args[1]);
	ASSERT_EQ(UNMAPPED_GVA, self->r.args[2]);
}

/* ALLOW delivers the reply's exception instead, with its frame. */
TEST_F(trap, ud_allowed_as_pf)
{
	struct kvmi_reply_trap t = {
		.vector = PF_VECTOR,
		.flags = KVMI_EXCEPTION_ERROR_CODE,
		.error_code = 0x2,
		.cr2 = 0x1234000,
	};

	start(self, GUEST_UD, true);
	next_event(_metadata, self, KVMI_EVENT_TRAP);
	reply(self, KVMI_EVENT_TRAP, KVMI_ACTION_ALLOW, &t, NULL);
	finish(_metadata, self);
	ASSERT_EQ(PF_VECTOR, self->r.args[0]);
	ASSERT_EQ(0x2, self->r.args[1]);
	ASSERT_EQ(0x1234000, self->r.args[2]);
}

/* A vector with an error code gets one (0) even without the flag. */
TEST_F(trap, gp_allowed_as_ud_and_ss)
{
	struct kvmi_reply_trap t = { .vector = UD_VECTOR };

	start(self, GUEST_GP, true);
	next_event(_metadata, self, KVMI_EVENT_TRAP);
	reply(self, KVMI_EVENT_TRAP, KVMI_ACTION_ALLOW, &t, NULL);
	finish(_metadata, self);
	ASSERT_EQ(UD_VECTOR, self->r.args[0]);

	t.vector = SS_VECTOR;
	start(self, GUEST_GP, false);
	next_event(_metadata, self, KVMI_EVENT_TRAP);
	reply(self, KVMI_EVENT_TRAP, KVMI_ACTION_ALLOW, &t, NULL);
	finish(_metadata, self);
	ASSERT_EQ(SS_VECTOR, self->r.args[0]);
	ASSERT_EQ(0, self->r.args[1]);
}

/* DENY drops the exception; the reply moves RIP past the UD2. */
TEST_F(trap, ud_denied)
{
	struct kvmi_x86_regs regs = { .groups = KVMI_REGS_RIP };
	struct kvmi_event *ev;

	start(self, GUEST_UD, true);
	ev = next_event(_metadata, self, KVMI_EVENT_TRAP);
	regs.rip = ev->regs.rip + 2;
	reply(self, KVMI_EVENT_TRAP, KVMI_ACTION_DENY, NULL, &regs);
	finish(_metadata, self);
	ASSERT_EQ(0, self->r.args[0]);
}

/* DENY without moving RIP: the instruction faults again, and is reported. */
TEST_F(trap, pf_denied_faults_again)
{
	struct kvmi_event *ev;
	uint64_t rip;

	start(self, GUEST_PF, true);
	ev = next_event(_metadata, self, KVMI_EVENT_TRAP);
	rip = ev->regs.rip;
	reply(self, KVMI_EVENT_TRAP, KVMI_ACTION_DENY, NULL, NULL);
	ev = next_event(_metadata, self, KVMI_EVENT_TRAP);
	check_trap(_metadata, ev, PF_VECTOR, KVMI_EXCEPTION_ERROR_CODE, 0,
		   UNMAPPED_GVA);
	ASSERT_EQ(rip, ev->regs.rip);
	reply(self, KVMI_EVENT_TRAP, KVMI_ACTION_CONTINUE, NULL, NULL);
	finish(_metadata, self);
	ASSERT_EQ(PF_VECTOR, self->r.args[0]);
}

static void run_injected(struct __test_metadata *_metadata,
			 FIXTURE_DATA(trap) *self, uint8_t action)
{
	union kvmi_cmd_args args = {};
	struct kvmi_event *ev;
	uint32_t s;

	vm_install_exception_handler(self->vm, GP_VECTOR, guest_handler);
	kvmi_control_events(self->fd, 0, KVMI_EVENT_HYPERCALL, 1);
	start(self, GUEST_HYPERCALL, true);
	next_event(_metadata, self, KVMI_EVENT_HYPERCALL);
	args.inject_exception.vector = GP_VECTOR;
	args.inject_exception.flags = KVMI_EXCEPTION_ERROR_CODE;
	args.inject_exception.error_code = 0x18;
	s = kvmi_send_cmd(&self->m, 0, KVMI_CMD_INJECT_EXCEPTION, &args, -1);
	ASSERT_EQ(0, kvmi_wait_cmd_result(&self->m, 0, s)->error);
	reply(self, KVMI_EVENT_HYPERCALL, KVMI_ACTION_CONTINUE, NULL, NULL);

	/* The tool's own exception is reported too, as it is delivered. */
	ev = next_event(_metadata, self, KVMI_EVENT_TRAP);
	check_trap(_metadata, ev, GP_VECTOR, KVMI_EXCEPTION_ERROR_CODE, 0x18,
		   0);
	/* While it waits in the event, another one can't be injected. */
	args.inject_exception.vector = UD_VECTOR;
	args.inject_exception.flags = 0;
	args.inject_exception.error_code = 0;
	ASSERT_EQ(-EBUSY, kvmi_run_cmd(&self->m, 0, KVMI_CMD_INJECT_EXCEPTION,
				       &args, -1));
	reply(self, KVMI_EVENT_TRAP, action, NULL, NULL);
	finish(_metadata, self);
	ASSERT_EQ(s, __atomic_load_n(&kvmi_vcpu_state(&self->m, 0)->inject_seq,
				     __ATOMIC_ACQUIRE));
}

TEST_F(trap, injected_continue)
{
	run_injected(_metadata, self, KVMI_ACTION_CONTINUE);
	ASSERT_EQ(GP_VECTOR, self->r.args[0]);
	ASSERT_EQ(0x18, self->r.args[1]);
	ASSERT_EQ(KVMI_INJECT_DELIVERED,
		  kvmi_vcpu_state(&self->m, 0)->inject_status);
}

TEST_F(trap, injected_denied)
{
	run_injected(_metadata, self, KVMI_ACTION_DENY);
	ASSERT_EQ(0, self->r.args[0]);
	ASSERT_EQ(KVMI_INJECT_DROPPED,
		  kvmi_vcpu_state(&self->m, 0)->inject_status);
}

/* Invalid replies: the default action (CONTINUE), the guest gets its #UD. */
TEST_F(trap, bad_replies)
{
	static const struct kvmi_reply_trap bad[] = {
		{ .vector = NMI_VECTOR },
		{ .vector = 32 },
		{ .vector = UD_VECTOR, .flags = KVMI_EXCEPTION_ERROR_CODE },
		{ .vector = UD_VECTOR, .cr2 = 0x1000 },
		{ .vector = UD_VECTOR, .flags = 2 },
		{ .vector = UD_VECTOR, .padding = { 0, 1 } },
	};
	struct kvmi_vcpu_state *vs = kvmi_vcpu_state(&self->m, 0);
	uint64_t bad_before = kvmi_counters(&self->m, 0)->bad_replies;
	unsigned int i;

	for (i = 0; i < ARRAY_SIZE(bad); i++) {
		start(self, GUEST_UD, true);
		next_event(_metadata, self, KVMI_EVENT_TRAP);
		reply(self, KVMI_EVENT_TRAP, KVMI_ACTION_ALLOW, &bad[i], NULL);
		ASSERT_EQ(KVMI_DONE_BAD_REPLY, vs->done_reason);
		ASSERT_EQ(KVMI_ACTION_CONTINUE, vs->done_action);
		finish(_metadata, self);
		ASSERT_EQ(UD_VECTOR, self->r.args[0]);
	}
	/* RETRY is not an action of TRAP. */
	start(self, GUEST_UD, true);
	next_event(_metadata, self, KVMI_EVENT_TRAP);
	reply(self, KVMI_EVENT_TRAP, KVMI_ACTION_RETRY, NULL, NULL);
	ASSERT_EQ(KVMI_DONE_BAD_REPLY, vs->done_reason);
	finish(_metadata, self);
	ASSERT_EQ(UD_VECTOR, self->r.args[0]);
	ASSERT_EQ(bad_before + ARRAY_SIZE(bad) + 1,
		  kvmi_counters(&self->m, 0)->bad_replies);
}

TEST_F(trap, crash)
{
	start(self, GUEST_UD, true);
	next_event(_metadata, self, KVMI_EVENT_TRAP);
	reply(self, KVMI_EVENT_TRAP, KVMI_ACTION_CRASH, NULL, NULL);
	kvmi_runner_join(&self->r);
	ASSERT_EQ(0, self->r.ret);
	ASSERT_EQ(KVM_EXIT_SYSTEM_EVENT, self->r.exit_reason);
	ASSERT_EQ(KVM_SYSTEM_EVENT_CRASH, self->vcpu->run->system_event.type);
}

/*
 * Enabled, then disabled before the guest runs: no event, the guest takes
 * its #GP and #PF without KVM seeing them (no #PF given back to it, fewer
 * exits than faults).
 */
TEST_F(trap, disabled_leaves_no_intercept)
{
	uint64_t exits, pf_guest;

	kvmi_control_events(self->fd, 0, KVMI_EVENT_TRAP, 1);
	kvmi_control_events(self->fd, 0, KVMI_EVENT_TRAP, 0);
	exits = kvmi_vcpu_stat(self->vcpu, "exits");
	pf_guest = kvmi_vcpu_stat(self->vcpu, "pf_guest");
	ASSERT_NE(-1ULL, exits);
	ASSERT_NE(-1ULL, pf_guest);
	start(self, GUEST_QUIET, false);
	finish(_metadata, self);
	ASSERT_EQ(GP_VECTOR | PF_VECTOR, self->r.args[0]);
	ASSERT_EQ(0, kvmi_event_slot(&self->m, 0)->seq);
	ASSERT_EQ(pf_guest, kvmi_vcpu_stat(self->vcpu, "pf_guest"));
	ASSERT_LT(kvmi_vcpu_stat(self->vcpu, "exits") - exits, NR_QUIET);
}

/* And enabled: the same #PF is intercepted and given back to the guest. */
TEST_F(trap, enabled_pf_goes_through_kvm)
{
	uint64_t pf_guest = kvmi_vcpu_stat(self->vcpu, "pf_guest");

	start(self, GUEST_PF, true);
	next_event(_metadata, self, KVMI_EVENT_TRAP);
	reply(self, KVMI_EVENT_TRAP, KVMI_ACTION_CONTINUE, NULL, NULL);
	finish(_metadata, self);
	ASSERT_EQ(pf_guest + 1, kvmi_vcpu_stat(self->vcpu, "pf_guest"));
}

TEST_HARNESS_MAIN
