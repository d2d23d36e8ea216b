// SPDX-License-Identifier: GPL-2.0-only
/*
 * kvmi-ring: discovery, KVM_INTROSPECTION_OPEN and the VM-wide ioctls of
 * the introspection fd (Documentation/virt/kvm/kvmi.rst, sections 5 to 7).
 */
#include <fcntl.h>
#include <sys/eventfd.h>
#include <sys/wait.h>

#include "kselftest_harness.h"
#include "kvmi_util.h"

/* The commands and events this kernel implements. */
static const uint32_t implemented_cmds[] = {
	KVMI_CMD_GET_VERSION,
	KVMI_CMD_GET_LAYOUT,
	KVMI_CMD_CHECK_COMMAND,
	KVMI_CMD_CHECK_EVENT,
	KVMI_CMD_GET_GUEST_INFO,
	KVMI_CMD_CONTROL_EVENTS,
	KVMI_CMD_SET_VCPU_DOORBELLS,
	KVMI_CMD_SET_WAIT_MODE,
	KVMI_CMD_PAUSE_VCPU,
	KVMI_CMD_PAUSE_ALL,
	KVMI_CMD_UNPAUSE,
	KVMI_CMD_GET_REGISTERS,
	KVMI_CMD_SET_REGISTERS,
	KVMI_CMD_READ_PHYSICAL,
	KVMI_CMD_WRITE_PHYSICAL,
	KVMI_CMD_SHUTDOWN_GUEST,
	KVMI_CMD_GET_CPUID,
	KVMI_CMD_GET_XCR,
	KVMI_CMD_GET_XSAVE_INFO,
	KVMI_CMD_GET_XSAVE,
	KVMI_CMD_SET_XSAVE,
	KVMI_CMD_GET_MTRR_TYPE,
	KVMI_CMD_GET_MTRRS,
	KVMI_CMD_TRANSLATE_GVA,
	KVMI_CMD_INJECT_EXCEPTION,
	KVMI_CMD_MAP_PHYSICAL_PAGE_TO_SVA,
	KVMI_CMD_UNMAP_PHYSICAL_PAGE_FROM_SVA,
	KVMI_CMD_GET_PAGE_ACCESS,
	KVMI_CMD_SET_PAGE_ACCESS,
};

static bool cmd_implemented(uint32_t id)
{
	int i;

	for (i = 0; i < ARRAY_SIZE(implemented_cmds); i++)
		if (implemented_cmds[i] == id)
			return true;
	/* With KVMI_FEATURE_SINGLESTEP, which the test machines have. */
	return id == KVMI_CMD_CONTROL_SINGLESTEP;
}

static int check(int fd, unsigned long ioc, uint32_t id, uint32_t flags)
{
	struct kvmi_check chk = { .id = id, .flags = flags };

	return ioctl(fd, ioc, &chk);
}

TEST(cap_reports_version)
{
	struct kvm_vm *vm;

	KVMI_REQUIRE();
	ASSERT_EQ(KVMI_VERSION, kvm_check_cap(KVM_CAP_INTROSPECTION));

	vm = vm_create_barebones();
	ASSERT_EQ(KVMI_VERSION, vm_check_cap(vm, KVM_CAP_INTROSPECTION));
	kvm_vm_free(vm);
}

TEST(second_open_is_ebusy)
{
	struct kvm_vm *vm;
	struct kvmi_open op = kvmi_open_args();
	int fd;

	KVMI_REQUIRE();
	vm = vm_create_barebones();
	fd = kvmi_open(vm);
	ASSERT_EQ(-1, __kvmi_open(vm->fd, &op));
	ASSERT_EQ(EBUSY, errno);
	close(fd);
	kvm_vm_free(vm);
}

TEST(reopen_after_close)
{
	struct kvm_vm *vm;
	int fd;

	KVMI_REQUIRE();
	vm = vm_create_barebones();
	fd = kvmi_open(vm);
	close(fd);
	fd = kvmi_open(vm);
	close(fd);
	kvm_vm_free(vm);
}

TEST(fd_is_cloexec)
{
	struct kvm_vm *vm;
	int fd;

	KVMI_REQUIRE();
	vm = vm_create_barebones();
	fd = kvmi_open(vm);
	ASSERT_TRUE(fcntl(fd, F_GETFD) & FD_CLOEXEC);
	close(fd);
	kvm_vm_free(vm);
}

