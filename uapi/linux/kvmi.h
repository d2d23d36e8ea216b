/* SPDX-License-Identifier: GPL-2.0 WITH Linux-syscall-note */
#ifndef _UAPI__LINUX_KVMI_H
#define _UAPI__LINUX_KVMI_H

/*
 * kvmi-ring: KVM virtual machine introspection over shared memory.
 *
 * Documentation/virt/kvm/kvmi.rst describes every element of this header.
 */

#include <linux/types.h>

#endif /* _UAPI__LINUX_KVMI_H */
