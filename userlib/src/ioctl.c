// SPDX-License-Identifier: LGPL-2.1-or-later OR MIT
/*
 * The introspection fd ioctls (kvmi.rst, section 7): one thin wrapper
 * each, returning 0 or the kernel's -errno. Any thread may call them.
 */
#include <stddef.h>
#include <string.h>

#include "internal.h"

int kvmi_dom_get_version(struct kvmi_dom *dom, struct kvmi_version *ver)
{
	if (!ver)
		return -EINVAL;
	memset(ver, 0, sizeof(*ver));
	ver->size = sizeof(*ver);
	return kvmi__ioctl(dom->fd, KVMI_IOCTL_GET_VERSION, ver);
}

static int get_layout(struct kvmi_dom *dom, struct kvmi_layout *layout,
		      size_t size)
{
	struct kvmi_layout lo;
	int r;

	if (!layout)
		return -EINVAL;
	memset(&lo, 0, sizeof(lo));
	lo.size = sizeof(lo);
	r = kvmi__ioctl(dom->fd, KVMI_IOCTL_GET_LAYOUT, &lo);
	if (!r) {
		if (lo.size > size)
			lo.size = size;
		memcpy(layout, &lo, size);
	}
	return r;
}

/*
 * struct kvmi_layout grew (sva_offset, sva_size: KVMI_FEATURE_SVA). A tool
 * linked against LIBKVMI_1.0 to 1.5 has the 144-byte structure: it gets
 * that much, never more; one linked now gets the whole structure.
 */
#define KVMI_LAYOUT_SIZE_1_0	offsetof(struct kvmi_layout, sva_offset)

__attribute__((symver("kvmi_dom_get_layout@LIBKVMI_1.0")))
int kvmi__dom_get_layout_1_0(struct kvmi_dom *dom, struct kvmi_layout *layout);
int kvmi__dom_get_layout_1_0(struct kvmi_dom *dom, struct kvmi_layout *layout)
{
	return get_layout(dom, layout, KVMI_LAYOUT_SIZE_1_0);
}

__attribute__((symver("kvmi_dom_get_layout@@LIBKVMI_1.6")))
int kvmi__dom_get_layout(struct kvmi_dom *dom, struct kvmi_layout *layout);
int kvmi__dom_get_layout(struct kvmi_dom *dom, struct kvmi_layout *layout)
{
	return get_layout(dom, layout, sizeof(*layout));
}

int kvmi_dom_check_command(struct kvmi_dom *dom, uint32_t id)
{
	struct kvmi_check c = { .id = id };

	return kvmi__ioctl(dom->fd, KVMI_IOCTL_CHECK_COMMAND, &c);
}

int kvmi_dom_check_event(struct kvmi_dom *dom, uint32_t id)
{
	struct kvmi_check c = { .id = id };

	return kvmi__ioctl(dom->fd, KVMI_IOCTL_CHECK_EVENT, &c);
}

int kvmi_dom_get_guest_info(struct kvmi_dom *dom,
			    struct kvmi_guest_info *info)
{
	if (!info)
		return -EINVAL;
	memset(info, 0, sizeof(*info));
	info->size = sizeof(*info);
	return kvmi__ioctl(dom->fd, KVMI_IOCTL_GET_GUEST_INFO, info);
}

int kvmi_dom_control_event(struct kvmi_dom *dom, uint32_t vcpu,
			   uint16_t event, int enable, uint32_t param)
{
	struct kvmi_control_events ce = {
		.vcpu = vcpu,
		.event = event,
		.enable = !!enable,
		.param = param,
	};

	return kvmi__ioctl(dom->fd, KVMI_IOCTL_CONTROL_EVENTS, &ce);
}

int kvmi_dom_set_doorbells(struct kvmi_dom *dom, uint32_t vcpu,
			   uint32_t flags, int notify_fd, int kick_fd)
{
	struct kvmi_doorbells db = {
		.vcpu = vcpu,
		.flags = flags,
		.notify_fd = notify_fd,
		.kick_fd = kick_fd,
	};

	if (dom->sock)
		return -EOPNOTSUPP;	/* the socket is the doorbell */
	return kvmi__ioctl(dom->fd, KVMI_IOCTL_SET_VCPU_DOORBELLS, &db);
}

/*
 * Both sides: the vCPU's (the ioctl) and, when it succeeded, the tool's
 * (kvmi_vcpu_set_tool_mode()) of @vcpu, or of every vCPU.
 */
