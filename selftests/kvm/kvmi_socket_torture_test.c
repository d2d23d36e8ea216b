// SPDX-License-Identifier: GPL-2.0-only
/*
 * kvmi-ring torture on the socket transport: the tool killed, the VM
 * destroyed, random messages (Documentation/virt/kvm/kvmi-torture.rst,
 * section 5; the protocol is kvmi.rst, section 22).
 *
 * Two vCPUs run a guest that issues the KVMi hypercall and an INT3 in a
 * loop and checks a checksum of its data; every introspection here is
 * opened with KVMI_TRANSPORT_SOCKET on one end of a socketpair.
 *
 * tool_killed: a tool process owns the tool's end of the socket and the
 * introspection fd, enables HYPERCALL and BREAKPOINT on both vCPUs over
 * the socket, answers a few events, then is SIGKILLed with both vCPUs
 * waiting in its events and maybe a vCPU command in flight, a flood of VM
 * commands in flight (the receive thread blocked writing a result to a
 * full socket), or half a message written. After each kill a new socket
 * introspection opens and works (a VM command, an event and its reply),
 * and both vCPUs go on running the guest. At the end the guest's data
 * checksum is intact and KVM's binary stats account for every event:
 * kvmi_events == kvmi_replies + kvmi_bad_replies + kvmi_deadlines +
 * kvmi_detach_releases, with at least one release per kill.
 *
 * vm_destroyed: the VM is destroyed while the tool holds the socket and
 * the fd, both vCPUs' events pending (their threads left KVM_RUN on a
 * signal), a vCPU command queued for each, and maybe a flood of VM
 * commands or half a message in flight: the tool reads what was sent,
 * then end of file; a write fails with EPIPE; the fd is detached
 * (KVMI_VM_DETACHED, ENODEV, POLLHUP), its mappings still readable, and
 * everything closes cleanly, in either order.
 *
 * random_messages: a hostile tool, round after round: it opens a socket
 * introspection while the vCPUs raise events and sends, seeded at random,
 * valid replies (random valid actions, registers set to the event's
 * values or to random values in the registers the guest gives up), replies
 * with bad contents (wrong event id, padding, unknown or denied flags,
 * invalid action, registers KVM refuses), vCPU commands with random ids,
 * flags, arguments and events (the one waiting, or another: -ESRCH), VM
 * commands with random ids and arguments,
 * READ/WRITE_PHYSICAL with random addresses and sizes; then ends the round
 * with a malformed message (random header fields: id, flags, size 0 or
 * above KVMI_MSG_MAX_SIZE, vCPU out of range; a reply to no event or
 * twice, record and header seq apart, VM command padding, sizes that
 * don't match), random bytes, a truncated message and a close, or just
 * by closing. Pass: every well-formed message gets its answer and the
 * connection stays (a bad reply ends its event with KVMI_DONE_BAD_REPLY,
 * a good one with KVMI_DONE_REPLY; a bad command gets its error); every
 * malformed one gets end of file, with the fd detached; after each round
 * both vCPUs go on and a new introspection opens; physical reads return
 * the guest's bytes, writes land only in the scratch memslot; at the end
 * the checksum is intact and the stats add up (the replies and bad
 * replies are exactly those sent). The VMM's allow-list denies what
 * would change the guest beyond repair (SHUTDOWN_GUEST, SET_XSAVE,
 * INJECT_EXCEPTION, single-stepping, the TRAP, DESCRIPTOR and PAGE_FAULT
 * events); such commands get -EPERM.
 *
 *	kvmi_socket_torture_test [-k KILLS] [-v DESTROYS] [-m MESSAGES]
 *				 [-s SEED]
 *
 * KILLS: 10 by default, or $KVMI_SOCK_TORTURE_KILLS; DESTROYS: 3, or
 * $KVMI_SOCK_TORTURE_DESTROYS; MESSAGES: 2000, or $KVMI_SOCK_FUZZ_MESSAGES.
 * A count of 0 skips its subtest.
 *
 * reply_seq0: a reply with seq 0 to a vCPU that has sent no event must end
 * the connection, as any reply to no event (kvmi.rst, section 22.4); the
 * kernel once took it for a late reply.
 *
 * signal_in_send: a vCPU thread blocked writing its event to a full socket
 * (the kernel's end at its smallest SO_SNDBUF, a 4 KiB result unread) is
 * signalled, as a VMM kicks its vCPU threads; then the tool reads. The
 * event must come and its reply be applied. (Before the socket's send
 * thread, the interrupted write ended the introspection.)
 */
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <time.h>

#include "kvmi_util.h"
#include "processor.h"
#include "ucall_common.h"

#define NR_VCPUS	2
#define DATA_WORDS	1024

/* How long a wait may see nothing happen before the test calls it a hang. */
#define HANG_SECONDS	120

/* READ/WRITE_PHYSICAL targets besides the guest's own memory. */
#define SCRATCH_GPA	0x10000000ULL	/* two pages, slot 10, writable */
#define SCRATCH_SIZE	(2 * 4096)
#define RO_GPA		0x10100000ULL	/* one page, slot 11, read-only */
#define NOWHERE_GPA	(1ULL << 40)	/* in no memslot */

static uint64_t guest_data[DATA_WORDS] __aligned(4096);
static uint64_t guest_sum;
static volatile int guest_stop;
static uint64_t guest_iters[NR_VCPUS];
static uint64_t guest_bps[NR_VCPUS];

static uint64_t checksum(const uint64_t *p)
{
	uint64_t h = 0xcbf29ce484222325ULL;
	int i;

	for (i = 0; i < DATA_WORDS; i++)
		h = (h ^ p[i]) * 0x100000001b3ULL;
	return h;
}

/* The INT3's #BP, when no BREAKPOINT event takes it or ALLOW passes it. */
static void guest_bp_handler(struct ex_regs *regs)
{
	guest_bps[regs->rdi & 1]++;
}

/*
 * RBX, RCX, RDX, RSI (and RAX at the VMMCALL) are given up at each event:
 * a reply may set random values in them.
 */
static void guest_code(uint64_t id)
{
	while (!guest_stop) {
		uint64_t rax = KVM_HC_KVMI;

		asm volatile("vmmcall" : "+a"(rax) : "D"(id)
			     : "rbx", "rcx", "rdx", "rsi", "memory");
		asm volatile("int3" : : "D"(id)
			     : "rbx", "rcx", "rdx", "rsi", "memory");
		GUEST_ASSERT_EQ(checksum(guest_data), guest_sum);
		WRITE_ONCE(guest_iters[id], guest_iters[id] + 1);
	}
	GUEST_DONE();
}

struct runner {
	struct kvm_vcpu *vcpu;
	pthread_t thread;
	bool stop;		/* leave at the next KVM_RUN return */
	bool done;		/* GUEST_DONE */
	uint64_t crashes;	/* KVM_EXIT_SYSTEM_EVENT(CRASH): ran again */
};

static void *runner_fn(void *arg)
{
	struct runner *r = arg;
	struct kvm_run *run = r->vcpu->run;
	struct ucall uc;
	int ret;

	while (!__atomic_load_n(&r->stop, __ATOMIC_ACQUIRE)) {
		ret = __vcpu_run(r->vcpu);
		if (ret) {
			TEST_ASSERT(errno == EINTR, "KVM_RUN: %s",
				    strerror(errno));
			continue;
		}
		if (run->exit_reason == KVM_EXIT_SYSTEM_EVENT) {
			TEST_ASSERT(run->system_event.type ==
				    KVM_SYSTEM_EVENT_CRASH,
				    "system event %u", run->system_event.type);
			r->crashes++;	/* RIP is at the instruction again */
			continue;
		}
		/*
		 * KVM on SVM resets the vCPU at a shutdown intercept: its
		 * registers tell nothing (kvmi-torture.rst, section 5).
		 */
		TEST_ASSERT(run->exit_reason != KVM_EXIT_SHUTDOWN,
			    "vCPU %u: triple fault (KVM_EXIT_SHUTDOWN)",
			    r->vcpu->id);
		TEST_ASSERT(run->exit_reason == KVM_EXIT_IO,
			    "vCPU exit %s", exit_reason_str(run->exit_reason));
		switch (get_ucall(r->vcpu, &uc)) {
		case UCALL_DONE:
			__atomic_store_n(&r->done, true, __ATOMIC_RELEASE);
			return NULL;
		case UCALL_ABORT:
			REPORT_GUEST_ASSERT(uc);
			break;
		default:
			TEST_FAIL("unexpected ucall %lu", uc.cmd);
		}
	}
	return NULL;
}

static void sig_nop(int sig)
{
}

/*
 * A VM with two vCPUs running the guest; with the scratch and read-only
 * memslots if @slots (added before the vCPU threads start: the library's
 * memslot list is not thread-safe).
 */
static struct kvm_vm *create_vm(struct kvm_vcpu **vcpus, struct runner *r,
				bool slots)
{
	struct kvm_vm *vm = vm_create_with_vcpus(NR_VCPUS, guest_code, vcpus);
	uint64_t *data = addr_gva2hva(vm, (vm_vaddr_t)guest_data);
	uint32_t i;

	vm_install_exception_handler(vm, BP_VECTOR, guest_bp_handler);
	if (slots) {
		vm_userspace_mem_region_add(vm, VM_MEM_SRC_ANONYMOUS,
					    SCRATCH_GPA, 10,
					    SCRATCH_SIZE / 4096, 0);
		vm_userspace_mem_region_add(vm, VM_MEM_SRC_ANONYMOUS, RO_GPA,
					    11, 1, KVM_MEM_READONLY);
	}
	for (i = 0; i < DATA_WORDS; i++)
		data[i] = rnd();
	guest_sum = checksum(data);
	sync_global_to_guest(vm, guest_sum);
	for (i = 0; i < NR_VCPUS; i++) {
		vcpu_args_set(vcpus[i], 1, i);
		memset(&r[i], 0, sizeof(r[i]));
		r[i].vcpu = vcpus[i];
		pthread_create(&r[i].thread, NULL, runner_fn, &r[i]);
	}
	return vm;
}

/* Stop the vCPU threads wherever they are: a signal ends any wait. */
static void stop_runners(struct runner *r)
{
	uint32_t i;

	for (i = 0; i < NR_VCPUS; i++) {
		__atomic_store_n(&r[i].stop, true, __ATOMIC_RELEASE);
		while (pthread_tryjoin_np(r[i].thread, NULL)) {
			pthread_kill(r[i].thread, SIGUSR1);
			usleep(1000);
		}
	}
}

/* Let the guest finish: both vCPUs reach GUEST_DONE. */
static void finish_guest(struct kvm_vm *vm, struct runner *r)
{
	uint32_t i;

	*(volatile int *)addr_gva2hva(vm, (vm_vaddr_t)&guest_stop) = 1;
	for (i = 0; i < NR_VCPUS; i++) {
		pthread_join(r[i].thread, NULL);
		TEST_ASSERT(r[i].done, "vCPU %u did not finish", i);
	}
}

static uint64_t vcpu_iters(struct kvm_vm *vm, uint32_t i)
{
	uint64_t *it = addr_gva2hva(vm, (vm_vaddr_t)guest_iters);

	return READ_ONCE(it[i]);
}

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

