/* SPDX-License-Identifier: MIT */
/*
 * test_track.c -- write-set tracking, run under each tracker (ctest sets
 * VOLIPMEM_TRACKER): exactly the written pages are logged, kernel writes
 * (read/fread into the heap) are captured and survive a crash, 50,000
 * scattered pages in one FAS (past vm.max_map_count for mprotect), an
 * application's own SIGSEGV handler, real segmentation faults, fork.
 */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <signal.h>
#include <sys/mman.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "../common.h"
#include "track/track.h"
#include "track/uffd_model.h"

#define MiB (1u << 20)
#define PG 4096

static bool tracker_is(const char *n)
{
	const char *t = getenv("VOLIPMEM_TRACKER");
	return t && strcmp(t, n) == 0;
}

/* in_vm -- a libvolimem tracker: the process runs as a KVM guest (no fork;
 * tested in a qemu guest with 1 GiB of RAM, so heaps are smaller). */
static bool in_vm(void)
{
	return tracker_is("vm-dirty") || tracker_is("vm-wp");
}

static void test_exact_pages(void **state)
{
	(void)state;
	setenv("VOLIPMEM_STICKY_PAGES", "0", 1); /* sticky pages are logged always */
	int rc = pmap(vpt_pool_path("exact"), 16 * MiB, 0);
	unsetenv("VOLIPMEM_STICKY_PAGES");
	assert_int_equal(rc, 0);
	uint8_t *r = proot("region", 64 * PG, NULL);
	r[0] = 1;
	assert_int_equal(pcommit(), 0);
	vp_stats_reset();
	pstart();
	r[5] = 1;
	r[7 * PG + 9] = 2;
	r[7 * PG + 10] = 3;
	r[40 * PG] = 4;
	assert_int_equal(pend(), 0);
	struct vp_stats st;
	vp_stats(&st);
	/* the write set the tracker found, before the line diff */
	if (tracker_is("full"))
		assert_int_equal(st.pages_collected, vp_heap_size() / PG);
	else
		assert_int_equal(st.pages_collected, 3);
	assert_int_equal(st.pages_logged, 3); /* the pages that changed */
	vp_stats_reset();
	assert_int_equal(pcommit(), 0); /* nothing written since */
	vp_stats(&st);
	if (!tracker_is("full"))
		assert_int_equal(st.pages_collected, 0);
	assert_int_equal(st.pages_logged, 0);
	assert_int_equal(punmap(), 0);
}

/* A page written in consecutive commits stops being re-armed (uffd keeps
 * it sticky) and is logged at every commit: writes to it must still be
 * durable, whenever they happen, and once it ages out it is tracked again. */
static void test_sticky_pages(void **state)
{
	(void)state;
	const char *path = vpt_pool_path("sticky");
	assert_int_equal(pmap(path, 16 * MiB, 0), 0);
	long *x = proot("x", 4 * PG, NULL);
	for (int i = 1; i <= 200; i++) {
		pstart();
		if (i < 5 || i % 17 == 0)
			x[0] = i;               /* hot, then rarely */
		x[512 + (i % 2) * 512] = i; /* other pages every time */
		assert_int_equal(pend(), 0);
	}
	struct vp_stats st;
	vp_stats(&st);
	assert_int_equal(punmap(), 0);
	assert_int_equal(pmap(path, 16 * MiB, 0), 0);
	x = proot("x", 4 * PG, NULL);
	assert_int_equal(x[0], 187);     /* last i < 200 with i % 17 == 0 */
	assert_int_equal(x[512], 200);
	assert_int_equal(x[1024], 199);
	assert_int_equal(punmap(), 0);
}

/*
 * A region whose only written page is sticky goes cold around it: commits
 * then scan nothing, yet a write anywhere else in the region (a heat), a
 * sticky page that stopped changing (protected and armed again while its
 * region is cold) and then changes once more, must all be durable. The
 * child exits without punmap, like a crash after its last commit.
 */
