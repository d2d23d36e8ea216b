// SPDX-License-Identifier: GPL-2.0-only
/*
 * kvmi-ring: the socket transport (kvmi.rst, section 22).
 *
 * The tool and the kernel exchange messages, a struct kvmi_msg_hdr and the
 * ring transport's records, on a connected AF_UNIX stream socket. A vCPU
 * writes its own events (under ks->send_lock, which keeps messages
 * whole) and waits, as with the ring, in kvmi_vcpu.c; what it waits for
 * is the kernel copy of its reply or command, which the receive thread
 * kvmi_socket_rx() stores in kv->sock and then wakes it. VM commands are
 * run by the receive thread with the ioctls' handlers.
 *
 * Any malformed message ends the introspection (kvmi_transport_end()),
 * which shuts the socket down, releases the waiting vCPUs and lets the
 * receive thread exit. The thread holds a reference on the struct kvmi,
 * which holds the socket's file until it is freed, and one on the module
 * that runs it.
 */
#include <linux/file.h>
#include <linux/kthread.h>
#include <linux/module.h>
#include <linux/net.h>
#include <linux/slab.h>
#include <linux/socket.h>
#include <net/sock.h>

#include "kvmi_int.h"

static_assert(sizeof(struct kvmi_msg_hdr) == 16);
static_assert(sizeof(struct kvmi_msg_vm_command) == 8);
static_assert(sizeof(struct kvmi_msg_vm_result) == 8);
static_assert(sizeof(struct kvmi_msg_vm_command) +
	      sizeof(struct kvmi_physical) + KVMI_MSG_PHYSICAL_MAX ==
	      KVMI_MSG_MAX_SIZE);
static_assert(sizeof(struct kvmi_msg_vm_result) +
	      sizeof(struct kvmi_physical) + KVMI_MSG_PHYSICAL_MAX ==
	      KVMI_MSG_MAX_SIZE);

/**
 * struct kvmi_socket - the socket transport of an introspection
 * @file: the socket's file, referenced.
 * @sock: the socket.
 * @send_lock: serializes the messages written to @sock.
 * @lock: serializes the receive thread's stores into kv->sock against the
 *	vCPU that starts a new event.
 * @broken: a write failed, or the introspection ended: nothing more is
 *	written (under @send_lock).
 * @unhook: KVMI_MSG_UNHOOK is to be sent; whoever holds @send_lock next
 *	sends it (kvmi_sock_unhook() can't wait for the lock).
 * @buf: the payload of the message being read (receive thread only).
 */
struct kvmi_socket {
	struct file *file;
	struct socket *sock;
	struct mutex send_lock;	/* see above */
	spinlock_t lock;	/* see above */
	bool broken;
	bool unhook;
	void *buf;
};

static struct kvmi_socket *kvmi_sock(struct kvmi *kvmi)
{
	return kvmi->transport;
}

/*
 * Write one message, header and up to two pieces of payload, whole, with
 * @send_lock held. A write that fails, or stops half-way, leaves the
 * stream unusable: it is shut down, and the receive thread sees the end
 * of file and ends the introspection. With MSG_DONTWAIT, a write that
 * would block sends nothing and returns -EAGAIN.
 */
static int __kvmi_socket_send(struct kvmi_socket *ks, u16 id, u32 seq,
			      u32 vcpu, const void *p1, size_t n1,
			      const void *p2, size_t n2, int flags)
{
	struct kvmi_msg_hdr hdr = {
		.id = id,
		.size = n1 + n2,
		.seq = seq,
		.vcpu = vcpu,
	};
	struct kvec vec[3] = {
		{ .iov_base = &hdr, .iov_len = sizeof(hdr) },
		{ .iov_base = (void *)p1, .iov_len = n1 },
		{ .iov_base = (void *)p2, .iov_len = n2 },
	};
	struct msghdr msg = { .msg_flags = MSG_NOSIGNAL | flags };
	size_t len = sizeof(hdr) + n1 + n2;
	int r;

	lockdep_assert_held(&ks->send_lock);
	if (ks->broken)
		return -EPIPE;
	r = kernel_sendmsg(ks->sock, &msg, vec, ARRAY_SIZE(vec), len);
	if (r == len)
		return 0;
	if (r == -EAGAIN && (flags & MSG_DONTWAIT))
		return r;
	ks->broken = true;
	kernel_sock_shutdown(ks->sock, SHUT_RDWR);
	return -EPIPE;
}

