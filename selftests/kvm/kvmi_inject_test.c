// SPDX-License-Identifier: GPL-2.0-only
/*
 * kvmi-ring: KVMI_CMD_INJECT_EXCEPTION (Documentation/virt/kvm/kvmi.rst,
 * section 11.10): an exception queued while the vCPU waits in an event,
 * seen by the guest's handler with its error code and CR2, and its
 * delivery reported in the vCPU's shared state.
 */
#include <pthread.h>

#include "kselftest_harness.h"
#include "kvmi_util.h"
#include "processor.h"
#include "ucall_common.h"

static int exceptions;
static uint64_t last_vector, last_error_code, last_cr2;

static inline uint64_t guest_get_cr2(void)
{
	uint64_t cr2;

	__asm__ __volatile__("mov %%cr2, %0" : "=r"(cr2));
	return cr2;
}

static void guest_handler(struct ex_regs *regs)
{
	WRITE_ONCE(exceptions, exceptions + 1);
	WRITE_ONCE(last_vector, regs->vector);
	WRITE_ONCE(last_error_code, regs->error_code);
	WRITE_ONCE(last_cr2, guest_get_cr2());
}

/* A hypercall to the tool, then report the exceptions the guest saw. */
static void guest_code(void)
{
	kvm_hypercall(KVM_HC_KVMI, 0, 0, 0, 0);
	GUEST_SYNC2(READ_ONCE(exceptions), READ_ONCE(last_vector));
	GUEST_SYNC2(READ_ONCE(last_error_code), READ_ONCE(last_cr2));
	GUEST_DONE();
}

FIXTURE(inj) {
	struct kvm_vm *vm;
	struct kvm_vcpu *vcpu;
	int fd;
	struct kvmi_maps m;
	struct kvmi_runner r;
	uint32_t seq;
};

KVMI_TRANSPORT_VARIANTS(inj);

/* The vCPU waits in its HYPERCALL event; the tool polls. */
FIXTURE_SETUP(inj)
{
	KVMI_REQUIRE();
	kvmi_use_transport(variant->transport);
	self->vm = vm_create_with_one_vcpu(&self->vcpu, guest_code);
	vm_install_exception_handler(self->vm, UD_VECTOR, guest_handler);
	vm_install_exception_handler(self->vm, PF_VECTOR, guest_handler);
	vm_install_exception_handler(self->vm, GP_VECTOR, guest_handler);
	self->fd = kvmi_open(self->vm);
	kvmi_map_all(self->fd, &self->m);
	__atomic_or_fetch(&kvmi_tool_state(&self->m, 0)->flags,
			  KVMI_TOOL_POLLING, __ATOMIC_RELAXED);
	kvmi_control_events(self->fd, 0, KVMI_EVENT_HYPERCALL, 1);
}

/*
 * Run the vCPU to its event. From then on, until it is joined, the vCPU
 * is in KVM_RUN: no vCPU ioctl (KVM_SET_MSRS...) from the test.
 */
static void start(struct __test_metadata *_metadata, FIXTURE_DATA(inj) *self)
{
	kvmi_runner_start(&self->r, self->vcpu);
	self->seq = kvmi_wait_event(&self->m, 0, -1, 0);
}

FIXTURE_TEARDOWN(inj)
{
	/* CONTINUE, if the test hasn't replied. */
	if (self->seq && !self->r.joined) {
		if (kvmi_vcpu_state(&self->m, 0)->done_seq != self->seq)
			kvmi_send_reply(&self->m, 0, self->seq,
					KVMI_EVENT_HYPERCALL,
					KVMI_ACTION_CONTINUE, 0, NULL, -1);
		kvmi_runner_join(&self->r);
	}
	kvmi_unmap_all(&self->m);
	close(self->fd);
	kvm_vm_free(self->vm);
}

/* Reply CONTINUE; the guest reports XMM0 and XCR0. */
static void finish(struct __test_metadata *_metadata, FIXTURE_DATA(inj) *self)
{
	kvmi_send_reply(&self->m, 0, self->seq, KVMI_EVENT_HYPERCALL,
			KVMI_ACTION_CONTINUE, 0, NULL, -1);
	kvmi_runner_join(&self->r);
	ASSERT_EQ(0, self->r.ret);
	ASSERT_EQ(UCALL_SYNC, self->r.ucall);
}

/* Tests start with this: the vCPU waits in the event from then on. */
#define START() start(_metadata, self)

