/* SPDX-License-Identifier: MIT */
/*
 * persist.h -- the persist contract: how bytes reach the pool medium durably.
 *
 * Every write the runtime makes to the pool goes through this layer, on the
 * pool's MAP_SHARED mapping:
 *   vp__pcopy   bulk copy (pages): non-temporal stores on PMEM;
 *   vp__pstore  small copy (records, descriptors): ordinary stores;
 *   vp__pflush  start writing back a range (clwb/clflushopt/clflush on PMEM,
 *               remembered for msync on a file);
 *   vp__pdrain  the ordering point: when it returns 0, every byte copied or
 *               stored and flushed before it is durable. On PMEM: sfence.
 *               On a file: msync(MS_SYNC) of the remembered range.
 * Bytes copied or stored but not yet drained may or may not survive a power
 * failure, each cache line independently. That is the model the crash
 * simulator (tests/crash) materialises: every vp__pdrain call names its
 * crash point, so a failure report says exactly where the crash was.
 *
 * Media: "pmem" (DAX file system: MAP_SYNC accepted), "pmem-forced"
 * (VOLIPMEM_FORCE_PMEM=1, e.g. a pool on /dev/shm standing in for PMEM),
 * "file" (anything else).
 */
#ifndef VP_PERSIST_H
#define VP_PERSIST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum vp_medium { VP_MEDIUM_FILE = 0, VP_MEDIUM_PMEM, VP_MEDIUM_PMEM_FORCED };

struct vp_persist {
	enum vp_medium medium;
	uint8_t *map;       /* MAP_SHARED mapping of the whole pool file */
	size_t map_len;
	uintptr_t lo, hi;   /* file mode: range written since the last drain */
	uint64_t stored;    /* bytes given to vp__pcopy/vp__pstore (vp_stats) */
	uint64_t drains;    /* vp__pdrain calls: fences or msyncs (vp_stats) */
};

/* Test hooks: when set, every store/flush/drain is reported (crash simulator,
 * fault injection). fence() may return non-zero to make the drain fail with
 * that code (I/O error injection). */
struct vp_persist_hooks {
	void (*store)(void *ctx, const void *dst, size_t n);
	void (*flush)(void *ctx, const void *addr, size_t n);
	int (*fence)(void *ctx, const char *point);
	void *ctx;
};
extern struct vp_persist_hooks *vp__persist_hooks;

/* vp__persist_open -- pick the medium for a pool mapped at map (length len),
 * whose file is fd. pmem_capable: the mapping was made with MAP_SYNC. */
void vp__persist_open(struct vp_persist *p, uint8_t *map, size_t len, bool pmem_capable, bool force);
const char *vp__medium_name(enum vp_medium m);

void vp__pcopy(struct vp_persist *p, void *dst, const void *src, size_t n);
void vp__pstore(struct vp_persist *p, void *dst, const void *src, size_t n);
void vp__pflush(struct vp_persist *p, const void *addr, size_t n);
/* pre: point is a string literal naming the crash point. */
int vp__pdrain(struct vp_persist *p, const char *point);

/* VP_CRASH_POINT -- name of a drain site: "file:function:what". */
#define VP_CRASH_POINT(what) (__FILE__ ":" what)

#endif
