// SPDX-License-Identifier: GPL-2.0-only
/*
 * sva_scan: scan guest memory through zero-copy mappings
 * (KVMI_IOCTL_MAP_PHYSICAL_PAGE_TO_SVA, kvmi.rst section 21) and through
 * KVMI_IOCTL_READ_PHYSICAL, and through READ_PHYSICAL messages of the
 * socket transport (kvmi.rst section 22.2), side by side, and report the
 * throughput of each and their ratios. Runs in the L1 VM
 * (bench/sva-scan.sh).
 *
 *   sva_scan [-m MIB] [-r ROUNDS] [-H]
 *
 * A VM with one memslot of MIB MiB (64; -H: on 2 MiB hugetlbfs pages),
 * filled by the VMM, no vCPU: what is measured is the tool's side only.
 * Each round, in turn:
 *   read_4k     READ_PHYSICAL, one page per call, into one buffer
 *   read_1m     READ_PHYSICAL, 1 MiB per call
 *   map         MAP of every page in batches of 512 (setup, once per round)
 *   scan_mapped the same scan through the window
 *   unmap       UNMAP of every page in batches of 512
 * then, the introspection closed and opened again on the socket transport
 * (one introspection per VM), up to 3 rounds (a message per 4 KiB makes
 * it the slowest by far) of:
 *   read_sock   READ_PHYSICAL messages of KVMI_MSG_PHYSICAL_MAX bytes, one
 *               at a time (command, then its result with the data), as a
 *               tool of the earlier KVMi postings reads guest memory
 * Every scan sums the memory as 64-bit words, and the sums must agree.
 * Prints one line per row: the median of the rounds, in MiB/s, then the
 * ratios scan_mapped / read_4k, scan_mapped / read_1m, scan_mapped /
 * read_sock, and (map + scan_mapped + unmap) / read_4k for a single pass.
 * read_sock is skipped on a kernel without KVMI_FEATURE_SOCKET. For it the
 * tool and the kernel's receive thread (kvmi-rx/PID) are pinned to CPU 0:
 * under TCG, waking an idle L1 vCPU takes milliseconds when the host is
 * busy, a cost of the emulation and not of the transport, which a
 * message round trip between two CPUs would pay twice.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <linux/kvm.h>
#include <linux/kvmi.h>

#define GPA		0x100000000ULL
#define PAGE		4096ULL
#define BATCH		512
#define MAX_ROUNDS	64

enum { R_READ_4K, R_READ_1M, R_MAP, R_SCAN, R_UNMAP, R_READ_SOCK, NR_ROWS };
static const char *const names[NR_ROWS] = {
	"read_4k", "read_1m", "map", "scan_mapped", "unmap", "read_sock",
};

static void die(const char *what)
{
	fprintf(stderr, "sva_scan: %s: %s\n", what, strerror(errno));
	exit(1);
}

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static uint64_t sum(const void *p, size_t len)
{
	const volatile uint64_t *q = p;
	uint64_t s = 0;
	size_t i;

	for (i = 0; i < len / 8; i++)
		s += q[i];
	return s;
}

static uint64_t read_scan(int fd, uint64_t size, uint64_t chunk, void *buf)
{
	struct kvmi_physical ph = { .size = chunk, .buffer = (uint64_t)buf };
	uint64_t off, s = 0;

	for (off = 0; off < size; off += chunk) {
		ph.gpa = GPA + off;
		if (ioctl(fd, KVMI_IOCTL_READ_PHYSICAL, &ph))
			die("READ_PHYSICAL");
		s += sum(buf, chunk);
	}
	return s;
}

static void sock_xfer(int s, void *p, size_t len, int rd)
{
	ssize_t n;

	while (len) {
		n = rd ? recv(s, p, len, MSG_WAITALL) :
			 send(s, p, len, MSG_NOSIGNAL);
		if (n <= 0) {
			if (!n)
				errno = EPIPE;
			die(rd ? "recv(socket)" : "send(socket)");
		}
		p = (char *)p + n;
		len -= n;
	}
}

/* Pin this thread and the receive thread of this process's introspection. */
static void pin_with_rx(void)
{
	char want[32], path[300], comm[32];
	int found = 0;
	cpu_set_t cpus;
	struct dirent *d;
	DIR *dir;
	FILE *f;

	CPU_ZERO(&cpus);
	CPU_SET(0, &cpus);
	if (sched_setaffinity(0, sizeof(cpus), &cpus))
		die("sched_setaffinity");
	snprintf(want, sizeof(want), "kvmi-rx/%d", getpid());
	dir = opendir("/proc");
	if (!dir)
		die("/proc");
	while ((d = readdir(dir))) {
		snprintf(path, sizeof(path), "/proc/%s/comm", d->d_name);
		f = fopen(path, "r");
		if (!f)
			continue;
		if (fgets(comm, sizeof(comm), f) &&
		    !strncmp(comm, want, strlen(want)) &&
		    (comm[strlen(want)] == '\n' || !comm[strlen(want)])) {
			if (sched_setaffinity(atoi(d->d_name), sizeof(cpus),
					      &cpus))
				die("sched_setaffinity(kvmi-rx)");
			found = 1;
		}
		fclose(f);
	}
	closedir(dir);
	if (!found) {
		errno = ESRCH;
		die(want);
	}
}

