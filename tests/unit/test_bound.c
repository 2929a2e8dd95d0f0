/* SPDX-License-Identifier: MIT */
/*
 * test_bound.c -- the relaxed-mode durability bound B, tested against an
 * injected clock and a commit that the test stalls where a slow medium
 * would (after its copy, before its commit record):
 *   - an outermost pstart() returns while the oldest unfinished group is at
 *     most B old, blocks once it is older, until that group is durable, and
 *     the wait shows in vp_stats; a nested pstart() never blocks;
 *   - a forked (detached) child never blocks on the parent's groups;
 *   - under load with stalled commits, no pstart() returns while an ended
 *     FAS older than B is not durable (checked from timestamps and groups
 *     the test records itself).
 */
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>
#include <cmocka.h>

#include "../common.h"
#include "commit/bound.h"
#include "commit/commit.h"

#define MiB (1u << 20)
#define MS 1000000ull

/* ---- the injected clock: fake_ns, and what this thread last read ---- */
static _Atomic uint64_t fake_ns;
static _Thread_local uint64_t last_read;

static uint64_t fake_clock(void)
{
	last_read = atomic_load(&fake_ns);
	return last_read;
}

/* ---- the commit stall ---- */
static pthread_mutex_t hm = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t hc = PTHREAD_COND_INITIALIZER;
static bool stall_on;
static int nstalled;
static uint64_t stalled_epoch;

static void stall_hook(uint64_t e)
{
	pthread_mutex_lock(&hm);
	if (stall_on) {
		nstalled++;
		stalled_epoch = e;
		pthread_cond_broadcast(&hc);
		while (stall_on)
			pthread_cond_wait(&hc, &hm);
	}
	pthread_mutex_unlock(&hm);
}

static void stall_set(bool on)
{
	pthread_mutex_lock(&hm);
	stall_on = on;
	pthread_cond_broadcast(&hc);
	pthread_mutex_unlock(&hm);
}

/* wait_stalled -- until a commit sits in the stall; returns its group. */
static uint64_t wait_stalled(void)
{
	pthread_mutex_lock(&hm);
	while (!nstalled)
		pthread_cond_wait(&hc, &hm);
	uint64_t e = stalled_epoch;
	pthread_mutex_unlock(&hm);
	return e;
}

static uint64_t done_epoch(void)
{
	pthread_mutex_lock(&vp__cm.mu);
	uint64_t d = vp__cm.done_epoch;
	pthread_mutex_unlock(&vp__cm.mu);
	return d;
}

static void setup_relaxed(const char *tag, unsigned interval_ms)
{
	atomic_store(&fake_ns, 1000 * MS);
	vp__bound_clock = fake_clock;
	vp__commit_test_hook = stall_hook;
	nstalled = 0;
	assert_int_equal(vp_set_durability(VP_RELAXED, interval_ms), 0);
	assert_int_equal(pmap(vpt_pool_path(tag), 8 * MiB, 0), 0);
}

static void teardown_relaxed(void)
{
	stall_set(false);
	assert_int_equal(vp_set_durability(VP_SYNC, 0), 0);
	assert_int_equal(punmap(), 0);
	vp__commit_test_hook = NULL;
}

static struct vp_stats stats(void)
{
	struct vp_stats s;
	assert_int_equal(vp_stats(&s), 0);
	return s;
}

/* ---- pstart blocks until the overdue group is durable ---- */
struct waiter {
	volatile uint64_t *x;
	atomic_bool returned;
	uint64_t done_at_return, now_at_return;
};

static void *waiter_main(void *arg)
{
	struct waiter *w = arg;
	pstart();
	w->done_at_return = done_epoch();
	w->now_at_return = atomic_load(&fake_ns);
	atomic_store(&w->returned, true);
	*w->x = 3;
	pend();
	return NULL;
}