/* Send KVMI_MSG_UNHOOK if it is due, with @send_lock held. */
static void kvmi_socket_send_unhook(struct kvmi_socket *ks, int flags)
{
	if (READ_ONCE(ks->unhook) &&
	    __kvmi_socket_send(ks, KVMI_MSG_UNHOOK, 0, 0, NULL, 0, NULL, 0,
			       flags) != -EAGAIN)
		WRITE_ONCE(ks->unhook, false);
}

/*
 * Send the UNHOOK message if it is due and no one holds @send_lock;
 * never waits. If someone does, it sends the message before it lets go
 * of the lock, or sees ks->unhook after (kvmi_socket_send()).
 */
static void kvmi_socket_flush_unhook(struct kvmi_socket *ks, int flags)
{
	/*
	 * Between the store of ks->unhook, or the release of the lock, and
	 * the loads: of kvmi_sock_unhook() and a sender leaving the lock, at
	 * least one sees the other's store.
	 */
	smp_mb();
	if (!READ_ONCE(ks->unhook) || !mutex_trylock(&ks->send_lock))
		return;
	kvmi_socket_send_unhook(ks, flags);
	mutex_unlock(&ks->send_lock);
}

/*
 * Write one message (see __kvmi_socket_send()). A fatal signal while
 * waiting for the lock gives up, sending nothing.
 */
static int kvmi_socket_send(struct kvmi_socket *ks, u16 id, u32 seq, u32 vcpu,
			    const void *p1, size_t n1, const void *p2,
			    size_t n2)
{
	int r;

	if (mutex_lock_killable(&ks->send_lock))
		return -EINTR;
	r = __kvmi_socket_send(ks, id, seq, vcpu, p1, n1, p2, n2, 0);
	kvmi_socket_send_unhook(ks, 0);
	mutex_unlock(&ks->send_lock);
	/* An UNHOOK that came while we held the lock. */
	kvmi_socket_flush_unhook(ks, 0);
	return r;
}

/* States of struct kvmi_sock_vcpu's reply and command buffers. */
enum {
	KVMI_SOCK_EMPTY,	/* the receive thread may fill it */
	KVMI_SOCK_FULL,		/* filled, not taken by the vCPU yet */
	KVMI_SOCK_TAKEN,	/* taken, not available again yet */
};

static void kvmi_sock_event_notify(struct kvm_vcpu *vcpu, struct kvmi_vcpu *kv)
{
	struct kvmi_socket *ks = kvmi_sock(kv->kvmi);

	/*
	 * A reply may come for this event only: the receive thread reads
	 * kv->pending_seq, set before, under the same lock.
	 */
	spin_lock(&ks->lock);
	kv->sock.reply_state = KVMI_SOCK_EMPTY;
	kv->sock.event_seq = kv->pending_seq;
	spin_unlock(&ks->lock);

	/* A failed write ends the introspection, which releases the wait. */
	kvmi_socket_send(ks, KVMI_MSG_EVENT, kv->pending_seq, kv->idx,
			 kv->event, sizeof(*kv->event), NULL, 0);
}

static bool kvmi_sock_reply_seen(struct kvmi_vcpu *kv)
{
	/* Pairs with the store-release in kvmi_socket_reply(). */
	return smp_load_acquire(&kv->sock.reply_state) == KVMI_SOCK_FULL;
}

static void kvmi_sock_reply_copy(struct kvmi_vcpu *kv, struct kvmi_reply *rp)
{
	memcpy(rp, &kv->sock.reply, sizeof(*rp));
	WRITE_ONCE(kv->sock.reply_state, KVMI_SOCK_TAKEN);
}

static bool kvmi_sock_cmd_seen(struct kvmi_vcpu *kv)
{
	/* Pairs with the store-release in kvmi_socket_vcpu_cmd(). */
	return smp_load_acquire(&kv->sock.cmd_state) == KVMI_SOCK_FULL;
}

static u32 kvmi_sock_cmd_copy(struct kvmi_vcpu *kv, struct kvmi_cmd *c)
{
	memcpy(c, &kv->sock.cmd, sizeof(*c));
	WRITE_ONCE(kv->sock.cmd_state, KVMI_SOCK_TAKEN);
	/* The command being served, as the ring's copy: INJECT's seq. */
	kv->cmd_seq = kv->sock.cmd_seq;
	return kv->sock.cmd_seq;
}

