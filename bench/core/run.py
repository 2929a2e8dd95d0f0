#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""run.py -- run bench_core for each tracker, RUNS times (default 5), and
print one table of medians side by side, with the ratios the goals are
stated in (commit throughput as a fraction of the copy ceiling measured in
the same run; stall as a fraction of the commit).

    bench/core/run.py [--runs N] [--build build] [--trackers uffd,mprotect,full]

Pools live on /dev/shm with VOLIPMEM_FORCE_PMEM=1 (the PMEM stand-in).
"""
import argparse, os, statistics, subprocess, sys, platform

ap = argparse.ArgumentParser()
ap.add_argument("--runs", type=int, default=5)
ap.add_argument("--build", default="build")
ap.add_argument("--trackers", default="uffd,mprotect,full")
ap.add_argument("--parts", default="env,empty,fas,same,first,large,collect,pmap")
a = ap.parse_args()
exe = os.path.join(a.build, "bench", "core", "bench_core")
trackers = a.trackers.split(",")
results = {t: {} for t in trackers}
for r in range(a.runs):
    for t in trackers:
        for part in a.parts.split(","):
            # The full tracker copies the whole heap per commit: skip the
            # parts whose heaps are large (it is the oracle, not a contender).
            if t == "full" and part in ("env", "empty", "fas", "same", "collect", "pmap", "large"):
                continue
            env = dict(os.environ, VOLIPMEM_TRACKER=t, VOLIPMEM_FORCE_PMEM="1")
            out = subprocess.run([exe, part], env=env, capture_output=True, text=True, check=True).stdout
            for line in out.splitlines():
                k, v = line.split()
                results[t].setdefault(k, []).append(float(v))
    print(f"run {r + 1}/{a.runs} done", file=sys.stderr)

keys = []
for t in trackers:
    for k in results[t]:
        if k not in keys:
            keys.append(k)
med = {t: {k: statistics.median(v) for k, v in results[t].items()} for t in trackers}
for t in trackers:
    m = med[t]
    if "commit_pages_per_s" in m and "ceiling_pages_per_s" in m:
        m["commit_vs_ceiling"] = m["commit_pages_per_s"] / m["ceiling_pages_per_s"]
    if "commit_pages_per_s" in m and "ceiling2_pages_per_s" in m:
        m["commit_vs_ceiling2"] = m["commit_pages_per_s"] / m["ceiling2_pages_per_s"]
    if "stall_ns" in m and "commit_ns" in m and m["commit_ns"]:
        m["stall_vs_commit"] = m["stall_ns"] / m["commit_ns"]
keys += ["commit_vs_ceiling", "commit_vs_ceiling2", "stall_vs_commit"]
print(f"# bench_core, medians of {a.runs} runs, VOLIPMEM_FORCE_PMEM=1 pools on /dev/shm, "
      f"{platform.node()} {os.cpu_count()} cpus, kernel {platform.release()}")
print("| metric | " + " | ".join(trackers) + " |")
print("|---|" + "---|" * len(trackers))
for k in keys:
    row = []
    for t in trackers:
        v = med[t].get(k)
        row.append("–" if v is None else (f"{v:.2f}" if v < 10 else f"{v:,.0f}"))
    if any(x != "–" for x in row):
        print(f"| {k} | " + " | ".join(row) + " |")
