/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * kvmi-ring: the calls common KVM code makes into the introspection core
 * (virt/kvm/introspection/). Without CONFIG_KVM_INTROSPECTION they compile
 * to nothing.
 */
#ifndef __LINUX_KVMI_HOST_H
#define __LINUX_KVMI_HOST_H

#include <linux/compiler_types.h>
#include <linux/types.h>
#include <linux/errno.h>
#include <uapi/linux/kvmi.h>

struct kvm;
struct kvm_vcpu;

/* Every access: a page the introspection tool doesn't restrict. */
#define KVMI_PAGE_ACCESS_RWX \
	(KVMI_PAGE_ACCESS_R | KVMI_PAGE_ACCESS_W | KVMI_PAGE_ACCESS_X)

/* kvmi_page_fault(): what the MMU does with the fault. */
enum {
	KVMI_PF_MAP,		/* not restricted: map the page */
	KVMI_PF_EMULATE,	/* emulate the instruction */
	KVMI_PF_RETRY,		/* re-enter the guest */
};

#ifdef CONFIG_KVM_INTROSPECTION

int kvmi_check_extension(struct kvm *kvm);
int kvmi_ioctl_open(struct kvm *kvm, void __user *argp);
int kvmi_vm_ioctl(struct kvm *kvm, unsigned int ioctl, void __user *argp);
int kvmi_vcpu_create(struct kvm_vcpu *vcpu);
void kvmi_vcpu_online(struct kvm_vcpu *vcpu);
void kvmi_vcpu_free(struct kvm_vcpu *vcpu);
void kvmi_destroy_vm(struct kvm *kvm);
bool kvmi_hypercall_wanted(struct kvm_vcpu *vcpu, unsigned long nr,
			   int op_64_bit, int cpl);
int kvmi_hypercall_event(struct kvm_vcpu *vcpu);
int kvmi_vcpu_request(struct kvm_vcpu *vcpu);
bool kvmi_breakpoint_wanted(struct kvm_vcpu *vcpu);
int kvmi_breakpoint_event(struct kvm_vcpu *vcpu, u8 insn_len);
bool kvmi_cr_write_wanted(struct kvm_vcpu *vcpu, u32 cr);
bool kvmi_cr_write_event(struct kvm_vcpu *vcpu, u32 cr, u64 old_value,
			 unsigned long *value);
bool kvmi_msr_write_wanted(struct kvm_vcpu *vcpu, u32 msr);
bool kvmi_msr_write_event(struct kvm_vcpu *vcpu, u32 msr, u64 *value);
bool kvmi_xsetbv_wanted(struct kvm_vcpu *vcpu);
int kvmi_xsetbv_event(struct kvm_vcpu *vcpu);
void kvmi_exception_injected(struct kvm_vcpu *vcpu, u8 vector);
bool kvmi_page_access_restricted(struct kvm *kvm);
u8 kvmi_page_access_allowed(struct kvm *kvm, u64 gfn, u64 nr);
int kvmi_page_fault(struct kvm_vcpu *vcpu, u64 gpa, bool write, bool exec);
bool kvmi_discard_writes(struct kvm_vcpu *vcpu);
void kvmi_page_fault_emulated(struct kvm_vcpu *vcpu);
int kvmi_pf_ctx_insn(struct kvm_vcpu *vcpu, void *buf, int size);
int kvmi_pf_ctx_read(struct kvm_vcpu *vcpu, u64 gpa, void *val, int bytes);

bool kvmi_singlestep_active(struct kvm_vcpu *vcpu);
void kvmi_singlestep_done(struct kvm_vcpu *vcpu);

bool kvmi_trap_wanted(struct kvm_vcpu *vcpu);
void kvmi_exception_queued(struct kvm_vcpu *vcpu);
bool kvmi_descriptor_wanted(struct kvm_vcpu *vcpu);
int kvmi_descriptor_exit(struct kvm_vcpu *vcpu, u8 descriptor, bool load);

#else

