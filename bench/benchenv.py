# SPDX-License-Identifier: MIT
"""benchenv -- what every bench/ runner records about the machine, and the
gate that keeps runs taken on a busy machine out of docs/.

A figure is only worth publishing when nothing else ran beside it, so each
runner opens a Session before its first measurement and closes it after its
last one.  The session records:

  * the load average (1, 5, 15 min) at the start and at the end,
  * the CPU time the rest of the machine used while the runner ran (busy
    time in /proc/stat minus the runner's own and its children's CPU time,
    per core) -- the end's load average counts the benchmark itself, so
    this is what says whether something else was running,
  * nproc, the kernel, the CPU model, the commit of the tree,
  * the machine's raw costs: the `env_*` rows of `bench_core env`, run with
    VOLIPMEM_FORCE_PMEM=1.

Publishing is writing into docs/ (the repository's docs/ directory, or
VP_BENCH_DOCS_DIR).  A session that publishes refuses, before the first
measurement, when the start load exceeds LIMIT (0.3) per core or the runner
takes medians of fewer than 3 runs, and refuses at the end when the others'
load exceeded it; nothing is then written into docs/.  --force writes
anyway and stamps every output "taken at load X (over the 0.3/core
limit)".  Outputs outside docs/ are written whatever the load, stamped the
same way when it was over the limit.

Every file a runner writes through the session starts with a header naming
the command that produced it, the loads and the env rows; plots carry the
load in their title.

For tests the load is injectable: VP_BENCH_LOADAVG="1 5 15" replaces
/proc/loadavg at the start and at the end (VP_BENCH_LOADAVG_END, when set,
at the end), and the others' load is then the injected end 1-minute load.

Python 3 standard library only (Debian's /usr/bin/python3).
"""
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time

LIMIT = 0.3          # load per core above which no run is published
MIN_RUNS = 3         # medians of at least this many runs
HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)


def add_args(ap, out=True, out_default=None):
    """add_args -- the options every runner shares (--force, and --out
    unless the runner has its own)."""
    if out:
        ap.add_argument("--out", default=out_default,
                        help="write the table, data and plot under this directory "
                        "(docs = publish; default: print only)")
    ap.add_argument("--force", action="store_true",
                    help="write into docs/ even above %.1f load per core or with "
                    "fewer than %d runs (the output is stamped)" % (LIMIT, MIN_RUNS))


def read_loadavg(which="start"):
    """read_loadavg -- (1, 5, 15 min) load, from /proc/loadavg or the
    injected VP_BENCH_LOADAVG[_END]."""
    fake = os.environ.get("VP_BENCH_LOADAVG_END") if which == "end" else None
    fake = fake or os.environ.get("VP_BENCH_LOADAVG")
    if fake:
        v = [float(x) for x in fake.split()]
        return tuple((v + v[-1:] * 3)[:3])
    with open("/proc/loadavg") as f:
        return tuple(float(x) for x in f.read().split()[:3])


def cpu_busy_seconds():
    """cpu_busy_seconds -- user+nice+system time of all CPUs (/proc/stat),
    and steal time, in seconds."""
    hz = os.sysconf("SC_CLK_TCK")
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:]]
    steal = v[7] if len(v) > 7 else 0
    return (v[0] + v[1] + v[2]) / hz, steal / hz


def own_cpu_seconds():
    """own_cpu_seconds -- CPU time of this process and its waited-for
    children (servers and benchmark programs)."""
    t = os.times()
    return t.user + t.system + t.children_user + t.children_system


def cpu_model():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return "unknown CPU"


def find_bench_core(build_dir=None):
    """find_bench_core -- the built bench_core: VP_BENCH_CORE, then
    BUILD/bench/core/bench_core, then the tree's build/."""
    cands = [os.environ.get("VP_BENCH_CORE")]
    for b in (build_dir, os.path.join(ROOT, "build")):
        if b:
            cands.append(os.path.join(b, "bench", "core", "bench_core"))
    for c in cands:
        if c and os.access(c, os.X_OK):
            return c
    return None


