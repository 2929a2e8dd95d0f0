# SPDX-License-Identifier: MIT
"""PDict / PList behave like dict / list: random operation sequences are
applied to a persistent container and to a plain model side by side, and
every result and the whole state are compared."""

import math
import random
from collections.abc import MutableMapping, MutableSequence

import pytest

import volipmem

SCALARS = [None, True, False, 0, 1, -1, 2**63 - 1, -2**63, 2**63, -2**63 - 1,
           2**200, -(2**200), 1.5, -0.0, float("inf"), "", "hé\u1234llo",
           "\ud800", b"", b"\x00\xff", "x" * 1000]


def test_scalars_round_trip(pool):
    root = pool.root
    for i, v in enumerate(SCALARS):
        root[i] = v
    for i, v in enumerate(SCALARS):
        got = root[i]
        assert type(got) is type(v)
        assert got == v
    root["nan"] = float("nan")
    assert math.isnan(root["nan"])
    root["negzero"] = -0.0
    assert math.copysign(1, root["negzero"]) == -1


def test_equal_keys_are_one_key(pool):
    d, model = pool.root, {}
    for k, v in [(1, "int"), (1.0, "float"), (True, "bool"), (2**70, "big"),
                 (float(2**70), "bigf"), (0, "zero"), (-0.0, "negzero"),
                 (0.5, "half"), (b"1", "bytes"), ("1", "str"), (None, "none"),
                 (2**53 + 1, "exact"), (float(2**53), "f53")]:
        d[k] = v
        model[k] = v
    assert len(d) == len(model)
    assert list(d.items()) == list(model.items())
    assert [type(k) for k in d] == [type(k) for k in model]
    assert d[1] == d[1.0] == d[True] == "bool"
    assert d[2**53 + 1] == "exact" and d[float(2**53)] == "f53"
    del d[1.0]
    assert 1 not in d and True not in d


def test_unsupported_types(pool):
    root = pool.root
    for bad in [{1, 2}, (1, 2), object(), bytearray(b"x"), 1j]:
        with pytest.raises(TypeError) as e:
            root["x"] = bad
        assert type(bad).__name__ in str(e.value)
    with pytest.raises(TypeError):
        root[[1]] = 1
    with pytest.raises(TypeError):
        root[(1, 2)] = 1
    with pytest.raises(TypeError):
        root["l"] = [1, 2, {3}]
    assert "x" not in root and "l" not in root and len(root) == 0


def test_pickle_opt_in(path):
    pool = volipmem.open(path, 32 << 20, pickle=True)
    root = pool.root
    root["s"] = {1, 2}
    root["t"] = (1, "a")
    assert root["s"] == {1, 2} and root["t"] == (1, "a")
    pool.close()


def test_types_and_protocols(pool):
    root = pool.root
    root["d"] = {"a": 1}
    root["l"] = [1, 2]
    d, l = root["d"], root["l"]
    assert isinstance(d, MutableMapping) and isinstance(d, volipmem.PDict)
    assert isinstance(l, MutableSequence) and isinstance(l, volipmem.PList)
    assert repr(d) == "{'a': 1}" and repr(l) == "[1, 2]"
    assert d.keys() & {"a", "b"} == {"a"}
    assert list(reversed(l)) == [2, 1]
    assert l + [3] == [1, 2, 3] and [0] + l == [0, 1, 2] and l * 2 == [1, 2, 1, 2]
    assert l < [1, 3] and l >= [1, 2] and l == root["l"]
    assert d == root["d"] and d != {"a": 2}
    with pytest.raises(TypeError):
        hash(d)
    assert (d | {"b": 2}) == {"a": 1, "b": 2}


def test_ordered_dict_keeps_its_order(pool):
    from collections import OrderedDict
    od = OrderedDict([("a", 1), ("b", 2), ("c", 3)])
    od.move_to_end("a")
    pool.root["od"] = od
    assert list(pool.root["od"]) == ["b", "c", "a"]


def test_pickle_and_copy_give_plain_objects(pool):
    import copy
    import pickle
    pool.root["a"] = {"l": [1, {"x": b"y"}]}
    a = pool.root["a"]
    for c in (pickle.loads(pickle.dumps(a)), copy.deepcopy(a)):
        assert type(c) is dict and type(c["l"]) is list
        assert c == {"l": [1, {"x": b"y"}]}
    assert type(copy.copy(a["l"])) is list


