/* SPDX-License-Identifier: MIT */
/*
 * cache.c -- items, hash table and LRU of vmcached in the persistent heap.
 *
 * One global lock (volatile memory) serialises every access to the cache.
 * Mutations run inside the caller's FAS, so each request's changes (new
 * item, chain and LRU links, counters, freed old item) reach the pool all
 * together or not at all. Memory use is counted in item bytes against the
 * -m limit; when a store would exceed it, items are taken from the LRU tail:
 * expired or flushed ones are "reclaimed", live ones "evicted".
 */
#ifndef _GNU_SOURCE /* vmcached-cc is compiled with -D_GNU_SOURCE */
#define _GNU_SOURCE /* PTHREAD_ADAPTIVE_MUTEX_INITIALIZER_NP */
#endif
#define XXH_INLINE_ALL
#include <xxhash.h>

#include "cache.h"

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <volipmem.h>

/* Under the cc instrumentation (vmcached-cc) the only libc calls here that
 * write into the heap are memcpy and memset, which libvolipmem interposes
 * (docs/cc.md). _FORTIFY_SOURCE would turn them into __memcpy_chk and
 * __memset_chk, which it does not: those writes would go unseen. */
#if defined(VOLIPMEM_CC_BUILD) && defined(_FORTIFY_SOURCE) && _FORTIFY_SOURCE > 0
#error "vmcached-cc: build without _FORTIFY_SOURCE (its __memcpy_chk is not interposed; see docs/cc.md)"
#endif

struct vmc_root *vmc_root;
size_t vmc_item_max = 1024 * 1024;
uint64_t vmc_limit = 64ull << 20;

/* Adaptive: critical sections are short, so spinning a little beats a
 * futex sleep and the context switches that come with it. */
static pthread_mutex_t cache_lock = PTHREAD_ADAPTIVE_MUTEX_INITIALIZER_NP;

void vmc_lock(void) { pthread_mutex_lock(&cache_lock); }
void vmc_unlock(void) { pthread_mutex_unlock(&cache_lock); }

/* vmc_clock_now -- wall-clock time; expiry and flush times are absolute so
 * they keep their meaning across restarts. */
