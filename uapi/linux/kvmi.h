/* SPDX-License-Identifier: GPL-2.0 WITH Linux-syscall-note */
#ifndef _UAPI__LINUX_KVMI_H
#define _UAPI__LINUX_KVMI_H

/*
 * kvmi-ring: KVM virtual machine introspection over shared memory.
 *
 * Documentation/virt/kvm/kvmi.rst describes every element of this header.
 *
 * ABI rules, for everything below:
 *  - only fixed-width types; pointers travel as __u64;
 *  - every structure is a multiple of 8 bytes, with its padding named;
 *    padding and reserved fields of ioctl arguments must be zero and
 *    unknown flags are refused, both with -EINVAL;
 *  - append-only: a structure grows only at its end, and only a structure
 *    with a leading 'size' field may grow; new behaviour is announced by
 *    KVMI_FEATURE_* bits and by KVMI_IOCTL_CHECK_COMMAND/CHECK_EVENT;
 *  - the shared-memory records are never resized in place: their sizes
 *    and offsets are reported at run time (KVMI_IOCTL_GET_VERSION,
 *    KVMI_IOCTL_GET_LAYOUT), so that a later layout can move them.
 *
 * Everything marked "issue 4" is defined now so that the ABI is planned
 * ahead, but is not available yet: KVMI_IOCTL_CHECK_COMMAND and
 * KVMI_IOCTL_CHECK_EVENT report -EOPNOTSUPP for it.
 *
 * The register structures are x86 specific (x86-64 hosts only).
 */

#include <linux/const.h>
#include <linux/types.h>
#include <linux/ioctl.h>
#include <linux/kvm.h>

/* ------------------------------------------------------------------ */
/* Discovery                                                           */
/* ------------------------------------------------------------------ */

/* The version of this ABI; KVM_CHECK_EXTENSION(KVM_CAP_INTROSPECTION). */
#define KVMI_VERSION			1

/*
 * Provisional: a number above the last one used by Linux 6.12 (238); it
 * moves to linux/kvm.h, and may change, when the series is merged.
 */
#define KVM_CAP_INTROSPECTION		239

/* struct kvmi_version.features */
#define KVMI_FEATURE_RING		_BITULL(0) /* shared memory transport */
#define KVMI_FEATURE_SINGLESTEP		_BITULL(1) /* invisible single-step */
#define KVMI_FEATURE_PF_EMULATION	_BITULL(2) /* NOEMU, EMUL_NOWRITE */
#define KVMI_FEATURE_INJECT_STATUS	_BITULL(3) /* inject_seq, inject_status */
#define KVMI_FEATURE_SVA		_BITULL(4) /* map windows, MAP/UNMAP_..._SVA */
#define KVMI_FEATURE_SOCKET		_BITULL(5) /* KVMI_TRANSPORT_SOCKET */
#define KVMI_FEATURE_PF_CTX		_BITULL(6) /* SET_CTX */

/*
 * Guest ABI: the KVMi hypercall.  RAX = KVM_HC_KVMI, arguments in RBX,
 * RCX, RDX, RSI (tool defined), executed with VMCALL or VMMCALL at CPL 0.
 * Provisional: the first number Linux 6.12's linux/kvm_para.h leaves free.
 */
#define KVM_HC_KVMI			13

/* ------------------------------------------------------------------ */
/* VM file descriptor ioctls (KVMIO, provisional numbers 0xd6..0xd9)   */
/* ------------------------------------------------------------------ */

#define KVMI_TRANSPORT_RING		0
#define KVMI_TRANSPORT_SOCKET		1 /* KVMI_FEATURE_SOCKET */

/* KVM_INTROSPECTION_OPEN; returns the introspection fd (O_CLOEXEC). */
struct kvmi_open {
	__u32 size;		/* the caller's sizeof(struct kvmi_open) */
	__u32 flags;		/* none defined: 0 */
	__u32 transport;	/* KVMI_TRANSPORT_* */
	__s32 transport_fd;	/* KVMI_TRANSPORT_SOCKET: the socket; else 0 */
	__u64 reserved[2];	/* 0 */
};

/* KVM_INTROSPECTION_SET_ALLOWED: bit n of the map allows id n. */
#define KVMI_ALLOWED_WORDS		4
struct kvmi_allowed {
	__u32 flags;		/* none defined: 0 */
	__u32 padding;
	__u64 commands[KVMI_ALLOWED_WORDS];	/* KVMI_CMD_* */
	__u64 events[KVMI_ALLOWED_WORDS];	/* KVMI_EVENT_* */
};

/* KVM_INTROSPECTION_SET_DEADLINE */
struct kvmi_deadline {
	__u64 reply_ns;		/* 0: no deadline (the default) */
	__u32 flags;		/* none defined: 0 */
	__u32 padding;
};

/* KVM_INTROSPECTION_UNHOOK */
#define KVMI_UNHOOK_FORCE		_BITUL(0)
struct kvmi_unhook {
	__u32 flags;		/* KVMI_UNHOOK_* */
	__u32 padding;
	__u64 timeout_ns;	/* how long to wait for the tool to close */
};

#define KVM_INTROSPECTION_OPEN		_IOW(KVMIO, 0xd6, struct kvmi_open)
#define KVM_INTROSPECTION_SET_ALLOWED	_IOW(KVMIO, 0xd7, struct kvmi_allowed)
#define KVM_INTROSPECTION_SET_DEADLINE	_IOW(KVMIO, 0xd8, struct kvmi_deadline)
#define KVM_INTROSPECTION_UNHOOK	_IOW(KVMIO, 0xd9, struct kvmi_unhook)

/* ------------------------------------------------------------------ */
/* Command and event identifiers                                       */
/* ------------------------------------------------------------------ */

/*
 * One space of command ids.  0x01-0x3f are ioctls on the introspection
 * fd (the id is the ioctl number); 0x40-0x7f are vCPU commands, written
 * to a vCPU's command slot and served by that vCPU while it waits in an
 * event.  0 is never a valid id.
 */