static void test_blocks_until_durable(void **state)
{
	(void)state;
	setup_relaxed("bound", 5);
	const uint64_t B = 55 * MS; /* max(4 * 5 ms, 5 ms + 50 ms) */
	assert_int_equal(stats().ns_bound, B);
	volatile uint64_t *x = proot("x", 4096, NULL);
	assert_int_equal(psync(), 0);
	assert_true(vp__bound.due_ns == VP_BOUND_NONE);

	stall_set(true);
	const uint64_t T = atomic_load(&fake_ns);
	pstart();
	*x = 1;
	assert_int_equal(pend(), 0);
	uint64_t a = wait_stalled(); /* the committer took the group, stuck */

	/* Exactly B old is not older than B: no wait; nested never waits. */
	atomic_store(&fake_ns, T + B);
	pstart();
	atomic_store(&fake_ns, T + B + 1);
	pstart();
	pend();
	*x = 2;
	assert_int_equal(pend(), 0);
	assert_int_equal(stats().bound_waits, 0);

	/* Now the group is B + 1 ns old and still not durable. */
	struct waiter w = {.x = x};
	pthread_t th;
	assert_int_equal(pthread_create(&th, NULL, waiter_main, &w), 0);
	while (stats().bound_waits == 0 && !atomic_load(&w.returned))
		sched_yield();
	assert_false(atomic_load(&w.returned));
	assert_true(done_epoch() < a);
	atomic_store(&fake_ns, T + B + 1 + 7 * MS);
	assert_false(atomic_load(&w.returned));
	stall_set(false);
	assert_int_equal(pthread_join(th, NULL), 0);
	assert_true(w.done_at_return >= a);
	assert_int_equal(w.now_at_return, T + B + 1 + 7 * MS);
	struct vp_stats s = stats();
	assert_int_equal(s.bound_waits, 1);
	assert_int_equal(s.ns_bound_wait, 7 * MS);
	assert_int_equal(psync(), 0);
	assert_int_equal(*x, 3);
	teardown_relaxed();
}

/* ---- a detached child does not wait for the parent's commits ---- */
static void test_fork_child(void **state)
{
	(void)state;
	setup_relaxed("boundfork", 5);
	volatile uint64_t *x = proot("x", 4096, NULL);
	assert_int_equal(psync(), 0);
	stall_set(true);
	pstart();
	*x = 1;
	assert_int_equal(pend(), 0);
	wait_stalled();
	atomic_fetch_add(&fake_ns, 1000 * MS);
	fflush(NULL);
	pid_t pid = fork();
	if (pid == 0) {
		alarm(20); /* a wait here would never end */
		pstart();
		*x = 2;
		_exit(pend() == VP_E_DETACHED ? 0 : 1);
	}
	int st = 0;
	assert_int_equal(waitpid(pid, &st, 0), pid);
	assert_true(WIFEXITED(st));
	assert_int_equal(WEXITSTATUS(st), 0);
	teardown_relaxed();
}

/* ---- the invariant under load ---- */
#define NWORK 3
#define NSTALLS 4
#define RING 1024

/* first_end[e % RING]: the earliest clock read after a pend() of group e
 * returned (>= the library's own stamp), tagged with e. Under vp__cm.mu. */
static struct { uint64_t e, t; } first_end[RING];
static atomic_int stalls_done;
static atomic_bool workers_stop;
static atomic_long violations, checks;
static uint64_t load_B;

/* load_hook -- stall every third commit for 3 B of clock time, and at least
 * until some pstart() waited on it or is in pstart() (waiting already). */
static atomic_int in_pstart;
static void load_hook(uint64_t e)
{
	if (e % 3 || atomic_load(&stalls_done) >= NSTALLS)
		return;
	uint64_t until = atomic_load(&fake_ns) + 3 * load_B, w0 = stats().bound_waits;
	while (atomic_load(&fake_ns) < until || (stats().bound_waits == w0 && !atomic_load(&in_pstart)))
		sched_yield();
	atomic_fetch_add(&stalls_done, 1);
}

