/* SPDX-License-Identifier: MIT */
/*
 * grow.c -- the file side of growing a pool's heap in place, crash-safely, without moving
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
 * The heap side (heap/grow.c) runs afterwards as one implicit FAS; a crash
 * before it leaves a heap header with fewer pages than the home image,
 * which pmap() finishes.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "pool/pool.h"
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
	/* A committed group in the log is fine here: pmap replays and retires
	 * it (vp__log_replay) before vp__pool_grow_file, which moves the log
	 * and so insists on a retired one. (Format 3 leaves the newest group
	 * COMMITTED after a crash, not only mid-commit.) */
	return 0;
}

/* log_retired -- the log area may move only when no group is in it. */
static int log_retired(const struct vp_pool *p)
{
	struct vp_logrec rec;
	int rc = vp__log_state(&p->sb, p->map, &rec);
	if (rc)
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

	if ((rc = vp__pool_grow_check(p, new_size)) || (rc = log_retired(p)))
		return rc;
	new_size = vp__pool_grow_size(p, new_size);
	vp__pool_geometry(&nsb, new_size);
	nsb.seq = p->sb.seq + 1;
	vp__sb_seal(&nsb);
	vp__diag(1, "pool %s: growing the heap from %llu to %llu bytes", p->path, (unsigned long long)old,
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
	if ((rc = vp__sb_write(p, 0, &nsb)) || (rc = stop(3)))
		return rc;
	if ((rc = vp__sb_write(p, 1, &nsb)) || (rc = stop(4)))
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
