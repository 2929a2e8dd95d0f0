/* SPDX-License-Identifier: MIT */
/*
 * cmd_check.c -- `volipmem check [--force] [--repair] PATH`: verify
 * everything the format promises and say what was checked. Exit 0:
 * consistent; 1: a problem (printed precisely); 2: usage, or the pool is
 * open in another process (its file may be mid-commit; --force checks
 * anyway). Read-only unless --repair.
 *
 * --repair fixes what can be fixed without guessing, each step crash-safe:
 *   - a damaged superblock copy is rewritten from the valid one;
 *   - a committed log group is replayed (what pmap() would do);
 *   - inconsistent allocator metadata is rebuilt from the heap's block
 *     tiling (src/heap/repair.c) and written through the redo log, so a crash
 *     during repair leaves the old or the repaired heap, never a mix.
 * It refuses, writing nothing, when the damage hides what the program
 * owns: no valid superblock, a corrupt committed log group, a damaged heap
 * header, broken block tiling, or damaged roots.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "cli.h"
#include "commit/log.h"
#include "heap/heap.h"
#include "track/track.h"
#include "util/options.h"
#include "util/util.h"

/* commit_pages -- write the changed pages of img (the repaired heap) to
 * the pool through the redo log, exactly like a commit: group seq + 1. */
static int commit_pages(struct vp_pool *pool, uint64_t seq, const uint8_t *img, const struct vp_pageset *ws)
{
	struct vp_log lg = {.pool = pool, .heap = img};
	uint64_t used = 0;
	int rc;
	if (!ws->n)
		return 0;
	if (!(rc = vp__log_prepare(&lg, ws)) && !(rc = vp__log_copy(&lg, ws, &used)) && used &&
	    !(rc = vp__log_commit(&lg, seq + 1, used)) && !(rc = vp__log_apply(&lg, used)))
		rc = vp__log_retire(&lg);
	vp__log_free(&lg);
	return rc;
}

/* repair -- the write part of --repair; see the file comment. The new heap
 * metadata is computed on p's private, replayed copy first: a refusal
 * writes nothing. Closes p. */
static int repair(struct cli_pool *p, const char *path, bool fix_sb, bool fix_heap)
{
	struct vp_pool pool = {.fd = -1};
	uint8_t *img = NULL;
	struct vp_pageset ws = {0};
	struct vp_heap_repair rep;
	struct vp_logrec rec;
	int rc = -1;
	if (fix_heap) {
		char why[400];
		if (!(img = malloc(p->pool.sb.heap_size)))
			goto out;
		memcpy(img, cli_heap(p), p->pool.sb.heap_size);
		if ((rc = vp__heap_repair(img, p->pool.sb.heap_size, &rep, why, sizeof why))) {
			fprintf(stderr, "volipmem check --repair: %s: REFUSED, nothing written: %s\n", path, why);
			goto out;
		}
	}
	cli_close(p);
	if ((rc = vp__options_load()) || (rc = vp__pool_open(&pool, path, VP_POOL_RW)) ||
	    (rc = vp__log_check(&pool, &rec))) {
		fprintf(stderr, "volipmem check --repair: %s: %s\n", path, vp_errormsg());
		goto out;
	}
	if (fix_sb) {
		for (int i = 0; i < 2; i++) {
			if (pool.sb_rc[i] == 0)
				continue;
			if ((rc = vp__sb_write(&pool, i, &pool.sb))) {
				fprintf(stderr, "volipmem check --repair: %s\n", vp_errormsg());
				goto out;
			}
			printf("repaired:     superblock copy %c rewritten from copy %c\n", 'A' + i, 'B' - i);
		}
	}
	if ((rc = vp__log_replay(&pool, &rec))) {
		fprintf(stderr, "volipmem check --repair: %s: recovery failed: %s\n", path, vp_errormsg());
		goto out;
	}
	if (fix_heap) {
		const uint8_t *home = pool.map + pool.sb.home_off;
		for (uint64_t pg = 0; pg < pool.sb.heap_size / VP_PAGE; pg++)
			if (memcmp(img + pg * VP_PAGE, home + pg * VP_PAGE, VP_PAGE) != 0 &&
			    vp__pageset_push(&ws, pg) != 0) {
				rc = -1;
				goto out;
			}
		if ((rc = commit_pages(&pool, rec.seq, img, &ws))) {
			fprintf(stderr, "volipmem check --repair: %s: writing the repaired heap failed: %s\n", path,
				vp_errormsg());
			goto out;
		}
		printf("repaired:     allocator metadata rebuilt from the block tiling: %llu free spans relinked "
		       "(%llu merged), %llu runs and %llu free-list links fixed, %llu pages returned above top, "
		       "%zu pages written through the redo log\n",
		       (unsigned long long)rep.spans, (unsigned long long)rep.spans_merged,
		       (unsigned long long)rep.runs_fixed, (unsigned long long)rep.links_fixed,
		       (unsigned long long)rep.top_lowered, ws.n);
	}
out:
	cli_close(p);
	vp__pageset_free(&ws);
	free(img);
	vp__pool_close(&pool);
	return rc;
}

