#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""run.py -- run bench_core for each tracker, RUNS times (default 5,
trackers alternating within each run), and print one table of medians side
by side, with the ratios the goals are stated in (commit throughput as a
fraction of the copy ceiling measured in the same run; stall as a fraction
of the commit; the 8-byte FAS rows against PMDK's 8-byte transaction, the
`pmdk` part, which runs just before each tracker's parts in every run, so
that ours and the peer alternate).

    bench/core/run.py [--runs N] [--build build] [--trackers uffd,mprotect,cc,full]
                      [--parts env,empty,...] [--out docs [--tag core]] [--force]

With --out DIR it also writes DIR/data/TAG.md (the table, under a header
naming this command, the load and the machine's raw costs) and
DIR/img/TAG.png; into docs/ only from an idle machine (bench/benchenv.py).
Pools live on /dev/shm with VOLIPMEM_FORCE_PMEM=1 (the PMEM stand-in).
"""
import argparse
import os
import statistics
import subprocess
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
import benchenv  # noqa: E402

# Plotted metrics (one panel each: the per-operation costs, in ns).
PLOT = [("per FAS, ns", [("pmdk_tx8_ns", 1), ("empty_fas_ns", 1), ("same_page_fas_us", 1e3),
                         ("fas_1p_us", 1e3), ("first_write_ns", 1)]),
        ("the machine's raw costs, ns", [("env_first_touch_ns", 1), ("env_uffd_first_write_ns", 1),
                                         ("env_mprotect_pair_ns", 1), ("env_uffd_rearm_ns", 1)])]


def measure(a, exe, trackers):
    """exe is bench_core; the cc tracker's parts run in bench_core_cc (the same
    program built with the cc instrumentation), PMDK's part in bench_core."""
    results = {t: {} for t in trackers}
    exe_cc = os.path.join(os.path.dirname(exe), "bench_core_cc")
    parts = a.parts.split(",")
    for r in range(a.runs):
        for t in trackers:
            # The peer first, beside this tracker's parts in the same run
            # (its rows go in this tracker's column, for the ratios).
            if "pmdk" in parts and t != "full":
                env = dict(os.environ, PMEM_IS_PMEM_FORCE="1")
                parse(subprocess.run([exe, "pmdk"], env=env, capture_output=True, text=True,
                                     check=True).stdout, results[t])
            for part in parts:
                if part == "pmdk":
                    continue
                # The full tracker copies the whole heap per commit: skip the
                # parts whose heaps are large (it is the oracle, not a contender).
                if t == "full" and part in ("env", "empty", "fas", "same", "collect", "pmap",
                                            "large"):
                    continue
                env = dict(os.environ, VOLIPMEM_TRACKER=t, VOLIPMEM_FORCE_PMEM="1")
                out = subprocess.run([exe_cc if t == "cc" else exe, part], env=env, capture_output=True, text=True,
                                     check=True).stdout
                parse(out, results[t])
        print(f"run {r + 1}/{a.runs} done", file=sys.stderr)
    return results


def parse(out, into):
    """parse -- add bench_core's "metric value" lines to into's lists."""
    for line in out.splitlines():
        k, v = line.split()
        into.setdefault(k, []).append(float(v))



def table(results, trackers):
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
        pmdk = m.get("pmdk_tx8_ns")
        if pmdk:
            if "same_page_fas_us" in m:
                m["same_page_vs_pmdk"] = m["same_page_fas_us"] * 1e3 / pmdk
            if "fas_1p_us" in m:
                m["fresh_page_vs_pmdk"] = m["fas_1p_us"] * 1e3 / pmdk
            if "fas_1p_us" in m and m.get("pmdk_tx8_fresh_ns"):
                m["fresh_page_vs_pmdk_fresh"] = m["fas_1p_us"] * 1e3 / m["pmdk_tx8_fresh_ns"]
            if "fas_1p_us" in m and "env_uffd_first_write_ns" in m and t != "cc":
                m["fresh_page_less_fault_vs_pmdk"] = \
                    (m["fas_1p_us"] * 1e3 - m["env_uffd_first_write_ns"]) / pmdk
            if "empty_fas_ns" in m:
                m["empty_vs_pmdk"] = m["empty_fas_ns"] / pmdk
    keys += ["commit_vs_ceiling", "commit_vs_ceiling2", "stall_vs_commit", "same_page_vs_pmdk",
             "fresh_page_vs_pmdk", "fresh_page_vs_pmdk_fresh", "fresh_page_less_fault_vs_pmdk", "empty_vs_pmdk"]
    lines = ["| metric | " + " | ".join(trackers) + " |", "|---|" + "---|" * len(trackers)]
    for k in keys:
        row = []
        for t in trackers:
            v = med[t].get(k)
            row.append("–" if v is None else (f"{v:.2f}" if v < 10 else f"{v:,.0f}"))
        if any(x != "–" for x in row):
            lines.append(f"| {k} | " + " | ".join(row) + " |")
    return med, "\n".join(lines) + "\n"


def panels(med, trackers):
    out = []
    for title, metrics in PLOT:
        rows = [(k, [med[t][k] * scale if k in med[t] else None for t in trackers])
                for k, scale in metrics if any(k in med[t] for t in trackers)]
        if rows:
            out.append((title, trackers, rows))
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--build", default="build")
    ap.add_argument("--trackers", default="uffd,mprotect,full")
    ap.add_argument("--parts", default="env,pmdk,empty,fas,same,first,large,collect,pmap")
    ap.add_argument("--tag", default="core", help="base name of the output files")
    benchenv.add_args(ap)
    a = ap.parse_args()
    exe = os.path.join(a.build, "bench", "core", "bench_core")
    if not os.access(exe, os.X_OK):
        sys.exit("%s not built; build with cmake first" % exe)
    trackers = a.trackers.split(",")
    if "cc" in trackers and not os.access(os.path.join(os.path.dirname(exe), "bench_core_cc"),
                                          os.X_OK):
        sys.exit("tracker cc: bench_core_cc not built (it needs clang and llvm-14-dev)")
    # The peer (PMDK) is measured only with the pmdk part.
    s = benchenv.Session("bench/core", a.out, a.force, a.build, runs=a.runs,
                         peer="pmdk" in a.parts.split(","))
    s.start()
    results = measure(a, exe, trackers)
    ok = s.finish()
    med, md = table(results, trackers)
    print(f"# bench_core, medians of {a.runs} runs, VOLIPMEM_FORCE_PMEM=1 pools on /dev/shm")
    print(md, end="")
    if a.out and ok:
        s.write(os.path.join("data", a.tag + ".md"), md)
        s.plot(os.path.join("img", a.tag + ".png"),
               "bench_core: medians of %d runs, VOLIPMEM_FORCE_PMEM=1 on /dev/shm" % a.runs,
               panels(med, trackers), "ns (log)", layout=(1, 2), size="1400,600")
    return 0 if ok else 3


if __name__ == "__main__":
    sys.exit(main())
