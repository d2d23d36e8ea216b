// SPDX-License-Identifier: GPL-2.0-only
/*
 * kvmi-ring: the event round trip on the ring, for KVMI_EVENT_HYPERCALL
 * (Documentation/virt/kvm/kvmi.rst, sections 7.6 to 7.8, 9, 10.4, 12, 13).
 *
 * A vCPU thread runs a guest that issues the KVMi hypercall with known
 * arguments; the main thread plays the tool: it waits on the notify
 * eventfd (or spins), checks the event slot, replies and kicks the vCPU.
 */
#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <sys/eventfd.h>
#include <sys/syscall.h>

#include "kselftest_harness.h"
#include "kvmi_util.h"
#include "processor.h"
#include "ucall_common.h"

#define ARG0	0x0123456789abcdefULL
#define ARG1	0x1111222233334444ULL
#define ARG2	0x5555666677778888ULL
#define ARG3	0x99990000aaaabbbbULL

#define ENOSYS_RET	((uint64_t)-KVM_ENOSYS)

#define EFER_LME_BIT	(1ULL << 8)
#define EFER_LMA_BIT	(1ULL << 10)

/*
 * uint64_t kvmi_hc(nr, a0, a1, a2, a3): the KVMi hypercall, RAX = nr,
 * RBX, RCX, RDX, RSI = a0..a3. Returns RAX and stores the RBX the guest
 * sees afterwards in kvmi_hc_rbx. kvmi_hc_insn is the VMMCALL (KVM
 * patches it to VMCALL on Intel).
 */
extern char kvmi_hc_insn[];
uint64_t kvmi_hc(uint64_t nr, uint64_t a0, uint64_t a1, uint64_t a2,
		 uint64_t a3);
uint64_t kvmi_hc_rbx;

asm(".pushsection .text\n"
	".global kvmi_hc\n"
	"kvmi_hc:\n"
	"	push %rbx\n"
	"	mov %rdi, %rax\n"
	"	mov %rsi, %rbx\n"
	"	mov %rdx, %r9\n"
	"	mov %rcx, %rdx\n"
	"	mov %r9, %rcx\n"
	"	mov %r8, %rsi\n"
	".global kvmi_hc_insn\n"
	"kvmi_hc_insn:\n"
	"	vmmcall\n"
	"	mov %rbx, kvmi_hc_rbx(%rip)\n"
	"	pop %rbx\n"
	"	ret\n"
	".popsection\n");

static void guest_hypercall(void)
{
	uint64_t ret = kvmi_hc(KVM_HC_KVMI, ARG0, ARG1, ARG2, ARG3);

	GUEST_SYNC2(ret, kvmi_hc_rbx);
}

/* vCPU 1 of the two-vCPU test: counts forever. */
static void guest_count(void)
{
	uint64_t i;

	for (i = 0;; i++)
		GUEST_SYNC1(i);
}

/* One KVM_RUN on a thread, and what it ended with. */

/* The guest returned from its hypercall with RAX = @ret, RBX = @rbx. */
#define ASSERT_GUEST_SAW(r, _ret, _rbx)	do {				\
	ASSERT_EQ(0, (r)->ret);						\
	ASSERT_EQ(UCALL_SYNC, (r)->ucall);				\
	ASSERT_EQ((_ret), (r)->args[0]);				\
	ASSERT_EQ((_rbx), (r)->args[1]);				\
} while (0)

FIXTURE(hc) {
	struct kvm_vm *vm;
	struct kvm_vcpu *vcpu;
	int fd;
	struct kvmi_maps m;
	int notify;
	int kick;
	struct kvmi_runner r;
};

KVMI_TRANSPORT_VARIANTS(hc);

/*
 * A VM with one vCPU running guest_hypercall(), introspection open and
 * mapped, VM-wide notify and kick eventfds; the event is not enabled.
 */
FIXTURE_SETUP(hc)
{
	KVMI_REQUIRE();
	kvmi_use_transport(variant->transport);
	self->vm = vm_create_with_one_vcpu(&self->vcpu, guest_hypercall);
	self->fd = kvmi_open(self->vm);
	kvmi_map_all(self->fd, &self->m);
	self->notify = eventfd(0, EFD_CLOEXEC);
	self->kick = eventfd(0, EFD_CLOEXEC);
	ASSERT_LE(0, self->notify);
	ASSERT_LE(0, self->kick);
	kvmi_set_doorbells(self->fd, KVMI_ALL_VCPUS,
			   KVMI_DOORBELL_NOTIFY | KVMI_DOORBELL_KICK,
			   self->notify, self->kick);
}

FIXTURE_TEARDOWN(hc)
{
	if (self->m.vm)
		kvmi_unmap_all(&self->m);
	if (self->fd >= 0)
		close(self->fd);
	close(self->notify);
	close(self->kick);
	if (self->vm)
		kvm_vm_free(self->vm);
}

