/* SPDX-License-Identifier: MIT */
/*
 * options.c -- the table of VOLIPMEM_* options and the one loop that reads
 * them at each pmap(). Every row says its variable, type, allowed range and
 * help line; the defaults are the initial value of vp__opt. The same rows
 * print docs/API.md's table (`volipmem options`), and a test compares the
 * two, so the page cannot drift from the code.
 *
 * The default heap address 0x566000000000 lies above where PIE binaries and
 * their brk heap are placed with ASLR (0x5555...-0x5655...), inside the
 * application range both ASan and TSan allow on x86-64, and far below the
 * top-down mmap area, so normal, ASan and TSan builds all get it.
 */
#include <ctype.h>
#include <errno.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "util/options.h"
#include "util/util.h"

#define OPT_DEFAULTS {                       \
	.heap_base = VP_DEFAULT_HEAP_BASE,   \
	.reserve = VP_DEFAULT_RESERVE,       \
	.checksum_pages = true,              \
	.sticky = 64,                        \
	.copy_threads = 2,                   \
	.snapshot = true,                    \
	.spin_us = 50,                       \
	.shadow_pages = 256,                 \
}

struct vp_options vp__opt = OPT_DEFAULTS;
static const struct vp_options opt_defaults = OPT_DEFAULTS;

#define FIELD(f) .off = offsetof(struct vp_options, f), .size = sizeof ((struct vp_options *)0)->f
#define MiB (1ull << 20)
#define TiB (1ull << 40)

