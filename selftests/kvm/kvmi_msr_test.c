// SPDX-License-Identifier: GPL-2.0-only
/*
 * kvmi-ring: the MSR write event (Documentation/virt/kvm/kvmi.rst, section
 * 10.7): guest WRMSRs reported with the old and the new value, enabled per
 * MSR, each reply's effect as the guest sees it, and the interception
 * kept whatever KVM's pass-through MSRs and the VMM's MSR filter say.
 */
#include <pthread.h>
#include <sys/eventfd.h>

#include "kselftest_harness.h"
#include "kvmi_util.h"
#include "processor.h"
#include "ucall_common.h"

#define VAL1	0xffffffff81000000ULL
#define VAL2	0xffffffff82000000ULL
#define VAL3	0xffffffff83000000ULL

static int op;

enum {
	OP_LSTAR,	/* write LSTAR: passed through to the guest by KVM */
	OP_STAR_LSTAR,	/* write STAR, then LSTAR */
};

/* Write, report LSTAR and the vector of the write's fault (0: none). */
static void guest_code(void)
{
	uint8_t vector;

	if (op == OP_STAR_LSTAR)
		wrmsr(MSR_STAR, 0x0023001000000000ULL);
	vector = wrmsr_safe(MSR_LSTAR, VAL1);
	GUEST_SYNC2(rdmsr(MSR_LSTAR), vector);
	/* Again, without the event: straight through. */
	wrmsr(MSR_LSTAR, VAL3);
	GUEST_SYNC2(rdmsr(MSR_LSTAR), 0x100);
	GUEST_DONE();
}

FIXTURE(msr) {
	struct kvm_vm *vm;
	struct kvm_vcpu *vcpu;
	int fd;
	struct kvmi_maps m;
	int notify;
	int kick;
	struct kvmi_runner r;
};

KVMI_TRANSPORT_VARIANTS(msr);

FIXTURE_SETUP(msr)
{
	KVMI_REQUIRE();
	kvmi_use_transport(variant->transport);
	self->vm = vm_create_with_one_vcpu(&self->vcpu, guest_code);
	self->fd = kvmi_open(self->vm);
	kvmi_map_all(self->fd, &self->m);
	self->notify = eventfd(0, EFD_CLOEXEC);
	self->kick = eventfd(0, EFD_CLOEXEC);
	ASSERT_LE(0, self->notify);
	ASSERT_LE(0, self->kick);
	kvmi_set_doorbells(self->fd, KVMI_ALL_VCPUS,
			   KVMI_DOORBELL_NOTIFY | KVMI_DOORBELL_KICK,
			   self->notify, self->kick);
	self->r.joined = true;
}

FIXTURE_TEARDOWN(msr)
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

static void start(struct __test_metadata *_metadata, FIXTURE_DATA(msr) *self,
		  int guest_op)
{
	op = guest_op;
	sync_global_to_guest(self->vm, op);
	kvmi_runner_start(&self->r, self->vcpu);
}

/* Enable the event for @msr, run the guest to it; return the event's seq. */
static uint32_t start_msr(struct __test_metadata *_metadata,
			  FIXTURE_DATA(msr) *self, uint32_t msr, int guest_op)
{
	kvmi_control_events_param(self->fd, 0, KVMI_EVENT_MSR, 1, msr);
	start(_metadata, self, guest_op);
	return kvmi_wait_event(&self->m, 0, self->notify, 0);
}

/* Reply; the event is disabled first, so the guest's next write isn't seen. */
static void reply(FIXTURE_DATA(msr) *self, uint32_t s, uint8_t action,
		  uint64_t value, const struct kvmi_x86_regs *regs)
{
	struct kvmi_reply *rp = kvmi_reply_slot(&self->m, 0);

	kvmi_control_events_param(self->fd, 0, KVMI_EVENT_MSR, 0, MSR_LSTAR);
	memset(&rp->data, 0, sizeof(rp->data));
	rp->data.msr.new_value = value;
	kvmi_send_reply(&self->m, 0, s, KVMI_EVENT_MSR, action,
			regs ? KVMI_REPLY_SET_REGS : 0, regs, self->kick);
}

