// SPDX-License-Identifier: GPL-2.0-only
/*
 * kvmi-ring: the shared memory of the introspection fd, its permissions,
 * the vCPUs created after the open, and the fd outliving its VM
 * (Documentation/virt/kvm/kvmi.rst, sections 8.1 and 13).
 */
#include <poll.h>
#include <setjmp.h>
#include <signal.h>

#include "kselftest_harness.h"
#include "kvmi_util.h"

FIXTURE(kvmi) {
	struct kvm_vm *vm;
	int fd;
	struct kvmi_layout lo;
};

/* A VM with one vCPU, introspection open. */
FIXTURE_SETUP(kvmi)
{
	KVMI_REQUIRE();
	self->vm = vm_create_barebones();
	__vm_vcpu_add(self->vm, 0);
	self->fd = kvmi_open(self->vm);
	kvmi_get_layout(self->fd, &self->lo);
}

FIXTURE_TEARDOWN(kvmi)
{
	if (self->fd >= 0)
		close(self->fd);
	if (self->vm)
		kvm_vm_free(self->vm);
}

static int try_mmap(int fd, uint64_t offset, uint64_t size, int prot,
		    int flags)
{
	void *p = mmap(NULL, size, prot, flags, fd, offset);

	if (p == MAP_FAILED)
		return -1;
	munmap(p, size);
	return 0;
}

TEST_F(kvmi, kernel_areas_refuse_prot_write)
{
	struct kvmi_layout *lo = &self->lo;

	ASSERT_EQ(-1, try_mmap(self->fd, lo->vm_offset, lo->vm_size,
			       PROT_READ | PROT_WRITE, MAP_SHARED));
	ASSERT_EQ(EPERM, errno);
	ASSERT_EQ(-1, try_mmap(self->fd, lo->kernel_offset, lo->kernel_stride,
			       PROT_READ | PROT_WRITE, MAP_SHARED));
	ASSERT_EQ(EPERM, errno);
	ASSERT_EQ(-1, try_mmap(self->fd, lo->kernel_offset, lo->kernel_stride,
			       PROT_WRITE, MAP_SHARED));
	ASSERT_EQ(EPERM, errno);
}

TEST_F(kvmi, kernel_areas_refuse_mprotect_write)
{
	struct kvmi_layout *lo = &self->lo;
	void *k, *vm;

	k = kvmi_mmap(self->fd, lo->kernel_offset, lo->kernel_stride,
		      PROT_READ);
	ASSERT_EQ(-1, mprotect(k, lo->kernel_stride, PROT_READ | PROT_WRITE));
	ASSERT_EQ(EACCES, errno);
	vm = kvmi_mmap(self->fd, lo->vm_offset, lo->vm_size, PROT_READ);
	ASSERT_EQ(-1, mprotect(vm, lo->vm_size, PROT_READ | PROT_WRITE));
	ASSERT_EQ(EACCES, errno);
	munmap(k, lo->kernel_stride);
	munmap(vm, lo->vm_size);
}

TEST_F(kvmi, map_private_is_einval)
{
	struct kvmi_layout *lo = &self->lo;

	ASSERT_EQ(-1, try_mmap(self->fd, lo->vm_offset, lo->vm_size,
			       PROT_READ, MAP_PRIVATE));
	ASSERT_EQ(EINVAL, errno);
	ASSERT_EQ(-1, try_mmap(self->fd, lo->kernel_offset, lo->kernel_stride,
			       PROT_READ, MAP_PRIVATE));
	ASSERT_EQ(EINVAL, errno);
	ASSERT_EQ(-1, try_mmap(self->fd, lo->tool_offset, lo->tool_stride,
			       PROT_READ | PROT_WRITE, MAP_PRIVATE));
	ASSERT_EQ(EINVAL, errno);
}

TEST_F(kvmi, prot_exec_is_eperm)
{
	struct kvmi_layout *lo = &self->lo;
	void *t;

	ASSERT_EQ(-1, try_mmap(self->fd, lo->vm_offset, lo->vm_size,
			       PROT_READ | PROT_EXEC, MAP_SHARED));
	ASSERT_EQ(EPERM, errno);
	ASSERT_EQ(-1, try_mmap(self->fd, lo->kernel_offset, lo->kernel_stride,
			       PROT_READ | PROT_EXEC, MAP_SHARED));
	ASSERT_EQ(EPERM, errno);
	ASSERT_EQ(-1, try_mmap(self->fd, lo->tool_offset, lo->tool_stride,
			       PROT_READ | PROT_WRITE | PROT_EXEC, MAP_SHARED));
	ASSERT_EQ(EPERM, errno);

	/* Nor can mprotect() add it. */
	t = kvmi_mmap(self->fd, lo->tool_offset, lo->tool_stride,
		      PROT_READ | PROT_WRITE);
	ASSERT_EQ(-1, mprotect(t, lo->tool_stride, PROT_READ | PROT_EXEC));
	ASSERT_EQ(EACCES, errno);
	munmap(t, lo->tool_stride);
}

