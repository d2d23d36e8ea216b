/* SPDX-License-Identifier: LGPL-2.1-or-later OR MIT */
/*
 * A simulated kernel for the host unit tests: it owns memory laid out as
 * KVMI_IOCTL_GET_LAYOUT describes and plays the vCPU side of the
 * protocol of kvmi.rst, section 9 (K0..K7), on threads, with the
 * library's VM-wide or per-vCPU eventfds as doorbells.
 */
#ifndef KVMI_TEST_SIM_H
#define KVMI_TEST_SIM_H

#include <poll.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "internal.h"

#define SIM_PAGE	4096
#define SIM_KSTRIDE	(5 * SIM_PAGE)
#define SIM_TSTRIDE	(5 * SIM_PAGE)

struct sim_vcpu {
	uint32_t seq;		/* last event seq published */
	uint32_t cmd_seen;	/* last command seq served */
	uint32_t mode;		/* KVMI_WAIT_* of the vCPU side */
	unsigned int spin;	/* HYBRID: loops before sleeping */
	/* counters kept by the simulated kernel */
	uint64_t signals, suppressed, kicks_read, sleeps, commands;
	uint32_t cmd_seqs[8];	/* the first command seqs served */
	unsigned int nr_cmd_seqs;
	struct kvmi_reply last_reply;
	/* command results to fake: 0 = serve normally */
	int fake_result;
};

struct sim {
	struct kvmi_version ver;
	struct kvmi_layout lo;
	struct kvmi_vm_state *vm;
	uint8_t *kernel;
	uint8_t *tool;
	struct kvmi_dom *dom;
	struct sim_vcpu v[16];
};

#define SIM_FAKE_WRONG_ID	1
#define SIM_FAKE_POSITIVE_ERROR	2
#define SIM_FAKE_EPERM		3
#define SIM_FAKE_NEVER		4	/* finish the event instead */

static inline void sim_default(struct sim *s, uint32_t max_vcpus)
{
	memset(s, 0, sizeof(*s));
	s->ver.size = sizeof(s->ver);
	s->ver.version = KVMI_VERSION;
	s->ver.features = KVMI_FEATURE_RING;
	s->ver.event_size = sizeof(struct kvmi_event);
	s->ver.reply_size = sizeof(struct kvmi_reply);
	s->ver.cmd_size = sizeof(struct kvmi_cmd);
	s->ver.cmd_result_size = sizeof(struct kvmi_cmd_result);
	s->ver.regs_size = sizeof(struct kvmi_x86_regs);
	s->lo.size = sizeof(s->lo);
	s->lo.page_size = SIM_PAGE;
	s->lo.max_vcpus = max_vcpus;
	s->lo.vm_offset = 0;
	s->lo.vm_size = SIM_PAGE;
	s->lo.kernel_offset = 0x10000000;
	s->lo.kernel_stride = SIM_KSTRIDE;
	s->lo.kernel_size = SIM_KSTRIDE;
	s->lo.tool_offset = 0x20000000;
	s->lo.tool_stride = SIM_TSTRIDE;
	s->lo.tool_size = SIM_TSTRIDE;
	s->lo.kernel_off.state = 0;
	s->lo.kernel_off.event = 0x40;
	s->lo.kernel_off.cmd_result = 0x340;
	s->lo.kernel_off.counters = 0x600;
	s->lo.kernel_off.data = 0x1000;
	s->lo.kernel_off.data_size = 0x4000;
	s->lo.tool_off.state = 0;
	s->lo.tool_off.reply = 0x40;
	s->lo.tool_off.cmd = 0x340;
	s->lo.tool_off.data = 0x1000;
	s->lo.tool_off.data_size = 0x4000;
}

