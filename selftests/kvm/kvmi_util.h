/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * Helpers shared by the kvmi-ring selftests (x86_64/kvmi_*_test.c).
 *
 * The double-underscore helpers return the raw result for negative tests;
 * the others assert success.
 */
#ifndef SELFTEST_KVM_KVMI_UTIL_H
#define SELFTEST_KVM_KVMI_UTIL_H

#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <linux/kvmi.h>

#include "kvm_util.h"
#include "test_util.h"
#include "ucall_common.h"

/* Skip the test on a kernel without kvmi-ring. */
#define KVMI_REQUIRE() TEST_REQUIRE(kvm_has_cap(KVM_CAP_INTROSPECTION))

/*
 * The transport kvmi_open() and kvmi_open_fd() use: KVMI_TRANSPORT_RING,
 * or KVMI_TRANSPORT_SOCKET (set by kvmi_use_transport(), see the end of
 * this file). Per test program.
 */
static uint32_t kvmi_test_transport = KVMI_TRANSPORT_RING;
static inline int kvmi_sk_open_fd(int vm_fd);

/* A struct kvmi_open that KVM_INTROSPECTION_OPEN accepts. */
static inline struct kvmi_open kvmi_open_args(void)
{
	struct kvmi_open op = {
		.size = sizeof(op),
		.transport = KVMI_TRANSPORT_RING,
	};

	return op;
}

static inline int __kvmi_open(int vm_fd, void *op)
{
	return ioctl(vm_fd, KVM_INTROSPECTION_OPEN, op);
}

static inline int kvmi_open_fd(int vm_fd)
{
	struct kvmi_open op = kvmi_open_args();
	int fd;

	if (kvmi_test_transport == KVMI_TRANSPORT_SOCKET)
		return kvmi_sk_open_fd(vm_fd);
	fd = __kvmi_open(vm_fd, &op);

	TEST_ASSERT(fd >= 0,
		    __KVM_SYSCALL_ERROR("KVM_INTROSPECTION_OPEN", fd));
	return fd;
}

static inline int kvmi_open(struct kvm_vm *vm)
{
	return kvmi_open_fd(vm->fd);
}

static inline void kvmi_get_version(int fd, struct kvmi_version *ver)
{
	int r;

	memset(ver, 0, sizeof(*ver));
	ver->size = sizeof(*ver);
	r = ioctl(fd, KVMI_IOCTL_GET_VERSION, ver);
	TEST_ASSERT(!r, __KVM_SYSCALL_ERROR("KVMI_IOCTL_GET_VERSION", r));
}

static inline void kvmi_get_layout(int fd, struct kvmi_layout *lo)
{
	int r;

	memset(lo, 0, sizeof(*lo));
	lo->size = sizeof(*lo);
	r = ioctl(fd, KVMI_IOCTL_GET_LAYOUT, lo);
	TEST_ASSERT(!r, __KVM_SYSCALL_ERROR("KVMI_IOCTL_GET_LAYOUT", r));
}

static inline void *kvmi_mmap(int fd, uint64_t offset, uint64_t size,
			      int prot)
{
	void *p = mmap(NULL, size, prot, MAP_SHARED, fd, offset);

	TEST_ASSERT(p != MAP_FAILED,
		    "mmap of 0x%lx bytes at 0x%lx, prot %d: errno %d (%s)",
		    size, offset, prot, errno, strerror(errno));
	return p;
}

struct kvmi_sk;
static inline struct kvmi_sk *kvmi_sk_of(int fd);
static inline void kvmi_sk_close(struct kvmi_sk *sk);

/*
 * The mappings of every area, for all max_vcpus vCPUs; @sk: the tool's
 * end of the socket if the fd was opened with the socket transport.
 */
struct kvmi_maps {
	struct kvmi_layout lo;
	struct kvmi_vm_state *vm;
	uint8_t *kernel;
	uint8_t *tool;
	struct kvmi_sk *sk;
};

