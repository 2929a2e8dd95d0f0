/* SPDX-License-Identifier: MIT */
/*
 * uffd.c -- the "uffd" tracker: userfaultfd write-protect in asynchronous
 * mode. The kernel clears a page's write-protect bit itself on the first
 * write (no fault delivered, ~0.5-0.7 us here), and one PAGEMAP_SCAN ioctl
 * with PM_SCAN_WP_MATCHING returns the written pages and protects them
 * again, atomically per page. Kernel writes into the heap (read() into a
 * heap buffer) are caught the same way, so no interposition is needed.
 * Needs Linux 6.7+ (UFFD_FEATURE_WP_ASYNC + PAGEMAP_SCAN).
 */
#include <errno.h>
#include <signal.h>
#include <stdatomic.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "track/track.h"
#include "track/uffd_abi.h"
#include "track/uffd_model.h"
#include "util/options.h"
#include "util/util.h"

/*
 * Collection that does not grow with the heap. PAGEMAP_SCAN walks page
 * tables, ~0.5 ms per GiB even when nothing was written, so the heap is cut
 * into 2 MiB regions that are COLD (PROT_READ) or HOT (writable, tracked
 * per page by uffd-wp). The first write to a cold region raises SIGSEGV; the
 * handler arms the region for uffd-wp and makes it writable (a few us, once
 * per region per heat period). A commit scans only hot regions; a region
 * that stays clean for cool_after commits goes cold again. So a FAS that
 * dirtied one page on a 4 GiB heap scans 2 MiB, and pmap arms nothing up
 * front (one mprotect of a heap that has no page tables yet).
 *
 *   COLD --fault--> HEATING --armed, mprotect RW--> HOT --idle--> COLD
 *
 * Re-heating scans the region first (PM_SCAN_WP_MATCHING), recording pages
 * written since it was last scanned: a write outside any FAS that raced the
 * cooling is kept for the next commit, never lost. Kernel writes into a
 * cold region would fail with EFAULT, so read/recv/... interposition heats
 * the destination first (before_kernel_write); in hot regions the kernel's
 * writes are caught by uffd-wp itself. If mprotect runs out of VMAs
 * (vm.max_map_count), the whole heap goes hot and is scanned whole.
 *
 * Sticky pages. Re-arming a page and the fault of its next write each
 * change a page-table entry, which costs far more than comparing the page
 * with its home image. A page found written in STICKY_STREAK consecutive
 * commits therefore becomes sticky: it is left out of the scans (never
 * re-armed, no fault) and logged at every commit whether written or not
 * (the line diff drops it when nothing changed), which is always correct.
 * A region whose only written pages are sticky cools like an idle one, with
 * its sticky pages left writable (holes in the PROT_READ range), so a FAS
 * that keeps writing the same few pages makes no system call at all at
 * commit. A sticky page that has not changed for sticky_age commits (the
 * commit tells the tracker, uf_settled) is scanned again (re-armed, or, in
 * a cold region, protected and armed and logged once more) and re-earns its
 * place if it is written again. At most VOLIPMEM_STICKY_PAGES (64) pages
 * are sticky.
 *
 * The constants are not guessed: uf_probe measures the machine (a scan's
 * fixed cost and its cost per page, the first write and re-arm of a page,
 * an mprotect pair, a page compare) and uffd_model.h turns them into
 * cool_after and sticky_age (VOLIPMEM_VERBOSE=1 prints both).
 */
/* VEC_LEN: the kernel copies PAGEMAP_SCAN's results through a buffer of
 * vec_len entries (24 bytes each, at most 512); above 8 KiB that buffer
 * comes from the page allocator instead of a slab, which measured here
 * adds ~0.45 us to every scan (341 entries: 0.59 us, 342: 1.04 us for one
 * page). 256 entries keep it in the slab. */
#define VEC_LEN 256
#define REGION_SHIFT 21                 /* 2 MiB */
#define REGION_PAGES (1u << (REGION_SHIFT - 12))
#define STICKY_STREAK 3
/* A scan is split around a sticky page (one more ioctl, ~0.6-1.2 us) only
 * when that page changed in each of the last SKIP_RUN commits: that is
 * what a split saves (its fault and re-arm, ~1.8 us), when it is written
 * again. At most MAX_SKIPS splits per commit. */
#define SKIP_RUN 2
#define MAX_SKIPS 16

enum { COLD = 0, HEATING = 1, HOT = 2 };

