# SPDX-License-Identifier: MIT
"""volipmem.tinydb -- TinyDB (3.x, Debian's python3-tinydb) on the
persistent heap.

Two ways in:

* ``TinyDB(path, storage=VolipMemStorage)``: a plain TinyDB storage. read()
  hands out ``{table: {doc_id: document}}`` copied out of the persistent
  heap in one pass, and write() stores the tables that changed in one FAS
  (one commit). Stock TinyDB still copies a whole table on every
  operation (its StorageProxy rebuilds the table dict), so this path stays
  O(N) per operation; what it replaces is freed.
* ``volipmem.tinydb.open(path)``: TinyDB with ``VolipMemTable``, a table
  class whose documents stay in a persistent dict keyed by document id:
  insert, update and remove by id cost O(1) plus one commit, a search is one
  pass over the table. Query objects, the query cache, document ids and the
  returned Document objects behave as stock TinyDB's.

Both keep the database under ``pool.root["tinydb"]`` (``root_key=``), so a
pool may hold other data beside it.

Middlewares compose as in stock TinyDB: ``storage=CachingMiddleware(
VolipMemStorage)`` works with either way in (``open(path, storage=...)``
too). With the stock table the middleware caches and defers as it does
over JSONStorage (each flush is one FAS). With VolipMemTable the documents
bypass it: a persistent table already is the in-memory copy a cache would
keep, and each operation is crash-atomic on its own (see docs/python.md).
"""

import os
from collections.abc import Mapping

from collections.abc import MutableMapping

from tinydb import TinyDB
from tinydb.database import (DataProxy, Document, Table, _get_doc_id,
                             _get_doc_ids)
from tinydb.middlewares import CachingMiddleware, Middleware
from tinydb.storages import Storage
from tinydb.utils import LRUCache

import volipmem

__all__ = ["VolipMemStorage", "VolipMemTable", "VolipMemTinyDB", "open"]

DEFAULT_SIZE = 256 << 20


class VolipMemStorage(Storage):
    """A TinyDB storage in a VolipMem pool.

    VolipMemStorage(path, size=256 MiB, root_key="tinydb", durability=None,
    interval_ms=1): opens (or creates) the pool at `path` unless the process
    already has that pool open, in which case it shares it."""

    def __init__(self, path, size=DEFAULT_SIZE, root_key="tinydb",
                 durability=None, interval_ms=1, **kwargs):
        super().__init__()
        if kwargs:
            raise TypeError("unexpected arguments: %s" % ", ".join(kwargs))
        pool = volipmem.current_pool()
        if pool is None:
            pool = volipmem.open(path, size, durability=durability,
                                 interval_ms=interval_ms)
            self._owns_pool = True
        elif os.path.realpath(pool.path) != os.path.realpath(path):
            raise volipmem.Error("another pool (%s) is open in this process"
                                 % pool.path)
        else:
            self._owns_pool = False
        self._pool = pool
        self._key = root_key
        self._db_cache = None
        self._handed = {}
        self._live = None           # _LiveDatabase once a VolipMemTable uses us
        root = pool.root
        if root_key not in root:
            root[root_key] = {}

    @property
    def pool(self):
        return self._pool

    def _db(self):
        """The live persistent dict {table name: {doc_id: document}}."""
        db = self._db_cache
        if db is None or not db._valid():
            db = self._db_cache = self._pool.root[self._key]
        return db

    def _attach_table(self):
        """A VolipMemTable works on this storage: from now on read()
        returns the live database (see _LiveDatabase)."""
        if self._live is None:
            self._live = _LiveDatabase(self)
        return self._live

    def read(self):
        """A plain dict {table name: {doc_id: document}}, a deep copy made
        in one pass in C (stock TinyDB iterates tables with dict.items and
        copies every document anyway). Once a VolipMemTable uses this
        storage: the live database instead, so that what TinyDB and its
        middlewares read through the storage (tables(), purge_table(), a
        cache) is what the tables wrote."""
        if self._live is not None:
            return self._live
        db = self._db()
        data = {}
        self._handed = {}
        for name in db:
            table = db[name].to_python()
            data[name] = table
            self._handed[name] = table
        return data

    def _unchanged(self, name, table, db):
        """Whether `table` is the stored table itself (a live one from the
        live database), or the dict read() handed out and still equal to
        what is stored: then there is nothing to write for it."""
        stored = db[name]
        if isinstance(table, volipmem.PDict):
            return table._ident() == stored._ident()
        return self._handed.get(name) is table and stored == table

    def write(self, data):
        """Store `data` ({table name: {doc_id: document}}) in one FAS:
        tables that did not change since read() are kept as they are, the
        others are converted and what they replace is freed. Writing the
        live database back is a no-op: it is the stored data."""
        if data is self._live and data is not None:
            return
        db = self._db()
        with volipmem.fas():
            for name in [n for n in db if n not in data]:
                del db[name]
            for name, table in data.items():
                if name in db and self._unchanged(name, table, db):
                    continue
                self._store_table(db, name, table)
        self._handed = {}

    @staticmethod
    def _store_table(db, name, table):
        """db[name] = table with every document packed, in one FAS; the
        table is copied out first (it may be the live one it replaces)."""
        plain = dict(table)
        with volipmem.fas():
            db[name] = {}
            db[name]._update_packed(plain)

    def close(self):
        self._db_cache = None
        if self._owns_pool and not self._pool.closed:
            self._pool.close()


