// SPDX-License-Identifier: GPL-2.0-only
/*
 * kvmi-ring: guest discovery through /dev/kvmi (GUEST_ON and GUEST_OFF
 * records, GET_GUESTS, OPEN_GUEST) and the VMM's UUID and opt-out
 * (Documentation/virt/kvm/kvmi.rst, section 20).
 *
 * The test process is both the VMM and the tool: it creates VMs and
 * watches the device. A VM is announced at its first vCPU.
 */
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <linux/capability.h>

#include "kselftest_harness.h"
#include "kvmi_util.h"
#include "processor.h"
#include "ucall_common.h"

#define KVMI_DEV	"/dev/kvmi"

/* A VM, and the fd of its one vCPU made with a raw KVM_CREATE_VCPU. */
struct guest {
	struct kvm_vm *vm;
	int vcpu_fd;
};

static void guest_vcpu(struct guest *g)
{
	g->vcpu_fd = __vm_ioctl(g->vm, KVM_CREATE_VCPU, (void *)0);
	TEST_ASSERT(g->vcpu_fd >= 0,
		    __KVM_SYSCALL_ERROR("KVM_CREATE_VCPU", g->vcpu_fd));
}

/* A VM with no memory; with @vcpu, one vCPU, which announces it. */
static void guest_new(struct guest *g, bool vcpu)
{
	g->vm = vm_create_barebones();
	g->vcpu_fd = -1;
	if (vcpu)
		guest_vcpu(g);
}

/* Close every fd of the VM: it is destroyed now. */
static void guest_free(struct guest *g)
{
	if (g->vcpu_fd >= 0)
		close(g->vcpu_fd);
	kvm_vm_free(g->vm);
	g->vm = NULL;
}

static int dev_open(void)
{
	int fd = open(KVMI_DEV, O_RDWR | O_NONBLOCK | O_CLOEXEC);

	TEST_ASSERT(fd >= 0, "open(%s): %s", KVMI_DEV, strerror(errno));
	return fd;
}

/* Skip on a kernel without kvmi-ring, then open the device. */
#define DEV_REQUIRE() ({						\
	KVMI_REQUIRE();							\
	TEST_REQUIRE(!access(KVMI_DEV, F_OK));				\
	dev_open();							\
})

/* Read exactly one record; fails if there is none. */
static void read_record(int fd, struct kvmi_guest_record *rec)
{
	ssize_t n = read(fd, rec, sizeof(*rec));

	TEST_ASSERT(n == sizeof(*rec), "read(/dev/kvmi): %zd, %s", n,
		    strerror(errno));
}

static bool queue_empty(int fd)
{
	struct kvmi_guest_record rec;
	ssize_t n = read(fd, &rec, sizeof(rec));

	return n < 0 && errno == EAGAIN;
}

static void get_uuid(struct kvm_vm *vm, uint8_t uuid[16])
{
	struct kvmi_guest_uuid u;

	memset(&u, 0xff, sizeof(u));
	vm_ioctl(vm, KVM_INTROSPECTION_GET_UUID, &u);
	TEST_ASSERT(!u.flags && !u.padding, "GET_UUID: padding written");
	memcpy(uuid, u.uuid, 16);
}

static int __get_guests(int fd, struct kvmi_guest_list *gl,
			struct kvmi_guest_record *recs, uint32_t count)
{
	memset(gl, 0, sizeof(*gl));
	gl->guests = (uintptr_t)recs;
	gl->count = count;
	return ioctl(fd, KVMI_DEV_GET_GUESTS, gl);
}

/* The record of guest @id in a GET_GUESTS list, or NULL. */
static struct kvmi_guest_record *
find_guest(struct kvmi_guest_record *recs, uint32_t n, uint64_t id)
{
	uint32_t i;

	for (i = 0; i < n; i++)
		if (recs[i].id == id)
			return &recs[i];
	return NULL;
}

static int __open_guest(int fd, uint64_t id, struct kvmi_open *op)
{
	struct kvmi_open_guest og = {
		.id = id,
		.open = (uintptr_t)op,
	};

	return ioctl(fd, KVMI_DEV_OPEN_GUEST, &og);
}