struct uf {
	int uffd;
	int pagemap;
	uint64_t features;
	size_t nregions;
	_Atomic uint8_t *state;      /* per region                               */
	uint8_t *armed;              /* per region: uffd-wp armed once already    */
	uint8_t *idle;               /* per region: clean collections (collector) */
	uint8_t *wrote;              /* per region: a scanned page was written    */
	_Atomic uint64_t *pre;       /* per region: pages seen written at re-heat */
	_Atomic uint64_t *pre_any;   /* bit per region: pre has bits             */
	_Atomic uint64_t *hotmap;    /* bit per region: state is HOT, so that a
	                                commit's bookkeeping is per hot region   */
	atomic_bool all_hot;
	atomic_ullong heats;
	/* sticky pages (collector only) */
	uint32_t *last_seen;         /* per page: collection it was last written  */
	uint8_t *streak;             /* per page: consecutive collections written */
	uint32_t ncollect;
	unsigned sticky_max, nsticky;
	uint64_t *sticky;            /* sorted page numbers                       */
	uint8_t *sticky_age;
	uint8_t *sticky_run;         /* consecutive commits it changed in        */
	uint64_t *unstuck;           /* sticky pages of cold regions just expired */
	unsigned nunstuck;
	struct uffd_policy pol;
	struct page_region vec[VEC_LEN];
};

static struct vp_tracker *_Atomic uf_active;

static int uffd_open(uint64_t want, uint64_t *got)
{
	int fd = (int)syscall(SYS_userfaultfd, O_CLOEXEC | O_NONBLOCK | UFFD_USER_MODE_ONLY);
	if (fd < 0)
		fd = (int)syscall(SYS_userfaultfd, O_CLOEXEC | O_NONBLOCK);
	if (fd < 0)
		return vp__err(-errno, "userfaultfd() failed: %s", strerror(errno));
	struct uffdio_api api = {.api = UFFD_API, .features = want};
	if (ioctl(fd, UFFDIO_API, &api) != 0) {
		int e = errno;
		close(fd);
		return vp__err(-e, "UFFDIO_API with features %#llx refused: %s (kernel lacks %s)",
			       (unsigned long long)want, strerror(e),
			       (want & UFFD_FEATURE_WP_UNPOPULATED) ? "WP_ASYNC or WP_UNPOPULATED" : "WP_ASYNC");
	}
	*got = api.features;
	return fd;
}

/* scan -- PAGEMAP_SCAN over [start, end) into vec; with wp, re-protect what
 * it reports. Calls fn(arg, first_page, npages) per written range. Safe in
 * a signal handler (vec on the caller's stack). */
static int scan(int pagemap, struct page_region *vec, size_t veclen, uint8_t *base, uint64_t start, uint64_t end,
		bool wp, int (*fn)(void *, uint64_t, uint64_t), void *arg)
{
	while (start < end) {
		struct pm_scan_arg a = {
			.size = sizeof a,
			.flags = wp ? PM_SCAN_WP_MATCHING | PM_SCAN_CHECK_WPASYNC : 0,
			.start = start,
			.end = end,
			.vec = (uintptr_t)vec,
			.vec_len = veclen,
			.category_mask = PAGE_IS_WRITTEN,
			.return_mask = PAGE_IS_WRITTEN,
		};
		long n = ioctl(pagemap, PAGEMAP_SCAN, &a);
		if (n < 0)
			return -errno;
		for (long i = 0; i < n; i++) {
			int rc = fn(arg, (vec[i].start - (uintptr_t)base) / VP_PAGE, (vec[i].end - vec[i].start) / VP_PAGE);
			if (rc)
				return rc;
		}
		if (a.walk_end <= start)
			return -EIO;
		start = a.walk_end;
	}
	return 0;
}

static int push_range(void *arg, uint64_t pg, uint64_t n)
{
	struct vp_pageset *out = arg;
	if (vp__pageset_reserve(out, out->n + n))
		return -ENOMEM;
	for (uint64_t i = 0; i < n; i++)
		out->pg[out->n++] = pg + i;
	return 0;
}

static int wp_range(struct uf *u, uint8_t *a, size_t len)
{
	struct uffdio_writeprotect wp = {
		.range = {.start = (uintptr_t)a, .len = len},
		.mode = UFFDIO_WRITEPROTECT_MODE_WP,
	};
	return ioctl(u->uffd, UFFDIO_WRITEPROTECT, &wp) == 0 ? 0 : -errno;
}

static int uf_register(struct uf *u, uint8_t *base, size_t len)
{
	struct uffdio_register reg = {
		.range = {.start = (uintptr_t)base, .len = len},
		.mode = UFFDIO_REGISTER_MODE_WP,
	};
	if (ioctl(u->uffd, UFFDIO_REGISTER, &reg) != 0)
		return vp__err(-errno, "UFFDIO_REGISTER (write-protect) of %zu bytes at %p failed: %s", len,
			       (void *)base, strerror(errno));
	return 0;
}

