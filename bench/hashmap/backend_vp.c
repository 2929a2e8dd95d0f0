/* SPDX-License-Identifier: MIT */
/*
 * backend_vp.c -- the hashmap benchmark on plain malloc (--config volatile,
 * the ceiling) and on VolipMem (--config vp). The same compiled table code
 * serves both: allocation goes through function pointers, and a batch is
 * pstart(); lock; operations; unlock; pend() -- the lock is taken inside the
 * FAS as the header's DEADLOCK RULE asks, and released before pend() so
 * that another thread's FAS can join the same group commit.
 *
 * The tracker comes from --tracker (or VOLIPMEM_TRACKER), the durability
 * mode from --interval-ms (0 = synchronous, N = relaxed with N ms commits;
 * or VOLIPMEM_COMMIT_INTERVAL_MS). The table's head is the root "hashmap".
 */
#include "hm_bench.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <volipmem.h>

static void *(*alloc_fn)(size_t) = malloc;
static void *(*calloc_fn)(size_t, size_t) = calloc;
static void (*free_fn)(void *) = free;
static bool relaxed;

hm_ref hm_alloc(size_t n) { return (hm_ref)(uintptr_t)alloc_fn(n); }
hm_ref hm_zalloc(size_t n) { return (hm_ref)(uintptr_t)calloc_fn(1, n); }
void hm_free(hm_ref r) { free_fn((void *)(uintptr_t)r); }

/* ---- volatile ---- */

static struct hm_root *vol_root;

static int vol_open(const struct hm_opts *o, bool reopen, struct hm_root **root,
		    bool *created)
{
	(void)o;
	if (reopen)
		return -EINVAL;
	vol_root = calloc(1, sizeof *vol_root);
	if (!vol_root)
		return -ENOMEM;
	*root = vol_root;
	*created = true;
	return 0;
}

static int vol_batch(int (*fn)(void *), void *arg)
{
	hm_lock();
	int rc = fn(arg);
	hm_unlock();
	return rc;
}

static int vol_close(void) { return 0; }

static const struct hm_backend vol_backend = {
	.name = "volatile", .open = vol_open, .batch = vol_batch,
	.close = vol_close, .can_reopen = false,
};

/* ---- VolipMem ---- */

static int vp_open(const struct hm_opts *o, bool reopen, struct hm_root **root,
		   bool *created)
{
	if (o->tracker && setenv("VOLIPMEM_TRACKER", o->tracker, 1) != 0)
		return -errno;
	if (o->interval_ms > 0) {
		int rc = vp_set_durability(VP_RELAXED, (unsigned)o->interval_ms);
		if (rc < 0)
			return rc;
		relaxed = true;
	} else if (o->interval_ms == 0) {
		int rc = vp_set_durability(VP_SYNC, 1);
		if (rc < 0)
			return rc;
	}
	int rc = pmap(o->pool, reopen ? 0 : o->pool_bytes, reopen ? VP_OPEN_ONLY : 0);
	if (rc < 0) {
		fprintf(stderr, "pmap %s: %s (%s)\n", o->pool, vp_strerror(rc),
			vp_errormsg());
		return rc;
	}
	if (o->interval_ms < 0) {
		/* the mode the library chose from VOLIPMEM_COMMIT_INTERVAL_MS,
		 * which it parsed (pmap refuses a bad value with a message) */
		struct vp_stats s;
		relaxed = vp_stats(&s) == 0 && s.ns_bound > 0;
	}
	const char *t = vp_tracker_name();
	if (o->tracker && (!t || strcmp(t, o->tracker) != 0)) {
		fprintf(stderr, "asked for tracker %s, got %s\n", o->tracker,
			t ? t : "(none)");
		punmap();
		return -EINVAL;
	}
	*root = proot("hashmap", sizeof **root, created);
	if (!*root) {
		fprintf(stderr, "proot: %s\n", vp_errormsg());
		punmap();
		return -EIO;
	}
	return 0;
}

static int vp_batch(int (*fn)(void *), void *arg)
{
	pstart();
	hm_lock();
	int rc = fn(arg);
	hm_unlock();
	int rc2 = pend();
	return rc < 0 ? rc : rc2;
}

static int vp_sync(void) { return relaxed ? psync() : 0; }
static int vp_close(void) { return punmap(); }
static void vp_reset(void) { vp_stats_reset(); }

static void vp_json(FILE *out)
{
	struct vp_stats s;
	if (vp_stats(&s) < 0)
		return;
	fprintf(out, ",\"vp_tracker\":\"%s\",\"medium\":\"%s\",\"relaxed\":%d,"
		"\"commits\":%llu,\"empty_commits\":%llu,\"fas\":%llu,"
		"\"pages_logged\":%llu,\"bytes_logged\":%llu,\"faults\":%llu,"
		"\"ns_collect\":%llu,\"ns_prepare\":%llu,\"ns_log\":%llu,"
		"\"ns_update\":%llu,\"ns_stall\":%llu,\"heap_used\":%llu,"
		"\"ns_pause\":%llu,\"snap_commits\":%llu,\"pages_collected\":%llu,"
		"\"shadow_hits\":%llu",
		s.tracker, s.medium, relaxed, (unsigned long long)s.commits,
		(unsigned long long)s.empty_commits, (unsigned long long)s.fas,
		(unsigned long long)s.pages_logged, (unsigned long long)s.bytes_logged,
		(unsigned long long)s.faults, (unsigned long long)s.ns_collect,
		(unsigned long long)s.ns_prepare, (unsigned long long)s.ns_log,
		(unsigned long long)s.ns_update, (unsigned long long)s.ns_stall,
		(unsigned long long)s.heap_used, (unsigned long long)s.ns_pause,
		(unsigned long long)s.snap_commits, (unsigned long long)s.pages_collected,
		(unsigned long long)s.shadow_hits);
}

static const struct hm_backend vp_backend = {
	.name = "vp", .open = vp_open, .batch = vp_batch, .sync = vp_sync,
	.close = vp_close, .stats_reset = vp_reset, .stats_json = vp_json,
	.can_reopen = true,
};

int main(int argc, char **argv)
{
	const char *config = NULL;
	for (int i = 1; i + 1 < argc; i++)
		if (!strcmp(argv[i], "--config"))
			config = argv[i + 1];
	if (config && !strcmp(config, "volatile"))
		return hm_bench_main(argc, argv, &vol_backend);
	if (config && !strcmp(config, "vp")) {
		alloc_fn = pmalloc;
		calloc_fn = pcalloc;
		free_fn = pfree;
		return hm_bench_main(argc, argv, &vp_backend);
	}
	fprintf(stderr, "%s: --config volatile|vp is required\n", argv[0]);
	return 2;
}