static inline void kvmi_map_all(int fd, struct kvmi_maps *m)
{
	m->sk = kvmi_sk_of(fd);
	kvmi_get_layout(fd, &m->lo);
	m->vm = kvmi_mmap(fd, m->lo.vm_offset, m->lo.vm_size, PROT_READ);
	m->kernel = kvmi_mmap(fd, m->lo.kernel_offset,
			      m->lo.max_vcpus * m->lo.kernel_stride, PROT_READ);
	m->tool = kvmi_mmap(fd, m->lo.tool_offset,
			    m->lo.max_vcpus * m->lo.tool_stride,
			    PROT_READ | PROT_WRITE);
}

static inline void kvmi_unmap_all(struct kvmi_maps *m)
{
	if (m->sk)
		kvmi_sk_close(m->sk);
	m->sk = NULL;
	munmap(m->vm, m->lo.vm_size);
	munmap(m->kernel, m->lo.max_vcpus * m->lo.kernel_stride);
	munmap(m->tool, m->lo.max_vcpus * m->lo.tool_stride);
}

static inline struct kvmi_vcpu_state *
kvmi_vcpu_state(struct kvmi_maps *m, uint32_t i)
{
	return (void *)(m->kernel + i * m->lo.kernel_stride +
			m->lo.kernel_off.state);
}

static inline struct kvmi_tool_state *
kvmi_tool_state(struct kvmi_maps *m, uint32_t i)
{
	return (void *)(m->tool + i * m->lo.tool_stride + m->lo.tool_off.state);
}

static inline struct kvmi_event *kvmi_event_slot(struct kvmi_maps *m,
						 uint32_t i)
{
	return (void *)(m->kernel + i * m->lo.kernel_stride +
			m->lo.kernel_off.event);
}

static inline struct kvmi_vcpu_counters *
kvmi_counters(struct kvmi_maps *m, uint32_t i)
{
	return (void *)(m->kernel + i * m->lo.kernel_stride +
			m->lo.kernel_off.counters);
}

static inline struct kvmi_reply *kvmi_reply_slot(struct kvmi_maps *m,
						 uint32_t i)
{
	return (void *)(m->tool + i * m->lo.tool_stride + m->lo.tool_off.reply);
}

static inline struct kvmi_cmd *kvmi_cmd_slot(struct kvmi_maps *m, uint32_t i)
{
	return (void *)(m->tool + i * m->lo.tool_stride + m->lo.tool_off.cmd);
}

static inline struct kvmi_cmd_result *
kvmi_cmd_result_slot(struct kvmi_maps *m, uint32_t i)
{
	return (void *)(m->kernel + i * m->lo.kernel_stride +
			m->lo.kernel_off.cmd_result);
}

static inline int __kvmi_control_events(int fd, uint32_t vcpu,
					uint16_t event, uint8_t enable)
{
	struct kvmi_control_events ce = {
		.vcpu = vcpu,
		.event = event,
		.enable = enable,
	};

	return ioctl(fd, KVMI_IOCTL_CONTROL_EVENTS, &ce);
}

static inline void kvmi_control_events(int fd, uint32_t vcpu,
				       uint16_t event, uint8_t enable)
{
	int r = __kvmi_control_events(fd, vcpu, event, enable);

	TEST_ASSERT(!r, __KVM_SYSCALL_ERROR("KVMI_IOCTL_CONTROL_EVENTS", r));
}

/* KVMI_IOCTL_CONTROL_EVENTS with a register (CR, MSR events). */
static inline int __kvmi_control_events_param(int fd, uint32_t vcpu,
					      uint16_t event, uint8_t enable,
					      uint32_t param)
{
	struct kvmi_control_events ce = {
		.vcpu = vcpu,
		.event = event,
		.enable = enable,
		.param = param,
	};

	return ioctl(fd, KVMI_IOCTL_CONTROL_EVENTS, &ce);
}

static inline void kvmi_control_events_param(int fd, uint32_t vcpu,
					     uint16_t event, uint8_t enable,
					     uint32_t param)
{
	int r = __kvmi_control_events_param(fd, vcpu, event, enable, param);

	TEST_ASSERT(!r, __KVM_SYSCALL_ERROR("KVMI_IOCTL_CONTROL_EVENTS", r));
}

