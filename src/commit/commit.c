/* SPDX-License-Identifier: MIT */
/*
 * commit.c -- the four-step commit pipeline and group commit.
 *
 *   1 collect  the tracker's write set (+ pages of a failed commit)
 *   2 prepare  one log slot per page, after the newest committed group
 *              (or at slot 0 after retiring the log), space reserved
 *   3 log      copy pages into the slots, store record A, make them
 *              durable in one drain (the commit point)
 *   4 update   store record B, copy the slots into the home image, make
 *              both durable in one drain; then the group is acknowledged.
 *              The records keep naming the group until the log wraps or
 *              the pool is closed (commit/log.c, "Appending")
 *
 * Threads are held back (the gate) only through step 1 and the copy of
 * step 3 -- or through step 1 alone when the copy runs concurrently
 * (cow.c: the set is made read-only and a writer saves a page before it
 * changes it), or through step 1 and a DRAM snapshot of the lines step 3a
 * reads (snap.c: cc, and the page trackers in relaxed mode): after that the log holds the write set as it was at the quiescent
 * point, so the drains, the commit record and step 4 (which copies from the
 * log, not from the working copy) run while the application continues.
 * Groups are numbered by epoch: a FAS that ended while epoch was E is
 * durable once done_epoch >= E and status[E] == 0.
 */
#include <errno.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "commit/bound.h"
#include "commit/commit.h"
#include "commit/cow.h"
#include "commit/snap.h"
#include "commit/verify.h"
#include "util/options.h"
#include "util/util.h"

void (*vp__commit_test_hook)(uint64_t epoch);

struct vp_commit vp__cm = {
	.mu = PTHREAD_MUTEX_INITIALIZER,
	.cv = PTHREAD_COND_INITIALIZER,
	.tick = PTHREAD_COND_INITIALIZER,
};

static void finish_group(struct vp_commit *cm, uint64_t e, int rc)
{
	cm->status[e % VP_STATUS_RING] = rc;
	cm->done_epoch = e;
	vp__bound_group_finished(&vp__bound);
	vp__cm_wake(cm);
}

/* carry_over -- keep a failed commit's write set for the next attempt: the
 * tracker has already re-armed those pages. */
static void carry_over(struct vp_commit *cm)
{
	if (vp__pageset_reserve(&cm->carry, cm->carry.n + cm->ws.n) == 0) {
		memcpy(cm->carry.pg + cm->carry.n, cm->ws.pg, cm->ws.n * sizeof *cm->ws.pg);
		cm->carry.n += cm->ws.n;
	} else {
		/* Cannot remember the pages: every later commit must fail rather
		 * than silently drop them. */
		cm->broken = VP_E_BROKEN;
	}
}

/* verify_scan -- verify mode's look at the working copy before collect();
 * false (with a notice) when it could not run, so this commit goes
 * unchecked rather than failing. */
static bool verify_scan(struct vp_commit *cm, uint64_t *checked)
{
	int rc = vp__verify_scan(&cm->vf, cm->trk, cm->pool->map + cm->pool->sb.home_off, checked);
	if (rc)
		vp__diag(0, "verify: this commit is not checked: %s", vp_errormsg());
	return rc == 0;
}

