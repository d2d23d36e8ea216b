// SPDX-License-Identifier: GPL-2.0-only
/*
 * kvmi_bench: the event round trip of kvmi-ring next to what users have
 * without it, the non-blocking proof and the idle cost (issue 7).
 *
 * Built against the kernel's KVM selftest library (kvm_util, ucall) and
 * run in the L1 VM by bench/in-vm.sh. Every row runs an L2 guest loop:
 *
 *	t0 = lfence; rdtsc
 *	the trapping instruction
 *	t1 = rdtscp; lfence
 *	samples[i] = t1 - t0
 *
 * and the tool side (a thread pinned to the other L1 CPU, or the VMM
 * thread for the rows without a tool) timestamps each event with
 * CLOCK_MONOTONIC. Raw samples go to OUTDIR as text, one per line, in
 * nanoseconds; bench/report.py turns them into percentiles, histograms,
 * JSON, the table and the plots.
 *
 *	kvmi_bench [-n ITER] [-w WARMUP] [-r ROUNDS] [-R NB_ROUNDS]
 *		   [-s SECONDS] [-d HOLD_US] [-H] [-o OUTDIR] [ROW...]
 *
 * ITER events per row in all (50000), the first WARMUP of each round
 * (200) not counted, in ROUNDS rounds (10); the non-blocking proof runs
 * NB_ROUNDS rounds (3) of SECONDS seconds (3) per scenario, with a tool
 * that replies at once and one that holds each event HOLD_US (200; 0
 * leaves these scenarios out). -H backs the
 * guest's memory with hugetlbfs (2 MiB pages).
 *
 * Rows (all by default): tsc, exit_io, usfwd, socket (the HYPERCALL round
 * trip over the socket transport, the seed's model; skipped on a kernel
 * without KVMI_FEATURE_SOCKET), kvmi_block, kvmi_hybrid,
 * kvmi_poll, lib_block, lib_hybrid, lib_poll (the same HYPERCALL round
 * trip, the tool written with libkvmi's public API), kvmi_bp_block,
 * kvmi_bp_hybrid, kvmi_bp_poll (skipped on a kernel without
 * KVMI_EVENT_BREAKPOINT), exit_io_hooked, cpuid, cpuid_hooked, cr4,
 * kvmi_cr_block, kvmi_cr_hybrid, kvmi_cr_poll (the guest writes CR4 with
 * its own value, the tool answers ALLOW), msr, kvmi_msr_block,
 * kvmi_msr_hybrid, kvmi_msr_poll (WRMSR 0 to IA32_UCODE_REV, ALLOW),
 * pgwrite, kvmi_pf_block, kvmi_pf_hybrid, kvmi_pf_poll (a store to a
 * page whose write right the tool took away, PAGE_FAULT answered ALLOW;
 * skipped on a kernel without KVMI_EVENT_PAGE_FAULT), nonblock.
 * Each round
 * runs ITER/ROUNDS events of every row in turn, so that slow drifts of
 * the machine spread evenly over the rows.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <linux/sizes.h>

#include "kvm_util.h"
#include "processor.h"
#include "ucall_common.h"
#include "kvmi_util.h"

#include <kvmi/kvmi.h>	/* libkvmi, the user library (userlib/) */

/* A port no in-kernel device claims: each OUT exits to userspace. */
#define BENCH_PORT	0xe0

enum guest_kind {
	G_TSC,		/* nothing between the two TSC reads */
	G_EXIT_IO,	/* OUT to BENCH_PORT: KVM_EXIT_IO */
	G_INT3,		/* INT3: KVM_EXIT_DEBUG with KVM_GUESTDBG_USE_SW_BP */
	G_HYPERCALL,	/* VMMCALL, RAX = KVM_HC_KVMI */
	G_CPUID,	/* CPUID: handled in the kernel */
	G_CR4,		/* MOV to CR4 of its own value: intercepted by KVM */
	G_WRMSR,	/* WRMSR 0 to BENCH_MSR: intercepted, ignored */
	G_PGWRITE,	/* a store to pf_page: no exit unless restricted */
};

/*
 * IA32_UCODE_REV: KVM intercepts the guest's writes of it (no pass-through
 * on SVM or VMX) and ignores them, so the write has no effect on the guest
 * and the row measures the exit and nothing else.
 */
#define BENCH_MSR	0x8b

/*
 * The page the page-fault rows write to: a page of the guest's image of
 * its own (initialised, so in .data), at the same address in the guest
 * and in this program. The kvmi_pf rows take its write right away
 * (KVMI_IOCTL_SET_PAGE_ACCESS); the pgwrite row leaves it alone.
 */
static uint64_t pf_page[512] __attribute__((aligned(4096))) = { 1 };

/* ------------------------------------------------------------------ */
/* Guest                                                               */
/* ------------------------------------------------------------------ */

static inline uint64_t tsc_begin(void)
{
	uint32_t lo, hi;

	asm volatile("lfence; rdtsc" : "=a"(lo), "=d"(hi) :: "memory");
	return (uint64_t)hi << 32 | lo;
}

static inline uint64_t tsc_end(void)
{
	uint32_t lo, hi;

	asm volatile("rdtscp; lfence" : "=a"(lo), "=d"(hi) :: "rcx", "memory");
	return (uint64_t)hi << 32 | lo;
}

#define TIMED_LOOP(n, samples, insn) do {				\
	uint64_t _i, _t0;						\
									\
	for (_i = 0; _i < (n); _i++) {					\
		_t0 = tsc_begin();					\
		insn;							\
		(samples)[_i] = tsc_end() - _t0;			\
	}								\
} while (0)

static void guest_loop(uint64_t kind, uint64_t n, uint64_t *samples)
{
	uint32_t a, b, c, d;
	uint64_t cr4 = get_cr4();	/* outside the loop: a read exits too */

	switch (kind) {
	case G_TSC:
		TIMED_LOOP(n, samples, asm volatile("" ::: "memory"));
		break;
	case G_EXIT_IO:
		TIMED_LOOP(n, samples,
			   asm volatile("outb %%al, %%dx"
					:: "a"(0), "d"(BENCH_PORT) : "memory"));
		break;
	case G_INT3:
		TIMED_LOOP(n, samples, asm volatile("int3" ::: "memory"));
		break;
	case G_HYPERCALL:
		TIMED_LOOP(n, samples, kvm_hypercall(KVM_HC_KVMI, 0, 0, 0, 0));
		break;
	case G_CPUID:
		TIMED_LOOP(n, samples, cpuid(0, &a, &b, &c, &d));
		break;
	case G_CR4:
		TIMED_LOOP(n, samples,
			   asm volatile("mov %0, %%cr4" :: "r"(cr4) : "memory"));
		break;
	case G_WRMSR:
		TIMED_LOOP(n, samples,
			   asm volatile("wrmsr" :: "c"(BENCH_MSR), "a"(0), "d"(0)
					: "memory"));
		break;
	case G_PGWRITE:
		TIMED_LOOP(n, samples, WRITE_ONCE(pf_page[8], _i));
		break;
	}
	GUEST_DONE();
}

