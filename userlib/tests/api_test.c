// SPDX-License-Identifier: LGPL-2.1-or-later OR MIT
/*
 * The parts of the API that need no KVM: fd passing over a unix socket,
 * attaching by pid (its errors), the wrappers' argument checks and error
 * passing, the pollable fd and the dispatcher over a simulated dom.
 */
#include <fcntl.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/stat.h>

#include "harness.h"
#include "sim.h"

/* An fd sent with kvmi_fd_send() arrives as the same open file. */
TEST(fd_passing_round_trip)
{
	int sv[2], efd, got;
	struct stat a, b;
	uint64_t cnt = 5;

	CHECK(!socketpair(AF_UNIX, SOCK_STREAM, 0, sv));
	efd = eventfd(0, EFD_NONBLOCK);
	CHECK(efd >= 0);
	CHECK_EQ(0, kvmi_fd_send(sv[0], efd));
	got = kvmi_fd_recv(sv[1]);
	CHECK(got >= 0 && got != efd);
	CHECK(fcntl(got, F_GETFD) & FD_CLOEXEC);
	CHECK(!fstat(efd, &a) && !fstat(got, &b));
	CHECK(a.st_ino == b.st_ino && a.st_dev == b.st_dev);
	CHECK_EQ(8, write(got, &cnt, 8));
	cnt = 0;
	CHECK_EQ(8, read(efd, &cnt, 8));
	CHECK_EQ(5, cnt);
	close(got);
	close(efd);
	close(sv[0]);
	close(sv[1]);
}

/* A message without an fd, a closed peer, a bad fd: clear errors. */
TEST(fd_passing_errors)
{
	int sv[2];

	CHECK(!socketpair(AF_UNIX, SOCK_STREAM, 0, sv));
	CHECK_EQ(-EBADF, kvmi_fd_send(sv[0], -1));
	CHECK_EQ(1, write(sv[0], "x", 1));
	CHECK_EQ(-EBADMSG, kvmi_fd_recv(sv[1]));
	CHECK_EQ(-EBADF, kvmi_fd_send(sv[0], 12345));
	close(sv[0]);
	CHECK_EQ(-EPIPE, kvmi_fd_recv(sv[1]));
	CHECK_EQ(-EPIPE, kvmi_fd_send(sv[1], 0));
	close(sv[1]);
	CHECK_EQ(-EBADF, kvmi_fd_recv(sv[1]));
	CHECK_EQ(-ENOTSOCK, kvmi_fd_recv(0 + open("/dev/null", O_RDONLY)));
}

/* A process with no VM fd; a process that doesn't exist. */
TEST(attach_pid_errors)
{
	struct kvmi_dom *dom = NULL;
	int fds[4], st;
	pid_t pid;

	CHECK_EQ(0, kvmi_pid_find_vm_fds(getpid(), fds, 4));
	CHECK_EQ(-ENOENT, kvmi_dom_attach_pid(getpid(), &dom));
	CHECK(!dom);
	CHECK_EQ(-EINVAL, kvmi_dom_attach_pid(0, &dom));
	CHECK_EQ(-EINVAL, kvmi_pid_find_vm_fds(-1, fds, 4));
	CHECK_EQ(-EINVAL, kvmi_pid_getfd(getpid(), -1));
	/* A pid that has just been reaped is free. */
	pid = fork();
	if (!pid)
		_exit(0);
	CHECK(waitpid(pid, &st, 0) == pid);
	CHECK_EQ(-ESRCH, kvmi_pid_find_vm_fds(pid, fds, 4));
	CHECK_EQ(-ESRCH, kvmi_pid_getfd(pid, 0));
	CHECK_EQ(-ESRCH, kvmi_dom_attach_pid(pid, &dom));
	/* Our own fds, through pidfd_getfd(): an fd we don't have. */
	CHECK_EQ(-EBADF, kvmi_pid_getfd(getpid(), 54321));
	st = kvmi_pid_getfd(getpid(), 1);
	CHECK(st >= 0);
	close(st);
}

