// SPDX-License-Identifier: LGPL-2.1-or-later OR MIT
/*
 * poll-per-vcpu: the lowest-latency setup. One thread per vCPU, each
 * spinning on its own vCPU's slot (KVMI_WAIT_POLL on both sides: no
 * system call per round trip), no lock between threads. Each hypercall
 * returns, in RAX, how many this vCPU has made.
 *
 *   poll-per-vcpu PID SECONDS
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <kvmi/kvmi.h>

#define MAX_THREADS	64

static volatile int stop;

struct worker {
	struct kvmi_vcpu *vcpu;
	unsigned long events;
	pthread_t thread;
};

static void *serve(void *arg)
{
	struct worker *w = arg;
	struct kvmi_x86_regs regs;
	struct kvmi_event ev;
	int r;

	while (!stop) {
		/* Spins; returns now and then so that we can look at stop. */
		r = kvmi_vcpu_wait_event(w->vcpu, &ev, 100);
		if (r == -ETIMEDOUT)
			continue;
		if (r == -ENODEV)
			break;
		w->events++;
		regs = ev.regs;
		regs.groups = KVMI_REGS_GPRS;
		regs.rax = w->events;
		kvmi_vcpu_reply(w->vcpu, KVMI_ACTION_CONTINUE,
				KVMI_REPLY_SET_REGS, &regs, NULL);
	}
	return NULL;
}

int main(int argc, char **argv)
{
	struct worker w[MAX_THREADS];
	struct kvmi_dom *dom;
	uint32_t i, n;
	int r;

	if (argc != 3) {
		fprintf(stderr, "usage: %s PID SECONDS\n", argv[0]);
		return 2;
	}
	r = kvmi_dom_attach_pid(atoi(argv[1]), &dom);
	if (r) {
		fprintf(stderr, "attach: %s\n", strerror(-r));
		return 1;
	}
	r = kvmi_dom_set_wait_mode(dom, KVMI_ALL_VCPUS, KVMI_WAIT_POLL, 0);
	if (!r)
		r = kvmi_dom_control_event(dom, KVMI_ALL_VCPUS,
					   KVMI_EVENT_HYPERCALL, 1, 0);
	if (r) {
		fprintf(stderr, "setup: %s\n", strerror(-r));
		kvmi_dom_close(dom);
		return 1;
	}
	n = kvmi_dom_nr_vcpus(dom);
	if (n > MAX_THREADS)
		n = MAX_THREADS;
	for (i = 0; i < n; i++) {
		w[i].vcpu = kvmi_dom_vcpu(dom, i);
		w[i].events = 0;
		pthread_create(&w[i].thread, NULL, serve, &w[i]);
	}
	sleep(atoi(argv[2]));
	stop = 1;
	for (i = 0; i < n; i++) {
		pthread_join(w[i].thread, NULL);
		printf("vcpu %u: %lu events\n", i, w[i].events);
	}
	/* Every thread has stopped: now close (answers what is pending). */
	return kvmi_dom_close(dom) ? 1 : 0;
}
