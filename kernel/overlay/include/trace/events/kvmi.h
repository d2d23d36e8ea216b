/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * kvmi-ring tracepoints (Documentation/virt/kvm/kvmi.rst, section 17.1),
 * in the kvmi system; virt/kvm/introspection/ fires them.
 *
 * The round trip of an event is the time between kvmi_event_send and the
 * kvmi_reply of the same vCPU and seq; both carry the event's
 * timestamp_ns (CLOCK_MONOTONIC), so a tool's own clock can be lined up
 * with the trace.
 */
#undef TRACE_SYSTEM
#define TRACE_SYSTEM kvmi

#if !defined(_TRACE_KVMI_H) || defined(TRACE_HEADER_MULTI_READ)
#define _TRACE_KVMI_H

#include <linux/tracepoint.h>

TRACE_EVENT(kvmi_event_send,
	    TP_PROTO(u32 vcpu, u32 seq, u16 id, u64 rip, u64 timestamp_ns),
	    TP_ARGS(vcpu, seq, id, rip, timestamp_ns),
	    TP_STRUCT__entry(__field(u32, vcpu)
			     __field(u32, seq)
			     __field(u16, id)
			     __field(u64, rip)
			     __field(u64, timestamp_ns)),
	    TP_fast_assign(__entry->vcpu = vcpu;
			   __entry->seq = seq;
			   __entry->id = id;
			   __entry->rip = rip;
			   __entry->timestamp_ns = timestamp_ns;),
	    TP_printk("vcpu %u seq %u id %u rip 0x%llx ts %llu",
		      __entry->vcpu, __entry->seq, __entry->id, __entry->rip,
		      __entry->timestamp_ns)
);

TRACE_EVENT(kvmi_reply,
	    TP_PROTO(u32 vcpu, u32 seq, u16 id, u8 action, u32 flags,
		     u8 reason, u64 timestamp_ns),
	    TP_ARGS(vcpu, seq, id, action, flags, reason, timestamp_ns),
	    TP_STRUCT__entry(__field(u32, vcpu)
			     __field(u32, seq)
			     __field(u16, id)
			     __field(u8, action)
			     __field(u8, reason)
			     __field(u32, flags)
			     __field(u64, timestamp_ns)),
	    TP_fast_assign(__entry->vcpu = vcpu;
			   __entry->seq = seq;
			   __entry->id = id;
			   __entry->action = action;
			   __entry->reason = reason;
			   __entry->flags = flags;
			   __entry->timestamp_ns = timestamp_ns;),
	    TP_printk("vcpu %u seq %u id %u action %u flags 0x%x reason %u ts %llu",
		      __entry->vcpu, __entry->seq, __entry->id, __entry->action,
		      __entry->flags, __entry->reason, __entry->timestamp_ns)
);

TRACE_EVENT(kvmi_command,
	    TP_PROTO(u32 vcpu, u32 seq, u16 id, int error),
	    TP_ARGS(vcpu, seq, id, error),
	    TP_STRUCT__entry(__field(u32, vcpu)
			     __field(u32, seq)
			     __field(u16, id)
			     __field(int, error)),
	    TP_fast_assign(__entry->vcpu = vcpu;
			   __entry->seq = seq;
			   __entry->id = id;
			   __entry->error = error;),
	    TP_printk("vcpu %u seq %u id 0x%x error %d",
		      __entry->vcpu, __entry->seq, __entry->id, __entry->error)
);

#define KVMI_TRACE_NOTIFY		0 /* notify eventfd signalled */
#define KVMI_TRACE_NOTIFY_SUPPRESSED	1 /* not: KVMI_TOOL_POLLING */
#define KVMI_TRACE_KICK			2 /* woken by the kick eventfd */
#define KVMI_TRACE_VM_NOTIFY		3 /* VM-wide notify: state change */

TRACE_EVENT(kvmi_doorbell,
	    TP_PROTO(u32 vcpu, u8 kind),
	    TP_ARGS(vcpu, kind),
	    TP_STRUCT__entry(__field(u32, vcpu)
			     __field(u8, kind)),
	    TP_fast_assign(__entry->vcpu = vcpu;
			   __entry->kind = kind;),
	    TP_printk("vcpu %u %s", __entry->vcpu,
		      __print_symbolic(__entry->kind,
				       { KVMI_TRACE_NOTIFY, "notify" },
				       { KVMI_TRACE_NOTIFY_SUPPRESSED,
					 "notify suppressed" },
				       { KVMI_TRACE_KICK, "kick" },
				       { KVMI_TRACE_VM_NOTIFY, "vm notify" }))
);

TRACE_EVENT(kvmi_deadline,
	    TP_PROTO(u32 vcpu, u32 seq, u16 id, u64 reply_ns),
	    TP_ARGS(vcpu, seq, id, reply_ns),
	    TP_STRUCT__entry(__field(u32, vcpu)
			     __field(u32, seq)
			     __field(u16, id)
			     __field(u64, reply_ns)),
	    TP_fast_assign(__entry->vcpu = vcpu;
			   __entry->seq = seq;
			   __entry->id = id;
			   __entry->reply_ns = reply_ns;),
	    TP_printk("vcpu %u seq %u id %u deadline %llu ns",
		      __entry->vcpu, __entry->seq, __entry->id, __entry->reply_ns)
);

#endif /* _TRACE_KVMI_H */

#include <trace/define_trace.h>
