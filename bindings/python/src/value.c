/* SPDX-License-Identifier: MIT */
/*
 * value.c -- conversion between Python objects and persistent values, and
 * the stable hash of dict keys.
 *
 * Python randomises hash(str) per process, so the hash stored in a
 * persistent dict entry is our own: FNV-1a (64-bit) over a canonical form of
 * the key, finished with the fmix64 finaliser of MurmurHash3 so that the
 * low bits used by the index are well mixed. Keys that compare equal in
 * Python have one canonical form: 1, 1.0 and True are all K_INT 1; an
 * integral float beyond int64 has the same big-integer bytes as the int it
 * equals; only non-integral (or non-finite) floats are K_FLOAT.
 */
#include "vpy.h"

#include <math.h>
#include <string.h>

static PyObject *pickle_dumps, *pickle_loads, *abc_mapping;

/* ---- hashing ---- */

#define FNV_OFFSET 0xcbf29ce484222325ull
#define FNV_PRIME 0x100000001b3ull
#define VPY_HASH_KEY 0x766f6c69706d656dull /* fixed key, "volipmem" */

static uint64_t fnv(uint64_t h, const void *p, size_t n)
{
	const unsigned char *b = p;
	for (size_t i = 0; i < n; i++) {
		h ^= b[i];
		h *= FNV_PRIME;
	}
	return h;
}

/* fmix64 -- MurmurHash3's 64-bit finaliser (public domain algorithm). */
static uint64_t fmix64(uint64_t k)
{
	k ^= k >> 33;
	k *= 0xff51afd7ed558ccdull;
	k ^= k >> 33;
	k *= 0xc4ceb9fe1a85ec53ull;
	k ^= k >> 33;
	return k;
}

/* pkey_hash -- the stable hash of a canonical key. */
static void pkey_hash(struct pkey *k)
{
	uint64_t h = FNV_OFFSET ^ VPY_HASH_KEY;
	unsigned char c = (unsigned char)k->cls;
	h = fnv(h, &c, 1);
	switch (k->cls) {
	case K_INT: {
		unsigned char b[8];
		uint64_t u = (uint64_t)k->i;
		for (int i = 0; i < 8; i++)
			b[i] = (unsigned char)(u >> (8 * i));
		h = fnv(h, b, 8);
		break;
	}
	case K_FLOAT: {
		uint64_t u;
		memcpy(&u, &k->f, 8);
		unsigned char b[8];
		for (int i = 0; i < 8; i++)
			b[i] = (unsigned char)(u >> (8 * i));
		h = fnv(h, b, 8);
		break;
	}
	case K_BIG:
	case K_STR:
	case K_BYTES:
		h = fnv(h, k->p, k->n);
		break;
	default:
		break;
	}
	k->hash = fmix64(h);
}

/* vpy_long_bytes -- canonical signed little-endian bytes of a Python int
 * (length depends on the value only). Returns a PyMem buffer or NULL. */
unsigned char *vpy_long_bytes(PyObject *o, size_t *n)
{
	size_t bits = _PyLong_NumBits(o);
	if (bits == (size_t)-1 && PyErr_Occurred())
		return NULL;
	size_t len = bits / 8 + 1;
	unsigned char *buf = PyMem_Malloc(len);
	if (!buf) {
		PyErr_NoMemory();
		return NULL;
	}
	if (_PyLong_AsByteArray((PyLongObject *)o, buf, len, 1, 1) < 0) {
		PyMem_Free(buf);
		return NULL;
	}
	*n = len;
	return buf;
}

/* key_from_double -- canonical form of a float key. */
static int key_from_double(double f, struct pkey *k)
{
	if (isfinite(f) && floor(f) == f) {
		if (f >= -9223372036854775808.0 && f < 9223372036854775808.0) {
			k->cls = K_INT;
			k->i = (int64_t)f;
			return 0;
		}
		PyObject *l = PyLong_FromDouble(f);
		if (!l)
			return -1;
		k->owned = vpy_long_bytes(l, &k->n);
		Py_DECREF(l);
		if (!k->owned)
			return -1;
		k->cls = K_BIG;
		k->p = k->owned;
		return 0;
	}
	k->cls = K_FLOAT;
	k->f = f;
	return 0;
}

