# SPDX-License-Identifier: MIT
"""test_meta -- the meta protocol's leases, stale items, base64 keys, modes
and errors, each exchange run against Debian's memcached too and the
answers compared (CAS values and remaining TTLs normalised).

A step may name the CAS of the last `c` flag answered with {cas}, so a
client-side CAS round trip runs the same way on both servers. vmcached
alone: `me`, `l`, and that an invalidated item and a sent win token
survive kill -9.
"""
import os
import re
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import vmctest  # noqa: E402

B64 = b"44OG44K544OI"   # three katakana, base64
SCRIPTS = [
    # base64 keys: stored decoded, answered encoded
    [b"ms " + B64 + b" 2 b\r\npo\r\n", b"mg " + B64 + b" v\r\n",
     b"mg " + B64 + b" b v k\r\n", b"mg " + B64 + b" b k O1 q\r\nmn\r\n",
     b"ma " + B64 + b" b k\r\n", b"md " + B64 + b" b k q\r\nmn\r\n",
     b"mg " + B64 + b" b v k\r\n", b"mg abc= b v\r\n",
     b"ms a*b 1 b\r\nx\r\n", b"md %%% b\r\n"],
    # ms: c answered 0 when not stored, CAS on append, modes
    [b"ms cx 2\r\nbo\r\n", b"ms cx 2 c C999999999999\r\nio\r\n",
     b"mg cx c\r\n", b"ms cx 2 c C{cas}\r\nio\r\n", b"mg cx v\r\n",
     b"ms ap 1\r\na\r\n", b"ms ap 1 MA C1\r\nb\r\n", b"mg ap c v\r\n",
     b"ms ap 1 MA C{cas}\r\nb\r\n", b"mg ap v\r\n", b"ms ap 1 Ms\r\nx\r\n",
     b"ms ap 1 ME C5\r\nx\r\n", b"ms newadd 1 ME C5\r\nx\r\n",
     b"ms nokey 1 MR C5\r\nx\r\n", b"ms nokey2 1 C5\r\nx\r\n",
     b"ms ap 1 MEE\r\nx\r\n", b"ms ap 1 k c O9 MP\r\nz\r\n"],
    # ma: CAS, vivify, modes, quiet
    [b"ma mc N0 c v\r\n", b"ma mc N0 C99999 v\r\n",
     b"ma mc N0 C{cas} c v\r\n", b"ma mu N90 t v\r\n", b"mg mu s t v k\r\n",
     b"ma mu T300 t v\r\n", b"ma mi N0 J13 v t MD D22\r\n",
     b"ma qx q\r\nmn\r\n", b"ma qn N0 q\r\nmn\r\n", b"ma qn q\r\nmn\r\n",
     b"ma qn q v\r\nmn\r\n", b"ma mi M+ D2 v\r\n", b"ma mi M- D1 v\r\n",
     b"ma mi MX\r\n", b"ma mi Dx\r\n", b"ma mi N0 Jx\r\n", b"ma mi zz\r\n"],
    # leases: N (vivify) and R (recache) wins, then Z for the others
    [b"mg needwin s c v N30 t\r\n", b"mg needwin s t c v N30\r\n",
     b"ms needwin 2 C5000 T120\r\nnu\r\n", b"mg needwin c\r\n",
     b"ms needwin 2 C{cas} T120\r\nmu\r\n", b"mg needwin s k t v N30\r\n",
     b"mg needwin s t v N30 R130\r\n", b"mg needwin s t c v N30 R130\r\n",
     b"ms needwin 4 C{cas} T300\r\nzuuu\r\n", b"mg needwin s v N30\r\n",
     b"mg quietautov s N30 t q\r\n", b"mg gatkey s v T300 t\r\n",
     b"ms gatkey 4 T100\r\nooom\r\n", b"mg gatkey s t T300 t\r\n"],
    # md I: stale, serve it, win once, a low-CAS stale set keeps it stale
    [b"set toinv 0 0 3\r\nmoo\r\n", b"mg toinv s v\r\n",
     b"md toinv I T30\r\n", b"mg toinv s t c v\r\n", b"mg toinv s c v\r\n",
     b"ms toinv 1 T90 C0\r\nf\r\n", b"ms toinv 1 I T90 C1\r\nf\r\n",
     b"mg toinv s t c v\r\n", b"ms toinv 1 T90 C{cas}\r\ng\r\n",
     b"mg toinv s v\r\n", b"md toinv I q\r\nmn\r\n", b"mg toinv v\r\n",
     b"md nothere I\r\n", b"md toinv C1\r\n", b"md toinv C{cas} k Ox\r\n",
     b"mg toinv v\r\n"],
    # h (hit before) and u (no bump)
    [b"ms hf 3\r\nhit\r\n", b"mg hf h\r\n", b"mg hf h\r\n",
     b"ms nu 3\r\nhit\r\n", b"mg nu u h\r\n", b"mg nu h\r\n", b"mg nu u h\r\n",
     b"ms nu 3\r\nnew\r\n", b"mg nu h\r\n", b"get hf\r\nmg hf h\r\n"],
    # quiet mode and errors
    [b"ms quiet 2 q\r\nmo\r\nmd quiet q\r\nmg quiet s v q\r\nmn\r\n",
     b"ms quiet 2 q\r\nbo\r\nmg quiet v q\r\nmg quietmiss v q\r\nmn\r\n",
     b"mg k O" + b"a" * 33 + b"\r\n", b"mg k O" + b"a" * 31 + b"\r\n",
     b"mg foo m o o o o\r\n", b"mg k T\r\n", b"mg k Tx\r\n", b"mg k s s\r\n",
     b"mg k " + b" ".join(b"O%d" % i for i in range(19)) + b"\r\n",
     b"md k " + b" ".join(b"O%d" % i for i in range(19)) + b"\r\n",
     b"ms k 1 " + b" ".join(b"O%d" % i for i in range(18)) + b"\r\nx\r\n",
     b"me nokey\r\n", b"me\r\n", b"mz k\r\n", b"ms k\r\n", b"ms k 1 Fx\r\nx\r\n"],
]

