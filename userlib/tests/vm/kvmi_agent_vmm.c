// SPDX-License-Identifier: GPL-2.0-only
/*
 * The guest the enforcement agent (examples/agent) is tested against: a
 * VMM that knows nothing of introspection, with one vCPU whose guest
 * makes the writes a rootkit would (LSTAR, CR4.SMEP, CR4.SMAP) and two it
 * may (STAR, CR4.PCE), and reports what each did as the guest sees it:
 *
 *   lstar: kept|written      star: kept|written
 *   cr4.smep: kept|cleared   cr4.smap: kept|cleared   (or: unsupported)
 *   cr4.pce: set|not set
 *   text: kept|written
 *
 * The last is a page of "kernel text": a page of the guest's image that
 * the VMM fills with a pattern before the guest runs, and that the guest
 * then patches (one byte, as a rootkit installing a hook would) and reads
 * back; "kept" means the guest read the pattern back and the whole page
 * still holds it. The VMM prints "text gpa 0x..." (the same in every run
 * of this binary) for the agent's -t.
 *
 * Before the guest runs, the VMM sets LSTAR and CR4.SMEP/SMAP (when KVM
 * offers them) as a booted guest kernel would have, prints "ready", and
 * waits for SIGUSR1 (unless "go" is given: then it runs at once). With
 * "send PATH" it is a cooperating VMM instead: it first connects to the
 * unix socket PATH and sends its VM fd there (SCM_RIGHTS).
 *
 *   kvmi_agent_vmm [go | send PATH]
 */
#include <signal.h>
#include <sys/socket.h>
#include <sys/un.h>

#include "kvm_util.h"
#include "processor.h"
#include "test_util.h"
#include "ucall_common.h"

#define LSTAR_BOOT	0xffffffff81a00040ULL
#define LSTAR_ROOTKIT	0xffffffffc0ffee00ULL
#define STAR_NEW	0x0023001000000000ULL

static bool have_smep_smap;
static uint64_t lstar_after, star_after, cr4_before, cr4_smep, cr4_smap;
static uint64_t cr4_pce;

#define TEXT_FILL	0x90	/* the pattern: NOPs */
#define TEXT_PATCH	0xcc	/* what the guest writes: INT3 */
#define TEXT_OFF	0x123
/* Initialised, so that it is in the image (.data), on a page of its own. */
static uint8_t text_page[4096] __attribute__((aligned(4096))) = { 1 };
static uint64_t text_after;

static void guest_code(void)
{
	wrmsr(MSR_LSTAR, LSTAR_ROOTKIT);
	lstar_after = rdmsr(MSR_LSTAR);
	wrmsr(MSR_STAR, STAR_NEW);
	star_after = rdmsr(MSR_STAR);
	cr4_before = get_cr4();
	if (have_smep_smap) {
		set_cr4(get_cr4() & ~X86_CR4_SMEP);
		cr4_smep = get_cr4();
		set_cr4(get_cr4() & ~X86_CR4_SMAP);
		cr4_smap = get_cr4();
	}
	set_cr4(get_cr4() | X86_CR4_PCE);
	cr4_pce = get_cr4();
	WRITE_ONCE(text_page[TEXT_OFF], TEXT_PATCH);
	text_after = READ_ONCE(text_page[TEXT_OFF]);
	GUEST_DONE();
}

/* Connect to @path (retrying while the agent isn't listening yet), send @fd. */
static void send_fd(const char *path, int fd)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	char cbuf[CMSG_SPACE(sizeof(int))] = {};
	char byte = 0;
	struct iovec iov = { .iov_base = &byte, .iov_len = 1 };
	struct msghdr msg = {
		.msg_iov = &iov, .msg_iovlen = 1,
		.msg_control = cbuf, .msg_controllen = sizeof(cbuf),
	};
	struct cmsghdr *cm = CMSG_FIRSTHDR(&msg);
	int s, i;

	strncpy(sa.sun_path, path, sizeof(sa.sun_path) - 1);
	s = socket(AF_UNIX, SOCK_STREAM, 0);
	TEST_ASSERT(s >= 0, "socket");
	for (i = 0; connect(s, (struct sockaddr *)&sa, sizeof(sa)); i++) {
		TEST_ASSERT(i < 100, "connect %s", path);
		usleep(100000);
	}
	cm->cmsg_level = SOL_SOCKET;
	cm->cmsg_type = SCM_RIGHTS;
	cm->cmsg_len = CMSG_LEN(sizeof(int));
	memcpy(CMSG_DATA(cm), &fd, sizeof(int));
	TEST_ASSERT(sendmsg(s, &msg, 0) == 1, "sendmsg");
	close(s);
}

