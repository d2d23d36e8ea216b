// SPDX-License-Identifier: LGPL-2.1-or-later OR MIT
/*
 * The ring/slot protocol between the library (the tool's thread) and a
 * simulated kernel producer on another thread that follows kvmi.rst,
 * section 9: round trips in the three wait modes, wakeup suppression
 * without lost wakeups, sequence-number wraparound, commands, malformed
 * records and replies, several vCPUs on several threads with no lock.
 */
#include "harness.h"
#include "sim.h"

struct producer {
	struct sim *s;
	uint32_t vcpu;
	uint32_t first;		/* first seq */
	unsigned int n;		/* events */
	unsigned int bad;	/* replies that did not match */
	pthread_t thread;
};

/* Publish @n events; check that each reply is the one the tool built. */
static void *producer_fn(void *arg)
{
	struct producer *p = arg;
	struct kvmi_reply *rp;
	uint32_t seq = p->first;
	unsigned int k;

	for (k = 0; k < p->n; k++, seq++) {
		if (!seq)
			seq = 1;	/* the kernel never publishes 0 */
		sim_publish(p->s, p->vcpu, seq, KVMI_EVENT_HYPERCALL);
		rp = sim_wait_reply(p->s, p->vcpu);
		if (!rp || rp->event != KVMI_EVENT_HYPERCALL ||
		    rp->padding1 || rp->padding2 ||
		    rp->action != KVMI_ACTION_CONTINUE ||
		    !(rp->flags & KVMI_REPLY_SET_REGS) ||
		    rp->regs.groups != KVMI_REGS_GPRS ||
		    rp->regs.rax != (uint64_t)seq + 1)
			p->bad++;
	}
	return NULL;
}

static void producer_start(struct producer *p, struct sim *s, uint32_t vcpu,
			   uint32_t first, unsigned int n)
{
	memset(p, 0, sizeof(*p));
	p->s = s;
	p->vcpu = vcpu;
	p->first = first;
	p->n = n;
	CHECK(!pthread_create(&p->thread, NULL, producer_fn, p));
}

/* The tool: wait, check the copy is whole, reply with RAX = seq + 1. */
static void serve(struct kvmi_vcpu *v, unsigned int n)
{
	struct kvmi_x86_regs regs;
	struct kvmi_event ev;
	unsigned int k;

	for (k = 0; k < n; k++) {
		CHECK_EQ(0, kvmi_vcpu_wait_event(v, &ev, -1));
		CHECK(ev.seq != 0);
		CHECK_EQ(KVMI_EVENT_HYPERCALL, ev.id);
		CHECK_EQ(kvmi_vcpu_index(v), ev.vcpu);
		CHECK_EQ(ev.seq, ev.regs.rax);
		CHECK_EQ(ev.seq, ev.regs.r15);
		CHECK_EQ(ev.seq, ev.regs.rip);
		memset(&regs, 0, sizeof(regs));
		regs.groups = KVMI_REGS_GPRS;
		regs.rax = (uint64_t)ev.seq + 1;
		CHECK_EQ(0, kvmi_vcpu_reply(v, KVMI_ACTION_CONTINUE,
					    KVMI_REPLY_SET_REGS, &regs, NULL));
	}
}

static void round_trips(uint32_t kmode, uint32_t tmode, uint64_t spin_ns,
			unsigned int n, struct sim *s)
{
	struct kvmi_vcpu *v;
	struct producer p;

	sim_default(s, 4);
	CHECK_EQ(0, sim_start(s, 1));
	s->v[0].mode = kmode;
	s->v[0].spin = 100;
	v = kvmi_dom_vcpu(s->dom, 0);
	CHECK(v);
	CHECK_EQ(0, kvmi_vcpu_set_tool_mode(v, tmode, spin_ns));
	/*
	 * Doorbells first: the kernel wakes a vCPU whose doorbells change
	 * while it sleeps, the simulated one does not.
	 */
	CHECK(kvmi_vcpu_own_doorbell(v) >= 0);
	producer_start(&p, s, 0, 1, n);
	serve(v, n);
	pthread_join(p.thread, NULL);
	CHECK_EQ(0, p.bad);
	CHECK_EQ(n, s->v[0].signals + s->v[0].suppressed);
}

