// SPDX-License-Identifier: GPL-2.0-only
/*
 * kvmi-ring torture: random ioctl arguments (Documentation/virt/kvm/
 * kvmi-torture.rst, section 2).
 *
 * Calls the introspection fd's ioctls and the VM fd's introspection ioctls
 * with random command numbers, sizes, directions, flags, padding, vCPU
 * indexes, file descriptors and pointers (valid, NULL, unmapped, read-only,
 * straddling the end of a mapping, kernel addresses) while two vCPUs run
 * a guest that raises HYPERCALL and BREAKPOINT events, which the calls
 * enable, pause and unpause at random (the VMM's deadline ends the events
 * nobody answers). Pass: every call returns, and every error is one that
 * kvmi.rst documents; the kernel log shows nothing.
 *
 *	kvmi_ioctl_fuzz_test [-n CALLS] [-s SEED]
 *
 * CALLS: 10000 by default, or $KVMI_IOCTL_FUZZ_CALLS.
 */
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/eventfd.h>
#include <time.h>

#include "kvmi_util.h"
#include "processor.h"
#include "ucall_common.h"

#define NR_VCPUS	2
#define REOPEN_EVERY	1000
#define NR_EVENTFDS	3

/*
 * Guest memory the physical reads and writes aim at: pages of random
 * bytes that only READ_PHYSICAL looks at, and a page WRITE_PHYSICAL may
 * write (section 2 of kvmi-torture.rst).
 */
#define DATA_PAGES	2
static uint8_t guest_data[DATA_PAGES][4096] __aligned(4096);
static uint8_t guest_scratch[4096] __aligned(4096);

static void guest_bp_handler(struct ex_regs *regs)
{
}

static void guest_code(void)
{
	for (;;) {
		uint64_t rax = KVM_HC_KVMI;

		asm volatile("vmmcall" : "+a"(rax) : : "rbx", "rcx", "rdx",
			     "rsi", "memory");
		asm volatile("int3" : : : "memory");
	}
}

struct runner {
	struct kvm_vcpu *vcpu;
	pthread_t thread;
	bool stop;
	uint64_t runs;
};

/* Run until told to stop; whatever the guest does, run it again. */
static void *runner_fn(void *arg)
{
	struct runner *r = arg;

	while (!__atomic_load_n(&r->stop, __ATOMIC_ACQUIRE)) {
		__vcpu_run(r->vcpu);
		r->runs++;
	}
	return NULL;
}

static void sig_nop(int sig)
{
}

/* Where an ioctl's argument may point. */
struct targets {
	/*
	 * Four read-write pages and an inaccessible one: room for what the
	 * kernel writes back (at most three pages from the first one).
	 */
	uint8_t *rw;
	uint8_t *edge;		/* a read-write page, an inaccessible one after */
	uint8_t *ro;		/* a read-only page */
	uint8_t *unmapped;	/* an inaccessible page */
	size_t page;
};

