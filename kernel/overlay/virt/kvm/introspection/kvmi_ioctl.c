// SPDX-License-Identifier: GPL-2.0-only
/*
 * kvmi-ring: the ioctls of the introspection fd (kvmi.rst, section 7).
 *
 * Each runs with a reference on the VM, taken by kvmi_ioctl() in kvmi.c:
 * on a detached fd every ioctl fails with -ENODEV before it gets here.
 * The ioctl number is the command id; ioctls are matched by type and
 * number, not by the size the number encodes (size negotiation).
 */
#include <linux/mm.h>
#include <linux/sched/mm.h>
#include <linux/sched/signal.h>
#include <linux/uaccess.h>

#include "mmu.h"
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

static void kvmi_version_fill(struct kvmi_version *ver)
{
	*ver = (struct kvmi_version){
		.size = sizeof(*ver),
		.version = KVMI_VERSION,
		.features = KVMI_FEATURE_RING | KVMI_FEATURE_INJECT_STATUS |
			    KVMI_FEATURE_SVA | KVMI_FEATURE_PF_EMULATION |
			    KVMI_FEATURE_PF_CTX | KVMI_FEATURE_SOCKET,
		.event_size = sizeof(struct kvmi_event),
		.reply_size = sizeof(struct kvmi_reply),
		.cmd_size = sizeof(struct kvmi_cmd),
		.cmd_result_size = sizeof(struct kvmi_cmd_result),
		.regs_size = sizeof(struct kvmi_x86_regs),
	};

	if (kvmi_singlestep_supported())
		ver->features |= KVMI_FEATURE_SINGLESTEP;
}

static int kvmi_get_version(void __user *argp)
{
	struct kvmi_version ver;

	kvmi_version_fill(&ver);
	return kvmi_copy_sized_to_user(argp, &ver, sizeof(ver), sizeof(ver));
}

static int kvmi_get_layout(struct kvmi *kvmi, void __user *argp)
{
	struct kvmi_layout lo;

	kvmi_mem_get_layout(kvmi, &lo);
	lo.sva_offset = KVMI_SVA_OFFSET;
	lo.sva_size = KVMI_SVA_MAX_SIZE;
	/* 144: the size before KVMI_FEATURE_SVA added sva_offset, sva_size */
	return kvmi_copy_sized_to_user(argp, &lo, sizeof(lo), 144);
}

static void kvmi_guest_info_fill(struct kvm *kvm, struct kvmi_guest_info *info)
{
	*info = (struct kvmi_guest_info){
		.size = sizeof(*info),
		.nr_vcpus = atomic_read(&kvm->online_vcpus),
		.max_vcpus = kvm->max_vcpus,
		.tsc_khz = kvmi_arch_tsc_khz(kvm),
	};
}

static int kvmi_get_guest_info(struct kvm *kvm, void __user *argp)
{
	struct kvmi_guest_info info;

	kvmi_guest_info_fill(kvm, &info);
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
	case KVMI_CMD_CONTROL_EVENTS:
	case KVMI_CMD_SET_VCPU_DOORBELLS:
	case KVMI_CMD_SET_WAIT_MODE:
	case KVMI_CMD_PAUSE_VCPU:
	case KVMI_CMD_PAUSE_ALL:
	case KVMI_CMD_UNPAUSE:
	case KVMI_CMD_GET_REGISTERS:
	case KVMI_CMD_SET_REGISTERS:
	case KVMI_CMD_READ_PHYSICAL:
	case KVMI_CMD_WRITE_PHYSICAL:
	case KVMI_CMD_SHUTDOWN_GUEST:
	case KVMI_CMD_GET_CPUID:
	case KVMI_CMD_GET_XCR:
	case KVMI_CMD_GET_XSAVE_INFO:
	case KVMI_CMD_GET_XSAVE:
	case KVMI_CMD_SET_XSAVE:
	case KVMI_CMD_GET_MTRR_TYPE:
	case KVMI_CMD_GET_MTRRS:
	case KVMI_CMD_TRANSLATE_GVA:
	case KVMI_CMD_INJECT_EXCEPTION:
	case KVMI_CMD_MAP_PHYSICAL_PAGE_TO_SVA:
	case KVMI_CMD_UNMAP_PHYSICAL_PAGE_FROM_SVA:
	case KVMI_CMD_GET_PAGE_ACCESS:
	case KVMI_CMD_SET_PAGE_ACCESS:
		return true;
	case KVMI_CMD_CONTROL_SINGLESTEP:
		return kvmi_singlestep_supported();
	default:
		return false;
	}
}

