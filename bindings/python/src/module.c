/* SPDX-License-Identifier: MIT */
/*
 * module.c -- the `volipmem._volipmem` extension module: opening and
 * closing the pool, the persistent root, failure-atomic sections and
 * commits. The Python package `volipmem` (volipmem/__init__.py) wraps these
 * functions in a Pool class and module-level shortcuts.
 *
 * FAS discipline: each mutating method of a persistent container calls
 * vpy_fas_enter() before it touches the heap and vpy_fas_exit() after. A
 * per-thread depth counter makes the inner calls free when the user is
 * already inside pool.fas(); only the outermost pair calls pstart()/pend(),
 * with the GIL released. Releasing the GIL around pstart() matters as much
 * as around pend(): pstart() blocks while a commit waits for quiescence,
 * and the thread that must leave its FAS for that commit to run may need
 * the GIL to do so (the DEADLOCK RULE of volipmem.h).
 */
#include "vpy.h"

#include <errno.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#define ROOT_NAME "python-root"

uint64_t vpy_gen;
bool vpy_open;
bool vpy_pickle;
PyObject *vpy_Error;
PyTypeObject *vpy_dict_type = &PDictBase_Type;
PyTypeObject *vpy_list_type = &PListBase_Type;

static struct pyroot *root;
static _Thread_local long tls_depth;  /* this thread's FAS nesting */
static long fas_threads;              /* threads inside a FAS (GIL held) */
static uint64_t id_seed, id_next;

/* splitmix64 -- a bijective mixer (Steele, Lea, Flood 2014); identities
 * are mix(seed + counter): unique within a process, and unlikely to meet
 * an identity made by an earlier process. */
static uint64_t splitmix64(uint64_t x)
{
	x += 0x9e3779b97f4a7c15ull;
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
	x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
	return x ^ (x >> 31);
}

uint64_t vpy_new_id(void)
{
	uint64_t id = splitmix64(id_seed + id_next++);
	return id ? id : 1;
}

/* vpy_raise -- raise volipmem.Error for a library code, with its detail. */
PyObject *vpy_raise(int code, const char *what)
{
	const char *detail = vp_errormsg();
	PyObject *msg = PyUnicode_FromFormat("%s: %s%s%s", what,
					     vp_strerror(code),
					     detail && *detail ? ": " : "",
					     detail ? detail : "");
	if (!msg)
		return NULL;
	PyObject *exc = PyObject_CallOneArg(vpy_Error, msg);
	Py_DECREF(msg);
	if (!exc)
		return NULL;
	PyObject *c = PyLong_FromLong(code);
	if (c) {
		PyObject_SetAttrString(exc, "code", c);
		Py_DECREF(c);
	}
	PyErr_SetObject(vpy_Error, exc);
	Py_DECREF(exc);
	return NULL;
}

int vpy_check_open(void)
{
	if (!vpy_open) {
		PyErr_SetString(vpy_Error, "no pool is open (volipmem.open first)");
		return -1;
	}
	return 0;
}

int vpy_fas_enter(void)
{
	if (vpy_check_open() < 0)
		return -1;
	if (tls_depth++ > 0)
		return 0;
	fas_threads++;
	Py_BEGIN_ALLOW_THREADS
	pstart();
	Py_END_ALLOW_THREADS
	return 0;
}

/* vpy_fas_exit -- leave a FAS; returns ok, or 0 with volipmem.Error when
 * ok was 1 and the outermost pend() failed. */
int vpy_fas_exit(int ok)
{
	if (--tls_depth > 0)
		return ok;
	int rc;
	Py_BEGIN_ALLOW_THREADS
	rc = pend();
	Py_END_ALLOW_THREADS
	fas_threads--;
	if (rc < 0 && ok) {
		vpy_raise(rc, "commit failed");
		return 0;
	}
	return ok;
}

/* ---- module functions ---- */

