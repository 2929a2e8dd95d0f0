/* SPDX-License-Identifier: MIT */
/*
 * cow.c -- step 3a's copy while threads run ("concurrent copy").
 *
 * At the quiescent point, after collect, every page of the write set is
 * made read-only (the uffd tracker: one mprotect(PROT_READ) per run of
 * consecutive pages; the mprotect tracker: collect() has just re-protected
 * them, nothing to do), and the gate opens. The committer then logs the
 * pages in write-set order, as it does with threads paused, while a writer
 * that faults on a page of the set first saves it:
 *
 *   per position p:  PENDING --committer claims--> CLAIMED --logged--> COPIED
 *                    PENDING --a writer faults---> SAVING --saved----> SAVED
 *
 * Both claims are one compare-and-swap from PENDING, so exactly one side
 * reads the page from the working copy, and it does so while the page is
 * still read-only: what it reads is the page at the quiescent point. A
 * writer that wins copies the page into the shadow buffer and goes on; the
 * committer, reaching p, logs the shadow copy instead (waiting while it is
 * SAVING), so the log's entries, slots and checksums are byte for byte
 * those of a copy made with threads paused. A writer that loses waits in
 * its handler while the committer holds the page (CLAIMED: one page's diff
 * and copy), then goes on.
 *
 * Giving the page back is the tracker's business, not a blind PROT_WRITE:
 *   - uffd (VP_TRK_COW_RW): the pages were writable (hot regions, armed for
 *     uffd-wp again by collect's PAGEMAP_SCAN; a set with a page in a cold
 *     region -- an expired sticky page, a sticky hole -- is copied paused). The writer makes its own
 *     page PROT_READ|PROT_WRITE and retries; the committer gives back up
 *     to SEG_PAGES consecutive pages per mprotect once it has logged them.
 *     mprotect keeps the uffd-wp bit, so the next write is tracked (async
 *     WP) and lands in the next group's write set.
 *   - mprotect (VP_TRK_COW_RO): the pages are CLEAN and read-only after
 *     collect, as the tracker wants them. The handler saves the page and
 *     returns "not mine": the tracker's own handler then records the write
 *     (next group) and makes the page writable, as for any first write.
 * Kernel writes (read() into the heap) go through the interposition, which
 * calls vp__cow_kernel_write before the tracker's before_kernel_write: the
 * page is saved first, so the kernel never meets a read-only page of ours.
 *
 * The home image (the line diff's base) does not change meanwhile: this
 * commit started after the previous one's step 4 (commit.c, `committing`).
 */
#include <errno.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/mman.h>

#include "commit/cow.h"
#include "track/track.h"
#include "util/options.h"
#include "util/util.h"

/* ThreadSanitizer cannot see that mprotect orders the reads of a held
 * (read-only) page before any thread's later stores into it (the page is
 * given back by a system call, not through a variable both threads touch),
 * so the committer's and the saving writer's reads of a held page are
 * hidden from it. Nothing can store into the page while they read. */
#if defined(__SANITIZE_THREAD__)
#define VP_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define VP_TSAN 1
#endif
#endif
#ifdef VP_TSAN
void AnnotateIgnoreReadsBegin(const char *file, int line);
void AnnotateIgnoreReadsEnd(const char *file, int line);
#define HIDE_READS_BEGIN() AnnotateIgnoreReadsBegin(__FILE__, __LINE__)
#define HIDE_READS_END() AnnotateIgnoreReadsEnd(__FILE__, __LINE__)
#else
#define HIDE_READS_BEGIN() ((void)0)
#define HIDE_READS_END() ((void)0)
#endif

enum { PENDING = 0, CLAIMED, COPIED, SAVING, SAVED };

/* Pages given back per mprotect by the committer: small enough that a
 * writer seldom waits for a long run, large enough to amortise the call. */
#define SEG_PAGES 64u
/* Runs protected at most: each can split a VMA in three, and
 * vm.max_map_count (65530 by default) is shared with the tracker. */
#define MAX_RUNS 4096u
/* Fixed cost of a concurrent copy besides the mprotect calls (state reset,
 * waiting out handlers), ns: a conservative round figure. */
#define FIXED_NS 2000u

struct vp_cow vp__cow;
void (*vp__cow_test_hook)(int phase);

static inline void relax(unsigned *spins)
{
	if (++*spins < 64) {
#if defined(__x86_64__) || defined(__i386__)
		__builtin_ia32_pause();
#endif
	} else {
		sched_yield();
	}
}

/* find -- position of page pg in the write set, or -1. Async-signal-safe. */
static long find(const struct vp_cow *c, uint64_t pg)
{
	size_t lo = 0, hi = c->n;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (c->pg[mid] < pg)
			lo = mid + 1;
		else if (c->pg[mid] > pg)
			hi = mid;
		else
			return (long)mid;
	}
	return -1;
}

