/* SPDX-License-Identifier: MIT */
/*
 * cow.h -- step 3a's copy while threads run: at the quiescent point the
 * write set is made read-only, the gate opens, and the committer copies it
 * into the log while a writer that faults on a page not yet copied first
 * saves the page as it was (see cow.c and docs/COMMIT.md).
 */
#ifndef VP_COW_H
#define VP_COW_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "util/util.h"

struct vp_tracker;
struct vp_pageset;

/* struct vp_cow -- one per process (the SIGSEGV handler finds it). The
 * arrays are indexed by a page's position in the sorted write set. */
struct vp_cow {
	atomic_bool active;        /* the handler serves the write set below    */
	atomic_uint inflight;      /* handlers reading the arrays right now     */
	bool copying;              /* the committer's copy takes pages from here */
	int want;                  /* VOLIPMEM_CONCURRENT_COPY: 0 off, 1 on, 2 auto */
	int mode;                  /* the tracker's VP_COW_* for this commit     */
	struct vp_tracker *trk;
	const uint64_t *pg;        /* the write set (sorted, unique)            */
	size_t n, cap;
	_Atomic uint8_t *st;       /* per position: PENDING, CLAIMED, ...       */
	uint32_t *seg;             /* per position: its unprotect segment       */
	_Atomic uint32_t *left;    /* per segment: positions not yet logged     */
	uint32_t *seg_first;       /* per segment: its first position           */
	size_t nseg;
	uint8_t *shadow;           /* cap pages: what writers saved             */
	atomic_bool unprot_failed; /* a segment stayed read-only (no VMA left)  */
	atomic_ullong faults;      /* pages saved by writers (all time)         */
	/* cost model, ns */
	uint64_t ns_prot;          /* one mprotect call                         */
	uint64_t ns_copy;          /* logging one page (measured, then observed) */
	uint64_t fault_pm;         /* pages writers saved, per mille of the set */
	uint64_t faults0;          /* faults at the start of this copy          */
};

extern struct vp_cow vp__cow;

/* vp__cow_open -- read VOLIPMEM_CONCURRENT_COPY and measure the cost model
 * (one mprotect, one page compare + copy; ~20 us). VP_E_INVAL for a bad
 * value. */
int vp__cow_open(struct vp_cow *c, struct vp_tracker *t);
void vp__cow_close(struct vp_cow *c);
/* vp__cow_forked -- in a forked child: no committer will finish a copy. */
void vp__cow_forked(struct vp_cow *c);

enum { VP_COW_OFF = 0, VP_COW_CONCURRENT = 1, VP_COW_PAUSED = 2 };
/* vp__cow_begin -- at the quiescent point, after collect: decide, and if on,
 * protect the write set. VP_COW_OFF: not used (copy as always);
 * VP_COW_CONCURRENT: open the gate, then copy; VP_COW_PAUSED: protection
 * failed part way (out of VMAs): copy before opening the gate. Either of
 * the last two is followed by vp__cow_end after the copy. */
int vp__cow_begin(struct vp_cow *c, const struct vp_pageset *ws);
/* vp__cow_end -- after the copy: stop serving faults, wait for handlers
 * still inside, give back any page left read-only. ns_copy: the copy's
 * time, for the cost model. Returns 0 or a negative errno. */
int vp__cow_end(struct vp_cow *c);
/* vp__cow_observe -- the copy of n pages took ns (cost model). */
void vp__cow_observe(struct vp_cow *c, uint64_t n, uint64_t ns);

/* Called by the log copy for each position p of the write set: the page to
 * read (the working copy, or what a writer saved of it), then "done". */
const uint8_t *vp__cow_claim(struct vp_cow *c, uint64_t p, const uint8_t *work);
void vp__cow_release(struct vp_cow *c, uint64_t p);

static inline const uint8_t *vp__cow_src(uint64_t p, const uint8_t *work)
{
	return vp_likely(!vp__cow.copying) ? work : vp__cow_claim(&vp__cow, p, work);
}

static inline void vp__cow_copied(uint64_t p)
{
	if (!vp_likely(!vp__cow.copying))
		vp__cow_release(&vp__cow, p);
}

/* Test hook, on the committing thread of a commit that copies
 * concurrently: phase 0 at the quiescent point (before protecting), phase 1
 * after the gate opened and before the copy starts. */
extern void (*vp__cow_test_hook)(int phase);

#endif
