// SPDX-License-Identifier: GPL-2.0-only
/*
 * kvmi-ring: zero-copy mappings of guest pages into the tool
 * (Documentation/virt/kvm/kvmi.rst, section 21): map windows,
 * KVMI_IOCTL_MAP_PHYSICAL_PAGE_TO_SVA and UNMAP_PHYSICAL_PAGE_FROM_SVA,
 * for anonymous, shmem and hugetlbfs guest memory. The guest sees what
 * the tool writes through a mapping and the tool what the guest writes;
 * every kind of change of the guest memory under a mapping ends it (the
 * next access raises SIGBUS); bad arguments are refused.
 */
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <sys/wait.h>

#include "kselftest_harness.h"
#include "kvmi_util.h"
#include "processor.h"
#include "ucall_common.h"

#define TEST_GPA	0x10000000ULL
#define TEST_GVA	0x10000000ULL
#define TEST_PAGES	512	/* 2 MiB: one huge page */
#define TEST_SIZE	(TEST_PAGES * PAGE_SIZE)
#define TEST_SLOT	10
#define RO_GPA		0x20000000ULL
#define RO_SLOT		11
#define HOLE_GPA	0x30000000ULL	/* in no memslot */
#define WIN_PAGES	16
#define MAGIC		0x6b766d692d737661ULL

enum {
	OP_FILL,	/* fill the test pages with a pattern */
	OP_WAIT_FLAG,	/* spin until the tool writes MAGIC at page 3 */
};

static int op;

static uint8_t pattern(uint64_t off)
{
	return (uint8_t)(off * 13 + (off >> 12) + 1);
}

static void guest_code(void)
{
	uint64_t *flag = (uint64_t *)(TEST_GVA + 3 * PAGE_SIZE);
	uint8_t *p = (uint8_t *)TEST_GVA;
	uint64_t i;

	switch (op) {
	case OP_FILL:
		for (i = 0; i < WIN_PAGES * PAGE_SIZE; i++)
			p[i] = pattern(i);
		break;
	case OP_WAIT_FLAG:
		while (READ_ONCE(*flag) != MAGIC)
			cpu_relax();
		/* Answer where the tool looks next. */
		WRITE_ONCE(flag[1], MAGIC + 1);
		break;
	}
	GUEST_SYNC(0);
	GUEST_DONE();
}

static sigjmp_buf sigbus_jmp;

static void sigbus_handler(int sig)
{
	siglongjmp(sigbus_jmp, 1);
}

/* Whether accessing *p (writing @val if @write) raises SIGBUS. */
static bool access_faults(volatile uint8_t *p, bool write, uint8_t val)
{
	struct sigaction sa = { .sa_handler = sigbus_handler }, old;
	bool faulted = false;

	sigaction(SIGBUS, &sa, &old);
	if (sigsetjmp(sigbus_jmp, 1))
		faulted = true;
	else if (write)
		*p = val;
	else
		(void)*p;
	sigaction(SIGBUS, &old, NULL);
	return faulted;
}

static bool read_faults(void *p)
{
	return access_faults(p, false, 0);
}

/* Read *p into *v; whether that raised SIGBUS instead. */
static bool read_byte(volatile uint8_t *p, uint8_t *v)
{
	struct sigaction sa = { .sa_handler = sigbus_handler }, old;
	bool faulted = false;

	sigaction(SIGBUS, &sa, &old);
	if (sigsetjmp(sigbus_jmp, 1))
		faulted = true;
	else
		*v = *p;
	sigaction(SIGBUS, &old, NULL);
	return faulted;
}

static int sva(int fd, bool map, struct kvmi_sva_entry *e, uint32_t n,
	       uint32_t *done)
{
	struct kvmi_sva_batch b = {
		.entries = (uint64_t)e,
		.count = n,
	};
	int r;

	r = ioctl(fd, map ? KVMI_IOCTL_MAP_PHYSICAL_PAGE_TO_SVA :
			    KVMI_IOCTL_UNMAP_PHYSICAL_PAGE_FROM_SVA, &b);
	if (done)
		*done = b.done;
	return r;
}

/* Map one page; 0 or -errno. */
static int map1(int fd, uint64_t gpa, void *addr, uint32_t flags)
{
	struct kvmi_sva_entry e = {
		.gpa = gpa,
		.address = (uint64_t)addr,
		.flags = flags,
	};

	return sva(fd, true, &e, 1, NULL) ? -errno : 0;
}

