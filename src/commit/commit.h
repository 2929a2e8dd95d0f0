/* SPDX-License-Identifier: MIT */
/*
 * commit.h -- the commit layer's state and entry points: failure-atomic
 * sections (fas.c), the four-step pipeline and group commit (commit.c) over
 * the redo log (log.c). One pool per process: one instance, vp__cm, which
 * the runtime opens at pmap() over the pool, the tracker and the working
 * copy it mapped, and closes at punmap().
 */
#ifndef VP_COMMIT_H
#define VP_COMMIT_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "commit/log.h"
#include "commit/snap.h"
#include "commit/verify.h"
#include "pool/pool.h"
#include "track/track.h"
#include "volipmem.h"

#define VP_STATUS_RING 256

struct vp_commit {
	bool on;                  /* a pool is mapped: FASes commit to it      */
	bool detached;            /* forked child: never writes the pool       */
	struct vp_pool *pool;
	struct vp_tracker *trk;

	/* ---- under mu ---- */
	pthread_mutex_t mu;
	pthread_cond_t cv;
	unsigned active;          /* threads inside an outermost FAS           */
	bool gate_closed;         /* a commit is collecting/copying its set    */
	bool commit_req;          /* a commit has been asked for               */
	bool committing;          /* a commit is between collect and step 4 end */
	uint64_t epoch;           /* the open group (collected next)           */
	uint64_t done_epoch;      /* the newest group that finished            */
	int status[VP_STATUS_RING]; /* result of each finished group           */
	int broken;               /* sticky error after a post-commit failure  */
	uint64_t seq;             /* log sequence number of the last group     */
	uint64_t fas_since_commit;/* outermost FASes ended since last commit   */
	unsigned spinners;        /* threads in vp__cm_wait's spin             */
	unsigned ncpu;            /* online CPUs, at vp__commit_open           */
	_Atomic uint64_t wake_gen;/* bumped by every vp__cm_wake (read unlocked) */
	struct vp_stats st;       /* the commit counters of vp_stats()         */

	/* ---- working sets (used by the committer only) ---- */
	struct vp_pageset ws;     /* this commit's write set                   */
	struct vp_pageset carry;  /* pages of a failed commit, retried         */
	struct vp_log log;        /* the redo log                              */
	struct vp_verify vf;      /* verify mode (VOLIPMEM_VERIFY)             */
	struct vp_snap snap;      /* the snapshot of step 3a (cc tracker)      */

	/* ---- durability mode ---- */
	int mode;                 /* VP_SYNC or VP_RELAXED                      */
	unsigned interval_ms;
	pthread_t committer;
	pthread_cond_t tick;      /* the committer's idle wait: signalled only
	                             to stop it (under mu), never by
	                             vp__cm_wake (commit.c, committer)         */
	bool committer_on;
	bool committer_stop;
};

extern struct vp_commit vp__cm;

/* vp__commit_open -- start committing to pool, whose working copy is heap
 * (tracked by trk) and whose log's last group is seq: fresh counters, the
 * mode from interval_ms (0: synchronous), the committer thread in relaxed
 * mode. */
int vp__commit_open(struct vp_commit *cm, struct vp_pool *pool, struct vp_tracker *trk, const uint8_t *heap,
		    uint64_t seq, unsigned interval_ms);
/* vp__commit_retire -- after the final pcommit: wait for its step 4, then
 * retire the log (both records APPLIED), so a closed pool's log is empty.
 * Leaves the log alone when a step 4 failed (recovery must replay it). */
int vp__commit_retire(struct vp_commit *cm);
/* vp__commit_close -- stop (after the final pcommit) and free the sets. */
void vp__commit_close(struct vp_commit *cm);
/* vp__commit_forked -- in a forked child: never commit, never wait on the
 * parent's committer. pre: the fork handler holds no other lock. */
void vp__commit_forked(struct vp_commit *cm);
/* vp__commit_stats -- the counters, under mu. */
void vp__commit_stats(struct vp_commit *cm, struct vp_stats *out, bool reset);

/* vp__commit_locked -- run one commit; pre: mu held, active == 0, !committing. */
void vp__commit_locked(struct vp_commit *cm);
int vp__wait_durable_locked(struct vp_commit *cm, uint64_t need);
/* vp__cm_wake -- wake every thread waiting in vp__cm_wait. pre: mu held. */
void vp__cm_wake(struct vp_commit *cm);
/* vp__cm_wait -- like pthread_cond_wait(cv, mu), and like it may return
 * without a wake-up (callers loop on their condition). It first spins with
 * mu released for up to VOLIPMEM_SPIN_US when that leaves a CPU free for
 * the committer. pre: mu held. */
void vp__cm_wait(struct vp_commit *cm);
int vp__committer_start(struct vp_commit *cm);
void vp__committer_stop(struct vp_commit *cm);
void vp__fas_reset_thread(void);

#endif
