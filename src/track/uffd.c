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
#include "util/options.h"
#include "util/util.h"

/*
 * Collection that does not grow with the heap. PAGEMAP_SCAN walks page
 * tables, ~0.5 ms per GiB even when nothing was written, so the heap is cut
 * into 2 MiB regions that are COLD (PROT_READ) or HOT (writable, tracked
 * per page by uffd-wp). The first write to a cold region raises SIGSEGV; the
 * handler arms the region for uffd-wp and makes it writable (a few us, once
 * per region per heat period). A commit scans only hot regions; a region
 * that stays clean for COOL_AFTER commits goes cold again. So a FAS that
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
 * change a page-table entry, which under shadow paging (kvm-pvm) costs far
 * more than copying the page. A page found written in STICKY_STREAK
 * consecutive commits therefore becomes sticky: it is left out of the
 * scans (never re-armed, no fault) and logged at every commit whether
 * written or not, which is always correct. After STICKY_AGE commits it is
 * scanned again (re-armed; logged if written), and re-earns its place if
 * still hot. At most VOLIPMEM_STICKY_PAGES (64) pages are sticky.
 */
#define VEC_LEN 512
#define REGION_SHIFT 21                 /* 2 MiB */
#define REGION_PAGES (1u << (REGION_SHIFT - 12))
#define COOL_AFTER 16
#define STICKY_STREAK 2
#define STICKY_AGE 64

enum { COLD = 0, HEATING = 1, HOT = 2 };

struct uf {
	int uffd;
	int pagemap;
	uint64_t features;
	size_t nregions;
	_Atomic uint8_t *state;      /* per region                               */
	uint8_t *armed;              /* per region: uffd-wp armed once already    */
	uint8_t *idle;               /* per region: clean collections (collector) */
	_Atomic uint64_t *pre;       /* per region: pages seen written at re-heat */
	_Atomic uint8_t *pre_any;
	atomic_bool all_hot;
	atomic_ullong heats;
	/* sticky pages (collector only) */
	uint32_t *last_seen;         /* per page: collection it was last written  */
	uint8_t *streak;             /* per page: consecutive collections written */
	uint32_t ncollect;
	unsigned sticky_max, nsticky;
	uint64_t *sticky;            /* sorted page numbers                       */
	uint8_t *sticky_age;
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
	free((void *)u->pre);
	free((void *)u->pre_any);
	free(u->last_seen);
	free(u->streak);
	free(u->sticky);
	free(u->sticky_age);
	free(u);
}

