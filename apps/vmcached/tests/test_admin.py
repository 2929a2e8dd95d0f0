# SPDX-License-Identifier: MIT
"""test_admin -- administrative commands and memcached's start-up options.

Against Debian's memcached with the same options, answers compared:
an HTTP request line closes the connection unanswered; `verbosity` and
`slabs automove` with bad numbers; `cache_memlimit` and its bounds;
`stats cachedump` errors; `-F` (flush_all refused) and `-X` (cachedump
refused). On vmcached alone (memcached's answers depend on its slab
classes and LRU segments): what `stats cachedump` lists, a lowered
`cache_memlimit` that evictions then honour, one past the pool's heap
refused, `stats reset` zeroing the persistent event counters, the
options refused at start (-I over half of -m, -B binary, unknown -o,
-t 0),
-R (a connection yields after N requests) and the chunk figures of
`stats slabs` (pmalloc blocks, rebuilt by the check at every start).
"""
import os
import re
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import vmctest  # noqa: E402

CASES = [
    b"GET / HTTP/1.0\r\n",
    b"PUT /a/b HTTP/1.1\r\nget a\r\n",
    b"DELETE HTTP/1.1\r\n",
    b"GET /\r\n",
    b"verbosity invalid\r\n", b"verbosity x noreply\r\nmn\r\n",
    b"verbosity 1\r\n", b"verbosity -1\r\n",
    b"slabs automove invalid\r\n", b"slabs automove 1\r\n",
    b"slabs automove 0 noreply\r\nmn\r\n", b"slabs automove 3\r\n",
    b"slabs automove\r\n", b"slabs\r\n", b"slabs foo bar\r\n",
    b"cache_memlimit 32\r\n", b"cache_memlimit 7\r\n", b"cache_memlimit 8\r\n",
    b"cache_memlimit 2000000000\r\n", b"cache_memlimit x\r\n",
    b"cache_memlimit\r\n", b"cache_memlimit 1 2 3\r\n",
    b"cache_memlimit 7 noreply\r\nmn\r\n", b"cache_memlimit 64\r\n",
    b"stats cachedump\r\n", b"stats cachedump 1\r\n",
    b"stats cachedump x 1\r\n", b"stats cachedump 1 y\r\n",
    b"stats cachedump 64 1\r\n", b"stats cachedump 4294967296 1\r\n",
    b"stats cachedump 63 0\r\n",
]
F_CASES = [b"set a 0 0 1\r\nx\r\nflush_all\r\nget a\r\n",
           b"flush_all 10\r\n", b"flush_all noreply\r\nmn\r\n",
           b"flush_all x\r\n"]
X_CASES = [b"stats cachedump 1 1\r\n", b"stats cachedump\r\n"]


def compare(chk, args, cases):
    mc = vmctest.start_memcached(args)
    pool = vmctest.pool_path("admin")
    vm = vmctest.start_vmcached(pool, args=args)
    for case in cases:
        want, got = vmctest.request_both(mc.port, vm.port, case, wait=0.2)
        if got != want:   # a slow commit on a loaded machine: replay
            want, got = vmctest.request_both(mc.port, vm.port, case, wait=1.5)
        chk.eq("%s %r" % (" ".join(args), case[:50]), got, want)
    s = vmctest.request(vm.port, b"stats settings\r\n")
    chk.true("stats settings has flush_enabled/dump_enabled",
             re.search(rb"STAT flush_enabled (yes|no)\r\n", s) and
             re.search(rb"STAT dump_enabled (yes|no)\r\n", s), repr(s[:80]))
    chk.eq("vmcached stops cleanly", vm.stop(), 0)
    mc.kill()
    vmctest.remove_pool(pool)


def stat(port, name, sub=b""):
    out = vmctest.request(port, b"stats" + sub + b"\r\n", wait=0.2)
    m = re.search(rb"STAT " + name.encode() + rb" (\S+)\r\n", out)
    return m.group(1).decode() if m else None


def cachedump(chk):
    pool = vmctest.pool_path("dump")
    vm = vmctest.start_vmcached(pool)
    vmctest.request(vm.port, b"set k1 0 0 1\r\na\r\nset k2 0 2000000000 22\r\n"
                    + b"b" * 22 + b"\r\nset k3 0 0 3\r\nccc\r\n"
                    b"set gone 0 -1 1\r\nx\r\nget k1\r\n")
    out = vmctest.request(vm.port, b"stats cachedump 1 0\r\n")
    chk.eq("cachedump lists live items newest first",
           out, b"ITEM k3 [3 b; 0 s]\r\nITEM k2 [22 b; 2000000000 s]\r\n"
           b"ITEM k1 [1 b; 0 s]\r\nEND\r\n")
    out = vmctest.request(vm.port, b"stats cachedump 1 2\r\n")
    chk.eq("cachedump limit", out.count(b"ITEM "), 2)
    out = vmctest.request(vm.port, b"stats cachedump 2 0\r\n")
    chk.eq("cachedump of another class is empty", out, b"END\r\n")
    # a relative exptime is shown as absolute unix seconds, like memcached
    out = vmctest.request(vm.port, b"set r 0 100 1\r\nx\r\nstats cachedump 1 1\r\n")
    m = re.search(rb"ITEM r \[1 b; (\d+) s\]", out)
    now = int(stat(vm.port, "time") or 0)
    chk.true("relative exptime dumped as unix time",
             m and abs(int(m.group(1)) - (now + 100)) <= 2, repr(out))
    vm.stop()
    vmctest.remove_pool(pool)


