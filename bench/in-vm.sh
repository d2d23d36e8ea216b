#!/bin/bash
# Runs in the L1 VM; bench/run.sh starts it through selftests/vm-run:
#
#   bench/in-vm.sh KVMI_BENCH [ARG...]
#
# Records the L1 machine in /mnt/results/raw/l1.txt, reserves hugepages
# for -H, runs kvmi_bench with its raw output in /mnt/results/raw, then
# records kvm:kvm_exit and kvm:kvm_entry with perf around a short run of
# each round-trip row (perf-ROW.txt.gz there; BENCH_PERF=0 skips it,
# BENCH_PERF_ITER sets its events, 2000).
set -euo pipefail
bin=$1
shift
out=/mnt/results/raw
mkdir -p "$out"
[ -w /proc/sys/vm/nr_hugepages ] && echo 64 > /proc/sys/vm/nr_hugepages

# The guest's round trips are read with its TSC. If L1's clocksource
# watchdog marks L1's TSC unstable (it does when TCG's vCPU threads lag
# behind the HPET on a loaded host), L1's KVM rewrites the guest's TSC
# offset at every vcpu_load and the guest's figures around an exit to
# userspace or a sleep are wrong. So, with the TSC as clocksource, take
# the watchdog's references away; report.py checks the outcome.
cs=/sys/devices/system/clocksource/clocksource0
tsc_cs=$(cat "$cs/current_clocksource" 2>/dev/null || echo unknown)
if [ "$tsc_cs" = tsc ]; then
	for c in $(cat "$cs/available_clocksource"); do
		[ "$c" = tsc ] || echo "$c" > "$cs/unbind_clocksource" 2>/dev/null || true
	done
fi
{
	echo "cpu=$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')"
	echo "cpus=$(nproc)"
	echo "kernel=$(uname -r)"
	echo "kernel_build=$(uname -v)"
	echo "nested_svm=$(cat /sys/module/kvm_amd/parameters/nested 2>/dev/null || echo no)"
	echo "memory_kb=$(awk '/MemTotal/ {print $2}' /proc/meminfo)"
} > "$out/l1.txt"
"$bin" -o "$out" "$@"

# Was the TSC kept stable through the measured runs?
{
	echo "clocksource_at_start=$tsc_cs"
	echo "clocksource_at_end=$(cat "$cs/current_clocksource" 2>/dev/null || echo unknown)"
	if dmesg | grep -q "clocksource 'tsc' as unstable\|TSC found unstable"; then
		echo "tsc_stable=0"
	else
		echo "tsc_stable=1"
	fi
} >> "$out/l1.txt"

# Where the time goes: KVM's own tracepoints (kvm_exit, kvm_entry) around
# a short run of each round-trip row, so that a missed target can be
# explained with perf data (report.py, "perf_exits"). BENCH_PERF=0 skips.
[ "${BENCH_PERF:-1}" = 1 ] || exit 0
command -v perf > /dev/null || { echo "bench: no perf, no exit breakdown" >&2; exit 0; }
rows=(exit_io usfwd kvmi_block kvmi_hybrid kvmi_poll lib_block lib_hybrid lib_poll kvmi_bp_poll
	cr4 kvmi_cr_poll msr kvmi_msr_poll)
for row in "${rows[@]}"; do
	printf '\rbench: perf breakdown %-16s' "$row" >&2
	perf record -q -a -e kvm:kvm_exit -e kvm:kvm_entry -o /tmp/perf.data -- \
		"$bin" -n "${BENCH_PERF_ITER:-2000}" -r 1 -R 1 -o "/tmp/perf-$row" "$row" \
		> /dev/null 2>&1 || continue
	[ -s "/tmp/perf-$row/$row.guest" ] || continue
	perf script -i /tmp/perf.data -F tid,time,event,trace --ns 2> /dev/null |
		gzip -1 > "$out/perf-$row.txt.gz"
	rm -f /tmp/perf.data
done
echo >&2
