/* SPDX-License-Identifier: MIT */
/*
 * repair.c -- rebuild the allocator's derived metadata in a heap image
 * (`volipmem check --repair`), through the page-map helpers the allocator
 * uses (pagemap.h).
 *
 * What is trusted: the heap header's geometry and the tiling of the pages
 * below top into allocated blocks (a LARGE or RUN head followed by CONT
 * pages that point back at it) and free spans (a FREE head whose length
 * covers no block head). That tiling says which bytes belong to the
 * program, so it is never guessed: if it is broken, repair refuses.
 *
 * What is rebuilt from it: free-span tail tags and interior marks
 * (adjacent spans are merged), the size bins, `top` (a free span ending at
 * top is returned to the never-used area), each run's free list, free count
 * and bump index (a block is free iff it carries the free tag, which the
 * allocator writes on free and clears on allocation), the per-class lists
 * of runs with free blocks and the reserved words.
 * Roots are user data: if they are damaged, repair refuses.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "heap/heap.h"
#include "heap/pagemap.h"
#include "util/util.h"

static int refuse(char *why, size_t n, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int refuse(char *why, size_t n, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(why, n, fmt, ap);
	va_end(ap);
	return VP_E_HEAPCORRUPT;
}

/* block_len -- pages of the allocated block with its head at p, or 0 if p
 * is not a sound block head. */
static uint64_t block_len(const struct vp_pgent *pm, uint64_t p, uint64_t top)
{
	uint64_t n;
	if (pm[p].kind == VP_PG_LARGE)
		n = pm[p].n;
	else if (pm[p].kind == VP_PG_RUN && pm[p].cls < VP_NCLASS)
		n = VP_RUN_PAGES;
	else
		return 0;
	if (n == 0 || n > top - p)
		return 0;
	for (uint64_t i = 1; i < n; i++)
		if (pm[p + i].kind != VP_PG_CONT || pm[p + i].n != i)
			return 0;
	return n;
}

static bool is_head(uint8_t kind)
{
	return kind == VP_PG_FREE || kind == VP_PG_LARGE || kind == VP_PG_RUN || kind == VP_PG_META;
}

/* rebuild_run -- free list, nfree and bump of the run at page r. */
static void rebuild_run(uint8_t *img, struct vp_pgent *e, uint64_t r, struct vp_heap_repair *rep)
{
	uint32_t cap = vp__run_capacity(e->cls), sz = vp__class_size[e->cls];
	uint32_t bump = e->n & 0xffff;
	if (bump > cap)
		bump = cap; /* blocks past it then count as allocated: leaked, never lost */
	uint32_t head = 0, nfree = cap - bump;
	uint8_t *run = img + r * VP_PAGE;
	/* Link from the highest block down so the list comes out ascending. */
	for (uint32_t b = bump; b-- > 0;) {
		uint8_t *blk = run + (uint64_t)b * sz;
		uint64_t tag, off = (uint64_t)(blk - img);
		memcpy(&tag, blk + 8, sizeof tag);
		if (tag != (VP_FREE_TAG ^ off))
			continue;
		uint32_t link;
		memcpy(&link, blk, sizeof link);
		if (link != head) {
			memcpy(blk, &head, sizeof head);
			rep->links_fixed++;
		}
		head = b + 1;
		nfree++;
	}
	uint32_t n = (head << 16) | bump;
	if (n != e->n || nfree != e->nfree)
		rep->runs_fixed++;
	e->n = n;
	e->nfree = (uint16_t)nfree;
	e->prev = e->next = 0;
}

