/* SPDX-License-Identifier: MIT */
/*
 * grow.c -- growing a pool's heap in place, crash-safely, without moving
 * it: the heap keeps its address (the reserve beyond it was set aside at
 * creation), the home image keeps its file offset and grows over the old
 * log area, and a new log follows it.
 *
 * File side (the log is empty, every step synced before the next):
 *   1 extend the file to the new layout's size     crash: old layout, a
 *                                                   longer file (allowed)
 *   2 zero the old log area that becomes heap      crash: old layout; its
 *                                                   log is empty, records
 *                                                   (fixed place) APPLIED
 *   3 superblock copy A = new layout, seq + 1      crash: A wins (higher
 *                                                   seq) or, torn, B (old)
 *   4 superblock copy B = the same
 * Heap side, one implicit FAS through the normal commit: the page map moves
 * to the first new page, sized for every page, the pages between top and it
 * become a free span (so does a previous moved map), top moves past it, the
 * header says the new page count. A crash before that commit leaves a heap
 * header with fewer pages than the home image, which pmap() finishes.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "heap/heap.h"
#include "pool/grow.h"
#include "pool/pool.h"
#include "runtime.h"
#include "util/options.h"
#include "util/util.h"

int vp__grow_stop_after;

static int stop(int step)
{
	if (vp__grow_stop_after == step)
		return vp__err(VP_E_INVAL, "growth stopped after step %d (test hook)", step);
	return 0;
}

static int sync_fd(struct vp_pool *p, const char *what)
{
	if (fdatasync(p->fd) != 0)
		return vp__err(-errno, "cannot sync %s while growing it (%s): %s", p->path, what, strerror(errno));
	return 0;
}

/* zero_range -- make [off, off+len) of the file read as zeros, durably. */
static int zero_range(struct vp_pool *p, uint64_t off, uint64_t len)
{
	if (!len)
		return 0;
	if (fallocate(p->fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, (off_t)off, (off_t)len) == 0) {
		/* Re-reserve the blocks so a full medium fails here. */
		int e = posix_fallocate(p->fd, (off_t)off, (off_t)len);
		if (e && e != EOPNOTSUPP && e != EINVAL)
			return vp__err(-e, "cannot reserve %llu bytes in %s: %s", (unsigned long long)len, p->path,
				       strerror(e));
		return sync_fd(p, "zeroing the old log");
	}
	static const uint8_t zero[1 << 16];
	for (uint64_t done = 0; done < len;) {
		size_t n = len - done < sizeof zero ? (size_t)(len - done) : sizeof zero;
		ssize_t w = pwrite(p->fd, zero, n, (off_t)(off + done));
		if (w < 0) {
			if (errno == EINTR)
				continue;
			return vp__err(-errno, "cannot zero the old log area of %s: %s", p->path, strerror(errno));
		}
		done += (uint64_t)w;
	}
	return sync_fd(p, "zeroing the old log");
}

uint64_t vp__pool_grow_size(const struct vp_pool *p, uint64_t new_size)
{
	new_size = vp_align_up(new_size, VP_PAGE);
	if (new_size < p->sb.heap_size + (1u << 20))
		new_size = p->sb.heap_size + (1u << 20);
	return new_size;
}

int vp__pool_grow_check(const struct vp_pool *p, uint64_t new_size)
{
	struct vp_logrec rec;
	int rc;
	new_size = vp__pool_grow_size(p, new_size);
	if (new_size > VP_MAX_HEAP)
		return vp__err(VP_E_INVAL, "cannot grow %s to %llu bytes: the maximum heap is %llu bytes", p->path,
			       (unsigned long long)new_size, (unsigned long long)VP_MAX_HEAP);
	if (new_size > p->sb.heap_reserve)
		return vp__err(VP_E_INVAL,
			       "cannot grow %s to %llu bytes in place: only %llu bytes of address space are reserved at "
			       "%#llx (set VOLIPMEM_RESERVE larger when creating a pool that must grow further)",
			       p->path, (unsigned long long)new_size, (unsigned long long)p->sb.heap_reserve,
			       (unsigned long long)p->sb.heap_base);
	if ((rc = vp__log_state(&p->sb, p->map, &rec)))
		return rc;
	if (rec.state != VP_LOG_APPLIED)
		return vp__err(VP_E_INVAL, "cannot grow %s: its log holds a group not yet applied", p->path);
	return 0;
}

