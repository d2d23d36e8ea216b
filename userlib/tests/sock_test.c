// SPDX-License-Identifier: LGPL-2.1-or-later OR MIT
/*
 * The socket transport of libkvmi (kvmi.rst, section 22) against a
 * simulated kernel on the other end of a socketpair: events of several
 * vCPUs interleaved, replies and commands checked byte for byte, results,
 * the end of file in the middle of a message, malformed headers, messages
 * cut in pieces, the dispatcher, threads.
 */
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <sys/socket.h>

#include "harness.h"
#include "sim.h"

#define HDR	sizeof(struct kvmi_msg_hdr)

struct ksim {
	struct sim s;
	int k;		/* the kernel's end */
};

static void ks_start(struct ksim *ks, uint32_t max, uint32_t nr)
{
	struct sim *s = &ks->s;
	int sv[2];
	uint32_t i;

	sim_default(s, max);
	s->ver.features |= KVMI_FEATURE_SOCKET;
	CHECK_EQ(0, socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv));
	s->vm = aligned_alloc(SIM_PAGE, SIM_PAGE);
	s->kernel = aligned_alloc(SIM_PAGE, max * SIM_KSTRIDE);
	s->tool = aligned_alloc(SIM_PAGE, max * SIM_TSTRIDE);
	memset(s->vm, 0, SIM_PAGE);
	memset(s->kernel, 0, max * SIM_KSTRIDE);
	memset(s->tool, 0, max * SIM_TSTRIDE);
	s->vm->max_vcpus = max;
	s->vm->nr_vcpus = nr;
	for (i = 0; i < max; i++)
		((struct kvmi_vcpu_state *)(s->kernel + i * SIM_KSTRIDE))->vcpu = i;
	CHECK_EQ(0, kvmi__dom_simulated_socket(&s->ver, &s->lo, s->vm,
					       s->kernel, s->tool, sv[0],
					       &s->dom));
	ks->k = sv[1];
}

static void ks_write(int k, const void *p, size_t n)
{
	CHECK_EQ((ssize_t)n, write(k, p, n));
}

static void ks_send(int k, uint16_t id, uint32_t seq, uint32_t vcpu,
		    const void *payload, uint32_t size)
{
	uint8_t buf[HDR + KVMI_MSG_MAX_SIZE];
	struct kvmi_msg_hdr h = {
		.id = id, .size = size, .seq = seq, .vcpu = vcpu,
	};

	memcpy(buf, &h, HDR);
	if (size)
		memcpy(buf + HDR, payload, size);
	ks_write(k, buf, HDR + size);
}

static void ks_event_rec(struct kvmi_event *ev, uint32_t vcpu, uint32_t seq,
			 uint16_t id)
{
	memset(ev, 0, sizeof(*ev));
	ev->seq = seq;
	ev->id = id;
	ev->vcpu = vcpu;
	ev->regs.groups = KVMI_REGS_ALL;
	ev->regs.rax = 0x1000 + seq;
}

static void ks_event(int k, uint32_t vcpu, uint32_t seq, uint16_t id)
{
	struct kvmi_event ev;

	ks_event_rec(&ev, vcpu, seq, id);
	ks_send(k, KVMI_MSG_EVENT, seq, vcpu, &ev, sizeof(ev));
}

static void ks_read(int k, void *p, size_t n)
{
	size_t got = 0;
	ssize_t r;

	while (got < n) {
		r = read(k, (uint8_t *)p + got, n - got);
		CHECK(r > 0);
		got += r;
	}
}

/* The next message from the tool; its header is checked by the caller. */
static void ks_recv(int k, struct kvmi_msg_hdr *h, void *payload,
		    size_t max)
{
	ks_read(k, h, HDR);
	CHECK(h->size <= max);
	ks_read(k, payload, h->size);
}

/* The reply the library must write for this answer, byte for byte. */
static void expect_reply(int k, uint32_t vcpu, uint32_t seq, uint16_t event,
			 uint8_t action, uint32_t flags,
			 const struct kvmi_x86_regs *regs,
			 const union kvmi_reply_data *data)
{
	struct kvmi_reply want, got;
	struct kvmi_msg_hdr h;

	memset(&want, 0, sizeof(want));
	want.seq = seq;
	want.event = event;
	want.action = action;
	want.flags = flags;
	if (regs)
		want.regs = *regs;
	if (data)
		want.data = *data;
	ks_recv(k, &h, &got, sizeof(got));
	CHECK_EQ(KVMI_MSG_REPLY, h.id);
	CHECK_EQ(0, h.flags);
	CHECK_EQ(sizeof(got), h.size);
	CHECK_EQ(seq, h.seq);
	CHECK_EQ(vcpu, h.vcpu);
	CHECK(!memcmp(&want, &got, sizeof(got)));
}

/* Nothing more from the tool: the socket was shut down or closed. */
static void expect_eof(int k)
{
	char c;

	CHECK_EQ(0, read(k, &c, 1));
}

static void ks_end(struct ksim *ks)
{
	close(ks->k);
	kvmi_dom_close(ks->s.dom);
	sim_free(&ks->s);
}

TEST(transport_and_what_the_socket_cannot_do)
{
	struct kvmi_dom *dom;
	struct ksim ks;
	struct sim s;

	ks_start(&ks, 2, 2);
	CHECK_EQ(KVMI_TRANSPORT_SOCKET, kvmi_dom_transport(ks.s.dom));
	CHECK_EQ(-EOPNOTSUPP,
		 kvmi_vcpu_own_doorbell(kvmi_dom_vcpu(ks.s.dom, 0)));
	CHECK_EQ(-EOPNOTSUPP, kvmi_dom_set_doorbells(ks.s.dom, 0,
						     KVMI_DOORBELL_NOTIFY,
						     0, -1));
	CHECK_EQ(-EOPNOTSUPP, kvmi_vcpu_set_tool_mode(kvmi_dom_vcpu(ks.s.dom, 0),
						      KVMI_WAIT_POLL, 0));
	CHECK_EQ(0, kvmi_vcpu_set_tool_mode(kvmi_dom_vcpu(ks.s.dom, 0),
					    KVMI_WAIT_BLOCK, 0));
	CHECK_EQ(0, kvmi_vcpu_set_tool_mode(kvmi_dom_vcpu(ks.s.dom, 0),
					    KVMI_WAIT_HYBRID, 1000));
	ks_end(&ks);

	sim_default(&s, 1);
	CHECK_EQ(0, sim_start(&s, 1));
	CHECK_EQ(KVMI_TRANSPORT_RING, kvmi_dom_transport(s.dom));
	/* A kernel without the feature: no socket dom. */
	CHECK_EQ(-EPROTONOSUPPORT,
		 kvmi__dom_simulated_socket(&s.ver, &s.lo, s.vm, s.kernel,
					    s.tool, 0, &dom));
	kvmi_dom_close(s.dom);
	sim_free(&s);
}

