/* SPDX-License-Identifier: MIT */
/*
 * packed.c -- packed values: a plain Python dict or list stored as one
 * blob (PV_PACKED) instead of a tree of persistent containers.
 *
 * A persistent table keeps each TinyDB document packed: TinyDB never hands
 * out live documents (it returns copies), so a document needs no identity
 * of its own, and one blob of ~40 bytes costs a fraction of a pdict (64-byte
 * header, 40-byte entries, an index) plus a plist per nested list: one
 * allocation per insert instead of several, fewer heap pages per commit,
 * and a scan that reads bytes in order instead of chasing pointers. Reading
 * a packed value gives a plain copy; changing it means storing it again.
 *
 * Encoding (little-endian, byte-oriented): a version byte (1), then one
 * value, where a value is a type byte and its payload:
 *   PK_NONE, PK_FALSE, PK_TRUE     nothing
 *   PK_INT    int64 as a zigzag LEB128 varint (1-10 bytes)
 *   PK_FLOAT  8 bytes, IEEE-754 bits
 *   PK_STR    varint length + UTF-8 (lone surrogates kept)
 *   PK_BYTES  varint length + bytes
 *   PK_BIG    varint length + two's complement bytes (an int beyond int64)
 *   PK_DICT   varint count + count (key, value) pairs
 *   PK_LIST   varint count + count values
 * Dict keys are the binding's key types (None, bool, int, float, str,
 * bytes). Anything else (a tuple, a live container, an opt-in pickle) is
 * not packed: vpy_pack returns 1 and the caller stores the value as usual.
 */
#include "vpy.h"

#include <string.h>

enum {
	PK_VERSION = 1,
	PK_NONE = 0, PK_FALSE, PK_TRUE, PK_INT, PK_FLOAT, PK_STR, PK_BYTES,
	PK_BIG, PK_DICT, PK_LIST,
};

/* ---- encoding into a growable PyMem buffer ---- */

struct wbuf {
	unsigned char *p;
	size_t n, cap;
};

static int wb_grow(struct wbuf *b, size_t more)
{
	if (b->n + more <= b->cap)
		return 0;
	size_t cap = b->cap ? b->cap : 64;
	while (cap < b->n + more)
		cap *= 2;
	unsigned char *p = PyMem_Realloc(b->p, cap);
	if (!p) {
		PyErr_NoMemory();
		return -1;
	}
	b->p = p;
	b->cap = cap;
	return 0;
}

static int wb_put(struct wbuf *b, const void *p, size_t n)
{
	if (wb_grow(b, n) < 0)
		return -1;
	memcpy(b->p + b->n, p, n);
	b->n += n;
	return 0;
}

static int wb_byte(struct wbuf *b, unsigned char c)
{
	return wb_put(b, &c, 1);
}

static int wb_varint(struct wbuf *b, uint64_t u)
{
	unsigned char t[10];
	size_t n = 0;
	do {
		t[n] = (unsigned char)(u & 0x7f);
		u >>= 7;
		if (u)
			t[n] |= 0x80;
		n++;
	} while (u);
	return wb_put(b, t, n);
}

static int wb_sized(struct wbuf *b, unsigned char tag, const void *p, size_t n)
{
	if (wb_byte(b, tag) < 0 || wb_varint(b, n) < 0)
		return -1;
	return wb_put(b, p, n);
}

/* Result of pack_value: 0 packed, 1 not packable (no exception), -1 error. */
static int pack_value(struct wbuf *b, PyObject *o, int is_key);

static int pack_str(struct wbuf *b, PyObject *o)
{
	Py_ssize_t n;
	unsigned char *owned = NULL;
	const char *s = vpy_str_utf8(o, &n, &owned);
	int rc = s ? wb_sized(b, PK_STR, s, (size_t)n) : -1;
	PyMem_Free(owned);
	return rc;
}

static int pack_int(struct wbuf *b, PyObject *o)
{
	int ovf = 0;
	long long v = PyLong_AsLongLongAndOverflow(o, &ovf);
	if (v == -1 && PyErr_Occurred())
		return -1;
	if (!ovf) {
		uint64_t z = ((uint64_t)v << 1) ^ (uint64_t)(v >> 63);  /* zigzag */
		return wb_byte(b, PK_INT) < 0 ? -1 : wb_varint(b, z);
	}
	size_t len;
	unsigned char *big = vpy_long_bytes(o, &len);
	int rc = big ? wb_sized(b, PK_BIG, big, len) : -1;
	PyMem_Free(big);
	return rc;
}

/* pack_container -- a list or dict and, recursively, what it holds; 1 if
 * something in it cannot be packed or it changed size while being read. */
