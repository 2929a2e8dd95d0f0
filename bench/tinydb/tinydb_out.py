# SPDX-License-Identifier: MIT
"""tinydb_out -- what bench_tinydb.py records and writes under --out: the
benchenv session, a markdown table of the per-operation means and a PNG
(one panel per operation, seconds per operation per backend and size).

Kept beside the benchmark so that its measuring code stays as it is: the
benchmark hands its run_one() to record(), which keeps each call's
(backend, N, {op: seconds}) as the runs go.
"""
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
import benchenv  # noqa: E402,F401  (re-exported for bench_tinydb.py)


def record(run_one):
    """record -- (list of results, run_one wrapped to append to it)."""
    rows = []

    def wrapped(backend, n, *rest, **kw):
        ret = run_one(backend, n, *rest, **kw)
        rows.append((backend.name, n, dict(ret[0])))
        return ret
    return rows, wrapped


def session(args):
    """session -- the started benchenv session.  Each backend runs once per
    size, one after the other: no medians and no alternation yet, so the
    session refuses to publish without --force."""
    s = benchenv.Session("bench/tinydb", args.out, args.force, getattr(args, "build_dir", None),
                         runs=1, alternating=False)
    s.start()
    return s


def fmt(sec):
    if sec is None:
        return "-"
    return "%.2f s" % sec if sec >= 1 else "%.2f ms" % (sec * 1e3) if sec >= 1e-3 \
        else "%.1f µs" % (sec * 1e6)


def publish(s, rows, rc, tag="tinydb"):
    """publish -- close the session and, when it allows, write the table
    and the plot; the benchmark's exit code (3 when refused)."""
    if not s.finish():
        return rc or 3
    if not s.out or not rows:
        return rc
    backends, sizes, ops = [], [], []
    val = {}
    for b, n, res in rows:
        for lst, x in ((backends, b), (sizes, n)):
            if x not in lst:
                lst.append(x)
        for op, sec in res.items():
            if op not in ops:
                ops.append(op)
            val[(b, n, op)] = sec
    md = ["| N | op | " + " | ".join(backends) + " |", "|---|---|" + "---:|" * len(backends)]
    for n in sizes:
        for op in ops:
            cells = []
            for b in backends:
                v = val.get((b, n, op))
                j = val.get(("json", n, op))
                r = j / v if v and j and b != "json" else None
                cells.append(fmt(v) + ("" if r is None else " (%.0fx)" % r if r >= 10
                                       else " (%.2gx)" % r))
            md.append("| %d | %s | %s |" % (n, op, " | ".join(cells)))
    s.write(os.path.join("data", tag + ".md"),
            "Seconds per operation (speedup over JSONStorage)\n\n" + "\n".join(md))
    s.plot(os.path.join("img", tag + ".png"),
           "TinyDB: time per operation by backend and database size N (one run)",
           [(op, backends, [("N=%d" % n, [val.get((b, n, op)) for b in backends])
                            for n in sizes]) for op in ops],
           "seconds per op (log)")
    return rc
