/* SPDX-License-Identifier: MIT */
/*
 * test_lines.c -- the line-granular redo log: a line changed in one group
 * and changed back in the next keeps its reverted value through kill -9
 * (after the commit, and between the commit point and the home update);
 * pages with most lines changed are logged whole; what the persist
 * layer stores to the medium for a small FAS stays within a line budget;
 * and the page trackers' shadows (commit/shadow.c) stay the committed
 * image: through a revert, and through a commit that failed.
 */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "../common.h"
#include "persist/persist.h"
#include "pool/format.h"

#define MiB (1024u * 1024u)
#define NPAGES 4

struct blk {
	uint64_t off;             /* heap offset of the data pages             */
};

static int kill_at_home; /* 1: SIGKILL at the next step-4 drain */
static const char *fail_at; /* a drain that reports -EIO */

static int fence(void *ctx, const char *point)
{
	(void)ctx;
	if (kill_at_home && strstr(point, "home:record-B-and-pages-updated"))
		raise(SIGKILL);
	return fail_at && strstr(point, fail_at) ? -EIO : 0;
}
static void nop_store(void *ctx, const void *d, size_t n) { (void)ctx, (void)d, (void)n; }
static struct vp_persist_hooks hooks = {.store = nop_store, .flush = nop_store, .fence = fence};

/* pages -- the test's NPAGES pages in the working copy. */
static uint64_t *pages(void)
{
	struct blk *b = proot("lines", sizeof *b, NULL);
	assert_non_null(b);
	if (!b->off) {
		pstart();
		void *p = pmalloc(NPAGES * 4096);
		assert_non_null(p);
		b->off = (uint64_t)((uint8_t *)p - (uint8_t *)vp_heap_base());
		assert_int_equal(pend(), 0);
	}
	return (uint64_t *)((uint8_t *)vp_heap_base() + b->off);
}

/* change_and_revert -- group E changes `nl` lines of page pg (word 3 of
 * each), group E+1 sets them back; with `die`, the child is killed at
 * E+1's home update, after its commit point. */
static void change_and_revert(uint64_t *w, unsigned pg, unsigned nl, bool die)
{
	uint64_t *p = w + pg * 512;
	uint64_t old[64];
	for (unsigned j = 0; j < nl; j++)
		old[j] = p[j * 8 + 3];
	pstart();
	for (unsigned j = 0; j < nl; j++)
		p[j * 8 + 3] = 0xabcd000000000000ull | (pg << 8) | j;
	assert_int_equal(pend(), 0);
	pstart();
	for (unsigned j = 0; j < nl; j++)
		p[j * 8 + 3] = old[j];
	if (die) {
		vp__persist_hooks = &hooks;
		kill_at_home = 1;
	}
	assert_int_equal(pend(), 0);
}

/* revert_child -- page 0: one line; page 1: 10 lines (LINES entries);
 * page 2: 50 lines (whole page); then, for `arg` != NULL, page 3 with the
 * kill between its commit point and its home update; else kill -9 after. */
static void revert_child(void *arg)
{
	if (pmap((const char *)arg + 1, 8 * MiB, 0) != 0)
		_exit(2);
	uint64_t *w = pages();
	for (unsigned i = 0; i < NPAGES * 512; i++)
		if (w[i] != (uint64_t)i)
			_exit(3); /* the parent's pattern */
	change_and_revert(w, 0, 1, false);
	change_and_revert(w, 1, 10, false);
	change_and_revert(w, 2, 50, false);
	change_and_revert(w, 3, 2, ((const char *)arg)[0] == 'm');
	raise(SIGKILL);
}

/* check_home_but -- the pattern, but word i holds v, read from the file's
 * home image after the pool was recovered and unmapped. */
