/* SPDX-License-Identifier: MIT */
/*
 * plist.c -- the persistent list: a growable array of tagged values in the
 * heap, and its Python wrapper type `PListBase` (the package subclasses it
 * with collections.abc.MutableSequence for the remaining mixin methods).
 * Every mutating method is one FAS.
 */
#include "vpy.h"

#include <string.h>

static struct pv *inline_items(const struct plist *l)
{
	return (struct pv *)(uintptr_t)(l + 1);
}

/* plist_new -- an empty list, with room for a few items inline. Inside a
 * FAS. */
struct plist *plist_new(void)
{
	struct plist *l = pcalloc(1, sizeof *l + PL_INLINE_CAP * sizeof(struct pv));
	if (!l) {
		PyErr_NoMemory();
		return NULL;
	}
	l->magic = PLIST_MAGIC;
	l->id = vpy_new_id();
	return l;
}

static void plist_clear(struct plist *l)
{
	for (uint64_t i = 0; i < l->len; i++)
		pv_free(&l->items[i]);
	if (l->items && l->items != inline_items(l))
		pfree(l->items);
	l->items = NULL;
	l->len = l->cap = 0;
}

void plist_free(struct plist *l)
{
	if (!l)
		return;
	plist_clear(l);
	l->magic = 0;
	pfree(l);
}

/* plist_reserve -- room for n items (inline while they fit). */
int plist_reserve(struct plist *l, uint64_t n)
{
	if (n <= l->cap)
		return 0;
	struct pv *inl = inline_items(l);
	if (!l->items && n <= PL_INLINE_CAP) {
		l->items = inl;
		l->cap = PL_INLINE_CAP;
		return 0;
	}
	uint64_t cap = l->cap * 2;
	if (cap < n)
		cap = n;
	if (cap < 8)
		cap = 8;
	struct pv *items;
	if (!l->items || l->items == inl) {
		items = pmalloc(cap * sizeof *items);
		if (items && l->items)
			memcpy(items, inl, l->len * sizeof *items);
	} else {
		items = prealloc(l->items, cap * sizeof *items);
	}
	if (!items) {
		PyErr_NoMemory();
		return -1;
	}
	l->items = items;
	l->cap = cap;
	return 0;
}

/* shrink -- give memory back when the list is mostly empty. */
static void shrink(struct plist *l)
{
	struct pv *inl = inline_items(l);
	if (l->items == inl) {
		if (l->len == 0) {
			l->items = NULL;
			l->cap = 0;
		}
	} else if (l->len <= PL_INLINE_CAP && l->items) {
		if (l->len)
			memcpy(inl, l->items, l->len * sizeof *inl);
		pfree(l->items);
		l->items = l->len ? inl : NULL;
		l->cap = l->len ? PL_INLINE_CAP : 0;
	} else if (l->cap > 16 && l->len < l->cap / 4) {
		struct pv *items = prealloc(l->items, l->cap / 2 * sizeof *items);
		if (items) {
			l->items = items;
			l->cap /= 2;
		}
	}
}

int plist_copy(const struct plist *src, struct plist **out)
{
	struct plist *l = plist_new();
	if (!l)
		return -1;
	if (plist_reserve(l, src->len) < 0)
		goto fail;
	for (uint64_t i = 0; i < src->len; i++) {
		if (pv_copy(&src->items[i], &l->items[i]) < 0)
			goto fail;
		l->len = i + 1;
	}
	*out = l;
	return 0;
fail:
	plist_free(l);
	return -1;
}

/* to_list -- a new plain list of conv(items[start + i * step]) for i < n:
 * deep with pv_to_plain, live wrappers inside with pv_to_py. */
static PyObject *to_list(const struct plist *l, Py_ssize_t start,
			 Py_ssize_t step, Py_ssize_t n,
			 PyObject *(*conv)(const struct pv *))
{
	PyObject *r = PyList_New(n);
	if (!r)
		return NULL;
	VPY_GC_PAUSE();
	for (Py_ssize_t i = 0, j = start; i < n; i++, j += step) {
		PyObject *v = conv(&l->items[j]);
		if (!v) {
			Py_CLEAR(r);
			break;
		}
		PyList_SET_ITEM(r, i, v);
	}
	VPY_GC_RESUME();
	return r;
}