void vp__commit_locked(struct vp_commit *cm)
{
	uint64_t e = cm->epoch++;
	vp__bound_group_started(&vp__bound);
	uint64_t t0, t1, t2, t3, t4, t5;
	int rc;

	cm->committing = true;
	cm->gate_closed = true;
	cm->commit_req = false;
	cm->fas_since_commit = 0;
	bool relaxed = cm->mode == VP_RELAXED;
	if (cm->broken) {
		cm->gate_closed = false;
		cm->committing = false;
		finish_group(cm, e, cm->broken);
		return;
	}
	pthread_mutex_unlock(&cm->mu);

	/* ---- step 1: collect (quiescent: no thread inside a FAS) ---- */
	t0 = vp__ticks();
	cm->ws.n = 0;
	uint64_t vchecked = 0, vmissed = 0;
	bool verify = cm->vf.on && verify_scan(cm, &vchecked);
	rc = cm->trk->ops->collect(cm->trk, &cm->ws);
	/* The tracker's line masks cover what it collected now; a failed
	 * commit's pages (carried over) are diffed whole. */
	cm->log.lines_from = cm->trk->ops->lines && !cm->carry.n ? cm->trk : NULL;
	if (!rc && cm->carry.n) {
		if (vp__pageset_reserve(&cm->ws, cm->ws.n + cm->carry.n) == 0) {
			memcpy(cm->ws.pg + cm->ws.n, cm->carry.pg, cm->carry.n * sizeof *cm->carry.pg);
			cm->ws.n += cm->carry.n;
			cm->carry.n = 0;
		} else {
			rc = vp__err(-ENOMEM, "out of memory merging a failed commit's pages");
		}
		vp__pageset_sort_unique(&cm->ws);
	}
	if (!rc && vp__verify_test_drop)
		vp__verify_test_drop(&cm->ws);
	if (!rc && verify)
		rc = vp__verify_check(&cm->vf, cm->trk, &cm->ws, &vmissed);
	/* A line the tracker missed is not among its candidates: diff this
	 * set whole, so that verify mode logs what it reported. */
	if (vmissed)
		cm->log.lines_from = NULL;
	t1 = vp__ticks();
	uint64_t n = cm->ws.n, used = 0;
	uint64_t stored0 = cm->pool->ps.stored, drains0 = cm->pool->ps.drains, hits0 = cm->log.shadow.hits;

	/* ---- step 2: prepare ---- */
	if (!rc && n)
		rc = vp__log_prepare(&cm->log, &cm->ws);
	t2 = vp__ticks();

	/* ---- step 3a: copy the write set into the log: threads paused, or
	 * (cow.c) the set made read-only here and copied while they run, or
	 * (snap.c) its recorded lines copied into the snapshot here and
	 * logged from there while they run ---- */
	/* A concurrent copy forced on (VOLIPMEM_CONCURRENT_COPY=on) is
	 * taken where the tracker can, before a snapshot. */
	bool cow_forced = vp__cow.want == 1 && vp__cow.mode != VP_TRK_COW_NONE;
	bool snap = !rc && n && !cow_forced &&
		    vp__snap_take(&cm->snap, &cm->ws, cm->log.heap, cm->log.lines_from, relaxed);
	int cow = !rc && n && !snap ? vp__cow_begin(&vp__cow, &cm->ws) : VP_COW_OFF;
	unsigned long long cow_f0 = atomic_load(&vp__cow.faults);
	if (!rc && n && cow != VP_COW_CONCURRENT && !snap)
		rc = vp__log_copy(&cm->log, &cm->ws, &used);
	t3 = vp__ticks();
	pthread_mutex_lock(&cm->mu);
	cm->gate_closed = false;
	cm->st.ns_stall += t3 - t0;
	cm->st.ns_pause += t3 - t0;
	vp__cm_wake(cm);
	pthread_mutex_unlock(&cm->mu);
	uint64_t tc = t3;
	if (snap) {
		/* The arena holds every line the diff reads as it was at the
		 * quiescent point; writes from now on go to the working copy
		 * and the tracker's line map, for the next group. */
		if (vp__snap_test_hook)
			vp__snap_test_hook(e);
		cm->log.snap = cm->snap.base;
		cm->log.snap_off = cm->snap.off;
		rc = vp__log_copy(&cm->log, &cm->ws, &used);
		cm->log.snap = NULL;
	}
	if (cow == VP_COW_CONCURRENT) {
		if (vp__cow_test_hook)
			vp__cow_test_hook(1);
		tc = vp__ticks();
		rc = vp__log_copy(&cm->log, &cm->ws, &used);
	}
	if (cow != VP_COW_OFF) {
		int rce = vp__cow_end(&vp__cow);
		if (!rc && rce)
			rc = vp__err(rce, "giving back the pages of the write set after the copy failed: %s",
				     strerror(-rce));
	}
	/* After the copy, concurrent or not: it is what fills log.changed. The
	 * tracker's state it updates is the collector's, untouched until the
	 * next commit. */
	if (!rc && n && cm->trk->ops->settled)
		cm->trk->ops->settled(cm->trk, &cm->ws, cm->log.changed);
	/* The copy's cost feeds the concurrent copy's cost model only where
	 * it decides (auto); converting ticks reads the clock. */
	if (n && !snap && vp__cow.want == 2)
		vp__cow_observe(&vp__cow, n, vp__ticks_ns(cow == VP_COW_CONCURRENT ? vp__ticks() - tc : t3 - t2));

	/* ---- step 3b: make the log durable with record A (the commit
	 * point, drain D1) ---- */
	if (vp__commit_test_hook)
		vp__commit_test_hook(e);
	uint64_t seq = cm->seq + 1;
	if (!rc && used)
		rc = vp__log_commit(&cm->log, seq, used);
	t4 = vp__ticks();
	if (rc && n)
		carry_over(cm);

	/* ---- step 4: record B and the home image (drain D2). The group is
	 * acknowledged only after it: both record copies name it then. ---- */
	int rc4 = 0;
	if (!rc && used)
		rc4 = vp__log_apply(&cm->log, used);
	t5 = vp__ticks();
	/* The shadows took this group's lines in step 3; home has not, or
	 * not surely: the next group diffs against home. */
	if (rc || rc4)
		vp__shadow_drop(&cm->log.shadow);
	/* Threads run: the one place the arena may grow (and fault in). */
	vp__snap_grow(&cm->snap);

	pthread_mutex_lock(&cm->mu);
	if (!rc && used)
		cm->seq = seq;
	/* A failed D2 leaves the group durable in record A and its slots
	 * (recovery replays it), but record B is not known durable: the
	 * group is reported failed rather than acknowledged on one copy. */
	finish_group(cm, e, rc ? rc : rc4);
	if (rc4) {
		/* The group is durable in the log; recovery at the next pmap
		 * finishes it. The log cannot take another group meanwhile. */
		cm->broken = VP_E_BROKEN;
		vp__misuse(VP_E_BROKEN, "updating the home image of %s failed after the commit point (%s); "
				        "later commits fail until the pool is mapped again", cm->pool->path, vp_strerror(rc4));
	}
	if (rc || rc4) {
		cm->st.failed_commits++;
	} else if (used) {
		cm->st.commits++;
		cm->st.pages_logged += cm->log.entries;
		cm->st.bytes_logged += cm->log.bytes + used * sizeof(struct vp_logdesc) + 2 * sizeof(struct vp_logrec);
	} else {
		cm->st.empty_commits++;
	}
	cm->st.pages_collected += n;
	cm->st.verify_pages_checked += vchecked;
	cm->st.verify_missed_lines += vmissed;
	cm->st.bytes_persisted += cm->pool->ps.stored - stored0;
	cm->st.drains += cm->pool->ps.drains - drains0;
	cm->st.ns_collect += t1 - t0;
	cm->st.ns_prepare += t2 - t1;
	cm->st.ns_log += (t3 - t2) + (t4 - t3);
	cm->st.cow_commits += cow == VP_COW_CONCURRENT;
	cm->st.snap_commits += snap;
	cm->st.shadow_hits += cm->log.shadow.hits - hits0;
	cm->st.cow_faults += atomic_load(&vp__cow.faults) - cow_f0;
	cm->st.ns_update += t5 - t4;
	cm->committing = false;
	vp__cm_wake(cm);
}

