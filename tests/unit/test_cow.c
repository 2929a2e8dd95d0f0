/* SPDX-License-Identifier: MIT */
/*
 * test_cow.c -- the concurrent copy of step 3a (VOLIPMEM_CONCURRENT_COPY=on).
 *
 * At every commit that copies while threads run, the test's hook takes a
 * snapshot of the whole working copy at the quiescent point, and at the next
 * such point (the previous group's step 4 is then complete) checks that the
 * home image equals that snapshot byte for byte: a page logged after a
 * writer changed it, or a write lost to the next group, makes them differ.
 *
 *   hammer   two writer threads run FASes over runs of up to 300 pages of a
 *            12 MiB region while 100 ms commits copy concurrently (the hook
 *            holds each copy back 300 us, so writers fault on pages not
 *            yet logged); writers must have saved pages (cow_faults > 0).
 *   read     a read() from a pipe into a page of the write set while it is
 *            being copied succeeds (no EFAULT); the group being copied
 *            holds the page as it was, the next one the bytes read, and a
 *            plain store into another protected page likewise.
 * Runs under the uffd and mprotect trackers (the full tracker takes no
 * concurrent copy).
 */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>
#include <cmocka.h>

#include "../common.h"
#include "commit/commit.h"
#include "commit/cow.h"
#include "pool/pool.h"

#define PG 4096
#define NP 3072

static uint8_t *snap;           /* working copy at the last quiescent point */
static size_t heap_len;
static atomic_int mismatches, checks;
static atomic_int hold_us;      /* phase 1: delay before the copy          */
static void (*phase1)(void);

static const uint8_t *home(void) { return vp__cm.pool->map + vp__cm.pool->sb.home_off; }

/* hook -- phase 0: home image == last snapshot; new snapshot. */
static void hook(int phase)
{
	if (phase == 0) {
		if (snap) {
			atomic_fetch_add(&checks, 1);
			if (memcmp(home(), snap, heap_len) != 0) {
				size_t i = 0;
				while (home()[i] == snap[i])
					i++;
				if (atomic_fetch_add(&mismatches, 1) < 5)
					print_message("home differs from the quiescent snapshot at page %zu byte %zu\n",
						      i / PG, i % PG);
			}
		} else {
			snap = malloc(heap_len);
		}
		memcpy(snap, vp_heap_base(), heap_len);
		return;
	}
	if (phase1)
		phase1();
	if (atomic_load(&hold_us))
		usleep((useconds_t)atomic_load(&hold_us));
}

/* final_check -- after the last commit with no writer left, the home image
 * equals the working copy. */
static void final_check(void)
{
	assert_int_equal(vp_set_durability(VP_SYNC, 0), 0);
	assert_int_equal(pcommit(), 0);
	assert_memory_equal(home(), vp_heap_base(), heap_len);
}

static uint8_t *H;
static atomic_int stop;

struct warg { unsigned seed, slot; };

/* writer -- FASes writing a generation counter into runs of pages; each
 * thread writes only its own half of every page. */
static void *writer(void *arg)
{
	struct warg *w = arg;
	unsigned seed = w->seed;
	uint64_t gen = 0;
	while (!atomic_load(&stop)) {
		pstart();
		size_t len = 1 + rand_r(&seed) % 300, first = rand_r(&seed) % (NP - len);
		gen++;
		for (size_t p = first; p < first + len; p++) {
			uint64_t *q = (uint64_t *)(H + p * PG + w->slot * (PG / 2)) + rand_r(&seed) % (PG / 16);
			*q = gen;
		}
		pend();
	}
	return NULL;
}

static void open_pool(const char *tag)
{
	setenv("VOLIPMEM_CONCURRENT_COPY", "on", 1);
	assert_int_equal(pmap(vpt_pool_path(tag), 16u << 20, 0), 0);
	heap_len = vp_heap_size();
	snap = NULL;
	atomic_store(&mismatches, 0);
	atomic_store(&checks, 0);
	vp__cow_test_hook = hook;
}

static void close_pool(void)
{
	vp__cow_test_hook = NULL;
	phase1 = NULL;
	punmap();
	free(snap);
	snap = NULL;
}

