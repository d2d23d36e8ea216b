// SPDX-License-Identifier: GPL-2.0-only
/*
 * kvmi-ring: the counters in KVM's binary stats (KVM_GET_STATS_FD) and the
 * kvmi tracepoints (Documentation/virt/kvm/kvmi.rst, section 17).
 */
#include <fcntl.h>
#include <pthread.h>
#include <sys/eventfd.h>

#include "kselftest_harness.h"
#include "kvmi_util.h"
#include "processor.h"
#include "ucall_common.h"

#define TRACING		"/sys/kernel/tracing"
#define NOT_FOUND	0xdeadbeefdeadbeefULL

static void guest_code(void)
{
	for (;;) {
		uint64_t rax = KVM_HC_KVMI;

		asm volatile("vmmcall" : "+a"(rax) : : "rbx", "rcx", "rdx",
			     "rsi", "memory");
		GUEST_SYNC(rax);
	}
}

static uint64_t vm_stat1(struct kvm_vm *vm, const char *name)
{
	uint64_t v = NOT_FOUND;

	__vm_get_stat(vm, name, &v, 1);
	return v;
}

FIXTURE(stats) {
	struct kvm_vm *vm;
	struct kvm_vcpu *vcpu;
	int fd;
	struct kvmi_maps m;
	int kick;
};

KVMI_TRANSPORT_VARIANTS(stats);

FIXTURE_SETUP(stats)
{
	KVMI_REQUIRE();
	kvmi_use_transport(variant->transport);
	self->vm = vm_create_with_one_vcpu(&self->vcpu, guest_code);
	self->kick = eventfd(0, EFD_CLOEXEC);
	ASSERT_LE(0, self->kick);
	self->fd = -1;
}

FIXTURE_TEARDOWN(stats)
{
	if (self->fd >= 0) {
		kvmi_unmap_all(&self->m);
		close(self->fd);
	}
	close(self->kick);
	kvm_vm_free(self->vm);
}

static void open_introspection(FIXTURE_DATA(stats) *self)
{
	self->fd = kvmi_open(self->vm);
	kvmi_map_all(self->fd, &self->m);
	kvmi_set_doorbells(self->fd, KVMI_ALL_VCPUS, KVMI_DOORBELL_KICK, -1,
			   self->kick);
	kvmi_control_events(self->fd, 0, KVMI_EVENT_HYPERCALL, 1);
}

static void close_introspection(FIXTURE_DATA(stats) *self)
{
	kvmi_unmap_all(&self->m);
	close(self->fd);
	self->fd = -1;
}

/*
 * One hypercall event: a GET_REGISTERS command while it waits, then the
 * reply @action. Returns the event's seq.
 */
static uint32_t one_event(struct __test_metadata *_metadata,
			  FIXTURE_DATA(stats) *self, uint8_t action)
{
	struct kvmi_runner r;
	uint32_t last = kvmi_event_slot(&self->m, 0)->seq;
	uint32_t s;

	kvmi_runner_start(&r, self->vcpu);
	s = kvmi_wait_event(&self->m, 0, -1, last);
	ASSERT_EQ(0, kvmi_run_cmd(&self->m, 0, KVMI_CMD_GET_REGISTERS, NULL,
				  self->kick));
	kvmi_send_reply(&self->m, 0, s, KVMI_EVENT_HYPERCALL, action, 0,
			NULL, self->kick);
	kvmi_runner_join(&r);
	ASSERT_EQ(0, r.ret);
	ASSERT_EQ(UCALL_SYNC, r.ucall);
	return s;
}

TEST_F(stats, vcpu_counters_cumulative)
{
	uint64_t hist[32], sum = 0, v;
	int i;

	ASSERT_EQ(0, kvmi_vcpu_stat(self->vcpu, "kvmi_events"));
	open_introspection(self);
	one_event(_metadata, self, KVMI_ACTION_CONTINUE);
	one_event(_metadata, self, KVMI_ACTION_RETRY);	/* invalid */

	ASSERT_EQ(2, kvmi_vcpu_stat(self->vcpu, "kvmi_events"));
	ASSERT_EQ(1, kvmi_vcpu_stat(self->vcpu, "kvmi_replies"));
	ASSERT_EQ(1, kvmi_vcpu_stat(self->vcpu, "kvmi_bad_replies"));
	ASSERT_EQ(2, kvmi_vcpu_stat(self->vcpu, "kvmi_commands"));
	ASSERT_EQ(0, kvmi_vcpu_stat(self->vcpu, "kvmi_command_errors"));
	ASSERT_EQ(0, kvmi_vcpu_stat(self->vcpu, "kvmi_deadlines"));
	ASSERT_TRUE(kvmi_vcpu_stats(self->vcpu, "kvmi_spin_hits", &v, 1));
	ASSERT_NE(0, kvmi_vcpu_stat(self->vcpu, "kvmi_wait_ns"));
	ASSERT_TRUE(kvmi_vcpu_stats(self->vcpu, "kvmi_wait_hist", hist, 32));
	for (i = 0; i < 32; i++)
		sum += hist[i];
	ASSERT_EQ(2, sum);
	/* The shared counters agree. */
	ASSERT_EQ(2, kvmi_counters(&self->m, 0)->events);
	ASSERT_EQ(kvmi_vcpu_stat(self->vcpu, "kvmi_spin_hits") +
		  kvmi_vcpu_stat(self->vcpu, "kvmi_sleeps"),
		  kvmi_counters(&self->m, 0)->spin_hits +
		  kvmi_counters(&self->m, 0)->sleeps);

	/* A new introspection: shared counters restart, stats go on. */
	close_introspection(self);
	open_introspection(self);
	one_event(_metadata, self, KVMI_ACTION_CONTINUE);
	ASSERT_EQ(1, kvmi_counters(&self->m, 0)->events);
	ASSERT_EQ(3, kvmi_vcpu_stat(self->vcpu, "kvmi_events"));
	ASSERT_EQ(2, kvmi_vcpu_stat(self->vcpu, "kvmi_replies"));
}