static int pack_container(struct wbuf *b, PyObject *o)
{
	int rc = 0;
	if (PyList_Check(o)) {
		Py_ssize_t n = PyList_GET_SIZE(o);
		if (wb_byte(b, PK_LIST) < 0 || wb_varint(b, (uint64_t)n) < 0)
			return -1;
		for (Py_ssize_t i = 0; i < n && rc == 0; i++) {
			if (i >= PyList_GET_SIZE(o))    /* shrunk under us */
				return 1;
			PyObject *it = PyList_GET_ITEM(o, i);
			Py_INCREF(it);
			rc = pack_value(b, it, 0);
			Py_DECREF(it);
		}
		return rc;
	}
	Py_ssize_t n = PyDict_GET_SIZE(o), pos = 0, seen = 0;
	if (wb_byte(b, PK_DICT) < 0 || wb_varint(b, (uint64_t)n) < 0)
		return -1;
	PyObject *k, *v;
	while (rc == 0 && PyDict_Next(o, &pos, &k, &v)) {
		Py_INCREF(k);
		Py_INCREF(v);
		rc = pack_value(b, k, 1);
		if (rc == 0)
			rc = pack_value(b, v, 0);
		Py_DECREF(k);
		Py_DECREF(v);
		seen++;
	}
	/* a key's __eq__ or a str subclass could have changed the dict */
	return rc == 0 && seen != n ? 1 : rc;
}

/* pack_value -- one value (a dict key when is_key: scalars only); 0, 1 if
 * it cannot be packed, -1 with an exception. */
static int pack_value(struct wbuf *b, PyObject *o, int is_key)
{
	if (o == Py_None)
		return wb_byte(b, PK_NONE);
	if (PyBool_Check(o))
		return wb_byte(b, o == Py_True ? PK_TRUE : PK_FALSE);
	if (PyLong_Check(o))
		return pack_int(b, o);
	if (PyFloat_Check(o)) {
		double f = PyFloat_AS_DOUBLE(o);
		unsigned char t[8];
		uint64_t u;
		memcpy(&u, &f, 8);
		for (int i = 0; i < 8; i++)
			t[i] = (unsigned char)(u >> (8 * i));
		return wb_byte(b, PK_FLOAT) < 0 ? -1 : wb_put(b, t, 8);
	}
	if (PyUnicode_Check(o))
		return pack_str(b, o);
	if (PyBytes_Check(o))
		return wb_sized(b, PK_BYTES, PyBytes_AS_STRING(o),
				(size_t)PyBytes_GET_SIZE(o));
	if (is_key)
		return 1;
	/* plain dicts (and subclasses that iterate as dict does, such as
	 * TinyDB's Document) and lists; anything else goes the usual way */
	int is_dict = PyDict_Check(o) && Py_TYPE(o)->tp_iter == PyDict_Type.tp_iter;
	if (!is_dict && !PyList_Check(o))
		return 1;
	if (Py_EnterRecursiveCall(" while packing a persistent value"))
		return -1;
	int rc = pack_container(b, o);
	Py_LeaveRecursiveCall();
	return rc;
}

/* vpy_pack -- o packed into a new heap blob in *out (PV_PACKED). 0 done;
 * 1 when o (or something in it) cannot be packed, *out untouched and no
 * exception set; -1 with an exception. Must run inside a FAS. */
int vpy_pack(PyObject *o, struct pv *out)
{
	struct wbuf b = {0};
	int rc = wb_byte(&b, PK_VERSION);
	if (rc == 0)
		rc = pack_value(&b, o, 0);
	if (rc == 0) {
		struct pblob *blob = pmalloc(sizeof *blob + b.n);
		if (!blob) {
			PyErr_NoMemory();
			rc = -1;
		} else {
			blob->len = b.n;
			memcpy(blob->data, b.p, b.n);
			memset(out, 0, sizeof *out);
			out->tag = PV_PACKED;
			out->u = (uint64_t)(uintptr_t)blob;
		}
	}
	PyMem_Free(b.p);
	return rc;
}

/* ---- decoding ---- */

struct rbuf {
	const unsigned char *p;
	size_t n, off;
};

static PyObject *corrupt(const struct rbuf *r)
{
	PyErr_Format(vpy_Error, "corrupt packed value (%zu bytes, at offset %zu)",
		     r->n, r->off);
	return NULL;
}

/* rb_varint -- a LEB128 varint of at most 64 bits. */
static int rb_varint(struct rbuf *r, uint64_t *u)
{
	uint64_t v = 0;
	for (unsigned shift = 0; shift < 64 && r->off < r->n; shift += 7) {
		unsigned char c = r->p[r->off++];
		v |= (uint64_t)(c & 0x7f) << shift;
		if (!(c & 0x80)) {
			*u = v;
			return 0;
		}
	}
	corrupt(r);
	return -1;
}

/* rb_span -- a varint length and that many bytes. */
static const unsigned char *rb_span(struct rbuf *r, size_t *len)
{
	uint64_t n;
	if (rb_varint(r, &n) < 0)
		return NULL;
	if (n > r->n - r->off) {
		corrupt(r);
		return NULL;
	}
	const unsigned char *p = r->p + r->off;
	r->off += (size_t)n;
	*len = (size_t)n;
	return p;
}

