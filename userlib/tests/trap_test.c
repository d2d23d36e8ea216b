// SPDX-License-Identifier: LGPL-2.1-or-later OR MIT
/*
 * The TRAP, DESCRIPTOR and SINGLESTEP helpers (1.5) with no KVM: the
 * events' data decoded, malformed records rejected (and still
 * answerable), the replies built, refused before anything is written.
 */
#include "harness.h"
#include "sim.h"

static const struct kvmi_event *pop(struct sim *s, uint32_t seq, uint16_t id,
				    struct kvmi_event *ev)
{
	struct kvmi_vcpu *v = kvmi_dom_vcpu(s->dom, 0);

	sim_publish(s, 0, seq, id);
	memset(&sim_ev(s, 0)->data, 0, sizeof(sim_ev(s, 0)->data));
	if (id == KVMI_EVENT_TRAP) {
		sim_ev(s, 0)->data.trap.vector = 14;
		sim_ev(s, 0)->data.trap.flags = KVMI_EXCEPTION_ERROR_CODE;
		sim_ev(s, 0)->data.trap.error_code = 2;
		sim_ev(s, 0)->data.trap.cr2 = 0xdead000;
	} else if (id == KVMI_EVENT_DESCRIPTOR) {
		sim_ev(s, 0)->data.descriptor.descriptor = KVMI_DESC_IDTR;
		sim_ev(s, 0)->data.descriptor.flags = KVMI_DESC_LOAD;
	}
	if (kvmi_vcpu_pop_event(v, ev))
		return NULL;
	return ev;
}

TEST(trap_event_and_replies)
{
	struct kvmi_reply_trap gp = {
		.vector = 13, .flags = KVMI_EXCEPTION_ERROR_CODE,
		.error_code = 0x18,
	};
	struct kvmi_x86_regs regs = { .groups = KVMI_REGS_RIP, .rip = 0x2000 };
	const struct kvmi_event_trap *t;
	struct kvmi_event ev;
	struct kvmi_vcpu *v;
	struct sim s;

	sim_default(&s, 1);
	CHECK_EQ(0, sim_start(&s, 1));
	v = kvmi_dom_vcpu(s.dom, 0);
	CHECK_EQ(-ENOENT, kvmi_vcpu_reply_trap(v, KVMI_ACTION_CONTINUE, NULL,
					       NULL));
	CHECK(pop(&s, 1, KVMI_EVENT_TRAP, &ev));
	t = kvmi_event_as_trap(&ev);
	CHECK(t == &ev.data.trap);
	CHECK_EQ(14, t->vector);
	CHECK_EQ(KVMI_EXCEPTION_ERROR_CODE, t->flags);
	CHECK_EQ(2, t->error_code);
	CHECK_EQ(0xdead000, t->cr2);
	CHECK(kvmi_event_as_descriptor(&ev) == NULL);
	CHECK(kvmi_event_as_singlestep(&ev) == NULL);
	CHECK_EQ(-EINVAL, kvmi_vcpu_reply_descriptor(v, KVMI_ACTION_CONTINUE,
						     NULL));
	CHECK_EQ(-EINVAL, kvmi_vcpu_reply_trap(v, KVMI_ACTION_RETRY, NULL,
					       NULL));
	CHECK_EQ(-EINVAL, kvmi_vcpu_reply_trap(v, KVMI_ACTION_ALLOW, NULL,
					       NULL));
	gp.vector = 32;
	CHECK_EQ(-EINVAL, kvmi_vcpu_reply_trap(v, KVMI_ACTION_ALLOW, &gp,
					       NULL));
	gp.vector = 13;
	gp.flags = 2;
	CHECK_EQ(-EINVAL, kvmi_vcpu_reply_trap(v, KVMI_ACTION_ALLOW, &gp,
					       NULL));
	gp.flags = KVMI_EXCEPTION_ERROR_CODE;
	gp.padding[1] = 1;
	CHECK_EQ(-EINVAL, kvmi_vcpu_reply_trap(v, KVMI_ACTION_ALLOW, &gp,
					       NULL));
	gp.padding[1] = 0;
	CHECK(sim_rp(&s, 0)->seq != 1);
	CHECK_EQ(0, kvmi_vcpu_reply_trap(v, KVMI_ACTION_ALLOW, &gp, NULL));
	CHECK_EQ(1, sim_rp(&s, 0)->seq);
	CHECK_EQ(KVMI_EVENT_TRAP, sim_rp(&s, 0)->event);
	CHECK_EQ(KVMI_ACTION_ALLOW, sim_rp(&s, 0)->action);
	CHECK_EQ(0, sim_rp(&s, 0)->flags);
	CHECK_EQ(13, sim_rp(&s, 0)->data.trap.vector);
	CHECK_EQ(0x18, sim_rp(&s, 0)->data.trap.error_code);

	/* DENY, resuming elsewhere; malformed records NULL. */
	CHECK(pop(&s, 2, KVMI_EVENT_TRAP, &ev));
	ev.data.trap.vector = 32;
	CHECK(kvmi_event_as_trap(&ev) == NULL);
	ev.data.trap.vector = 3;
	ev.data.trap.flags = 4;
	CHECK(kvmi_event_as_trap(&ev) == NULL);
	ev.data.trap.flags = 0;
	ev.data.trap.padding[0] = 1;
	CHECK(kvmi_event_as_trap(&ev) == NULL);
	CHECK_EQ(0, kvmi_vcpu_reply_trap(v, KVMI_ACTION_DENY, NULL, &regs));
	CHECK_EQ(2, sim_rp(&s, 0)->seq);
	CHECK_EQ(KVMI_ACTION_DENY, sim_rp(&s, 0)->action);
	CHECK_EQ(KVMI_REPLY_SET_REGS, sim_rp(&s, 0)->flags);
	CHECK_EQ(0x2000, sim_rp(&s, 0)->regs.rip);
	CHECK_EQ(0, kvmi_dom_close(s.dom));
	sim_free(&s);
}

