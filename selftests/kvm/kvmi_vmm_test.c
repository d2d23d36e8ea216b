// SPDX-License-Identifier: GPL-2.0-only
/*
 * kvmi-ring: what the VMM decides, and the tool's end
 * (Documentation/virt/kvm/kvmi.rst, sections 6.2 to 6.4, 10.2, 13, 14):
 * allow-lists, the reply deadline, the unhook, and a tool killed while a
 * vCPU waits for it.
 */
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <sys/eventfd.h>
#include <sys/wait.h>

#include "kselftest_harness.h"
#include "kvmi_util.h"
#include "processor.h"
#include "ucall_common.h"

#define ENOSYS_RET	((uint64_t)-KVM_ENOSYS)
#define MS		1000000ULL

static volatile int bp_count;

static void guest_bp_handler(struct ex_regs *regs)
{
	bp_count++;
}

static uint64_t guest_hc(void)
{
	uint64_t rax = KVM_HC_KVMI;

	asm volatile("vmmcall" : "+a"(rax) : : "rbx", "rcx", "rdx", "rsi",
		     "memory");
	return rax;
}

/* A hypercall, then an INT3; reports the hypercall's result, the #BPs. */
static void guest_code(void)
{
	uint64_t ret = guest_hc();

	asm volatile("int3");
	GUEST_SYNC2(ret, bp_count);
	GUEST_DONE();
}

static struct kvm_vm *create_vm(struct kvm_vcpu **vcpu)
{
	struct kvm_vm *vm = vm_create_with_one_vcpu(vcpu, guest_code);

	vm_install_exception_handler(vm, BP_VECTOR, guest_bp_handler);
	return vm;
}

/* Allow-lists: everything but the ids listed (0-terminated). */
static int set_allowed_but(int vm_fd, const uint32_t *cmds,
			   const uint32_t *events)
{
	struct kvmi_allowed al;

	memset(&al, 0xff, sizeof(al));
	al.flags = 0;
	al.padding = 0;
	for (; cmds && *cmds; cmds++)
		al.commands[*cmds / 64] &= ~(1ULL << (*cmds % 64));
	for (; events && *events; events++)
		al.events[*events / 64] &= ~(1ULL << (*events % 64));
	return ioctl(vm_fd, KVM_INTROSPECTION_SET_ALLOWED, &al);
}

static int check_id(int fd, unsigned long ioc, uint32_t id)
{
	struct kvmi_check chk = { .id = id };

	return ioctl(fd, ioc, &chk);
}

static int set_deadline(int vm_fd, uint64_t ns)
{
	struct kvmi_deadline dl = { .reply_ns = ns };

	return ioctl(vm_fd, KVM_INTROSPECTION_SET_DEADLINE, &dl);
}

static int unhook(int vm_fd, uint32_t flags, uint64_t timeout_ns)
{
	struct kvmi_unhook uh = { .flags = flags, .timeout_ns = timeout_ns };

	return ioctl(vm_fd, KVM_INTROSPECTION_UNHOOK, &uh);
}

FIXTURE(vmm) {
	struct kvm_vm *vm;
	struct kvm_vcpu *vcpu;
	int fd;
	struct kvmi_maps m;
	int notify;
	int kick;
	struct kvmi_runner r;
};

KVMI_TRANSPORT_VARIANTS(vmm);

FIXTURE_SETUP(vmm)
{
	KVMI_REQUIRE();
	kvmi_use_transport(variant->transport);
	self->vm = create_vm(&self->vcpu);
	self->fd = -1;
	self->notify = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	self->kick = eventfd(0, EFD_CLOEXEC);
	ASSERT_LE(0, self->notify);
	ASSERT_LE(0, self->kick);
	self->r.joined = true;
}

FIXTURE_TEARDOWN(vmm)
{
	if (self->m.vm)
		kvmi_unmap_all(&self->m);
	if (self->fd >= 0)
		close(self->fd);
	if (!self->r.joined)
		kvmi_runner_join(&self->r);
	close(self->notify);
	close(self->kick);
	kvm_vm_free(self->vm);
}