/* Both vCPUs run the guest: each makes two more iterations than @before. */
static void assert_progress(struct kvm_vm *vm, const uint64_t *before,
			    const char *when, uint32_t k)
{
	double t0 = now_s();
	uint32_t i;

	for (i = 0; i < NR_VCPUS; i++) {
		while (vcpu_iters(vm, i) < before[i] + 2) {
			TEST_ASSERT(now_s() - t0 < HANG_SECONDS,
				    "%s %u: vCPU %u stuck at %lu iterations",
				    when, k, i, vcpu_iters(vm, i));
			usleep(1000);
		}
	}
}

struct stats {
	uint64_t ev, rep, bad, dl, det;
};

static void read_stats(struct kvm_vcpu *vcpu, uint32_t i, struct stats *s)
{
	s->ev = kvmi_vcpu_stat(vcpu, "kvmi_events");
	s->rep = kvmi_vcpu_stat(vcpu, "kvmi_replies");
	s->bad = kvmi_vcpu_stat(vcpu, "kvmi_bad_replies");
	s->dl = kvmi_vcpu_stat(vcpu, "kvmi_deadlines");
	s->det = kvmi_vcpu_stat(vcpu, "kvmi_detach_releases");
	ksft_print_msg("vCPU %u: %lu events = %lu replies + %lu bad + %lu deadlines + %lu detach\n",
		       i, s->ev, s->rep, s->bad, s->dl, s->det);
}

/*
 * The tool's side of one socket introspection: what it has read and what
 * it waits for. Every message from the kernel is checked as it is read.
 */
struct pend {
	uint32_t seq;			/* 0: no event waiting */
	uint16_t id;
	bool noreply;			/* may have been ended by UNPAUSE */
	struct kvmi_x86_regs regs;
};

#define EXPECT_ANY	1		/* any documented error, or 0 */

struct conn {
	int fd;				/* the introspection fd, or -1 */
	int s;				/* the tool's end, or -1 */
	struct kvmi_maps m;
	bool mapped;
	uint8_t rbuf[4 * (sizeof(struct kvmi_msg_hdr) + KVMI_MSG_MAX_SIZE)];
	size_t rlen;
	bool eof;			/* recv() returned 0 */
	bool reset;			/* ECONNRESET */
	uint32_t last_seq[NR_VCPUS];
	struct pend pend[NR_VCPUS];
	bool hazard[NR_VCPUS];		/* UNPAUSEd: no reply to PAUSE */
	/* The vCPU command outstanding on each vCPU. */
	bool cmd_out[NR_VCPUS];
	uint32_t cmd_seq[NR_VCPUS];
	uint16_t cmd_id[NR_VCPUS];
	int cmd_expect[NR_VCPUS];
	uint64_t cmd_rip[NR_VCPUS];	/* GET_REGISTERS in an event: its RIP */
	/* The VM command outstanding, and its result. */
	bool vm_out;
	uint32_t vm_seq;
	uint32_t vm_flood;		/* results of a flood to accept */
	uint32_t vm_res_size;
	uint8_t vm_res[KVMI_MSG_MAX_SIZE];
	uint64_t events;
	uint32_t seq;			/* the tool's next command seq */
};

/* The errors kvmi.rst documents for commands. */
static bool documented(int e)
{
	switch (-e) {
	case 0: case EINVAL: case EPERM: case ENOENT: case EOPNOTSUPP:
	case E2BIG: case EBUSY: case EFAULT: case ENOMEM: case ENODEV:
	case ESRCH:
		return true;
	}
	return false;
}

static void conn_file(struct conn *c, const struct kvmi_msg_hdr *hdr,
		      const uint8_t *p)
{
	const struct kvmi_cmd_result *res = (const void *)p;
	const struct kvmi_event *ev = (const void *)p;
	uint32_t v = hdr->vcpu;

	switch (hdr->id) {
	case KVMI_MSG_EVENT:
		TEST_ASSERT(hdr->size == sizeof(*ev) && v < NR_VCPUS &&
			    ev->vcpu == v && ev->seq == hdr->seq,
			    "bad EVENT: vCPU %u, seq %u, size %u", v, hdr->seq,
			    hdr->size);
		TEST_ASSERT(ev->seq > c->last_seq[v],
			    "vCPU %u: event seq %u after %u", v, ev->seq,
			    c->last_seq[v]);
		/* Only UNPAUSE ends an event the tool hasn't answered. */
		TEST_ASSERT(!c->pend[v].seq || c->pend[v].noreply,
			    "vCPU %u: event %u (%u) while %u (%u) waits for its reply",
			    v, ev->seq, ev->id, c->pend[v].seq, c->pend[v].id);
		c->last_seq[v] = ev->seq;
		c->pend[v].seq = ev->seq;
		c->pend[v].id = ev->id;
		c->pend[v].regs = ev->regs;
		if (ev->id != KVMI_EVENT_PAUSE)
			c->hazard[v] = false;
		c->pend[v].noreply = c->hazard[v];
		c->events++;
		break;
	case KVMI_MSG_VCPU_RESULT:
		TEST_ASSERT(hdr->size == sizeof(*res) && v < NR_VCPUS,
			    "bad VCPU_RESULT: vCPU %u, size %u", v, hdr->size);
		TEST_ASSERT(c->cmd_out[v] && hdr->seq == c->cmd_seq[v] &&
			    res->seq == hdr->seq && res->id == c->cmd_id[v],
			    "vCPU %u: result %u (id 0x%x) for no command (%u, 0x%x)",
			    v, hdr->seq, res->id, c->cmd_seq[v], c->cmd_id[v]);
		if (c->cmd_expect[v] == EXPECT_ANY)
			TEST_ASSERT(documented(res->error),
				    "vCPU command 0x%x: error %d", res->id,
				    res->error);
		else
			TEST_ASSERT(res->error == c->cmd_expect[v],
				    "vCPU command 0x%x: error %d, not %d",
				    res->id, res->error, c->cmd_expect[v]);
		if (c->cmd_rip[v] && !res->error)
			TEST_ASSERT(res->result.get_registers.regs.rip ==
				    c->cmd_rip[v],
				    "GET_REGISTERS in an event: RIP 0x%llx, not 0x%lx",
				    res->result.get_registers.regs.rip,
				    c->cmd_rip[v]);
		c->cmd_out[v] = false;
		break;
	case KVMI_MSG_VM_RESULT:
		TEST_ASSERT(!v && hdr->size >= sizeof(struct kvmi_msg_vm_result),
			    "bad VM_RESULT: vCPU %u, size %u", v, hdr->size);
		if (c->vm_flood) {
			c->vm_flood--;
			break;
		}
		TEST_ASSERT(c->vm_out && hdr->seq == c->vm_seq,
			    "VM_RESULT %u for no command (%u)", hdr->seq,
			    c->vm_seq);
		memcpy(c->vm_res, p, hdr->size);
		c->vm_res_size = hdr->size;
		c->vm_out = false;
		break;
	default:
		TEST_FAIL("unexpected message %u (size %u)", hdr->id,
			  hdr->size);
	}
}

/* Read what the kernel sent, waiting up to @ms for it; file it. */
static void conn_pump(struct conn *c, int ms)
{
	struct pollfd pfd = { .fd = c->s, .events = POLLIN };
	struct kvmi_msg_hdr hdr;
	size_t off = 0;
	ssize_t n;

	if (c->eof || c->reset || c->s < 0)
		return;
	if (poll(&pfd, 1, ms) <= 0)
		return;
	n = recv(c->s, c->rbuf + c->rlen, sizeof(c->rbuf) - c->rlen,
		 MSG_DONTWAIT);
	if (!n) {
		c->eof = true;
	} else if (n < 0) {
		if (errno == ECONNRESET)
			c->reset = true;
		else
			TEST_ASSERT(errno == EAGAIN, "recv: %s",
				    strerror(errno));
		return;
	}
	c->rlen += n > 0 ? n : 0;
	while (c->rlen - off >= sizeof(hdr)) {
		memcpy(&hdr, c->rbuf + off, sizeof(hdr));
		TEST_ASSERT(!hdr.flags && hdr.size <= KVMI_MSG_MAX_SIZE,
			    "kernel message %u: flags %u, size %u", hdr.id,
			    hdr.flags, hdr.size);
		if (c->rlen - off < sizeof(hdr) + hdr.size)
			break;
		conn_file(c, &hdr, c->rbuf + off + sizeof(hdr));
		off += sizeof(hdr) + hdr.size;
	}
	memmove(c->rbuf, c->rbuf + off, c->rlen - off);
	c->rlen -= off;
	TEST_ASSERT(!c->eof || !c->rlen, "end of file within a message");
}

/*
 * Wait until @cond, reading the socket meanwhile; the end of the
 * connection, or nothing for HANG_SECONDS, fails the test.
 */
#define conn_wait(c, cond, fmt, ...) do {				\
	double __t0 = now_s();						\
									\
	while (!(cond)) {						\
		TEST_ASSERT(!(c)->eof && !(c)->reset,			\
			    "connection ended, waiting for " fmt,	\
			    ##__VA_ARGS__);				\
		TEST_ASSERT(now_s() - __t0 < HANG_SECONDS,		\
			    "nothing came, waiting for " fmt,		\
			    ##__VA_ARGS__);				\
		conn_pump(c, 10);					\
	}								\
} while (0)

/* Wait for the end of file, after whatever the kernel still sends. */
static void conn_wait_eof(struct conn *c, const char *why)
{
	double t0 = now_s();

	while (!c->eof) {
		TEST_ASSERT(!c->reset, "%s: ECONNRESET, not end of file", why);
		TEST_ASSERT(now_s() - t0 < HANG_SECONDS,
			    "%s: the kernel did not end the connection", why);
		conn_pump(c, 10);
	}
}

/*
 * Write @len bytes, reading meanwhile so that neither side blocks on a
 * full socket. Returns 0, or -errno once the connection is gone.
 */
static int conn_write(struct conn *c, const void *buf, size_t len)
{
	struct pollfd pfd = { .fd = c->s, .events = POLLIN | POLLOUT };
	size_t off = 0;
	ssize_t n;

	while (off < len) {
		n = send(c->s, (const char *)buf + off, len - off,
			 MSG_DONTWAIT | MSG_NOSIGNAL);
		if (n > 0) {
			off += n;
			continue;
		}
		if (errno != EAGAIN)
			return -errno;
		poll(&pfd, 1, 10);
		conn_pump(c, 0);
	}
	return 0;
}

/* A message; @size is the header's, @n the bytes of payload sent. */
static int conn_msg(struct conn *c, uint16_t id, uint16_t flags,
		    uint32_t size, uint32_t seq, uint32_t vcpu,
		    const void *p, size_t n)
{
	static uint8_t buf[sizeof(struct kvmi_msg_hdr) + 2 * KVMI_MSG_MAX_SIZE];
	struct kvmi_msg_hdr hdr = {
		.id = id, .flags = flags, .size = size, .seq = seq,
		.vcpu = vcpu,
	};

	TEST_ASSERT(n <= 2 * KVMI_MSG_MAX_SIZE, "message too large");
	memcpy(buf, &hdr, sizeof(hdr));
	if (n)
		memcpy(buf + sizeof(hdr), p, n);
	return conn_write(c, buf, sizeof(hdr) + n);
}

/* A well-formed message: the connection must take it. */
static void conn_send(struct conn *c, uint16_t id, uint32_t seq,
		      uint32_t vcpu, const void *p, size_t n)
{
	int r = conn_msg(c, id, 0, n, seq, vcpu, p, n);

	TEST_ASSERT(!r, "message %u: %s", id, strerror(-r));
}

/* Open a socket introspection; map it if @map. */
static void conn_open(struct conn *c, struct kvm_vm *vm, bool map)
{
	struct kvmi_open op = kvmi_open_args();
	int sv[2];

	memset(c, 0, sizeof(*c));
	TEST_ASSERT(!socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv),
		    "socketpair: %s", strerror(errno));
	op.transport = KVMI_TRANSPORT_SOCKET;
	op.transport_fd = sv[1];
	c->fd = __kvmi_open(vm->fd, &op);
	TEST_ASSERT(c->fd >= 0,
		    __KVM_SYSCALL_ERROR("KVM_INTROSPECTION_OPEN (socket)",
					c->fd));
	close(sv[1]);
	c->s = sv[0];
	c->seq = 1000;
	if (map) {
		kvmi_map_all(c->fd, &c->m);
		c->mapped = true;
	}
}

