/* SPDX-License-Identifier: MIT */
/*
 * sim.c -- the power-failure simulator: run workloads on a real pool while
 * recording every store, flush and drain the runtime makes to it (through
 * vp__persist_hooks), and at every drain materialise the pool as a power
 * failure at that instant could leave it, recover each such image with the
 * library's own recovery, and check it.
 *
 * Persistence model (the one persist.h states): a cache line stored, then
 * flushed, then drained is durable. A line stored but not yet drained
 * (flushed or not) may or may not have reached the medium, independently of
 * every other line. So a crash just before drain D leaves
 *     durable image  +  any subset of the lines pending at D.
 * Small pending sets (records) are enumerated completely; large ones (log
 * slots, home pages) are sampled: nothing, everything, random halves, each
 * page whole or lost, in-order prefixes, everything but one line, nothing
 * but one line.
 *
 * Oracle, per commit: every crash state must recover, pass the checker (the
 * code `volipmem check` runs), and its heap must equal, byte for byte,
 * either the heap before the commit or the heap the commit produces; once
 * the commit point has passed (record A durable), only the latter. In
 * single-threaded workloads the heap after each pend() must also equal what
 * the program wrote (the working copy), so the "after" state is itself
 * right. Crash states whose log holds a committed group are also used to
 * interrupt recovery itself: recovery is recorded the same way, and crash
 * states of recovery are recovered again and must give the same heap.
 *
 * Environment: VP_SIM_SCALE=N (default 1) multiplies workload lengths and
 * samples; VP_SIM_NESTED=N interrupts the recovery of one committed crash
 * state in N (default 16); VP_SIM_SEED=S fixes the random seed;
 * VP_SIM_ONLY=a,b runs those workloads; VP_SIM_BREAK=point makes that drain
 * persist nothing (a self-test: the run must then fail). Prints the number
 * of crash states checked; on a failure, the crash point, the subset of
 * lines kept, and a copy of the unrecovered image
 * for `volipmem check`.
 */
#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <xxhash.h>

#include "persist/persist.h"
#include "pool/pool.h"
#include "runtime/inspect.h"
#include "runtime/runtime.h"
#include "util/util.h"
#include "util/options.h"

#include "../num.h"

#define LINE 64u
#define HEAP_SIZE (1u << 20)

/* ---------------- small utilities ---------------- */

static uint64_t rng_state = 88172645463325252ull;
static uint64_t rnd(void)
{
	uint64_t x = rng_state;
	x ^= x << 13;
	x ^= x >> 7;
	x ^= x << 17;
	return rng_state = x;
}
static uint64_t rnd_below(uint64_t n) { return n ? rnd() % n : 0; }

static int scale = 1;
static uint64_t nested_every = 16; /* VP_SIM_NESTED */
static char pool_path[256];

