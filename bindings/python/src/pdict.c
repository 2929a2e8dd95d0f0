/* SPDX-License-Identifier: MIT */
/*
 * pdict.c -- the persistent dict: an insertion-ordered hash table in the
 * heap, and its Python wrapper type `PDictBase` (the package subclasses it
 * with collections.abc.MutableMapping for the mixin methods and views).
 *
 * The layout follows CPython's compact dict (entries appended in insertion
 * order, a separate index of entry positions) because it keeps iteration
 * order equal to Python's and makes iteration a linear scan. Every
 * mutating method is one FAS (an implicit one unless the caller is inside
 * pool.fas()), so a crash shows all of a method's effect or none.
 */
#include "vpy.h"

#include <stddef.h>
#include <string.h>

#define IX_EMPTY 0
#define IX_DUMMY (-1)

static struct pentry *inline_ent(const struct pdict *d)
{
	return (struct pentry *)(uintptr_t)(d + 1);
}

/* pdict_new -- an empty dict, with room for a small table inline. Inside
 * a FAS. */
struct pdict *pdict_new(void)
{
	struct pdict *d = pcalloc(1, sizeof *d + PD_INLINE_BYTES);
	if (!d) {
		PyErr_NoMemory();
		return NULL;
	}
	d->magic = PDICT_MAGIC;
	d->id = vpy_new_id();
	return d;
}

/* pdict_clear -- free every key and value and the tables. */
void pdict_clear(struct pdict *d)
{
	for (uint64_t i = 0; i < d->nent; i++) {
		struct pentry *e = &d->ent[i];
		if (e->key.tag == PV_DELETED)
			continue;
		pv_free(&e->key);
		pv_free(&e->val);
	}
	if (d->ent && d->ent != inline_ent(d))
		pfree(d->ent);         /* the index lives in the same block */
	d->ent = NULL;
	d->index = NULL;
	d->used = d->nent = d->ecap = d->mask = 0;
}

/* pdict_free -- free a dict and all it holds; the magic is cleared first so
 * that a stale wrapper sees the object is gone. */
void pdict_free(struct pdict *d)
{
	if (!d)
		return;
	pdict_clear(d);
	d->magic = 0;
	pfree(d);
}

/* lookup -- position in ent of the key, or -1 if absent (-2 on error).
 * *slot receives the index slot to use for an insertion. */
static int64_t lookup(const struct pdict *d, const struct pkey *k,
		      uint64_t *slot)
{
	if (!d->index) {
		*slot = 0;
		return -1;
	}
	uint64_t i = k->hash & d->mask;
	int64_t freeslot = -1;
	for (;;) {
		int64_t ix = d->index[i];
		if (ix == IX_EMPTY) {
			*slot = freeslot >= 0 ? (uint64_t)freeslot : i;
			return -1;
		}
		if (ix == IX_DUMMY) {
			if (freeslot < 0)
				freeslot = (int64_t)i;
		} else {
			const struct pentry *e = &d->ent[ix - 1];
			if (e->hash == k->hash) {
				struct pkey sk;
				if (pkey_canon_pv(&e->key, &sk) < 0)
					return -2;
				bool eq = pkey_eq(&sk, k);
				pkey_release(&sk);
				if (eq) {
					*slot = i;
					return ix - 1;
				}
			}
		}
		i = (i + 1) & d->mask;
	}
}

/* resize -- compact the live entries into a table of `cap` entries and
 * rebuild the index with at most 2/3 of its slots in use. Entries and
 * index share one block: the inline one for small tables. */
static void compact_in_place(struct pdict *d);

static int resize(struct pdict *d, uint64_t cap)
{
	struct pentry *inl = inline_ent(d), *old = d->ent, *ent;
	uint64_t slots = 8;
	if (cap <= PD_INLINE_CAP) {
		cap = PD_INLINE_CAP;
		slots = PD_INLINE_SLOTS;
		ent = inl;
		if (old == inl) {      /* same block: squeeze out deletions */
			compact_in_place(d);
			return 0;
		}
	} else {
		while (slots * 2 < cap * 3)
			slots <<= 1;
		ent = pmalloc(cap * sizeof *ent + slots * sizeof(int64_t));
		if (!ent) {
			PyErr_NoMemory();
			return -1;
		}
	}
	int64_t *index = (int64_t *)(ent + cap);
	memset(index, 0, slots * sizeof *index);
	uint64_t n = 0, mask = slots - 1;
	for (uint64_t j = 0; j < d->nent; j++) {
		if (old[j].key.tag == PV_DELETED)
			continue;
		ent[n] = old[j];
		uint64_t i = ent[n].hash & mask;
		while (index[i] != IX_EMPTY)
			i = (i + 1) & mask;
		index[i] = (int64_t)n + 1;
		n++;
	}
	if (old && old != inl)
		pfree(old);
	d->ent = ent;
	d->index = index;
	d->ecap = cap;
	d->mask = mask;
	d->nent = n;
	d->used = n;
	return 0;
}

