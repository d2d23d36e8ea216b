// SPDX-License-Identifier: LGPL-2.1-or-later OR MIT
/*
 * Page access and the PAGE_FAULT event (1.4) with no KVM: the batches of
 * kvmi_dom_set_pages_access() against a simulated KVMI_IOCTL_SET_PAGE_ACCESS
 * (this program's ioctl() stands in for libc's for the simulated dom's
 * fd, -1), restarted after -EINTR, stopped at an error; the event's data
 * decoded, malformed records rejected; the replies built, refused before
 * anything is written.
 */
#include <stdarg.h>
#include <sys/ioctl.h>
#include <sys/syscall.h>

#include "harness.h"
#include "sim.h"

/* The simulated SET_PAGE_ACCESS: what it saw, and how it misbehaves. */
static struct {
	uint64_t gpas[1024];
	uint8_t access[1024];
	unsigned int seen, calls;
	unsigned int eintr_at;	/* -EINTR when this many are seen, once */
	uint64_t enoent_gpa;	/* -ENOENT for the entry of this gpa */
	int bad_done;		/* report more done than asked */
} ka;

int ioctl(int fd, unsigned long req, ...)
{
	struct kvmi_page_access *pa;
	const struct kvmi_page_access_entry *e;
	va_list ap;
	uint32_t i;
	void *arg;

	va_start(ap, req);
	arg = va_arg(ap, void *);
	va_end(ap);
	if (fd != -1 || req != KVMI_IOCTL_SET_PAGE_ACCESS)
		return syscall(SYS_ioctl, fd, req, arg);
	pa = arg;
	e = (const void *)(uintptr_t)pa->entries;
	ka.calls++;
	if (pa->flags || pa->padding || pa->count > 1024) {
		errno = EINVAL;
		return -1;
	}
	/* As the kernel: the whole call is checked before any of it is done. */
	for (i = 0; i < pa->count; i++) {
		if (e[i].padding[0] || e[i].padding[6] ||
		    (ka.enoent_gpa && e[i].gpa == ka.enoent_gpa)) {
			pa->done = i;
			errno = e[i].padding[0] ? EINVAL : ENOENT;
			return -1;
		}
	}
	for (i = 0; i < pa->count; i++) {
		if (ka.eintr_at && ka.seen == ka.eintr_at) {
			ka.eintr_at = 0;
			pa->done = i;
			errno = EINTR;
			return -1;
		}
		ka.gpas[ka.seen] = e[i].gpa;
		ka.access[ka.seen++] = e[i].access;
	}
	pa->done = ka.bad_done ? pa->count + 1 : pa->count;
	return 0;
}

TEST(set_pages_access_in_batches)
{
	uint64_t gpas[300];
	uint32_t done, i;
	struct sim s;

	sim_default(&s, 1);
	CHECK_EQ(0, sim_start(&s, 1));
	for (i = 0; i < 300; i++)
		gpas[i] = 0x100000 + i * 4096ULL;

	/* Refused before any ioctl: unknown rights, no array. */
	CHECK_EQ(-EINVAL, kvmi_dom_set_pages_access(s.dom, gpas, 300, 8, &done));
	CHECK_EQ(-EINVAL, kvmi_dom_set_pages_access(s.dom, NULL, 1, 0, &done));
	CHECK_EQ(0, ka.calls);
	CHECK_EQ(0, kvmi_dom_set_pages_access(s.dom, NULL, 0, 0, &done));
	CHECK_EQ(0, done);

	/* 300 pages in three ioctls, and one more for a signal's restart. */
	ka.eintr_at = 150;
	CHECK_EQ(0, kvmi_dom_set_pages_access(s.dom, gpas, 300,
					      KVMI_PAGE_ACCESS_R |
					      KVMI_PAGE_ACCESS_X, &done));
	CHECK_EQ(300, done);
	CHECK_EQ(300, ka.seen);
	CHECK_EQ(4, ka.calls);
	for (i = 0; i < 300; i++) {
		CHECK_EQ(gpas[i], ka.gpas[i]);
		CHECK_EQ(KVMI_PAGE_ACCESS_R | KVMI_PAGE_ACCESS_X, ka.access[i]);
	}

	/*
	 * An error stops it; done says where, and the pages before the bad
	 * one have their rights although the kernel refused their call whole.
	 */
	ka.seen = 0;
	ka.calls = 0;
	ka.enoent_gpa = gpas[200];
	CHECK_EQ(-ENOENT, kvmi_dom_set_pages_access(s.dom, gpas, 300, 7,
						    &done));
	CHECK_EQ(200, done);
	CHECK_EQ(200, ka.seen);
	for (i = 0; i < 200; i++)
		CHECK_EQ(gpas[i], ka.gpas[i]);
	CHECK_EQ(3, ka.calls);	/* 128, then 128 refused, then 72 */
	ka.enoent_gpa = 0;

	/* A count the kernel never reports. */
	ka.seen = 0;
	ka.bad_done = 1;
	CHECK_EQ(-EBADMSG, kvmi_dom_set_pages_access(s.dom, gpas, 3, 7, NULL));
	ka.bad_done = 0;
	CHECK_EQ(0, kvmi_dom_close(s.dom));
	sim_free(&s);
}

