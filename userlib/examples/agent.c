// SPDX-License-Identifier: LGPL-2.1-or-later OR MIT
/*
 * agent: an enforcement agent. It protects, in every guest it attaches
 * to, the guest kernel's system-call entry (the LSTAR MSR) and the CR4
 * bits SMEP and SMAP from writes: such a write is denied (the guest goes
 * on with the register unchanged) and logged; every other write of the
 * registers it watches goes through. It counts events per kind and
 * prints the counts when it leaves (SIGINT or SIGTERM), closing each
 * guest cleanly (an event still pending is answered first).
 *
 *   agent [-t GPA] -p PID     attach to the VMM PID (its VM fd, taken
 *                             with pidfd_getfd(); needs ptrace rights)
 *   agent [-t GPA] -s PATH    wait on the unix socket PATH for a VMM to
 *                             send its VM fd (kvmi_fd_send())
 *   agent [-t GPA] -d         every guest of the host, present and to
 *                             come, through /dev/kvmi (CAP_SYS_ADMIN)
 *
 * -t GPA also protects the page of "kernel text" at GPA from writes
 * (KVMI_IOCTL_SET_PAGE_ACCESS and KVMI_EVENT_PAGE_FAULT): with a kernel
 * that has no PAGE_FAULT event yet, the agent says so and protects the
 * rest.
 *
 * One io_uring loop (kvmi_uring_run()) serves every vCPU of every guest;
 * the vCPUs wait in BLOCK mode. Policy: the rules below, one function
 * per event kind.
 */
#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <kvmi/kvmi.h>

#define MSR_LSTAR	0xc0000082U
#define CR4_SMEP	(1ULL << 20)
#define CR4_SMAP	(1ULL << 21)
#define CR4_GUARDED	(CR4_SMEP | CR4_SMAP)

#define MAX_GUESTS	64
#define NR_KINDS	(KVMI_EVENT_PAGE_FAULT + 1)

struct agent;

struct guest {
	struct kvmi_dom *dom;
	uint64_t id;		/* discovery id, or 0 */
	struct agent *agent;
};

struct agent {
	struct kvmi_uring *loop;
	uint64_t text_gpa;	/* page to protect, or ~0 */
	struct guest guests[MAX_GUESTS];
	/* Per event kind (KVMI_EVENT_*): events seen, writes denied. */
	uint64_t events[NR_KINDS];
	uint64_t denied[NR_KINDS];
};

static const char *const kind_name[NR_KINDS] = {
	[KVMI_EVENT_PAUSE] = "pause",
	[KVMI_EVENT_HYPERCALL] = "hypercall",
	[KVMI_EVENT_BREAKPOINT] = "breakpoint",
	[KVMI_EVENT_CR] = "cr",
	[KVMI_EVENT_MSR] = "msr",
	[KVMI_EVENT_XSETBV] = "xsetbv",
	[KVMI_EVENT_TRAP] = "trap",
	[KVMI_EVENT_DESCRIPTOR] = "descriptor",
	[KVMI_EVENT_SINGLESTEP] = "singlestep",
	[KVMI_EVENT_PAGE_FAULT] = "page_fault",
};

static volatile sig_atomic_t stop;

static void on_signal(int sig)
{
	stop = 1;
}

/* LSTAR: a write that changes it is denied. */
static int on_msr(struct guest *g, struct kvmi_vcpu *vcpu,
		  const struct kvmi_event *ev)
{
	const struct kvmi_event_msr *m = kvmi_event_as_msr(ev);

	if (!m)		/* malformed: never written by the kernel */
		return kvmi_vcpu_reply_msr(vcpu, KVMI_ACTION_CONTINUE, 0, NULL);
	if (m->msr != MSR_LSTAR || m->new_value == m->old_value)
		return kvmi_vcpu_reply_msr(vcpu, KVMI_ACTION_CONTINUE, 0, NULL);
	g->agent->denied[ev->id]++;
	printf("guest %" PRIu64 " vcpu %u: denied MSR LSTAR write 0x%" PRIx64
	       " -> 0x%" PRIx64 " at rip 0x%llx\n", g->id, ev->vcpu,
	       (uint64_t)m->old_value, (uint64_t)m->new_value,
	       (unsigned long long)ev->regs.rip);
	return kvmi_vcpu_reply_msr(vcpu, KVMI_ACTION_DENY, 0, NULL);
}

/* CR4: a write that clears SMEP or SMAP is denied; others go through. */
static int on_cr(struct guest *g, struct kvmi_vcpu *vcpu,
		 const struct kvmi_event *ev)
{
	const struct kvmi_event_cr *c = kvmi_event_as_cr(ev);
	uint64_t cleared;

	if (!c)		/* malformed: never written by the kernel */
		return kvmi_vcpu_reply_cr(vcpu, KVMI_ACTION_CONTINUE, 0, NULL);
	cleared = c->old_value & ~c->new_value & CR4_GUARDED;
	if (c->cr != 4 || !cleared)
		return kvmi_vcpu_reply_cr(vcpu, KVMI_ACTION_CONTINUE, 0, NULL);
	g->agent->denied[ev->id]++;
	printf("guest %" PRIu64 " vcpu %u: denied CR4 write 0x%" PRIx64
	       " -> 0x%" PRIx64 " (clears%s%s) at rip 0x%llx\n", g->id,
	       ev->vcpu, (uint64_t)c->old_value, (uint64_t)c->new_value,
	       cleared & CR4_SMEP ? " SMEP" : "",
	       cleared & CR4_SMAP ? " SMAP" : "",
	       (unsigned long long)ev->regs.rip);
	return kvmi_vcpu_reply_cr(vcpu, KVMI_ACTION_DENY, 0, NULL);
}

