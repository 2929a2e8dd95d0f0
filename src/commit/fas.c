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
 *
 * Relaxed mode also bounds how far durability may fall behind: an
 * outermost pstart() waits while a FAS that ended more than B ago
 * (commit/bound.h) is not durable, and asks for that commit meanwhile.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "commit/bound.h"
#include "commit/commit.h"
#include "util/options.h"
#include "util/util.h"

static _Thread_local int depth;       /* nesting depth of this thread     */
static _Thread_local bool unmapped;   /* outermost pstart ran before pmap */

void vp__fas_reset_thread(void) { depth = 0; unmapped = false; }

/* coarse_now -- the default bound clock: one vDSO read, no syscall. */
static uint64_t coarse_now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

struct vp_bound vp__bound = {VP_BOUND_NONE, 0, 0, VP_BOUND_NONE};
uint64_t (*vp__bound_clock)(void) = coarse_now;

/* bound_wait -- pstart() found an ended FAS older than B that is not
 * durable: ask for its group's commit and wait until it finished. The
 * caller is outside any FAS (not counted in active) and holds only mu,
 * which the wait releases, so the commit can always run: by the
 * committer, by the thread that ends the last open FAS, or by this one.
 * pre: mu held; now = the bound clock when the wait began. */
static void bound_wait(struct vp_commit *cm, uint64_t now)
{
	struct vp_bound *b = &vp__bound;
	uint64_t need = b->inflight_due != VP_BOUND_NONE ? cm->epoch - 1 : cm->epoch;
	cm->commit_req = true;
	vp__cm_wake(cm);
	vp__wait_durable_locked(cm, need);
	cm->st.ns_bound_wait += vp__bound_clock() - now;
}

void pstart(void)
{
	struct vp_commit *cm = &vp__cm;
	if (depth++ > 0)
		return;
	if (vp_unlikely(!cm->on)) {
		unmapped = true;
		vp__misuse(VP_E_NOTMAPPED, "pstart() called while no pool is mapped (call pmap first)");
		return;
	}
	unmapped = false;
	pthread_mutex_lock(&cm->mu);
	bool waited = false;
	for (;;) {
		if (cm->gate_closed || (cm->commit_req && cm->active > 0)) {
			uint64_t t0 = vp__ticks();
			while (cm->gate_closed || (cm->commit_req && cm->active > 0))
				vp__cm_wait(cm);
			cm->st.ns_stall += vp__ticks() - t0;
		}
		if (vp_likely(vp__bound.due_ns == VP_BOUND_NONE) || cm->detached)
			break;
		uint64_t now = vp__bound_clock();
		if (vp_likely(now <= vp__bound.due_ns))
			break;
		if (!waited)
			cm->st.bound_waits++;
		waited = true;
		bound_wait(cm, now);
	}
	cm->active++;
	pthread_mutex_unlock(&cm->mu);
}

int pend(void)
{
	struct vp_commit *cm = &vp__cm;
	if (vp_unlikely(depth <= 0)) {
		depth = 0;
		return vp__misuse(VP_E_NOFAS, "pend() called without a matching pstart()");
	}
	if (--depth > 0)
		return 0;
	if (vp_unlikely(unmapped || !cm->on)) {
		unmapped = false;
		return vp__err(VP_E_NOTMAPPED, "pend(): the FAS began while no pool was mapped");
	}
	pthread_mutex_lock(&cm->mu);
	cm->active--;
	cm->st.fas++;
	cm->fas_since_commit++;
	int rc = 0;
	if (cm->detached) {
		rc = vp__err(VP_E_DETACHED, "pend() in a forked child: the pool belongs to the parent");
	} else if (cm->mode == VP_RELAXED) {
		struct vp_bound *b = &vp__bound;
		if (!b->open_ns) {
			/* The open group's first FAS: its age is the group's. */
			b->open_ns = vp__bound_clock();
			b->open_due = b->open_ns + vp__bound_ns(cm->interval_ms);
			if (b->due_ns == VP_BOUND_NONE)
				b->due_ns = b->open_due;
		}
		if (cm->active == 0 && cm->commit_req)
			vp__cm_wake(cm);
	} else {
		uint64_t need = cm->epoch;
		cm->commit_req = true;
		rc = vp__wait_durable_locked(cm, need);
	}
	pthread_mutex_unlock(&cm->mu);
	return rc;
}

int pcommit(void)
{
	struct vp_commit *cm = &vp__cm;
	if (depth > 0)
		return vp__misuse(VP_E_INFAS, "pcommit() inside a failure-atomic section would wait on itself");
	if (!cm->on)
		return vp__misuse(VP_E_NOTMAPPED, "pcommit() called while no pool is mapped");
	if (cm->detached)
		return vp__err(VP_E_DETACHED, "pcommit() in a forked child: the pool belongs to the parent");
	pthread_mutex_lock(&cm->mu);
	uint64_t need = cm->epoch;
	cm->commit_req = true;
	vp__cm_wake(cm);
	int rc = vp__wait_durable_locked(cm, need);
	pthread_mutex_unlock(&cm->mu);
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
	struct vp_commit *cm = &vp__cm;
	if (mode != VP_SYNC && mode != VP_RELAXED)
		return vp__misuse(VP_E_INVAL, "vp_set_durability: mode %d is neither VP_SYNC nor VP_RELAXED", mode);
	if (mode == VP_RELAXED && interval_ms == 0)
		return vp__misuse(VP_E_INVAL, "vp_set_durability: relaxed mode needs interval_ms >= 1");
	if (depth > 0)
		return vp__misuse(VP_E_INFAS, "vp_set_durability inside a failure-atomic section");
	vp__opt.interval_ms = mode == VP_RELAXED ? interval_ms : 0;
	vp__option_from_code(VP_OPT_COMMIT_INTERVAL_MS);
	if (!cm->on)
		return 0;
	vp__committer_stop(cm);
	/* Everything written under the old mode becomes durable first. */
	int rc = pcommit();
	pthread_mutex_lock(&cm->mu);
	cm->mode = mode;
	cm->interval_ms = interval_ms;
	pthread_mutex_unlock(&cm->mu);
	if (mode == VP_RELAXED) {
		int r2 = vp__committer_start(cm);
		if (r2)
			return r2;
	}
	return rc;
}
