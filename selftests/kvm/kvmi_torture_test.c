// SPDX-License-Identifier: GPL-2.0-only
/*
 * kvmi-ring torture: the tool killed, the VM destroyed, events toggled
 * (Documentation/virt/kvm/kvmi-torture.rst, section 3).
 *
 * tool_killed: a tool process is SIGKILLed, again and again, with both
 * vCPUs waiting in its events, a command in flight, a pause maybe
 * requested and its pages mapped; after each kill the guest goes on and
 * a new introspection can be opened. At the end the guest's data
 * checksum is intact and the binary stats account for every event.
 *
 * vm_destroyed: the VM is destroyed while the tool holds the fd and its
 * mappings, with both vCPUs' events pending (their threads left KVM_RUN
 * on a signal) and a command in flight; the fd is then detached, its
 * mappings still readable, and it closes cleanly.
 *
 * bp_toggled: the BREAKPOINT event switched on and off (and the
 * introspection reopened) while the guest executes INT3: no INT3 may
 * reach the VMM as a KVM_EXIT_DEBUG.
 *
 *	kvmi_torture_test [-k KILLS] [-v DESTROYS] [-b TOGGLES] [-s SEED]
 *
 * KILLS: 10 by default, or $KVMI_TORTURE_KILLS; DESTROYS: 3, or
 * $KVMI_TORTURE_DESTROYS; TOGGLES: 2000, or $KVMI_TORTURE_TOGGLES.
 */
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/eventfd.h>
#include <sys/wait.h>
#include <time.h>

#include "kvmi_util.h"
#include "processor.h"
#include "ucall_common.h"

#define NR_VCPUS	2
#define DATA_WORDS	1024

static uint64_t guest_data[DATA_WORDS] __aligned(4096);
static uint64_t guest_sum;
static volatile int guest_stop;
static uint64_t guest_iters[NR_VCPUS];

static uint64_t checksum(const uint64_t *p)
{
	uint64_t h = 0xcbf29ce484222325ULL;
	int i;

	for (i = 0; i < DATA_WORDS; i++)
		h = (h ^ p[i]) * 0x100000001b3ULL;
	return h;
}

static void guest_bp_handler(struct ex_regs *regs)
{
}

static void guest_code(uint64_t id)
{
	while (!guest_stop) {
		uint64_t rax = KVM_HC_KVMI;

		asm volatile("vmmcall" : "+a"(rax) : : "rbx", "rcx", "rdx",
			     "rsi", "memory");
		asm volatile("int3" : : : "memory");
		GUEST_ASSERT_EQ(checksum(guest_data), guest_sum);
		WRITE_ONCE(guest_iters[id], guest_iters[id] + 1);
	}
	GUEST_DONE();
}

struct runner {
	struct kvm_vcpu *vcpu;
	pthread_t thread;
	bool stop;		/* leave at the next KVM_RUN return */
	bool done;		/* GUEST_DONE */
	uint64_t intr;		/* KVM_RUN interrupted by a signal */
};

static void *runner_fn(void *arg)
{
	struct runner *r = arg;
	struct kvm_run *run = r->vcpu->run;
	struct ucall uc;
	int ret;

	while (!__atomic_load_n(&r->stop, __ATOMIC_ACQUIRE)) {
		ret = __vcpu_run(r->vcpu);
		if (ret) {
			TEST_ASSERT(errno == EINTR, "KVM_RUN: %s",
				    strerror(errno));
			r->intr++;
			continue;
		}
		TEST_ASSERT(run->exit_reason == KVM_EXIT_IO,
			    "vCPU exit %s", exit_reason_str(run->exit_reason));
		switch (get_ucall(r->vcpu, &uc)) {
		case UCALL_DONE:
			__atomic_store_n(&r->done, true, __ATOMIC_RELEASE);
			return NULL;
		case UCALL_ABORT:
			REPORT_GUEST_ASSERT(uc);
			break;
		default:
			TEST_FAIL("unexpected ucall %lu", uc.cmd);
		}
	}
	return NULL;
}

static void sig_nop(int sig)
{
}

static struct kvm_vm *create_vm(struct kvm_vcpu **vcpus, struct runner *r)
{
	struct kvm_vm *vm = vm_create_with_vcpus(NR_VCPUS, guest_code, vcpus);
	uint64_t *data = addr_gva2hva(vm, (vm_vaddr_t)guest_data);
	uint32_t i;

	vm_install_exception_handler(vm, BP_VECTOR, guest_bp_handler);
	for (i = 0; i < DATA_WORDS; i++)
		data[i] = rnd();
	guest_sum = checksum(data);
	sync_global_to_guest(vm, guest_sum);
	for (i = 0; i < NR_VCPUS; i++) {
		vcpu_args_set(vcpus[i], 1, i);
		memset(&r[i], 0, sizeof(r[i]));
		r[i].vcpu = vcpus[i];
		pthread_create(&r[i].thread, NULL, runner_fn, &r[i]);
	}
	return vm;
}

