# SPDX-License-Identifier: MIT
"""tinydb_out -- what bench_tinydb.py records and writes under --out: the
benchenv session, a markdown table of the per-operation means and a PNG
(one panel per operation, seconds per operation per backend and size).

Kept beside the benchmark so that its measuring code stays as it is: the
benchmark hands its run_one() to record(), which keeps each call's
(backend, N, {op: seconds}) as the runs go; publish() takes the medians
over the repeats and states the ratios the project's targets are set in
(synchronous insert at N = 10,000, the persistent table, plain and with the
extension's cc build, against JSONStorage: TARGETS).
"""
import os
import statistics
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
import benchenv  # noqa: E402,F401  (re-exported for bench_tinydb.py)

TARGETS = [("vm-table", "insert", 10000, 5000),       # ours, op, N, x JSONStorage
           ("vm-table-cc", "insert", 10000, 10000)]


def record(run_one):
    """record -- (list of results, run_one wrapped to append to it)."""
    rows = []

    def wrapped(backend, n, *rest, **kw):
        ret = run_one(backend, n, *rest, **kw)
        rows.append((backend.name, n, dict(ret[0])))
        return ret
    return rows, wrapped


def session(args):
    """session -- the started benchenv session: medians of --repeat runs,
    every backend once in each, alternating (so at least 3 repeats may
    publish)."""
    peers = {"json", "memory"} & set(args.backends.split(","))
    s = benchenv.Session("bench/tinydb", args.out, args.force, getattr(args, "build_dir", None),
                         runs=args.repeat, alternating=True, peer=bool(peers))
    s.start()
    return s


def medians(rows):
    """medians -- (backends, sizes, ops, {(backend, N, op): median seconds},
    {(backend, N, op): [seconds per run]}) from the recorded runs."""
    backends, sizes, ops, runs = [], [], [], {}
    for b, n, res in rows:
        for lst, x in ((backends, b), (sizes, n)):
            if x not in lst:
                lst.append(x)
        for op, sec in res.items():
            if op not in ops:
                ops.append(op)
            runs.setdefault((b, n, op), []).append(sec)
    return backends, sizes, ops, {k: statistics.median(v) for k, v in runs.items()}, runs


def target_text(val, runs):
    """target_text -- each target's ratio (medians), its range over the
    repeats' own ratios, or why it was not measured; one line each (a
    backend the run left out is not mentioned)."""
    lines = []
    for ours, op, n, goal in TARGETS:
        if ours == "vm-table-cc" and not any(k[0] == ours for k in val):
            continue
        j, v = val.get(("json", n, op)), val.get((ours, n, op))
        what = "synchronous insert at N = %d, %s vs JSONStorage" % (n, ours)
        if not j or not v:
            lines.append("%s: not measured in this run (needs N = %d and both backends)" % (what, n))
            continue
        per = [a / b for a, b in zip(runs[("json", n, op)], runs[(ours, n, op)]) if b]
        lines.append("%s: %s per insert against %s, **%.0fx** (repeats %.0fx-%.0fx), target >= %dx: %s"
                     % (what, fmt(v), fmt(j), j / v, min(per), max(per), goal,
                        "met" if j / v >= goal else "NOT met"))
    return "\n\n".join(lines)


def fmt(sec):
    if sec is None:
        return "-"
    return "%.2f s" % sec if sec >= 1 else "%.2f ms" % (sec * 1e3) if sec >= 1e-3 \
        else "%.1f µs" % (sec * 1e6)


def publish(s, rows, rc, tag="tinydb"):
    """publish -- close the session and, when it allows, write the table
    and the plot; the benchmark's exit code (3 when refused)."""
    if not rows:
        return s.finish() and rc or (rc or 3)
    backends, sizes, ops, val, runs = medians(rows)
    target = target_text(val, runs)
    print(target.replace("**", ""))
    if not s.finish():
        return rc or 3
    if not s.out:
        return rc
    nrep = max(len(v) for v in runs.values())
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
            "Time per operation, median of %d repeat(s), every backend once per repeat "
            "in alternating order (speedup over JSONStorage). json, memory and vm-storage "
            "run -k operations of each kind per repeat (JSONStorage rewrites its whole "
            "file on every insert and update), vm-table and vm-relaxed --kfast inserts, "
            "gets and updates; a cell is the mean per operation. VolipMem's %s.\n\n"
            % (nrep, benchenv.pmem_standin())
            + target + "\n\n" + "\n".join(md))
    s.plot(os.path.join("img", tag + ".png"),
           "TinyDB: time per operation by backend and database size N (median of %d)" % nrep,
           [(op, backends, [("N=%d" % n, [val.get((b, n, op)) for b in backends])
                            for n in sizes]) for op in ops],
           "seconds per op (log)")
    return rc
