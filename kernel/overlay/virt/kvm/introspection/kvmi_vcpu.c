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
#include <linux/sched/signal.h>
#include <linux/timekeeping.h>

#include "kvm_cache_regs.h"
#include "x86.h"
#include "kvmi_int.h"

/* The length of VMCALL and VMMCALL. */
#define KVMI_HYPERCALL_INSN_LEN	3

/* The register groups a reply may write in this version of the code. */
#define KVMI_REGS_SETTABLE	(KVMI_REGS_GPRS | KVMI_REGS_RIP)

static_assert(sizeof(struct kvmi_x86_regs) == 640);
static_assert(sizeof(struct kvmi_event) == 728);
static_assert(sizeof(struct kvmi_reply) == 736);

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
	init_waitqueue_head(&kv->wq);
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
 * Publish event @id with @data on the vCPU's slot (K0, K1), then ring
 * the notify eventfd unless the tool polls (K2).
 */
static void kvmi_event_publish(struct kvm_vcpu *vcpu, struct kvmi_vcpu *kv,
			       u16 id, const union kvmi_event_data *data)
{
	struct kvmi_vcpu_state *vs = kv->state;
	struct kvmi_event *ev = kv->event;
	u32 s = kv->seq + 1;

	if (!s)
		s = 1;		/* 0 is never an event */
	kv->seq = s;
	kv->pending_seq = s;
	kv->pending_id = id;

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

	/* K1: pairs with the tool's load-acquire of ev->seq (T1). */
	smp_store_release(&ev->seq, s);
	kvmi_count(&kv->counters->events);
	WRITE_ONCE(vs->flags, vs->flags | KVMI_VCPU_WAITING);

	/*
	 * K2: the event is published before the tool's flag is read; pairs
	 * with the tool's smp_mb() between clearing POLLING and re-reading
	 * ev->seq (T0). Either it sees the event or we see it sleeps.
	 */
	smp_mb();
	if (READ_ONCE(kv->tstate->flags) & KVMI_TOOL_POLLING)
		kvmi_count(&kv->counters->notify_suppressed);
	else if (kvmi_notify(kv))
		kvmi_count(&kv->counters->notify_signals);
}

/* K3: the reply to the pending event is published. */
static bool kvmi_reply_seen(struct kvmi_vcpu *kv)
{
	/* Pairs with the tool's store-release of rp->seq (T2). */
	return smp_load_acquire(&kv->reply->seq) == kv->pending_seq;
}

static bool kvmi_vcpu_has_kick(struct kvmi_vcpu *kv)
{
	return READ_ONCE(kv->kick) || READ_ONCE(kv->kvmi->kick);
}

/* Why a sleeping vCPU wakes up (besides a signal). */
static bool kvmi_wait_over(struct kvmi_vcpu *kv, u32 gen)
{
	return kvmi_reply_seen(kv) || kvmi_is_detached(kv->kvmi) ||
	       READ_ONCE(kv->wait_gen) != gen;
}

enum kvmi_wait_result {
	KVMI_WAIT_REPLY,	/* the reply is there */
	KVMI_WAIT_DETACHED,	/* introspection ended */
	KVMI_WAIT_SIGNAL,	/* a signal is pending */
	KVMI_WAIT_AGAIN,	/* doorbells or wait mode changed */
	KVMI_WAIT_SLEEP,	/* the spin budget is spent */
};

