/* SPDX-License-Identifier: MIT */
/*
 * commit.c -- the four-step commit pipeline and group commit.
 *
 *   1 collect  the tracker's write set (+ pages of a failed commit)
 *   2 prepare  one log slot per page, log space reserved on the medium
 *   3 log      copy pages into the slots, make them durable, write the
 *              commit record (the commit point)
 *   4 update   copy the slots into the home image, make it durable, retire
 *
 * Threads are held back (the gate) only through step 1 and the copy of
 * step 3: after that the log holds the write set as it was at the quiescent
 * point, so the drains, the commit record and step 4 (which copies from the
 * log, not from the working copy) run while the application continues.
 * Groups are numbered by epoch: a FAS that ended while epoch was E is
 * durable once done_epoch >= E and status[E] == 0.
 */
#include <errno.h>
#include <string.h>
#include <time.h>

#include "commit/log.h"
#include "runtime.h"
#include "util/util.h"

static void finish_group(struct vp_rt *rt, uint64_t e, int rc)
{
	rt->status[e % VP_STATUS_RING] = rc;
	rt->done_epoch = e;
	pthread_cond_broadcast(&rt->cv);
}

/* carry_over -- keep a failed commit's write set for the next attempt: the
 * tracker has already re-armed those pages. */
static void carry_over(struct vp_rt *rt)
{
	if (vp__pageset_reserve(&rt->carry, rt->carry.n + rt->ws.n) == 0) {
		memcpy(rt->carry.pg + rt->carry.n, rt->ws.pg, rt->ws.n * sizeof *rt->ws.pg);
		rt->carry.n += rt->ws.n;
	} else {
		/* Cannot remember the pages: every later commit must fail rather
		 * than silently drop them. */
		rt->broken = VP_E_BROKEN;
	}
}

void vp__commit_locked(struct vp_rt *rt)
{
	uint64_t e = rt->epoch++;
	uint64_t t0, t1, t2, t3, t4, t5;
	int rc;

	rt->committing = true;
	rt->gate_closed = true;
	rt->commit_req = false;
	rt->fas_since_commit = 0;
	if (rt->broken) {
		rt->gate_closed = false;
		rt->committing = false;
		finish_group(rt, e, rt->broken);
		return;
	}
	pthread_mutex_unlock(&rt->mu);

	/* ---- step 1: collect (quiescent: no thread inside a FAS) ---- */
	t0 = vp__now_ns();
	rt->ws.n = 0;
	rc = rt->trk.ops->collect(&rt->trk, &rt->ws);
	if (!rc && rt->carry.n) {
		if (vp__pageset_reserve(&rt->ws, rt->ws.n + rt->carry.n) == 0) {
			memcpy(rt->ws.pg + rt->ws.n, rt->carry.pg, rt->carry.n * sizeof *rt->carry.pg);
			rt->ws.n += rt->carry.n;
			rt->carry.n = 0;
		} else {
			rc = vp__err(-ENOMEM, "out of memory merging a failed commit's pages");
		}
		vp__pageset_sort_unique(&rt->ws);
	}
	t1 = vp__now_ns();
	uint64_t n = rt->ws.n;

	/* ---- step 2: prepare ---- */
	if (!rc && n)
		rc = vp__log_prepare(rt, &rt->ws);
	t2 = vp__now_ns();

	/* ---- step 3a: copy the write set into the log (threads paused) ---- */
	if (!rc && n)
		rc = vp__log_copy(rt, &rt->ws);
	t3 = vp__now_ns();
	pthread_mutex_lock(&rt->mu);
	rt->gate_closed = false;
	rt->st.ns_stall += t3 - t0;
	pthread_cond_broadcast(&rt->cv);
	pthread_mutex_unlock(&rt->mu);

	/* ---- step 3b: make the log durable, commit record ---- */
	uint64_t seq = rt->seq + 1;
	if (!rc && n)
		rc = vp__log_commit(rt, seq, n);
	t4 = vp__now_ns();
	if (rc && n)
		carry_over(rt);

	pthread_mutex_lock(&rt->mu);
	if (!rc && n)
		rt->seq = seq;
	finish_group(rt, e, rc);
	pthread_mutex_unlock(&rt->mu);

	/* ---- step 4: update the home image, retire the log ---- */
	int rc4 = 0;
	if (!rc && n)
		rc4 = vp__log_apply(rt, seq, n);
	t5 = vp__now_ns();

	pthread_mutex_lock(&rt->mu);
	if (rc4) {
		/* The group is durable in the log; recovery at the next pmap
		 * finishes it. The log cannot take another group meanwhile. */
		rt->broken = VP_E_BROKEN;
		vp__misuse(VP_E_BROKEN, "updating the home image of %s failed after the commit point (%s); "
				        "later commits fail until the pool is mapped again", rt->pool.path, vp_strerror(rc4));
	}
	if (rc) {
		rt->st.failed_commits++;
	} else if (n) {
		rt->st.commits++;
		rt->st.pages_logged += n;
		rt->st.bytes_logged += n * (VP_PAGE + sizeof(struct vp_logdesc)) + 2 * sizeof(struct vp_logrec);
	} else {
		rt->st.empty_commits++;
	}
	rt->st.ns_collect += t1 - t0;
	rt->st.ns_prepare += t2 - t1;
	rt->st.ns_log += (t3 - t2) + (t4 - t3);
	rt->st.ns_update += t5 - t4;
	rt->committing = false;
	pthread_cond_broadcast(&rt->cv);
}

