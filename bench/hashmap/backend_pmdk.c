/* SPDX-License-Identifier: MIT */
/*
 * backend_pmdk.c -- the hashmap benchmark on PMDK's libpmemobj with
 * hand-written transactions: the same table code compiled with HM_PMDK, so
 * every store to existing data is preceded by TX_ADD
 * (pmemobj_tx_add_range_direct) of exactly the bytes it changes, and nodes
 * come from pmemobj_tx_alloc (TX_ALLOC; TX_ZNEW would also zero what the
 * table overwrites anyway). A batch is lock; TX_BEGIN { operations }
 * TX_END; unlock -- PMDK transactions are not isolated, so the lock is held
 * until the transaction has committed (a volatile pthread mutex, as a
 * pmem-resident PMEMmutex would add persistent state for nothing).
 *
 * Links are offsets from the pool's base (what PMEMoid.off holds), so the
 * node layout is the one VolipMem stores with raw pointers. Run with
 * PMEM_IS_PMEM_FORCE=1 on /dev/shm so PMDK flushes with cache-line
 * write-backs as on real persistent memory.
 */
#define HM_PMDK 1
#include "hm_bench.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <libpmemobj.h>

#define LAYOUT "volipmem-bench-hashmap"

uintptr_t hm_base;
static PMEMobjpool *pop;
static uint64_t uuid_lo;

hm_ref hm_alloc(size_t n) { return pmemobj_tx_alloc(n, 1).off; }
hm_ref hm_zalloc(size_t n) { return pmemobj_tx_zalloc(n, 2).off; }

void hm_free(hm_ref r)
{
	PMEMoid oid = { uuid_lo, r };
	pmemobj_tx_free(oid);
}

/* hm_snapshot -- TX_ADD: undo-log the range before it is modified. On
 * failure PMDK aborts the transaction and jumps to TX_ONABORT. */
void hm_snapshot(const void *p, size_t n)
{
	pmemobj_tx_add_range_direct(p, n);
}

static int pmdk_open(const struct hm_opts *o, bool reopen, struct hm_root **root,
		     bool *created)
{
	const char *f = getenv("PMEM_IS_PMEM_FORCE");
	if (!f || strcmp(f, "1") != 0)
		fprintf(stderr, "note: PMEM_IS_PMEM_FORCE=1 is not set; PMDK "
			"will msync instead of flushing cache lines\n");
	if (access(o->pool, F_OK) == 0) {
		pop = pmemobj_open(o->pool, LAYOUT);
	} else if (reopen) {
		return -ENOENT;
	} else {
		size_t sz = o->pool_bytes < PMEMOBJ_MIN_POOL ? PMEMOBJ_MIN_POOL
							     : o->pool_bytes;
		pop = pmemobj_create(o->pool, LAYOUT, sz, 0600);
	}
	if (!pop) {
		fprintf(stderr, "pmemobj %s: %s\n", o->pool, pmemobj_errormsg());
		return errno ? -errno : -EIO;
	}
	hm_base = (uintptr_t)pop;
	PMEMoid r = pmemobj_root(pop, sizeof(struct hm_root));
	if (OID_IS_NULL(r)) {
		fprintf(stderr, "pmemobj_root: %s\n", pmemobj_errormsg());
		pmemobj_close(pop);
		pop = NULL;
		return -ENOMEM;
	}
	uuid_lo = r.pool_uuid_lo;
	*root = pmemobj_direct(r);
	*created = (*root)->magic == 0;
	return 0;
}

static int pmdk_batch(int (*fn)(void *), void *arg)
{
	volatile int rc = 0;
	hm_lock();
	TX_BEGIN(pop) {
		rc = fn(arg);
		if (rc < 0)
			pmemobj_tx_abort(-rc);
	} TX_ONABORT {
		if (rc >= 0)
			rc = -(errno ? errno : EIO);
	} TX_END
	hm_unlock();
	return rc;
}

static int pmdk_close(void)
{
	if (pop)
		pmemobj_close(pop);
	pop = NULL;
	hm_base = 0;
	return 0;
}

static void pmdk_json(FILE *out)
{
	const char *f = getenv("PMEM_IS_PMEM_FORCE");
	fprintf(out, ",\"medium\":\"%s\"", f && !strcmp(f, "1") ? "pmem-forced" : "file");
}

static const struct hm_backend pmdk_backend = {
	.name = "pmdk", .open = pmdk_open, .batch = pmdk_batch,
	.close = pmdk_close, .stats_json = pmdk_json, .can_reopen = true,
};

int main(int argc, char **argv)
{
	return hm_bench_main(argc, argv, &pmdk_backend);
}