def env_rows(exe):
    """env_rows -- [(name, value)] from `bench_core env`, or an error text."""
    if not exe:
        return "bench_core not found (build it, or set VP_BENCH_CORE)"
    e = dict(os.environ, VOLIPMEM_FORCE_PMEM="1")
    e.pop("VOLIPMEM_TRACKER", None)
    r = subprocess.run([exe, "env"], env=e, capture_output=True, text=True, timeout=120)
    if r.returncode != 0:
        return "%s env failed (exit %d): %s" % (exe, r.returncode, r.stderr.strip()[-200:])
    rows = [tuple(l.split()) for l in r.stdout.splitlines() if l.startswith("env_")]
    return rows or "%s env printed no env_ rows" % exe


def pmem_standin():
    """pmem_standin -- VOLIPMEM_FORCE_PMEM=1 for this process and the ones
    it starts, unless the caller set it: a pool on /dev/shm stands in for
    PMEM (non-temporal copies, cache-line flushes, sfence), as in bench/core
    and bench/hashmap, not the file medium (plain copies, msync at every
    drain, which tmpfs answers without writing anything).  Returns a phrase
    naming the medium in effect, for the runner's header."""
    v = os.environ.setdefault("VOLIPMEM_FORCE_PMEM", "1")
    on = v.strip().lower() not in ("", "0", "no", "off", "false")
    return ("pools as PMEM (VOLIPMEM_FORCE_PMEM=%s)" % v if on else
            "pools on the file medium (VOLIPMEM_FORCE_PMEM=%s: msync at each drain)" % v)


def git_commit():
    try:
        r = subprocess.run(["git", "-C", ROOT, "rev-parse", "--short", "HEAD"],
                           capture_output=True, text=True, timeout=10)
        dirty = subprocess.run(["git", "-C", ROOT, "status", "--porcelain", "-uno"],
                               capture_output=True, text=True, timeout=10).stdout.strip()
        return r.stdout.strip() + ("+changes" if dirty else "") if r.returncode == 0 else "?"
    except OSError:
        return "?"


def docs_dir():
    """docs_dir -- the directory writing into which publishes."""
    return os.path.realpath(os.environ.get("VP_BENCH_DOCS_DIR") or os.path.join(ROOT, "docs"))


def is_docs(path):
    """is_docs -- whether writing under path publishes (it is in docs/)."""
    p, d = os.path.realpath(path), docs_dir()
    return p == d or p.startswith(d + os.sep)


