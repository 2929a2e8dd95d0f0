#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""side_by_side -- Debian's memcached and vmcached under the same load.

Each server runs with the same thread count and memory limit and is driven
by memcaslap (libmemcached-tools) with the same settings; servers run one
after the other on the same machine (client and server share the cores,
so the comparison is only fair when the runs alternate). vmcached runs once
per durability setting: per-request durability (--commit-interval 0) and
relaxed commits every 0.1, 1 and 10 ms. With VMCACHED_CC, vmcached-cc (the
build with the cc instrumentation, on the cc tracker) runs beside them at
the commit intervals of VMC_BENCH_CC_MODES.

Printed per workload: throughput, mean and log2-bucket p50/p99 latency
(memcaslap's histogram: a percentile is reported as the upper edge of its
power-of-two bucket), and the ratio to memcached's throughput.

Knobs (environment):
  VMC_BENCH_SECONDS   seconds per run (default 2; the full run uses 20)
  VMC_BENCH_REPEAT    runs per cell, the median is reported (default 1;
                      3 with --out)
  VMC_BENCH_FULL=1    20 s runs, 3 repeats (medians of 3), like the
                      reference measurements
  VMC_BENCH_MODES     commit intervals in ms (default "0 0.1 1 10")
  VMC_BENCH_LOADS     subset of: get90-32 get50-32 get90-1k get50-1k
  VMC_BENCH_THREADS   server and client threads (default 2)
  VMC_BENCH_CONC      memcaslap concurrency (default 64)
  VMCACHED            the vmcached binary (default: build tree guesses)
  VMCACHED_CC         the vmcached-cc binary: adds its rows (default: none)
  VMC_BENCH_CC_MODES  vmcached-cc's commit intervals in ms (default "0")
Usage: bench/memcached/side_by_side.py [--out docs [--tag memcached]] [--force]
                                       [--build-dir build]   (from anywhere)