TEST(info)
{
	struct kvmi_discovery_info info;
	int fd = DEV_REQUIRE();

	memset(&info, 0xff, sizeof(info));
	ASSERT_EQ(0, ioctl(fd, KVMI_DEV_GET_INFO, &info));
	ASSERT_EQ(KVMI_VERSION, info.version);
	ASSERT_EQ(sizeof(struct kvmi_guest_record), info.record_size);
	ASSERT_LT(0, info.queue_len);
	ASSERT_EQ(0, info.padding);
	ASSERT_EQ(0, info.reserved[0]);
	ASSERT_EQ(0, info.reserved[1]);
	close(fd);
}

/* Without CAP_SYS_ADMIN, even root can't open the device. */
TEST(unprivileged_open_refused)
{
	int status, fd = DEV_REQUIRE();
	pid_t pid;

	close(fd);
	pid = fork();
	ASSERT_LE(0, pid);
	if (!pid) {
		struct __user_cap_header_struct hdr = {
			.version = _LINUX_CAPABILITY_VERSION_3,
		};
		struct __user_cap_data_struct data[2];
		int idx = CAP_TO_INDEX(CAP_SYS_ADMIN);
		__u32 mask = CAP_TO_MASK(CAP_SYS_ADMIN);

		if (syscall(SYS_capget, &hdr, data))
			_exit(10);
		data[idx].effective &= ~mask;
		data[idx].permitted &= ~mask;
		data[idx].inheritable &= ~mask;
		if (syscall(SYS_capset, &hdr, data))
			_exit(11);
		fd = open(KVMI_DEV, O_RDWR);
		if (fd >= 0)
			_exit(12);
		_exit(errno == EPERM ? 0 : 13);
	}
	ASSERT_EQ(pid, waitpid(pid, &status, 0));
	ASSERT_TRUE(WIFEXITED(status));
	ASSERT_EQ(0, WEXITSTATUS(status));
}

/* GUEST_ON at the first vCPU, GUEST_OFF at destruction, in order. */
TEST(on_and_off_in_order)
{
	struct kvmi_guest_record rec, on[3];
	struct guest g[3], novcpu;
	struct pollfd pfd;
	uint8_t uuid[16];
	int i, vcpu1, fd = DEV_REQUIRE();

	pfd.fd = fd;
	pfd.events = POLLIN;
	ASSERT_EQ(0, poll(&pfd, 1, 0));
	ASSERT_TRUE(queue_empty(fd));

	/* A VM without vCPU is not a guest yet: no record, on or off. */
	guest_new(&novcpu, false);
	ASSERT_TRUE(queue_empty(fd));
	guest_free(&novcpu);
	ASSERT_TRUE(queue_empty(fd));

	for (i = 0; i < 3; i++)
		guest_new(&g[i], true);
	/* A second vCPU is no new record. */
	vcpu1 = __vm_ioctl(g[1].vm, KVM_CREATE_VCPU, (void *)1);
	ASSERT_LE(0, vcpu1);
	ASSERT_EQ(1, poll(&pfd, 1, 0));
	ASSERT_EQ(POLLIN, pfd.revents);

	for (i = 0; i < 3; i++) {
		read_record(fd, &on[i]);
		ASSERT_EQ(KVMI_GUEST_ON, on[i].type);
		ASSERT_EQ(0, on[i].flags);
		ASSERT_EQ(getpid(), on[i].pid);
		ASSERT_EQ(1, on[i].nr_vcpus);
		ASSERT_LT(0, on[i].max_vcpus);
		ASSERT_EQ(0, on[i].padding);
		ASSERT_NE(0, on[i].created_ns);
		get_uuid(g[i].vm, uuid);
		ASSERT_EQ(0, memcmp(uuid, on[i].uuid, 16));
		if (i) {
			ASSERT_LT(on[i - 1].seq, on[i].seq);
			ASSERT_LT(on[i - 1].id, on[i].id);
			ASSERT_LE(on[i - 1].created_ns, on[i].created_ns);
		}
	}
	ASSERT_TRUE(queue_empty(fd));

	/* Destroyed out of creation order: OFF records in destruction order. */
	guest_free(&g[2]);
	guest_free(&g[0]);
	close(vcpu1);
	guest_free(&g[1]);
	read_record(fd, &rec);
	ASSERT_EQ(KVMI_GUEST_OFF, rec.type);
	ASSERT_EQ(on[2].id, rec.id);
	ASSERT_LT(on[2].seq, rec.seq);
	ASSERT_EQ(0, memcmp(on[2].uuid, rec.uuid, 16));
	ASSERT_EQ(getpid(), rec.pid);
	ASSERT_EQ(on[2].created_ns, rec.created_ns);
	read_record(fd, &rec);
	ASSERT_EQ(KVMI_GUEST_OFF, rec.type);
	ASSERT_EQ(on[0].id, rec.id);
	read_record(fd, &rec);
	ASSERT_EQ(KVMI_GUEST_OFF, rec.type);
	ASSERT_EQ(on[1].id, rec.id);
	ASSERT_EQ(2, rec.nr_vcpus);
	ASSERT_TRUE(queue_empty(fd));
	close(fd);
}

