// SPDX-License-Identifier: GPL-2.0-only
/*
 * kvmi-ring: the TRAP event, an exception about to be delivered to the
 * guest (Documentation/virt/kvm/kvmi.rst, section 10.10).
 *
 * Every exception KVM delivers to the guest is queued first
 * (kvm_multiple_exception(): an intercepted exception of the guest given
 * back to it, a fault of an emulated instruction, KVMI_CMD_INJECT_EXCEPTION,
 * BREAKPOINT's ALLOW) and injected at the next VM entry. While the event
 * is enabled on a vCPU, queuing an exception makes KVM_REQ_INTROSPECTION,
 * which KVM handles before it injects the exception (KVM_REQ_EVENT): the
 * event is raised there, between two instructions, with the exception as
 * it is then about to be delivered (after any merge into a #DF), and the
 * reply delivers it, replaces it or drops it. An exception re-injected
 * because its delivery was interrupted by a VM exit was reported when it
 * was first queued and is not reported again.
 *
 * The vendor code intercepts, while the event is enabled, the exceptions
 * the guest raises itself that it would not otherwise see (on SVM #GP,
 * and #PF with nested paging), so that they are queued as well.
 *
 * Everything here runs on the vCPU's own thread (kvm_multiple_exception()
 * is called with the vCPU loaded): the state lives in struct kvmi_vcpu
 * (trap_*) and needs no lock.
 */
#include "x86.h"
#include "kvmi_int.h"

/* Matches no vector: what kvmi_exception_injected() reports as dropped. */
#define KVMI_NO_VECTOR		0xff

/**
 * kvmi_trap_wanted() - tell whether the vCPU's TRAP event is enabled
 * @vcpu: the vCPU
 *
 * Return: true while the vendor code must intercept the exceptions that
 * the guest raises itself (kvmi.rst, section 10.10).
 */
bool kvmi_trap_wanted(struct kvm_vcpu *vcpu)
{
	struct kvmi_vcpu *kv;
	bool wanted;

	rcu_read_lock();
	kv = READ_ONCE(vcpu->kvmi);
	wanted = kv && test_bit(KVMI_EVENT_TRAP, &kv->events);
	rcu_read_unlock();
	return wanted;
}

/**
 * kvmi_exception_queued() - KVM queued an exception for the guest
 * @vcpu: the vCPU, loaded, on its own thread
 *
 * If the TRAP event is enabled, the exception is reported before the
 * next VM entry injects it.
 */
void kvmi_exception_queued(struct kvm_vcpu *vcpu)
{
	struct kvmi_vcpu *kv;

	rcu_read_lock();
	kv = READ_ONCE(vcpu->kvmi);
	if (kv && test_bit(KVMI_EVENT_TRAP, &kv->events)) {
		kv->trap_due = true;
		kvm_make_request(KVM_REQ_INTROSPECTION, vcpu);
	}
	rcu_read_unlock();
}

/**
 * kvmi_trap_reply_valid() - check the data of a reply to a TRAP event
 * @rp: the reply, a kernel copy
 *
 * Only ALLOW reads the data: the exception delivered instead, which must
 * be one KVMI_CMD_INJECT_EXCEPTION accepts.
 *
 * Return: false if the reply is invalid.
 */
bool kvmi_trap_reply_valid(const struct kvmi_reply *rp)
{
	const struct kvmi_reply_trap *t = &rp->data.trap;

	if (rp->event != KVMI_EVENT_TRAP || rp->action != KVMI_ACTION_ALLOW)
		return true;
	if (t->padding[0] || t->padding[1] ||
	    (t->flags & ~KVMI_EXCEPTION_ERROR_CODE))
		return false;
	/* An exception vector; NMI is not an exception. */
	if (t->vector > 31 || t->vector == NMI_VECTOR)
		return false;
	if (t->cr2 && t->vector != PF_VECTOR)
		return false;
	/* The frame of the vector decides whether there is an error code. */
	if ((t->flags & KVMI_EXCEPTION_ERROR_CODE) &&
	    !x86_exception_has_error_code(t->vector))
		return false;
	return true;
}