/* Both sides spin: the tool's KVMI_TOOL_POLLING suppresses every signal. */
TEST(poll_mode_suppresses_every_notify)
{
	struct sim s;

	round_trips(KVMI_WAIT_POLL, KVMI_WAIT_POLL, 0, 20000, &s);
	CHECK_EQ(0, s.v[0].signals);
	CHECK_EQ(20000, s.v[0].suppressed);
	CHECK_EQ(0, s.v[0].sleeps);
	CHECK_EQ(0, kvmi_dom_close(s.dom));
	sim_free(&s);
}

/* Both sides sleep at once: every event signalled, no wakeup lost. */
TEST(block_mode_loses_no_wakeup)
{
	struct sim s;

	round_trips(KVMI_WAIT_BLOCK, KVMI_WAIT_BLOCK, 0, 5000, &s);
	CHECK_EQ(5000, s.v[0].signals);
	CHECK_EQ(0, s.v[0].suppressed);
	CHECK_EQ(0, kvmi_dom_close(s.dom));
	sim_free(&s);
}

/* Spin then sleep on both sides: any mix, and nothing lost. */
TEST(hybrid_mode_loses_no_wakeup)
{
	struct sim s;

	round_trips(KVMI_WAIT_HYBRID, KVMI_WAIT_HYBRID, 2000, 20000, &s);
	CHECK_EQ(0, kvmi_dom_close(s.dom));
	sim_free(&s);
}

/* A sleeping tool that never set POLLING sees every event signalled. */
TEST(tool_block_kernel_poll)
{
	struct sim s;

	round_trips(KVMI_WAIT_POLL, KVMI_WAIT_BLOCK, 0, 5000, &s);
	CHECK_EQ(5000, s.v[0].signals);
	CHECK_EQ(0, s.v[0].sleeps);
	CHECK_EQ(0, kvmi_dom_close(s.dom));
	sim_free(&s);
}

/* Event seqs run through 0xffffffff and on (0 skipped). */
TEST(event_seq_wraps_around)
{
	struct sim s;
	struct kvmi_vcpu *v;
	struct producer p;

	sim_default(&s, 1);
	CHECK_EQ(0, sim_start(&s, 1));
	v = kvmi_dom_vcpu(s.dom, 0);
	/* The tool's "last" starts where a long run would have left it. */
	v->last = 0xffffffe0;
	CHECK_EQ(0, kvmi_vcpu_set_tool_mode(v, KVMI_WAIT_HYBRID, 1000));
	CHECK(kvmi_vcpu_own_doorbell(v) >= 0);
	producer_start(&p, &s, 0, 0xfffffff0, 64);
	serve(v, 64);
	pthread_join(p.thread, NULL);
	CHECK_EQ(0, p.bad);
	CHECK_EQ(48, s.v[0].seq);	/* 16 up to 0xffffffff, then 1..48 */
	CHECK_EQ(0, kvmi_dom_close(s.dom));
	sim_free(&s);
}

struct cmd_producer {
	struct sim *s;
	struct kvmi_reply reply;
	bool replied;
	pthread_t thread;
};

/* One event, commands served while waiting, then the reply. */
static void *one_event_fn(void *arg)
{
	struct cmd_producer *p = arg;
	struct kvmi_reply *rp;

	sim_publish(p->s, 0, 7, KVMI_EVENT_HYPERCALL);
	rp = sim_wait_reply(p->s, 0);
	if (rp) {
		p->reply = *rp;
		p->replied = true;
	}
	return NULL;
}