static void kvmi_sock_cmd_done(struct kvmi_vcpu *kv,
			       struct kvmi_cmd_result *res, u32 seq)
{
	res->seq = seq;
	/*
	 * The next command may come once the tool has the result: the
	 * buffer is free before the result is written.
	 */
	smp_store_release(&kv->sock.cmd_state, KVMI_SOCK_EMPTY);
	kvmi_socket_send(kvmi_sock(kv->kvmi), KVMI_MSG_VCPU_RESULT, seq,
			 kv->idx, res, sizeof(*res), NULL, 0);
}

/*
 * Under kvm->lock: never wait, neither for the lock nor for the tool to
 * read. If the message can't be sent now, it follows the next message
 * sent.
 */
static void kvmi_sock_unhook(struct kvmi *kvmi)
{
	struct kvmi_socket *ks = kvmi_sock(kvmi);

	WRITE_ONCE(ks->unhook, true);
	kvmi_socket_flush_unhook(ks, MSG_DONTWAIT);
}

static void kvmi_sock_detach(struct kvmi *kvmi)
{
	/* Wakes the receive thread and any vCPU blocked writing. */
	kernel_sock_shutdown(kvmi_sock(kvmi)->sock, SHUT_RDWR);
}

static void kvmi_sock_free(struct kvmi *kvmi)
{
	struct kvmi_socket *ks = kvmi_sock(kvmi);

	if (!ks)
		return;
	fput(ks->file);
	kfree(ks->buf);
	kfree(ks);
	kvmi->transport = NULL;
}

/* Read exactly @len bytes; the end of file within them is an error. */
static int kvmi_socket_read(struct kvmi_socket *ks, void *buf, size_t len)
{
	struct kvec vec = { .iov_base = buf, .iov_len = len };
	struct msghdr msg = {};
	int r;

	if (!len)
		return 0;
	r = kernel_recvmsg(ks->sock, &msg, &vec, 1, len, MSG_WAITALL);
	if (r == len)
		return 0;
	return r < 0 ? r : -EPIPE;
}

/*
 * KVMI_MSG_REPLY: for the last event sent by the vCPU, and only once. If
 * that event has ended without it (the VMM's deadline, UNPAUSE), the
 * reply is late: ignored, as with the ring (kvmi.rst, section 6.3).
 */
static int kvmi_socket_reply(struct kvmi *kvmi, struct kvmi_socket *ks,
			     const struct kvmi_msg_hdr *hdr)
{
	const struct kvmi_reply *rp = ks->buf;
	struct kvmi_vcpu *kv;
	bool wake = false;
	int r = -EPROTO;

	kv = kvmi_vcpu_by_idx(kvmi, hdr->vcpu);
	if (!kv || rp->seq != hdr->seq)
		return -EPROTO;

	spin_lock(&ks->lock);
	if (kv->sock.event_seq == hdr->seq &&
	    kv->sock.reply_state == KVMI_SOCK_EMPTY) {
		if (READ_ONCE(kv->pending_id) &&
		    READ_ONCE(kv->pending_seq) == hdr->seq) {
			memcpy(&kv->sock.reply, rp, sizeof(*rp));
			/* Pairs with the load-acquire in kvmi_sock_reply_seen(). */
			smp_store_release(&kv->sock.reply_state,
					  KVMI_SOCK_FULL);
			wake = true;
		} else {
			kv->sock.reply_state = KVMI_SOCK_TAKEN;
		}
		r = 0;
	}
	spin_unlock(&ks->lock);
	if (wake)
		kvmi_vcpu_wake(kv);
	return r;
}

/* KVMI_MSG_VCPU_COMMAND: one at a time per vCPU. */
static int kvmi_socket_vcpu_cmd(struct kvmi *kvmi, struct kvmi_socket *ks,
				const struct kvmi_msg_hdr *hdr)
{
	struct kvmi_vcpu *kv;
	int r = -EPROTO;

	kv = kvmi_vcpu_by_idx(kvmi, hdr->vcpu);
	if (!kv)
		return -EPROTO;

	spin_lock(&ks->lock);
	if (READ_ONCE(kv->sock.cmd_state) == KVMI_SOCK_EMPTY) {
		memcpy(&kv->sock.cmd, ks->buf, sizeof(kv->sock.cmd));
		kv->sock.cmd_seq = hdr->seq;
		/* Pairs with the load-acquire in kvmi_sock_cmd_seen(). */
		smp_store_release(&kv->sock.cmd_state, KVMI_SOCK_FULL);
		r = 0;
	}
	spin_unlock(&ks->lock);
	if (!r)
		kvmi_vcpu_wake(kv);
	return r;
}

