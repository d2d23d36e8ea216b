// SPDX-License-Identifier: GPL-2.0-only
/*
 * kvmi-ring: guest discovery, the control device /dev/kvmi (kvmi.rst,
 * section 20).
 *
 * A privileged tool opens /dev/kvmi, reads GUEST_ON and GUEST_OFF records
 * as guests appear and go, lists the guests present (GET_GUESTS) and opens
 * introspection of one of them by its id (OPEN_GUEST), which is
 * KVM_INTROSPECTION_OPEN on the VM, with the same rules.
 *
 * A VM becomes a guest, gets its id and is announced when its first vCPU
 * is created: by then the VMM has had the chance to set its UUID and to
 * opt out. It stops being one when it is destroyed.
 *
 * Locking. kvmi_disc_lock, a mutex, protects the list of guests, the list
 * of openers, the sequence number and the discovery state of every VM
 * (kvm->kvmi_guest). It is held with no KVM lock, and no KVM lock is taken
 * under it: OPEN_GUEST takes a reference on the VM under it, with
 * kvm_get_kvm_safe(), and opens introspection (kvm->lock) after dropping
 * it; the hooks run outside kvm->lock. Each opener's queue has its own
 * spinlock, taken inside kvmi_disc_lock by the producers, and a mutex
 * that serializes its readers.
 *
 * OPT_OUT against OPEN_GUEST: OPEN_GUEST counts itself in
 * kvm->kvmi_guest.opening, then checks the opt-out flag; OPT_OUT sets the
 * flag, then waits until no OPEN_GUEST is in progress. With a full barrier
 * on each side, either OPEN_GUEST sees the flag or OPT_OUT waits for it,
 * and then sees the introspection it opened.
 *
 * Cost. A VM pays one test of a flag per vCPU created, and one lock round
 * when it is announced and when it is destroyed; records are only made
 * when someone has the device open.
 */
#include <linux/capability.h>
#include <linux/fs.h>
#include <linux/kvmi_discovery.h>
#include <linux/miscdevice.h>
#include <linux/mutex.h>
#include <linux/pid.h>
#include <linux/pid_namespace.h>
#include <linux/poll.h>
#include <linux/sched.h>
#include <linux/slab.h>
#include <linux/timekeeping.h>
#include <linux/uaccess.h>
#include <linux/uuid.h>
#include <linux/wait_bit.h>

#include "kvmi_int.h"

static_assert(sizeof(struct kvmi_guest_uuid) == 24);
static_assert(sizeof(struct kvmi_opt_out) == 8);
static_assert(sizeof(struct kvmi_guest_record) == 64);
static_assert(sizeof(struct kvmi_discovery_info) == 32);
static_assert(sizeof(struct kvmi_guest_list) == 32);
static_assert(sizeof(struct kvmi_open_guest) == 24);
static_assert(sizeof(((struct kvmi_guest *)0)->uuid) == 16);

/* Records queued per opener; a power of two. */
#define KVMI_DISC_QUEUE_LEN	64

/**
 * struct kvmi_watcher - one opener of /dev/kvmi
 * @node: in kvmi_watchers, under kvmi_disc_lock.
 * @pid_ns: the opener's pid namespace, in which @q's pids are given.
 * @lock: protects @head, @tail, @overflow and @lost_seq.
 * @read_lock: serializes the readers, so that a record leaves the queue
 *	only once it has been copied out.
 * @wq: where readers and poll() wait for a record.
 * @head: free-running index of the next record to read.
 * @tail: free-running index of the next record to write.
 * @overflow: records were lost; the OVERFLOW record is due after @q.
 * @lost_seq: the sequence number of the first record lost.
 * @q: the queue.
 */
struct kvmi_watcher {
	struct list_head node;
	struct pid_namespace *pid_ns;
	spinlock_t lock;	/* protects the queue indices and overflow */
	struct mutex read_lock;	/* serializes readers */
	wait_queue_head_t wq;
	u32 head;
	u32 tail;
	bool overflow;
	u64 lost_seq;
	struct kvmi_guest_record q[KVMI_DISC_QUEUE_LEN];
};

static DEFINE_MUTEX(kvmi_disc_lock);
static LIST_HEAD(kvmi_guests);
static LIST_HEAD(kvmi_watchers);
static u32 kvmi_nr_guests;
static u64 kvmi_disc_seq;
static u64 kvmi_last_guest_id;
static bool kvmi_dev_registered;