_cas = re.compile(rb"(?<= c)([0-9]+)")


def normalize(resp):
    resp = re.sub(rb"(?<= c)[1-9][0-9]*", b"<cas>", resp)
    resp = re.sub(rb"(?<= t)[0-9]+", b"<ttl>", resp)
    return resp


def run_script(port, steps):
    """One connection per step; {cas} is the last c<value> answered."""
    out, cas = [], b"0"
    for st in steps:
        got = vmctest.request(port, st.replace(b"{cas}", cas), wait=0.15)
        found = [m for m in _cas.findall(got) if m != b"0"]
        if found:
            cas = found[-1]
        out.append(got)
    return out


def compare(chk, mc, vm):
    for steps in SCRIPTS:
        for attempt in (1, 2):
            want = run_script(mc.port, steps)
            got = run_script(vm.port, steps)
            if [normalize(g) for g in got] == [normalize(w) for w in want]:
                break
            # a replay on a loaded machine: flush both and try once more
            vmctest.request_both(mc.port, vm.port, b"flush_all\r\n")
        for st, g, w in zip(steps, got, want):
            chk.eq("meta %r" % st[:50], normalize(g), normalize(w))


def vmcached_only(chk):
    pool = vmctest.pool_path("meta")
    vm = vmctest.start_vmcached(pool)
    out = vmctest.request(vm.port, b"ms mek 2 T100\r\nhi\r\nme mek\r\n")
    chk.true("me line", re.fullmatch(rb"HD\r\nME mek exp=-(99|100) la=0 "
                                     rb"cas=\d+ fetch=no cls=1 size=\d+\r\n",
                                     out), repr(out))
    out = vmctest.request(vm.port, b"mg mek v\r\nme mek\r\nms " + B64 +
                          b" 1 b\r\nx\r\nme " + B64 + b" b\r\n")
    chk.true("me after a fetch, and of a binary key",
             b"fetch=yes" in out and b"ME " + B64 + b" exp=-1" in out,
             repr(out))
    vmctest.request(vm.port, b"ms la 2\r\nla\r\n")
    time.sleep(1.2)
    out = vmctest.request(vm.port, b"mg la l\r\n")
    chk.true("l counts from the last store", re.fullmatch(rb"HD l[1-3]\r\n", out),
             repr(out))
    # an invalidated item and a sent win token survive kill -9
    vmctest.request(vm.port, b"ms st 3\r\nold\r\nmd st I T60\r\n"
                    b"ms st2 3 T60\r\nabc\r\nmg st2 c R100\r\n")
    vm.kill()
    vm = vmctest.start_vmcached(pool, port=vm.port)
    out = vmctest.request(vm.port, b"mg st v\r\nmg st v\r\nmg st2\r\n")
    chk.eq("stale and win state after kill -9", out,
           b"VA 3 X W\r\nold\r\nVA 3 Z X\r\nold\r\nHD Z\r\n")
    out = vmctest.request(vm.port, b"stats cachedump 1 0\r\n")
    chk.true("cachedump leaves out binary keys", B64 not in out and b"mek" in out,
             repr(out))
    vm.stop()
    vmctest.remove_pool(pool)


def main():
    chk = vmctest.Checker()
    mc = vmctest.start_memcached()
    pool = vmctest.pool_path("metacmp")
    vm = vmctest.start_vmcached(pool)
    compare(chk, mc, vm)
    vm.stop()
    mc.kill()
    vmctest.remove_pool(pool)
    vmcached_only(chk)
    chk.done()


if __name__ == "__main__":
    main()
