/* SPDX-License-Identifier: MIT */
/*
 * test_alloc.c -- the persistent allocator and roots: sizes and alignment,
 * random alloc/free against a shadow model with the checker after each
 * phase, out of memory, misuse (double free, foreign and interior
 * pointers), realloc/calloc, roots, and rollback of allocations made in a
 * FAS that never ended; after each phase the allocator's count of bytes in
 * use equals the sum of the blocks, also after a reopen and a rollback,
 * and the heap header's unused `used` field is ignored.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "../common.h"
#include "heap/heap.h"
#include "pool/format.h"

#include <fcntl.h>
#include <unistd.h>

#define MiB (1u << 20)

static uint64_t used(void)
{
	struct vp_stats st;
	assert_int_equal(vp_stats(&st), 0);
	return st.heap_used;
}

/* check_heap -- the checker passes, and the count of bytes in use the
 * allocator keeps in memory (format version 5 keeps none in the pool; at
 * pmap it is added up from the page map) is what the blocks add up to. */
static void check_heap(void)
{
	struct vp_heap_report rep;
	char err[400];
	int rc = vp__heap_check(vp_heap_base(), vp_heap_size(), &rep, err, sizeof err);
	if (rc)
		fail_msg("heap check: %s", err);
	assert_int_equal(rep.used_bytes, used());
}

static void test_sizes(void **state)
{
	(void)state;
	assert_int_equal(pmap(vpt_pool_path("sizes"), 32 * MiB, 0), 0);
	static const size_t sizes[] = {0, 1, 15, 16, 17, 100, 1000, 4095, 4096, 8191, 8192, 8193, 65536, 1 << 20};
	void *p[sizeof sizes / sizeof sizes[0]];
	uint64_t u0 = used();
	for (size_t i = 0; i < sizeof sizes / sizeof *sizes; i++) {
		p[i] = pmalloc(sizes[i]);
		assert_non_null(p[i]);
		assert_true(vp_in_heap(p[i]));
		assert_int_equal((uintptr_t)p[i] % 16, 0);
		assert_true(vp_usable_size(p[i]) >= sizes[i]);
		assert_int_equal(vp_usable_size((char *)p[i] + 16), 0); /* interior */
		memset(p[i], 0xab, sizes[i]);
	}
	check_heap();
	for (size_t i = 0; i < sizeof sizes / sizeof *sizes; i++)
		pfree(p[i]);
	assert_int_equal(used(), u0);
	check_heap();
	assert_int_equal(punmap(), 0);
}

struct slot { uint8_t *p; size_t n; uint8_t fill; };

static void test_random(void **state)
{
	(void)state;
	const char *path = vpt_pool_path("random");
	assert_int_equal(pmap(path, 64 * MiB, 0), 0);
	enum { N = 2000 };
	struct slot *s = calloc(N, sizeof *s);
	unsigned seed = 12345;
	vp_set_durability(VP_RELAXED, 50);
	for (int round = 0; round < 4; round++) {
		pstart(); /* batch many operations into one FAS */
		for (int k = 0; k < 20000; k++) {
			int i = (int)(rand_r(&seed) % N);
			if (s[i].p) {
				for (size_t j = 0; j < s[i].n; j += 97)
					assert_int_equal(s[i].p[j], s[i].fill);
				pfree(s[i].p);
				s[i].p = NULL;
			} else {
				size_t n = (rand_r(&seed) % 8 == 0) ? 1 + rand_r(&seed) % 200000 : 1 + rand_r(&seed) % 3000;
				s[i].p = pmalloc(n);
				assert_non_null(s[i].p);
				s[i].n = n;
				s[i].fill = (uint8_t)rand_r(&seed);
				memset(s[i].p, s[i].fill, n);
			}
		}
		assert_int_equal(pend(), 0);
		check_heap();
	}
	assert_int_equal(psync(), 0);
	uint64_t u = used();
	assert_int_equal(punmap(), 0);
	/* Everything is there after a reopen, the count added up again at
	 * pmap is the one before, and the checker agrees. */
	assert_int_equal(pmap(path, 64 * MiB, 0), 0);
	assert_int_equal(used(), u);
	check_heap();
	for (int i = 0; i < N; i++)
		if (s[i].p) {
			for (size_t j = 0; j < s[i].n; j += 97)
				assert_int_equal(s[i].p[j], s[i].fill);
			pfree(s[i].p);
		}
	check_heap();
	assert_int_equal(punmap(), 0);
	free(s);
}