static int uf_init(struct uf *u)
{
	u->uffd = uffd_open(UFFD_FEATURE_WP_ASYNC | UFFD_FEATURE_WP_UNPOPULATED, &u->features);
	if (u->uffd < 0)
		u->uffd = uffd_open(UFFD_FEATURE_WP_ASYNC, &u->features);
	if (u->uffd < 0)
		return u->uffd;
	u->pagemap = open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC);
	if (u->pagemap < 0) {
		int e = errno;
		close(u->uffd);
		return vp__err(-e, "cannot open /proc/self/pagemap: %s", strerror(e));
	}
	return 0;
}

static void uf_fini(struct uf *u)
{
	close(u->uffd);
	close(u->pagemap);
	free((void *)u->state);
	free(u->armed);
	free(u->idle);
	free(u->wrote);
	free((void *)u->pre);
	free((void *)u->pre_any);
	free((void *)u->hotmap);
	free(u->last_seen);
	free(u->streak);
	free(u->sticky);
	free(u->sticky_age);
	free(u->sticky_run);
	free(u->unstuck);
	free(u);
}

static int count_range(void *arg, uint64_t pg, uint64_t n)
{
	(void)pg;
	*(uint64_t *)arg += n;
	return 0;
}

#define PROBE_PAGES 512

/* probe_cost -- what the operations the tracker chooses between cost here,
 * on the probe's scratch pages p[0..PROBE_PAGES) (registered, populated,
 * armed), the fastest of a few tries each. */
static void probe_cost(struct uf *u, uint8_t *p, struct uffd_cost *c)
{
	uint64_t best[6];
	for (int k = 0; k < 6; k++)
		best[k] = UINT64_MAX;
	/* The scans of clean pages first, in a loop of their own: timed right
	 * after the mprotect pair below, the first scan of an iteration paid
	 * for that change too (a one-page scan measured as slow as a 512-page
	 * one here, so the per-page cost came out 0 most times, against 0.8-1.2
	 * ns measured on a 4096-page heap). */
	for (int i = 0; i < 8; i++) {
		uint64_t n = 0, t[3];
		t[0] = vp__now_ns();
		scan(u->pagemap, u->vec, VEC_LEN, p, (uintptr_t)p, (uintptr_t)p + VP_PAGE, true, count_range, &n);
		t[1] = vp__now_ns();
		scan(u->pagemap, u->vec, VEC_LEN, p, (uintptr_t)p, (uintptr_t)p + PROBE_PAGES * VP_PAGE, true,
		     count_range, &n);
		t[2] = vp__now_ns();
		for (int k = 0; k < 2; k++)
			if (t[k + 1] - t[k] < best[k])
				best[k] = t[k + 1] - t[k];
	}
	for (int i = 0; i < 5; i++) {
		uint64_t n = 0, t[5];
		uint8_t *pg = p + (size_t)(8 + i) * VP_PAGE;
		t[0] = vp__now_ns();
		*(volatile uint8_t *)pg += 1;
		t[1] = vp__now_ns();
		scan(u->pagemap, u->vec, VEC_LEN, p, (uintptr_t)pg, (uintptr_t)pg + VP_PAGE, true, count_range, &n);
		t[2] = vp__now_ns();
		mprotect(pg, VP_PAGE, PROT_READ);
		mprotect(pg, VP_PAGE, PROT_READ | PROT_WRITE);
		t[3] = vp__now_ns();
		/* warm, like a hot page and its home at commit */
		volatile int d = memcmp(p + 20 * VP_PAGE, p + 40 * VP_PAGE, VP_PAGE);
		(void)d;
		t[4] = vp__now_ns();
		for (int k = 0; k < 4; k++)
			if (t[k + 1] - t[k] < best[k + 2])
				best[k + 2] = t[k + 1] - t[k];
	}
	c->scan_fixed = best[0];
	c->scan_page_x16 = best[1] > best[0] ? (best[1] - best[0]) * 16 / (PROBE_PAGES - 1) : 0;
	c->fault = best[2];
	c->rearm = best[3] > best[0] ? best[3] - best[0] : 0;
	c->mprotect_pair = best[4];
	c->compare = best[5];
}

/* uf_probe -- a real round trip on scratch pages: register, protect, write,
 * scan must report exactly that page, rescan nothing. Then measures the
 * machine for the cost model (probe_cost). Cached for the process. */
