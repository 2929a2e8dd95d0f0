/* SPDX-License-Identifier: MIT */
/*
 * cmd_check.c -- `volipmem check [--force] PATH`: verify everything the
 * format promises and say what was checked. Exit 0: consistent; 1: a
 * problem (printed precisely); 2: usage, or the pool is open in another
 * process (its file may be mid-commit; --force checks anyway). Read-only.
 */
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "heap/heap.h"
#include "runtime.h"

int cmd_check(int argc, char **argv)
{
	bool force = false;
	const char *path = NULL;
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--force") == 0)
			force = true;
		else if (!path && argv[i][0] != '-')
			path = argv[i];
		else {
			fprintf(stderr, "usage: volipmem check [--force] PATH\n");
			return 2;
		}
	}
	if (!path) {
		fprintf(stderr, "usage: volipmem check [--force] PATH\n");
		return 2;
	}
	struct cli_pool p;
	int rc = cli_open(&p, path);
	if (p.in_use && !force) {
		fprintf(stderr, "volipmem check: %s is open in another process; its file may be mid-commit. "
				"Close it first, or use --force.\n", path);
		cli_close(&p);
		return 2;
	}
	if (rc) {
		fprintf(stderr, "volipmem check: %s: FAILED: %s\n", path, vp_strerror(rc));
		cli_close(&p);
		return 1;
	}
	printf("superblock:   copy A %s, copy B %s; version %u; layout fits the file (%llu bytes)\n",
	       p.sb_rc[0] ? p.sb_why[0] : "ok", p.sb_rc[1] ? p.sb_why[1] : "ok", p.sb.version,
	       (unsigned long long)p.file_size);
	if (p.rec.state == VP_LOG_COMMITTED)
		printf("redo log:     group %llu committed, %llu pages: descriptors and every slot checksum ok "
		       "(checked as replayed)\n",
		       (unsigned long long)p.rec.seq, (unsigned long long)p.rec.npages);
	else
		printf("redo log:     commit records ok, group %llu applied\n", (unsigned long long)p.rec.seq);
	struct vp_heap_report rep;
	char err[400];
	rc = vp__heap_check(cli_heap(&p), p.sb.heap_size, &rep, err, sizeof err);
	if (rc) {
		fprintf(stderr, "volipmem check: %s: FAILED: heap metadata: %s\n", path, err);
		cli_close(&p);
		return 1;
	}
	printf("heap:         header ok; %llu pages tile exactly (%llu runs, %llu large blocks, %llu free spans); "
	       "bins and class lists complete; used bytes match (%llu)\n",
	       (unsigned long long)rep.top, (unsigned long long)rep.runs, (unsigned long long)rep.large_blocks,
	       (unsigned long long)rep.free_spans, (unsigned long long)rep.used_bytes);
	printf("roots:        %llu, each an allocated block of the right size\n", (unsigned long long)rep.roots);
	printf("%s: OK%s\n", path, (p.sb_rc[0] || p.sb_rc[1]) ? " (one superblock copy damaged, the other valid)" : "");
	cli_close(&p);
	return (p.sb_rc[0] || p.sb_rc[1]) ? 1 : 0;
}
