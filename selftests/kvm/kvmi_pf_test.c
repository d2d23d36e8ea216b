// SPDX-License-Identifier: GPL-2.0-only
/*
 * kvmi-ring: page access restrictions and the PAGE_FAULT event
 * (Documentation/virt/kvm/kvmi.rst, sections 7.12 and 10.11): what
 * GET_PAGE_ACCESS reads back, the input SET_PAGE_ACCESS refuses, and the
 * effect of each reply on the guest's write to, or execution from, a
 * restricted page.
 */
#include <pthread.h>
#include <sys/eventfd.h>

#include "kselftest_harness.h"
#include "kvmi_util.h"
#include "processor.h"
#include "ucall_common.h"

#define TEST_GPA	0x10000000ULL
#define TEST_GVA	0x10000000ULL
#define TEST_PAGES	3
#define TEST_SLOT	10
#define DATA_GPA	TEST_GPA		/* the page the guest writes */
#define CODE_GPA	(TEST_GPA + PAGE_SIZE)	/* the page it executes */
#define CODE_GVA	(TEST_GVA + PAGE_SIZE)
#define FREE_GVA	(TEST_GVA + 2 * PAGE_SIZE)	/* never restricted */
#define VALUE		0x6b766d6970666175ULL

#define RWX (KVMI_PAGE_ACCESS_R | KVMI_PAGE_ACCESS_W | KVMI_PAGE_ACCESS_X)

extern char write_insn[], write_end[];

/* mov $0x42, %eax; ret */
static const uint8_t code[] = { 0xb8, 0x42, 0x00, 0x00, 0x00, 0xc3 };

/* Write the data page, report it; call the code page, report its result. */
static void guest_code(void)
{
	uint64_t (*fn)(void) = (void *)CODE_GVA;

	asm volatile(".global write_insn\n"
		     "write_insn: movq %0, (%1)\n"
		     ".global write_end\n"
		     "write_end:"
		     : : "r"(VALUE), "r"(TEST_GVA) : "memory");
	GUEST_SYNC(*(volatile uint64_t *)TEST_GVA);
	GUEST_SYNC(fn());
	GUEST_DONE();
}

/* Another vCPU: read the data page, write the free page. */
static void other_code(void)
{
	GUEST_SYNC(*(volatile uint64_t *)TEST_GVA);
	*(volatile uint64_t *)FREE_GVA = VALUE;
	GUEST_SYNC(*(volatile uint64_t *)FREE_GVA);
	GUEST_DONE();
}

FIXTURE(pf) {
	struct kvm_vm *vm;
	struct kvm_vcpu *vcpu;
	int fd;
	struct kvmi_maps m;
	int notify;
	int kick;
	uint8_t *hva;
	struct kvmi_runner r;
};

KVMI_TRANSPORT_VARIANTS(pf);

FIXTURE_SETUP(pf)
{
	KVMI_REQUIRE();
	kvmi_use_transport(variant->transport);
	self->vm = vm_create_with_one_vcpu(&self->vcpu, guest_code);
	vm_userspace_mem_region_add(self->vm, VM_MEM_SRC_ANONYMOUS, TEST_GPA,
				    TEST_SLOT, TEST_PAGES, 0);
	virt_map(self->vm, TEST_GVA, TEST_GPA, TEST_PAGES);
	self->hva = addr_gpa2hva(self->vm, TEST_GPA);
	memcpy(self->hva + PAGE_SIZE, code, sizeof(code));
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

FIXTURE_TEARDOWN(pf)
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

static int __page_access(int fd, unsigned long ioc,
			 struct kvmi_page_access_entry *e, uint32_t count,
			 uint32_t *done)
{
	struct kvmi_page_access pa = {
		.entries = (uintptr_t)e,
		.count = count,
		.done = 0xdead,
	};
	int r = ioctl(fd, ioc, &pa);

	if (done)
		*done = pa.done;
	return r;
}

static void set_access(struct __test_metadata *_metadata, int fd,
		       uint64_t gpa, uint8_t access)
{
	struct kvmi_page_access_entry e = { .gpa = gpa, .access = access };
	uint32_t done;

	ASSERT_EQ(0, __page_access(fd, KVMI_IOCTL_SET_PAGE_ACCESS, &e, 1,
				   &done));
	ASSERT_EQ(1, done);
}

static uint8_t get_access(struct __test_metadata *_metadata, int fd,
			  uint64_t gpa)
{
	struct kvmi_page_access_entry e = { .gpa = gpa, .access = 0xff };

	EXPECT_EQ(0, __page_access(fd, KVMI_IOCTL_GET_PAGE_ACCESS, &e, 1,
				   NULL));
	return e.access;
}

/* Run the vCPU to its next GUEST_SYNC, return its value. */
static uint64_t run_sync(struct __test_metadata *_metadata,
			 FIXTURE_DATA(pf) *self)
{
	kvmi_runner_start(&self->r, self->vcpu);
	kvmi_runner_join(&self->r);
	EXPECT_EQ(0, self->r.ret);
	EXPECT_EQ(UCALL_SYNC, self->r.ucall);
	return self->r.args[1];
}

static void reply(FIXTURE_DATA(pf) *self, uint32_t s, uint8_t action)
{
	kvmi_send_reply(&self->m, 0, s, KVMI_EVENT_PAGE_FAULT, action, 0,
			NULL, self->kick);
}

#define ASSERT_SYNC(self, value) do {				\
	kvmi_runner_join(&(self)->r);				\
	ASSERT_EQ(0, (self)->r.ret);				\
	ASSERT_EQ(UCALL_SYNC, (self)->r.ucall);			\
	ASSERT_EQ((value), (self)->r.args[1]);			\
} while (0)