const struct vp_option vp__options[VP_OPT_COUNT] = {
	[VP_OPT_TRACKER] = {
		"VOLIPMEM_TRACKER", VP_OPTT_STR, FIELD(tracker),
		.allowed = "`uffd`, `mprotect`, `full`, `vm-dirty`, `vm-wp`, `cc`",
		.default_doc = "`uffd` where the kernel has it, else `mprotect`",
		.help = "how write sets are found; `vm-dirty`/`vm-wp` (by name only, need a standard `/dev/kvm`) run "
			"the process as a KVM guest, see [VM.md](VM.md); `cc` (by name only) takes the write set from "
			"stores of code built with `pkg-config --cflags volipmem-cc` and is refused in a process "
			"without such code or under the LD_PRELOAD heap, see [cc.md](cc.md); an unknown or unusable name makes `pmap` fail "
			"with `VP_E_TRACKER` and a message listing the choices or naming the missing kernel feature",
	},
	[VP_OPT_COMMIT_INTERVAL_MS] = {
		"VOLIPMEM_COMMIT_INTERVAL_MS", VP_OPTT_UINT, FIELD(interval_ms), .min = 0, .max = 3600000,
		.help = "0 = synchronous; N = relaxed mode, a commit every N ms (same as "
			"`vp_set_durability(VP_RELAXED, N)`); an outermost `pstart()` waits while a FAS that ended "
			"more than B = max(4N, N + 50) ms ago is not durable (docs/COMMIT.md, \"The relaxed-mode bound\"; "
			"`vp_stats`: `ns_bound`, `bound_waits`, `ns_bound_wait`)",
	},
	[VP_OPT_FORCE_PMEM] = {
		"VOLIPMEM_FORCE_PMEM", VP_OPTT_BOOL, FIELD(force_pmem),
		.help = "treat the pool as PMEM (non-temporal copies, cache-line flushes, `sfence`; no `msync`) — "
			"like PMDK's `PMEM_IS_PMEM_FORCE`; use it with a pool on `/dev/shm` as the PMEM stand-in",
	},
	[VP_OPT_HEAP_BASE] = {
		"VOLIPMEM_HEAP_BASE", VP_OPTT_UINT, FIELD(heap_base), .min = 2 * MiB, .max = UINT64_MAX,
		.unit = 2 * MiB, .flags = VP_OPTF_MULTIPLE | VP_OPTF_HEX,
		.help = "heap address for **new** pools",
	},
	[VP_OPT_RESERVE] = {
		/* 64 TiB: half of x86-64's 47-bit user space, and far from
		 * wrapping when rounded up. */
		"VOLIPMEM_RESERVE", VP_OPTT_UINT, FIELD(reserve), .min = 0, .max = 64 * TiB,
		.unit = 2 * MiB, .flags = VP_OPTF_ROUND_UP | VP_OPTF_BYTES,
		.help = "address space reserved per heap for growth in place (new pools)",
	},
	[VP_OPT_STICKY_PAGES] = {
		"VOLIPMEM_STICKY_PAGES", VP_OPTT_UINT, FIELD(sticky), .min = 0, .max = 4096,
		.help = "uffd: how many pages written in consecutive commits are left unarmed and logged at every "
			"commit (0 = off; see ARCHITECTURE.md)",
	},
	[VP_OPT_COPY_THREADS] = {
		"VOLIPMEM_COPY_THREADS", VP_OPTT_UINT, FIELD(copy_threads), .min = 1, .max = 2,
		.help = "threads that copy a write set of 512 pages or more into the log and the home image "
			"(1 = the committing thread alone; docs/COMMIT.md)",
	},
	[VP_OPT_CONCURRENT_COPY] = {
		"VOLIPMEM_CONCURRENT_COPY", VP_OPTT_STR, FIELD(concurrent_copy),
.allowed = "`auto`, `on`, `off`", .default_doc = "`off`",
		.choices = (const char *const[]){"auto", "on", "off", NULL},
		.help = "copy the write set into the log while threads run (uffd and mprotect trackers): `auto` "
			"where the cost model says it shortens the pause, `on` always, `off` never (the default: measured slower overall here, see COMMIT.md); another value "
			"makes `pmap` fail with `VP_E_INVAL` (docs/COMMIT.md, \"Concurrent copy\")",
	},
	[VP_OPT_SNAPSHOT] = {
		"VOLIPMEM_SNAPSHOT", VP_OPTT_BOOL, FIELD(snapshot),
		.help = "at the quiescent point copy the lines of the write set that the log reads into a DRAM "
			"snapshot and let threads run while the log is written from it: the cc tracker's recorded "
			"lines, always; the page trackers' whole pages, in relaxed mode (0 = copy into the log with "
			"threads paused; a write set over 64 MiB always is; docs/COMMIT.md, \"The snapshot\")",
	},
	[VP_OPT_SPIN_US] = {
		"VOLIPMEM_SPIN_US", VP_OPTT_UINT, FIELD(spin_us), .min = 0, .max = 100000,
		.help = "how long a thread waiting for a commit (a synchronous `pend()`, `pstart()` at a closed "
			"gate) spins before it sleeps, when a CPU is left free for the committer (0 = sleep at "
			"once; docs/COMMIT.md, \"Waiting\")",
	},
	[VP_OPT_SHADOW_PAGES] = {
		"VOLIPMEM_SHADOW_PAGES", VP_OPTT_UINT, FIELD(shadow_pages), .min = 0, .max = 65536,
		.help = "page trackers (not `cc`): how many pages written in commit after commit keep a DRAM copy "
			"of their committed image, which step 3 compares them with instead of the home image in the "
			"pool (0 = off; rounded down to a multiple of 4; docs/COMMIT.md, \"Shadows\")",
	},
	[VP_OPT_CHECKSUM_PAGES] = {
		"VOLIPMEM_CHECKSUM_PAGES", VP_OPTT_BOOL, FIELD(checksum_pages),
		.help = "checksum each logged page (recovery refuses damaged committed pages)",
	},
	[VP_OPT_VERIFY] = {
		"VOLIPMEM_VERIFY", VP_OPTT_BOOL, FIELD(verify),
		.help = "verify mode: at each commit, compare every page of the working copy written since it was "
			"mapped with the home image and report on stderr (`volipmem: verify: line not recorded ...`, "
			"`vp_stats.verify_missed_lines`) each changed line the tracker did not record, then log it "
			"anyway; slow, for testing trackers (docs/COMMIT.md, \"Verify mode\")",
	},
	[VP_OPT_VERBOSE] = {
		"VOLIPMEM_VERBOSE", VP_OPTT_UINT, FIELD(verbose), .min = 0, .max = 2,
		.help = "1: notices (tracker fallback, replay); 2: every error message as it is raised",
	},
};

/* Where each option's value came from: an absent variable restores the
 * default unless code set the value (vp__option_from_code). */
enum opt_source { SRC_DEFAULT, SRC_ENV, SRC_CODE };
static enum opt_source opt_src[VP_OPT_COUNT];

void vp__option_from_code(enum vp_option_id id) { opt_src[id] = SRC_CODE; }

/* field_get, field_set -- a row's field as a number, whatever its width
 * (bool, unsigned or int, uint64_t). */