TEST(descriptor_event_and_replies)
{
	struct kvmi_x86_regs regs = { .groups = KVMI_REGS_RIP, .rip = 0x3003 };
	const struct kvmi_event_descriptor *d;
	struct kvmi_event ev;
	struct kvmi_vcpu *v;
	struct sim s;

	sim_default(&s, 1);
	CHECK_EQ(0, sim_start(&s, 1));
	v = kvmi_dom_vcpu(s.dom, 0);
	CHECK(pop(&s, 1, KVMI_EVENT_DESCRIPTOR, &ev));
	d = kvmi_event_as_descriptor(&ev);
	CHECK(d == &ev.data.descriptor);
	CHECK_EQ(KVMI_DESC_IDTR, d->descriptor);
	CHECK_EQ(KVMI_DESC_LOAD, d->flags);
	CHECK(kvmi_event_as_trap(&ev) == NULL);
	ev.data.descriptor.descriptor = 0;
	CHECK(kvmi_event_as_descriptor(&ev) == NULL);
	ev.data.descriptor.descriptor = KVMI_DESC_TR + 1;
	CHECK(kvmi_event_as_descriptor(&ev) == NULL);
	ev.data.descriptor.descriptor = KVMI_DESC_TR;
	ev.data.descriptor.flags = 2;
	CHECK(kvmi_event_as_descriptor(&ev) == NULL);
	ev.data.descriptor.flags = 0;
	ev.data.descriptor.padding[5] = 1;
	CHECK(kvmi_event_as_descriptor(&ev) == NULL);
	CHECK_EQ(-EINVAL, kvmi_vcpu_reply_descriptor(v, KVMI_ACTION_ALLOW,
						     NULL));
	/* CONTINUE and DENY act where the instruction is: no RIP. */
	CHECK_EQ(-EINVAL, kvmi_vcpu_reply_descriptor(v, KVMI_ACTION_DENY,
						     &regs));
	CHECK_EQ(-EINVAL, kvmi_vcpu_reply_descriptor(v, KVMI_ACTION_CONTINUE,
						     &regs));
	CHECK_EQ(-EINVAL, kvmi_vcpu_reply_trap(v, KVMI_ACTION_CONTINUE, NULL,
					       NULL));
	CHECK(sim_rp(&s, 0)->seq != 1);
	/* Skip the LIDT: RETRY past it. */
	CHECK_EQ(0, kvmi_vcpu_reply_descriptor(v, KVMI_ACTION_RETRY, &regs));
	CHECK_EQ(1, sim_rp(&s, 0)->seq);
	CHECK_EQ(KVMI_ACTION_RETRY, sim_rp(&s, 0)->action);
	CHECK_EQ(KVMI_REPLY_SET_REGS, sim_rp(&s, 0)->flags);
	CHECK_EQ(0x3003, sim_rp(&s, 0)->regs.rip);
	CHECK_EQ(0, kvmi_dom_close(s.dom));
	sim_free(&s);
}