PyObject *plist_to_plain(const struct plist *l)
{
	return to_list(l, 0, 1, (Py_ssize_t)l->len, pv_to_plain);
}

PyObject *plist_wrap(struct plist *l)
{
	return vpy_wrap(vpy_list_type, l, l->id);
}

int vpy_is_plist(PyObject *o)
{
	return PyObject_TypeCheck(o, &PListBase_Type);
}

struct plist *plist_unwrap(PyObject *o)
{
	return vpy_unwrap(o, PLIST_MAGIC, "list");
}

#define SELF_LIST(ret)                                                  \
	struct plist *l = plist_unwrap((PyObject *)self);               \
	if (!l)                                                         \
		return ret

/* convert_seq -- convert every item of an iterable into a PyMem array of
 * values (inside the caller's FAS). */
static struct pv *convert_seq(PyObject *iterable, Py_ssize_t *n)
{
	PyObject *seq = PySequence_Fast(iterable, "can only assign an iterable");
	if (!seq)
		return NULL;
	Py_ssize_t len = PySequence_Fast_GET_SIZE(seq);
	struct pv *vals = PyMem_Calloc(len ? (size_t)len : 1, sizeof *vals);
	if (!vals) {
		Py_DECREF(seq);
		PyErr_NoMemory();
		return NULL;
	}
	for (Py_ssize_t i = 0; i < len; i++) {
		if (pv_from_py(PySequence_Fast_GET_ITEM(seq, i), &vals[i]) < 0) {
			while (i-- > 0)
				pv_free(&vals[i]);
			PyMem_Free(vals);
			Py_DECREF(seq);
			return NULL;
		}
	}
	Py_DECREF(seq);
	*n = len;
	return vals;
}

static void free_vals(struct pv *vals, Py_ssize_t n)
{
	for (Py_ssize_t i = 0; i < n; i++)
		pv_free(&vals[i]);
	PyMem_Free(vals);
}

/* splice -- replace l[lo:hi] by n values (taken). */
static int splice(struct plist *l, uint64_t lo, uint64_t hi, struct pv *vals,
		  uint64_t n)
{
	uint64_t newlen = l->len - (hi - lo) + n;
	if (plist_reserve(l, newlen) < 0)
		return -1;
	for (uint64_t i = lo; i < hi; i++)
		pv_free(&l->items[i]);
	if (l->len > hi)
		memmove(&l->items[lo + n], &l->items[hi],
			(l->len - hi) * sizeof *l->items);
	if (n)
		memcpy(&l->items[lo], vals, n * sizeof *vals);
	l->len = newlen;
	shrink(l);
	return 0;
}

static Py_ssize_t PL_len(PContainer *self)
{
	SELF_LIST(-1);
	return (Py_ssize_t)l->len;
}

static PyObject *PL_item(PContainer *self, Py_ssize_t i)
{
	SELF_LIST(NULL);
	if (i < 0 || (uint64_t)i >= l->len) {
		PyErr_SetString(PyExc_IndexError, "list index out of range");
		return NULL;
	}
	return pv_to_py(&l->items[i]);
}

static PyObject *PL_subscript(PContainer *self, PyObject *key)
{
	SELF_LIST(NULL);
	if (PyIndex_Check(key)) {
		Py_ssize_t i = PyNumber_AsSsize_t(key, PyExc_IndexError);
		if (i == -1 && PyErr_Occurred())
			return NULL;
		if (i < 0)
			i += (Py_ssize_t)l->len;
		return PL_item(self, i);
	}
	if (!PySlice_Check(key)) {
		PyErr_Format(PyExc_TypeError, "list indices must be integers or "
			     "slices, not %.200s", Py_TYPE(key)->tp_name);
		return NULL;
	}
	Py_ssize_t start, stop, step;
	if (PySlice_Unpack(key, &start, &stop, &step) < 0)
		return NULL;
	Py_ssize_t n = PySlice_AdjustIndices((Py_ssize_t)l->len, &start, &stop,
					     step);
	return to_list(l, start, step, n, pv_to_py);
}

