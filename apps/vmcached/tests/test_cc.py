# SPDX-License-Identifier: MIT
"""test_cc -- which build may run the cc tracker.

The plain vmcached (VMCACHED, no instrumentation) asked for the cc
tracker, by --tracker cc or by VOLIPMEM_TRACKER=cc, must exit 2 before it
maps anything, with a message naming vmcached-cc; the pool file must not
be created. vmcached-cc (VMCACHED_CC) must run cc when nothing is named
(`stats`: vp_tracker cc), keep a store and an in-place incr across
kill -9 on it, and run another tracker when one is named (mprotect).
"""
import os
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import vmctest  # noqa: E402


def tracker_of(port):
    out = vmctest.request(port, b"stats\r\n")
    for line in out.split(b"\r\n"):
        if line.startswith(b"STAT vp_tracker "):
            return line.split()[2].decode()
    return None


def main():
    plain = vmctest.vmcached_bin()
    cc = os.environ.get("VMCACHED_CC")
    if not cc or not os.access(cc, os.X_OK):
        vmctest.skip("VMCACHED_CC does not name vmcached-cc (built only with clang and llvm-14-dev)")
    ck = vmctest.Checker()
    d = vmctest.private_dir("cc")
    base = {k: v for k, v in os.environ.items() if k != "VOLIPMEM_TRACKER"}

    for how, args, env in (("--tracker cc", ["--tracker", "cc"], base),
                           ("VOLIPMEM_TRACKER=cc", [], dict(base, VOLIPMEM_TRACKER="cc"))):
        pool = os.path.join(d, "plain.pool")
        r = subprocess.run([plain, "-p", str(vmctest.free_port()), "--pool", pool] + args,
                           env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                           timeout=30)
        err = r.stderr.decode(errors="replace")
        ck.eq("plain vmcached, %s: exit status" % how, r.returncode, 2)
        ck.true("plain vmcached, %s: message names vmcached-cc" % how,
                "vmcached-cc" in err and how in err, repr(err))
        ck.true("plain vmcached, %s: no pool created" % how, not os.path.exists(pool))

    pool = os.path.join(d, "cc.pool")
    os.environ.pop("VOLIPMEM_TRACKER", None)
    os.environ.pop("VMCTEST_TRACKER", None)
    os.environ["VMCACHED"] = cc
    vm = vmctest.start_vmcached(pool, env=base)
    ck.eq("vmcached-cc, no tracker named: vp_tracker", tracker_of(vm.port), "cc")
    ck.eq("vmcached-cc: set", vmctest.request(vm.port, b"set k 5 0 3\r\nabc\r\n"), b"STORED\r\n")
    ck.eq("vmcached-cc: incr in place",
          vmctest.request(vm.port, b"set n 0 0 4\r\n1000\r\nincr n 9\r\n"), b"STORED\r\n1009\r\n")
    vm.kill()
    vm = vmctest.start_vmcached(pool, port=vm.port, env=base)
    ck.eq("vmcached-cc after kill -9: get", vmctest.request(vm.port, b"get k n\r\n"),
          b"VALUE k 5 3\r\nabc\r\nVALUE n 0 4\r\n1009\r\nEND\r\n")
    vm.kill()
    vm = vmctest.start_vmcached(pool, port=vm.port, args=["--tracker", "mprotect"], env=base)
    ck.eq("vmcached-cc --tracker mprotect: vp_tracker", tracker_of(vm.port), "mprotect")
    ck.eq("vmcached-cc --tracker mprotect: get", vmctest.request(vm.port, b"get k\r\n"),
          b"VALUE k 5 3\r\nabc\r\nEND\r\n")
    ck.eq("vmcached-cc --tracker mprotect: clean stop", vm.stop(), 0)
    ck.done()


if __name__ == "__main__":
    main()
