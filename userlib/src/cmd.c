// SPDX-License-Identifier: LGPL-2.1-or-later OR MIT
/*
 * vCPU commands: written to the vCPU's command slot, served by the vCPU
 * while it waits in the event this thread popped (kvmi.rst, section 11).
 */
#include <string.h>

#include "internal.h"

#define KVMI_CMD_VCPU_FIRST	0x40
#define KVMI_CMD_VCPU_LAST	0x7f

/*
 * Wait for the result of command @c (T5). The event may end meanwhile
 * (deadline, UNPAUSE, the end of introspection): then the command will not
 * be served in it.
 */
static int wait_result(struct kvmi_vcpu *v, uint32_t c)
{
	unsigned int n = 0;

	/* T5: pairs with the kernel's store-release of res->seq (K5). */
	while (load_acquire(&v->res->seq) != c) {
		if (!(++n & 255)) {
			if (kvmi__detached(v->dom))
				return -ENODEV;
			/* T7: pairs with the release of done_seq (K7). */
			if (load_acquire(&v->vs->done_seq) == v->cur &&
			    load_acquire(&v->res->seq) != c)
				return -ESRCH;
		}
		cpu_relax();
	}
	return 0;
}

/* The command as a KVMI_MSG_VCPU_COMMAND, its result as a message. */
static int sock_command(struct kvmi_vcpu *v, uint16_t id, const void *args,
			size_t args_size, uint32_t c,
			struct kvmi_cmd_result *res)
{
	struct kvmi_cmd cmd;

	memset(&cmd, 0, sizeof(cmd));
	cmd.seq = c;
	cmd.id = id;
	cmd.event = v->cur;
	if (args_size)
		memcpy(&cmd.args, args, args_size);
	return kvmi__sock_command(v->dom, v->index, &cmd, res);
}

/**
 * kvmi_vcpu_command() - run vCPU command @id with @args_size bytes of
 * arguments; copy up to @result_size bytes of its result. Returns 0, the
 * command's error (-errno from the kernel), -ENOENT if no event is popped
 * and unanswered on this vCPU, -EOPNOTSUPP or -EPERM if the kernel said so
 * for @id at open (KVMI_IOCTL_CHECK_COMMAND), -ESRCH if the event ended
 * before the command was served, -EBADMSG for a malformed result.
 */
int kvmi_vcpu_command(struct kvmi_vcpu *vcpu, uint16_t id,
		      const void *args, size_t args_size,
		      void *result, size_t result_size)
{
	struct kvmi_cmd *cmd = vcpu->cmd;
	const struct kvmi_cmd_result *res = vcpu->res;
	struct kvmi_cmd_result sres;
	uint32_t c;
	int32_t err;
	int r;

	if (id < KVMI_CMD_VCPU_FIRST || id > KVMI_CMD_VCPU_LAST ||
	    args_size > sizeof(cmd->args) || (args_size && !args) ||
	    result_size > sizeof(res->result) || (result_size && !result))
		return -EINVAL;
	if (vcpu->dom->cmd_check[id - KVMI_CMD_VCPU_FIRST])
		return vcpu->dom->cmd_check[id - KVMI_CMD_VCPU_FIRST];
	if (!vcpu->cur)
		return -ENOENT;

	if (vcpu->dom->sock) {
		c = vcpu->cmd_seq + 1;
		if (!c)
			c = 1;
		vcpu->cmd_seq = c;
		r = sock_command(vcpu, id, args, args_size, c, &sres);
		if (r)
			return r;
		if (sres.id != id || sres.seq != c || sres.error > 0 ||
		    sres.error < -4095)
			return -EBADMSG;
		if (sres.error)
			return sres.error;
		if (result_size)
			memcpy(result, &sres.result, result_size);
		return 0;
	}

	cmd->id = id;
	cmd->flags = 0;
	cmd->event = vcpu->cur;
	cmd->padding = 0;
	if (args_size)
		memcpy(&cmd->args, args, args_size);
	c = vcpu->cmd_seq + 1;
	if (!c)		/* free-running; the first command must not use 0 */
		c = 1;
	vcpu->cmd_seq = c;
	/* T4: pairs with the kernel's load-acquire of cmd->seq (K4). */
	store_release(&cmd->seq, c);
	r = kvmi__kick(vcpu);
	if (r)
		return r;
	r = wait_result(vcpu, c);
	if (r)
		return r;

	err = READ_ONCE(res->error);
	if (READ_ONCE(res->id) != id || err > 0 || err < -4095)
		return -EBADMSG;
	if (err)
		return err;
	if (result_size)
		memcpy(result, (const void *)&res->result, result_size);
	return 0;
}

