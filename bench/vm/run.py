#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""run.py -- run bench_vm RUNS times inside the qemu guest (one boot per
run, through tests/vm/kvm-guest.sh, one vCPU) and RUNS times on this
machine directly, and write OUT/bench-vm.md (and OUT/img/bench-vm.png):
medians of the runs' medians per event, the mechanisms side by side, and
the ratios vm-x / uffd and vm-x / mprotect. Builds nothing: build bench_vm
first.

    /usr/bin/python3 bench/vm/run.py --build-dir build-benchvm [--runs 5]
        [--vm-cache build-vm612] [--host-only] [--out docs] [--force]

OUT defaults to docs/, which bench/benchenv.py guards: nothing is written
there from a machine over 0.3 load per core unless --force, and the page
starts with the session's header (command, loads, raw costs).
--host-only skips the guest, as does a qemu harness that is not set up
(kvm-guest.sh exit 77): the page then has the host's rows only and says
so. On a host whose /dev/kvm libvolimem refuses (kvm-pvm) the host's VM
rows are "unavailable", and the runner says that too.

--vm-cache is passed to kvm-guest.sh as VP_VM_CACHE (a guest kernel set
up by scripts/setup-vm.sh with VP_VM_KERNEL_PKG); the default cache's
Debian 6.1 kernel has no UFFD_FEATURE_WP_ASYNC / PAGEMAP_SCAN (Linux 6.7),
so its uffd rows are "unavailable".
"""
import argparse, os, re, statistics, subprocess, sys, time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
import benchenv  # noqa: E402

SRC = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
ROW = re.compile(r"^event=(\S+) mech=(\S+) ns=(\S+) n=(\d+)(?: range_mib=(\d+))?")
UNAV = re.compile(r"^unavailable: mech=(\S+) reason=(.+)$")
MECHS = ["native", "vm", "uffd", "mprotect", "vm-dirty", "vm-wp"]
TRACKERS = ["uffd", "mprotect", "vm-dirty", "vm-wp"]
SIZES = [64, 256]
WRITTEN = [("empty", "nothing written"), ("1p", "1 page written"), ("512p", "512 pages written")]


def parse(out):
    """rows {(event, mech): ns}, unavailable {mech: reason}, info lines."""
    rows, unav, info = {}, {}, []
    for line in out.splitlines():
        m = ROW.match(line)
        if m:
            rows[(m[1], m[2])] = float(m[3])
        m = UNAV.match(line)
        if m:
            unav[m[1]] = m[2].strip()
        if line.startswith("info:") or line.startswith("error:"):
            info.append(line)
    return rows, unav, info


def run_host(exe):
    p = subprocess.run([exe], capture_output=True, text=True, timeout=300)
    if p.returncode != 0:
        sys.exit(f"run.py: {exe} on the host exited {p.returncode}:\n{p.stdout}{p.stderr}")
    return p.stdout


def run_guest(exe, cache, timeout):
    """run_guest -- (output, wall s) of bench_vm in a qemu guest, or (None,
    why) when the harness is not set up (kvm-guest.sh exit 77)."""
    env = dict(os.environ, VP_VM_SMP="1")
    if cache:
        env["VP_VM_CACHE"] = cache
    cmd = ["bash", os.path.join(SRC, "tests/vm/kvm-guest.sh"), "--timeout", str(timeout), "--", exe]
    t0 = time.time()
    p = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=timeout + 60)
    out = p.stdout + p.stderr
    if p.returncode == 77:
        return None, "the qemu harness is not set up (" + " ".join(
            l for l in out.splitlines() if "SKIP" in l).strip() + ")"
    if p.returncode != 0:
        sys.exit(f"run.py: {' '.join(cmd)} exited {p.returncode}:\n{out}")
    return out, time.time() - t0


def host_kvm():
    """What this machine's KVM is, as libvolimem sees it (src/vm/host.c)."""
    pvm, dev = os.path.exists("/sys/module/kvm_pvm"), os.path.exists("/dev/kvm")
    if pvm:
        return ("a kvm-pvm host (shadow paging under the cloud's hypervisor) "
                + ("whose `/dev/kvm` libvolimem refuses" if dev else "with no `/dev/kvm`"))
    return "a host with a `/dev/kvm`" if dev else "a host with no `/dev/kvm`"


