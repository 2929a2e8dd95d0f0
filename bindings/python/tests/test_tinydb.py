# SPDX-License-Identifier: MIT
"""TinyDB on VolipMem behaves as stock TinyDB: the same random operations
run against a MemoryStorage database (the oracle) and against both the
plain VolipMemStorage and the persistent table class, and every result is
compared; data survives reopening."""

import random

import pytest

tinydb = pytest.importorskip("tinydb")
from tinydb import Query, TinyDB, where  # noqa: E402
from tinydb.middlewares import CachingMiddleware  # noqa: E402
from tinydb.storages import MemoryStorage  # noqa: E402

import volipmem  # noqa: E402
import volipmem.tinydb as vtdb  # noqa: E402


def open_subject(kind, path):
    """table / storage: the two ways in; cached-*: the same under
    TinyDB's CachingMiddleware."""
    if kind == "table":
        return vtdb.open(path, 64 << 20)
    if kind == "cached-table":
        return TinyDB(path, size=64 << 20,
                      storage=CachingMiddleware(vtdb.VolipMemStorage),
                      table_class=vtdb.VolipMemTable)
    if kind == "cached-storage":
        return TinyDB(path, size=64 << 20,
                      storage=CachingMiddleware(vtdb.VolipMemStorage))
    return TinyDB(path, size=64 << 20, storage=vtdb.VolipMemStorage)


KINDS = ["table", "storage", "cached-table", "cached-storage"]


def norm(r):
    """Results made comparable: documents with their ids."""
    if isinstance(r, tinydb.database.Document):
        return ("doc", r.doc_id, dict(r))
    if isinstance(r, list):
        return [norm(x) for x in r]
    return r


def call(fn, *a, **kw):
    try:
        return ("ok", norm(fn(*a, **kw)))
    except Exception as e:
        return ("exc", type(e))


def rand_doc(rng):
    d = {"i": rng.randint(0, 20), "s": str(rng.randint(0, 20))}
    if rng.random() < 0.5:
        d["v"] = [rng.randint(0, 5) for _ in range(rng.randint(0, 3))]
    if rng.random() < 0.3:
        d["nested"] = {"x": rng.randint(0, 2), "f": rng.random()}
    if rng.random() < 0.2:
        d["tag"] = None
    return d


def rand_query(rng):
    q = Query()
    k = rng.randint(0, 20)
    return rng.choice([
        q.i == k, q.i > k, q.i <= k, q.s == str(k), q.s.matches("1.*"),
        q.s.search("5"), q.v.any([k % 5]), q.v.all([1]), q.tag.exists(),
        (q.i < k) | (q.s == "3"), ~(q.i == k), q.nested.x == k % 3,
        where("i").test(lambda v: v % 3 == 0), q.v.exists() & (q.i > k),
        q.missing == 1,
    ])


def step(rng, dbs, tables):
    """One random operation applied to every db; returns the results."""
    name = rng.choice(tables)
    op = rng.randint(0, 16)
    k = rng.randint(1, 30)
    cond = rand_query(rng)
    doc = rand_doc(rng)
    docs = [rand_doc(rng) for _ in range(rng.randint(0, 4))]
    fields = {"u": rng.randint(0, 9)}
    purge = rng.random() < 0.05
    # The default table's operations, half the time through the database
    # object (volipmem.tinydb.open's forwarders, stock __getattr__).
    via_db = name == "_default" and rng.random() < 0.5
    out = []
    for db in dbs:
        t = db if via_db else db.table(name)
        if op <= 3:
            out.append(call(t.insert, dict(doc)))
        elif op == 4:
            out.append(call(t.insert_multiple, [dict(d) for d in docs]))
        elif op == 5:
            out.append(call(t.search, cond))
        elif op == 6:
            out.append((call(t.get, cond), call(t.get, doc_id=k)))
        elif op == 7:
            out.append((call(t.contains, cond), call(t.contains, doc_ids=[k, k + 1]),
                        call(t.count, cond)))
        elif op == 8:
            out.append(call(t.update, dict(fields), cond))
        elif op == 9:
            out.append(call(t.update, dict(fields), doc_ids=[k]))
        elif op == 10:
            def bump(d):
                d["i"] = d.get("i", 0) + 100
            out.append(call(t.update, bump, cond))
        elif op == 11:
            out.append(call(t.remove, cond))
        elif op == 12:
            out.append(call(t.remove, doc_ids=[k]))
        elif op == 13:
            out.append(call(t.upsert, dict(doc), cond))
        elif op == 14:
            got = t.get(doc_id=k)
            if got is not None:
                got["w"] = 1
                out.append(call(t.write_back, [got]))
            else:
                out.append(None)
        elif op == 15:
            out.append((len(t), call(t.all), sorted(db.tables())))
        else:
            if purge:
                out.append(call(t.purge))
            else:
                out.append(call(lambda: [norm(d) for d in t]))
    return op, out


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("seed", range(3))
def test_random_ops_match_memory_storage(path, kind, seed):
    rng = random.Random(seed)
    oracle = TinyDB(storage=MemoryStorage)
    subject = open_subject(kind, path)
    tables = ["_default", "other"]
    for i in range(300 if kind.endswith("table") else 150):
        op, (want, got) = step(rng, [oracle, subject], tables)
        assert got == want, (i, op)
    for name in tables:
        assert norm(subject.table(name).all()) == norm(oracle.table(name).all())
    subject.close()
    # reopen: same documents, same ids, and (as stock TinyDB does when it
    # opens a database) new ids go on from the largest id present
    again = open_subject(kind, path)
    for name in tables:
        assert norm(again.table(name).all()) == norm(oracle.table(name).all())
        top = max([d.doc_id for d in oracle.table(name).all()], default=0)
        assert again.table(name).insert({"z": 1}) == top + 1
    again.close()


