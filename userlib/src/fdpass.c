// SPDX-License-Identifier: LGPL-2.1-or-later OR MIT
/*
 * Passing an fd (a VM fd or an introspection fd) over a unix socket with
 * SCM_RIGHTS: how a VMM hands a VM to a tool in another process.
 */
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "internal.h"

/* Send @fd and one byte of payload over @sock. Returns 0 or -errno. */
int kvmi_fd_send(int sock, int fd)
{
	union {
		char buf[CMSG_SPACE(sizeof(int))];
		struct cmsghdr align;
	} u;
	char byte = 'K';
	struct iovec iov = { .iov_base = &byte, .iov_len = 1 };
	struct msghdr msg = {
		.msg_iov = &iov,
		.msg_iovlen = 1,
		.msg_control = u.buf,
		.msg_controllen = sizeof(u.buf),
	};
	struct cmsghdr *cmsg;
	ssize_t n;

	if (fd < 0)
		return -EBADF;
	memset(&u, 0, sizeof(u));
	cmsg = CMSG_FIRSTHDR(&msg);
	cmsg->cmsg_level = SOL_SOCKET;
	cmsg->cmsg_type = SCM_RIGHTS;
	cmsg->cmsg_len = CMSG_LEN(sizeof(int));
	memcpy(CMSG_DATA(cmsg), &fd, sizeof(int));
	do {
		n = sendmsg(sock, &msg, MSG_NOSIGNAL);
	} while (n < 0 && errno == EINTR);
	if (n < 0)
		return -errno;
	return n == 1 ? 0 : -EIO;
}

/*
 * Receive one fd sent by kvmi_fd_send() (close-on-exec). Returns it,
 * -EPIPE if the peer closed, -EBADMSG if the message carried no fd (or
 * more than one: the extra ones are closed).
 */
int kvmi_fd_recv(int sock)
{
	union {
		char buf[CMSG_SPACE(4 * sizeof(int))];
		struct cmsghdr align;
	} u;
	char byte;
	struct iovec iov = { .iov_base = &byte, .iov_len = 1 };
	struct msghdr msg = {
		.msg_iov = &iov,
		.msg_iovlen = 1,
		.msg_control = u.buf,
		.msg_controllen = sizeof(u.buf),
	};
	struct cmsghdr *cmsg;
	int fds[4], nfds = 0, i;
	ssize_t n;

	do {
		n = recvmsg(sock, &msg, MSG_CMSG_CLOEXEC);
	} while (n < 0 && errno == EINTR);
	if (n < 0)
		return -errno;
	if (n == 0)
		return -EPIPE;
	for (cmsg = CMSG_FIRSTHDR(&msg); cmsg; cmsg = CMSG_NXTHDR(&msg, cmsg)) {
		if (cmsg->cmsg_level != SOL_SOCKET ||
		    cmsg->cmsg_type != SCM_RIGHTS)
			continue;
		nfds = (cmsg->cmsg_len - CMSG_LEN(0)) / sizeof(int);
		if (nfds > 4)
			nfds = 4;
		memcpy(fds, CMSG_DATA(cmsg), nfds * sizeof(int));
		break;
	}
	if (nfds == 1 && !(msg.msg_flags & MSG_CTRUNC))
		return fds[0];
	for (i = 0; i < nfds; i++)
		close(fds[i]);
	return -EBADMSG;
}
