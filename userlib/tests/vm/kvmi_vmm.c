// SPDX-License-Identifier: GPL-2.0-only
/*
 * A small VMM for the examples' test: a VM whose vCPUs make the KVMi
 * hypercall in a loop, and that knows nothing of introspection (a tool
 * attaches to it by pid). On SIGTERM or SIGINT it prints, per vCPU, how
 * many hypercalls returned what: "vcpu N: calls C enosys E zero Z other O".
 *
 *   kvmi_vmm NR_VCPUS
 */
#include <pthread.h>
#include <signal.h>

#include "kvm_util.h"
#include "processor.h"
#include "test_util.h"
#include "ucall_common.h"

#include <linux/kvmi.h>

#define MAX_VCPUS	8

uint64_t hc(uint64_t nr, uint64_t a0);

asm(".pushsection .text\n"
	".global hc\n"
	"hc:\n"
	"	push %rbx\n"
	"	mov %rdi, %rax\n"
	"	mov %rsi, %rbx\n"
	"	vmmcall\n"
	"	pop %rbx\n"
	"	ret\n"
	".popsection\n");

static void guest_code(void)
{
	uint64_t i;

	for (i = 0;; i++)
		GUEST_SYNC1(hc(KVM_HC_KVMI, i));
}

static volatile sig_atomic_t stop;

struct counts {
	struct kvm_vcpu *vcpu;
	pthread_t thread;
	uint64_t calls, enosys, zero, other;
};

static void on_signal(int sig)
{
	stop = 1;
}

static void *vcpu_fn(void *arg)
{
	struct counts *c = arg;
	struct ucall uc;

	while (!stop) {
		if (__vcpu_run(c->vcpu))
			continue;	/* EINTR: look at stop */
		if (get_ucall(c->vcpu, &uc) != UCALL_SYNC)
			break;
		c->calls++;
		if (uc.args[0] == (uint64_t)-KVM_ENOSYS)
			c->enosys++;
		else if (!uc.args[0])
			c->zero++;
		else
			c->other++;
	}
	return NULL;
}

int main(int argc, char **argv)
{
	struct kvm_vcpu *vcpus[MAX_VCPUS];
	struct counts c[MAX_VCPUS] = {};
	struct kvm_vm *vm;
	int i, n;

	n = argc > 1 ? atoi(argv[1]) : 1;
	if (n < 1 || n > MAX_VCPUS)
		return 2;
	signal(SIGTERM, on_signal);
	signal(SIGINT, on_signal);
	vm = vm_create_with_vcpus(n, guest_code, vcpus);
	for (i = 0; i < n; i++) {
		c[i].vcpu = vcpus[i];
		pthread_create(&c[i].thread, NULL, vcpu_fn, &c[i]);
	}
	printf("ready\n");
	fflush(stdout);
	while (!stop)
		pause();
	for (i = 0; i < n; i++) {
		pthread_kill(c[i].thread, SIGTERM);
		pthread_join(c[i].thread, NULL);
		printf("vcpu %d: calls %lu enosys %lu zero %lu other %lu\n", i,
		       c[i].calls, c[i].enosys, c[i].zero, c[i].other);
	}
	kvm_vm_free(vm);
	return 0;
}