static struct uffd_cost probed;

static int uf_probe(void)
{
	static int cached = 1;
	if (cached != 1)
		return cached;
	struct uf *u = calloc(1, sizeof *u);
	if (!u)
		return -ENOMEM;
	int rc = uf_init(u);
	if (rc) {
		free(u);
		return cached = rc;
	}
	size_t len = PROBE_PAGES * VP_PAGE;
	/* Populated up front: the cost model needs a region's worth of real
	 * page-table entries to walk. */
	uint8_t *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
	struct vp_pageset s = {0};
	if (p == MAP_FAILED) {
		rc = vp__err(-errno, "uffd probe: mmap failed");
	} else if (!(rc = uf_register(u, p, len)) && !(rc = wp_range(u, p, len))) {
		p[VP_PAGE + 5] = 1;
		rc = scan(u->pagemap, u->vec, VEC_LEN, p, (uintptr_t)p, (uintptr_t)p + len, true, push_range, &s);
		if (!rc && (s.n != 1 || s.pg[0] != 1))
			rc = vp__err(VP_E_TRACKER, "uffd probe: PAGEMAP_SCAN reported %zu pages for 1 written", s.n);
		s.n = 0;
		if (!rc)
			rc = scan(u->pagemap, u->vec, VEC_LEN, p, (uintptr_t)p, (uintptr_t)p + len, true, push_range,
				  &s);
		if (!rc && s.n != 0)
			rc = vp__err(VP_E_TRACKER, "uffd probe: re-protect did not take (PAGEMAP_SCAN unsupported?)");
		if (!rc) /* populated (MAP_POPULATE) and, after the scans, all armed */
			probe_cost(u, p, &probed);
	}
	if (rc == -EINVAL || rc == -ENOTTY)
		rc = vp__err(VP_E_TRACKER, "the kernel lacks PAGEMAP_SCAN or async write-protect (Linux 6.7+ needed)");
	else if (rc < 0 && rc > -4096)
		rc = vp__err(VP_E_TRACKER, "uffd probe failed: %s", strerror(-rc));
	vp__pageset_free(&s);
	if (p != MAP_FAILED)
		munmap(p, len);
	uf_fini(u);
	return cached = rc;
}

struct pre_arg { struct uf *u; size_t r; uint64_t first; };

static int record_pre(void *arg, uint64_t pg, uint64_t n)
{
	struct pre_arg *a = arg;
	for (uint64_t i = 0; i < n; i++) {
		uint64_t k = pg + i - a->first;
		if (k < REGION_PAGES)
			atomic_fetch_or(&a->u->pre[a->r * (REGION_PAGES / 64) + k / 64], 1ull << (k % 64));
	}
	atomic_fetch_or(&a->u->pre_any[a->r / 64], 1ull << (a->r % 64));
	return 0;
}

static size_t region_len(struct vp_tracker *t, size_t r)
{
	size_t off = r << REGION_SHIFT;
	return t->len - off < (1u << REGION_SHIFT) ? t->len - off : (1u << REGION_SHIFT);
}

/* heat -- make region r writable and tracked. Async-signal-safe. Returns 0
 * when the access may be retried. */
static int heat(struct vp_tracker *t, struct uf *u, size_t r)
{
	uint8_t *a = t->base + (r << REGION_SHIFT);
	size_t len = region_len(t, r);
	uint8_t s = COLD;
	if (!atomic_compare_exchange_strong(&u->state[r], &s, HEATING)) {
		if (s == HOT) /* protection left behind by a wholesale fallback */
			mprotect(a, len, PROT_READ | PROT_WRITE);
		return 0;
	}
	atomic_fetch_add_explicit(&u->heats, 1, memory_order_relaxed);
	if (!u->armed[r]) {
		/* Never tracked: nothing can have been written while read-only.
		 * Arm every page, unpopulated ones too. */
		if (wp_range(u, a, len) != 0)
			goto fail;
		u->armed[r] = 1;
	} else {
		struct page_region vec[16];
		struct pre_arg pa = {u, r, (uint64_t)(r << REGION_SHIFT) / VP_PAGE};
		if (scan(u->pagemap, vec, 16, t->base, (uintptr_t)a, (uintptr_t)a + len, true, record_pre, &pa))
			goto fail;
	}
	if (mprotect(a, len, PROT_READ | PROT_WRITE) != 0) {
		if (errno != ENOMEM)
			goto fail;
		/* Out of VMAs: everything hot from now on. Arm the regions never
		 * armed while they are still read-only, and only those: re-arming
		 * an armed region would drop the marks of pages written since the
		 * last collection. Then open the whole heap. */
		for (size_t i = 0; i < u->nregions; i++) {
			if (!u->armed[i] && wp_range(u, t->base + (i << REGION_SHIFT), region_len(t, i)) != 0)
				goto fail;
			u->armed[i] = 1;
		}
		if (mprotect(t->base, t->len, PROT_READ | PROT_WRITE) != 0)
			goto fail;
		for (size_t i = 0; i < u->nregions; i++)
			atomic_store(&u->state[i], HOT);
		for (size_t w = 0; w < (u->nregions + 63) / 64; w++)
			atomic_store(&u->hotmap[w], ~0ull);
		atomic_store(&u->all_hot, true);
		return 0;
	}
	atomic_store(&u->state[r], HOT);
	atomic_fetch_or(&u->hotmap[r / 64], 1ull << (r % 64));
	return 0;
fail:
	atomic_store(&u->state[r], COLD);
	return -1;
}

