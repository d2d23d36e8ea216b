// SPDX-License-Identifier: GPL-2.0-only
/*
 * kvmi-ring: vCPU commands served by a vCPU waiting in an event, through
 * its own command slot, and registers written by commands and replies
 * (Documentation/virt/kvm/kvmi.rst, sections 8.9, 8.10, 10.13 and 11).
 *
 * A vCPU thread runs a guest that issues the KVMi hypercall and then
 * reports what it sees (registers, MSRs); the main thread plays the tool:
 * while the vCPU waits in the HYPERCALL event, it runs commands in the
 * vCPU's command slot, then replies.
 */
#include <pthread.h>
#include <sys/eventfd.h>

#include "kselftest_harness.h"
#include "kvmi_util.h"
#include "processor.h"
#include "ucall_common.h"

#define ARG0		0x0123456789abcdefULL
#define NEW_RBX		0x7777666655554444ULL
#define NEW_LSTAR	0xffffffff81234560ULL
#define NEW_KGS_BASE	0xffff888012345000ULL
#define NEW_STAR	0x0023001000000000ULL
#define NEW_SYSENTER_CS	0x10ULL
#define NEW_CR2		0x00000000deadb000ULL
#define NEW_FS_BASE	0x0000000012345000ULL
#define NONCANONICAL	0x8000000000000000ULL /* for 48 and 57 bits */

/* The KVMi hypercall with RBX = a0; the RBX seen afterwards is kept. */
uint64_t kvmi_hc(uint64_t nr, uint64_t a0);
uint64_t kvmi_hc_rbx;

asm(".pushsection .text\n"
	".global kvmi_hc\n"
	"kvmi_hc:\n"
	"	push %rbx\n"
	"	mov %rdi, %rax\n"
	"	mov %rsi, %rbx\n"
	"	vmmcall\n"
	"	mov %rbx, kvmi_hc_rbx(%rip)\n"
	"	pop %rbx\n"
	"	ret\n"
	".popsection\n");

static inline uint64_t guest_get_cr2(void)
{
	uint64_t cr2;

	asm volatile("mov %%cr2, %0" : "=r"(cr2));
	return cr2;
}

/* One hypercall, then four reports of what the guest sees. */
static void guest_code(void)
{
	uint64_t ret = kvmi_hc(KVM_HC_KVMI, ARG0);

	GUEST_SYNC2(ret, kvmi_hc_rbx);
	GUEST_SYNC2(rdmsr(MSR_LSTAR), rdmsr(MSR_KERNEL_GS_BASE));
	GUEST_SYNC2(rdmsr(MSR_STAR), rdmsr(MSR_IA32_SYSENTER_CS));
	GUEST_SYNC2(guest_get_cr2(), rdmsr(MSR_FS_BASE));
	GUEST_DONE();
}

FIXTURE(cmd) {
	struct kvm_vm *vm;
	struct kvm_vcpu *vcpu;
	int fd;
	struct kvmi_maps m;
	int notify;
	int kick;
	struct kvmi_runner r;
	uint32_t seq;		/* the HYPERCALL event waiting */
};

KVMI_TRANSPORT_VARIANTS(cmd);

/*
 * One vCPU, introspection open and mapped, VM-wide doorbells, and the
 * vCPU waiting in its HYPERCALL event (self->seq).
 */
FIXTURE_SETUP(cmd)
{
	KVMI_REQUIRE();
	kvmi_use_transport(variant->transport);
	self->vm = vm_create_with_one_vcpu(&self->vcpu, guest_code);
	self->fd = kvmi_open(self->vm);
	kvmi_map_all(self->fd, &self->m);
	self->notify = eventfd(0, EFD_CLOEXEC);
	self->kick = eventfd(0, EFD_CLOEXEC);
	ASSERT_LE(0, self->notify);
	ASSERT_LE(0, self->kick);
	kvmi_set_doorbells(self->fd, KVMI_ALL_VCPUS,
			   KVMI_DOORBELL_NOTIFY | KVMI_DOORBELL_KICK,
			   self->notify, self->kick);
	kvmi_control_events(self->fd, 0, KVMI_EVENT_HYPERCALL, 1);
	kvmi_runner_start(&self->r, self->vcpu);
	self->seq = kvmi_wait_event(&self->m, 0, self->notify, 0);
}