/* Memory for the layout in s->lo and a dom over it; @nr vCPUs exist. */
static inline int sim_start(struct sim *s, uint32_t nr)
{
	uint32_t i;
	int r;

	s->vm = aligned_alloc(SIM_PAGE, SIM_PAGE);
	s->kernel = aligned_alloc(SIM_PAGE, s->lo.max_vcpus * SIM_KSTRIDE);
	s->tool = aligned_alloc(SIM_PAGE, s->lo.max_vcpus * SIM_TSTRIDE);
	memset(s->vm, 0, SIM_PAGE);
	memset(s->kernel, 0, s->lo.max_vcpus * SIM_KSTRIDE);
	memset(s->tool, 0, s->lo.max_vcpus * SIM_TSTRIDE);
	s->vm->max_vcpus = s->lo.max_vcpus;
	s->vm->nr_vcpus = nr;
	for (i = 0; i < s->lo.max_vcpus && i < 16; i++) {
		s->v[i].mode = KVMI_WAIT_HYBRID;
		s->v[i].spin = 200;
	}
	for (i = 0; i < s->lo.max_vcpus; i++)
		((struct kvmi_vcpu_state *)(s->kernel + i * SIM_KSTRIDE))->vcpu = i;
	r = kvmi__dom_simulated(&s->ver, &s->lo, s->vm, s->kernel, s->tool,
				&s->dom);
	return r;
}

static inline void sim_free(struct sim *s)
{
	free(s->vm);
	free(s->kernel);
	free(s->tool);
}

static inline struct kvmi_event *sim_ev(struct sim *s, uint32_t i)
{
	return (void *)(s->kernel + i * SIM_KSTRIDE + s->lo.kernel_off.event);
}

static inline struct kvmi_vcpu_state *sim_vs(struct sim *s, uint32_t i)
{
	return (void *)(s->kernel + i * SIM_KSTRIDE + s->lo.kernel_off.state);
}

static inline struct kvmi_cmd_result *sim_res(struct sim *s, uint32_t i)
{
	return (void *)(s->kernel + i * SIM_KSTRIDE +
			s->lo.kernel_off.cmd_result);
}

static inline struct kvmi_tool_state *sim_ts(struct sim *s, uint32_t i)
{
	return (void *)(s->tool + i * SIM_TSTRIDE + s->lo.tool_off.state);
}

static inline struct kvmi_reply *sim_rp(struct sim *s, uint32_t i)
{
	return (void *)(s->tool + i * SIM_TSTRIDE + s->lo.tool_off.reply);
}

static inline struct kvmi_cmd *sim_cmd(struct sim *s, uint32_t i)
{
	return (void *)(s->tool + i * SIM_TSTRIDE + s->lo.tool_off.cmd);
}

static inline void sim_ring(int fd)
{
	uint64_t one = 1;

	if (write(fd, &one, sizeof(one)) != sizeof(one))
		abort();
}

/* K0, K1, K2: publish event @id with seq @seq on vCPU @i. */
static inline void sim_publish(struct sim *s, uint32_t i, uint32_t seq,
			       uint16_t id)
{
	struct kvmi_event *ev = sim_ev(s, i);
	struct kvmi_vcpu *v = &s->dom->vcpus[i];
	__u64 *gpr;
	unsigned int k;

	WRITE_ONCE(ev->seq, 0);					/* K0 */
	__atomic_thread_fence(__ATOMIC_RELEASE);		/* smp_wmb() */
	ev->id = id;
	ev->mode = KVMI_X86_MODE_PROT64;
	ev->cpl = 0;
	ev->vcpu = i;
	ev->padding = 0;
	ev->timestamp_ns = seq;
	memset(&ev->data, 0, sizeof(ev->data));
	ev->data.hypercall.insn_len = 3;
	ev->regs.groups = KVMI_REGS_ALL;
	/* Every GPR holds the seq: a torn copy shows. */
	gpr = &ev->regs.rax;
	for (k = 0; k < 17; k++)
		gpr[k] = seq;
	ev->regs.rip = seq;
	store_release(&ev->seq, seq);				/* K1 */
	s->v[i].seq = seq;
	smp_mb();						/* K2 */
	if (!(READ_ONCE(sim_ts(s, i)->flags) & KVMI_TOOL_POLLING)) {
		sim_ring(kvmi__vcpu_notify_fd(v));
		s->v[i].signals++;
	} else {
		s->v[i].suppressed++;
	}
}

