// SPDX-License-Identifier: GPL-2.0-only
/*
 * kvmi-ring: the PAGE_FAULT reply KVMI_ACTION_SET_CTX
 * (Documentation/virt/kvm/kvmi.rst, section 10.11): KVM emulates the
 * instruction with the bytes the tool gives, as the instruction itself
 * (KVMI_PF_CTX_INSN) or as what it reads from the page of the fault
 * (KVMI_PF_CTX_READ), for that one instruction; a malformed context is
 * an invalid reply.
 */
#include <pthread.h>
#include <sys/eventfd.h>

#include "kselftest_harness.h"
#include "kvmi_util.h"
#include "processor.h"
#include "ucall_common.h"

#define TEST_GPA	0x10000000ULL
#define TEST_GVA	0x10000000ULL
#define TEST_PAGES	2
#define TEST_SLOT	10
#define DATA_GPA	TEST_GPA		/* the page the guest adds to */
#define CODE_GPA	(TEST_GPA + PAGE_SIZE)	/* the page it executes */
#define CODE_GVA	(TEST_GVA + PAGE_SIZE)
#define CODE_DATA	0x20	/* where on the code page its load reads */
#define ADDEND		0x5ULL
#define OLD_DATA	0x1000ULL
#define TOOL_DATA	0x6b766d6963747821ULL
#define MEM_DATA	0x1111111122222222ULL

#define R_X	(KVMI_PAGE_ACCESS_R | KVMI_PAGE_ACCESS_X)
#define R_W	(KVMI_PAGE_ACCESS_R | KVMI_PAGE_ACCESS_W)

extern char rmw_insn[];

/* mov $0x42, %eax; ret */
static const uint8_t code_mov[] = { 0xb8, 0x42, 0x00, 0x00, 0x00, 0xc3 };
/* mov $0x77, %eax: the tool's replacement */
static const uint8_t insn_mov77[] = { 0xb8, 0x77, 0x00, 0x00, 0x00 };
/* mov CODE_DATA(%rip is 7 bytes on), %rax; ret */
static const uint8_t code_load[] = { 0x48, 0x8b, 0x05, CODE_DATA - 7, 0x00,
				     0x00, 0x00, 0xc3 };

/* Add to the data page, report it; then call the code page for ever. */
static void guest_code(void)
{
	uint64_t (*fn)(void) = (void *)CODE_GVA;

	asm volatile(".global rmw_insn\n"
		     "rmw_insn: addq %0, (%1)\n"
		     : : "r"(ADDEND), "r"(TEST_GVA) : "memory");
	GUEST_SYNC(*(volatile uint64_t *)TEST_GVA);
	for (;;)
		GUEST_SYNC(fn());
}

FIXTURE(ctx) {
	struct kvm_vm *vm;
	struct kvm_vcpu *vcpu;
	int fd;
	struct kvmi_maps m;
	int notify;
	int kick;
	uint8_t *hva;
	struct kvmi_runner r;
	uint32_t seq;
};

KVMI_TRANSPORT_VARIANTS(ctx);

FIXTURE_SETUP(ctx)
{
	KVMI_REQUIRE();
	kvmi_use_transport(variant->transport);
	self->vm = vm_create_with_one_vcpu(&self->vcpu, guest_code);
	vm_userspace_mem_region_add(self->vm, VM_MEM_SRC_ANONYMOUS, TEST_GPA,
				    TEST_SLOT, TEST_PAGES, 0);
	virt_map(self->vm, TEST_GVA, TEST_GPA, TEST_PAGES);
	self->hva = addr_gpa2hva(self->vm, TEST_GPA);
	*(uint64_t *)self->hva = OLD_DATA;
	self->fd = kvmi_open(self->vm);
	kvmi_map_all(self->fd, &self->m);
	self->notify = eventfd(0, EFD_CLOEXEC);
	self->kick = eventfd(0, EFD_CLOEXEC);
	ASSERT_LE(0, self->notify);
	ASSERT_LE(0, self->kick);
	kvmi_set_doorbells(self->fd, KVMI_ALL_VCPUS,
			   KVMI_DOORBELL_NOTIFY | KVMI_DOORBELL_KICK,
			   self->notify, self->kick);
	kvmi_control_events(self->fd, 0, KVMI_EVENT_PAGE_FAULT, 1);
	self->r.joined = true;
}

