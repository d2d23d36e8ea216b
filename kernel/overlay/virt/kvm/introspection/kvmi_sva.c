// SPDX-License-Identifier: GPL-2.0-only
/*
 * kvmi-ring: zero-copy mappings of guest pages into the tool (kvmi.rst,
 * section 21).
 *
 * A map window is an mmap() of the introspection fd at KVMI_SVA_OFFSET:
 * a shared VM_PFNMAP VMA that nothing is mapped in at first (an access
 * raises SIGBUS). KVMI_IOCTL_MAP_PHYSICAL_PAGE_TO_SVA pins the guest page
 * through the VMM's address space and shows it at an address of a window
 * with vm_replace_page(); UNMAP removes it. A mapping ends, and its pin
 * with it, when:
 *  - the tool unmaps it, maps another page there or unmaps the window
 *    (the window's MMU notifier, its close());
 *  - the VMM's memory under it is invalidated: munmap(), MADV_DONTNEED,
 *    migration, reclaim... (kvmi_sva_invalidate(), called by KVM's MMU
 *    notifier of the VMM's mm);
 *  - its memslot is deleted or moved (kvmi_sva_memslot_gone());
 *  - the VM is destroyed (kvmi_sva_detach()).
 * The tool's next access then raises SIGBUS.
 *
 * Locking. kvmi->sva.lock protects every mapping and is taken inside MMU
 * notifier callbacks (of the VMM's mm and of the window's mm). So it is
 * never held while allocating or calling vm_replace_page(), which calls
 * the window's MMU notifiers: removals under it use vm_zap_replaced_page().
 * A window's @install mutex serializes the installs and removals of its
 * addresses with vm_replace_page(): mmap_lock -> install -> sva.lock ->
 * kvm->mmu_lock, PTE lock.
 *
 * Secondary MMUs of the window's mm (a VMM may back a memslot of another
 * VM with a window) are told of a removal by vm_replace_page() itself, or,
 * for a removal with vm_zap_replaced_page() under sva.lock, by a work
 * item that invalidates the address and only then unpins the page.
 *
 * Page tables. vm_zap_replaced_page() walks the window's page tables
 * without the window's mmap_lock. That is safe because the window's MMU
 * notifier drops every mapping of a range that is unmapped (its
 * invalidate_range_start() and release(), under sva.lock) before the page
 * tables of that range can be freed, and a window with no mapping is never
 * walked.
 *
 * Races with the VMM. A mapping is installed, then checked under sva.lock
 * against KVM's invalidation sequence (mmu_invalidate_retry_gfn()), as a
 * vCPU fault does: an invalidation of the VMM's range that started before
 * the check makes MAP undo and retry; one that starts after it finds the
 * mapping in the index and removes it. Memslot changes wait for MAP, which
 * holds kvm->srcu from its lookup of the memslot to its insertion.
 */
#include <linux/interval_tree.h>
#include <linux/llist.h>
#include <linux/kvmi_sva.h>
#include <linux/mm.h>
#include <linux/mmu_notifier.h>
#include <linux/sched/mm.h>
#include <linux/sched/signal.h>
#include <linux/slab.h>
#include <linux/uaccess.h>
#include <linux/workqueue.h>

#include "kvmi_int.h"

static_assert(sizeof(struct kvmi_sva_entry) == 24);
static_assert(sizeof(struct kvmi_sva_batch) == 24);

/**
 * struct kvmi_sva_window - one map window (one VMA)
 * @mn: its subscription to the MMU notifiers of the tool's mm.
 * @kvmi: the introspection; the VMA's file keeps it alive.
 * @vma: the VMA; valid while !@dead.
 * @start: its first address.
 * @npages: its size.
 * @install: serializes vm_replace_page() on the window's addresses.
 * @dead: the window is unmapped or its mm is gone (under sva.lock).
 * @maps: the mapping at each page of the window, or NULL (under sva.lock).
 */
struct kvmi_sva_window {
	struct mmu_notifier mn;
	struct kvmi *kvmi;
	struct vm_area_struct *vma;
	unsigned long start;
	unsigned long npages;
	struct mutex install;	/* see above */
	bool dead;
	struct kvmi_sva_map **maps;
};