static int unmap1(int fd, void *addr)
{
	struct kvmi_sva_entry e = { .address = (uint64_t)addr };

	return sva(fd, false, &e, 1, NULL) ? -errno : 0;
}

/* Reserve a few huge pages if there are none; false if impossible. */
static bool have_huge_pages(void)
{
	const char *path = "/proc/sys/vm/nr_hugepages";
	unsigned long n = 0;
	FILE *f = fopen(path, "r");

	if (f) {
		if (fscanf(f, "%lu", &n) != 1)
			n = 0;
		fclose(f);
	}
	if (n < 4) {
		f = fopen(path, "w");
		if (!f)
			return false;
		fprintf(f, "8\n");
		fclose(f);
		f = fopen(path, "r");
		if (!f || fscanf(f, "%lu", &n) != 1)
			n = 0;
		if (f)
			fclose(f);
	}
	return n >= 4;
}

FIXTURE(sva) {
	struct kvm_vm *vm;
	struct kvm_vcpu *vcpu;
	int fd;
	struct kvmi_layout lo;
	uint8_t *hva;
	uint8_t *win;
	size_t win_size;
	struct kvmi_runner r;
};

FIXTURE_VARIANT(sva) {
	enum vm_mem_backing_src_type src;
	uint32_t slot_flags;
};

FIXTURE_VARIANT_ADD(sva, anonymous) {
	.src = VM_MEM_SRC_ANONYMOUS,
};

FIXTURE_VARIANT_ADD(sva, shmem) {
	.src = VM_MEM_SRC_SHMEM,
};

FIXTURE_VARIANT_ADD(sva, hugetlb) {
	.src = VM_MEM_SRC_ANONYMOUS_HUGETLB,
};

FIXTURE_VARIANT_ADD(sva, logged) {
	.src = VM_MEM_SRC_ANONYMOUS,
	.slot_flags = KVM_MEM_LOG_DIRTY_PAGES,
};

FIXTURE_SETUP(sva)
{
	struct kvmi_version ver;

	self->fd = -1;
	self->r.joined = true;
	KVMI_REQUIRE();
	if (variant->src == VM_MEM_SRC_ANONYMOUS_HUGETLB)
		TEST_REQUIRE(have_huge_pages());

	self->vm = vm_create_with_one_vcpu(&self->vcpu, guest_code);
	vm_userspace_mem_region_add(self->vm, variant->src, TEST_GPA,
				    TEST_SLOT, TEST_PAGES, variant->slot_flags);
	virt_map(self->vm, TEST_GVA, TEST_GPA, TEST_PAGES);
	self->hva = addr_gpa2hva(self->vm, TEST_GPA);
	self->fd = kvmi_open(self->vm);

	kvmi_get_version(self->fd, &ver);
	TEST_REQUIRE(ver.features & KVMI_FEATURE_SVA);
	kvmi_get_layout(self->fd, &self->lo);
	ASSERT_EQ(sizeof(self->lo), self->lo.size);
	ASSERT_EQ(0, self->lo.sva_offset % getpagesize());
	ASSERT_LE(WIN_PAGES * PAGE_SIZE, self->lo.sva_size);

	self->win_size = WIN_PAGES * PAGE_SIZE;
	self->win = mmap(NULL, self->win_size, PROT_READ | PROT_WRITE,
			 MAP_SHARED, self->fd, self->lo.sva_offset);
	ASSERT_NE(MAP_FAILED, self->win);
}

FIXTURE_TEARDOWN(sva)
{
	if (!self->r.joined)
		kvmi_runner_join(&self->r);
	if (self->win && self->win != MAP_FAILED)
		munmap(self->win, self->win_size);
	if (self->fd >= 0)
		close(self->fd);
	if (self->vm)
		kvm_vm_free(self->vm);
}

static void start(struct __test_metadata *_metadata, FIXTURE_DATA(sva) *self,
		  int guest_op)
{
	op = guest_op;
	sync_global_to_guest(self->vm, op);
	kvmi_runner_start(&self->r, self->vcpu);
}