/* Enable the event, run the guest to its hypercall; return the seq. */
static uint32_t start_event(struct __test_metadata *_metadata,
			    FIXTURE_DATA(hc) *self, int notify)
{
	kvmi_control_events(self->fd, 0, KVMI_EVENT_HYPERCALL, 1);
	kvmi_runner_start(&self->r, self->vcpu);
	return kvmi_wait_event(&self->m, 0, notify, 0);
}

static void reply_continue(FIXTURE_DATA(hc) *self, uint32_t s)
{
	kvmi_send_reply(&self->m, 0, s, KVMI_EVENT_HYPERCALL,
			KVMI_ACTION_CONTINUE, 0, NULL, self->kick);
}

TEST_F(hc, event_carries_registers)
{
	struct kvmi_event *ev = kvmi_event_slot(&self->m, 0);
	uint32_t s = start_event(_metadata, self, self->notify);

	ASSERT_NE(0, s);
	ASSERT_EQ(KVMI_EVENT_HYPERCALL, ev->id);
	ASSERT_EQ(0, ev->vcpu);
	ASSERT_EQ(KVMI_X86_MODE_PROT64, ev->mode);
	ASSERT_EQ(0, ev->cpl);
	ASSERT_NE(0, ev->timestamp_ns);
	ASSERT_EQ(3, ev->data.hypercall.insn_len);
	ASSERT_EQ(KVMI_REGS_ALL, ev->regs.groups);
	ASSERT_EQ(KVM_HC_KVMI, ev->regs.rax);
	ASSERT_EQ(ARG0, ev->regs.rbx);
	ASSERT_EQ(ARG1, ev->regs.rcx);
	ASSERT_EQ(ARG2, ev->regs.rdx);
	ASSERT_EQ(ARG3, ev->regs.rsi);
	ASSERT_EQ((uint64_t)kvmi_hc_insn, ev->regs.rip);
	ASSERT_EQ(self->vm->pgd, ev->regs.cr3 & ~0xfffULL);
	ASSERT_TRUE(ev->regs.cr0 & X86_CR0_PG);
	ASSERT_TRUE(ev->regs.efer & EFER_LMA_BIT);
	ASSERT_TRUE(ev->regs.efer & EFER_LME_BIT);
	ASSERT_EQ(1, ev->regs.cs.l);
	ASSERT_EQ(1, ev->regs.cs.present);
	ASSERT_NE(0, ev->regs.gdt.limit);
	ASSERT_NE(0, ev->regs.rsp);
	ASSERT_EQ(0, ev->regs.reserved[0]);

	reply_continue(self, s);
	kvmi_runner_join(&self->r);
	/* CONTINUE: RAX = 0, the other registers are the guest's. */
	ASSERT_GUEST_SAW(&self->r, 0, ARG0);
}

TEST_F(hc, continue_reports_done_and_counters)
{
	struct kvmi_vcpu_state *vs = kvmi_vcpu_state(&self->m, 0);
	struct kvmi_vcpu_counters *c = kvmi_counters(&self->m, 0);
	uint32_t s;

	KVMI_RING_ONLY("the notify eventfd's counters");
	s = start_event(_metadata, self, self->notify);
	ASSERT_TRUE(vs->flags & KVMI_VCPU_WAITING);
	reply_continue(self, s);
	kvmi_runner_join(&self->r);
	ASSERT_GUEST_SAW(&self->r, 0, ARG0);
	ASSERT_EQ(s, vs->done_seq);
	ASSERT_EQ(KVMI_ACTION_CONTINUE, vs->done_action);
	ASSERT_EQ(KVMI_DONE_REPLY, vs->done_reason);
	ASSERT_EQ(0, vs->flags & (KVMI_VCPU_WAITING | KVMI_VCPU_NEED_KICK));
	ASSERT_EQ(1, c->events);
	ASSERT_EQ(1, c->replies);
	ASSERT_EQ(0, c->bad_replies);
	ASSERT_EQ(1, c->notify_signals);
	ASSERT_EQ(0, c->notify_suppressed);
}

TEST_F(hc, set_regs_changes_guest_rax_rbx)
{
	struct kvmi_event *ev = kvmi_event_slot(&self->m, 0);
	struct kvmi_x86_regs regs;
	uint32_t s = start_event(_metadata, self, self->notify);

	regs = ev->regs;
	regs.groups = KVMI_REGS_GPRS;
	regs.rax = 0x1234;
	regs.rbx = 0x5678;
	kvmi_send_reply(&self->m, 0, s, KVMI_EVENT_HYPERCALL,
			KVMI_ACTION_CONTINUE, KVMI_REPLY_SET_REGS, &regs,
			self->kick);
	kvmi_runner_join(&self->r);
	ASSERT_GUEST_SAW(&self->r, 0x1234, 0x5678);
}