/* The opening calls refuse what they can without a kernel. */
TEST(opening_arguments)
{
	struct kvmi_dom *dom;
	int sv[2];

	CHECK_EQ(-EINVAL, kvmi_dom_open_socket(-1, NULL));
	CHECK_EQ(-EINVAL, kvmi_dom_from_socket(-1, 0, &dom));
	CHECK_EQ(-EINVAL, kvmi_dom_from_socket(0, -1, &dom));
	CHECK_EQ(-EINVAL, kvmi_dom_from_socket(0, 0, NULL));
	CHECK_EQ(-EINVAL, kvmi_dom_attach_pid_socket(getpid(), NULL));
	/* This process holds no VM fd. */
	CHECK_EQ(-ENOENT, kvmi_dom_attach_pid_socket(getpid(), &dom));
	CHECK_EQ(-EINVAL, kvmi_dom_open_guest_socket(NULL, 1, &dom));
	/* Not a VM fd: the ioctl fails, both ends of the pair are closed. */
	CHECK_EQ(0, socketpair(AF_UNIX, SOCK_STREAM, 0, sv));
	CHECK(kvmi_dom_open_socket(sv[0], &dom) < 0);
	CHECK(kvmi_vm_open_socket(sv[0], sv[1]) < 0);
	/* Not an introspection fd: refused, both fds still the caller's. */
	CHECK(kvmi_dom_from_socket(sv[0], sv[1], &dom) < 0);
	CHECK_EQ(0, fcntl(sv[0], F_GETFD) < 0);
	CHECK_EQ(0, fcntl(sv[1], F_GETFD) < 0);
	close(sv[0]);
	close(sv[1]);
}

TEST(events_of_two_vcpus_interleaved)
{
	struct kvmi_x86_regs regs;
	union kvmi_reply_data data;
	struct kvmi_vcpu *v0, *v1;
	struct kvmi_event ev;
	struct ksim ks;

	ks_start(&ks, 4, 2);
	v0 = kvmi_dom_vcpu(ks.s.dom, 0);
	v1 = kvmi_dom_vcpu(ks.s.dom, 1);
	CHECK_EQ(-EAGAIN, kvmi_vcpu_pop_event(v0, &ev));
	CHECK(!kvmi_vcpu_peek_event(v0));
	ks_event(ks.k, 1, 5, KVMI_EVENT_HYPERCALL);
	ks_event(ks.k, 0, 9, KVMI_EVENT_CR);
	/* vCPU 1's message comes first: kept for vCPU 1. */
	CHECK_EQ(0, kvmi_vcpu_wait_event(v0, &ev, -1));
	CHECK_EQ(9, ev.seq);
	CHECK_EQ(KVMI_EVENT_CR, ev.id);
	CHECK_EQ(0, ev.vcpu);
	CHECK_EQ(0x1000 + 9, ev.regs.rax);
	CHECK(kvmi_vcpu_peek_event(v1));
	CHECK_EQ(5, kvmi_vcpu_peek_event(v1)->seq);
	CHECK_EQ(0, kvmi_vcpu_pop_event(v1, &ev));
	CHECK_EQ(5, ev.seq);
	CHECK_EQ(KVMI_EVENT_HYPERCALL, ev.id);
	CHECK_EQ(1, ev.vcpu);
	CHECK_EQ(-EAGAIN, kvmi_vcpu_pop_event(v1, &ev));
	CHECK_EQ(-ETIMEDOUT, kvmi_vcpu_wait_event(v1, &ev, 0));
	CHECK_EQ(-ETIMEDOUT, kvmi_vcpu_wait_event(v1, &ev, 20));

	/* Replies, byte for byte; vCPU 1 first. */
	CHECK_EQ(0, kvmi_vcpu_reply(v1, KVMI_ACTION_CONTINUE, 0, NULL, NULL));
	expect_reply(ks.k, 1, 5, KVMI_EVENT_HYPERCALL, KVMI_ACTION_CONTINUE, 0,
		     NULL, NULL);
	memset(&regs, 0, sizeof(regs));
	regs.groups = KVMI_REGS_GPRS;
	regs.rbx = 0x1234;
	memset(&data, 0, sizeof(data));
	data.cr.new_value = 0x80000011;
	/* Bad arguments lose nothing: the event stays pending. */
	CHECK_EQ(-EINVAL, kvmi_vcpu_reply(v0, KVMI_ACTION_CONTINUE,
					  KVMI_REPLY_SET_REGS, NULL, NULL));
	CHECK_EQ(0, kvmi_vcpu_reply(v0, KVMI_ACTION_CONTINUE,
				    KVMI_REPLY_SET_REGS, &regs, &data));
	expect_reply(ks.k, 0, 9, KVMI_EVENT_CR, KVMI_ACTION_CONTINUE,
		     KVMI_REPLY_SET_REGS, &regs, &data);
	CHECK_EQ(-ENOENT, kvmi_vcpu_reply(v0, KVMI_ACTION_CONTINUE, 0, NULL,
					  NULL));
	ks_end(&ks);
}

struct cmd_play {
	struct ksim *ks;
	int32_t error;
};

/* The kernel's side of one command on vCPU 0, with an event for vCPU 1. */
static void *play_command(void *arg)
{
	struct cmd_play *p = arg;
	struct kvmi_cmd_get_registers_result out;
	struct kvmi_cmd_result res;
	struct kvmi_msg_hdr h;
	struct kvmi_cmd cmd, want;

	ks_recv(p->ks->k, &h, &cmd, sizeof(cmd));
	CHECK_EQ(KVMI_MSG_VCPU_COMMAND, h.id);
	CHECK_EQ(0, h.flags);
	CHECK_EQ(sizeof(cmd), h.size);
	CHECK_EQ(0, h.vcpu);
	CHECK(h.seq);
	memset(&want, 0, sizeof(want));
	want.seq = h.seq;
	want.id = KVMI_CMD_GET_REGISTERS;
	want.event = 1;		/* vCPU 0's event */
	CHECK(!memcmp(&want, &cmd, sizeof(cmd)));

	/* Another vCPU's event before the result. */
	ks_event(p->ks->k, 1, 77, KVMI_EVENT_HYPERCALL);

	memset(&res, 0, sizeof(res));
	res.seq = h.seq;
	res.id = KVMI_CMD_GET_REGISTERS;
	res.error = p->error;
	memset(&out, 0, sizeof(out));
	out.regs.groups = KVMI_REGS_ALL;
	out.regs.rcx = 0xabcdef;
	out.mode = 8;
	out.cpl = 3;
	memcpy(&res.result, &out, sizeof(out));
	ks_send(p->ks->k, KVMI_MSG_VCPU_RESULT, h.seq, 0, &res, sizeof(res));
	return NULL;
}

