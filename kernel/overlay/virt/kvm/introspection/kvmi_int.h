/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * kvmi-ring: state internal to the introspection core.
 *
 * Lifetime. A struct kvmi is created by KVM_INTROSPECTION_OPEN and is
 * reference counted: one reference belongs to the introspection file, one
 * to the VM while the introspection is attached to it (kvm->kvmi). The
 * shared pages belong to the struct kvmi, not to the VM, so they outlive
 * the VM; a mapping holds the file (vma->vm_file), hence the struct kvmi,
 * and each page it maps holds its own page reference.
 *
 * Locking. kvm->lock serializes attach (open), detach (close), the
 * creation of vCPUs and every write to the VM area; kvm->kvmi and
 * vcpu->kvmi change only under it. kvmi->lock, a spinlock taken inside
 * kvm->lock, protects kvmi->kvm, from which the fd's ioctls take a
 * reference on the VM. The VM's destruction runs when no one else can
 * reach the VM and takes no kvm->lock.
 *
 * The event path. A vCPU raising an event takes a reference on the
 * struct kvmi under rcu_read_lock() (kvmi_put() frees it after a grace
 * period), so that it may wait without holding any lock: not kvm->lock,
 * not kvm->srcu, nothing the release path takes. It only touches its own
 * struct kvmi_vcpu and sleeps on its own wait queue, woken by its kick
 * eventfd, by a change of its doorbells or wait mode, or by the detach.
 * kvmi->db_lock serializes the doorbell changes; the notify eventfds are
 * RCU protected, the kick eventfds are only tested for presence by the
 * vCPU. The ioctls that change every vCPU (KVMI_ALL_VCPUS) hold kvm->lock,
 * so that a vCPU created meanwhile starts with the new defaults.
 */
#ifndef __KVMI_INT_H
#define __KVMI_INT_H

#include <linux/kvm_host.h>
#include <linux/kvmi_host.h>
#include <linux/mm_types.h>
#include <linux/mutex.h>
#include <linux/poll.h>
#include <linux/rcupdate.h>
#include <linux/refcount.h>
#include <linux/spinlock.h>
#include <linux/wait.h>
#include <linux/xarray.h>

/*
 * The version 1 layout of the shared memory (kvmi.rst, section 8.2). Only
 * KVMI_IOCTL_GET_LAYOUT tells it to the tool: none of this is ABI.
 */
#define KVMI_VM_OFFSET		0x0ULL
#define KVMI_VM_SIZE		PAGE_SIZE
#define KVMI_KERNEL_OFFSET	0x10000000ULL
#define KVMI_TOOL_OFFSET	0x20000000ULL
#define KVMI_REGION_PAGES	5
#define KVMI_REGION_SIZE	(KVMI_REGION_PAGES * PAGE_SIZE)

/* Records in a vCPU's kernel-written region, each on its own cache line. */
#define KVMI_KOFF_STATE		0x000
#define KVMI_KOFF_EVENT		0x040
#define KVMI_KOFF_CMD_RESULT	0x340
#define KVMI_KOFF_COUNTERS	0x600
#define KVMI_KOFF_DATA		PAGE_SIZE

/* Records in a vCPU's tool-written region. */
#define KVMI_TOFF_STATE		0x000
#define KVMI_TOFF_REPLY		0x040
#define KVMI_TOFF_CMD		0x340
#define KVMI_TOFF_DATA		PAGE_SIZE

/* Both data areas: the pages after the first one of a region. */
#define KVMI_DATA_SIZE		(KVMI_REGION_SIZE - PAGE_SIZE)

struct kvmi;
struct kvmi_vcpu;
struct eventfd_ctx;

/*
 * Zero-copy mappings (kvmi_sva.c, kvmi.rst section 21): the map windows
 * are mmap()s at this offset, of at most this size (not ABI either).
 */
#define KVMI_SVA_OFFSET		0x40000000ULL
#define KVMI_SVA_MAX_SIZE	BIT_ULL(30)

