# SPDX-License-Identifier: MIT
"""test_crash -- kill -9 vmcached in the middle of a load, restart, verify.

Loader threads overwrite their own keys with ever higher versions; a value
is a pure function of (key, version) with a length that varies from 1 byte
to a few KiB, so a torn or mixed item cannot pass for a valid one. For each
key we remember the last version sent and the versions acknowledged (with
the time of the acknowledgement). After kill -9 and restart:

  * `vmcached --check` must find the table, the LRU and every checksum whole;
  * synchronous mode (--commit-interval 0): every key holds a version
    between its last acknowledged and its last sent one, exactly;
  * relaxed mode (--commit-interval N): the same, but only versions acked
    at least a grace period before the kill must be there (N ms + slack);
  * no key holds a value that is not exactly some version's value.
Several kill/restart cycles run on the same pool. VMC_CRASH_SECONDS sets
how long each load runs before the kill (default 1.0).
"""
import os
import random
import socket
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import vmctest  # noqa: E402

LOAD_S = float(os.environ.get("VMC_CRASH_SECONDS", "1.0"))
THREADS = 4
KEYS_PER_THREAD = 300


def value_of(key, version):
    rnd = random.Random("%s/%d" % (key, version))
    n = rnd.choice((1, 7, 60, 500, 1500, 4000)) + rnd.randrange(50)
    head = ("%s:%d:" % (key, version)).encode()
    body = bytes(rnd.getrandbits(8) for _ in range(min(n, 64)))
    return (head + body * (n // len(body) + 1))[:max(n, len(head))]


def parse_version(key, val):
    try:
        k, v, _ = val.split(b":", 2)
        if k.decode() != key:
            return None
        ver = int(v)
    except ValueError:
        return None
    return ver if value_of(key, ver) == val else None


class Loader(threading.Thread):
    def __init__(self, port, tid, state, stop):
        super().__init__(daemon=True)
        self.port, self.tid, self.state, self.stop = port, tid, state, stop

    def run(self):
        try:
            s = socket.create_connection(("127.0.0.1", self.port), timeout=5)
        except OSError:
            return
        rnd = random.Random(self.tid)
        buf = b""
        while not self.stop.is_set():
            key = "t%d-k%d" % (self.tid, rnd.randrange(KEYS_PER_THREAD))
            st = self.state.setdefault(key, {"sent": 0, "acks": []})
            ver = st["sent"] + 1
            val = value_of(key, ver)
            st["sent"] = ver
            try:
                s.sendall(b"set %s 0 0 %d\r\n%s\r\n" % (key.encode(), len(val), val))
                while b"\r\n" not in buf:
                    d = s.recv(4096)
                    if not d:
                        return
                    buf += d
            except OSError:
                return
            line, buf = buf.split(b"\r\n", 1)
            if line != b"STORED":
                print("unexpected reply %r" % line)
                return
            st["acks"].append((time.time(), ver))


def get_all(port, keys):
    from pymemcache.client.base import Client
    c = Client(("127.0.0.1", port), connect_timeout=5, timeout=10)
    out = {}
    keys = list(keys)
    for i in range(0, len(keys), 100):
        out.update({k: v for k, v in c.get_many(keys[i:i + 100]).items()})
    c.close()
    return out


def cycle(chk, pool, state, args, grace_s, label, env=None):
    vm = vmctest.start_vmcached(pool, args=args, env=env)
    stop = threading.Event()
    loaders = [Loader(vm.port, t, state[t], stop) for t in range(THREADS)]
    for ld in loaders:
        ld.start()
    time.sleep(LOAD_S)
    kill_time = time.time()
    vm.kill()                       # kill -9 mid-load
    stop.set()
    for ld in loaders:
        ld.join(timeout=10)
    p = subprocess.run([vmctest.vmcached_bin(), "--check", "--pool", pool],
                       capture_output=True, timeout=120)
    chk.eq("%s: --check after kill -9 (%s)" % (label, p.stderr.decode().strip()),
           p.returncode, 0)
    vm = vmctest.start_vmcached(pool, args=args)
    allkeys = {k: st for t in range(THREADS) for k, st in state[t].items()}
    got = get_all(vm.port, allkeys.keys())
    acked_total = 0
    bad = 0
    for key, st in allkeys.items():
        must = 0
        for t, ver in st["acks"]:
            if t <= kill_time - grace_s:
                must = max(must, ver)
        acked_total += len(st["acks"])
        val = got.get(key)
        if val is None:
            ok = must == 0
            found = None
        else:
            found = parse_version(key, val)
            ok = found is not None and must <= found <= st["sent"]
        if not ok:
            bad += 1
            if bad <= 5:
                print("%s: key %s: found version %r (raw %r), must be >= %d, "
                      "sent %d" % (label, key, found, (val or b"")[:40], must,
                                   st["sent"]))
        # continue the next cycle from what the cache holds now
        if found is not None:
            st["sent"] = max(st["sent"], found)
        st["acks"] = [(0.0, found)] if found else []
    chk.eq("%s: keys violating durability/atomicity" % label, bad, 0)
    chk.true("%s: the load made progress" % label, acked_total > 50,
             "(%d acks)" % acked_total)
    print("%s: %d keys, %d acks before kill, all checked" %
          (label, len(allkeys), acked_total))
    chk.eq("%s: clean stop" % label, vm.stop(), 0)


def main():
    try:
        import pymemcache  # noqa: F401
    except ImportError:
        vmctest.skip("python3-pymemcache is not installed")
    chk = vmctest.Checker()
    # sync-delayed: the syncer waits 2 ms before each psync(), so nearly
    # every store's reply would leave before it is durable if the hold
    # were broken, and the kill then loses acknowledged stores (checked by
    # disabling the hold: every cycle fails). Without the delay a commit
    # takes a few us and the kill seldom lands in that window.
    delayed = dict(os.environ, VMCACHED_TEST_SYNC_DELAY_US="2000")
    for mode, args, grace, env, cycles in (
            ("sync", ["--commit-interval", "0"], 0.0, None, 3),
            ("sync-delayed", ["--commit-interval", "0"], 0.0, delayed, 2),
            ("relaxed-5ms", ["--commit-interval", "5"], 0.5, None, 2)):
        pool = vmctest.pool_path("crash-" + mode)
        vmctest.remove_pool(pool)
        state = [dict() for _ in range(THREADS)]
        for i in range(cycles):
            cycle(chk, pool, state, args, grace, "%s cycle %d" % (mode, i + 1),
                  env=env)
        vmctest.remove_pool(pool)
    chk.done()


if __name__ == "__main__":
    main()