def memlimit_and_reset(chk):
    pool = vmctest.pool_path("memlimit")
    vm = vmctest.start_vmcached(pool, args=["-m", "32"])
    out = vmctest.request(vm.port, b"cache_memlimit 4096\r\n")
    chk.eq("cache_memlimit past the heap refused", out,
           b"MEMLIMIT_ADJUST_FAILED out of bounds or unable to adjust\r\n")
    chk.eq("refused limit unchanged", stat(vm.port, "limit_maxbytes"),
           str(32 << 20))
    chk.eq("cache_memlimit 8", vmctest.request(vm.port, b"cache_memlimit 8\r\n"),
           b"OK\r\n")
    chk.eq("limit_maxbytes follows", stat(vm.port, "limit_maxbytes"),
           str(8 << 20))
    chk.eq("stats settings maxbytes follows",
           stat(vm.port, "maxbytes", b" settings"), str(8 << 20))
    val = b"v" * 500000
    for i in range(40):
        vmctest.request(vm.port, b"set big%d 0 0 %d noreply\r\n" % (i, len(val))
                        + val + b"\r\n", wait=0.05)
    vmctest.request(vm.port, b"mn\r\n")
    used = int(stat(vm.port, "bytes") or 0)
    ev = int(stat(vm.port, "evictions") or 0)
    chk.true("a lowered limit is honoured", 0 < used <= 8 << 20, str(used))
    chk.true("by evicting", ev >= 20, str(ev))
    chk.eq("stats reset", vmctest.request(vm.port, b"stats reset\r\n"),
           b"RESET\r\n")
    for name in ("evictions", "total_items", "reclaimed", "cmd_set"):
        chk.eq("%s zero after stats reset" % name, stat(vm.port, name), "0")
    chk.true("stats reset keeps the items",
             int(stat(vm.port, "curr_items") or 0) > 0)
    vmctest.request(vm.port, b"set big99 0 0 %d\r\n" % len(val) + val + b"\r\n")
    chk.eq("evictions count again after reset", stat(vm.port, "evictions"), "1")
    chk.eq("total_items count again after reset", stat(vm.port, "total_items"),
           "1")
    vm.stop()
    vmctest.remove_pool(pool)


def refused_options(chk):
    for args, why in ((["-I", "40m"], "more than half of -m"),
                      (["-B", "binary"], "only the ascii"),
                      (["-o", "slab_chunk_max=1024,bogus_opt"], "bogus_opt"),
                      (["-t", "0"], "bad -t"),
                      (["-t", "2x"], "bad -t 2x"),
                      (["-c", "-1"], "bad -c -1"),
                      (["-R", ""], "bad -R"),
                      (["-m", "64k"], "bad -m 64k"),
                      (["--commit-interval", ""], "bad --commit-interval")):
        pool = vmctest.pool_path("opt")
        argv = [vmctest.vmcached_bin(), "-p", str(vmctest.free_port()),
                "--pool", pool, "-m", "64"] + args
        r = subprocess.run(argv, capture_output=True, timeout=30)
        chk.true("refused: %s" % " ".join(args),
                 r.returncode == 2 and why in r.stderr.decode(), repr(r.stderr))
        chk.true("no pool made for refused options", not os.path.exists(pool))
    pool = vmctest.pool_path("opt")
    vm = vmctest.start_vmcached(pool, args=["-o", "slab_chunk_max=1024,no_modern",
                                            "-B", "ascii", "-b", "77"])
    chk.eq("-b sets the backlog", stat(vm.port, "tcp_backlog", b" settings"),
           "77")
    vm.stop()
    vmctest.remove_pool(pool)


def yields_and_slabs(chk):
    pool = vmctest.pool_path("yields")
    vm = vmctest.start_vmcached(pool, args=["-R", "1"])
    out = vmctest.request(vm.port, b"set y 0 0 1\r\nx\r\n" * 6)
    chk.eq("-R 1: a pipeline is still served whole", out, b"STORED\r\n" * 6)
    chk.true("-R 1: conn_yields counted",
             int(stat(vm.port, "conn_yields") or 0) >= 5)
    for i in range(10):
        vmctest.request(vm.port, b"set key%d 0 0 10\r\n%s\r\n" % (i, b"B" * 10),
                        wait=0.05)
    req = int(stat(vm.port, "items:1:mem_requested", b" items") or 0)
    chunk = int(stat(vm.port, "1:chunk_size", b" slabs") or 0)
    malloced = int(stat(vm.port, "total_malloced", b" slabs") or 0)
    chk.true("chunks hold their items", 0 < req <= 11 * chunk and
             req <= malloced, "%d %d %d" % (req, chunk, malloced))
    vm.kill()
    vm = vmctest.start_vmcached(pool, port=vm.port)
    chk.eq("total_malloced rebuilt at start",
           int(stat(vm.port, "total_malloced", b" slabs") or 0), malloced)
    vm.stop()
    vmctest.remove_pool(pool)


def main():
    chk = vmctest.Checker()
    compare(chk, [], CASES)
    compare(chk, ["-F"], F_CASES)
    compare(chk, ["-X"], X_CASES)
    cachedump(chk)
    memlimit_and_reset(chk)
    refused_options(chk)
    yields_and_slabs(chk)
    chk.done()


if __name__ == "__main__":
    main()