/**
 * struct kvmi_sva - the zero-copy mappings of an introspection
 * @lock: protects the mappings of every window of the fd, their index
 *	and @detached; taken inside MMU notifier callbacks, so never held
 *	while allocating or calling vm_replace_page().
 * @hva: the mappings, by the VMM address of their guest page (interval
 *	tree), for the invalidations of the VMM's memory.
 * @nr: how many mappings there are; a hint read without @lock.
 * @detached: the VM is gone: no new mapping.
 */
struct kvmi_sva {
	struct mutex lock;	/* see above */
	struct rb_root_cached hva;
	atomic_t nr;
	bool detached;
};

/*
 * The MSRs KVMI_EVENT_MSR can watch: the two ranges of the MSR bitmaps of
 * VMX and SVM. Bit n of @low is MSR n, bit n of @high is MSR 0xc0000000 + n.
 */
#define KVMI_MSR_RANGE		0x2000
#define KVMI_MSR_HIGH_BASE	0xc0000000U

/**
 * struct kvmi_msr_set - a set of MSRs whose writes raise KVMI_EVENT_MSR
 * @low: MSRs 0 to 0x1fff.
 * @high: MSRs 0xc0000000 to 0xc0001fff.
 */
struct kvmi_msr_set {
	DECLARE_BITMAP(low, KVMI_MSR_RANGE);
	DECLARE_BITMAP(high, KVMI_MSR_RANGE);
};

/**
 * struct kvmi_transport_ops - how events, replies and commands travel
 * @event_notify: the vCPU thread filled kv->event with the pending event
 *	(kv->pending_seq, kv->pending_id): hand it to the tool.
 * @reply_seen: the reply to the pending event has arrived (acquire).
 * @reply_copy: copy it, once, into the kernel's buffer @rp.
 * @cmd_seen: a vCPU command has arrived (acquire).
 * @cmd_copy: copy it, once, into @c; returns its sequence number.
 * @cmd_done: @res, the result of the command of sequence number @seq,
 *	is filled in (but its seq): hand it to the tool.
 * @cmd_pending: the event has just ended (kv->pending_id is 0): has a
 *	command arrived that the vCPU has not served? Unlike @cmd_seen,
 *	ordered against the arrival of commands; NULL: @cmd_seen is.
 * @start: the introspection is attached (kvm->lock); may fail, and then
 *	the open fails.
 * @unhook: KVM_INTROSPECTION_UNHOOK raised the UNHOOK event (kvm->lock).
 * @detach: the introspection ended (kvm->lock, or the VM's destruction);
 *	the waiting vCPUs are released afterwards.
 * @free: the struct kvmi is being freed; no vCPU or thread uses it.
 * @self_wake: the transport wakes a sleeping vCPU itself, without kick
 *	eventfd.
 *
 * The vCPU path calls the first seven from the vCPU thread, the ring's
 * through INDIRECT_CALL_1(), so that the ring transport pays no
 * indirect call. @cmd_pending, @start, @unhook, @detach and @free may be
 * NULL.
 */
struct kvmi_transport_ops {
	void (*event_notify)(struct kvm_vcpu *vcpu, struct kvmi_vcpu *kv);
	bool (*reply_seen)(struct kvmi_vcpu *kv);
	void (*reply_copy)(struct kvmi_vcpu *kv, struct kvmi_reply *rp);
	bool (*cmd_seen)(struct kvmi_vcpu *kv);
	u32 (*cmd_copy)(struct kvmi_vcpu *kv, struct kvmi_cmd *c);
	void (*cmd_done)(struct kvmi_vcpu *kv, struct kvmi_cmd_result *res,
			 u32 seq);
	bool (*cmd_pending)(struct kvmi_vcpu *kv);
	int (*start)(struct kvmi *kvmi);
	void (*unhook)(struct kvmi *kvmi);
	void (*detach)(struct kvmi *kvmi);
	void (*free)(struct kvmi *kvmi);
	bool self_wake;
};

/* kvmi_vcpu.c: the shared-memory transport */
extern const struct kvmi_transport_ops kvmi_ring_ops;

/**
 * struct kvmi_sock_vcpu - a vCPU's state for the socket transport
 * @reply: the kernel copy of the reply to the pending event.
 * @cmd: the kernel copy of the vCPU command received.
 * @reply_state: whether @reply is empty, full or taken (kvmi_socket.c).
 * @cmd_state: whether @cmd is empty, full or taken.
 * @cmd_seq: the seq of the message that brought @cmd.
 * @event_seq: the seq of the last event sent, the only one a reply may
 *	answer.
 *
 * Written by the receive thread when empty, read by the vCPU when full.
 */