static uint64_t data_word(FIXTURE_DATA(pf) *self)
{
	return *(volatile uint64_t *)self->hva;
}

TEST_F(pf, get_returns_what_set_set)
{
	struct kvmi_page_access_entry e[3] = {
		{ .gpa = DATA_GPA, .access = KVMI_PAGE_ACCESS_R },
		{ .gpa = CODE_GPA + 0x123,
		  .access = KVMI_PAGE_ACCESS_R | KVMI_PAGE_ACCESS_W },
		{ .gpa = 0, .access = RWX },
	};
	uint32_t done;

	ASSERT_EQ(RWX, get_access(_metadata, self->fd, DATA_GPA));
	ASSERT_EQ(0, __page_access(self->fd, KVMI_IOCTL_SET_PAGE_ACCESS, e, 3,
				   &done));
	ASSERT_EQ(3, done);
	memset(e, 0, sizeof(e));
	e[0].gpa = DATA_GPA + 8;
	e[1].gpa = CODE_GPA;
	e[2].gpa = 0;
	ASSERT_EQ(0, __page_access(self->fd, KVMI_IOCTL_GET_PAGE_ACCESS, e, 3,
				   &done));
	ASSERT_EQ(3, done);
	ASSERT_EQ(KVMI_PAGE_ACCESS_R, e[0].access);
	ASSERT_EQ(KVMI_PAGE_ACCESS_R | KVMI_PAGE_ACCESS_W, e[1].access);
	ASSERT_EQ(RWX, e[2].access);

	set_access(_metadata, self->fd, DATA_GPA, RWX);
	ASSERT_EQ(RWX, get_access(_metadata, self->fd, DATA_GPA));
}

