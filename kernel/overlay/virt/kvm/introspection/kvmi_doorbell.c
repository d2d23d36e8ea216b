// SPDX-License-Identifier: GPL-2.0-only
/*
 * kvmi-ring: the doorbells, KVMI_IOCTL_SET_VCPU_DOORBELLS (kvmi.rst,
 * sections 7.7 and 12).
 *
 * A notify eventfd is signalled by the vCPU thread when it publishes an
 * event; the vCPU finds it under rcu_read_lock(), so that a replaced one
 * is released only after a grace period. A kick eventfd is watched with a
 * wait-queue callback, as irqfd does (virt/kvm/eventfd.c): the callback
 * consumes the counter and wakes the vCPU, or for the VM-wide one every
 * vCPU without a kick eventfd of its own.
 */
#include <linux/eventfd.h>
#include <linux/file.h>
#include <linux/slab.h>
#include <linux/uaccess.h>

#include "kvmi_int.h"

static int kvmi_kick_wakeup(wait_queue_entry_t *wait, unsigned int mode,
			    int sync, void *key)
{
	struct kvmi_kick *k = container_of(wait, struct kvmi_kick, wait);
	struct kvmi *kvmi = k->kvmi;
	struct kvmi_vcpu *kv;
	u32 i, nr;
	u64 cnt;

	if (!(key_to_poll(key) & EPOLLIN))
		return 0;

	/* Called with the eventfd's wait queue lock held. */
	eventfd_ctx_do_read(k->ctx, &cnt);

	if (k->kv) {
		atomic_set(&k->kv->kicked, 1);
		kvmi_vcpu_wake(k->kv);
		return 0;
	}

	nr = min(READ_ONCE(kvmi->vm_state->nr_vcpus), kvmi->max_vcpus);
	for (i = 0; i < nr; i++) {
		/* Pairs with the store-release that publishes the vCPU. */
		kv = smp_load_acquire(&kvmi->vcpus[i]);
		if (!kv || READ_ONCE(kv->kick))
			continue;
		atomic_set(&kv->kicked, 1);
		kvmi_vcpu_wake(kv);
	}
	return 0;
}

static void kvmi_kick_queue(struct file *file, wait_queue_head_t *wqh,
			    poll_table *pt)
{
	struct kvmi_kick *k = container_of(pt, struct kvmi_kick, pt);

	add_wait_queue(wqh, &k->wait);
}

static struct kvmi_kick *kvmi_kick_create(struct kvmi *kvmi,
					  struct kvmi_vcpu *kv, int fd)
{
	struct eventfd_ctx *ctx;
	struct kvmi_kick *k;
	struct fd f;

	f = fdget(fd);
	if (!fd_file(f))
		return ERR_PTR(-EBADF);

	ctx = eventfd_ctx_fileget(fd_file(f));
	if (IS_ERR(ctx)) {
		fdput(f);
		return ERR_CAST(ctx);
	}

	k = kzalloc(sizeof(*k), GFP_KERNEL_ACCOUNT);
	if (!k) {
		eventfd_ctx_put(ctx);
		fdput(f);
		return ERR_PTR(-ENOMEM);
	}
	k->kvmi = kvmi;
	k->kv = kv;
	k->ctx = ctx;
	init_waitqueue_func_entry(&k->wait, kvmi_kick_wakeup);
	init_poll_funcptr(&k->pt, kvmi_kick_queue);

	/*
	 * Queue the callback. A count already in the eventfd is left there:
	 * the next write wakes the callback, which consumes it all.
	 */
	vfs_poll(fd_file(f), &k->pt);
	fdput(f);
	return k;
}

static void kvmi_kick_destroy(struct kvmi_kick *k)
{
	u64 cnt;

	if (!k)
		return;
	/* Once it returns, the callback is not running and never will. */
	eventfd_ctx_remove_wait_queue(k->ctx, &k->wait, &cnt);
	eventfd_ctx_put(k->ctx);
	kfree(k);
}

static struct eventfd_ctx *kvmi_notify_get(int fd)
{
	if (fd == -1)
		return NULL;
	return eventfd_ctx_fdget(fd);
}

static void kvmi_wake_all(struct kvmi *kvmi)
{
	struct kvmi_vcpu *kv;
	u32 i;

	for (i = 0; i < kvmi->max_vcpus; i++) {
		/* Pairs with the store-release that publishes the vCPU. */
		kv = smp_load_acquire(&kvmi->vcpus[i]);
		if (kv) {
			WRITE_ONCE(kv->wait_gen, kv->wait_gen + 1);
			kvmi_vcpu_wake(kv);
		}
	}
}

