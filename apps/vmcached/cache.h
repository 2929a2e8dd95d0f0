/* SPDX-License-Identifier: MIT */
/*
 * cache.h -- the persistent cache of vmcached: items, hash table, LRU list,
 * CAS counter and flush_all deadline, all in the persistent heap.
 *
 * Everything reachable from the root "vmcached" lives in the pool and is
 * changed only inside a failure-atomic section (FAS), so after kill -9 the
 * cache is exactly the state of the last commit: no torn item, no half
 * linked chain. The functions below assume the caller holds the cache lock
 * (vmc_lock); the mutating ones also assume the caller is inside a FAS
 * (pstart() BEFORE vmc_lock(), see the deadlock rule in volipmem.h).
 * Lookups used by get/gets run outside any FAS and write nothing to the
 * heap.
 *
 * The LRU is a CLOCK (second-chance) list: new items enter at the head; an
 * item that is read or overwritten gets a mark instead of being moved (a
 * move writes three other items' pages, each a write-tracking fault and a
 * page in the next commit); at the tail a marked item loses its mark and
 * goes back to the head, an unmarked one is evicted. The marks are hints
 * kept in volatile memory, one byte per 64 bytes of heap (every item is
 * larger), so a get writes nothing the tracker sees; a restart forgets
 * them, which costs nothing but LRU precision.
 */
#ifndef VMC_CACHE_H
#define VMC_CACHE_H

#include <stddef.h>
#include <stdint.h>
#include <stdbool.h>

#define VMC_KEY_MAX 250
#define VMC_ROOT_NAME "vmcached"
#define VMC_MAGIC 0x31454843414d5601ull /* "\1VMACHE1" */
#define VMC_LAYOUT 1u
/* CAS values skipped at every start: more than can be handed out in one
 * commit interval, so a value acknowledged but lost in a crash (relaxed
 * mode) is never handed out again. */
#define VMC_CAS_GAP (1ull << 32)

/* An item: header, then the key, then the value with its trailing "\r\n". */
struct vmc_item {
	struct vmc_item *h_next;  /* next in the hash chain                */
	struct vmc_item *prev;    /* LRU neighbour towards the head (newer) */
	struct vmc_item *next;    /* LRU neighbour towards the tail (older) */
	uint64_t cas;             /* unique per store                      */
	uint64_t time_ms;         /* last store, ms since epoch            */
	int64_t exptime;          /* absolute unix seconds, 0 = never       */
	uint64_t csum;            /* checksum of header fields, key, value  */
	uint32_t flags;           /* client flags                          */
	uint32_t nbytes;          /* value length including "\r\n"         */
	uint32_t hash;            /* low 32 bits of the key hash           */
	uint16_t nkey;            /* key length                            */
	uint16_t iflags;          /* VMC_IT_*; 0 in pools of older builds  */
	char data[];              /* key, then value                       */
};

/* iflags: the meta protocol's item state (memcached's it_flags of the
 * same names); outside the checksum, changed only inside a FAS. */
#define VMC_IT_STALE 1       /* invalidated (md I, ms I): serve, but stale */
#define VMC_IT_TOKEN_SENT 2  /* a client won the right to recache it (W)  */
#define VMC_IT_KEY_BINARY 4  /* stored with a base64 key (b): binary key  */

/* The root object. */
struct vmc_root {
	uint64_t magic;             /* VMC_MAGIC once initialised          */
	uint64_t layout;            /* VMC_LAYOUT                          */
	uint64_t nbuckets;          /* power of two                        */
	struct vmc_item **buckets;  /* pmalloc'd array of chain heads      */
	struct vmc_item *lru_head;  /* most recently used                  */
	struct vmc_item *lru_tail;  /* least recently used: evicted first  */
	uint64_t cas_counter;       /* last CAS value handed out           */
	int64_t flush_deadline_s;   /* delayed flush_all: items last stored
	                               in this unix second or before die
	                               once it has come; 0 = none          */
	uint64_t flush_cas;         /* immediate flush_all: items with a
	                               smaller CAS are dead; 0 = none       */
	uint64_t curr_items;        /* items linked                        */
	uint64_t bytes;             /* item bytes counted against -m       */
	uint64_t total_items;       /* items ever stored                   */
	uint64_t evictions;         /* live items evicted for space        */
	uint64_t reclaimed;         /* expired/flushed items freed         */
	uint64_t starts;            /* how often the pool was opened       */
	uint64_t reserved[9];       /* zero                                */
};

enum vmc_cmd { VMC_SET, VMC_ADD, VMC_REPLACE, VMC_APPEND, VMC_PREPEND,
	       VMC_CAS };
enum vmc_store_res { VMC_STORED, VMC_NOT_STORED, VMC_EXISTS, VMC_NOT_FOUND,
		     VMC_TOO_LARGE, VMC_NO_MEMORY };
