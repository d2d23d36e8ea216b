/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * kvmi-ring: the calls common KVM code makes into guest discovery, the
 * control device /dev/kvmi (virt/kvm/introspection/kvmi_discovery.c).
 * Without CONFIG_KVM_INTROSPECTION they compile to nothing.
 */
#ifndef __LINUX_KVMI_DISCOVERY_H
#define __LINUX_KVMI_DISCOVERY_H

#include <linux/compiler_types.h>
#include <linux/errno.h>
#include <linux/types.h>

struct kvm;

#ifdef CONFIG_KVM_INTROSPECTION

void kvmi_discovery_init(void);
void kvmi_discovery_exit(void);
void kvmi_discovery_vcpu_created(struct kvm *kvm);
void kvmi_discovery_destroy_vm(struct kvm *kvm);
int kvmi_discovery_vm_ioctl(struct kvm *kvm, unsigned int ioctl,
			    void __user *argp);

#else

static inline void kvmi_discovery_init(void)
{
}

static inline void kvmi_discovery_exit(void)
{
}

static inline void kvmi_discovery_vcpu_created(struct kvm *kvm)
{
}

static inline void kvmi_discovery_destroy_vm(struct kvm *kvm)
{
}

static inline int kvmi_discovery_vm_ioctl(struct kvm *kvm, unsigned int ioctl,
					  void __user *argp)
{
	return -ENOTTY;
}

#endif /* CONFIG_KVM_INTROSPECTION */

#endif /* __LINUX_KVMI_DISCOVERY_H */
