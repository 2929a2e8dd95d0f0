/* SPDX-License-Identifier: MIT */
/*
 * check.h -- CHECK(cond, fmt, ...) for the standalone pool tests in
 * tests/sim/ (growth, repair, refusal, creation): on a failed condition,
 * print the test's name, the line and the message, call the test's
 * vpt_check_cleanup() (which removes its pool files) and exit 1.
 * The includer defines VPT_TEST_NAME first and vpt_check_cleanup anywhere.
 */
#ifndef VP_TEST_SIM_CHECK_H
#define VP_TEST_SIM_CHECK_H

#include <stdio.h>
#include <stdlib.h>

static void vpt_check_cleanup(void);

#define CHECK(c, ...)                                                                  \
	do {                                                                           \
		if (!(c)) {                                                            \
			fprintf(stderr, VPT_TEST_NAME ": FAILED (line %d): ", __LINE__); \
			fprintf(stderr, __VA_ARGS__);                                  \
			fputc('\n', stderr);                                           \
			vpt_check_cleanup();                                           \
			exit(1);                                                       \
		}                                                                      \
	} while (0)

#endif
