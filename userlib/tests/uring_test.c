// SPDX-License-Identifier: LGPL-2.1-or-later OR MIT
/*
 * The io_uring loop: multishot polls on the doorbells of several doms
 * (simulated kernels on threads), every event served from one thread.
 */
#include <liburing.h>

#include "harness.h"
#include "sim.h"

#define NR_DOMS		3
#define NR_VCPUS	2
#define NR_EVENTS	2000

struct producer {
	struct sim *s;
	uint32_t vcpu;
	unsigned int bad;
	pthread_t thread;
};

static void *producer_fn(void *arg)
{
	struct producer *p = arg;
	struct kvmi_reply *rp;
	uint32_t seq;

	for (seq = 1; seq <= NR_EVENTS; seq++) {
		sim_publish(p->s, p->vcpu, seq, KVMI_EVENT_HYPERCALL);
		rp = sim_wait_reply(p->s, p->vcpu);
		if (!rp || rp->action != KVMI_ACTION_CONTINUE)
			p->bad++;
	}
	return NULL;
}

static int reply_fn(struct kvmi_vcpu *v, const struct kvmi_event *ev,
		    void *arg)
{
	unsigned int *count = arg;

	(*count)++;
	return kvmi_vcpu_reply(v, KVMI_ACTION_CONTINUE, 0, NULL, NULL);
}

static bool uring_works(void)
{
	struct io_uring ring;

	if (io_uring_queue_init(4, &ring, 0))
		return false;
	io_uring_queue_exit(&ring);
	return true;
}

TEST(uring_serves_several_doms)
{
	struct producer p[NR_DOMS][NR_VCPUS];
	unsigned int count[NR_DOMS] = { 0 };
	struct sim s[NR_DOMS];
	struct kvmi_uring *loop;
	unsigned int total = 0;
	int d, i, r;

	if (!uring_works())
		SKIP("io_uring is not available here");
	CHECK_EQ(-EINVAL, kvmi_uring_create(0, &loop));
	CHECK_EQ(0, kvmi_uring_create(64, &loop));
	for (d = 0; d < NR_DOMS; d++) {
		sim_default(&s[d], NR_VCPUS);
		CHECK_EQ(0, sim_start(&s[d], NR_VCPUS));
		/*
		 * The simulated vCPUs consume the kick eventfd they sleep on
		 * (the kernel's wait-queue callback doesn't): at most one
		 * sleeper per kick eventfd. dom 0: VM-wide doorbells, vCPUs
		 * spin; dom 1: per-vCPU doorbells, vCPUs sleep; dom 2:
		 * VM-wide doorbells, vCPU 0 spins then sleeps, vCPU 1 spins.
		 */
		for (i = 0; i < NR_VCPUS; i++) {
			s[d].v[i].mode = d == 0 ? KVMI_WAIT_POLL :
					 d == 1 ? KVMI_WAIT_BLOCK :
					 i == 0 ? KVMI_WAIT_HYBRID : KVMI_WAIT_POLL;
			if (d == 1)
				CHECK(kvmi_vcpu_own_doorbell(kvmi_dom_vcpu(s[d].dom, i)) >= 0);
		}
		CHECK_EQ(0, kvmi_uring_add(loop, s[d].dom, reply_fn, &count[d]));
	}
	CHECK_EQ(-EEXIST, kvmi_uring_add(loop, s[0].dom, reply_fn, &count[0]));
	for (d = 0; d < NR_DOMS; d++)
		for (i = 0; i < NR_VCPUS; i++) {
			p[d][i].s = &s[d];
			p[d][i].vcpu = i;
			p[d][i].bad = 0;
			CHECK(!pthread_create(&p[d][i].thread, NULL,
					      producer_fn, &p[d][i]));
		}
	while (total < NR_DOMS * NR_VCPUS * NR_EVENTS) {
		r = kvmi_uring_run(loop, -1);
		CHECK(r >= 0);
		total += r;
	}
	CHECK_EQ(NR_DOMS * NR_VCPUS * NR_EVENTS, total);
	for (d = 0; d < NR_DOMS; d++) {
		CHECK_EQ(NR_VCPUS * NR_EVENTS, count[d]);
		for (i = 0; i < NR_VCPUS; i++) {
			pthread_join(p[d][i].thread, NULL);
			CHECK_EQ(0, p[d][i].bad);
		}
	}
	/* Nothing more: a run with a timeout returns 0. */
	CHECK_EQ(0, kvmi_uring_run(loop, 10));
	CHECK_EQ(0, kvmi_uring_remove(loop, s[0].dom));
	CHECK_EQ(-ENOENT, kvmi_uring_remove(loop, s[0].dom));
	/* A removed dom's doorbell no longer dispatches. */
	sim_publish(&s[0], 0, NR_EVENTS + 1, KVMI_EVENT_HYPERCALL);
	CHECK_EQ(0, kvmi_uring_run(loop, 10));
	CHECK_EQ(NR_VCPUS * NR_EVENTS, count[0]);
	/* A detached dom leaves the loop by itself. */
	__atomic_fetch_or(&s[2].vm->flags, KVMI_VM_DETACHED, __ATOMIC_RELEASE);
	sim_ring(kvmi__dom_notify_fd(s[2].dom));
	CHECK_EQ(0, kvmi_uring_run(loop, 100));
	CHECK_EQ(-ENOENT, kvmi_uring_remove(loop, s[2].dom));
	kvmi_uring_destroy(loop);
	for (d = 0; d < NR_DOMS; d++) {
		kvmi_dom_close(s[d].dom);
		sim_free(&s[d]);
	}
}
