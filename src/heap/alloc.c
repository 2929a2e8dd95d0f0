/* SPDX-License-Identifier: MIT */
/*
 * alloc.c -- pmalloc/pfree/pcalloc/prealloc on the persistent heap.
 *
 * Small blocks: one run (16 pages) per size class at a time is filled by a
 * bump index, freed blocks go on a free list threaded through the blocks
 * (first word: next index + 1; second word: a tag that catches double
 * frees). Runs with free blocks are linked per class. Each class has its own
 * volatile mutex, so threads allocating different sizes never contend.
 * Pages: free spans carry boundary tags in the page map (head and tail) so
 * neighbours coalesce in O(1); spans are binned by size (exact below 64
 * pages, by power of two above); `top` bounds the pages ever used.
 *
 * Every public call is an implicit FAS (pstart/pend around it); pstart runs
 * before any allocator lock is taken (see the DEADLOCK RULE in volipmem.h).
 */
#include <errno.h>
#include <pthread.h>
#include <string.h>

#include "heap/heap.h"
#include "heap/pagemap.h"
#include "util/util.h"

const uint32_t vp__class_size[VP_NCLASS] = {
	16,   32,   48,   64,   80,   96,   112,  128,  160,  192,  224,  256,  320,  384,  448,  512,
	640,  768,  896,  1024, 1280, 1536, 1792, 2048, 2560, 3072, 3584, 4096, 5120, 6144, 7168, 8192,
};

static struct {
	uint8_t *base;
	struct vp_heaphdr *h;
	struct vp_pgent *pm;
	uint64_t npages, meta;
	pthread_mutex_t cls_mu[VP_NCLASS];
	pthread_mutex_t page_mu;
	uint8_t class_of16[VP_SMALL_MAX / 16 + 1];  /* (size+15)/16 -> class */
	uint64_t used;      /* bytes handed out: kept here, not in the pool  */
} H = {.page_mu = PTHREAD_MUTEX_INITIALIZER};

int vp__heap_format(uint8_t *img, size_t heap_size)
{
	uint64_t npages = heap_size / VP_PAGE;
	size_t meta = vp__meta_pages(npages);
	if (meta + VP_RUN_PAGES > npages)
		return vp__err(VP_E_TOOSMALL, "heap of %zu bytes is too small for its own metadata", heap_size);
	struct vp_heaphdr *h = (void *)img;
	memset(h, 0, sizeof *h);
	h->magic = VP_HEAP_MAGIC;
	h->version = VP_HEAP_VERSION;
	h->meta_pages = (uint32_t)meta;
	h->npages = npages;
	h->pagemap_off = VP_PAGE;
	h->top = meta;
	struct vp_pgent *pm = (void *)(img + VP_PAGE);
	for (size_t i = 0; i < meta; i++)
		pm[i] = (struct vp_pgent){.kind = VP_PG_META};
	return 0;
}

int vp__heap_validate(const struct vp_heaphdr *h, uint64_t img_pages)
{
	uint64_t pm_pg, pm_n;
	/* A header with fewer pages than the image: a growth whose heap side
	 * has not run yet; the heap is used at its old size until it does. */
	if (vp__heap_geometry(h, img_pages, &pm_pg, &pm_n) != 0)
		return vp__err(VP_E_HEAPCORRUPT,
			       "heap header is invalid (magic %#llx, version %u, %llu pages, top %llu; the image has %llu pages)",
			       (unsigned long long)h->magic, h->version, (unsigned long long)h->npages,
			       (unsigned long long)h->top, (unsigned long long)img_pages);
	return 0;
}

/* bytes_in_use -- what the attached heap's blocks add up to, from the
 * page map. Format version 5 keeps no count in the pool: a count in the
 * heap header put the header's page into the write set of every commit
 * that allocates or frees (one page of the four of a hash-table insert,
 * of the six of a TinyDB insert). A walk of block heads, at pmap. */
