/* SPDX-License-Identifier: LGPL-2.1-or-later OR MIT */
/*
 * libkvmi: the user library of kvmi-ring (KVM introspection over shared
 * memory). Documentation/userlib/guide.rst is the guide; each function
 * has a man page (kvmi_dom_open(3), kvmi_vcpu_pop_event(3), ...); the
 * ABI underneath is <linux/kvmi.h>, described in
 * Documentation/virt/kvm/kvmi.rst.
 *
 * Errors: every function that can fail returns a negative errno
 * (-EINVAL, ...) and never relies on errno alone; errno is left as the
 * failing system call set it.
 *
 * Objects and thread rules:
 *
 *  struct kvmi_dom   one introspected VM: the introspection fd, the
 *                    shared memory mapped from it, the VM-wide doorbells.
 *                    The VM-wide calls (kvmi_dom_*, except the ones named
 *                    below) may be called from any thread at any time:
 *                    each is one ioctl on the introspection fd.
 *                    kvmi_dom_dispatch() and the pollable fd are used by
 *                    one thread at a time per dom. kvmi_dom_close() is
 *                    called once, after every other thread has stopped
 *                    using the dom and its vCPUs.
 *  struct kvmi_vcpu  the slots of one vCPU. One consumer at a time per
 *                    vCPU: peek, pop, wait, reply and commands on one
 *                    vCPU must come from one thread at a time (or be
 *                    serialised by the tool). Different vCPUs may be
 *                    served by different threads with no lock at all:
 *                    the library keeps no state shared between vCPUs on
 *                    these paths.
 *  struct kvmi_uring an io_uring event loop over any number of doms; used
 *                    by one thread at a time.
 *  struct kvmi_disc  guest discovery (/dev/kvmi): the guests of the host
 *                    as they come and go. kvmi_disc_dispatch() is used by
 *                    one thread at a time; the others from any thread.
 *
 * The poll path (kvmi_vcpu_peek_event(), kvmi_vcpu_pop_event(),
 * kvmi_vcpu_reply() when the vCPU spins) makes no system call.
 */
#ifndef KVMI_KVMI_H
#define KVMI_KVMI_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <linux/kvmi.h>