/* SET_REGS with RIP only: RIP is the reply's, RAX is set to 0. */
TEST_F(hc, set_regs_rip_only)
{
	struct kvmi_event *ev = kvmi_event_slot(&self->m, 0);
	struct kvmi_x86_regs regs = {};
	uint32_t s = start_event(_metadata, self, self->notify);

	regs.groups = KVMI_REGS_RIP;
	regs.rip = ev->regs.rip + ev->data.hypercall.insn_len;
	kvmi_send_reply(&self->m, 0, s, KVMI_EVENT_HYPERCALL,
			KVMI_ACTION_CONTINUE, KVMI_REPLY_SET_REGS, &regs,
			self->kick);
	kvmi_runner_join(&self->r);
	ASSERT_GUEST_SAW(&self->r, 0, ARG0);
}

/*
 * The event's snapshot sent back with GPRS and RIP: the guest resumes at
 * the VMMCALL with RAX = KVM_HC_KVMI and executes the hypercall again.
 */
TEST_F(hc, set_regs_snapshot_reexecutes)
{
	struct kvmi_event *ev = kvmi_event_slot(&self->m, 0);
	struct kvmi_x86_regs regs;
	uint32_t s = start_event(_metadata, self, self->notify);
	uint32_t s2;

	regs = ev->regs;
	regs.groups = KVMI_REGS_GPRS | KVMI_REGS_RIP;
	kvmi_send_reply(&self->m, 0, s, KVMI_EVENT_HYPERCALL,
			KVMI_ACTION_CONTINUE, KVMI_REPLY_SET_REGS, &regs,
			self->kick);
	s2 = kvmi_wait_event(&self->m, 0, self->notify, s);
	ASSERT_NE(s, s2);
	ASSERT_EQ((uint64_t)kvmi_hc_insn, ev->regs.rip);
	ASSERT_EQ(KVM_HC_KVMI, ev->regs.rax);
	reply_continue(self, s2);
	kvmi_runner_join(&self->r);
	ASSERT_GUEST_SAW(&self->r, 0, ARG0);
	ASSERT_EQ(2, kvmi_counters(&self->m, 0)->events);
}

TEST_F(hc, disabled_event_is_enosys)
{
	kvmi_runner_start(&self->r, self->vcpu);
	kvmi_runner_join(&self->r);
	ASSERT_GUEST_SAW(&self->r, ENOSYS_RET, ARG0);
	ASSERT_EQ(0, kvmi_event_slot(&self->m, 0)->seq);
	ASSERT_EQ(0, kvmi_counters(&self->m, 0)->events);
}

/* A per-vCPU call overrides KVMI_ALL_VCPUS. */
TEST_F(hc, disabled_on_vcpu_after_all_is_enosys)
{
	kvmi_control_events(self->fd, KVMI_ALL_VCPUS, KVMI_EVENT_HYPERCALL, 1);
	kvmi_control_events(self->fd, 0, KVMI_EVENT_HYPERCALL, 0);
	kvmi_runner_start(&self->r, self->vcpu);
	kvmi_runner_join(&self->r);
	ASSERT_GUEST_SAW(&self->r, ENOSYS_RET, ARG0);
	ASSERT_EQ(0, kvmi_counters(&self->m, 0)->events);
}

TEST_F(hc, enabled_for_all_vcpus)
{
	uint32_t s;

	kvmi_control_events(self->fd, KVMI_ALL_VCPUS, KVMI_EVENT_HYPERCALL, 1);
	kvmi_runner_start(&self->r, self->vcpu);
	s = kvmi_wait_event(&self->m, 0, self->notify, 0);
	reply_continue(self, s);
	kvmi_runner_join(&self->r);
	ASSERT_GUEST_SAW(&self->r, 0, ARG0);
}

TEST_F(hc, wait_block_round_trip)
{
	uint32_t s;

	kvmi_set_wait_mode(self->fd, 0, KVMI_WAIT_BLOCK, 0);
	s = start_event(_metadata, self, self->notify);
	reply_continue(self, s);
	kvmi_runner_join(&self->r);
	ASSERT_GUEST_SAW(&self->r, 0, ARG0);
	ASSERT_EQ(KVMI_DONE_REPLY, kvmi_vcpu_state(&self->m, 0)->done_reason);
}

TEST_F(hc, wait_hybrid_round_trip)
{
	uint32_t s;

	kvmi_set_wait_mode(self->fd, KVMI_ALL_VCPUS, KVMI_WAIT_HYBRID, 1000);
	s = start_event(_metadata, self, self->notify);
	reply_continue(self, s);
	kvmi_runner_join(&self->r);
	ASSERT_GUEST_SAW(&self->r, 0, ARG0);
}

/* POLL never sleeps: the reply needs no kick. */
TEST_F(hc, wait_poll_round_trip_without_kick)
{
	struct kvmi_vcpu_counters *c = kvmi_counters(&self->m, 0);
	uint32_t s;

	kvmi_set_wait_mode(self->fd, 0, KVMI_WAIT_POLL, 0);
	s = start_event(_metadata, self, self->notify);
	kvmi_send_reply(&self->m, 0, s, KVMI_EVENT_HYPERCALL,
			KVMI_ACTION_CONTINUE, 0, NULL, -1);
	kvmi_runner_join(&self->r);
	ASSERT_GUEST_SAW(&self->r, 0, ARG0);
	ASSERT_EQ(0, c->sleeps);
	ASSERT_EQ(1, c->spin_hits);
}

