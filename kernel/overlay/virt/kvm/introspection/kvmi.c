// SPDX-License-Identifier: GPL-2.0-only
/*
 * kvmi-ring: KVM virtual machine introspection over shared memory.
 *
 * Documentation/virt/kvm/kvmi.rst describes the interface. This file holds
 * the life of an introspection: KVM_INTROSPECTION_OPEN, the introspection
 * file descriptor, the vCPUs created while it is open, and its end, by
 * close() or by the destruction of the VM. kvmi_int.h describes the
 * locking and the lifetime rules.
 */
#include <linux/anon_inodes.h>
#include <linux/eventfd.h>
#include <linux/file.h>
#include <linux/fs.h>
#include <linux/poll.h>
#include <linux/slab.h>
#include <linux/uaccess.h>

#include <trace/events/kvmi.h>

#include "kvmi_int.h"

/* Sizes fixed by version 1; a later version may only grow them. */
static_assert(sizeof(struct kvmi_open) == 32);
static_assert(sizeof(struct kvmi_version) == 40);
static_assert(sizeof(struct kvmi_layout) == 160);
static_assert(sizeof(struct kvmi_guest_info) == 16);

/**
 * kvmi_check_extension() - answer KVM_CHECK_EXTENSION(KVM_CAP_INTROSPECTION)
 * @kvm: the VM asked about, or NULL if asked on /dev/kvm
 *
 * Return: KVMI_VERSION, or 0 for a VM that can't be introspected.
 */
int kvmi_check_extension(struct kvm *kvm)
{
	if (kvm && !kvmi_arch_vm_supported(kvm))
		return 0;
	return KVMI_VERSION;
}

static void kvmi_free(struct kvmi *kvmi)
{
	u32 i;

	if (kvmi->ops && kvmi->ops->free)
		kvmi->ops->free(kvmi);
	kvmi_doorbells_release(kvmi);
	if (kvmi->vcpus) {
		for (i = 0; i < kvmi->max_vcpus; i++)
			if (kvmi->vcpus[i])
				kvmi_mem_vcpu_free(kvmi->vcpus[i]);
		kvfree(kvmi->vcpus);
	}
	kvmi_mem_vm_free(kvmi);
	kvmi_page_access_free(kvmi);
	kfree(kvmi);
}

/**
 * kvmi_put() - drop a reference on an introspection
 * @kvmi: the introspection
 *
 * The last reference frees it after an RCU grace period: a vCPU may have
 * found it through vcpu->kvmi just before the detach (kvmi_vcpu.c). Every
 * caller may sleep; the last put only happens at close(), at the VM's
 * destruction or at the end of KVM_INTROSPECTION_UNHOOK.
 */
void kvmi_put(struct kvmi *kvmi)
{
	if (refcount_dec_and_test(&kvmi->refcount)) {
		synchronize_rcu();
		kvmi_free(kvmi);
	}
}

static struct kvmi *kvmi_alloc(struct kvm *kvm)
{
	struct kvmi *kvmi;

	kvmi = kzalloc(sizeof(*kvmi), GFP_KERNEL_ACCOUNT);
	if (!kvmi)
		return NULL;

	refcount_set(&kvmi->refcount, 1);
	kvmi->ops = &kvmi_ring_ops;
	spin_lock_init(&kvmi->lock);
	init_waitqueue_head(&kvmi->wq);
	mutex_init(&kvmi->db_lock);
	kvmi_sva_init(kvmi);
	kvmi_page_access_init(kvmi);
	kvmi->wait_mode = KVMI_WAIT_HYBRID;
	kvmi->spin_ns = KVMI_WAIT_DEFAULT_SPIN_NS;
	kvmi->max_vcpus = kvm->max_vcpus;
	kvmi->vcpus = kvcalloc(kvmi->max_vcpus, sizeof(*kvmi->vcpus),
			       GFP_KERNEL_ACCOUNT);
	if (!kvmi->vcpus || kvmi_mem_vm_alloc(kvmi)) {
		kvmi_free(kvmi);
		return NULL;
	}
	return kvmi;
}