/* Without privilege over the VMM: -EPERM / -EACCES, not a crash. */
TEST(attach_pid_without_privilege)
{
	pid_t parent = getpid(), pid;
	int st;

	if (geteuid() != 0)
		SKIP("needs root to drop to an unprivileged user");
	pid = fork();
	if (!pid) {
		if (setresgid(65534, 65534, 65534) ||
		    setresuid(65534, 65534, 65534))
			_exit(77);
		if (kvmi_pid_getfd(parent, 0) != -EPERM)
			_exit(1);
		if (kvmi_pid_find_vm_fds(parent, NULL, 0) != -EACCES)
			_exit(2);
		_exit(0);
	}
	CHECK(waitpid(pid, &st, 0) == pid);
	CHECK(WIFEXITED(st));
	if (WEXITSTATUS(st) == 77)
		SKIP("setresuid failed");
	CHECK_EQ(0, WEXITSTATUS(st));
}

/* The ioctl wrappers on an fd that is no VM: the kernel's -ENOTTY. */
TEST(wrappers_pass_kernel_errors)
{
	struct kvmi_allowed al = { 0 };
	struct kvmi_dom *dom = NULL;
	int fd = eventfd(0, 0);

	CHECK(fd >= 0);
	CHECK_EQ(-ENOTTY, kvmi_vm_check(fd));
	CHECK_EQ(-ENOTTY, kvmi_vm_open(fd));
	CHECK_EQ(-ENOTTY, kvmi_vm_set_allowed(fd, &al));
	CHECK_EQ(-EINVAL, kvmi_vm_set_allowed(fd, NULL));
	CHECK_EQ(-ENOTTY, kvmi_vm_set_deadline(fd, 1));
	CHECK_EQ(-ENOTTY, kvmi_vm_unhook(fd, 0, 0));
	CHECK_EQ(-ENOTTY, kvmi_dom_open(fd, &dom));
	CHECK_EQ(-ENOTTY, kvmi_dom_from_fd(fd, &dom));
	CHECK(!dom);
	/* from_fd failed: the fd is still the caller's. */
	CHECK(fcntl(fd, F_GETFD) >= 0);
	CHECK_EQ(-EBADF, kvmi_vm_open(-1));
	CHECK_EQ(-EINVAL, kvmi_dom_from_fd(-1, &dom));
	CHECK_EQ(-EINVAL, kvmi_dom_open(fd, NULL));
	CHECK_EQ(-EINVAL, kvmi_dom_close(NULL));
	close(fd);
}

static int count_fn(struct kvmi_vcpu *v, const struct kvmi_event *ev,
		    void *arg)
{
	unsigned int *seen = arg;

	seen[kvmi_vcpu_index(v)] = ev->seq;
	return kvmi_vcpu_reply(v, KVMI_ACTION_CONTINUE, 0, NULL, NULL);
}

static int readable(int fd)
{
	struct pollfd p = { .fd = fd, .events = POLLIN };

	return poll(&p, 1, 0);
}

/* One pollable fd for every vCPU's doorbell, drained by dispatch. */
TEST(pollfd_and_dispatch)
{
	unsigned int seen[4] = { 0 };
	struct sim s;
	int pfd;

	sim_default(&s, 4);
	CHECK_EQ(0, sim_start(&s, 3));
	/* vCPU 2 has a doorbell of its own: the pollfd watches it too. */
	CHECK(kvmi_vcpu_own_doorbell(kvmi_dom_vcpu(s.dom, 2)) >= 0);
	pfd = kvmi_dom_pollfd(s.dom);
	CHECK(pfd >= 0);
	CHECK_EQ(pfd, kvmi_dom_pollfd(s.dom));
	CHECK_EQ(0, readable(pfd));
	CHECK_EQ(0, kvmi_dom_dispatch(s.dom, count_fn, seen));
	CHECK_EQ(-EINVAL, kvmi_dom_dispatch(s.dom, NULL, seen));

	sim_publish(&s, 0, 11, KVMI_EVENT_HYPERCALL);
	sim_publish(&s, 2, 12, KVMI_EVENT_HYPERCALL);
	CHECK_EQ(1, readable(pfd));
	CHECK_EQ(2, kvmi_dom_dispatch(s.dom, count_fn, seen));
	CHECK_EQ(11, seen[0]);
	CHECK_EQ(0, seen[1]);
	CHECK_EQ(12, seen[2]);
	CHECK_EQ(11, sim_rp(&s, 0)->seq);
	CHECK_EQ(12, sim_rp(&s, 2)->seq);
	CHECK_EQ(0, readable(pfd));
	CHECK_EQ(0, kvmi_dom_dispatch(s.dom, count_fn, seen));

	/* vCPU 1 only: its doorbell is the VM-wide one. */
	sim_publish(&s, 1, 13, KVMI_EVENT_HYPERCALL);
	CHECK_EQ(1, readable(pfd));
	CHECK_EQ(1, kvmi_dom_dispatch(s.dom, count_fn, seen));
	CHECK_EQ(13, seen[1]);

	/* Detached: dispatch says so. */
	__atomic_fetch_or(&s.vm->flags, KVMI_VM_DETACHED, __ATOMIC_RELEASE);
	CHECK_EQ(-ENODEV, kvmi_dom_dispatch(s.dom, count_fn, seen));
	CHECK_EQ(0, kvmi_dom_close(s.dom));
	sim_free(&s);
}

