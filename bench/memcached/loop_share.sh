#!/bin/bash
# SPDX-License-Identifier: MIT
# loop_share.sh -- how much of vmcached's CPU the event loop itself costs.
#
# Runs vmcached under memcaslap (90/10 get/set, 32-byte values, -T 2 -c 64)
# with perf sampling the server, once per commit mode and repeat, and
# prints the share of the server's samples spent in net.c's own code (self
# time of its functions) and inside the epoll_wait/epoll_ctl system calls
# (inclusive). An event library such as libevent drives the same epoll
# calls, so what it could save is bounded by the first figure.
# Needs perf (as root or with perf_event_paranoid <= 1) and memcaslap.
#
#   VMCACHED=build/apps/vmcached/vmcached bench/memcached/loop_share.sh
# Knobs: LOOP_MODES ("0 1"), LOOP_REPEAT (3), LOOP_SECONDS (10).
set -euo pipefail
B=${VMCACHED:?set VMCACHED to the vmcached binary}
MODES=${LOOP_MODES:-0 1}
REPEAT=${LOOP_REPEAT:-3}
SECS=${LOOP_SECONDS:-10}
d=$(mktemp -d /dev/shm/vmc-loop-XXXXXX)
vp=
trap '[ -n "$vp" ] && kill -9 "$vp" 2>/dev/null; rm -rf "$d"' EXIT
printf 'key\n64 64 1\nvalue\n32 32 1\ncmd\n0 0.1\n1 0.9\n' > "$d/cfg"
port=$(/usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
NET='held_del|held_add|syncer_main|hold_for_sync|conn_close|conn_accept|conn_flush|conn_read|set_interest|conn_work|conn_finish|group_end|worker_main|net_run'
for r in $(seq "$REPEAT"); do
  for m in $MODES; do # alternate the modes, run after run
    rm -f "$d/p.pool"
    "$B" -l 127.0.0.1 -p "$port" -t 2 -m 256 --pool "$d/p.pool" \
      --commit-interval "$m" 2>/dev/null & vp=$!
    sleep 2
    perf record -F 999 -g -o "$d/perf.data" -p "$vp" -- sleep "$SECS" >/dev/null 2>&1 & pp=$!
    memcaslap -s "127.0.0.1:$port" -T 2 -c 64 -t "${SECS}s" -S "${SECS}s" \
      -F "$d/cfg" -w 2k >/dev/null
    wait "$pp"; kill "$vp"; wait "$vp" || true; vp=
    self=$(perf report -i "$d/perf.data" --no-children --sort sym --stdio -g none 2>/dev/null |
           grep -E "\[\.\] ($NET)" | awk '{s+=$1} END {printf "%.2f", s}')
    ep=$(perf report -i "$d/perf.data" --children --sort sym --stdio -g none 2>/dev/null |
         grep -E "\[k\] __x64_sys_epoll_(wait|ctl)$" | awk '{s+=$1} END {printf "%.2f", s}')
    echo "commit-interval=$m run=$r net.c self=$self% epoll syscalls=$ep% load=$(cut -d' ' -f1 /proc/loadavg)"
  done
done
