#!/bin/bash
# Runs in the L1 VM; bench/run.sh starts it through selftests/vm-run:
#
#   bench/in-vm.sh KVMI_BENCH [ARG...]
#
# Records the L1 machine in /mnt/results/raw/l1.txt, reserves hugepages
# for -H, and runs kvmi_bench with its raw output in /mnt/results/raw.
set -euo pipefail
bin=$1
shift
out=/mnt/results/raw
mkdir -p "$out"
[ -w /proc/sys/vm/nr_hugepages ] && echo 64 > /proc/sys/vm/nr_hugepages
{
	echo "cpu=$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')"
	echo "cpus=$(nproc)"
	echo "kernel=$(uname -r)"
	echo "kernel_build=$(uname -v)"
	echo "nested_svm=$(cat /sys/module/kvm_amd/parameters/nested 2>/dev/null || echo no)"
	echo "memory_kb=$(awk '/MemTotal/ {print $2}' /proc/meminfo)"
} > "$out/l1.txt"
exec "$bin" -o "$out" "$@"