TEST_F(pf, bad_input_changes_nothing)
{
	struct kvmi_page_access_entry e[2] = {
		{ .gpa = DATA_GPA, .access = KVMI_PAGE_ACCESS_R },
		{ .gpa = CODE_GPA, .access = KVMI_PAGE_ACCESS_R },
	};
	static const uint8_t bad_access[] = {
		0,			/* not readable: neither NPT nor EPT */
		KVMI_PAGE_ACCESS_W,
		KVMI_PAGE_ACCESS_X,
		KVMI_PAGE_ACCESS_W | KVMI_PAGE_ACCESS_X,
		RWX | 8,		/* unknown bit */
		0x80,
	};
	struct kvmi_page_access pa = {
		.entries = (uintptr_t)e,
		.count = 2,
	};
	uint32_t done;
	unsigned int i;

	pa.flags = 1;
	ASSERT_EQ(-1, ioctl(self->fd, KVMI_IOCTL_SET_PAGE_ACCESS, &pa));
	ASSERT_EQ(EINVAL, errno);
	pa.flags = 0;
	pa.padding = 1;
	ASSERT_EQ(-1, ioctl(self->fd, KVMI_IOCTL_SET_PAGE_ACCESS, &pa));
	ASSERT_EQ(EINVAL, errno);
	pa.padding = 0;
	pa.count = KVMI_PAGE_ACCESS_MAX_COUNT + 1;
	ASSERT_EQ(-1, ioctl(self->fd, KVMI_IOCTL_SET_PAGE_ACCESS, &pa));
	ASSERT_EQ(E2BIG, errno);
	ASSERT_EQ(-1, ioctl(self->fd, KVMI_IOCTL_GET_PAGE_ACCESS, &pa));
	ASSERT_EQ(E2BIG, errno);

	/* The second entry is bad: the first isn't applied either. */
	e[1].padding[6] = 1;
	ASSERT_EQ(-1, __page_access(self->fd, KVMI_IOCTL_SET_PAGE_ACCESS, e, 2,
				    &done));
	ASSERT_EQ(EINVAL, errno);
	ASSERT_EQ(1, done);
	ASSERT_EQ(-1, __page_access(self->fd, KVMI_IOCTL_GET_PAGE_ACCESS, e, 2,
				    &done));
	ASSERT_EQ(EINVAL, errno);
	e[1].padding[6] = 0;

	for (i = 0; i < ARRAY_SIZE(bad_access); i++) {
		e[1].access = bad_access[i];
		ASSERT_EQ(-1, __page_access(self->fd,
					    KVMI_IOCTL_SET_PAGE_ACCESS, e, 2,
					    &done));
		ASSERT_EQ(EINVAL, errno);
		ASSERT_EQ(1, done);
	}

	/* A gpa outside every memslot. */
	e[1].access = KVMI_PAGE_ACCESS_R;
	e[1].gpa = 1ULL << 40;
	ASSERT_EQ(-1, __page_access(self->fd, KVMI_IOCTL_SET_PAGE_ACCESS, e, 2,
				    &done));
	ASSERT_EQ(ENOENT, errno);
	ASSERT_EQ(1, done);
	ASSERT_EQ(-1, __page_access(self->fd, KVMI_IOCTL_GET_PAGE_ACCESS, e, 2,
				    &done));
	ASSERT_EQ(ENOENT, errno);

	ASSERT_EQ(RWX, get_access(_metadata, self->fd, DATA_GPA));
	ASSERT_EQ(RWX, get_access(_metadata, self->fd, CODE_GPA));

	/* Nothing restricted: the guest runs without an event. */
	kvmi_control_events(self->fd, 0, KVMI_EVENT_PAGE_FAULT, 1);
	ASSERT_EQ(VALUE, run_sync(_metadata, self));
	ASSERT_EQ(0x42, run_sync(_metadata, self));
	ASSERT_EQ(0, kvmi_counters(&self->m, 0)->events);
}

/* Restrict the write to the data page, run to the event; return its seq. */
static uint32_t start_write(struct __test_metadata *_metadata,
			    FIXTURE_DATA(pf) *self)
{
	struct kvmi_event *ev = kvmi_event_slot(&self->m, 0);
	uint32_t s;

	set_access(_metadata, self->fd, DATA_GPA,
		   KVMI_PAGE_ACCESS_R | KVMI_PAGE_ACCESS_X);
	kvmi_control_events(self->fd, 0, KVMI_EVENT_PAGE_FAULT, 1);
	kvmi_runner_start(&self->r, self->vcpu);
	s = kvmi_wait_event(&self->m, 0, self->notify, 0);
	EXPECT_EQ(KVMI_EVENT_PAGE_FAULT, ev->id);
	EXPECT_EQ(DATA_GPA, ev->data.page_fault.gpa);
	EXPECT_EQ(KVMI_PAGE_ACCESS_W, ev->data.page_fault.access);
	EXPECT_EQ((uint64_t)write_insn, ev->regs.rip);
	EXPECT_EQ(0, data_word(self));
	return s;
}

/* ALLOW: the write lands, the restriction stays. */
TEST_F(pf, write_allow)
{
	uint32_t s = start_write(_metadata, self);

	reply(self, s, KVMI_ACTION_ALLOW);
	ASSERT_SYNC(self, VALUE);
	ASSERT_EQ(VALUE, data_word(self));
	ASSERT_EQ(1, kvmi_counters(&self->m, 0)->events);
	ASSERT_EQ(KVMI_PAGE_ACCESS_R | KVMI_PAGE_ACCESS_X,
		  get_access(_metadata, self->fd, DATA_GPA));
	ASSERT_EQ(KVMI_DONE_REPLY, kvmi_vcpu_state(&self->m, 0)->done_reason);
}

