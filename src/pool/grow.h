/* SPDX-License-Identifier: MIT */
/*
 * grow.h -- growing a pool's heap in place (docs/FORMAT.md, "Growth").
 */
#ifndef VP_GROW_H
#define VP_GROW_H

#include <stdint.h>

struct vp_rt;

/* vp__pool_grow_file -- the file side: extend the file, zero the home
 * image's new pages (the old log area), switch superblock A then B to the
 * new layout, remap the pool. pre: recovered (log empty), heap not mapped.
 * new_size is rounded up to a page and to at least 1 MiB more. */
int vp__pool_grow_file(struct vp_rt *rt, uint64_t new_size);

/* vp__heap_grow -- the heap side, one implicit FAS: move the page map into
 * the new pages, sized for all of them, and hand the rest to the
 * allocator. Runs at pmap() whenever the heap header has fewer pages than
 * the home image (also after a crash between the two sides). pre: mapped. */
int vp__heap_grow(struct vp_rt *rt);

/* Test hook: stop vp__pool_grow_file after step n (1 file extended, 2 old
 * log zeroed, 3 superblock A written, 4 superblock B written) with an
 * error, as a crash there would; 0 = never. */
extern int vp__grow_stop_after;

#endif