static void one_event(struct sim *s, struct cmd_producer *p,
		      struct kvmi_vcpu **vp, struct kvmi_event *ev)
{
	sim_default(s, 1);
	CHECK_EQ(0, sim_start(s, 1));
	*vp = kvmi_dom_vcpu(s->dom, 0);
	CHECK(kvmi_vcpu_own_doorbell(*vp) >= 0);
	memset(p, 0, sizeof(*p));
	p->s = s;
	CHECK(!pthread_create(&p->thread, NULL, one_event_fn, p));
	CHECK_EQ(0, kvmi_vcpu_wait_event(*vp, ev, -1));
}

/* Command seqs wrap too, skipping 0; results come back whole. */
TEST(command_seq_wraps_around)
{
	struct cmd_producer p;
	struct kvmi_x86_regs regs;
	struct kvmi_event ev;
	struct kvmi_vcpu *v;
	struct sim s;
	uint64_t gpa;
	uint8_t mode;

	one_event(&s, &p, &v, &ev);
	v->cmd_seq = 0xfffffffe;
	CHECK_EQ(0, kvmi_vcpu_get_registers(v, &regs, &mode, NULL));
	CHECK_EQ(0xabcd0000ULL + 0xffffffff, regs.rax);
	CHECK_EQ(KVMI_X86_MODE_PROT64, mode);
	CHECK_EQ(0, kvmi_vcpu_get_registers(v, &regs, NULL, NULL));
	CHECK_EQ(0xabcd0001ULL, regs.rax);
	CHECK_EQ(0, kvmi_vcpu_translate_gva(v, 0x1234000, &gpa));
	CHECK_EQ(0x1234000ULL ^ 0xfff000, gpa);
	CHECK_EQ(0, kvmi_vcpu_reply(v, KVMI_ACTION_CONTINUE, 0, NULL, NULL));
	pthread_join(p.thread, NULL);
	CHECK(p.replied);
	CHECK_EQ(3, s.v[0].nr_cmd_seqs);
	CHECK_EQ(0xffffffff, s.v[0].cmd_seqs[0]);
	CHECK_EQ(1, s.v[0].cmd_seqs[1]);
	CHECK_EQ(2, s.v[0].cmd_seqs[2]);
	CHECK_EQ(0, kvmi_dom_close(s.dom));
	sim_free(&s);
}

/* Malformed command results are refused; a -errno passes through. */
TEST(malformed_command_results_rejected)
{
	struct cmd_producer p;
	struct kvmi_x86_regs regs;
	struct kvmi_event ev;
	struct kvmi_vcpu *v;
	struct sim s;

	one_event(&s, &p, &v, &ev);
	s.v[0].fake_result = SIM_FAKE_WRONG_ID;
	CHECK_EQ(-EBADMSG, kvmi_vcpu_get_registers(v, &regs, NULL, NULL));
	s.v[0].fake_result = SIM_FAKE_POSITIVE_ERROR;
	CHECK_EQ(-EBADMSG, kvmi_vcpu_get_registers(v, &regs, NULL, NULL));
	s.v[0].fake_result = SIM_FAKE_EPERM;
	CHECK_EQ(-EPERM, kvmi_vcpu_get_registers(v, &regs, NULL, NULL));
	/* Bad arguments never reach the slot. */
	CHECK_EQ(-EINVAL, kvmi_vcpu_command(v, KVMI_CMD_GET_LAYOUT, NULL, 0,
					    NULL, 0));
	CHECK_EQ(-EINVAL, kvmi_vcpu_command(v, 0x80, NULL, 0, NULL, 0));
	CHECK_EQ(-EINVAL, kvmi_vcpu_command(v, KVMI_CMD_GET_CPUID, NULL,
					    sizeof(union kvmi_cmd_args) + 1,
					    NULL, 0));
	CHECK_EQ(-EINVAL, kvmi_vcpu_get_registers(v, NULL, NULL, NULL));
	CHECK_EQ(3, s.v[0].commands);
	s.v[0].fake_result = 0;
	CHECK_EQ(0, kvmi_vcpu_get_registers(v, &regs, NULL, NULL));
	/* The event ends without serving the command: no hang. */
	s.v[0].fake_result = SIM_FAKE_NEVER;
	CHECK_EQ(-ESRCH, kvmi_vcpu_get_registers(v, &regs, NULL, NULL));
	pthread_join(p.thread, NULL);
	CHECK(!p.replied);
	kvmi_dom_close(s.dom);
	sim_free(&s);
}

