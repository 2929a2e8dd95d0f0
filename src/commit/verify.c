/* SPDX-License-Identifier: MIT */
/*
 * verify.c -- verify mode: check the tracker against the working copy
 * itself, at every commit.
 *
 * The working copy is a MAP_PRIVATE mapping of the home image, so a page
 * the application (or the kernel) wrote is an anonymous page of that
 * mapping, and a page never written is the file's page: PAGEMAP_SCAN
 * (Linux 6.7+) lists the anonymous ones (PAGE_IS_FILE clear, present or
 * swapped out) in one walk of the page tables, whatever the tracker.
 * Without PAGEMAP_SCAN, or under libvolimem (the vm-* trackers, where the
 * process runs on the guest's page tables), every page is compared.
 *
 * Pages stay private after a commit (the runtime never drops them), so
 * each commit compares every private page line by line with the home
 * image, which at the quiescent point holds every earlier group: a line
 * that differs was written since the last commit. The compare runs before
 * collect(), so a store outside any FAS racing the commit is either seen by
 * both or by collect() alone, and never reported falsely. After collect(),
 * a changed line is recorded when its page is in the write set and, if the
 * tracker has the lines op, its bit is set there. Every other changed line
 * is reported on stderr with its address, counted in verify_missed_lines,
 * and its page added to the write set: verify mode reports a tracker's
 * misses and also keeps them from being lost.
 *
 * Cost per commit: one page-table walk of the heap plus a 4 KiB compare
 * per private page (docs/COMMIT.md gives figures); the full compare reads
 * the whole heap.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "commit/log.h"
#include "commit/verify.h"
#include "track/uffd_abi.h"
#include "util/util.h"

#define VEC_LEN 256
#define REPORT_MAX 32 /* lines printed one by one per commit */

void (*vp__verify_test_drop)(struct vp_pageset *ws);
bool vp__verify_test_full;

/* pagemap_usable -- PAGEMAP_SCAN answers on this kernel (one empty walk). */
static bool pagemap_usable(int fd, const struct vp_tracker *t)
{
	struct page_region vec[1];
	struct pm_scan_arg a = {
		.size = sizeof a, .start = (uintptr_t)t->base, .end = (uintptr_t)t->base + VP_PAGE,
		.vec = (uintptr_t)vec, .vec_len = 1, .category_mask = PAGE_IS_PRESENT, .return_mask = PAGE_IS_PRESENT,
	};
	return ioctl(fd, PAGEMAP_SCAN, &a) >= 0;
}

int vp__verify_open(struct vp_verify *v, const struct vp_tracker *t)
{
	*v = (struct vp_verify){.pagemap = -1, .npages = t->npages};
	v->inws = calloc((t->npages + 63) / 64 + 1, sizeof *v->inws);
	if (!v->inws)
		return vp__err(-ENOMEM, "verify mode: out of memory for a bitmap of %zu pages", t->npages);
	if (strncmp(t->ops->name, "vm-", 3) != 0 && !vp__verify_test_full) {
		v->pagemap = open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC);
		if (v->pagemap >= 0 && !pagemap_usable(v->pagemap, t)) {
			close(v->pagemap);
			v->pagemap = -1;
		}
	}
	v->on = true;
	vp__diag(0, "verify: on, tracker \"%s\", changed pages found by %s", t->ops->name,
		 v->pagemap >= 0 ? "PAGEMAP_SCAN (private pages)" : "a full compare of the heap");
	return 0;
}

void vp__verify_close(struct vp_verify *v)
{
	if (v->pagemap >= 0)
		close(v->pagemap);
	free(v->chg);
	free(v->inws);
	*v = (struct vp_verify){.pagemap = -1};
}

/* compare -- note the changed lines of pages [pg, pg + n). */
static int compare(struct vp_verify *v, const struct vp_tracker *t, const uint8_t *home, uint64_t pg, uint64_t n,
		   uint64_t *checked)
{
	for (uint64_t p = pg; p < pg + n && p < t->npages; p++) {
		const uint8_t *w = t->base + p * VP_PAGE, *h = home + p * VP_PAGE;
		++*checked;
		if (memcmp(w, h, VP_PAGE) == 0) /* most pages: one fast compare */
			continue;
		uint64_t m = vp__log_line_mask(w, h);
		if (v->nchg == v->capchg) {
			size_t cap = v->capchg ? 2 * v->capchg : 256;
			void *c = realloc(v->chg, cap * sizeof *v->chg);
			if (!c)
				return vp__err(-ENOMEM, "verify mode: out of memory for %zu changed pages", cap);
			v->chg = c;
			v->capchg = cap;
		}
		v->chg[v->nchg++] = (struct vp_vchg){p, m};
	}
	return 0;
}

