/* SPDX-License-Identifier: MIT */
/*
 * test_grow.c -- pools grow in place, crash-safely:
 *   - pmap() with a larger size grows the heap at the same address; data
 *     and pointers survive, the new pages are usable, the checker passes;
 *   - a growth stopped after each file-side step (as a crash there would
 *     stop it) leaves a pool that opens, checks and holds the same data,
 *     at the old size (before the superblock switch) or the new one (after
 *     it, the heap side finishing at that pmap);
 *   - growth beyond the reserved address space is refused clearly.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <volipmem.h>

#include "pool/pool.h"
#include "runtime/inspect.h"

static char path[256];

#define VPT_TEST_NAME "test_grow"
#include "check.h"

/* vpt_check_cleanup -- what a failed CHECK removes before exiting */
static void vpt_check_cleanup(void)
{
	unlink(path);
}

struct rootobj { uint64_t magic; uint8_t *big; uint64_t nbig; };

/* file_checks -- what `volipmem check` says about the file. */
static void file_checks(void)
{
	FILE *f = fopen(path, "rb");
	CHECK(f, "open");
	fseek(f, 0, SEEK_END);
	size_t n = (size_t)ftell(f);
	fseek(f, 0, SEEK_SET);
	uint8_t *b = malloc(n);
	CHECK(b && fread(b, 1, n, f) == n, "read");
	fclose(f);
	struct vp_image im;
	struct vp_heap_report rep;
	char err[400];
	CHECK(vp__image_open(&im, b, n) == 0, "the pool does not open: %s", vp_errormsg());
	CHECK(vp__image_recover(&im) == 0, "recovery: %s", vp_errormsg());
	CHECK(vp__image_check(&im, &rep, err, sizeof err) == 0, "check: %s", err);
	free(b);
}

/* verify -- open without growing; the data is there at the same address. */
static void verify(size_t want_size, uint8_t *want_big)
{
	file_checks();
	CHECK(pmap(path, 0, VP_OPEN_ONLY) == 0, "pmap: %s", vp_errormsg());
	CHECK(vp_heap_size() == want_size, "heap is %zu bytes, want %zu", vp_heap_size(), want_size);
	struct rootobj *r = proot("r", sizeof *r, NULL);
	CHECK(r && r->magic == 0xfeed && r->big == want_big, "root changed");
	for (uint64_t i = 0; i < r->nbig; i++)
		CHECK(r->big[i] == (uint8_t)i, "data changed at byte %llu", (unsigned long long)i);
	CHECK(punmap() == 0, "punmap");
	file_checks();
}

int main(void)
{
	snprintf(path, sizeof path, "/dev/shm/vpt-grow-%d.pool", (int)getpid());
	unlink(path);
	size_t sz = 2 << 20;
	CHECK(pmap(path, sz, VP_CREATE_ONLY) == 0, "create: %s", vp_errormsg());
	struct rootobj *r = proot("r", sizeof *r, NULL);
	pstart();
	r->magic = 0xfeed;
	r->nbig = 900000;
	r->big = pmalloc(r->nbig);
	CHECK(r->big, "pmalloc");
	for (uint64_t i = 0; i < r->nbig; i++)
		r->big[i] = (uint8_t)i;
	CHECK(pend() == 0, "pend");
	uint8_t *big = r->big;
	CHECK(pmalloc(2 << 20) == NULL, "a 2 MiB block fits a 2 MiB heap?");
	CHECK(punmap() == 0, "punmap");

	/* Stopped after each file-side step. */
	for (int step = 1; step <= 4; step++) {
		size_t want = sz + ((size_t)step << 20);
		vp__grow_stop_after = step;
		CHECK(pmap(path, want, VP_OPEN_ONLY) != 0, "growth did not stop at step %d", step);
		vp__grow_stop_after = 0;
		if (step >= 3)
			sz = want; /* superblock A switched: the new size stands */
		verify(sz, big);
		printf("test_grow: stopped after step %d: pool opens at %zu bytes, data intact\n", step, sz);
	}

	/* Whole growths, twice, then use the new space. */
	for (int k = 0; k < 2; k++) {
		sz *= 2;
		CHECK(pmap(path, sz, VP_OPEN_ONLY) == 0, "grow to %zu: %s", sz, vp_errormsg());
		CHECK(vp_heap_size() == sz, "heap size %zu after growing to %zu", vp_heap_size(), sz);
		r = proot("r", sizeof *r, NULL);
		CHECK(r && r->big == big, "the heap moved");
		/* The new area is contiguous after its page map. */
		void *x = pmalloc(sz / 3);
		CHECK(x, "cannot allocate %zu bytes of the grown heap: %s", sz / 3, vp_errormsg());
		memset(x, 0x77, sz / 3);
		pfree(x);
		CHECK(punmap() == 0, "punmap");
		verify(sz, big);
	}
	printf("test_grow: grown to %zu bytes in place, data intact\n", sz);

	/* Beyond the reserve: refused, pool unchanged. */
	unlink(path);
	setenv("VOLIPMEM_RESERVE", "4194304", 1);
	CHECK(pmap(path, 2 << 20, VP_CREATE_ONLY) == 0, "create: %s", vp_errormsg());
	CHECK(punmap() == 0, "punmap");
	unsetenv("VOLIPMEM_RESERVE");
	int rc = pmap(path, 64 << 20, VP_OPEN_ONLY);
	CHECK(rc != 0 && strstr(vp_errormsg(), "reserved"), "growth past the reserve: rc %d, \"%s\"", rc,
	      vp_errormsg());
	printf("test_grow: refused as expected: %s\n", vp_errormsg());
	file_checks();
	unlink(path);
	printf("test_grow: OK\n");
	return 0;
}
