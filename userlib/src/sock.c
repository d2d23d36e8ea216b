// SPDX-License-Identifier: LGPL-2.1-or-later OR MIT
/*
 * The socket transport (kvmi.rst, section 22): events, replies and vCPU
 * commands travel as messages on a stream socket instead of through the
 * vCPU slots. The per-vCPU API stays the same; this file frames, reads
 * and queues.
 *
 * Reading: one thread at a time reads the socket (the "reader"), whichever
 * thread needs a message: a vCPU thread waiting for its event or its
 * command's result, kvmi_dom_dispatch(). The reader takes every message
 * that comes and queues it in the slot of its vCPU (one event and one
 * result per vCPU: the kernel never sends more; an event that ended
 * unpopped is replaced by the next). The other threads that need a
 * message sleep on the condition variable of their vCPU's slot, and are
 * woken:
 *
 *  - by the reader, when it queued a message of their vCPU (no other
 *    thread wakes: no thundering herd with a thread per vCPU);
 *  - to take the reader role over, one of them (the "heir"), when the
 *    reader stops reading (its own message came, its deadline, a signal)
 *    while threads sleep: the reader picks the heir, round-robin over the
 *    vCPUs that have sleepers; a thread that leaves with nobody reading
 *    and no heir on its way picks one in turn, so the role is never left
 *    with nobody to take it;
 *  - all of them at the end of the connection.
 *
 * There is no VM-wide sleeper: the dispatcher never sleeps here (it reads
 * what is there), and VM commands are ioctls, not messages. Writing: each
 * message is written whole under a send lock. Both locks are the dom's;
 * the rule of the ring transport (one thread at a time per vCPU) is
 * unchanged.
 *
 * The end of file, a read or write error, or a message the kernel never
 * sends (bad flags, size, id, vCPU, a result nobody waits for, a second
 * event for a vCPU whose first has not ended) end the introspection: the socket is shut down (the
 * kernel detaches, section 22.4) and every call that needs the socket
 * returns -ENODEV from then on, as the ring transport does once detached.
 */
#include <poll.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include "internal.h"

#define HDR	sizeof(struct kvmi_msg_hdr)

/* What the library holds for one vCPU. */
struct kvmi_sock_slot {
	bool ev_full;		/* an event read, not popped */
	bool res_wait;		/* a command sent, its result not taken */
	bool res_full;		/* its result read, not taken */
	uint32_t res_seq;	/* the seq of that command */
	uint32_t waiting;	/* threads asleep on cond */
	pthread_cond_t cond;	/* a message of this vCPU, the reader role, end */
	struct kvmi_event ev;
	struct kvmi_cmd_result res;
} __attribute__((aligned(64)));

struct kvmi_sock {
	int fd;
	pthread_mutex_t lock;	/* everything below, and the slots */
	pthread_mutex_t tx;	/* one message written at a time */
	bool reading;		/* a thread is reading: the others wait */
	int64_t heir;		/* the slot woken to take reading over; -1 */
	uint32_t next_heir;	/* where the search for the next one starts */
	bool notify;		/* ring dom->notify_fd for each event queued */
	bool unhook;		/* KVMI_MSG_UNHOOK was read */
	int err;		/* 0, or -ENODEV: the connection is over */
	uint32_t waiting;	/* threads asleep on a slot's cond */
	uint64_t wakeups;	/* returns from such a wait (tests) */
	uint32_t got;		/* bytes read of the message in buf */
	uint32_t nr;		/* slots */
	struct kvmi_sock_slot *slots;
	uint64_t *sleepy;	/* bit i: slot i has sleepers */
	union {
		struct kvmi_msg_hdr hdr;
		uint8_t buf[HDR + KVMI_MSG_MAX_SIZE];
	} in;
};

static uint64_t mono_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000000000ULL + ts.tv_nsec;
}

