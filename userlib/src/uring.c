// SPDX-License-Identifier: LGPL-2.1-or-later OR MIT
/*
 * An io_uring event loop over any number of doms: one multishot poll per
 * doorbell (the VM-wide notify eventfd of each dom and each per-vCPU
 * one), plus one on the introspection fd for unhook/detach; a completion
 * dispatches the dom it belongs to. A discovery object (/dev/kvmi) can
 * sit in the same loop: one multishot poll on its fd, whose completions
 * run kvmi_disc_dispatch(), from which a tool may add each new guest's
 * dom to the loop.
 */
#include <liburing.h>
#include <poll.h>
#include <stdlib.h>

#include "internal.h"

struct kvmi_uring_dom;
struct kvmi_uring_disc;

/* One multishot poll: its completions carry a pointer to it. */
struct kvmi_uring_watch {
	struct kvmi_uring_dom *ud;	/* NULL for a discovery watch */
	struct kvmi_uring_disc *dd;	/* NULL for a dom's watch */
	int fd;
	unsigned int mask;
};

struct kvmi_uring_disc {
	struct kvmi_disc *disc;
	kvmi_guest_fn fn;
	void *arg;
	struct kvmi_uring_disc *next;
	bool removed;		/* kept until destroy: CQEs may point here */
	struct kvmi_uring_watch watch;
};

struct kvmi_uring_dom {
	struct kvmi_dom *dom;
	kvmi_event_fn fn;
	void *arg;
	struct kvmi_uring_dom *next;
	bool removed;		/* kept until destroy: CQEs may point here */
	unsigned int nr_watches;
	struct kvmi_uring_watch watches[];
};

struct kvmi_uring {
	struct io_uring ring;
	struct kvmi_uring_dom *doms;
	struct kvmi_uring_disc *discs;
};

int kvmi_uring_create(unsigned int entries, struct kvmi_uring **loopp)
{
	struct kvmi_uring *loop;
	int r;

	if (!loopp || !entries)
		return -EINVAL;
	loop = calloc(1, sizeof(*loop));
	if (!loop)
		return -ENOMEM;
	r = io_uring_queue_init(entries, &loop->ring, 0);
	if (r < 0) {
		free(loop);
		return r;
	}
	*loopp = loop;
	return 0;
}

static struct io_uring_sqe *get_sqe(struct kvmi_uring *loop)
{
	struct io_uring_sqe *sqe = io_uring_get_sqe(&loop->ring);

	if (!sqe) {
		io_uring_submit(&loop->ring);
		sqe = io_uring_get_sqe(&loop->ring);
	}
	return sqe;
}

static int arm(struct kvmi_uring *loop, struct kvmi_uring_watch *w)
{
	struct io_uring_sqe *sqe = get_sqe(loop);

	if (!sqe)
		return -EBUSY;
	io_uring_prep_poll_multishot(sqe, w->fd, w->mask);
	io_uring_sqe_set_data(sqe, w);
	return 0;
}

static void watch(struct kvmi_uring_dom *ud, int fd, unsigned int mask)
{
	struct kvmi_uring_watch *w = &ud->watches[ud->nr_watches++];

	w->ud = ud;
	w->fd = fd;
	w->mask = mask;
}

/**
 * kvmi_uring_add() - watch @dom's doorbells; call @fn for each event
 * (through kvmi_dom_dispatch()). Per-vCPU doorbells must exist before.
 */
int kvmi_uring_add(struct kvmi_uring *loop, struct kvmi_dom *dom,
		   kvmi_event_fn fn, void *arg)
{
	struct kvmi_uring_dom *ud;
	uint32_t i, n = 3;
	int r = 0;

	if (!loop || !dom || !fn)
		return -EINVAL;
	for (ud = loop->doms; ud; ud = ud->next)
		if (ud->dom == dom && !ud->removed)
			return -EEXIST;
	for (i = 0; i < dom->max_vcpus; i++)
		n += dom->vcpus[i].notify_fd >= 0;
	ud = calloc(1, sizeof(*ud) + n * sizeof(ud->watches[0]));
	if (!ud)
		return -ENOMEM;
	ud->dom = dom;
	ud->fn = fn;
	ud->arg = arg;
	watch(ud, dom->notify_fd, POLLIN);
	if (dom->fd >= 0)
		watch(ud, dom->fd, POLLPRI);
	if (dom->sock) {
		watch(ud, kvmi__sock_fd(dom), POLLIN);
		kvmi__sock_notify(dom);
	}
	for (i = 0; i < dom->max_vcpus; i++)
		if (dom->vcpus[i].notify_fd >= 0)
			watch(ud, dom->vcpus[i].notify_fd, POLLIN);
	ud->next = loop->doms;
	loop->doms = ud;
	for (i = 0; !r && i < ud->nr_watches; i++)
		r = arm(loop, &ud->watches[i]);
	if (!r) {
		r = io_uring_submit(&loop->ring);
		r = r < 0 ? r : 0;
	}
	if (r) {
		kvmi_uring_remove(loop, dom);
		return r;
	}
	/* Events published before the polls were armed. */
	r = kvmi_dom_dispatch(dom, fn, arg);
	return r < 0 ? r : 0;
}

/* Stop watching @dom (its polls are cancelled); the dom stays open. */
int kvmi_uring_remove(struct kvmi_uring *loop, struct kvmi_dom *dom)
{
	struct kvmi_uring_dom *ud;
	struct io_uring_sqe *sqe;
	int r;

	unsigned int i;

	for (ud = loop->doms; ud; ud = ud->next)
		if (ud->dom == dom && !ud->removed)
			break;
	if (!ud)
		return -ENOENT;
	ud->removed = true;
	for (i = 0; i < ud->nr_watches; i++) {
		sqe = get_sqe(loop);
		if (!sqe)
			return -EBUSY;
		io_uring_prep_cancel(sqe, &ud->watches[i], 0);
		io_uring_sqe_set_data(sqe, NULL);
	}
	r = io_uring_submit(&loop->ring);
	return r < 0 ? r : 0;
}

