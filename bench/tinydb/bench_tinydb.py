#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""bench_tinydb.py -- TinyDB (Debian python3-tinydb 3.15) on VolipMem against
TinyDB's own JSONStorage and MemoryStorage.

For each database size N the database is prefilled with insert_multiple
(inserting 100,000 documents one by one into JSONStorage would take hours),
then single operations of each kind are timed: search (Query().i == x, a
different x each time so the query cache never answers; first, while every
backend holds exactly N documents), insert, get by id, update by id, and a
reopen (close, open, count). Every backend runs k of each; vm-table and
vm-relaxed run --kfast (default 2000) inserts, gets and updates, because
their mean must include the rare operation that waits for the committer
(in relaxed mode a commit every --interval-ms holds new FASes back while it
collects its write set); their reopen therefore sees N + kfast documents.
Per-operation means and speedups over JSONStorage are printed side by side,
then the bytes each backend takes per document after the prefill: the JSON
file's size for json, CPython's own objects for memory (tracemalloc of the
same {doc_id: document} dict), the growth of the heap (heap_used) for the
vm-* backends, with the ratio to the JSON text.

Every size is measured --repeat times (default 3 with --out, 1 without;
VPY_BENCH_REPEAT too): each repeat runs every backend once, in turn, the
order reversed on every other repeat, so VolipMem and its peers alternate
under the same load; each printed cell is the median over the repeats of a
run's per-operation mean.  JSONStorage rewrites its whole file on every
insert and update (75 ms at N = 10,000 on an idle machine), so it, like the
other slow backends, runs k (-k, default 5) operations of each kind per
repeat: its cost per insert is the mean of those k.

Backends:
  json        TinyDB(path, storage=JSONStorage)      file in --dir
  memory      TinyDB(storage=MemoryStorage)          not durable
  vm-storage  TinyDB(pool, storage=VolipMemStorage)   stock tables, O(N)/op
  vm-table    volipmem.tinydb.open(pool)              persistent tables
  vm-table-cc the same with the extension's cc build (VOLIPMEM_TRACKER=cc:
              write sets from compiler instrumentation, docs/python.md); run
              in a child process, since one process loads one extension.
              Listed only when volipmem._volipmem_cc is built
  vm-relaxed  the same in relaxed mode (commit every --interval-ms ms)

Usage:
  bench_tinydb.py                       quick: N = 100, 1,000, 10,000
  bench_tinydb.py --full                adds N = 100,000 (VPY_BENCH_FULL=1 too)
  bench_tinydb.py --sizes 1000 -k 20 --backends json,vm-table
  bench_tinydb.py --out docs            medians of 3 repeats, publishes