/*
 * KVMI_CMD_READ_PHYSICAL and KVMI_CMD_WRITE_PHYSICAL as messages: the data
 * travels in them, after the struct kvmi_physical, whose buffer must be
 * 0. The result echoes the argument, then, for a read that succeeded,
 * the bytes read, which are read into ks->buf once the argument is
 * copied out of it.
 */
static int kvmi_socket_physical(struct kvmi *kvmi, struct kvmi_socket *ks,
				const struct kvmi_msg_hdr *hdr)
{
	const struct kvmi_msg_vm_command *vc = ks->buf;
	struct kvmi_msg_vm_result res = { .cmd = vc->cmd };
	bool write = vc->cmd == KVMI_CMD_WRITE_PHYSICAL;
	struct kvmi_physical ph;
	u8 *data;
	u32 n = 0;
	struct kvm *kvm;

	if (hdr->size < sizeof(*vc) + sizeof(ph))
		return -EPROTO;
	memcpy(&ph, vc + 1, sizeof(ph));
	/* A write's data is the rest of the message, a read has none. */
	if (hdr->size - sizeof(*vc) - sizeof(ph) != (write ? ph.size : 0))
		return -EPROTO;
	/*
	 * A write's data stays where the message put it; a read's goes
	 * right after the argument the result echoes from ks->buf.
	 */
	data = ks->buf + sizeof(ph) + (write ? sizeof(*vc) : 0);

	if (ph.flags || ph.padding || ph.buffer || !ph.size ||
	    ph.size > KVMI_MSG_PHYSICAL_MAX || ph.gpa + ph.size < ph.gpa) {
		res.error = -EINVAL;
	} else {
		kvm = kvmi_get_kvm(kvmi);
		if (!kvm)
			return -ENODEV;
		if (!kvmi_command_allowed(kvm, res.cmd))
			res.error = -EPERM;
		else
			res.error = kvmi_physical_kernel(kvm, ph.gpa, data,
							 ph.size, write);
		kvm_put_kvm(kvm);
	}
	if (!res.error && !write)
		n = ph.size;
	memcpy(ks->buf, &ph, sizeof(ph));
	return kvmi_socket_send(ks, KVMI_MSG_VM_RESULT, hdr->seq, 0, &res,
				sizeof(res), ks->buf, sizeof(ph) + n);
}

/* KVMI_MSG_VM_COMMAND: run here, answered before the next message. */
static int kvmi_socket_vm_cmd(struct kvmi *kvmi, struct kvmi_socket *ks,
			      const struct kvmi_msg_hdr *hdr)
{
	const struct kvmi_msg_vm_command *vc = ks->buf;
	struct kvmi_msg_vm_result res = { .cmd = vc->cmd };
	u64 arg[KVMI_VM_ARGS_MAX / sizeof(u64)] = {};
	struct kvm *kvm;
	int size;

	if (vc->flags || vc->padding)
		return -EPROTO;
	if (vc->cmd == KVMI_CMD_READ_PHYSICAL ||
	    vc->cmd == KVMI_CMD_WRITE_PHYSICAL)
		return kvmi_socket_physical(kvmi, ks, hdr);
	size = kvmi_vm_command_size(vc->cmd);
	if (size < 0) {
		if (hdr->size != sizeof(*vc))
			return -EPROTO;
		res.error = size;
		size = 0;
	} else {
		if (hdr->size != sizeof(*vc) + size)
			return -EPROTO;
		memcpy(arg, vc + 1, size);

		kvm = kvmi_get_kvm(kvmi);
		if (!kvm)
			return -ENODEV;
		if (!kvmi_command_allowed(kvm, vc->cmd))
			res.error = -EPERM;
		else
			res.error = kvmi_vm_command(kvmi, kvm, vc->cmd, arg);
		kvm_put_kvm(kvm);
	}
	return kvmi_socket_send(ks, KVMI_MSG_VM_RESULT, hdr->seq, 0, &res,
				sizeof(res), arg, size);
}

/* The payload size of each message the tool may send; 0: not allowed. */
static u32 kvmi_socket_msg_size(const struct kvmi_msg_hdr *hdr)
{
	switch (hdr->id) {
	case KVMI_MSG_REPLY:
		return sizeof(struct kvmi_reply);
	case KVMI_MSG_VCPU_COMMAND:
		return sizeof(struct kvmi_cmd);
	case KVMI_MSG_VM_COMMAND:
		/* Checked against the command once it is read. */
		if (hdr->size < sizeof(struct kvmi_msg_vm_command) ||
		    hdr->size > KVMI_MSG_MAX_SIZE || hdr->vcpu)
			return 0;
		return hdr->size;
	default:
		return 0;
	}
}