/* vpy_str_utf8 -- UTF-8 of a str, lone surrogates kept (surrogatepass). Sets
 * *owned to a PyMem buffer when a copy was needed. */
const char *vpy_str_utf8(PyObject *o, Py_ssize_t *n, unsigned char **owned)
{
	const char *s = PyUnicode_AsUTF8AndSize(o, n);
	if (s)
		return s;
	if (!PyErr_ExceptionMatches(PyExc_UnicodeEncodeError))
		return NULL;
	PyErr_Clear();
	PyObject *b = PyUnicode_AsEncodedString(o, "utf-8", "surrogatepass");
	if (!b)
		return NULL;
	*n = PyBytes_GET_SIZE(b);
	*owned = PyMem_Malloc(*n ? (size_t)*n : 1);
	if (!*owned) {
		Py_DECREF(b);
		PyErr_NoMemory();
		return NULL;
	}
	memcpy(*owned, PyBytes_AS_STRING(b), (size_t)*n);
	Py_DECREF(b);
	return (const char *)*owned;
}

/* pkey_from_py -- canonical form and hash of a Python key. Only None,
 * bool, int, float, str and bytes are keys; anything else is a TypeError. */
int pkey_from_py(PyObject *o, struct pkey *k)
{
	memset(k, 0, sizeof *k);
	if (o == Py_None) {
		k->cls = K_NONE;
	} else if (PyLong_Check(o)) {     /* bool included */
		int ovf = 0;
		long long v = PyLong_AsLongLongAndOverflow(o, &ovf);
		if (v == -1 && PyErr_Occurred())
			return -1;
		if (ovf) {
			k->owned = vpy_long_bytes(o, &k->n);
			if (!k->owned)
				return -1;
			k->cls = K_BIG;
			k->p = k->owned;
		} else {
			k->cls = K_INT;
			k->i = v;
		}
	} else if (PyFloat_Check(o)) {
		if (key_from_double(PyFloat_AS_DOUBLE(o), k) < 0)
			return -1;
	} else if (PyUnicode_Check(o)) {
		Py_ssize_t n;
		const char *s = vpy_str_utf8(o, &n, &k->owned);
		if (!s)
			return -1;
		k->cls = K_STR;
		k->p = (const unsigned char *)s;
		k->n = (size_t)n;
	} else if (PyBytes_Check(o)) {
		k->cls = K_BYTES;
		k->p = (const unsigned char *)PyBytes_AS_STRING(o);
		k->n = (size_t)PyBytes_GET_SIZE(o);
	} else {
		if (PyObject_Hash(o) == -1)
			return -1;      /* "unhashable type: 'list'" */
		PyErr_Format(PyExc_TypeError,
			     "volipmem dict keys must be None, bool, int, float, "
			     "str or bytes, not '%.200s'", Py_TYPE(o)->tp_name);
		return -1;
	}
	pkey_hash(k);
	return 0;
}

/* pkey_canon_pv -- canonical form of a stored key, without its hash (no
 * Python object is created except for an integral float beyond int64). */