static bool uf_fault(siginfo_t *si)
{
	struct vp_tracker *t = atomic_load(&uf_active);
	uint8_t *a = si->si_addr;
	if (!t || si->si_code != SEGV_ACCERR || a < t->base || a >= t->base + t->len)
		return false;
	size_t r = (size_t)(a - t->base) >> REGION_SHIFT;
	struct uf *u = t->priv;
	int saved = errno, rc;
	if (!u) /* forked child: no tracking, just let it write */
		rc = mprotect(t->base + (r << REGION_SHIFT), region_len(t, r), PROT_READ | PROT_WRITE);
	else
		rc = heat(t, u, r);
	errno = saved;
	return rc == 0;
}

static int uf_attach(struct vp_tracker *t)
{
	int rc = uf_probe(); /* cached; measures the machine once */
	if (rc)
		return rc;
	struct uf *u = calloc(1, sizeof *u);
	if (!u)
		return vp__err(-ENOMEM, "uffd tracker: out of memory");
	rc = uf_init(u);
	if (rc) {
		free(u);
		return rc;
	}
	u->nregions = (t->len + (1u << REGION_SHIFT) - 1) >> REGION_SHIFT;
	u->state = calloc(u->nregions, 1);
	u->armed = calloc(u->nregions, 1);
	u->idle = calloc(u->nregions, 1);
	u->wrote = calloc(u->nregions, 1);
	u->pre = calloc(u->nregions * (REGION_PAGES / 64), sizeof(uint64_t));
	u->pre_any = calloc((u->nregions + 63) / 64, sizeof(uint64_t));
	u->hotmap = calloc((u->nregions + 63) / 64, sizeof(uint64_t));
	u->sticky_max = vp__opt.sticky;
	u->pol = uffd_policy_from(&probed, REGION_PAGES);
	vp__diag(1, "uffd tracker: scan %llu ns + %llu.%02llu ns/page, first write %llu ns, re-arm %llu ns, "
		    "mprotect pair %llu ns, page compare %llu ns -> regions cool after %u clean commits, "
		    "sticky pages rescanned after %u, one scan across gaps of up to %u cold regions",
		 (unsigned long long)probed.scan_fixed, (unsigned long long)probed.scan_page_x16 / 16,
		 (unsigned long long)probed.scan_page_x16 % 16 * 100 / 16, (unsigned long long)probed.fault,
		 (unsigned long long)probed.rearm, (unsigned long long)probed.mprotect_pair,
		 (unsigned long long)probed.compare, u->pol.cool_after, u->pol.sticky_age, u->pol.merge_gap);
	u->last_seen = calloc(t->npages, sizeof *u->last_seen);
	u->streak = calloc(t->npages, 1);
	u->sticky = calloc(u->sticky_max + 1, sizeof *u->sticky);
	u->sticky_age = calloc(u->sticky_max + 1, 1);
	u->sticky_run = calloc(u->sticky_max + 1, 1);
	u->unstuck = calloc(u->sticky_max + 1, sizeof *u->unstuck);
	if (!u->state || !u->armed || !u->idle || !u->wrote || !u->pre || !u->pre_any || !u->hotmap || !u->last_seen || !u->streak ||
	    !u->sticky || !u->sticky_age || !u->sticky_run || !u->unstuck) {
		size_t nregions = u->nregions; /* uf_fini frees u */
		uf_fini(u);
		return vp__err(-ENOMEM, "uffd tracker: out of memory for %zu regions", nregions);
	}
	if ((rc = uf_register(u, t->base, t->len)))
		goto fail;
	t->priv = u;
	atomic_store(&uf_active, t);
	if ((rc = vp__segv_install(uf_fault)))
		goto fail_active;
	/* Every region starts cold: a heap with no page tables yet, so this
	 * costs the same for any size. */
	if (mprotect(t->base, t->len, PROT_READ) != 0) {
		rc = vp__err(-errno, "uffd tracker: cannot protect the heap: %s", strerror(errno));
		goto fail_active;
	}
	return 0;
fail_active:
	atomic_store(&uf_active, NULL);
	vp__segv_install(NULL);
	t->priv = NULL;
fail:
	uf_fini(u);
	return rc;
}