static int stop_fn(struct kvmi_vcpu *v, const struct kvmi_event *ev,
		   void *arg)
{
	return -ECANCELED;
}

/* A handler's error stops dispatch; the event stays the tool's. */
TEST(dispatch_stops_on_handler_error)
{
	struct kvmi_event ev;
	struct sim s;

	sim_default(&s, 2);
	CHECK_EQ(0, sim_start(&s, 2));
	sim_publish(&s, 0, 21, KVMI_EVENT_HYPERCALL);
	sim_publish(&s, 1, 22, KVMI_EVENT_HYPERCALL);
	CHECK_EQ(-ECANCELED, kvmi_dom_dispatch(s.dom, stop_fn, NULL));
	/* vCPU 0's event was handed over; vCPU 1's is still to pop. */
	CHECK_EQ(-EAGAIN, kvmi_vcpu_pop_event(kvmi_dom_vcpu(s.dom, 0), &ev));
	CHECK_EQ(0, kvmi_vcpu_pop_event(kvmi_dom_vcpu(s.dom, 1), &ev));
	CHECK_EQ(22, ev.seq);
	/* close answers both. */
	CHECK_EQ(0, kvmi_dom_close(s.dom));
	CHECK_EQ(21, sim_rp(&s, 0)->seq);
	CHECK_EQ(22, sim_rp(&s, 1)->seq);
	sim_free(&s);
}

/* kvmi_vcpu_wait_event() with a timeout, and with 0 (just look). */
TEST(wait_event_timeouts)
{
	struct kvmi_event ev;
	struct kvmi_vcpu *v;
	struct sim s;

	sim_default(&s, 1);
	CHECK_EQ(0, sim_start(&s, 1));
	v = kvmi_dom_vcpu(s.dom, 0);
	CHECK_EQ(-ETIMEDOUT, kvmi_vcpu_wait_event(v, &ev, 0));
	CHECK_EQ(-ETIMEDOUT, kvmi_vcpu_wait_event(v, &ev, 5));
	CHECK_EQ(0, kvmi_vcpu_set_tool_mode(v, KVMI_WAIT_POLL, 0));
	CHECK_EQ(-ETIMEDOUT, kvmi_vcpu_wait_event(v, &ev, 5));
	CHECK_EQ(KVMI_TOOL_POLLING, sim_ts(&s, 0)->flags);
	CHECK_EQ(0, kvmi_vcpu_set_tool_mode(v, KVMI_WAIT_BLOCK, 0));
	CHECK_EQ(0, sim_ts(&s, 0)->flags);
	CHECK_EQ(-ETIMEDOUT, kvmi_vcpu_wait_event(v, &ev, 5));
	sim_publish(&s, 0, 3, KVMI_EVENT_HYPERCALL);
	CHECK_EQ(0, kvmi_vcpu_wait_event(v, &ev, 0));
	CHECK_EQ(3, ev.seq);
	CHECK_EQ(0, kvmi_dom_close(s.dom));
	sim_free(&s);
}

/*
 * The write events' helpers: typed data, per-register checks, replies
 * that carry the value and refuse what the kernel would (nothing written).
 */
