// SPDX-License-Identifier: GPL-2.0-only
/*
 * kvmi-ring: the vCPU commands GET_CPUID, GET_XCR, GET_XSAVE_INFO,
 * GET_XSAVE, SET_XSAVE, GET_MTRR_TYPE, GET_MTRRS and TRANSLATE_GVA
 * (Documentation/virt/kvm/kvmi.rst, sections 11.5 to 11.9), served while
 * the vCPU waits in a HYPERCALL event, checked against what the guest
 * and the VMM see.
 */
#include <pthread.h>

#include "kselftest_harness.h"
#include "kvmi_util.h"
#include "processor.h"
#include "ucall_common.h"

#define XMM_IN		0x1122334455667788ULL
#define XMM_OUT		0x0badc0dedeadbeefULL
#define MTRR_GPA	0x10000000ULL
/* Where XMM0 is in the legacy area of the XSAVE format. */
#define XSAVE_XMM0	160

/* XMM0 set, a hypercall to the tool, then XMM0 and XCR0 reported. */
static void guest_code(void)
{
	uint64_t xmm = XMM_IN;

	/* XGETBV needs CR4.OSXSAVE. */
	set_cr4(get_cr4() | X86_CR4_OSXSAVE);
	asm volatile("movq %0, %%xmm0" : : "r"(xmm) : "xmm0");
	kvm_hypercall(KVM_HC_KVMI, 0, 0, 0, 0);
	asm volatile("movq %%xmm0, %0" : "=r"(xmm));
	GUEST_SYNC2(xmm, xgetbv(0));
	GUEST_DONE();
}

FIXTURE(cmd) {
	struct kvm_vm *vm;
	struct kvm_vcpu *vcpu;
	int fd;
	struct kvmi_maps m;
	struct kvmi_runner r;
	uint32_t seq;
};

KVMI_TRANSPORT_VARIANTS(cmd);