static void die(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
static void die(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	fprintf(stderr, "sim: FAILED: ");
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	if (pool_path[0])
		unlink(pool_path);
	exit(1);
}

static uint64_t hash(const void *p, size_t n) { return XXH3_64bits(p, n); }

/* ---------------- the recorder ---------------- */

enum { L_CLEAN = 0, L_STORED = 1, L_FLUSHED = 2 };

/* struct recorder -- one recorded region (the pool mapping, or an image
 * being recovered): its durable contents and the lines pending. */
struct recorder {
	uint8_t *base;          /* live bytes (what the runtime wrote)       */
	size_t len;
	uint8_t *dur;           /* durable bytes                              */
	uint8_t *st;            /* per line: L_*                              */
	uint32_t *pend;         /* pending lines in order of first store      */
	size_t npend, cap;
	void (*on_fence)(struct recorder *r, const char *point);
	uint64_t fences;
};

static void rec_init(struct recorder *r, uint8_t *base, size_t len, void (*on_fence)(struct recorder *, const char *))
{
	memset(r, 0, sizeof *r);
	r->base = base;
	r->len = len;
	r->dur = malloc(len);
	r->st = calloc(len / LINE + 1, 1);
	r->cap = 1024;
	r->pend = malloc(r->cap * sizeof *r->pend);
	if (!r->dur || !r->st || !r->pend)
		die("out of memory for the recorder");
	memcpy(r->dur, base, len);
	r->on_fence = on_fence;
}

/* rec_init_file -- a recorder armed before pmap(): the durable bytes are
 * the pool file as it is now (synced), the mapping is learnt at the first
 * store. */
static void rec_init_file(struct recorder *r, const char *path, void (*on_fence)(struct recorder *, const char *))
{
	memset(r, 0, sizeof *r);
	FILE *f = fopen(path, "rb");
	if (!f)
		die("cannot read %s", path);
	fseek(f, 0, SEEK_END);
	r->len = (size_t)ftell(f);
	fseek(f, 0, SEEK_SET);
	r->dur = malloc(r->len);
	r->st = calloc(r->len / LINE + 1, 1);
	r->cap = 1024;
	r->pend = malloc(r->cap * sizeof *r->pend);
	if (!r->dur || !r->st || !r->pend || fread(r->dur, 1, r->len, f) != r->len)
		die("cannot read %s", path);
	fclose(f);
	r->on_fence = on_fence;
}

static void rec_free(struct recorder *r)
{
	free(r->dur);
	free(r->st);
	free(r->pend);
}

static void h_store(void *ctx, const void *dst, size_t n)
{
	struct recorder *r = ctx;
	if (!r->base) /* armed before pmap: the pool is mapped now */
		r->base = vp__rt.pool.map;
	uintptr_t a = (uintptr_t)dst, b = (uintptr_t)r->base;
	if (a < b || a + n > b + r->len)
		die("store of %zu bytes at %p outside the recorded pool %p+%zu", n, dst, r->base, r->len);
	for (size_t l = (a - b) / LINE; l <= (a - b + n - 1) / LINE; l++) {
		if (r->st[l] == L_CLEAN) {
			if (r->npend == r->cap) {
				r->cap *= 2;
				r->pend = realloc(r->pend, r->cap * sizeof *r->pend);
				if (!r->pend)
					die("out of memory");
			}
			r->pend[r->npend++] = (uint32_t)l;
		}
		r->st[l] = L_STORED;
	}
}

static void h_flush(void *ctx, const void *addr, size_t n)
{
	struct recorder *r = ctx;
	if (!r->base)
		r->base = vp__rt.pool.map;
	uintptr_t a = (uintptr_t)addr, b = (uintptr_t)r->base;
	if (a < b || a + n > b + r->len)
		die("flush of %zu bytes at %p outside the recorded pool", n, addr);
	for (size_t l = (a - b) / LINE; l <= (a - b + n - 1) / LINE; l++)
		if (r->st[l] != L_CLEAN)
			r->st[l] = L_FLUSHED;
}

/* VP_SIM_BREAK=name: pretend the drain whose crash point contains name
 * persists nothing (its lines stay pending): the simulator must then report
 * a violation. A self-test that the oracle can fail. */
static const char *break_drain;

static int h_fence(void *ctx, const char *point)
{
	struct recorder *r = ctx;
	r->fences++;
	if (r->on_fence)
		r->on_fence(r, point);
	if (break_drain && strstr(point, break_drain))
		return 0;
	/* The drain: flushed lines become durable, stored-only lines stay
	 * pending. */
	size_t k = 0;
	for (size_t i = 0; i < r->npend; i++) {
		uint32_t l = r->pend[i];
		if (r->st[l] == L_FLUSHED) {
			size_t off = (size_t)l * LINE, n = off + LINE <= r->len ? LINE : r->len - off;
			memcpy(r->dur + off, r->base + off, n);
			r->st[l] = L_CLEAN;
		} else {
			r->pend[k++] = l;
		}
	}
	r->npend = k;
	return 0;
}

/* ---------------- crash-state subsets ---------------- */

enum sub_kind { S_INDEX, S_RANDOM, S_PAGES, S_PREFIX, S_ALL_BUT, S_ONLY, S_TORN };

struct subset {
	enum sub_kind kind;
	uint64_t arg;           /* index bits, seed, prefix length, line   */
};

static void sub_describe(const struct subset *s, size_t k, char *out, size_t n)
{
	switch (s->kind) {
	case S_INDEX: snprintf(out, n, "exhaustive subset %#llx of %zu pending lines", (unsigned long long)s->arg, k); break;
	case S_RANDOM: snprintf(out, n, "random half of %zu pending lines (seed %llu)", k, (unsigned long long)s->arg); break;
	case S_PAGES: snprintf(out, n, "random whole pages of %zu pending lines (seed %llu)", k, (unsigned long long)s->arg); break;
	case S_PREFIX: snprintf(out, n, "first %llu of %zu pending lines in store order", (unsigned long long)s->arg, k); break;
	case S_ALL_BUT: snprintf(out, n, "all %zu pending lines but #%llu", k, (unsigned long long)s->arg); break;
	case S_ONLY: snprintf(out, n, "only pending line #%llu of %zu", (unsigned long long)s->arg, k); break;
	case S_TORN:
		snprintf(out, n, "only the first %llu 8-byte words of pending line #%llu of %zu (torn line)",
			 (unsigned long long)(s->arg & 7), (unsigned long long)(s->arg >> 3), k);
		break;
	}
}

static bool sub_keeps(const struct subset *s, const struct recorder *r, size_t i, uint64_t *lcg)
{
	switch (s->kind) {
	case S_INDEX: return (s->arg >> i) & 1;
	case S_RANDOM:
		*lcg = *lcg * 6364136223846793005ull + 1442695040888963407ull;
		return (*lcg >> 33) & 1;
	case S_PAGES: {
		uint64_t pg = r->pend[i] / (VP_PAGE / LINE);
		return (XXH3_64bits_withSeed(&pg, sizeof pg, s->arg) & 1) != 0;
	}
	case S_PREFIX: return i < s->arg;
	case S_ALL_BUT: return i != s->arg;
	case S_ONLY: return i == s->arg;
	case S_TORN: return false; /* materialise() adds the torn line */
	}
	return false;
}

/* materialise -- out = durable image + the subset's pending lines. */
static void materialise(const struct recorder *r, const struct subset *s, uint8_t *out)
{
	memcpy(out, r->dur, r->len);
	uint64_t lcg = s->arg;
	for (size_t i = 0; i < r->npend; i++)
		if (sub_keeps(s, r, i, &lcg)) {
			size_t off = (size_t)r->pend[i] * LINE, n = off + LINE <= r->len ? LINE : r->len - off;
			memcpy(out + off, r->base + off, n);
		}
	if (s->kind == S_TORN) {
		/* 8-byte stores are the only atomic unit a medium promises:
		 * a line may reach it partly. */
		size_t off = (size_t)r->pend[s->arg >> 3] * LINE;
		memcpy(out + off, r->base + off, 8 * (s->arg & 7));
	}
}

/* subsets -- the crash states to try at a drain with k pending lines. */
static size_t subsets(size_t k, size_t nrandom, struct subset *out, size_t max)
{
	size_t n = 0;
	if (k <= 8) {
		for (uint64_t m = 0; m < (1ull << k) && n < max; m++)
			out[n++] = (struct subset){S_INDEX, m};
		for (uint64_t l = 0; k <= 2 && l < k; l++)
			for (uint64_t w = 1; w < 8 && n < max; w++)
				out[n++] = (struct subset){S_TORN, l << 3 | w};
		return n;
	}
	out[n++] = (struct subset){S_PREFIX, 0};
	out[n++] = (struct subset){S_PREFIX, k};
	for (size_t i = 0; i < nrandom && n + 5 <= max; i += 5) {
		out[n++] = (struct subset){S_RANDOM, rnd()};
		out[n++] = (struct subset){S_PAGES, rnd()};
		out[n++] = (struct subset){S_PREFIX, 1 + rnd_below(k - 1)};
		out[n++] = (struct subset){S_ALL_BUT, rnd_below(k)};
		out[n++] = (struct subset){S_ONLY, rnd_below(k)};
	}
	return n;
}

/* ---------------- checking one crash state ---------------- */

struct workload;
static const struct workload *cur_wl;
static uint64_t n_states, n_nested, n_commits, n_fences, n_retires;
/* crash states with a record copy naming a group its slots or descriptors
 * fail (torn before its commit drain), the other copy the group before */
static uint64_t n_torn;

/* torn_group -- does img hold such a state? The winning record says
 * COMMITTED and its group fails verification. */
static bool torn_group(uint8_t *img, size_t len)
{
	struct vp_pool pl;
	struct vp_logrec rec;
	if (vp__pool_image(&pl, img, len) || vp__log_state(&pl.sb, img, &rec) || rec.state != VP_LOG_COMMITTED)
		return false;
	return vp__log_verify(&pl.sb, img, &rec) != 0;
}
static size_t pool_len;
static uint8_t *work, *work2, *work3;   /* image buffers */
static uint64_t heap_off, heap_size;

/* Per-commit bookkeeping for the before/after oracle. */
#define MAXSEEN 4
static struct {
	bool open;
	uint64_t before;
	bool past_point;          /* record A committed is durable           */
	struct seen {
		uint64_t h;
		bool after_point;
		char where[700];
		uint8_t *img;         /* unrecovered image, for the report       */
	} seen[MAXSEEN];
	int nseen;
	uint64_t index;
} cm;

static void save_image(const uint8_t *img, const char *why)
{
	char path[300];
	if (break_drain)
		return; /* a self-test failure: nothing to investigate */
	snprintf(path, sizeof path, "/dev/shm/vpsim-fail-%d.pool", (int)getpid());
	FILE *f = fopen(path, "wb");
	if (f) {
		fwrite(img, 1, pool_len, f);
		fclose(f);
		fprintf(stderr, "sim: %s; the unrecovered image is in %s (try: volipmem check %s)\n", why, path, path);
	}
}

static void fail_state(const uint8_t *img, const char *where, const char *fmt, ...)
	__attribute__((format(printf, 3, 4), noreturn));
static void fail_state(const uint8_t *img, const char *where, const char *fmt, ...)
{
	char msg[1000];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	fprintf(stderr, "sim: crash state at %s: %s\n", where, msg);
	save_image(img, "crash state kept");
	die("crash consistency violated at %s", where);
}

struct workload {
	const char *name;
	void (*run)(void);
	/* validate -- workload invariant on a recovered heap image, or NULL.
	 * Returns NULL or a message. */
	const char *(*validate)(const uint8_t *heap);
	bool single_thread;
};

/* recover_and_check -- recover img in place; return the heap's hash.
 * pre_img: the unrecovered bytes (for reports). */
static uint64_t recover_and_check(uint8_t *img, const uint8_t *pre_img, const char *where, bool *was_committed)
{
	struct vp_image im;
	struct vp_heap_report rep;
	char err[400];
	int rc = vp__image_open(&im, img, pool_len);
	if (rc)
		fail_state(pre_img, where, "the pool does not open: %s (%s)", vp_strerror(rc), vp_errormsg());
	if (was_committed)
		*was_committed = im.rec.state == VP_LOG_COMMITTED;
	if ((rc = vp__image_recover(&im)))
		fail_state(pre_img, where, "recovery failed: %s (%s)", vp_strerror(rc), vp_errormsg());
	if ((rc = vp__image_check(&im, &rep, err, sizeof err)))
		fail_state(pre_img, where, "the checker rejects the recovered pool: %s", err);
	if (cur_wl->validate) {
		const char *why = cur_wl->validate(img + heap_off);
		if (why)
			fail_state(pre_img, where, "workload invariant broken after recovery: %s", why);
	}
	return hash(img + heap_off, heap_size);
}

/* ---- recovery interrupted: crash states of the recovery of one image ---- */

static uint64_t nested_expect;
static const char *nested_outer;

static void nested_fence(struct recorder *r, const char *point)
{
	struct subset subs[16];
	size_t n = subsets(r->npend, 5 * (size_t)scale, subs, 16);
	for (size_t i = 0; i < n; i++) {
		char where[600], d[120];
		materialise(r, &subs[i], work3);
		sub_describe(&subs[i], r->npend, d, sizeof d);
		snprintf(where, sizeof where, "%s, then recovery crashed at %s, %s", nested_outer, point, d);
		memcpy(work2, work3, pool_len);
		struct vp_persist_hooks *saved = vp__persist_hooks;
		vp__persist_hooks = NULL;
		uint64_t h = recover_and_check(work2, work3, where, NULL);
		vp__persist_hooks = saved;
		if (h != nested_expect)
			fail_state(work3, where, "interrupted recovery gives heap %016llx, a full recovery %016llx",
				   (unsigned long long)h, (unsigned long long)nested_expect);
		n_states++;
		n_nested++;
	}
}

/* interrupt_recovery -- recover pre (an image with a committed group)
 * under the recorder and check every crash state of that recovery. */
static void interrupt_recovery(const uint8_t *pre, uint64_t expect, const char *where)
{
	static uint8_t *live;
	static size_t live_len;
	if (live_len != pool_len) {
		free(live);
		live_len = pool_len;
		if (!(live = malloc(pool_len)))
			die("out of memory");
	}
	memcpy(live, pre, pool_len);
	struct recorder r;
	rec_init(&r, live, pool_len, nested_fence);
	struct vp_persist_hooks hk = {h_store, h_flush, h_fence, &r};
	struct vp_persist_hooks *saved = vp__persist_hooks;
	nested_expect = expect;
	nested_outer = where;
	vp__persist_hooks = &hk;
	struct vp_image im;
	int rc = vp__image_open(&im, live, pool_len);
	if (!rc)
		rc = vp__image_recover(&im);
	vp__persist_hooks = saved;
	if (rc)
		fail_state(pre, where, "recorded recovery failed: %s", vp_errormsg());
	if (r.fences == 0)
		fail_state(pre, where, "recovery of a committed group made no drain");
	rec_free(&r);
}

/* ---- the per-commit oracle ---- */

static void commit_finish(uint64_t after)
{
	if (!cm.open)
		return;
	for (int i = 0; i < cm.nseen; i++) {
		struct seen *s = &cm.seen[i];
		bool ok = s->h == after || (!s->after_point && s->h == cm.before);
		if (!ok) {
			fprintf(stderr, "sim: commit %llu: heap before %016llx, after %016llx\n",
				(unsigned long long)cm.index, (unsigned long long)cm.before, (unsigned long long)after);
			fail_state(s->img, s->where, "recovered heap %016llx is %s", (unsigned long long)s->h,
				   s->h == cm.before ? "the state BEFORE the commit, after its commit point (durability lost)"
						     : "neither the state before nor after the commit");
		}
	}
	for (int i = 0; i < cm.nseen; i++)
		free(cm.seen[i].img);
	cm.nseen = 0;
	cm.open = false;
}

static void commit_begin(uint64_t before)
{
	cm.open = true;
	cm.before = before;
	cm.past_point = false;
	cm.nseen = 0;
	cm.index = ++n_commits;
}

static void note_state(uint64_t h, const uint8_t *pre, const char *where)
{
	if (h == cm.before && !cm.past_point)
		return;
	for (int i = 0; i < cm.nseen; i++)
		if (cm.seen[i].h == h) {
			cm.seen[i].after_point |= cm.past_point;
			return;
		}
	if (cm.nseen == MAXSEEN)
		fail_state(pre, where, "more than %d distinct heaps reached in one commit", MAXSEEN);
	struct seen *s = &cm.seen[cm.nseen++];
	s->h = h;
	s->after_point = cm.past_point;
	snprintf(s->where, sizeof s->where, "%s", where);
	s->img = malloc(pool_len);
	if (!s->img)
		die("out of memory");
	memcpy(s->img, pre, pool_len);
}

static void pool_fence(struct recorder *r, const char *point)
{
	n_fences++;
	if (strstr(point, "slots")) {
		/* A new commit starts: the durable image holds the previous one
		 * completely. */
		uint64_t h = hash(r->dur + heap_off, heap_size);
		commit_finish(h);
		commit_begin(h);
	}
	if (!cm.open)
		die("drain %s outside a commit (no \"slots\" drain came first)", point);
	struct subset subs[64];
	size_t n = subsets(r->npend, 20 * (size_t)scale, subs, 64);
	for (size_t i = 0; i < n; i++) {
		char where[500], d[120];
		sub_describe(&subs[i], r->npend, d, sizeof d);
		snprintf(where, sizeof where, "workload %s, commit %llu, drain %s, %s", cur_wl->name,
			 (unsigned long long)cm.index, point, d);
		materialise(r, &subs[i], work);
		memcpy(work2, work, pool_len);
		struct vp_persist_hooks *saved = vp__persist_hooks;
		vp__persist_hooks = NULL;
		bool torn = torn_group(work2, pool_len);
		bool committed = false;
		uint64_t h = recover_and_check(work2, work, where, &committed);
		vp__persist_hooks = saved;
		n_states++;
		/* A torn group was never acknowledged: recovery must discard
		 * it, leaving the heap before this commit. */
		if (torn && (cm.past_point || h != cm.before))
			fail_state(work, where, "a torn group (record A naming slots that fail their checksums) %s",
				   cm.past_point ? "after the commit point" : "was not discarded by recovery");
		n_torn += torn;
		note_state(h, work, where);
		/* Interrupt the recovery of one committed state in nested_every. */
		if (committed && rnd_below(nested_every) == 0)
			interrupt_recovery(work, h, where);
	}
	if (strstr(point, "record-A-committed"))
		cm.past_point = true;
	if (strstr(point, "record-A-applied"))
		n_retires++;
}

/* ---------------- workloads ---------------- */

static struct recorder prec;

static void open_pool(void)
{
	snprintf(pool_path, sizeof pool_path, "/dev/shm/vpsim-%s-%d.pool", cur_wl->name, (int)getpid());
	unlink(pool_path);
	int rc = pmap(pool_path, HEAP_SIZE, VP_CREATE_ONLY);
	if (rc)
		die("pmap(%s): %s: %s", pool_path, vp_strerror(rc), vp_errormsg());
	struct vp_rt *rt = &vp__rt;
	pool_len = rt->pool.sb.file_size;
	heap_off = rt->pool.sb.home_off;
	heap_size = rt->pool.sb.heap_size;
	free(work);
	free(work2);
	free(work3);
	work = malloc(pool_len);
	work2 = malloc(pool_len);
	work3 = malloc(pool_len);
	if (!work || !work2 || !work3)
		die("out of memory");
	rec_init(&prec, rt->pool.map, pool_len, pool_fence);
	static struct vp_persist_hooks hk;
	hk = (struct vp_persist_hooks){h_store, h_flush, h_fence, &prec};
	vp__persist_hooks = &hk;
	cm.open = false;
}

static void close_pool(void)
{
	int rc = punmap();
	if (rc)
		die("punmap: %s: %s", vp_strerror(rc), vp_errormsg());
	vp__persist_hooks = NULL;
	commit_finish(hash(prec.dur + heap_off, heap_size));
	rec_free(&prec);
	unlink(pool_path);
}

/* durable_matches -- after pend() in a single-threaded workload: the
 * durable heap is exactly what the program wrote. */
static void durable_matches(const char *what)
{
	if (!cur_wl->single_thread)
		return;
	uint64_t d = hash(prec.dur + heap_off, heap_size), w = hash(vp_heap_base(), vp_heap_size());
	if (d != w)
		die("workload %s: after %s the durable heap (%016llx) differs from the program's heap (%016llx)",
		    cur_wl->name, what, (unsigned long long)d, (unsigned long long)w);
}

static void endfas(void)
{
	int rc = pend();
	if (rc)
		die("pend: %s: %s", vp_strerror(rc), vp_errormsg());
	durable_matches("pend");
}

static uint8_t *need_root(const char *name, size_t size)
{
	uint8_t *p = proot(name, size, NULL);
	if (!p)
		die("proot(%s): %s", name, vp_errormsg());
	durable_matches("proot");
	return p;
}

/* single -- FASes of 1..8 whole pages, each page filled with a pattern. */
static void wl_single(void)
{
	uint8_t *a = need_root("single", 64 * VP_PAGE);
	for (int it = 0; it < 12 * scale; it++) {
		pstart();
		int np = 1 + (int)rnd_below(8);
		for (int i = 0; i < np; i++) {
			uint8_t *pg = a + rnd_below(64) * VP_PAGE;
			uint64_t seed = rnd();
			for (unsigned w = 0; w < VP_PAGE / 8; w++)
				((uint64_t *)pg)[w] = seed + w;
		}
		endfas();
	}
}

/* lines -- the line-granular log: a FAS changes some lines of a page
 * (1 .. 64 of them, so both LINES entries and whole pages), the next FAS
 * changes some of them back, so each group is diffed against a home image
 * the previous group has just updated. */
static void wl_lines(void)
{
	uint8_t *a = need_root("lines", 8 * VP_PAGE);
	static const unsigned counts[] = {1, 2, 7, 32, 33, 50, 64};
	for (int it = 0; it < 10 * scale; it++) {
		uint8_t *pg = a + rnd_below(8) * VP_PAGE;
		uint8_t old[VP_PAGE];
		memcpy(old, pg, VP_PAGE);
		unsigned nl = counts[rnd_below(sizeof counts / sizeof counts[0])];
		pstart();
		for (unsigned j = 0; j < nl; j++)
			((uint64_t *)(pg + rnd_below(VP_PAGE / LINE) * LINE))[rnd_below(8)] = rnd();
		endfas();
		pstart();
		for (unsigned j = 0; j < VP_PAGE / LINE; j++)
			if (rnd_below(4))
				memcpy(pg + j * LINE, old + j * LINE, LINE);
		endfas();
	}
}

/* small -- many tiny FASes: two words far apart (a transfer). */
static void wl_small(void)
{
	int64_t *a = (int64_t *)need_root("small", 16 * VP_PAGE);
	size_t nw = 16 * VP_PAGE / 8;
	for (int it = 0; it < 60 * scale; it++) {
		size_t x = rnd_below(nw), y = rnd_below(nw);
		int64_t v = (int64_t)rnd_below(1000);
		pstart();
		a[x] -= v;
		a[y] += v;
		endfas();
	}
}

/* nested -- flat nesting: only the outermost pend commits. */
static void wl_nested(void)
{
	uint64_t *a = (uint64_t *)need_root("nested", 8 * VP_PAGE);
	for (int it = 0; it < 10 * scale; it++) {
		pstart();
		a[rnd_below(8) * 512] = rnd();
		pstart();
		a[rnd_below(8) * 512 + 7] = rnd();
		pstart();
		a[rnd_below(8) * 512 + 100] = rnd();
		if (pend() != 0)
			die("inner pend failed");
		if (pend() != 0)
			die("inner pend failed");
		a[rnd_below(8) * 512 + 200] = rnd();
		endfas();
	}
}

/* alloc -- allocation and free inside FASes: a list of blocks of random
 * sizes (16 B .. 20 KiB) hung off a root, with removals. */
struct node { uint64_t next, size, seq, sum; };
struct listroot { uint64_t head, count; };

static void wl_alloc(void)
{
	struct listroot *lr = (struct listroot *)need_root("list", sizeof *lr);
	uint8_t *base = vp_heap_base();
	for (int it = 0; it < 40 * scale; it++) {
		pstart();
		int adds = 1 + (int)rnd_below(3);
		for (int k = 0; k < adds; k++) {
			/* few small classes (a run is 64 KiB of a 1 MiB heap) or
			 * whole pages */
			size_t sz = rnd_below(4) == 0 ? 8193 + rnd_below(12000)
						      : sizeof(struct node) + 16 * rnd_below(3);
			struct node *n = pmalloc(sz);
			if (!n)
				die("pmalloc(%zu) failed: %s", sz, vp_errormsg());
			n->size = sz;
			n->seq = (uint64_t)it;
			memset(n + 1, (int)(it & 0xff), sz - sizeof *n);
			n->sum = hash(n + 1, sz - sizeof *n);
			n->next = lr->head;
			lr->head = (uint64_t)((uint8_t *)n - base);
			lr->count++;
		}
		for (int rm = 0; lr->count > 16 || (lr->count > 6 && rm == 0 && rnd_below(2)); rm++) {
			/* unlink and free the second node */
			struct node *h = (struct node *)(base + lr->head);
			struct node *v = (struct node *)(base + h->next);
			h->next = v->next;
			pfree(v);
			lr->count--;
		}
		endfas();
	}
	/* and frees outside a FAS (implicit FASes) */
	while (lr->count > 3) {
		pstart();
		struct node *h = (struct node *)(base + lr->head);
		lr->head = h->next;
		lr->count--;
		endfas();
		pfree(h);
		durable_matches("pfree");
	}
}

static const uint8_t *img_root(const uint8_t *heap, const char *name)
{
	const struct vp_heaphdr *h = (const void *)heap;
	uint64_t off = h->roots_head;
	for (uint64_t n = 0; off && n <= h->nroots && off < HEAP_SIZE; n++) {
		const struct vp_root *r = (const void *)(heap + off);
		if (strcmp(r->name, name) == 0)
			return r->obj < HEAP_SIZE ? heap + r->obj : NULL;
		off = r->next;
	}
	return NULL;
}

static const char *val_alloc(const uint8_t *heap)
{
	const struct listroot *lr = (const void *)img_root(heap, "list");
	if (!lr)
		return NULL; /* before the root's commit */
	uint64_t off = lr->head, n = 0;
	for (; off; n++) {
		if (n > lr->count || off + sizeof(struct node) > HEAP_SIZE)
			return "list longer than its count or out of the heap";
		const struct node *x = (const void *)(heap + off);
		if (x->size < sizeof *x || off + x->size > HEAP_SIZE || hash(x + 1, x->size - sizeof *x) != x->sum)
			return "a list node's contents are torn";
		off = x->next;
	}
	return n == lr->count ? NULL : "list shorter than its count";
}

/* roots -- root creation and removal (implicit FASes). */
static void wl_roots(void)
{
	char name[32];
	for (int it = 0; it < 10 * scale; it++) {
		snprintf(name, sizeof name, "r%d", it);
		need_root(name, rnd_below(2) ? 64 : 9000 + rnd_below(4000));
		if (it >= 3 && rnd_below(2)) {
			snprintf(name, sizeof name, "r%d", it - 3);
			int rc = vp_root_remove(name);
			if (rc && rc != VP_E_NOROOT)
				die("vp_root_remove: %s", vp_errormsg());
			durable_matches("vp_root_remove");
		}
	}
}

/* mt -- threads doing FASes on their own 3-page regions at once, so that
 * commits carry several threads' FASes (group commit). Invariant: each
 * region is uniform (one FAS's value throughout). */
#define MT_THREADS 3
#define MT_PAGES 3
static uint64_t *mt_area;
static int mt_iters;

static void *mt_thread(void *arg)
{
	uintptr_t t = (uintptr_t)arg;
	uint64_t *reg = mt_area + t * MT_PAGES * 512;
	for (int it = 1; it <= mt_iters; it++) {
		pstart();
		for (unsigned p = 0; p < MT_PAGES; p++) {
			reg[p * 512] = (uint64_t)it;
			reg[p * 512 + 300] = (uint64_t)it;
		}
		int rc = pend();
		if (rc)
			die("pend in thread %lu: %s", (unsigned long)t, vp_errormsg());
	}
	return NULL;
}

static void mt_run(bool relaxed)
{
	mt_area = (uint64_t *)need_root("mt", MT_THREADS * MT_PAGES * VP_PAGE);
	mt_iters = 12 * scale;
	if (relaxed && vp_set_durability(VP_RELAXED, 1) != 0)
		die("vp_set_durability: %s", vp_errormsg());
	pthread_t th[MT_THREADS];
	for (uintptr_t t = 0; t < MT_THREADS; t++)
		pthread_create(&th[t], NULL, mt_thread, (void *)t);
	for (int t = 0; t < MT_THREADS; t++)
		pthread_join(th[t], NULL);
	if (psync() != 0)
		die("psync: %s", vp_errormsg());
	if (relaxed)
		vp_set_durability(VP_SYNC, 0);
	for (int t = 0; t < MT_THREADS; t++)
		for (unsigned p = 0; p < MT_PAGES; p++)
			if (mt_area[(t * MT_PAGES + p) * 512] != (uint64_t)mt_iters)
				die("thread %d's last FAS is missing from the heap", t);
}

static void wl_mt(void) { mt_run(false); }
static void wl_mt_relaxed(void) { mt_run(true); }

static const char *val_mt(const uint8_t *heap)
{
	const uint64_t *a = (const void *)img_root(heap, "mt");
	if (!a)
		return NULL;
	for (int t = 0; t < MT_THREADS; t++) {
		const uint64_t *reg = a + t * MT_PAGES * 512;
		for (unsigned p = 0; p < MT_PAGES; p++)
			if (reg[p * 512] != reg[0] || reg[p * 512 + 300] != reg[0])
				return "a thread's FAS is torn across its pages";
	}
	return NULL;
}

/* append -- many consecutive commits of 1..24 pages of a 96-page area, so
 * groups are appended in the log and the log wraps (1 MiB heap: 256
 * slots) several times; each page gets some lines changed, and every
 * other FAS changes lines of the previous FAS back (a line changed in
 * group E and changed back in E + 1). Asserts the drains per commit: 2
 * when the group is appended (slots, descriptors and record A; record B
 * and home), 4 when the log was retired first (wrap), and both happen;
 * one more each with VOLIPMEM_CHECKSUM_PAGES=off (the slots first). */
static void wl_append(void)
{
	uint8_t *a = need_root("append", 96 * VP_PAGE);
	static uint8_t old[24][VP_PAGE];
	uint8_t *pg[24];
	unsigned np = 0, appended = 0, wrapped = 0;
	for (int it = 0; it < 60 * scale; it++) {
		bool revert = it % 2 == 1;
		uint64_t f0 = n_fences, r0 = n_retires;
		pstart();
		if (!revert) {
			np = 1 + (unsigned)rnd_below(24);
			for (unsigned i = 0; i < np; i++) {
				pg[i] = a + ((unsigned)rnd_below(4) * 24 + i) * VP_PAGE;
				memcpy(old[i], pg[i], VP_PAGE);
				unsigned nl = 1 + (unsigned)rnd_below(40);
				for (unsigned j = 0; j < nl; j++)
					((uint64_t *)(pg[i] + rnd_below(VP_PAGE / LINE) * LINE))[rnd_below(8)] = rnd() | 1;
				pg[i][0] ^= 0x80; /* at least line 0 changes */
			}
		} else {
			for (unsigned i = 0; i < np; i++)
				for (unsigned j = 0; j < VP_PAGE / LINE; j++)
					if (j == 0 || rnd_below(3))
						memcpy(pg[i] + j * LINE, old[i] + j * LINE, LINE);
		}
		endfas();
		uint64_t df = n_fences - f0, dr = n_retires - r0, want = vp__opt.checksum_pages ? 2 : 3;
		if (!((df == want && dr == 0) || (df == want + 2 && dr == 1)))
			die("workload append: FAS %d made %llu drains (%llu retires); want %llu, or %llu with one retire",
			    it, (unsigned long long)df, (unsigned long long)dr, (unsigned long long)want,
			    (unsigned long long)want + 2);
		appended += dr == 0;
		wrapped += dr == 1;
	}
	if (!appended || !wrapped)
		die("workload append: %u appended and %u wrapped commits; both paths must run", appended, wrapped);
}

/* grow -- the heap side of a pool growth is an implicit FAS run inside
 * pmap(): every crash state of it must recover to the heap before growth
 * (header still at the old size, a growth pending) or after it. */
static void wl_grow(void)
{
	uint64_t *a = (uint64_t *)need_root("grow", 8 * VP_PAGE);
	for (int it = 0; it < 4 * scale; it++) {
		pstart();
		a[rnd_below(8 * 512)] = rnd();
		endfas();
	}
	/* Close, do the file side (stopped before the heap side). */
	vp__persist_hooks = NULL;
	if (punmap())
		die("punmap: %s", vp_errormsg());
	commit_finish(hash(prec.dur + heap_off, heap_size));
	rec_free(&prec);
	vp__grow_stop_after = 4;
	if (pmap(pool_path, 2 * HEAP_SIZE, VP_OPEN_ONLY) == 0)
		die("growth did not stop before its heap side");
	vp__grow_stop_after = 0;
	/* Arm the recorder on the grown file and let pmap finish. */
	rec_init_file(&prec, pool_path, pool_fence);
	pool_len = prec.len;
	heap_size = 2 * HEAP_SIZE;
	free(work);
	free(work2);
	free(work3);
	work = malloc(pool_len);
	work2 = malloc(pool_len);
	work3 = malloc(pool_len);
	if (!work || !work2 || !work3)
		die("out of memory");
	static struct vp_persist_hooks hk;
	hk = (struct vp_persist_hooks){h_store, h_flush, h_fence, &prec};
	vp__persist_hooks = &hk;
	uint64_t c0 = n_commits;
	if (pmap(pool_path, 0, VP_OPEN_ONLY))
		die("pmap of the grown pool: %s", vp_errormsg());
	if (n_commits == c0 || vp_heap_size() != 2 * HEAP_SIZE)
		die("the heap side of the growth made no commit");
	durable_matches("growth");
	a = (uint64_t *)need_root("grow", 8 * VP_PAGE);
	uint8_t *b = pmalloc(240 * VP_PAGE);   /* more than the old heap had */
	if (!b)
		die("cannot allocate in the grown heap");
	durable_matches("pmalloc");
	for (int it = 0; it < 4 * scale; it++) {
		pstart();
		b[rnd_below(240 * VP_PAGE)] = (uint8_t)rnd();
		a[rnd_below(8 * 512)] = rnd();
		endfas();
	}
}

static const struct workload workloads[] = {
	{"single", wl_single, NULL, true},
	{"small", wl_small, NULL, true},
	{"lines", wl_lines, NULL, true},
	{"nested", wl_nested, NULL, true},
	{"alloc", wl_alloc, val_alloc, true},
	{"roots", wl_roots, NULL, true},
	{"mt", wl_mt, val_mt, false},
	{"mt-relaxed", wl_mt_relaxed, val_mt, false},
	{"grow", wl_grow, NULL, true},
	{"append", wl_append, NULL, true},
};

/* in_list -- is name one of the comma-separated words of list? */
static bool in_list(const char *list, const char *name)
{
	size_t n = strlen(name);
	for (const char *p = list; *p;) {
		const char *e = strchr(p, ',');
		size_t l = e ? (size_t)(e - p) : strlen(p);
		if (l == n && strncmp(p, name, n) == 0)
			return true;
		p += l + (e ? 1 : 0);
	}
	return false;
}

int main(void)
{
	scale = (int)vpt_env_uint("vp_sim", "VP_SIM_SCALE", 1, 1, 1000000);
	uint64_t seed = (uint64_t)time(NULL) ^ ((uint64_t)getpid() << 20);
	seed = vpt_env_uint("vp_sim", "VP_SIM_SEED", seed, 0, UINT64_MAX);
	rng_state = seed ? seed : 1;
	const char *only = getenv("VP_SIM_ONLY");
	break_drain = getenv("VP_SIM_BREAK");
	nested_every = vpt_env_uint("vp_sim", "VP_SIM_NESTED", nested_every, 1, UINT32_MAX);
	/* Cache-line flushes instead of msync: the medium the model is about,
	 * and much faster. */
	setenv("VOLIPMEM_FORCE_PMEM", "1", 1);
	unsetenv("VOLIPMEM_COMMIT_INTERVAL_MS");
	printf("sim: seed %llu, scale %d, tracker %s\n", (unsigned long long)seed, scale,
	       getenv("VOLIPMEM_TRACKER") ? getenv("VOLIPMEM_TRACKER") : "(default)");
	uint64_t t0 = vp__now_ns();
	for (size_t i = 0; i < sizeof workloads / sizeof workloads[0]; i++) {
		if (only && !in_list(only, workloads[i].name))
			continue;
		cur_wl = &workloads[i];
		uint64_t s0 = n_states, c0 = n_commits, w0 = vp__now_ns();
		open_pool();
		workloads[i].run();
		/* Pages diffed against a shadow (commit/shadow.c): the crash
		 * states cover commits that used them. */
		struct vp_stats st = {0};
		vp_stats(&st);
		close_pool();
		printf("sim: workload %-10s %5llu commits %7llu crash states  %.1f s  (%llu shadow hits)\n",
		       workloads[i].name, (unsigned long long)(n_commits - c0), (unsigned long long)(n_states - s0),
		       (double)(vp__now_ns() - w0) / 1e9, (unsigned long long)st.shadow_hits);
		fflush(stdout);
		if (n_commits == c0)
			die("workload %s made no commit the simulator saw", workloads[i].name);
	}
	/* Record A is drained with the slots it names: the line-subset model
	 * must have produced states with A durable over torn slots. */
	if (vp__opt.checksum_pages && !break_drain && n_torn == 0)
		die("no crash state had record A durable over torn slots: the drain that merges them is not explored");
	printf("sim: OK: %llu crash states checked (%llu of them inside an interrupted recovery, %llu with record A "
	       "durable over a torn group, discarded), %llu commits, %llu drains, %.1f s\n",
	       (unsigned long long)n_states, (unsigned long long)n_nested, (unsigned long long)n_torn,
	       (unsigned long long)n_commits, (unsigned long long)n_fences, (double)(vp__now_ns() - t0) / 1e9);
	free(work);
	free(work2);
	free(work3);
	return 0;
}
