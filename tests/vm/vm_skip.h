/* SPDX-License-Identifier: MIT */
/*
 * vm_skip.h -- how the KVM test programs say that they cannot run here:
 * one line "PROG: SKIP: why" and exit 77 (CTest: Skipped). With
 * VP_VM_REQUIRE_KVM=1 (set for the .qemu twins, which run where a standard
 * KVM must exist) the same line is a failure, so a probe that wrongly
 * refused the qemu guest's KVM could not pass as a skip.
 */
#ifndef VM_SKIP_H
#define VM_SKIP_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* vm_skip -- end the program: Skipped, or failed under VP_VM_REQUIRE_KVM=1. */
static inline __attribute__((noreturn)) void vm_skip(const char *prog, const char *why)
{
	const char *req = getenv("VP_VM_REQUIRE_KVM");
	if (req && strcmp(req, "1") == 0) {
		printf("%s: FAIL: a usable KVM is required here (VP_VM_REQUIRE_KVM=1): %s\n", prog, why);
		fflush(stdout);
		exit(1);
	}
	printf("%s: SKIP: %s\n", prog, why);
	fflush(stdout);
	exit(77);
}

#endif
