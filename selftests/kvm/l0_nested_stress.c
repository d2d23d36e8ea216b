// SPDX-License-Identifier: GPL-2.0-only
/*
 * l0_nested_stress: plain KVM, no introspection, under the load that
 * kvmi_socket_torture_test's VMM puts on the L1 VM: two vCPUs go round
 * VMMCALL, INT3 (taken by the guest's own #BP handler) and a write to
 * memory, while the VMM forks children that exit or are killed at once
 * and creates and frees other VMs. It fails on KVM_EXIT_SHUTDOWN or on a
 * vCPU that makes no progress for 10 s.
 *
 *   l0_nested_stress [SECONDS]    (60 by default)
 *
 * Not a kvmi-ring test and not in make check: it reproduces, without
 * kvmi-ring, the failures that kvmi-torture.rst, section 5, puts on the
 * emulator of the L1 VM (QEMU's multi-threaded TCG, nested SVM).
 */
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "kvm_util.h"
#include "processor.h"
#include "test_util.h"
#include "ucall_common.h"

#define NR_VCPUS 2
static volatile uint64_t guest_iters[NR_VCPUS];
static volatile uint64_t guest_bps[NR_VCPUS];
static uint64_t guest_data[512];

static void guest_bp_handler(struct ex_regs *regs)
{
	guest_bps[regs->rdi & 1]++;
}

static void guest_code(uint64_t id)
{
	for (;;) {
		uint64_t rax = 13;
		int i;

		asm volatile("vmmcall" : "+a"(rax) : "D"(id)
			     : "rbx", "rcx", "rdx", "rsi", "memory");
		asm volatile("int3" : : "D"(id)
			     : "rbx", "rcx", "rdx", "rsi", "memory");
		for (i = 0; i < 512; i++)
			guest_data[i] += i;
		guest_iters[id]++;
	}
}

static void *run(void *arg)
{
	struct kvm_vcpu *vcpu = arg;
	struct kvm_run *r = vcpu->run;

	for (;;) {
		int ret = __vcpu_run(vcpu);

		if (ret && errno == EINTR)
			continue;
		TEST_ASSERT(!ret, "KVM_RUN: %d", errno);
		TEST_ASSERT(r->exit_reason != KVM_EXIT_SHUTDOWN,
			    "vCPU %u: triple fault (KVM_EXIT_SHUTDOWN)", vcpu->id);
		TEST_FAIL("vCPU %u: exit %s", vcpu->id,
			  exit_reason_str(r->exit_reason));
	}
	return NULL;
}

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

int main(int argc, char **argv)
{
	double secs = argc > 1 ? atof(argv[1]) : 60, t0 = now(), tp = t0;
	struct kvm_vcpu *vcpus[NR_VCPUS];
	uint64_t last[NR_VCPUS] = {}, forks = 0, vms = 0;
	pthread_t th[NR_VCPUS];
	struct kvm_vm *vm;
	int i;

	vm = vm_create_with_vcpus(NR_VCPUS, guest_code, vcpus);
	vm_install_exception_handler(vm, BP_VECTOR, guest_bp_handler);
	for (i = 0; i < NR_VCPUS; i++) {
		vcpu_args_set(vcpus[i], 1, i);
		pthread_create(&th[i], NULL, run, vcpus[i]);
	}
	while (now() - t0 < secs) {
		pid_t pid = fork();

		TEST_ASSERT(pid >= 0, "fork");
		if (!pid) {
			usleep(random() % 2000);
			_exit(0);
		}
		usleep(random() % 3000);
		if (random() & 1)
			kill(pid, SIGKILL);
		waitpid(pid, NULL, 0);
		forks++;
		if (!(forks % 10)) {
			struct kvm_vcpu *v2[NR_VCPUS];
			struct kvm_vm *other;

			other = vm_create_with_vcpus(NR_VCPUS, guest_code, v2);
			kvm_vm_free(other);
			vms++;
		}
		if (now() - tp > 10) {
			uint64_t *it = addr_gva2hva(vm, (vm_vaddr_t)guest_iters);

			for (i = 0; i < NR_VCPUS; i++) {
				TEST_ASSERT(it[i] != last[i],
					    "vCPU %d stuck at %lu", i, it[i]);
				last[i] = it[i];
			}
			tp = now();
			printf("# %.0f s: %lu forks, %lu VMs, iterations %lu %lu\n",
			       tp - t0, forks, vms, it[0], it[1]);
			fflush(stdout);
		}
	}
	printf("ok: %lu forks, %lu VMs\n", forks, vms);
	return 0;
}
