# SPDX-License-Identifier: MIT
"""test_persist -- what must survive a restart, and what must not.

  * values, flags and CAS values survive a clean stop and a kill -9;
  * expiry times are absolute: an item that expires while the server is
    down stays gone after the restart;
  * a pending `flush_all N` survives the restart and fires on time;
  * the CAS counter persists: no CAS value is handed out twice;
  * -m is honoured: stores past the limit evict from the LRU tail (the
    oldest first, a recently read item survives); expired items are
    reclaimed; the evicted state survives a restart.
"""
import os
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import vmctest  # noqa: E402

req = vmctest.request


def stats(port):
    out = req(port, b"stats\r\n", wait=0.2)
    st = {}
    for ln in out.split(b"\r\n"):
        p = ln.split(b" ")
        if len(p) == 3 and p[0] == b"STAT":
            st[p[1].decode()] = p[2].decode()
    return st


def persist_counters(chk, port, bound_us, label):
    """The library's write-set and bound counters in `stats`: after
    acknowledged stores something reached the pool, the collected write
    sets hold at least the logged pages, and vp_bound_us is B for the
    interval the library runs at, B = max(4N, N + 50) ms."""
    st = stats(port)
    names = ("vp_pages_logged", "vp_pages_collected", "vp_bytes_persisted",
             "vp_bound_us", "vp_bound_waits", "vp_bound_wait_us")
    missing = [n for n in names if not st.get(n, "").isdigit()]
    chk.eq("%s: vp_ counters present" % label, missing, [])
    if missing:
        return
    v = {n: int(st[n]) for n in names}
    chk.true("%s: vp_bytes_persisted > 0" % label, v["vp_bytes_persisted"] > 0, str(v))
    chk.true("%s: vp_pages_collected >= vp_pages_logged > 0" % label,
             v["vp_pages_collected"] >= v["vp_pages_logged"] > 0, str(v))
    chk.eq("%s: vp_bound_us" % label, v["vp_bound_us"], bound_us)
    chk.true("%s: no wait time without a wait" % label,
             v["vp_bound_waits"] > 0 or v["vp_bound_wait_us"] == 0, str(v))


def gets_cas(port, key):
    out = req(port, b"gets %s\r\n" % key, wait=0.1)
    first = out.split(b"\r\n")[0].split(b" ")
    return int(first[4]) if first[0] == b"VALUE" else None


def check_pool(chk, pool, label):
    p = subprocess.run([vmctest.vmcached_bin(), "--check", "--pool", pool],
                       capture_output=True, timeout=60)
    chk.eq("%s: --check (%s)" % (label, p.stderr.decode().strip()), p.returncode, 0)


def restart_cases(chk, pool):
    vm = vmctest.start_vmcached(pool)
    now = int(time.time())
    setup = (b"set plain 0 0 5\r\nhello\r\n"
             b"set flags 3735928559 0 3\r\nabc\r\n"
             b"set short 0 2 5\r\nshort\r\n"
             b"set long 0 1000 4\r\nlong\r\n"
             b"set absshort 0 %d 3\r\nabs\r\n"
             b"set abslong 0 %d 3\r\nabl\r\n"
             b"set bin 0 0 4\r\n\x00\r\n\xff\r\n" % (now + 2, now + 1000))
    chk.eq("setup", req(vm.port, setup, wait=0.2), b"STORED\r\n" * 7)
    cas_before = {k: gets_cas(vm.port, k) for k in (b"plain", b"flags", b"long")}
    max_cas = max(cas_before.values())
    chk.eq("clean stop", vm.stop(), 0)
    check_pool(chk, pool, "after clean stop")
    time.sleep(max(0.0, now + 3 - time.time()))    # "short" items expire while down

    vm = vmctest.start_vmcached(pool, port=vm.port)
    q = b"get plain flags short long absshort abslong bin\r\n"
    want = (b"VALUE plain 0 5\r\nhello\r\nVALUE flags 3735928559 3\r\nabc\r\n"
            b"VALUE long 0 4\r\nlong\r\nVALUE abslong 0 3\r\nabl\r\n"
            b"VALUE bin 0 4\r\n\x00\r\n\xff\r\nEND\r\n")
    chk.eq("after restart: values, flags, expiry", req(vm.port, q), want)
    cas_after = {k: gets_cas(vm.port, k) for k in cas_before}
    chk.eq("CAS values survive", cas_after, cas_before)
    chk.eq("cas with the old token works after restart",
           req(vm.port, b"cas plain 0 0 2\r\nhi\r\n".replace(
               b"0 0 2\r\n", b"0 0 2 %d\r\n" % cas_before[b"plain"])), b"STORED\r\n")
    req(vm.port, b"set fresh 0 0 1\r\nx\r\n")
    chk.true("new CAS beyond every old one", gets_cas(vm.port, b"fresh") > max_cas)

    # kill -9 right after an acknowledged store (synchronous mode)
    chk.eq("store before kill", req(vm.port, b"set k9 7 0 4\r\nkill\r\n"), b"STORED\r\n")
    cas_k9 = gets_cas(vm.port, b"k9")
    # synchronous mode runs the library relaxed at N = 1000 ms
    persist_counters(chk, vm.port, 4000 * 1000, "synchronous")
    vm.kill()
    check_pool(chk, pool, "after kill -9")
    vm = vmctest.start_vmcached(pool, port=vm.port)
    chk.eq("acked store survives kill -9", req(vm.port, b"get k9\r\n"),
           b"VALUE k9 7 4\r\nkill\r\nEND\r\n")
    chk.eq("its CAS too", gets_cas(vm.port, b"k9"), cas_k9)
    req(vm.port, b"set fresh2 0 0 1\r\nx\r\n")
    chk.true("no CAS reuse after kill -9", gets_cas(vm.port, b"fresh2") > cas_k9)

    # a pending flush_all survives a restart
    chk.eq("flush_all 3", req(vm.port, b"flush_all 3\r\n"), b"OK\r\n")
    t_flush = time.time()
    vm.kill()
    vm = vmctest.start_vmcached(pool, port=vm.port)
    if time.time() < t_flush + 1.5:
        chk.eq("before the deadline the item is there", req(vm.port, b"get plain\r\n"),
               b"VALUE plain 0 2\r\nhi\r\nEND\r\n")
    time.sleep(max(0.0, t_flush + 3.2 - time.time()))
    chk.eq("after the deadline it is gone", req(vm.port, b"get plain k9\r\n"), b"END\r\n")
    chk.eq("later stores live", req(vm.port, b"set after 0 0 1\r\nz\r\nget after\r\n"),
           b"STORED\r\nVALUE after 0 1\r\nz\r\nEND\r\n")
    vm.kill()
    vm = vmctest.start_vmcached(pool, port=vm.port)
    chk.eq("and survive the next restart", req(vm.port, b"get after plain\r\n"),
           b"VALUE after 0 1\r\nz\r\nEND\r\n")
    chk.eq("clean stop 2", vm.stop(), 0)


