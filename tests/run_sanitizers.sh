#!/bin/sh
# SPDX-License-Identifier: MIT
# run_sanitizers.sh -- the sanitizer part of CI, each in its own build dir:
#   asan      ASan + UBSan build, ctest on the labels in VP_SAN_ASAN_LABELS
#   pyasan    the Python suite against the asan build's extension and
#             library, the ASan runtime preloaded into Debian's unsanitized
#             python3 (see pyasan below)
#   tsan      TSan build (clang), ctest on VP_SAN_TSAN_LABELS: the
#             concurrent commit path must be race-free
#   valgrind  memcheck on single-threaded programs (a simulator workload,
#             growth, repair) with the full tracker (see valgrind_part for
#             why not uffd/mprotect)
# Each part has a time budget (seconds) it is killed at, printed with the
# time it used. Total stays under ~20 minutes on 2 cores (the budgets add
# up to 1350 s; no part uses all of its own).
#
#   VP_SAN_PARTS="asan pyasan tsan valgrind"   which parts to run
#   VP_SAN_DIR=build-san                where the build dirs go
#   VP_SAN_JOBS=2                       build and test parallelism
# Exit 0 if every part passed, else 1.
set -u
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/.." && pwd)
dir=${VP_SAN_DIR:-$root/build-san}
jobs=${VP_SAN_JOBS:-2}
parts=${VP_SAN_PARTS:-asan pyasan tsan valgrind}
asan_labels=${VP_SAN_ASAN_LABELS:-unit|sim|fuzz}
tsan_labels=${VP_SAN_TSAN_LABELS:-unit|sim}
# Tests to leave out of the TSan part (a ctest -E regex; none by default).
tsan_exclude=${VP_SAN_TSAN_EXCLUDE:-}
mkdir -p "$dir"
status=0
summary=""
budgets=0

# part NAME BUDGET CMD... -- run CMD under a time budget and record it.
part() {
	name=$1
	budget=$2
	shift 2
	budgets=$((budgets + budget))
	echo "=== sanitizers: $name (budget ${budget} s)"
	t0=$(date +%s)
	timeout --foreground -k 10 "$budget" "$@"
	rc=$?
	used=$(($(date +%s) - t0))
	if [ $rc -eq 0 ]; then res=PASS; elif [ $rc -eq 124 ]; then res="FAIL (over budget)"; else res="FAIL ($rc)"; fi
	[ $rc -eq 0 ] || status=1
	summary="$summary
  $name: budget ${budget} s, used ${used} s: $res"
	echo "=== sanitizers: $name: used ${used} s of ${budget} s: $res"
}

# build DIR LABELS CMAKE-ARGS... -- configure, then build only the test
# programs and what they use: the bindings and apps are not needed here and
# cost minutes. (LABELS is kept for a finer choice later.)
build() {
	b=$1
	labels=$2
	shift 2
	cmake -S "$root" -B "$b" -DCMAKE_BUILD_TYPE=RelWithDebInfo "$@" >"$b.configure.log" 2>&1 ||
		{ tail -30 "$b.configure.log"; return 1; }
	# Every target defined under tests/ (Makefile generator: `make help`
	# of that directory), plus the libraries and the CLI.
	targets="volipmem volipmem_static volipmem_cli ${extra_targets:-} $(find "$b/tests" -name Makefile | while read -r mk; do
		make -s -C "$(dirname "$mk")" help 2>/dev/null; done | sed -n 's/^\.\.\. //p' | sed 's/ .*//' | grep -v '[./]' |
		grep -v -x -E 'all|clean|depend|edit_cache|rebuild_cache|test|install|list_install_components' | sort -u | tr '\n' ' ')"
	echo "building: $targets"
	# shellcheck disable=SC2086
	cmake --build "$b" -j "$jobs" --target $targets >"$b.build.log" 2>&1 ||
		{ grep -E "error|Error" "$b.build.log" | head -30; return 1; }
}

asan() {
	build "$dir/asan" "$asan_labels" -DVP_SANITIZE=address,undefined &&
	cd "$dir/asan" &&
	VP_SIM_NESTED=32 ASAN_OPTIONS=detect_leaks=1:abort_on_error=0 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
		ctest -j "$jobs" -L "$asan_labels" -LE noasan --output-on-failure --timeout 600
}

# pyasan: the Python suites (not pip_install, which rebuilds the package,
# nor the benchmarks) against the asan build. The interpreter is not built
# with ASan, so the runtime must be loaded first: bindings/python's CMake
# sets LD_PRELOAD=$(cc -print-file-name=libasan.so) for these tests under
# VP_SANITIZE (without it ASan stops at import: "ASan runtime does not
# come first in initial library list") and ASAN_OPTIONS=detect_leaks=0
# (with leak detection CPython's own allocations, never freed at exit, end
# every run in a leak report: 72 KiB in 72 blocks for a bare import). The
# extension and libvolipmem.so are instrumented (ASan and UBSan); Python's
# own objects are not checked. About 30 s of tests.
pyasan() {
	extra_targets=volipmem_python build "$dir/asan" python -DVP_SANITIZE=address,undefined &&
	cd "$dir/asan" &&
	UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
		ctest -j "$jobs" -R '^python_(containers|persistence|threads|leak|packed|tinydb)$' \
		--output-on-failure --timeout 300
}