static uint8_t *page_addr(const struct vp_cow *c, uint64_t pg)
{
	return c->trk->base + pg * VP_PAGE;
}

/* save -- a writer (or a kernel write) is about to change position p:
 * make sure the page as it was at the quiescent point is logged, then give
 * it back. Returns true when the access may simply be retried (uffd), false
 * when the tracker's handler must still see it (mprotect). Async-signal-safe. */
static bool save(struct vp_cow *c, long p)
{
	unsigned spins = 0;
	for (;;) {
		uint8_t s = atomic_load_explicit(&c->st[p], memory_order_acquire);
		if (s == PENDING) {
			if (!atomic_compare_exchange_strong(&c->st[p], &s, SAVING))
				continue;
			HIDE_READS_BEGIN();
			memcpy(c->shadow + (size_t)p * VP_PAGE, page_addr(c, c->pg[p]), VP_PAGE);
			HIDE_READS_END();
			atomic_store_explicit(&c->st[p], SAVED, memory_order_release);
			atomic_fetch_add_explicit(&c->faults, 1, memory_order_relaxed);
			break;
		}
		if (s == COPIED || s == SAVED)
			break;
		relax(&spins); /* CLAIMED by the committer, or SAVING by another writer */
	}
	if (c->mode != VP_TRK_COW_RW)
		return false;
	/* May fail when out of VMAs: the access faults again and waits for
	 * vp__cow_end, which gives back every run whole. */
	mprotect(page_addr(c, c->pg[p]), VP_PAGE, PROT_READ | PROT_WRITE);
	return true;
}

/* enter/leave -- bracket a handler's use of the arrays, so vp__cow_end can
 * wait for the last one before the committer reuses them. */
static bool enter(struct vp_cow *c)
{
	atomic_fetch_add(&c->inflight, 1);
	if (atomic_load(&c->active))
		return true;
	atomic_fetch_sub(&c->inflight, 1);
	return false;
}

static void leave(struct vp_cow *c) { atomic_fetch_sub(&c->inflight, 1); }

/* cow_fault -- first in the SIGSEGV chain (interpose.c). */
static bool cow_fault(siginfo_t *si)
{
	struct vp_cow *c = &vp__cow;
	if (si->si_code != SEGV_ACCERR || !enter(c))
		return false;
	bool r = false;
	uint8_t *a = si->si_addr, *base = c->trk->base;
	if (a >= base && a < base + c->trk->len) {
		long p = find(c, (uint64_t)(a - base) / VP_PAGE);
		if (p >= 0) {
			int saved = errno;
			r = save(c, p);
			errno = saved;
		}
	}
	leave(c);
	return r;
}

/* cow_kernel_write -- before read()/recv()/... into [addr, addr+n). */
static int cow_kernel_write(void *addr, size_t n)
{
	struct vp_cow *c = &vp__cow;
	if (!n || !enter(c))
		return 0;
	uint8_t *base = c->trk->base;
	uint64_t p0 = (uint64_t)((uint8_t *)addr - base) / VP_PAGE;
	uint64_t p1 = (uint64_t)((uint8_t *)addr + n - 1 - base) / VP_PAGE;
	for (uint64_t pg = p0; pg <= p1; pg++) {
		long p = find(c, pg);
		if (p >= 0)
			save(c, p);
	}
	leave(c);
	return 0;
}

const uint8_t *vp__cow_claim(struct vp_cow *c, uint64_t p, const uint8_t *work)
{
	uint8_t s = PENDING;
	if (atomic_compare_exchange_strong(&c->st[p], &s, CLAIMED)) {
		HIDE_READS_BEGIN();
		return work;
	}
	unsigned spins = 0;
	while (atomic_load_explicit(&c->st[p], memory_order_acquire) != SAVED)
		relax(&spins);
	return c->shadow + p * VP_PAGE;
}

static void give_back(struct vp_cow *c, uint64_t pos, uint64_t n)
{
	if (mprotect(page_addr(c, c->pg[pos]), n * VP_PAGE, PROT_READ | PROT_WRITE) != 0)
		atomic_store(&c->unprot_failed, true);
}

void vp__cow_release(struct vp_cow *c, uint64_t p)
{
	if (atomic_load_explicit(&c->st[p], memory_order_relaxed) == CLAIMED) {
		HIDE_READS_END();
		atomic_store_explicit(&c->st[p], COPIED, memory_order_release);
	}
	uint32_t s = c->seg[p];
	if (atomic_fetch_sub(&c->left[s], 1) == 1 && c->mode == VP_TRK_COW_RW) {
		uint64_t first = c->seg_first[s];
		uint64_t end = s + 1 < c->nseg ? c->seg_first[s + 1] : c->n;
		give_back(c, first, end - first);
	}
}