Run with Debian's /usr/bin/python3 and PYTHONPATH=<build>/bindings/python.
"""

import argparse
import gc
import importlib.util
import json
import os
import platform
import random
import statistics
import subprocess
import sys
import tempfile
import time
import tracemalloc

from tinydb import Query, TinyDB, __version__ as tinydb_version
from tinydb.storages import JSONStorage, MemoryStorage

import volipmem
import volipmem.tinydb as vtdb

import tinydb_out

CC = "vm-table-cc"
CC_BUILT = volipmem.CC or \
    importlib.util.find_spec("volipmem._volipmem_cc") is not None
ALL = ["json", "memory", "vm-storage", "vm-table"] + [CC] * CC_BUILT + \
    ["vm-relaxed"]
OPS = ["search", "insert", "get", "update", "reopen"]
FAST = ("vm-table", "vm-relaxed") + (CC,) * CC_BUILT


def doc(i):
    return {"i": i, "s": str(i), "v": [i, 2 * i]}


class Backend:
    """Open/close one kind of database."""

    def __init__(self, name, workdir, size_mb, interval_ms):
        self.name = name
        self.dir = workdir
        self.size = size_mb << 20
        self.interval = interval_ms
        self.path = os.path.join(workdir, "bench-%d-%s.%s" % (
            os.getpid(), name, "json" if name == "json" else "pool"))
        self.mem = None

    def open(self):
        if self.name == "json":
            return TinyDB(self.path, storage=JSONStorage)
        if self.name == "memory":
            if self.mem is not None:      # "reopen": same data, new TinyDB
                return TinyDB(storage=_Preloaded, data=self.mem)
            return TinyDB(storage=MemoryStorage)
        if self.name == "vm-storage":
            return TinyDB(self.path, size=self.size,
                          storage=vtdb.VolipMemStorage)
        if self.name in ("vm-table", CC):
            return vtdb.open(self.path, self.size)
        if self.name == "vm-relaxed":
            return vtdb.open(self.path, self.size,
                             durability=volipmem.RELAXED,
                             interval_ms=self.interval)
        raise ValueError(self.name)

    def close(self, db):
        if self.name == "memory":
            self.mem = db.storage.memory
        if self.name == "vm-relaxed":
            volipmem.psync()
        db.close()

    def remove(self):
        self.mem = None
        if os.path.exists(self.path):
            os.unlink(self.path)
        if self.name == "vm-relaxed":
            volipmem.set_durability(volipmem.SYNC, 1)


class _Preloaded(MemoryStorage):
    """MemoryStorage that starts with existing data (its "reopen")."""

    def __init__(self, data):
        super().__init__()
        self.memory = data


def run_one(backend, n, k, kfast, seed):
    """Prefill n documents, then time single operations: k of each kind
    on the slow backends; kfast inserts, gets and updates on the fast ones
    (their mean needs many operations to include the amortised cost of
    commits); searches and reopens are O(N): k everywhere. Returns ({op: seconds per op}, prefill seconds,
    fingerprint of results that must agree between backends)."""
    if backend.name == CC and not volipmem.CC:
        return run_cc_child(backend, n, k, kfast, seed)
    count = kfast if backend.name in FAST else k
    rng = random.Random(seed)
    targets = [rng.randint(0, n - 1) for _ in range(count)]
    db = backend.open()
    vm = backend.name.startswith("vm")
    used = volipmem.stats()["heap_used"] if vm else 0
    t = time.perf_counter()
    db.insert_multiple(doc(i) for i in range(n))
    if vm:
        volipmem.psync()      # relaxed: the prefill's commit is not timed
    prefill = time.perf_counter() - t
    if vm:
        size = volipmem.stats()["heap_used"] - used
    elif backend.name == "json":
        size = os.path.getsize(backend.path)
    else:
        size = python_bytes(n)
    res = {}
    q = Query()

    def timed(op, fn, c):
        gc.collect()
        t0 = time.perf_counter()
        for j in range(c):
            fn(j)
        res[op] = (time.perf_counter() - t0) / c

    found, got, sizes = [], [], []
    timed("search", lambda j: found.append(len(db.search(q.i == targets[j]))),
          k)
    timed("insert", lambda j: db.insert(doc(n + j)), count)
    timed("get", lambda j: got.append(db.get(doc_id=targets[j] + 1)["i"]),
          count)
    timed("update", lambda j: db.update({"u": j}, doc_ids=[targets[j] + 1]),
          count)
    state = [db]

    def reopen(j):
        backend.close(state[0])
        state[0] = backend.open()
        sizes.append(len(state[0]) - count)

    timed("reopen", reopen, k)
    backend.close(state[0])
    backend.remove()
    return res, prefill, size / n, (found[:k], got[:k], sizes)


def run_cc_child(backend, n, k, kfast, seed):
    """run_one(backend, ...) in a child interpreter that imports the cc build
    (VOLIPMEM_TRACKER=cc: a process loads one extension, chosen at import);
    the same return value, passed back as JSON on the child's last line."""
    env = dict(os.environ, VOLIPMEM_TRACKER="cc")
    pkg = os.path.dirname(os.path.dirname(os.path.abspath(volipmem.__file__)))
    env["PYTHONPATH"] = os.pathsep.join(
        [pkg] + [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p])
    spec = json.dumps([backend.dir, backend.size, backend.interval,
                       n, k, kfast, seed])
    r = subprocess.run([sys.executable, os.path.abspath(__file__),
                        "--cc-child", spec], env=env, capture_output=True,
                       text=True)
    sys.stderr.write(r.stderr)
    if r.returncode != 0 or not r.stdout.strip():
        sys.exit("bench_tinydb: the %s child failed (exit %d)%s" % (
            CC, r.returncode, ": " + r.stdout[-2000:] if r.stdout else ""))
    res, prefill, per_doc, fp = json.loads(r.stdout.strip().splitlines()[-1])
    return res, prefill, per_doc, tuple(fp)