/* The socket transport: one READ_PHYSICAL message, then its result. */
static uint64_t sock_scan(int sk, uint64_t size, void *buf)
{
	struct {
		struct kvmi_msg_hdr hdr;
		struct kvmi_msg_vm_command vc;
		struct kvmi_physical ph;
	} __attribute__((packed)) m = {
		.hdr = { .id = KVMI_MSG_VM_COMMAND,
			 .size = sizeof(m.vc) + sizeof(m.ph) },
		.vc = { .cmd = KVMI_CMD_READ_PHYSICAL },
	};
	struct {
		struct kvmi_msg_hdr hdr;
		struct kvmi_msg_vm_result res;
		struct kvmi_physical ph;
	} __attribute__((packed)) out;
	uint64_t off, s = 0;
	uint32_t n;

	for (off = 0; off < size; off += n) {
		n = size - off < KVMI_MSG_PHYSICAL_MAX ? size - off :
							KVMI_MSG_PHYSICAL_MAX;
		m.hdr.seq++;
		m.ph.gpa = GPA + off;
		m.ph.size = n;
		sock_xfer(sk, &m, sizeof(m), 0);
		sock_xfer(sk, &out, sizeof(out), 1);
		if (out.hdr.id != KVMI_MSG_VM_RESULT || out.hdr.seq != m.hdr.seq ||
		    out.res.error ||
		    out.hdr.size != sizeof(out.res) + sizeof(out.ph) + n) {
			fprintf(stderr, "sva_scan: socket: message %u, seq %u, size %u, error %d\n",
				out.hdr.id, out.hdr.seq, out.hdr.size,
				out.res.error);
			exit(1);
		}
		sock_xfer(sk, buf, n, 1);
		s += sum(buf, n);
	}
	return s;
}

static void sva_all(int fd, uint8_t *win, uint64_t size, int map)
{
	static struct kvmi_sva_entry e[BATCH];
	struct kvmi_sva_batch b = { .entries = (uint64_t)e };
	uint64_t off;
	int i;

	for (off = 0; off < size; off += BATCH * PAGE) {
		for (i = 0; i < BATCH; i++) {
			e[i].gpa = map ? GPA + off + i * PAGE : 0;
			e[i].address = (uint64_t)win + off + i * PAGE;
			e[i].flags = 0;
		}
		b.count = BATCH;
		if (ioctl(fd, map ? KVMI_IOCTL_MAP_PHYSICAL_PAGE_TO_SVA :
				    KVMI_IOCTL_UNMAP_PHYSICAL_PAGE_FROM_SVA, &b))
			die(map ? "MAP_PHYSICAL_PAGE_TO_SVA" :
				  "UNMAP_PHYSICAL_PAGE_FROM_SVA");
	}
}