TEST(open_rejects_every_flag)
{
	struct kvm_vm *vm;
	struct kvmi_open op;
	int bit;

	KVMI_REQUIRE();
	vm = vm_create_barebones();
	for (bit = 0; bit < 32; bit++) {
		op = kvmi_open_args();
		op.flags = 1u << bit;
		ASSERT_EQ(-1, __kvmi_open(vm->fd, &op));
		ASSERT_EQ(EINVAL, errno);
	}
	kvm_vm_free(vm);
}

TEST(open_rejects_reserved_and_transport_fd)
{
	struct kvm_vm *vm;
	struct kvmi_open op;
	int i;

	KVMI_REQUIRE();
	vm = vm_create_barebones();
	for (i = 0; i < ARRAY_SIZE(op.reserved); i++) {
		op = kvmi_open_args();
		op.reserved[i] = 1;
		ASSERT_EQ(-1, __kvmi_open(vm->fd, &op));
		ASSERT_EQ(EINVAL, errno);
	}
	op = kvmi_open_args();
	op.transport_fd = 3;
	ASSERT_EQ(-1, __kvmi_open(vm->fd, &op));
	ASSERT_EQ(EINVAL, errno);
	kvm_vm_free(vm);
}

/* The socket transport needs a socket (kvmi_socket_test: which kinds). */
TEST(open_socket_transport_needs_a_socket)
{
	struct kvm_vm *vm;
	struct kvmi_open op = kvmi_open_args();
	int efd;

	KVMI_REQUIRE();
	vm = vm_create_barebones();
	op.transport = KVMI_TRANSPORT_SOCKET;
	op.transport_fd = -1;
	ASSERT_EQ(-1, __kvmi_open(vm->fd, &op));
	ASSERT_EQ(EBADF, errno);
	efd = eventfd(0, 0);
	ASSERT_LE(0, efd);
	op.transport_fd = efd;
	ASSERT_EQ(-1, __kvmi_open(vm->fd, &op));
	ASSERT_EQ(ENOTSOCK, errno);
	close(efd);
	kvm_vm_free(vm);
}

TEST(open_unknown_transport_is_einval)
{
	struct kvm_vm *vm;
	struct kvmi_open op = kvmi_open_args();

	KVMI_REQUIRE();
	vm = vm_create_barebones();
	op.transport = 2;
	ASSERT_EQ(-1, __kvmi_open(vm->fd, &op));
	ASSERT_EQ(EINVAL, errno);
	kvm_vm_free(vm);
}

TEST(open_size_negotiation)
{
	struct {
		struct kvmi_open op;
		uint64_t tail;
	} big = { .op = kvmi_open_args() };
	struct kvm_vm *vm;
	int fd;

	KVMI_REQUIRE();
	vm = vm_create_barebones();

	/* Smaller than version 1's structure. */
	big.op.size = sizeof(big.op) - 8;
	ASSERT_EQ(-1, __kvmi_open(vm->fd, &big));
	ASSERT_EQ(EINVAL, errno);

	/* Larger, with a non-zero tail the kernel doesn't know. */
	big.op.size = sizeof(big);
	big.tail = 1;
	ASSERT_EQ(-1, __kvmi_open(vm->fd, &big));
	ASSERT_EQ(E2BIG, errno);

	/* Larger, with a zero tail. */
	big.tail = 0;
	fd = __kvmi_open(vm->fd, &big);
	ASSERT_LE(0, fd);
	close(fd);
	kvm_vm_free(vm);
}

TEST(get_version)
{
	struct kvmi_version ver;
	struct kvm_vm *vm;
	int fd;

	KVMI_REQUIRE();
	vm = vm_create_barebones();
	fd = kvmi_open(vm);
	memset(&ver, 0xff, sizeof(ver));
	ver.size = sizeof(ver);
	ASSERT_EQ(0, ioctl(fd, KVMI_IOCTL_GET_VERSION, &ver));
	ASSERT_EQ(sizeof(ver), ver.size);
	ASSERT_EQ(KVMI_VERSION, ver.version);
	ASSERT_EQ(KVMI_FEATURE_RING | KVMI_FEATURE_INJECT_STATUS |
		  KVMI_FEATURE_SVA | KVMI_FEATURE_PF_EMULATION |
		  KVMI_FEATURE_PF_CTX | KVMI_FEATURE_SINGLESTEP |
		  KVMI_FEATURE_SOCKET, ver.features);
	ASSERT_EQ(sizeof(struct kvmi_event), ver.event_size);
	ASSERT_EQ(sizeof(struct kvmi_reply), ver.reply_size);
	ASSERT_EQ(sizeof(struct kvmi_cmd), ver.cmd_size);
	ASSERT_EQ(sizeof(struct kvmi_cmd_result), ver.cmd_result_size);
	ASSERT_EQ(sizeof(struct kvmi_x86_regs), ver.regs_size);
	ASSERT_EQ(0, ver.padding);
	close(fd);
	kvm_vm_free(vm);
}