static void publish_pf(struct sim *s, uint32_t seq, uint8_t access)
{
	struct kvmi_event_page_fault *pf;

	sim_publish(s, 0, seq, KVMI_EVENT_PAGE_FAULT);
	pf = &sim_ev(s, 0)->data.page_fault;
	memset(pf, 0, sizeof(*pf));
	pf->gpa = 0x1234000 + seq;
	pf->gva = 0xffffffff81234000ULL + seq;
	pf->access = access;
	pf->flags = KVMI_PF_GVA_VALID;
}

TEST(page_fault_event_and_replies)
{
	struct kvmi_x86_regs regs = { .groups = KVMI_REGS_GPRS };
	const struct kvmi_event_page_fault *pf;
	uint8_t insn[KVMI_PF_CTX_MAX + 1] = { 0x90 };
	struct kvmi_event ev;
	struct kvmi_vcpu *v;
	struct sim s;

	/* Without KVMI_FEATURE_PF_EMULATION: the emulation actions refused. */
	sim_default(&s, 1);
	CHECK_EQ(0, sim_start(&s, 1));
	v = kvmi_dom_vcpu(s.dom, 0);
	CHECK(kvmi_event_as_page_fault(NULL) == NULL);
	CHECK_EQ(-ENOENT, kvmi_vcpu_reply_page_fault(v, KVMI_ACTION_RETRY,
						     NULL));
	publish_pf(&s, 1, KVMI_PAGE_ACCESS_W);
	CHECK_EQ(0, kvmi_vcpu_pop_event(v, &ev));
	pf = kvmi_event_as_page_fault(&ev);
	CHECK(pf == &ev.data.page_fault);
	CHECK_EQ(0x1234001, pf->gpa);
	CHECK_EQ(0xffffffff81234001ULL, pf->gva);
	CHECK_EQ(KVMI_PAGE_ACCESS_W, pf->access);
	CHECK_EQ(KVMI_PF_GVA_VALID, pf->flags);
	CHECK(kvmi_event_as_cr(&ev) == NULL);
	CHECK_EQ(-EOPNOTSUPP, kvmi_vcpu_reply_page_fault(v,
					KVMI_ACTION_EMUL_NOWRITE, NULL));
	CHECK_EQ(-EOPNOTSUPP, kvmi_vcpu_reply_page_fault_ctx(v,
					KVMI_PF_CTX_INSN, insn, 1));
	CHECK_EQ(-EINVAL, kvmi_vcpu_reply_page_fault(v, KVMI_ACTION_DENY,
						     NULL));
	CHECK_EQ(-EINVAL, kvmi_vcpu_reply_page_fault(v, KVMI_ACTION_SET_CTX,
						     NULL));
	CHECK_EQ(-EINVAL, kvmi_vcpu_reply_cr(v, KVMI_ACTION_CONTINUE, 0, NULL));
	CHECK(sim_rp(&s, 0)->seq != 1);
	regs.groups = KVMI_REGS_RIP;
	CHECK_EQ(-EINVAL, kvmi_vcpu_reply_page_fault(v, KVMI_ACTION_ALLOW,
						     &regs));
	CHECK_EQ(-EINVAL, kvmi_vcpu_reply_page_fault(v, KVMI_ACTION_CONTINUE,
						     &regs));
	regs.groups = KVMI_REGS_GPRS;
	CHECK(sim_rp(&s, 0)->seq != 1);
	CHECK_EQ(0, kvmi_vcpu_reply_page_fault(v, KVMI_ACTION_RETRY, NULL));
	CHECK_EQ(1, sim_rp(&s, 0)->seq);
	CHECK_EQ(KVMI_EVENT_PAGE_FAULT, sim_rp(&s, 0)->event);
	CHECK_EQ(KVMI_ACTION_RETRY, sim_rp(&s, 0)->action);
	CHECK_EQ(0, sim_rp(&s, 0)->flags);

	/* Malformed: NULL, and still answerable. */
	publish_pf(&s, 2, 0);
	CHECK_EQ(0, kvmi_vcpu_pop_event(v, &ev));
	CHECK(kvmi_event_as_page_fault(&ev) == NULL);
	ev.data.page_fault.access = 8;
	CHECK(kvmi_event_as_page_fault(&ev) == NULL);
	ev.data.page_fault.access = KVMI_PAGE_ACCESS_X;
	CHECK(kvmi_event_as_page_fault(&ev) != NULL);
	ev.data.page_fault.flags = 2;
	CHECK(kvmi_event_as_page_fault(&ev) == NULL);
	ev.data.page_fault.flags = 0;
	ev.data.page_fault.padding[5] = 1;
	CHECK(kvmi_event_as_page_fault(&ev) == NULL);
	CHECK_EQ(0, kvmi_vcpu_reply_page_fault(v, KVMI_ACTION_CONTINUE, NULL));
	CHECK_EQ(2, sim_rp(&s, 0)->seq);
	CHECK_EQ(0, kvmi_dom_close(s.dom));
	sim_free(&s);

	/* With it: EMUL_NOWRITE, NOEMU (needs RIP); not SET_CTX. */
	sim_default(&s, 1);
	s.ver.features |= KVMI_FEATURE_PF_EMULATION;
	CHECK_EQ(0, sim_start(&s, 1));
	v = kvmi_dom_vcpu(s.dom, 0);
	publish_pf(&s, 3, KVMI_PAGE_ACCESS_W);
	CHECK_EQ(0, kvmi_vcpu_pop_event(v, &ev));
	CHECK_EQ(0, kvmi_vcpu_reply_page_fault(v, KVMI_ACTION_EMUL_NOWRITE,
					       NULL));
	CHECK_EQ(3, sim_rp(&s, 0)->seq);
	CHECK_EQ(KVMI_ACTION_EMUL_NOWRITE, sim_rp(&s, 0)->action);

	publish_pf(&s, 4, KVMI_PAGE_ACCESS_W);
	CHECK_EQ(0, kvmi_vcpu_pop_event(v, &ev));
	CHECK_EQ(-EINVAL, kvmi_vcpu_reply_page_fault(v, KVMI_ACTION_NOEMU,
						     NULL));
	CHECK_EQ(-EINVAL, kvmi_vcpu_reply_page_fault(v, KVMI_ACTION_NOEMU,
						     &regs));
	regs.groups = KVMI_REGS_RIP;
	regs.rip = 0x1000;
	CHECK_EQ(0, kvmi_vcpu_reply_page_fault(v, KVMI_ACTION_NOEMU, &regs));
	CHECK_EQ(4, sim_rp(&s, 0)->seq);
	CHECK_EQ(KVMI_ACTION_NOEMU, sim_rp(&s, 0)->action);
	CHECK_EQ(KVMI_REPLY_SET_REGS, sim_rp(&s, 0)->flags);
	CHECK_EQ(0x1000, sim_rp(&s, 0)->regs.rip);

	publish_pf(&s, 5, KVMI_PAGE_ACCESS_R);
	CHECK_EQ(0, kvmi_vcpu_pop_event(v, &ev));
	CHECK_EQ(-EINVAL, kvmi_vcpu_reply_page_fault_ctx(v, 3, insn, 1));
	CHECK_EQ(-EINVAL, kvmi_vcpu_reply_page_fault_ctx(v, KVMI_PF_CTX_READ,
							 insn, 0));
	CHECK_EQ(-EINVAL, kvmi_vcpu_reply_page_fault_ctx(v, KVMI_PF_CTX_READ,
							 insn, sizeof(insn)));
	CHECK_EQ(-EINVAL, kvmi_vcpu_reply_page_fault_ctx(v, KVMI_PF_CTX_READ,
							 NULL, 1));
	CHECK_EQ(-EOPNOTSUPP, kvmi_vcpu_reply_page_fault_ctx(v,
					KVMI_PF_CTX_READ, insn, 1));
	CHECK(sim_rp(&s, 0)->seq != 5);
	CHECK_EQ(0, kvmi_vcpu_reply_page_fault(v, KVMI_ACTION_ALLOW, NULL));
	CHECK_EQ(0, kvmi_dom_close(s.dom));
	sim_free(&s);

	/* With KVMI_FEATURE_PF_CTX: SET_CTX, 1..64 bytes, registers not RIP. */
	sim_default(&s, 1);
	s.ver.features |= KVMI_FEATURE_PF_CTX;
	CHECK_EQ(0, sim_start(&s, 1));
	v = kvmi_dom_vcpu(s.dom, 0);
	publish_pf(&s, 5, KVMI_PAGE_ACCESS_W);
	CHECK_EQ(0, kvmi_vcpu_pop_event(v, &ev));
	CHECK_EQ(-EINVAL, kvmi_vcpu_reply_page_fault_ctx(v, 0, insn, 1));
	CHECK_EQ(-EINVAL, kvmi_vcpu_reply_page_fault_ctx(v, 3, insn, 1));
	CHECK_EQ(-EINVAL, kvmi_vcpu_reply_page_fault_ctx(v, KVMI_PF_CTX_INSN,
							 insn, 0));
	CHECK_EQ(-EINVAL, kvmi_vcpu_reply_page_fault_ctx(v, KVMI_PF_CTX_INSN,
							 insn, sizeof(insn)));
	regs.groups = KVMI_REGS_RIP | KVMI_REGS_GPRS;
	CHECK_EQ(-EINVAL, kvmi_vcpu_reply_page_fault_ctx_regs(v,
					KVMI_PF_CTX_INSN, insn, 1, &regs));
	/* NOEMU and EMUL_NOWRITE are another feature. */
	CHECK_EQ(-EOPNOTSUPP, kvmi_vcpu_reply_page_fault(v,
					KVMI_ACTION_EMUL_NOWRITE, NULL));
	CHECK(sim_rp(&s, 0)->seq != 5);
	insn[63] = 0xcc;
	CHECK_EQ(0, kvmi_vcpu_reply_page_fault_ctx(v, KVMI_PF_CTX_READ, insn,
						   KVMI_PF_CTX_MAX));
	CHECK_EQ(5, sim_rp(&s, 0)->seq);
	CHECK_EQ(KVMI_ACTION_SET_CTX, sim_rp(&s, 0)->action);
	CHECK_EQ(0, sim_rp(&s, 0)->flags);
	CHECK_EQ(KVMI_PF_CTX_MAX, sim_rp(&s, 0)->data.page_fault.ctx_size);
	CHECK_EQ(KVMI_PF_CTX_READ, sim_rp(&s, 0)->data.page_fault.ctx_type);
	CHECK_EQ(0x90, sim_rp(&s, 0)->data.page_fault.ctx_data[0]);
	CHECK_EQ(0xcc, sim_rp(&s, 0)->data.page_fault.ctx_data[63]);
	CHECK_EQ(0, sim_rp(&s, 0)->data.page_fault.padding[0]);

	/* With registers; the bytes after ctx_size are zero, not stale. */
	publish_pf(&s, 6, KVMI_PAGE_ACCESS_X);
	CHECK_EQ(0, kvmi_vcpu_pop_event(v, &ev));
	regs.groups = KVMI_REGS_GPRS;
	regs.rax = 0x77;
	CHECK_EQ(0, kvmi_vcpu_reply_page_fault_ctx_regs(v, KVMI_PF_CTX_INSN,
							insn, 2, &regs));
	CHECK_EQ(6, sim_rp(&s, 0)->seq);
	CHECK_EQ(KVMI_ACTION_SET_CTX, sim_rp(&s, 0)->action);
	CHECK_EQ(KVMI_REPLY_SET_REGS, sim_rp(&s, 0)->flags);
	CHECK_EQ(0x77, sim_rp(&s, 0)->regs.rax);
	CHECK_EQ(2, sim_rp(&s, 0)->data.page_fault.ctx_size);
	CHECK_EQ(KVMI_PF_CTX_INSN, sim_rp(&s, 0)->data.page_fault.ctx_type);
	CHECK_EQ(0x90, sim_rp(&s, 0)->data.page_fault.ctx_data[0]);
	CHECK_EQ(0, sim_rp(&s, 0)->data.page_fault.ctx_data[2]);
	CHECK_EQ(0, sim_rp(&s, 0)->data.page_fault.ctx_data[63]);
	CHECK_EQ(0, kvmi_dom_close(s.dom));
	sim_free(&s);
}
