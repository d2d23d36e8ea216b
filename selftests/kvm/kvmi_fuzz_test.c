// SPDX-License-Identifier: GPL-2.0-only
/*
 * kvmi-ring torture: a hostile tool (Documentation/virt/kvm/kvmi-torture.rst).
 *
 * Two vCPUs raise HYPERCALL, BREAKPOINT, CR (CR4), MSR and XSETBV events in
 * a loop, and PAUSE events when the tool asks, while the tool injects
 * exceptions, replies with random values the guest survives, and writes
 * garbage into every
 * field it can write: the tool state, the reply slot (sequence numbers,
 * event ids, actions, flags, padding, register groups), the command slot
 * and the input data area. It replies twice, to the wrong vCPU, with the
 * wrong sequence number or event id, forgets to kick, never replies (the
 * VMM's deadline ends those events), changes the wait mode and the
 * doorbells, and closes and reopens the introspection with vCPUs waiting.
 *
 * Pass: both vCPUs finish (the test runs under a timeout), the guest ran
 * all along and its memory checksum is intact, and the counters account
 * for every event: in KVM's binary stats, per vCPU,
 *
 *	kvmi_events == kvmi_replies + kvmi_bad_replies + kvmi_deadlines
 *		       + kvmi_detach_releases
 *
 * (kvmi.rst, sections 10.1 and 17.2; KVMI_IOCTL_UNPAUSE, whose ends no
 * counter records, is left to kvmi_ioctl_fuzz_test), and the same without
 * the detach term in the shared counters of the last open.
 *
 *	kvmi_fuzz_test [-n EVENTS] [-s SEED] [-d DEADLINE_US]
 *
 * EVENTS (default 2000, or $KVMI_FUZZ_EVENTS) is the number of events the
 * tool sees before it turns well-behaved and lets the guest finish.
 */
#include <pthread.h>
#include <sched.h>
#include <stdlib.h>
#include <sys/eventfd.h>
#include <time.h>

#include "kvmi_util.h"
#include "processor.h"
#include "ucall_common.h"

#define NR_VCPUS	2
#define DATA_WORDS	1024		/* two pages of guest data */
#define REOPEN_EVERY	700		/* events between two reopenings */

/* Guest side. */
static uint64_t guest_data[DATA_WORDS] __aligned(4096);
static uint64_t guest_sum;
static volatile int guest_stop;
static uint64_t guest_iters[NR_VCPUS];
static uint64_t guest_bps[NR_VCPUS];
static uint64_t guest_excs;	/* exceptions but the INT3's #BP */
static uint64_t guest_faults;	/* of which #GP of the CR4/MSR/XCR0 writes */

#define FUZZ_MSR	MSR_KERNEL_GS_BASE	/* unused by the guest */

static uint64_t checksum(const uint64_t *p)
{
	uint64_t h = 0xcbf29ce484222325ULL;
	int i;

	for (i = 0; i < DATA_WORDS; i++)
		h = (h ^ p[i]) * 0x100000001b3ULL;
	return h;
}

static void guest_bp_handler(struct ex_regs *regs)
{
	guest_bps[regs->rdi & 1]++;
}

/*
 * Every other vector: the exceptions the tool injects (any vector, at the
 * instruction after an event) and the #GP of a CR4, MSR or XCR0 value a
 * reply made invalid. Return to the interrupted instruction, or past the
 * write that faulted (KVM_ASM_SAFE's fixup, done here because a handler
 * takes precedence over it).
 */
static void guest_exc_handler(struct ex_regs *regs)
{
	if (regs->r9 == KVM_EXCEPTION_MAGIC && regs->rip == regs->r10) {
		regs->rip = regs->r11;
		regs->r9 = regs->vector;
		regs->r10 = regs->error_code;
		__atomic_fetch_add(&guest_faults, 1, __ATOMIC_RELAXED);
	}
	__atomic_fetch_add(&guest_excs, 1, __ATOMIC_RELAXED);
}

/*
 * The writes that raise CR, MSR and XSETBV events. RBX and RSI are
 * clobbered, for replies that set random values in them; XSETBV takes
 * RAX, RCX and RDX back, as a reply may change its operands.
 */
static void guest_write_cr4(uint64_t id, uint64_t val)
{
	uint64_t ec;
	uint8_t v;

	asm volatile(KVM_ASM_SAFE("mov %[val], %%cr4")
		     : KVM_ASM_SAFE_OUTPUTS(v, ec)
		     : [val] "r"(val), "D"(id)
		     : KVM_ASM_SAFE_CLOBBERS, "rbx", "rsi", "memory");
}