static uint64_t field_get(const struct vp_option *o, const struct vp_options *from)
{
	const char *p = (const char *)from + o->off;
	uint32_t u32;
	uint64_t u64;
	switch (o->size) {
	case sizeof(bool): return *(const bool *)p;
	case sizeof u32: memcpy(&u32, p, sizeof u32); return u32;
	default: memcpy(&u64, p, sizeof u64); return u64;
	}
}

static void field_set(const struct vp_option *o, struct vp_options *to, uint64_t v)
{
	char *p = (char *)to + o->off;
	uint32_t u32 = (uint32_t)v;
	switch (o->size) {
	case sizeof(bool): *(bool *)p = v != 0; break;
	case sizeof u32: memcpy(p, &u32, sizeof u32); break;
	default: memcpy(p, &v, sizeof v); break;
	}
}

/* fmt_bytes -- a size in the largest binary unit that divides it. */
static void fmt_bytes(uint64_t v, char *buf, size_t len)
{
	static const char *const units[] = {"KiB", "MiB", "GiB", "TiB"};
	for (int i = 3; i >= 0 && v; i--) {
		uint64_t u = 1ull << (10 * (i + 1));
		if (v % u == 0) {
			snprintf(buf, len, "%llu %s", (unsigned long long)(v / u), units[i]);
			return;
		}
	}
	snprintf(buf, len, "%llu", (unsigned long long)v);
}

/* fmt_num -- v as o shows it: hex for addresses, 64 GiB for sizes. */
static void fmt_num(const struct vp_option *o, uint64_t v, char *buf, size_t len)
{
	if (o->flags & VP_OPTF_HEX)
		snprintf(buf, len, "0x%llx", (unsigned long long)v);
	else if (o->flags & VP_OPTF_BYTES)
		fmt_bytes(v, buf, len);
	else
		snprintf(buf, len, "%llu", (unsigned long long)v);
}

/* option_allowed -- what o accepts, as text ("0 to 4096"): the table's
 * "allowed" column and the tail of every error message. */
static void option_allowed(const struct vp_option *o, char *buf, size_t len)
{
	char lo[32], hi[32], unit[32];
	if (o->type == VP_OPTT_BOOL) {
		snprintf(buf, len, "0 or 1; also no/yes, off/on, false/true");
		return;
	}
	if (o->type == VP_OPTT_STR) {
		snprintf(buf, len, "%s", o->allowed);
		return;
	}
	fmt_num(o, o->min, lo, sizeof lo);
	fmt_num(o, o->max, hi, sizeof hi);
	fmt_bytes(o->unit, unit, sizeof unit); /* "2 MiB", even for an address */
	if ((o->flags & VP_OPTF_MULTIPLE) && o->min == o->unit && o->max == UINT64_MAX)
		snprintf(buf, len, "a non-zero multiple of %s", unit);
	else if (o->flags & VP_OPTF_MULTIPLE)
		snprintf(buf, len, "%s to %s, a multiple of %s", lo, hi, unit);
	else if (o->flags & VP_OPTF_ROUND_UP)
		snprintf(buf, len, "%s to %s, rounded up to a multiple of %s", lo, hi, unit);
	else
		snprintf(buf, len, "%s to %s", lo, hi);
}

void vp__option_format(const struct vp_option *o, const struct vp_options *from, char *buf, size_t len)
{
	if (o->type == VP_OPTT_STR)
		snprintf(buf, len, "%s", (const char *)from + o->off);
	else
		fmt_num(o, field_get(o, from), buf, len);
}

/* parse_bool -- the documented 0/1, their usual spellings, and "" (unset
 * by an empty assignment) as 0. */
static int parse_bool(const char *s, uint64_t *out)
{
	static const char *const no[] = {"", "0", "no", "false", "off"}, *const yes[] = {"1", "yes", "true", "on"};
	for (size_t i = 0; i < sizeof no / sizeof no[0]; i++)
		if (strcasecmp(s, no[i]) == 0)
			return *out = 0, 0;
	for (size_t i = 0; i < sizeof yes / sizeof yes[0]; i++)
		if (strcasecmp(s, yes[i]) == 0)
			return *out = 1, 0;
	return -1;
}

/* parse_uint -- strtoull's decimal, 0x hex and 0 octal, but nothing it
 * would quietly accept around a number: no sign (-1 wraps), no blanks, no
 * trailing characters, no overflow. */