/* compact_in_place -- squeeze out deleted entries and rebuild the index
 * without allocating (used when the heap has no room to grow). */
static void compact_in_place(struct pdict *d)
{
	uint64_t n = 0;
	for (uint64_t j = 0; j < d->nent; j++) {
		if (d->ent[j].key.tag == PV_DELETED)
			continue;
		if (n != j)
			d->ent[n] = d->ent[j];
		n++;
	}
	memset(d->index, 0, (d->mask + 1) * sizeof *d->index);
	for (uint64_t j = 0; j < n; j++) {
		uint64_t i = d->ent[j].hash & d->mask;
		while (d->index[i] != IX_EMPTY)
			i = (i + 1) & d->mask;
		d->index[i] = (int64_t)j + 1;
	}
	d->nent = n;
	d->used = n;
}

/* insert_new -- append an entry for a key known to be absent. Takes val. */
static int insert_new(struct pdict *d, PyObject *key, const struct pkey *k,
		      struct pv *val)
{
	struct pv kv;
	if (pv_from_py(key, &kv) < 0)
		return -1;
	if (kv.tag == PV_PICKLE) {    /* keys are scalars only */
		pv_free(&kv);
		PyErr_SetString(PyExc_TypeError, "unsupported dict key");
		return -1;
	}
	if (d->nent == d->ecap) {
		if (resize(d, d->used * 2) < 0) {
			/* out of heap: reclaim the deleted entries in place */
			if (d->used == d->nent) {
				pv_free(&kv);
				return -1;
			}
			PyErr_Clear();
			compact_in_place(d);
		}
	}
	uint64_t slot;
	if (lookup(d, k, &slot) == -2) {
		pv_free(&kv);
		return -1;
	}
	struct pentry *e = &d->ent[d->nent];
	e->hash = k->hash;
	e->key = kv;
	e->val = *val;
	d->index[slot] = (int64_t)d->nent + 1;
	d->nent++;
	d->used++;
	memset(val, 0, sizeof *val);
	return 0;
}

/* pdict_set_pv -- d[key] = val, taking ownership of val (freed on error).
 * A replaced value is freed; the first key object stays, as in Python. */
int pdict_set_pv(struct pdict *d, PyObject *key, struct pv *val)
{
	struct pkey k;
	if (pkey_from_py(key, &k) < 0) {
		pv_free(val);
		return -1;
	}
	uint64_t slot;
	int64_t ix = lookup(d, &k, &slot);
	int rc = 0;
	if (ix == -2) {
		rc = -1;
	} else if (ix >= 0) {
		struct pv old = d->ent[ix].val;
		d->ent[ix].val = *val;
		memset(val, 0, sizeof *val);
		pv_free(&old);
	} else {
		rc = insert_new(d, key, &k, val);
	}
	pkey_release(&k);
	if (rc < 0)
		pv_free(val);
	return rc;
}

/* find -- entry position of a Python key, -1 absent, -2 error. */
static int64_t find(const struct pdict *d, PyObject *key, uint64_t *slot)
{
	struct pkey k;
	if (pkey_from_py(key, &k) < 0)
		return -2;
	int64_t ix = lookup(d, &k, slot);
	pkey_release(&k);
	return ix;
}

/* remove_at -- delete entry ix found at index slot; its value is moved
 * to *val if val is not NULL, else freed. */
static void remove_at(struct pdict *d, int64_t ix, uint64_t slot,
		      struct pv *val)
{
	struct pentry *e = &d->ent[ix];
	d->index[slot] = IX_DUMMY;
	pv_free(&e->key);
	e->key.tag = PV_DELETED;
	if (val) {
		*val = e->val;
		memset(&e->val, 0, sizeof e->val);
	} else {
		pv_free(&e->val);
	}
	d->used--;
	if (d->used == 0)
		pdict_clear(d);        /* give the tables back */
}