class _LiveDatabase(MutableMapping):
    """{table name: live table} straight from the heap: what read()
    returns once a VolipMemTable uses the storage. Deleting a table frees
    it (one FAS); assigning one stores a converted copy."""

    def __init__(self, storage):
        self._storage = storage

    def __getitem__(self, name):
        return self._storage._db()[name]

    def __setitem__(self, name, table):
        self._storage._store_table(self._storage._db(), name, table)

    def __delitem__(self, name):
        del self._storage._db()[name]

    def __iter__(self):
        return iter(list(self._storage._db()))

    def __len__(self):
        return len(self._storage._db())

    def __repr__(self):
        return "<live TinyDB database: tables %r>" % sorted(self)


def _storage_chain(storage):
    """(VolipMemStorage, [middlewares above it]) under `storage`, which is
    TinyDB's StorageProxy, a middleware instance or the storage itself;
    (None, ...) when there is no VolipMemStorage at the bottom."""
    s = getattr(storage, "_storage", storage)
    middlewares = []
    while isinstance(s, Middleware):
        middlewares.append(s)
        s = s.__dict__.get("storage")
    return (s if isinstance(s, VolipMemStorage) else None), middlewares


def _storage_class(storage):
    """The storage class under a (possibly nested) middleware, not yet
    instantiated, as TinyDB(storage=...) takes it."""
    while isinstance(storage, Middleware):
        storage = storage._storage_cls
    return storage


def _plain(doc):
    """A stored document as a plain dict: packed documents read back as
    plain copies already; a live one (a pool written before documents were
    packed) is copied out."""
    return doc.to_python() if isinstance(doc, volipmem.PDict) else doc


def _document(plain, doc_id):
    doc = Document.__new__(Document)
    dict.update(doc, plain)
    doc.doc_id = doc_id
    return doc