static void guest_wrmsr(uint64_t id, uint32_t msr, uint64_t val)
{
	uint64_t ec;
	uint8_t v;

	asm volatile(KVM_ASM_SAFE("wrmsr")
		     : KVM_ASM_SAFE_OUTPUTS(v, ec)
		     : "a"((uint32_t)val), "d"(val >> 32), "c"(msr), "D"(id)
		     : KVM_ASM_SAFE_CLOBBERS, "rbx", "rsi", "memory");
}

static void guest_xsetbv(uint64_t id, uint64_t val)
{
	uint64_t rax = (uint32_t)val, rdx = val >> 32, rcx = 0, ec;
	uint8_t v;

	asm volatile(KVM_ASM_SAFE("xsetbv")
		     : KVM_ASM_SAFE_OUTPUTS(v, ec), "+a"(rax), "+d"(rdx),
		       "+c"(rcx)
		     : "D"(id)
		     : KVM_ASM_SAFE_CLOBBERS, "rbx", "rsi", "memory");
}

static uint64_t guest_xgetbv0(void)
{
	uint32_t lo, hi;

	asm volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
	return lo | (uint64_t)hi << 32;
}

static void guest_code(uint64_t id)
{
	/* For XSETBV, which the CR4 writes keep enabled. */
	uint64_t osxsave = this_cpu_has(X86_FEATURE_XSAVE) ?
			   X86_CR4_OSXSAVE : 0;

	while (!guest_stop) {
		uint64_t rax = KVM_HC_KVMI;

		asm volatile("vmmcall" : "+a"(rax) : "D"(id)
			     : "rbx", "rcx", "rdx", "rsi", "memory");
		asm volatile("int3" : : "D"(id) : "rbx", "rsi", "memory");
		guest_write_cr4(id, get_cr4() | osxsave);
		guest_wrmsr(id, FUZZ_MSR, guest_iters[id]);
		if (get_cr4() & X86_CR4_OSXSAVE)
			guest_xsetbv(id, guest_xgetbv0());
		GUEST_ASSERT_EQ(checksum(guest_data), guest_sum);
		guest_iters[id]++;
	}
	GUEST_DONE();
}

/* Host side: the vCPU threads. */
struct runner {
	struct kvm_vcpu *vcpu;
	pthread_t thread;
	uint64_t crashes;	/* KVM_EXIT_SYSTEM_EVENT(CRASH): ran again */
	bool done;
};

static void *runner_fn(void *arg)
{
	struct runner *r = arg;
	struct kvm_run *run = r->vcpu->run;
	struct ucall uc;
	int ret;

	for (;;) {
		ret = __vcpu_run(r->vcpu);
		TEST_ASSERT(!ret || errno == EINTR, "KVM_RUN: %s",
			    strerror(errno));
		if (ret)
			continue;
		if (run->exit_reason == KVM_EXIT_SYSTEM_EVENT) {
			TEST_ASSERT(run->system_event.type ==
				    KVM_SYSTEM_EVENT_CRASH,
				    "system event %u", run->system_event.type);
			r->crashes++;	/* RIP is at the instruction again */
			continue;
		}
		TEST_ASSERT(run->exit_reason == KVM_EXIT_IO,
			    "vCPU exit %s", exit_reason_str(run->exit_reason));
		switch (get_ucall(r->vcpu, &uc)) {
		case UCALL_DONE:
			__atomic_store_n(&r->done, true, __ATOMIC_RELEASE);
			return NULL;
		case UCALL_ABORT:
			REPORT_GUEST_ASSERT(uc);
			break;
		default:
			TEST_FAIL("unexpected ucall %lu", uc.cmd);
		}
	}
}

/* The tool. */
static void flip_bit(void *p, size_t n)
{
	size_t bit = rnd_below(n * 8);

	((uint8_t *)p)[bit / 8] ^= 1 << (bit % 8);
}

struct tool {
	struct kvm_vm *vm;
	int fd;
	int notify;
	int kick;
	bool kick_set;
	struct kvmi_maps m;
	uint32_t last[NR_VCPUS];	/* last event seq seen, per vCPU */
	uint32_t pending[NR_VCPUS];	/* its seq while we may reply */
	uint16_t pending_id[NR_VCPUS];
	struct kvmi_x86_regs regs[NR_VCPUS];	/* registers at that event */
	union kvmi_event_data data[NR_VCPUS];	/* and its data */
	uint64_t seen;
	uint64_t opens;
	uint64_t ops[20];
	uint64_t by_event[KVMI_EVENT_XSETBV + 1];
};

enum {
	OP_VALID, OP_VALID_REGS, OP_MUTATED, OP_RANDOM, OP_TWICE, OP_WRONG_VCPU,
	OP_WRONG_SEQ, OP_NEVER, OP_TOOL_STATE, OP_CMD, OP_DATA, OP_WAIT_MODE,
	OP_DOORBELLS, OP_PAUSE, OP_REOPEN, OP_INJECT, OP_BAD_REGS, NR_OPS
};

