// SPDX-License-Identifier: GPL-2.0-only
/*
 * kvmi-ring: the ioctls of the introspection fd (kvmi.rst, section 7).
 *
 * Each runs with a reference on the VM, taken by kvmi_ioctl() in kvmi.c:
 * on a detached fd every ioctl fails with -ENODEV before it gets here.
 * The ioctl number is the command id; ioctls are matched by type and
 * number, not by the size the number encodes (size negotiation).
 */
#include <linux/uaccess.h>

#include "kvmi_int.h"

/*
 * Hand an output structure, which starts with its __u32 size, to a caller
 * that knows @min_size to PAGE_SIZE bytes of it: as much as both know is
 * copied, the rest of the caller's size is zeroed.
 */
static int kvmi_copy_sized_to_user(void __user *argp, const void *kbuf,
				   u32 ksize, u32 min_size)
{
	u32 usize;

	if (get_user(usize, (u32 __user *)argp))
		return -EFAULT;
	if (usize < min_size)
		return -EINVAL;
	if (usize > PAGE_SIZE)
		return -E2BIG;
	if (copy_to_user(argp, kbuf, min(usize, ksize)))
		return -EFAULT;
	if (usize > ksize && clear_user(argp + ksize, usize - ksize))
		return -EFAULT;
	return 0;
}

static int kvmi_get_version(void __user *argp)
{
	struct kvmi_version ver = {
		.size = sizeof(ver),
		.version = KVMI_VERSION,
		.features = KVMI_FEATURE_RING,
		.event_size = sizeof(struct kvmi_event),
		.reply_size = sizeof(struct kvmi_reply),
		.cmd_size = sizeof(struct kvmi_cmd),
		.cmd_result_size = sizeof(struct kvmi_cmd_result),
		.regs_size = sizeof(struct kvmi_x86_regs),
	};

	return kvmi_copy_sized_to_user(argp, &ver, sizeof(ver), sizeof(ver));
}

static int kvmi_get_layout(struct kvmi *kvmi, void __user *argp)
{
	struct kvmi_layout lo;

	kvmi_mem_get_layout(kvmi, &lo);
	return kvmi_copy_sized_to_user(argp, &lo, sizeof(lo), sizeof(lo));
}

static int kvmi_get_guest_info(struct kvm *kvm, void __user *argp)
{
	struct kvmi_guest_info info = {
		.size = sizeof(info),
		.nr_vcpus = atomic_read(&kvm->online_vcpus),
		.max_vcpus = kvm->max_vcpus,
		.tsc_khz = kvmi_arch_tsc_khz(kvm),
	};

	return kvmi_copy_sized_to_user(argp, &info, sizeof(info),
				       sizeof(info));
}

/* The commands this kernel implements; the rest answer -EOPNOTSUPP. */
static bool kvmi_command_implemented(u32 id)
{
	switch (id) {
	case KVMI_CMD_GET_VERSION:
	case KVMI_CMD_GET_LAYOUT:
	case KVMI_CMD_CHECK_COMMAND:
	case KVMI_CMD_CHECK_EVENT:
	case KVMI_CMD_GET_GUEST_INFO:
		return true;
	default:
		return false;
	}
}

/* No event is implemented yet. */
static bool kvmi_event_implemented(u32 id)
{
	return false;
}

static int kvmi_check(void __user *argp, bool (*implemented)(u32 id))
{
	struct kvmi_check chk;

	if (copy_from_user(&chk, argp, sizeof(chk)))
		return -EFAULT;
	if (chk.flags)
		return -EINVAL;
	return implemented(chk.id) ? 0 : -EOPNOTSUPP;
}

/**
 * kvmi_ioctl_dispatch() - serve an ioctl of the introspection fd
 * @kvmi: the introspection
 * @kvm: the VM, referenced by the caller
 * @cmd: the ioctl
 * @argp: its argument
 *
 * Return: 0 or -errno; -ENOTTY for an ioctl this kernel doesn't know.
 */
long kvmi_ioctl_dispatch(struct kvmi *kvmi, struct kvm *kvm,
			 unsigned int cmd, void __user *argp)
{
	if (_IOC_TYPE(cmd) != KVMI_IOCTL_MAGIC)
		return -ENOTTY;

	switch (_IOC_NR(cmd)) {
	case KVMI_CMD_GET_VERSION:
		return kvmi_get_version(argp);
	case KVMI_CMD_GET_LAYOUT:
		return kvmi_get_layout(kvmi, argp);
	case KVMI_CMD_CHECK_COMMAND:
		return kvmi_check(argp, kvmi_command_implemented);
	case KVMI_CMD_CHECK_EVENT:
		return kvmi_check(argp, kvmi_event_implemented);
	case KVMI_CMD_GET_GUEST_INFO:
		return kvmi_get_guest_info(kvm, argp);
	default:
		return -ENOTTY;
	}
}
