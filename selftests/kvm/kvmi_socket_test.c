// SPDX-License-Identifier: GPL-2.0-only
/*
 * kvmi-ring: the socket transport (Documentation/virt/kvm/kvmi.rst,
 * section 22).
 *
 * The main thread plays the tool on one end of a socketpair; the kernel
 * holds the other. vCPU 0 runs a guest that issues the KVMi hypercall in a
 * loop, vCPU 1 one that counts. Events, replies, vCPU commands and VM
 * commands travel as messages; every malformed message must end the
 * introspection: end of file on the tool's socket, the waiting vCPU
 * released with the default action, the guest running on, and a new
 * introspection possible.
 */
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <netinet/in.h>

#include "kselftest_harness.h"
#include "kvmi_util.h"
#include "processor.h"
#include "ucall_common.h"

#define ARG0	0x0123456789abcdefULL
#define ARG1	0x1111222233334444ULL
#define ARG2	0x5555666677778888ULL
#define ARG3	0x99990000aaaabbbbULL

#define ENOSYS_RET	((uint64_t)-KVM_ENOSYS)

/*
 * uint64_t sock_hc(nr, a0, a1, a2, a3): the KVMi hypercall (RAX = nr,
 * RBX, RCX, RDX, RSI = a0..a3). Returns RAX; the RBX the guest sees
 * afterwards is left in sock_hc_rbx.
 */
uint64_t sock_hc(uint64_t nr, uint64_t a0, uint64_t a1, uint64_t a2,
		 uint64_t a3);
uint64_t sock_hc_rbx;

asm(".pushsection .text\n"
	".global sock_hc\n"
	"sock_hc:\n"
	"	push %rbx\n"
	"	mov %rdi, %rax\n"
	"	mov %rsi, %rbx\n"
	"	mov %rdx, %r9\n"
	"	mov %rcx, %rdx\n"
	"	mov %r9, %rcx\n"
	"	mov %r8, %rsi\n"
	"	vmmcall\n"
	"	mov %rbx, sock_hc_rbx(%rip)\n"
	"	pop %rbx\n"
	"	ret\n"
	".popsection\n");

/* vCPU 0: a hypercall, then a sync with what it returned, forever. */
static void guest_hc(void)
{
	for (;;) {
		uint64_t ret = sock_hc(KVM_HC_KVMI, ARG0, ARG1, ARG2, ARG3);

		GUEST_SYNC2(ret, sock_hc_rbx);
	}
}

/* vCPU 1: counts. */
static void guest_count(void)
{
	uint64_t i;

	for (i = 0;; i++)
		GUEST_SYNC1(i);
}

/* One KVM_RUN on a thread, and the sync it ended with. */

/* One KVM_RUN of vCPU 1 on this thread: returns the count it synced. */
static uint64_t run_counter(struct kvm_vcpu *vcpu)
{
	struct ucall uc;

	vcpu_run(vcpu);
	TEST_ASSERT_EQ(get_ucall(vcpu, &uc), UCALL_SYNC);
	return uc.args[0];
}

/*
 * Messages (section 22.2). A receive timeout keeps a kernel bug from
 * hanging the test; no result depends on it.
 */
static void sock_set_timeout(int s)
{
	struct timeval tv = { .tv_sec = 60 };

	TEST_ASSERT(!setsockopt(s, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)),
		    "SO_RCVTIMEO: %s", strerror(errno));
}

static void sock_write(int s, const void *buf, size_t len)
{
	TEST_ASSERT(send(s, buf, len, MSG_NOSIGNAL) == (ssize_t)len,
		    "send: %s", strerror(errno));
}

/*
 * A message in one send(): the kernel may end the connection as soon as
 * it has read a bad header, and a second send() would then fail.
 */
static void sock_send_hdr(int s, const struct kvmi_msg_hdr *hdr,
			  const void *p1, size_t n1, const void *p2, size_t n2)
{
	uint8_t buf[sizeof(*hdr) + 2 * KVMI_MSG_MAX_SIZE];

	TEST_ASSERT(n1 <= KVMI_MSG_MAX_SIZE && n2 <= KVMI_MSG_MAX_SIZE,
		    "message too large");
	memcpy(buf, hdr, sizeof(*hdr));
	if (n1)
		memcpy(buf + sizeof(*hdr), p1, n1);
	if (n2)
		memcpy(buf + sizeof(*hdr) + n1, p2, n2);
	sock_write(s, buf, sizeof(*hdr) + n1 + n2);
}

static void sock_send(int s, uint16_t id, uint32_t seq, uint32_t vcpu,
		      const void *p1, size_t n1, const void *p2, size_t n2)
{
	struct kvmi_msg_hdr hdr = {
		.id = id, .size = n1 + n2, .seq = seq, .vcpu = vcpu,
	};

	sock_send_hdr(s, &hdr, p1, n1, p2, n2);
}

/* Read @len bytes; returns how many came before the end of file. */
static size_t sock_read(int s, void *buf, size_t len)
{
	size_t done = 0;

	while (done < len) {
		ssize_t n = recv(s, (char *)buf + done, len - done, 0);

		TEST_ASSERT(n >= 0, "recv: %s", strerror(errno));
		if (!n)
			break;
		done += n;
	}
	return done;
}

/* Read the next message, which must be @id with @size bytes of payload. */
static void sock_expect(int s, uint16_t id, struct kvmi_msg_hdr *hdr,
			void *payload, size_t size)
{
	TEST_ASSERT_EQ(sock_read(s, hdr, sizeof(*hdr)), sizeof(*hdr));
	TEST_ASSERT_EQ(hdr->id, id);
	TEST_ASSERT_EQ(hdr->flags, 0);
	TEST_ASSERT_EQ(hdr->size, size);
	TEST_ASSERT_EQ(sock_read(s, payload, size), size);
}

/* Skip what the kernel sent, and see the end of file. */
static void sock_expect_eof(int s)
{
	char buf[4096];

	while (sock_read(s, buf, sizeof(buf)) == sizeof(buf))
		;
	TEST_ASSERT_EQ(recv(s, buf, sizeof(buf), 0), 0);
}

