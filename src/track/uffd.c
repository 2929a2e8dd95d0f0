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
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "track/track.h"
#include "track/uffd_abi.h"
#include "util/util.h"

#define VEC_LEN 512

struct uf {
	int uffd;
	int pagemap;
	uint64_t features;
	struct page_region vec[VEC_LEN];
};

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

/* scan -- one PAGEMAP_SCAN over [start, end); with wp, re-protect what it
 * reports. Appends pages to out (if not NULL). */
static int scan(struct uf *u, uint8_t *base, uint64_t start, uint64_t end, bool wp, struct vp_pageset *out)
{
	while (start < end) {
		struct pm_scan_arg arg = {
			.size = sizeof arg,
			.flags = wp ? PM_SCAN_WP_MATCHING | PM_SCAN_CHECK_WPASYNC : 0,
			.start = start,
			.end = end,
			.vec = (uintptr_t)u->vec,
			.vec_len = VEC_LEN,
			.category_mask = PAGE_IS_WRITTEN,
			.return_mask = PAGE_IS_WRITTEN,
		};
		long n = ioctl(u->pagemap, PAGEMAP_SCAN, &arg);
		if (n < 0)
			return vp__err(-errno, "PAGEMAP_SCAN failed: %s", strerror(errno));
		for (long i = 0; i < n && out; i++)
			for (uint64_t a = u->vec[i].start; a < u->vec[i].end; a += VP_PAGE)
				if (vp__pageset_push(out, (a - (uintptr_t)base) / VP_PAGE))
					return vp__err(-ENOMEM, "uffd tracker: out of memory collecting pages");
		if (arg.walk_end <= start)
			return vp__err(-EIO, "PAGEMAP_SCAN made no progress at %#llx", (unsigned long long)start);
		start = arg.walk_end;
	}
	return 0;
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
	struct uffdio_writeprotect wp = {
		.range = {.start = (uintptr_t)base, .len = len},
		.mode = UFFDIO_WRITEPROTECT_MODE_WP,
	};
	if (ioctl(u->uffd, UFFDIO_WRITEPROTECT, &wp) != 0)
		return vp__err(-errno, "UFFDIO_WRITEPROTECT of %zu bytes at %p failed: %s", len, (void *)base,
			       strerror(errno));
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
	} else if (!(rc = uf_register(u, p, 4 * VP_PAGE))) {
		p[VP_PAGE + 5] = 1;
		rc = scan(u, p, (uintptr_t)p, (uintptr_t)p + 4 * VP_PAGE, true, &s);
		if (!rc && (s.n != 1 || s.pg[0] != 1))
			rc = vp__err(VP_E_TRACKER, "uffd probe: PAGEMAP_SCAN reported %zu pages for 1 written", s.n);
		s.n = 0;
		if (!rc)
			rc = scan(u, p, (uintptr_t)p, (uintptr_t)p + 4 * VP_PAGE, true, &s);
		if (!rc && s.n != 0)
			rc = vp__err(VP_E_TRACKER, "uffd probe: re-protect did not take (PAGEMAP_SCAN unsupported?)");
	}
	if (rc == -EINVAL || rc == -ENOTTY)
		rc = vp__err(VP_E_TRACKER, "the kernel lacks PAGEMAP_SCAN or async write-protect (Linux 6.7+ needed)");
	vp__pageset_free(&s);
	if (p != MAP_FAILED)
		munmap(p, 4 * VP_PAGE);
	uf_fini(u);
	free(u);
	return cached = rc;
}

static int uf_attach(struct vp_tracker *t)
{
	struct uf *u = calloc(1, sizeof *u);
	if (!u)
		return vp__err(-ENOMEM, "uffd tracker: out of memory");
	int rc = uf_init(u);
	if (!rc)
		rc = uf_register(u, t->base, t->len);
	if (rc) {
		if (u->uffd > 0)
			uf_fini(u);
		free(u);
		return rc;
	}
	t->priv = u;
	return 0;
}

static int uf_collect(struct vp_tracker *t, struct vp_pageset *out)
{
	struct uf *u = t->priv;
	return scan(u, t->base, (uintptr_t)t->base, (uintptr_t)t->base + t->len, true, out);
}

static void uf_detach(struct vp_tracker *t)
{
	struct uf *u = t->priv;
	if (!u)
		return;
	struct uffdio_range r = {.start = (uintptr_t)t->base, .len = t->len};
	ioctl(u->uffd, UFFDIO_UNREGISTER, &r);
	uf_fini(u);
	free(u);
	t->priv = NULL;
}

/* uf_forked -- the inherited userfaultfd still names the parent's mm:
 * unregistering through it would stop the parent's tracking. Just close. */
static void uf_forked(struct vp_tracker *t)
{
	struct uf *u = t->priv;
	if (!u)
		return;
	uf_fini(u);
	free(u);
	t->priv = NULL;
}

static uint64_t uf_faults(struct vp_tracker *t)
{
	(void)t;
	return 0;
}

const struct vp_tracker_ops vp__track_uffd = {
	.name = "uffd",
	.probe = uf_probe,
	.attach = uf_attach,
	.collect = uf_collect,
	.detach = uf_detach,
	.before_kernel_write = NULL,
	.forked = uf_forked,
	.faults = uf_faults,
};
