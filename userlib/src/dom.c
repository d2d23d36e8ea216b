// SPDX-License-Identifier: LGPL-2.1-or-later OR MIT
/*
 * Opening and closing an introspected VM: discovery, validation of what
 * the kernel reports, the mappings and the VM-wide doorbells.
 */
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

#include "internal.h"

int kvmi__ioctl(int fd, unsigned long req, void *arg)
{
	int r = ioctl(fd, req, arg);

	return r < 0 ? -errno : r;
}

#define KVMI_AREA_MAX	(1ULL << 40)

/* A record of @size bytes at @off lies inside a region of @region bytes. */
static bool fits(uint64_t off, uint64_t size, uint64_t region)
{
	return off <= region && size <= region - off && !(off % 8);
}

/*
 * What the kernel reported is usable by this library: the version it was
 * built for, records at least as large as ours, each record inside its
 * region, regions inside their strides, page-aligned areas that don't
 * overlap.
 */
int kvmi__validate(const struct kvmi_version *ver, const struct kvmi_layout *lo)
{
	const struct kvmi_vcpu_kernel_offsets *k = &lo->kernel_off;
	const struct kvmi_vcpu_tool_offsets *t = &lo->tool_off;
	uint64_t ps = lo->page_size;

	if (ver->version != KVMI_VERSION || !(ver->features & KVMI_FEATURE_RING))
		return -EPROTONOSUPPORT;
	if (ver->event_size < sizeof(struct kvmi_event) ||
	    ver->reply_size < sizeof(struct kvmi_reply) ||
	    ver->cmd_size < sizeof(struct kvmi_cmd) ||
	    ver->cmd_result_size < sizeof(struct kvmi_cmd_result) ||
	    ver->regs_size < sizeof(struct kvmi_x86_regs))
		return -EPROTO;
	if (!ps || (ps & (ps - 1)) || !lo->max_vcpus || lo->max_vcpus > 65536)
		return -EPROTO;
	if (lo->vm_offset % ps || lo->kernel_offset % ps ||
	    lo->tool_offset % ps || lo->kernel_stride % ps ||
	    lo->tool_stride % ps || !lo->kernel_stride || !lo->tool_stride)
		return -EPROTO;
	if (lo->vm_size < sizeof(struct kvmi_vm_state) ||
	    lo->kernel_size > lo->kernel_stride ||
	    lo->tool_size > lo->tool_stride)
		return -EPROTO;
	/* The areas must fit in an address space (and not wrap around). */
	if (lo->kernel_stride > KVMI_AREA_MAX / lo->max_vcpus ||
	    lo->tool_stride > KVMI_AREA_MAX / lo->max_vcpus)
		return -EPROTO;
	if (!fits(k->state, sizeof(struct kvmi_vcpu_state), lo->kernel_size) ||
	    !fits(k->event, ver->event_size, lo->kernel_size) ||
	    !fits(k->cmd_result, ver->cmd_result_size, lo->kernel_size) ||
	    !fits(k->counters, sizeof(struct kvmi_vcpu_counters),
		  lo->kernel_size) ||
	    !fits(k->data, k->data_size, lo->kernel_size))
		return -EPROTO;
	if (!fits(t->state, sizeof(struct kvmi_tool_state), lo->tool_size) ||
	    !fits(t->reply, ver->reply_size, lo->tool_size) ||
	    !fits(t->cmd, ver->cmd_size, lo->tool_size) ||
	    !fits(t->data, t->data_size, lo->tool_size))
		return -EPROTO;
	return 0;
}

static void vcpu_init(struct kvmi_dom *dom, uint32_t i)
{
	const struct kvmi_layout *lo = &dom->lo;
	const uint8_t *k = dom->kernel + (uint64_t)i * lo->kernel_stride;
	uint8_t *t = dom->tool + (uint64_t)i * lo->tool_stride;
	struct kvmi_vcpu *v = &dom->vcpus[i];

	v->dom = dom;
	v->index = i;
	v->vs = (const void *)(k + lo->kernel_off.state);
	v->ev = (const void *)(k + lo->kernel_off.event);
	v->res = (const void *)(k + lo->kernel_off.cmd_result);
	v->counters = (const void *)(k + lo->kernel_off.counters);
	v->kdata = k + lo->kernel_off.data;
	v->kdata_size = lo->kernel_off.data_size;
	v->ts = (void *)(t + lo->tool_off.state);
	v->rp = (void *)(t + lo->tool_off.reply);
	v->cmd = (void *)(t + lo->tool_off.cmd);
	v->tdata = t + lo->tool_off.data;
	v->tdata_size = lo->tool_off.data_size;
	v->notify_fd = -1;
	v->kick_fd = -1;
	v->tool.mode = KVMI_WAIT_HYBRID;
	v->tool.spin_ns = KVMI_WAIT_DEFAULT_SPIN_NS;
}