class VolipMemTable(Table):
    """A TinyDB table whose documents live in a persistent dict keyed by
    document id. Use with VolipMemStorage (see open())."""

    def __init__(self, storage, name, cache_size=10):
        # `storage` is TinyDB's StorageProxy around our storage, possibly
        # with middlewares (CachingMiddleware, ...) in between.
        vstore, middlewares = _storage_chain(storage)
        if vstore is None:
            raise TypeError("VolipMemTable needs a VolipMemStorage (or "
                            "middlewares around one), not %s" % type(
                                getattr(storage, "_storage", storage)).__name__)
        self._storage = storage
        self._vstore = vstore
        self._live = vstore._attach_table()
        # Caching middlewares whose cache must stay the live database.
        self._caches = [m for m in middlewares
                        if isinstance(m, CachingMiddleware)]
        self._name = name
        self._query_cache = LRUCache(capacity=cache_size)
        self._docs_cache = None
        self._last_id = self._docs()._max_int_key()

    def _sync_caches(self):
        """Apply what a CachingMiddleware holds back before touching the
        heap: a write of other data than the live database (TinyDB's
        purge_tables() writes {}) is flushed to the storage now, and the
        cache is dropped so that its next read() is the live database again.
        Without this, tables() and this table would disagree until the
        middleware's next flush."""
        for m in self._caches:
            if m.cache is not None and m.cache is not self._live:
                m.flush()
                m.cache = None

    def _docs(self):
        """The live persistent dict {doc_id: document} of this table."""
        if self._caches:
            self._sync_caches()
        docs = self._docs_cache
        if docs is not None and docs._valid():
            return docs
        db = self._vstore._db()
        docs = db.get(self._name)
        if docs is None:
            db[self._name] = {}
            docs = db[self._name]
        self._docs_cache = docs
        return docs

    # -- whole-table access (kept for code written against Table) --

    def _read(self):
        plain = self._docs().to_python()
        return DataProxy({k: _document(v, k) for k, v in plain.items()},
                         self._vstore.read())

    def _write(self, values):
        self.clear_cache()
        docs = self._docs()
        with volipmem.fas():
            docs.clear()
            for k, v in values.items():
                docs._set_packed(int(k), dict(v))

    def __len__(self):
        return len(self._docs())

    def all(self):
        return self._docs()._documents(Document)

    def __iter__(self):
        for doc in self.all():
            yield doc

    # -- single-document operations: O(1) + one commit --

    def insert(self, document):
        if not isinstance(document, Mapping):
            raise ValueError('Document is not a Mapping')
        doc_id = self._get_next_id()
        self._docs()._set_packed(doc_id, document)
        self.clear_cache()
        return doc_id

    def insert_multiple(self, documents):
        documents = list(documents)
        for i, document in enumerate(documents):
            if not isinstance(document, Mapping):
                self._last_id += i
                raise ValueError('Document is not a Mapping')
        docs = self._docs()
        doc_ids = []
        with volipmem.fas():
            try:
                for document in documents:
                    doc_id = self._get_next_id()
                    docs._set_packed(doc_id, document)
                    doc_ids.append(doc_id)
            except BaseException:
                for doc_id in doc_ids:      # undo inside the same FAS
                    del docs[doc_id]
                raise
            finally:
                self.clear_cache()
        return doc_ids

    def _targets(self, cond, doc_ids):
        """The document ids an update/remove applies to, as stock Table's
        process_elements chooses them; missing ids raise KeyError before
        anything changes."""
        docs = self._docs()
        if doc_ids is not None:
            for doc_id in doc_ids:
                if doc_id not in docs:
                    raise KeyError(doc_id)
            return doc_ids, doc_ids
        if cond is not None:
            ids = [d.doc_id for d in docs._documents(Document, cond)]
            return ids, ids
        ids = list(docs)
        return ids, ids

    def remove(self, cond=None, doc_ids=None, eids=None):
        doc_ids = _get_doc_ids(doc_ids, eids)
        if cond is None and doc_ids is None:
            raise RuntimeError('Use purge() to remove all documents')
        try:
            targets, result = self._targets(cond, doc_ids)
            docs = self._docs()
            with volipmem.fas():
                for doc_id in targets:
                    del docs[doc_id]
        finally:
            self.clear_cache()
        return result

    def update(self, fields, cond=None, doc_ids=None, eids=None):
        doc_ids = _get_doc_ids(doc_ids, eids)
        try:
            targets, result = self._targets(cond, doc_ids)
            docs = self._docs()
            with volipmem.fas():
                for doc_id in targets:
                    doc = _document(_plain(docs[doc_id]), doc_id)
                    if callable(fields):
                        fields(doc)
                    else:
                        doc.update(fields)
                    docs._set_packed(doc_id, doc)
        finally:
            self.clear_cache()
        return result

    def write_back(self, documents, doc_ids=None, eids=None):
        doc_ids = _get_doc_ids(doc_ids, eids)
        if doc_ids is not None and not len(documents) == len(doc_ids):
            raise ValueError(
                'The length of documents and doc_ids is not match.')
        if doc_ids is None:
            doc_ids = [doc.doc_id for doc in documents]
        if len(doc_ids) > 0 and max(doc_ids) > self._last_id:
            raise IndexError(
                'ID exceeds table length, use existing or removed doc_id.')
        docs = self._docs()
        documents.reverse()
        try:
            with volipmem.fas():
                for doc_id in doc_ids:
                    docs._set_packed(doc_id, dict(documents.pop()))
        finally:
            self.clear_cache()
        return doc_ids

    def upsert(self, document, cond):
        with volipmem.fas():
            return super().upsert(document, cond)

    def purge(self):
        self.clear_cache()
        self._docs().clear()
        self._last_id = 0

    def search(self, cond):
        if cond in self._query_cache:
            return self._query_cache.get(cond, [])[:]
        docs = self._docs()._documents(Document, cond)
        self._query_cache[cond] = docs
        return docs[:]

    def get(self, cond=None, doc_id=None, eid=None):
        doc_id = _get_doc_id(doc_id, eid)
        if doc_id is not None:
            doc = self._docs().get(doc_id)
            return None if doc is None else _document(_plain(doc),
                                                      int(doc_id))
        found = self._docs()._documents(Document, cond, True)
        return found[0] if found else None


