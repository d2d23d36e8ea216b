// SPDX-License-Identifier: GPL-2.0-only
/*
 * kvmi-ring: KVM virtual machine introspection over shared memory.
 *
 * Documentation/virt/kvm/kvmi.rst describes the interface. This file holds
 * the VM-wide part of the subsystem: opening and closing introspection,
 * the introspection file descriptor and its VM-wide commands.
 */
#include <linux/kvm_host.h>
#include <uapi/linux/kvmi.h>