static uint64_t bytes_in_use(void)
{
	uint64_t used = 0;
	for (uint64_t p = H.meta; p < H.h->top && p < H.npages;) {
		const struct vp_pgent *e = &H.pm[p];
		uint64_t n = 1;
		if (e->kind == VP_PG_RUN && e->cls < VP_NCLASS) {
			uint32_t cap = vp__run_capacity(e->cls);
			used += (uint64_t)(e->nfree < cap ? cap - e->nfree : 0) * vp__class_size[e->cls];
			n = VP_RUN_PAGES;
		} else if (e->kind == VP_PG_LARGE || e->kind == VP_PG_FREE) {
			if (e->kind == VP_PG_LARGE)
				used += (uint64_t)e->n * VP_PAGE;
			n = e->n ? e->n : 1;
		}
		p += n;
	}
	return used;
}

uint64_t vp__heap_used(void) { return H.base ? __atomic_load_n(&H.used, __ATOMIC_RELAXED) : 0; }

int vp__heap_attach(uint8_t *heap, size_t heap_size)
{
	struct vp_heaphdr *h = (void *)heap;
	int rc = vp__heap_validate(h, heap_size / VP_PAGE);
	if (rc)
		return rc;
	H.base = heap;
	H.h = h;
	H.pm = (void *)(heap + h->pagemap_off);
	H.npages = h->npages;
	H.meta = h->meta_pages;
	H.used = bytes_in_use();
	for (unsigned c = 0; c < VP_NCLASS; c++)
		pthread_mutex_init(&H.cls_mu[c], NULL);
	pthread_mutex_init(&H.page_mu, NULL);
	unsigned c = 0;
	for (unsigned i = 0; i <= VP_SMALL_MAX / 16; i++) {
		while (vp__class_size[c] < i * 16)
			c++;
		H.class_of16[i] = (uint8_t)c;
	}
	return 0;
}

uint8_t *vp__heap_mem(void) { return H.base; }

void vp__heap_detach(void)
{
	H.base = NULL;
	H.h = NULL;
	H.pm = NULL;
}

/* ---------------- page spans (under page_mu) ---------------- */

static void span_link(uint64_t s, uint64_t n) { vp__span_link(H.h, H.pm, s, n); }
static void span_unlink(uint64_t s) { vp__span_unlink(H.h, H.pm, s); }

/* pages_alloc -- n contiguous pages, or 0 when the heap is full. */
static uint32_t pages_alloc(uint64_t n)
{
	struct vp_pgent *pm = H.pm;
	unsigned b = vp__bin_of(n);
	uint32_t s = 0;
	for (; b < 64 && !s; b++)
		s = H.h->bin_head[b];
	for (; b < VP_NBINS && !s; b++)
		for (uint32_t x = H.h->bin_head[b]; x; x = pm[x].next)
			if (pm[x].n >= n) {
				s = x;
				break;
			}
	if (s) {
		uint64_t m = pm[s].n;
		span_unlink(s);
		if (m > n)
			span_link(s + n, m - n);
		return s;
	}
	if (H.h->top + n > H.npages)
		return 0;
	s = (uint32_t)H.h->top;
	H.h->top += n;
	VP_NOTE(H.h->top);
	return s;
}

/* pages_free -- return [s, s+n) and coalesce with free neighbours. */
static void pages_free(uint64_t s, uint64_t n)
{
	struct vp_pgent *pm = H.pm;
	uint64_t ls = vp__span_left(pm, s, H.meta);
	if (ls) {
		span_unlink(ls);
		pm[s - 1].kind = VP_PG_INNER;
		pm[s].kind = VP_PG_INNER;
		VP_NOTE(pm[s - 1]);
		VP_NOTE(pm[s]);
		n += s - ls;
		s = ls;
	}
	uint64_t r = s + n;
	if (r < H.h->top && pm[r].kind == VP_PG_FREE) {
		uint64_t rn = pm[r].n;
		span_unlink(r);
		pm[r].kind = VP_PG_INNER;
		VP_NOTE(pm[r]);
		if (n > 1) {
			pm[r - 1].kind = VP_PG_INNER;
			VP_NOTE(pm[r - 1]);
		}
		n += rn;
	}
	if (s + n == H.h->top) {
		H.h->top = s;
		pm[s].kind = VP_PG_UNUSED;
		VP_NOTE(H.h->top);
		VP_NOTE(pm[s]);
		if (n > 1) {
			pm[s + n - 1].kind = VP_PG_UNUSED;
			VP_NOTE(pm[s + n - 1]);
		}
		return;
	}
	span_link(s, n);
}

