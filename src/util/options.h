/* SPDX-License-Identifier: MIT */
/*
 * options.h -- the one table of runtime options. Each is read from a
 * VOLIPMEM_<NAME> environment variable at pmap() (see docs/API.md) and may
 * be set from code before that.
 */
#ifndef VP_OPTIONS_H
#define VP_OPTIONS_H

#include <stdbool.h>
#include <stdint.h>

struct vp_options {
	char tracker[32];        /* VOLIPMEM_TRACKER: uffd|mprotect|full ("" = auto) */
	bool force_pmem;         /* VOLIPMEM_FORCE_PMEM: cache-line flushes, no msync */
	unsigned interval_ms;    /* VOLIPMEM_COMMIT_INTERVAL_MS: 0 = synchronous      */
	bool interval_set;       /* interval chosen by env or vp_set_durability       */
	uint64_t heap_base;      /* VOLIPMEM_HEAP_BASE: address for new pools         */
	uint64_t reserve;        /* VOLIPMEM_RESERVE: address space per heap (bytes)  */
	int verbose;             /* VOLIPMEM_VERBOSE: 0 quiet, 1 notices, 2 debug     */
	bool checksum_pages;     /* VOLIPMEM_CHECKSUM_PAGES: per-page log checksums   */
	unsigned sticky;         /* VOLIPMEM_STICKY_PAGES: pages uffd keeps unarmed    */
	unsigned copy_threads;   /* VOLIPMEM_COPY_THREADS: threads copying a large set */
};

extern struct vp_options vp__opt;

/* vp__options_load -- (re)read the environment; returns 0 or a code. */
int vp__options_load(void);

#define VP_DEFAULT_HEAP_BASE 0x566000000000ull
#define VP_DEFAULT_RESERVE   (64ull << 30)

#endif