FIXTURE_TEARDOWN(cmd)
{
	kvmi_unmap_all(&self->m);
	close(self->fd);	/* releases the vCPU if it still waits */
	if (!self->r.joined)
		kvmi_runner_join(&self->r);
	close(self->notify);
	close(self->kick);
	kvm_vm_free(self->vm);
}

/* Reply CONTINUE (with @regs if not NULL) and wait for the first sync. */
static void finish(struct __test_metadata *_metadata, FIXTURE_DATA(cmd) *self,
		   const struct kvmi_x86_regs *regs)
{
	kvmi_send_reply(&self->m, 0, self->seq, KVMI_EVENT_HYPERCALL,
			KVMI_ACTION_CONTINUE, regs ? KVMI_REPLY_SET_REGS : 0,
			regs, self->kick);
	kvmi_runner_join(&self->r);
	ASSERT_EQ(0, self->r.ret);
	ASSERT_EQ(UCALL_SYNC, self->r.ucall);
}

/* Run the guest to its next report. */
static void next_sync(struct __test_metadata *_metadata, struct kvm_vcpu *vcpu,
		      uint64_t *a0, uint64_t *a1)
{
	struct ucall uc;

	vcpu_run(vcpu);
	ASSERT_EQ(UCALL_SYNC, get_ucall(vcpu, &uc));
	*a0 = uc.args[0];
	*a1 = uc.args[1];
}

static void get_registers(struct __test_metadata *_metadata,
			  FIXTURE_DATA(cmd) *self,
			  struct kvmi_cmd_get_registers_result *out)
{
	uint32_t s = kvmi_send_cmd(&self->m, 0, KVMI_CMD_GET_REGISTERS, NULL,
				   self->kick);
	struct kvmi_cmd_result *res = kvmi_wait_cmd_result(&self->m, 0, s);

	ASSERT_EQ(0, res->error);
	ASSERT_EQ(KVMI_CMD_GET_REGISTERS, res->id);
	*out = res->result.get_registers;
}

static int set_registers(FIXTURE_DATA(cmd) *self,
			 const struct kvmi_x86_regs *regs)
{
	union kvmi_cmd_args args = { .set_registers = *regs };

	return kvmi_run_cmd(&self->m, 0, KVMI_CMD_SET_REGISTERS, &args,
			    self->kick);
}

TEST_F(cmd, get_registers_while_waiting)
{
	struct kvmi_vcpu_counters *cnt = kvmi_counters(&self->m, 0);
	struct kvmi_vcpu_state *vs = kvmi_vcpu_state(&self->m, 0);
	struct kvmi_event *ev = kvmi_event_slot(&self->m, 0);
	struct kvmi_cmd_get_registers_result gr;

	ASSERT_TRUE(vs->flags & KVMI_VCPU_WAITING);
	get_registers(_metadata, self, &gr);
	ASSERT_EQ(KVMI_X86_MODE_PROT64, gr.mode);
	ASSERT_EQ(0, gr.cpl);
	ASSERT_EQ(KVMI_REGS_ALL, gr.regs.groups);
	ASSERT_EQ(0, memcmp(&gr.regs, &ev->regs, sizeof(gr.regs)));
	ASSERT_EQ(ARG0, gr.regs.rbx);
	ASSERT_EQ(1, cnt->commands);
	ASSERT_EQ(0, cnt->command_errors);
	/* Still waiting in the event, which the command didn't finish. */
	ASSERT_NE(self->seq, vs->done_seq);
	finish(_metadata, self, NULL);
	ASSERT_EQ(0, self->r.args[0]);
	ASSERT_EQ(ARG0, self->r.args[1]);
}

