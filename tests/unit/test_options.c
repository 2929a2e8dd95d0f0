/* SPDX-License-Identifier: MIT */
/*
 * test_options.c -- the VOLIPMEM_* options table and its parser: the
 * documented defaults, every accepted spelling at and inside the range
 * edges, bad values (each refused with a message naming the variable, the
 * value and what is allowed, and no option changed), where a value comes
 * from (environment over code, code over default, an unset variable back to
 * its default), and pmap refusing a bad value before creating its pool.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "../common.h"
#include "util/options.h"

#define MiB (1ull << 20)
#define GiB (1ull << 30)
#define TiB (1ull << 40)

/* clear_env -- no VOLIPMEM_* option variable set (ctest sets the tracker). */
static void clear_env(void)
{
	for (int i = 0; i < VP_OPT_COUNT; i++)
		unsetenv(vp__options[i].env);
}

/* load_only -- load with exactly one variable set; returns the loader's code. */
static int load_only(const char *env, const char *value)
{
	clear_env();
	setenv(env, value, 1);
	int rc = vp__options_load();
	unsetenv(env);
	return rc;
}

static void test_table_rows(void **state)
{
	(void)state;
	for (int i = 0; i < VP_OPT_COUNT; i++) {
		const struct vp_option *o = &vp__options[i];
		assert_non_null(o->env);
		assert_int_equal(strncmp(o->env, "VOLIPMEM_", 9), 0);
		assert_true(strlen(o->env) > 9);
		for (int j = 0; j < i; j++)
			assert_string_not_equal(o->env, vp__options[j].env);
		/* a '|' or a newline would break the markdown table */
		assert_true(o->help && *o->help && !strpbrk(o->help, "|\n"));
		assert_true(!o->default_doc || !strpbrk(o->default_doc, "|\n"));
		assert_true(o->off + o->size <= sizeof(struct vp_options));
		if (o->type == VP_OPTT_UINT) {
			assert_true(o->min <= o->max);
			assert_true(o->size == 4 || o->size == 8);
			if (o->flags & (VP_OPTF_MULTIPLE | VP_OPTF_ROUND_UP))
				assert_true(o->unit && (o->unit & (o->unit - 1)) == 0);
			if (o->size == 4)
				assert_true(o->max <= UINT32_MAX);
		}
		if (o->type == VP_OPTT_STR)
			assert_true(o->allowed && o->size > 1);
	}

	/* the printed table: header, rule, one row per option, each naming it */
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);
	assert_non_null(f);
	vp__options_markdown(f);
	fclose(f);
	int lines = 0;
	for (char *p = buf; *p; p++)
		lines += *p == '\n';
	assert_int_equal(lines, VP_OPT_COUNT + 2);
	assert_int_equal(strncmp(buf, "| variable | type | allowed | default | meaning |\n", 50), 0);
	for (int i = 0; i < VP_OPT_COUNT; i++) {
		char cell[64];
		snprintf(cell, sizeof cell, "\n| `%s` |", vp__options[i].env);
		char *at = strstr(buf, cell);
		assert_non_null(at);
		assert_null(strstr(at + 1, cell));
	}
	assert_non_null(strstr(buf, "| `VOLIPMEM_RESERVE` | bytes | 0 to 64 TiB, rounded up to a multiple of 2 MiB | 64 GiB |"));
	assert_non_null(strstr(buf, "| `VOLIPMEM_HEAP_BASE` | address | a non-zero multiple of 2 MiB | 0x566000000000 |"));
	free(buf);
}

/* The documented defaults, written out here rather than taken from the
 * table, after a load with no variable set. */
static void test_defaults(void **state)
{
	(void)state;
	clear_env();
	vp_set_durability(VP_SYNC, 0);
	assert_int_equal(load_only("VOLIPMEM_STICKY_PAGES", "9"), 0);
	assert_int_equal(vp__opt.sticky, 9);
	assert_int_equal(vp__opt.interval_ms, 0);
	/* code-set 0 is kept; every other option is back at its default */
	clear_env();
	assert_int_equal(vp__options_load(), 0);
	assert_string_equal(vp__opt.tracker, "");
	assert_int_equal(vp__opt.interval_ms, 0);
	assert_false(vp__opt.force_pmem);
	assert_int_equal(vp__opt.heap_base, 0x566000000000ull);
	assert_int_equal(vp__opt.reserve, 64 * GiB);
	assert_int_equal(vp__opt.sticky, 64);
	assert_int_equal(vp__opt.copy_threads, 2);
	assert_true(vp__opt.checksum_pages);
	assert_int_equal(vp__opt.verbose, 0);
}