/* Without a kick eventfd the vCPU waits as POLL, whatever its mode. */
TEST_F(hc, no_kick_fd_waits_as_poll)
{
	uint32_t s;

	KVMI_RING_ONLY("the kick eventfd");

	kvmi_set_doorbells(self->fd, KVMI_ALL_VCPUS, KVMI_DOORBELL_KICK,
			   -1, -1);
	kvmi_set_wait_mode(self->fd, 0, KVMI_WAIT_BLOCK, 0);
	s = start_event(_metadata, self, self->notify);
	kvmi_send_reply(&self->m, 0, s, KVMI_EVENT_HYPERCALL,
			KVMI_ACTION_CONTINUE, 0, NULL, -1);
	kvmi_runner_join(&self->r);
	ASSERT_GUEST_SAW(&self->r, 0, ARG0);
	ASSERT_EQ(0, kvmi_counters(&self->m, 0)->sleeps);
}

/* Wait until vCPU 0 sleeps (NEED_KICK is set just before). */
static void wait_need_kick(struct kvmi_maps *m)
{
	while (!(__atomic_load_n(&kvmi_vcpu_state(m, 0)->flags,
				 __ATOMIC_ACQUIRE) & KVMI_VCPU_NEED_KICK))
		sched_yield();
}

/* A new wait mode applies at once to a sleeping vCPU: it is woken. */
TEST_F(hc, wait_mode_change_wakes_sleeping_vcpu)
{
	uint32_t s;

	kvmi_set_wait_mode(self->fd, 0, KVMI_WAIT_BLOCK, 0);
	s = start_event(_metadata, self, self->notify);
	wait_need_kick(&self->m);
	kvmi_set_wait_mode(self->fd, 0, KVMI_WAIT_POLL, 0);
	/* No kick: only the POLL mode can see this reply. */
	kvmi_send_reply(&self->m, 0, s, KVMI_EVENT_HYPERCALL,
			KVMI_ACTION_CONTINUE, 0, NULL, -1);
	kvmi_runner_join(&self->r);
	ASSERT_GUEST_SAW(&self->r, 0, ARG0);
}

/* Removing the kick eventfd of a sleeping vCPU makes it poll. */
TEST_F(hc, kick_fd_removal_wakes_sleeping_vcpu)
{
	uint32_t s;

	kvmi_set_wait_mode(self->fd, 0, KVMI_WAIT_BLOCK, 0);
	s = start_event(_metadata, self, self->notify);
	wait_need_kick(&self->m);
	kvmi_set_doorbells(self->fd, KVMI_ALL_VCPUS, KVMI_DOORBELL_KICK,
			   -1, -1);
	kvmi_send_reply(&self->m, 0, s, KVMI_EVENT_HYPERCALL,
			KVMI_ACTION_CONTINUE, 0, NULL, -1);
	kvmi_runner_join(&self->r);
	ASSERT_GUEST_SAW(&self->r, 0, ARG0);
}

/* The scheduler state of thread @tid of this process ('R', 'S', ...). */
static char thread_state(pid_t tid)
{
	char path[64], buf[256], *p;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/self/task/%d/stat", tid);
	f = fopen(path, "r");
	TEST_ASSERT(f, "fopen(%s): %s", path, strerror(errno));
	p = fgets(buf, sizeof(buf), f);
	fclose(f);
	TEST_ASSERT(p, "read %s", path);
	p = strrchr(buf, ')');
	TEST_ASSERT(p && p[1] == ' ', "parse %s", path);
	return p[2];
}

/* The kick eventfd wakes a sleeping vCPU, and is counted. */
TEST_F(hc, kick_wakes_sleeping_vcpu)
{
	struct kvmi_vcpu_counters *c = kvmi_counters(&self->m, 0);
	uint32_t s;

	KVMI_RING_ONLY("the kick eventfd");

	kvmi_set_wait_mode(self->fd, 0, KVMI_WAIT_BLOCK, 0);
	s = start_event(_metadata, self, self->notify);
	wait_need_kick(&self->m);
	/* NEED_KICK and an interruptible sleep: it is in its wait. */
	while (thread_state(__atomic_load_n(&self->r.tid,
					    __ATOMIC_ACQUIRE)) != 'S')
		sched_yield();
	reply_continue(self, s);
	kvmi_runner_join(&self->r);
	ASSERT_GUEST_SAW(&self->r, 0, ARG0);
	ASSERT_EQ(1, c->sleeps);
	ASSERT_EQ(1, c->kicks);
}