/* The non-blocking proof: vCPU 0 raises events, vCPU 1 counts. */
static uint64_t nb_stop;
static uint64_t nb_count;
static uint64_t nb_events;

static void guest_nonblock(uint64_t id)
{
	if (id == 1) {
		while (!READ_ONCE(nb_stop))
			WRITE_ONCE(nb_count, nb_count + 1);
	} else {
		while (!READ_ONCE(nb_stop)) {
			kvm_hypercall(KVM_HC_KVMI, 0, 0, 0, 0);
			WRITE_ONCE(nb_events, nb_events + 1);
		}
	}
	GUEST_DONE();
}

/* ------------------------------------------------------------------ */
/* Host helpers                                                        */
/* ------------------------------------------------------------------ */

static uint64_t opt_iter = 50000;
static uint64_t opt_warmup = 200;
static uint64_t opt_rounds = 10;
static uint64_t opt_nb_rounds = 3;
static double opt_seconds = 3.0;
static uint64_t opt_hold_us = 200;
static int opt_hugetlb;
static const char *opt_out = ".";
static int ncpus;
static uint32_t l2_tsc_khz;

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000000000ULL + ts.tv_nsec;
}

static void pin(int cpu)
{
	cpu_set_t set;

	if (ncpus < 2)
		return;
	CPU_ZERO(&set);
	CPU_SET(cpu % ncpus, &set);
	pthread_setaffinity_np(pthread_self(), sizeof(set), &set);
}

/* One progress line on stderr, rewritten in place; NULL ends it. */
static void progress(const char *row, uint64_t done, uint64_t total)
{
	static uint64_t last;
	uint64_t t = now_ns();

	if (!row) {
		if (last)
			fprintf(stderr, "\n");
		last = 0;
		return;
	}
	if (done != total && t - last < 500000000ULL)
		return;
	last = t;
	fprintf(stderr, "\rbench: %-16s %8lu / %lu  ", row,
		(unsigned long)done, (unsigned long)total);
}

/* Samples of one row, appended round after round. */
struct series {
	const char *name;
	uint64_t *v;
	uint64_t n, cap;
};

static void series_add(struct series *s, uint64_t x)
{
	if (s->n == s->cap) {
		s->cap = s->cap ? 2 * s->cap : 4096;
		s->v = realloc(s->v, s->cap * sizeof(*s->v));
		TEST_ASSERT(s->v, "out of memory");
	}
	s->v[s->n++] = x;
}

static void series_write(struct series *s, const char *row, const char *what)
{
	char path[512];
	FILE *f;
	uint64_t i;

	if (!s->n)
		return;
	snprintf(path, sizeof(path), "%s/%s.%s", opt_out, row, what);
	f = fopen(path, "w");
	TEST_ASSERT(f, "fopen(%s): %s", path, strerror(errno));
	for (i = 0; i < s->n; i++)
		fprintf(f, "%lu\n", (unsigned long)s->v[i]);
	fclose(f);
}

/* A row: the guest's samples and the tool side's, in ns. */
struct row {
	const char *name;
	enum guest_kind kind;
	int (*setup)(struct row *r, struct kvm_vm *vm, struct kvm_vcpu *vcpu);
	void *(*tool)(void *arg);	/* NULL: the VMM thread is the tool */
	uint16_t event;			/* KVMI_EVENT_* for the kvmi rows */
	uint32_t param;			/* its register (CR, MSR events) */
	uint8_t action;			/* the tool's reply, CONTINUE or ALLOW */
	int mode;			/* KVMI_WAIT_* for the kvmi rows */
	int hooked;			/* introspection open, nothing enabled */
	int lib;			/* the tool uses libkvmi */
	int sock;			/* the socket transport */
	int skip;			/* the kernel lacks the event */
	struct series guest, cycle, delivery;
	uint64_t events;
};

/* The VM of one round of one row. */
struct run {
	struct row *row;
	struct kvm_vm *vm;
	struct kvm_vcpu *vcpu;
	uint64_t n;		/* guest iterations, warmup included */
	uint64_t samples_gva;
	uint32_t tsc_khz;
	/* tool side */
	int stop;		/* READ_ONCE/WRITE_ONCE */
	uint64_t seen;		/* events the tool answered */
	uint64_t *cycle;	/* ns between two events, at the tool */
	uint64_t *delivery;	/* ns from publish to the tool */
	/* kvmi */
	int fd, notify, kick;
	struct kvmi_maps m;
	/* libkvmi */
	struct kvmi_dom *dom;
	struct kvmi_vcpu *lv;
	/* userspace forwarding */
	int sock[2];
	/* page-fault rows: pf_page's gpa */
	uint64_t pf_gpa;
};

static uint32_t tsc_khz_of(struct kvm_vcpu *vcpu)
{
	int r = __vcpu_ioctl(vcpu, KVM_GET_TSC_KHZ, NULL);

	TEST_ASSERT(r > 0, "KVM_GET_TSC_KHZ: %d", r);
	return r;
}

static uint64_t cycles_to_ns(uint64_t c, uint32_t khz)
{
	return (uint64_t)((double)c * 1000000.0 / khz + 0.5);
}

/*
 * Guest memory. The samples get a memslot of their own, sized for them;
 * with -H it and the selftest library's memslot 0 (code, stacks, page
 * tables) are on hugetlbfs.
 */
#define DATA_SLOT	1
#define DATA_GPA	BIT_ULL(32)
#define DATA_GVA	BIT_ULL(36)
#define HUGE_PAGES	(SZ_2M / PAGE_SIZE)	/* 4 KiB pages per 2 MiB */
#define SLOT0_PAGES	(4 * HUGE_PAGES)

static enum vm_mem_backing_src_type backing(void)
{
	return opt_hugetlb ? VM_MEM_SRC_ANONYMOUS_HUGETLB :
			     VM_MEM_SRC_ANONYMOUS;
}

/* __vm_create_with_vcpus(), with memslot 0 on hugetlbfs for -H. */
static struct kvm_vm *bench_vm_create(uint32_t nr_vcpus, uint64_t extra_pages,
				      void *guest_code,
				      struct kvm_vcpu *vcpus[])
{
	struct kvm_vm *vm;
	uint32_t i;

	if (!opt_hugetlb)
		return __vm_create_with_vcpus(VM_SHAPE_DEFAULT, nr_vcpus,
					      extra_pages, guest_code, vcpus);
	vm = ____vm_create(VM_SHAPE_DEFAULT);
	vm_userspace_mem_region_add(vm, backing(), 0, 0, SLOT0_PAGES, 0);
	for (i = 0; i < NR_MEM_REGIONS; i++)
		vm->memslots[i] = 0;
	kvm_vm_elf_load(vm, program_invocation_name);
	ucall_init(vm, SLOT0_PAGES * vm->page_size);
	guest_rng = new_guest_random_state(guest_random_seed);
	sync_global_to_guest(vm, guest_rng);
	kvm_arch_vm_post_create(vm);
	for (i = 0; i < nr_vcpus; i++)
		vcpus[i] = vm_vcpu_add(vm, i, guest_code);
	return vm;
}