tsan() {
	cc=gcc
	command -v clang >/dev/null 2>&1 && cc=clang
	build "$dir/tsan" "$tsan_labels" -DVP_SANITIZE=thread -DCMAKE_C_COMPILER=$cc \
		-DCMAKE_CXX_COMPILER=$([ $cc = clang ] && echo clang++ || echo g++) &&
	cd "$dir/tsan" &&
	# The simulator's threaded workloads are what TSan is for here.
	VP_SIM_ONLY=mt,mt-relaxed,alloc VP_SIM_NESTED=32 TSAN_OPTIONS=halt_on_error=1:second_deadlock_stack=1 \
		ctest -j "$jobs" -L "$tsan_labels" -LE notsan ${tsan_exclude:+-E "$tsan_exclude"} --output-on-failure --timeout 600
}

# valgrind: memcheck, single-threaded programs, tracker "full". Valgrind
# 3.19 cannot run the other trackers: it does not know the userfaultfd
# ioctls (uffd), and a store that faults on a PROT_READ page and is
# restarted after the tracker's SIGSEGV handler (mprotect) comes back as a
# wild write inside Valgrind's own memset; it also refuses
# MAP_FIXED_NOREPLACE with EINVAL, so the unit tests that probe the heap
# address fail under it. VP_SAN_VALGRIND_UNIT=1 adds the unit tests anyway.
valgrind_part() {
	command -v valgrind >/dev/null 2>&1 || { echo "valgrind not installed: SKIP"; return 0; }
	build "$dir/valgrind" "unit|sim" || return 1
	cd "$dir/valgrind" || return 1
	ctest -N --show-only=json-v1 >tests.json || return 1
	/usr/bin/python3 - "$dir/valgrind" "${VP_SAN_VALGRIND_UNIT:-0}" <<'PY'
import json, os, subprocess, sys
b, unit = sys.argv[1], sys.argv[2] == "1"
vg = ["valgrind", "--quiet", "--error-exitcode=99", "--leak-check=no", "--track-origins=no"]
base = dict(os.environ, VOLIPMEM_TRACKER="full")
runs = [
    ("sim-single.full", [b + "/tests/sim/vp_sim"], dict(base, VP_SIM_ONLY="single", VP_SIM_NESTED="64")),
    ("pool-grow.full", [b + "/tests/sim/vp_test_grow"], base),
    ("check-repair.full", [b + "/tests/sim/vp_test_repair", b + "/tools/volipmem"], base),
]
if unit:
    for t in json.load(open("tests.json"))["tests"]:
        props = {p["name"]: p["value"] for p in t.get("properties", [])}
        labels = props.get("LABELS", [])
        if "unit" in labels and "full" in labels and t.get("command"):
            env = dict(os.environ)
            for kv in props.get("ENVIRONMENT", []):
                k, v = kv.split("=", 1)
                env[k] = v
            runs.append((t["name"], t["command"], env))
bad = 0
for name, cmd, env in runs:
    r = subprocess.run(vg + cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    ok = r.returncode in (0, 77)
    print("valgrind %-28s %s" % (name, "ok" if r.returncode == 0 else "skipped (77)" if r.returncode == 77 else "FAILED (%d)" % r.returncode), flush=True)
    if not ok:
        bad += 1
        print(r.stdout[-4000:])
sys.exit(1 if bad else 0)
PY
}

# Inner call: run one part (the outer call wraps it in `timeout`).
if [ "${1:-}" = "--part" ]; then
	case $2 in
	asan) asan ;;
	pyasan) pyasan ;;
	tsan) tsan ;;
	valgrind) valgrind_part ;;
	*) echo "unknown part $2"; exit 2 ;;
	esac
	exit $?
fi

t_all=$(date +%s)
for p in $parts; do
	case $p in
	asan) part asan "${VP_SAN_ASAN_BUDGET:-600}" "$0" --part asan ;;
	pyasan) part pyasan "${VP_SAN_PYASAN_BUDGET:-150}" "$0" --part pyasan ;;
	tsan) part tsan "${VP_SAN_TSAN_BUDGET:-420}" "$0" --part tsan ;;
	valgrind) part valgrind "${VP_SAN_VALGRIND_BUDGET:-180}" "$0" --part valgrind ;;
	*) echo "unknown part $p"; status=1 ;;
	esac
done
echo "=== sanitizers: summary (total $(($(date +%s) - t_all)) s, budgets ${budgets} s):$summary"
exit $status
