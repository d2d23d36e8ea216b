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
 * No one but the send thread kvmi_socket_tx() ever sleeps on the socket:
 * what a full socket can't take is queued for it, so a signal never cuts
 * a vCPU's message short and a tool slow to read never blocks a vCPU.
 *
 * Any malformed message ends the introspection (kvmi_transport_end()),
 * which shuts the socket down, releases the waiting vCPUs and lets the
 * two threads exit. Each holds a reference on the struct kvmi, which
 * holds the socket's file until it is freed, and one on the module that
 * runs it.
 */
#include <linux/file.h>
#include <linux/kthread.h>
#include <linux/module.h>
#include <linux/net.h>
#include <linux/slab.h>
#include <linux/socket.h>
#include <linux/uio.h>
#include <linux/wait.h>
#include <net/sock.h>

#include "kvmi_int.h"

static_assert(sizeof(struct kvmi_msg_hdr) == 16);
static_assert(sizeof(struct kvmi_msg_vm_command) == 8);
static_assert(sizeof(struct kvmi_msg_vm_result) == 8);
static_assert(sizeof(struct kvmi_cmd_result) <= KVMI_MSG_MAX_SIZE);
static_assert(sizeof(struct kvmi_msg_vm_command) +
	      sizeof(struct kvmi_physical) + KVMI_MSG_PHYSICAL_MAX ==
	      KVMI_MSG_MAX_SIZE);
static_assert(sizeof(struct kvmi_msg_vm_result) +
	      sizeof(struct kvmi_physical) + KVMI_MSG_PHYSICAL_MAX ==
	      KVMI_MSG_MAX_SIZE);

/**
 * struct kvmi_sock_tx - the unwritten end of a message
 * @list: in kvmi_socket.txq.
 * @len: the bytes in @data.
 * @data: what is left to write of the message.
 */
struct kvmi_sock_tx {
	struct list_head list;
	size_t len;
	u8 data[];
};

/**
 * struct kvmi_socket - the socket transport of an introspection
 * @file: the socket's file, referenced.
 * @sock: the socket.
 * @send_lock: serializes the messages written to @sock, and guards @txq,
 *	@queued, @broken.
 * @lock: serializes the receive thread's stores into kv->sock against the
 *	vCPU that starts or ends an event.
 * @txq: the messages (or their ends) that did not fit in the socket, in
 *	order, for the send thread; while it is not empty, every message
 *	goes there.
 * @queued: the number of entries in @txq (read without the lock to wait).
 * @tx_wq: the send thread waits here for @txq.
 * @drained_wq: the receive thread waits here for @txq to empty.
 * @broken: a write failed, or the introspection ended: nothing more is
 *	written.
 * @unhook: KVMI_MSG_UNHOOK is to be sent; whoever holds @send_lock next
 *	sends it (kvmi_sock_unhook() can't wait for the lock).
 * @buf: the payload of the message being read (receive thread only).
 */
struct kvmi_socket {
	struct file *file;
	struct socket *sock;
	struct mutex send_lock;	/* see above */
	spinlock_t lock;	/* see above */
	struct list_head txq;
	unsigned int queued;
	wait_queue_head_t tx_wq;
	wait_queue_head_t drained_wq;
	bool broken;
	bool unhook;
	void *buf;
};

static struct kvmi_socket *kvmi_sock(struct kvmi *kvmi)
{
	return kvmi->transport;
}

/* The stream can't be trusted any more: shut it down (@send_lock held). */
static void kvmi_socket_break(struct kvmi_socket *ks)
{
	lockdep_assert_held(&ks->send_lock);
	ks->broken = true;
	kernel_sock_shutdown(ks->sock, SHUT_RDWR);
	wake_up_all(&ks->tx_wq);
	wake_up_all(&ks->drained_wq);
}

/*
 * Write one message, header and up to two pieces of payload, with
 * @send_lock held; never waits for the tool to read. What the socket
 * can't take now (all of it, if earlier messages wait in ks->txq) is
 * copied to ks->txq, and the send thread writes it. So a vCPU never
 * sleeps on the socket: a signal can't cut one of its messages short,
 * and a slow tool doesn't hold up the VMM. A failed write, or no memory
 * for the copy, breaks the stream.
 */