/* Bad replies are refused before anything is written; nothing is lost. */
TEST(bad_reply_arguments_lose_nothing)
{
	struct cmd_producer p;
	struct kvmi_x86_regs regs = { .groups = KVMI_REGS_GPRS, .rax = 42 };
	struct kvmi_event ev;
	struct kvmi_vcpu *v;
	struct sim s;

	sim_default(&s, 1);
	CHECK_EQ(0, sim_start(&s, 1));
	v = kvmi_dom_vcpu(s.dom, 0);
	CHECK_EQ(-EINVAL, kvmi_vcpu_set_tool_mode(v, KVMI_WAIT_POLL, 5));
	CHECK_EQ(-EINVAL, kvmi_vcpu_set_tool_mode(v, KVMI_WAIT_HYBRID, 0));
	CHECK_EQ(-EINVAL, kvmi_vcpu_set_tool_mode(v, 3, 0));
	CHECK_EQ(-ENOENT, kvmi_vcpu_reply(v, 0, 0, NULL, NULL));
	CHECK_EQ(-ENOENT, kvmi_vcpu_get_registers(v, &regs, NULL, NULL));
	kvmi_dom_close(s.dom);
	sim_free(&s);

	one_event(&s, &p, &v, &ev);
	CHECK_EQ(-EINVAL, kvmi_vcpu_reply(v, 0, 1U << 2, NULL, NULL));
	CHECK_EQ(-EINVAL, kvmi_vcpu_reply(v, 8, 0, NULL, NULL));
	CHECK_EQ(-EINVAL, kvmi_vcpu_reply(v, 0, KVMI_REPLY_SET_REGS, NULL,
					  NULL));
	regs.groups = 0x80;
	CHECK_EQ(-EINVAL, kvmi_vcpu_reply(v, 0, KVMI_REPLY_SET_REGS, &regs,
					  NULL));
	CHECK_EQ(-EOPNOTSUPP, kvmi_vcpu_reply(v, 0, KVMI_REPLY_SINGLESTEP,
					      NULL, NULL));
	CHECK_EQ(0, sim_rp(&s, 0)->seq);	/* nothing published */
	regs.groups = KVMI_REGS_GPRS;
	CHECK_EQ(0, kvmi_vcpu_reply(v, KVMI_ACTION_CONTINUE,
				    KVMI_REPLY_SET_REGS, &regs, NULL));
	pthread_join(p.thread, NULL);
	CHECK(p.replied);
	CHECK_EQ(7, p.reply.seq);
	CHECK_EQ(42, p.reply.regs.rax);
	/* Answered once: a second reply has no event. */
	CHECK_EQ(-ENOENT, kvmi_vcpu_reply(v, 0, 0, NULL, NULL));
	CHECK_EQ(0, kvmi_dom_close(s.dom));
	sim_free(&s);
}

