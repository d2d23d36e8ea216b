#!/bin/bash
# Host-side checks of the benchmark's report tools, on synthetic data
# (no VM, no KVM): bench/report.py computes the percentiles, ratios,
# targets and files it should, and bench/perf_roundtrip.py pairs the
# tracepoint records it should. Ends with "N passed, N failed".
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
pass=0
fail=0

check() {
	local what=$1
	shift
	if "$@" > /dev/null 2>&1; then
		echo "ok - $what"
		pass=$((pass + 1))
	else
		echo "not ok - $what"
		fail=$((fail + 1))
	fi
}

# Raw samples: row R has values 1..100 times a factor, so that p50 = 50 x
# factor and p99 = 99 x factor (nearest rank).
raw=$tmp/raw
mkdir -p "$raw"
rows() {
	local name=$1 factor=$2 what
	for what in guest cycle delivery; do
		seq 1 100 | awk -v f="$factor" '{ print $1 * f }' > "$raw/$name.$what"
	done
}
rows exit_io 1000
rows usfwd 4000
rows kvmi_block 2100
rows kvmi_hybrid 1100
rows kvmi_poll 360
rows lib_block 2310
rows lib_hybrid 1100
rows lib_poll 370
rows exit_io_hooked 1010
rows cpuid 1000
rows cpuid_hooked 1030
rows cr4 1000
rows kvmi_cr_block 5000
rows kvmi_cr_poll 2000
rows msr 800
rows kvmi_msr_poll 3000
rows pgwrite 10
rows kvmi_pf_poll 4000
seq 1 100 | awk '{ print 10 }' > "$raw/tsc.guest"
printf '# scenario round vcpu1_iter_per_s vcpu0_events_per_s\n' > "$raw/nonblock.txt"
for r in 0 1 2; do
	echo "alone $r 1000 0" >> "$raw/nonblock.txt"
	echo "kvmi $r 960 50" >> "$raw/nonblock.txt"
	echo "pause_all $r 400 20" >> "$raw/nonblock.txt"
	echo "kvmi_hold $r 930 5" >> "$raw/nonblock.txt"
	echo "pause_all_hold $r 50 4" >> "$raw/nonblock.txt"
done
# The perf breakdown: entry to exit 30 us, exit to entry 20 us.
for i in $(seq 1 40); do
	t=$((i * 50000))
	printf '  61  3.%09d:  kvm:kvm_entry: vcpu 0, rip 0x1\n' $t
	printf '  61  3.%09d:  kvm:kvm_exit: vcpu 0 reason vmmcall rip 0x1\n' $((t + 30000))
	printf '  77  3.%09d:  kvm:kvm_exit: vcpu 1 reason npf rip 0x1\n' $((t + 1000))
done | gzip > "$raw/perf-kvmi_poll.txt.gz"
printf 'iterations=100\nwarmup=0\nrounds=2\ntsc_khz=1000000\nskipped=\n' > "$raw/meta.txt"
printf 'cpu=Test CPU\ncpus=2\nkernel=6.12.0\n' > "$raw/l1.txt"
printf 'host_cpu=Host CPU\nhost_cpus=2\nhost_kernel=6.1.0\nqemu=10.0.2\n' > "$tmp/machine.txt"
cat > "$tmp/micro.json" <<'JSON'
{"context": {}, "benchmarks": [
 {"name": "BM_pingpong/real_time_median", "run_name": "BM_pingpong/real_time",
  "run_type": "aggregate", "aggregate_name": "median", "real_time": 100, "time_unit": "ns"},
 {"name": "BM_slot_poll/real_time_median", "run_name": "BM_slot_poll/real_time",
  "run_type": "aggregate", "aggregate_name": "median", "real_time": 150, "time_unit": "ns"},
 {"name": "BM_slot_poll/real_time_mean", "run_name": "BM_slot_poll/real_time",
  "run_type": "aggregate", "aggregate_name": "mean", "real_time": 999, "time_unit": "ns"}
]}
JSON

out=$tmp/out
check "report.py runs" python3 "$here/report.py" --raw "$raw" \
	--machine "$tmp/machine.txt" --micro "$tmp/micro.json" --out "$out"
j=$out/results.json
# q EXPR: a Python expression over r, the results (no jq needed).
q() {
	python3 -c 'import json, sys
r = json.load(open(sys.argv[1]))
t = {x["target"]: x for x in r["targets"]}
sys.exit(0 if eval(sys.argv[2]) else 1)' "$j" "$1"
}
check "results.json is written" test -s "$j"
check "p50, p90, p99, p99.9 of a row" \
	q '[r["rows"]["usfwd"]["guest"][k] for k in ("p50", "p90", "p99", "p99_9")] == [200000, 360000, 396000, 400000]'
