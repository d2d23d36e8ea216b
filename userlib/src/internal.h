/* SPDX-License-Identifier: LGPL-2.1-or-later OR MIT */
/*
 * libkvmi internals: the objects behind the public handles and the
 * memory-ordering helpers. Not installed.
 */
#ifndef KVMI_INTERNAL_H
#define KVMI_INTERNAL_H

#include <errno.h>
#include <stdbool.h>
#include <stdint.h>

#include "kvmi/kvmi.h"

#define __cold		__attribute__((cold))
#define __hidden	__attribute__((visibility("hidden")))

/*
 * Memory ordering (Documentation/virt/kvm/kvmi.rst, section 9). Each call
 * site names the kernel step (K1..K7) it pairs with.
 */
#define READ_ONCE(x)	(*(const volatile typeof(x) *)&(x))
#define WRITE_ONCE(x, v) (*(volatile typeof(x) *)&(x) = (v))
#define load_acquire(p)		__atomic_load_n((p), __ATOMIC_ACQUIRE)
#define store_release(p, v)	__atomic_store_n((p), (v), __ATOMIC_RELEASE)
#define smp_mb()		__atomic_thread_fence(__ATOMIC_SEQ_CST)
#define smp_rmb()		__atomic_thread_fence(__ATOMIC_ACQUIRE)

static inline void cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
	__builtin_ia32_pause();
#endif
}

/* Tool-side wait mode of a vCPU (kvmi_vcpu_set_tool_mode()). */
struct kvmi_tool_mode {
	uint32_t mode;		/* KVMI_WAIT_* */
	uint64_t spin_ns;	/* HYBRID: how long to spin before sleeping */
};

/*
 * One vCPU. Every member but notify_fd is touched only by the thread that
 * serves this vCPU; the structure is cache-line aligned so that two
 * vCPUs served by two threads share no line.
 */
struct kvmi_vcpu {
	struct kvmi_dom *dom;
	uint32_t index;

	/* Kernel-written region (mapped read-only). */
	const struct kvmi_vcpu_state *vs;
	const struct kvmi_event *ev;
	const struct kvmi_cmd_result *res;
	const struct kvmi_vcpu_counters *counters;
	const uint8_t *kdata;
	uint32_t kdata_size;

	/* Tool-written region. */
	struct kvmi_tool_state *ts;
	struct kvmi_reply *rp;
	struct kvmi_cmd *cmd;
	uint8_t *tdata;
	uint32_t tdata_size;

	uint32_t last;		/* seq of the last event popped, 0 at first */
	uint32_t cur;		/* seq of the event popped, not replied; 0 */
	uint16_t cur_id;	/* its id */
	uint32_t cmd_seq;	/* seq of the last command published */
	uint32_t inject_seq;	/* seq of the last INJECT_EXCEPTION queued */
	int notify_fd;		/* own notify eventfd, -1: the VM-wide one */
	int kick_fd;		/* own kick eventfd, -1: the VM-wide one */
	struct kvmi_tool_mode tool;
} __attribute__((aligned(64)));

struct kvmi_sock;	/* sock.c */

/* Sizes of the records this library was built with. */
#define KVMI_VERSION_SIZE_MIN	offsetof(struct kvmi_version, padding)

struct kvmi_dom {
	int fd;			/* introspection fd, -1 for a simulated one */
	int notify_fd;		/* VM-wide notify eventfd */
	int kick_fd;		/* VM-wide kick eventfd */
	int epfd;		/* kvmi_dom_pollfd(), -1 until asked */
	struct kvmi_version ver;
	struct kvmi_layout lo;

	const struct kvmi_vm_state *vm;
	const uint8_t *kernel;
	uint8_t *tool;
	bool mapped;		/* the three areas are our mmap()s */

	/* KVMI_IOCTL_CHECK_COMMAND for the vCPU commands 0x40-0x7f. */
	int cmd_check[64];

	uint32_t max_vcpus;
	struct kvmi_vcpu *vcpus;	/* max_vcpus of them */

	struct kvmi_sock *sock;	/* KVMI_TRANSPORT_SOCKET; NULL: the ring */
};

/* dom.c */
__hidden int kvmi__validate(const struct kvmi_version *ver,
			    const struct kvmi_layout *lo);
__hidden int kvmi__dom_setup(struct kvmi_dom *dom);
__hidden void kvmi__dom_free(struct kvmi_dom *dom);
__hidden int kvmi__ioctl(int fd, unsigned long req, void *arg);

/* vcpu.c */
__hidden int kvmi__kick(struct kvmi_vcpu *v);
__hidden bool kvmi__detached(const struct kvmi_dom *dom);
__hidden int kvmi__answer_pending(struct kvmi_vcpu *v);

/* sock.c: the socket transport (section 22) */
__hidden int kvmi__sock_attach(struct kvmi_dom *dom, int sock_fd);
__hidden void kvmi__sock_free(struct kvmi_dom *dom, bool keep_fd);
__hidden int kvmi__sock_fd(const struct kvmi_dom *dom);
__hidden void kvmi__sock_notify(struct kvmi_dom *dom);
__hidden bool kvmi__sock_ended(struct kvmi_dom *dom);
__hidden bool kvmi__sock_unhook(struct kvmi_dom *dom);
__hidden int kvmi__sock_pump(struct kvmi_dom *dom);
__hidden int kvmi__sock_take_event(struct kvmi_dom *dom, uint32_t idx,
				   struct kvmi_event *ev, int ms);
__hidden const struct kvmi_event *
kvmi__sock_peek_event(struct kvmi_dom *dom, uint32_t idx);
__hidden int kvmi__sock_send(struct kvmi_dom *dom, uint16_t id, uint32_t seq,
			     uint32_t vcpu, const void *payload,
			     uint32_t size);
__hidden int kvmi__sock_command(struct kvmi_dom *dom, uint32_t idx,
				const struct kvmi_cmd *cmd,
				struct kvmi_cmd_result *res);

/*
 * For the host unit tests (no KVM): a dom over memory the test owns, with
 * no introspection fd; the test plays the kernel. Not exported by the
 * shared library.
 */
int kvmi__dom_simulated(const struct kvmi_version *ver,
			const struct kvmi_layout *lo, void *vm, void *kernel,
			void *tool, struct kvmi_dom **domp);
/* The same with the socket transport: the test holds @sock_fd's peer. */
int kvmi__dom_simulated_socket(const struct kvmi_version *ver,
			       const struct kvmi_layout *lo, void *vm,
			       void *kernel, void *tool, int sock_fd,
			       struct kvmi_dom **domp);
/*
 * The socket transport's waits, for the tests: @wakeups counts the
 * returns from a condition variable wait since the dom was opened,
 * @waiting the threads asleep in one now, @reading whether a thread
 * reads the socket.
 */
struct kvmi__sock_stats {
	uint64_t wakeups;
	uint32_t waiting;
	bool reading;
};
void kvmi__sock_stats(struct kvmi_dom *dom, struct kvmi__sock_stats *st);
int kvmi__dom_notify_fd(const struct kvmi_dom *dom);
int kvmi__dom_kick_fd(const struct kvmi_dom *dom);
int kvmi__vcpu_notify_fd(const struct kvmi_vcpu *v);
int kvmi__vcpu_kick_fd(const struct kvmi_vcpu *v);

#endif /* KVMI_INTERNAL_H */
