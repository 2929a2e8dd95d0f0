/* SPDX-License-Identifier: MIT */
/*
 * bench_core.c -- microbenchmarks of the runtime for the tracker named by
 * VOLIPMEM_TRACKER, printing "metric value" lines that run.sh aggregates
 * (medians over runs, side by side per tracker):
 *   empty_fas_ns           pstart+pend with nothing written (synchronous)
 *   fas_{1,16,256}p_us     synchronous FAS dirtying k pages with one 8-byte
 *                          store each, 1 GiB heap (different pages each
 *                          time: fas_1p_us is the fresh-page 8-byte FAS)
 *   same_page_fas_us       synchronous FAS of one 8-byte store to one hot page
 *   {fas_1p,same_page}_bytes_per_fas  bytes the persist layer stored to the
 *                          medium per such FAS (vp_stats.bytes_persisted)
 *   {fas_1p,same_page}_{collect,prepare,log,update,rest}_ns  the per-step
 *                          breakdown of that FAS: vp_stats' time in steps
 *                          1-4 (fas_1p: medians over the FASes; same_page:
 *                          means, as its loop is timed whole) and what they
 *                          leave of the FAS time (the first write's fault,
 *                          pstart/pend and the gate)
 *   {fas_1p,same_page}_drains_per_fas  ordering points (sfence or msync)
 *                          per such FAS (vp_stats.drains): 2, plus the
 *                          wrap's 2 once per 64 groups
 *   pmdk_tx8_ns            the peer: PMDK libpmemobj TX_BEGIN; TX_ADD 8 B;
 *                          store; TX_END (pool in $VP_BENCH_DIR; run with
 *                          PMEM_IS_PMEM_FORCE=1; absent if built without it)
 *   first_write_ns         first store to a page after a commit (re-armed)
 *   commit_pages_per_s     large FAS (32768 pages): pages / pend() time
 *   ceiling_pages_per_s    copying the same pages twice with the same store
 *                          method (log, then home) in this run
 *   stall_ns / commit_ns   threads paused vs whole commit, large FAS
 *   pause_{16,256,4096}p_ns / commit_{16,256,4096}p_ns   per synchronous
 *                          pcommit() of a FAS of k contiguous pages while a
 *                          second thread runs 1-page FASes over them:
 *                          time the gate was closed vs the whole commit
 *                          (run with VOLIPMEM_CONCURRENT_COPY=on and =off)
 *   collect_{64m,1g,4g}_{1,100,10000}_us   step 1 time per commit
 *   pmap_{64m,1g,8g}_ms    pmap() of an existing pool
 *   env_first_touch_ns     the machine: first store to a fresh anonymous page
 *   env_mprotect_pair_ns   the machine: mprotect a page read-only and back
 *   env_uffd_first_write_ns the machine: first store to a populated page
 *                          armed with userfaultfd async write-protect (no
 *                          runtime involved; the research notes measured
 *                          0.65-0.69 us on these machines)
 *   env_uffd_rearm_ns      the machine: PAGEMAP_SCAN + re-protect, per
 *                          written page
 *                          (both are page-table changes: what every tracker
 *                          pays per page, and what shadow paging makes slow)
 * Pools are sparse files in $VP_BENCH_DIR (default /dev/shm).
 */
#include <fcntl.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <volipmem.h>
#ifdef VP_BENCH_PMDK
#include <libpmemobj.h>
#endif

#include "persist/persist.h"
#include "track/uffd_abi.h"
#include "util/util.h"

#define PG 4096
#define GiB (1ull << 30)
#define MiB (1ull << 20)

static char path[256];

static void open_pool(uint64_t size)
{
	unlink(path);
	if (pmap(path, size, VP_SPARSE)) {
		fprintf(stderr, "bench: pmap: %s\n", vp_errormsg());
		exit(1);
	}
}

static void close_pool(void)
{
	punmap();
	unlink(path);
}

