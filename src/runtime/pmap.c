/* SPDX-License-Identifier: MIT */
/*
 * pmap.c -- pmap()/punmap(): open or create the pool, recover it, map the
 * working copy of the heap at its fixed address, start tracking.
 *
 * The working copy is a MAP_PRIVATE mapping of the home image: the kernel
 * loads pages on first touch, so pmap costs the same whatever the heap
 * size, and a page the application writes becomes a private DRAM copy
 * while the home image changes only through commits. Address space beyond
 * the heap is reserved PROT_NONE so the heap can grow in place: a size
 * larger than the pool's grows it (grow.c).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "heap/heap.h"
#include "pool/newfile.h"
#include "runtime/runtime.h"
#include "util/options.h"
#include "util/util.h"

struct vp_rt vp__rt = {
	.pool.fd = -1,
};

/* who_maps -- describe the mapping that overlaps [a, a+len), for errors. */
static void who_maps(uint64_t a, uint64_t len, char *out, size_t outlen)
{
	FILE *f = fopen("/proc/self/maps", "r");
	char line[512];
	snprintf(out, outlen, "unknown mapping");
	if (!f)
		return;
	while (fgets(line, sizeof line, f)) {
		unsigned long lo, hi;
		if (sscanf(line, "%lx-%lx", &lo, &hi) == 2 && lo < a + len && hi > a) {
			line[strcspn(line, "\n")] = 0;
			snprintf(out, outlen, "%s", line);
			break;
		}
	}
	fclose(f);
}

/* reserve_heap -- reserve the heap's address range (PROT_NONE). Never
 * replaces an existing mapping. Runs before anything is written to the
 * pool, so a range in use leaves the file as it was. */
static int reserve_heap(struct vp_rt *rt)
{
	uint64_t base = rt->pool.sb.heap_base;
	size_t reserve = rt->pool.sb.heap_reserve;
	void *p = mmap((void *)base, reserve, PROT_NONE,
		       MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_FIXED_NOREPLACE, -1, 0);
	if (p == MAP_FAILED || p != (void *)base) {
		char who[600];
		int e = p == MAP_FAILED ? errno : EEXIST;
		if (p != MAP_FAILED)
			munmap(p, reserve); /* an old kernel or a sanitizer moved our hint */
		who_maps(base, reserve, who, sizeof who);
		if (e == EEXIST)
			return vp__err(VP_E_ADDRINUSE,
				       "pool %s needs its heap at %#llx-%#llx, but that range is already mapped (%s)",
				       rt->pool.path, (unsigned long long)base, (unsigned long long)(base + reserve), who);
		return vp__err(-e, "cannot reserve heap address range %#llx-%#llx for pool %s: %s",
			       (unsigned long long)base, (unsigned long long)(base + reserve), rt->pool.path, strerror(e));
	}
	rt->heap = (uint8_t *)base;
	rt->reserve = reserve;
	return 0;
}

/* map_heap -- map the home image privately at the start of the reserved
 * range (after recovery and growth: the superblock's final size). */
static int map_heap(struct vp_rt *rt)
{
	uint64_t base = rt->pool.sb.heap_base;
	void *p = mmap((void *)base, rt->pool.sb.heap_size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_FIXED, rt->pool.fd,
		 (off_t)rt->pool.sb.home_off);
	if (p == MAP_FAILED)
		return vp__err(-errno, "cannot map the heap of %s at %#llx: %s", rt->pool.path,
			       (unsigned long long)base, strerror(errno));
	rt->heap_size = rt->pool.sb.heap_size;
	rt->heap_pages = rt->heap_size / VP_PAGE;
	return 0;
}

static void unmap_all(struct vp_rt *rt)
{
	if (rt->heap) {
		munmap(rt->heap, rt->reserve);
		rt->heap = NULL;
	}
	vp__pool_close(&rt->pool);
}

/* check_heap -- the heap header as it will be once the log is replayed
 * must be one vp__heap_attach accepts, with room for the page map of a
 * heap of heap_size bytes when that is larger (a growth). Read-only. */
static int check_heap(const struct vp_pool *p, const struct vp_logrec *rec, uint64_t heap_size)
{
	_Alignas(64) uint8_t page0[VP_PAGE];
	vp__log_page(p, rec, 0, page0);
	const struct vp_heaphdr *h = (const void *)page0;
	int rc = vp__heap_validate(h, p->sb.heap_size / VP_PAGE);
	if (!rc && heap_size / VP_PAGE > h->npages)
		rc = vp__heap_grow_check(h, heap_size / VP_PAGE);
	if (rc) {
		char why[512];
		snprintf(why, sizeof why, "%s", vp_errormsg());
		return vp__err(rc, "pool %s: %s", p->path, why);
	}
	return 0;
}

