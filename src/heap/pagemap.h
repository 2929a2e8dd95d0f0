/* SPDX-License-Identifier: MIT */
/*
 * pagemap.h -- the page-map edits every writer of allocator metadata shares:
 * linking a free span into its bin, unlinking it, finding the free span
 * that ends just before a page, pushing a run on its class list. The
 * allocator (alloc.c), heap growth (grow.c) and `volipmem check --repair`
 * (repair.c) all edit the page map through these, on an explicit
 * header and page map, so the boundary-tag rules exist once.
 *
 * Every store here is also noted with VP_NOTE (vp__cc_note): the cc tracker
 * sees only instrumented code's stores, and the library is not built with
 * the instrumentation. The note is a compare when cc is not tracking (and
 * on repair's heap image, which is not the tracked heap).
 */
#ifndef VP_PAGEMAP_H
#define VP_PAGEMAP_H

#include <stdint.h>

#include "heap/heap.h"
#include "util/util.h"

/* VP_NOTE -- the library stored into lvalue x of the heap. */
#define VP_NOTE(x) vp__cc_note(&(x), sizeof(x))

/* vp__span_link -- make [s, s+n) one free span: head (FREE, n) and, for
 * n >= 2, tail (FTAIL, n) tags, pushed on the front of its size bin.
 * Interior pages are the caller's (they must not look like heads). */
static inline void vp__span_link(struct vp_heaphdr *h, struct vp_pgent *pm, uint64_t s, uint64_t n)
{
	unsigned b = vp__bin_of(n);
	uint32_t head = h->bin_head[b];
	pm[s] = (struct vp_pgent){.kind = VP_PG_FREE, .n = (uint32_t)n, .prev = 0, .next = head};
	if (n > 1)
		pm[s + n - 1] = (struct vp_pgent){.kind = VP_PG_FTAIL, .n = (uint32_t)n};
	VP_NOTE(pm[s]);
	if (n > 1)
		VP_NOTE(pm[s + n - 1]);
	if (head) {
		pm[head].prev = (uint32_t)s;
		VP_NOTE(pm[head]);
	}
	h->bin_head[b] = (uint32_t)s;
	VP_NOTE(h->bin_head[b]);
}

/* vp__span_unlink -- take the free span headed at s out of its bin. */
static inline void vp__span_unlink(struct vp_heaphdr *h, struct vp_pgent *pm, uint64_t s)
{
	unsigned b = vp__bin_of(pm[s].n);
	if (pm[s].prev) {
		pm[pm[s].prev].next = pm[s].next;
		VP_NOTE(pm[pm[s].prev]);
	} else {
		h->bin_head[b] = pm[s].next;
		VP_NOTE(h->bin_head[b]);
	}
	if (pm[s].next) {
		pm[pm[s].next].prev = pm[s].prev;
		VP_NOTE(pm[pm[s].next]);
	}
}

/* vp__span_left -- the head of the free span that ends just before page s
 * (read from its tail tag, or a one-page head), or 0 when there is none.
 * meta: the first page the allocator owns. */
static inline uint64_t vp__span_left(const struct vp_pgent *pm, uint64_t s, uint64_t meta)
{
	if (s <= meta)
		return 0;
	const struct vp_pgent *l = &pm[s - 1];
	uint64_t ls = l->kind == VP_PG_FTAIL && l->n <= s ? s - l->n : l->kind == VP_PG_FREE && l->n == 1 ? s - 1 : 0;
	if (!ls || ls < meta || pm[ls].kind != VP_PG_FREE || pm[ls].n != s - ls)
		return 0;
	return ls;
}

/* vp__run_push -- put the run at page r on the front of class c's list of
 * runs with free blocks. */
static inline void vp__run_push(struct vp_heaphdr *h, struct vp_pgent *pm, unsigned c, uint64_t r)
{
	uint32_t head = h->class_head[c];
	pm[r].prev = 0;
	pm[r].next = head;
	VP_NOTE(pm[r]);
	if (head) {
		pm[head].prev = (uint32_t)r;
		VP_NOTE(pm[head]);
	}
	h->class_head[c] = (uint32_t)r;
	VP_NOTE(h->class_head[c]);
}

#endif