/* Stop the vCPU threads wherever they are: a signal ends any wait. */
static void stop_runners(struct runner *r)
{
	uint32_t i;

	for (i = 0; i < NR_VCPUS; i++) {
		__atomic_store_n(&r[i].stop, true, __ATOMIC_RELEASE);
		while (pthread_tryjoin_np(r[i].thread, NULL)) {
			pthread_kill(r[i].thread, SIGUSR1);
			usleep(1000);
		}
	}
}

/* Block, hybrid or poll, for every vCPU. */
static void set_random_wait_mode(int fd)
{
	uint32_t mode = rnd_below(3);

	kvmi_set_wait_mode(fd, KVMI_ALL_VCPUS, mode,
			   mode == KVMI_WAIT_HYBRID ?
			   KVMI_WAIT_DEFAULT_SPIN_NS : 0);
}

/*
 * The tool, in a process of its own: open, map, enable the events, set
 * its doorbells and a wait mode, maybe pause every vCPU; answer @replies
 * events, then leave the next one waiting with a command in flight, say
 * so through @ready, and wait to be killed.
 */
static void __noreturn tool_child(struct kvm_vm *vm, int ready,
				  uint32_t replies)
{
	uint32_t last[NR_VCPUS] = {}, i;
	struct kvmi_pause_all pa = {};
	struct kvmi_maps m;
	int fd, notify, kick;

	fd = kvmi_open(vm);
	kvmi_map_all(fd, &m);
	notify = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	kick = eventfd(0, EFD_CLOEXEC);
	TEST_ASSERT(notify >= 0 && kick >= 0, "eventfd");
	kvmi_set_doorbells(fd, KVMI_ALL_VCPUS,
			   KVMI_DOORBELL_NOTIFY | KVMI_DOORBELL_KICK,
			   notify, kick);
	set_random_wait_mode(fd);
	kvmi_control_events(fd, KVMI_ALL_VCPUS, KVMI_EVENT_HYPERCALL, 1);
	kvmi_control_events(fd, KVMI_ALL_VCPUS, KVMI_EVENT_BREAKPOINT, 1);
	if (rnd_below(4) == 0)
		TEST_ASSERT(!ioctl(fd, KVMI_IOCTL_PAUSE_ALL, &pa), "PAUSE_ALL");

	for (;;) {
		for (i = 0; i < NR_VCPUS; i++) {
			struct kvmi_event *ev = kvmi_event_slot(&m, i);
			uint32_t s = __atomic_load_n(&ev->seq,
						     __ATOMIC_ACQUIRE);
			uint16_t id = ev->id;

			if (!s || s == last[i])
				continue;
			last[i] = s;
			if (replies) {
				replies--;
				kvmi_send_reply(&m, i, s, id,
						KVMI_ACTION_CONTINUE, 0, NULL,
						kick);
				continue;
			}
			/* Left waiting, with a command in flight. */
			kvmi_send_cmd(&m, i, KVMI_CMD_GET_REGISTERS, NULL,
				      kick);
			TEST_ASSERT(write(ready, "w", 1) == 1, "write");
			for (;;)
				pause();
		}
	}
}

static uint64_t iters(struct kvm_vm *vm)
{
	uint64_t *it = addr_gva2hva(vm, (vm_vaddr_t)guest_iters);

	return READ_ONCE(it[0]) + READ_ONCE(it[1]);
}