static struct kvm *kvmi_guest_kvm(struct kvmi_guest *g)
{
	return container_of(g, struct kvm, kvmi_guest);
}

/* The UUID a VMM didn't set: random (version 4), made once. */
static void kvmi_guest_default_uuid(struct kvmi_guest *g)
{
	lockdep_assert_held(&kvmi_disc_lock);

	if (!g->uuid_set) {
		generate_random_uuid(g->uuid);
		g->uuid_set = true;
	}
}

/* A record about @kvm, with its pid as seen from @ns. */
static void kvmi_guest_fill(struct kvm *kvm, u32 type, u64 seq,
			    struct pid_namespace *ns,
			    struct kvmi_guest_record *rec)
{
	struct kvmi_guest *g = &kvm->kvmi_guest;

	lockdep_assert_held(&kvmi_disc_lock);

	memset(rec, 0, sizeof(*rec));
	rec->type = type;
	rec->flags = g->opted_out ? KVMI_GUEST_OPTED_OUT : 0;
	rec->seq = seq;
	rec->id = g->id;
	memcpy(rec->uuid, g->uuid, sizeof(rec->uuid));
	rec->pid = pid_nr_ns(g->pid, ns);
	rec->nr_vcpus = atomic_read(&kvm->online_vcpus);
	rec->max_vcpus = kvm->max_vcpus;
	rec->created_ns = g->created_ns;
}

static void kvmi_watcher_push(struct kvmi_watcher *w, struct kvm *kvm,
			      u32 type, u64 seq)
{
	struct kvmi_guest_record *slot;

	spin_lock(&w->lock);
	if (w->overflow) {
		/* Dropped until the reader has seen the OVERFLOW record. */
	} else if (w->tail - w->head == KVMI_DISC_QUEUE_LEN) {
		w->overflow = true;
		w->lost_seq = seq;
	} else {
		slot = &w->q[w->tail % KVMI_DISC_QUEUE_LEN];
		kvmi_guest_fill(kvm, type, seq, w->pid_ns, slot);
		w->tail++;
	}
	spin_unlock(&w->lock);
	wake_up_interruptible_poll(&w->wq, EPOLLIN | EPOLLRDNORM);
}

/* Give a new record, numbered seq, to every opener. */
static void kvmi_guest_notify(struct kvm *kvm, u32 type, u64 seq)
{
	struct kvmi_watcher *w;

	lockdep_assert_held(&kvmi_disc_lock);

	list_for_each_entry(w, &kvmi_watchers, node)
		kvmi_watcher_push(w, kvm, type, seq);
}

/**
 * kvmi_discovery_vcpu_created() - announce a VM at its first vCPU
 * @kvm: the VM, one of whose vCPUs is now online
 *
 * Called by the VMM's thread after each KVM_CREATE_VCPU; does something
 * only the first time. The guest gets its id, its default UUID if the
 * VMM set none, and every opener of /dev/kvmi a GUEST_ON record.
 */
void kvmi_discovery_vcpu_created(struct kvm *kvm)
{
	struct kvmi_guest *g = &kvm->kvmi_guest;

	/* Set under kvmi_disc_lock, once, and never cleared. */
	if (likely(READ_ONCE(g->announced)))
		return;

	mutex_lock(&kvmi_disc_lock);
	if (!g->announced) {
		kvmi_guest_default_uuid(g);
		g->id = ++kvmi_last_guest_id;
		g->pid = get_task_pid(current, PIDTYPE_TGID);
		g->created_ns = ktime_get_real_ns();
		g->seq = ++kvmi_disc_seq;
		list_add_tail(&g->node, &kvmi_guests);
		kvmi_nr_guests++;
		WRITE_ONCE(g->announced, true);
		kvmi_guest_notify(kvm, KVMI_GUEST_ON, g->seq);
	}
	mutex_unlock(&kvmi_disc_lock);
}

/**
 * kvmi_discovery_destroy_vm() - a guest is going away
 * @kvm: the VM being destroyed, which no one else can reach
 *
 * Called at the start of the VM's destruction. Every opener of /dev/kvmi
 * gets a GUEST_OFF record, and OPEN_GUEST no longer finds the guest (it
 * couldn't take a reference on it anyway).
 */