static inline int __kvmi_set_doorbells(int fd, uint32_t vcpu, uint32_t flags,
				       int notify_fd, int kick_fd)
{
	struct kvmi_doorbells db = {
		.vcpu = vcpu,
		.flags = flags,
		.notify_fd = notify_fd,
		.kick_fd = kick_fd,
	};

	return ioctl(fd, KVMI_IOCTL_SET_VCPU_DOORBELLS, &db);
}

static inline void kvmi_set_doorbells(int fd, uint32_t vcpu, uint32_t flags,
				      int notify_fd, int kick_fd)
{
	int r = __kvmi_set_doorbells(fd, vcpu, flags, notify_fd, kick_fd);

	TEST_ASSERT(!r,
		    __KVM_SYSCALL_ERROR("KVMI_IOCTL_SET_VCPU_DOORBELLS", r));
}

static inline int __kvmi_set_wait_mode(int fd, uint32_t vcpu, uint32_t mode,
				       uint64_t spin_ns)
{
	struct kvmi_wait_mode wm = {
		.vcpu = vcpu,
		.mode = mode,
		.spin_ns = spin_ns,
	};

	return ioctl(fd, KVMI_IOCTL_SET_WAIT_MODE, &wm);
}

static inline void kvmi_set_wait_mode(int fd, uint32_t vcpu, uint32_t mode,
				      uint64_t spin_ns)
{
	int r = __kvmi_set_wait_mode(fd, vcpu, mode, spin_ns);

	TEST_ASSERT(!r, __KVM_SYSCALL_ERROR("KVMI_IOCTL_SET_WAIT_MODE", r));
}

/*
 * Tool side of the protocol (kvmi.rst, section 9.4), for tests.
 *
 * Wait for an event on vCPU @i whose seq is not @last: spin if @notify_fd
 * is -1 (KVMI_TOOL_POLLING must then be set by the caller), else sleep on
 * the notify eventfd. Returns the event's seq.
 */
static inline uint32_t kvmi_sk_wait_event(struct kvmi_sk *sk, uint32_t i,
					  uint32_t last);
static inline uint32_t kvmi_sk_event_seq(struct kvmi_sk *sk, uint32_t i);
static inline void kvmi_sk_send(struct kvmi_sk *sk, uint16_t id,
				uint32_t seq, uint32_t vcpu,
				const void *payload, uint32_t size);
static inline struct kvmi_cmd_result *
kvmi_sk_wait_result(struct kvmi_sk *sk, uint32_t i, uint32_t seq);

static inline uint32_t kvmi_wait_event(struct kvmi_maps *m, uint32_t i,
				       int notify_fd, uint32_t last)
{
	struct kvmi_event *ev = kvmi_event_slot(m, i);
	uint64_t cnt;
	uint32_t s;

	if (m->sk)
		return kvmi_sk_wait_event(m->sk, i, last);
	for (;;) {
		/* T1: pairs with the kernel's store-release (K1). */
		s = __atomic_load_n(&ev->seq, __ATOMIC_ACQUIRE);
		if (s && s != last)
			return s;
		if (notify_fd < 0)
			continue;
		TEST_ASSERT(read(notify_fd, &cnt, sizeof(cnt)) == sizeof(cnt),
			    "read(notify_fd): %s", strerror(errno));
	}
}

/*
 * Publish a reply (T2), then kick the vCPU if it asked for it (T3) and
 * @kick_fd is not -1. @regs is copied only if not NULL.
 */
static inline void kvmi_send_reply(struct kvmi_maps *m, uint32_t i,
				   uint32_t seq, uint16_t event,
				   uint8_t action, uint32_t flags,
				   const struct kvmi_x86_regs *regs,
				   int kick_fd)
{
	struct kvmi_reply *rp = kvmi_reply_slot(m, i);
	struct kvmi_vcpu_state *vs = kvmi_vcpu_state(m, i);
	uint64_t one = 1;

	rp->event = event;
	rp->action = action;
	rp->padding1 = 0;
	rp->flags = flags;
	rp->padding2 = 0;
	if (regs)
		rp->regs = *regs;
	__atomic_store_n(&rp->seq, seq, __ATOMIC_RELEASE);	/* T2 */
	if (m->sk) {
		/* The slot as the ring would read it, as a message. */
		kvmi_sk_send(m->sk, KVMI_MSG_REPLY, seq, i, rp, sizeof(*rp));
		return;
	}
	__atomic_thread_fence(__ATOMIC_SEQ_CST);		/* T3 */
	if (kick_fd >= 0 &&
	    (__atomic_load_n(&vs->flags, __ATOMIC_RELAXED) &
	     KVMI_VCPU_NEED_KICK))
		TEST_ASSERT(write(kick_fd, &one, sizeof(one)) == sizeof(one),
			    "write(kick_fd): %s", strerror(errno));
}