/* assign_slice -- l[slice] = value, or del l[slice] (value NULL). */
static int assign_slice(PContainer *self, PyObject *key, PyObject *value)
{
	Py_ssize_t nv = 0;
	struct pv *vals = NULL;
	if (value && !(vals = convert_seq(value, &nv)))
		return -1;
	struct plist *l = plist_unwrap((PyObject *)self);
	Py_ssize_t start, stop, step;
	if (!l || PySlice_Unpack(key, &start, &stop, &step) < 0)
		goto fail;
	Py_ssize_t n = PySlice_AdjustIndices((Py_ssize_t)l->len, &start, &stop,
					     step);
	if (step == 1) {
		if (stop < start)
			stop = start;
		if (splice(l, (uint64_t)start, (uint64_t)stop, vals,
			   (uint64_t)nv) < 0)
			goto fail;
		PyMem_Free(vals);
		return 0;
	}
	if (value) {
		if (nv != n) {
			PyErr_Format(PyExc_ValueError, "attempt to assign sequence "
				     "of size %zd to extended slice of size %zd",
				     nv, n);
			goto fail;
		}
		for (Py_ssize_t i = 0, j = start; i < n; i++, j += step) {
			pv_free(&l->items[j]);
			l->items[j] = vals[i];
		}
		PyMem_Free(vals);
		return 0;
	}
	/* delete an extended slice: mark, then compact */
	if (n == 0)
		return 0;
	char *del = PyMem_Calloc(l->len, 1);
	if (!del) {
		PyErr_NoMemory();
		return -1;
	}
	for (Py_ssize_t i = 0, j = start; i < n; i++, j += step)
		del[j] = 1;
	uint64_t w = 0;
	for (uint64_t r = 0; r < l->len; r++) {
		if (del[r])
			pv_free(&l->items[r]);
		else
			l->items[w++] = l->items[r];
	}
	l->len = w;
	PyMem_Free(del);
	shrink(l);
	return 0;
fail:
	if (vals)
		free_vals(vals, nv);
	return -1;
}

static int PL_ass_subscript(PContainer *self, PyObject *key, PyObject *value)
{
	if (vpy_fas_enter() < 0)
		return -1;
	int ok = 0;
	struct plist *l = plist_unwrap((PyObject *)self);
	if (l && PyIndex_Check(key)) {
		Py_ssize_t i = PyNumber_AsSsize_t(key, PyExc_IndexError);
		if (!(i == -1 && PyErr_Occurred())) {
			struct pv v;
			if (i < 0)
				i += (Py_ssize_t)l->len;
			if (i < 0 || (uint64_t)i >= l->len) {
				PyErr_SetString(PyExc_IndexError, value ?
						"list assignment index out of range" :
						"list index out of range");
			} else if (!value) {
				ok = splice(l, (uint64_t)i, (uint64_t)i + 1, NULL, 0) == 0;
			} else if (pv_from_py(value, &v) == 0) {
				l = plist_unwrap((PyObject *)self);
				if (!l || (uint64_t)i >= l->len) {
					if (l)
						PyErr_SetString(PyExc_IndexError,
							"list assignment index out of range");
					pv_free(&v);
				} else {
					struct pv old = l->items[i];
					l->items[i] = v;
					pv_free(&old);
					ok = 1;
				}
			}
		}
	} else if (l && PySlice_Check(key)) {
		ok = assign_slice(self, key, value) == 0;
	} else if (l) {
		PyErr_Format(PyExc_TypeError, "list indices must be integers or "
			     "slices, not %.200s", Py_TYPE(key)->tp_name);
	}
	return vpy_fas_exit(ok) ? 0 : -1;
}

/* insert_at -- insert one converted value at i (clamped like list.insert). */
static int insert_at(PContainer *self, Py_ssize_t i, PyObject *value)
{
	struct pv v;
	if (pv_from_py(value, &v) < 0)
		return -1;
	struct plist *l = plist_unwrap((PyObject *)self);
	if (!l) {
		pv_free(&v);
		return -1;
	}
	Py_ssize_t n = (Py_ssize_t)l->len;
	if (i < 0) {
		i += n;
		if (i < 0)
			i = 0;
	}
	if (i > n)
		i = n;
	if (splice(l, (uint64_t)i, (uint64_t)i, &v, 1) < 0) {
		pv_free(&v);
		return -1;
	}
	return 0;
}