def cc_child(spec):
    """The --cc-child side of run_cc_child: one run_one of vm-table-cc."""
    workdir, size, interval, n, k, kfast, seed = json.loads(spec)
    if not volipmem.CC:
        sys.exit("bench_tinydb --cc-child: the cc build was not imported "
                 "(VOLIPMEM_TRACKER=%r)" % os.environ.get("VOLIPMEM_TRACKER"))
    be = Backend(CC, workdir, 0, interval)
    be.size = size
    res, prefill, per_doc, fp = run_one(be, n, k, kfast, seed)
    print(json.dumps([res, prefill, per_doc, list(fp)]))
    return 0


def python_bytes(n):
    """Bytes per document of CPython's own objects for the table that
    MemoryStorage holds ({doc_id: document}), measured by tracemalloc."""
    gc.collect()
    tracemalloc.start()
    table = {i + 1: doc(i) for i in range(n)}
    size = tracemalloc.get_traced_memory()[0]
    tracemalloc.stop()
    del table
    return size


def fmt_time(s):
    if s is None:
        return "-"
    if s >= 1:
        return "%.2f s" % s
    if s >= 1e-3:
        return "%.2f ms" % (s * 1e3)
    return "%.1f us" % (s * 1e6)


def fmt_ratio(r):
    return "%.0fx" % r if r >= 10 else "%.1fx" % r


def machine():
    cpu = "?"
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return "%s, %d CPUs, Linux %s, Python %s, TinyDB %s" % (
        cpu, os.cpu_count() or 0, platform.release(),
        platform.python_version(), tinydb_version)


def print_size(backends, results, prefill, per_doc):
    """print_size -- one size's table: time per operation per backend, the
    speedups over json, and the bytes per document."""
    w = 12
    others = [b for b in backends if b != "json"] if "json" in backends \
        else []
    print("%-8s" % "op" + "".join("%*s" % (w, b) for b in backends) +
          "   speedup vs json: " * bool(others) +
          " ".join("%*s" % (w - 1, b) for b in others))
    print("%-8s" % "prefill" + "".join("%*s" % (w, fmt_time(prefill[b]))
                                       for b in backends))
    for op in OPS:
        row = "%-8s" % op + "".join("%*s" % (w, fmt_time(results[b][op]))
                                    for b in backends)
        if others:
            row += " " * 19 + " ".join(
                "%*s" % (w - 1, fmt_ratio(results["json"][op] /
                                          results[b][op]))
                for b in others)
        print(row)
    row = "%-8s" % "B/doc" + "".join("%*.0f" % (w, per_doc[b])
                                     for b in backends)
    if others:
        row += "   size / json text: " + " ".join(
            "%*s" % (w - 1, "%.1fx" % (per_doc[b] / per_doc["json"]))
            for b in others)
    print(row)