/* Records the kernel never publishes are reported, and still answerable. */
TEST(malformed_events_rejected)
{
	static const struct {
		uint16_t id;
		uint32_t vcpu;
		uint32_t groups;
	} bad[] = {
		{ 0, 0, KVMI_REGS_ALL },
		{ KVMI_EVENT_UNHOOK, 0, KVMI_REGS_ALL },
		{ KVMI_EVENT_PAGE_FAULT + 1, 0, KVMI_REGS_ALL },
		{ KVMI_EVENT_HYPERCALL, 1, KVMI_REGS_ALL },
		{ KVMI_EVENT_HYPERCALL, 0, 0x80 },
	};
	struct kvmi_event ev;
	struct kvmi_vcpu *v;
	struct sim s;
	unsigned int k;

	sim_default(&s, 2);
	CHECK_EQ(0, sim_start(&s, 2));
	v = kvmi_dom_vcpu(s.dom, 0);
	CHECK_EQ(-EAGAIN, kvmi_vcpu_pop_event(v, &ev));
	for (k = 0; k < ARRAY_SIZE(bad); k++) {
		sim_publish(&s, 0, 100 + k, KVMI_EVENT_HYPERCALL);
		sim_ev(&s, 0)->id = bad[k].id;
		sim_ev(&s, 0)->vcpu = bad[k].vcpu;
		sim_ev(&s, 0)->regs.groups = bad[k].groups;
		CHECK(kvmi_vcpu_peek_event(v));
		CHECK_EQ(-EBADMSG, kvmi_vcpu_pop_event(v, &ev));
		CHECK_EQ(100 + k, ev.seq);
		CHECK(!kvmi_vcpu_peek_event(v));
		CHECK_EQ(-EAGAIN, kvmi_vcpu_pop_event(v, &ev));
		CHECK_EQ(0, kvmi_vcpu_reply(v, KVMI_ACTION_CONTINUE, 0, NULL,
					    NULL));
		CHECK_EQ(100 + k, sim_rp(&s, 0)->seq);
		CHECK_EQ(bad[k].id, sim_rp(&s, 0)->event);
		store_release(&sim_vs(&s, 0)->done_seq, 100 + k);
	}
	/* Slot seq 0 (being rewritten, K0) is no event. */
	WRITE_ONCE(sim_ev(&s, 0)->seq, 0);
	CHECK(!kvmi_vcpu_peek_event(v));
	CHECK_EQ(-EAGAIN, kvmi_vcpu_pop_event(v, &ev));
	CHECK_EQ(0, kvmi_dom_close(s.dom));
	sim_free(&s);
}

struct rewriter {
	struct sim *s;
	volatile bool stop;
	pthread_t thread;
};

/* Rewrites the slot continuously, seqlock-style (K0, K1). */
static void *rewriter_fn(void *arg)
{
	struct rewriter *w = arg;
	uint32_t seq = 1;

	while (!w->stop) {
		sim_publish(w->s, 0, seq, KVMI_EVENT_HYPERCALL);
		if (!++seq)
			seq = 1;
	}
	return NULL;
}

/* A copy overtaken by a rewrite (K0) is retried: every copy is whole. */
TEST(pop_never_returns_a_torn_copy)
{
	struct kvmi_event ev;
	struct kvmi_vcpu *v;
	struct rewriter w;
	struct sim s;
	unsigned long k, got = 0;

	sim_default(&s, 1);
	CHECK_EQ(0, sim_start(&s, 1));
	v = kvmi_dom_vcpu(s.dom, 0);
	/* The tool spins: the rewriter rings no doorbell. */
	WRITE_ONCE(sim_ts(&s, 0)->flags, KVMI_TOOL_POLLING);
	memset(&w, 0, sizeof(w));
	w.s = &s;
	CHECK(!pthread_create(&w.thread, NULL, rewriter_fn, &w));
	for (k = 0; got < 20000; k++) {
		if (kvmi_vcpu_pop_event(v, &ev))
			continue;
		got++;
		CHECK_EQ(ev.seq, ev.regs.rax);
		CHECK_EQ(ev.seq, ev.regs.r15);
		CHECK_EQ(ev.seq, ev.regs.rip);
		CHECK_EQ(ev.seq, ev.timestamp_ns);
		v->cur = 0;
	}
	w.stop = true;
	pthread_join(w.thread, NULL);
	CHECK(got > 0);
	kvmi_dom_close(s.dom);
	sim_free(&s);
}