int kvmi_vcpu_get_registers(struct kvmi_vcpu *vcpu,
			    struct kvmi_x86_regs *regs, uint8_t *mode,
			    uint8_t *cpl)
{
	struct kvmi_cmd_get_registers_result out;
	int r;

	if (!regs)
		return -EINVAL;
	r = kvmi_vcpu_command(vcpu, KVMI_CMD_GET_REGISTERS, NULL, 0,
			      &out, sizeof(out));
	if (r)
		return r;
	*regs = out.regs;
	if (mode)
		*mode = out.mode;
	if (cpl)
		*cpl = out.cpl;
	return 0;
}

int kvmi_vcpu_set_registers(struct kvmi_vcpu *vcpu,
			    const struct kvmi_x86_regs *regs)
{
	if (!regs)
		return -EINVAL;
	return kvmi_vcpu_command(vcpu, KVMI_CMD_SET_REGISTERS, regs,
				 sizeof(*regs), NULL, 0);
}

int kvmi_vcpu_get_cpuid(struct kvmi_vcpu *vcpu, uint32_t function,
			uint32_t index, struct kvmi_cmd_get_cpuid_result *out)
{
	struct kvmi_cmd_get_cpuid args = {
		.function = function,
		.index = index,
	};

	if (!out)
		return -EINVAL;
	return kvmi_vcpu_command(vcpu, KVMI_CMD_GET_CPUID, &args, sizeof(args),
				 out, sizeof(*out));
}

int kvmi_vcpu_get_xcr(struct kvmi_vcpu *vcpu, uint32_t xcr, uint64_t *value)
{
	struct kvmi_cmd_get_xcr args = { .xcr = xcr };
	struct kvmi_cmd_get_xcr_result out;
	int r;

	if (!value)
		return -EINVAL;
	r = kvmi_vcpu_command(vcpu, KVMI_CMD_GET_XCR, &args, sizeof(args),
			      &out, sizeof(out));
	if (!r)
		*value = out.value;
	return r;
}

int kvmi_vcpu_get_xsave_info(struct kvmi_vcpu *vcpu, uint32_t *size)
{
	struct kvmi_cmd_xsave_result out;
	int r;

	if (!size)
		return -EINVAL;
	r = kvmi_vcpu_command(vcpu, KVMI_CMD_GET_XSAVE_INFO, NULL, 0,
			      &out, sizeof(out));
	if (!r)
		*size = out.size;
	return r;
}

/* The xstate comes through the vCPU's kernel-written data area. */
int kvmi_vcpu_get_xsave(struct kvmi_vcpu *vcpu, void *buf, uint32_t size,
			uint32_t *written)
{
	struct kvmi_cmd_xsave args = { .size = size };
	struct kvmi_cmd_xsave_result out;
	int r;

	if (!buf || size > vcpu->kdata_size)
		return -EINVAL;
	r = kvmi_vcpu_command(vcpu, KVMI_CMD_GET_XSAVE, &args, sizeof(args),
			      &out, sizeof(out));
	if (r)
		return r;
	if (out.size > size)
		return -EBADMSG;
	memcpy(buf, vcpu->kdata, out.size);
	if (written)
		*written = out.size;
	return 0;
}

