/* SPDX-License-Identifier: MIT */
/*
 * shadow.h -- DRAM copies of the committed image of hot pages: the diff
 * base of trackers that name pages, not lines (commit/shadow.c).
 */
#ifndef VP_SHADOW_H
#define VP_SHADOW_H

#include <stdbool.h>
#include <stdint.h>

/* struct vp_shadow -- a set-associative cache of page images, keyed by
 * page number. The invariant: a page's shadow, when present, is byte for
 * byte its committed image, the home page once the last acknowledged
 * group is applied. Zeroed: empty, allocated at the first install. */
struct vp_shadow {
	uint64_t sets;            /* 0: nothing allocated yet                  */
	uint64_t *tag;            /* sets * VP_SHADOW_WAYS: page + 1, 0 empty  */
	uint64_t *used;           /* per way: clock at its last use            */
	uint64_t *ghost;          /* sets * VP_SHADOW_WAYS, direct-mapped: page
	                             + 1 of a page logged once without a shadow */
	uint8_t *pages;           /* one page per way                          */
	uint64_t valid;           /* ways holding a page                       */
	uint64_t clock;
	uint64_t hits;            /* vp__shadow_find calls that found one      */
	bool failed;              /* allocation failed: stays empty            */
};
#define VP_SHADOW_WAYS 4u

/* vp__shadow_find -- pgno's shadow, or NULL. */
uint8_t *vp__shadow_find(struct vp_shadow *s, uint64_t pgno);

/* vp__shadow_logged -- pgno was logged from src with lines m changed
 * against its committed image (sh, its shadow from vp__shadow_find, or
 * home): bring sh up to date, or with install, give pgno a shadow if it
 * was logged before (a page logged once is not worth a 4 KiB copy). */
void vp__shadow_logged(struct vp_shadow *s, uint64_t pgno, uint8_t *sh, const uint8_t *src, uint64_t m,
		       bool install);

/* vp__shadow_drop -- forget every shadow: a group changed home without
 * them (a failed commit, a split copy, a tracker that names lines). */
void vp__shadow_drop(struct vp_shadow *s);

void vp__shadow_free(struct vp_shadow *s);

#endif
