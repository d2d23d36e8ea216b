// SPDX-License-Identifier: GPL-2.0-only
/*
 * kvmi-ring: the VMM's settings for introspection (kvmi.rst, sections 6.2
 * to 6.4 and 14): the allow-lists of commands and events, the reply
 * deadline, and the unhook request.
 *
 * These are VM ioctls, reserved to the VM's creator; the settings live in
 * struct kvm, written under kvm->lock, and outlive any one introspection
 * fd. The introspection core reads them without a lock: each word is
 * read once, with READ_ONCE.
 */
#include <linux/uaccess.h>

#include "kvmi_int.h"

static_assert(sizeof(struct kvmi_allowed) == 72);
static_assert(sizeof(struct kvmi_deadline) == 16);
static_assert(sizeof(struct kvmi_unhook) == 16);
static_assert(ARRAY_SIZE(((struct kvmi_vm_settings *)0)->commands) ==
	      KVMI_ALLOWED_WORDS);

/* The commands no allow-list can deny (section 14). */
static bool kvmi_command_undeniable(u32 id)
{
	switch (id) {
	case KVMI_CMD_GET_VERSION:
	case KVMI_CMD_GET_LAYOUT:
	case KVMI_CMD_CHECK_COMMAND:
	case KVMI_CMD_CHECK_EVENT:
	case KVMI_CMD_SET_VCPU_DOORBELLS:
	case KVMI_CMD_SET_WAIT_MODE:
		return true;
	default:
		return false;
	}
}

static bool kvmi_event_undeniable(u32 id)
{
	return id == KVMI_EVENT_UNHOOK || id == KVMI_EVENT_PAUSE;
}

static bool kvmi_bit_allowed(struct kvm *kvm, const u64 *map, u32 id)
{
	/* Pairs with the store-release of allowed_set. */
	if (!smp_load_acquire(&kvm->kvmi_settings.allowed_set))
		return true;
	if (id >= KVMI_ALLOWED_WORDS * 64)
		return false;
	return READ_ONCE(map[id / 64]) & BIT_ULL(id % 64);
}

/**
 * kvmi_command_allowed() - tell whether the VMM allows a command
 * @kvm: the VM
 * @id: the KVMI_CMD_* id (ioctl number or vCPU command)
 *
 * Return: true if the allow-list has it, or can't deny it.
 */
bool kvmi_command_allowed(struct kvm *kvm, u32 id)
{
	return kvmi_command_undeniable(id) ||
	       kvmi_bit_allowed(kvm, kvm->kvmi_settings.commands, id);
}

/**
 * kvmi_event_allowed() - tell whether the VMM allows an event
 * @kvm: the VM
 * @id: the KVMI_EVENT_* id
 *
 * Return: true if the allow-list has it, or can't deny it.
 */
bool kvmi_event_allowed(struct kvm *kvm, u32 id)
{
	return kvmi_event_undeniable(id) ||
	       kvmi_bit_allowed(kvm, kvm->kvmi_settings.events, id);
}

/* The CR and MSR events are enabled per register. */
static void kvmi_drop_regs(unsigned long *cr_mask, struct kvmi_msr_set *msrs,
			   u32 id)
{
	u32 i;

	if (id == KVMI_EVENT_CR) {
		for (i = 0; i < BITS_PER_LONG; i++)
			clear_bit(i, cr_mask);
	} else if (id == KVMI_EVENT_MSR) {
		for (i = 0; i < KVMI_MSR_RANGE; i++) {
			clear_bit(i, msrs->low);
			clear_bit(i, msrs->high);
		}
	}
}

/* Disable, on every vCPU, the events the new allow-list drops. */
static void kvmi_drop_events(struct kvm *kvm, struct kvmi *kvmi,
			     const struct kvmi_allowed *al)
{
	struct kvmi_vcpu *kv;
	u32 id, i;

	lockdep_assert_held(&kvm->lock);

	for (id = 0; id < BITS_PER_LONG; id++) {
		if (al->events[id / 64] & BIT_ULL(id % 64))
			continue;
		clear_bit(id, &kvmi->events);
		kvmi_drop_regs(&kvmi->cr_mask, &kvmi->msrs, id);
		for (i = 0; i < kvmi->max_vcpus; i++) {
			kv = kvmi_vcpu_by_idx(kvmi, i);
			if (kv) {
				clear_bit(id, &kv->events);
				kvmi_drop_regs(&kv->cr_mask, &kv->msrs, id);
			}
		}
	}
	/* The intercepts may go; in effect when the ioctl returns. */
	kvm_make_all_cpus_request(kvm, KVM_REQ_INTROSPECTION |
				  KVM_REQUEST_WAIT);
	kvm_make_all_cpus_request(kvm, KVM_REQ_MSR_FILTER_CHANGED |
				  KVM_REQUEST_WAIT);
}

/* KVM_INTROSPECTION_SET_ALLOWED */
static int kvmi_set_allowed(struct kvm *kvm, void __user *argp)
{
	struct kvmi_vm_settings *set = &kvm->kvmi_settings;
	struct kvmi_allowed al;
	int i, r = 0;

	if (copy_from_user(&al, argp, sizeof(al)))
		return -EFAULT;
	if (al.flags || al.padding)
		return -EINVAL;

	mutex_lock(&kvm->lock);
	if (kvm->kvmi && set->allowed_set) {
		/* While open, the lists may only shrink. */
		for (i = 0; i < KVMI_ALLOWED_WORDS; i++)
			if ((al.commands[i] & ~set->commands[i]) ||
			    (al.events[i] & ~set->events[i]))
				r = -EPERM;
		if (r)
			goto out;
	}
	for (i = 0; i < KVMI_ALLOWED_WORDS; i++) {
		WRITE_ONCE(set->commands[i], al.commands[i]);
		WRITE_ONCE(set->events[i], al.events[i]);
	}
	/* Pairs with the load-acquire in kvmi_bit_allowed(). */
	smp_store_release(&set->allowed_set, true);
	if (kvm->kvmi)
		kvmi_drop_events(kvm, kvm->kvmi, &al);
out:
	mutex_unlock(&kvm->lock);
	return r;
}

/* KVM_INTROSPECTION_SET_DEADLINE: for the events published from now on. */
static int kvmi_set_deadline(struct kvm *kvm, void __user *argp)
{
	struct kvmi_deadline dl;

	if (copy_from_user(&dl, argp, sizeof(dl)))
		return -EFAULT;
	if (dl.flags || dl.padding)
		return -EINVAL;
	WRITE_ONCE(kvm->kvmi_settings.reply_ns, dl.reply_ns);
	return 0;
}

/**
 * kvmi_vm_ioctl() - the introspection ioctls of the VM fd, but OPEN
 * @kvm: the VM, whose creator calls
 * @ioctl: KVM_INTROSPECTION_SET_ALLOWED, _SET_DEADLINE or _UNHOOK
 * @argp: its argument
 *
 * Return: 0 or -errno (kvmi.rst, sections 6.2 to 6.4).
 */
int kvmi_vm_ioctl(struct kvm *kvm, unsigned int ioctl, void __user *argp)
{
	switch (ioctl) {
	case KVM_INTROSPECTION_SET_ALLOWED:
		return kvmi_set_allowed(kvm, argp);
	case KVM_INTROSPECTION_SET_DEADLINE:
		return kvmi_set_deadline(kvm, argp);
	case KVM_INTROSPECTION_UNHOOK:
		return kvmi_unhook(kvm, argp);
	default:
		return -ENOTTY;
	}
}