class Session:
    """One benchmark run: what the machine was doing, and whether its
    results may be written where the runner was asked to write them."""

    def __init__(self, name, out=None, force=False, build_dir=None, runs=None,
                 alternating=True, peer=True):
        self.name = name
        self.out = out
        self.force = force
        self.publish = bool(out) and is_docs(out)
        self.runs = runs
        self.alternating = alternating
        self.peer = peer
        self.ncpu = os.cpu_count() or 1
        self.command = " ".join([os.path.relpath(os.path.abspath(sys.argv[0]), ROOT)] +
                                sys.argv[1:])
        self.core = find_bench_core(build_dir)
        self.end = None
        self.others = None
        self.notes = []
        self.problems = []     # found by the runner before start()

    # -- start and end ------------------------------------------------------

    def start(self):
        """start -- record the machine before the first measurement; exit 3
        when publishing and the machine or the method does not qualify."""
        self.t0 = time.time()
        self.load0 = read_loadavg("start")
        self.env = env_rows(self.core)
        self.kernel = platform.release()
        self.commit = git_commit()
        problems = list(self.problems)
        if self.load0[0] > LIMIT * self.ncpu:
            problems.append("load %.2f at the start is over the %.1f/core limit "
                            "(%.2f on %d cores)" % (self.load0[0], LIMIT,
                                                    LIMIT * self.ncpu, self.ncpu))
        if self.runs is not None and self.runs < MIN_RUNS:
            problems.append("medians of %d run(s), fewer than %d" % (self.runs, MIN_RUNS))
        if not self.alternating:
            problems.append("the runner does not alternate peer and ours within each run")
        if isinstance(self.env, str):
            problems.append("no env rows: " + self.env)
        if not self.gate(problems):
            sys.exit(3)
        print(self.header_text("# "), flush=True)
        self.busy0, self.steal0 = cpu_busy_seconds()
        self.own0 = own_cpu_seconds()

    def finish(self):
        """finish -- record the machine after the last measurement; return
        False (and say why) when publishing and it was not idle."""
        busy, steal = cpu_busy_seconds()
        own = own_cpu_seconds()
        wall = max(1e-3, time.time() - self.t0)
        self.end = read_loadavg("end")
        if os.environ.get("VP_BENCH_LOADAVG"):
            self.others = self.end[0]
        else:
            self.others = max(0.0, (busy - self.busy0) - (own - self.own0)) / wall
        self.steal = (steal - self.steal0) / wall
        problems = []
        if self.others > LIMIT * self.ncpu:
            problems.append("the rest of the machine used %.2f cores during the run, "
                            "over the %.1f/core limit" % (self.others, LIMIT))
        print("# end: " + self.load_text(), flush=True)
        return self.gate(problems)

    def gate(self, problems):
        """gate -- False when publishing is refused (problems and no
        --force); note every problem so that any output says it."""
        for p in problems:
            if p not in self.notes:
                self.notes.append(p)
        if not problems or not self.publish:
            return True
        if self.force:
            print("%s: --force: writing into %s although %s" %
                  (self.name, self.out, "; ".join(problems)), file=sys.stderr)
            return True
        msg = ("%s: not writing into %s: %s. Benchmark with nothing else running, "
               "or pass --force (the output is then stamped), or --out elsewhere."
               % (self.name, self.out, "; ".join(problems)))
        print(msg, file=sys.stderr)
        return False

    # -- what the outputs say -------------------------------------------------

    def worst_load(self):
        return max(self.load0[0], self.others if self.others is not None else 0.0)

    def over(self):
        return self.worst_load() > LIMIT * self.ncpu

    def stamp(self):
        """stamp -- the warning a run over the limit carries everywhere."""
        if self.over():
            return "taken at load %.2f (over the %.1f/core limit)" % (self.worst_load(), LIMIT)
        return ""

    def load_text(self):
        """load_text -- both load averages and the others' share."""
        s = "load %.2f %.2f %.2f at the start" % self.load0
        if self.end:
            s += ", %.2f %.2f %.2f at the end" % self.end
        s += " (1/5/15 min, %d cores, limit %.1f/core)" % (self.ncpu, LIMIT)
        if self.others is not None:
            s += "; the rest of the machine used %.2f cores during the run" % self.others
            if self.steal > 0.01:
                s += ", steal %.2f" % self.steal
        return s

    def env_text(self):
        if isinstance(self.env, str):
            return self.env
        return ", ".join("%s %s" % r for r in self.env)

    def header_lines(self):
        """header_lines -- what every output starts with: the stamp if
        over the limit, the command, machine, loads, env rows, method."""
        lines = []
        if self.stamp():
            lines.append("WARNING: " + self.stamp())
        lines += [
            "command: %s   (%s, tree at %s)" % (self.command,
                                               time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(self.t0)),
                                               self.commit),
            "machine: %s, %d cores, kernel %s" % (cpu_model(), self.ncpu, self.kernel),
            self.load_text(),
            "raw costs (bench_core env, VOLIPMEM_FORCE_PMEM=1): " + self.env_text(),
        ]
        method = []
        if self.runs is not None:
            method.append("medians of %d runs" % self.runs if self.runs > 1
                          else "one run (no median)")
        if self.peer:
            method.append("peer and ours alternating in the same run" if self.alternating
                          else "peer and ours NOT alternated")
        else:
            method.append("no peer measured")
        lines.append("method: " + ", ".join(method))
        for n in self.notes:
            if n not in lines[0]:
                lines.append("note: " + n)
        return lines

    def header_text(self, prefix):
        return "\n".join(prefix + l for l in self.header_lines())

    # -- writing ---------------------------------------------------------------

    def path(self, rel):
        """path -- where rel goes under --out (its directory created)."""
        p = os.path.join(self.out, rel)
        os.makedirs(os.path.dirname(p), exist_ok=True)
        return p

    def write(self, rel, body, prefix="> ", first=None):
        """write -- body under --out/rel, after the header (each header line
        starts with prefix: "> " for markdown, "# " for text)."""
        if not self.out:
            return None
        p = self.path(rel)
        with open(p, "w") as f:
            if first is None:
                first = self.header_text(prefix) + ("\n" if prefix.startswith(">") else "")
            f.write(first + "\n")
            f.write(body if body.endswith("\n") else body + "\n")
        print("wrote %s" % p)
        return p

    def write_jsonl(self, rel, body):
        """write_jsonl -- JSON lines under --out/rel, the header first as
        {"session": [its lines]} (readers skip it)."""
        return self.write(rel, body, prefix=None, first=json.dumps({"session": self.header_lines()}))

    def plot(self, rel, title, panels, ylabel, logy=True, layout=None, size="1600,1100"):
        """plot -- a PNG of clustered bars under --out/rel with the load in
        its title; see plot_bars for panels."""
        if not self.out:
            return None
        load = self.stamp() or "load %.2f/core at start" % (self.load0[0] / self.ncpu)
        return plot_bars(self.path(rel), "%s\\n%s, %s" % (title, load, self.commit),
                         panels, ylabel, logy, layout, size)


