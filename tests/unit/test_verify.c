/* SPDX-License-Identifier: MIT */
/*
 * test_verify.c -- verify mode (VOLIPMEM_VERIFY=1), under each tracker:
 * a store the tracker does not see (a page taken out of the collected
 * write set, or a line left out by a tracker's lines op) is reported with
 * its exact address, counted, and still made durable; a workload of
 * random stores, memsets and read()s into the heap reports nothing.
 */
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "../common.h"
#include "commit/verify.h"
#include "runtime/runtime.h"

#define MiB (1u << 20)
#define PG 4096

/* ---- stderr captured into a file, to read verify's reports ---- */
static char errpath[256];
static int saved_err = -1;

static void capture_start(void)
{
	snprintf(errpath, sizeof errpath, "/dev/shm/vpt-verify-err-%d", (int)getpid());
	fflush(stderr);
	saved_err = dup(2);
	int fd = open(errpath, O_CREAT | O_TRUNC | O_WRONLY, 0600);
	assert_true(fd >= 0 && saved_err >= 0);
	dup2(fd, 2);
	close(fd);
}

/* capture_end -- stderr back; the reports captured, one per line, in buf. */
static int capture_end(char *buf, size_t len, const char *needle)
{
	fflush(stderr);
	dup2(saved_err, 2);
	close(saved_err);
	FILE *f = fopen(errpath, "r");
	assert_non_null(f);
	size_t n = fread(buf, 1, len - 1, f);
	buf[n] = 0;
	fclose(f);
	unlink(errpath);
	fputs(buf, stderr); /* keep them in the test's log */
	int count = 0;
	for (const char *p = buf; (p = strstr(p, needle)); p++)
		count++;
	return count;
}

static const char *MISS = "verify: line not recorded by tracker";

static void verify_on(void) { setenv("VOLIPMEM_VERIFY", "1", 1); }

/* ---- a page dropped from the collected write set ---- */
static uint64_t drop_pg;
static int dropped;

static void drop_one(struct vp_pageset *ws)
{
	size_t k = 0;
	for (size_t i = 0; i < ws->n; i++)
		if (ws->pg[i] != drop_pg)
			ws->pg[k++] = ws->pg[i];
	dropped += ws->n != k;
	ws->n = k;
}

/* dropped_page -- with the method of state: PAGEMAP_SCAN where the
 * kernel has it, or the full compare. */
static void dropped_page(bool full)
{
	vp__verify_test_full = full;
	verify_on();
	const char *path = vpt_pool_path("vdrop");
	assert_int_equal(pmap(path, 16 * MiB, 0), 0);
	uint8_t *r = proot("region", 8 * PG, NULL);
	assert_int_equal(pcommit(), 0);
	uint8_t *heap = vp_heap_base();
	uint8_t *target = r + 2 * PG + 200; /* line 3 of its page, if r is page aligned */
	drop_pg = (uint64_t)(target - heap) / PG;
	uint64_t line_off = (uint64_t)(target - heap) & ~(uint64_t)63;
	vp_stats_reset();
	char buf[8192], want[128];

	capture_start();
	vp__verify_test_drop = drop_one;
	pstart();
	*target = 7;
	r[5 * PG] = 1; /* another page, seen by the tracker */
	int rc = pend();
	vp__verify_test_drop = NULL;
	int n = capture_end(buf, sizeof buf, MISS);
	assert_int_equal(rc, 0);
	assert_int_equal(dropped, 1);
	assert_int_equal(n, 1);
	snprintf(want, sizeof want, "heap+0x%llx (%p, page %llu line %u)", (unsigned long long)line_off,
		 (void *)(heap + line_off), (unsigned long long)drop_pg, (unsigned)(line_off % PG / 64));
	assert_non_null(strstr(buf, want));
	struct vp_stats st;
	vp_stats(&st);
	assert_int_equal(st.verify_missed_lines, 1);
	assert_true(st.verify_pages_checked >= 2);

	/* Nothing changed since: the next commit reports nothing. */
	capture_start();
	assert_int_equal(pcommit(), 0);
	assert_int_equal(capture_end(buf, sizeof buf, MISS), 0);
	assert_int_equal(punmap(), 0);

	/* Verify mode logged the dropped page: the store is durable. */
	assert_int_equal(pmap(path, 16 * MiB, 0), 0);
	r = proot("region", 8 * PG, NULL);
	assert_int_equal(r[2 * PG + 200], 7);
	assert_int_equal(r[5 * PG], 1);
	assert_int_equal(punmap(), 0);
	unsetenv("VOLIPMEM_VERIFY");
	vp__verify_test_full = false;
	dropped = 0;
}

static void test_dropped_page(void **state)
{
	(void)state;
	dropped_page(false);
}

static void test_dropped_page_full_compare(void **state)
{
	(void)state;
	dropped_page(true);
}

/* ---- a tracker whose lines op leaves one line out ---- */
static struct vp_tracker_ops lines_ops;
static uint64_t lines_pg;
static unsigned lines_skip;