void vp__cm_wake(struct vp_commit *cm)
{
	atomic_fetch_add_explicit(&cm->wake_gen, 1, memory_order_release);
	pthread_cond_broadcast(&cm->cv);
}

/*
 * A thread that sleeps on cv and is woken from another CPU pays the
 * wake-up of its CPU, which idles meanwhile: on a virtual machine an
 * interrupt through the hypervisor, measured here at several us beside a
 * commit of ~5 us (docs/COMMIT.md, "Waiting"). So a waiter first spins,
 * watching wake_gen, which every vp__cm_wake bumps under mu -- but only
 * while another CPU is left for the thread that will wake it, so on a
 * machine with more runnable threads than CPUs at most ncpu - 1 spin and
 * the rest sleep at once. A wake-up cannot be lost: the spinner re-reads
 * wake_gen under mu before it sleeps, and every bump happens under mu.
 */
static inline void cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
	__builtin_ia32_pause();
#else
	atomic_signal_fence(memory_order_seq_cst);
#endif
}

void vp__cm_wait(struct vp_commit *cm)
{
	uint64_t spin_ns = (uint64_t)vp__opt.spin_us * 1000;
	if (spin_ns && cm->spinners + 1 < cm->ncpu) {
		uint64_t g = atomic_load_explicit(&cm->wake_gen, memory_order_relaxed);
		cm->spinners++;
		pthread_mutex_unlock(&cm->mu);
		uint64_t t0 = vp__now_ns();
		for (unsigned i = 1; atomic_load_explicit(&cm->wake_gen, memory_order_acquire) == g; i++) {
			cpu_relax();
			if (i % 64 == 0 && vp__now_ns() - t0 > spin_ns)
				break;
		}
		pthread_mutex_lock(&cm->mu);
		cm->spinners--;
		if (atomic_load_explicit(&cm->wake_gen, memory_order_relaxed) != g)
			return;
	}
	pthread_cond_wait(&cm->cv, &cm->mu);
}