/* A VM command: returns its error; the argument comes back in @arg. */
static int sock_vm_cmd(int s, uint16_t cmd, void *arg, size_t size)
{
	struct kvmi_msg_vm_command vc = { .cmd = cmd };
	struct {
		struct kvmi_msg_vm_result res;
		uint8_t arg[256];
	} out;
	struct kvmi_msg_hdr hdr;
	static uint32_t seq = 100;

	TEST_ASSERT(size <= sizeof(out.arg), "argument too large");
	sock_send(s, KVMI_MSG_VM_COMMAND, ++seq, 0, &vc, sizeof(vc), arg,
		  size);
	TEST_ASSERT_EQ(sock_read(s, &hdr, sizeof(hdr)), sizeof(hdr));
	TEST_ASSERT_EQ(hdr.id, KVMI_MSG_VM_RESULT);
	TEST_ASSERT_EQ(hdr.seq, seq);
	TEST_ASSERT_EQ(hdr.vcpu, 0);
	TEST_ASSERT(hdr.size >= sizeof(out.res) &&
		    hdr.size <= sizeof(out), "VM_RESULT size %u", hdr.size);
	TEST_ASSERT_EQ(sock_read(s, &out, hdr.size), hdr.size);
	TEST_ASSERT_EQ(out.res.cmd, cmd);
	TEST_ASSERT_EQ(out.res.padding1, 0);
	if (!out.res.error) {
		TEST_ASSERT_EQ(hdr.size, sizeof(out.res) + size);
		memcpy(arg, out.arg, size);
	}
	return out.res.error;
}

static void sock_control_events(int s, uint32_t vcpu, uint16_t event,
				bool enable)
{
	struct kvmi_control_events ce = {
		.vcpu = vcpu, .event = event, .enable = enable,
	};

	TEST_ASSERT_EQ(sock_vm_cmd(s, KVMI_CMD_CONTROL_EVENTS, &ce,
				   sizeof(ce)), 0);
}

/* Wait for an event of vCPU @vcpu; returns its seq. */
static uint32_t sock_wait_event(int s, uint32_t vcpu, struct kvmi_event *ev)
{
	struct kvmi_msg_hdr hdr;

	sock_expect(s, KVMI_MSG_EVENT, &hdr, ev, sizeof(*ev));
	TEST_ASSERT_EQ(hdr.vcpu, vcpu);
	TEST_ASSERT_EQ(ev->vcpu, vcpu);
	TEST_ASSERT_EQ(hdr.seq, ev->seq);
	TEST_ASSERT(ev->seq, "event seq 0");
	return ev->seq;
}

static void sock_reply(int s, uint32_t vcpu, uint32_t seq, uint16_t event,
		       uint8_t action, const struct kvmi_x86_regs *regs)
{
	struct kvmi_reply rp = {
		.seq = seq, .event = event, .action = action,
	};

	if (regs) {
		rp.flags = KVMI_REPLY_SET_REGS;
		rp.regs = *regs;
	}
	sock_send(s, KVMI_MSG_REPLY, seq, vcpu, &rp, sizeof(rp), NULL, 0);
}

/* A vCPU command; returns its result, whose seq and id are checked. */
static void sock_vcpu_cmd(int s, uint32_t vcpu, uint32_t event, uint16_t id,
			  const union kvmi_cmd_args *args,
			  struct kvmi_cmd_result *res)
{
	struct kvmi_cmd c = { .seq = 7, .id = id, .event = event };
	struct kvmi_msg_hdr hdr;
	static uint32_t seq = 1000;

	if (args)
		c.args = *args;
	sock_send(s, KVMI_MSG_VCPU_COMMAND, ++seq, vcpu, &c, sizeof(c), NULL,
		  0);
	sock_expect(s, KVMI_MSG_VCPU_RESULT, &hdr, res, sizeof(*res));
	TEST_ASSERT_EQ(hdr.seq, seq);
	TEST_ASSERT_EQ(hdr.vcpu, vcpu);
	TEST_ASSERT_EQ(res->seq, seq);
	TEST_ASSERT_EQ(res->id, id);
}

static int open_socket(int vm_fd, int sock)
{
	struct kvmi_open op = kvmi_open_args();

	op.transport = KVMI_TRANSPORT_SOCKET;
	op.transport_fd = sock;
	return __kvmi_open(vm_fd, &op);
}

/*
 * Two vCPUs, introspection opened on a socketpair (the kernel's end
 * closed by the test once handed over), the shared memory mapped for the
 * counters, HYPERCALL enabled on every vCPU by a VM command.
 */
static void sk_setup(struct __test_metadata *_metadata, struct kvm_vm **vm,
		       struct kvm_vcpu **vcpu, int *fd, int *s,
		       struct kvmi_maps *m)
{
	int sv[2];

	KVMI_REQUIRE();
	*vm = vm_create_with_one_vcpu(&vcpu[0], guest_hc);
	vcpu[1] = vm_vcpu_add(*vm, 1, guest_count);

	ASSERT_EQ(0, socketpair(AF_UNIX, SOCK_STREAM, 0, sv));
	*fd = open_socket((*vm)->fd, sv[1]);
	ASSERT_LE(0, *fd) TH_LOG("open: %s", strerror(errno));
	close(sv[1]);
	*s = sv[0];
	sock_set_timeout(*s);
	kvmi_map_all(*fd, m);
	sock_control_events(*s, KVMI_ALL_VCPUS, KVMI_EVENT_HYPERCALL, true);
}

static void sk_teardown(struct kvm_vm *vm, int fd, int s,
			  struct kvmi_maps *m)
{
	kvmi_unmap_all(m);
	if (s >= 0)
		close(s);
	close(fd);
	kvm_vm_free(vm);
}

/* Two fixtures alike: 'sock' for the protocol, 'bad' for its errors. */
#define SOCK_FIXTURE(f)							\
FIXTURE(f) {								\
	struct kvm_vm *vm;						\
	struct kvm_vcpu *vcpu[2];					\
	int fd;		/* the introspection fd */			\
	int s;		/* the tool's end of the socket */		\
	struct kvmi_maps m;						\
	struct kvmi_runner r;						\
};									\
FIXTURE_SETUP(f)							\
{									\
	sk_setup(_metadata, &self->vm, self->vcpu, &self->fd,		\
		   &self->s, &self->m);					\
}									\
FIXTURE_TEARDOWN(f)							\
{									\
	sk_teardown(self->vm, self->fd, self->s, &self->m);		\
}

SOCK_FIXTURE(sock);
SOCK_FIXTURE(bad);

/* The guest returned from its hypercall with RAX = @ret, RBX = @rbx. */
#define ASSERT_GUEST_SAW(r, _ret, _rbx)	do {				\
	ASSERT_EQ(0, (r)->ret);						\
	ASSERT_EQ(UCALL_SYNC, (r)->ucall);				\
	ASSERT_EQ((_ret), (r)->args[0]);				\
	ASSERT_EQ((_rbx), (r)->args[1]);				\
} while (0)

