# SPDX-License-Identifier: MIT
"""test_protocol -- vmcached must answer like Debian's memcached.

Three drivers, each run against both servers with the answers compared:
  1. raw bytes: commands, errors, noreply, quirks (decr padding, a bad
     command line whose data block then reads as a command, ...);
  2. pymemcache (Debian python3-pymemcache), a real client library;
  3. libmemcached-tools: memccapable -a (ascii protocol compliance),
     memccp/memccat/memcrm/memcexist/memctouch/memcflush.
Answers that may legitimately differ (CAS values, the version string,
stats values) are normalised or checked for format only.
"""
import os
import shutil
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import vmctest  # noqa: E402

BIG = 2000000
RAW_CASES = [
    b"set a 0 0 1\r\nx\r\n",
    b"get a\r\n",
    b"set a 0 0 1 noreply\r\ny\r\nget a\r\n",
    b"set a 0 0 -1\r\nx\r\n",
    b"set a 0 0 2\r\nxyz\r\n",
    b"set " + b"k" * 251 + b" 0 0 1\r\nx\r\n",
    b"set " + b"k" * 250 + b" 0 0 1\r\nx\r\nget " + b"k" * 250 + b"\r\n",
    b"get " + b"k" * 251 + b"\r\n",
    b"get a " + b"k" * 251 + b"\r\n",
    b"set a 0 0 1\r\nx\r\nset a 0 0 %d\r\n" % BIG + b"y" * BIG + b"\r\nget a\r\n",
    b"set a 0 0 %d noreply\r\n" % BIG + b"y" * BIG + b"\r\nget a\r\n",
    b"set v 0 0 100000\r\n" + b"v" * 100000 + b"\r\nget v\r\n",
    b"set a x 0 1\r\nx\r\n",
    b"set a 0 0\r\n",
    b"set a 0 0 1 noreply extra\r\nx\r\n",
    b"set a 0 0 1 garbage\r\nx\r\n",
    b"set a 0 0 1 noreply\r\nxx\r\n",
    b"set a 0 0 1x\r\nx\r\n",
    b"set a 0 0 +1\r\nx\r\nget a\r\n",
    b"set  a  0 0 1\r\nx\r\n",
    b"set lf 0 0 1\nx\nget lf\n",
    b"set neg -1 0 1\r\nx\r\n",
    b"set f 4294967295 0 1\r\nx\r\nget f\r\n",
    b"foo\r\n", b"\r\n", b"get\r\n", b"GET a\r\n", b"\x00\x01\x02garbage\r\n",
    b"get a a a\r\n",
    b"get " + b" ".join(b"k%d" % i for i in range(40)) + b"\r\n",
    b"set n 0 0 2\r\n10\r\ndecr n 1\r\nget n\r\nincr n 18446744073709551615\r\n",
    b"incr n -1\r\n", b"incr n abc\r\n", b"incr nokey 1\r\n", b"incr\r\n",
    b"incr n 99999999999999999999\r\n",
    b"set big 0 0 20\r\n18446744073709551615\r\nincr big 1\r\nget big\r\n",
    b"set sp 0 0 3\r\n 12\r\nincr sp 1\r\n",
    b"set q 0 0 1\r\n5\r\nincr q 1 noreply\r\nget q\r\n",
    b"set a 0 0 1\r\nx\r\nincr a 1\r\n",
    b"decr n 100\r\nget n\r\n",
    b"set w 0 0 1\r\n9\r\nincr w 1\r\nget w\r\n",
    b"touch a 10\r\n", b"touch nokey 10\r\n", b"touch a x\r\n", b"touch a\r\n",
    b"delete a 0\r\n", b"delete a 5\r\n", b"delete a noreply\r\nget a\r\n",
    b"delete a x\r\n", b"delete\r\n", b"delete nokey\r\n",
    b"cas nokey 0 0 1 5\r\nx\r\n", b"cas a 0 0 1\r\nx\r\n",
    b"cas a 0 0 1 abc\r\nx\r\n",
    b"set c 0 0 1\r\nx\r\ngets c\r\n",
    b"gat 10 c\r\n", b"gats 10 c\r\n", b"gat c\r\n", b"gat abc c\r\n",
    b"gat 10\r\n", b"gat\r\n",
    b"add q 0 0 1\r\nx\r\nreplace zz 0 0 1\r\nx\r\nadd zz 0 0 1\r\nx\r\n"
    b"replace zz 0 0 1\r\ny\r\nget zz\r\n",
    b"append nokey 0 0 1\r\nx\r\n", b"prepend nokey 0 0 1\r\nx\r\n",
    b"set p 5 0 1\r\nx\r\nappend p 7 0 1\r\ny\r\nprepend p 9 0 1\r\nz\r\nget p\r\n",
    b"set e 0 -1 1\r\nx\r\nget e\r\n",
    b"set e 0 abc 1\r\nx\r\n",
    b"set k\x01b 0 0 1\r\nx\r\nget k\x01b\r\n",
    b"set a 0 0 1\r\r\nx\r\n",
    b"get a\n",
    b"verbosity 1\r\n", b"verbosity\r\n", b"verbosity 1 noreply\r\n",
    b"verbosity a b c\r\n",
    b"version\r\n",
    b"stats foo\r\n", b"stats reset\r\n", b"stats detail\r\n",
    b"flush_all\r\nget c\r\n", b"flush_all 0\r\n", b"flush_all noreply\r\n",
    b"flush_all x\r\n", b"flush_all -1\r\n", b"flush_all 1 2 3\r\n",
    b"mn\r\n",
    # meta commands
    b"ms mk 2\r\nhi\r\n", b"mg mk v\r\n", b"mg mk\r\n", b"mg mk s v f t k Oxx\r\n",
    b"mg nokey v\r\n", b"mg nokey v q\r\nmn\r\n", b"mg nokey k Oab\r\n",
    b"ms mk 3 F5 T100\r\nabc\r\nmg mk f v t\r\n", b"ms mk 3 q\r\nxyz\r\nmn\r\n",
    b"ms mk 3 ME\r\nxyz\r\n", b"ms newk 3 ME\r\nxyz\r\n",
    b"ms mk 1 MA\r\nq\r\nmg mk v\r\n", b"ms mk 1 MP\r\np\r\nmg mk v\r\n",
    b"ms nok 1 MR\r\nq\r\n", b"ms mk 1 MZ\r\nq\r\n", b"ms mk 1 C1\r\nq\r\n",
    b"ms mk abc\r\nq\r\n", b"ms mk 2\r\nabc\r\n", b"ms mk 1 k Oq1\r\nz\r\n",
    b"md mk\r\n", b"md mk\r\n", b"md mk q\r\nmn\r\n", b"md nok k O1\r\n",
    b"ma cnt\r\n", b"ma cnt N0 J10\r\n", b"ma cnt v\r\n", b"ma cnt D5 v\r\n",
    b"ma cnt MD D100 v\r\n", b"ma cnt q\r\nmn\r\n", b"ms nn 1\r\nx\r\nma nn\r\n",
    b"mg mk T30 v\r\n", b"mg " + b"k" * 251 + b" v\r\n", b"mg\r\n", b"mg mk zz\r\n",
    b"ma cnt MX\r\n", b"ms t1 2 T-1\r\nab\r\nmg t1 v\r\n", b"md\r\n", b"ma\r\n",
    b"ms\r\n", b"ms k\r\n", b"ms k 1 zz\r\nx\r\n", b"mg mk v v\r\n",
    b"ms mk 1 I\r\nx\r\n",
    b"quit\r\n", b"get a\r\nquit\r\nget a\r\n",
    b"set a 0 0 1\r\nxy",
    b"x" * 3000,
    b"set x 0 0 1\r\nxx\r\nget x\r\n",
]


