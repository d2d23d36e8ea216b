#!/bin/bash
# The test command: host-side tests (the harness's and the user library's
# unit tests), then the selftests in the L1 VM.
#
#   selftests/check.sh [--host-only | --vm-only] [--debug]
#
# In the VM: every kvmi-ring selftest (x86_64/kvmi_*_test), the user
# library's tests against the kernel (userlib/tests/vm: the library, and
# its examples attached to a VMM) and the stock KVM
# selftests of selftests/stock-pass.list; then, in a second boot, the stock
# list again (but dirty_log_test and dirty_log_perf_test) with
# introspection hooked on every VM they create (run-in-vm --hooked; not
# with --debug). Logs go to build/. The last line
# is the total: "check: N passed, N failed, N skipped".
set -uo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
. "$top/versions.mk"
cache=${KVMI_CACHE:-/var/cache/kvmi-ring}
host=1 vm=1 vmargs=()
for a in "$@"; do
	case "$a" in
	--host-only) vm=0 ;;
	--vm-only) host=0 ;;
	--debug) vmargs+=(--debug) ;;
	*) echo "check: unknown option $a" >&2; exit 2 ;;
	esac
done
mkdir -p "$top/build"
total_pass=0 total_fail=0 total_skip=0
count() {
	local line
	line=$(grep -E '^[a-zA-Z-]+: [0-9]+ passed, [0-9]+ failed' "$1" | tail -n 1)
	if [ -z "$line" ]; then
		total_fail=$((total_fail + 1))
		return
	fi
	set -- $(echo "$line" | grep -oE '[0-9]+')
	total_pass=$((total_pass + $1))
	total_fail=$((total_fail + $2))
	total_skip=$((total_skip + ${3:-0}))
}

rc=0
if [ $host = 1 ]; then
	echo "== host tests"
	"$top/selftests/host-tests" 2>&1 | tee "$top/build/check-host.log"
	[ "${PIPESTATUS[0]}" = 0 ] || rc=1
	count "$top/build/check-host.log"
	echo "== user library unit tests (host, no KVM)"
	make -s -C "$top/userlib" check O="$top/build/userlib" 2>&1 |
		tee "$top/build/check-userlib.log"
	[ "${PIPESTATUS[0]}" = 0 ] || rc=1
	count "$top/build/check-userlib.log"
fi
if [ $vm = 1 ]; then
	# From this clone's sources, not from the (shared) output directory,
	# which may hold binaries of tests that this clone does not have.
	kvmi_tests=$(cd "$top/selftests/kvm" && ls kvmi_*_test.c | sed 's|^|x86_64/|; s|\.c$||' | LC_ALL=C sort)
	# The user library's test against the kernel, built from this clone
	# into its own directory beside the selftests (run-in-vm takes it
	# relative to selftests-normal).
	base="$cache/linux-$LINUX_SOURCE_VERSION"
	if make -s -C "$top/userlib" vmtest O="$base/userlib-normal" \
		TREE="$base/tree" HDR="$base/obj-normal/usr/include" \
		SELFTESTS="$base/selftests-normal" > "$top/build/userlib-vmtest.log" 2>&1; then
		kvmi_tests="$kvmi_tests ../userlib-normal/kvmi_lib_test ../userlib-normal/examples_test"
	else
		echo "check: building userlib's in-VM test failed:"
		tail -n 20 "$top/build/userlib-vmtest.log"
		total_fail=$((total_fail + 1))
	fi
	echo "== selftests in the L1 VM: $(echo $kvmi_tests | wc -w) kvmi-ring, $(grep -c '^[^#]' "$top/selftests/stock-pass.list") stock"
	"$top/selftests/vm-run" "${vmargs[@]}" --timeout "${VM_TIMEOUT:-2400}" -- \
		selftests/run-in-vm $kvmi_tests --list selftests/stock-pass.list \
		2>&1 | tee "$top/build/check-vm.tap"
	[ "${PIPESTATUS[0]}" = 0 ] || rc=1
	count "$top/build/check-vm.tap"
	if [ ${#vmargs[@]} = 0 ]; then
		# Minus the two dirty-log throughput tests (a third of the
		# pass's time): with no event enabled, introspection adds
		# nothing on their path that the other memslot tests miss.
		echo "== stock selftests in the L1 VM with introspection hooked"
		"$top/selftests/vm-run" --timeout "${VM_TIMEOUT:-2400}" -- \
			selftests/run-in-vm --hooked --list selftests/stock-pass.list \
			--exclude dirty_log_test --exclude dirty_log_perf_test \
			2>&1 | tee "$top/build/check-vm-hooked.tap"
		[ "${PIPESTATUS[0]}" = 0 ] || rc=1
		count "$top/build/check-vm-hooked.tap"
	fi
fi
[ $total_fail = 0 ] || rc=1
echo "check: $total_pass passed, $total_fail failed, $total_skip skipped"
exit $rc
