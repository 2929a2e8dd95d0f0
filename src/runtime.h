/* SPDX-License-Identifier: MIT */
/*
 * runtime.h -- the process-wide state of the one mapped pool, shared by the
 * pool, commit, heap and tracker modules. One pool per process: a single
 * global instance, vp__rt.
 */
#ifndef VP_RUNTIME_H
#define VP_RUNTIME_H

#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>

#include "pool/pool.h"
#include "track/track.h"
#include "volipmem.h"

#define VP_STATUS_RING 256

struct vp_rt {
	/* ---- pool (set by pmap, constant until punmap) ---- */
	bool mapped;
	bool detached;            /* forked child: never writes the pool       */
	struct vp_pool pool;      /* the file, its superblock and mapping      */
	uint8_t *heap;            /* working copy, at sb.heap_base             */
	size_t heap_size;
	size_t heap_pages;
	size_t reserve;           /* address space reserved at heap            */
	uint64_t log_reserved;    /* bytes of the log area reserved on disk    */
	int sparse;               /* 0 unknown, 1 sparse file, 2 fully reserved */

	/* ---- tracker ---- */
	struct vp_tracker trk;

	/* ---- commit state, under mu ---- */
	pthread_mutex_t mu;
	pthread_cond_t cv;
	unsigned active;          /* threads inside an outermost FAS           */
	bool gate_closed;         /* a commit is collecting/copying its set    */
	bool commit_req;          /* a commit has been asked for               */
	bool committing;          /* a commit is between collect and retire    */
	uint64_t epoch;           /* the open group (collected next)           */
	uint64_t done_epoch;      /* the newest group that finished            */
	int status[VP_STATUS_RING]; /* result of each finished group           */
	int broken;               /* sticky error after a post-commit failure  */
	uint64_t seq;             /* log sequence number of the last group     */
	uint64_t fas_since_commit;/* outermost FASes ended since last commit   */

	/* ---- commit working sets (used by the committer only) ---- */
	struct vp_pageset ws;     /* this commit's write set                   */
	struct vp_pageset carry;  /* pages of a failed commit, retried         */
	struct vp_logdesc *desc;  /* staging copy of the descriptors           */
	size_t desc_cap;

	/* ---- durability mode ---- */
	int mode;                 /* VP_SYNC or VP_RELAXED                      */
	unsigned interval_ms;
	pthread_t committer;
	bool committer_on;
	bool committer_stop;

	/* ---- statistics, under mu ---- */
	struct vp_stats st;
};

extern struct vp_rt vp__rt;

/* ---- commit/ ---- */
/* vp__commit_locked -- run one commit; pre: mu held, active == 0, !committing. */
void vp__commit_locked(struct vp_rt *rt);
int vp__wait_durable_locked(struct vp_rt *rt, uint64_t need);
int vp__committer_start(struct vp_rt *rt);
void vp__committer_stop(struct vp_rt *rt);
void vp__fas_reset_thread(void);

#endif