struct kvmi_sock_vcpu {
	struct kvmi_reply reply;
	struct kvmi_cmd cmd;
	u32 reply_state;
	u32 cmd_state;
	u32 cmd_seq;
	u32 event_seq;
};

/* struct kvmi_vcpu.pause */
enum {
	KVMI_PAUSE_NONE,	/* not paused */
	KVMI_PAUSE_REQUESTED,	/* KVM_REQ_INTROSPECTION made, not seen yet */
	KVMI_PAUSE_EVENT,	/* the PAUSE event is in the slot */
};

/**
 * struct kvmi_kick - a kick eventfd the kernel watches
 * @kvmi: the introspection.
 * @kv: the vCPU it wakes, or NULL for the VM-wide one, which wakes every
 *	vCPU without a kick eventfd of its own.
 * @ctx: the eventfd, referenced.
 * @wait: the entry on the eventfd's wait queue (irqfd-style).
 * @pt: the poll table used to queue @wait.
 */
struct kvmi_kick {
	struct kvmi *kvmi;
	struct kvmi_vcpu *kv;
	struct eventfd_ctx *ctx;
	wait_queue_entry_t wait;
	poll_table pt;
};

/**
 * struct kvmi_pf_ctx - the context of a SET_CTX reply (kvmi_pf_ctx.c)
 * @type: KVMI_PF_CTX_READ or KVMI_PF_CTX_INSN; 0 when there is none.
 * @size: how many bytes of @data the tool gave.
 * @used: KVMI_PF_CTX_READ: how many of them reads took already.
 * @gfn: the page of the fault, the one whose reads take @data.
 * @data: the tool's bytes.
 */
struct kvmi_pf_ctx {
	u8 type;
	u16 size;
	u16 used;
	u64 gfn;
	u8 data[KVMI_PF_CTX_MAX];
};