/* The events this kernel implements. */
static bool kvmi_event_implemented(u32 id)
{
	switch (id) {
	case KVMI_EVENT_HYPERCALL:
	case KVMI_EVENT_PAUSE:
	case KVMI_EVENT_BREAKPOINT:
	case KVMI_EVENT_CR:
	case KVMI_EVENT_MSR:
	case KVMI_EVENT_XSETBV:
	case KVMI_EVENT_PAGE_FAULT:
	case KVMI_EVENT_TRAP:
	case KVMI_EVENT_DESCRIPTOR:
		return true;
	case KVMI_EVENT_SINGLESTEP:
		return kvmi_singlestep_supported();
	default:
		return false;
	}
}

/**
 * kvmi_vcpu_by_idx() - find the introspection state of a vCPU
 * @kvmi: the introspection
 * @idx: the vCPU index, from the tool
 *
 * Return: the state, or NULL if there is no such vCPU (yet).
 */
struct kvmi_vcpu *kvmi_vcpu_by_idx(struct kvmi *kvmi, u32 idx)
{
	if (idx >= kvmi->max_vcpus)
		return NULL;
	/* Pairs with the store-release that publishes the vCPU. */
	return smp_load_acquire(&kvmi->vcpus[idx]);
}

/*
 * Make KVM_REQ_INTROSPECTION on vCPU @idx and return once it is out of
 * guest mode: it looks at its pause state and exception bitmap before
 * its next entry.
 */
static void kvmi_request_vcpu(struct kvm *kvm, u32 idx)
{
	DECLARE_BITMAP(mask, KVM_MAX_VCPUS) = {};

	__set_bit(idx, mask);
	kvm_make_vcpus_request_mask(kvm, KVM_REQ_INTROSPECTION |
				    KVM_REQUEST_WAIT, mask);
}

static void kvmi_set_event(unsigned long *events, u16 event, bool enable)
{
	if (enable)
		set_bit(event, events);
	else
		clear_bit(event, events);
}

/* Whether @param names a register the event can be enabled for. */
static bool kvmi_event_param_valid(struct kvmi *kvmi, u16 event, u32 param)
{
	u32 bit;

	switch (event) {
	case KVMI_EVENT_CR:
		return param == 0 || param == 3 || param == 4;
	case KVMI_EVENT_MSR:
		return !!kvmi_msr_bit(&kvmi->msrs, param, &bit);
	default:
		return !param;
	}
}

/* Enable or disable @ce's event in one set of events and registers. */
static void kvmi_set_events(unsigned long *events, unsigned long *cr_mask,
			    struct kvmi_msr_set *msrs,
			    const struct kvmi_control_events *ce)
{
	unsigned long *map;
	u32 bit;

	switch (ce->event) {
	case KVMI_EVENT_CR:
		kvmi_set_event(cr_mask, ce->param, ce->enable);
		break;
	case KVMI_EVENT_MSR:
		map = kvmi_msr_bit(msrs, ce->param, &bit);
		kvmi_set_event(map, bit, ce->enable);
		break;
	default:
		kvmi_set_event(events, ce->event, ce->enable);
		break;
	}
}

/*
 * The request that makes the vCPUs of @mask (NULL: all) update the
 * intercepts of @event before their next entry, once out of guest mode.
 */
static void kvmi_update_intercepts(struct kvm *kvm, u16 event,
				   unsigned long *mask)
{
	unsigned int req;

	switch (event) {
	case KVMI_EVENT_BREAKPOINT:
	case KVMI_EVENT_CR:
	case KVMI_EVENT_TRAP:
	case KVMI_EVENT_DESCRIPTOR:
		req = KVM_REQ_INTROSPECTION;
		break;
	case KVMI_EVENT_MSR:
		/* The MSR bitmaps are recomputed, our interceptions added. */
		req = KVM_REQ_MSR_FILTER_CHANGED;
		break;
	default:
		return;
	}
	if (mask)
		kvm_make_vcpus_request_mask(kvm, req | KVM_REQUEST_WAIT, mask);
	else
		kvm_make_all_cpus_request(kvm, req | KVM_REQUEST_WAIT);
}

