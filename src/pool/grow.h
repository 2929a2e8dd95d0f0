/* SPDX-License-Identifier: MIT */
/*
 * grow.h -- growing a pool's heap in place (docs/FORMAT.md, "Growth").
 */
#ifndef VP_GROW_H
#define VP_GROW_H

#include <stdint.h>

struct vp_rt;

/* vp__heap_grow -- the heap side, one implicit FAS: move the page map into
 * the new pages, sized for all of them, and hand the rest to the
 * allocator. Runs at pmap() whenever the heap header has fewer pages than
 * the home image (also after a crash between the two sides). pre: mapped. */
int vp__heap_grow(struct vp_rt *rt);

#endif