/* @pages 4 KiB pages for the samples, mapped at DATA_GVA. */
static uint64_t guest_buffer(struct kvm_vm *vm, uint64_t pages)
{
	uint64_t i;

	pages = (pages + HUGE_PAGES - 1) / HUGE_PAGES * HUGE_PAGES;
	vm_userspace_mem_region_add(vm, backing(), DATA_GPA, DATA_SLOT,
				    pages, 0);
	for (i = 0; i < pages; i++)
		virt_pg_map(vm, DATA_GVA + i * PAGE_SIZE,
			    DATA_GPA + i * PAGE_SIZE);
	return DATA_GVA;
}

/* ------------------------------------------------------------------ */
/* Tools                                                               */
/* ------------------------------------------------------------------ */

static void tool_record(struct run *r, uint64_t t, uint64_t *prev,
			uint64_t published)
{
	if (r->seen < r->n) {
		r->cycle[r->seen] = *prev ? t - *prev : 0;
		r->delivery[r->seen] = published && t > published ?
				       t - published : 0;
	}
	*prev = t;
	r->seen++;
}

/*
 * Wait for a new event on vCPU 0 (T1), the tool's way for each mode:
 * POLL spins with KVMI_TOOL_POLLING; BLOCK sleeps on the notify eventfd;
 * HYBRID spins as long as the vCPU does, then sleeps (T0 before it).
 * Returns 0 if the run is over.
 */
static uint32_t tool_wait(struct run *r, uint32_t last)
{
	struct kvmi_event *ev = kvmi_event_slot(&r->m, 0);
	struct kvmi_tool_state *ts = kvmi_tool_state(&r->m, 0);
	uint64_t spin_until = 0, cnt;
	uint32_t s;

	if (r->row->mode != KVMI_WAIT_BLOCK) {
		__atomic_store_n(&ts->flags, KVMI_TOOL_POLLING,
				 __ATOMIC_RELAXED);
		if (r->row->mode == KVMI_WAIT_HYBRID)
			spin_until = now_ns() + KVMI_WAIT_DEFAULT_SPIN_NS;
	}
	for (;;) {
		s = __atomic_load_n(&ev->seq, __ATOMIC_ACQUIRE);
		if (s && s != last)
			return s;
		if (READ_ONCE(r->stop))
			return 0;
		if (r->row->mode == KVMI_WAIT_POLL ||
		    (spin_until && now_ns() < spin_until)) {
			asm volatile("pause");
			continue;
		}
		if (spin_until) {
			/* T0: stop polling, then recheck before sleeping. */
			__atomic_store_n(&ts->flags, 0, __ATOMIC_RELAXED);
			__atomic_thread_fence(__ATOMIC_SEQ_CST);
			spin_until = 0;
			continue;
		}
		if (read(r->notify, &cnt, sizeof(cnt)) != sizeof(cnt))
			TEST_FAIL("read(notify): %s", strerror(errno));
	}
}

/*
 * A CR or MSR write event (the guest's CR4 of its own value, or 0 to
 * BENCH_MSR), or a PAGE_FAULT event (the store to pf_page): check it is
 * the write the row enabled, then let it happen with ALLOW and the value
 * the guest wrote, as a tool that checked the value would (PAGE_FAULT:
 * once, the restriction stays, so the next store faults again). The
 * reply's data goes in before kvmi_send_reply() publishes the seq
 * (store-release).
 */
static void write_allow(struct run *r, const struct kvmi_event *ev)
{
	struct kvmi_reply *rp = kvmi_reply_slot(&r->m, 0);

	TEST_ASSERT(ev->id == r->row->event, "%s: event %u, not %u",
		    r->row->name, ev->id, r->row->event);
	if (ev->id == KVMI_EVENT_PAGE_FAULT) {
		TEST_ASSERT((ev->data.page_fault.gpa & ~0xfffULL) ==
			    r->pf_gpa &&
			    ev->data.page_fault.access == KVMI_PAGE_ACCESS_W,
			    "%s: access %#x to gpa %#lx", r->row->name,
			    ev->data.page_fault.access,
			    (unsigned long)ev->data.page_fault.gpa);
	} else if (ev->id == KVMI_EVENT_CR) {
		TEST_ASSERT(ev->data.cr.cr == r->row->param &&
			    ev->data.cr.new_value == ev->data.cr.old_value,
			    "%s: CR%u from %#lx to %#lx", r->row->name,
			    ev->data.cr.cr,
			    (unsigned long)ev->data.cr.old_value,
			    (unsigned long)ev->data.cr.new_value);
		rp->data.cr.new_value = ev->data.cr.new_value;
	} else {
		TEST_ASSERT(ev->data.msr.msr == r->row->param &&
			    !ev->data.msr.new_value,
			    "%s: MSR %#x to %#lx", r->row->name,
			    ev->data.msr.msr,
			    (unsigned long)ev->data.msr.new_value);
		rp->data.msr.new_value = ev->data.msr.new_value;
	}
}

/*
 * The kvmi-ring tool: copy the event with its registers (T1, as a tool
 * does; the forwarding row's tool gets the registers too), reply.
 */
static void *kvmi_tool(void *arg)
{
	struct run *r = arg;
	struct kvmi_event *ev = kvmi_event_slot(&r->m, 0);
	struct kvmi_event copy;
	uint64_t prev = 0;
	uint32_t s = 0;

	pin(1);
	while ((s = tool_wait(r, s))) {
		/*
		 * The compiler's copy, as in any tool (and libkvmi): a plain
		 * memcpy() here is the selftest library's byte loop.
		 */
		__builtin_memcpy(&copy, ev, sizeof(copy));
		__atomic_thread_fence(__ATOMIC_ACQUIRE);
		TEST_ASSERT(READ_ONCE(ev->seq) == s && copy.seq == s,
			    "event %u rewritten while copied", s);
		tool_record(r, now_ns(), &prev, copy.timestamp_ns);
		if (r->row->action == KVMI_ACTION_ALLOW)
			write_allow(r, &copy);
		/*
		 * CONTINUE: past the hypercall, or past the INT3; ALLOW: the
		 * CR or MSR write happens with the value write_allow() gave.
		 */
		kvmi_send_reply(&r->m, 0, s, r->row->event, r->row->action, 0,
				NULL, r->kick);
		progress(r->row->name, r->seen, r->n);
	}
	return NULL;
}