class VolipMemTinyDB(TinyDB):
    """What open() returns: a TinyDB whose default-table operations
    (db.insert, db.get, ...) are methods of its class. Stock TinyDB reaches
    them through __getattr__, which Python calls only after the ordinary
    lookup has failed, raised and formatted an AttributeError: 0.5 us of a
    3 us insert measured here. Each forwarder calls the same attribute of
    self._table that __getattr__ would, so the behaviour is stock TinyDB's;
    any other name still goes through __getattr__."""


def _forwarder(name):
    def forward(self, *args, **kwargs):
        return getattr(self._table, name)(*args, **kwargs)
    forward.__name__ = name
    forward.__qualname__ = "VolipMemTinyDB." + name
    forward.__doc__ = getattr(Table, name).__doc__
    return forward


for _name in ("insert", "insert_multiple", "remove", "update", "write_back",
              "upsert", "purge", "search", "get", "count", "contains", "all",
              "clear_cache", "process_elements"):
    setattr(VolipMemTinyDB, _name, _forwarder(_name))
del _name


def open(path, size=DEFAULT_SIZE, *, durability=None, interval_ms=1,
         storage=VolipMemStorage, table_class=VolipMemTable, **kwargs):
    """TinyDB on the pool at `path` with persistent tables (VolipMemTable).
    durability=volipmem.RELAXED commits every `interval_ms` ms instead of
    once per operation. storage= may wrap VolipMemStorage (or a subclass)
    in middlewares, e.g. CachingMiddleware(VolipMemStorage); table_class=
    must be VolipMemTable or a subclass. Other keyword arguments go to
    TinyDB/the storage (default_table=, root_key=)."""
    cls = _storage_class(storage)
    if not (isinstance(cls, type) and issubclass(cls, VolipMemStorage)):
        raise TypeError("volipmem.tinydb.open: storage must be "
                        "VolipMemStorage or middlewares around it, not %r"
                        % (cls,))
    if not (isinstance(table_class, type) and
            issubclass(table_class, VolipMemTable)):
        raise TypeError("volipmem.tinydb.open: table_class must be "
                        "VolipMemTable or a subclass, not %r" % (table_class,))
    return VolipMemTinyDB(path, size=size, durability=durability,
                          interval_ms=interval_ms, storage=storage,
                          table_class=table_class, **kwargs)
