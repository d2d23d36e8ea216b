// SPDX-License-Identifier: GPL-2.0-only
/*
 * libkvmi against the real kernel, in the L1 VM: HYPERCALL events through
 * the library in the three wait modes, reply actions, SET_REGS, the
 * pollable fd and the io_uring loop, vCPUs created later, commands,
 * closing with an event pending, the CR, MSR and XSETBV write events, an
 * injected exception and its delivery status, page access and the
 * PAGE_FAULT event and its SET_CTX reply, zero-copy mappings,
 * kvmi_dom_get_layout() by symbol version, a VM fd or
 * introspection fd passed to another process, attaching to a process that holds a VM fd, and guest
 * discovery (/dev/kvmi): guests coming and going, the queue's overflow,
 * the VMM's UUID and opt-out, and an agent that attaches to a new guest
 * from the same io_uring loop.
 *
 * The tests of the "lib" fixture (events, replies, commands, the loops)
 * run on both transports, the ring and the socket (library 1.8; skipped
 * with a kernel that lacks KVMI_FEATURE_SOCKET); so do two vCPUs served by
 * two threads, and an introspection fd and socket passed by the VMM.
 *
 * The guest comes from the kernel's KVM selftest library (kvm_util); a
 * vCPU thread runs it while the main thread (or a child process) is the
 * tool, using nothing but libkvmi.
 */
#include <poll.h>
#include <pthread.h>
#include <sys/socket.h>
#include <sys/wait.h>

#include <kvmi/kvmi.h>

#include "kselftest_harness.h"
#include "kvm_util.h"
#include "processor.h"
#include "test_util.h"
#include "ucall_common.h"

#define ARG0	0x0123456789abcdefULL
#define ARG1	0x1111222233334444ULL

/*
 * uint64_t hc(nr, a0, a1): the KVMi hypercall (RAX = nr, RBX = a0, RCX =
 * a1); returns RAX and leaves the RBX the guest sees after it in hc_rbx.
 */
uint64_t hc(uint64_t nr, uint64_t a0, uint64_t a1);
uint64_t hc_rbx;

asm(".pushsection .text\n"
	".global hc\n"
	"hc:\n"
	"	push %rbx\n"
	"	mov %rdi, %rax\n"
	"	mov %rsi, %rbx\n"
	"	mov %rdx, %rcx\n"
	"	vmmcall\n"
	"	mov %rbx, hc_rbx(%rip)\n"
	"	pop %rbx\n"
	"	ret\n"
	".popsection\n");

static void guest_code(void)
{
	uint64_t ret = hc(KVM_HC_KVMI, ARG0, ARG1);

	GUEST_SYNC2(ret, hc_rbx);
}

/* One KVM_RUN on a thread. */
struct runner {
	struct kvm_vcpu *vcpu;
	pthread_t thread;
	int ret;
	uint64_t ucall;
	uint64_t args[2];
};

static void *runner_fn(void *arg)
{
	struct runner *r = arg;
	struct ucall uc;

	r->ret = __vcpu_run(r->vcpu);
	if (r->ret || r->vcpu->run->exit_reason != KVM_EXIT_IO)
		return NULL;
	r->ucall = get_ucall(r->vcpu, &uc);
	r->args[0] = uc.args[0];
	r->args[1] = uc.args[1];
	return NULL;
}

static void runner_start(struct runner *r, struct kvm_vcpu *vcpu)
{
	memset(r, 0, sizeof(*r));
	r->vcpu = vcpu;
	TEST_ASSERT(!pthread_create(&r->thread, NULL, runner_fn, r),
		    "pthread_create");
}

#define ASSERT_GUEST_SAW(r, _ret, _rbx) do {				\
	pthread_join((r)->thread, NULL);				\
	ASSERT_EQ(0, (r)->ret);						\
	ASSERT_EQ(UCALL_SYNC, (r)->ucall);				\
	ASSERT_EQ((_ret), (r)->args[0]);				\
	ASSERT_EQ((_rbx), (r)->args[1]);				\
} while (0)

static bool have_kvmi(void)
{
	return kvm_check_cap(KVM_CAP_INTROSPECTION) > 0;
}

/* The kernel announces the socket transport (asked through a ring dom). */
static bool have_socket(int vm_fd)
{
	struct kvmi_dom *dom;
	bool r;

	if (kvmi_dom_open(vm_fd, &dom))
		return false;
	r = kvmi_dom_features(dom) & KVMI_FEATURE_SOCKET;
	kvmi_dom_close(dom);
	return r;
}

FIXTURE(lib) {
	struct kvm_vm *vm;
	struct kvm_vcpu *vcpu;
	struct kvmi_dom *dom;
	struct kvmi_vcpu *v;
	struct runner r;
};

/* Each test of the fixture runs on both transports. */
FIXTURE_VARIANT(lib) {
	uint32_t transport;
};

FIXTURE_VARIANT_ADD(lib, ring) {
	.transport = KVMI_TRANSPORT_RING,
};

FIXTURE_VARIANT_ADD(lib, socket) {
	.transport = KVMI_TRANSPORT_SOCKET,
};

/* A one-vCPU VM with introspection open through the library. */
FIXTURE_SETUP(lib)
{
	TEST_REQUIRE(have_kvmi());
	self->vm = vm_create_with_one_vcpu(&self->vcpu, guest_code);
	ASSERT_EQ(KVMI_VERSION, kvmi_vm_check(self->vm->fd));
	if (variant->transport == KVMI_TRANSPORT_SOCKET) {
		if (!have_socket(self->vm->fd))
			SKIP(return, "no KVMI_FEATURE_SOCKET in this kernel");
		ASSERT_EQ(0, kvmi_dom_open_socket(self->vm->fd, &self->dom));
	} else {
		ASSERT_EQ(0, kvmi_dom_open(self->vm->fd, &self->dom));
	}
	ASSERT_EQ(variant->transport, kvmi_dom_transport(self->dom));
	ASSERT_EQ(1, kvmi_dom_nr_vcpus(self->dom));
	self->v = kvmi_dom_vcpu(self->dom, 0);
	ASSERT_NE(NULL, self->v);
	ASSERT_EQ(NULL, kvmi_dom_vcpu(self->dom, 1));
}

FIXTURE_TEARDOWN(lib)
{
	if (self->dom)
		kvmi_dom_close(self->dom);
	kvm_vm_free(self->vm);
}

static int enable(struct kvmi_dom *dom)
{
	return kvmi_dom_control_event(dom, KVMI_ALL_VCPUS,
				      KVMI_EVENT_HYPERCALL, 1, 0);
}

/* One round trip in @mode on both sides; the guest sees RAX = @rax. */
static void round_trip(struct __test_metadata *_metadata,
		       FIXTURE_DATA(lib) *self,
		       const FIXTURE_VARIANT(lib) *variant, uint32_t mode,
		       uint64_t spin_ns)
{
	struct kvmi_vcpu_counters c;
	struct kvmi_x86_regs regs;
	struct kvmi_event ev;
	struct kvmi_done d;

	ASSERT_EQ(0, kvmi_dom_set_wait_mode(self->dom, KVMI_ALL_VCPUS, mode,
					    spin_ns));
	ASSERT_EQ(0, enable(self->dom));
	runner_start(&self->r, self->vcpu);
	ASSERT_EQ(0, kvmi_vcpu_wait_event(self->v, &ev, -1));
	ASSERT_EQ(KVMI_EVENT_HYPERCALL, ev.id);
	ASSERT_EQ(0, ev.vcpu);
	ASSERT_EQ(KVMI_X86_MODE_PROT64, ev.mode);
	ASSERT_EQ(3, ev.data.hypercall.insn_len);
	ASSERT_EQ(KVM_HC_KVMI, ev.regs.rax);
	ASSERT_EQ(ARG0, ev.regs.rbx);
	ASSERT_EQ(ARG1, ev.regs.rcx);

	regs = ev.regs;
	regs.groups = KVMI_REGS_GPRS;
	regs.rax = 0x1234;
	regs.rbx = 0x5678;
	ASSERT_EQ(0, kvmi_vcpu_reply(self->v, KVMI_ACTION_CONTINUE,
				     KVMI_REPLY_SET_REGS, &regs, NULL));
	ASSERT_GUEST_SAW(&self->r, 0x1234, 0x5678);
	ASSERT_EQ(0, kvmi_vcpu_done(self->v, &d));
	ASSERT_EQ(ev.seq, d.seq);
	ASSERT_EQ(KVMI_DONE_REPLY, d.reason);
	ASSERT_EQ(KVMI_ACTION_CONTINUE, d.action);
	ASSERT_EQ(0, kvmi_vcpu_counters(self->v, &c));
	ASSERT_EQ(1, c.events);
	ASSERT_EQ(1, c.replies);
	if (variant->transport == KVMI_TRANSPORT_SOCKET) {
		/* The socket is the doorbell: those counters stay 0. */
		ASSERT_EQ(0, c.notify_signals);
		ASSERT_EQ(0, c.notify_suppressed);
		ASSERT_EQ(0, c.kicks);
		return;
	}
	if (mode == KVMI_WAIT_POLL) {
		/* Both sides polled: no doorbell rang, no sleep. */
		ASSERT_EQ(0, c.notify_signals);
		ASSERT_EQ(1, c.notify_suppressed);
		ASSERT_EQ(0, c.sleeps);
	}
	if (mode == KVMI_WAIT_BLOCK) {
		/* The tool slept (no KVMI_TOOL_POLLING): the doorbell rang. */
		ASSERT_EQ(1, c.notify_signals);
		ASSERT_EQ(0, c.notify_suppressed);
	}
}

TEST_F(lib, round_trip_block)
{
	round_trip(_metadata, self, variant, KVMI_WAIT_BLOCK, 0);
}

TEST_F(lib, round_trip_hybrid)
{
	round_trip(_metadata, self, variant, KVMI_WAIT_HYBRID, 100000);
}

TEST_F(lib, round_trip_poll)
{
	round_trip(_metadata, self, variant, KVMI_WAIT_POLL, 0);
}

/* CONTINUE without registers: the hypercall returns 0 to the guest. */
TEST_F(lib, continue_returns_zero)
{
	struct kvmi_event ev;

	ASSERT_EQ(0, enable(self->dom));
	runner_start(&self->r, self->vcpu);
	ASSERT_EQ(0, kvmi_vcpu_wait_event(self->v, &ev, -1));
	ASSERT_EQ(0, kvmi_vcpu_reply(self->v, KVMI_ACTION_CONTINUE, 0, NULL,
				     NULL));
	ASSERT_GUEST_SAW(&self->r, 0, ARG0);
}