/* One read() returns as many whole records as fit. */
TEST(read_several_records)
{
	struct kvmi_guest_record recs[3];
	struct guest g[2];
	int fd = DEV_REQUIRE();

	guest_new(&g[0], true);
	guest_new(&g[1], true);
	ASSERT_EQ(-1, read(fd, recs, sizeof(recs[0]) - 1));
	ASSERT_EQ(EINVAL, errno);
	/* Room for 2.5 records: 2 are returned, nothing is lost. */
	ASSERT_EQ(2 * sizeof(recs[0]),
		  read(fd, recs, sizeof(recs) - sizeof(recs[0]) / 2));
	ASSERT_EQ(KVMI_GUEST_ON, recs[0].type);
	ASSERT_EQ(KVMI_GUEST_ON, recs[1].type);
	ASSERT_LT(recs[0].seq, recs[1].seq);
	guest_free(&g[0]);
	guest_free(&g[1]);
	ASSERT_EQ(2 * sizeof(recs[0]), read(fd, recs, sizeof(recs)));
	ASSERT_EQ(KVMI_GUEST_OFF, recs[0].type);
	ASSERT_EQ(KVMI_GUEST_OFF, recs[1].type);
	close(fd);
}

static void *create_guest_fn(void *arg)
{
	guest_new(arg, true);
	return NULL;
}

/* A blocking read() sleeps until a guest appears. */
TEST(blocking_read_wakes_up)
{
	struct kvmi_guest_record rec;
	struct guest g;
	pthread_t t;
	int fd = DEV_REQUIRE();

	ASSERT_EQ(0, fcntl(fd, F_SETFL, 0));
	ASSERT_EQ(0, pthread_create(&t, NULL, create_guest_fn, &g));
	read_record(fd, &rec);
	ASSERT_EQ(KVMI_GUEST_ON, rec.type);
	pthread_join(t, NULL);
	guest_free(&g);
	close(fd);
}

/*
 * Stall the tool past the queue: the queue keeps the oldest records, then
 * OVERFLOW tells to call GET_GUESTS, which lists exactly the guests left.
 */