static uint64_t lines_but_one(struct vp_tracker *t, uint64_t pgno)
{
	(void)t;
	return pgno == lines_pg ? ~(1ull << lines_skip) : ~0ull;
}

static void test_lines_op(void **state)
{
	(void)state;
	verify_on();
	const char *path = vpt_pool_path("vlines");
	assert_int_equal(pmap(path, 16 * MiB, 0), 0);
	uint8_t *r = proot("region", 4 * PG, NULL);
	assert_int_equal(pcommit(), 0);
	uint8_t *heap = vp_heap_base();
	uint8_t *a = r + PG + 640; /* two stores in adjacent lines */
	uint64_t off = (uint64_t)(a - heap) & ~(uint64_t)63;
	lines_pg = off / PG;
	lines_skip = (unsigned)(off % PG / 64);
	const struct vp_tracker_ops *real = vp__rt.trk.ops;
	lines_ops = *real;
	lines_ops.lines = lines_but_one;
	vp__rt.trk.ops = &lines_ops;
	vp_stats_reset();
	char buf[8192], want[64];

	capture_start();
	pstart();
	a[0] = 1;
	a[64] = 2;
	int rc = pend();
	int n = capture_end(buf, sizeof buf, MISS);
	vp__rt.trk.ops = real;
	assert_int_equal(rc, 0);
	assert_int_equal(n, 1);
	snprintf(want, sizeof want, "heap+0x%llx ", (unsigned long long)off);
	assert_non_null(strstr(buf, want));
	struct vp_stats st;
	vp_stats(&st);
	assert_int_equal(st.verify_missed_lines, 1);
	/* The line the lines op left out was logged anyway, by this commit:
	 * its home image has both stores (a later commit would report it
	 * again and log it then). */
	const uint8_t *home = vp__cm.pool->map + vp__cm.pool->sb.home_off;
	assert_int_equal(home[a - heap], 1);
	assert_int_equal(home[a + 64 - heap], 2);
	assert_int_equal(punmap(), 0);
	assert_int_equal(pmap(path, 16 * MiB, VP_OPEN_ONLY), 0);
	r = proot("region", 4 * PG, NULL);
	assert_int_equal(r[PG + 640], 1);
	assert_int_equal(r[PG + 704], 2);
	assert_int_equal(punmap(), 0);
	unsetenv("VOLIPMEM_VERIFY");
}

/* ---- a correct tracker: random stores, memsets, read()s, no report ---- */
static void test_clean_workload(void **state)
{
	(void)state;
	verify_on();
	const char *path = vpt_pool_path("vclean");
	assert_int_equal(pmap(path, 32 * MiB, 0), 0);
	const size_t len = 8 * MiB;
	uint8_t *r = proot("region", len, NULL);
	int src = open("/dev/urandom", O_RDONLY);
	assert_true(src >= 0);
	assert_int_equal(pcommit(), 0);
	vp_stats_reset();
	char buf[8192];
	uint64_t x = 88172645463325252ull;
	capture_start();
	for (int f = 0; f < 300; f++) {
		pstart();
		int k = 1 + (int)(x % 40);
		for (int i = 0; i < k; i++) {
			x ^= x << 13, x ^= x >> 7, x ^= x << 17;
			size_t at = x % (len - 8192);
			switch (x >> 60 & 3) {
			case 0: memset(r + at, (int)(x >> 8), 1 + (x >> 20) % 5000); break;
			case 1: assert_true(read(src, r + at, 1 + (x >> 20) % 300) > 0); break;
			default: r[at] = (uint8_t)(x >> 32); break;
			}
		}
		assert_int_equal(pend(), 0);
	}
	assert_int_equal(capture_end(buf, sizeof buf, MISS), 0);
	close(src);
	struct vp_stats st;
	vp_stats(&st);
	assert_int_equal(st.verify_missed_lines, 0);
	assert_true(st.commits >= 300);
	/* every commit compared at least the pages it logged */
	assert_true(st.verify_pages_checked >= st.pages_logged);
	assert_true(st.pages_logged > 300);
	assert_int_equal(punmap(), 0);
	unsetenv("VOLIPMEM_VERIFY");
}

/* Off by default: nothing is compared. */
static void test_off(void **state)
{
	(void)state;
	unsetenv("VOLIPMEM_VERIFY");
	assert_int_equal(pmap(vpt_pool_path("voff"), 16 * MiB, 0), 0);
	long *x = proot("x", sizeof *x, NULL);
	pstart();
	*x = 5;
	assert_int_equal(pend(), 0);
	struct vp_stats st;
	vp_stats(&st);
	assert_int_equal(st.verify_pages_checked, 0);
	assert_int_equal(punmap(), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_dropped_page),
		cmocka_unit_test(test_dropped_page_full_compare),
		cmocka_unit_test(test_lines_op),
		cmocka_unit_test(test_clean_workload),
		cmocka_unit_test(test_off),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