/* vp__wait_durable_locked -- wait until group `need` finished; run the
 * commit ourselves when the system is quiescent and nobody else does. */
int vp__wait_durable_locked(struct vp_rt *rt, uint64_t need)
{
	while (rt->done_epoch < need) {
		if (rt->active == 0 && !rt->committing) {
			vp__commit_locked(rt);
			continue;
		}
		pthread_cond_wait(&rt->cv, &rt->mu);
	}
	return rt->status[need % VP_STATUS_RING];
}

/* committer -- relaxed mode: commit every interval_ms if any FAS ended. */
static void *committer(void *arg)
{
	struct vp_rt *rt = arg;
	pthread_mutex_lock(&rt->mu);
	while (!rt->committer_stop) {
		struct timespec ts;
		clock_gettime(CLOCK_REALTIME, &ts);
		uint64_t ns = (uint64_t)ts.tv_nsec + (uint64_t)rt->interval_ms * 1000000ull;
		ts.tv_sec += (time_t)(ns / 1000000000ull);
		ts.tv_nsec = (long)(ns % 1000000000ull);
		int w = 0;
		while (!rt->committer_stop && !rt->commit_req && w != ETIMEDOUT)
			w = pthread_cond_timedwait(&rt->cv, &rt->mu, &ts);
		if (rt->committer_stop)
			break;
		if (rt->fas_since_commit == 0 && !rt->commit_req)
			continue;
		uint64_t need = rt->epoch;
		rt->commit_req = true;
		vp__wait_durable_locked(rt, need);
	}
	pthread_mutex_unlock(&rt->mu);
	return NULL;
}

int vp__committer_start(struct vp_rt *rt)
{
	rt->committer_stop = false;
	int e = pthread_create(&rt->committer, NULL, committer, rt);
	if (e)
		return vp__err(-e, "cannot start the committer thread: %s", strerror(e));
	rt->committer_on = true;
	return 0;
}

void vp__committer_stop(struct vp_rt *rt)
{
	if (!rt->committer_on)
		return;
	pthread_mutex_lock(&rt->mu);
	rt->committer_stop = true;
	pthread_cond_broadcast(&rt->cv);
	pthread_mutex_unlock(&rt->mu);
	pthread_join(rt->committer, NULL);
	rt->committer_on = false;
}
