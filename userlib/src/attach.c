// SPDX-License-Identifier: LGPL-2.1-or-later OR MIT
/*
 * Attaching to a running, unmodified VMM by pid: find its VM fds by their
 * anon-inode name ("anon_inode:kvm-vm" in /proc/PID/fd) and copy one with
 * pidfd_getfd(), which needs PTRACE_MODE_ATTACH_REALCREDS over the VMM
 * (same user and ptrace allowed, or CAP_SYS_PTRACE).
 */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "internal.h"

#ifndef SYS_pidfd_open
#define SYS_pidfd_open	434
#endif
#ifndef SYS_pidfd_getfd
#define SYS_pidfd_getfd	438
#endif

#define KVM_VM_INODE_NAME	"anon_inode:kvm-vm"

/*
 * The fd numbers, in process @pid, of its KVM VM fds, in increasing
 * order: up to @max of them are stored in @fds; returns how many there
 * are (maybe more than @max), or -ESRCH (no such process), -EACCES (not
 * allowed to look at its fds), -errno.
 */
__cold int kvmi_pid_find_vm_fds(pid_t pid, int *fds, size_t max)
{
	char dir[64], path[352], target[64];
	struct dirent *de;
	size_t n = 0, i;
	ssize_t len;
	DIR *d;
	long fd;
	char *end;

	if (pid <= 0 || (max && !fds))
		return -EINVAL;
	snprintf(dir, sizeof(dir), "/proc/%d/fd", (int)pid);
	d = opendir(dir);
	if (!d)
		return errno == ENOENT ? -ESRCH : -errno;
	while ((de = readdir(d))) {
		fd = strtol(de->d_name, &end, 10);
		if (*end || end == de->d_name || fd < 0 || fd > INT32_MAX)
			continue;
		snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
		len = readlink(path, target, sizeof(target) - 1);
		if (len < 0)
			continue;	/* closed meanwhile */
		target[len] = '\0';
		if (strcmp(target, KVM_VM_INODE_NAME))
			continue;
		/* Insertion sort: the fds of one process are few. */
		if (n < max) {
			for (i = n; i > 0 && fds[i - 1] > fd; i--)
				fds[i] = fds[i - 1];
			fds[i] = fd;
		}
		n++;
	}
	closedir(d);
	return n > INT32_MAX ? INT32_MAX : (int)n;
}

/*
 * A copy, in this process, of fd @target_fd of process @pid (close on
 * exec). -ESRCH: no such process; -EPERM: not privileged enough over it;
 * -EBADF: no such fd there; -ENOSYS: kernel older than 5.6.
 */
__cold int kvmi_pid_getfd(pid_t pid, int target_fd)
{
	int pidfd, fd, err;

	if (pid <= 0 || target_fd < 0)
		return -EINVAL;
	pidfd = syscall(SYS_pidfd_open, pid, 0);
	if (pidfd < 0)
		return -errno;
	fd = syscall(SYS_pidfd_getfd, pidfd, target_fd, 0);
	err = errno;
	close(pidfd);
	return fd < 0 ? -err : fd;
}

/*
 * Open introspection on the (first) VM of process @pid. -ENOENT: it holds
 * no VM fd; -EPERM / -EACCES: not privileged enough; -ESRCH: no such
 * process; else the errors of kvmi_dom_open().
 */
__cold int kvmi_dom_attach_pid(pid_t pid, struct kvmi_dom **domp)
{
	int target, vm_fd, r;

	if (!domp)
		return -EINVAL;
	r = kvmi_pid_find_vm_fds(pid, &target, 1);
	if (r < 0)
		return r;
	if (r == 0)
		return -ENOENT;
	vm_fd = kvmi_pid_getfd(pid, target);
	if (vm_fd < 0)
		return vm_fd;
	r = kvmi_dom_open(vm_fd, domp);
	close(vm_fd);
	return r;
}