static void tool_killed(uint32_t kills)
{
	struct kvm_vcpu *vcpus[NR_VCPUS];
	struct runner r[NR_VCPUS];
	uint64_t *data, before, detach = 0;
	struct kvm_vm *vm;
	uint32_t k, i;

	vm = create_vm(vcpus, r);
	data = addr_gva2hva(vm, (vm_vaddr_t)guest_data);

	for (k = 0; k < kills; k++) {
		struct pollfd pfd;
		int ready[2], status;
		pid_t pid;
		char c;

		TEST_ASSERT(!pipe(ready), "pipe");
		pid = fork();
		TEST_ASSERT(pid >= 0, "fork");
		if (!pid) {
			close(ready[0]);
			rng_state += k;
			tool_child(vm, ready[1], rnd_below(6));
		}
		close(ready[1]);
		pfd.fd = ready[0];
		pfd.events = POLLIN;
		TEST_ASSERT(poll(&pfd, 1, -1) == 1, "poll");
		TEST_ASSERT(read(ready[0], &c, 1) == 1,
			    "kill %u: the tool died before its event", k);
		/* Sometimes at once, sometimes once the vCPU may sleep. */
		if (rnd_below(2))
			usleep(rnd_below(2000));
		before = iters(vm);
		TEST_ASSERT(!kill(pid, SIGKILL), "kill");
		TEST_ASSERT(waitpid(pid, &status, 0) == pid, "waitpid");
		TEST_ASSERT(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL,
			    "kill %u: tool status 0x%x", k, status);
		close(ready[0]);
		if ((k + 1) % 50 == 0)
			ksft_print_msg("%u kills\n", k + 1);

		/* Introspection ended with the tool: a new one may start. */
		close(kvmi_open(vm));
		/* And the guest goes on. */
		while (iters(vm) < before + 2)
			usleep(1000);
	}

	*(volatile int *)addr_gva2hva(vm, (vm_vaddr_t)&guest_stop) = 1;
	for (i = 0; i < NR_VCPUS; i++) {
		pthread_join(r[i].thread, NULL);
		TEST_ASSERT(r[i].done, "vCPU %u did not finish", i);
	}
	TEST_ASSERT(checksum(data) == guest_sum, "guest data changed");

	for (i = 0; i < NR_VCPUS; i++) {
		uint64_t ev = kvmi_vcpu_stat(vcpus[i], "kvmi_events");
		uint64_t rep = kvmi_vcpu_stat(vcpus[i], "kvmi_replies");
		uint64_t bad = kvmi_vcpu_stat(vcpus[i], "kvmi_bad_replies");
		uint64_t dl = kvmi_vcpu_stat(vcpus[i], "kvmi_deadlines");
		uint64_t det = kvmi_vcpu_stat(vcpus[i], "kvmi_detach_releases");

		ksft_print_msg("vCPU %u: %lu events = %lu replies + %lu bad + %lu deadlines + %lu detach\n",
			       i, ev, rep, bad, dl, det);
		TEST_ASSERT(ev == rep + bad + dl + det,
			    "vCPU %u: events not accounted for", i);
		detach += det;
	}
	/* Each kill left at least one vCPU waiting. */
	TEST_ASSERT(detach >= kills, "%lu releases for %u kills", detach,
		    kills);
	kvm_vm_free(vm);
}

static void vm_destroyed(uint32_t destroys)
{
	struct kvm_vcpu *vcpus[NR_VCPUS];
	struct runner r[NR_VCPUS];
	uint32_t k, i;

	for (k = 0; k < destroys; k++) {
		struct kvmi_version ver = { .size = sizeof(ver) };
		struct pollfd pfd;
		struct kvmi_maps m;
		struct kvm_vm *vm;
		int fd, kick;

		vm = create_vm(vcpus, r);
		fd = kvmi_open(vm);
		kvmi_map_all(fd, &m);
		kick = eventfd(0, EFD_CLOEXEC);
		TEST_ASSERT(kick >= 0, "eventfd");
		kvmi_set_doorbells(fd, KVMI_ALL_VCPUS, KVMI_DOORBELL_KICK, -1,
				   kick);
		set_random_wait_mode(fd);
		kvmi_control_events(fd, KVMI_ALL_VCPUS, KVMI_EVENT_HYPERCALL,
				    1);
		for (i = 0; i < NR_VCPUS; i++) {
			kvmi_wait_event(&m, i, -1, 0);
			kvmi_send_cmd(&m, i, KVMI_CMD_GET_REGISTERS, NULL, kick);
		}

		/* The events stay pending; then the VM goes. */
		stop_runners(r);
		kvm_vm_free(vm);

		TEST_ASSERT(m.vm->flags & KVMI_VM_DETACHED, "not detached");
		TEST_ASSERT(ioctl(fd, KVMI_IOCTL_GET_VERSION, &ver) == -1 &&
			    errno == ENODEV, "GET_VERSION on a detached fd");
		pfd.fd = fd;
		pfd.events = POLLIN;
		TEST_ASSERT(poll(&pfd, 1, 0) == 1 && (pfd.revents & POLLHUP),
			    "no POLLHUP");
		for (i = 0; i < NR_VCPUS; i++)
			TEST_ASSERT(kvmi_event_slot(&m, i)->id ==
				    KVMI_EVENT_HYPERCALL,
				    "mapping lost its contents");
		/* The tool may still write its pages. */
		kvmi_send_reply(&m, 0, kvmi_event_slot(&m, 0)->seq,
				KVMI_EVENT_HYPERCALL, KVMI_ACTION_CONTINUE, 0,
				NULL, kick);
		if (k & 1) {
			kvmi_unmap_all(&m);
			close(fd);
		} else {
			close(fd);
			kvmi_unmap_all(&m);
		}
		close(kick);
	}
}