static void conn_close(struct conn *c, bool fd_first)
{
	if (fd_first && c->fd >= 0)
		close(c->fd);
	if (c->mapped)
		kvmi_unmap_all(&c->m);
	if (c->s >= 0)
		close(c->s);
	if (!fd_first && c->fd >= 0)
		close(c->fd);
	c->fd = -1;
	c->s = -1;
	c->mapped = false;
}

/*
 * A VM command: returns its error; the argument comes back in @arg. The
 * result must echo the command, and carry the argument back if the
 * command is one the socket serves.
 */
static int conn_vm_cmd(struct conn *c, uint16_t cmd, void *arg, size_t size,
		       bool served)
{
	struct kvmi_msg_vm_command vc = { .cmd = cmd };
	const struct kvmi_msg_vm_result *res = (const void *)c->vm_res;
	uint8_t buf[sizeof(vc) + 256];

	TEST_ASSERT(size <= 256, "argument too large");
	memcpy(buf, &vc, sizeof(vc));
	memcpy(buf + sizeof(vc), arg, size);
	c->vm_seq = c->seq++;
	c->vm_out = true;
	conn_send(c, KVMI_MSG_VM_COMMAND, c->vm_seq, 0, buf,
		  sizeof(vc) + size);
	conn_wait(c, !c->vm_out, "VM command 0x%x", cmd);
	TEST_ASSERT(res->cmd == cmd && !res->padding1,
		    "VM_RESULT for 0x%x: cmd 0x%x", cmd, res->cmd);
	TEST_ASSERT(c->vm_res_size == sizeof(*res) + (served ? size : 0),
		    "VM_RESULT for 0x%x: size %u", cmd, c->vm_res_size);
	if (served)
		memcpy(arg, res + 1, size);
	return res->error;
}

static void conn_control_events(struct conn *c, uint32_t vcpu, uint16_t ev,
				uint8_t enable)
{
	struct kvmi_control_events ce = {
		.vcpu = vcpu, .event = ev, .enable = enable,
	};
	int err = conn_vm_cmd(c, KVMI_CMD_CONTROL_EVENTS, &ce, sizeof(ce),
			      true);

	TEST_ASSERT(!err, "CONTROL_EVENTS %u: %d", ev, err);
}

static void conn_reply(struct conn *c, uint32_t i, const struct kvmi_reply *rp)
{
	conn_send(c, KVMI_MSG_REPLY, c->pend[i].seq, i, rp, sizeof(*rp));
	c->pend[i].seq = 0;
}

static void conn_reply_continue(struct conn *c, uint32_t i)
{
	struct kvmi_reply rp = {
		.seq = c->pend[i].seq, .event = c->pend[i].id,
		.action = KVMI_ACTION_CONTINUE,
	};

	conn_reply(c, i, &rp);
}

/* vCPU @i's event @seq has ended: returns why (KVMI_DONE_*). */
static uint8_t conn_wait_done(struct conn *c, uint32_t i, uint32_t seq)
{
	struct kvmi_vcpu_state *vs = kvmi_vcpu_state(&c->m, i);

	conn_wait(c, __atomic_load_n(&vs->done_seq, __ATOMIC_ACQUIRE) == seq,
		  "vCPU %u to finish event %u", i, seq);
	return READ_ONCE(vs->done_reason);
}

/* Send vCPU command @cmd; the result is checked when it comes. */
static void conn_vcpu_cmd(struct conn *c, uint32_t i, const struct kvmi_cmd *cmd,
			  int expect)
{
	TEST_ASSERT(!c->cmd_out[i], "two commands on vCPU %u", i);
	c->cmd_out[i] = true;
	c->cmd_seq[i] = c->seq++;
	c->cmd_id[i] = cmd->id;
	c->cmd_expect[i] = expect;
	c->cmd_rip[i] = 0;
	if (cmd->id == KVMI_CMD_GET_REGISTERS && c->pend[i].seq &&
	    !c->pend[i].noreply && cmd->event == c->pend[i].seq)
		c->cmd_rip[i] = c->pend[i].regs.rip;
	conn_send(c, KVMI_MSG_VCPU_COMMAND, c->cmd_seq[i], i, cmd,
		  sizeof(*cmd));
}

/* READ/WRITE_PHYSICAL as a VM command message. */
struct phys_cmd {
	struct kvmi_msg_vm_command vc;
	struct kvmi_physical ph;
} __packed;

/*
 * Send @pc (and, for a write, @n bytes of @data after it), wait for the
 * result: it must echo the argument and bring the bytes of a read that
 * succeeded, in @data. Returns its error.
 */
static int conn_phys(struct conn *c, const struct phys_cmd *pc,
		     uint8_t *data, uint32_t n)
{
	static uint8_t buf[KVMI_MSG_MAX_SIZE];
	const struct kvmi_msg_vm_result *res = (const void *)c->vm_res;
	bool write = pc->vc.cmd == KVMI_CMD_WRITE_PHYSICAL;
	int err;

	memcpy(buf, pc, sizeof(*pc));
	if (write)
		memcpy(buf + sizeof(*pc), data, n);
	c->vm_seq = c->seq++;
	c->vm_out = true;
	conn_send(c, KVMI_MSG_VM_COMMAND, c->vm_seq, 0, buf,
		  sizeof(*pc) + (write ? n : 0));
	conn_wait(c, !c->vm_out, "%s_PHYSICAL", write ? "WRITE" : "READ");
	err = res->error;
	TEST_ASSERT(res->cmd == pc->vc.cmd, "physical: cmd 0x%x", res->cmd);
	TEST_ASSERT(!memcmp(res + 1, &pc->ph, sizeof(pc->ph)),
		    "physical: the argument comes back as sent");
	if (!err && !write) {
		TEST_ASSERT(c->vm_res_size == sizeof(*res) + sizeof(pc->ph) +
			    pc->ph.size, "READ_PHYSICAL: size %u",
			    c->vm_res_size);
		memcpy(data, c->vm_res + sizeof(*res) + sizeof(pc->ph),
		       pc->ph.size);
	} else {
		TEST_ASSERT(c->vm_res_size == sizeof(*res) + sizeof(pc->ph),
			    "physical: result size %u, error %d",
			    c->vm_res_size, err);
	}
	return err;
}

/*
 * Flood the kernel with READ_PHYSICAL commands it answers with 4 KiB
 * each, reading nothing, until the socket is full both ways: the receive
 * thread is then blocked writing a result. Returns how many were sent.
 */
static uint32_t conn_flood(struct conn *c, uint64_t gpa)
{
	struct phys_cmd pc = {
		.vc.cmd = KVMI_CMD_READ_PHYSICAL,
		.ph = { .gpa = gpa, .size = KVMI_MSG_PHYSICAL_MAX },
	};
	uint8_t buf[sizeof(struct kvmi_msg_hdr) + sizeof(pc)];
	struct kvmi_msg_hdr hdr = {
		.id = KVMI_MSG_VM_COMMAND, .size = sizeof(pc),
	};
	uint32_t n;

	for (n = 0; n < 4000; n++) {
		hdr.seq = c->seq++;
		memcpy(buf, &hdr, sizeof(hdr));
		memcpy(buf + sizeof(hdr), &pc, sizeof(pc));
		if (send(c->s, buf, sizeof(buf), MSG_DONTWAIT | MSG_NOSIGNAL) !=
		    sizeof(buf))
			break;
	}
	TEST_ASSERT(errno == EAGAIN || n == 4000, "flood: %s",
		    strerror(errno));
	c->vm_flood += n;
	return n;
}

/*
 * tool_killed: the tool, in a process of its own. It opens and maps,
 * enables the events over the socket, answers @replies events, then
 * leaves both vCPUs waiting and does one of: nothing more, a vCPU
 * command, a flood of VM commands, half a message; says so through
 * @ready and waits to be killed.
 */
enum { KILL_WAITING, KILL_VCPU_CMD, KILL_VM_CMDS, KILL_HALF, NR_KILL_KINDS };

static const char * const kill_names[NR_KILL_KINDS] = {
	"vCPUs waiting", "vCPU command", "VM commands", "half a message",
};

static void __noreturn tool_child(struct kvm_vm *vm, int ready,
				  uint32_t replies, uint32_t kind)
{
	struct kvmi_cmd cmd = { .id = KVMI_CMD_GET_REGISTERS };
	struct kvmi_wait_mode wm = {
		.vcpu = KVMI_ALL_VCPUS, .mode = rnd_below(3),
	};
	struct kvmi_pause_all pa = {};
	static struct conn c;
	uint32_t i;

	conn_open(&c, vm, true);
	conn_control_events(&c, KVMI_ALL_VCPUS, KVMI_EVENT_HYPERCALL, 1);
	conn_control_events(&c, KVMI_ALL_VCPUS, KVMI_EVENT_BREAKPOINT, 1);
	if (wm.mode == KVMI_WAIT_HYBRID)
		wm.spin_ns = KVMI_WAIT_DEFAULT_SPIN_NS;
	TEST_ASSERT(!conn_vm_cmd(&c, KVMI_CMD_SET_WAIT_MODE, &wm, sizeof(wm),
				 true), "SET_WAIT_MODE");
	if (rnd_below(4) == 0)
		TEST_ASSERT(!conn_vm_cmd(&c, KVMI_CMD_PAUSE_ALL, &pa,
					 sizeof(pa), true), "PAUSE_ALL");

	while (replies--) {
		i = rnd_below(NR_VCPUS);
		conn_wait(&c, c.pend[i].seq, "an event of vCPU %u", i);
		conn_reply_continue(&c, i);
	}
	/* Both vCPUs wait in an event. */
	conn_wait(&c, c.pend[0].seq && c.pend[1].seq, "both vCPUs' events");

	switch (kind) {
	case KILL_VCPU_CMD:
		for (i = 0; i < NR_VCPUS; i++) {
			cmd.event = c.pend[i].seq;
			if (rnd_below(2) || !i)
				conn_vcpu_cmd(&c, i, &cmd, 0);
		}
		break;
	case KILL_VM_CMDS:
		/* vCPU 1 may be writing its next event when the kill comes. */
		if (rnd_below(2))
			conn_reply_continue(&c, 1);
		cmd.event = c.pend[0].seq;
		if (rnd_below(2))
			conn_vcpu_cmd(&c, 0, &cmd, 0);
		conn_flood(&c, addr_gva2gpa(vm, (vm_vaddr_t)guest_data));
		break;
	case KILL_HALF: {
		struct kvmi_reply rp = {
			.seq = c.pend[0].seq, .event = c.pend[0].id,
		};
		struct kvmi_msg_hdr hdr = {
			.id = KVMI_MSG_REPLY, .size = sizeof(rp),
			.seq = rp.seq,
		};
		uint8_t buf[sizeof(hdr) + sizeof(rp)];

		memcpy(buf, &hdr, sizeof(hdr));
		memcpy(buf + sizeof(hdr), &rp, sizeof(rp));
		TEST_ASSERT(!conn_write(&c, buf, sizeof(hdr) +
					rnd_below(sizeof(rp))), "half");
		break;
	}
	default:
		break;
	}
	TEST_ASSERT(write(ready, "w", 1) == 1, "write");
	for (;;)
		pause();
}

