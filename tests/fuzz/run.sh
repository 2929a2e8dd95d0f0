#!/bin/sh
# SPDX-License-Identifier: MIT
# run.sh -- build the pool fuzzer with clang (libFuzzer + ASan + UBSan) in
# its own build directory, generate the seed corpus (real pools: clean, log
# committed, commit record torn, superblock damaged), and fuzz pool open +
# recovery + check for a bounded time.
#
#   VP_FUZZ_SECONDS=N   fuzzing time (default 120)
#   VP_FUZZ_BUILD=DIR   build directory (default build-fuzz in the source tree)
#   VP_FUZZ_JOBS=N      parallel fuzzing processes (default 1)
#
# Exit 0: no crash, hang or leak found; 1: the fuzzer found one (the input
# is left in the build directory as crash-*/timeout-*/leak-*); 77: no clang.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
build=${VP_FUZZ_BUILD:-$root/build-fuzz}
secs=${VP_FUZZ_SECONDS:-120}
jobs=${VP_FUZZ_JOBS:-1}
cc=${VP_FUZZ_CC:-clang}

if ! command -v "$cc" >/dev/null 2>&1; then
	echo "fuzz: SKIP: $cc not found (apt-get install clang)"
	exit 77
fi
mkdir -p "$build/corpus" "$build/seeds"

# The library's sources, as src/CMakeLists.txt lists them.
srcs=$(sed -n '/^set(VP_SOURCES/,/^)/p' "$root/src/CMakeLists.txt" | sed '1d;$d' | tr ' ' '\n' |
	sed '/^$/d' | sed "s|^|$root/src/|")
# The project's warnings (VP_WARNINGS in CMakeLists.txt), as errors as in
# every build with the default VP_WERROR=ON.
warn=$(sed -n 's/^set(VP_WARNINGS \(.*\))$/\1/p' "$root/CMakeLists.txt")
if [ -z "$warn" ]; then
	echo "fuzz: no set(VP_WARNINGS ...) line in $root/CMakeLists.txt" >&2
	exit 1
fi
flags="$warn -Werror -g -O1 -std=gnu11 -D_GNU_SOURCE -DVP_BUILDING_LIBRARY -I$root/include -I$root/src -fno-omit-frame-pointer"
libs="-lxxhash -lpthread -ldl"

t0=$(date +%s)
echo "fuzz: building with $cc in $build"
# shellcheck disable=SC2086
$cc $flags -fsanitize=address,undefined -fno-sanitize-recover=all $srcs "$here/mkseeds.c" $libs -o "$build/mkseeds"
# shellcheck disable=SC2086
$cc $flags -DVP_LIBFUZZER -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all \
	$srcs "$here/fuzz_pool.c" $libs -o "$build/fuzz_pool"
t1=$(date +%s)
echo "fuzz: built in $((t1 - t0)) s"

"$build/mkseeds" "$build/seeds"

log="$build/fuzz.log"
echo "fuzz: fuzzing for $secs s (VP_FUZZ_SECONDS), $jobs job(s); log in $log"
set +e
cd "$build"
if [ "$jobs" -gt 1 ]; then
	./fuzz_pool -max_total_time="$secs" -max_len=65536 -timeout=10 -rss_limit_mb=2048 \
		-print_final_stats=1 -jobs="$jobs" -workers="$jobs" corpus seeds >"$log" 2>&1
	rc=$?
	cat fuzz-*.log >>"$log" 2>/dev/null
else
	./fuzz_pool -max_total_time="$secs" -max_len=65536 -timeout=10 -rss_limit_mb=2048 \
		-print_final_stats=1 corpus seeds >"$log" 2>&1
	rc=$?
fi
set -e
execs=$(grep 'stat::number_of_executed_units' "$log" | awk '{s += $2} END {print s + 0}')
rate=$(grep 'stat::average_exec_per_sec' "$log" | awk '{s += $2} END {print s + 0}')
cov=$(grep -E '^#[0-9]+.*cov:' "$log" | tail -1 | sed 's/.*\(cov: [0-9]*\).*/\1/')
echo "fuzz: $execs executions, $rate executions/s, $cov, corpus $(ls corpus | wc -l) inputs"
if [ $rc -ne 0 ]; then
	echo "fuzz: FAILED (libFuzzer exit $rc); the end of the log:"
	tail -40 "$log"
	ls crash-* timeout-* leak-* oom-* 2>/dev/null
	exit 1
fi
echo "fuzz: OK"