/* vp__wait_durable_locked -- wait until group `need` finished; run the
 * commit ourselves when the system is quiescent and nobody else does. */
int vp__wait_durable_locked(struct vp_commit *cm, uint64_t need)
{
	while (cm->done_epoch < need) {
		if (cm->active == 0 && !cm->committing) {
			vp__commit_locked(cm);
			continue;
		}
		vp__cm_wait(cm);
	}
	return cm->status[need % VP_STATUS_RING];
}

/* committer -- relaxed mode: commit every interval_ms if any FAS ended.
 * Between commits it sleeps on its own condition variable, tick, not on
 * cv: every commit broadcasts cv twice (gate open, group done), and each
 * broadcast woke the sleeping committer, which took mu and slept again --
 * a futex wake, two context switches and contention for mu per commit
 * where another thread commits (psync() back to back, as vmcached's
 * per-request mode does). Nothing needs it sooner: whoever asks for a
 * commit (pcommit, a synchronous pend, the relaxed bound's wait) waits
 * for it in vp__wait_durable_locked and runs it itself once quiescent. */
static void *committer(void *arg)
{
	struct vp_commit *cm = arg;
	pthread_mutex_lock(&cm->mu);
	while (!cm->committer_stop) {
		struct timespec ts;
		clock_gettime(CLOCK_REALTIME, &ts);
		uint64_t ns = (uint64_t)ts.tv_nsec + (uint64_t)cm->interval_ms * 1000000ull;
		ts.tv_sec += (time_t)(ns / 1000000000ull);
		ts.tv_nsec = (long)(ns % 1000000000ull);
		int w = 0;
		while (!cm->committer_stop && w != ETIMEDOUT)
			w = pthread_cond_timedwait(&cm->tick, &cm->mu, &ts);
		if (cm->committer_stop)
			break;
		if (cm->fas_since_commit == 0 && !cm->commit_req)
			continue;
		uint64_t need = cm->epoch;
		cm->commit_req = true;
		vp__wait_durable_locked(cm, need);
	}
	pthread_mutex_unlock(&cm->mu);
	return NULL;
}

int vp__committer_start(struct vp_commit *cm)
{
	cm->committer_stop = false;
	int e = pthread_create(&cm->committer, NULL, committer, cm);
	if (e)
		return vp__err(-e, "cannot start the committer thread: %s", strerror(e));
	cm->committer_on = true;
	return 0;
}

