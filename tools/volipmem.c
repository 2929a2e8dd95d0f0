/* SPDX-License-Identifier: MIT */
/*
 * volipmem.c -- the `volipmem` command: one cmd_*.c per subcommand.
 */
#include <stdio.h>
#include <string.h>

#include "cli.h"

static const struct {
	const char *name;
	int (*fn)(int, char **);
	const char *help;
} cmds[] = {
	{"create", cmd_create, "create [--sparse] PATH SIZE   make a new pool with SIZE bytes of heap"},
	{"info", cmd_info, "info PATH                     layout, log state, heap usage, roots"},
	{"check", cmd_check, "check [--force|--repair] PATH verify checksums, log and allocator metadata; --repair fixes what is recoverable"},
	{"grow", cmd_grow, "grow PATH SIZE                grow the heap in place to SIZE bytes (crash-safe)"},
	{"options", cmd_options, "options [--env]               the VOLIPMEM_* options table; --env: their values here"},
	{"upgrade", cmd_upgrade, "upgrade PATH                  convert a format version 1 to 4 pool to version 5 (crash-safe)"},
};

int main(int argc, char **argv)
{
	if (argc >= 2) {
		for (size_t i = 0; i < sizeof cmds / sizeof cmds[0]; i++)
			if (strcmp(argv[1], cmds[i].name) == 0)
				return cmds[i].fn(argc - 1, argv + 1);
	}
	fprintf(stderr, "usage: volipmem COMMAND ...\n");
	for (size_t i = 0; i < sizeof cmds / sizeof cmds[0]; i++)
		fprintf(stderr, "  volipmem %s\n", cmds[i].help);
	return 2;
}
