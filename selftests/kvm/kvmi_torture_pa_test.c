// SPDX-License-Identifier: GPL-2.0-only
/*
 * kvmi-ring torture: page access restrictions and zero-copy mappings
 * (Documentation/virt/kvm/kvmi-torture.rst, section 4).
 *
 * random_access: random restrictions set on random pages of a test area
 * while two vCPUs write to, read and execute from those pages; the tool
 * answers their PAGE_FAULT events at random (ALLOW, CONTINUE, RETRY,
 * NOEMU, EMUL_NOWRITE, invalid replies, stale replies, no reply at all)
 * and maps and reads the pages through a map window meanwhile.
 *
 * tool_killed: a tool process with pages mapped through its map window,
 * restrictions set and a vCPU waiting in a PAGE_FAULT event is
 * SIGKILLed; every restriction goes with it and the guest goes on.
 *
 * memslot_changed: the test area's memslot is deleted (and added again)
 * or moved under live mappings and restrictions, while a second thread
 * restricts and maps its pages: the mappings end (SIGBUS), the guest
 * keeps running, and the restrictions stay with their guest physical
 * pages, as kvmi.rst (7.12) says.
 *
 *	kvmi_torture_pa_test [-n EVENTS] [-k KILLS] [-r ROUNDS] [-s SEED]
 *
 * EVENTS: 3000 by default, or $KVMI_TORTURE_PA_EVENTS; KILLS: 10, or
 * $KVMI_TORTURE_PA_KILLS; ROUNDS: 10, or $KVMI_TORTURE_SLOT_ROUNDS.
 */
#include <poll.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/eventfd.h>
#include <sys/wait.h>
#include <time.h>

#include "kvmi_util.h"
#include "processor.h"
#include "ucall_common.h"

#define NR_VCPUS	2
#define AREA_PAGES	16
#define AREA_SLOT	10
#define GPA_A		0x10000000ULL	/* where the area's memslot may be */
#define GPA_B		0x20000000ULL	/* and where it moves to */
#define WORD_OFF	2048		/* vCPU i's word: WORD_OFF + 8 * i */
#define WIN_PAGES	(2 * AREA_PAGES)
#define DEADLINE_NS	100000000ULL	/* 100 ms */

#define R	KVMI_PAGE_ACCESS_R
#define W	KVMI_PAGE_ACCESS_W
#define X	KVMI_PAGE_ACCESS_X
#define RWX	(R | W | X)

/* mov $0x42, %eax; ret: at offset 0 of every page of the area. */
static const uint8_t code[] = { 0xb8, 0x42, 0x00, 0x00, 0x00, 0xc3 };

static const uint8_t accesses[] = { R, R | W, R | X, RWX };

/*
 * What the test tells the guest, and what the guest reports. The guest
 * touches the area at @base (a gva; 0: not at all); @gen orders the
 * test's changes of @base with the vCPUs' acknowledgements.
 */
struct guest_ctl {
	uint64_t base;
	uint64_t gen;
	uint64_t random;	/* pages at random, else in turn */
	uint64_t stop;
	uint64_t ack[NR_VCPUS];
	uint64_t iters[NR_VCPUS];
	uint64_t last[NR_VCPUS][AREA_PAGES];	/* last value written */
};

static struct guest_ctl ctl;

static void guest_code(uint64_t id)
{
	uint64_t x = 0x9e3779b97f4a7c15ULL * (id + 1), v = 0, p = 0;

	while (!READ_ONCE(ctl.stop)) {
		uint64_t gen = READ_ONCE(ctl.gen);
		uint64_t base = READ_ONCE(ctl.base);

		if (base) {
			uint64_t (*fn)(void);
			volatile uint64_t *w;

			if (READ_ONCE(ctl.random)) {
				x ^= x << 13;
				x ^= x >> 7;
				x ^= x << 17;
				p = x % AREA_PAGES;
			} else {
				p = (p + 1) % AREA_PAGES;
			}
			fn = (void *)(base + p * PAGE_SIZE);
			GUEST_ASSERT_EQ(fn(), 0x42);
			w = (void *)(base + p * PAGE_SIZE + WORD_OFF + id * 8);
			v++;
			/* EMUL_NOWRITE drops a write: do it again. */
			do {
				*w = v;
			} while (*w != v);
			WRITE_ONCE(ctl.last[id][p], v);
		}
		WRITE_ONCE(ctl.ack[id], gen);
		WRITE_ONCE(ctl.iters[id], ctl.iters[id] + 1);
	}
	GUEST_DONE();
}

struct runner {
	struct kvm_vcpu *vcpu;
	pthread_t thread;
	bool stop;
	bool done;
};