/* T3: after publishing a reply or a command, kick the vCPU if it sleeps. */
static inline void kvmi_kick_if_needed(struct kvmi_maps *m, uint32_t i,
				       int kick_fd)
{
	struct kvmi_vcpu_state *vs = kvmi_vcpu_state(m, i);
	uint64_t one = 1;

	if (m->sk)
		return;		/* the socket is the doorbell */
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	if (kick_fd >= 0 &&
	    (__atomic_load_n(&vs->flags, __ATOMIC_RELAXED) &
	     KVMI_VCPU_NEED_KICK))
		TEST_ASSERT(write(kick_fd, &one, sizeof(one)) == sizeof(one),
			    "write(kick_fd): %s", strerror(errno));
}

/*
 * The seq of the last event vCPU @i sent: the event a command is for
 * (struct kvmi_cmd.event) while the vCPU waits in it.
 */
static inline uint32_t kvmi_cur_event(struct kvmi_maps *m, uint32_t i)
{
	if (m->sk)
		return kvmi_sk_event_seq(m->sk, i);
	return __atomic_load_n(&kvmi_event_slot(m, i)->seq, __ATOMIC_ACQUIRE);
}

/*
 * Publish command @id with @args (T4; NULL: no arguments) for event
 * @event in vCPU @i's command slot, then kick the vCPU if it asked for it
 * (T3) and @kick_fd is not -1. Returns the command's seq.
 */
static inline uint32_t __kvmi_send_cmd(struct kvmi_maps *m, uint32_t i,
				       uint16_t id,
				       const union kvmi_cmd_args *args,
				       uint32_t event, int kick_fd)
{
	struct kvmi_cmd *c = kvmi_cmd_slot(m, i);
	uint32_t seq = c->seq + 1;

	if (!seq)
		seq = 1;
	c->id = id;
	c->flags = 0;
	c->event = event;
	c->padding = 0;
	if (args)
		c->args = *args;
	else
		memset(&c->args, 0, sizeof(c->args));
	__atomic_store_n(&c->seq, seq, __ATOMIC_RELEASE);	/* T4 */
	if (m->sk)
		kvmi_sk_send(m->sk, KVMI_MSG_VCPU_COMMAND, seq, i, c,
			     sizeof(*c));
	kvmi_kick_if_needed(m, i, kick_fd);			/* T3 */
	return seq;
}

/* __kvmi_send_cmd() for the event vCPU @i waits in (kvmi_cur_event()). */
static inline uint32_t kvmi_send_cmd(struct kvmi_maps *m, uint32_t i,
				     uint16_t id, const union kvmi_cmd_args *args,
				     int kick_fd)
{
	return __kvmi_send_cmd(m, i, id, args, kvmi_cur_event(m, i), kick_fd);
}

/* Wait for the result of command @seq on vCPU @i (T5); returns it. */
static inline struct kvmi_cmd_result *
kvmi_wait_cmd_result(struct kvmi_maps *m, uint32_t i, uint32_t seq)
{
	struct kvmi_cmd_result *res = kvmi_cmd_result_slot(m, i);

	if (m->sk)
		return kvmi_sk_wait_result(m->sk, i, seq);
	while (__atomic_load_n(&res->seq, __ATOMIC_ACQUIRE) != seq)
		;
	return res;
}

