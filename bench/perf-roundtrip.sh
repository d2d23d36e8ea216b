#!/bin/bash
# The perf recipe: record the kvmi tracepoints while COMMAND runs and turn
# them into a round-trip histogram from kernel timestamps. Run it in L1
# (or on any host running the kvmi-ring kernel):
#
#   selftests/vm-run -- bench/perf-roundtrip.sh [--out DIR] -- \
#           build/bench/bin/kvmi_bench -n 20000 -r 1 -o /tmp/b kvmi_poll
#
# The tracepoints are looked up in tracefs: the "kvmi" trace system if the
# kernel has one, else kvmi_event_send and kvmi_reply in "kvm"
# (Documentation/virt/kvm/kvmi.rst, section 17.1). Writes DIR/perf.data,
# DIR/perf.txt (perf script) and DIR/roundtrip.json; DIR defaults to
# /mnt/results/perf in the VM, else build/bench/perf.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
out=
while [ $# -gt 0 ]; do
	case "$1" in
	--out) out=$2; shift ;;
	--) shift; break ;;
	*) break ;;
	esac
	shift
done
[ $# -gt 0 ] || { echo "usage: perf-roundtrip.sh [--out DIR] -- COMMAND..." >&2; exit 2; }
if [ -z "$out" ]; then
	if [ -d /mnt/results ]; then out=/mnt/results/perf; else out=$here/../build/bench/perf; fi
fi
mkdir -p "$out"

tfs=/sys/kernel/tracing
[ -d "$tfs/events" ] || mount -t tracefs nodev "$tfs" 2>/dev/null || true
if [ -d "$tfs/events/kvmi" ]; then
	events=(-e 'kvmi:*')
elif [ -d "$tfs/events/kvm/kvmi_event_send" ] && [ -d "$tfs/events/kvm/kvmi_reply" ]; then
	events=(-e kvm:kvmi_event_send -e kvm:kvmi_reply)
else
	echo "perf-roundtrip: this kernel has no kvmi tracepoints (no $tfs/events/kvmi," \
		"no kvm:kvmi_event_send); skipped" >&2
	exit 4
fi

perf record -q -a "${events[@]}" -o "$out/perf.data" -- "$@"
perf script -i "$out/perf.data" -F comm,tid,cpu,time,event,trace --ns \
	> "$out/perf.txt" 2>/dev/null
python3 "$here/perf_roundtrip.py" "$out/perf.txt" --json "$out/roundtrip.json"