#define HOLE_FAS 600 /* > 2 * 255, the longest cool_after and sticky age */
static void hole_child(void *arg)
{
	const char *path = arg;
	if (pmap(path, 16 * MiB, 0) != 0)
		_exit(2);
	uint8_t *r = proot("r", 4 * MiB, NULL);
	uint8_t *p0 = (uint8_t *)(((uintptr_t)r + 2 * MiB - 1) & ~(uintptr_t)(2 * MiB - 1));
	volatile long *p = (long *)p0, *q = (long *)(p0 + 5 * PG);
	struct vp_stats st;
	uint64_t f0 = 0;
	for (int i = 1; i <= HOLE_FAS; i++) {
		if (i == HOLE_FAS / 2) {
			vp_stats(&st);
			f0 = st.faults;
		}
		pstart();
		*p = i;
		if (pend())
			_exit(3);
	}
	vp_stats(&st);
	bool uffd = tracker_is("uffd");
	if (uffd && st.faults != f0) /* the hole's region stayed cold, no heat */
		_exit(4);
	f0 = st.faults;
	pstart();
	*q = 1; /* elsewhere in the cold region */
	if (pend())
		_exit(5);
	vp_stats(&st);
	if (uffd && st.faults != f0 + 1)
		_exit(6);
	for (int i = 2; i <= HOLE_FAS; i++) { /* p unchanged: its stickiness expires */
		pstart();
		*q = i;
		if (pend())
			_exit(7);
	}
	vp_stats(&st);
	f0 = st.faults;
	pstart();
	*p = 4242; /* protected again: heats, is collected */
	if (pend())
		_exit(8);
	vp_stats(&st);
	if (uffd && st.faults != f0 + 1)
		_exit(9);
	_exit(0);
}

static void test_sticky_hole(void **state)
{
	(void)state;
	if (in_vm())
		skip();
	const char *path = vpt_pool_path("hole");
	int st = vpt_in_child(hole_child, (void *)path);
	assert_true(WIFEXITED(st));
	assert_int_equal(WEXITSTATUS(st), 0);
	assert_int_equal(pmap(path, 16 * MiB, 0), 0);
	uint8_t *r = proot("r", 4 * MiB, NULL);
	uint8_t *p0 = (uint8_t *)(((uintptr_t)r + 2 * MiB - 1) & ~(uintptr_t)(2 * MiB - 1));
	assert_int_equal(*(long *)p0, 4242);
	assert_int_equal(*(long *)(p0 + 5 * PG), HOLE_FAS);
	assert_int_equal(punmap(), 0);
}

/*
 * Out of VMAs while heating a region: the tracker falls back to a wholly
 * hot heap. A page written in a hot region before that, and not yet
 * collected, must still be committed (arming the whole heap again would
 * drop its mark). The child fills the VMA table with one-page mappings of
 * alternating protection, then writes a cold region.
 */
