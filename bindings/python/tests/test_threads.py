# SPDX-License-Identifier: MIT
"""Threads: mutations from several threads under the GIL, and the GIL is
released while a thread waits for a commit or for pstart(), so a thread
inside a FAS that needs the GIL is never deadlocked by one waiting to
commit."""

import threading
import time

import volipmem


def test_threads_mutate_concurrently(pool):
    root = pool.root
    root["shared"] = {}
    root["lists"] = {str(t): [] for t in range(4)}
    errors = []

    def worker(t):
        try:
            d = pool.root["shared"]
            lst = pool.root["lists"][str(t)]
            for i in range(150):
                d["%d-%d" % (t, i)] = [t, i]
                lst.append(i)
                if i % 10 == 0:
                    with pool.fas():
                        d["%d-batch" % t] = i
                        lst.append(-i)
        except Exception as e:     # reported below
            errors.append(e)

    threads = [threading.Thread(target=worker, args=(t,)) for t in range(4)]
    for th in threads:
        th.start()
    for th in threads:
        th.join(60)
    assert not any(th.is_alive() for th in threads)
    assert not errors
    d = root["shared"]
    assert len(d) == 4 * 151
    for t in range(4):
        assert all(d["%d-%d" % (t, i)] == [t, i] for i in range(150))
        lst = root["lists"][str(t)]
        assert lst[:3] == [0, 0, 1] and len(lst) == 150 + 15
        assert sorted(x for x in lst if x > 0) == list(range(1, 150))


def test_gil_released_while_waiting_for_commit(pool):
    """Thread A sits inside a FAS and needs the GIL to leave it; thread B
    calls pcommit(), which must wait for A without holding the GIL, and
    thread C mutates (pstart() may block behind B's pending commit)."""
    root = pool.root
    root["x"] = 0
    inside = threading.Event()
    done = []

    def a():
        with pool.fas():
            root_a = pool.root
            root_a["x"] = 1
            inside.set()
            for i in range(50):           # Python work needing the GIL
                root_a["a%d" % i] = i
                time.sleep(0.002)
        done.append("a")

    def b():
        inside.wait(10)
        pool.pcommit()
        done.append("b")

    def c():
        inside.wait(10)
        for i in range(20):
            pool.root["c%d" % i] = i
        done.append("c")

    ts = [threading.Thread(target=f, daemon=True) for f in (a, b, c)]
    for t in ts:
        t.start()
    for t in ts:
        t.join(30)
    assert sorted(done) == ["a", "b", "c"], "deadlock: %r finished" % done
    assert root["x"] == 1 and root["a49"] == 49 and root["c19"] == 19


def test_ticks_continue_during_commits(pool):
    """Another Python thread keeps running while commits happen."""
    stop = threading.Event()
    ticks = [0]

    def ticker():
        while not stop.is_set():
            ticks[0] += 1
            time.sleep(0)

    th = threading.Thread(target=ticker, daemon=True)
    th.start()
    root = pool.root
    for i in range(300):
        root[i] = "v" * 100
    stop.set()
    th.join(10)
    assert ticks[0] > 0
    assert volipmem.stats()["fas"] >= 300