#define KVMI_CMD_GET_VERSION		0x01
#define KVMI_CMD_GET_LAYOUT		0x02
#define KVMI_CMD_CHECK_COMMAND		0x03
#define KVMI_CMD_CHECK_EVENT		0x04
#define KVMI_CMD_GET_GUEST_INFO		0x05
#define KVMI_CMD_CONTROL_EVENTS		0x06
#define KVMI_CMD_SET_VCPU_DOORBELLS	0x07
#define KVMI_CMD_SET_WAIT_MODE		0x08
#define KVMI_CMD_PAUSE_VCPU		0x09
#define KVMI_CMD_PAUSE_ALL		0x0a
#define KVMI_CMD_UNPAUSE		0x0b
/* VM-wide commands of issue 4 (0x10, 0x11 not available yet) */
#define KVMI_CMD_GET_PAGE_ACCESS	0x10
#define KVMI_CMD_SET_PAGE_ACCESS	0x11
#define KVMI_CMD_READ_PHYSICAL		0x12
#define KVMI_CMD_WRITE_PHYSICAL		0x13
#define KVMI_CMD_SHUTDOWN_GUEST		0x14
/* zero-copy mappings of guest pages (issue 5) */
#define KVMI_CMD_MAP_PHYSICAL_PAGE_TO_SVA	0x15
#define KVMI_CMD_UNMAP_PHYSICAL_PAGE_FROM_SVA	0x16

/* vCPU commands */
#define KVMI_CMD_GET_REGISTERS		0x40
#define KVMI_CMD_SET_REGISTERS		0x41
/* vCPU commands */
#define KVMI_CMD_GET_CPUID		0x42
#define KVMI_CMD_GET_XCR		0x43
#define KVMI_CMD_GET_XSAVE_INFO		0x44
#define KVMI_CMD_GET_XSAVE		0x45
#define KVMI_CMD_SET_XSAVE		0x46
#define KVMI_CMD_GET_MTRR_TYPE		0x47
#define KVMI_CMD_GET_MTRRS		0x48
#define KVMI_CMD_TRANSLATE_GVA		0x49
#define KVMI_CMD_INJECT_EXCEPTION	0x4a
#define KVMI_CMD_CONTROL_SINGLESTEP	0x4b

/* Events.  0 is never a valid id. */
#define KVMI_EVENT_UNHOOK		1  /* VM event, no vCPU waits */
#define KVMI_EVENT_PAUSE		2
#define KVMI_EVENT_HYPERCALL		3
#define KVMI_EVENT_BREAKPOINT		4
#define KVMI_EVENT_CR			5
#define KVMI_EVENT_MSR			6
#define KVMI_EVENT_XSETBV		7
/* events of issue 4 */
#define KVMI_EVENT_TRAP			8
#define KVMI_EVENT_DESCRIPTOR		9
#define KVMI_EVENT_SINGLESTEP		10
#define KVMI_EVENT_PAGE_FAULT		11

/* Reply actions (struct kvmi_reply.action); validity depends on the event */
#define KVMI_ACTION_CONTINUE		0
#define KVMI_ACTION_ALLOW		1
#define KVMI_ACTION_DENY		2
#define KVMI_ACTION_RETRY		3
#define KVMI_ACTION_CRASH		4
#define KVMI_ACTION_NOEMU		5 /* PAGE_FAULT only */
#define KVMI_ACTION_SET_CTX		6 /* PAGE_FAULT only */
#define KVMI_ACTION_EMUL_NOWRITE	7 /* PAGE_FAULT only */

/* The vCPU number that means "every vCPU, now and created later". */
#define KVMI_ALL_VCPUS			0xffffffffU

/* ------------------------------------------------------------------ */
/* Introspection file descriptor ioctls (magic 0xDA)                   */
/* ------------------------------------------------------------------ */

#define KVMI_IOCTL_MAGIC		0xDA

/* KVMI_IOCTL_GET_VERSION */
struct kvmi_version {
	__u32 size;		/* in: caller's size; out: kernel's size */
	__u32 version;		/* KVMI_VERSION */
	__u64 features;		/* KVMI_FEATURE_* */
	__u32 event_size;	/* sizeof(struct kvmi_event) */
	__u32 reply_size;	/* sizeof(struct kvmi_reply) */
	__u32 cmd_size;		/* sizeof(struct kvmi_cmd) */
	__u32 cmd_result_size;	/* sizeof(struct kvmi_cmd_result) */
	__u32 regs_size;	/* sizeof(struct kvmi_x86_regs) */
	__u32 padding;
};

/* Where the records of one vCPU are, relative to its region. */
struct kvmi_vcpu_kernel_offsets {
	__u32 state;		/* struct kvmi_vcpu_state */
	__u32 event;		/* struct kvmi_event */
	__u32 cmd_result;	/* struct kvmi_cmd_result */
	__u32 counters;		/* struct kvmi_vcpu_counters */
	__u32 data;		/* output data area */
	__u32 data_size;
	__u32 reserved[2];
};

struct kvmi_vcpu_tool_offsets {
	__u32 state;		/* struct kvmi_tool_state */
	__u32 reply;		/* struct kvmi_reply */
	__u32 cmd;		/* struct kvmi_cmd */
	__u32 data;		/* input data area */
	__u32 data_size;
	__u32 reserved[3];
};

/*
 * KVMI_IOCTL_GET_LAYOUT: mmap offsets.  vCPU i's kernel-written region is
 * at kernel_offset + i * kernel_stride (kernel_size bytes), its
 * tool-written region at tool_offset + i * tool_stride (tool_size bytes),
 * for i < max_vcpus.
 */
struct kvmi_layout {
	__u32 size;		/* in: caller's size; out: kernel's size */
	__u32 padding;
	__u32 page_size;
	__u32 max_vcpus;
	__u64 vm_offset;	/* struct kvmi_vm_state, read-only */
	__u64 vm_size;
	__u64 kernel_offset;	/* per-vCPU kernel-written regions, read-only */
	__u64 kernel_stride;
	__u64 kernel_size;
	__u64 tool_offset;	/* per-vCPU tool-written regions, read-write */
	__u64 tool_stride;
	__u64 tool_size;
	struct kvmi_vcpu_kernel_offsets kernel_off;
	struct kvmi_vcpu_tool_offsets tool_off;
	/* size > 144: KVMI_FEATURE_SVA */
	__u64 sva_offset;	/* mmap offset of every map window */
	__u64 sva_size;		/* the largest window, in bytes */
};