__cold int kvmi__sock_attach(struct kvmi_dom *dom, int sock_fd)
{
	struct kvmi_sock *s;
	pthread_condattr_t ca;
	uint32_t i;

	if (dom->ver.event_size > KVMI_MSG_MAX_SIZE ||
	    dom->ver.cmd_result_size > KVMI_MSG_MAX_SIZE)
		return -EPROTO;
	s = calloc(1, sizeof(*s));
	if (!s)
		return -ENOMEM;
	s->nr = dom->lo.max_vcpus;
	s->slots = aligned_alloc(64, sizeof(*s->slots) * s->nr);
	if (!s->slots) {
		free(s);
		return -ENOMEM;
	}
	memset(s->slots, 0, sizeof(*s->slots) * s->nr);
	s->sleepy = calloc((s->nr + 63) / 64, sizeof(*s->sleepy));
	if (!s->sleepy) {
		free(s->slots);
		free(s);
		return -ENOMEM;
	}
	s->fd = sock_fd;
	s->heir = -1;
	pthread_mutex_init(&s->lock, NULL);
	pthread_mutex_init(&s->tx, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	for (i = 0; i < s->nr; i++)
		pthread_cond_init(&s->slots[i].cond, &ca);
	pthread_condattr_destroy(&ca);
	dom->sock = s;
	return 0;
}

/* Frees the socket state; closes the socket unless @keep_fd. */
__cold void kvmi__sock_free(struct kvmi_dom *dom, bool keep_fd)
{
	struct kvmi_sock *s = dom->sock;
	uint32_t i;

	if (!s)
		return;
	if (!keep_fd)
		close(s->fd);
	for (i = 0; i < s->nr; i++)
		pthread_cond_destroy(&s->slots[i].cond);
	pthread_mutex_destroy(&s->lock);
	pthread_mutex_destroy(&s->tx);
	free(s->sleepy);
	free(s->slots);
	free(s);
	dom->sock = NULL;
}

int kvmi__sock_fd(const struct kvmi_dom *dom)
{
	return dom->sock->fd;
}

void kvmi__sock_notify(struct kvmi_dom *dom)
{
	pthread_mutex_lock(&dom->sock->lock);
	dom->sock->notify = true;
	pthread_mutex_unlock(&dom->sock->lock);
}

static void ring(struct kvmi_dom *dom)
{
	static const uint64_t one = 1;

	/* A full count fails: it polls readable anyway. */
	if (dom->sock->notify && write(dom->notify_fd, &one, sizeof(one)) < 0)
		return;
}

/* Wake the threads asleep for vCPU slot @sl; with the lock held. */
static void wake_slot(struct kvmi_sock_slot *sl)
{
	if (sl->waiting)
		pthread_cond_broadcast(&sl->cond);
}

/*
 * The first slot from @from on (round the end) that has sleepers, or -1.
 * A bitmap: a VM may have thousands of vCPU slots and a few sleepers.
 */
static int64_t find_sleepy(const struct kvmi_sock *s, uint32_t from)
{
	uint32_t nw = (s->nr + 63) / 64, n, w;
	uint64_t bits;

	for (n = 0; n <= nw; n++) {
		w = (from / 64 + n) % nw;
		bits = s->sleepy[w];
		if (!n)
			bits &= ~0ULL << (from % 64);		/* from on */
		else if (n == nw)
			bits &= ~(~0ULL << (from % 64));	/* before from */
		if (bits)
			return w * 64ULL + __builtin_ctzll(bits);
	}
	return -1;
}

/*
 * With the lock held, nobody reading: if threads sleep and none was woken
 * to read yet, wake one, round-robin over the vCPUs. It reads, or (its
 * message came meanwhile, its deadline) leaves through here in turn.
 */
static void wake_heir(struct kvmi_sock *s)
{
	int64_t j;

	if (s->reading || !s->waiting || s->heir >= 0 || s->err)
		return;
	j = find_sleepy(s, s->next_heir);
	if (j < 0)
		return;		/* not reached: s->waiting counts them */
	s->heir = j;
	s->next_heir = j + 1 < s->nr ? j + 1 : 0;
	pthread_cond_signal(&s->slots[j].cond);
}

/* The end of the introspection; called with the lock held. */
static __cold void sock_end(struct kvmi_dom *dom)
{
	struct kvmi_sock *s = dom->sock;
	uint32_t i;

	if (s->err)
		return;
	s->err = -ENODEV;
	shutdown(s->fd, SHUT_RDWR);
	/* Every sleeper: each returns -ENODEV, or the message it has. */
	for (i = 0; i < s->nr; i++)
		wake_slot(&s->slots[i]);
	ring(dom);
}

bool kvmi__sock_ended(struct kvmi_dom *dom)
{
	bool r;

	pthread_mutex_lock(&dom->sock->lock);
	r = dom->sock->err != 0;
	pthread_mutex_unlock(&dom->sock->lock);
	return r;
}

/* The payload size the kernel sends with this header; -1: never sent. */
static int64_t msg_size(const struct kvmi_dom *dom,
			const struct kvmi_msg_hdr *h)
{
	if (h->flags || h->size > KVMI_MSG_MAX_SIZE)
		return -1;
	switch (h->id) {
	case KVMI_MSG_EVENT:
		if (h->vcpu >= dom->max_vcpus || !h->seq)
			return -1;
		return dom->ver.event_size;
	case KVMI_MSG_VCPU_RESULT:
		if (h->vcpu >= dom->max_vcpus)
			return -1;
		return dom->ver.cmd_result_size;
	case KVMI_MSG_UNHOOK:
		return h->vcpu ? -1 : 0;
	default:
		/* VM_RESULT too: the library sends VM commands as ioctls. */
		return -1;
	}
}

/*
 * Read what there is of the next message, waiting at most @ms (-1: for
 * ever) once for more. Called by the reader alone, without the lock.
 * Returns 1 when the message in s->in is whole, 0 if not yet, -EINTR,
 * -ENODEV (end of file, an error, a malformed header).
 */
static int rx_one(struct kvmi_dom *dom, int ms)
{
	struct kvmi_sock *s = dom->sock;
	struct pollfd pfd = { .fd = s->fd, .events = POLLIN };
	bool waited = false;
	uint32_t need;
	int64_t size;
	ssize_t n;

	for (;;) {
		need = s->got < HDR ? HDR : HDR + s->in.hdr.size;
		n = recv(s->fd, s->in.buf + s->got, need - s->got,
			 MSG_DONTWAIT);
		if (n > 0) {
			s->got += n;
			if (s->got == HDR) {
				size = msg_size(dom, &s->in.hdr);
				if (size < 0 || size != s->in.hdr.size)
					return -ENODEV;
				if (!size)
					return 1;
			} else if (s->got == HDR + s->in.hdr.size) {
				return 1;
			}
			continue;
		}
		if (!n)
			return -ENODEV;		/* end of file, maybe mid-message */
		if (errno == EINTR)
			continue;
		if (errno != EAGAIN)
			return -ENODEV;
		if (!ms || waited)
			return 0;
		if (poll(&pfd, 1, ms) < 0)
			return errno == EINTR ? -EINTR : -ENODEV;
		waited = true;
	}
}

/* Queue the whole message in s->in; called with the lock held. */
static int deliver(struct kvmi_dom *dom)
{
	struct kvmi_sock *s = dom->sock;
	const struct kvmi_msg_hdr *h = &s->in.hdr;
	const uint8_t *p = s->in.buf + HDR;
	struct kvmi_sock_slot *sl = &s->slots[h->vcpu];

	s->got = 0;
	switch (h->id) {
	case KVMI_MSG_EVENT:
		/*
		 * A vCPU waits in one event at a time: a second one comes only
		 * after the first ended without its reply (a deadline, an
		 * UNPAUSE), which the kernel publishes (done_seq) before it
		 * writes the next. It replaces the first, as in the ring's slot.
		 */
		if (sl->ev_full &&
		    load_acquire(&dom->vcpus[h->vcpu].vs->done_seq) != sl->ev.seq)
			return -ENODEV;
		memcpy(&sl->ev, p, sizeof(sl->ev));
		/* The header and the record say which event alike. */
		if (sl->ev.seq != h->seq)
			return -ENODEV;
		sl->ev_full = true;
		wake_slot(sl);
		ring(dom);
		return 0;
	case KVMI_MSG_VCPU_RESULT:
		if (!sl->res_wait || sl->res_full || h->seq != sl->res_seq)
			return -ENODEV;
		memcpy(&sl->res, p, sizeof(sl->res));
		sl->res_full = true;
		wake_slot(sl);
		return 0;
	default:	/* KVMI_MSG_UNHOOK */
		s->unhook = true;
		ring(dom);
		return 0;
	}
}

static bool slot_ready(const struct kvmi_sock_slot *sl, bool want_ev)
{
	return want_ev ? sl->ev_full : sl->res_full;
}

/* Sleep on @sl's condition variable until @deadline (0: none). */
static void sleep_slot(struct kvmi_sock *s, struct kvmi_sock_slot *sl,
		       uint64_t deadline)
{
	uint32_t i = sl - s->slots;
	struct timespec ts;

	if (!sl->waiting++)
		s->sleepy[i / 64] |= 1ULL << (i % 64);
	s->waiting++;
	if (!deadline) {
		pthread_cond_wait(&sl->cond, &s->lock);
	} else {
		ts.tv_sec = deadline / 1000000000ULL;
		ts.tv_nsec = deadline % 1000000000ULL;
		pthread_cond_timedwait(&sl->cond, &s->lock, &ts);
	}
	if (!--sl->waiting)
		s->sleepy[i / 64] &= ~(1ULL << (i % 64));
	s->waiting--;
	s->wakeups++;
	/* Woken to read, or not: the caller's loop reads if nobody does. */
	if (s->heir == i)
		s->heir = -1;
}

/*
 * With the lock held: read messages until @sl has what is wanted (@sl
 * NULL: until none is waiting in the socket), waiting at most @ms (-1: for
 * ever, 0: not at all; @sl NULL: 0 only). Returns 0 (@sl ready, or
 * drained), -EAGAIN at the deadline, -EINTR, -ENODEV. Called through
 * wait_locked().
 */
static int read_or_sleep(struct kvmi_dom *dom, struct kvmi_sock_slot *sl,
			 bool want_ev, int ms)
{
	struct kvmi_sock *s = dom->sock;
	uint64_t deadline = ms > 0 ? mono_ns() + ms * 1000000ULL : 0;
	uint64_t t;
	int left, r;

	for (;;) {
		if (sl && slot_ready(sl, want_ev))
			return 0;
		if (s->err)
			return s->err;
		left = ms;
		if (deadline) {
			t = mono_ns();
			if (t >= deadline)
				return -EAGAIN;
			left = (deadline - t + 999999) / 1000000;
		}
		if (s->reading) {
			if (!ms || !sl)
				return sl ? -EAGAIN : 0;
			sleep_slot(s, sl, deadline);
			continue;
		}
		s->reading = true;
		pthread_mutex_unlock(&s->lock);
		r = rx_one(dom, sl ? left : 0);
		pthread_mutex_lock(&s->lock);
		s->reading = false;
		if (r > 0)
			r = deliver(dom) ?: 1;
		if (r == -ENODEV)
			sock_end(dom);
		/*
		 * Nobody reads now: this thread reads on (the loop), or
		 * leaves and wait_locked() wakes an heir.
		 */
		if (r == -EINTR)
			return r;
		/* 0: no whole message to read now. */
		if (!r && !sl)
			return 0;	/* drained */
		if (!r && !ms && !slot_ready(sl, want_ev))
			return -EAGAIN;
	}
}

/*
 * read_or_sleep(), then, if nobody reads, the reader role to a sleeper:
 * whatever this thread leaves with (its message, its deadline, a signal),
 * no thread sleeps with the socket unread.
 */
static int wait_locked(struct kvmi_dom *dom, struct kvmi_sock_slot *sl,
		       bool want_ev, int ms)
{
	int r = read_or_sleep(dom, sl, want_ev, ms);

	wake_heir(dom->sock);
	return r;
}

/* Read every message waiting in the socket (kvmi_dom_dispatch()). */
int kvmi__sock_pump(struct kvmi_dom *dom)
{
	int r;

	pthread_mutex_lock(&dom->sock->lock);
	r = wait_locked(dom, NULL, false, 0);
	pthread_mutex_unlock(&dom->sock->lock);
	return r;
}

/*
 * The next event of vCPU @idx, waiting at most @ms. Returns 0, -EAGAIN,
 * -EINTR or -ENODEV.
 */
int kvmi__sock_take_event(struct kvmi_dom *dom, uint32_t idx,
			  struct kvmi_event *ev, int ms)
{
	struct kvmi_sock *s = dom->sock;
	struct kvmi_sock_slot *sl = &s->slots[idx];
	int r;

	pthread_mutex_lock(&s->lock);
	r = wait_locked(dom, sl, true, ms);
	/* Queued before the end: still the tool's to see (and answer). */
	if (sl->ev_full) {
		memcpy(ev, &sl->ev, sizeof(*ev));
		sl->ev_full = false;
		r = 0;
	}
	pthread_mutex_unlock(&s->lock);
	return r;
}

/* The event of vCPU @idx read and not popped, or NULL; no wait. */
const struct kvmi_event *kvmi__sock_peek_event(struct kvmi_dom *dom,
					       uint32_t idx)
{
	struct kvmi_sock *s = dom->sock;
	struct kvmi_sock_slot *sl = &s->slots[idx];
	bool full;

	pthread_mutex_lock(&s->lock);
	wait_locked(dom, sl, true, 0);
	full = sl->ev_full;
	pthread_mutex_unlock(&s->lock);
	return full ? &sl->ev : NULL;
}

/* Write one whole message. Returns 0 or -ENODEV. */
int kvmi__sock_send(struct kvmi_dom *dom, uint16_t id, uint32_t seq,
		    uint32_t vcpu, const void *payload, uint32_t size)
{
	struct kvmi_sock *s = dom->sock;
	struct kvmi_msg_hdr h = {
		.id = id,
		.size = size,
		.seq = seq,
		.vcpu = vcpu,
	};
	struct iovec iov[2] = {
		{ .iov_base = &h, .iov_len = HDR },
		{ .iov_base = (void *)payload, .iov_len = size },
	};
	struct msghdr msg = { .msg_iov = iov, .msg_iovlen = 2 };
	struct pollfd pfd = { .fd = s->fd, .events = POLLOUT };
	size_t left = HDR + size;
	ssize_t n;
	int r = 0;

	pthread_mutex_lock(&s->tx);
	while (left) {
		n = sendmsg(s->fd, &msg, MSG_NOSIGNAL);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			/* A non-blocking socket from the caller: wait. */
			if (errno == EAGAIN && poll(&pfd, 1, -1) >= 0)
				continue;
			r = -ENODEV;
			break;
		}
		left -= n;
		/* A partial write: the rest of the message, then nothing else. */
		while (n > 0 && msg.msg_iovlen) {
			if ((size_t)n >= msg.msg_iov->iov_len) {
				n -= msg.msg_iov->iov_len;
				msg.msg_iov++;
				msg.msg_iovlen--;
			} else {
				msg.msg_iov->iov_base =
					(uint8_t *)msg.msg_iov->iov_base + n;
				msg.msg_iov->iov_len -= n;
				n = 0;
			}
		}
	}
	pthread_mutex_unlock(&s->tx);
	if (r) {
		pthread_mutex_lock(&s->lock);
		sock_end(dom);
		pthread_mutex_unlock(&s->lock);
	}
	return r;
}

