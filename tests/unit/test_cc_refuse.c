/* SPDX-License-Identifier: MIT */
/*
 * test_cc_refuse.c -- a program built without the cc instrumentation asks
 * for VOLIPMEM_TRACKER=cc: pmap refuses with VP_E_TRACKER and a message
 * that says how to build with it, and leaves no pool behind.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "../common.h"

static void test_refused(void **state)
{
	(void)state;
	setenv("VOLIPMEM_TRACKER", "cc", 1);
	const char *path = vpt_pool_path("cc-refuse");
	assert_int_equal(pmap(path, 1u << 22, 0), VP_E_TRACKER);
	const char *msg = vp_errormsg();
	if (!strstr(msg, "cc") || !strstr(msg, "pkg-config --cflags --libs volipmem-cc"))
		fail_msg("unclear refusal: %s", msg);
	assert_int_not_equal(access(path, F_OK), 0);
	assert_null(vp_heap_base());
}

int main(void)
{
	const struct CMUnitTest tests[] = {cmocka_unit_test(test_refused)};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