static enum kvmi_wait_result kvmi_spin(struct kvmi_vcpu *kv, u32 mode,
				       u64 spin_ns, u32 gen)
{
	u64 start = ktime_get_ns();

	for (;;) {
		if (kvmi_reply_seen(kv)) {
			kvmi_count(&kv->counters->spin_hits);
			return KVMI_WAIT_REPLY;
		}
		if (kvmi_is_detached(kv->kvmi))
			return KVMI_WAIT_DETACHED;
		if (signal_pending(current))
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

static enum kvmi_wait_result kvmi_sleep(struct kvmi_vcpu *kv, u32 gen)
{
	struct kvmi_vcpu_state *vs = kv->state;
	enum kvmi_wait_result res = KVMI_WAIT_AGAIN;

	WRITE_ONCE(vs->flags, vs->flags | KVMI_VCPU_NEED_KICK);
	/*
	 * K6: NEED_KICK is set before the reply is re-read; pairs with the
	 * tool's smp_mb() between publishing its reply and reading NEED_KICK
	 * (T3). Either it kicks or we see the reply.
	 */
	smp_mb();
	if (!kvmi_wait_over(kv, gen)) {
		kvmi_count(&kv->counters->sleeps);
		if (wait_event_interruptible(kv->wq, kvmi_wait_over(kv, gen)))
			res = KVMI_WAIT_SIGNAL;
		if (atomic_xchg(&kv->kicked, 0))
			kvmi_count(&kv->counters->kicks);
	}
	WRITE_ONCE(vs->flags, vs->flags & ~KVMI_VCPU_NEED_KICK);
	return res;
}

/*
 * Wait for the reply to the pending event, as the wait mode says. Called
 * with kvm->srcu held; drops it meanwhile, so that a waiting vCPU never
 * holds up memslot changes.
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
		if (!kvmi_vcpu_has_kick(kv))
			mode = KVMI_WAIT_POLL;

		res = kvmi_spin(kv, mode, spin_ns, gen);
		if (res == KVMI_WAIT_SLEEP)
			res = kvmi_sleep(kv, gen);
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
	case KVMI_EVENT_HYPERCALL:
		return action == KVMI_ACTION_CONTINUE ||
		       action == KVMI_ACTION_CRASH;
	default:
		return false;
	}
}

static bool kvmi_segment_padding(const struct kvmi_x86_regs *r)
{
	return r->cs.padding || r->ds.padding || r->es.padding ||
	       r->fs.padding || r->gs.padding || r->ss.padding ||
	       r->tr.padding || r->ldt.padding;
}

static bool kvmi_regs_valid(struct kvm_vcpu *vcpu,
			    const struct kvmi_x86_regs *r)
{
	if (r->padding || (r->groups & ~KVMI_REGS_SETTABLE))
		return false;
	if (kvmi_segment_padding(r))
		return false;
	if ((r->groups & KVMI_REGS_RIP) && is_64_bit_mode(vcpu) &&
	    is_noncanonical_address(r->rip, vcpu, 0))
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
	if (rp->flags & ~KVMI_REPLY_SET_REGS)
		return false;
	if (!kvmi_action_valid(kv->pending_id, rp->action))
		return false;
	if (rp->flags & KVMI_REPLY_SET_REGS)
		return kvmi_regs_valid(vcpu, &rp->regs);
	return true;
}

static void kvmi_set_regs(struct kvm_vcpu *vcpu, const struct kvmi_x86_regs *r)
{
	if (r->groups & KVMI_REGS_GPRS) {
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
	if (r->groups & KVMI_REGS_RIP)
		kvm_rip_write(vcpu, r->rip);
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

	/* Ordered after the load-acquire of rp->seq (K3). */
	memcpy(rp, kv->reply, sizeof(*rp));

	if (!kvmi_reply_valid(vcpu, kv, rp)) {
		kvmi_count(&kv->counters->bad_replies);
		*action = default_action;
		*groups = 0;
		return KVMI_DONE_BAD_REPLY;
	}
	*groups = 0;
	if (rp->flags & KVMI_REPLY_SET_REGS) {
		kvmi_set_regs(vcpu, &rp->regs);
		*groups = rp->regs.groups;
	}
	*action = rp->action;
	kvmi_count(&kv->counters->replies);
	return KVMI_DONE_REPLY;
}

/* K7: the event is finished. */
static void kvmi_event_done(struct kvmi_vcpu *kv, u8 action, u8 reason)
{
	struct kvmi_vcpu_state *vs = kv->state;

	WRITE_ONCE(vs->done_action, action);
	WRITE_ONCE(vs->done_reason, reason);
	/* Pairs with the tool's load-acquire of done_seq (T7). */
	smp_store_release(&vs->done_seq, kv->pending_seq);
	WRITE_ONCE(vs->flags, vs->flags & ~KVMI_VCPU_WAITING);
	kv->pending_id = 0;
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
	u8 action = KVMI_ACTION_CONTINUE;
	u32 groups = 0;
	u8 reason;

	switch (kvmi_event_wait(vcpu, kv)) {
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
		reason = KVMI_DONE_DETACH;
		break;
	}
	kvmi_event_done(kv, action, reason);
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
	struct kvmi_vcpu *kv;
	bool wanted;

	if (!op_64_bit)
		nr = (u32)nr;
	if (nr != KVM_HC_KVMI || cpl)
		return false;

	rcu_read_lock();
	kv = READ_ONCE(vcpu->kvmi);
	wanted = kv && test_bit(KVMI_EVENT_HYPERCALL, &kv->events);
	rcu_read_unlock();
	return wanted;
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