#ifdef __cplusplus
extern "C" {
#endif

/* The library's version: KVMI_LIB_VERSION_MAJOR.MINOR. */
#define KVMI_LIB_VERSION_MAJOR	1
#define KVMI_LIB_VERSION_MINOR	8

struct kvmi_dom;
struct kvmi_vcpu;
struct kvmi_uring;
struct kvmi_disc;

/* ------------------------------------------------------------------ */
/* VM fd: the VMM's ioctls and the raw open                            */
/* ------------------------------------------------------------------ */

int kvmi_vm_check(int vm_fd);
int kvmi_vm_open(int vm_fd);
int kvmi_vm_set_allowed(int vm_fd, const struct kvmi_allowed *allowed);
int kvmi_vm_set_deadline(int vm_fd, uint64_t reply_ns);
int kvmi_vm_unhook(int vm_fd, uint32_t flags, uint64_t timeout_ns);

/* ------------------------------------------------------------------ */
/* Getting hold of a VM: fd passing and attaching by pid               */
/* ------------------------------------------------------------------ */

int kvmi_fd_send(int sock, int fd);
int kvmi_fd_recv(int sock);
int kvmi_pid_find_vm_fds(pid_t pid, int *fds, size_t max);
int kvmi_pid_getfd(pid_t pid, int target_fd);

/* ------------------------------------------------------------------ */
/* The introspected VM                                                 */
/* ------------------------------------------------------------------ */

int kvmi_dom_open(int vm_fd, struct kvmi_dom **domp);
int kvmi_dom_from_fd(int introspection_fd, struct kvmi_dom **domp);
int kvmi_dom_attach_pid(pid_t pid, struct kvmi_dom **domp);
int kvmi_dom_close(struct kvmi_dom *dom);

int kvmi_dom_fd(const struct kvmi_dom *dom);
uint64_t kvmi_dom_features(const struct kvmi_dom *dom);
uint32_t kvmi_dom_max_vcpus(const struct kvmi_dom *dom);
uint32_t kvmi_dom_nr_vcpus(const struct kvmi_dom *dom);
uint32_t kvmi_dom_state_flags(const struct kvmi_dom *dom);
struct kvmi_vcpu *kvmi_dom_vcpu(struct kvmi_dom *dom, uint32_t index);

/* Introspection fd ioctls, one wrapper each. */
int kvmi_dom_get_version(struct kvmi_dom *dom, struct kvmi_version *ver);
int kvmi_dom_get_layout(struct kvmi_dom *dom, struct kvmi_layout *layout);
int kvmi_dom_check_command(struct kvmi_dom *dom, uint32_t id);
int kvmi_dom_check_event(struct kvmi_dom *dom, uint32_t id);
int kvmi_dom_get_guest_info(struct kvmi_dom *dom,
			    struct kvmi_guest_info *info);
int kvmi_dom_control_event(struct kvmi_dom *dom, uint32_t vcpu,
			   uint16_t event, int enable, uint32_t param);
int kvmi_dom_set_doorbells(struct kvmi_dom *dom, uint32_t vcpu,
			   uint32_t flags, int notify_fd, int kick_fd);
int kvmi_dom_set_wait_mode(struct kvmi_dom *dom, uint32_t vcpu,
			   uint32_t mode, uint64_t spin_ns);
int kvmi_dom_pause_vcpu(struct kvmi_dom *dom, uint32_t vcpu);
int kvmi_dom_pause_all(struct kvmi_dom *dom);
int kvmi_dom_unpause(struct kvmi_dom *dom, uint32_t vcpu);
int kvmi_dom_get_page_access(struct kvmi_dom *dom,
			     struct kvmi_page_access_entry *entries,
			     uint32_t count, uint32_t *done);
int kvmi_dom_set_page_access(struct kvmi_dom *dom,
			     const struct kvmi_page_access_entry *entries,
			     uint32_t count, uint32_t *done);
int kvmi_dom_read_physical(struct kvmi_dom *dom, uint64_t gpa, void *buf,
			   size_t size);
int kvmi_dom_write_physical(struct kvmi_dom *dom, uint64_t gpa,
			    const void *buf, size_t size);
int kvmi_dom_shutdown_guest(struct kvmi_dom *dom);

/* One pollable fd for the tool's own poll/epoll/io_uring loop. */
typedef int (*kvmi_event_fn)(struct kvmi_vcpu *vcpu,
			     const struct kvmi_event *ev, void *arg);
int kvmi_dom_pollfd(struct kvmi_dom *dom);
int kvmi_dom_dispatch(struct kvmi_dom *dom, kvmi_event_fn fn, void *arg);

/* ------------------------------------------------------------------ */
/* One vCPU: events, replies, commands                                 */
/* ------------------------------------------------------------------ */

uint32_t kvmi_vcpu_index(const struct kvmi_vcpu *vcpu);
struct kvmi_dom *kvmi_vcpu_dom(const struct kvmi_vcpu *vcpu);

const struct kvmi_event *kvmi_vcpu_peek_event(struct kvmi_vcpu *vcpu);
int kvmi_vcpu_pop_event(struct kvmi_vcpu *vcpu, struct kvmi_event *ev);
int kvmi_vcpu_wait_event(struct kvmi_vcpu *vcpu, struct kvmi_event *ev,
			 int timeout_ms);
int kvmi_vcpu_reply(struct kvmi_vcpu *vcpu, uint8_t action, uint32_t flags,
		    const struct kvmi_x86_regs *regs,
		    const union kvmi_reply_data *data);

/* What ended the last event this vCPU finished (struct kvmi_vcpu_state). */
struct kvmi_done {
	uint32_t seq;		/* done_seq */
	uint8_t action;		/* done_action */
	uint8_t reason;		/* done_reason, KVMI_DONE_* */
	uint16_t padding;
};

int kvmi_vcpu_done(struct kvmi_vcpu *vcpu, struct kvmi_done *done);
int kvmi_vcpu_counters(struct kvmi_vcpu *vcpu,
		       struct kvmi_vcpu_counters *counters);
int kvmi_vcpu_own_doorbell(struct kvmi_vcpu *vcpu);
int kvmi_vcpu_set_tool_mode(struct kvmi_vcpu *vcpu, uint32_t mode,
			    uint64_t spin_ns);

/* vCPU commands (the vCPU must be waiting in an event this thread popped). */
int kvmi_vcpu_command(struct kvmi_vcpu *vcpu, uint16_t id,
		      const void *args, size_t args_size,
		      void *result, size_t result_size);
int kvmi_vcpu_get_registers(struct kvmi_vcpu *vcpu,
			    struct kvmi_x86_regs *regs, uint8_t *mode,
			    uint8_t *cpl);
int kvmi_vcpu_set_registers(struct kvmi_vcpu *vcpu,
			    const struct kvmi_x86_regs *regs);
int kvmi_vcpu_get_cpuid(struct kvmi_vcpu *vcpu, uint32_t function,
			uint32_t index,
			struct kvmi_cmd_get_cpuid_result *out);
int kvmi_vcpu_get_xcr(struct kvmi_vcpu *vcpu, uint32_t xcr, uint64_t *value);
int kvmi_vcpu_get_xsave_info(struct kvmi_vcpu *vcpu, uint32_t *size);
int kvmi_vcpu_get_xsave(struct kvmi_vcpu *vcpu, void *buf, uint32_t size,
			uint32_t *written);
int kvmi_vcpu_set_xsave(struct kvmi_vcpu *vcpu, const void *buf,
			uint32_t size);
int kvmi_vcpu_get_mtrr_type(struct kvmi_vcpu *vcpu, uint64_t gpa,
			    uint8_t *type);
int kvmi_vcpu_get_mtrrs(struct kvmi_vcpu *vcpu,
			struct kvmi_cmd_get_mtrrs_result *out);
int kvmi_vcpu_translate_gva(struct kvmi_vcpu *vcpu, uint64_t gva,
			    uint64_t *gpa);
int kvmi_vcpu_inject_exception(struct kvmi_vcpu *vcpu, uint8_t vector,
			       uint8_t flags, uint32_t error_code,
			       uint64_t address);
int kvmi_vcpu_control_singlestep(struct kvmi_vcpu *vcpu, int enable);

/* ------------------------------------------------------------------ */
/* The io_uring event loop (liburing, multishot poll on doorbells)     */
/* ------------------------------------------------------------------ */

int kvmi_uring_create(unsigned int entries, struct kvmi_uring **loopp);
int kvmi_uring_add(struct kvmi_uring *loop, struct kvmi_dom *dom,
		   kvmi_event_fn fn, void *arg);
int kvmi_uring_remove(struct kvmi_uring *loop, struct kvmi_dom *dom);
int kvmi_uring_run(struct kvmi_uring *loop, int timeout_ms);
void kvmi_uring_destroy(struct kvmi_uring *loop);

/* ------------------------------------------------------------------ */
/* Guest discovery: /dev/kvmi (since 1.1)                              */
/* ------------------------------------------------------------------ */

/* The VMM's side: before the VM's first vCPU. */
int kvmi_vm_set_uuid(int vm_fd, const uint8_t uuid[16]);
int kvmi_vm_get_uuid(int vm_fd, uint8_t uuid[16]);
int kvmi_vm_opt_out(int vm_fd);

/* The tool's side (CAP_SYS_ADMIN). */
typedef int (*kvmi_guest_fn)(struct kvmi_disc *disc,
			     const struct kvmi_guest_record *rec, void *arg);
int kvmi_disc_open(struct kvmi_disc **discp);
int kvmi_disc_close(struct kvmi_disc *disc);
int kvmi_disc_fd(const struct kvmi_disc *disc);
int kvmi_disc_dispatch(struct kvmi_disc *disc, kvmi_guest_fn fn, void *arg);
int kvmi_disc_get_guests(struct kvmi_disc *disc,
			 struct kvmi_guest_record *recs, uint32_t count,
			 uint32_t *total, uint64_t *seq);
int kvmi_disc_open_guest(struct kvmi_disc *disc, uint64_t id);
int kvmi_dom_open_guest(struct kvmi_disc *disc, uint64_t id,
			struct kvmi_dom **domp);
int kvmi_uring_add_disc(struct kvmi_uring *loop, struct kvmi_disc *disc,
			kvmi_guest_fn fn, void *arg);
int kvmi_uring_remove_disc(struct kvmi_uring *loop, struct kvmi_disc *disc);

/* ------------------------------------------------------------------ */
/* Register writes: the CR and MSR events (since 1.2)                  */
/* ------------------------------------------------------------------ */

/* Enable per register, on one vCPU or KVMI_ALL_VCPUS. */
int kvmi_dom_control_cr(struct kvmi_dom *dom, uint32_t vcpu, uint32_t cr,
			int enable);
int kvmi_dom_control_msr(struct kvmi_dom *dom, uint32_t vcpu, uint32_t msr,
			 int enable);
/* The event's data (register, old and new value), NULL for another event. */
const struct kvmi_event_cr *kvmi_event_as_cr(const struct kvmi_event *ev);
const struct kvmi_event_msr *kvmi_event_as_msr(const struct kvmi_event *ev);
/* CONTINUE, ALLOW (writes @new_value), DENY, CRASH; @regs may be NULL. */
int kvmi_vcpu_reply_cr(struct kvmi_vcpu *vcpu, uint8_t action,
		       uint64_t new_value, const struct kvmi_x86_regs *regs);
int kvmi_vcpu_reply_msr(struct kvmi_vcpu *vcpu, uint8_t action,
			uint64_t new_value, const struct kvmi_x86_regs *regs);

/* ------------------------------------------------------------------ */
/* XSETBV, and the outcome of an injected exception (since 1.3)        */
/* ------------------------------------------------------------------ */

/* Enable with kvmi_dom_control_event(dom, vcpu, KVMI_EVENT_XSETBV, 1, 0). */
const struct kvmi_event_xsetbv *
kvmi_event_as_xsetbv(const struct kvmi_event *ev);
/* CONTINUE or CRASH; @regs (NULL: none) may change ECX, EDX:EAX, RIP. */
int kvmi_vcpu_reply_xsetbv(struct kvmi_vcpu *vcpu, uint8_t action,
			   const struct kvmi_x86_regs *regs);
/* KVMI_INJECT_DELIVERED, KVMI_INJECT_DROPPED, or 0: not known yet. */
int kvmi_vcpu_inject_status(struct kvmi_vcpu *vcpu);

/* ------------------------------------------------------------------ */
/* Page access and the PAGE_FAULT event (since 1.4)                    */
/* ------------------------------------------------------------------ */

/* @count pages get the rights @access (KVMI_PAGE_ACCESS_*), batched. */
int kvmi_dom_set_pages_access(struct kvmi_dom *dom, const uint64_t *gpas,
			      uint32_t count, uint8_t access, uint32_t *done);
const struct kvmi_event_page_fault *
kvmi_event_as_page_fault(const struct kvmi_event *ev);
/* CONTINUE, ALLOW, RETRY, CRASH, NOEMU (@regs with RIP), EMUL_NOWRITE. */
int kvmi_vcpu_reply_page_fault(struct kvmi_vcpu *vcpu, uint8_t action,
			       const struct kvmi_x86_regs *regs);
/* SET_CTX: KVMI_PF_CTX_READ or KVMI_PF_CTX_INSN, 1..KVMI_PF_CTX_MAX bytes. */
int kvmi_vcpu_reply_page_fault_ctx(struct kvmi_vcpu *vcpu, uint8_t ctx_type,
				   const void *ctx, size_t size);
/* SET_CTX, @regs (not RIP) written first (since 1.7). */
int kvmi_vcpu_reply_page_fault_ctx_regs(struct kvmi_vcpu *vcpu,
					uint8_t ctx_type, const void *ctx,
					size_t size,
					const struct kvmi_x86_regs *regs);

/* ------------------------------------------------------------------ */
/* TRAP, DESCRIPTOR and SINGLESTEP (since 1.5)                         */
/* ------------------------------------------------------------------ */

const struct kvmi_event_trap *kvmi_event_as_trap(const struct kvmi_event *ev);
const struct kvmi_event_descriptor *
kvmi_event_as_descriptor(const struct kvmi_event *ev);
const struct kvmi_event_singlestep *
kvmi_event_as_singlestep(const struct kvmi_event *ev);
/* CONTINUE, ALLOW (@deliver instead), DENY, CRASH; @regs may be NULL. */
int kvmi_vcpu_reply_trap(struct kvmi_vcpu *vcpu, uint8_t action,
			 const struct kvmi_reply_trap *deliver,
			 const struct kvmi_x86_regs *regs);
/* CONTINUE, RETRY (not executed: resume at @regs->rip), CRASH. */
int kvmi_vcpu_reply_descriptor(struct kvmi_vcpu *vcpu, uint8_t action,
			       const struct kvmi_x86_regs *regs);
/* CONTINUE or CRASH; @step_again: one more instruction, then an event. */
int kvmi_vcpu_reply_singlestep(struct kvmi_vcpu *vcpu, uint8_t action,
			       int step_again);

/* ------------------------------------------------------------------ */
/* Zero-copy mappings of guest pages (since 1.6, KVMI_FEATURE_SVA)     */
/* ------------------------------------------------------------------ */

/* A map window: an mmap() of the introspection fd the kernel owns. */
int kvmi_dom_sva_window(struct kvmi_dom *dom, size_t size, int writable,
			void **addrp);
int kvmi_dom_sva_window_close(struct kvmi_dom *dom, void *addr, size_t size);
/* Batched, in order; @done: how many were done (all, on success). */
int kvmi_dom_map_pages(struct kvmi_dom *dom,
		       const struct kvmi_sva_entry *entries, uint32_t count,
		       uint32_t *done);
int kvmi_dom_unmap_pages(struct kvmi_dom *dom, void *const *addrs,
			 uint32_t count, uint32_t *done);

/* ------------------------------------------------------------------ */
/* The socket transport (since 1.8, KVMI_FEATURE_SOCKET)               */
/* ------------------------------------------------------------------ */

/*
 * Events, replies and vCPU commands as messages on a socket; the per-vCPU
 * API is the same (kvmi_vcpu_wait_event(), kvmi_vcpu_reply(), ...).
 */
int kvmi_vm_open_socket(int vm_fd, int sock_fd);
int kvmi_dom_open_socket(int vm_fd, struct kvmi_dom **domp);
int kvmi_dom_from_socket(int introspection_fd, int sock_fd,
			 struct kvmi_dom **domp);
/* KVMI_TRANSPORT_RING or KVMI_TRANSPORT_SOCKET */
int kvmi_dom_transport(const struct kvmi_dom *dom);
/* kvmi_dom_attach_pid() and kvmi_dom_open_guest() on the socket */
int kvmi_dom_attach_pid_socket(pid_t pid, struct kvmi_dom **domp);
int kvmi_dom_open_guest_socket(struct kvmi_disc *disc, uint64_t id,
			       struct kvmi_dom **domp);

#ifdef __cplusplus
}
#endif

#endif /* KVMI_KVMI_H */