TEST(get_version_size_negotiation)
{
	struct {
		struct kvmi_version ver;
		uint64_t tail[2];
	} big;
	struct kvm_vm *vm;
	int fd;

	KVMI_REQUIRE();
	vm = vm_create_barebones();
	fd = kvmi_open(vm);

	memset(&big, 0xff, sizeof(big));
	big.ver.size = sizeof(big.ver) - 8;
	ASSERT_EQ(-1, ioctl(fd, KVMI_IOCTL_GET_VERSION, &big));
	ASSERT_EQ(EINVAL, errno);

	big.ver.size = sizeof(big);
	ASSERT_EQ(0, ioctl(fd, KVMI_IOCTL_GET_VERSION, &big));
	ASSERT_EQ(sizeof(big.ver), big.ver.size);
	ASSERT_EQ(KVMI_VERSION, big.ver.version);
	ASSERT_EQ(0, big.tail[0]);
	ASSERT_EQ(0, big.tail[1]);
	close(fd);
	kvm_vm_free(vm);
}

TEST(get_layout_is_consistent)
{
	struct kvmi_layout lo;
	struct kvm_vm *vm;
	int fd, i;

	KVMI_REQUIRE();
	vm = vm_create_barebones();
	fd = kvmi_open(vm);
	memset(&lo, 0xff, sizeof(lo));
	lo.size = sizeof(lo);
	ASSERT_EQ(0, ioctl(fd, KVMI_IOCTL_GET_LAYOUT, &lo));
	ASSERT_EQ(sizeof(lo), lo.size);
	ASSERT_EQ(0, lo.padding);
	ASSERT_EQ(getpagesize(), lo.page_size);
	ASSERT_EQ(vm_check_cap(vm, KVM_CAP_MAX_VCPUS), lo.max_vcpus);

	/* Page aligned, the records fit, the areas don't overlap. */
	ASSERT_EQ(0, lo.vm_offset % lo.page_size);
	ASSERT_EQ(0, lo.kernel_offset % lo.page_size);
	ASSERT_EQ(0, lo.tool_offset % lo.page_size);
	ASSERT_EQ(0, lo.kernel_stride % lo.page_size);
	ASSERT_EQ(0, lo.tool_stride % lo.page_size);
	ASSERT_LE(sizeof(struct kvmi_vm_state), lo.vm_size);
	ASSERT_LE(lo.kernel_size, lo.kernel_stride);
	ASSERT_LE(lo.tool_size, lo.tool_stride);
	ASSERT_LE(lo.vm_offset + lo.vm_size, lo.kernel_offset);
	ASSERT_LE(lo.kernel_offset + lo.max_vcpus * lo.kernel_stride,
		  lo.tool_offset);

	ASSERT_LE(lo.kernel_off.state + sizeof(struct kvmi_vcpu_state),
		  lo.kernel_off.event);
	ASSERT_LE(lo.kernel_off.event + sizeof(struct kvmi_event),
		  lo.kernel_off.cmd_result);
	ASSERT_LE(lo.kernel_off.cmd_result + sizeof(struct kvmi_cmd_result),
		  lo.kernel_off.counters);
	ASSERT_LE(lo.kernel_off.counters + sizeof(struct kvmi_vcpu_counters),
		  lo.kernel_off.data);
	ASSERT_LE(lo.kernel_off.data + lo.kernel_off.data_size, lo.kernel_size);
	ASSERT_LE(lo.tool_off.state + sizeof(struct kvmi_tool_state),
		  lo.tool_off.reply);
	ASSERT_LE(lo.tool_off.reply + sizeof(struct kvmi_reply),
		  lo.tool_off.cmd);
	ASSERT_LE(lo.tool_off.cmd + sizeof(struct kvmi_cmd), lo.tool_off.data);
	ASSERT_LE(lo.tool_off.data + lo.tool_off.data_size, lo.tool_size);
	for (i = 0; i < ARRAY_SIZE(lo.kernel_off.reserved); i++)
		ASSERT_EQ(0, lo.kernel_off.reserved[i]);
	for (i = 0; i < ARRAY_SIZE(lo.tool_off.reserved); i++)
		ASSERT_EQ(0, lo.tool_off.reserved[i]);
	close(fd);
	kvm_vm_free(vm);
}