@pytest.mark.parametrize("kind", KINDS)
def test_tables_and_purge(path, kind):
    db = open_subject(kind, path)
    db.insert({"a": 1})
    db.table("t1").insert({"b": 2})
    db.table("t2").insert_multiple([{"c": 3}, {"c": 4}])
    assert db.tables() == {"_default", "t1", "t2"}
    db.purge_table("t1")
    assert db.tables() == {"_default", "t2"}
    assert db.table("t2").count(Query().c > 3) == 1
    db.table("t2").purge()
    assert len(db.table("t2")) == 0
    assert db.table("t2").insert({"c": 5}) == 1
    db.purge_tables()
    assert db.tables() == set() or db.tables() == {"_default"}
    assert len(db) == 0
    db.close()


def test_query_cache_behaves_as_stock(path):
    db = vtdb.open(path, 32 << 20)
    q = Query().i == 1
    db.insert({"i": 1})
    first = db.search(q)
    assert db._table._query_cache.get(q) is not None
    assert db.search(q) == first and db.search(q) is not first
    db.insert({"i": 1})                  # a write clears the cache
    assert len(db._table._query_cache) == 0
    assert [d.doc_id for d in db.search(q)] == [1, 2]
    db.close()


def test_stock_storage_frees_what_it_replaces(path):
    db = TinyDB(path, size=64 << 20, storage=vtdb.VolipMemStorage)
    db.insert_multiple({"i": i, "s": "x" * 50} for i in range(200))
    db.update({"s": "y" * 50}, doc_ids=[1])
    used = volipmem.stats()["heap_used"]
    for i in range(30):
        db.update({"s": "y" * 50}, doc_ids=[i + 1])
    assert volipmem.stats()["heap_used"] <= used
    db.close()


def test_table_ops_are_one_commit_each(path):
    db = vtdb.open(path, 32 << 20)
    db.insert_multiple({"i": i} for i in range(100))
    fas0 = volipmem.stats()["fas"]
    db.insert({"i": 1000})
    db.update({"u": 1}, doc_ids=[5])
    db.remove(doc_ids=[6])
    assert volipmem.stats()["fas"] - fas0 == 3
    db.close()


def test_open_takes_storage_and_table_class(path):
    db = vtdb.open(path, 32 << 20,
                   storage=CachingMiddleware(vtdb.VolipMemStorage))
    assert isinstance(db.storage, CachingMiddleware)
    assert isinstance(db.table("t"), vtdb.VolipMemTable)
    db.insert({"a": 1})
    assert db.search(Query().a == 1) == [{"a": 1}]
    db.close()

    class Mine(vtdb.VolipMemTable):
        pass
    db = vtdb.open(path, 32 << 20, table_class=Mine)
    assert type(db.table("t")) is Mine and db.all() == [{"a": 1}]
    db.close()