static PyObject *m_open(PyObject *mod, PyObject *args, PyObject *kw)
{
	(void)mod;
	static char *kwlist[] = {"path", "size", "flags", "pickle", NULL};
	PyObject *pathobj;
	unsigned long long size = 64ull << 20;
	unsigned int flags = 0;
	int pickle = 0;
	if (!PyArg_ParseTupleAndKeywords(args, kw, "O&|KIp", kwlist,
					 PyUnicode_FSConverter, &pathobj,
					 &size, &flags, &pickle))
		return NULL;
	if (vpy_open) {
		Py_DECREF(pathobj);
		PyErr_SetString(vpy_Error, "a pool is already open (one pool per "
				"process: close it first)");
		return NULL;
	}
	int rc;
	const char *path = PyBytes_AS_STRING(pathobj);
	Py_BEGIN_ALLOW_THREADS
	rc = pmap(path, (size_t)size, flags);
	Py_END_ALLOW_THREADS
	Py_DECREF(pathobj);
	if (rc < 0)
		return vpy_raise(rc, "cannot open the pool");

	bool created = false;
	struct pyroot *r = proot(ROOT_NAME, sizeof *r, &created);
	if (!r) {
		punmap();
		PyErr_Format(vpy_Error, "cannot get the root '%s': %s", ROOT_NAME,
			     vp_errormsg());
		return NULL;
	}
	if (!created && r->magic != PYROOT_MAGIC && r->magic != 0) {
		punmap();
		PyErr_Format(vpy_Error, "root '%s' is not a volipmem Python root",
			     ROOT_NAME);
		return NULL;
	}
	if (!created && r->magic == PYROOT_MAGIC && r->layout > VPY_LAYOUT) {
		unsigned long long layout = (unsigned long long)r->layout;
		punmap();
		PyErr_Format(vpy_Error, "root '%s' has layout %llu; this volipmem "
			     "reads layouts up to %d (a newer version wrote it)",
			     ROOT_NAME, layout, VPY_LAYOUT);
		return NULL;
	}
	if (getrandom(&id_seed, sizeof id_seed, 0) != sizeof id_seed)
		id_seed = (uint64_t)time(NULL) ^ ((uint64_t)getpid() << 32);
	id_next = 0;
	root = r;
	vpy_open = true;
	vpy_gen++;
	vpy_pickle = pickle != 0;
	if (!root->dict) {
		/* A crash between proot() and this FAS leaves a root without a
		 * dict: make it here, atomically with the magic. */
		if (vpy_fas_enter() < 0)
			return NULL;
		root->magic = PYROOT_MAGIC;
		root->layout = VPY_LAYOUT;
		root->dict = pdict_new();
		if (!vpy_fas_exit(root->dict != NULL)) {
			vpy_open = false;
			punmap();
			return NULL;
		}
	}
	Py_RETURN_NONE;
}

/* vpy_note_packed -- a packed value is being stored (inside the caller's
 * FAS): a pool of layout 1 becomes layout 2, which code that predates
 * packed values does not read. */
void vpy_note_packed(void)
{
	if (root && root->layout < 2)
		root->layout = 2;
}

static PyObject *m_close(PyObject *mod, PyObject *unused)
{
	(void)mod;
	(void)unused;
	if (!vpy_open)
		Py_RETURN_NONE;
	if (fas_threads > 0) {
		PyErr_SetString(vpy_Error, "cannot close the pool while a thread "
				"is inside a FAS");
		return NULL;
	}
	int rc;
	vpy_open = false;
	root = NULL;
	Py_BEGIN_ALLOW_THREADS
	rc = punmap();
	Py_END_ALLOW_THREADS
	if (rc < 0)
		return vpy_raise(rc, "closing the pool");
	Py_RETURN_NONE;
}

static PyObject *m_root(PyObject *mod, PyObject *unused)
{
	(void)mod;
	(void)unused;
	if (vpy_check_open() < 0)
		return NULL;
	return pdict_wrap(root->dict);
}

static PyObject *m_is_open(PyObject *mod, PyObject *unused)
{
	(void)mod;
	(void)unused;
	return PyBool_FromLong(vpy_open);
}

static PyObject *m_fas_begin(PyObject *mod, PyObject *unused)
{
	(void)mod;
	(void)unused;
	if (vpy_fas_enter() < 0)
		return NULL;
	Py_RETURN_NONE;
}