/*
 * After a kill: a new socket introspection opens and works (a VM
 * command, an event and its reply), then is closed.
 */
static void check_reopen(struct kvm_vm *vm)
{
	struct kvmi_version ver = { .size = sizeof(ver) };
	struct conn *c = calloc(1, sizeof(*c));
	uint32_t i = rnd_below(NR_VCPUS), seq;

	TEST_ASSERT(c, "calloc");
	conn_open(c, vm, true);
	TEST_ASSERT(!conn_vm_cmd(c, KVMI_CMD_GET_VERSION, &ver, sizeof(ver),
				 true), "GET_VERSION");
	TEST_ASSERT(ver.features & KVMI_FEATURE_SOCKET, "no socket feature");
	conn_control_events(c, i, KVMI_EVENT_HYPERCALL, 1);
	conn_wait(c, c->pend[i].seq, "an event after the kill");
	seq = c->pend[i].seq;
	conn_reply_continue(c, i);
	TEST_ASSERT(conn_wait_done(c, i, seq) == KVMI_DONE_REPLY,
		    "the reply was not applied");
	conn_close(c, rnd_below(2));
	free(c);
}

static void tool_killed(uint32_t kills)
{
	struct kvm_vcpu *vcpus[NR_VCPUS];
	struct runner r[NR_VCPUS];
	uint32_t kinds[NR_KILL_KINDS] = {}, k, i;
	uint64_t *data, before[NR_VCPUS], detach = 0, replies = 0;
	struct stats st;
	struct kvm_vm *vm;

	vm = create_vm(vcpus, r, false);
	data = addr_gva2hva(vm, (vm_vaddr_t)guest_data);

	for (k = 0; k < kills; k++) {
		uint32_t kind = rnd_below(NR_KILL_KINDS);
		uint32_t replies = rnd_below(6);
		struct pollfd pfd;
		int ready[2], status;
		pid_t pid;
		char ch;

		TEST_ASSERT(!pipe(ready), "pipe");
		pid = fork();
		TEST_ASSERT(pid >= 0, "fork");
		if (!pid) {
			close(ready[0]);
			rng_state += k;
			tool_child(vm, ready[1], replies, kind);
		}
		close(ready[1]);
		pfd.fd = ready[0];
		pfd.events = POLLIN;
		TEST_ASSERT(poll(&pfd, 1, -1) == 1, "poll");
		TEST_ASSERT(read(ready[0], &ch, 1) == 1,
			    "kill %u: the tool died before it was ready", k);
		/* Sometimes at once, sometimes once the vCPU may sleep. */
		if (rnd_below(2))
			usleep(rnd_below(2000));
		for (i = 0; i < NR_VCPUS; i++)
			before[i] = vcpu_iters(vm, i);
		TEST_ASSERT(!kill(pid, SIGKILL), "kill");
		TEST_ASSERT(waitpid(pid, &status, 0) == pid, "waitpid");
		TEST_ASSERT(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL,
			    "kill %u: tool status 0x%x", k, status);
		close(ready[0]);
		kinds[kind]++;

		/* The introspection ended with the tool: a new one works. */
		check_reopen(vm);
		/* And the guest goes on, on both vCPUs. */
		assert_progress(vm, before, "kill", k);
		if ((k + 1) % 50 == 0)
			ksft_print_msg("%u kills\n", k + 1);
	}

	finish_guest(vm, r);
	TEST_ASSERT(checksum(data) == guest_sum, "guest data changed");
	for (i = 0; i < NR_KILL_KINDS; i++)
		ksft_print_msg("killed with %s: %u\n", kill_names[i],
			       kinds[i]);
	for (i = 0; i < NR_VCPUS; i++) {
		read_stats(vcpus[i], i, &st);
		TEST_ASSERT(st.ev == st.rep + st.bad + st.dl + st.det,
			    "vCPU %u: events not accounted for", i);
		replies += st.rep;
		if (!i)
			detach = st.det;
	}
	/* Each check_reopen() applied a reply. */
	TEST_ASSERT(replies >= kills, "%lu replies for %u kills", replies,
		    kills);
	/* Each kill left vCPU 0 waiting. */
	TEST_ASSERT(detach >= kills, "vCPU 0: %lu releases for %u kills",
		    detach, kills);
	kvm_vm_free(vm);
}

static void vm_destroyed(uint32_t destroys)
{
	struct kvmi_cmd cmd = { .id = KVMI_CMD_GET_REGISTERS };
	struct kvm_vcpu *vcpus[NR_VCPUS];
	struct runner r[NR_VCPUS];
	uint32_t k, i, floods = 0, flooded = 0;
	static struct conn c;

	for (k = 0; k < destroys; k++) {
		struct kvmi_version ver = { .size = sizeof(ver) };
		uint32_t flood = 0, what = k % 3;
		struct kvmi_msg_hdr hdr = {};
		struct pollfd pfd;
		struct kvm_vm *vm;
		int n;

		vm = create_vm(vcpus, r, false);
		conn_open(&c, vm, true);
		conn_control_events(&c, KVMI_ALL_VCPUS, KVMI_EVENT_HYPERCALL,
				    1);
		conn_wait(&c, c.pend[0].seq && c.pend[1].seq,
			  "both vCPUs' events");

		/* The events stay pending, the vCPU threads leave. */
		stop_runners(r);
		/*
		 * Queued, never served: a result may come as the events end,
		 * -ESRCH (kvmi.rst 11.2), but no other.
		 */
		for (i = 0; i < NR_VCPUS; i++) {
			cmd.event = c.pend[i].seq;
			conn_vcpu_cmd(&c, i, &cmd, -ESRCH);
		}
		if (what == 1) {
			uint64_t gpa = addr_gva2gpa(vm, (vm_vaddr_t)guest_data);

			flood = conn_flood(&c, gpa);
			floods++;
			flooded += flood;
		} else if (what == 2) {
			hdr.id = KVMI_MSG_VM_COMMAND;
			hdr.size = 64;
			hdr.seq = c.seq++;
			TEST_ASSERT(!conn_write(&c, &hdr, sizeof(hdr)),
				    "header");
		}
		kvm_vm_free(vm);

		/* Whatever was sent, then the end of file. */
		conn_wait_eof(&c, "VM destroyed");
		TEST_ASSERT(c.vm_flood <= flood, "flood");
		n = send(c.s, &hdr, sizeof(hdr), MSG_NOSIGNAL);
		TEST_ASSERT(n == -1 && errno == EPIPE,
			    "write after the end: %d, %s", n, strerror(errno));

		TEST_ASSERT(c.m.vm->flags & KVMI_VM_DETACHED, "not detached");
		TEST_ASSERT(ioctl(c.fd, KVMI_IOCTL_GET_VERSION, &ver) == -1 &&
			    errno == ENODEV, "GET_VERSION on a detached fd");
		pfd.fd = c.fd;
		pfd.events = POLLIN;
		TEST_ASSERT(poll(&pfd, 1, 0) == 1 && (pfd.revents & POLLHUP),
			    "no POLLHUP");
		for (i = 0; i < NR_VCPUS; i++)
			TEST_ASSERT(kvmi_event_slot(&c.m, i)->id ==
				    KVMI_EVENT_HYPERCALL &&
				    kvmi_event_slot(&c.m, i)->seq ==
				    c.pend[i].seq,
				    "mapping lost its contents");
		conn_close(&c, k & 1);
	}
	ksft_print_msg("%u floods of %u READ_PHYSICAL commands in all, each until the socket was full\n",
		       floods, flooded);
}

/*
 * random_messages: the hostile tool. One round is one introspection; see
 * the header comment for what it sends and what it checks.
 */
struct fuzz {
	struct kvm_vm *vm;
	struct conn c;
	uint64_t sent;			/* messages sent, all rounds */
	uint64_t target;
	uint64_t good, bad;		/* replies applied, refused */
	uint64_t maybe;			/* valid, the connection ending */
	uint64_t unpause;		/* events UNPAUSE may have ended */
	uint64_t vcpu_cmds, vm_cmds, phys, phys_checked;
	uint64_t rounds, ends[8];
	uint8_t *data;			/* guest_data, our view */
	uint64_t data_gpa;
	uint8_t *scratch, *ro;
	uint8_t shadow[SCRATCH_SIZE];	/* what the scratch slot must hold */
	uint8_t ro_ref[4096];
};

enum {
	END_MALFORMED, END_SEMANTIC, END_BYTES, END_TRUNC_SHUT,
	END_TRUNC_CLOSE, END_CLOSE_SOCK, END_CLOSE_FD, NR_ENDS
};

static const char * const end_names[NR_ENDS] = {
	"malformed header", "malformed message", "random bytes",
	"truncated+shutdown", "truncated+close", "socket closed",
	"fd closed",
};

/* A valid action for event @id, or one it refuses (@bad). */
static uint8_t pick_action(uint16_t id, bool bad)
{
	static const uint8_t bp[] = {
		KVMI_ACTION_CONTINUE, KVMI_ACTION_ALLOW, KVMI_ACTION_RETRY,
		KVMI_ACTION_CRASH,
	};
	static const uint8_t hc_bad[] = {
		KVMI_ACTION_ALLOW, KVMI_ACTION_DENY, KVMI_ACTION_RETRY,
		KVMI_ACTION_NOEMU, KVMI_ACTION_SET_CTX,
		KVMI_ACTION_EMUL_NOWRITE,
	};
	static const uint8_t bp_bad[] = {
		KVMI_ACTION_DENY, KVMI_ACTION_NOEMU, KVMI_ACTION_SET_CTX,
		KVMI_ACTION_EMUL_NOWRITE,
	};

	if (bad) {
		if (rnd_below(2))
			return 8 + rnd_below(248);
		if (id == KVMI_EVENT_BREAKPOINT)
			return bp_bad[rnd_below(ARRAY_SIZE(bp_bad))];
		return hc_bad[rnd_below(ARRAY_SIZE(hc_bad))];
	}
	if (rnd_below(8))
		return id == KVMI_EVENT_BREAKPOINT ? bp[rnd_below(4)] :
						     KVMI_ACTION_CONTINUE;
	return KVMI_ACTION_CRASH;
}