def fmt_ns(v):
    if v is None:
        return "–"
    if v >= 1e6:
        return f"{v / 1e6:.2f} ms"
    if v >= 1e4:
        return f"{v / 1e3:.0f} µs"
    if v >= 1e3:
        return f"{v / 1e3:.2f} µs"
    return f"{v:.0f} ns"


def fmt_ratio(a, b):
    if a is None or b is None or not b:
        return "–"
    r = a / b
    return f"{r:.3g}×" if r < 100 else f"{r:,.0f}×"


class Side:
    """One environment (guest or host): its runs' rows, medians, spreads."""

    def __init__(self, outs):
        self.runs = [parse(o) for o in outs]
        self.unav = {}
        self.info = []
        for _, u, info in self.runs:
            self.unav.update(u)
        self.info = self.runs[0][2] if self.runs else []

    def values(self, event, mech):
        return [r[(event, mech)] for r, _, _ in self.runs if (event, mech) in r]

    def med(self, event, mech):
        v = self.values(event, mech)
        return statistics.median(v) if v else None

    def cell(self, event, mech, per_gib=None):
        """median of the runs (and their range), or why the mechanism is missing."""
        v = self.values(event, mech)
        if not v:
            return "unavailable" if mech in self.unav else "–"
        m = statistics.median(v)
        s = fmt_ns(m)
        if len(v) > 1:
            s += f" ({fmt_ns(min(v))}–{fmt_ns(max(v))})"
        if per_gib:
            s += f"; {m / 1e6 * 1024 / per_gib:.3g} ms/GiB"
        return s


def tables(side, md, title):
    md.append(f"### {title}\n")
    md.append("Cells: median of the runs' medians (lowest–highest run in parentheses). "
              "Ratios are of the medians; \"unavailable\" is explained under the tables.\n")
    # 1. system call round trip
    md.append("#### `getppid` round trip\n")
    md.append("| native (before `vm_enter`) | forwarded (in the guest) | forwarded / native |")
    md.append("|---|---|---|")
    md.append(f"| {side.cell('getppid', 'native')} | {side.cell('getppid', 'vm')} | "
              f"{fmt_ratio(side.med('getppid', 'vm'), side.med('getppid', 'native'))} |\n")
    # 2. first write
    md.append("#### First write to a clean, populated page of the tracked range\n")
    md.append("| no tracker (native) | uffd | mprotect | vm-dirty | vm-wp | vm-dirty / uffd | "
              "vm-wp / uffd | vm-dirty / mprotect | vm-wp / mprotect |")
    md.append("|---|---|---|---|---|---|---|---|---|")
    e = "first-write"
    md.append("| " + " | ".join([side.cell(e, m) for m in ["native"] + TRACKERS] +
                               [fmt_ratio(side.med(e, v), side.med(e, h))
                                for h in ("uffd", "mprotect") for v in ("vm-dirty", "vm-wp")]) + " |\n")
    # 3. collect, one table per event
    for w, what in WRITTEN:
        md.append(f"#### Collect + re-arm, {what} since the previous collect (per call)\n")
        md.append("| range | uffd | mprotect | vm-dirty | vm-wp | vm-dirty / uffd | vm-wp / uffd | "
                  "vm-dirty / mprotect | vm-wp / mprotect |")
        md.append("|---|---|---|---|---|---|---|---|---|")
        for mib in SIZES:
            e = f"collect-{w}-{mib}m"
            md.append(f"| {mib} MiB | " + " | ".join(
                [side.cell(e, m, mib) for m in TRACKERS] +
                [fmt_ratio(side.med(e, v), side.med(e, h))
                 for h in ("uffd", "mprotect") for v in ("vm-dirty", "vm-wp")]) + " |")
        growth = []
        for m in TRACKERS:
            a, b = side.med(f"collect-{w}-64m", m), side.med(f"collect-{w}-256m", m)
            growth.append(fmt_ratio(b, a))
        md.append("| 256 MiB / 64 MiB (1× flat, 4× linear) | " + " | ".join(growth) + " | | | | |\n")
    if side.unav:
        md.append("Unavailable here:\n")
        for m, why in side.unav.items():
            md.append(f"* `{m}`: {why}")
        md.append("")