/* pdict_copy -- a deep copy. Inside a FAS. */
int pdict_copy(const struct pdict *src, struct pdict **out)
{
	struct pdict *d = pdict_new();
	if (!d)
		return -1;
	if (src->used && resize(d, src->used) < 0)
		goto fail;
	for (uint64_t j = 0; j < src->nent; j++) {
		const struct pentry *e = &src->ent[j];
		if (e->key.tag == PV_DELETED)
			continue;
		struct pentry *n = &d->ent[d->nent];
		if (pv_copy(&e->key, &n->key) < 0)
			goto fail;
		if (pv_copy(&e->val, &n->val) < 0) {
			pv_free(&n->key);
			goto fail;
		}
		n->hash = e->hash;
		uint64_t i = n->hash & d->mask;
		while (d->index[i] != IX_EMPTY)
			i = (i + 1) & d->mask;
		d->index[i] = (int64_t)d->nent + 1;
		d->nent++;
		d->used++;
	}
	*out = d;
	return 0;
fail:
	pdict_free(d);
	return -1;
}

/* fill_dict -- r[conv(key)] = conv(value) for every live entry, in order;
 * 0, or -1 with an exception. The caller pauses the GC (VPY_GC_PAUSE). */
static int fill_dict(PyObject *r, const struct pdict *d,
		     PyObject *(*conv)(const struct pv *))
{
	for (uint64_t j = 0; j < d->nent; j++) {
		const struct pentry *e = &d->ent[j];
		if (e->key.tag == PV_DELETED)
			continue;
		PyObject *k = conv(&e->key);
		PyObject *v = k ? conv(&e->val) : NULL;
		int rc = v ? PyDict_SetItem(r, k, v) : -1;
		Py_XDECREF(k);
		Py_XDECREF(v);
		if (rc < 0)
			return -1;
	}
	return 0;
}

/* to_dict -- a new plain dict of conv'ed entries: deep with pv_to_plain,
 * shallow (live wrappers inside) with pv_to_py. */
static PyObject *to_dict(const struct pdict *d,
			 PyObject *(*conv)(const struct pv *))
{
	PyObject *r = PyDict_New();
	if (!r)
		return NULL;
	VPY_GC_PAUSE();
	if (fill_dict(r, d, conv) < 0)
		Py_CLEAR(r);
	VPY_GC_RESUME();
	return r;
}

/* pdict_to_plain -- a plain Python dict, deep copy. */
PyObject *pdict_to_plain(const struct pdict *d)
{
	return to_dict(d, pv_to_plain);
}

/* ---- the Python wrapper ---- */

/* vpy_wrap -- a new wrapper of class `type` for a heap container (shared
 * with plist.c: both wrappers are a PContainer). */
PyObject *vpy_wrap(PyTypeObject *type, void *obj, uint64_t id)
{
	PContainer *c = (PContainer *)type->tp_alloc(type, 0);
	if (!c)
		return NULL;
	c->obj = obj;
	c->id = id;
	c->gen = vpy_gen;
	return (PyObject *)c;
}

/* Both containers start with magic and id: vpy_unwrap reads them without
 * knowing which one it holds. */
_Static_assert(offsetof(struct pdict, magic) == 0 &&
	       offsetof(struct pdict, id) == sizeof(uint64_t) &&
	       offsetof(struct plist, magic) == 0 &&
	       offsetof(struct plist, id) == sizeof(uint64_t),
	       "pdict and plist must start with magic, id");

/* vpy_unwrap -- the container behind a wrapper, or NULL with an exception
 * if the pool was closed (checked first: the heap may be unmapped) or the
 * container was deleted or replaced. `kind` ("dict", "list") names it in
 * the message. */
void *vpy_unwrap(PyObject *o, uint64_t magic, const char *kind)
{
	PContainer *c = (PContainer *)o;
	if (!vpy_open || c->gen != vpy_gen) {
		PyErr_Format(vpy_Error, "the pool of this persistent %s "
			     "is closed", kind);
		return NULL;
	}
	uint64_t head[2];              /* magic, id */
	memcpy(head, c->obj, sizeof head);
	if (head[0] != magic || head[1] != c->id) {
		PyErr_Format(PyExc_ReferenceError, "this persistent %s was "
			     "deleted or replaced", kind);
		return NULL;
	}
	return c->obj;
}

PyObject *pdict_wrap(struct pdict *d)
{
	return vpy_wrap(vpy_dict_type, d, d->id);
}

int vpy_is_pdict(PyObject *o)
{
	return PyObject_TypeCheck(o, &PDictBase_Type);
}

struct pdict *pdict_unwrap(PyObject *o)
{
	return vpy_unwrap(o, PDICT_MAGIC, "dict");
}

#define SELF_DICT(ret)                                                  \
	struct pdict *d = pdict_unwrap((PyObject *)self);               \
	if (!d)                                                         \
		return ret

static Py_ssize_t PD_len(PContainer *self)
{
	SELF_DICT(-1);
	return (Py_ssize_t)d->used;
}