TEST(commands_and_results)
{
	struct kvmi_x86_regs regs;
	struct cmd_play p;
	struct kvmi_event ev;
	struct kvmi_vcpu *v0;
	uint8_t mode, cpl;
	struct ksim ks;
	pthread_t t;

	ks_start(&ks, 2, 2);
	v0 = kvmi_dom_vcpu(ks.s.dom, 0);
	CHECK_EQ(-ENOENT, kvmi_vcpu_get_registers(v0, &regs, NULL, NULL));
	ks_event(ks.k, 0, 1, KVMI_EVENT_HYPERCALL);
	CHECK_EQ(0, kvmi_vcpu_wait_event(v0, &ev, -1));

	p.ks = &ks;
	p.error = 0;
	pthread_create(&t, NULL, play_command, &p);
	CHECK_EQ(0, kvmi_vcpu_get_registers(v0, &regs, &mode, &cpl));
	pthread_join(t, NULL);
	CHECK_EQ(0xabcdef, regs.rcx);
	CHECK_EQ(8, mode);
	CHECK_EQ(3, cpl);
	/* The event read while waiting for the result is vCPU 1's. */
	CHECK_EQ(0, kvmi_vcpu_pop_event(kvmi_dom_vcpu(ks.s.dom, 1), &ev));
	CHECK_EQ(77, ev.seq);

	p.error = -EINVAL;
	pthread_create(&t, NULL, play_command, &p);
	CHECK_EQ(-EINVAL, kvmi_vcpu_get_registers(v0, &regs, NULL, NULL));
	pthread_join(t, NULL);
	ks_end(&ks);
}

static int never_called(struct kvmi_vcpu *v, const struct kvmi_event *ev,
			void *arg)
{
	CHECK(0);
	return 0;
}

TEST(eof_in_the_middle_of_a_message)
{
	struct kvmi_msg_hdr h = {
		.id = KVMI_MSG_EVENT, .size = sizeof(struct kvmi_event),
		.seq = 3, .vcpu = 1,
	};
	struct kvmi_event ev;
	struct ksim ks;

	ks_start(&ks, 2, 2);
	ks_event(ks.k, 0, 2, KVMI_EVENT_HYPERCALL);
	ks_write(ks.k, &h, HDR);
	ks_write(ks.k, &ev, 100);	/* the rest never comes */
	close(ks.k);
	/* The whole message before the end is still the tool's. */
	CHECK_EQ(0, kvmi_vcpu_wait_event(kvmi_dom_vcpu(ks.s.dom, 0), &ev, -1));
	CHECK_EQ(2, ev.seq);
	CHECK_EQ(-ENODEV, kvmi_vcpu_wait_event(kvmi_dom_vcpu(ks.s.dom, 1),
					       &ev, -1));
	CHECK_EQ(-ENODEV, kvmi_vcpu_pop_event(kvmi_dom_vcpu(ks.s.dom, 0), &ev));
	CHECK_EQ(-ENODEV, kvmi_vcpu_reply(kvmi_dom_vcpu(ks.s.dom, 0),
					  KVMI_ACTION_CONTINUE, 0, NULL, NULL));
	CHECK_EQ(-ENODEV, kvmi_dom_dispatch(ks.s.dom, never_called, NULL));
	kvmi_dom_close(ks.s.dom);
	sim_free(&ks.s);
}

/* Messages the kernel never sends: each ends the introspection. */
TEST(malformed_kernel_messages_end_the_introspection)
{
	static const uint8_t longer[sizeof(struct kvmi_event) + 8];
	struct kvmi_event evrec;
	struct kvmi_cmd_result res;
	struct kvmi_reply rp;
	struct {
		const char *what;
		struct kvmi_msg_hdr h;
		const void *payload;
	} bad[] = {
		{ "flags", { KVMI_MSG_EVENT, 1, sizeof(evrec), 1, 0 }, &evrec },
		{ "short size", { KVMI_MSG_EVENT, 0, sizeof(evrec) - 8, 1, 0 },
		  &evrec },
		{ "long size", { KVMI_MSG_EVENT, 0, sizeof(evrec) + 8, 1, 0 },
		  longer },
		{ "huge size", { KVMI_MSG_EVENT, 0, 1 << 20, 1, 0 }, NULL },
		{ "unknown id", { 99, 0, 0, 0, 0 }, NULL },
		{ "id 0", { 0, 0, 0, 0, 0 }, NULL },
		{ "a tool's message", { KVMI_MSG_REPLY, 0, sizeof(rp), 1, 0 },
		  &rp },
		{ "VM result never asked", { KVMI_MSG_VM_RESULT, 0, 8, 0, 0 },
		  &rp },
		{ "no such vCPU", { KVMI_MSG_EVENT, 0, sizeof(evrec), 1, 2 },
		  &evrec },
		{ "event seq 0", { KVMI_MSG_EVENT, 0, sizeof(evrec), 0, 0 },
		  &evrec },
		/* evrec.seq is 0 */
		{ "header and record seq differ",
		  { KVMI_MSG_EVENT, 0, sizeof(evrec), 1, 0 }, &evrec },
		{ "UNHOOK with payload", { KVMI_MSG_UNHOOK, 0, 8, 0, 0 }, &rp },
		{ "UNHOOK with vCPU", { KVMI_MSG_UNHOOK, 0, 0, 0, 1 }, NULL },
		{ "result nobody waits for",
		  { KVMI_MSG_VCPU_RESULT, 0, sizeof(res), 1, 0 }, &res },
	};
	struct kvmi_event ev;
	unsigned int i;
	struct ksim ks;

	memset(&evrec, 0, sizeof(evrec));
	memset(&res, 0, sizeof(res));
	memset(&rp, 0, sizeof(rp));
	for (i = 0; i < ARRAY_SIZE(bad); i++) {
		fprintf(stderr, "# %s\n", bad[i].what);
		ks_start(&ks, 2, 2);
		ks_write(ks.k, &bad[i].h, HDR);
		if (bad[i].payload)
			ks_write(ks.k, bad[i].payload, bad[i].h.size);
		CHECK_EQ(-ENODEV, kvmi_vcpu_wait_event(kvmi_dom_vcpu(ks.s.dom, 0),
						       &ev, -1));
		CHECK_EQ(-ENODEV, kvmi_vcpu_wait_event(kvmi_dom_vcpu(ks.s.dom, 1),
						       &ev, 0));
		/* The socket is shut down: the kernel sees the end. */
		expect_eof(ks.k);
		ks_end(&ks);
	}

	/* A second event for a vCPU that has not answered the first. */
	ks_start(&ks, 2, 2);
	ks_event(ks.k, 0, 1, KVMI_EVENT_HYPERCALL);
	ks_event(ks.k, 0, 2, KVMI_EVENT_HYPERCALL);
	CHECK_EQ(-ENODEV, kvmi_vcpu_wait_event(kvmi_dom_vcpu(ks.s.dom, 1),
					       &ev, -1));
	expect_eof(ks.k);
	ks_end(&ks);

	/* A result with another seq than the command's. */
	ks_start(&ks, 2, 2);
	ks_event(ks.k, 0, 1, KVMI_EVENT_HYPERCALL);
	CHECK_EQ(0, kvmi_vcpu_wait_event(kvmi_dom_vcpu(ks.s.dom, 0), &ev, -1));
	res.seq = 1000;
	res.id = KVMI_CMD_GET_XCR;
	ks_send(ks.k, KVMI_MSG_VCPU_RESULT, 1000, 0, &res, sizeof(res));
	{
		uint64_t x;

		CHECK_EQ(-ENODEV, kvmi_vcpu_get_xcr(kvmi_dom_vcpu(ks.s.dom, 0),
						    0, &x));
	}
	ks_end(&ks);
}