/* pf_page: reads and execution allowed, writes raise PAGE_FAULT. */
static void restrict_pf_page(struct run *r)
{
	struct kvmi_page_access_entry e = {
		.access = KVMI_PAGE_ACCESS_R | KVMI_PAGE_ACCESS_X,
	};
	struct kvmi_page_access pa = {
		.entries = (uintptr_t)&e,
		.count = 1,
	};

	r->pf_gpa = addr_gva2gpa(r->vm, (vm_vaddr_t)pf_page);
	e.gpa = r->pf_gpa;
	TEST_ASSERT(!ioctl(r->fd, KVMI_IOCTL_SET_PAGE_ACCESS, &pa) &&
		    pa.done == 1, "KVMI_IOCTL_SET_PAGE_ACCESS: %s",
		    strerror(errno));
}

static void kvmi_attach(struct run *r, int mode, uint16_t event,
			uint32_t param)
{
	r->fd = kvmi_open(r->vm);
	kvmi_map_all(r->fd, &r->m);
	r->notify = eventfd(0, EFD_CLOEXEC);
	r->kick = eventfd(0, EFD_CLOEXEC);
	TEST_ASSERT(r->notify >= 0 && r->kick >= 0, "eventfd");
	kvmi_set_doorbells(r->fd, KVMI_ALL_VCPUS,
			   KVMI_DOORBELL_NOTIFY | KVMI_DOORBELL_KICK,
			   r->notify, r->kick);
	kvmi_set_wait_mode(r->fd, KVMI_ALL_VCPUS, mode,
			   mode == KVMI_WAIT_HYBRID ?
			   KVMI_WAIT_DEFAULT_SPIN_NS : 0);
	if (event == KVMI_EVENT_CR || event == KVMI_EVENT_MSR)
		kvmi_control_events_param(r->fd, KVMI_ALL_VCPUS, event, 1,
					  param);
	else if (event)
		kvmi_control_events(r->fd, KVMI_ALL_VCPUS, event, 1);
	if (event == KVMI_EVENT_PAGE_FAULT)
		restrict_pf_page(r);
}

static void kvmi_detach(struct run *r)
{
	if (!r->m.vm)
		return;
	kvmi_unmap_all(&r->m);
	close(r->fd);
	close(r->notify);
	close(r->kick);
}

/*
 * The same tool written with libkvmi, the user library, and only its
 * public API: kvmi_vcpu_wait_event() waits the vCPU's way (the tool mode
 * that kvmi_dom_set_wait_mode() set with the vCPU's) and pops a copy of
 * the event, kvmi_vcpu_reply() answers it. The guest raises exactly r->n
 * events, so the tool stops after as many (it needs no stop flag, and
 * waits for ever: the poll path reads no clock).
 */
static void *lib_tool(void *arg)
{
	struct run *r = arg;
	struct kvmi_event ev;
	uint64_t prev = 0;
	int ret;

	pin(1);
	while (r->seen < r->n) {
		ret = kvmi_vcpu_wait_event(r->lv, &ev, -1);
		TEST_ASSERT(!ret, "kvmi_vcpu_wait_event: %s", strerror(-ret));
		tool_record(r, now_ns(), &prev, ev.timestamp_ns);
		ret = kvmi_vcpu_reply(r->lv, KVMI_ACTION_CONTINUE, 0, NULL,
				      NULL);
		TEST_ASSERT(!ret, "kvmi_vcpu_reply: %s", strerror(-ret));
		progress(r->row->name, r->seen, r->n);
	}
	return NULL;
}

/*
 * Setup through the library too: open and map (kvmi_dom_open()), the
 * wait mode of both sides, the event; a vCPU that may sleep gets
 * doorbells of its own now rather than at its first wait.
 */
static void lib_attach(struct run *r, int mode, uint16_t event)
{
	int ret;

	ret = kvmi_dom_open(r->vm->fd, &r->dom);
	TEST_ASSERT(!ret, "kvmi_dom_open: %s", strerror(-ret));
	ret = kvmi_dom_set_wait_mode(r->dom, KVMI_ALL_VCPUS, mode,
				     mode == KVMI_WAIT_HYBRID ?
				     KVMI_WAIT_DEFAULT_SPIN_NS : 0);
	TEST_ASSERT(!ret, "kvmi_dom_set_wait_mode: %s", strerror(-ret));
	ret = kvmi_dom_control_event(r->dom, KVMI_ALL_VCPUS, event, 1, 0);
	TEST_ASSERT(!ret, "kvmi_dom_control_event: %s", strerror(-ret));
	r->lv = kvmi_dom_vcpu(r->dom, 0);
	TEST_ASSERT(r->lv, "kvmi_dom_vcpu(0): no vCPU 0");
	if (mode != KVMI_WAIT_POLL) {
		ret = kvmi_vcpu_own_doorbell(r->lv);
		TEST_ASSERT(ret >= 0, "kvmi_vcpu_own_doorbell: %s",
			    strerror(-ret));
	}
}

static void lib_detach(struct run *r)
{
	int ret;

	if (!r->dom)
		return;
	ret = kvmi_dom_close(r->dom);
	TEST_ASSERT(!ret, "kvmi_dom_close: %s", strerror(-ret));
	r->dom = NULL;
}

/*
 * The seed's model: the socket transport (KVMI_TRANSPORT_SOCKET). Every
 * event is a KVMI_MSG_EVENT message the vCPU writes to a connected
 * AF_UNIX stream socket and every reply a KVMI_MSG_REPLY message the
 * kernel's receive thread reads; the vCPU sleeps until it comes
 * (KVMI_WAIT_BLOCK), the tool blocks in recv(). The tool reads the event
 * whole, registers included, and answers CONTINUE in one send(), as a
 * tool of that protocol does. It stops after r->n events, as lib_tool.
 */
static void sock_read(int fd, void *buf, size_t len)
{
	ssize_t got;

	while (len) {
		got = recv(fd, buf, len, MSG_WAITALL);
		TEST_ASSERT(got > 0, "recv(socket): %s",
			    got ? strerror(errno) : "end of file");
		buf = (char *)buf + got;
		len -= got;
	}
}

struct sock_reply_msg {
	struct kvmi_msg_hdr hdr;
	struct kvmi_reply reply;
} __attribute__((packed));

static void *sock_tool(void *arg)
{
	struct run *r = arg;
	struct kvmi_msg_hdr hdr;
	struct kvmi_event ev;
	struct sock_reply_msg msg;
	uint64_t prev = 0;

	pin(1);
	while (r->seen < r->n) {
		sock_read(r->sock[1], &hdr, sizeof(hdr));
		TEST_ASSERT(hdr.id == KVMI_MSG_EVENT &&
			    hdr.size == sizeof(ev) && !hdr.vcpu,
			    "socket: message %u of %u bytes for vCPU %u",
			    hdr.id, hdr.size, hdr.vcpu);
		sock_read(r->sock[1], &ev, sizeof(ev));
		tool_record(r, now_ns(), &prev, ev.timestamp_ns);
		TEST_ASSERT(ev.id == r->row->event && ev.seq == hdr.seq,
			    "socket: event %u seq %u in message seq %u",
			    ev.id, ev.seq, hdr.seq);
		memset(&msg, 0, sizeof(msg));
		msg.hdr.id = KVMI_MSG_REPLY;
		msg.hdr.size = sizeof(msg.reply);
		msg.hdr.seq = hdr.seq;
		msg.reply.seq = ev.seq;
		msg.reply.event = ev.id;
		msg.reply.action = r->row->action;
		TEST_ASSERT(send(r->sock[1], &msg, sizeof(msg), MSG_NOSIGNAL) ==
			    sizeof(msg), "send(socket): %s", strerror(errno));
		progress(r->row->name, r->seen, r->n);
	}
	return NULL;
}