static void *runner_fn(void *arg)
{
	struct runner *r = arg;
	struct kvm_run *run = r->vcpu->run;
	struct ucall uc;

	while (!__atomic_load_n(&r->stop, __ATOMIC_ACQUIRE)) {
		if (__vcpu_run(r->vcpu)) {
			TEST_ASSERT(errno == EINTR, "KVM_RUN: %s",
				    strerror(errno));
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
	return NULL;
}

static struct guest_ctl *ctl_of(struct kvm_vm *vm)
{
	return addr_gva2hva(vm, (vm_vaddr_t)&ctl);
}

/* The VM: two vCPUs, the area at @gpa (shmem), mapped at gva GPA_A and GPA_B. */
static struct kvm_vm *create_vm(struct kvm_vcpu **vcpus, uint64_t gpa,
				bool random)
{
	struct kvm_vm *vm = vm_create_with_vcpus(NR_VCPUS, guest_code, vcpus);
	uint32_t i;

	vm_userspace_mem_region_add(vm, VM_MEM_SRC_SHMEM, gpa, AREA_SLOT,
				    AREA_PAGES, 0);
	virt_map(vm, GPA_A, GPA_A, AREA_PAGES);
	virt_map(vm, GPA_B, GPA_B, AREA_PAGES);
	for (i = 0; i < AREA_PAGES; i++)
		memcpy(addr_gpa2hva(vm, gpa + i * PAGE_SIZE), code,
		       sizeof(code));
	for (i = 0; i < NR_VCPUS; i++)
		vcpu_args_set(vcpus[i], 1, i);
	ctl_of(vm)->random = random;
	return vm;
}

static void start_runners(struct kvm_vcpu **vcpus, struct runner *r)
{
	uint32_t i;

	for (i = 0; i < NR_VCPUS; i++) {
		memset(&r[i], 0, sizeof(r[i]));
		r[i].vcpu = vcpus[i];
		TEST_ASSERT(!pthread_create(&r[i].thread, NULL, runner_fn,
					    &r[i]), "pthread_create");
	}
}

/* Tell the guest to stop, wait for both vCPUs' GUEST_DONE. */
static void join_runners(struct kvm_vm *vm, struct runner *r)
{
	uint32_t i;

	WRITE_ONCE(ctl_of(vm)->stop, 1);
	for (i = 0; i < NR_VCPUS; i++) {
		pthread_join(r[i].thread, NULL);
		TEST_ASSERT(r[i].done, "vCPU %u did not finish", i);
	}
}

static uint64_t iters(struct kvm_vm *vm, uint32_t i)
{
	return READ_ONCE(ctl_of(vm)->iters[i]);
}

/*
 * Set the guest's @base and wait until both vCPUs have seen it, then
 * (if @more) until each has gone @more times more round its loop.
 */
static void set_base(struct kvm_vm *vm, uint64_t base, uint64_t more)
{
	struct guest_ctl *c = ctl_of(vm);
	uint64_t gen = c->gen + 1, start[NR_VCPUS];
	uint32_t i;

	WRITE_ONCE(c->base, base);
	__atomic_store_n(&c->gen, gen, __ATOMIC_RELEASE);
	for (i = 0; i < NR_VCPUS; i++) {
		while (__atomic_load_n(&c->ack[i], __ATOMIC_ACQUIRE) != gen)
			usleep(100);
		start[i] = iters(vm, i);
	}
	for (i = 0; i < NR_VCPUS; i++)
		while (iters(vm, i) < start[i] + more)
			usleep(100);
}

/* Each vCPU's word in each page is the last value it wrote there. */
static void check_words(struct kvm_vm *vm, uint64_t gpa)
{
	struct guest_ctl *c = ctl_of(vm);
	uint32_t i, p;

	for (p = 0; p < AREA_PAGES; p++) {
		uint8_t *page = addr_gpa2hva(vm, gpa + p * PAGE_SIZE);

		TEST_ASSERT(!memcmp(page, code, sizeof(code)),
			    "page %u: code changed", p);
		for (i = 0; i < NR_VCPUS; i++)
			TEST_ASSERT(*(uint64_t *)(page + WORD_OFF + i * 8) ==
				    c->last[i][p],
				    "page %u, vCPU %u: 0x%lx, last write 0x%lx",
				    p, i,
				    *(uint64_t *)(page + WORD_OFF + i * 8),
				    c->last[i][p]);
	}
}

static int page_access(int fd, bool set, struct kvmi_page_access_entry *e,
		       uint32_t count, uint32_t *done)
{
	struct kvmi_page_access pa = {
		.entries = (uintptr_t)e,
		.count = count,
	};
	int r;

	r = ioctl(fd, set ? KVMI_IOCTL_SET_PAGE_ACCESS :
			    KVMI_IOCTL_GET_PAGE_ACCESS, &pa);
	if (done)
		*done = pa.done;
	return r ? -errno : 0;
}

/* Restrict page @p of the area at @gpa to @access; 0 or -errno. */
static int set_access(int fd, uint64_t gpa, uint32_t p, uint8_t access)
{
	struct kvmi_page_access_entry e = {
		.gpa = gpa + p * PAGE_SIZE,
		.access = access,
	};

	return page_access(fd, true, &e, 1, NULL);
}

/* GET_PAGE_ACCESS of every page of the area at @gpa equals @model. */
static void check_access(int fd, uint64_t gpa, const uint8_t *model)
{
	struct kvmi_page_access_entry e[AREA_PAGES] = {};
	uint32_t p, done;

	for (p = 0; p < AREA_PAGES; p++)
		e[p].gpa = gpa + p * PAGE_SIZE;
	TEST_ASSERT(!page_access(fd, false, e, AREA_PAGES, &done) &&
		    done == AREA_PAGES, "GET_PAGE_ACCESS");
	for (p = 0; p < AREA_PAGES; p++)
		TEST_ASSERT(e[p].access == model[p],
			    "page 0x%lx: access %u, set %u",
			    gpa + p * PAGE_SIZE, e[p].access, model[p]);
}

static int sva_map(int fd, uint64_t gpa, void *addr, uint32_t flags)
{
	struct kvmi_sva_entry e = {
		.gpa = gpa,
		.address = (uintptr_t)addr,
		.flags = flags,
	};
	struct kvmi_sva_batch b = {
		.entries = (uintptr_t)&e,
		.count = 1,
	};

	return ioctl(fd, KVMI_IOCTL_MAP_PHYSICAL_PAGE_TO_SVA, &b) ? -errno : 0;
}

static void *map_window(int fd)
{
	struct kvmi_version ver;
	struct kvmi_layout lo;
	void *win;

	kvmi_get_version(fd, &ver);
	TEST_REQUIRE(ver.features & KVMI_FEATURE_SVA);
	TEST_REQUIRE(ver.features & KVMI_FEATURE_PF_EMULATION);
	kvmi_get_layout(fd, &lo);
	win = mmap(NULL, WIN_PAGES * PAGE_SIZE, PROT_READ | PROT_WRITE,
		   MAP_SHARED, fd, lo.sva_offset);
	TEST_ASSERT(win != MAP_FAILED, "mmap of a map window: %s",
		    strerror(errno));
	return win;
}

static __thread sigjmp_buf sigbus_jmp;

static void sigbus_handler(int sig)
{
	siglongjmp(sigbus_jmp, 1);
}

/* Copy @n bytes from @src, a window address; false on SIGBUS. */
static bool window_read(void *dst, const void *src, size_t n)
{
	if (sigsetjmp(sigbus_jmp, 1))
		return false;
	memcpy(dst, src, n);
	return true;
}

/* How the tool answers an event. */
enum {
	A_ALLOW, A_CONTINUE, A_RETRY, A_NOEMU, A_NOWRITE,
	A_GARBAGE, A_BAD_ACTION, A_MOVE_RIP, A_STALE, A_NONE,
	NR_ANSWERS
};

static const char * const answer_names[NR_ANSWERS] = {
	"allow", "continue", "retry", "noemu", "emul_nowrite",
	"garbage", "bad_action", "allow_moving_rip", "stale_then_allow",
	"none",
};

struct handler {
	struct kvmi_maps *m;
	uint32_t idx;
	int notify;
	int kick;
	bool random;		/* answer at random, else ALLOW */
	const uint8_t *model;	/* with !random: the restrictions */
	uint64_t area;		/* with !random: the area's gpa */
	pthread_t thread;
	bool stop;
	uint64_t rng;
	uint64_t seen;
	uint64_t valid;		/* valid replies written */
	uint64_t invalid;	/* invalid ones */
	uint64_t answers[NR_ANSWERS];
	uint64_t faults[AREA_PAGES][X + 1];	/* by page and access */
};

static uint64_t h_rnd(struct handler *h)
{
	h->rng ^= h->rng >> 12;
	h->rng ^= h->rng << 25;
	h->rng ^= h->rng >> 27;
	return h->rng * 0x2545f4914f6cdd1dULL;
}

static void answer(struct handler *h, struct kvmi_event *ev, uint32_t s)
{
	struct kvmi_reply *rp = kvmi_reply_slot(h->m, h->idx);
	struct kvmi_x86_regs regs = {};
	uint32_t a = h_rnd(h) % 16;

	/* Valid answers more often than not. */
	a = a < 4 ? A_ALLOW : a < 6 ? A_CONTINUE : a - 4;
	if (a >= NR_ANSWERS)
		a = A_ALLOW;
	h->answers[a]++;
	switch (a) {
	case A_ALLOW:
	case A_CONTINUE:
	case A_RETRY:
	case A_NOWRITE:
		h->valid++;
		kvmi_send_reply(h->m, h->idx, s, KVMI_EVENT_PAGE_FAULT,
				a == A_ALLOW ? KVMI_ACTION_ALLOW :
				a == A_CONTINUE ? KVMI_ACTION_CONTINUE :
				a == A_RETRY ? KVMI_ACTION_RETRY :
				KVMI_ACTION_EMUL_NOWRITE, 0, NULL, h->kick);
		break;
	case A_NOEMU:
		/* Resume at the same instruction: it runs again. */
		h->valid++;
		regs.groups = KVMI_REGS_RIP;
		regs.rip = ev->regs.rip;
		kvmi_send_reply(h->m, h->idx, s, KVMI_EVENT_PAGE_FAULT,
				KVMI_ACTION_NOEMU, KVMI_REPLY_SET_REGS, &regs,
				h->kick);
		break;
	case A_GARBAGE: {
		/* Random bytes, then a header no valid reply has. */
		uint64_t junk[10];
		uint32_t i;

		h->invalid++;
		for (i = 0; i < 10; i++)
			junk[i] = h_rnd(h);
		memcpy(&rp->data, junk, sizeof(junk));
		rp->event = KVMI_EVENT_PAGE_FAULT;
		rp->action = h_rnd(h);
		rp->padding1 = 1 | h_rnd(h);
		rp->flags = h_rnd(h) & ~KVMI_REPLY_SET_REGS;
		rp->padding2 = h_rnd(h);
		__atomic_store_n(&rp->seq, s, __ATOMIC_RELEASE);
		kvmi_kick_if_needed(h->m, h->idx, h->kick);
		break;
	}
	case A_BAD_ACTION:
		h->invalid++;
		kvmi_send_reply(h->m, h->idx, s, KVMI_EVENT_PAGE_FAULT,
				KVMI_ACTION_EMUL_NOWRITE + 1 +
				h_rnd(h) % (255 - KVMI_ACTION_EMUL_NOWRITE),
				0, NULL, h->kick);
		break;
	case A_MOVE_RIP:
		h->invalid++;
		regs.groups = KVMI_REGS_RIP;
		regs.rip = ev->regs.rip + 1;
		kvmi_send_reply(h->m, h->idx, s, KVMI_EVENT_PAGE_FAULT,
				KVMI_ACTION_ALLOW, KVMI_REPLY_SET_REGS, &regs,
				h->kick);
		break;
	case A_STALE:
		/* A reply to no pending event is ignored. */
		kvmi_send_reply(h->m, h->idx, s - 1 - h_rnd(h) % 2,
				KVMI_EVENT_PAGE_FAULT, KVMI_ACTION_CRASH, 0,
				NULL, h->kick);
		h->valid++;
		kvmi_send_reply(h->m, h->idx, s, KVMI_EVENT_PAGE_FAULT,
				KVMI_ACTION_ALLOW, 0, NULL, h->kick);
		break;
	case A_NONE:
		/* The deadline ends the event. */
		break;
	}
}

/* Answer the PAGE_FAULT events of one vCPU until told to stop. */
static void *handler_fn(void *arg)
{
	struct handler *h = arg;
	struct kvmi_event *ev = kvmi_event_slot(h->m, h->idx);
	struct pollfd pfd = { .fd = h->notify, .events = POLLIN };
	uint32_t last = 0, s;
	uint64_t cnt;

	while (!__atomic_load_n(&h->stop, __ATOMIC_ACQUIRE)) {
		uint64_t gpa, page;
		uint8_t acc;

		s = __atomic_load_n(&ev->seq, __ATOMIC_ACQUIRE);
		if (!s || s == last) {
			if (poll(&pfd, 1, 10) > 0)
				TEST_ASSERT(read(h->notify, &cnt, sizeof(cnt)) ==
					    sizeof(cnt), "read(notify)");
			continue;
		}
		last = s;
		TEST_ASSERT(ev->id == KVMI_EVENT_PAGE_FAULT, "event %u",
			    ev->id);
		gpa = ev->data.page_fault.gpa;
		acc = ev->data.page_fault.access;
		TEST_ASSERT(acc == W || acc == X, "access %u", acc);
		__atomic_fetch_add(&h->seen, 1, __ATOMIC_RELAXED);
		if (h->random) {
			TEST_ASSERT((gpa >= GPA_A &&
				     gpa < GPA_A + AREA_PAGES * PAGE_SIZE),
				    "gpa 0x%lx", gpa);
			answer(h, ev, s);
			continue;
		}
		/* Only a page restricted against the access faults. */
		TEST_ASSERT(gpa >= h->area &&
			    gpa < h->area + AREA_PAGES * PAGE_SIZE,
			    "gpa 0x%lx, area at 0x%lx", gpa, h->area);
		page = (gpa - h->area) / PAGE_SIZE;
		TEST_ASSERT(!(h->model[page] & acc),
			    "fault %u on page 0x%lx, which allows %u", acc,
			    gpa, h->model[page]);
		__atomic_fetch_add(&h->faults[page][acc], 1,
				   __ATOMIC_RELAXED);
		h->valid++;
		kvmi_send_reply(h->m, h->idx, s, KVMI_EVENT_PAGE_FAULT,
				KVMI_ACTION_ALLOW, 0, NULL, h->kick);
	}
	return NULL;
}

static void start_handlers(int fd, struct kvmi_maps *m, struct handler *h,
			   bool random)
{
	uint32_t i;

	for (i = 0; i < NR_VCPUS; i++) {
		memset(&h[i], 0, sizeof(h[i]));
		h[i].m = m;
		h[i].idx = i;
		h[i].random = random;
		h[i].rng = rnd() | 1;
		h[i].notify = eventfd(0, EFD_CLOEXEC);
		h[i].kick = eventfd(0, EFD_CLOEXEC);
		TEST_ASSERT(h[i].notify >= 0 && h[i].kick >= 0, "eventfd");
		kvmi_set_doorbells(fd, i,
				   KVMI_DOORBELL_NOTIFY | KVMI_DOORBELL_KICK,
				   h[i].notify, h[i].kick);
		kvmi_control_events(fd, i, KVMI_EVENT_PAGE_FAULT, 1);
		TEST_ASSERT(!pthread_create(&h[i].thread, NULL, handler_fn,
					    &h[i]), "pthread_create");
	}
}

static void stop_handlers(struct handler *h)
{
	uint32_t i;

	for (i = 0; i < NR_VCPUS; i++) {
		__atomic_store_n(&h[i].stop, true, __ATOMIC_RELEASE);
		pthread_join(h[i].thread, NULL);
		close(h[i].notify);
		close(h[i].kick);
	}
}

/*
 * Every event of the open introspection ended one way: a valid reply,
 * an invalid one or the deadline; and no more of each than the tool
 * wrote.
 */
static void check_counters(struct kvmi_maps *m, struct handler *h)
{
	uint32_t i;

	for (i = 0; i < NR_VCPUS; i++) {
		struct kvmi_vcpu_counters *c = kvmi_counters(m, i);

		ksft_print_msg("vCPU %u: %llu events = %llu replies + %llu bad + %llu deadlines; the tool saw %lu, wrote %lu valid, %lu invalid replies\n",
			       i, c->events, c->replies, c->bad_replies,
			       c->deadlines, h[i].seen, h[i].valid,
			       h[i].invalid);
		TEST_ASSERT(c->events == c->replies + c->bad_replies +
			    c->deadlines, "vCPU %u: events not accounted for",
			    i);
		TEST_ASSERT(h[i].seen <= c->events &&
			    c->replies <= h[i].valid &&
			    c->bad_replies <= h[i].invalid,
			    "vCPU %u: more counted than done", i);
	}
}

static int set_deadline(struct kvm_vm *vm, uint64_t ns)
{
	struct kvmi_deadline dl = { .reply_ns = ns };

	return ioctl(vm->fd, KVM_INTROSPECTION_SET_DEADLINE, &dl);
}

/*
 * random_access: the tool changes the restrictions of random pages and
 * maps and reads them, while the vCPUs fault on them and the handlers
 * answer at random, until the handlers have seen @events events.
 */
static void random_access(uint32_t events)
{
	struct kvm_vcpu *vcpus[NR_VCPUS];
	struct handler h[NR_VCPUS];
	struct runner r[NR_VCPUS];
	uint8_t model[AREA_PAGES], buf[sizeof(code)];
	uint64_t calls = 0, maps = 0, reads = 0, gets = 0;
	struct kvmi_maps m;
	struct kvm_vm *vm;
	uint8_t *win;
	uint32_t i, p;
	int fd;

	vm = create_vm(vcpus, GPA_A, true);
	TEST_ASSERT(!set_deadline(vm, DEADLINE_NS), "SET_DEADLINE: %s",
		    strerror(errno));
	fd = kvmi_open(vm);
	kvmi_map_all(fd, &m);
	win = map_window(fd);
	memset(model, RWX, sizeof(model));
	start_handlers(fd, &m, h, true);
	start_runners(vcpus, r);
	set_base(vm, GPA_A, 0);

	while (h[0].seen + h[1].seen < events) {
		struct kvmi_physical ph = {
			.size = sizeof(buf),
			.buffer = (uintptr_t)buf,
		};
		uint32_t n = 1 + rnd_below(4);

		for (i = 0; i < n; i++) {
			p = rnd_below(AREA_PAGES);
			model[p] = accesses[rnd_below(4)];
			TEST_ASSERT(!set_access(fd, GPA_A, p, model[p]),
				    "SET_PAGE_ACCESS: %s", strerror(errno));
			calls++;
		}
		switch (rnd_below(4)) {
		case 0:
			check_access(fd, GPA_A, model);
			gets++;
			break;
		case 1:
			/* A page through the window shows the guest's page. */
			p = rnd_below(AREA_PAGES);
			i = rnd_below(WIN_PAGES);
			TEST_ASSERT(!sva_map(fd, GPA_A + p * PAGE_SIZE,
					     win + i * PAGE_SIZE,
					     rnd_below(2) ? KVMI_SVA_WRITE : 0),
				    "MAP: %s", strerror(errno));
			TEST_ASSERT(window_read(buf, win + i * PAGE_SIZE,
						sizeof(buf)),
				    "SIGBUS on a live mapping");
			TEST_ASSERT(!memcmp(buf, code, sizeof(code)),
				    "mapping shows another page");
			maps++;
			break;
		case 2:
			ph.gpa = GPA_A + rnd_below(AREA_PAGES) * PAGE_SIZE;
			TEST_ASSERT(!ioctl(fd, KVMI_IOCTL_READ_PHYSICAL, &ph),
				    "READ_PHYSICAL: %s", strerror(errno));
			TEST_ASSERT(!memcmp(buf, code, sizeof(code)),
				    "READ_PHYSICAL: not the code");
			reads++;
			break;
		default:
			usleep(rnd_below(1000));
			break;
		}
	}

	join_runners(vm, r);
	stop_handlers(h);
	check_words(vm, GPA_A);
	check_access(fd, GPA_A, model);
	check_counters(&m, h);
	for (i = 0; i < NR_ANSWERS; i++)
		ksft_print_msg("%s: %lu\n", answer_names[i],
			       h[0].answers[i] + h[1].answers[i]);
	ksft_print_msg("%lu SET_PAGE_ACCESS, %lu GET, %lu MAP, %lu READ_PHYSICAL; guest iterations %lu + %lu\n",
		       calls, gets, maps, reads, iters(vm, 0), iters(vm, 1));
	munmap(win, WIN_PAGES * PAGE_SIZE);
	kvmi_unmap_all(&m);
	close(fd);
	kvm_vm_free(vm);
}

/*
 * The tool, in a process of its own: open, map its areas and a map
 * window, map random pages of the area there, restrict every page of
 * the area, answer @replies PAGE_FAULT events, leave the next one
 * waiting with a command in flight, say so through @ready and wait to
 * be killed.
 */
static void __noreturn tool_child(struct kvm_vm *vm, int ready,
				  uint32_t replies)
{
	uint32_t last[NR_VCPUS] = {}, i, n;
	struct kvmi_maps m;
	int fd, notify, kick;
	uint8_t *win;

	fd = kvmi_open(vm);
	kvmi_map_all(fd, &m);
	win = map_window(fd);
	notify = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	kick = eventfd(0, EFD_CLOEXEC);
	TEST_ASSERT(notify >= 0 && kick >= 0, "eventfd");
	kvmi_set_doorbells(fd, KVMI_ALL_VCPUS,
			   KVMI_DOORBELL_NOTIFY | KVMI_DOORBELL_KICK,
			   notify, kick);
	i = rnd_below(3);
	kvmi_set_wait_mode(fd, KVMI_ALL_VCPUS, i,
			   i == KVMI_WAIT_HYBRID ? KVMI_WAIT_DEFAULT_SPIN_NS : 0);
	for (n = 1 + rnd_below(WIN_PAGES), i = 0; i < n; i++)
		TEST_ASSERT(!sva_map(fd, GPA_A + rnd_below(AREA_PAGES) *
				     PAGE_SIZE, win + i * PAGE_SIZE,
				     rnd_below(2) ? KVMI_SVA_WRITE : 0),
			    "MAP: %s", strerror(errno));
	kvmi_control_events(fd, KVMI_ALL_VCPUS, KVMI_EVENT_PAGE_FAULT, 1);
	for (i = 0; i < AREA_PAGES; i++)
		TEST_ASSERT(!set_access(fd, GPA_A, i, accesses[rnd_below(3)]),
			    "SET_PAGE_ACCESS: %s", strerror(errno));

	for (;;) {
		for (i = 0; i < NR_VCPUS; i++) {
			struct kvmi_event *ev = kvmi_event_slot(&m, i);
			uint32_t s = __atomic_load_n(&ev->seq,
						     __ATOMIC_ACQUIRE);

			if (!s || s == last[i])
				continue;
			last[i] = s;
			if (replies) {
				replies--;
				kvmi_send_reply(&m, i, s, ev->id,
						KVMI_ACTION_ALLOW, 0, NULL,
						kick);
				continue;
			}
			kvmi_send_cmd(&m, i, KVMI_CMD_GET_REGISTERS, NULL,
				      kick);
			TEST_ASSERT(write(ready, "w", 1) == 1, "write");
			for (;;)
				pause();
		}
	}
}

static void tool_killed(uint32_t kills)
{
	struct kvm_vcpu *vcpus[NR_VCPUS];
	struct runner r[NR_VCPUS];
	uint8_t rwx[AREA_PAGES];
	uint64_t detach = 0;
	struct kvm_vm *vm;
	uint32_t k, i;

	memset(rwx, RWX, sizeof(rwx));
	vm = create_vm(vcpus, GPA_A, true);
	start_runners(vcpus, r);
	set_base(vm, GPA_A, 0);

	for (k = 0; k < kills; k++) {
		uint64_t before[NR_VCPUS];
		struct pollfd pfd;
		int ready[2], status, fd;
		pid_t pid;
		char c;

		TEST_ASSERT(!pipe(ready), "pipe");
		pid = fork();
		TEST_ASSERT(pid >= 0, "fork");
		if (!pid) {
			close(ready[0]);
			rng_state += k;
			tool_child(vm, ready[1], rnd_below(6));
		}
		close(ready[1]);
		pfd.fd = ready[0];
		pfd.events = POLLIN;
		TEST_ASSERT(poll(&pfd, 1, -1) == 1, "poll");
		TEST_ASSERT(read(ready[0], &c, 1) == 1,
			    "kill %u: the tool died before its event", k);
		if (rnd_below(2))
			usleep(rnd_below(2000));
		TEST_ASSERT(!kill(pid, SIGKILL), "kill");
		TEST_ASSERT(waitpid(pid, &status, 0) == pid, "waitpid");
		TEST_ASSERT(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL,
			    "kill %u: tool status 0x%x", k, status);
		close(ready[0]);

		/* The restrictions went with the tool. */
		fd = kvmi_open(vm);
		check_access(fd, GPA_A, rwx);
		close(fd);
		/* And each vCPU goes on. */
		for (i = 0; i < NR_VCPUS; i++)
			before[i] = iters(vm, i);
		for (i = 0; i < NR_VCPUS; i++)
			while (iters(vm, i) < before[i] + 2)
				usleep(1000);
		if ((k + 1) % 50 == 0)
			ksft_print_msg("%u kills\n", k + 1);
	}

	join_runners(vm, r);
	check_words(vm, GPA_A);
	for (i = 0; i < NR_VCPUS; i++) {
		uint64_t ev = kvmi_vcpu_stat(vcpus[i], "kvmi_events");
		uint64_t rep = kvmi_vcpu_stat(vcpus[i], "kvmi_replies");
		uint64_t bad = kvmi_vcpu_stat(vcpus[i], "kvmi_bad_replies");
		uint64_t dl = kvmi_vcpu_stat(vcpus[i], "kvmi_deadlines");
		uint64_t det = kvmi_vcpu_stat(vcpus[i], "kvmi_detach_releases");

		ksft_print_msg("vCPU %u: %lu events = %lu replies + %lu bad + %lu deadlines + %lu detach\n",
			       i, ev, rep, bad, dl, det);
		TEST_ASSERT(ev == rep + bad + dl + det,
			    "vCPU %u: events not accounted for", i);
		detach += det;
	}
	TEST_ASSERT(detach >= kills, "%lu releases for %u kills", detach,
		    kills);
	kvm_vm_free(vm);
}

struct racer {
	int fd;
	uint64_t gpa;
	uint8_t *win;
	uint8_t *model;
	uint64_t rng;
	bool stop;
	uint64_t sets, maps, refused;
};

/*
 * While the memslot changes: restrict pages of the area at its old
 * place and map them at the second half of the window. Each call either
 * works or finds no memslot there.
 */
static void *racer_fn(void *arg)
{
	struct racer *ra = arg;

	while (!__atomic_load_n(&ra->stop, __ATOMIC_ACQUIRE)) {
		uint32_t p, a;
		int r;

		ra->rng ^= ra->rng >> 12;
		ra->rng ^= ra->rng << 25;
		ra->rng ^= ra->rng >> 27;
		p = ra->rng % AREA_PAGES;
		a = accesses[(ra->rng >> 8) % 4];
		if ((ra->rng >> 16) & 1) {
			r = set_access(ra->fd, ra->gpa, p, a);
			if (!r)
				ra->model[p] = a;
			ra->sets++;
		} else {
			r = sva_map(ra->fd, ra->gpa + p * PAGE_SIZE,
				    ra->win + (AREA_PAGES + p) * PAGE_SIZE,
				    (ra->rng >> 17) & 1 ? KVMI_SVA_WRITE : 0);
			ra->maps++;
		}
		TEST_ASSERT(!r || r == -ENOENT, "racer: %s", strerror(-r));
		if (r)
			ra->refused++;
	}
	return NULL;
}

/*
 * memslot_changed: @rounds times, with restrictions set and every page
 * of the area mapped, the guest touches every page, then its memslot is
 * deleted and added again (new memory) or moved, while a racer thread
 * restricts and maps the pages at the old place.
 */
static void memslot_changed(uint32_t rounds)
{
	static uint8_t model[2][AREA_PAGES];
	struct kvm_vcpu *vcpus[NR_VCPUS];
	struct handler h[NR_VCPUS];
	struct runner r[NR_VCPUS];
	struct sigaction sa = { .sa_handler = sigbus_handler }, old;
	uint64_t deletes = 0, moves = 0, faults = 0;
	uint64_t gpas[2] = { GPA_A, GPA_B };
	uint32_t cur = 0, k, i, p;
	struct racer ra;
	struct kvmi_maps m;
	struct kvm_vm *vm;
	uint8_t *win, buf[sizeof(code)];
	int fd;

	memset(model, RWX, sizeof(model));
	vm = create_vm(vcpus, GPA_A, false);
	fd = kvmi_open(vm);
	kvmi_map_all(fd, &m);
	win = map_window(fd);
	start_handlers(fd, &m, h, false);
	start_runners(vcpus, r);
	sigaction(SIGBUS, &sa, &old);

	for (k = 0; k < rounds; k++) {
		uint64_t gpa = gpas[cur];
		pthread_t racer;
		bool del;

		/* Restrict, map, check what GET and the mappings say. */
		for (p = 0; p < AREA_PAGES; p++) {
			if (rnd_below(2))
				model[cur][p] = accesses[rnd_below(4)];
			TEST_ASSERT(!set_access(fd, gpa, p, model[cur][p]),
				    "SET_PAGE_ACCESS: %s", strerror(errno));
			TEST_ASSERT(!sva_map(fd, gpa + p * PAGE_SIZE,
					     win + p * PAGE_SIZE,
					     rnd_below(2) ? KVMI_SVA_WRITE : 0),
				    "MAP: %s", strerror(errno));
			TEST_ASSERT(window_read(buf, win + p * PAGE_SIZE,
						sizeof(buf)) &&
				    !memcmp(buf, code, sizeof(code)),
				    "page %u: the mapping shows another page",
				    p);
		}
		check_access(fd, gpa, model[cur]);

		/* The guest writes and calls every page, and faults. */
		for (i = 0; i < NR_VCPUS; i++) {
			memset(h[i].faults, 0, sizeof(h[i].faults));
			h[i].model = model[cur];
			h[i].area = gpa;
		}
		set_base(vm, gpa, AREA_PAGES + 1);
		set_base(vm, 0, 0);
		check_words(vm, gpa);
		for (p = 0; p < AREA_PAGES; p++) {
			for (i = 0; i < NR_VCPUS; i++) {
				uint64_t w = h[i].faults[p][W];
				uint64_t x = h[i].faults[p][X];

				TEST_ASSERT(!!w == !(model[cur][p] & W) &&
					    !!x == !(model[cur][p] & X),
					    "round %u, page 0x%lx, access %u: vCPU %u had %lu write and %lu exec faults",
					    k, gpa + p * PAGE_SIZE,
					    model[cur][p], i, w, x);
				faults += w + x;
			}
		}

		/* Change the memslot while the racer works. */
		memset(&ra, 0, sizeof(ra));
		ra.fd = fd;
		ra.gpa = gpa;
		ra.win = win;
		ra.model = model[cur];
		ra.rng = rnd() | 1;
		TEST_ASSERT(!pthread_create(&racer, NULL, racer_fn, &ra),
			    "pthread_create");
		usleep(rnd_below(2000));
		del = rnd_below(2);
		if (del) {
			vm_mem_region_delete(vm, AREA_SLOT);
			deletes++;
		} else {
			vm_mem_region_move(vm, AREA_SLOT, gpas[!cur]);
			moves++;
		}
		__atomic_store_n(&ra.stop, true, __ATOMIC_RELEASE);
		pthread_join(racer, NULL);

		/* Every mapping ended; no memslot at the old place. */
		for (p = 0; p < WIN_PAGES; p++)
			TEST_ASSERT(!window_read(buf, win + p * PAGE_SIZE,
						 sizeof(buf)),
				    "round %u: window page %u still mapped",
				    k, p);
		TEST_ASSERT(sva_map(fd, gpa, win, 0) == -ENOENT,
			    "MAP of a gpa in no memslot");
		TEST_ASSERT(set_access(fd, gpa, 0, R) == -ENOENT,
			    "SET_PAGE_ACCESS of a gpa in no memslot");

		if (del) {
			vm_userspace_mem_region_add(vm, VM_MEM_SRC_SHMEM, gpa,
						    AREA_SLOT, AREA_PAGES, 0);
			for (p = 0; p < AREA_PAGES; p++)
				memcpy(addr_gpa2hva(vm, gpa + p * PAGE_SIZE),
				       code, sizeof(code));
			memset(ctl_of(vm)->last, 0, sizeof(ctl_of(vm)->last));
		} else {
			cur = !cur;
		}
		/* The restrictions of the pages there are back. */
		check_access(fd, gpas[cur], model[cur]);
	}

	sigaction(SIGBUS, &old, NULL);
	join_runners(vm, r);
	stop_handlers(h);
	check_counters(&m, h);
	TEST_ASSERT(faults > 0, "no fault in %u rounds", rounds);
	ksft_print_msg("%u rounds: %lu deletes, %lu moves, %lu faults; guest iterations %lu + %lu\n",
		       rounds, deletes, moves, faults, iters(vm, 0),
		       iters(vm, 1));
	munmap(win, WIN_PAGES * PAGE_SIZE);
	kvmi_unmap_all(&m);
	close(fd);
	kvm_vm_free(vm);
}

int main(int argc, char *argv[])
{
	uint32_t events = 3000, kills = 10, rounds = 10;
	uint64_t seed = time(NULL);
	struct sigaction sa = { .sa_handler = sigbus_handler };
	int opt;

	if (getenv("KVMI_TORTURE_PA_EVENTS"))
		events = strtoul(getenv("KVMI_TORTURE_PA_EVENTS"), NULL, 0);
	if (getenv("KVMI_TORTURE_PA_KILLS"))
		kills = strtoul(getenv("KVMI_TORTURE_PA_KILLS"), NULL, 0);
	if (getenv("KVMI_TORTURE_SLOT_ROUNDS"))
		rounds = strtoul(getenv("KVMI_TORTURE_SLOT_ROUNDS"), NULL, 0);
	while ((opt = getopt(argc, argv, "n:k:r:s:")) != -1) {
		switch (opt) {
		case 'n':
			events = strtoul(optarg, NULL, 0);
			break;
		case 'k':
			kills = strtoul(optarg, NULL, 0);
			break;
		case 'r':
			rounds = strtoul(optarg, NULL, 0);
			break;
		case 's':
			seed = strtoull(optarg, NULL, 0);
			break;
		default:
			fprintf(stderr,
				"usage: %s [-n EVENTS] [-k KILLS] [-r ROUNDS] [-s SEED]\n",
				argv[0]);
			exit(KSFT_FAIL);
		}
	}
	ksft_print_header();
	KVMI_REQUIRE();
	ksft_set_plan(3);
	ksft_print_msg("seed %lu, %u events, %u kills, %u rounds\n", seed,
		       events, kills, rounds);
	rng_state = seed | 1;
	/* A SIGBUS from a map window ends a window_read(). */
	TEST_ASSERT(!sigaction(SIGBUS, &sa, NULL), "sigaction");

	random_access(events);
	ksft_test_result_pass("random_access: %u events\n", events);
	tool_killed(kills);
	ksft_test_result_pass("tool_killed: %u kills\n", kills);
	memslot_changed(rounds);
	ksft_test_result_pass("memslot_changed: %u rounds\n", rounds);
	ksft_finished();
}
