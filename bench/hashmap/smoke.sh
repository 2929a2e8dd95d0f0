#!/bin/sh
# SPDX-License-Identifier: MIT
# smoke.sh -- correctness smoke test of the hashmap benchmark: a tiny run of
# every configuration and workload (variable-size values, 16 initial buckets
# so the table resizes several times, 1 and 2 threads, batches of 1/16/256).
# Each run reopens its pool and checks every key; a run that does not print
# "verified":1 fails the test. Usage: smoke.sh VP_BINARY PMDK_BINARY
# [VPCC_BINARY] (any may be empty when not built; VPCC is hm_bench_vp
# built with the cc instrumentation). Knob: HM_SMOKE_KEYS (default 3000).
set -u
VP=${1:-}
PMDK=${2:-}
VPCC=${3:-}
KEYS=${HM_SMOKE_KEYS:-3000}
DIR=${HM_SMOKE_DIR:-/dev/shm}
if [ -z "$VP" ] && [ -z "$PMDK" ]; then
	echo "SKIP: neither hm_bench_vp nor hm_bench_pmdk was built"; exit 77
fi
fails=0
runs=0
K=$KEYS
MB=32
run() { # run NAME BINARY ARGS...
	name=$1; bin=$2; shift 2
	pool="$DIR/hm-smoke-$$-$name.pool"
	rm -f "$pool"
	out=$("$bin" --pool "$pool" --keys "$K" --buckets 16 --value-size 0 \
		--pool-mb "$MB" "$@" 2>&1)
	rc=$?
	rm -f "$pool"
	runs=$((runs + 1))
	case "$out" in
	*'"verified":1'*) [ $rc -eq 0 ] && { echo "ok   $name $*"; return; } ;;
	esac
	echo "FAIL $name $* (exit $rc)"; echo "$out" | tail -5
	fails=$((fails + 1))
}

expect_fail() { # expect_fail NAME BINARY ARGS...: the check must catch a lost key
	name=$1; bin=$2; shift 2
	pool="$DIR/hm-smoke-$$-$name.pool"
	rm -f "$pool"
	out=$("$bin" --pool "$pool" --keys 500 --pool-mb 32 --inject-loss "$@" 2>&1)
	rc=$?
	rm -f "$pool"
	runs=$((runs + 1))
	case "$out" in
	*'"verified":1'*) ;;
	*) [ $rc -ne 0 ] && { echo "ok   $name: a lost key is detected"; return; } ;;
	esac
	echo "FAIL $name: a key deleted behind the oracle's back went unnoticed"
	fails=$((fails + 1))
}
mix_cfg() { n=$1; b=$2; shift 2
	run "$n-insert" "$b" --workload insert --threads 1 --batch 1 "$@"
	run "$n-mixed" "$b" --workload mixed --threads 2 --batch 16 "$@"
	run "$n-read95" "$b" --workload read95 --threads 1 --batch 256 "$@"
	run "$n-delete" "$b" --workload delete --threads 2 --batch 1 "$@"
}
if [ -n "$VP" ]; then
	mix_cfg volatile "$VP" --config volatile
	expect_fail volatile-lost "$VP" --config volatile
	export VOLIPMEM_FORCE_PMEM=1
	for t in uffd mprotect; do
		mix_cfg "vp-$t-sync" "$VP" --config vp --tracker $t --interval-ms 0
	done
	# the full tracker logs the whole heap at every commit: fewer keys,
	# smallest heap
	K=$((KEYS / 10)) MB=16
	mix_cfg vp-full-sync "$VP" --config vp --tracker full --interval-ms 0
	K=$KEYS MB=32
	for t in uffd mprotect; do
		mix_cfg "vp-$t-relaxed" "$VP" --config vp --tracker $t --interval-ms 1
	done
	expect_fail vp-lost "$VP" --config vp --interval-ms 0
	unset VOLIPMEM_FORCE_PMEM
else
	echo "note: hm_bench_vp not built (no libvolipmem); only PMDK checked"
fi
if [ -n "$VPCC" ]; then
	export VOLIPMEM_FORCE_PMEM=1
	mix_cfg vp-cc-sync "$VPCC" --config vp --tracker cc --interval-ms 0
	mix_cfg vp-cc-relaxed "$VPCC" --config vp --tracker cc --interval-ms 1
	mix_cfg volatile-cc "$VPCC" --config volatile
	unset VOLIPMEM_FORCE_PMEM
fi
if [ -n "$PMDK" ]; then
	PMEM_IS_PMEM_FORCE=1 export PMEM_IS_PMEM_FORCE
	mix_cfg pmdk "$PMDK" --config pmdk
	expect_fail pmdk-lost "$PMDK" --config pmdk
else
	echo "note: hm_bench_pmdk not built (no libpmemobj)"
fi
echo "$runs runs, $fails failed"
[ $fails -eq 0 ]