int pkey_canon_pv(const struct pv *v, struct pkey *k)
{
	memset(k, 0, sizeof *k);
	switch (v->tag) {
	case PV_NONE:
		k->cls = K_NONE;
		break;
	case PV_BOOL:
		k->cls = K_INT;
		k->i = v->u ? 1 : 0;
		break;
	case PV_INT:
		k->cls = K_INT;
		k->i = (int64_t)v->u;
		break;
	case PV_FLOAT: {
		double f;
		memcpy(&f, &v->u, 8);
		if (key_from_double(f, k) < 0)
			return -1;
		break;
	}
	case PV_BIGINT:
	case PV_STR:
	case PV_BYTES: {
		const struct pblob *b = (const struct pblob *)(uintptr_t)v->u;
		k->cls = v->tag == PV_BIGINT ? K_BIG :
			 v->tag == PV_STR ? K_STR : K_BYTES;
		k->p = b->data;
		k->n = b->len;
		break;
	}
	case PV_SSTR:
	case PV_SBYTES:
		k->cls = v->tag == PV_SSTR ? K_STR : K_BYTES;
		k->p = (const unsigned char *)&v->u;
		k->n = v->pad;
		break;
	default:
		PyErr_SetString(vpy_Error, "corrupt persistent dict key");
		return -1;
	}
	return 0;
}

/* pkey_from_pv -- canonical form and hash of a stored key. */
int pkey_from_pv(const struct pv *v, struct pkey *k)
{
	if (pkey_canon_pv(v, k) < 0)
		return -1;
	pkey_hash(k);
	return 0;
}

void pkey_release(struct pkey *k)
{
	if (k->owned)
		PyMem_Free(k->owned);
	k->owned = NULL;
}

/* pkey_eq -- Python equality of two canonical keys (NaN != NaN); the
 * hashes are not compared. */
bool pkey_eq(const struct pkey *a, const struct pkey *b)
{
	if (a->cls != b->cls)
		return false;
	switch (a->cls) {
	case K_NONE:
		return true;
	case K_INT:
		return a->i == b->i;
	case K_FLOAT:
		return a->f == b->f;
	default:
		return a->n == b->n && memcmp(a->p, b->p, a->n) == 0;
	}
}

/* ---- Python -> heap ---- */

/* blob_new -- a pblob holding n bytes of p. */
static struct pblob *blob_new(const void *p, size_t n)
{
	struct pblob *b = pmalloc(sizeof *b + (n ? n : 1));
	if (!b) {
		PyErr_NoMemory();
		return NULL;
	}
	b->len = n;
	if (n)
		memcpy(b->data, p, n);
	return b;
}

/* set_blob -- a str/bytes/bigint/pickle value; str and bytes of at most 8
 * bytes are stored inline in the slot (no allocation: short dict keys and
 * values are the common case). */
static int set_blob(struct pv *out, uint32_t tag, const void *p, size_t n)
{
	if ((tag == PV_STR || tag == PV_BYTES) && n <= sizeof out->u) {
		out->tag = tag == PV_STR ? PV_SSTR : PV_SBYTES;
		out->pad = (uint32_t)n;
		out->u = 0;
		if (n)
			memcpy(&out->u, p, n);
		return 0;
	}
	struct pblob *b = blob_new(p, n);
	if (!b)
		return -1;
	out->tag = tag;
	out->u = (uint64_t)(uintptr_t)b;
	return 0;
}

static int load_helpers(void)
{
	if (abc_mapping)
		return 0;
	PyObject *m = PyImport_ImportModule("collections.abc");
	if (!m)
		return -1;
	abc_mapping = PyObject_GetAttrString(m, "Mapping");
	Py_DECREF(m);
	return abc_mapping ? 0 : -1;
}

/* dict_from_items -- a new pdict from a sequence of (key, value) pairs. */
static int dict_from_items(PyObject *items, struct pv *out)
{
	PyObject *seq = PySequence_Fast(items, "items() must be iterable");
	if (!seq)
		return -1;
	struct pdict *d = pdict_new();
	if (!d) {
		Py_DECREF(seq);
		return -1;
	}
	Py_ssize_t n = PySequence_Fast_GET_SIZE(seq);
	for (Py_ssize_t i = 0; i < n; i++) {
		PyObject *kv = PySequence_Fast_GET_ITEM(seq, i);
		if (!PyTuple_Check(kv) || PyTuple_GET_SIZE(kv) != 2) {
			PyErr_SetString(PyExc_TypeError, "items() must yield pairs");
			goto fail;
		}
		struct pv val;
		if (pv_from_py(PyTuple_GET_ITEM(kv, 1), &val) < 0)
			goto fail;
		if (pdict_set_pv(d, PyTuple_GET_ITEM(kv, 0), &val) < 0)
			goto fail;
	}
	Py_DECREF(seq);
	out->tag = PV_DICT;
	out->u = (uint64_t)(uintptr_t)d;
	return 0;
fail:
	Py_DECREF(seq);
	pdict_free(d);
	return -1;
}

