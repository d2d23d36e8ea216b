// SPDX-License-Identifier: LGPL-2.1-or-later OR MIT
/*
 * guest-watch: guest discovery (/dev/kvmi, CAP_SYS_ADMIN). Prints each
 * guest of the host as it comes and goes; with -a, also attaches to each
 * one (unless its VMM opted out) and answers its KVMi hypercalls, in the
 * same io_uring loop: no VMM needs to know about the tool.
 *
 *   guest-watch [-a]
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <kvmi/kvmi.h>

#define MAX_DOMS	64

struct watch {
	struct kvmi_uring *loop;
	int attach;
	struct {
		uint64_t id;
		struct kvmi_dom *dom;
	} doms[MAX_DOMS];
};

static volatile sig_atomic_t stop;

static void on_signal(int sig)
{
	stop = 1;
}

static int on_event(struct kvmi_vcpu *vcpu, const struct kvmi_event *ev,
		    void *arg)
{
	uint64_t *id = arg;

	printf("guest %llu vcpu %u: event %u\n", (unsigned long long)*id,
	       ev->vcpu, ev->id);
	return kvmi_vcpu_reply(vcpu, KVMI_ACTION_CONTINUE, 0, NULL, NULL);
}

static void attach(struct watch *w, struct kvmi_disc *disc, uint64_t id)
{
	struct kvmi_dom *dom;
	int i, r;

	for (i = 0; i < MAX_DOMS && w->doms[i].dom; i++)
		;
	if (i == MAX_DOMS)
		return;
	r = kvmi_dom_open_guest(disc, id, &dom);
	if (r) {
		printf("guest %llu: not attached: %s\n",
		       (unsigned long long)id, strerror(-r));
		return;
	}
	w->doms[i].id = id;
	w->doms[i].dom = dom;
	kvmi_dom_set_wait_mode(dom, KVMI_ALL_VCPUS, KVMI_WAIT_BLOCK, 0);
	kvmi_dom_control_event(dom, KVMI_ALL_VCPUS, KVMI_EVENT_HYPERCALL, 1, 0);
	r = kvmi_uring_add(w->loop, dom, on_event, &w->doms[i].id);
	if (r) {
		printf("guest %llu: loop: %s\n", (unsigned long long)id,
		       strerror(-r));
		kvmi_dom_close(dom);
		w->doms[i].dom = NULL;
		return;
	}
	printf("guest %llu: attached\n", (unsigned long long)id);
}

/* Its VM is gone: the loop dropped the dom at the detach; free it. */
static void detach(struct watch *w, uint64_t id)
{
	int i;

	for (i = 0; i < MAX_DOMS; i++) {
		if (!w->doms[i].dom || w->doms[i].id != id)
			continue;
		kvmi_uring_remove(w->loop, w->doms[i].dom);
		kvmi_dom_close(w->doms[i].dom);
		w->doms[i].dom = NULL;
	}
}

static int on_guest(struct kvmi_disc *disc,
		    const struct kvmi_guest_record *rec, void *arg)
{
	struct watch *w = arg;
	char uuid[37];
	int i, n = 0;

	for (i = 0; i < 16; i++) {
		n += sprintf(uuid + n, "%02x", rec->uuid[i]);
		if (i == 3 || i == 5 || i == 7 || i == 9)
			uuid[n++] = '-';
	}
	printf("%s guest %llu uuid %s pid %d vcpus %u%s\n",
	       rec->type == KVMI_GUEST_ON ? "on" : "off",
	       (unsigned long long)rec->id, uuid, rec->pid, rec->nr_vcpus,
	       rec->flags & KVMI_GUEST_OPTED_OUT ? " opted-out" : "");
	if (rec->type == KVMI_GUEST_ON && w->attach &&
	    !(rec->flags & KVMI_GUEST_OPTED_OUT))
		attach(w, disc, rec->id);
	else if (rec->type == KVMI_GUEST_OFF)
		detach(w, rec->id);
	fflush(stdout);
	return 0;
}

int main(int argc, char **argv)
{
	struct watch w = { .attach = argc > 1 && !strcmp(argv[1], "-a") };
	struct kvmi_disc *disc;
	int i, r;

	if (argc > 2 || (argc == 2 && !w.attach)) {
		fprintf(stderr, "usage: %s [-a]\n", argv[0]);
		return 2;
	}
	r = kvmi_disc_open(&disc);
	if (r) {
		fprintf(stderr, "/dev/kvmi: %s\n", strerror(-r));
		return 1;
	}
	r = kvmi_uring_create(64, &w.loop);
	if (r) {
		fprintf(stderr, "io_uring: %s\n", strerror(-r));
		return 1;
	}
	signal(SIGINT, on_signal);
	/* Hands over the guests already running, then watches. */
	r = kvmi_uring_add_disc(w.loop, disc, on_guest, &w);
	while (!r && !stop) {
		r = kvmi_uring_run(w.loop, 1000);
		if (r == -EINTR)
			r = 0;
		r = r < 0 ? r : 0;
	}
	if (r)
		fprintf(stderr, "run: %s\n", strerror(-r));
	for (i = 0; i < MAX_DOMS; i++)
		if (w.doms[i].dom)
			kvmi_dom_close(w.doms[i].dom);
	kvmi_uring_destroy(w.loop);
	kvmi_disc_close(disc);
	return r ? 1 : 0;
}
