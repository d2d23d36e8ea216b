#!/bin/bash
# The main job: boot the L1 VM and run the benchmarks, printing the table.
#
# Placeholder until the benchmark issue lands: it proves the chain the
# benchmarks will use (built kernel, patched QEMU, L1 VM with nested SVM,
# KVM usable inside) and reports the machine, but measures nothing yet.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
mkdir -p "$top/build"
echo "bench: booting the L1 VM" >&2
"$top/selftests/vm-run" --timeout 300 -- bash -c '
	echo "L1 kernel:  $(uname -r)"
	echo "L1 CPU:     $(grep -m1 "model name" /proc/cpuinfo | cut -d: -f2-) x $(nproc)"
	echo "nested SVM: $(cat /sys/module/kvm_amd/parameters/nested 2>/dev/null || echo no)"
	test -c /dev/kvm && echo "/dev/kvm:   present"
'
echo "host CPU:   $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2-) x $(nproc)"
echo "bench: no benchmark yet (issue 7 adds the event round-trip table)"