/* from_pydict -- a new pdict with a deep copy of a Python dict. */
static int from_pydict(PyObject *o, struct pv *out)
{
	struct pdict *d = pdict_new();
	if (!d)
		return -1;
	Py_ssize_t pos = 0;
	PyObject *k, *v;
	while (PyDict_Next(o, &pos, &k, &v)) {
		Py_INCREF(k);
		Py_INCREF(v);
		struct pv val;
		int rc = pv_from_py(v, &val);
		if (rc == 0)
			rc = pdict_set_pv(d, k, &val);
		Py_DECREF(k);
		Py_DECREF(v);
		if (rc < 0) {
			pdict_free(d);
			return -1;
		}
	}
	out->tag = PV_DICT;
	out->u = (uint64_t)(uintptr_t)d;
	return 0;
}

/* from_pylist -- a new plist with a deep copy of a Python list. */
static int from_pylist(PyObject *o, struct pv *out)
{
	struct plist *l = plist_new();
	if (!l)
		return -1;
	Py_ssize_t n = PyList_GET_SIZE(o);
	if (n > 0 && plist_reserve(l, (uint64_t)n) < 0) {
		plist_free(l);
		return -1;
	}
	for (Py_ssize_t i = 0; i < n && i < PyList_GET_SIZE(o); i++) {
		PyObject *it = PyList_GET_ITEM(o, i);
		Py_INCREF(it);
		int rc = pv_from_py(it, &l->items[i]);
		Py_DECREF(it);
		if (rc < 0) {
			plist_free(l);
			return -1;
		}
		l->len = (uint64_t)i + 1;
	}
	out->tag = PV_LIST;
	out->u = (uint64_t)(uintptr_t)l;
	return 0;
}

static int from_other(PyObject *o, struct pv *out)
{
	if (load_helpers() < 0)
		return -1;
	int r = PyObject_IsInstance(o, abc_mapping);
	if (r < 0)
		return -1;
	if (r) {
		PyObject *items = PyMapping_Items(o);
		if (!items)
			return -1;
		int rc = dict_from_items(items, out);
		Py_DECREF(items);
		return rc;
	}
	if (!vpy_pickle) {
		PyErr_Format(PyExc_TypeError,
			     "volipmem cannot store objects of type '%.200s' "
			     "(only None, bool, int, float, str, bytes, dict and "
			     "list; open the pool with pickle=True to pickle "
			     "other types)", Py_TYPE(o)->tp_name);
		return -1;
	}
	if (!pickle_dumps) {
		PyObject *m = PyImport_ImportModule("pickle");
		if (!m)
			return -1;
		pickle_dumps = PyObject_GetAttrString(m, "dumps");
		pickle_loads = PyObject_GetAttrString(m, "loads");
		Py_DECREF(m);
		if (!pickle_dumps || !pickle_loads)
			return -1;
	}
	PyObject *b = PyObject_CallFunction(pickle_dumps, "Oi", o, 4);
	if (!b)
		return -1;
	int rc = set_blob(out, PV_PICKLE, PyBytes_AS_STRING(b),
			  (size_t)PyBytes_GET_SIZE(b));
	Py_DECREF(b);
	return rc;
}

/* pv_from_py -- a deep copy of o in the heap. Must run inside a FAS. On
 * failure nothing stays allocated and *out is None. */