/* Bad record contents in a well-formed message: -EBADMSG, answerable. */
TEST(bad_event_record_is_popped_and_answered)
{
	struct kvmi_event ev;
	struct ksim ks;

	ks_start(&ks, 2, 2);
	ks_event_rec(&ev, 1, 4, 200);	/* unknown id, another vCPU */
	ks_send(ks.k, KVMI_MSG_EVENT, 4, 0, &ev, sizeof(ev));
	CHECK_EQ(-EBADMSG, kvmi_vcpu_wait_event(kvmi_dom_vcpu(ks.s.dom, 0),
						&ev, -1));
	CHECK_EQ(0, kvmi_vcpu_reply(kvmi_dom_vcpu(ks.s.dom, 0),
				    KVMI_ACTION_CONTINUE, 0, NULL, NULL));
	expect_reply(ks.k, 0, 4, 200, KVMI_ACTION_CONTINUE, 0, NULL, NULL);
	ks_end(&ks);
}

/*
 * An event that ended without the reply (a deadline): the reply is not
 * sent; the kernel would ignore it, on either transport.
 */
TEST(reply_to_an_ended_event_is_not_sent)
{
	struct kvmi_done done;
	struct kvmi_event ev;
	struct ksim ks;
	struct kvmi_vcpu *v;

	ks_start(&ks, 2, 2);
	v = kvmi_dom_vcpu(ks.s.dom, 1);
	ks_event(ks.k, 1, 7, KVMI_EVENT_HYPERCALL);
	CHECK_EQ(0, kvmi_vcpu_wait_event(v, &ev, -1));
	sim_vs(&ks.s, 1)->done_action = KVMI_ACTION_CONTINUE;
	sim_vs(&ks.s, 1)->done_reason = KVMI_DONE_DEADLINE;
	store_release(&sim_vs(&ks.s, 1)->done_seq, 7);
	CHECK_EQ(0, kvmi_vcpu_reply(v, KVMI_ACTION_CONTINUE, 0, NULL, NULL));
	CHECK_EQ(-ENOENT, kvmi_vcpu_reply(v, KVMI_ACTION_CONTINUE, 0, NULL,
					  NULL));
	CHECK_EQ(0, kvmi_vcpu_done(v, &done));
	CHECK_EQ(7, done.seq);
	CHECK_EQ(KVMI_DONE_DEADLINE, done.reason);
	/* The next event is answered as usual; nothing came before. */
	ks_event(ks.k, 1, 8, KVMI_EVENT_HYPERCALL);
	CHECK_EQ(0, kvmi_vcpu_wait_event(v, &ev, -1));
	CHECK_EQ(0, kvmi_vcpu_reply(v, KVMI_ACTION_CONTINUE, 0, NULL, NULL));
	expect_reply(ks.k, 1, 8, KVMI_EVENT_HYPERCALL, KVMI_ACTION_CONTINUE,
		     0, NULL, NULL);
	ks_end(&ks);
}

/*
 * An event that ended unanswered before the tool popped it (a deadline):
 * the vCPU's next event replaces it, as in the ring's slot.
 */
TEST(next_event_replaces_one_that_ended)
{
	struct kvmi_event ev;
	struct ksim ks;
	struct kvmi_vcpu *v;

	ks_start(&ks, 2, 2);
	v = kvmi_dom_vcpu(ks.s.dom, 1);
	ks_event(ks.k, 1, 20, KVMI_EVENT_HYPERCALL);
	/* Read and kept for vCPU 1 while vCPU 0 looks. */
	CHECK_EQ(-ETIMEDOUT, kvmi_vcpu_wait_event(kvmi_dom_vcpu(ks.s.dom, 0),
						  &ev, 50));
	store_release(&sim_vs(&ks.s, 1)->done_seq, 20);
	ks_event(ks.k, 1, 21, KVMI_EVENT_BREAKPOINT);
	CHECK_EQ(-ETIMEDOUT, kvmi_vcpu_wait_event(kvmi_dom_vcpu(ks.s.dom, 0),
						  &ev, 50));
	CHECK_EQ(0, kvmi_vcpu_wait_event(v, &ev, -1));
	CHECK_EQ(21, ev.seq);
	CHECK_EQ(KVMI_EVENT_BREAKPOINT, ev.id);
	CHECK_EQ(0, kvmi_vcpu_reply(v, KVMI_ACTION_CONTINUE, 0, NULL, NULL));
	expect_reply(ks.k, 1, 21, KVMI_EVENT_BREAKPOINT, KVMI_ACTION_CONTINUE,
		     0, NULL, NULL);
	CHECK_EQ(-ETIMEDOUT, kvmi_vcpu_wait_event(v, &ev, 0));
	ks_end(&ks);
}

/* The kernel writes its messages in pieces, or several in one write. */
static void *dribble(void *arg)
{
	struct ksim *ks = arg;
	uint8_t buf[2 * (HDR + sizeof(struct kvmi_event))];
	struct kvmi_msg_hdr h = {
		.id = KVMI_MSG_EVENT, .size = sizeof(struct kvmi_event),
	};
	struct kvmi_event ev;
	size_t i, n = HDR + sizeof(ev);

	h.seq = 10;
	h.vcpu = 0;
	ks_event_rec(&ev, 0, 10, KVMI_EVENT_HYPERCALL);
	memcpy(buf, &h, HDR);
	memcpy(buf + HDR, &ev, sizeof(ev));
	for (i = 0; i < n; i += 7) {
		ks_write(ks->k, buf + i, i + 7 <= n ? 7 : n - i);
		usleep(100);
	}
	/* Two messages in one write. */
	h.seq = 11;
	h.vcpu = 1;
	ks_event_rec(&ev, 1, 11, KVMI_EVENT_XSETBV);
	memcpy(buf, &h, HDR);
	memcpy(buf + HDR, &ev, sizeof(ev));
	h.seq = 12;
	h.vcpu = 0;
	ks_event_rec(&ev, 0, 12, KVMI_EVENT_BREAKPOINT);
	memcpy(buf + n, &h, HDR);
	memcpy(buf + n + HDR, &ev, sizeof(ev));
	/* After vCPU 0 answered 10, or the second event would be early. */
	expect_reply(ks->k, 0, 10, KVMI_EVENT_HYPERCALL, KVMI_ACTION_CONTINUE,
		     0, NULL, NULL);
	ks_write(ks->k, buf, 2 * n);
	return NULL;
}