/* Four vCPUs, four tool threads, no lock: each sees only its own events. */
struct worker {
	struct kvmi_vcpu *v;
	unsigned int n;
	pthread_t thread;
};

static void *worker_fn(void *arg)
{
	struct worker *w = arg;

	serve(w->v, w->n);
	return NULL;
}

TEST(vcpus_on_threads_without_lock)
{
	struct producer p[4];
	struct worker w[4];
	struct sim s;
	uint32_t i;

	sim_default(&s, 4);
	CHECK_EQ(0, sim_start(&s, 4));
	for (i = 0; i < 4; i++) {
		s.v[i].mode = i & 1 ? KVMI_WAIT_BLOCK : KVMI_WAIT_HYBRID;
		w[i].v = kvmi_dom_vcpu(s.dom, i);
		w[i].n = 3000;
		CHECK(kvmi_vcpu_own_doorbell(w[i].v) >= 0);
		CHECK_EQ(0, kvmi_vcpu_set_tool_mode(w[i].v, i & 2 ?
			 KVMI_WAIT_BLOCK : KVMI_WAIT_HYBRID, i & 2 ? 0 : 500));
		CHECK(!pthread_create(&w[i].thread, NULL, worker_fn, &w[i]));
	}
	for (i = 0; i < 4; i++)
		producer_start(&p[i], &s, i, 1 + i * 1000000, 3000);
	for (i = 0; i < 4; i++) {
		pthread_join(p[i].thread, NULL);
		pthread_join(w[i].thread, NULL);
		CHECK_EQ(0, p[i].bad);
	}
	CHECK_EQ(0, kvmi_dom_close(s.dom));
	sim_free(&s);
}

/* vCPUs created later: no handle before, one after (same mappings). */
TEST(vcpus_created_later)
{
	struct sim s;

	sim_default(&s, 8);
	CHECK_EQ(0, sim_start(&s, 1));
	CHECK_EQ(8, kvmi_dom_max_vcpus(s.dom));
	CHECK_EQ(1, kvmi_dom_nr_vcpus(s.dom));
	CHECK(kvmi_dom_vcpu(s.dom, 0));
	CHECK(!kvmi_dom_vcpu(s.dom, 1));
	store_release(&s.vm->nr_vcpus, 3);
	CHECK(kvmi_dom_vcpu(s.dom, 2));
	CHECK(!kvmi_dom_vcpu(s.dom, 3));
	CHECK_EQ(2, kvmi_vcpu_index(kvmi_dom_vcpu(s.dom, 2)));
	CHECK(kvmi_vcpu_dom(kvmi_dom_vcpu(s.dom, 2)) == s.dom);
	/* A kernel reporting more than max_vcpus is capped. */
	store_release(&s.vm->nr_vcpus, 100);
	CHECK_EQ(8, kvmi_dom_nr_vcpus(s.dom));
	CHECK(!kvmi_dom_vcpu(s.dom, 8));
	CHECK_EQ(0, kvmi_dom_close(s.dom));
	sim_free(&s);
}

/* close answers what is pending, with each event's default action. */
TEST(close_answers_pending_events)
{
	struct kvmi_event ev;
	struct sim s;

	sim_default(&s, 4);
	CHECK_EQ(0, sim_start(&s, 3));
	sim_publish(&s, 0, 5, KVMI_EVENT_HYPERCALL);	/* popped */
	sim_publish(&s, 1, 6, KVMI_EVENT_BREAKPOINT);	/* not popped */
	sim_publish(&s, 2, 9, KVMI_EVENT_HYPERCALL);	/* already done */
	store_release(&sim_vs(&s, 2)->done_seq, 9);
	CHECK_EQ(0, kvmi_vcpu_pop_event(kvmi_dom_vcpu(s.dom, 0), &ev));
	CHECK_EQ(0, kvmi_dom_close(s.dom));
	CHECK_EQ(5, sim_rp(&s, 0)->seq);
	CHECK_EQ(KVMI_ACTION_CONTINUE, sim_rp(&s, 0)->action);
	CHECK_EQ(6, sim_rp(&s, 1)->seq);
	CHECK_EQ(KVMI_EVENT_BREAKPOINT, sim_rp(&s, 1)->event);
	CHECK_EQ(KVMI_ACTION_ALLOW, sim_rp(&s, 1)->action);
	CHECK_EQ(0, sim_rp(&s, 2)->seq);
	sim_free(&s);
}

