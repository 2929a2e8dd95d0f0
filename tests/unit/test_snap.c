/* SPDX-License-Identifier: MIT */
/*
 * test_snap.c -- the DRAM snapshot that opens the gate before step 3a
 * (commit/snap.c), once per tracker: built plainly for the page trackers
 * (uffd, mprotect, full) and with the cc instrumentation for cc
 * (test_snap_cc).
 *
 * In relaxed mode every tracker takes it: a write made after the gate
 * opened, while the group is being logged from the snapshot, belongs to
 * the next group, and the group holds the quiescent-point value. In
 * synchronous mode only cc takes it (a page tracker would copy whole
 * pages for nobody); VOLIPMEM_SNAPSHOT=0 and a concurrent copy forced on
 * (VOLIPMEM_CONCURRENT_COPY=on) turn it off.
 */
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "../common.h"
#include "commit/bound.h"
#include "commit/commit.h"
#include "runtime/runtime.h"

#define MiB (1u << 20)
#define PG 4096

/* cc -- the tracker under test records lines (test_snap_cc) */
static bool cc(void)
{
	const char *t = getenv("VOLIPMEM_TRACKER");
	return t && strcmp(t, "cc") == 0;
}

/* ---- relaxed: the group holds the quiescent-point value ---- */

#define SNAP_QP 0x5150515051505150ull    /* written before the commit      */
#define SNAP_LATER 0x1a7e000000000000ull /* + k: written while it logs     */
#define SNAP_WRITES 20

static volatile uint64_t *snap_x;    /* the line both threads write       */
static uint64_t snap_xpg;            /* its page, from the heap base      */
static atomic_int snap_armed;        /* the next snapshot commit is the one */
static atomic_int snap_phase;        /* 1: gate open, write now; 2: written */
static atomic_ullong snap_epoch;     /* that commit's group                */
static atomic_int next_seen;         /* the next group's hook ran          */
static uint64_t next_home;           /* home's x before the next group's 3b */
static uint64_t next_lines;          /* the next group's lines of x's page  */
static bool next_has_page;

/* snap_hook -- after the gate opened, before step 3a reads the snapshot:
 * let the writer run its FASes on x and wait until it has. */
static void snap_hook(uint64_t e)
{
	bool has = false;
	for (size_t i = 0; i < vp__cm.ws.n; i++)
		has |= vp__cm.ws.pg[i] == snap_xpg;
	int one = 1;
	if (!has || !atomic_compare_exchange_strong(&snap_armed, &one, 0))
		return;
	atomic_store(&snap_epoch, e);
	atomic_store(&snap_phase, 1);
	for (int i = 0; i < 2000000 && atomic_load(&snap_phase) != 2; i++)
		sched_yield();
}

/* commit_hook -- before step 3b of every commit: in the group after that
 * one, the home image holds that group (its step 4 is drained). */
static void commit_hook(uint64_t e)
{
	uint64_t se = atomic_load(&snap_epoch);
	if (!se || e != se + 1 || atomic_load(&next_seen))
		return;
	const uint8_t *home = vp__cm.pool->map + vp__cm.pool->sb.home_off;
	memcpy(&next_home, home + ((const uint8_t *)snap_x - (const uint8_t *)vp_heap_base()), sizeof next_home);
	for (size_t i = 0; i < vp__cm.ws.n; i++)
		next_has_page |= vp__cm.ws.pg[i] == snap_xpg;
	if (vp__rt.trk.ops->lines)
		next_lines = vp__rt.trk.ops->lines(&vp__rt.trk, snap_xpg);
	atomic_store(&next_seen, 1);
}

static void *snap_writer(void *arg)
{
	(void)arg;
	while (atomic_load(&snap_phase) != 1)
		sched_yield();
	for (uint64_t k = 0; k < SNAP_WRITES; k++) {
		pstart();
		*snap_x = SNAP_LATER + k;
		pend();
	}
	atomic_store(&snap_phase, 2);
	return NULL;
}

/* Pages of the root: 0 three scattered lines, 1 x's, 2 VP_LINES_LOG_MAX
 * (32) lines, 3 every line, 4 33 lines (logged whole), 5 one line -- so
 * that the snapshot packs pages of a few lines between whole ones (cc) and
 * the log must find each page's lines where the snapshot put them. */
#define SNAP_PAGES 6
static const unsigned snap_lines[][40] = {
	{3, 1, 9, 60},
	{0},
	{32, 0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30, 33, 35, 37, 39, 41, 43, 45, 47, 49, 51, 53,
	 55, 57, 59, 61, 63},
	{0},
	{33, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28,
	 29, 30, 31, 32},
	{1, 63},
};

