#!/bin/bash
# SPDX-License-Identifier: MIT
# publish.sh -- regenerate every benchmark figure in docs/: each runner in
# turn, one after the other (never two at once: a figure taken beside other
# work measures the other work), at the settings the project's published
# targets are stated in, with `--out docs`.  Each runner opens its own
# bench/benchenv.py session, so each refuses (exit 3) on a busy machine;
# this script then stops at that runner, says so, and runs nothing after it.
#
#   core       bench/core/run.py: trackers uffd, mprotect and cc (when
#              bench_core_cc is built), every part, PMDK's 8-byte transaction
#              (`pmdk`) beside them in each run
#   hashmap    bench/hashmap/run.py: insert, 1 and 2 threads, 1/16/256 ops per
#              FAS, PMDK, VolipMem sync and relaxed 1 ms, PMThreads-style at
#              1 ms; with hm_bench_vp_cc built also vp-cc-sync, vp-cc-relaxed
#              and the volatile table plain, instrumented and built by clang
#              without the instrumentation (the other
#              workloads and configurations are cut: the full matrix takes
#              over 20 minutes)
#   memcached  bench/memcached/side_by_side.py: get90-32 and get50-1k against
#              vmcached per-request durable and at 1 ms, 3 repeats alternating;
#              with vmcached-cc built also vmcached-cc per-request durable
#   tinydb     bench/tinydb/bench_tinydb.py: N = 100, 1,000, 10,000, 3 repeats
#   vm         bench/vm/run.py: in the qemu guest and here, or --host-only
#              when the qemu harness is not set up
#
# Usage: bench/publish.sh [--quick]
#   --quick                    medians of 3 (the gate's minimum) everywhere
#   VP_PUBLISH_ONLY=core,vm    only these runners, in the order above
#   VP_PUBLISH_BUILD=build     the build tree (bench_core, hm_bench_*, ...)
#   VP_PUBLISH_OUT=docs        where to write (another directory measures
#                              without publishing; the gate only guards docs/)
#   VP_PUBLISH_MC_SECONDS=10   seconds per memcaslap run
#   VP_PUBLISH_SETTLE=300      longest wait, before each runner, for the load
#                              the runner before left to decay
#   VP_VM_CACHE                the qemu harness's cache (tests/vm/kvm-guest.sh)
# Exit: 0 when every runner wrote, 3 when the gate refused one, else the
# failing runner's code.
#
# Wall time, measured on the 2-core development machine while it was busy
# (load 5-13, others using 1.5 cores; into a temporary directory), default
# settings: core 291 s, hashmap 222 s, memcached 228 s, tinydb 12 s, vm 4 s
# host-only, 157 s with the qemu guest (VP_VM_CACHE=build-vm, 20-37 s per
# boot); total 757 s (12.6 min) host-only, ~15 min with the guest.  An idle
# machine is faster.  (memcached's figure predates vmcached-cc's rows, which
# add a fourth server run to each load and repeat: about a third more.)
set -uo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(dirname "$here")
build=$(cd "${VP_PUBLISH_BUILD:-$root/build}" 2>/dev/null && pwd) ||
	{ echo "publish.sh: no build tree at ${VP_PUBLISH_BUILD:-$root/build}" >&2; exit 2; }
out=${VP_PUBLISH_OUT:-$root/docs}
only=${VP_PUBLISH_ONLY:-core,hashmap,memcached,tinydb,vm}
runs=5
case "${1:-}" in
--quick) runs=3 ;;
"") ;;
*) echo "usage: bench/publish.sh [--quick]" >&2; exit 2 ;;
esac
py=/usr/bin/python3
export VP_BENCH_CORE=$build/bench/core/bench_core
for r in ${only//,/ }; do
	case $r in core|hashmap|memcached|tinydb|vm) ;;
	*) echo "publish.sh: VP_PUBLISH_ONLY: unknown runner $r" \
		"(core, hashmap, memcached, tinydb, vm)" >&2; exit 2 ;;
	esac
done

# vm_args -- bench/vm's guest option: the harness's cache, or --host-only
# when kvm-guest.sh would skip (no qemu or no guest kernel).
vm_args() {
	local cache=${VP_VM_CACHE:-$root/build-vm}
	if command -v qemu-system-x86_64 >/dev/null && [ -f "$cache/kernel-release" ]; then
		echo "--vm-cache $cache"
	else
		echo "--host-only"
	fi
}