/* Run command @id on vCPU @i, waiting in an event; returns its error. */
static inline int kvmi_run_cmd(struct kvmi_maps *m, uint32_t i, uint16_t id,
			       const union kvmi_cmd_args *args, int kick_fd)
{
	uint32_t seq = kvmi_send_cmd(m, i, id, args, kick_fd);

	return kvmi_wait_cmd_result(m, i, seq)->error;
}

/* Wait until vCPU @i has finished event @seq (T7). */
static inline void kvmi_wait_done(struct kvmi_maps *m, uint32_t i,
				  uint32_t seq)
{
	struct kvmi_vcpu_state *vs = kvmi_vcpu_state(m, i);

	while (__atomic_load_n(&vs->done_seq, __ATOMIC_ACQUIRE) != seq)
		;
}

/*
 * A thread that runs a vCPU once (one KVM_RUN) while the test plays the
 * tool, and records how it returned. A guest assertion fails the test.
 */
struct kvmi_runner {
	struct kvm_vcpu *vcpu;
	pthread_t thread;
	bool joined;		/* kvmi_runner_join() done */
	int ret;		/* KVM_RUN's return value */
	int err;		/* its errno */
	uint32_t exit_reason;
	uint64_t ucall;		/* UCALL_* if it exited for a ucall */
	uint64_t args[3];	/* the ucall's first arguments */
	pid_t tid;		/* the thread's id, set before KVM_RUN */
};

/* One KVM_RUN of @arg's vCPU; the body of the runner's thread. */
static inline void *kvmi_runner_fn(void *arg)
{
	struct kvmi_runner *r = arg;
	struct ucall uc;

	__atomic_store_n(&r->tid, syscall(SYS_gettid), __ATOMIC_RELEASE);
	r->ret = __vcpu_run(r->vcpu);
	r->err = errno;
	r->exit_reason = r->vcpu->run->exit_reason;
	if (r->ret || r->exit_reason != KVM_EXIT_IO)
		return NULL;
	r->ucall = get_ucall(r->vcpu, &uc);
	if (r->ucall == UCALL_ABORT)
		REPORT_GUEST_ASSERT(uc);
	memcpy(r->args, uc.args, sizeof(r->args));
	return NULL;
}

/* Clear @r and run @vcpu once on a new thread. */
static inline void kvmi_runner_start(struct kvmi_runner *r,
				     struct kvm_vcpu *vcpu)
{
	memset(r, 0, sizeof(*r));
	r->vcpu = vcpu;
	TEST_ASSERT(!pthread_create(&r->thread, NULL, kvmi_runner_fn, r),
		    "pthread_create");
}

/* Wait for the KVM_RUN of kvmi_runner_start() to return. */
static inline void kvmi_runner_join(struct kvmi_runner *r)
{
	pthread_join(r->thread, NULL);
	r->joined = true;
}

/* Pass a file descriptor over a unix socket (SCM_RIGHTS). */
static inline void kvmi_send_fd(int sock, int fd)
{
	char cbuf[CMSG_SPACE(sizeof(int))] = {};
	char byte = 0;
	struct iovec iov = { .iov_base = &byte, .iov_len = 1 };
	struct msghdr msg = {
		.msg_iov = &iov,
		.msg_iovlen = 1,
		.msg_control = cbuf,
		.msg_controllen = sizeof(cbuf),
	};
	struct cmsghdr *cmsg = CMSG_FIRSTHDR(&msg);

	cmsg->cmsg_level = SOL_SOCKET;
	cmsg->cmsg_type = SCM_RIGHTS;
	cmsg->cmsg_len = CMSG_LEN(sizeof(int));
	memcpy(CMSG_DATA(cmsg), &fd, sizeof(int));
	TEST_ASSERT(sendmsg(sock, &msg, 0) == 1, "sendmsg: %s",
		    strerror(errno));
}

static inline int kvmi_recv_fd(int sock)
{
	char cbuf[CMSG_SPACE(sizeof(int))] = {};
	char byte;
	struct iovec iov = { .iov_base = &byte, .iov_len = 1 };
	struct msghdr msg = {
		.msg_iov = &iov,
		.msg_iovlen = 1,
		.msg_control = cbuf,
		.msg_controllen = sizeof(cbuf),
	};
	struct cmsghdr *cmsg;
	int fd;

	TEST_ASSERT(recvmsg(sock, &msg, 0) == 1, "recvmsg: %s",
		    strerror(errno));
	cmsg = CMSG_FIRSTHDR(&msg);
	TEST_ASSERT(cmsg && cmsg->cmsg_type == SCM_RIGHTS, "no fd received");
	memcpy(&fd, CMSG_DATA(cmsg), sizeof(int));
	return fd;
}