check "the histogram counts every sample" \
	q 'sum(b[2] for b in r["rows"]["kvmi_poll"]["guest"]["histogram"]) == 100'
check "ratios against userspace forwarding" \
	q 'r["rows"]["kvmi_poll"]["ratio_p50_vs_usfwd"] == 0.09 and r["rows"]["usfwd"]["ratio_p50_vs_usfwd"] == 1'
check "tool-side and delivery figures" \
	q 'r["rows"]["kvmi_block"]["tool_cycle"]["p50"] == 105000 and r["rows"]["kvmi_block"]["delivery"]["p50"] == 105000'
check "the machine, host and L1, under TCG" \
	q 'r["machine"]["host_cpu"] == "Host CPU" and r["machine"]["l1_cpu"] == "Test CPU" and r["machine"]["qemu"] == "10.0.2" and r["machine"]["l1_under_tcg"] is True'
check "poll target met, block target missed with a note" \
	q 't["kvmi_poll p50 <= 0.10x usfwd p50"]["met"] is True and t["kvmi_block p50 <= 0.50x usfwd p50"]["met"] is False and "exit" in t["kvmi_block p50 <= 0.50x usfwd p50"]["note"]'
check "poll against the bare exit" \
	q 't["kvmi_poll p50 <= 1.2x exit_io p50"]["met"] is True and t["kvmi_poll p50 <= 1.2x exit_io p50"]["value"] == 0.36'
check "non-blocking ratios" \
	q 'r["nonblock"]["kvmi"]["ratio_vs_alone"] == 0.96 and r["nonblock"]["pause_all"]["ratio_vs_alone"] == 0.4'
check "held scenarios: kvmi met, ratio of pause-all" \
	q 't["vCPU 1 rate while vCPU 0 waits >= 0.95x alone (kvmi_hold)"]["met"] is False and t["vCPU 1 rate while vCPU 0 waits >= 0.95x alone (kvmi)"]["met"] is True and r["nonblock"]["pause_all_hold"]["ratio_vs_alone"] == 0.05'
check "idle cost per exit" \
	q '[x["cost_p50"] for x in r["idle_cost"]] == [0.03, 0.01]'
check "idle cost paired by round" \
	q '[x["cost_p50_paired"] for x in r["idle_cost"]] == [0.03, 0.01] and len(r["idle_cost"][0]["cost_p50_by_round"]) == 2'
check "idle target missed at 3%" \
	q 't["idle cost, CPUID (in-kernel exit), p50 <= 2%"]["met"] is False'
check "microbench median, not mean" \
	q 'r["microbench"]["ns_per_round_trip"]["BM_slot_poll/real_time"] == 150 and t["slot protocol poll <= 2x raw ping-pong"]["value"] == 1.5'
check "perf breakdown of the exits" \
	q 'r["perf_exits"]["kvmi_poll"] == {"exits": 40, "entry_to_exit_p50": 30000, "exit_to_entry_p50": 20000, "entry_to_exit_p90": 30000, "exit_to_entry_p90": 20000}'
check "library overhead: ratios of p50s and means, paired by round" \
	q '[(o["mode"], o["ratio_p50"], o["ratio_mean"], o["ratio_p50_paired"]) for o in r["lib_overhead"]] == [("block", 1.1, 1.1, 1.1), ("hybrid", 1.0, 1.0, 1.0), ("poll", 1.0278, 1.0278, 1.0278)]'
check "library poll target met at 1.028x" \
	q 't["libkvmi poll p50 <= 1.05x kvmi-ring poll p50"]["met"] is True and t["libkvmi poll p50 <= 1.05x kvmi-ring poll p50"]["value"] == 1.028'
check "table.md has the library rows and their overhead" \
	grep -q "| libkvmi poll | 18.5 |.*| poll mode | 1.028x | 1.028x | 1.028x |" <(tr '\n' ' ' < "$out/table.md")
check "targets from the guest TSC when it agrees with the tool" \
	q 'r["targets_from"] == "guest" and r["guest_tsc_suspect_rows"] == []'
cp -r "$raw" "$tmp/raw3"
seq 1 100 | awk '{ print $1 * 400 }' > "$tmp/raw3/lib_poll.guest"
seq 1 100 | awk '{ print $1 * 900 }' > "$tmp/raw3/lib_poll.delivery"
check "report.py runs with a slow library" python3 "$here/report.py" \
	--raw "$tmp/raw3" --machine "$tmp/machine.txt" --out "$tmp/out3"