TEST_F(cmd, set_gprs_seen_by_guest)
{
	struct kvmi_cmd_get_registers_result gr;

	get_registers(_metadata, self, &gr);
	gr.regs.groups = KVMI_REGS_GPRS;
	gr.regs.rbx = NEW_RBX;
	ASSERT_EQ(0, set_registers(self, &gr.regs));
	get_registers(_metadata, self, &gr);
	ASSERT_EQ(NEW_RBX, gr.regs.rbx);
	finish(_metadata, self, NULL);
	ASSERT_EQ(0, self->r.args[0]);		/* CONTINUE: RAX = 0 */
	ASSERT_EQ(NEW_RBX, self->r.args[1]);
}

TEST_F(cmd, set_msrs_crs_segments_seen_by_guest)
{
	struct kvmi_cmd_get_registers_result gr;
	uint64_t a0, a1;

	get_registers(_metadata, self, &gr);
	gr.regs.groups = KVMI_REGS_MSRS | KVMI_REGS_CRS | KVMI_REGS_SEGMENTS;
	gr.regs.lstar = NEW_LSTAR;
	gr.regs.kernel_gs_base = NEW_KGS_BASE;
	gr.regs.star = NEW_STAR;
	gr.regs.sysenter_cs = NEW_SYSENTER_CS;
	gr.regs.cr2 = NEW_CR2;
	gr.regs.fs.base = NEW_FS_BASE;
	ASSERT_EQ(0, set_registers(self, &gr.regs));

	get_registers(_metadata, self, &gr);
	ASSERT_EQ(NEW_LSTAR, gr.regs.lstar);
	ASSERT_EQ(NEW_CR2, gr.regs.cr2);
	ASSERT_EQ(NEW_FS_BASE, gr.regs.fs.base);

	finish(_metadata, self, NULL);
	ASSERT_EQ(ARG0, self->r.args[1]);
	next_sync(_metadata, self->vcpu, &a0, &a1);
	ASSERT_EQ(NEW_LSTAR, a0);
	ASSERT_EQ(NEW_KGS_BASE, a1);
	next_sync(_metadata, self->vcpu, &a0, &a1);
	ASSERT_EQ(NEW_STAR, a0);
	ASSERT_EQ(NEW_SYSENTER_CS, a1);
	next_sync(_metadata, self->vcpu, &a0, &a1);
	ASSERT_EQ(NEW_CR2, a0);
	ASSERT_EQ(NEW_FS_BASE, a1);
}