FIXTURE_TEARDOWN(ctx)
{
	kvmi_unmap_all(&self->m);
	close(self->fd);
	if (!self->r.joined)
		kvmi_runner_join(&self->r);
	close(self->notify);
	close(self->kick);
	kvm_vm_free(self->vm);
}

static void set_access(struct __test_metadata *_metadata, int fd,
		       uint64_t gpa, uint8_t access)
{
	struct kvmi_page_access_entry e = { .gpa = gpa, .access = access };
	struct kvmi_page_access pa = {
		.entries = (uintptr_t)&e,
		.count = 1,
	};

	ASSERT_EQ(0, ioctl(fd, KVMI_IOCTL_SET_PAGE_ACCESS, &pa));
	ASSERT_EQ(1, pa.done);
}

/* The vCPU ran to a GUEST_SYNC: return its value. */
static uint64_t joined_sync(struct __test_metadata *_metadata,
			    FIXTURE_DATA(ctx) *self)
{
	kvmi_runner_join(&self->r);
	EXPECT_EQ(0, self->r.ret);
	EXPECT_EQ(UCALL_SYNC, self->r.ucall);
	return self->r.args[1];
}

/* Wait for the next PAGE_FAULT event, check where and what. */
static struct kvmi_event *next_event(struct __test_metadata *_metadata,
				     FIXTURE_DATA(ctx) *self, uint64_t rip,
				     uint8_t access)
{
	struct kvmi_event *ev = kvmi_event_slot(&self->m, 0);

	self->seq = kvmi_wait_event(&self->m, 0, self->notify, self->seq);
	EXPECT_EQ(KVMI_EVENT_PAGE_FAULT, ev->id);
	EXPECT_EQ(access, ev->data.page_fault.access);
	EXPECT_EQ(rip, ev->regs.rip);
	return ev;
}

static void reply(FIXTURE_DATA(ctx) *self, uint8_t action)
{
	kvmi_send_reply(&self->m, 0, self->seq, KVMI_EVENT_PAGE_FAULT, action,
			0, NULL, self->kick);
}

/*
 * Reply SET_CTX with @size bytes of @data (at most KVMI_PF_CTX_MAX are
 * copied), the padding of @pf, if not NULL.
 */
static void reply_ctx(FIXTURE_DATA(ctx) *self, uint8_t type,
		      const void *data, uint16_t size,
		      struct kvmi_reply_page_fault *pf, uint32_t flags,
		      const struct kvmi_x86_regs *regs)
{
	struct kvmi_reply *rp = kvmi_reply_buf(&self->m, 0);
	struct kvmi_reply_page_fault c = {};

	if (!pf)
		pf = &c;
	pf->ctx_type = type;
	pf->ctx_size = size;
	memcpy(pf->ctx_data, data,
	       size > KVMI_PF_CTX_MAX ? KVMI_PF_CTX_MAX : size);
	memset(&rp->data, 0, sizeof(rp->data));
	rp->data.page_fault = *pf;
	kvmi_send_reply(&self->m, 0, self->seq, KVMI_EVENT_PAGE_FAULT,
			KVMI_ACTION_SET_CTX, flags, regs, self->kick);
}

/* Run past the first sync (no page restricted), restrict the code page. */
static void to_code(struct __test_metadata *_metadata, FIXTURE_DATA(ctx) *self,
		    const uint8_t *code, size_t size)
{
	memcpy(self->hva + PAGE_SIZE, code, size);
	kvmi_runner_start(&self->r, self->vcpu);
	ASSERT_EQ(OLD_DATA + ADDEND, joined_sync(_metadata, self));
	set_access(_metadata, self->fd, CODE_GPA, R_W);
	kvmi_runner_start(&self->r, self->vcpu);
}

TEST_F(ctx, feature_announced)
{
	struct kvmi_version ver;

	kvmi_get_version(self->fd, &ver);
	ASSERT_TRUE(ver.features & KVMI_FEATURE_PF_CTX);
}