#define LOAD_OK(env, value) assert_int_equal(load_only(env, value), 0)

static void test_valid_values(void **state)
{
	(void)state;
	LOAD_OK("VOLIPMEM_TRACKER", "mprotect");
	assert_string_equal(vp__opt.tracker, "mprotect");
	LOAD_OK("VOLIPMEM_TRACKER", "0123456789012345678901234567890"); /* 31: checked by pmap's tracker choice */
	assert_int_equal(strlen(vp__opt.tracker), 31);
	LOAD_OK("VOLIPMEM_TRACKER", "");
	assert_string_equal(vp__opt.tracker, "");
	LOAD_OK("VOLIPMEM_CONCURRENT_COPY", "Auto");
	assert_string_equal(vp__opt.concurrent_copy, "Auto");
	LOAD_OK("VOLIPMEM_CONCURRENT_COPY", "on");
	LOAD_OK("VOLIPMEM_CONCURRENT_COPY", "");
	assert_string_equal(vp__opt.concurrent_copy, "");

	static const struct { const char *v; unsigned want; } ivl[] = {
		{"0", 0}, {"1", 1}, {"3600000", 3600000}, {"0x10", 16}, {"010", 8},
	};
	for (size_t i = 0; i < sizeof ivl / sizeof ivl[0]; i++) {
		LOAD_OK("VOLIPMEM_COMMIT_INTERVAL_MS", ivl[i].v);
		assert_int_equal(vp__opt.interval_ms, ivl[i].want);
	}

	static const char *const yes[] = {"1", "yes", "TRUE", "on", "Yes"}, *const no[] = {"0", "no", "false", "OFF", ""};
	for (size_t i = 0; i < 5; i++) {
		LOAD_OK("VOLIPMEM_FORCE_PMEM", yes[i]);
		assert_true(vp__opt.force_pmem);
		LOAD_OK("VOLIPMEM_FORCE_PMEM", no[i]);
		assert_false(vp__opt.force_pmem);
		LOAD_OK("VOLIPMEM_CHECKSUM_PAGES", no[i]);
		assert_false(vp__opt.checksum_pages);
		LOAD_OK("VOLIPMEM_CHECKSUM_PAGES", yes[i]);
		assert_true(vp__opt.checksum_pages);
	}

	LOAD_OK("VOLIPMEM_HEAP_BASE", "0x200000");
	assert_int_equal(vp__opt.heap_base, 2 * MiB);
	LOAD_OK("VOLIPMEM_HEAP_BASE", "0x7f0000000000");
	assert_int_equal(vp__opt.heap_base, 0x7f0000000000ull);
	LOAD_OK("VOLIPMEM_HEAP_BASE", "4194304");
	assert_int_equal(vp__opt.heap_base, 4 * MiB);

	/* the reserve is rounded up to 2 MiB, as before the table */
	static const struct { const char *v; uint64_t want; } rsv[] = {
		{"0", 0}, {"1", 2 * MiB}, {"4194304", 4 * MiB}, {"4194305", 6 * MiB}, {"70368744177664", 64 * TiB},
	};
	for (size_t i = 0; i < sizeof rsv / sizeof rsv[0]; i++) {
		LOAD_OK("VOLIPMEM_RESERVE", rsv[i].v);
		assert_int_equal(vp__opt.reserve, rsv[i].want);
	}

	/* range edges: {variable, value, field, expected} */
	static const struct { const char *env, *v; size_t off; unsigned want; } edge[] = {
		{"VOLIPMEM_STICKY_PAGES", "0", offsetof(struct vp_options, sticky), 0},
		{"VOLIPMEM_STICKY_PAGES", "4096", offsetof(struct vp_options, sticky), 4096},
		{"VOLIPMEM_COPY_THREADS", "1", offsetof(struct vp_options, copy_threads), 1},
		{"VOLIPMEM_COPY_THREADS", "2", offsetof(struct vp_options, copy_threads), 2},
		{"VOLIPMEM_VERBOSE", "2", offsetof(struct vp_options, verbose), 2},
		{"VOLIPMEM_VERBOSE", "0", offsetof(struct vp_options, verbose), 0},
	};
	for (size_t i = 0; i < sizeof edge / sizeof edge[0]; i++) {
		unsigned got;
		LOAD_OK(edge[i].env, edge[i].v);
		memcpy(&got, (const char *)&vp__opt + edge[i].off, sizeof got);
		assert_int_equal(got, edge[i].want);
	}
}

