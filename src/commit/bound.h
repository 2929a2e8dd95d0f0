/* SPDX-License-Identifier: MIT */
/*
 * bound.h -- the relaxed-mode durability bound, private to commit/.
 *
 * With a commit interval of N ms, a FAS that ended more than B ms ago
 * (B = vp__bound_ns(N)) must be durable before any outermost pstart()
 * returns: pstart() waits for the overdue group instead of letting the
 * loss window grow while commits fall behind. The state below names the
 * oldest ended FAS of the (at most two) groups that are not yet finished:
 * the one being committed (epoch - 1) and the open one (epoch). All fields
 * are under vp__cm.mu.
 */
#ifndef VP_COMMIT_BOUND_H
#define VP_COMMIT_BOUND_H

#include <stdint.h>
#include <time.h>

#define VP_BOUND_NONE UINT64_MAX

struct vp_bound {
	uint64_t due_ns;       /* the oldest unfinished group's first pend()
	                          + B: pstart() waits once the clock passes it;
	                          VP_BOUND_NONE when every ended FAS finished */
	uint64_t open_ns;      /* first pend() of the open group, 0 = none   */
	uint64_t open_due;     /* open_ns + B                                */
	uint64_t inflight_due; /* due of the group being committed, or NONE  */
};

extern struct vp_bound vp__bound;

/* vp__bound_clock -- the clock the bound is measured with; tests replace it
 * with their own. Default: CLOCK_MONOTONIC_COARSE, a vDSO read of the
 * kernel's tick-updated time (resolution one tick, 1-10 ms). */
extern uint64_t (*vp__bound_clock)(void);

/* vp__commit_test_hook -- called (mu not held) by a commit after its copy,
 * before its commit record: lets a test stall a commit where a slow medium
 * would. NULL in normal operation. */
extern void (*vp__commit_test_hook)(uint64_t epoch);

/* vp__bound_ns -- B for an interval of interval_ms: max(4 N, N + 50 ms).
 * 4 N leaves a committer that is due every N ms three more intervals for a
 * commit longer than its period; the N + 50 ms floor keeps ordinary
 * scheduling delays of a busy machine (tens of ms) from stalling writers at
 * small intervals. */
static inline uint64_t vp__bound_ns(unsigned interval_ms)
{
	uint64_t n = (uint64_t)interval_ms * 1000000ull, a = 4 * n, b = n + 50000000ull;
	return a > b ? a : b;
}

/* vp__bound_group_started -- a commit took the open group (under mu). */
static inline void vp__bound_group_started(struct vp_bound *b)
{
	b->inflight_due = b->open_ns ? b->open_due : VP_BOUND_NONE;
	b->open_ns = 0;
	b->due_ns = b->inflight_due;
}

/* vp__bound_group_finished -- the group being committed finished, durable
 * or failed (a failed group's pages are retried by the next commit; the
 * bound does not hold writers hostage to a failing medium, psync() and
 * pcommit() report the failure). Under mu. */
static inline void vp__bound_group_finished(struct vp_bound *b)
{
	b->inflight_due = VP_BOUND_NONE;
	b->due_ns = b->open_ns ? b->open_due : VP_BOUND_NONE;
}

#endif