/*
 * KVMI_IOCTL_CONTROL_EVENTS. The HYPERCALL event needs no interception
 * change: the vCPU tests its bit at the hypercall exit. The BREAKPOINT
 * and CR events change the #BP and CR intercepts, the MSR event the MSR
 * bitmap, which only the vCPU itself may do: a request with
 * KVM_REQUEST_WAIT takes it out of guest mode and it updates them before
 * its next entry. Either way
 * the change is in effect for every guest instruction executed after the
 * ioctl returns.
 */
static int kvmi_control_events(struct kvmi *kvmi, struct kvm *kvm,
			       const struct kvmi_control_events *ce)
{
	struct kvmi_vcpu *kv;
	u32 i;

	if (ce->padding1 || ce->padding2 || ce->enable > 1)
		return -EINVAL;
	switch (ce->event) {
	case KVMI_EVENT_UNHOOK:
	case KVMI_EVENT_PAUSE:
	case KVMI_EVENT_SINGLESTEP:
		return -EINVAL;	/* not controlled by this call */
	}
	if (!kvmi_event_implemented(ce->event))
		return -EOPNOTSUPP;
	if (!kvmi_event_param_valid(kvmi, ce->event, ce->param))
		return -EINVAL;
	if (ce->vcpu != KVMI_ALL_VCPUS) {
		kv = kvmi_vcpu_by_idx(kvmi, ce->vcpu);
		if (!kv)
			return -ENOENT;
	}

	/*
	 * Against kvmi_vcpu_create(), which copies the defaults, and against
	 * KVM_INTROSPECTION_SET_ALLOWED, which disables what it denies.
	 */
	mutex_lock(&kvm->lock);
	if (!kvmi_event_allowed(kvm, ce->event)) {
		mutex_unlock(&kvm->lock);
		return -EPERM;
	}
	if (ce->vcpu != KVMI_ALL_VCPUS) {
		DECLARE_BITMAP(mask, KVM_MAX_VCPUS) = {};

		kvmi_set_events(&kv->events, &kv->cr_mask, &kv->msrs, ce);
		__set_bit(ce->vcpu, mask);
		kvmi_update_intercepts(kvm, ce->event, mask);
		mutex_unlock(&kvm->lock);
		return 0;
	}
	kvmi_set_events(&kvmi->events, &kvmi->cr_mask, &kvmi->msrs, ce);
	for (i = 0; i < kvmi->max_vcpus; i++) {
		kv = kvmi_vcpu_by_idx(kvmi, i);
		if (kv)
			kvmi_set_events(&kv->events, &kv->cr_mask, &kv->msrs,
					ce);
	}
	kvmi_update_intercepts(kvm, ce->event, NULL);
	mutex_unlock(&kvm->lock);
	return 0;
}

static void kvmi_vcpu_set_wait_mode(struct kvmi_vcpu *kv, u32 mode,
				    u64 spin_ns)
{
	WRITE_ONCE(kv->wait_mode, mode);
	WRITE_ONCE(kv->spin_ns, spin_ns);
	/* A waiting vCPU re-evaluates how it waits. */
	WRITE_ONCE(kv->wait_gen, kv->wait_gen + 1);
	kvmi_vcpu_wake(kv);
}

/* KVMI_IOCTL_SET_WAIT_MODE */
static int kvmi_set_wait_mode(struct kvmi *kvmi, struct kvm *kvm,
			      const struct kvmi_wait_mode *wm)
{
	struct kvmi_vcpu *kv;
	u32 i;

	switch (wm->mode) {
	case KVMI_WAIT_BLOCK:
	case KVMI_WAIT_POLL:
		if (wm->spin_ns)
			return -EINVAL;
		break;
	case KVMI_WAIT_HYBRID:
		if (!wm->spin_ns)
			return -EINVAL;
		break;
	default:
		return -EINVAL;
	}

	if (wm->vcpu != KVMI_ALL_VCPUS) {
		kv = kvmi_vcpu_by_idx(kvmi, wm->vcpu);
		if (!kv)
			return -ENOENT;
		kvmi_vcpu_set_wait_mode(kv, wm->mode, wm->spin_ns);
		return 0;
	}

	/* Against kvmi_vcpu_create(), which copies the defaults. */
	mutex_lock(&kvm->lock);
	WRITE_ONCE(kvmi->wait_mode, wm->mode);
	WRITE_ONCE(kvmi->spin_ns, wm->spin_ns);
	for (i = 0; i < kvmi->max_vcpus; i++) {
		kv = kvmi_vcpu_by_idx(kvmi, i);
		if (kv)
			kvmi_vcpu_set_wait_mode(kv, wm->mode, wm->spin_ns);
	}
	mutex_unlock(&kvm->lock);
	return 0;
}

