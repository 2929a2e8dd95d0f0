/* SPDX-License-Identifier: MIT */
/*
 * cmd_options.c -- `volipmem options [--env]`: print the VOLIPMEM_* options
 * table (the one docs/API.md carries, checked by a test), or with --env the
 * value each option takes in this environment, as pmap() would read it.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "util/options.h"
#include "volipmem.h"

int cmd_options(int argc, char **argv)
{
	bool env = argc == 2 && strcmp(argv[1], "--env") == 0;
	if (argc > 2 || (argc == 2 && !env)) {
		fprintf(stderr, "usage: volipmem options [--env]\n");
		return 2;
	}
	if (!env) {
		vp__options_markdown(stdout);
		return 0;
	}
	/* The message is printed by the loader (misuse goes to stderr). */
	if (vp__options_load())
		return 1;
	for (int i = 0; i < VP_OPT_COUNT; i++) {
		const struct vp_option *o = &vp__options[i];
		char val[64];
		vp__option_format(o, &vp__opt, val, sizeof val);
		printf("%-28s %-16s %s\n", o->env, *val ? val : "auto", getenv(o->env) ? "environment" : "default");
	}
	return 0;
}