/*
 * A reply to vCPU @i's pending event: valid, or with a defect kvmi.rst
 * says makes it invalid. Registers are set only to the event's own
 * values, but for random values in the registers the guest gives up.
 */
static void make_reply(struct fuzz *f, uint32_t i, struct kvmi_reply *rp,
		       bool bad)
{
	const struct pend *p = &f->c.pend[i];
	bool gprs_free = p->id == KVMI_EVENT_HYPERCALL ||
			 p->id == KVMI_EVENT_BREAKPOINT;
	struct kvmi_x86_regs *r = &rp->regs;

	memset(rp, 0, sizeof(*rp));
	rp->seq = p->seq;
	rp->event = p->id;
	rp->action = pick_action(p->id, false);
	rnd_bytes(&rp->data, sizeof(rp->data));	/* not read for these */
	if (rnd_below(2)) {
		rp->flags = KVMI_REPLY_SET_REGS;
		*r = p->regs;
		r->groups = rnd() & KVMI_REGS_ALL;
		if (gprs_free && rnd_below(2)) {
			r->rbx = rnd();
			r->rcx = rnd();
			r->rdx = rnd();
			r->rsi = rnd();
			if (p->id == KVMI_EVENT_HYPERCALL)
				r->rax = rnd();
			r->groups |= KVMI_REGS_GPRS;
		}
		/* ALLOW delivers the #BP where the INT3 is. */
		if (p->id == KVMI_EVENT_BREAKPOINT &&
		    rp->action == KVMI_ACTION_ALLOW)
			r->groups &= ~KVMI_REGS_RIP;
	}
	if (!bad)
		return;

	switch (rnd_below(12)) {
	case 0:
		rp->event ^= 1 + rnd_below(0xffff);
		break;
	case 1:
		rp->padding1 = 1 + rnd_below(255);
		break;
	case 2:
		rp->padding2 = 1 + rnd_below(0xffff);
		break;
	case 3:
		rp->flags |= 4 << rnd_below(30);	/* unknown */
		break;
	case 4:
		rp->flags |= KVMI_REPLY_SINGLESTEP;	/* denied */
		break;
	case 5:
		rp->action = pick_action(p->id, true);
		break;
	case 6:
		rp->flags |= KVMI_REPLY_SET_REGS;
		r->groups |= 0x80 << rnd_below(25);	/* unknown group */
		break;
	case 7:
		rp->flags |= KVMI_REPLY_SET_REGS;
		r->padding = 1 + rnd_below(0xffff);
		break;
	case 8:
		rp->flags |= KVMI_REPLY_SET_REGS;
		r->groups |= KVMI_REGS_DRS;
		r->dr7 |= 1ULL << (32 + rnd_below(32));
		break;
	case 9:
		rp->flags |= KVMI_REPLY_SET_REGS;
		r->groups |= KVMI_REGS_CRS;
		r->cr4 |= 1ULL << 63;
		break;
	case 10:
		rp->flags |= KVMI_REPLY_SET_REGS;
		r->groups |= KVMI_REGS_SEGMENTS;
		(&r->cs.padding)[rnd_below(8) * sizeof(r->cs)] =
			1 + rnd_below(255);
		break;
	default:
		rp->flags |= KVMI_REPLY_SET_REGS;
		r->groups |= KVMI_REGS_MSRS;
		r->lstar = 1ULL << 62 | rnd_below(1 << 20);	/* noncanonical */
		break;
	}
}

static void fuzz_reply(struct fuzz *f, uint32_t i)
{
	struct conn *c = &f->c;
	bool bad = rnd_below(3) == 0;
	struct kvmi_reply rp;
	uint32_t seq = c->pend[i].seq;
	uint16_t id = c->pend[i].id;
	uint8_t why;

	make_reply(f, i, &rp, bad);
	conn_reply(c, i, &rp);
	f->sent++;
	why = conn_wait_done(c, i, seq);
	TEST_ASSERT(why == (bad ? KVMI_DONE_BAD_REPLY : KVMI_DONE_REPLY),
		    "vCPU %u, event %u (%u): a %s reply ended it with reason %u (action %u, flags 0x%x, groups 0x%x)",
		    i, seq, id, bad ? "bad" : "good", why, rp.action, rp.flags,
		    rp.regs.groups);
	if (bad)
		f->bad++;
	else
		f->good++;
}

/* vCPU commands the allow-list denies. */
static bool cmd_denied(uint16_t id)
{
	return id == KVMI_CMD_SET_XSAVE || id == KVMI_CMD_INJECT_EXCEPTION ||
	       id == KVMI_CMD_CONTROL_SINGLESTEP || id == KVMI_CMD_SHUTDOWN_GUEST ||
	       id >= KVMI_ALLOWED_WORDS * 64;
}

static void fuzz_vcpu_cmd(struct fuzz *f, uint32_t i)
{
	struct conn *c = &f->c;
	struct kvmi_cmd cmd;
	int expect = EXPECT_ANY;
	bool waiting = c->pend[i].seq && !c->pend[i].noreply;

	rnd_bytes(&cmd, sizeof(cmd));
	switch (rnd_below(6)) {
	case 0:
	case 1:
		cmd.id = KVMI_CMD_GET_REGISTERS;
		break;
	case 2:
		cmd.id = KVMI_CMD_GET_REGISTERS + rnd_below(12);
		break;
	case 3:
		cmd.id = rnd_below(0x40);	/* 0 or a VM command */
		break;
	case 4:
		cmd.id = 0x4c + rnd_below(0xb4);	/* no such command */
		break;
	default:
		cmd.id = rnd();
		break;
	}
	if (rnd_below(4)) {
		cmd.flags = 0;
		cmd.padding = 0;
	}
	/* SET_REGISTERS is always refused: an unknown register group. */
	if (cmd.id == KVMI_CMD_SET_REGISTERS)
		cmd.args.set_registers.groups |= 1u << 31;
	/* The event it is for (kvmi.rst 11.2): mostly the one waiting. */
	switch (rnd_below(8)) {
	case 0:
		cmd.event = 0;
		break;
	case 1:
		cmd.event = c->last_seq[i] - 1 - rnd_below(4);	/* ended */
		break;
	case 2:
		break;						/* random */
	default:
		cmd.event = waiting ? c->pend[i].seq : c->last_seq[i];
		break;
	}

	if (!waiting)
		expect = EXPECT_ANY;	/* -ESRCH, or an event not seen yet */
	else if (cmd.event != c->pend[i].seq)
		expect = -ESRCH;
	else if (cmd.id < 0x40)
		expect = -EINVAL;
	else if (cmd_denied(cmd.id))
		expect = -EPERM;
	else if (cmd.flags || cmd.padding)
		expect = -EINVAL;
	else if (cmd.id == KVMI_CMD_GET_REGISTERS)
		expect = 0;
	else if (cmd.id == KVMI_CMD_SET_REGISTERS)
		expect = -EINVAL;
	else if (cmd.id > KVMI_CMD_CONTROL_SINGLESTEP)
		expect = -EOPNOTSUPP;
	conn_vcpu_cmd(c, i, &cmd, expect);
	f->sent++;
	f->vcpu_cmds++;
	/*
	 * Each command is answered at once: by the vCPU waiting in the
	 * event it names, or with -ESRCH if that is no pending event.
	 */
	conn_wait(c, !c->cmd_out[i], "vCPU %u: command 0x%x for event %u", i,
		  cmd.id, cmd.event);
}

static uint32_t pick_vcpu(void)
{
	switch (rnd_below(6)) {
	case 0:
		return KVMI_ALL_VCPUS;
	case 1:
		return rnd();
	case 2:
		return NR_VCPUS + rnd_below(4);
	default:
		return rnd_below(NR_VCPUS);
	}
}

/* The commands the socket serves, with their argument sizes. */
static int vm_arg_size(uint16_t cmd)
{
	switch (cmd) {
	case KVMI_CMD_GET_VERSION:
		return sizeof(struct kvmi_version);
	case KVMI_CMD_CHECK_COMMAND:
	case KVMI_CMD_CHECK_EVENT:
		return sizeof(struct kvmi_check);
	case KVMI_CMD_GET_GUEST_INFO:
		return sizeof(struct kvmi_guest_info);
	case KVMI_CMD_CONTROL_EVENTS:
		return sizeof(struct kvmi_control_events);
	case KVMI_CMD_SET_WAIT_MODE:
		return sizeof(struct kvmi_wait_mode);
	case KVMI_CMD_PAUSE_VCPU:
	case KVMI_CMD_UNPAUSE:
		return sizeof(struct kvmi_pause_vcpu);
	case KVMI_CMD_PAUSE_ALL:
		return sizeof(struct kvmi_pause_all);
	case KVMI_CMD_SHUTDOWN_GUEST:
		return sizeof(struct kvmi_shutdown);
	default:
		return -1;
	}
}

/* A plausible argument for VM command @cmd, in @arg (64 bytes). */
static void vm_arg(uint16_t cmd, uint8_t *arg)
{
	rnd_bytes(arg, 64);
	if (rnd_below(4) == 0)
		return;
	switch (cmd) {
	case KVMI_CMD_GET_VERSION:
	case KVMI_CMD_GET_GUEST_INFO:
		*(uint32_t *)arg = rnd_below(2) ? 32 : rnd_below(64);
		break;
	case KVMI_CMD_CHECK_COMMAND:
	case KVMI_CMD_CHECK_EVENT: {
		struct kvmi_check *ch = (void *)arg;

		ch->id = rnd_below(0x100);
		ch->flags = rnd_below(4) ? 0 : rnd();
		break;
	}
	case KVMI_CMD_CONTROL_EVENTS: {
		struct kvmi_control_events *ce = (void *)arg;

		memset(ce, 0, sizeof(*ce));
		ce->vcpu = pick_vcpu();
		ce->event = rnd_below(4) ? rnd_below(13) : rnd();
		ce->enable = rnd_below(8) ? rnd_below(2) : rnd();
		if (ce->event == KVMI_EVENT_CR)
			ce->param = rnd_below(5);
		else if (rnd_below(4) == 0)
			ce->param = rnd();
		if (rnd_below(8) == 0)
			ce->padding1 = rnd();
		break;
	}
	case KVMI_CMD_SET_WAIT_MODE: {
		struct kvmi_wait_mode *wm = (void *)arg;

		wm->vcpu = pick_vcpu();
		wm->mode = rnd_below(4) ? rnd_below(4) : rnd();
		wm->spin_ns = rnd_below(2) ? rnd_below(1000000) : rnd();
		break;
	}
	case KVMI_CMD_PAUSE_VCPU:
	case KVMI_CMD_UNPAUSE: {
		struct kvmi_pause_vcpu *pv = (void *)arg;

		pv->vcpu = pick_vcpu();
		pv->flags = rnd_below(4) ? 0 : rnd();
		break;
	}
	default: {
		struct kvmi_pause_all *pa = (void *)arg;

		pa->flags = rnd_below(4) ? 0 : rnd();
		pa->padding = rnd_below(4) ? 0 : rnd();
		break;
	}
	}
}

