/* SPDX-License-Identifier: MIT */
/*
 * cmd_grow.c -- `volipmem grow PATH SIZE`: grow the pool's heap in place to
 * SIZE bytes (suffixes K, M, G, T), crash-safely; the heap keeps its
 * address, so pointers stay valid. The same as pmap(PATH, SIZE) in a
 * program: this command maps the pool (which also recovers it) and unmaps
 * it. Steps and crash safety: docs/FORMAT.md, "Growth".
 */
#include <stdio.h>
#include <string.h>

#include <volipmem.h>

#include "cli.h"

int cmd_grow(int argc, char **argv)
{
	uint64_t size;
	if (argc != 3 || cli_parse_size(argv[2], &size)) {
		fprintf(stderr, "usage: volipmem grow PATH SIZE   (SIZE like 256M, 2G: the new heap size)\n");
		return 2;
	}
	const char *path = argv[1];
	struct cli_pool p;
	int rc = cli_open(&p, path);
	uint64_t old = p.pool.sb.heap_size;
	bool busy = p.pool.in_use;
	cli_close(&p);
	if (busy) {
		fprintf(stderr, "volipmem grow: %s is open in another process\n", path);
		return 1;
	}
	if (rc) {
		fprintf(stderr, "volipmem grow: %s: %s\n", path, vp_strerror(rc));
		return 1;
	}
	if (size <= old) {
		printf("%s: heap is already %llu bytes; nothing to do (pools never shrink)\n", path,
		       (unsigned long long)old);
		return size == old ? 0 : 1;
	}
	rc = pmap(path, size, VP_OPEN_ONLY);
	if (rc) {
		fprintf(stderr, "volipmem grow: %s: %s: %s\n", path, vp_strerror(rc), vp_errormsg());
		return 1;
	}
	size_t now = vp_heap_size();
	rc = punmap();
	if (rc) {
		fprintf(stderr, "volipmem grow: %s: %s: %s\n", path, vp_strerror(rc), vp_errormsg());
		return 1;
	}
	printf("grew %s: heap %llu -> %zu bytes, at the same address\n", path, (unsigned long long)old, now);
	return 0;
}