static void targets_init(struct targets *tg)
{
	tg->page = getpagesize();
	tg->rw = mmap(NULL, 5 * tg->page, PROT_READ | PROT_WRITE,
		      MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	tg->edge = mmap(NULL, 2 * tg->page, PROT_READ | PROT_WRITE,
			MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	tg->ro = mmap(NULL, tg->page, PROT_READ | PROT_WRITE,
		      MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	tg->unmapped = mmap(NULL, tg->page, PROT_NONE,
			    MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	TEST_ASSERT(tg->rw != MAP_FAILED && tg->edge != MAP_FAILED &&
		    tg->ro != MAP_FAILED && tg->unmapped != MAP_FAILED,
		    "mmap");
	/*
	 * PROT_NONE rather than unmapped, so that no later mapping (a
	 * thread's stack, the VM area) takes the place.
	 */
	TEST_ASSERT(!mprotect(tg->edge + tg->page, tg->page, PROT_NONE),
		    "mprotect");
	TEST_ASSERT(!mprotect(tg->rw + 4 * tg->page, tg->page, PROT_NONE),
		    "mprotect");
	rnd_bytes(tg->ro, tg->page);
	TEST_ASSERT(!mprotect(tg->ro, tg->page, PROT_READ), "mprotect");
}

/*
 * A pointer for an argument of @size bytes whose contents are @arg; with
 * @exact, never one to other contents (the read-only page's garbage).
 */
static void *__pick_ptr(struct targets *tg, const void *arg, size_t size,
			bool exact)
{
	static const uint64_t kernel[] = {
		0xffffffff81000000ULL, 0xffff888000000000ULL,
		0xfffffe0000000000ULL, 0x8000000000000000ULL, ~0ULL,
	};
	uint32_t what = rnd_below(100);
	uint8_t *p;

	if (size > tg->page)
		size = tg->page;
	if (what < 70) {
		p = tg->rw + rnd_below(tg->page);	/* may cross a page */
		memcpy(p, arg, size);
		return p;
	}
	if (what < 76)
		return NULL;
	if (what < 82)
		return tg->unmapped + rnd_below(tg->page);
	if (what < 88 && !exact)
		return tg->ro + rnd_below(tg->page - size + 1);
	if (what < 94) {
		/* The argument starts in the page and runs off its end. */
		size_t in = size > 1 ? 1 + rnd_below(size - 1) : 0;

		p = tg->edge + tg->page - in;
		memcpy(p, arg, in);
		return p;
	}
	return (void *)(kernel[rnd_below(5)] - rnd_below(64));
}

static void *pick_ptr(struct targets *tg, const void *arg, size_t size)
{
	return __pick_ptr(tg, arg, size, false);
}

struct fuzz {
	struct kvm_vm *vm;
	int fd;			/* the introspection fd, or -1 */
	struct kvmi_vm_state *vs;	/* its VM area */
	int efd[NR_EVENTFDS];
	int closed_fd;		/* a number that is no open fd */
	struct targets tg;
	uint64_t calls;
	uint64_t ok;
	uint64_t errs[256];
	uint8_t *data[DATA_PAGES];	/* guest_data, our view */
	uint64_t data_gpa[DATA_PAGES];
	uint8_t *scratch;
	uint64_t scratch_gpa;
	uint64_t mem_size;		/* guest physical address space */
	uint64_t phys_checked;		/* reads and writes compared */
};

static int pick_fd(struct fuzz *f)
{
	switch (rnd_below(8)) {
	case 0:
		return -1;
	case 1:
		return f->closed_fd;
	case 2:
		return (int)rnd();
	case 3:
		return rnd_below(16);	/* stdio, the VM's fds, ours... */
	case 4:
		return f->fd;
	default:
		return f->efd[rnd_below(NR_EVENTFDS)];
	}
}

static uint32_t pick_vcpu(void)
{
	switch (rnd_below(6)) {
	case 0:
		return KVMI_ALL_VCPUS;
	case 1:
		return rnd();
	case 2:
		return NR_VCPUS + rnd_below(4);	/* no such vCPU */
	default:
		return rnd_below(NR_VCPUS);
	}
}

/* Flip a few bits of a plausible argument, or not. */
static void maybe_mutate(void *arg, size_t size)
{
	int n = rnd_below(3) || !size ? 0 : 1 + rnd_below(3);

	while (n--) {
		size_t bit = rnd_below(size * 8);

		((uint8_t *)arg)[bit / 8] ^= 1 << (bit % 8);
	}
}

/*
 * A plausible argument for the introspection fd's ioctl @nr, in @arg
 * (of KVMI_ARG_MAX bytes); returns its size.
 */
#define KVMI_ARG_MAX	256

static size_t kvmi_arg(struct fuzz *f, uint32_t nr, uint8_t *arg)
{
	rnd_bytes(arg, KVMI_ARG_MAX);
	if (rnd_below(4) == 0)
		return rnd_below(KVMI_ARG_MAX);	/* plain garbage */

	switch (nr) {
	case KVMI_CMD_GET_VERSION: {
		struct kvmi_version *v = (void *)arg;

		memset(v, 0, sizeof(*v));
		v->size = rnd_below(3) ? sizeof(*v) : rnd_below(128);
		return sizeof(*v);
	}
	case KVMI_CMD_GET_LAYOUT: {
		struct kvmi_layout *lo = (void *)arg;

		memset(lo, 0, sizeof(*lo));
		lo->size = rnd_below(3) ? sizeof(*lo) : rnd_below(256);
		return sizeof(*lo);
	}
	case KVMI_CMD_CHECK_COMMAND:
	case KVMI_CMD_CHECK_EVENT: {
		struct kvmi_check *c = (void *)arg;

		c->id = rnd_below(2) ? rnd_below(0x100) : rnd();
		c->flags = rnd_below(4) ? 0 : rnd();
		return sizeof(*c);
	}
	case KVMI_CMD_GET_GUEST_INFO: {
		struct kvmi_guest_info *gi = (void *)arg;

		memset(gi, 0, sizeof(*gi));
		gi->size = rnd_below(3) ? sizeof(*gi) : rnd_below(64);
		return sizeof(*gi);
	}
	case KVMI_CMD_CONTROL_EVENTS: {
		struct kvmi_control_events *ce = (void *)arg;

		memset(ce, 0, sizeof(*ce));
		ce->vcpu = pick_vcpu();
		ce->event = rnd_below(4) ? rnd_below(12) : rnd();
		ce->enable = rnd_below(4) ? rnd_below(2) : rnd();
		ce->param = rnd_below(4) ? 0 : rnd();
		return sizeof(*ce);
	}
	case KVMI_CMD_SET_VCPU_DOORBELLS: {
		struct kvmi_doorbells *db = (void *)arg;

		db->vcpu = pick_vcpu();
		db->flags = rnd_below(4) ? rnd_below(4) : rnd();
		db->notify_fd = pick_fd(f);
		db->kick_fd = pick_fd(f);
		return sizeof(*db);
	}
	case KVMI_CMD_SET_WAIT_MODE: {
		struct kvmi_wait_mode *wm = (void *)arg;

		wm->vcpu = pick_vcpu();
		wm->mode = rnd_below(4) ? rnd_below(4) : rnd();
		wm->spin_ns = rnd_below(2) ? rnd_below(1000000) : rnd();
		return sizeof(*wm);
	}
	case KVMI_CMD_PAUSE_VCPU:
	case KVMI_CMD_UNPAUSE: {
		struct kvmi_pause_vcpu *pv = (void *)arg;

		pv->vcpu = pick_vcpu();
		pv->flags = rnd_below(4) ? 0 : rnd();
		return sizeof(*pv);
	}
	case KVMI_CMD_PAUSE_ALL:
	case KVMI_CMD_SHUTDOWN_GUEST: {
		struct kvmi_pause_all *pa = (void *)arg;

		pa->flags = rnd_below(4) ? 0 : rnd();
		pa->padding = rnd_below(4) ? 0 : rnd();
		return sizeof(*pa);
	}
	case KVMI_CMD_GET_PAGE_ACCESS:
	case KVMI_CMD_SET_PAGE_ACCESS: {
		struct kvmi_page_access *pa = (void *)arg;
		struct kvmi_page_access_entry *e = (void *)f->tg.rw;

		/* Entries in the read-write pages, or anywhere. */
		pa->entries = rnd_below(2) ? (uint64_t)(uintptr_t)e :
			      (uint64_t)(uintptr_t)pick_ptr(&f->tg, e, 16);
		pa->count = rnd_below(4) ? rnd_below(2 * f->tg.page / 16 + 2) :
			    rnd();
		pa->flags = rnd_below(4) ? 0 : rnd();
		pa->done = rnd_below(2) ? 0 : rnd();
		pa->padding = rnd_below(4) ? 0 : rnd();
		return sizeof(*pa);
	}
	case KVMI_CMD_READ_PHYSICAL: {
		struct kvmi_physical *ph = (void *)arg;

		ph->gpa = rnd_below(2) ? rnd_below(1 << 24) : rnd();
		ph->size = rnd_below(2) ? rnd_below(2 * f->tg.page) : rnd();
		ph->buffer = (uint64_t)(uintptr_t)(rnd_below(2) ? f->tg.rw :
				pick_ptr(&f->tg, arg, 8));
		ph->flags = rnd_below(4) ? 0 : rnd();
		ph->padding = rnd_below(4) ? 0 : rnd();
		return sizeof(*ph);
	}
	default:
		/*
		 * WRITE_PHYSICAL is never made plausible: it would write
		 * the guest's code. Unknown numbers get garbage.
		 */
		return rnd_below(KVMI_ARG_MAX);
	}
}

/* The introspection fd's ioctls; WRITE_PHYSICAL only gets garbage. */
static const unsigned long known[] = {
	KVMI_IOCTL_GET_VERSION, KVMI_IOCTL_GET_LAYOUT,
	KVMI_IOCTL_CHECK_COMMAND, KVMI_IOCTL_CHECK_EVENT,
	KVMI_IOCTL_GET_GUEST_INFO, KVMI_IOCTL_CONTROL_EVENTS,
	KVMI_IOCTL_SET_VCPU_DOORBELLS, KVMI_IOCTL_SET_WAIT_MODE,
	KVMI_IOCTL_PAUSE_VCPU, KVMI_IOCTL_PAUSE_ALL, KVMI_IOCTL_UNPAUSE,
	KVMI_IOCTL_GET_PAGE_ACCESS, KVMI_IOCTL_SET_PAGE_ACCESS,
	KVMI_IOCTL_READ_PHYSICAL, KVMI_IOCTL_SHUTDOWN_GUEST,
};

/* The ioctl number: right, right number with wrong size or direction, other. */
static unsigned long kvmi_cmd(uint32_t nr, size_t size)
{
	static const unsigned int dirs[] = {
		_IOC_NONE, _IOC_READ, _IOC_WRITE, _IOC_READ | _IOC_WRITE,
	};
	unsigned long cmd;
	uint32_t i;

	switch (rnd_below(8)) {
	case 0:
		return _IOC(dirs[rnd_below(4)], KVMI_IOCTL_MAGIC, nr,
			    rnd_below(2) ? size : rnd_below(_IOC_SIZEMASK + 1));
	case 1:
		/*
		 * Anything but the VFS's own ioctls, which every fd answers
		 * (FIOCLEX, FIONBIO, FIFREEZE, FS_IOC_*, FIGETBSZ...).
		 */
		do {
			cmd = (uint32_t)rnd();
		} while (_IOC_TYPE(cmd) == 'T' || _IOC_TYPE(cmd) == 'X' ||
			 _IOC_TYPE(cmd) == 'f' || _IOC_TYPE(cmd) == 0x15 ||
			 _IOC_TYPE(cmd) == 0);
		return cmd;
	default:
		for (i = 0; i < ARRAY_SIZE(known); i++)
			if (_IOC_NR(known[i]) == nr)
				return known[i];
		return _IOC(dirs[rnd_below(4)], KVMI_IOCTL_MAGIC, nr, size);
	}
}

/* The errors kvmi.rst documents for the ioctls (section 18). */
static bool documented(int e)
{
	switch (e) {
	case EBUSY: case EINVAL: case E2BIG: case EPERM: case EIO:
	case ENOENT: case ENODEV: case EOPNOTSUPP: case ETIMEDOUT:
	case EINTR: case EBADF: case EFAULT: case ENOTTY: case ENOMEM:
	case ENOTSOCK:
		return true;
	}
	return false;
}

static void account(struct fuzz *f, const char *what, unsigned long cmd,
		    long r)
{
	f->calls++;
	if (r >= 0) {
		f->ok++;
		return;
	}
	TEST_ASSERT(documented(errno),
		    "%s ioctl 0x%lx: undocumented error %d (%s)", what, cmd,
		    errno, strerror(errno));
	f->errs[errno & 0xff]++;
}

static void reopen(struct fuzz *f)
{
	struct kvmi_allowed all;
	int r;

	if (f->fd >= 0) {
		munmap(f->vs, getpagesize());
		close(f->fd);
	}
	/* Widen the allow-lists again (random calls shrink them). */
	memset(&all, 0xff, sizeof(all));
	all.flags = 0;
	all.padding = 0;
	r = ioctl(f->vm->fd, KVM_INTROSPECTION_SET_ALLOWED, &all);
	TEST_ASSERT(!r, "SET_ALLOWED: %s", strerror(errno));
	f->fd = kvmi_open(f->vm);
	f->vs = kvmi_mmap(f->fd, 0, getpagesize(), PROT_READ);
	kvmi_control_events(f->fd, KVMI_ALL_VCPUS, KVMI_EVENT_HYPERCALL, 1);
	kvmi_control_events(f->fd, KVMI_ALL_VCPUS, KVMI_EVENT_BREAKPOINT, 1);
}

static void fuzz_kvmi(struct fuzz *f)
{
	uint8_t arg[KVMI_ARG_MAX];
	uint32_t nr = rnd_below(8) ? _IOC_NR(known[rnd_below(ARRAY_SIZE(known))]) :
		      rnd_below(256);
	size_t size = kvmi_arg(f, nr, arg);
	unsigned long cmd = kvmi_cmd(nr, size);
	long r;

	maybe_mutate(arg, size);
	r = ioctl(f->fd, cmd, pick_ptr(&f->tg, arg, size));
	account(f, "kvmi", cmd, r);
}

/*
 * READ_PHYSICAL and WRITE_PHYSICAL with random addresses and sizes while
 * the vCPUs run. A read of the data pages returns exactly their bytes, a
 * write of the scratch page lands where it was asked to; elsewhere only
 * reads, which may cross pages, leave guest memory or run off the end of
 * the buffer into an inaccessible page. The random allow-lists and
 * UNHOOKs may refuse any of them (EPERM, ENODEV).
 */
static void fuzz_phys(struct fuzz *f)
{
	struct kvmi_physical ph = { .buffer = (uintptr_t)f->tg.rw };
	unsigned long cmd = KVMI_IOCTL_READ_PHYSICAL;
	size_t page = f->tg.page;
	uint32_t p = rnd_below(DATA_PAGES);
	uint32_t what = rnd_below(3);
	uint64_t off = rnd_below(page);
	long r;

	if (what == 0) {
		ph.gpa = f->data_gpa[p] + off;
		ph.size = rnd_below(page - off + 1);
	} else if (what == 1) {
		cmd = KVMI_IOCTL_WRITE_PHYSICAL;
		ph.gpa = f->scratch_gpa + off;
		ph.size = rnd_below(page - off + 1);
		rnd_bytes(f->tg.rw, ph.size);
	} else {
		ph.gpa = rnd_below(4) ? rnd() % (2 * f->mem_size) : rnd();
		ph.size = rnd_below(4) ? rnd_below(3 * page + 1) :
			  4 * page + rnd_below(page);	/* > the buffer */
	}
	r = ioctl(f->fd, cmd, &ph);
	account(f, "phys", cmd, r);
	if (what == 2)
		return;
	TEST_ASSERT(!r || errno == EPERM || errno == ENODEV,
		    "%s_PHYSICAL 0x%llx+%llu: %s", what ? "WRITE" : "READ",
		    ph.gpa, ph.size, strerror(errno));
	if (r)
		return;
	TEST_ASSERT(!memcmp(f->tg.rw, what ? f->scratch + off :
			    f->data[p] + off, ph.size),
		    "%s_PHYSICAL 0x%llx+%llu: not the guest's bytes",
		    what ? "WRITE" : "READ", ph.gpa, ph.size);
	f->phys_checked++;
}

/* The VM fd's introspection ioctls. */
static void fuzz_vm(struct fuzz *f)
{
	uint8_t arg[128];
	uint32_t nr = 0xd6 + rnd_below(4);
	unsigned long cmd;
	size_t size = 0;
	long r;

	rnd_bytes(arg, sizeof(arg));
	switch (nr) {
	case 0xd6: {
		struct kvmi_open *op = (void *)arg;

		*op = kvmi_open_args();
		if (rnd_below(4) == 0)
			op->size = rnd_below(64);
		if (rnd_below(4) == 0)
			op->transport = rnd_below(3);
		size = sizeof(*op);
		cmd = KVM_INTROSPECTION_OPEN;
		break;
	}
	case 0xd7: {
		struct kvmi_allowed *al = (void *)arg;

		/* Random lists: they shrink, or widening fails. */
		al->flags = rnd_below(4) ? 0 : rnd();
		al->padding = rnd_below(4) ? 0 : rnd();
		size = sizeof(*al);
		cmd = KVM_INTROSPECTION_SET_ALLOWED;
		break;
	}
	case 0xd8: {
		struct kvmi_deadline *dl = (void *)arg;

		/* Short enough that the vCPUs keep going. */
		dl->reply_ns = 1000 + rnd_below(2000000);
		dl->flags = rnd_below(4) ? 0 : rnd();
		dl->padding = rnd_below(4) ? 0 : rnd();
		size = sizeof(*dl);
		cmd = KVM_INTROSPECTION_SET_DEADLINE;
		break;
	}
	default: {
		struct kvmi_unhook *uh = (void *)arg;

		uh->flags = rnd_below(4) ? rnd_below(2) : rnd();
		uh->padding = rnd_below(4) ? 0 : rnd();
		uh->timeout_ns = rnd_below(1000000);	/* we never leave */
		size = sizeof(*uh);
		cmd = KVM_INTROSPECTION_UNHOOK;
		break;
	}
	}
	if (rnd_below(8) == 0)
		cmd = _IOC(rnd_below(4), KVMIO, nr, rnd_below(_IOC_SIZEMASK));
	maybe_mutate(arg, size);
	/* An UNHOOK waits for the tool to leave, which we never do. */
	if (nr == 0xd9)
		((struct kvmi_unhook *)arg)->timeout_ns &= (1 << 20) - 1;
	r = ioctl(f->vm->fd, cmd, __pick_ptr(&f->tg, arg, size, nr == 0xd9));
	account(f, "vm", cmd, r);
	if (cmd == KVM_INTROSPECTION_OPEN && r >= 0)
		close(r);	/* ours was detached meanwhile */
}

int main(int argc, char *argv[])
{
	struct kvm_vcpu *vcpus[NR_VCPUS];
	struct runner r[NR_VCPUS] = {};
	uint64_t seed = time(NULL), target = 10000;
	const char *env = getenv("KVMI_IOCTL_FUZZ_CALLS");
	struct sigaction sa = { .sa_handler = sig_nop };
	struct kvmi_deadline dl = { .reply_ns = 1000000 };
	struct fuzz f = { .fd = -1 };
	static uint8_t sums[DATA_PAGES * 4096];	/* guest_data at the start */
	uint32_t i;
	int opt;

	if (env)
		target = strtoull(env, NULL, 0);
	while ((opt = getopt(argc, argv, "n:s:")) != -1) {
		switch (opt) {
		case 'n':
			target = strtoull(optarg, NULL, 0);
			break;
		case 's':
			seed = strtoull(optarg, NULL, 0);
			break;
		default:
			fprintf(stderr, "usage: %s [-n CALLS] [-s SEED]\n",
				argv[0]);
			exit(KSFT_FAIL);
		}
	}
	ksft_print_header();
	KVMI_REQUIRE();
	ksft_set_plan(1);
	ksft_print_msg("seed %lu, %lu calls\n", seed, target);
	rng_state = seed | 1;
	TEST_ASSERT(!sigaction(SIGUSR1, &sa, NULL), "sigaction");

	targets_init(&f.tg);
	f.vm = vm_create_with_vcpus(NR_VCPUS, guest_code, vcpus);
	vm_install_exception_handler(f.vm, BP_VECTOR, guest_bp_handler);
	f.mem_size = (f.vm->max_gfn + 1) * f.vm->page_size;
	for (i = 0; i < DATA_PAGES; i++) {
		f.data[i] = addr_gva2hva(f.vm, (vm_vaddr_t)guest_data[i]);
		f.data_gpa[i] = addr_gva2gpa(f.vm, (vm_vaddr_t)guest_data[i]);
		rnd_bytes(f.data[i], sizeof(guest_data[i]));
	}
	for (i = 0; i < DATA_PAGES; i++)
		memcpy(&sums[i * 4096], f.data[i], 4096);
	f.scratch = addr_gva2hva(f.vm, (vm_vaddr_t)guest_scratch);
	f.scratch_gpa = addr_gva2gpa(f.vm, (vm_vaddr_t)guest_scratch);
	for (i = 0; i < NR_EVENTFDS; i++) {
		f.efd[i] = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
		TEST_ASSERT(f.efd[i] >= 0, "eventfd");
	}
	f.closed_fd = dup(f.efd[0]);
	close(f.closed_fd);
	TEST_ASSERT(!ioctl(f.vm->fd, KVM_INTROSPECTION_SET_DEADLINE, &dl),
		    "SET_DEADLINE: %s", strerror(errno));
	reopen(&f);

	for (i = 0; i < NR_VCPUS; i++) {
		r[i].vcpu = vcpus[i];
		pthread_create(&r[i].thread, NULL, runner_fn, &r[i]);
	}

	while (f.calls < target) {
		uint32_t what = rnd_below(10);

		if (what < 8)
			fuzz_kvmi(&f);
		else if (what < 9)
			fuzz_phys(&f);
		else
			fuzz_vm(&f);
		if (f.calls % 5000 == 0)
			ksft_print_msg("%lu calls\n", f.calls);
		/* Detached by a forced UNHOOK, or time for a new one. */
		if (f.calls % REOPEN_EVERY == 0 ||
		    (READ_ONCE(f.vs->flags) & KVMI_VM_DETACHED))
			reopen(&f);
	}

	/* A new introspection works: the fd answers, the vCPUs have run. */
	reopen(&f);
	kvmi_get_version(f.fd, &(struct kvmi_version){});
	for (i = 0; i < NR_VCPUS; i++) {
		__atomic_store_n(&r[i].stop, true, __ATOMIC_RELEASE);
		while (pthread_tryjoin_np(r[i].thread, NULL)) {
			pthread_kill(r[i].thread, SIGUSR1);
			usleep(1000);
		}
		TEST_ASSERT(r[i].runs > 0, "vCPU %u never ran", i);
	}

	/* No write went astray into the data pages. */
	for (i = 0; i < DATA_PAGES; i++)
		TEST_ASSERT(!memcmp(f.data[i], &sums[i * 4096], 4096),
			    "guest data page %u changed", i);
	ksft_print_msg("%lu calls, %lu succeeded; %lu physical reads and writes compared\n",
		       f.calls, f.ok, f.phys_checked);
	for (i = 0; i < 256; i++)
		if (f.errs[i])
			ksft_print_msg("  %-4s %lu\n", strerrorname_np(i),
				       f.errs[i]);
	munmap(f.vs, getpagesize());
	close(f.fd);
	kvm_vm_free(f.vm);
	ksft_test_result_pass("%lu random ioctl calls\n", f.calls);
	ksft_finished();
}
