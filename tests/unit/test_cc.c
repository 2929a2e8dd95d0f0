/* SPDX-License-Identifier: MIT */
/*
 * test_cc.c -- the cc tracker, in a program built with its instrumentation
 * (clang, tools/cc): each kind of write into the heap inside a FAS -- an
 * 8-byte and a 1-byte store, a struct copy, atomic RMW and compare-exchange, memcpy (inlined and called),
 * memset, snprintf, strcpy, read() -- is collected as exactly its pages and,
 * per page, exactly its lines; what was written is durable; a store the
 * instrumentation cannot see (inline assembly) is not collected, which is
 * why cc is chosen only by name. Without VOLIPMEM_TRACKER=cc the automatic
 * choice never picks it. In relaxed mode the commit opens the gate after a
 * DRAM snapshot of the recorded lines (commit/snap.c): a write made while
 * the group is being logged belongs to the next group, not to this one.
 */
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "common.h"
#include "heap/heap.h"
#include "commit/bound.h"
#include "runtime/runtime.h"

#define MiB (1u << 20)
#define PG 4096

/* lines -- the mask of lines [a, b] */
static uint64_t lines(unsigned a, unsigned b)
{
	return (b == 63 ? ~0ull : (1ull << (b + 1)) - 1) & (~0ull << a);
}

struct line { uint8_t b[64]; };

struct expect { uint64_t pg; uint64_t mask; };

/* check_set -- the last commit collected exactly the pages of want (n of
 * them, increasing), each with exactly its mask. */
static void check_set(uint8_t *r, const struct expect *want, size_t n)
{
	struct vp_stats st;
	vp_stats(&st);
	uint64_t r0 = (uint64_t)(r - (uint8_t *)vp_heap_base()) / PG;
	assert_int_equal(st.pages_collected, n);
	struct vp_tracker *t = &vp__rt.trk;
	assert_non_null(t->ops->lines);
	for (size_t i = 0; i < n; i++) {
		uint64_t got = t->ops->lines(t, r0 + want[i].pg);
		if (got != want[i].mask)
			fail_msg("page %llu of the region: lines %#llx recorded, %#llx written",
				 (unsigned long long)want[i].pg, (unsigned long long)got,
				 (unsigned long long)want[i].mask);
	}
}

static volatile size_t n200 = 200; /* a length the compiler cannot see */

static void test_write_kinds(void **state)
{
	(void)state;
	setenv("VOLIPMEM_STICKY_PAGES", "0", 1);
	const char *path = vpt_pool_path("cc");
	int rc = pmap(path, 16 * MiB, 0);
	unsetenv("VOLIPMEM_STICKY_PAGES");
	assert_int_equal(rc, 0);
	assert_string_equal(vp__rt.trk.ops->name, "cc");
	uint8_t *r = proot("region", 32 * PG, NULL);
	assert_non_null(r);
	assert_int_equal((uintptr_t)r % PG, 0);
	assert_int_equal(pcommit(), 0);

	int fd[2];
	assert_int_equal(pipe(fd), 0);
	char msg[300];
	memset(msg, 'm', sizeof msg);
	assert_int_equal(write(fd[1], msg, sizeof msg), (ssize_t)sizeof msg);
	uint8_t src[256];
	for (unsigned i = 0; i < sizeof src; i++)
		src[i] = (uint8_t)(i + 1);
	struct line ln;
	memset(&ln, 7, sizeof ln);

	vp_stats_reset();
	pstart();
	*(volatile uint64_t *)(r + 3 * PG + 128) = 0x1122334455667788ull;  /* 8 bytes  */
	*(volatile uint8_t *)(r + 5 * PG + 4095) = 9;                     /* 1 byte   */
	memcpy(r + 7 * PG + 60, src, 8);          /* intrinsic, crosses a line */
	memcpy(r + 9 * PG + 4000, src, n200);     /* libc call, crosses a page */
	memset(r + 12 * PG, 0xab, 3 * 64);
	snprintf((char *)r + 14 * PG + 64, 100, "%d-%s", (int)n200, "persist");
	assert_int_equal(read(fd[0], r + 16 * PG + 10, sizeof msg), (ssize_t)sizeof msg);
	strcpy((char *)r + 18 * PG + 1000, "a string");
	*(struct line *)(r + 20 * PG + 5 * 64) = ln;   /* struct copy */
	__atomic_fetch_add((uint64_t *)(r + 24 * PG + 64), 5, __ATOMIC_RELAXED); /* atomic RMW */
	uint64_t expected = 0;
	assert_true(__atomic_compare_exchange_n((uint64_t *)(r + 26 * PG + 3 * 64), &expected, 6, false,
						__ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST)); /* compare-exchange */
	assert_int_equal(pend(), 0);
	close(fd[0]);
	close(fd[1]);

	const struct expect want[] = {
		{3, lines(2, 2)},   {5, lines(63, 63)}, {7, lines(0, 1)},
		{9, lines(62, 63)}, {10, lines(0, 1)},  {12, lines(0, 2)},
		{14, lines(1, 1)},  {16, lines(0, 4)},  {18, lines(15, 15)},
		{20, lines(5, 5)},  {24, lines(1, 1)},  {26, lines(3, 3)},
	};
	check_set(r, want, sizeof want / sizeof want[0]);
	struct vp_stats st;
	vp_stats(&st);
	assert_int_equal(st.pages_logged, 12);

	/* Nothing written since: an empty collection. */
	vp_stats_reset();
	assert_int_equal(pcommit(), 0);
	vp_stats(&st);
	assert_int_equal(st.pages_collected, 0);

	/* A store the instrumentation does not see is not collected. */
	vp_stats_reset();
	pstart();
	uint64_t v = 42;
	__asm__ volatile("movq %1, %0" : "=m"(*(uint64_t *)(r + 22 * PG)) : "r"(v));
	assert_int_equal(pend(), 0);
	vp_stats(&st);
	assert_int_equal(st.pages_collected, 0);
	*(volatile uint64_t *)(r + 22 * PG) = 0; /* back as home has it */
	assert_int_equal(pcommit(), 0);
	assert_int_equal(punmap(), 0);

	/* What was written is durable. */
	assert_int_equal(pmap(path, 16 * MiB, VP_OPEN_ONLY), 0);
	r = proot("region", 32 * PG, NULL);
	assert_int_equal(*(uint64_t *)(r + 3 * PG + 128), 0x1122334455667788ull);
	assert_int_equal(r[5 * PG + 4095], 9);
	assert_memory_equal(r + 7 * PG + 60, src, 8);
	assert_memory_equal(r + 9 * PG + 4000, src, 200);
	assert_int_equal(r[12 * PG + 191], 0xab);
	assert_string_equal((char *)r + 14 * PG + 64, "200-persist");
	assert_memory_equal(r + 16 * PG + 10, msg, sizeof msg);
	assert_string_equal((char *)r + 18 * PG + 1000, "a string");
	assert_memory_equal(r + 20 * PG + 5 * 64, &ln, sizeof ln);
	assert_int_equal(*(uint64_t *)(r + 24 * PG + 64), 5);
	assert_int_equal(*(uint64_t *)(r + 26 * PG + 3 * 64), 6);
	assert_int_equal(punmap(), 0);
}