static const char * const op_names[NR_OPS] = {
	"valid", "valid+regs", "mutated", "random", "twice", "wrong-vcpu",
	"wrong-seq", "never", "tool-state", "command", "data", "wait-mode",
	"doorbells", "pause", "reopen", "inject", "bad-regs",
};

/*
 * The kernel may copy a slot while the tool rewrites it, so it may see
 * a mix of the old and the new bytes: every mix must be harmless. Garbage
 * never selects a command or a reply that changes the guest:
 *
 * - a command's id has a low byte that is a safe id by itself (below) and
 *   a high byte that is 0 or makes it unknown, and the register groups of
 *   its arguments always have an unknown bit (SET_REGISTERS is invalid);
 *   SET_XSAVE, CONTROL_SINGLESTEP and whatever 0x4c-0x7f becomes are
 *   never sent, INJECT_EXCEPTION only as inject() writes it (a mix with
 *   garbage is an exception the guest's handlers take, or refused);
 * - only a "primary" reply, written for the pending event of its own vCPU
 *   while nothing else in the slot matches that event, carries
 *   KVMI_REPLY_SET_REGS, with the registers of that event (mutated only
 *   in groups and padding); every other reply write leaves the register
 *   area alone and has KVMI_REPLY_SET_REGS clear.
 */
static bool cmd_id_safe(uint16_t id)
{
	switch (id) {
	case KVMI_CMD_SET_XSAVE:
	case KVMI_CMD_INJECT_EXCEPTION:
	case KVMI_CMD_CONTROL_SINGLESTEP:
		return false;
	}
	return id < KVMI_CMD_CONTROL_SINGLESTEP || id >= 0x80;
}

static void cmd_sanitize(struct kvmi_cmd *c)
{
	uint8_t lo = c->id & 0xff;

	if (!cmd_id_safe(lo))
		lo = KVMI_CMD_GET_REGISTERS;
	c->id = (c->id & 0xff00) | lo;
	c->args.set_registers.groups |= 1u << 31;
}

static uint8_t valid_action(uint16_t id)
{
	static const uint8_t bp[] = {
		KVMI_ACTION_CONTINUE, KVMI_ACTION_ALLOW, KVMI_ACTION_RETRY,
		KVMI_ACTION_CRASH,
	};
	static const uint8_t wr[] = {
		KVMI_ACTION_CONTINUE, KVMI_ACTION_ALLOW, KVMI_ACTION_ALLOW,
		KVMI_ACTION_DENY,
	};

	if (id == KVMI_EVENT_BREAKPOINT)
		return bp[rnd_below(4)];
	if ((id == KVMI_EVENT_CR || id == KVMI_EVENT_MSR) && rnd_below(8))
		return wr[rnd_below(4)];
	return rnd_below(8) ? KVMI_ACTION_CONTINUE : KVMI_ACTION_CRASH;
}

/*
 * The value ALLOW writes instead of the guest's. The guest survives
 * every value the CPU refuses (#GP, which it skips) and the ones below;
 * not any valid one (a CR4 with SMEP, a KERNEL_GS_BASE it would use):
 * the kernel does what the tool asks, so random values always have a
 * reserved bit (bit 63 of CR4), or are canonical for an MSR the guest
 * never reads.
 */
static uint64_t allow_value(uint16_t id, const union kvmi_event_data *d)
{
	uint64_t v = rnd();

	if (id == KVMI_EVENT_CR) {
		switch (rnd_below(3)) {
		case 0:
			return d->cr.new_value;
		case 1:
			return d->cr.new_value ^ X86_CR4_PGE;
		default:
			return v | 1ULL << 63;
		}
	}
	switch (rnd_below(3)) {
	case 0:
		return d->msr.new_value;
	case 1:
		return (int64_t)(v << 16) >> 16;	/* canonical */
	default:
		return v;	/* most likely not: #GP */
	}
}

/*
 * Random values in the registers the guest's asm gives up at each event
 * (RBX, RSI; RAX, RCX, RDX at a VMMCALL; XSETBV's operands): the others
 * hold what the guest's code relies on, and changing them is the tool's
 * right but would crash it, which tests nothing of the kernel.
 */
