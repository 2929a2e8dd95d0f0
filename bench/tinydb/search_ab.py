#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""search_ab.py -- TinyDB search, JSONStorage against the persistent table
(volipmem.tinydb.open), measured alternately in one process so that both
see the same machine load: for each size N both databases hold the same N
documents (bench_tinydb.py's), then R rounds each time a batch of searches
on json, then on vm-table, then on vm-table, then on json (ABBA), a fresh
query every time (the query cache never answers). Prints the median time
per search of each and the ratio json / vm-table (> 1: vm-table faster),
with the load average.

    search_ab.py [--sizes 100,1000,10000] [--rounds 9] [--batch 5]
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


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sizes", default="100,1000,10000")
    ap.add_argument("--rounds", type=int, default=9)
    ap.add_argument("--batch", type=int, default=5)
    ap.add_argument("--dir", default="/dev/shm")
    args = ap.parse_args()
    print("# search A/B: %s" % machine())
    print("# load average %s (rounds %d, batch %d)" % (
        " ".join("%.2f" % x for x in os.getloadavg()), args.rounds,
        args.batch))
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
        jdb.close()
        vdb.close()
        for f in (base + ".json", base + ".pool"):
            if os.path.exists(f):
                os.unlink(f)
    return 0


if __name__ == "__main__":
    sys.exit(main())