static PyObject *PL_append(PContainer *self, PyObject *value)
{
	if (vpy_fas_enter() < 0)
		return NULL;
	int ok = insert_at(self, PY_SSIZE_T_MAX, value) == 0;
	if (!vpy_fas_exit(ok))
		return NULL;
	Py_RETURN_NONE;
}

static PyObject *PL_insert(PContainer *self, PyObject *const *args,
			   Py_ssize_t n)
{
	if (n != 2) {
		PyErr_SetString(PyExc_TypeError, "insert expected 2 arguments");
		return NULL;
	}
	Py_ssize_t i = PyNumber_AsSsize_t(args[0], PyExc_OverflowError);
	if (i == -1 && PyErr_Occurred())
		return NULL;
	if (vpy_fas_enter() < 0)
		return NULL;
	int ok = insert_at(self, i, args[1]) == 0;
	if (!vpy_fas_exit(ok))
		return NULL;
	Py_RETURN_NONE;
}

static PyObject *PL_extend(PContainer *self, PyObject *iterable)
{
	if (vpy_fas_enter() < 0)
		return NULL;
	Py_ssize_t nv = 0;
	struct pv *vals = convert_seq(iterable, &nv);
	int ok = 0;
	if (vals) {
		struct plist *l = plist_unwrap((PyObject *)self);
		if (l && splice(l, l->len, l->len, vals, (uint64_t)nv) == 0) {
			PyMem_Free(vals);
			ok = 1;
		} else {
			free_vals(vals, nv);
		}
	}
	if (!vpy_fas_exit(ok))
		return NULL;
	Py_RETURN_NONE;
}

static PyObject *PL_pop(PContainer *self, PyObject *const *args, Py_ssize_t n)
{
	Py_ssize_t i = -1;
	if (n > 1) {
		PyErr_SetString(PyExc_TypeError, "pop expected at most 1 argument");
		return NULL;
	}
	if (n == 1) {
		i = PyNumber_AsSsize_t(args[0], PyExc_IndexError);
		if (i == -1 && PyErr_Occurred())
			return NULL;
	}
	if (vpy_fas_enter() < 0)
		return NULL;
	PyObject *r = NULL;
	struct plist *l = plist_unwrap((PyObject *)self);
	if (l) {
		if (l->len == 0) {
			PyErr_SetString(PyExc_IndexError, "pop from empty list");
		} else {
			if (i < 0)
				i += (Py_ssize_t)l->len;
			if (i < 0 || (uint64_t)i >= l->len)
				PyErr_SetString(PyExc_IndexError,
						"pop index out of range");
			else {
				/* detach first: converting may run the GC */
				struct pv v = l->items[i];
				memset(&l->items[i], 0, sizeof v);
				splice(l, (uint64_t)i, (uint64_t)i + 1, NULL, 0);
				r = pv_to_plain(&v);
				pv_free(&v);
			}
		}
	}
	if (!vpy_fas_exit(r != NULL))
		Py_CLEAR(r);
	return r;
}

/* find_value -- index of the first item equal to value, -1 none, -2 error. */
static Py_ssize_t find_value(PContainer *self, PyObject *value,
			     Py_ssize_t start, Py_ssize_t stop)
{
	for (Py_ssize_t i = start;; i++) {
		struct plist *l = plist_unwrap((PyObject *)self);
		if (!l)
			return -2;
		if (i >= stop || (uint64_t)i >= l->len)
			return -1;
		PyObject *v = pv_to_py(&l->items[i]);
		if (!v)
			return -2;
		int eq = PyObject_RichCompareBool(v, value, Py_EQ);
		Py_DECREF(v);
		if (eq < 0)
			return -2;
		if (eq)
			return i;
	}
}

static int PL_contains(PContainer *self, PyObject *value)
{
	Py_ssize_t i = find_value(self, value, 0, PY_SSIZE_T_MAX);
	return i == -2 ? -1 : i >= 0;
}