static void fuzz_vm_cmd(struct fuzz *f)
{
	static const uint16_t cmds[] = {
		KVMI_CMD_GET_VERSION, KVMI_CMD_CHECK_COMMAND,
		KVMI_CMD_CHECK_EVENT, KVMI_CMD_GET_GUEST_INFO,
		KVMI_CMD_CONTROL_EVENTS, KVMI_CMD_CONTROL_EVENTS,
		KVMI_CMD_SET_WAIT_MODE, KVMI_CMD_PAUSE_VCPU,
		KVMI_CMD_PAUSE_ALL, KVMI_CMD_UNPAUSE, KVMI_CMD_SHUTDOWN_GUEST,
		/* stay ioctls: -EOPNOTSUPP */
		KVMI_CMD_GET_LAYOUT, KVMI_CMD_SET_VCPU_DOORBELLS,
		KVMI_CMD_GET_PAGE_ACCESS, KVMI_CMD_SET_PAGE_ACCESS,
		KVMI_CMD_MAP_PHYSICAL_PAGE_TO_SVA, KVMI_CMD_GET_REGISTERS,
	};
	struct conn *c = &f->c;
	uint8_t arg[64];
	uint16_t cmd;
	uint32_t i, v = 0;
	int size, err;

	cmd = rnd_below(8) ? cmds[rnd_below(ARRAY_SIZE(cmds))] : rnd();
	if (cmd == KVMI_CMD_READ_PHYSICAL || cmd == KVMI_CMD_WRITE_PHYSICAL)
		cmd = KVMI_CMD_GET_VERSION;
	size = vm_arg_size(cmd);
	vm_arg(cmd, arg);
	if (cmd == KVMI_CMD_UNPAUSE) {
		v = ((struct kvmi_pause_vcpu *)arg)->vcpu;
		/*
		 * The PAUSE events waiting may end before the result comes,
		 * and the vCPU go on to its next event: no reply to them.
		 */
		for (i = 0; i < NR_VCPUS; i++) {
			if (v != KVMI_ALL_VCPUS && v != i)
				continue;
			c->hazard[i] = true;
			if (c->pend[i].seq &&
			    c->pend[i].id == KVMI_EVENT_PAUSE)
				c->pend[i].noreply = true;
		}
	}
	err = conn_vm_cmd(c, cmd, arg, size < 0 ? 0 : size, size >= 0);
	f->sent++;
	f->vm_cmds++;
	TEST_ASSERT(documented(err), "VM command 0x%x: error %d", cmd, err);
	if (size < 0)
		TEST_ASSERT(err == -EOPNOTSUPP, "VM command 0x%x: error %d",
			    cmd, err);
	if (cmd == KVMI_CMD_SHUTDOWN_GUEST)
		TEST_ASSERT(err == -EPERM, "SHUTDOWN_GUEST: error %d", err);
	if (cmd == KVMI_CMD_UNPAUSE && !err)
		f->unpause += v == KVMI_ALL_VCPUS ? NR_VCPUS : 1;
}

/* The bytes of the scratch slot at @gpa..@gpa+@n that exist. */
static uint32_t scratch_part(uint64_t gpa, uint32_t n)
{
	if (gpa < SCRATCH_GPA || gpa >= SCRATCH_GPA + SCRATCH_SIZE)
		return 0;
	if (n > SCRATCH_GPA + SCRATCH_SIZE - gpa)
		return SCRATCH_GPA + SCRATCH_SIZE - gpa;
	return n;
}

static void fuzz_phys(struct fuzz *f)
{
	static uint8_t buf[KVMI_MSG_PHYSICAL_MAX];
	struct phys_cmd pc = {};
	uint32_t what = rnd_below(8), n, part;
	bool write = rnd_below(2);
	uint64_t off;
	int err, expect = EXPECT_ANY;

	pc.vc.cmd = write ? KVMI_CMD_WRITE_PHYSICAL : KVMI_CMD_READ_PHYSICAL;
	n = 1 + rnd_below(KVMI_MSG_PHYSICAL_MAX);
	switch (what) {
	case 0:
	case 1:
		/* The scratch slot, maybe across its end. */
		off = rnd_below(SCRATCH_SIZE);
		pc.ph.gpa = SCRATCH_GPA + off;
		expect = n <= SCRATCH_SIZE - off ? 0 : -ENOENT;
		break;
	case 2:
		/* The guest's data: reads only, within its page. */
		off = rnd_below(4096);
		pc.ph.gpa = f->data_gpa + off;
		n = 1 + rnd_below(min_t(uint64_t, 4096 - off,
					   KVMI_MSG_PHYSICAL_MAX));
		write = false;
		pc.vc.cmd = KVMI_CMD_READ_PHYSICAL;
		expect = 0;
		break;
	case 3:
		off = rnd_below(4096);
		pc.ph.gpa = RO_GPA + off;
		if (write)
			expect = -EPERM;
		else if (n <= 4096 - off)
			expect = 0;
		break;
	case 4:
		pc.ph.gpa = NOWHERE_GPA + rnd_below(1 << 30);
		expect = -ENOENT;
		break;
	case 5:
		pc.ph.gpa = -(uint64_t)(1 + rnd_below(n));	/* wraps */
		expect = -EINVAL;
		break;
	case 6:
		/* Anywhere, for reads. */
		pc.ph.gpa = rnd_below(2) ? rnd_below(1 << 28) : rnd();
		if (write)
			pc.ph.gpa = NOWHERE_GPA + rnd_below(1 << 30);
		break;
	default:
		/* A bad argument: -EINVAL, nothing written. */
		off = rnd_below(SCRATCH_SIZE);
		pc.ph.gpa = SCRATCH_GPA + off;
		switch (rnd_below(4)) {
		case 0:
			pc.ph.flags = 1 + rnd_below(0xffff);
			break;
		case 1:
			pc.ph.padding = 1 + rnd_below(0xffff);
			break;
		case 2:
			pc.ph.buffer = rnd() | 1;
			break;
		default:
			n = write ? 0 : KVMI_MSG_PHYSICAL_MAX + 1 +
					    rnd_below(1 << 20);
			break;
		}
		expect = -EINVAL;
		break;
	}
	pc.ph.size = n;
	if (write)
		rnd_bytes(buf, n);
	err = conn_phys(&f->c, &pc, buf, write ? n : 0);
	f->sent++;
	f->phys++;
	if (expect == EXPECT_ANY)
		TEST_ASSERT(!err || err == -ENOENT || err == -EINVAL,
			    "physical 0x%llx+%u: error %d", pc.ph.gpa, n, err);
	else
		TEST_ASSERT(err == expect,
			    "%s_PHYSICAL 0x%llx+%u: error %d, not %d",
			    write ? "WRITE" : "READ", pc.ph.gpa, n, err,
			    expect);

	/* Writes land in the scratch slot, and only there. */
	part = scratch_part(pc.ph.gpa, n);
	if (write && (!err || err == -ENOENT) && expect != -EINVAL && part)
		memcpy(f->shadow + (pc.ph.gpa - SCRATCH_GPA), buf, part);
	TEST_ASSERT(!memcmp(f->scratch, f->shadow, SCRATCH_SIZE),
		    "the scratch slot is not what was written");
	TEST_ASSERT(!memcmp(f->ro, f->ro_ref, sizeof(f->ro_ref)),
		    "the read-only slot changed");
	if (err || write)
		return;
	/* Reads bring the guest's bytes. */
	if (part)
		TEST_ASSERT(!memcmp(buf, f->shadow + (pc.ph.gpa - SCRATCH_GPA),
				    n), "READ_PHYSICAL of the scratch slot");
	else if (what == 2)
		TEST_ASSERT(!memcmp(buf, f->data + (pc.ph.gpa - f->data_gpa),
				    n), "READ_PHYSICAL of the guest's data");
	else if (what == 3)
		TEST_ASSERT(!memcmp(buf, f->ro_ref + (pc.ph.gpa - RO_GPA), n),
			    "READ_PHYSICAL of the read-only slot");
	f->phys_checked++;
}

/*
 * A header that is malformed by itself (kvmi.rst, section 22.4): flags,
 * id, size or vCPU; the other fields random or plausible.
 */
static bool hdr_malformed(const struct kvmi_msg_hdr *h)
{
	if (h->flags || !h->size || h->size > KVMI_MSG_MAX_SIZE)
		return true;
	switch (h->id) {
	case KVMI_MSG_REPLY:
		return h->size != sizeof(struct kvmi_reply) ||
		       h->vcpu >= NR_VCPUS;
	case KVMI_MSG_VCPU_COMMAND:
		return h->size != sizeof(struct kvmi_cmd) ||
		       h->vcpu >= NR_VCPUS;
	case KVMI_MSG_VM_COMMAND:
		return h->size < sizeof(struct kvmi_msg_vm_command) ||
		       h->vcpu;
	default:
		return true;
	}
}

static void end_malformed_header(struct fuzz *f)
{
	static const uint32_t sizes[] = {
		0, sizeof(struct kvmi_reply), sizeof(struct kvmi_cmd),
		sizeof(struct kvmi_msg_vm_command) + 8, KVMI_MSG_MAX_SIZE,
		KVMI_MSG_MAX_SIZE + 1,
	};
	static uint8_t payload[KVMI_MSG_MAX_SIZE];
	struct kvmi_msg_hdr h;
	uint32_t n;

	do {
		h.id = rnd_below(4) ? rnd_below(9) : rnd();
		h.flags = rnd_below(3) ? 0 : rnd();
		switch (rnd_below(4)) {
		case 0:
			h.size = sizes[rnd_below(ARRAY_SIZE(sizes))];
			break;
		case 1:
			h.size = rnd_below(KVMI_MSG_MAX_SIZE + 1);
			break;
		case 2:
			h.size = KVMI_MSG_MAX_SIZE + 1 + rnd_below(1 << 20);
			break;
		default:
			h.size = rnd();
			break;
		}
		h.seq = rnd_below(2) ? f->c.last_seq[rnd_below(NR_VCPUS)] :
				       rnd();
		h.vcpu = rnd_below(2) ? rnd_below(NR_VCPUS + 2) : rnd();
	} while (!hdr_malformed(&h));

	/* The payload the header says, if there can be one, or a bit. */
	n = h.size <= KVMI_MSG_MAX_SIZE ? h.size : rnd_below(64);
	rnd_bytes(payload, n);
	conn_msg(&f->c, h.id, h.flags, h.size, h.seq, h.vcpu, payload, n);
}

/*
 * Well-formed headers whose message is still a protocol error: a reply
 * to no event, or a second one, or with the record's seq not the
 * header's; a VM command with flags or padding, or whose size isn't its
 * argument's; physical commands whose data doesn't match their size.
 */