/* CONTINUE is the same as ALLOW for this event. */
TEST_F(pf, write_continue)
{
	uint32_t s = start_write(_metadata, self);

	reply(self, s, KVMI_ACTION_CONTINUE);
	ASSERT_SYNC(self, VALUE);
	ASSERT_EQ(VALUE, data_word(self));
}

/* RETRY after lifting the restriction: the guest's own write lands. */
TEST_F(pf, write_retry_after_lifting)
{
	uint32_t s = start_write(_metadata, self);

	set_access(_metadata, self->fd, DATA_GPA, RWX);
	reply(self, s, KVMI_ACTION_RETRY);
	ASSERT_SYNC(self, VALUE);
	ASSERT_EQ(VALUE, data_word(self));
	ASSERT_EQ(1, kvmi_counters(&self->m, 0)->events);
}

/* RETRY with the restriction in place: the same write faults again. */
TEST_F(pf, write_retry_faults_again)
{
	struct kvmi_event *ev = kvmi_event_slot(&self->m, 0);
	uint32_t s = start_write(_metadata, self);

	reply(self, s, KVMI_ACTION_RETRY);
	s = kvmi_wait_event(&self->m, 0, self->notify, s);
	ASSERT_EQ(KVMI_EVENT_PAGE_FAULT, ev->id);
	ASSERT_EQ((uint64_t)write_insn, ev->regs.rip);
	ASSERT_EQ(0, data_word(self));
	reply(self, s, KVMI_ACTION_ALLOW);
	ASSERT_SYNC(self, VALUE);
	ASSERT_EQ(2, kvmi_counters(&self->m, 0)->events);
}

TEST_F(pf, crash_exits_to_vmm)
{
	uint32_t s = start_write(_metadata, self);
	struct kvm_regs regs;

	reply(self, s, KVMI_ACTION_CRASH);
	kvmi_runner_join(&self->r);
	ASSERT_EQ(0, self->r.ret);
	ASSERT_EQ(KVM_EXIT_SYSTEM_EVENT, self->r.exit_reason);
	ASSERT_EQ(KVM_SYSTEM_EVENT_CRASH, self->vcpu->run->system_event.type);
	vcpu_regs_get(self->vcpu, &regs);
	ASSERT_EQ((uint64_t)write_insn, regs.rip);
	ASSERT_EQ(0, data_word(self));
}

/* DENY is not an action of this event: invalid, CONTINUE applies. */
TEST_F(pf, deny_is_invalid)
{
	uint32_t s = start_write(_metadata, self);

	reply(self, s, KVMI_ACTION_DENY);
	ASSERT_SYNC(self, VALUE);
	ASSERT_EQ(KVMI_DONE_BAD_REPLY,
		  kvmi_vcpu_state(&self->m, 0)->done_reason);
}

/* Without the event, an access the restriction forbids is emulated. */
TEST_F(pf, disabled_event_emulates)
{
	set_access(_metadata, self->fd, DATA_GPA, KVMI_PAGE_ACCESS_R);
	ASSERT_EQ(VALUE, run_sync(_metadata, self));
	ASSERT_EQ(VALUE, data_word(self));
	ASSERT_EQ(0, kvmi_counters(&self->m, 0)->events);
}

/* Closing the introspection fd lifts every restriction. */
TEST_F(pf, close_lifts_restrictions)
{
	set_access(_metadata, self->fd, DATA_GPA, KVMI_PAGE_ACCESS_R);
	set_access(_metadata, self->fd, CODE_GPA, KVMI_PAGE_ACCESS_R);
	kvmi_control_events(self->fd, 0, KVMI_EVENT_PAGE_FAULT, 1);
	kvmi_unmap_all(&self->m);
	close(self->fd);
	self->fd = -1;
	ASSERT_EQ(VALUE, run_sync(_metadata, self));
	ASSERT_EQ(0x42, run_sync(_metadata, self));
	self->fd = kvmi_open(self->vm);
	ASSERT_EQ(RWX, get_access(_metadata, self->fd, DATA_GPA));
}