static void random_gprs(uint16_t id, struct kvmi_x86_regs *r,
			const union kvmi_event_data *d)
{
	static const uint64_t xcr0[] = { 1, 3 };	/* x87, SSE: valid */

	r->rbx = rnd();
	r->rsi = rnd();
	if (id == KVMI_EVENT_HYPERCALL) {
		r->rax = rnd();
		r->rcx = rnd();
		r->rdx = rnd();
	} else if (id == KVMI_EVENT_XSETBV) {
		uint64_t v;

		switch (rnd_below(3)) {
		case 0:
			v = d->xsetbv.old_value;
			break;
		case 1:
			v = xcr0[rnd_below(2)];
			break;
		default:
			v = rnd();
			break;
		}
		r->rax = (uint32_t)v;
		r->rdx = v >> 32;
		r->rcx = rnd_below(4) ? 0 : rnd();
	}
}

/* T3, or a kick nobody asked for, or none (the deadline ends the wait). */
static void maybe_kick(struct tool *t, uint32_t i)
{
	uint32_t kick = rnd_below(10);
	uint64_t one = 1;

	if (kick < 8)
		kvmi_kick_if_needed(&t->m, i, t->kick_set ? t->kick : -1);
	else if (kick == 8)
		TEST_ASSERT(write(t->kick, &one, 8) == 8, "kick");
}

/*
 * Publish @rp in vCPU @i's reply slot: the body, then seq (T2), then
 * maybe a kick. A primary reply (see above) is written whole; any other
 * loses KVMI_REPLY_SET_REGS and leaves the register area as it is.
 */
static void put_reply(struct tool *t, uint32_t i, struct kvmi_reply *rp,
		      bool primary)
{
	struct kvmi_reply *slot = kvmi_reply_slot(&t->m, i);
	size_t end = offsetof(struct kvmi_reply, regs);

	if (primary && slot->seq != rp->seq && rp->seq == t->pending[i])
		end = sizeof(*rp);
	else
		rp->flags &= ~KVMI_REPLY_SET_REGS;
	memcpy((uint8_t *)slot + 4, (uint8_t *)rp + 4, end - 4);
	__atomic_store_n(&slot->seq, rp->seq, __ATOMIC_RELEASE);
	maybe_kick(t, i);
}

static void valid_reply(struct tool *t, uint32_t i, struct kvmi_reply *rp,
			bool regs)
{
	memset(rp, 0, sizeof(*rp));
	rp->seq = t->pending[i];
	rp->event = t->pending_id[i];
	rp->action = valid_action(rp->event);
	if (rp->event == KVMI_EVENT_CR || rp->event == KVMI_EVENT_MSR)
		rp->data.cr.new_value = allow_value(rp->event, &t->data[i]);
	else
		rnd_bytes(&rp->data, sizeof(rp->data));	/* not read */
	if (regs) {
		rp->flags = KVMI_REPLY_SET_REGS;
		rp->regs = t->regs[i];
		rp->regs.groups = rnd() & KVMI_REGS_ALL;
		if (rnd_below(2)) {
			random_gprs(rp->event, &rp->regs, &t->data[i]);
			rp->regs.groups |= KVMI_REGS_GPRS;
		}
		if (rnd_below(8) == 0) {
			/* Values KVM refuses: an invalid reply. */
			t->ops[OP_BAD_REGS]++;
			if (rnd_below(2)) {
				rp->regs.cr4 = rnd() | 1ULL << 63;
				rp->regs.groups |= KVMI_REGS_CRS;
			} else {
				rp->regs.dr7 = rnd() | 1ULL << 40;
				rp->regs.groups |= KVMI_REGS_DRS;
			}
		}
	}
}

/*
 * Flip bits anywhere but in register values, which would be applied.
 * Returns whether the reply is still for the pending event (primary).
 */
static bool mutate_reply(struct kvmi_reply *rp)
{
	uint8_t *cr4 = (uint8_t *)&rp->data.cr.new_value;
	int n = 1 + rnd_below(4);
	bool primary = true;

	while (n--) {
		switch (rnd_below(6)) {
		case 0:
			flip_bit(&rp->seq, 4);
			primary = false;
			break;
		case 1:
			flip_bit((uint8_t *)rp + 4, 12);	/* event..padding2 */
			break;
		case 2:
			/*
			 * CR4 bits the guest can't lose (OSFXSR, PAE...) are
			 * kept: only its reserved upper half is hit.
			 */
			if (rp->event == KVMI_EVENT_CR && rnd_below(4))
				flip_bit(cr4 + 4, 4);
			else if (rp->event == KVMI_EVENT_CR)
				flip_bit(cr4 + 8, sizeof(rp->data) - 8);
			else
				flip_bit(&rp->data, sizeof(rp->data));
			break;
		case 3:
			flip_bit(&rp->regs.groups, 8);	/* groups, padding */
			break;
		case 4:
			flip_bit(&rp->regs.cs.padding +
				 rnd_below(8) * sizeof(rp->regs.cs), 1);
			break;
		default:
			flip_bit(rp->regs.reserved, sizeof(rp->regs.reserved));
			break;
		}
	}
	return primary;
}