static int inject(FIXTURE_DATA(inj) *self, uint8_t vector, uint8_t flags,
		  uint32_t error_code, uint64_t address, uint32_t *seq)
{
	union kvmi_cmd_args args = {};
	uint32_t s;

	args.inject_exception.vector = vector;
	args.inject_exception.flags = flags;
	args.inject_exception.error_code = error_code;
	args.inject_exception.address = address;
	s = kvmi_send_cmd(&self->m, 0, KVMI_CMD_INJECT_EXCEPTION, &args, -1);
	if (seq)
		*seq = s;
	return kvmi_wait_cmd_result(&self->m, 0, s)->error;
}

/* The guest's second report: error code and CR2 its handler saw. */
static void second_sync(struct __test_metadata *_metadata,
			FIXTURE_DATA(inj) *self, uint64_t *ec, uint64_t *cr2)
{
	struct ucall uc;

	vcpu_run(self->vcpu);
	ASSERT_EQ(UCALL_SYNC, get_ucall(self->vcpu, &uc));
	*ec = uc.args[0];
	*cr2 = uc.args[1];
}

TEST_F(inj, ud_delivered)
{
	struct kvmi_vcpu_state *vs;
	struct kvmi_version ver;
	uint32_t s;

	kvmi_get_version(self->fd, &ver);
	ASSERT_TRUE(ver.features & KVMI_FEATURE_INJECT_STATUS);
	START();
	vs = kvmi_vcpu_state(&self->m, 0);
	ASSERT_EQ(0, inject(self, UD_VECTOR, 0, 0, 0, &s));
	/* Not delivered before the vCPU resumes. */
	ASSERT_EQ(0, vs->inject_seq);
	finish(_metadata, self);
	ASSERT_EQ(1, self->r.args[0]);
	ASSERT_EQ(UD_VECTOR, self->r.args[1]);
	ASSERT_EQ(s, __atomic_load_n(&vs->inject_seq, __ATOMIC_ACQUIRE));
	ASSERT_EQ(KVMI_INJECT_DELIVERED, vs->inject_status);
}

/* #PF with an error code and CR2, as INJECT_PAGE_FAULT did. */
TEST_F(inj, page_fault_with_cr2)
{
	uint64_t ec, cr2;

	START();
	ASSERT_EQ(0, inject(self, PF_VECTOR, KVMI_EXCEPTION_ERROR_CODE, 0x6,
			    0x7f0000001000ULL, NULL));
	finish(_metadata, self);
	ASSERT_EQ(1, self->r.args[0]);
	ASSERT_EQ(PF_VECTOR, self->r.args[1]);
	second_sync(_metadata, self, &ec, &cr2);
	ASSERT_EQ(0x6, ec);
	ASSERT_EQ(0x7f0000001000ULL, cr2);
}

TEST_F(inj, gp_with_error_code)
{
	uint64_t ec, cr2;

	START();
	ASSERT_EQ(0, inject(self, GP_VECTOR, KVMI_EXCEPTION_ERROR_CODE, 0x18,
			    0, NULL));
	finish(_metadata, self);
	ASSERT_EQ(GP_VECTOR, self->r.args[1]);
	second_sync(_metadata, self, &ec, &cr2);
	ASSERT_EQ(0x18, ec);
}

/* One at a time: a second one while the first is pending is -EBUSY. */
TEST_F(inj, second_is_busy)
{
	START();
	ASSERT_EQ(0, inject(self, UD_VECTOR, 0, 0, 0, NULL));
	ASSERT_EQ(-EBUSY, inject(self, GP_VECTOR, 0, 0, 0, NULL));
	finish(_metadata, self);
	ASSERT_EQ(1, self->r.args[0]);
	ASSERT_EQ(UD_VECTOR, self->r.args[1]);
}

TEST_F(inj, bad_arguments)
{
	union kvmi_cmd_args args = {};

	START();
	ASSERT_EQ(-EINVAL, inject(self, 32, 0, 0, 0, NULL));
	ASSERT_EQ(-EINVAL, inject(self, NMI_VECTOR, 0, 0, 0, NULL));
	ASSERT_EQ(-EINVAL, inject(self, UD_VECTOR, 2, 0, 0, NULL));
	ASSERT_EQ(-EINVAL, inject(self, UD_VECTOR, 0, 0, 0x1000, NULL));
	args.inject_exception.vector = UD_VECTOR;
	args.inject_exception.padding[1] = 1;
	ASSERT_EQ(-EINVAL, kvmi_run_cmd(&self->m, 0,
					KVMI_CMD_INJECT_EXCEPTION, &args, -1));
	/* Nothing was queued. */
	finish(_metadata, self);
	ASSERT_EQ(0, self->r.args[0]);
}

TEST_HARNESS_MAIN
