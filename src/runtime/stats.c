/* SPDX-License-Identifier: MIT */
/*
 * stats.c -- vp_stats()/vp_stats_reset(): the counters the commit pipeline
 * keeps under the commit mutex, with the tracker's fault count, the heap's
 * size and use, the tracker and the medium in use.
 */
#include <stdio.h>
#include <string.h>

#include "heap/heap.h"
#include "runtime/runtime.h"
#include "util/util.h"

int vp_stats(struct vp_stats *out)
{
	struct vp_rt *rt = &vp__rt;
	if (!out)
		return vp__misuse(VP_E_INVAL, "vp_stats(NULL)");
	if (!rt->mapped) {
		memset(out, 0, sizeof *out);
		return vp__err(VP_E_NOTMAPPED, "vp_stats: no pool is mapped");
	}
	vp__commit_stats(&vp__cm, out, false);
	out->faults = rt->trk.ops->faults(&rt->trk);
	out->heap_size = rt->heap_size;
	out->heap_used = vp__heap_used();
	snprintf(out->tracker, sizeof out->tracker, "%s", rt->trk.ops->name);
	snprintf(out->medium, sizeof out->medium, "%s", vp__medium_name(rt->pool.ps.medium));
	return 0;
}

void vp_stats_reset(void)
{
	vp__commit_stats(&vp__cm, NULL, true);
}
