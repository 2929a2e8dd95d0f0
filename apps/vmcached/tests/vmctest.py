# SPDX-License-Identifier: MIT
"""vmctest -- shared helpers of the vmcached tests.

Starts vmcached and Debian's memcached on free 127.0.0.1 ports, always
kills them at exit (atexit + SIGTERM/SIGINT handlers, the Python form of a
shell trap), and offers a raw-socket request helper so that both servers
can be asked the same bytes and their answers compared.
"""
import atexit
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time

SKIP = 77
_procs = []
_files = []
_dirs = []
_hooks = []


def at_cleanup(fn):
    """Run fn at exit (and on SIGTERM/SIGINT), before servers are killed:
    e.g. to kill daemons that are not our children."""
    _hooks.append(fn)


def kill_all(wait=True):
    """SIGKILL every server started so far. A signal handler passes
    wait=False: the code it interrupted may be inside Popen.wait(), whose
    lock a nested wait would block on."""
    for p in _procs:
        if p.returncode is None:
            try:
                os.kill(p.pid, signal.SIGKILL)
            except OSError:
                pass
            if wait:
                p.wait()


def _cleanup(wait=True):
    for fn in _hooks:
        fn()
    kill_all(wait)
    for f in _files:
        try:
            os.unlink(f)
        except OSError:
            pass
    for d in _dirs:
        shutil.rmtree(d, ignore_errors=True)


atexit.register(_cleanup)


_spawning = [0]
_pending_sig = []


def _on_signal(sig, frame):
    if _spawning[0]:
        _pending_sig.append(sig)
        return
    _cleanup(wait=False)
    sys.exit(128 + sig)


signal.signal(signal.SIGTERM, _on_signal)
signal.signal(signal.SIGINT, _on_signal)


def skip(why):
    print("SKIP: " + why)
    sys.exit(SKIP)


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def pool_path(tag):
    path = "/dev/shm/vmcached-test-%s-%d.pool" % (tag, os.getpid())
    _files.append(path)
    return path


def private_dir(tag):
    """A fresh directory on /dev/shm for pools and files, removed at exit."""
    import tempfile
    d = tempfile.mkdtemp(prefix="vmcached-test-%s-" % tag, dir="/dev/shm")
    _dirs.append(d)
    return d


def remove_pool(path):
    try:
        os.unlink(path)
    except OSError:
        pass


def wait_port(port, proc, timeout=20.0):
    end = time.time() + timeout
    while time.time() < end:
        if proc.poll() is not None:
            raise RuntimeError("server exited early with %d" % proc.returncode)
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError("server did not listen on port %d" % port)


def spawn(argv, **kw):
    """Popen a server that the cleanup kills. A SIGTERM/SIGINT between the
    fork and the bookkeeping is handled after it, else the cleanup would
    miss the new process."""
    _spawning[0] += 1
    try:
        p = subprocess.Popen(argv, **kw)
        _procs.append(p)
    finally:
        _spawning[0] -= 1
    if _pending_sig:
        _on_signal(_pending_sig[0], None)
    return p


class Server:
    """A running server: .port, .proc; stop() or kill() it."""

    def __init__(self, argv, port, env=None):
        self.port = port
        self.argv = argv
        self.errpath = "/tmp/vmctest-%d-%d.err" % (os.getpid(), port)
        _files.append(self.errpath)
        self.err = open(self.errpath, "wb")
        # VMCTEST_SERVER_STDERR=inherit: the servers write to the test's
        # own stderr (for a wrapper that reads it, e.g. verify mode's).
        inherit = os.environ.get("VMCTEST_SERVER_STDERR") == "inherit"
        self.proc = spawn(argv, stdout=subprocess.DEVNULL,
                          stderr=None if inherit else self.err, env=env)
        wait_port(port, self.proc)

    def stderr(self):
        self.err.flush()
        with open(self.errpath, "rb") as f:
            return f.read().decode(errors="replace")

    def stop(self):
        """SIGTERM and wait: a clean shutdown must exit 0."""
        self.proc.terminate()
        rc = self.proc.wait(timeout=30)
        return rc

    def kill(self):
        self.proc.kill()
        self.proc.wait()


def vmcached_bin():
    b = os.environ.get("VMCACHED")
    if not b or not os.access(b, os.X_OK):
        skip("VMCACHED does not name the vmcached binary")
    return os.path.abspath(b)