/*
 * Send vCPU command @cmd (its seq set) and wait for its result (a signal
 * does not interrupt the wait: the kernel will answer). Returns 0 (@res
 * filled) or -ENODEV.
 */
int kvmi__sock_command(struct kvmi_dom *dom, uint32_t idx,
		       const struct kvmi_cmd *cmd, struct kvmi_cmd_result *res)
{
	struct kvmi_sock *s = dom->sock;
	struct kvmi_sock_slot *sl = &s->slots[idx];
	int r;

	pthread_mutex_lock(&s->lock);
	r = s->err;
	if (!r) {
		sl->res_wait = true;
		sl->res_full = false;
		sl->res_seq = cmd->seq;
	}
	pthread_mutex_unlock(&s->lock);
	if (r)
		return r;
	r = kvmi__sock_send(dom, KVMI_MSG_VCPU_COMMAND, cmd->seq, idx, cmd,
			    sizeof(*cmd));
	if (r)
		return r;
	pthread_mutex_lock(&s->lock);
	do {
		r = wait_locked(dom, sl, false, -1);
	} while (r == -EINTR);
	if (!r)
		memcpy(res, &sl->res, sizeof(*res));
	sl->res_wait = false;
	sl->res_full = false;
	pthread_mutex_unlock(&s->lock);
	return r;
}