static void test_oom(void **state)
{
	(void)state;
	assert_int_equal(pmap(vpt_pool_path("oom"), 4 * MiB, 0), 0);
	void *v[4096];
	int n = 0;
	pstart();
	while (n < 4096 && (v[n] = pmalloc(100000)))
		n++;
	assert_true(n > 10 && n < 4096);
	assert_null(pmalloc(100000));
	assert_int_equal(errno, ENOMEM);
	assert_null(pmalloc((size_t)1 << 40));
	void *small;
	int ns = 0;
	while ((small = pmalloc(64)))
		ns++;
	assert_int_equal(pend(), 0);
	check_heap();
	pstart();
	for (int i = 0; i < n; i++)
		pfree(v[i]);
	assert_int_equal(pend(), 0);
	check_heap();
	assert_non_null(pmalloc(100000));
	assert_null(pcalloc(SIZE_MAX / 2, 4)); /* overflow */
	assert_int_equal(punmap(), 0);
}

/* Runs emptied in allocation order go back to the page allocator, so
 * another size class can use the space. */
static void test_runs_recycled(void **state)
{
	(void)state;
	assert_int_equal(pmap(vpt_pool_path("recycle"), 8 * MiB, 0), 0);
	enum { MAXB = 8192 };
	void **v = calloc(MAXB, sizeof *v);
	int n = 0;
	pstart();
	while (n < MAXB && (v[n] = pmalloc(1008)))
		n++;
	assert_true(n > 1000 && n < MAXB);
	assert_null(pmalloc(24));
	for (int i = 0; i < n; i++)
		pfree(v[i]);
	assert_non_null(pmalloc(24));
	assert_non_null(pmalloc(100000));
	assert_int_equal(pend(), 0);
	check_heap();
	free(v);
	assert_int_equal(punmap(), 0);
}

static void test_misuse(void **state)
{
	(void)state;
	assert_null(pmalloc(10)); /* before pmap */
	assert_int_equal(pmap(vpt_pool_path("afree"), 8 * MiB, 0), 0);
	char *a = pmalloc(100), *big = pmalloc(50000);
	uint64_t u = used();
	int on_stack;
	pfree(&on_stack);          /* not from the heap */
	pfree(a + 16);             /* interior */
	pfree(big + 4096);         /* interior of a large block */
	pfree(a);
	uint64_t u2 = used();
	pfree(a);                  /* double free */
	pfree(big);
	pfree(big);                /* double free of a large block */
	assert_int_equal(used(), u2 - 53248); /* 50000 bytes -> 13 pages, freed once */
	assert_int_equal(u - u2, 112);         /* the 100-byte block's class */
	check_heap();
	assert_int_equal(punmap(), 0);
}

static void test_realloc_calloc(void **state)
{
	(void)state;
	assert_int_equal(pmap(vpt_pool_path("realloc"), 16 * MiB, 0), 0);
	char *p = pmalloc(10);
	strcpy(p, "persistent");
	p = prealloc(p, 11);
	assert_string_equal(p, "persistent");
	p = prealloc(p, 100000);
	assert_non_null(p);
	assert_string_equal(p, "persistent");
	p = prealloc(p, 20);
	assert_string_equal(p, "persistent");
	assert_null(prealloc(p, 0));
	int *z = pcalloc(1000, sizeof *z);
	for (int i = 0; i < 1000; i++)
		assert_int_equal(z[i], 0);
	check_heap();
	assert_int_equal(punmap(), 0);
}

static int collect(const char *name, void *obj, size_t size, void *arg)
{
	char *out = arg;
	(void)obj;
	sprintf(out + strlen(out), "%s:%zu,", name, size);
	return 0;
}