/* K4, K5: serve a new command if there is one; true if there was. */
static inline bool sim_serve_command(struct sim *s, uint32_t i)
{
	struct kvmi_cmd *cmd = sim_cmd(s, i);
	struct kvmi_cmd_result *res = sim_res(s, i);
	struct sim_vcpu *sv = &s->v[i];
	uint32_t c = load_acquire(&cmd->seq);			/* K4 */
	uint16_t id;

	if (c == sv->cmd_seen)
		return false;
	sv->cmd_seen = c;
	if (sv->nr_cmd_seqs < 8)
		sv->cmd_seqs[sv->nr_cmd_seqs++] = c;
	sv->commands++;
	id = READ_ONCE(cmd->id);
	if (sv->fake_result == SIM_FAKE_NEVER) {
		/* The event ends (a deadline, say) without serving it. */
		sim_vs(s, i)->done_reason = KVMI_DONE_DEADLINE;
		store_release(&sim_vs(s, i)->done_seq, sv->seq);
		return true;
	}
	memset(&res->result, 0, sizeof(res->result));
	res->id = sv->fake_result == SIM_FAKE_WRONG_ID ? id + 1 : id;
	res->error = 0;
	if (READ_ONCE(cmd->event) != sv->seq) {
		res->error = -ESRCH;	/* as the kernel: not for this event */
	} else if (sv->fake_result == SIM_FAKE_POSITIVE_ERROR) {
		res->error = 5;
	} else if (sv->fake_result == SIM_FAKE_EPERM) {
		res->error = -EPERM;
	} else if (id == KVMI_CMD_GET_REGISTERS) {
		res->result.get_registers.mode = KVMI_X86_MODE_PROT64;
		res->result.get_registers.regs.groups = KVMI_REGS_ALL;
		res->result.get_registers.regs.rax = 0xabcd0000ULL + c;
	} else if (id == KVMI_CMD_TRANSLATE_GVA) {
		res->result.translate_gva.gpa =
			READ_ONCE(cmd->args.translate_gva.gva) ^ 0xfff000;
	}
	store_release(&res->seq, c);				/* K5 */
	return true;
}

/*
 * K3..K7: wait for the reply to the pending event, serving commands, in
 * the vCPU's mode; returns the reply as copied (once) from the slot.
 */
static inline struct kvmi_reply *sim_wait_reply(struct sim *s, uint32_t i)
{
	struct kvmi_reply *rp = sim_rp(s, i);
	struct kvmi_vcpu_state *vs = sim_vs(s, i);
	struct sim_vcpu *sv = &s->v[i];
	struct pollfd pfd = {
		.fd = kvmi__vcpu_kick_fd(&s->dom->vcpus[i]),
		.events = POLLIN,
	};
	unsigned int n = 0;
	uint64_t cnt;

	for (;;) {
		if (load_acquire(&vs->done_seq) == sv->seq)	/* ended */
			return NULL;
		if (load_acquire(&rp->seq) == sv->seq)		/* K3 */
			break;
		if (sim_serve_command(s, i))
			continue;
		if (sv->mode == KVMI_WAIT_POLL ||
		    (sv->mode == KVMI_WAIT_HYBRID && ++n < sv->spin)) {
			cpu_relax();
			continue;
		}
		/* K6: NEED_KICK, full barrier, recheck, then sleep. */
		__atomic_fetch_or(&vs->flags, KVMI_VCPU_NEED_KICK,
				  __ATOMIC_RELAXED);
		smp_mb();	/* pairs with the tool's T3 */
		if (load_acquire(&rp->seq) == sv->seq ||
		    load_acquire(&sim_cmd(s, i)->seq) != sv->cmd_seen) {
			__atomic_fetch_and(&vs->flags, ~KVMI_VCPU_NEED_KICK,
					   __ATOMIC_RELAXED);
			continue;
		}
		sv->sleeps++;
		poll(&pfd, 1, -1);
		if (read(pfd.fd, &cnt, sizeof(cnt)) == sizeof(cnt))
			sv->kicks_read++;
		__atomic_fetch_and(&vs->flags, ~KVMI_VCPU_NEED_KICK,
				   __ATOMIC_RELAXED);
	}
	sim_serve_command(s, i);	/* published with the reply: first */
	memcpy(&sv->last_reply, rp, sizeof(*rp));
	vs->done_action = sv->last_reply.action;
	vs->done_reason = sv->last_reply.event == sim_ev(s, i)->id ?
			  KVMI_DONE_REPLY : KVMI_DONE_BAD_REPLY;
	store_release(&vs->done_seq, sv->seq);			/* K7 */
	return &sv->last_reply;
}

#endif /* KVMI_TEST_SIM_H */