static int __kvmi_socket_send(struct kvmi_socket *ks, u16 id, u32 seq,
			      u32 vcpu, const void *p1, size_t n1,
			      const void *p2, size_t n2)
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
	struct msghdr msg = { .msg_flags = MSG_NOSIGNAL | MSG_DONTWAIT };
	size_t len = sizeof(hdr) + n1 + n2;
	struct kvmi_sock_tx *t;
	struct iov_iter it;
	size_t sent = 0;
	int r;

	lockdep_assert_held(&ks->send_lock);
	if (ks->broken)
		return -EPIPE;
	if (list_empty(&ks->txq)) {
		r = kernel_sendmsg(ks->sock, &msg, vec, ARRAY_SIZE(vec), len);
		if (r == len)
			return 0;
		if (r < 0 && r != -EAGAIN)
			goto broken;
		if (r > 0)
			sent = r;
	}

	t = kmalloc(struct_size(t, data, len - sent), GFP_KERNEL_ACCOUNT);
	if (!t)
		goto broken;
	iov_iter_kvec(&it, ITER_SOURCE, vec, ARRAY_SIZE(vec), len);
	iov_iter_advance(&it, sent);
	t->len = len - sent;
	if (copy_from_iter(t->data, t->len, &it) != t->len) {
		kfree(t);
		goto broken;
	}
	list_add_tail(&t->list, &ks->txq);
	WRITE_ONCE(ks->queued, ks->queued + 1);
	wake_up(&ks->tx_wq);
	return 0;

broken:
	kvmi_socket_break(ks);
	return -EPIPE;
}

/*
 * Release @send_lock, sending KVMI_MSG_UNHOOK first if it is due. If
 * kvmi_sock_unhook() asks for it after we looked, either it takes the
 * lock itself or we see its request once the lock is released.
 */
static void kvmi_socket_unlock(struct kvmi_socket *ks)
{
	for (;;) {
		if (READ_ONCE(ks->unhook)) {
			WRITE_ONCE(ks->unhook, false);
			__kvmi_socket_send(ks, KVMI_MSG_UNHOOK, 0, 0, NULL, 0,
					   NULL, 0);
		}
		mutex_unlock(&ks->send_lock);
		/*
		 * Between the release of the lock and the load of
		 * ks->unhook; pairs with the one in kvmi_sock_unhook().
		 */
		smp_mb();
		if (!READ_ONCE(ks->unhook) || !mutex_trylock(&ks->send_lock))
			return;
	}
}

/*
 * Write one message (see __kvmi_socket_send()). A fatal signal while
 * waiting for the lock, which is never held long, gives up, sending
 * nothing.
 */
static int kvmi_socket_send(struct kvmi_socket *ks, u16 id, u32 seq, u32 vcpu,
			    const void *p1, size_t n1, const void *p2,
			    size_t n2)
{
	int r;

	if (mutex_lock_killable(&ks->send_lock))
		return -EINTR;
	r = __kvmi_socket_send(ks, id, seq, vcpu, p1, n1, p2, n2);
	kvmi_socket_unlock(ks);
	return r;
}

/* Write @len bytes, blocking: the send thread, without @send_lock. */
static int kvmi_socket_write(struct kvmi_socket *ks, void *buf, size_t len)
{
	struct kvec vec = { .iov_base = buf, .iov_len = len };
	struct msghdr msg = { .msg_flags = MSG_NOSIGNAL };
	int r;

	r = kernel_sendmsg(ks->sock, &msg, &vec, 1, len);
	return r == len ? 0 : -EPIPE;
}

/*
 * The send thread: writes the head of ks->txq without the lock (nothing
 * else writes while txq is not empty), then drops it; on a failed write
 * the stream is broken and the queue emptied. Ends with the
 * introspection.
 */