/*
 * The vCPU handles (no page of a vCPU is touched here: the pages of a
 * vCPU that doesn't exist yet raise SIGBUS) and the VM-wide doorbells.
 */
__cold int kvmi__dom_setup(struct kvmi_dom *dom)
{
	uint32_t i;

	dom->max_vcpus = dom->lo.max_vcpus;
	dom->vcpus = aligned_alloc(64, sizeof(*dom->vcpus) * dom->max_vcpus);
	if (!dom->vcpus)
		return -ENOMEM;
	memset(dom->vcpus, 0, sizeof(*dom->vcpus) * dom->max_vcpus);
	for (i = 0; i < dom->max_vcpus; i++)
		vcpu_init(dom, i);

	dom->notify_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (dom->notify_fd < 0)
		return -errno;
	dom->kick_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (dom->kick_fd < 0)
		return -errno;
	/* The socket transport rings no doorbell. */
	if (dom->fd < 0 || dom->sock)
		return 0;
	return kvmi_dom_set_doorbells(dom, KVMI_ALL_VCPUS,
				      KVMI_DOORBELL_NOTIFY | KVMI_DOORBELL_KICK,
				      dom->notify_fd, dom->kick_fd);
}

static __cold struct kvmi_dom *dom_alloc(void)
{
	struct kvmi_dom *dom = calloc(1, sizeof(*dom));

	if (!dom)
		return NULL;
	dom->fd = -1;
	dom->notify_fd = -1;
	dom->kick_fd = -1;
	dom->epfd = -1;
	return dom;
}

__cold void kvmi__dom_free(struct kvmi_dom *dom)
{
	uint32_t i;

	if (dom->vcpus) {
		for (i = 0; i < dom->max_vcpus; i++)
			if (dom->vcpus[i].notify_fd >= 0)
				close(dom->vcpus[i].notify_fd);
		for (i = 0; i < dom->max_vcpus; i++)
			if (dom->vcpus[i].kick_fd >= 0)
				close(dom->vcpus[i].kick_fd);
	}
	/* Unmap before closing: introspection ends with the last of both. */
	if (dom->mapped) {
		munmap((void *)dom->vm, dom->lo.vm_size);
		munmap((void *)dom->kernel,
		       (uint64_t)dom->max_vcpus * dom->lo.kernel_stride);
		munmap(dom->tool, (uint64_t)dom->max_vcpus * dom->lo.tool_stride);
	}
	if (dom->epfd >= 0)
		close(dom->epfd);
	if (dom->notify_fd >= 0)
		close(dom->notify_fd);
	if (dom->kick_fd >= 0)
		close(dom->kick_fd);
	if (dom->fd >= 0)
		close(dom->fd);
	kvmi__sock_free(dom, false);
	free(dom->vcpus);
	free(dom);
}

static __cold void *map_area(int fd, uint64_t off, uint64_t size, int prot)
{
	void *p = mmap(NULL, size, prot, MAP_SHARED, fd, off);

	return p == MAP_FAILED ? NULL : p;
}

/*
 * Discover, validate, map and set up a dom around introspection fd @fd,
 * and socket @sock_fd if not -1 (KVMI_TRANSPORT_SOCKET).
 */
