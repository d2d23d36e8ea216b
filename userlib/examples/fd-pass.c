// SPDX-License-Identifier: LGPL-2.1-or-later OR MIT
/*
 * fd-pass: the tool half of a cooperating VMM. The VMM connects to the
 * unix socket PATH and sends its VM fd (or an introspection fd it opened
 * itself with kvmi_vm_open()) with kvmi_fd_send(); the tool opens it and
 * serves one vCPU's hypercalls in hybrid mode, reading the registers with
 * a command when the kernel has it.
 *
 *   fd-pass PATH {vm|introspection}
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <kvmi/kvmi.h>

static int accept_one(const char *path)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int s, c;

	s = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (s < 0)
		return -errno;
	strncpy(sa.sun_path, path, sizeof(sa.sun_path) - 1);
	unlink(path);
	if (bind(s, (struct sockaddr *)&sa, sizeof(sa)) || listen(s, 1)) {
		c = -errno;
		close(s);
		return c;
	}
	c = accept4(s, NULL, NULL, SOCK_CLOEXEC);
	if (c < 0)
		c = -errno;
	close(s);
	return c;
}

int main(int argc, char **argv)
{
	struct kvmi_x86_regs regs;
	struct kvmi_event ev;
	struct kvmi_vcpu *vcpu;
	struct kvmi_dom *dom;
	int sock, fd, r;

	if (argc != 3) {
		fprintf(stderr, "usage: %s PATH {vm|introspection}\n", argv[0]);
		return 2;
	}
	sock = accept_one(argv[1]);
	if (sock < 0) {
		fprintf(stderr, "socket: %s\n", strerror(-sock));
		return 1;
	}
	fd = kvmi_fd_recv(sock);
	close(sock);
	if (fd < 0) {
		fprintf(stderr, "receive: %s\n", strerror(-fd));
		return 1;
	}
	if (!strcmp(argv[2], "vm")) {
		r = kvmi_dom_open(fd, &dom);
		close(fd);	/* the VM fd stays ours; not needed any more */
	} else {
		r = kvmi_dom_from_fd(fd, &dom);	/* the dom owns fd now */
		if (r)
			close(fd);
	}
	if (r) {
		fprintf(stderr, "open: %s\n", strerror(-r));
		return 1;
	}
	kvmi_dom_set_wait_mode(dom, 0, KVMI_WAIT_HYBRID, 50000);
	kvmi_dom_control_event(dom, 0, KVMI_EVENT_HYPERCALL, 1, 0);
	vcpu = kvmi_dom_vcpu(dom, 0);
	while (vcpu && !(r = kvmi_vcpu_wait_event(vcpu, &ev, -1))) {
		/* The event carries the registers; the command is a demo. */
		if (!kvmi_vcpu_get_registers(vcpu, &regs, NULL, NULL))
			printf("rip %#" PRIx64 " rax %#" PRIx64 "\n",
			       (uint64_t)regs.rip, (uint64_t)regs.rax);
		kvmi_vcpu_reply(vcpu, KVMI_ACTION_CONTINUE, 0, NULL, NULL);
	}
	if (r && r != -ENODEV)
		fprintf(stderr, "wait: %s\n", strerror(-r));
	return kvmi_dom_close(dom) ? 1 : 0;
}