/* Answer every new event of both vCPUs with CONTINUE. */
static void answer_all(struct kvmi_maps *m, uint32_t *last, int kick)
{
	uint32_t i;

	for (i = 0; i < NR_VCPUS; i++) {
		struct kvmi_event *ev = kvmi_event_slot(m, i);
		uint32_t s = __atomic_load_n(&ev->seq, __ATOMIC_ACQUIRE);

		if (!s || s == last[i])
			continue;
		last[i] = s;
		kvmi_send_reply(m, i, s, ev->id, KVMI_ACTION_CONTINUE, 0,
				NULL, kick);
	}
}

/*
 * bp_toggled: the BREAKPOINT event switched on and off, and the
 * introspection closed and opened again, while the guest executes INT3
 * in a loop. An INT3 that exits on the #BP intercept the event set up
 * after the event was switched off must reach the guest as its own #BP,
 * not the VMM as a KVM_EXIT_DEBUG it never asked for.
 */
static void bp_toggled(uint32_t rounds)
{
	struct kvm_vcpu *vcpus[NR_VCPUS];
	struct runner r[NR_VCPUS];
	uint32_t last[NR_VCPUS] = {}, k, i;
	struct kvmi_maps m;
	struct kvm_vm *vm;
	int fd, kick;

	vm = create_vm(vcpus, r);
	kick = eventfd(0, EFD_CLOEXEC);
	TEST_ASSERT(kick >= 0, "eventfd");
	fd = kvmi_open(vm);
	kvmi_map_all(fd, &m);
	kvmi_set_doorbells(fd, KVMI_ALL_VCPUS, KVMI_DOORBELL_KICK, -1, kick);

	for (k = 0; k < rounds; k++) {
		kvmi_control_events(fd, KVMI_ALL_VCPUS, KVMI_EVENT_BREAKPOINT,
				    1);
		for (i = rnd_below(4); i; i--)
			answer_all(&m, last, kick);
		if (rnd_below(8)) {
			kvmi_control_events(fd, KVMI_ALL_VCPUS,
					    KVMI_EVENT_BREAKPOINT, 0);
			answer_all(&m, last, kick);
		} else {
			kvmi_unmap_all(&m);
			close(fd);
			fd = kvmi_open(vm);
			kvmi_map_all(fd, &m);
			kvmi_set_doorbells(fd, KVMI_ALL_VCPUS,
					   KVMI_DOORBELL_KICK, -1, kick);
			memset(last, 0, sizeof(last));
		}
	}
	kvmi_unmap_all(&m);
	close(fd);

	*(volatile int *)addr_gva2hva(vm, (vm_vaddr_t)&guest_stop) = 1;
	for (i = 0; i < NR_VCPUS; i++) {
		pthread_join(r[i].thread, NULL);
		TEST_ASSERT(r[i].done, "vCPU %u did not finish", i);
	}
	close(kick);
	kvm_vm_free(vm);
}

int main(int argc, char *argv[])
{
	struct sigaction sa = { .sa_handler = sig_nop };
	uint64_t seed = time(NULL);
	uint32_t kills = 10, destroys = 3, toggles = 2000;
	int opt;

	if (getenv("KVMI_TORTURE_KILLS"))
		kills = strtoul(getenv("KVMI_TORTURE_KILLS"), NULL, 0);
	if (getenv("KVMI_TORTURE_TOGGLES"))
		toggles = strtoul(getenv("KVMI_TORTURE_TOGGLES"), NULL, 0);
	if (getenv("KVMI_TORTURE_DESTROYS"))
		destroys = strtoul(getenv("KVMI_TORTURE_DESTROYS"), NULL, 0);
	while ((opt = getopt(argc, argv, "k:v:b:s:")) != -1) {
		switch (opt) {
		case 'k':
			kills = strtoul(optarg, NULL, 0);
			break;
		case 'v':
			destroys = strtoul(optarg, NULL, 0);
			break;
		case 'b':
			toggles = strtoul(optarg, NULL, 0);
			break;
		case 's':
			seed = strtoull(optarg, NULL, 0);
			break;
		default:
			fprintf(stderr,
				"usage: %s [-k KILLS] [-v DESTROYS] [-b TOGGLES] [-s SEED]\n",
				argv[0]);
			exit(KSFT_FAIL);
		}
	}
	ksft_print_header();
	KVMI_REQUIRE();
	ksft_set_plan(3);
	ksft_print_msg("seed %lu, %u kills, %u destroys, %u toggles\n", seed,
		       kills, destroys, toggles);
	rng_state = seed | 1;
	TEST_ASSERT(!sigaction(SIGUSR1, &sa, NULL), "sigaction");

	tool_killed(kills);
	ksft_test_result_pass("tool_killed: %u kills\n", kills);
	vm_destroyed(destroys);
	ksft_test_result_pass("vm_destroyed: %u VMs\n", destroys);
	bp_toggled(toggles);
	ksft_test_result_pass("bp_toggled: %u rounds\n", toggles);
	ksft_finished();
}
