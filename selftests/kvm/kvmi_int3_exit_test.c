// SPDX-License-Identifier: GPL-2.0-only
/*
 * INT3 in a guest under SVM must be checked against the #BP exception
 * intercept.
 *
 * kvmi-ring's breakpoint event relies on KVM seeing the #BP intercept of an
 * INT3 executed by its guest. QEMU's TCG (which plays the SVM hardware for
 * these tests) used to check INT3 only against the software-interrupt
 * intercept, so the guest took the #BP itself; the runner's QEMU carries a
 * fix (qemu/patches/). These tests fail on an unfixed QEMU.
 */
#include <stdint.h>

#include "kvm_test_harness.h"
#include "kvm_util.h"
#include "processor.h"
#include "test_util.h"

/* The INT3 instruction of guest_sw_bp(), for the expected exit address. */
extern char int3_insn[];

static void guest_sw_bp(void)
{
	asm volatile("int3_insn: int3");
	GUEST_DONE();
}

static volatile int guest_bp_count;
static volatile uint64_t guest_bp_rip;

static void guest_bp_handler(struct ex_regs *regs)
{
	guest_bp_count++;
	guest_bp_rip = regs->rip;
}

static void guest_own_bp(void)
{
	asm volatile("int3");
	GUEST_ASSERT_EQ(guest_bp_count, 1);
	GUEST_DONE();
}

static void set_sw_bp(struct kvm_vcpu *vcpu, bool on)
{
	struct kvm_guest_debug debug = {};

	if (on)
		debug.control = KVM_GUESTDBG_ENABLE | KVM_GUESTDBG_USE_SW_BP;
	vcpu_guest_debug_set(vcpu, &debug);
}

static void run_to_done(struct kvm_vcpu *vcpu)
{
	struct ucall uc;

	vcpu_run(vcpu);
	TEST_ASSERT_KVM_EXIT_REASON(vcpu, KVM_EXIT_IO);
	switch (get_ucall(vcpu, &uc)) {
	case UCALL_DONE:
		break;
	case UCALL_ABORT:
		REPORT_GUEST_ASSERT(uc);
		break;
	default:
		TEST_FAIL("unexpected ucall %lu", uc.cmd);
	}
}

KVM_ONE_VCPU_TEST_SUITE(int3);

/*
 * With KVM_GUESTDBG_USE_SW_BP, KVM intercepts #BP: the INT3 must exit to
 * userspace as KVM_EXIT_DEBUG with the #BP vector and the INT3's address.
 */
KVM_ONE_VCPU_TEST(int3, exits_with_sw_bp, guest_sw_bp)
{
	struct kvm_run *run = vcpu->run;
	struct kvm_regs regs;

	set_sw_bp(vcpu, true);
	vcpu_run(vcpu);
	TEST_ASSERT(run->exit_reason == KVM_EXIT_DEBUG,
		    "INT3 did not exit to userspace: exit reason %u (%s); "
		    "is QEMU missing the #BP intercept fix?",
		    run->exit_reason, exit_reason_str(run->exit_reason));
	TEST_ASSERT_EQ(run->debug.arch.exception, BP_VECTOR);
	TEST_ASSERT_EQ(run->debug.arch.pc, (uint64_t)int3_insn);

	vcpu_regs_get(vcpu, &regs);
	TEST_ASSERT_EQ(regs.rip, (uint64_t)int3_insn);
	regs.rip += 1;
	vcpu_regs_set(vcpu, &regs);
	set_sw_bp(vcpu, false);
	run_to_done(vcpu);
}

/*
 * Without guest debugging, #BP is not intercepted: the guest's own handler
 * runs, once, with RIP after the INT3, and nothing exits to userspace.
 */
KVM_ONE_VCPU_TEST(int3, guest_handles_without_sw_bp, guest_own_bp)
{
	vm_install_exception_handler(vcpu->vm, BP_VECTOR, guest_bp_handler);
	run_to_done(vcpu);
	sync_global_from_guest(vcpu->vm, guest_bp_count);
	TEST_ASSERT_EQ(guest_bp_count, 1);
}

TEST_HARNESS_MAIN
