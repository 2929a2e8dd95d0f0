# SPDX-License-Identifier: MIT
"""Shared fixtures: a fresh pool on /dev/shm per test (one pool per
process, so each test closes its pool), and a runner for child processes
that use the same build of the package."""

import glob
import itertools
import os
import subprocess
import sys

import pytest

import volipmem

# pip_install.sh runs the suite against the installed package: make sure
# that is the copy imported, not one on PYTHONPATH.
if os.environ.get("VPY_EXPECT_INSTALLED") == "1":
    assert volipmem.__file__.startswith(sys.prefix + os.sep), volipmem.__file__


def cc_built():
    """Whether volipmem._volipmem_cc (the cc build) sits beside the package."""
    import importlib.util
    return importlib.util.find_spec("volipmem._volipmem_cc") is not None


needs_cc = pytest.mark.skipif(not cc_built(), reason="volipmem._volipmem_cc "
                              "not built (no clang with matching LLVM headers)")

SHM = "/dev/shm" if os.path.isdir("/dev/shm") else "/tmp"
_counter = itertools.count()


def pool_path(tag="t"):
    return os.path.join(SHM, "vpy-%d-%d-%s.pool" % (os.getpid(),
                                                     next(_counter), tag))


def remove_pool(path):
    for f in glob.glob(path + "*"):
        try:
            os.unlink(f)
        except FileNotFoundError:
            pass


@pytest.fixture
def path():
    p = pool_path()
    yield p
    volipmem.close()
    remove_pool(p)


@pytest.fixture
def pool(path):
    p = volipmem.open(path, 32 << 20)
    yield p
    p.close()


def forward_verify(stderr):
    """Pass a child's verify-mode lines on to this process's stderr: under
    tests/verify/run_clean.sh (pytest -s) a child's report of a line the
    tracker did not record then fails the run like one of the parent's."""
    for line in stderr.splitlines():
        if "volipmem: verify:" in line:
            print(line, file=sys.stderr, flush=True)


def run_child(code, *args, env=None, check=True, timeout=120,
              verify_ok=True, **kw):
    """Run `code` in a fresh /usr/bin/python3 with this package on its path.
    verify_ok=False: the child's verify reports are expected (not passed on)."""
    e = dict(os.environ)
    if env:
        e.update(env)
    r = subprocess.run([sys.executable, "-c", code] + [str(a) for a in args],
                       env=e, capture_output=True, text=True, timeout=timeout,
                       **kw)
    if verify_ok:
        forward_verify(r.stderr)
    if check and r.returncode != 0:
        raise AssertionError("child failed (%d):\n%s\n%s"
                             % (r.returncode, r.stdout, r.stderr))
    return r