/*
 * A write to the protected text page: the instruction is emulated with
 * its memory writes discarded (EMUL_NOWRITE), the page stays as it was.
 * Reached only with a kernel that has the PAGE_FAULT event.
 */
static int on_page_fault(struct guest *g, struct kvmi_vcpu *vcpu,
			 const struct kvmi_event *ev)
{
	const struct kvmi_event_page_fault *pf = kvmi_event_as_page_fault(ev);

	if (!pf || !(pf->access & KVMI_PAGE_ACCESS_W) ||
	    !(kvmi_dom_features(kvmi_vcpu_dom(vcpu)) &
	      KVMI_FEATURE_PF_EMULATION))
		return kvmi_vcpu_reply_page_fault(vcpu, KVMI_ACTION_CONTINUE,
						  NULL);
	g->agent->denied[ev->id]++;
	printf("guest %" PRIu64 " vcpu %u: denied text write gpa 0x%llx"
	       " at rip 0x%llx\n", g->id, ev->vcpu,
	       (unsigned long long)pf->gpa,
	       (unsigned long long)ev->regs.rip);
	return kvmi_vcpu_reply_page_fault(vcpu, KVMI_ACTION_EMUL_NOWRITE, NULL);
}

static int on_event(struct kvmi_vcpu *vcpu, const struct kvmi_event *ev,
		    void *arg)
{
	struct guest *g = arg;
	int r;

	if (ev->id < NR_KINDS)
		g->agent->events[ev->id]++;
	switch (ev->id) {
	case KVMI_EVENT_MSR:
		r = on_msr(g, vcpu, ev);
		break;
	case KVMI_EVENT_CR:
		r = on_cr(g, vcpu, ev);
		break;
	case KVMI_EVENT_PAGE_FAULT:
		r = on_page_fault(g, vcpu, ev);
		break;
	default:
		r = kvmi_vcpu_reply(vcpu, KVMI_ACTION_CONTINUE, 0, NULL, NULL);
	}
	fflush(stdout);
	return r;
}

/* The text page: writes forbidden, reads and execution allowed. */
static void protect_text(struct agent *a, struct kvmi_dom *dom,
			 const char *name)
{
	uint64_t gpa = a->text_gpa & ~0xfffULL;
	int r;

	if (kvmi_dom_check_event(dom, KVMI_EVENT_PAGE_FAULT) ||
	    !(kvmi_dom_features(dom) & KVMI_FEATURE_PF_EMULATION)) {
		printf("%s: text page not protected: %s\n", name,
		       "the kernel has no PAGE_FAULT event with EMUL_NOWRITE");
		return;
	}
	r = kvmi_dom_control_event(dom, KVMI_ALL_VCPUS, KVMI_EVENT_PAGE_FAULT,
				   1, 0);
	if (!r)
		r = kvmi_dom_set_pages_access(dom, &gpa, 1,
					      KVMI_PAGE_ACCESS_R |
					      KVMI_PAGE_ACCESS_X, NULL);
	if (r)
		printf("%s: text page not protected: %s\n", name, strerror(-r));
	else
		printf("%s: protecting text page 0x%llx\n", name,
		       (unsigned long long)gpa);
}

/* Watch the registers on every vCPU, present and to come; then serve. */
static int protect(struct agent *a, struct kvmi_dom *dom, uint64_t id,
		   pid_t pid)
{
	char name[48];
	int i, r;

	for (i = 0; i < MAX_GUESTS && a->guests[i].dom; i++)
		;
	if (i == MAX_GUESTS) {
		kvmi_dom_close(dom);
		return -ENOSPC;
	}
	snprintf(name, sizeof(name), "guest %" PRIu64 " pid %d", id, (int)pid);
	r = kvmi_dom_set_wait_mode(dom, KVMI_ALL_VCPUS, KVMI_WAIT_BLOCK, 0);
	if (!r)
		r = kvmi_dom_control_msr(dom, KVMI_ALL_VCPUS, MSR_LSTAR, 1);
	if (!r)
		r = kvmi_dom_control_cr(dom, KVMI_ALL_VCPUS, 4, 1);
	a->guests[i].id = id;
	a->guests[i].agent = a;
	if (!r)
		r = kvmi_uring_add(a->loop, dom, on_event, &a->guests[i]);
	if (r) {
		printf("%s: not protected: %s\n", name, strerror(-r));
		kvmi_dom_close(dom);
		return r;
	}
	a->guests[i].dom = dom;
	printf("%s: protecting LSTAR, CR4.SMEP, CR4.SMAP\n", name);
	if (a->text_gpa != ~0ULL)
		protect_text(a, dom, name);
	fflush(stdout);
	return 0;
}

