/* SPDX-License-Identifier: MIT */
/*
 * mprotect.c -- the "mprotect" tracker: the heap is PROT_READ between
 * commits; the first write to a page raises SIGSEGV, the handler records
 * the page and makes it writable. Works on any Linux (the PMThreads-style
 * baseline); costs 3-5 us per first write here.
 *
 * Per-page state, changed with compare-and-swap so the signal handler and
 * the collector never lose a write:
 *   CLEAN (read-only) --fault--> BUSY (handler unprotecting) --> DIRTY (rw)
 *   collect: DIRTY --> CLEAN, then mprotect(PROT_READ).
 * A page the collector turns CLEAN while a writer still writes through a
 * stale writable mapping is fine: those writes happen before the copy of
 * step 3, or fault again after the re-protect.
 *
 * vm.max_map_count: each isolated writable page is its own VMA, and past
 * ~32k scattered pages mprotect fails with ENOMEM. The handler then makes
 * the whole 2 MiB chunk writable (and counts all of it as written); if even
 * that fails, the whole heap (everything counts as written until the next
 * collect, which re-protects the heap in one call: one VMA again).
 */
#include <errno.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "track/track.h"
#include "util/util.h"

enum { CLEAN = 0, BUSY = 1, DIRTY = 2 };
#define CHUNK_PAGES 512u  /* 2 MiB */

struct mp {
	_Atomic uint8_t *state;    /* per page                                */
	_Atomic uint8_t *summary;  /* per chunk: some page may be DIRTY       */
	size_t nchunks;
	atomic_bool all_dirty;     /* the heap went writable wholesale        */
	atomic_ullong faults;
};

static struct vp_tracker *_Atomic active; /* the tracker the handler serves */

/* unprotect -- make pages [pg, pg+n) writable and mark them DIRTY.
 * Async-signal-safe. */
static int unprotect(struct vp_tracker *t, struct mp *m, size_t pg, size_t n)
{
	if (mprotect(t->base + pg * VP_PAGE, n * VP_PAGE, PROT_READ | PROT_WRITE) != 0)
		return -1;
	for (size_t i = pg; i < pg + n; i++)
		atomic_store(&m->state[i], DIRTY);
	for (size_t c = pg / CHUNK_PAGES; c <= (pg + n - 1) / CHUNK_PAGES; c++)
		atomic_store(&m->summary[c], 1);
	return 0;
}

/* record_write -- the page is about to be written: make it writable. */
static int record_write(struct vp_tracker *t, struct mp *m, size_t pg)
{
	uint8_t s = CLEAN;
	if (!atomic_compare_exchange_strong(&m->state[pg], &s, BUSY)) {
		/* BUSY: another thread is unprotecting it; retry the access.
		 * DIRTY yet faulting: a wholesale re-protect raced with a writer
		 * outside any FAS; the page stays counted, make it writable. */
		if (s == DIRTY)
			mprotect(t->base + pg * VP_PAGE, VP_PAGE, PROT_READ | PROT_WRITE);
		return 0;
	}
	atomic_fetch_add_explicit(&m->faults, 1, memory_order_relaxed);
	if (unprotect(t, m, pg, 1) == 0)
		return 0;
	if (errno != ENOMEM)
		goto fail;
	/* Out of VMAs: widen to the chunk, then to the whole heap. */
	size_t c0 = (pg / CHUNK_PAGES) * CHUNK_PAGES;
	size_t cn = c0 + CHUNK_PAGES <= t->npages ? CHUNK_PAGES : t->npages - c0;
	if (unprotect(t, m, c0, cn) == 0)
		return 0;
	if (mprotect(t->base, t->len, PROT_READ | PROT_WRITE) == 0) {
		atomic_store(&m->all_dirty, true);
		atomic_store(&m->state[pg], DIRTY);
		return 0;
	}
fail:
	atomic_store(&m->state[pg], CLEAN);
	return -1;
}

static bool mp_fault(siginfo_t *si)
{
	struct vp_tracker *t = atomic_load(&active);
	uint8_t *a = si->si_addr;
	if (!t || si->si_code != SEGV_ACCERR || a < t->base || a >= t->base + t->len || !t->priv)
		return false;
	int saved = errno;
	int rc = record_write(t, t->priv, (size_t)(a - t->base) / VP_PAGE);
	errno = saved;
	return rc == 0;
}

static int mp_probe(void) { return 0; }