TEST(write_event_helpers)
{
	struct kvmi_x86_regs regs = { .groups = KVMI_REGS_GPRS };
	struct kvmi_event ev;
	struct kvmi_vcpu *v;
	struct sim s;

	sim_default(&s, 1);
	CHECK_EQ(0, sim_start(&s, 1));
	v = kvmi_dom_vcpu(s.dom, 0);
	CHECK_EQ(-EINVAL, kvmi_dom_control_cr(s.dom, 0, 2, 1));
	CHECK_EQ(-EINVAL, kvmi_dom_control_cr(s.dom, 0, 8, 1));
	CHECK_EQ(-EINVAL, kvmi_dom_control_msr(s.dom, 0, 0x2000, 1));
	CHECK_EQ(-EINVAL, kvmi_dom_control_msr(s.dom, 0, 0xc0002000, 1));
	CHECK(kvmi_event_as_cr(NULL) == NULL);
	CHECK_EQ(-ENOENT, kvmi_vcpu_reply_cr(v, KVMI_ACTION_DENY, 0, NULL));

	/* A CR4 write: the data, and the wrong reply helper refused. */
	sim_publish(&s, 0, 7, KVMI_EVENT_CR);
	CHECK_EQ(0, kvmi_vcpu_pop_event(v, &ev));
	CHECK(kvmi_event_as_cr(&ev) == &ev.data.cr);
	CHECK(kvmi_event_as_msr(&ev) == NULL);
	CHECK_EQ(-EINVAL, kvmi_vcpu_reply_msr(v, KVMI_ACTION_DENY, 0, NULL));
	CHECK_EQ(-EINVAL, kvmi_vcpu_reply_cr(v, KVMI_ACTION_RETRY, 0, NULL));
	CHECK_EQ(-EINVAL, kvmi_vcpu_reply_cr(v, KVMI_ACTION_NOEMU, 0, NULL));
	regs.groups = KVMI_REGS_RIP;
	CHECK_EQ(-EINVAL, kvmi_vcpu_reply_cr(v, KVMI_ACTION_DENY, 0, &regs));
	CHECK(sim_rp(&s, 0)->seq != 7);
	regs.groups = KVMI_REGS_GPRS;
	regs.rax = 0x1234;
	CHECK_EQ(0, kvmi_vcpu_reply_cr(v, KVMI_ACTION_ALLOW, 0x3006f0, &regs));
	CHECK_EQ(7, sim_rp(&s, 0)->seq);
	CHECK_EQ(KVMI_EVENT_CR, sim_rp(&s, 0)->event);
	CHECK_EQ(KVMI_ACTION_ALLOW, sim_rp(&s, 0)->action);
	CHECK_EQ(KVMI_REPLY_SET_REGS, sim_rp(&s, 0)->flags);
	CHECK_EQ(0x3006f0, sim_rp(&s, 0)->data.cr.new_value);
	CHECK_EQ(0x1234, sim_rp(&s, 0)->regs.rax);

	/* An MSR write: DENY without SET_REGS. */
	sim_publish(&s, 0, 8, KVMI_EVENT_MSR);
	CHECK_EQ(0, kvmi_vcpu_pop_event(v, &ev));
	CHECK(kvmi_event_as_msr(&ev) == &ev.data.msr);
	CHECK(kvmi_event_as_cr(&ev) == NULL);
	CHECK_EQ(-EINVAL, kvmi_vcpu_reply_cr(v, KVMI_ACTION_DENY, 0, NULL));
	CHECK_EQ(0, kvmi_vcpu_reply_msr(v, KVMI_ACTION_DENY, 5, NULL));
	CHECK_EQ(8, sim_rp(&s, 0)->seq);
	CHECK_EQ(KVMI_ACTION_DENY, sim_rp(&s, 0)->action);
	CHECK_EQ(0, sim_rp(&s, 0)->flags);
	CHECK_EQ(5, sim_rp(&s, 0)->data.msr.new_value);
	CHECK_EQ(0, kvmi_dom_close(s.dom));
	sim_free(&s);
}

/*
 * XSETBV (since 1.3), and records whose data the kernel never writes:
 * the typed accessors return NULL for them, and the reply helpers still
 * answer them (nothing is left pending).
 */