static void open_and_map(FIXTURE_DATA(vmm) *self)
{
	self->fd = kvmi_open(self->vm);
	kvmi_map_all(self->fd, &self->m);
	kvmi_set_doorbells(self->fd, KVMI_ALL_VCPUS,
			   KVMI_DOORBELL_NOTIFY | KVMI_DOORBELL_KICK,
			   self->notify, self->kick);
}

/* Run the guest on its thread and wait for its hypercall event. */
static uint32_t run_to_hypercall(FIXTURE_DATA(vmm) *self)
{
	kvmi_control_events(self->fd, 0, KVMI_EVENT_HYPERCALL, 1);
	kvmi_runner_start(&self->r, self->vcpu);
	return kvmi_wait_event(&self->m, 0, -1, 0);
}

/* The guest finished: hypercall result @ret, @bps #BPs of its own. */
#define ASSERT_GUEST_SAW(self, _ret, _bps) do {			\
	kvmi_runner_join(&(self)->r);				\
	ASSERT_EQ(0, (self)->r.ret);				\
	ASSERT_EQ(UCALL_SYNC, (self)->r.ucall);			\
	ASSERT_EQ((_ret), (self)->r.args[0]);			\
	ASSERT_EQ((_bps), (self)->r.args[1]);			\
} while (0)

TEST_F(vmm, everything_allowed_by_default)
{
	open_and_map(self);
	ASSERT_EQ(0, check_id(self->fd, KVMI_IOCTL_CHECK_COMMAND,
			      KVMI_CMD_GET_REGISTERS));
	ASSERT_EQ(0, check_id(self->fd, KVMI_IOCTL_CHECK_EVENT,
			      KVMI_EVENT_BREAKPOINT));
}

TEST_F(vmm, denied_ioctls_and_events_get_eperm)
{
	const uint32_t cmds[] = { KVMI_CMD_GET_GUEST_INFO, KVMI_CMD_GET_VERSION,
				  KVMI_CMD_SET_WAIT_MODE, 0 };
	const uint32_t events[] = { KVMI_EVENT_HYPERCALL, KVMI_EVENT_PAUSE,
				    0 };
	struct kvmi_guest_info info = { .size = sizeof(info) };
	struct kvmi_version ver;

	ASSERT_EQ(0, set_allowed_but(self->vm->fd, cmds, events));
	open_and_map(self);

	ASSERT_EQ(-1, ioctl(self->fd, KVMI_IOCTL_GET_GUEST_INFO, &info));
	ASSERT_EQ(EPERM, errno);
	ASSERT_EQ(-1, check_id(self->fd, KVMI_IOCTL_CHECK_COMMAND,
			       KVMI_CMD_GET_GUEST_INFO));
	ASSERT_EQ(EPERM, errno);
	ASSERT_EQ(-1, __kvmi_control_events(self->fd, 0,
					    KVMI_EVENT_HYPERCALL, 1));
	ASSERT_EQ(EPERM, errno);
	ASSERT_EQ(-1, check_id(self->fd, KVMI_IOCTL_CHECK_EVENT,
			       KVMI_EVENT_HYPERCALL));
	ASSERT_EQ(EPERM, errno);

	/* What can't be denied. */
	kvmi_get_version(self->fd, &ver);
	kvmi_set_wait_mode(self->fd, 0, KVMI_WAIT_POLL, 0);
	ASSERT_EQ(0, check_id(self->fd, KVMI_IOCTL_CHECK_EVENT,
			      KVMI_EVENT_PAUSE));
	/* The rest still works. */
	kvmi_control_events(self->fd, 0, KVMI_EVENT_BREAKPOINT, 1);
	ASSERT_EQ(0, check_id(self->fd, KVMI_IOCTL_CHECK_COMMAND,
			      KVMI_CMD_GET_REGISTERS));
}