/* The version 1 values of kvmi.rst, section 8.2 (4 KiB pages). */
TEST(get_layout_version_1_values)
{
	struct kvmi_layout lo;
	struct kvm_vm *vm;
	int fd;

	KVMI_REQUIRE();
	TEST_REQUIRE(getpagesize() == 4096);
	vm = vm_create_barebones();
	fd = kvmi_open(vm);
	kvmi_get_layout(fd, &lo);
	ASSERT_EQ(0x0, lo.vm_offset);
	ASSERT_EQ(0x1000, lo.vm_size);
	ASSERT_EQ(0x10000000, lo.kernel_offset);
	ASSERT_EQ(0x5000, lo.kernel_stride);
	ASSERT_EQ(0x5000, lo.kernel_size);
	ASSERT_EQ(0x20000000, lo.tool_offset);
	ASSERT_EQ(0x5000, lo.tool_stride);
	ASSERT_EQ(0x5000, lo.tool_size);
	ASSERT_EQ(0x0000, lo.kernel_off.state);
	ASSERT_EQ(0x0040, lo.kernel_off.event);
	ASSERT_EQ(0x0340, lo.kernel_off.cmd_result);
	ASSERT_EQ(0x0600, lo.kernel_off.counters);
	ASSERT_EQ(0x1000, lo.kernel_off.data);
	ASSERT_EQ(16384, lo.kernel_off.data_size);
	ASSERT_EQ(0x0000, lo.tool_off.state);
	ASSERT_EQ(0x0040, lo.tool_off.reply);
	ASSERT_EQ(0x0340, lo.tool_off.cmd);
	ASSERT_EQ(0x1000, lo.tool_off.data);
	ASSERT_EQ(16384, lo.tool_off.data_size);
	close(fd);
	kvm_vm_free(vm);
}

TEST(check_command)
{
	struct kvm_vm *vm;
	uint32_t id;
	int fd;

	KVMI_REQUIRE();
	vm = vm_create_barebones();
	fd = kvmi_open(vm);
	for (id = 0; id < 256; id++) {
		int r = check(fd, KVMI_IOCTL_CHECK_COMMAND, id, 0);

		if (cmd_implemented(id)) {
			ASSERT_EQ(0, r);
		} else {
			ASSERT_EQ(-1, r);
			ASSERT_EQ(EOPNOTSUPP, errno);
		}
	}
	ASSERT_EQ(-1, check(fd, KVMI_IOCTL_CHECK_COMMAND,
			    KVMI_CMD_GET_VERSION, 1));
	ASSERT_EQ(EINVAL, errno);
	close(fd);
	kvm_vm_free(vm);
}

/* HYPERCALL, PAUSE, BREAKPOINT are implemented; the others: EOPNOTSUPP. */
TEST(check_event)
{
	struct kvm_vm *vm;
	uint32_t id;
	int fd;

	KVMI_REQUIRE();
	vm = vm_create_barebones();
	fd = kvmi_open(vm);
	for (id = 0; id < 256; id++) {
		if (id == KVMI_EVENT_HYPERCALL || id == KVMI_EVENT_PAUSE ||
		    id == KVMI_EVENT_BREAKPOINT || id == KVMI_EVENT_CR ||
		    id == KVMI_EVENT_MSR || id == KVMI_EVENT_XSETBV ||
		    id == KVMI_EVENT_PAGE_FAULT || id == KVMI_EVENT_SINGLESTEP ||
		    id == KVMI_EVENT_TRAP || id == KVMI_EVENT_DESCRIPTOR) {
			ASSERT_EQ(0, check(fd, KVMI_IOCTL_CHECK_EVENT, id, 0));
			continue;
		}
		ASSERT_EQ(-1, check(fd, KVMI_IOCTL_CHECK_EVENT, id, 0));
		ASSERT_EQ(EOPNOTSUPP, errno);
	}
	ASSERT_EQ(-1, check(fd, KVMI_IOCTL_CHECK_EVENT, KVMI_EVENT_PAUSE, 1));
	ASSERT_EQ(EINVAL, errno);
	close(fd);
	kvm_vm_free(vm);
}