/* CRASH: KVM_RUN returns to the VMM with a crash system event. */
TEST_F(lib, crash_exits_to_vmm)
{
	struct kvmi_event ev;
	struct kvmi_done d;

	ASSERT_EQ(0, enable(self->dom));
	runner_start(&self->r, self->vcpu);
	ASSERT_EQ(0, kvmi_vcpu_wait_event(self->v, &ev, -1));
	ASSERT_EQ(0, kvmi_vcpu_reply(self->v, KVMI_ACTION_CRASH, 0, NULL,
				     NULL));
	pthread_join(self->r.thread, NULL);
	ASSERT_EQ(0, self->r.ret);
	ASSERT_EQ(KVM_EXIT_SYSTEM_EVENT, self->vcpu->run->exit_reason);
	ASSERT_EQ(KVM_SYSTEM_EVENT_CRASH, self->vcpu->run->system_event.type);
	ASSERT_EQ(0, kvmi_vcpu_done(self->v, &d));
	ASSERT_EQ(KVMI_ACTION_CRASH, d.action);
}

/*
 * An action the event doesn't accept reaches the kernel (the library
 * doesn't second-guess it): default action, counted as a bad reply.
 */
TEST_F(lib, invalid_action_gets_default)
{
	struct kvmi_vcpu_counters c;
	struct kvmi_event ev;
	struct kvmi_done d;

	ASSERT_EQ(0, enable(self->dom));
	runner_start(&self->r, self->vcpu);
	ASSERT_EQ(0, kvmi_vcpu_wait_event(self->v, &ev, -1));
	/* Refused by the library: nothing written, the event still ours. */
	ASSERT_EQ(-EINVAL, kvmi_vcpu_reply(self->v, KVMI_ACTION_CONTINUE,
					   KVMI_REPLY_SET_REGS, NULL, NULL));
	ASSERT_EQ(0, kvmi_vcpu_reply(self->v, KVMI_ACTION_DENY, 0, NULL,
				     NULL));
	ASSERT_GUEST_SAW(&self->r, 0, ARG0);
	ASSERT_EQ(0, kvmi_vcpu_done(self->v, &d));
	ASSERT_EQ(KVMI_DONE_BAD_REPLY, d.reason);
	ASSERT_EQ(0, kvmi_vcpu_counters(self->v, &c));
	ASSERT_EQ(1, c.bad_replies);
}

/* A single-step request is refused unless the kernel announces it. */
TEST_F(lib, singlestep_needs_the_feature)
{
	struct kvmi_event ev;

	if (kvmi_dom_features(self->dom) & KVMI_FEATURE_SINGLESTEP)
		SKIP(return, "this kernel has KVMI_FEATURE_SINGLESTEP");
	ASSERT_EQ(0, enable(self->dom));
	runner_start(&self->r, self->vcpu);
	ASSERT_EQ(0, kvmi_vcpu_wait_event(self->v, &ev, -1));
	ASSERT_EQ(-EOPNOTSUPP, kvmi_vcpu_reply(self->v, KVMI_ACTION_CONTINUE,
					       KVMI_REPLY_SINGLESTEP, NULL,
					       NULL));
	ASSERT_EQ(0, kvmi_vcpu_reply(self->v, KVMI_ACTION_CONTINUE, 0, NULL,
				     NULL));
	ASSERT_GUEST_SAW(&self->r, 0, ARG0);
}

/*
 * vCPU commands: what KVMI_IOCTL_CHECK_COMMAND says, the wrapper does
 * (the kernel's error passed through, or the command served).
 */
/*
 * The hypercall, then single steps through the library (1.5): CONTINUE
 * with KVMI_REPLY_SINGLESTEP steps the instruction after the VMMCALL
 * (hc()'s 7-byte MOV to hc_rbx) and raises SINGLESTEP there; stepping
 * again stops after the 1-byte POP; then the guest runs on.
 */
TEST_F(lib, singlestep_after_hypercall)
{
	const struct kvmi_event_singlestep *ss;
	struct kvmi_event ev;
	uint64_t rip;

	if (!(kvmi_dom_features(self->dom) & KVMI_FEATURE_SINGLESTEP) ||
	    kvmi_dom_check_event(self->dom, KVMI_EVENT_SINGLESTEP))
		SKIP(return, "no KVMI_EVENT_SINGLESTEP in this kernel");
	ASSERT_EQ(0, enable(self->dom));
	runner_start(&self->r, self->vcpu);
	ASSERT_EQ(0, kvmi_vcpu_wait_event(self->v, &ev, -1));
	ASSERT_EQ(KVMI_EVENT_HYPERCALL, ev.id);
	rip = ev.regs.rip;
	ASSERT_EQ(-EINVAL, kvmi_vcpu_reply_singlestep(self->v,
					KVMI_ACTION_CONTINUE, 1));
	ASSERT_EQ(0, kvmi_vcpu_reply(self->v, KVMI_ACTION_CONTINUE,
				     KVMI_REPLY_SINGLESTEP, NULL, NULL));

	ASSERT_EQ(0, kvmi_vcpu_wait_event(self->v, &ev, -1));
	ss = kvmi_event_as_singlestep(&ev);
	ASSERT_NE(NULL, ss);
	ASSERT_EQ(0, ss->failed);
	ASSERT_EQ(rip + 3 + 7, ev.regs.rip);
	ASSERT_EQ(-EINVAL, kvmi_vcpu_reply_singlestep(self->v,
					KVMI_ACTION_ALLOW, 0));
	ASSERT_EQ(0, kvmi_vcpu_reply_singlestep(self->v, KVMI_ACTION_CONTINUE,
						1));

	ASSERT_EQ(0, kvmi_vcpu_wait_event(self->v, &ev, -1));
	ASSERT_NE(NULL, kvmi_event_as_singlestep(&ev));
	ASSERT_EQ(rip + 3 + 7 + 1, ev.regs.rip);
	ASSERT_EQ(0, kvmi_vcpu_reply_singlestep(self->v, KVMI_ACTION_CONTINUE,
						0));
	ASSERT_GUEST_SAW(&self->r, 0, ARG0);
}

TEST_F(lib, commands_follow_check_command)
{
	int check = kvmi_dom_check_command(self->dom, KVMI_CMD_GET_REGISTERS);
	struct kvmi_x86_regs regs;
	struct kvmi_event ev;
	uint8_t mode;
	uint64_t gpa;

	/* No event popped: nothing to run it in. */
	ASSERT_EQ(check ? check : -ENOENT,
		  kvmi_vcpu_get_registers(self->v, &regs, &mode, NULL));
	ASSERT_EQ(0, enable(self->dom));
	runner_start(&self->r, self->vcpu);
	ASSERT_EQ(0, kvmi_vcpu_wait_event(self->v, &ev, -1));
	if (check) {
		ASSERT_EQ(check, kvmi_vcpu_get_registers(self->v, &regs, &mode,
							 NULL));
	} else {
		ASSERT_EQ(0, kvmi_vcpu_get_registers(self->v, &regs, &mode,
						     NULL));
		ASSERT_EQ(KVM_HC_KVMI, regs.rax);
		ASSERT_EQ(ARG0, regs.rbx);
		ASSERT_EQ(KVMI_X86_MODE_PROT64, mode);
	}
	check = kvmi_dom_check_command(self->dom, KVMI_CMD_TRANSLATE_GVA);
	if (check)
		ASSERT_EQ(check, kvmi_vcpu_translate_gva(self->v, 0x1000, &gpa));
	ASSERT_EQ(0, kvmi_vcpu_reply(self->v, KVMI_ACTION_CONTINUE, 0, NULL,
				     NULL));
	ASSERT_GUEST_SAW(&self->r, 0, ARG0);
}

/* The VM-wide wrappers pass what the kernel says. */
TEST_F(lib, vm_wide_wrappers)
{
	struct kvmi_guest_info gi;
	struct kvmi_version ver;
	struct kvmi_layout lo;
	uint8_t buf[8];
	int check, e;

	ASSERT_EQ(0, kvmi_dom_get_version(self->dom, &ver));
	ASSERT_EQ(KVMI_VERSION, ver.version);
	ASSERT_EQ(ver.features, kvmi_dom_features(self->dom));
	ASSERT_EQ(0, kvmi_dom_get_layout(self->dom, &lo));
	ASSERT_EQ(lo.max_vcpus, kvmi_dom_max_vcpus(self->dom));
	ASSERT_EQ(0, kvmi_dom_get_guest_info(self->dom, &gi));
	ASSERT_EQ(1, gi.nr_vcpus);
	ASSERT_EQ(0, kvmi_dom_check_event(self->dom, KVMI_EVENT_HYPERCALL));
	ASSERT_EQ(-EOPNOTSUPP, kvmi_dom_check_event(self->dom, 0x7fff));
	ASSERT_EQ(-ENOENT, kvmi_dom_control_event(self->dom, 5,
						  KVMI_EVENT_HYPERCALL, 1, 0));
	ASSERT_EQ(-EINVAL, kvmi_dom_set_wait_mode(self->dom, 0,
						  KVMI_WAIT_POLL, 1));
	ASSERT_EQ(variant->transport == KVMI_TRANSPORT_SOCKET ? -EOPNOTSUPP :
		  -EINVAL, kvmi_dom_set_doorbells(self->dom, 0, 0, -1, -1));
	/* Not implemented (yet): the wrapper returns what the ioctl does. */
	if (kvmi_dom_check_command(self->dom, KVMI_CMD_READ_PHYSICAL)) {
		struct kvmi_physical p = {
			.size = sizeof(buf),
			.buffer = (uintptr_t)buf,
		};

		ASSERT_EQ(-1, ioctl(kvmi_dom_fd(self->dom),
				    KVMI_IOCTL_READ_PHYSICAL, &p));
		e = errno;
		ASSERT_EQ(-e, kvmi_dom_read_physical(self->dom, 0, buf,
						     sizeof(buf)));
	}
	if (kvmi_dom_check_command(self->dom, KVMI_CMD_SHUTDOWN_GUEST)) {
		struct kvmi_shutdown sd = {};

		ASSERT_EQ(-1, ioctl(kvmi_dom_fd(self->dom),
				    KVMI_IOCTL_SHUTDOWN_GUEST, &sd));
		e = errno;
		ASSERT_EQ(-e, kvmi_dom_shutdown_guest(self->dom));
	}
	/* VMM-only VM ioctls work from the VMM: a deadline of none. */
	check = kvmi_vm_set_deadline(self->vm->fd, 0);
	ASSERT_TRUE(check == 0 || check == -EOPNOTSUPP || check == -ENOTTY);
}

/* kvmi_dom_get_layout() as a tool linked against libkvmi 1.0..1.5 has it. */
int kvmi_dom_get_layout_1_0(struct kvmi_dom *dom, struct kvmi_layout *lo);
__asm__(".symver kvmi_dom_get_layout_1_0, kvmi_dom_get_layout@LIBKVMI_1.0");

/*
 * struct kvmi_layout grew (sva_offset, sva_size): a tool linked against
 * the old symbol version gets the 144 bytes it has room for, never more;
 * the current one gets the whole structure.
 */