int pmap(const char *path, size_t heap_size, unsigned flags)
{
	struct vp_rt *rt = &vp__rt;
	int rc;

	vp__clear_err();
	if (rt->mapped)
		return vp__misuse(VP_E_MAPPED, "pmap(%s): pool %s is already mapped in this process (one pool per process)",
				  path ? path : "NULL", rt->pool.path);
	if (!path || !*path)
		return vp__misuse(VP_E_INVAL, "pmap: no pool path given");
	if ((flags & ~(VP_CREATE_ONLY | VP_OPEN_ONLY | VP_SPARSE)) ||
	    (flags & (VP_CREATE_ONLY | VP_OPEN_ONLY)) == (VP_CREATE_ONLY | VP_OPEN_ONLY))
		return vp__misuse(VP_E_INVAL, "pmap(%s): invalid flags %#x", path, flags);
	if ((rc = vp__options_load()))
		return rc;

	const struct vp_tracker_ops *ops;
	if ((rc = vp__track_choose(vp__opt.tracker, &ops)))
		return rc;

	if (access(path, F_OK) != 0) {
		if (errno != ENOENT)
			return vp__err(-errno, "cannot access pool %s: %s", path, strerror(errno));
		if (flags & VP_OPEN_ONLY)
			return vp__err(-ENOENT, "pool %s does not exist", path);
		/* -EEXIST: another process created it meanwhile; open theirs. */
		rc = vp__pool_create(path, heap_size, flags, vp__heap_format);
		if (rc && rc != -EEXIST)
			return rc;
		if (rc && (flags & VP_CREATE_ONLY))
			return vp__err(-EEXIST, "pool %s already exists (created by another process meanwhile)", path);
	} else if (flags & VP_CREATE_ONLY) {
		return vp__err(-EEXIST, "pool %s already exists", path);
	} else {
		vp__newfile_sweep(path); /* creation does it for a new pool */
	}

	if ((rc = vp__pool_open(&rt->pool, path, VP_POOL_RW)))
		return rc;
	/* Everything below is checked before the first byte is written: a
	 * pool that fails validation is left exactly as it was. */
	struct vp_logrec rec;
	uint64_t want = vp_align_up(heap_size, VP_PAGE);
	bool grow = want > rt->pool.sb.heap_size;
	if ((rc = vp__log_check(&rt->pool, &rec)) ||
	    (rc = check_heap(&rt->pool, &rec, grow ? vp__pool_grow_size(&rt->pool, want) : rt->pool.sb.heap_size)) ||
	    (grow && (rc = vp__pool_grow_check(&rt->pool, want))) || (rc = reserve_heap(rt)))
		goto fail;
	if ((rc = vp__log_replay(&rt->pool, &rec)))
		goto fail;
	/* A larger size grows the pool in place (grow.c): the file side now,
	 * the heap side below once the heap is mapped and tracked. */
	if (grow && (rc = vp__pool_grow_file(&rt->pool, want)))
		goto fail;
	if ((rc = map_heap(rt)))
		goto fail;
	if ((rc = vp__heap_attach(rt->heap, rt->heap_size)))
		goto fail;

	rt->trk.ops = ops;
	rt->trk.base = rt->heap;
	rt->trk.len = rt->heap_size;
	rt->trk.npages = rt->heap_pages;
	if ((rc = ops->attach(&rt->trk)))
		goto fail_heap;
	vp__interpose_set(&rt->trk);

	if ((rc = vp__commit_open(&vp__cm, &rt->pool, &rt->trk, rt->heap, rec.seq, vp__opt.interval_ms)))
		goto fail_track;
	rt->mapped = true;
	vp__fork_install();
	/* The heap side of a growth (now, or left by a crash after the
	 * superblocks switched): one implicit FAS. */
	if (((struct vp_heaphdr *)rt->heap)->npages < rt->heap_pages &&
	    (rc = vp__heap_grow(rt->heap, rt->heap_pages, rt->pool.path))) {
		punmap();
		return rc;
	}
	vp__diag(1, "mapped %s: heap %zu bytes at %p, tracker %s, medium %s, %s", path, rt->heap_size,
		(void *)rt->heap, ops->name, vp__medium_name(rt->pool.ps.medium),
		vp__cm.mode == VP_RELAXED ? "relaxed" : "synchronous");
	return 0;

fail_track:
	vp__interpose_set(NULL);
	ops->detach(&rt->trk);
fail_heap:
	vp__heap_detach();
fail:
	unmap_all(rt);
	return rc;
}

int punmap(void)
{
	struct vp_rt *rt = &vp__rt;
	if (!rt->mapped)
		return vp__misuse(VP_E_NOTMAPPED, "punmap() called while no pool is mapped");
	int rc = 0;
	if (!vp__cm.detached) {
		vp__committer_stop(&vp__cm);
		rc = pcommit();
		if (rc == VP_E_INFAS)
			return rc;
		int rr = vp__commit_retire(&vp__cm);
		if (!rc)
			rc = rr;
	}
	vp__interpose_set(NULL);
	rt->trk.ops->detach(&rt->trk);
	vp__heap_detach();
	rt->mapped = false;
	vp__commit_close(&vp__cm);
	unmap_all(rt);
	return rc;
}

bool vp_in_heap(const void *p)
{
	struct vp_rt *rt = &vp__rt;
	return rt->heap && (const uint8_t *)p >= rt->heap && (const uint8_t *)p < rt->heap + rt->heap_size;
}

void *vp_heap_base(void) { return vp__rt.mapped ? vp__rt.heap : NULL; }
size_t vp_heap_size(void) { return vp__rt.mapped ? vp__rt.heap_size : 0; }
const char *vp_tracker_name(void) { return vp__rt.mapped ? vp__rt.trk.ops->name : NULL; }