static PyObject *PD_subscript(PContainer *self, PyObject *key)
{
	SELF_DICT(NULL);
	uint64_t slot;
	int64_t ix = find(d, key, &slot);
	if (ix == -2)
		return NULL;
	if (ix < 0) {
		PyErr_SetObject(PyExc_KeyError, key);
		return NULL;
	}
	return pv_to_py(&d->ent[ix].val);
}

/* store -- d[key] = value inside the caller's FAS. */
static int store(PContainer *self, PyObject *key, PyObject *value)
{
	SELF_DICT(-1);
	struct pkey k;               /* reject a bad key before converting */
	if (pkey_from_py(key, &k) < 0)
		return -1;
	pkey_release(&k);
	struct pv v;
	if (pv_from_py(value, &v) < 0)
		return -1;
	d = pdict_unwrap((PyObject *)self);   /* conversion may run Python */
	if (!d) {
		pv_free(&v);
		return -1;
	}
	return pdict_set_pv(d, key, &v);
}

/* store_packed -- d[key] = value packed (packed.c) inside the caller's
 * FAS; a value that cannot be packed is stored as store() does. */
static int store_packed(PContainer *self, PyObject *key, PyObject *value)
{
	SELF_DICT(-1);
	struct pkey k;
	if (pkey_from_py(key, &k) < 0)
		return -1;
	pkey_release(&k);
	struct pv v;
	int rc = vpy_pack(value, &v);
	if (rc != 0)
		return rc < 0 ? -1 : store(self, key, value);
	vpy_note_packed();
	return pdict_set_pv(d, key, &v);   /* packing runs no Python code */
}

/* PD_set_packed -- _set_packed(key, value): d[key] = value stored as one
 * packed blob (reads give plain copies), one FAS. */
static PyObject *PD_set_packed(PContainer *self, PyObject *const *args,
			       Py_ssize_t nargs)
{
	if (nargs != 2) {
		PyErr_SetString(PyExc_TypeError, "_set_packed(key, value)");
		return NULL;
	}
	if (vpy_fas_enter() < 0)
		return NULL;
	int ok = store_packed(self, args[0], args[1]) == 0;
	if (!vpy_fas_exit(ok))
		return NULL;
	Py_RETURN_NONE;
}

/* PD_update_packed -- _update_packed(dict): _set_packed for every item of
 * a plain dict, in one FAS. */
static PyObject *PD_update_packed(PContainer *self, PyObject *other)
{
	if (!PyDict_Check(other)) {
		PyErr_SetString(PyExc_TypeError, "_update_packed needs a dict");
		return NULL;
	}
	PyObject *items = PyDict_Items(other);   /* store() may run Python */
	if (!items)
		return NULL;
	if (vpy_fas_enter() < 0) {
		Py_DECREF(items);
		return NULL;
	}
	int ok = 1;
	for (Py_ssize_t i = 0; ok && i < PyList_GET_SIZE(items); i++) {
		PyObject *kv = PyList_GET_ITEM(items, i);
		ok = store_packed(self, PyTuple_GET_ITEM(kv, 0),
				  PyTuple_GET_ITEM(kv, 1)) == 0;
	}
	Py_DECREF(items);
	if (!vpy_fas_exit(ok))
		return NULL;
	Py_RETURN_NONE;
}

static int PD_ass_subscript(PContainer *self, PyObject *key, PyObject *value)
{
	if (vpy_fas_enter() < 0)
		return -1;
	int ok;
	if (value) {
		ok = store(self, key, value) == 0;
	} else {
		struct pdict *d = pdict_unwrap((PyObject *)self);
		uint64_t slot;
		int64_t ix = d ? find(d, key, &slot) : -2;
		if (ix == -1)
			PyErr_SetObject(PyExc_KeyError, key);
		if (ix >= 0)
			remove_at(d, ix, slot, NULL);
		ok = ix >= 0;
	}
	return vpy_fas_exit(ok) ? 0 : -1;
}

static int PD_contains(PContainer *self, PyObject *key)
{
	SELF_DICT(-1);
	uint64_t slot;
	int64_t ix = find(d, key, &slot);
	if (ix == -2) {
		/* `[1] in d` is False in Python only for hashable types; an
		 * unhashable key raises TypeError there too. */
		return -1;
	}
	return ix >= 0;
}

static PyObject *PD_get(PContainer *self, PyObject *const *args,
			Py_ssize_t n)
{
	if (n < 1 || n > 2) {
		PyErr_SetString(PyExc_TypeError, "get expected 1 or 2 arguments");
		return NULL;
	}
	SELF_DICT(NULL);
	uint64_t slot;
	int64_t ix = find(d, args[0], &slot);
	if (ix == -2)
		return NULL;
	if (ix < 0) {
		PyObject *dflt = n == 2 ? args[1] : Py_None;
		Py_INCREF(dflt);
		return dflt;
	}
	return pv_to_py(&d->ent[ix].val);
}

