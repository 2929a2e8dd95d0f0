/* SPDX-License-Identifier: MIT */
/*
 * persist.c -- write/flush/drain on the pool medium (see persist.h).
 * PMEM: non-temporal stores for bulk copies (the fastest store method
 * measured here, research/host-tracking-and-persistence.md), clwb, else
 * clflushopt, else clflush (chosen by CPUID) for ordinary stores, sfence to
 * order. File: plain copies, msync(MS_SYNC) of the touched range at drain.
 */
#include <cpuid.h>
#include <errno.h>
#include <string.h>
#include <sys/mman.h>

#include <emmintrin.h>

#include "persist/persist.h"
#include "util/util.h"

struct vp_persist_hooks *vp__persist_hooks;

enum flush_insn { FL_CLFLUSH, FL_CLFLUSHOPT, FL_CLWB };
static enum flush_insn flush_insn = FL_CLFLUSH;
static int flush_probed;

static void probe_flush(void)
{
	unsigned a, b, c, d;
	if (__get_cpuid_count(7, 0, &a, &b, &c, &d)) {
		if (b & (1u << 24))
			flush_insn = FL_CLWB;
		else if (b & (1u << 23))
			flush_insn = FL_CLFLUSHOPT;
	}
	flush_probed = 1;
}

const char *vp__medium_name(enum vp_medium m)
{
	switch (m) {
	case VP_MEDIUM_PMEM: return "pmem";
	case VP_MEDIUM_PMEM_FORCED: return "pmem-forced";
	default: return "file";
	}
}

void vp__persist_open(struct vp_persist *p, uint8_t *map, size_t len, bool pmem_capable, bool force)
{
	if (!flush_probed)
		probe_flush();
	p->map = map;
	p->map_len = len;
	p->lo = UINTPTR_MAX;
	p->hi = 0;
	p->medium = pmem_capable ? VP_MEDIUM_PMEM : force ? VP_MEDIUM_PMEM_FORCED : VP_MEDIUM_FILE;
}

static inline bool is_pmem(const struct vp_persist *p) { return p->medium != VP_MEDIUM_FILE; }

static inline void note_range(struct vp_persist *p, const void *addr, size_t n)
{
	uintptr_t a = (uintptr_t)addr;
	if (a < p->lo)
		p->lo = a;
	if (a + n > p->hi)
		p->hi = a + n;
}

/* flush_lines -- write back [addr, addr+n) with the best instruction. */
static void flush_lines(const void *addr, size_t n)
{
	uintptr_t a = (uintptr_t)addr & ~(uintptr_t)(VP_LINE - 1);
	uintptr_t e = (uintptr_t)addr + n;
	switch (flush_insn) {
	case FL_CLWB:
		for (; a < e; a += VP_LINE)
			asm volatile(".byte 0x66; xsaveopt %0" : "+m"(*(volatile char *)a)); /* clwb */
		break;
	case FL_CLFLUSHOPT:
		for (; a < e; a += VP_LINE)
			asm volatile(".byte 0x66; clflush %0" : "+m"(*(volatile char *)a)); /* clflushopt */
		break;
	default:
		for (; a < e; a += VP_LINE)
			asm volatile("clflush %0" : "+m"(*(volatile char *)a));
	}
}

/* nt_copy -- non-temporal copy; pre: dst, src 16-byte aligned, n % 64 == 0. */
static void nt_copy(void *dst, const void *src, size_t n)
{
	__m128i *d = dst;
	const __m128i *s = src;
	for (size_t i = 0; i < n / 16; i += 4) {
		__m128i a = _mm_load_si128(s + i), b = _mm_load_si128(s + i + 1);
		__m128i c = _mm_load_si128(s + i + 2), e = _mm_load_si128(s + i + 3);
		_mm_stream_si128(d + i, a);
		_mm_stream_si128(d + i + 1, b);
		_mm_stream_si128(d + i + 2, c);
		_mm_stream_si128(d + i + 3, e);
	}
}

void vp__pcopy(struct vp_persist *p, void *dst, const void *src, size_t n)
{
	p->stored += n;
	if (is_pmem(p) && !(((uintptr_t)dst | (uintptr_t)src) & 15) && !(n & 63)) {
		nt_copy(dst, src, n);   /* durable at the next sfence */
	} else {
		memcpy(dst, src, n);
		if (is_pmem(p))
			flush_lines(dst, n);
		else
			note_range(p, dst, n);
	}
	if (vp__persist_hooks) {
		vp__persist_hooks->store(vp__persist_hooks->ctx, dst, n);
		vp__persist_hooks->flush(vp__persist_hooks->ctx, dst, n);
	}
}

void vp__pstore(struct vp_persist *p, void *dst, const void *src, size_t n)
{
	p->stored += n;
	memcpy(dst, src, n);
	if (!is_pmem(p))
		note_range(p, dst, n);
	if (vp__persist_hooks)
		vp__persist_hooks->store(vp__persist_hooks->ctx, dst, n);
}

void vp__pflush(struct vp_persist *p, const void *addr, size_t n)
{
	if (is_pmem(p))
		flush_lines(addr, n);
	else
		note_range(p, addr, n);
	if (vp__persist_hooks)
		vp__persist_hooks->flush(vp__persist_hooks->ctx, addr, n);
}

int vp__pdrain(struct vp_persist *p, const char *point)
{
	int rc = 0;
	p->drains++;
	if (is_pmem(p)) {
		_mm_sfence();
	} else if (p->hi > p->lo) {
		uintptr_t lo = p->lo & ~(uintptr_t)(VP_PAGE - 1);
		if (msync((void *)lo, p->hi - lo, MS_SYNC) != 0)
			rc = vp__err(-errno, "msync of the pool failed at %s: %s", point, strerror(errno));
		p->lo = UINTPTR_MAX;
		p->hi = 0;
	}
	if (vp__persist_hooks) {
		int h = vp__persist_hooks->fence(vp__persist_hooks->ctx, point);
		if (h && !rc)
			rc = vp__err(h, "injected failure at %s", point);
	}
	return rc;
}