TEST(overflow_then_get_guests)
{
	struct kvmi_guest_record rec, *recs, *r;
	struct kvmi_discovery_info info;
	struct kvmi_guest_list gl;
	struct guest alive[4], tmp;
	uint64_t ids[4], first_seq = 0, last_seq = 0, gone_id = 0;
	uint32_t i, records = 0;
	int fd = DEV_REQUIRE();

	ASSERT_EQ(0, ioctl(fd, KVMI_DEV_GET_INFO, &info));

	guest_new(&alive[0], true);
	guest_new(&alive[1], true);
	/* Twice the queue's worth of records, without reading. */
	for (i = 0; i < info.queue_len; i++) {
		guest_new(&tmp, true);
		guest_free(&tmp);
	}
	guest_new(&alive[2], true);
	guest_new(&alive[3], true);

	/* The queue holds the first queue_len records, in order. */
	for (;;) {
		read_record(fd, &rec);
		if (rec.type == KVMI_GUEST_OVERFLOW)
			break;
		ASSERT_TRUE(rec.type == KVMI_GUEST_ON ||
			    rec.type == KVMI_GUEST_OFF);
		if (!records)
			first_seq = rec.seq;
		ASSERT_EQ(first_seq + records, rec.seq);
		if (rec.type == KVMI_GUEST_OFF)
			gone_id = rec.id;
		last_seq = rec.seq;
		if (records < 2)
			ids[records] = rec.id;
		records++;
	}
	ASSERT_EQ(info.queue_len, records);
	/* OVERFLOW names the first record lost, and nothing else. */
	ASSERT_EQ(last_seq + 1, rec.seq);
	ASSERT_EQ(0, rec.id);
	ASSERT_TRUE(queue_empty(fd));
	ASSERT_NE(0, gone_id);

	/* GET_GUESTS: exact as of a seq after every record made. */
	ASSERT_EQ(0, __get_guests(fd, &gl, NULL, 0));
	ASSERT_LE(4, gl.total);
	ASSERT_EQ(0, gl.count);
	recs = calloc(gl.total + 8, sizeof(*recs));
	ASSERT_NE(NULL, recs);
	ASSERT_EQ(0, __get_guests(fd, &gl, recs, gl.total + 8));
	ASSERT_EQ(gl.total, gl.count);
	ASSERT_EQ(first_seq + 2 * info.queue_len + 3, gl.seq);
	ASSERT_EQ(NULL, find_guest(recs, gl.count, gone_id));
	ASSERT_NE(NULL, find_guest(recs, gl.count, ids[0]));
	ASSERT_NE(NULL, find_guest(recs, gl.count, ids[1]));
	for (i = 0; i < gl.count; i++) {
		ASSERT_EQ(KVMI_GUEST_ON, recs[i].type);
		ASSERT_GE(gl.seq, recs[i].seq);
	}
	/* The two created after the loss are there, the newest last. */
	r = &recs[gl.count - 1];
	ASSERT_EQ(gl.seq, r->seq);
	ASSERT_EQ(getpid(), r->pid);
	ASSERT_EQ(r - 1, find_guest(recs, gl.count, r->id - 1));
	ASSERT_EQ(gl.seq - 1, (r - 1)->seq);

	/* Records flow again once OVERFLOW has been read. */
	guest_free(&alive[3]);
	read_record(fd, &rec);
	ASSERT_EQ(KVMI_GUEST_OFF, rec.type);
	ASSERT_EQ(r->id, rec.id);
	ASSERT_EQ(gl.seq + 1, rec.seq);

	free(recs);
	for (i = 0; i < 3; i++)
		guest_free(&alive[i]);
	close(fd);
}

/* GET_GUESTS with less room than guests fills what fits. */
TEST(get_guests_short_buffer)
{
	struct kvmi_guest_record recs[2], rec;
	struct kvmi_guest_list gl;
	struct guest g[3];
	int i, fd = DEV_REQUIRE();

	for (i = 0; i < 3; i++)
		guest_new(&g[i], true);
	for (i = 0; i < 3; i++)
		read_record(fd, &rec);
	ASSERT_EQ(0, __get_guests(fd, &gl, recs, 1));
	ASSERT_EQ(1, gl.count);
	ASSERT_LE(3, gl.total);
	ASSERT_EQ(rec.seq, gl.seq);
	ASSERT_EQ(KVMI_GUEST_ON, recs[0].type);
	for (i = 0; i < 3; i++)
		guest_free(&g[i]);
	close(fd);
}

/* OPEN_GUEST: the introspection fd of KVM_INTROSPECTION_OPEN. */
TEST(open_guest_gives_introspection_fd)
{
	struct kvmi_open op = kvmi_open_args();
	struct kvmi_guest_record rec;
	struct kvmi_version ver;
	struct guest g;
	int ifd, fd = DEV_REQUIRE();

	guest_new(&g, true);
	read_record(fd, &rec);
	ifd = __open_guest(fd, rec.id, &op);
	ASSERT_LE(0, ifd);
	ASSERT_EQ(FD_CLOEXEC, fcntl(ifd, F_GETFD) & FD_CLOEXEC);
	kvmi_get_version(ifd, &ver);
	ASSERT_EQ(KVMI_VERSION, ver.version);

	/* One introspection per VM, whichever way it was opened. */
	ASSERT_EQ(-1, __open_guest(fd, rec.id, &op));
	ASSERT_EQ(EBUSY, errno);
	ASSERT_EQ(-1, __kvmi_open(g.vm->fd, &op));
	ASSERT_EQ(EBUSY, errno);

	/* Closing the device loses nothing but the notifications. */
	close(fd);
	kvmi_get_version(ifd, &ver);
	close(ifd);

	/* Closed: the VM fd may open it now. */
	ifd = kvmi_open(g.vm);
	close(ifd);
	guest_free(&g);
}