/**
 * struct kvmi_sva_map - a guest page mapped in a window
 * @node: in kvmi->sva.hva, by the VMM address of the page.
 * @win: the window.
 * @addr: where the page is mapped in the window.
 * @gfn: the guest frame.
 * @page: the guest page, pinned (FOLL_PIN | FOLL_LONGTERM).
 * @writable: mapped writable.
 * @mm: the window's mm, held (mmgrab) while the record waits for
 *	kvmi_sva_release_fn() on @free_node.
 * @free_node: in kvmi_sva_released.
 */
struct kvmi_sva_map {
	struct interval_tree_node node;
	struct llist_node free_node;
	struct mm_struct *mm;
	struct kvmi_sva_window *win;
	unsigned long addr;
	gfn_t gfn;
	struct page *page;
	bool writable;
};

static const struct vm_operations_struct kvmi_sva_vm_ops;

/*
 * Mappings removed without telling the secondary MMUs of the window's
 * mm: kvmi_sva_release_fn() tells them, then unpins.
 */
static LLIST_HEAD(kvmi_sva_released);

static void kvmi_sva_release_fn(struct work_struct *work)
{
	struct llist_node *list = llist_del_all(&kvmi_sva_released);
	struct mmu_notifier_range range;
	struct kvmi_sva_map *m, *next;

	llist_for_each_entry_safe(m, next, list, free_node) {
		mmu_notifier_range_init_owner(&range, MMU_NOTIFY_CLEAR, 0,
					      m->mm, m->addr,
					      m->addr + PAGE_SIZE,
					      (void *)&kvmi_sva_vm_ops);
		mmu_notifier_invalidate_range_start(&range);
		mmu_notifier_invalidate_range_end(&range);
		mmdrop(m->mm);
		unpin_user_page(m->page);
		kfree(m);
		cond_resched();
	}
}

static DECLARE_WORK(kvmi_sva_release_work, kvmi_sva_release_fn);

/**
 * kvmi_sva_init() - initialize the mappings of a new introspection
 * @kvmi: the introspection
 */
void kvmi_sva_init(struct kvmi *kvmi)
{
	mutex_init(&kvmi->sva.lock);
	kvmi->sva.hva = RB_ROOT_CACHED;
	atomic_set(&kvmi->sva.nr, 0);
}

/*
 * What mark_page_dirty_in_slot() does for the dirty bitmap, from outside
 * a vCPU (the dirty ring only takes entries from a running vCPU). Called
 * with kvm->srcu held.
 */
static void kvmi_sva_mark_dirty(struct kvm *kvm, gfn_t gfn)
{
	struct kvm_memory_slot *slot = gfn_to_memslot(kvm, gfn);

	if (slot && !kvm->dirty_ring_size &&
	    kvm_slot_dirty_track_enabled(slot) && slot->dirty_bitmap)
		set_bit_le(gfn - slot->base_gfn, slot->dirty_bitmap);
}

/* Take @m out of the indexes; sva.lock held. */
static void kvmi_sva_unlink(struct kvmi *kvmi, struct kvmi_sva_map *m)
{
	struct kvmi_sva_window *win = m->win;

	lockdep_assert_held(&kvmi->sva.lock);
	win->maps[(m->addr - win->start) >> PAGE_SHIFT] = NULL;
	interval_tree_remove(&m->node, &kvmi->sva.hva);
	atomic_dec(&kvmi->sva.nr);
}

/*
 * End mapping @m, sva.lock held, and mark the page dirty if it was
 * writable and @kvm is given (kvm->srcu held). If @zap, remove its PTE:
 * the CPUs no longer reach the page when this returns, and the secondary
 * MMUs are told by kvmi_sva_release_fn(), which then unpins the page.
 * Else the PTE and what the secondary MMUs had are gone already: unpin.
 */
static void kvmi_sva_drop(struct kvmi *kvmi, struct kvmi_sva_map *m,
			  bool zap, struct kvm *kvm)
{
	kvmi_sva_unlink(kvmi, m);
	if (kvm && m->writable)
		kvmi_sva_mark_dirty(kvm, m->gfn);
	if (zap) {
		vm_zap_replaced_page(m->win->vma, &kvmi_sva_vm_ops, m->addr,
				     m->page);
		m->mm = m->win->vma->vm_mm;
		mmgrab(m->mm);
		llist_add(&m->free_node, &kvmi_sva_released);
		schedule_work(&kvmi_sva_release_work);
		return;
	}
	unpin_user_page(m->page);
	kfree(m);
}

