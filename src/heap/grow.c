/* SPDX-License-Identifier: MIT */
/*
 * grow.c -- the heap side of growing a pool in place (docs/FORMAT.md,
 * "Growth"), one implicit FAS through the normal commit, after the file
 * side (pool/grow.c) has made the home image larger: the page map moves to
 * the first new page, sized for every page, the pages between top and it
 * become a free span (so does a previous moved map), top moves past it, the
 * header says the new page count. A crash before that commit leaves a heap
 * header with fewer pages than the home image, which pmap() finishes.
 */
#include <string.h>

#include "heap/heap.h"
#include "heap/pagemap.h"
#include "util/util.h"

/* span -- make [s, s+n) a free span; interior pages that were ever used
 * become INNER so none looks like a head. */
static void span(struct vp_heaphdr *h, struct vp_pgent *pm, uint64_t s, uint64_t n)
{
	for (uint64_t i = 1; i + 1 < n; i++)
		if (pm[s + i].kind != VP_PG_UNUSED) {
			pm[s + i].kind = VP_PG_INNER;
			VP_NOTE(pm[s + i]);
		}
	vp__span_link(h, pm, s, n);
}

/* merge_left -- if a free span ends just before page s, take it out of
 * its bin and return its start (the caller makes one span of both). */
static uint64_t merge_left(struct vp_heaphdr *h, struct vp_pgent *pm, uint64_t s)
{
	uint64_t ls = vp__span_left(pm, s, h->meta_pages);
	if (!ls)
		return s;
	vp__span_unlink(h, pm, ls);
	pm[s - 1].kind = VP_PG_INNER;
	pm[ls].kind = VP_PG_INNER;
	VP_NOTE(pm[s - 1]);
	VP_NOTE(pm[ls]);
	return ls;
}

int vp__heap_grow_check(const struct vp_heaphdr *h, uint64_t n2)
{
	uint64_t n1 = h->npages, m = (n2 * sizeof(struct vp_pgent) + VP_PAGE - 1) / VP_PAGE;
	if (n2 > n1 && n2 - n1 < m + 1)
		return vp__err(VP_E_INVAL, "heap growth from %llu to %llu pages leaves no room for its page map",
			       (unsigned long long)n1, (unsigned long long)n2);
	return 0;
}

int vp__heap_grow(uint8_t *heap, uint64_t heap_pages, const char *path)
{
	struct vp_heaphdr *h = (void *)heap;
	uint64_t n1 = h->npages, n2 = heap_pages;
	if (n1 >= n2)
		return 0;
	uint64_t m = (n2 * sizeof(struct vp_pgent) + VP_PAGE - 1) / VP_PAGE;
	uint64_t opg = h->pagemap_off / VP_PAGE, om = (n1 * sizeof(struct vp_pgent) + VP_PAGE - 1) / VP_PAGE;
	int rc;
	if ((rc = vp__heap_grow_check(h, n2)))
		return rc;
	vp__diag(1, "pool %s: heap side of the growth: %llu -> %llu pages, page map moves to page %llu", path,
		(unsigned long long)n1, (unsigned long long)n2, (unsigned long long)n1);
	pstart();
	struct vp_pgent *npm = (void *)(heap + n1 * VP_PAGE);
	memcpy(npm, heap + h->pagemap_off, n1 * sizeof *npm);
	memset(npm + n1, 0, (n2 - n1) * sizeof *npm);
	for (uint64_t i = n1; i < n1 + m; i++)
		npm[i] = (struct vp_pgent){.kind = VP_PG_META};
	vp__cc_note(npm, (n1 + m) * sizeof *npm > n2 * sizeof *npm ? (n1 + m) * sizeof *npm : n2 * sizeof *npm);
	uint64_t top = h->top;
	if (opg != 1 && opg + om == top) {
		/* The previous moved map sits just below top: one span. */
		uint64_t s0 = merge_left(h, npm, opg);
		span(h, npm, s0, n1 - s0);
	} else {
		if (opg != 1) {
			uint64_t s0 = merge_left(h, npm, opg);
			span(h, npm, s0, opg + om - s0);
		}
		if (top < n1) {
			uint64_t s0 = merge_left(h, npm, top);
			span(h, npm, s0, n1 - s0);
		}
	}
	h->pagemap_off = n1 * VP_PAGE;
	h->top = n1 + m;
	h->npages = n2;
	vp__cc_note(h, sizeof *h);
	rc = pend();
	vp__heap_detach();
	int rc2 = vp__heap_attach(heap, heap_pages * VP_PAGE);
	return rc ? rc : rc2;
}