/* The allow-lists the VMM set apply to a tool that came by the device. */
TEST(open_guest_keeps_allow_lists)
{
	struct kvmi_open op = kvmi_open_args();
	struct kvmi_allowed al = {};
	struct kvmi_guest_record rec;
	struct guest g;
	int ifd, fd = DEV_REQUIRE();

	guest_new(&g, true);
	vm_ioctl(g.vm, KVM_INTROSPECTION_SET_ALLOWED, &al);
	read_record(fd, &rec);
	ifd = __open_guest(fd, rec.id, &op);
	ASSERT_LE(0, ifd);
	ASSERT_EQ(-1, __kvmi_control_events(ifd, 0, KVMI_EVENT_HYPERCALL, 1));
	ASSERT_EQ(EPERM, errno);
	close(ifd);
	guest_free(&g);
	close(fd);
}

static void guest_hypercall(void)
{
	uint64_t ret;

	asm volatile("vmmcall" : "=a"(ret)
		     : "a"((uint64_t)KVM_HC_KVMI), "b"(1UL), "c"(2UL),
		       "d"(3UL), "S"(4UL)
		     : "memory");
	GUEST_DONE();
}

static void *run_vcpu_fn(void *arg)
{
	struct kvm_vcpu *vcpu = arg;

	vcpu_run(vcpu);
	return NULL;
}

/* The fd from OPEN_GUEST maps and gets events like any other. */
TEST(open_guest_fd_gets_an_event)
{
	struct kvmi_open op = kvmi_open_args();
	struct kvmi_guest_record rec;
	struct kvm_vcpu *vcpu;
	struct kvmi_event *ev;
	struct kvmi_maps m;
	struct ucall uc;
	struct kvm_vm *vm;
	pthread_t t;
	uint32_t s;
	int ifd, fd = DEV_REQUIRE();

	vm = vm_create_with_one_vcpu(&vcpu, guest_hypercall);
	read_record(fd, &rec);
	ASSERT_EQ(KVMI_GUEST_ON, rec.type);
	ifd = __open_guest(fd, rec.id, &op);
	ASSERT_LE(0, ifd);
	kvmi_map_all(ifd, &m);
	kvmi_tool_state(&m, 0)->flags = KVMI_TOOL_POLLING;
	kvmi_control_events(ifd, 0, KVMI_EVENT_HYPERCALL, 1);

	ASSERT_EQ(0, pthread_create(&t, NULL, run_vcpu_fn, vcpu));
	s = kvmi_wait_event(&m, 0, -1, 0);
	ev = kvmi_event_slot(&m, 0);
	ASSERT_EQ(KVMI_EVENT_HYPERCALL, ev->id);
	ASSERT_EQ(0, ev->vcpu);
	ASSERT_EQ(1, ev->regs.rbx);
	ASSERT_EQ(4, ev->regs.rsi);
	kvmi_send_reply(&m, 0, s, KVMI_EVENT_HYPERCALL, KVMI_ACTION_CONTINUE,
			0, NULL, -1);
	pthread_join(t, NULL);
	ASSERT_EQ(UCALL_DONE, get_ucall(vcpu, &uc));
	ASSERT_EQ(1, kvmi_counters(&m, 0)->replies);

	kvmi_unmap_all(&m);
	close(ifd);
	kvm_vm_free(vm);
	close(fd);
}

