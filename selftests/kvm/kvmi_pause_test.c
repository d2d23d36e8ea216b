// SPDX-License-Identifier: GPL-2.0-only
/*
 * kvmi-ring: KVMI_IOCTL_PAUSE_VCPU, KVMI_IOCTL_PAUSE_ALL, KVMI_IOCTL_UNPAUSE
 * and the PAUSE event (Documentation/virt/kvm/kvmi.rst, sections 7.9 to
 * 7.11 and 10.3).
 *
 * Two vCPUs count in guest memory, each in its own slot, forever, and
 * copy MSR_KERNEL_GS_BASE next to their count; the main thread plays the
 * tool and watches the counts from the host.
 */
#include <pthread.h>
#include <signal.h>
#include <sys/eventfd.h>

#include "kselftest_harness.h"
#include "kvmi_util.h"
#include "processor.h"
#include "ucall_common.h"

#define NR_VCPUS	2
#define MAGIC_KGS	0xffff888000abc000ULL
#define STEPS		1000	/* what "keeps advancing" is measured in */

static volatile uint64_t counts[NR_VCPUS];
static volatile uint64_t kgs[NR_VCPUS];

static void guest_count(uint64_t id)
{
	for (;;) {
		kgs[id] = rdmsr(MSR_KERNEL_GS_BASE);
		counts[id]++;
	}
}

/* A vCPU thread: KVM_RUN until the test stops it with a signal. */
struct runner {
	struct kvm_vcpu *vcpu;
	pthread_t thread;
	int ret;		/* KVM_RUN's last return value */
	uint32_t exit_reason;
	bool stop;
	bool joined;
};

static void *runner_fn(void *arg)
{
	struct runner *r = arg;

	for (;;) {
		r->ret = __vcpu_run(r->vcpu);
		r->exit_reason = r->vcpu->run->exit_reason;
		if (__atomic_load_n(&r->stop, __ATOMIC_ACQUIRE))
			break;
		if (r->ret == 0)
			break;	/* CRASH or anything else: the test looks */
	}
	return NULL;
}

static void sig_nop(int sig)
{
}

FIXTURE(pause) {
	struct kvm_vm *vm;
	struct kvm_vcpu *vcpus[NR_VCPUS];
	int fd;
	struct kvmi_maps m;
	int notify;
	int kick;
	struct runner r[NR_VCPUS];
	volatile uint64_t *counts[NR_VCPUS];
	volatile uint64_t *kgs[NR_VCPUS];
};

KVMI_TRANSPORT_VARIANTS(pause);

FIXTURE_SETUP(pause)
{
	struct sigaction sa = { .sa_handler = sig_nop };
	int i;

	KVMI_REQUIRE();
	kvmi_use_transport(variant->transport);
	ASSERT_EQ(0, sigaction(SIGUSR1, &sa, NULL));	/* no SA_RESTART */
	self->vm = vm_create_with_vcpus(NR_VCPUS, guest_count, self->vcpus);
	self->fd = kvmi_open(self->vm);
	kvmi_map_all(self->fd, &self->m);
	self->notify = eventfd(0, EFD_CLOEXEC);
	self->kick = eventfd(0, EFD_CLOEXEC);
	ASSERT_LE(0, self->notify);
	ASSERT_LE(0, self->kick);
	kvmi_set_doorbells(self->fd, KVMI_ALL_VCPUS,
			   KVMI_DOORBELL_NOTIFY | KVMI_DOORBELL_KICK,
			   self->notify, self->kick);
	for (i = 0; i < NR_VCPUS; i++) {
		vcpu_args_set(self->vcpus[i], 1, i);
		self->counts[i] = addr_gva2hva(self->vm,
					       (vm_vaddr_t)&counts[i]);
		self->kgs[i] = addr_gva2hva(self->vm, (vm_vaddr_t)&kgs[i]);
		self->r[i].vcpu = self->vcpus[i];
		ASSERT_EQ(0, pthread_create(&self->r[i].thread, NULL,
					    runner_fn, &self->r[i]));
	}
}

FIXTURE_TEARDOWN(pause)
{
	int i;

	kvmi_unmap_all(&self->m);
	close(self->fd);	/* releases a vCPU still paused */
	for (i = 0; i < NR_VCPUS; i++) {
		__atomic_store_n(&self->r[i].stop, true, __ATOMIC_RELEASE);
		/* Kick it out of KVM_RUN until the thread is gone. */
		while (!self->r[i].joined &&
		       pthread_tryjoin_np(self->r[i].thread, NULL)) {
			pthread_kill(self->r[i].thread, SIGUSR1);
			usleep(1000);
		}
	}
	close(self->notify);
	close(self->kick);
	kvm_vm_free(self->vm);
}

