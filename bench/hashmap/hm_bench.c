/* SPDX-License-Identifier: MIT */
/*
 * hm_bench.c -- workloads, oracle, timing and verification for the hashmap
 * benchmark, shared by every backend.
 *
 * A run: open the pool (creating and preloading it, or adopting a copy of a
 * preloaded base pool), check the preloaded keys, run the measured phase
 * (T threads, one table lock, B operations per failure-atomic batch, until
 * the operation count or the time cap is reached), make it durable, time a
 * lookup pass over every live key, close, REOPEN and check that exactly the
 * keys the oracle holds are present with the right values. One JSON line on
 * stdout; exit status 0 only if the check passed.
 *
 * Batches that contain no update (lookups only) run under the table lock
 * but outside any FAS or transaction, on every backend alike: no program
 * wraps a pure read in a transaction. Per-operation latency is the time of
 * a batch (lock wait and commit included) divided by its operations, from
 * every batch when B >= 16 and from a random eighth of them when B < 16, so
 * that reading the clock does not distort the cheapest operations.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE 1 /* PTHREAD_ADAPTIVE_MUTEX_INITIALIZER_NP */
#endif
#include "hm_bench.h"

#include <errno.h>
#include <getopt.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../../tests/num.h"

enum { WL_INSERT, WL_MIXED, WL_READ95, WL_DELETE };
enum { OP_GET, OP_PUT, OP_DEL };

#define MAX_BATCH 65536u
#define PRELOAD_BATCH 4096u

/* glibc's adaptive mutex spins a little before it sleeps. A plain one
 * puts the loser of a contended hand-off to sleep, and waking a sleeping
 * thread on the other CPU costs 16-26 us on the 2-core VMs this runs on (a
 * condvar ping-pong, measured 2026-12-03) -- longer than the operation: two
 * threads at 1 op per FAS then run in lock step at one wake-up per
 * operation (vp-cc-sync 2 threads: 124k ops/s with the plain mutex, 396k
 * adaptive; PMDK 326k both ways). Every backend takes this lock alike. */
static pthread_mutex_t table_lock = PTHREAD_ADAPTIVE_MUTEX_INITIALIZER_NP;

void hm_lock(void) { pthread_mutex_lock(&table_lock); }
void hm_unlock(void) { pthread_mutex_unlock(&table_lock); }

/* The shared state: table handle and oracle, all under table_lock. */
static struct {
	const struct hm_opts *o;
	const struct hm_backend *be;
	int wl;
	struct hm h;
	uint64_t universe;	/* ids 0..universe-1 may ever be inserted */
	uint64_t next_id;	/* next never-inserted id */
	uint8_t *present;	/* present[id]: id's key is in the table */
	uint32_t *live;		/* delete workload: dense list of live ids */
	uint64_t nlive;
	atomic_int stop;
	double t0;
} S;