static void answer(struct tool *t, uint32_t i)
{
	struct kvmi_reply rp;
	uint32_t op = rnd_below(100);
	uint32_t j = i ^ 1;

	if (op < 30) {
		t->ops[OP_VALID]++;
		valid_reply(t, i, &rp, false);
		put_reply(t, i, &rp, false);
	} else if (op < 40) {
		t->ops[OP_VALID_REGS]++;
		valid_reply(t, i, &rp, true);
		put_reply(t, i, &rp, true);
	} else if (op < 60) {
		t->ops[OP_MUTATED]++;
		valid_reply(t, i, &rp, rnd_below(2));
		put_reply(t, i, &rp, mutate_reply(&rp));
	} else if (op < 66) {
		t->ops[OP_RANDOM]++;
		rnd_bytes(&rp, sizeof(rp));
		if (rnd_below(2))
			rp.seq = t->pending[i];
		put_reply(t, i, &rp, false);
	} else if (op < 74) {
		t->ops[OP_TWICE]++;
		valid_reply(t, i, &rp, false);
		put_reply(t, i, &rp, false);
		if (rnd_below(2))
			mutate_reply(&rp);
		put_reply(t, i, &rp, false);
	} else if (op < 80) {
		/* Our answer to vCPU i goes to vCPU j, with j's seq or i's. */
		t->ops[OP_WRONG_VCPU]++;
		valid_reply(t, i, &rp, false);
		if (rnd_below(2) && t->pending[j])
			rp.seq = t->pending[j];
		put_reply(t, j, &rp, false);
	} else if (op < 88) {
		t->ops[OP_WRONG_SEQ]++;
		valid_reply(t, i, &rp, false);
		switch (rnd_below(4)) {
		case 0:
			rp.seq--;
			break;
		case 1:
			rp.seq++;	/* the next event's, in advance */
			break;
		case 2:
			rp.seq = 0;
			break;
		default:
			rp.seq = rnd();
			break;
		}
		put_reply(t, i, &rp, false);
	} else {
		t->ops[OP_NEVER]++;	/* the deadline ends it */
	}
}

static void fuzz_tool_state(struct tool *t, uint32_t i)
{
	struct kvmi_tool_state *ts = kvmi_tool_state(&t->m, i);

	if (rnd_below(2))
		flip_bit(ts, sizeof(*ts));
	else
		rnd_bytes(ts, sizeof(*ts));
}

static void fuzz_cmd(struct tool *t, uint32_t i)
{
	struct kvmi_cmd *slot = kvmi_cmd_slot(&t->m, i);
	struct kvmi_cmd c;
	uint32_t seq = slot->seq;

	if (rnd_below(2)) {
		memcpy(&c, slot, sizeof(c));
		flip_bit(&c, 16 + rnd_below(64));
	} else {
		rnd_bytes(&c, sizeof(c));
		if (rnd_below(2)) {
			c.flags = 0;
			c.event = kvmi_cur_event(&t->m, i);
			c.padding = 0;
		}
		if (rnd_below(2))
			c.id = KVMI_CMD_GET_REGISTERS + rnd_below(10);
		else if (rnd_below(2))
			c.id &= 0xff;
	}
	cmd_sanitize(&c);
	switch (rnd_below(4)) {
	case 0:
		c.seq = seq + 1;
		break;
	case 1:
		c.seq = rnd();
		break;
	case 2:
		c.seq = seq;	/* no new command */
		break;
	default:
		c.seq = 0;
		break;
	}
	memcpy((uint8_t *)slot + 4, (uint8_t *)&c + 4, sizeof(c) - 4);
	__atomic_store_n(&slot->seq, c.seq, __ATOMIC_RELEASE);
	if (rnd_below(2))
		kvmi_kick_if_needed(&t->m, i, t->kick_set ? t->kick : -1);
}

/*
 * A valid KVMI_CMD_INJECT_EXCEPTION, or almost: any vector (NMI's is
 * refused), with or without an error code (refused for the vectors that
 * have none), #PF with a random CR2. The guest's handlers take them all.
 */