def start_vmcached(pool, port=None, args=(), env=None):
    """VMCTEST_TRACKER=NAME: the server must report that tracker in
    `stats` (vp_tracker), else the start fails; a cc test that silently
    ran on another tracker would prove nothing about cc."""
    port = port or free_port()
    argv = [vmcached_bin(), "-p", str(port), "-l", "127.0.0.1", "--pool", pool,
            "-m", "64", "-t", "2"] + list(args)
    srv = Server(argv, port, env=env)
    want = os.environ.get("VMCTEST_TRACKER")
    if want:
        m = re.search(rb"STAT vp_tracker (\S+)", request(port, b"stats\r\n"))
        got = m.group(1).decode() if m else "(no vp_tracker in stats)"
        if got != want:
            srv.kill()
            raise RuntimeError("%s runs tracker %s, VMCTEST_TRACKER wants %s"
                               % (argv[0], got, want))
    return srv


def start_memcached(args=()):
    mc = shutil.which("memcached") or "/usr/bin/memcached"
    if not os.access(mc, os.X_OK):
        skip("Debian's memcached is not installed (apt install memcached)")
    port = free_port()
    argv = [mc, "-u", "root", "-p", str(port), "-l", "127.0.0.1", "-U", "0",
            "-m", "64", "-t", "2"] + list(args)
    return Server(argv, port)


def request(port, data, wait=0.3, expect_close=False):
    """Send raw bytes, return everything the server answers until it has
    been quiet for `wait` seconds (or closed: '<EOF>' is appended)."""
    s = socket.create_connection(("127.0.0.1", port), timeout=60)
    s.settimeout(wait)
    s.sendall(data)
    out = b""
    try:
        while True:
            d = s.recv(1 << 20)
            if not d:
                out += b"<EOF>"
                break
            out += d
    except socket.timeout:
        pass
    except ConnectionResetError:
        out += b"<EOF>"
    s.close()
    return out


class TextClient:
    """One text-protocol connection, reopened after any error: set() and
    get() see whole replies without waiting for the server to go quiet."""

    def __init__(self, port):
        self.port = port
        self.s = None
        self.buf = b""

    def _line(self):
        while b"\r\n" not in self.buf:
            d = self.s.recv(65536)
            if not d:
                raise OSError("closed")
            self.buf += d
        line, self.buf = self.buf.split(b"\r\n", 1)
        return line

    def call(self, req, want_value=False):
        """Send req; the reply's first line (and value), None on failure."""
        try:
            if self.s is None:
                self.s = socket.create_connection(("127.0.0.1", self.port),
                                                  timeout=10)
                self.buf = b""
            self.s.sendall(req)
            line = self._line()
            if not want_value or not line.startswith(b"VALUE "):
                return line, None
            n = int(line.split()[3])
            while len(self.buf) < n + 7:  # value, \r\n, END\r\n
                d = self.s.recv(65536)
                if not d:
                    raise OSError("closed")
                self.buf += d
            val, rest = self.buf[:n], self.buf[n:]
            if not rest.startswith(b"\r\nEND\r\n"):
                raise OSError("bad reply %r" % rest[:40])
            self.buf = rest[7:]
            return line, val
        except (OSError, ValueError, IndexError):
            if self.s is not None:
                self.s.close()
            self.s = None
            return None, None

    def set(self, key, val):
        line, _ = self.call(b"set %s 0 0 %d\r\n%s\r\n" % (key, len(val), val))
        return line == b"STORED"

    def get(self, key):
        line, val = self.call(b"get %s\r\n" % key, want_value=True)
        return val if line and line.startswith(b"VALUE ") else None

    def close(self):
        if self.s is not None:
            self.s.close()
        self.s = None


def request_both(port_a, port_b, data, wait=0.3):
    """request() to two servers at once (halves the quiet-time waits)."""
    import threading
    res = {}

    def one(p):
        res[p] = request(p, data, wait)
    t = threading.Thread(target=one, args=(port_a,))
    t.start()
    one(port_b)
    t.join()
    return res[port_a], res[port_b]


_cas_re = re.compile(rb"^(VALUE \S+ \d+ \d+) \d+\r$", re.M)


def normalize(resp):
    """Answers that may differ legitimately: CAS values and version."""
    resp = _cas_re.sub(rb"\1 <cas>\r", resp)
    resp = re.sub(rb"VERSION [^\r]*", b"VERSION <v>", resp)
    return resp


class Checker:
    """Collects failures so a test reports all of them, then exits 1."""

    def __init__(self):
        self.failures = 0
        self.checks = 0

    def eq(self, what, got, want):
        self.checks += 1
        if got != want:
            self.failures += 1
            print("FAIL %s:\n   got  %r\n   want %r" % (what, got, want))

    def true(self, what, cond, detail=""):
        self.checks += 1
        if not cond:
            self.failures += 1
            print("FAIL %s %s" % (what, detail))

    def done(self):
        print("%d checks, %d failures" % (self.checks, self.failures))
        sys.exit(1 if self.failures else 0)
