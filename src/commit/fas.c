/* SPDX-License-Identifier: MIT */
/*
 * fas.c -- failure-atomic sections: per-thread flat nesting, the count of
 * threads inside a FAS, the commit gate, and the durability modes.
 *
 * A commit may only collect when no thread is inside a FAS. To keep commits
 * from starving, an outermost pstart() waits while the gate is closed
 * (collect + copy running) or while a commit is requested and other FASes
 * are still open: the open ones drain, the commit runs, then everyone
 * proceeds.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "runtime.h"
#include "util/options.h"
#include "util/util.h"

static _Thread_local int depth;       /* nesting depth of this thread     */
static _Thread_local bool unmapped;   /* outermost pstart ran before pmap */

void vp__fas_reset_thread(void) { depth = 0; unmapped = false; }

void pstart(void)
{
	struct vp_rt *rt = &vp__rt;
	if (depth++ > 0)
		return;
	if (vp_unlikely(!rt->mapped)) {
		unmapped = true;
		vp__misuse(VP_E_NOTMAPPED, "pstart() called while no pool is mapped (call pmap first)");
		return;
	}
	unmapped = false;
	pthread_mutex_lock(&rt->mu);
	if (rt->gate_closed || (rt->commit_req && rt->active > 0)) {
		uint64_t t0 = vp__now_ns();
		while (rt->gate_closed || (rt->commit_req && rt->active > 0))
			pthread_cond_wait(&rt->cv, &rt->mu);
		rt->st.ns_stall += vp__now_ns() - t0;
	}
	rt->active++;
	pthread_mutex_unlock(&rt->mu);
}

int pend(void)
{
	struct vp_rt *rt = &vp__rt;
	if (vp_unlikely(depth <= 0)) {
		depth = 0;
		return vp__misuse(VP_E_NOFAS, "pend() called without a matching pstart()");
	}
	if (--depth > 0)
		return 0;
	if (vp_unlikely(unmapped || !rt->mapped)) {
		unmapped = false;
		return vp__err(VP_E_NOTMAPPED, "pend(): the FAS began while no pool was mapped");
	}
	pthread_mutex_lock(&rt->mu);
	rt->active--;
	rt->st.fas++;
	rt->fas_since_commit++;
	int rc = 0;
	if (rt->detached) {
		rc = vp__err(VP_E_DETACHED, "pend() in a forked child: the pool belongs to the parent");
	} else if (rt->mode == VP_RELAXED) {
		if (rt->active == 0 && rt->commit_req)
			pthread_cond_broadcast(&rt->cv);
	} else {
		uint64_t need = rt->epoch;
		rt->commit_req = true;
		rc = vp__wait_durable_locked(rt, need);
	}
	pthread_mutex_unlock(&rt->mu);
	return rc;
}

int pcommit(void)
{
	struct vp_rt *rt = &vp__rt;
	if (depth > 0)
		return vp__misuse(VP_E_INFAS, "pcommit() inside a failure-atomic section would wait on itself");
	if (!rt->mapped)
		return vp__misuse(VP_E_NOTMAPPED, "pcommit() called while no pool is mapped");
	if (rt->detached)
		return vp__err(VP_E_DETACHED, "pcommit() in a forked child: the pool belongs to the parent");
	pthread_mutex_lock(&rt->mu);
	uint64_t need = rt->epoch;
	rt->commit_req = true;
	pthread_cond_broadcast(&rt->cv);
	int rc = vp__wait_durable_locked(rt, need);
	pthread_mutex_unlock(&rt->mu);
	return rc;
}

int psync(void)
{
	if (depth > 0)
		return vp__misuse(VP_E_INFAS, "psync() inside a failure-atomic section would wait on itself");
	return pcommit();
}

int vp_set_durability(int mode, unsigned interval_ms)
{
	struct vp_rt *rt = &vp__rt;
	if (mode != VP_SYNC && mode != VP_RELAXED)
		return vp__misuse(VP_E_INVAL, "vp_set_durability: mode %d is neither VP_SYNC nor VP_RELAXED", mode);
	if (mode == VP_RELAXED && interval_ms == 0)
		return vp__misuse(VP_E_INVAL, "vp_set_durability: relaxed mode needs interval_ms >= 1");
	if (depth > 0)
		return vp__misuse(VP_E_INFAS, "vp_set_durability inside a failure-atomic section");
	vp__opt.interval_ms = mode == VP_RELAXED ? interval_ms : 0;
	vp__option_from_code(VP_OPT_COMMIT_INTERVAL_MS);
	if (!rt->mapped)
		return 0;
	vp__committer_stop(rt);
	/* Everything written under the old mode becomes durable first. */
	int rc = pcommit();
	rt->mode = mode;
	rt->interval_ms = interval_ms;
	if (mode == VP_RELAXED) {
		int r2 = vp__committer_start(rt);
		if (r2)
			return r2;
	}
	return rc;
}

int vp_stats(struct vp_stats *out)
{
	struct vp_rt *rt = &vp__rt;
	if (!out)
		return vp__misuse(VP_E_INVAL, "vp_stats(NULL)");
	if (!rt->mapped) {
		memset(out, 0, sizeof *out);
		return vp__err(VP_E_NOTMAPPED, "vp_stats: no pool is mapped");
	}
	pthread_mutex_lock(&rt->mu);
	*out = rt->st;
	pthread_mutex_unlock(&rt->mu);
	out->faults = rt->trk.ops->faults(&rt->trk);
	out->heap_size = rt->heap_size;
	out->heap_used = ((struct vp_heaphdr *)rt->heap)->used;
	snprintf(out->tracker, sizeof out->tracker, "%s", rt->trk.ops->name);
	snprintf(out->medium, sizeof out->medium, "%s", vp__medium_name(rt->pool.ps.medium));
	return 0;
}

void vp_stats_reset(void)
{
	struct vp_rt *rt = &vp__rt;
	pthread_mutex_lock(&rt->mu);
	memset(&rt->st, 0, sizeof rt->st);
	pthread_mutex_unlock(&rt->mu);
}
