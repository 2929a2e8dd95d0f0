/* SPDX-License-Identifier: MIT */
/*
 * cli.h -- shared pieces of the volipmem command-line tool: opening a pool
 * file read-only through the library's own open and log functions, and an
 * in-memory image of the heap as recovery would leave it.
 */
#ifndef VP_CLI_H
#define VP_CLI_H

#include <stdbool.h>
#include <stdint.h>

#include "pool/pool.h"

struct cli_pool {
	struct vp_pool pool;      /* a private copy-on-write mapping (pool.h)  */
	struct vp_logrec rec;     /* winning commit record, before replay      */
	int log_rc;               /* vp__log_check's result                    */
	bool replayed;            /* the committed group was applied in map    */
};

/* cli_open -- open and validate with the functions pmap() uses
 * (vp__pool_open, vp__log_check), then replay a committed group into the
 * private map (vp__log_replay); returns 0 or the first error code, with
 * vp_errormsg() printed. Nothing reaches the file. */
int cli_open(struct cli_pool *p, const char *path);
void cli_close(struct cli_pool *p);
uint8_t *cli_heap(struct cli_pool *p);
int cli_parse_size(const char *s, uint64_t *out);

int cmd_create(int argc, char **argv);
int cmd_info(int argc, char **argv);
int cmd_check(int argc, char **argv);
int cmd_grow(int argc, char **argv);
int cmd_options(int argc, char **argv);
int cmd_upgrade(int argc, char **argv);

#endif