TEST_F(sock, version_over_socket)
{
	struct kvmi_version ver = { .size = sizeof(ver) };
	struct kvmi_guest_info info = { .size = sizeof(info) };
	struct kvmi_check chk = { .id = KVMI_CMD_GET_REGISTERS };

	ASSERT_EQ(0, sock_vm_cmd(self->s, KVMI_CMD_GET_VERSION, &ver,
				 sizeof(ver)));
	ASSERT_EQ(sizeof(ver), ver.size);
	ASSERT_EQ(KVMI_VERSION, ver.version);
	ASSERT_TRUE(ver.features & KVMI_FEATURE_SOCKET);
	ASSERT_TRUE(ver.features & KVMI_FEATURE_RING);
	ASSERT_EQ(sizeof(struct kvmi_event), ver.event_size);
	ASSERT_EQ(sizeof(struct kvmi_reply), ver.reply_size);
	ASSERT_EQ(sizeof(struct kvmi_cmd), ver.cmd_size);
	ASSERT_EQ(sizeof(struct kvmi_cmd_result), ver.cmd_result_size);

	ASSERT_EQ(0, sock_vm_cmd(self->s, KVMI_CMD_GET_GUEST_INFO, &info,
				 sizeof(info)));
	ASSERT_EQ(sizeof(info), info.size);
	ASSERT_EQ(2, info.nr_vcpus);

	ASSERT_EQ(0, sock_vm_cmd(self->s, KVMI_CMD_CHECK_COMMAND, &chk,
				 sizeof(chk)));
	chk.id = KVMI_EVENT_HYPERCALL;
	ASSERT_EQ(0, sock_vm_cmd(self->s, KVMI_CMD_CHECK_EVENT, &chk,
				 sizeof(chk)));

	/* The ioctl tells the same. */
	kvmi_get_version(self->fd, &ver);
	ASSERT_TRUE(ver.features & KVMI_FEATURE_SOCKET);
	/* The fd says which transport it was opened with. */
	ASSERT_EQ(KVMI_VM_SOCKET, self->m.vm->flags);
}

/* Bad arguments are errors in the result, not protocol errors. */
TEST_F(sock, vm_command_errors_keep_the_connection)
{
	struct kvmi_control_events ce = {
		.vcpu = KVMI_ALL_VCPUS, .event = KVMI_EVENT_HYPERCALL,
		.enable = 1, .padding1 = 1,
	};
	struct kvmi_pause_vcpu pv = { .vcpu = 5 };
	struct kvmi_msg_vm_command vc = { .cmd = KVMI_CMD_GET_PAGE_ACCESS };
	struct kvmi_msg_vm_result res;
	struct kvmi_msg_hdr hdr;
	struct kvmi_check chk = { .id = KVMI_CMD_GET_REGISTERS };

	ASSERT_EQ(-EINVAL, sock_vm_cmd(self->s, KVMI_CMD_CONTROL_EVENTS, &ce,
				       sizeof(ce)));
	ASSERT_EQ(-ENOENT, sock_vm_cmd(self->s, KVMI_CMD_PAUSE_VCPU, &pv,
				       sizeof(pv)));

	/* Commands with pointers stay ioctls: -EOPNOTSUPP, no argument. */
	sock_send(self->s, KVMI_MSG_VM_COMMAND, 5, 0, &vc, sizeof(vc), NULL,
		  0);
	sock_expect(self->s, KVMI_MSG_VM_RESULT, &hdr, &res, sizeof(res));
	ASSERT_EQ(5, hdr.seq);
	ASSERT_EQ(KVMI_CMD_GET_PAGE_ACCESS, res.cmd);
	ASSERT_EQ(-EOPNOTSUPP, res.error);
	vc.cmd = 0x3f;		/* no such command */
	sock_send(self->s, KVMI_MSG_VM_COMMAND, 6, 0, &vc, sizeof(vc), NULL,
		  0);
	sock_expect(self->s, KVMI_MSG_VM_RESULT, &hdr, &res, sizeof(res));
	ASSERT_EQ(-EOPNOTSUPP, res.error);

	/* Still connected. */
	ASSERT_EQ(0, sock_vm_cmd(self->s, KVMI_CMD_CHECK_COMMAND, &chk,
				 sizeof(chk)));
}

/* READ/WRITE_PHYSICAL as messages (section 22.2). */
struct sock_phys_cmd {
	struct kvmi_msg_vm_command vc;
	struct kvmi_physical ph;
} __attribute__((packed));

/*
 * READ_PHYSICAL, or WRITE_PHYSICAL if @write, of @size bytes at @gpa, with
 * @buffer in the argument (0 on the socket): returns the result's error.
 * The argument must come back as sent; a read that succeeded brings its
 * data, into @data, and nothing else does.
 */
static int sock_physical(int s, bool write, uint64_t gpa, void *data,
			 uint32_t size, uint64_t buffer)
{
	struct sock_phys_cmd in = {
		.vc.cmd = write ? KVMI_CMD_WRITE_PHYSICAL :
				  KVMI_CMD_READ_PHYSICAL,
		.ph = { .gpa = gpa, .size = size, .buffer = buffer },
	};
	struct {
		struct kvmi_msg_vm_result res;
		struct kvmi_physical ph;
	} __attribute__((packed)) out;
	struct kvmi_msg_hdr hdr;
	static uint32_t seq = 5000;

	sock_send(s, KVMI_MSG_VM_COMMAND, ++seq, 0, &in, sizeof(in),
		  write ? data : NULL, write ? size : 0);
	TEST_ASSERT_EQ(sock_read(s, &hdr, sizeof(hdr)), sizeof(hdr));
	TEST_ASSERT_EQ(hdr.id, KVMI_MSG_VM_RESULT);
	TEST_ASSERT_EQ(hdr.seq, seq);
	TEST_ASSERT(hdr.size >= sizeof(out), "VM_RESULT size %u", hdr.size);
	TEST_ASSERT_EQ(sock_read(s, &out, sizeof(out)), sizeof(out));
	TEST_ASSERT_EQ(out.res.cmd, in.vc.cmd);
	TEST_ASSERT(!memcmp(&out.ph, &in.ph, sizeof(in.ph)),
		    "the argument comes back as sent");
	if (!out.res.error && !write) {
		TEST_ASSERT_EQ(hdr.size, sizeof(out) + size);
		TEST_ASSERT_EQ(sock_read(s, data, size), size);
	} else {
		TEST_ASSERT_EQ(hdr.size, sizeof(out));
	}
	return out.res.error;
}