/* Drop the mappings of @win in [@start, @end); sva.lock held. */
static void kvmi_sva_drop_range(struct kvmi_sva_window *win,
				unsigned long start, unsigned long end,
				bool zap)
{
	unsigned long i, first, last;

	if (win->dead || end <= win->start ||
	    start >= win->start + (win->npages << PAGE_SHIFT))
		return;
	first = start > win->start ? (start - win->start) >> PAGE_SHIFT : 0;
	last = min(win->npages, DIV_ROUND_UP(end - win->start, PAGE_SIZE));
	for (i = first; i < last; i++)
		if (win->maps[i])
			kvmi_sva_drop(win->kvmi, win->maps[i], zap, NULL);
}

/*
 * The window's mm invalidates a range: drop (and zap, the page tables are
 * still there) the mappings in it before the range is unmapped, moved
 * or changed. vm_replace_page()'s own invalidations are ours: skipped.
 */
static int kvmi_sva_mn_start(struct mmu_notifier *mn,
			     const struct mmu_notifier_range *range)
{
	struct kvmi_sva_window *win =
		container_of(mn, struct kvmi_sva_window, mn);
	unsigned long end = win->start + (win->npages << PAGE_SHIFT);

	if (range->owner == &kvmi_sva_vm_ops)
		return 0;
	if (range->end <= win->start || range->start >= end)
		return 0;
	if (!mmu_notifier_range_blockable(range))
		return -EAGAIN;

	mutex_lock(&win->kvmi->sva.lock);
	kvmi_sva_drop_range(win, range->start, range->end, true);
	mutex_unlock(&win->kvmi->sva.lock);
	return 0;
}

/* The window's mm goes away: drop everything, the page tables still exist. */
static void kvmi_sva_mn_release(struct mmu_notifier *mn,
				struct mm_struct *mm)
{
	struct kvmi_sva_window *win =
		container_of(mn, struct kvmi_sva_window, mn);

	mutex_lock(&win->kvmi->sva.lock);
	kvmi_sva_drop_range(win, 0, ULONG_MAX, true);
	win->dead = true;
	mutex_unlock(&win->kvmi->sva.lock);
}

static const struct mmu_notifier_ops kvmi_sva_mn_ops = {
	.invalidate_range_start = kvmi_sva_mn_start,
	.release = kvmi_sva_mn_release,
};

/* Nothing mapped here (or no longer): SIGBUS, never a zero page. */
static vm_fault_t kvmi_sva_fault(struct vm_fault *vmf)
{
	return VM_FAULT_SIGBUS;
}

/* A write through a read-only mapping. */
static vm_fault_t kvmi_sva_pfn_mkwrite(struct vm_fault *vmf)
{
	return VM_FAULT_SIGBUS;
}

static int kvmi_sva_may_split(struct vm_area_struct *vma, unsigned long addr)
{
	return -EINVAL;
}

static int kvmi_sva_mremap(struct vm_area_struct *vma)
{
	return -EINVAL;
}

static int kvmi_sva_mprotect(struct vm_area_struct *vma, unsigned long start,
			     unsigned long end, unsigned long newflags)
{
	return -EINVAL;
}

/*
 * The window is unmapped (its PTEs are zapped and flushed by now): unpin
 * what is left and unsubscribe. A copy made by a refused mremap() is
 * ignored.
 */
static void kvmi_sva_close(struct vm_area_struct *vma)
{
	struct kvmi_sva_window *win = vma->vm_private_data;
	struct kvmi *kvmi = win->kvmi;

	if (win->vma != vma)
		return;

	mutex_lock(&kvmi->sva.lock);
	kvmi_sva_drop_range(win, 0, ULONG_MAX, false);
	win->dead = true;
	mutex_unlock(&kvmi->sva.lock);

	mmu_notifier_unregister(&win->mn, vma->vm_mm);
	kvfree(win->maps);
	kfree(win);
}

static const struct vm_operations_struct kvmi_sva_vm_ops = {
	.close = kvmi_sva_close,
	.may_split = kvmi_sva_may_split,
	.mremap = kvmi_sva_mremap,
	.mprotect = kvmi_sva_mprotect,
	.fault = kvmi_sva_fault,
	.pfn_mkwrite = kvmi_sva_pfn_mkwrite,
};