def measure(a, exe, cache):
    """measure -- RUNS × (a guest boot running bench_vm, then bench_vm
    here): guest outputs, host outputs, boot walls, and why the guest was
    skipped (None when it ran)."""
    guest_outs, host_outs, walls = [], [], []
    skipped = "--host-only" if a.host_only else None
    for r in range(a.runs):
        if not skipped:
            out, wall = run_guest(exe, cache, a.timeout)
            if out is None:
                skipped = wall
            else:
                guest_outs.append(out)
                walls.append(wall)
        host_outs.append(run_host(exe))
        what = f"guest boot + bench {walls[-1]:.1f} s" if not skipped else "host only"
        print(f"run.py: run {r + 1}/{a.runs}: {what}", file=sys.stderr)
    for out in guest_outs:
        if any(l.startswith("error:") for l in out.splitlines()):
            sys.exit("run.py: a guest run reported a wrong write set:\n" + out)
    return guest_outs, host_outs, walls, skipped


def panels(sides):
    """panels -- plot panels (benchenv.plot_bars): per environment, the
    first write and every collect, one bar per tracker that has rows."""
    events = ["first-write"] + [f"collect-{w}-{mib}m" for w, _ in WRITTEN for mib in SIZES]
    out = []
    for title, side in sides:
        mechs = [m for m in TRACKERS if any(side.med(e, m) is not None for e in events)]
        if mechs:
            out.append((title, mechs, [(e, [side.med(e, m) for m in mechs]) for e in events]))
    return out


