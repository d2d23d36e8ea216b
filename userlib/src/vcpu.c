// SPDX-License-Identifier: LGPL-2.1-or-later OR MIT
/*
 * The tool's side of one vCPU's slots (kvmi.rst, section 9.4): peek and
 * pop events, reply, kick. No system call on the poll path.
 */
#include <poll.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include "internal.h"

uint32_t kvmi_vcpu_index(const struct kvmi_vcpu *vcpu)
{
	return vcpu->index;
}

struct kvmi_dom *kvmi_vcpu_dom(const struct kvmi_vcpu *vcpu)
{
	return vcpu->dom;
}

bool kvmi__detached(const struct kvmi_dom *dom)
{
	return load_acquire(&dom->vm->flags) & KVMI_VM_DETACHED;
}

int kvmi__vcpu_notify_fd(const struct kvmi_vcpu *v)
{
	return v->notify_fd >= 0 ? v->notify_fd : v->dom->notify_fd;
}

int kvmi__vcpu_kick_fd(const struct kvmi_vcpu *v)
{
	return v->kick_fd >= 0 ? v->kick_fd : v->dom->kick_fd;
}

/* A published event the tool has not popped yet: its seq, else 0. */
static inline uint32_t new_event(const struct kvmi_vcpu *v)
{
	/* T1: pairs with the kernel's store-release of ev->seq (K1). */
	uint32_t s = load_acquire(&v->ev->seq);

	return s != v->last ? s : 0;
}

/**
 * kvmi_vcpu_peek_event() - the event waiting in the slot, if the tool has
 * not popped it yet, else NULL. Zero copy: the record stays as it is until
 * the vCPU finishes the event (a tool that may be overtaken by a deadline
 * should pop instead, which checks that the copy is whole).
 */
const struct kvmi_event *kvmi_vcpu_peek_event(struct kvmi_vcpu *vcpu)
{
	if (vcpu->dom->sock)
		return kvmi__sock_peek_event(vcpu->dom, vcpu->index);
	return new_event(vcpu) ? vcpu->ev : NULL;
}

/*
 * A record the kernel never publishes: an unknown or slot-less event id,
 * another vCPU's index, a register set without every group.
 */
static bool event_malformed(const struct kvmi_vcpu *v,
			    const struct kvmi_event *ev)
{
	return ev->id == 0 || ev->id == KVMI_EVENT_UNHOOK ||
	       ev->id > KVMI_EVENT_PAGE_FAULT || ev->vcpu != v->index ||
	       ev->regs.groups & ~KVMI_REGS_ALL;
}

/* An event taken from the socket becomes the vCPU's current event. */
static int sock_popped(struct kvmi_vcpu *v, struct kvmi_event *ev, int r)
{
	if (r)
		return r == -EAGAIN && kvmi__detached(v->dom) ? -ENODEV : r;
	v->last = ev->seq;
	v->cur = ev->seq;
	v->cur_id = ev->id;
	return event_malformed(v, ev) ? -EBADMSG : 0;
}

/**
 * kvmi_vcpu_pop_event() - copy the new event into @ev and make it the
 * event this vCPU's thread is handling (the one kvmi_vcpu_reply() and the
 * commands refer to). Returns 0, -EAGAIN if there is none, -EBADMSG if the
 * record is malformed (it is popped all the same, so that it can be
 * answered), -ENODEV if introspection has ended.
 */
int kvmi_vcpu_pop_event(struct kvmi_vcpu *vcpu, struct kvmi_event *ev)
{
	uint32_t s;

	if (vcpu->dom->sock)
		return sock_popped(vcpu, ev,
				   kvmi__sock_take_event(vcpu->dom, vcpu->index,
							 ev, 0));
	for (;;) {
		s = new_event(vcpu);
		if (!s)
			return kvmi__detached(vcpu->dom) ? -ENODEV : -EAGAIN;
		memcpy(ev, (const void *)vcpu->ev, sizeof(*ev));
		/* smp_rmb(), then re-check: pairs with K0 (slot rewritten). */
		smp_rmb();
		if (READ_ONCE(vcpu->ev->seq) == s)
			break;
	}
	ev->seq = s;
	vcpu->last = s;
	vcpu->cur = s;
	vcpu->cur_id = ev->id;
	return event_malformed(vcpu, ev) ? -EBADMSG : 0;
}

