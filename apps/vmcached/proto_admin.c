/* SPDX-License-Identifier: MIT */
/*
 * proto_admin.c -- stats and the administrative commands. `stats`,
 * `stats items|slabs|settings` print memcached's formats, with one pseudo
 * slab class, so tools that parse them keep working; `stats` adds the
 * pool's and the library's counters (what persistence costs).
 */
#include "proto.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include <volipmem.h>

/* `slabs automove`: memcached's default; vmcached has nothing to move */
static int slab_automove = 1;

static bool statf(struct vmc_conn *c, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
static bool statf(struct vmc_conn *c, const char *fmt, ...)
{
	char b[512];
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(b, sizeof b, fmt, ap);
	va_end(ap);
	if (n < 0)
		return false;
	if ((size_t)n >= sizeof b)
		n = sizeof b - 1;
	return out_append(c, "STAT ", 5) && out_append(c, b, (size_t)n) &&
	       out_append(c, "\r\n", 2);
}

static void sum_tstats(struct vmc_tstats *s)
{
	memset(s, 0, sizeof *s);
	for (int i = 0; i < vmc_settings.threads; i++) {
		struct vmc_tstats *w = &vmc_workers[i].st;
#define X(n) s->n += __atomic_load_n(&w->n, __ATOMIC_RELAXED);
		VMC_TSTATS(X)
#undef X
	}
}

/* What `stats reset` zeroes of the persistent counters, which themselves
 * keep counting across restarts: their values at the last reset, under
 * the cache lock. */
static uint64_t base_total_items, base_evictions, base_reclaimed;

/* cache_snapshot -- the persistent counters, read under the lock; the
 * event counters since the last `stats reset`. */
struct cache_snap {
	uint64_t curr_items, bytes, total_items, evictions, reclaimed, nbuckets,
		 cas, starts, tail_age, chunk_bytes;
};
static void cache_snapshot(struct cache_snap *s)
{
	struct vmc_clock now;
	vmc_clock_now(&now);
	vmc_lock();
	s->curr_items = vmc_root->curr_items;
	s->bytes = vmc_root->bytes;
	s->total_items = vmc_root->total_items - base_total_items;
	s->evictions = vmc_root->evictions - base_evictions;
	s->reclaimed = vmc_root->reclaimed - base_reclaimed;
	s->nbuckets = vmc_root->nbuckets;
	s->cas = vmc_root->cas_counter;
	s->starts = vmc_root->starts;
	s->chunk_bytes = vmc_chunk_bytes();
	s->tail_age = vmc_root->lru_tail && now.now_ms > vmc_root->lru_tail->time_ms
		      ? (now.now_ms - vmc_root->lru_tail->time_ms) / 1000 : 0;
	vmc_unlock();
}

/* stats_general -- `stats`: memcached's fields, then the pool's. */
static bool stats_general(struct vmc_conn *c)
{
	struct vmc_tstats s;
	struct cache_snap k;
	struct vp_stats vs;
	struct rusage ru;
	sum_tstats(&s);
	cache_snapshot(&k);
	memset(&vs, 0, sizeof vs);
	vp_stats(&vs);
	getrusage(RUSAGE_SELF, &ru);
	time_t now = time(NULL);
	int hp = 0;
	while ((1ull << hp) < k.nbuckets)
		hp++;
	bool ok = statf(c, "pid %ld", (long)getpid()) &&
		statf(c, "uptime %ld", (long)(now - vmc_started)) &&
		statf(c, "time %ld", (long)now) &&
		statf(c, "version %s", VMC_VERSION) &&
		statf(c, "pointer_size %d", (int)(8 * sizeof(void *))) &&
		statf(c, "rusage_user %ld.%06ld", (long)ru.ru_utime.tv_sec,
		      (long)ru.ru_utime.tv_usec) &&
		statf(c, "rusage_system %ld.%06ld", (long)ru.ru_stime.tv_sec,
		      (long)ru.ru_stime.tv_usec) &&
		statf(c, "max_connections %d", vmc_settings.maxconns) &&
		statf(c, "curr_connections %" PRIu64,
		      __atomic_load_n(&vmc_curr_conns, __ATOMIC_RELAXED)) &&
		statf(c, "total_connections %" PRIu64,
		      __atomic_load_n(&vmc_total_conns, __ATOMIC_RELAXED)) &&
		statf(c, "rejected_connections %" PRIu64,
		      __atomic_load_n(&vmc_rejected_conns, __ATOMIC_RELAXED)) &&
		/* a connection past -c is refused, listening never stops */
		statf(c, "listen_disabled_num 0") &&
		statf(c, "time_in_listen_disabled_us 0") &&
		/* a get never locks an item the LRU tail then has to skip */
		statf(c, "lrutail_reflocked 0");
#define X(n) ok = ok && (strcmp(#n, "fas") == 0 || strcmp(#n, "commit_errors") == 0 || \
			 statf(c, #n " %" PRIu64, s.n));
	VMC_TSTATS(X)
#undef X
	ok = ok && statf(c, "limit_maxbytes %" PRIu64,
			       __atomic_load_n(&vmc_limit, __ATOMIC_RELAXED)) &&
		statf(c, "accepting_conns 1") &&
		statf(c, "threads %d", vmc_settings.threads) &&
		statf(c, "hash_power_level %d", hp) &&
		statf(c, "hash_bytes %" PRIu64, k.nbuckets * 8) &&
		statf(c, "hash_is_expanding 0") &&
		statf(c, "bytes %" PRIu64, k.bytes) &&
		statf(c, "curr_items %" PRIu64, k.curr_items) &&
		statf(c, "total_items %" PRIu64, k.total_items) &&
		statf(c, "expired_unfetched 0") &&
		statf(c, "evicted_unfetched 0") &&
		statf(c, "evictions %" PRIu64, k.evictions) &&
		statf(c, "reclaimed %" PRIu64, k.reclaimed) &&
		/* what persistence costs: VolipMem's own counters */
		statf(c, "pool_path %s", vmc_settings.pool) &&
		statf(c, "pool_starts %" PRIu64, k.starts) &&
		statf(c, "commit_interval_ms %g", vmc_settings.commit_interval_ms) &&
		statf(c, "fas %" PRIu64, s.fas) &&
		statf(c, "commit_errors %" PRIu64, s.commit_errors) &&
		statf(c, "vp_tracker %s", vs.tracker) &&
		statf(c, "vp_medium %s", vs.medium) &&
		statf(c, "vp_commits %" PRIu64, vs.commits) &&
		statf(c, "vp_empty_commits %" PRIu64, vs.empty_commits) &&
		statf(c, "vp_pages_logged %" PRIu64, vs.pages_logged) &&
		statf(c, "vp_bytes_logged %" PRIu64, vs.bytes_logged) &&
		statf(c, "vp_collect_us %" PRIu64, vs.ns_collect / 1000) &&
		statf(c, "vp_prepare_us %" PRIu64, vs.ns_prepare / 1000) &&
		statf(c, "vp_log_us %" PRIu64, vs.ns_log / 1000) &&
		statf(c, "vp_update_us %" PRIu64, vs.ns_update / 1000) &&
		statf(c, "vp_stall_us %" PRIu64, vs.ns_stall / 1000) &&
		statf(c, "vp_heap_size %" PRIu64, vs.heap_size) &&
		statf(c, "vp_heap_used %" PRIu64, vs.heap_used) &&
		statf(c, "vp_pages_collected %" PRIu64, vs.pages_collected) &&
		statf(c, "vp_bytes_persisted %" PRIu64, vs.bytes_persisted) &&
		statf(c, "vp_bound_us %" PRIu64, vs.ns_bound / 1000) &&
		statf(c, "vp_bound_waits %" PRIu64, vs.bound_waits) &&
		statf(c, "vp_bound_wait_us %" PRIu64, vs.ns_bound_wait / 1000);
	return ok;
}

/* One pseudo slab class holds every item: the formats match memcached's so
 * tools that parse them keep working. */
static bool stats_items(struct vmc_conn *c)
{
	struct cache_snap k;
	cache_snapshot(&k);
	if (k.curr_items == 0)
		return true;
	return statf(c, "items:1:number %" PRIu64, k.curr_items) &&
	       statf(c, "items:1:number_hot 0") &&
	       statf(c, "items:1:number_warm 0") &&
	       statf(c, "items:1:number_cold %" PRIu64, k.curr_items) &&
	       statf(c, "items:1:age_hot 0") && statf(c, "items:1:age_warm 0") &&
	       statf(c, "items:1:age %" PRIu64, k.tail_age) &&
	       statf(c, "items:1:mem_requested %" PRIu64, k.bytes) &&
	       statf(c, "items:1:evicted %" PRIu64, k.evictions) &&
	       statf(c, "items:1:evicted_nonzero 0") &&
	       statf(c, "items:1:evicted_time 0") &&
	       statf(c, "items:1:outofmemory 0") &&
	       statf(c, "items:1:tailrepairs 0") &&
	       statf(c, "items:1:reclaimed %" PRIu64, k.reclaimed) &&
	       statf(c, "items:1:expired_unfetched 0") &&
	       statf(c, "items:1:evicted_unfetched 0");
}

static bool stats_slabs(struct vmc_conn *c)
{
	struct cache_snap k;
	struct vmc_tstats s;
	cache_snapshot(&k);
	sum_tstats(&s);
	bool ok = true;
	if (k.curr_items > 0) {
		/* a chunk is an item's pmalloc block: its mean usable size */
		uint64_t chunk = k.chunk_bytes / k.curr_items;
		ok = statf(c, "1:chunk_size %" PRIu64, chunk) &&
		     statf(c, "1:chunks_per_page %" PRIu64,
			   chunk ? (1024 * 1024) / chunk : 0) &&
		     statf(c, "1:total_pages %" PRIu64, (k.chunk_bytes >> 20) + 1) &&
		     statf(c, "1:mem_requested %" PRIu64, k.bytes) &&
		     statf(c, "1:total_chunks %" PRIu64, k.curr_items) &&
		     statf(c, "1:used_chunks %" PRIu64, k.curr_items) &&
		     statf(c, "1:free_chunks 0") && statf(c, "1:free_chunks_end 0") &&
		     statf(c, "1:get_hits %" PRIu64, s.get_hits) &&
		     statf(c, "1:cmd_set %" PRIu64, s.cmd_set) &&
		     statf(c, "1:delete_hits %" PRIu64, s.delete_hits) &&
		     statf(c, "1:incr_hits %" PRIu64, s.incr_hits) &&
		     statf(c, "1:decr_hits %" PRIu64, s.decr_hits) &&
		     statf(c, "1:cas_hits %" PRIu64, s.cas_hits) &&
		     statf(c, "1:cas_badval %" PRIu64, s.cas_badval) &&
		     statf(c, "1:touch_hits %" PRIu64, s.touch_hits);
	}
	return ok && statf(c, "active_slabs %d", k.curr_items > 0) &&
	       statf(c, "total_malloced %" PRIu64, k.chunk_bytes);
}

static bool stats_settings(struct vmc_conn *c)
{
	return statf(c, "maxbytes %" PRIu64,
		     __atomic_load_n(&vmc_limit, __ATOMIC_RELAXED)) &&
	       statf(c, "maxconns %d", vmc_settings.maxconns) &&
	       statf(c, "tcpport %d", vmc_settings.port) &&
	       statf(c, "inter %s", vmc_settings.listen) &&
	       statf(c, "tcp_backlog %d", vmc_settings.backlog) &&
	       statf(c, "binding_protocol ascii") &&
	       statf(c, "domain_socket NULL") &&
	       statf(c, "auth_enabled_sasl no") &&
	       statf(c, "shutdown_command no") &&
	       statf(c, "verbosity %d", vmc_settings.verbose) &&
	       statf(c, "evictions on") &&
	       statf(c, "num_threads %d", vmc_settings.threads) &&
	       statf(c, "cas_enabled yes") &&
	       statf(c, "item_size_max %zu", vmc_item_max) &&
	       statf(c, "flush_enabled %s", vmc_settings.flush_disabled ? "no" : "yes") &&
	       statf(c, "dump_enabled %s", vmc_settings.dump_disabled ? "no" : "yes") &&
	       statf(c, "slab_automove %d",
		     __atomic_load_n(&slab_automove, __ATOMIC_RELAXED)) &&
	       statf(c, "pool %s", vmc_settings.pool) &&
	       statf(c, "commit_interval_ms %g", vmc_settings.commit_interval_ms);
}

#define DUMP_MAX (2u << 20)   /* memcached's cap on a cachedump reply */
#define MAX_SLAB_CLASSES 64   /* memcached's MAX_NUMBER_OF_SLAB_CLASSES */

struct dump {
	struct vmc_conn *c;
	uint32_t left;   /* items still to show; 0 = no limit */
	size_t start;    /* where the reply began in c->wbuf */
	bool ok;
};

/* dump_item -- one "ITEM <key> [<bytes> b; <exptime> s]" line, exptime in
 * absolute unix seconds (0 = never) as memcached prints it. */
static bool dump_item(void *ctx, const struct vmc_item *it)
{
	struct dump *d = ctx;
	char b[VMC_KEY_MAX + 64];
	if (it->iflags & VMC_IT_KEY_BINARY)
		return true;  /* like memcached: no binary keys in the reply */
	int n = snprintf(b, sizeof b, "ITEM %.*s [%" PRIu32 " b; %lld s]\r\n",
			 (int)it->nkey, it->data, it->nbytes - 2,
			 (long long)it->exptime);
	if (d->c->wlen - d->start + (size_t)n + 5 > DUMP_MAX)
		return false;
	if (!out_append(d->c, b, (size_t)n)) {
		d->ok = false;
		return false;
	}
	return d->left == 0 || --d->left > 0;
}

/* stats_cachedump -- stats cachedump <class> <limit>: the keys of a slab
 * class, newest first, like memcached 1.6.18 (items.c item_cachedump).
 * Every item is in the one pseudo class 1; other valid classes are empty. */
static long stats_cachedump(struct vmc_conn *c, const struct req *rq)
{
	uint32_t id, limit;
	if (vmc_settings.dump_disabled)
		return pr_answer(c, false, "CLIENT_ERROR stats cachedump not allowed",
				 rq->linelen);
	if (rq->nt < 4)
		return pr_answer(c, false, "CLIENT_ERROR bad command line",
				 rq->linelen);
	if (!pr_parse_u32(&rq->t[2], &id) || !pr_parse_u32(&rq->t[3], &limit))
		return pr_answer(c, false, BAD_FORMAT, rq->linelen);
	if (id >= MAX_SLAB_CLASSES)
		return pr_answer(c, false, "CLIENT_ERROR Illegal slab id",
				 rq->linelen);
	struct dump d = { .c = c, .left = limit, .start = c->wlen, .ok = true };
	if (id == 1) {
		struct vmc_clock now;
		vmc_clock_now(&now);
		vmc_lock();
		vmc_walk(dump_item, &d, &now);
		vmc_unlock();
	}
	return d.ok ? pr_answer(c, false, "END", rq->linelen) : -1;
}

/* admin_slabs -- slabs automove <0|1|2>, slabs reassign <src> <dst>, with
 * memcached's answers. vmcached has no slab pages to move: automove is
 * kept (stats settings) and reassign answers as memcached does when slab
 * reassignment is disabled. */
long admin_slabs(struct vmc_conn *c, const struct req *rq)
{
	const struct tok *t = rq->t;
	if (rq->nt == 4 && pr_tok_is(&t[1], "reassign"))
		return pr_answer(c, false,
				 "CLIENT_ERROR slab reassignment disabled",
				 rq->linelen);
	if (rq->nt < 3 || !pr_tok_is(&t[1], "automove"))
		return pr_answer(c, false, "ERROR", rq->linelen);
	bool noreply = pr_tok_is(&t[rq->nt - 1], "noreply");
	uint32_t level;
	if (pr_tok_is(&t[2], "ratio"))  /* a tuning knob of the slab mover */
		return pr_answer(c, noreply, rq->nt < 4 ? "ERROR" : "OK",
				 rq->linelen);
	if (!pr_parse_u32(&t[2], &level))
		return pr_answer(c, noreply, BAD_FORMAT, rq->linelen);
	if (level > 2)
		return pr_answer(c, noreply, "ERROR", rq->linelen);
	__atomic_store_n(&slab_automove, (int)level, __ATOMIC_RELAXED);
	return pr_answer(c, noreply, "OK", rq->linelen);
}

/* admin_memlimit -- cache_memlimit <MB> [noreply]: change -m while
 * running, with memcached 1.6.18's answers and bounds. */
long admin_memlimit(struct vmc_conn *c, const struct req *rq)
{
	if (rq->nt != 2 && rq->nt != 3)
		return pr_answer(c, false, "ERROR", rq->linelen);
	bool noreply = pr_tok_is(&rq->t[rq->nt - 1], "noreply");
	uint32_t mb;
	const char *s;
	if (!pr_parse_u32(&rq->t[1], &mb))
		s = "ERROR";
	else if (mb < 8)
		s = "MEMLIMIT_TOO_SMALL cannot set maxbytes to less than 8m";
	else if (mb > 1000000000)
		s = "MEMLIMIT_ADJUST_FAILED input value is megabytes not bytes";
	else if (!vmc_set_limit((uint64_t)mb << 20))
		s = "MEMLIMIT_ADJUST_FAILED out of bounds or unable to adjust";
	else
		s = "OK";
	return pr_answer(c, noreply, s, rq->linelen);
}

/* do_stats -- stats [reset|items|slabs|settings|detail|cachedump]. */
long admin_stats(struct vmc_conn *c, const struct req *rq)
{
	struct tok *t = rq->t;
	size_t nt = rq->nt, linelen = rq->linelen;
	bool ok;
	if (nt == 1) {
		ok = stats_general(c);
	} else if (pr_tok_is(&t[1], "reset")) {
		for (int i = 0; i < vmc_settings.threads; i++) {
#define X(n) __atomic_store_n(&vmc_workers[i].st.n, 0, __ATOMIC_RELAXED);
			VMC_TSTATS(X)
#undef X
		}
		vmc_lock();
		base_total_items = vmc_root->total_items;
		base_evictions = vmc_root->evictions;
		base_reclaimed = vmc_root->reclaimed;
		vmc_unlock();
		return pr_answer(c, false, "RESET", linelen);
	} else if (pr_tok_is(&t[1], "items")) {
		ok = stats_items(c);
	} else if (pr_tok_is(&t[1], "slabs")) {
		ok = stats_slabs(c);
	} else if (pr_tok_is(&t[1], "settings")) {
		ok = stats_settings(c);
	} else if (pr_tok_is(&t[1], "cachedump")) {
		return stats_cachedump(c, rq);
	} else if (pr_tok_is(&t[1], "detail")) {
		return pr_answer(c, false,
			      "CLIENT_ERROR usage: stats detail on|off|dump",
			      linelen);
	} else {
		return pr_answer(c, false, "ERROR", linelen);
	}
	return ok ? pr_answer(c, false, "END", linelen) : -1;
}

