// SPDX-License-Identifier: GPL-2.0-only
/*
 * kvmi-ring: single-stepping (Documentation/virt/kvm/kvmi.rst, sections
 * 10.9 and 11.11): after a BREAKPOINT event, KVMI_REPLY_SINGLESTEP and
 * KVMI_CMD_CONTROL_SINGLESTEP raise one SINGLESTEP event per guest
 * instruction, at the RIPs the code says, and the guest neither sees the
 * introspection's TF (PUSHF) nor loses its own single-step (#DB handler).
 *
 * Needs the #BP intercept of INT3 under SVM, which the runner's QEMU
 * provides (see kvmi_int3_exit_test).
 */
#include <pthread.h>
#include <sys/eventfd.h>

#include "kselftest_harness.h"
#include "kvmi_util.h"
#include "processor.h"
#include "ucall_common.h"

#define TF	(1ull << 8)

extern char ss_bp[], ss_i1[], ss_i2[], ss_i3[], ss_i4[], ss_i5[], ss_i6[];
extern char gs_1[], gs_2[], gs_end[];

static volatile uint64_t pushed_flags;
static volatile int db_count;
static volatile uint64_t db_rip;

/* The guest's own #DB handler: one step of its own, then TF off. */
static void guest_db_handler(struct ex_regs *regs)
{
	db_count++;
	db_rip = regs->rip;
	regs->rflags &= ~TF;
}

/*
 * An INT3 the tool steps from, a few instructions (PUSHF among them),
 * then a single-step of the guest's own: TF set with POPF, one #DB after
 * the NOP at gs_1.
 */
static void guest_code(void)
{
	uint64_t flags;

	asm volatile(".global ss_bp, ss_i1, ss_i2, ss_i3, ss_i4, ss_i5, ss_i6\n"
		     "ss_bp: int3\n"
		     "ss_i1: nop\n"
		     "ss_i2: mov $1, %%eax\n"
		     "ss_i3: pushf\n"
		     "ss_i4: pop %%rax\n"
		     "ss_i5: mov %%rax, %0\n"
		     "ss_i6: nop\n"
		     : "=r"(flags) : : "rax");
	pushed_flags = flags;
	asm volatile(".global gs_1, gs_2, gs_end\n"
		     "pushf\n"
		     "orq $0x100, (%%rsp)\n"
		     "popf\n"
		     "gs_1: nop\n"
		     "gs_2: nop\n"
		     "gs_end: nop\n"
		     : : : "memory");
	GUEST_SYNC2(pushed_flags, db_count);
	GUEST_SYNC(db_rip);
	GUEST_DONE();
}

FIXTURE(ss) {
	struct kvm_vm *vm;
	struct kvm_vcpu *vcpu;
	int fd;
	struct kvmi_maps m;
	int notify;
	int kick;
	struct kvmi_runner r;
	uint32_t seq;
	bool guest_tf;	/* the guest may have set TF itself */
};

KVMI_TRANSPORT_VARIANTS(ss);