/* KVMI_IOCTL_CHECK_COMMAND, KVMI_IOCTL_CHECK_EVENT */
struct kvmi_check {
	__u32 id;		/* KVMI_CMD_* or KVMI_EVENT_* */
	__u32 flags;		/* none defined: 0 */
};

/* KVMI_IOCTL_GET_GUEST_INFO */
struct kvmi_guest_info {
	__u32 size;		/* in: caller's size; out: kernel's size */
	__u32 nr_vcpus;		/* vCPUs created so far */
	__u32 max_vcpus;
	__u32 tsc_khz;		/* the VM's default TSC frequency */
};

/* KVMI_IOCTL_CONTROL_EVENTS */
struct kvmi_control_events {
	__u32 vcpu;		/* vCPU index or KVMI_ALL_VCPUS */
	__u16 event;		/* KVMI_EVENT_* */
	__u8 enable;		/* 1: enable, 0: disable */
	__u8 padding1;
	__u32 param;		/* CR: register number, MSR: index; else 0 */
	__u32 padding2;
};

/* KVMI_IOCTL_SET_VCPU_DOORBELLS */
#define KVMI_DOORBELL_NOTIFY		_BITUL(0) /* set notify_fd */
#define KVMI_DOORBELL_KICK		_BITUL(1) /* set kick_fd */
struct kvmi_doorbells {
	__u32 vcpu;		/* vCPU index or KVMI_ALL_VCPUS */
	__u32 flags;		/* KVMI_DOORBELL_*: which fds to change */
	__s32 notify_fd;	/* eventfd the kernel signals, -1 removes */
	__s32 kick_fd;		/* eventfd the kernel watches, -1 removes */
};

/* KVMI_IOCTL_SET_WAIT_MODE */
#define KVMI_WAIT_BLOCK			0 /* sleep at once: spin_ns 0 */
#define KVMI_WAIT_HYBRID		1 /* spin spin_ns, then sleep */
#define KVMI_WAIT_POLL			2 /* spin until done: spin_ns 0 */
#define KVMI_WAIT_DEFAULT_SPIN_NS	200000
struct kvmi_wait_mode {
	__u32 vcpu;		/* vCPU index or KVMI_ALL_VCPUS */
	__u32 mode;		/* KVMI_WAIT_* */
	__u64 spin_ns;
};

/* KVMI_IOCTL_PAUSE_VCPU, KVMI_IOCTL_UNPAUSE */
struct kvmi_pause_vcpu {
	__u32 vcpu;		/* vCPU index (UNPAUSE: or KVMI_ALL_VCPUS) */
	__u32 flags;		/* none defined: 0 */
};

/* KVMI_IOCTL_PAUSE_ALL */
struct kvmi_pause_all {
	__u32 flags;		/* none defined: 0 */
	__u32 padding;
};

/* KVMI_IOCTL_GET_PAGE_ACCESS, KVMI_IOCTL_SET_PAGE_ACCESS */
#define KVMI_PAGE_ACCESS_R		_BITUL(0)
#define KVMI_PAGE_ACCESS_W		_BITUL(1)
#define KVMI_PAGE_ACCESS_X		_BITUL(2)
#define KVMI_PAGE_ACCESS_MAX_COUNT	4096 /* entries per call */
struct kvmi_page_access_entry {
	__u64 gpa;
	__u8 access;		/* KVMI_PAGE_ACCESS_*: allowed accesses */
	__u8 padding[7];
};

struct kvmi_page_access {
	__u64 entries;		/* struct kvmi_page_access_entry[count] */
	__u32 count;
	__u32 flags;		/* none defined: 0 */
	__u32 done;		/* out: entries processed */
	__u32 padding;
};

/* KVMI_IOCTL_READ_PHYSICAL, KVMI_IOCTL_WRITE_PHYSICAL */
struct kvmi_physical {
	__u64 gpa;
	__u64 size;
	__u64 buffer;		/* user address */
	__u32 flags;		/* none defined: 0 */
	__u32 padding;
};

/* KVMI_IOCTL_SHUTDOWN_GUEST */
struct kvmi_shutdown {
	__u32 flags;		/* none defined: 0 */
	__u32 padding;
};

#define KVMI_IOCTL_GET_VERSION \
	_IOWR(KVMI_IOCTL_MAGIC, KVMI_CMD_GET_VERSION, struct kvmi_version)
#define KVMI_IOCTL_GET_LAYOUT \
	_IOWR(KVMI_IOCTL_MAGIC, KVMI_CMD_GET_LAYOUT, struct kvmi_layout)
#define KVMI_IOCTL_CHECK_COMMAND \
	_IOW(KVMI_IOCTL_MAGIC, KVMI_CMD_CHECK_COMMAND, struct kvmi_check)
#define KVMI_IOCTL_CHECK_EVENT \
	_IOW(KVMI_IOCTL_MAGIC, KVMI_CMD_CHECK_EVENT, struct kvmi_check)
#define KVMI_IOCTL_GET_GUEST_INFO \
	_IOWR(KVMI_IOCTL_MAGIC, KVMI_CMD_GET_GUEST_INFO, struct kvmi_guest_info)
#define KVMI_IOCTL_CONTROL_EVENTS \
	_IOW(KVMI_IOCTL_MAGIC, KVMI_CMD_CONTROL_EVENTS, struct kvmi_control_events)
#define KVMI_IOCTL_SET_VCPU_DOORBELLS \
	_IOW(KVMI_IOCTL_MAGIC, KVMI_CMD_SET_VCPU_DOORBELLS, struct kvmi_doorbells)
#define KVMI_IOCTL_SET_WAIT_MODE \
	_IOW(KVMI_IOCTL_MAGIC, KVMI_CMD_SET_WAIT_MODE, struct kvmi_wait_mode)