/* A per-vCPU doorbell takes precedence over the VM-wide one. */
TEST_F(hc, vcpu_notify_fd_overrides_vm_wide)
{
	uint64_t cnt = 0;
	uint32_t s;
	int own;

	KVMI_RING_ONLY("the notify eventfds");
	own = eventfd(0, EFD_CLOEXEC);
	ASSERT_LE(0, own);
	kvmi_set_doorbells(self->fd, 0, KVMI_DOORBELL_NOTIFY, own, -1);
	s = start_event(_metadata, self, own);
	reply_continue(self, s);
	kvmi_runner_join(&self->r);
	ASSERT_GUEST_SAW(&self->r, 0, ARG0);
	/* The VM-wide one was not signalled. */
	ASSERT_EQ(0, fcntl(self->notify, F_SETFL, O_NONBLOCK));
	ASSERT_EQ(-1, read(self->notify, &cnt, sizeof(cnt)));
	ASSERT_EQ(EAGAIN, errno);
	close(own);
}

/* The tool spins with KVMI_TOOL_POLLING: no notify eventfd write. */
TEST_F(hc, tool_polling_suppresses_notify)
{
	struct kvmi_vcpu_counters *c = kvmi_counters(&self->m, 0);
	uint32_t s;

	KVMI_RING_ONLY("the notify eventfd");
	kvmi_tool_state(&self->m, 0)->flags = KVMI_TOOL_POLLING;
	s = start_event(_metadata, self, -1);
	reply_continue(self, s);
	kvmi_runner_join(&self->r);
	ASSERT_GUEST_SAW(&self->r, 0, ARG0);
	ASSERT_EQ(1, c->notify_suppressed);
	ASSERT_EQ(0, c->notify_signals);
}

TEST_F(hc, crash_exits_to_vmm)
{
	uint32_t s = start_event(_metadata, self, self->notify);

	kvmi_send_reply(&self->m, 0, s, KVMI_EVENT_HYPERCALL,
			KVMI_ACTION_CRASH, 0, NULL, self->kick);
	kvmi_runner_join(&self->r);
	ASSERT_EQ(0, self->r.ret);
	ASSERT_EQ(KVM_EXIT_SYSTEM_EVENT, self->vcpu->run->exit_reason);
	ASSERT_EQ(KVM_SYSTEM_EVENT_CRASH, self->vcpu->run->system_event.type);
	ASSERT_EQ(KVMI_ACTION_CRASH, kvmi_vcpu_state(&self->m, 0)->done_action);
}

/* An invalid reply: default action, nothing of it applied, counted. */
static void check_bad_reply(struct __test_metadata *_metadata,
			    FIXTURE_DATA(hc) *self, uint32_t s)
{
	struct kvmi_vcpu_state *vs = kvmi_vcpu_state(&self->m, 0);
	struct kvmi_vcpu_counters *c = kvmi_counters(&self->m, 0);

	kvmi_runner_join(&self->r);
	ASSERT_GUEST_SAW(&self->r, 0, ARG0);
	ASSERT_EQ(s, vs->done_seq);
	ASSERT_EQ(KVMI_DONE_BAD_REPLY, vs->done_reason);
	ASSERT_EQ(KVMI_ACTION_CONTINUE, vs->done_action);
	ASSERT_EQ(1, c->bad_replies);
	ASSERT_EQ(0, c->replies);
}

/* A reply that would set RAX/RBX: if it is applied, the test sees it. */
static void bad_reply(FIXTURE_DATA(hc) *self, uint32_t s, uint16_t event,
		      uint8_t action, uint32_t flags,
		      struct kvmi_x86_regs *regs)
{
	regs->rax = 0x1234;
	regs->rbx = 0x5678;
	kvmi_send_reply(&self->m, 0, s, event, action, flags, regs,
			self->kick);
}

TEST_F(hc, bad_reply_wrong_event_id)
{
	struct kvmi_x86_regs regs;
	uint32_t s = start_event(_metadata, self, self->notify);

	regs = kvmi_event_slot(&self->m, 0)->regs;
	regs.groups = KVMI_REGS_GPRS;
	bad_reply(self, s, KVMI_EVENT_BREAKPOINT, KVMI_ACTION_CONTINUE,
		  KVMI_REPLY_SET_REGS, &regs);
	check_bad_reply(_metadata, self, s);
}

TEST_F(hc, bad_reply_action_not_accepted)
{
	struct kvmi_x86_regs regs;
	uint32_t s = start_event(_metadata, self, self->notify);

	regs = kvmi_event_slot(&self->m, 0)->regs;
	regs.groups = KVMI_REGS_GPRS;
	bad_reply(self, s, KVMI_EVENT_HYPERCALL, KVMI_ACTION_DENY,
		  KVMI_REPLY_SET_REGS, &regs);
	check_bad_reply(_metadata, self, s);
}

TEST_F(hc, bad_reply_unknown_flag)
{
	struct kvmi_x86_regs regs;
	uint32_t s = start_event(_metadata, self, self->notify);

	regs = kvmi_event_slot(&self->m, 0)->regs;
	regs.groups = KVMI_REGS_GPRS;
	bad_reply(self, s, KVMI_EVENT_HYPERCALL, KVMI_ACTION_CONTINUE,
		  KVMI_REPLY_SET_REGS | (1U << 7), &regs);
	check_bad_reply(_metadata, self, s);
}

