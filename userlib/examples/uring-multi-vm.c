// SPDX-License-Identifier: LGPL-2.1-or-later OR MIT
/*
 * uring-multi-vm: one thread serves every vCPU of several VMs from one
 * io_uring (multishot polls on their doorbells): the setup for many
 * VMs with rare events.
 *
 *   uring-multi-vm PID...
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <kvmi/kvmi.h>

#define MAX_VMS	32

static volatile sig_atomic_t stop;

static void on_signal(int sig)
{
	stop = 1;
}

static int on_event(struct kvmi_vcpu *vcpu, const struct kvmi_event *ev,
		    void *arg)
{
	const char *pid = arg;

	printf("vm %s vcpu %u: event %u\n", pid, ev->vcpu, ev->id);
	return kvmi_vcpu_reply(vcpu, KVMI_ACTION_CONTINUE, 0, NULL, NULL);
}

int main(int argc, char **argv)
{
	struct kvmi_dom *dom[MAX_VMS];
	struct kvmi_uring *loop;
	int i, n = 0, r;

	if (argc < 2 || argc > MAX_VMS + 1) {
		fprintf(stderr, "usage: %s PID...\n", argv[0]);
		return 2;
	}
	r = kvmi_uring_create(64, &loop);
	if (r) {
		fprintf(stderr, "io_uring: %s\n", strerror(-r));
		return 1;
	}
	for (i = 1; i < argc; i++) {
		r = kvmi_dom_attach_pid(atoi(argv[i]), &dom[n]);
		if (r) {
			fprintf(stderr, "attach %s: %s\n", argv[i], strerror(-r));
			continue;
		}
		kvmi_dom_set_wait_mode(dom[n], KVMI_ALL_VCPUS, KVMI_WAIT_BLOCK, 0);
		kvmi_dom_control_event(dom[n], KVMI_ALL_VCPUS,
				       KVMI_EVENT_HYPERCALL, 1, 0);
		r = kvmi_uring_add(loop, dom[n], on_event, argv[i]);
		if (r) {
			fprintf(stderr, "loop %s: %s\n", argv[i], strerror(-r));
			kvmi_dom_close(dom[n]);
			continue;
		}
		n++;
	}
	signal(SIGINT, on_signal);
	while (!stop && n) {
		r = kvmi_uring_run(loop, 1000);
		if (r < 0 && r != -EINTR) {
			fprintf(stderr, "run: %s\n", strerror(-r));
			break;
		}
	}
	for (i = 0; i < n; i++)
		kvmi_uring_remove(loop, dom[i]);
	kvmi_uring_destroy(loop);
	for (i = 0; i < n; i++)
		kvmi_dom_close(dom[i]);
	return 0;
}