/*
 * The socket transport (kvmi.rst, section 22) behind the helpers above,
 * so that a test runs on either transport with the same body: after
 * kvmi_use_transport(KVMI_TRANSPORT_SOCKET), kvmi_open() hands the kernel
 * one end of a socketpair and kvmi_map_all() finds the other. Then
 * kvmi_send_reply() and kvmi_send_cmd() fill the tool's slots as with the
 * ring and send what they hold as messages, kvmi_wait_event(),
 * kvmi_wait_cmd_result() and kvmi_run_cmd() wait for messages (notify
 * and kick eventfds are ignored: the socket is the doorbell). The kernel
 * still writes the kernel area (event and result slots, vCPU state,
 * counters), so tests read them as before; VM commands stay ioctls,
 * which work with both transports.
 *
 * One thread at a time reads the socket and files each message by vCPU;
 * every waiter takes its turn at reading until its own message is there.
 */
#define KVMI_SK_VCPUS	8
#define KVMI_SK_FDS	1024

struct kvmi_sk {
	int s;				/* the tool's end */
	pthread_mutex_t rx;		/* held by the thread reading */
	pthread_mutex_t tx;		/* keeps messages whole */
	uint32_t event_seq[KVMI_SK_VCPUS];	/* last EVENT (atomic) */
	uint32_t result_seq[KVMI_SK_VCPUS];	/* last VCPU_RESULT (atomic) */
	struct kvmi_cmd_result result[KVMI_SK_VCPUS];
	uint32_t unhooks;		/* KVMI_MSG_UNHOOK seen (atomic) */
};

/* The socket of each introspection fd opened by kvmi_sk_open_fd(). */
static struct kvmi_sk *kvmi_sk_fds[KVMI_SK_FDS];

static inline void kvmi_use_transport(uint32_t transport)
{
	kvmi_test_transport = transport;
}

static inline struct kvmi_sk *kvmi_sk_of(int fd)
{
	return fd >= 0 && fd < KVMI_SK_FDS ? kvmi_sk_fds[fd] : NULL;
}

static inline void kvmi_sk_close(struct kvmi_sk *sk)
{
	int i;

	for (i = 0; i < KVMI_SK_FDS; i++)
		if (kvmi_sk_fds[i] == sk)
			kvmi_sk_fds[i] = NULL;
	close(sk->s);
	pthread_mutex_destroy(&sk->rx);
	pthread_mutex_destroy(&sk->tx);
	free(sk);
}

static inline int kvmi_sk_open_fd(int vm_fd)
{
	struct kvmi_open op = kvmi_open_args();
	struct kvmi_sk *sk;
	int sv[2], fd;

	TEST_ASSERT(!socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv),
		    "socketpair: %s", strerror(errno));
	op.transport = KVMI_TRANSPORT_SOCKET;
	op.transport_fd = sv[1];
	fd = __kvmi_open(vm_fd, &op);
	TEST_ASSERT(fd >= 0,
		    __KVM_SYSCALL_ERROR("KVM_INTROSPECTION_OPEN (socket)", fd));
	TEST_ASSERT(fd < KVMI_SK_FDS, "fd %d", fd);
	close(sv[1]);

	sk = calloc(1, sizeof(*sk));
	TEST_ASSERT(sk, "calloc");
	sk->s = sv[0];
	pthread_mutex_init(&sk->rx, NULL);
	pthread_mutex_init(&sk->tx, NULL);
	/* An earlier introspection fd of that number is gone. */
	if (kvmi_sk_fds[fd])
		kvmi_sk_close(kvmi_sk_fds[fd]);
	kvmi_sk_fds[fd] = sk;
	return fd;
}