/* An opted-out VM is announced, flagged, and can't be opened by id. */
TEST(opted_out_not_openable)
{
	struct kvmi_open op = kvmi_open_args();
	struct kvmi_opt_out oo = {};
	struct kvmi_guest_record rec, recs[64];
	struct kvmi_guest_list gl;
	struct guest g;
	int ifd, fd = DEV_REQUIRE();

	guest_new(&g, false);
	oo.flags = 1;
	ASSERT_EQ(-1, __vm_ioctl(g.vm, KVM_INTROSPECTION_OPT_OUT, &oo));
	ASSERT_EQ(EINVAL, errno);
	oo.flags = 0;
	oo.padding = 1;
	ASSERT_EQ(-1, __vm_ioctl(g.vm, KVM_INTROSPECTION_OPT_OUT, &oo));
	ASSERT_EQ(EINVAL, errno);
	oo.padding = 0;
	ASSERT_EQ(0, __vm_ioctl(g.vm, KVM_INTROSPECTION_OPT_OUT, &oo));
	guest_vcpu(&g);

	read_record(fd, &rec);
	ASSERT_EQ(KVMI_GUEST_ON, rec.type);
	ASSERT_EQ(KVMI_GUEST_OPTED_OUT, rec.flags);
	ASSERT_EQ(0, __get_guests(fd, &gl, recs, 64));
	ASSERT_EQ(KVMI_GUEST_OPTED_OUT,
		  find_guest(recs, gl.count, rec.id)->flags);

	ASSERT_EQ(-1, __open_guest(fd, rec.id, &op));
	ASSERT_EQ(EACCES, errno);

	/* The VM fd stays the VMM's own way in (section 20.2). */
	ifd = kvmi_open(g.vm);
	close(ifd);
	/* Opting out twice is harmless. */
	ASSERT_EQ(0, __vm_ioctl(g.vm, KVM_INTROSPECTION_OPT_OUT, &oo));

	guest_free(&g);
	read_record(fd, &rec);
	ASSERT_EQ(KVMI_GUEST_OFF, rec.type);
	ASSERT_EQ(KVMI_GUEST_OPTED_OUT, rec.flags);
	close(fd);
}

/* Opting out after a tool came in says so: the VMM may then unhook it. */
TEST(opt_out_reports_open_introspection)
{
	struct kvmi_open op = kvmi_open_args();
	struct kvmi_opt_out oo = {};
	struct kvmi_guest_record rec;
	struct guest g;
	int ifd, fd = DEV_REQUIRE();

	guest_new(&g, true);
	read_record(fd, &rec);
	ifd = __open_guest(fd, rec.id, &op);
	ASSERT_LE(0, ifd);
	ASSERT_EQ(1, __vm_ioctl(g.vm, KVM_INTROSPECTION_OPT_OUT, &oo));
	close(ifd);
	ASSERT_EQ(0, __vm_ioctl(g.vm, KVM_INTROSPECTION_OPT_OUT, &oo));
	ASSERT_EQ(-1, __open_guest(fd, rec.id, &op));
	ASSERT_EQ(EACCES, errno);
	guest_free(&g);
	close(fd);
}

/* The VMM's UUID, or a generated one that stays the same. */
TEST(uuid_set_and_read_back)
{
	struct kvmi_guest_uuid u = {};
	struct kvmi_guest_record rec;
	uint8_t a[16], b[16];
	struct guest g, h;
	int i, fd = DEV_REQUIRE();

	guest_new(&g, false);
	get_uuid(g.vm, a);
	get_uuid(g.vm, b);
	ASSERT_EQ(0, memcmp(a, b, 16));
	/* Random, version 4, RFC 4122 variant. */
	ASSERT_EQ(0x40, a[6] & 0xf0);
	ASSERT_EQ(0x80, a[8] & 0xc0);
	guest_new(&h, false);
	get_uuid(h.vm, b);
	ASSERT_NE(0, memcmp(a, b, 16));
	guest_free(&h);

	/* All zero, flags, padding: refused, the UUID stays. */
	ASSERT_EQ(-1, __vm_ioctl(g.vm, KVM_INTROSPECTION_SET_UUID, &u));
	ASSERT_EQ(EINVAL, errno);
	for (i = 0; i < 16; i++)
		u.uuid[i] = 0xa0 + i;
	u.flags = 1;
	ASSERT_EQ(-1, __vm_ioctl(g.vm, KVM_INTROSPECTION_SET_UUID, &u));
	ASSERT_EQ(EINVAL, errno);
	u.flags = 0;
	u.padding = 1;
	ASSERT_EQ(-1, __vm_ioctl(g.vm, KVM_INTROSPECTION_SET_UUID, &u));
	ASSERT_EQ(EINVAL, errno);
	get_uuid(g.vm, b);
	ASSERT_EQ(0, memcmp(a, b, 16));

	u.padding = 0;
	ASSERT_EQ(0, __vm_ioctl(g.vm, KVM_INTROSPECTION_SET_UUID, &u));
	get_uuid(g.vm, b);
	ASSERT_EQ(0, memcmp(u.uuid, b, 16));

	guest_vcpu(&g);
	read_record(fd, &rec);
	ASSERT_EQ(0, memcmp(u.uuid, rec.uuid, 16));

	/* Announced: the UUID the tools know can't change any more. */
	u.uuid[0] = 0x55;
	ASSERT_EQ(-1, __vm_ioctl(g.vm, KVM_INTROSPECTION_SET_UUID, &u));
	ASSERT_EQ(EBUSY, errno);
	get_uuid(g.vm, b);
	ASSERT_EQ(0, memcmp(rec.uuid, b, 16));
	guest_free(&g);
	close(fd);
}