/* The xstate goes through the vCPU's tool-written data area. */
int kvmi_vcpu_set_xsave(struct kvmi_vcpu *vcpu, const void *buf,
			uint32_t size)
{
	struct kvmi_cmd_xsave args = { .size = size };

	if (!buf || size > vcpu->tdata_size)
		return -EINVAL;
	memcpy(vcpu->tdata, buf, size);
	return kvmi_vcpu_command(vcpu, KVMI_CMD_SET_XSAVE, &args, sizeof(args),
				 NULL, 0);
}

int kvmi_vcpu_get_mtrr_type(struct kvmi_vcpu *vcpu, uint64_t gpa,
			    uint8_t *type)
{
	struct kvmi_cmd_get_mtrr_type args = { .gpa = gpa };
	struct kvmi_cmd_get_mtrr_type_result out;
	int r;

	if (!type)
		return -EINVAL;
	r = kvmi_vcpu_command(vcpu, KVMI_CMD_GET_MTRR_TYPE, &args,
			      sizeof(args), &out, sizeof(out));
	if (!r)
		*type = out.type;
	return r;
}

int kvmi_vcpu_get_mtrrs(struct kvmi_vcpu *vcpu,
			struct kvmi_cmd_get_mtrrs_result *out)
{
	if (!out)
		return -EINVAL;
	return kvmi_vcpu_command(vcpu, KVMI_CMD_GET_MTRRS, NULL, 0,
				 out, sizeof(*out));
}

int kvmi_vcpu_translate_gva(struct kvmi_vcpu *vcpu, uint64_t gva,
			    uint64_t *gpa)
{
	struct kvmi_cmd_translate_gva args = { .gva = gva };
	struct kvmi_cmd_translate_gva_result out;
	int r;

	if (!gpa)
		return -EINVAL;
	r = kvmi_vcpu_command(vcpu, KVMI_CMD_TRANSLATE_GVA, &args,
			      sizeof(args), &out, sizeof(out));
	if (!r)
		*gpa = out.gpa;
	return r;
}

int kvmi_vcpu_inject_exception(struct kvmi_vcpu *vcpu, uint8_t vector,
			       uint8_t flags, uint32_t error_code,
			       uint64_t address)
{
	struct kvmi_cmd_inject_exception args = {
		.vector = vector,
		.flags = flags,
		.error_code = error_code,
		.address = address,
	};

	int r;

	r = kvmi_vcpu_command(vcpu, KVMI_CMD_INJECT_EXCEPTION, &args,
			      sizeof(args), NULL, 0);
	if (!r)
		vcpu->inject_seq = vcpu->cmd_seq;
	return r;
}

/**
 * kvmi_vcpu_inject_status() - the outcome of the last exception queued
 * with kvmi_vcpu_inject_exception() on @vcpu: KVMI_INJECT_DELIVERED or
 * KVMI_INJECT_DROPPED once the kernel knows it, 0 until then (the vCPU
 * has not entered the guest since). -ENOENT if none was queued through
 * this handle, -EOPNOTSUPP without KVMI_FEATURE_INJECT_STATUS, -EBADMSG
 * for a status the kernel never writes. No system call; any thread.
 */
int kvmi_vcpu_inject_status(struct kvmi_vcpu *vcpu)
{
	uint32_t want = READ_ONCE(vcpu->inject_seq);
	uint32_t status;

	if (!(vcpu->dom->ver.features & KVMI_FEATURE_INJECT_STATUS))
		return -EOPNOTSUPP;
	if (!want)
		return -ENOENT;
	/* Pairs with the kernel's store-release of inject_seq (after status). */
	if (load_acquire(&vcpu->vs->inject_seq) != want)
		return 0;
	status = READ_ONCE(vcpu->vs->inject_status);
	if (status != KVMI_INJECT_DELIVERED && status != KVMI_INJECT_DROPPED)
		return -EBADMSG;
	return status;
}

int kvmi_vcpu_control_singlestep(struct kvmi_vcpu *vcpu, int enable)
{
	struct kvmi_cmd_control_singlestep args = { .enable = !!enable };

	return kvmi_vcpu_command(vcpu, KVMI_CMD_CONTROL_SINGLESTEP, &args,
				 sizeof(args), NULL, 0);
}