/* ---------------- small blocks (under cls_mu[c]) ---------------- */

static void run_list_remove(unsigned c, uint32_t r)
{
	struct vp_pgent *pm = H.pm;
	if (pm[r].prev) {
		pm[pm[r].prev].next = pm[r].next;
		VP_NOTE(pm[pm[r].prev]);
	} else {
		H.h->class_head[c] = pm[r].next;
		VP_NOTE(H.h->class_head[c]);
	}
	if (pm[r].next) {
		pm[pm[r].next].prev = pm[r].prev;
		VP_NOTE(pm[pm[r].next]);
	}
	pm[r].prev = pm[r].next = 0;
	VP_NOTE(pm[r]);
}

static void run_list_push(unsigned c, uint32_t r) { vp__run_push(H.h, H.pm, c, r); }

static void *small_alloc(unsigned c)
{
	struct vp_pgent *pm = H.pm;
	uint32_t sz = vp__class_size[c];
	pthread_mutex_lock(&H.cls_mu[c]);
	uint32_t r = H.h->class_head[c];
	if (!r) {
		pthread_mutex_lock(&H.page_mu);
		r = pages_alloc(VP_RUN_PAGES);
		pthread_mutex_unlock(&H.page_mu);
		if (!r) {
			pthread_mutex_unlock(&H.cls_mu[c]);
			return NULL;
		}
		pm[r] = (struct vp_pgent){.kind = VP_PG_RUN, .cls = (uint8_t)c,
					  .nfree = (uint16_t)vp__run_capacity(c)};
		for (uint32_t i = 1; i < VP_RUN_PAGES; i++)
			pm[r + i] = (struct vp_pgent){.kind = VP_PG_CONT, .n = i};
		vp__cc_note(&pm[r], VP_RUN_PAGES * sizeof *pm);
		run_list_push(c, r);
	}
	struct vp_pgent *e = &pm[r];
	uint8_t *run = H.base + (uint64_t)r * VP_PAGE;
	uint32_t fh = e->n >> 16, bump = e->n & 0xffff, b;
	if (fh) {
		b = fh - 1;
		uint8_t *blk = run + (uint64_t)b * sz;
		uint32_t next;
		memcpy(&next, blk, sizeof next);
		memset(blk, 0, 16); /* drop the link and the free tag */
		vp__cc_note(blk, 16);
		e->n = (next << 16) | bump;
	} else {
		b = bump++;
		e->n = (fh << 16) | bump;
		/* A recycled run may hold an old free tag here. */
		memset(run + (uint64_t)b * sz, 0, 16);
		vp__cc_note(run + (uint64_t)b * sz, 16);
	}
	if (--e->nfree == 0)
		run_list_remove(c, r);
	__atomic_fetch_add(&H.used, sz, __ATOMIC_RELAXED);
	VP_NOTE(*e);
	pthread_mutex_unlock(&H.cls_mu[c]);
	return run + (uint64_t)b * sz;
}