/**
 * kvmi_uring_add_disc() - watch @disc's fd; call @fn for each guest that
 * comes or goes (through kvmi_disc_dispatch()). @fn may add the new
 * guest's dom to @loop.
 */
int kvmi_uring_add_disc(struct kvmi_uring *loop, struct kvmi_disc *disc,
			kvmi_guest_fn fn, void *arg)
{
	struct kvmi_uring_disc *dd;
	int r;

	if (!loop || !disc || !fn)
		return -EINVAL;
	for (dd = loop->discs; dd; dd = dd->next)
		if (dd->disc == disc && !dd->removed)
			return -EEXIST;
	dd = calloc(1, sizeof(*dd));
	if (!dd)
		return -ENOMEM;
	dd->disc = disc;
	dd->fn = fn;
	dd->arg = arg;
	dd->watch.dd = dd;
	dd->watch.fd = kvmi_disc_fd(disc);
	dd->watch.mask = POLLIN;
	dd->next = loop->discs;
	loop->discs = dd;
	r = arm(loop, &dd->watch);
	if (!r) {
		r = io_uring_submit(&loop->ring);
		r = r < 0 ? r : 0;
	}
	if (r) {
		kvmi_uring_remove_disc(loop, disc);
		return r;
	}
	/* The guests present, and the records queued before the poll. */
	r = kvmi_disc_dispatch(disc, fn, arg);
	return r < 0 ? r : 0;
}

/* Stop watching @disc (its poll is cancelled); the disc stays open. */
int kvmi_uring_remove_disc(struct kvmi_uring *loop, struct kvmi_disc *disc)
{
	struct kvmi_uring_disc *dd;
	struct io_uring_sqe *sqe;
	int r;

	if (!loop)
		return -EINVAL;
	for (dd = loop->discs; dd; dd = dd->next)
		if (dd->disc == disc && !dd->removed)
			break;
	if (!dd)
		return -ENOENT;
	dd->removed = true;
	sqe = get_sqe(loop);
	if (!sqe)
		return -EBUSY;
	io_uring_prep_cancel(sqe, &dd->watch, 0);
	io_uring_sqe_set_data(sqe, NULL);
	r = io_uring_submit(&loop->ring);
	return r < 0 ? r : 0;
}

/* A discovery watch completed: dispatch its disc. */
static int run_disc(struct kvmi_uring *loop, struct io_uring_cqe *cqe,
		    struct kvmi_uring_watch *w)
{
	struct kvmi_uring_disc *dd = w->dd;

	if (dd->removed || cqe->res < 0)
		return 0;
	if (!(cqe->flags & IORING_CQE_F_MORE) && arm(loop, w) == 0)
		io_uring_submit(&loop->ring);
	return kvmi_disc_dispatch(dd->disc, dd->fn, dd->arg);
}

/*
 * Wait up to @timeout_ms (-1: for ever, 0: don't wait) for doorbells, then
 * dispatch every dom that rang. Returns the number of events handled, or
 * a negative errno (-ENODEV is not one: a dom whose introspection ended
 * is removed from the loop, and kvmi_dom_state_flags() tells why).
 */
int kvmi_uring_run(struct kvmi_uring *loop, int timeout_ms)
{
	struct __kernel_timespec ts, *tsp = NULL;
	struct kvmi_uring_dom *ud;
	struct io_uring_cqe *cqe;
	unsigned int head, seen = 0;
	int r, total = 0;

	if (timeout_ms >= 0) {
		ts.tv_sec = timeout_ms / 1000;
		ts.tv_nsec = (timeout_ms % 1000) * 1000000LL;
		tsp = &ts;
	}
	r = io_uring_wait_cqe_timeout(&loop->ring, &cqe, tsp);
	if (r == -ETIME || r == -EINTR)
		return 0;
	if (r < 0)
		return r;

	io_uring_for_each_cqe(&loop->ring, head, cqe) {
		struct kvmi_uring_watch *w = io_uring_cqe_get_data(cqe);

		seen++;
		if (w && w->dd) {
			r = run_disc(loop, cqe, w);
			if (r < 0) {
				io_uring_cq_advance(&loop->ring, seen);
				return r;
			}
			total += r;
			continue;
		}
		if (!w || w->ud->removed || cqe->res < 0)
			continue;
		ud = w->ud;
		/* A multishot poll ends on CQ overflow: arm it again. */
		if (!(cqe->flags & IORING_CQE_F_MORE) && arm(loop, w) == 0)
			io_uring_submit(&loop->ring);
		r = kvmi_dom_dispatch(ud->dom, ud->fn, ud->arg);
		if (r == -ENODEV) {
			kvmi_uring_remove(loop, ud->dom);
			continue;
		}
		if (r < 0) {
			io_uring_cq_advance(&loop->ring, seen);
			return r;
		}
		total += r;
	}
	io_uring_cq_advance(&loop->ring, seen);
	return total;
}

void kvmi_uring_destroy(struct kvmi_uring *loop)
{
	struct kvmi_uring_disc *dd, *dnext;
	struct kvmi_uring_dom *ud, *next;

	if (!loop)
		return;
	io_uring_queue_exit(&loop->ring);
	for (ud = loop->doms; ud; ud = next) {
		next = ud->next;
		free(ud);
	}
	for (dd = loop->discs; dd; dd = dnext) {
		dnext = dd->next;
		free(dd);
	}
	free(loop);
}