/* Each bad SET_REGISTERS gets -EINVAL and leaves the registers alone. */
TEST_F(cmd, bad_set_registers_rejected)
{
	struct kvmi_vcpu_counters *cnt = kvmi_counters(&self->m, 0);
	struct kvmi_cmd_get_registers_result before, after;
	struct kvmi_x86_regs r;
	uint64_t a0, a1;

	get_registers(_metadata, self, &before);

	r = before.regs;
	r.groups = KVMI_REGS_ALL + 1;			/* unknown group */
	ASSERT_EQ(-EINVAL, set_registers(self, &r));

	r = before.regs;
	r.groups = KVMI_REGS_GPRS;
	r.padding = 1;
	ASSERT_EQ(-EINVAL, set_registers(self, &r));

	r = before.regs;
	r.groups = KVMI_REGS_SEGMENTS | KVMI_REGS_GPRS;
	r.rbx = NEW_RBX;
	r.ss.padding = 1;
	ASSERT_EQ(-EINVAL, set_registers(self, &r));

	r = before.regs;
	r.groups = KVMI_REGS_DTABLES;
	r.idt.padding[1] = 1;
	ASSERT_EQ(-EINVAL, set_registers(self, &r));

	r = before.regs;
	r.groups = KVMI_REGS_MSRS | KVMI_REGS_GPRS;
	r.star = NEW_STAR;
	r.rbx = NEW_RBX;
	r.lstar = NONCANONICAL;
	ASSERT_EQ(-EINVAL, set_registers(self, &r));

	r = before.regs;
	r.groups = KVMI_REGS_RIP;
	r.rip = NONCANONICAL;
	ASSERT_EQ(-EINVAL, set_registers(self, &r));

	r = before.regs;
	r.groups = KVMI_REGS_DRS;
	r.dr7 = 1ULL << 32;
	ASSERT_EQ(-EINVAL, set_registers(self, &r));

	/* CR0.PG without CR0.PE: refused by KVM_SET_SREGS2's checks. */
	r = before.regs;
	r.groups = KVMI_REGS_CRS | KVMI_REGS_MSRS;
	r.lstar = NEW_LSTAR;
	r.cr2 = NEW_CR2;
	r.cr0 &= ~1ULL;
	ASSERT_EQ(-EINVAL, set_registers(self, &r));

	/* EFER.LMA cleared while CR0.PG and EFER.LME stay set. */
	r = before.regs;
	r.groups = KVMI_REGS_CRS;
	r.efer &= ~(1ULL << 10);
	ASSERT_EQ(-EINVAL, set_registers(self, &r));

	get_registers(_metadata, self, &after);
	ASSERT_EQ(0, memcmp(&before, &after, sizeof(before)));
	ASSERT_EQ(9, cnt->command_errors);

	finish(_metadata, self, NULL);
	ASSERT_EQ(ARG0, self->r.args[1]);
	next_sync(_metadata, self->vcpu, &a0, &a1);
	ASSERT_EQ(before.regs.lstar, a0);
	next_sync(_metadata, self->vcpu, &a0, &a1);
	ASSERT_EQ(before.regs.star, a0);
	next_sync(_metadata, self->vcpu, &a0, &a1);
	ASSERT_EQ(before.regs.cr2, a0);
}

/* Bad command records get their error; nothing else happens. */
TEST_F(cmd, bad_commands_rejected)
{
	struct kvmi_cmd_result *res = kvmi_cmd_result_slot(&self->m, 0);
	struct kvmi_cmd *c = kvmi_cmd_slot(&self->m, 0);
	struct kvmi_vcpu_counters *cnt = kvmi_counters(&self->m, 0);

	KVMI_RING_ONLY("writes the command slot itself");
	ASSERT_EQ(-EINVAL, kvmi_run_cmd(&self->m, 0, KVMI_CMD_GET_GUEST_INFO,
					NULL, self->kick));
	ASSERT_EQ(KVMI_CMD_GET_GUEST_INFO, res->id);
	ASSERT_EQ(-EINVAL, kvmi_run_cmd(&self->m, 0, 0, NULL, self->kick));
	/* A vCPU command id that no command has (yet). */
	ASSERT_EQ(-EOPNOTSUPP, kvmi_run_cmd(&self->m, 0, 0x60, NULL,
					    self->kick));
	ASSERT_EQ(-EOPNOTSUPP, kvmi_run_cmd(&self->m, 0, 0x7f, NULL,
					    self->kick));
	ASSERT_EQ(-EOPNOTSUPP, kvmi_run_cmd(&self->m, 0, 0xffff, NULL,
					    self->kick));

	/* flags, then padding: kvmi_send_cmd() zeroes them, so do it here. */
	c->id = KVMI_CMD_GET_REGISTERS;
	c->flags = 1;
	__atomic_store_n(&c->seq, c->seq + 1, __ATOMIC_RELEASE);
	kvmi_kick_if_needed(&self->m, 0, self->kick);
	ASSERT_EQ(-EINVAL, kvmi_wait_cmd_result(&self->m, 0, c->seq)->error);
	c->flags = 0;
	c->padding = 1;
	__atomic_store_n(&c->seq, c->seq + 1, __ATOMIC_RELEASE);
	kvmi_kick_if_needed(&self->m, 0, self->kick);
	ASSERT_EQ(-EINVAL, kvmi_wait_cmd_result(&self->m, 0, c->seq)->error);
	ASSERT_EQ(0, res->result.raw[0]);

	ASSERT_EQ(7, cnt->commands);
	ASSERT_EQ(7, cnt->command_errors);
	finish(_metadata, self, NULL);
	ASSERT_EQ(ARG0, self->r.args[1]);
}

