#!/bin/bash
# Configure and build a kvmi-ring kernel.
#
#   kernel/build.sh [normal|debug|stock]
#
#   normal  tinyconfig + kernel/configs/kvmi.config
#   debug   normal + kernel/configs/debug.config (KASAN, lockdep, kmemleak)
#   stock   like normal, on the unpatched tree (kernel/assemble.sh --no-kvmi)
#
# Objects go to $KVMI_CACHE/linux-<version>/obj-<flavour>, outside the clone,
# so a second clone rebuilds only what changed. The configuration is
# regenerated in a scratch directory and copied over only when it differs,
# so an unchanged fragment costs no rebuild. Every option a fragment sets is
# checked afterwards: one that did not stick (a missing dependency) is an
# error. Prints the path of bzImage on its last line.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
. "$top/versions.mk"
cache=${KVMI_CACHE:-/var/cache/kvmi-ring}
base="$cache/linux-$LINUX_SOURCE_VERSION"
flavour=${1:-normal}
jobs=${JOBS:-$(nproc)}

frags=("$top/kernel/configs/kvmi.config")
assemble_args=()
case "$flavour" in
normal) ;;
debug) frags+=("$top/kernel/configs/debug.config") ;;
stock) assemble_args=(--no-kvmi) ;;
*) echo "build: unknown flavour '$flavour' (normal, debug, stock)" >&2; exit 2 ;;
esac

mkdir -p "$base"
exec 9> "$base/lock"
flock 9

tree=$("$top/kernel/assemble.sh" "${assemble_args[@]}")
obj="$base/obj-$flavour"
scratch="$base/kconfig-$flavour"
mkdir -p "$obj" "$scratch"
exec 8> "$obj.lock"
flock 8

kmake() {
	make -C "$tree" O="$1" -s CC="ccache gcc" "${@:2}"
}
export CCACHE_DIR="${CCACHE_DIR:-$cache/ccache}"
export CCACHE_MAXSIZE="${CCACHE_MAXSIZE:-5G}"

# The stock kernel cannot have options that its Kconfig does not know.
merged=$(mktemp)
trap 'rm -f "$merged"' EXIT
cat "${frags[@]}" > "$merged"
if [ "$flavour" = stock ]; then
	sed -i '/CONFIG_KVM_INTROSPECTION/d' "$merged"
fi

kmake "$scratch" tinyconfig > /dev/null
"$tree/scripts/kconfig/merge_config.sh" -m -O "$scratch" "$scratch/.config" "$merged" > "$scratch/merge.log" 2>&1
kmake "$scratch" olddefconfig > /dev/null
bad=0
while IFS= read -r line; do
	case "$line" in
	CONFIG_*=n) want="# ${line%=n} is not set" ;;
	CONFIG_*) want="$line" ;;
	*) continue ;;
	esac
	if ! grep -qxF "$want" "$scratch/.config"; then
		echo "build: $line did not stick in the $flavour configuration" >&2
		bad=1
	fi
done < "$merged"
[ $bad = 0 ] || exit 1
if ! cmp -s "$scratch/.config" "$obj/.config"; then
	echo "build: $flavour configuration changed" >&2
	cp "$scratch/.config" "$obj/.config"
fi

# The tree lock covers the assembly; the long make holds only its object
# directory's lock (taken before the configuration is written), so that a
# debug build does not keep a normal one waiting for half an hour.
exec 9>&-
echo "build: $flavour kernel with $jobs jobs" >&2
kmake "$obj" -j"$jobs" bzImage
kmake "$obj" -j"$jobs" headers
echo "$obj/arch/x86/boot/bzImage"
