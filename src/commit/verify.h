/* SPDX-License-Identifier: MIT */
/*
 * verify.h -- verify mode (VOLIPMEM_VERIFY=1): at each commit, find the
 * pages of the working copy that changed without asking the tracker, and
 * report every changed 64-byte line the tracker did not record. Private to
 * commit/ (and the tests).
 */
#ifndef VP_VERIFY_H
#define VP_VERIFY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "track/track.h"

/* struct vp_verify -- verify mode's state, owned by the committer. */
struct vp_verify {
	bool on;
	int pagemap;              /* /proc/self/pagemap, -1: full compare      */
	struct vp_vchg { uint64_t pg, mask; } *chg; /* changed pages, this commit */
	size_t nchg, capchg;
	uint64_t *inws;           /* bitmap over heap pages: in the write set  */
	size_t npages;
};

/* vp__verify_open -- start verify mode for the heap tracked by t: PAGEMAP_SCAN
 * where the kernel has it and the tracker runs on the host's page tables,
 * else a full compare. Prints one notice naming the method. */
int vp__verify_open(struct vp_verify *v, const struct vp_tracker *t);
void vp__verify_close(struct vp_verify *v);

/* vp__verify_scan -- before collect(): the changed lines of every private
 * page of the working copy, against the home image home (which holds every
 * earlier group). pre: quiescent point. *checked += pages compared. */
int vp__verify_scan(struct vp_verify *v, const struct vp_tracker *t, const uint8_t *home, uint64_t *checked);

/* vp__verify_check -- after collect() filled ws: report each changed line
 * that ws (and the tracker's lines op) does not record, and add its page
 * to ws so the commit logs it anyway. *missed += lines reported. */
int vp__verify_check(struct vp_verify *v, struct vp_tracker *t, struct vp_pageset *ws, uint64_t *missed);

/* vp__verify_test_drop -- tests only: called on each collected write set
 * before the check, to take pages out of it (an unseen store). */
extern void (*vp__verify_test_drop)(struct vp_pageset *ws);
/* vp__verify_test_full -- tests only: use the full compare at the next
 * pmap even where PAGEMAP_SCAN works. */
extern bool vp__verify_test_full;

#endif