/* For the host unit tests and the benchmark. */
void kvmi__sock_stats(struct kvmi_dom *dom, struct kvmi__sock_stats *st)
{
	struct kvmi_sock *s = dom->sock;

	pthread_mutex_lock(&s->lock);
	st->wakeups = s->wakeups;
	st->waiting = s->waiting;
	st->reading = s->reading;
	pthread_mutex_unlock(&s->lock);
}

/* KVMI_MSG_UNHOOK was read. */
bool kvmi__sock_unhook(struct kvmi_dom *dom)
{
	bool r;

	pthread_mutex_lock(&dom->sock->lock);
	r = dom->sock->unhook;
	pthread_mutex_unlock(&dom->sock->lock);
	return r;
}

/**
 * kvmi_dom_attach_pid_socket() - kvmi_dom_attach_pid() with the socket
 * transport: open introspection on the (first) VM of process @pid.
 */
__cold int kvmi_dom_attach_pid_socket(pid_t pid, struct kvmi_dom **domp)
{
	int target, vm_fd, r;

	if (!domp)
		return -EINVAL;
	r = kvmi_pid_find_vm_fds(pid, &target, 1);
	if (r < 0)
		return r;
	if (r == 0)
		return -ENOENT;
	vm_fd = kvmi_pid_getfd(pid, target);
	if (vm_fd < 0)
		return vm_fd;
	r = kvmi_dom_open_socket(vm_fd, domp);
	close(vm_fd);
	return r;
}

/**
 * kvmi_dom_open_guest_socket() - kvmi_dom_open_guest() with the socket
 * transport: open guest @id of the control device through @disc.
 */
__cold int kvmi_dom_open_guest_socket(struct kvmi_disc *disc, uint64_t id,
				      struct kvmi_dom **domp)
{
	struct kvmi_open op = {
		.size = sizeof(op),
		.transport = KVMI_TRANSPORT_SOCKET,
	};
	struct kvmi_open_guest og = {
		.id = id,
		.open = (uintptr_t)&op,
	};
	int sv[2], fd, r;

	if (!disc || !domp)
		return -EINVAL;
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv))
		return -errno;
	op.transport_fd = sv[1];
	fd = ioctl(kvmi_disc_fd(disc), KVMI_DEV_OPEN_GUEST, &og);
	r = fd < 0 ? -errno : 0;
	close(sv[1]);	/* the kernel holds its own reference */
	if (!r) {
		r = kvmi_dom_from_socket(fd, sv[0], domp);
		if (r)
			close(fd);
	}
	if (r)
		close(sv[0]);
	return r;
}