static void *ticker(void *arg)
{
	(void)arg;
	while (!atomic_load(&workers_stop)) {
		atomic_fetch_add(&fake_ns, MS);
		usleep(100);
	}
	return NULL;
}

/* check_at_return -- inside the FAS just begun: at the clock value the
 * library last read deciding to return (or, if it read none, the value
 * before the call), no recorded group that is not finished may have ended
 * more than B earlier. */
static void check_at_return(uint64_t before)
{
	struct vp_commit *rt = &vp__cm;
	uint64_t decided = last_read ? last_read : before;
	pthread_mutex_lock(&rt->mu);
	for (uint64_t e = rt->done_epoch + 1; e <= rt->epoch; e++) {
		if (first_end[e % RING].e == e && decided > first_end[e % RING].t + load_B) {
			fprintf(stderr, "group %llu ended at %llu, not durable at %llu (B %llu)\n",
				(unsigned long long)e, (unsigned long long)first_end[e % RING].t,
				(unsigned long long)decided, (unsigned long long)load_B);
			atomic_fetch_add(&violations, 1);
		}
	}
	atomic_fetch_add(&checks, 1);
	pthread_mutex_unlock(&rt->mu);
}

static void *worker(void *arg)
{
	volatile uint64_t *x = arg;
	struct vp_commit *rt = &vp__cm;
	while (!atomic_load(&workers_stop)) {
		last_read = 0;
		uint64_t before = atomic_load(&fake_ns);
		atomic_fetch_add(&in_pstart, 1);
		pstart();
		atomic_fetch_sub(&in_pstart, 1);
		check_at_return(before);
		(*x)++;
		pthread_mutex_lock(&rt->mu);
		uint64_t e = rt->epoch; /* no commit can start while we are in */
		pthread_mutex_unlock(&rt->mu);
		pend();
		uint64_t t = atomic_load(&fake_ns);
		pthread_mutex_lock(&rt->mu);
		if (first_end[e % RING].e != e || first_end[e % RING].t > t)
			first_end[e % RING].e = e, first_end[e % RING].t = t;
		pthread_mutex_unlock(&rt->mu);
	}
	return NULL;
}

static void test_invariant_under_load(void **state)
{
	(void)state;
	memset(first_end, 0, sizeof first_end);
	atomic_store(&stalls_done, 0);
	atomic_store(&workers_stop, false);
	atomic_store(&violations, 0);
	atomic_store(&checks, 0);
	setup_relaxed("boundload", 1);
	vp__commit_test_hook = load_hook;
	load_B = vp__bound_ns(1);
	uint64_t *x = proot("x", NWORK * 4096, NULL);
	pthread_t tk, th[NWORK];
	assert_int_equal(pthread_create(&tk, NULL, ticker, NULL), 0);
	for (int i = 0; i < NWORK; i++)
		assert_int_equal(pthread_create(&th[i], NULL, worker, x + i * 512), 0);
	while (atomic_load(&stalls_done) < NSTALLS)
		usleep(1000);
	atomic_store(&workers_stop, true);
	for (int i = 0; i < NWORK; i++)
		assert_int_equal(pthread_join(th[i], NULL), 0);
	assert_int_equal(pthread_join(tk, NULL), 0);
	struct vp_stats s = stats();
	fprintf(stderr, "%ld checks, %llu waits, %llu ns waited (fake clock)\n", atomic_load(&checks),
		(unsigned long long)s.bound_waits, (unsigned long long)s.ns_bound_wait);
	assert_int_equal(atomic_load(&violations), 0);
	assert_true(s.bound_waits > 0);
	assert_true(s.ns_bound_wait > 0);
	teardown_relaxed();
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_blocks_until_durable),
		cmocka_unit_test(test_fork_child),
		cmocka_unit_test(test_invariant_under_load),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