#define PHYS_GPA	0x10000000ULL	/* two pages, slot 10 */
#define PHYS_RO_GPA	0x10100000ULL	/* one read-only page, slot 11 */

static uint8_t phys_byte(unsigned int i)
{
	return i * 7 + 3;
}

/* The data travels in the messages; errors as with the ioctls. */
TEST_F(sock, physical_over_socket)
{
	static uint8_t buf[KVMI_MSG_PHYSICAL_MAX], ref[KVMI_MSG_PHYSICAL_MAX];
	struct kvmi_physical ph = {
		.gpa = PHYS_GPA + 100, .size = sizeof(ref),
		.buffer = (uintptr_t)ref,
	};
	struct kvmi_check chk = { .id = KVMI_CMD_READ_PHYSICAL };
	uint8_t *hva, *ro;
	unsigned int i;

	vm_userspace_mem_region_add(self->vm, VM_MEM_SRC_ANONYMOUS, PHYS_GPA,
				    10, 2, 0);
	vm_userspace_mem_region_add(self->vm, VM_MEM_SRC_ANONYMOUS,
				    PHYS_RO_GPA, 11, 1, KVM_MEM_READONLY);
	hva = addr_gpa2hva(self->vm, PHYS_GPA);
	ro = addr_gpa2hva(self->vm, PHYS_RO_GPA);
	for (i = 0; i < 2 * PAGE_SIZE; i++)
		hva[i] = phys_byte(i);
	memset(ro, 0x5a, PAGE_SIZE);

	/* The most one message carries, across the page boundary. */
	ASSERT_EQ(0, sock_physical(self->s, false, PHYS_GPA + 100, buf,
				   sizeof(buf), 0));
	ASSERT_EQ(0, memcmp(buf, hva + 100, sizeof(buf)));
	/* What the ioctl reads. */
	ASSERT_EQ(0, ioctl(self->fd, KVMI_IOCTL_READ_PHYSICAL, &ph));
	ASSERT_EQ(0, memcmp(buf, ref, sizeof(buf)));
	ASSERT_EQ(0, sock_physical(self->s, false, PHYS_RO_GPA, buf, 1, 0));
	ASSERT_EQ(0x5a, buf[0]);

	/* A write across the boundary reaches the guest, and no more. */
	for (i = 0; i < 300; i++)
		buf[i] = ~phys_byte(i);
	ASSERT_EQ(0, sock_physical(self->s, true, PHYS_GPA + PAGE_SIZE - 150,
				   buf, 300, 0));
	ASSERT_EQ(0, memcmp(hva + PAGE_SIZE - 150, buf, 300));
	ASSERT_EQ(phys_byte(PAGE_SIZE - 151), hva[PAGE_SIZE - 151]);
	ASSERT_EQ(phys_byte(PAGE_SIZE + 150), hva[PAGE_SIZE + 150]);

	/* Bad arguments: an error in the result, no data, nothing written. */
	ASSERT_EQ(-EINVAL, sock_physical(self->s, false, PHYS_GPA, buf, 0, 0));
	ASSERT_EQ(-EINVAL, sock_physical(self->s, false, PHYS_GPA, buf,
					 KVMI_MSG_PHYSICAL_MAX + 1, 0));
	ASSERT_EQ(-EINVAL, sock_physical(self->s, false, PHYS_GPA, buf, 8,
					 (uintptr_t)buf));
	memset(buf, 0xee, 8);
	ASSERT_EQ(-EINVAL, sock_physical(self->s, true, PHYS_GPA, buf, 8, 1));
	ASSERT_EQ(phys_byte(0), hva[0]);
	ASSERT_EQ(-EINVAL, sock_physical(self->s, false, -8ULL, buf, 16, 0));
	ASSERT_EQ(-ENOENT, sock_physical(self->s, false, 0xfff00000000ULL,
					 buf, 8, 0));
	ASSERT_EQ(-EPERM, sock_physical(self->s, true, PHYS_RO_GPA, buf, 8,
					0));
	ASSERT_EQ(0x5a, ro[0]);
	/* A write failing on its second page has written the first. */
	ASSERT_EQ(-ENOENT, sock_physical(self->s, true,
					 PHYS_GPA + 2 * PAGE_SIZE - 4, buf, 8,
					 0));
	ASSERT_EQ(0, memcmp(hva + 2 * PAGE_SIZE - 4, buf, 4));

	/* Still connected. */
	ASSERT_EQ(0, sock_vm_cmd(self->s, KVMI_CMD_CHECK_COMMAND, &chk,
				 sizeof(chk)));
}

/*
 * An event, a vCPU command served while the vCPU waits, a reply that sets
 * registers: the guest sees them, the counters count them.
 */
TEST_F(sock, hypercall_round_trip)
{
	struct kvmi_vcpu_counters *cnt = kvmi_counters(&self->m, 0);
	struct kvmi_cmd_result res;
	struct kvmi_x86_regs regs;
	struct kvmi_event ev;
	uint32_t seq;
	int i;

	for (i = 0; i < 3; i++) {
		kvmi_runner_start(&self->r, self->vcpu[0]);
		seq = sock_wait_event(self->s, 0, &ev);
		ASSERT_EQ(KVMI_EVENT_HYPERCALL, ev.id);
		ASSERT_EQ(ARG0, ev.regs.rbx);
		ASSERT_EQ(ARG1, ev.regs.rcx);

		sock_vcpu_cmd(self->s, 0, seq, KVMI_CMD_GET_REGISTERS, NULL,
			      &res);
		ASSERT_EQ(0, res.error);
		ASSERT_EQ(ev.regs.rip, res.result.get_registers.regs.rip);
		ASSERT_EQ(ARG2, res.result.get_registers.regs.rdx);

		regs = res.result.get_registers.regs;
		regs.groups = KVMI_REGS_GPRS;
		regs.rax = 0x1234 + i;
		regs.rbx = 0x5678;
		sock_reply(self->s, 0, seq, KVMI_EVENT_HYPERCALL,
			   KVMI_ACTION_CONTINUE, &regs);
		kvmi_runner_join(&self->r);
		ASSERT_GUEST_SAW(&self->r, 0x1234 + i, 0x5678);
	}
	ASSERT_EQ(3, cnt->events);
	ASSERT_EQ(3, cnt->replies);
	ASSERT_EQ(0, cnt->bad_replies);
	ASSERT_EQ(3, cnt->commands);
	ASSERT_EQ(0, cnt->notify_signals);
}

