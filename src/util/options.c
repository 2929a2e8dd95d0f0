/* SPDX-License-Identifier: MIT */
/*
 * options.c -- VOLIPMEM_* environment variables, parsed once per pmap().
 * The default heap address 0x566000000000 lies above where PIE binaries and
 * their brk heap are placed with ASLR (0x5555...-0x5655...), inside the
 * application range both ASan and TSan allow on x86-64, and far below the
 * top-down mmap area, so normal, ASan and TSan builds all get it.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/options.h"
#include "util/util.h"

struct vp_options vp__opt = {
	.heap_base = VP_DEFAULT_HEAP_BASE,
	.reserve = VP_DEFAULT_RESERVE,
	.checksum_pages = true,
	.sticky = 64,
	.copy_threads = 2,
};

static int parse_u64(const char *name, const char *s, uint64_t *out)
{
	char *end;
	errno = 0;
	unsigned long long v = strtoull(s, &end, 0);
	if (errno || end == s || *end)
		return vp__misuse(VP_E_INVAL, "environment variable %s=\"%s\" is not a number", name, s);
	*out = v;
	return 0;
}

static int parse_bool(const char *s) { return !(strcmp(s, "0") == 0 || strcmp(s, "") == 0 || strcmp(s, "no") == 0); }

int vp__options_load(void)
{
	const char *s;
	uint64_t v = 0;   /* set by parse_u64 on success; gcc -O3 cannot see it */
	int rc;

	if ((s = getenv("VOLIPMEM_VERBOSE")))
		vp__opt.verbose = atoi(s);
	if ((s = getenv("VOLIPMEM_TRACKER"))) {
		if (strlen(s) >= sizeof vp__opt.tracker)
			return vp__misuse(VP_E_TRACKER, "VOLIPMEM_TRACKER=\"%s\" is too long", s);
		strcpy(vp__opt.tracker, s);
	}
	if ((s = getenv("VOLIPMEM_FORCE_PMEM")))
		vp__opt.force_pmem = parse_bool(s);
	if ((s = getenv("VOLIPMEM_CHECKSUM_PAGES")))
		vp__opt.checksum_pages = parse_bool(s);
	if ((s = getenv("VOLIPMEM_COMMIT_INTERVAL_MS"))) {
		if ((rc = parse_u64("VOLIPMEM_COMMIT_INTERVAL_MS", s, &v)))
			return rc;
		if (v > 3600000)
			return vp__misuse(VP_E_INVAL, "VOLIPMEM_COMMIT_INTERVAL_MS=%s is above one hour", s);
		vp__opt.interval_ms = (unsigned)v;
		vp__opt.interval_set = true;
	}
	if ((s = getenv("VOLIPMEM_STICKY_PAGES"))) {
		if ((rc = parse_u64("VOLIPMEM_STICKY_PAGES", s, &v)))
			return rc;
		if (v > 4096)
			return vp__misuse(VP_E_INVAL, "VOLIPMEM_STICKY_PAGES=%s is above 4096", s);
		vp__opt.sticky = (unsigned)v;
	}
	if ((s = getenv("VOLIPMEM_COPY_THREADS"))) {
		if ((rc = parse_u64("VOLIPMEM_COPY_THREADS", s, &v)))
			return rc;
		if (v < 1 || v > 2)
			return vp__misuse(VP_E_INVAL, "VOLIPMEM_COPY_THREADS=%s must be 1 or 2", s);
		vp__opt.copy_threads = (unsigned)v;
	}
	if ((s = getenv("VOLIPMEM_HEAP_BASE"))) {
		if ((rc = parse_u64("VOLIPMEM_HEAP_BASE", s, &v)))
			return rc;
		if (v == 0 || v % (2u << 20))
			return vp__misuse(VP_E_INVAL, "VOLIPMEM_HEAP_BASE=%s must be a non-zero multiple of 2 MiB", s);
		vp__opt.heap_base = v;
	}
	if ((s = getenv("VOLIPMEM_RESERVE"))) {
		if ((rc = parse_u64("VOLIPMEM_RESERVE", s, &v)))
			return rc;
		vp__opt.reserve = vp_align_up(v, 2u << 20);
	}
	return 0;
}