void vmc_clock_now(struct vmc_clock *c)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	c->now_s = ts.tv_sec;
	c->now_ms = (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

uint64_t vmc_hash(const char *key, size_t nkey)
{
	return XXH3_64bits(key, nkey);
}

/* item_csum -- checksum over the fields a reader trusts; time_ms and the
 * links are left out (they change on LRU moves and are checked by walks). */
static uint64_t item_csum(const struct vmc_item *it)
{
	uint64_t seed = it->cas ^ ((uint64_t)it->flags << 32) ^
			(uint64_t)it->exptime * 0x9E3779B97F4A7C15ull ^
			((uint64_t)it->nbytes << 16) ^ it->nkey;
	return XXH3_64bits_withSeed(it->data, (size_t)it->nkey + it->nbytes,
				    seed);
}

/* item_dead -- expired, or killed by flush_all. */
static enum vmc_miss item_dead(const struct vmc_item *it,
			       const struct vmc_clock *now)
{
	if (it->exptime != 0 && it->exptime <= now->now_s)
		return VMC_MISS_EXPIRED;
	if (vmc_root->flush_cas != 0 && it->cas < vmc_root->flush_cas)
		return VMC_MISS_FLUSHED;
	int64_t dl = vmc_root->flush_deadline_s;
	if (dl != 0 && now->now_s >= dl && (int64_t)(it->time_ms / 1000) <= dl)
		return VMC_MISS_FLUSHED;
	return VMC_HIT;
}

static struct vmc_item **bucket(uint64_t hv)
{
	return &vmc_root->buckets[hv & (vmc_root->nbuckets - 1)];
}

/* chain_find -- the item for key in its hash chain, dead or alive. */
static struct vmc_item *chain_find(const char *key, size_t nkey, uint64_t hv)
{
	for (struct vmc_item *it = *bucket(hv); it; it = it->h_next)
		if (it->hash == (uint32_t)hv && it->nkey == nkey &&
		    memcmp(it->data, key, nkey) == 0)
			return it;
	return NULL;
}

/* vmc_find -- the live item for key, or NULL and why. Writes nothing. */
struct vmc_item *vmc_find(const char *key, size_t nkey, uint64_t hv,
			  const struct vmc_clock *now, enum vmc_miss *miss)
{
	struct vmc_item *it = chain_find(key, nkey, hv);
	enum vmc_miss m = it ? item_dead(it, now) : VMC_MISS;
	if (miss)
		*miss = m;
	return m == VMC_HIT ? it : NULL;
}

static uint8_t *refmap;      /* CLOCK marks, volatile: see cache.h */
static uintptr_t refbase;

static uint8_t *ref_of(const struct vmc_item *it)
{
	return &refmap[((uintptr_t)it - refbase) >> 6];
}

/* A mark byte: bit 0 the CLOCK mark, bit 1 "fetched since stored". */
#define REF_MARK 1
#define REF_FETCHED 2

void vmc_referenced(struct vmc_item *it)
{
	uint8_t *r = ref_of(it);
	if (*r != (REF_MARK | REF_FETCHED))
		*r = REF_MARK | REF_FETCHED;
}

bool vmc_fetched(const struct vmc_item *it)
{
	return *ref_of(it) & REF_FETCHED;
}

/* lru_unlink / lru_push -- take an item out of the LRU list / put it at
 * the head (most recently used end). */
static void lru_unlink(struct vmc_item *it)
{
	if (it->prev)
		it->prev->next = it->next;
	else
		vmc_root->lru_head = it->next;
	if (it->next)
		it->next->prev = it->prev;
	else
		vmc_root->lru_tail = it->prev;
	it->prev = it->next = NULL;
}

static void lru_push(struct vmc_item *it)
{
	it->prev = NULL;
	it->next = vmc_root->lru_head;
	if (vmc_root->lru_head)
		vmc_root->lru_head->prev = it;
	else
		vmc_root->lru_tail = it;
	vmc_root->lru_head = it;
}

/* The pmalloc blocks the items take (their usable sizes, allocator
 * rounding included): volatile, summed by the check at every start. */
static uint64_t chunk_bytes;

uint64_t vmc_chunk_bytes(void)
{
	return chunk_bytes;
}

/* item_unlink -- remove from chain and LRU, uncount and free. */
static void item_unlink(struct vmc_item *it)
{
	struct vmc_item **pp = bucket(it->hash); /* nbuckets <= 2^32 */
	while (*pp && *pp != it)
		pp = &(*pp)->h_next;
	if (*pp)
		*pp = it->h_next;
	lru_unlink(it);
	vmc_root->curr_items--;
	vmc_root->bytes -= vmc_item_size(it->nkey, it->nbytes);
	chunk_bytes -= vp_usable_size(it);
	pfree(it);
}

/* item_link -- put a filled item in its chain (replacing old, if any) and
 * at the LRU head. */
static void item_link(struct vmc_item *it, uint64_t hv, struct vmc_item *old)
{
	if (old)
		item_unlink(old);
	*ref_of(it) = 0;
	struct vmc_item **b = bucket(hv);
	it->h_next = *b;
	*b = it;
	lru_push(it);
	vmc_root->curr_items++;
	vmc_root->total_items++;
	vmc_root->bytes += vmc_item_size(it->nkey, it->nbytes);
	chunk_bytes += vp_usable_size(it);
}

/* evict_one -- free one item from the LRU tail (but not `keep`), giving
 * marked items a second chance; false if nothing is left to free. */
static bool evict_one(struct vmc_item *keep, const struct vmc_clock *now)
{
	for (int spins = 0;; spins++) {
		struct vmc_item *victim = vmc_root->lru_tail;
		if (victim == keep)
			victim = keep->prev;
		if (!victim)
			return false;
		bool dead = item_dead(victim, now) != VMC_HIT;
		uint8_t *ref = ref_of(victim);
		if (!dead && (*ref & REF_MARK) && spins < 64 &&
		    victim != vmc_root->lru_head) {
			*ref &= (uint8_t)~REF_MARK;
			lru_unlink(victim);
			lru_push(victim);
			continue;
		}
		if (dead)
			vmc_root->reclaimed++;
		else
			vmc_root->evictions++;
		item_unlink(victim);
		return true;
	}
}

/* reclaim_tail -- free up to a few dead items at the LRU tail, so expired
 * items do not linger until memory runs out. */
static void reclaim_tail(struct vmc_item *keep, const struct vmc_clock *now)
{
	struct vmc_item *it = vmc_root->lru_tail;
	for (int i = 0; i < 5 && it; i++) {
		struct vmc_item *prev = it->prev;
		if (it != keep && item_dead(it, now) != VMC_HIT) {
			vmc_root->reclaimed++;
			item_unlink(it);
		}
		it = prev;
	}
}

/* item_alloc -- pmalloc an item of `size` bytes, evicting from the LRU
 * tail while over the limit or while the heap has no block to give. */
static struct vmc_item *item_alloc(size_t size, struct vmc_item *keep,
				   const struct vmc_clock *now)
{
	reclaim_tail(keep, now);
	while (vmc_root->bytes + size > vmc_limit)
		if (!evict_one(keep, now))
			return NULL;
	for (;;) {
		struct vmc_item *it = pmalloc(size);
		if (it) {
			memset(it, 0, sizeof *it);
			return it;
		}
		if (!evict_one(keep, now))
			return NULL;
	}
}

static uint64_t next_cas(void)
{
	return ++vmc_root->cas_counter;
}

/* item_finish -- stamp CAS and time, seal with the checksum. */
static void item_finish(struct vmc_item *it, const struct vmc_clock *now)
{
	it->cas = next_cas();
	it->time_ms = now->now_ms;
	it->csum = item_csum(it);
}

/* find_live -- the chain's item for key if live; a dead one is freed. */
static struct vmc_item *find_live(const char *key, size_t nkey, uint64_t hv,
				  const struct vmc_clock *now)
{
	struct vmc_item *it = chain_find(key, nkey, hv);
	if (it && item_dead(it, now) != VMC_HIT) {
		vmc_root->reclaimed++;
		item_unlink(it);
		it = NULL;
	}
	return it;
}

/* vmc_store -- set/add/replace/append/prepend/cas: check the condition,
 * then overwrite in place or build a new item and link it in place of the
 * old one. Caller: inside a FAS, holding the lock. */
enum vmc_store_res vmc_store(enum vmc_cmd cmd, const char *key, size_t nkey,
			     uint64_t hv, uint32_t flags, int64_t exptime,
			     const char *data, size_t nbytes, uint64_t cas_in,
			     unsigned opts, const struct vmc_clock *now)
{
	struct vmc_item *old = find_live(key, nkey, hv, now);
	uint16_t iflags = opts & VMC_OPT_BINKEY ? VMC_IT_KEY_BINARY : 0;
	switch (cmd) {
	case VMC_ADD:
		if (old)
			return VMC_NOT_STORED;
		break;
	case VMC_REPLACE:
		if (!old)
			return VMC_NOT_STORED;
		break;
	case VMC_APPEND:
	case VMC_PREPEND:
		if (!old)
			return VMC_NOT_STORED;
		if (cas_in != 0 && old->cas != cas_in)
			return VMC_EXISTS;
		break;
	case VMC_CAS:
		if (!old)
			return VMC_NOT_FOUND;
		if ((opts & VMC_OPT_STALE_CAS) && cas_in < old->cas) {
			/* memcached's stale set: the value is replaced but
			 * stays stale, with the old TTL and win token */
			exptime = old->exptime;
			iflags |= VMC_IT_STALE |
				  (old->iflags & VMC_IT_TOKEN_SENT);
		} else if (old->cas != cas_in) {
			return VMC_EXISTS;
		}
		break;
	case VMC_SET:
		break;
	}
	size_t vlen = nbytes; /* including "\r\n" */
	bool cat = cmd == VMC_APPEND || cmd == VMC_PREPEND;
	if (cat) {
		vlen = old->nbytes + nbytes - 2;
		flags = old->flags;
		exptime = old->exptime;
	}
	size_t size = vmc_item_size(nkey, vlen);
	if (size > vmc_item_max)
		return VMC_TOO_LARGE;
	if (old && !cat && size <= vp_usable_size(old)) {
		/* Overwrite in place. The FAS makes it atomic all the same, and
		 * it writes one page instead of five: a new item would also
		 * write its bucket, the old item's LRU and chain neighbours and
		 * the allocator's metadata -- each a page the tracker must
		 * catch and the commit must log. */
		vmc_root->bytes += size;
		vmc_root->bytes -= vmc_item_size(old->nkey, old->nbytes);
		vmc_root->total_items++;
		old->nbytes = (uint32_t)vlen;
		old->flags = flags;
		old->exptime = exptime;
		old->iflags = iflags;
		memcpy(vmc_item_value(old), data, nbytes);
		*ref_of(old) = REF_MARK;  /* kept, but not fetched yet */
		item_finish(old, now);
		return VMC_STORED;
	}
	struct vmc_item *it = item_alloc(size, old, now);
	if (!it)
		return VMC_NO_MEMORY;
	it->nkey = (uint16_t)nkey;
	it->nbytes = (uint32_t)vlen;
	it->flags = flags;
	it->exptime = exptime;
	it->hash = (uint32_t)hv;
	it->iflags = iflags;
	memcpy(it->data, key, nkey);
	char *v = vmc_item_value(it);
	if (cmd == VMC_APPEND) {
		memcpy(v, vmc_item_value(old), old->nbytes - 2);
		memcpy(v + old->nbytes - 2, data, nbytes);
	} else if (cmd == VMC_PREPEND) {
		memcpy(v, data, nbytes - 2);
		memcpy(v + nbytes - 2, vmc_item_value(old), old->nbytes);
	} else {
		memcpy(v, data, nbytes);
	}
	item_finish(it, now);
	item_link(it, hv, old);
	return VMC_STORED;
}

/* vmc_unlink_key -- drop key whatever its state (a failed set must not
 * leave the previous value visible, as in memcached). */
void vmc_unlink_key(const char *key, size_t nkey, uint64_t hv,
		    const struct vmc_clock *now)
{
	(void)now;
	struct vmc_item *it = chain_find(key, nkey, hv);
	if (it)
		item_unlink(it);
}

/* vmc_delete -- unlink and free the live item for key; false if none. */
bool vmc_delete(const char *key, size_t nkey, uint64_t hv,
		const struct vmc_clock *now)
{
	struct vmc_item *it = find_live(key, nkey, hv, now);
	if (!it)
		return false;
	item_unlink(it);
	return true;
}

/* vmc_touch -- give the live item for key a new expiry time. */
struct vmc_item *vmc_touch(const char *key, size_t nkey, uint64_t hv,
			   int64_t exptime, const struct vmc_clock *now)
{
	struct vmc_item *it = find_live(key, nkey, hv, now);
	if (!it)
		return NULL;
	it->exptime = exptime;
	it->csum = item_csum(it);
	*ref_of(it) |= REF_MARK;
	return it;
}

struct vmc_item *vmc_invalidate(const char *key, size_t nkey, uint64_t hv,
				bool set_exp, int64_t exptime,
				const struct vmc_clock *now)
{
	struct vmc_item *it = find_live(key, nkey, hv, now);
	if (!it)
		return NULL;
	if (set_exp)
		it->exptime = exptime;
	it->iflags = (uint16_t)((it->iflags | VMC_IT_STALE) & ~VMC_IT_TOKEN_SENT);
	it->cas = next_cas();
	it->csum = item_csum(it);
	return it;
}

void vmc_set_iflags(struct vmc_item *it, uint16_t bits)
{
	if ((it->iflags & bits) != bits)
		it->iflags |= bits;
}

/* parse_value_u64 -- memcached's safe_strtoull: digits after optional blanks,
 * ending at a blank or the end; a '-' on a huge value is refused. */
static bool parse_value_u64(const char *s, size_t n, uint64_t *out)
{
	char buf[32];
	if (n == 0 || n >= sizeof buf)
		return false;
	memcpy(buf, s, n);
	buf[n] = 0;
	char *end;
	errno = 0;
	unsigned long long v = strtoull(buf, &end, 10);
	if (errno == ERANGE || end == buf)
		return false;
	if (*end != 0 && *end != ' ' && *end != '\r' && *end != '\n' &&
	    *end != '\t')
		return false;
	if ((long long)v < 0 && memchr(buf, '-', (size_t)(end - buf)))
		return false;
	*out = v;
	return true;
}

/* vmc_delta -- incr/decr: the new decimal value goes to out; in place
 * when it fits (padded with blanks), else as a new item. */
enum vmc_delta_res vmc_delta(const char *key, size_t nkey, uint64_t hv,
			     bool incr, uint64_t delta, uint64_t cas_in,
			     char *out, size_t outlen,
			     const struct vmc_clock *now)
{
	struct vmc_item *it = find_live(key, nkey, hv, now);
	if (!it)
		return VMC_DELTA_NOT_FOUND;
	if (cas_in != 0 && it->cas != cas_in)
		return VMC_DELTA_EXISTS;
	uint64_t value;
	if (it->nbytes <= 2 ||
	    !parse_value_u64(vmc_item_value(it), it->nbytes, &value))
		return VMC_DELTA_NON_NUMERIC;
	if (incr)
		value += delta; /* wraps at 2^64 like memcached */
	else
		value = delta > value ? 0 : value - delta;
	int res = snprintf(out, outlen, "%" PRIu64, value);
	if (res < 0 || (size_t)res >= outlen)
		return VMC_DELTA_NON_NUMERIC;
	if ((size_t)res + 2 <= it->nbytes) {
		/* in place, padded with blanks, as memcached does */
		char *v = vmc_item_value(it);
		memcpy(v, out, (size_t)res);
		memset(v + res, ' ', it->nbytes - 2 - (size_t)res);
		item_finish(it, now);
		*ref_of(it) |= REF_MARK;
		return VMC_DELTA_OK;
	}
	char val[24];
	memcpy(val, out, (size_t)res);
	val[res] = '\r';
	val[res + 1] = '\n';
	enum vmc_store_res r = vmc_store(VMC_SET, key, nkey, hv, it->flags,
					 it->exptime, val, (size_t)res + 2, 0,
					 it->iflags & VMC_IT_KEY_BINARY ? VMC_OPT_BINKEY : 0,
					 now);
	return r == VMC_STORED ? VMC_DELTA_OK : VMC_DELTA_NO_MEMORY;
}

/* vmc_flush -- flush_all: now (delay <= 0) by CAS, else at a deadline. */
void vmc_flush(int64_t delay_s, const struct vmc_clock *now)
{
	if (delay_s > 0) {
		/* memcached's rule, to the second: items last stored at or
		 * before second now+delay-1 die once that second has come. So
		 * "flush_all 1" kills what exists now (by CAS, like memcached's
		 * oldest_cas) and what is stored in the rest of this second. */
		vmc_root->flush_deadline_s = now->now_s + delay_s - 1;
		if (delay_s == 1)
			vmc_root->flush_cas = vmc_root->cas_counter + 1;
	} else {
		/* everything goes now (memcached's LRU crawler does the same
		 * within moments); flush_cas stays as a second line */
		vmc_root->flush_deadline_s = 0;
		vmc_root->flush_cas = vmc_root->cas_counter + 1;
		while (vmc_root->lru_tail) {
			vmc_root->reclaimed++;
			item_unlink(vmc_root->lru_tail);
		}
	}
}

/* ---- open and check ---- */

static bool ptr_ok(const void *p, size_t size)
{
	return p && ((uintptr_t)p & 15) == 0 && vp_in_heap(p) &&
	       vp_in_heap((const char *)p + size - 1);
}

/* vmc_check -- prove the cache is whole: every chain pointer inside the
 * heap, every item in the right bucket with a valid checksum, the LRU a
 * proper doubly linked list over the same number of items, and the counters
 * equal to what the walk found. Reads only. */
int vmc_check(char *why, size_t whylen)
{
	struct vmc_root *r = vmc_root;
	uint64_t n = 0, bytes = 0, chunks = 0,
		 limit = vp_heap_size() / sizeof(struct vmc_item);
	if (!ptr_ok(r->buckets, r->nbuckets * sizeof(void *)) ||
	    r->nbuckets == 0 || (r->nbuckets & (r->nbuckets - 1))) {
		snprintf(why, whylen, "hash table pointer or size invalid");
		return -1;
	}
	for (uint64_t b = 0; b < r->nbuckets; b++) {
		for (struct vmc_item *it = r->buckets[b]; it; it = it->h_next) {
			if (!ptr_ok(it, sizeof *it) ||
			    !ptr_ok(it, vmc_item_size(it->nkey, it->nbytes))) {
				snprintf(why, whylen, "bucket %" PRIu64
					 ": item pointer %p outside the heap",
					 b, (void *)it);
				return -1;
			}
			uint64_t hv = vmc_hash(it->data, it->nkey);
			if (it->nkey == 0 || it->nkey > VMC_KEY_MAX ||
			    it->nbytes < 2 ||
			    (hv & (r->nbuckets - 1)) != b ||
			    it->hash != (uint32_t)hv) {
				snprintf(why, whylen, "bucket %" PRIu64
					 ": item %p has a bad key or length",
					 b, (void *)it);
				return -1;
			}
			const char *v = vmc_item_value(it);
			if (v[it->nbytes - 2] != '\r' || v[it->nbytes - 1] != '\n' ||
			    it->csum != item_csum(it)) {
				snprintf(why, whylen, "item '%.*s': checksum mismatch",
					 (int)it->nkey, it->data);
				return -1;
			}
			bytes += vmc_item_size(it->nkey, it->nbytes);
			chunks += vp_usable_size(it);
			if (++n > limit) {
				snprintf(why, whylen, "hash chains loop");
				return -1;
			}
		}
	}
	uint64_t m = 0;
	struct vmc_item *prev = NULL;
	for (struct vmc_item *it = r->lru_head; it; it = it->next) {
		if (!ptr_ok(it, sizeof *it) || it->prev != prev || ++m > n) {
			snprintf(why, whylen, "LRU list broken at item %" PRIu64, m);
			return -1;
		}
		prev = it;
	}
	if (prev != r->lru_tail || m != n || n != r->curr_items ||
	    bytes != r->bytes) {
		snprintf(why, whylen, "counts disagree: table %" PRIu64
			 " items/%" PRIu64 " bytes, LRU %" PRIu64
			 ", counters %" PRIu64 "/%" PRIu64,
			 n, bytes, m, r->curr_items, r->bytes);
		return -1;
	}
	chunk_bytes = chunks;
	return 0;
}

void vmc_walk(bool (*fn)(void *ctx, const struct vmc_item *it), void *ctx,
	      const struct vmc_clock *now)
{
	for (struct vmc_item *it = vmc_root->lru_head; it; it = it->next)
		if (item_dead(it, now) == VMC_HIT && !fn(ctx, it))
			break;
}

/* heap_for -- the heap vmc_open gives a cache of `limit` item bytes with
 * nb buckets: the items, 25 % allocator slack, the table, 16 MiB. */
static uint64_t heap_for(uint64_t limit, uint64_t nb)
{
	return limit + limit / 4 + nb * sizeof(void *) + (16u << 20);
}

bool vmc_set_limit(uint64_t limit)
{
	bool ok = false;
	vmc_lock();
	if (heap_for(limit, vmc_root->nbuckets) <= vp_heap_size()) {
		__atomic_store_n(&vmc_limit, limit, __ATOMIC_RELAXED);
		ok = true;
	}
	vmc_unlock();
	return ok;
}

static uint64_t pow2_at_least(uint64_t v)
{
	uint64_t p = 1;
	while (p < v)
		p <<= 1;
	return p;
}

/* vmc_open -- map the pool (recovering it if a crash interrupted a
 * commit), create the cache on first use, check it, and move the CAS
 * counter past anything handed out before a crash. */
int vmc_open(const char *path, uint64_t limit, bool check_only, bool quiet)
{
	uint64_t nb = pow2_at_least(limit / 256);
	if (nb < (1u << 16))
		nb = 1u << 16;
	size_t heap = heap_for(limit, nb);
	int rc = pmap(path, heap, check_only ? VP_OPEN_ONLY : 0);
	if (rc != 0) {
		fprintf(stderr, "vmcached: cannot map pool %s: %s %s\n", path,
			vp_strerror(rc), vp_errormsg());
		return -1;
	}
	bool created = false;
	struct vmc_root *r = proot(VMC_ROOT_NAME, sizeof *r, &created);
	if (!r) {
		fprintf(stderr, "vmcached: pool %s: root: %s\n", path,
			vp_errormsg());
		return -1;
	}
	vmc_root = r;
	refbase = (uintptr_t)vp_heap_base();
	refmap = calloc(vp_heap_size() / 64 + 1, 1);
	if (!refmap) {
		fprintf(stderr, "vmcached: out of memory\n");
		return -1;
	}
	if (r->magic == 0) {
		if (check_only) {
			fprintf(stderr, "vmcached: pool %s holds no cache\n", path);
			return -1;
		}
		pstart();
		if (r->buckets)
			pfree(r->buckets); /* a creation cut short by a crash */
		r->buckets = pcalloc(nb, sizeof(void *));
		r->nbuckets = nb;
		r->layout = VMC_LAYOUT;
		if (r->buckets)
			r->magic = VMC_MAGIC;
		rc = pend();
		if (!r->buckets || rc != 0) {
			fprintf(stderr, "vmcached: cannot create the cache in %s: %s\n",
				path, r->buckets ? vp_strerror(rc) : "out of memory");
			return -1;
		}
	} else if (r->magic != VMC_MAGIC || r->layout != VMC_LAYOUT) {
		fprintf(stderr, "vmcached: pool %s: root '%s' is not a vmcached "
			"cache of layout %u\n", path, VMC_ROOT_NAME, VMC_LAYOUT);
		return -1;
	}
	char why[256];
	if (vmc_check(why, sizeof why) != 0) {
		fprintf(stderr, "vmcached: pool %s: cache is corrupt: %s\n", path, why);
		return -1;
	}
	if (!quiet || check_only)
		fprintf(stderr, "vmcached: pool %s: %s, %" PRIu64 " items, %" PRIu64
			" bytes, %" PRIu64 " buckets, checked OK\n", path,
			created ? "created" : "opened", r->curr_items, r->bytes,
			r->nbuckets);
	if (check_only)
		return 0;
	pstart();
	r->cas_counter += VMC_CAS_GAP;
	r->starts++;
	rc = pend();
	if (rc != 0) {
		fprintf(stderr, "vmcached: commit failed: %s\n", vp_strerror(rc));
		return -1;
	}
	return 0;
}