static PyObject *PD_pop(PContainer *self, PyObject *const *args,
			Py_ssize_t n)
{
	if (n < 1 || n > 2) {
		PyErr_SetString(PyExc_TypeError, "pop expected 1 or 2 arguments");
		return NULL;
	}
	if (vpy_fas_enter() < 0)
		return NULL;
	PyObject *r = NULL;
	struct pdict *d = pdict_unwrap((PyObject *)self);
	uint64_t slot;
	int64_t ix = d ? find(d, args[0], &slot) : -2;
	if (ix == -1) {
		if (n == 2) {
			r = args[1];
			Py_INCREF(r);
		} else {
			PyErr_SetObject(PyExc_KeyError, args[0]);
		}
	} else if (ix >= 0) {
		/* detach first: converting may run Python code (the GC) */
		struct pv v;
		remove_at(d, ix, slot, &v);
		r = pv_to_plain(&v);
		pv_free(&v);
	}
	if (!vpy_fas_exit(r != NULL))
		Py_CLEAR(r);
	return r;
}

static PyObject *PD_popitem(PContainer *self, PyObject *unused)
{
	(void)unused;
	if (vpy_fas_enter() < 0)
		return NULL;
	PyObject *r = NULL;
	struct pdict *d = pdict_unwrap((PyObject *)self);
	if (d && d->used == 0)
		PyErr_SetString(PyExc_KeyError, "popitem(): dictionary is empty");
	else if (d) {
		int64_t ix = (int64_t)d->nent - 1;
		while (d->ent[ix].key.tag == PV_DELETED)
			ix--;
		struct pkey k;
		if (pkey_from_pv(&d->ent[ix].key, &k) == 0) {
			uint64_t slot;
			int64_t found = lookup(d, &k, &slot);
			pkey_release(&k);
			if (found != ix) {
				if (!PyErr_Occurred())
					PyErr_SetString(vpy_Error,
							"corrupt persistent dict");
			} else {
				/* detach key and value first: converting them
				 * may run Python code (the GC) */
				struct pentry e = d->ent[ix];
				d->index[slot] = IX_DUMMY;
				d->ent[ix].key.tag = PV_DELETED;
				memset(&d->ent[ix].val, 0, sizeof e.val);
				if (--d->used == 0)
					pdict_clear(d);
				PyObject *key = pv_to_plain(&e.key);
				PyObject *val = key ? pv_to_plain(&e.val) : NULL;
				if (val)
					r = PyTuple_Pack(2, key, val);
				Py_XDECREF(key);
				Py_XDECREF(val);
				pv_free(&e.key);
				pv_free(&e.val);
			}
		}
	}
	if (!vpy_fas_exit(r != NULL))
		Py_CLEAR(r);
	return r;
}

static PyObject *PD_setdefault(PContainer *self, PyObject *const *args,
			       Py_ssize_t n)
{
	if (n < 1 || n > 2) {
		PyErr_SetString(PyExc_TypeError,
				"setdefault expected 1 or 2 arguments");
		return NULL;
	}
	PyObject *dflt = n == 2 ? args[1] : Py_None;
	if (vpy_fas_enter() < 0)
		return NULL;
	PyObject *r = NULL;
	struct pdict *d = pdict_unwrap((PyObject *)self);
	uint64_t slot;
	int64_t ix = d ? find(d, args[0], &slot) : -2;
	if (ix == -1 && store(self, args[0], dflt) == 0) {
		d = pdict_unwrap((PyObject *)self);
		ix = d ? find(d, args[0], &slot) : -2;
	}
	if (ix >= 0)
		r = pv_to_py(&d->ent[ix].val);
	if (!vpy_fas_exit(r != NULL))
		Py_CLEAR(r);
	return r;
}

