# SPDX-License-Identifier: MIT
"""The cc build (volipmem._volipmem_cc) and the guarantee it rests on: only
the extension's own, instrumented C code writes into the heap.

* The sources expose no heap memory through the buffer protocol, and at run
  time no value read from the pool is backed by heap memory (a bytes value
  is a copy; a container has no buffer), so Python code cannot write into
  the heap through a memoryview.
* VOLIPMEM_TRACKER=cc picks the cc build at import, and pmap runs cc.
* A write the interpreter makes into the heap (ctypes, the way a foreign
  library would) is missed by cc and reported by verify mode, while uffd
  sees it: what the guarantee protects against is real, and verify mode,
  which the verify.python_cc run asserts clean, detects it.
"""

import ctypes
import os
import re

import pytest

import volipmem
from conftest import needs_cc, run_child

SRC = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "src")

# The C-API entry points that hand out memory to Python code for writing
# (buffer protocol exporters, memoryviews over raw memory). None of them
# may appear in the binding: its heap memory reaches Python only as copies.
EXPOSING = ["bf_getbuffer", "tp_as_buffer", "PyBufferProcs",
            "PyBuffer_FillInfo", "PyMemoryView_FromMemory",
            "PyMemoryView_FromBuffer", "PyByteArray_FromStringAndSize"]


def test_sources_expose_no_heap_buffer():
    files = [f for f in os.listdir(SRC) if f.endswith((".c", ".h"))]
    assert "module.c" in files
    found = []
    for f in files:
        with open(os.path.join(SRC, f)) as fh:
            text = fh.read()
        for api in EXPOSING:
            for m in re.finditer(r"\b%s\b" % api, text):
                found.append("%s:%d: %s" % (
                    f, text.count("\n", 0, m.start()) + 1, api))
    assert not found, ("the binding exposes memory to Python code through "
                       "the buffer protocol; under cc, writes through it "
                       "are unseen (docs/python.md, 'The cc tracker'): "
                       + "; ".join(found))


def libvolipmem():
    """The loaded libvolipmem.so (ctypes), or None when the extension
    carries the library inside it (the pip build links it statically)."""
    with open("/proc/self/maps") as f:
        for line in f:
            p = line.split()[-1]
            if "/libvolipmem.so" in p:
                lib = ctypes.CDLL(p)
                lib.vp_heap_base.restype = ctypes.c_void_p
                lib.vp_heap_size.restype = ctypes.c_size_t
                return lib
    return None


def test_values_read_are_copies(pool):
    lib = libvolipmem()
    if lib is None:
        pytest.skip("libvolipmem linked into the extension: no heap address")
    base, size = lib.vp_heap_base(), lib.vp_heap_size()
    assert base and size
    blob = bytes(range(256)) * 4
    pool.root["v"] = {"b": blob, "s": "x" * 500, "l": [blob], "d": {}}
    v = pool.root["v"]
    for x in (v["b"], v["s"], v["l"][0]):
        addr = id(x)                    # CPython: the object's address
        assert not base <= addr < base + size, "a heap-backed %s" % type(x)
    assert v["b"] == blob
    mv = memoryview(v["b"])
    assert mv.readonly
    for c in (v, v["l"], v["d"], pool.root):
        with pytest.raises(TypeError):
            memoryview(c)


@needs_cc
def test_cc_selected_by_environment(path):
    r = run_child("""
import sys, volipmem
assert volipmem.CC and volipmem._c.__name__ == "volipmem._volipmem_cc"
p = volipmem.open(sys.argv[1], 16 << 20)
p.root["k"] = [1, "two", b"three" * 10]
print(p.stats()["tracker"])
p.close()
""", path, env={"VOLIPMEM_TRACKER": "cc"})
    assert r.stdout.strip() == "cc"
    assert not volipmem.CC or os.environ.get("VOLIPMEM_TRACKER") == "cc"


def test_cc_set_after_import_is_refused(path):
    r = run_child("""
import os, sys, volipmem
os.environ["VOLIPMEM_TRACKER"] = "cc"
try:
    volipmem.open(sys.argv[1], 16 << 20)
except volipmem.Error as e:
    print(e)
""", path, env={"VOLIPMEM_TRACKER": "uffd"})
    assert "set it before the import" in r.stdout, r.stdout + r.stderr


def test_cc_missing_module_is_named(tmp_path):
    # a copy of the package without the cc build
    import shutil
    pkg = os.path.dirname(volipmem.__file__)
    dst = tmp_path / "volipmem"
    shutil.copytree(pkg, dst, ignore=shutil.ignore_patterns("_volipmem_cc*"))
    r = run_child("import volipmem", env={"VOLIPMEM_TRACKER": "cc",
                                          "PYTHONPATH": str(tmp_path)},
                  check=False, cwd=str(tmp_path))   # not the build's folder
    assert r.returncode != 0
    assert "needs volipmem._volipmem_cc" in r.stderr, r.stderr


# A child that stores a marker, finds it in the heap, overwrites it with
# ctypes inside a FAS (a write no instrumented code makes) and commits.
UNSEEN = r"""
import ctypes, sys, volipmem
p = volipmem.open(sys.argv[1], 16 << 20)
marker = b"unseen-write-marker-0123456789abcdef" * 2
p.root["m"] = marker
for line in open("/proc/self/maps"):
    if "/libvolipmem.so" in line:
        lib = ctypes.CDLL(line.split()[-1])
lib.vp_heap_base.restype = ctypes.c_void_p
lib.vp_heap_size.restype = ctypes.c_size_t
base = lib.vp_heap_base()
heap = ctypes.string_at(base, lib.vp_heap_size())
off = heap.find(marker)
assert off >= 0
with p.fas():
    ctypes.memset(base + off, ord("Z"), 8)
p.pcommit()
s = p.stats()
print(s["tracker"], s["verify_pages_checked"], s["verify_missed_lines"])
p.close()
"""


@pytest.mark.parametrize("tracker", ["uffd", pytest.param("cc", marks=needs_cc)])
def test_interpreter_write(path, tracker):
    if libvolipmem() is None:
        pytest.skip("libvolipmem linked into the extension: no heap address")
    r = run_child(UNSEEN, path, env={"VOLIPMEM_TRACKER": tracker,
                                     "VOLIPMEM_VERIFY": "1"}, verify_ok=False)
    name, checked, missed = r.stdout.split()
    assert name == tracker and int(checked) > 0, r.stdout + r.stderr
    if tracker == "cc":
        # not instrumented: missed, and verify mode says so
        assert int(missed) > 0, r.stdout + r.stderr
        assert "not recorded" in r.stderr, r.stderr
    else:
        assert int(missed) == 0, r.stdout + r.stderr
