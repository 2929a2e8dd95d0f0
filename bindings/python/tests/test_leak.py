# SPDX-License-Identifier: MIT
"""Replaced and deleted values are freed: the heap's used bytes come back
to where they were after many updates (VPY_LEAK_UPDATES, default 1 M)."""

import os

import volipmem

UPDATES = int(os.environ.get("VPY_LEAK_UPDATES", "1000000"))
BATCH = 5000      # updates per FAS (one commit each)


def test_no_leak_over_many_updates(pool):
    root = pool.root
    root["d"] = {}
    root["l"] = [None] * 16
    d, l = root["d"], root["l"]
    values = ["s" * 40, 2**90, {"k": [1, 2.5, "x"]}, [b"bytes", None], 7, 1.5]

    def round_(n, base):
        i = 0
        while i < n:
            with pool.fas():
                for j in range(min(BATCH, n - i)):
                    k = (base + i + j) % 64
                    v = values[(i + j) % len(values)]
                    if (i + j) % 3 == 0:
                        l[k % 16] = v
                    elif (i + j) % 11 == 0:
                        d.pop(k, None)
                    else:
                        d[k] = v
            i += BATCH

    round_(10000, 0)                 # warm up: every key present once
    for k in range(64):
        d[k] = 0
    used = volipmem.stats()["heap_used"]
    round_(UPDATES, 1)
    for k in range(64):
        d[k] = 0
    for k in range(16):
        l[k] = None
    for k in range(64):
        d[k] = 0
    l[:] = [None] * 16
    after = volipmem.stats()["heap_used"]
    assert after <= used, "heap grew by %d bytes over %d updates" % (
        after - used, UPDATES)


def test_deleting_everything_returns_the_heap(pool):
    root = pool.root
    base = volipmem.stats()["heap_used"]
    with pool.fas():
        root["big"] = {str(i): {"v": [i, str(i) * 3]} for i in range(20000)}
    assert volipmem.stats()["heap_used"] > base + 20000 * 64
    del root["big"]
    assert volipmem.stats()["heap_used"] == base