/* update_from -- d.update(other) body, inside the caller's FAS. */
static int update_from(PContainer *self, PyObject *other)
{
	if (PyDict_Check(other)) {
		PyObject *items = PyDict_Items(other);   /* stable snapshot */
		if (!items)
			return -1;
		Py_ssize_t n = PyList_GET_SIZE(items);
		for (Py_ssize_t i = 0; i < n; i++) {
			PyObject *kv = PyList_GET_ITEM(items, i);
			if (store(self, PyTuple_GET_ITEM(kv, 0),
				  PyTuple_GET_ITEM(kv, 1)) < 0) {
				Py_DECREF(items);
				return -1;
			}
		}
		Py_DECREF(items);
		return 0;
	}
	PyObject *seq;
	if (PyObject_HasAttrString(other, "keys")) {
		PyObject *keys = PyMapping_Keys(other);
		if (!keys)
			return -1;
		Py_ssize_t n = PyList_GET_SIZE(keys);
		for (Py_ssize_t i = 0; i < n; i++) {
			PyObject *k = PyList_GET_ITEM(keys, i);
			PyObject *v = PyObject_GetItem(other, k);
			int rc = v ? store(self, k, v) : -1;
			Py_XDECREF(v);
			if (rc < 0) {
				Py_DECREF(keys);
				return -1;
			}
		}
		Py_DECREF(keys);
		return 0;
	}
	seq = PySequence_List(other);
	if (!seq)
		return -1;
	for (Py_ssize_t i = 0; i < PyList_GET_SIZE(seq); i++) {
		PyObject *kv = PySequence_Fast(PyList_GET_ITEM(seq, i),
					       "cannot convert dictionary update "
					       "sequence element to a sequence");
		if (!kv)
			goto fail;
		if (PySequence_Fast_GET_SIZE(kv) != 2) {
			PyErr_Format(PyExc_ValueError, "dictionary update sequence "
				     "element #%zd has length %zd; 2 is required",
				     i, PySequence_Fast_GET_SIZE(kv));
			Py_DECREF(kv);
			goto fail;
		}
		int rc = store(self, PySequence_Fast_GET_ITEM(kv, 0),
			       PySequence_Fast_GET_ITEM(kv, 1));
		Py_DECREF(kv);
		if (rc < 0)
			goto fail;
	}
	Py_DECREF(seq);
	return 0;
fail:
	Py_DECREF(seq);
	return -1;
}

static PyObject *PD_update(PContainer *self, PyObject *args, PyObject *kw)
{
	PyObject *other = NULL;
	if (!PyArg_UnpackTuple(args, "update", 0, 1, &other))
		return NULL;
	if (vpy_fas_enter() < 0)
		return NULL;
	int ok = pdict_unwrap((PyObject *)self) != NULL;
	if (ok && other)
		ok = update_from(self, other) == 0;
	if (ok && kw)
		ok = update_from(self, kw) == 0;
	if (!vpy_fas_exit(ok))
		return NULL;
	Py_RETURN_NONE;
}

static PyObject *PD_clear(PContainer *self, PyObject *unused)
{
	(void)unused;
	if (vpy_fas_enter() < 0)
		return NULL;
	struct pdict *d = pdict_unwrap((PyObject *)self);
	if (d)
		pdict_clear(d);
	if (!vpy_fas_exit(d != NULL))
		return NULL;
	Py_RETURN_NONE;
}

/* PD_copy -- dict.copy(): a plain dict, shallow (nested containers are
 * live wrappers). */
static PyObject *PD_copy(PContainer *self, PyObject *unused)
{
	(void)unused;
	SELF_DICT(NULL);
	return to_dict(d, pv_to_py);
}

static PyObject *PD_to_python(PContainer *self, PyObject *unused)
{
	(void)unused;
	SELF_DICT(NULL);
	return pdict_to_plain(d);
}

/* PD_max_int_key -- the largest int key (0 if none): a table's last id
 * without building a Python int per key. */
static PyObject *PD_max_int_key(PContainer *self, PyObject *unused)
{
	(void)unused;
	SELF_DICT(NULL);
	int64_t m = 0;
	for (uint64_t j = 0; j < d->nent; j++) {
		const struct pv *k = &d->ent[j].key;
		if (k->tag == PV_INT && (int64_t)k->u > m)
			m = (int64_t)k->u;
	}
	return PyLong_FromLongLong(m);
}

/* PD_valid -- whether the wrapper still denotes a live dict of the open
 * pool (no exception either way). */
static PyObject *PD_valid(PContainer *self, PyObject *unused)
{
	(void)unused;
	struct pdict *d = pdict_unwrap((PyObject *)self);
	if (!d)
		PyErr_Clear();
	return PyBool_FromLong(d != NULL);
}

/* PD_ident -- the heap address of the dict: two wrappers denote the same
 * persistent dict when their identities are equal. */
static PyObject *PD_ident(PContainer *self, PyObject *unused)
{
	(void)unused;
	SELF_DICT(NULL);
	return PyLong_FromVoidPtr(d);
}

/* PD_documents -- _documents(doc_type, cond=None, first=False): for each
 * entry, a new doc_type (a dict subclass such as TinyDB's Document) holding
 * a plain copy of the value, with attribute doc_id = the key; only those
 * for which cond(doc) is true when cond is given; stop at the first match
 * when first is true. One pass in C: the table class's search and scans. */