FIXTURE_SETUP(ss)
{
	struct kvmi_version ver;

	KVMI_REQUIRE();
	kvmi_use_transport(variant->transport);
	self->vm = vm_create_with_one_vcpu(&self->vcpu, guest_code);
	vm_install_exception_handler(self->vm, DB_VECTOR, guest_db_handler);
	self->fd = kvmi_open(self->vm);
	kvmi_get_version(self->fd, &ver);
	TEST_REQUIRE(ver.features & KVMI_FEATURE_SINGLESTEP);
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

FIXTURE_TEARDOWN(ss)
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

/* Run the vCPU to the INT3 at ss_bp; self->seq is its event. */
static void start_bp(struct __test_metadata *_metadata, FIXTURE_DATA(ss) *self)
{
	struct kvmi_event *ev = kvmi_event_slot(&self->m, 0);

	kvmi_control_events(self->fd, 0, KVMI_EVENT_BREAKPOINT, 1);
	kvmi_runner_start(&self->r, self->vcpu);
	self->seq = kvmi_wait_event(&self->m, 0, self->notify, 0);
	ASSERT_EQ(KVMI_EVENT_BREAKPOINT, ev->id);
	ASSERT_EQ((uint64_t)ss_bp, ev->regs.rip);
}

/* Reply to the pending event, wait for the next one: its RIP. */
static uint64_t next(struct __test_metadata *_metadata, FIXTURE_DATA(ss) *self,
		     uint32_t flags)
{
	struct kvmi_event *ev = kvmi_event_slot(&self->m, 0);

	kvmi_send_reply(&self->m, 0, self->seq, ev->id, KVMI_ACTION_CONTINUE,
			flags, NULL, self->kick);
	self->seq = kvmi_wait_event(&self->m, 0, self->notify, self->seq);
	EXPECT_EQ(KVMI_EVENT_SINGLESTEP, ev->id);
	EXPECT_EQ(0, ev->data.singlestep.failed);
	/* The guest's RFLAGS, without the introspection's TF. */
	if (!self->guest_tf)
		EXPECT_EQ(0, ev->regs.rflags & TF);
	return ev->regs.rip;
}

static int control(FIXTURE_DATA(ss) *self, uint8_t enable, uint8_t pad)
{
	union kvmi_cmd_args a = {};

	a.control_singlestep.enable = enable;
	a.control_singlestep.padding[6] = pad;
	return kvmi_run_cmd(&self->m, 0, KVMI_CMD_CONTROL_SINGLESTEP, &a,
			    self->kick);
}

/* The last reply: no step; the guest reports what it saw. */
static void finish(struct __test_metadata *_metadata, FIXTURE_DATA(ss) *self)
{
	struct kvmi_event *ev = kvmi_event_slot(&self->m, 0);

	kvmi_send_reply(&self->m, 0, self->seq, ev->id, KVMI_ACTION_CONTINUE,
			0, NULL, self->kick);
	kvmi_runner_join(&self->r);
	ASSERT_EQ(0, self->r.ret);
	ASSERT_EQ(UCALL_SYNC, self->r.ucall);
	/* The guest's PUSHF didn't see the introspection's TF. */
	ASSERT_EQ(0, self->r.args[0] & TF);
	/* Its own step: one #DB, after gs_1. */
	ASSERT_EQ(1, self->r.args[1]);
	memset(&self->r, 0, sizeof(self->r));
	self->r.vcpu = self->vcpu;
	kvmi_runner_fn(&self->r);
	ASSERT_EQ(UCALL_SYNC, self->r.ucall);
	ASSERT_EQ((uint64_t)gs_2, self->r.args[1]);
}

/* A reply with KVMI_REPLY_SINGLESTEP steps exactly one instruction. */
TEST_F(ss, reply_steps_one_instruction)
{
	start_bp(_metadata, self);
	/* CONTINUE skips the INT3; then ss_i1 executes. */
	ASSERT_EQ((uint64_t)ss_i2, next(_metadata, self,
					 KVMI_REPLY_SINGLESTEP));
	ASSERT_EQ((uint64_t)ss_i3, next(_metadata, self,
					 KVMI_REPLY_SINGLESTEP));
	/* PUSHF, emulated. */
	ASSERT_EQ((uint64_t)ss_i4, next(_metadata, self,
					 KVMI_REPLY_SINGLESTEP));
	ASSERT_EQ((uint64_t)ss_i5, next(_metadata, self,
					 KVMI_REPLY_SINGLESTEP));
	ASSERT_EQ((uint64_t)ss_i6, next(_metadata, self,
					 KVMI_REPLY_SINGLESTEP));
	finish(_metadata, self);
	/* The BREAKPOINT and five steps, none after the last reply. */
	ASSERT_EQ(6, kvmi_counters(&self->m, 0)->events);
}

/* KVMI_CMD_CONTROL_SINGLESTEP: every instruction until turned off. */
TEST_F(ss, control_steps_until_off)
{
	start_bp(_metadata, self);
	ASSERT_EQ(0, control(self, 1, 0));
	ASSERT_EQ((uint64_t)ss_i2, next(_metadata, self, 0));
	ASSERT_EQ((uint64_t)ss_i3, next(_metadata, self, 0));
	ASSERT_EQ((uint64_t)ss_i4, next(_metadata, self, 0));
	ASSERT_EQ((uint64_t)ss_i5, next(_metadata, self, 0));
	ASSERT_EQ((uint64_t)ss_i6, next(_metadata, self, 0));
	ASSERT_EQ(0, control(self, 0, 0));
	finish(_metadata, self);
	ASSERT_EQ(6, kvmi_counters(&self->m, 0)->events);
}

/*
 * Stepping through the guest's own single-step: its POPF sets TF, its
 * #DB comes after gs_1 and its handler runs, stepped too.
 */
TEST_F(ss, guest_single_step_while_stepped)
{
	uint64_t rip = 0;
	int n;

	start_bp(_metadata, self);
	self->guest_tf = true;
	ASSERT_EQ(0, control(self, 1, 0));
	for (n = 0; n < 100000 && rip != (uint64_t)gs_end; n++)
		rip = next(_metadata, self, 0);
	ASSERT_EQ((uint64_t)gs_end, rip);
	ASSERT_EQ(0, control(self, 0, 0));
	finish(_metadata, self);
}

/* Without stepping, the guest's own single-step is untouched. */
TEST_F(ss, guest_single_step_alone)
{
	start_bp(_metadata, self);
	finish(_metadata, self);
	ASSERT_EQ(1, kvmi_counters(&self->m, 0)->events);
}

TEST_F(ss, control_rejects_bad_arguments)
{
	start_bp(_metadata, self);
	ASSERT_EQ(-EINVAL, control(self, 2, 0));
	ASSERT_EQ(-EINVAL, control(self, 1, 1));
	finish(_metadata, self);
	ASSERT_EQ(1, kvmi_counters(&self->m, 0)->events);
}

TEST_HARNESS_MAIN