/* T3: after publishing a reply or a command, kick a vCPU going to sleep. */
int kvmi__kick(struct kvmi_vcpu *v)
{
	static const uint64_t one = 1;

	smp_mb();	/* pairs with the kernel's smp_mb() after NEED_KICK (K6) */
	if (!(READ_ONCE(v->vs->flags) & KVMI_VCPU_NEED_KICK))
		return 0;
	if (write(kvmi__vcpu_kick_fd(v), &one, sizeof(one)) != sizeof(one))
		return errno == EAGAIN ? 0 : -errno;	/* EAGAIN: count full */
	return 0;
}

#define KVMI_REPLY_KNOWN	(KVMI_REPLY_SET_REGS | KVMI_REPLY_SINGLESTEP)

/* The reply as a KVMI_MSG_REPLY; the event is answered even if it fails. */
static int sock_reply(struct kvmi_vcpu *v, uint8_t action, uint32_t flags,
		      const struct kvmi_x86_regs *regs,
		      const union kvmi_reply_data *data)
{
	struct kvmi_reply rp;

	memset(&rp, 0, sizeof(rp));
	rp.seq = v->cur;
	rp.event = v->cur_id;
	rp.action = action;
	rp.flags = flags;
	if (data)
		memcpy(&rp.data, data, sizeof(rp.data));
	if (flags & KVMI_REPLY_SET_REGS)
		memcpy(&rp.regs, regs, sizeof(rp.regs));
	v->cur = 0;
	/*
	 * The event ended without it (deadline, UNPAUSE): the kernel would
	 * ignore the reply (section 22.4), as the ring's does; don't send
	 * it. kvmi_vcpu_done() tells how the event ended.
	 */
	if (load_acquire(&v->vs->done_seq) == rp.seq)
		return 0;
	return kvmi__sock_send(v->dom, KVMI_MSG_REPLY, rp.seq, v->index, &rp,
			       sizeof(rp));
}

/**
 * kvmi_vcpu_reply() - answer the event popped on this vCPU.
 * @flags: KVMI_REPLY_SET_REGS (then @regs is required: its selected groups
 * are written), KVMI_REPLY_SINGLESTEP (with KVMI_FEATURE_SINGLESTEP).
 * @data: the event's reply data (CR, MSR, TRAP, PAGE_FAULT), or NULL.
 *
 * Bad arguments are refused before anything is written, and the event
 * stays pending: nothing is lost.
 */
int kvmi_vcpu_reply(struct kvmi_vcpu *vcpu, uint8_t action, uint32_t flags,
		    const struct kvmi_x86_regs *regs,
		    const union kvmi_reply_data *data)
{
	struct kvmi_reply *rp = vcpu->rp;
	uint32_t s = vcpu->cur;

	if (!s)
		return -ENOENT;
	if (flags & ~KVMI_REPLY_KNOWN || action > KVMI_ACTION_EMUL_NOWRITE)
		return -EINVAL;
	if ((flags & KVMI_REPLY_SET_REGS) &&
	    (!regs || regs->groups & ~KVMI_REGS_ALL))
		return -EINVAL;
	if ((flags & KVMI_REPLY_SINGLESTEP) &&
	    !(vcpu->dom->ver.features & KVMI_FEATURE_SINGLESTEP))
		return -EOPNOTSUPP;
	if (vcpu->dom->sock)
		return sock_reply(vcpu, action, flags, regs, data);

	rp->event = vcpu->cur_id;
	rp->action = action;
	rp->padding1 = 0;
	rp->flags = flags;
	rp->padding2 = 0;
	if (data)
		memcpy(&rp->data, data, sizeof(rp->data));
	if (flags & KVMI_REPLY_SET_REGS)
		memcpy(&rp->regs, regs, sizeof(rp->regs));
	/* T2: pairs with the kernel's load-acquire of rp->seq (K3). */
	store_release(&rp->seq, s);
	vcpu->cur = 0;
	return kvmi__kick(vcpu);
}

/* The default action of an event (kvmi.rst, section 10.1). */
static uint8_t default_action(uint16_t id)
{
	return id == KVMI_EVENT_BREAKPOINT ? KVMI_ACTION_ALLOW :
					     KVMI_ACTION_CONTINUE;
}

/*
 * At close: answer the event popped and not replied, and the event
 * published and not popped if the vCPU still waits in it.
 */