TEST(xsetbv_and_malformed_write_records)
{
	struct kvmi_x86_regs regs = { .groups = KVMI_REGS_GPRS };
	const struct kvmi_event_xsetbv *x;
	struct kvmi_event ev;
	struct kvmi_vcpu *v;
	struct sim s;

	sim_default(&s, 1);
	CHECK_EQ(0, sim_start(&s, 1));
	v = kvmi_dom_vcpu(s.dom, 0);
	CHECK(kvmi_event_as_xsetbv(NULL) == NULL);
	CHECK_EQ(-ENOENT, kvmi_vcpu_reply_xsetbv(v, KVMI_ACTION_CONTINUE,
						 NULL));

	/* XSETBV: decoded; only CONTINUE and CRASH; SET_REGS with RIP. */
	sim_publish(&s, 0, 3, KVMI_EVENT_XSETBV);
	sim_ev(&s, 0)->data.xsetbv.xcr = 0;
	sim_ev(&s, 0)->data.xsetbv.old_value = 0x3;
	sim_ev(&s, 0)->data.xsetbv.new_value = 0x7;
	CHECK_EQ(0, kvmi_vcpu_pop_event(v, &ev));
	x = kvmi_event_as_xsetbv(&ev);
	CHECK(x == &ev.data.xsetbv);
	CHECK_EQ(0, x->xcr);
	CHECK_EQ(0x3, x->old_value);
	CHECK_EQ(0x7, x->new_value);
	CHECK(kvmi_event_as_cr(&ev) == NULL);
	CHECK(kvmi_event_as_msr(&ev) == NULL);
	CHECK_EQ(-EINVAL, kvmi_vcpu_reply_cr(v, KVMI_ACTION_CONTINUE, 0, NULL));
	CHECK_EQ(-EINVAL, kvmi_vcpu_reply_xsetbv(v, KVMI_ACTION_DENY, NULL));
	CHECK_EQ(-EINVAL, kvmi_vcpu_reply_xsetbv(v, KVMI_ACTION_ALLOW, NULL));
	regs.groups = 0x80;
	CHECK_EQ(-EINVAL, kvmi_vcpu_reply_xsetbv(v, KVMI_ACTION_CONTINUE,
						 &regs));
	CHECK(sim_rp(&s, 0)->seq != 3);
	regs.groups = KVMI_REGS_GPRS | KVMI_REGS_RIP;
	regs.rax = 0x3;
	CHECK_EQ(0, kvmi_vcpu_reply_xsetbv(v, KVMI_ACTION_CONTINUE, &regs));
	CHECK_EQ(3, sim_rp(&s, 0)->seq);
	CHECK_EQ(KVMI_EVENT_XSETBV, sim_rp(&s, 0)->event);
	CHECK_EQ(KVMI_ACTION_CONTINUE, sim_rp(&s, 0)->action);
	CHECK_EQ(KVMI_REPLY_SET_REGS, sim_rp(&s, 0)->flags);
	CHECK_EQ(0x3, sim_rp(&s, 0)->regs.rax);
	sim_publish(&s, 0, 4, KVMI_EVENT_XSETBV);
	CHECK_EQ(0, kvmi_vcpu_pop_event(v, &ev));
	CHECK_EQ(0, kvmi_vcpu_reply_xsetbv(v, KVMI_ACTION_CRASH, NULL));
	CHECK_EQ(KVMI_ACTION_CRASH, sim_rp(&s, 0)->action);
	CHECK_EQ(0, sim_rp(&s, 0)->flags);

	/* Malformed data: NULL, and still answerable. */
	sim_publish(&s, 0, 5, KVMI_EVENT_XSETBV);
	sim_ev(&s, 0)->data.xsetbv.padding = 1;
	CHECK_EQ(0, kvmi_vcpu_pop_event(v, &ev));
	CHECK(kvmi_event_as_xsetbv(&ev) == NULL);
	CHECK_EQ(0, kvmi_vcpu_reply_xsetbv(v, KVMI_ACTION_CONTINUE, NULL));
	CHECK_EQ(5, sim_rp(&s, 0)->seq);

	sim_publish(&s, 0, 6, KVMI_EVENT_CR);
	sim_ev(&s, 0)->data.cr.cr = 2;	/* CR2 writes are not reported */
	CHECK_EQ(0, kvmi_vcpu_pop_event(v, &ev));
	CHECK(kvmi_event_as_cr(&ev) == NULL);
	ev.data.cr.cr = 4;
	CHECK(kvmi_event_as_cr(&ev) == &ev.data.cr);
	ev.data.cr.padding = 1;
	CHECK(kvmi_event_as_cr(&ev) == NULL);
	CHECK_EQ(0, kvmi_vcpu_reply_cr(v, KVMI_ACTION_CONTINUE, 0, NULL));
	CHECK_EQ(6, sim_rp(&s, 0)->seq);

	sim_publish(&s, 0, 7, KVMI_EVENT_MSR);
	sim_ev(&s, 0)->data.msr.msr = 0x40000000;	/* outside the bitmaps */
	CHECK_EQ(0, kvmi_vcpu_pop_event(v, &ev));
	CHECK(kvmi_event_as_msr(&ev) == NULL);
	ev.data.msr.msr = 0xc0000082;
	CHECK(kvmi_event_as_msr(&ev) == &ev.data.msr);
	ev.data.msr.padding = 1;
	CHECK(kvmi_event_as_msr(&ev) == NULL);
	CHECK_EQ(0, kvmi_vcpu_reply_msr(v, KVMI_ACTION_CONTINUE, 0, NULL));
	CHECK_EQ(7, sim_rp(&s, 0)->seq);
	CHECK_EQ(0, kvmi_dom_close(s.dom));
	sim_free(&s);
}