TEST(partial_reads_and_coalesced_messages)
{
	struct kvmi_vcpu *v0, *v1;
	struct kvmi_event ev;
	struct ksim ks;
	pthread_t t;

	ks_start(&ks, 2, 2);
	v0 = kvmi_dom_vcpu(ks.s.dom, 0);
	v1 = kvmi_dom_vcpu(ks.s.dom, 1);
	pthread_create(&t, NULL, dribble, &ks);
	CHECK_EQ(0, kvmi_vcpu_wait_event(v0, &ev, -1));
	CHECK_EQ(10, ev.seq);
	CHECK_EQ(0x1000 + 10, ev.regs.rax);
	CHECK_EQ(0, kvmi_vcpu_reply(v0, KVMI_ACTION_CONTINUE, 0, NULL, NULL));
	CHECK_EQ(0, kvmi_vcpu_wait_event(v0, &ev, -1));
	CHECK_EQ(12, ev.seq);
	CHECK_EQ(KVMI_EVENT_BREAKPOINT, ev.id);
	CHECK_EQ(0, kvmi_vcpu_pop_event(v1, &ev));
	CHECK_EQ(11, ev.seq);
	pthread_join(t, NULL);
	ks_end(&ks);
}

static int reply_now(struct kvmi_vcpu *v, const struct kvmi_event *ev,
		     void *arg)
{
	(*(int *)arg)++;
	return kvmi_vcpu_reply(v, KVMI_ACTION_CONTINUE, 0, NULL, NULL);
}

TEST(pollfd_and_dispatch)
{
	struct pollfd pfd;
	struct ksim ks;
	int seen = 0;

	ks_start(&ks, 4, 3);
	pfd.fd = kvmi_dom_pollfd(ks.s.dom);
	CHECK(pfd.fd >= 0);
	pfd.events = POLLIN;
	CHECK_EQ(0, poll(&pfd, 1, 0));
	CHECK_EQ(0, kvmi_dom_dispatch(ks.s.dom, reply_now, &seen));
	ks_event(ks.k, 2, 30, KVMI_EVENT_HYPERCALL);
	ks_event(ks.k, 0, 31, KVMI_EVENT_HYPERCALL);
	CHECK_EQ(1, poll(&pfd, 1, -1));
	CHECK_EQ(2, kvmi_dom_dispatch(ks.s.dom, reply_now, &seen));
	CHECK_EQ(2, seen);
	expect_reply(ks.k, 0, 31, KVMI_EVENT_HYPERCALL, KVMI_ACTION_CONTINUE,
		     0, NULL, NULL);
	expect_reply(ks.k, 2, 30, KVMI_EVENT_HYPERCALL, KVMI_ACTION_CONTINUE,
		     0, NULL, NULL);
	/* UNHOOK: no event, the state tells. */
	ks_send(ks.k, KVMI_MSG_UNHOOK, 0, 0, NULL, 0);
	CHECK_EQ(1, poll(&pfd, 1, -1));
	CHECK_EQ(0, kvmi_dom_dispatch(ks.s.dom, reply_now, &seen));
	close(ks.k);
	CHECK_EQ(1, poll(&pfd, 1, -1));
	CHECK_EQ(-ENODEV, kvmi_dom_dispatch(ks.s.dom, reply_now, &seen));
	kvmi_dom_close(ks.s.dom);
	sim_free(&ks.s);
}

TEST(close_answers_pending_events)
{
	struct kvmi_event ev;
	struct ksim ks;

	ks_start(&ks, 2, 2);
	ks_event(ks.k, 0, 5, KVMI_EVENT_BREAKPOINT);
	ks_event(ks.k, 1, 6, KVMI_EVENT_HYPERCALL);
	/* vCPU 0's is popped, vCPU 1's only read. */
	CHECK_EQ(0, kvmi_vcpu_wait_event(kvmi_dom_vcpu(ks.s.dom, 0), &ev, -1));
	CHECK(kvmi_vcpu_peek_event(kvmi_dom_vcpu(ks.s.dom, 1)));
	CHECK_EQ(0, kvmi_dom_close(ks.s.dom));
	expect_reply(ks.k, 0, 5, KVMI_EVENT_BREAKPOINT, KVMI_ACTION_ALLOW, 0,
		     NULL, NULL);
	expect_reply(ks.k, 1, 6, KVMI_EVENT_HYPERCALL, KVMI_ACTION_CONTINUE, 0,
		     NULL, NULL);
	expect_eof(ks.k);
	close(ks.k);
	sim_free(&ks.s);
}

#define NR_THREADS	3
#define NR_ROUNDS	2000

struct served {
	struct kvmi_vcpu *v;
	unsigned int n;
};

/* One thread per vCPU: event, a command, reply; until the end. */
static void *serve(void *arg)
{
	struct served *sv = arg;
	struct kvmi_event ev;
	uint64_t x;
	int r;

	for (;;) {
		r = kvmi_vcpu_wait_event(sv->v, &ev, -1);
		if (r == -ENODEV)
			return NULL;
		CHECK_EQ(0, r);
		CHECK_EQ(kvmi_vcpu_index(sv->v), ev.vcpu);
		CHECK_EQ(0, kvmi_vcpu_get_xcr(sv->v, 0, &x));
		CHECK_EQ(ev.seq * 3ULL, x);
		CHECK_EQ(0, kvmi_vcpu_reply(sv->v, KVMI_ACTION_CONTINUE, 0,
					    NULL, NULL));
		sv->n++;
	}
}

TEST(one_thread_per_vcpu)
{
	struct kvmi_cmd_get_xcr_result out;
	uint32_t seq[NR_THREADS], left = NR_THREADS * NR_ROUNDS;
	struct served sv[NR_THREADS];
	pthread_t t[NR_THREADS];
	struct kvmi_cmd_result res;
	uint8_t buf[HDR + KVMI_MSG_MAX_SIZE];
	struct kvmi_msg_hdr h;
	struct ksim ks;
	uint32_t i;

	ks_start(&ks, NR_THREADS, NR_THREADS);
	for (i = 0; i < NR_THREADS; i++) {
		sv[i].v = kvmi_dom_vcpu(ks.s.dom, i);
		sv[i].n = 0;
		pthread_create(&t[i], NULL, serve, &sv[i]);
		seq[i] = i * 100000 + 1;
		ks_event(ks.k, i, seq[i], KVMI_EVENT_HYPERCALL);
	}
	/* The kernel: answer commands, raise the next event on a reply. */
	while (left) {
		ks_recv(ks.k, &h, buf, sizeof(buf));
		CHECK(h.vcpu < NR_THREADS);
		if (h.id == KVMI_MSG_VCPU_COMMAND) {
			memset(&res, 0, sizeof(res));
			res.seq = h.seq;
			res.id = KVMI_CMD_GET_XCR;
			out.value = seq[h.vcpu] * 3ULL;
			memcpy(&res.result, &out, sizeof(out));
			ks_send(ks.k, KVMI_MSG_VCPU_RESULT, h.seq, h.vcpu,
				&res, sizeof(res));
			continue;
		}
		CHECK_EQ(KVMI_MSG_REPLY, h.id);
		CHECK_EQ(seq[h.vcpu], h.seq);
		left--;
		if ((seq[h.vcpu] % 100000) < NR_ROUNDS)
			ks_event(ks.k, h.vcpu, ++seq[h.vcpu],
				 KVMI_EVENT_HYPERCALL);
	}
	close(ks.k);
	for (i = 0; i < NR_THREADS; i++) {
		pthread_join(t[i], NULL);
		CHECK_EQ(NR_ROUNDS, sv[i].n);
	}
	kvmi_dom_close(ks.s.dom);
	sim_free(&ks.s);
}