/**
 * struct kvmi_vcpu - the introspection state of one vCPU
 * @kvmi: the introspection the vCPU's regions belong to.
 * @idx: the vCPU index (kvm_vcpu.vcpu_idx): where its regions are.
 * @kpages: the pages of the kernel-written region, mapped read-only.
 * @tpages: the pages of the tool-written region, mapped read-write.
 * @state: the vCPU's struct kvmi_vcpu_state, at the start of @kpages[0].
 * @event: the event slot, in @kpages[0].
 * @cmd_result: the command result slot, in @kpages[0].
 * @counters: the shared counters, in @kpages[0].
 * @tstate: the tool's struct kvmi_tool_state, in @tpages[0].
 * @reply: the reply slot, in @tpages[0]; only ever copied once.
 * @cmd: the command slot, in @tpages[0]; only ever copied once.
 * @events: the events enabled (bit n: KVMI_EVENT_* n); atomic bitops.
 * @wait_mode: KVMI_WAIT_*; read once per wait by the vCPU.
 * @spin_ns: the spin budget of KVMI_WAIT_HYBRID.
 * @wait_gen: bumped when the doorbells or the wait mode change, so that a
 *	waiting vCPU re-evaluates how it waits.
 * @notify: the vCPU's own notify eventfd (RCU, under kvmi->db_lock).
 * @kick: the vCPU's own kick eventfd (under kvmi->db_lock).
 * @kicked: set by the kick callback, consumed by the vCPU for the counter.
 * @pause: KVMI_PAUSE_*: whether a pause is requested or its PAUSE event
 *	waits; changed by the ioctls and by the vCPU with atomic operations.
 * @wq: where the vCPU sleeps while it waits for a reply.
 * @seq: the sequence number of the last event published.
 * @pending_seq: the sequence number of the event in flight.
 * @pending_id: its KVMI_EVENT_* id; 0 when no event is in flight.
 * @rcopy: the kernel's copy of the reply, validated before use.
 * @deadline: when the pending event's deadline expires (ktime ns); 0: never.
 * @cmd_seq: the sequence number of the last command served.
 * @ccopy: the kernel's copy of the command being served.
 * @sregs: scratch space for writing the special registers.
 * @msr_old: the MSRs before a write of KVMI_REGS_MSRS, to undo it.
 * @killable: the wait in progress ignores all but fatal signals.
 * @crash: a CR or MSR event was answered with CRASH: the next
 *	KVM_REQ_INTROSPECTION exits to the VMM, RIP back at @crash_rip.
 * @crash_rip: where the instruction that raised that event is.
 * @nowrite: a PAGE_FAULT event was answered with EMUL_NOWRITE: the
 *	emulator drops the writes of the instruction it emulates next.
 * @pf_ctx: a PAGE_FAULT event was answered with SET_CTX: what the
 *	emulator uses for the instruction it emulates next.
 * @cr_mask: the control registers whose writes raise KVMI_EVENT_CR (bit n:
 *	CRn); atomic bitops, like @events.
 * @msrs: the MSRs whose writes raise KVMI_EVENT_MSR; atomic bitops.
 * @inject: the exception of the last KVMI_CMD_INJECT_EXCEPTION.
 * @inject_queued: it waits to be queued, before the next entry.
 * @inject_pending: it is queued and waits for its delivery, which is
 *	reported in the vCPU's shared state.
 * @inject_seq: the sequence number of its command.
 * @shutdown: set by KVMI_IOCTL_SHUTDOWN_GUEST, consumed by the vCPU,
 *	which ends the event it waits in, if any, and exits to the VMM.
 * @ss_on: KVMI_CMD_CONTROL_SINGLESTEP turned stepping on.
 * @ss_once: a reply asked for one step (KVMI_REPLY_SINGLESTEP).
 * @ss_armed: the vendor steps the vCPU (kvmi_singlestep.c).
 * @ss_done: a step ended: the SINGLESTEP event is due.
 * @ss_failed: the vendor couldn't step: a failed SINGLESTEP event is due.
 * @trap_due: an exception was queued while the TRAP event was enabled:
 *	the event is raised before KVM injects it (kvmi_trap.c).
 * @desc_due: a descriptor-table load or store was intercepted: the
 *	DESCRIPTOR event @desc is raised before the next entry, if RIP is
 *	still @desc_rip (kvmi_descriptor.c).
 * @desc: the data of that event.
 * @desc_rip: where the instruction is.
 * @ops: kvmi->ops, at hand for the event path.
 * @sock: the socket transport's buffers (unused by the ring).
 *
 * Allocated when introspection is opened, or when the vCPU is created
 * while it is open; freed with the struct kvmi. The fields from @seq on
 * belong to the vCPU thread.
 */
struct kvmi_vcpu {
	struct kvmi *kvmi;
	u32 idx;
	struct page *kpages[KVMI_REGION_PAGES];
	struct page *tpages[KVMI_REGION_PAGES];
	struct kvmi_vcpu_state *state;
	struct kvmi_event *event;
	struct kvmi_cmd_result *cmd_result;
	struct kvmi_vcpu_counters *counters;
	struct kvmi_tool_state *tstate;
	struct kvmi_reply *reply;
	struct kvmi_cmd *cmd;

	unsigned long events;
	u32 wait_mode;
	u64 spin_ns;
	u32 wait_gen;
	struct eventfd_ctx __rcu *notify;
	struct kvmi_kick *kick;
	atomic_t kicked;
	atomic_t pause;
	wait_queue_head_t wq;

	u32 seq;
	u32 pending_seq;
	u16 pending_id;
	struct kvmi_reply rcopy;
	u64 deadline;
	u32 cmd_seq;
	struct kvmi_cmd ccopy;
	struct kvm_sregs2 sregs;
	u64 msr_old[8];
	bool killable;
	bool crash;
	u64 crash_rip;
	bool nowrite;
	struct kvmi_pf_ctx pf_ctx;

	unsigned long cr_mask;
	struct kvmi_msr_set msrs;
	struct kvmi_cmd_inject_exception inject;
	bool inject_queued;
	bool inject_pending;
	u32 inject_seq;
	bool trap_due;
	bool desc_due;
	struct kvmi_event_descriptor desc;
	u64 desc_rip;
	atomic_t shutdown;