TEST(descriptor_deny)
{
	struct kvmi_x86_regs regs = { .groups = KVMI_REGS_GPRS, .rax = 7 };
	struct kvmi_event ev;
	struct kvmi_vcpu *v;
	struct sim s;

	sim_default(&s, 1);
	CHECK_EQ(0, sim_start(&s, 1));
	v = kvmi_dom_vcpu(s.dom, 0);
	CHECK(pop(&s, 1, KVMI_EVENT_DESCRIPTOR, &ev));
	/* Skip the instruction, with the registers the guest should see. */
	CHECK_EQ(0, kvmi_vcpu_reply_descriptor(v, KVMI_ACTION_DENY, &regs));
	CHECK_EQ(1, sim_rp(&s, 0)->seq);
	CHECK_EQ(KVMI_ACTION_DENY, sim_rp(&s, 0)->action);
	CHECK_EQ(KVMI_REPLY_SET_REGS, sim_rp(&s, 0)->flags);
	CHECK_EQ(KVMI_REGS_GPRS, sim_rp(&s, 0)->regs.groups);
	CHECK_EQ(7, sim_rp(&s, 0)->regs.rax);
	CHECK_EQ(0, kvmi_dom_close(s.dom));
	sim_free(&s);
}

TEST(singlestep_event_and_replies)
{
	const struct kvmi_event_singlestep *ss;
	struct kvmi_event ev;
	struct kvmi_vcpu *v;
	struct sim s;

	/* Without KVMI_FEATURE_SINGLESTEP: stepping again is refused. */
	sim_default(&s, 1);
	CHECK_EQ(0, sim_start(&s, 1));
	v = kvmi_dom_vcpu(s.dom, 0);
	CHECK(pop(&s, 1, KVMI_EVENT_SINGLESTEP, &ev));
	ss = kvmi_event_as_singlestep(&ev);
	CHECK(ss == &ev.data.singlestep);
	CHECK_EQ(0, ss->failed);
	ev.data.singlestep.failed = 2;
	CHECK(kvmi_event_as_singlestep(&ev) == NULL);
	ev.data.singlestep.failed = 1;
	ev.data.singlestep.padding[6] = 1;
	CHECK(kvmi_event_as_singlestep(&ev) == NULL);
	CHECK_EQ(-EOPNOTSUPP, kvmi_vcpu_reply_singlestep(v,
					KVMI_ACTION_CONTINUE, 1));
	CHECK_EQ(-EINVAL, kvmi_vcpu_reply_singlestep(v, KVMI_ACTION_ALLOW, 0));
	CHECK(sim_rp(&s, 0)->seq != 1);
	CHECK_EQ(0, kvmi_vcpu_reply_singlestep(v, KVMI_ACTION_CONTINUE, 0));
	CHECK_EQ(1, sim_rp(&s, 0)->seq);
	CHECK_EQ(0, sim_rp(&s, 0)->flags);
	CHECK_EQ(0, kvmi_dom_close(s.dom));
	sim_free(&s);

	sim_default(&s, 1);
	s.ver.features |= KVMI_FEATURE_SINGLESTEP;
	CHECK_EQ(0, sim_start(&s, 1));
	v = kvmi_dom_vcpu(s.dom, 0);
	CHECK(pop(&s, 1, KVMI_EVENT_SINGLESTEP, &ev));
	CHECK_EQ(0, kvmi_vcpu_reply_singlestep(v, KVMI_ACTION_CONTINUE, 1));
	CHECK_EQ(1, sim_rp(&s, 0)->seq);
	CHECK_EQ(KVMI_EVENT_SINGLESTEP, sim_rp(&s, 0)->event);
	CHECK_EQ(KVMI_REPLY_SINGLESTEP, sim_rp(&s, 0)->flags);
	CHECK_EQ(0, kvmi_dom_close(s.dom));
	sim_free(&s);
}
