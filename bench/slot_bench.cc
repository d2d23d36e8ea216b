// SPDX-License-Identifier: GPL-2.0-only
/*
 * slot_bench: the kvmi-ring slot protocol between two threads on the host
 * CPUs, next to a raw cache-line ping-pong (issue 7, google-benchmark).
 *
 * The benchmark thread plays the vCPU: it publishes an event in a
 * struct kvmi_event slot and waits until the reply for it is in the
 * struct kvmi_reply slot. A helper thread on the other CPU plays the
 * tool: it waits for the event, copies it (registers included, as a tool
 * does), writes the reply. One iteration is one round trip. The
 * barriers and need-wakeup handshakes are the ones drawn in
 * uapi/linux/kvmi.h (K1/T1, K2/T0, T2/K3, K6/T3); the structures are the
 * real ABI ones, so the copies have their real size.
 *
 *   BM_pingpong       raw ping-pong of one cache line: the floor
 *   BM_slot_poll      both sides spin (KVMI_WAIT_POLL, KVMI_TOOL_POLLING)
 *   BM_slot_eventfd   both sides sleep: notify and kick eventfds
 *                     (KVMI_WAIT_BLOCK)
 *   BM_slot_unix      the event and the reply as messages over a unix
 *                     socket (SOCK_SEQPACKET), like a socket transport
 */
#include <atomic>
#include <cstdint>
#include <cstring>
#include <thread>

#include <pthread.h>
#include <sched.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <benchmark/benchmark.h>
#include <linux/kvmi.h>

namespace {

void pin(int cpu)
{
	int n = static_cast<int>(sysconf(_SC_NPROCESSORS_ONLN));
	cpu_set_t set;

	if (n < 2)
		return;
	CPU_ZERO(&set);
	CPU_SET(cpu % n, &set);
	pthread_setaffinity_np(pthread_self(), sizeof(set), &set);
}

inline void cpu_relax()
{
	asm volatile("pause" ::: "memory");
}

template <typename T> inline T load_acquire(const T *p)
{
	return __atomic_load_n(p, __ATOMIC_ACQUIRE);
}

template <typename T> inline void store_release(T *p, T v)
{
	__atomic_store_n(p, v, __ATOMIC_RELEASE);
}

inline void smp_mb()
{
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
}

void BM_pingpong(benchmark::State &state)
{
	alignas(64) static std::atomic<uint64_t> line;
	std::atomic<bool> stop{false};
	uint64_t v = 0;

	line.store(0);
	std::thread peer([&] {
		uint64_t seen = 0;

		pin(1);
		while (!stop.load(std::memory_order_relaxed)) {
			uint64_t x = line.load(std::memory_order_acquire);

			if (x != seen && (x & 1)) {
				seen = x + 1;
				line.store(seen, std::memory_order_release);
			} else {
				cpu_relax();
			}
		}
	});
	pin(0);
	for (auto _ : state) {
		line.store(++v, std::memory_order_release);
		++v;
		while (line.load(std::memory_order_acquire) != v)
			cpu_relax();
	}
	stop.store(true);
	peer.join();
}

/* The shared pages of one vCPU, laid out as the kernel's regions are. */
struct alignas(4096) kernel_region {
	struct kvmi_vcpu_state state;
	alignas(64) struct kvmi_event event;
};

struct alignas(4096) tool_region {
	struct kvmi_tool_state state;
	alignas(64) struct kvmi_reply reply;
};

enum class Mode { Poll, Eventfd };

struct Slots {
	kernel_region k{};
	tool_region t{};
	int notify = eventfd(0, EFD_CLOEXEC);
	int kick = eventfd(0, EFD_CLOEXEC);
	std::atomic<bool> stop{false};