static PyObject *m_fas_end(PyObject *mod, PyObject *unused)
{
	(void)mod;
	(void)unused;
	if (tls_depth <= 0) {
		PyErr_SetString(vpy_Error, "fas_end() without fas_begin()");
		return NULL;
	}
	if (!vpy_fas_exit(1))
		return NULL;
	Py_RETURN_NONE;
}

static PyObject *m_fas_depth(PyObject *mod, PyObject *unused)
{
	(void)mod;
	(void)unused;
	return PyLong_FromLong(tls_depth);
}

/* commit_call -- run pcommit() or psync() with the GIL released. */
static PyObject *commit_call(int (*fn)(void), const char *name)
{
	if (vpy_check_open() < 0)
		return NULL;
	if (tls_depth > 0) {
		PyErr_Format(vpy_Error, "%s() inside a FAS", name);
		return NULL;
	}
	int rc;
	Py_BEGIN_ALLOW_THREADS
	rc = fn();
	Py_END_ALLOW_THREADS
	if (rc < 0)
		return vpy_raise(rc, name);
	Py_RETURN_NONE;
}

static PyObject *m_pcommit(PyObject *mod, PyObject *unused)
{
	(void)mod;
	(void)unused;
	return commit_call(pcommit, "pcommit");
}

static PyObject *m_psync(PyObject *mod, PyObject *unused)
{
	(void)mod;
	(void)unused;
	return commit_call(psync, "psync");
}

static PyObject *m_set_durability(PyObject *mod, PyObject *args)
{
	(void)mod;
	int mode;
	unsigned int ms = 1;
	if (!PyArg_ParseTuple(args, "i|I", &mode, &ms))
		return NULL;
	int rc = vp_set_durability(mode, ms);
	if (rc < 0)
		return vpy_raise(rc, "set_durability");
	Py_RETURN_NONE;
}

static PyObject *m_stats(PyObject *mod, PyObject *unused)
{
	(void)mod;
	(void)unused;
	struct vp_stats s;
	if (vpy_check_open() < 0)
		return NULL;
	int rc = vp_stats(&s);
	if (rc < 0)
		return vpy_raise(rc, "stats");
	return Py_BuildValue(
		"{sKsKsKsKsKsKsKsKsKsKsKsKsKsKsKsKsKsKsKsKsKsKsKsKsKsKsKsssz}",
		"commits", (unsigned long long)s.commits,
		"empty_commits", (unsigned long long)s.empty_commits,
		"fas", (unsigned long long)s.fas,
		"pages_logged", (unsigned long long)s.pages_logged,
		"bytes_logged", (unsigned long long)s.bytes_logged,
		"faults", (unsigned long long)s.faults,
		"failed_commits", (unsigned long long)s.failed_commits,
		"ns_collect", (unsigned long long)s.ns_collect,
		"ns_prepare", (unsigned long long)s.ns_prepare,
		"ns_log", (unsigned long long)s.ns_log,
		"ns_update", (unsigned long long)s.ns_update,
		"ns_stall", (unsigned long long)s.ns_stall,
		"heap_size", (unsigned long long)s.heap_size,
		"heap_used", (unsigned long long)s.heap_used,
		"ns_bound", (unsigned long long)s.ns_bound,
		"bound_waits", (unsigned long long)s.bound_waits,
		"ns_bound_wait", (unsigned long long)s.ns_bound_wait,
		"bytes_persisted", (unsigned long long)s.bytes_persisted,
		"pages_collected", (unsigned long long)s.pages_collected,
		"verify_pages_checked", (unsigned long long)s.verify_pages_checked,
		"verify_missed_lines", (unsigned long long)s.verify_missed_lines,
		"ns_pause", (unsigned long long)s.ns_pause,
		"cow_commits", (unsigned long long)s.cow_commits,
		"cow_faults", (unsigned long long)s.cow_faults,
		"drains", (unsigned long long)s.drains,
		"snap_commits", (unsigned long long)s.snap_commits,
		"shadow_hits", (unsigned long long)s.shadow_hits,
		"tracker", s.tracker,
		"medium", s.medium);
}

