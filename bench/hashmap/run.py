#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""run.py -- the hashmap benchmark, every configuration side by side.

Runs hm_bench_vp (volatile, VolipMem) and hm_bench_pmdk (PMDK libpmemobj)
over workloads x threads x batch sizes, interleaving configurations so that
noise on this shared machine spreads over all of them, takes the median of
--runs runs per cell, prints ratios to PMDK and to volatile, checks the
project's goals, and writes under --out:

  data/TAG.jsonl            every run's JSON line (TAG = --tag, default hashmap)
  data/TAG-medians.tsv      medians per cell
  data/TAG-summary.txt      the printed report (ratios, goals, commit anatomy)
  img/TAG.png               throughput per configuration and workload

Preloaded pools are built once per system and copied for every run (a copy
of a pool is the same pool: same heap address, same UUID), so each run
starts from the same state without paying the preload. Every run reopens
its pool at the end and checks all keys; a run that does not verify makes
this script exit non-zero.

Usage: /usr/bin/python3 bench/hashmap/run.py --build-dir BUILD [--keys N]
       [--runs 5] [--max-seconds 1] [--configs a,b] [--workloads a,b]
       [--threads 1,2] [--batches 1,16,256] [--value-size 32] [--out docs]
"""
import argparse
import io
import json
import math
import os
import statistics
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
import benchenv  # noqa: E402


def vp(binary, tracker, iv, label):
    """vp -- a VolipMem configuration: the tracker and commit interval, given
    both as hm_bench options and as the library's environment."""
    return (binary, ["--config", "vp", "--tracker", tracker, "--interval-ms", iv],
            {"VOLIPMEM_TRACKER": tracker, "VOLIPMEM_COMMIT_INTERVAL_MS": iv}, label)


CONFIGS = {
    # name: (binary, args, environment, label)
    "volatile": ("vp", ["--config", "volatile"], {}, "malloc, no persistence"),
    "pmdk": ("pmdk", ["--config", "pmdk"], {"PMEM_IS_PMEM_FORCE": "1"},
             "PMDK 1.12 libpmemobj, hand-written TX_ADD, B ops per tx"),
    "vp-uffd-sync": vp("vp", "uffd", "0", "VolipMem, uffd tracker, synchronous pend()"),
    "vp-mprotect-sync": vp("vp", "mprotect", "0", "VolipMem, mprotect tracker, synchronous pend()"),
    "vp-uffd-relaxed": vp("vp", "uffd", "{iv}", "VolipMem, uffd tracker, relaxed commits every {iv} ms"),
    "pmthreads-style": vp("vp", "mprotect", "{iv}",
                          "mprotect tracker + relaxed commits every {iv} ms (PMThreads-style)"),
    "vp-cc-sync": vp("vpcc", "cc", "0", "VolipMem, cc tracker (built with volipmem-cc), synchronous pend()"),
    "vp-cc-relaxed": vp("vpcc", "cc", "{iv}",
                        "VolipMem, cc tracker (built with volipmem-cc), relaxed commits every {iv} ms"),
    "volatile-cc": ("vpcc", ["--config", "volatile"], {},
                    "malloc, no persistence, built with volipmem-cc (instrumentation overhead)"),
    "volatile-clang": ("vpclang", ["--config", "volatile"], {},
                       "malloc, no persistence, clang without instrumentation (the compiler's share)"),
    "vp-full-sync": vp("vp", "full", "0", "VolipMem, full tracker (oracle: every page written), synchronous"),
}
DEFAULT_CONFIGS = ["volatile", "pmdk", "vp-uffd-sync", "vp-mprotect-sync",
                   "vp-uffd-relaxed", "pmthreads-style"]
WORKLOADS = ["insert", "mixed", "read95", "delete"]
WL_LABEL = {"insert": "insert-only", "mixed": "50/50 insert/lookup",
            "read95": "95/5 lookup/insert", "delete": "delete-heavy (50% del, 25% ins, 25% get)"}


def preload_of(wl, keys):
    return 0 if wl == "insert" else keys // 2 if wl == "mixed" else keys


def sub(s, iv):
    return s.replace("{iv}", str(iv))