#define KVMI_IOCTL_PAUSE_VCPU \
	_IOW(KVMI_IOCTL_MAGIC, KVMI_CMD_PAUSE_VCPU, struct kvmi_pause_vcpu)
#define KVMI_IOCTL_PAUSE_ALL \
	_IOW(KVMI_IOCTL_MAGIC, KVMI_CMD_PAUSE_ALL, struct kvmi_pause_all)
#define KVMI_IOCTL_UNPAUSE \
	_IOW(KVMI_IOCTL_MAGIC, KVMI_CMD_UNPAUSE, struct kvmi_pause_vcpu)
#define KVMI_IOCTL_GET_PAGE_ACCESS \
	_IOWR(KVMI_IOCTL_MAGIC, KVMI_CMD_GET_PAGE_ACCESS, struct kvmi_page_access)
#define KVMI_IOCTL_SET_PAGE_ACCESS \
	_IOWR(KVMI_IOCTL_MAGIC, KVMI_CMD_SET_PAGE_ACCESS, struct kvmi_page_access)
#define KVMI_IOCTL_READ_PHYSICAL \
	_IOW(KVMI_IOCTL_MAGIC, KVMI_CMD_READ_PHYSICAL, struct kvmi_physical)
#define KVMI_IOCTL_WRITE_PHYSICAL \
	_IOW(KVMI_IOCTL_MAGIC, KVMI_CMD_WRITE_PHYSICAL, struct kvmi_physical)
#define KVMI_IOCTL_SHUTDOWN_GUEST \
	_IOW(KVMI_IOCTL_MAGIC, KVMI_CMD_SHUTDOWN_GUEST, struct kvmi_shutdown)

/*
 * KVMI_IOCTL_MAP_PHYSICAL_PAGE_TO_SVA, KVMI_IOCTL_UNMAP_PHYSICAL_PAGE_FROM_SVA
 * (KVMI_FEATURE_SVA): show guest pages at addresses of a map window, an
 * mmap() of the introspection fd at kvmi_layout.sva_offset, in the
 * caller's address space (kvmi.rst, section 21).  Both take an array of
 * entries; UNMAP reads only address (gpa and flags must be 0).
 */
#define KVMI_SVA_WRITE			_BITUL(0) /* map writable */
struct kvmi_sva_entry {
	__u64 gpa;		/* page aligned */
	__u64 address;		/* page aligned, in a map window */
	__u32 flags;		/* KVMI_SVA_* */
	__u32 padding;
};

struct kvmi_sva_batch {
	__u64 entries;		/* struct kvmi_sva_entry[count] */
	__u32 count;
	__u32 flags;		/* none defined: 0 */
	__u32 done;		/* out: entries done, in order */
	__u32 padding;
};

#define KVMI_IOCTL_MAP_PHYSICAL_PAGE_TO_SVA \
	_IOWR(KVMI_IOCTL_MAGIC, KVMI_CMD_MAP_PHYSICAL_PAGE_TO_SVA, \
	      struct kvmi_sva_batch)
#define KVMI_IOCTL_UNMAP_PHYSICAL_PAGE_FROM_SVA \
	_IOWR(KVMI_IOCTL_MAGIC, KVMI_CMD_UNMAP_PHYSICAL_PAGE_FROM_SVA, \
	      struct kvmi_sva_batch)

/* ------------------------------------------------------------------ */
/* x86 register state                                                  */
/* ------------------------------------------------------------------ */

/* struct kvmi_event.mode, struct kvmi_cmd_get_registers_result.mode */
#define KVMI_X86_MODE_REAL		1
#define KVMI_X86_MODE_VM86		2
#define KVMI_X86_MODE_PROT16		3
#define KVMI_X86_MODE_PROT32		4
#define KVMI_X86_MODE_PROT64		5

struct kvmi_x86_segment {
	__u64 base;
	__u32 limit;
	__u16 selector;
	__u8 type;
	__u8 s;
	__u8 dpl;
	__u8 present;
	__u8 avl;
	__u8 l;
	__u8 db;
	__u8 g;
	__u8 unusable;
	__u8 padding;
};

struct kvmi_x86_dtable {
	__u64 base;
	__u16 limit;
	__u16 padding[3];
};

/* struct kvmi_x86_regs.groups */
#define KVMI_REGS_GPRS			_BITUL(0) /* rax..r15, rflags */
#define KVMI_REGS_RIP			_BITUL(1) /* rip */
#define KVMI_REGS_CRS			_BITUL(2) /* cr0, cr2-cr4, cr8, efer */
#define KVMI_REGS_DRS			_BITUL(3) /* dr6, dr7 */
#define KVMI_REGS_SEGMENTS		_BITUL(4) /* cs..ldt */
#define KVMI_REGS_DTABLES		_BITUL(5) /* gdt, idt */
#define KVMI_REGS_MSRS			_BITUL(6) /* star..kernel_gs_base */
#define KVMI_REGS_ALL			0x7fU

struct kvmi_x86_regs {
	__u32 groups;		/* KVMI_REGS_*: groups present / to set */
	__u32 padding;
	/* KVMI_REGS_GPRS */
	__u64 rax, rbx, rcx, rdx, rsi, rdi, rsp, rbp;
	__u64 r8, r9, r10, r11, r12, r13, r14, r15;
	__u64 rflags;
	/* KVMI_REGS_RIP */
	__u64 rip;
	/* KVMI_REGS_CRS */
	__u64 cr0, cr2, cr3, cr4, cr8, efer;
	/* KVMI_REGS_DRS */
	__u64 dr6, dr7;
	/* KVMI_REGS_SEGMENTS */
	struct kvmi_x86_segment cs, ds, es, fs, gs, ss, tr, ldt;
	/* KVMI_REGS_DTABLES */
	struct kvmi_x86_dtable gdt, idt;
	/* KVMI_REGS_MSRS */
	__u64 star, lstar, cstar, sfmask;
	__u64 sysenter_cs, sysenter_esp, sysenter_eip;
	__u64 kernel_gs_base;
	/* room for later groups; written 0 by the kernel, never read */
	__u64 reserved[17];
};

