/* SPDX-License-Identifier: MIT */
/*
 * vpy.h -- internal header of the CPython extension `volipmem._volipmem`.
 *
 * Persistent Python values live in the VolipMem heap (pmalloc) as tagged
 * 16-byte slots (`struct pv`). Scalars are stored inline (None, bool, small
 * int, float); strings, bytes, big ints and pickles are blobs; dicts and
 * lists are containers with a magic number and a 64-bit identity so that a
 * Python wrapper can tell when the object it points to was freed or when
 * the pool it lives in was closed. Raw pointers are stored in the heap: the
 * heap is mapped at the same address in every process.
 *
 * Every function that touches the heap runs with the GIL held; the GIL is
 * released only around pstart()/pend()/pcommit()/psync(), before a mutation
 * touches a container and after it is done (see vpy_fas_enter/exit).
 */
#ifndef VPY_H
#define VPY_H

#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdbool.h>
#include <stdint.h>

#include <volipmem.h>

/* The module's name: the same sources build `_volipmem` and, compiled by
 * clang with the cc tracker's instrumentation and -DVPY_CC, `_volipmem_cc`
 * (bindings/python/CMakeLists.txt; volipmem/__init__.py imports the latter
 * under VOLIPMEM_TRACKER=cc). */
#ifdef VPY_CC
#define VPY_MOD "volipmem._volipmem_cc"
#define VPY_INIT PyInit__volipmem_cc
#define VPY_IS_CC 1
#else
#define VPY_MOD "volipmem._volipmem"
#define VPY_INIT PyInit__volipmem
#define VPY_IS_CC 0
#endif

/* ---- tagged values ---- */
enum pv_tag {
	PV_NONE = 0,   /* zeroed memory reads as None                      */
	PV_BOOL = 1,   /* u = 0 or 1                                        */
	PV_INT = 2,    /* u = int64 value                                   */
	PV_FLOAT = 3,  /* u = IEEE-754 bits                                  */
	PV_STR = 4,    /* u = struct pblob * (UTF-8)                         */
	PV_BYTES = 5,  /* u = struct pblob *                                 */
	PV_BIGINT = 6, /* u = struct pblob * (two's complement, LE, minimal) */
	PV_DICT = 7,   /* u = struct pdict *                                 */
	PV_LIST = 8,   /* u = struct plist *                                 */
	PV_PICKLE = 9, /* u = struct pblob * (pickle protocol 4), opt-in     */
	PV_SSTR = 10,  /* str of <= 8 UTF-8 bytes in u, length in pad        */
	PV_SBYTES = 11, /* bytes of <= 8 bytes in u, length in pad           */
	PV_PACKED = 12, /* u = struct pblob *: a packed dict/list (packed.c) */
	PV_DELETED = 15, /* dict entry whose key was deleted                 */
};

struct pv {
	uint32_t tag;
	uint32_t pad;      /* length for PV_SSTR/PV_SBYTES, else zero */
	uint64_t u;
};

struct pblob {
	uint64_t len;
	unsigned char data[];
};

#define PDICT_MAGIC 0x5650444943543031ull /* "VPDICT01" */
#define PLIST_MAGIC 0x56504c4953543031ull /* "VPLIST01" */

struct pentry {
	uint64_t hash;
	struct pv key;     /* PV_DELETED once removed */
	struct pv val;
};

/* An insertion-ordered hash table in the style of CPython's compact dict:
 * entries are appended to `ent`; `index` is an open-addressing table
 * (linear probing) of entry positions + 1, 0 = empty, -1 = deleted.
 * Entries and index share one block; a dict of up to PD_INLINE_CAP entries
 * keeps that block inline, right after the header, in the same allocation
 * (one allocation per small dict: fewer heap pages written per commit). */
struct pdict {
	uint64_t magic;
	uint64_t id;       /* identity checked by wrappers */
	uint64_t used;     /* live entries */
	uint64_t nent;     /* entries appended (live + deleted) */
	uint64_t ecap;     /* capacity of ent */
	uint64_t mask;     /* index slots - 1 (0 when index is NULL) */
	struct pentry *ent;
	int64_t *index;
};

#define PD_INLINE_CAP 4     /* entries */
#define PD_INLINE_SLOTS 8   /* index slots */
#define PD_INLINE_BYTES (PD_INLINE_CAP * sizeof(struct pentry) + \
			 PD_INLINE_SLOTS * sizeof(int64_t))

/* A list's items; up to PL_INLINE_CAP of them live inline after the
 * header, in the same allocation. */
struct plist {
	uint64_t magic;
	uint64_t id;
	uint64_t len;
	uint64_t cap;
	struct pv *items;
	uint64_t reserved;
};

#define PL_INLINE_CAP 4

