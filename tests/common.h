/* SPDX-License-Identifier: MIT */
/*
 * common.h -- helpers shared by the test programs: unique pool paths on
 * /dev/shm (removed at exit), running a function in a child process.
 */
#ifndef VP_TEST_COMMON_H
#define VP_TEST_COMMON_H

#include <glob.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <volipmem.h>

static char vpt_paths[16][256];
static int vpt_npaths;

static void vpt_cleanup(void)
{
	for (int i = 0; i < vpt_npaths; i++) {
		unlink(vpt_paths[i]);
		/* where O_TMPFILE is refused, a child killed while creating
		 * the pool leaves its temporary */
		char pat[sizeof vpt_paths[0] + 16];
		glob_t g;
		snprintf(pat, sizeof pat, "%.255s.creating.*", vpt_paths[i]);
		if (glob(pat, 0, NULL, &g) == 0) {
			for (size_t k = 0; k < g.gl_pathc; k++)
				unlink(g.gl_pathv[k]);
			globfree(&g);
		}
	}
}

/* vpt_pool_path -- a fresh pool path, unlinked now and at exit. */
static inline const char *vpt_pool_path(const char *tag)
{
	static int registered;
	if (!registered) {
		atexit(vpt_cleanup);
		registered = 1;
	}
	int i = vpt_npaths < 16 ? vpt_npaths++ : 15;
	const char *dir = getenv("VP_TEST_DIR") ? getenv("VP_TEST_DIR") : "/dev/shm";
	snprintf(vpt_paths[i], sizeof vpt_paths[i], "%s/vpt-%s-%d.pool", dir, tag, (int)getpid());
	unlink(vpt_paths[i]);
	return vpt_paths[i];
}

/* vpt_in_child -- run fn in a forked child; returns its wait status. */
static inline int vpt_in_child(void (*fn)(void *), void *arg)
{
	fflush(NULL);
	pid_t pid = fork();
	if (pid == 0) {
		fn(arg);
		_exit(0);
	}
	int st = 0;
	waitpid(pid, &st, 0);
	return st;
}

#endif
