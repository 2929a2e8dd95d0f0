# SPDX-License-Identifier: MIT
"""test_scaleout -- three vmcached shards behind twemproxy (nutcracker).

The path docs/vmcached.md gives to users who outgrow one node: nutcracker
with ketama distribution in front of several vmcached servers. The test

  1. starts three shards (synchronous commits, pools in a private directory
     on /dev/shm) and nutcracker with a configuration it writes itself;
  2. stores KEYS keys through the proxy (version 1) and checks that every
     shard got a share of them;
  3. overwrites every key with version 2 through the proxy while one shard
     is killed with SIGKILL and, a moment later, restarted on its pool on
     the same port; writes to it fail meanwhile, the others go on;
  4. reads every key back through the proxy: a key whose version-2 store
     was acknowledged must hold version 2, byte for byte; one whose store
     failed holds version 1 or 2 (the store may have been committed just
     before the kill); one never rewritten holds version 1.
It fails if the kill did not interrupt any store, if a shard got no keys,
or if any acknowledged value is missing or different.

Every port is a free one picked by the kernel, so parallel runs do not
clash; if one is taken between the pick and the bind, the whole set-up is
tried again with new ports. VMC_SCALE_KEYS sets the number of keys (3000).
"""
import os
import random
import shutil
import socket
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import vmctest  # noqa: E402

KEYS = int(os.environ.get("VMC_SCALE_KEYS", "3000"))
SHARDS = 3
VICTIM = 1
DEADLINE = time.time() + 110  # the CTest timeout is 150 s