/* The guest reached its first report. */
#define ASSERT_SYNC(self) do {					\
	kvmi_runner_join(&(self)->r);				\
	ASSERT_EQ(0, (self)->r.ret);				\
	ASSERT_EQ(UCALL_SYNC, (self)->r.ucall);			\
} while (0)

/* The guest's second write went through without an event. */
static void assert_second_write(struct __test_metadata *_metadata,
				FIXTURE_DATA(msr) *self)
{
	struct ucall uc;

	vcpu_run(self->vcpu);
	ASSERT_EQ(UCALL_SYNC, get_ucall(self->vcpu, &uc));
	ASSERT_EQ(0x100, uc.args[1]);
	ASSERT_EQ(VAL3, uc.args[0]);
	ASSERT_EQ(1, kvmi_counters(&self->m, 0)->events);
}

TEST_F(msr, event_carries_old_and_new_value)
{
	struct kvmi_event *ev = kvmi_event_slot(&self->m, 0);
	uint32_t s = start_msr(_metadata, self, MSR_LSTAR, OP_LSTAR);

	ASSERT_EQ(KVMI_EVENT_MSR, ev->id);
	ASSERT_EQ(MSR_LSTAR, ev->data.msr.msr);
	ASSERT_EQ(0, ev->data.msr.padding);
	ASSERT_EQ(ev->regs.lstar, ev->data.msr.old_value);
	ASSERT_EQ(VAL1, ev->data.msr.new_value);
	ASSERT_EQ(MSR_LSTAR, ev->regs.rcx);
	reply(self, s, KVMI_ACTION_CONTINUE, 0, NULL);
	ASSERT_SYNC(self);
	ASSERT_EQ(VAL1, self->r.args[0]);
	ASSERT_EQ(0, self->r.args[1]);
	assert_second_write(_metadata, self);
}

TEST_F(msr, deny_blocks_write)
{
	struct kvmi_event *ev = kvmi_event_slot(&self->m, 0);
	uint32_t s = start_msr(_metadata, self, MSR_LSTAR, OP_LSTAR);
	uint64_t old = ev->data.msr.old_value;

	reply(self, s, KVMI_ACTION_DENY, 0, NULL);
	ASSERT_SYNC(self);
	ASSERT_EQ(old, self->r.args[0]);
	ASSERT_EQ(0, self->r.args[1]);
	assert_second_write(_metadata, self);
}

TEST_F(msr, allow_writes_tool_value)
{
	uint32_t s = start_msr(_metadata, self, MSR_LSTAR, OP_LSTAR);

	reply(self, s, KVMI_ACTION_ALLOW, VAL2, NULL);
	ASSERT_SYNC(self);
	ASSERT_EQ(VAL2, self->r.args[0]);
}

/* A value the MSR refuses (non-canonical): the WRMSR faults. */
TEST_F(msr, allow_with_bad_value_faults)
{
	uint32_t s = start_msr(_metadata, self, MSR_LSTAR, OP_LSTAR);
	uint64_t old = kvmi_event_slot(&self->m, 0)->data.msr.old_value;

	reply(self, s, KVMI_ACTION_ALLOW, 0x8000000000000000ULL, NULL);
	ASSERT_SYNC(self);
	ASSERT_EQ(GP_VECTOR, self->r.args[1]);
	ASSERT_EQ(old, self->r.args[0]);
}

/* Per MSR: with LSTAR enabled, the STAR write before it isn't reported. */
TEST_F(msr, per_msr)
{
	struct kvmi_event *ev = kvmi_event_slot(&self->m, 0);
	uint32_t s = start_msr(_metadata, self, MSR_LSTAR, OP_STAR_LSTAR);

	ASSERT_EQ(MSR_LSTAR, ev->data.msr.msr);
	reply(self, s, KVMI_ACTION_CONTINUE, 0, NULL);
	ASSERT_SYNC(self);
	ASSERT_EQ(1, kvmi_counters(&self->m, 0)->events);
}