/**
 * kvmi_get_kvm() - take a reference on the introspected VM
 * @kvmi: the introspection
 *
 * Return: the VM, to be released with kvm_put_kvm(), or NULL if the
 * introspection is detached or the VM is being destroyed.
 */
struct kvm *kvmi_get_kvm(struct kvmi *kvmi)
{
	struct kvm *kvm;

	spin_lock(&kvmi->lock);
	kvm = kvmi->kvm;
	if (kvm && !kvm_get_kvm_safe(kvm))
		kvm = NULL;
	spin_unlock(&kvmi->lock);
	return kvm;
}

/**
 * kvmi_is_detached() - tell whether the introspection has ended
 * @kvmi: the introspection
 *
 * Return: true once the VM is gone (or the fd closed); it stays true.
 */
bool kvmi_is_detached(struct kvmi *kvmi)
{
	return !READ_ONCE(kvmi->kvm);
}

/* Publish the changes made to the VM area. */
static void kvmi_vm_state_publish(struct kvmi *kvmi)
{
	struct kvmi_vm_state *vs = kvmi->vm_state;

	/* Pairs with the tool's load-acquire of seq before it reads the rest. */
	smp_store_release(&vs->seq, vs->seq + 1);
}

static void kvmi_vcpu_publish(struct kvmi *kvmi, struct kvmi_vcpu *kv)
{
	/* Pairs with smp_load_acquire() in the fault handler. */
	smp_store_release(&kvmi->vcpus[kv->idx], kv);
}

/*
 * Give the existing vCPUs their regions and make @kvmi the VM's
 * introspection. Nothing is published if it fails.
 */
static int kvmi_attach(struct kvmi *kvmi, struct kvm *kvm)
{
	struct kvm_vcpu *vcpu;
	unsigned long i;
	u32 nr_vcpus = 0;

	lockdep_assert_held(&kvm->lock);

	if (kvm->vm_dead)
		return -EIO;
	if (kvm->kvmi)
		return -EBUSY;

	/* The fd isn't installed yet: no one can see these regions. */
	kvm_for_each_vcpu(i, vcpu, kvm) {
		struct kvmi_vcpu *kv;

		kv = kvmi_mem_vcpu_alloc(kvmi, vcpu->vcpu_idx);
		if (!kv)
			return -ENOMEM;	/* kvmi_free() frees the others */
		kvmi_vcpu_publish(kvmi, kv);
		nr_vcpus++;
	}
	kvm_for_each_vcpu(i, vcpu, kvm)
		WRITE_ONCE(vcpu->kvmi, kvmi->vcpus[vcpu->vcpu_idx]);

	WRITE_ONCE(kvmi->vm_state->max_vcpus, kvmi->max_vcpus);
	WRITE_ONCE(kvmi->vm_state->nr_vcpus, nr_vcpus);
	kvmi_vm_state_publish(kvmi);

	++kvm->stat.kvmi_opens;
	refcount_inc(&kvmi->refcount);	/* the VM's reference */
	spin_lock(&kvmi->lock);
	WRITE_ONCE(kvmi->kvm, kvm);
	spin_unlock(&kvmi->lock);
	kvm->kvmi = kvmi;
	return 0;
}

/*
 * End the introspection of @kvm: the vCPUs forget their state, the fd
 * sees KVMI_VM_DETACHED and EPOLLHUP, and the VM drops its reference.
 * Called with kvm->lock held, or by the VM's destruction.
 */
static void kvmi_detach(struct kvm *kvm)
{
	struct kvmi *kvmi = kvm->kvmi;
	struct kvm_vcpu *vcpu;
	unsigned long i;

	kvm_for_each_vcpu(i, vcpu, kvm)
		WRITE_ONCE(vcpu->kvmi, NULL);
	kvm->kvmi = NULL;

	spin_lock(&kvmi->lock);
	WRITE_ONCE(kvmi->kvm, NULL);
	spin_unlock(&kvmi->lock);

	WRITE_ONCE(kvmi->vm_state->flags,
		   kvmi->vm_state->flags | KVMI_VM_DETACHED);
	kvmi_vm_state_publish(kvmi);
	wake_up_poll(&kvmi->wq, EPOLLHUP);
	/* The guest memory may go: unmap and unpin what the tool mapped. */
	kvmi_sva_detach(kvmi);
	if (kvmi->ops->detach)
		kvmi->ops->detach(kvmi);

	/* Release the waiting vCPUs: they see kvmi->kvm == NULL. */
	for (i = 0; i < kvmi->max_vcpus; i++)
		if (kvmi->vcpus[i])
			kvmi_vcpu_wake(kvmi->vcpus[i]);
	/* Give the intercepts back to KVM and the VMM, before the next entry. */
	kvm_make_all_cpus_request(kvm, KVM_REQ_INTROSPECTION);
	kvm_make_all_cpus_request(kvm, KVM_REQ_MSR_FILTER_CHANGED);

	kvmi_put(kvmi);
}