/* Each bad value: the code, a message with the variable, the quoted value
 * and the allowed range (written out here), and not one option changed even
 * though another variable in the same environment is valid. */
static void test_bad_values(void **state)
{
	(void)state;
	static const char long_name[] = "0123456789012345678901234567890123456789";
	static const struct { const char *env, *v; int code; const char *allowed; } bad[] = {
		{"VOLIPMEM_COMMIT_INTERVAL_MS", "3600001", VP_E_INVAL, "allowed: 0 to 3600000"},
		{"VOLIPMEM_COMMIT_INTERVAL_MS", "-1", VP_E_INVAL, "allowed: 0 to 3600000"},
		{"VOLIPMEM_COMMIT_INTERVAL_MS", " 5", VP_E_INVAL, "allowed: 0 to 3600000"},
		{"VOLIPMEM_COMMIT_INTERVAL_MS", "5 ", VP_E_INVAL, "allowed: 0 to 3600000"},
		{"VOLIPMEM_COMMIT_INTERVAL_MS", "10ms", VP_E_INVAL, "allowed: 0 to 3600000"},
		{"VOLIPMEM_COMMIT_INTERVAL_MS", "", VP_E_INVAL, "allowed: 0 to 3600000"},
		{"VOLIPMEM_COMMIT_INTERVAL_MS", "0x", VP_E_INVAL, "allowed: 0 to 3600000"},
		{"VOLIPMEM_COMMIT_INTERVAL_MS", "+5", VP_E_INVAL, "allowed: 0 to 3600000"},
		{"VOLIPMEM_COMMIT_INTERVAL_MS", "4294967296", VP_E_INVAL, "allowed: 0 to 3600000"},
		{"VOLIPMEM_COMMIT_INTERVAL_MS", "18446744073709551616", VP_E_INVAL, "allowed: 0 to 3600000"},
		{"VOLIPMEM_STICKY_PAGES", "4097", VP_E_INVAL, "allowed: 0 to 4096"},
		{"VOLIPMEM_STICKY_PAGES", "many", VP_E_INVAL, "allowed: 0 to 4096"},
		{"VOLIPMEM_COPY_THREADS", "0", VP_E_INVAL, "allowed: 1 to 2"},
		{"VOLIPMEM_COPY_THREADS", "3", VP_E_INVAL, "allowed: 1 to 2"},
		{"VOLIPMEM_VERBOSE", "3", VP_E_INVAL, "allowed: 0 to 2"},
		{"VOLIPMEM_VERBOSE", "-1", VP_E_INVAL, "allowed: 0 to 2"},
		{"VOLIPMEM_CONCURRENT_COPY", "sometimes", VP_E_INVAL, "allowed: `auto`, `on`, `off`"},
		{"VOLIPMEM_HEAP_BASE", "0", VP_E_INVAL, "allowed: a non-zero multiple of 2 MiB"},
		{"VOLIPMEM_HEAP_BASE", "0x1000", VP_E_INVAL, "allowed: a non-zero multiple of 2 MiB"},
		{"VOLIPMEM_HEAP_BASE", "0x566000001000", VP_E_INVAL, "allowed: a non-zero multiple of 2 MiB"},
		{"VOLIPMEM_RESERVE", "70368744177665", VP_E_INVAL, "allowed: 0 to 64 TiB, rounded up"},
		{"VOLIPMEM_RESERVE", "-1", VP_E_INVAL, "allowed: 0 to 64 TiB, rounded up"},
		{"VOLIPMEM_RESERVE", "64G", VP_E_INVAL, "allowed: 0 to 64 TiB, rounded up"},
		{"VOLIPMEM_FORCE_PMEM", "2", VP_E_INVAL, "allowed: 0 or 1"},
		{"VOLIPMEM_FORCE_PMEM", "maybe", VP_E_INVAL, "allowed: 0 or 1"},
		{"VOLIPMEM_CHECKSUM_PAGES", "nope", VP_E_INVAL, "allowed: 0 or 1"},
		{"VOLIPMEM_TRACKER", long_name, VP_E_TRACKER, "at most 31 characters"},
	};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		clear_env();
		setenv("VOLIPMEM_STICKY_PAGES", "7", 1);
		setenv("VOLIPMEM_TRACKER", "full", 1);
		assert_int_equal(vp__options_load(), 0);
		struct vp_options before = vp__opt;

		/* a valid change beside the bad one must not land either */
		setenv("VOLIPMEM_STICKY_PAGES", "8", 1);
		setenv("VOLIPMEM_TRACKER", "mprotect", 1);
		setenv(bad[i].env, bad[i].v, 1);
		int rc = vp__options_load();
		if (rc != bad[i].code)
			fail_msg("%s=\"%s\": code %d, want %d", bad[i].env, bad[i].v, rc, bad[i].code);
		assert_memory_equal(&vp__opt, &before, sizeof before);

		char quoted[128];
		snprintf(quoted, sizeof quoted, "%s=\"%s\"", bad[i].env, bad[i].v);
		const char *msg = vp_errormsg();
		if (!strstr(msg, quoted) || !strstr(msg, bad[i].allowed))
			fail_msg("%s=\"%s\": message \"%s\" lacks \"%s\" or \"%s\"", bad[i].env, bad[i].v, msg, quoted,
				 bad[i].allowed);
	}
	clear_env();
	assert_int_equal(vp__options_load(), 0);
}

