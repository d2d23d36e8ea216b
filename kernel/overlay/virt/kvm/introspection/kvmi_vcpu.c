// SPDX-License-Identifier: GPL-2.0-only
/*
 * kvmi-ring: the vCPU side of an event (kvmi.rst, sections 9.3 and 10).
 *
 * Everything here runs on the thread of the vCPU that raises the event:
 * it fills its own event slot, rings the notify eventfd, waits for the
 * reply in its own wait loop and applies the reply. It holds a reference
 * on the introspection and no lock while it waits (kvmi_int.h).
 */
#include <linux/eventfd.h>
#include <linux/indirect_call_wrapper.h>
#include <linux/sched/signal.h>
#include <linux/slab.h>
#include <linux/timekeeping.h>
#include <asm/fpu/api.h>
#include <asm/mtrr.h>

#include "kvm_cache_regs.h"
#include "x86.h"
#include "cpuid.h"
#include "kvmi_int.h"

#define CREATE_TRACE_POINTS
#include <trace/events/kvmi.h>

/* The length of VMCALL and VMMCALL. */
#define KVMI_HYPERCALL_INSN_LEN	3

/* IA32_MTRRCAP, MSR_MTRRcap in msr-index.h. */
#define KVMI_MSR_MTRRCAP	0xfe

/* The first id of a vCPU command (kvmi.rst, section 11.1). */
#define KVMI_CMD_VCPU_FIRST	0x40

static_assert(sizeof(struct kvmi_x86_regs) == 640);
static_assert(sizeof(struct kvmi_event) == 728);
static_assert(sizeof(struct kvmi_reply) == 736);
static_assert(sizeof(struct kvmi_cmd) == 656);
static_assert(sizeof(struct kvmi_cmd_result) == 664);

/**
 * kvmi_vcpu_init() - set up the kernel side of a new vCPU region
 * @kv: the vCPU's state, not visible to anyone yet
 *
 * Called with kvm->lock held (or before the fd exists): the vCPU starts
 * with the VM-wide settings.
 */
void kvmi_vcpu_init(struct kvmi_vcpu *kv)
{
	struct kvmi *kvmi = kv->kvmi;

	kv->events = READ_ONCE(kvmi->events);
	kv->wait_mode = READ_ONCE(kvmi->wait_mode);
	kv->spin_ns = READ_ONCE(kvmi->spin_ns);
	kv->cr_mask = READ_ONCE(kvmi->cr_mask);
	kv->msrs = kvmi->msrs;
	kv->ops = kvmi->ops;
	init_waitqueue_head(&kv->wq);
}

/**
 * kvmi_msr_bit() - find the bit of an MSR in a struct kvmi_msr_set
 * @set: the set
 * @msr: the MSR index
 * @bit: where to put the bit number in the returned bitmap
 *
 * Return: the bitmap that holds @msr, or NULL if no set can hold it.
 */
unsigned long *kvmi_msr_bit(struct kvmi_msr_set *set, u32 msr, u32 *bit)
{
	if (msr < KVMI_MSR_RANGE) {
		*bit = msr;
		return set->low;
	}
	if (msr - KVMI_MSR_HIGH_BASE < KVMI_MSR_RANGE) {
		*bit = msr - KVMI_MSR_HIGH_BASE;
		return set->high;
	}
	return NULL;
}

/**
 * kvmi_vcpu_wake() - make a waiting vCPU look at its state again
 * @kv: the vCPU
 *
 * Used for the detach and for a change of doorbells or wait mode; the
 * kick eventfd uses it too. Safe from any context.
 */
void kvmi_vcpu_wake(struct kvmi_vcpu *kv)
{
	wake_up(&kv->wq);
}

static void kvmi_count(u64 *counter)
{
	/* Single writer (this vCPU); the tool reads without ordering. */
	WRITE_ONCE(*counter, *counter + 1);
}

static void kvmi_count_both(struct kvmi_vcpu *kv, size_t offset, u64 *stat)
{
	kvmi_count((u64 *)((u8 *)kv->counters + offset));
	++*stat;
}