class Runner:
    def __init__(self, a):
        self.a = a
        self.bins = {"vp": os.path.join(a.build_dir, "bench/hashmap/hm_bench_vp"),
                     "pmdk": os.path.join(a.build_dir, "bench/hashmap/hm_bench_pmdk"),
                     "vpcc": os.path.join(a.build_dir, "bench/hashmap/hm_bench_vp_cc"),
                     "vpclang": os.path.join(a.build_dir, "bench/hashmap/hm_bench_vp_clang")}
        self.tag = "hm-%d" % os.getpid()
        self.bases = {}
        self.results = []
        self.failures = []

    def env(self, cfg):
        e = dict(os.environ)
        e.pop("VOLIPMEM_TRACKER", None)
        e.pop("VOLIPMEM_COMMIT_INTERVAL_MS", None)
        e["VOLIPMEM_FORCE_PMEM"] = "1"
        for k, v in CONFIGS[cfg][2].items():
            e[k] = sub(v, self.a.interval)
        return e

    def common(self, wl):
        return ["--workload", wl, "--keys", str(self.a.keys),
                "--value-size", str(self.a.value_size)]

    def base(self, kind, wl):
        """A pool holding the workload's preloaded keys, built once."""
        p = preload_of(wl, self.a.keys)
        key = (kind, p, wl == "mixed")
        if p == 0:
            return None
        if key in self.bases:
            return self.bases[key]
        path = os.path.join(self.a.dir, "%s-base-%s-%d.pool" % (self.tag, kind, p))
        cfg = {"pmdk": "pmdk", "vpcc": "vp-cc-sync"}.get(kind, "vp-uffd-sync")
        cmd = [self.bins[kind]] + [sub(x, self.a.interval) for x in CONFIGS[cfg][1]] + \
            self.common(wl) + ["--pool", path, "--build"]
        t = time.time()
        r = subprocess.run(cmd, env=self.env(cfg), capture_output=True, text=True, timeout=1800)
        if r.returncode != 0:
            sys.exit("building %s failed:\n%s\n%s" % (path, r.stdout, r.stderr))
        print("built %s (%d keys) in %.1f s" % (path, p, time.time() - t), flush=True)
        self.bases[key] = path
        return path

    def run1(self, cfg, wl, threads, batch, rep):
        kind, args = CONFIGS[cfg][0], [sub(x, self.a.interval) for x in CONFIGS[cfg][1]]
        pool = os.path.join(self.a.dir, "%s-run.pool" % self.tag)
        if os.path.exists(pool):
            os.unlink(pool)
        if not cfg.startswith("volatile"):
            b = self.base(kind, wl)
            if b:
                subprocess.run(["cp", "--sparse=always", b, pool], check=True)
        cmd = [self.bins[kind]] + args + self.common(wl) + [
            "--pool", pool, "--threads", str(threads), "--batch", str(batch),
            "--seed", str(1000 + rep)]
        if self.a.max_seconds > 0:
            cmd += ["--max-seconds", str(self.a.max_seconds)]
        try:
            r = subprocess.run(cmd, env=self.env(cfg), capture_output=True, text=True,
                               timeout=self.a.timeout)
            out, err, rc = r.stdout, r.stderr, r.returncode
        except subprocess.TimeoutExpired as e:
            out, err, rc = (e.stdout or b"").decode(), "timeout after %d s" % self.a.timeout, -1
        finally:
            if os.path.exists(pool):
                os.unlink(pool)
        res = None
        for line in out.splitlines():
            if line.startswith("{"):
                try:
                    res = json.loads(line)
                except ValueError:
                    pass
        if rc != 0 or not res or res.get("verified") != 1:
            self.failures.append((cfg, wl, threads, batch, rep, rc, out[-500:], err[-800:]))
            print("FAIL %s %s T%d B%d run %d (exit %d): %s %s" %
                  (cfg, wl, threads, batch, rep, rc, out.strip()[-300:], err.strip()[-300:]),
                  flush=True)
            return
        res["cfg"] = cfg
        res["rep"] = rep
        self.results.append(res)
        if self.jsonl:
            self.jsonl.write(json.dumps(res) + "\n")
            self.jsonl.flush()

    def cleanup(self):
        for p in self.bases.values():
            if os.path.exists(p):
                os.unlink(p)


