# kvmi-ring top-level Makefile. `make help` lists the targets.
#
# Expensive results (the kernel tree and its objects, the QEMU build, the
# selftest binaries, ccache) live in $(KVMI_CACHE), outside the clone and
# keyed by their inputs, so a second clone rebuilds only what changed.
# build/ (ignored by git) holds this clone's outputs and links.

KVMI_CACHE ?= /var/cache/kvmi-ring
export KVMI_CACHE
include versions.mk

KERNEL_DIR := $(KVMI_CACHE)/linux-$(LINUX_SOURCE_VERSION)
VM_TIMEOUT ?= 2400

.PHONY: help all deps kernel kernel-debug qemu selftests check check-host \
	check-vm check-debug bench regression-list clean distclean userlib \
	install torture

help:
	@sed -n 's/^## //p' $(MAKEFILE_LIST)

## all             deps, kernel, qemu and selftests
all: selftests qemu

## deps            install every Debian package needed (idempotent) and
##                 fetch QEMU's Debian source
deps:
	@deps/install.sh
	@qemu/build.sh --fetch

## kernel          assemble the tree and build the normal kernel
kernel: deps
	@kernel/build.sh normal > /dev/null

## kernel-debug    the debug kernel (KASAN, lockdep, kmemleak)
kernel-debug: deps
	@kernel/build.sh debug > /dev/null

## qemu            build the patched QEMU (cached by its inputs)
qemu: deps
	@qemu/build.sh > /dev/null

## selftests       build the KVM selftests, stock and kvmi-ring's
selftests: kernel
	@selftests/build.sh normal > /dev/null

## userlib         build the user library (build/userlib: libkvmi.so,
##                 libkvmi.a, the examples)
userlib:
	@$(MAKE) -s -C userlib O=$(CURDIR)/build/userlib

## install         install the user library, its header, pkg-config file
##                 and man pages (PREFIX=/usr/local, DESTDIR=)
install:
	@$(MAKE) -s -C userlib install O=$(CURDIR)/build/userlib

## check           host tests, then every selftest in the L1 VM
check: selftests qemu
	@selftests/check.sh

## check-host      only the host-side tests (no VM)
check-host: deps
	@selftests/check.sh --host-only

## check-vm        only the selftests in the L1 VM
check-vm: selftests qemu
	@selftests/check.sh --vm-only

## check-debug     the kvmi-ring selftests on the debug kernel
check-debug: selftests qemu kernel-debug
	@selftests/check.sh --vm-only --debug

## torture         the hostile-tool tests' long runs on the debug kernel
##                 (Documentation/virt/kvm/kvmi-torture.rst: about 30
##                 minutes on 2 cores without the socket test, which took
##                 1.5 more on the normal kernel; section 6 has the durations)
TORTURE_EVENTS ?= 100000
TORTURE_CALLS ?= 200000
TORTURE_KILLS ?= 200
TORTURE_DESTROYS ?= 30
TORTURE_TOGGLES ?= 2000
TORTURE_PA_EVENTS ?= 30000
TORTURE_PA_KILLS ?= 200
TORTURE_SLOT_ROUNDS ?= 200
TORTURE_SOCK_KILLS ?= 200
TORTURE_SOCK_DESTROYS ?= 30
TORTURE_SOCK_MESSAGES ?= 100000
torture: selftests qemu kernel-debug
	@selftests/vm-run --debug --timeout 10800 -- env \
		KVMI_FUZZ_EVENTS=$(TORTURE_EVENTS) \
		KVMI_IOCTL_FUZZ_CALLS=$(TORTURE_CALLS) \
		KVMI_TORTURE_KILLS=$(TORTURE_KILLS) \
		KVMI_TORTURE_DESTROYS=$(TORTURE_DESTROYS) \
		KVMI_TORTURE_TOGGLES=$(TORTURE_TOGGLES) \
		KVMI_TORTURE_PA_EVENTS=$(TORTURE_PA_EVENTS) \
		KVMI_TORTURE_PA_KILLS=$(TORTURE_PA_KILLS) \
		KVMI_TORTURE_SLOT_ROUNDS=$(TORTURE_SLOT_ROUNDS) \
		KVMI_SOCK_TORTURE_KILLS=$(TORTURE_SOCK_KILLS) \
		KVMI_SOCK_TORTURE_DESTROYS=$(TORTURE_SOCK_DESTROYS) \
		KVMI_SOCK_FUZZ_MESSAGES=$(TORTURE_SOCK_MESSAGES) \
		stdbuf -oL selftests/run-in-vm --flavour normal --timeout 5400 \
		x86_64/kvmi_fuzz_test x86_64/kvmi_ioctl_fuzz_test \
		x86_64/kvmi_torture_test x86_64/kvmi_torture_pa_test \
		x86_64/kvmi_socket_torture_test

## bench           build, boot the L1 VM and run the benchmarks
bench: selftests qemu
	@bench/run.sh

## regression-list rebuild selftests/stock-pass.list on the unpatched kernel
regression-list: deps qemu
	@selftests/make-regression-list.sh

## clean           remove build/ (the cache stays)
clean:
	rm -rf build

## distclean       remove build/ and the cache
distclean: clean
	rm -rf $(KVMI_CACHE)