struct worker {
	unsigned id;
	pthread_t thr;
	uint64_t rng;
	uint64_t quota, done;
	uint64_t *lat;		/* per-op ns of sampled batches */
	size_t nlat, lcap;
	unsigned nb;		/* ops in the current batch */
	uint8_t kind[MAX_BATCH];
	int err;
	unsigned char val[256 + 8];
};

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* splitmix64 (Steele, Lea, Flood 2014) -- per-thread random numbers. */
static inline uint64_t rnd(uint64_t *s)
{
	uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

/* key_of -- a bijection from ids to distinct, non-sequential keys. */
static inline uint64_t key_of(uint64_t id)
{
	return (id + 1) * 0x9e3779b97f4a7c15ull ^ 0x5eed5eed5eedull;
}

static inline size_t vlen_of(uint64_t key)
{
	if (S.o->value_size)
		return S.o->value_size;
	return 8 + (size_t)((key >> 17) % 249);
}

static inline uint64_t vword_of(uint64_t key)
{
	return (key ^ 0x5bd1e9955bd1e995ull) * 0xff51afd7ed558ccdull;
}

static void make_val(unsigned char *buf, uint64_t key, size_t len)
{
	uint64_t w = vword_of(key);
	for (size_t i = 0; i < len; i += 8)
		memcpy(buf + i, &w, len - i < 8 ? len - i : 8);
}

/* val_ok -- whether node n holds key's value (first word or all of it). */
static bool val_ok(const struct hm_node *n, uint64_t key, bool full)
{
	size_t len = vlen_of(key);
	if (!n || n->vlen != len)
		return false;
	if (!full) {
		uint64_t w = vword_of(key), got = 0;
		memcpy(&got, n->val, len < 8 ? len : 8);
		uint64_t want = 0;
		memcpy(&want, &w, len < 8 ? len : 8);
		return got == want;
	}
	unsigned char buf[256 + 8];
	make_val(buf, key, len);
	return memcmp(buf, n->val, len) == 0;
}

static int op_insert(struct worker *w)
{
	uint64_t id = S.next_id;
	if (id >= S.universe)
		return -ERANGE;
	uint64_t key = key_of(id);
	size_t len = vlen_of(key);
	make_val(w->val, key, len);
	int rc = hm_put(&S.h, key, w->val, len);
	if (rc != 1)
		return rc < 0 ? rc : -EEXIST;
	S.next_id++;
	S.present[id] = 1;
	if (S.live)
		S.live[S.nlive++] = (uint32_t)id;
	return 0;
}

static int op_lookup(uint64_t r)
{
	uint64_t id;
	if (S.live) {
		if (S.nlive == 0)
			return 0;
		id = S.live[r % S.nlive];
	} else {
		if (S.next_id == 0)
			return 0;
		id = r % S.next_id;
	}
	uint64_t key = key_of(id);
	return val_ok(hm_get(&S.h, key), key, false) ? 0 : -EBADMSG;
}

static int op_delete(uint64_t r)
{
	if (S.nlive == 0)
		return 0;
	uint64_t i = r % S.nlive;
	uint32_t id = S.live[i];
	if (hm_del(&S.h, key_of(id)) != 1)
		return -EBADMSG;
	S.present[id] = 0;
	S.live[i] = S.live[--S.nlive];
	return 0;
}

/* batch_fn -- the body of one batch; runs under table_lock. */
static int batch_fn(void *arg)
{
	struct worker *w = arg;
	for (unsigned i = 0; i < w->nb; i++) {
		int rc;
		uint64_t r = rnd(&w->rng);
		switch (w->kind[i]) {
		case OP_PUT: rc = op_insert(w); break;
		case OP_DEL: rc = op_delete(r); break;
		default: rc = op_lookup(r); break;
		}
		if (rc < 0)
			return rc;
	}
	return 0;
}

/* pick_kinds -- the operation mix of the next batch; true if it writes. */
static bool pick_kinds(struct worker *w)
{
	bool writes = false;
	for (unsigned i = 0; i < w->nb; i++) {
		uint64_t r = rnd(&w->rng);
		uint8_t k;
		switch (S.wl) {
		case WL_INSERT: k = OP_PUT; break;
		case WL_MIXED: k = (r & 1) ? OP_PUT : OP_GET; break;
		case WL_READ95: k = (r % 100) < 95 ? OP_GET : OP_PUT; break;
		default: /* delete-heavy: 50% delete, 25% insert, 25% lookup */
			k = (r & 3) < 2 ? OP_DEL : (r & 3) == 2 ? OP_PUT : OP_GET;
			break;
		}
		w->kind[i] = k;
		writes |= k != OP_GET;
	}
	return writes;
}

static int read_batch(int (*fn)(void *), void *arg)
{
	hm_lock();
	int rc = fn(arg);
	hm_unlock();
	return rc;
}

static void *worker_main(void *arg)
{
	struct worker *w = arg;
	unsigned B = S.o->batch;
	unsigned check_every = B >= 64 ? 1 : 64 / B;
	unsigned since = 0;
	while (w->done < w->quota && !atomic_load_explicit(&S.stop, memory_order_relaxed)) {
		uint64_t left = w->quota - w->done;
		w->nb = left < B ? (unsigned)left : B;
		bool writes = pick_kinds(w);
		bool sample = B >= 16 || (rnd(&w->rng) & 7) == 0;
		double t0 = sample ? now_s() : 0;
		int rc = writes ? S.be->batch(batch_fn, w) : read_batch(batch_fn, w);
		if (rc < 0) {
			w->err = rc;
			atomic_store(&S.stop, 1);
			break;
		}
		double t1 = sample ? now_s() : 0;
		if (sample && w->nlat < w->lcap)
			w->lat[w->nlat++] = (uint64_t)((t1 - t0) * 1e9 / w->nb);
		w->done += w->nb;
		if (S.o->max_seconds > 0 && ++since >= check_every) {
			since = 0;
			if ((t1 ? t1 : now_s()) - S.t0 > S.o->max_seconds)
				atomic_store(&S.stop, 1);
		}
	}
	return NULL;
}

static int preload_fn(void *arg)
{
	uint64_t end = *(uint64_t *)arg;
	static struct worker pw;
	while (S.next_id < end) {
		int rc = op_insert(&pw);
		if (rc < 0)
			return rc;
	}
	return 0;
}

static int lose_fn(void *arg)
{
	return hm_del(&S.h, key_of(*(uint64_t *)arg)) == 1 ? 0 : -ENOENT;
}

static int init_fn(void *arg)
{
	return hm_init(&S.h, arg, S.o->buckets);
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

static void usage(const char *prog)
{
	fprintf(stderr,
		"usage: %s --config C --pool PATH [--workload insert|mixed|read95|delete]\n"
		"  [--threads T] [--batch B] [--keys N] [--preload P] [--ops M]\n"
		"  [--buckets NB] [--value-size 8..256|0=variable] [--max-seconds S]\n"
		"  [--tracker uffd|mprotect|full|cc] [--interval-ms I (0=sync)]\n"
		"  [--pool-mb MB] [--seed X] [--build] [--inject-loss]\n", prog);
}

static int parse(int argc, char **argv, struct hm_opts *o)
{
	static const struct option lo[] = {
		{"config", 1, 0, 'c'}, {"pool", 1, 0, 'p'}, {"workload", 1, 0, 'w'},
		{"threads", 1, 0, 't'}, {"batch", 1, 0, 'b'}, {"keys", 1, 0, 'n'},
		{"preload", 1, 0, 'P'}, {"ops", 1, 0, 'o'}, {"buckets", 1, 0, 'B'},
		{"value-size", 1, 0, 'v'}, {"max-seconds", 1, 0, 's'},
		{"tracker", 1, 0, 'T'}, {"interval-ms", 1, 0, 'i'},
		{"pool-mb", 1, 0, 'm'}, {"seed", 1, 0, 'S'}, {"build", 0, 0, 'x'},
		{"inject-loss", 0, 0, 'L'},
		{"help", 0, 0, 'h'}, {0, 0, 0, 0},
	};
	int64_t preload = -1, ops = -1;
	uint64_t pool_mb = 0;
	*o = (struct hm_opts){ .workload = "insert", .interval_ms = -1,
			       .threads = 1, .batch = 1, .keys = 1000000,
			       .value_size = 32, .seed = 0x5eed };
	int c;
	while ((c = getopt_long(argc, argv, "", lo, NULL)) != -1) {
		switch (c) {
		case 'c': o->config = optarg; break;
		case 'p': o->pool = optarg; break;
		case 'w': o->workload = optarg; break;
		case 't': o->threads = (unsigned)vpt_uint("hm_bench", "--threads", optarg, 1, 64); break;
		case 'b': o->batch = (unsigned)vpt_uint("hm_bench", "--batch", optarg, 1, MAX_BATCH); break;
		case 'n': o->keys = vpt_uint("hm_bench", "--keys", optarg, 1, 0x7fffffff); break;
		case 'P': preload = (int64_t)vpt_uint("hm_bench", "--preload", optarg, 0, INT64_MAX); break;
		case 'o': ops = (int64_t)vpt_uint("hm_bench", "--ops", optarg, 0, INT64_MAX); break;
		case 'B': o->buckets = vpt_uint("hm_bench", "--buckets", optarg, 0, UINT64_MAX); break;
		case 'v': o->value_size = (unsigned)vpt_uint("hm_bench", "--value-size", optarg, 0, 256); break;
		case 's': o->max_seconds = vpt_double("hm_bench", "--seconds", optarg); break;
		case 'T': o->tracker = optarg; break;
		case 'i': o->interval_ms = (int)vpt_uint("hm_bench", "--interval-ms", optarg, 0, 3600000); break;
		case 'm': pool_mb = vpt_uint("hm_bench", "--pool-mb", optarg, 1, UINT64_MAX >> 20); break;
		case 'S': o->seed = vpt_uint("hm_bench", "--seed", optarg, 0, UINT64_MAX); break;
		case 'x': o->build = true; break;
		case 'L': o->inject_loss = true; break;
		default: usage(argv[0]); return -EINVAL;
		}
	}
	if (!o->config || o->threads < 1 || o->threads > 64 || o->batch < 1 ||
	    o->batch > MAX_BATCH || o->keys < 1 || o->keys > 0x7fffffff ||
	    (o->value_size && (o->value_size < 8 || o->value_size > 256))) {
		usage(argv[0]);
		return -EINVAL;
	}
	uint64_t dp, dops = o->keys;
	if (!strcmp(o->workload, "insert"))
		dp = 0;
	else if (!strcmp(o->workload, "mixed"))
		dp = o->keys / 2;
	else if (!strcmp(o->workload, "read95") || !strcmp(o->workload, "delete"))
		dp = o->keys;
	else {
		usage(argv[0]);
		return -EINVAL;
	}
	o->preload = preload >= 0 ? (uint64_t)preload : dp;
	o->ops = ops >= 0 ? (uint64_t)ops : dops;
	if (o->preload + o->ops > 0xfffffff0ull) {
		usage(argv[0]);
		return -EINVAL;
	}
	if (!o->buckets) {
		o->buckets = 16;
		while (o->buckets < o->keys)
			o->buckets <<= 1;
	}
	if (o->buckets & (o->buckets - 1)) {
		fprintf(stderr, "--buckets must be a power of two\n");
		return -EINVAL;
	}
	if (pool_mb) {
		o->pool_bytes = pool_mb << 20;
	} else {
		/* nodes (room for the longest value when variable), the
		 * bucket array twice over for a resize, allocator slack */
		uint64_t nodes = o->preload + o->ops + 16;
		uint64_t nb = o->buckets;
		while (nb * HM_MAX_LOAD < nodes)
			nb <<= 1;
		o->pool_bytes = (64ull << 20) + nodes * hm_bench_node_bytes(o) * 3 / 2 +
				nb * sizeof(hm_ref) * 3;
	}
	/* a base pool is sized for the runs that will copy it */
	if (o->build)
		o->ops = 0;
	return 0;
}

/* hm_bench_node_bytes -- bytes a node may take in an allocator (header and
 * rounding included), for sizing pools. */
uint64_t hm_bench_node_bytes(const struct hm_opts *o)
{
	uint64_t v = o->value_size ? o->value_size : 256;
	return ((sizeof(struct hm_node) + v + 15) & ~15ull) + 32;
}

/* verify -- exactly the oracle's keys, with full values; structure sane. */
static int verify(uint64_t *count)
{
	uint64_t c = 0, want = 0;
	int rc = hm_check(&S.h, &c);
	if (rc < 0) {
		fprintf(stderr, "verify: table structure damaged (%d)\n", rc);
		return rc;
	}
	for (uint64_t id = 0; id < S.next_id; id++) {
		uint64_t key = key_of(id);
		const struct hm_node *n = hm_get(&S.h, key);
		if (S.present[id]) {
			want++;
			if (!val_ok(n, key, true)) {
				fprintf(stderr, "verify: id %llu key %#llx %s\n",
					(unsigned long long)id, (unsigned long long)key,
					n ? "has a wrong value" : "is missing");
				return -EBADMSG;
			}
		} else if (n) {
			fprintf(stderr, "verify: deleted id %llu is present\n",
				(unsigned long long)id);
			return -EBADMSG;
		}
	}
	if (c != want) {
		fprintf(stderr, "verify: table has %llu nodes, oracle %llu\n",
			(unsigned long long)c, (unsigned long long)want);
		return -EBADMSG;
	}
	*count = c;
	return 0;
}

/* open_table -- open the pool and attach to (or create) the table. */
static int open_table(bool reopen)
{
	struct hm_root *root = NULL;
	bool created = false;
	int rc = S.be->open(S.o, reopen, &root, &created);
	if (rc < 0) {
		fprintf(stderr, "%s: open %s failed: %d\n", S.be->name,
			S.o->pool ? S.o->pool : "(volatile)", rc);
		return rc;
	}
	if (created) {
		if (reopen) {
			fprintf(stderr, "reopen found an empty pool\n");
			return -EBADMSG;
		}
		return S.be->batch(init_fn, root);
	}
	rc = hm_attach(&S.h, root);
	if (rc < 0)
		fprintf(stderr, "pool holds no valid table (%d)\n", rc);
	return rc;
}

static int fail(const char *what, int rc)
{
	printf("{\"config\":\"%s\",\"workload\":\"%s\",\"verified\":0,"
	       "\"error\":\"%s\",\"rc\":%d}\n", S.o->config, S.o->workload, what, rc);
	return 1;
}

/* hm_bench_main -- one run; see the top of this file. */
int hm_bench_main(int argc, char **argv, const struct hm_backend *be)
{
	static struct hm_opts o;
	if (parse(argc, argv, &o) < 0)
		return 2;
	S.o = &o;
	S.be = be;
	S.wl = !strcmp(o.workload, "insert") ? WL_INSERT :
	       !strcmp(o.workload, "mixed") ? WL_MIXED :
	       !strcmp(o.workload, "read95") ? WL_READ95 : WL_DELETE;
	S.universe = o.preload + o.ops;
	S.present = calloc(S.universe + 1, 1);
	if (S.wl == WL_DELETE)
		S.live = calloc(S.universe + 1, sizeof *S.live);
	if (!S.present || (S.wl == WL_DELETE && !S.live))
		return fail("oom", -ENOMEM);

	double t_open = now_s();
	int rc = open_table(false);
	if (rc < 0)
		return fail("open", rc);
	t_open = now_s() - t_open;
	double tpre = now_s();
	if (S.h.count == 0 && o.preload) {
		for (uint64_t end = 0; end < o.preload;) {
			end = end + PRELOAD_BATCH < o.preload ? end + PRELOAD_BATCH : o.preload;
			if ((rc = be->batch(preload_fn, &end)) < 0)
				return fail("preload", rc);
		}
	} else if (S.h.count == o.preload) {
		/* an existing pool with the preloaded keys: adopt the oracle */
		for (uint64_t id = 0; id < o.preload; id++) {
			S.present[id] = 1;
			if (S.live)
				S.live[S.nlive++] = (uint32_t)id;
		}
		S.next_id = o.preload;
	} else {
		fprintf(stderr, "pool holds %llu keys, expected 0 or %llu\n",
			(unsigned long long)S.h.count, (unsigned long long)o.preload);
		return fail("pool-content", -EBADMSG);
	}
	tpre = now_s() - tpre;
	if (o.build) {
		rc = be->close();
		printf("{\"config\":\"%s\",\"built\":%llu,\"secs\":%.3f,\"rc\":%d}\n",
		       o.config, (unsigned long long)S.next_id, tpre, rc);
		return rc < 0;
	}
	/* warm-up and check of the preloaded keys (untimed) */
	double t_warm = now_s();
	for (uint64_t id = 0; id < S.next_id; id++)
		if (!val_ok(hm_get(&S.h, key_of(id)), key_of(id), false))
			return fail("preload-check", -EBADMSG);

	t_warm = now_s() - t_warm;

	/* ---- measured phase ---- */
	struct worker *w = calloc(o.threads, sizeof *w);
	if (!w)
		return fail("oom", -ENOMEM);
	for (unsigned i = 0; i < o.threads; i++) {
		w[i].id = i;
		w[i].rng = o.seed * 1000003 + i + 1;
		w[i].quota = o.ops / o.threads + (i == 0 ? o.ops % o.threads : 0);
		w[i].lcap = w[i].quota / o.batch + 1;
		w[i].lat = malloc(w[i].lcap * sizeof *w[i].lat);
		if (!w[i].lat)
			return fail("oom", -ENOMEM);
	}
	if (be->stats_reset)
		be->stats_reset();
	S.t0 = now_s();
	for (unsigned i = 1; i < o.threads; i++)
		if (pthread_create(&w[i].thr, NULL, worker_main, &w[i]) != 0)
			return fail("pthread_create", -EAGAIN);
	worker_main(&w[0]);
	for (unsigned i = 1; i < o.threads; i++)
		pthread_join(w[i].thr, NULL);
	rc = be->sync ? be->sync() : 0;
	double secs = now_s() - S.t0;
	uint64_t done = 0;
	size_t nlat = 0;
	for (unsigned i = 0; i < o.threads; i++) {
		done += w[i].done;
		nlat += w[i].nlat;
		if (w[i].err && rc >= 0)
			rc = w[i].err;
	}
	if (rc < 0)
		return fail("measured-phase", rc);
	uint64_t *lat = malloc((nlat + 1) * sizeof *lat);
	if (!lat)
		return fail("oom", -ENOMEM);
	nlat = 0;
	for (unsigned i = 0; i < o.threads; i++) {
		memcpy(lat + nlat, w[i].lat, w[i].nlat * sizeof *lat);
		nlat += w[i].nlat;
	}
	qsort(lat, nlat, sizeof *lat, cmp_u64);
	uint64_t p50 = nlat ? lat[nlat / 2] : 0, p99 = nlat ? lat[nlat * 99 / 100] : 0;

	/* lookup pass over every live key, one thread, insertion order */
	uint64_t nlook = 0;
	double tl = now_s();
	for (uint64_t id = 0; id < S.next_id; id++) {
		if (!S.present[id])
			continue;
		if (!val_ok(hm_get(&S.h, key_of(id)), key_of(id), false))
			return fail("lookup-pass", -EBADMSG);
		nlook++;
	}
	tl = now_s() - tl;

	/* self-test of the check: drop one live key behind the oracle's back */
	if (o.inject_loss) {
		uint64_t id = 0;
		while (id < S.next_id && !S.present[id])
			id++;
		if ((rc = be->batch(lose_fn, &id)) < 0)
			return fail("inject-loss", rc);
	}

	/* the backend's counters of the measured phase, before closing */
	char stats[1024] = "";
	if (be->stats_json) {
		FILE *f = fmemopen(stats, sizeof stats - 1, "w");
		if (f) {
			be->stats_json(f);
			fclose(f);
		}
	}

	/* close, reopen, check everything */
	uint64_t count = 0;
	double t_verify = now_s();
	if (be->can_reopen) {
		if ((rc = be->close()) < 0)
			return fail("close", rc);
		if ((rc = open_table(true)) < 0)
			return fail("reopen", rc);
	}
	if ((rc = verify(&count)) < 0)
		return fail("verify", rc);
	if ((rc = be->close()) < 0)
		return fail("final-close", rc);
	t_verify = now_s() - t_verify;

	printf("{\"config\":\"%s\",\"tracker\":\"%s\",\"interval_ms\":%d,"
	       "\"workload\":\"%s\",\"threads\":%u,\"batch\":%u,\"keys\":%llu,"
	       "\"preload\":%llu,\"ops\":%llu,\"secs\":%.6f,\"ops_per_s\":%.1f,"
	       "\"p50_ns\":%llu,\"p99_ns\":%llu,\"lat_samples\":%zu,"
	       "\"lookups\":%llu,\"lookups_per_s\":%.1f,\"final_count\":%llu,"
	       "\"value_size\":%u,\"t_open\":%.3f,\"t_preload\":%.3f,"
	       "\"t_warm\":%.3f,\"t_verify\":%.3f%s,\"verified\":1}\n",
	       o.config, o.tracker ? o.tracker : "", o.interval_ms, o.workload,
	       o.threads, o.batch, (unsigned long long)o.keys,
	       (unsigned long long)o.preload, (unsigned long long)done, secs,
	       secs > 0 ? (double)done / secs : 0.0, (unsigned long long)p50,
	       (unsigned long long)p99, nlat, (unsigned long long)nlook,
	       tl > 0 ? (double)nlook / tl : 0.0, (unsigned long long)count,
	       o.value_size, t_open, tpre, t_warm, t_verify, stats);
	for (unsigned i = 0; i < o.threads; i++)
		free(w[i].lat);
	free(w);
	free(lat);
	free(S.present);
	free(S.live);
	return 0;
}