def page(a, s, guest, host, guest_outs, host_outs, walls, cache, skipped, png, secs):
    """page -- the markdown of bench-vm.md below its header."""
    gkern = "?"
    for line in guest.info:
        m = re.search(r"kernel=(\S+)", line)
        if m:
            gkern = m[1]
            break
    gcpu = "?"
    for out in guest_outs[:1]:
        m = re.search(r"booting (\S+) under qemu TCG -cpu ([^\s;]+)", out)
        if m:
            gcpu = m[2]
    qemu = subprocess.run(["qemu-system-x86_64", "--version"], capture_output=True,
                          text=True).stdout.splitlines()[:1] if guest_outs else []
    uname = os.uname()
    cmdline = f"/usr/bin/python3 bench/vm/run.py --build-dir {os.path.relpath(a.build_dir, SRC)} " \
              f"--runs {a.runs}" + (f" --vm-cache {os.path.relpath(cache, SRC)}" if cache else "") \
              + (" --host-only" if a.host_only else "")
    host_vm = "vm" not in host.unav

    md = []
    md.append(f"Generated by `bench/vm/run.py` ({a.runs} runs, {secs:.0f} s; the header above "
              "names the command, the load and the machine's raw costs); do not edit by hand, "
              "run it again.\n")
    md.append("`bench/vm/bench_vm.c` measures, in one process, the events that decide "
              "what a write-tracking mechanism costs a failure-atomic section: a system call "
              "(libvolimem forwards every one to the host), the first write to a clean page "
              "of the tracked range, and one collect + re-arm of the whole range. "
              "Mechanisms: `uffd` (userfaultfd async write-protect, `UFFD_FEATURE_WP_ASYNC`, "
              "first write handled in the kernel; collect = `PAGEMAP_SCAN` with "
              "`PM_SCAN_WP_MATCHING`, which reports and re-protects in one walk), `mprotect` "
              "(range read-only; a SIGSEGV handler records the page and makes it writable; "
              "collect = `mprotect(PROT_READ)` of the whole range), and libvolimem's "
              "`vm-dirty` (D bits in the guest page table, no fault; collect scans the PTEs of "
              "the 2 MiB regions whose PDE was accessed) and `vm-wp` (read-only guest PTEs, an in-guest #PF handler, "
              "no exit; collect walks a bitmap of recorded pages), each collect being one "
              "hypercall (an exit to the host side of the process). The host mechanisms run "
              "first, natively, in the same process, then `vm_enter`; one VM per (mode, "
              "range) since libvolimem tracks one range per VM. Ranges are private anonymous, "
              "`MADV_NOHUGEPAGE`, populated before arming (a heap in use). First writes are "
              "timed in batches of 64 pages (the median of 64 batch means); a collect is "
              "timed per call (median of 15), with 0, 1 or 512 pages written, spread over "
              "the range, since the previous one. Every collect's count is checked against "
              "the pages written.\n")
    md.append("## Read this first\n")
    if skipped:
        md.append(f"* **Host rows only**: the qemu guest was not run ({skipped})"
                  + ("; on this host the VM rows are unavailable too, so `vm-dirty` and "
                     "`vm-wp` have no figures here." if not host_vm else "."))
    if guest_outs:
        md.append("* **These are not hardware numbers.** The VM rows come from inside a qemu "
                  "**TCG** guest: every guest instruction, the guest kernel's and the nested "
                  "guest's, is emulated by QEMU, and nested SVM (#VMEXIT, VMRUN, NPT walks) is "
                  "QEMU's model. Exits are 30–100× and CPU-bound code 10–20× slower than on "
                  "silicon (docs/VM.md). Use the numbers for the *shape* (what is flat, what grows "
                  "with the range or with the pages written, which event dominates) and for "
                  "mechanism-against-mechanism ratios inside the same environment, never as "
                  "absolute costs.")
        md.append("* **Guest rows compare mechanisms within the same guest kernel.** In the "
                  "guest table, `uffd`, `mprotect` and `native` run in the qemu guest's own "
                  "kernel (natively in that kernel, before `vm_enter`), and `vm-*` run one "
                  "level deeper under that kernel's KVM; so every column pays the same "
                  "emulation. The host table is this machine's kernel, for reference: "
                  f"{host_kvm()}"
                  + (", where the VM rows are unavailable and every page-table change is "
                     "expensive." if os.path.exists("/sys/module/kvm_pvm") else "."))
        md.append("* The guest's `clock_gettime` ran in the vDSO (no exit) in these runs: "
                  "timings inside the VM carry no forwarded call." if any(
                      "runs in the vDSO" in l for l in guest.info) else
                  "* **The guest's `clock_gettime` was forwarded**: each timing inside the VM "
                  "includes one forwarded system call.")
    md.append("")
    md.append("## Machine and command\n")
    md.append(f"* Host: {benchenv.cpu_model()}, {os.cpu_count()} CPUs (nproc), kernel "
              f"`{uname.release}`, {host_kvm()}.")
    if guest_outs:
        md.append(f"* Guest: inside qemu TCG `-cpu {gcpu}` guest ({qemu[0] if qemu else 'qemu'}), "
                  f"1 vCPU (`VP_VM_SMP=1`), 1 GiB, kernel `{gkern}`, nested KVM with AMD SVM+NPT "
                  f"(`kvm_amd npt=Y`); one boot per run, {min(walls):.0f}–{max(walls):.0f} s "
                  "each (boot + bench).")
    if cache and guest_outs:
        md.append(f"* Guest kernel cache: `{os.path.relpath(cache, SRC)}`, set up with "
                  f"`VP_VM_CACHE={os.path.relpath(cache, SRC)} "
                  f"VP_VM_KERNEL_PKG=linux-image-{gkern} bash scripts/setup-vm.sh` (as root): "
                  "the default cache's Debian 6.1 kernel lacks `UFFD_FEATURE_WP_ASYNC` and "
                  "`PAGEMAP_SCAN` (Linux 6.7), so `uffd` would be unavailable in the guest.")
    md.append("")
    md.append("```sh")
    md.append("cmake -S . -B build-benchvm -DCMAKE_BUILD_TYPE=Release")
    md.append("cmake --build build-benchvm -j2 --target bench_vm")
    md.append(cmdline)
    md.append("build-benchvm/bench/vm/bench_vm            # one run here, table at the end")
    md.append("```\n")
    md.append("## Results\n")
    if png:
        md.append(f"![first write and collect + re-arm per tracker]({os.path.relpath(png, a.out)})\n")
    if guest_outs:
        tables(guest, md, f"In the qemu guest (kernel {gkern}): all mechanisms")
    tables(host, md, f"On the host directly (kernel {uname.release})"
           + ("" if host_vm else ": VM rows unavailable"))
    md.append("## What each collect does (by construction, not measured)\n")
    md.append("* `uffd`: `PAGEMAP_SCAN` walks every PTE of the range (linear in the range), "
              "and re-protects the written ones with a TLB flush per page-table page that "
              "had one: likely why 512 written pages add about 4× more over 256 MiB (128 "
              "page-table pages touched) than over 64 MiB (32).")
    md.append("* `mprotect`: with nothing written the whole range is still one read-only VMA "
              "and `mprotect(PROT_READ)` returns without touching a page table: the flat "
              "\"empty\" row is the syscall alone, not a scan. Each page written made the "
              "handler split the VMA (`mprotect` of one page to read-write), so the re-arm "
              "merges 2N+1 VMAs and changes N PTEs: it grows with the pages written (in the "
              "guest hardly with the range). Its first write is a signal delivery + `mprotect` + return.")
    md.append("* `vm-dirty`: one hypercall (an exit, about a forwarded syscall's cost) plus "
              "one read of the page-directory entry of each 2 MiB region and a scan of the "
              "512 PTEs of each region whose PDE has A set (a translation was made through "
              "it since the last collect), then a shootdown: flat when little was touched, "
              "a full PTE scan when writes are spread over every region (the 512-page rows).")
    md.append("* `vm-wp`: one hypercall plus a walk of the bitmap of recorded pages (one bit "
              "per page, so nearly flat) and a PTE write per recorded page, then a CR3 reload.")
    md.append("* A THP-backed range changes the picture for the host mechanisms: without "
              "`MADV_NOHUGEPAGE` (the qemu guest's 6.12 kernel has THP `always`) a first "
              "run measured `uffd`'s empty collect of 256 MiB faster than that of 64 MiB "
              "(one entry per 2 MiB), and a first write to a write-protected huge page splits it "
              "into 4 KiB PTEs (as does `mprotect` of one page of it).\n")
    raw, where = (guest_outs, "guest") if guest_outs else (host_outs, "host")
    md.append(f"## One run's raw output ({where}, run 1)\n")
    md.append("```")
    md.extend(l for l in raw[0].splitlines()
              if ROW.match(l) or UNAV.match(l) or l.startswith("info:") or l.startswith("kvm-guest.sh:"))
    md.append("```")
    return md


