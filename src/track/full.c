/* SPDX-License-Identifier: MIT */
/*
 * full.c -- the "full" tracker: no tracking at all, every heap page counts
 * as written at every commit. Slow on big heaps; it is the oracle the other
 * trackers are tested against, since it cannot miss a write.
 */
#include "track/track.h"
#include "util/util.h"

static int full_probe(void) { return 0; }
static int full_attach(struct vp_tracker *t) { (void)t; return 0; }
static void full_detach(struct vp_tracker *t) { (void)t; }
static uint64_t full_faults(struct vp_tracker *t) { (void)t; return 0; }

static int full_collect(struct vp_tracker *t, struct vp_pageset *out)
{
	if (vp__pageset_reserve(out, out->n + t->npages))
		return vp__err(-12, "out of memory collecting %zu pages", t->npages);
	for (size_t i = 0; i < t->npages; i++)
		out->pg[out->n++] = i;
	return 0;
}

const struct vp_tracker_ops vp__track_full = {
	.name = "full",
	.probe = full_probe,
	.attach = full_attach,
	.collect = full_collect,
	.detach = full_detach,
	.before_kernel_write = NULL,
	.faults = full_faults,
};
