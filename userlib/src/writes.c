// SPDX-License-Identifier: LGPL-2.1-or-later OR MIT
/*
 * The register-write events: CR0/CR3/CR4 writes and MSR writes (since
 * 1.2), enabled per register, and XSETBV (since 1.3); typed access to the
 * event's data, NULL for a record the kernel never writes, and the
 * replies each event takes.
 */
#include <string.h>

#include "internal.h"

/* The registers the CR event can watch (kvmi.rst 10.6). */
static bool cr_known(uint32_t cr)
{
	return cr == 0 || cr == 3 || cr == 4;
}

/* The MSRs the MSR event can watch: the MSR bitmaps' ranges (10.7). */
static bool msr_known(uint32_t msr)
{
	return msr <= 0x1fff || (msr >= 0xc0000000 && msr <= 0xc0001fff);
}

/**
 * kvmi_dom_control_cr() - report (or stop reporting) the guest's writes
 * of control register @cr (0, 3 or 4) on @vcpu or on KVMI_ALL_VCPUS.
 * The other registers keep their setting.
 */
int kvmi_dom_control_cr(struct kvmi_dom *dom, uint32_t vcpu, uint32_t cr,
			int enable)
{
	if (!cr_known(cr))
		return -EINVAL;
	return kvmi_dom_control_event(dom, vcpu, KVMI_EVENT_CR, enable, cr);
}

/** kvmi_dom_control_msr() - as kvmi_dom_control_cr(), for MSR @msr. */
int kvmi_dom_control_msr(struct kvmi_dom *dom, uint32_t vcpu, uint32_t msr,
			 int enable)
{
	if (!msr_known(msr))
		return -EINVAL;
	return kvmi_dom_control_event(dom, vcpu, KVMI_EVENT_MSR, enable, msr);
}

/*
 * kvmi_event_as_cr() - @ev's CR data, or NULL if @ev is not a CR event or
 * its data is malformed (a register the event does not watch, padding
 * not 0): the tool reads nothing the kernel did not write.
 */
const struct kvmi_event_cr *kvmi_event_as_cr(const struct kvmi_event *ev)
{
	if (!ev || ev->id != KVMI_EVENT_CR)
		return NULL;
	if (!cr_known(ev->data.cr.cr) || ev->data.cr.padding)
		return NULL;
	return &ev->data.cr;
}

/* kvmi_event_as_msr() - as kvmi_event_as_cr(), for an MSR event. */
const struct kvmi_event_msr *kvmi_event_as_msr(const struct kvmi_event *ev)
{
	if (!ev || ev->id != KVMI_EVENT_MSR)
		return NULL;
	if (!msr_known(ev->data.msr.msr) || ev->data.msr.padding)
		return NULL;
	return &ev->data.msr;
}

/*
 * kvmi_event_as_xsetbv() - as kvmi_event_as_cr(), for an XSETBV event
 * (any XCR number: the guest's ECX; an XCR other than XCR0 has
 * old_value 0).
 */
const struct kvmi_event_xsetbv *
kvmi_event_as_xsetbv(const struct kvmi_event *ev)
{
	if (!ev || ev->id != KVMI_EVENT_XSETBV || ev->data.xsetbv.padding)
		return NULL;
	return &ev->data.xsetbv;
}

/*
 * A reply to the write event @id popped on @vcpu. Refused before anything
 * is written (the event stays pending): another event popped, an action
 * the write events don't take, SET_REGS selecting RIP (KVM completes the
 * instruction itself).
 */
static int reply_write(struct kvmi_vcpu *vcpu, uint16_t id, uint8_t action,
		       uint64_t new_value, const struct kvmi_x86_regs *regs)
{
	union kvmi_reply_data data;

	if (!vcpu->cur)
		return -ENOENT;
	if (vcpu->cur_id != id)
		return -EINVAL;
	if (action != KVMI_ACTION_CONTINUE && action != KVMI_ACTION_ALLOW &&
	    action != KVMI_ACTION_DENY && action != KVMI_ACTION_CRASH)
		return -EINVAL;
	if (regs && regs->groups & KVMI_REGS_RIP)
		return -EINVAL;
	memset(&data, 0, sizeof(data));
	if (id == KVMI_EVENT_CR)
		data.cr.new_value = new_value;
	else
		data.msr.new_value = new_value;
	return kvmi_vcpu_reply(vcpu, action, regs ? KVMI_REPLY_SET_REGS : 0,
			       regs, &data);
}

/**
 * kvmi_vcpu_reply_cr() - answer the CR event popped on @vcpu.
 * @new_value: the value ALLOW writes (ignored by the other actions).
 * @regs: NULL, or the groups to write first (not KVMI_REGS_RIP).
 */
int kvmi_vcpu_reply_cr(struct kvmi_vcpu *vcpu, uint8_t action,
		       uint64_t new_value, const struct kvmi_x86_regs *regs)
{
	return reply_write(vcpu, KVMI_EVENT_CR, action, new_value, regs);
}

/** kvmi_vcpu_reply_msr() - as kvmi_vcpu_reply_cr(), for an MSR event. */
int kvmi_vcpu_reply_msr(struct kvmi_vcpu *vcpu, uint8_t action,
			uint64_t new_value, const struct kvmi_x86_regs *regs)
{
	return reply_write(vcpu, KVMI_EVENT_MSR, action, new_value, regs);
}

/**
 * kvmi_vcpu_reply_xsetbv() - answer the XSETBV event popped on @vcpu:
 * CONTINUE (the XSETBV executes, with the registers as @regs left them
 * if @regs is not NULL; with KVMI_REGS_RIP, RIP is not moved past it) or
 * CRASH. Refused before anything is written: another event, another
 * action, registers the kernel does not have.
 */
int kvmi_vcpu_reply_xsetbv(struct kvmi_vcpu *vcpu, uint8_t action,
			   const struct kvmi_x86_regs *regs)
{
	if (!vcpu->cur)
		return -ENOENT;
	if (vcpu->cur_id != KVMI_EVENT_XSETBV)
		return -EINVAL;
	if (action != KVMI_ACTION_CONTINUE && action != KVMI_ACTION_CRASH)
		return -EINVAL;
	return kvmi_vcpu_reply(vcpu, action, regs ? KVMI_REPLY_SET_REGS : 0,
			       regs, NULL);
}
