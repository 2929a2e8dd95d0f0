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

/* cache_snapshot -- the persistent counters, read under the lock. */
struct cache_snap {
	uint64_t curr_items, bytes, total_items, evictions, reclaimed, nbuckets,
		 cas, starts, tail_age;
};
static void cache_snapshot(struct cache_snap *s)
{
	struct vmc_clock now;
	vmc_clock_now(&now);
	vmc_lock();
	s->curr_items = vmc_root->curr_items;
	s->bytes = vmc_root->bytes;
	s->total_items = vmc_root->total_items;
	s->evictions = vmc_root->evictions;
	s->reclaimed = vmc_root->reclaimed;
	s->nbuckets = vmc_root->nbuckets;
	s->cas = vmc_root->cas_counter;
	s->starts = vmc_root->starts;
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
		      __atomic_load_n(&vmc_rejected_conns, __ATOMIC_RELAXED));
#define X(n) ok = ok && (strcmp(#n, "fas") == 0 || strcmp(#n, "commit_errors") == 0 || \
			 statf(c, #n " %" PRIu64, s.n));
	VMC_TSTATS(X)
#undef X
	ok = ok && statf(c, "limit_maxbytes %" PRIu64, vmc_limit) &&
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
		statf(c, "vp_heap_used %" PRIu64, vs.heap_used);
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
		uint64_t chunk = k.bytes / k.curr_items;
		ok = statf(c, "1:chunk_size %" PRIu64, chunk) &&
		     statf(c, "1:chunks_per_page %" PRIu64,
			   chunk ? (1024 * 1024) / chunk : 0) &&
		     statf(c, "1:total_pages %" PRIu64, (k.bytes >> 20) + 1) &&
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
	       statf(c, "total_malloced %" PRIu64, k.bytes);
}

static bool stats_settings(struct vmc_conn *c)
{
	return statf(c, "maxbytes %" PRIu64, vmc_limit) &&
	       statf(c, "maxconns %d", vmc_settings.maxconns) &&
	       statf(c, "tcpport %d", vmc_settings.port) &&
	       statf(c, "inter %s", vmc_settings.listen) &&
	       statf(c, "verbosity %d", vmc_settings.verbose) &&
	       statf(c, "evictions on") &&
	       statf(c, "num_threads %d", vmc_settings.threads) &&
	       statf(c, "cas_enabled yes") &&
	       statf(c, "item_size_max %zu", vmc_item_max) &&
	       statf(c, "pool %s", vmc_settings.pool) &&
	       statf(c, "commit_interval_ms %g", vmc_settings.commit_interval_ms);
}

/* do_stats -- stats [reset|items|slabs|settings|detail]. */
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
		return pr_answer(c, false, "RESET", linelen);
	} else if (pr_tok_is(&t[1], "items")) {
		ok = stats_items(c);
	} else if (pr_tok_is(&t[1], "slabs")) {
		ok = stats_slabs(c);
	} else if (pr_tok_is(&t[1], "settings")) {
		ok = stats_settings(c);
	} else if (pr_tok_is(&t[1], "detail")) {
		return pr_answer(c, false,
			      "CLIENT_ERROR usage: stats detail on|off|dump",
			      linelen);
	} else {
		return pr_answer(c, false, "ERROR", linelen);
	}
	return ok ? pr_answer(c, false, "END", linelen) : -1;
}