/* snap_pattern -- write (or check) a byte pattern naming page and line on
 * the lines above. */
static void snap_pattern(uint8_t *r, bool write)
{
	for (unsigned pg = 0; pg < SNAP_PAGES; pg++)
		for (unsigned i = 1; i <= snap_lines[pg][0]; i++) {
			unsigned ln = snap_lines[pg][i];
			uint8_t *l = r + pg * PG + ln * 64;
			for (unsigned b = 0; b < 64; b++) {
				uint8_t v = (uint8_t)(pg * 64 + ln + b * 7 + 1);
				if (write)
					l[b] = v;
				else if (l[b] != v)
					fail_msg("page %u line %u byte %u is %#x after reopening, not %#x", pg, ln, b, l[b], v);
			}
		}
}

static void test_snapshot(void **state)
{
	(void)state;
	const char *path = vpt_pool_path("snap");
	/* Relaxed; 100 ms keeps the bound (400 ms) from making the writer's
	 * pstart() wait for the group the hook holds back on a loaded machine. */
	setenv("VOLIPMEM_COMMIT_INTERVAL_MS", "100", 1);
	int rc = pmap(path, 16 * MiB, 0);
	unsetenv("VOLIPMEM_COMMIT_INTERVAL_MS");
	assert_int_equal(rc, 0);
	assert_true(vp__cm.snap.on);
	uint8_t *r = proot("snap", SNAP_PAGES * PG, NULL);
	assert_non_null(r);
	snap_x = (volatile uint64_t *)(r + PG + 5 * 64);
	snap_xpg = (uint64_t)((uint8_t *)snap_x - (uint8_t *)vp_heap_base()) / PG;
	/* The first commit has no arena yet: it copies paused and grows it. */
	pstart();
	*snap_x = 1;
	assert_int_equal(pend(), 0);
	assert_int_equal(pcommit(), 0);

	vp_stats_reset();
	atomic_store(&snap_phase, 0);
	atomic_store(&snap_epoch, 0);
	atomic_store(&next_seen, 0);
	next_has_page = false;
	pthread_t w;
	assert_int_equal(pthread_create(&w, NULL, snap_writer, NULL), 0);
	vp__snap_test_hook = snap_hook;
	vp__commit_test_hook = commit_hook;
	pstart();
	*snap_x = SNAP_QP;
	memset(r + 3 * PG, 0x5a, PG); /* a page with every line recorded */
	snap_pattern(r, true);
	atomic_store(&snap_armed, 1);
	assert_int_equal(pend(), 0);
	assert_int_equal(pcommit(), 0); /* the snapshot's group */
	if (!atomic_load(&snap_epoch))
		atomic_store(&snap_phase, 1); /* no snapshot was taken: fail below, not hang */
	assert_int_equal(pthread_join(w, NULL), 0);
	assert_int_equal(pcommit(), 0); /* the writer's */
	vp__snap_test_hook = NULL;
	vp__commit_test_hook = NULL;

	struct vp_stats st;
	vp_stats(&st);
	assert_true(st.snap_commits >= 1);
	assert_int_equal(atomic_load(&snap_phase), 2); /* the writer ran while the group was logged */
	assert_true(atomic_load(&next_seen));
	if (next_home != SNAP_QP)
		fail_msg("the group logged from the snapshot holds %#llx at x, not the quiescent-point %#llx",
			 (unsigned long long)next_home, (unsigned long long)SNAP_QP);
	assert_true(next_has_page); /* the later writes: the next group's */
	if (cc())
		assert_true(next_lines >> 5 & 1);
	assert_int_equal(*snap_x, SNAP_LATER + SNAP_WRITES - 1);
	assert_int_equal(punmap(), 0);

	assert_int_equal(pmap(path, 16 * MiB, VP_OPEN_ONLY), 0);
	r = proot("snap", SNAP_PAGES * PG, NULL);
	assert_int_equal(*(uint64_t *)(r + PG + 5 * 64), SNAP_LATER + SNAP_WRITES - 1);
	snap_pattern(r, false);
	for (unsigned i = 0; i < PG; i++)
		if (r[3 * PG + i] != 0x5a)
			fail_msg("byte %u of the whole-page write is %#x after reopening", i, r[3 * PG + i]);
	assert_int_equal(punmap(), 0);

	/* VOLIPMEM_SNAPSHOT=0: every commit copies with threads paused. */
	setenv("VOLIPMEM_SNAPSHOT", "0", 1);
	rc = pmap(path, 16 * MiB, VP_OPEN_ONLY);
	unsetenv("VOLIPMEM_SNAPSHOT");
	assert_int_equal(rc, 0);
	assert_false(vp__cm.snap.on);
	r = proot("snap", SNAP_PAGES * PG, NULL);
	vp_stats_reset();
	for (int i = 0; i < 3; i++) {
		pstart();
		*(volatile uint64_t *)(r + PG + 5 * 64) = (uint64_t)i;
		assert_int_equal(pend(), 0);
	}
	vp_stats(&st);
	assert_int_equal(st.commits, 3);
	assert_int_equal(st.snap_commits, 0);
	assert_int_equal(punmap(), 0);
}