static void small_free(uint32_t r, uint8_t *p)
{
	struct vp_pgent *pm = H.pm;
	unsigned c = pm[r].cls;
	uint32_t sz = vp__class_size[c];
	uint8_t *run = H.base + (uint64_t)r * VP_PAGE;
	uint64_t off = (uint64_t)(p - run);
	pthread_mutex_lock(&H.cls_mu[c]);
	struct vp_pgent *e = &pm[r];
	uint32_t b = (uint32_t)(off / sz), fh = e->n >> 16, bump = e->n & 0xffff;
	uint64_t tag;
	memcpy(&tag, p + 8, sizeof tag);
	if (e->kind != VP_PG_RUN || off % sz || b >= bump ||
	    tag == (VP_FREE_TAG ^ (uint64_t)(p - H.base))) {
		pthread_mutex_unlock(&H.cls_mu[c]);
		vp__misuse(VP_E_INVAL, "pfree(%p): not an allocated block (double free or interior pointer)",
			   (void *)p);
		return;
	}
	uint32_t next = fh;
	memcpy(p, &next, sizeof next);
	tag = VP_FREE_TAG ^ (uint64_t)(p - H.base);
	memcpy(p + 8, &tag, sizeof tag);
	vp__cc_note(p, 16);
	e->n = ((b + 1) << 16) | bump;
	__atomic_fetch_sub(&H.used, sz, __ATOMIC_RELAXED);
	if (e->nfree++ == 0)
		run_list_push(c, r);
	VP_NOTE(*e);
	if (e->nfree == vp__run_capacity(c) && (H.h->class_head[c] != r || e->next)) {
		/* Entirely free: give it back, unless it is the class's only run
		 * (keeps a free/alloc loop from churning pages). */
		run_list_remove(c, r);
		pthread_mutex_lock(&H.page_mu);
		pages_free(r, VP_RUN_PAGES);
		pthread_mutex_unlock(&H.page_mu);
	}
	pthread_mutex_unlock(&H.cls_mu[c]);
}

/* ---------------- entry points ---------------- */

void *vp__alloc(size_t size)
{
	if (size == 0)
		size = 1;
	if (size <= VP_SMALL_MAX)
		return small_alloc(H.class_of16[(size + 15) / 16]);
	if (size > (H.npages - H.meta) * VP_PAGE) {
		errno = ENOMEM;
		return NULL;
	}
	uint64_t n = (size + VP_PAGE - 1) / VP_PAGE;
	pthread_mutex_lock(&H.page_mu);
	uint32_t s = pages_alloc(n);
	if (s) {
		struct vp_pgent *pm = H.pm;
		pm[s] = (struct vp_pgent){.kind = VP_PG_LARGE, .n = (uint32_t)n};
		for (uint64_t i = 1; i < n; i++)
			pm[s + i] = (struct vp_pgent){.kind = VP_PG_CONT, .n = (uint32_t)i};
		vp__cc_note(&pm[s], n * sizeof *pm);
		__atomic_fetch_add(&H.used, n * VP_PAGE, __ATOMIC_RELAXED);
	}
	pthread_mutex_unlock(&H.page_mu);
	if (!s) {
		errno = ENOMEM;
		return NULL;
	}
	return H.base + (uint64_t)s * VP_PAGE;
}

/* locate -- the head page of the block holding p, or 0 (with a message)
 * when p is not the start of an allocated block. */
static uint64_t locate(const void *p, const char *who)
{
	uint64_t off = (uint64_t)((const uint8_t *)p - H.base);
	uint64_t pg = off / VP_PAGE;
	if (!H.base || (const uint8_t *)p < H.base || pg >= H.npages) {
		vp__misuse(VP_E_INVAL, "%s(%p): not a pointer into the persistent heap", who, p);
		return 0;
	}
	if (pg < H.meta || pg >= H.h->top) {
		vp__misuse(VP_E_INVAL, "%s(%p): not an allocated block", who, p);
		return 0;
	}
	struct vp_pgent *e = &H.pm[pg];
	if (e->kind == VP_PG_CONT && e->n < VP_RUN_PAGES && pg >= e->n && H.pm[pg - e->n].kind == VP_PG_RUN)
		return pg - e->n;
	if (e->kind == VP_PG_RUN || (e->kind == VP_PG_LARGE && off % VP_PAGE == 0))
		return pg;
	vp__misuse(VP_E_INVAL, "%s(%p): not an allocated block (double free or interior pointer)", who, p);
	return 0;
}