static void sock_attach(struct run *r, uint16_t event)
{
	struct kvmi_open op = kvmi_open_args();

	TEST_ASSERT(!socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0,
				r->sock), "socketpair: %s", strerror(errno));
	op.transport = KVMI_TRANSPORT_SOCKET;
	op.transport_fd = r->sock[0];
	r->fd = __kvmi_open(r->vm->fd, &op);
	TEST_ASSERT(r->fd >= 0, "KVM_INTROSPECTION_OPEN(socket): %s",
		    strerror(errno));
	/* The kernel holds its own reference on its end. */
	close(r->sock[0]);
	r->sock[0] = -1;
	kvmi_set_wait_mode(r->fd, KVMI_ALL_VCPUS, KVMI_WAIT_BLOCK, 0);
	kvmi_control_events(r->fd, KVMI_ALL_VCPUS, event, 1);
}

static void sock_detach(struct run *r)
{
	close(r->fd);
	close(r->sock[1]);
}

/* Whether this kernel has the socket transport (KVMI_FEATURE_SOCKET). */
static int socket_supported(void)
{
	struct kvm_vm *vm = vm_create_barebones();
	struct kvmi_version ver = { .size = sizeof(ver) };
	int fd, r;

	__vm_vcpu_add(vm, 0);
	fd = kvmi_open(vm);
	r = ioctl(fd, KVMI_IOCTL_GET_VERSION, &ver);
	close(fd);
	kvm_vm_free(vm);
	return !r && (ver.features & KVMI_FEATURE_SOCKET);
}

/* Userspace forwarding: what the VMM thread sends the tool per event. */
struct fwd_msg {
	uint64_t seq;
	uint64_t exit_ns;	/* when KVM_RUN returned, CLOCK_MONOTONIC */
	struct kvm_regs regs;
};

struct fwd_reply {
	uint64_t seq;
	uint32_t action;	/* KVMI_ACTION_CONTINUE */
	uint32_t padding;
};

static void *fwd_tool(void *arg)
{
	struct run *r = arg;
	struct fwd_msg msg;
	struct fwd_reply rep = { .action = KVMI_ACTION_CONTINUE };
	uint64_t prev = 0;

	pin(1);
	while (recv(r->sock[1], &msg, sizeof(msg), 0) == sizeof(msg)) {
		tool_record(r, now_ns(), &prev, msg.exit_ns);
		rep.seq = msg.seq;
		if (send(r->sock[1], &rep, sizeof(rep), 0) != sizeof(rep))
			break;
		progress(r->row->name, r->seen, r->n);
	}
	return NULL;
}

/* ------------------------------------------------------------------ */
/* Rows                                                                */
/* ------------------------------------------------------------------ */

/* Run the vCPU to GUEST_DONE, forwarding INT3 and counting exits. */
static void vmm_loop(struct run *r)
{
	struct kvm_run *run = r->vcpu->run;
	struct fwd_msg msg = {};
	struct fwd_reply rep;
	uint64_t prev = 0, t;
	struct ucall uc;

	pin(0);
	for (;;) {
		vcpu_run(r->vcpu);
		t = now_ns();
		switch (run->exit_reason) {
		case KVM_EXIT_IO:
			if (run->io.port != BENCH_PORT)
				break;
			if (!r->row->tool) {
				tool_record(r, t, &prev, 0);
				progress(r->row->name, r->seen, r->n);
			}
			continue;
		case KVM_EXIT_DEBUG:
			TEST_ASSERT(run->debug.arch.exception == BP_VECTOR,
				    "debug exit, vector %u",
				    run->debug.arch.exception);
			msg.seq++;
			msg.exit_ns = t;
			vcpu_regs_get(r->vcpu, &msg.regs);
			TEST_ASSERT(send(r->sock[0], &msg, sizeof(msg), 0) ==
				    sizeof(msg), "send: %s", strerror(errno));
			TEST_ASSERT(recv(r->sock[0], &rep, sizeof(rep), 0) ==
				    sizeof(rep) && rep.seq == msg.seq,
				    "recv: %s", strerror(errno));
			msg.regs.rip += 1;	/* past the INT3 */
			vcpu_regs_set(r->vcpu, &msg.regs);
			continue;
		default:
			break;
		}
		switch (get_ucall(r->vcpu, &uc)) {
		case UCALL_DONE:
			return;
		case UCALL_ABORT:
			REPORT_GUEST_ASSERT(uc);
			return;
		default:
			TEST_FAIL("unexpected exit %u (%s)", run->exit_reason,
				  exit_reason_str(run->exit_reason));
		}
	}
}

static void run_row_round(struct row *row, uint64_t n)
{
	struct run r = { .row = row, .n = n, .fd = -1 };
	struct kvm_guest_debug dbg = {
		.control = KVM_GUESTDBG_ENABLE | KVM_GUESTDBG_USE_SW_BP,
	};
	uint64_t *samples, i, pages;
	pthread_t tool;

	pages = (n * sizeof(uint64_t) + PAGE_SIZE - 1) / PAGE_SIZE;
	r.vm = bench_vm_create(1, pages + HUGE_PAGES, guest_loop, &r.vcpu);
	r.samples_gva = guest_buffer(r.vm, pages);
	vcpu_args_set(r.vcpu, 3, (uint64_t)row->kind, n, r.samples_gva);
	r.tsc_khz = tsc_khz_of(r.vcpu);
	l2_tsc_khz = r.tsc_khz;
	r.cycle = calloc(n, sizeof(uint64_t));
	r.delivery = calloc(n, sizeof(uint64_t));
	TEST_ASSERT(r.cycle && r.delivery, "out of memory");

	if (row->lib)
		lib_attach(&r, row->mode, row->event);
	else if (row->sock)
		sock_attach(&r, row->event);
	else if (row->event)
		kvmi_attach(&r, row->mode, row->event, row->param);
	else if (row->hooked)
		kvmi_attach(&r, KVMI_WAIT_HYBRID, 0, 0);
	if (row->tool == fwd_tool) {
		vcpu_guest_debug_set(r.vcpu, &dbg);
		TEST_ASSERT(!socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC,
					0, r.sock), "socketpair");
	}
	if (row->tool)
		TEST_ASSERT(!pthread_create(&tool, NULL, row->tool, &r),
			    "pthread_create");

	vmm_loop(&r);

	if (row->tool) {
		WRITE_ONCE(r.stop, 1);
		if (row->tool == fwd_tool)
			shutdown(r.sock[0], SHUT_RDWR);
		else if (!row->lib && !row->sock) /* the others stop at n */
			TEST_ASSERT(write(r.notify, &(uint64_t){1}, 8) == 8,
				    "write(notify)");
		pthread_join(tool, NULL);
	}
	if (row->tool || row->kind == G_EXIT_IO)
		TEST_ASSERT(r.seen == n, "%s: %lu events for %lu iterations",
			    row->name, (unsigned long)r.seen,
			    (unsigned long)n);

	samples = addr_gva2hva(r.vm, r.samples_gva);
	for (i = opt_warmup; i < n; i++) {
		series_add(&row->guest, cycles_to_ns(samples[i], r.tsc_khz));
		if (r.seen > i && i > opt_warmup) {
			series_add(&row->cycle, r.cycle[i]);
			if (r.delivery[i])
				series_add(&row->delivery, r.delivery[i]);
		}
	}
	row->events += r.seen;

	if (row->tool == fwd_tool) {
		close(r.sock[0]);
		close(r.sock[1]);
	}
	if (row->sock)
		sock_detach(&r);
	lib_detach(&r);
	kvmi_detach(&r);
	free(r.cycle);
	free(r.delivery);
	kvm_vm_free(r.vm);
}