/* commits -- n synchronous FASes on one line of r, each its own commit;
 * the snapshot commits among them */
static uint64_t commits(uint8_t *r, int n)
{
	vp_stats_reset();
	for (int i = 0; i < n; i++) {
		pstart();
		*(volatile uint64_t *)(r + PG + 7 * 64) = (uint64_t)i + 1;
		assert_int_equal(pend(), 0);
	}
	struct vp_stats st;
	vp_stats(&st);
	assert_int_equal(st.commits, (uint64_t)n);
	return st.snap_commits;
}

/* test_modes -- synchronous: cc takes the snapshot (the first commit grows
 * the arena, the rest use it), a page tracker never does; relaxed with the
 * concurrent copy forced on: the copy, not the snapshot. */
static void test_modes(void **state)
{
	(void)state;
	const char *path = vpt_pool_path("snap-modes");
	assert_int_equal(pmap(path, 16 * MiB, 0), 0);
	uint8_t *r = proot("modes", 4 * PG, NULL);
	assert_non_null(r);
	uint64_t s = commits(r, 4);
	if (cc() && s < 3)
		fail_msg("cc, synchronous: %llu of 4 commits took the snapshot, want 3 or 4", (unsigned long long)s);
	if (!cc() && s != 0)
		fail_msg("a page tracker, synchronous: %llu commits took the snapshot, want none", (unsigned long long)s);
	/* Relaxed, then back: vp_set_durability switches what the commit does. */
	assert_int_equal(vp_set_durability(VP_RELAXED, 5), 0);
	vp_stats_reset();
	for (int i = 0; i < 3; i++) {
		pstart();
		*(volatile uint64_t *)(r + 2 * PG) = (uint64_t)i;
		assert_int_equal(pend(), 0);
		assert_int_equal(pcommit(), 0);
	}
	struct vp_stats st;
	vp_stats(&st);
	if (st.snap_commits < 2)
		fail_msg("relaxed: %llu of %llu commits took the snapshot, want all but the first",
			 (unsigned long long)st.snap_commits, (unsigned long long)st.commits);
	assert_int_equal(vp_set_durability(VP_SYNC, 0), 0);
	s = commits(r, 2);
	assert_int_equal(s, cc() ? 2 : 0);
	assert_int_equal(punmap(), 0);

	if (cc() || strcmp(getenv("VOLIPMEM_TRACKER"), "full") == 0)
		return; /* no concurrent copy to force */
	setenv("VOLIPMEM_CONCURRENT_COPY", "on", 1);
	setenv("VOLIPMEM_COMMIT_INTERVAL_MS", "5", 1);
	int rc = pmap(path, 16 * MiB, VP_OPEN_ONLY);
	unsetenv("VOLIPMEM_CONCURRENT_COPY");
	unsetenv("VOLIPMEM_COMMIT_INTERVAL_MS");
	assert_int_equal(rc, 0);
	r = proot("modes", 4 * PG, NULL);
	vp_stats_reset();
	for (int i = 0; i < 3; i++) {
		pstart();
		*(volatile uint64_t *)(r + 2 * PG) = (uint64_t)i + 10;
		assert_int_equal(pend(), 0);
		assert_int_equal(pcommit(), 0);
	}
	vp_stats(&st);
	assert_int_equal(st.snap_commits, 0);
	assert_true(st.cow_commits >= 1);
	assert_int_equal(punmap(), 0);
}

int main(void)
{
	if (!getenv("VOLIPMEM_TRACKER")) {
		fprintf(stderr, "test_snap: set VOLIPMEM_TRACKER (ctest does)\n");
		return 1;
	}
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_snapshot),
		cmocka_unit_test(test_modes),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
