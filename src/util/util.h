/* SPDX-License-Identifier: MIT */
/*
 * util.h -- small shared helpers: error reporting (the thread-local
 * vp_errormsg buffer), logging to stderr, time, checksums, page arithmetic.
 * Every other module includes this one.
 */
#ifndef VP_UTIL_H
#define VP_UTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include <x86intrin.h>

#include "volipmem.h"

#define VP_PAGE        4096u
#define VP_PAGE_SHIFT  12
#define VP_LINE        64u

#define vp_likely(x)   __builtin_expect(!!(x), 1)
#define vp_unlikely(x) __builtin_expect(!!(x), 0)

static inline uint64_t vp_align_up(uint64_t v, uint64_t a) { return (v + a - 1) & ~(a - 1); }

/* vp__err -- record a detailed message for vp_errormsg() and return code. */
int vp__err(int code, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* vp__misuse -- like vp__err, and also print the message on stderr: used
 * for API misuse, which must never pass silently. */
int vp__misuse(int code, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* vp__diag -- print "volipmem: ..." on stderr when verbosity >= level
 * (diagnostics; the redo log's functions are vp__log_*). */
void vp__diag(int level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void vp__clear_err(void);
/* vp__cc_note -- [p, p+n) is written by the library itself (or the kernel,
 * or libc on the program's behalf): recorded for the cc tracker, whose
 * store callbacks see only instrumented code. A compare when [p, p+n) is
 * outside the heap or cc is not tracking. Defined in src/track/cc_rt.c. */
void vp__cc_note(const void *p, size_t n);

static inline uint64_t vp__now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* vp__ticks -- a cheap monotonic count for the commit path's step times
 * (vp_stats' ns_collect .. ns_update, ns_stall, ns_pause): rdtsc where the
 * TSC is invariant, else vp__now_ns(). clock_gettime costs ~25 ns in the
 * VMs measured here and rdtsc ~10, and a synchronous commit reads the
 * clock six times (t0..t5; more with a concurrent copy): ~100 ns of a
 * ~0.6 us FAS with clock_gettime. No lfence before rdtsc: rdtsc may then
 * run a few dozen cycles before the instructions ahead of it finish,
 * which blurs where one step ends and the next begins by about that much,
 * but each lfence waited for the pipeline to drain (0-35 ns of a ~1 us
 * synchronous FAS for the six, bench/core A/B). vp__ticks_ns
 * converts a count (or a sum of differences) to ns. pre: vp__ticks_init()
 * ran (pmap). */
extern bool vp__tsc_ok;
void vp__ticks_init(void);
uint64_t vp__ticks_ns(uint64_t ticks);
static inline uint64_t vp__ticks(void)
{
	if (!vp__tsc_ok)
		return vp__now_ns();
	return __rdtsc();
}

/* vp__csum -- the checksum used by every on-media structure (XXH3-64). */
uint64_t vp__csum(const void *p, size_t n);

#endif