static void test_roots(void **state)
{
	(void)state;
	const char *path = vpt_pool_path("roots");
	assert_int_equal(pmap(path, 8 * MiB, 0), 0);
	bool created;
	long *a = proot("alpha", 8, &created);
	assert_true(created);
	assert_int_equal(*a, 0);
	*a = 5;
	assert_int_equal(pcommit(), 0);
	assert_non_null(proot("beta", 100, &created));
	assert_non_null(proot("gamma", 3, NULL));
	assert_ptr_equal(proot("alpha", 8, &created), a);
	assert_false(created);
	assert_null(proot("alpha", 16, NULL));
	assert_non_null(strstr(vp_errormsg(), "size 8"));
	assert_null(proot("", 8, NULL));
	char longname[100];
	memset(longname, 'x', 99);
	longname[99] = 0;
	assert_null(proot(longname, 8, NULL));
	assert_int_equal(vp_root_remove("beta"), 0);
	assert_int_equal(vp_root_remove("beta"), VP_E_NOROOT);
	assert_int_equal(punmap(), 0);
	assert_int_equal(pmap(path, 8 * MiB, 0), 0);
	char list[200] = "";
	assert_int_equal(vp_root_list(collect, list), 2);
	assert_string_equal(list, "alpha:8,gamma:3,");
	assert_int_equal(*(long *)proot("alpha", 8, NULL), 5);
	check_heap();
	assert_int_equal(punmap(), 0);
}

static void crash_in_fas(void *arg)
{
	if (pmap(arg, 8 * MiB, 0))
		_exit(3);
	pstart();
	for (int i = 0; i < 100; i++)
		memset(pmalloc(1000 + i * 100), 1, 1000);
	proot("inside", 64, NULL);
	_exit(0); /* dies inside the FAS */
}

static void test_rollback(void **state)
{
	(void)state;
	const char *path = vpt_pool_path("rollback");
	assert_int_equal(pmap(path, 8 * MiB, 0), 0);
	pmalloc(77);
	uint64_t u = used();
	assert_int_equal(punmap(), 0);
	int st = vpt_in_child(crash_in_fas, (void *)path);
	assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	assert_int_equal(pmap(path, 8 * MiB, 0), 0);
	assert_int_equal(used(), u);
	char list[200] = "";
	assert_int_equal(vp_root_list(collect, list), 0);
	check_heap();
	assert_int_equal(punmap(), 0);
}

/* test_used_ignored -- format version 5 keeps no count of bytes in use
 * in the pool: whatever the heap header's `used` field holds (a version-4
 * pool's old count, damage) is ignored, the count comes from the blocks,
 * and the checker does not refuse the heap for it. */
static void test_used_ignored(void **state)
{
	(void)state;
	const char *path = vpt_pool_path("usedfield");
	assert_int_equal(pmap(path, 8 * MiB, 0), 0);
	assert_non_null(pmalloc(100));
	assert_non_null(pmalloc(3 * 4096 + 5));
	uint64_t u = used();
	assert_true(u >= 100 + 4 * 4096);
	assert_int_equal(punmap(), 0);
	int fd = open(path, O_RDWR);
	assert_true(fd >= 0);
	struct vp_superblock sb;
	assert_int_equal(pread(fd, &sb, sizeof sb, VP_SB_OFF_A), (ssize_t)sizeof sb);
	uint64_t junk = 0x5eed5eed5eedull;
	off_t at = (off_t)(sb.home_off + offsetof(struct vp_heaphdr, used));
	assert_int_equal(pwrite(fd, &junk, sizeof junk, at), (ssize_t)sizeof junk);
	close(fd);
	assert_int_equal(pmap(path, 8 * MiB, 0), 0);
	assert_int_equal(used(), u);
	check_heap();
	assert_int_equal(punmap(), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_sizes),
		cmocka_unit_test(test_random),
		cmocka_unit_test(test_oom),
		cmocka_unit_test(test_runs_recycled),
		cmocka_unit_test(test_misuse),
		cmocka_unit_test(test_realloc_calloc),
		cmocka_unit_test(test_roots),
		cmocka_unit_test(test_rollback),
		cmocka_unit_test(test_used_ignored),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