static void check_home_but(const char *path, uint64_t off, unsigned i, uint64_t v);
static void check_home(const char *path, uint64_t off) { check_home_but(path, off, UINT32_MAX, 0); }
static void check_home_but(const char *path, uint64_t off, unsigned x, uint64_t xv)
{
	struct vp_superblock sb;
	uint64_t v[NPAGES * 512];
	int fd = open(path, O_RDONLY);
	assert_true(fd >= 0);
	assert_int_equal(pread(fd, &sb, sizeof sb, 0), (ssize_t)sizeof sb);
	assert_int_equal(pread(fd, v, sizeof v, (off_t)(sb.home_off + off)), (ssize_t)sizeof v);
	close(fd);
	for (unsigned i = 0; i < NPAGES * 512; i++)
		assert_int_equal(v[i], i == x ? xv : i);
}

static void revert_case(char mode)
{
	const char *path = vpt_pool_path(mode == 'm' ? "revert-mid" : "revert-end");
	assert_int_equal(pmap(path, 8 * MiB, 0), 0);
	uint64_t *w = pages();
	pstart();
	for (unsigned i = 0; i < NPAGES * 512; i++)
		w[i] = i;
	assert_int_equal(pend(), 0);
	assert_int_equal(punmap(), 0);

	char arg[300];
	snprintf(arg, sizeof arg, "%c%s", mode, path);
	int st = vpt_in_child(revert_child, arg);
	assert_true(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL);

	assert_int_equal(pmap(path, 8 * MiB, 0), 0);
	w = pages();
	uint64_t off = (uint64_t)((uint8_t *)w - (uint8_t *)vp_heap_base());
	for (unsigned i = 0; i < NPAGES * 512; i++)
		assert_int_equal(w[i], i);
	assert_int_equal(punmap(), 0);
	check_home(path, off);
}

/* test_revert_after_commit -- kill -9 after both groups are applied. */
static void test_revert_after_commit(void **state)
{
	(void)state;
	revert_case('e');
}

/* test_revert_before_home -- kill -9 after the revert's commit point,
 * before its home update: recovery applies its LINES entry. */
static void test_revert_before_home(void **state)
{
	(void)state;
	revert_case('m');
}

/* test_whole_page -- most lines changed: the page is logged whole; a few:
 * only those lines (bytes_logged says which). */
static void test_whole_page(void **state)
{
	(void)state;
	const char *path = vpt_pool_path("whole");
	assert_int_equal(pmap(path, 8 * MiB, 0), 0);
	uint64_t *w = pages();
	struct vp_stats a, b;
	for (unsigned nl = 1; nl <= 64; nl += 7) {
		vp_stats(&a);
		pstart();
		for (unsigned j = 0; j < nl; j++)
			w[j * 8] += 1;
		assert_int_equal(pend(), 0);
		vp_stats(&b);
		uint64_t data = b.bytes_logged - a.bytes_logged - 16 - 2 * 64;
		assert_int_equal(b.pages_logged - a.pages_logged, 1);
		if (nl <= 32)
			assert_int_equal(data, 64 * (1 + nl));
		else
			assert_int_equal(data, 4096);
	}
	assert_int_equal(punmap(), 0);
}

/* fas_bytes -- bytes the persist layer stored per 8-byte sync FAS, over
 * 200 FASes, on one hot page (stride 0) or a different page each time. */
static double fas_bytes(uint64_t *w, unsigned stride, double *collected)
{
	struct vp_stats a, b;
	const unsigned n = 200;
	vp_stats(&a);
	for (unsigned i = 0; i < n; i++) {
		pstart();
		w[(i * stride) % (NPAGES * 512) + 5] += 1;
		assert_int_equal(pend(), 0);
	}
	vp_stats(&b);
	assert_int_equal(b.commits - a.commits, n);
	*collected = (double)(b.pages_collected - a.pages_collected) / n;
	return (double)(b.bytes_persisted - a.bytes_persisted) / n;
}

/* test_bytes_per_fas -- <= 512 bytes stored to the medium per 8-byte FAS
 * (VOLIPMEM_FORCE_PMEM=1: stores go straight to the mapping). */
