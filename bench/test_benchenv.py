#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""test_benchenv.py -- the load gate of bench/benchenv.py, through the real
runners at their smallest sizes (CTest bench_env_gate, label bench-smoke).

A temporary directory stands in for docs/ (VP_BENCH_DOCS_DIR) and the load
is injected (VP_BENCH_LOADAVG, VP_BENCH_LOADAVG_END), so the checks hold on
a busy machine as on an idle one.  Checked:
  * a high start load, a high end load, and fewer than 3 runs each make a
    runner exit 3 having written nothing into docs/;
  * --force writes, and every output says "taken at load X (over the
    0.3/core limit)";
  * at a low load the outputs carry the command, the load and the env rows
    and no such stamp;
  * outside docs/ a run is written whatever the load, stamped;
  * each runner's PNG exists and is a PNG when gnuplot is installed;
  * bench/publish.sh stops at the first runner the gate refuses, runs
    nothing after it, and writes nothing.
bench/vm runs with --host-only (a qemu boot per run is too slow here), and
must say so in its output and page; where this host's VM rows are
unavailable (no usable /dev/kvm) it must say that too.
Runners whose prerequisites are missing (PMDK is not needed; TinyDB needs
the Python binding, memcached needs memcached and memcaslap) are named as
not checked in the output.