static int parse_uint(const char *s, uint64_t *out)
{
	char *end;
	if (!isdigit((unsigned char)s[0]))
		return -1;
	errno = 0;
	unsigned long long v = strtoull(s, &end, 0);
	if (errno || *end)
		return -1;
	*out = v;
	return 0;
}

/* option_choice -- is s one of o's choices? */
static bool option_choice(const struct vp_option *o, const char *s)
{
	for (const char *const *c = o->choices; *c; c++)
		if (strcasecmp(s, *c) == 0)
			return true;
	return false;
}

/* option_parse -- one row's value from its variable into `to`; on a bad
 * value, an error naming the variable, the value and what is allowed. */
static int option_parse(const struct vp_option *o, const char *s, struct vp_options *to)
{
	char allowed[160], unit[32];
	uint64_t v = 0;
	option_allowed(o, allowed, sizeof allowed);
	fmt_bytes(o->unit, unit, sizeof unit);
	switch (o->type) {
	case VP_OPTT_STR:
		if (o->choices && *s && !option_choice(o, s))
			return vp__misuse(VP_E_INVAL, "%s=\"%s\" is not one of the allowed values (allowed: %s)", o->env,
					  s, allowed);
		if (strlen(s) >= o->size)
			return vp__misuse(VP_E_TRACKER, "%s=\"%s\" is too long (at most %zu characters; allowed: %s)",
					  o->env, s, o->size - 1, allowed);
		memcpy((char *)to + o->off, s, strlen(s) + 1);
		return 0;
	case VP_OPTT_BOOL:
		if (parse_bool(s, &v))
			return vp__misuse(VP_E_INVAL, "%s=\"%s\" is not a boolean (allowed: %s)", o->env, s, allowed);
		break;
	case VP_OPTT_UINT:
		if (parse_uint(s, &v))
			return vp__misuse(VP_E_INVAL, "%s=\"%s\" is not a number (allowed: %s)", o->env, s, allowed);
		if (v < o->min || v > o->max)
			return vp__misuse(VP_E_INVAL, "%s=\"%s\" is out of range (allowed: %s)", o->env, s, allowed);
		if ((o->flags & VP_OPTF_MULTIPLE) && v % o->unit)
			return vp__misuse(VP_E_INVAL, "%s=\"%s\" is not a multiple of %s (allowed: %s)", o->env, s, unit,
					  allowed);
		if (o->flags & VP_OPTF_ROUND_UP)
			v = vp_align_up(v, o->unit);
		break;
	}
	field_set(o, to, v);
	return 0;
}

/* vp__options_load -- parses into a copy, so a bad value changes nothing. */
int vp__options_load(void)
{
	struct vp_options next = vp__opt;
	enum opt_source src[VP_OPT_COUNT];
	int rc;

	for (int i = 0; i < VP_OPT_COUNT; i++) {
		const struct vp_option *o = &vp__options[i];
		const char *s = getenv(o->env);
		if (s) {
			if ((rc = option_parse(o, s, &next)))
				return rc;
			src[i] = SRC_ENV;
		} else if (opt_src[i] == SRC_CODE) {
			src[i] = SRC_CODE;
		} else {
			memcpy((char *)&next + o->off, (const char *)&opt_defaults + o->off, o->size);
			src[i] = SRC_DEFAULT;
		}
	}
	vp__opt = next;
	memcpy(opt_src, src, sizeof opt_src);
	return 0;
}

/* vp__options_markdown -- docs/API.md's table; tests/docs/options_table.sh
 * fails when the page differs from it. */
void vp__options_markdown(FILE *out)
{
	static const char *const types[] = {[VP_OPTT_BOOL] = "boolean", [VP_OPTT_UINT] = "integer",
					    [VP_OPTT_STR] = "name"};
	char allowed[160], def[64];
	fprintf(out, "| variable | type | allowed | default | meaning |\n|---|---|---|---|---|\n");
	for (int i = 0; i < VP_OPT_COUNT; i++) {
		const struct vp_option *o = &vp__options[i];
		option_allowed(o, allowed, sizeof allowed);
		vp__option_format(o, &opt_defaults, def, sizeof def);
		const char *type = o->flags & VP_OPTF_HEX ? "address" : o->flags & VP_OPTF_BYTES ? "bytes" : types[o->type];
		fprintf(out, "| `%s` | %s | %s | %s | %s |\n", o->env, type, allowed, o->default_doc ? o->default_doc : def,
			o->help);
	}
}