def value_of(key, version):
    rnd = random.Random("%s/%d" % (key, version))
    n = rnd.choice((1, 30, 200, 1500)) + rnd.randrange(40)
    head = ("%s:%d:" % (key, version)).encode()
    body = bytes(rnd.getrandbits(8) for _ in range(32))
    return (head + body * (n // 32 + 1))[:max(n, len(head))]


def nutcracker_bin():
    for b in (shutil.which("nutcracker"), "/usr/sbin/nutcracker"):
        if b and os.access(b, os.X_OK):
            return b
    vmctest.skip("Debian's nutcracker is not installed (scripts/setup.sh)")


def proxy_conf(path, port, shard_ports):
    # Servers are named (s0, s1, ...): ketama hashes the names, so a shard
    # may move to another address without its keys moving to other shards.
    # auto_eject_hosts false: while a shard is down its keys fail rather
    # than being sent to another shard (which would serve stale values once
    # it is back: its pool still holds them).
    with open(path, "w") as f:
        f.write("vmcached:\n"
                "  listen: 127.0.0.1:%d\n"
                "  hash: fnv1a_64\n"
                "  distribution: ketama\n"
                "  timeout: 2000\n"
                "  auto_eject_hosts: false\n"
                "  server_connections: 1\n"
                "  servers:\n" % port)
        for i, p in enumerate(shard_ports):
            f.write("   - 127.0.0.1:%d:1 s%d\n" % (p, i))


class Cluster:
    """Three shards and the proxy, on fresh ports in directory d."""

    def __init__(self, d):
        self.d = d
        ports = set()
        while len(ports) < SHARDS + 2:
            ports.add(vmctest.free_port())
        ports = sorted(ports)
        self.shard_ports = ports[:SHARDS]
        self.port, self.stats_port = ports[SHARDS:]
        self.shards = [self.start_shard(i) for i in range(SHARDS)]
        conf = os.path.join(d, "nutcracker.yml")
        proxy_conf(conf, self.port, self.shard_ports)
        self.proxy = vmctest.Server(
            [nutcracker_bin(), "-c", conf, "-s", str(self.stats_port),
             "-a", "127.0.0.1", "-o", os.path.join(d, "nutcracker.log"),
             "-p", os.path.join(d, "nutcracker.pid")], self.port)

    def start_shard(self, i):
        return vmctest.start_vmcached(os.path.join(self.d, "s%d.pool" % i),
                                      port=self.shard_ports[i],
                                      args=("-t", "1", "-m", "16"))


def curr_items(port):
    out = vmctest.request(port, b"stats\r\n", wait=0.3)
    for ln in out.split(b"\r\n"):
        if ln.startswith(b"STAT curr_items "):
            return int(ln.split()[2])
    return -1


def main():
    vmctest.vmcached_bin()
    nutcracker_bin()
    d = vmctest.private_dir("scaleout")
    ck = vmctest.Checker()
    cl = None
    for attempt in range(3):
        try:
            cl = Cluster(d)
            break
        except RuntimeError as e:  # a port taken between pick and bind
            print("set-up attempt %d: %s" % (attempt + 1, e))
            vmctest.kill_all()
            for f in os.listdir(d):
                os.unlink(os.path.join(d, f))
    if cl is None:
        print("FAIL: could not start three shards and the proxy")
        sys.exit(1)
    keys = [b"key:%d" % i for i in range(KEYS)]

    c = vmctest.TextClient(cl.port)
    bad = [k for k in keys if not c.set(k, value_of(k.decode(), 1))]
    ck.eq("version-1 stores through the proxy that failed", len(bad), 0)
    per_shard = [curr_items(p) for p in cl.shard_ports]
    print("keys per shard:", per_shard)
    ck.eq("keys over all shards", sum(per_shard), KEYS)
    ck.true("every shard holds keys", min(per_shard) > 0, str(per_shard))

    # Version 2 from a writer thread; the victim dies a third of the way in
    # and comes back once some stores have failed (or after 5 s).
    acked, failed = set(), set()
    progress = [0]

    def writer():
        w = vmctest.TextClient(cl.port)
        for i, k in enumerate(keys):
            if time.time() > DEADLINE:
                break
            (acked if w.set(k, value_of(k.decode(), 2)) else failed).add(k)
            progress[0] = i + 1
    t = threading.Thread(target=writer, daemon=True)
    t.start()
    while progress[0] < KEYS // 3 and t.is_alive():
        time.sleep(0.01)
    victim = cl.shards[VICTIM]
    victim.kill()  # SIGKILL
    killed_at = time.time()
    while not failed and t.is_alive() and time.time() < killed_at + 5:
        time.sleep(0.01)
    print("shard %d killed after %d stores; %d failed before restart"
          % (VICTIM, progress[0], len(failed)))
    cl.shards[VICTIM] = cl.start_shard(VICTIM)
    restarted_at = progress[0]
    t.join(max(1, DEADLINE - time.time()))
    ck.true("writer finished in time", not t.is_alive())
    ck.true("the kill interrupted stores", len(failed) > 0)
    ck.true("stores resumed after the restart",
            any(k in acked for k in keys[restarted_at + 1:]))
    print("version 2: %d acknowledged, %d failed" % (len(acked), len(failed)))

    wrong = 0
    for k in keys:
        got = c.get(k)
        if k in acked:
            ok = got == value_of(k.decode(), 2)
        elif k in failed:
            ok = got in (value_of(k.decode(), 1), value_of(k.decode(), 2))
        else:
            ok = got == value_of(k.decode(), 1)
        if not ok:
            wrong += 1
            if wrong <= 5:
                print("FAIL %s: got %r" % (k.decode(), (got or b"")[:60]))
    ck.eq("keys read back wrong through the proxy", wrong, 0)
    ck.true("the restarted shard serves its old keys",
            curr_items(cl.shard_ports[VICTIM]) == per_shard[VICTIM],
            "%d != %d" % (curr_items(cl.shard_ports[VICTIM]), per_shard[VICTIM]))
    for i, s in enumerate(cl.shards):
        ck.eq("shard %d clean stop" % i, s.stop(), 0)
    ck.done()


if __name__ == "__main__":
    main()
