// SPDX-License-Identifier: GPL-2.0-only
/*
 * kvmi_hook.so: run an unmodified KVM program with introspection hooked.
 *
 * LD_PRELOAD=kvmi_hook.so PROGRAM: every VM the program creates with
 * KVM_CREATE_VM gets introspection opened on it at once, as a tool holding
 * the VM fd would do, with the layout read and every region mapped: the
 * VM-wide state read-only, each vCPU's kernel-written area read-only and
 * its tool-written area read-write. No event is enabled, so the program's
 * guests run as they would unhooked; what this exercises is the hooked
 * VM's life: vCPUs created after the hook, memslot changes, VM destruction
 * with the introspection fd and the mappings still held (they are kept to
 * the program's exit).
 *
 * If introspection cannot be opened on a VM the program created, the shim
 * says why and ends the program with status 1: a hooked run must never
 * pass unhooked. With KVMI_HOOK_LOG=FILE, each hooked VM appends a line
 * to FILE (from any process or thread of the program), so the runner can
 * tell how many VMs a test ran hooked.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>
#include <linux/kvm.h>
#include <linux/kvmi.h>

typedef int (*ioctl_fn)(int, unsigned long, ...);

static void die(const char *what, int err)
{
	fprintf(stderr, "kvmi_hook: %s: %s\n", what, strerror(err));
	_exit(1);
}

static void log_hook(int vm_fd, int fd)
{
	const char *path = getenv("KVMI_HOOK_LOG");
	char line[64];
	FILE *f;

	if (!path)
		return;
	f = fopen(path, "ae");
	if (!f)
		die(path, errno);
	snprintf(line, sizeof(line), "%d vm fd %d kvmi fd %d\n",
		 (int)getpid(), vm_fd, fd);
	fputs(line, f);
	if (fclose(f))
		die(path, errno);
}

static void map_region(int fd, __u64 off, __u64 len, int prot)
{
	void *p;

	if (!len)
		return;
	p = mmap(NULL, len, prot, MAP_SHARED, fd, off);
	if (p == MAP_FAILED)
		die("mmap of an introspection region", errno);
}

static void hook(ioctl_fn real, int vm_fd)
{
	struct kvmi_open op = {
		.size = sizeof(op),
		.transport = KVMI_TRANSPORT_RING,
	};
	struct kvmi_layout lay = { .size = sizeof(lay) };
	int fd;

	fd = real(vm_fd, KVM_INTROSPECTION_OPEN, &op);
	if (fd < 0)
		die("KVM_INTROSPECTION_OPEN", errno);
	if (real(fd, KVMI_IOCTL_GET_LAYOUT, &lay))
		die("KVMI_IOCTL_GET_LAYOUT", errno);
	map_region(fd, lay.vm_offset, lay.vm_size, PROT_READ);
	map_region(fd, lay.kernel_offset,
		   (__u64)lay.kernel_stride * lay.max_vcpus, PROT_READ);
	map_region(fd, lay.tool_offset, (__u64)lay.tool_stride * lay.max_vcpus,
		   PROT_READ | PROT_WRITE);
	log_hook(vm_fd, fd);
}

int ioctl(int fd, unsigned long req, ...)
{
	static ioctl_fn real;
	va_list ap;
	void *arg;
	int ret;

	va_start(ap, req);
	arg = va_arg(ap, void *);
	va_end(ap);
	if (!real) {
		real = (ioctl_fn)dlsym(RTLD_NEXT, "ioctl");
		if (!real)
			die("dlsym(ioctl)", ENOSYS);
	}
	ret = real(fd, req, arg);
	if (req == KVM_CREATE_VM && ret >= 0) {
		int saved = errno;

		hook(real, ret);
		errno = saved;
	}
	return ret;
}