	~Slots()
	{
		close(notify);
		close(kick);
	}
};

void efd_signal(int fd)
{
	uint64_t one = 1;

	if (write(fd, &one, sizeof(one)) != sizeof(one))
		abort();
}

void efd_wait(int fd)
{
	uint64_t cnt;

	if (read(fd, &cnt, sizeof(cnt)) != sizeof(cnt))
		abort();
}

/* The tool thread: wait (T0/T1), copy, reply (T2), kick if asked (T3). */
void tool_loop(Slots *s, Mode mode)
{
	struct kvmi_event copy;
	uint32_t last = 0, seq;

	pin(1);
	store_release(&s->t.state.flags,
		      mode == Mode::Poll ? (uint32_t)KVMI_TOOL_POLLING : 0u);
	for (;;) {
		seq = load_acquire(&s->k.event.seq);		/* T1 */
		if (!seq || seq == last) {
			if (s->stop.load(std::memory_order_relaxed))
				return;
			if (mode == Mode::Poll)
				cpu_relax();
			else
				efd_wait(s->notify);
			continue;
		}
		std::memcpy(&copy, &s->k.event, sizeof(copy));
		benchmark::DoNotOptimize(copy);
		last = seq;
		s->t.reply.event = copy.id;
		s->t.reply.action = KVMI_ACTION_CONTINUE;
		s->t.reply.flags = 0;
		store_release(&s->t.reply.seq, seq);		/* T2 */
		smp_mb();					/* T3 */
		if (load_acquire(&s->k.state.flags) & KVMI_VCPU_NEED_KICK)
			efd_signal(s->kick);
	}
}

void BM_slot(benchmark::State &state, Mode mode)
{
	Slots s;
	uint32_t seq = 0;

	std::thread tool(tool_loop, &s, mode);
	pin(0);
	for (auto _ : state) {
		if (++seq == 0)
			seq = 1;
		/* K0, K1: rewrite the slot, publish. */
		__atomic_store_n(&s.k.event.seq, 0u, __ATOMIC_RELAXED);
		smp_mb();
		s.k.event.id = KVMI_EVENT_HYPERCALL;
		s.k.event.vcpu = 0;
		s.k.event.timestamp_ns = seq;
		s.k.event.regs.rax = KVM_HC_KVMI;
		s.k.event.regs.rip = seq;
		store_release(&s.k.event.seq, seq);
		smp_mb();					/* K2 */
		if (!(load_acquire(&s.t.state.flags) & KVMI_TOOL_POLLING))
			efd_signal(s.notify);
		/* K3, or K6 then sleep. */
		while (load_acquire(&s.t.reply.seq) != seq) {
			if (mode == Mode::Poll) {
				cpu_relax();
				continue;
			}
			__atomic_fetch_or(&s.k.state.flags,
					  (uint32_t)KVMI_VCPU_NEED_KICK,
					  __ATOMIC_RELAXED);
			smp_mb();				/* K6 */
			if (load_acquire(&s.t.reply.seq) != seq)
				efd_wait(s.kick);
			__atomic_fetch_and(&s.k.state.flags,
					   ~(uint32_t)KVMI_VCPU_NEED_KICK,
					   __ATOMIC_RELAXED);
		}
		store_release(&s.k.state.done_seq, seq);	/* K7 */
	}
	s.stop.store(true);
	efd_signal(s.notify);
	tool.join();
}

void BM_slot_poll(benchmark::State &state)
{
	BM_slot(state, Mode::Poll);
}

void BM_slot_eventfd(benchmark::State &state)
{
	BM_slot(state, Mode::Eventfd);
}

void BM_slot_unix(benchmark::State &state)
{
	int sv[2];
	uint32_t seq = 0;

	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv))
		abort();
	std::thread tool([&] {
		struct kvmi_event ev;
		struct kvmi_reply rp {};

		pin(1);
		while (recv(sv[1], &ev, sizeof(ev), 0) == sizeof(ev)) {
			rp.seq = ev.seq;
			rp.event = ev.id;
			rp.action = KVMI_ACTION_CONTINUE;
			if (send(sv[1], &rp, sizeof(rp), 0) != sizeof(rp))
				break;
		}
	});
	pin(0);
	static struct kvmi_event ev;
	static struct kvmi_reply rp;
	for (auto _ : state) {
		ev.seq = ++seq;
		ev.id = KVMI_EVENT_HYPERCALL;
		ev.regs.rax = KVM_HC_KVMI;
		if (send(sv[0], &ev, sizeof(ev), 0) != sizeof(ev) ||
		    recv(sv[0], &rp, sizeof(rp), 0) != sizeof(rp) ||
		    rp.seq != seq)
			abort();
	}
	shutdown(sv[0], SHUT_RDWR);
	tool.join();
	close(sv[0]);
	close(sv[1]);
}

} // namespace

BENCHMARK(BM_pingpong)->UseRealTime();
BENCHMARK(BM_slot_poll)->UseRealTime();
BENCHMARK(BM_slot_eventfd)->UseRealTime();
BENCHMARK(BM_slot_unix)->UseRealTime();

BENCHMARK_MAIN();
