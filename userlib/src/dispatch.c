// SPDX-License-Identifier: LGPL-2.1-or-later OR MIT
/*
 * One pollable fd per dom for the tool's own poll/epoll/io_uring loop,
 * and the dispatcher that drains it: the VM-wide notify eventfd, the
 * introspection fd (EPOLLPRI: unhook, EPOLLHUP: detached) and every
 * per-vCPU notify eventfd, behind one epoll fd.
 */
#include <sys/epoll.h>
#include <unistd.h>

#include "internal.h"

static int ep_add(int epfd, int fd, uint32_t events)
{
	struct epoll_event e = { .events = events, .data.fd = fd };

	if (epoll_ctl(epfd, EPOLL_CTL_ADD, fd, &e) && errno != EEXIST)
		return -errno;
	return 0;
}

/**
 * kvmi_dom_pollfd() - an fd that polls readable when this dom needs
 * kvmi_dom_dispatch(): an event on a vCPU, a change of the VM state
 * (unhook, detach, a new vCPU). Created on first use; owned by the dom.
 */
__cold int kvmi_dom_pollfd(struct kvmi_dom *dom)
{
	uint32_t i;
	int epfd, r;

	if (dom->epfd >= 0)
		return dom->epfd;
	epfd = epoll_create1(EPOLL_CLOEXEC);
	if (epfd < 0)
		return -errno;
	r = ep_add(epfd, dom->notify_fd, EPOLLIN);
	if (!r && dom->fd >= 0)
		r = ep_add(epfd, dom->fd, EPOLLPRI);
	/* The socket: readable for a message, or at its end. */
	if (!r && dom->sock)
		r = ep_add(epfd, kvmi__sock_fd(dom), EPOLLIN);
	for (i = 0; !r && i < dom->max_vcpus; i++)
		if (dom->vcpus[i].notify_fd >= 0)
			r = ep_add(epfd, dom->vcpus[i].notify_fd, EPOLLIN);
	if (r) {
		close(epfd);
		return r;
	}
	dom->epfd = epfd;
	/* Events another thread reads off the socket ring notify_fd. */
	if (dom->sock)
		kvmi__sock_notify(dom);
	return epfd;
}

static void drain(int fd)
{
	uint64_t cnt;

	if (fd >= 0)
		while (read(fd, &cnt, sizeof(cnt)) == sizeof(cnt))
			;
}

/**
 * kvmi_dom_dispatch() - reset the doorbells, then pop every new event on
 * every vCPU and call @fn for it (which replies now, or later from any
 * thread that then serves that vCPU). Never blocks. Returns the number of
 * events handed to @fn, -ENODEV once introspection has ended, or the
 * first negative value @fn returned (the remaining vCPUs are left for
 * the next call).
 */
int kvmi_dom_dispatch(struct kvmi_dom *dom, kvmi_event_fn fn, void *arg)
{
	struct kvmi_event ev;
	uint32_t i, n;
	int r, count = 0;

	if (!fn)
		return -EINVAL;
	/* Reset first: an event published after the scan rings again. */
	drain(dom->notify_fd);
	n = kvmi_dom_nr_vcpus(dom);
	for (i = 0; i < n; i++)
		drain(dom->vcpus[i].notify_fd);
	/* The socket: queue every message waiting in it. */
	if (dom->sock)
		kvmi__sock_pump(dom);
	for (i = 0; i < n; i++) {
		struct kvmi_vcpu *v = &dom->vcpus[i];

		/* An event already popped is the handler's until it replies. */
		if (v->cur)
			continue;
		r = kvmi_vcpu_pop_event(v, &ev);
		if (r == -EAGAIN)
			continue;
		if (r && r != -EBADMSG)
			return r;
		r = fn(v, &ev, arg);
		if (r < 0)
			return r;
		count++;
	}
	if (!count && (kvmi__detached(dom) ||
		       (dom->sock && kvmi__sock_ended(dom))))
		return -ENODEV;
	return count;
}