/* The UUID ioctls are the VMM's: another process gets -EIO. */
TEST(uuid_is_the_vmms)
{
	struct kvmi_guest_uuid u = {};
	struct guest g;
	int status, fd = DEV_REQUIRE();
	pid_t pid;

	close(fd);
	guest_new(&g, false);
	pid = fork();
	ASSERT_LE(0, pid);
	if (!pid) {
		/* A child has its own mm: not the VM's creator. */
		if (ioctl(g.vm->fd, KVM_INTROSPECTION_GET_UUID, &u) != -1 ||
		    errno != EIO)
			_exit(1);
		u.uuid[0] = 1;
		if (ioctl(g.vm->fd, KVM_INTROSPECTION_SET_UUID, &u) != -1 ||
		    errno != EIO)
			_exit(2);
		_exit(0);
	}
	ASSERT_EQ(pid, waitpid(pid, &status, 0));
	ASSERT_TRUE(WIFEXITED(status));
	ASSERT_EQ(0, WEXITSTATUS(status));
	guest_free(&g);
}

/* Bad arguments: refused, and nothing is lost. */
TEST(bad_args)
{
	struct kvmi_open op = kvmi_open_args();
	struct kvmi_guest_record rec, recs[4];
	struct kvmi_open_guest og = {};
	struct kvmi_guest_list gl;
	struct guest g;
	int ifd, fd = DEV_REQUIRE();

	guest_new(&g, true);

	ASSERT_EQ(-1, ioctl(fd, _IO(KVMI_IOCTL_MAGIC, 0xcf)));
	ASSERT_EQ(ENOTTY, errno);
	ASSERT_EQ(-1, ioctl(fd, KVMI_DEV_GET_INFO, NULL));
	ASSERT_EQ(EFAULT, errno);

	/* GET_GUESTS */
	memset(&gl, 0, sizeof(gl));
	gl.flags = 1;
	ASSERT_EQ(-1, ioctl(fd, KVMI_DEV_GET_GUESTS, &gl));
	ASSERT_EQ(EINVAL, errno);
	gl.flags = 0;
	gl.padding = 1;
	ASSERT_EQ(-1, ioctl(fd, KVMI_DEV_GET_GUESTS, &gl));
	ASSERT_EQ(EINVAL, errno);
	ASSERT_EQ(-1, ioctl(fd, KVMI_DEV_GET_GUESTS, NULL));
	ASSERT_EQ(EFAULT, errno);
	ASSERT_EQ(-1, __get_guests(fd, &gl, (void *)8, 4));
	ASSERT_EQ(EFAULT, errno);
	ASSERT_EQ(0, __get_guests(fd, &gl, recs, 4));

	/* OPEN_GUEST */
	og.id = recs[0].id;
	og.open = (uintptr_t)&op;
	og.flags = 1;
	ASSERT_EQ(-1, ioctl(fd, KVMI_DEV_OPEN_GUEST, &og));
	ASSERT_EQ(EINVAL, errno);
	og.flags = 0;
	og.padding = 1;
	ASSERT_EQ(-1, ioctl(fd, KVMI_DEV_OPEN_GUEST, &og));
	ASSERT_EQ(EINVAL, errno);
	ASSERT_EQ(-1, ioctl(fd, KVMI_DEV_OPEN_GUEST, NULL));
	ASSERT_EQ(EFAULT, errno);
	ASSERT_EQ(-1, __open_guest(fd, 0, &op));
	ASSERT_EQ(ENOENT, errno);
	ASSERT_EQ(-1, __open_guest(fd, ~0ULL, &op));
	ASSERT_EQ(ENOENT, errno);
	read_record(fd, &rec);
	ASSERT_EQ(-1, __open_guest(fd, rec.id, (void *)8));
	ASSERT_EQ(EFAULT, errno);
	/* The struct kvmi_open is checked as KVM_INTROSPECTION_OPEN does. */
	op.flags = 1;
	ASSERT_EQ(-1, __open_guest(fd, rec.id, &op));
	ASSERT_EQ(EINVAL, errno);
	op.flags = 0;
	op.transport = KVMI_TRANSPORT_SOCKET;
	op.transport_fd = fd;	/* not a socket */
	ASSERT_EQ(-1, __open_guest(fd, rec.id, &op));
	ASSERT_EQ(ENOTSOCK, errno);
	op.transport = KVMI_TRANSPORT_RING;
	op.transport_fd = 0;
	ifd = __open_guest(fd, rec.id, &op);
	ASSERT_LE(0, ifd);
	close(ifd);

	/* read() into a bad buffer: the record stays queued. */
	guest_free(&g);
	ASSERT_EQ(-1, read(fd, (void *)8, sizeof(rec)));
	ASSERT_EQ(EFAULT, errno);
	read_record(fd, &rec);
	ASSERT_EQ(KVMI_GUEST_OFF, rec.type);
	ASSERT_TRUE(queue_empty(fd));

	/* A gone guest can't be opened. */
	ASSERT_EQ(-1, __open_guest(fd, rec.id, &op));
	ASSERT_EQ(ENOENT, errno);
	close(fd);
}