TEST_F(hc, bad_reply_padding)
{
	struct kvmi_x86_regs regs;
	uint32_t s = start_event(_metadata, self, self->notify);

	regs = kvmi_event_slot(&self->m, 0)->regs;
	regs.groups = KVMI_REGS_GPRS;
	regs.padding = 1;
	bad_reply(self, s, KVMI_EVENT_HYPERCALL, KVMI_ACTION_CONTINUE,
		  KVMI_REPLY_SET_REGS, &regs);
	check_bad_reply(_metadata, self, s);
}

TEST_F(hc, bad_reply_unknown_regs_group)
{
	struct kvmi_x86_regs regs;
	uint32_t s = start_event(_metadata, self, self->notify);

	regs = kvmi_event_slot(&self->m, 0)->regs;
	regs.groups = KVMI_REGS_GPRS | (1U << 20);
	bad_reply(self, s, KVMI_EVENT_HYPERCALL, KVMI_ACTION_CONTINUE,
		  KVMI_REPLY_SET_REGS, &regs);
	check_bad_reply(_metadata, self, s);
}

/* A reply whose seq is not the pending event's is not a reply. */
TEST_F(hc, reply_with_other_seq_is_ignored)
{
	struct kvmi_vcpu_counters *c = kvmi_counters(&self->m, 0);
	uint32_t s;

	/* kvmi_socket_test: on the socket, a protocol error. */
	KVMI_RING_ONLY("a reply to no event ends the socket transport");
	s = start_event(_metadata, self, self->notify);
	kvmi_send_reply(&self->m, 0, s + 1, KVMI_EVENT_HYPERCALL,
			KVMI_ACTION_CRASH, 0, NULL, self->kick);
	reply_continue(self, s);
	kvmi_runner_join(&self->r);
	ASSERT_GUEST_SAW(&self->r, 0, ARG0);
	ASSERT_EQ(1, c->replies);
	ASSERT_EQ(0, c->bad_replies);
}

/*
 * Closing the fd (and unmapping, since the mappings hold the file) while
 * the vCPU waits releases it with the default action.
 */
TEST_F(hc, close_releases_waiting_vcpu)
{
	start_event(_metadata, self, self->notify);
	kvmi_unmap_all(&self->m);
	memset(&self->m, 0, sizeof(self->m));
	close(self->fd);
	self->fd = -1;
	kvmi_runner_join(&self->r);
	ASSERT_GUEST_SAW(&self->r, 0, ARG0);
}

/* The same while the vCPU sleeps in BLOCK mode. */
TEST_F(hc, close_releases_sleeping_vcpu)
{
	kvmi_set_wait_mode(self->fd, 0, KVMI_WAIT_BLOCK, 0);
	start_event(_metadata, self, self->notify);
	wait_need_kick(&self->m);
	kvmi_unmap_all(&self->m);
	memset(&self->m, 0, sizeof(self->m));
	close(self->fd);
	self->fd = -1;
	kvmi_runner_join(&self->r);
	ASSERT_GUEST_SAW(&self->r, 0, ARG0);
}

static void sigusr1(int sig)
{
}

static int intr_seen;
static int intr_go;

/* KVM_RUN until it doesn't fail with EINTR; the first EINTR waits. */
static void *signal_runner_fn(void *arg)
{
	struct kvmi_runner *r = arg;

	for (;;) {
		r->ret = __vcpu_run(r->vcpu);
		r->err = errno;
		if (r->ret != -1 || r->err != EINTR)
			break;
		r->args[0] = r->vcpu->run->exit_reason;
		__atomic_store_n(&intr_seen, 1, __ATOMIC_RELEASE);
		while (!__atomic_load_n(&intr_go, __ATOMIC_ACQUIRE))
			sched_yield();
	}
	return NULL;
}

/*
 * A signal makes KVM_RUN return -EINTR with the event still pending; the
 * next KVM_RUN resumes the wait and applies the reply.
 */
TEST_F(hc, signal_leaves_run_with_event_pending)
{
	struct sigaction sa = { .sa_handler = sigusr1 };
	struct kvmi_vcpu_state *vs = kvmi_vcpu_state(&self->m, 0);
	struct ucall uc;
	uint32_t s;

	ASSERT_EQ(0, sigaction(SIGUSR1, &sa, NULL));
	kvmi_control_events(self->fd, 0, KVMI_EVENT_HYPERCALL, 1);
	memset(&self->r, 0, sizeof(self->r));
	self->r.vcpu = self->vcpu;
	ASSERT_EQ(0, pthread_create(&self->r.thread, NULL, signal_runner_fn,
				    &self->r));
	s = kvmi_wait_event(&self->m, 0, self->notify, 0);
	pthread_kill(self->r.thread, SIGUSR1);
	while (!__atomic_load_n(&intr_seen, __ATOMIC_ACQUIRE))
		sched_yield();
	ASSERT_EQ(KVM_EXIT_INTR, self->r.args[0]);
	ASSERT_NE(s, vs->done_seq);
	ASSERT_EQ(0, vs->flags & KVMI_VCPU_WAITING);

	reply_continue(self, s);
	__atomic_store_n(&intr_go, 1, __ATOMIC_RELEASE);
	kvmi_runner_join(&self->r);
	ASSERT_EQ(0, self->r.ret);
	ASSERT_EQ(UCALL_SYNC, get_ucall(self->vcpu, &uc));
	ASSERT_EQ(0, uc.args[0]);
	ASSERT_EQ(s, vs->done_seq);
	ASSERT_EQ(1, kvmi_counters(&self->m, 0)->events);
}