def raw_compare(chk, mc, vm):
    for case in RAW_CASES:
        want, got = vmctest.request_both(mc.port, vm.port, case, wait=0.1)
        if vmctest.normalize(got) != vmctest.normalize(want):
            # An answer is collected until the server is quiet for `wait`;
            # on a loaded machine a commit can outlast 0.1 s and cut it
            # short. Replay to both (same state change on each) with a
            # long quiet time; a real difference persists.
            want, got = vmctest.request_both(mc.port, vm.port, case, wait=1.5)
        chk.eq("raw %r" % case[:60], vmctest.normalize(got),
               vmctest.normalize(want))


def stats_format(chk, vm):
    for sub, must in ((b"", [b"pid", b"uptime", b"time", b"version", b"curr_items",
                             b"total_items", b"bytes", b"curr_connections",
                             b"cmd_get", b"cmd_set", b"get_hits", b"get_misses",
                             b"evictions", b"limit_maxbytes", b"threads"]),
                      (b" items", [b"items:1:number", b"items:1:age",
                                   b"items:1:evicted"]),
                      (b" slabs", [b"1:chunk_size", b"active_slabs",
                                   b"total_malloced"]),
                      (b" settings", [b"maxbytes", b"maxconns"])):
        vmctest.request(vm.port, b"set st 0 0 1\r\nx\r\n")
        out = vmctest.request(vm.port, b"stats" + sub + b"\r\n")
        lines = out.split(b"\r\n")
        chk.eq("stats%s ends with END" % sub.decode(), lines[-2:], [b"END", b""])
        names = set()
        for ln in lines[:-2]:
            parts = ln.split(b" ")
            chk.true("stats%s line format" % sub.decode(),
                     len(parts) >= 3 and parts[0] == b"STAT", repr(ln))
            if len(parts) >= 2:
                names.add(parts[1])
        for m in must:
            chk.true("stats%s has %s" % (sub.decode(), m.decode()), m in names)


