/* SPDX-License-Identifier: MIT */
/*
 * clock.c -- the commit path's step clock (util.h, vp__ticks): the TSC
 * where the CPU says it runs at a constant rate, converted to nanoseconds
 * only when vp_stats() reports. The rate is taken over the process's
 * lifetime so far (TSC and CLOCK_MONOTONIC read at the first use and
 * again at each conversion), so no calibration loop runs at start; the
 * two reads of each pair are tens of ns apart, an error of 5e-5 over 1 ms
 * and less as the process runs on.
 */
#include <cpuid.h>
#include <pthread.h>

#include "util/util.h"

bool vp__tsc_ok;
static uint64_t tsc0, ns0;
static pthread_once_t once = PTHREAD_ONCE_INIT;

static void init(void)
{
	unsigned a, b, c, d;
	/* CPUID 0x80000007 EDX bit 8: invariant TSC (Intel SDM vol. 2A,
	 * CPUID; AMD APM vol. 3, "TscInvariant"). */
	if (__get_cpuid(0x80000000, &a, &b, &c, &d) && a >= 0x80000007 &&
	    __get_cpuid(0x80000007, &a, &b, &c, &d) && (d & (1u << 8))) {
		ns0 = vp__now_ns();
		tsc0 = __rdtsc();
		vp__tsc_ok = true;
	}
}

void vp__ticks_init(void)
{
	pthread_once(&once, init);
}

uint64_t vp__ticks_ns(uint64_t ticks)
{
	if (!vp__tsc_ok || !ticks)
		return ticks;
	uint64_t ns = vp__now_ns(), tsc = __rdtsc();
	if (tsc <= tsc0 || ns <= ns0)
		return ticks;
	return (uint64_t)((unsigned __int128)ticks * (ns - ns0) / (tsc - tsc0));
}