Usage: test_benchenv.py --build-dir BUILD
"""
import argparse
import os
import shutil
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
STAMP = "over the 0.3/core limit"
failures = []
checked = []


def check(cond, what):
    if cond:
        checked.append(what)
    else:
        failures.append(what)
        print("FAIL: " + what, flush=True)


def files_under(d):
    return sorted(os.path.relpath(os.path.join(r, f), d) for r, _, fs in os.walk(d) for f in fs)


def run(argv, docs, load, end=None, extra_env=None):
    env = dict(os.environ, VP_BENCH_DOCS_DIR=docs, VP_BENCH_LOADAVG=load)
    env.pop("VP_BENCH_LOADAVG_END", None)
    if end:
        env["VP_BENCH_LOADAVG_END"] = end
    env.update(extra_env or {})
    r = subprocess.run([sys.executable] + argv, env=env, capture_output=True, text=True,
                       timeout=300)
    return r.returncode, r.stdout + r.stderr


def is_png(p):
    try:
        with open(p, "rb") as f:
            return f.read(8) == b"\x89PNG\r\n\x1a\n"
    except OSError:
        return False


def gate(name, argv, table, png, extra_env=None, few_runs=None, idle_ok=True):
    """gate -- the checks above for one runner: argv without --out;
    table and png relative to the output directory; few_runs: argv with
    fewer than 3 runs; idle_ok: argv qualifies for docs on an idle machine
    (else it is refused at the start whatever the load)."""
    docs = tempfile.mkdtemp(prefix="vp-benchgate-docs-")
    try:
        rc, out = run(argv + ["--out", docs], docs, "9 9 9", extra_env=extra_env)
        check(rc == 3 and not files_under(docs) and STAMP in out,
              "%s: start load 9 refused, nothing in docs (exit %d, files %s)"
              % (name, rc, files_under(docs)))
        rc, out = run(argv + ["--out", docs], docs, "0.05", "9", extra_env=extra_env)
        check(rc == 3 and not files_under(docs) and
              (not idle_ok or "the rest of the machine used 9.00 cores" in out),
              "%s: end load 9 refused, nothing in docs (exit %d, files %s)"
              % (name, rc, files_under(docs)))
        if few_runs:
            rc, out = run(few_runs + ["--out", docs], docs, "0.05", extra_env=extra_env)
            check(rc == 3 and not files_under(docs) and "fewer than 3" in out,
                  "%s: one run refused (exit %d)" % (name, rc))
        rc, out = run(argv + ["--out", docs, "--force"], docs, "9 9 9", extra_env=extra_env)
        t = os.path.join(docs, table)
        body = open(t).read() if os.path.exists(t) else ""
        check(rc == 0 and "taken at load 9.00 (%s)" % STAMP in body,
              "%s: --force writes %s stamped (exit %d)" % (name, table, rc))
        check("command: " in body and "env_uffd_first_write_ns" in body and "load 9.00" in body,
              "%s: the header names the command, the load and the env rows" % name)
        if shutil.which("gnuplot"):
            check(is_png(os.path.join(docs, png)), "%s: %s is a PNG" % (name, png))
        shutil.rmtree(docs)
        os.makedirs(docs)
        if idle_ok:
            rc, out = run(argv + ["--out", docs], docs, "0.05", extra_env=extra_env)
            body = open(t).read() if os.path.exists(t) else ""
            check(rc == 0 and body and STAMP not in body and "load 0.05" in body,
                  "%s: at load 0.05 written without the stamp (exit %d)" % (name, rc))
        elsewhere = tempfile.mkdtemp(prefix="vp-benchgate-out-")
        rc, out = run(argv + ["--out", elsewhere], docs, "9 9 9", extra_env=extra_env)
        t2 = os.path.join(elsewhere, table)
        check(rc == 0 and os.path.exists(t2) and STAMP in open(t2).read(),
              "%s: outside docs written at load 9, stamped (exit %d)" % (name, rc))
        shutil.rmtree(elsewhere, ignore_errors=True)
    finally:
        shutil.rmtree(docs, ignore_errors=True)


def vm_host_only(argv):
    """vm_host_only -- bench/vm without its guest says so, in its output
    and on its page, and so does a host whose VM rows are unavailable."""
    out_dir = tempfile.mkdtemp(prefix="vp-benchgate-vm-")
    try:
        rc, out = run(argv + ["--out", out_dir], out_dir + "-not-docs", "0.05")
        page = os.path.join(out_dir, "bench-vm.md")
        body = open(page).read() if os.path.exists(page) else ""
        check(rc == 0 and "host rows only" in out and "**Host rows only**" in body
              and "In the qemu guest" not in body,
              "bench/vm: --host-only says host rows only, in its output and page (exit %d)" % rc)
        # The page lists what bench_vm said it could not run ("* `vm`: why").
        if "* `vm`: " in body:
            check("on this host the VM rows are unavailable" in out and
                  "VM rows unavailable" in body,
                  "bench/vm: this host's VM rows unavailable, said in output and page")
        else:
            check("VM rows are unavailable" not in out and "VM rows unavailable" not in body,
                  "bench/vm: this host's VM rows measured, none said unavailable")
    finally:
        shutil.rmtree(out_dir, ignore_errors=True)


def publish_stops(b):
    """publish_stops -- bench/publish.sh at load 9 into a stand-in docs/:
    core is refused before measuring, exit 3, vm never starts."""
    docs = tempfile.mkdtemp(prefix="vp-benchgate-pub-")
    try:
        # VP_PUBLISH_SETTLE=0: the wait for the load reads the real one,
        # which the tests running beside this one (ctest -j2) hold above
        # the limit for longer than this test's timeout.
        env = dict(os.environ, VP_BENCH_DOCS_DIR=docs, VP_BENCH_LOADAVG="9 9 9",
                   VP_PUBLISH_OUT=docs, VP_PUBLISH_BUILD=b, VP_PUBLISH_ONLY="core,vm",
                   VP_PUBLISH_SETTLE="0")
        r = subprocess.run(["bash", os.path.join(HERE, "publish.sh"), "--quick"], env=env,
                           capture_output=True, text=True, timeout=300)
        out = r.stdout + r.stderr
        check(r.returncode == 3 and "STOPPED at core" in out and "publish.sh: vm" not in out
              and not files_under(docs),
              "bench/publish.sh: stops at the refused runner, nothing after it, nothing "
              "written (exit %d, files %s)" % (r.returncode, files_under(docs)))
        env["VP_PUBLISH_ONLY"] = "core,nosuch"
        r = subprocess.run(["bash", os.path.join(HERE, "publish.sh")], env=env,
                           capture_output=True, text=True, timeout=60)
        check(r.returncode == 2 and "unknown runner nosuch" in r.stderr,
              "bench/publish.sh: an unknown runner in VP_PUBLISH_ONLY is refused (exit %d)"
              % r.returncode)
    finally:
        shutil.rmtree(docs, ignore_errors=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--build-dir", required=True)
    a = ap.parse_args()
    b = os.path.abspath(a.build_dir)
    core = os.path.join(b, "bench", "core", "bench_core")
    if not os.access(core, os.X_OK):
        print("bench_core not built at %s" % core)
        return 1
    tmp = tempfile.mkdtemp(prefix="vp-benchgate-")
    try:
        cargs = [os.path.join(HERE, "core", "run.py"), "--build", b, "--parts", "env,empty",
                 "--trackers", "uffd,mprotect"]
        gate("bench/core", cargs + ["--runs", "3"], "data/core.md", "img/core.png",
             few_runs=cargs + ["--runs", "1"])
        hm = os.path.join(b, "bench", "hashmap", "hm_bench_vp")
        if os.access(hm, os.X_OK):
            gate("bench/hashmap", [os.path.join(HERE, "hashmap", "run.py"), "--build-dir", b,
                                   "--keys", "500", "--runs", "3", "--configs",
                                   "volatile,vp-uffd-sync", "--workloads", "insert",
                                   "--threads", "1", "--batches", "1", "--dir", tmp],
                 "data/hashmap-table.md", "img/hashmap.png")
        else:
            print("NOT CHECKED: bench/hashmap (hm_bench_vp not built)")
        vm = os.path.join(b, "bench", "vm", "bench_vm")
        if os.access(vm, os.X_OK):
            vargs = [os.path.join(HERE, "vm", "run.py"), "--build-dir", b, "--host-only"]
            gate("bench/vm", vargs + ["--runs", "3"], "bench-vm.md", "img/bench-vm.png",
                 few_runs=vargs + ["--runs", "1"])
            vm_host_only(vargs + ["--runs", "3"])
        else:
            print("NOT CHECKED: bench/vm (bench_vm not built)")
        pyb = os.path.join(b, "bindings", "python")
        probe = subprocess.run([sys.executable, "-c", "import volipmem, tinydb"],
                               env=dict(os.environ, PYTHONPATH=pyb), capture_output=True)
        if probe.returncode == 0:
            targs = [os.path.join(HERE, "tinydb", "bench_tinydb.py"), "--sizes", "50", "-k", "1",
                     "--kfast", "5", "--backends", "json,vm-table", "--dir", tmp]
            # --out alone: 3 repeats, alternating, so an idle run publishes
            gate("bench/tinydb", targs, "data/tinydb.md", "img/tinydb.png",
                 extra_env={"PYTHONPATH": pyb, "VP_BENCH_CORE": core},
                 few_runs=targs + ["--repeat", "1"])
        else:
            print("NOT CHECKED: bench/tinydb (cannot import volipmem and tinydb from %s)" % pyb)
        vmc = os.path.join(b, "apps", "vmcached", "vmcached")
        if shutil.which("memcached") and shutil.which("memcaslap") and os.access(vmc, os.X_OK):
            margs = [os.path.join(HERE, "memcached", "side_by_side.py"), "--build-dir", b]
            menv = {"VMCACHED": vmc, "VMC_BENCH_SECONDS": "1", "VMC_BENCH_LOADS": "get90-32",
                    "VMC_BENCH_MODES": "1", "VMC_BENCH_REPEAT": "1"}
            # one repeat: refused in docs even when idle, so no low-load check
            gate("bench/memcached", margs, "data/memcached.md", "img/memcached.png",
                 extra_env=menv, few_runs=margs, idle_ok=False)
        else:
            print("NOT CHECKED: bench/memcached (needs memcached, memcaslap and %s)" % vmc)
        publish_stops(b)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print("%d checks passed, %d failed" % (len(checked), len(failures)))
    for c in checked:
        print("  ok: " + c)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