static int cmp(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

static double median(double *v, int n)
{
	qsort(v, n, sizeof(*v), cmp);
	return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

int main(int argc, char **argv)
{
	struct kvmi_open op = { .size = sizeof(op) };
	struct kvmi_layout lo = { .size = sizeof(lo) };
	struct kvmi_version ver = { .size = sizeof(ver) };
	struct kvm_userspace_memory_region mr = { 0 };
	double t[NR_ROWS][MAX_ROUNDS], med[NR_ROWS];
	uint64_t mib = 64, size, expect = 0, s, i;
	int rounds = 9, huge = 0, c, kvm, vm, fd, r, k, sv[2], sock = 0;
	int sock_rounds;
	uint8_t *mem, *win, *buf;
	double t0;

	while ((c = getopt(argc, argv, "m:r:H")) != -1) {
		switch (c) {
		case 'm':
			mib = strtoull(optarg, NULL, 0);
			break;
		case 'r':
			rounds = atoi(optarg);
			break;
		case 'H':
			huge = 1;
			break;
		default:
			fprintf(stderr, "usage: sva_scan [-m MIB] [-r ROUNDS] [-H]\n");
			return 2;
		}
	}
	if (rounds < 1 || rounds > MAX_ROUNDS || !mib || mib % 2)
		return 2;
	sock_rounds = rounds < 3 ? rounds : 3;
	size = mib << 20;

	kvm = open("/dev/kvm", O_RDWR | O_CLOEXEC);
	if (kvm < 0)
		die("/dev/kvm");
	vm = ioctl(kvm, KVM_CREATE_VM, 0);
	if (vm < 0)
		die("KVM_CREATE_VM");
	mem = mmap(NULL, size, PROT_READ | PROT_WRITE,
		   MAP_PRIVATE | MAP_ANONYMOUS | (huge ? MAP_HUGETLB : 0),
		   -1, 0);
	if (mem == MAP_FAILED)
		die("guest memory");
	for (i = 0; i < size / 8; i++) {
		((uint64_t *)mem)[i] = i * 0x9e3779b97f4a7c15ULL;
		expect += i * 0x9e3779b97f4a7c15ULL;
	}
	mr.slot = 0;
	mr.guest_phys_addr = GPA;
	mr.memory_size = size;
	mr.userspace_addr = (uint64_t)mem;
	if (ioctl(vm, KVM_SET_USER_MEMORY_REGION, &mr))
		die("KVM_SET_USER_MEMORY_REGION");

	op.transport = KVMI_TRANSPORT_RING;
	fd = ioctl(vm, KVM_INTROSPECTION_OPEN, &op);
	if (fd < 0)
		die("KVM_INTROSPECTION_OPEN");
	if (ioctl(fd, KVMI_IOCTL_GET_VERSION, &ver) ||
	    ioctl(fd, KVMI_IOCTL_GET_LAYOUT, &lo))
		die("GET_VERSION/GET_LAYOUT");
	if (!(ver.features & KVMI_FEATURE_SVA) || lo.sva_size < size) {
		fprintf(stderr, "sva_scan: no KVMI_FEATURE_SVA or window too small\n");
		return 77;
	}
	win = mmap(NULL, size, PROT_READ, MAP_SHARED, fd, lo.sva_offset);
	if (win == MAP_FAILED)
		die("map window");
	buf = aligned_alloc(PAGE, 1 << 20);
	if (!buf)
		die("buffer");

	for (r = 0; r < rounds; r++) {
		t0 = now();
		s = read_scan(fd, size, PAGE, buf);
		t[R_READ_4K][r] = now() - t0;
		if (s != expect)
			goto mismatch;

		t0 = now();
		s = read_scan(fd, size, 1 << 20, buf);
		t[R_READ_1M][r] = now() - t0;
		if (s != expect)
			goto mismatch;

		t0 = now();
		sva_all(fd, win, size, 1);
		t[R_MAP][r] = now() - t0;

		t0 = now();
		s = sum(win, size);
		t[R_SCAN][r] = now() - t0;
		if (s != expect)
			goto mismatch;

		t0 = now();
		sva_all(fd, win, size, 0);
		t[R_UNMAP][r] = now() - t0;
	}

	/* The same VM, its introspection now on the socket transport. */
	if (ver.features & KVMI_FEATURE_SOCKET) {
		sock = 1;
		munmap(win, size);
		close(fd);
		if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv))
			die("socketpair");
		op.transport = KVMI_TRANSPORT_SOCKET;
		op.transport_fd = sv[1];
		fd = ioctl(vm, KVM_INTROSPECTION_OPEN, &op);
		if (fd < 0)
			die("KVM_INTROSPECTION_OPEN(socket)");
		close(sv[1]);
		pin_with_rx();
		for (r = 0; r < sock_rounds; r++) {
			t0 = now();
			s = sock_scan(sv[0], size, buf);
			t[R_READ_SOCK][r] = now() - t0;
			if (s != expect)
				goto mismatch;
		}
	}

	printf("# sva_scan: %llu MiB of %s guest memory, %d rounds, median\n",
	       (unsigned long long)mib, huge ? "hugetlbfs" : "anonymous",
	       rounds);
	for (k = 0; k < NR_ROWS; k++) {
		if (k == R_READ_SOCK && !sock) {
			printf("%-12s skipped: no KVMI_FEATURE_SOCKET\n", names[k]);
			continue;
		}
		med[k] = median(t[k], k == R_READ_SOCK ? sock_rounds : rounds);
		printf("%-12s %10.3f ms %10.1f MiB/s\n", names[k], med[k] * 1e3,
		       mib / med[k]);
	}
	printf("ratio scan_mapped/read_4k %.1f\n", med[R_READ_4K] / med[R_SCAN]);
	printf("ratio scan_mapped/read_1m %.1f\n", med[R_READ_1M] / med[R_SCAN]);
	if (sock)
		printf("ratio scan_mapped/read_sock %.1f\n",
		       med[R_READ_SOCK] / med[R_SCAN]);
	printf("ratio map+scan+unmap/read_4k %.1f\n",
	       med[R_READ_4K] / (med[R_MAP] + med[R_SCAN] + med[R_UNMAP]));
	return 0;

mismatch:
	fprintf(stderr, "sva_scan: round %d: sum 0x%llx, expected 0x%llx\n",
		r, (unsigned long long)s, (unsigned long long)expect);
	return 1;
}