static int pause_ioctl(int fd, unsigned long req)
{
	struct kvmi_pause_vcpu pv = { .vcpu = 0 };

	return ioctl(fd, req, &pv);
}

/*
 * A command runs only in the event it names (struct kvmi_cmd.event):
 * one for another event is refused with -ESRCH and changes nothing, in
 * the event it names too late, or in the next event of the vCPU.
 */
TEST_F(cmd, command_for_another_event_refused)
{
	struct kvmi_vcpu_counters *cnt = kvmi_counters(&self->m, 0);
	struct kvmi_cmd_get_registers_result gr;
	union kvmi_cmd_args args;
	uint32_t c, p1, p2;

	get_registers(_metadata, self, &gr);
	args.set_registers = gr.regs;
	args.set_registers.groups = KVMI_REGS_GPRS;
	args.set_registers.rbx = NEW_RBX;
	c = __kvmi_send_cmd(&self->m, 0, KVMI_CMD_SET_REGISTERS, &args,
			    self->seq + 1, self->kick);
	ASSERT_EQ(-ESRCH, kvmi_wait_cmd_result(&self->m, 0, c)->error);
	ASSERT_EQ(KVMI_CMD_SET_REGISTERS,
		  kvmi_wait_cmd_result(&self->m, 0, c)->id);
	c = __kvmi_send_cmd(&self->m, 0, KVMI_CMD_SET_REGISTERS, &args,
			    self->seq - 1, self->kick);
	ASSERT_EQ(-ESRCH, kvmi_wait_cmd_result(&self->m, 0, c)->error);
	c = __kvmi_send_cmd(&self->m, 0, KVMI_CMD_GET_REGISTERS, NULL, 0,
			    self->kick);
	ASSERT_EQ(-ESRCH, kvmi_wait_cmd_result(&self->m, 0, c)->error);
	/* The socket's receive thread refuses them: the vCPU never sees them. */
	ASSERT_EQ(self->m.sk ? 1 : 4, cnt->commands);
	ASSERT_EQ(self->m.sk ? 0 : 3, cnt->command_errors);
	finish(_metadata, self, NULL);
	ASSERT_EQ(ARG0, self->r.args[1]);	/* RBX not written */

	/* A PAUSE event, ended by UNPAUSE; then a command for it. */
	ASSERT_EQ(0, pause_ioctl(self->fd, KVMI_IOCTL_PAUSE_VCPU));
	kvmi_runner_start(&self->r, self->vcpu);
	p1 = kvmi_wait_event(&self->m, 0, self->notify, self->seq);
	ASSERT_EQ(KVMI_EVENT_PAUSE, kvmi_event_slot(&self->m, 0)->id);
	ASSERT_EQ(0, pause_ioctl(self->fd, KVMI_IOCTL_UNPAUSE));
	kvmi_runner_join(&self->r);
	ASSERT_EQ(0, self->r.ret);
	ASSERT_EQ(UCALL_SYNC, self->r.ucall);
	kvmi_wait_done(&self->m, 0, p1);
	c = __kvmi_send_cmd(&self->m, 0, KVMI_CMD_SET_REGISTERS, &args, p1,
			    self->kick);
	if (self->m.sk)		/* the receive thread answers at once */
		ASSERT_EQ(-ESRCH, kvmi_wait_cmd_result(&self->m, 0, c)->error);

	/*
	 * The next PAUSE event: the ring's vCPU finds the command in its
	 * slot and refuses it; a command for this event runs.
	 */
	ASSERT_EQ(0, pause_ioctl(self->fd, KVMI_IOCTL_PAUSE_VCPU));
	kvmi_runner_start(&self->r, self->vcpu);
	p2 = kvmi_wait_event(&self->m, 0, self->notify, p1);
	ASSERT_NE(p1, p2);
	ASSERT_EQ(-ESRCH, kvmi_wait_cmd_result(&self->m, 0, c)->error);
	get_registers(_metadata, self, &gr);
	ASSERT_NE(NEW_RBX, gr.regs.rbx);
	ASSERT_EQ(0, pause_ioctl(self->fd, KVMI_IOCTL_UNPAUSE));
	kvmi_runner_join(&self->r);
	ASSERT_EQ(0, self->r.ret);
	ASSERT_EQ(UCALL_SYNC, self->r.ucall);
	ASSERT_EQ(0, cnt->bad_replies);
}