/* An invalid reply (wrong event id) gets the default action, no more. */
TEST_F(sock, invalid_reply_gets_the_default_action)
{
	struct kvmi_vcpu_counters *cnt = kvmi_counters(&self->m, 0);
	struct kvmi_cmd_result res;
	struct kvmi_event ev;
	uint32_t seq;

	kvmi_runner_start(&self->r, self->vcpu[0]);
	seq = sock_wait_event(self->s, 0, &ev);
	sock_reply(self->s, 0, seq, KVMI_EVENT_BREAKPOINT,
		   KVMI_ACTION_CONTINUE, NULL);
	kvmi_runner_join(&self->r);
	ASSERT_GUEST_SAW(&self->r, 0, ARG0);
	ASSERT_EQ(1, cnt->bad_replies);

	/* A failing command is an error in its result. */
	kvmi_runner_start(&self->r, self->vcpu[0]);
	seq = sock_wait_event(self->s, 0, &ev);
	sock_vcpu_cmd(self->s, 0, seq, 0x7f, NULL, &res);
	ASSERT_EQ(-EOPNOTSUPP, res.error);
	/* One for an event that is not the pending one: refused. */
	sock_vcpu_cmd(self->s, 0, seq + 1, KVMI_CMD_GET_REGISTERS, NULL, &res);
	ASSERT_EQ(-ESRCH, res.error);
	sock_reply(self->s, 0, seq, KVMI_EVENT_HYPERCALL,
		   KVMI_ACTION_CONTINUE, NULL);
	kvmi_runner_join(&self->r);
	ASSERT_GUEST_SAW(&self->r, 0, ARG0);
}

/* vCPU 0 waits in an event while vCPU 1 runs, and is released after. */
TEST_F(sock, one_vcpu_waits_the_other_runs)
{
	struct kvmi_vcpu_state *vs = kvmi_vcpu_state(&self->m, 0);
	struct kvmi_event ev;
	uint64_t n, prev;
	uint32_t seq;
	int i;

	sock_control_events(self->s, 1, KVMI_EVENT_HYPERCALL, false);
	kvmi_runner_start(&self->r, self->vcpu[0]);
	seq = sock_wait_event(self->s, 0, &ev);

	prev = run_counter(self->vcpu[1]);
	for (i = 0; i < 20; i++) {
		n = run_counter(self->vcpu[1]);
		ASSERT_EQ(prev + 1, n);
		prev = n;
	}
	ASSERT_TRUE(__atomic_load_n(&vs->flags, __ATOMIC_ACQUIRE) &
		    KVMI_VCPU_WAITING);

	sock_reply(self->s, 0, seq, KVMI_EVENT_HYPERCALL,
		   KVMI_ACTION_CONTINUE, NULL);
	kvmi_runner_join(&self->r);
	ASSERT_GUEST_SAW(&self->r, 0, ARG0);
}

/* Both vCPUs in an event at once; their replies in the other order. */
TEST_F(sock, two_vcpus_in_events)
{
	struct kvmi_event ev0 = {}, ev1 = {}, ev;
	struct kvmi_runner r1;
	uint32_t s0, s1;
	int i;

	/* vCPU 1 runs the hypercall loop too. */
	vcpu_arch_set_entry_point(self->vcpu[1], guest_hc);
	kvmi_runner_start(&self->r, self->vcpu[0]);
	kvmi_runner_start(&r1, self->vcpu[1]);
	for (i = 0; i < 2; i++) {
		struct kvmi_msg_hdr hdr;

		sock_expect(self->s, KVMI_MSG_EVENT, &hdr, &ev, sizeof(ev));
		ASSERT_EQ(hdr.vcpu, ev.vcpu);
		if (ev.vcpu == 0)
			ev0 = ev;
		else
			ev1 = ev;
	}
	s0 = ev0.seq;
	s1 = ev1.seq;
	ASSERT_EQ(0, ev0.vcpu);
	ASSERT_EQ(1, ev1.vcpu);

	sock_reply(self->s, 1, s1, KVMI_EVENT_HYPERCALL,
		   KVMI_ACTION_CONTINUE, NULL);
	kvmi_runner_join(&r1);
	ASSERT_GUEST_SAW(&r1, 0, ARG0);
	sock_reply(self->s, 0, s0, KVMI_EVENT_HYPERCALL,
		   KVMI_ACTION_CONTINUE, NULL);
	kvmi_runner_join(&self->r);
	ASSERT_GUEST_SAW(&self->r, 0, ARG0);
}

/*
 * Replies to events the kernel has ended without them (the VMM's
 * deadline, UNPAUSE) come too late: ignored, as with the ring, and the
 * connection stays.
 */
TEST_F(sock, late_replies_are_ignored)
{
	struct kvmi_vcpu_counters *cnt = kvmi_counters(&self->m, 0);
	struct kvmi_deadline dl = { .reply_ns = 1000000 };
	struct kvmi_pause_vcpu pv = { .vcpu = 1 };
	struct kvmi_check chk = { .id = KVMI_CMD_GET_REGISTERS };
	struct kvmi_event ev;
	struct kvmi_runner r1;
	uint32_t seq;

	/* The deadline ends the event before the tool replies. */
	ASSERT_EQ(0, ioctl(self->vm->fd, KVM_INTROSPECTION_SET_DEADLINE, &dl));
	kvmi_runner_start(&self->r, self->vcpu[0]);
	seq = sock_wait_event(self->s, 0, &ev);
	kvmi_runner_join(&self->r);
	ASSERT_EQ(0, self->r.ret);
	ASSERT_EQ(UCALL_SYNC, self->r.ucall);
	ASSERT_EQ(1, cnt->deadlines);
	ASSERT_EQ(KVMI_DONE_DEADLINE, kvmi_vcpu_state(&self->m, 0)->done_reason);
	sock_reply(self->s, 0, seq, KVMI_EVENT_HYPERCALL,
		   KVMI_ACTION_CONTINUE, NULL);
	ASSERT_EQ(0, sock_vm_cmd(self->s, KVMI_CMD_CHECK_COMMAND, &chk,
				 sizeof(chk)));
	dl.reply_ns = 0;
	ASSERT_EQ(0, ioctl(self->vm->fd, KVM_INTROSPECTION_SET_DEADLINE, &dl));

	/* UNPAUSE ends the PAUSE event; the reply to it comes after. */
	ASSERT_EQ(0, sock_vm_cmd(self->s, KVMI_CMD_PAUSE_VCPU, &pv,
				 sizeof(pv)));
	kvmi_runner_start(&r1, self->vcpu[1]);
	seq = sock_wait_event(self->s, 1, &ev);
	ASSERT_EQ(KVMI_EVENT_PAUSE, ev.id);
	ASSERT_EQ(0, sock_vm_cmd(self->s, KVMI_CMD_UNPAUSE, &pv, sizeof(pv)));
	kvmi_runner_join(&r1);
	ASSERT_EQ(0, r1.ret);
	ASSERT_EQ(UCALL_SYNC, r1.ucall);
	ASSERT_EQ(KVMI_DONE_UNPAUSE, kvmi_vcpu_state(&self->m, 1)->done_reason);
	sock_reply(self->s, 1, seq, KVMI_EVENT_PAUSE, KVMI_ACTION_CONTINUE,
		   NULL);

	/* Still connected: an event and its reply. */
	kvmi_runner_start(&self->r, self->vcpu[0]);
	seq = sock_wait_event(self->s, 0, &ev);
	sock_reply(self->s, 0, seq, KVMI_EVENT_HYPERCALL,
		   KVMI_ACTION_CONTINUE, NULL);
	kvmi_runner_join(&self->r);
	ASSERT_GUEST_SAW(&self->r, 0, ARG0);
	ASSERT_EQ(1, cnt->replies);
}