With --out DIR it also writes DIR/data/TAG.md (the table under a header
naming the command, the load and the machine's raw costs) and
DIR/img/TAG.png; into docs/ only from an idle machine with >= 3 repeats
(bench/benchenv.py).
"""
import argparse
import atexit
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
import benchenv  # noqa: E402

FULL = os.environ.get("VMC_BENCH_FULL") == "1"
SECONDS = int(os.environ.get("VMC_BENCH_SECONDS", "20" if FULL else "2"))
REPEAT = int(os.environ.get("VMC_BENCH_REPEAT", "3" if FULL else "1"))
MODES = os.environ.get("VMC_BENCH_MODES", "0 0.1 1 10").split()
VMCACHED_CC = os.environ.get("VMCACHED_CC")
CC_MODES = os.environ.get("VMC_BENCH_CC_MODES", "0").split() if VMCACHED_CC else []
THREADS = int(os.environ.get("VMC_BENCH_THREADS", "2"))
CONC = int(os.environ.get("VMC_BENCH_CONC", "64"))
MEM_MB = 256
LOADS = {
    "get90-32": (0.9, 32),
    "get50-32": (0.5, 32),
    "get90-1k": (0.9, 1024),
    "get50-1k": (0.5, 1024),
}
sel = os.environ.get("VMC_BENCH_LOADS")
if sel:
    LOADS = {k: v for k, v in LOADS.items() if k in sel.split()}

procs = []
tmpfiles = []


def cleanup():
    for p in procs:
        if p.poll() is None:
            p.kill()
            p.wait()
    for f in tmpfiles:
        try:
            if os.path.isdir(f):
                shutil.rmtree(f)
            else:
                os.unlink(f)
        except OSError:
            pass


atexit.register(cleanup)
signal.signal(signal.SIGTERM, lambda s, f: sys.exit(1))
signal.signal(signal.SIGINT, lambda s, f: sys.exit(1))


def find_vmcached():
    env = os.environ.get("VMCACHED")
    if env:
        return env
    here = os.path.dirname(os.path.abspath(__file__))
    root = os.path.dirname(os.path.dirname(here))
    for cand in (os.path.join(root, "build", "apps", "vmcached", "vmcached"),
                 "/tmp/build/apps/vmcached/vmcached"):
        if os.access(cand, os.X_OK):
            return cand
    sys.exit("set VMCACHED to the vmcached binary")


def find_vmcached_cc():
    if not os.access(VMCACHED_CC, os.X_OK):
        sys.exit("VMCACHED_CC=%s: not an executable (vmcached-cc is built only "
                 "with clang and llvm-14-dev)" % VMCACHED_CC)
    return VMCACHED_CC


def tracker_of(port):
    """The server's vp_tracker, from `stats`."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as c:
        c.sendall(b"stats\r\n")
        out = b""
        while not out.endswith(b"END\r\n"):
            d = c.recv(65536)
            if not d:
                break
            out += d
    m = re.search(rb"STAT vp_tracker (\S+)", out)
    return m.group(1).decode() if m else None


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


def wait_port(port, proc):
    for _ in range(400):
        if proc.poll() is not None:
            sys.exit("server exited: %r" % proc.args)
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return
        except OSError:
            time.sleep(0.05)
    sys.exit("server did not start: %r" % proc.args)


def start(kind, mode=None):
    port = free_port()
    if kind == "memcached":
        argv = ["memcached", "-u", "root", "-U", "0", "-l", "127.0.0.1",
                "-p", str(port), "-t", str(THREADS), "-m", str(MEM_MB)]
        pool = None
    else:
        pool = "/dev/shm/vmcached-bench-%d.pool" % os.getpid()
        if os.path.exists(pool):
            os.unlink(pool)
        tmpfiles.append(pool)
        cc = kind == "vmcached-cc"
        argv = [find_vmcached_cc() if cc else find_vmcached(), "-l", "127.0.0.1",
                "-p", str(port), "-t", str(THREADS), "-m", str(MEM_MB),
                "--pool", pool, "--commit-interval", mode]
        if cc:
            argv += ["--tracker", "cc"]
    p = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    procs.append(p)
    wait_port(port, p)
    if kind == "vmcached-cc" and tracker_of(port) != "cc":
        sys.exit("%s does not run the cc tracker (stats: vp_tracker %s)"
                 % (argv[0], tracker_of(port)))
    return p, port, pool


def stop(p, pool):
    p.terminate()
    try:
        p.wait(timeout=60)
    except subprocess.TimeoutExpired:
        p.kill()
        p.wait()
    if pool and os.path.exists(pool):
        os.unlink(pool)


def percentile_from_log2(hist, q):
    """hist: list of (bucket_exponent, count). Upper edge of the bucket."""
    total = sum(c for _, c in hist)
    if total == 0:
        return 0
    acc = 0
    for b, c in hist:
        acc += c
        if acc >= q * total:
            return 2 ** (b + 1)
    return 2 ** (hist[-1][0] + 1)


def parse(out):
    tps = re.search(r"Run time: [\d.]+s Ops: \d+ TPS: (\d+)", out)
    sect = out.split("Total Statistics (")[-1]
    avg = re.search(r"Avg:\s+(\d+)", sect)
    hist = []
    in_dist = False
    for ln in sect.splitlines():
        if "Log2 Dist" in ln:
            in_dist = True
            continue
        m = re.match(r"\s+(\d+):\s+([\d\s]+)$", ln)
        if in_dist and m:
            base = int(m.group(1))
            for i, c in enumerate(m.group(2).split()):
                hist.append((base + i, int(c)))
        elif in_dist and ln.strip() and not m:
            break
    return (int(tps.group(1)) if tps else 0, int(avg.group(1)) if avg else 0,
            percentile_from_log2(hist, 0.5), percentile_from_log2(hist, 0.99))


def run_load(port, getp, size, cfgdir):
    cfg = os.path.join(cfgdir, "cfg-%g-%d" % (getp, size))
    with open(cfg, "w") as f:
        f.write("key\n64 64 1\nvalue\n%d %d 1\ncmd\n0 %g\n1 %g\n" %
                (size, size, 1 - getp, getp))
    argv = ["memcaslap", "-s", "127.0.0.1:%d" % port, "-T", str(THREADS),
            "-c", str(CONC), "-t", "%ds" % SECONDS, "-S", "%ds" % SECONDS,
            "-F", cfg, "-w", "2k"]
    p = subprocess.run(argv, capture_output=True, text=True,
                       timeout=SECONDS * 4 + 60)
    return parse(p.stdout)


def median_cell(results):
    """Median by throughput over repeats: the whole run's tuple."""
    results = sorted(results, key=lambda r: r[0])
    return results[len(results) // 2]


def server_name(s):
    return "memcached" if s[1] is None else (
        "%s sync" % s[0] if s[1] == "0" else "%s %sms" % (s[0], s[1]))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--build-dir", help="build tree (for bench_core env)")
    ap.add_argument("--tag", default="memcached", help="base name of the output files")
    benchenv.add_args(ap)
    a = ap.parse_args()
    global REPEAT
    if a.out and "VMC_BENCH_REPEAT" not in os.environ:
        REPEAT = max(REPEAT, benchenv.MIN_RUNS)    # what --out docs needs
    if not shutil.which("memcaslap") or not shutil.which("memcached"):
        print("SKIP: needs memcached and libmemcached-tools (memcaslap)")
        sys.exit(77)
    if VMCACHED_CC:
        find_vmcached_cc()    # a bad path stops here, before any run
    cfgdir = tempfile.mkdtemp(prefix="vmcbench-")
    tmpfiles.append(cfgdir)
    servers = ([("memcached", None)] + [("vmcached", m) for m in MODES]
               + [("vmcached-cc", m) for m in CC_MODES])
    bs = benchenv.Session("bench/memcached", a.out, a.force, a.build_dir, runs=REPEAT)
    bs.start()
    medium = benchenv.pmem_standin()
    title = ("memcached %s vs vmcached%s, -t %d -m %d; memcaslap -T %d -c %d -t %ds "
             "-w 2k, %d run(s) per cell (median); %s" %
             (subprocess.run(["memcached", "-V"], capture_output=True,
                             text=True).stdout.strip(),
              " and vmcached-cc (cc tracker)" if CC_MODES else "", THREADS, MEM_MB, THREADS,
              CONC, SECONDS, REPEAT, medium))
    print(title)
    table = {}
    for load, (getp, size) in LOADS.items():
        runs = {s: [] for s in servers}
        for _ in range(REPEAT):
            for s in servers:        # alternate servers within each repeat
                p, port, pool = start(s[0], s[1])
                runs[s].append(run_load(port, getp, size, cfgdir))
                stop(p, pool)
        table[load] = {s: median_cell(r) for s, r in runs.items()}
    ok = bs.finish()
    hdr = "%-10s %-22s %10s %7s %8s %8s %8s" % (
        "load", "server", "ops/s", "ratio", "avg_us", "p50_us", "p99_us")
    print(hdr)
    print("-" * len(hdr))
    md = [title + "\n", "| load | server | ops/s | x memcached | avg µs | p50 µs | p99 µs |",
          "|---|---|---:|---:|---:|---:|---:|"]
    for load, cells in table.items():
        base = cells[("memcached", None)][0] or 1
        for s in servers:
            tps, avg, p50, p99 = cells[s]
            print("%-10s %-22s %10d %7.2f %8d %8s %8s" % (
                load, server_name(s), tps, tps / base, avg, "<=%d" % p50, "<=%d" % p99))
            md.append("| %s | %s | %d | %.2f | %d | <=%d | <=%d |" % (
                load, server_name(s), tps, tps / base, avg, p50, p99))
    if ok:
        bs.write(os.path.join("data", a.tag + ".md"), "\n".join(md))
        bs.plot(os.path.join("img", a.tag + ".png"),
                "memcached vs vmcached: ops/s, memcaslap -T %d -c %d, %d s runs, median of %d"
                % (THREADS, CONC, SECONDS, REPEAT),
                [("ops/s per workload", [server_name(s) for s in servers],
                  [(load, [cells[s][0] for s in servers]) for load, cells in table.items()])],
                "ops/s", logy=False, size="1200,600")
    dead = [(load, s) for load, cells in table.items()
            for s, cell in cells.items() if cell[0] == 0]
    if dead:
        print("FAIL: no throughput measured for %r" % dead)
        return 1
    return 0 if ok else 3


if __name__ == "__main__":
    sys.exit(main())
