// SPDX-License-Identifier: LGPL-2.1-or-later OR MIT
/*
 * hypercall-log: attach to a running VMM by pid and log every KVMi
 * hypercall its guest makes, from the tool's own poll() loop over the
 * library's one pollable fd. Ctrl-C leaves cleanly (pending events are
 * answered first). With -s, over the socket transport: nothing else in
 * the tool changes.
 *
 *   hypercall-log [-s] PID
 */
#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <kvmi/kvmi.h>

static volatile sig_atomic_t stop;

static void on_signal(int sig)
{
	stop = 1;
}

static int log_event(struct kvmi_vcpu *vcpu, const struct kvmi_event *ev,
		     void *arg)
{
	unsigned long *count = arg;

	(*count)++;
	printf("vcpu %u: hypercall rbx=%#" PRIx64 " rcx=%#" PRIx64
	       " rdx=%#" PRIx64 " rsi=%#" PRIx64 " at rip %#" PRIx64 "\n",
	       ev->vcpu, (uint64_t)ev->regs.rbx, (uint64_t)ev->regs.rcx,
	       (uint64_t)ev->regs.rdx, (uint64_t)ev->regs.rsi,
	       (uint64_t)ev->regs.rip);
	return kvmi_vcpu_reply(vcpu, KVMI_ACTION_CONTINUE, 0, NULL, NULL);
}

int main(int argc, char **argv)
{
	struct pollfd pfd = { .events = POLLIN };
	unsigned long count = 0;
	struct kvmi_dom *dom;
	int sock = 0, r;

	if (argc == 3 && !strcmp(argv[1], "-s")) {
		sock = 1;
		argv++;
		argc--;
	}
	if (argc != 2) {
		fprintf(stderr, "usage: %s [-s] PID\n", argv[0]);
		return 2;
	}
	r = sock ? kvmi_dom_attach_pid_socket(atoi(argv[1]), &dom) :
		   kvmi_dom_attach_pid(atoi(argv[1]), &dom);
	if (r) {
		fprintf(stderr, "attach to %s%s: %s\n", argv[1],
			sock ? " over a socket" : "", strerror(-r));
		return 1;
	}
	/* Few events, a tool that sleeps: both sides block. */
	r = kvmi_dom_set_wait_mode(dom, KVMI_ALL_VCPUS, KVMI_WAIT_BLOCK, 0);
	if (!r)
		r = kvmi_dom_control_event(dom, KVMI_ALL_VCPUS,
					   KVMI_EVENT_HYPERCALL, 1, 0);
	pfd.fd = kvmi_dom_pollfd(dom);
	if (r || pfd.fd < 0) {
		fprintf(stderr, "setup: %s\n", strerror(r ? -r : -pfd.fd));
		kvmi_dom_close(dom);
		return 1;
	}
	signal(SIGINT, on_signal);
	signal(SIGTERM, on_signal);
	while (!stop) {
		if (poll(&pfd, 1, -1) < 0)
			continue;	/* EINTR: look at stop */
		r = kvmi_dom_dispatch(dom, log_event, &count);
		if (r == -ENODEV) {
			printf("introspection ended\n");
			break;
		}
		if (kvmi_dom_state_flags(dom) & KVMI_VM_UNHOOK) {
			printf("the VMM asks us to leave\n");
			break;
		}
	}
	printf("%lu hypercalls\n", count);
	return kvmi_dom_close(dom) ? 1 : 0;
}