TEST_F(lib, get_layout_by_symbol_version)
{
	size_t old = offsetof(struct kvmi_layout, sva_offset);
	struct kvmi_layout lo, now;
	unsigned int i;

	memset(&lo, 0xa5, sizeof(lo));
	ASSERT_EQ(0, kvmi_dom_get_layout_1_0(self->dom, &lo));
	ASSERT_EQ(old, lo.size);
	for (i = old; i < sizeof(lo); i++)
		ASSERT_EQ(0xa5, ((uint8_t *)&lo)[i]);
	ASSERT_EQ(0, kvmi_dom_get_layout(self->dom, &now));
	ASSERT_EQ(0, memcmp(&lo.page_size, &now.page_size,
			    old - offsetof(struct kvmi_layout, page_size)));
	if (kvmi_dom_features(self->dom) & KVMI_FEATURE_SVA) {
		ASSERT_EQ(sizeof(now), now.size);
		ASSERT_NE(0, now.sva_size);
	}
}

static uint64_t sva_data[1024] __attribute__((aligned(4096))) = { 1 };

/*
 * Zero-copy mappings through the library (1.6): a window; a guest page
 * mapped read-only, showing what the guest's memory holds, before and
 * after the mapping; another mapped writable, a write through it seen in
 * the guest's memory; a batch stopped at a bad entry; unmapping.
 */
TEST_F(lib, sva_through_library)
{
	struct kvmi_sva_entry e[3] = {};
	uint64_t *win, *hva, gpa;
	void *p, *addrs[2];
	uint32_t done;
	long ps = getpagesize();

	if (!(kvmi_dom_features(self->dom) & KVMI_FEATURE_SVA)) {
		ASSERT_EQ(-EOPNOTSUPP, kvmi_dom_sva_window(self->dom, ps, 0, &p));
		SKIP(return, "no KVMI_FEATURE_SVA in this kernel");
	}
	ASSERT_EQ(-EINVAL, kvmi_dom_sva_window(self->dom, ps + 1, 0, &p));
	ASSERT_EQ(-EINVAL, kvmi_dom_sva_window(self->dom, 0, 0, &p));
	ASSERT_EQ(0, kvmi_dom_sva_window(self->dom, 4 * ps, 1, &p));
	win = p;
	gpa = addr_gva2gpa(self->vm, (vm_vaddr_t)sva_data);
	hva = addr_gva2hva(self->vm, (vm_vaddr_t)sva_data);
	hva[3] = 0x1234;

	e[0].gpa = gpa;
	e[0].address = (uintptr_t)win;
	e[1].gpa = gpa + ps;
	e[1].address = (uintptr_t)win + ps;
	e[1].flags = KVMI_SVA_WRITE;
	e[2].gpa = gpa + 8;	/* unaligned: stops the batch */
	e[2].address = (uintptr_t)win + 2 * ps;
	ASSERT_EQ(-EINVAL, kvmi_dom_map_pages(self->dom, e, 3, &done));
	ASSERT_EQ(2, done);
	ASSERT_EQ(0x1234, win[3]);
	hva[4] = 0x9abc;
	ASSERT_EQ(0x9abc, win[4]);
	win[512 + 3] = 0x5678;
	ASSERT_EQ(0x5678, hva[512 + 3]);

	addrs[0] = win;
	addrs[1] = win + 512;
	ASSERT_EQ(0, kvmi_dom_unmap_pages(self->dom, addrs, 2, &done));
	ASSERT_EQ(2, done);
	ASSERT_EQ(0, kvmi_dom_sva_window_close(self->dom, p, 4 * ps));
}

static int reply_fn(struct kvmi_vcpu *v, const struct kvmi_event *ev,
		    void *arg)
{
	struct kvmi_x86_regs regs = { .groups = KVMI_REGS_GPRS };
	int *count = arg;

	(*count)++;
	regs = ev->regs;
	regs.groups = KVMI_REGS_GPRS;
	regs.rax = 0x77;
	return kvmi_vcpu_reply(v, KVMI_ACTION_CONTINUE, KVMI_REPLY_SET_REGS,
			       &regs, NULL);
}

/* The tool's own poll() loop over the one pollable fd. */
TEST_F(lib, pollfd_and_dispatch)
{
	struct pollfd p = { .events = POLLIN };
	int count = 0;

	p.fd = kvmi_dom_pollfd(self->dom);
	ASSERT_LE(0, p.fd);
	ASSERT_EQ(0, kvmi_dom_set_wait_mode(self->dom, KVMI_ALL_VCPUS,
					    KVMI_WAIT_BLOCK, 0));
	ASSERT_EQ(0, enable(self->dom));
	runner_start(&self->r, self->vcpu);
	while (!count) {
		ASSERT_EQ(1, poll(&p, 1, -1));
		ASSERT_LE(0, kvmi_dom_dispatch(self->dom, reply_fn, &count));
	}
	ASSERT_EQ(1, count);
	ASSERT_GUEST_SAW(&self->r, 0x77, ARG0);
}

/* The io_uring loop (multishot poll on the doorbells). */
TEST_F(lib, uring_loop)
{
	struct kvmi_uring *loop;
	int count = 0, r;

	ASSERT_EQ(0, kvmi_uring_create(16, &loop));
	ASSERT_EQ(0, kvmi_dom_set_wait_mode(self->dom, KVMI_ALL_VCPUS,
					    KVMI_WAIT_BLOCK, 0));
	ASSERT_EQ(0, enable(self->dom));
	ASSERT_EQ(0, kvmi_uring_add(loop, self->dom, reply_fn, &count));
	runner_start(&self->r, self->vcpu);
	while (!count) {
		r = kvmi_uring_run(loop, -1);
		ASSERT_LE(0, r);
	}
	ASSERT_EQ(1, count);
	ASSERT_GUEST_SAW(&self->r, 0x77, ARG0);
	ASSERT_EQ(0, kvmi_uring_remove(loop, self->dom));
	kvmi_uring_destroy(loop);
}

/* A vCPU created after open: same mappings, a handle, its events. */
TEST_F(lib, vcpu_created_later)
{
	struct kvm_vcpu *vcpu1;
	struct kvmi_vcpu *v1;
	struct kvmi_event ev;
	struct runner r1;

	ASSERT_EQ(0, enable(self->dom));
	vcpu1 = vm_vcpu_add(self->vm, 1, guest_code);
	ASSERT_EQ(2, kvmi_dom_nr_vcpus(self->dom));
	v1 = kvmi_dom_vcpu(self->dom, 1);
	ASSERT_NE(NULL, v1);
	ASSERT_EQ(1, kvmi_vcpu_index(v1));
	runner_start(&r1, vcpu1);
	ASSERT_EQ(0, kvmi_vcpu_wait_event(v1, &ev, -1));
	ASSERT_EQ(1, ev.vcpu);
	ASSERT_EQ(0, kvmi_vcpu_reply(v1, KVMI_ACTION_CONTINUE, 0, NULL, NULL));
	ASSERT_GUEST_SAW(&r1, 0, ARG0);
}

/* Closing with an event popped and not answered releases the vCPU. */
TEST_F(lib, close_answers_pending_event)
{
	struct kvmi_event ev;

	ASSERT_EQ(0, kvmi_dom_set_wait_mode(self->dom, KVMI_ALL_VCPUS,
					    KVMI_WAIT_BLOCK, 0));
	ASSERT_EQ(0, enable(self->dom));
	runner_start(&self->r, self->vcpu);
	ASSERT_EQ(0, kvmi_vcpu_wait_event(self->v, &ev, -1));
	ASSERT_EQ(0, kvmi_dom_close(self->dom));
	self->dom = NULL;
	ASSERT_GUEST_SAW(&self->r, 0, ARG0);
	/* Introspection ended: it can be opened again. */
	ASSERT_EQ(0, kvmi_dom_open(self->vm->fd, &self->dom));
}

/* Commands in an event, then the reply: the guest sees both. */
TEST_F(lib, command_then_reply)
{
	struct kvmi_x86_regs regs;
	struct kvmi_event ev;

	if (kvmi_dom_check_command(self->dom, KVMI_CMD_SET_REGISTERS))
		SKIP(return, "no KVMI_CMD_SET_REGISTERS in this kernel");
	ASSERT_EQ(0, enable(self->dom));
	runner_start(&self->r, self->vcpu);
	ASSERT_EQ(0, kvmi_vcpu_wait_event(self->v, &ev, -1));
	ASSERT_EQ(0, kvmi_vcpu_get_registers(self->v, &regs, NULL, NULL));
	ASSERT_EQ(ev.regs.rip, regs.rip);
	ASSERT_EQ(ARG0, regs.rbx);
	regs.groups = KVMI_REGS_GPRS;
	regs.rbx = 0x4242;
	ASSERT_EQ(0, kvmi_vcpu_set_registers(self->v, &regs));
	ASSERT_EQ(0, kvmi_vcpu_get_registers(self->v, &regs, NULL, NULL));
	ASSERT_EQ(0x4242, regs.rbx);
	/* A register group the kernel refuses: its error, passed through. */
	regs.groups = 0x80;
	ASSERT_EQ(-EINVAL, kvmi_vcpu_set_registers(self->v, &regs));
	ASSERT_EQ(0, kvmi_vcpu_reply(self->v, KVMI_ACTION_CONTINUE, 0, NULL,
				     NULL));
	ASSERT_GUEST_SAW(&self->r, 0, 0x4242);
}

/* One vCPU's tool thread: its event, a command in it, a reply. */
struct vcpu_server {
	struct kvmi_vcpu *v;
	pthread_t thread;
	bool regs;		/* KVMI_CMD_GET_REGISTERS is there */
	int err;
};

static void *serve_one(void *arg)
{
	struct vcpu_server *sv = arg;
	struct kvmi_x86_regs regs;
	struct kvmi_event ev;
	uint32_t idx = kvmi_vcpu_index(sv->v);

	sv->err = kvmi_vcpu_wait_event(sv->v, &ev, -1);
	if (sv->err)
		return NULL;
	sv->err = -EBADMSG;
	if (ev.id != KVMI_EVENT_HYPERCALL || ev.vcpu != idx ||
	    ev.regs.rbx != ARG0)
		return NULL;
	if (sv->regs) {
		sv->err = kvmi_vcpu_get_registers(sv->v, &regs, NULL, NULL);
		if (sv->err)
			return NULL;
		sv->err = -EBADMSG;
		if (regs.rip != ev.regs.rip || regs.rbx != ARG0)
			return NULL;
	}
	regs = ev.regs;
	regs.groups = KVMI_REGS_GPRS;
	regs.rax = 0x100 + idx;
	sv->err = kvmi_vcpu_reply(sv->v, KVMI_ACTION_CONTINUE,
				  KVMI_REPLY_SET_REGS, &regs, NULL);
	return NULL;
}

/*
 * Two vCPUs, a tool thread each, their events raised at the same time:
 * each thread gets its own vCPU's event and command result (on the
 * socket, whichever thread reads a message keeps it for its vCPU), and
 * each vCPU its own reply.
 */