def has_cairo(gp):
    """has_cairo -- whether this gnuplot has the pngcairo terminal."""
    r = subprocess.run([gp, "-e", "set terminal"], capture_output=True, text=True)
    return "pngcairo" in (r.stdout + r.stderr)


def plot_bars(png, title, panels, ylabel, logy=True, layout=None, size="1600,1100"):
    """plot_bars -- one gnuplot PNG, one panel per (panel_title, series,
    rows) with rows = [(x label, [value per series or None])], drawn as
    clustered bars.  Returns the path, or None without gnuplot."""
    gp = shutil.which("gnuplot")
    if not gp:
        print("gnuplot not found: no plot")
        return None
    tmp = tempfile.mkdtemp(prefix="vp-plot-")
    if layout is None:
        cols = 1 if len(panels) == 1 else 2
        layout = ((len(panels) + cols - 1) // cols, cols)
    s = ["set terminal pngcairo size %s font 'sans,10'" % size if has_cairo(gp)
         else "set terminal png size %s" % size,
         "set termoption noenhanced", "set output '%s'" % png,
         "set multiplot layout %d,%d title \"%s\"" % (layout[0], layout[1], title.replace('"', "'")),
         "set style data histograms", "set style histogram clustered gap 1",
         "set style fill solid 0.85 border -1", "set boxwidth 0.9",
         "set ylabel '%s'" % ylabel, "set grid ytics",
         "set key outside right top vertical font ',9'",
         "set format y '%.0s%c'", "set offsets 0.4, 0.4, 0, 0",
         "set xtics rotate by -20"]
    s += ["set logscale y"] if logy else ["set yrange [0:*]"]
    for i, (ptitle, series, rows) in enumerate(panels):
        dat = os.path.join(tmp, "p%d.dat" % i)
        with open(dat, "w") as f:
            f.write("# x " + " ".join(series) + "\n")
            for label, vals in rows:
                f.write(" ".join(['"%s"' % label] + ["NaN" if v is None or (logy and v <= 0)
                                                     else repr(float(v)) for v in vals]) + "\n")
        s.append("set title '%s'" % ptitle.replace("'", ""))
        s.append("plot " + ", ".join("'%s' using %d:xtic(1) title '%s'" % (dat, j + 2, name)
                                     for j, name in enumerate(series)))
    s.append("unset multiplot")
    gpf = os.path.join(tmp, "plot.gp")
    with open(gpf, "w") as f:
        f.write("\n".join(s) + "\n")
    try:
        subprocess.run([gp, gpf], check=True)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print("plot written to %s" % png)
    return png
