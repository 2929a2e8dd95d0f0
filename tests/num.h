/* SPDX-License-Identifier: MIT */
/*
 * num.h -- strict numbers from the environment and the command line for
 * the project's test, bench and example programs: a knob set to a value
 * that is not a number in range stops the program with a line naming the
 * knob and the value, instead of atoi()'s silent 0. (The library's own
 * VOLIPMEM_* variables are parsed by the library: src/util/options.c.)
 */
#ifndef VP_TEST_NUM_H
#define VP_TEST_NUM_H

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

/* vpt_uint -- `s` as an unsigned number in [min, max] (decimal, 0x hex or
 * 0 octal, as strtoull(..., 0), with no sign, blank or trailing
 * character), else a message "PROG: WHAT="S" is not ..." and exit(2).
 * `what` names the knob: an environment variable, "--flag" or "argument N". */
static inline unsigned long long vpt_uint(const char *prog, const char *what, const char *s,
					  unsigned long long min, unsigned long long max)
{
	char *end;
	unsigned long long v = 0;
	errno = 0;
	if (isdigit((unsigned char)s[0]))
		v = strtoull(s, &end, 0);
	if (!isdigit((unsigned char)s[0]) || errno || *end || v < min || v > max) {
		fprintf(stderr, "%s: %s=\"%s\" is not a whole number from %llu to %llu\n", prog, what, s, min,
			max);
		exit(2);
	}
	return v;
}

/* vpt_env_uint -- vpt_uint of environment variable `name`, or `dflt` when
 * it is unset. */
static inline unsigned long long vpt_env_uint(const char *prog, const char *name, unsigned long long dflt,
					      unsigned long long min, unsigned long long max)
{
	const char *s = getenv(name);
	return s ? vpt_uint(prog, name, s, min, max) : dflt;
}

/* vpt_double -- `s` as a finite number >= 0 (strtod's syntax, nothing
 * after it), else the same message and exit(2). */
static inline double vpt_double(const char *prog, const char *what, const char *s)
{
	char *end;
	errno = 0;
	double v = strtod(s, &end);
	if (end == s || *end || errno || !(v >= 0 && v <= 1e300)) {
		fprintf(stderr, "%s: %s=\"%s\" is not a number >= 0\n", prog, what, s);
		exit(2);
	}
	return v;
}

#endif