static PyObject *m_set_types(PyObject *mod, PyObject *args)
{
	(void)mod;
	PyTypeObject *d, *l;
	if (!PyArg_ParseTuple(args, "O!O!", &PyType_Type, &d, &PyType_Type, &l))
		return NULL;
	if (!PyType_IsSubtype(d, &PDictBase_Type) ||
	    !PyType_IsSubtype(l, &PListBase_Type) ||
	    d->tp_basicsize != PDictBase_Type.tp_basicsize ||
	    l->tp_basicsize != PListBase_Type.tp_basicsize) {
		PyErr_SetString(PyExc_TypeError, "_set_types needs subclasses of "
				"PDictBase and PListBase with __slots__ = ()");
		return NULL;
	}
	Py_INCREF(d);
	Py_INCREF(l);
	vpy_dict_type = d;
	vpy_list_type = l;
	Py_RETURN_NONE;
}

static PyMethodDef module_methods[] = {
	{"_open", (PyCFunction)(void (*)(void))m_open,
	 METH_VARARGS | METH_KEYWORDS,
	 "_open(path, size=64 MiB, flags=0, pickle=False): map the pool"},
	{"_close", m_close, METH_NOARGS, "commit and unmap the pool"},
	{"_root", m_root, METH_NOARGS, "the persistent root dict"},
	{"_is_open", m_is_open, METH_NOARGS, "whether a pool is open"},
	{"_fas_begin", m_fas_begin, METH_NOARGS, "pstart(), GIL released"},
	{"_fas_end", m_fas_end, METH_NOARGS, "pend(), GIL released"},
	{"_fas_depth", m_fas_depth, METH_NOARGS, "this thread's FAS nesting"},
	{"pcommit", m_pcommit, METH_NOARGS,
	 "make every write made so far durable (GIL released)"},
	{"psync", m_psync, METH_NOARGS,
	 "wait until every write made so far is durable (GIL released)"},
	{"set_durability", m_set_durability, METH_VARARGS,
	 "set_durability(mode, interval_ms=1): SYNC or RELAXED"},
	{"stats", m_stats, METH_NOARGS, "the library's counters as a dict"},
	{"_set_types", m_set_types, METH_VARARGS, NULL},
	{NULL, NULL, 0, NULL},
};

static struct PyModuleDef moddef = {
	PyModuleDef_HEAD_INIT,
	.m_name = VPY_MOD,
	.m_doc = "CPython binding of libvolipmem (use the volipmem package).",
	.m_size = -1,
	.m_methods = module_methods,
};

PyMODINIT_FUNC VPY_INIT(void)
{
	if (PyType_Ready(&PDictBase_Type) < 0 ||
	    PyType_Ready(&PListBase_Type) < 0 ||
	    PyType_Ready(&PDictIter_Type) < 0)
		return NULL;
	PyObject *m = PyModule_Create(&moddef);
	if (!m)
		return NULL;
	vpy_Error = PyErr_NewExceptionWithDoc(
		"volipmem.Error", "An error reported by libvolipmem; .code is "
		"its negative error code.", PyExc_OSError, NULL);
	if (!vpy_Error ||
	    PyModule_AddObjectRef(m, "Error", vpy_Error) < 0 ||
	    PyModule_AddObjectRef(m, "PDictBase", (PyObject *)&PDictBase_Type) < 0 ||
	    PyModule_AddObjectRef(m, "PListBase", (PyObject *)&PListBase_Type) < 0 ||
	    PyModule_AddIntConstant(m, "SYNC", VP_SYNC) < 0 ||
	    PyModule_AddIntConstant(m, "RELAXED", VP_RELAXED) < 0 ||
	    PyModule_AddIntConstant(m, "CREATE_ONLY", VP_CREATE_ONLY) < 0 ||
	    PyModule_AddIntConstant(m, "OPEN_ONLY", VP_OPEN_ONLY) < 0 ||
	    PyModule_AddIntConstant(m, "SPARSE", VP_SPARSE) < 0 ||
	    PyModule_AddIntConstant(m, "CC", VPY_IS_CC) < 0) {
		Py_DECREF(m);
		return NULL;
	}
	return m;
}