static struct row rows[] = {
	{ .name = "tsc", .kind = G_TSC },
	{ .name = "exit_io", .kind = G_EXIT_IO },
	{ .name = "usfwd", .kind = G_INT3, .tool = fwd_tool },
	/* The seed's transport: the same HYPERCALL round trip, CONTINUE. */
	{ .name = "socket", .kind = G_HYPERCALL, .tool = sock_tool,
	  .event = KVMI_EVENT_HYPERCALL, .mode = KVMI_WAIT_BLOCK, .sock = 1 },
	/* Each libkvmi row right after the raw-ABI row of its mode. */
	{ .name = "kvmi_block", .kind = G_HYPERCALL, .tool = kvmi_tool,
	  .event = KVMI_EVENT_HYPERCALL, .mode = KVMI_WAIT_BLOCK },
	{ .name = "lib_block", .kind = G_HYPERCALL, .tool = lib_tool,
	  .event = KVMI_EVENT_HYPERCALL, .mode = KVMI_WAIT_BLOCK, .lib = 1 },
	{ .name = "kvmi_hybrid", .kind = G_HYPERCALL, .tool = kvmi_tool,
	  .event = KVMI_EVENT_HYPERCALL, .mode = KVMI_WAIT_HYBRID },
	{ .name = "lib_hybrid", .kind = G_HYPERCALL, .tool = lib_tool,
	  .event = KVMI_EVENT_HYPERCALL, .mode = KVMI_WAIT_HYBRID, .lib = 1 },
	{ .name = "kvmi_poll", .kind = G_HYPERCALL, .tool = kvmi_tool,
	  .event = KVMI_EVENT_HYPERCALL, .mode = KVMI_WAIT_POLL },
	{ .name = "lib_poll", .kind = G_HYPERCALL, .tool = lib_tool,
	  .event = KVMI_EVENT_HYPERCALL, .mode = KVMI_WAIT_POLL, .lib = 1 },
	{ .name = "kvmi_bp_block", .kind = G_INT3, .tool = kvmi_tool,
	  .event = KVMI_EVENT_BREAKPOINT, .mode = KVMI_WAIT_BLOCK },
	{ .name = "kvmi_bp_hybrid", .kind = G_INT3, .tool = kvmi_tool,
	  .event = KVMI_EVENT_BREAKPOINT, .mode = KVMI_WAIT_HYBRID },
	{ .name = "kvmi_bp_poll", .kind = G_INT3, .tool = kvmi_tool,
	  .event = KVMI_EVENT_BREAKPOINT, .mode = KVMI_WAIT_POLL },
	{ .name = "exit_io_hooked", .kind = G_EXIT_IO, .hooked = 1 },
	{ .name = "cpuid", .kind = G_CPUID },
	{ .name = "cpuid_hooked", .kind = G_CPUID, .hooked = 1 },
	/*
	 * The CR and MSR write events, each after the same write with no
	 * introspection (KVM intercepts it anyway): the tool answers ALLOW.
	 */
	{ .name = "cr4", .kind = G_CR4 },
	{ .name = "kvmi_cr_block", .kind = G_CR4, .tool = kvmi_tool,
	  .event = KVMI_EVENT_CR, .param = 4, .action = KVMI_ACTION_ALLOW,
	  .mode = KVMI_WAIT_BLOCK },
	{ .name = "kvmi_cr_hybrid", .kind = G_CR4, .tool = kvmi_tool,
	  .event = KVMI_EVENT_CR, .param = 4, .action = KVMI_ACTION_ALLOW,
	  .mode = KVMI_WAIT_HYBRID },
	{ .name = "kvmi_cr_poll", .kind = G_CR4, .tool = kvmi_tool,
	  .event = KVMI_EVENT_CR, .param = 4, .action = KVMI_ACTION_ALLOW,
	  .mode = KVMI_WAIT_POLL },
	{ .name = "msr", .kind = G_WRMSR },
	{ .name = "kvmi_msr_block", .kind = G_WRMSR, .tool = kvmi_tool,
	  .event = KVMI_EVENT_MSR, .param = BENCH_MSR,
	  .action = KVMI_ACTION_ALLOW, .mode = KVMI_WAIT_BLOCK },
	{ .name = "kvmi_msr_hybrid", .kind = G_WRMSR, .tool = kvmi_tool,
	  .event = KVMI_EVENT_MSR, .param = BENCH_MSR,
	  .action = KVMI_ACTION_ALLOW, .mode = KVMI_WAIT_HYBRID },
	{ .name = "kvmi_msr_poll", .kind = G_WRMSR, .tool = kvmi_tool,
	  .event = KVMI_EVENT_MSR, .param = BENCH_MSR,
	  .action = KVMI_ACTION_ALLOW, .mode = KVMI_WAIT_POLL },
	/*
	 * A store to a page whose write right the tool took away, each one
	 * a PAGE_FAULT event answered ALLOW (the store happens, the page
	 * stays restricted), after the same store with no restriction
	 * (no exit at all).
	 */
	{ .name = "pgwrite", .kind = G_PGWRITE },
	{ .name = "kvmi_pf_block", .kind = G_PGWRITE, .tool = kvmi_tool,
	  .event = KVMI_EVENT_PAGE_FAULT, .action = KVMI_ACTION_ALLOW,
	  .mode = KVMI_WAIT_BLOCK },
	{ .name = "kvmi_pf_hybrid", .kind = G_PGWRITE, .tool = kvmi_tool,
	  .event = KVMI_EVENT_PAGE_FAULT, .action = KVMI_ACTION_ALLOW,
	  .mode = KVMI_WAIT_HYBRID },
	{ .name = "kvmi_pf_poll", .kind = G_PGWRITE, .tool = kvmi_tool,
	  .event = KVMI_EVENT_PAGE_FAULT, .action = KVMI_ACTION_ALLOW,
	  .mode = KVMI_WAIT_POLL },
};