check "then the library poll target is missed, with the delivery figures" \
	python3 -c 'import json, sys
t = {x["target"]: x for x in json.load(open(sys.argv[1]))["targets"]}["libkvmi poll p50 <= 1.05x kvmi-ring poll p50"]
sys.exit(not (t["met"] is False and t["value"] == 1.111 and "delivery" in t["note"] and "45.0 us with the library, 18.0 us raw" in t["note"]))' "$tmp/out3/results.json"
echo "tsc_stable=0" >> "$raw/l1.txt"
check "report.py runs with L1's TSC unstable" python3 "$here/report.py" \
	--raw "$raw" --machine "$tmp/machine.txt" --out "$tmp/out2"
check "then targets from the tool's clock" \
	python3 -c 'import json, sys; sys.exit(json.load(open(sys.argv[1]))["targets_from"] != "tool_cycle")' "$tmp/out2/results.json"
mkdir -p "$tmp/raw_nofwd" && cp "$raw"/* "$tmp/raw_nofwd/" && rm "$tmp/raw_nofwd"/usfwd.*
check "without the forwarding row its ratios are '-', not nan" bash -c \
	"python3 '$here/report.py' --raw '$tmp/raw_nofwd' --machine '$tmp/machine.txt' --out '$tmp/out4' |
	 grep -E '^kvmi-ring poll +18\.0 .* - +- ' && ! grep -q nan '$tmp/out4/table.md'"
mkdir -p "$tmp/raw_sock" && cp "$raw"/* "$tmp/raw_sock/"
for what in guest cycle delivery; do
	seq 1 100 | awk '{ print $1 * 7200 }' > "$tmp/raw_sock/socket.$what"
done
check "report.py runs with the socket transport's row" python3 "$here/report.py" \
	--raw "$tmp/raw_sock" --machine "$tmp/machine.txt" --out "$tmp/out_sock"
check "then the ratios and targets are against the socket row" \
	python3 -c 'import json, sys
r = json.load(open(sys.argv[1])); t = {x["target"]: x for x in r["targets"]}
sys.exit(not (r["rows"]["kvmi_poll"]["ratio_p50_vs_socket"] == 0.05 and
	      r["rows"]["kvmi_poll"]["ratio_p50_vs_usfwd"] == 0.09 and
	      t["kvmi_poll p50 <= 0.10x socket p50"]["met"] is True and
	      t["kvmi_block p50 <= 0.50x socket p50"]["met"] is True and
	      "kvmi_poll p50 <= 0.10x usfwd p50" not in t))' "$tmp/out_sock/results.json"
check "table.md's header: the machine, then the reference row" bash -c \
	"head -n 1 '$tmp/out_sock/table.md' | grep -q '^Measured .* on Host CPU (2 cores, Linux 6.1.0); L1: QEMU 10.0.2 TCG, .*; ratios against the socket transport\.\$' &&
	 head -n 1 '$out/table.md' | grep -q 'on Host CPU (2 cores.*; ratios against userspace forwarding\.\$'"
check "table.md names the socket row as the reference" bash -c \
	"grep -q '| p50 vs sock | p99 vs sock |' '$tmp/out_sock/table.md' &&
	 grep -q '| socket transport (seed) | 360.0 |.*| 1.00x | 1.00x |' '$tmp/out_sock/table.md'"
check "table.md is written" grep -q "| kvmi-ring poll | 18.0 |" "$out/table.md"
check "CR and MSR write events against the same write un-introspected" \
	q '[(o["row"], o["baseline"], o["mode"], o["ratio_p50"], o["added_p50_ns"], o["ratio_p50_paired"]) for o in r["write_events"]] == [("kvmi_cr_block", "cr4", "block", 5.0, 200000, 5.0), ("kvmi_cr_poll", "cr4", "poll", 2.0, 50000, 2.0), ("kvmi_msr_poll", "msr", "poll", 3.75, 110000, 3.75), ("kvmi_pf_poll", "pgwrite", "poll", 400.0, 199500, 400.0)]'
check "write event rows in the round-trip table, against forwarding" \
	q 'r["rows"]["kvmi_cr_poll"]["ratio_p50_vs_usfwd"] == 0.5 and r["rows"]["msr"]["label"] == "MSR write, no introspection"'
check "table.md has the write events" \
	grep -q "| CR4 write, poll mode | 50.0 | 100.0 | 2.00x | 50.0 | 2.00x |" "$out/table.md"
check "the table on stdout has the write events" bash -c \
	"python3 '$here/report.py' --raw '$raw' --machine '$tmp/machine.txt' --out '$tmp/out4' | grep -q '^  MSR write, poll  *40.0  *150.0  *3.75x  *110.0  *3.75x$'"
if command -v gnuplot > /dev/null; then
	check "SVG plots" test -s "$out/roundtrip.svg" -a -s "$out/roundtrip-tail.svg" -a -s "$out/idle.svg"
	check "the write rows in writes.svg, not in roundtrip.svg" bash -c \
		"grep -q 'kvmi-ring CR write poll' '$out/writes.svg' && grep -q 'MSR write, no introspection' '$out/writes.svg' && ! grep -q 'CR write' '$out/roundtrip.svg'"
fi

# perf_roundtrip.py: two vCPUs interleaved, one reply without its event.
{
	echo "  kvmi_bench  61 [000]  1.000000000: kvm:kvmi_reply: vcpu 0, seq 9, id 3"
	for i in $(seq 1 50); do
		t=$((i * 1000))
		printf '  kvmi_bench  61 [000]  2.%09d: kvm:kvmi_event_send: vcpu 0, seq %d, id 3, rip 0x1\n' $t "$i"
		printf '  kvmi_bench  62 [001]  2.%09d: kvmi:event_send: vcpu=1 seq=%d id=4\n' $((t + 1)) "$i"
		printf '  kvmi_bench  61 [000]  2.%09d: kvm:kvmi_reply: vcpu 0, seq %d, id 3, action 0\n' $((t + 500)) "$i"
		printf '  kvmi_bench  62 [001]  2.%09d: kvmi:reply: vcpu=1 seq=%d id=4\n' $((t + 201)) "$i"
	done
} > "$tmp/perf.txt"
check "perf_roundtrip.py pairs the records" \
	python3 "$here/perf_roundtrip.py" "$tmp/perf.txt" --json "$tmp/perf.json"
pq() {
	python3 -c 'import json, sys
r = json.load(open(sys.argv[1]))["by_event_id"]
sys.exit(0 if eval(sys.argv[2]) else 1)' "$tmp/perf.json" "$1"
}
check "kernel-side round trip per event id" \
	pq 'r["3"]["n"] == 50 and r["3"]["p50"] == 500'
check "both trace systems" pq 'r["4"]["n"] == 50 and r["4"]["p50"] == 200' 
# Two VMs traced together: vCPU 0 of each, the same seqs, told apart by
# the thread; the kernel's own format ("event N" for the id).
{
	for i in $(seq 1 20); do
		t=$((i * 1000))
		printf '      kvmi_bench    65 [000]     5.%09d: kvmi:kvmi_event_send: vcpu 0 seq %d event 3 rip 0x4162f5 ts 1\n' $t "$i"
		printf '      kvmi_bench    66 [001]     5.%09d: kvmi:kvmi_event_send: vcpu 0 seq %d event 3 rip 0x4162f5 ts 1\n' $((t + 1)) "$i"
		printf '      kvmi_bench    65 [000]     5.%09d:   kvmi:kvmi_doorbell: vcpu 0 notify suppressed\n' $((t + 2))
		printf '      kvmi_bench    66 [001]     5.%09d:      kvmi:kvmi_reply: vcpu 0 seq %d event 3 action 0 flags 0x0 reason 1 ts 1\n' $((t + 301)) "$i"
		printf '      kvmi_bench    65 [000]     5.%09d:      kvmi:kvmi_reply: vcpu 0 seq %d event 3 action 0 flags 0x0 reason 1 ts 1\n' $((t + 700)) "$i"
	done
} > "$tmp/perf2.txt"
check "perf_roundtrip.py on two VMs at once" \
	python3 "$here/perf_roundtrip.py" "$tmp/perf2.txt" --json "$tmp/perf2.json"
check "the same vCPU and seq of two VMs paired by thread" \
	python3 -c 'import json, sys
r = json.load(open(sys.argv[1]))["by_event_id"]["3"]
sys.exit(not (r["n"] == 40 and r["p50"] == 300 and r["max"] == 700))' "$tmp/perf2.json"
: > "$tmp/empty.txt"
check "no record: an error" bash -c "! python3 '$here/perf_roundtrip.py' '$tmp/empty.txt'"

echo "$pass passed, $fail failed"
[ "$fail" = 0 ]