int vp__pool_grow_file(struct vp_pool *p, uint64_t new_size)
{
	struct vp_superblock nsb = p->sb;
	uint64_t old = p->sb.heap_size;
	int rc;

	if ((rc = vp__pool_grow_check(p, new_size)))
		return rc;
	new_size = vp__pool_grow_size(p, new_size);
	vp__pool_geometry(&nsb, new_size);
	nsb.seq = p->sb.seq + 1;
	vp__sb_seal(&nsb);
	vp__log(1, "pool %s: growing the heap from %llu to %llu bytes", p->path, (unsigned long long)old,
		(unsigned long long)new_size);

	/* 1: the file. */
	if (ftruncate(p->fd, (off_t)nsb.file_size) != 0)
		return vp__err(-errno, "cannot extend %s to %llu bytes: %s", p->path,
			       (unsigned long long)nsb.file_size, strerror(errno));
	int e = posix_fallocate(p->fd, (off_t)p->sb.file_size, (off_t)(nsb.file_size - p->sb.file_size));
	if (e && e != EOPNOTSUPP && e != EINVAL)
		return vp__err(-e, "cannot reserve %llu bytes for %s: %s",
			       (unsigned long long)(nsb.file_size - p->sb.file_size), p->path, strerror(e));
	if ((rc = sync_fd(p, "extending the file")) || (rc = stop(1)))
		return rc;
	/* 2: the old log area becomes heap: zero it (the rest is new). */
	uint64_t z0 = p->sb.home_off + old, z1 = p->sb.file_size;
	if ((rc = zero_range(p, z0, z1 - z0)) || (rc = stop(2)))
		return rc;
	/* 3, 4: the superblocks, A then B. */
	if (pwrite(p->fd, &nsb, sizeof nsb, VP_SB_OFF_A) != (ssize_t)sizeof nsb)
		return vp__err(-errno, "cannot write superblock A of %s: %s", p->path, strerror(errno));
	if ((rc = sync_fd(p, "superblock A")) || (rc = stop(3)))
		return rc;
	if (pwrite(p->fd, &nsb, sizeof nsb, VP_SB_OFF_B) != (ssize_t)sizeof nsb)
		return vp__err(-errno, "cannot write superblock B of %s: %s", p->path, strerror(errno));
	if ((rc = sync_fd(p, "superblock B")) || (rc = stop(4)))
		return rc;

	/* Map the larger file. */
	uint8_t *m;
	bool dax;
	if ((rc = vp__pool_map(p->fd, nsb.file_size, &m, &dax)))
		return vp__err(rc, "cannot map the grown pool %s: %s", p->path, strerror(-rc));
	munmap(p->map, p->len);
	p->map = m;
	p->len = nsb.file_size;
	p->file_size = nsb.file_size;
	p->sb = nsb;
	vp__persist_open(&p->ps, p->map, p->len, dax, vp__opt.force_pmem);
	return 0;
}

/* span -- make [s, s+n) a free span in bin order (the allocator's
 * span_link, on an explicit page map). */
static void span(struct vp_heaphdr *h, struct vp_pgent *pm, uint64_t s, uint64_t n)
{
	unsigned b = vp__bin_of(n);
	uint32_t head = h->bin_head[b];
	for (uint64_t i = 1; i + 1 < n; i++)
		if (pm[s + i].kind != VP_PG_UNUSED)
			pm[s + i].kind = VP_PG_INNER;
	pm[s] = (struct vp_pgent){.kind = VP_PG_FREE, .n = (uint32_t)n, .next = head};
	if (n > 1)
		pm[s + n - 1] = (struct vp_pgent){.kind = VP_PG_FTAIL, .n = (uint32_t)n};
	if (head)
		pm[head].prev = (uint32_t)s;
	h->bin_head[b] = (uint32_t)s;
}