int vp__heap_repair(uint8_t *img, uint64_t heap_size, struct vp_heap_repair *rep, char *why, size_t whylen)
{
	struct vp_heaphdr *h = (void *)img;
	memset(rep, 0, sizeof *rep);
	uint64_t npages = heap_size / VP_PAGE;
	uint64_t pm_pg, pm_n;
	if (vp__heap_geometry(h, npages, &pm_pg, &pm_n) != 0)
		return refuse(why, whylen, "the heap header itself is damaged (magic, version, geometry or top): "
				      "the page map cannot be trusted");
	struct vp_pgent *pm = (void *)(img + h->pagemap_off);
	uint64_t top = h->top, meta = h->meta_pages;
	/* A page map moved by a growth sits inside the heap, below top. */
	uint64_t mlo = pm_pg == 1 ? 0 : pm_pg, mhi = pm_pg == 1 ? 0 : pm_pg + pm_n;
	for (uint64_t p = 0; p < meta; p++)
		if (pm[p].kind != VP_PG_META)
			return refuse(why, whylen, "page map entry %llu (a metadata page) is damaged", (unsigned long long)p);
	for (uint64_t p = mlo; p < mhi; p++)
		if (pm[p].kind != VP_PG_META)
			return refuse(why, whylen, "page map entry %llu (a page of the moved page map) is damaged",
				      (unsigned long long)p);

	/* Pass 1: the tiling. free[] marks pages of free spans. */
	uint8_t *isfree = calloc(top + 1, 1);
	if (!isfree)
		return refuse(why, whylen, "out of memory");
	for (uint64_t p = meta; p < top;) {
		if (p == mlo && mhi) {
			p = mhi;
			continue;
		}
		uint64_t n = block_len(pm, p, top);
		if (n) {
			p += n;
			continue;
		}
		if (pm[p].kind != VP_PG_FREE || pm[p].n == 0 || pm[p].n > top - p) {
			free(isfree);
			return refuse(why, whylen,
				      "page %llu (kind %u) is neither a sound block head nor a free span: which pages "
				      "belong to the program is unknown there",
				      (unsigned long long)p, pm[p].kind);
		}
		n = pm[p].n;
		if (mhi && p < mhi && p + n > mlo) {
			free(isfree);
			return refuse(why, whylen, "the free span at page %llu (%llu pages) covers the page map",
				      (unsigned long long)p, (unsigned long long)n);
		}
		for (uint64_t i = 1; i < n; i++)
			if (block_len(pm, p + i, top)) {
				/* A sound block head inside a span: one of them is
				 * wrong, and guessing could hand the block out twice. */
				free(isfree);
				return refuse(why, whylen,
					      "the free span at page %llu (%llu pages) covers the allocated block at page %llu",
					      (unsigned long long)p, (unsigned long long)n, (unsigned long long)(p + i));
			}
		memset(isfree + p, 1, n);
		p += n;
	}

	/* Pass 2: rebuild. */
	for (unsigned b = 0; b < VP_NBINS; b++)
		h->bin_head[b] = 0;
	for (unsigned c = 0; c < VP_NCLASS; c++)
		h->class_head[c] = 0;
	for (unsigned i = 0; i < 16; i++)
		if (h->reserved[i]) {
			h->reserved[i] = 0;
			rep->header_fixed++;
		}
	uint64_t newtop = top;
	/* The last free pages up to top go back to the never-used area. */
	while (newtop > meta && isfree[newtop - 1])
		newtop--;
	for (uint64_t p = newtop; p < top; p++)
		if (pm[p].kind == VP_PG_FREE || pm[p].kind == VP_PG_FTAIL)
			pm[p].kind = VP_PG_UNUSED;
	if (newtop != top)
		rep->top_lowered = top - newtop;
	for (uint64_t p = meta; p < newtop;) {
		if (p == mlo && mhi) {
			p = mhi;
			continue;
		}
		if (!isfree[p]) {
			uint64_t n = block_len(pm, p, newtop);
			if (pm[p].kind == VP_PG_RUN)
				rebuild_run(img, &pm[p], p, rep);
			p += n;
			continue;
		}
		uint64_t s = p;
		while (p < newtop && isfree[p])
			p++;
		uint64_t n = p - s;
		/* Interior pages: merged neighbours' heads and tails, and stale
		 * head kinds (pass 1 proved none is a sound block). */
		for (uint64_t i = 1; i + 1 < n; i++)
			if (is_head(pm[s + i].kind) || pm[s + i].kind == VP_PG_FTAIL) {
				if (pm[s + i].kind == VP_PG_FREE)
					rep->spans_merged++;
				pm[s + i].kind = VP_PG_INNER;
			}
		vp__span_link(h, pm, s, n);
		rep->spans++;
	}
	/* Class lists: runs with free blocks, highest page first, as pushes
	 * leave them. */
	for (uint64_t p = newtop; p-- > meta;) {
		if (isfree[p] || pm[p].kind != VP_PG_RUN || !block_len(pm, p, newtop) || pm[p].nfree == 0)
			continue;
		vp__run_push(h, pm, pm[p].cls, p);
	}
	free(isfree);
	h->top = newtop;

	struct vp_heap_report hr;
	char err[400];
	if (vp__heap_check(img, heap_size, &hr, err, sizeof err))
		return refuse(why, whylen, "after rebuilding the allocator metadata the heap still fails: %s", err);
	return 0;
}