/**
 * kvmi_ioctl_set_doorbells() - KVMI_IOCTL_SET_VCPU_DOORBELLS
 * @kvmi: the introspection
 * @kvm: the VM, referenced by the caller
 * @argp: the caller's struct kvmi_doorbells
 *
 * Return: 0, or -EINVAL, -EBADF, -ENOENT, -ENOMEM, -EFAULT (kvmi.rst, 7.7).
 */
int kvmi_ioctl_set_doorbells(struct kvmi *kvmi, struct kvm *kvm,
			     void __user *argp)
{
	struct eventfd_ctx *notify = NULL, *old_notify = NULL;
	struct kvmi_kick *kick = NULL, *old_kick = NULL;
	struct eventfd_ctx __rcu **notify_slot;
	struct kvmi_kick **kick_slot;
	struct kvmi_doorbells db;
	struct kvmi_vcpu *kv = NULL;
	const u32 known = KVMI_DOORBELL_NOTIFY | KVMI_DOORBELL_KICK;

	if (copy_from_user(&db, argp, sizeof(db)))
		return -EFAULT;
	if (!db.flags || (db.flags & ~known))
		return -EINVAL;
	if (!(db.flags & KVMI_DOORBELL_NOTIFY) && db.notify_fd != -1)
		return -EINVAL;
	if (!(db.flags & KVMI_DOORBELL_KICK) && db.kick_fd != -1)
		return -EINVAL;
	if (db.vcpu != KVMI_ALL_VCPUS) {
		kv = kvmi_vcpu_by_idx(kvmi, db.vcpu);
		if (!kv)
			return -ENOENT;
	}

	if (db.flags & KVMI_DOORBELL_NOTIFY) {
		notify = kvmi_notify_get(db.notify_fd);
		if (IS_ERR(notify))
			return PTR_ERR(notify);
	}
	if ((db.flags & KVMI_DOORBELL_KICK) && db.kick_fd != -1) {
		kick = kvmi_kick_create(kvmi, kv, db.kick_fd);
		if (IS_ERR(kick)) {
			if (notify)
				eventfd_ctx_put(notify);
			return PTR_ERR(kick);
		}
	}

	notify_slot = kv ? &kv->notify : &kvmi->notify;
	kick_slot = kv ? &kv->kick : &kvmi->kick;

	mutex_lock(&kvmi->db_lock);
	if (db.flags & KVMI_DOORBELL_NOTIFY)
		old_notify = rcu_replace_pointer(*notify_slot, notify,
						 lockdep_is_held(&kvmi->db_lock));
	if (db.flags & KVMI_DOORBELL_KICK) {
		old_kick = *kick_slot;
		WRITE_ONCE(*kick_slot, kick);
	}
	mutex_unlock(&kvmi->db_lock);

	/* The vCPUs re-evaluate how they wait. */
	if (kv) {
		WRITE_ONCE(kv->wait_gen, kv->wait_gen + 1);
		kvmi_vcpu_wake(kv);
	} else {
		kvmi_wake_all(kvmi);
	}

	kvmi_kick_destroy(old_kick);
	if (old_notify) {
		/* A vCPU may be signalling it (kvmi_notify()). */
		synchronize_rcu();
		eventfd_ctx_put(old_notify);
	}
	return 0;
}

static void kvmi_doorbells_put(struct eventfd_ctx __rcu **notify,
			       struct kvmi_kick **kick)
{
	struct eventfd_ctx *ctx = rcu_dereference_protected(*notify, 1);

	if (ctx)
		eventfd_ctx_put(ctx);
	RCU_INIT_POINTER(*notify, NULL);
	kvmi_kick_destroy(*kick);
	*kick = NULL;
}

/**
 * kvmi_doorbells_release() - release every eventfd of an introspection
 * @kvmi: the introspection, which no one else can reach any more
 *
 * Called when the struct kvmi is freed, after an RCU grace period: no
 * vCPU uses the notify eventfds any more.
 */
void kvmi_doorbells_release(struct kvmi *kvmi)
{
	u32 i;

	if (kvmi->vcpus)
		for (i = 0; i < kvmi->max_vcpus; i++)
			if (kvmi->vcpus[i])
				kvmi_doorbells_put(&kvmi->vcpus[i]->notify,
						   &kvmi->vcpus[i]->kick);
	kvmi_doorbells_put(&kvmi->notify, &kvmi->kick);
}