def test_live_objects_write_through(pool):
    root = pool.root
    root["a"] = {"l": [1, {"x": []}]}
    root["a"]["l"].append(2)
    root["a"]["l"][1]["x"].extend("ab")
    assert root["a"] == {"l": [1, {"x": ["a", "b"]}, 2]}


def test_assignment_copies(pool):
    root = pool.root
    root["a"] = {"l": [1]}
    root["b"] = root["a"]                  # a copy, not an alias
    root["b"]["l"].append(2)
    assert root["a"] == {"l": [1]} and root["b"] == {"l": [1, 2]}
    root["a"] = root["a"]                  # self-assignment keeps the value
    assert root["a"] == {"l": [1]}
    l = root["a"]["l"]
    l.extend(l)
    l[1:1] = l
    assert l == [1, 1, 1, 1]


def test_stale_objects_raise(pool):
    root = pool.root
    root["a"] = {"x": [1]}
    d, l = root["a"], root["a"]["x"]
    root["a"] = {}                         # replaced: the old one is freed
    with pytest.raises(ReferenceError):
        d["x"]
    with pytest.raises(ReferenceError):
        l.append(1)
    assert not d._valid()
    e = root["a"]
    pool.close()
    with pytest.raises(volipmem.Error):
        len(e)


def test_iteration_guard(pool):
    d = pool.root
    d.update({i: i for i in range(10)})
    with pytest.raises(RuntimeError):
        for k in d:
            del d[k]


def test_recursive_structure_rejected_without_leak(pool):
    used = volipmem.stats()["heap_used"]
    a = [1, 2]
    a.append(a)
    with pytest.raises(RecursionError):
        pool.root["a"] = a
    assert "a" not in pool.root
    assert volipmem.stats()["heap_used"] == used


def rand_scalar(rng):
    return rng.choice([None, True, False, rng.randint(-5, 5),
                       rng.randint(-2**80, 2**80), rng.random(),
                       float(rng.randint(-3, 3)), "s%d" % rng.randint(0, 9),
                       bytes([rng.randint(0, 255)])])


def rand_value(rng, depth=0):
    r = rng.random()
    if depth < 3 and r < 0.15:
        return {rand_key(rng): rand_value(rng, depth + 1)
                for _ in range(rng.randint(0, 4))}
    if depth < 3 and r < 0.3:
        return [rand_value(rng, depth + 1) for _ in range(rng.randint(0, 4))]
    return rand_scalar(rng)


def rand_key(rng):
    return rng.choice([None, True, False, 0, 1, 1.0, 2, -1, 2.5, 2**70,
                       float(2**70), "a", "b", "c", "key%d" % rng.randint(0, 30),
                       b"a", b"", ""])


def call(fn, *a):
    try:
        return ("ok", fn(*a))
    except Exception as e:           # compare exception types, not messages
        return ("exc", type(e))


@pytest.mark.parametrize("seed", range(4))
def test_dict_random_ops(pool, seed):
    rng = random.Random(seed)
    d, m = pool.root, {}
    ops = ["set"] * 6 + ["del", "pop", "popd", "popitem", "setdefault", "get",
                         "update", "in", "clear", "nested"]
    for step in range(1500):
        op = rng.choice(ops)
        k, v = rand_key(rng), rand_value(rng)
        if op == "set":
            r = call(d.__setitem__, k, v), call(m.__setitem__, k, v)
        elif op == "del":
            r = call(d.__delitem__, k), call(m.__delitem__, k)
        elif op == "pop":
            r = call(d.pop, k), call(m.pop, k)
        elif op == "popd":
            r = call(d.pop, k, "dflt"), call(m.pop, k, "dflt")
        elif op == "popitem":
            r = call(d.popitem), call(m.popitem)
        elif op == "setdefault":
            r = call(d.setdefault, k, v), call(m.setdefault, k, v)
        elif op == "get":
            r = call(d.get, k), call(m.get, k)
        elif op == "update":
            kv = [(rand_key(rng), rand_value(rng)) for _ in range(3)]
            r = (call(lambda: d.update(kv, z=1)),
                 call(lambda: m.update(kv, z=1)))
        elif op == "in":
            r = (k in d), (k in m)
        elif op == "clear":
            if rng.random() < 0.1:
                r = call(d.clear), call(m.clear)
            else:
                r = None, None
        else:
            ks = [x for x in m if isinstance(m[x], dict)]
            if ks:
                kk = rng.choice(ks)
                r = (call(d[kk].__setitem__, k, v),
                     call(m[kk].__setitem__, k, v))
            else:
                r = None, None
        assert r[0] == r[1], (step, op, k, v)
        assert len(d) == len(m), (step, op)
        if step % 25 == 0 or op in ("popitem", "clear"):
            assert list(d) == list(m)
            assert [type(x) for x in d] == [type(x) for x in m]
            assert d == m and d.to_python() == m


