// SPDX-License-Identifier: GPL-2.0-only
/*
 * kvmi-ring: the shared memory of an introspection fd.
 *
 * Three areas (kvmi.rst, section 8): the VM area, one page the kernel
 * writes; the kernel array, a region per vCPU the kernel writes; the tool
 * array, a region per vCPU the tool writes. The pages come from the page
 * allocator, zeroed, and are mapped on fault, so that a mapping of a whole
 * array covers the vCPUs created later: the pages of a vCPU index that
 * doesn't exist yet raise SIGBUS until it does. The pages the kernel
 * writes are never mapped writable.
 */
#include <linux/gfp.h>
#include <linux/math64.h>
#include <linux/mm.h>
#include <linux/slab.h>

#include "kvmi_int.h"

static_assert(KVMI_KOFF_STATE + sizeof(struct kvmi_vcpu_state) <=
	      KVMI_KOFF_EVENT);
static_assert(KVMI_KOFF_EVENT + sizeof(struct kvmi_event) <=
	      KVMI_KOFF_CMD_RESULT);
static_assert(KVMI_KOFF_CMD_RESULT + sizeof(struct kvmi_cmd_result) <=
	      KVMI_KOFF_COUNTERS);
static_assert(KVMI_KOFF_COUNTERS + sizeof(struct kvmi_vcpu_counters) <=
	      KVMI_KOFF_DATA);
static_assert(KVMI_TOFF_STATE + sizeof(struct kvmi_tool_state) <=
	      KVMI_TOFF_REPLY);
static_assert(KVMI_TOFF_REPLY + sizeof(struct kvmi_reply) <= KVMI_TOFF_CMD);
static_assert(KVMI_TOFF_CMD + sizeof(struct kvmi_cmd) <= KVMI_TOFF_DATA);
static_assert(sizeof(struct kvmi_vm_state) <= KVMI_VM_SIZE);

enum kvmi_area {
	KVMI_AREA_VM,
	KVMI_AREA_KERNEL,
	KVMI_AREA_TOOL,
	KVMI_AREA_NONE,
};

static u64 kvmi_array_size(const struct kvmi *kvmi)
{
	return (u64)kvmi->max_vcpus * KVMI_REGION_SIZE;
}

/* The area [@start, @start + @len) lies in, if it lies in one. */
static enum kvmi_area kvmi_area_of(const struct kvmi *kvmi, u64 start,
				   u64 len)
{
	u64 end = start + len;

	if (end < start)
		return KVMI_AREA_NONE;
	if (end <= KVMI_VM_OFFSET + KVMI_VM_SIZE)
		return KVMI_AREA_VM;
	if (start >= KVMI_KERNEL_OFFSET &&
	    end <= KVMI_KERNEL_OFFSET + kvmi_array_size(kvmi))
		return KVMI_AREA_KERNEL;
	if (start >= KVMI_TOOL_OFFSET &&
	    end <= KVMI_TOOL_OFFSET + kvmi_array_size(kvmi))
		return KVMI_AREA_TOOL;
	return KVMI_AREA_NONE;
}

/**
 * kvmi_mem_vm_alloc() - allocate the VM area of an introspection
 * @kvmi: the introspection
 *
 * Return: 0, or -ENOMEM.
 */
int kvmi_mem_vm_alloc(struct kvmi *kvmi)
{
	kvmi->vm_page = alloc_page(GFP_KERNEL_ACCOUNT | __GFP_ZERO);
	if (!kvmi->vm_page)
		return -ENOMEM;
	kvmi->vm_state = page_address(kvmi->vm_page);
	return 0;
}

/**
 * kvmi_mem_vm_free() - drop the introspection's reference to its VM area
 * @kvmi: the introspection
 *
 * A page still mapped somewhere is freed when its last mapping goes.
 */
void kvmi_mem_vm_free(struct kvmi *kvmi)
{
	if (kvmi->vm_page)
		__free_page(kvmi->vm_page);
	kvmi->vm_page = NULL;
	kvmi->vm_state = NULL;
}