/* ------------------------------------------------------------------ */
/* The shared memory                                                   */
/* ------------------------------------------------------------------ */

/*
 * The introspection fd is mmap()ed (MAP_SHARED only, never PROT_EXEC) at
 * the offsets KVMI_IOCTL_GET_LAYOUT reports:
 *
 *   vm_offset        struct kvmi_vm_state                 kernel writes, RO
 *   kernel_offset    vCPU 0 | vCPU 1 | ... (kernel_stride)  kernel writes, RO
 *                      struct kvmi_vcpu_state     NEED_KICK, WAITING, done_seq
 *                      struct kvmi_event          the event slot
 *                      struct kvmi_cmd_result     the command result slot
 *                      struct kvmi_vcpu_counters
 *                      output data area
 *   tool_offset      vCPU 0 | vCPU 1 | ... (tool_stride)    tool writes, RW
 *                      struct kvmi_tool_state     POLLING
 *                      struct kvmi_reply          the reply slot
 *                      struct kvmi_cmd            the command slot
 *                      input data area
 *
 * A PROT_WRITE mapping of a kernel-written area fails with -EPERM.
 *
 * Sequence numbers are free-running __u32, compared only for equality.
 * The kernel never publishes event seq 0 and keeps, in its own memory,
 * the copy of every sequence number it compares.  Whatever it takes from
 * the tool-written region it copies once into kernel memory, validates
 * the copy and never reads the shared field again.  Garbage there can
 * make a reply invalid, never make the kernel misbehave.
 *
 * Life of the slots of one vCPU (s: event sequence, c: command sequence):
 *
 *              [K1] kernel publishes event s
 *    IDLE -------------------------------> PENDING(s) -----+
 *      ^                                    |     ^        |
 *      |     [T4] tool publishes command c  |     |        | [T2] tool
 *      |                                    v     |        v publishes
 *      |                            COMMAND(s, c) |    REPLIED(s)  reply s
 *      |                                    |     |        |
 *      |    [K5] kernel serves c, result c  +-----+        |
 *      |                                                   |
 *      +-- [K3] kernel applies reply s, done_seq = s ------+
 *      |
 *      +-- default action, done_seq = s, from PENDING or COMMAND:
 *          deadline, UNPAUSE (PAUSE events), introspection closed
 *          or detached
 *
 * One event is in flight per vCPU: the vCPU waits in PENDING/COMMAND and
 * the other vCPUs run.  A command published together with a reply is
 * served before the reply is applied.
 *
 * Barriers, and what pairs with what:
 *
 *   kernel (the vCPU thread)              tool
 *
 *   [K0] WRITE_ONCE(ev->seq, 0)
 *        smp_wmb()
 *   [K1] write the event fields           [T1] s = load_acquire(&ev->seq)
 *        store_release(&ev->seq, s)  ---       pairs with K1; copy the event;
 *                                              smp_rmb(); if ev->seq != s
 *                                              the copy is void (K0 pairs)
 *   [K2] smp_mb()                         [T0] (before sleeping)
 *        if (!(ts->flags & POLLING))           clear POLLING in ts->flags
 *            signal notify eventfd             smp_mb()   <-- pairs with K2
 *                                              recheck ev->seq (T1), then
 *                                              read() the notify eventfd
 *
 *                                         [T2] write the reply fields
 *   [K3] r = load_acquire(&rp->seq)  <---      store_release(&rp->seq, s)
 *   [K4] c = load_acquire(&cmd->seq) <--- [T4] write the command fields,
 *        if c is new: copy, serve,             store_release(&cmd->seq, c)
 *   [K5]   write the result,                   then T3
 *          store_release(&res->seq, c) -> [T5] load_acquire(&res->seq) == c
 *        if r == s: copy, apply, then          pairs with K5; read the result
 *   [K7]   store_release(&vs->done_seq, s) -> load_acquire(&vs->done_seq)
 *
 *   (before sleeping)                     [T3] (after T2 or T4)
 *   [K6] set NEED_KICK in vs->flags            smp_mb()   <-- pairs with K6
 *        smp_mb()                              if (vs->flags & NEED_KICK)
 *        recheck rp->seq, cmd->seq                 write() the kick eventfd
 *        (K3, K4), then sleep
 *
 * K2/T0 and K6/T3 are the need-wakeup handshakes (io_uring's
 * SQ_NEED_WAKEUP): each side stores its flag or sequence number, issues
 * a full barrier, then loads the other side's; so either the waker sees
 * the flag and rings, or the sleeper sees the new sequence number and
 * does not sleep.  No wakeup is lost.  K3 is loaded before K4 so that a
 * command published before the reply is seen with it.  K0 marks the slot
 * as being rewritten, seqlock-style: a slot is rewritten while the tool
 * may still read it only if the previous event ended without the tool's
 * reply (deadline, UNPAUSE), and the re-check at T1 then catches it.
 */

/* struct kvmi_vm_state.flags */
#define KVMI_VM_UNHOOK			_BITUL(0) /* VMM asked to unhook */
#define KVMI_VM_DETACHED		_BITUL(1) /* introspection is gone */
#define KVMI_VM_SOCKET			_BITUL(2) /* KVMI_TRANSPORT_SOCKET */

struct kvmi_vm_state {
	__u32 seq;		/* bumped (release) after each change below */
	__u32 flags;		/* KVMI_VM_* */
	__u32 nr_vcpus;		/* vCPUs whose regions exist */
	__u32 max_vcpus;
	__u64 reserved[6];
};

/* struct kvmi_vcpu_state.flags (kernel to tool) */
#define KVMI_VCPU_NEED_KICK		_BITUL(0) /* going to sleep: kick me */
#define KVMI_VCPU_WAITING		_BITUL(1) /* waiting, serving commands */

/* struct kvmi_vcpu_state.done_reason */
#define KVMI_DONE_REPLY			1 /* the tool's reply was applied */
#define KVMI_DONE_BAD_REPLY		2 /* invalid reply: default action */
#define KVMI_DONE_DEADLINE		3 /* deadline expired: default action */
#define KVMI_DONE_UNPAUSE		4 /* KVMI_IOCTL_UNPAUSE: CONTINUE */
#define KVMI_DONE_DETACH		5 /* introspection ended: default */