/* grow -- arrays and shadow for n positions (committer, inactive). */
static int grow(struct vp_cow *c, size_t n)
{
	if (n <= c->cap)
		return 0;
	size_t cap = c->cap ? c->cap : 1024;
	while (cap < n)
		cap *= 2;
	void *st = realloc((void *)c->st, cap), *seg = realloc(c->seg, cap * sizeof *c->seg);
	if (st)
		c->st = st;
	if (seg)
		c->seg = seg;
	void *left = realloc((void *)c->left, cap * sizeof *c->left);
	if (left)
		c->left = left;
	void *sf = realloc(c->seg_first, cap * sizeof *c->seg_first);
	if (sf)
		c->seg_first = sf;
	if (!st || !seg || !left || !sf)
		return -ENOMEM;
	/* Only pages writers save get memory. */
	void *sh = mmap(NULL, cap * VP_PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE,
			-1, 0);
	if (sh == MAP_FAILED)
		return -ENOMEM;
	if (c->shadow)
		munmap(c->shadow, c->cap * VP_PAGE);
	c->shadow = sh;
	c->cap = cap;
	return 0;
}

/* worth -- the cost model of VOLIPMEM_CONCURRENT_COPY=auto: on when the
 * copy it takes out of the pause is larger than what it adds: the
 * mprotect calls (uffd), and the writers' faults on held pages, each
 * taken as a signal plus an mprotect (~2 mprotect calls) and a page copy,
 * at the fraction of the set writers saved in earlier concurrent copies
 * (per mille; 250 until one has run). */
static bool worth(const struct vp_cow *c, size_t n, size_t runs)
{
	uint64_t added = FIXED_NS + (c->mode == VP_TRK_COW_RW ? runs * c->ns_prot : 0);
	added += n * c->fault_pm / 1000 * (2 * c->ns_prot + c->ns_copy);
	return n * c->ns_copy > added;
}

int vp__cow_begin(struct vp_cow *c, const struct vp_pageset *ws)
{
	if (!c->want || !c->trk || c->mode == VP_TRK_COW_NONE || !ws->n || ws->n > UINT32_MAX)
		return VP_COW_OFF;
	size_t runs = 1;
	for (size_t i = 1; i < ws->n; i++)
		runs += ws->pg[i] != ws->pg[i - 1] + 1;
	if (c->mode == VP_TRK_COW_RW && runs > MAX_RUNS)
		return VP_COW_OFF;
	/* uffd: every page must lie in a hot region (see uf_cow_hot). */
	for (size_t i = 0; c->mode == VP_TRK_COW_RW && i < ws->n; i++)
		if (!c->trk->ops->cow_hot || !c->trk->ops->cow_hot(c->trk, ws->pg[i]))
			return VP_COW_OFF;
	if (c->want == 2 && !worth(c, ws->n, runs))
		return VP_COW_OFF;
	if (grow(c, ws->n))
		return VP_COW_OFF;
	c->pg = ws->pg;
	c->n = ws->n;
	memset((void *)c->st, PENDING, ws->n);
	c->nseg = 0;
	for (size_t i = 0; i < ws->n; i++) {
		if (i == 0 || i % SEG_PAGES == 0 || ws->pg[i] != ws->pg[i - 1] + 1) {
			c->seg_first[c->nseg] = (uint32_t)i;
			atomic_init(&c->left[c->nseg], 0);
			c->nseg++;
		}
		c->seg[i] = (uint32_t)(c->nseg - 1);
		atomic_fetch_add_explicit(&c->left[c->nseg - 1], 1, memory_order_relaxed);
	}
	atomic_store(&c->unprot_failed, false);
	c->faults0 = atomic_load(&c->faults);
	if (vp__cow_test_hook)
		vp__cow_test_hook(0);
	atomic_store(&c->active, true);
	int how = VP_COW_CONCURRENT;
	if (c->mode == VP_TRK_COW_RW) {
		for (size_t i = 0; i < ws->n;) {
			size_t j = i + 1;
			while (j < ws->n && ws->pg[j] == ws->pg[j - 1] + 1)
				j++;
			if (mprotect(page_addr(c, ws->pg[i]), (j - i) * VP_PAGE, PROT_READ) != 0) {
				/* Out of VMAs: the pages protected so far are
				 * still served; copy with threads paused. */
				how = VP_COW_PAUSED;
				break;
			}
			i = j;
		}
	}
	c->copying = true;
	return how;
}