TEST_F(lib, two_vcpus_on_two_threads)
{
	struct vcpu_server sv[2];
	struct kvm_vcpu *vcpu1;
	struct runner r1;
	int i;

	ASSERT_EQ(0, kvmi_dom_set_wait_mode(self->dom, KVMI_ALL_VCPUS,
					    KVMI_WAIT_BLOCK, 0));
	ASSERT_EQ(0, enable(self->dom));
	vcpu1 = vm_vcpu_add(self->vm, 1, guest_code);
	ASSERT_EQ(2, kvmi_dom_nr_vcpus(self->dom));
	for (i = 0; i < 2; i++) {
		sv[i].v = kvmi_dom_vcpu(self->dom, i);
		ASSERT_NE(NULL, sv[i].v);
		sv[i].regs = !kvmi_dom_check_command(self->dom,
						     KVMI_CMD_GET_REGISTERS);
		ASSERT_EQ(0, pthread_create(&sv[i].thread, NULL, serve_one,
					    &sv[i]));
	}
	runner_start(&self->r, self->vcpu);
	runner_start(&r1, vcpu1);
	for (i = 0; i < 2; i++) {
		pthread_join(sv[i].thread, NULL);
		ASSERT_EQ(0, sv[i].err);
	}
	ASSERT_GUEST_SAW(&self->r, 0x100, ARG0);
	ASSERT_GUEST_SAW(&r1, 0x101, ARG0);
}

/*
 * The VMM's deadline ends the event before the tool replies: the guest
 * goes on with the default action, and the late reply is harmless (the
 * library leaves it out on the socket; the kernel ignores it on the
 * ring): the introspection goes on.
 */
TEST_F(lib, reply_after_the_deadline)
{
	struct kvmi_event ev;
	struct kvmi_done d;
	int r;

	r = kvmi_vm_set_deadline(self->vm->fd, 1000000);
	if (r == -EOPNOTSUPP || r == -ENOTTY)
		SKIP(return, "no KVM_INTROSPECTION_SET_DEADLINE in this kernel");
	ASSERT_EQ(0, r);
	ASSERT_EQ(0, kvmi_dom_set_wait_mode(self->dom, KVMI_ALL_VCPUS,
					    KVMI_WAIT_BLOCK, 0));
	ASSERT_EQ(0, enable(self->dom));
	runner_start(&self->r, self->vcpu);
	ASSERT_EQ(0, kvmi_vcpu_wait_event(self->v, &ev, -1));
	/* Not answered: the vCPU leaves at the deadline. */
	ASSERT_GUEST_SAW(&self->r, 0, ARG0);
	ASSERT_EQ(0, kvmi_vcpu_done(self->v, &d));
	ASSERT_EQ(ev.seq, d.seq);
	ASSERT_EQ(KVMI_DONE_DEADLINE, d.reason);
	ASSERT_EQ(0, kvmi_vcpu_reply(self->v, KVMI_ACTION_CONTINUE, 0, NULL,
				     NULL));
	ASSERT_EQ(-ENOENT, kvmi_vcpu_reply(self->v, KVMI_ACTION_CONTINUE, 0,
					   NULL, NULL));
	ASSERT_EQ(0, kvmi_vm_set_deadline(self->vm->fd, 0));
	ASSERT_FALSE(kvmi_dom_state_flags(self->dom) & KVMI_VM_DETACHED);
	ASSERT_EQ(0, kvmi_dom_control_event(self->dom, KVMI_ALL_VCPUS,
					    KVMI_EVENT_HYPERCALL, 0, 0));
}

/* What each transport gives and refuses. */
TEST_F(lib, what_the_transport_gives)
{
	struct kvmi_dom *other;
	int fd;

	/* Only one introspection per VM, whatever the transport. */
	ASSERT_EQ(-EBUSY, kvmi_dom_open(self->vm->fd, &other));
	if (kvmi_dom_features(self->dom) & KVMI_FEATURE_SOCKET)
		ASSERT_EQ(-EBUSY, kvmi_dom_open_socket(self->vm->fd, &other));
	fd = kvmi_vcpu_own_doorbell(self->v);
	if (variant->transport == KVMI_TRANSPORT_RING) {
		ASSERT_LE(0, fd);
		ASSERT_EQ(0, kvmi_vcpu_set_tool_mode(self->v, KVMI_WAIT_POLL,
						     0));
		return;
	}
	ASSERT_EQ(-EOPNOTSUPP, fd);
	ASSERT_EQ(-EOPNOTSUPP, kvmi_vcpu_set_tool_mode(self->v, KVMI_WAIT_POLL,
						       0));
	ASSERT_EQ(0, kvmi_vcpu_set_tool_mode(self->v, KVMI_WAIT_HYBRID, 1000));
	/* The vCPU side may still spin: the kernel's copy of the reply. */
	ASSERT_EQ(0, kvmi_dom_set_wait_mode(self->dom, KVMI_ALL_VCPUS,
					    KVMI_WAIT_POLL, 0));
}

/* A guest that counts until told to stop. */
static volatile uint64_t guest_count, guest_stop;

static void guest_loop(void)
{
	while (!guest_stop)
		guest_count++;
	GUEST_SYNC2(guest_count, 0);
}

/* PAUSE_VCPU through the library: the PAUSE event, commands, UNPAUSE. */
TEST(pause_event)
{
	volatile uint64_t *count, *stop;
	struct kvm_vcpu *vcpu;
	struct kvmi_x86_regs regs;
	struct kvmi_event ev;
	struct kvmi_vcpu *v;
	struct kvmi_dom *dom;
	struct kvmi_done d;
	struct kvm_vm *vm;
	struct runner r;
	uint64_t c0;

	TEST_REQUIRE(have_kvmi());
	vm = vm_create_with_one_vcpu(&vcpu, guest_loop);
	count = addr_gva2hva(vm, (vm_vaddr_t)&guest_count);
	stop = addr_gva2hva(vm, (vm_vaddr_t)&guest_stop);
	ASSERT_EQ(0, kvmi_dom_open(vm->fd, &dom));
	v = kvmi_dom_vcpu(dom, 0);
	if (kvmi_dom_check_command(dom, KVMI_CMD_PAUSE_VCPU))
		SKIP(goto out, "no KVMI_IOCTL_PAUSE_VCPU in this kernel");
	runner_start(&r, vcpu);
	while (!*count)
		;

	/* Paused: its event, commands in it, the reply resumes it. */
	ASSERT_EQ(0, kvmi_dom_pause_vcpu(dom, 0));
	ASSERT_EQ(0, kvmi_vcpu_wait_event(v, &ev, -1));
	ASSERT_EQ(KVMI_EVENT_PAUSE, ev.id);
	if (!kvmi_dom_check_command(dom, KVMI_CMD_GET_REGISTERS)) {
		ASSERT_EQ(0, kvmi_vcpu_get_registers(v, &regs, NULL, NULL));
		ASSERT_EQ(ev.regs.rip, regs.rip);
	}
	c0 = *count;
	ASSERT_EQ(0, kvmi_vcpu_reply(v, KVMI_ACTION_CONTINUE, 0, NULL, NULL));
	while (*count == c0)
		;
	ASSERT_EQ(0, kvmi_vcpu_done(v, &d));
	ASSERT_EQ(ev.seq, d.seq);
	ASSERT_EQ(KVMI_DONE_REPLY, d.reason);

	/* Paused again, then unpaused without a reply. */
	ASSERT_EQ(0, kvmi_dom_pause_all(dom));
	ASSERT_EQ(0, kvmi_vcpu_wait_event(v, &ev, -1));
	ASSERT_EQ(KVMI_EVENT_PAUSE, ev.id);
	ASSERT_EQ(0, kvmi_dom_unpause(dom, KVMI_ALL_VCPUS));
	while (kvmi_vcpu_done(v, &d) || d.seq != ev.seq)
		;
	ASSERT_EQ(KVMI_DONE_UNPAUSE, d.reason);
	/* The late reply is harmless (the kernel ignores it). */
	ASSERT_EQ(0, kvmi_vcpu_reply(v, KVMI_ACTION_CONTINUE, 0, NULL, NULL));

	*stop = 1;
	pthread_join(r.thread, NULL);
	ASSERT_EQ(0, r.ret);
	ASSERT_EQ(UCALL_SYNC, r.ucall);
out:
	kvmi_dom_close(dom);
	kvm_vm_free(vm);
}

static void guest_int3(void)
{
	asm volatile("int3");
	GUEST_SYNC2(1, 0);
}

/* BREAKPOINT: RETRY executes the INT3 again, CONTINUE skips it. */
TEST(breakpoint_retry_then_continue)
{
	struct kvm_vcpu *vcpu;
	struct kvmi_event ev, ev2;
	struct kvmi_vcpu *v;
	struct kvmi_dom *dom;
	struct kvm_vm *vm;
	struct runner r;

	TEST_REQUIRE(have_kvmi());
	vm = vm_create_with_one_vcpu(&vcpu, guest_int3);
	ASSERT_EQ(0, kvmi_dom_open(vm->fd, &dom));
	v = kvmi_dom_vcpu(dom, 0);
	if (kvmi_dom_check_event(dom, KVMI_EVENT_BREAKPOINT))
		SKIP(goto out, "no KVMI_EVENT_BREAKPOINT in this kernel");
	ASSERT_EQ(0, kvmi_dom_control_event(dom, 0, KVMI_EVENT_BREAKPOINT, 1,
					    0));
	runner_start(&r, vcpu);
	ASSERT_EQ(0, kvmi_vcpu_wait_event(v, &ev, -1));
	ASSERT_EQ(KVMI_EVENT_BREAKPOINT, ev.id);
	ASSERT_EQ(1, ev.data.breakpoint.insn_len);
	ASSERT_EQ(ev.regs.rip, ev.data.breakpoint.gva);
	ASSERT_EQ(0, kvmi_vcpu_reply(v, KVMI_ACTION_RETRY, 0, NULL, NULL));
	ASSERT_EQ(0, kvmi_vcpu_wait_event(v, &ev2, -1));
	ASSERT_EQ(KVMI_EVENT_BREAKPOINT, ev2.id);
	ASSERT_NE(ev.seq, ev2.seq);
	ASSERT_EQ(ev.regs.rip, ev2.regs.rip);
	ASSERT_EQ(0, kvmi_vcpu_reply(v, KVMI_ACTION_CONTINUE, 0, NULL, NULL));
	ASSERT_GUEST_SAW(&r, 1, 0);
out:
	kvmi_dom_close(dom);
	kvm_vm_free(vm);
}

#define LSTAR_OLD	0xffffffff81000000ULL
#define LSTAR_NEW	0xffffffff8badc0deULL

static uint64_t guest_lstar, guest_eip, guest_cr4;