/**
 * kvmi_transport_end() - end an introspection from its transport
 * @kvmi: the introspection
 *
 * The socket transport's receive thread calls it when the tool closes the
 * connection or breaks the protocol: the introspection ends as by a
 * forced unhook, unless it has ended already.
 */
void kvmi_transport_end(struct kvmi *kvmi)
{
	struct kvm *kvm = kvmi_get_kvm(kvmi);

	if (!kvm)
		return;
	mutex_lock(&kvm->lock);
	if (kvm->kvmi == kvmi)
		kvmi_detach(kvm);
	mutex_unlock(&kvm->lock);
	kvm_put_kvm(kvm);
}

static int kvmi_release(struct inode *inode, struct file *file)
{
	struct kvmi *kvmi = file->private_data;
	struct kvm *kvm;

	/*
	 * No VM: already detached, or being destroyed, and then
	 * kvmi_destroy_vm() detaches it.
	 */
	kvm = kvmi_get_kvm(kvmi);
	if (kvm) {
		mutex_lock(&kvm->lock);
		if (kvm->kvmi == kvmi)
			kvmi_detach(kvm);
		mutex_unlock(&kvm->lock);
		kvm_put_kvm(kvm);
	}
	kvmi_put(kvmi);
	return 0;
}

static long kvmi_ioctl(struct file *file, unsigned int cmd, unsigned long arg)
{
	struct kvmi *kvmi = file->private_data;
	struct kvm *kvm;
	long r;

	kvm = kvmi_get_kvm(kvmi);
	if (!kvm)
		return -ENODEV;
	r = kvmi_ioctl_dispatch(kvmi, kvm, cmd, (void __user *)arg);
	kvm_put_kvm(kvm);
	return r;
}

static int kvmi_mmap(struct file *file, struct vm_area_struct *vma)
{
	struct kvmi *kvmi = file->private_data;

	if (kvmi_is_detached(kvmi))
		return -ENODEV;
	if (kvmi_sva_is_window(vma))
		return kvmi_sva_mmap(kvmi, vma);
	return kvmi_mem_mmap(kvmi, vma);
}

static __poll_t kvmi_poll(struct file *file, poll_table *wait)
{
	struct kvmi *kvmi = file->private_data;

	__poll_t mask = 0;

	poll_wait(file, &kvmi->wq, wait);
	if (READ_ONCE(kvmi->vm_state->flags) & KVMI_VM_UNHOOK)
		mask |= EPOLLPRI;
	if (kvmi_is_detached(kvmi))
		mask |= EPOLLHUP;
	return mask;
}

static const struct file_operations kvmi_fops = {
	.owner = THIS_MODULE,
	.release = kvmi_release,
	.unlocked_ioctl = kvmi_ioctl,
	.compat_ioctl = compat_ptr_ioctl,
	.mmap = kvmi_mmap,
	.poll = kvmi_poll,
	.llseek = noop_llseek,
};

static int kvmi_check_open(void __user *argp, u32 *transport, int *fd)
{
	struct kvmi_open op;
	u32 usize;
	int r;

	if (get_user(usize, (u32 __user *)argp))
		return -EFAULT;
	if (usize < sizeof(op))
		return -EINVAL;
	r = copy_struct_from_user(&op, sizeof(op), argp, usize);
	if (r)
		return r;

	if (op.flags || op.reserved[0] || op.reserved[1])
		return -EINVAL;
	if (op.transport != KVMI_TRANSPORT_SOCKET &&
	    (op.transport != KVMI_TRANSPORT_RING || op.transport_fd))
		return -EINVAL;
	*transport = op.transport;
	*fd = op.transport_fd;
	return 0;
}

