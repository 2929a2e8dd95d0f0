# SPDX-License-Identifier: MIT
"""test_service -- what running vmcached as a service relies on.

Clean stop. In relaxed mode with a commit period far longer than the test
(60 s), acknowledged stores are not yet committed; a loader stores
versioned values until SIGTERM arrives. The server must exit 0 in time,
and after a restart every key must hold its last acknowledged version or
a later one that was sent (exactly that value). As a control, the same
load ended by SIGKILL instead must lose acknowledged stores: otherwise the
clean-stop check proves nothing (a commit came from elsewhere).

-d / -P. `vmcached -d` must return 0 only once the daemon serves, leave a
pid file naming a live process other than itself that is not our child,
make a relative --pool relative to where it was started, serve stores;
the daemon killed with SIGKILL is started again with -d on the same pool
and holds every acknowledged store (synchronous mode); SIGTERM stops it
and removes its pid file. A -d start that cannot map its pool must exit
non-zero and say why on stderr.

Readiness. With $NOTIFY_SOCKET set (a datagram socket of the test's, a
path and an abstract "@" name), the server must send READY=1 only once
it accepts connections, and STOPPING=1 after SIGTERM.

Unit file. If systemd-analyze is there, apps/vmcached/vmcached.service
(ExecStart pointed at the binary under test, as `cmake --install` does)
must pass `systemd-analyze verify`.
"""
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import vmctest  # noqa: E402

RELAXED = ("--commit-interval", "60000", "-t", "2")
_daemons = []
_starting = []  # (starter process, pid file) of a -d start under way


def _kill_daemons():
    """Kill the daemons; one still starting is found through its pid file
    (written before its starter returns), waited for up to 5 s."""
    for starter, pidfile in _starting:
        end = time.time() + 5
        while starter.poll() is None and time.time() < end:
            time.sleep(0.05)
        pid = read_pid(pidfile)
        if pid:
            _daemons.append(pid)
    for pid in _daemons:
        try:
            os.kill(pid, signal.SIGKILL)
        except OSError:
            pass


vmctest.at_cleanup(_kill_daemons)


def value_of(key, ver):
    return (b"%s=%d;" % (key, ver)) * (1 + ver % 7)


def load_until(port, stop):
    """Store k0..k49 round-robin with rising versions until stop is set;
    return {key: (last acknowledged, last sent)}."""
    state = {}
    s = socket.create_connection(("127.0.0.1", port), timeout=5)
    buf = b""
    ver = 0
    try:
        while not stop.is_set():
            ver += 1
            key = b"k%d" % (ver % 50)
            val = value_of(key, ver)
            acked, _ = state.get(key, (0, 0))
            state[key] = (acked, ver)
            s.sendall(b"set %s 0 0 %d\r\n%s\r\n" % (key, len(val), val))
            while b"\r\n" not in buf:
                d = s.recv(4096)
                if not d:
                    return state
                buf += d
            line, buf = buf.split(b"\r\n", 1)
            if line == b"STORED":
                state[key] = (ver, ver)
    except OSError:
        pass
    finally:
        s.close()
    return state


def version_in(key, val, lo, hi):
    return val is not None and any(val == value_of(key, v)
                                   for v in range(max(lo, 1), hi + 1))


def load_and_stop(ck, pool, sig):
    """Load, stop with sig, restart; the number of keys whose last
    acknowledged store is gone."""
    vmctest.remove_pool(pool)
    srv = vmctest.start_vmcached(pool, args=RELAXED)
    stop = threading.Event()
    res = {}
    t = threading.Thread(target=lambda: res.update(load_until(srv.port, stop)))
    t.start()
    time.sleep(0.7)
    t0 = time.time()
    srv.proc.send_signal(sig)
    try:
        rc = srv.proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        rc = None
    took = time.time() - t0
    stop.set()
    t.join()
    if sig == signal.SIGTERM:
        ck.eq("exit status after SIGTERM", rc, 0)
        ck.true("SIGTERM stop within 5 s", took < 5, "%.2f s" % took)
    acked = sum(1 for a, _ in res.values() if a)
    ck.true("the loader got acknowledgements", acked >= 50, str(acked))
    srv = vmctest.start_vmcached(pool, port=srv.port, args=RELAXED)
    c = vmctest.TextClient(srv.port)
    lost = 0
    for key, (a, sent) in res.items():
        val = c.get(key)
        if a and not version_in(key, val, a, sent):
            lost += 1
        elif not a and val is not None and not version_in(key, val, 1, sent):
            lost += 1
    c.close()
    ck.eq("%s: stop status on restart" % signal.Signals(sig).name,
          srv.stop(), 0)
    print("%s after %.2f s of load: %d keys, %d lost" %
          (signal.Signals(sig).name, 0.7, len(res), lost))
    return lost


def read_pid(path):
    try:
        with open(path) as f:
            return int(f.read().strip())
    except (OSError, ValueError):
        return None