static uint64_t peek(struct kvm_vm *vm, uint64_t *gva)
{
	return *(uint64_t *)addr_gva2hva(vm, (vm_vaddr_t)gva);
}

/* The guest read the pattern back, and the page holds nothing else. */
static bool text_kept(struct kvm_vm *vm)
{
	const uint8_t *p = addr_gva2hva(vm, (vm_vaddr_t)text_page);
	int i;

	for (i = 0; i < 4096; i++)
		if (p[i] != TEXT_FILL)
			return false;
	return peek(vm, &text_after) == TEXT_FILL;
}

int main(int argc, char **argv)
{
	bool go = argc > 1 && !strcmp(argv[1], "go");
	struct kvm_sregs sregs;
	struct kvm_vcpu *vcpu;
	struct kvm_vm *vm;
	struct ucall uc;
	sigset_t set;
	int sig;

	sigemptyset(&set);
	sigaddset(&set, SIGUSR1);
	sigprocmask(SIG_BLOCK, &set, NULL);

	vm = vm_create_with_one_vcpu(&vcpu, guest_code);
	vcpu_set_msr(vcpu, MSR_LSTAR, LSTAR_BOOT);
	have_smep_smap = kvm_cpu_has(X86_FEATURE_SMEP) &&
			 kvm_cpu_has(X86_FEATURE_SMAP);
	if (have_smep_smap) {
		vcpu_sregs_get(vcpu, &sregs);
		sregs.cr4 |= X86_CR4_SMEP | X86_CR4_SMAP;
		vcpu_sregs_set(vcpu, &sregs);
	}
	sync_global_to_guest(vm, have_smep_smap);
	memset(addr_gva2hva(vm, (vm_vaddr_t)text_page), TEXT_FILL, 4096);
	printf("text gpa 0x%lx\n",
	       (unsigned long)addr_gva2gpa(vm, (vm_vaddr_t)text_page));
	if (argc > 2 && !strcmp(argv[1], "send"))
		send_fd(argv[2], vm->fd);
	printf("ready\n");
	fflush(stdout);
	if (!go)
		sigwait(&set, &sig);

	vcpu_run(vcpu);
	TEST_ASSERT(get_ucall(vcpu, &uc) == UCALL_DONE, "guest: %s",
		    (const char *)uc.args[0]);

	printf("lstar: %s\n", peek(vm, &lstar_after) == LSTAR_BOOT ? "kept" :
	       peek(vm, &lstar_after) == LSTAR_ROOTKIT ? "written" : "?");
	printf("star: %s\n", peek(vm, &star_after) == STAR_NEW ? "written" :
	       "kept");
	if (have_smep_smap) {
		printf("cr4.smep: %s\n", peek(vm, &cr4_smep) & X86_CR4_SMEP ?
		       "kept" : "cleared");
		printf("cr4.smap: %s\n", peek(vm, &cr4_smap) & X86_CR4_SMAP ?
		       "kept" : "cleared");
	} else {
		printf("cr4.smep: unsupported\ncr4.smap: unsupported\n");
	}
	printf("cr4.pce: %s\n", peek(vm, &cr4_pce) & X86_CR4_PCE ? "set" :
	       "not set");
	printf("text: %s\n", text_kept(vm) ? "kept" : "written");
	printf("cr4 0x%lx -> 0x%lx\n", peek(vm, &cr4_before),
	       peek(vm, &cr4_pce));
	kvm_vm_free(vm);
	return 0;
}
