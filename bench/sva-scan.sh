#!/bin/bash
# Scan guest memory through zero-copy mappings, through READ_PHYSICAL and
# through the socket transport's READ_PHYSICAL messages (bench/sva_scan.c)
# in the L1 VM, on anonymous then hugetlbfs memory:
#
#   bench/sva-scan.sh [MIB [ROUNDS]]
#
# Builds build/bench/bin/sva_scan against the headers of the kernel under
# test (SVA_HDR, default obj-normal/usr/include) and boots SVA_KERNEL (the
# normal kernel) with selftests/vm-run. Prints the rows of both runs.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
. "$top/versions.mk"
cache=${KVMI_CACHE:-/var/cache/kvmi-ring}
base="$cache/linux-$LINUX_SOURCE_VERSION"
hdr=${SVA_HDR:-$base/obj-normal/usr/include}
mib=${1:-64}
rounds=${2:-9}
out="$top/build/bench/bin"
mkdir -p "$out"
gcc -O2 -g -Wall -isystem "$hdr" -o "$out/sva_scan" "$top/bench/sva_scan.c"
rel=${out#"$top"/}
"$top/selftests/vm-run" --timeout 2400 ${SVA_KERNEL:+--kernel "$SVA_KERNEL"} -- \
	bash -c "echo 64 > /proc/sys/vm/nr_hugepages; \
		$rel/sva_scan -m $mib -r $rounds && \
		$rel/sva_scan -m $mib -r $rounds -H"