static void sig_nop(int sig)
{
}

#define FILL_CMDS	120	/* 120 x 4 KiB results: more than the socket holds */

/*
 * The tool stops reading, and the socket fills with the results of its
 * READ_PHYSICAL messages; an event comes then, and signals hit the
 * waiting vCPU thread. The vCPU never sleeps on the socket: each signal
 * takes it out of KVM_RUN, its event still pending, and nothing ends the
 * introspection. Once the tool reads, every message is there, whole and
 * in order, and the event's reply reaches the guest.
 */
TEST_F(sock, full_socket_and_signals)
{
	struct kvmi_vcpu_counters *cnt = kvmi_counters(&self->m, 0);
	static uint8_t ref[KVMI_MSG_PHYSICAL_MAX], buf[KVMI_MSG_PHYSICAL_MAX];
	struct kvmi_physical ph = {
		.gpa = 0, .size = sizeof(ref), .buffer = (uintptr_t)ref,
	};
	struct sock_phys_cmd in = {
		.vc.cmd = KVMI_CMD_READ_PHYSICAL,
		.ph = { .gpa = 0, .size = sizeof(ref) },
	};
	struct sigaction sa = { .sa_handler = sig_nop };
	struct kvmi_version ver = { .size = sizeof(ver) };
	struct {
		struct kvmi_msg_vm_result res;
		struct kvmi_physical ph;
	} __attribute__((packed)) out;
	struct kvmi_msg_hdr hdr;
	struct kvmi_event ev;
	uint32_t results = 0, events = 0, seq = 0;
	int i;

	/* A page of guest code: nothing writes it. */
	ph.gpa = addr_gva2gpa(self->vm, (vm_vaddr_t)guest_count & ~0xfffULL);
	in.ph.gpa = ph.gpa;
	ASSERT_EQ(0, sigaction(SIGUSR1, &sa, NULL));
	ASSERT_EQ(0, ioctl(self->fd, KVMI_IOCTL_READ_PHYSICAL, &ph));
	for (i = 0; i < FILL_CMDS; i++)
		sock_send(self->s, KVMI_MSG_VM_COMMAND, 9000 + i, 0, &in,
			  sizeof(in), NULL, 0);

	/* The event is raised while the socket is full. */
	kvmi_runner_start(&self->r, self->vcpu[0]);
	while (!__atomic_load_n(&cnt->events, __ATOMIC_ACQUIRE))
		usleep(1000);
	for (i = 0; i < 3; i++) {
		if (i)
			kvmi_runner_start(&self->r, self->vcpu[0]);
		usleep(10000);
		pthread_kill(self->r.thread, SIGUSR1);
		kvmi_runner_join(&self->r);
		ASSERT_EQ(-1, self->r.ret);
		ASSERT_EQ(0, ioctl(self->fd, KVMI_IOCTL_GET_VERSION, &ver));
	}
	ASSERT_EQ(1, cnt->events);

	/* Now read: the results in order, the event among them. */
	while (results < FILL_CMDS || !events) {
		ASSERT_EQ(sizeof(hdr), sock_read(self->s, &hdr, sizeof(hdr)));
		if (hdr.id == KVMI_MSG_EVENT) {
			ASSERT_EQ(sizeof(ev), hdr.size);
			ASSERT_EQ(sizeof(ev), sock_read(self->s, &ev,
							sizeof(ev)));
			ASSERT_EQ(0, hdr.vcpu);
			ASSERT_EQ(hdr.seq, ev.seq);
			ASSERT_EQ(KVMI_EVENT_HYPERCALL, ev.id);
			seq = ev.seq;
			events++;
			continue;
		}
		ASSERT_EQ(KVMI_MSG_VM_RESULT, hdr.id);
		ASSERT_EQ(9000 + results, hdr.seq);
		ASSERT_EQ(sizeof(out) + sizeof(buf), hdr.size);
		ASSERT_EQ(sizeof(out), sock_read(self->s, &out, sizeof(out)));
		ASSERT_EQ(0, out.res.error);
		ASSERT_EQ(sizeof(buf), sock_read(self->s, buf, sizeof(buf)));
		ASSERT_EQ(0, memcmp(buf, ref, sizeof(buf)));
		results++;
	}
	ASSERT_EQ(1, events);

	/* KVM_RUN resumes the wait; the reply ends it. */
	kvmi_runner_start(&self->r, self->vcpu[0]);
	sock_reply(self->s, 0, seq, KVMI_EVENT_HYPERCALL,
		   KVMI_ACTION_CONTINUE, NULL);
	kvmi_runner_join(&self->r);
	ASSERT_GUEST_SAW(&self->r, 0, ARG0);
	ASSERT_EQ(1, cnt->events);
	ASSERT_EQ(1, cnt->replies);
}

/* UNHOOK: the message, then a forced unhook closes the connection. */
TEST_F(sock, unhook)
{
	struct kvmi_unhook uh = { .timeout_ns = 0 };
	struct kvmi_msg_hdr hdr;
	struct kvmi_event ev;

	kvmi_runner_start(&self->r, self->vcpu[0]);
	sock_wait_event(self->s, 0, &ev);

	ASSERT_EQ(-1, ioctl(self->vm->fd, KVM_INTROSPECTION_UNHOOK, &uh));
	ASSERT_EQ(ETIMEDOUT, errno);
	sock_expect(self->s, KVMI_MSG_UNHOOK, &hdr, NULL, 0);
	ASSERT_EQ(0, hdr.seq);
	ASSERT_EQ(0, hdr.vcpu);

	uh.flags = KVMI_UNHOOK_FORCE;
	ASSERT_EQ(0, ioctl(self->vm->fd, KVM_INTROSPECTION_UNHOOK, &uh));
	sock_expect_eof(self->s);
	kvmi_runner_join(&self->r);
	ASSERT_GUEST_SAW(&self->r, 0, ARG0);
}