/* merge_left -- if a free span ends just before page s, take it out of
 * its bin and return its start (the caller makes one span of both). */
static uint64_t merge_left(struct vp_heaphdr *h, struct vp_pgent *pm, uint64_t s)
{
	if (s <= h->meta_pages)
		return s;
	const struct vp_pgent *l = &pm[s - 1];
	uint64_t ls = l->kind == VP_PG_FTAIL && l->n <= s ? s - l->n : l->kind == VP_PG_FREE && l->n == 1 ? s - 1 : 0;
	if (!ls || ls < h->meta_pages || pm[ls].kind != VP_PG_FREE || pm[ls].n != s - ls)
		return s;
	if (pm[ls].prev)
		pm[pm[ls].prev].next = pm[ls].next;
	else
		h->bin_head[vp__bin_of(pm[ls].n)] = pm[ls].next;
	if (pm[ls].next)
		pm[pm[ls].next].prev = pm[ls].prev;
	pm[s - 1].kind = VP_PG_INNER;
	pm[ls].kind = VP_PG_INNER;
	return ls;
}

int vp__heap_grow_check(const struct vp_heaphdr *h, uint64_t n2)
{
	uint64_t n1 = h->npages, m = (n2 * sizeof(struct vp_pgent) + VP_PAGE - 1) / VP_PAGE;
	if (n2 > n1 && n2 - n1 < m + 1)
		return vp__err(VP_E_INVAL, "heap growth from %llu to %llu pages leaves no room for its page map",
			       (unsigned long long)n1, (unsigned long long)n2);
	return 0;
}

int vp__heap_grow(struct vp_rt *rt)
{
	struct vp_heaphdr *h = (void *)rt->heap;
	uint64_t n1 = h->npages, n2 = rt->heap_pages;
	if (n1 >= n2)
		return 0;
	uint64_t m = (n2 * sizeof(struct vp_pgent) + VP_PAGE - 1) / VP_PAGE;
	uint64_t opg = h->pagemap_off / VP_PAGE, om = (n1 * sizeof(struct vp_pgent) + VP_PAGE - 1) / VP_PAGE;
	int rc;
	if ((rc = vp__heap_grow_check(h, n2)))
		return rc;
	vp__log(1, "pool %s: heap side of the growth: %llu -> %llu pages, page map moves to page %llu", rt->pool.path,
		(unsigned long long)n1, (unsigned long long)n2, (unsigned long long)n1);
	pstart();
	struct vp_pgent *npm = (void *)(rt->heap + n1 * VP_PAGE);
	memcpy(npm, rt->heap + h->pagemap_off, n1 * sizeof *npm);
	memset(npm + n1, 0, (n2 - n1) * sizeof *npm);
	for (uint64_t i = n1; i < n1 + m; i++)
		npm[i] = (struct vp_pgent){.kind = VP_PG_META};
	uint64_t top = h->top;
	if (opg != 1 && opg + om == top) {
		/* The previous moved map sits just below top: one span. */
		uint64_t s0 = merge_left(h, npm, opg);
		span(h, npm, s0, n1 - s0);
	} else {
		if (opg != 1) {
			uint64_t s0 = merge_left(h, npm, opg);
			span(h, npm, s0, opg + om - s0);
		}
		if (top < n1) {
			uint64_t s0 = merge_left(h, npm, top);
			span(h, npm, s0, n1 - s0);
		}
	}
	h->pagemap_off = n1 * VP_PAGE;
	h->top = n1 + m;
	h->npages = n2;
	rc = pend();
	vp__heap_detach();
	int rc2 = vp__heap_attach(rt->heap, rt->heap_size);
	return rc ? rc : rc2;
}
