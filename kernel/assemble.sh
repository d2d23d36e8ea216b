#!/bin/bash
# Assemble the kvmi-ring kernel tree from Debian's linux-source-6.12.
#
#   kernel/assemble.sh [--no-kvmi]
#
# The tree lives in the cache ($KVMI_CACHE/linux-<version>/tree, linked from
# build/linux) so that its object directories survive a fresh clone. What
# goes into it:
#   kernel/overlay/**      new kernel files, at the same relative path
#   uapi/linux/*.h         include/uapi/linux/
#   Documentation/**       Documentation/
#   selftests/kvm/*.[ch]   tools/testing/selftests/kvm/x86_64/
#   kernel/patches/series  hooks into existing files, applied in order
#
# Idempotent: every file that the overlay or a patch touches is rebuilt in a
# staging directory from its pristine copy, so a patch is never applied
# twice. Incremental: a file is written into the tree only when its content
# changed, so unchanged files keep their timestamps and make rebuilds only
# what changed. Files that an earlier assembly wrote and this one does not
# are restored from the pristine source. A patch that does not apply fails
# the assembly, naming the patch and leaving the tree as it was.
#
# --no-kvmi assembles the unpatched kernel (no overlay, no patches) in a
# separate tree, for the stock-selftest baseline.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
. "$top/versions.mk"
cache=${KVMI_CACHE:-/var/cache/kvmi-ring}
base="$cache/linux-$LINUX_SOURCE_VERSION"
kvmi=1
tree="$base/tree"
if [ "${1:-}" = "--no-kvmi" ]; then
	kvmi=0
	tree="$base/tree-stock"
fi
pristine="$base/pristine"

die() { echo "assemble: $*" >&2; exit 1; }

# 1. The pristine source, extracted once per pinned version.
if [ ! -f "$pristine/Makefile" ]; then
	have=$(dpkg-query -W -f '${Version}' "$LINUX_SOURCE_PKG" 2>/dev/null || true)
	[ "$have" = "$LINUX_SOURCE_VERSION" ] ||
		die "$LINUX_SOURCE_PKG $LINUX_SOURCE_VERSION is not installed (have '${have:-none}'); run make deps"
	echo "assemble: extracting $LINUX_SOURCE_PKG $LINUX_SOURCE_VERSION" >&2
	mkdir -p "$base"
	rm -rf "$base/pristine.tmp"
	mkdir "$base/pristine.tmp"
	tar -C "$base/pristine.tmp" -xf "/usr/src/$LINUX_SOURCE_PKG.tar.xz"
	mv "$base/pristine.tmp/$LINUX_SOURCE_PKG" "$pristine"
	rmdir "$base/pristine.tmp"
fi

# 2. The working tree: a copy of the pristine one, made once.
if [ ! -f "$tree/Makefile" ]; then
	echo "assemble: creating $tree" >&2
	rm -rf "$tree.tmp"
	cp -a "$pristine" "$tree.tmp"
	mv "$tree.tmp" "$tree"
fi

# 3. Stage every file the overlay and the patches produce.
stage=$(mktemp -d "$base/stage.XXXXXX")
trap 'rm -rf "$stage"' EXIT
if [ $kvmi = 1 ]; then
	[ -d "$top/kernel/overlay" ] && cp -r "$top/kernel/overlay/." "$stage/"
	mkdir -p "$stage/include/uapi/linux" "$stage/tools/testing/selftests/kvm/x86_64"
	cp "$top"/uapi/linux/*.h "$stage/include/uapi/linux/"
	[ -d "$top/Documentation" ] && cp -r "$top/Documentation" "$stage/"
	for f in "$top"/selftests/kvm/*.[ch]; do
		[ -e "$f" ] && cp "$f" "$stage/tools/testing/selftests/kvm/x86_64/"
	done

	series="$top/kernel/patches/series"
	patches=()
	[ -f "$series" ] && mapfile -t patches < <(sed -e 's/#.*//' -e '/^[[:space:]]*$/d' "$series")
	for p in "${patches[@]}"; do
		[ -f "$top/kernel/patches/$p" ] || die "series names $p, which does not exist"
		for f in $(sed -n 's|^+++ b/\([^[:space:]]*\).*|\1|p' "$top/kernel/patches/$p"); do
			if [ ! -e "$stage/$f" ] && [ -e "$pristine/$f" ]; then
				mkdir -p "$stage/$(dirname "$f")"
				cp "$pristine/$f" "$stage/$f"
			fi
		done
	done
	for p in "${patches[@]}"; do
		if ! out=$(patch -d "$stage" -p1 --batch --forward --fuzz=0 \
				--no-backup-if-mismatch -r - < "$top/kernel/patches/$p" 2>&1); then
			echo "$out" >&2
			die "patch $p does not apply to $LINUX_SOURCE_PKG $LINUX_SOURCE_VERSION"
		fi
	done
fi

# 4. Write into the tree what changed; restore what is no longer ours.
manifest="$tree/.kvmi-manifest"
(cd "$stage" && find . -type f | sed 's|^\./||' | LC_ALL=C sort) > "$stage.manifest"
written=0
while read -r f; do
	if ! cmp -s "$stage/$f" "$tree/$f"; then
		mkdir -p "$tree/$(dirname "$f")"
		cp "$stage/$f" "$tree/$f"
		written=$((written + 1))
	fi
done < "$stage.manifest"
restored=0
if [ -f "$manifest" ]; then
	while read -r f; do
		if [ -e "$pristine/$f" ]; then
			cmp -s "$pristine/$f" "$tree/$f" || cp "$pristine/$f" "$tree/$f"
		else
			rm -f "$tree/$f"
		fi
		restored=$((restored + 1))
	done < <(LC_ALL=C comm -23 "$manifest" "$stage.manifest")
fi
mv "$stage.manifest" "$manifest"
echo "assemble: $tree: $(wc -l < "$manifest") files ours, $written written, $restored restored" >&2

if [ $kvmi = 1 ]; then
	mkdir -p "$top/build"
	ln -sfn "$tree" "$top/build/linux"
fi
echo "$tree"