static void guest_writes(void)
{
	wrmsr(MSR_LSTAR, LSTAR_NEW);
	wrmsr(MSR_IA32_SYSENTER_EIP, 0x1234);
	set_cr4(get_cr4() | X86_CR4_PCE);
	guest_lstar = rdmsr(MSR_LSTAR);
	guest_eip = rdmsr(MSR_IA32_SYSENTER_EIP);
	guest_cr4 = get_cr4();
	GUEST_SYNC2(1, 0);
}

/*
 * CR and MSR write events through the library's helpers: per register,
 * typed data, DENY (the guest sees the old value), ALLOW with the tool's
 * value (the guest sees it), a reply for the wrong event refused.
 */
TEST(cr_and_msr_writes)
{
	struct kvmi_x86_regs regs = { .groups = KVMI_REGS_RIP };
	const struct kvmi_event_msr *msr;
	const struct kvmi_event_cr *cr;
	struct kvm_vcpu *vcpu;
	struct kvmi_event ev;
	struct kvmi_vcpu *v;
	struct kvmi_dom *dom;
	struct kvm_vm *vm;
	struct runner r;
	uint64_t cr4;

	TEST_REQUIRE(have_kvmi());
	vm = vm_create_with_one_vcpu(&vcpu, guest_writes);
	vcpu_set_msr(vcpu, MSR_LSTAR, LSTAR_OLD);
	ASSERT_EQ(0, kvmi_dom_open(vm->fd, &dom));
	v = kvmi_dom_vcpu(dom, 0);
	if (kvmi_dom_check_event(dom, KVMI_EVENT_CR) ||
	    kvmi_dom_check_event(dom, KVMI_EVENT_MSR))
		SKIP(goto out, "no KVMI_EVENT_CR/MSR in this kernel");
	ASSERT_EQ(-EINVAL, kvmi_dom_control_cr(dom, 0, 8, 1));
	ASSERT_EQ(-EINVAL, kvmi_dom_control_msr(dom, 0, 0x40000000, 1));
	ASSERT_EQ(-ENOENT, kvmi_dom_control_cr(dom, 1, 4, 1));
	ASSERT_EQ(0, kvmi_dom_control_msr(dom, KVMI_ALL_VCPUS, MSR_LSTAR, 1));
	ASSERT_EQ(0, kvmi_dom_control_msr(dom, 0, MSR_IA32_SYSENTER_EIP, 1));
	ASSERT_EQ(0, kvmi_dom_control_cr(dom, 0, 4, 1));
	/* CR0 on and off again: not reported (the guest doesn't write it). */
	ASSERT_EQ(0, kvmi_dom_control_cr(dom, 0, 0, 1));
	ASSERT_EQ(0, kvmi_dom_control_cr(dom, 0, 0, 0));
	runner_start(&r, vcpu);

	ASSERT_EQ(0, kvmi_vcpu_wait_event(v, &ev, -1));
	msr = kvmi_event_as_msr(&ev);
	ASSERT_NE(NULL, msr);
	ASSERT_EQ(NULL, kvmi_event_as_cr(&ev));
	ASSERT_EQ(MSR_LSTAR, msr->msr);
	ASSERT_EQ(LSTAR_OLD, msr->old_value);
	ASSERT_EQ(LSTAR_NEW, msr->new_value);
	ASSERT_EQ(-EINVAL, kvmi_vcpu_reply_cr(v, KVMI_ACTION_DENY, 0, NULL));
	ASSERT_EQ(-EINVAL, kvmi_vcpu_reply_msr(v, KVMI_ACTION_DENY, 0, &regs));
	ASSERT_EQ(0, kvmi_vcpu_reply_msr(v, KVMI_ACTION_DENY, 0, NULL));

	ASSERT_EQ(0, kvmi_vcpu_wait_event(v, &ev, -1));
	msr = kvmi_event_as_msr(&ev);
	ASSERT_NE(NULL, msr);
	ASSERT_EQ(MSR_IA32_SYSENTER_EIP, msr->msr);
	ASSERT_EQ(0x1234, msr->new_value);
	ASSERT_EQ(0, kvmi_vcpu_reply_msr(v, KVMI_ACTION_ALLOW, 0x5678, NULL));

	ASSERT_EQ(0, kvmi_vcpu_wait_event(v, &ev, -1));
	cr = kvmi_event_as_cr(&ev);
	ASSERT_NE(NULL, cr);
	ASSERT_EQ(NULL, kvmi_event_as_msr(&ev));
	ASSERT_EQ(4, cr->cr);
	cr4 = cr->old_value;
	ASSERT_EQ(0, cr4 & (X86_CR4_PCE | X86_CR4_TSD));
	ASSERT_EQ(cr4 | X86_CR4_PCE, cr->new_value);
	ASSERT_EQ(0, kvmi_vcpu_reply_cr(v, KVMI_ACTION_ALLOW,
					cr->new_value | X86_CR4_TSD, NULL));

	ASSERT_GUEST_SAW(&r, 1, 0);
	ASSERT_EQ(LSTAR_OLD, *(uint64_t *)addr_gva2hva(vm, (vm_vaddr_t)&guest_lstar));
	ASSERT_EQ(0x5678, *(uint64_t *)addr_gva2hva(vm, (vm_vaddr_t)&guest_eip));
	ASSERT_EQ(cr4 | X86_CR4_PCE | X86_CR4_TSD,
		  *(uint64_t *)addr_gva2hva(vm, (vm_vaddr_t)&guest_cr4));
out:
	kvmi_dom_close(dom);
	kvm_vm_free(vm);
}

static void guest_xsetbv(void)
{
	uint64_t xcr0;

	set_cr4(get_cr4() | X86_CR4_OSXSAVE);
	xcr0 = xgetbv(0) | XFEATURE_MASK_SSE;
	asm volatile("xsetbv" : : "a"((uint32_t)xcr0),
		     "d"((uint32_t)(xcr0 >> 32)), "c"(0) : "memory");
	xcr0 = xgetbv(0) | XFEATURE_MASK_SSE;
	asm volatile("xsetbv" : : "a"((uint32_t)xcr0),
		     "d"((uint32_t)(xcr0 >> 32)), "c"(0) : "memory");
	GUEST_SYNC2(xgetbv(0), 0);
}

/*
 * XSETBV through the library (1.3): the data decoded; the first write
 * kept out by CONTINUE with the old value in EDX:EAX (there is no DENY),
 * the second one let through; the guest sees XCR0 as the replies left it.
 */
TEST(xsetbv_through_library)
{
	const struct kvmi_event_xsetbv *x;
	struct kvmi_x86_regs regs;
	struct kvm_vcpu *vcpu;
	struct kvmi_event ev;
	struct kvmi_vcpu *v;
	struct kvmi_dom *dom;
	struct kvm_vm *vm;
	struct runner r;
	uint64_t old;

	TEST_REQUIRE(have_kvmi());
	TEST_REQUIRE(kvm_cpu_has(X86_FEATURE_XSAVE));
	vm = vm_create_with_one_vcpu(&vcpu, guest_xsetbv);
	ASSERT_EQ(0, kvmi_dom_open(vm->fd, &dom));
	v = kvmi_dom_vcpu(dom, 0);
	if (kvmi_dom_check_event(dom, KVMI_EVENT_XSETBV))
		SKIP(goto out, "no KVMI_EVENT_XSETBV in this kernel");
	ASSERT_EQ(0, kvmi_dom_control_event(dom, KVMI_ALL_VCPUS,
					    KVMI_EVENT_XSETBV, 1, 0));
	runner_start(&r, vcpu);

	ASSERT_EQ(0, kvmi_vcpu_wait_event(v, &ev, -1));
	x = kvmi_event_as_xsetbv(&ev);
	ASSERT_NE(NULL, x);
	ASSERT_EQ(NULL, kvmi_event_as_cr(&ev));
	ASSERT_EQ(0, x->xcr);
	old = x->old_value;
	ASSERT_TRUE(old & XFEATURE_MASK_FP);
	ASSERT_EQ(0, old & XFEATURE_MASK_SSE);
	ASSERT_EQ(old | XFEATURE_MASK_SSE, x->new_value);
	ASSERT_EQ(-EINVAL, kvmi_vcpu_reply_xsetbv(v, KVMI_ACTION_DENY, NULL));
	ASSERT_EQ(-EINVAL, kvmi_vcpu_reply_cr(v, KVMI_ACTION_CONTINUE, 0,
					      NULL));
	regs = ev.regs;
	regs.groups = KVMI_REGS_GPRS;
	regs.rax = (uint32_t)old;
	regs.rdx = old >> 32;
	ASSERT_EQ(0, kvmi_vcpu_reply_xsetbv(v, KVMI_ACTION_CONTINUE, &regs));

	/* The second XSETBV: the first one did not change XCR0. */
	ASSERT_EQ(0, kvmi_vcpu_wait_event(v, &ev, -1));
	x = kvmi_event_as_xsetbv(&ev);
	ASSERT_NE(NULL, x);
	ASSERT_EQ(old, x->old_value);
	ASSERT_EQ(0, kvmi_vcpu_reply_xsetbv(v, KVMI_ACTION_CONTINUE, NULL));
	ASSERT_GUEST_SAW(&r, old | XFEATURE_MASK_SSE, 0);
out:
	kvmi_dom_close(dom);
	kvm_vm_free(vm);
}

static int guest_exceptions;
static uint64_t guest_vector;

static void guest_ex_handler(struct ex_regs *regs)
{
	WRITE_ONCE(guest_exceptions, guest_exceptions + 1);
	WRITE_ONCE(guest_vector, regs->vector);
}

static void guest_inject(void)
{
	hc(KVM_HC_KVMI, 0, 0);
	GUEST_SYNC2(READ_ONCE(guest_exceptions), READ_ONCE(guest_vector));
}

/*
 * An exception injected through the library (1.3): queued while the vCPU
 * waits, unknown until the vCPU enters the guest, then DELIVERED; the
 * guest's handler saw it once.
 */
TEST(inject_exception_and_status)
{
	struct kvm_vcpu *vcpu;
	struct kvmi_event ev;
	struct kvmi_vcpu *v;
	struct kvmi_dom *dom;
	struct kvm_vm *vm;
	struct runner r;

	TEST_REQUIRE(have_kvmi());
	vm = vm_create_with_one_vcpu(&vcpu, guest_inject);
	vm_install_exception_handler(vm, UD_VECTOR, guest_ex_handler);
	ASSERT_EQ(0, kvmi_dom_open(vm->fd, &dom));
	v = kvmi_dom_vcpu(dom, 0);
	if (kvmi_dom_check_command(dom, KVMI_CMD_INJECT_EXCEPTION) ||
	    !(kvmi_dom_features(dom) & KVMI_FEATURE_INJECT_STATUS))
		SKIP(goto out, "no INJECT_EXCEPTION status in this kernel");
	ASSERT_EQ(-ENOENT, kvmi_vcpu_inject_status(v));
	ASSERT_EQ(0, enable(dom));
	runner_start(&r, vcpu);

	ASSERT_EQ(0, kvmi_vcpu_wait_event(v, &ev, -1));
	ASSERT_EQ(KVMI_EVENT_HYPERCALL, ev.id);
	ASSERT_EQ(-EINVAL, kvmi_vcpu_inject_exception(v, NMI_VECTOR, 0, 0, 0));
	ASSERT_EQ(-ENOENT, kvmi_vcpu_inject_status(v));
	ASSERT_EQ(0, kvmi_vcpu_inject_exception(v, UD_VECTOR, 0, 0, 0));
	ASSERT_EQ(0, kvmi_vcpu_inject_status(v));
	ASSERT_EQ(-EBUSY, kvmi_vcpu_inject_exception(v, GP_VECTOR, 0, 0, 0));
	ASSERT_EQ(0, kvmi_vcpu_reply(v, KVMI_ACTION_CONTINUE, 0, NULL, NULL));
	ASSERT_GUEST_SAW(&r, 1, UD_VECTOR);
	ASSERT_EQ(KVMI_INJECT_DELIVERED, kvmi_vcpu_inject_status(v));
out:
	kvmi_dom_close(dom);
	kvm_vm_free(vm);
}