def median_table(results):
    cells = {}
    for r in results:
        cells.setdefault((r["cfg"], r["workload"], r["threads"], r["batch"]), []).append(r)
    med = {}
    for k, rs in cells.items():
        med[k] = {f: statistics.median(r[f] for r in rs)
                  for f in ("ops_per_s", "p50_ns", "p99_ns", "lookups_per_s", "ops")}
        med[k]["n"] = len(rs)
        if "commits" in rs[0]:
            med[k]["anatomy"] = {f: statistics.median(anatomy(r)[f] for r in rs)
                                 for f in anatomy(rs[0])}
    return med


def anatomy(r):
    """Where a VolipMem run's commits spent their time (per-run ratios)."""
    c = max(1, r.get("commits", 0))
    pages = max(1, r.get("pages_logged", 0))
    secs = max(1e-9, r["secs"])
    return {"commits_per_s": r.get("commits", 0) / secs,
            "fas_per_commit": r.get("fas", 0) / c,
            "pages_per_commit": r.get("pages_logged", 0) / c,
            "collect_us": r.get("ns_collect", 0) / c / 1e3,
            "log_us_per_page": r.get("ns_log", 0) / pages / 1e3,
            "update_us_per_page": r.get("ns_update", 0) / pages / 1e3,
            "stall_frac": r.get("ns_stall", 0) / 1e9 / secs}


def fmt_rate(x):
    if x >= 1e6:
        return "%.2fM" % (x / 1e6)
    if x >= 1e3:
        return "%.0fk" % (x / 1e3)
    return "%.0f" % x


def fmt_ns(x):
    return "%.1fus" % (x / 1e3) if x >= 1000 else "%dns" % x


def report(a, med, out):
    def p(*s):
        print(*s, file=out)
    cfgs = [c for c in a.configs if any(k[0] == c for k in med)]
    p("Hashmap benchmark: %d keys, %d-byte values, medians of %d runs, measured phase capped at %s s"
      % (a.keys, a.value_size, a.runs, a.max_seconds or "no"))
    p("machine: %s, %d CPUs, kernel %s" % (benchenv.cpu_model(), os.cpu_count(), os.uname().release))
    p("configurations:")
    for c in cfgs:
        p("  %-17s %s" % (c, sub(CONFIGS[c][3], a.interval)))
    p("")
    p("throughput ops/s (ratio to PMDK, ratio to volatile); p50/p99 per-op latency")
    for wl in a.workloads:
        p("\n== %s ==" % WL_LABEL[wl])
        p("%-17s %-4s %-5s %10s %8s %8s %9s %9s %10s" %
          ("config", "thr", "batch", "ops/s", "xPMDK", "xvolat", "p50", "p99", "lookups/s"))
        for t in a.threads:
            for b in a.batches:
                ref = med.get(("pmdk", wl, t, b))
                vol = med.get(("volatile", wl, t, b))
                for c in cfgs:
                    m = med.get((c, wl, t, b))
                    if not m:
                        continue
                    rp = "%.2f" % (m["ops_per_s"] / ref["ops_per_s"]) if ref else "-"
                    rv = "%.3f" % (m["ops_per_s"] / vol["ops_per_s"]) if vol else "-"
                    p("%-17s %-4d %-5d %10s %8s %8s %9s %9s %10s" %
                      (c, t, b, fmt_rate(m["ops_per_s"]), rp, rv, fmt_ns(m["p50_ns"]),
                       fmt_ns(m["p99_ns"]), fmt_rate(m["lookups_per_s"])))
    p("")
    goals(a, med, p)
    p("")
    p("VolipMem commit anatomy, 1 thread (medians of per-run values): commits/s, FASes and")
    p("pages per commit, collect time per commit, log and home-update time per page, and the")
    p("fraction of the run that threads spent held in pstart() by a commit")
    p("%-8s %-17s %-5s %9s %8s %8s %10s %8s %8s %6s" %
      ("workload", "config", "batch", "commits/s", "FAS/c", "pages/c", "collect", "log/pg",
       "upd/pg", "stall"))
    for wl in a.workloads:
        for c in cfgs:
            for b in a.batches:
                m = med.get((c, wl, 1, b))
                if not m or "anatomy" not in m:
                    continue
                x = m["anatomy"]
                p("%-8s %-17s %-5d %9.0f %8.1f %8.1f %8.0fus %6.1fus %6.1fus %5.0f%%" %
                  (wl, c, b, x["commits_per_s"], x["fas_per_commit"], x["pages_per_commit"],
                   x["collect_us"], x["log_us_per_page"], x["update_us_per_page"],
                   100 * x["stall_frac"]))


