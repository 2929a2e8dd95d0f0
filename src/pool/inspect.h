/* SPDX-License-Identifier: MIT */
/*
 * inspect.h -- open, recover and check a pool held in memory (a byte image
 * of the whole file), without mapping its heap at the heap's address. Used
 * by the crash simulator (tests/sim), the pool fuzzer (tests/fuzz) and the
 * CLI: the same validation pmap() applies, on bytes from anywhere.
 */
#ifndef VP_INSPECT_H
#define VP_INSPECT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "heap/heap.h"
#include "pool/format.h"

struct vp_image {
	uint8_t *img;             /* the file's bytes                          */
	uint64_t len;             /* file size                                 */
	struct vp_superblock sb;  /* the winning superblock copy               */
	int sb_rc[2];             /* validation result of copy A and B         */
	char sb_why[2][200];      /* why a copy was rejected                   */
	int best;                 /* 0 = A, 1 = B, -1 = none valid             */
	struct vp_logrec rec;     /* winning commit record (after open)        */
};

/* vp__sb_pick -- given both copies and their validation results, choose
 * the winner as pmap() does: the valid copy with the highest seq; two valid
 * copies of different pools are an error. Returns 0 and *best, or a code
 * with the reason in why. */
int vp__sb_pick(const struct vp_superblock sb[2], const int rc[2], int *best, char *why, size_t whylen);

/* vp__image_open -- validate the superblocks and read the log state of an
 * image of len bytes. Returns 0 or a code; vp_errormsg() names the problem.
 * Never writes. */
int vp__image_open(struct vp_image *im, uint8_t *img, uint64_t len);

/* vp__image_recover -- what pmap() does to the file before mapping the
 * heap: replay a committed group into the home image and retire it. Writes
 * through the persist layer (so persist hooks see every store and drain).
 * pre: vp__image_open returned 0. */
int vp__image_recover(struct vp_image *im);

/* vp__image_check -- everything `volipmem check` verifies on a recovered
 * image: log state applied, allocator metadata and roots. Returns 0 or a
 * code with the first problem in err. */
int vp__image_check(struct vp_image *im, struct vp_heap_report *rep, char *err, size_t errlen);

#endif