/**
 * kvmi_sva_is_window() - tell whether an mmap() is of a map window
 * @vma: the new mapping of the introspection fd
 *
 * Return: true if it starts in the map window offset range.
 */
bool kvmi_sva_is_window(struct vm_area_struct *vma)
{
	return vma->vm_pgoff >= (KVMI_SVA_OFFSET >> PAGE_SHIFT);
}

/**
 * kvmi_sva_mmap() - create a map window
 * @kvmi: the introspection, attached
 * @vma: the new mapping, at an offset kvmi_sva_is_window() accepts
 *
 * MAP_SHARED only, never executable, at exactly KVMI_SVA_OFFSET, at most
 * KVMI_SVA_MAX_SIZE bytes.
 *
 * Return: 0, -EINVAL, -EPERM or -ENOMEM.
 */
int kvmi_sva_mmap(struct kvmi *kvmi, struct vm_area_struct *vma)
{
	unsigned long npages = vma_pages(vma);
	struct kvmi_sva_window *win;
	int r;

	if (!(vma->vm_flags & VM_MAYSHARE))
		return -EINVAL;
	if (vma->vm_flags & VM_EXEC)
		return -EPERM;
	if (vma->vm_pgoff != (KVMI_SVA_OFFSET >> PAGE_SHIFT) ||
	    npages > (KVMI_SVA_MAX_SIZE >> PAGE_SHIFT))
		return -EINVAL;

	win = kzalloc(sizeof(*win), GFP_KERNEL_ACCOUNT);
	if (!win)
		return -ENOMEM;
	win->maps = kvcalloc(npages, sizeof(*win->maps), GFP_KERNEL_ACCOUNT);
	if (!win->maps) {
		kfree(win);
		return -ENOMEM;
	}
	win->kvmi = kvmi;
	win->vma = vma;
	win->start = vma->vm_start;
	win->npages = npages;
	mutex_init(&win->install);
	win->mn.ops = &kvmi_sva_mn_ops;
	r = __mmu_notifier_register(&win->mn, vma->vm_mm);
	if (r) {
		kvfree(win->maps);
		kfree(win);
		return r;
	}

	vm_flags_clear(vma, VM_MAYEXEC);
	vm_flags_set(vma, VM_PFNMAP | VM_IO | VM_DONTCOPY | VM_DONTEXPAND |
			  VM_DONTDUMP);
	vma->vm_ops = &kvmi_sva_vm_ops;
	vma->vm_private_data = win;
	return 0;
}

/* Pin the VMM's page at @hva, writable if @write. */
static int kvmi_sva_pin(struct kvm *kvm, unsigned long hva, bool write,
			struct page **page)
{
	unsigned int flags = FOLL_LONGTERM | (write ? FOLL_WRITE : 0);
	long n;

	if (!mmget_not_zero(kvm->mm))
		return -EFAULT;
	mmap_read_lock(kvm->mm);
	n = pin_user_pages_remote(kvm->mm, hva, 1, flags, page, NULL);
	mmap_read_unlock(kvm->mm);
	mmput(kvm->mm);
	if (n == 1)
		return 0;
	return n < 0 && n != -EFAULT ? (int)n : -EFAULT;
}

/* The window of the caller's mm at @addr, whose mmap_lock is held. */
static struct kvmi_sva_window *kvmi_sva_window_at(struct kvmi *kvmi,
						  unsigned long addr)
{
	struct vm_area_struct *vma = vma_lookup(current->mm, addr);
	struct kvmi_sva_window *win;

	if (!vma || vma->vm_ops != &kvmi_sva_vm_ops ||
	    vma->vm_file->private_data != kvmi)
		return NULL;
	win = vma->vm_private_data;
	return win->vma == vma ? win : NULL;
}

/*
 * Install @page at @e->address, once. Return 0 once installed and
 * indexed, -EAGAIN if an invalidation raced with it (undone), or -errno.
 * Called with kvm->srcu held.
 */
