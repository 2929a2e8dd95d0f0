#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# test.sh -- build and run the whole test suite: the normal build under
# CTest (every tracker, the kill -9 torture, bindings, apps), a compile of
# the other build types, then the sanitizer and Valgrind builds and the
# bounded fuzz run.
#
# Every phase runs even when an earlier one failed (a phase that needs the
# main build is skipped when that build failed), and the run ends with a
# summary of every phase -- passed, failed (exit code) or skipped (why) --
# and a count line; the exit status is 1 when any phase failed.
#
# Knobs (docs/crash-testing.md): VP_TORTURE_KILLS at the first configure
# (kills per torture run; default 150, 100 for large FASes), VP_SIM_SCALE,
# VP_SKIP_SANITIZERS=1, VP_FUZZ_SECONDS; VP_PHASES="build ctest ..." runs
# only the phases named (ids: build ctest mprotect release debug
# clang-release sanitizers fuzz), the others are reported as skipped.
set -uo pipefail
cd "$(dirname "$0")/.."
start=$(date +%s)
summary=""
npass=0 nfail=0 nskip=0
failed_ids=" "

# record RESULT NAME SECONDS [DETAIL] -- one summary line.
record() {
  summary+=$(printf '\n  %-4s %-66s %5s s%s' "$1" "$2" "$3" "${4:+  ($4)}")
}

# skip ID NAME WHY -- report a phase that does not run.
skip() {
  echo; echo "=== $2: skipped ($3)"
  record SKIP "$2" - "$3"
  nskip=$((nskip + 1))
}

# phase ID NAME [--needs ID] CMD... -- run CMD (a function or program) in a
# subshell under set -e, time it, record the result. A phase not in
# VP_PHASES, or whose --needs phase failed, is skipped.
phase() {
  local id=$1 name=$2
  shift 2
  if [ -n "${VP_PHASES:-}" ] && [[ " $VP_PHASES " != *" $id "* ]]; then
    skip "$id" "$name" "not in VP_PHASES"; return
  fi
  if [ "$1" = --needs ]; then
    if [[ $failed_ids == *" $2 "* ]]; then
      skip "$id" "$name" "the $2 phase failed"; return
    fi
    shift 2
  fi
  echo; echo "=== $name ($(( $(date +%s) - start ))s elapsed)"
  local t0 rc
  t0=$(date +%s)
  ( set -e; "$@" )
  rc=$?
  local used=$(( $(date +%s) - t0 ))
  if [ $rc -eq 0 ]; then
    record PASS "$name" $used; npass=$((npass + 1))
  elif [ $rc -eq 77 ]; then
    record SKIP "$name" $used "it exited 77: see its output"; nskip=$((nskip + 1))
  else
    record FAIL "$name" $used "exit $rc"; nfail=$((nfail + 1)); failed_ids+="$id "
  fi
  echo "=== $name: $([ $rc -eq 0 ] && echo passed || echo "exit $rc") in ${used}s"
}

main_build() {
  cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
  cmake --build build -j2
}

# build_type DIR TYPE CC CXX -- configure and compile every target of one
# build type with one compiler (-Werror is on by default), quietly unless it
# fails; a Release build must really be -O3 on every compile line.
build_type() {
  local dir=$1 type=$2
  cmake -S . -B "$dir" -DCMAKE_BUILD_TYPE="$type" -DCMAKE_C_COMPILER="$3" -DCMAKE_CXX_COMPILER="$4" \
    -DCMAKE_EXPORT_COMPILE_COMMANDS=ON >"$dir.log" 2>&1 || { tail -30 "$dir.log"; return 1; }
  cmake --build "$dir" -j2 >>"$dir.log" 2>&1 || { grep -E -A4 '(error|warning):' "$dir.log" | head -40; return 1; }
  if [ "$type" = Release ]; then
    local slow
    slow=$(grep '"command"' "$dir/compile_commands.json" | grep -v -c -- ' -O3 ' || true)
    [ "$slow" -eq 0 ] || { echo "$slow compile lines in $dir lack -O3"; return 1; }
  fi
  echo "$type with $3: every target built ($dir.log)"
}

phase build "build (RelWithDebInfo, -Wall -Wextra -Werror)" main_build

phase ctest "test suite (ctest)" --needs build \
  bash -c 'cd build && ctest --output-on-failure -j2 --timeout 1200'

# Unit tests and tortures run once per tracker (their ctest names end in the
# tracker); the rest use the automatic choice (uffd here), so run them again
# on the fallback tracker.
phase mprotect "bindings, apps, bench smoke tests with VOLIPMEM_TRACKER=mprotect" --needs build \
  bash -c "cd build && VOLIPMEM_TRACKER=mprotect ctest --output-on-failure -j2 --timeout 1200 -L 'bindings|python|vmcached|bench-smoke'"

# The other build types are compiled (not tested) so that a warning only
# one optimisation level or compiler raises cannot come back.
mkdir -p build-types
phase release "compile Release (gcc, -O3)" build_type build-types/gcc-Release Release gcc g++
phase debug "compile Debug (gcc)" build_type build-types/gcc-Debug Debug gcc g++
if command -v clang >/dev/null 2>&1 && command -v clang++ >/dev/null 2>&1; then
  phase clang-release "compile Release (clang, -O3)" build_type build-types/clang-Release Release clang clang++
else
  skip clang-release "compile Release (clang, -O3)" "clang not installed"
fi

if [ "${VP_SKIP_SANITIZERS:-0}" = 1 ]; then
  skip sanitizers "sanitizers and valgrind" "VP_SKIP_SANITIZERS=1"
elif [ ! -x tests/run_sanitizers.sh ]; then
  skip sanitizers "sanitizers and valgrind" "tests/run_sanitizers.sh missing"
else
  phase sanitizers "sanitizers and valgrind" tests/run_sanitizers.sh
fi
if [ -x tests/fuzz/run.sh ]; then
  phase fuzz "fuzzing (bounded)" tests/fuzz/run.sh
else
  skip fuzz "fuzzing (bounded)" "tests/fuzz/run.sh missing"
fi

echo
echo "=== summary ($(( $(date +%s) - start ))s in all)$summary"
echo "phases: $npass passed, $nfail failed, $nskip skipped"
[ $nfail -eq 0 ]
