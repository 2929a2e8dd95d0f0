/* SPDX-License-Identifier: MIT */
/*
 * cc_rt.c -- the cc tracker's store callbacks: what a program built with
 * `pkg-config --cflags volipmem-cc` calls at each store.
 *
 * The pass plugin (tools/cc/pass.cpp) checks every store inline against
 * __vp_cc_window (vp__cc's base and len) and calls __vp_cc_store(addr, n)
 * for one in the heap; it calls __vp_cc_range(dst, len) before every
 * memcpy/memmove/memset intrinsic (struct copies and constant-size copies
 * the back end turns into plain moves) and atomic read-modify-write, and
 * __vp_cc_mark() from each instrumented module's constructor. Programs
 * built with the earlier flags, clang's -fsanitize-coverage=bb,trace-stores,
 * call __sanitizer_cov_storeN(addr) before every store instead: still
 * defined below.
 *
 * A store outside the heap costs one compare (addr - base < len; len is 0
 * while no pool is tracked). A store inside sets the bit of
 * its 64-byte line in the page's word of the line map; the first line of a
 * page since the last collection pushes the page on the list of newly
 * touched pages, so collection walks only what was written:
 *   fetch_or returns 0 for exactly one writer per page per collection
 *   -> i = fetch_add(&nlist) -> list[i] = page + 1 (0 means "not yet").
 * Writers run concurrently (inside FASes); the collector (cc.c) runs at a
 * quiescent point and waits the few instructions for a slot that a
 * racing writer outside any FAS has claimed but not filled. A list that
 * overflows (only possible with such racing writers) sets `overflow` and
 * the collector scans the whole line map instead.
 */
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "track/cc.h"
#include "util/util.h"

#define VP_EXPORT __attribute__((visibility("default")))

struct vp_cc_map vp__cc = {0};
/* The pass plugin's inline check reads {base, len}, the first two fields,
 * under this name. */
VP_EXPORT extern struct vp_cc_map __vp_cc_window __attribute__((alias("vp__cc")));
static atomic_bool marked;

/* push -- the page got its first line since the last collection. */
static void push(uint64_t pg)
{
	size_t i = atomic_fetch_add_explicit(&vp__cc.nlist, 1, memory_order_relaxed);
	if (vp_likely(i < vp__cc.cap))
		atomic_store_explicit(&vp__cc.list[i], pg + 1, memory_order_release);
	else
		atomic_store_explicit(&vp__cc.overflow, true, memory_order_relaxed);
}

/* note_mask -- lines m of page pg were (are about to be) written. */
static inline void note_mask(uint64_t pg, uint64_t m)
{
	_Atomic uint64_t *w = &vp__cc.live[pg];
	if ((atomic_load_explicit(w, memory_order_relaxed) & m) == m)
		return;
	if (atomic_fetch_or_explicit(w, m, memory_order_relaxed) == 0)
		push(pg);
}

/* note_span -- [off, off+n) of the heap, any length; pre: off < len. */
static void note_span(uintptr_t off, size_t n)
{
	if (n > vp__cc.len - off)
		n = vp__cc.len - off;
	uintptr_t end = off + n;
	while (off < end) {
		uint64_t pg = off >> VP_PAGE_SHIFT;
		uintptr_t pend = (pg + 1) << VP_PAGE_SHIFT;
		uintptr_t e = end < pend ? end : pend;
		unsigned l0 = (unsigned)(off >> 6) & 63, l1 = (unsigned)((e - 1) >> 6) & 63;
		uint64_t m = l1 == 63 ? ~0ull << l0 : ((1ull << (l1 + 1)) - 1) & (~0ull << l0);
		note_mask(pg, m);
		off = e;
	}
}

void vp__cc_note(const void *p, size_t n)
{
	uintptr_t off = (uintptr_t)p - vp__cc.base;
	if (vp_unlikely(off < vp__cc.len) && n)
		note_span(off, n);
}

/* A store of n bytes at a: one line unless it crosses a line boundary.
 * Checked against the window here, also on the pass plugin's slow path,
 * whose inline check saw it open: punmap on another thread may have
 * closed it since. */
static inline void note_store(const void *a, uint64_t n)
{
	uintptr_t off = (uintptr_t)a - vp__cc.base;
	if (vp_likely(off >= vp__cc.len) || !n)
		return;
	if (vp_likely((off & 63) + n <= 64))
		note_mask(off >> VP_PAGE_SHIFT, 1ull << ((off >> 6) & 63));
	else
		note_span(off, n);
}

/* The sanitizer-coverage callbacks (-fsanitize-coverage=trace-stores). */
#define STORE_CB(n) \
	VP_EXPORT void __sanitizer_cov_store##n(void *a) { note_store(a, n); }
STORE_CB(1)
STORE_CB(2)
STORE_CB(4)
STORE_CB(8)
STORE_CB(16)

/* __vp_cc_store -- the pass plugin's slow path: a store of n bytes whose
 * address its inline check found in the heap. */
VP_EXPORT void __vp_cc_store(void *a, uint64_t n) { note_store(a, n); }

/* No trace-pc-guard callbacks: -fsanitize-coverage=bb,trace-stores calls
 * none, and libFuzzer (the fuzz build links this library) defines them. */

VP_EXPORT void __vp_cc_range(void *dst, uint64_t n) { vp__cc_note(dst, (size_t)n); }
VP_EXPORT void __vp_cc_mark(void) { atomic_store(&marked, true); }

bool vp__cc_instrumented(void) { return atomic_load(&marked); }