static int kvmi_sva_install(struct kvmi *kvmi, struct kvm *kvm,
			    const struct kvmi_sva_entry *e, gfn_t gfn,
			    unsigned long hva, struct page *page,
			    unsigned long mmu_seq, struct kvmi_sva_map *m)
{
	bool write = e->flags & KVMI_SVA_WRITE;
	struct kvmi_sva_window *win;
	struct kvmi_sva_map *old;
	unsigned long idx;
	bool stale;
	int r;

	mmap_read_lock(current->mm);
	win = kvmi_sva_window_at(kvmi, e->address);
	if (!win) {
		r = -EINVAL;
		goto out_mmap;
	}
	if (write && !(win->vma->vm_flags & VM_WRITE)) {
		r = -EPERM;
		goto out_mmap;
	}

	mutex_lock(&win->install);
	r = vm_replace_page(win->vma, &kvmi_sva_vm_ops, e->address, page,
			    write);
	if (r)
		goto out_install;

	mutex_lock(&kvmi->sva.lock);
	/*
	 * Counted before the check: an invalidation that the check misses
	 * sees a non-zero count in kvmi_sva_get() (ordered by mmu_lock) and
	 * waits for sva.lock, then finds the mapping.
	 */
	atomic_inc(&kvmi->sva.nr);
	read_lock(&kvm->mmu_lock);
	stale = mmu_invalidate_retry_gfn(kvm, mmu_seq, gfn);
	read_unlock(&kvm->mmu_lock);
	if (stale || win->dead || kvmi->sva.detached) {
		atomic_dec(&kvmi->sva.nr);
		mutex_unlock(&kvmi->sva.lock);
		/* Not indexed: no one else removes it. */
		vm_replace_page(win->vma, &kvmi_sva_vm_ops, e->address, NULL,
				false);
		r = stale ? -EAGAIN : -ENODEV;
		goto out_install;
	}

	idx = (e->address - win->start) >> PAGE_SHIFT;
	old = win->maps[idx];
	if (old)	/* vm_replace_page() took its PTE away, and told */
		kvmi_sva_drop(kvmi, old, false, kvm);

	m->node.start = hva;
	m->node.last = hva + PAGE_SIZE - 1;
	m->win = win;
	m->addr = e->address;
	m->gfn = gfn;
	m->page = page;
	m->writable = write;
	win->maps[idx] = m;
	interval_tree_insert(&m->node, &kvmi->sva.hva);
	if (write)
		kvmi_sva_mark_dirty(kvm, gfn);
	mutex_unlock(&kvmi->sva.lock);
out_install:
	mutex_unlock(&win->install);
out_mmap:
	mmap_read_unlock(current->mm);
	return r;
}

/* KVMI_IOCTL_MAP_PHYSICAL_PAGE_TO_SVA, one entry. */
static int kvmi_sva_map_one(struct kvmi *kvmi, struct kvm *kvm,
			    const struct kvmi_sva_entry *e)
{
	bool write = e->flags & KVMI_SVA_WRITE;
	struct kvm_memory_slot *slot;
	struct kvmi_sva_map *m;
	unsigned long hva, mmu_seq;
	bool slot_writable;
	struct page *page;
	gfn_t gfn;
	int idx, r;

	if ((e->flags & ~KVMI_SVA_WRITE) || e->padding)
		return -EINVAL;
	if (!PAGE_ALIGNED(e->gpa) || !PAGE_ALIGNED(e->address))
		return -EINVAL;
	gfn = gpa_to_gfn(e->gpa);

	m = kzalloc(sizeof(*m), GFP_KERNEL_ACCOUNT);
	if (!m)
		return -ENOMEM;

	idx = srcu_read_lock(&kvm->srcu);
	do {
		if (fatal_signal_pending(current)) {
			r = -EINTR;
			break;
		}
		mmu_seq = kvm->mmu_invalidate_seq;
		smp_rmb();	/* pairs with kvm_mmu_invalidate_end() */

		slot = gfn_to_memslot(kvm, gfn);
		hva = gfn_to_hva_memslot_prot(slot, gfn, &slot_writable);
		if (kvm_is_error_hva(hva)) {
			r = -ENOENT;
			break;
		}
		if (kvm_mem_is_private(kvm, gfn) || (write && !slot_writable)) {
			r = -EPERM;
			break;
		}
		/* The page the guest writes to, even for a read mapping. */
		r = kvmi_sva_pin(kvm, hva, slot_writable, &page);
		if (r)
			break;
		r = kvmi_sva_install(kvmi, kvm, e, gfn, hva, page, mmu_seq, m);
		if (r) {
			unpin_user_page(page);
			cond_resched();
		}
	} while (r == -EAGAIN);
	srcu_read_unlock(&kvm->srcu, idx);

	if (r)
		kfree(m);
	return r;
}