/* Environment over code, code over default; unsetting a variable returns
 * its option to the default; a failed load keeps a code-set value. */
static void test_sources(void **state)
{
	(void)state;
	clear_env();
	assert_int_equal(vp__options_load(), 0);
	assert_int_equal(vp_set_durability(VP_RELAXED, 7), 0); /* no pool mapped: recorded for pmap */
	assert_int_equal(vp__options_load(), 0);
	assert_int_equal(vp__opt.interval_ms, 7);
	assert_int_equal(vp__options_load(), 0);
	assert_int_equal(vp__opt.interval_ms, 7);

	assert_int_equal(load_only("VOLIPMEM_COMMIT_INTERVAL_MS", "3"), 0);
	assert_int_equal(vp__opt.interval_ms, 3);
	assert_int_equal(vp__options_load(), 0); /* variable gone: default, not the old code value */
	assert_int_equal(vp__opt.interval_ms, 0);

	assert_int_equal(vp_set_durability(VP_RELAXED, 9), 0);
	assert_int_not_equal(load_only("VOLIPMEM_COMMIT_INTERVAL_MS", "x"), 0);
	assert_int_equal(vp__opt.interval_ms, 9);
	assert_int_equal(vp__options_load(), 0);
	assert_int_equal(vp__opt.interval_ms, 9);
	assert_int_equal(vp_set_durability(VP_SYNC, 0), 0);
	assert_int_equal(vp__options_load(), 0);
	assert_int_equal(vp__opt.interval_ms, 0);

	/* a variable set for one pmap and unset before the next */
	assert_int_equal(load_only("VOLIPMEM_COPY_THREADS", "1"), 0);
	assert_int_equal(vp__opt.copy_threads, 1);
	assert_int_equal(vp__options_load(), 0);
	assert_int_equal(vp__opt.copy_threads, 2);
}

/* pmap reads the table first: a bad value fails it before the pool file
 * exists; a value set from code before pmap is the one it runs with. */
static void test_pmap(void **state)
{
	(void)state;
	const char *path = vpt_pool_path("options");
	clear_env();
	setenv("VOLIPMEM_STICKY_PAGES", "5000", 1);
	assert_int_equal(pmap(path, 16 * MiB, 0), VP_E_INVAL);
	assert_non_null(strstr(vp_errormsg(), "VOLIPMEM_STICKY_PAGES=\"5000\""));
	assert_int_equal(access(path, F_OK), -1);
	assert_int_equal(errno, ENOENT);

	unsetenv("VOLIPMEM_STICKY_PAGES");
	assert_int_equal(vp_set_durability(VP_RELAXED, 7), 0);
	assert_int_equal(pmap(path, 16 * MiB, 0), 0);
	assert_int_equal(vp__opt.interval_ms, 7);
	assert_int_equal(vp__opt.sticky, 64);
	int *p = proot("n", sizeof *p, NULL);
	assert_non_null(p);
	pstart();
	*p = 5;
	assert_int_equal(pend(), 0);
	assert_int_equal(psync(), 0);
	assert_int_equal(punmap(), 0);
	assert_int_equal(vp_set_durability(VP_SYNC, 0), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_table_rows),
		cmocka_unit_test(test_defaults),
		cmocka_unit_test(test_valid_values),
		cmocka_unit_test(test_bad_values),
		cmocka_unit_test(test_sources),
		cmocka_unit_test(test_pmap),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
