/* SPDX-License-Identifier: MIT */
/*
 * inspect.h -- open, recover and check a pool held in memory (a byte image
 * of the whole file), without mapping its heap at the heap's address. Used
 * by the crash simulator (tests/sim) and the pool fuzzer (tests/fuzz): the
 * superblock choice, log check and replay are pool.h's, the ones pmap()
 * and the CLI run.
 */
#ifndef VP_INSPECT_H
#define VP_INSPECT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "heap/heap.h"
#include "pool/pool.h"

struct vp_image {
	struct vp_pool pool;      /* the image as a pool object (fd = -1)      */
	struct vp_logrec rec;     /* winning commit record                     */
};

/* vp__image_open -- choose the superblock and check the log (vp__sb_choose,
 * vp__log_check) of an image of len bytes. Returns 0 or a code;
 * vp_errormsg() names the problem. Never writes. */
int vp__image_open(struct vp_image *im, uint8_t *img, uint64_t len);

/* vp__image_recover -- what pmap() does to the file before mapping the
 * heap: vp__log_replay. Writes through the persist layer (so persist hooks
 * see every store and drain). pre: vp__image_open returned 0. */
int vp__image_recover(struct vp_image *im);

/* vp__image_check -- everything `volipmem check` verifies on a recovered
 * image: log state applied, allocator metadata and roots. Returns 0 or a
 * code with the first problem in err. */
int vp__image_check(struct vp_image *im, struct vp_heap_report *rep, char *err, size_t errlen);

#endif