static int __pause_vcpu(int fd, uint32_t vcpu, uint32_t flags)
{
	struct kvmi_pause_vcpu pv = { .vcpu = vcpu, .flags = flags };

	return ioctl(fd, KVMI_IOCTL_PAUSE_VCPU, &pv);
}

static int __unpause(int fd, uint32_t vcpu, uint32_t flags)
{
	struct kvmi_pause_vcpu pv = { .vcpu = vcpu, .flags = flags };

	return ioctl(fd, KVMI_IOCTL_UNPAUSE, &pv);
}

static int __pause_all(int fd, uint32_t flags, uint32_t padding)
{
	struct kvmi_pause_all pa = { .flags = flags, .padding = padding };

	return ioctl(fd, KVMI_IOCTL_PAUSE_ALL, &pa);
}

/* Wait until vCPU @i's count is at least @steps past @from. */
static void wait_advance(volatile uint64_t *count, uint64_t from,
			 uint64_t steps)
{
	while (*count < from + steps)
		;
}

/* Wait for vCPU @i's PAUSE event, check it, return its seq. */
static uint32_t wait_pause(struct __test_metadata *_metadata,
			   FIXTURE_DATA(pause) *self, uint32_t i,
			   uint32_t last)
{
	struct kvmi_event *ev = kvmi_event_slot(&self->m, i);
	uint32_t s = kvmi_wait_event(&self->m, i, self->notify, last);

	ASSERT_EQ(KVMI_EVENT_PAUSE, ev->id);
	ASSERT_EQ(i, ev->vcpu);
	ASSERT_EQ(KVMI_X86_MODE_PROT64, ev->mode);
	ASSERT_EQ(0, ev->data.raw[0]);
	ASSERT_EQ(KVMI_REGS_ALL, ev->regs.groups);
	ASSERT_TRUE(kvmi_vcpu_state(&self->m, i)->flags & KVMI_VCPU_WAITING);
	return s;
}

static void reply(FIXTURE_DATA(pause) *self, uint32_t i, uint32_t s,
		  uint8_t action)
{
	kvmi_send_reply(&self->m, i, s, KVMI_EVENT_PAUSE, action, 0, NULL,
			self->kick);
}

/* vCPU 0 paused: it stops counting, vCPU 1 keeps going; reply resumes. */
TEST_F(pause, one_vcpu_paused_other_runs)
{
	struct kvmi_vcpu_state *vs = kvmi_vcpu_state(&self->m, 0);
	uint64_t c0, c1;
	uint32_t s;

	wait_advance(self->counts[0], 0, 1);
	ASSERT_EQ(0, __pause_vcpu(self->fd, 0, 0));
	s = wait_pause(_metadata, self, 0, 0);

	c0 = *self->counts[0];
	c1 = *self->counts[1];
	wait_advance(self->counts[1], c1, STEPS);
	ASSERT_EQ(c0, *self->counts[0]);
	ASSERT_EQ(0, kvmi_event_slot(&self->m, 1)->seq);

	reply(self, 0, s, KVMI_ACTION_CONTINUE);
	kvmi_wait_done(&self->m, 0, s);
	ASSERT_EQ(KVMI_DONE_REPLY, vs->done_reason);
	ASSERT_EQ(KVMI_ACTION_CONTINUE, vs->done_action);
	ASSERT_FALSE(vs->flags & KVMI_VCPU_WAITING);
	wait_advance(self->counts[0], c0, STEPS);
	ASSERT_EQ(1, kvmi_counters(&self->m, 0)->events);
}