/* The vCPU waits in its HYPERCALL event; the tool polls. */
FIXTURE_SETUP(cmd)
{
	KVMI_REQUIRE();
	kvmi_use_transport(variant->transport);
	self->vm = vm_create_with_one_vcpu(&self->vcpu, guest_code);
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
static void start(struct __test_metadata *_metadata, FIXTURE_DATA(cmd) *self)
{
	kvmi_runner_start(&self->r, self->vcpu);
	self->seq = kvmi_wait_event(&self->m, 0, -1, 0);
}

FIXTURE_TEARDOWN(cmd)
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

static struct kvmi_cmd_result *run_cmd(FIXTURE_DATA(cmd) *self, uint16_t id,
				       const union kvmi_cmd_args *args)
{
	uint32_t s = kvmi_send_cmd(&self->m, 0, id, args, -1);

	return kvmi_wait_cmd_result(&self->m, 0, s);
}

/* Reply CONTINUE; the guest reports XMM0 and XCR0. */
static void finish(struct __test_metadata *_metadata, FIXTURE_DATA(cmd) *self)
{
	kvmi_send_reply(&self->m, 0, self->seq, KVMI_EVENT_HYPERCALL,
			KVMI_ACTION_CONTINUE, 0, NULL, -1);
	kvmi_runner_join(&self->r);
	ASSERT_EQ(0, self->r.ret);
	ASSERT_EQ(UCALL_SYNC, self->r.ucall);
}

/* Tests start with this: the vCPU waits in the event from then on. */
#define START() start(_metadata, self)

static void *kernel_data(FIXTURE_DATA(cmd) *self)
{
	return self->m.kernel + self->m.lo.kernel_off.data;
}

static void *tool_data(FIXTURE_DATA(cmd) *self)
{
	return self->m.tool + self->m.lo.tool_off.data;
}

TEST_F(cmd, get_cpuid)
{
	const struct kvm_cpuid_entry2 *e;
	union kvmi_cmd_args args = {};
	struct kvmi_cmd_result *res;

	START();

	e = vcpu_get_cpuid_entry(self->vcpu, 1);
	args.get_cpuid.function = 1;
	res = run_cmd(self, KVMI_CMD_GET_CPUID, &args);
	ASSERT_EQ(0, res->error);
	ASSERT_EQ(e->eax, res->result.get_cpuid.eax);
	ASSERT_EQ(e->ebx, res->result.get_cpuid.ebx);
	/* KVM mirrors CR4.OSXSAVE, which the guest has set, at run time. */
	ASSERT_EQ(e->ecx | BIT(27), res->result.get_cpuid.ecx);
	ASSERT_EQ(e->edx, res->result.get_cpuid.edx);

	args.get_cpuid.function = 0x4fff0000;
	res = run_cmd(self, KVMI_CMD_GET_CPUID, &args);
	ASSERT_EQ(-ENOENT, res->error);
	ASSERT_EQ(0, res->result.get_cpuid.eax);
}

TEST_F(cmd, get_xcr)
{
	union kvmi_cmd_args args = {};
	struct kvmi_cmd_result *res;
	uint64_t xcr0;

	START();

	res = run_cmd(self, KVMI_CMD_GET_XCR, &args);
	ASSERT_EQ(0, res->error);
	xcr0 = res->result.get_xcr.value;
	ASSERT_TRUE(xcr0 & 1);	/* x87 */

	args.get_xcr.xcr = 1;
	ASSERT_EQ(-EINVAL, run_cmd(self, KVMI_CMD_GET_XCR, &args)->error);
	args.get_xcr.xcr = 0;
	args.get_xcr.padding = 1;
	ASSERT_EQ(-EINVAL, run_cmd(self, KVMI_CMD_GET_XCR, &args)->error);

	finish(_metadata, self);
	ASSERT_EQ(xcr0, self->r.args[1]);
}

/* GET_XSAVE sees the guest's XMM0; SET_XSAVE changes it. */
TEST_F(cmd, get_and_set_xsave)
{
	union kvmi_cmd_args args = {};
	struct kvmi_cmd_result *res;
	uint32_t size;
	uint64_t xmm;

	START();

	res = run_cmd(self, KVMI_CMD_GET_XSAVE_INFO, NULL);
	ASSERT_EQ(0, res->error);
	size = res->result.xsave.size;
	ASSERT_LE(4096, size);
	ASSERT_EQ(vm_check_cap(self->vm, KVM_CAP_XSAVE2) ?: 4096, size);

	args.xsave.size = size - 1;
	ASSERT_EQ(-E2BIG, run_cmd(self, KVMI_CMD_GET_XSAVE, &args)->error);

	args.xsave.size = self->m.lo.kernel_off.data_size;
	res = run_cmd(self, KVMI_CMD_GET_XSAVE, &args);
	ASSERT_EQ(0, res->error);
	ASSERT_EQ(size, res->result.xsave.size);
	memcpy(&xmm, (uint8_t *)kernel_data(self) + XSAVE_XMM0, sizeof(xmm));
	ASSERT_EQ(XMM_IN, xmm);

	memcpy(tool_data(self), kernel_data(self), size);
	xmm = XMM_OUT;
	memcpy((uint8_t *)tool_data(self) + XSAVE_XMM0, &xmm, sizeof(xmm));
	args.xsave.size = size - 1;
	ASSERT_EQ(-EINVAL, run_cmd(self, KVMI_CMD_SET_XSAVE, &args)->error);
	args.xsave.size = size;
	ASSERT_EQ(0, run_cmd(self, KVMI_CMD_SET_XSAVE, &args)->error);

	finish(_metadata, self);
	ASSERT_EQ(XMM_OUT, self->r.args[0]);
}

TEST_F(cmd, get_mtrrs)
{
	struct kvmi_cmd_get_mtrrs_result mtrrs;
	struct kvmi_cmd_result *res;

	vcpu_set_msr(self->vcpu, MSR_MTRRdefType, (1 << 11) | 6);
	START();
	res = run_cmd(self, KVMI_CMD_GET_MTRRS, NULL);
	ASSERT_EQ(0, res->error);
	mtrrs = res->result.get_mtrrs;
	finish(_metadata, self);
	ASSERT_EQ(vcpu_get_msr(self->vcpu, MSR_IA32_CR_PAT), mtrrs.pat);
	ASSERT_EQ(vcpu_get_msr(self->vcpu, MSR_MTRRcap), mtrrs.cap);
	ASSERT_EQ((1 << 11) | 6, mtrrs.def_type);
}

static uint8_t mtrr_type(FIXTURE_DATA(cmd) *self, uint64_t gpa)
{
	union kvmi_cmd_args args = { .get_mtrr_type.gpa = gpa };
	struct kvmi_cmd_result *res;

	res = run_cmd(self, KVMI_CMD_GET_MTRR_TYPE, &args);
	return res->error ? 0xff : res->result.get_mtrr_type.type;
}

/* MTRRs disabled (MTRRdefType.E clear): everything UC. */
TEST_F(cmd, mtrr_type_disabled)
{
	vcpu_set_msr(self->vcpu, MSR_MTRRdefType, 6);
	START();
	ASSERT_EQ(0, mtrr_type(self, MTRR_GPA));
	ASSERT_EQ(0, mtrr_type(self, 0x1000));
}

/* The MTRRs as the VMM set them before the run. */
TEST_F(cmd, mtrr_type)
{
	uint64_t mask = (1ULL << self->vm->pa_bits) - 1;
	uint64_t mib = mask & ~(0x100000ULL - 1), mib2 = mask & ~(0x200000ULL - 1);

	/* WB by default, the first MiB by the fixed ranges. */
	vcpu_set_msr(self->vcpu, MSR_MTRRdefType, (1 << 11) | (1 << 10) | 6);
	vcpu_set_msr(self->vcpu, 0x250, 0x0505050505050505ULL);
	vcpu_set_msr(self->vcpu, 0x268, 0x0101010101010100ULL);
	/* One WT MiB. */
	vcpu_set_msr(self->vcpu, 0x200, MTRR_GPA | 4);
	vcpu_set_msr(self->vcpu, 0x201, mib | (1 << 11));
	/* Two MiB WT at 4 * MTRR_GPA, the first one UC too: UC wins. */
	vcpu_set_msr(self->vcpu, 0x202, 4 * MTRR_GPA | 4);
	vcpu_set_msr(self->vcpu, 0x203, mib2 | (1 << 11));
	vcpu_set_msr(self->vcpu, 0x204, 4 * MTRR_GPA | 0);
	vcpu_set_msr(self->vcpu, 0x205, mib | (1 << 11));
	/* Two MiB WB at 8 * MTRR_GPA, the first one WT too: WT wins. */
	vcpu_set_msr(self->vcpu, 0x206, 8 * MTRR_GPA | 6);
	vcpu_set_msr(self->vcpu, 0x207, mib2 | (1 << 11));
	vcpu_set_msr(self->vcpu, 0x208, 8 * MTRR_GPA | 4);
	vcpu_set_msr(self->vcpu, 0x209, mib | (1 << 11));
	START();
	ASSERT_EQ(6, mtrr_type(self, 2 * MTRR_GPA));
	ASSERT_EQ(4, mtrr_type(self, MTRR_GPA + 0x1234));
	ASSERT_EQ(6, mtrr_type(self, MTRR_GPA + 0x100000));
	ASSERT_EQ(5, mtrr_type(self, 0x12345));
	ASSERT_EQ(0, mtrr_type(self, 0xc0000));
	ASSERT_EQ(1, mtrr_type(self, 0xc1000));
	ASSERT_EQ(0, mtrr_type(self, 4 * MTRR_GPA + 0x1000));
	ASSERT_EQ(4, mtrr_type(self, 4 * MTRR_GPA + 0x100000));
	ASSERT_EQ(4, mtrr_type(self, 8 * MTRR_GPA));
	ASSERT_EQ(6, mtrr_type(self, 8 * MTRR_GPA + 0x100000));
}

TEST_F(cmd, translate_gva)
{
	union kvmi_cmd_args args = {};
	struct kvmi_cmd_result *res;

	START();

	args.translate_gva.gva = (uint64_t)guest_code + 5;
	res = run_cmd(self, KVMI_CMD_TRANSLATE_GVA, &args);
	ASSERT_EQ(0, res->error);
	ASSERT_EQ(addr_gva2gpa(self->vm, (vm_vaddr_t)guest_code + 5),
		  res->result.translate_gva.gpa);

	args.translate_gva.gva = 0x7ff000000000ULL;
	ASSERT_EQ(-ENOENT, run_cmd(self, KVMI_CMD_TRANSLATE_GVA, &args)->error);
}

/* The VMM's allow-list applies to each of them. */
TEST_F(cmd, check_command)
{
	static const uint16_t ids[] = {
		KVMI_CMD_GET_CPUID, KVMI_CMD_GET_XCR, KVMI_CMD_GET_XSAVE_INFO,
		KVMI_CMD_GET_XSAVE, KVMI_CMD_SET_XSAVE, KVMI_CMD_GET_MTRR_TYPE,
		KVMI_CMD_GET_MTRRS, KVMI_CMD_TRANSLATE_GVA,
	};
	int i;

	START();
	for (i = 0; i < ARRAY_SIZE(ids); i++) {
		struct kvmi_check chk = { .id = ids[i] };

		ASSERT_EQ(0, ioctl(self->fd, KVMI_IOCTL_CHECK_COMMAND, &chk));
	}
}

TEST_HARNESS_MAIN