def markdown(a, med, out):
    """Throughput medians as one markdown table per workload."""
    cfgs = [c for c in a.configs if any(k[0] == c for k in med)]
    for wl in a.workloads:
        out.write("\n**%s** -- ops/s (x PMDK)\n\n" % WL_LABEL[wl])
        out.write("| T/B | " + " | ".join(cfgs) + " |\n")
        out.write("|---|" + "---:|" * len(cfgs) + "\n")
        for t in a.threads:
            for b in a.batches:
                ref = med.get(("pmdk", wl, t, b))
                row = []
                for c in cfgs:
                    m = med.get((c, wl, t, b))
                    if not m:
                        row.append("-")
                    elif ref and c != "pmdk":
                        row.append("%s (%.2f)" % (fmt_rate(m["ops_per_s"]),
                                                  m["ops_per_s"] / ref["ops_per_s"]))
                    else:
                        row.append(fmt_rate(m["ops_per_s"]))
                out.write("| %d/%d | %s |\n" % (t, b, " | ".join(row)))


def ratio(med, x, y, f="ops_per_s"):
    if x in med and y in med and med[y][f] > 0:
        return med[x][f] / med[y][f]
    return None


def geo(vals):
    vals = [v for v in vals if v]
    return math.exp(sum(math.log(v) for v in vals) / len(vals)) if vals else None


def goals(a, med, p):
    p("Goals (each ratio = ours / theirs, medians, same run):")

    def line(n, title, target, ours, theirs, cells, f="ops_per_s", note=""):
        rs = []
        for (wl, t, b) in cells:
            r = ratio(med, (ours, wl, t, b), (theirs, wl, t, b), f)
            if r:
                rs.append(r)
                p("   %-8s T%d B%-3d %s %s vs %s %s: %.2fx" %
                  (wl, t, b, ours, fmt_rate(med[(ours, wl, t, b)][f]), theirs,
                   fmt_rate(med[(theirs, wl, t, b)][f]), r))
        g = geo(rs)
        if g is None:
            p("(%d) %s: not measured" % (n, title))
            return
        if target is None:  # a breakdown, not a goal
            p("(%d) %s: geometric mean %.2fx, min %.2fx%s" % (n, title, g, min(rs), note))
            return
        p("(%d) %s: geometric mean %.2fx, min %.2fx, target >= %gx -> %s%s" %
          (n, title, g, min(rs), target, "MET" if min(rs) >= target else
           ("met on average" if g >= target else "NOT MET"), note))

    allc = [(wl, t, b) for wl in a.workloads for t in a.threads for b in a.batches]
    b1 = [(wl, t, 1) for wl in a.workloads for t in a.threads if 1 in a.batches]
    b16 = [(wl, t, 16) for wl in a.workloads for t in a.threads if 16 in a.batches]
    b256 = [(wl, t, 256) for wl in a.workloads for t in a.threads if 256 in a.batches]
    # The published targets (docs/bench-hashmap.md, "Goals").
    line(1, "vp-uffd-relaxed (%d ms commits) vs PMDK, 1 op per FAS/tx" % a.interval, 3,
         "vp-uffd-relaxed", "pmdk", b1,
         note="  [different durability: relaxed loses up to %d ms on a crash, PMDK none]" % a.interval)
    line(2, "vp-uffd-relaxed vs pmthreads-style, same %d ms interval, all cells" % a.interval, 4,
         "vp-uffd-relaxed", "pmthreads-style", allc)
    line(3, "vp-uffd-sync vs PMDK, 1 op per FAS/tx", 0.5, "vp-uffd-sync", "pmdk", b1)
    line(3, "vp-uffd-sync vs PMDK, 16 ops per FAS/tx", 1, "vp-uffd-sync", "pmdk", b16)
    line(3, "vp-uffd-sync vs PMDK, 256 ops per FAS/tx", 1.5, "vp-uffd-sync", "pmdk", b256)
    line(4, "vp-cc-sync vs PMDK, 1 op per FAS/tx", 1, "vp-cc-sync", "pmdk", b1)
    line(4, "vp-cc-sync vs PMDK, 16 ops per FAS/tx", 2, "vp-cc-sync", "pmdk", b16)
    line(4, "vp-cc-relaxed (%d ms commits) vs PMDK, 1 op per FAS/tx" % a.interval, 5,
         "vp-cc-relaxed", "pmdk", b1)
    # instrumentation overhead: time <= 1.3x the plain build, i.e. throughput
    # >= 1/1.3 of it
    line(4, "volatile-cc vs volatile (instrumentation overhead, time <= 1.3x)", 1 / 1.3,
         "volatile-cc", "volatile", allc)
    # the same split in two: clang's code against gcc's, then the
    # instrumentation alone (both clang); no target of their own
    line(4, "volatile-clang vs volatile (the compiler's share, for reference)", None,
         "volatile-clang", "volatile", allc)
    line(4, "volatile-cc vs volatile-clang (the instrumentation alone, time <= 1.3x)", 1 / 1.3,
         "volatile-cc", "volatile-clang", allc)
    # the lookup pass compares like with like only where the table sizes
    # match: read95 starts from the same N keys and adds few
    rd = [("read95", t, b) for t in a.threads for b in a.batches if "read95" in a.workloads]
    line(5, "lookup pass (1 thread, read95 table) vp-uffd-sync vs volatile", 0.9,
         "vp-uffd-sync", "volatile", rd, f="lookups_per_s")
    line(5, "lookup pass (1 thread, read95 table) vp-uffd-relaxed vs volatile", 0.9,
         "vp-uffd-relaxed", "volatile", rd, f="lookups_per_s")
    line(5, "lookup pass (1 thread, read95 table) PMDK vs volatile (for reference)", 0.9,
         "pmdk", "volatile", rd, f="lookups_per_s")
    line(5, "95/5 lookup/insert throughput, vp-uffd-relaxed vs volatile", 0.9,
         "vp-uffd-relaxed", "volatile", rd)


