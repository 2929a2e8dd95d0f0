/* SPDX-License-Identifier: MIT */
/*
 * check.c -- verify a heap image: header, page map tiling, free-span bins,
 * runs and their free lists, per-class run lists (adding up the bytes in
 * use: format version 5 keeps no count of them in the pool),
 * roots. Works on any copy of the heap (offsets only), so `volipmem check`
 * runs it on a file without mapping the heap at its address. Never writes.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "heap/heap.h"
#include "util/util.h"

struct ck {
	const uint8_t *img;
	const struct vp_heaphdr *h;
	const struct vp_pgent *pm;
	uint64_t npages, top;
	uint8_t *mark;          /* per page: 1 free head, 2 run head        */
	char *err;
	size_t errlen;
	int bad;
};

static int fail(struct ck *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int fail(struct ck *c, const char *fmt, ...)
{
	if (!c->bad) {
		va_list ap;
		va_start(ap, fmt);
		vsnprintf(c->err, c->errlen, fmt, ap);
		va_end(ap);
	}
	c->bad++;
	return VP_E_HEAPCORRUPT;
}

static int check_run(struct ck *c, uint64_t p, struct vp_heap_report *rep)
{
	const struct vp_pgent *e = &c->pm[p];
	if (e->cls >= VP_NCLASS)
		return fail(c, "run at page %llu: size class %u out of range", (unsigned long long)p, e->cls);
	uint32_t cap = vp__run_capacity(e->cls), sz = vp__class_size[e->cls];
	uint32_t fh = e->n >> 16, bump = e->n & 0xffff;
	if (bump > cap || fh > bump || e->nfree > cap)
		return fail(c, "run at page %llu: bump %u, free head %u, nfree %u exceed capacity %u",
			    (unsigned long long)p, bump, fh, e->nfree, cap);
	uint8_t seen[4096 / 8];
	memset(seen, 0, sizeof seen);
	uint32_t len = 0;
	for (uint32_t b = fh; b; len++) {
		uint32_t i = b - 1;
		if (i >= bump || len > cap)
			return fail(c, "run at page %llu: free list leaves the used blocks or loops",
				    (unsigned long long)p);
		if (seen[i / 8] & (1u << (i % 8)))
			return fail(c, "run at page %llu: block %u is on the free list twice", (unsigned long long)p, i);
		seen[i / 8] |= (uint8_t)(1u << (i % 8));
		const uint8_t *blk = c->img + p * VP_PAGE + (uint64_t)i * sz;
		uint64_t tag;
		memcpy(&tag, blk + 8, sizeof tag);
		if (tag != (VP_FREE_TAG ^ (uint64_t)(blk - c->img)))
			return fail(c, "run at page %llu: free block %u lost its free tag (written after free?)",
				    (unsigned long long)p, i);
		memcpy(&b, blk, sizeof b);
	}
	if (e->nfree != (cap - bump) + len)
		return fail(c, "run at page %llu: nfree %u but %u blocks free", (unsigned long long)p, e->nfree,
			    (cap - bump) + len);
	rep->small_blocks += cap - e->nfree;
	rep->used_bytes += (uint64_t)(cap - e->nfree) * sz;
	return 0;
}

/* block_allocated -- is off the start of a live block? */
static bool block_allocated(struct ck *c, uint64_t off, uint64_t *usable)
{
	uint64_t pg = off / VP_PAGE;
	if (off == 0 || pg < c->h->meta_pages || pg >= c->top)
		return false;
	const struct vp_pgent *e = &c->pm[pg];
	uint64_t head = pg;
	if (e->kind == VP_PG_CONT && e->n < VP_RUN_PAGES && pg >= e->n && c->pm[pg - e->n].kind == VP_PG_RUN)
		head = pg - e->n;
	e = &c->pm[head];
	if (e->kind == VP_PG_LARGE) {
		*usable = (uint64_t)e->n * VP_PAGE;
		return off % VP_PAGE == 0 && head == pg;
	}
	if (e->kind != VP_PG_RUN || e->cls >= VP_NCLASS)
		return false;
	uint32_t sz = vp__class_size[e->cls];
	uint64_t in = off - head * VP_PAGE;
	if (in % sz || in / sz >= (e->n & 0xffff))
		return false;
	uint64_t tag;
	memcpy(&tag, c->img + off + 8, sizeof tag);
	*usable = sz;
	return tag != (VP_FREE_TAG ^ off);
}

static int check_roots(struct ck *c, struct vp_heap_report *rep)
{
	uint64_t off = c->h->roots_head, last = 0, n = 0, heap = c->npages * VP_PAGE;
	/* Each record fills an allocated block of its own, so a count beyond
	 * this is damage; checking it first keeps a looping list from being
	 * walked up to a hostile nroots (found by the fuzzer as a hang). */
	if (c->h->nroots > heap / sizeof(struct vp_root))
		return fail(c, "heap header counts %llu roots, more than the heap can hold (%llu)",
			    (unsigned long long)c->h->nroots, (unsigned long long)(heap / sizeof(struct vp_root)));
	while (off) {
		uint64_t us;
		if (off > heap - sizeof(struct vp_root) || !block_allocated(c, off, &us) || us < sizeof(struct vp_root))
			return fail(c, "root record %llu at offset %#llx is not an allocated block",
				    (unsigned long long)n, (unsigned long long)off);
		struct vp_root r;
		memcpy(&r, c->img + off, sizeof r);
		if (r.magic != VP_ROOTS_MAGIC || !memchr(r.name, 0, sizeof r.name))
			return fail(c, "root record at offset %#llx is damaged", (unsigned long long)off);
		if (!block_allocated(c, r.obj, &us) || us < r.size)
			return fail(c, "root \"%s\": object at offset %#llx (%llu bytes) is not an allocated block",
				    r.name, (unsigned long long)r.obj, (unsigned long long)r.size);
		if (++n > c->h->nroots)
			return fail(c, "root list longer than nroots (%llu) or looping", (unsigned long long)c->h->nroots);
		last = off;
		off = r.next;
	}
	if (n != c->h->nroots || last != c->h->roots_tail)
		return fail(c, "root list has %llu records, header says %llu (tail %#llx vs %#llx)",
			    (unsigned long long)n, (unsigned long long)c->h->nroots, (unsigned long long)last,
			    (unsigned long long)c->h->roots_tail);
	rep->roots = n;
	return 0;
}

int vp__heap_geometry(const struct vp_heaphdr *h, uint64_t img_pages, uint64_t *pm_pg, uint64_t *pm_n)
{
	uint64_t n = h->npages;
	if (h->magic != VP_HEAP_MAGIC || h->version != VP_HEAP_VERSION || n > img_pages || n < 2 ||
	    h->pagemap_off % VP_PAGE || h->top > n || h->top < h->meta_pages || h->meta_pages < 2)
		return -1;
	uint64_t pg = h->pagemap_off / VP_PAGE, m = (n * sizeof(struct vp_pgent) + VP_PAGE - 1) / VP_PAGE;
	if (pg == 1) {
		if (h->meta_pages != vp__meta_pages(n))
			return -1;
	} else if (pg < h->meta_pages || pg > h->top || m > h->top - pg) {
		return -1;
	}
	*pm_pg = pg;
	*pm_n = m;
	return 0;
}

int vp__heap_check(const uint8_t *img, uint64_t heap_size, struct vp_heap_report *rep, char *err, size_t errlen)
{
	struct ck c = {.img = img, .h = (const void *)img, .err = err, .errlen = errlen};
	memset(rep, 0, sizeof *rep);
	err[0] = 0;
	c.npages = heap_size / VP_PAGE;
	const struct vp_heaphdr *h = c.h;
	uint64_t pm_pg, pm_n;
	if (h->magic != VP_HEAP_MAGIC || h->version != VP_HEAP_VERSION)
		return fail(&c, "heap header: bad magic %#llx or version %u", (unsigned long long)h->magic, h->version);
	if (vp__heap_geometry(h, c.npages, &pm_pg, &pm_n) != 0)
		return fail(&c, "heap header: npages %llu, meta %u, page map at %#llx, top %llu do not fit a %llu-page heap",
			    (unsigned long long)h->npages, h->meta_pages, (unsigned long long)h->pagemap_off,
			    (unsigned long long)h->top, (unsigned long long)c.npages);
	/* npages below the image's: a growth in progress; the pages above are
	 * not the allocator's yet. */
	rep->growth_pending = c.npages - h->npages;
	c.npages = h->npages;
	for (unsigned i = 0; i < 16; i++)
		if (h->reserved[i])
			return fail(&c, "heap header: reserved word %u is not zero", i);
	c.pm = (const void *)(img + h->pagemap_off);
	c.top = h->top;
	rep->npages = c.npages;
	rep->top = c.top;
	rep->meta_pages = h->meta_pages;
	c.mark = calloc(c.npages, 1);
	if (!c.mark)
		return fail(&c, "out of memory checking %llu pages", (unsigned long long)c.npages);
	const struct vp_pgent *pm = c.pm;
	int rc = 0;
	for (uint64_t p = 0; p < h->meta_pages && !rc; p++)
		if (pm[p].kind != VP_PG_META)
			rc = fail(&c, "page %llu: metadata page not marked as such", (unsigned long long)p);
	uint64_t runs_free[VP_NCLASS] = {0};
	for (uint64_t p = h->meta_pages; p < c.top && !rc;) {
		const struct vp_pgent *e = &pm[p];
		uint64_t n = e->n;
		switch (e->kind) {
		case VP_PG_FREE:
			if (n == 0 || n > c.top - p) {
				rc = fail(&c, "free span at page %llu: length %llu runs past top %llu",
					  (unsigned long long)p, (unsigned long long)n, (unsigned long long)c.top);
				break;
			}
			if (n > 1 && (pm[p + n - 1].kind != VP_PG_FTAIL || pm[p + n - 1].n != n)) {
				rc = fail(&c, "free span at page %llu: tail tag missing", (unsigned long long)p);
				break;
			}
			for (uint64_t i = 1; i + 1 < n && !rc; i++)
				if (pm[p + i].kind == VP_PG_FREE || pm[p + i].kind == VP_PG_LARGE ||
				    pm[p + i].kind == VP_PG_RUN || pm[p + i].kind == VP_PG_META)
					rc = fail(&c, "page %llu inside the free span at %llu is marked as a block",
						  (unsigned long long)(p + i), (unsigned long long)p);
			c.mark[p] = 1;
			rep->free_spans++;
			rep->free_pages += n;
			p += n;
			break;
		case VP_PG_LARGE:
		case VP_PG_RUN:
			if (e->kind == VP_PG_RUN)
				n = VP_RUN_PAGES;
			if (n == 0 || n > c.top - p) {
				rc = fail(&c, "block at page %llu: %llu pages run past top %llu", (unsigned long long)p,
					  (unsigned long long)n, (unsigned long long)c.top);
				break;
			}
			for (uint64_t i = 1; i < n && !rc; i++)
				if (pm[p + i].kind != VP_PG_CONT || pm[p + i].n != i)
					rc = fail(&c, "block at page %llu: page %llu is not marked as its part (overlap?)",
						  (unsigned long long)p, (unsigned long long)(p + i));
			if (rc)
				break;
			if (e->kind == VP_PG_RUN) {
				rc = check_run(&c, p, rep);
				rep->runs++;
				c.mark[p] = 2;
				if (!rc && e->nfree) /* rc: cls may be out of range */
					runs_free[e->cls]++;
			} else {
				rep->large_blocks++;
				rep->used_bytes += n * VP_PAGE;
			}
			p += n;
			break;
		case VP_PG_META:
			/* The page map, moved into the heap by a growth. */
			if (p == pm_pg && pm_pg != 1) {
				for (uint64_t i = 0; i < pm_n && !rc; i++)
					if (pm[p + i].kind != VP_PG_META)
						rc = fail(&c, "page %llu of the page map is not marked as metadata",
							  (unsigned long long)(p + i));
				p += pm_n;
				break;
			}
			rc = fail(&c, "page %llu: a metadata page outside the header and page map", (unsigned long long)p);
			break;
		default:
			rc = fail(&c, "page %llu: kind %u where a block or free span should start",
				  (unsigned long long)p, e->kind);
		}
	}
	/* Every free span is in the bin its length says, exactly once. */
	uint64_t listed = 0;
	for (unsigned b = 0; b < VP_NBINS && !rc; b++) {
		uint32_t prev = 0;
		/* Stop at the first bad entry: its next link must not be
		 * followed (it may point anywhere). */
		for (uint32_t s = h->bin_head[b]; s && !rc; prev = s, s = rc ? 0 : pm[s].next) {
			if (s >= c.top || c.mark[s] != 1)
				rc = fail(&c, "bin %u lists page %u, which is not a free span (or lists it twice)", b, s);
			else if (vp__bin_of(pm[s].n) != b || pm[s].prev != prev)
				rc = fail(&c, "bin %u: span at page %u has length %u or a broken back link", b, s, pm[s].n);
			else {
				c.mark[s] = 3;
				listed++;
			}
		}
	}
	if (!rc && listed != rep->free_spans)
		rc = fail(&c, "%llu free spans are in no bin (leaked pages)",
			  (unsigned long long)(rep->free_spans - listed));
	for (unsigned k = 0; k < VP_NCLASS && !rc; k++) {
		uint32_t prev = 0;
		uint64_t cnt = 0;
		for (uint32_t r = h->class_head[k]; r && !rc; prev = r, r = rc ? 0 : pm[r].next) {
			if (r >= c.top || c.mark[r] != 2 || pm[r].cls != k || pm[r].nfree == 0 || pm[r].prev != prev)
				rc = fail(&c, "class %u list: page %u is not a run of that class with free blocks", k, r);
			else {
				c.mark[r] = 4;
				cnt++;
			}
		}
		if (!rc && cnt != runs_free[k])
			rc = fail(&c, "class %u: %llu runs with free blocks are not on its list", k,
				  (unsigned long long)(runs_free[k] - cnt));
	}
	if (!rc)
		rc = check_roots(&c, rep);
	free(c.mark);
	rep->problems = (uint64_t)c.bad;
	return rc;
}
