/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * kvmi-ring: what common KVM code tells the zero-copy mappings of guest
 * pages (virt/kvm/introspection/kvmi_sva.c) about the guest's memory.
 */
#ifndef __LINUX_KVMI_SVA_H
#define __LINUX_KVMI_SVA_H

struct kvm;
struct kvm_memory_slot;
struct mmu_notifier_range;

#ifdef CONFIG_KVM_INTROSPECTION

void kvmi_sva_invalidate(struct kvm *kvm,
			 const struct mmu_notifier_range *range);
void kvmi_sva_memslot_gone(struct kvm *kvm,
			   const struct kvm_memory_slot *slot);

#else

static inline void kvmi_sva_invalidate(struct kvm *kvm,
				       const struct mmu_notifier_range *range)
{
}

static inline void kvmi_sva_memslot_gone(struct kvm *kvm,
					 const struct kvm_memory_slot *slot)
{
}

#endif /* CONFIG_KVM_INTROSPECTION */

#endif /* __LINUX_KVMI_SVA_H */