/*
 * The io_uring loop: several messages arrive in one write (one wakeup of
 * the socket's poll) and each is dispatched; the end of the connection
 * takes the dom out of the loop.
 */
TEST(uring_loop_over_the_socket)
{
	uint8_t buf[3 * (HDR + sizeof(struct kvmi_event))];
	size_t n = HDR + sizeof(struct kvmi_event);
	struct kvmi_msg_hdr h = {
		.id = KVMI_MSG_EVENT, .size = sizeof(struct kvmi_event),
	};
	struct kvmi_uring *loop;
	struct kvmi_event ev;
	unsigned int tries;
	struct ksim ks;
	int seen = 0, total = 0, r;
	uint32_t i;

	if (kvmi_uring_create(16, &loop))
		SKIP("io_uring is not available here");
	ks_start(&ks, 4, 3);
	CHECK_EQ(0, kvmi_uring_add(loop, ks.s.dom, reply_now, &seen));
	for (i = 0; i < 3; i++) {
		h.seq = 40 + i;
		h.vcpu = 2 - i;
		ks_event_rec(&ev, h.vcpu, h.seq, KVMI_EVENT_HYPERCALL);
		memcpy(buf + i * n, &h, HDR);
		memcpy(buf + i * n + HDR, &ev, sizeof(ev));
	}
	ks_write(ks.k, buf, sizeof(buf));
	for (tries = 0; total < 3 && tries < 100; tries++) {
		r = kvmi_uring_run(loop, 100);
		CHECK(r >= 0);
		total += r;
	}
	CHECK_EQ(3, total);
	CHECK_EQ(3, seen);
	/* Answered in vCPU order by the dispatch. */
	for (i = 0; i < 3; i++)
		expect_reply(ks.k, i, 42 - i, KVMI_EVENT_HYPERCALL,
			     KVMI_ACTION_CONTINUE, 0, NULL, NULL);
	close(ks.k);
	CHECK_EQ(0, kvmi_uring_run(loop, 100));
	CHECK_EQ(-ENOENT, kvmi_uring_remove(loop, ks.s.dom));
	kvmi_uring_destroy(loop);
	kvmi_dom_close(ks.s.dom);
	sim_free(&ks.s);
}

/*
 * Who wakes: each thread sleeps on its own vCPU; a message wakes the
 * thread of its vCPU alone, and the end of the connection wakes them all.
 * kvmi__sock_stats() counts the returns from the condition variable waits.
 */
#define NR_WAITERS	8

struct waiter {
	struct kvmi_vcpu *v;
	pthread_t t;
	int ms;			/* wait_event's timeout */
	bool reply;		/* answer the event */
	int r;			/* what wait_event returned */
	uint32_t seq;		/* and the seq of the event */
	int done;		/* returned */
};

static void *wait_one(void *arg)
{
	struct waiter *w = arg;
	struct kvmi_event ev;

	w->r = kvmi_vcpu_wait_event(w->v, &ev, w->ms);
	if (!w->r) {
		w->seq = ev.seq;
		if (w->reply)
			CHECK_EQ(0, kvmi_vcpu_reply(w->v, KVMI_ACTION_CONTINUE,
						    0, NULL, NULL));
	}
	store_release(&w->done, 1);
	return NULL;
}

static void waiter_start(struct waiter *w, struct kvmi_dom *dom, uint32_t i,
			 int ms)
{
	memset(w, 0, sizeof(*w));
	w->v = kvmi_dom_vcpu(dom, i);
	w->ms = ms;
	w->reply = true;
	CHECK_EQ(0, pthread_create(&w->t, NULL, wait_one, w));
}

/* Wait (10 s at most) until @w returned. */
static void waiter_done(struct waiter *w)
{
	int i;

	for (i = 0; i < 10000 && !load_acquire(&w->done); i++)
		usleep(1000);
	CHECK(load_acquire(&w->done));
	pthread_join(w->t, NULL);
}

/*
 * Wait (10 s at most) until @n threads are in the socket's wait: one
 * reading, the others asleep (@n 0: none). A thread left asleep with
 * nobody reading (a lost wakeup) fails here.
 */
static void settle(struct kvmi_dom *dom, uint32_t n,
		   struct kvmi__sock_stats *st)
{
	int i;

	for (i = 0; i < 10000; i++) {
		kvmi__sock_stats(dom, st);
		if (n ? st->reading && st->waiting == n - 1 :
			!st->reading && !st->waiting)
			return;
		usleep(1000);
	}
	fprintf(stderr, "# want %u in the wait, got %u asleep, %s reading\n",
		n, st->waiting, st->reading ? "one" : "none");
	CHECK(0);
}

/*
 * NR_WAITERS threads on vCPUs 0, @stride, 2 * @stride, ... of
 * @max_vcpus; one event each, in a scrambled order.
 */
static void only_its_thread(uint32_t max_vcpus, uint32_t stride)
{
	struct waiter w[NR_WAITERS];
	struct kvmi__sock_stats st;
	uint64_t before;
	struct ksim ks;
	uint32_t i, j, k;

	ks_start(&ks, max_vcpus, max_vcpus);
	for (i = 0; i < NR_WAITERS; i++)
		waiter_start(&w[i], ks.s.dom, i * stride, -1);
	settle(ks.s.dom, NR_WAITERS, &st);
	/* 5, 0, 3, 6, 1, 4, 7, 2: to the reader or to a sleeper. */
	for (i = 0; i < NR_WAITERS; i++) {
		k = (3 * i + 5) % NR_WAITERS;
		before = st.wakeups;
		ks_event(ks.k, k * stride, 100 + k, KVMI_EVENT_HYPERCALL);
		waiter_done(&w[k]);
		CHECK_EQ(0, w[k].r);
		CHECK_EQ(100 + k, w[k].seq);
		expect_reply(ks.k, k * stride, 100 + k, KVMI_EVENT_HYPERCALL,
			     KVMI_ACTION_CONTINUE, 0, NULL, NULL);
		/* The others still wait, one of them reading. */
		settle(ks.s.dom, NR_WAITERS - 1 - i, &st);
		for (j = i + 1; j < NR_WAITERS; j++)
			CHECK(!load_acquire(&w[(3 * j + 5) % NR_WAITERS].done));
		/*
		 * One wakeup: vCPU k's thread, or (k's thread was reading)
		 * the one that reads next. Every sleeper, with one
		 * condition variable for all.
		 */
		fprintf(stderr, "# vCPU %u: %llu wakeups\n", k * stride,
			(unsigned long long)(st.wakeups - before));
		CHECK(st.wakeups - before <= 1);
	}
	ks_end(&ks);
}