def eviction_cases(chk, pool):
    vm = vmctest.start_vmcached(pool, args=["-m", "2", "--commit-interval", "5"])
    val = b"v" * 1000
    batch = b"".join(b"set e%d 0 0 %d noreply\r\n%s\r\n" % (i, len(val), val)
                     for i in range(1000))
    req(vm.port, batch, wait=0.5)
    batch = b"".join(b"set e%d 0 0 %d noreply\r\n%s\r\n" % (i, len(val), val)
                     for i in range(1000, 5000))
    req(vm.port, batch, wait=0.5)
    persist_counters(chk, vm.port, 55 * 1000, "--commit-interval 5")
    st = stats(vm.port)
    limit = 2 << 20
    chk.true("evictions counted", int(st.get("evictions", 0)) > 0, str(st.get("evictions")))
    chk.true("bytes within -m", int(st.get("bytes", 1 << 40)) <= limit, st.get("bytes"))
    got = req(vm.port, b"get e1 e2 e3 e4999 e4998\r\n")
    chk.eq("oldest evicted, newest kept",
           got.count(b"VALUE"), 2)
    chk.true("newest present", b"VALUE e4999 " in got)
    # expired items are reclaimed as new ones arrive
    req(vm.port, b"flush_all\r\n")
    batch = b"".join(b"set x%d 0 1 10 noreply\r\n0123456789\r\n" % i for i in range(200))
    req(vm.port, batch, wait=0.3)
    time.sleep(2.1)
    before = int(stats(vm.port)["reclaimed"])
    req(vm.port, b"".join(b"set y%d 0 0 1 noreply\r\nz\r\n" % i for i in range(50)),
        wait=0.3)
    chk.true("expired items reclaimed", int(stats(vm.port)["reclaimed"]) > before)
    n_items = stats(vm.port)["curr_items"]
    chk.eq("clean stop (eviction)", vm.stop(), 0)
    check_pool(chk, pool, "after evictions")
    vm = vmctest.start_vmcached(pool, args=["-m", "2", "--commit-interval", "5"])
    chk.eq("item count survives", stats(vm.port)["curr_items"], n_items)
    chk.eq("clean stop (eviction 2)", vm.stop(), 0)


def lru_case(chk, pool):
    """A recently read item is not the next victim (LRU, not FIFO)."""
    vm = vmctest.start_vmcached(pool, args=["-m", "1", "--commit-interval", "5"])
    val = b"w" * 1000
    fill = b"".join(b"set l%d 0 0 %d noreply\r\n%s\r\n" % (i, len(val), val)
                    for i in range(700))
    req(vm.port, fill, wait=0.3)
    # Reads bump an item once a minute at most, so make l0 young by
    # storing it again; then push 300 more: l0 must stay, l1 must go.
    req(vm.port, b"set l0 0 0 %d\r\n%s\r\n" % (len(val), val))
    more = b"".join(b"set m%d 0 0 %d noreply\r\n%s\r\n" % (i, len(val), val)
                    for i in range(300))
    req(vm.port, more, wait=0.3)
    got = req(vm.port, b"get l0 l1\r\n")
    chk.true("LRU keeps the re-stored item", b"VALUE l0 " in got, repr(got[:40]))
    chk.true("LRU evicts the oldest", b"VALUE l1 " not in got)
    chk.eq("clean stop (lru)", vm.stop(), 0)


def main():
    chk = vmctest.Checker()
    for fn, tag in ((restart_cases, "restart"), (eviction_cases, "evict"),
                    (lru_case, "lru")):
        pool = vmctest.pool_path(tag)
        vmctest.remove_pool(pool)
        fn(chk, pool)
        vmctest.remove_pool(pool)
    chk.done()


if __name__ == "__main__":
    main()