/* An instruction fetch from a non-executable page; RETRY once lifted. */
TEST_F(pf, exec_retry_after_lifting)
{
	struct kvmi_event *ev = kvmi_event_slot(&self->m, 0);
	uint32_t s;

	ASSERT_EQ(VALUE, run_sync(_metadata, self));
	set_access(_metadata, self->fd, CODE_GPA,
		   KVMI_PAGE_ACCESS_R | KVMI_PAGE_ACCESS_W);
	kvmi_control_events(self->fd, 0, KVMI_EVENT_PAGE_FAULT, 1);
	kvmi_runner_start(&self->r, self->vcpu);
	s = kvmi_wait_event(&self->m, 0, self->notify, 0);
	ASSERT_EQ(KVMI_EVENT_PAGE_FAULT, ev->id);
	ASSERT_EQ(CODE_GPA, ev->data.page_fault.gpa & ~(PAGE_SIZE - 1));
	ASSERT_EQ(KVMI_PAGE_ACCESS_X, ev->data.page_fault.access);
	ASSERT_EQ(CODE_GVA, ev->regs.rip);
	set_access(_metadata, self->fd, CODE_GPA, RWX);
	reply(self, s, KVMI_ACTION_RETRY);
	ASSERT_SYNC(self, 0x42);
	ASSERT_EQ(1, kvmi_counters(&self->m, 0)->events);
}

/* ALLOW on each fetch: each instruction of the page is emulated. */
TEST_F(pf, exec_allow_each_instruction)
{
	struct kvmi_event *ev = kvmi_event_slot(&self->m, 0);
	uint32_t s;

	ASSERT_EQ(VALUE, run_sync(_metadata, self));
	set_access(_metadata, self->fd, CODE_GPA,
		   KVMI_PAGE_ACCESS_R | KVMI_PAGE_ACCESS_W);
	kvmi_control_events(self->fd, 0, KVMI_EVENT_PAGE_FAULT, 1);
	kvmi_runner_start(&self->r, self->vcpu);
	s = kvmi_wait_event(&self->m, 0, self->notify, 0);
	ASSERT_EQ(CODE_GVA, ev->regs.rip);
	ASSERT_EQ(KVMI_PAGE_ACCESS_X, ev->data.page_fault.access);
	reply(self, s, KVMI_ACTION_ALLOW);
	/* The RET. */
	s = kvmi_wait_event(&self->m, 0, self->notify, s);
	ASSERT_EQ(CODE_GVA + 5, ev->regs.rip);
	ASSERT_EQ(0x42, ev->regs.rax & 0xffffffff);
	ASSERT_EQ(KVMI_PAGE_ACCESS_X, ev->data.page_fault.access);
	reply(self, s, KVMI_ACTION_ALLOW);
	ASSERT_SYNC(self, 0x42);
	ASSERT_EQ(2, kvmi_counters(&self->m, 0)->events);
}

/* Reading a write-protected page needs no event. */
TEST_F(pf, allowed_access_no_event)
{
	set_access(_metadata, self->fd, CODE_GPA, KVMI_PAGE_ACCESS_R |
		   KVMI_PAGE_ACCESS_X);
	kvmi_control_events(self->fd, 0, KVMI_EVENT_PAGE_FAULT, 1);
	ASSERT_EQ(VALUE, run_sync(_metadata, self));
	ASSERT_EQ(0x42, run_sync(_metadata, self));
	ASSERT_EQ(0, kvmi_counters(&self->m, 0)->events);
}

static void reply_regs(FIXTURE_DATA(pf) *self, uint32_t s, uint8_t action,
		       const struct kvmi_x86_regs *regs)
{
	kvmi_send_reply(&self->m, 0, s, KVMI_EVENT_PAGE_FAULT, action,
			KVMI_REPLY_SET_REGS, regs, self->kick);
}

/* EMUL_NOWRITE: the guest goes on past the write, which is dropped. */
TEST_F(pf, emul_nowrite_drops_the_write)
{
	struct kvmi_version ver;
	uint32_t s;

	kvmi_get_version(self->fd, &ver);
	ASSERT_TRUE(ver.features & KVMI_FEATURE_PF_EMULATION);
	s = start_write(_metadata, self);
	reply(self, s, KVMI_ACTION_EMUL_NOWRITE);
	ASSERT_SYNC(self, 0);
	ASSERT_EQ(0, data_word(self));
	ASSERT_EQ(KVMI_DONE_REPLY, kvmi_vcpu_state(&self->m, 0)->done_reason);
	ASSERT_EQ(1, kvmi_counters(&self->m, 0)->events);
	/* The guest goes on normally. */
	ASSERT_EQ(0x42, run_sync(_metadata, self));
}