struct waiter {
	struct sim *s;
	pthread_t thread;
};

static void *wait_reply_fn(void *arg)
{
	struct waiter *w = arg;

	sim_wait_reply(w->s, 0);
	return NULL;
}

/*
 * The outcome of an injected exception: unknown until the kernel
 * publishes inject_seq for that command, then its inject_status; a
 * status the kernel never writes is refused; a failed injection is not
 * the one reported.
 */
TEST(inject_status)
{
	struct kvmi_event ev;
	struct kvmi_vcpu_state *vs;
	struct kvmi_vcpu *v;
	struct waiter w;
	struct sim s;
	uint32_t c;

	sim_default(&s, 1);
	CHECK_EQ(0, sim_start(&s, 1));
	v = kvmi_dom_vcpu(s.dom, 0);
	CHECK_EQ(-EOPNOTSUPP, kvmi_vcpu_inject_status(v));
	CHECK_EQ(0, kvmi_dom_close(s.dom));
	sim_free(&s);

	sim_default(&s, 1);
	s.ver.features |= KVMI_FEATURE_INJECT_STATUS;
	CHECK_EQ(0, sim_start(&s, 1));
	v = kvmi_dom_vcpu(s.dom, 0);
	vs = sim_vs(&s, 0);
	CHECK_EQ(-ENOENT, kvmi_vcpu_inject_status(v));
	sim_publish(&s, 0, 1, KVMI_EVENT_HYPERCALL);
	CHECK_EQ(0, kvmi_vcpu_pop_event(v, &ev));
	w.s = &s;
	CHECK(!pthread_create(&w.thread, NULL, wait_reply_fn, &w));
	s.v[0].fake_result = SIM_FAKE_EPERM;
	CHECK_EQ(-EPERM, kvmi_vcpu_inject_exception(v, 6, 0, 0, 0));
	CHECK_EQ(-ENOENT, kvmi_vcpu_inject_status(v));
	s.v[0].fake_result = 0;
	CHECK_EQ(0, kvmi_vcpu_inject_exception(v, 6, 0, 0, 0));
	CHECK_EQ(KVMI_CMD_INJECT_EXCEPTION, sim_cmd(&s, 0)->id);
	CHECK_EQ(6, sim_cmd(&s, 0)->args.inject_exception.vector);
	c = sim_cmd(&s, 0)->seq;
	CHECK_EQ(0, kvmi_vcpu_inject_status(v));
	CHECK_EQ(0, kvmi_vcpu_reply(v, KVMI_ACTION_CONTINUE, 0, NULL, NULL));
	pthread_join(w.thread, NULL);
	CHECK_EQ(0, kvmi_vcpu_inject_status(v));	/* not entered yet */

	/* The vCPU enters the guest: the kernel publishes the outcome. */
	vs->inject_status = KVMI_INJECT_DELIVERED;
	store_release(&vs->inject_seq, c);
	CHECK_EQ(KVMI_INJECT_DELIVERED, kvmi_vcpu_inject_status(v));
	vs->inject_status = KVMI_INJECT_DROPPED;
	CHECK_EQ(KVMI_INJECT_DROPPED, kvmi_vcpu_inject_status(v));
	vs->inject_status = 3;
	CHECK_EQ(-EBADMSG, kvmi_vcpu_inject_status(v));
	/* Another command's outcome is not this one's. */
	store_release(&vs->inject_seq, c - 1);
	CHECK_EQ(0, kvmi_vcpu_inject_status(v));
	CHECK_EQ(0, kvmi_dom_close(s.dom));
	sim_free(&s);
}