/* Replace the pending exception with the one of the reply (ALLOW). */
static void kvmi_trap_replace(struct kvm_vcpu *vcpu,
			      const struct kvmi_reply_trap *t)
{
	struct kvm_queued_exception *ex = &vcpu->arch.exception;
	bool has_error = x86_exception_has_error_code(t->vector);

	/* A #DB keeps its DR6 payload if it stays a #DB. */
	if (t->vector == PF_VECTOR) {
		ex->has_payload = true;
		ex->payload = t->cr2;
	} else if (t->vector != ex->vector) {
		ex->has_payload = false;
		ex->payload = 0;
	}
	ex->vector = t->vector;
	ex->has_error_code = has_error;
	ex->error_code = (t->flags & KVMI_EXCEPTION_ERROR_CODE) ?
			 t->error_code : 0;
}

/* Raise the event for the pending exception; returns the action. */
static int kvmi_trap_raise(struct kvm_vcpu *vcpu, struct kvmi_vcpu *kv)
{
	struct kvm_queued_exception *ex = &vcpu->arch.exception;
	union kvmi_event_data data = {};

	data.trap.vector = ex->vector;
	/* Real mode exceptions push no error code (kvm_inject_exception()). */
	if (ex->has_error_code && is_protmode(vcpu)) {
		data.trap.flags = KVMI_EXCEPTION_ERROR_CODE;
		data.trap.error_code = ex->error_code;
	}
	if (ex->vector == PF_VECTOR)
		data.trap.cr2 = ex->has_payload ? ex->payload : vcpu->arch.cr2;
	return kvmi_request_event(vcpu, kv, KVMI_EVENT_TRAP, &data);
}

/**
 * kvmi_trap_event() - raise the TRAP event, if an exception is pending
 * @vcpu: the vCPU, on its own thread, at KVM_REQ_INTROSPECTION, before
 *	KVM injects its pending exception
 * @kv: its introspection state
 *
 * Also goes back to waiting for a TRAP event a signal interrupted.
 *
 * Return: 1 to go on, 0 to exit to userspace (CRASH), -EINTR for a
 * signal (the event stays pending, and so does the exception).
 */
int kvmi_trap_event(struct kvm_vcpu *vcpu, struct kvmi_vcpu *kv)
{
	struct kvm_queued_exception *ex = &vcpu->arch.exception;
	int action;

	if (kv->pending_id == KVMI_EVENT_TRAP) {
		action = kvmi_request_event(vcpu, kv, 0, NULL);
	} else if (!kv->pending_id && kv->trap_due) {
		kv->trap_due = false;
		/* Not pending: re-injected, or an exit to L1 (nested). */
		if (!ex->pending || !test_bit(KVMI_EVENT_TRAP, &kv->events))
			return 1;
		action = kvmi_trap_raise(vcpu, kv);
	} else {
		return 1;
	}
	if (action < 0)
		return action;
	/* The VMM may have changed the exception while the wait was out. */
	if (!ex->pending)
		return 1;

	switch (action) {
	case KVMI_ACTION_ALLOW:
		kvmi_trap_replace(vcpu, &kv->rcopy.data.trap);
		return 1;
	case KVMI_ACTION_DENY:
		ex->pending = false;
		ex->has_payload = false;
		ex->payload = 0;
		/* An exception of KVMI_CMD_INJECT_EXCEPTION is dropped. */
		kvmi_exception_injected(vcpu, KVMI_NO_VECTOR);
		return 1;
	case KVMI_ACTION_CRASH:
		memset(&vcpu->run->system_event, 0,
		       sizeof(vcpu->run->system_event));
		vcpu->run->exit_reason = KVM_EXIT_SYSTEM_EVENT;
		vcpu->run->system_event.type = KVM_SYSTEM_EVENT_CRASH;
		return 0;
	default:
		return 1;
	}
}