int vp__verify_scan(struct vp_verify *v, const struct vp_tracker *t, const uint8_t *home, uint64_t *checked)
{
	v->nchg = 0;
	if (v->pagemap < 0)
		return compare(v, t, home, 0, t->npages, checked);
	struct page_region vec[VEC_LEN];
	uint64_t start = (uintptr_t)t->base, end = start + t->len;
	while (start < end) {
		/* Anonymous pages: FILE clear (inverted, then required), and
		 * present or swapped. A swap entry that is not WRITTEN is a
		 * uffd-wp marker on a page never written (or one re-armed while
		 * out): skipped below. */
		struct pm_scan_arg a = {
			.size = sizeof a, .start = start, .end = end, .vec = (uintptr_t)vec, .vec_len = VEC_LEN,
			.category_inverted = PAGE_IS_FILE, .category_mask = PAGE_IS_FILE,
			.category_anyof_mask = PAGE_IS_PRESENT | PAGE_IS_SWAPPED,
			.return_mask = PAGE_IS_PRESENT | PAGE_IS_SWAPPED | PAGE_IS_WRITTEN,
		};
		long n = ioctl(v->pagemap, PAGEMAP_SCAN, &a);
		if (n < 0)
			return vp__err(-errno, "verify mode: PAGEMAP_SCAN of the heap failed: %s", strerror(errno));
		for (long i = 0; i < n; i++) {
			uint64_t c = vec[i].categories;
			if (!(c & PAGE_IS_PRESENT) && !(c & PAGE_IS_WRITTEN))
				continue;
			int rc = compare(v, t, home, (vec[i].start - (uintptr_t)t->base) / VP_PAGE,
					 (vec[i].end - vec[i].start) / VP_PAGE, checked);
			if (rc)
				return rc;
		}
		if (a.walk_end <= start)
			return vp__err(-EIO, "verify mode: PAGEMAP_SCAN made no progress at %#llx",
				       (unsigned long long)start);
		start = a.walk_end;
	}
	return 0;
}

int vp__verify_check(struct vp_verify *v, struct vp_tracker *t, struct vp_pageset *ws, uint64_t *missed)
{
	size_t nws = ws->n, printed = 0;
	uint64_t before = *missed;
	int rc = 0;
	for (size_t i = 0; i < nws; i++)
		if (ws->pg[i] < v->npages)
			v->inws[ws->pg[i] / 64] |= 1ull << (ws->pg[i] % 64);
	for (size_t i = 0; i < v->nchg; i++) {
		uint64_t pg = v->chg[i].pg;
		bool in = v->inws[pg / 64] >> (pg % 64) & 1;
		uint64_t rec = !in ? 0 : t->ops->lines ? t->ops->lines(t, pg) : ~0ull;
		uint64_t miss = v->chg[i].mask & ~rec;
		if (!miss)
			continue;
		*missed += (uint64_t)__builtin_popcountll(miss);
		for (uint64_t m = miss; m && printed < REPORT_MAX; m &= m - 1, printed++) {
			unsigned j = (unsigned)__builtin_ctzll(m);
			uint64_t off = pg * VP_PAGE + j * VP_LINE;
			vp__diag(0, "verify: line not recorded by tracker \"%s\": heap+0x%llx (%p, page %llu line %u)",
				 t->ops->name, (unsigned long long)off, (void *)(t->base + off), (unsigned long long)pg, j);
		}
		/* A page left out of the write set would be lost: log it. (A
		 * page in the set is logged by its line diff, all lines.) */
		if (!in && !rc)
			rc = vp__pageset_push(ws, pg);
	}
	if (*missed - before > printed)
		vp__diag(0, "verify: %llu more lines not recorded by tracker \"%s\" in this commit",
			 (unsigned long long)(*missed - before - printed), t->ops->name);
	for (size_t i = 0; i < nws; i++)
		if (ws->pg[i] < v->npages)
			v->inws[ws->pg[i] / 64] &= ~(1ull << (ws->pg[i] % 64));
	if (ws->n > nws)
		vp__pageset_sort_unique(ws);
	if (rc)
		return vp__err(rc, "verify mode: out of memory adding a missed page to the write set");
	return 0;
}