TITLE = "# bench_vm: per-event costs of the write-tracking mechanisms\n"


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--build-dir", required=True)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--vm-cache", default=None, help="VP_VM_CACHE for kvm-guest.sh")
    ap.add_argument("--timeout", type=int, default=600, help="per guest boot, s")
    ap.add_argument("--host-only", action="store_true",
                    help="do not boot the qemu guest: the host's rows only")
    ap.add_argument("--out", default=os.path.join(SRC, "docs"),
                    help="write bench-vm.md and img/bench-vm.png under this directory "
                    "(default docs/: publish)")
    benchenv.add_args(ap, out=False)
    a = ap.parse_args()
    if a.out.endswith(".md"):
        sys.exit(f"run.py: --out {a.out}: --out names a directory (the page is OUT/bench-vm.md)")
    exe = os.path.abspath(os.path.join(a.build_dir, "bench", "vm", "bench_vm"))
    if not os.access(exe, os.X_OK):
        sys.exit(f"run.py: no {exe}: build it first (cmake --build {a.build_dir} --target bench_vm)")
    cache = os.path.abspath(a.vm_cache) if a.vm_cache else None

    # The peer (native, uffd, mprotect) and ours (vm-dirty, vm-wp) are
    # measured in the same bench_vm process of every run, one after the other.
    s = benchenv.Session("bench/vm", a.out, a.force, a.build_dir, runs=a.runs)
    s.start()
    t_start = time.time()
    guest_outs, host_outs, walls, skipped = measure(a, exe, cache)
    secs = time.time() - t_start
    ok = s.finish()
    guest, host = Side(guest_outs), Side(host_outs)
    if skipped:
        s.notes.append(f"host rows only: the qemu guest was not run ({skipped})")
        print(f"run.py: host rows only: the qemu guest was not run ({skipped})", file=sys.stderr)
    if "vm" in host.unav:
        print(f"run.py: on this host the VM rows are unavailable: {host.unav['vm']}",
              file=sys.stderr)
    sides = ([("in the qemu guest, ns", guest)] if guest_outs else []) + [("on the host, ns", host)]
    png = None
    if ok:
        png = s.plot(os.path.join("img", "bench-vm.png"),
                     f"bench_vm: first write and collect + re-arm, medians of {a.runs} runs",
                     panels(sides), "ns (log)", layout=(1, len(sides)),
                     size="%d,600" % (800 * len(sides)))
    md = page(a, s, guest, host, guest_outs, host_outs, walls, cache, skipped, png, secs)
    body = "\n".join(md) + "\n"
    print(body[body.index("## Results"):body.index("## What each collect")], end="")
    if ok:
        s.write("bench-vm.md", body, first=TITLE + "\n" + s.header_text("> ") + "\n")
    return 0 if ok else 3


if __name__ == "__main__":
    sys.exit(main())