/* INSN: the tool's instruction runs instead of the guest's, once. */
TEST_F(ctx, insn_replaces_the_instruction)
{
	struct kvmi_event *ev;

	to_code(_metadata, self, code_mov, sizeof(code_mov));
	next_event(_metadata, self, CODE_GVA, KVMI_PAGE_ACCESS_X);
	reply_ctx(self, KVMI_PF_CTX_INSN, insn_mov77, sizeof(insn_mov77),
		  NULL, 0, NULL);
	/* The RET is the guest's own. */
	ev = next_event(_metadata, self, CODE_GVA + 5, KVMI_PAGE_ACCESS_X);
	ASSERT_EQ(0x77, ev->regs.rax & 0xffffffff);
	reply(self, KVMI_ACTION_ALLOW);
	ASSERT_EQ(0x77, joined_sync(_metadata, self));
	ASSERT_EQ(0, memcmp(self->hva + PAGE_SIZE, code_mov,
			    sizeof(code_mov)));
	ASSERT_EQ(KVMI_DONE_REPLY, kvmi_vcpu_state(&self->m, 0)->done_reason);
	ASSERT_EQ(0, kvmi_counters(&self->m, 0)->bad_replies);

	/* The next call runs the guest's code again. */
	kvmi_runner_start(&self->r, self->vcpu);
	next_event(_metadata, self, CODE_GVA, KVMI_PAGE_ACCESS_X);
	set_access(_metadata, self->fd, CODE_GPA, R_W | KVMI_PAGE_ACCESS_X);
	reply(self, KVMI_ACTION_RETRY);
	ASSERT_EQ(0x42, joined_sync(_metadata, self));
}

/* RIP moves by the length of the tool's instruction, not the guest's. */
TEST_F(ctx, insn_length_is_the_tool_s)
{
	static const uint8_t mov_al[] = { 0xb0, 0x55 };	/* mov $0x55, %al */
	struct kvmi_x86_regs regs;
	struct kvmi_event *ev;

	to_code(_metadata, self, code_mov, sizeof(code_mov));
	next_event(_metadata, self, CODE_GVA, KVMI_PAGE_ACCESS_X);
	reply_ctx(self, KVMI_PF_CTX_INSN, mov_al, sizeof(mov_al), NULL, 0,
		  NULL);
	ev = next_event(_metadata, self, CODE_GVA + 2, KVMI_PAGE_ACCESS_X);
	ASSERT_EQ(0x55, ev->regs.rax & 0xff);
	/* Back on the guest's instruction boundary: its RET. */
	regs = ev->regs;
	regs.groups = KVMI_REGS_RIP;
	regs.rip = CODE_GVA + 5;
	kvmi_send_reply(&self->m, 0, self->seq, KVMI_EVENT_PAGE_FAULT,
			KVMI_ACTION_NOEMU, KVMI_REPLY_SET_REGS, &regs,
			self->kick);
	next_event(_metadata, self, CODE_GVA + 5, KVMI_PAGE_ACCESS_X);
	reply(self, KVMI_ACTION_ALLOW);
	ASSERT_EQ(0x55, joined_sync(_metadata, self) & 0xff);
}

/* An instruction longer than the context: the rest is fetched. */
TEST_F(ctx, insn_rest_fetched_from_memory)
{
	static const uint8_t head[] = { 0xb8, 0x99, 0x00 };
	struct kvmi_event *ev;

	to_code(_metadata, self, code_mov, sizeof(code_mov));
	next_event(_metadata, self, CODE_GVA, KVMI_PAGE_ACCESS_X);
	reply_ctx(self, KVMI_PF_CTX_INSN, head, sizeof(head), NULL, 0, NULL);
	ev = next_event(_metadata, self, CODE_GVA + 5, KVMI_PAGE_ACCESS_X);
	ASSERT_EQ(0x99, ev->regs.rax & 0xffffffff);
	reply(self, KVMI_ACTION_ALLOW);
	ASSERT_EQ(0x99, joined_sync(_metadata, self));
}

