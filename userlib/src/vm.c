// SPDX-License-Identifier: LGPL-2.1-or-later OR MIT
/*
 * The VM fd ioctls of introspection (kvmi.rst, sections 5.1 and 6). Only
 * KVM_INTROSPECTION_OPEN works from a process other than the VMM.
 */
#include <sys/ioctl.h>

#include "internal.h"

/* KVMI_VERSION if this VM can be introspected, 0 if not, or -errno. */
int kvmi_vm_check(int vm_fd)
{
	return kvmi__ioctl(vm_fd, KVM_CHECK_EXTENSION,
			   (void *)(uintptr_t)KVM_CAP_INTROSPECTION);
}

/* The raw KVM_INTROSPECTION_OPEN: a new introspection fd, or -errno. */
int kvmi_vm_open(int vm_fd)
{
	struct kvmi_open op = {
		.size = sizeof(op),
		.transport = KVMI_TRANSPORT_RING,
	};

	return kvmi__ioctl(vm_fd, KVM_INTROSPECTION_OPEN, &op);
}

/*
 * KVM_INTROSPECTION_OPEN with the socket transport: the kernel takes its
 * own reference on @sock_fd (one end of a connected AF_UNIX stream socket;
 * the caller may close it). A new introspection fd, or -errno.
 */
int kvmi_vm_open_socket(int vm_fd, int sock_fd)
{
	struct kvmi_open op = {
		.size = sizeof(op),
		.transport = KVMI_TRANSPORT_SOCKET,
		.transport_fd = sock_fd,
	};

	return kvmi__ioctl(vm_fd, KVM_INTROSPECTION_OPEN, &op);
}

int kvmi_vm_set_allowed(int vm_fd, const struct kvmi_allowed *allowed)
{
	if (!allowed)
		return -EINVAL;
	return kvmi__ioctl(vm_fd, KVM_INTROSPECTION_SET_ALLOWED,
			   (void *)allowed);
}

int kvmi_vm_set_deadline(int vm_fd, uint64_t reply_ns)
{
	struct kvmi_deadline dl = { .reply_ns = reply_ns };

	return kvmi__ioctl(vm_fd, KVM_INTROSPECTION_SET_DEADLINE, &dl);
}

int kvmi_vm_unhook(int vm_fd, uint32_t flags, uint64_t timeout_ns)
{
	struct kvmi_unhook uh = {
		.flags = flags,
		.timeout_ns = timeout_ns,
	};

	return kvmi__ioctl(vm_fd, KVM_INTROSPECTION_UNHOOK, &uh);
}