/* Read one message and act on it; any error ends the connection. */
static int kvmi_socket_recv_one(struct kvmi *kvmi, struct kvmi_socket *ks)
{
	struct kvmi_msg_hdr hdr;
	int r;

	r = kvmi_socket_read(ks, &hdr, sizeof(hdr));
	if (r)
		return r;
	if (hdr.flags || !hdr.size || hdr.size != kvmi_socket_msg_size(&hdr))
		return -EPROTO;
	r = kvmi_socket_read(ks, ks->buf, hdr.size);
	if (r)
		return r;

	switch (hdr.id) {
	case KVMI_MSG_REPLY:
		return kvmi_socket_reply(kvmi, ks, &hdr);
	case KVMI_MSG_VCPU_COMMAND:
		return kvmi_socket_vcpu_cmd(kvmi, ks, &hdr);
	default:
		return kvmi_socket_vm_cmd(kvmi, ks, &hdr);
	}
}

/* The receive thread: one per introspection opened with a socket. */
static int kvmi_socket_rx(void *arg)
{
	struct kvmi *kvmi = arg;
	struct kvmi_socket *ks = kvmi_sock(kvmi);

	while (!kvmi_is_detached(kvmi))
		if (kvmi_socket_recv_one(kvmi, ks))
			break;

	kvmi_transport_end(kvmi);
	kvmi_put(kvmi);	/* the thread's reference */
	module_put_and_kthread_exit(0);
}

static int kvmi_sock_start(struct kvmi *kvmi)
{
	struct task_struct *t;

	/* The thread's, dropped as it exits. */
	refcount_inc(&kvmi->refcount);
	__module_get(THIS_MODULE);
	t = kthread_run(kvmi_socket_rx, kvmi, "kvmi-rx/%d",
			task_pid_nr(current));
	if (IS_ERR(t)) {
		module_put(THIS_MODULE);
		/* Not the last reference: the file holds one. */
		refcount_dec(&kvmi->refcount);
		return PTR_ERR(t);
	}
	return 0;
}

static const struct kvmi_transport_ops kvmi_socket_ops = {
	.event_notify = kvmi_sock_event_notify,
	.reply_seen = kvmi_sock_reply_seen,
	.reply_copy = kvmi_sock_reply_copy,
	.cmd_seen = kvmi_sock_cmd_seen,
	.cmd_copy = kvmi_sock_cmd_copy,
	.cmd_done = kvmi_sock_cmd_done,
	.start = kvmi_sock_start,
	.unhook = kvmi_sock_unhook,
	.detach = kvmi_sock_detach,
	.free = kvmi_sock_free,
	.self_wake = true,
};

/**
 * kvmi_socket_open() - make @kvmi use the socket transport
 * @kvmi: a new introspection, not attached yet
 * @fd: the caller's descriptor of a connected AF_UNIX stream socket
 *
 * Takes a reference on the socket's file; kvmi_free() drops it. The
 * receive thread starts once the introspection is attached.
 *
 * Return: 0, -EBADF, -ENOTSOCK, -EINVAL (other kind of socket, or not
 * connected) or -ENOMEM.
 */
int kvmi_socket_open(struct kvmi *kvmi, int fd)
{
	struct kvmi_socket *ks;
	struct socket *sock;
	struct file *file;

	file = fget(fd);
	if (!file)
		return -EBADF;
	sock = sock_from_file(file);
	if (!sock) {
		fput(file);
		return -ENOTSOCK;
	}
	if (sock->type != SOCK_STREAM || !sock->sk ||
	    sock->sk->sk_family != AF_UNIX || sock->state != SS_CONNECTED) {
		fput(file);
		return -EINVAL;
	}

	ks = kzalloc(sizeof(*ks), GFP_KERNEL_ACCOUNT);
	if (ks)
		ks->buf = kmalloc(KVMI_MSG_MAX_SIZE, GFP_KERNEL_ACCOUNT);
	if (!ks || !ks->buf) {
		kfree(ks);
		fput(file);
		return -ENOMEM;
	}
	ks->file = file;
	ks->sock = sock;
	mutex_init(&ks->send_lock);
	spin_lock_init(&ks->lock);

	kvmi->transport = ks;
	kvmi->ops = &kvmi_socket_ops;
	/* The receive thread wakes the vCPUs: they need not spin. */
	kvmi->wait_mode = KVMI_WAIT_BLOCK;
	kvmi->spin_ns = 0;
	return 0;
}