static PyObject *PD_documents(PContainer *self, PyObject *args)
{
	PyTypeObject *type;
	PyObject *cond = Py_None;
	int first = 0;
	if (!PyArg_ParseTuple(args, "O!|Op", &PyType_Type, &type, &cond, &first))
		return NULL;
	if (!PyType_IsSubtype(type, &PyDict_Type)) {
		PyErr_SetString(PyExc_TypeError, "doc_type must subclass dict");
		return NULL;
	}
	SELF_DICT(NULL);
	static PyObject *attr;
	if (!attr && !(attr = PyUnicode_InternFromString("doc_id")))
		return NULL;
	PyObject *out = PyList_New(0), *empty = PyTuple_New(0);
	if (!out || !empty)
		goto fail;
	for (uint64_t j = 0; j < d->nent; j++) {
		const struct pentry *e = &d->ent[j];
		if (e->key.tag == PV_DELETED)
			continue;
		if (e->val.tag != PV_DICT && e->val.tag != PV_PACKED) {
			PyErr_SetString(PyExc_TypeError, "a document is not a dict");
			goto fail;
		}
		const void *v = (const void *)(uintptr_t)e->val.u;
		VPY_GC_PAUSE();
		PyObject *doc = type->tp_new(type, empty, NULL);
		PyObject *key = doc ? pv_to_plain(&e->key) : NULL;
		int rc = key ? PyObject_SetAttr(doc, attr, key) : -1;
		Py_XDECREF(key);
		if (rc == 0)
			rc = e->val.tag == PV_PACKED ? vpy_unpack_into(v, doc) :
			     fill_dict(doc, v, pv_to_plain);
		VPY_GC_RESUME();
		if (!doc)
			goto fail;
		if (rc == 0 && cond != Py_None) {
			uint64_t nent = d->nent;
			PyObject *r = PyObject_CallOneArg(cond, doc);
			rc = r ? PyObject_IsTrue(r) : -1;
			Py_XDECREF(r);
			d = pdict_unwrap((PyObject *)self);   /* cond ran Python */
			if (rc >= 0 && (!d || d->nent != nent)) {
				if (d)
					PyErr_SetString(PyExc_RuntimeError, "table "
							"changed during the scan");
				rc = -1;
			}
			if (rc == 0) {          /* no match */
				Py_DECREF(doc);
				continue;
			}
			rc = rc > 0 ? 0 : -1;
		}
		if (rc == 0)
			rc = PyList_Append(out, doc);
		Py_DECREF(doc);
		if (rc < 0)
			goto fail;
		if (first)
			break;
	}
	Py_DECREF(empty);
	return out;
fail:
	Py_XDECREF(out);
	Py_XDECREF(empty);
	return NULL;
}

static PyObject *PD_repr(PContainer *self)
{
	SELF_DICT(NULL);
	int r = Py_ReprEnter((PyObject *)self);
	if (r != 0)
		return r > 0 ? PyUnicode_FromString("{...}") : NULL;
	PyObject *plain = pdict_to_plain(d);
	PyObject *s = plain ? PyObject_Repr(plain) : NULL;
	Py_XDECREF(plain);
	Py_ReprLeave((PyObject *)self);
	return s;
}

/* PD_richcompare -- equality with any dict or persistent dict, by value. */
static PyObject *PD_richcompare(PContainer *self, PyObject *other, int op)
{
	if ((op != Py_EQ && op != Py_NE) ||
	    !(PyDict_Check(other) || vpy_is_pdict(other)))
		Py_RETURN_NOTIMPLEMENTED;
	SELF_DICT(NULL);
	PyObject *a = pdict_to_plain(d), *b;
	if (!a)
		return NULL;
	if (vpy_is_pdict(other)) {
		struct pdict *o = pdict_unwrap(other);
		b = o ? pdict_to_plain(o) : NULL;
	} else {
		b = other;
		Py_INCREF(b);
	}
	PyObject *r = b ? PyObject_RichCompare(a, b, op) : NULL;
	Py_DECREF(a);
	Py_XDECREF(b);
	return r;
}

/* ---- key iterator ---- */

typedef struct {
	PyObject_HEAD
	PyObject *dict;      /* the wrapper */
	uint64_t pos;
	uint64_t used;       /* size when iteration began */
	uint64_t id;
} PDictIter;

static PyObject *PD_iter(PContainer *self)
{
	SELF_DICT(NULL);
	PDictIter *it = PyObject_New(PDictIter, &PDictIter_Type);
	if (!it)
		return NULL;
	Py_INCREF(self);
	it->dict = (PyObject *)self;
	it->pos = 0;
	it->used = d->used;
	it->id = d->id;
	return (PyObject *)it;
}