@pytest.mark.parametrize("seed", range(4))
def test_list_random_ops(pool, seed):
    rng = random.Random(100 + seed)
    pool.root["l"] = []
    p, m = pool.root["l"], []

    def rslice():
        return slice(rng.choice([None, rng.randint(-8, 8)]),
                     rng.choice([None, rng.randint(-8, 8)]),
                     rng.choice([None, 1, 1, 2, -1, -2, 3]))

    for step in range(1500):
        op = rng.randint(0, 17)
        i = rng.randint(-10, 10)
        v = rand_value(rng)
        if op <= 2:
            r = call(p.append, v), call(m.append, v)
        elif op == 3:
            r = call(p.insert, i, v), call(m.insert, i, v)
        elif op == 4:
            vs = [rand_value(rng) for _ in range(rng.randint(0, 3))]
            r = call(p.extend, vs), call(m.extend, vs)
        elif op == 5:
            r = call(p.pop), call(m.pop)
        elif op == 6:
            r = call(p.pop, i), call(m.pop, i)
        elif op == 7:
            r = call(p.__setitem__, i, v), call(m.__setitem__, i, v)
        elif op == 8:
            s = rslice()
            vs = [rand_scalar(rng) for _ in range(rng.randint(0, 4))]
            r = call(p.__setitem__, s, vs), call(m.__setitem__, s, vs)
        elif op == 9:
            r = call(p.__delitem__, i), call(m.__delitem__, i)
        elif op == 10:
            s = rslice()
            r = call(p.__delitem__, s), call(m.__delitem__, s)
        elif op == 11:
            s = rslice()
            r = call(p.__getitem__, s), call(m.__getitem__, s)
        elif op == 12:
            r = call(p.__getitem__, i), call(m.__getitem__, i)
        elif op == 13:
            x = rand_scalar(rng)
            r = ((call(p.index, x), call(p.count, x), x in p, call(p.remove, x)),
                 (call(m.index, x), call(m.count, x), x in m, call(m.remove, x)))
        elif op == 14:
            r = call(p.reverse), call(m.reverse)
        elif op == 15:
            keyf = lambda x: repr(x)  # noqa: E731 (mixed types)
            r = call(lambda: p.sort(key=keyf)), call(lambda: m.sort(key=keyf))
        elif op == 16:
            if rng.random() < 0.05:
                r = call(p.clear), call(m.clear)
            else:
                p += [1]
                m += [1]
                r = None, None
        else:
            if len(m) < 20:
                p *= 2
                m *= 2
            r = None, None
        assert r[0] == r[1], (step, op, i)
        assert len(p) == len(m)
        if step % 20 == 0:
            assert p == m and list(p) == m and p.to_python() == m


def test_full_heap_raises_memory_error_and_stays_usable(path):
    pool = volipmem.open(path, 8 << 20)
    root = pool.root
    big = "x" * 1000
    with pytest.raises(MemoryError):
        for batch in range(1000):
            with pool.fas():
                for j in range(500):
                    root[batch * 500 + j] = big
    n = len(root)
    assert n > 1000
    assert list(root) == list(range(n))
    assert all(root[i] == big for i in range(0, n, 97))
    with pool.fas():
        for i in range(2000):
            del root[i]
    # a value of the size just freed (the allocator keeps freed runs for
    # their size class); the dict has no room to grow and reclaims its
    # deleted entries in place instead
    root["after"] = big
    assert root["after"] == big and len(root) == n - 1999
    assert list(root)[:2] == [2000, 2001] and list(root)[-1] == "after"
    pool.close()
    pool = volipmem.open(path)
    assert len(pool.root) == n - 1999 and pool.root["after"] == big
    pool.close()
