/* SPDX-License-Identifier: MIT */
/*
 * test_concurrent.c -- tracker exactness under concurrent writers. Four
 * threads run FASes writing random pages (a few very hot), in relaxed mode
 * with 1 ms commits; after they stop and pcommit() returns, every page of
 * the home image (read from the file) must equal the working copy. A page
 * that differs is a write the tracker never reported: lost at the next
 * crash. Runs once per tracker (VOLIPMEM_TRACKER from ctest).
 */
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "../common.h"
#include "../num.h"

#define PG 4096
#define NP 2048
static uint8_t *H;
static atomic_int stop;

struct warg { unsigned seed; unsigned slot; };

/* writer -- FASes on random pages, a few very hot; each thread writes only
 * its own quarter of every page (FASes are not isolated, and the test must
 * not race itself). */
static void *writer(void *arg)
{
	struct warg *w = arg;
	unsigned seed = w->seed;
	while (!atomic_load(&stop)) {
		pstart();
		int n = 1 + (int)(rand_r(&seed) % 8);
		for (int i = 0; i < n; i++) {
			size_t p = rand_r(&seed) % 4 == 0 ? rand_r(&seed) % 4 : rand_r(&seed) % NP;
			H[p * PG + w->slot * (PG / 4) + rand_r(&seed) % (PG / 4)]++;
		}
		pend();
	}
	return NULL;
}

static void test_home_matches_working_copy(void **state)
{
	(void)state;
	const char *path = vpt_pool_path("concurrent");
	assert_int_equal(pmap(path, 64u << 20, 0), 0);
	assert_int_equal(vp_set_durability(VP_RELAXED, 1), 0);
	H = pmalloc((size_t)NP * PG);
	assert_non_null(H);
	pstart(); /* inside a FAS: the committer thread may be copying pages */
	memset(H, 0, (size_t)NP * PG);
	assert_int_equal(pend(), 0);
	assert_int_equal(pcommit(), 0);
	int fd = open(path, O_RDONLY);
	assert_true(fd >= 0);
	uint8_t *buf = malloc(PG);
	const int rounds = (int)vpt_env_uint("test_concurrent", "VP_CONCURRENT_ROUNDS", 12, 1, INT_MAX);
	for (int round = 0; round < rounds; round++) {
		pthread_t th[4];
		struct warg wa[4];
		atomic_store(&stop, 0);
		for (unsigned t = 0; t < 4; t++) {
			wa[t] = (struct warg){t + 7u * (unsigned)round, t};
			pthread_create(&th[t], NULL, writer, &wa[t]);
		}
		usleep(100000);
		atomic_store(&stop, 1);
		for (int t = 0; t < 4; t++)
			pthread_join(th[t], NULL);
		/* pcommit() returns once the group is durable in the log; the
		 * committer thread may still be copying it into the home image.
		 * Switching to synchronous mode stops that thread and commits
		 * here, so the home image is current. */
		assert_int_equal(vp_set_durability(VP_SYNC, 0), 0);
		int bad = 0;
		for (size_t p = 0; p < NP; p++) {
			off_t off = 65536 + (off_t)(H - (uint8_t *)vp_heap_base()) + (off_t)(p * PG);
			assert_int_equal(pread(fd, buf, PG, off), PG);
			if (memcmp(buf, H + p * PG, PG) != 0) {
				if (bad < 5)
					printf("round %d: page %zu was written but never committed\n", round, p);
				bad++;
			}
		}
		assert_int_equal(bad, 0);
		assert_int_equal(vp_set_durability(VP_RELAXED, 1), 0);
	}
	free(buf);
	close(fd);
	assert_int_equal(punmap(), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_home_matches_working_copy),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