# settle -- wait until the 1-minute load average is below 0.25 per core:
# the runner before has just raised it itself (a 100 s runner on one core
# leaves ~0.9), and the next runner's gate refuses a start above 0.3 per
# core. The load decays by e every minute, so this takes about a minute;
# give up after VP_PUBLISH_SETTLE seconds (default 300) and let the gate
# decide.
settle() {
	local limit waited=0
	limit=$(awk -v n="$(nproc)" 'BEGIN { print 0.25 * n }')
	while awk -v l="$(cut -d' ' -f1 /proc/loadavg)" -v m="$limit" 'BEGIN { exit !(l >= m) }'; do
		if [ "$waited" -ge "${VP_PUBLISH_SETTLE:-300}" ]; then
			echo "publish.sh: load still $(cut -d' ' -f1 /proc/loadavg) after $waited s" >&2
			return 0
		fi
		[ "$waited" -eq 0 ] && echo "publish.sh: waiting for the load ($(cut -d' ' -f1 /proc/loadavg)) to fall below $limit" >&2
		sleep 10
		waited=$((waited + 10))
	done
	[ "$waited" -gt 0 ] && echo "publish.sh: load $(cut -d' ' -f1 /proc/loadavg) after $waited s" >&2
	return 0
}

# one -- run runner $1 (the rest: its command) unless VP_PUBLISH_ONLY leaves
# it out; print its wall time; stop the whole publish on refusal or failure.
one() {
	local name=$1; shift
	case ",$only," in *",$name,"*) ;; *) return 0 ;; esac
	settle
	echo "=== publish.sh: $name: $*" >&2
	local t0=$SECONDS rc=0
	"$@" || rc=$?
	local wall=$((SECONDS - t0))
	total=$((total + wall))
	if [ "$rc" -eq 3 ]; then
		echo "publish.sh: STOPPED at $name: the benchmark gate refused to write into" \
			"$out (exit 3, reason above); ${done_list:-no runner} written, nothing" \
			"after $name run. ($name: $wall s)" >&2
		exit 3
	elif [ "$rc" -eq 77 ]; then
		echo "publish.sh: $name SKIPPED: its prerequisites are missing (above); $wall s" >&2
		return 0
	elif [ "$rc" -ne 0 ]; then
		echo "publish.sh: STOPPED at $name: it failed (exit $rc); nothing after it run." \
			"($name: $wall s)" >&2
		exit "$rc"
	fi
	done_list="${done_list:+$done_list, }$name"
	echo "publish.sh: $name done in $wall s (total so far $total s)" >&2
}

total=0
done_list=
cd "$root" || exit 2
# The cc tracker's rows and cells where its instrumented builds exist
# (VOLIPMEM_CC's clang and llvm-14-dev; tools/cc).
core_trackers=uffd,mprotect
hm_configs=pmdk,vp-uffd-sync,vp-uffd-relaxed,pmthreads-style
if [ -x "$build/bench/core/bench_core_cc" ]; then core_trackers=$core_trackers,cc; fi
if [ -x "$build/bench/hashmap/hm_bench_vp_cc" ]; then
	hm_configs=$hm_configs,vp-cc-sync,vp-cc-relaxed,volatile,volatile-cc,volatile-clang
fi
one core $py bench/core/run.py --build "$build" --runs "$runs" --trackers "$core_trackers" \
	--out "$out"
one hashmap $py bench/hashmap/run.py --build-dir "$build" --runs "$runs" \
	--configs "$hm_configs" --workloads insert \
	--threads 1,2 --batches 1,16,256 --interval 1 --out "$out"
mc_cc=()
if [ -x "$build/apps/vmcached/vmcached-cc" ]; then
	mc_cc=("VMCACHED_CC=$build/apps/vmcached/vmcached-cc")
fi
one memcached env VMCACHED="$build/apps/vmcached/vmcached" "${mc_cc[@]}" VMC_BENCH_CC_MODES=0 \
	VMC_BENCH_LOADS="get90-32 get50-1k" \
	VMC_BENCH_MODES="0 1" VMC_BENCH_REPEAT=3 \
	VMC_BENCH_SECONDS="${VP_PUBLISH_MC_SECONDS:-10}" \
	$py bench/memcached/side_by_side.py --build-dir "$build" --out "$out"
one tinydb env PYTHONPATH="$build/bindings/python" \
	$py bench/tinydb/bench_tinydb.py --repeat 3 --out "$out"
# shellcheck disable=SC2046  # vm_args is one or two words, split on purpose
one vm $py bench/vm/run.py --build-dir "$build" --runs "$runs" $(vm_args) --out "$out"
echo "publish.sh: done: ${done_list:-nothing} written into $out in $total s" >&2
