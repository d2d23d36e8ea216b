// SPDX-License-Identifier: LGPL-2.1-or-later OR MIT
/*
 * The TRAP, DESCRIPTOR and SINGLESTEP events (since 1.5): typed access to
 * their data, NULL for a record the kernel never writes, and the replies
 * each takes (kvmi.rst, 10.9, 10.10 and 10.12).
 */
#include <string.h>

#include "internal.h"

static bool zero(const uint8_t *p, size_t n)
{
	while (n--)
		if (*p++)
			return false;
	return true;
}

/* kvmi_event_as_trap() - @ev's TRAP data: a vector 0-31, known flags. */
const struct kvmi_event_trap *kvmi_event_as_trap(const struct kvmi_event *ev)
{
	const struct kvmi_event_trap *t;

	if (!ev || ev->id != KVMI_EVENT_TRAP)
		return NULL;
	t = &ev->data.trap;
	if (t->vector > 31 || t->flags & ~KVMI_EXCEPTION_ERROR_CODE ||
	    !zero(t->padding, sizeof(t->padding)))
		return NULL;
	return t;
}

/* kvmi_event_as_descriptor() - @ev's DESCRIPTOR data: which register. */
const struct kvmi_event_descriptor *
kvmi_event_as_descriptor(const struct kvmi_event *ev)
{
	const struct kvmi_event_descriptor *d;

	if (!ev || ev->id != KVMI_EVENT_DESCRIPTOR)
		return NULL;
	d = &ev->data.descriptor;
	if (d->descriptor < KVMI_DESC_IDTR || d->descriptor > KVMI_DESC_TR ||
	    d->flags & ~KVMI_DESC_LOAD || !zero(d->padding, sizeof(d->padding)))
		return NULL;
	return d;
}

/* kvmi_event_as_singlestep() - @ev's SINGLESTEP data: failed is 0 or 1. */
const struct kvmi_event_singlestep *
kvmi_event_as_singlestep(const struct kvmi_event *ev)
{
	const struct kvmi_event_singlestep *s;

	if (!ev || ev->id != KVMI_EVENT_SINGLESTEP)
		return NULL;
	s = &ev->data.singlestep;
	if (s->failed > 1 || !zero(s->padding, sizeof(s->padding)))
		return NULL;
	return s;
}

static int popped(const struct kvmi_vcpu *v, uint16_t id)
{
	if (!v->cur)
		return -ENOENT;
	return v->cur_id == id ? 0 : -EINVAL;
}

/**
 * kvmi_vcpu_reply_trap() - answer the TRAP event popped on @vcpu:
 * CONTINUE (delivered unchanged), ALLOW (@deliver is delivered instead:
 * vector 0-31, KVMI_EXCEPTION_ERROR_CODE or no flag), DENY (dropped; the
 * guest resumes at regs.rip) or CRASH. @regs, if not NULL, is written
 * with KVMI_REPLY_SET_REGS. Refused before anything is written.
 */
int kvmi_vcpu_reply_trap(struct kvmi_vcpu *vcpu, uint8_t action,
			 const struct kvmi_reply_trap *deliver,
			 const struct kvmi_x86_regs *regs)
{
	union kvmi_reply_data data;
	int r = popped(vcpu, KVMI_EVENT_TRAP);

	if (r)
		return r;
	memset(&data, 0, sizeof(data));
	switch (action) {
	case KVMI_ACTION_ALLOW:
		if (!deliver || deliver->vector > 31 ||
		    deliver->flags & ~KVMI_EXCEPTION_ERROR_CODE ||
		    !zero(deliver->padding, sizeof(deliver->padding)))
			return -EINVAL;
		data.trap = *deliver;
		break;
	case KVMI_ACTION_CONTINUE:
	case KVMI_ACTION_DENY:
	case KVMI_ACTION_CRASH:
		break;
	default:
		return -EINVAL;
	}
	return kvmi_vcpu_reply(vcpu, action, regs ? KVMI_REPLY_SET_REGS : 0,
			       regs, &data);
}

/**
 * kvmi_vcpu_reply_descriptor() - answer the DESCRIPTOR event popped on
 * @vcpu: CONTINUE (the instruction executes), DENY (it is skipped: RIP
 * moves past it, nothing loaded or stored), RETRY (the guest resumes at
 * regs.rip without executing it) or CRASH. @regs may select RIP only with
 * RETRY and CRASH: CONTINUE and DENY act on the instruction where it is.
 */
int kvmi_vcpu_reply_descriptor(struct kvmi_vcpu *vcpu, uint8_t action,
			       const struct kvmi_x86_regs *regs)
{
	int r = popped(vcpu, KVMI_EVENT_DESCRIPTOR);

	if (r)
		return r;
	if (action != KVMI_ACTION_CONTINUE && action != KVMI_ACTION_DENY &&
	    action != KVMI_ACTION_RETRY && action != KVMI_ACTION_CRASH)
		return -EINVAL;
	if (regs && (regs->groups & KVMI_REGS_RIP) &&
	    (action == KVMI_ACTION_CONTINUE || action == KVMI_ACTION_DENY))
		return -EINVAL;
	return kvmi_vcpu_reply(vcpu, action, regs ? KVMI_REPLY_SET_REGS : 0,
			       regs, NULL);
}

/**
 * kvmi_vcpu_reply_singlestep() - answer the SINGLESTEP event popped on
 * @vcpu with CONTINUE or CRASH; @step_again steps one more instruction
 * (KVMI_REPLY_SINGLESTEP, KVMI_FEATURE_SINGLESTEP).
 */
int kvmi_vcpu_reply_singlestep(struct kvmi_vcpu *vcpu, uint8_t action,
			       int step_again)
{
	int r = popped(vcpu, KVMI_EVENT_SINGLESTEP);

	if (r)
		return r;
	if (action != KVMI_ACTION_CONTINUE && action != KVMI_ACTION_CRASH)
		return -EINVAL;
	return kvmi_vcpu_reply(vcpu, action,
			       step_again ? KVMI_REPLY_SINGLESTEP : 0, NULL,
			       NULL);
}