TEST_F(stats, vm_counters)
{
	struct kvmi_unhook uh = { .flags = KVMI_UNHOOK_FORCE };
	struct kvmi_runner r;

	ASSERT_EQ(0, vm_stat1(self->vm, "kvmi_opens"));
	open_introspection(self);
	ASSERT_EQ(1, vm_stat1(self->vm, "kvmi_opens"));

	/* Forced unhook with the vCPU waiting: it is released. */
	kvmi_runner_start(&r, self->vcpu);
	kvmi_wait_event(&self->m, 0, -1, 0);
	ASSERT_EQ(0, ioctl(self->vm->fd, KVM_INTROSPECTION_UNHOOK, &uh));
	kvmi_runner_join(&r);
	ASSERT_EQ(0, r.ret);
	ASSERT_EQ(1, vm_stat1(self->vm, "kvmi_unhooks"));
	ASSERT_EQ(1, vm_stat1(self->vm, "kvmi_forced_unhooks"));
	ASSERT_EQ(1, kvmi_vcpu_stat(self->vcpu, "kvmi_detach_releases"));
	close_introspection(self);
	open_introspection(self);
	ASSERT_EQ(2, vm_stat1(self->vm, "kvmi_opens"));
}

/* Read the whole trace buffer into a malloc()ed string. */
static char *read_trace(void)
{
	size_t len = 0, cap = 1 << 16;
	char *buf = malloc(cap);
	int fd = open(TRACING "/trace", O_RDONLY);
	ssize_t n;

	TEST_ASSERT(fd >= 0 && buf, "open trace");
	while ((n = read(fd, buf + len, cap - len - 1)) > 0) {
		len += n;
		if (cap - len < 4096) {
			cap *= 2;
			buf = realloc(buf, cap);
			TEST_ASSERT(buf, "realloc");
		}
	}
	buf[len] = 0;
	close(fd);
	return buf;
}

static void write_file(const char *path, const char *s)
{
	int fd = open(path, O_WRONLY | O_TRUNC);

	TEST_ASSERT(fd >= 0, "open %s: %s", path, strerror(errno));
	TEST_ASSERT(write(fd, s, strlen(s)) == (ssize_t)strlen(s),
		    "write %s: %s", path, strerror(errno));
	close(fd);
}

/* The round trip of one event and its command, as the trace shows it. */
TEST_F(stats, tracepoints)
{
	char want[128], *trace;
	uint32_t s;

	if (access(TRACING "/events/kvmi/enable", W_OK))
		SKIP(return, "no writable " TRACING "/events/kvmi (tracefs)");
	write_file(TRACING "/trace", "");
	write_file(TRACING "/events/kvmi/enable", "1");
	open_introspection(self);
	s = one_event(_metadata, self, KVMI_ACTION_CONTINUE);
	write_file(TRACING "/events/kvmi/enable", "0");
	trace = read_trace();

	snprintf(want, sizeof(want), "kvmi_event_send: vcpu 0 seq %u id %u ",
		 s, KVMI_EVENT_HYPERCALL);
	ASSERT_NE(NULL, strstr(trace, want));
	snprintf(want, sizeof(want), "kvmi_command: vcpu 0 seq 1 id 0x%x error 0",
		 KVMI_CMD_GET_REGISTERS);
	ASSERT_NE(NULL, strstr(trace, want));
	snprintf(want, sizeof(want),
		 "kvmi_reply: vcpu 0 seq %u id %u action %u flags 0x0 reason %u",
		 s, KVMI_EVENT_HYPERCALL, KVMI_ACTION_CONTINUE,
		 KVMI_DONE_REPLY);
	ASSERT_NE(NULL, strstr(trace, want));
	/* The send comes before the reply. */
	ASSERT_LT((uintptr_t)strstr(trace, "kvmi_event_send"),
		  (uintptr_t)strstr(trace, "kvmi_reply"));
	free(trace);
}

TEST_HARNESS_MAIN