TEST(a_message_wakes_only_the_thread_of_its_vcpu)
{
	only_its_thread(NR_WAITERS, 1);
	/* Sleepers spread over the 64-bit words of the library's bitmap. */
	only_its_thread(7 * 29 + 1, 29);
}

struct xcr_play {
	int k;
	uint32_t vcpu;
	uint64_t value;
};

/* The kernel's side of one GET_XCR command. */
static void *answer_xcr(void *arg)
{
	struct xcr_play *p = arg;
	struct kvmi_cmd_get_xcr_result out;
	struct kvmi_cmd_result res;
	struct kvmi_msg_hdr h;
	struct kvmi_cmd cmd;

	ks_recv(p->k, &h, &cmd, sizeof(cmd));
	CHECK_EQ(KVMI_MSG_VCPU_COMMAND, h.id);
	CHECK_EQ(p->vcpu, h.vcpu);
	CHECK_EQ(KVMI_CMD_GET_XCR, cmd.id);
	memset(&res, 0, sizeof(res));
	res.seq = h.seq;
	res.id = KVMI_CMD_GET_XCR;
	out.value = p->value;
	memcpy(&res.result, &out, sizeof(out));
	ks_send(p->k, KVMI_MSG_VCPU_RESULT, h.seq, h.vcpu, &res, sizeof(res));
	return NULL;
}

/*
 * A command's result wakes its thread alone; UNHOOK, for the VM, wakes
 * none of the vCPU threads.
 */
TEST(results_and_unhook_wake_no_other_thread)
{
	struct waiter w[NR_WAITERS];
	struct kvmi__sock_stats st;
	struct xcr_play p;
	struct kvmi_event ev;
	struct kvmi_vcpu *v0;
	uint64_t before, x;
	struct ksim ks;
	pthread_t t;
	uint32_t i;
	int n;

	ks_start(&ks, NR_WAITERS, NR_WAITERS);
	v0 = kvmi_dom_vcpu(ks.s.dom, 0);
	ks_event(ks.k, 0, 1, KVMI_EVENT_HYPERCALL);
	CHECK_EQ(0, kvmi_vcpu_wait_event(v0, &ev, -1));
	for (i = 1; i < NR_WAITERS; i++)
		waiter_start(&w[i], ks.s.dom, i, -1);
	settle(ks.s.dom, NR_WAITERS - 1, &st);

	/* vCPU 0's command: its thread sleeps, another reads. */
	p.k = ks.k;
	p.vcpu = 0;
	p.value = 0x5a5a;
	before = st.wakeups;
	pthread_create(&t, NULL, answer_xcr, &p);
	CHECK_EQ(0, kvmi_vcpu_get_xcr(v0, 0, &x));
	pthread_join(t, NULL);
	CHECK_EQ(0x5a5a, x);
	settle(ks.s.dom, NR_WAITERS - 1, &st);
	CHECK(st.wakeups - before <= 1);
	for (i = 1; i < NR_WAITERS; i++)
		CHECK(!load_acquire(&w[i].done));

	/* UNHOOK: read, and no vCPU thread woken. */
	before = st.wakeups;
	ks_send(ks.k, KVMI_MSG_UNHOOK, 0, 0, NULL, 0);
	for (n = 0; n < 10000 && !kvmi__sock_unhook(ks.s.dom); n++)
		usleep(1000);
	CHECK(kvmi__sock_unhook(ks.s.dom));
	settle(ks.s.dom, NR_WAITERS - 1, &st);
	CHECK_EQ(before, st.wakeups);
	for (i = 1; i < NR_WAITERS; i++)
		CHECK(!load_acquire(&w[i].done));

	/* The end wakes them all. */
	close(ks.k);
	for (i = 1; i < NR_WAITERS; i++) {
		waiter_done(&w[i]);
		CHECK_EQ(-ENODEV, w[i].r);
	}
	CHECK_EQ(0, kvmi_dom_close(ks.s.dom));
	sim_free(&ks.s);
}

/*
 * The end of the connection wakes every waiter, timed or not, with
 * -ENODEV: the end of file, a malformed message. Then close.
 */
TEST(the_end_wakes_every_waiter)
{
	struct kvmi_msg_hdr bad = { .id = 99 };
	struct waiter w[NR_WAITERS];
	struct kvmi__sock_stats st;
	struct ksim ks;
	uint32_t i;
	int pass;

	for (pass = 0; pass < 2; pass++) {
		ks_start(&ks, NR_WAITERS, NR_WAITERS);
		for (i = 0; i < NR_WAITERS; i++)
			waiter_start(&w[i], ks.s.dom, i, i & 1 ? 30000 : -1);
		settle(ks.s.dom, NR_WAITERS, &st);
		if (pass) {
			ks_write(ks.k, &bad, HDR);
			expect_eof(ks.k);
			close(ks.k);
		} else {
			close(ks.k);
		}
		for (i = 0; i < NR_WAITERS; i++) {
			waiter_done(&w[i]);
			CHECK_EQ(-ENODEV, w[i].r);
		}
		settle(ks.s.dom, 0, &st);
		CHECK(st.wakeups <= NR_WAITERS - 1);
		kvmi_dom_close(ks.s.dom);
		sim_free(&ks.s);
	}
}

static void on_usr1(int sig)
{
}

/*
 * The reader leaves without its message (its timeout, a signal): a
 * sleeper takes the reading over, and gets its message.
 */
