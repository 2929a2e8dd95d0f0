/* SPDX-License-Identifier: MIT */
/*
 * hm.h -- a chained hash table with 8-byte keys and 8-256-byte values,
 * written once in plain C and compiled twice:
 *
 *   without HM_PMDK  links are raw pointers and allocation goes through
 *                    function pointers (malloc for the volatile ceiling,
 *                    pmalloc for VolipMem, where the caller wraps batches of
 *                    operations in pstart/pend);
 *   with HM_PMDK     links are offsets from the PMDK pool's base, every
 *                    store to existing persistent data is preceded by a
 *                    hand-written pmemobj_tx_add_range_direct (TX_ADD) and
 *                    nodes come from pmemobj_tx_alloc, all inside the
 *                    caller's TX_BEGIN/TX_END.
 *
 * Both variants keep the same 8-byte links so the node layout, the memory
 * footprint and the instruction stream of a lookup are the same. The table
 * is not thread-safe: callers hold one lock around every batch.
 */
#ifndef HM_H
#define HM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef uint64_t hm_ref;	/* 0 = none */

#ifdef HM_PMDK
extern uintptr_t hm_base;	/* address the PMDK pool is mapped at */
#define HM_PTR(ref) ((void *)(hm_base + (ref)))
void hm_snapshot(const void *p, size_t n);
#define HM_SNAPSHOT(p, n) hm_snapshot((p), (n))
#else
#define HM_PTR(ref) ((void *)(uintptr_t)(ref))
#define HM_SNAPSHOT(p, n) ((void)0)
#endif

/* Allocation, provided by the backend: 0 on failure. */
hm_ref hm_alloc(size_t n);
hm_ref hm_zalloc(size_t n);
void hm_free(hm_ref r);

#define HM_MAGIC 0x31504d4148534148ull	/* "HASHAMP1" */

/* hm_root -- the table's head; lives in the pool (proot / pmemobj_root). */
struct hm_root {
	uint64_t magic;
	uint64_t nbuckets;	/* power of two */
	hm_ref buckets;		/* hm_ref[nbuckets] */
	uint64_t reserved;
};

struct hm_node {
	hm_ref next;
	uint64_t key;
	uint64_t vlen;
	unsigned char val[];
};

/* hm -- volatile handle: the root plus the element count, which is rebuilt
 * by walking the table at open (keeping it in the pool would add one
 * logged store per operation on both sides without adding information). */
struct hm {
	struct hm_root *root;
	uint64_t count;
};

/* The load factor above which hm_put doubles the bucket array. */
#define HM_MAX_LOAD 2

int hm_init(struct hm *h, struct hm_root *root, uint64_t nbuckets);
int hm_attach(struct hm *h, struct hm_root *root);
int hm_put(struct hm *h, uint64_t key, const void *val, size_t len);
const struct hm_node *hm_get(const struct hm *h, uint64_t key);
int hm_del(struct hm *h, uint64_t key);
int hm_resize(struct hm *h, uint64_t nbuckets);
int hm_check(const struct hm *h, uint64_t *count);

#endif /* HM_H */
