// SPDX-License-Identifier: LGPL-2.1-or-later OR MIT
/*
 * Zero-copy mappings of guest pages (since 1.6, KVMI_FEATURE_SVA):
 * map windows (mmap() of the introspection fd at the layout's
 * sva_offset) and the batched MAP/UNMAP_PHYSICAL_PAGE ioctls (kvmi.rst,
 * section 21). Any thread may call them.
 */
#include <string.h>
#include <sys/mman.h>

#include "internal.h"

#define BATCH	64	/* entries per ioctl: 1.5 KiB on the stack */

static bool have_sva(const struct kvmi_dom *dom)
{
	return dom->ver.features & KVMI_FEATURE_SVA && dom->lo.sva_size &&
	       dom->lo.size >= offsetof(struct kvmi_layout, sva_size) +
			       sizeof(dom->lo.sva_size);
}

/**
 * kvmi_dom_sva_window() - a new map window of @size bytes (a multiple of
 * the page size, at most the kernel's sva_size), writable if @writable,
 * at *@addrp. Nothing is mapped in it yet: every access raises SIGBUS.
 */
int kvmi_dom_sva_window(struct kvmi_dom *dom, size_t size, int writable,
			void **addrp)
{
	void *p;

	if (!addrp || !size || size % dom->lo.page_size)
		return -EINVAL;
	if (!have_sva(dom))
		return -EOPNOTSUPP;
	if (size > dom->lo.sva_size)
		return -EINVAL;
	p = mmap(NULL, size, PROT_READ | (writable ? PROT_WRITE : 0),
		 MAP_SHARED, dom->fd, dom->lo.sva_offset);
	if (p == MAP_FAILED)
		return -errno;
	*addrp = p;
	return 0;
}

/** kvmi_dom_sva_window_close() - unmap a whole window: its mappings end. */
int kvmi_dom_sva_window_close(struct kvmi_dom *dom, void *addr, size_t size)
{
	if (!addr || !size)
		return -EINVAL;
	return munmap(addr, size) ? -errno : 0;
}

/*
 * One of the batched ioctls over @count entries, BATCH at a time,
 * continuing after -EINTR; @done gets the entries done, in order.
 */
static int sva_batches(struct kvmi_dom *dom, unsigned long req,
		       const struct kvmi_sva_entry *entries,
		       void *const *addrs, uint32_t count, uint32_t *done)
{
	struct kvmi_sva_entry e[BATCH];
	struct kvmi_sva_batch b;
	uint32_t i = 0, n, k;
	int r;

	if (done)
		*done = 0;
	if (count && !entries && !addrs)
		return -EINVAL;
	if (!have_sva(dom))
		return -EOPNOTSUPP;
	while (i < count) {
		n = count - i < BATCH ? count - i : BATCH;
		memset(e, 0, n * sizeof(e[0]));
		for (k = 0; k < n; k++) {
			if (entries)
				e[k] = entries[i + k];
			else
				e[k].address = (uintptr_t)addrs[i + k];
		}
		memset(&b, 0, sizeof(b));
		b.entries = (uintptr_t)e;
		b.count = n;
		r = kvmi__ioctl(dom->fd, req, &b);
		if (b.done > n)		/* never from the kernel */
			return -EBADMSG;
		i += b.done;
		if (done)
			*done = i;
		if (r == -EINTR)
			continue;
		if (r)
			return r;
		if (b.done < n)
			return -EBADMSG;
	}
	return 0;
}

/**
 * kvmi_dom_map_pages() - show the guest pages of @entries (gpa, address
 * in a window of this dom, KVMI_SVA_WRITE or 0) in order; @done (may be
 * NULL) gets how many are mapped: all on success, else those before the
 * one that failed (the others are untouched).
 */
int kvmi_dom_map_pages(struct kvmi_dom *dom,
		       const struct kvmi_sva_entry *entries, uint32_t count,
		       uint32_t *done)
{
	if (count && !entries)
		return -EINVAL;
	return sva_batches(dom, KVMI_IOCTL_MAP_PHYSICAL_PAGE_TO_SVA, entries,
			   NULL, count, done);
}

/** kvmi_dom_unmap_pages() - end the mappings at @addrs, in order. */
int kvmi_dom_unmap_pages(struct kvmi_dom *dom, void *const *addrs,
			 uint32_t count, uint32_t *done)
{
	if (count && !addrs)
		return -EINVAL;
	return sva_batches(dom, KVMI_IOCTL_UNMAP_PHYSICAL_PAGE_FROM_SVA, NULL,
			   addrs, count, done);
}