/* A filter that allows the MSR doesn't take the interception away. */
TEST_F(msr, filter_allowing_msr_keeps_event)
{
	uint8_t allow = 1;
	struct kvm_msr_filter filter = {
		.flags = KVM_MSR_FILTER_DEFAULT_ALLOW,
		.ranges = {
			{
				.flags = KVM_MSR_FILTER_READ |
					 KVM_MSR_FILTER_WRITE,
				.nmsrs = 1,
				.base = MSR_LSTAR,
				.bitmap = &allow,
			},
		},
	};
	uint32_t s;

	kvmi_control_events_param(self->fd, 0, KVMI_EVENT_MSR, 1, MSR_LSTAR);
	vm_ioctl(self->vm, KVM_X86_SET_MSR_FILTER, &filter);
	start(_metadata, self, OP_LSTAR);
	s = kvmi_wait_event(&self->m, 0, self->notify, 0);
	ASSERT_EQ(MSR_LSTAR, kvmi_event_slot(&self->m, 0)->data.msr.msr);
	reply(self, s, KVMI_ACTION_DENY, 0, NULL);
	ASSERT_SYNC(self);
	ASSERT_NE(VAL1, self->r.args[0]);
	assert_second_write(_metadata, self);
}

/* A filter set before the event is enabled: the event still wins. */
TEST_F(msr, event_after_filter)
{
	uint8_t allow = 1;
	struct kvm_msr_filter filter = {
		.flags = KVM_MSR_FILTER_DEFAULT_ALLOW,
		.ranges = {
			{
				.flags = KVM_MSR_FILTER_WRITE,
				.nmsrs = 1,
				.base = MSR_LSTAR,
				.bitmap = &allow,
			},
		},
	};
	uint32_t s;

	vm_ioctl(self->vm, KVM_X86_SET_MSR_FILTER, &filter);
	s = start_msr(_metadata, self, MSR_LSTAR, OP_LSTAR);
	reply(self, s, KVMI_ACTION_CONTINUE, 0, NULL);
	ASSERT_SYNC(self);
	ASSERT_EQ(VAL1, self->r.args[0]);
}

TEST_F(msr, crash_exits_to_vmm)
{
	uint32_t s = start_msr(_metadata, self, MSR_LSTAR, OP_LSTAR);
	uint64_t rip = kvmi_event_slot(&self->m, 0)->regs.rip;
	struct kvm_regs regs;

	reply(self, s, KVMI_ACTION_CRASH, 0, NULL);
	kvmi_runner_join(&self->r);
	ASSERT_EQ(0, self->r.ret);
	ASSERT_EQ(KVM_EXIT_SYSTEM_EVENT, self->r.exit_reason);
	ASSERT_EQ(KVM_SYSTEM_EVENT_CRASH, self->vcpu->run->system_event.type);
	vcpu_regs_get(self->vcpu, &regs);
	ASSERT_EQ(rip, regs.rip);
}

/* The tool goes away with the event pending: the write happens. */
TEST_F(msr, close_continues)
{
	start_msr(_metadata, self, MSR_LSTAR, OP_LSTAR);
	kvmi_unmap_all(&self->m);
	self->m.vm = NULL;
	close(self->fd);
	self->fd = -1;
	ASSERT_SYNC(self);
	ASSERT_EQ(VAL1, self->r.args[0]);
}

TEST_F(msr, control_events_bad_param)
{
	static const uint32_t bad[] = {
		0x2000, 0x40000000, 0xbfffffff, 0xc0002000, 0xffffffff,
	};
	int i;

	for (i = 0; i < ARRAY_SIZE(bad); i++) {
		ASSERT_EQ(-1, __kvmi_control_events_param(self->fd, 0,
							  KVMI_EVENT_MSR, 1,
							  bad[i]));
		ASSERT_EQ(EINVAL, errno);
	}
	ASSERT_EQ(0, __kvmi_control_events_param(self->fd, 0, KVMI_EVENT_MSR,
						 1, 0x1fff));
	ASSERT_EQ(0, __kvmi_control_events_param(self->fd, 0, KVMI_EVENT_MSR,
						 1, 0xc0001fff));
}

TEST_HARNESS_MAIN