void kvmi_discovery_destroy_vm(struct kvm *kvm)
{
	struct kvmi_guest *g = &kvm->kvmi_guest;

	if (!READ_ONCE(g->announced))
		return;

	mutex_lock(&kvmi_disc_lock);
	list_del(&g->node);
	kvmi_nr_guests--;
	kvmi_guest_notify(kvm, KVMI_GUEST_OFF, ++kvmi_disc_seq);
	mutex_unlock(&kvmi_disc_lock);
	put_pid(g->pid);
	g->pid = NULL;
}

/* KVM_INTROSPECTION_SET_UUID: only before the guest is announced. */
static int kvmi_set_uuid(struct kvm *kvm, void __user *argp)
{
	struct kvmi_guest *g = &kvm->kvmi_guest;
	struct kvmi_guest_uuid u;
	int r = 0;

	if (copy_from_user(&u, argp, sizeof(u)))
		return -EFAULT;
	if (u.flags || u.padding || !memchr_inv(u.uuid, 0, sizeof(u.uuid)))
		return -EINVAL;

	mutex_lock(&kvmi_disc_lock);
	if (g->announced) {
		r = -EBUSY;
	} else {
		memcpy(g->uuid, u.uuid, sizeof(g->uuid));
		g->uuid_set = true;
	}
	mutex_unlock(&kvmi_disc_lock);
	return r;
}

/* KVM_INTROSPECTION_GET_UUID */
static int kvmi_get_uuid(struct kvm *kvm, void __user *argp)
{
	struct kvmi_guest *g = &kvm->kvmi_guest;
	struct kvmi_guest_uuid u = {};

	mutex_lock(&kvmi_disc_lock);
	kvmi_guest_default_uuid(g);
	memcpy(u.uuid, g->uuid, sizeof(u.uuid));
	mutex_unlock(&kvmi_disc_lock);

	return copy_to_user(argp, &u, sizeof(u)) ? -EFAULT : 0;
}

/*
 * KVM_INTROSPECTION_OPT_OUT: refuse OPEN_GUEST from now on. Returns 1 if
 * an introspection fd is open when it returns (it may have come through
 * the device before the opt-out), else 0.
 */
static int kvmi_opt_out(struct kvm *kvm, void __user *argp)
{
	struct kvmi_guest *g = &kvm->kvmi_guest;
	struct kvmi_opt_out oo;
	int r;

	if (copy_from_user(&oo, argp, sizeof(oo)))
		return -EFAULT;
	if (oo.flags || oo.padding)
		return -EINVAL;

	mutex_lock(&kvmi_disc_lock);
	WRITE_ONCE(g->opted_out, true);
	mutex_unlock(&kvmi_disc_lock);

	/* Pairs with smp_mb__after_atomic() in kvmi_dev_open_guest(). */
	smp_mb();
	wait_var_event(&g->opening, !atomic_read(&g->opening));

	mutex_lock(&kvm->lock);
	r = kvm->kvmi ? 1 : 0;
	mutex_unlock(&kvm->lock);
	return r;
}

/**
 * kvmi_discovery_vm_ioctl() - the discovery ioctls of the VM fd
 * @kvm: the VM, whose creator calls
 * @ioctl: KVM_INTROSPECTION_SET_UUID, _GET_UUID or _OPT_OUT
 * @argp: its argument
 *
 * Return: 0 (OPT_OUT: 0 or 1) or -errno (kvmi.rst, section 20.2).
 */
int kvmi_discovery_vm_ioctl(struct kvm *kvm, unsigned int ioctl,
			    void __user *argp)
{
	switch (ioctl) {
	case KVM_INTROSPECTION_SET_UUID:
		return kvmi_set_uuid(kvm, argp);
	case KVM_INTROSPECTION_GET_UUID:
		return kvmi_get_uuid(kvm, argp);
	case KVM_INTROSPECTION_OPT_OUT:
		return kvmi_opt_out(kvm, argp);
	default:
		return -ENOTTY;
	}
}

static int kvmi_dev_open(struct inode *inode, struct file *file)
{
	struct kvmi_watcher *w;

	/* The whole host's guests: the init namespace's administrator. */
	if (!capable(CAP_SYS_ADMIN))
		return -EPERM;

	w = kzalloc(sizeof(*w), GFP_KERNEL_ACCOUNT);
	if (!w)
		return -ENOMEM;
	spin_lock_init(&w->lock);
	mutex_init(&w->read_lock);
	init_waitqueue_head(&w->wq);
	w->pid_ns = get_pid_ns(task_active_pid_ns(current));

	mutex_lock(&kvmi_disc_lock);
	list_add_tail(&w->node, &kvmi_watchers);
	mutex_unlock(&kvmi_disc_lock);

	file->private_data = w;
	return stream_open(inode, file);
}

