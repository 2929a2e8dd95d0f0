# SPDX-License-Identifier: MIT
"""Packed values (src/packed.c): what a persistent TinyDB table stores for
each document. Every value type round-trips exactly, reads give plain
copies, what cannot be packed is stored the usual way, and tables written
before documents were packed (live dicts) keep working."""

import math
import random

import pytest

import volipmem


def rand_value(rng, depth=0):
    scalars = [None, True, False, 0, -1, 1, 2**63 - 1, -2**63, 2**64 + 5,
               -(2**70), 1.5, -0.0, math.inf, "", "é\u20ac", "x" * 40,
               "\udc80lone", b"", b"\x00\xff" * 9, 3.25e-300]
    r = rng.random()
    if depth < 3 and r < 0.2:
        return {rng.choice([0, 1, "k", "key%d" % rng.randint(0, 9), None,
                            2.5, b"b", -(2**65)]): rand_value(rng, depth + 1)
                for _ in range(rng.randint(0, 5))}
    if depth < 3 and r < 0.35:
        return [rand_value(rng, depth + 1) for _ in range(rng.randint(0, 5))]
    if r < 0.5:
        return rng.randint(-10**6, 10**6)
    return rng.choice(scalars)


def same(a, b):
    """Equality that also tells -0.0 from 0.0 and checks types."""
    if type(a) is not type(b):
        return False
    if isinstance(a, float):
        return math.copysign(1, a) == math.copysign(1, b) and a == b
    if isinstance(a, dict):
        return list(a) == list(b) and all(same(a[k], b[k]) for k in a)
    if isinstance(a, list):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b))
    return a == b


def test_round_trip_every_type(pool):
    rng = random.Random(7)
    t = pool.root["t"] = {}
    t = pool.root["t"]
    want = {}
    for i in range(300):
        v = {"v": rand_value(rng)} if i % 2 else rand_value(rng)
        t._set_packed(i, v)
        want[i] = v
    for i, v in want.items():
        got = t[i]
        assert same(got, v), (i, v, got)
        # reads are plain copies: changing one does not write through
        if isinstance(got, dict):
            got["new"] = 1
            assert "new" not in t[i]
    assert same(t.to_python(), want)


def test_nan_and_documents(pool):
    from tinydb.database import Document
    t = pool.root["t"] = {}
    t = pool.root["t"]
    t._set_packed(1, {"f": math.nan, "l": [1, [2, {"x": None}]]})
    t._update_packed({2: {"a": 1}, 3: {"b": "y" * 100}})
    got = t[1]
    assert math.isnan(got["f"]) and got["l"] == [1, [2, {"x": None}]]
    docs = t._documents(Document)
    assert [d.doc_id for d in docs] == [1, 2, 3]
    assert docs[2] == {"b": "y" * 100} and isinstance(docs[2], Document)


def test_packed_is_smaller_and_freed(pool):
    root = pool.root
    root["live"] = {}
    root["packed"] = {}
    doc = {"i": 123456, "s": "123456", "v": [123456, 246912]}
    u0 = volipmem.stats()["heap_used"]
    for i in range(1000):
        root["live"][i] = doc
    u1 = volipmem.stats()["heap_used"]
    for i in range(1000):
        root["packed"]._set_packed(i, doc)
    u2 = volipmem.stats()["heap_used"]
    assert (u2 - u1) * 2.5 < (u1 - u0), (u1 - u0, u2 - u1)
    for _ in range(3):          # replacing frees the old blob
        for i in range(1000):
            root["packed"]._set_packed(i, dict(doc, u=1))
    u3 = volipmem.stats()["heap_used"]
    assert u3 - u2 < (u2 - u1) // 2
    del root["packed"]
    assert volipmem.stats()["heap_used"] <= u1 + 4096


def test_unpackable_values_are_stored_as_usual(path):
    p = volipmem.open(path, 32 << 20, pickle=True)
    t = p.root["t"] = {}
    t = p.root["t"]
    t._set_packed(1, {"tuple": (1, 2)})          # pickled, not packed
    assert t[1].to_python() == {"tuple": (1, 2)}
    t._set_packed(2, {"x": 1})                   # packed
    assert type(t[2]) is dict and t[2] == {"x": 1}
    p.close()
    p = volipmem.open(path, 32 << 20)
    t = p.root["t"]
    with pytest.raises(TypeError, match="cannot store objects of type 'set'"):
        t._set_packed(3, {"s": {1}})
    with pytest.raises(TypeError, match="dict keys must be"):
        t._set_packed(3, {(1,): 1})
    assert 3 not in t
    p.close()


def test_table_written_with_live_documents(path):
    """A table whose documents are live dicts (as before packing) reads,
    searches, updates and grows with packed documents mixed in."""
    from tinydb import Query
    import volipmem.tinydb as vtdb
    p = volipmem.open(path, 32 << 20)
    p.root["tinydb"] = {"_default": {1: {"a": 1, "l": [1]}, 2: {"a": 2}}}
    p.close()
    db = vtdb.open(path, 32 << 20)
    assert db.insert({"a": 3}) == 3
    assert [d.doc_id for d in db.search(Query().a >= 2)] == [2, 3]
    assert db.get(doc_id=1) == {"a": 1, "l": [1]}
    db.update({"b": 1}, doc_ids=[1])
    db.update(lambda d: d.update(c=2), Query().a == 2)
    assert db.all() == [{"a": 1, "l": [1], "b": 1}, {"a": 2, "c": 2},
                        {"a": 3}]
    db.close()