int vp__cow_end(struct vp_cow *c)
{
	c->copying = false;
	atomic_store(&c->active, false);
	unsigned spins = 0;
	while (atomic_load(&c->inflight))
		relax(&spins);
	int rc = 0;
	if (c->mode == VP_TRK_COW_RW && atomic_load(&c->unprot_failed)) {
		/* Whole runs merge VMAs back instead of splitting them. */
		for (size_t i = 0; i < c->n;) {
			size_t j = i + 1;
			while (j < c->n && c->pg[j] == c->pg[j - 1] + 1)
				j++;
			if (mprotect(page_addr(c, c->pg[i]), (j - i) * VP_PAGE, PROT_READ | PROT_WRITE) != 0)
				rc = -errno;
			i = j;
		}
	}
	uint64_t saved = atomic_load(&c->faults) - c->faults0;
	c->fault_pm = (3 * c->fault_pm + saved * 1000 / (c->n ? c->n : 1)) / 4;
	c->pg = NULL;
	c->n = 0;
	return rc;
}

void vp__cow_observe(struct vp_cow *c, uint64_t n, uint64_t ns)
{
	if (!n)
		return;
	uint64_t per = ns / n;
	/* Moving average; never 0 (a 0 would turn auto off for good). */
	c->ns_copy = (3 * c->ns_copy + per) / 4 + 1;
}

/* measure -- the cost model's two figures on a scratch mapping: one
 * mprotect call (best of a few), and one page compared line by line
 * and copied. */
static void measure(struct vp_cow *c)
{
	uint8_t *m = mmap(NULL, 3 * VP_PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	c->ns_prot = 3000;
	c->ns_copy = 300;
	if (m == MAP_FAILED)
		return;
	memset(m, 1, 3 * VP_PAGE);
	uint64_t best_p = UINT64_MAX, best_c = UINT64_MAX;
	for (int i = 0; i < 5; i++) {
		uint64_t t0 = vp__now_ns();
		int a = mprotect(m + VP_PAGE, VP_PAGE, PROT_READ);
		int b = mprotect(m + VP_PAGE, VP_PAGE, PROT_READ | PROT_WRITE);
		uint64_t t1 = vp__now_ns();
		if (a == 0 && b == 0 && (t1 - t0) / 2 < best_p)
			best_p = (t1 - t0) / 2;
		m[2 * VP_PAGE + (unsigned)i * 64] ^= 1;
		t0 = vp__now_ns();
		unsigned d = 0;
		for (unsigned j = 0; j < (VP_PAGE / VP_LINE); j++)
			d += memcmp(m + 2 * VP_PAGE + j * VP_LINE, m + j * VP_LINE, VP_LINE) != 0;
		memcpy(m, m + 2 * VP_PAGE, VP_PAGE);
		t1 = vp__now_ns();
		if (d && t1 - t0 < best_c)
			best_c = t1 - t0;
	}
	munmap(m, 3 * VP_PAGE);
	if (best_p != UINT64_MAX)
		c->ns_prot = best_p;
	if (best_c != UINT64_MAX)
		c->ns_copy = best_c + 1;
}

int vp__cow_open(struct vp_cow *c, struct vp_tracker *t)
{
	const char *w = vp__opt.concurrent_copy;
	int want;
	if (strcasecmp(w, "auto") == 0)
		want = 2;
	else if (strcasecmp(w, "on") == 0)
		want = 1;
	else if (!*w || strcasecmp(w, "off") == 0)
		want = 0;
	else
		return vp__misuse(VP_E_INVAL, "VOLIPMEM_CONCURRENT_COPY=\"%s\" is not one of auto, on, off", w);
	c->want = want;
	c->trk = t;
	c->fault_pm = 250;
	c->mode = t->ops->cow;
	if (c->mode == VP_TRK_COW_NONE || !want)
		return 0; /* off: no measuring, nothing in the fault path */
	measure(c);
	vp__diag(1, "concurrent copy %s: one mprotect %llu ns, one page logged %llu ns", w,
		 (unsigned long long)c->ns_prot, (unsigned long long)c->ns_copy);
	vp__segv_pre_install(cow_fault, cow_kernel_write);
	return 0;
}

void vp__cow_close(struct vp_cow *c)
{
	vp__segv_pre_install(NULL, NULL);
	free((void *)c->st);
	free(c->seg);
	free((void *)c->left);
	free(c->seg_first);
	if (c->shadow)
		munmap(c->shadow, c->cap * VP_PAGE);
	unsigned long long faults = atomic_load(&c->faults);
	memset(c, 0, sizeof *c);
	atomic_store(&c->faults, faults);
}

void vp__cow_forked(struct vp_cow *c)
{
	/* Pages still read-only are the tracker's to open in the child (its
	 * handler makes any faulting page of the heap writable there). */
	atomic_store(&c->active, false);
	atomic_store(&c->inflight, 0);
	c->copying = false;
}
