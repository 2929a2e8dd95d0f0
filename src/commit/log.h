/* SPDX-License-Identifier: MIT */
/*
 * log.h -- the four-step commit pipeline's pool-side operations (prepare,
 * log, update); the commit records themselves are pool/pool.h's.
 */
#ifndef VP_LOG_H
#define VP_LOG_H

#include <stdbool.h>
#include <stdint.h>

#include <stddef.h>

#include "commit/shadow.h"
#include "pool/pool.h"

struct vp_pageset;
struct vp_tracker;

/* struct vp_slotinfo -- what copy_slots put in a slot, kept in DRAM so that
 * the commit record's counts and step 4 need not read the slot back. */
struct vp_slotinfo {
	uint32_t len;             /* bytes of the slot in use                   */
	uint32_t stage;           /* offset of the LINES entry (header and
	                             lines, as in the slot) in vp_log.stage, or
	                             VP_NOT_STAGED                              */
};
#define VP_NOT_STAGED UINT32_MAX

/* A page with at most this many changed lines is logged as a LINES entry,
 * else whole (log.c, "Line-granular entries"). */
#define VP_LINES_LOG_MAX 32u

/* struct vp_log -- the commit pipeline's side of the redo log: the pool it
 * writes, the working copy it copies pages from, the descriptor staging
 * array and how much of a sparse pool's log is reserved. The runtime keeps
 * one; `volipmem check --repair` makes one over the repaired heap image. */
struct vp_log {
	struct vp_pool *pool;
	const uint8_t *heap;      /* the pages named by a write set            */
	struct vp_logdesc *desc;  /* staging copy of the descriptors           */
	uint64_t *changed;        /* bit i: page i of the write set had a line
	                             that differed from home (vp__log_copy)     */
	struct vp_slotinfo *slot; /* slot i of the group, as logged (volatile) */
	uint8_t *stage;           /* volatile copy of small LINES entries, so
	                             step 4 reads them from the cache, not back
	                             from the log's non-temporal stores        */
	size_t desc_cap;
	uint64_t reserved;        /* bytes of the log area reserved on disk    */
	int sparse;               /* 0 unknown, 1 sparse file, 2 fully reserved */
	uint64_t entries;         /* last group: slots holding lines or a page */
	uint64_t bytes;           /* last group: slot bytes in use             */
	struct vp_tracker *lines_from; /* this group: the tracker whose lines()
				   * name the candidate lines, or NULL (all) */
	const uint8_t *snap;      /* this copy: page p of the write set is read
	                             from the snapshot at snap + snap_off[p]
	                             (commit/snap.c), not from heap; NULL:
	                             from heap                                 */
	struct vp_shadow shadow;  /* hot pages' committed image (shadow.c)     */
	const uint64_t *snap_off; /* with lines_from, a page of at most
	                             VP_LINES_LOG_MAX lines holds just those,
	                             in order (snap.c)                         */
	/* Where groups go (log.c, "Appending"): */
	uint64_t base;            /* first slot of the group being logged      */
	uint64_t end;             /* first slot after the newest committed
	                             group; 0 once the log is retired          */
	uint64_t live;            /* seq of the group the records name as
	                             COMMITTED, 0 when they say APPLIED        */
	bool home_failed;         /* step 4 of group live failed: keep it      */
	bool sums;                /* this group's slots carry checksums
	                             (VOLIPMEM_CHECKSUM_PAGES): one drain for
	                             slots and record A (log.c)               */
	struct vp_logrec rec;     /* group live: its commit record, as stored
	                             in A and then in B                      */
};

/* Step 2: choose where the group goes (after the newest committed group,
 * or at slot 0 after retiring the log when it does not fit there) and make
 * sure the medium has room for its slots. Threads are paused meanwhile. */
int vp__log_prepare(struct vp_log *lg, const struct vp_pageset *ws);
/* Step 3, first half: log each page of the write set -- the lines that
 * differ from its home image, or the whole page -- into the slots and
 * compute descriptors. Threads are paused meanwhile. pre: the home image
 * holds every earlier group (its step 4 is done). *used := descriptors
 * needed (unchanged pages take none; 0: nothing changed). A large
 * set is split with a helper thread (VOLIPMEM_COPY_THREADS); its half is
 * drained before this returns. Returns 0 or the helper's drain error.
 * Sets lg->changed for the write set's pages. */
int vp__log_copy(struct vp_log *lg, const struct vp_pageset *ws, uint64_t *used);
/* Step 3, second half: store the descriptors and record A = COMMITTED(seq)
 * and make them durable with the slots (one drain when the slots carry
 * checksums, the slots first otherwise): the commit point. Threads run
 * meanwhile. */
int vp__log_commit(struct vp_log *lg, uint64_t seq, uint64_t n);
/* Step 4: store record B = COMMITTED(seq), apply the slots (pages or
 * lines) to the home image (split like step 3 for a large set) and make
 * both durable in one drain. pre: vp__log_commit(lg, seq, n) returned 0.
 * The records keep naming the group (COMMITTED) until a later group wraps
 * or vp__log_retire runs. */
int vp__log_apply(struct vp_log *lg, uint64_t n);
/* vp__log_retire -- mark the newest committed group APPLIED in both
 * records (nothing to do when they already say so). pre: its step 4 is
 * done. Called when the pool is closed, so a closed pool has an empty log. */
int vp__log_retire(struct vp_log *lg);

/* vp__log_line_mask -- which 64-byte lines of the working page differ from
 * its home image (bit j = line j). */
uint64_t vp__log_line_mask(const uint8_t *work, const uint8_t *home);

/* vp__log_free -- release the staging array. */
void vp__log_free(struct vp_log *lg);

#endif