#define NR_ROWS	ARRAY_SIZE(rows)

/* ------------------------------------------------------------------ */
/* Non-blocking proof                                                  */
/* ------------------------------------------------------------------ */

/*
 * vCPU 1 counts; vCPU 0 is idle (alone) or raises kvmi-ring events in
 * block mode, which the tool answers at once or after holding each one
 * opt_hold_us (a tool that looks at the event before it replies). The
 * pause-all emulation of the old model stops vCPU 1 for each event.
 */
struct nb_scenario {
	const char *name;
	int events;		/* vCPU 0 raises events */
	int pause_all;		/* the tool stops vCPU 1 for each event */
	int hold;		/* the tool holds each event opt_hold_us */
};

static const struct nb_scenario nb_scenarios[] = {
	{ "alone", 0, 0, 0 },
	{ "kvmi", 1, 0, 0 },
	{ "pause_all", 1, 1, 0 },
	{ "kvmi_hold", 1, 0, 1 },
	{ "pause_all_hold", 1, 1, 1 },
};

struct nb {
	struct run r;		/* vCPU 0 and the tool */
	struct kvm_vcpu *vcpu1;
	const struct nb_scenario *sc;
	pthread_t t0, t1;
	uint64_t pause_req, pause_ack, pause_release;
};

static void nb_sigusr1(int sig)
{
}

static void nb_done(struct kvm_vcpu *vcpu)
{
	struct ucall uc;

	if (get_ucall(vcpu, &uc) == UCALL_ABORT)
		REPORT_GUEST_ASSERT(uc);
	TEST_ASSERT(uc.cmd == UCALL_DONE, "vCPU %u: exit %u", vcpu->id,
		    vcpu->run->exit_reason);
}

/* vCPU 1: count; in the pause-all emulation, stop when told to. */
static void *nb_vcpu1(void *arg)
{
	struct nb *nb = arg;
	struct kvm_run *run = nb->vcpu1->run;
	uint64_t g;
	int ret;

	pin(1);
	for (;;) {
		ret = __vcpu_run(nb->vcpu1);
		if (ret == -1 && errno == EINTR) {
			/* Paused: out of KVM_RUN until released. */
			run->immediate_exit = 0;
			g = __atomic_load_n(&nb->pause_req, __ATOMIC_ACQUIRE);
			__atomic_store_n(&nb->pause_ack, g, __ATOMIC_RELEASE);
			while (__atomic_load_n(&nb->pause_release,
					       __ATOMIC_ACQUIRE) != g)
				asm volatile("pause");
			continue;
		}
		TEST_ASSERT(!ret, "KVM_RUN: %s", strerror(errno));
		nb_done(nb->vcpu1);
		return NULL;
	}
}

static void *nb_vcpu0(void *arg)
{
	struct nb *nb = arg;

	pin(0);
	vcpu_run(nb->r.vcpu);
	nb_done(nb->r.vcpu);
	return NULL;
}

/* The tool of the non-blocking proof; pause-all stops vCPU 1 first. */
static void *nb_tool(void *arg)
{
	struct nb *nb = arg;
	struct run *r = &nb->r;
	uint64_t g, until;
	uint32_t s = 0;

	pin(0);
	while ((s = tool_wait(r, s))) {
		if (nb->sc->pause_all) {
			g = nb->pause_req + 1;
			__atomic_store_n(&nb->pause_req, g, __ATOMIC_SEQ_CST);
			__atomic_store_n(&nb->vcpu1->run->immediate_exit, 1,
					 __ATOMIC_SEQ_CST);
			pthread_kill(nb->t1, SIGUSR1);
			while (__atomic_load_n(&nb->pause_ack,
					       __ATOMIC_ACQUIRE) != g) {
				if (READ_ONCE(r->stop))
					break;
				sched_yield();
			}
		}
		if (nb->sc->hold) {
			until = now_ns() + opt_hold_us * 1000;
			while (now_ns() < until && !READ_ONCE(r->stop))
				asm volatile("pause");
		}
		kvmi_send_reply(&r->m, 0, s, KVMI_EVENT_HYPERCALL,
				KVMI_ACTION_CONTINUE, 0, NULL, r->kick);
		if (nb->sc->pause_all)
			__atomic_store_n(&nb->pause_release, nb->pause_req,
					 __ATOMIC_RELEASE);
		r->seen++;
	}
	return NULL;
}

struct nb_result {
	double rate;		/* vCPU 1 iterations per second */
	double events;		/* vCPU 0 events per second */
};

static struct nb_result nb_run(const struct nb_scenario *sc)
{
	struct kvm_vcpu *vcpus[2];
	struct nb nb = { .sc = sc };
	struct nb_result res;
	uint64_t *count, *events, *stop;
	uint64_t c0, e0, t0, c1, e1, t1;
	pthread_t tool;

	nb.r.vm = bench_vm_create(2, 0, guest_nonblock, vcpus);
	nb.r.vcpu = vcpus[0];
	nb.r.row = &(struct row){ .name = "nonblock",
				  .event = KVMI_EVENT_HYPERCALL,
				  .mode = KVMI_WAIT_BLOCK };
	nb.vcpu1 = vcpus[1];
	vcpu_args_set(vcpus[0], 1, 0);
	vcpu_args_set(vcpus[1], 1, 1);
	count = addr_gva2hva(nb.r.vm, (vm_vaddr_t)&nb_count);
	events = addr_gva2hva(nb.r.vm, (vm_vaddr_t)&nb_events);
	stop = addr_gva2hva(nb.r.vm, (vm_vaddr_t)&nb_stop);
	WRITE_ONCE(*count, 0);
	WRITE_ONCE(*events, 0);
	WRITE_ONCE(*stop, 0);

	if (sc->events) {
		kvmi_attach(&nb.r, KVMI_WAIT_BLOCK, KVMI_EVENT_HYPERCALL, 0);
		TEST_ASSERT(!pthread_create(&tool, NULL, nb_tool, &nb),
			    "pthread_create");
	}
	TEST_ASSERT(!pthread_create(&nb.t1, NULL, nb_vcpu1, &nb),
		    "pthread_create");
	if (sc->events)
		TEST_ASSERT(!pthread_create(&nb.t0, NULL, nb_vcpu0, &nb),
			    "pthread_create");

	usleep(300000);		/* let both loops settle */
	c0 = READ_ONCE(*count);
	e0 = READ_ONCE(*events);
	t0 = now_ns();
	usleep((useconds_t)(opt_seconds * 1e6));
	c1 = READ_ONCE(*count);
	e1 = READ_ONCE(*events);
	t1 = now_ns();
	res.rate = (double)(c1 - c0) * 1e9 / (t1 - t0);
	res.events = (double)(e1 - e0) * 1e9 / (t1 - t0);