static void end_malformed_message(struct fuzz *f)
{
	struct conn *c = &f->c;
	uint32_t i = rnd_below(NR_VCPUS);
	static uint8_t buf[KVMI_MSG_MAX_SIZE];
	struct kvmi_msg_vm_command *vc = (void *)buf;
	struct phys_cmd *pc = (void *)buf;
	struct kvmi_reply rp = {
		.event = KVMI_EVENT_HYPERCALL,
	};
	uint32_t seq, n;

	switch (rnd_below(6)) {
	case 0:
		/* A seq no event of this vCPU has had, nor will have. */
		seq = c->last_seq[i] && rnd_below(2) ? 0 :
		      0x80000000 | rnd();
		rp.seq = seq;
		conn_msg(c, KVMI_MSG_REPLY, 0, sizeof(rp), seq, i, &rp,
			 sizeof(rp));
		break;
	case 1:
		/* Twice: the first is valid. */
		if (!c->pend[i].seq || c->pend[i].noreply) {
			rp.seq = 0x80000000 | rnd();
			conn_msg(c, KVMI_MSG_REPLY, 0, sizeof(rp), rp.seq, i,
				 &rp, sizeof(rp));
			break;
		}
		seq = c->pend[i].seq;
		conn_reply_continue(c, i);
		f->maybe++;	/* applied, or the end releases it */
		rp.seq = seq;
		rp.event = c->pend[i].id;
		conn_msg(c, KVMI_MSG_REPLY, 0, sizeof(rp), seq, i, &rp,
			 sizeof(rp));
		break;
	case 2:
		/* The record's seq is not the header's. */
		seq = c->pend[i].seq ? c->pend[i].seq : c->last_seq[i];
		rp.seq = seq ^ (1 + rnd_below(0xffff));
		conn_msg(c, KVMI_MSG_REPLY, 0, sizeof(rp), seq, i, &rp,
			 sizeof(rp));
		break;
	case 3:
		/* VM command flags or padding. */
		vc->cmd = KVMI_CMD_GET_VERSION;
		vc->flags = rnd_below(2) ? 1 + rnd_below(0xffff) : 0;
		vc->padding = vc->flags ? rnd() : 1 + rnd_below(0xffff);
		n = sizeof(*vc) + sizeof(struct kvmi_version);
		memset(buf + sizeof(*vc), 0, n - sizeof(*vc));
		conn_msg(c, KVMI_MSG_VM_COMMAND, 0, n, c->seq++, 0, buf, n);
		break;
	case 4:
		/* A served command with a wrong argument size, or not. */
		memset(buf, 0, 64);
		vc->cmd = rnd_below(2) ? KVMI_CMD_PAUSE_ALL :
			  KVMI_CMD_GET_LAYOUT;
		n = sizeof(*vc) + (vc->cmd == KVMI_CMD_PAUSE_ALL ?
				   (rnd_below(2) ? 4 : 16) : 8);
		conn_msg(c, KVMI_MSG_VM_COMMAND, 0, n, c->seq++, 0, buf, n);
		break;
	default:
		/* Physical: data not what the size says. */
		memset(pc, 0, sizeof(*pc));
		pc->vc.cmd = rnd_below(2) ? KVMI_CMD_WRITE_PHYSICAL :
			     KVMI_CMD_READ_PHYSICAL;
		pc->ph.gpa = SCRATCH_GPA;
		pc->ph.size = 8 + rnd_below(1000);
		n = sizeof(*pc);
		if (pc->vc.cmd == KVMI_CMD_WRITE_PHYSICAL)
			n += pc->ph.size - 1 - rnd_below(pc->ph.size - 1);
		else
			n += 1 + rnd_below(100);
		if (rnd_below(4) == 0)
			n = sizeof(*vc) + rnd_below(sizeof(pc->ph));
		rnd_bytes(buf + sizeof(*pc), sizeof(buf) - sizeof(*pc));
		conn_msg(c, KVMI_MSG_VM_COMMAND, 0, n, c->seq++, 0, buf, n);
		break;
	}
}

/* A message cut short: a valid header, part of its payload. */
static void send_truncated(struct fuzz *f)
{
	static uint8_t buf[KVMI_MSG_MAX_SIZE];
	struct conn *c = &f->c;
	uint32_t i = rnd_below(NR_VCPUS);
	uint32_t size;
	uint16_t id;

	rnd_bytes(buf, sizeof(buf));
	switch (rnd_below(3)) {
	case 0:
		id = KVMI_MSG_REPLY;
		size = sizeof(struct kvmi_reply);
		break;
	case 1:
		id = KVMI_MSG_VCPU_COMMAND;
		size = sizeof(struct kvmi_cmd);
		break;
	default:
		id = KVMI_MSG_VM_COMMAND;
		size = sizeof(struct kvmi_msg_vm_command) +
		       rnd_below(KVMI_MSG_MAX_SIZE - 8);
		break;
	}
	conn_msg(c, id, 0, size, c->pend[i].seq, id == KVMI_MSG_VM_COMMAND ?
		 0 : i, buf, rnd_below(size));
}

/* How the round ends; returns whether the tool can still read. */
static void fuzz_end(struct fuzz *f, uint32_t how)
{
	static uint8_t junk[8192];
	struct conn *c = &f->c;
	uint32_t n;

	f->ends[how]++;
	f->sent++;
	switch (how) {
	case END_MALFORMED:
		end_malformed_header(f);
		conn_wait_eof(c, "malformed header");
		break;
	case END_SEMANTIC:
		end_malformed_message(f);
		conn_wait_eof(c, "malformed message");
		break;
	case END_BYTES:
		n = 1 + rnd_below(sizeof(junk));
		rnd_bytes(junk, n);
		conn_write(c, junk, n);
		shutdown(c->s, SHUT_WR);
		conn_wait_eof(c, "random bytes");
		break;
	case END_TRUNC_SHUT:
		send_truncated(f);
		shutdown(c->s, SHUT_WR);
		conn_wait_eof(c, "truncated message");
		break;
	case END_TRUNC_CLOSE:
		send_truncated(f);
		close(c->s);
		c->s = -1;
		break;
	case END_CLOSE_SOCK:
		close(c->s);
		c->s = -1;
		break;
	default:
		if (c->mapped)
			kvmi_unmap_all(&c->m);
		c->mapped = false;
		close(c->fd);
		c->fd = -1;
		conn_wait_eof(c, "fd closed");
		break;
	}
	/* The introspection is over: detached, if we still hold the fd. */
	if (c->fd >= 0) {
		struct kvmi_version ver = { .size = sizeof(ver) };
		double t0 = now_s();

		while (!(READ_ONCE(c->m.vm->flags) & KVMI_VM_DETACHED)) {
			TEST_ASSERT(now_s() - t0 < HANG_SECONDS,
				    "%s: not detached", end_names[how]);
			usleep(1000);
		}
		TEST_ASSERT(ioctl(c->fd, KVMI_IOCTL_GET_VERSION, &ver) == -1 &&
			    errno == ENODEV, "%s: GET_VERSION on a detached fd",
			    end_names[how]);
	}
	conn_close(c, rnd_below(2));
}

static void fuzz_round(struct fuzz *f)
{
	struct conn *c = &f->c;
	uint64_t budget = 5 + rnd_below(150), before[NR_VCPUS];
	uint32_t i, how;

	conn_open(c, f->vm, true);
	conn_control_events(c, KVMI_ALL_VCPUS, KVMI_EVENT_HYPERCALL, 1);
	conn_control_events(c, KVMI_ALL_VCPUS, KVMI_EVENT_BREAKPOINT, 1);
	f->sent += 2;
	f->rounds++;

	while (budget-- && f->sent < f->target) {
		uint32_t op = rnd_below(100);

		conn_pump(c, 0);
		i = rnd_below(NR_VCPUS);
		if (op < 40) {
			/* Wait a little for an event to answer. */
			if (!c->pend[i].seq)
				conn_pump(c, 5);
			if (c->pend[i].seq && !c->pend[i].noreply)
				fuzz_reply(f, i);
		} else if (op < 60) {
			if (!c->cmd_out[i])
				fuzz_vcpu_cmd(f, i);
		} else if (op < 75) {
			fuzz_vm_cmd(f);
		} else if (op < 90) {
			fuzz_phys(f);
		} else if (op < 95) {
			/* Keep the events coming. */
			conn_control_events(c, KVMI_ALL_VCPUS,
					    KVMI_EVENT_HYPERCALL, 1);
			conn_control_events(c, KVMI_ALL_VCPUS,
					    KVMI_EVENT_BREAKPOINT, 1);
			f->sent += 2;
		} else {
			/* Ring doorbells and shared memory are ignored. */
			struct kvmi_reply *slot = kvmi_reply_slot(&c->m, i);

			rnd_bytes(slot, sizeof(*slot));
		}
	}

	for (i = 0; i < NR_VCPUS; i++)
		before[i] = vcpu_iters(f->vm, i);
	how = rnd_below(NR_ENDS + 2);
	if (how >= NR_ENDS)
		how = rnd_below(2) ? END_MALFORMED : END_SEMANTIC;
	fuzz_end(f, how);
	assert_progress(f->vm, before, "round", f->rounds);
}

static void random_messages(uint64_t target)
{
	struct kvm_vcpu *vcpus[NR_VCPUS];
	struct runner r[NR_VCPUS];
	struct kvmi_allowed al;
	uint64_t sum_rep = 0, sum_bad = 0, sum_ev = 0, sum_other = 0;
	struct stats st;
	struct fuzz *f;
	uint32_t i;

	f = calloc(1, sizeof(*f));
	TEST_ASSERT(f, "calloc");
	f->target = target;
	f->vm = create_vm(vcpus, r, true);
	f->data = addr_gva2hva(f->vm, (vm_vaddr_t)guest_data);
	f->data_gpa = addr_gva2gpa(f->vm, (vm_vaddr_t)guest_data);
	f->scratch = addr_gpa2hva(f->vm, SCRATCH_GPA);
	f->ro = addr_gpa2hva(f->vm, RO_GPA);
	rnd_bytes(f->scratch, SCRATCH_SIZE);
	memcpy(f->shadow, f->scratch, SCRATCH_SIZE);
	rnd_bytes(f->ro, 4096);
	memcpy(f->ro_ref, f->ro, 4096);

	/* What would harm the guest beyond repair is denied. */
	memset(&al, 0xff, sizeof(al));
	al.flags = 0;
	al.padding = 0;
	al.commands[0] &= ~(1ULL << KVMI_CMD_SHUTDOWN_GUEST);
	al.commands[1] &= ~(1ULL << (KVMI_CMD_SET_XSAVE - 64) |
			    1ULL << (KVMI_CMD_INJECT_EXCEPTION - 64) |
			    1ULL << (KVMI_CMD_CONTROL_SINGLESTEP - 64));
	al.events[0] &= ~(1ULL << KVMI_EVENT_TRAP |
			  1ULL << KVMI_EVENT_DESCRIPTOR |
			  1ULL << KVMI_EVENT_SINGLESTEP |
			  1ULL << KVMI_EVENT_PAGE_FAULT);
	TEST_ASSERT(!ioctl(f->vm->fd, KVM_INTROSPECTION_SET_ALLOWED, &al),
		    "SET_ALLOWED: %s", strerror(errno));

	while (f->sent < f->target) {
		fuzz_round(f);
		if (f->rounds % 20 == 0)
			ksft_print_msg("%lu rounds, %lu messages\n", f->rounds,
				       f->sent);
	}

	/* A fresh introspection still opens once the fuzzing is over. */
	check_reopen(f->vm);
	finish_guest(f->vm, r);
	TEST_ASSERT(checksum((uint64_t *)f->data) == guest_sum,
		    "guest data changed");
	TEST_ASSERT(!memcmp(f->scratch, f->shadow, SCRATCH_SIZE),
		    "the scratch slot changed");

	ksft_print_msg("%lu messages in %lu rounds: %lu good replies, %lu bad\n",
		       f->sent, f->rounds, f->good, f->bad);
	ksft_print_msg("%lu vCPU commands, %lu VM commands, %lu physical (%lu compared)\n",
		       f->vcpu_cmds, f->vm_cmds, f->phys, f->phys_checked);
	for (i = 0; i < NR_ENDS; i++)
		ksft_print_msg("  ended by %-20s %lu\n", end_names[i],
			       f->ends[i]);
	for (i = 0; i < NR_VCPUS; i++) {
		read_stats(vcpus[i], i, &st);
		ksft_print_msg("vCPU %u: %lu crashes, %lu iterations, %lu #BP in the guest\n",
			       i, r[i].crashes, vcpu_iters(f->vm, i),
			       ((uint64_t *)addr_gva2hva(f->vm,
				(vm_vaddr_t)guest_bps))[i]);
		TEST_ASSERT(st.ev >= st.rep + st.bad + st.dl + st.det,
			    "vCPU %u: more ends than events", i);
		sum_ev += st.ev;
		sum_rep += st.rep;
		sum_bad += st.bad;
		sum_other += st.dl + st.det;
	}
	/* check_reopen() applied one more reply. */
	TEST_ASSERT(sum_rep >= f->good + 1 &&
		    sum_rep <= f->good + 1 + f->maybe && sum_bad == f->bad,
		    "stats: %lu replies, %lu bad; sent %lu good (%lu maybe), %lu bad",
		    sum_rep, sum_bad, f->good + 1, f->maybe, f->bad);
	/* UNPAUSE ends PAUSE events without a counter. */
	TEST_ASSERT(sum_ev <= sum_rep + sum_bad + sum_other + f->unpause,
		    "%lu events, %lu UNPAUSEs: some events never ended",
		    sum_ev, f->unpause);
	kvm_vm_free(f->vm);
	free(f);
}

