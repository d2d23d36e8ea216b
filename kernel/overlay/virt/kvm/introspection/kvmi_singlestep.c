// SPDX-License-Identifier: GPL-2.0-only
/*
 * kvmi-ring: single-stepping a vCPU for the introspection tool
 * (Documentation/virt/kvm/kvmi.rst, sections 10.9 and 11.11).
 *
 * The tool asks for steps with KVMI_CMD_CONTROL_SINGLESTEP (every
 * instruction, until turned off) or with KVMI_REPLY_SINGLESTEP (one
 * instruction after the reply's action). Both only set what the vCPU
 * wants; the vCPU arms or disarms the vendor's mechanism (TF and the #DB
 * intercept on SVM, the monitor trap flag on VMX) at KVM_REQ_INTROSPECTION,
 * right before it enters the guest, so that the step covers one guest
 * instruction and nothing KVM does to finish the event. The vendor code,
 * and KVM when it completes or emulates an instruction itself, report
 * the end of a step with kvmi_singlestep_done(); the SINGLESTEP event is
 * raised at the next KVM_REQ_INTROSPECTION, between two instructions.
 * Interrupts and NMIs are not injected while a step is armed.
 *
 * Everything here runs on the vCPU's own thread: the state lives in
 * struct kvmi_vcpu (ss_*) and needs no lock.
 */
#include "kvmi_int.h"

/**
 * kvmi_singlestep_supported() - tell whether the CPU can step a guest
 *
 * Return: true if the vendor module steps guests without their seeing it.
 */
bool kvmi_singlestep_supported(void)
{
	return kvm_x86_ops.kvmi_singlestep;
}

/* The reply flag and the command are available to this VM's tool. */
static bool kvmi_singlestep_allowed(struct kvm *kvm)
{
	return kvmi_singlestep_supported() &&
	       kvmi_event_allowed(kvm, KVMI_EVENT_SINGLESTEP);
}

/**
 * kvmi_singlestep_reply_valid() - check KVMI_REPLY_SINGLESTEP in a reply
 * @vcpu: the vCPU, on its own thread
 * @flags: the reply's flags
 *
 * Return: false if the flag is set and the VM can't be single-stepped.
 */
bool kvmi_singlestep_reply_valid(struct kvm_vcpu *vcpu, u32 flags)
{
	return !(flags & KVMI_REPLY_SINGLESTEP) ||
	       kvmi_singlestep_allowed(vcpu->kvm);
}

/**
 * kvmi_singlestep_reply() - a valid reply asks for one step
 * @vcpu: the vCPU, on its own thread
 * @kv: its introspection state
 */
void kvmi_singlestep_reply(struct kvm_vcpu *vcpu, struct kvmi_vcpu *kv)
{
	kv->ss_once = true;
	kvm_make_request(KVM_REQ_INTROSPECTION, vcpu);
}

/**
 * kvmi_cmd_control_singlestep() - KVMI_CMD_CONTROL_SINGLESTEP
 * @vcpu: the vCPU, on its own thread, waiting in an event
 * @kv: its introspection state
 * @c: the command's arguments, a kernel copy
 *
 * Return: 0, -EINVAL for bad arguments, -EPERM if the VMM denies the
 * SINGLESTEP event, -EOPNOTSUPP if the CPU can't step the guest.
 */
int kvmi_cmd_control_singlestep(struct kvm_vcpu *vcpu, struct kvmi_vcpu *kv,
				const struct kvmi_cmd_control_singlestep *c)
{
	if (memchr_inv(c->padding, 0, sizeof(c->padding)) || c->enable > 1)
		return -EINVAL;
	if (!kvmi_event_allowed(vcpu->kvm, KVMI_EVENT_SINGLESTEP))
		return -EPERM;
	if (!kvmi_singlestep_supported())
		return -EOPNOTSUPP;
	kv->ss_on = c->enable;
	kvm_make_request(KVM_REQ_INTROSPECTION, vcpu);
	return 0;
}

/**
 * kvmi_singlestep_active() - tell whether a step is armed
 * @vcpu: the vCPU, on its own thread
 *
 * Return: true while the vCPU steps for the introspection; KVM then
 * injects no interrupt, so that the step is the guest's next instruction.
 */