static PyObject *PL_remove(PContainer *self, PyObject *value)
{
	Py_ssize_t i = find_value(self, value, 0, PY_SSIZE_T_MAX);
	if (i == -2)
		return NULL;
	if (i == -1) {
		PyErr_SetString(PyExc_ValueError, "list.remove(x): x not in list");
		return NULL;
	}
	if (vpy_fas_enter() < 0)
		return NULL;
	struct plist *l = plist_unwrap((PyObject *)self);
	int ok = l && (uint64_t)i < l->len &&
		 splice(l, (uint64_t)i, (uint64_t)i + 1, NULL, 0) == 0;
	if (!vpy_fas_exit(ok))
		return NULL;
	Py_RETURN_NONE;
}

static PyObject *PL_index(PContainer *self, PyObject *const *args,
			  Py_ssize_t n)
{
	if (n < 1 || n > 3) {
		PyErr_SetString(PyExc_TypeError, "index expected 1 to 3 arguments");
		return NULL;
	}
	SELF_LIST(NULL);
	Py_ssize_t len = (Py_ssize_t)l->len, start = 0, stop = PY_SSIZE_T_MAX;
	if (n >= 2 && !_PyEval_SliceIndexNotNone(args[1], &start))
		return NULL;
	if (n >= 3 && !_PyEval_SliceIndexNotNone(args[2], &stop))
		return NULL;
	if (start < 0) {
		start += len;
		if (start < 0)
			start = 0;
	}
	if (stop < 0) {
		stop += len;
		if (stop < 0)
			stop = 0;
	}
	Py_ssize_t i = find_value(self, args[0], start, stop);
	if (i == -2)
		return NULL;
	if (i == -1) {
		PyErr_SetString(PyExc_ValueError, "value is not in list");
		return NULL;
	}
	return PyLong_FromSsize_t(i);
}

static PyObject *PL_count(PContainer *self, PyObject *value)
{
	Py_ssize_t c = 0, i = 0;
	for (;;) {
		i = find_value(self, value, i, PY_SSIZE_T_MAX);
		if (i == -2)
			return NULL;
		if (i == -1)
			return PyLong_FromSsize_t(c);
		c++;
		i++;
	}
}

static PyObject *PL_clear(PContainer *self, PyObject *unused)
{
	(void)unused;
	if (vpy_fas_enter() < 0)
		return NULL;
	struct plist *l = plist_unwrap((PyObject *)self);
	if (l)
		plist_clear(l);
	if (!vpy_fas_exit(l != NULL))
		return NULL;
	Py_RETURN_NONE;
}

static PyObject *PL_reverse(PContainer *self, PyObject *unused)
{
	(void)unused;
	if (vpy_fas_enter() < 0)
		return NULL;
	struct plist *l = plist_unwrap((PyObject *)self);
	if (l && l->len > 1) {
		for (uint64_t a = 0, b = l->len - 1; a < b; a++, b--) {
			struct pv t = l->items[a];
			l->items[a] = l->items[b];
			l->items[b] = t;
		}
	}
	if (!vpy_fas_exit(l != NULL))
		return NULL;
	Py_RETURN_NONE;
}

static PyObject *PL_copy(PContainer *self, PyObject *unused)
{
	(void)unused;
	PyObject *all = PySlice_New(NULL, NULL, NULL);
	if (!all)
		return NULL;
	PyObject *r = PL_subscript(self, all);
	Py_DECREF(all);
	return r;
}

static PyObject *PL_to_python(PContainer *self, PyObject *unused)
{
	(void)unused;
	SELF_LIST(NULL);
	return plist_to_plain(l);
}

static PyObject *PL_valid(PContainer *self, PyObject *unused)
{
	(void)unused;
	struct plist *l = plist_unwrap((PyObject *)self);
	if (!l)
		PyErr_Clear();
	return PyBool_FromLong(l != NULL);
}

static PyObject *PL_ident(PContainer *self, PyObject *unused)
{
	(void)unused;
	SELF_LIST(NULL);
	return PyLong_FromVoidPtr(l);
}