/* Closing the introspection fd ends the connection too. */
TEST_F(sock, fd_close_closes_the_connection)
{
	struct kvmi_event ev;
	int fd;

	kvmi_runner_start(&self->r, self->vcpu[0]);
	sock_wait_event(self->s, 0, &ev);
	kvmi_unmap_all(&self->m);
	close(self->fd);
	sock_expect_eof(self->s);
	kvmi_runner_join(&self->r);
	ASSERT_GUEST_SAW(&self->r, 0, ARG0);

	fd = kvmi_open(self->vm);
	kvmi_map_all(fd, &self->m);
	self->fd = fd;
}

/* Destroying the VM ends the connection and detaches the fd. */
TEST_F(sock, vm_destroyed)
{
	struct kvmi_version ver = { .size = sizeof(ver) };

	kvm_vm_free(self->vm);
	sock_expect_eof(self->s);
	ASSERT_EQ(-1, ioctl(self->fd, KVMI_IOCTL_GET_VERSION, &ver));
	ASSERT_EQ(ENODEV, errno);
	self->vm = vm_create_barebones();
}

/* The kinds of sockets OPEN refuses (section 22.1). */
TEST(open_checks_the_socket)
{
	struct kvm_vcpu *vcpu;
	struct kvm_vm *vm;
	int sv[2], s, efd;

	KVMI_REQUIRE();
	vm = vm_create_with_one_vcpu(&vcpu, guest_hc);

	ASSERT_EQ(-1, open_socket(vm->fd, -1));
	ASSERT_EQ(EBADF, errno);

	efd = eventfd(0, 0);
	ASSERT_LE(0, efd);
	ASSERT_EQ(-1, open_socket(vm->fd, efd));
	ASSERT_EQ(ENOTSOCK, errno);
	close(efd);

	ASSERT_EQ(0, socketpair(AF_UNIX, SOCK_DGRAM, 0, sv));
	ASSERT_EQ(-1, open_socket(vm->fd, sv[1]));
	ASSERT_EQ(EINVAL, errno);
	close(sv[0]);
	close(sv[1]);

	ASSERT_EQ(0, socketpair(AF_UNIX, SOCK_SEQPACKET, 0, sv));
	ASSERT_EQ(-1, open_socket(vm->fd, sv[1]));
	ASSERT_EQ(EINVAL, errno);
	close(sv[0]);
	close(sv[1]);

	/* A stream socket, not connected. */
	s = socket(AF_UNIX, SOCK_STREAM, 0);
	ASSERT_LE(0, s);
	ASSERT_EQ(-1, open_socket(vm->fd, s));
	ASSERT_EQ(EINVAL, errno);
	close(s);

	/* Not AF_UNIX. */
	s = socket(AF_INET, SOCK_STREAM, 0);
	if (s >= 0) {
		ASSERT_EQ(-1, open_socket(vm->fd, s));
		ASSERT_EQ(EINVAL, errno);
		close(s);
	}

	/* Each refusal left nothing open: the ring opens. */
	close(kvmi_open(vm));
	kvm_vm_free(vm);
}

/*
 * Malformed messages (section 22.4), each sent while vCPU 0 waits in an
 * event: end of file for the tool, the vCPU released with the default
 * action, the fd detached, the guest running on, and a new
 * introspection possible.
 */
enum bad_kind {
	BAD_SIZE,
	BAD_ID,
	BAD_FLAGS,
	BAD_VCPU,
	BAD_VM_CMD_PADDING,
	BAD_VM_CMD_SIZE,
	BAD_PHYS_WRITE_SIZE,
	BAD_PHYS_READ_DATA,
	BAD_SHORT,
	BAD_REPLY_NO_EVENT,
	BAD_REPLY_SEQ0,
	BAD_REPLY_SEQ_MISMATCH,
	BAD_SECOND_REPLY,
	BAD_TWO_COMMANDS,
	BAD_TOOL_CLOSE,
	BAD_TOOL_SHUTDOWN,
};

FIXTURE_VARIANT(bad) {
	enum bad_kind kind;
};

#define BAD(name, k) FIXTURE_VARIANT_ADD(bad, name) { .kind = k }
BAD(bad_size, BAD_SIZE);
BAD(unknown_id, BAD_ID);
BAD(nonzero_flags, BAD_FLAGS);
BAD(no_such_vcpu, BAD_VCPU);
BAD(vm_cmd_padding, BAD_VM_CMD_PADDING);
BAD(vm_cmd_size, BAD_VM_CMD_SIZE);
BAD(physical_write_size, BAD_PHYS_WRITE_SIZE);
BAD(physical_read_with_data, BAD_PHYS_READ_DATA);
BAD(short_message, BAD_SHORT);
BAD(reply_to_no_event, BAD_REPLY_NO_EVENT);
BAD(reply_seq0_no_event_yet, BAD_REPLY_SEQ0);
BAD(reply_seq_mismatch, BAD_REPLY_SEQ_MISMATCH);
BAD(second_reply, BAD_SECOND_REPLY);
BAD(two_commands_outstanding, BAD_TWO_COMMANDS);
BAD(tool_close, BAD_TOOL_CLOSE);
BAD(tool_shutdown, BAD_TOOL_SHUTDOWN);