def expiry_compare(chk, mc, vm):
    """Relative and absolute expiry times, touch and gat, on both."""
    seq_set = (b"set r1 0 1 1\r\nx\r\nset r5 0 100 1\r\nx\r\n"
               b"set abs 0 %d 1\r\nx\r\nset absp 0 %d 1\r\nx\r\n"
               b"set t 0 1 1\r\nx\r\ntouch t 100\r\nset g 0 1 1\r\nx\r\n"
               b"gat 100 g\r\n" % (int(time.time()) + 1, int(time.time()) + 1000))
    for s in (mc, vm):
        vmctest.request(s.port, b"flush_all\r\n")
    a = vmctest.request(mc.port, seq_set)
    b = vmctest.request(vm.port, seq_set)
    chk.eq("expiry setup", vmctest.normalize(b), vmctest.normalize(a))
    time.sleep(2.2)
    q = b"get r1\r\nget r5\r\nget abs\r\nget absp\r\nget t\r\nget g\r\n"
    chk.eq("expiry after 2 s", vmctest.request(vm.port, q),
           vmctest.request(mc.port, q))
    # delayed flush_all: alive now, gone after the delay
    seq = b"set df 0 0 1\r\nx\r\nflush_all 1\r\nget df\r\n"
    chk.eq("flush_all 1", vmctest.request(vm.port, seq), vmctest.request(mc.port, seq))
    time.sleep(2.2)
    seq = b"get df\r\nset df2 0 0 1\r\ny\r\nget df2\r\n"
    chk.eq("after delayed flush", vmctest.request(vm.port, seq),
           vmctest.request(mc.port, seq))


def pymemcache_compare(chk, mc, vm):
    try:
        from pymemcache.client.base import Client
    except ImportError:
        print("note: pymemcache missing, its part is skipped")
        return

    def run(port):
        c = Client(("127.0.0.1", port), connect_timeout=5, timeout=5)
        r = []
        c.flush_all()
        r.append(c.set("k1", b"v1"))
        r.append(c.get("k1"))
        r.append(c.set("k2", b"x" * 5000, expire=100, noreply=False))
        r.append(c.get_many(["k1", "k2", "nokey"]))
        r.append(c.add("k1", b"zz", noreply=False))
        r.append(c.add("k3", b"zz", noreply=False))
        r.append(c.replace("nokey", b"a", noreply=False))
        r.append(c.append("k1", b"++", noreply=False))
        r.append(c.prepend("k1", b"--", noreply=False))
        r.append(c.get("k1"))
        v, cas = c.gets("k1")
        r.append(v)
        r.append(c.cas("k1", b"new", cas, noreply=False))
        r.append(c.cas("k1", b"stale", cas, noreply=False))
        r.append(c.get("k1"))
        r.append(c.cas("nokey", b"x", b"123", noreply=False))
        r.append(c.set("n", b"41"))
        r.append(c.incr("n", 1))
        r.append(c.decr("n", 50))
        r.append(c.incr("nokey", 1))
        r.append(c.touch("k1", 100, noreply=False))
        r.append(c.touch("nokey", 100, noreply=False))
        r.append(c.delete("k1", noreply=False))
        r.append(c.delete("k1", noreply=False))
        r.append(c.get("k1"))
        r.append(c.set_many({"m%d" % i: b"%d" % i for i in range(50)}))
        r.append(sorted(c.get_many(["m%d" % i for i in range(60)]).items()))
        r.append(c.delete_many(["m%d" % i for i in range(10)]))
        r.append(len(c.get_many(["m%d" % i for i in range(60)])))
        try:
            c.set("k" * 300, b"x")
            r.append("no error")
        except Exception as e:  # pymemcache refuses long keys itself
            r.append(type(e).__name__)
        r.append(b"version" if c.version() else b"")
        st = c.stats()
        r.append(b"curr_items" in st)
        r.append(c.flush_all())
        r.append(c.get("m30"))
        c.close()
        return r

    want = run(mc.port)
    got = run(vm.port)
    for i, (g, w) in enumerate(zip(got, want)):
        chk.eq("pymemcache step %d" % i, g, w)
    chk.eq("pymemcache steps", len(got), len(want))


