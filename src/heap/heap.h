/* SPDX-License-Identifier: MIT */
/*
 * heap.h -- the persistent allocator's internal interface, shared by the
 * allocator, the roots and the checker (which the CLI also uses on a pool
 * image read from a file).
 *
 * Layout inside the heap: page 0 is struct vp_heaphdr, then the page map
 * (one struct vp_pgent per heap page), then data pages. Small requests
 * (<= 8 KiB) come from 64 KiB runs of one size class; larger ones get whole
 * pages from free spans kept in size bins, carved from `top` when no span
 * fits. All metadata lives in the heap, so it is tracked and committed like
 * any other write: an allocation in a FAS that crashes is rolled back.
 */
#ifndef VP_HEAP_H
#define VP_HEAP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "pool/format.h"

extern const uint32_t vp__class_size[VP_NCLASS];

static inline uint32_t vp__run_capacity(unsigned cls)
{
	return (VP_RUN_PAGES * 4096u) / vp__class_size[cls];
}

static inline unsigned vp__bin_of(uint64_t n)
{
	if (n < 64)
		return (unsigned)n;
	unsigned b = 64 + (unsigned)(63 - __builtin_clzll(n)) - 6;
	return b < VP_NBINS ? b : VP_NBINS - 1;
}

static inline size_t vp__meta_pages(uint64_t npages)
{
	return 1 + (npages * sizeof(struct vp_pgent) + 4095) / 4096;
}

struct vp_heap_report {
	uint64_t npages, top, meta_pages;
	uint64_t used_bytes;          /* recomputed from the metadata          */
	uint64_t free_spans, free_pages;
	uint64_t large_blocks, runs, small_blocks;
	uint64_t roots;
	uint64_t problems;
	uint64_t growth_pending;      /* image pages not yet in the heap       */
};

/* vp__heap_check -- verify allocator metadata and roots of a heap image
 * whose heap would live at `base` (offsets are relative). Returns 0 or
 * VP_E_HEAPCORRUPT with the first problem in err. pre: img holds heap_size
 * readable bytes. */
int vp__heap_check(const uint8_t *img, uint64_t heap_size, struct vp_heap_report *rep, char *err, size_t errlen);

/* vp__heap_geometry -- validate a heap header against an image of
 * img_pages pages (check.c); 0 and the page map's first page and length, or
 * -1. The map is in the front metadata (page 1) until the heap first grows,
 * then in a META range inside the heap. h->npages < img_pages means a
 * growth whose heap-side FAS has not run yet (see docs/FORMAT.md). */
int vp__heap_geometry(const struct vp_heaphdr *h, uint64_t img_pages, uint64_t *pm_pg, uint64_t *pm_n);

/* vp__heap_format -- write a new heap's header and page map at img. */
int vp__heap_format(uint8_t *img, size_t heap_size);
/* struct vp_heap_repair -- what vp__heap_repair changed. */
struct vp_heap_repair {
	uint64_t spans;           /* free spans relinked into bins             */
	uint64_t spans_merged;    /* adjacent spans merged                     */
	uint64_t runs_fixed;      /* runs whose free count/list head changed   */
	uint64_t links_fixed;     /* free-list links rewritten                 */
	uint64_t top_lowered;     /* pages returned above top                  */
	uint64_t header_fixed;    /* reserved header words cleared             */
};

/* vp__heap_repair -- rebuild the allocator metadata of a heap image from
 * its block tiling (repair.c). Returns 0 when the image now passes
 * vp__heap_check, or VP_E_HEAPCORRUPT with the reason repair refuses in
 * why (the image may then be partly changed: work on a copy). */
int vp__heap_repair(uint8_t *img, uint64_t heap_size, struct vp_heap_repair *rep, char *why, size_t whylen);

/* vp__heap_validate -- the header check vp__heap_attach makes, on a header
 * anywhere (pmap runs it on the header as the log replay will leave it,
 * before anything is written). 0 or VP_E_HEAPCORRUPT with vp_errormsg(). */
int vp__heap_validate(const struct vp_heaphdr *h, uint64_t img_pages);
/* vp__heap_grow_check -- can a heap with header h grow to n2 pages (room
 * for the moved page map)? 0 or a code with vp_errormsg(). */
int vp__heap_grow_check(const struct vp_heaphdr *h, uint64_t n2);
/* vp__heap_grow -- the heap side of a growth (grow.c): move the page map
 * into the new pages, sized for all heap_pages, and hand the rest to the
 * allocator. Runs at pmap() whenever the header has fewer pages than the
 * home image (also after a crash between the two sides). pre: attached,
 * tracked, no FAS open. path: for messages. */
int vp__heap_grow(uint8_t *heap, uint64_t heap_pages, const char *path);
/* vp__heap_attach -- validate the header (vp__heap_geometry) and use the
 * heap at its address; vp__heap_detach forgets it. */
int vp__heap_attach(uint8_t *heap, size_t heap_size);
void vp__heap_detach(void);
/* vp__heap_mem -- the attached heap's base, NULL when none is. */
uint8_t *vp__heap_mem(void);
/* vp__heap_used -- bytes the attached heap has handed out (vp_stats). */
uint64_t vp__heap_used(void);

/* Internal allocation without the implicit FAS (the caller is in one). */
void *vp__alloc(size_t size);
void vp__free(void *p);
size_t vp__usable(const void *p);

#endif