static uint64_t count_seen;
static int count_stop;

static void *count_runner_fn(void *arg)
{
	struct kvm_vcpu *vcpu = arg;
	struct ucall uc;

	while (!__atomic_load_n(&count_stop, __ATOMIC_ACQUIRE)) {
		vcpu_run(vcpu);
		if (get_ucall(vcpu, &uc) != UCALL_SYNC)
			break;
		__atomic_store_n(&count_seen, uc.args[0] + 1, __ATOMIC_RELEASE);
	}
	return NULL;
}

/* vCPU 1 keeps running guest code while vCPU 0 waits for its reply. */
TEST(other_vcpu_runs_while_one_waits)
{
	struct kvm_vcpu *vcpus[2];
	struct kvmi_maps m;
	struct kvmi_runner r0;
	pthread_t t1;
	struct kvm_vm *vm;
	uint64_t c0;
	uint32_t s;
	int fd, notify, kick;

	KVMI_REQUIRE();
	vm = vm_create(2);
	vcpus[0] = vm_vcpu_add(vm, 0, guest_hypercall);
	vcpus[1] = vm_vcpu_add(vm, 1, guest_count);
	fd = kvmi_open(vm);
	kvmi_map_all(fd, &m);
	notify = eventfd(0, EFD_CLOEXEC);
	kick = eventfd(0, EFD_CLOEXEC);
	kvmi_set_doorbells(fd, KVMI_ALL_VCPUS,
			   KVMI_DOORBELL_NOTIFY | KVMI_DOORBELL_KICK,
			   notify, kick);
	kvmi_set_wait_mode(fd, 0, KVMI_WAIT_BLOCK, 0);
	kvmi_control_events(fd, KVMI_ALL_VCPUS, KVMI_EVENT_HYPERCALL, 1);

	ASSERT_EQ(0, pthread_create(&t1, NULL, count_runner_fn, vcpus[1]));
	kvmi_runner_start(&r0, vcpus[0]);
	s = kvmi_wait_event(&m, 0, notify, 0);

	/* vCPU 0 waits; vCPU 1 advances. */
	c0 = __atomic_load_n(&count_seen, __ATOMIC_ACQUIRE);
	while (__atomic_load_n(&count_seen, __ATOMIC_ACQUIRE) < c0 + 10)
		sched_yield();
	ASSERT_NE(s, kvmi_vcpu_state(&m, 0)->done_seq);

	kvmi_send_reply(&m, 0, s, KVMI_EVENT_HYPERCALL, KVMI_ACTION_CONTINUE,
			0, NULL, kick);
	kvmi_runner_join(&r0);
	ASSERT_GUEST_SAW(&r0, 0, ARG0);
	ASSERT_EQ(0, kvmi_counters(&m, 1)->events);

	__atomic_store_n(&count_stop, 1, __ATOMIC_RELEASE);
	pthread_join(t1, NULL);
	kvmi_unmap_all(&m);
	close(fd);
	close(notify);
	close(kick);
	kvm_vm_free(vm);
}

/* Argument checks of the three ioctls. */
FIXTURE(args) {
	struct kvm_vm *vm;
	int fd;
	int efd;
};

FIXTURE_SETUP(args)
{
	KVMI_REQUIRE();
	self->vm = vm_create_barebones();
	__vm_vcpu_add(self->vm, 0);
	self->fd = kvmi_open(self->vm);
	self->efd = eventfd(0, EFD_CLOEXEC);
}

FIXTURE_TEARDOWN(args)
{
	close(self->efd);
	close(self->fd);
	kvm_vm_free(self->vm);
}