TEST(get_guest_info)
{
	struct kvmi_guest_info info;
	struct kvm_vm *vm;
	int fd;

	KVMI_REQUIRE();
	vm = vm_create_barebones();
	__vm_vcpu_add(vm, 0);
	__vm_vcpu_add(vm, 1);
	fd = kvmi_open(vm);

	memset(&info, 0xff, sizeof(info));
	info.size = sizeof(info);
	ASSERT_EQ(0, ioctl(fd, KVMI_IOCTL_GET_GUEST_INFO, &info));
	ASSERT_EQ(sizeof(info), info.size);
	ASSERT_EQ(2, info.nr_vcpus);
	ASSERT_EQ(vm_check_cap(vm, KVM_CAP_MAX_VCPUS), info.max_vcpus);
	ASSERT_NE(0, info.tsc_khz);
	ASSERT_EQ(ioctl(vm->fd, KVM_GET_TSC_KHZ), info.tsc_khz);

	/* A vCPU created after the open is counted. */
	__vm_vcpu_add(vm, 2);
	ASSERT_EQ(0, ioctl(fd, KVMI_IOCTL_GET_GUEST_INFO, &info));
	ASSERT_EQ(3, info.nr_vcpus);
	close(fd);
	kvm_vm_free(vm);
}

TEST(unknown_ioctl_is_enotty)
{
	struct kvmi_shutdown sd = {};
	struct kvm_vm *vm;
	int fd;

	KVMI_REQUIRE();
	vm = vm_create_barebones();
	fd = kvmi_open(vm);
	/* A number no command has (yet). */
	ASSERT_EQ(-1, ioctl(fd, _IOW(KVMI_IOCTL_MAGIC, 0x3f,
				     struct kvmi_shutdown), &sd));
	ASSERT_EQ(ENOTTY, errno);
	ASSERT_EQ(-1, ioctl(fd, KVM_GET_TSC_KHZ));
	ASSERT_EQ(ENOTTY, errno);
	close(fd);
	kvm_vm_free(vm);
}

/*
 * In a process other than the VM's creator, KVM_INTROSPECTION_OPEN works
 * on the VM fd while the other VM ioctls get EIO. Returns 0 on success.
 */
static int open_in_foreign_process(int vm_fd)
{
	struct kvmi_guest_info info = { .size = sizeof(info) };
	struct kvmi_open op = kvmi_open_args();
	int fd;

	if (ioctl(vm_fd, KVM_CHECK_EXTENSION, KVM_CAP_USER_MEMORY) != -1 ||
	    errno != EIO)
		return 1;
	fd = __kvmi_open(vm_fd, &op);
	if (fd < 0)
		return 2;
	if (ioctl(fd, KVMI_IOCTL_GET_GUEST_INFO, &info) || info.nr_vcpus != 1)
		return 3;
	close(fd);
	return 0;
}

TEST(open_from_forked_child)
{
	struct kvm_vm *vm;
	int status, fd;
	pid_t pid;

	KVMI_REQUIRE();
	vm = vm_create_barebones();
	__vm_vcpu_add(vm, 0);
	pid = fork();
	ASSERT_LE(0, pid);
	if (!pid)
		_exit(open_in_foreign_process(vm->fd));
	ASSERT_EQ(pid, waitpid(pid, &status, 0));
	ASSERT_TRUE(WIFEXITED(status));
	ASSERT_EQ(0, WEXITSTATUS(status));

	/* The child's introspection ended with it. */
	fd = kvmi_open(vm);
	close(fd);
	kvm_vm_free(vm);
}

TEST(open_with_vm_fd_from_unix_socket)
{
	struct kvm_vm *vm;
	int sv[2], status;
	pid_t pid;

	KVMI_REQUIRE();
	vm = vm_create_barebones();
	__vm_vcpu_add(vm, 0);
	ASSERT_EQ(0, socketpair(AF_UNIX, SOCK_STREAM, 0, sv));
	pid = fork();
	ASSERT_LE(0, pid);
	if (!pid) {
		int vm_fd;

		close(sv[0]);
		vm_fd = kvmi_recv_fd(sv[1]);
		_exit(open_in_foreign_process(vm_fd));
	}
	close(sv[1]);
	kvmi_send_fd(sv[0], vm->fd);
	ASSERT_EQ(pid, waitpid(pid, &status, 0));
	ASSERT_TRUE(WIFEXITED(status));
	ASSERT_EQ(0, WEXITSTATUS(status));
	close(sv[0]);
	kvm_vm_free(vm);
}

TEST_HARNESS_MAIN