/**
 * kvmi_ioctl_open() - KVM_INTROSPECTION_OPEN on a VM fd
 * @kvm: the VM
 * @argp: the caller's struct kvmi_open
 *
 * Any process holding the VM fd may call it. Gives every existing vCPU its
 * regions and returns the new introspection fd.
 *
 * Return: the fd (O_CLOEXEC), or -errno (kvmi.rst, section 6.1).
 */
int kvmi_ioctl_open(struct kvm *kvm, void __user *argp)
{
	struct kvmi *kvmi;
	struct file *file;
	int fd, r, tfd;
	u32 transport;

	r = kvmi_check_open(argp, &transport, &tfd);
	if (r)
		return r;
	if (!kvmi_arch_vm_supported(kvm))
		return -EOPNOTSUPP;

	kvmi = kvmi_alloc(kvm);
	if (!kvmi)
		return -ENOMEM;
	if (transport == KVMI_TRANSPORT_SOCKET) {
		r = kvmi_socket_open(kvmi, tfd);
		if (r) {
			kvmi_put(kvmi);
			return r;
		}
	}

	fd = get_unused_fd_flags(O_CLOEXEC);
	if (fd < 0) {
		kvmi_put(kvmi);
		return fd;
	}

	/* From here on the file owns the first reference. */
	file = anon_inode_getfile("kvm-introspection", &kvmi_fops, kvmi,
				  O_RDWR | O_CLOEXEC);
	if (IS_ERR(file)) {
		put_unused_fd(fd);
		kvmi_put(kvmi);
		return PTR_ERR(file);
	}

	mutex_lock(&kvm->lock);
	r = kvmi_attach(kvmi, kvm);
	if (!r && kvmi->ops->start) {
		r = kvmi->ops->start(kvmi);
		if (r)
			kvmi_detach(kvm);
	}
	mutex_unlock(&kvm->lock);
	if (r) {
		fput(file);
		put_unused_fd(fd);
		return r;
	}

	fd_install(fd, file);
	return fd;
}

/**
 * kvmi_vcpu_create() - prepare the regions of a vCPU being created
 * @vcpu: the new vCPU, not reachable by userspace yet
 *
 * Called with kvm->lock held, once vcpu->vcpu_idx is known. The regions
 * are shown to the tool by kvmi_vcpu_online(), or freed by
 * kvmi_vcpu_free() if the creation fails.
 *
 * Return: 0, or -ENOMEM.
 */
int kvmi_vcpu_create(struct kvm_vcpu *vcpu)
{
	struct kvmi *kvmi = vcpu->kvm->kvmi;
	struct kvmi_vcpu *kv;

	lockdep_assert_held(&vcpu->kvm->lock);

	if (!kvmi)
		return 0;
	kv = kvmi_mem_vcpu_alloc(kvmi, vcpu->vcpu_idx);
	if (!kv)
		return -ENOMEM;
	WRITE_ONCE(vcpu->kvmi, kv);
	return 0;
}

/**
 * kvmi_vcpu_online() - show a new vCPU's regions to the tool
 * @vcpu: the vCPU, online now
 *
 * Called with kvm->lock held, in the same critical section as
 * kvmi_vcpu_create(). Can't fail.
 */
void kvmi_vcpu_online(struct kvm_vcpu *vcpu)
{
	struct kvmi_vcpu *kv = vcpu->kvmi;
	struct kvmi *kvmi;

	lockdep_assert_held(&vcpu->kvm->lock);

	if (!kv)
		return;
	kvmi = kv->kvmi;
	kvmi_vcpu_publish(kvmi, kv);
	WRITE_ONCE(kvmi->vm_state->nr_vcpus, kv->idx + 1);
	kvmi_vm_state_publish(kvmi);
	/* Intercepts for the events it starts with, before its first entry. */
	kvm_make_request(KVM_REQ_INTROSPECTION, vcpu);
	kvm_make_request(KVM_REQ_MSR_FILTER_CHANGED, vcpu);
}

