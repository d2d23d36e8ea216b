#!/bin/bash
# Build the patched QEMU that the L1 VM runner uses.
#
# Inputs: Debian's qemu 10.0.2 orig tarball (pinned in versions.mk), the
# patches in qemu/patches/ and the configure flags below. The result is
# cached outside the clone under $KVMI_CACHE/qemu-<hash of the inputs>/, so
# a second clone (CI on a reused machine) finds it. Prints the path of the
# qemu-system-x86_64 binary on its last line. --fetch only fetches the source.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
. "$top/versions.mk"
cache=${KVMI_CACHE:-/var/cache/kvmi-ring}
jobs=${JOBS:-$(nproc)}

configure_flags=(
	--target-list=x86_64-softmmu
	--without-default-features
	--disable-download
	--disable-install-blobs
	--disable-docs
	--disable-werror
	--disable-user
	--disable-tools
	--enable-tcg
	--enable-attr
	--enable-virtfs
	--python=/usr/bin/python3
)

# Debian's orig tarball, from the Debian archive's pool (the archive serves
# it, but not the .dsc, so apt-get source cannot be used), checked against
# the pinned hash.
tarball="$cache/dl/$QEMU_ORIG"
fetch() {
	mkdir -p "$cache/dl"
	echo "$QEMU_ORIG_SHA256  $tarball" | sha256sum -c --status 2>/dev/null && return 0
	echo "qemu: fetching $QEMU_ORIG" >&2
	curl -fsSL -o "$tarball.part" "$DEBIAN_MIRROR/$QEMU_POOL/$QEMU_ORIG"
	echo "$QEMU_ORIG_SHA256  $tarball.part" | sha256sum -c --status ||
		{ echo "qemu: checksum mismatch for $QEMU_ORIG" >&2; exit 1; }
	mv "$tarball.part" "$tarball"
}
if [ "${1:-}" = --fetch ]; then
	fetch
	exit 0
fi

# The key covers what changes the binary: the tarball, the configure flags
# and the patches' hunks (not their commit messages).
key=$( { echo "$QEMU_ORIG_SHA256"; echo "${configure_flags[*]}";
	 for p in "$top"/qemu/patches/*.patch; do sed -n '/^--- a\//,$p' "$p"; done; } |
	sha256sum | cut -c1-16)
dest="$cache/qemu-$QEMU_VERSION-$key"
bin="$dest/bin/qemu-system-x86_64"
if [ -x "$bin" ]; then
	echo "$bin"
	exit 0
fi


fetch
work="$cache/qemu-build-$key"
rm -rf "$work"
mkdir -p "$work"
echo "qemu: unpacking and patching into $work" >&2
tar -C "$work" -xf "$tarball"
src="$work/qemu-$QEMU_VERSION"
for p in "$top"/qemu/patches/*.patch; do
	patch -d "$src" -p1 --forward --no-backup-if-mismatch -s < "$p" ||
		{ echo "qemu: patch $(basename "$p") does not apply" >&2; exit 1; }
done

mkdir -p "$src/build"
cd "$src/build"
echo "qemu: configuring" >&2
../configure --prefix="$dest" "${configure_flags[@]}" > "$work/configure.log" 2>&1 ||
	{ tail -n 40 "$work/configure.log" >&2; exit 1; }
echo "qemu: building qemu-system-x86_64 with $jobs jobs (about 8 minutes on 2 cores)" >&2
ninja -j"$jobs" qemu-system-x86_64 > "$work/build.log" 2>&1 ||
	{ tail -n 40 "$work/build.log" >&2; exit 1; }
# Only the binary: firmware and option ROMs come from the distribution (-L).
install -D -m 755 qemu-system-x86_64 "$bin.tmp"
mv "$bin.tmp" "$bin"
cd /
rm -rf "$work"
echo "$bin"