def tools_compare(chk, mc, vm):
    cap = shutil.which("memccapable")
    if not cap:
        print("note: libmemcached-tools missing, their part is skipped")
        return
    res = {}
    for name, s in (("memcached", mc), ("vmcached", vm)):
        p = subprocess.run([cap, "-a", "-h", "127.0.0.1", "-p", str(s.port)],
                           capture_output=True, timeout=60)
        res[name] = (p.returncode, p.stderr.decode(errors="replace").strip())
    chk.eq("memccapable -a (exit, stderr)", res["vmcached"], res["memcached"])
    chk.eq("memccapable -a on memcached passes", res["memcached"][0], 0)

    tmp = tempfile.mkdtemp(prefix="vmctest-")
    try:
        f = os.path.join(tmp, "payload.bin")
        with open(f, "wb") as fh:
            fh.write(os.urandom(300000))
        for name, s in (("memcached", mc), ("vmcached", vm)):
            srv = "--servers=127.0.0.1:%d" % s.port
            p = subprocess.run(["memccp", srv, f], capture_output=True, timeout=30)
            chk.eq("memccp to %s" % name, p.returncode, 0)
            p = subprocess.run(["memccat", srv, "payload.bin"],
                               capture_output=True, timeout=30)
            with open(f, "rb") as fh:
                data = fh.read()
                chk.true("memccat from %s returns the file" % name,
                         p.returncode == 0 and p.stdout in (data, data + b"\n"),
                         "rc=%d len=%d" % (p.returncode, len(p.stdout)))
            p = subprocess.run(["memcexist", srv, "payload.bin"],
                               capture_output=True, timeout=30)
            chk.eq("memcexist on %s" % name, p.returncode, 0)
            p = subprocess.run(["memctouch", srv, "--expire=100", "payload.bin"],
                               capture_output=True, timeout=30)
            chk.eq("memctouch on %s" % name, p.returncode, 0)
            p = subprocess.run(["memcrm", srv, "payload.bin"],
                               capture_output=True, timeout=30)
            chk.eq("memcrm on %s" % name, p.returncode, 0)
            p = subprocess.run(["memcexist", srv, "payload.bin"],
                               capture_output=True, timeout=30)
            chk.true("memcexist after memcrm on %s fails" % name, p.returncode != 0)
            p = subprocess.run(["memcflush", srv], capture_output=True, timeout=30)
            chk.eq("memcflush on %s" % name, p.returncode, 0)
            p = subprocess.run(["memcstat", srv], capture_output=True, timeout=30)
            chk.true("memcstat on %s" % name, p.returncode == 0 and
                     b"curr_items" in p.stdout)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def main():
    chk = vmctest.Checker()
    pool = vmctest.pool_path("proto")
    mc = vmctest.start_memcached()
    vm = vmctest.start_vmcached(pool)
    raw_compare(chk, mc, vm)
    stats_format(chk, vm)
    pymemcache_compare(chk, mc, vm)
    tools_compare(chk, mc, vm)
    expiry_compare(chk, mc, vm)
    mc.kill()
    chk.eq("vmcached exits 0 on SIGTERM", vm.stop(), 0)
    p = subprocess.run([vmctest.vmcached_bin(), "--check", "--pool", pool],
                       capture_output=True, timeout=60)
    chk.eq("pool checks whole after the run", p.returncode, 0)
    if chk.failures:
        print(vm.stderr())
    chk.done()


if __name__ == "__main__":
    main()
