// SPDX-License-Identifier: GPL-2.0-only
/*
 * kvmi-ring: the VM-wide commands READ_PHYSICAL, WRITE_PHYSICAL and
 * SHUTDOWN_GUEST (Documentation/virt/kvm/kvmi.rst, sections 7.13 and
 * 7.14): guest memory read and written across pages while the vCPU runs,
 * from the tool's process or another one, and the guest shut down.
 */
#include <pthread.h>
#include <sys/eventfd.h>
#include <sys/wait.h>

#include "kselftest_harness.h"
#include "kvmi_util.h"
#include "processor.h"
#include "ucall_common.h"

#define TEST_GPA	0x10000000ULL
#define TEST_GVA	0x10000000ULL
#define TEST_PAGES	8
#define TEST_SLOT	10
#define MAGIC		0x6b766d692d72696eULL

enum {
	OP_FILL,	/* fill the test pages with a pattern */
	OP_WAIT_FLAG,	/* spin until the tool writes MAGIC at the start */
	OP_SPIN,	/* spin for ever */
};

static int op;

static uint8_t pattern(uint64_t off)
{
	return (uint8_t)(off * 7 + (off >> 12));
}

static void guest_code(void)
{
	uint64_t *flag = (uint64_t *)TEST_GVA;
	uint8_t *p = (uint8_t *)TEST_GVA;
	uint64_t i;

	switch (op) {
	case OP_FILL:
		for (i = 0; i < TEST_PAGES * PAGE_SIZE; i++)
			p[i] = pattern(i);
		break;
	case OP_WAIT_FLAG:
		while (READ_ONCE(*flag) != MAGIC)
			cpu_relax();
		break;
	case OP_SPIN:
		for (;;)
			cpu_relax();
	}
	GUEST_SYNC(0);
	GUEST_DONE();
}

FIXTURE(mem) {
	struct kvm_vm *vm;
	struct kvm_vcpu *vcpu;
	int fd;
	uint8_t *hva;
	struct kvmi_runner r;
};

KVMI_TRANSPORT_VARIANTS(mem);

FIXTURE_SETUP(mem)
{
	KVMI_REQUIRE();
	kvmi_use_transport(variant->transport);
	self->vm = vm_create_with_one_vcpu(&self->vcpu, guest_code);
	vm_userspace_mem_region_add(self->vm, VM_MEM_SRC_ANONYMOUS, TEST_GPA,
				    TEST_SLOT, TEST_PAGES, 0);
	virt_map(self->vm, TEST_GVA, TEST_GPA, TEST_PAGES);
	self->hva = addr_gpa2hva(self->vm, TEST_GPA);
	self->fd = kvmi_open(self->vm);
	self->r.joined = true;
}

FIXTURE_TEARDOWN(mem)
{
	if (self->fd >= 0)
		close(self->fd);
	if (!self->r.joined)
		kvmi_runner_join(&self->r);
	kvm_vm_free(self->vm);
}

static void start(struct __test_metadata *_metadata, FIXTURE_DATA(mem) *self,
		  int guest_op)
{
	op = guest_op;
	sync_global_to_guest(self->vm, op);
	kvmi_runner_start(&self->r, self->vcpu);
}

static int physical(int fd, unsigned long ioc, uint64_t gpa, uint64_t size,
		    void *buf)
{
	struct kvmi_physical ph = {
		.gpa = gpa,
		.size = size,
		.buffer = (uint64_t)buf,
	};

	return ioctl(fd, ioc, &ph);
}

/* A read across pages, at odd offsets, sees what the guest wrote. */
TEST_F(mem, read_across_pages)
{
	uint64_t off = PAGE_SIZE - 13, size = 3 * PAGE_SIZE + 29, i;
	uint8_t *buf = malloc(size);

	ASSERT_NE(NULL, buf);
	start(_metadata, self, OP_FILL);
	kvmi_runner_join(&self->r);
	ASSERT_EQ(UCALL_SYNC, self->r.ucall);
	ASSERT_EQ(0, physical(self->fd, KVMI_IOCTL_READ_PHYSICAL,
			      TEST_GPA + off, size, buf));
	for (i = 0; i < size; i++)
		ASSERT_EQ(pattern(off + i), buf[i]);
	free(buf);
}

/* A write across pages lands in guest memory, nothing around it. */
TEST_F(mem, write_across_pages)
{
	uint64_t off = 2 * PAGE_SIZE - 100, size = 2 * PAGE_SIZE + 300, i;
	uint8_t *buf = malloc(size);

	ASSERT_NE(NULL, buf);
	memset(self->hva, 0x5a, TEST_PAGES * PAGE_SIZE);
	for (i = 0; i < size; i++)
		buf[i] = pattern(i);
	ASSERT_EQ(0, physical(self->fd, KVMI_IOCTL_WRITE_PHYSICAL,
			      TEST_GPA + off, size, buf));
	for (i = 0; i < size; i++)
		ASSERT_EQ(pattern(i), self->hva[off + i]);
	ASSERT_EQ(0x5a, self->hva[off - 1]);
	ASSERT_EQ(0x5a, self->hva[off + size]);
	free(buf);
}

/* The vCPU runs while the tool writes: the guest sees the write. */
TEST_F(mem, write_while_running)
{
	uint64_t magic = MAGIC;

	memset(self->hva, 0, PAGE_SIZE);
	start(_metadata, self, OP_WAIT_FLAG);
	ASSERT_EQ(0, physical(self->fd, KVMI_IOCTL_WRITE_PHYSICAL, TEST_GPA,
			      sizeof(magic), &magic));
	kvmi_runner_join(&self->r);
	ASSERT_EQ(0, self->r.ret);
	ASSERT_EQ(UCALL_SYNC, self->r.ucall);
}