static void vma_child(void *arg)
{
	const char *path = arg;
	if (pmap(path, 16 * MiB, 0) != 0)
		_exit(2);
	volatile long *r = proot("r", 8 * MiB, NULL);
	/* Region 0 stays hot (a different page each commit, none sticky); the
	 * others cool. */
	for (int i = 0; i < 600; i++) {
		pstart();
		r[(size_t)(16 + i % 400) * (PG / 8)] = i;
		if (pend())
			_exit(3);
	}
	pstart();
	r[PG / 8] = 77; /* hot region, not yet collected */
	size_t n = 0;
	for (;; n++) {
		void *m = mmap(NULL, PG, n % 2 ? PROT_NONE : PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		if (m == MAP_FAILED)
			break;
	}
	if (n < 1000)
		_exit(4);
	r[6 * MiB / 8] = 88; /* a cold region: its heat cannot split a VMA */
	if (pend())
		_exit(5);
	_exit(0);
}

#if defined(__SANITIZE_THREAD__)
#define VP_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define VP_TSAN 1
#endif
#endif

static void test_vma_exhausted(void **state)
{
	(void)state;
	if (in_vm() || tracker_is("full"))
		skip();
#ifdef VP_TSAN
	/* TSan maps shadow memory as the program runs: with the VMA table
	 * full it cannot, and aborts the child. The ASan run covers this. */
	skip();
#endif
	const char *path = vpt_pool_path("vma");
	int st = vpt_in_child(vma_child, (void *)path);
	assert_true(WIFEXITED(st));
	assert_int_equal(WEXITSTATUS(st), 0);
	assert_int_equal(pmap(path, 16 * MiB, 0), 0);
	long *r = proot("r", 8 * MiB, NULL);
	assert_int_equal(r[PG / 8], 77);
	assert_int_equal(r[6 * MiB / 8], 88);
	assert_int_equal(punmap(), 0);
}

static int cmp_ref(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

/* test_pageset_sort -- the collection's sort and dedup against qsort, on
 * the sizes each of its paths takes (insertion below 48 pages, radix
 * above, with one to five byte passes) and on sorted input. */
static void test_pageset_sort(void **state)
{
	(void)state;
	static const size_t sizes[] = {0, 1, 2, 3, 47, 48, 49, 200, 5000, 70000};
	static const uint64_t ranges[] = {4, 256, 65536, 1u << 20, 1ull << 40};
	uint64_t x = 88172645463325252ull;
	for (size_t si = 0; si < sizeof sizes / sizeof *sizes; si++)
		for (size_t ri = 0; ri < sizeof ranges / sizeof *ranges; ri++)
			for (int sorted_in = 0; sorted_in < 2; sorted_in++) {
				size_t n = sizes[si];
				struct vp_pageset s = {0};
				uint64_t *ref = malloc((n + 1) * sizeof *ref);
				assert_non_null(ref);
				for (size_t i = 0; i < n; i++) {
					x ^= x << 13, x ^= x >> 7, x ^= x << 17; /* xorshift64 */
					uint64_t v = sorted_in ? i * (ranges[ri] / (n + 1) + 1) : x % ranges[ri];
					ref[i] = v;
					assert_int_equal(vp__pageset_push(&s, v), 0);
				}
				qsort(ref, n, sizeof *ref, cmp_ref);
				size_t m = n ? 1 : 0;
				for (size_t i = 1; i < n; i++)
					if (ref[i] != ref[m - 1])
						ref[m++] = ref[i];
				vp__pageset_sort_unique(&s);
				assert_int_equal(s.n, m);
				assert_memory_equal(s.pg, ref, m * sizeof *ref);
				free(ref);
				vp__pageset_free(&s);
			}
}

/* The uffd cost model: the policy follows the machine, within its bounds. */
static void test_uffd_model(void **state)
{
	(void)state;
	/* this machine, idle: scan 1.2 us + 0.4 ns/page, fault 1.4 us, ... */
	struct uffd_cost c = {.scan_fixed = 1200, .scan_page_x16 = 6, .fault = 1400, .rearm = 400,
			      .mprotect_pair = 6000, .compare = 80};
	struct uffd_policy p = uffd_policy_from(&c, 512);
	/* (6000 + 1400 + 1200 + 192) / 193 = 45; 1800 / 80 = 22 */
	assert_int_equal(p.cool_after, 45);
	assert_int_equal(p.sticky_age, 22);
	assert_int_equal(p.merge_gap, 6); /* 1200 / 193 */
	struct uffd_cost dear = c;
	dear.mprotect_pair *= 4; /* dearer cooling: regions stay hot longer */
	assert_true(uffd_policy_from(&dear, 512).cool_after > p.cool_after);
	dear = c;
	dear.scan_page_x16 *= 8; /* dearer scans: regions cool sooner */
	assert_true(uffd_policy_from(&dear, 512).cool_after < p.cool_after);
	struct uffd_cost zero = {0};
	p = uffd_policy_from(&zero, 512);
	assert_int_equal(p.cool_after, 2);
	assert_int_equal(p.sticky_age, 4);
	assert_int_equal(p.merge_gap, 0);
	struct uffd_cost huge = {.fault = UINT32_MAX, .mprotect_pair = UINT32_MAX, .compare = 1};
	p = uffd_policy_from(&huge, 512);
	assert_int_equal(p.cool_after, 255);
	assert_int_equal(p.sticky_age, 255);
}

static char tmpfile_path[128];

static void make_file(size_t n)
{
	snprintf(tmpfile_path, sizeof tmpfile_path, "/dev/shm/vpt-data-%d", (int)getpid());
	int fd = open(tmpfile_path, O_RDWR | O_CREAT | O_TRUNC, 0600);
	assert_true(fd >= 0);
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)(i * 7 + 3);
		assert_int_equal(write(fd, &c, 1), 1);
	}
	close(fd);
}

