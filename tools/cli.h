/* SPDX-License-Identifier: MIT */
/*
 * cli.h -- shared pieces of the volipmem command-line tool: opening a pool
 * file read-only, validating it the way pmap() does, and an in-memory
 * image of the heap as recovery would leave it.
 */
#ifndef VP_CLI_H
#define VP_CLI_H

#include <stdbool.h>
#include <stdint.h>

#include "pool/format.h"

struct cli_pool {
	const char *path;
	int fd;
	bool in_use;              /* another process holds the pool's lock     */
	uint64_t file_size;
	struct vp_superblock sb;
	int sb_rc[2];             /* validation result of copy A and B         */
	char sb_why[2][200];
	uint8_t *map;             /* MAP_PRIVATE (copy-on-write) of the file   */
	struct vp_logrec rec;     /* winning commit record                     */
	int log_rc;               /* vp__log_state / verify result             */
	char log_why[512];
	bool replayed;            /* the committed group was applied in map    */
};

/* cli_open -- open and validate; returns 0 or the first error code (with
 * the message printed). The map is a private copy: nothing reaches the
 * file. */
int cli_open(struct cli_pool *p, const char *path);
void cli_close(struct cli_pool *p);
uint8_t *cli_heap(struct cli_pool *p);
int cli_parse_size(const char *s, uint64_t *out);

int cmd_create(int argc, char **argv);
int cmd_info(int argc, char **argv);
int cmd_check(int argc, char **argv);

#endif