/*
 * reply_seq0: kvmi.rst, section 22.4: "a KVMI_MSG_REPLY whose seq is not
 * that of the last event its vCPU sent" is a protocol error. A vCPU that
 * has sent no event has no such seq; a reply with seq 0 to it must end
 * the connection. Returns whether it did (the kernel of 2026-11-23 takes
 * it for a late reply to "event 0" and goes on).
 */
static bool reply_seq0(void)
{
	struct kvmi_version ver = { .size = sizeof(ver) };
	struct kvmi_msg_vm_command vc = { .cmd = KVMI_CMD_GET_VERSION };
	struct kvmi_reply rp = { .event = KVMI_EVENT_HYPERCALL };
	uint8_t buf[sizeof(vc) + sizeof(ver)];
	struct kvm_vcpu *vcpus[NR_VCPUS];
	struct runner r[NR_VCPUS];
	static struct conn c;
	struct kvm_vm *vm;
	double t0;
	bool ended;

	vm = create_vm(vcpus, r, false);
	conn_open(&c, vm, true);
	/* No event enabled: vCPU 1 has sent none. */
	conn_send(&c, KVMI_MSG_REPLY, 0, 1, &rp, sizeof(rp));
	/* Then a VM command: its result, or the end of the connection. */
	memcpy(buf, &vc, sizeof(vc));
	memcpy(buf + sizeof(vc), &ver, sizeof(ver));
	c.vm_seq = c.seq++;
	c.vm_out = true;
	if (!conn_msg(&c, KVMI_MSG_VM_COMMAND, 0, sizeof(buf), c.vm_seq, 0,
		      buf, sizeof(buf))) {
		t0 = now_s();
		while (c.vm_out && !c.eof && !c.reset) {
			TEST_ASSERT(now_s() - t0 < HANG_SECONDS,
				    "reply_seq0: neither a result nor the end");
			conn_pump(&c, 10);
		}
	}
	ended = c.vm_out;
	if (ended)
		conn_wait_eof(&c, "reply with seq 0");
	conn_close(&c, true);
	finish_guest(vm, r);
	kvm_vm_free(vm);
	return ended;
}

/*
 * signal_in_send: a vCPU thread writes its event to a socket that the
 * tool hasn't emptied (the kernel's end has its smallest SO_SNDBUF and
 * holds a 4 KiB VM result the tool hasn't read), and the VMM signals the
 * thread meanwhile, as QEMU kicks its vCPU threads. The signal must not
 * end the introspection (with the ring, KVM_RUN returns -EINTR with the
 * event pending: kvmi.rst, section 13.5): once the tool reads, the event
 * must come, and its reply be applied. Returns whether it did. Without
 * @sig, the same but the signals: the control.
 */
static bool signal_in_send(bool sig)
{
	struct phys_cmd pc = {
		.vc.cmd = KVMI_CMD_READ_PHYSICAL,
		.ph = { .size = KVMI_MSG_PHYSICAL_MAX },
	};
	struct kvmi_open op = kvmi_open_args();
	struct kvm_vcpu *vcpus[NR_VCPUS];
	struct runner r[NR_VCPUS];
	static struct conn c;
	struct pollfd pfd;
	struct kvm_vm *vm;
	int sv[2], one = 1, i;
	bool kept;
	double t0;

	vm = create_vm(vcpus, r, false);
	memset(&c, 0, sizeof(c));
	TEST_ASSERT(!socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv),
		    "socketpair: %s", strerror(errno));
	TEST_ASSERT(!setsockopt(sv[1], SOL_SOCKET, SO_SNDBUF, &one,
				sizeof(one)), "SO_SNDBUF: %s", strerror(errno));
	op.transport = KVMI_TRANSPORT_SOCKET;
	op.transport_fd = sv[1];
	c.fd = __kvmi_open(vm->fd, &op);
	TEST_ASSERT(c.fd >= 0, "open: %s", strerror(errno));
	close(sv[1]);
	c.s = sv[0];
	kvmi_map_all(c.fd, &c.m);
	c.mapped = true;

	/* A result the tool leaves unread fills the kernel's end. */
	pc.ph.gpa = addr_gva2gpa(vm, (vm_vaddr_t)guest_data);
	c.vm_seq = c.seq++;
	c.vm_out = true;
	conn_send(&c, KVMI_MSG_VM_COMMAND, c.vm_seq, 0, &pc, sizeof(pc));
	pfd.fd = c.s;
	pfd.events = POLLIN;
	TEST_ASSERT(poll(&pfd, 1, HANG_SECONDS * 1000) == 1, "no result");
	/* The event, by ioctl (a VM command's result couldn't be sent). */
	kvmi_control_events(c.fd, 0, KVMI_EVENT_HYPERCALL, 1);
	t0 = now_s();
	while (!__atomic_load_n(&kvmi_event_slot(&c.m, 0)->seq,
				__ATOMIC_ACQUIRE))
		TEST_ASSERT(now_s() - t0 < HANG_SECONDS, "no event");
	/* Let the vCPU block in its write (not needed to pass), signal it. */
	usleep(200000);
	for (i = 0; i < 3; i++) {
		if (sig)
			pthread_kill(r[0].thread, SIGUSR1);
		usleep(50000);
	}

	/* The tool reads: the result, then the event, or the end. */
	t0 = now_s();
	while (!c.eof && !c.reset && !c.pend[0].seq) {
		TEST_ASSERT(now_s() - t0 < HANG_SECONDS,
			    "signal_in_send: neither the event nor the end");
		conn_pump(&c, 10);
	}
	kept = c.pend[0].seq;
	if (kept) {
		uint32_t seq = c.pend[0].seq;

		TEST_ASSERT(!c.vm_out, "the event came before the result");
		conn_reply_continue(&c, 0);
		TEST_ASSERT(conn_wait_done(&c, 0, seq) == KVMI_DONE_REPLY,
			    "signal_in_send: the reply was not applied");
	} else {
		ksft_print_msg("signal_in_send: end of file after %s; detached: %d\n",
			       c.vm_out ? "nothing" : "the VM result",
			       !!(READ_ONCE(c.m.vm->flags) & KVMI_VM_DETACHED));
	}
	conn_close(&c, true);
	finish_guest(vm, r);
	kvm_vm_free(vm);
	return kept;
}

int main(int argc, char *argv[])
{
	struct sigaction sa = { .sa_handler = sig_nop };
	uint64_t seed = time(NULL), messages = 2000;
	uint32_t kills = 10, destroys = 3;
	double t0;
	int opt;

	if (getenv("KVMI_SOCK_TORTURE_KILLS"))
		kills = strtoul(getenv("KVMI_SOCK_TORTURE_KILLS"), NULL, 0);
	if (getenv("KVMI_SOCK_TORTURE_DESTROYS"))
		destroys = strtoul(getenv("KVMI_SOCK_TORTURE_DESTROYS"),
				   NULL, 0);
	if (getenv("KVMI_SOCK_FUZZ_MESSAGES"))
		messages = strtoull(getenv("KVMI_SOCK_FUZZ_MESSAGES"), NULL, 0);
	while ((opt = getopt(argc, argv, "k:v:m:s:")) != -1) {
		switch (opt) {
		case 'k':
			kills = strtoul(optarg, NULL, 0);
			break;
		case 'v':
			destroys = strtoul(optarg, NULL, 0);
			break;
		case 'm':
			messages = strtoull(optarg, NULL, 0);
			break;
		case 's':
			seed = strtoull(optarg, NULL, 0);
			break;
		default:
			fprintf(stderr,
				"usage: %s [-k KILLS] [-v DESTROYS] [-m MESSAGES] [-s SEED]\n",
				argv[0]);
			exit(KSFT_FAIL);
		}
	}
	ksft_print_header();
	KVMI_REQUIRE();
	ksft_set_plan(5);
	ksft_print_msg("seed %lu, %u kills, %u destroys, %lu messages\n",
		       seed, kills, destroys, messages);
	rng_state = seed | 1;
	TEST_ASSERT(!sigaction(SIGUSR1, &sa, NULL), "sigaction");
	/* A kernel that ends a connection must not kill us with SIGPIPE. */
	signal(SIGPIPE, SIG_IGN);

	t0 = now_s();
	if (kills) {
		tool_killed(kills);
		ksft_test_result_pass("tool_killed: %u kills (%.0f s)\n",
				      kills, now_s() - t0);
	} else {
		ksft_test_result_skip("tool_killed: 0 kills\n");
	}
	t0 = now_s();
	if (destroys) {
		vm_destroyed(destroys);
		ksft_test_result_pass("vm_destroyed: %u VMs (%.0f s)\n",
				      destroys, now_s() - t0);
	} else {
		ksft_test_result_skip("vm_destroyed: 0 VMs\n");
	}
	t0 = now_s();
	if (messages) {
		random_messages(messages);
		ksft_test_result_pass("random_messages: %lu messages (%.0f s)\n",
				      messages, now_s() - t0);
	} else {
		ksft_test_result_skip("random_messages: 0 messages\n");
	}
	if (reply_seq0())
		ksft_test_result_pass("reply_seq0: a reply to no event ends the connection\n");
	else
		ksft_test_result_fail("reply_seq0: a REPLY with seq 0 to a vCPU that sent no event was taken, not a protocol error (kvmi.rst 22.4)\n");
	/* The control first: without the signal, the event comes. */
	TEST_ASSERT(signal_in_send(false),
		    "signal_in_send: the event lost without a signal");
	if (signal_in_send(true))
		ksft_test_result_pass("signal_in_send: the event came after the signal\n");
	else
		ksft_test_result_fail("signal_in_send: a signal to the vCPU thread writing its event ended the introspection\n");
	ksft_finished();
}