/*
 * Ask @kv's vCPU to raise a PAUSE event, unless it already has to. The
 * caller then makes KVM_REQ_INTROSPECTION on it, with KVM_REQUEST_WAIT.
 */
static void kvmi_pause_request(struct kvmi_vcpu *kv)
{
	atomic_cmpxchg(&kv->pause, KVMI_PAUSE_NONE, KVMI_PAUSE_REQUESTED);
}

/*
 * KVMI_IOCTL_PAUSE_VCPU. The request, made with KVM_REQUEST_WAIT, returns
 * once the vCPU is out of guest mode; vcpu_enter_guest() sees it before
 * the next entry.
 */
static int kvmi_pause_vcpu(struct kvmi *kvmi, struct kvm *kvm,
			   const struct kvmi_pause_vcpu *pv)
{
	struct kvmi_vcpu *kv;

	if (pv->flags || pv->vcpu == KVMI_ALL_VCPUS)
		return -EINVAL;
	kv = kvmi_vcpu_by_idx(kvmi, pv->vcpu);
	if (!kv || !kvm_get_vcpu(kvm, pv->vcpu))
		return -ENOENT;

	kvmi_pause_request(kv);
	kvmi_request_vcpu(kvm, pv->vcpu);
	return 0;
}

/* KVMI_IOCTL_PAUSE_ALL: every vCPU that exists now. */
static int kvmi_pause_all(struct kvmi *kvmi, struct kvm *kvm,
			  const struct kvmi_pause_all *pa)
{
	struct kvm_vcpu *vcpu;
	struct kvmi_vcpu *kv;
	unsigned long i;

	if (pa->flags || pa->padding)
		return -EINVAL;

	kvm_for_each_vcpu(i, vcpu, kvm) {
		kv = kvmi_vcpu_by_idx(kvmi, vcpu->vcpu_idx);
		if (kv)
			kvmi_pause_request(kv);
	}
	kvm_make_all_cpus_request(kvm, KVM_REQ_INTROSPECTION |
				  KVM_REQUEST_WAIT);
	return 0;
}

/* KVMI_IOCTL_UNPAUSE */
static int kvmi_unpause(struct kvmi *kvmi, const struct kvmi_pause_vcpu *pv)
{
	struct kvmi_vcpu *kv;
	u32 i;

	if (pv->flags)
		return -EINVAL;

	if (pv->vcpu != KVMI_ALL_VCPUS) {
		kv = kvmi_vcpu_by_idx(kvmi, pv->vcpu);
		if (!kv)
			return -ENOENT;
		kvmi_vcpu_unpause(kv);
		return 0;
	}
	for (i = 0; i < kvmi->max_vcpus; i++) {
		kv = kvmi_vcpu_by_idx(kvmi, i);
		if (kv)
			kvmi_vcpu_unpause(kv);
	}
	return 0;
}

/*
 * Copy @len bytes, within one page, between guest physical address @gpa
 * and @kbuf, through the VM's own address space (the caller may be
 * another process). Called with kvm->srcu held and a reference on
 * kvm->mm.
 */
static int kvmi_phys_page(struct kvm *kvm, u64 gpa, void *kbuf, int len,
			  bool write)
{
	struct kvm_memory_slot *slot;
	gfn_t gfn = gpa_to_gfn(gpa);
	unsigned long hva;
	bool writable;

	slot = gfn_to_memslot(kvm, gfn);
	hva = gfn_to_hva_memslot_prot(slot, gfn, &writable);
	if (kvm_is_error_hva(hva))
		return -ENOENT;
	if (write && !writable)
		return -EPERM;
	hva += offset_in_page(gpa);
	if (access_remote_vm(kvm->mm, hva, kbuf, len,
			     write ? FOLL_WRITE : 0) != len)
		return -ENOENT;
	/*
	 * What mark_page_dirty_in_slot() does for the dirty bitmap; the dirty
	 * ring takes entries only from a running vCPU (kvmi.rst, 7.13).
	 */
	if (write && !kvm->dirty_ring_size &&
	    kvm_slot_dirty_track_enabled(slot) && slot->dirty_bitmap)
		set_bit_le(gfn - slot->base_gfn, slot->dirty_bitmap);
	return 0;
}