int cmd_check(int argc, char **argv)
{
	bool force = false, fix = false;
	const char *path = NULL;
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--force") == 0)
			force = true;
		else if (strcmp(argv[i], "--repair") == 0)
			fix = true;
		else if (!path && argv[i][0] != '-')
			path = argv[i];
		else {
			fprintf(stderr, "usage: volipmem check [--force] [--repair] PATH\n");
			return 2;
		}
	}
	if (!path || (fix && force)) {
		fprintf(stderr, "usage: volipmem check [--force] [--repair] PATH   (--repair needs the pool closed)\n");
		return 2;
	}
	struct cli_pool p;
	int rc = cli_open(&p, path);
	if (p.pool.in_use && !force) {
		fprintf(stderr, "volipmem check: %s is open in another process; its file may be mid-commit. "
				"Close it first, or use --force.\n", path);
		cli_close(&p);
		return 2;
	}
	if (rc) {
		fprintf(stderr, "volipmem check: %s: FAILED: %s\n", path, vp_strerror(rc));
		if (fix)
			fprintf(stderr, "volipmem check --repair: %s: REFUSED, nothing written: %s\n", path,
				p.log_rc ? "the redo log is damaged (commit records or the committed group), so whether the last group committed is unknown"
				: "no valid superblock copy: the pool's layout is unknown");
		cli_close(&p);
		return 1;
	}
	printf("superblock:   copy A %s, copy B %s; version %u; layout fits the file (%llu bytes)\n",
	       p.pool.sb_rc[0] ? p.pool.sb_why[0] : "ok", p.pool.sb_rc[1] ? p.pool.sb_why[1] : "ok", p.pool.sb.version,
	       (unsigned long long)p.pool.file_size);
	if (p.rec.state == VP_LOG_COMMITTED)
		printf("redo log:     group %llu committed, %llu pages at slots %u..%llu: descriptors and every slot "
		       "checksum ok (checked as replayed)\n",
		       (unsigned long long)p.rec.seq, (unsigned long long)p.rec.npages, p.rec.base,
		       (unsigned long long)(p.rec.base + p.rec.npages - 1));
	else
		printf("redo log:     commit records ok, group %llu applied\n", (unsigned long long)p.rec.seq);
	struct vp_heap_report rep;
	char err[400];
	rc = vp__heap_check(cli_heap(&p), p.pool.sb.heap_size, &rep, err, sizeof err);
	bool sb_bad = p.pool.sb_rc[0] || p.pool.sb_rc[1];
	if (fix && (rc || sb_bad || p.replayed)) {
		if (rc)
			fprintf(stderr, "volipmem check: %s: heap metadata: %s\n", path, err);
		if (repair(&p, path, sb_bad, rc != 0))
			return 1;
		printf("re-checking %s after repair:\n", path);
		char *args[] = {"check", (char *)path, NULL};
		return cmd_check(2, args);
	}
	if (rc) {
		fprintf(stderr, "volipmem check: %s: FAILED: heap metadata: %s\n", path, err);
		cli_close(&p);
		return 1;
	}
	printf("heap:         header ok; %llu pages tile exactly (%llu runs, %llu large blocks, %llu free spans); "
	       "bins and class lists complete; %llu bytes in use\n",
	       (unsigned long long)rep.top, (unsigned long long)rep.runs, (unsigned long long)rep.large_blocks,
	       (unsigned long long)rep.free_spans, (unsigned long long)rep.used_bytes);
	if (rep.growth_pending)
		printf("growth:       pending: %llu new pages join the heap at the next pmap (its heap side did not run yet)\n",
		       (unsigned long long)rep.growth_pending);
	printf("roots:        %llu, each an allocated block of the right size\n", (unsigned long long)rep.roots);
	printf("%s: OK%s\n", path, (p.pool.sb_rc[0] || p.pool.sb_rc[1]) ? " (one superblock copy damaged, the other valid)" : "");
	cli_close(&p);
	return (p.pool.sb_rc[0] || p.pool.sb_rc[1]) ? 1 : 0;
}