static void join(struct __test_metadata *_metadata, FIXTURE_DATA(sva) *self)
{
	kvmi_runner_join(&self->r);
	ASSERT_EQ(0, self->r.ret);
	ASSERT_EQ(UCALL_SYNC, self->r.ucall);
}

/* Map the first WIN_PAGES guest pages at the window, in one batch. */
static void map_all(struct __test_metadata *_metadata,
		    FIXTURE_DATA(sva) *self, uint32_t flags)
{
	struct kvmi_sva_entry e[WIN_PAGES] = {};
	uint32_t done = 0;
	int i;

	for (i = 0; i < WIN_PAGES; i++) {
		e[i].gpa = TEST_GPA + i * PAGE_SIZE;
		e[i].address = (uint64_t)self->win + i * PAGE_SIZE;
		e[i].flags = flags;
	}
	ASSERT_EQ(0, sva(self->fd, true, e, WIN_PAGES, &done));
	ASSERT_EQ(WIN_PAGES, done);
}

TEST_F(sva, fresh_window_raises_sigbus)
{
	ASSERT_TRUE(read_faults(self->win));
	ASSERT_TRUE(read_faults(self->win + self->win_size - 1));
	ASSERT_TRUE(access_faults(self->win + PAGE_SIZE, true, 1));
}

/* Mapped before the guest writes: the tool sees the guest's writes. */
TEST_F(sva, tool_sees_guest_writes)
{
	uint64_t i;

	map_all(_metadata, self, 0);
	start(_metadata, self, OP_FILL);
	join(_metadata, self);
	for (i = 0; i < WIN_PAGES * PAGE_SIZE; i++)
		ASSERT_EQ(pattern(i), self->win[i]);
}

/* The guest spins on a word until the tool writes it through a mapping. */
TEST_F(sva, guest_sees_tool_writes)
{
	uint64_t *flag = (uint64_t *)(self->win + 3 * PAGE_SIZE);

	ASSERT_EQ(0, map1(self->fd, TEST_GPA + 3 * PAGE_SIZE, flag,
			  KVMI_SVA_WRITE));
	start(_metadata, self, OP_WAIT_FLAG);
	WRITE_ONCE(*flag, MAGIC);
	join(_metadata, self);
	ASSERT_EQ(MAGIC + 1, READ_ONCE(flag[1]));
	ASSERT_EQ(MAGIC, *(uint64_t *)(self->hva + 3 * PAGE_SIZE));
}

TEST_F(sva, read_only_mapping_refuses_writes)
{
	uint8_t *p = self->win + 2 * PAGE_SIZE;

	self->hva[2 * PAGE_SIZE] = 0x5a;
	ASSERT_EQ(0, map1(self->fd, TEST_GPA + 2 * PAGE_SIZE, p, 0));
	ASSERT_EQ(0x5a, *p);
	ASSERT_TRUE(access_faults(p, true, 0xa5));
	ASSERT_EQ(0x5a, self->hva[2 * PAGE_SIZE]);
}

TEST_F(sva, unmap_raises_sigbus)
{
	map_all(_metadata, self, KVMI_SVA_WRITE);
	self->hva[PAGE_SIZE] = 0x11;
	ASSERT_EQ(0x11, self->win[PAGE_SIZE]);
	ASSERT_EQ(0, unmap1(self->fd, self->win + PAGE_SIZE));
	ASSERT_TRUE(read_faults(self->win + PAGE_SIZE));
	ASSERT_FALSE(read_faults(self->win));
	/* Unmapping an empty address is not an error. */
	ASSERT_EQ(0, unmap1(self->fd, self->win + PAGE_SIZE));
}

/*
 * One guest page at two addresses, read-only and writable: a write through
 * the writable one is seen through the other, never a stale copy.
 */
TEST_F(sva, same_page_twice)
{
	uint8_t *ro = self->win + 4 * PAGE_SIZE, *rw = self->win + 5 * PAGE_SIZE;
	uint8_t v;

	ASSERT_EQ(0, map1(self->fd, TEST_GPA + 4 * PAGE_SIZE, ro, 0));
	ASSERT_EQ(0, map1(self->fd, TEST_GPA + 4 * PAGE_SIZE, rw,
			  KVMI_SVA_WRITE));
	rw[7] = 0x3c;
	ASSERT_EQ(0x3c, self->hva[4 * PAGE_SIZE + 7]);
	if (!read_byte(ro + 7, &v))
		ASSERT_EQ(0x3c, v);
}