static void kvmi_free_pages(struct page **pages)
{
	int i;

	for (i = 0; i < KVMI_REGION_PAGES; i++)
		if (pages[i])
			__free_page(pages[i]);
}

static int kvmi_alloc_pages(struct page **pages)
{
	int i;

	for (i = 0; i < KVMI_REGION_PAGES; i++) {
		pages[i] = alloc_page(GFP_KERNEL_ACCOUNT | __GFP_ZERO);
		if (!pages[i])
			return -ENOMEM;
	}
	return 0;
}

/**
 * kvmi_mem_vcpu_alloc() - allocate the regions of a vCPU
 * @kvmi: the introspection
 * @idx: the vCPU index
 *
 * The regions are zeroed, except for the vCPU index in the vCPU's state.
 * They are not visible to the tool until the caller publishes them in
 * kvmi->vcpus.
 *
 * Return: the vCPU's introspection state, or NULL if out of memory.
 */
struct kvmi_vcpu *kvmi_mem_vcpu_alloc(struct kvmi *kvmi, u32 idx)
{
	struct kvmi_vcpu *kv;

	if (WARN_ON_ONCE(idx >= kvmi->max_vcpus))
		return NULL;

	kv = kzalloc(sizeof(*kv), GFP_KERNEL_ACCOUNT);
	if (!kv)
		return NULL;
	kv->kvmi = kvmi;
	kv->idx = idx;
	if (kvmi_alloc_pages(kv->kpages) || kvmi_alloc_pages(kv->tpages)) {
		kvmi_mem_vcpu_free(kv);
		return NULL;
	}
	kv->state = page_address(kv->kpages[0]) + KVMI_KOFF_STATE;
	kv->state->vcpu = idx;
	kv->event = page_address(kv->kpages[0]) + KVMI_KOFF_EVENT;
	kv->cmd_result = page_address(kv->kpages[0]) + KVMI_KOFF_CMD_RESULT;
	kv->counters = page_address(kv->kpages[0]) + KVMI_KOFF_COUNTERS;
	kv->tstate = page_address(kv->tpages[0]) + KVMI_TOFF_STATE;
	kv->reply = page_address(kv->tpages[0]) + KVMI_TOFF_REPLY;
	kv->cmd = page_address(kv->tpages[0]) + KVMI_TOFF_CMD;
	kvmi_vcpu_init(kv);
	return kv;
}

/**
 * kvmi_mem_vcpu_free() - free a vCPU's introspection state
 * @kv: the state, no longer reachable from kvmi->vcpus or a vCPU
 *
 * Pages still mapped somewhere are freed when their last mapping goes.
 */
void kvmi_mem_vcpu_free(struct kvmi_vcpu *kv)
{
	kvmi_free_pages(kv->kpages);
	kvmi_free_pages(kv->tpages);
	kfree(kv);
}

/**
 * kvmi_mem_get_layout() - describe the shared memory
 * @kvmi: the introspection
 * @lo: filled with the layout (kvmi.rst, sections 7.2 and 8.2)
 */
void kvmi_mem_get_layout(const struct kvmi *kvmi, struct kvmi_layout *lo)
{
	memset(lo, 0, sizeof(*lo));
	lo->size = sizeof(*lo);
	lo->page_size = PAGE_SIZE;
	lo->max_vcpus = kvmi->max_vcpus;
	lo->vm_offset = KVMI_VM_OFFSET;
	lo->vm_size = KVMI_VM_SIZE;
	lo->kernel_offset = KVMI_KERNEL_OFFSET;
	lo->kernel_stride = KVMI_REGION_SIZE;
	lo->kernel_size = KVMI_REGION_SIZE;
	lo->tool_offset = KVMI_TOOL_OFFSET;
	lo->tool_stride = KVMI_REGION_SIZE;
	lo->tool_size = KVMI_REGION_SIZE;

	lo->kernel_off.state = KVMI_KOFF_STATE;
	lo->kernel_off.event = KVMI_KOFF_EVENT;
	lo->kernel_off.cmd_result = KVMI_KOFF_CMD_RESULT;
	lo->kernel_off.counters = KVMI_KOFF_COUNTERS;
	lo->kernel_off.data = KVMI_KOFF_DATA;
	lo->kernel_off.data_size = KVMI_DATA_SIZE;

	lo->tool_off.state = KVMI_TOFF_STATE;
	lo->tool_off.reply = KVMI_TOFF_REPLY;
	lo->tool_off.cmd = KVMI_TOFF_CMD;
	lo->tool_off.data = KVMI_TOFF_DATA;
	lo->tool_off.data_size = KVMI_DATA_SIZE;
}