static inline void kvmi_sk_read(struct kvmi_sk *sk, void *buf, size_t len)
{
	size_t done = 0;
	ssize_t n;

	while (done < len) {
		n = recv(sk->s, (char *)buf + done, len - done, 0);
		TEST_ASSERT(n > 0, "socket transport: recv: %s",
			    n ? strerror(errno) : "end of file");
		done += n;
	}
}

/* Read one message and file it (with sk->rx held). */
static inline void kvmi_sk_read_one(struct kvmi_sk *sk)
{
	union {
		struct kvmi_event ev;
		struct kvmi_cmd_result res;
		uint8_t bytes[KVMI_MSG_MAX_SIZE];
	} *p;
	struct kvmi_msg_hdr hdr;

	kvmi_sk_read(sk, &hdr, sizeof(hdr));
	TEST_ASSERT(!hdr.flags && hdr.size <= KVMI_MSG_MAX_SIZE,
		    "socket transport: message %u, flags %u, size %u",
		    hdr.id, hdr.flags, hdr.size);
	p = malloc(sizeof(*p));
	TEST_ASSERT(p, "malloc");
	kvmi_sk_read(sk, p, hdr.size);
	switch (hdr.id) {
	case KVMI_MSG_EVENT:
		TEST_ASSERT(hdr.size == sizeof(p->ev) &&
			    hdr.vcpu < KVMI_SK_VCPUS &&
			    p->ev.vcpu == hdr.vcpu && p->ev.seq == hdr.seq,
			    "socket transport: bad EVENT");
		__atomic_store_n(&sk->event_seq[hdr.vcpu], hdr.seq,
				 __ATOMIC_RELEASE);
		break;
	case KVMI_MSG_VCPU_RESULT:
		TEST_ASSERT(hdr.size == sizeof(p->res) &&
			    hdr.vcpu < KVMI_SK_VCPUS && p->res.seq == hdr.seq,
			    "socket transport: bad VCPU_RESULT");
		sk->result[hdr.vcpu] = p->res;
		__atomic_store_n(&sk->result_seq[hdr.vcpu], hdr.seq,
				 __ATOMIC_RELEASE);
		break;
	case KVMI_MSG_UNHOOK:
		TEST_ASSERT(!hdr.size, "socket transport: bad UNHOOK");
		__atomic_add_fetch(&sk->unhooks, 1, __ATOMIC_RELEASE);
		break;
	default:
		TEST_FAIL("socket transport: unexpected message %u", hdr.id);
	}
	free(p);
}

/* Read a message if no other thread is reading, else let it. */
static inline void kvmi_sk_pump(struct kvmi_sk *sk)
{
	if (pthread_mutex_trylock(&sk->rx)) {
		sched_yield();
		return;
	}
	kvmi_sk_read_one(sk);
	pthread_mutex_unlock(&sk->rx);
}

static inline uint32_t kvmi_sk_event_seq(struct kvmi_sk *sk, uint32_t i)
{
	TEST_ASSERT(i < KVMI_SK_VCPUS, "vCPU %u", i);
	return __atomic_load_n(&sk->event_seq[i], __ATOMIC_ACQUIRE);
}

static inline uint32_t kvmi_sk_wait_event(struct kvmi_sk *sk, uint32_t i,
					  uint32_t last)
{
	uint32_t s;

	TEST_ASSERT(i < KVMI_SK_VCPUS, "vCPU %u", i);
	for (;;) {
		s = __atomic_load_n(&sk->event_seq[i], __ATOMIC_ACQUIRE);
		if (s && s != last)
			return s;
		kvmi_sk_pump(sk);
	}
}

static inline struct kvmi_cmd_result *
kvmi_sk_wait_result(struct kvmi_sk *sk, uint32_t i, uint32_t seq)
{
	TEST_ASSERT(i < KVMI_SK_VCPUS, "vCPU %u", i);
	while (__atomic_load_n(&sk->result_seq[i], __ATOMIC_ACQUIRE) != seq)
		kvmi_sk_pump(sk);
	return &sk->result[i];
}