/* KVMI_IOCTL_UNMAP_PHYSICAL_PAGE_FROM_SVA, one entry. */
static int kvmi_sva_unmap_one(struct kvmi *kvmi, struct kvm *kvm,
			      const struct kvmi_sva_entry *e)
{
	struct kvmi_sva_window *win;
	struct kvmi_sva_map *m;
	int idx, r = 0;

	if (e->gpa || e->flags || e->padding || !PAGE_ALIGNED(e->address))
		return -EINVAL;

	mmap_read_lock(current->mm);
	win = kvmi_sva_window_at(kvmi, e->address);
	if (!win) {
		mmap_read_unlock(current->mm);
		return -EINVAL;
	}

	mutex_lock(&win->install);
	mutex_lock(&kvmi->sva.lock);
	m = win->maps[(e->address - win->start) >> PAGE_SHIFT];
	if (m)
		kvmi_sva_unlink(kvmi, m);
	mutex_unlock(&kvmi->sva.lock);

	/* Out of the index, still pinned: no one else unpins it now. */
	if (m) {
		r = vm_replace_page(win->vma, &kvmi_sva_vm_ops, m->addr, NULL,
				    false);
		/* Can't fail for a page this window mapped. */
		WARN_ON_ONCE(r);
		if (m->writable) {
			idx = srcu_read_lock(&kvm->srcu);
			kvmi_sva_mark_dirty(kvm, m->gfn);
			srcu_read_unlock(&kvm->srcu, idx);
		}
		unpin_user_page(m->page);
		kfree(m);
	}
	mutex_unlock(&win->install);
	mmap_read_unlock(current->mm);
	return r;
}

/**
 * kvmi_sva_ioctl() - KVMI_IOCTL_MAP_PHYSICAL_PAGE_TO_SVA and
 *	KVMI_IOCTL_UNMAP_PHYSICAL_PAGE_FROM_SVA
 * @kvmi: the introspection
 * @kvm: the VM, referenced by the caller
 * @argp: the caller's struct kvmi_sva_batch
 * @map: MAP, else UNMAP
 *
 * The entries are done in order; the first that fails stops the batch,
 * and batch.done tells how many were done (kvmi.rst, section 21.3).
 *
 * Return: 0 if every entry was done, else the error of entry batch.done.
 */
int kvmi_sva_ioctl(struct kvmi *kvmi, struct kvm *kvm, void __user *argp,
		   bool map)
{
	struct kvmi_sva_batch __user *ub = argp;
	struct kvmi_sva_entry __user *ue;
	struct kvmi_sva_batch b;
	struct kvmi_sva_entry e;
	u32 done;
	int r = 0;

	if (copy_from_user(&b, ub, sizeof(b)))
		return -EFAULT;
	if (b.flags || b.padding)
		return -EINVAL;
	ue = u64_to_user_ptr(b.entries);

	for (done = 0; done < b.count; done++) {
		if (copy_from_user(&e, ue + done, sizeof(e))) {
			r = -EFAULT;
			break;
		}
		r = map ? kvmi_sva_map_one(kvmi, kvm, &e) :
			  kvmi_sva_unmap_one(kvmi, kvm, &e);
		if (r)
			break;
		if (done + 1 < b.count && signal_pending(current)) {
			done++;
			r = -EINTR;
			break;
		}
		cond_resched();
	}
	if (put_user(done, &ub->done))
		return -EFAULT;
	return r;
}

/* The introspection of @kvm, referenced, if it has mappings. */
static struct kvmi *kvmi_sva_get(struct kvm *kvm)
{
	struct kvmi *kvmi;

	rcu_read_lock();
	kvmi = READ_ONCE(kvm->kvmi);
	if (kvmi && (!atomic_read(&kvmi->sva.nr) ||
		     !refcount_inc_not_zero(&kvmi->refcount)))
		kvmi = NULL;
	rcu_read_unlock();
	return kvmi;
}