static uint64_t pf_page[512] __attribute__((aligned(4096))) = { 1 };
static uint64_t pf_seen[3];

static void guest_pf(void)
{
	int i;

	for (i = 0; i < 3; i++) {
		WRITE_ONCE(pf_page[7], 0x1000 + i);
		pf_seen[i] = READ_ONCE(pf_page[7]);
	}
	GUEST_SYNC2(1, 0);
}

/*
 * Page access and PAGE_FAULT through the library (1.4): the page's write
 * right taken away in a batch of one; the first store denied with
 * EMUL_NOWRITE (the guest reads the old value back), or, without
 * KVMI_FEATURE_PF_EMULATION, let through once with ALLOW; at the second
 * the rights are given back and RETRY runs it again, unrestricted; the
 * third raises no event.
 */
TEST(page_fault_through_library)
{
	const struct kvmi_event_page_fault *pf;
	struct kvmi_page_access_entry e = {};
	struct kvm_vcpu *vcpu;
	struct kvmi_event ev;
	struct kvmi_vcpu *v;
	struct kvmi_dom *dom;
	struct kvm_vm *vm;
	struct runner r;
	uint64_t gpa, bad = 1ULL << 50, two[2];
	uint64_t *seen, first;
	uint32_t done;
	bool emul;

	TEST_REQUIRE(have_kvmi());
	vm = vm_create_with_one_vcpu(&vcpu, guest_pf);
	ASSERT_EQ(0, kvmi_dom_open(vm->fd, &dom));
	v = kvmi_dom_vcpu(dom, 0);
	if (kvmi_dom_check_event(dom, KVMI_EVENT_PAGE_FAULT) ||
	    kvmi_dom_check_command(dom, KVMI_CMD_SET_PAGE_ACCESS))
		SKIP(goto out, "no PAGE_FAULT in this kernel");
	emul = kvmi_dom_features(dom) & KVMI_FEATURE_PF_EMULATION;
	gpa = addr_gva2gpa(vm, (vm_vaddr_t)pf_page);
	*(uint64_t *)addr_gva2hva(vm, (vm_vaddr_t)&pf_page[7]) = 0x55;
	ASSERT_EQ(-ENOENT, kvmi_dom_set_pages_access(dom, &bad, 1,
						     KVMI_PAGE_ACCESS_R, &done));
	ASSERT_EQ(0, done);
	/* The page before the bad one gets its rights all the same. */
	two[0] = gpa;
	two[1] = bad;
	ASSERT_EQ(-ENOENT, kvmi_dom_set_pages_access(dom, two, 2,
						     KVMI_PAGE_ACCESS_R |
						     KVMI_PAGE_ACCESS_X, &done));
	ASSERT_EQ(1, done);
	e.gpa = gpa;
	ASSERT_EQ(0, kvmi_dom_get_page_access(dom, &e, 1, &done));
	ASSERT_EQ(KVMI_PAGE_ACCESS_R | KVMI_PAGE_ACCESS_X, e.access);
	ASSERT_EQ(0, kvmi_dom_set_pages_access(dom, &gpa, 1, 7, NULL));
	ASSERT_EQ(0, kvmi_dom_control_event(dom, KVMI_ALL_VCPUS,
					    KVMI_EVENT_PAGE_FAULT, 1, 0));
	ASSERT_EQ(0, kvmi_dom_set_pages_access(dom, &gpa, 1,
					       KVMI_PAGE_ACCESS_R |
					       KVMI_PAGE_ACCESS_X, &done));
	ASSERT_EQ(1, done);
	e.gpa = gpa;
	ASSERT_EQ(0, kvmi_dom_get_page_access(dom, &e, 1, &done));
	ASSERT_EQ(KVMI_PAGE_ACCESS_R | KVMI_PAGE_ACCESS_X, e.access);
	runner_start(&r, vcpu);

	ASSERT_EQ(0, kvmi_vcpu_wait_event(v, &ev, -1));
	pf = kvmi_event_as_page_fault(&ev);
	ASSERT_NE(NULL, pf);
	ASSERT_EQ(gpa + 7 * 8, pf->gpa);
	ASSERT_EQ(KVMI_PAGE_ACCESS_W, pf->access);
	if (pf->flags & KVMI_PF_GVA_VALID)
		ASSERT_EQ((uint64_t)&pf_page[7], pf->gva);
	ASSERT_EQ(-EINVAL, kvmi_vcpu_reply_page_fault(v, KVMI_ACTION_DENY,
						      NULL));
	ASSERT_EQ(-EINVAL, kvmi_vcpu_reply_page_fault(v, KVMI_ACTION_NOEMU,
						      NULL));
	if (emul) {
		ASSERT_EQ(0, kvmi_vcpu_reply_page_fault(v,
					KVMI_ACTION_EMUL_NOWRITE, NULL));
		first = 0x55;
	} else {
		ASSERT_EQ(-EOPNOTSUPP, kvmi_vcpu_reply_page_fault(v,
					KVMI_ACTION_EMUL_NOWRITE, NULL));
		ASSERT_EQ(0, kvmi_vcpu_reply_page_fault(v, KVMI_ACTION_ALLOW,
							NULL));
		first = 0x1000;
	}

	ASSERT_EQ(0, kvmi_vcpu_wait_event(v, &ev, -1));
	pf = kvmi_event_as_page_fault(&ev);
	ASSERT_NE(NULL, pf);
	ASSERT_EQ(gpa + 7 * 8, pf->gpa);
	/* Free the page, run the store again: no third event. */
	ASSERT_EQ(0, kvmi_dom_set_pages_access(dom, &gpa, 1, 7, NULL));
	ASSERT_EQ(0, kvmi_vcpu_reply_page_fault(v, KVMI_ACTION_RETRY, NULL));

	ASSERT_GUEST_SAW(&r, 1, 0);
	seen = addr_gva2hva(vm, (vm_vaddr_t)pf_seen);
	ASSERT_EQ(first, seen[0]);
	ASSERT_EQ(0x1001, seen[1]);
	ASSERT_EQ(0x1002, seen[2]);
out:
	kvmi_dom_close(dom);
	kvm_vm_free(vm);
}

static uint64_t ctx_page[512] __attribute__((aligned(4096)));

static void guest_ctx(void)
{
	asm volatile("addq $5, %0" : "+m"(ctx_page[3]));
	GUEST_SYNC2(1, READ_ONCE(ctx_page[3]));
}

/*
 * SET_CTX through the library (KVMI_FEATURE_PF_CTX): the read of the
 * guest's ADD to a write-restricted page returns the tool's bytes, so the
 * page gets the tool's value plus 5; RIP can't be set with it.
 */
TEST(page_fault_set_ctx_through_library)
{
	const struct kvmi_event_page_fault *pf;
	struct kvmi_x86_regs regs = {};
	struct kvmi_vcpu_counters c;
	uint64_t gpa, tool = 0x7000;
	struct kvm_vcpu *vcpu;
	struct kvmi_event ev;
	struct kvmi_vcpu *v;
	struct kvmi_dom *dom;
	struct kvm_vm *vm;
	struct runner r;

	TEST_REQUIRE(have_kvmi());
	vm = vm_create_with_one_vcpu(&vcpu, guest_ctx);
	ASSERT_EQ(0, kvmi_dom_open(vm->fd, &dom));
	v = kvmi_dom_vcpu(dom, 0);
	if (kvmi_dom_check_event(dom, KVMI_EVENT_PAGE_FAULT) ||
	    !(kvmi_dom_features(dom) & KVMI_FEATURE_PF_CTX))
		SKIP(goto out, "no KVMI_FEATURE_PF_CTX in this kernel");
	gpa = addr_gva2gpa(vm, (vm_vaddr_t)ctx_page);
	*(uint64_t *)addr_gva2hva(vm, (vm_vaddr_t)&ctx_page[3]) = 0x100;
	ASSERT_EQ(0, kvmi_dom_control_event(dom, KVMI_ALL_VCPUS,
					    KVMI_EVENT_PAGE_FAULT, 1, 0));
	ASSERT_EQ(0, kvmi_dom_set_pages_access(dom, &gpa, 1,
					       KVMI_PAGE_ACCESS_R |
					       KVMI_PAGE_ACCESS_X, NULL));
	runner_start(&r, vcpu);

	ASSERT_EQ(0, kvmi_vcpu_wait_event(v, &ev, -1));
	pf = kvmi_event_as_page_fault(&ev);
	ASSERT_NE(NULL, pf);
	ASSERT_EQ(gpa + 3 * 8, pf->gpa);
	ASSERT_EQ(KVMI_PAGE_ACCESS_W, pf->access);
	regs.groups = KVMI_REGS_RIP;
	regs.rip = ev.regs.rip;
	ASSERT_EQ(-EINVAL, kvmi_vcpu_reply_page_fault_ctx_regs(v,
				KVMI_PF_CTX_READ, &tool, sizeof(tool), &regs));
	ASSERT_EQ(-EINVAL, kvmi_vcpu_reply_page_fault_ctx(v, KVMI_PF_CTX_READ,
							  &tool, 0));
	ASSERT_EQ(0, kvmi_vcpu_reply_page_fault_ctx(v, KVMI_PF_CTX_READ,
						    &tool, sizeof(tool)));

	ASSERT_GUEST_SAW(&r, 1, 0x7005);
	ASSERT_EQ(0x7005,
		  *(uint64_t *)addr_gva2hva(vm, (vm_vaddr_t)&ctx_page[3]));
	ASSERT_EQ(0, kvmi_vcpu_counters(v, &c));
	ASSERT_EQ(0, c.bad_replies);
out:
	kvmi_dom_close(dom);
	kvm_vm_free(vm);
}

