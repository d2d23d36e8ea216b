# Every pinned input of the build, in one place. Included by the Makefile
# and sourced by the shell scripts (plain NAME=value lines only).

# Kernel: Debian's linux-source-6.12 (bookworm-security).
LINUX_SOURCE_PKG=linux-source-6.12
LINUX_SOURCE_VERSION=6.12.117-1~deb12u1

# QEMU: Debian's orig tarball of qemu 10.0.2 (source package from
# bookworm-backports); only the orig tarball is fetched, see qemu/build.sh.
QEMU_VERSION=10.0.2
QEMU_ORIG=qemu_10.0.2+ds.orig.tar.xz
QEMU_ORIG_SHA256=0901da33844a331bf8b3602b9c1fbd178e60b737c8e3ade678255bd090c9b9f1
QEMU_POOL=pool/main/q/qemu
DEBIAN_MIRROR=http://deb.debian.org/debian
