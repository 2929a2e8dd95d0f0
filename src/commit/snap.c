/* SPDX-License-Identifier: MIT */
/*
 * snap.c -- the snapshot that lets the gate open before step 3a.
 *
 * Step 3a reads, of each page of the write set, the lines the tracker
 * recorded (cc: its lines op) or, without masks (a page tracker: uffd,
 * mprotect, full), every line, which it diffs against home. So at the
 * quiescent point it is enough to copy those lines -- the whole page
 * without masks or when more than VP_LINES_LOG_MAX are recorded -- into a
 * DRAM arena: a memcpy, in place of the non-temporal copy into the log,
 * the diff and the checksum. The gate opens after that copy, and step 3a
 * reads the arena (vp_log.snap) while threads write the working copy
 * again.
 *
 * When it is taken (vp__snap_take): with cc always -- a few lines per
 * page cost less than the paused copy. With a page tracker only in
 * relaxed mode: there the committer's extra page copy runs beside the
 * writers, who wait at the gate otherwise; in synchronous mode the
 * committing thread is itself a writer, pays the copy on top of the log
 * and gains nothing (bench/hashmap, docs/COMMIT.md "The snapshot").
 *
 * The arena has room for a page per position of the write set. Position
 * p starts at off[p]: a whole page there keeps its layout, so the diff
 * reads it as it would the working page; the recorded lines of a page
 * with at most VP_LINES_LOG_MAX of them are packed there in order, which
 * is how copy_slots builds a LINES entry from it. It is
 * grow-only and faulted in when mapped: a first touch of an anonymous
 * page costs microseconds here, more than copying a line, so no pause ever
 * touches a fresh page of it. A commit whose set does not fit copies
 * paused, as without the snapshot, and the arena grows after it (up to
 * VP_SNAP_MAX_PAGES).
 */
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "commit/log.h"
#include "commit/snap.h"
#include "track/track.h"
#include "util/options.h"
#include "util/util.h"

void (*vp__snap_test_hook)(uint64_t epoch);

void vp__snap_open(struct vp_snap *s, const struct vp_tracker *t)
{
	*s = (struct vp_snap){.on = vp__opt.snapshot, .pages = t->ops->lines == NULL};
}

void vp__snap_close(struct vp_snap *s)
{
	if (s->base)
		munmap(s->base, s->cap * VP_PAGE);
	free(s->off);
	*s = (struct vp_snap){0};
}

bool vp__snap_take(struct vp_snap *s, const struct vp_pageset *ws, const uint8_t *heap,
		   struct vp_tracker *lines_from, bool relaxed)
{
	if (!s->on || !ws->n || (s->pages && !relaxed))
		return false;
	if (ws->n > s->cap) {
		if (ws->n <= VP_SNAP_MAX_PAGES && ws->n > s->want)
			s->want = ws->n;
		return false;
	}
	/* Packed: each page's lines one after the other, so that the copy
	 * writes a few contiguous pages of the arena, not a line in each of
	 * thousands (a TLB miss and a cache miss apiece). A whole page keeps
	 * its layout, at a line boundary. At most a page per position: the
	 * arena's cap pages hold any set of cap pages. */
	size_t at = 0;
	for (size_t p = 0; p < ws->n; p++) {
		const uint8_t *work = heap + ws->pg[p] * VP_PAGE;
		uint64_t m = lines_from ? lines_from->ops->lines(lines_from, ws->pg[p]) : ~0ull;
		s->off[p] = at;
		/* copy_slots logs the whole page when more than
		 * VP_LINES_LOG_MAX lines are recorded (or, without masks,
		 * differ from home): then it reads every line. */
		if (!lines_from || (unsigned)__builtin_popcountll(m) > VP_LINES_LOG_MAX) {
			memcpy(s->base + at, work, VP_PAGE);
			at += VP_PAGE;
			continue;
		}
		for (; m; m &= m - 1, at += VP_LINE)
			memcpy(s->base + at, work + (unsigned)__builtin_ctzll(m) * VP_LINE, VP_LINE);
	}
	return true;
}

void vp__snap_grow(struct vp_snap *s)
{
	if (!s->on || s->grow_failed || s->want <= s->cap)
		return;
	/* Half again what was wanted (a set that grows by a little must not
	 * fall back once per commit), at least twice what there was. */
	size_t cap = s->want + s->want / 2;
	if (cap < s->cap * 2)
		cap = s->cap * 2;
	if (cap < 256)
		cap = 256;
	if (cap > VP_SNAP_MAX_PAGES)
		cap = VP_SNAP_MAX_PAGES;
	uint8_t *b = mmap(NULL, cap * VP_PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	uint64_t *off = b == MAP_FAILED ? NULL : calloc(cap, sizeof *off);
	if (b == MAP_FAILED || !off) {
		if (b != MAP_FAILED)
			munmap(b, cap * VP_PAGE);
		s->grow_failed = true;
		vp__diag(1, "snapshot: cannot map an arena of %zu pages; write sets over %zu pages are copied "
			    "with threads paused", cap, s->cap);
		return;
	}
	/* Fault every page in now, with threads running (a write: a read
	 * would map the shared zero page and fault again at the first copy). */
	for (size_t i = 0; i < cap; i++)
		((volatile uint8_t *)b)[i * VP_PAGE] = 0;
	if (s->base)
		munmap(s->base, s->cap * VP_PAGE);
	free(s->off);
	s->base = b;
	s->off = off;
	s->cap = cap;
	s->want = 0;
}