	bool ss_on;
	bool ss_once;
	bool ss_armed;
	bool ss_done;
	bool ss_failed;

	const struct kvmi_transport_ops *ops;
	struct kvmi_sock_vcpu sock;
};

/**
 * struct kvmi - one introspection of a VM
 * @refcount: one reference for the file, one for the VM while attached.
 * @lock: protects @kvm.
 * @kvm: the VM introspected; NULL once detached, after which it is never
 *	set again.
 * @max_vcpus: how many vCPU slots the layout reserves (kvm->max_vcpus).
 * @vcpus: @max_vcpus pointers, by vCPU index. An entry is published with
 *	a store-release once its vCPU is online and never changes until the
 *	struct kvmi is freed; NULL: no such vCPU (yet).
 * @vm_page: the page of the VM area.
 * @vm_state: the struct kvmi_vm_state at the start of @vm_page; written
 *	under kvm->lock (or by the VM's destruction), published by its seq.
 * @wq: the poll() waiters of the file, woken at detach.
 * @db_lock: serializes the changes of doorbells.
 * @events: the events new vCPUs start with (KVMI_ALL_VCPUS).
 * @wait_mode: the wait mode new vCPUs start with.
 * @spin_ns: and its spin budget.
 * @notify: the VM-wide notify eventfd (RCU, under @db_lock).
 * @kick: the VM-wide kick eventfd (under @db_lock).
 * @cr_mask: the CR events new vCPUs start with.
 * @msrs: the MSR events new vCPUs start with.
 * @sva: the zero-copy mappings of guest pages (kvmi_sva.c).
 * @access_lock: serializes the changes of @access.
 * @access: the page access restrictions, by gfn: xa_mk_value() of the
 *	KVMI_PAGE_ACCESS_* allowed; no entry: every access. Read under RCU
 *	by the MMU (kvmi_page_access_allowed()).
 * @ops: the transport (kvmi.rst, section 22: &kvmi_ring_ops or the
 *	socket's); set at open, never changed.
 * @transport: the transport's own state (NULL for the ring).
 */
struct kvmi {
	refcount_t refcount;
	spinlock_t lock;	/* protects @kvm */
	struct kvm *kvm;
	u32 max_vcpus;
	struct kvmi_vcpu **vcpus;
	struct page *vm_page;
	struct kvmi_vm_state *vm_state;
	wait_queue_head_t wq;
	struct mutex db_lock;	/* serializes doorbell changes */
	unsigned long events;
	u32 wait_mode;
	u64 spin_ns;
	struct eventfd_ctx __rcu *notify;
	struct kvmi_kick *kick;
	unsigned long cr_mask;
	struct kvmi_msr_set msrs;
	struct kvmi_sva sva;
	struct mutex access_lock;	/* serializes changes of @access */
	struct xarray access;

	const struct kvmi_transport_ops *ops;
	void *transport;
};

/* kvmi.c */
void kvmi_put(struct kvmi *kvmi);
struct kvm *kvmi_get_kvm(struct kvmi *kvmi);
bool kvmi_is_detached(struct kvmi *kvmi);
void kvmi_transport_end(struct kvmi *kvmi);

/* kvmi_socket.c */
int kvmi_socket_open(struct kvmi *kvmi, int fd);

/* kvmi_vcpu.c */
void kvmi_vcpu_init(struct kvmi_vcpu *kv);
void kvmi_vcpu_wake(struct kvmi_vcpu *kv);
void kvmi_vcpu_unpause(struct kvmi_vcpu *kv);
unsigned long *kvmi_msr_bit(struct kvmi_msr_set *set, u32 msr, u32 *bit);

/* kvmi_doorbell.c */
int kvmi_ioctl_set_doorbells(struct kvmi *kvmi, struct kvm *kvm,
			     void __user *argp);
void kvmi_doorbells_release(struct kvmi *kvmi);

/* kvmi_ioctl.c */
struct kvmi_vcpu *kvmi_vcpu_by_idx(struct kvmi *kvmi, u32 idx);
void kvmi_page_access_init(struct kvmi *kvmi);
void kvmi_page_access_free(struct kvmi *kvmi);