def alive(pid):
    """Running: a zombie counts as gone (the daemon is not our child, and
    whoever reaps orphans here may be slow or absent)."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return False


def stop_daemon(pid, sig, seconds):
    """Send sig; True once the daemon is gone, False after `seconds`."""
    os.kill(pid, sig)
    end = time.time() + seconds
    while alive(pid) and time.time() < end:
        time.sleep(0.05)
    if alive(pid):
        return False
    _daemons.remove(pid)  # its pid may be reused: never signal it again
    return True


def daemon_start(ck, d, port, what):
    pidfile = os.path.join(d, "vmc.pid")
    starter = subprocess.Popen([vmctest.vmcached_bin(), "-d", "-P", "vmc.pid",
                                "-p", str(port), "-t", "1", "-m", "16",
                                "--pool", "rel.pool"], cwd=d,
                               stdin=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)
    _starting.append((starter, pidfile))
    rc = starter.wait(timeout=60)
    pid = read_pid(pidfile)
    if pid:
        _daemons.append(pid)
    _starting.remove((starter, pidfile))
    ck.eq("%s: -d exit status" % what, rc, 0)
    ck.true("%s: pid file names a live process" % what,
            pid is not None and alive(pid), str(pid))
    # it serves at once: -d returned only after the listener was open
    out = vmctest.request(port, b"version\r\n", wait=0.2)
    ck.true("%s: serves when -d returns" % what, out.startswith(b"VERSION"),
            repr(out))
    return pid


def test_daemon(ck):
    d = vmctest.private_dir("service")
    port = vmctest.free_port()
    pid = daemon_start(ck, d, port, "first start")
    ck.true("relative --pool is relative to the start directory",
            os.path.exists(os.path.join(d, "rel.pool")))
    if pid:
        ck.true("daemon is in its own session", os.getsid(pid) == pid)
    n = 200
    c = vmctest.TextClient(port)
    stored = sum(1 for i in range(n) if c.set(b"d%d" % i, value_of(b"d", i)))
    ck.eq("stores acknowledged by the daemon", stored, n)
    c.close()
    if pid:
        ck.true("daemon gone after SIGKILL",
                stop_daemon(pid, signal.SIGKILL, 5))
    pid = daemon_start(ck, d, port, "restart after SIGKILL")
    c = vmctest.TextClient(port)
    missing = sum(1 for i in range(n)
                  if c.get(b"d%d" % i) != value_of(b"d", i))
    c.close()
    ck.eq("acknowledged stores missing after kill -9 and -d restart",
          missing, 0)
    if pid:
        ck.true("daemon stops on SIGTERM", stop_daemon(pid, signal.SIGTERM, 10))
        ck.true("clean stop removes the pid file",
                not os.path.exists(os.path.join(d, "vmc.pid")))
    r = subprocess.run([vmctest.vmcached_bin(), "-d", "-p",
                        str(vmctest.free_port()), "--pool",
                        os.path.join(d, "no-such-dir", "x.pool")],
                       timeout=60, stdin=subprocess.DEVNULL,
                       capture_output=True)
    ck.true("-d with an unusable pool fails", r.returncode != 0)
    ck.true("... and says why", b"cannot map pool" in r.stderr,
            repr(r.stderr[-200:]))


def test_notify(ck, abstract):
    d = vmctest.private_dir("notify")
    name = "@vmctest-notify-%d" % os.getpid() if abstract \
        else os.path.join(d, "notify")
    what = "NOTIFY_SOCKET=%s" % ("@..." if abstract else "path")
    ns = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    ns.bind("\0" + name[1:] if abstract else name)
    ns.settimeout(20)
    env = dict(os.environ, NOTIFY_SOCKET=name)
    port = vmctest.free_port()
    argv = [vmctest.vmcached_bin(), "-p", str(port), "-t", "1", "-m", "16",
            "--pool", os.path.join(d, "n.pool")]
    p = vmctest.spawn(argv, env=env, stdin=subprocess.DEVNULL,
                      stderr=subprocess.DEVNULL)
    try:
        msg = ns.recv(256)
    except socket.timeout:
        msg = b"<none>"
    ck.eq("%s: first notification" % what, msg, b"READY=1")
    try:
        socket.create_connection(("127.0.0.1", port), timeout=5).close()
        listening = True
    except OSError:
        listening = False
    ck.true("%s: accepts connections at READY=1" % what, listening)
    p.terminate()
    try:
        msg = ns.recv(256)
    except socket.timeout:
        msg = b"<none>"
    ck.eq("%s: notification after SIGTERM" % what, msg, b"STOPPING=1")
    ck.eq("%s: exit status" % what, p.wait(timeout=30), 0)
    ns.close()


def test_unit(ck):
    sa = shutil.which("systemd-analyze")
    if not sa:
        print("systemd-analyze not installed: unit file not verified")
        return
    src = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..",
                       "vmcached.service")
    with open(src) as f:
        unit = f.read()
    ck.true("unit starts /usr/local/bin/vmcached (install rewrites it)",
            "ExecStart=/usr/local/bin/vmcached " in unit)
    path = os.path.join(vmctest.private_dir("unit"), "vmcached.service")
    with open(path, "w") as f:
        f.write(unit.replace("/usr/local/bin/vmcached", vmctest.vmcached_bin()))
    r = subprocess.run([sa, "verify", path], capture_output=True, timeout=60)
    ck.eq("systemd-analyze verify vmcached.service",
          (r.returncode, r.stdout + r.stderr), (0, b""))


def main():
    vmctest.vmcached_bin()
    ck = vmctest.Checker()
    pool = vmctest.pool_path("service")
    lost = load_and_stop(ck, pool, signal.SIGTERM)
    ck.eq("acknowledged stores lost by a SIGTERM stop", lost, 0)
    lost = load_and_stop(ck, pool, signal.SIGKILL)
    ck.true("control: SIGKILL in relaxed mode loses acknowledged stores",
            lost > 0)
    test_daemon(ck)
    test_notify(ck, abstract=False)
    test_notify(ck, abstract=True)
    test_unit(ck)
    ck.done()


if __name__ == "__main__":
    main()