/* struct kvmi_vcpu_state.inject_status */
#define KVMI_INJECT_DELIVERED		1
#define KVMI_INJECT_DROPPED		2

struct kvmi_vcpu_state {
	__u32 flags;		/* KVMI_VCPU_* */
	__u32 vcpu;		/* this vCPU's index */
	__u32 done_seq;		/* last event finished (release) */
	__u8 done_action;	/* KVMI_ACTION_* applied to it */
	__u8 done_reason;	/* KVMI_DONE_* */
	__u16 padding1;
	__u32 inject_seq;	/* INJECT_EXCEPTION command seq */
	__u32 inject_status;	/* KVMI_INJECT_* */
	__u64 reserved[5];
};

/* struct kvmi_tool_state.flags (tool to kernel) */
#define KVMI_TOOL_POLLING		_BITUL(0) /* spinning: don't signal */

struct kvmi_tool_state {
	__u32 flags;		/* KVMI_TOOL_* */
	__u32 padding;
	__u64 reserved[7];
};

/* Per-event data.  Fields read by the tool; the kernel writes them. */
struct kvmi_event_hypercall {
	__u8 insn_len;
	__u8 padding[7];
};

struct kvmi_event_breakpoint {
	__u64 gpa;		/* guest physical address of the INT3 */
	__u64 gva;		/* linear address: cs.base + rip */
	__u8 insn_len;
	__u8 padding[7];
};

struct kvmi_event_cr {
	__u32 cr;		/* 0, 3 or 4 */
	__u32 padding;
	__u64 old_value;
	__u64 new_value;
};

struct kvmi_event_msr {
	__u32 msr;
	__u32 padding;
	__u64 old_value;
	__u64 new_value;
};

struct kvmi_event_xsetbv {
	__u32 xcr;
	__u32 padding;
	__u64 old_value;
	__u64 new_value;
};

/* .flags of kvmi_event_trap, kvmi_reply_trap, kvmi_cmd_inject_exception */
#define KVMI_EXCEPTION_ERROR_CODE	_BITUL(0) /* error_code is valid */

struct kvmi_event_trap {
	__u8 vector;
	__u8 flags;		/* KVMI_EXCEPTION_ERROR_CODE */
	__u8 padding[2];
	__u32 error_code;
	__u64 cr2;		/* #PF only */
};

/* struct kvmi_event_descriptor.descriptor, .flags */
#define KVMI_DESC_IDTR			1
#define KVMI_DESC_GDTR			2
#define KVMI_DESC_LDTR			3
#define KVMI_DESC_TR			4
#define KVMI_DESC_LOAD			_BITUL(0) /* LIDT..LTR, else SIDT..STR */

struct kvmi_event_descriptor {
	__u8 descriptor;	/* KVMI_DESC_IDTR..KVMI_DESC_TR */
	__u8 flags;		/* KVMI_DESC_LOAD */
	__u8 padding[6];
};

struct kvmi_event_singlestep {
	__u8 failed;
	__u8 padding[7];
};

/* struct kvmi_event_page_fault.flags */
#define KVMI_PF_GVA_VALID		_BITUL(0)

struct kvmi_event_page_fault {
	__u64 gpa;
	__u64 gva;		/* valid with KVMI_PF_GVA_VALID */
	__u8 access;		/* KVMI_PAGE_ACCESS_*: the access attempted */
	__u8 flags;		/* KVMI_PF_* */
	__u8 padding[6];
};

union kvmi_event_data {
	struct kvmi_event_hypercall hypercall;
	struct kvmi_event_breakpoint breakpoint;
	struct kvmi_event_cr cr;
	struct kvmi_event_msr msr;
	struct kvmi_event_xsetbv xsetbv;
	struct kvmi_event_trap trap;
	struct kvmi_event_descriptor descriptor;
	struct kvmi_event_singlestep singlestep;
	struct kvmi_event_page_fault page_fault;
	__u64 raw[8];		/* fixes the size: 64 bytes */
};

/* The event slot (kernel-written region). */
struct kvmi_event {
	__u32 seq;		/* published last, store-release */
	__u16 id;		/* KVMI_EVENT_* */
	__u8 mode;		/* KVMI_X86_MODE_* */
	__u8 cpl;
	__u32 vcpu;
	__u32 padding;
	__u64 timestamp_ns;	/* CLOCK_MONOTONIC, when published */
	union kvmi_event_data data;
	struct kvmi_x86_regs regs; /* the vCPU's registers at the event */
};

/* struct kvmi_reply.flags */
#define KVMI_REPLY_SET_REGS		_BITUL(0) /* apply regs (regs.groups) */
#define KVMI_REPLY_SINGLESTEP		_BITUL(1) /* then step once */

/* Per-event reply data */
struct kvmi_reply_cr {
	__u64 new_value;	/* ALLOW writes this value */
};

struct kvmi_reply_msr {
	__u64 new_value;	/* ALLOW writes this value */
};

/* Per-event reply data of issue 4 */
struct kvmi_reply_trap {
	__u8 vector;
	__u8 flags;		/* KVMI_EXCEPTION_ERROR_CODE */
	__u8 padding[2];
	__u32 error_code;
	__u64 cr2;
};

/* struct kvmi_reply_page_fault.ctx_type */
#define KVMI_PF_CTX_READ		1 /* what it reads from the page */
#define KVMI_PF_CTX_INSN		2 /* the instruction bytes */
#define KVMI_PF_CTX_MAX			64

struct kvmi_reply_page_fault {
	__u16 ctx_size;		/* SET_CTX: bytes of ctx_data used */
	__u8 ctx_type;		/* SET_CTX: KVMI_PF_CTX_* */
	__u8 padding[5];
	__u8 ctx_data[KVMI_PF_CTX_MAX];
};

union kvmi_reply_data {
	struct kvmi_reply_cr cr;
	struct kvmi_reply_msr msr;
	struct kvmi_reply_trap trap;
	struct kvmi_reply_page_fault page_fault;
	__u64 raw[10];		/* fixes the size: 80 bytes */
};