/* EMUL_NOWRITE can't move RIP: invalid, CONTINUE applies. */
TEST_F(pf, emul_nowrite_with_rip_is_invalid)
{
	struct kvmi_event *ev = kvmi_event_slot(&self->m, 0);
	uint32_t s = start_write(_metadata, self);
	struct kvmi_x86_regs regs = ev->regs;

	regs.groups = KVMI_REGS_RIP;
	regs.rip = (uint64_t)write_end;
	reply_regs(self, s, KVMI_ACTION_EMUL_NOWRITE, &regs);
	ASSERT_SYNC(self, VALUE);
	ASSERT_EQ(KVMI_DONE_BAD_REPLY,
		  kvmi_vcpu_state(&self->m, 0)->done_reason);
}

/* NOEMU: the tool does the write itself and moves RIP past it. */
TEST_F(pf, noemu_tool_does_the_work)
{
	struct kvmi_event *ev = kvmi_event_slot(&self->m, 0);
	uint32_t s = start_write(_metadata, self);
	struct kvmi_x86_regs regs = ev->regs;

	*(volatile uint64_t *)self->hva = 0x1111;
	regs.groups = KVMI_REGS_RIP;
	regs.rip = (uint64_t)write_end;
	reply_regs(self, s, KVMI_ACTION_NOEMU, &regs);
	ASSERT_SYNC(self, 0x1111);
	ASSERT_EQ(0x1111, data_word(self));
	ASSERT_EQ(KVMI_DONE_REPLY, kvmi_vcpu_state(&self->m, 0)->done_reason);
}

/* NOEMU without a new RIP is invalid: CONTINUE applies. */
TEST_F(pf, noemu_without_rip_is_invalid)
{
	uint32_t s = start_write(_metadata, self);

	reply(self, s, KVMI_ACTION_NOEMU);
	ASSERT_SYNC(self, VALUE);
	ASSERT_EQ(KVMI_DONE_BAD_REPLY,
		  kvmi_vcpu_state(&self->m, 0)->done_reason);
}

/*
 * SET_CTX without a context (ctx_type 0): invalid, CONTINUE applies;
 * kvmi_pf_ctx_test has the rest.
 */
TEST_F(pf, set_ctx_without_context_is_invalid)
{
	uint32_t s = start_write(_metadata, self);

	reply(self, s, KVMI_ACTION_SET_CTX);
	ASSERT_SYNC(self, VALUE);
	ASSERT_EQ(KVMI_DONE_BAD_REPLY,
		  kvmi_vcpu_state(&self->m, 0)->done_reason);
}

/* A vCPU waiting in the event holds up no other vCPU. */
TEST_F(pf, other_vcpus_not_affected)
{
	uint32_t s = start_write(_metadata, self);
	struct kvm_vcpu *other = vm_vcpu_add(self->vm, 1, other_code);
	struct ucall uc;

	kvmi_control_events(self->fd, 1, KVMI_EVENT_PAGE_FAULT, 1);
	vcpu_run(other);
	ASSERT_EQ(UCALL_SYNC, get_ucall(other, &uc));
	ASSERT_EQ(0, uc.args[1]);	/* reading is allowed, no event */
	vcpu_run(other);
	ASSERT_EQ(UCALL_SYNC, get_ucall(other, &uc));
	ASSERT_EQ(VALUE, uc.args[1]);
	ASSERT_EQ(1, kvmi_counters(&self->m, 0)->events);
	ASSERT_EQ(0, kvmi_counters(&self->m, 1)->events);
	ASSERT_EQ(0, data_word(self));

	reply(self, s, KVMI_ACTION_ALLOW);
	ASSERT_SYNC(self, VALUE);
	ASSERT_EQ(VALUE, data_word(self));
}

TEST_F(pf, check_command_and_event)
{
	struct kvmi_check chk = { .id = KVMI_CMD_SET_PAGE_ACCESS };

	ASSERT_EQ(0, ioctl(self->fd, KVMI_IOCTL_CHECK_COMMAND, &chk));
	chk.id = KVMI_CMD_GET_PAGE_ACCESS;
	ASSERT_EQ(0, ioctl(self->fd, KVMI_IOCTL_CHECK_COMMAND, &chk));
	chk.id = KVMI_EVENT_PAGE_FAULT;
	ASSERT_EQ(0, ioctl(self->fd, KVMI_IOCTL_CHECK_EVENT, &chk));
}

TEST_HARNESS_MAIN