/* pmalloc/pfree write allocator metadata from inside the library, which is
 * not instrumented: those stores are recorded too, and survive. */
static void test_library_writes(void **state)
{
	(void)state;
	const char *path = vpt_pool_path("cc-alloc");
	assert_int_equal(pmap(path, 16 * MiB, 0), 0);
	void **slots = proot("slots", 512 * sizeof(void *), NULL);
	for (int round = 0; round < 3; round++) {
		pstart();
		for (int i = 0; i < 512; i++) {
			if (slots[i])
				pfree(slots[i]);
			slots[i] = pmalloc((size_t)(16 << (i % 10)));
			assert_non_null(slots[i]);
			memset(slots[i], round + 1, (size_t)(16 << (i % 10)));
		}
		assert_int_equal(pend(), 0);
	}
	assert_int_equal(punmap(), 0);
	assert_int_equal(pmap(path, 16 * MiB, VP_OPEN_ONLY), 0);
	struct vp_heap_report rep;
	char err[400];
	if (vp__heap_check(vp_heap_base(), vp_heap_size(), &rep, err, sizeof err))
		fail_msg("heap check after reopening: %s", err);
	slots = proot("slots", 512 * sizeof(void *), NULL);
	for (int i = 0; i < 512; i++)
		assert_int_equal(((uint8_t *)slots[i])[(16 << (i % 10)) - 1], 3);
	assert_int_equal(punmap(), 0);
}

/* The automatic choice never takes cc, even in an instrumented program. */
static void test_not_automatic(void **state)
{
	(void)state;
	char *saved = getenv("VOLIPMEM_TRACKER") ? strdup(getenv("VOLIPMEM_TRACKER")) : NULL;
	unsetenv("VOLIPMEM_TRACKER");
	assert_int_equal(pmap(vpt_pool_path("cc-auto"), 4 * MiB, 0), 0);
	assert_string_not_equal(vp__rt.trk.ops->name, "cc");
	assert_int_equal(punmap(), 0);
	if (saved) {
		setenv("VOLIPMEM_TRACKER", saved, 1);
		free(saved);
	}
}

/* ---- the snapshot: the group holds the quiescent-point value ---- */

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

static void test_snapshot(void **state)
{
	(void)state;
	const char *path = vpt_pool_path("cc-snap");
	/* Relaxed; 100 ms keeps the bound (400 ms) from making the writer's
	 * pstart() wait for the group the hook holds back on a loaded machine. */
	setenv("VOLIPMEM_COMMIT_INTERVAL_MS", "100", 1);
	int rc = pmap(path, 16 * MiB, 0);
	unsetenv("VOLIPMEM_COMMIT_INTERVAL_MS");
	assert_int_equal(rc, 0);
	assert_true(vp__cm.snap.on);
	uint8_t *r = proot("snap", 4 * PG, NULL);
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
	assert_true(next_has_page);
	assert_true(next_lines >> 5 & 1); /* the later writes: the next group's */
	assert_int_equal(*snap_x, SNAP_LATER + SNAP_WRITES - 1);
	assert_int_equal(punmap(), 0);

	assert_int_equal(pmap(path, 16 * MiB, VP_OPEN_ONLY), 0);
	r = proot("snap", 4 * PG, NULL);
	assert_int_equal(*(uint64_t *)(r + PG + 5 * 64), SNAP_LATER + SNAP_WRITES - 1);
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
	r = proot("snap", 4 * PG, NULL);
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

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_write_kinds),
		cmocka_unit_test(test_library_writes),
		cmocka_unit_test(test_not_automatic),
		cmocka_unit_test(test_snapshot),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
