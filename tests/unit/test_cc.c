/* SPDX-License-Identifier: MIT */
/*
 * test_cc.c -- the cc tracker, in a program built with its instrumentation
 * (clang, tools/cc): each kind of write into the heap inside a FAS -- an
 * 8-byte and a 1-byte store, a struct copy, atomic RMW and compare-exchange, memcpy (inlined and called),
 * memset, snprintf, strcpy, read() -- is collected as exactly its pages and,
 * per page, exactly its lines; what was written is durable; a store the
 * instrumentation cannot see (inline assembly) is not collected, which is
 * why cc is chosen only by name. Without VOLIPMEM_TRACKER=cc the automatic
 * choice never picks it. The snapshot of the recorded lines (commit/snap.c)
 * is tested, for every tracker, by test_snap.c.
 */
#include <errno.h>
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

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_write_kinds),
		cmocka_unit_test(test_library_writes),
		cmocka_unit_test(test_not_automatic),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