void vp__free(void *p)
{
	uint64_t h = locate(p, "pfree");
	if (!h)
		return;
	if (H.pm[h].kind == VP_PG_RUN) {
		small_free((uint32_t)h, p);
		return;
	}
	pthread_mutex_lock(&H.page_mu);
	if (H.pm[h].kind == VP_PG_LARGE) { /* re-check under the lock */
		uint64_t n = H.pm[h].n;
		__atomic_fetch_sub(&H.used, n * VP_PAGE, __ATOMIC_RELAXED);
		pages_free(h, n);
	}
	pthread_mutex_unlock(&H.page_mu);
}

size_t vp__usable(const void *p)
{
	uint64_t off = (uint64_t)((const uint8_t *)p - H.base);
	uint64_t pg = off / VP_PAGE;
	if (!H.base || (const uint8_t *)p < H.base || pg < H.meta || pg >= H.h->top)
		return 0;
	struct vp_pgent *e = &H.pm[pg];
	uint64_t head = pg;
	if (e->kind == VP_PG_CONT && e->n < VP_RUN_PAGES && pg >= e->n && H.pm[pg - e->n].kind == VP_PG_RUN)
		head = pg - e->n;
	e = &H.pm[head];
	if (e->kind == VP_PG_RUN) {
		/* Only the start of a block handed out (below the bump index, not
		 * carrying the free tag) has a usable size. */
		uint32_t sz = vp__class_size[e->cls];
		uint64_t in = off - head * VP_PAGE, tag;
		if (in % sz || in / sz >= (e->n & 0xffff))
			return 0;
		memcpy(&tag, (const uint8_t *)p + 8, sizeof tag);
		return tag == (VP_FREE_TAG ^ off) ? 0 : sz;
	}
	if (e->kind == VP_PG_LARGE && off % VP_PAGE == 0)
		return (size_t)e->n * VP_PAGE;
	return 0;
}

static bool ready(const char *who)
{
	if (vp_likely(H.base))
		return true;
	vp__misuse(VP_E_NOTMAPPED, "%s() called while no pool is mapped", who);
	errno = EINVAL;
	return false;
}

void *pmalloc(size_t size)
{
	if (!ready("pmalloc"))
		return NULL;
	pstart();
	void *p = vp__alloc(size);
	int e = errno;
	pend();
	errno = e;
	return p;
}

void pfree(void *p)
{
	if (!p)
		return;
	if (!ready("pfree"))
		return;
	pstart();
	vp__free(p);
	pend();
}

void *pcalloc(size_t nmemb, size_t size)
{
	if (!ready("pcalloc"))
		return NULL;
	if (size && nmemb > SIZE_MAX / size) {
		errno = ENOMEM;
		return NULL;
	}
	pstart();
	void *p = vp__alloc(nmemb * size);
	if (p) {
		memset(p, 0, nmemb * size);
		vp__cc_note(p, nmemb * size);
	}
	int e = errno;
	pend();
	errno = e;
	return p;
}

void *prealloc(void *p, size_t size)
{
	if (!p)
		return pmalloc(size);
	if (!ready("prealloc"))
		return NULL;
	if (size == 0) {
		pfree(p);
		return NULL;
	}
	pstart();
	void *q = NULL;
	size_t old = locate(p, "prealloc") ? vp__usable(p) : 0;
	if (old) {
		if (size <= old && (size > old / 2 || old <= 16)) {
			q = p;
		} else if ((q = vp__alloc(size))) {
			memcpy(q, p, old < size ? old : size);
			vp__cc_note(q, old < size ? old : size);
			vp__free(p);
		}
	}
	int e = errno;
	pend();
	errno = e;
	return q;
}

size_t vp_usable_size(const void *p)
{
	if (!H.base || !p)
		return 0;
	return vp__usable(p);
}
