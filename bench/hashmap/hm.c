/* SPDX-License-Identifier: MIT */
/*
 * hm.c -- the chained hash table of hm.h. Compiled once per backend: the
 * HM_SNAPSHOT and HM_PTR macros are the only places the PMDK build differs.
 * Every store to memory that existed before the current transaction is
 * preceded by HM_SNAPSHOT of exactly the bytes it changes (freshly
 * allocated nodes need none: PMDK discards them on abort).
 */
#include "hm.h"

#include <errno.h>
#include <string.h>

/* hm_hash -- MurmurHash3's 64-bit finalizer (Appleby, public domain):
 * keys may be sequential, so spread them before masking. */
static inline uint64_t hm_hash(uint64_t k)
{
	k ^= k >> 33;
	k *= 0xff51afd7ed558ccdull;
	k ^= k >> 33;
	k *= 0xc4ceb9fe1a85ec53ull;
	k ^= k >> 33;
	return k;
}

static inline hm_ref *hm_slot(const struct hm_root *r, uint64_t key)
{
	hm_ref *b = HM_PTR(r->buckets);
	return &b[hm_hash(key) & (r->nbuckets - 1)];
}

/* hm_init -- give a zeroed root its first bucket array. Runs inside the
 * caller's FAS / transaction. */
int hm_init(struct hm *h, struct hm_root *root, uint64_t nbuckets)
{
	if (nbuckets == 0 || (nbuckets & (nbuckets - 1)) != 0)
		return -EINVAL;
	hm_ref b = hm_zalloc(nbuckets * sizeof(hm_ref));
	if (!b)
		return -ENOMEM;
	HM_SNAPSHOT(root, sizeof *root);
	root->buckets = b;
	root->nbuckets = nbuckets;
	root->magic = HM_MAGIC;
	h->root = root;
	h->count = 0;
	return 0;
}

/* hm_attach -- adopt an existing root and recount its elements. */
int hm_attach(struct hm *h, struct hm_root *root)
{
	if (root->magic != HM_MAGIC)
		return -EINVAL;
	h->root = root;
	return hm_check(h, &h->count);
}

/* hm_put -- insert key or replace its value. Returns 1 if inserted, 0 if
 * replaced, or a negative errno. */
int hm_put(struct hm *h, uint64_t key, const void *val, size_t len)
{
	struct hm_root *r = h->root;
	hm_ref *link = hm_slot(r, key);
	for (hm_ref ref = *link; ref;) {
		struct hm_node *n = HM_PTR(ref);
		if (n->key == key) {
			if (n->vlen == len) {
				HM_SNAPSHOT(n->val, len);
				memcpy(n->val, val, len);
				return 0;
			}
			hm_ref nr = hm_alloc(sizeof *n + len);
			if (!nr)
				return -ENOMEM;
			struct hm_node *nn = HM_PTR(nr);
			nn->next = n->next;
			nn->key = key;
			nn->vlen = len;
			memcpy(nn->val, val, len);
			HM_SNAPSHOT(link, sizeof *link);
			*link = nr;
			hm_free(ref);
			return 0;
		}
		link = &n->next;
		ref = n->next;
	}
	hm_ref nr = hm_alloc(sizeof(struct hm_node) + len);
	if (!nr)
		return -ENOMEM;
	struct hm_node *nn = HM_PTR(nr);
	link = hm_slot(r, key);
	nn->next = *link;
	nn->key = key;
	nn->vlen = len;
	memcpy(nn->val, val, len);
	HM_SNAPSHOT(link, sizeof *link);
	*link = nr;
	h->count++;
	if (h->count > HM_MAX_LOAD * r->nbuckets) {
		int rc = hm_resize(h, r->nbuckets * 2);
		if (rc < 0)
			return rc;
	}
	return 1;
}

/* hm_get -- the node holding key, or NULL. */
const struct hm_node *hm_get(const struct hm *h, uint64_t key)
{
	for (hm_ref ref = *hm_slot(h->root, key); ref;) {
		const struct hm_node *n = HM_PTR(ref);
		if (n->key == key)
			return n;
		ref = n->next;
	}
	return NULL;
}

/* hm_del -- unlink and free key's node. Returns 1 if deleted, 0 if absent. */
int hm_del(struct hm *h, uint64_t key)
{
	hm_ref *link = hm_slot(h->root, key);
	for (hm_ref ref = *link; ref;) {
		struct hm_node *n = HM_PTR(ref);
		if (n->key == key) {
			HM_SNAPSHOT(link, sizeof *link);
			*link = n->next;
			hm_free(ref);
			h->count--;
			return 1;
		}
		link = &n->next;
		ref = n->next;
	}
	return 0;
}

/* hm_resize -- move every node into a new bucket array of nbuckets slots.
 * One big failure-atomic step: every node's link is rewritten, so the
 * PMDK build logs every node and VolipMem's write set covers the table. */
int hm_resize(struct hm *h, uint64_t nbuckets)
{
	struct hm_root *r = h->root;
	if (nbuckets == 0 || (nbuckets & (nbuckets - 1)) != 0)
		return -EINVAL;
	hm_ref nb = hm_zalloc(nbuckets * sizeof(hm_ref));
	if (!nb)
		return -ENOMEM;
	hm_ref *newb = HM_PTR(nb);
	hm_ref *oldb = HM_PTR(r->buckets);
	for (uint64_t i = 0; i < r->nbuckets; i++) {
		for (hm_ref ref = oldb[i]; ref;) {
			struct hm_node *n = HM_PTR(ref);
			hm_ref next = n->next;
			hm_ref *s = &newb[hm_hash(n->key) & (nbuckets - 1)];
			HM_SNAPSHOT(&n->next, sizeof n->next);
			n->next = *s;
			*s = ref;
			ref = next;
		}
	}
	hm_ref old = r->buckets;
	HM_SNAPSHOT(r, sizeof *r);
	r->buckets = nb;
	r->nbuckets = nbuckets;
	hm_free(old);
	return 0;
}

/* hm_check -- walk the table: every node sits in its key's bucket and
 * chains end; *count gets the number of nodes. -EUCLEAN on damage. */
int hm_check(const struct hm *h, uint64_t *count)
{
	const struct hm_root *r = h->root;
	if (r->magic != HM_MAGIC || r->nbuckets == 0 ||
	    (r->nbuckets & (r->nbuckets - 1)) != 0 || !r->buckets)
		return -EUCLEAN;
	const hm_ref *b = HM_PTR(r->buckets);
	uint64_t c = 0;
	for (uint64_t i = 0; i < r->nbuckets; i++) {
		for (hm_ref ref = b[i]; ref;) {
			const struct hm_node *n = HM_PTR(ref);
			if ((hm_hash(n->key) & (r->nbuckets - 1)) != i)
				return -EUCLEAN;
			if (++c > (1ull << 40))
				return -EUCLEAN;	/* a cycle */
			ref = n->next;
		}
	}
	*count = c;
	return 0;
}