static __cold int dom_init(struct kvmi_dom *dom, int sock_fd)
{
	uint32_t id;
	int r;

	r = kvmi_dom_get_version(dom, &dom->ver);
	if (r)
		return r;
	r = kvmi_dom_get_layout(dom, &dom->lo);
	if (r)
		return r;
	r = kvmi__validate(&dom->ver, &dom->lo);
	if (r)
		return r;
	if (sock_fd >= 0) {
		if (!(dom->ver.features & KVMI_FEATURE_SOCKET))
			return -EPROTONOSUPPORT;
		r = kvmi__sock_attach(dom, sock_fd);
		if (r)
			return r;
	}

	dom->vm = map_area(dom->fd, dom->lo.vm_offset, dom->lo.vm_size,
			   PROT_READ);
	if (!dom->vm)
		return -errno;
	/* The fd must have been opened with the transport we speak. */
	if (!(load_acquire(&dom->vm->flags) & KVMI_VM_SOCKET) !=
	    (sock_fd < 0)) {
		munmap((void *)dom->vm, dom->lo.vm_size);
		return -EPROTOTYPE;
	}
	dom->kernel = map_area(dom->fd, dom->lo.kernel_offset,
			       (uint64_t)dom->lo.max_vcpus *
			       dom->lo.kernel_stride, PROT_READ);
	if (!dom->kernel) {
		r = -errno;
		munmap((void *)dom->vm, dom->lo.vm_size);
		return r;
	}
	dom->tool = map_area(dom->fd, dom->lo.tool_offset,
			     (uint64_t)dom->lo.max_vcpus * dom->lo.tool_stride,
			     PROT_READ | PROT_WRITE);
	if (!dom->tool) {
		r = -errno;
		munmap((void *)dom->vm, dom->lo.vm_size);
		munmap((void *)dom->kernel,
		       (uint64_t)dom->lo.max_vcpus * dom->lo.kernel_stride);
		return r;
	}
	dom->mapped = true;

	for (id = 0; id < 64; id++)
		dom->cmd_check[id] = kvmi_dom_check_command(dom, 0x40 + id);

	return kvmi__dom_setup(dom);
}

/**
 * kvmi_dom_from_fd() - wrap an introspection fd (opened here, or received
 * from the VMM over a unix socket). On success the dom owns @fd.
 */
__cold int kvmi_dom_from_fd(int introspection_fd, struct kvmi_dom **domp)
{
	struct kvmi_dom *dom;
	int r;

	if (introspection_fd < 0 || !domp)
		return -EINVAL;
	dom = dom_alloc();
	if (!dom)
		return -ENOMEM;
	dom->fd = introspection_fd;
	r = dom_init(dom, -1);
	if (r) {
		dom->fd = -1;	/* the caller keeps it */
		kvmi__dom_free(dom);
		return r;
	}
	*domp = dom;
	return 0;
}

/**
 * kvmi_dom_from_socket() - wrap an introspection fd opened with the socket
 * transport and the tool's end of its socket (opened here, or both
 * received from the VMM). On success the dom owns both fds.
 */
__cold int kvmi_dom_from_socket(int introspection_fd, int sock_fd,
				struct kvmi_dom **domp)
{
	struct kvmi_dom *dom;
	int r;

	if (introspection_fd < 0 || sock_fd < 0 || !domp)
		return -EINVAL;
	dom = dom_alloc();
	if (!dom)
		return -ENOMEM;
	dom->fd = introspection_fd;
	r = dom_init(dom, sock_fd);
	if (r) {
		dom->fd = -1;	/* the caller keeps both */
		kvmi__sock_free(dom, true);
		kvmi__dom_free(dom);
		return r;
	}
	*domp = dom;
	return 0;
}

/**
 * kvmi_dom_open_socket() - open introspection on a VM fd with the socket
 * transport: a new socket pair, one end handed to the kernel. The VM fd
 * stays the caller's; the dom owns the introspection fd and the socket.
 */
__cold int kvmi_dom_open_socket(int vm_fd, struct kvmi_dom **domp)
{
	int sv[2], fd, r;

	if (!domp)
		return -EINVAL;
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv))
		return -errno;
	fd = kvmi_vm_open_socket(vm_fd, sv[1]);
	close(sv[1]);	/* the kernel holds its own reference */
	if (fd < 0) {
		close(sv[0]);
		return fd;
	}
	r = kvmi_dom_from_socket(fd, sv[0], domp);
	if (r) {
		close(fd);
		close(sv[0]);
	}
	return r;
}