static inline void kvmi_sk_send(struct kvmi_sk *sk, uint16_t id,
				uint32_t seq, uint32_t vcpu,
				const void *payload, uint32_t size)
{
	struct kvmi_msg_hdr hdr = {
		.id = id, .size = size, .seq = seq, .vcpu = vcpu,
	};
	struct iovec iov[2] = {
		{ .iov_base = &hdr, .iov_len = sizeof(hdr) },
		{ .iov_base = (void *)payload, .iov_len = size },
	};
	struct msghdr msg = { .msg_iov = iov, .msg_iovlen = 2 };
	ssize_t n;

	pthread_mutex_lock(&sk->tx);
	n = sendmsg(sk->s, &msg, MSG_NOSIGNAL);
	pthread_mutex_unlock(&sk->tx);
	TEST_ASSERT(n == (ssize_t)(sizeof(hdr) + size),
		    "socket transport: send: %s", strerror(errno));
}

/* The transports a test runs on: FIXTURE_VARIANT_ADD(f, ring/socket). */
#define KVMI_TRANSPORT_VARIANTS(f)					\
FIXTURE_VARIANT(f) {							\
	uint32_t transport;						\
};									\
FIXTURE_VARIANT_ADD(f, ring) {						\
	.transport = KVMI_TRANSPORT_RING,				\
};									\
FIXTURE_VARIANT_ADD(f, socket) {					\
	.transport = KVMI_TRANSPORT_SOCKET,				\
}

/* In a test of such a fixture: skip it on the socket transport, why. */
#define KVMI_RING_ONLY(why) do {					\
	if (variant->transport == KVMI_TRANSPORT_SOCKET)		\
		SKIP(return, "ring transport only: " why);		\
} while (0)

/*
 * Where the next kvmi_send_reply() for vCPU @i takes the reply's data
 * from (the data union of struct kvmi_reply, which it doesn't fill): the
 * reply slot, with either transport (the socket's message is a copy of
 * the slot).
 */
static inline struct kvmi_reply *kvmi_reply_buf(struct kvmi_maps *m,
						uint32_t i)
{
	return kvmi_reply_slot(m, i);
}

/*
 * The seeded xorshift64* generator of the fuzz and torture tests: one
 * stream per program, so that the seed a test prints (-s SEED) replays
 * its choices (rng_state = seed | 1). A forked tool adds its own number
 * to the state.
 */
static uint64_t rng_state = 1;

static inline uint64_t rnd(void)
{
	rng_state ^= rng_state >> 12;
	rng_state ^= rng_state << 25;
	rng_state ^= rng_state >> 27;
	return rng_state * 0x2545f4914f6cdd1dULL;
}

static inline uint32_t rnd_below(uint32_t n)
{
	return rnd() % n;
}

static inline void rnd_bytes(void *p, size_t n)
{
	uint8_t *b = p;

	while (n--)
		*b++ = rnd();
}

/*
 * Read @n elements of the vCPU's binary stat @name (KVM_GET_STATS_FD)
 * into @data. Returns whether the kernel has the stat (@data untouched
 * if not).
 */
static inline bool kvmi_vcpu_stats(struct kvm_vcpu *vcpu, const char *name,
				   uint64_t *data, size_t n)
{
	struct kvm_stats_header header;
	struct kvm_stats_desc *descs, *d;
	int fd = vcpu_get_stats_fd(vcpu);
	bool found = false;
	size_t size, i;

	read_stats_header(fd, &header);
	descs = read_stats_descriptors(fd, &header);
	size = get_stats_descriptor_size(&header);
	for (i = 0; i < header.num_desc; i++) {
		d = (void *)descs + i * size;
		if (!strcmp(d->name, name)) {
			read_stat_data(fd, &header, d, data, n);
			found = true;
			break;
		}
	}
	free(descs);
	close(fd);
	return found;
}

/* The value of the vCPU's stat @name; fails the test if there is none. */
static inline uint64_t kvmi_vcpu_stat(struct kvm_vcpu *vcpu, const char *name)
{
	uint64_t v;

	TEST_ASSERT(kvmi_vcpu_stats(vcpu, name, &v, 1), "no vCPU stat %s",
		    name);
	return v;
}

#endif /* SELFTEST_KVM_KVMI_UTIL_H */