/* Once detached, waits end with -ENODEV instead of hanging. */
TEST(detached_ends_waits)
{
	struct kvmi_event ev;
	struct kvmi_vcpu *v;
	struct sim s;

	sim_default(&s, 1);
	CHECK_EQ(0, sim_start(&s, 1));
	v = kvmi_dom_vcpu(s.dom, 0);
	__atomic_fetch_or(&s.vm->flags, KVMI_VM_DETACHED, __ATOMIC_RELEASE);
	CHECK_EQ(-ENODEV, kvmi_vcpu_pop_event(v, &ev));
	CHECK_EQ(0, kvmi_vcpu_set_tool_mode(v, KVMI_WAIT_POLL, 0));
	CHECK_EQ(-ENODEV, kvmi_vcpu_wait_event(v, &ev, -1));
	CHECK_EQ(KVMI_VM_DETACHED, kvmi_dom_state_flags(s.dom));
	CHECK_EQ(0, kvmi_dom_close(s.dom));
	sim_free(&s);
}

/* done_seq, done_action and done_reason, read as one. */
TEST(done_reports_how_the_event_ended)
{
	struct kvmi_done d;
	struct sim s;

	sim_default(&s, 1);
	CHECK_EQ(0, sim_start(&s, 1));
	sim_vs(&s, 0)->done_action = KVMI_ACTION_CRASH;
	sim_vs(&s, 0)->done_reason = KVMI_DONE_BAD_REPLY;
	store_release(&sim_vs(&s, 0)->done_seq, 77);
	CHECK_EQ(0, kvmi_vcpu_done(kvmi_dom_vcpu(s.dom, 0), &d));
	CHECK_EQ(77, d.seq);
	CHECK_EQ(KVMI_ACTION_CRASH, d.action);
	CHECK_EQ(KVMI_DONE_BAD_REPLY, d.reason);
	CHECK_EQ(-EINVAL, kvmi_vcpu_done(kvmi_dom_vcpu(s.dom, 0), NULL));
	CHECK_EQ(0, kvmi_dom_close(s.dom));
	sim_free(&s);
}

/* A layout or version this library can't use is refused at open. */
TEST(bad_layouts_refused)
{
	struct sim s;
	struct kvmi_dom *dom;
	int k;

	for (k = 0; k < 11; k++) {
		sim_default(&s, 2);
		switch (k) {
		case 0:
			s.ver.version = 2;
			break;
		case 1:
			s.ver.features = 0;
			break;
		case 2:
			s.ver.event_size = sizeof(struct kvmi_event) - 8;
			break;
		case 3:
			s.lo.kernel_off.event = s.lo.kernel_size - 8;
			break;
		case 4:
			s.lo.tool_off.reply = 0x41;
			break;
		case 5:
			s.lo.kernel_offset = 0x10000100;
			break;
		case 6:
			s.lo.max_vcpus = 0;
			break;
		case 7:
			s.lo.page_size = 3000;
			break;
		case 8:
			s.lo.kernel_size = s.lo.kernel_stride + 4096;
			break;
		case 9:
			s.lo.tool_off.data_size = 0x5000;
			break;
		case 10:
			s.lo.kernel_stride = 1ULL << 62;
			break;
		}
		CHECK_EQ(k < 2 ? -EPROTONOSUPPORT : -EPROTO,
			 kvmi__dom_simulated(&s.ver, &s.lo, NULL, NULL, NULL,
					     &dom));
	}
}
