#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""search_ab.py -- TinyDB search, JSONStorage against the persistent table
(volipmem.tinydb.open), measured alternately in one process so that both
see the same machine load: for each size N both databases hold the same N
documents (bench_tinydb.py's), then R rounds each time a batch of searches
on json, then on vm-table, then on vm-table, then on json (ABBA), a fresh
query every time (the query cache never answers). Prints the median time
per search of each and the ratio json / vm-table (> 1: vm-table faster).
It runs in a bench/benchenv.py session (load and raw costs recorded and
printed); --out DIR also writes DIR/data/tinydb-search.md, into docs/ only
on an idle machine (or with --force, stamped).

    search_ab.py [--sizes 100,1000,10000] [--rounds 9] [--batch 5] [--out DIR]
Run with Debian's /usr/bin/python3 and PYTHONPATH=<build>/bindings/python.
"""

import argparse
import gc
import os
import statistics
import sys
import time

from tinydb import Query, TinyDB
from tinydb.storages import JSONStorage

import volipmem.tinydb as vtdb
from bench_tinydb import doc, fmt_time, machine
from tinydb_out import benchenv


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sizes", default="100,1000,10000")
    ap.add_argument("--rounds", type=int, default=9)
    ap.add_argument("--batch", type=int, default=5)
    ap.add_argument("--dir", default="/dev/shm")
    benchenv.add_args(ap)
    args = ap.parse_args()
    session = benchenv.Session("bench/tinydb/search_ab", args.out, args.force,
                               runs=args.rounds, alternating=True)
    session.start()
    print("# search A/B: %s (rounds %d, batch %d)" % (machine(), args.rounds,
                                                     args.batch))
    rows = ["| N | json | vm-table | json / vm-table |", "|---:|---:|---:|---:|"]
    print("%8s %12s %12s %10s" % ("N", "json", "vm-table", "json/vm"))
    q = Query()
    for n in [int(x) for x in args.sizes.split(",") if x]:
        base = os.path.join(args.dir, "search-ab-%d-%d" % (os.getpid(), n))
        jdb = TinyDB(base + ".json", storage=JSONStorage)
        vdb = vtdb.open(base + ".pool", 64 + n // 1000 << 20)
        for db in (jdb, vdb):
            db.insert_multiple(doc(i) for i in range(n))
        fresh = iter(range(10**9))
        times = {"json": [], "vm": []}

        def batch(name, db):
            gc.collect()
            t = time.perf_counter()
            for _ in range(args.batch):
                r = db.search(q.i == next(fresh) % n)
                assert len(r) == 1
            times[name].append((time.perf_counter() - t) / args.batch)

        for _ in range(args.rounds):
            batch("json", jdb)
            batch("vm", vdb)
            batch("vm", vdb)
            batch("json", jdb)
        tj = statistics.median(times["json"])
        tv = statistics.median(times["vm"])
        print("%8d %12s %12s %9.1fx" % (n, fmt_time(tj), fmt_time(tv),
                                         tj / tv))
        rows.append("| %d | %s | %s | %.1fx |" % (n, fmt_time(tj),
                                                  fmt_time(tv), tj / tv))
        jdb.close()
        vdb.close()
        for f in (base + ".json", base + ".pool"):
            if os.path.exists(f):
                os.unlink(f)
    if not session.finish():
        return 3
    if args.out:
        session.write(os.path.join("data", "tinydb-search.md"),
                      "TinyDB search, medians of %d alternating rounds "
                      "(ABBA), time per search\n\n" % args.rounds +
                      "\n".join(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