/* Another process (another mm) reads through the VM's address space. */
TEST_F(mem, read_from_other_process)
{
	pid_t pid;
	int status;

	memcpy(self->hva + 8, "kvmi-ring", 10);
	pid = fork();
	ASSERT_LE(0, pid);
	if (!pid) {
		char buf[10] = {};

		/* A fresh mm: the parent's mapping means nothing here. */
		munmap(self->hva, TEST_PAGES * PAGE_SIZE);
		if (physical(self->fd, KVMI_IOCTL_READ_PHYSICAL, TEST_GPA + 8,
			     sizeof(buf), buf))
			_exit(1);
		_exit(memcmp(buf, "kvmi-ring", 10) ? 2 : 0);
	}
	ASSERT_EQ(pid, waitpid(pid, &status, 0));
	ASSERT_TRUE(WIFEXITED(status));
	ASSERT_EQ(0, WEXITSTATUS(status));
}

TEST_F(mem, bad_arguments)
{
	struct kvmi_physical ph = {
		.gpa = TEST_GPA,
		.size = 8,
	};
	uint64_t buf = 0;

	ph.buffer = (uint64_t)&buf;
	ph.flags = 1;
	ASSERT_EQ(-1, ioctl(self->fd, KVMI_IOCTL_READ_PHYSICAL, &ph));
	ASSERT_EQ(EINVAL, errno);
	ph.flags = 0;
	ph.padding = 1;
	ASSERT_EQ(-1, ioctl(self->fd, KVMI_IOCTL_WRITE_PHYSICAL, &ph));
	ASSERT_EQ(EINVAL, errno);
	/* A range that wraps. */
	ASSERT_EQ(-1, physical(self->fd, KVMI_IOCTL_READ_PHYSICAL, -4ULL, 8,
			       &buf));
	ASSERT_EQ(EINVAL, errno);
	/* Not guest memory, or only in part. */
	ASSERT_EQ(-1, physical(self->fd, KVMI_IOCTL_READ_PHYSICAL,
			       1ULL << 40, 8, &buf));
	ASSERT_EQ(ENOENT, errno);
	ASSERT_EQ(-1, physical(self->fd, KVMI_IOCTL_READ_PHYSICAL,
			       TEST_GPA + TEST_PAGES * PAGE_SIZE - 4, 8, &buf));
	ASSERT_EQ(ENOENT, errno);
	/* A bad buffer. */
	ASSERT_EQ(-1, physical(self->fd, KVMI_IOCTL_READ_PHYSICAL, TEST_GPA, 8,
			       NULL));
	ASSERT_EQ(EFAULT, errno);
	ASSERT_EQ(-1, physical(self->fd, KVMI_IOCTL_WRITE_PHYSICAL, TEST_GPA,
			       8, NULL));
	ASSERT_EQ(EFAULT, errno);
	/* Nothing to do. */
	ASSERT_EQ(0, physical(self->fd, KVMI_IOCTL_READ_PHYSICAL, TEST_GPA, 0,
			      NULL));
}

static int shutdown_guest(int fd, uint32_t flags, uint32_t padding)
{
	struct kvmi_shutdown sd = { .flags = flags, .padding = padding };

	return ioctl(fd, KVMI_IOCTL_SHUTDOWN_GUEST, &sd);
}

/* A running vCPU leaves KVM_RUN with a shutdown. */
TEST_F(mem, shutdown_running_guest)
{
	start(_metadata, self, OP_SPIN);
	ASSERT_EQ(0, shutdown_guest(self->fd, 0, 0));
	kvmi_runner_join(&self->r);
	ASSERT_EQ(0, self->r.ret);
	ASSERT_EQ(KVM_EXIT_SYSTEM_EVENT, self->r.exit_reason);
	ASSERT_EQ(KVM_SYSTEM_EVENT_SHUTDOWN,
		  self->vcpu->run->system_event.type);
}

/* A vCPU waiting in an event ends it with its default action first. */
TEST_F(mem, shutdown_ends_pending_event)
{
	struct kvmi_pause_vcpu pv = { .vcpu = 0 };
	struct kvmi_maps m;
	uint32_t s;

	kvmi_map_all(self->fd, &m);
	__atomic_or_fetch(&kvmi_tool_state(&m, 0)->flags, KVMI_TOOL_POLLING,
			  __ATOMIC_RELAXED);
	start(_metadata, self, OP_SPIN);
	ASSERT_EQ(0, ioctl(self->fd, KVMI_IOCTL_PAUSE_VCPU, &pv));
	s = kvmi_wait_event(&m, 0, -1, 0);
	ASSERT_EQ(KVMI_EVENT_PAUSE, kvmi_event_slot(&m, 0)->id);
	ASSERT_EQ(0, shutdown_guest(self->fd, 0, 0));
	kvmi_runner_join(&self->r);
	ASSERT_EQ(KVM_EXIT_SYSTEM_EVENT, self->r.exit_reason);
	ASSERT_EQ(KVM_SYSTEM_EVENT_SHUTDOWN,
		  self->vcpu->run->system_event.type);
	ASSERT_EQ(s, kvmi_vcpu_state(&m, 0)->done_seq);
	ASSERT_EQ(KVMI_DONE_DETACH, kvmi_vcpu_state(&m, 0)->done_reason);
	kvmi_unmap_all(&m);
}

TEST_F(mem, shutdown_bad_arguments)
{
	ASSERT_EQ(-1, shutdown_guest(self->fd, 1, 0));
	ASSERT_EQ(EINVAL, errno);
	ASSERT_EQ(-1, shutdown_guest(self->fd, 0, 1));
	ASSERT_EQ(EINVAL, errno);
}

TEST_HARNESS_MAIN
