// SPDX-License-Identifier: GPL-2.0-only
/*
 * kvmi-ring: page access restrictions under load (kvmi.rst, sections
 * 7.12, 7.13 and 10.11). Two vCPUs write to a set of pages while a tool
 * thread restricts and frees them and reads them with READ_PHYSICAL in a
 * loop, and a handler thread per vCPU answers each PAGE_FAULT with
 * ALLOW. Every write must land exactly once, no vCPU may be held up by
 * the VM-wide ioctls, and the kernel must report nothing (the run scans
 * dmesg for lockdep, KASAN, RCU and hung-task reports).
 */
#include <poll.h>
#include <pthread.h>
#include <sys/eventfd.h>

#include "kselftest_harness.h"
#include "kvmi_util.h"
#include "processor.h"
#include "ucall_common.h"

#define TEST_GPA	0x10000000ULL
#define TEST_GVA	0x10000000ULL
#define TEST_PAGES	16
#define TEST_SLOT	10
#define NR_VCPUS	2
#define ITERATIONS	4000

/* vCPU @id writes i to its word of page i % TEST_PAGES, i = 1..N. */
static void guest_code(uint64_t id)
{
	uint64_t i;

	for (i = 1; i <= ITERATIONS; i++) {
		volatile uint64_t *p = (void *)(TEST_GVA +
						(i % TEST_PAGES) * PAGE_SIZE +
						id * 8);
		*p = i;
	}
	GUEST_DONE();
}

struct vcpu_ctx {
	struct kvm_vcpu *vcpu;
	uint32_t idx;
	struct kvmi_maps *m;
	int notify;
	int kick;
	pthread_t runner;
	pthread_t handler;
	volatile bool done;
	int ret;
	uint64_t ucall;
	uint64_t events;
};

static volatile bool first_event;

static void *runner_fn(void *arg)
{
	struct vcpu_ctx *c = arg;
	struct ucall uc;

	c->ret = __vcpu_run(c->vcpu);
	if (!c->ret)
		c->ucall = get_ucall(c->vcpu, &uc);
	if (c->ucall == UCALL_ABORT)
		REPORT_GUEST_ASSERT(uc);
	c->done = true;
	return NULL;
}

/* Answer every PAGE_FAULT of the vCPU with ALLOW until it is done. */
static void *handler_fn(void *arg)
{
	struct vcpu_ctx *c = arg;
	struct kvmi_event *ev = kvmi_event_slot(c->m, c->idx);
	struct pollfd pfd = { .fd = c->notify, .events = POLLIN };
	uint32_t last = 0, s;
	uint64_t cnt;

	while (!c->done) {
		s = __atomic_load_n(&ev->seq, __ATOMIC_ACQUIRE);
		if (!s || s == last) {
			/* The socket rings no notify eventfd. */
			if (poll(&pfd, 1, c->m->sk ? 0 : 10) > 0)
				TEST_ASSERT(read(c->notify, &cnt, sizeof(cnt)) ==
					    sizeof(cnt), "read(notify)");
			continue;
		}
		/*
		 * An event is pending: take it as the transport brings it
		 * (on the socket, its message), so that waiting never
		 * outlasts the vCPU.
		 */
		s = kvmi_wait_event(c->m, c->idx, -1, last);
		TEST_ASSERT(ev->id == KVMI_EVENT_PAGE_FAULT,
			    "event %u", ev->id);
		TEST_ASSERT(ev->data.page_fault.access == KVMI_PAGE_ACCESS_W,
			    "access %u", ev->data.page_fault.access);
		TEST_ASSERT(ev->data.page_fault.gpa >= TEST_GPA &&
			    ev->data.page_fault.gpa <
			    TEST_GPA + TEST_PAGES * PAGE_SIZE,
			    "gpa 0x%llx", ev->data.page_fault.gpa);
		last = s;
		c->events++;
		first_event = true;
		kvmi_send_reply(c->m, c->idx, s, KVMI_EVENT_PAGE_FAULT,
				KVMI_ACTION_ALLOW, 0, NULL, c->kick);
	}
	return NULL;
}

static void set_all(int fd, uint8_t access)
{
	struct kvmi_page_access_entry e[TEST_PAGES] = {};
	struct kvmi_page_access pa = {
		.entries = (uintptr_t)e,
		.count = TEST_PAGES,
	};
	int i;

	for (i = 0; i < TEST_PAGES; i++) {
		e[i].gpa = TEST_GPA + i * PAGE_SIZE;
		e[i].access = access;
	}
	TEST_ASSERT(!ioctl(fd, KVMI_IOCTL_SET_PAGE_ACCESS, &pa) &&
		    pa.done == TEST_PAGES, "SET_PAGE_ACCESS: %s",
		    strerror(errno));
}