TEST_F(bad, malformed)
{
	struct kvmi_reply rp = {};
	struct kvmi_cmd c = { .id = KVMI_CMD_GET_REGISTERS };
	struct sigaction sa = { .sa_handler = sig_nop };
	struct kvmi_msg_vm_command vc = { .cmd = KVMI_CMD_PAUSE_ALL };
	struct kvmi_pause_all pa = {};
	struct sock_phys_cmd pc = {
		.vc.cmd = KVMI_CMD_WRITE_PHYSICAL,
		.ph = { .gpa = 0, .size = 100 },
	};
	uint8_t data[64] = {};
	struct kvmi_msg_hdr hdr = {};
	struct kvmi_version ver = { .size = sizeof(ver) };
	struct kvmi_event ev;
	uint64_t n, prev;
	uint32_t seq;
	int sv[2], fd;

	kvmi_runner_start(&self->r, self->vcpu[0]);
	seq = sock_wait_event(self->s, 0, &ev);
	rp.seq = seq;
	rp.event = KVMI_EVENT_HYPERCALL;

	switch (variant->kind) {
	case BAD_SIZE:
		sock_send(self->s, KVMI_MSG_REPLY, seq, 0, &rp, sizeof(rp) - 8,
			  NULL, 0);
		break;
	case BAD_ID:
		sock_send(self->s, 99, seq, 0, &rp, sizeof(rp), NULL, 0);
		break;
	case BAD_FLAGS:
		hdr = (struct kvmi_msg_hdr){
			.id = KVMI_MSG_REPLY, .flags = 1, .size = sizeof(rp),
			.seq = seq,
		};
		sock_send_hdr(self->s, &hdr, &rp, sizeof(rp), NULL, 0);
		break;
	case BAD_VCPU:
		sock_send(self->s, KVMI_MSG_REPLY, seq, 1000, &rp, sizeof(rp),
			  NULL, 0);
		break;
	case BAD_VM_CMD_PADDING:
		vc.padding = 1;
		sock_send(self->s, KVMI_MSG_VM_COMMAND, 1, 0, &vc, sizeof(vc),
			  &pa, sizeof(pa));
		break;
	case BAD_VM_CMD_SIZE:
		sock_send(self->s, KVMI_MSG_VM_COMMAND, 1, 0, &vc, sizeof(vc),
			  &pa, sizeof(pa) - 4);
		break;
	case BAD_PHYS_WRITE_SIZE:
		/* 100 bytes said, 64 sent. */
		sock_send(self->s, KVMI_MSG_VM_COMMAND, 1, 0, &pc, sizeof(pc),
			  data, sizeof(data));
		break;
	case BAD_PHYS_READ_DATA:
		pc.vc.cmd = KVMI_CMD_READ_PHYSICAL;
		pc.ph.size = sizeof(data);
		sock_send(self->s, KVMI_MSG_VM_COMMAND, 1, 0, &pc, sizeof(pc),
			  data, sizeof(data));
		break;
	case BAD_SHORT:
		hdr = (struct kvmi_msg_hdr){
			.id = KVMI_MSG_REPLY, .size = sizeof(rp), .seq = seq,
		};
		sock_send_hdr(self->s, &hdr, &rp, sizeof(rp) / 2, NULL, 0);
		ASSERT_EQ(0, shutdown(self->s, SHUT_WR));
		break;
	case BAD_REPLY_NO_EVENT:
		rp.seq = seq + 100;
		sock_send(self->s, KVMI_MSG_REPLY, seq + 100, 0, &rp,
			  sizeof(rp), NULL, 0);
		break;
	case BAD_REPLY_SEQ0:
		/* vCPU 1 has sent no event: seq 0 is no event's. */
		rp.seq = 0;
		sock_send(self->s, KVMI_MSG_REPLY, 0, 1, &rp, sizeof(rp), NULL,
			  0);
		break;
	case BAD_REPLY_SEQ_MISMATCH:
		rp.seq = seq + 1;
		sock_send(self->s, KVMI_MSG_REPLY, seq, 0, &rp, sizeof(rp),
			  NULL, 0);
		break;
	case BAD_SECOND_REPLY:
		/* The first one releases the vCPU: CONTINUE, RAX 0. */
		sock_send(self->s, KVMI_MSG_REPLY, seq, 0, &rp, sizeof(rp),
			  NULL, 0);
		sock_send(self->s, KVMI_MSG_REPLY, seq, 0, &rp, sizeof(rp),
			  NULL, 0);
		break;
	case BAD_TWO_COMMANDS:
		/*
		 * vCPU 0 leaves KVM_RUN on a signal, its event pending: the
		 * first command for that event stays queued. Its next
		 * KVM_RUN resumes the wait, which the end releases.
		 */
		ASSERT_EQ(0, sigaction(SIGUSR1, &sa, NULL));
		pthread_kill(self->r.thread, SIGUSR1);
		kvmi_runner_join(&self->r);
		ASSERT_EQ(-1, self->r.ret);
		c.event = seq;
		sock_send(self->s, KVMI_MSG_VCPU_COMMAND, 1, 0, &c, sizeof(c),
			  NULL, 0);
		sock_send(self->s, KVMI_MSG_VCPU_COMMAND, 2, 0, &c, sizeof(c),
			  NULL, 0);
		kvmi_runner_start(&self->r, self->vcpu[0]);
		break;
	case BAD_TOOL_CLOSE:
		close(self->s);
		self->s = -1;
		break;
	case BAD_TOOL_SHUTDOWN:
		ASSERT_EQ(0, shutdown(self->s, SHUT_WR));
		break;
	}

	if (self->s >= 0)
		sock_expect_eof(self->s);
	kvmi_runner_join(&self->r);
	ASSERT_GUEST_SAW(&self->r, 0, ARG0);

	/* Detached: the kernel ended the introspection. */
	ASSERT_EQ(-1, ioctl(self->fd, KVMI_IOCTL_GET_VERSION, &ver));
	ASSERT_EQ(ENODEV, errno);

	/* The guest runs on: no event, the hypercall is KVM's again. */
	kvmi_runner_start(&self->r, self->vcpu[0]);
	kvmi_runner_join(&self->r);
	ASSERT_GUEST_SAW(&self->r, ENOSYS_RET, ARG0);
	prev = run_counter(self->vcpu[1]);
	n = run_counter(self->vcpu[1]);
	ASSERT_EQ(prev + 1, n);

	/* Once the fd is closed, a new introspection can start. */
	kvmi_unmap_all(&self->m);
	close(self->fd);
	if (self->s >= 0)
		close(self->s);
	ASSERT_EQ(0, socketpair(AF_UNIX, SOCK_STREAM, 0, sv));
	fd = open_socket(self->vm->fd, sv[1]);
	ASSERT_LE(0, fd);
	close(sv[1]);
	self->fd = fd;
	self->s = sv[0];
	kvmi_map_all(self->fd, &self->m);
	sock_set_timeout(self->s);
	sock_control_events(self->s, 0, KVMI_EVENT_HYPERCALL, true);
	kvmi_runner_start(&self->r, self->vcpu[0]);
	seq = sock_wait_event(self->s, 0, &ev);
	sock_reply(self->s, 0, seq, KVMI_EVENT_HYPERCALL,
		   KVMI_ACTION_CONTINUE, NULL);
	kvmi_runner_join(&self->r);
	ASSERT_GUEST_SAW(&self->r, 0, ARG0);
}

TEST_HARNESS_MAIN