static void read_child(void *arg)
{
	if (pmap(arg, 16 * MiB, 0))
		_exit(3);
	uint8_t *buf = proot("buf", 5 * PG, NULL);
	int fd = open(tmpfile_path, O_RDONLY);
	pstart();
	ssize_t n = read(fd, buf + 100, 3 * PG);  /* kernel writes into the heap */
	if (n != 3 * PG)
		_exit(4);
	FILE *f = fopen(tmpfile_path, "r");
	if (!f || fread(buf + 4 * PG, 1, 1000, f) != 1000)
		_exit(5);
	fclose(f);
	if (pend() != 0)
		_exit(6);
	_exit(0); /* crash right after: no punmap */
}

static void test_kernel_writes(void **state)
{
	(void)state;
	const char *path = vpt_pool_path("kread");
	make_file(3 * PG);
	int st = vpt_in_child(read_child, (void *)path);
	assert_true(WIFEXITED(st));
	assert_int_equal(WEXITSTATUS(st), 0);
	assert_int_equal(pmap(path, 16 * MiB, 0), 0);
	uint8_t *buf = proot("buf", 5 * PG, NULL);
	for (size_t i = 0; i < 3 * PG; i++)
		assert_int_equal(buf[100 + i], (uint8_t)(i * 7 + 3));
	for (size_t i = 0; i < 1000; i++)
		assert_int_equal(buf[4 * PG + i], (uint8_t)(i * 7 + 3));
	assert_int_equal(punmap(), 0);
	unlink(tmpfile_path);
}

static void test_scattered_50k(void **state)
{
	(void)state;
	const char *path = vpt_pool_path("scatter");
	/* full copies the whole heap per commit: a tenth of the pages; the
	 * VM trackers run in a 1 GiB qemu guest, where /dev/shm cannot hold
	 * a 512 MiB pool and its log (they have no map count to exhaust). */
	const bool small = tracker_is("full") || in_vm();
	const size_t npg = small ? 5000 : 50000;
	const size_t heap = small ? 64 * MiB : 512 * MiB;
	assert_int_equal(pmap(path, heap, 0), 0);
	uint8_t *r = pmalloc(2 * npg * PG);
	assert_non_null(r);
	assert_int_equal(pcommit(), 0);
	pstart();
	for (size_t i = 0; i < npg; i++)
		r[2 * i * PG + (i % 4000)] = (uint8_t)(i | 1);  /* every other page */
	assert_int_equal(pend(), 0);
	struct vp_stats st;
	vp_stats(&st);
	assert_true(st.pages_logged >= npg);
	/* Tracking still works after the map-count fallback. */
	pstart();
	r[PG] = 0x5a;
	assert_int_equal(pend(), 0);
	proot("where", sizeof(void *), NULL);
	*(uint8_t **)proot("where", sizeof(void *), NULL) = r;
	assert_int_equal(pcommit(), 0);
	assert_int_equal(punmap(), 0);
	assert_int_equal(pmap(path, heap, 0), 0);
	r = *(uint8_t **)proot("where", sizeof(void *), NULL);
	for (size_t i = 0; i < npg; i++)
		assert_int_equal(r[2 * i * PG + (i % 4000)], (uint8_t)(i | 1));
	assert_int_equal(r[PG], 0x5a);
	assert_int_equal(punmap(), 0);
}

static sigjmp_buf jb;
static volatile int app_handler_calls;
static void app_handler(int sig, siginfo_t *si, void *uc)
{
	(void)sig, (void)si, (void)uc;
	app_handler_calls++;
	siglongjmp(jb, 1);
}