static void test_hammer(void **state)
{
	(void)state;
	open_pool("cow-hammer");
	H = pmalloc((size_t)NP * PG);
	assert_non_null(H);
	pstart();
	memset(H, 0, (size_t)NP * PG);
	assert_int_equal(pend(), 0);
	/* 100 ms commits: the relaxed-mode bound (400 ms) must not hold the
	 * writers in pstart() during a copy slowed by a sanitizer. */
	assert_int_equal(vp_set_durability(VP_RELAXED, 100), 0);
	vp_stats_reset();
	atomic_store(&hold_us, 300);
	const char *ms = getenv("VP_COW_MS");
	pthread_t th[2];
	struct warg wa[2] = {{11, 0}, {23, 1}};
	atomic_store(&stop, 0);
	for (int t = 0; t < 2; t++)
		pthread_create(&th[t], NULL, writer, &wa[t]);
	/* At least VP_COW_MS (1500) ms, and on until writers have saved
	 * pages in several concurrent copies (slow builds, loaded machine),
	 * 60 s at most. */
	struct vp_stats st;
	for (int waited = 0; waited < 60000; waited += 100) {
		usleep(100000);
		assert_int_equal(vp_stats(&st), 0);
		if (waited >= (ms ? atoi(ms) : 1500) && st.cow_commits > 5 && st.cow_faults > 0 &&
		    atomic_load(&checks) > 5)
			break;
		if (waited >= 2000 && !st.cow_faults)
			atomic_store(&hold_us, 20000); /* slow build: give writers time to meet held pages */
	}
	atomic_store(&stop, 1);
	for (int t = 0; t < 2; t++)
		pthread_join(th[t], NULL);
	atomic_store(&hold_us, 0);
	final_check();
	assert_int_equal(vp_stats(&st), 0);
	print_message("%s: %llu commits, %llu concurrent, %llu pages saved by writers, %d checks, %llu bound waits\n",
		      st.tracker,
		      (unsigned long long)st.commits, (unsigned long long)st.cow_commits,
		      (unsigned long long)st.cow_faults, atomic_load(&checks), (unsigned long long)st.bound_waits);
	assert_int_equal(atomic_load(&mismatches), 0);
	assert_true(atomic_load(&checks) > 5);
	assert_true(st.cow_commits > 5);
	assert_true(st.cow_faults > 0);
	close_pool();
}

/* ---- read() into a page being copied ---- */

static uint8_t *P;
static int pfd[2];
static ssize_t got;
static int got_errno;
static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cv = PTHREAD_COND_INITIALIZER;
static int go, done;

static void *reader(void *arg)
{
	(void)arg;
	pthread_mutex_lock(&mu);
	while (!go)
		pthread_cond_wait(&cv, &mu);
	pthread_mutex_unlock(&mu);
	pstart();
	got = read(pfd[0], P + 10 * PG + 100, 50);
	got_errno = errno;
	P[20 * PG + 7] = 'D';
	pthread_mutex_lock(&mu);
	done = 1;
	pthread_cond_broadcast(&cv);
	pthread_mutex_unlock(&mu);
	pend();
	return NULL;
}

/* release_reader -- phase 1 of the main thread's commit: the copy has not
 * started, every page of the set is held; let the reader run and wait. */
static void release_reader(void)
{
	phase1 = NULL;
	pthread_mutex_lock(&mu);
	go = 1;
	pthread_cond_broadcast(&cv);
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_sec += 10;
	while (!done && pthread_cond_timedwait(&cv, &mu, &ts) == 0)
		;
	pthread_mutex_unlock(&mu);
}

static void test_read_into_held_page(void **state)
{
	(void)state;
	open_pool("cow-read");
	P = pmalloc(64 * PG);
	assert_non_null(P);
	pstart();
	memset(P, 'A', 64 * PG);
	assert_int_equal(pend(), 0);
	assert_int_equal(pipe(pfd), 0);
	char c[50];
	memset(c, 'C', sizeof c);
	assert_int_equal(write(pfd[1], c, sizeof c), (ssize_t)sizeof c);
	pthread_t th;
	pthread_create(&th, NULL, reader, NULL);
	size_t off = (size_t)(P - (uint8_t *)vp_heap_base());
	phase1 = release_reader;
	pstart();
	memset(P, 'B', 64 * PG);
	assert_int_equal(pend(), 0); /* commits the 'B' group, copied concurrently */
	assert_int_equal(done, 1);
	pthread_join(th, NULL);
	assert_int_equal(got, 50);
	(void)got_errno;
	/* The 'B' group was applied before the reader's group started: its
	 * quiescent snapshot was checked against the home image (hook). */
	assert_int_equal(pcommit(), 0);
	final_check();
	const uint8_t *h = home() + off;
	assert_memory_equal(h + 10 * PG + 100, c, 50);
	assert_int_equal(h[10 * PG + 99], 'B');
	assert_int_equal(h[10 * PG + 150], 'B');
	assert_int_equal(h[20 * PG + 7], 'D');
	assert_int_equal(h[20 * PG + 6], 'B');
	assert_int_equal(atomic_load(&mismatches), 0);
	assert_true(atomic_load(&checks) >= 1);
	struct vp_stats st;
	assert_int_equal(vp_stats(&st), 0);
	assert_true(st.cow_faults >= 2);
	close(pfd[0]);
	close(pfd[1]);
	close_pool();
}

/* teardown -- a failed assertion leaves the pool mapped: unmap it so the
 * next test reports its own result. */
static int teardown(void **state)
{
	(void)state;
	atomic_store(&stop, 1);
	if (vp_heap_base())
		close_pool();
	return 0;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_teardown(test_hammer, teardown),
		cmocka_unit_test_teardown(test_read_into_held_page, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