static int kvmi_dev_release(struct inode *inode, struct file *file)
{
	struct kvmi_watcher *w = file->private_data;

	mutex_lock(&kvmi_disc_lock);
	list_del(&w->node);
	mutex_unlock(&kvmi_disc_lock);

	put_pid_ns(w->pid_ns);
	kfree(w);
	return 0;
}

static bool kvmi_watcher_ready(struct kvmi_watcher *w)
{
	bool ready;

	spin_lock(&w->lock);
	ready = w->head != w->tail || w->overflow;
	spin_unlock(&w->lock);
	return ready;
}

/*
 * Copy the next record to @rec without consuming it.
 * Return: 0 if there is none, 1 for a queued record, 2 for OVERFLOW.
 */
static int kvmi_watcher_peek(struct kvmi_watcher *w,
			     struct kvmi_guest_record *rec)
{
	int kind = 0;

	spin_lock(&w->lock);
	if (w->head != w->tail) {
		*rec = w->q[w->head % KVMI_DISC_QUEUE_LEN];
		kind = 1;
	} else if (w->overflow) {
		memset(rec, 0, sizeof(*rec));
		rec->type = KVMI_GUEST_OVERFLOW;
		rec->seq = w->lost_seq;
		kind = 2;
	}
	spin_unlock(&w->lock);
	return kind;
}

static void kvmi_watcher_consume(struct kvmi_watcher *w, int kind)
{
	spin_lock(&w->lock);
	if (kind == 1)
		w->head++;
	else
		w->overflow = false;
	spin_unlock(&w->lock);
}

static ssize_t kvmi_dev_read(struct file *file, char __user *buf,
			     size_t count, loff_t *ppos)
{
	struct kvmi_watcher *w = file->private_data;
	struct kvmi_guest_record rec;
	size_t done = 0;
	int kind, r;

	if (count < sizeof(rec))
		return -EINVAL;

	for (;;) {
		if (!kvmi_watcher_ready(w)) {
			if (file->f_flags & O_NONBLOCK)
				return -EAGAIN;
			r = wait_event_interruptible(w->wq,
						     kvmi_watcher_ready(w));
			if (r)
				return r;
		}
		r = mutex_lock_interruptible(&w->read_lock);
		if (r)
			return r;
		while (done + sizeof(rec) <= count) {
			kind = kvmi_watcher_peek(w, &rec);
			if (!kind)
				break;
			/* A record leaves the queue once it is copied. */
			if (copy_to_user(buf + done, &rec, sizeof(rec))) {
				mutex_unlock(&w->read_lock);
				return done ? done : -EFAULT;
			}
			kvmi_watcher_consume(w, kind);
			done += sizeof(rec);
		}
		mutex_unlock(&w->read_lock);
		/* Empty again: another reader took the records. */
		if (done)
			return done;
	}
}

static __poll_t kvmi_dev_poll(struct file *file, poll_table *wait)
{
	struct kvmi_watcher *w = file->private_data;

	poll_wait(file, &w->wq, wait);
	return kvmi_watcher_ready(w) ? EPOLLIN | EPOLLRDNORM : 0;
}

/* KVMI_DEV_GET_INFO */
static int kvmi_dev_get_info(void __user *argp)
{
	struct kvmi_discovery_info info = {
		.version = KVMI_VERSION,
		.record_size = sizeof(struct kvmi_guest_record),
		.queue_len = KVMI_DISC_QUEUE_LEN,
	};

	return copy_to_user(argp, &info, sizeof(info)) ? -EFAULT : 0;
}