int pv_from_py(PyObject *o, struct pv *out)
{
	memset(out, 0, sizeof *out);
	if (o == Py_None)
		return 0;
	if (PyBool_Check(o)) {
		out->tag = PV_BOOL;
		out->u = o == Py_True;
		return 0;
	}
	if (PyLong_Check(o)) {
		int ovf = 0;
		long long v = PyLong_AsLongLongAndOverflow(o, &ovf);
		if (v == -1 && PyErr_Occurred())
			return -1;
		if (!ovf) {
			out->tag = PV_INT;
			out->u = (uint64_t)v;
			return 0;
		}
		size_t n;
		unsigned char *b = vpy_long_bytes(o, &n);
		if (!b)
			return -1;
		int rc = set_blob(out, PV_BIGINT, b, n);
		PyMem_Free(b);
		return rc;
	}
	if (PyFloat_Check(o)) {
		double f = PyFloat_AS_DOUBLE(o);
		out->tag = PV_FLOAT;
		memcpy(&out->u, &f, 8);
		return 0;
	}
	if (PyUnicode_Check(o)) {
		Py_ssize_t n;
		unsigned char *owned = NULL;
		const char *s = vpy_str_utf8(o, &n, &owned);
		if (!s)
			return -1;
		int rc = set_blob(out, PV_STR, s, (size_t)n);
		if (owned)
			PyMem_Free(owned);
		return rc;
	}
	if (PyBytes_Check(o))
		return set_blob(out, PV_BYTES, PyBytes_AS_STRING(o),
				(size_t)PyBytes_GET_SIZE(o));

	int rc;
	if (Py_EnterRecursiveCall(" while storing a persistent value"))
		return -1;
	if (vpy_is_pdict(o)) {
		struct pdict *d = pdict_unwrap(o), *c;
		rc = d ? pdict_copy(d, &c) : -1;
		if (rc == 0) {
			out->tag = PV_DICT;
			out->u = (uint64_t)(uintptr_t)c;
		}
	} else if (vpy_is_plist(o)) {
		struct plist *l = plist_unwrap(o), *c;
		rc = l ? plist_copy(l, &c) : -1;
		if (rc == 0) {
			out->tag = PV_LIST;
			out->u = (uint64_t)(uintptr_t)c;
		}
	} else if (PyDict_Check(o) && Py_TYPE(o)->tp_iter == PyDict_Type.tp_iter) {
		/* a dict, or a subclass that keeps dict's order (OrderedDict
		 * does not: it goes through items() below) */
		rc = from_pydict(o, out);
	} else if (PyList_Check(o)) {
		rc = from_pylist(o, out);
	} else {
		rc = from_other(o, out);
	}
	Py_LeaveRecursiveCall();
	if (rc < 0)
		memset(out, 0, sizeof *out);
	return rc;
}

/* pv_copy -- a deep copy of a persistent value (for copy semantics when a
 * live persistent object is assigned elsewhere). */
int pv_copy(const struct pv *src, struct pv *dst)
{
	memset(dst, 0, sizeof *dst);
	switch (src->tag) {
	case PV_STR:
	case PV_BYTES:
	case PV_BIGINT:
	case PV_PICKLE:
	case PV_PACKED: {
		const struct pblob *b = (const struct pblob *)(uintptr_t)src->u;
		return set_blob(dst, src->tag, b->data, b->len);
	}
	case PV_DICT: {
		struct pdict *c;
		if (pdict_copy((const struct pdict *)(uintptr_t)src->u, &c) < 0)
			return -1;
		dst->tag = PV_DICT;
		dst->u = (uint64_t)(uintptr_t)c;
		return 0;
	}
	case PV_LIST: {
		struct plist *c;
		if (plist_copy((const struct plist *)(uintptr_t)src->u, &c) < 0)
			return -1;
		dst->tag = PV_LIST;
		dst->u = (uint64_t)(uintptr_t)c;
		return 0;
	}
	default:
		*dst = *src;
		return 0;
	}
}

