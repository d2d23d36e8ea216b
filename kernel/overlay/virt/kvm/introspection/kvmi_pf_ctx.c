// SPDX-License-Identifier: GPL-2.0-only
/*
 * kvmi-ring: the emulation context a PAGE_FAULT reply gives KVM
 * (KVMI_ACTION_SET_CTX, Documentation/virt/kvm/kvmi.rst, section 10.11).
 *
 * The tool answers a PAGE_FAULT event with the bytes the instruction
 * reads from the page of the fault (KVMI_PF_CTX_READ) or with the
 * instruction's own bytes (KVMI_PF_CTX_INSN). The vCPU copies them from
 * its copy of the reply, already validated, into struct kvmi_vcpu and
 * emulates the instruction: x86's MMU gives the emulator the instruction
 * bytes of kvmi_pf_ctx_insn() instead of fetching them, the emulator's
 * reads of guest memory take the bytes of kvmi_pf_ctx_read(). The context
 * holds for that one emulation: kvmi_page_fault_emulated() ends it.
 *
 * Everything here runs on the vCPU's own thread; vcpu->kvmi is read under
 * RCU, as the struct kvmi_vcpu is freed after a grace period.
 */
#include "kvmi_int.h"

/**
 * kvmi_pf_ctx_reply_valid() - check the context of a SET_CTX reply
 * @c: the page-fault data of the kernel's copy of the reply
 *
 * Return: true if @c has a known type, 1 to KVMI_PF_CTX_MAX bytes and
 * zeroed padding. The bytes of @c->ctx_data after @c->ctx_size are not
 * looked at.
 */
bool kvmi_pf_ctx_reply_valid(const struct kvmi_reply_page_fault *c)
{
	if (c->ctx_type != KVMI_PF_CTX_READ && c->ctx_type != KVMI_PF_CTX_INSN)
		return false;
	if (!c->ctx_size || c->ctx_size > KVMI_PF_CTX_MAX)
		return false;
	return !memchr_inv(c->padding, 0, sizeof(c->padding));
}

/**
 * kvmi_pf_ctx_set() - keep a SET_CTX reply's context for the emulation
 * @kv: the vCPU's introspection state, on the vCPU's thread
 * @gpa: the address of the fault
 * @c: the validated context (see kvmi_pf_ctx_reply_valid())
 */
void kvmi_pf_ctx_set(struct kvmi_vcpu *kv, u64 gpa,
		     const struct kvmi_reply_page_fault *c)
{
	struct kvmi_pf_ctx *ctx = &kv->pf_ctx;

	ctx->gfn = gpa_to_gfn(gpa);
	ctx->size = c->ctx_size;
	ctx->used = 0;
	memcpy(ctx->data, c->ctx_data, c->ctx_size);
	ctx->type = c->ctx_type;
}

/**
 * kvmi_pf_ctx_clear() - end the context of a SET_CTX reply
 * @kv: the vCPU's introspection state, on the vCPU's thread
 */
void kvmi_pf_ctx_clear(struct kvmi_vcpu *kv)
{
	kv->pf_ctx.type = 0;
}

/**
 * kvmi_pf_ctx_insn() - the instruction bytes the tool gave, if any
 * @vcpu: the vCPU, on its own thread, about to emulate the instruction of
 *	a page fault
 * @buf: where to copy them
 * @size: the size of @buf: the longest instruction, 15 bytes, is enough
 *
 * Return: how many bytes were copied to @buf; 0 if the PAGE_FAULT event
 * wasn't answered with a KVMI_PF_CTX_INSN context, and the emulator
 * fetches the instruction from guest memory.
 */
int kvmi_pf_ctx_insn(struct kvm_vcpu *vcpu, void *buf, int size)
{
	struct kvmi_vcpu *kv;
	int n = 0;

	rcu_read_lock();
	kv = READ_ONCE(vcpu->kvmi);
	if (kv && kv->pf_ctx.type == KVMI_PF_CTX_INSN) {
		n = min_t(int, kv->pf_ctx.size, size);
		memcpy(buf, kv->pf_ctx.data, n);
	}
	rcu_read_unlock();
	return n;
}

/**
 * kvmi_pf_ctx_read() - give an emulated read the bytes the tool gave
 * @vcpu: the vCPU, on its own thread, in the emulator
 * @gpa: the guest physical address read
 * @val: where the bytes read go
 * @bytes: how many bytes are read
 *
 * A read of the page of the fault takes the bytes of a KVMI_PF_CTX_READ
 * context that no earlier read took, in order, as long as there are some
 * left.
 *
 * Return: how many of the first bytes of @val were filled; the caller
 * reads the others from guest memory.
 */
int kvmi_pf_ctx_read(struct kvm_vcpu *vcpu, u64 gpa, void *val, int bytes)
{
	struct kvmi_pf_ctx *ctx;
	struct kvmi_vcpu *kv;
	int n = 0;

	rcu_read_lock();
	kv = READ_ONCE(vcpu->kvmi);
	if (kv && kv->pf_ctx.type == KVMI_PF_CTX_READ &&
	    gpa_to_gfn(gpa) == kv->pf_ctx.gfn && bytes > 0) {
		ctx = &kv->pf_ctx;
		n = min_t(int, ctx->size - ctx->used, bytes);
		memcpy(val, ctx->data + ctx->used, n);
		ctx->used += n;
	}
	rcu_read_unlock();
	return n;
}