def main():
    global run_one
    if sys.argv[1:2] == ["--cc-child"] and len(sys.argv) == 3:
        return cc_child(sys.argv[2])
    recorded, run_one = tinydb_out.record(run_one)   # for --out
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    tinydb_out.benchenv.add_args(ap)
    ap.add_argument("--sizes", default="100,1000,10000")
    ap.add_argument("--full", action="store_true",
                    default=os.environ.get("VPY_BENCH_FULL") == "1",
                    help="add N = 100,000")
    ap.add_argument("-k", type=int, default=5,
                    help="timed operations of each kind per size")
    ap.add_argument("--kfast", type=int, default=2000,
                    help="timed inserts, gets and updates for vm-table and "
                    "vm-relaxed")
    ap.add_argument("--repeat", type=int,
                    default=int(os.environ.get("VPY_BENCH_REPEAT", "0")) or None,
                    help="repeats per size, backends alternating within each "
                    "(default 3 with --out, else 1)")
    ap.add_argument("--backends", default=",".join(ALL))
    ap.add_argument("--dir", default="/dev/shm" if os.path.isdir("/dev/shm")
                    else tempfile.gettempdir())
    ap.add_argument("--pool-mb", type=int, default=0,
                    help="heap size (default: scaled to N)")
    ap.add_argument("--interval-ms", type=int, default=10,
                    help="commit period of vm-relaxed")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--check", action="store_true",
                    help="exit 1 unless every backend saw the same results")
    args = ap.parse_args()
    if args.repeat is None:
        args.repeat = tinydb_out.benchenv.MIN_RUNS if args.out else 1
    if args.repeat < 1:
        ap.error("--repeat must be at least 1")
    bench_session = tinydb_out.session(args)

    sizes = [int(s) for s in args.sizes.split(",") if s]
    if args.full and 100000 not in sizes:
        sizes.append(100000)
    backends = [b for b in args.backends.split(",") if b]
    for b in backends:
        if b == CC and not CC_BUILT:
            ap.error("backend %s needs volipmem._volipmem_cc, the extension's "
                     "cc build, which is not beside %s (built by CMake when "
                     "clang and matching LLVM headers are found)"
                     % (CC, os.path.dirname(volipmem.__file__)))
        if b not in ALL:
            ap.error("unknown backend %s (choose from %s)" % (b, ", ".join(ALL)))
    if os.environ.get("VOLIPMEM_COMMIT_INTERVAL_MS", "0") not in ("", "0"):
        print("note: VOLIPMEM_COMMIT_INTERVAL_MS is set: every vm-* backend "
              "runs in relaxed mode", file=sys.stderr)

    medium = tinydb_out.benchenv.pmem_standin()
    print("# TinyDB benchmark: %s" % machine())
    print("# dir %s, %s, k = %d (%s: %d), args: %s" % (
        args.dir, medium, args.k, "/".join(FAST), max(args.k, args.kfast),
        " ".join(sys.argv[1:])))
    ok = True
    for n in sizes:
        size_mb = args.pool_mb or 64 + n // 1000   # ~1 KiB per document
        runs = {b: [] for b in backends}
        fps, prefill, per_doc = {}, {b: [] for b in backends}, {}
        for r in range(args.repeat):
            # every backend once per repeat, the order reversed every other
            # repeat (ABBA...), so ours and the peers see the same load
            for b in (backends if r % 2 == 0 else backends[::-1]):
                be = Backend(b, args.dir, size_mb, args.interval_ms)
                res, pre, per_doc[b], fp = run_one(
                    be, n, args.k, max(args.k, args.kfast), args.seed)
                runs[b].append(res)
                prefill[b].append(pre)
                fps.setdefault(b, fp)
                if fp != fps[b]:
                    fps[b] = ("differs between repeats", fp)
        results = {b: {op: statistics.median(x[op] for x in runs[b]) for op in OPS}
                   for b in backends}
        prefill = {b: statistics.median(v) for b, v in prefill.items()}
        base = fps[backends[0]]
        same = all(fp == base for fp in fps.values())
        ok = ok and same
        print("\n## N = %d documents%s%s" % (
            n, "" if args.repeat == 1 else ", medians of %d repeats" % args.repeat,
            "" if same else "  (RESULTS DIFFER: %r)" % fps))
        print_size(backends, results, prefill, per_doc)
    return tinydb_out.publish(bench_session, recorded,
                              0 if (ok or not args.check) else 1)


if __name__ == "__main__":
    sys.exit(main())