/* Count in the shared counters and in KVM's binary stats (the vCPU's). */
#define kvmi_stat(vcpu, kv, name)					\
	kvmi_count_both(kv, offsetof(struct kvmi_vcpu_counters, name),	\
			&(vcpu)->stat.kvmi_##name)

static void kvmi_get_segment(struct kvm_vcpu *vcpu,
			     struct kvmi_x86_segment *s, int seg)
{
	struct kvm_segment var;

	kvm_get_segment(vcpu, &var, seg);
	s->base = var.base;
	s->limit = var.limit;
	s->selector = var.selector;
	s->type = var.type;
	s->s = var.s;
	s->dpl = var.dpl;
	s->present = var.present;
	s->avl = var.avl;
	s->l = var.l;
	s->db = var.db;
	s->g = var.g;
	s->unusable = var.unusable;
	s->padding = 0;
}

static u64 kvmi_get_msr(struct kvm_vcpu *vcpu, u32 index)
{
	u64 data = 0;

	/* As KVM_GET_MSRS does; an MSR the vCPU doesn't have reads 0. */
	if (__kvm_get_msr(vcpu, index, &data, true))
		data = 0;
	return data;
}

/* Fill @r, in the event slot, with the registers of the vCPU. */
static void kvmi_get_regs(struct kvm_vcpu *vcpu, struct kvmi_x86_regs *r)
{
	struct desc_ptr dt;

	memset(r, 0, sizeof(*r));
	r->groups = KVMI_REGS_ALL;

	r->rax = kvm_rax_read(vcpu);
	r->rbx = kvm_rbx_read(vcpu);
	r->rcx = kvm_rcx_read(vcpu);
	r->rdx = kvm_rdx_read(vcpu);
	r->rsi = kvm_rsi_read(vcpu);
	r->rdi = kvm_rdi_read(vcpu);
	r->rsp = kvm_rsp_read(vcpu);
	r->rbp = kvm_rbp_read(vcpu);
	r->r8 = kvm_r8_read(vcpu);
	r->r9 = kvm_r9_read(vcpu);
	r->r10 = kvm_r10_read(vcpu);
	r->r11 = kvm_r11_read(vcpu);
	r->r12 = kvm_r12_read(vcpu);
	r->r13 = kvm_r13_read(vcpu);
	r->r14 = kvm_r14_read(vcpu);
	r->r15 = kvm_r15_read(vcpu);
	r->rflags = kvm_get_rflags(vcpu);
	r->rip = kvm_rip_read(vcpu);

	r->cr0 = kvm_read_cr0(vcpu);
	r->cr2 = vcpu->arch.cr2;
	r->cr3 = kvm_read_cr3(vcpu);
	r->cr4 = kvm_read_cr4(vcpu);
	r->cr8 = kvm_get_cr8(vcpu);
	r->efer = vcpu->arch.efer;

	r->dr6 = kvm_get_dr(vcpu, 6);
	r->dr7 = kvm_get_dr(vcpu, 7);

	kvmi_get_segment(vcpu, &r->cs, VCPU_SREG_CS);
	kvmi_get_segment(vcpu, &r->ds, VCPU_SREG_DS);
	kvmi_get_segment(vcpu, &r->es, VCPU_SREG_ES);
	kvmi_get_segment(vcpu, &r->fs, VCPU_SREG_FS);
	kvmi_get_segment(vcpu, &r->gs, VCPU_SREG_GS);
	kvmi_get_segment(vcpu, &r->ss, VCPU_SREG_SS);
	kvmi_get_segment(vcpu, &r->tr, VCPU_SREG_TR);
	kvmi_get_segment(vcpu, &r->ldt, VCPU_SREG_LDTR);

	kvm_x86_call(get_gdt)(vcpu, &dt);
	r->gdt.base = dt.address;
	r->gdt.limit = dt.size;
	kvm_x86_call(get_idt)(vcpu, &dt);
	r->idt.base = dt.address;
	r->idt.limit = dt.size;

	r->star = kvmi_get_msr(vcpu, MSR_STAR);
	r->lstar = kvmi_get_msr(vcpu, MSR_LSTAR);
	r->cstar = kvmi_get_msr(vcpu, MSR_CSTAR);
	r->sfmask = kvmi_get_msr(vcpu, MSR_SYSCALL_MASK);
	r->sysenter_cs = kvmi_get_msr(vcpu, MSR_IA32_SYSENTER_CS);
	r->sysenter_esp = kvmi_get_msr(vcpu, MSR_IA32_SYSENTER_ESP);
	r->sysenter_eip = kvmi_get_msr(vcpu, MSR_IA32_SYSENTER_EIP);
	r->kernel_gs_base = kvmi_get_msr(vcpu, MSR_KERNEL_GS_BASE);
}

static u8 kvmi_x86_mode(struct kvm_vcpu *vcpu, const struct kvmi_x86_regs *r)
{
	if (!is_protmode(vcpu))
		return KVMI_X86_MODE_REAL;
	if (r->rflags & X86_EFLAGS_VM)
		return KVMI_X86_MODE_VM86;
	if (is_long_mode(vcpu) && r->cs.l)
		return KVMI_X86_MODE_PROT64;
	return r->cs.db ? KVMI_X86_MODE_PROT32 : KVMI_X86_MODE_PROT16;
}

/* Ring the notify eventfd of @kv, its own or else the VM-wide one. */
static bool kvmi_notify(struct kvmi_vcpu *kv)
{
	struct eventfd_ctx *ctx;

	rcu_read_lock();
	ctx = rcu_dereference(kv->notify);
	if (!ctx)
		ctx = rcu_dereference(kv->kvmi->notify);
	if (ctx)
		eventfd_signal(ctx);
	rcu_read_unlock();
	return ctx;
}

/*
 * Ring transport: the event is in the slot; ring the notify eventfd
 * unless the tool polls (K2).
 */
static void kvmi_ring_event_notify(struct kvm_vcpu *vcpu,
				   struct kvmi_vcpu *kv)
{
	/*
	 * K2: the event is published before the tool's flag is read; pairs
	 * with the tool's smp_mb() between clearing POLLING and re-reading
	 * ev->seq (T0). Either it sees the event or we see it sleeps.
	 */
	smp_mb();
	if (READ_ONCE(kv->tstate->flags) & KVMI_TOOL_POLLING) {
		kvmi_stat(vcpu, kv, notify_suppressed);
		trace_kvmi_doorbell(kv->idx, KVMI_TRACE_NOTIFY_SUPPRESSED);
	} else if (kvmi_notify(kv)) {
		kvmi_stat(vcpu, kv, notify_signals);
		trace_kvmi_doorbell(kv->idx, KVMI_TRACE_NOTIFY);
	}
}

/*
 * Publish event @id with @data on the vCPU's slot (K0, K1), then hand it
 * to the tool as the transport does.
 */
static void kvmi_event_publish(struct kvm_vcpu *vcpu, struct kvmi_vcpu *kv,
			       u16 id, const union kvmi_event_data *data)
{
	struct kvmi_vcpu_state *vs = kv->state;
	struct kvmi_event *ev = kv->event;
	u64 reply_ns = READ_ONCE(vcpu->kvm->kvmi_settings.reply_ns);
	u32 s = kv->seq + 1;

	if (!s)
		s = 1;		/* 0 is never an event */
	kv->seq = s;
	WRITE_ONCE(kv->pending_seq, s);
	WRITE_ONCE(kv->pending_id, id);

	WRITE_ONCE(ev->seq, 0);
	/* K0: the slot is being rewritten; pairs with the re-check in T1. */
	smp_wmb();

	ev->id = id;
	ev->vcpu = kv->idx;
	ev->padding = 0;
	ev->data = *data;
	kvmi_get_regs(vcpu, &ev->regs);
	ev->mode = kvmi_x86_mode(vcpu, &ev->regs);
	ev->cpl = kvm_x86_call(get_cpl)(vcpu);
	ev->timestamp_ns = ktime_get_ns();
	kv->deadline = reply_ns ? ev->timestamp_ns + reply_ns : 0;

	/* K1: pairs with the tool's load-acquire of ev->seq (T1). */
	smp_store_release(&ev->seq, s);
	kvmi_stat(vcpu, kv, events);
	trace_kvmi_event_send(kv->idx, s, id, ev->regs.rip, ev->timestamp_ns);
	WRITE_ONCE(vs->flags, vs->flags | KVMI_VCPU_WAITING);

	INDIRECT_CALL_1(kv->ops->event_notify, kvmi_ring_event_notify,
			vcpu, kv);
}

/* K3: the reply to the pending event is published. */
static bool kvmi_ring_reply_seen(struct kvmi_vcpu *kv)
{
	/* Pairs with the tool's store-release of rp->seq (T2). */
	return smp_load_acquire(&kv->reply->seq) == kv->pending_seq;
}

static bool kvmi_reply_seen(struct kvmi_vcpu *kv)
{
	return INDIRECT_CALL_1(kv->ops->reply_seen, kvmi_ring_reply_seen, kv);
}

static bool kvmi_vcpu_has_kick(struct kvmi_vcpu *kv)
{
	return READ_ONCE(kv->kick) || READ_ONCE(kv->kvmi->kick);
}

/* K4: a new command is published. */
static bool kvmi_ring_cmd_seen(struct kvmi_vcpu *kv)
{
	/* Pairs with the tool's store-release of cmd->seq (T4). */
	return smp_load_acquire(&kv->cmd->seq) != kv->cmd_seq;
}

static bool kvmi_cmd_seen(struct kvmi_vcpu *kv)
{
	return INDIRECT_CALL_1(kv->ops->cmd_seen, kvmi_ring_cmd_seen, kv);
}

/* KVMI_IOCTL_UNPAUSE has finished the PAUSE event in the slot. */
static bool kvmi_unpaused(struct kvmi_vcpu *kv)
{
	return kv->pending_id == KVMI_EVENT_PAUSE &&
	       atomic_read(&kv->pause) != KVMI_PAUSE_EVENT;
}

/* Why a sleeping vCPU wakes up (besides a signal). */
static bool kvmi_wait_over(struct kvmi_vcpu *kv, u32 gen)
{
	return kvmi_reply_seen(kv) || kvmi_cmd_seen(kv) ||
	       kvmi_is_detached(kv->kvmi) || kvmi_unpaused(kv) ||
	       atomic_read(&kv->shutdown) ||
	       READ_ONCE(kv->wait_gen) != gen;
}

/* The VMM's deadline for the pending event has expired. */
static bool kvmi_deadline_passed(struct kvmi_vcpu *kv)
{
	return kv->deadline && ktime_get_ns() >= kv->deadline;
}

enum kvmi_wait_result {
	KVMI_WAIT_REPLY,	/* the reply is there */
	KVMI_WAIT_CMD,		/* a command is there */
	KVMI_WAIT_DETACHED,	/* introspection ended */
	KVMI_WAIT_UNPAUSE,	/* KVMI_IOCTL_UNPAUSE ended the PAUSE event */
	KVMI_WAIT_DEADLINE,	/* the VMM's reply deadline expired */
	KVMI_WAIT_SIGNAL,	/* a signal is pending */
	KVMI_WAIT_AGAIN,	/* doorbells or wait mode changed */
	KVMI_WAIT_SLEEP,	/* the spin budget is spent */
};

/*
 * A CR or MSR event waits inside the write it intercepts, where KVM can't
 * leave KVM_RUN and come back: only a fatal signal ends its wait.
 */
static bool kvmi_signal_pending(struct kvmi_vcpu *kv)
{
	if (kv->killable)
		return fatal_signal_pending(current);
	return signal_pending(current);
}

static enum kvmi_wait_result kvmi_spin(struct kvm_vcpu *vcpu,
				       struct kvmi_vcpu *kv, u32 mode,
				       u64 spin_ns, u32 gen)
{
	u64 start = ktime_get_ns();

	for (;;) {
		/* K3 before K4: a command published before the reply is seen. */
		bool reply = kvmi_reply_seen(kv);

		if (kvmi_cmd_seen(kv)) {
			kvmi_stat(vcpu, kv, spin_hits);
			return KVMI_WAIT_CMD;
		}
		if (reply) {
			kvmi_stat(vcpu, kv, spin_hits);
			return KVMI_WAIT_REPLY;
		}
		/* KVMI_IOCTL_SHUTDOWN_GUEST ends the event as a detach does. */
		if (kvmi_is_detached(kv->kvmi) || atomic_read(&kv->shutdown))
			return KVMI_WAIT_DETACHED;
		if (kvmi_unpaused(kv))
			return KVMI_WAIT_UNPAUSE;
		if (kvmi_deadline_passed(kv))
			return KVMI_WAIT_DEADLINE;
		if (kvmi_signal_pending(kv))
			return KVMI_WAIT_SIGNAL;
		if (READ_ONCE(kv->wait_gen) != gen)
			return KVMI_WAIT_AGAIN;
		if (mode == KVMI_WAIT_BLOCK)
			return KVMI_WAIT_SLEEP;
		if (mode == KVMI_WAIT_HYBRID &&
		    ktime_get_ns() - start >= spin_ns)
			return KVMI_WAIT_SLEEP;
		cpu_relax();
		cond_resched();
	}
}

static enum kvmi_wait_result kvmi_sleep(struct kvm_vcpu *vcpu,
					struct kvmi_vcpu *kv, u32 gen)
{
	struct kvmi_vcpu_state *vs = kv->state;
	enum kvmi_wait_result res = KVMI_WAIT_AGAIN;

	WRITE_ONCE(vs->flags, vs->flags | KVMI_VCPU_NEED_KICK);
	/*
	 * K6: NEED_KICK is set before the reply and the command are re-read;
	 * pairs with the tool's smp_mb() between publishing its reply or
	 * command and reading NEED_KICK (T3). Either it kicks or we see them.
	 */
	smp_mb();
	if (!kvmi_wait_over(kv, gen)) {
		u64 now = ktime_get_ns();
		ktime_t left;
		long r = 0;

		kvmi_stat(vcpu, kv, sleeps);
		if (!kv->deadline && kv->killable) {
			r = wait_event_killable(kv->wq, kvmi_wait_over(kv, gen));
		} else if (!kv->deadline) {
			r = wait_event_interruptible(kv->wq,
						     kvmi_wait_over(kv, gen));
		} else if (now < kv->deadline) {
			/* Ends with -ETIME at the deadline: the spin sees it. */
			left = ns_to_ktime(kv->deadline - now);
			if (kv->killable)
				r = __wait_event_hrtimeout(kv->wq,
							   kvmi_wait_over(kv, gen),
							   left, TASK_KILLABLE);
			else
				r = __wait_event_hrtimeout(kv->wq,
							   kvmi_wait_over(kv, gen),
							   left,
							   TASK_INTERRUPTIBLE);
		}
		if (r == -ERESTARTSYS)
			res = KVMI_WAIT_SIGNAL;
		if (atomic_xchg(&kv->kicked, 0)) {
			kvmi_stat(vcpu, kv, kicks);
			trace_kvmi_doorbell(kv->idx, KVMI_TRACE_KICK);
		}
	}
	WRITE_ONCE(vs->flags, vs->flags & ~KVMI_VCPU_NEED_KICK);
	return res;
}

static void kvmi_cmd_serve(struct kvm_vcpu *vcpu, struct kvmi_vcpu *kv);

/*
 * Wait for the reply to the pending event, as the wait mode says, and
 * serve the commands published meanwhile. Called with kvm->srcu held;
 * drops it while it waits, so that a waiting vCPU never holds up memslot
 * changes.
 */
static enum kvmi_wait_result kvmi_event_wait(struct kvm_vcpu *vcpu,
					     struct kvmi_vcpu *kv)
{
	enum kvmi_wait_result res;

	kvm_vcpu_srcu_read_unlock(vcpu);
	for (;;) {
		u32 gen = READ_ONCE(kv->wait_gen);
		u32 mode = READ_ONCE(kv->wait_mode);
		u64 spin_ns = READ_ONCE(kv->spin_ns);

		/* No kick eventfd: the tool can't wake us, never sleep. */
		if (!kv->ops->self_wake && !kvmi_vcpu_has_kick(kv))
			mode = KVMI_WAIT_POLL;

		res = kvmi_spin(vcpu, kv, mode, spin_ns, gen);
		if (res == KVMI_WAIT_SLEEP)
			res = kvmi_sleep(vcpu, kv, gen);
		if (res == KVMI_WAIT_CMD) {
			kvm_vcpu_srcu_read_lock(vcpu);
			kvmi_cmd_serve(vcpu, kv);
			kvm_vcpu_srcu_read_unlock(vcpu);
			continue;
		}
		if (res != KVMI_WAIT_AGAIN)
			break;
	}
	kvm_vcpu_srcu_read_lock(vcpu);
	return res;
}

/* The actions an event accepts (kvmi.rst, section 10.1). */
static bool kvmi_action_valid(u16 id, u8 action)
{
	switch (id) {
	case KVMI_EVENT_BREAKPOINT:
		return action == KVMI_ACTION_CONTINUE ||
		       action == KVMI_ACTION_ALLOW ||
		       action == KVMI_ACTION_RETRY ||
		       action == KVMI_ACTION_CRASH;
	case KVMI_EVENT_PAUSE:
	case KVMI_EVENT_HYPERCALL:
	case KVMI_EVENT_XSETBV:
	case KVMI_EVENT_SINGLESTEP:
		return action == KVMI_ACTION_CONTINUE ||
		       action == KVMI_ACTION_CRASH;
	case KVMI_EVENT_CR:
	case KVMI_EVENT_MSR:
	case KVMI_EVENT_TRAP:
		return action == KVMI_ACTION_CONTINUE ||
		       action == KVMI_ACTION_ALLOW ||
		       action == KVMI_ACTION_DENY ||
		       action == KVMI_ACTION_CRASH;
	case KVMI_EVENT_DESCRIPTOR:
		return action == KVMI_ACTION_CONTINUE ||
		       action == KVMI_ACTION_DENY ||
		       action == KVMI_ACTION_RETRY ||
		       action == KVMI_ACTION_CRASH;
	case KVMI_EVENT_PAGE_FAULT:
		return action == KVMI_ACTION_CONTINUE ||
		       action == KVMI_ACTION_ALLOW ||
		       action == KVMI_ACTION_RETRY ||
		       action == KVMI_ACTION_CRASH ||
		       action == KVMI_ACTION_NOEMU ||
		       action == KVMI_ACTION_SET_CTX ||
		       action == KVMI_ACTION_EMUL_NOWRITE;
	default:
		return false;
	}
}

static bool kvmi_segments_valid(const struct kvmi_x86_regs *r)
{
	return !(r->cs.padding || r->ds.padding || r->es.padding ||
		 r->fs.padding || r->gs.padding || r->ss.padding ||
		 r->tr.padding || r->ldt.padding);
}

static bool kvmi_dtables_valid(const struct kvmi_x86_regs *r)
{
	return !memchr_inv(r->gdt.padding, 0, sizeof(r->gdt.padding)) &&
	       !memchr_inv(r->idt.padding, 0, sizeof(r->idt.padding));
}

static bool kvmi_msrs_valid(struct kvm_vcpu *vcpu,
			    const struct kvmi_x86_regs *r)
{
	/* The MSRs a write of a non-canonical address faults on. */
	return !is_noncanonical_msr_address(r->lstar, vcpu) &&
	       !is_noncanonical_msr_address(r->cstar, vcpu) &&
	       !is_noncanonical_msr_address(r->kernel_gs_base, vcpu);
}

/*
 * The checks that need no change of state: padding, unknown groups and the
 * values KVM refuses outright. The special registers are checked again,
 * as KVM_SET_SREGS2 does, before any of them is written.
 */
static bool kvmi_regs_valid(struct kvm_vcpu *vcpu,
			    const struct kvmi_x86_regs *r)
{
	u32 groups = r->groups;

	if (r->padding || (groups & ~KVMI_REGS_ALL))
		return false;
	if ((groups & KVMI_REGS_RIP) && is_64_bit_mode(vcpu) &&
	    is_noncanonical_address(r->rip, vcpu, 0))
		return false;
	if ((groups & KVMI_REGS_DRS) &&
	    (!kvm_dr6_valid(r->dr6) || !kvm_dr7_valid(r->dr7)))
		return false;
	if ((groups & KVMI_REGS_SEGMENTS) && !kvmi_segments_valid(r))
		return false;
	if ((groups & KVMI_REGS_DTABLES) && !kvmi_dtables_valid(r))
		return false;
	if ((groups & KVMI_REGS_MSRS) && !kvmi_msrs_valid(vcpu, r))
		return false;
	return true;
}

static bool kvmi_reply_valid(struct kvm_vcpu *vcpu, struct kvmi_vcpu *kv,
			     const struct kvmi_reply *rp)
{
	if (rp->event != kv->pending_id)
		return false;
	if (rp->padding1 || rp->padding2)
		return false;
	if (rp->flags & ~(KVMI_REPLY_SET_REGS | KVMI_REPLY_SINGLESTEP))
		return false;
	if (!kvmi_singlestep_reply_valid(vcpu, rp->flags))
		return false;
	if (!kvmi_action_valid(kv->pending_id, rp->action))
		return false;
	/* NOEMU: the tool did the instruction's work and says where next. */
	if (rp->action == KVMI_ACTION_NOEMU &&
	    (!(rp->flags & KVMI_REPLY_SET_REGS) ||
	     !(rp->regs.groups & KVMI_REGS_RIP)))
		return false;
	/* SET_CTX: the emulator's bytes (kvmi_pf_ctx.c). */
	if (rp->action == KVMI_ACTION_SET_CTX &&
	    !kvmi_pf_ctx_reply_valid(&rp->data.page_fault))
		return false;
	if (!kvmi_trap_reply_valid(rp) || !kvmi_descriptor_reply_valid(rp))
		return false;
	if (!(rp->flags & KVMI_REPLY_SET_REGS))
		return true;
	/* ALLOW delivers the #BP of the INT3 where it is (10.5). */
	if (kv->pending_id == KVMI_EVENT_BREAKPOINT &&
	    rp->action == KVMI_ACTION_ALLOW &&
	    (rp->regs.groups & KVMI_REGS_RIP))
		return false;
	/* KVM completes the intercepted write: it moves RIP itself (10.6). */
	if ((kv->pending_id == KVMI_EVENT_CR ||
	     kv->pending_id == KVMI_EVENT_MSR) &&
	    (rp->regs.groups & KVMI_REGS_RIP))
		return false;
	/* The access proceeds by emulating the instruction where it is. */
	if (kv->pending_id == KVMI_EVENT_PAGE_FAULT &&
	    (rp->action == KVMI_ACTION_CONTINUE ||
	     rp->action == KVMI_ACTION_ALLOW ||
	     rp->action == KVMI_ACTION_SET_CTX ||
	     rp->action == KVMI_ACTION_EMUL_NOWRITE) &&
	    (rp->regs.groups & KVMI_REGS_RIP))
		return false;
	return kvmi_regs_valid(vcpu, &rp->regs);
}

static void kvmi_set_gprs(struct kvm_vcpu *vcpu, const struct kvmi_x86_regs *r)
{
	kvm_rax_write(vcpu, r->rax);
	kvm_rbx_write(vcpu, r->rbx);
	kvm_rcx_write(vcpu, r->rcx);
	kvm_rdx_write(vcpu, r->rdx);
	kvm_rsi_write(vcpu, r->rsi);
	kvm_rdi_write(vcpu, r->rdi);
	kvm_rsp_write(vcpu, r->rsp);
	kvm_rbp_write(vcpu, r->rbp);
	kvm_r8_write(vcpu, r->r8);
	kvm_r9_write(vcpu, r->r9);
	kvm_r10_write(vcpu, r->r10);
	kvm_r11_write(vcpu, r->r11);
	kvm_r12_write(vcpu, r->r12);
	kvm_r13_write(vcpu, r->r13);
	kvm_r14_write(vcpu, r->r14);
	kvm_r15_write(vcpu, r->r15);
	/* As KVM_SET_REGS does. */
	kvm_set_rflags(vcpu, r->rflags | X86_EFLAGS_FIXED);
}

static void kvmi_to_kvm_segment(struct kvm_segment *var,
				const struct kvmi_x86_segment *s)
{
	var->base = s->base;
	var->limit = s->limit;
	var->selector = s->selector;
	var->type = s->type;
	var->s = s->s;
	var->dpl = s->dpl;
	var->present = s->present;
	var->avl = s->avl;
	var->l = s->l;
	var->db = s->db;
	var->g = s->g;
	var->unusable = s->unusable;
	var->padding = 0;
}

/*
 * Write the special registers of the groups selected in @r, the others
 * keeping their values, through KVM_SET_SREGS2's code: it checks the
 * whole set (CR0, CR4, EFER, CR3, long mode) before it writes anything.
 */
static int kvmi_set_sregs(struct kvm_vcpu *vcpu, struct kvmi_vcpu *kv,
			  const struct kvmi_x86_regs *r)
{
	struct kvm_sregs2 *sr = &kv->sregs;
	struct desc_ptr dt;

	memset(sr, 0, sizeof(*sr));
	if (r->groups & KVMI_REGS_SEGMENTS) {
		kvmi_to_kvm_segment(&sr->cs, &r->cs);
		kvmi_to_kvm_segment(&sr->ds, &r->ds);
		kvmi_to_kvm_segment(&sr->es, &r->es);
		kvmi_to_kvm_segment(&sr->fs, &r->fs);
		kvmi_to_kvm_segment(&sr->gs, &r->gs);
		kvmi_to_kvm_segment(&sr->ss, &r->ss);
		kvmi_to_kvm_segment(&sr->tr, &r->tr);
		kvmi_to_kvm_segment(&sr->ldt, &r->ldt);
	} else {
		kvm_get_segment(vcpu, &sr->cs, VCPU_SREG_CS);
		kvm_get_segment(vcpu, &sr->ds, VCPU_SREG_DS);
		kvm_get_segment(vcpu, &sr->es, VCPU_SREG_ES);
		kvm_get_segment(vcpu, &sr->fs, VCPU_SREG_FS);
		kvm_get_segment(vcpu, &sr->gs, VCPU_SREG_GS);
		kvm_get_segment(vcpu, &sr->ss, VCPU_SREG_SS);
		kvm_get_segment(vcpu, &sr->tr, VCPU_SREG_TR);
		kvm_get_segment(vcpu, &sr->ldt, VCPU_SREG_LDTR);
	}

	if (r->groups & KVMI_REGS_DTABLES) {
		sr->gdt.base = r->gdt.base;
		sr->gdt.limit = r->gdt.limit;
		sr->idt.base = r->idt.base;
		sr->idt.limit = r->idt.limit;
	} else {
		kvm_x86_call(get_gdt)(vcpu, &dt);
		sr->gdt.base = dt.address;
		sr->gdt.limit = dt.size;
		kvm_x86_call(get_idt)(vcpu, &dt);
		sr->idt.base = dt.address;
		sr->idt.limit = dt.size;
	}

	if (r->groups & KVMI_REGS_CRS) {
		sr->cr0 = r->cr0;
		sr->cr2 = r->cr2;
		sr->cr3 = r->cr3;
		sr->cr4 = r->cr4;
		sr->cr8 = r->cr8;
		sr->efer = r->efer;
	} else {
		sr->cr0 = kvm_read_cr0(vcpu);
		sr->cr2 = vcpu->arch.cr2;
		sr->cr3 = kvm_read_cr3(vcpu);
		sr->cr4 = kvm_read_cr4(vcpu);
		sr->cr8 = kvm_get_cr8(vcpu);
		sr->efer = vcpu->arch.efer;
	}
	sr->apic_base = vcpu->arch.apic_base;

	/* No PDPTRs: KVM loads them from CR3 if the guest uses PAE paging. */
	return kvm_vcpu_ioctl_x86_set_sregs2(vcpu, sr) ? -EINVAL : 0;
}

static const u32 kvmi_msr_index[] = {
	MSR_STAR, MSR_LSTAR, MSR_CSTAR, MSR_SYSCALL_MASK,
	MSR_IA32_SYSENTER_CS, MSR_IA32_SYSENTER_ESP, MSR_IA32_SYSENTER_EIP,
	MSR_KERNEL_GS_BASE,
};

/* Put back the MSRs saved by kvmi_set_msrs(). */
static void kvmi_restore_msrs(struct kvm_vcpu *vcpu, struct kvmi_vcpu *kv)
{
	int i;

	for (i = 0; i < ARRAY_SIZE(kvmi_msr_index); i++)
		kvm_set_msr(vcpu, kvmi_msr_index[i], kv->msr_old[i]);
}

/* Write the MSRs of @r; if KVM refuses one, put them all back. */
static int kvmi_set_msrs(struct kvm_vcpu *vcpu, struct kvmi_vcpu *kv,
			 const struct kvmi_x86_regs *r)
{
	const u64 val[] = {
		r->star, r->lstar, r->cstar, r->sfmask,
		r->sysenter_cs, r->sysenter_esp, r->sysenter_eip,
		r->kernel_gs_base,
	};
	int i;

	static_assert(ARRAY_SIZE(val) == ARRAY_SIZE(kvmi_msr_index));
	static_assert(ARRAY_SIZE(kv->msr_old) == ARRAY_SIZE(kvmi_msr_index));

	for (i = 0; i < ARRAY_SIZE(kvmi_msr_index); i++)
		kv->msr_old[i] = kvmi_get_msr(vcpu, kvmi_msr_index[i]);
	for (i = 0; i < ARRAY_SIZE(kvmi_msr_index); i++) {
		if (kvm_set_msr(vcpu, kvmi_msr_index[i], val[i])) {
			kvmi_restore_msrs(vcpu, kv);
			return -EINVAL;
		}
	}
	return 0;
}

/*
 * Write the groups of @r, validated by kvmi_regs_valid(). Those that KVM
 * may still refuse go first, so that a refusal leaves the vCPU as it was.
 * Called with kvm->srcu held.
 */
static int kvmi_set_regs(struct kvm_vcpu *vcpu, struct kvmi_vcpu *kv,
			 const struct kvmi_x86_regs *r)
{
	u32 groups = r->groups;
	int err;

	if (groups & KVMI_REGS_MSRS) {
		err = kvmi_set_msrs(vcpu, kv, r);
		if (err)
			return err;
	}
	if (groups & (KVMI_REGS_CRS | KVMI_REGS_SEGMENTS | KVMI_REGS_DTABLES)) {
		err = kvmi_set_sregs(vcpu, kv, r);
		if (err) {
			if (groups & KVMI_REGS_MSRS)
				kvmi_restore_msrs(vcpu, kv);
			return err;
		}
	}
	if (groups & KVMI_REGS_DRS) {
		kvm_set_dr(vcpu, 6, r->dr6);
		kvm_set_dr(vcpu, 7, r->dr7);
	}
	if (groups & KVMI_REGS_GPRS)
		kvmi_set_gprs(vcpu, r);
	if (groups & KVMI_REGS_RIP)
		kvm_rip_write(vcpu, r->rip);
	return 0;
}

/* Ring transport: copy the reply slot, after K3. */
static void kvmi_ring_reply_copy(struct kvmi_vcpu *kv, struct kvmi_reply *rp)
{
	/* Ordered after the load-acquire of rp->seq (K3). */
	memcpy(rp, kv->reply, sizeof(*rp));
}

/*
 * Take the reply to the pending event: copy it once into kernel memory,
 * validate the copy, apply its registers. Returns the KVMI_DONE_* reason
 * and, in @action and @groups, what is left to apply.
 */
static u8 kvmi_reply_take(struct kvm_vcpu *vcpu, struct kvmi_vcpu *kv,
			  u8 default_action, u8 *action, u32 *groups)
{
	struct kvmi_reply *rp = &kv->rcopy;

	INDIRECT_CALL_1(kv->ops->reply_copy, kvmi_ring_reply_copy, kv, rp);

	*groups = 0;
	if (!kvmi_reply_valid(vcpu, kv, rp))
		goto bad;
	if (rp->flags & KVMI_REPLY_SET_REGS) {
		if (kvmi_set_regs(vcpu, kv, &rp->regs))
			goto bad;
		*groups = rp->regs.groups;
	}
	*action = rp->action;
	if (rp->flags & KVMI_REPLY_SINGLESTEP)
		kvmi_singlestep_reply(vcpu, kv);
	kvmi_stat(vcpu, kv, replies);
	return KVMI_DONE_REPLY;

bad:
	kvmi_stat(vcpu, kv, bad_replies);
	*action = default_action;
	return KVMI_DONE_BAD_REPLY;
}

static int kvmi_cmd_get_registers(struct kvm_vcpu *vcpu,
				  struct kvmi_cmd_get_registers_result *res)
{
	kvmi_get_regs(vcpu, &res->regs);
	res->mode = kvmi_x86_mode(vcpu, &res->regs);
	res->cpl = kvm_x86_call(get_cpl)(vcpu);
	return 0;
}

static int kvmi_cmd_set_registers(struct kvm_vcpu *vcpu, struct kvmi_vcpu *kv,
				  const struct kvmi_x86_regs *r)
{
	if (!kvmi_regs_valid(vcpu, r))
		return -EINVAL;
	return kvmi_set_regs(vcpu, kv, r);
}

static int kvmi_cmd_get_cpuid(struct kvm_vcpu *vcpu,
			      const struct kvmi_cmd_get_cpuid *c,
			      struct kvmi_cmd_get_cpuid_result *res)
{
	struct kvm_cpuid_entry2 *e;

	e = kvm_find_cpuid_entry_index(vcpu, c->function, c->index);
	if (!e)
		return -ENOENT;
	res->eax = e->eax;
	res->ebx = e->ebx;
	res->ecx = e->ecx;
	res->edx = e->edx;
	return 0;
}

static int kvmi_cmd_get_xcr(struct kvm_vcpu *vcpu,
			    const struct kvmi_cmd_get_xcr *c,
			    struct kvmi_cmd_get_xcr_result *res)
{
	if (c->padding || c->xcr != 0)	/* XCR0 */
		return -EINVAL;
	res->value = vcpu->arch.xcr0;
	return 0;
}

/* Copy @len bytes to the vCPU's output data area (kernel-written). */
static void kvmi_data_out(struct kvmi_vcpu *kv, const void *buf, u32 len)
{
	u32 off = 0, n;

	for (off = 0; off < len; off += n) {
		n = min_t(u32, len - off, PAGE_SIZE);
		memcpy(page_address(kv->kpages[1 + off / PAGE_SIZE]),
		       buf + off, n);
	}
}

/* Copy @len bytes, once, from the vCPU's input data area (tool-written). */
static void kvmi_data_in(struct kvmi_vcpu *kv, void *buf, u32 len)
{
	u32 off = 0, n;

	for (off = 0; off < len; off += n) {
		n = min_t(u32, len - off, PAGE_SIZE);
		memcpy(buf + off,
		       page_address(kv->tpages[1 + off / PAGE_SIZE]), n);
	}
}

static u32 kvmi_xsave_size(struct kvm_vcpu *vcpu)
{
	/* KVM_GET_XSAVE2's size: at least struct kvm_xsave. */
	return max_t(u32, vcpu->arch.guest_fpu.uabi_size,
		     sizeof(struct kvm_xsave));
}

static int kvmi_cmd_get_xsave_info(struct kvm_vcpu *vcpu,
				   struct kvmi_cmd_xsave_result *res)
{
	res->size = kvmi_xsave_size(vcpu);
	return 0;
}

/*
 * The guest's FPU state is in the registers while the vCPU is in KVM_RUN:
 * put it in memory, with the host's back in the registers, for the time
 * of a command, as KVM does outside KVM_RUN.
 */
static void kvmi_fpu_put(struct kvm_vcpu *vcpu)
{
	fpu_swap_kvm_fpstate(&vcpu->arch.guest_fpu, false);
}

static void kvmi_fpu_load(struct kvm_vcpu *vcpu)
{
	fpu_swap_kvm_fpstate(&vcpu->arch.guest_fpu, true);
}

static int kvmi_cmd_get_xsave(struct kvm_vcpu *vcpu, struct kvmi_vcpu *kv,
			      const struct kvmi_cmd_xsave *c,
			      struct kvmi_cmd_xsave_result *res)
{
	u32 size = kvmi_xsave_size(vcpu);
	void *buf;

	if (c->padding)
		return -EINVAL;
	if (c->size < size || size > KVMI_DATA_SIZE)
		return -E2BIG;
	if (fpstate_is_confidential(&vcpu->arch.guest_fpu))
		return -EINVAL;
	buf = kvzalloc(size, GFP_KERNEL_ACCOUNT);
	if (!buf)
		return -ENOMEM;
	kvmi_fpu_put(vcpu);
	/* As KVM_GET_XSAVE2: the features enabled for the guest. */
	fpu_copy_guest_fpstate_to_uabi(&vcpu->arch.guest_fpu, buf, size,
				       vcpu->arch.guest_supported_xcr0 |
				       XFEATURE_MASK_FPSSE,
				       vcpu->arch.pkru);
	kvmi_fpu_load(vcpu);
	kvmi_data_out(kv, buf, size);
	kvfree(buf);
	res->size = size;
	return 0;
}

static int kvmi_cmd_set_xsave(struct kvm_vcpu *vcpu, struct kvmi_vcpu *kv,
			      const struct kvmi_cmd_xsave *c)
{
	u32 size = kvmi_xsave_size(vcpu);
	union fpregs_state *xs;
	int err;

	if (c->padding || c->size < size || c->size > KVMI_DATA_SIZE)
		return -EINVAL;
	if (fpstate_is_confidential(&vcpu->arch.guest_fpu))
		return -EINVAL;
	xs = kvzalloc(size, GFP_KERNEL_ACCOUNT);
	if (!xs)
		return -ENOMEM;
	kvmi_data_in(kv, xs, size);
	kvmi_fpu_put(vcpu);
	/* As KVM_SET_XSAVE. */
	xs->xsave.header.xfeatures &= ~vcpu->arch.guest_fpu.fpstate->xfd;
	err = fpu_copy_uabi_to_guest_fpstate(&vcpu->arch.guest_fpu, xs,
					     kvm_caps.supported_xcr0,
					     &vcpu->arch.pkru);
	kvmi_fpu_load(vcpu);
	kvfree(xs);
	return err ? -EINVAL : 0;
}

/* The memory type of a fixed-range MTRR byte for @gpa < 1 MiB. */
static u8 kvmi_mtrr_fixed(struct kvm_mtrr *m, u64 gpa)
{
	u32 i;

	if (gpa < 0x80000)
		return m->fixed_64k >> (8 * (gpa >> 16));
	if (gpa < 0xc0000) {
		i = (gpa - 0x80000) >> 14;
		return m->fixed_16k[i / 8] >> (8 * (i % 8));
	}
	i = (gpa - 0xc0000) >> 12;
	return m->fixed_4k[i / 8] >> (8 * (i % 8));
}

/* The memory type the guest's MTRRs give @gpa (SDM 12.11.4.1). */
static u8 kvmi_mtrr_type(struct kvm_vcpu *vcpu, u64 gpa)
{
	struct kvm_mtrr *m = &vcpu->arch.mtrr_state;
	u32 types = 0;
	int i;

	if (!(m->deftype & MTRR_DEF_TYPE_E))
		return MTRR_TYPE_UNCACHABLE;
	if ((m->deftype & MTRR_DEF_TYPE_FE) && gpa < 0x100000)
		return kvmi_mtrr_fixed(m, gpa);

	for (i = 0; i < KVM_NR_VAR_MTRR; i++) {
		u64 base = m->var[2 * i], mask = m->var[2 * i + 1];

		if (!(mask & MTRR_PHYSMASK_V))
			continue;
		mask &= PAGE_MASK & ~MTRR_PHYSMASK_V;
		if ((gpa & mask) == (base & mask))
			types |= BIT(base & 0xff & 31);
	}
	if (!types)
		return m->deftype & MTRR_DEF_TYPE_TYPE;
	if (hweight32(types) == 1)
		return __ffs(types);
	/* Overlaps: UC wins, WT wins over WB, others are undefined: UC. */
	if (types & BIT(MTRR_TYPE_UNCACHABLE))
		return MTRR_TYPE_UNCACHABLE;
	if (!(types & ~(BIT(MTRR_TYPE_WRTHROUGH) | BIT(MTRR_TYPE_WRBACK))))
		return MTRR_TYPE_WRTHROUGH;
	return MTRR_TYPE_UNCACHABLE;
}

static int kvmi_cmd_get_mtrrs(struct kvm_vcpu *vcpu,
			      struct kvmi_cmd_get_mtrrs_result *res)
{
	res->pat = vcpu->arch.pat;
	res->cap = kvmi_get_msr(vcpu, KVMI_MSR_MTRRCAP);
	res->def_type = vcpu->arch.mtrr_state.deftype;
	return 0;
}

static int kvmi_cmd_translate_gva(struct kvm_vcpu *vcpu,
				  const struct kvmi_cmd_translate_gva *c,
				  struct kvmi_cmd_translate_gva_result *res)
{
	struct x86_exception ex;
	gpa_t gpa;

	/* As KVM_TRANSLATE: no access checks, as the supervisor. */
	gpa = kvm_mmu_gva_to_gpa_system(vcpu, c->gva, &ex);
	if (gpa == INVALID_GPA)
		return -ENOENT;
	res->gpa = gpa;
	return 0;
}

static int kvmi_cmd_inject_exception(struct kvm_vcpu *vcpu,
				     struct kvmi_vcpu *kv,
				     const struct kvmi_cmd_inject_exception *c)
{
	if (c->padding[0] || c->padding[1] ||
	    (c->flags & ~KVMI_EXCEPTION_ERROR_CODE))
		return -EINVAL;
	/* An exception vector; NMI is not an exception. */
	if (c->vector > 31 || c->vector == NMI_VECTOR)
		return -EINVAL;
	if (c->address && c->vector != PF_VECTOR)
		return -EINVAL;
	/*
	 * The CPU pushes an error code for some vectors only, and the guest's
	 * handlers expect exactly that frame (on VMX, the entry would fail).
	 */
	if ((c->flags & KVMI_EXCEPTION_ERROR_CODE) &&
	    !x86_exception_has_error_code(c->vector))
		return -EINVAL;
	if (vcpu->arch.exception.pending || vcpu->arch.exception.injected ||
	    vcpu->arch.exception_vmexit.pending || kv->inject_queued ||
	    READ_ONCE(kv->inject_pending))
		return -EBUSY;

	/*
	 * Queued before the next entry (KVM_REQ_INTROSPECTION), once the
	 * event is over: completing the intercepted instruction may go
	 * through the emulator, which drops the exceptions queued before.
	 */
	kv->inject = *c;
	kv->inject_queued = true;
	kv->inject_seq = kv->cmd_seq;
	kvm_make_request(KVM_REQ_INTROSPECTION, vcpu);
	return 0;
}

/* Queue the exception of KVMI_CMD_INJECT_EXCEPTION, before an entry. */
static void kvmi_inject_queue(struct kvm_vcpu *vcpu, struct kvmi_vcpu *kv)
{
	const struct kvmi_cmd_inject_exception *c = &kv->inject;
	bool has_error = c->flags & KVMI_EXCEPTION_ERROR_CODE;
	struct x86_exception fault = {};

	kv->inject_queued = false;
	if (c->vector == PF_VECTOR) {
		fault.vector = PF_VECTOR;
		fault.error_code_valid = true;
		fault.error_code = has_error ? c->error_code : 0;
		fault.address = c->address;
		kvm_inject_page_fault(vcpu, &fault, false);
	} else if (x86_exception_has_error_code(c->vector)) {
		kvm_queue_exception_e(vcpu, c->vector,
				      has_error ? c->error_code : 0);
	} else {
		kvm_queue_exception(vcpu, c->vector);
	}
	WRITE_ONCE(kv->inject_pending, true);
}

/**
 * kvmi_exception_injected() - KVM injects an exception into the guest
 * @vcpu: the vCPU, on its own thread, about to enter the guest
 * @vector: the exception's vector
 *
 * Publishes the outcome of the last KVMI_CMD_INJECT_EXCEPTION, if it
 * waits for one: delivered, or dropped when KVM injects another
 * exception in its place (merged into a #DF, replaced by the VMM).
 */
void kvmi_exception_injected(struct kvm_vcpu *vcpu, u8 vector)
{
	struct kvmi_vcpu *kv;
	struct kvmi_vcpu_state *vs;

	rcu_read_lock();
	kv = READ_ONCE(vcpu->kvmi);
	if (kv && READ_ONCE(kv->inject_pending)) {
		vs = kv->state;
		kv->inject_pending = false;
		WRITE_ONCE(vs->inject_status,
			   vector == kv->inject.vector ?
			   KVMI_INJECT_DELIVERED : KVMI_INJECT_DROPPED);
		/* Pairs with the tool's load-acquire of inject_seq. */
		smp_store_release(&vs->inject_seq, kv->inject_seq);
	}
	rcu_read_unlock();
}

/* Run the command copied in kv->ccopy; the result goes to @res. */
static int kvmi_cmd_run(struct kvm_vcpu *vcpu, struct kvmi_vcpu *kv,
			union kvmi_cmd_results *res)
{
	const struct kvmi_cmd *c = &kv->ccopy;

	if (c->id < KVMI_CMD_VCPU_FIRST)
		return -EINVAL;	/* 0 or an ioctl */
	if (!kvmi_command_allowed(vcpu->kvm, c->id))
		return -EPERM;
	if (c->flags || c->padding)
		return -EINVAL;
	/* Only in the event it names (kvmi.rst, section 11.2). */
	if (!kv->pending_id || c->event != kv->pending_seq)
		return -ESRCH;

	switch (c->id) {
	case KVMI_CMD_GET_REGISTERS:
		return kvmi_cmd_get_registers(vcpu, &res->get_registers);
	case KVMI_CMD_SET_REGISTERS:
		return kvmi_cmd_set_registers(vcpu, kv, &c->args.set_registers);
	case KVMI_CMD_GET_CPUID:
		return kvmi_cmd_get_cpuid(vcpu, &c->args.get_cpuid,
					  &res->get_cpuid);
	case KVMI_CMD_GET_XCR:
		return kvmi_cmd_get_xcr(vcpu, &c->args.get_xcr, &res->get_xcr);
	case KVMI_CMD_GET_XSAVE_INFO:
		return kvmi_cmd_get_xsave_info(vcpu, &res->xsave);
	case KVMI_CMD_GET_XSAVE:
		return kvmi_cmd_get_xsave(vcpu, kv, &c->args.xsave,
					  &res->xsave);
	case KVMI_CMD_SET_XSAVE:
		return kvmi_cmd_set_xsave(vcpu, kv, &c->args.xsave);
	case KVMI_CMD_GET_MTRR_TYPE:
		res->get_mtrr_type.type =
			kvmi_mtrr_type(vcpu, c->args.get_mtrr_type.gpa);
		return 0;
	case KVMI_CMD_GET_MTRRS:
		return kvmi_cmd_get_mtrrs(vcpu, &res->get_mtrrs);
	case KVMI_CMD_TRANSLATE_GVA:
		return kvmi_cmd_translate_gva(vcpu, &c->args.translate_gva,
					      &res->translate_gva);
	case KVMI_CMD_INJECT_EXCEPTION:
		return kvmi_cmd_inject_exception(vcpu, kv,
						 &c->args.inject_exception);
	case KVMI_CMD_CONTROL_SINGLESTEP:
		return kvmi_cmd_control_singlestep(vcpu, kv,
						   &c->args.control_singlestep);
	default:
		return -EOPNOTSUPP;
	}
}

/* Ring transport: copy the command slot once (after K4). */
static u32 kvmi_ring_cmd_copy(struct kvmi_vcpu *kv, struct kvmi_cmd *c)
{
	u32 seq;

	/* Pairs with the tool's store-release of cmd->seq (T4). */
	seq = smp_load_acquire(&kv->cmd->seq);
	memcpy(c, kv->cmd, sizeof(*c));
	kv->cmd_seq = seq;
	return seq;
}

/* Ring transport: publish the result slot (K5). */
static void kvmi_ring_cmd_done(struct kvmi_vcpu *kv,
			       struct kvmi_cmd_result *res, u32 seq)
{
	/* K5: pairs with the tool's load-acquire of res->seq (T5). */
	smp_store_release(&res->seq, seq);
}

/*
 * Serve the command that arrived: copy it once into kernel memory, run
 * the copy, write the result and hand it to the tool. With the ring, the
 * tool reads the result slot only once its seq is the command's, so the
 * fields may be written in any order before the release (K5).
 */
static void kvmi_cmd_serve(struct kvm_vcpu *vcpu, struct kvmi_vcpu *kv)
{
	struct kvmi_cmd_result *res = kv->cmd_result;
	struct kvmi_cmd *c = &kv->ccopy;
	u32 seq;
	int err;

	seq = INDIRECT_CALL_1(kv->ops->cmd_copy, kvmi_ring_cmd_copy, kv, c);

	memset(&res->result, 0, sizeof(res->result));
	err = kvmi_cmd_run(vcpu, kv, &res->result);
	if (err) {
		memset(&res->result, 0, sizeof(res->result));
		kvmi_stat(vcpu, kv, command_errors);
	}
	res->id = c->id;
	res->padding1 = 0;
	res->error = err;
	res->padding2 = 0;
	kvmi_stat(vcpu, kv, commands);
	INDIRECT_CALL_1(kv->ops->cmd_done, kvmi_ring_cmd_done, kv, res, seq);
	trace_kvmi_command(kv->idx, seq, c->id, err);
}

/* The shared-memory transport (kvmi.rst, sections 8 and 9). */
const struct kvmi_transport_ops kvmi_ring_ops = {
	.event_notify = kvmi_ring_event_notify,
	.reply_seen = kvmi_ring_reply_seen,
	.reply_copy = kvmi_ring_reply_copy,
	.cmd_seen = kvmi_ring_cmd_seen,
	.cmd_copy = kvmi_ring_cmd_copy,
	.cmd_done = kvmi_ring_cmd_done,
};

/* Why an event ended without the tool's reply; counts the deadlines. */
static u8 kvmi_default_reason(struct kvm_vcpu *vcpu, struct kvmi_vcpu *kv,
			      enum kvmi_wait_result res)
{
	/* The event slot is ours: its timestamp is the one we wrote. */
	u64 ts = kv->event->timestamp_ns;

	switch (res) {
	case KVMI_WAIT_DEADLINE:
		kvmi_stat(vcpu, kv, deadlines);
		trace_kvmi_deadline(kv->idx, kv->pending_seq, kv->pending_id,
				    kv->deadline - ts);
		return KVMI_DONE_DEADLINE;
	case KVMI_WAIT_UNPAUSE:
		return KVMI_DONE_UNPAUSE;
	default:
		++vcpu->stat.kvmi_detach_releases;
		return KVMI_DONE_DETACH;
	}
}

/* K7: the event is finished. */
static void kvmi_event_done(struct kvm_vcpu *vcpu, struct kvmi_vcpu *kv,
			    u8 action, u8 reason)
{
	struct kvmi_vcpu_state *vs = kv->state;
	u64 ts = kv->event->timestamp_ns;
	u64 waited = ktime_get_ns() - ts;

	WRITE_ONCE(vs->done_action, action);
	WRITE_ONCE(vs->done_reason, reason);
	/* Pairs with the tool's load-acquire of done_seq (T7). */
	smp_store_release(&vs->done_seq, kv->pending_seq);
	WRITE_ONCE(vs->flags, vs->flags & ~KVMI_VCPU_WAITING);
	trace_kvmi_reply(kv->idx, kv->pending_seq, kv->pending_id, action,
			 reason == KVMI_DONE_REPLY ? kv->rcopy.flags : 0,
			 reason, ts);
	vcpu->stat.kvmi_wait_ns += waited;
	KVM_STATS_LOG_HIST_UPDATE(vcpu->stat.kvmi_wait_hist, waited);
	WRITE_ONCE(kv->pending_id, 0);

	/*
	 * A command that came for the event just ended is refused now
	 * (-ESRCH, as pending_id is 0), rather than left for the next one.
	 */
	if (kv->ops->cmd_pending ? kv->ops->cmd_pending(kv) :
	    kvmi_cmd_seen(kv))
		kvmi_cmd_serve(vcpu, kv);
}

/* Take a reference on the vCPU's introspection, if it has one. */
static struct kvmi_vcpu *kvmi_vcpu_get(struct kvm_vcpu *vcpu)
{
	struct kvmi_vcpu *kv;

	/* kvmi_put() frees the struct kvmi after a grace period. */
	rcu_read_lock();
	kv = READ_ONCE(vcpu->kvmi);
	if (kv && !refcount_inc_not_zero(&kv->kvmi->refcount))
		kv = NULL;
	rcu_read_unlock();
	return kv;
}

static void kvmi_vcpu_put(struct kvmi_vcpu *kv)
{
	if (kv)
		kvmi_put(kv->kvmi);
}

/* Finish the hypercall with @action, as kvmi.rst, section 10.4 says. */
static int kvmi_hypercall_complete(struct kvm_vcpu *vcpu, u8 action,
				   u32 groups)
{
	if (action == KVMI_ACTION_CRASH) {
		memset(&vcpu->run->system_event, 0,
		       sizeof(vcpu->run->system_event));
		vcpu->run->exit_reason = KVM_EXIT_SYSTEM_EVENT;
		vcpu->run->system_event.type = KVM_SYSTEM_EVENT_CRASH;
		return 0;
	}

	++vcpu->stat.hypercalls;
	if (!(groups & KVMI_REGS_GPRS))
		kvm_rax_write(vcpu, 0);
	if (groups & KVMI_REGS_RIP)
		return 1;
	return kvm_skip_emulated_instruction(vcpu);
}

static int kvmi_hypercall_resume(struct kvm_vcpu *vcpu);

/* Wait for the reply to the pending HYPERCALL event and apply it. */
static int kvmi_hypercall_wait(struct kvm_vcpu *vcpu, struct kvmi_vcpu *kv)
{
	enum kvmi_wait_result res;
	u8 action = KVMI_ACTION_CONTINUE;
	u32 groups = 0;
	u8 reason;

	res = kvmi_event_wait(vcpu, kv);
	switch (res) {
	case KVMI_WAIT_SIGNAL:
		/*
		 * Leave KVM_RUN with the event pending; the next KVM_RUN
		 * resumes the wait before any guest instruction (13.5).
		 */
		WRITE_ONCE(kv->state->flags,
			   kv->state->flags & ~KVMI_VCPU_WAITING);
		vcpu->arch.complete_userspace_io = kvmi_hypercall_resume;
		vcpu->run->exit_reason = KVM_EXIT_INTR;
		++vcpu->stat.signal_exits;
		return -EINTR;
	case KVMI_WAIT_REPLY:
		reason = kvmi_reply_take(vcpu, kv, KVMI_ACTION_CONTINUE,
					 &action, &groups);
		break;
	default:
		reason = kvmi_default_reason(vcpu, kv, res);
		break;
	}
	kvmi_event_done(vcpu, kv, action, reason);
	return kvmi_hypercall_complete(vcpu, action, groups);
}

/* KVM_RUN again after a signal interrupted the wait. */
static int kvmi_hypercall_resume(struct kvm_vcpu *vcpu)
{
	struct kvmi_vcpu *kv = kvmi_vcpu_get(vcpu);
	int r;

	if (!kv || kv->pending_id != KVMI_EVENT_HYPERCALL) {
		/* Introspection ended meanwhile: the default action. */
		kvmi_vcpu_put(kv);
		return kvmi_hypercall_complete(vcpu, KVMI_ACTION_CONTINUE, 0);
	}
	WRITE_ONCE(kv->state->flags, kv->state->flags | KVMI_VCPU_WAITING);
	r = kvmi_hypercall_wait(vcpu, kv);
	kvmi_vcpu_put(kv);
	return r;
}

/* Whether the introspection of @vcpu, if any, has event @id enabled. */
static bool kvmi_event_enabled(struct kvm_vcpu *vcpu, u16 id)
{
	struct kvmi_vcpu *kv;
	bool enabled;

	rcu_read_lock();
	kv = READ_ONCE(vcpu->kvmi);
	enabled = kv && test_bit(id, &kv->events);
	rcu_read_unlock();
	return enabled;
}

/**
 * kvmi_hypercall_wanted() - tell whether a hypercall raises an event
 * @vcpu: the vCPU, on its own thread
 * @nr: the hypercall number (RAX)
 * @op_64_bit: whether the hypercall was made in 64-bit mode
 * @cpl: the current privilege level
 *
 * Return: true if it is KVM_HC_KVMI, made at CPL 0, on a vCPU whose
 * HYPERCALL event is enabled; kvmi_hypercall_event() then handles it.
 */
bool kvmi_hypercall_wanted(struct kvm_vcpu *vcpu, unsigned long nr,
			   int op_64_bit, int cpl)
{
	if (!op_64_bit)
		nr = (u32)nr;
	if (nr != KVM_HC_KVMI || cpl)
		return false;
	return kvmi_event_enabled(vcpu, KVMI_EVENT_HYPERCALL);
}

/**
 * kvmi_hypercall_event() - raise KVMI_EVENT_HYPERCALL and wait for the reply
 * @vcpu: the vCPU, on its own thread, at its VMCALL/VMMCALL exit
 *
 * Return: as an exit handler: 1 to resume the guest, 0 to exit to
 * userspace (CRASH), -EINTR for a signal (the event stays pending).
 */
int kvmi_hypercall_event(struct kvm_vcpu *vcpu)
{
	union kvmi_event_data data = {};
	struct kvmi_vcpu *kv;
	int r;

	kv = kvmi_vcpu_get(vcpu);
	if (!kv) {
		/* Detached since kvmi_hypercall_wanted(): as if never on. */
		unsigned long ret = -KVM_ENOSYS;

		if (!is_64_bit_hypercall(vcpu))
			ret = (u32)ret;
		kvm_rax_write(vcpu, ret);
		++vcpu->stat.hypercalls;
		return kvm_skip_emulated_instruction(vcpu);
	}

	data.hypercall.insn_len = KVMI_HYPERCALL_INSN_LEN;
	kvmi_event_publish(vcpu, kv, KVMI_EVENT_HYPERCALL, &data);
	r = kvmi_hypercall_wait(vcpu, kv);
	kvmi_vcpu_put(kv);
	return r;
}

/**
 * kvmi_vcpu_unpause() - cancel the pause of a vCPU (KVMI_IOCTL_UNPAUSE)
 * @kv: the vCPU
 *
 * A request not seen yet is dropped; a PAUSE event in the slot finishes
 * with CONTINUE (KVMI_DONE_UNPAUSE). Safe from any thread.
 */
void kvmi_vcpu_unpause(struct kvmi_vcpu *kv)
{
	if (atomic_xchg(&kv->pause, KVMI_PAUSE_NONE) == KVMI_PAUSE_EVENT)
		kvmi_vcpu_wake(kv);
}

/* Finish the PAUSE event with @action, as kvmi.rst, section 10.3 says. */
static int kvmi_pause_complete(struct kvm_vcpu *vcpu, struct kvmi_vcpu *kv,
			       u8 action)
{
	/* A new request made meanwhile (REQUESTED) stays for the next entry. */
	atomic_cmpxchg(&kv->pause, KVMI_PAUSE_EVENT, KVMI_PAUSE_NONE);
	if (action == KVMI_ACTION_CRASH) {
		memset(&vcpu->run->system_event, 0,
		       sizeof(vcpu->run->system_event));
		vcpu->run->exit_reason = KVM_EXIT_SYSTEM_EVENT;
		vcpu->run->system_event.type = KVM_SYSTEM_EVENT_CRASH;
		return 0;
	}
	return 1;
}

/* Wait for the reply to the pending PAUSE event and apply it. */
static int kvmi_pause_wait(struct kvm_vcpu *vcpu, struct kvmi_vcpu *kv)
{
	enum kvmi_wait_result res;
	u8 action = KVMI_ACTION_CONTINUE;
	u32 groups;
	u8 reason;

	res = kvmi_event_wait(vcpu, kv);
	switch (res) {
	case KVMI_WAIT_SIGNAL:
		/*
		 * Leave KVM_RUN with the event pending; the request brings
		 * the vCPU back to the wait before any guest instruction.
		 */
		WRITE_ONCE(kv->state->flags,
			   kv->state->flags & ~KVMI_VCPU_WAITING);
		kvm_make_request(KVM_REQ_INTROSPECTION, vcpu);
		vcpu->run->exit_reason = KVM_EXIT_INTR;
		++vcpu->stat.signal_exits;
		return -EINTR;
	case KVMI_WAIT_REPLY:
		reason = kvmi_reply_take(vcpu, kv, KVMI_ACTION_CONTINUE,
					 &action, &groups);
		break;
	default:
		reason = kvmi_default_reason(vcpu, kv, res);
		break;
	}
	kvmi_event_done(vcpu, kv, action, reason);
	return kvmi_pause_complete(vcpu, kv, action);
}

/**
 * kvmi_request_event() - raise an event at KVM_REQ_INTROSPECTION
 * @vcpu: the vCPU, on its own thread, between two instructions, with
 *	kvm->srcu held
 * @kv: its introspection state
 * @id: the KVMI_EVENT_* to publish, or 0 to wait again for the pending
 *	event, which a signal interrupted
 * @data: the event's data, if @id is not 0
 *
 * Waits for the reply and applies its registers. A signal leaves KVM_RUN
 * with the event pending; the request brings the vCPU back to the wait
 * before any guest instruction.
 *
 * Return: the action to apply (CONTINUE by default), or -EINTR.
 */
int kvmi_request_event(struct kvm_vcpu *vcpu, struct kvmi_vcpu *kv, u16 id,
		       const union kvmi_event_data *data)
{
	enum kvmi_wait_result res;
	u8 action = KVMI_ACTION_CONTINUE;
	u32 groups;
	u8 reason;

	if (id)
		kvmi_event_publish(vcpu, kv, id, data);
	else
		WRITE_ONCE(kv->state->flags,
			   kv->state->flags | KVMI_VCPU_WAITING);
	res = kvmi_event_wait(vcpu, kv);
	if (res == KVMI_WAIT_SIGNAL) {
		WRITE_ONCE(kv->state->flags,
			   kv->state->flags & ~KVMI_VCPU_WAITING);
		kvm_make_request(KVM_REQ_INTROSPECTION, vcpu);
		vcpu->run->exit_reason = KVM_EXIT_INTR;
		++vcpu->stat.signal_exits;
		return -EINTR;
	}
	if (res == KVMI_WAIT_REPLY)
		reason = kvmi_reply_take(vcpu, kv, KVMI_ACTION_CONTINUE,
					 &action, &groups);
	else
		reason = kvmi_default_reason(vcpu, kv, res);
	kvmi_event_done(vcpu, kv, action, reason);
	return action;
}

/**
 * kvmi_vcpu_request() - handle KVM_REQ_INTROSPECTION before a VM entry
 * @vcpu: the vCPU, on its own thread, with kvm->srcu held
 *
 * Raises the PAUSE event if a pause is requested, or goes back to waiting
 * in the PAUSE event a signal interrupted, and waits for its end.
 *
 * Return: 1 to enter the guest, 0 to exit to userspace (CRASH), -EINTR
 * for a signal (the event stays pending).
 */
int kvmi_vcpu_request(struct kvm_vcpu *vcpu)
{
	union kvmi_event_data data = {};
	struct kvmi_vcpu *kv;
	int r = 1;

	/* The #BP intercept follows the BREAKPOINT event (or its end). */
	kvm_x86_call(update_exception_bitmap)(vcpu);

	kv = kvmi_vcpu_get(vcpu);
	if (!kv) {
		kvmi_singlestep_arm(vcpu, NULL);
		return 1;	/* detached: pause requests are dropped */
	}

	if (kv->inject_queued)
		kvmi_inject_queue(vcpu, kv);

	if (kv->crash) {
		/* A CR or MSR event answered with CRASH (10.6, 10.7). */
		kv->crash = false;
		kvm_rip_write(vcpu, kv->crash_rip);
		kvmi_vcpu_put(kv);
		memset(&vcpu->run->system_event, 0,
		       sizeof(vcpu->run->system_event));
		vcpu->run->exit_reason = KVM_EXIT_SYSTEM_EVENT;
		vcpu->run->system_event.type = KVM_SYSTEM_EVENT_CRASH;
		return 0;
	}

	/* The step that just ended comes first (kvmi_singlestep.c). */
	r = kvmi_singlestep_event(vcpu, kv);
	if (r <= 0)
		goto out;
	/* Then the exception KVM is about to inject (kvmi_trap.c). */
	r = kvmi_trap_event(vcpu, kv);
	if (r <= 0)
		goto out;
	r = kvmi_descriptor_event(vcpu, kv);
	if (r <= 0)
		goto out;

	if (kv->pending_id == KVMI_EVENT_PAUSE) {
		WRITE_ONCE(kv->state->flags,
			   kv->state->flags | KVMI_VCPU_WAITING);
		r = kvmi_pause_wait(vcpu, kv);
	} else if (atomic_cmpxchg(&kv->pause, KVMI_PAUSE_REQUESTED,
				  KVMI_PAUSE_EVENT) == KVMI_PAUSE_REQUESTED) {
		kvmi_event_publish(vcpu, kv, KVMI_EVENT_PAUSE, &data);
		r = kvmi_pause_wait(vcpu, kv);
	}
	if (r > 0 && atomic_xchg(&kv->shutdown, 0)) {
		/* KVMI_IOCTL_SHUTDOWN_GUEST (7.14), after any PAUSE event. */
		memset(&vcpu->run->system_event, 0,
		       sizeof(vcpu->run->system_event));
		vcpu->run->exit_reason = KVM_EXIT_SYSTEM_EVENT;
		vcpu->run->system_event.type = KVM_SYSTEM_EVENT_SHUTDOWN;
		r = 0;
	}
	if (r > 0)
		kvmi_singlestep_arm(vcpu, kv);
out:
	kvmi_vcpu_put(kv);
	return r;
}

/**
 * kvmi_breakpoint_wanted() - tell whether #BP goes to the introspection
 * @vcpu: the vCPU, on its own thread
 *
 * Return: true if the vCPU's BREAKPOINT event is enabled: its #BP is
 * intercepted and kvmi_breakpoint_event() handles the intercept.
 */
bool kvmi_breakpoint_wanted(struct kvm_vcpu *vcpu)
{
	return kvmi_event_enabled(vcpu, KVMI_EVENT_BREAKPOINT);
}

/* The VMM debugs the guest with software breakpoints. */
static bool kvmi_vmm_sw_bp(struct kvm_vcpu *vcpu)
{
	u32 both = KVM_GUESTDBG_ENABLE | KVM_GUESTDBG_USE_SW_BP;

	return (vcpu->guest_debug & both) == both;
}

/* Finish the BREAKPOINT event with @action, as kvmi.rst, 10.5 says. */
static int kvmi_breakpoint_complete(struct kvm_vcpu *vcpu, u8 action,
				    u32 groups, u8 insn_len)
{
	struct kvm_run *run = vcpu->run;

	switch (action) {
	case KVMI_ACTION_CONTINUE:
		if (!(groups & KVMI_REGS_RIP))
			kvm_rip_write(vcpu, kvm_rip_read(vcpu) + insn_len);
		return 1;
	case KVMI_ACTION_RETRY:
		return 1;
	case KVMI_ACTION_CRASH:
		memset(&run->system_event, 0, sizeof(run->system_event));
		run->exit_reason = KVM_EXIT_SYSTEM_EVENT;
		run->system_event.type = KVM_SYSTEM_EVENT_CRASH;
		return 0;
	default:
		/* ALLOW: what would have happened without introspection. */
		if (kvmi_vmm_sw_bp(vcpu)) {
			run->exit_reason = KVM_EXIT_DEBUG;
			run->debug.arch.pc = kvm_get_linear_rip(vcpu);
			run->debug.arch.exception = BP_VECTOR;
			return 0;
		}
		/* A soft exception: delivery moves RIP past the INT3. */
		kvm_queue_exception(vcpu, BP_VECTOR);
		return 1;
	}
}

static int kvmi_breakpoint_resume(struct kvm_vcpu *vcpu);

/* Wait for the reply to the pending BREAKPOINT event and apply it. */
static int kvmi_breakpoint_wait(struct kvm_vcpu *vcpu, struct kvmi_vcpu *kv)
{
	enum kvmi_wait_result res;
	/* Our own copy, in the read-only event slot. */
	u8 insn_len = kv->event->data.breakpoint.insn_len;
	u8 action = KVMI_ACTION_ALLOW;
	u32 groups = 0;
	u8 reason;

	res = kvmi_event_wait(vcpu, kv);
	switch (res) {
	case KVMI_WAIT_SIGNAL:
		/* As for HYPERCALL: the next KVM_RUN resumes the wait. */
		WRITE_ONCE(kv->state->flags,
			   kv->state->flags & ~KVMI_VCPU_WAITING);
		vcpu->arch.complete_userspace_io = kvmi_breakpoint_resume;
		vcpu->run->exit_reason = KVM_EXIT_INTR;
		++vcpu->stat.signal_exits;
		return -EINTR;
	case KVMI_WAIT_REPLY:
		reason = kvmi_reply_take(vcpu, kv, KVMI_ACTION_ALLOW,
					 &action, &groups);
		break;
	default:
		reason = kvmi_default_reason(vcpu, kv, res);
		break;
	}
	kvmi_event_done(vcpu, kv, action, reason);
	return kvmi_breakpoint_complete(vcpu, action, groups, insn_len);
}

/* KVM_RUN again after a signal interrupted the wait. */
static int kvmi_breakpoint_resume(struct kvm_vcpu *vcpu)
{
	struct kvmi_vcpu *kv = kvmi_vcpu_get(vcpu);
	int r;

	if (!kv || kv->pending_id != KVMI_EVENT_BREAKPOINT) {
		/* Introspection ended meanwhile: the default action. */
		kvmi_vcpu_put(kv);
		return kvmi_breakpoint_complete(vcpu, KVMI_ACTION_ALLOW, 0, 1);
	}
	WRITE_ONCE(kv->state->flags, kv->state->flags | KVMI_VCPU_WAITING);
	r = kvmi_breakpoint_wait(vcpu, kv);
	kvmi_vcpu_put(kv);
	return r;
}

/**
 * kvmi_breakpoint_event() - raise KVMI_EVENT_BREAKPOINT and wait for the reply
 * @vcpu: the vCPU, on its own thread, at its #BP intercept, RIP at the INT3
 * @insn_len: the length of the instruction (1 for INT3)
 *
 * Return: as an exit handler: 1 to resume the guest, 0 to exit to
 * userspace (CRASH, or ALLOW while the VMM debugs the guest), -EINTR for
 * a signal (the event stays pending).
 */
int kvmi_breakpoint_event(struct kvm_vcpu *vcpu, u8 insn_len)
{
	union kvmi_event_data data = {};
	struct x86_exception ex;
	struct kvmi_vcpu *kv;
	int r;

	kv = kvmi_vcpu_get(vcpu);
	if (!kv) {
		/* Detached since kvmi_breakpoint_wanted(): as if never on. */
		return kvmi_breakpoint_complete(vcpu, KVMI_ACTION_ALLOW, 0,
						insn_len);
	}

	data.breakpoint.gva = kvm_get_linear_rip(vcpu);
	data.breakpoint.gpa = kvm_mmu_gva_to_gpa_read(vcpu,
						      data.breakpoint.gva, &ex);
	data.breakpoint.insn_len = insn_len;
	kvmi_event_publish(vcpu, kv, KVMI_EVENT_BREAKPOINT, &data);
	r = kvmi_breakpoint_wait(vcpu, kv);
	kvmi_vcpu_put(kv);
	return r;
}

/*
 * Wait for the reply to the pending CR or MSR event and apply it. The
 * vCPU is inside the intercepted write: KVM completes the instruction
 * when this returns, so the wait can't be left for the VMM and resumed
 * (13.5); only a fatal signal ends it early, with the default action.
 *
 * Return: whether the write goes ahead, with *@value.
 */
static bool kvmi_write_event_wait(struct kvm_vcpu *vcpu, struct kvmi_vcpu *kv,
				  u64 *value)
{
	enum kvmi_wait_result res;
	u8 action = KVMI_ACTION_CONTINUE;
	u32 groups = 0;
	u8 reason;

	kv->killable = true;
	res = kvmi_event_wait(vcpu, kv);
	kv->killable = false;
	if (res == KVMI_WAIT_REPLY)
		reason = kvmi_reply_take(vcpu, kv, KVMI_ACTION_CONTINUE,
					 &action, &groups);
	else
		reason = kvmi_default_reason(vcpu, kv, res);
	kvmi_event_done(vcpu, kv, action, reason);

	switch (action) {
	case KVMI_ACTION_ALLOW:
		/* The same layout for both events; read from our copy. */
		if (kv->rcopy.event == KVMI_EVENT_CR)
			*value = kv->rcopy.data.cr.new_value;
		else
			*value = kv->rcopy.data.msr.new_value;
		return true;
	case KVMI_ACTION_DENY:
		return false;
	case KVMI_ACTION_CRASH:
		/* KVM moves RIP past the instruction; the crash puts it back. */
		kv->crash = true;
		kv->crash_rip = kvm_rip_read(vcpu);
		kvm_make_request(KVM_REQ_INTROSPECTION, vcpu);
		return false;
	default:
		return true;
	}
}

/**
 * kvmi_cr_write_wanted() - tell whether a CR write goes to the introspection
 * @vcpu: the vCPU
 * @cr: the control register: 0, 3 or 4
 *
 * Return: true if the tool enabled KVMI_EVENT_CR for @cr on @vcpu: the
 * vendor code intercepts its writes and kvmi_cr_write_event() handles them.
 */
bool kvmi_cr_write_wanted(struct kvm_vcpu *vcpu, u32 cr)
{
	struct kvmi_vcpu *kv;
	bool wanted;

	rcu_read_lock();
	kv = READ_ONCE(vcpu->kvmi);
	wanted = kv && test_bit(cr, &kv->cr_mask);
	rcu_read_unlock();
	return wanted;
}

/**
 * kvmi_cr_write_event() - raise KVMI_EVENT_CR and wait for the reply
 * @vcpu: the vCPU, on its own thread, about to write a control register
 * @cr: the register: 0, 3 or 4
 * @old_value: its current value
 * @value: in: the value the guest writes; out: the value to write
 *
 * Return: true if the write goes ahead with *@value, false if it doesn't
 * happen (DENY, CRASH): the caller then completes the instruction as if
 * it had.
 */
bool kvmi_cr_write_event(struct kvm_vcpu *vcpu, u32 cr, u64 old_value,
			 unsigned long *value)
{
	union kvmi_event_data data = {};
	struct kvmi_vcpu *kv;
	u64 v = *value;
	bool write;

	kv = kvmi_vcpu_get(vcpu);
	if (!kv)
		return true;

	data.cr.cr = cr;
	data.cr.old_value = old_value;
	data.cr.new_value = v;
	kvmi_event_publish(vcpu, kv, KVMI_EVENT_CR, &data);
	write = kvmi_write_event_wait(vcpu, kv, &v);
	kvmi_vcpu_put(kv);
	*value = v;
	return write;
}

/**
 * kvmi_msr_write_wanted() - tell whether an MSR write goes to the introspection
 * @vcpu: the vCPU
 * @msr: the MSR index
 *
 * Return: true if the tool enabled KVMI_EVENT_MSR for @msr on @vcpu: the
 * vendor code intercepts its writes whatever the MSR bitmaps and the
 * VMM's MSR filter say, and kvmi_msr_write_event() handles them.
 */
bool kvmi_msr_write_wanted(struct kvm_vcpu *vcpu, u32 msr)
{
	struct kvmi_vcpu *kv;
	unsigned long *map;
	bool wanted = false;
	u32 bit;

	rcu_read_lock();
	kv = READ_ONCE(vcpu->kvmi);
	if (kv) {
		map = kvmi_msr_bit(&kv->msrs, msr, &bit);
		wanted = map && test_bit(bit, map);
	}
	rcu_read_unlock();
	return wanted;
}

/**
 * kvmi_msr_write_event() - raise KVMI_EVENT_MSR and wait for the reply
 * @vcpu: the vCPU, on its own thread, at a WRMSR of the guest
 * @msr: the MSR index
 * @value: in: the value the guest writes; out: the value to write
 *
 * Return: true if the write goes ahead with *@value, false if it doesn't
 * happen (DENY, CRASH): the caller then completes the WRMSR as if it had.
 */
bool kvmi_msr_write_event(struct kvm_vcpu *vcpu, u32 msr, u64 *value)
{
	union kvmi_event_data data = {};
	struct kvmi_vcpu *kv;
	bool write;

	kv = kvmi_vcpu_get(vcpu);
	if (!kv)
		return true;

	data.msr.msr = msr;
	data.msr.old_value = kvmi_get_msr(vcpu, msr);
	data.msr.new_value = *value;
	kvmi_event_publish(vcpu, kv, KVMI_EVENT_MSR, &data);
	write = kvmi_write_event_wait(vcpu, kv, value);
	kvmi_vcpu_put(kv);
	return write;
}

/**
 * kvmi_xsetbv_wanted() - tell whether XSETBV goes to the introspection
 * @vcpu: the vCPU, on its own thread
 *
 * Return: true if the vCPU's XSETBV event is enabled.
 */
bool kvmi_xsetbv_wanted(struct kvm_vcpu *vcpu)
{
	return kvmi_event_enabled(vcpu, KVMI_EVENT_XSETBV);
}

/**
 * kvmi_xsetbv_event() - raise KVMI_EVENT_XSETBV and wait for the reply
 * @vcpu: the vCPU, on its own thread, at its XSETBV exit, CPL 0
 *
 * As for the CR and MSR events, only a fatal signal ends the wait: KVM
 * completes the instruction when this returns.
 *
 * Return: 1 to go on with the XSETBV as the registers now say, 2 to go
 * on without moving RIP past it (the reply set RIP), 0 to exit to
 * userspace (CRASH, RIP at the XSETBV).
 */
int kvmi_xsetbv_event(struct kvm_vcpu *vcpu)
{
	union kvmi_event_data data = {};
	enum kvmi_wait_result res;
	u8 action = KVMI_ACTION_CONTINUE;
	struct kvmi_vcpu *kv;
	u32 groups = 0;
	u8 reason;

	kv = kvmi_vcpu_get(vcpu);
	if (!kv)
		return 1;

	data.xsetbv.xcr = kvm_rcx_read(vcpu);
	/* XCR0 is the only one; writing another one faults. */
	data.xsetbv.old_value = data.xsetbv.xcr ? 0 : vcpu->arch.xcr0;
	data.xsetbv.new_value = kvm_read_edx_eax(vcpu);
	kvmi_event_publish(vcpu, kv, KVMI_EVENT_XSETBV, &data);

	kv->killable = true;
	res = kvmi_event_wait(vcpu, kv);
	kv->killable = false;
	if (res == KVMI_WAIT_REPLY)
		reason = kvmi_reply_take(vcpu, kv, KVMI_ACTION_CONTINUE,
					 &action, &groups);
	else
		reason = kvmi_default_reason(vcpu, kv, res);
	kvmi_event_done(vcpu, kv, action, reason);
	kvmi_vcpu_put(kv);

	if (action == KVMI_ACTION_CRASH) {
		memset(&vcpu->run->system_event, 0,
		       sizeof(vcpu->run->system_event));
		vcpu->run->exit_reason = KVM_EXIT_SYSTEM_EVENT;
		vcpu->run->system_event.type = KVM_SYSTEM_EVENT_CRASH;
		return 0;
	}
	return (groups & KVMI_REGS_RIP) ? 2 : 1;
}

/**
 * kvmi_page_fault() - raise KVMI_EVENT_PAGE_FAULT for a restricted access
 * @vcpu: the vCPU, on its own thread, in its NPT/EPT fault handler, with
 *	kvm->srcu held and no MMU lock
 * @gpa: the guest physical address accessed
 * @write: the access is a write
 * @exec: the access is an instruction fetch
 *
 * An access the restriction of the page allows is mapped as usual. One it
 * breaks is reported, if the vCPU's PAGE_FAULT event is enabled, and done
 * by emulating the instruction (CONTINUE, ALLOW, SET_CTX with the tool's
 * bytes, and when the event is disabled), or left to the guest to retry
 * (RETRY). As for the CR event,
 * only a fatal signal ends the wait. The caller must not use what it
 * looked up under kvm->srcu before the call: the wait drops it.
 *
 * Return: KVMI_PF_MAP, KVMI_PF_EMULATE or KVMI_PF_RETRY.
 */
int kvmi_page_fault(struct kvm_vcpu *vcpu, u64 gpa, bool write, bool exec)
{
	union kvmi_event_data data = {};
	u8 action = KVMI_ACTION_CONTINUE;
	enum kvmi_wait_result res;
	struct kvmi_vcpu *kv;
	u32 groups = 0;
	u8 access, reason;

	if (exec)
		access = KVMI_PAGE_ACCESS_X;
	else if (write)
		access = KVMI_PAGE_ACCESS_W;
	else
		access = KVMI_PAGE_ACCESS_R;
	if (kvmi_page_access_allowed(vcpu->kvm, gpa_to_gfn(gpa), 1) & access)
		return KVMI_PF_MAP;
	if (!kvmi_event_enabled(vcpu, KVMI_EVENT_PAGE_FAULT))
		return KVMI_PF_EMULATE;

	kv = kvmi_vcpu_get(vcpu);
	if (!kv)
		return KVMI_PF_MAP;

	data.page_fault.gpa = gpa;
	data.page_fault.access = access;
	kvmi_event_publish(vcpu, kv, KVMI_EVENT_PAGE_FAULT, &data);

	kv->killable = true;
	res = kvmi_event_wait(vcpu, kv);
	kv->killable = false;
	if (res == KVMI_WAIT_REPLY)
		reason = kvmi_reply_take(vcpu, kv, KVMI_ACTION_CONTINUE,
					 &action, &groups);
	else
		reason = kvmi_default_reason(vcpu, kv, res);
	kvmi_event_done(vcpu, kv, action, reason);

	switch (action) {
	case KVMI_ACTION_RETRY:
	case KVMI_ACTION_NOEMU:
		/* NOEMU: the reply moved RIP past the instruction. */
		kvmi_vcpu_put(kv);
		return KVMI_PF_RETRY;
	case KVMI_ACTION_EMUL_NOWRITE:
		kv->nowrite = true;
		kvmi_vcpu_put(kv);
		return KVMI_PF_EMULATE;
	case KVMI_ACTION_SET_CTX:
		kvmi_pf_ctx_set(kv, gpa, &kv->rcopy.data.page_fault);
		kvmi_vcpu_put(kv);
		return KVMI_PF_EMULATE;
	case KVMI_ACTION_CRASH:
		/* The next KVM_REQ_INTROSPECTION exits to the VMM. */
		kv->crash = true;
		kv->crash_rip = kvm_rip_read(vcpu);
		kvm_make_request(KVM_REQ_INTROSPECTION, vcpu);
		kvmi_vcpu_put(kv);
		return KVMI_PF_RETRY;
	default:
		kvmi_vcpu_put(kv);
		return KVMI_PF_EMULATE;
	}
}

/**
 * kvmi_discard_writes() - tell the emulator to drop the guest's writes
 * @vcpu: the vCPU, on its own thread, in the emulator
 *
 * Return: true while the vCPU emulates the instruction of a PAGE_FAULT
 * event answered with KVMI_ACTION_EMUL_NOWRITE.
 */
bool kvmi_discard_writes(struct kvm_vcpu *vcpu)
{
	struct kvmi_vcpu *kv;
	bool discard;

	rcu_read_lock();
	kv = READ_ONCE(vcpu->kvmi);
	discard = kv && kv->nowrite;
	rcu_read_unlock();
	return discard;
}

/**
 * kvmi_page_fault_emulated() - the instruction of a page fault is done
 * @vcpu: the vCPU, on its own thread
 *
 * Ends the effect of KVMI_ACTION_EMUL_NOWRITE and KVMI_ACTION_SET_CTX,
 * which hold for one instruction.
 */
void kvmi_page_fault_emulated(struct kvm_vcpu *vcpu)
{
	struct kvmi_vcpu *kv;

	rcu_read_lock();
	kv = READ_ONCE(vcpu->kvmi);
	if (kv) {
		kv->nowrite = false;
		kvmi_pf_ctx_clear(kv);
	}
	rcu_read_unlock();
}