/* READ: a load from the page the fetch faulted on gets the tool's data. */
TEST_F(ctx, read_load_gets_the_tool_s_data)
{
	uint64_t tool = TOOL_DATA;
	struct kvmi_event *ev;

	*(uint64_t *)(self->hva + PAGE_SIZE + CODE_DATA) = MEM_DATA;
	to_code(_metadata, self, code_load, sizeof(code_load));
	next_event(_metadata, self, CODE_GVA, KVMI_PAGE_ACCESS_X);
	reply_ctx(self, KVMI_PF_CTX_READ, &tool, sizeof(tool), NULL, 0, NULL);
	ev = next_event(_metadata, self, CODE_GVA + 7, KVMI_PAGE_ACCESS_X);
	ASSERT_EQ(TOOL_DATA, ev->regs.rax);
	reply(self, KVMI_ACTION_ALLOW);
	ASSERT_EQ(TOOL_DATA, joined_sync(_metadata, self));
	ASSERT_EQ(MEM_DATA,
		  *(uint64_t *)(self->hva + PAGE_SIZE + CODE_DATA));
}

/* READ shorter than the read: the other bytes come from memory. */
TEST_F(ctx, read_rest_from_memory)
{
	uint32_t tool = 0xaabbccdd;

	*(uint64_t *)(self->hva + PAGE_SIZE + CODE_DATA) = MEM_DATA;
	to_code(_metadata, self, code_load, sizeof(code_load));
	next_event(_metadata, self, CODE_GVA, KVMI_PAGE_ACCESS_X);
	reply_ctx(self, KVMI_PF_CTX_READ, &tool, sizeof(tool), NULL, 0, NULL);
	next_event(_metadata, self, CODE_GVA + 7, KVMI_PAGE_ACCESS_X);
	reply(self, KVMI_ACTION_ALLOW);
	ASSERT_EQ((MEM_DATA & ~0xffffffffULL) | tool,
		  joined_sync(_metadata, self));
}

/* READ on a read-modify-write: the write is the tool's data + ADDEND. */
TEST_F(ctx, read_of_a_read_modify_write)
{
	uint64_t tool = TOOL_DATA;

	set_access(_metadata, self->fd, DATA_GPA, R_X);
	kvmi_runner_start(&self->r, self->vcpu);
	next_event(_metadata, self, (uint64_t)rmw_insn, KVMI_PAGE_ACCESS_W);
	ASSERT_EQ(OLD_DATA, *(uint64_t *)self->hva);
	reply_ctx(self, KVMI_PF_CTX_READ, &tool, sizeof(tool), NULL, 0, NULL);
	ASSERT_EQ(TOOL_DATA + ADDEND, joined_sync(_metadata, self));
	ASSERT_EQ(TOOL_DATA + ADDEND, *(uint64_t *)self->hva);
	ASSERT_EQ(KVMI_DONE_REPLY, kvmi_vcpu_state(&self->m, 0)->done_reason);
}

/* lock addq $ADDEND, TEST_GVA; mov TEST_GVA, %rax; ret */
static const uint8_t code_lock_add[] = {
	0xf0, 0x48, 0x83, 0x04, 0x25, 0x00, 0x00, 0x00, 0x10, ADDEND,
	0x48, 0x8b, 0x04, 0x25, 0x00, 0x00, 0x00, 0x10,
	0xc3,
};

/*
 * A LOCK read-modify-write writes with a compare-and-exchange against
 * what it read: the tool's bytes differ from memory, so nothing is
 * written and the guest executes the instruction again (a new event).
 */
TEST_F(ctx, read_of_a_locked_rmw_that_differs_is_retried)
{
	uint64_t tool = TOOL_DATA;

	memcpy(self->hva + PAGE_SIZE, code_lock_add, sizeof(code_lock_add));
	kvmi_runner_start(&self->r, self->vcpu);
	ASSERT_EQ(OLD_DATA + ADDEND, joined_sync(_metadata, self));
	set_access(_metadata, self->fd, DATA_GPA, R_X);
	kvmi_runner_start(&self->r, self->vcpu);
	next_event(_metadata, self, CODE_GVA, KVMI_PAGE_ACCESS_W);
	reply_ctx(self, KVMI_PF_CTX_READ, &tool, sizeof(tool), NULL, 0, NULL);
	next_event(_metadata, self, CODE_GVA, KVMI_PAGE_ACCESS_W);
	ASSERT_EQ(OLD_DATA + ADDEND, *(uint64_t *)self->hva);
	/* The same bytes as memory: the exchange succeeds. */
	tool = OLD_DATA + ADDEND;
	reply_ctx(self, KVMI_PF_CTX_READ, &tool, sizeof(tool), NULL, 0, NULL);
	ASSERT_EQ(OLD_DATA + 2 * ADDEND, joined_sync(_metadata, self));
	ASSERT_EQ(OLD_DATA + 2 * ADDEND, *(uint64_t *)self->hva);
}