static void test_bytes_per_fas(void **state)
{
	(void)state;
	const char *path = vpt_pool_path("bytes");
	setenv("VOLIPMEM_FORCE_PMEM", "1", 1);
	assert_int_equal(pmap(path, 8 * MiB, 0), 0);
	uint64_t *w = pages();
	double ch, cs;
	double hot = fas_bytes(w, 0, &ch), spread = fas_bytes(w, 512, &cs);
	printf("bytes stored per 8-byte sync FAS: same page %.0f, page by page %.0f (%.0f, %.0f pages collected)\n", hot,
	       spread, ch, cs);
	assert_true(hot <= 512);
	assert_true(spread <= 512);
	/* Exactly: the LINES slot (header + line, 128), its descriptor (16),
	 * records A and B (2 x 64) and the line home (64); no retire records
	 * (groups are appended), except two records (128) when the log wraps:
	 * at most once per 64 of these 200 one-slot groups (VP_APPEND_WINDOW)
	 * while the write set is under half the log's 2048 slots, and at every
	 * commit when the tracker reports every heap page (the group might
	 * then need the whole log). */
	const double exact = 128 + 16 + 2 * 64 + 64;
	const double few = 128.0 * (200 / 64 + 1) / 200;
	const double wraps_hot = ch < 1024 ? few : 128, wraps_spread = cs < 1024 ? few : 128;
	assert_true(hot >= exact && hot <= exact + wraps_hot);
	assert_true(spread >= exact && spread <= exact + wraps_spread);
	assert_int_equal(punmap(), 0);
	unsetenv("VOLIPMEM_FORCE_PMEM");
}

/* shadowed -- write line 0 of page pg in four groups: the second gives
 * it a shadow, the others are diffed against it (page trackers; cc names
 * its lines and keeps none). */
static void shadowed(uint64_t *w, unsigned pg)
{
	struct vp_stats a, b;
	vp_stats(&a);
	for (unsigned i = 0; i < 3; i++) {
		pstart();
		w[pg * 512 + 1] = pg * 512 + 1 + 0x100 * (i + 1);
		assert_int_equal(pend(), 0);
	}
	pstart();
	w[pg * 512 + 1] = pg * 512 + 1;
	assert_int_equal(pend(), 0);
	vp_stats(&b);
	/* Groups of at most 64 pages install (the default 256 / 4): not the
	 * full tracker's, which names every page. */
	if (strcmp(b.tracker, "cc") != 0 && b.pages_collected - a.pages_collected <= 4 * 64)
		assert_true(b.shadow_hits - a.shadow_hits >= 2);
}

/* test_shadow -- with shadows: a line changed and changed back (two
 * groups) keeps its value; and a commit that fails after step 3 has
 * brought the shadow along does not leave it ahead of home: the same
 * value stored again, in the retried group, still reaches home. Read
 * back from the file after punmap. */
static void test_shadow(void **state)
{
	(void)state;
	const char *path = vpt_pool_path("shadow");
	assert_int_equal(pmap(path, 8 * MiB, 0), 0);
	uint64_t *w = pages();
	uint64_t off = (uint64_t)((uint8_t *)w - (uint8_t *)vp_heap_base());
	pstart();
	for (unsigned i = 0; i < NPAGES * 512; i++)
		w[i] = i;
	assert_int_equal(pend(), 0);
	for (unsigned pg = 0; pg < NPAGES; pg++)
		shadowed(w, pg);
	change_and_revert(w, 0, 1, false);
	change_and_revert(w, 1, 10, false);
	change_and_revert(w, 2, 50, false);

	/* Page 3: a group fails at D1, after its lines went into the shadow. */
	vp__persist_hooks = &hooks;
	fail_at = "record-A-committed";
	pstart();
	w[3 * 512 + 8 * 9 + 2] = 0xfeed;
	assert_int_equal(pend(), -EIO);
	fail_at = NULL;
	vp__persist_hooks = NULL;
	/* The next group holds the failed one's pages (carried over) and the
	 * same value again: the diff must be against home. */
	pstart();
	w[3 * 512 + 8 * 9 + 2] = 0xfeed;
	assert_int_equal(pend(), 0);
	assert_int_equal(punmap(), 0);
	check_home_but(path, off, 3 * 512 + 8 * 9 + 2, 0xfeed);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_revert_after_commit),
		cmocka_unit_test(test_revert_before_home),
		cmocka_unit_test(test_whole_page),
		cmocka_unit_test(test_bytes_per_fas),
		cmocka_unit_test(test_shadow),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