TEST(a_reader_that_leaves_hands_the_reading_over)
{
	struct sigaction sa = { .sa_handler = on_usr1 };
	struct kvmi__sock_stats st;
	struct waiter a, b;
	struct ksim ks;
	int i;

	/* No SA_RESTART: the reader's poll() returns -EINTR. */
	CHECK_EQ(0, sigaction(SIGUSR1, &sa, NULL));
	ks_start(&ks, 2, 2);

	/* vCPU 0's thread reads until its timeout; vCPU 1's sleeps. */
	waiter_start(&a, ks.s.dom, 0, 300);
	settle(ks.s.dom, 1, &st);
	waiter_start(&b, ks.s.dom, 1, -1);
	settle(ks.s.dom, 2, &st);
	waiter_done(&a);
	CHECK_EQ(-ETIMEDOUT, a.r);
	settle(ks.s.dom, 1, &st);	/* vCPU 1's thread reads now */
	ks_event(ks.k, 1, 7, KVMI_EVENT_HYPERCALL);
	waiter_done(&b);
	CHECK_EQ(0, b.r);
	CHECK_EQ(7, b.seq);
	expect_reply(ks.k, 1, 7, KVMI_EVENT_HYPERCALL, KVMI_ACTION_CONTINUE,
		     0, NULL, NULL);

	/* vCPU 1's thread reads until a signal; vCPU 0's sleeps. */
	waiter_start(&b, ks.s.dom, 1, -1);
	settle(ks.s.dom, 1, &st);
	waiter_start(&a, ks.s.dom, 0, -1);
	settle(ks.s.dom, 2, &st);
	/* Until it lands in the poll(). */
	for (i = 0; i < 1000 && !load_acquire(&b.done); i++) {
		pthread_kill(b.t, SIGUSR1);
		usleep(10000);
	}
	waiter_done(&b);
	CHECK_EQ(-EINTR, b.r);
	settle(ks.s.dom, 1, &st);	/* vCPU 0's thread reads now */
	ks_event(ks.k, 0, 8, KVMI_EVENT_HYPERCALL);
	waiter_done(&a);
	CHECK_EQ(0, a.r);
	CHECK_EQ(8, a.seq);
	expect_reply(ks.k, 0, 8, KVMI_EVENT_HYPERCALL, KVMI_ACTION_CONTINUE,
		     0, NULL, NULL);
	settle(ks.s.dom, 0, &st);
	ks_end(&ks);
}

/*
 * Many threads, one per vCPU, some waiting with short timeouts (readers
 * come and go), events and command results interleaved, several
 * messages in one write: every event served once, nothing lost.
 */
#define NR_STRESS	16
#define STRESS_ROUNDS	150

static void *serve_timed(void *arg)
{
	static const int ms[] = { -1, 0, 1, 3, -1, 20 };
	struct served *sv = arg;
	struct kvmi_event ev;
	unsigned int calls = 0;
	uint64_t x;
	int r;

	for (;;) {
		r = kvmi_vcpu_wait_event(sv->v, &ev,
					 ms[(calls++ + kvmi_vcpu_index(sv->v)) %
					    ARRAY_SIZE(ms)]);
		if (r == -ETIMEDOUT)
			continue;
		if (r == -ENODEV)
			return NULL;
		CHECK_EQ(0, r);
		CHECK_EQ(kvmi_vcpu_index(sv->v), ev.vcpu);
		if (ev.seq % 2) {
			CHECK_EQ(0, kvmi_vcpu_get_xcr(sv->v, 0, &x));
			CHECK_EQ(ev.seq * 3ULL, x);
		}
		CHECK_EQ(0, kvmi_vcpu_reply(sv->v, KVMI_ACTION_CONTINUE, 0,
					    NULL, NULL));
		sv->n++;
	}
}

/* Messages queued by the simulated kernel, written together. */
struct batch {
	uint8_t buf[4 * (HDR + KVMI_MSG_MAX_SIZE)];
	size_t len;
};

static void batch_add(struct batch *b, int k, uint16_t id, uint32_t seq,
		      uint32_t vcpu, const void *payload, uint32_t size)
{
	struct kvmi_msg_hdr h = {
		.id = id, .size = size, .seq = seq, .vcpu = vcpu,
	};

	if (b->len + HDR + size > sizeof(b->buf)) {
		ks_write(k, b->buf, b->len);
		b->len = 0;
	}
	memcpy(b->buf + b->len, &h, HDR);
	memcpy(b->buf + b->len + HDR, payload, size);
	b->len += HDR + size;
}

TEST(many_threads_interleaved_messages)
{
	static struct batch b;
	struct kvmi_cmd_get_xcr_result out;
	uint32_t seq[NR_STRESS], left = NR_STRESS * STRESS_ROUNDS;
	struct served sv[NR_STRESS];
	pthread_t t[NR_STRESS];
	struct kvmi__sock_stats st;
	struct kvmi_cmd_result res;
	uint8_t buf[HDR + KVMI_MSG_MAX_SIZE];
	struct kvmi_event ev;
	struct kvmi_msg_hdr h;
	struct pollfd pfd;
	struct ksim ks;
	uint32_t i, msgs = 0;

	ks_start(&ks, NR_STRESS, NR_STRESS);
	for (i = 0; i < NR_STRESS; i++) {
		sv[i].v = kvmi_dom_vcpu(ks.s.dom, i);
		sv[i].n = 0;
		seq[i] = i * 100000 + 1;
		ks_event_rec(&ev, i, seq[i], KVMI_EVENT_HYPERCALL);
		batch_add(&b, ks.k, KVMI_MSG_EVENT, seq[i], i, &ev,
			  sizeof(ev));
		msgs++;
	}
	for (i = 0; i < NR_STRESS; i++)
		pthread_create(&t[i], NULL, serve_timed, &sv[i]);
	pfd.fd = ks.k;
	pfd.events = POLLIN;
	while (left) {
		/* Write what is queued once nothing more is to be read. */
		if (b.len && poll(&pfd, 1, 0) == 0) {
			ks_write(ks.k, b.buf, b.len);
			b.len = 0;
		}
		ks_recv(ks.k, &h, buf, sizeof(buf));
		CHECK(h.vcpu < NR_STRESS);
		if (h.id == KVMI_MSG_VCPU_COMMAND) {
			memset(&res, 0, sizeof(res));
			res.seq = h.seq;
			res.id = KVMI_CMD_GET_XCR;
			out.value = seq[h.vcpu] * 3ULL;
			memcpy(&res.result, &out, sizeof(out));
			batch_add(&b, ks.k, KVMI_MSG_VCPU_RESULT, h.seq,
				  h.vcpu, &res, sizeof(res));
			msgs++;
			continue;
		}
		CHECK_EQ(KVMI_MSG_REPLY, h.id);
		CHECK_EQ(seq[h.vcpu], h.seq);
		left--;
		if ((seq[h.vcpu] % 100000) < STRESS_ROUNDS) {
			ks_event_rec(&ev, h.vcpu, ++seq[h.vcpu],
				     KVMI_EVENT_HYPERCALL);
			batch_add(&b, ks.k, KVMI_MSG_EVENT, seq[h.vcpu],
				  h.vcpu, &ev, sizeof(ev));
			msgs++;
		}
	}
	kvmi__sock_stats(ks.s.dom, &st);
	fprintf(stderr, "# %u messages, %llu wakeups\n", msgs,
		(unsigned long long)st.wakeups);
	close(ks.k);
	for (i = 0; i < NR_STRESS; i++) {
		pthread_join(t[i], NULL);
		CHECK_EQ(STRESS_ROUNDS, sv[i].n);
	}
	kvmi_dom_close(ks.s.dom);
	sim_free(&ks.s);
}