def test_open_forwards_default_table_ops(path):
    """open() returns a VolipMemTinyDB: db.insert & co. are methods of the
    class (not a failed lookup, then __getattr__) that call the default
    table's own method, so a table_class override and default_table= are
    honoured, and names not forwarded still reach the table."""
    calls = []

    class Mine(vtdb.VolipMemTable):
        def insert(self, document):
            calls.append(self.name)
            return super().insert(document)
    db = vtdb.open(path, 32 << 20, table_class=Mine, default_table="main")
    assert isinstance(db, vtdb.VolipMemTinyDB) and isinstance(db, TinyDB)
    for name in ("insert", "insert_multiple", "remove", "update",
                 "write_back", "upsert", "purge", "search", "get", "count",
                 "contains", "all", "clear_cache", "process_elements"):
        assert name in vars(vtdb.VolipMemTinyDB), name
    assert db.insert({"a": 1}) == 1 and calls == ["main"]
    assert db.insert_multiple([{"a": 2}, {"a": 3}]) == [2, 3]
    assert db.table("main").all() == [{"a": 1}, {"a": 2}, {"a": 3}]
    assert db.table("_default").all() == []
    q = Query()
    assert db.count(q.a > 1) == 2 and db.contains(q.a == 3)
    assert db.get(doc_id=2) == {"a": 2}
    assert db.update({"b": 1}, q.a == 1) == [1]
    assert db.remove(doc_ids=[3]) == [3]
    assert db.search(q.b == 1) == [{"a": 1, "b": 1}]
    assert db.name == "main" and len(db) == 2        # via __getattr__
    db.purge()
    assert db.all() == [] and db.table("main").all() == []
    db.close()


def test_open_rejects_other_storages(path):
    from tinydb.database import Table
    from tinydb.storages import JSONStorage
    with pytest.raises(TypeError, match="storage must be VolipMemStorage"):
        vtdb.open(path, storage=JSONStorage)
    with pytest.raises(TypeError, match="storage must be VolipMemStorage"):
        vtdb.open(path, storage=CachingMiddleware(MemoryStorage))
    with pytest.raises(TypeError, match="table_class must be VolipMemTable"):
        vtdb.open(path, table_class=Table)
    with pytest.raises(TypeError, match="needs a VolipMemStorage .*Memory"):
        TinyDB(storage=MemoryStorage, table_class=vtdb.VolipMemTable)


def test_cached_table_sees_table_level_calls(path):
    """tables(), purge_table() and purge_tables() go through the
    middleware's cache; the persistent tables must agree with them."""
    db = open_subject("cached-table", path)
    db.table("t1").insert({"b": 1})
    db.table("t2").insert({"c": 2})
    assert db.tables() == {"_default", "t1", "t2"}
    db.purge_table("t1")                 # through the cache, at once
    assert db.tables() == {"_default", "t2"}
    assert len(db.table("t1")) == 0
    db.purge_tables()                    # the cache holds {} back
    assert db.tables() == set()
    assert len(db.table("t2")) == 0      # applied before the table reads
    db.insert({"a": 3})                  # the old default table object
    assert db.tables() == {"_default", "t2"}
    assert db.all() == [{"a": 3}]
    db.close()
    db = open_subject("table", path)
    assert db.tables() == {"_default", "t2"} and db.all() == [{"a": 3}]
    db.close()


# A child that writes through CachingMiddleware and dies without flushing
# or closing (os._exit: no atexit, no close).
CRASH_CHILD = r'''
import os, sys
from tinydb import TinyDB
from tinydb.middlewares import CachingMiddleware
import volipmem.tinydb as vtdb
kw = {"table_class": vtdb.VolipMemTable} if sys.argv[2] == "table" else {}
db = TinyDB(sys.argv[1], size=32 << 20,
            storage=CachingMiddleware(vtdb.VolipMemStorage), **kw)
for i in range(5):
    db.insert({"i": i})
db.storage.flush()
for i in range(5, 8):
    db.insert({"i": i})
os._exit(0)
'''


@pytest.mark.parametrize("kind", ["table", "storage"])
def test_caching_middleware_crash_semantics(path, kind):
    """Over the stock table the middleware defers writes as it does over
    JSONStorage: a crash keeps exactly the last flush (one FAS, so all of
    it). Over VolipMemTable nothing waits in the middleware: every
    insert was durable when it returned."""
    from conftest import run_child
    run_child(CRASH_CHILD, path, kind)
    db = vtdb.open(path, 32 << 20)
    want = 8 if kind == "table" else 5
    assert [d["i"] for d in db.all()] == list(range(want))
    db.close()


def test_live_database_stores_packed_tables(path):
    """What TinyDB or a middleware writes through the live database (a
    table, the database itself with a table replaced by its own live copy)
    ends up packed and intact."""
    db = vtdb.open(path, 32 << 20)
    db.insert({"a": 1})
    live = db.storage.read()
    live["t"] = {1: {"x": [1, 2]}, 2: {"x": []}}
    assert db.table("t").all() == [{"x": [1, 2]}, {"x": []}]
    assert type(volipmem.root["tinydb"]["t"][1]) is dict      # packed
    live["t"] = live["t"]                                       # itself
    db.storage.write({"_default": live["_default"], "t": live["t"]})
    assert db.table("t").get(doc_id=1) == {"x": [1, 2]}
    assert db.all() == [{"a": 1}]
    db.close()