static void forget(struct agent *a, uint64_t id)
{
	int i;

	for (i = 0; i < MAX_GUESTS; i++) {
		if (!a->guests[i].dom || a->guests[i].id != id)
			continue;
		kvmi_uring_remove(a->loop, a->guests[i].dom);
		kvmi_dom_close(a->guests[i].dom);
		a->guests[i].dom = NULL;
		printf("guest %" PRIu64 ": gone\n", id);
	}
}

/* Discovery: attach to each guest as it comes (unless it opted out). */
static int on_guest(struct kvmi_disc *disc,
		    const struct kvmi_guest_record *rec, void *arg)
{
	struct agent *a = arg;
	struct kvmi_dom *dom;
	int r;

	if (rec->type == KVMI_GUEST_OFF) {
		forget(a, rec->id);
	} else if (!(rec->flags & KVMI_GUEST_OPTED_OUT)) {
		r = kvmi_dom_open_guest(disc, rec->id, &dom);
		if (r)
			printf("guest %llu: not attached: %s\n",
			       (unsigned long long)rec->id, strerror(-r));
		else
			protect(a, dom, rec->id, rec->pid);
	}
	fflush(stdout);
	return 0;
}

/* -s PATH: one VMM connects and sends its VM fd. */
static int recv_vm_fd(const char *path)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int s, c, fd;

	s = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (s < 0)
		return -errno;
	strncpy(sa.sun_path, path, sizeof(sa.sun_path) - 1);
	unlink(path);
	if (bind(s, (struct sockaddr *)&sa, sizeof(sa)) || listen(s, 1)) {
		fd = -errno;
		close(s);
		return fd;
	}
	c = accept4(s, NULL, NULL, SOCK_CLOEXEC);
	fd = c < 0 ? -errno : kvmi_fd_recv(c);
	if (c >= 0)
		close(c);
	close(s);
	return fd;
}

static void print_counts(const struct agent *a)
{
	int k;

	for (k = 0; k < NR_KINDS; k++)
		if (a->events[k])
			printf("%s: %" PRIu64 " events, %" PRIu64 " denied\n",
			       kind_name[k] ? kind_name[k] : "other",
			       a->events[k], a->denied[k]);
}

static void usage(const char *prog)
{
	fprintf(stderr, "usage: %s [-t GPA] {-p PID | -s PATH | -d}\n", prog);
	exit(2);
}

int main(int argc, char **argv)
{
	struct agent a = { .text_gpa = ~0ULL };
	struct kvmi_disc *disc = NULL;
	struct kvmi_dom *dom;
	const char *path = NULL;
	pid_t pid = 0;
	int opt, fd, i, r;
	int by_disc = 0;

	while ((opt = getopt(argc, argv, "t:p:s:d")) != -1) {
		switch (opt) {
		case 't':
			a.text_gpa = strtoull(optarg, NULL, 0);
			break;
		case 'p':
			pid = atoi(optarg);
			break;
		case 's':
			path = optarg;
			break;
		case 'd':
			by_disc = 1;
			break;
		default:
			usage(argv[0]);
		}
	}
	if (optind != argc || (pid > 0) + !!path + by_disc != 1)
		usage(argv[0]);
	signal(SIGINT, on_signal);
	signal(SIGTERM, on_signal);
	r = kvmi_uring_create(64, &a.loop);
	if (r) {
		fprintf(stderr, "io_uring: %s\n", strerror(-r));
		return 1;
	}

	if (by_disc) {
		r = kvmi_disc_open(&disc);
		if (!r)	/* hands over the guests already running */
			r = kvmi_uring_add_disc(a.loop, disc, on_guest, &a);
	} else if (pid > 0) {
		r = kvmi_dom_attach_pid(pid, &dom);
		if (!r)
			r = protect(&a, dom, 0, pid);
	} else {
		fd = recv_vm_fd(path);
		r = fd < 0 ? fd : kvmi_dom_open(fd, &dom);
		if (fd >= 0)
			close(fd);	/* the dom holds its own fd */
		if (!r)
			r = protect(&a, dom, 0, 0);
	}
	if (r) {
		fprintf(stderr, "attach: %s\n", strerror(-r));
		kvmi_uring_destroy(a.loop);
		return 1;
	}

	while (!stop) {
		r = kvmi_uring_run(a.loop, 1000);
		if (r < 0 && r != -EINTR) {
			fprintf(stderr, "run: %s\n", strerror(-r));
			break;
		}
		r = 0;
	}
	for (i = 0; i < MAX_GUESTS; i++)
		if (a.guests[i].dom)
			kvmi_dom_close(a.guests[i].dom);
	kvmi_uring_destroy(a.loop);
	if (disc)
		kvmi_disc_close(disc);
	print_counts(&a);
	return r ? 1 : 0;
}
