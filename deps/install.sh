#!/bin/bash
# Install every Debian package kvmi-ring needs. Idempotent: when everything
# is already there at the pinned versions it does nothing (and needs no
# network). Needs root (or sudo).
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
. "$top/versions.mk"
export DEBIAN_FRONTEND=noninteractive

sudo=
[ "$(id -u)" = 0 ] || sudo=sudo

pkgs() { sed -e 's/#.*//' -e '/^[[:space:]]*$/d' "$1"; }
mapfile -t main < <(pkgs "$top/deps/packages.txt")
mapfile -t bpo < <(pkgs "$top/deps/packages-backports.txt")

missing() {
	local p
	for p in "$@"; do
		dpkg-query -W -f '${db:Status-Status}\n' "$p" 2>/dev/null | grep -qx installed || echo "$p"
	done
}

src=/etc/apt/sources.list.d/kvmi-ring.sources
need_update=0
if ! cmp -s "$top/deps/kvmi-ring.sources" "$src"; then
	echo "deps: installing $src" >&2
	$sudo install -m 644 "$top/deps/kvmi-ring.sources" "$src"
	need_update=1
fi

todo_main=$(missing "${main[@]}")
todo_bpo=$(missing "${bpo[@]}")
have_ls=$(dpkg-query -W -f '${Version}' "$LINUX_SOURCE_PKG" 2>/dev/null || true)
if [ -z "$todo_main$todo_bpo" ] && [ "$have_ls" = "$LINUX_SOURCE_VERSION" ] && [ $need_update = 0 ]; then
	exit 0
fi

echo "deps: apt-get update" >&2
$sudo apt-get update -qq
if [ -n "$todo_main" ]; then
	echo "deps: installing" $todo_main >&2
	# shellcheck disable=SC2086
	$sudo apt-get install -y -qq --no-install-recommends $todo_main > /dev/null
fi
if [ -n "$todo_bpo" ]; then
	echo "deps: installing from bookworm-backports:" $todo_bpo >&2
	# shellcheck disable=SC2086
	$sudo apt-get install -y -qq --no-install-recommends -t bookworm-backports $todo_bpo > /dev/null
fi
if [ "$have_ls" != "$LINUX_SOURCE_VERSION" ]; then
	echo "deps: installing $LINUX_SOURCE_PKG=$LINUX_SOURCE_VERSION" >&2
	$sudo apt-get install -y -qq --no-install-recommends --allow-downgrades \
		"$LINUX_SOURCE_PKG=$LINUX_SOURCE_VERSION" > /dev/null
fi
# meson must be >= 1.5 for QEMU 10 (bookworm has 1.0).
v=$(meson --version)
if ! printf '1.5.0\n%s\n' "$v" | sort -V -C; then
	echo "deps: meson $v is too old; bookworm-backports did not install" >&2
	exit 1
fi