TEST_F(vmm, denied_vcpu_command_gets_eperm)
{
	const uint32_t cmds[] = { KVMI_CMD_GET_REGISTERS, 0 };
	union kvmi_cmd_args args = {};
	uint32_t s;

	ASSERT_EQ(0, set_allowed_but(self->vm->fd, cmds, NULL));
	open_and_map(self);
	s = run_to_hypercall(self);
	ASSERT_EQ(-EPERM, kvmi_run_cmd(&self->m, 0, KVMI_CMD_GET_REGISTERS,
				       NULL, self->kick));
	args.set_registers.groups = 0;	/* allowed, writes nothing */
	ASSERT_EQ(0, kvmi_run_cmd(&self->m, 0, KVMI_CMD_SET_REGISTERS, &args,
				  self->kick));
	ASSERT_EQ(1, kvmi_counters(&self->m, 0)->command_errors);
	kvmi_send_reply(&self->m, 0, s, KVMI_EVENT_HYPERCALL,
			KVMI_ACTION_CONTINUE, 0, NULL, self->kick);
	ASSERT_GUEST_SAW(self, 0, 1);
}

/* Shrinking while open disables the event: the guest gets no event. */
TEST_F(vmm, shrink_while_open_disables_events)
{
	const uint32_t events[] = { KVMI_EVENT_HYPERCALL,
				    KVMI_EVENT_BREAKPOINT, 0 };

	open_and_map(self);
	kvmi_control_events(self->fd, 0, KVMI_EVENT_HYPERCALL, 1);
	kvmi_control_events(self->fd, KVMI_ALL_VCPUS, KVMI_EVENT_BREAKPOINT,
			    1);
	ASSERT_EQ(0, set_allowed_but(self->vm->fd, NULL, events));
	kvmi_runner_start(&self->r, self->vcpu);
	/* No event: the hypercall is unknown, the #BP the guest's. */
	ASSERT_GUEST_SAW(self, ENOSYS_RET, 1);
	ASSERT_EQ(0, kvmi_counters(&self->m, 0)->events);
}

TEST_F(vmm, widen_while_open_is_eperm)
{
	const uint32_t cmds[] = { KVMI_CMD_GET_GUEST_INFO, 0 };
	const uint32_t fewer[] = { KVMI_CMD_GET_GUEST_INFO,
				   KVMI_CMD_PAUSE_ALL, 0 };

	ASSERT_EQ(0, set_allowed_but(self->vm->fd, cmds, NULL));
	open_and_map(self);
	ASSERT_EQ(-1, set_allowed_but(self->vm->fd, NULL, NULL));
	ASSERT_EQ(EPERM, errno);
	ASSERT_EQ(0, set_allowed_but(self->vm->fd, fewer, NULL));
	ASSERT_EQ(-1, set_allowed_but(self->vm->fd, cmds, NULL));
	ASSERT_EQ(EPERM, errno);

	kvmi_unmap_all(&self->m);
	self->m.vm = NULL;
	close(self->fd);
	self->fd = -1;
	/* Closed: the lists may widen again. */
	ASSERT_EQ(0, set_allowed_but(self->vm->fd, NULL, NULL));
}

TEST_F(vmm, bad_args)
{
	struct kvmi_allowed al = { .flags = 1 };
	struct kvmi_deadline dl = { .padding = 1 };
	struct kvmi_unhook uh = { .flags = 2 };

	ASSERT_EQ(-1, ioctl(self->vm->fd, KVM_INTROSPECTION_SET_ALLOWED, &al));
	ASSERT_EQ(EINVAL, errno);
	al.flags = 0;
	al.padding = 1;
	ASSERT_EQ(-1, ioctl(self->vm->fd, KVM_INTROSPECTION_SET_ALLOWED, &al));
	ASSERT_EQ(EINVAL, errno);
	ASSERT_EQ(-1, ioctl(self->vm->fd, KVM_INTROSPECTION_SET_DEADLINE, &dl));
	ASSERT_EQ(EINVAL, errno);
	dl.padding = 0;
	dl.flags = 1;
	ASSERT_EQ(-1, ioctl(self->vm->fd, KVM_INTROSPECTION_SET_DEADLINE, &dl));
	ASSERT_EQ(EINVAL, errno);
	/* Nothing open: ENOENT, but flags are checked first. */
	ASSERT_EQ(-1, ioctl(self->vm->fd, KVM_INTROSPECTION_UNHOOK, &uh));
	ASSERT_EQ(EINVAL, errno);
	ASSERT_EQ(-1, unhook(self->vm->fd, 0, 0));
	ASSERT_EQ(ENOENT, errno);
}