void vp__committer_stop(struct vp_commit *cm)
{
	if (!cm->committer_on)
		return;
	pthread_mutex_lock(&cm->mu);
	cm->committer_stop = true;
	pthread_cond_signal(&cm->tick);
	vp__cm_wake(cm);
	pthread_mutex_unlock(&cm->mu);
	pthread_join(cm->committer, NULL);
	cm->committer_on = false;
}

int vp__commit_open(struct vp_commit *cm, struct vp_pool *pool, struct vp_tracker *trk, const uint8_t *heap,
		    uint64_t seq, unsigned interval_ms)
{
	vp__ticks_init();
	long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
	cm->ncpu = ncpu > 0 ? (unsigned)ncpu : 1;
	cm->spinners = 0;
	cm->pool = pool;
	cm->trk = trk;
	cm->log = (struct vp_log){.pool = pool, .heap = heap};
	cm->seq = seq;
	cm->active = 0;
	cm->gate_closed = cm->commit_req = cm->committing = false;
	cm->epoch = 1;
	cm->done_epoch = 0;
	cm->broken = 0;
	cm->detached = false;
	cm->carry.n = 0;
	memset(&cm->st, 0, sizeof cm->st);
	int rc0 = vp__cow_open(&vp__cow, trk);
	if (rc0)
		return rc0;
	cm->mode = interval_ms ? VP_RELAXED : VP_SYNC;
	cm->interval_ms = interval_ms;
	vp__snap_open(&cm->snap, trk);
	int rc = vp__opt.verify ? vp__verify_open(&cm->vf, trk) : 0;
	if (rc) {
		vp__cow_close(&vp__cow);
		return rc;
	}
	cm->on = true;
	rc = cm->mode == VP_RELAXED ? vp__committer_start(cm) : 0;
	if (rc) {
		cm->on = false;
		vp__verify_close(&cm->vf);
		vp__cow_close(&vp__cow);
	}
	return rc;
}

int vp__commit_retire(struct vp_commit *cm)
{
	pthread_mutex_lock(&cm->mu);
	while (cm->committing)
		vp__cm_wait(cm);
	int rc = vp__log_retire(&cm->log);
	pthread_mutex_unlock(&cm->mu);
	return rc;
}

void vp__commit_close(struct vp_commit *cm)
{
	cm->on = false;
	cm->detached = false;
	vp__pageset_free(&cm->ws);
	vp__pageset_free(&cm->carry);
	vp__log_free(&cm->log);
	vp__snap_close(&cm->snap);
	if (cm->vf.on)
		vp__verify_close(&cm->vf);
	vp__cow_close(&vp__cow);
}

void vp__commit_forked(struct vp_commit *cm)
{
	cm->detached = true;
	cm->committer_on = false;
	vp__cow_forked(&vp__cow);
	cm->active = 0;
	cm->spinners = 0; /* the parent's spinning threads are not here */
	cm->gate_closed = cm->commit_req = cm->committing = false;
}

void vp__commit_stats(struct vp_commit *cm, struct vp_stats *out, bool reset)
{
	pthread_mutex_lock(&cm->mu);
	if (out) {
		*out = cm->st;
		/* The step times are kept in vp__ticks() units (util.h). */
		out->ns_collect = vp__ticks_ns(out->ns_collect);
		out->ns_prepare = vp__ticks_ns(out->ns_prepare);
		out->ns_log = vp__ticks_ns(out->ns_log);
		out->ns_update = vp__ticks_ns(out->ns_update);
		out->ns_stall = vp__ticks_ns(out->ns_stall);
		out->ns_pause = vp__ticks_ns(out->ns_pause);
		out->ns_bound = cm->mode == VP_RELAXED ? vp__bound_ns(cm->interval_ms) : 0;
	}
	if (reset)
		memset(&cm->st, 0, sizeof cm->st);
	pthread_mutex_unlock(&cm->mu);
}