/* Mapping another page at an address replaces the first. */
TEST_F(sva, map_replaces)
{
	self->hva[0] = 0x21;
	self->hva[PAGE_SIZE] = 0x22;
	ASSERT_EQ(0, map1(self->fd, TEST_GPA, self->win, 0));
	ASSERT_EQ(0x21, self->win[0]);
	ASSERT_EQ(0, map1(self->fd, TEST_GPA + PAGE_SIZE, self->win, 0));
	ASSERT_EQ(0x22, self->win[0]);
}

TEST_F(sva, madv_dontneed_raises_sigbus)
{
	map_all(_metadata, self, 0);
	self->hva[0] = 1;
	ASSERT_EQ(1, self->win[0]);
	ASSERT_EQ(0, madvise(self->hva, TEST_SIZE, MADV_DONTNEED));
	ASSERT_TRUE(read_faults(self->win));
	ASSERT_TRUE(read_faults(self->win + (WIN_PAGES - 1) * PAGE_SIZE));
	/* Mapped again, the tool sees the page the guest has now. */
	self->hva[0] = 2;
	ASSERT_EQ(0, map1(self->fd, TEST_GPA, self->win, 0));
	ASSERT_EQ(2, self->win[0]);
}

TEST_F(sva, vmm_munmap_raises_sigbus)
{
	map_all(_metadata, self, 0);
	ASSERT_FALSE(read_faults(self->win));
	ASSERT_EQ(0, munmap(self->hva, TEST_SIZE));
	ASSERT_TRUE(read_faults(self->win));
	ASSERT_TRUE(read_faults(self->win + PAGE_SIZE));
	/* Nothing there to pin any more. */
	ASSERT_EQ(-EFAULT, map1(self->fd, TEST_GPA, self->win, 0));
}

TEST_F(sva, memslot_delete_raises_sigbus)
{
	map_all(_metadata, self, 0);
	ASSERT_FALSE(read_faults(self->win));
	vm_mem_region_delete(self->vm, TEST_SLOT);
	ASSERT_TRUE(read_faults(self->win));
	ASSERT_TRUE(read_faults(self->win + PAGE_SIZE));
	ASSERT_EQ(-ENOENT, map1(self->fd, TEST_GPA, self->win, 0));
}

TEST_F(sva, memslot_move_raises_sigbus)
{
	map_all(_metadata, self, 0);
	ASSERT_FALSE(read_faults(self->win));
	vm_mem_region_move(self->vm, TEST_SLOT, TEST_GPA + 0x40000000ULL);
	ASSERT_TRUE(read_faults(self->win));
	ASSERT_EQ(-ENOENT, map1(self->fd, TEST_GPA, self->win, 0));
	ASSERT_EQ(0, map1(self->fd, TEST_GPA + 0x40000000ULL, self->win, 0));
	ASSERT_FALSE(read_faults(self->win));
}

/* The fd and the window outlive the VM: SIGBUS, then -ENODEV. */
TEST_F(sva, vm_destroy_raises_sigbus)
{
	map_all(_metadata, self, KVMI_SVA_WRITE);
	ASSERT_FALSE(read_faults(self->win));
	kvm_vm_free(self->vm);
	self->vm = NULL;
	ASSERT_TRUE(read_faults(self->win));
	ASSERT_TRUE(read_faults(self->win + PAGE_SIZE));
	ASSERT_EQ(-ENODEV, map1(self->fd, TEST_GPA, self->win, 0));
}

/* Unmapping the window drops its mappings; a new window starts empty. */
TEST_F(sva, window_munmap_and_remap)
{
	map_all(_metadata, self, 0);
	ASSERT_EQ(0, munmap(self->win, self->win_size));
	self->win = mmap(NULL, self->win_size, PROT_READ | PROT_WRITE,
			 MAP_SHARED, self->fd, self->lo.sva_offset);
	ASSERT_NE(MAP_FAILED, self->win);
	ASSERT_TRUE(read_faults(self->win));
	ASSERT_EQ(0, map1(self->fd, TEST_GPA, self->win, 0));
	ASSERT_FALSE(read_faults(self->win));
}