bool kvmi_singlestep_active(struct kvm_vcpu *vcpu)
{
	struct kvmi_vcpu *kv;
	bool active;

	rcu_read_lock();
	kv = READ_ONCE(vcpu->kvmi);
	active = kv && kv->ss_armed;
	rcu_read_unlock();
	return active;
}

/**
 * kvmi_singlestep_done() - the vCPU finished a guest instruction
 * @vcpu: the vCPU, on its own thread, in an exit handler
 *
 * Called by the vendor's step trap and by KVM when it completes (skips or
 * emulates) an instruction. If a step is armed, the SINGLESTEP event is
 * raised before the next VM entry.
 */
void kvmi_singlestep_done(struct kvm_vcpu *vcpu)
{
	struct kvmi_vcpu *kv;

	rcu_read_lock();
	kv = READ_ONCE(vcpu->kvmi);
	if (kv && kv->ss_armed && !kv->ss_done) {
		kv->ss_done = true;
		kvm_make_request(KVM_REQ_INTROSPECTION, vcpu);
	}
	rcu_read_unlock();
}

/**
 * kvmi_singlestep_event() - raise the SINGLESTEP event, if a step ended
 * @vcpu: the vCPU, on its own thread, at KVM_REQ_INTROSPECTION
 * @kv: its introspection state
 *
 * Also goes back to waiting for a SINGLESTEP event a signal interrupted.
 *
 * Return: 1 to go on, 0 to exit to userspace (CRASH), -EINTR for a
 * signal (the event stays pending).
 */
int kvmi_singlestep_event(struct kvm_vcpu *vcpu, struct kvmi_vcpu *kv)
{
	union kvmi_event_data data = {};
	int action;

	if (kv->pending_id == KVMI_EVENT_SINGLESTEP) {
		action = kvmi_request_event(vcpu, kv, 0, NULL);
	} else if (!kv->pending_id && (kv->ss_done || kv->ss_failed)) {
		data.singlestep.failed = kv->ss_failed;
		kv->ss_done = false;
		kv->ss_failed = false;
		/* The reply may ask for the next step. */
		kv->ss_once = false;
		action = kvmi_request_event(vcpu, kv, KVMI_EVENT_SINGLESTEP,
					    &data);
	} else {
		return 1;
	}
	if (action < 0)
		return action;
	if (action == KVMI_ACTION_CRASH) {
		memset(&vcpu->run->system_event, 0,
		       sizeof(vcpu->run->system_event));
		vcpu->run->exit_reason = KVM_EXIT_SYSTEM_EVENT;
		vcpu->run->system_event.type = KVM_SYSTEM_EVENT_CRASH;
		return 0;
	}
	return 1;
}

/**
 * kvmi_singlestep_arm() - arm or disarm the step before a VM entry
 * @vcpu: the vCPU, on its own thread, at KVM_REQ_INTROSPECTION
 * @kv: its introspection state, or NULL once introspection is gone
 *
 * If the vendor can't step the vCPU now, the tool gets a SINGLESTEP event
 * with failed set, and stepping is off.
 */
void kvmi_singlestep_arm(struct kvm_vcpu *vcpu, struct kvmi_vcpu *kv)
{
	bool want;

	if (!kv) {
		kvm_x86_call(kvmi_singlestep)(vcpu, false);
		return;
	}
	want = kv->ss_on || kv->ss_once;
	if (want == kv->ss_armed)
		return;
	if (!want) {
		kvm_x86_call(kvmi_singlestep)(vcpu, false);
		kv->ss_armed = false;
		/* The interrupts held back while stepping. */
		kvm_make_request(KVM_REQ_EVENT, vcpu);
		return;
	}
	if (kvm_x86_call(kvmi_singlestep)(vcpu, true)) {
		kv->ss_armed = true;
		return;
	}
	kv->ss_on = false;
	kv->ss_once = false;
	kv->ss_failed = true;
	kvm_make_request(KVM_REQ_INTROSPECTION, vcpu);
}