static int kvmi_socket_tx(void *arg)
{
	struct kvmi *kvmi = arg;
	struct kvmi_socket *ks = kvmi_sock(kvmi);
	struct kvmi_sock_tx *t, *n;
	int r;

	for (;;) {
		wait_event_interruptible(ks->tx_wq, READ_ONCE(ks->queued) ||
					 kvmi_is_detached(kvmi));
		if (kvmi_is_detached(kvmi))
			break;
		mutex_lock(&ks->send_lock);
		t = list_first_entry_or_null(&ks->txq, struct kvmi_sock_tx,
					     list);
		kvmi_socket_unlock(ks);
		if (!t)
			continue;

		r = kvmi_socket_write(ks, t->data, t->len);

		mutex_lock(&ks->send_lock);
		list_del(&t->list);
		kfree(t);
		WRITE_ONCE(ks->queued, ks->queued - 1);
		if (r && !ks->broken)
			kvmi_socket_break(ks);
		if (ks->broken) {
			list_for_each_entry_safe(t, n, &ks->txq, list) {
				list_del(&t->list);
				kfree(t);
			}
			WRITE_ONCE(ks->queued, 0);
		}
		if (!ks->queued)
			wake_up_all(&ks->drained_wq);
		kvmi_socket_unlock(ks);
	}

	kvmi_put(kvmi);	/* the thread's reference */
	module_put_and_kthread_exit(0);
}

/*
 * The receive thread's answer to a command: written, then, if it had to
 * be queued, waited for until the tool has read it, before the next
 * message is read. So a tool that sends commands and never reads their
 * results can't make the kernel queue without end: the receive thread
 * waits as a blocking write would.
 */