/* A command published just before the reply is served before it. */
TEST_F(cmd, command_with_reply_served_first)
{
	struct kvmi_cmd_get_registers_result gr;
	union kvmi_cmd_args args;

	get_registers(_metadata, self, &gr);
	args.set_registers = gr.regs;
	args.set_registers.groups = KVMI_REGS_GPRS;
	args.set_registers.rbx = NEW_RBX;
	kvmi_send_cmd(&self->m, 0, KVMI_CMD_SET_REGISTERS, &args, -1);
	finish(_metadata, self, NULL);
	ASSERT_EQ(0, kvmi_cmd_result_slot(&self->m, 0)->error);
	ASSERT_EQ(NEW_RBX, self->r.args[1]);
}

/* A reply may write every group now; the guest sees them. */
TEST_F(cmd, reply_sets_msrs)
{
	struct kvmi_cmd_get_registers_result gr;
	uint64_t a0, a1;

	get_registers(_metadata, self, &gr);
	gr.regs.groups = KVMI_REGS_MSRS;
	gr.regs.lstar = NEW_LSTAR;
	gr.regs.kernel_gs_base = NEW_KGS_BASE;
	finish(_metadata, self, &gr.regs);
	ASSERT_EQ(KVMI_DONE_REPLY, kvmi_vcpu_state(&self->m, 0)->done_reason);
	next_sync(_metadata, self->vcpu, &a0, &a1);
	ASSERT_EQ(NEW_LSTAR, a0);
	ASSERT_EQ(NEW_KGS_BASE, a1);
}

/* A reply whose registers KVM refuses is invalid: nothing is written. */
TEST_F(cmd, reply_with_bad_crs_is_invalid)
{
	struct kvmi_cmd_get_registers_result gr;
	uint64_t lstar, a0, a1;

	get_registers(_metadata, self, &gr);
	lstar = gr.regs.lstar;
	gr.regs.groups = KVMI_REGS_MSRS | KVMI_REGS_CRS | KVMI_REGS_GPRS;
	gr.regs.lstar = NEW_LSTAR;
	gr.regs.rbx = NEW_RBX;
	gr.regs.cr0 &= ~1ULL;
	finish(_metadata, self, &gr.regs);
	ASSERT_EQ(KVMI_DONE_BAD_REPLY,
		  kvmi_vcpu_state(&self->m, 0)->done_reason);
	ASSERT_EQ(1, kvmi_counters(&self->m, 0)->bad_replies);
	ASSERT_EQ(0, self->r.args[0]);		/* the default, CONTINUE */
	ASSERT_EQ(ARG0, self->r.args[1]);
	next_sync(_metadata, self->vcpu, &a0, &a1);
	ASSERT_EQ(lstar, a0);
}

TEST_HARNESS_MAIN
