# SPDX-License-Identifier: MIT
"""Data survives the process: reopen in other processes (with other
PYTHONHASHSEEDs, so a per-process hash would break lookups), the seed's
example, relaxed mode + psync, and kill -9 in the middle of updates."""

import ast
import os
import signal
import subprocess
import sys
import time

import pytest

import volipmem
from conftest import forward_verify, needs_cc, run_child

WRITER = r"""
import sys, volipmem
pool = volipmem.open(sys.argv[1], 64 << 20)
root = pool.root
root["words"] = {"w%d" % i: i for i in range(2000)}
root["nums"] = {i: str(i) for i in range(-500, 500)}
root["mixed"] = {1: "one", 2**80: "big", 0.25: "quarter", b"b": "bytes", None: "none"}
root["list"] = [{"k": [i, str(i)]} for i in range(100)]
pool.close()
"""

READER = r"""
import sys, volipmem
pool = volipmem.open(sys.argv[1])
root = pool.root
w = root["words"]
assert all(w["w%d" % i] == i for i in range(2000)), "str lookup"
assert "w2000" not in w
n = root["nums"]
assert all(n[i] == str(i) for i in range(-500, 500)), "int lookup"
assert n[3.0] == "3" and n[True] == "1"
m = root["mixed"]
assert m[1.0] == "one" and m[float(2**80)] == "big" and m[0.25] == "quarter"
assert m[b"b"] == "bytes" and m[None] == "none"
assert root["list"][42] == {"k": [42, "42"]}
w["added"] = -1
pool.close()
print("ok")
"""


def test_reopen_in_other_processes(path):
    run_child(WRITER, path, env={"PYTHONHASHSEED": "1"})
    r = run_child(READER, path, env={"PYTHONHASHSEED": "2"})
    assert r.stdout.strip() == "ok"
    pool = volipmem.open(path)
    assert pool.root["words"]["added"] == -1
    assert len(pool.root["words"]) == 2001
    pool.close()


SEED_EXAMPLE = r"""
import sys, volipmem
volipmem.open(sys.argv[1], 16 << 20)
from volipmem import root
if not "hashmap" in root:
    hashmap = {}; hashmap[1] = "1"; root["hashmap"] = hashmap
else:
    hashmap = root["hashmap"]; hashmap[2] = "2"
volipmem.pcommit()
print(sorted(root["hashmap"].items()))
"""


def test_seed_example(path):
    assert run_child(SEED_EXAMPLE, path).stdout.strip() == "[(1, '1')]"
    assert (run_child(SEED_EXAMPLE, path).stdout.strip()
            == "[(1, '1'), (2, '2')]")


RELAXED = r"""
import os, sys, volipmem
pool = volipmem.open(sys.argv[1], 16 << 20, durability=volipmem.RELAXED,
                     interval_ms=1000)
for i in range(100):
    pool.root[i] = [i]
pool.psync()
print(repr(volipmem.stats()))
os._exit(0)          # no close(): only what psync made durable survives
"""

COMMIT_COUNTERS = ("pages_logged", "pages_collected", "bytes_persisted",
                   "ns_bound", "bound_waits", "ns_bound_wait")


def check_commit_counters(st, bound_ns):
    """The write-set and bound counters after durable writes: something
    reached the pool, the collected write sets hold at least the logged
    pages, and ns_bound is B (0 when synchronous)."""
    assert all(isinstance(st[k], int) for k in COMMIT_COUNTERS), st
    assert st["bytes_persisted"] > 0, st
    assert st["pages_collected"] >= st["pages_logged"] > 0, st
    assert st["ns_bound"] == bound_ns, st
    assert st["bound_waits"] > 0 or st["ns_bound_wait"] == 0, st


def test_relaxed_mode_psync(path):
    st = ast.literal_eval(run_child(RELAXED, path).stdout.strip())
    check_commit_counters(st, 4000 * 10**6)    # B = max(4N, N + 50 ms), N = 1 s
    pool = volipmem.open(path, durability=volipmem.SYNC)
    assert pool.root.to_python() == {i: [i] for i in range(100)}
    before = volipmem.stats()
    pool.root["sync"] = list(range(1000))      # durable when the store returns
    after = volipmem.stats()
    check_commit_counters(after, 0)
    assert after["bytes_persisted"] > before["bytes_persisted"]
    assert after["pages_collected"] > before["pages_collected"]
    assert after["bound_waits"] == before["bound_waits"]
    pool.close()


# The child keeps an invariant across several containers inside each FAS:
# total == sum(accounts), len(log) == n, log[-1] == n. It prints n after
# each committed FAS; the parent kills it with SIGKILL at a random point.
CRASHER = r"""
import random, sys, volipmem
# synchronous even if VOLIPMEM_COMMIT_INTERVAL_MS is set: a reported FAS
# must be durable
pool = volipmem.open(sys.argv[1], 64 << 20, durability=volipmem.SYNC)
root = pool.root
if "accounts" not in root:
    with pool.fas():
        root["accounts"] = {"a%d" % i: 100 for i in range(50)}
        root["total"] = 5000
        root["log"] = [0]
        root["n"] = 0
rng = random.Random()
acc = root["accounts"]
log = root["log"]
while True:
    with pool.fas():
        n = root["n"] + 1
        a, b = rng.sample(range(50), 2)
        amt = rng.randint(1, 10)
        acc["a%d" % a] -= amt
        acc["a%d" % b] += amt
        acc["big%d" % (n % 7)] = "x" * rng.randint(0, 5000)
        acc["big%d" % (n % 7)] = "y" * rng.randint(0, 5000)
        root["total"] = root["total"] + 0
        log.append(n)
        if len(log) > 300:
            del log[1:100]
        root["n"] = n
    print(n, flush=True)
"""


def check_invariant(path):
    pool = volipmem.open(path)
    root = pool.root
    acc = root["accounts"]
    total = sum(v for k, v in acc.items() if k.startswith("a"))
    n = root["n"]
    log = root["log"].to_python()
    pool.close()
    assert total == 5000
    assert log[-1] == n
    assert log == sorted(log)
    return n


@pytest.mark.parametrize("tracker", ["default", "mprotect",
                                     pytest.param("cc", marks=needs_cc)])
def test_kill9_mid_update(path, tracker):
    env = dict(os.environ)
    if tracker != "default":
        env["VOLIPMEM_TRACKER"] = tracker
    last = 0
    for round_ in range(3):
        proc = subprocess.Popen([sys.executable, "-c", CRASHER, path],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                text=True, env=env)
        committed = last
        deadline = time.monotonic() + 60
        target = 20 + 15 * round_
        seen = 0
        while seen < target and time.monotonic() < deadline:
            line = proc.stdout.readline()
            if not line:
                break
            committed = int(line)
            seen += 1
        time.sleep(0.003 * round_)      # land somewhere inside a FAS
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        err = proc.stderr.read()
        forward_verify(err)
        proc.stdout.close()
        proc.stderr.close()
        assert seen == target, "child stopped early: %s" % err
        n = check_invariant(path)
        # every FAS the child reported is durable; at most the ones it ran
        # after its last report (it keeps going until the signal lands)
        assert n >= committed, (n, committed)
        last = n