static PyObject *PL_repr(PContainer *self)
{
	SELF_LIST(NULL);
	int r = Py_ReprEnter((PyObject *)self);
	if (r != 0)
		return r > 0 ? PyUnicode_FromString("[...]") : NULL;
	PyObject *plain = plist_to_plain(l);
	PyObject *s = plain ? PyObject_Repr(plain) : NULL;
	Py_XDECREF(plain);
	Py_ReprLeave((PyObject *)self);
	return s;
}

/* PL_richcompare -- compare by value with lists and persistent lists (all
 * six operators, as list does). */
static PyObject *PL_richcompare(PContainer *self, PyObject *other, int op)
{
	if (!(PyList_Check(other) || vpy_is_plist(other)))
		Py_RETURN_NOTIMPLEMENTED;
	SELF_LIST(NULL);
	PyObject *a = plist_to_plain(l), *b;
	if (!a)
		return NULL;
	if (vpy_is_plist(other)) {
		struct plist *o = plist_unwrap(other);
		b = o ? plist_to_plain(o) : NULL;
	} else {
		b = other;
		Py_INCREF(b);
	}
	PyObject *r = b ? PyObject_RichCompare(a, b, op) : NULL;
	Py_DECREF(a);
	Py_XDECREF(b);
	return r;
}

static PyObject *PL_iter(PContainer *self)
{
	SELF_LIST(NULL);
	return PySeqIter_New((PyObject *)self);
}

static PySequenceMethods PL_sequence = {
	.sq_length = (lenfunc)PL_len,
	.sq_item = (ssizeargfunc)PL_item,
	.sq_contains = (objobjproc)PL_contains,
};

static PyMappingMethods PL_mapping = {
	.mp_length = (lenfunc)PL_len,
	.mp_subscript = (binaryfunc)PL_subscript,
	.mp_ass_subscript = (objobjargproc)PL_ass_subscript,
};

static PyMethodDef PL_methods[] = {
	{"append", (PyCFunction)PL_append, METH_O, "append one item"},
	{"insert", (PyCFunction)(void (*)(void))PL_insert, METH_FASTCALL,
	 "L.insert(index, item)"},
	{"extend", (PyCFunction)PL_extend, METH_O,
	 "append every item of an iterable, one FAS"},
	{"pop", (PyCFunction)(void (*)(void))PL_pop, METH_FASTCALL,
	 "remove and return an item (a plain copy), last by default"},
	{"remove", (PyCFunction)PL_remove, METH_O,
	 "remove the first item equal to value"},
	{"index", (PyCFunction)(void (*)(void))PL_index, METH_FASTCALL,
	 "L.index(value[, start[, stop]])"},
	{"count", (PyCFunction)PL_count, METH_O, "occurrences of value"},
	{"clear", (PyCFunction)PL_clear, METH_NOARGS, "remove all items"},
	{"reverse", (PyCFunction)PL_reverse, METH_NOARGS, "reverse in place"},
	{"copy", (PyCFunction)PL_copy, METH_NOARGS, "a shallow plain list copy"},
	{"to_python", (PyCFunction)PL_to_python, METH_NOARGS,
	 "a deep copy made of plain lists and dicts"},
	{"_valid", (PyCFunction)PL_valid, METH_NOARGS,
	 "whether this object is still alive in the open pool"},
	{"_ident", (PyCFunction)PL_ident, METH_NOARGS,
	 "the heap address (equal for wrappers of one persistent list)"},
	{NULL, NULL, 0, NULL},
};

PyTypeObject PListBase_Type = {
	PyVarObject_HEAD_INIT(NULL, 0)
	.tp_name = VPY_MOD ".PListBase",
	.tp_basicsize = sizeof(PContainer),
	.tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_BASETYPE,
	.tp_doc = "A list stored in the persistent heap (see volipmem.PList).",
	.tp_repr = (reprfunc)PL_repr,
	.tp_as_sequence = &PL_sequence,
	.tp_as_mapping = &PL_mapping,
	.tp_hash = PyObject_HashNotImplemented,
	.tp_richcompare = (richcmpfunc)PL_richcompare,
	.tp_iter = (getiterfunc)PL_iter,
	.tp_methods = PL_methods,
};
