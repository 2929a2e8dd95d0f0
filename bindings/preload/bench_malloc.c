/* SPDX-License-Identifier: MIT */
/*
 * bench_malloc.c -- what the persistent process heap costs an unmodified
 * program: N malloc/free calls (64..1088 bytes, 1024 blocks live) outside
 * any FAS, so each one is an implicit FAS of its own.
 *
 *   bench_preload_malloc [N]                          glibc malloc
 *   VOLIPMEM_POOL=/dev/shm/b.pool LD_PRELOAD=libvolipmem_preload.so \
 *       bench_preload_malloc [N]                      synchronous mode
 *   ... VOLIPMEM_COMMIT_INTERVAL_MS=10 ...            relaxed mode
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../../tests/num.h"

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

int main(int argc, char **argv)
{
	long n = argc > 1 ? (long)vpt_uint("bench_malloc", "N", argv[1], 1, LONG_MAX) : 100000;
	enum { LIVE = 1024 };
	static char *live[LIVE];
	uint64_t x = 88172645463325252ull;
	double t0 = now_s();
	for (long i = 0; i < n; i++) {
		x ^= x << 13, x ^= x >> 7, x ^= x << 17; /* xorshift64 */
		unsigned slot = (unsigned)(x % LIVE);
		size_t size = 64 + (size_t)((x >> 20) % 1024);
		free(live[slot]);
		live[slot] = malloc(size);
		if (live[slot] == NULL) {
			fprintf(stderr, "malloc failed at %ld\n", i);
			return 1;
		}
		memset(live[slot], (int)i, 16);
	}
	double t = now_s() - t0;
	for (unsigned i = 0; i < LIVE; i++)
		free(live[i]);
	printf("%ld malloc+free pairs: %.3f s, %.2f us per pair\n", n, t, t * 1e6 / (double)n);
	return 0;
}