static int mp_attach(struct vp_tracker *t)
{
	struct mp *m = calloc(1, sizeof *m);
	if (!m)
		return vp__err(-ENOMEM, "mprotect tracker: out of memory");
	m->nchunks = (t->npages + CHUNK_PAGES - 1) / CHUNK_PAGES;
	m->state = calloc(t->npages, 1);
	m->summary = calloc(m->nchunks, 1);
	if (!m->state || !m->summary) {
		free((void *)m->state);
		free((void *)m->summary);
		free(m);
		return vp__err(-ENOMEM, "mprotect tracker: out of memory for %zu pages", t->npages);
	}
	t->priv = m;
	int rc = vp__segv_install(mp_fault);
	if (rc)
		goto fail;
	atomic_store(&active, t);
	if (mprotect(t->base, t->len, PROT_READ) != 0) {
		rc = vp__err(-errno, "mprotect tracker: cannot protect the heap: %s", strerror(errno));
		atomic_store(&active, NULL);
		goto fail;
	}
	return 0;
fail:
	free((void *)m->state);
	free((void *)m->summary);
	free(m);
	t->priv = NULL;
	return rc;
}

static int reprotect(struct vp_tracker *t, size_t pg, size_t n)
{
	return mprotect(t->base + pg * VP_PAGE, n * VP_PAGE, PROT_READ);
}

static int mp_collect(struct vp_tracker *t, struct vp_pageset *out)
{
	struct mp *m = t->priv;
	size_t first = out->n;
	bool all = atomic_exchange(&m->all_dirty, false);
	for (size_t c = 0; c < m->nchunks; c++) {
		if (!all && !atomic_exchange(&m->summary[c], 0))
			continue;
		if (all)
			atomic_store(&m->summary[c], 0);
		size_t end = (c + 1) * CHUNK_PAGES < t->npages ? (c + 1) * CHUNK_PAGES : t->npages;
		for (size_t p = c * CHUNK_PAGES; p < end; p++) {
			uint8_t s = DIRTY;
			bool was = atomic_compare_exchange_strong(&m->state[p], &s, CLEAN);
			if (!was && all && s == CLEAN)
				was = true; /* written through the wholesale-writable heap */
			if (was && vp__pageset_push(out, p))
				return vp__err(-ENOMEM, "mprotect tracker: out of memory collecting pages");
		}
	}
	size_t n = out->n - first;
	if (!n)
		return 0;
	/* Re-arm. Many pages, or after the wholesale fallback: one call over
	 * the heap (merges back into a single VMA). Else range by range. */
	bool whole = all || n > t->npages / 16;
	for (size_t i = first; i < out->n && !whole;) {
		size_t j = i + 1;
		while (j < out->n && out->pg[j] == out->pg[j - 1] + 1)
			j++;
		if (reprotect(t, out->pg[i], j - i) != 0)
			whole = true;
		i = j;
	}
	if (whole) {
		/* Pages still BUSY belong to a writer mid-fault; it makes its own
		 * page writable again after this. */
		if (reprotect(t, 0, t->npages) != 0)
			return vp__err(-errno, "mprotect tracker: cannot re-protect the heap: %s", strerror(errno));
	}
	return 0;
}

static void mp_detach(struct vp_tracker *t)
{
	struct mp *m = t->priv;
	atomic_store(&active, NULL);
	vp__segv_install(NULL);
	if (!m)
		return;
	mprotect(t->base, t->len, PROT_READ | PROT_WRITE);
	free((void *)m->state);
	free((void *)m->summary);
	free(m);
	t->priv = NULL;
}

static int mp_before_kernel_write(struct vp_tracker *t, void *addr, size_t n)
{
	struct mp *m = t->priv;
	size_t p0 = (size_t)((uint8_t *)addr - t->base) / VP_PAGE;
	size_t p1 = (size_t)((uint8_t *)addr + n - 1 - t->base) / VP_PAGE;
	for (size_t p = p0; p <= p1 && p < t->npages; p++)
		if (atomic_load(&m->state[p]) != DIRTY && record_write(t, m, p) != 0)
			return -errno;
	return 0;
}

static uint64_t mp_faults(struct vp_tracker *t)
{
	struct mp *m = t->priv;
	return m ? atomic_load(&m->faults) : 0;
}

const struct vp_tracker_ops vp__track_mprotect = {
	.name = "mprotect",
	.probe = mp_probe,
	.attach = mp_attach,
	.collect = mp_collect,
	.detach = mp_detach,
	.before_kernel_write = mp_before_kernel_write,
	.faults = mp_faults,
	.cow = VP_TRK_COW_RO,
};