	WRITE_ONCE(*stop, 1);
	if (sc->events)
		pthread_join(nb.t0, NULL);
	/* A pause request still in flight is released by the tool. */
	WRITE_ONCE(nb.r.stop, 1);
	if (sc->events) {
		TEST_ASSERT(write(nb.r.notify, &(uint64_t){1}, 8) == 8,
			    "write(notify)");
		pthread_join(tool, NULL);
		__atomic_store_n(&nb.pause_release, nb.pause_req,
				 __ATOMIC_RELEASE);
	}
	pthread_join(nb.t1, NULL);
	kvmi_detach(&nb.r);
	kvm_vm_free(nb.r.vm);
	return res;
}

static void nonblock(void)
{
	struct sigaction sa = { .sa_handler = nb_sigusr1 };
	struct nb_result res;
	char path[512];
	const struct nb_scenario *sc;
	uint64_t round;
	unsigned int i;
	FILE *f;

	TEST_ASSERT(!sigaction(SIGUSR1, &sa, NULL), "sigaction");
	snprintf(path, sizeof(path), "%s/nonblock.txt", opt_out);
	f = fopen(path, "w");
	TEST_ASSERT(f, "fopen(%s): %s", path, strerror(errno));
	fprintf(f, "# scenario round vcpu1_iter_per_s vcpu0_events_per_s\n");
	for (round = 0; round < opt_nb_rounds; round++) {
		for (i = 0; i < ARRAY_SIZE(nb_scenarios); i++) {
			sc = &nb_scenarios[i];
			if (sc->hold && !opt_hold_us)
				continue;
			fprintf(stderr,
				"\rbench: nonblock %-10s round %lu / %lu  ",
				sc->name, (unsigned long)round + 1,
				(unsigned long)opt_nb_rounds);
			res = nb_run(sc);
			fprintf(f, "%s %lu %.0f %.0f\n", sc->name,
				(unsigned long)round, res.rate, res.events);
			fflush(f);
		}
	}
	fprintf(stderr, "\n");
	fclose(f);
}

/* ------------------------------------------------------------------ */

/* Whether this kernel implements @event (KVMI_IOCTL_CHECK_EVENT). */
static int event_supported(uint16_t event)
{
	struct kvmi_check chk = { .id = event };
	struct kvm_vm *vm = vm_create_barebones();
	int fd, r;

	__vm_vcpu_add(vm, 0);
	fd = kvmi_open(vm);
	r = ioctl(fd, KVMI_IOCTL_CHECK_EVENT, &chk);
	close(fd);
	kvm_vm_free(vm);
	return !r;
}

static int wanted(int argc, char **argv, const char *name)
{
	int i;

	if (optind >= argc)
		return 1;
	for (i = optind; i < argc; i++)
		if (!strcmp(argv[i], name))
			return 1;
	return 0;
}

static void usage(void)
{
	fprintf(stderr, "usage: kvmi_bench [-n ITER] [-w WARMUP] "
		"[-r ROUNDS] [-R NB_ROUNDS] [-s SECONDS] [-d HOLD_US] [-H] "
		"[-o OUTDIR] [ROW...]\n");
	exit(2);
}

int main(int argc, char **argv)
{
	char path[512];
	uint64_t round, n;
	unsigned int i;
	FILE *meta;
	int c;

	while ((c = getopt(argc, argv, "n:w:r:R:s:d:Ho:")) != -1) {
		switch (c) {
		case 'n':
			opt_iter = strtoull(optarg, NULL, 0);
			break;
		case 'w':
			opt_warmup = strtoull(optarg, NULL, 0);
			break;
		case 'r':
			opt_rounds = strtoull(optarg, NULL, 0);
			break;
		case 'R':
			opt_nb_rounds = strtoull(optarg, NULL, 0);
			break;
		case 's':
			opt_seconds = strtod(optarg, NULL);
			break;
		case 'd':
			opt_hold_us = strtoull(optarg, NULL, 0);
			break;
		case 'H':
			opt_hugetlb = 1;
			break;
		case 'o':
			opt_out = optarg;
			break;
		default:
			usage();
		}
	}
	if (!opt_rounds || opt_iter < opt_rounds)
		usage();
	ncpus = sysconf(_SC_NPROCESSORS_ONLN);
	KVMI_REQUIRE();
	mkdir(opt_out, 0755);

	for (i = 0; i < NR_ROWS; i++) {
		if (!rows[i].sock || !wanted(argc, argv, rows[i].name) ||
		    socket_supported())
			continue;
		rows[i].skip = 1;
		fprintf(stderr, "bench: %s skipped: this kernel has no socket "
			"transport (KVMI_FEATURE_SOCKET)\n", rows[i].name);
	}
	for (i = 0; i < NR_ROWS; i++) {
		if (rows[i].skip || !rows[i].event ||
		    !wanted(argc, argv, rows[i].name) ||
		    event_supported(rows[i].event))
			continue;
		rows[i].skip = 1;
		fprintf(stderr, "bench: %s skipped: this kernel has no "
			"event %u (KVMI_IOCTL_CHECK_EVENT)\n", rows[i].name,
			rows[i].event);
	}
	n = opt_iter / opt_rounds + opt_warmup;
	for (round = 0; round < opt_rounds; round++) {
		for (i = 0; i < NR_ROWS; i++) {
			if (rows[i].skip || !wanted(argc, argv, rows[i].name))
				continue;
			run_row_round(&rows[i], n);
			progress(NULL, 0, 0);
		}
	}
	for (i = 0; i < NR_ROWS; i++) {
		series_write(&rows[i].guest, rows[i].name, "guest");
		series_write(&rows[i].cycle, rows[i].name, "cycle");
		series_write(&rows[i].delivery, rows[i].name, "delivery");
	}
	if (wanted(argc, argv, "nonblock"))
		nonblock();

	snprintf(path, sizeof(path), "%s/meta.txt", opt_out);
	meta = fopen(path, "w");
	TEST_ASSERT(meta, "fopen(%s): %s", path, strerror(errno));
	fprintf(meta, "iterations=%lu\nwarmup=%lu\nrounds=%lu\n"
		"nonblock_rounds=%lu\nnonblock_seconds=%.1f\n"
		"nonblock_hold_us=%lu\nhugetlb=%d\n"
		"l1_cpus=%d\ntsc_khz=%u\n",
		(unsigned long)opt_iter, (unsigned long)opt_warmup,
		(unsigned long)opt_rounds, (unsigned long)opt_nb_rounds,
		opt_seconds, (unsigned long)opt_hold_us, opt_hugetlb, ncpus,
		l2_tsc_khz);
	fprintf(meta, "skipped=");
	for (c = 0, i = 0; i < NR_ROWS; i++)
		if (rows[i].skip)
			fprintf(meta, "%s%s", c++ ? "," : "", rows[i].name);
	fprintf(meta, "\n");
	fclose(meta);
	return 0;
}