enum vmc_delta_res { VMC_DELTA_OK, VMC_DELTA_NOT_FOUND,
		     VMC_DELTA_NON_NUMERIC, VMC_DELTA_NO_MEMORY,
		     VMC_DELTA_EXISTS };
/* vmc_store's opts */
#define VMC_OPT_STALE_CAS 1  /* a CAS below the item's stores it as stale */
#define VMC_OPT_BINKEY 2     /* the key is binary (VMC_IT_KEY_BINARY)    */
enum vmc_miss { VMC_HIT, VMC_MISS, VMC_MISS_EXPIRED, VMC_MISS_FLUSHED };

/* Settings and current time shared by the whole server. */
struct vmc_clock {
	int64_t now_s;    /* unix seconds  */
	uint64_t now_ms;  /* unix ms       */
};

extern struct vmc_root *vmc_root;
extern size_t vmc_item_max;  /* largest item (header + key + value) */
extern uint64_t vmc_limit;   /* -m in bytes                         */

void vmc_lock(void);
void vmc_unlock(void);
void vmc_clock_now(struct vmc_clock *c);
uint64_t vmc_hash(const char *key, size_t nkey);
static inline char *vmc_item_value(struct vmc_item *it)
{
	return it->data + it->nkey;
}
static inline size_t vmc_item_size(size_t nkey, size_t nbytes)
{
	return sizeof(struct vmc_item) + nkey + nbytes;
}

/* vmc_open -- map the pool, create or validate the cache, check it.
 * Prints what went wrong and returns non-zero on failure. */
int vmc_open(const char *path, uint64_t limit, bool check_only, bool quiet);
/* vmc_check -- walk table and LRU, verify links, counts and checksums. */
int vmc_check(char *why, size_t whylen);
/* vmc_chunk_bytes -- heap bytes the items' blocks take (lock held). */
uint64_t vmc_chunk_bytes(void);

struct vmc_item *vmc_find(const char *key, size_t nkey, uint64_t hv,
			  const struct vmc_clock *now, enum vmc_miss *miss);
/* vmc_referenced -- a get marks the item used and fetched (in volatile
 * memory, like the CLOCK mark: a restart forgets both). */
void vmc_referenced(struct vmc_item *it);
/* vmc_fetched -- has the item been read since it was stored? */
bool vmc_fetched(const struct vmc_item *it);
/* mutating operations: caller inside a FAS, holding the lock */
/* vmc_store -- cas_in: for VMC_CAS the CAS to match; for append/prepend,
 * if not 0, too (memcached's meta rule); opts: VMC_OPT_*. */
enum vmc_store_res vmc_store(enum vmc_cmd cmd, const char *key, size_t nkey,
			     uint64_t hv, uint32_t flags, int64_t exptime,
			     const char *data, size_t nbytes, uint64_t cas_in,
			     unsigned opts, const struct vmc_clock *now);
/* vmc_invalidate -- md I: mark the live item stale with a new CAS (and
 * exptime, if set_exp), forget a sent win token. NULL if no live item. */
struct vmc_item *vmc_invalidate(const char *key, size_t nkey, uint64_t hv,
				bool set_exp, int64_t exptime,
				const struct vmc_clock *now);
/* vmc_set_iflags -- or bits into a live item's iflags. */
void vmc_set_iflags(struct vmc_item *it, uint16_t bits);
void vmc_unlink_key(const char *key, size_t nkey, uint64_t hv,
		    const struct vmc_clock *now);
bool vmc_delete(const char *key, size_t nkey, uint64_t hv,
		const struct vmc_clock *now);
struct vmc_item *vmc_touch(const char *key, size_t nkey, uint64_t hv,
			   int64_t exptime, const struct vmc_clock *now);
/* vmc_delta -- cas_in: if not 0, the CAS the item must have. */
enum vmc_delta_res vmc_delta(const char *key, size_t nkey, uint64_t hv,
			     bool incr, uint64_t delta, uint64_t cas_in,
			     char *out, size_t outlen,
			     const struct vmc_clock *now);
void vmc_flush(int64_t delay_s, const struct vmc_clock *now);
/* vmc_walk -- call fn on each live item from the LRU head (newest first)
 * until it returns false. Caller holds the lock; writes nothing. */
void vmc_walk(bool (*fn)(void *ctx, const struct vmc_item *it), void *ctx,
	      const struct vmc_clock *now);
/* vmc_set_limit -- change -m at run time (cache_memlimit): false if the
 * pool's heap, sized from -m when it was created, cannot hold that much.
 * Takes the lock; items over a lower limit are evicted by later stores. */
bool vmc_set_limit(uint64_t limit);

#endif
