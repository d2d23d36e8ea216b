// SPDX-License-Identifier: LGPL-2.1-or-later OR MIT
/*
 * Page access (since 1.4): restricting guest pages in batches, the
 * PAGE_FAULT event's data and its replies, including the emulation
 * actions NOEMU, SET_CTX and EMUL_NOWRITE (kvmi.rst, 7.12 and 10.11);
 * SET_CTX with registers since 1.7.
 */
#include <string.h>

#include "internal.h"

#define ACCESS_ALL	(KVMI_PAGE_ACCESS_R | KVMI_PAGE_ACCESS_W | \
			 KVMI_PAGE_ACCESS_X)
#define BATCH		128	/* entries per ioctl: 2 KiB on the stack */

/*
 * One KVMI_IOCTL_SET_PAGE_ACCESS of @n entries, continued after -EINTR
 * (done = entries applied). On another error the kernel has checked the
 * whole call first and applied none of it, done being the bad entry:
 * @applied gets the entries applied, @bad the bad one's index.
 */
static int apply(struct kvmi_dom *dom, const struct kvmi_page_access_entry *e,
		 uint32_t n, uint32_t *applied, uint32_t *bad)
{
	uint32_t k = 0, d;
	int r;

	while (k < n) {
		d = 0;
		r = kvmi_dom_set_page_access(dom, e + k, n - k, &d);
		if (d > n - k)	/* never from the kernel */
			return -EBADMSG;
		if (r == -EINTR) {
			k += d;
			continue;
		}
		if (r) {
			*applied = k;
			*bad = k + d;
			return r;
		}
		if (d != n - k)
			return -EBADMSG;
		k = n;
	}
	*applied = n;
	return 0;
}

/**
 * kvmi_dom_set_pages_access() - give the @count pages at @gpas the
 * rights @access (KVMI_PAGE_ACCESS_*: the accesses allowed; all three
 * lift the restriction), in batches of KVMI_IOCTL_SET_PAGE_ACCESS,
 * continuing where the kernel stopped after a signal. @done (may be
 * NULL) gets the number of pages processed, all of them on success; on
 * an error, the pages before the one that failed have their new rights
 * and the others are untouched (the kernel checks a call whole before
 * applying any of it: the pages of the failed call before the bad one
 * are given their rights again, alone).
 */
int kvmi_dom_set_pages_access(struct kvmi_dom *dom, const uint64_t *gpas,
			      uint32_t count, uint8_t access, uint32_t *done)
{
	struct kvmi_page_access_entry e[BATCH];
	uint32_t i = 0, n, k, applied, bad, bad2;
	int r, r2;

	if (done)
		*done = 0;
	if ((count && !gpas) || access & ~ACCESS_ALL)
		return -EINVAL;
	while (i < count) {
		n = count - i < BATCH ? count - i : BATCH;
		memset(e, 0, n * sizeof(e[0]));
		for (k = 0; k < n; k++) {
			e[k].gpa = gpas[i + k];
			e[k].access = access;
		}
		r = apply(dom, e, n, &applied, &bad);
		if (r == -EBADMSG)
			return r;
		if (r) {
			/* Those before the bad one were checked, not applied. */
			if (bad > applied) {
				r2 = apply(dom, e + applied, bad - applied,
					   &k, &bad2);
				applied += k;
				if (r2)
					r = r2;
			}
			if (done)
				*done = i + applied;
			return r;
		}
		i += n;
		if (done)
			*done = i;
	}
	return 0;
}

/*
 * kvmi_event_as_page_fault() - @ev's PAGE_FAULT data, or NULL if @ev is
 * another event or a record the kernel never writes: no access or an
 * unknown one, an unknown flag, padding not 0.
 */
const struct kvmi_event_page_fault *
kvmi_event_as_page_fault(const struct kvmi_event *ev)
{
	const struct kvmi_event_page_fault *pf;
	unsigned int i;

	if (!ev || ev->id != KVMI_EVENT_PAGE_FAULT)
		return NULL;
	pf = &ev->data.page_fault;
	if (!pf->access || pf->access & ~ACCESS_ALL ||
	    pf->flags & ~KVMI_PF_GVA_VALID)
		return NULL;
	for (i = 0; i < sizeof(pf->padding); i++)
		if (pf->padding[i])
			return NULL;
	return pf;
}