__cold int kvmi__answer_pending(struct kvmi_vcpu *v)
{
	struct kvmi_event ev;
	uint32_t s;

	if (kvmi__detached(v->dom))
		return 0;
	if (v->dom->sock) {
		/* An event read and not popped: its vCPU waits in it. */
		if (!v->cur) {
			if (kvmi__sock_take_event(v->dom, v->index, &ev, 0))
				return 0;
			v->cur = ev.seq;
			v->cur_id = ev.id;
		}
		if (kvmi__sock_ended(v->dom))
			return 0;
		return kvmi_vcpu_reply(v, default_action(v->cur_id), 0, NULL,
				       NULL);
	}
	if (!v->cur) {
		s = new_event(v);
		/* T7: pairs with the kernel's release of done_seq (K7). */
		if (!s || load_acquire(&v->vs->done_seq) == s)
			return 0;
		v->last = s;
		v->cur = s;
		v->cur_id = READ_ONCE(v->ev->id);
	}
	return kvmi_vcpu_reply(v, default_action(v->cur_id), 0, NULL, NULL);
}

int kvmi_vcpu_done(struct kvmi_vcpu *vcpu, struct kvmi_done *done)
{
	uint32_t s;

	if (!done)
		return -EINVAL;
	/* T7: done_action and done_reason are written before done_seq. */
	s = load_acquire(&vcpu->vs->done_seq);
	done->action = READ_ONCE(vcpu->vs->done_action);
	done->reason = READ_ONCE(vcpu->vs->done_reason);
	done->padding = 0;
	/* The next event may rewrite them: report a consistent triple. */
	smp_rmb();
	if (READ_ONCE(vcpu->vs->done_seq) != s)
		return -EAGAIN;
	done->seq = s;
	return 0;
}

int kvmi_vcpu_counters(struct kvmi_vcpu *vcpu,
		       struct kvmi_vcpu_counters *counters)
{
	if (!counters)
		return -EINVAL;
	memcpy(counters, (const void *)vcpu->counters, sizeof(*counters));
	return 0;
}

/**
 * kvmi_vcpu_own_doorbell() - give this vCPU doorbells of its own, a notify
 * and a kick eventfd (for a thread that serves this vCPU alone and
 * sleeps); returns the notify one. The VM-wide doorbells no longer ring
 * for this vCPU, and its kicks wake no other vCPU.
 */
__cold int kvmi_vcpu_own_doorbell(struct kvmi_vcpu *vcpu)
{
	struct kvmi_dom *dom = vcpu->dom;
	int notify, kick, r;

	if (dom->sock)
		return -EOPNOTSUPP;	/* the socket is the doorbell */
	if (vcpu->notify_fd >= 0)
		return vcpu->notify_fd;
	notify = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (notify < 0)
		return -errno;
	kick = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (kick < 0) {
		r = -errno;
		close(notify);
		return r;
	}
	if (dom->fd >= 0) {
		r = kvmi_dom_set_doorbells(dom, vcpu->index,
					   KVMI_DOORBELL_NOTIFY |
					   KVMI_DOORBELL_KICK, notify, kick);
		if (r) {
			close(notify);
			close(kick);
			return r;
		}
	}
	vcpu->kick_fd = kick;
	vcpu->notify_fd = notify;
	/* Already polled by the tool's loop: add it (epoll is thread-safe). */
	if (dom->epfd >= 0) {
		struct epoll_event e = { .events = EPOLLIN, .data.fd = notify };

		epoll_ctl(dom->epfd, EPOLL_CTL_ADD, notify, &e);
	}
	return notify;
}

/**
 * kvmi_vcpu_set_tool_mode() - how kvmi_vcpu_wait_event() waits on this
 * vCPU: KVMI_WAIT_POLL (spin, KVMI_TOOL_POLLING set: the kernel never
 * rings), KVMI_WAIT_HYBRID (spin @spin_ns, then sleep), KVMI_WAIT_BLOCK
 * (sleep at once). kvmi_dom_set_wait_mode() sets both sides.
 */
int kvmi_vcpu_set_tool_mode(struct kvmi_vcpu *vcpu, uint32_t mode,
			    uint64_t spin_ns)
{
	if (mode > KVMI_WAIT_POLL || (mode != KVMI_WAIT_HYBRID && spin_ns) ||
	    (mode == KVMI_WAIT_HYBRID && !spin_ns))
		return -EINVAL;
	/* The socket: no slot to spin on; HYBRID sleeps at once. */
	if (vcpu->dom->sock && mode == KVMI_WAIT_POLL)
		return -EOPNOTSUPP;
	vcpu->tool.mode = mode;
	vcpu->tool.spin_ns = spin_ns;
	if (vcpu->dom->sock)
		return 0;
	/* POLL: the tool polls from now on; the kernel needn't ring. */
	WRITE_ONCE(vcpu->ts->flags, mode == KVMI_WAIT_POLL ? KVMI_TOOL_POLLING : 0);
	return 0;
}

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);	/* vDSO, if the clock allows */
	return ts.tv_sec * 1000000000ULL + ts.tv_nsec;
}