/* The reply slot (tool-written region). */
struct kvmi_reply {
	__u32 seq;		/* = event seq, published last, store-release */
	__u16 event;		/* echo of kvmi_event.id */
	__u8 action;		/* KVMI_ACTION_* */
	__u8 padding1;
	__u32 flags;		/* KVMI_REPLY_* */
	__u32 padding2;
	union kvmi_reply_data data;
	struct kvmi_x86_regs regs; /* read only with KVMI_REPLY_SET_REGS */
};

/* vCPU command arguments */
struct kvmi_cmd_get_cpuid {
	__u32 function;
	__u32 index;
};

struct kvmi_cmd_get_xcr {
	__u32 xcr;
	__u32 padding;
};

struct kvmi_cmd_xsave {		/* GET_XSAVE, SET_XSAVE */
	__u32 size;		/* bytes of the data area to use */
	__u32 padding;
};

struct kvmi_cmd_get_mtrr_type {
	__u64 gpa;
};

struct kvmi_cmd_translate_gva {
	__u64 gva;
};

struct kvmi_cmd_inject_exception {
	__u8 vector;
	__u8 flags;		/* KVMI_EXCEPTION_ERROR_CODE */
	__u8 padding[2];
	__u32 error_code;
	__u64 address;		/* CR2 for #PF */
};

struct kvmi_cmd_control_singlestep {
	__u8 enable;
	__u8 padding[7];
};

union kvmi_cmd_args {
	struct kvmi_x86_regs set_registers;
	struct kvmi_cmd_get_cpuid get_cpuid;
	struct kvmi_cmd_get_xcr get_xcr;
	struct kvmi_cmd_xsave xsave;
	struct kvmi_cmd_get_mtrr_type get_mtrr_type;
	struct kvmi_cmd_translate_gva translate_gva;
	struct kvmi_cmd_inject_exception inject_exception;
	struct kvmi_cmd_control_singlestep control_singlestep;
	__u64 raw[80];		/* fixes the size: 640 bytes */
};

/* The command slot (tool-written region). */
struct kvmi_cmd {
	__u32 seq;		/* new value = new command; store-release */
	__u16 id;		/* KVMI_CMD_*, a vCPU command */
	__u16 flags;		/* none defined: 0 */
	__u32 event;		/* seq of the event it is for */
	__u32 padding;
	union kvmi_cmd_args args;
};

/* vCPU command results */
struct kvmi_cmd_get_registers_result {
	__u8 mode;		/* KVMI_X86_MODE_* */
	__u8 cpl;
	__u8 padding[6];
	struct kvmi_x86_regs regs;
};

struct kvmi_cmd_get_cpuid_result {
	__u32 eax, ebx, ecx, edx;
};

struct kvmi_cmd_get_xcr_result {
	__u64 value;
};

struct kvmi_cmd_xsave_result {	/* GET_XSAVE_INFO, GET_XSAVE */
	__u32 size;		/* xstate size; GET_XSAVE: bytes written */
	__u32 padding;
};

struct kvmi_cmd_get_mtrr_type_result {
	__u8 type;
	__u8 padding[7];
};

struct kvmi_cmd_get_mtrrs_result {
	__u64 pat;
	__u64 cap;
	__u64 def_type;
};

struct kvmi_cmd_translate_gva_result {
	__u64 gpa;
};

union kvmi_cmd_results {
	struct kvmi_cmd_get_registers_result get_registers;
	struct kvmi_cmd_get_cpuid_result get_cpuid;
	struct kvmi_cmd_get_xcr_result get_xcr;
	struct kvmi_cmd_xsave_result xsave;
	struct kvmi_cmd_get_mtrr_type_result get_mtrr_type;
	struct kvmi_cmd_get_mtrrs_result get_mtrrs;
	struct kvmi_cmd_translate_gva_result translate_gva;
	__u64 raw[81];		/* fixes the size: 648 bytes */
};

/* The command result slot (kernel-written region). */
struct kvmi_cmd_result {
	__u32 seq;		/* = command seq, stored last (release) */
	__u16 id;		/* echo of kvmi_cmd.id */
	__u16 padding1;
	__s32 error;		/* 0 or -errno */
	__u32 padding2;
	union kvmi_cmd_results result;
};

/* Counters of one vCPU (kernel-written region), also in KVM's stats. */
struct kvmi_vcpu_counters {
	__u64 events;		/* events published */
	__u64 replies;		/* valid replies applied */
	__u64 bad_replies;	/* invalid replies: default action applied */
	__u64 commands;		/* vCPU commands served */
	__u64 command_errors;	/* of which failed (error != 0) */
	__u64 deadlines;	/* deadline expiries */
	__u64 notify_signals;	/* notify eventfd signalled */
	__u64 notify_suppressed; /* not signalled: KVMI_TOOL_POLLING */
	__u64 kicks;		/* wakeups through the kick eventfd */
	__u64 sleeps;		/* times the vCPU slept waiting */
	__u64 spin_hits;	/* replies or commands caught spinning */
	__u64 reserved[5];
};

/* ------------------------------------------------------------------ */
/* Guest discovery: the control device /dev/kvmi (kvmi.rst, sec. 20)   */
/* ------------------------------------------------------------------ */

/* KVM_INTROSPECTION_SET_UUID, KVM_INTROSPECTION_GET_UUID (VM, VMM only) */
struct kvmi_guest_uuid {
	__u8 uuid[16];		/* SET: not all zero */
	__u32 flags;		/* none defined: 0 */
	__u32 padding;
};

/* KVM_INTROSPECTION_OPT_OUT (VM, VMM only): refuse KVMI_DEV_OPEN_GUEST */
struct kvmi_opt_out {
	__u32 flags;		/* none defined: 0 */
	__u32 padding;
};

/* Provisional numbers, free in Linux 6.12. */
#define KVM_INTROSPECTION_SET_UUID	_IOW(KVMIO, 0xdd, struct kvmi_guest_uuid)
#define KVM_INTROSPECTION_GET_UUID	_IOR(KVMIO, 0xde, struct kvmi_guest_uuid)
#define KVM_INTROSPECTION_OPT_OUT	_IOW(KVMIO, 0xdf, struct kvmi_opt_out)