TEST_F(kvmi, mapping_outside_or_across_areas_is_einval)
{
	struct kvmi_layout *lo = &self->lo;
	uint64_t kend = lo->kernel_offset + lo->max_vcpus * lo->kernel_stride;
	uint64_t tend = lo->tool_offset + lo->max_vcpus * lo->tool_stride;

	ASSERT_EQ(-1, try_mmap(self->fd, lo->vm_offset, 2 * lo->vm_size,
			       PROT_READ, MAP_SHARED));
	ASSERT_EQ(EINVAL, errno);
	ASSERT_EQ(-1, try_mmap(self->fd, kend - lo->page_size,
			       2 * lo->page_size, PROT_READ, MAP_SHARED));
	ASSERT_EQ(EINVAL, errno);
	ASSERT_EQ(-1, try_mmap(self->fd, tend, lo->page_size,
			       PROT_READ | PROT_WRITE, MAP_SHARED));
	ASSERT_EQ(EINVAL, errno);
	ASSERT_EQ(-1, try_mmap(self->fd, lo->kernel_offset - lo->page_size,
			       lo->page_size, PROT_READ, MAP_SHARED));
	ASSERT_EQ(EINVAL, errno);
}

TEST_F(kvmi, tool_area_is_read_write)
{
	struct kvmi_layout *lo = &self->lo;
	uint8_t *a, *b;
	uint64_t i;

	a = kvmi_mmap(self->fd, lo->tool_offset, lo->tool_stride,
		      PROT_READ | PROT_WRITE);
	b = kvmi_mmap(self->fd, lo->tool_offset, lo->tool_stride, PROT_READ);
	for (i = 0; i < lo->tool_size; i++)
		ASSERT_EQ(0, b[i]);
	for (i = 0; i < lo->tool_size; i += lo->page_size)
		a[i] = 0x5a;
	for (i = 0; i < lo->tool_size; i += lo->page_size)
		ASSERT_EQ(0x5a, b[i]);
	munmap(a, lo->tool_stride);
	munmap(b, lo->tool_stride);
}

TEST_F(kvmi, kernel_area_is_readable)
{
	struct kvmi_maps m;
	struct kvmi_vcpu_state *vs;
	uint64_t i;

	kvmi_map_all(self->fd, &m);
	vs = kvmi_vcpu_state(&m, 0);
	ASSERT_EQ(0, vs->vcpu);
	ASSERT_EQ(0, vs->flags);
	ASSERT_EQ(0, vs->done_seq);
	for (i = m.lo.kernel_off.event; i < m.lo.kernel_size; i++)
		ASSERT_EQ(0, m.kernel[i]);

	ASSERT_NE(0, __atomic_load_n(&m.vm->seq, __ATOMIC_ACQUIRE));
	ASSERT_EQ(0, m.vm->flags);
	ASSERT_EQ(1, m.vm->nr_vcpus);
	ASSERT_EQ(m.lo.max_vcpus, m.vm->max_vcpus);
	kvmi_unmap_all(&m);
}

static sigjmp_buf sigbus_jmp;

static void sigbus_handler(int sig)
{
	siglongjmp(sigbus_jmp, 1);
}

/* Whether reading *p raises SIGBUS. */
static bool read_faults(uint8_t *p)
{
	struct sigaction sa = { .sa_handler = sigbus_handler }, old;
	bool faulted = false;

	sigaction(SIGBUS, &sa, &old);
	if (sigsetjmp(sigbus_jmp, 1))
		faulted = true;
	else
		(void)READ_ONCE(*p);
	sigaction(SIGBUS, &old, NULL);
	return faulted;
}

TEST_F(kvmi, missing_vcpu_region_raises_sigbus)
{
	struct kvmi_maps m;

	kvmi_map_all(self->fd, &m);
	ASSERT_FALSE(read_faults(m.kernel));
	ASSERT_TRUE(read_faults(m.kernel + m.lo.kernel_stride));
	ASSERT_TRUE(read_faults(m.tool + m.lo.tool_stride));
	kvmi_unmap_all(&m);
}