long kvmi_ioctl_dispatch(struct kvmi *kvmi, struct kvm *kvm,
			 unsigned int cmd, void __user *argp);

/* kvmi_ioctl.c: VM commands with their argument in kernel memory */
#define KVMI_VM_ARGS_MAX	64
int kvmi_vm_command_size(u32 id);
int kvmi_vm_command(struct kvmi *kvmi, struct kvm *kvm, u32 id, void *arg);
int kvmi_physical_kernel(struct kvm *kvm, u64 gpa, void *buf, u32 size,
			 bool write);

/* kvmi_vm.c */
bool kvmi_command_allowed(struct kvm *kvm, u32 id);
bool kvmi_event_allowed(struct kvm *kvm, u32 id);

/* kvmi.c: KVM_INTROSPECTION_UNHOOK */
int kvmi_unhook(struct kvm *kvm, void __user *argp);

/* kvmi_mem.c */
int kvmi_mem_vm_alloc(struct kvmi *kvmi);
void kvmi_mem_vm_free(struct kvmi *kvmi);
struct kvmi_vcpu *kvmi_mem_vcpu_alloc(struct kvmi *kvmi, u32 idx);
void kvmi_mem_vcpu_free(struct kvmi_vcpu *kv);
void kvmi_mem_get_layout(const struct kvmi *kvmi, struct kvmi_layout *lo);
int kvmi_mem_mmap(struct kvmi *kvmi, struct vm_area_struct *vma);

/* kvmi_sva.c */
void kvmi_sva_init(struct kvmi *kvmi);
void kvmi_sva_detach(struct kvmi *kvmi);
bool kvmi_sva_is_window(struct vm_area_struct *vma);
int kvmi_sva_mmap(struct kvmi *kvmi, struct vm_area_struct *vma);
int kvmi_sva_ioctl(struct kvmi *kvmi, struct kvm *kvm, void __user *argp,
		   bool map);

/* kvmi_vcpu.c: an event raised at KVM_REQ_INTROSPECTION */
int kvmi_request_event(struct kvm_vcpu *vcpu, struct kvmi_vcpu *kv, u16 id,
		       const union kvmi_event_data *data);

/* kvmi_singlestep.c */
bool kvmi_singlestep_supported(void);
bool kvmi_singlestep_reply_valid(struct kvm_vcpu *vcpu, u32 flags);
void kvmi_singlestep_reply(struct kvm_vcpu *vcpu, struct kvmi_vcpu *kv);
int kvmi_cmd_control_singlestep(struct kvm_vcpu *vcpu, struct kvmi_vcpu *kv,
				const struct kvmi_cmd_control_singlestep *c);
int kvmi_singlestep_event(struct kvm_vcpu *vcpu, struct kvmi_vcpu *kv);
void kvmi_singlestep_arm(struct kvm_vcpu *vcpu, struct kvmi_vcpu *kv);

/* kvmi_pf_ctx.c */
bool kvmi_pf_ctx_reply_valid(const struct kvmi_reply_page_fault *c);
void kvmi_pf_ctx_set(struct kvmi_vcpu *kv, u64 gpa,
		     const struct kvmi_reply_page_fault *c);
void kvmi_pf_ctx_clear(struct kvmi_vcpu *kv);

/* kvmi_trap.c */
bool kvmi_trap_reply_valid(const struct kvmi_reply *rp);
int kvmi_trap_event(struct kvm_vcpu *vcpu, struct kvmi_vcpu *kv);

/* kvmi_descriptor.c */
bool kvmi_descriptor_reply_valid(const struct kvmi_reply *rp);
int kvmi_descriptor_event(struct kvm_vcpu *vcpu, struct kvmi_vcpu *kv);

/* x86: KVMi is built only there (arch/x86/kvm/Kconfig). */
static inline bool kvmi_arch_vm_supported(struct kvm *kvm)
{
	/* KVM can't read the registers of a protected guest. */
	return !kvm->arch.has_protected_state;
}

static inline u32 kvmi_arch_tsc_khz(struct kvm *kvm)
{
	return kvm->arch.default_tsc_khz;
}

#endif /* __KVMI_INT_H */