/* The same on the socket: the kernel shuts it down, -ENODEV. */
TEST(vm_destroyed_under_socket_dom)
{
	struct kvm_vcpu *vcpu;
	struct kvmi_event ev;
	struct kvmi_dom *dom;
	struct kvm_vm *vm;

	TEST_REQUIRE(have_kvmi());
	vm = vm_create_with_one_vcpu(&vcpu, guest_code);
	if (!have_socket(vm->fd)) {
		kvm_vm_free(vm);
		SKIP(return, "no KVMI_FEATURE_SOCKET in this kernel");
	}
	ASSERT_EQ(0, kvmi_dom_open_socket(vm->fd, &dom));
	kvm_vm_free(vm);
	ASSERT_TRUE(kvmi_dom_state_flags(dom) & KVMI_VM_DETACHED);
	ASSERT_EQ(-ENODEV, kvmi_vcpu_wait_event(kvmi_dom_vcpu(dom, 0), &ev,
						-1));
	ASSERT_EQ(-ENODEV, kvmi_dom_control_event(dom, 0,
						  KVMI_EVENT_HYPERCALL, 1, 0));
	ASSERT_EQ(0, kvmi_dom_close(dom));
}

/*
 * An fd wrapped with the other transport's call is refused, and stays
 * the caller's: the fd tells its transport (KVMI_VM_SOCKET).
 */
TEST(dom_refuses_the_other_transport)
{
	struct kvm_vcpu *vcpu;
	struct kvmi_dom *dom;
	struct kvm_vm *vm;
	int fd, sv[2];

	TEST_REQUIRE(have_kvmi());
	vm = vm_create_with_one_vcpu(&vcpu, guest_code);
	if (!have_socket(vm->fd)) {
		kvm_vm_free(vm);
		SKIP(return, "no KVMI_FEATURE_SOCKET in this kernel");
	}

	/* A socket introspection fd as a ring dom. */
	ASSERT_EQ(0, socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv));
	fd = kvmi_vm_open_socket(vm->fd, sv[1]);
	ASSERT_LE(0, fd);
	ASSERT_EQ(-EPROTOTYPE, kvmi_dom_from_fd(fd, &dom));
	/* Still the caller's, and still usable as what it is. */
	ASSERT_EQ(0, kvmi_dom_from_socket(fd, sv[0], &dom));
	ASSERT_EQ(KVMI_TRANSPORT_SOCKET, kvmi_dom_transport(dom));
	ASSERT_EQ(0, kvmi_dom_close(dom));
	close(sv[1]);

	/* A ring introspection fd as a socket dom. */
	ASSERT_EQ(0, socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv));
	fd = kvmi_vm_open(vm->fd);
	ASSERT_LE(0, fd);
	ASSERT_EQ(-EPROTOTYPE, kvmi_dom_from_socket(fd, sv[0], &dom));
	ASSERT_EQ(0, kvmi_dom_from_fd(fd, &dom));
	ASSERT_EQ(KVMI_TRANSPORT_RING, kvmi_dom_transport(dom));
	ASSERT_EQ(0, kvmi_dom_close(dom));
	close(sv[0]);
	close(sv[1]);
	kvm_vm_free(vm);
}

/* The VM is destroyed under the dom: waits end with -ENODEV. */
TEST(vm_destroyed_under_dom)
{
	struct kvm_vcpu *vcpu;
	struct kvmi_event ev;
	struct kvmi_dom *dom;
	struct kvm_vm *vm;

	TEST_REQUIRE(have_kvmi());
	vm = vm_create_with_one_vcpu(&vcpu, guest_code);
	ASSERT_EQ(0, kvmi_dom_open(vm->fd, &dom));
	kvm_vm_free(vm);
	ASSERT_TRUE(kvmi_dom_state_flags(dom) & KVMI_VM_DETACHED);
	ASSERT_EQ(-ENODEV, kvmi_vcpu_wait_event(kvmi_dom_vcpu(dom, 0), &ev,
						-1));
	ASSERT_EQ(-ENODEV, kvmi_dom_control_event(dom, 0,
						  KVMI_EVENT_HYPERCALL, 1, 0));
	ASSERT_EQ(0, kvmi_dom_close(dom));
}

/*
 * The tool in a child process: serve one event with SET_REGS RAX = 0x99;
 * @how: 0 receive the VM fd over @sock, 1 receive an introspection fd,
 * 2 attach to the parent by pid, 3 receive an introspection fd opened
 * with the socket transport and the tool's end of its socket, 4 attach to
 * the parent by pid with the socket transport. Tells the parent when it
 * is ready.
 */
static int child_tool(int sock, int how)
{
	struct kvmi_x86_regs regs;
	struct kvmi_dom *dom;
	struct kvmi_event ev;
	char ok = 'R';
	int fd, r;

	if (how == 2) {
		r = kvmi_dom_attach_pid(getppid(), &dom);
	} else if (how == 4) {
		r = kvmi_dom_attach_pid_socket(getppid(), &dom);
		if (!r && kvmi_dom_transport(dom) != KVMI_TRANSPORT_SOCKET)
			return 18;
	} else if (how == 3) {
		fd = kvmi_fd_recv(sock);
		r = kvmi_fd_recv(sock);
		if (fd < 0 || r < 0)
			return 10;
		r = kvmi_dom_from_socket(fd, r, &dom);
		if (!r && kvmi_dom_transport(dom) != KVMI_TRANSPORT_SOCKET)
			return 18;
	} else {
		fd = kvmi_fd_recv(sock);
		if (fd < 0)
			return 10;
		r = how == 0 ? kvmi_dom_open(fd, &dom) :
			       kvmi_dom_from_fd(fd, &dom);
		if (how == 0)
			close(fd);
	}
	if (r)
		return 11;
	if (kvmi_dom_control_event(dom, KVMI_ALL_VCPUS, KVMI_EVENT_HYPERCALL,
				   1, 0))
		return 12;
	if (write(sock, &ok, 1) != 1)
		return 13;
	if (kvmi_vcpu_wait_event(kvmi_dom_vcpu(dom, 0), &ev, -1))
		return 14;
	regs = ev.regs;
	regs.groups = KVMI_REGS_GPRS;
	regs.rax = 0x99;
	if (kvmi_vcpu_reply(kvmi_dom_vcpu(dom, 0), KVMI_ACTION_CONTINUE,
			    KVMI_REPLY_SET_REGS, &regs, NULL))
		return 15;
	/* Stay until the parent saw the result, then close. */
	if (read(sock, &ok, 1) != 1)
		return 16;
	return kvmi_dom_close(dom) ? 17 : 0;
}

static void other_process(struct __test_metadata *_metadata, int how)
{
	struct kvm_vcpu *vcpu;
	struct runner r;
	struct kvm_vm *vm;
	int sv[2], st, fd;
	pid_t pid;
	char c;

	TEST_REQUIRE(have_kvmi());
	vm = vm_create_with_one_vcpu(&vcpu, guest_code);
	if (how >= 3 && !have_socket(vm->fd)) {
		kvm_vm_free(vm);
		SKIP(return, "no KVMI_FEATURE_SOCKET in this kernel");
	}
	ASSERT_EQ(0, socketpair(AF_UNIX, SOCK_STREAM, 0, sv));
	pid = fork();
	ASSERT_LE(0, pid);
	if (!pid) {
		close(sv[0]);
		_exit(child_tool(sv[1], how));
	}
	close(sv[1]);
	if (how == 0) {
		ASSERT_EQ(0, kvmi_fd_send(sv[0], vm->fd));
	} else if (how == 1) {
		fd = kvmi_vm_open(vm->fd);
		ASSERT_LE(0, fd);
		ASSERT_EQ(0, kvmi_fd_send(sv[0], fd));
		close(fd);
	} else if (how == 3) {
		int ks[2];

		/* The VMM opens; the tool gets the fd and its end. */
		ASSERT_EQ(0, socketpair(AF_UNIX, SOCK_STREAM, 0, ks));
		fd = kvmi_vm_open_socket(vm->fd, ks[0]);
		ASSERT_LE(0, fd);
		close(ks[0]);
		ASSERT_EQ(0, kvmi_fd_send(sv[0], fd));
		ASSERT_EQ(0, kvmi_fd_send(sv[0], ks[1]));
		close(fd);
		close(ks[1]);
	}
	ASSERT_EQ(1, read(sv[0], &c, 1));
	runner_start(&r, vcpu);
	ASSERT_GUEST_SAW(&r, 0x99, ARG0);
	ASSERT_EQ(1, write(sv[0], &c, 1));
	ASSERT_EQ(pid, waitpid(pid, &st, 0));
	ASSERT_TRUE(WIFEXITED(st));
	ASSERT_EQ(0, WEXITSTATUS(st));
	close(sv[0]);
	kvm_vm_free(vm);
}

TEST(vm_fd_passed_to_another_process)
{
	other_process(_metadata, 0);
}

TEST(introspection_fd_passed_to_another_process)
{
	other_process(_metadata, 1);
}

TEST(attach_by_pid)
{
	other_process(_metadata, 2);
}

TEST(socket_passed_to_another_process)
{
	other_process(_metadata, 3);
}

TEST(attach_by_pid_with_socket)
{
	other_process(_metadata, 4);
}

/* Without privilege over the VMM: a clear error, and the VM unharmed. */
TEST(attach_by_pid_without_privilege)
{
	struct kvm_vcpu *vcpu;
	struct kvmi_dom *dom;
	struct kvm_vm *vm;
	pid_t parent = getpid(), pid;
	int st, r, fds[2];

	TEST_REQUIRE(have_kvmi());
	TEST_REQUIRE(geteuid() == 0);
	vm = vm_create_with_one_vcpu(&vcpu, guest_code);
	ASSERT_EQ(1, kvmi_pid_find_vm_fds(parent, fds, 2));
	ASSERT_EQ(vm->fd, fds[0]);
	pid = fork();
	ASSERT_LE(0, pid);
	if (!pid) {
		if (setresgid(65534, 65534, 65534) ||
		    setresuid(65534, 65534, 65534))
			_exit(20);
		r = kvmi_dom_attach_pid(parent, &dom);
		if (r != -EACCES && r != -EPERM)
			_exit(21);
		if (kvmi_pid_getfd(parent, fds[0]) != -EPERM)
			_exit(22);
		_exit(0);
	}
	ASSERT_EQ(pid, waitpid(pid, &st, 0));
	ASSERT_TRUE(WIFEXITED(st));
	ASSERT_EQ(0, WEXITSTATUS(st));
	/* Nobody got in: introspection can still be opened. */
	ASSERT_EQ(0, kvmi_dom_open(vm->fd, &dom));
	ASSERT_EQ(0, kvmi_dom_close(dom));
	kvm_vm_free(vm);
}

/* ------------------------------------------------------------------ */
/* Guest discovery (/dev/kvmi)                                         */
/* ------------------------------------------------------------------ */

/* What the discovery callback saw, for this process's guests only. */
struct seen {
	uint64_t ids[256];	/* guests on: ON given, OFF not */
	int nr;
	int on, off;
	int bad;		/* OFF without ON, ON twice */
	struct kvmi_guest_record last;
};

