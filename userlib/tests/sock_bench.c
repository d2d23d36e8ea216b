// SPDX-License-Identifier: LGPL-2.1-or-later OR MIT
/*
 * How many threads each message of the socket transport wakes: one thread
 * per vCPU in kvmi_vcpu_wait_event(), a simulated kernel on the other end
 * of a socket pair sending events round-robin over the vCPUs.
 *
 *   sock_bench [THREADS [MESSAGES [serial|pipelined]]]
 *                                        (default 8 100000, both)
 *
 * Two rounds: "serial", one event in flight at a time (every other
 * thread asleep: the worst case for a shared condition variable), and
 * "pipelined", one event in flight per vCPU (the kernel sends vCPU i's
 * next event when its reply comes). Prints wakeups (returns from a
 * condition variable wait) per message, and the time. Not a test: no
 * assertion on the numbers.
 */
#include <pthread.h>
#include <stdio.h>
#include <sys/socket.h>
#include <time.h>

#include "sim.h"

#define HDR	sizeof(struct kvmi_msg_hdr)

static void die(const char *what)
{
	fprintf(stderr, "sock_bench: %s\n", what);
	exit(1);
}

static void k_write(int k, const void *p, size_t n)
{
	if (write(k, p, n) != (ssize_t)n)
		die("write");
}

static void k_read(int k, void *p, size_t n)
{
	size_t got = 0;
	ssize_t r;

	while (got < n) {
		r = read(k, (uint8_t *)p + got, n - got);
		if (r <= 0)
			die("read");
		got += r;
	}
}

static void k_event(int k, uint32_t vcpu, uint32_t seq)
{
	struct {
		struct kvmi_msg_hdr h;
		struct kvmi_event ev;
	} m;

	memset(&m, 0, sizeof(m));
	m.h.id = KVMI_MSG_EVENT;
	m.h.size = sizeof(m.ev);
	m.h.seq = seq;
	m.h.vcpu = vcpu;
	m.ev.seq = seq;
	m.ev.id = KVMI_EVENT_HYPERCALL;
	m.ev.vcpu = vcpu;
	m.ev.regs.groups = KVMI_REGS_ALL;
	k_write(k, &m, sizeof(m));
}

/* The next reply; returns its vCPU. */
static uint32_t k_reply(int k)
{
	struct kvmi_msg_hdr h;
	struct kvmi_reply rp;

	k_read(k, &h, HDR);
	if (h.id != KVMI_MSG_REPLY || h.size != sizeof(rp))
		die("not a reply");
	k_read(k, &rp, sizeof(rp));
	return h.vcpu;
}

static void *serve(void *arg)
{
	struct kvmi_vcpu *v = arg;
	struct kvmi_event ev;
	int r;

	for (;;) {
		r = kvmi_vcpu_wait_event(v, &ev, -1);
		if (r == -ENODEV)
			return NULL;
		if (r)
			die("wait_event");
		if (kvmi_vcpu_reply(v, KVMI_ACTION_CONTINUE, 0, NULL, NULL))
			die("reply");
	}
}

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static void round_(const char *name, uint32_t n, uint32_t msgs, bool serial)
{
	struct kvmi__sock_stats st;
	pthread_t t[256];
	uint32_t *seq, i, sent, done, v;
	struct sim s;
	double t0, dt;
	int sv[2];

	sim_default(&s, n);
	s.ver.features |= KVMI_FEATURE_SOCKET;
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv))
		die("socketpair");
	s.vm = aligned_alloc(SIM_PAGE, SIM_PAGE);
	s.kernel = aligned_alloc(SIM_PAGE, n * SIM_KSTRIDE);
	s.tool = aligned_alloc(SIM_PAGE, n * SIM_TSTRIDE);
	seq = calloc(n, sizeof(*seq));
	if (!s.vm || !s.kernel || !s.tool || !seq)
		die("out of memory");
	memset(s.vm, 0, SIM_PAGE);
	memset(s.kernel, 0, n * SIM_KSTRIDE);
	memset(s.tool, 0, n * SIM_TSTRIDE);
	s.vm->max_vcpus = n;
	s.vm->nr_vcpus = n;
	for (i = 0; i < n; i++)
		sim_vs(&s, i)->vcpu = i;
	if (kvmi__dom_simulated_socket(&s.ver, &s.lo, s.vm, s.kernel, s.tool,
				       sv[0], &s.dom))
		die("dom");
	for (i = 0; i < n; i++)
		pthread_create(&t[i], NULL, serve, kvmi_dom_vcpu(s.dom, i));
	/* Every thread asleep or reading before the first message. */
	do {
		usleep(1000);
		kvmi__sock_stats(s.dom, &st);
	} while (st.waiting + st.reading < n);

	t0 = now();
	sent = done = 0;
	if (serial) {
		for (; sent < msgs; sent++) {
			v = sent % n;
			k_event(sv[1], v, ++seq[v]);
			if (k_reply(sv[1]) != v)
				die("reply of another vCPU");
		}
		done = sent;
	} else {
		for (; sent < n && sent < msgs; sent++)
			k_event(sv[1], sent, ++seq[sent]);
		while (done < msgs) {
			v = k_reply(sv[1]);
			done++;
			if (sent < msgs) {
				k_event(sv[1], v, ++seq[v]);
				sent++;
			}
		}
	}
	dt = now() - t0;
	kvmi__sock_stats(s.dom, &st);
	printf("%-9s %3u threads %7u messages: %.3f wakeups/message, %.2f s, %.1f us/message\n",
	       name, n, msgs, (double)st.wakeups / msgs, dt, dt * 1e6 / msgs);

	close(sv[1]);
	for (i = 0; i < n; i++)
		pthread_join(t[i], NULL);
	kvmi_dom_close(s.dom);
	sim_free(&s);
	free(seq);
}

int main(int argc, char **argv)
{
	uint32_t n = argc > 1 ? strtoul(argv[1], NULL, 0) : 8;
	uint32_t msgs = argc > 2 ? strtoul(argv[2], NULL, 0) : 100000;

	const char *only = argc > 3 ? argv[3] : NULL;

	if (!n || n > 256 || !msgs)
		die("usage: sock_bench [THREADS (1-256) [MESSAGES [serial|pipelined]]]");
	setvbuf(stdout, NULL, _IOLBF, 0);
	if (!only || !strcmp(only, "serial"))
		round_("serial", n, msgs, true);
	if (!only || !strcmp(only, "pipelined"))
		round_("pipelined", n, msgs, false);
	return 0;
}