static void PDI_dealloc(PDictIter *it)
{
	Py_XDECREF(it->dict);
	PyObject_Free(it);
}

static PyObject *PDI_next(PDictIter *it)
{
	if (!it->dict)
		return NULL;
	struct pdict *d = pdict_unwrap(it->dict);
	if (!d)
		return NULL;
	if (d->used != it->used) {
		it->used = (uint64_t)-1;   /* stays broken, as in CPython */
		PyErr_SetString(PyExc_RuntimeError,
				"dictionary changed size during iteration");
		return NULL;
	}
	while (it->pos < d->nent) {
		const struct pentry *e = &d->ent[it->pos++];
		if (e->key.tag != PV_DELETED)
			return pv_to_py(&e->key);
	}
	Py_CLEAR(it->dict);
	return NULL;
}

PyTypeObject PDictIter_Type = {
	PyVarObject_HEAD_INIT(NULL, 0)
	.tp_name = VPY_MOD ".PDictKeyIterator",
	.tp_basicsize = sizeof(PDictIter),
	.tp_dealloc = (destructor)PDI_dealloc,
	.tp_flags = Py_TPFLAGS_DEFAULT,
	.tp_iter = PyObject_SelfIter,
	.tp_iternext = (iternextfunc)PDI_next,
};

static PyMappingMethods PD_mapping = {
	.mp_length = (lenfunc)PD_len,
	.mp_subscript = (binaryfunc)PD_subscript,
	.mp_ass_subscript = (objobjargproc)PD_ass_subscript,
};

static PySequenceMethods PD_sequence = {
	.sq_contains = (objobjproc)PD_contains,
};

static PyMethodDef PD_methods[] = {
	{"get", (PyCFunction)(void (*)(void))PD_get, METH_FASTCALL,
	 "D.get(k[, d]) -> D[k] if k in D, else d (default None)"},
	{"pop", (PyCFunction)(void (*)(void))PD_pop, METH_FASTCALL,
	 "D.pop(k[, d]) -> remove k and return its value (a plain copy)"},
	{"popitem", (PyCFunction)PD_popitem, METH_NOARGS,
	 "remove and return the last (key, value) pair (plain copies)"},
	{"setdefault", (PyCFunction)(void (*)(void))PD_setdefault, METH_FASTCALL,
	 "D.setdefault(k[, d]) -> D.get(k, d), also set D[k]=d if k not in D"},
	{"update", (PyCFunction)(void (*)(void))PD_update,
	 METH_VARARGS | METH_KEYWORDS, "D.update([E, ]**F), one FAS"},
	{"clear", (PyCFunction)PD_clear, METH_NOARGS, "remove all items"},
	{"copy", (PyCFunction)PD_copy, METH_NOARGS,
	 "a shallow plain dict copy"},
	{"to_python", (PyCFunction)PD_to_python, METH_NOARGS,
	 "a deep copy made of plain dicts and lists"},
	{"_max_int_key", (PyCFunction)PD_max_int_key, METH_NOARGS, NULL},
	{"_documents", (PyCFunction)PD_documents, METH_VARARGS,
	 "_documents(doc_type, cond=None, first=False): values as doc_type "
	 "objects with .doc_id = key, filtered by cond"},
	{"_set_packed", (PyCFunction)(void (*)(void))PD_set_packed,
	 METH_FASTCALL, "_set_packed(key, value): store value packed "
	 "(one blob; reads give plain copies), one FAS"},
	{"_update_packed", (PyCFunction)PD_update_packed, METH_O,
	 "_update_packed(dict): _set_packed for each item, one FAS"},
	{"_valid", (PyCFunction)PD_valid, METH_NOARGS,
	 "whether this object is still alive in the open pool"},
	{"_ident", (PyCFunction)PD_ident, METH_NOARGS,
	 "the heap address (equal for wrappers of one persistent dict)"},
	{NULL, NULL, 0, NULL},
};

PyTypeObject PDictBase_Type = {
	PyVarObject_HEAD_INIT(NULL, 0)
	.tp_name = VPY_MOD ".PDictBase",
	.tp_basicsize = sizeof(PContainer),
	.tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_BASETYPE,
	.tp_doc = "A dict stored in the persistent heap (see volipmem.PDict).",
	.tp_repr = (reprfunc)PD_repr,
	.tp_as_mapping = &PD_mapping,
	.tp_as_sequence = &PD_sequence,
	.tp_hash = PyObject_HashNotImplemented,
	.tp_richcompare = (richcmpfunc)PD_richcompare,
	.tp_iter = (getiterfunc)PD_iter,
	.tp_methods = PD_methods,
};