static void read_all(int fd, uint8_t *buf)
{
	struct kvmi_physical ph = {
		.gpa = TEST_GPA,
		.size = TEST_PAGES * PAGE_SIZE,
		.buffer = (uintptr_t)buf,
	};

	TEST_ASSERT(!ioctl(fd, KVMI_IOCTL_READ_PHYSICAL, &ph),
		    "READ_PHYSICAL: %s", strerror(errno));
}

FIXTURE(stress) {
	int unused;
};

KVMI_TRANSPORT_VARIANTS(stress);

FIXTURE_SETUP(stress)
{
	KVMI_REQUIRE();
	kvmi_use_transport(variant->transport);
}

FIXTURE_TEARDOWN(stress)
{
}

TEST_F(stress, restrict_and_read_while_two_vcpus_fault)
{
	static uint8_t buf[TEST_PAGES * PAGE_SIZE];
	struct kvm_vcpu *vcpus[NR_VCPUS];
	struct vcpu_ctx c[NR_VCPUS] = {};
	uint64_t rounds = 0, events = 0;
	struct kvmi_maps m;
	struct kvm_vm *vm;
	uint64_t *hva;
	int fd, i, p;

	vm = vm_create_with_vcpus(NR_VCPUS, guest_code, vcpus);
	vm_userspace_mem_region_add(vm, VM_MEM_SRC_ANONYMOUS, TEST_GPA,
				    TEST_SLOT, TEST_PAGES, 0);
	virt_map(vm, TEST_GVA, TEST_GPA, TEST_PAGES);
	hva = addr_gpa2hva(vm, TEST_GPA);
	fd = kvmi_open(vm);
	kvmi_map_all(fd, &m);

	set_all(fd, KVMI_PAGE_ACCESS_R | KVMI_PAGE_ACCESS_X);
	for (i = 0; i < NR_VCPUS; i++) {
		c[i].vcpu = vcpus[i];
		c[i].idx = i;
		c[i].m = &m;
		c[i].notify = eventfd(0, EFD_CLOEXEC);
		c[i].kick = eventfd(0, EFD_CLOEXEC);
		ASSERT_LE(0, c[i].notify);
		ASSERT_LE(0, c[i].kick);
		kvmi_set_doorbells(fd, i,
				   KVMI_DOORBELL_NOTIFY | KVMI_DOORBELL_KICK,
				   c[i].notify, c[i].kick);
		kvmi_control_events(fd, i, KVMI_EVENT_PAGE_FAULT, 1);
		vcpu_args_set(vcpus[i], 1, i);
	}
	for (i = 0; i < NR_VCPUS; i++) {
		ASSERT_EQ(0, pthread_create(&c[i].handler, NULL, handler_fn,
					    &c[i]));
		ASSERT_EQ(0, pthread_create(&c[i].runner, NULL, runner_fn,
					    &c[i]));
	}

	/* The tool: restrict, read, free, read, while the vCPUs run. */
	while (!first_event)
		sched_yield();
	while (!c[0].done || !c[1].done) {
		set_all(fd, KVMI_PAGE_ACCESS_R);
		read_all(fd, buf);
		set_all(fd, KVMI_PAGE_ACCESS_R | KVMI_PAGE_ACCESS_W |
			    KVMI_PAGE_ACCESS_X);
		read_all(fd, buf);
		rounds++;
	}

	for (i = 0; i < NR_VCPUS; i++) {
		pthread_join(c[i].runner, NULL);
		pthread_join(c[i].handler, NULL);
		ASSERT_EQ(0, c[i].ret);
		ASSERT_EQ(UCALL_DONE, c[i].ucall);
		events += c[i].events;
		ASSERT_EQ(c[i].events, kvmi_counters(&m, i)->events);
	}
	ASSERT_LT(0, events);
	ASSERT_LT(0, rounds);

	/* Each vCPU's last write to each page landed, whichever way. */
	for (p = 0; p < TEST_PAGES; p++)
		for (i = 0; i < NR_VCPUS; i++)
			ASSERT_EQ(ITERATIONS - (ITERATIONS - p) % TEST_PAGES,
				  hva[p * PAGE_SIZE / 8 + i]);
	ksft_print_msg("%lu rounds of the tool, %lu events\n",
		       (unsigned long)rounds, (unsigned long)events);

	kvmi_unmap_all(&m);
	close(fd);
	for (i = 0; i < NR_VCPUS; i++) {
		close(c[i].notify);
		close(c[i].kick);
	}
	kvm_vm_free(vm);
}

TEST_HARNESS_MAIN
