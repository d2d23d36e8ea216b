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
#include <stdint.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

#include <linux/kvmi.h>

#include "kvm_util.h"
#include "test_util.h"

/* Skip the test on a kernel without kvmi-ring. */
#define KVMI_REQUIRE() TEST_REQUIRE(kvm_has_cap(KVM_CAP_INTROSPECTION))

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
	int fd = __kvmi_open(vm_fd, &op);

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

/* The mappings of every area, for all max_vcpus vCPUs. */
struct kvmi_maps {
	struct kvmi_layout lo;
	struct kvmi_vm_state *vm;
	uint8_t *kernel;
	uint8_t *tool;
};

static inline void kvmi_map_all(int fd, struct kvmi_maps *m)
{
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
static inline uint32_t kvmi_wait_event(struct kvmi_maps *m, uint32_t i,
				       int notify_fd, uint32_t last)
{
	struct kvmi_event *ev = kvmi_event_slot(m, i);
	uint64_t cnt;
	uint32_t s;

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

	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	if (kick_fd >= 0 &&
	    (__atomic_load_n(&vs->flags, __ATOMIC_RELAXED) &
	     KVMI_VCPU_NEED_KICK))
		TEST_ASSERT(write(kick_fd, &one, sizeof(one)) == sizeof(one),
			    "write(kick_fd): %s", strerror(errno));
}

/*
 * Publish command @id with @args (T4; NULL: no arguments) in vCPU @i's
 * command slot, then kick the vCPU if it asked for it (T3) and @kick_fd
 * is not -1. Returns the command's seq.
 */
static inline uint32_t kvmi_send_cmd(struct kvmi_maps *m, uint32_t i,
				     uint16_t id, const union kvmi_cmd_args *args,
				     int kick_fd)
{
	struct kvmi_cmd *c = kvmi_cmd_slot(m, i);
	uint32_t seq = c->seq + 1;

	if (!seq)
		seq = 1;
	c->id = id;
	c->flags = 0;
	c->padding1 = 0;
	c->padding2 = 0;
	if (args)
		c->args = *args;
	else
		memset(&c->args, 0, sizeof(c->args));
	__atomic_store_n(&c->seq, seq, __ATOMIC_RELEASE);	/* T4 */
	kvmi_kick_if_needed(m, i, kick_fd);			/* T3 */
	return seq;
}

/* Wait for the result of command @seq on vCPU @i (T5); returns it. */
static inline struct kvmi_cmd_result *
kvmi_wait_cmd_result(struct kvmi_maps *m, uint32_t i, uint32_t seq)
{
	struct kvmi_cmd_result *res = kvmi_cmd_result_slot(m, i);

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

#endif /* SELFTEST_KVM_KVMI_UTIL_H */