static inline int kvmi_check_extension(struct kvm *kvm)
{
	return 0;
}

static inline int kvmi_ioctl_open(struct kvm *kvm, void __user *argp)
{
	return -ENOTTY;
}

static inline int kvmi_vm_ioctl(struct kvm *kvm, unsigned int ioctl,
				void __user *argp)
{
	return -ENOTTY;
}

static inline int kvmi_vcpu_create(struct kvm_vcpu *vcpu)
{
	return 0;
}

static inline void kvmi_vcpu_online(struct kvm_vcpu *vcpu)
{
}

static inline void kvmi_vcpu_free(struct kvm_vcpu *vcpu)
{
}

static inline void kvmi_destroy_vm(struct kvm *kvm)
{
}

static inline bool kvmi_hypercall_wanted(struct kvm_vcpu *vcpu,
					 unsigned long nr, int op_64_bit,
					 int cpl)
{
	return false;
}

static inline int kvmi_hypercall_event(struct kvm_vcpu *vcpu)
{
	return 1;
}

static inline int kvmi_vcpu_request(struct kvm_vcpu *vcpu)
{
	return 1;
}

static inline bool kvmi_breakpoint_wanted(struct kvm_vcpu *vcpu)
{
	return false;
}

static inline int kvmi_breakpoint_event(struct kvm_vcpu *vcpu, u8 insn_len)
{
	return 1;
}

static inline bool kvmi_cr_write_wanted(struct kvm_vcpu *vcpu, u32 cr)
{
	return false;
}

static inline bool kvmi_cr_write_event(struct kvm_vcpu *vcpu, u32 cr,
				       u64 old_value, unsigned long *value)
{
	return true;
}

static inline bool kvmi_msr_write_wanted(struct kvm_vcpu *vcpu, u32 msr)
{
	return false;
}

static inline bool kvmi_msr_write_event(struct kvm_vcpu *vcpu, u32 msr,
					u64 *value)
{
	return true;
}

static inline bool kvmi_xsetbv_wanted(struct kvm_vcpu *vcpu)
{
	return false;
}

static inline int kvmi_xsetbv_event(struct kvm_vcpu *vcpu)
{
	return 1;
}

static inline void kvmi_exception_injected(struct kvm_vcpu *vcpu, u8 vector)
{
}

static inline bool kvmi_page_access_restricted(struct kvm *kvm)
{
	return false;
}

static inline u8 kvmi_page_access_allowed(struct kvm *kvm, u64 gfn, u64 nr)
{
	return KVMI_PAGE_ACCESS_RWX;
}

static inline int kvmi_page_fault(struct kvm_vcpu *vcpu, u64 gpa, bool write,
				  bool exec)
{
	return KVMI_PF_MAP;
}

static inline bool kvmi_discard_writes(struct kvm_vcpu *vcpu)
{
	return false;
}

static inline void kvmi_page_fault_emulated(struct kvm_vcpu *vcpu)
{
}

static inline int kvmi_pf_ctx_insn(struct kvm_vcpu *vcpu, void *buf, int size)
{
	return 0;
}

static inline int kvmi_pf_ctx_read(struct kvm_vcpu *vcpu, u64 gpa, void *val,
				   int bytes)
{
	return 0;
}

static inline bool kvmi_singlestep_active(struct kvm_vcpu *vcpu)
{
	return false;
}

static inline void kvmi_singlestep_done(struct kvm_vcpu *vcpu)
{
}

static inline bool kvmi_trap_wanted(struct kvm_vcpu *vcpu)
{
	return false;
}

static inline void kvmi_exception_queued(struct kvm_vcpu *vcpu)
{
}

static inline bool kvmi_descriptor_wanted(struct kvm_vcpu *vcpu)
{
	return false;
}

static inline int kvmi_descriptor_exit(struct kvm_vcpu *vcpu, u8 descriptor,
				       bool load)
{
	return 1;
}

#endif /* CONFIG_KVM_INTROSPECTION */

#endif /* __LINUX_KVMI_HOST_H */