/**
 * kvmi_physical_kernel() - READ/WRITE_PHYSICAL with a kernel buffer
 * @kvm: the VM, referenced by the caller
 * @gpa: the first guest physical address
 * @buf: the bytes read, or to write
 * @size: how many, across pages if need be
 * @write: WRITE_PHYSICAL rather than READ_PHYSICAL
 *
 * The page loop of the ioctls (kvmi_physical(), through its bounce page)
 * and of the socket transport's receive thread (kvmi_socket.c), whose
 * messages carry the data.
 *
 * Return: 0, or -errno as the ioctls; on error, the pages before the one
 * that failed are written.
 */
int kvmi_physical_kernel(struct kvm *kvm, u64 gpa, void *buf, u32 size,
			 bool write)
{
	u32 done = 0;
	int idx, r = 0;

	if (!mmget_not_zero(kvm->mm))
		return -ENOENT;
	while (done < size) {
		int len = min_t(u64, size - done,
				PAGE_SIZE - offset_in_page(gpa + done));

		idx = srcu_read_lock(&kvm->srcu);
		r = kvmi_phys_page(kvm, gpa + done, buf + done, len, write);
		srcu_read_unlock(&kvm->srcu, idx);
		if (r)
			break;
		done += len;
	}
	mmput(kvm->mm);
	return r;
}

/*
 * KVMI_IOCTL_READ_PHYSICAL, KVMI_IOCTL_WRITE_PHYSICAL: page by page,
 * through a bounce page, while the vCPUs run.
 */
static int kvmi_physical(struct kvm *kvm, void __user *argp, bool write)
{
	struct kvmi_physical ph;
	u64 done = 0;
	void *kbuf;
	int r = 0;

	if (copy_from_user(&ph, argp, sizeof(ph)))
		return -EFAULT;
	if (ph.flags || ph.padding)
		return -EINVAL;
	if (ph.gpa + ph.size < ph.gpa)
		return -EINVAL;
	if (!ph.size)
		return 0;

	kbuf = (void *)__get_free_page(GFP_KERNEL_ACCOUNT);
	if (!kbuf)
		return -ENOMEM;
	while (done < ph.size) {
		u64 gpa = ph.gpa + done;
		void __user *ubuf = u64_to_user_ptr(ph.buffer + done);
		int len = min_t(u64, ph.size - done,
				PAGE_SIZE - offset_in_page(gpa));

		if (signal_pending(current)) {
			r = -EINTR;
			break;
		}
		if (write && copy_from_user(kbuf, ubuf, len)) {
			r = -EFAULT;
			break;
		}
		r = kvmi_physical_kernel(kvm, gpa, kbuf, len, write);
		if (r)
			break;
		if (!write && copy_to_user(ubuf, kbuf, len)) {
			r = -EFAULT;
			break;
		}
		done += len;
		cond_resched();
	}
	free_page((unsigned long)kbuf);
	return r;
}

/* KVMI_IOCTL_SHUTDOWN_GUEST: every vCPU exits with a shutdown. */
static int kvmi_shutdown_guest(struct kvmi *kvmi, struct kvm *kvm,
			       const struct kvmi_shutdown *sd)
{
	struct kvmi_vcpu *kv;
	u32 i;

	if (sd->flags || sd->padding)
		return -EINVAL;

	for (i = 0; i < kvmi->max_vcpus; i++) {
		kv = kvmi_vcpu_by_idx(kvmi, i);
		if (kv) {
			atomic_set(&kv->shutdown, 1);
			/* A vCPU waiting in an event ends it first. */
			kvmi_vcpu_wake(kv);
		}
	}
	kvm_make_all_cpus_request(kvm, KVM_REQ_INTROSPECTION);
	return 0;
}

/*
 * Page access restrictions (kvmi.rst, section 7.12). They are kept by gfn
 * in kvmi->access and enforced by the MMU: make_spte() gives a mapping no
 * more rights than kvmi_page_access_allowed() says, the fault handler
 * maps no huge page over a restricted page and sends the accesses that
 * break a restriction to kvmi_page_fault() (arch/x86/kvm/mmu/).
 */

void kvmi_page_access_init(struct kvmi *kvmi)
{
	mutex_init(&kvmi->access_lock);
	xa_init(&kvmi->access);
}