/**
 * kvmi_vcpu_free() - undo kvmi_vcpu_create() for a vCPU that failed
 * @vcpu: the vCPU, never online
 *
 * Called with kvm->lock held.
 */
void kvmi_vcpu_free(struct kvm_vcpu *vcpu)
{
	lockdep_assert_held(&vcpu->kvm->lock);

	if (!vcpu->kvmi)
		return;
	kvmi_mem_vcpu_free(vcpu->kvmi);
	WRITE_ONCE(vcpu->kvmi, NULL);
}

/**
 * kvmi_destroy_vm() - detach the introspection of a VM being destroyed
 * @kvm: the VM, which no one can reach any more
 *
 * The introspection fd, if still open, stays valid but detached: its
 * ioctls and mmap() fail with -ENODEV, poll() reports EPOLLHUP and the
 * existing mappings keep their pages.
 */
void kvmi_destroy_vm(struct kvm *kvm)
{
	if (kvm->kvmi)
		kvmi_detach(kvm);
}

/* Raise the UNHOOK event: a VM event, which stops no vCPU (10.2). */
static void kvmi_unhook_event(struct kvmi *kvmi)
{
	struct eventfd_ctx *ctx;

	WRITE_ONCE(kvmi->vm_state->flags,
		   kvmi->vm_state->flags | KVMI_VM_UNHOOK);
	kvmi_vm_state_publish(kvmi);

	rcu_read_lock();
	ctx = rcu_dereference(kvmi->notify);
	if (ctx)
		eventfd_signal(ctx);
	rcu_read_unlock();
	trace_kvmi_doorbell(KVMI_ALL_VCPUS, KVMI_TRACE_VM_NOTIFY);
	wake_up_poll(&kvmi->wq, EPOLLPRI);
	if (kvmi->ops->unhook)
		kvmi->ops->unhook(kvmi);
}

/**
 * kvmi_unhook() - KVM_INTROSPECTION_UNHOOK
 * @kvm: the VM, whose creator calls
 * @argp: the caller's struct kvmi_unhook
 *
 * Asks the tool to leave (the UNHOOK event, raised once), waits for it to
 * close the fd, and with KVMI_UNHOOK_FORCE detaches it when the time is
 * up, as a close() would.
 *
 * Return: 0 once detached, or -errno (kvmi.rst, section 6.4).
 */
int kvmi_unhook(struct kvm *kvm, void __user *argp)
{
	struct kvmi_unhook uh;
	struct kvmi *kvmi;
	long r = 0;

	if (copy_from_user(&uh, argp, sizeof(uh)))
		return -EFAULT;
	if ((uh.flags & ~KVMI_UNHOOK_FORCE) || uh.padding)
		return -EINVAL;

	mutex_lock(&kvm->lock);
	kvmi = kvm->kvmi;
	if (!kvmi) {
		mutex_unlock(&kvm->lock);
		return -ENOENT;
	}
	refcount_inc(&kvmi->refcount);
	++kvm->stat.kvmi_unhooks;
	if (!(kvmi->vm_state->flags & KVMI_VM_UNHOOK))
		kvmi_unhook_event(kvmi);
	mutex_unlock(&kvm->lock);

	/* kvmi_detach() wakes kvmi->wq. */
	if (uh.timeout_ns)
		r = wait_event_interruptible_hrtimeout(kvmi->wq,
						       kvmi_is_detached(kvmi),
						       ns_to_ktime(uh.timeout_ns));
	if (r == -ERESTARTSYS) {
		r = -EINTR;
	} else if (kvmi_is_detached(kvmi)) {
		r = 0;
	} else if (uh.flags & KVMI_UNHOOK_FORCE) {
		mutex_lock(&kvm->lock);
		if (kvm->kvmi == kvmi) {
			kvmi_detach(kvm);
			++kvm->stat.kvmi_forced_unhooks;
		}
		mutex_unlock(&kvm->lock);
		r = 0;
	} else {
		r = -ETIMEDOUT;
	}
	kvmi_put(kvmi);
	return r;
}