static int seen_find(struct seen *s, uint64_t id)
{
	int i;

	for (i = 0; i < s->nr; i++)
		if (s->ids[i] == id)
			return i;
	return -1;
}

static int seen_fn(struct kvmi_disc *disc, const struct kvmi_guest_record *rec,
		   void *arg)
{
	struct seen *s = arg;
	int i;

	if (rec->pid != getpid())
		return 0;
	i = seen_find(s, rec->id);
	s->last = *rec;
	if (rec->type == KVMI_GUEST_ON) {
		s->on++;
		if (i >= 0 || s->nr == 256)
			s->bad++;
		else
			s->ids[s->nr++] = rec->id;
	} else if (rec->type == KVMI_GUEST_OFF) {
		s->off++;
		if (i < 0)
			s->bad++;
		else
			s->ids[i] = s->ids[--s->nr];
	} else {
		s->bad++;
	}
	return 0;
}

/* A VM with one vCPU made by a raw KVM_CREATE_VCPU: announced. */
struct bare {
	struct kvm_vm *vm;
	int vcpu_fd;
};

static void bare_new(struct bare *b)
{
	b->vm = vm_create_barebones();
	b->vcpu_fd = __vm_ioctl(b->vm, KVM_CREATE_VCPU, (void *)0);
	TEST_ASSERT(b->vcpu_fd >= 0, "KVM_CREATE_VCPU: %s", strerror(errno));
}

static void bare_free(struct bare *b)
{
	close(b->vcpu_fd);
	kvm_vm_free(b->vm);
}

static bool have_disc(void)
{
	return have_kvmi() && !access("/dev/kvmi", F_OK);
}

static uint64_t guest_id_of(struct seen *s, struct kvm_vm *vm)
{
	uint8_t uuid[16];

	TEST_ASSERT(!kvmi_vm_get_uuid(vm->fd, uuid), "kvmi_vm_get_uuid");
	TEST_ASSERT(!memcmp(uuid, s->last.uuid, 16), "not the last guest");
	return s->last.id;
}

/* Guests present at open, then guests created and destroyed. */
TEST(disc_guests_come_and_go)
{
	struct kvmi_disc *disc;
	struct seen s = {};
	struct bare before, after;

	TEST_REQUIRE(have_disc());
	bare_new(&before);
	ASSERT_EQ(0, kvmi_disc_open(&disc));
	ASSERT_LE(0, kvmi_disc_fd(disc));
	ASSERT_EQ(-EINVAL, kvmi_disc_dispatch(disc, NULL, NULL));

	/* The first dispatch hands over the guests already running. */
	ASSERT_LE(1, kvmi_disc_dispatch(disc, seen_fn, &s));
	ASSERT_EQ(1, s.on);
	ASSERT_EQ(KVMI_GUEST_ON, s.last.type);
	guest_id_of(&s, before.vm);
	ASSERT_EQ(0, kvmi_disc_dispatch(disc, seen_fn, &s));

	bare_new(&after);
	ASSERT_EQ(1, kvmi_disc_dispatch(disc, seen_fn, &s));
	ASSERT_EQ(2, s.on);
	guest_id_of(&s, after.vm);
	bare_free(&before);
	bare_free(&after);
	ASSERT_EQ(2, kvmi_disc_dispatch(disc, seen_fn, &s));
	ASSERT_EQ(2, s.off);
	ASSERT_EQ(0, s.nr);
	ASSERT_EQ(0, s.bad);
	ASSERT_EQ(0, kvmi_disc_close(disc));
}

/* The kernel's queue overflows: the library resyncs, nothing is lost. */
TEST(disc_overflow_loses_nothing)
{
	struct kvmi_guest_record recs[8];
	struct kvmi_disc *disc;
	struct seen s = {};
	struct bare alive[3], tmp;
	uint32_t total;
	uint64_t seq;
	int i;

	TEST_REQUIRE(have_disc());
	ASSERT_EQ(0, kvmi_disc_open(&disc));
	ASSERT_EQ(0, kvmi_disc_dispatch(disc, seen_fn, &s));
	bare_new(&alive[0]);
	for (i = 0; i < 80; i++) {
		bare_new(&tmp);
		bare_free(&tmp);
	}
	bare_new(&alive[1]);
	bare_new(&alive[2]);
	bare_free(&alive[0]);

	ASSERT_LT(0, kvmi_disc_dispatch(disc, seen_fn, &s));
	ASSERT_EQ(0, s.bad);
	/* Exactly the two guests alive, whatever was queued or lost. */
	ASSERT_EQ(2, s.nr);
	ASSERT_EQ(s.on - 2, s.off);
	ASSERT_LE(0, kvmi_disc_get_guests(disc, recs, 8, &total, &seq));
	for (i = 0; i < s.nr; i++) {
		int j, found = 0;

		for (j = 0; j < (int)total && j < 8; j++)
			found += recs[j].id == s.ids[i];
		ASSERT_EQ(1, found);
	}
	bare_free(&alive[1]);
	bare_free(&alive[2]);
	ASSERT_EQ(2, kvmi_disc_dispatch(disc, seen_fn, &s));
	ASSERT_EQ(0, s.nr);
	ASSERT_EQ(0, s.bad);
	kvmi_disc_close(disc);
}

/* The VMM's UUID and opt-out, through the library. */
TEST(disc_uuid_and_opt_out)
{
	uint8_t uuid[16], back[16];
	struct kvmi_disc *disc;
	struct kvmi_dom *dom;
	struct seen s = {};
	struct kvm_vm *vm;
	int i, fd;

	TEST_REQUIRE(have_disc());
	ASSERT_EQ(0, kvmi_disc_open(&disc));
	ASSERT_EQ(0, kvmi_disc_dispatch(disc, seen_fn, &s));
	vm = vm_create_barebones();
	for (i = 0; i < 16; i++)
		uuid[i] = 0x10 + i;
	ASSERT_EQ(0, kvmi_vm_set_uuid(vm->fd, uuid));
	ASSERT_EQ(0, kvmi_vm_get_uuid(vm->fd, back));
	ASSERT_EQ(0, memcmp(uuid, back, 16));
	ASSERT_EQ(0, kvmi_vm_opt_out(vm->fd));
	fd = __vm_ioctl(vm, KVM_CREATE_VCPU, (void *)0);
	ASSERT_LE(0, fd);
	ASSERT_EQ(-EBUSY, kvmi_vm_set_uuid(vm->fd, back));

	ASSERT_EQ(1, kvmi_disc_dispatch(disc, seen_fn, &s));
	ASSERT_EQ(0, memcmp(uuid, s.last.uuid, 16));
	ASSERT_EQ(KVMI_GUEST_OPTED_OUT, s.last.flags);
	ASSERT_EQ(-EACCES, kvmi_dom_open_guest(disc, s.last.id, &dom));
	ASSERT_EQ(-ENOENT, kvmi_dom_open_guest(disc, 0, &dom));
	close(fd);
	kvm_vm_free(vm);
	kvmi_disc_close(disc);
}

/*
 * An agent in one io_uring loop: the discovery callback opens each new
 * guest of this process, enables HYPERCALL and adds the dom to the same
 * loop, which then answers the guest's hypercall. Nothing from the VMM.
 */
struct agent {
	struct kvmi_uring *loop;
	struct kvmi_dom *dom;
	bool socket;		/* open the guest with the socket transport */
	int attached;
	int events;
	int err;
};

static int agent_event_fn(struct kvmi_vcpu *v, const struct kvmi_event *ev,
			  void *arg)
{
	struct agent *a = arg;
	int n = 0;

	a->events++;
	return reply_fn(v, ev, &n);
}

static int agent_guest_fn(struct kvmi_disc *disc,
			  const struct kvmi_guest_record *rec, void *arg)
{
	struct agent *a = arg;
	int r;

	if (rec->pid != getpid() || rec->type != KVMI_GUEST_ON || a->dom)
		return 0;
	r = a->socket ? kvmi_dom_open_guest_socket(disc, rec->id, &a->dom) :
			kvmi_dom_open_guest(disc, rec->id, &a->dom);
	if (!r && kvmi_dom_transport(a->dom) != (a->socket ?
			KVMI_TRANSPORT_SOCKET : KVMI_TRANSPORT_RING))
		r = -EPROTO;
	if (!r)
		r = kvmi_dom_set_wait_mode(a->dom, KVMI_ALL_VCPUS,
					   KVMI_WAIT_BLOCK, 0);
	if (!r)
		r = enable(a->dom);
	if (!r)
		r = kvmi_uring_add(a->loop, a->dom, agent_event_fn, a);
	if (r)
		a->err = r;
	else
		a->attached++;
	return r;
}

static void disc_agent(struct __test_metadata *_metadata, bool socket)
{
	struct agent a = { .socket = socket };
	struct kvmi_disc *disc;
	struct kvm_vcpu *vcpu;
	struct runner r;
	struct kvm_vm *vm;

	TEST_REQUIRE(have_disc());
	if (socket) {
		/* Gone before the device is opened: never announced. */
		vm = vm_create_barebones();
		a.socket = have_socket(vm->fd);
		kvm_vm_free(vm);
		if (!a.socket)
			SKIP(return, "no KVMI_FEATURE_SOCKET in this kernel");
	}
	ASSERT_EQ(0, kvmi_uring_create(32, &a.loop));
	ASSERT_EQ(0, kvmi_disc_open(&disc));
	ASSERT_EQ(0, kvmi_uring_add_disc(a.loop, disc, agent_guest_fn, &a));
	ASSERT_EQ(-EEXIST, kvmi_uring_add_disc(a.loop, disc, agent_guest_fn,
					       &a));

	/* The VMM's part: a VM, then run it; it knows of no tool. */
	vm = vm_create_with_one_vcpu(&vcpu, guest_code);
	while (!a.attached && !a.err)
		ASSERT_LE(0, kvmi_uring_run(a.loop, -1));
	ASSERT_EQ(0, a.err);
	runner_start(&r, vcpu);
	while (!a.events)
		ASSERT_LE(0, kvmi_uring_run(a.loop, -1));
	ASSERT_GUEST_SAW(&r, 0x77, ARG0);

	ASSERT_EQ(0, kvmi_uring_remove_disc(a.loop, disc));
	ASSERT_EQ(-ENOENT, kvmi_uring_remove_disc(a.loop, disc));
	ASSERT_EQ(0, kvmi_uring_remove(a.loop, a.dom));
	kvmi_dom_close(a.dom);
	kvmi_uring_destroy(a.loop);
	kvmi_disc_close(disc);
	kvm_vm_free(vm);
}

TEST(disc_agent_attaches_to_new_guest)
{
	disc_agent(_metadata, false);
}

/* The same agent, opening the guest with the socket transport. */
TEST(disc_agent_attaches_over_socket)
{
	disc_agent(_metadata, true);
}

TEST_HARNESS_MAIN
