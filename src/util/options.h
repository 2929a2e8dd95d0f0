/* SPDX-License-Identifier: MIT */
/*
 * options.h -- the one table of runtime options. Each is read from a
 * VOLIPMEM_<NAME> environment variable at pmap() and may be set from code
 * before that. The table (options.c) holds, per option, its variable, type,
 * allowed range, default and help line; one loop parses them all, and the
 * same table prints docs/API.md's options table (`volipmem options`).
 */
#ifndef VP_OPTIONS_H
#define VP_OPTIONS_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

/* The values in effect. Code reads the fields directly; a field written
 * from code is followed by vp__option_from_code() (see its comment). */
struct vp_options {
	char tracker[32];        /* VOLIPMEM_TRACKER: uffd|mprotect|full|vm-* ("" = auto) */
	bool force_pmem;         /* VOLIPMEM_FORCE_PMEM: cache-line flushes, no msync */
	unsigned interval_ms;    /* VOLIPMEM_COMMIT_INTERVAL_MS: 0 = synchronous      */
	uint64_t heap_base;      /* VOLIPMEM_HEAP_BASE: address for new pools         */
	uint64_t reserve;        /* VOLIPMEM_RESERVE: address space per heap (bytes)  */
	int verbose;             /* VOLIPMEM_VERBOSE: 0 quiet, 1 notices, 2 debug     */
	bool checksum_pages;     /* VOLIPMEM_CHECKSUM_PAGES: per-page log checksums   */
	unsigned sticky;         /* VOLIPMEM_STICKY_PAGES: pages uffd keeps unarmed    */
	unsigned copy_threads;   /* VOLIPMEM_COPY_THREADS: threads copying a large set */
	bool verify;             /* VOLIPMEM_VERIFY: check the tracker at each commit */
	char concurrent_copy[8]; /* VOLIPMEM_CONCURRENT_COPY: auto|on|off ("" = auto) */
	bool snapshot;           /* VOLIPMEM_SNAPSHOT: open the gate before step 3a */
	unsigned spin_us;        /* VOLIPMEM_SPIN_US: spin before sleeping on a commit */
	unsigned shadow_pages;   /* VOLIPMEM_SHADOW_PAGES: committed images kept in DRAM */
};

extern struct vp_options vp__opt;

/* One id per table row, in the order of docs/API.md's table. */
enum vp_option_id {
	VP_OPT_TRACKER,
	VP_OPT_COMMIT_INTERVAL_MS,
	VP_OPT_FORCE_PMEM,
	VP_OPT_HEAP_BASE,
	VP_OPT_RESERVE,
	VP_OPT_STICKY_PAGES,
	VP_OPT_COPY_THREADS,
	VP_OPT_CONCURRENT_COPY,
	VP_OPT_SNAPSHOT,
	VP_OPT_SPIN_US,
	VP_OPT_SHADOW_PAGES,
	VP_OPT_CHECKSUM_PAGES,
	VP_OPT_VERIFY,
	VP_OPT_VERBOSE,
	VP_OPT_COUNT
};

enum vp_option_type {
	VP_OPTT_BOOL,            /* 0/1 (also no/yes, false/true, off/on; "" = 0) */
	VP_OPTT_UINT,            /* decimal, 0x hex or 0 octal, within [min, max]  */
	VP_OPTT_STR,             /* a name; checked by its user (the tracker list) */
};

/* Flags of a VP_OPTT_UINT row. */
#define VP_OPTF_MULTIPLE 1u      /* the value must be a multiple of unit      */
#define VP_OPTF_ROUND_UP 2u      /* the value is rounded up to a multiple     */
#define VP_OPTF_BYTES    4u      /* shown as a size (64 GiB)                  */
#define VP_OPTF_HEX      8u      /* shown in hex (an address)                 */

/* struct vp_option -- one row of the table. */
struct vp_option {
	const char *env;         /* VOLIPMEM_<NAME>                               */
	enum vp_option_type type;
	size_t off, size;        /* the field in struct vp_options                */
	uint64_t min, max;       /* VP_OPTT_UINT: allowed range, inclusive        */
	uint64_t unit;           /* with VP_OPTF_MULTIPLE or VP_OPTF_ROUND_UP     */
	unsigned flags;          /* VP_OPTF_*                                     */
	const char *allowed;     /* VP_OPTT_STR: the accepted values, as text     */
	const char *const *choices; /* VP_OPTT_STR: NULL-terminated list of the only
	                             values accepted ("" too), or NULL: any   */
	const char *default_doc; /* shown instead of the default value, if set    */
	const char *help;        /* one line: the table's "meaning" column        */
};

extern const struct vp_option vp__options[VP_OPT_COUNT];

/* vp__options_load -- read every VOLIPMEM_* option of the table from the
 * environment, at each pmap() (and by the CLI). A variable that is present
 * sets its option; an absent one leaves a value set from code since the last
 * load, and restores the default otherwise. Returns 0, or VP_E_INVAL /
 * VP_E_TRACKER with vp_errormsg() naming the variable, its value and what
 * is allowed; then no option has changed. */
int vp__options_load(void);

/* vp__option_from_code -- record that code set this option's field (e.g.
 * vp_set_durability): the value then survives the next loads while its
 * variable is absent, instead of returning to the default. */
void vp__option_from_code(enum vp_option_id id);

/* vp__option_format -- an option's value in o's display form. */
void vp__option_format(const struct vp_option *o, const struct vp_options *from, char *buf, size_t len);

/* vp__options_markdown -- print the options table of docs/API.md. */
void vp__options_markdown(FILE *out);

#define VP_DEFAULT_HEAP_BASE 0x566000000000ull
#define VP_DEFAULT_RESERVE   (64ull << 30)

#endif