/*
 * Drop the mappings of the VMM range [@start, @last]: only those of @slot
 * if given, only the writable ones if @writable_only.
 */
static void kvmi_sva_drop_hva(struct kvmi *kvmi, struct kvm *kvm,
			      unsigned long start, unsigned long last,
			      const struct kvm_memory_slot *slot,
			      bool writable_only)
{
	struct interval_tree_node *node, *next;
	struct kvmi_sva_map *m;

	lockdep_assert_held(&kvmi->sva.lock);
	for (node = interval_tree_iter_first(&kvmi->sva.hva, start, last);
	     node; node = next) {
		next = interval_tree_iter_next(node, start, last);
		m = container_of(node, struct kvmi_sva_map, node);
		if (slot && (m->gfn < slot->base_gfn ||
			     m->gfn >= slot->base_gfn + slot->npages))
			continue;
		if (writable_only && !m->writable)
			continue;
		kvmi_sva_drop(kvmi, m, true, kvm);
	}
}

/**
 * kvmi_sva_invalidate() - the VMM's memory changes under the guest
 * @kvm: the VM
 * @range: the invalidation, from KVM's MMU notifier of the VMM's mm
 *
 * Called at the end of KVM's invalidate_range_start(), after KVM has
 * counted the invalidation in mmu_invalidate_in_progress. Ends the
 * mappings of the pages in the range. A non-blockable invalidation (the
 * OOM reaper of a dying VMM) is ignored: the pinned pages stay mapped
 * until the VM is destroyed, which it is about to be.
 */
void kvmi_sva_invalidate(struct kvm *kvm,
			 const struct mmu_notifier_range *range)
{
	struct kvmi *kvmi;
	bool wp;
	int idx;

	if (range->owner == &kvmi_sva_vm_ops ||
	    !mmu_notifier_range_blockable(range))
		return;
	kvmi = kvmi_sva_get(kvm);
	if (!kvmi)
		return;

	/*
	 * Write-protecting the VMM's PTEs (fork(), soft-dirty, userfaultfd
	 * write protection) leaves the page in place: a read-only mapping
	 * stays, a writable one would let writes bypass the tracking.
	 */
	wp = range->event == MMU_NOTIFY_PROTECTION_VMA ||
	     range->event == MMU_NOTIFY_PROTECTION_PAGE ||
	     range->event == MMU_NOTIFY_SOFT_DIRTY;

	idx = srcu_read_lock(&kvm->srcu);
	mutex_lock(&kvmi->sva.lock);
	kvmi_sva_drop_hva(kvmi, kvm, range->start, range->end - 1, NULL, wp);
	mutex_unlock(&kvmi->sva.lock);
	srcu_read_unlock(&kvm->srcu, idx);
	kvmi_put(kvmi);
}

/**
 * kvmi_sva_memslot_gone() - a memslot is being deleted or moved
 * @kvm: the VM
 * @slot: the old memslot, invalid and no longer used by any reader of
 *	kvm->srcu (which MAP holds until its mapping is indexed)
 *
 * Ends the mappings of the slot's pages. Called with kvm->slots_lock held.
 */
void kvmi_sva_memslot_gone(struct kvm *kvm, const struct kvm_memory_slot *slot)
{
	struct kvmi *kvmi;

	if (slot->as_id || !slot->npages)
		return;
	kvmi = kvmi_sva_get(kvm);
	if (!kvmi)
		return;

	mutex_lock(&kvmi->sva.lock);
	kvmi_sva_drop_hva(kvmi, NULL, slot->userspace_addr,
			  slot->userspace_addr +
			  (slot->npages << PAGE_SHIFT) - 1, slot, false);
	mutex_unlock(&kvmi->sva.lock);
	kvmi_put(kvmi);
}

/**
 * kvmi_sva_detach() - end every mapping of a detached introspection
 * @kvmi: the introspection, whose VM is being destroyed or which closes
 *
 * The guest memory may go away after this: no new mapping is made.
 */
void kvmi_sva_detach(struct kvmi *kvmi)
{
	mutex_lock(&kvmi->sva.lock);
	kvmi->sva.detached = true;
	kvmi_sva_drop_hva(kvmi, NULL, 0, ULONG_MAX, NULL, false);
	mutex_unlock(&kvmi->sva.lock);
}