/* uf_probe -- a real round trip on a scratch page: register, protect,
 * write, scan must report exactly that page, rescan nothing. */
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
	uint8_t *p = mmap(NULL, 4 * VP_PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	struct vp_pageset s = {0};
	if (p == MAP_FAILED) {
		rc = vp__err(-errno, "uffd probe: mmap failed");
	} else if (!(rc = uf_register(u, p, 4 * VP_PAGE)) && !(rc = wp_range(u, p, 4 * VP_PAGE))) {
		p[VP_PAGE + 5] = 1;
		rc = scan(u->pagemap, u->vec, VEC_LEN, p, (uintptr_t)p, (uintptr_t)p + 4 * VP_PAGE, true, push_range, &s);
		if (!rc && (s.n != 1 || s.pg[0] != 1))
			rc = vp__err(VP_E_TRACKER, "uffd probe: PAGEMAP_SCAN reported %zu pages for 1 written", s.n);
		s.n = 0;
		if (!rc)
			rc = scan(u->pagemap, u->vec, VEC_LEN, p, (uintptr_t)p, (uintptr_t)p + 4 * VP_PAGE, true,
				  push_range, &s);
		if (!rc && s.n != 0)
			rc = vp__err(VP_E_TRACKER, "uffd probe: re-protect did not take (PAGEMAP_SCAN unsupported?)");
	}
	if (rc == -EINVAL || rc == -ENOTTY)
		rc = vp__err(VP_E_TRACKER, "the kernel lacks PAGEMAP_SCAN or async write-protect (Linux 6.7+ needed)");
	else if (rc < 0 && rc > -4096)
		rc = vp__err(VP_E_TRACKER, "uffd probe failed: %s", strerror(-rc));
	vp__pageset_free(&s);
	if (p != MAP_FAILED)
		munmap(p, 4 * VP_PAGE);
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
	atomic_store(&a->u->pre_any[a->r], 1);
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
		if (errno != ENOMEM || mprotect(t->base, t->len, PROT_READ | PROT_WRITE) != 0)
			goto fail;
		/* Out of VMAs: everything hot from now on, armed or not. */
		if (wp_range(u, t->base, t->len) != 0)
			goto fail;
		for (size_t i = 0; i < u->nregions; i++) {
			u->armed[i] = 1;
			atomic_store(&u->state[i], HOT);
		}
		atomic_store(&u->all_hot, true);
		return 0;
	}
	atomic_store(&u->state[r], HOT);
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
	struct uf *u = calloc(1, sizeof *u);
	if (!u)
		return vp__err(-ENOMEM, "uffd tracker: out of memory");
	int rc = uf_init(u);
	if (rc) {
		free(u);
		return rc;
	}
	u->nregions = (t->len + (1u << REGION_SHIFT) - 1) >> REGION_SHIFT;
	u->state = calloc(u->nregions, 1);
	u->armed = calloc(u->nregions, 1);
	u->idle = calloc(u->nregions, 1);
	u->pre = calloc(u->nregions * (REGION_PAGES / 64), sizeof(uint64_t));
	u->pre_any = calloc(u->nregions, 1);
	u->sticky_max = vp__opt.sticky;
	u->last_seen = calloc(t->npages, sizeof *u->last_seen);
	u->streak = calloc(t->npages, 1);
	u->sticky = calloc(u->sticky_max + 1, sizeof *u->sticky);
	u->sticky_age = calloc(u->sticky_max + 1, 1);
	if (!u->state || !u->armed || !u->idle || !u->pre || !u->pre_any || !u->last_seen || !u->streak ||
	    !u->sticky || !u->sticky_age) {
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

static int uf_collect(struct vp_tracker *t, struct vp_pageset *out)
{
	struct uf *u = t->priv;
	size_t first = out->n;
	int rc = 0;
	bool all = atomic_load(&u->all_hot);
	u->ncollect++;
	/* Sticky pages past their age are scanned (re-armed) again this time. */
	unsigned keep = 0;
	for (unsigned i = 0; i < u->nsticky; i++)
		if (++u->sticky_age[i] < STICKY_AGE) {
			u->sticky[keep] = u->sticky[i];
			u->sticky_age[keep++] = u->sticky_age[i];
		}
	u->nsticky = keep;
	/* Scan runs of consecutive hot regions, stepping over sticky pages. */
	unsigned si = 0;
	for (size_t r = 0; r < u->nregions && !rc;) {
		if (!all && atomic_load(&u->state[r]) != HOT) {
			r++;
			continue;
		}
		size_t e = r + 1;
		while (e < u->nregions && (all || atomic_load(&u->state[e]) == HOT))
			e++;
		uint64_t a = (uint64_t)r * REGION_PAGES;
		uint64_t b = e == u->nregions ? t->npages : (uint64_t)e * REGION_PAGES;
		while (si < u->nsticky && u->sticky[si] < a)
			si++;
		for (; !rc && a < b; si++) {
			uint64_t stop = si < u->nsticky && u->sticky[si] < b ? u->sticky[si] : b;
			if (stop > a)
				rc = scan(u->pagemap, u->vec, VEC_LEN, t->base, (uintptr_t)(t->base + a * VP_PAGE),
					  (uintptr_t)(t->base + stop * VP_PAGE), true, push_range, out);
			a = stop + 1;
			if (stop == b)
				break;
		}
		r = e;
	}
	if (rc)
		return vp__err(rc, "PAGEMAP_SCAN of the heap failed: %s", strerror(-rc));
	size_t scanned_end = out->n;
	/* Pages written in consecutive collections become sticky. */
	for (size_t i = first; i < scanned_end && u->sticky_max; i++) {
		uint64_t pg = out->pg[i];
		u->streak[pg] = u->last_seen[pg] == u->ncollect - 1 && u->streak[pg] < 255 ? u->streak[pg] + 1 : 1;
		u->last_seen[pg] = u->ncollect;
		if (u->streak[pg] >= STICKY_STREAK && u->nsticky < u->sticky_max) {
			unsigned k = u->nsticky;
			while (k > 0 && u->sticky[k - 1] > pg) {
				u->sticky[k] = u->sticky[k - 1];
				u->sticky_age[k] = u->sticky_age[k - 1];
				k--;
			}
			/* pg was scanned, so it is not sticky already. */
			u->sticky[k] = pg;
			u->sticky_age[k] = 0;
			u->nsticky++;
			u->streak[pg] = 0;
		}
	}
	/* Sticky pages are logged every time, written or not. */
	for (unsigned i = 0; i < u->nsticky; i++)
		if (vp__pageset_push(out, u->sticky[i]))
			return vp__err(-ENOMEM, "uffd tracker: out of memory collecting pages");
	/* Pages seen written when a region was re-heated. */
	for (size_t r = 0; r < u->nregions; r++) {
		if (!atomic_load(&u->pre_any[r]) || !atomic_exchange(&u->pre_any[r], 0))
			continue;
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
	if (all)
		return 0;
	/* Cool regions that stayed clean; out[first..scanned_end) is sorted. */
	size_t i = first;
	for (size_t r = 0; r < u->nregions; r++) {
		if (atomic_load(&u->state[r]) != HOT)
			continue;
		bool written = false;
		while (i < out->n && out->pg[i] / REGION_PAGES < r)
			i++;
		if (i < out->n && out->pg[i] / REGION_PAGES == r)
			written = true;
		if (written) {
			u->idle[r] = 0;
		} else if (++u->idle[r] >= COOL_AFTER) {
			uint8_t s = HOT;
			if (atomic_compare_exchange_strong(&u->state[r], &s, COLD)) {
				u->idle[r] = 0;
				if (mprotect(t->base + (r << REGION_SHIFT), region_len(t, r), PROT_READ) != 0)
					atomic_store(&u->state[r], HOT); /* out of VMAs: stay hot */
			}
		}
	}
	return 0;
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

const struct vp_tracker_ops vp__track_uffd = {
	.name = "uffd",
	.probe = uf_probe,
	.attach = uf_attach,
	.collect = uf_collect,
	.detach = uf_detach,
	.before_kernel_write = uf_before_kernel_write,
	.forked = uf_forked,
	.faults = uf_faults,
};