/* struct kvmi_guest_record.type */
#define KVMI_GUEST_ON			1 /* the guest appeared */
#define KVMI_GUEST_OFF			2 /* the guest is gone */
#define KVMI_GUEST_OVERFLOW		3 /* records lost: call GET_GUESTS */

/* struct kvmi_guest_record.flags */
#define KVMI_GUEST_OPTED_OUT		_BITUL(0) /* OPEN_GUEST refused */

/* What read() returns on /dev/kvmi, and KVMI_DEV_GET_GUESTS fills in. */
struct kvmi_guest_record {
	__u32 type;		/* KVMI_GUEST_* */
	__u32 flags;		/* KVMI_GUEST_OPTED_OUT */
	__u64 seq;		/* discovery sequence number, from 1 */
	__u64 id;		/* guest id, never reused, never 0 */
	__u8 uuid[16];
	__s32 pid;		/* the VMM's pid in the reader's namespace */
	__u32 nr_vcpus;		/* vCPUs when the record was made */
	__u32 max_vcpus;
	__u32 padding;
	__u64 created_ns;	/* CLOCK_REALTIME when the guest appeared */
};

/* KVMI_DEV_GET_INFO */
struct kvmi_discovery_info {
	__u32 version;		/* KVMI_VERSION */
	__u32 record_size;	/* sizeof(struct kvmi_guest_record) */
	__u32 queue_len;	/* records queued per opener at most */
	__u32 padding;
	__u64 reserved[2];
};

/* KVMI_DEV_GET_GUESTS */
struct kvmi_guest_list {
	__u64 guests;		/* user address of kvmi_guest_record[count] */
	__u32 count;		/* in: room in guests; out: records written */
	__u32 flags;		/* none defined: 0 */
	__u32 total;		/* out: guests present */
	__u32 padding;
	__u64 seq;		/* out: the list is exact as of this seq */
};

/* KVMI_DEV_OPEN_GUEST; returns the introspection fd (O_CLOEXEC). */
struct kvmi_open_guest {
	__u64 id;		/* struct kvmi_guest_record.id */
	__u64 open;		/* user address of a struct kvmi_open */
	__u32 flags;		/* none defined: 0 */
	__u32 padding;
};

/* /dev/kvmi ioctls: magic 0xDA, numbers 0xc0-0xcf (no command ids). */
#define KVMI_DEV_GET_INFO \
	_IOR(KVMI_IOCTL_MAGIC, 0xc0, struct kvmi_discovery_info)
#define KVMI_DEV_GET_GUESTS \
	_IOWR(KVMI_IOCTL_MAGIC, 0xc1, struct kvmi_guest_list)
#define KVMI_DEV_OPEN_GUEST \
	_IOW(KVMI_IOCTL_MAGIC, 0xc2, struct kvmi_open_guest)

/* ------------------------------------------------------------------ */
/* The socket transport (KVMI_TRANSPORT_SOCKET, kvmi.rst section 22)   */
/* ------------------------------------------------------------------ */

/*
 * Every message on the socket is a struct kvmi_msg_hdr followed by
 * 'size' bytes of payload. The payloads are the records of the ring
 * transport; the header says which vCPU and which sequence number.
 *
 *   id                          direction      payload
 *   KVMI_MSG_EVENT              kernel->tool   struct kvmi_event
 *   KVMI_MSG_REPLY              tool->kernel   struct kvmi_reply
 *   KVMI_MSG_VCPU_COMMAND       tool->kernel   struct kvmi_cmd
 *   KVMI_MSG_VCPU_RESULT        kernel->tool   struct kvmi_cmd_result
 *   KVMI_MSG_VM_COMMAND         tool->kernel   struct kvmi_msg_vm_command,
 *                                              then the ioctl's argument
 *   KVMI_MSG_VM_RESULT          kernel->tool   struct kvmi_msg_vm_result,
 *                                              then the ioctl's argument
 *   KVMI_MSG_UNHOOK             kernel->tool   none
 *
 * A malformed message from the tool ends the introspection, as close()
 * of the introspection fd does.
 */
#define KVMI_MSG_EVENT			1
#define KVMI_MSG_REPLY			2
#define KVMI_MSG_VCPU_COMMAND		3
#define KVMI_MSG_VCPU_RESULT		4
#define KVMI_MSG_VM_COMMAND		5
#define KVMI_MSG_VM_RESULT		6
#define KVMI_MSG_UNHOOK			7

/* The largest payload either side sends or accepts. */
#define KVMI_MSG_MAX_SIZE		4096

/*
 * KVMI_CMD_READ_PHYSICAL and KVMI_CMD_WRITE_PHYSICAL as VM commands: the
 * struct kvmi_physical argument (buffer 0), then the data in the message
 * (a write's command, a read's result); at most this many bytes, so that
 * each message stays within KVMI_MSG_MAX_SIZE.
 */
#define KVMI_MSG_PHYSICAL_MAX		4056

struct kvmi_msg_hdr {
	__u16 id;		/* KVMI_MSG_* */
	__u16 flags;		/* none defined: 0 */
	__u32 size;		/* bytes of payload after the header */
	__u32 seq;		/* event, reply: the event's seq; else echoed */
	__u32 vcpu;		/* vCPU messages: the vCPU index; else 0 */
};

/* KVMI_MSG_VM_COMMAND: a VM command, the ioctl's argument follows. */
struct kvmi_msg_vm_command {
	__u16 cmd;		/* KVMI_CMD_*, a VM command */
	__u16 flags;		/* none defined: 0 */
	__u32 padding;		/* 0 */
};

/* KVMI_MSG_VM_RESULT: its result, the argument as the ioctl leaves it. */
struct kvmi_msg_vm_result {
	__u16 cmd;		/* echo of kvmi_msg_vm_command.cmd */
	__u16 padding1;
	__s32 error;		/* 0 or -errno */
};

#endif /* _UAPI__LINUX_KVMI_H */