/* next_bit -- the first region >= from whose bit in map is `set`, or n. */
static size_t next_bit(_Atomic uint64_t *map, size_t n, size_t from, bool set)
{
	while (from < n) {
		uint64_t w = atomic_load_explicit(&map[from / 64], memory_order_relaxed);
		w = (set ? w : ~w) >> (from % 64);
		if (w) {
			from += (unsigned)__builtin_ctzll(w);
			return from < n ? from : n;
		}
		from = (from / 64 + 1) * 64;
	}
	return n;
}

/* unstick_cold -- an expiring sticky page of a cold region joins its
 * region again: read-only, armed. The caller logs it this once (it may
 * have been written since the last commit; the copy comes after). */
static int unstick_cold(struct vp_tracker *t, struct uf *u, uint64_t pg)
{
	uint8_t *a = t->base + pg * VP_PAGE;
	if (wp_range(u, a, VP_PAGE) != 0)
		return -1;
	return mprotect(a, VP_PAGE, PROT_READ);
}

/* cool -- hot region r goes cold: PROT_READ, except its sticky pages,
 * which stay writable (they are logged every commit). Out of VMAs: the
 * region stays hot. */
static void cool(struct vp_tracker *t, struct uf *u, size_t r)
{
	uint8_t s = HOT;
	if (!atomic_compare_exchange_strong(&u->state[r], &s, COLD))
		return;
	atomic_fetch_and(&u->hotmap[r / 64], ~(1ull << (r % 64)));
	u->idle[r] = 0;
	uint64_t a = (uint64_t)r * REGION_PAGES, end = a + region_len(t, r) / VP_PAGE;
	unsigned k = 0;
	while (k < u->nsticky && u->sticky[k] < a)
		k++;
	for (;;) {
		uint64_t stop = k < u->nsticky && u->sticky[k] < end ? u->sticky[k] : end;
		if (stop > a && mprotect(t->base + a * VP_PAGE, (stop - a) * VP_PAGE, PROT_READ) != 0) {
			mprotect(t->base + (r << REGION_SHIFT), region_len(t, r), PROT_READ | PROT_WRITE);
			atomic_store(&u->state[r], HOT);
			atomic_fetch_or(&u->hotmap[r / 64], 1ull << (r % 64));
			return;
		}
		if (stop == end)
			return;
		a = stop + 1;
		k++;
	}
}

/* age_sticky -- drop sticky pages past their age. In a hot region this
 * collection's scan re-arms them; in a cold one unstick_cold does, and they
 * are put on u->unstuck to be logged this once. A page that cannot be
 * taken back (out of VMAs, its region being heated) stays sticky. */
static void age_sticky(struct vp_tracker *t, struct uf *u, bool all)
{
	unsigned keep = 0;
	u->nunstuck = 0;
	for (unsigned i = 0; i < u->nsticky; i++) {
		uint64_t pg = u->sticky[i];
		bool expire = ++u->sticky_age[i] >= u->pol.sticky_age;
		if (expire && !all) {
			uint8_t st = atomic_load(&u->state[pg / REGION_PAGES]);
			if (st == COLD && unstick_cold(t, u, pg) == 0)
				u->unstuck[u->nunstuck++] = pg;
			else if (st != HOT)
				expire = false;
		}
		if (!expire) {
			u->sticky[keep] = pg;
			u->sticky_run[keep] = u->sticky_run[i];
			u->sticky_age[keep++] = u->sticky_age[i] >= u->pol.sticky_age ? 0 : u->sticky_age[i];
		}
	}
	u->nsticky = keep;
}

/* is_sticky -- pg is in the sorted sticky list (a sticky page that does
 * not keep changing is scanned like any other, see SKIP_RUN). */