TEST_F(sva, dirty_log)
{
	unsigned long *bm = calloc(TEST_PAGES / 64, sizeof(long));

	if (!(variant->slot_flags & KVM_MEM_LOG_DIRTY_PAGES))
		SKIP(return, "only the logged variant logs dirty pages");
	ASSERT_NE(NULL, bm);
	kvm_vm_get_dirty_log(self->vm, TEST_SLOT, bm);

	/* A read-only mapping dirties nothing. */
	ASSERT_EQ(0, map1(self->fd, TEST_GPA + 5 * PAGE_SIZE,
			  self->win + PAGE_SIZE, 0));
	ASSERT_EQ(0, unmap1(self->fd, self->win + PAGE_SIZE));
	kvm_vm_get_dirty_log(self->vm, TEST_SLOT, bm);
	ASSERT_FALSE(bm[0] & (1UL << 5));

	/* A writable one: when it is made and when it ends. */
	ASSERT_EQ(0, map1(self->fd, TEST_GPA + 5 * PAGE_SIZE, self->win,
			  KVMI_SVA_WRITE));
	kvm_vm_get_dirty_log(self->vm, TEST_SLOT, bm);
	ASSERT_TRUE(bm[0] & (1UL << 5));
	self->win[7] = 0x77;
	ASSERT_EQ(0, unmap1(self->fd, self->win));
	kvm_vm_get_dirty_log(self->vm, TEST_SLOT, bm);
	ASSERT_TRUE(bm[0] & (1UL << 5));
	ASSERT_EQ(0x77, self->hva[5 * PAGE_SIZE + 7]);
	free(bm);
}