/* The PAGE_FAULT event is the one popped on @v, not answered yet. */
static int pf_popped(const struct kvmi_vcpu *v)
{
	if (!v->cur)
		return -ENOENT;
	return v->cur_id == KVMI_EVENT_PAGE_FAULT ? 0 : -EINVAL;
}

static bool emulation(const struct kvmi_vcpu *v)
{
	return v->dom->ver.features & KVMI_FEATURE_PF_EMULATION;
}

/**
 * kvmi_vcpu_reply_page_fault() - answer the PAGE_FAULT event popped on
 * @vcpu with CONTINUE or ALLOW (the access proceeds this once), RETRY
 * (re-execute: the tool changed the restriction or RIP), CRASH, NOEMU
 * (the tool did the instruction's work: @regs must select KVMI_REGS_RIP)
 * or EMUL_NOWRITE (emulated, its memory writes discarded). @regs, if not
 * NULL, is written with KVMI_REPLY_SET_REGS (not RIP with CONTINUE or
 * ALLOW: the instruction is emulated where it is). SET_CTX goes through
 * kvmi_vcpu_reply_page_fault_ctx(). Refused before anything is written.
 */
int kvmi_vcpu_reply_page_fault(struct kvmi_vcpu *vcpu, uint8_t action,
			       const struct kvmi_x86_regs *regs)
{
	int r = pf_popped(vcpu);

	if (r)
		return r;
	switch (action) {
	case KVMI_ACTION_CONTINUE:
	case KVMI_ACTION_ALLOW:
		/* The instruction is emulated where it is: RIP stays. */
		if (regs && regs->groups & KVMI_REGS_RIP)
			return -EINVAL;
		break;
	case KVMI_ACTION_RETRY:
	case KVMI_ACTION_CRASH:
		break;
	case KVMI_ACTION_NOEMU:
		if (!regs || !(regs->groups & KVMI_REGS_RIP))
			return -EINVAL;
		/* fall through */
	case KVMI_ACTION_EMUL_NOWRITE:
		if (!emulation(vcpu))
			return -EOPNOTSUPP;
		break;
	default:
		return -EINVAL;
	}
	return kvmi_vcpu_reply(vcpu, action, regs ? KVMI_REPLY_SET_REGS : 0,
			       regs, NULL);
}

/**
 * kvmi_vcpu_reply_page_fault_ctx_regs() - answer the PAGE_FAULT event
 * popped on @vcpu with SET_CTX: the instruction is emulated with @size
 * bytes (1 to KVMI_PF_CTX_MAX) of @ctx as what it reads from the page
 * (KVMI_PF_CTX_READ) or as its bytes (KVMI_PF_CTX_INSN). @regs, if not
 * NULL, is written first with KVMI_REPLY_SET_REGS (not RIP: the
 * instruction is emulated where it is). Needs KVMI_FEATURE_PF_CTX.
 */
int kvmi_vcpu_reply_page_fault_ctx_regs(struct kvmi_vcpu *vcpu,
					uint8_t ctx_type, const void *ctx,
					size_t size,
					const struct kvmi_x86_regs *regs)
{
	union kvmi_reply_data data;
	int r = pf_popped(vcpu);

	if (r)
		return r;
	if ((ctx_type != KVMI_PF_CTX_READ && ctx_type != KVMI_PF_CTX_INSN) ||
	    !size || size > KVMI_PF_CTX_MAX || !ctx ||
	    (regs && regs->groups & KVMI_REGS_RIP))
		return -EINVAL;
	if (!(vcpu->dom->ver.features & KVMI_FEATURE_PF_CTX))
		return -EOPNOTSUPP;
	memset(&data, 0, sizeof(data));
	data.page_fault.ctx_size = size;
	data.page_fault.ctx_type = ctx_type;
	memcpy(data.page_fault.ctx_data, ctx, size);
	return kvmi_vcpu_reply(vcpu, KVMI_ACTION_SET_CTX,
			       regs ? KVMI_REPLY_SET_REGS : 0, regs, &data);
}

/* kvmi_vcpu_reply_page_fault_ctx() - SET_CTX, registers unchanged. */
int kvmi_vcpu_reply_page_fault_ctx(struct kvmi_vcpu *vcpu, uint8_t ctx_type,
				   const void *ctx, size_t size)
{
	return kvmi_vcpu_reply_page_fault_ctx_regs(vcpu, ctx_type, ctx, size,
						   NULL);
}
