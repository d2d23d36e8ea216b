#!/bin/bash
# The main job (make bench, after the kernel, QEMU and selftests are
# built): build the benchmark programs, boot the L1 VM, run kvmi_bench
# there, run the host microbench, print the table and write
# build/bench/results.json and the SVG plots (Documentation/bench.rst).
#
# Environment (defaults in brackets):
#   BENCH_ITER       events per round-trip row [200000]
#   BENCH_ROUNDS     interleaved rounds they are split in [20]
#   BENCH_NB_ROUNDS  rounds of the non-blocking proof [5]
#   BENCH_SECONDS    seconds per non-blocking scenario and round [3]
#   BENCH_HOLD_US    how long the tool holds each event in the held
#                    non-blocking scenarios, us (0: leave them out) [200]
#   BENCH_HUGETLB    1: guest memory on hugetlbfs [0]
#   BENCH_ROWS       only these kvmi_bench rows (space separated) [all]
#   BENCH_MICRO      0: skip the host microbench [1]
#   BENCH_PERF       0: skip the perf breakdown of the exits [1]
#   BENCH_PERF_ITER  events per row of the perf breakdown [2000]
#   BENCH_KERNEL     boot this bzImage [the normal kernel]
#   BENCH_HDR        kernel headers to build against [obj-normal/usr/include]
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
. "$top/versions.mk"
cache=${KVMI_CACHE:-/var/cache/kvmi-ring}
base="$cache/linux-$LINUX_SOURCE_VERSION"
out="$top/build/bench"
iter=${BENCH_ITER:-200000}
rounds=${BENCH_ROUNDS:-20}
nb_rounds=${BENCH_NB_ROUNDS:-5}
seconds=${BENCH_SECONDS:-3}
hdr=${BENCH_HDR:-$base/obj-normal/usr/include}
mkdir -p "$out"

echo "bench: building kvmi_bench and slot_bench" >&2
make -s -C "$top/bench" OUT="$out/bin" TREE="$base/tree" HDR="$hdr" \
	> "$out/build.log" 2>&1 || { tail -n 40 "$out/build.log" >&2; exit 1; }

qemu=${QEMU:-$(ls -d "$cache"/qemu-"$QEMU_VERSION"-*/bin/qemu-system-x86_64 2>/dev/null | head -n 1)}
{
	echo "host_cpu=$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')"
	echo "host_cpus=$(nproc)"
	echo "host_kernel=$(uname -r)"
	echo "host_memory_kb=$(awk '/MemTotal/ {print $2}' /proc/meminfo)"
	echo "qemu=$("$qemu" --version 2>/dev/null | head -n 1 | sed 's/.*version //')"
	echo "l1_cpu_model_option=-cpu max (AMD SVM, nested paging)"
	echo "commit=$(git -C "$top" describe --always --dirty 2>/dev/null || echo unknown)"
	echo "date=$(date -u +%Y-%m-%dT%H:%M:%SZ)"
} > "$out/machine.txt"

args=(-n "$iter" -r "$rounds" -R "$nb_rounds" -s "$seconds" -d "${BENCH_HOLD_US:-200}")
[ "${BENCH_HUGETLB:-0}" = 1 ] && args+=(-H)
# shellcheck disable=SC2206
[ -n "${BENCH_ROWS:-}" ] && args+=($BENCH_ROWS)
echo "bench: booting the L1 VM: $iter events per row in $rounds rounds," \
	"non-blocking proof $nb_rounds x ${seconds}s per scenario" >&2
rm -rf "$out/vm"
"$top/selftests/vm-run" --timeout 1500 --results "$out/vm" \
	${BENCH_KERNEL:+--kernel "$BENCH_KERNEL"} -- \
	env BENCH_PERF="${BENCH_PERF:-1}" BENCH_PERF_ITER="${BENCH_PERF_ITER:-2000}" \
	bench/in-vm.sh "${out#"$top"/}/bin/kvmi_bench" "${args[@]}"

micro=()
if [ "${BENCH_MICRO:-1}" = 1 ]; then
	echo "bench: host microbench (slot protocol, google-benchmark)" >&2
	"$out/bin/slot_bench" --benchmark_repetitions=3 \
		--benchmark_report_aggregates_only=true \
		--benchmark_out="$out/slot_bench.json" \
		--benchmark_out_format=json > "$out/slot_bench.txt" 2>&1 ||
		{ cat "$out/slot_bench.txt" >&2; exit 1; }
	micro=(--micro "$out/slot_bench.json")
fi

python3 "$top/bench/report.py" --raw "$out/vm/raw" \
	--machine "$out/machine.txt" "${micro[@]}" --out "$out" |
	tee "$out/table.txt"
