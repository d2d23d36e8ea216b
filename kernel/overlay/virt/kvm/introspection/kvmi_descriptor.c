// SPDX-License-Identifier: GPL-2.0-only
/*
 * kvmi-ring: the DESCRIPTOR event, a load or store of IDTR, GDTR, LDTR or
 * TR by the guest (Documentation/virt/kvm/kvmi.rst, section 10.12).
 *
 * While the event is enabled on a vCPU, the vendor code intercepts LIDT,
 * LGDT, LLDT, LTR, SIDT, SGDT, SLDT and STR (SVM's descriptor-table
 * intercepts, VMX's descriptor-table exiting) and reports the exit with
 * kvmi_descriptor_exit(), RIP still at the instruction. The event is
 * raised at the KVM_REQ_INTROSPECTION that follows, between two
 * instructions, where the wait can be interrupted by a signal and resumed;
 * the reply's action is applied there: the instruction is emulated
 * (CONTINUE), skipped (DENY) or left to execute again (RETRY).
 *
 * Everything here runs on the vCPU's own thread: the state lives in
 * struct kvmi_vcpu (desc_*) and needs no lock.
 */
#include "x86.h"
#include "kvmi_int.h"

/**
 * kvmi_descriptor_wanted() - tell whether the vCPU's DESCRIPTOR event is on
 * @vcpu: the vCPU
 *
 * Return: true while the vendor code must intercept the loads and stores
 * of the descriptor-table registers.
 */
bool kvmi_descriptor_wanted(struct kvm_vcpu *vcpu)
{
	struct kvmi_vcpu *kv;
	bool wanted;

	rcu_read_lock();
	kv = READ_ONCE(vcpu->kvmi);
	wanted = kv && test_bit(KVMI_EVENT_DESCRIPTOR, &kv->events);
	rcu_read_unlock();
	return wanted;
}

/**
 * kvmi_descriptor_exit() - the guest loads or stores a descriptor table
 * @vcpu: the vCPU, on its own thread, in its exit handler, RIP at the
 *	instruction
 * @descriptor: KVMI_DESC_IDTR, KVMI_DESC_GDTR, KVMI_DESC_LDTR or KVMI_DESC_TR
 * @load: LIDT, LGDT, LLDT or LTR, rather than a store
 *
 * Return: as an exit handler. The event is raised before the next VM
 * entry; if the event was disabled since the exit, the instruction is
 * emulated at once.
 */
int kvmi_descriptor_exit(struct kvm_vcpu *vcpu, u8 descriptor, bool load)
{
	struct kvmi_vcpu *kv;
	bool wanted;

	rcu_read_lock();
	kv = READ_ONCE(vcpu->kvmi);
	wanted = kv && test_bit(KVMI_EVENT_DESCRIPTOR, &kv->events);
	if (wanted) {
		kv->desc.descriptor = descriptor;
		kv->desc.flags = load ? KVMI_DESC_LOAD : 0;
		kv->desc_rip = kvm_rip_read(vcpu);
		kv->desc_due = true;
		kvm_make_request(KVM_REQ_INTROSPECTION, vcpu);
	}
	rcu_read_unlock();
	if (!wanted)
		return kvm_emulate_instruction(vcpu, 0);
	return 1;
}

/**
 * kvmi_descriptor_reply_valid() - check a reply to a DESCRIPTOR event
 * @rp: the reply, a kernel copy
 *
 * CONTINUE executes the instruction where it is and DENY skips it: with
 * either, the reply can't move RIP.
 *
 * Return: false if the reply is invalid.
 */
bool kvmi_descriptor_reply_valid(const struct kvmi_reply *rp)
{
	if (rp->event != KVMI_EVENT_DESCRIPTOR ||
	    !(rp->flags & KVMI_REPLY_SET_REGS) ||
	    !(rp->regs.groups & KVMI_REGS_RIP))
		return true;
	return rp->action != KVMI_ACTION_CONTINUE &&
	       rp->action != KVMI_ACTION_DENY;
}

/**
 * kvmi_descriptor_event() - raise the DESCRIPTOR event, if one is due
 * @vcpu: the vCPU, on its own thread, at KVM_REQ_INTROSPECTION
 * @kv: its introspection state
 *
 * Also goes back to waiting for a DESCRIPTOR event a signal interrupted.
 * If the VMM moved RIP away from the instruction since the exit, or the
 * event was disabled meanwhile, no event is raised (or no action taken):
 * the guest resumes where it is, and an instruction still there executes
 * again.
 *
 * Return: 1 to go on, 0 to exit to userspace (CRASH, or the emulation
 * needs the VMM), -EINTR for a signal (the event stays pending).
 */
int kvmi_descriptor_event(struct kvm_vcpu *vcpu, struct kvmi_vcpu *kv)
{
	union kvmi_event_data data = {};
	int action;

	if (kv->pending_id == KVMI_EVENT_DESCRIPTOR) {
		action = kvmi_request_event(vcpu, kv, 0, NULL);
	} else if (!kv->pending_id && kv->desc_due) {
		kv->desc_due = false;
		if (kvm_rip_read(vcpu) != kv->desc_rip ||
		    !test_bit(KVMI_EVENT_DESCRIPTOR, &kv->events))
			return 1;
		data.descriptor = kv->desc;
		action = kvmi_request_event(vcpu, kv, KVMI_EVENT_DESCRIPTOR,
					    &data);
	} else {
		return 1;
	}
	if (action < 0)
		return action;
	/* The VMM may have moved RIP while a signal had the wait out. */
	if ((action == KVMI_ACTION_CONTINUE || action == KVMI_ACTION_DENY) &&
	    kvm_rip_read(vcpu) != kv->desc_rip)
		return 1;

	switch (action) {
	case KVMI_ACTION_DENY:
		return kvm_skip_emulated_instruction(vcpu);
	case KVMI_ACTION_RETRY:
		return 1;
	case KVMI_ACTION_CRASH:
		memset(&vcpu->run->system_event, 0,
		       sizeof(vcpu->run->system_event));
		vcpu->run->exit_reason = KVM_EXIT_SYSTEM_EVENT;
		vcpu->run->system_event.type = KVM_SYSTEM_EVENT_CRASH;
		return 0;
	default:
		return kvm_emulate_instruction(vcpu, 0);
	}
}