TEST_F(kvmi, vcpu_added_after_open_gets_its_regions)
{
	struct kvmi_maps m;
	uint32_t seq;

	kvmi_map_all(self->fd, &m);
	seq = __atomic_load_n(&m.vm->seq, __ATOMIC_ACQUIRE);
	__vm_vcpu_add(self->vm, 1);

	ASSERT_NE(seq, __atomic_load_n(&m.vm->seq, __ATOMIC_ACQUIRE));
	ASSERT_EQ(2, m.vm->nr_vcpus);
	ASSERT_FALSE(read_faults(m.kernel + m.lo.kernel_stride));
	ASSERT_EQ(1, kvmi_vcpu_state(&m, 1)->vcpu);
	kvmi_tool_state(&m, 1)->flags = KVMI_TOOL_POLLING;
	ASSERT_EQ(KVMI_TOOL_POLLING, kvmi_tool_state(&m, 1)->flags);
	kvmi_unmap_all(&m);
}

/* The fd holds the introspection, and a mapping holds the fd. */
TEST_F(kvmi, live_mapping_keeps_introspection_open)
{
	struct kvmi_open op = kvmi_open_args();
	void *t;

	t = kvmi_mmap(self->fd, self->lo.tool_offset, self->lo.tool_stride,
		      PROT_READ | PROT_WRITE);
	close(self->fd);
	self->fd = __kvmi_open(self->vm->fd, &op);
	ASSERT_EQ(-1, self->fd);
	ASSERT_EQ(EBUSY, errno);
	munmap(t, self->lo.tool_stride);
	self->fd = kvmi_open(self->vm);
}

/* Destroy the VM: close every fd of it, the introspection fd stays. */
static void destroy_vm(FIXTURE_DATA(kvmi) *self)
{
	kvm_vm_free(self->vm);
	self->vm = NULL;
}

TEST_F(kvmi, ioctls_are_enodev_once_vm_destroyed)
{
	struct kvmi_check chk = { .id = KVMI_CMD_GET_VERSION };
	struct kvmi_version ver = { .size = sizeof(ver) };
	struct kvmi_layout lo = { .size = sizeof(lo) };

	destroy_vm(self);
	ASSERT_EQ(-1, ioctl(self->fd, KVMI_IOCTL_GET_VERSION, &ver));
	ASSERT_EQ(ENODEV, errno);
	ASSERT_EQ(-1, ioctl(self->fd, KVMI_IOCTL_GET_LAYOUT, &lo));
	ASSERT_EQ(ENODEV, errno);
	ASSERT_EQ(-1, ioctl(self->fd, KVMI_IOCTL_CHECK_COMMAND, &chk));
	ASSERT_EQ(ENODEV, errno);
}

TEST_F(kvmi, mmap_is_enodev_and_poll_hup_once_vm_destroyed)
{
	struct pollfd pfd = { .fd = self->fd, .events = POLLIN | POLLPRI };

	ASSERT_EQ(0, poll(&pfd, 1, 0));
	destroy_vm(self);
	ASSERT_EQ(1, poll(&pfd, 1, 0));
	ASSERT_TRUE(pfd.revents & POLLHUP);
	ASSERT_EQ(-1, try_mmap(self->fd, self->lo.tool_offset,
			       self->lo.tool_stride, PROT_READ | PROT_WRITE,
			       MAP_SHARED));
	ASSERT_EQ(ENODEV, errno);
}

TEST_F(kvmi, mappings_survive_vm_destruction)
{
	struct kvmi_maps m;
	uint32_t seq;

	kvmi_map_all(self->fd, &m);
	/* Fault in the tool page before, leave the kernel page for after. */
	kvmi_tool_state(&m, 0)->flags = KVMI_TOOL_POLLING;
	seq = __atomic_load_n(&m.vm->seq, __ATOMIC_ACQUIRE);

	destroy_vm(self);
	ASSERT_NE(seq, __atomic_load_n(&m.vm->seq, __ATOMIC_ACQUIRE));
	ASSERT_EQ(KVMI_VM_DETACHED, m.vm->flags);
	ASSERT_EQ(0, kvmi_vcpu_state(&m, 0)->vcpu);
	ASSERT_EQ(KVMI_TOOL_POLLING, kvmi_tool_state(&m, 0)->flags);
	kvmi_tool_state(&m, 0)->flags = 0;
	ASSERT_TRUE(read_faults(m.kernel + m.lo.kernel_stride));

	/* Close the fd first, the mappings still work. */
	close(self->fd);
	self->fd = -1;
	ASSERT_EQ(0, kvmi_vcpu_state(&m, 0)->vcpu);
	ASSERT_EQ(0, kvmi_tool_state(&m, 0)->flags);
	kvmi_unmap_all(&m);
}

TEST_HARNESS_MAIN