struct opener {
	int fd;			/* /dev/kvmi */
	uint64_t id;
	int opened;		/* OPEN_GUEST successes */
	int other;		/* errors but ENOENT */
	int err;		/* the last of them */
};

/* OPEN_GUEST on @id, again and again, until the guest is gone. */
static void *opener_fn(void *arg)
{
	struct kvmi_open op = kvmi_open_args();
	struct opener *o = arg;
	int i, ifd;

	for (i = 0; i < 100000; i++) {
		ifd = __open_guest(o->fd, o->id, &op);
		if (ifd >= 0) {
			o->opened++;
			close(ifd);
			continue;
		}
		if (errno == ENOENT)
			break;
		o->other++;
		o->err = errno;
	}
	return NULL;
}

/*
 * OPEN_GUEST while the VM is destroyed: it opens a detached-later fd or
 * finds no guest, nothing else (the debug kernel checks the lifetime).
 */
TEST(open_guest_races_destruction)
{
	struct kvmi_guest_record rec;
	struct opener o;
	struct guest g;
	pthread_t t;
	int i, fd = DEV_REQUIRE();

	for (i = 0; i < 20; i++) {
		guest_new(&g, true);
		read_record(fd, &rec);
		ASSERT_EQ(KVMI_GUEST_ON, rec.type);
		memset(&o, 0, sizeof(o));
		o.fd = fd;
		o.id = rec.id;
		ASSERT_EQ(0, pthread_create(&t, NULL, opener_fn, &o));
		guest_free(&g);
		pthread_join(t, NULL);
		ASSERT_EQ(0, o.other);
		read_record(fd, &rec);
		ASSERT_EQ(KVMI_GUEST_OFF, rec.type);
		ASSERT_EQ(o.id, rec.id);
	}
	close(fd);
}

/* Two openers each get every record. */
TEST(every_opener_gets_every_record)
{
	struct kvmi_guest_record a, b;
	struct guest g;
	int fd1 = DEV_REQUIRE();
	int fd2 = dev_open();

	guest_new(&g, true);
	read_record(fd1, &a);
	read_record(fd2, &b);
	ASSERT_EQ(0, memcmp(&a, &b, sizeof(a)));
	close(fd1);
	guest_free(&g);
	read_record(fd2, &b);
	ASSERT_EQ(KVMI_GUEST_OFF, b.type);
	close(fd2);
}

TEST_HARNESS_MAIN