void kvmi_page_access_free(struct kvmi *kvmi)
{
	xa_destroy(&kvmi->access);
}

/**
 * kvmi_page_access_restricted() - tell whether any page is restricted
 * @kvm: the VM
 *
 * Return: true if the introspection tool of @kvm, if any, restricts the
 * access to at least one page; a hint for the MMU's fast paths.
 */
bool kvmi_page_access_restricted(struct kvm *kvm)
{
	struct kvmi *kvmi;
	bool restricted;

	/* kvmi_put() frees the struct kvmi after a grace period. */
	rcu_read_lock();
	kvmi = READ_ONCE(kvm->kvmi);
	restricted = kvmi && !xa_empty(&kvmi->access);
	rcu_read_unlock();
	return restricted;
}

/**
 * kvmi_page_access_allowed() - the accesses allowed on a range of pages
 * @kvm: the VM
 * @gfn: the first page
 * @nr: how many pages
 *
 * Called by the MMU, with mmu_lock held when it builds a mapping: the
 * ioctl changes kvmi->access before it zaps the mappings under mmu_lock,
 * so a mapping built after the zap sees the change.
 *
 * Return: the KVMI_PAGE_ACCESS_* allowed on every page of the range.
 */
u8 kvmi_page_access_allowed(struct kvm *kvm, u64 gfn, u64 nr)
{
	u8 allowed = KVMI_PAGE_ACCESS_RWX;
	unsigned long index = gfn;
	struct kvmi *kvmi;
	void *entry;

	rcu_read_lock();
	kvmi = READ_ONCE(kvm->kvmi);
	if (kvmi && !xa_empty(&kvmi->access))
		xa_for_each_range(&kvmi->access, index, entry, gfn,
				  gfn + nr - 1)
			allowed &= xa_to_value(entry);
	rcu_read_unlock();
	return allowed;
}

/*
 * The restrictions NPT and EPT both express: a present entry is readable
 * (no execute-only, no write-only page).
 */
static bool kvmi_page_access_valid(u8 access)
{
	if (access & ~KVMI_PAGE_ACCESS_RWX)
		return false;
	return access & KVMI_PAGE_ACCESS_R;
}

/* Change one restriction and drop the mappings that may break it. */
static int kvmi_page_access_set(struct kvmi *kvmi, struct kvm *kvm, u64 gfn,
				u8 access)
{
	void *old;
	int idx;

	if (access == KVMI_PAGE_ACCESS_RWX)
		old = xa_erase(&kvmi->access, gfn);
	else
		old = xa_store(&kvmi->access, gfn, xa_mk_value(access),
			       GFP_KERNEL_ACCOUNT);
	if (xa_is_err(old))
		return xa_err(old);

	/* Every vCPU's next access to the page faults: the MMU sees @access. */
	idx = srcu_read_lock(&kvm->srcu);
	kvm_zap_gfn_range(kvm, gfn, gfn + 1);
	srcu_read_unlock(&kvm->srcu, idx);
	return 0;
}

/* The index of the first entry that is not valid, or @count. */
static u32 kvmi_page_access_check(struct kvm *kvm,
				  const struct kvmi_page_access_entry *e,
				  u32 count, bool set, int *err)
{
	u32 i;
	int idx;

	*err = 0;
	idx = srcu_read_lock(&kvm->srcu);
	for (i = 0; i < count; i++) {
		if (memchr_inv(e[i].padding, 0, sizeof(e[i].padding)) ||
		    (set && !kvmi_page_access_valid(e[i].access))) {
			*err = -EINVAL;
			break;
		}
		if (!gfn_to_memslot(kvm, gpa_to_gfn(e[i].gpa))) {
			*err = -ENOENT;
			break;
		}
	}
	srcu_read_unlock(&kvm->srcu, idx);
	return i;
}

/*
 * KVMI_IOCTL_GET_PAGE_ACCESS, KVMI_IOCTL_SET_PAGE_ACCESS: every entry is
 * checked before any is used, so that bad input changes nothing.
 */