/* The paused vCPU serves commands; their effect is seen by the guest. */
TEST_F(pause, commands_served_while_paused)
{
	struct kvmi_cmd_get_registers_result *gr;
	union kvmi_cmd_args args;
	struct kvmi_cmd_result *res;
	uint64_t c0;
	uint32_t s, cs;

	ASSERT_EQ(0, __pause_vcpu(self->fd, 1, 0));
	s = wait_pause(_metadata, self, 1, 0);
	c0 = *self->counts[0];

	cs = kvmi_send_cmd(&self->m, 1, KVMI_CMD_GET_REGISTERS, NULL,
			   self->kick);
	res = kvmi_wait_cmd_result(&self->m, 1, cs);
	ASSERT_EQ(0, res->error);
	gr = &res->result.get_registers;
	ASSERT_EQ(kvmi_event_slot(&self->m, 1)->regs.rip, gr->regs.rip);
	ASSERT_NE(MAGIC_KGS, gr->regs.kernel_gs_base);

	args.set_registers = gr->regs;
	args.set_registers.groups = KVMI_REGS_MSRS;
	args.set_registers.kernel_gs_base = MAGIC_KGS;
	ASSERT_EQ(0, kvmi_run_cmd(&self->m, 1, KVMI_CMD_SET_REGISTERS, &args,
				  self->kick));
	ASSERT_NE(MAGIC_KGS, *self->kgs[1]);
	wait_advance(self->counts[0], c0, STEPS);	/* vCPU 0 runs on */

	reply(self, 1, s, KVMI_ACTION_CONTINUE);
	while (*self->kgs[1] != MAGIC_KGS)
		;
	ASSERT_NE(MAGIC_KGS, *self->kgs[0]);
	ASSERT_EQ(2, kvmi_counters(&self->m, 1)->commands);
}

/* PAUSE_ALL stops both; one UNPAUSE of every vCPU resumes both. */
TEST_F(pause, pause_all_then_unpause_all)
{
	uint32_t s[NR_VCPUS];
	uint64_t c[NR_VCPUS];
	int i;

	wait_advance(self->counts[0], 0, 1);
	wait_advance(self->counts[1], 0, 1);
	ASSERT_EQ(0, __pause_all(self->fd, 0, 0));
	for (i = 0; i < NR_VCPUS; i++)
		s[i] = wait_pause(_metadata, self, i, 0);
	for (i = 0; i < NR_VCPUS; i++)
		c[i] = *self->counts[i];
	/* Both wait: a command round trip on each changes no count. */
	for (i = 0; i < NR_VCPUS; i++)
		ASSERT_EQ(0, kvmi_run_cmd(&self->m, i, KVMI_CMD_GET_REGISTERS,
					  NULL, self->kick));
	for (i = 0; i < NR_VCPUS; i++)
		ASSERT_EQ(c[i], *self->counts[i]);

	ASSERT_EQ(0, __unpause(self->fd, KVMI_ALL_VCPUS, 0));
	for (i = 0; i < NR_VCPUS; i++) {
		struct kvmi_vcpu_state *vs = kvmi_vcpu_state(&self->m, i);

		kvmi_wait_done(&self->m, i, s[i]);
		ASSERT_EQ(KVMI_DONE_UNPAUSE, vs->done_reason);
		ASSERT_EQ(KVMI_ACTION_CONTINUE, vs->done_action);
		wait_advance(self->counts[i], c[i], STEPS);
		ASSERT_EQ(0, kvmi_counters(&self->m, i)->replies);
	}
}

/* A reply after UNPAUSE is ignored; requests don't accumulate. */
TEST_F(pause, late_reply_ignored_requests_dont_accumulate)
{
	struct kvmi_vcpu_counters *cnt = kvmi_counters(&self->m, 0);
	uint64_t c0;
	uint32_t s;

	ASSERT_EQ(0, __pause_vcpu(self->fd, 0, 0));
	ASSERT_EQ(0, __pause_vcpu(self->fd, 0, 0));
	s = wait_pause(_metadata, self, 0, 0);
	ASSERT_EQ(0, __pause_vcpu(self->fd, 0, 0));
	ASSERT_EQ(0, __unpause(self->fd, 0, 0));
	kvmi_wait_done(&self->m, 0, s);
	ASSERT_EQ(KVMI_DONE_UNPAUSE, kvmi_vcpu_state(&self->m, 0)->done_reason);

	reply(self, 0, s, KVMI_ACTION_CRASH);
	c0 = *self->counts[0];
	wait_advance(self->counts[0], c0, STEPS);
	ASSERT_EQ(1, cnt->events);
	ASSERT_EQ(0, cnt->replies);
	ASSERT_EQ(0, cnt->bad_replies);

	/* UNPAUSE of a vCPU that is not paused does nothing. */
	ASSERT_EQ(0, __unpause(self->fd, 1, 0));
	ASSERT_EQ(0, kvmi_counters(&self->m, 1)->events);
}