TEST_F(sva, refused_arguments)
{
	struct kvmi_sva_entry e = {
		.gpa = TEST_GPA,
		.address = (uint64_t)self->win,
	};
	struct kvmi_sva_batch b = {};
	uint8_t *plain;
	uint32_t done;
	int bit;

	ASSERT_EQ(-ENOENT, map1(self->fd, HOLE_GPA, self->win, 0));
	ASSERT_EQ(-EINVAL, map1(self->fd, TEST_GPA + 1, self->win, 0));
	ASSERT_EQ(-EINVAL, map1(self->fd, TEST_GPA, self->win + 1, 0));
	ASSERT_EQ(-EINVAL, map1(self->fd, TEST_GPA,
			       self->win + self->win_size, 0));
	plain = mmap(NULL, PAGE_SIZE, PROT_READ | PROT_WRITE,
		     MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	ASSERT_NE(MAP_FAILED, plain);
	ASSERT_EQ(-EINVAL, map1(self->fd, TEST_GPA, plain, 0));
	ASSERT_EQ(-EINVAL, unmap1(self->fd, plain));
	munmap(plain, PAGE_SIZE);

	for (bit = 1; bit < 32; bit++)
		ASSERT_EQ(-EINVAL, map1(self->fd, TEST_GPA, self->win,
					1U << bit));
	e.padding = 1;
	ASSERT_EQ(-1, sva(self->fd, true, &e, 1, &done));
	ASSERT_EQ(EINVAL, errno);
	ASSERT_EQ(0, done);
	e.padding = 0;
	/* UNMAP reads only the address. */
	ASSERT_EQ(-1, sva(self->fd, false, &e, 1, NULL));
	ASSERT_EQ(EINVAL, errno);

	b.entries = (uint64_t)&e;
	b.count = 1;
	b.flags = 1;
	ASSERT_EQ(-1, ioctl(self->fd, KVMI_IOCTL_MAP_PHYSICAL_PAGE_TO_SVA, &b));
	ASSERT_EQ(EINVAL, errno);
	b.flags = 0;
	b.padding = 1;
	ASSERT_EQ(-1, ioctl(self->fd, KVMI_IOCTL_MAP_PHYSICAL_PAGE_TO_SVA, &b));
	ASSERT_EQ(EINVAL, errno);
	b.padding = 0;
	b.entries = 8;
	ASSERT_EQ(-1, ioctl(self->fd, KVMI_IOCTL_MAP_PHYSICAL_PAGE_TO_SVA, &b));
	ASSERT_EQ(EFAULT, errno);
	/* Nothing was mapped by any of these. */
	ASSERT_TRUE(read_faults(self->win));
}

TEST_F(sva, read_only_memslot)
{
	vm_userspace_mem_region_add(self->vm, VM_MEM_SRC_ANONYMOUS, RO_GPA,
				    RO_SLOT, 1, KVM_MEM_READONLY);
	memset(addr_gpa2hva(self->vm, RO_GPA), 0x3c, PAGE_SIZE);
	ASSERT_EQ(-EPERM, map1(self->fd, RO_GPA, self->win, KVMI_SVA_WRITE));
	ASSERT_EQ(0, map1(self->fd, RO_GPA, self->win, 0));
	ASSERT_EQ(0x3c, self->win[100]);
}

TEST_F(sva, read_only_window)
{
	uint8_t *ro = mmap(NULL, PAGE_SIZE, PROT_READ, MAP_SHARED, self->fd,
			   self->lo.sva_offset);

	ASSERT_NE(MAP_FAILED, ro);
	ASSERT_EQ(-EPERM, map1(self->fd, TEST_GPA, ro, KVMI_SVA_WRITE));
	ASSERT_EQ(0, map1(self->fd, TEST_GPA, ro, 0));
	ASSERT_FALSE(read_faults(ro));
	/* Its protection is fixed. */
	ASSERT_EQ(-1, mprotect(ro, PAGE_SIZE, PROT_READ | PROT_WRITE));
	munmap(ro, PAGE_SIZE);
}

TEST_F(sva, window_mmap_rules)
{
	size_t ps = getpagesize();
	void *p;

	p = mmap(NULL, ps, PROT_READ, MAP_PRIVATE, self->fd,
		 self->lo.sva_offset);
	ASSERT_EQ(MAP_FAILED, p);
	ASSERT_EQ(EINVAL, errno);
	p = mmap(NULL, ps, PROT_READ | PROT_EXEC, MAP_SHARED, self->fd,
		 self->lo.sva_offset);
	ASSERT_EQ(MAP_FAILED, p);
	ASSERT_EQ(EPERM, errno);
	p = mmap(NULL, ps, PROT_READ, MAP_SHARED, self->fd,
		 self->lo.sva_offset + ps);
	ASSERT_EQ(MAP_FAILED, p);
	ASSERT_EQ(EINVAL, errno);
	p = mmap(NULL, self->lo.sva_size + ps, PROT_READ,
		 MAP_SHARED | MAP_NORESERVE, self->fd, self->lo.sva_offset);
	ASSERT_EQ(MAP_FAILED, p);
	ASSERT_EQ(EINVAL, errno);

	/* No split, no move, no new protection. */
	ASSERT_EQ(-1, munmap(self->win + PAGE_SIZE, PAGE_SIZE));
	ASSERT_EQ(-1, mprotect(self->win, self->win_size, PROT_READ));
	p = mremap(self->win, self->win_size, self->win_size * 2,
		   MREMAP_MAYMOVE);
	ASSERT_EQ(MAP_FAILED, p);
}

/* A batch stops at the first bad entry and says how far it went. */
TEST_F(sva, batch_partial_failure)
{
	struct kvmi_sva_entry e[4] = {};
	uint32_t done = 99;
	int i;

	for (i = 0; i < 4; i++) {
		e[i].gpa = TEST_GPA + i * PAGE_SIZE;
		e[i].address = (uint64_t)self->win + i * PAGE_SIZE;
		self->hva[i * PAGE_SIZE] = 0x40 + i;
	}
	e[2].gpa = HOLE_GPA;
	ASSERT_EQ(-1, sva(self->fd, true, e, 4, &done));
	ASSERT_EQ(ENOENT, errno);
	ASSERT_EQ(2, done);
	ASSERT_EQ(0x40, self->win[0]);
	ASSERT_EQ(0x41, self->win[PAGE_SIZE]);
	ASSERT_TRUE(read_faults(self->win + 2 * PAGE_SIZE));
	ASSERT_TRUE(read_faults(self->win + 3 * PAGE_SIZE));

	for (i = 0; i < 4; i++)
		e[i].gpa = 0;
	ASSERT_EQ(0, sva(self->fd, false, e, 4, &done));
	ASSERT_EQ(4, done);
	ASSERT_TRUE(read_faults(self->win));
}

/*
 * The window is not inherited; the parent's read-only mappings survive the
 * fork, its writable ones not (fork write-protects the VMM's private
 * memory).
 */
TEST_F(sva, fork_does_not_copy)
{
	int status;
	pid_t pid;

	ASSERT_EQ(0, map1(self->fd, TEST_GPA, self->win, 0));
	ASSERT_EQ(0, map1(self->fd, TEST_GPA + PAGE_SIZE,
			  self->win + PAGE_SIZE, KVMI_SVA_WRITE));
	pid = fork();
	ASSERT_LE(0, pid);
	if (!pid) {
		struct sigaction sa = { .sa_handler = SIG_DFL };

		sigaction(SIGSEGV, &sa, NULL);
		(void)READ_ONCE(self->win[0]);
		_exit(0);
	}
	ASSERT_EQ(pid, waitpid(pid, &status, 0));
	ASSERT_TRUE(WIFSIGNALED(status));
	ASSERT_EQ(SIGSEGV, WTERMSIG(status));
	/* hugetlbfs invalidates (MMU_NOTIFY_CLEAR) what it write-protects. */
	if (variant->src != VM_MEM_SRC_ANONYMOUS_HUGETLB)
		ASSERT_FALSE(read_faults(self->win));
	if (variant->src != VM_MEM_SRC_SHMEM)
		ASSERT_TRUE(read_faults(self->win + PAGE_SIZE));
}

#define NESTED_GPA	0x40000000ULL
#define NESTED_SLOT	12

/* A guest of the second VM: reports the word at NESTED_GPA, again and again. */
static void nested_guest_code(void)
{
	for (;;)
		GUEST_SYNC(READ_ONCE(*(uint64_t *)NESTED_GPA));
}

static uint64_t nested_read(struct __test_metadata *_metadata,
			    struct kvm_vcpu *vcpu)
{
	struct ucall uc;

	vcpu_run(vcpu);
	ASSERT_EQ(UCALL_SYNC, get_ucall(vcpu, &uc));
	return uc.args[1];
}

/*
 * A second VM whose memslot is backed by the window: what its guest sees
 * follows the mappings, because vm_replace_page() calls the window's MMU
 * notifiers (KVM's, here) when it replaces a page.
 */
TEST_F(sva, window_backs_another_vm)
{
	struct kvm_vcpu *vcpu2;
	struct kvm_vm *vm2;

	/* KVM 6.12 takes no reference on a tail page through a PFNMAP. */
	if (variant->src == VM_MEM_SRC_ANONYMOUS_HUGETLB)
		SKIP(return, "KVM can't map a PFNMAP of a huge page's subpage");
	*(uint64_t *)self->hva = MAGIC;
	*(uint64_t *)(self->hva + PAGE_SIZE) = MAGIC + 1;
	ASSERT_EQ(0, map1(self->fd, TEST_GPA, self->win, 0));

	vm2 = vm_create_with_one_vcpu(&vcpu2, nested_guest_code);
	vm_set_user_memory_region(vm2, NESTED_SLOT, KVM_MEM_READONLY,
				  NESTED_GPA, PAGE_SIZE, self->win);
	virt_map(vm2, NESTED_GPA, NESTED_GPA, 1);
	ASSERT_EQ(MAGIC, nested_read(_metadata, vcpu2));

	ASSERT_EQ(0, map1(self->fd, TEST_GPA + PAGE_SIZE, self->win, 0));
	ASSERT_EQ(MAGIC + 1, nested_read(_metadata, vcpu2));
	kvm_vm_free(vm2);
}

struct churn {
	uint8_t *hva;
	int iterations;
	volatile bool stop;
};

/* The VMM drops and refills its pages: page i holds i + 1, or 0. */
static void *churn_fn(void *arg)
{
	struct churn *c = arg;
	int i, n;

	for (n = 0; n < c->iterations && !c->stop; n++) {
		madvise(c->hva, TEST_SIZE, MADV_DONTNEED);
		for (i = 0; i < WIN_PAGES; i++)
			WRITE_ONCE(c->hva[i * PAGE_SIZE], i + 1);
	}
	return NULL;
}

/*
 * MAP, reads and UNMAP racing with invalidations of the VMM's memory:
 * every read sees SIGBUS, or a byte page i has held; every call succeeds.
 */
TEST_F(sva, races_with_invalidation)
{
	struct kvmi_sva_entry e[WIN_PAGES] = {};
	struct churn c = { .hva = self->hva, .iterations = 50 };
	uint32_t done;
	pthread_t t;
	int i, n;
	uint8_t v;

	for (i = 0; i < WIN_PAGES; i++) {
		e[i].gpa = TEST_GPA + i * PAGE_SIZE;
		e[i].address = (uint64_t)self->win + i * PAGE_SIZE;
		self->hva[i * PAGE_SIZE] = i + 1;
	}
	ASSERT_EQ(0, pthread_create(&t, NULL, churn_fn, &c));
	for (n = 0; n < 50; n++) {
		for (i = 0; i < WIN_PAGES; i++) {
			e[i].gpa = TEST_GPA + i * PAGE_SIZE;
			e[i].flags = n % 2 ? KVMI_SVA_WRITE : 0;
		}
		ASSERT_EQ(0, sva(self->fd, true, e, WIN_PAGES, &done));
		for (i = 0; i < WIN_PAGES; i++) {
			uint8_t *p = self->win + i * PAGE_SIZE;

			if (read_byte(p, &v))
				continue;
			ASSERT_TRUE(v == 0 || v == i + 1);
		}
		for (i = 0; i < WIN_PAGES; i++)
			e[i].gpa = e[i].flags = 0;
		ASSERT_EQ(0, sva(self->fd, false, e, WIN_PAGES, &done));
	}
	c.stop = true;
	pthread_join(t, NULL);
}

/*
 * Private memory (guest_memfd pages with KVM_MEMORY_ATTRIBUTE_PRIVATE)
 * can't be mapped: MAP fails with -EPERM and leaves the address as it
 * was; a shared page of the same guest_memfd-backed memslot maps.
 * Only a KVM_X86_SW_PROTECTED_VM VM has private memory that the L1 VM
 * can run (SEV-SNP and TDX need the hardware).
 */
TEST(private_memory_refused)
{
	const struct vm_shape shape = {
		.mode = VM_MODE_DEFAULT,
		.type = KVM_X86_SW_PROTECTED_VM,
	};
	struct kvmi_version ver;
	struct kvmi_layout lo;
	struct kvm_vcpu *vcpu;
	struct kvm_vm *vm;
	uint8_t *win, *hva;
	int fd;

	KVMI_REQUIRE();
	if (!(kvm_check_cap(KVM_CAP_VM_TYPES) &
	      BIT(KVM_X86_SW_PROTECTED_VM)))
		SKIP(return,
		     "no VM type with private memory: KVM_X86_SW_PROTECTED_VM needs CONFIG_KVM_SW_PROTECTED_VM, off in kernel/configs/kvmi.config, and SEV-SNP/TDX need hardware the L1 VM lacks");
	vm = vm_create_shape_with_one_vcpu(shape, &vcpu, guest_code);
	vm_userspace_mem_region_add(vm, VM_MEM_SRC_SHMEM, TEST_GPA, TEST_SLOT,
				    WIN_PAGES, KVM_MEM_GUEST_MEMFD);
	vm_mem_set_private(vm, TEST_GPA, PAGE_SIZE);
	hva = addr_gpa2hva(vm, TEST_GPA);
	hva[PAGE_SIZE] = 0x5a;

	fd = kvmi_open(vm);
	kvmi_get_version(fd, &ver);
	if (!(ver.features & KVMI_FEATURE_SVA))
		SKIP(goto out, "no KVMI_FEATURE_SVA");
	kvmi_get_layout(fd, &lo);
	win = mmap(NULL, 2 * PAGE_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED,
		   fd, lo.sva_offset);
	ASSERT_NE(MAP_FAILED, win);

	ASSERT_EQ(-EPERM, map1(fd, TEST_GPA, win, 0));
	ASSERT_EQ(-EPERM, map1(fd, TEST_GPA, win, KVMI_SVA_WRITE));
	ASSERT_TRUE(read_faults(win));
	/* Over a live mapping, a refused MAP leaves it in place. */
	ASSERT_EQ(0, map1(fd, TEST_GPA + PAGE_SIZE, win + PAGE_SIZE, 0));
	ASSERT_EQ(-EPERM, map1(fd, TEST_GPA, win + PAGE_SIZE, 0));
	ASSERT_EQ(0x5a, win[PAGE_SIZE]);
	munmap(win, 2 * PAGE_SIZE);
out:
	close(fd);
	kvm_vm_free(vm);
}

TEST_HARNESS_MAIN