static void test_app_segv_handler(void **state)
{
	(void)state;
	assert_int_equal(pmap(vpt_pool_path("segv"), 16 * MiB, 0), 0);
	long *x = proot("x", 8 * PG, NULL);
	assert_int_equal(pcommit(), 0);
	struct sigaction sa, old;
	memset(&sa, 0, sizeof sa);
	sa.sa_sigaction = app_handler;
	sa.sa_flags = SA_SIGINFO;
	assert_int_equal(sigaction(SIGSEGV, &sa, &old), 0);
	pstart();
	for (int i = 0; i < 8; i++)
		x[i * 512] = i;           /* tracker faults: not the app's */
	assert_int_equal(pend(), 0);
	assert_int_equal(app_handler_calls, 0);
	/* A real fault: just beyond the heap, in the reserved range. */
	volatile char *beyond = (char *)vp_heap_base() + vp_heap_size() + 100;
	if (sigsetjmp(jb, 1) == 0)
		*beyond = 1;
	assert_int_equal(app_handler_calls, 1);
	struct sigaction cur;
	assert_int_equal(sigaction(SIGSEGV, NULL, &cur), 0);
	assert_ptr_equal(cur.sa_sigaction, app_handler);
	sigaction(SIGSEGV, &old, NULL);
	assert_int_equal(punmap(), 0);
}

static void segv_child(void *arg)
{
	signal(SIGSEGV, SIG_DFL); /* the test harness's own handler */
	if (pmap(arg, 16 * MiB, 0))
		_exit(3);
	volatile uintptr_t addr = 16;
	*(volatile int *)addr = 1;
	_exit(0);
}

static void test_real_segfault_kills(void **state)
{
	(void)state;
	int st = vpt_in_child(segv_child, (void *)vpt_pool_path("realsegv"));
	assert_true(WIFSIGNALED(st));
	assert_int_equal(WTERMSIG(st), SIGSEGV);
}

static void test_fork_detach(void **state)
{
	(void)state;
	const char *path = vpt_pool_path("fork");
	assert_int_equal(pmap(path, 16 * MiB, 0), 0);
	long *x = proot("x", 2 * PG, NULL);
	pstart();
	x[0] = 1;
	assert_int_equal(pend(), 0);
	fflush(NULL);
	pid_t pid = fork();
	if (in_vm()) {
		/* fork is not supported in the VM (docs/VM.md): a clear failure,
		 * and the pool goes on as before. */
		assert_int_equal(pid, -1);
		assert_int_equal(errno, ENOSYS);
	} else {
		if (pid == 0) {
			pstart();
			x[0] = 666;
			x[600] = 666;
			int rc = pend();
			_exit(rc == VP_E_DETACHED && pcommit() == VP_E_DETACHED && x[0] == 666 ? 0 : 1);
		}
		int st;
		waitpid(pid, &st, 0);
		assert_true(WIFEXITED(st));
		assert_int_equal(WEXITSTATUS(st), 0);
	}
	assert_int_equal(x[0], 1);
	pstart();
	x[1] = 2;
	assert_int_equal(pend(), 0);
	assert_int_equal(punmap(), 0);
	assert_int_equal(pmap(path, 16 * MiB, 0), 0);
	x = proot("x", 2 * PG, NULL);
	assert_int_equal(x[0], 1);
	assert_int_equal(x[1], 2);
	assert_int_equal(x[600], 0);
	assert_int_equal(punmap(), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_exact_pages),
		cmocka_unit_test(test_sticky_pages),
		cmocka_unit_test(test_sticky_hole),
		cmocka_unit_test(test_uffd_model),
		cmocka_unit_test(test_pageset_sort),
		cmocka_unit_test(test_vma_exhausted),
		cmocka_unit_test(test_kernel_writes),
		cmocka_unit_test(test_scattered_50k),
		cmocka_unit_test(test_app_segv_handler),
		cmocka_unit_test(test_real_segfault_kills),
		cmocka_unit_test(test_fork_detach),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