static int kvmi_page_access(struct kvmi *kvmi, struct kvm *kvm,
			    void __user *argp, bool set)
{
	struct kvmi_page_access __user *upa = argp;
	struct kvmi_page_access_entry *e;
	struct kvmi_page_access pa;
	void __user *uentries;
	u32 i;
	int r;

	if (copy_from_user(&pa, argp, sizeof(pa)))
		return -EFAULT;
	if (pa.flags || pa.padding)
		return -EINVAL;
	if (pa.count > KVMI_PAGE_ACCESS_MAX_COUNT)
		return -E2BIG;
	if (!pa.count)
		return put_user(0, &upa->done);

	uentries = u64_to_user_ptr(pa.entries);
	e = vmemdup_array_user(uentries, pa.count, sizeof(*e));
	if (IS_ERR(e))
		return PTR_ERR(e);

	i = kvmi_page_access_check(kvm, e, pa.count, set, &r);
	if (r)
		goto out;

	if (set)
		mutex_lock(&kvmi->access_lock);
	for (i = 0; i < pa.count; i++) {
		u64 gfn = gpa_to_gfn(e[i].gpa);

		if (signal_pending(current)) {
			r = -EINTR;
			break;
		}
		if (set) {
			r = kvmi_page_access_set(kvmi, kvm, gfn, e[i].access);
			if (r)
				break;
		} else {
			e[i].access = kvmi_page_access_allowed(kvm, gfn, 1);
		}
		cond_resched();
	}
	if (set)
		mutex_unlock(&kvmi->access_lock);
	if (!set && !r && copy_to_user(uentries, e, pa.count * sizeof(*e)))
		r = -EFAULT;
out:
	kvfree(e);
	if (put_user(i, &upa->done))
		return -EFAULT;
	return r;
}

static int kvmi_check(struct kvm *kvm, const struct kvmi_check *chk,
		      bool (*implemented)(u32 id),
		      bool (*allowed)(struct kvm *kvm, u32 id))
{
	if (chk->flags)
		return -EINVAL;
	if (!allowed(kvm, chk->id))
		return -EPERM;
	return implemented(chk->id) ? 0 : -EOPNOTSUPP;
}

/* The arguments of the VM commands that kvmi_vm_command() serves. */
union kvmi_vm_args {
	struct kvmi_version version;
	struct kvmi_check check;
	struct kvmi_guest_info guest_info;
	struct kvmi_control_events control_events;
	struct kvmi_wait_mode wait_mode;
	struct kvmi_pause_vcpu pause_vcpu;
	struct kvmi_pause_all pause_all;
	struct kvmi_shutdown shutdown;
};

/**
 * kvmi_vm_command_size() - the argument size of a VM command without pointers
 * @id: a KVMI_CMD_* id
 *
 * Return: the size of the argument kvmi_vm_command() takes for @id, at
 * most KVMI_VM_ARGS_MAX bytes, or -EOPNOTSUPP if it doesn't serve @id.
 */
int kvmi_vm_command_size(u32 id)
{
	switch (id) {
	case KVMI_CMD_GET_VERSION:
		return sizeof(struct kvmi_version);
	case KVMI_CMD_CHECK_COMMAND:
	case KVMI_CMD_CHECK_EVENT:
		return sizeof(struct kvmi_check);
	case KVMI_CMD_GET_GUEST_INFO:
		return sizeof(struct kvmi_guest_info);
	case KVMI_CMD_CONTROL_EVENTS:
		return sizeof(struct kvmi_control_events);
	case KVMI_CMD_SET_WAIT_MODE:
		return sizeof(struct kvmi_wait_mode);
	case KVMI_CMD_PAUSE_VCPU:
	case KVMI_CMD_UNPAUSE:
		return sizeof(struct kvmi_pause_vcpu);
	case KVMI_CMD_PAUSE_ALL:
		return sizeof(struct kvmi_pause_all);
	case KVMI_CMD_SHUTDOWN_GUEST:
		return sizeof(struct kvmi_shutdown);
	default:
		return -EOPNOTSUPP;
	}
}

static_assert(sizeof(union kvmi_vm_args) <= KVMI_VM_ARGS_MAX);

/**
 * kvmi_vm_command() - run a VM command whose argument is in kernel memory
 * @kvmi: the introspection
 * @kvm: the VM, referenced by the caller
 * @id: the command, one kvmi_vm_command_size() accepts
 * @arg: its argument, of kvmi_vm_command_size(@id) bytes; GET_VERSION
 *	and GET_GUEST_INFO overwrite it with the kernel's structure whole
 *
 * The handlers of the ioctls, for the socket transport's receive thread
 * (kvmi_socket.c) as for kvmi_ioctl_dispatch(). The caller checks the
 * VMM's allow-list.
 *
 * Return: 0 or -errno, as the ioctl.
 */