/* The VM ioctls are the VMM's: another process gets EIO. */
TEST_F(vmm, other_process_gets_eio)
{
	int status;
	pid_t pid;

	pid = fork();
	ASSERT_LE(0, pid);
	if (!pid) {
		int r1 = set_deadline(self->vm->fd, 0);
		int e1 = errno;
		int r2 = set_allowed_but(self->vm->fd, NULL, NULL);
		int e2 = errno;

		_exit(!(r1 == -1 && e1 == EIO && r2 == -1 && e2 == EIO));
	}
	ASSERT_EQ(pid, waitpid(pid, &status, 0));
	ASSERT_TRUE(WIFEXITED(status));
	ASSERT_EQ(0, WEXITSTATUS(status));
}

/* The deadline passes: default action, reason and counter; late reply. */
static void deadline_expires(struct __test_metadata *_metadata,
			     FIXTURE_DATA(vmm) *self, uint32_t mode)
{
	struct kvmi_vcpu_state *vs;
	uint32_t s;

	ASSERT_EQ(0, set_deadline(self->vm->fd, 1 * MS));
	open_and_map(self);
	kvmi_set_wait_mode(self->fd, 0, mode, 0);
	vs = kvmi_vcpu_state(&self->m, 0);
	s = run_to_hypercall(self);
	kvmi_wait_done(&self->m, 0, s);
	ASSERT_EQ(KVMI_DONE_DEADLINE, vs->done_reason);
	ASSERT_EQ(KVMI_ACTION_CONTINUE, vs->done_action);
	ASSERT_EQ(1, kvmi_counters(&self->m, 0)->deadlines);
	kvmi_send_reply(&self->m, 0, s, KVMI_EVENT_HYPERCALL,
			KVMI_ACTION_CRASH, 0, NULL, self->kick);
	ASSERT_GUEST_SAW(self, 0, 1);
	ASSERT_EQ(0, kvmi_counters(&self->m, 0)->replies);
}

TEST_F(vmm, deadline_while_sleeping)
{
	deadline_expires(_metadata, self, KVMI_WAIT_BLOCK);
}

TEST_F(vmm, deadline_while_polling)
{
	deadline_expires(_metadata, self, KVMI_WAIT_POLL);
}

/* Deadline 0 (the default): the reply decides, here CRASH. */
TEST_F(vmm, no_deadline_waits_for_reply)
{
	uint32_t s;

	ASSERT_EQ(0, set_deadline(self->vm->fd, 0));
	open_and_map(self);
	s = run_to_hypercall(self);
	/* A command round trip while it waits: it still waits after. */
	ASSERT_EQ(0, kvmi_run_cmd(&self->m, 0, KVMI_CMD_GET_REGISTERS, NULL,
				  self->kick));
	ASSERT_NE(s, kvmi_vcpu_state(&self->m, 0)->done_seq);
	kvmi_send_reply(&self->m, 0, s, KVMI_EVENT_HYPERCALL,
			KVMI_ACTION_CONTINUE, 0, NULL, self->kick);
	ASSERT_GUEST_SAW(self, 0, 1);
	ASSERT_EQ(0, kvmi_counters(&self->m, 0)->deadlines);
}

/* UNHOOK: the event first (flag, notify, EPOLLPRI), once; then ETIMEDOUT. */
TEST_F(vmm, unhook_raises_event_then_times_out)
{
	struct pollfd pfd;
	uint64_t cnt;
	uint32_t seq;

	open_and_map(self);
	ASSERT_EQ(-1, unhook(self->vm->fd, 0, 1 * MS));
	ASSERT_EQ(ETIMEDOUT, errno);
	ASSERT_TRUE(self->m.vm->flags & KVMI_VM_UNHOOK);
	ASSERT_EQ(sizeof(cnt), read(self->notify, &cnt, sizeof(cnt)));
	ASSERT_EQ(1, cnt);
	pfd.fd = self->fd;
	pfd.events = POLLPRI;
	ASSERT_EQ(1, poll(&pfd, 1, 0));
	ASSERT_TRUE(pfd.revents & POLLPRI);

	seq = self->m.vm->seq;
	ASSERT_EQ(-1, unhook(self->vm->fd, 0, 0));
	ASSERT_EQ(ETIMEDOUT, errno);
	ASSERT_EQ(seq, self->m.vm->seq);
	ASSERT_EQ(-1, read(self->notify, &cnt, sizeof(cnt)));
	ASSERT_EQ(EAGAIN, errno);
}

