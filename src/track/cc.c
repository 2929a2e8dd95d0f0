/* SPDX-License-Identifier: MIT */
/*
 * cc.c -- the "cc" tracker: the write set is what instrumented stores
 * recorded (cc_rt.c), at 64-byte line granularity. No fault, no scan, and
 * the heap is never write-protected.
 *
 * collect() walks only the list of newly touched pages, takes each page's
 * line word (exchange with 0: the lines recorded since the last
 * collection) into `captured`, and reports the pages; lines() then answers
 * from `captured` for the pages of that collection, so the commit diffs
 * only the lines that were written. Pages written by code built without
 * the flags are not seen: chosen only by name (VOLIPMEM_TRACKER=cc) and
 * only in a process with an instrumented module (see docs/cc.md).
 */
#include <dlfcn.h>
#include <errno.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "track/cc.h"
#include "track/track.h"
#include "util/util.h"

struct cc {
	uint64_t *captured;       /* per page: lines of the last collection   */
	struct vp_pageset last;   /* pages of the last collection             */
};

static int cc_probe(void)
{
	/* The LD_PRELOAD heap (bindings/preload) serves malloc for an
	 * unmodified program: its writes are not instrumented. */
	if (dlsym(RTLD_DEFAULT, "vp_preload_heap"))
		return vp__err(VP_E_TRACKER, "the LD_PRELOAD heap (libvolipmem_preload.so) serves an uninstrumented "
					     "program, whose stores the cc tracker cannot see");
	if (!vp__cc_instrumented())
		return vp__err(VP_E_TRACKER, "no module of this process was built with the cc instrumentation "
					     "(compile and link with `pkg-config --cflags --libs volipmem-cc`)");
	return 0;
}

static int cc_attach(struct vp_tracker *t)
{
	struct cc *c = calloc(1, sizeof *c);
	size_t cap = 2 * t->npages + 64;
	if (!c)
		return vp__err(-ENOMEM, "cc tracker: out of memory");
	c->captured = calloc(t->npages, sizeof *c->captured);
	vp__cc.live = calloc(t->npages, sizeof *vp__cc.live);
	vp__cc.list = calloc(cap, sizeof *vp__cc.list);
	if (!c->captured || !vp__cc.live || !vp__cc.list) {
		free(c->captured);
		free((void *)vp__cc.live);
		free((void *)vp__cc.list);
		free(c);
		vp__cc.live = vp__cc.list = NULL;
		return vp__err(-ENOMEM, "cc tracker: out of memory for the line map of %zu pages", t->npages);
	}
	vp__cc.cap = cap;
	atomic_store(&vp__cc.nlist, 0);
	atomic_store(&vp__cc.overflow, false);
	vp__cc.base = (uintptr_t)t->base;
	/* The length last: a callback that sees it sees the map. */
	atomic_thread_fence(memory_order_seq_cst);
	vp__cc.len = t->len;
	t->priv = c;
	return 0;
}

/* take -- move page pg's recorded lines into the collection. */
static int take(struct cc *c, struct vp_pageset *out, uint64_t pg)
{
	uint64_t m = atomic_exchange_explicit(&vp__cc.live[pg], 0, memory_order_acq_rel);
	if (!m)
		return 0; /* a duplicate list entry, already taken */
	if (!c->captured[pg] && (vp__pageset_push(out, pg) || vp__pageset_push(&c->last, pg)))
		return vp__err(-ENOMEM, "cc tracker: out of memory collecting pages");
	c->captured[pg] |= m;
	return 0;
}

static int cc_collect(struct vp_tracker *t, struct vp_pageset *out)
{
	struct cc *c = t->priv;
	for (size_t i = 0; i < c->last.n; i++)
		c->captured[c->last.pg[i]] = 0;
	c->last.n = 0;
	size_t done = 0;
	int rc = 0;
	for (;;) {
		size_t raw = atomic_load(&vp__cc.nlist), n = raw < vp__cc.cap ? raw : vp__cc.cap;
		for (size_t i = done; i < n; i++) {
			uint64_t v;
			while (!(v = atomic_exchange_explicit(&vp__cc.list[i], 0, memory_order_acq_rel)))
				; /* claimed by a writer, filled in a moment */
			if (!rc)
				rc = take(c, out, v - 1);
		}
		done = n;
		if (atomic_exchange(&vp__cc.overflow, false))
			for (uint64_t pg = 0; pg < t->npages; pg++)
				if (!rc && atomic_load_explicit(&vp__cc.live[pg], memory_order_relaxed))
					rc = take(c, out, pg);
		if (atomic_compare_exchange_strong(&vp__cc.nlist, &raw, 0))
			break;
	}
	vp__pageset_sort_unique(out);
	return rc;
}

static uint64_t cc_lines(struct vp_tracker *t, uint64_t pgno)
{
	struct cc *c = t->priv;
	return c && pgno < t->npages ? c->captured[pgno] : ~0ull;
}

static void cc_detach(struct vp_tracker *t)
{
	struct cc *c = t->priv;
	vp__cc.len = 0;
	atomic_thread_fence(memory_order_seq_cst);
	vp__cc.base = 0;
	free((void *)vp__cc.live);
	free((void *)vp__cc.list);
	vp__cc.live = vp__cc.list = NULL;
	vp__cc.cap = 0;
	if (!c)
		return;
	free(c->captured);
	vp__pageset_free(&c->last);
	free(c);
	t->priv = NULL;
}

/* cc_before_kernel_write -- a read()/recv()/fread() into the heap: the
 * kernel (or libc) writes it, no instrumented store does. */
static int cc_before_kernel_write(struct vp_tracker *t, void *addr, size_t n)
{
	(void)t;
	vp__cc_note(addr, n);
	return 0;
}

static uint64_t cc_faults(struct vp_tracker *t) { (void)t; return 0; }

const struct vp_tracker_ops vp__track_cc = {
	.name = "cc",
	.probe = cc_probe,
	.attach = cc_attach,
	.collect = cc_collect,
	.detach = cc_detach,
	.before_kernel_write = cc_before_kernel_write,
	.faults = cc_faults,
	.lines = cc_lines,
};
