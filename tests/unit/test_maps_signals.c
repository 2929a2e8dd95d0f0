/* SPDX-License-Identifier: MIT */
/*
 * test_maps_signals.c -- FASes whose threads map and unmap memory, and
 * whose writes come from signal handlers, on whichever tracker
 * VOLIPMEM_TRACKER names. Written for the VM trackers (there every mmap
 * and munmap changes the guest page table under running vCPUs, and a
 * handler must run in the guest for its stores to be seen), and run on the
 * host trackers too:
 *
 *   - 3 threads x 60 FASes: each FAS bumps the thread's counter on two heap
 *     pages and, in the middle, mmaps, fills and munmaps a scratch region;
 *   - meanwhile the main thread, which unblocks SIGUSR1 only inside its
 *     FASes, is sent SIGUSR1 by a 4th thread; the handler bumps a heap
 *     counter (its store is part of the interrupted FAS), and raise()
 *     inside a FAS does the same synchronously;
 *   - the pool is unmapped and mapped again: every counter must hold
 *     exactly what was committed.
 *
 * Exit 0 passed, 1 failed.
 */
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "../common.h"

#define PG 4096
#define NTHREADS 3
#define NFAS 60

#define CHECK(c, ...) do { if (!(c)) { printf("test_maps_signals: FAIL: " __VA_ARGS__); \
	printf(" (%s:%d)\n", __FILE__, __LINE__); fflush(stdout); _exit(1); } } while (0)

struct state {
	uint64_t thread_a[NTHREADS][PG / 8];   /* a page each */
	uint64_t thread_b[NTHREADS][PG / 8];
	uint64_t handled[PG / 8];
	uint64_t raised;
};

static struct state *st;
static int stop_sender;

static void on_usr1(int sig)
{
	(void)sig;
	st->handled[0]++;   /* a heap store from the handler, inside the main thread's FAS */
}

static void *worker(void *arg)
{
	int id = (int)(intptr_t)arg;
	for (int k = 0; k < NFAS; k++) {
		pstart();
		st->thread_a[id][0]++;
		size_t len = (size_t)(1 + (id + k) % 4) * 16 * PG;
		char *m = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		if (m == MAP_FAILED)
			return (void *)1;
		memset(m, id + 1, len);
		if (mprotect(m, len, PROT_READ) != 0 || m[len - 1] != id + 1 || munmap(m, len) != 0)
			return (void *)2;
		st->thread_b[id][0]++;
		if (pend() != 0)
			return (void *)3;
	}
	return NULL;
}

static void *sender(void *arg)
{
	pthread_t to = *(pthread_t *)arg;
	struct timespec ts = { 0, 3000000 };
	for (int i = 0; i < 30 && !__atomic_load_n(&stop_sender, __ATOMIC_ACQUIRE); i++) {
		nanosleep(&ts, NULL);
		pthread_kill(to, SIGUSR1);
	}
	return NULL;
}

int main(void)
{
	setvbuf(stdout, NULL, _IOLBF, 0);
	const char *path = vpt_pool_path("mapsig");
	CHECK(pmap(path, 8 << 20, 0) == 0, "pmap: %s", vp_errormsg());
	st = proot("state", sizeof *st, NULL);
	CHECK(st, "proot");

	struct sigaction sa;
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = on_usr1;
	CHECK(sigaction(SIGUSR1, &sa, NULL) == 0, "sigaction");
	sigset_t usr1;
	sigemptyset(&usr1);
	sigaddset(&usr1, SIGUSR1);
	pthread_sigmask(SIG_BLOCK, &usr1, NULL);   /* inherited by every thread */

	pthread_t t[NTHREADS], s, self = pthread_self();
	for (int i = 0; i < NTHREADS; i++)
		CHECK(pthread_create(&t[i], NULL, worker, (void *)(intptr_t)i) == 0, "pthread_create");
	CHECK(pthread_create(&s, NULL, sender, &self) == 0, "pthread_create");

	/* SIGUSR1 is unblocked only inside the main thread's FASes, so every
	 * handler store is part of one (a store outside any FAS would race
	 * with the commit copying the page: no atomicity is promised there);
	 * a signal sent meanwhile waits, pending, for the next FAS. */
	for (int k = 0; k < 200; k++) {
		pstart();
		pthread_sigmask(SIG_UNBLOCK, &usr1, NULL);
		if (k % 20 == 0) {
			raise(SIGUSR1);
			st->raised++;
		}
		struct timespec ts = { 0, 500000 };
		nanosleep(&ts, NULL);
		pthread_sigmask(SIG_BLOCK, &usr1, NULL);
		CHECK(pend() == 0, "pend: %s", vp_errormsg());
	}
	__atomic_store_n(&stop_sender, 1, __ATOMIC_RELEASE);
	pthread_join(s, NULL);
	for (int i = 0; i < NTHREADS; i++) {
		void *r;
		pthread_join(t[i], &r);
		CHECK(r == NULL, "worker %d failed at step %ld", i, (long)(intptr_t)r);
	}
	uint64_t handled = st->handled[0], raised = st->raised;
	CHECK(pcommit() == 0, "pcommit: %s", vp_errormsg());
	CHECK(handled >= raised && raised == 10, "handler ran %llu times, raise() %llu",
	      (unsigned long long)handled, (unsigned long long)raised);
	CHECK(punmap() == 0, "punmap: %s", vp_errormsg());

	CHECK(pmap(path, 8 << 20, 0) == 0, "pmap again: %s", vp_errormsg());
	st = proot("state", sizeof *st, NULL);
	for (int i = 0; i < NTHREADS; i++)
		CHECK(st->thread_a[i][0] == NFAS && st->thread_b[i][0] == NFAS,
		      "thread %d: counters %llu/%llu after reopening, expected %d", i,
		      (unsigned long long)st->thread_a[i][0], (unsigned long long)st->thread_b[i][0], NFAS);
	CHECK(st->handled[0] == handled && st->raised == raised,
	      "handler counter %llu (expected %llu), raised %llu after reopening",
	      (unsigned long long)st->handled[0], (unsigned long long)handled,
	      (unsigned long long)st->raised);
	CHECK(punmap() == 0, "punmap");
	printf("test_maps_signals: PASS (%s): %d threads x %d FASes with mmap/mprotect/munmap, "
	       "%llu handler stores (%llu from raise) durable\n",
	       getenv("VOLIPMEM_TRACKER") ? getenv("VOLIPMEM_TRACKER") : "auto", NTHREADS, NFAS,
	       (unsigned long long)handled, (unsigned long long)raised);
	return 0;
}