/* With KVMI_REPLY_SET_REGS (not RIP): registers first, then emulation. */
TEST_F(ctx, with_registers)
{
	struct kvmi_x86_regs regs;
	uint64_t *gpr[] = { &regs.rax, &regs.rbx, &regs.rcx, &regs.rdx,
			    &regs.rsi, &regs.rdi, &regs.r8, &regs.r9,
			    &regs.r10, &regs.r11, &regs.r12, &regs.r13,
			    &regs.r14, &regs.r15 };
	struct kvmi_event *ev;
	uint64_t tool = 1;
	unsigned int i;

	set_access(_metadata, self->fd, DATA_GPA, R_X);
	kvmi_runner_start(&self->r, self->vcpu);
	ev = next_event(_metadata, self, (uint64_t)rmw_insn,
			KVMI_PAGE_ACCESS_W);
	regs = ev->regs;
	regs.groups = KVMI_REGS_GPRS;
	/* The addend, in whichever register the compiler chose. */
	for (i = 0; i < ARRAY_SIZE(gpr); i++)
		if (*gpr[i] == ADDEND)
			*gpr[i] = 2;
	reply_ctx(self, KVMI_PF_CTX_READ, &tool, sizeof(tool), NULL,
		  KVMI_REPLY_SET_REGS, &regs);
	ASSERT_EQ(3, joined_sync(_metadata, self));
}

/* A malformed context: the reply is invalid, CONTINUE applies. */
TEST_F(ctx, malformed_is_invalid)
{
	uint8_t buf[KVMI_PF_CTX_MAX] = {};
	struct kvmi_reply_page_fault pf;
	struct kvmi_x86_regs regs;
	struct kvmi_event *ev;
	int i;

	memcpy(buf, insn_mov77, sizeof(insn_mov77));

	to_code(_metadata, self, code_mov, sizeof(code_mov));
	for (i = 0; i < 6; i++) {
		uint8_t type = KVMI_PF_CTX_INSN;
		uint16_t size = sizeof(insn_mov77);
		uint32_t flags = 0;

		ev = next_event(_metadata, self, CODE_GVA, KVMI_PAGE_ACCESS_X);
		memset(&pf, 0, sizeof(pf));
		switch (i) {
		case 0:
			type = 0;
			break;
		case 1:
			type = KVMI_PF_CTX_INSN + 1;
			break;
		case 2:
			size = 0;
			break;
		case 3:
			size = KVMI_PF_CTX_MAX + 1;
			break;
		case 4:
			pf.padding[4] = 1;
			break;
		case 5:
			/* The instruction is emulated where it is. */
			regs = ev->regs;
			regs.groups = KVMI_REGS_RIP;
			regs.rip = CODE_GVA + 5;
			flags = KVMI_REPLY_SET_REGS;
			break;
		}
		reply_ctx(self, type, buf, size, &pf, flags,
			  flags ? &regs : NULL);
		/* The guest's own instruction ran: EAX is 0x42, not 0x77. */
		ev = next_event(_metadata, self, CODE_GVA + 5,
				KVMI_PAGE_ACCESS_X);
		ASSERT_EQ(0x42, ev->regs.rax & 0xffffffff);
		ASSERT_EQ(i + 1, kvmi_counters(&self->m, 0)->bad_replies);
		reply(self, KVMI_ACTION_ALLOW);
		ASSERT_EQ(0x42, joined_sync(_metadata, self));
		kvmi_runner_start(&self->r, self->vcpu);
	}
	/* A good one after all that. */
	next_event(_metadata, self, CODE_GVA, KVMI_PAGE_ACCESS_X);
	reply_ctx(self, KVMI_PF_CTX_INSN, insn_mov77, sizeof(insn_mov77),
		  NULL, 0, NULL);
	next_event(_metadata, self, CODE_GVA + 5, KVMI_PAGE_ACCESS_X);
	reply(self, KVMI_ACTION_ALLOW);
	ASSERT_EQ(0x77, joined_sync(_metadata, self));
	ASSERT_EQ(6, kvmi_counters(&self->m, 0)->bad_replies);
}

TEST_HARNESS_MAIN
