/* SPDX-License-Identifier: MIT */
/*
 * shadow.c -- the diff base of page trackers, kept in DRAM.
 *
 * A tracker that names pages (uffd, mprotect, full, vm-*) leaves step 3 to
 * find the changed lines of each page by comparing it with its committed
 * image. Home holds that image, but step 4 stored into home with
 * non-temporal stores, which leave none of it in the cache: every line of
 * the compare is a miss, ~450 ns per page here (perf of the TinyDB insert
 * under uffd: 45 % of copy_slots on the first load of each home line).
 * Pages written in commit after commit (a table header, the allocator's
 * state, a hash index) pay it every time.
 *
 * So a page logged in two groups gets a shadow: a DRAM copy of its
 * committed image, compared in the cache instead of home. Step 3 keeps it
 * equal to the image the group commits (the changed lines of the logged
 * page are copied into it), so the next group diffs against what this one
 * logged: the diff base is the image after the previous group, as log.c
 * requires. Wherever a group may change home without the shadows being
 * brought along, they are all dropped (vp__shadow_drop): a commit that
 * failed after its copy, a split copy (two threads), a group whose lines
 * the tracker named. The shadows are then rebuilt from later groups; a
 * dropped shadow only costs the compare against home again.
 *
 * The size: VOLIPMEM_SHADOW_PAGES (256 = 1 MiB by default) in sets of 4
 * ways, least recently used replaced. Only groups of at most a quarter of
 * that many pages install, so a large relaxed group does not churn the
 * cache; a page with a shadow is kept up to date in any group.
 */
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "commit/shadow.h"
#include "util/options.h"
#include "util/util.h"

static inline uint64_t mix(uint64_t pgno) { return pgno * 0x9E3779B97F4A7C15ull; }

/* scaled -- h's high bits scaled to [0, n): pgno's set, or its ghost
 * slot (n = sets * VP_SHADOW_WAYS). */
static inline uint64_t scaled(uint64_t h, uint64_t n) { return (uint64_t)(((unsigned __int128)h * n) >> 64); }

uint8_t *vp__shadow_find(struct vp_shadow *s, uint64_t pgno)
{
	if (!s->valid)
		return NULL;
	uint64_t w = scaled(mix(pgno), s->sets) * VP_SHADOW_WAYS;
	for (unsigned i = 0; i < VP_SHADOW_WAYS; i++)
		if (s->tag[w + i] == pgno + 1) {
			s->used[w + i] = ++s->clock;
			s->hits++;
			return s->pages + (w + i) * VP_PAGE;
		}
	return NULL;
}

static bool alloc(struct vp_shadow *s)
{
	uint64_t sets = vp__opt.shadow_pages / VP_SHADOW_WAYS, n = sets * VP_SHADOW_WAYS;
	if (s->failed || !sets)
		return false;
	s->tag = calloc(n, sizeof *s->tag);
	s->used = calloc(n, sizeof *s->used);
	s->ghost = calloc(n, sizeof *s->ghost);
	/* Faulted in as ways fill: one first touch per way, once. */
	void *p = mmap(NULL, n * VP_PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (!s->tag || !s->used || !s->ghost || p == MAP_FAILED) {
		if (p != MAP_FAILED)
			munmap(p, n * VP_PAGE);
		free(s->tag);
		free(s->used);
		free(s->ghost);
		*s = (struct vp_shadow){.failed = true};
		return false;
	}
	s->pages = p;
	s->sets = sets;
	return true;
}

void vp__shadow_logged(struct vp_shadow *s, uint64_t pgno, uint8_t *sh, const uint8_t *src, uint64_t m,
		       bool install)
{
	if (sh) {
		if (m == ~0ull) {
			memcpy(sh, src, VP_PAGE);
		} else {
			for (; m; m &= m - 1) {
				unsigned j = (unsigned)__builtin_ctzll(m);
				memcpy(sh + j * VP_LINE, src + j * VP_LINE, VP_LINE);
			}
		}
		return;
	}
	if (!install || (!s->sets && !alloc(s)))
		return;
	uint64_t h = mix(pgno), n = s->sets * VP_SHADOW_WAYS;
	uint64_t *g = &s->ghost[scaled(h ^ (h >> 29), n)];
	if (*g != pgno + 1) {
		*g = pgno + 1;
		return;
	}
	uint64_t w = scaled(h, s->sets) * VP_SHADOW_WAYS, v = w;
	for (unsigned i = 0; i < VP_SHADOW_WAYS; i++) {
		if (!s->tag[w + i]) {
			v = w + i;
			break;
		}
		if (s->used[w + i] < s->used[v])
			v = w + i;
	}
	s->valid += !s->tag[v];
	s->tag[v] = pgno + 1;
	s->used[v] = ++s->clock;
	memcpy(s->pages + v * VP_PAGE, src, VP_PAGE);
}

void vp__shadow_drop(struct vp_shadow *s)
{
	if (!s->valid)
		return;
	memset(s->tag, 0, s->sets * VP_SHADOW_WAYS * sizeof *s->tag);
	s->valid = 0;
}

void vp__shadow_free(struct vp_shadow *s)
{
	if (s->pages)
		munmap(s->pages, s->sets * VP_SHADOW_WAYS * VP_PAGE);
	free(s->tag);
	free(s->used);
	free(s->ghost);
	*s = (struct vp_shadow){0};
}