/* The page at mmap offset @off, or NULL if there is none (yet). */
static struct page *kvmi_mem_page(struct kvmi *kvmi, u64 off)
{
	enum kvmi_area area = kvmi_area_of(kvmi, off, PAGE_SIZE);
	struct kvmi_vcpu *kv;
	u64 rel;
	u32 idx, nr;

	switch (area) {
	case KVMI_AREA_VM:
		return kvmi->vm_page;
	case KVMI_AREA_KERNEL:
		rel = off - KVMI_KERNEL_OFFSET;
		break;
	case KVMI_AREA_TOOL:
		rel = off - KVMI_TOOL_OFFSET;
		break;
	default:
		return NULL;
	}

	idx = div_u64_rem(rel, KVMI_REGION_SIZE, &nr);
	nr >>= PAGE_SHIFT;
	/* Pairs with the store-release that publishes the vCPU's regions. */
	kv = smp_load_acquire(&kvmi->vcpus[idx]);
	if (!kv)
		return NULL;
	return area == KVMI_AREA_KERNEL ? kv->kpages[nr] : kv->tpages[nr];
}

static vm_fault_t kvmi_mem_fault(struct vm_fault *vmf)
{
	struct kvmi *kvmi = vmf->vma->vm_file->private_data;
	struct page *page;

	page = kvmi_mem_page(kvmi, (u64)vmf->pgoff << PAGE_SHIFT);
	if (!page)
		return VM_FAULT_SIGBUS;
	get_page(page);
	vmf->page = page;
	return 0;
}

static const struct vm_operations_struct kvmi_mem_vm_ops = {
	.fault = kvmi_mem_fault,
};

/**
 * kvmi_mem_mmap() - map part of the shared memory
 * @kvmi: the introspection, attached
 * @vma: the new mapping
 *
 * Enforces the rules of kvmi.rst, section 8.1: MAP_SHARED only, never
 * executable, the kernel-written areas read-only for good (no
 * VM_MAYWRITE), within a single area, not expandable, not copied on fork.
 *
 * Return: 0, -EINVAL or -EPERM.
 */
int kvmi_mem_mmap(struct kvmi *kvmi, struct vm_area_struct *vma)
{
	u64 len = vma->vm_end - vma->vm_start;
	enum kvmi_area area;

	if (!(vma->vm_flags & VM_MAYSHARE))
		return -EINVAL;
	if (vma->vm_flags & VM_EXEC)
		return -EPERM;
	if (vma->vm_pgoff > (KVMI_TOOL_OFFSET >> PAGE_SHIFT) +
			    (kvmi_array_size(kvmi) >> PAGE_SHIFT))
		return -EINVAL;

	area = kvmi_area_of(kvmi, (u64)vma->vm_pgoff << PAGE_SHIFT, len);
	if (area == KVMI_AREA_NONE)
		return -EINVAL;
	if (area != KVMI_AREA_TOOL) {
		if (vma->vm_flags & VM_WRITE)
			return -EPERM;
		vm_flags_clear(vma, VM_MAYWRITE);
	}
	vm_flags_clear(vma, VM_MAYEXEC);
	vm_flags_set(vma, VM_DONTEXPAND | VM_DONTCOPY);
	vma->vm_ops = &kvmi_mem_vm_ops;
	return 0;
}