static int kvmi_socket_answer(struct kvmi *kvmi, struct kvmi_socket *ks,
			      u16 id, u32 seq, u32 vcpu, const void *p1,
			      size_t n1, const void *p2, size_t n2)
{
	int r = kvmi_socket_send(ks, id, seq, vcpu, p1, n1, p2, n2);

	if (!r)
		wait_event_interruptible(ks->drained_wq,
					 !READ_ONCE(ks->queued) ||
					 READ_ONCE(ks->broken) ||
					 kvmi_is_detached(kvmi));
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
 * The event has ended (kv->pending_id is 0). A command that the receive
 * thread stored before it could see that is here; one that comes after
 * is refused by the receive thread (kvmi_socket_vcpu_cmd()).
 */
static bool kvmi_sock_cmd_pending(struct kvmi_vcpu *kv)
{
	struct kvmi_socket *ks = kvmi_sock(kv->kvmi);
	bool full;

	spin_lock(&ks->lock);
	full = kv->sock.cmd_state == KVMI_SOCK_FULL;
	spin_unlock(&ks->lock);
	return full;
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
	/* Pairs with the one in kvmi_socket_unlock(). */
	smp_mb();
	if (mutex_trylock(&ks->send_lock))
		kvmi_socket_unlock(ks);
}

static void kvmi_sock_detach(struct kvmi *kvmi)
{
	struct kvmi_socket *ks = kvmi_sock(kvmi);

	/* Wakes the receive thread, and the send thread if it writes. */
	kernel_sock_shutdown(ks->sock, SHUT_RDWR);
	wake_up_all(&ks->tx_wq);
	wake_up_all(&ks->drained_wq);
}

static void kvmi_sock_free(struct kvmi *kvmi)
{
	struct kvmi_socket *ks = kvmi_sock(kvmi);
	struct kvmi_sock_tx *t, *n;

	if (!ks)
		return;
	/* Both threads are gone: they held references. */
	list_for_each_entry_safe(t, n, &ks->txq, list)
		kfree(t);
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

	/* 0 is never an event's seq: not even a late reply. */
	kv = kvmi_vcpu_by_idx(kvmi, hdr->vcpu);
	if (!kv || !hdr->seq || rp->seq != hdr->seq)
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

/*
 * KVMI_MSG_VCPU_COMMAND: one at a time per vCPU. A command for an event
 * that is not the vCPU's pending one (it has ended, or the vCPU waits in
 * none) is answered here with -ESRCH, as the vCPU would answer it; the
 * vCPU doesn't count it.
 */
static int kvmi_socket_vcpu_cmd(struct kvmi *kvmi, struct kvmi_socket *ks,
				const struct kvmi_msg_hdr *hdr)
{
	const struct kvmi_cmd *c = ks->buf;
	struct kvmi_cmd_result *res;
	bool stale = false;
	struct kvmi_vcpu *kv;
	int r = -EPROTO;
	u16 id;

	kv = kvmi_vcpu_by_idx(kvmi, hdr->vcpu);
	if (!kv)
		return -EPROTO;

	/*
	 * Under the lock that kvmi_sock_cmd_pending() takes once the event
	 * has ended: either it sees the command, or we see the end.
	 */
	spin_lock(&ks->lock);
	if (READ_ONCE(kv->sock.cmd_state) == KVMI_SOCK_EMPTY) {
		if (READ_ONCE(kv->pending_id) &&
		    READ_ONCE(kv->pending_seq) == c->event) {
			memcpy(&kv->sock.cmd, c, sizeof(kv->sock.cmd));
			kv->sock.cmd_seq = hdr->seq;
			/* Pairs with the load-acquire in kvmi_sock_cmd_seen(). */
			smp_store_release(&kv->sock.cmd_state,
					  KVMI_SOCK_FULL);
		} else {
			stale = true;
		}
		r = 0;
	}
	spin_unlock(&ks->lock);
	if (r)
		return r;
	if (!stale) {
		kvmi_vcpu_wake(kv);
		return 0;
	}
	/* The result is built where the command was (KVMI_MSG_MAX_SIZE). */
	id = c->id;
	res = ks->buf;
	memset(res, 0, sizeof(*res));
	res->seq = hdr->seq;
	res->id = id;
	res->error = -ESRCH;
	return kvmi_socket_answer(kvmi, ks, KVMI_MSG_VCPU_RESULT, hdr->seq,
				  kv->idx, res, sizeof(*res), NULL, 0);
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
	return kvmi_socket_answer(kvmi, ks, KVMI_MSG_VM_RESULT, hdr->seq, 0,
				  &res, sizeof(res), ks->buf, sizeof(ph) + n);
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
	return kvmi_socket_answer(kvmi, ks, KVMI_MSG_VM_RESULT, hdr->seq, 0,
				  &res, sizeof(res), arg, size);
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

/* Start one of the threads; it holds a reference on @kvmi and the module. */
static int kvmi_socket_thread(struct kvmi *kvmi, int (*fn)(void *),
			      const char *name)
{
	struct task_struct *t;

	refcount_inc(&kvmi->refcount);
	__module_get(THIS_MODULE);
	t = kthread_run(fn, kvmi, "%s/%d", name, task_pid_nr(current));
	if (IS_ERR(t)) {
		module_put(THIS_MODULE);
		/* Not the last reference: the file holds one. */
		refcount_dec(&kvmi->refcount);
		return PTR_ERR(t);
	}
	return 0;
}

/* If the second fails, the open fails and detaches: the first exits. */
static int kvmi_sock_start(struct kvmi *kvmi)
{
	int r;

	r = kvmi_socket_thread(kvmi, kvmi_socket_tx, "kvmi-tx");
	if (!r)
		r = kvmi_socket_thread(kvmi, kvmi_socket_rx, "kvmi-rx");
	return r;
}

static const struct kvmi_transport_ops kvmi_socket_ops = {
	.event_notify = kvmi_sock_event_notify,
	.reply_seen = kvmi_sock_reply_seen,
	.reply_copy = kvmi_sock_reply_copy,
	.cmd_seen = kvmi_sock_cmd_seen,
	.cmd_copy = kvmi_sock_cmd_copy,
	.cmd_done = kvmi_sock_cmd_done,
	.cmd_pending = kvmi_sock_cmd_pending,
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
	INIT_LIST_HEAD(&ks->txq);
	init_waitqueue_head(&ks->tx_wq);
	init_waitqueue_head(&ks->drained_wq);

	kvmi->transport = ks;
	kvmi->ops = &kvmi_socket_ops;
	/* Not visible yet: no seq to bump. */
	kvmi->vm_state->flags |= KVMI_VM_SOCKET;
	/* The receive thread wakes the vCPUs: they need not spin. */
	kvmi->wait_mode = KVMI_WAIT_BLOCK;
	kvmi->spin_ns = 0;
	return 0;
}