TEST_F(args, control_events_bad_args)
{
	struct kvmi_control_events ce = {
		.event = KVMI_EVENT_HYPERCALL,
		.enable = 1,
	};
	int fd = self->fd;

	ASSERT_EQ(0, ioctl(fd, KVMI_IOCTL_CONTROL_EVENTS, &ce));
	ce.padding1 = 1;
	ASSERT_EQ(-1, ioctl(fd, KVMI_IOCTL_CONTROL_EVENTS, &ce));
	ASSERT_EQ(EINVAL, errno);
	ce.padding1 = 0;
	ce.padding2 = 1;
	ASSERT_EQ(-1, ioctl(fd, KVMI_IOCTL_CONTROL_EVENTS, &ce));
	ASSERT_EQ(EINVAL, errno);
	ce.padding2 = 0;
	ce.param = 1;
	ASSERT_EQ(-1, ioctl(fd, KVMI_IOCTL_CONTROL_EVENTS, &ce));
	ASSERT_EQ(EINVAL, errno);
	ce.param = 0;
	ce.enable = 2;
	ASSERT_EQ(-1, ioctl(fd, KVMI_IOCTL_CONTROL_EVENTS, &ce));
	ASSERT_EQ(EINVAL, errno);

	ASSERT_EQ(-1, __kvmi_control_events(fd, 0, KVMI_EVENT_UNHOOK, 1));
	ASSERT_EQ(EINVAL, errno);
	ASSERT_EQ(-1, __kvmi_control_events(fd, 0, KVMI_EVENT_PAUSE, 1));
	ASSERT_EQ(EINVAL, errno);
	ASSERT_EQ(-1, __kvmi_control_events(fd, 0, KVMI_EVENT_SINGLESTEP, 1));
	ASSERT_EQ(EINVAL, errno);
	ASSERT_EQ(-1, __kvmi_control_events(fd, 0, 0x7fff, 1));
	ASSERT_EQ(EOPNOTSUPP, errno);
	ASSERT_EQ(-1, __kvmi_control_events(fd, 1, KVMI_EVENT_HYPERCALL, 1));
	ASSERT_EQ(ENOENT, errno);
	ASSERT_EQ(0, __kvmi_control_events(fd, KVMI_ALL_VCPUS,
					   KVMI_EVENT_HYPERCALL, 0));
}

TEST_F(args, doorbells_bad_args)
{
	int fd = self->fd, efd = self->efd;
	uint32_t bit;

	ASSERT_EQ(0, __kvmi_set_doorbells(fd, 0, KVMI_DOORBELL_NOTIFY |
					  KVMI_DOORBELL_KICK, efd, efd));
	ASSERT_EQ(-1, __kvmi_set_doorbells(fd, 0, 0, -1, -1));
	ASSERT_EQ(EINVAL, errno);
	for (bit = 2; bit < 32; bit++) {
		ASSERT_EQ(-1, __kvmi_set_doorbells(fd, 0, 1U << bit, -1, -1));
		ASSERT_EQ(EINVAL, errno);
	}
	/* An fd not selected by flags must be -1. */
	ASSERT_EQ(-1, __kvmi_set_doorbells(fd, 0, KVMI_DOORBELL_NOTIFY,
					   efd, efd));
	ASSERT_EQ(EINVAL, errno);
	ASSERT_EQ(-1, __kvmi_set_doorbells(fd, 0, KVMI_DOORBELL_KICK,
					   efd, efd));
	ASSERT_EQ(EINVAL, errno);
	/* Not an eventfd. */
	ASSERT_EQ(-1, __kvmi_set_doorbells(fd, 0, KVMI_DOORBELL_NOTIFY,
					   fd, -1));
	ASSERT_EQ(EINVAL, errno);
	ASSERT_EQ(-1, __kvmi_set_doorbells(fd, 0, KVMI_DOORBELL_KICK,
					   -1, fd));
	ASSERT_EQ(EINVAL, errno);
	/* Not open. */
	ASSERT_EQ(-1, __kvmi_set_doorbells(fd, 0, KVMI_DOORBELL_NOTIFY,
					   1000, -1));
	ASSERT_EQ(EBADF, errno);
	ASSERT_EQ(-1, __kvmi_set_doorbells(fd, 1, KVMI_DOORBELL_NOTIFY,
					   efd, -1));
	ASSERT_EQ(ENOENT, errno);
	/* Removal. */
	ASSERT_EQ(0, __kvmi_set_doorbells(fd, KVMI_ALL_VCPUS,
					  KVMI_DOORBELL_NOTIFY |
					  KVMI_DOORBELL_KICK, -1, -1));
}

TEST_F(args, wait_mode_bad_args)
{
	int fd = self->fd;

	ASSERT_EQ(0, __kvmi_set_wait_mode(fd, 0, KVMI_WAIT_BLOCK, 0));
	ASSERT_EQ(0, __kvmi_set_wait_mode(fd, 0, KVMI_WAIT_POLL, 0));
	ASSERT_EQ(0, __kvmi_set_wait_mode(fd, KVMI_ALL_VCPUS,
					  KVMI_WAIT_HYBRID, 1));
	ASSERT_EQ(-1, __kvmi_set_wait_mode(fd, 0, KVMI_WAIT_BLOCK, 1));
	ASSERT_EQ(EINVAL, errno);
	ASSERT_EQ(-1, __kvmi_set_wait_mode(fd, 0, KVMI_WAIT_POLL, 1));
	ASSERT_EQ(EINVAL, errno);
	ASSERT_EQ(-1, __kvmi_set_wait_mode(fd, 0, KVMI_WAIT_HYBRID, 0));
	ASSERT_EQ(EINVAL, errno);
	ASSERT_EQ(-1, __kvmi_set_wait_mode(fd, 0, 3, 0));
	ASSERT_EQ(EINVAL, errno);
	ASSERT_EQ(-1, __kvmi_set_wait_mode(fd, 1, KVMI_WAIT_BLOCK, 0));
	ASSERT_EQ(ENOENT, errno);
}

TEST_HARNESS_MAIN
