/* SPDX-License-Identifier: MIT */
/*
 * snap.h -- the DRAM snapshot of a write set: at the quiescent point the
 * lines step 3a will read of each page of the write set (cc: the recorded
 * ones; a page tracker: all) are copied from the working copy into an
 * arena, the gate opens, and step 3a logs the pages from the arena while
 * threads run (see snap.c and docs/COMMIT.md, "The snapshot").
 */
#ifndef VP_SNAP_H
#define VP_SNAP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct vp_tracker;
struct vp_pageset;

/* Largest write set taken into the snapshot: 64 MiB of arena. A larger set
 * is copied into the log with the gate closed, as without the snapshot. */
#define VP_SNAP_MAX_PAGES 16384u

/* struct vp_snap -- one per commit pipeline, used by the committer only.
 * Position p of the write set is at base + off[p] (snap.c). */
struct vp_snap {
	bool on;                 /* VOLIPMEM_SNAPSHOT                         */
	bool pages;              /* the tracker has no line masks: whole pages,
				  * taken in relaxed mode only                */
	bool grow_failed;        /* an arena could not be mapped: stop trying */
	uint8_t *base;           /* the arena: cap pages, every one faulted in */
	uint64_t *off;           /* cap entries: where position p of the last
				  * snapshot starts in the arena            */
	size_t cap;              /* pages mapped                              */
	size_t want;             /* pages a commit wanted and did not have    */
};

/* vp__snap_open -- on unless VOLIPMEM_SNAPSHOT=0. No arena yet: the first
 * commit that needs one copies paused and grows it. */
void vp__snap_open(struct vp_snap *s, const struct vp_tracker *t);
void vp__snap_close(struct vp_snap *s);

/* vp__snap_take -- at the quiescent point, after collect and after every
 * change to ws: copy into the arena each line of each page of ws that step
 * 3a may read (the lines lines_from records, the whole page when
 * there are more than VP_LINES_LOG_MAX of them or lines_from is NULL).
 * relaxed: the commit runs in relaxed mode (a page tracker's snapshot is
 * taken only then). false: off, not taken in this mode, or the arena is too
 * small (noted for vp__snap_grow) -- copy into the log before opening the
 * gate. pre: gate closed. */
bool vp__snap_take(struct vp_snap *s, const struct vp_pageset *ws, const uint8_t *heap,
		   struct vp_tracker *lines_from, bool relaxed);

/* vp__snap_grow -- with the gate open, after a commit that found the
 * arena too small: map a larger one and fault every page in, so that no
 * later pause pays a first touch. A failure keeps the old arena. */
void vp__snap_grow(struct vp_snap *s);

/* Test hook, on the committing thread of a commit that took the snapshot:
 * after the gate opened, before step 3a reads the arena. */
extern void (*vp__snap_test_hook)(uint64_t epoch);

#endif