static int cmp_d(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

static double median(double *v, int n)
{
	qsort(v, (size_t)n, sizeof *v, cmp_d);
	return v[n / 2];
}

static void bench_empty(void)
{
	open_pool(64 * MiB);
	for (int i = 0; i < 1000; i++) {
		pstart();
		pend();
	}
	int n = 20000;
	uint64_t t0 = vp__now_ns();
	for (int i = 0; i < n; i++) {
		pstart();
		pend();
	}
	printf("empty_fas_ns %.0f\n", (double)(vp__now_ns() - t0) / n);
	close_pool();
}

/* bytes_per_fas -- bytes stored to the medium since the last
 * vp_stats_reset(), per FAS of the n measured. */
static double bytes_per_fas(int n)
{
	struct vp_stats st;
	vp_stats(&st);
	return (double)st.bytes_persisted / n;
}

/* step_ns -- vp_stats' time in commit steps 1-4 so far. */
static void step_ns(double out[4])
{
	struct vp_stats st;
	vp_stats(&st);
	out[0] = (double)st.ns_collect;
	out[1] = (double)st.ns_prepare;
	out[2] = (double)st.ns_log;
	out[3] = (double)st.ns_update;
}

/* steps -- print the per-step breakdown of a FAS that took total_ns, whose
 * steps took step[0..3] ns: each step and what the steps leave of the FAS
 * time. */
static void steps(const char *prefix, const double step[4], double total_ns)
{
	static const char *const name[4] = {"collect", "prepare", "log", "update"};
	double rest = total_ns;
	for (int i = 0; i < 4; i++) {
		printf("%s_%s_ns %.0f\n", prefix, name[i], step[i]);
		rest -= step[i];
	}
	printf("%s_rest_ns %.0f\n", prefix, rest);
}

/* drains_per_fas -- like bytes_per_fas, the drains (vp_stats.drains). */
static double drains_per_fas(int n)
{
	struct vp_stats st;
	vp_stats(&st);
	return (double)st.drains / n;
}

static void bench_fas_pages(void)
{
	open_pool(GiB);
	const int region = 4096;
	uint8_t *r = pmalloc((size_t)region * PG);
	memset(r, 1, (size_t)region * PG); /* make every page private now */
	pcommit();
	static const int ks[] = {1, 16, 256};
	for (int ki = 0; ki < 3; ki++) {
		int k = ks[ki], iters = k == 256 ? 200 : 2000;
		double *v = malloc(sizeof(double) * (size_t)iters);
		double *sv[4];
		for (int j = 0; j < 4; j++)
			sv[j] = malloc(sizeof(double) * (size_t)iters);
		int off = 0;
		vp_stats_reset();
		for (int i = 0; i < iters; i++) {
			double s0[4], s1[4];
			step_ns(s0);
			uint64_t t0 = vp__now_ns();
			pstart();
			for (int j = 0; j < k; j++) /* one 8-byte store per page */
				(*(volatile uint64_t *)(r + (size_t)((off + j * 7) % region) * PG +
							(size_t)(i % 64) * 8))++;
			pend();
			v[i] = (double)(vp__now_ns() - t0) / 1000.0;
			step_ns(s1);
			for (int j = 0; j < 4; j++)
				sv[j][i] = s1[j] - s0[j];
			off = (off + k * 7 + 1) % region;
		}
		printf("fas_%dp_us %.2f\n", k, median(v, iters));
		if (k == 1) {
			printf("fas_1p_bytes_per_fas %.0f\n", bytes_per_fas(iters));
			/* medians per step, beside the median FAS */
			double m[4];
			for (int j = 0; j < 4; j++)
				m[j] = median(sv[j], iters);
			printf("fas_1p_drains_per_fas %.2f\n", drains_per_fas(iters));
			steps("fas_1p", m, median(v, iters) * 1000.0);
		}
		for (int j = 0; j < 4; j++)
			free(sv[j]);
		free(v);
	}
	close_pool();
}

static void bench_same_page(void)
{
	open_pool(GiB);
	volatile uint64_t *r = pmalloc(PG);
	pcommit();
	for (int i = 0; i < 200; i++) {
		pstart();
		r[0]++;
		pend();
	}
	int n = 2000;
	vp_stats_reset();
	uint64_t t0 = vp__now_ns();
	for (int i = 0; i < n; i++) {
		pstart();
		r[0]++;
		pend();
	}
	const double total = (double)(vp__now_ns() - t0);
	printf("same_page_fas_us %.2f\n", total / n / 1000.0);
	printf("same_page_bytes_per_fas %.0f\n", bytes_per_fas(n));
	double m[4]; /* means per FAS: the loop is timed as a whole */
	step_ns(m);
	for (int j = 0; j < 4; j++)
		m[j] /= n;
	steps("same_page", m, total / n);
	printf("same_page_drains_per_fas %.2f\n", drains_per_fas(n));
	close_pool();
}

#ifdef VP_BENCH_PMDK
/* pmdk_tx8 -- TX_BEGIN; TX_ADD 8 B; store; TX_END. Its own function so
 * that TX_BEGIN's setjmp clobbers no loop variable; 0 if it committed. */
static int pmdk_tx8(PMEMobjpool *pop, uint64_t *v)
{
	volatile int bad = 0;
	TX_BEGIN(pop) {
		TX_ADD_DIRECT(v);
		*v += 1;
	} TX_ONABORT {
		bad = 1;
	} TX_END
	return bad;
}

/* pmdk_done -- close and remove PMDK pool pp; exit if a transaction of
 * the timed loop aborted (its figure would be meaningless). */
static void pmdk_done(PMEMobjpool *pop, const char *pp, int bad)
{
	pmemobj_close(pop);
	unlink(pp);
	if (bad) {
		fprintf(stderr, "bench: a PMDK transaction aborted\n");
		exit(1);
	}
}

/* bench_pmdk_fresh -- the same transaction on a different page each time,
 * in the pattern and with the timing of bench_fas_pages' one-page FASes
 * (4096 resident pages, 2000 transactions, the median of their times):
 * the peer of the fresh-page FAS, paying the same cold line and TLB miss
 * of a page not touched for 4095 operations. */
static void bench_pmdk_fresh(const char *pp)
{
	const int region = 4096, iters = 2000;
	unlink(pp);
	PMEMobjpool *pop = pmemobj_create(pp, "bench_core", 64 * MiB, 0600);
	PMEMoid oid;
	if (!pop || pmemobj_zalloc(pop, &oid, (size_t)region * PG, 0) != 0) {
		fprintf(stderr, "bench: PMDK pool for the fresh-page transactions %s: %s\n", pp, pmemobj_errormsg());
		exit(1);
	}
	uint8_t *r = pmemobj_direct(oid);
	double *v = malloc(sizeof(double) * (size_t)iters);
	int bad = 0, off = 0;
	for (int i = 0; i < iters; i++) {
		uint64_t t0 = vp__now_ns();
		bad |= pmdk_tx8(pop, (uint64_t *)(r + (size_t)(off % region) * PG + (size_t)(i % 64) * 8));
		v[i] = (double)(vp__now_ns() - t0);
		off = (off + 8) % region; /* bench_fas_pages' step at one page per FAS */
	}
	pmdk_done(pop, pp, bad);
	printf("pmdk_tx8_fresh_ns %.0f\n", median(v, iters));
	free(v);
}
#endif

/* bench_pmdk -- the peer of the 8-byte FAS: one libpmemobj transaction
 * that undo-logs 8 bytes of the root object and stores them, timed like
 * bench_same_page. Prints nothing when built without libpmemobj. */
static void bench_pmdk(void)
{
#ifdef VP_BENCH_PMDK
	char pp[300];
	snprintf(pp, sizeof pp, "%s.pmdk", path);
	unlink(pp);
	PMEMobjpool *pop = pmemobj_create(pp, "bench_core", PMEMOBJ_MIN_POOL, 0600);
	if (!pop) {
		fprintf(stderr, "bench: pmemobj_create %s: %s\n", pp, pmemobj_errormsg());
		exit(1);
	}
	uint64_t *v = pmemobj_direct(pmemobj_root(pop, PG));
	int n = 20000, bad = 0;
	for (int i = 0; i < 2000; i++)
		bad |= pmdk_tx8(pop, v);
	uint64_t t0 = vp__now_ns();
	for (int i = 0; i < n; i++)
		bad |= pmdk_tx8(pop, v);
	uint64_t t1 = vp__now_ns();
	pmdk_done(pop, pp, bad);
	printf("pmdk_tx8_ns %.0f\n", (double)(t1 - t0) / n);
	bench_pmdk_fresh(pp);
#endif
}

static void bench_first_write(void)
{
	open_pool(256 * MiB);
	const size_t n = 16384;
	uint8_t *r = pmalloc(n * PG);
	memset(r, 1, n * PG);
	pcommit();
	pstart();
	uint64_t t0 = vp__now_ns();
	for (size_t i = 0; i < n; i++)
		r[i * PG] = 2;
	uint64_t t1 = vp__now_ns();
	pend();
	printf("first_write_ns %.0f\n", (double)(t1 - t0) / (double)n);
	close_pool();
}

struct ceil_half { struct vp_persist *ps; uint8_t *m; const uint8_t *r; size_t from, to, n; };

/* ceiling_half -- copy pages [from, to) heap -> log area -> home area, each
 * pass drained; with a private vp_persist (per-thread drain). */
static void *ceiling_half(void *arg)
{
	struct ceil_half *h = arg;
	struct vp_persist ps = *h->ps;
	size_t n = h->n;
	for (size_t i = h->from; i < h->to; i++)
		vp__pcopy(&ps, h->m + i * PG, h->r + i * PG, PG);
	vp__pdrain(&ps, "ceiling2:log");
	for (size_t i = h->from; i < h->to; i++)
		vp__pcopy(&ps, h->m + (n + i) * PG, h->m + i * PG, PG);
	vp__pdrain(&ps, "ceiling2:home");
	return NULL;
}

/* bench_large -- one big FAS; and the copy ceiling measured right after on
 * a scratch file of the same medium with the same store method. */
static void bench_large(void)
{
	const size_t n = 32768;
	open_pool(512 * MiB);
	uint8_t *r = pmalloc(n * PG);
	memset(r, 1, n * PG);
	pcommit();
	vp_stats_reset();
	pstart();
	for (size_t i = 0; i < n; i++)
		r[i * PG + 8] = 3;
	uint64_t t0 = vp__now_ns();
	pend();
	uint64_t t1 = vp__now_ns();
	struct vp_stats st;
	vp_stats(&st);
	printf("commit_pages_per_s %.0f\n", (double)st.pages_logged / ((double)(t1 - t0) / 1e9));
	printf("stall_ns %llu\n", (unsigned long long)st.ns_stall);
	printf("commit_ns %llu\n", (unsigned long long)(st.ns_collect + st.ns_prepare + st.ns_log + st.ns_update));
	/* Where the commit's time goes, step by step. */
	printf("commit_collect_ns %llu\n", (unsigned long long)st.ns_collect);
	printf("commit_prepare_ns %llu\n", (unsigned long long)st.ns_prepare);
	printf("commit_log_ns %llu\n", (unsigned long long)st.ns_log);
	printf("commit_update_ns %llu\n", (unsigned long long)st.ns_update);

	/* Ceiling: heap pages -> log area -> home area of a scratch file. */
	char sp[300];
	snprintf(sp, sizeof sp, "%s.scratch", path);
	int fd = open(sp, O_RDWR | O_CREAT | O_TRUNC, 0600);
	if (fd < 0 || ftruncate(fd, (off_t)(2 * n * PG)) != 0)
		exit(1);
	uint8_t *m = mmap(NULL, 2 * n * PG, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	memset(m, 0, 2 * n * PG); /* allocate the file pages, as the pool's are */
	struct vp_persist ps;
	vp__persist_open(&ps, m, 2 * n * PG, false, strcmp(st.medium, "file") != 0);
	uint64_t c0 = vp__now_ns();
	for (size_t i = 0; i < n; i++)
		vp__pcopy(&ps, m + i * PG, r + i * PG, PG);
	vp__pdrain(&ps, "ceiling:log");
	for (size_t i = 0; i < n; i++)
		vp__pcopy(&ps, m + (n + i) * PG, m + i * PG, PG);
	vp__pdrain(&ps, "ceiling:home");
	uint64_t c1 = vp__now_ns();
	printf("ceiling_pages_per_s %.0f\n", (double)n / ((double)(c1 - c0) / 1e9));
	/* The same with two threads, each copying half (the commit splits
	 * large sets the same way; VOLIPMEM_COPY_THREADS). */
	struct ceil_half h = {&ps, m, r, n / 2, n, n};
	pthread_t th;
	c0 = vp__now_ns();
	if (pthread_create(&th, NULL, ceiling_half, &h) != 0)
		exit(1);
	struct ceil_half mine = {&ps, m, r, 0, n / 2, n};
	ceiling_half(&mine);
	pthread_join(th, NULL);
	c1 = vp__now_ns();
	printf("ceiling2_pages_per_s %.0f\n", (double)n / ((double)(c1 - c0) / 1e9));
	munmap(m, 2 * n * PG);
	close(fd);
	unlink(sp);
	close_pool();
}

static void bench_collect(void)
{
	static const uint64_t sizes[] = {64 * MiB, GiB, 4 * GiB};
	static const char *names[] = {"64m", "1g", "4g"};
	static const int dirty[] = {1, 100, 10000};
	for (int s = 0; s < 3; s++) {
		open_pool(sizes[s]);
		size_t np = (size_t)(sizes[s] / 2 / PG);
		if (np > 20000)
			np = 20000;
		uint8_t *r = pmalloc(np * PG);
		memset(r, 1, np * PG);
		pcommit();
		for (int d = 0; d < 3; d++) {
			double v[5];
			for (int rep = 0; rep < 5; rep++) {
				vp_stats_reset();
				pstart();
				for (int i = 0; i < dirty[d]; i++)
					r[((size_t)i * 2 % np) * PG] = (uint8_t)rep;
				pend();
				struct vp_stats st;
				vp_stats(&st);
				v[rep] = (double)st.ns_collect / 1000.0;
			}
			printf("collect_%s_%d_us %.1f\n", names[s], dirty[d], median(v, 5));
		}
		close_pool();
	}
}

static void bench_pmap(void)
{
	static const uint64_t sizes[] = {64 * MiB, GiB, 8 * GiB};
	static const char *names[] = {"64m", "1g", "8g"};
	for (int s = 0; s < 3; s++) {
		open_pool(sizes[s]);
		uint8_t *r = pmalloc(4 * MiB);
		memset(r, 1, 4 * MiB);
		punmap();
		uint64_t t0 = vp__now_ns();
		if (pmap(path, sizes[s], 0))
			exit(1);
		uint64_t t1 = vp__now_ns();
		printf("pmap_%s_ms %.2f\n", names[s], (double)(t1 - t0) / 1e6);
		close_pool();
	}
}

/* bench_env_uffd -- the raw kernel cost of the uffd tracker's two page-table
 * operations, with no runtime code in the loop. Prints nothing if the
 * kernel lacks async write-protect or PAGEMAP_SCAN. */
static void bench_env_uffd(size_t n)
{
	int uffd = (int)syscall(SYS_userfaultfd, O_CLOEXEC | O_NONBLOCK | UFFD_USER_MODE_ONLY);
	int pm = open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC);
	struct uffdio_api api = {.api = UFFD_API, .features = UFFD_FEATURE_WP_ASYNC};
	uint8_t *p = mmap(NULL, n * PG, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (uffd < 0 || pm < 0 || p == MAP_FAILED || ioctl(uffd, UFFDIO_API, &api) != 0)
		goto out;
	memset(p, 1, n * PG); /* populated: measure the write-protect fault only */
	struct uffdio_register reg = {.range = {(uintptr_t)p, n * PG}, .mode = UFFDIO_REGISTER_MODE_WP};
	struct uffdio_writeprotect wp = {.range = {(uintptr_t)p, n * PG}, .mode = UFFDIO_WRITEPROTECT_MODE_WP};
	if (ioctl(uffd, UFFDIO_REGISTER, &reg) != 0 || ioctl(uffd, UFFDIO_WRITEPROTECT, &wp) != 0)
		goto out;
	uint64_t t0 = vp__now_ns();
	for (size_t i = 0; i < n; i++)
		p[i * PG] = 2;
	uint64_t t1 = vp__now_ns();
	printf("env_uffd_first_write_ns %.0f\n", (double)(t1 - t0) / (double)n);
	static struct page_region vec[64];
	struct pm_scan_arg a = {
		.size = sizeof a, .flags = PM_SCAN_WP_MATCHING | PM_SCAN_CHECK_WPASYNC,
		.start = (uintptr_t)p, .end = (uintptr_t)p + n * PG, .vec = (uintptr_t)vec, .vec_len = 64,
		.category_mask = PAGE_IS_WRITTEN, .return_mask = PAGE_IS_WRITTEN,
	};
	t0 = vp__now_ns();
	while (a.start < a.end) {
		if (ioctl(pm, PAGEMAP_SCAN, &a) < 0 || a.walk_end <= a.start)
			goto out;
		a.start = a.walk_end;
	}
	t1 = vp__now_ns();
	printf("env_uffd_rearm_ns %.0f\n", (double)(t1 - t0) / (double)n);
out:
	if (p != MAP_FAILED)
		munmap(p, n * PG);
	if (pm >= 0)
		close(pm);
	if (uffd >= 0)
		close(uffd);
}

static void bench_env(void)
{
	const size_t n = 8192;
	uint8_t *p = mmap(NULL, n * PG, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED)
		exit(1);
	uint64_t t0 = vp__now_ns();
	for (size_t i = 0; i < n; i++)
		p[i * PG] = 1;
	uint64_t t1 = vp__now_ns();
	printf("env_first_touch_ns %.0f\n", (double)(t1 - t0) / (double)n);
	t0 = vp__now_ns();
	for (size_t i = 0; i < 1000; i++) {
		mprotect(p + 2 * i * PG, PG, PROT_READ);
		mprotect(p + 2 * i * PG, PG, PROT_READ | PROT_WRITE);
	}
	t1 = vp__now_ns();
	printf("env_mprotect_pair_ns %.0f\n", (double)(t1 - t0) / 1000.0);
	munmap(p, n * PG);
	bench_env_uffd(n);
}

static uint8_t *pause_pages;
static size_t pause_n;
static volatile int pause_stop;

static void *pause_writer(void *arg)
{
	unsigned seed = 17;
	(void)arg;
	while (!pause_stop) {
		pstart();
		pause_pages[(rand_r(&seed) % pause_n) * PG + 64 + rand_r(&seed) % 64] ^= 1;
		pend();
	}
	return NULL;
}

/* bench_pause -- the pause per commit and the commit time for write sets of
 * 16, 256 and 4096 pages with a writer thread running. */
static void bench_pause(void)
{
	static const size_t ks[] = {16, 256, 4096};
	for (size_t ki = 0; ki < sizeof ks / sizeof ks[0]; ki++) {
		size_t k = ks[ki], rounds = k >= 4096 ? 50 : 400;
		open_pool(256 * MiB);
		pause_pages = pmalloc(k * PG);
		pause_n = k;
		memset(pause_pages, 1, k * PG);
		pcommit();
		/* Relaxed with a long interval: the writer's FASes join the
		 * groups the main thread commits with pcommit(). */
		vp_set_durability(VP_RELAXED, 10000);
		pause_stop = 0;
		pthread_t th;
		pthread_create(&th, NULL, pause_writer, NULL);
		vp_stats_reset();
		for (size_t r = 0; r < rounds; r++) {
			pstart();
			for (size_t i = 0; i < k; i++)
				pause_pages[i * PG + 8 * (r % 8)] = (uint8_t)r;
			pend();
			pcommit();
		}
		pause_stop = 1;
		pthread_join(th, NULL);
		vp_set_durability(VP_SYNC, 0);
		struct vp_stats st;
		vp_stats(&st);
		uint64_t nc = st.commits + st.empty_commits + st.failed_commits;
		printf("pause_%zup_ns %llu\n", k, (unsigned long long)(st.ns_pause / (nc ? nc : 1)));
		printf("commit_%zup_ns %llu\n", k,
		       (unsigned long long)((st.ns_collect + st.ns_prepare + st.ns_log + st.ns_update) / (nc ? nc : 1)));
		printf("cow_commits_%zup %llu of %llu, cow_faults %llu\n", k, (unsigned long long)st.cow_commits,
		       (unsigned long long)nc, (unsigned long long)st.cow_faults);
		close_pool();
	}
}

int main(int argc, char **argv)
{
	const char *dir = getenv("VP_BENCH_DIR") ? getenv("VP_BENCH_DIR") : "/dev/shm";
	snprintf(path, sizeof path, "%s/vp-bench-%d.pool", dir, (int)getpid());
	const char *only = argc > 1 ? argv[1] : "all";
	if (!strcmp(only, "all") || !strcmp(only, "env"))
		bench_env();
	if (!strcmp(only, "all") || !strcmp(only, "empty"))
		bench_empty();
	if (!strcmp(only, "all") || !strcmp(only, "fas"))
		bench_fas_pages();
	if (!strcmp(only, "all") || !strcmp(only, "same"))
		bench_same_page();
	if (!strcmp(only, "all") || !strcmp(only, "pmdk"))
		bench_pmdk();
	if (!strcmp(only, "all") || !strcmp(only, "first"))
		bench_first_write();
	if (!strcmp(only, "all") || !strcmp(only, "large"))
		bench_large();
	if (!strcmp(only, "all") || !strcmp(only, "pause"))
		bench_pause();
	if (!strcmp(only, "all") || !strcmp(only, "collect"))
		bench_collect();
	if (!strcmp(only, "all") || !strcmp(only, "pmap"))
		bench_pmap();
	return 0;
}
