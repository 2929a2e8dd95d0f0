# SPDX-License-Identifier: MIT
"""test_hostile -- malformed and hostile clients must not hurt the server.

  * random binary garbage on many connections, bad lengths, a length far
    beyond the item limit, a 250+ byte key, a line without end;
  * a client that stops in the middle of a value, holding its connection
    open: other clients' stores (synchronous commits!) must still be
    acknowledged -- no FAS stays open while a request is incomplete;
  * thousands of idle connections, then -c: one connection too many is
    refused with memcached's "ERROR Too many open connections";
and after all of it the server still answers correctly, stops cleanly, and
`vmcached --check` finds the pool whole.
"""
import os
import random
import socket
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import vmctest  # noqa: E402

req = vmctest.request
IDLE = int(os.environ.get("VMC_IDLE_CONNS", "3000"))


def garbage(chk, vm):
    rnd = random.Random(7)
    socks = []
    for i in range(50):
        s = socket.create_connection(("127.0.0.1", vm.port), timeout=5)
        n = rnd.randrange(1, 5000)
        data = bytes(rnd.getrandbits(8) for _ in range(n))
        if i % 5 == 0:   # garbage that looks like commands
            data = b"set k%d 0 0 %d\r\n" % (i, rnd.randrange(-5, 100)) + data
        if i % 7 == 0:
            data = b"\x80\x01\x00\x05" + data   # binary-protocol magic
        try:
            s.sendall(data)
        except OSError:
            pass
        socks.append(s)
    time.sleep(0.3)
    for s in socks:
        s.close()
    cases = [
        (b"set big 0 0 4294967295\r\n", None),
        (b"set big 0 0 99999999999999999999\r\n",
         b"CLIENT_ERROR bad command line format\r\n"),
        (b"set " + b"x" * 300 + b" 0 0 1\r\nz\r\n",
         b"CLIENT_ERROR bad command line format\r\nERROR\r\n"),
        (b"get " + b"y" * 5000 + b"\r\n", b"CLIENT_ERROR bad command line format\r\n"),
        (b"z" * 5000, b"<EOF>"),
    ]
    for data, want in cases:
        got = req(vm.port, data, wait=0.3)
        if want is not None:
            chk.eq("hostile %r" % data[:30], got, want)
    chk.eq("alive after garbage", req(vm.port, b"set ok 0 0 2\r\nok\r\nget ok\r\n"),
           b"STORED\r\nVALUE ok 0 2\r\nok\r\nEND\r\n")


def stalled_client(chk, vm):
    stall = socket.create_connection(("127.0.0.1", vm.port), timeout=5)
    stall.sendall(b"set stalled 0 0 100\r\n" + b"a" * 50)    # half a value
    time.sleep(0.2)
    s = socket.create_connection(("127.0.0.1", vm.port), timeout=5)
    s.settimeout(5)
    t = time.time()
    acked = 0
    try:
        for i in range(100):
            s.sendall(b"set other%d 0 0 3\r\nabc\r\n" % i)
            if s.recv(64) == b"STORED\r\n":
                acked += 1
    except socket.timeout:
        pass
    chk.eq("stores acknowledged while a client stalls mid-value", acked, 100)
    print("100 synchronous stores beside a stalled client: %.2f s" % (time.time() - t))
    stall.sendall(b"a" * 50 + b"\r\n")
    stall.settimeout(5)
    chk.eq("the stalled store completes later", stall.recv(64), b"STORED\r\n")
    stall.close()
    # a client that disappears mid-value
    gone = socket.create_connection(("127.0.0.1", vm.port), timeout=5)
    gone.sendall(b"set gone 0 0 100000\r\n" + b"b" * 5000)
    gone.close()
    time.sleep(0.1)
    chk.eq("a client gone mid-value stores nothing", req(vm.port, b"get gone stalled\r\n"),
           b"VALUE stalled 0 100\r\n" + b"a" * 100 + b"\r\nEND\r\n")
    s.close()


def idle_connections(chk, vm):
    socks = []
    try:
        for _ in range(IDLE):
            socks.append(socket.create_connection(("127.0.0.1", vm.port), timeout=5))
    except OSError as e:
        chk.true("open %d idle connections" % IDLE, False, str(e))
    time.sleep(0.5)
    chk.eq("serves beside %d idle connections" % len(socks),
           req(vm.port, b"set idle 0 0 1\r\ni\r\nget idle\r\n"),
           b"STORED\r\nVALUE idle 0 1\r\ni\r\nEND\r\n")
    st = req(vm.port, b"stats\r\n")
    cur = [int(ln.split()[2]) for ln in st.split(b"\r\n")
           if ln.startswith(b"STAT curr_connections ")]
    chk.true("curr_connections counts them", cur and cur[0] >= len(socks) + 1,
             repr(cur))
    for s in socks:
        s.close()


def conn_limit(chk, pool):
    vm = vmctest.start_vmcached(pool, args=["-c", "20"])
    time.sleep(0.5)     # let the server see the start-up probe close
    socks = [socket.create_connection(("127.0.0.1", vm.port), timeout=5)
             for _ in range(20)]
    answers = set()
    for s in socks:     # a round trip each: all 20 are accepted now
        s.sendall(b"version\r\n")
        answers.add(s.recv(64)[:7])
    chk.eq("20 connections within -c 20 served", answers, {b"VERSION"})
    extra = req(vm.port, b"version\r\n", wait=0.5)
    chk.eq("connection past -c refused", extra,
           b"ERROR Too many open connections\r\n<EOF>")
    for s in socks:
        s.close()
    time.sleep(0.3)
    chk.true("accepted again once below -c",
             req(vm.port, b"version\r\n").startswith(b"VERSION"))
    chk.eq("clean stop (-c)", vm.stop(), 0)


def main():
    chk = vmctest.Checker()
    pool = vmctest.pool_path("hostile")
    vmctest.remove_pool(pool)
    vm = vmctest.start_vmcached(pool, args=["-c", str(IDLE + 100)])
    garbage(chk, vm)
    stalled_client(chk, vm)
    idle_connections(chk, vm)
    chk.eq("still serving", req(vm.port, b"get ok\r\n"), b"VALUE ok 0 2\r\nok\r\nEND\r\n")
    chk.eq("clean stop", vm.stop(), 0)
    p = subprocess.run([vmctest.vmcached_bin(), "--check", "--pool", pool],
                       capture_output=True, timeout=60)
    chk.eq("pool whole after abuse (%s)" % p.stderr.decode().strip(), p.returncode, 0)
    conn_limit(chk, pool)
    if chk.failures:
        print(vm.stderr())
    chk.done()


if __name__ == "__main__":
    main()