static bool is_sticky(const struct uf *u, uint64_t pg)
{
	unsigned lo = 0, hi = u->nsticky;
	while (lo < hi) {
		unsigned mid = (lo + hi) / 2;
		if (u->sticky[mid] < pg)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo < u->nsticky && u->sticky[lo] == pg;
}

/* promote -- pages written in STICKY_STREAK consecutive collections become
 * sticky; out[from, to) are this collection's scanned pages. */
static void promote(struct uf *u, const struct vp_pageset *out, size_t from, size_t to)
{
	for (size_t i = from; i < to && u->sticky_max; i++) {
		uint64_t pg = out->pg[i];
		u->streak[pg] = u->last_seen[pg] == u->ncollect - 1 && u->streak[pg] < 255 ? u->streak[pg] + 1 : 1;
		u->last_seen[pg] = u->ncollect;
		if (u->streak[pg] >= STICKY_STREAK && u->nsticky < u->sticky_max && !is_sticky(u, pg)) {
			unsigned k = u->nsticky;
			while (k > 0 && u->sticky[k - 1] > pg) {
				u->sticky[k] = u->sticky[k - 1];
				u->sticky_age[k] = u->sticky_age[k - 1];
				u->sticky_run[k] = u->sticky_run[k - 1];
				k--;
			}
			u->sticky[k] = pg;
			u->sticky_age[k] = 0;
			u->sticky_run[k] = SKIP_RUN; /* it was written in each of the last commits */
			u->nsticky++;
			u->streak[pg] = 0;
		}
	}
}

static int uf_collect(struct vp_tracker *t, struct vp_pageset *out)
{
	struct uf *u = t->priv;
	size_t first = out->n;
	int rc = 0;
	bool all = atomic_load(&u->all_hot);
	u->ncollect++;
	age_sticky(t, u, all);
	/* Scan runs of consecutive hot regions, stepping over the sticky pages
	 * that keep changing (SKIP_RUN); the others are scanned like any page. */
	unsigned si = 0, skips = 0;
	for (size_t r = next_bit(u->hotmap, u->nregions, 0, true); r < u->nregions && !rc;
	     r = next_bit(u->hotmap, u->nregions, r, true)) {
		size_t e = next_bit(u->hotmap, u->nregions, r + 1, false);
		/* One scan across a short gap of cold, armed regions. */
		for (;;) {
			size_t r2 = next_bit(u->hotmap, u->nregions, e, true);
			if (r2 >= u->nregions || r2 - e > u->pol.merge_gap)
				break;
			size_t g = e;
			while (g < r2 && u->armed[g])
				g++;
			if (g < r2)
				break;
			e = next_bit(u->hotmap, u->nregions, r2 + 1, false);
		}
		uint64_t a = (uint64_t)r * REGION_PAGES;
		uint64_t b = e == u->nregions ? t->npages : (uint64_t)e * REGION_PAGES;
		while (si < u->nsticky && u->sticky[si] < a)
			si++;
		while (!rc && a < b) {
			while (si < u->nsticky && u->sticky[si] < b &&
			       (u->sticky_run[si] < SKIP_RUN || skips >= MAX_SKIPS))
				si++;
			uint64_t stop = si < u->nsticky && u->sticky[si] < b ? u->sticky[si] : b;
			if (stop > a)
				rc = scan(u->pagemap, u->vec, VEC_LEN, t->base, (uintptr_t)(t->base + a * VP_PAGE),
					  (uintptr_t)(t->base + stop * VP_PAGE), true, push_range, out);
			if (stop == b)
				break;
			skips++;
			a = stop + 1;
			si++;
		}
		r = e;
	}
	if (rc)
		return vp__err(rc, "PAGEMAP_SCAN of the heap failed: %s", strerror(-rc));
	size_t scanned_end = out->n;
	for (size_t i = first; i < scanned_end; i++)
		u->wrote[out->pg[i] / REGION_PAGES] = 1;
	promote(u, out, first, scanned_end);
	/* Sticky pages are logged every time, written or not. */
	for (unsigned i = 0; i < u->nsticky; i++)
		if (vp__pageset_push(out, u->sticky[i]))
			return vp__err(-ENOMEM, "uffd tracker: out of memory collecting pages");
	for (unsigned i = 0; i < u->nunstuck; i++)
		if (vp__pageset_push(out, u->unstuck[i]))
			return vp__err(-ENOMEM, "uffd tracker: out of memory collecting pages");
	/* Pages seen written when a region was re-heated. */
	for (size_t r = next_bit(u->pre_any, u->nregions, 0, true); r < u->nregions;
	     r = next_bit(u->pre_any, u->nregions, r + 1, true)) {
		atomic_fetch_and(&u->pre_any[r / 64], ~(1ull << (r % 64)));
		u->wrote[r] = 1;
		for (unsigned w = 0; w < REGION_PAGES / 64; w++) {
			uint64_t bits = atomic_exchange(&u->pre[r * (REGION_PAGES / 64) + w], 0);
			while (bits) {
				uint64_t pg = (uint64_t)r * REGION_PAGES + w * 64 + (unsigned)__builtin_ctzll(bits);
				bits &= bits - 1;
				if (pg < t->npages && vp__pageset_push(out, pg))
					return vp__err(-ENOMEM, "uffd tracker: out of memory collecting pages");
			}
		}
	}
	if (out->n > scanned_end)
		vp__pageset_sort_unique(out);
	/* Cool regions where nothing but sticky pages was written (wrote[] is
	 * set only for regions that were hot or heated). */
	for (size_t r = next_bit(u->hotmap, u->nregions, 0, true); r < u->nregions;
	     r = next_bit(u->hotmap, u->nregions, r + 1, true)) {
		bool w = u->wrote[r];
		u->wrote[r] = 0;
		if (all || atomic_load(&u->state[r]) != HOT)
			continue;
		if (w)
			u->idle[r] = 0;
		else if (++u->idle[r] >= u->pol.cool_after)
			cool(t, u, r);
	}
	return 0;
}

/* uf_settled -- a sticky page that changed this commit starts its age
 * again: only a page that stops changing is scanned again. ws is sorted. */
static void uf_settled(struct vp_tracker *t, const struct vp_pageset *ws, const uint64_t *changed)
{
	struct uf *u = t->priv;
	size_t i = 0;
	for (unsigned k = 0; k < u->nsticky; k++) {
		while (i < ws->n && ws->pg[i] < u->sticky[k])
			i++;
		if (i < ws->n && ws->pg[i] == u->sticky[k] && (changed[i / 64] >> (i % 64) & 1)) {
			u->sticky_age[k] = 0;
			u->sticky_run[k] += u->sticky_run[k] < 255;
		} else {
			u->sticky_run[k] = 0;
		}
	}
}

static void uf_detach(struct vp_tracker *t)
{
	struct uf *u = t->priv;
	atomic_store(&uf_active, NULL);
	vp__segv_install(NULL);
	if (!u)
		return;
	mprotect(t->base, t->len, PROT_READ | PROT_WRITE);
	struct uffdio_range r = {.start = (uintptr_t)t->base, .len = t->len};
	ioctl(u->uffd, UFFDIO_UNREGISTER, &r);
	uf_fini(u);
	t->priv = NULL;
}

/* uf_forked -- the inherited userfaultfd still names the parent's mm:
 * unregistering through it would stop the parent's tracking. Just close;
 * cold regions are opened by the fault handler without tracking. */
static void uf_forked(struct vp_tracker *t)
{
	struct uf *u = t->priv;
	if (!u)
		return;
	t->priv = NULL;
	uf_fini(u);
}

static int uf_before_kernel_write(struct vp_tracker *t, void *addr, size_t n)
{
	struct uf *u = t->priv;
	size_t r0 = (size_t)((uint8_t *)addr - t->base) >> REGION_SHIFT;
	size_t r1 = (size_t)((uint8_t *)addr + n - 1 - t->base) >> REGION_SHIFT;
	for (size_t r = r0; r <= r1 && r < (u ? u->nregions : 0); r++)
		if (atomic_load(&u->state[r]) != HOT && heat(t, u, r) != 0)
			return -errno;
	return 0;
}

static uint64_t uf_faults(struct vp_tracker *t)
{
	struct uf *u = t->priv;
	return u ? atomic_load(&u->heats) : 0;
}

/* uf_cow_hot -- may the concurrent copy hold page pg read-only and give it
 * back writable? Only in a hot region: a cold region's pages (an expired
 * sticky page just re-protected, a sticky hole) must stay as they are, and
 * heating the region would open all of it. Collector's thread, after
 * collect; a hot region stays hot until the next collect. */
static bool uf_cow_hot(struct vp_tracker *t, uint64_t pg)
{
	struct uf *u = t->priv;
	return u && (atomic_load(&u->all_hot) || atomic_load(&u->state[pg / REGION_PAGES]) == HOT);
}

const struct vp_tracker_ops vp__track_uffd = {
	.name = "uffd",
	.probe = uf_probe,
	.attach = uf_attach,
	.collect = uf_collect,
	.settled = uf_settled,
	.detach = uf_detach,
	.before_kernel_write = uf_before_kernel_write,
	.forked = uf_forked,
	.faults = uf_faults,
	.cow = VP_TRK_COW_RW,
	.cow_hot = uf_cow_hot,
};