int kvmi_dom_set_wait_mode(struct kvmi_dom *dom, uint32_t vcpu,
			   uint32_t mode, uint64_t spin_ns)
{
	struct kvmi_wait_mode wm = {
		.vcpu = vcpu,
		.mode = mode,
		.spin_ns = spin_ns,
	};
	uint32_t i, n;
	int r;

	if (vcpu != KVMI_ALL_VCPUS && vcpu >= dom->max_vcpus)
		return -ENOENT;
	r = kvmi__ioctl(dom->fd, KVMI_IOCTL_SET_WAIT_MODE, &wm);
	if (r)
		return r;
	/* The socket: the tool always sleeps in poll(); the vCPU side only. */
	if (dom->sock)
		return 0;
	if (vcpu != KVMI_ALL_VCPUS)
		return kvmi_vcpu_set_tool_mode(&dom->vcpus[vcpu], mode, spin_ns);
	/* The pages of vCPUs not created yet can't be touched (SIGBUS). */
	n = kvmi_dom_nr_vcpus(dom);
	for (i = 0; i < dom->max_vcpus; i++) {
		if (i < n) {
			kvmi_vcpu_set_tool_mode(&dom->vcpus[i], mode, spin_ns);
			continue;
		}
		dom->vcpus[i].tool.mode = mode;
		dom->vcpus[i].tool.spin_ns = spin_ns;
	}
	return 0;
}

int kvmi_dom_pause_vcpu(struct kvmi_dom *dom, uint32_t vcpu)
{
	struct kvmi_pause_vcpu p = { .vcpu = vcpu };

	return kvmi__ioctl(dom->fd, KVMI_IOCTL_PAUSE_VCPU, &p);
}

int kvmi_dom_pause_all(struct kvmi_dom *dom)
{
	struct kvmi_pause_all p = { .flags = 0 };

	return kvmi__ioctl(dom->fd, KVMI_IOCTL_PAUSE_ALL, &p);
}

int kvmi_dom_unpause(struct kvmi_dom *dom, uint32_t vcpu)
{
	struct kvmi_pause_vcpu p = { .vcpu = vcpu };

	return kvmi__ioctl(dom->fd, KVMI_IOCTL_UNPAUSE, &p);
}

static int page_access(struct kvmi_dom *dom, unsigned long req,
		       const struct kvmi_page_access_entry *entries,
		       uint32_t count, uint32_t *done)
{
	struct kvmi_page_access pa = {
		.entries = (uintptr_t)entries,
		.count = count,
	};
	int r;

	if (count && !entries)
		return -EINVAL;
	r = kvmi__ioctl(dom->fd, req, &pa);
	if (done)
		*done = pa.done;
	return r;
}

int kvmi_dom_get_page_access(struct kvmi_dom *dom,
			     struct kvmi_page_access_entry *entries,
			     uint32_t count, uint32_t *done)
{
	return page_access(dom, KVMI_IOCTL_GET_PAGE_ACCESS, entries, count,
			   done);
}

int kvmi_dom_set_page_access(struct kvmi_dom *dom,
			     const struct kvmi_page_access_entry *entries,
			     uint32_t count, uint32_t *done)
{
	return page_access(dom, KVMI_IOCTL_SET_PAGE_ACCESS, entries, count,
			   done);
}

int kvmi_dom_read_physical(struct kvmi_dom *dom, uint64_t gpa, void *buf,
			   size_t size)
{
	struct kvmi_physical p = {
		.gpa = gpa,
		.size = size,
		.buffer = (uintptr_t)buf,
	};

	if (size && !buf)
		return -EINVAL;
	return kvmi__ioctl(dom->fd, KVMI_IOCTL_READ_PHYSICAL, &p);
}

int kvmi_dom_write_physical(struct kvmi_dom *dom, uint64_t gpa,
			    const void *buf, size_t size)
{
	struct kvmi_physical p = {
		.gpa = gpa,
		.size = size,
		.buffer = (uintptr_t)buf,
	};

	if (size && !buf)
		return -EINVAL;
	return kvmi__ioctl(dom->fd, KVMI_IOCTL_WRITE_PHYSICAL, &p);
}

int kvmi_dom_shutdown_guest(struct kvmi_dom *dom)
{
	struct kvmi_shutdown s = { .flags = 0 };

	return kvmi__ioctl(dom->fd, KVMI_IOCTL_SHUTDOWN_GUEST, &s);
}