/* KVMI_TRANSPORT_RING or KVMI_TRANSPORT_SOCKET. */
int kvmi_dom_transport(const struct kvmi_dom *dom)
{
	return dom->sock ? KVMI_TRANSPORT_SOCKET : KVMI_TRANSPORT_RING;
}

/**
 * kvmi_dom_open() - open introspection on a VM fd. The VM fd stays the
 * caller's; the dom owns the new introspection fd.
 */
__cold int kvmi_dom_open(int vm_fd, struct kvmi_dom **domp)
{
	int fd, r;

	if (!domp)
		return -EINVAL;
	fd = kvmi_vm_open(vm_fd);
	if (fd < 0)
		return fd;
	r = kvmi_dom_from_fd(fd, domp);
	if (r)
		close(fd);
	return r;
}

/**
 * kvmi_dom_close() - answer every pending event with its default action,
 * then unmap, close the doorbells and the introspection fd.
 */
__cold int kvmi_dom_close(struct kvmi_dom *dom)
{
	uint32_t i, n;
	int r = 0, e;

	if (!dom)
		return -EINVAL;
	n = kvmi_dom_nr_vcpus(dom);
	for (i = 0; i < n; i++) {
		e = kvmi__answer_pending(&dom->vcpus[i]);
		if (e && !r)
			r = e;
	}
	kvmi__dom_free(dom);
	return r;
}

int kvmi__dom_simulated(const struct kvmi_version *ver,
			const struct kvmi_layout *lo, void *vm, void *kernel,
			void *tool, struct kvmi_dom **domp)
{
	struct kvmi_dom *dom;
	int r;

	r = kvmi__validate(ver, lo);
	if (r)
		return r;
	dom = dom_alloc();
	if (!dom)
		return -ENOMEM;
	dom->ver = *ver;
	dom->lo = *lo;
	dom->vm = vm;
	dom->kernel = kernel;
	dom->tool = tool;
	for (r = 0; r < 64; r++)
		dom->cmd_check[r] = 0;
	r = kvmi__dom_setup(dom);
	if (r) {
		kvmi__dom_free(dom);
		return r;
	}
	*domp = dom;
	return 0;
}

int kvmi__dom_simulated_socket(const struct kvmi_version *ver,
			       const struct kvmi_layout *lo, void *vm,
			       void *kernel, void *tool, int sock_fd,
			       struct kvmi_dom **domp)
{
	struct kvmi_dom *dom;
	int r;

	if (!(ver->features & KVMI_FEATURE_SOCKET))
		return -EPROTONOSUPPORT;
	r = kvmi__dom_simulated(ver, lo, vm, kernel, tool, &dom);
	if (r)
		return r;
	r = kvmi__sock_attach(dom, sock_fd);
	if (r) {
		kvmi__dom_free(dom);
		return r;
	}
	*domp = dom;
	return 0;
}

int kvmi__dom_notify_fd(const struct kvmi_dom *dom)
{
	return dom->notify_fd;
}

int kvmi__dom_kick_fd(const struct kvmi_dom *dom)
{
	return dom->kick_fd;
}

int kvmi_dom_fd(const struct kvmi_dom *dom)
{
	return dom->fd;
}

uint64_t kvmi_dom_features(const struct kvmi_dom *dom)
{
	return dom->ver.features;
}

uint32_t kvmi_dom_max_vcpus(const struct kvmi_dom *dom)
{
	return dom->max_vcpus;
}

/* vCPUs whose regions exist; pairs with the kernel's release of nr_vcpus. */
uint32_t kvmi_dom_nr_vcpus(const struct kvmi_dom *dom)
{
	uint32_t n = load_acquire(&dom->vm->nr_vcpus);

	return n < dom->max_vcpus ? n : dom->max_vcpus;
}

uint32_t kvmi_dom_state_flags(const struct kvmi_dom *dom)
{
	return load_acquire(&dom->vm->flags);
}

/* The handle of vCPU @index, or NULL if it does not exist (yet). */
struct kvmi_vcpu *kvmi_dom_vcpu(struct kvmi_dom *dom, uint32_t index)
{
	if (index >= kvmi_dom_nr_vcpus(dom))
		return NULL;
	return &dom->vcpus[index];
}