static void inject(struct tool *t, uint32_t i)
{
	struct kvmi_cmd *slot = kvmi_cmd_slot(&t->m, i);
	struct kvmi_cmd_inject_exception *ie;
	struct kvmi_cmd c = {};

	ie = &c.args.inject_exception;
	c.id = KVMI_CMD_INJECT_EXCEPTION;
	/*
	 * Not 31: QEMU's emulation of VMRUN (our L1) refuses to inject it,
	 * the VM entry fails (kvmi-torture.rst, section 1).
	 */
	ie->vector = rnd_below(31);
	ie->flags = rnd_below(2) ? KVMI_EXCEPTION_ERROR_CODE : 0;
	ie->error_code = rnd();
	if (ie->vector == PF_VECTOR || rnd_below(16) == 0)
		ie->address = rnd();
	if (rnd_below(16) == 0)
		ie->flags = rnd();
	c.seq = slot->seq + 1;
	c.event = kvmi_cur_event(&t->m, i);
	memcpy((uint8_t *)slot + 4, (uint8_t *)&c + 4, sizeof(c) - 4);
	__atomic_store_n(&slot->seq, c.seq, __ATOMIC_RELEASE);
	kvmi_kick_if_needed(&t->m, i, t->kick_set ? t->kick : -1);
}

static void fuzz_data(struct tool *t, uint32_t i)
{
	uint8_t *data = t->m.tool + i * t->m.lo.tool_stride +
			t->m.lo.tool_off.data;
	uint32_t off = rnd_below(t->m.lo.tool_off.data_size - 64);

	rnd_bytes(data + off, 64);
}

static void configure(struct tool *t)
{
	kvmi_map_all(t->fd, &t->m);
	kvmi_set_doorbells(t->fd, KVMI_ALL_VCPUS,
			   KVMI_DOORBELL_NOTIFY | KVMI_DOORBELL_KICK,
			   t->notify, t->kick);
	t->kick_set = true;
	kvmi_control_events(t->fd, KVMI_ALL_VCPUS, KVMI_EVENT_HYPERCALL, 1);
	kvmi_control_events(t->fd, KVMI_ALL_VCPUS, KVMI_EVENT_BREAKPOINT, 1);
	kvmi_control_events_param(t->fd, KVMI_ALL_VCPUS, KVMI_EVENT_CR, 1, 4);
	kvmi_control_events_param(t->fd, KVMI_ALL_VCPUS, KVMI_EVENT_MSR, 1,
				  FUZZ_MSR);
	kvmi_control_events(t->fd, KVMI_ALL_VCPUS, KVMI_EVENT_XSETBV, 1);
	memset(t->last, 0, sizeof(t->last));
	memset(t->pending, 0, sizeof(t->pending));
	t->opens++;
}

/* Close with vCPUs (probably) waiting, then open again. */
static void reopen(struct tool *t)
{
	kvmi_unmap_all(&t->m);
	close(t->fd);
	t->fd = kvmi_open(t->vm);
	configure(t);
}

static void noise(struct tool *t)
{
	uint32_t i = rnd_below(NR_VCPUS);
	uint32_t op = rnd_below(100);
	int r;

	if (op < 20) {
		t->ops[OP_TOOL_STATE]++;
		fuzz_tool_state(t, i);
	} else if (op < 42) {
		t->ops[OP_CMD]++;
		fuzz_cmd(t, i);
	} else if (op < 50) {
		t->ops[OP_INJECT]++;
		inject(t, i);
	} else if (op < 60) {
		t->ops[OP_DATA]++;
		fuzz_data(t, i);
	} else if (op < 70) {
		t->ops[OP_WAIT_MODE]++;
		r = __kvmi_set_wait_mode(t->fd, rnd_below(3) ? i :
					 KVMI_ALL_VCPUS, rnd_below(3),
					 rnd_below(3) ? rnd_below(1000000) : 0);
		TEST_ASSERT(!r || errno == EINVAL, "SET_WAIT_MODE: %s",
			    strerror(errno));
	} else if (op < 78) {
		t->ops[OP_DOORBELLS]++;
		/* Without a kick fd the vCPU waits by polling. */
		t->kick_set = rnd_below(2);
		kvmi_set_doorbells(t->fd, KVMI_ALL_VCPUS, KVMI_DOORBELL_KICK,
				   -1, t->kick_set ? t->kick : -1);
	} else if (op < 88) {
		struct kvmi_pause_vcpu pv = { .vcpu = i };
		struct kvmi_pause_all pa = {};

		t->ops[OP_PAUSE]++;
		if (rnd_below(4))
			r = ioctl(t->fd, KVMI_IOCTL_PAUSE_VCPU, &pv);
		else
			r = ioctl(t->fd, KVMI_IOCTL_PAUSE_ALL, &pa);
		TEST_ASSERT(!r, "PAUSE: %s", strerror(errno));
	} else {
		uint64_t cnt;

		/* Drain the notify eventfd now and then. */
		r = read(t->notify, &cnt, sizeof(cnt));
		TEST_ASSERT(r == 8 || errno == EAGAIN, "read(notify)");
	}
}

