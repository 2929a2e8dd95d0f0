/* SPDX-License-Identifier: MIT */
/*
 * track.c -- the table of trackers, the automatic choice, and the page set
 * helpers every tracker shares.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "track/track.h"
#include "util/util.h"

/* In order of preference for the automatic choice: uffd where the kernel
 * has async write-protect and PAGEMAP_SCAN (Linux 6.7+), else mprotect. */
static const struct vp_tracker_ops *const trackers[] = {
	&vp__track_uffd,
	&vp__track_mprotect,
	&vp__track_full,
};
#define NTRACKERS (sizeof trackers / sizeof trackers[0])

/* Chosen by name only, never automatically: they run the process as a KVM
 * guest (src/vm/), which changes what the process may do (no fork) and is
 * slow on nested KVMs such as kvm-pvm. */
static const struct vp_tracker_ops *const named_only[] = {
	&vp__track_vm_dirty,
	&vp__track_vm_wp,
	&vp__track_cc,   /* sees only stores of instrumented code: docs/cc.md */
};
#define NNAMED (sizeof named_only / sizeof named_only[0])

static int choose_named(const struct vp_tracker_ops *t, const char *name,
			const struct vp_tracker_ops **out)
{
	if (t->probe())
		return vp__misuse(VP_E_TRACKER, "tracker \"%s\" cannot run here: %s", name, vp_errormsg());
	*out = t;
	return 0;
}

int vp__track_choose(const char *name, const struct vp_tracker_ops **out)
{
	if (name && *name) {
		for (size_t i = 0; i < NTRACKERS; i++)
			if (strcmp(trackers[i]->name, name) == 0)
				return choose_named(trackers[i], name, out);
		for (size_t i = 0; i < NNAMED; i++)
			if (strcmp(named_only[i]->name, name) == 0)
				return choose_named(named_only[i], name, out);
		return vp__misuse(VP_E_TRACKER, "unknown tracker \"%s\" (VOLIPMEM_TRACKER); available: "
				  "uffd, mprotect, full, vm-dirty, vm-wp, cc", name);
	}
	char why[160] = "";
	for (size_t i = 0; i < NTRACKERS; i++) {
		if (trackers[i]->probe() != 0) {
			if (i == 0)
				snprintf(why, sizeof why, "%s", vp_errormsg());
		} else {
			*out = trackers[i];
			if (i > 0)
				vp__diag(1, "tracker %s unusable here (%s), using %s", trackers[0]->name, why,
					trackers[i]->name);
			return 0;
		}
	}
	return vp__err(VP_E_TRACKER, "no write tracker works on this system");
}

int vp__pageset_reserve(struct vp_pageset *s, size_t cap)
{
	if (cap <= s->cap)
		return 0;
	size_t nc = s->cap ? s->cap : 256;
	while (nc < cap)
		nc *= 2;
	uint64_t *p = realloc(s->pg, nc * sizeof *p);
	if (!p)
		return -ENOMEM;
	s->pg = p;
	s->cap = nc;
	return 0;
}

int vp__pageset_push(struct vp_pageset *s, uint64_t pg)
{
	if (s->n == s->cap && vp__pageset_reserve(s, s->n + 1))
		return -ENOMEM;
	s->pg[s->n++] = pg;
	return 0;
}

void vp__pageset_free(struct vp_pageset *s)
{
	free(s->pg);
	s->pg = NULL;
	s->n = s->cap = 0;
}

/* Below this many pages an insertion sort is cheaper than counting. */
#define SORT_SMALL 48

static void insertion_sort(uint64_t *a, size_t n)
{
	for (size_t i = 1; i < n; i++) {
		uint64_t v = a[i];
		size_t j = i;
		for (; j > 0 && a[j - 1] > v; j--)
			a[j] = a[j - 1];
		a[j] = v;
	}
}

/* radix_sort -- LSD radix sort of a[0..n), one byte per pass, only as many
 * passes as max (the largest entry) has bytes: 2 for a heap of 256 MiB, 3
 * up to 64 GiB. A collection of a thousand pages sorts in a few us where
 * qsort's comparisons through a function pointer took tens, at the
 * quiescent point with the writers waiting. tmp holds n entries; returns
 * the buffer that holds the result (a or tmp). */
static uint64_t *radix_sort(uint64_t *a, uint64_t *tmp, size_t n, uint64_t max)
{
	for (unsigned shift = 0; shift < 64 && (max >> shift); shift += 8) {
		size_t count[256] = {0};
		for (size_t i = 0; i < n; i++)
			count[(a[i] >> shift) & 0xff]++;
		size_t sum = 0;
		for (unsigned d = 0; d < 256; d++) {
			size_t c = count[d];
			count[d] = sum;
			sum += c;
		}
		for (size_t i = 0; i < n; i++)
			tmp[count[(a[i] >> shift) & 0xff]++] = a[i];
		uint64_t *t = a;
		a = tmp;
		tmp = t;
	}
	return a;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

void vp__pageset_sort_unique(struct vp_pageset *s)
{
	if (s->n < 2)
		return;
	bool sorted = true;
	uint64_t max = s->pg[0];
	for (size_t i = 1; i < s->n; i++) {
		sorted &= s->pg[i - 1] < s->pg[i];
		max = s->pg[i] > max ? s->pg[i] : max;
	}
	if (sorted)
		return;
	if (s->n <= SORT_SMALL) {
		insertion_sort(s->pg, s->n);
	} else if (!vp__pageset_reserve(s, 2 * s->n)) {
		/* the scratch is the set's own second half: no allocation once
		 * the set has grown to twice its largest collection */
		uint64_t *r = radix_sort(s->pg, s->pg + s->n, s->n, max);
		if (r != s->pg)
			memcpy(s->pg, r, s->n * sizeof *r);
	} else {
		qsort(s->pg, s->n, sizeof *s->pg, cmp_u64); /* no memory for the scratch */
	}
	size_t w = 1;
	for (size_t i = 1; i < s->n; i++)
		if (s->pg[i] != s->pg[w - 1])
			s->pg[w++] = s->pg[i];
	s->n = w;
}