/* KVMI_DEV_GET_GUESTS */
static int kvmi_dev_get_guests(void __user *argp)
{
	struct pid_namespace *ns = task_active_pid_ns(current);
	struct kvmi_guest_record *recs = NULL;
	struct kvmi_guest_list gl;
	struct kvmi_guest *g;
	u32 n = 0;
	int r = 0;

	if (copy_from_user(&gl, argp, sizeof(gl)))
		return -EFAULT;
	if (gl.flags || gl.padding)
		return -EINVAL;

	mutex_lock(&kvmi_disc_lock);
	gl.total = kvmi_nr_guests;
	gl.seq = kvmi_disc_seq;
	gl.count = min(gl.count, gl.total);
	if (gl.count) {
		recs = kvmalloc_array(gl.count, sizeof(*recs),
				      GFP_KERNEL_ACCOUNT);
		if (!recs) {
			mutex_unlock(&kvmi_disc_lock);
			return -ENOMEM;
		}
		list_for_each_entry(g, &kvmi_guests, node) {
			if (n == gl.count)
				break;
			kvmi_guest_fill(kvmi_guest_kvm(g), KVMI_GUEST_ON,
					g->seq, ns, &recs[n++]);
		}
	}
	mutex_unlock(&kvmi_disc_lock);

	if (n && copy_to_user(u64_to_user_ptr(gl.guests), recs,
			      n * sizeof(*recs)))
		r = -EFAULT;
	else if (copy_to_user(argp, &gl, sizeof(gl)))
		r = -EFAULT;
	kvfree(recs);
	return r;
}

/* Find a guest by id and take a reference on its VM. */
static struct kvm *kvmi_guest_get(u64 id)
{
	struct kvm *kvm = NULL;
	struct kvmi_guest *g;

	mutex_lock(&kvmi_disc_lock);
	list_for_each_entry(g, &kvmi_guests, node) {
		if (g->id != id)
			continue;
		kvm = kvmi_guest_kvm(g);
		/* Fails once the last reference is gone: being destroyed. */
		if (!kvm_get_kvm_safe(kvm))
			kvm = NULL;
		break;
	}
	mutex_unlock(&kvmi_disc_lock);
	return kvm;
}

/* KVMI_DEV_OPEN_GUEST: KVM_INTROSPECTION_OPEN on the guest's VM. */
static int kvmi_dev_open_guest(void __user *argp)
{
	struct kvmi_open_guest og;
	struct kvmi_guest *g;
	struct kvm *kvm;
	int r;

	if (copy_from_user(&og, argp, sizeof(og)))
		return -EFAULT;
	if (og.flags || og.padding)
		return -EINVAL;

	kvm = kvmi_guest_get(og.id);
	if (!kvm)
		return -ENOENT;
	g = &kvm->kvmi_guest;

	atomic_inc(&g->opening);
	/* Pairs with smp_mb() in kvmi_opt_out(). */
	smp_mb__after_atomic();
	if (READ_ONCE(g->opted_out))
		r = -EACCES;
	else
		r = kvmi_ioctl_open(kvm, u64_to_user_ptr(og.open));
	if (atomic_dec_and_test(&g->opening))
		wake_up_var(&g->opening);

	kvm_put_kvm(kvm);
	return r;
}

static long kvmi_dev_ioctl(struct file *file, unsigned int cmd,
			   unsigned long arg)
{
	void __user *argp = (void __user *)arg;

	switch (cmd) {
	case KVMI_DEV_GET_INFO:
		return kvmi_dev_get_info(argp);
	case KVMI_DEV_GET_GUESTS:
		return kvmi_dev_get_guests(argp);
	case KVMI_DEV_OPEN_GUEST:
		return kvmi_dev_open_guest(argp);
	default:
		return -ENOTTY;
	}
}

static const struct file_operations kvmi_dev_fops = {
	.owner = THIS_MODULE,
	.open = kvmi_dev_open,
	.release = kvmi_dev_release,
	.read = kvmi_dev_read,
	.poll = kvmi_dev_poll,
	.unlocked_ioctl = kvmi_dev_ioctl,
	.compat_ioctl = compat_ptr_ioctl,
	.llseek = noop_llseek,
};

static struct miscdevice kvmi_dev = {
	.minor = MISC_DYNAMIC_MINOR,
	.name = "kvmi",
	.fops = &kvmi_dev_fops,
	.mode = 0600,
};

/**
 * kvmi_discovery_init() - register /dev/kvmi
 *
 * Called by kvm_init() once /dev/kvm is registered. A failure leaves KVM
 * working without guest discovery.
 */
void kvmi_discovery_init(void)
{
	int r = misc_register(&kvmi_dev);

	if (r)
		pr_warn("kvm: introspection: /dev/kvmi not registered (%d)\n",
			r);
	else
		kvmi_dev_registered = true;
}

/**
 * kvmi_discovery_exit() - unregister /dev/kvmi
 *
 * Called by kvm_exit(); the open files keep the module.
 */
void kvmi_discovery_exit(void)
{
	if (kvmi_dev_registered)
		misc_deregister(&kvmi_dev);
	kvmi_dev_registered = false;
}