/*
 * Look for a new event on vCPU @i (T1, with the seqlock re-check); take a
 * copy of its registers for the replies that set them.
 */
static bool new_event(struct tool *t, uint32_t i)
{
	struct kvmi_event *ev = kvmi_event_slot(&t->m, i);
	uint32_t s = __atomic_load_n(&ev->seq, __ATOMIC_ACQUIRE);
	uint16_t id;

	if (!s || s == t->last[i])
		return false;
	id = ev->id;
	t->regs[i] = ev->regs;
	t->data[i] = ev->data;
	__atomic_thread_fence(__ATOMIC_ACQUIRE);
	if (__atomic_load_n(&ev->seq, __ATOMIC_RELAXED) != s)
		return false;	/* rewritten meanwhile: look again */
	t->last[i] = s;
	t->pending[i] = s;
	t->pending_id[i] = id;
	t->seen++;
	if (id < ARRAY_SIZE(t->by_event))
		t->by_event[id]++;
	return true;
}

/* Good behaviour: valid replies, with kicks, until both vCPUs are done. */
static void finish(struct tool *t, struct runner *r)
{
	struct kvmi_reply rp;
	uint32_t i;

	kvmi_set_doorbells(t->fd, KVMI_ALL_VCPUS, KVMI_DOORBELL_KICK, -1,
			   t->kick);
	t->kick_set = true;
	*(volatile int *)addr_gva2hva(t->vm, (vm_vaddr_t)&guest_stop) = 1;
	for (;;) {
		bool all_done = true;

		for (i = 0; i < NR_VCPUS; i++) {
			if (new_event(t, i)) {
				struct kvmi_reply *slot;

				slot = kvmi_reply_slot(&t->m, i);
				memset(&rp, 0, sizeof(rp));
				rp.event = t->pending_id[i];
				rp.action = KVMI_ACTION_CONTINUE;
				memcpy((uint8_t *)slot + 4, (uint8_t *)&rp + 4,
				       offsetof(struct kvmi_reply, regs) - 4);
				__atomic_store_n(&slot->seq, t->pending[i],
						 __ATOMIC_RELEASE);
				kvmi_kick_if_needed(&t->m, i, t->kick);
			}
			if (!__atomic_load_n(&r[i].done, __ATOMIC_ACQUIRE))
				all_done = false;
		}
		if (all_done)
			break;
		sched_yield();
	}
}

static int set_deadline(int vm_fd, uint64_t ns)
{
	struct kvmi_deadline dl = { .reply_ns = ns };

	return ioctl(vm_fd, KVM_INTROSPECTION_SET_DEADLINE, &dl);
}

static void check_counters(struct tool *t, struct kvm_vcpu **vcpus,
			   struct runner *r)
{
	uint64_t tot_events = 0;
	uint32_t i;

	for (i = 0; i < NR_VCPUS; i++) {
		struct kvmi_vcpu_counters *c = kvmi_counters(&t->m, i);
		uint64_t ev = kvmi_vcpu_stat(vcpus[i], "kvmi_events");
		uint64_t rep = kvmi_vcpu_stat(vcpus[i], "kvmi_replies");
		uint64_t bad = kvmi_vcpu_stat(vcpus[i], "kvmi_bad_replies");
		uint64_t dl = kvmi_vcpu_stat(vcpus[i], "kvmi_deadlines");
		uint64_t det = kvmi_vcpu_stat(vcpus[i], "kvmi_detach_releases");
		uint64_t cmds = kvmi_vcpu_stat(vcpus[i], "kvmi_commands");
		uint64_t cerr = kvmi_vcpu_stat(vcpus[i], "kvmi_command_errors");

		ksft_print_msg("vCPU %u: %lu events = %lu replies + %lu bad + %lu deadlines + %lu detach; %lu commands (%lu failed), %lu crashes, %lu iterations, %lu #BP in guest\n",
			       i, ev, rep, bad, dl, det, cmds, cerr,
			       r[i].crashes, guest_iters[i], guest_bps[i]);
		TEST_ASSERT(ev == rep + bad + dl + det,
			    "vCPU %u: events not accounted for: %lu != %lu + %lu + %lu + %lu",
			    i, ev, rep, bad, dl, det);
		TEST_ASSERT(c->events == c->replies + c->bad_replies +
			    c->deadlines,
			    "vCPU %u: shared counters: %llu != %llu + %llu + %llu",
			    i, c->events, c->replies, c->bad_replies,
			    c->deadlines);
		TEST_ASSERT(cerr <= cmds, "command errors > commands");
		TEST_ASSERT(guest_iters[i] > 0, "vCPU %u never looped", i);
		tot_events += ev;
	}
	TEST_ASSERT(tot_events >= t->seen, "the tool saw %lu events of %lu",
		    t->seen, tot_events);
}