static PyObject *unpack_value(struct rbuf *r);

/* unpack_into -- the entries of a PK_DICT (type byte already read) into
 * the dict `d`; 0 or -1. */
static int unpack_into(struct rbuf *r, PyObject *d)
{
	uint64_t n;
	if (rb_varint(r, &n) < 0)
		return -1;
	for (uint64_t i = 0; i < n; i++) {
		PyObject *k = unpack_value(r);
		PyObject *v = k ? unpack_value(r) : NULL;
		int rc = v ? PyDict_SetItem(d, k, v) : -1;
		Py_XDECREF(k);
		Py_XDECREF(v);
		if (rc < 0)
			return -1;
	}
	return 0;
}

/* unpack_container -- a PK_DICT or PK_LIST (type byte `t` already read). */
static PyObject *unpack_container(struct rbuf *r, unsigned char t)
{
	if (t == PK_DICT) {
		PyObject *d = PyDict_New();
		if (d && unpack_into(r, d) < 0)
			Py_CLEAR(d);
		return d;
	}
	uint64_t n;
	if (rb_varint(r, &n) < 0)
		return NULL;
	if (n > r->n - r->off)        /* every item takes at least a byte */
		return corrupt(r);
	PyObject *l = PyList_New((Py_ssize_t)n);
	for (uint64_t i = 0; l && i < n; i++) {
		PyObject *v = unpack_value(r);
		if (!v)
			Py_CLEAR(l);
		else
			PyList_SET_ITEM(l, (Py_ssize_t)i, v);
	}
	return l;
}

/* unpack_value -- the value at r->off as a new Python object; every read
 * is bounds-checked, so a damaged blob gives volipmem.Error, never a read
 * past its end. */
static PyObject *unpack_value(struct rbuf *r)
{
	if (r->off >= r->n)
		return corrupt(r);
	unsigned char t = r->p[r->off++];
	size_t len;
	const unsigned char *s;
	switch (t) {
	case PK_NONE:
		Py_RETURN_NONE;
	case PK_FALSE:
		Py_RETURN_FALSE;
	case PK_TRUE:
		Py_RETURN_TRUE;
	case PK_INT: {
		uint64_t z;
		if (rb_varint(r, &z) < 0)
			return NULL;
		return PyLong_FromLongLong((long long)((z >> 1) ^ (0 - (z & 1))));
	}
	case PK_FLOAT: {
		if (r->n - r->off < 8)
			return corrupt(r);
		uint64_t u = 0;
		for (int i = 0; i < 8; i++)
			u |= (uint64_t)r->p[r->off + (size_t)i] << (8 * i);
		r->off += 8;
		double f;
		memcpy(&f, &u, 8);
		return PyFloat_FromDouble(f);
	}
	case PK_STR:
		if (!(s = rb_span(r, &len)))
			return NULL;
		return PyUnicode_DecodeUTF8((const char *)s, (Py_ssize_t)len,
					    "surrogatepass");
	case PK_BYTES:
		if (!(s = rb_span(r, &len)))
			return NULL;
		return PyBytes_FromStringAndSize((const char *)s, (Py_ssize_t)len);
	case PK_BIG:
		if (!(s = rb_span(r, &len)))
			return NULL;
		return _PyLong_FromByteArray(s, len, 1, 1);
	case PK_DICT:
	case PK_LIST: {
		if (Py_EnterRecursiveCall(" while reading a packed value"))
			return NULL;
		PyObject *o = unpack_container(r, t);
		Py_LeaveRecursiveCall();
		return o;
	}
	default:
		r->off--;
		return corrupt(r);
	}
}

/* vpy_unpack -- a plain Python copy of a packed blob. */
PyObject *vpy_unpack(const struct pblob *b)
{
	struct rbuf r = {b->data, b->len, 1};
	if (b->len < 1 || b->data[0] != PK_VERSION) {
		r.off = 0;
		return corrupt(&r);
	}
	PyObject *o = unpack_value(&r);
	if (o && r.off != r.n) {
		Py_DECREF(o);
		return corrupt(&r);
	}
	return o;
}

/* vpy_unpack_into -- the entries of a packed dict into the (empty) dict
 * `d`, e.g. a new TinyDB Document: no intermediate dict. 0 or -1; a
 * packed value that is not a dict is a TypeError. */
int vpy_unpack_into(const struct pblob *b, PyObject *d)
{
	struct rbuf r = {b->data, b->len, 1};
	if (b->len < 2 || b->data[0] != PK_VERSION) {
		r.off = 0;
		corrupt(&r);
		return -1;
	}
	if (b->data[1] != PK_DICT) {
		PyErr_SetString(PyExc_TypeError, "a document is not a dict");
		return -1;
	}
	r.off = 2;
	if (unpack_into(&r, d) < 0)
		return -1;
	if (r.off != r.n) {
		corrupt(&r);
		return -1;
	}
	return 0;
}
