/* SPDX-License-Identifier: MIT */
/*
 * cmd_create.c -- `volipmem create [--sparse] PATH SIZE`: make a new, empty
 * pool (SIZE bytes of heap; suffixes K, M, G). Fails if PATH exists.
 */
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "heap/heap.h"
#include "pool/pool.h"
#include "util/options.h"
#include "util/util.h"

int cmd_create(int argc, char **argv)
{
	unsigned flags = 0;
	int i = 1;
	for (; i < argc && argv[i][0] == '-'; i++) {
		if (strcmp(argv[i], "--sparse") == 0)
			flags |= VP_SPARSE;
		else {
			fprintf(stderr, "volipmem create: unknown option %s\n", argv[i]);
			return 2;
		}
	}
	uint64_t size;
	if (argc - i != 2 || cli_parse_size(argv[i + 1], &size)) {
		fprintf(stderr, "usage: volipmem create [--sparse] PATH SIZE   (SIZE like 64M, 1G)\n");
		return 2;
	}
	int rc = vp__options_load();
	if (!rc)
		rc = vp__pool_create(argv[i], size, flags, vp__heap_format);
	if (rc) {
		fprintf(stderr, "volipmem create: %s: %s%s%s\n", argv[i], vp_strerror(rc), *vp_errormsg() ? ": " : "",
			vp_errormsg());
		return 1;
	}
	printf("created %s: %llu bytes of heap\n", argv[i], (unsigned long long)size);
	return 0;
}
