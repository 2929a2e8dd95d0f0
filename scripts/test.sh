#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# test.sh -- build and run the whole test suite: the normal build under
# CTest (every tracker, the kill -9 torture, bindings, apps), then the
# sanitizer and Valgrind builds and the bounded fuzz run.
#
# Knobs (docs/crash-testing.md): VP_TORTURE_KILLS at the first configure
# (kills per torture run; default 150, 100 for large FASes), VP_SIM_SCALE,
# VP_SKIP_SANITIZERS=1, VP_FUZZ_SECONDS.
set -euo pipefail
cd "$(dirname "$0")/.."
start=$(date +%s)
phase() { echo; echo "=== $1 ($(( $(date +%s) - start ))s elapsed)"; }

phase "build (RelWithDebInfo, -Wall -Wextra -Werror)"
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build -j2

phase "test suite (ctest)"
(cd build && ctest --output-on-failure -j2 --timeout 1200)

# Unit tests and tortures run once per tracker (their ctest names end in the
# tracker); the rest use the automatic choice (uffd here), so run them again
# on the fallback tracker.
phase "bindings, apps and benchmark smoke tests again with VOLIPMEM_TRACKER=mprotect"
(cd build && VOLIPMEM_TRACKER=mprotect ctest --output-on-failure -j2 --timeout 1200 -L 'bindings|python|vmcached|bench-smoke')

if [ "${VP_SKIP_SANITIZERS:-0}" != 1 ] && [ -x tests/run_sanitizers.sh ]; then
  phase "sanitizers and valgrind"
  tests/run_sanitizers.sh
fi
if [ -x tests/fuzz/run.sh ]; then
  phase "fuzzing (bounded)"
  tests/fuzz/run.sh
fi
phase "all tests passed"