/* FORCE: the waiting vCPU resumes with CONTINUE, the fd is detached. */
TEST_F(vmm, unhook_force_detaches)
{
	struct kvmi_guest_info info = { .size = sizeof(info) };
	struct pollfd pfd;
	uint32_t s;
	int fd2;

	open_and_map(self);
	kvmi_control_events(self->fd, 0, KVMI_EVENT_BREAKPOINT, 1);
	s = run_to_hypercall(self);
	ASSERT_EQ(0, unhook(self->vm->fd, KVMI_UNHOOK_FORCE, 1 * MS));
	ASSERT_GUEST_SAW(self, 0, 1);	/* #BP intercept gone too */
	ASSERT_EQ(s, kvmi_vcpu_state(&self->m, 0)->done_seq);
	ASSERT_EQ(KVMI_DONE_DETACH, kvmi_vcpu_state(&self->m, 0)->done_reason);
	ASSERT_TRUE(self->m.vm->flags & KVMI_VM_DETACHED);
	ASSERT_EQ(-1, ioctl(self->fd, KVMI_IOCTL_GET_GUEST_INFO, &info));
	ASSERT_EQ(ENODEV, errno);
	pfd.fd = self->fd;
	pfd.events = POLLPRI;
	ASSERT_EQ(1, poll(&pfd, 1, 0));
	ASSERT_TRUE(pfd.revents & POLLHUP);
	/* A new introspection may start. */
	fd2 = kvmi_open(self->vm);
	close(fd2);
}

static void *close_on_unhook(void *arg)
{
	FIXTURE_DATA(vmm) *self = arg;
	struct pollfd pfd = { .fd = self->fd, .events = POLLPRI };

	TEST_ASSERT(poll(&pfd, 1, -1) == 1, "poll");
	kvmi_unmap_all(&self->m);
	close(self->fd);
	return NULL;
}

/* The tool leaves when asked: UNHOOK returns 0. */
TEST_F(vmm, unhook_tool_closes)
{
	pthread_t t;

	open_and_map(self);
	ASSERT_EQ(0, pthread_create(&t, NULL, close_on_unhook, self));
	ASSERT_EQ(0, unhook(self->vm->fd, 0, 60000 * MS));
	pthread_join(t, NULL);
	self->m.vm = NULL;
	self->fd = -1;
	ASSERT_EQ(-1, unhook(self->vm->fd, 0, 0));
	ASSERT_EQ(ENOENT, errno);
}

/*
 * A tool process is killed while the vCPU waits in its event: the vCPU
 * goes on with the default action, and the #BP intercept the tool asked
 * for is gone: the guest's own handler gets its INT3.
 */
TEST_F(vmm, tool_killed_mid_event)
{
	int ready[2];
	int status;
	pid_t pid;
	char c;

	ASSERT_EQ(0, pipe(ready));
	pid = fork();
	ASSERT_LE(0, pid);
	if (!pid) {
		struct kvmi_maps m;
		int fd = kvmi_open(self->vm);

		kvmi_map_all(fd, &m);
		kvmi_control_events(fd, 0, KVMI_EVENT_HYPERCALL, 1);
		kvmi_control_events(fd, 0, KVMI_EVENT_BREAKPOINT, 1);
		TEST_ASSERT(write(ready[1], "o", 1) == 1, "write");
		kvmi_wait_event(&m, 0, -1, 0);
		TEST_ASSERT(write(ready[1], "e", 1) == 1, "write");
		for (;;)
			pause();
	}
	ASSERT_EQ(1, read(ready[0], &c, 1));	/* opened */
	kvmi_runner_start(&self->r, self->vcpu);
	ASSERT_EQ(1, read(ready[0], &c, 1));	/* the vCPU waits */
	ASSERT_EQ(0, kill(pid, SIGKILL));
	ASSERT_EQ(pid, waitpid(pid, &status, 0));
	ASSERT_GUEST_SAW(self, 0, 1);
	/* Introspection ended with the tool. */
	close(kvmi_open(self->vm));
	close(ready[0]);
	close(ready[1]);
}

TEST_HARNESS_MAIN