int kvmi_vm_command(struct kvmi *kvmi, struct kvm *kvm, u32 id, void *arg)
{
	union kvmi_vm_args *a = arg;

	switch (id) {
	case KVMI_CMD_GET_VERSION:
		kvmi_version_fill(&a->version);
		return 0;
	case KVMI_CMD_CHECK_COMMAND:
		return kvmi_check(kvm, &a->check, kvmi_command_implemented,
				  kvmi_command_allowed);
	case KVMI_CMD_CHECK_EVENT:
		return kvmi_check(kvm, &a->check, kvmi_event_implemented,
				  kvmi_event_allowed);
	case KVMI_CMD_GET_GUEST_INFO:
		kvmi_guest_info_fill(kvm, &a->guest_info);
		return 0;
	case KVMI_CMD_CONTROL_EVENTS:
		return kvmi_control_events(kvmi, kvm, &a->control_events);
	case KVMI_CMD_SET_WAIT_MODE:
		return kvmi_set_wait_mode(kvmi, kvm, &a->wait_mode);
	case KVMI_CMD_PAUSE_VCPU:
		return kvmi_pause_vcpu(kvmi, kvm, &a->pause_vcpu);
	case KVMI_CMD_PAUSE_ALL:
		return kvmi_pause_all(kvmi, kvm, &a->pause_all);
	case KVMI_CMD_UNPAUSE:
		return kvmi_unpause(kvmi, &a->pause_vcpu);
	case KVMI_CMD_SHUTDOWN_GUEST:
		return kvmi_shutdown_guest(kvmi, kvm, &a->shutdown);
	default:
		return -EOPNOTSUPP;
	}
}

/* An ioctl whose argument is a structure kvmi_vm_command() takes. */
static int kvmi_ioctl_in(struct kvmi *kvmi, struct kvm *kvm, u32 id,
			 void __user *argp)
{
	int size = kvmi_vm_command_size(id);
	union kvmi_vm_args a;

	if (WARN_ON_ONCE(size < 0 || size > sizeof(a)))
		return -EOPNOTSUPP;
	if (copy_from_user(&a, argp, size))
		return -EFAULT;
	return kvmi_vm_command(kvmi, kvm, id, &a);
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
	if (kvmi_command_implemented(_IOC_NR(cmd)) &&
	    !kvmi_command_allowed(kvm, _IOC_NR(cmd)))
		return -EPERM;

	switch (_IOC_NR(cmd)) {
	case KVMI_CMD_GET_VERSION:
		return kvmi_get_version(argp);
	case KVMI_CMD_GET_LAYOUT:
		return kvmi_get_layout(kvmi, argp);
	case KVMI_CMD_CHECK_COMMAND:
	case KVMI_CMD_CHECK_EVENT:
	case KVMI_CMD_CONTROL_EVENTS:
	case KVMI_CMD_SET_WAIT_MODE:
	case KVMI_CMD_PAUSE_VCPU:
	case KVMI_CMD_PAUSE_ALL:
	case KVMI_CMD_UNPAUSE:
	case KVMI_CMD_SHUTDOWN_GUEST:
		return kvmi_ioctl_in(kvmi, kvm, _IOC_NR(cmd), argp);
	case KVMI_CMD_GET_GUEST_INFO:
		return kvmi_get_guest_info(kvm, argp);
	case KVMI_CMD_SET_VCPU_DOORBELLS:
		return kvmi_ioctl_set_doorbells(kvmi, kvm, argp);
	case KVMI_CMD_READ_PHYSICAL:
		return kvmi_physical(kvm, argp, false);
	case KVMI_CMD_WRITE_PHYSICAL:
		return kvmi_physical(kvm, argp, true);
	case KVMI_CMD_MAP_PHYSICAL_PAGE_TO_SVA:
		return kvmi_sva_ioctl(kvmi, kvm, argp, true);
	case KVMI_CMD_UNMAP_PHYSICAL_PAGE_FROM_SVA:
		return kvmi_sva_ioctl(kvmi, kvm, argp, false);
	case KVMI_CMD_GET_PAGE_ACCESS:
		return kvmi_page_access(kvmi, kvm, argp, false);
	case KVMI_CMD_SET_PAGE_ACCESS:
		return kvmi_page_access(kvmi, kvm, argp, true);
	default:
		return -ENOTTY;
	}
}