/* Another pause after the first one ended raises a new event. */
TEST_F(pause, pause_again_after_reply)
{
	uint32_t s, s2;

	ASSERT_EQ(0, __pause_vcpu(self->fd, 0, 0));
	s = wait_pause(_metadata, self, 0, 0);
	reply(self, 0, s, KVMI_ACTION_CONTINUE);
	kvmi_wait_done(&self->m, 0, s);
	ASSERT_EQ(0, __pause_vcpu(self->fd, 0, 0));
	s2 = wait_pause(_metadata, self, 0, s);
	ASSERT_NE(s, s2);
	reply(self, 0, s2, KVMI_ACTION_CONTINUE);
	kvmi_wait_done(&self->m, 0, s2);
	ASSERT_EQ(2, kvmi_counters(&self->m, 0)->replies);
}

/* CRASH exits to the VMM; a bad action is the default, CONTINUE. */
TEST_F(pause, crash_and_bad_action)
{
	struct kvmi_vcpu_state *vs = kvmi_vcpu_state(&self->m, 1);
	uint64_t c1;
	uint32_t s;

	ASSERT_EQ(0, __pause_vcpu(self->fd, 1, 0));
	s = wait_pause(_metadata, self, 1, 0);
	reply(self, 1, s, KVMI_ACTION_ALLOW);
	kvmi_wait_done(&self->m, 1, s);
	ASSERT_EQ(KVMI_DONE_BAD_REPLY, vs->done_reason);
	c1 = *self->counts[1];
	wait_advance(self->counts[1], c1, STEPS);

	ASSERT_EQ(0, __pause_vcpu(self->fd, 1, 0));
	s = wait_pause(_metadata, self, 1, s);
	reply(self, 1, s, KVMI_ACTION_CRASH);
	pthread_join(self->r[1].thread, NULL);
	self->r[1].joined = true;
	ASSERT_EQ(0, self->r[1].ret);
	ASSERT_EQ(KVM_EXIT_SYSTEM_EVENT, self->r[1].exit_reason);
	ASSERT_EQ(KVM_SYSTEM_EVENT_CRASH,
		  self->vcpus[1]->run->system_event.type);
}

/* A signal takes the vCPU out of KVM_RUN; back in, it still waits. */
TEST_F(pause, signal_keeps_pause_pending)
{
	struct kvmi_vcpu_state *vs = kvmi_vcpu_state(&self->m, 0);
	uint64_t c0;
	uint32_t s;

	ASSERT_EQ(0, __pause_vcpu(self->fd, 0, 0));
	s = wait_pause(_metadata, self, 0, 0);
	c0 = *self->counts[0];
	/* The runner calls KVM_RUN again at once. */
	pthread_kill(self->r[0].thread, SIGUSR1);
	ASSERT_EQ(0, kvmi_run_cmd(&self->m, 0, KVMI_CMD_GET_REGISTERS, NULL,
				  self->kick));
	ASSERT_NE(s, vs->done_seq);
	ASSERT_EQ(c0, *self->counts[0]);
	reply(self, 0, s, KVMI_ACTION_CONTINUE);
	kvmi_wait_done(&self->m, 0, s);
	ASSERT_EQ(KVMI_DONE_REPLY, vs->done_reason);
	ASSERT_EQ(1, kvmi_counters(&self->m, 0)->events);
	wait_advance(self->counts[0], c0, STEPS);
}

TEST_F(pause, bad_args)
{
	ASSERT_EQ(-1, __pause_vcpu(self->fd, 0, 1));
	ASSERT_EQ(EINVAL, errno);
	ASSERT_EQ(-1, __pause_vcpu(self->fd, KVMI_ALL_VCPUS, 0));
	ASSERT_EQ(EINVAL, errno);
	ASSERT_EQ(-1, __pause_vcpu(self->fd, NR_VCPUS, 0));
	ASSERT_EQ(ENOENT, errno);
	ASSERT_EQ(-1, __pause_all(self->fd, 1, 0));
	ASSERT_EQ(EINVAL, errno);
	ASSERT_EQ(-1, __pause_all(self->fd, 0, 1));
	ASSERT_EQ(EINVAL, errno);
	ASSERT_EQ(-1, __unpause(self->fd, 0, 1));
	ASSERT_EQ(EINVAL, errno);
	ASSERT_EQ(-1, __unpause(self->fd, NR_VCPUS, 0));
	ASSERT_EQ(ENOENT, errno);
	/* PAUSE is not controlled by CONTROL_EVENTS, but is implemented. */
	ASSERT_EQ(-1, __kvmi_control_events(self->fd, 0, KVMI_EVENT_PAUSE, 1));
	ASSERT_EQ(EINVAL, errno);
	ASSERT_EQ(0, kvmi_counters(&self->m, 0)->events);
}

TEST_HARNESS_MAIN