def panels(a, med):
    """One panel per workload: ops/s per configuration, per T/B cell."""
    cfgs = [c for c in a.configs if any(k[0] == c for k in med)]
    return [(WL_LABEL[wl], cfgs,
             [("T%d/B%d" % (t, b), [med[(c, wl, t, b)]["ops_per_s"] if (c, wl, t, b) in med
                                    else None for c in cfgs])
              for t in a.threads for b in a.batches])
            for wl in a.workloads]


def write_outputs(a, s, med, extra=""):
    """The report, the markdown table, the medians and the plot under
    --out, each stamped by the session; nothing when it refused."""
    rep = io.StringIO()
    report(a, med, rep)
    s.write(os.path.join("data", a.tag + "-summary.txt"), rep.getvalue() + extra, prefix="# ")
    tab = io.StringIO()
    markdown(a, med, tab)
    s.write(os.path.join("data", a.tag + "-table.md"), tab.getvalue())
    tsv = ["config\tworkload\tthreads\tbatch\truns\tops_per_s\tp50_ns\tp99_ns\tlookups_per_s"]
    for k in sorted(med):
        m = med[k]
        tsv.append("%s\t%s\t%d\t%d\t%d\t%.1f\t%d\t%d\t%.1f" %
                   (k[0], k[1], k[2], k[3], m["n"], m["ops_per_s"], m["p50_ns"],
                    m["p99_ns"], m["lookups_per_s"]))
    s.write(os.path.join("data", a.tag + "-medians.tsv"), "\n".join(tsv), prefix="# ")
    s.plot(os.path.join("img", a.tag + ".png"),
           "Hashmap: throughput per configuration (%d keys, %d B values, median of %d; "
           "T=threads, B=ops per FAS/tx)" % (a.keys, a.value_size, a.runs),
           panels(a, med), "ops/s (log)")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--build-dir", default=os.environ.get("HM_BUILD_DIR", "build"))
    ap.add_argument("--keys", type=int, default=1000000)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--max-seconds", type=float, default=1.0,
                    help="cap on each run's measured phase (0 = none)")
    ap.add_argument("--interval", type=int, default=1, help="relaxed commit period, ms")
    ap.add_argument("--configs", default=",".join(DEFAULT_CONFIGS))
    ap.add_argument("--workloads", default=",".join(WORKLOADS))
    ap.add_argument("--threads", default="1,2")
    ap.add_argument("--batches", default="1,16,256")
    ap.add_argument("--value-size", type=int, default=32)
    ap.add_argument("--dir", default="/dev/shm", help="where pools live")
    ap.add_argument("--out", default=os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                                  "..", "..", "docs"))
    ap.add_argument("--timeout", type=int, default=600)
    ap.add_argument("--from-jsonl", help="only report and plot an earlier run's results")
    ap.add_argument("--tag", default="hashmap",
                    help="base name of the output files (data/TAG.jsonl, img/TAG.png, ...)")
    benchenv.add_args(ap, out=False)
    a = ap.parse_args()
    a.configs = a.configs.split(",")
    a.workloads = a.workloads.split(",")
    a.threads = [int(x) for x in a.threads.split(",")]
    a.batches = [int(x) for x in a.batches.split(",")]
    for c in a.configs:
        if c not in CONFIGS:
            sys.exit("unknown config %s (known: %s)" % (c, ", ".join(CONFIGS)))
    a.out = os.path.normpath(a.out)

    if a.from_jsonl:
        lines = [json.loads(l) for l in open(a.from_jsonl) if l.strip()]
        results = [r for r in lines if "session" not in r]
        taken = [r["session"] for r in lines if "session" in r]
        s = benchenv.Session("bench/hashmap", a.out, a.force, a.build_dir, runs=a.runs,
                             peer="pmdk" in a.configs)
        if not taken or any(l.startswith("WARNING") for l in taken[0]):
            s.problems.append("re-reported from %s, %s" % (a.from_jsonl, "; ".join(
                taken[0][:1]) if taken else "which does not record its load"))
        else:
            s.notes.append("re-reported from %s, taken: %s" % (a.from_jsonl, "; ".join(taken[0][:3])))
        s.start()
        med = median_table(results)
        report(a, med, sys.stdout)
        if not s.finish():
            return 3
        write_outputs(a, s, med)
        return 0

    R = Runner(a)
    for c in a.configs:
        b = R.bins[CONFIGS[c][0]]
        if not os.access(b, os.X_OK):
            sys.exit("%s not built (looked for %s); build with cmake first" % (c, b))
    s = benchenv.Session("bench/hashmap", a.out, a.force, a.build_dir, runs=a.runs,
                         peer="pmdk" in a.configs)
    s.start()
    cells = [(wl, t, b, c) for wl in a.workloads for t in a.threads for b in a.batches
             for c in a.configs]
    print("%d cells x %d runs = %d runs; measured phase capped at %s s each" %
          (len(cells), a.runs, len(cells) * a.runs, a.max_seconds or "no"), flush=True)
    # Every run's JSON line goes to a scratch file first: it moves under
    # --out only if the session lets the run be written there.
    scratch = os.path.join(a.dir, "%s-%d.jsonl" % (a.tag, os.getpid()))
    R.jsonl = open(scratch, "w")
    t0 = time.time()
    try:
        for rep in range(a.runs):
            for (wl, t, b, c) in cells:
                R.run1(c, wl, t, b, rep)
            print("round %d/%d done after %.0f s" % (rep + 1, a.runs, time.time() - t0), flush=True)
    finally:
        R.cleanup()
        R.jsonl.close()
    ok = s.finish()
    med = median_table(R.results)
    report(a, med, sys.stdout)
    if ok:
        with open(scratch) as f:
            s.write_jsonl(os.path.join("data", a.tag + ".jsonl"), f.read())
        write_outputs(a, s, med, "\ntotal time %.0f s\n" % (time.time() - t0))
    os.unlink(scratch)
    print("total %.0f s" % (time.time() - t0))
    if R.failures:
        print("%d runs FAILED verification or crashed:" % len(R.failures))
        for f in R.failures[:20]:
            print("  %s %s T%d B%d run %d exit %d\n    %s" % (f[:6] + (f[7].strip()[-400:],)))
        return 1
    return 0 if ok else 3


if __name__ == "__main__":
    sys.exit(main())