/* ---- the pool root (proot "python-root") ---- */
#define PYROOT_MAGIC 0x5650595230303031ull /* "VPYR0001" */
#define VPY_LAYOUT 2     /* the newest layout this code reads and writes */
struct pyroot {
	uint64_t magic;
	uint64_t layout;   /* VPY_LAYOUT: 1, or 2 once packed values exist */
	struct pdict *dict;
	uint64_t reserved[5];
};

/* ---- module state (one pool per process) ---- */
extern uint64_t vpy_gen;          /* bumped at every close; 0 = never open */
extern bool vpy_open;
extern bool vpy_pickle;           /* pickle unsupported types */
extern PyObject *vpy_Error;       /* volipmem.Error */
extern PyTypeObject *vpy_dict_type;  /* class used for dict wrappers */
extern PyTypeObject *vpy_list_type;  /* class used for list wrappers */
extern PyTypeObject PDictBase_Type, PListBase_Type, PDictIter_Type;

/* Python wrapper of a persistent container. */
typedef struct {
	PyObject_HEAD
	void *obj;         /* struct pdict * or struct plist * */
	uint64_t id;
	uint64_t gen;
} PContainer;

/* Loops that read the heap while creating Python objects run with the
 * cyclic GC paused: a collection can run finalizers, i.e. Python code that
 * may switch threads, and another thread could then resize the container
 * under the loop. (Unpickling an opt-in pickled value still runs Python.) */
#define VPY_GC_PAUSE() int vpy_gc_was_on_ = PyGC_Disable()
#define VPY_GC_RESUME() do { if (vpy_gc_was_on_) PyGC_Enable(); } while (0)

/* ---- FAS helpers (module.c) ---- */
int vpy_fas_enter(void);          /* -1 with exception */
int vpy_fas_exit(int ok);         /* ok=0: an exception is already set */
int vpy_check_open(void);
PyObject *vpy_raise(int code, const char *what);
uint64_t vpy_new_id(void);

/* ---- values (value.c) ---- */
int pv_from_py(PyObject *o, struct pv *out);   /* deep copy into the heap */
PyObject *pv_to_py(const struct pv *v);        /* live wrappers */
PyObject *pv_to_plain(const struct pv *v);     /* deep plain copy */
int pv_copy(const struct pv *src, struct pv *dst); /* deep heap copy */
void pv_free(struct pv *v);                    /* free, set to None */

/* canonical form of a dict key: equal keys have equal canonical forms */
enum { K_NONE, K_INT, K_BIG, K_FLOAT, K_STR, K_BYTES };
struct pkey {
	int cls;
	int64_t i;
	double f;
	const unsigned char *p;
	size_t n;
	unsigned char *owned;   /* PyMem_Free'd by pkey_release */
	uint64_t hash;
};
int pkey_from_py(PyObject *o, struct pkey *k);       /* -1 + TypeError */
int pkey_from_pv(const struct pv *v, struct pkey *k);
int pkey_canon_pv(const struct pv *v, struct pkey *k);
void pkey_release(struct pkey *k);
bool pkey_eq(const struct pkey *a, const struct pkey *b);

/* canonical signed little-endian bytes of an int (PyMem buffer), and the
 * UTF-8 of a str with lone surrogates kept (*owned: a PyMem copy, if one
 * was needed) */
unsigned char *vpy_long_bytes(PyObject *o, size_t *n);
const char *vpy_str_utf8(PyObject *o, Py_ssize_t *n, unsigned char **owned);

/* ---- packed values (packed.c) ---- */
int vpy_pack(PyObject *o, struct pv *out);  /* 1: not packable, use pv_from_py */
PyObject *vpy_unpack(const struct pblob *b);          /* plain copy */
int vpy_unpack_into(const struct pblob *b, PyObject *dict);
void vpy_note_packed(void);   /* the pool holds packed values (layout 2) */

/* ---- containers ---- */
/* wrappers of either kind (pdict.c): unwrap checks the pool is open, then
 * that the container's magic and id are unchanged */
PyObject *vpy_wrap(PyTypeObject *type, void *obj, uint64_t id);
void *vpy_unwrap(PyObject *o, uint64_t magic, const char *kind);

struct pdict *pdict_new(void);
void pdict_free(struct pdict *d);
int pdict_copy(const struct pdict *src, struct pdict **out);
PyObject *pdict_to_plain(const struct pdict *d);
int pdict_set_pv(struct pdict *d, PyObject *key, struct pv *val); /* takes val */
void pdict_clear(struct pdict *d);
PyObject *pdict_wrap(struct pdict *d);
struct pdict *pdict_unwrap(PyObject *o);   /* NULL + exception if stale */

struct plist *plist_new(void);
void plist_free(struct plist *l);
int plist_copy(const struct plist *src, struct plist **out);
int plist_reserve(struct plist *l, uint64_t n);
PyObject *plist_to_plain(const struct plist *l);
PyObject *plist_wrap(struct plist *l);
struct plist *plist_unwrap(PyObject *o);

int vpy_is_pdict(PyObject *o);
int vpy_is_plist(PyObject *o);

#endif /* VPY_H */