/*
 * Spin for a new event until @deadline (ns, 0: for ever) with
 * KVMI_TOOL_POLLING set. Returns 0, -EAGAIN at the deadline, or an error
 * of kvmi_vcpu_pop_event().
 */
static int spin(struct kvmi_vcpu *v, struct kvmi_event *ev, uint64_t deadline)
{
	unsigned int n = 0;
	int r;

	WRITE_ONCE(v->ts->flags, KVMI_TOOL_POLLING);
	for (;;) {
		if (new_event(v)) {
			r = kvmi_vcpu_pop_event(v, ev);
			if (r != -EAGAIN)
				return r;
		}
		if (!(++n & 1023)) {
			if (kvmi__detached(v->dom))
				return -ENODEV;
			if (deadline && now_ns() >= deadline)
				return -EAGAIN;
		}
		cpu_relax();
	}
}

/**
 * kvmi_vcpu_wait_event() - pop the next event of this vCPU, waiting in the
 * vCPU's tool mode. @timeout_ms: -1 waits for ever, 0 only looks.
 * Returns 0, -ETIMEDOUT, -ENODEV (introspection ended), -EINTR, -EBADMSG.
 * Sleeping needs a notify eventfd of the vCPU's own, created here the
 * first time (kvmi_vcpu_own_doorbell()).
 */
int kvmi_vcpu_wait_event(struct kvmi_vcpu *vcpu, struct kvmi_event *ev,
			 int timeout_ms)
{
	uint64_t deadline = 0, start, t;
	struct pollfd pfd[2];
	uint64_t cnt;
	int r, ms;

	if (vcpu->dom->sock) {
		r = kvmi__sock_take_event(vcpu->dom, vcpu->index, ev,
					  timeout_ms < 0 ? -1 : timeout_ms);
		r = sock_popped(vcpu, ev, r);
		return r == -EAGAIN ? -ETIMEDOUT : r;
	}
	r = kvmi_vcpu_pop_event(vcpu, ev);
	if (r != -EAGAIN)
		return r;
	if (!timeout_ms)
		return -ETIMEDOUT;
	/* No clock read when polling for ever: it may be a system call. */
	start = timeout_ms > 0 || vcpu->tool.mode == KVMI_WAIT_HYBRID ?
		now_ns() : 0;
	if (timeout_ms > 0)
		deadline = start + timeout_ms * 1000000ULL;

	if (vcpu->tool.mode == KVMI_WAIT_POLL) {
		r = spin(vcpu, ev, deadline);
		return r == -EAGAIN ? -ETIMEDOUT : r;
	}
	if (vcpu->tool.mode == KVMI_WAIT_HYBRID) {
		t = start + vcpu->tool.spin_ns;
		r = spin(vcpu, ev, deadline && deadline < t ? deadline : t);
		if (r != -EAGAIN)
			return r;
	}

	pfd[0].fd = kvmi_vcpu_own_doorbell(vcpu);
	if (pfd[0].fd < 0)
		return pfd[0].fd;
	pfd[0].events = POLLIN;
	/* The end of introspection rings no per-vCPU doorbell: EPOLLHUP. */
	pfd[1].fd = vcpu->dom->fd;
	pfd[1].events = 0;
	for (;;) {
		/* T0: clear POLLING, then recheck. */
		WRITE_ONCE(vcpu->ts->flags, 0);
		smp_mb();	/* pairs with the kernel's smp_mb() of K2 */
		r = kvmi_vcpu_pop_event(vcpu, ev);
		if (r != -EAGAIN)
			return r;
		ms = -1;
		if (deadline) {
			t = now_ns();
			if (t >= deadline)
				return -ETIMEDOUT;
			ms = (deadline - t + 999999) / 1000000;
		}
		r = poll(pfd, pfd[1].fd >= 0 ? 2 : 1, ms);
		if (r < 0)
			return -errno;
		if (pfd[0].revents &&
		    read(pfd[0].fd, &cnt, sizeof(cnt)) < 0 && errno != EAGAIN)
			return -errno;
	}
}
