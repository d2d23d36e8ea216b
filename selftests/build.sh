#!/bin/bash
# Build the KVM selftests (the stock ones and kvmi-ring's, which the tree
# assembly put in tools/testing/selftests/kvm/x86_64/) against the headers
# of a built kernel.
#
#   selftests/build.sh [normal|stock]
#
# Output: $KVMI_CACHE/linux-<version>/selftests-<flavour>/ (printed last).
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
. "$top/versions.mk"
cache=${KVMI_CACHE:-/var/cache/kvmi-ring}
base="$cache/linux-$LINUX_SOURCE_VERSION"
flavour=${1:-normal}
jobs=${JOBS:-$(nproc)}
case "$flavour" in
normal) tree="$base/tree" ;;
stock) tree="$base/tree-stock" ;;
*) echo "selftests: unknown flavour '$flavour'" >&2; exit 2 ;;
esac
obj="$base/obj-$flavour"
out="$base/selftests-$flavour"
[ -d "$obj/usr/include" ] || { echo "selftests: no headers in $obj (build the $flavour kernel)" >&2; exit 1; }

exec 9> "$base/lock"
flock 9
mkdir -p "$out"
echo "selftests: building the KVM selftests ($flavour)" >&2
make -C "$tree/tools/testing/selftests/kvm" -s -j"$jobs" \
	OUTPUT="$out" KHDR_INCLUDES="-isystem $obj/usr/include" > "$out/build.log" 2>&1 ||
	{ tail -n 40 "$out/build.log" >&2; exit 1; }
# The LD_PRELOAD shim that runs the stock tests with introspection hooked
# (run-in-vm --hooked); only the kvmi-ring kernel has the ABI.
if [ "$flavour" = normal ]; then
	gcc -O2 -Wall -Wextra -Werror -shared -fPIC -isystem "$obj/usr/include" \
		-o "$out/kvmi_hook.so" "$top/selftests/hook/kvmi_hook.c" -ldl
fi
echo "$out"