int main(int argc, char *argv[])
{
	struct kvm_vcpu *vcpus[NR_VCPUS];
	struct runner r[NR_VCPUS] = {};
	uint64_t deadline_us = 5000, seed = time(NULL), target = 2000;
	const char *env = getenv("KVMI_FUZZ_EVENTS");
	struct tool t = {};
	uint64_t *data;
	uint32_t i;
	int opt;

	if (env)
		target = strtoull(env, NULL, 0);
	while ((opt = getopt(argc, argv, "n:s:d:")) != -1) {
		switch (opt) {
		case 'n':
			target = strtoull(optarg, NULL, 0);
			break;
		case 's':
			seed = strtoull(optarg, NULL, 0);
			break;
		case 'd':
			deadline_us = strtoull(optarg, NULL, 0);
			break;
		default:
			fprintf(stderr,
				"usage: %s [-n EVENTS] [-s SEED] [-d DEADLINE_US]\n",
				argv[0]);
			exit(KSFT_FAIL);
		}
	}
	ksft_print_header();
	KVMI_REQUIRE();
	TEST_REQUIRE(deadline_us > 0);
	ksft_set_plan(1);
	ksft_print_msg("seed %lu, %lu events, deadline %lu us\n", seed,
		       target, deadline_us);
	rng_state = seed | 1;

	t.vm = vm_create_with_vcpus(NR_VCPUS, guest_code, vcpus);
	for (i = 0; i < 32; i++)
		vm_install_exception_handler(t.vm, i, i == BP_VECTOR ?
					     guest_bp_handler :
					     guest_exc_handler);
	data = addr_gva2hva(t.vm, (vm_vaddr_t)guest_data);
	rnd_bytes(data, sizeof(guest_data));
	guest_sum = checksum(data);
	sync_global_to_guest(t.vm, guest_sum);
	for (i = 0; i < NR_VCPUS; i++)
		vcpu_args_set(vcpus[i], 1, i);

	TEST_ASSERT(!set_deadline(t.vm->fd, deadline_us * 1000),
		    "SET_DEADLINE: %s", strerror(errno));
	t.notify = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	t.kick = eventfd(0, EFD_CLOEXEC);
	TEST_ASSERT(t.notify >= 0 && t.kick >= 0, "eventfd");
	t.fd = kvmi_open(t.vm);
	configure(&t);

	for (i = 0; i < NR_VCPUS; i++) {
		r[i].vcpu = vcpus[i];
		pthread_create(&r[i].thread, NULL, runner_fn, &r[i]);
	}

	while (t.seen < target) {
		uint64_t before = t.seen;

		for (i = 0; i < NR_VCPUS; i++)
			if (new_event(&t, i))
				answer(&t, i);
		if (rnd_below(4) == 0)
			noise(&t);
		if (before / REOPEN_EVERY != t.seen / REOPEN_EVERY) {
			t.ops[OP_REOPEN]++;
			reopen(&t);
		}
		sched_yield();
	}

	finish(&t, r);
	for (i = 0; i < NR_VCPUS; i++)
		pthread_join(r[i].thread, NULL);

	TEST_ASSERT(checksum(data) == guest_sum,
		    "guest memory checksum changed");
	sync_global_from_guest(t.vm, guest_iters);
	sync_global_from_guest(t.vm, guest_bps);
	sync_global_from_guest(t.vm, guest_excs);
	sync_global_from_guest(t.vm, guest_faults);
	for (i = 0; i < NR_OPS; i++)
		ksft_print_msg("%-10s %lu\n", op_names[i], t.ops[i]);
	ksft_print_msg("%lu events seen by the tool, %lu opens\n", t.seen,
		       t.opens);
	ksft_print_msg("by event: %lu hypercall, %lu breakpoint, %lu pause, %lu cr, %lu msr, %lu xsetbv\n",
		       t.by_event[KVMI_EVENT_HYPERCALL],
		       t.by_event[KVMI_EVENT_BREAKPOINT],
		       t.by_event[KVMI_EVENT_PAUSE], t.by_event[KVMI_EVENT_CR],
		       t.by_event[KVMI_EVENT_MSR], t.by_event[KVMI_EVENT_XSETBV]);
	ksft_print_msg("guest: %lu exceptions taken, %lu of them faulting writes skipped\n",
		       guest_excs, guest_faults);
	check_counters(&t, vcpus, r);

	kvmi_unmap_all(&t.m);
	close(t.fd);
	close(t.notify);
	close(t.kick);
	kvm_vm_free(t.vm);
	ksft_test_result_pass("hostile tool: %lu events\n", t.seen);
	ksft_finished();
}