/* pv_free -- free what a value owns in the heap and make it None. Must run
 * inside a FAS. */
void pv_free(struct pv *v)
{
	switch (v->tag) {
	case PV_STR:
	case PV_BYTES:
	case PV_BIGINT:
	case PV_PICKLE:
	case PV_PACKED:
		pfree((void *)(uintptr_t)v->u);
		break;
	case PV_DICT:
		pdict_free((struct pdict *)(uintptr_t)v->u);
		break;
	case PV_LIST:
		plist_free((struct plist *)(uintptr_t)v->u);
		break;
	default:
		break;
	}
	memset(v, 0, sizeof *v);
}

/* ---- heap -> Python ---- */

static PyObject *scalar_to_py(const struct pv *v)
{
	const struct pblob *b = (const struct pblob *)(uintptr_t)v->u;
	switch (v->tag) {
	case PV_NONE:
		Py_RETURN_NONE;
	case PV_BOOL:
		return PyBool_FromLong(v->u != 0);
	case PV_INT:
		return PyLong_FromLongLong((long long)v->u);
	case PV_FLOAT: {
		double f;
		memcpy(&f, &v->u, 8);
		return PyFloat_FromDouble(f);
	}
	case PV_STR:
		return PyUnicode_DecodeUTF8((const char *)b->data,
					    (Py_ssize_t)b->len, "surrogatepass");
	case PV_BYTES:
		return PyBytes_FromStringAndSize((const char *)b->data,
						 (Py_ssize_t)b->len);
	case PV_SSTR:
		return PyUnicode_DecodeUTF8((const char *)&v->u,
					    (Py_ssize_t)v->pad, "surrogatepass");
	case PV_SBYTES:
		return PyBytes_FromStringAndSize((const char *)&v->u,
						 (Py_ssize_t)v->pad);
	case PV_BIGINT:
		return _PyLong_FromByteArray(b->data, b->len, 1, 1);
	case PV_PACKED:      /* a plain copy: packed values are not live */
		return vpy_unpack(b);
	case PV_PICKLE: {
		if (!pickle_loads) {
			PyObject *m = PyImport_ImportModule("pickle");
			if (!m)
				return NULL;
			pickle_dumps = PyObject_GetAttrString(m, "dumps");
			pickle_loads = PyObject_GetAttrString(m, "loads");
			Py_DECREF(m);
			if (!pickle_dumps || !pickle_loads)
				return NULL;
		}
		PyObject *bytes = PyBytes_FromStringAndSize(
			(const char *)b->data, (Py_ssize_t)b->len);
		if (!bytes)
			return NULL;
		PyObject *r = PyObject_CallOneArg(pickle_loads, bytes);
		Py_DECREF(bytes);
		return r;
	}
	default:
		PyErr_Format(vpy_Error, "corrupt persistent value (tag %u)",
			     (unsigned)v->tag);
		return NULL;
	}
}

/* pv_to_py -- the Python view of a value: scalars are copied, dicts and
 * lists come back as live wrappers that write through. */
PyObject *pv_to_py(const struct pv *v)
{
	if (v->tag == PV_DICT)
		return pdict_wrap((struct pdict *)(uintptr_t)v->u);
	if (v->tag == PV_LIST)
		return plist_wrap((struct plist *)(uintptr_t)v->u);
	return scalar_to_py(v);
}

/* pv_to_plain -- a deep copy made of plain Python dicts and lists. */
PyObject *pv_to_plain(const struct pv *v)
{
	if (v->tag == PV_DICT || v->tag == PV_LIST) {
		if (Py_EnterRecursiveCall(" while reading a persistent value"))
			return NULL;
		PyObject *r = v->tag == PV_DICT ?
			pdict_to_plain((struct pdict *)(uintptr_t)v->u) :
			plist_to_plain((struct plist *)(uintptr_t)v->u);
		Py_LeaveRecursiveCall();
		return r;
	}
	return scalar_to_py(v);
}
