# SPDX-License-Identifier: MIT
"""volipmem -- persistent, crash-consistent Python objects on libvolipmem.

    import volipmem
    pool = volipmem.open("/dev/shm/demo.pool", size=64 << 20)
    root = pool.root                      # a persistent dict
    if "hashmap" not in root:
        root["hashmap"] = {1: "1"}        # converted deeply into the heap
    else:
        root["hashmap"][2] = "2"          # live object, writes through
    pool.pcommit()
    pool.close()

Values are stored natively in the persistent heap: None, bool, int (any
size), float, str, bytes, and the persistent PDict / PList containers that
behave like dict / list. Every mutating method is a failure-atomic section
(FAS) of its own, committed before it returns in synchronous mode; group
several mutations in one FAS (and one commit) with ``with pool.fas():``.
See docs/python.md for the semantics (copy on assignment, stale objects,
durability modes).
"""

import atexit as _atexit
import os as _os
from collections.abc import MutableMapping as _MutableMapping
from collections.abc import MutableSequence as _MutableSequence


def _extension():
    """The C extension: _volipmem_cc (built with the cc tracker's
    instrumentation) when VOLIPMEM_TRACKER=cc at import time, else the
    plain _volipmem. One of them per process: the choice is made here."""
    if _os.environ.get("VOLIPMEM_TRACKER") != "cc":
        from . import _volipmem
        return _volipmem
    import importlib
    try:
        cc = importlib.import_module(__name__ + "._volipmem_cc")
    except ModuleNotFoundError as e:
        if e.name != __name__ + "._volipmem_cc":
            raise
        raise ImportError(
            "VOLIPMEM_TRACKER=cc needs volipmem._volipmem_cc, the extension "
            "built with the cc instrumentation, which is not installed "
            "beside %s: it is built by the CMake build when clang and the "
            "LLVM headers of the same version are found (docs/python.md, "
            "\"The cc tracker\")" % _os.path.dirname(__file__),
            name=e.name) from None
    return cc


_c = _extension()
Error, SYNC, RELAXED = _c.Error, _c.SYNC, _c.RELAXED
CREATE_ONLY, OPEN_ONLY, SPARSE = _c.CREATE_ONLY, _c.OPEN_ONLY, _c.SPARSE
pcommit, psync, set_durability, stats = (_c.pcommit, _c.psync,
                                         _c.set_durability, _c.stats)
#: True when the extension in use is the cc build (VOLIPMEM_TRACKER=cc).
CC = bool(_c.CC)

__all__ = ["open", "Pool", "PDict", "PList", "Error", "SYNC", "RELAXED",
           "pcommit", "psync", "fas", "close", "set_durability", "stats",
           "current_pool", "CC"]

DEFAULT_SIZE = 64 << 20


class PDict(_c.PDictBase, _MutableMapping):
    """A dict in the persistent heap. keys()/items()/values() are live views;
    copy() and to_python() give plain dicts."""
    __slots__ = ()

    def __or__(self, other):
        if not isinstance(other, (dict, PDict)):
            return NotImplemented
        r = self.copy()
        r.update(other)
        return r

    def __ior__(self, other):
        self.update(other)
        return self

    def __reversed__(self):
        return reversed(list(self))

    def __reduce__(self):
        # pickle / copy / deepcopy give a plain dict
        return (dict, (self.to_python(),))


class PList(_c.PListBase, _MutableSequence):
    """A list in the persistent heap. Slicing, copy() and to_python() give
    plain lists."""
    __slots__ = ()

    def sort(self, *, key=None, reverse=False):
        """Sort in place (one FAS)."""
        with fas():
            items = self.to_python()
            items.sort(key=key, reverse=reverse)
            self[:] = items

    def __add__(self, other):
        if not isinstance(other, (list, PList)):
            return NotImplemented
        return self.copy() + list(other)

    def __radd__(self, other):
        if not isinstance(other, list):
            return NotImplemented
        return other + self.copy()

    def __iadd__(self, other):
        self.extend(other)
        return self

    def __mul__(self, n):
        return self.copy() * n

    __rmul__ = __mul__

    def __imul__(self, n):
        with fas():
            self[:] = self.to_python() * n
        return self

    def __reduce__(self):
        # pickle / copy / deepcopy give a plain list
        return (list, (self.to_python(),))


_c._set_types(PDict, PList)


class FAS:
    """Context manager for a failure-atomic section: pstart() on entry,
    pend() on exit (which commits in synchronous mode). Nesting is flat.
    A Python exception does not roll anything back: a FAS is atomic with
    respect to crashes, not to exceptions."""
    __slots__ = ()

    def __enter__(self):
        _c._fas_begin()
        return self

    def __exit__(self, *exc):
        _c._fas_end()
        return False


_FAS = FAS()


def fas():
    """A failure-atomic section: ``with volipmem.fas(): ...``."""
    return _FAS


class Pool:
    """An open pool (one per process). Use volipmem.open() to get one."""

    def __init__(self, path, size=DEFAULT_SIZE, *, flags=0, pickle=False):
        if _os.environ.get("VOLIPMEM_TRACKER") == "cc" and not CC:
            # pmap would refuse cc (no instrumented module) with a message
            # that does not say why: the choice of module came first.
            raise Error("VOLIPMEM_TRACKER=cc was set after `import volipmem` "
                        "loaded the uninstrumented extension: set it before "
                        "the import, so that volipmem._volipmem_cc is loaded")
        _c._open(path, size, flags, pickle)
        self.path = path
        self._closed = False

    @property
    def root(self):
        """The persistent root mapping (a PDict)."""
        if self._closed:
            raise Error("the pool is closed")
        return _c._root()

    @property
    def closed(self):
        return self._closed

    def fas(self):
        return _FAS

    def pcommit(self):
        pcommit()

    def psync(self):
        psync()

    def set_durability(self, mode, interval_ms=1):
        set_durability(mode, interval_ms)

    def stats(self):
        return stats()

    def close(self):
        """Commit what is pending and unmap the pool. Persistent objects
        read from it become unusable (volipmem.Error)."""
        global _current
        if self._closed:
            return
        _c._close()
        self._closed = True
        if _current is self:
            _current = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False

    def __repr__(self):
        state = "closed" if self._closed else "open"
        return "<volipmem.Pool %r %s>" % (self.path, state)


_current = None


def open(path, size=DEFAULT_SIZE, *, durability=None, interval_ms=1,
         pickle=False, flags=0):
    """Open (or create) the pool at `path` with `size` bytes of heap and
    return it. durability=volipmem.RELAXED commits every `interval_ms`
    milliseconds instead of at each FAS (VOLIPMEM_COMMIT_INTERVAL_MS does
    the same from the environment). pickle=True stores values of other
    types as pickles instead of raising TypeError."""
    global _current
    pool = Pool(path, size, flags=flags, pickle=pickle)
    if durability is not None:
        # after pmap(), so that the argument wins over the environment
        try:
            set_durability(durability, interval_ms)
        except BaseException:
            pool.close()
            raise
    _current = pool
    return pool


def current_pool():
    """The open pool, or None."""
    return _current


def close():
    """Close the open pool, if any."""
    if _current is not None:
        _current.close()


def __getattr__(name):
    # `volipmem.root` / `from volipmem import root`: the open pool's root.
    if name == "root":
        if _current is None:
            raise Error("no pool is open (volipmem.open first)")
        return _current.root
    raise AttributeError("module 'volipmem' has no attribute %r" % name)


_atexit.register(close)
