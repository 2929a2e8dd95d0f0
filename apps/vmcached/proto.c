/* SPDX-License-Identifier: MIT */
/*
 * proto.c -- the memcached text protocol, and the common meta commands.
 *
 * A request is handled only once all of it (command line and data block)
 * is in the connection's volatile input buffer. Every request that changes
 * the cache is then one FAS:
 *
 *     pstart(); vmc_lock(); ...change the cache...; vmc_unlock(); pend();
 *
 * so no FAS is ever open while we wait for the network, and the cache lock
 * is taken inside the FAS (volipmem.h's deadlock rule: a thread waiting in
 * pstart() must never hold a lock that a thread inside a FAS may wait for).
 * In synchronous mode pend() returns once the change is durable; the reply
 * is queued only after that. Reads (get/gets) take the lock without a FAS
 * and write nothing but an item's one-byte CLOCK mark (see cache.h).
 *
 * Replies and error strings follow memcached 1.6 (proto_text.c), including
 * its quirks: a storage command with a bad command line does not swallow
 * its data block (which then reads as a command: ERROR), a too-large value
 * is swallowed, `noreply` silences errors too, decr pads in place.
 */
#include "vmcached.h"
#include "cache.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include <volipmem.h>

#define LINE_MAX_PLAIN 2048         /* a longer line must be a multi-get */
#define LINE_MAX_GET (8u << 20)     /* longest multi-get line we buffer  */
#define OUT_BACKLOG (4u << 20)      /* stop parsing while this much output waits */
#define REALTIME_MAXDELTA (60 * 60 * 24 * 30)
#define NTOK 24                     /* memcached's MAX_TOKENS */

struct tok {
	const char *p;
	size_t n;
};

bool out_append(struct vmc_conn *c, const void *p, size_t n)
{
	if (c->wlen + n > c->wsize) {
		if (c->wpos > 0 && c->wpos == c->wlen)
			c->wpos = c->wlen = 0;
		size_t sz = c->wsize ? c->wsize : 4096;
		while (sz < c->wlen + n)
			sz *= 2;
		if (sz != c->wsize) {
			char *nb = realloc(c->wbuf, sz);
			if (!nb)
				return false;
			c->wbuf = nb;
			c->wsize = sz;
		}
	}
	memcpy(c->wbuf + c->wlen, p, n);
	c->wlen += n;
	return true;
}

static bool out_str(struct vmc_conn *c, const char *s)
{
	return out_append(c, s, strlen(s)) && out_append(c, "\r\n", 2);
}

/* reply -- one status line, unless the request said noreply. */
static bool reply(struct vmc_conn *c, bool noreply, const char *s)
{
	return noreply ? true : out_str(c, s);
}

/* answer -- reply s to a request that used `used` bytes of input, and
 * return what its handler returns: used, or -1 (close) if the reply
 * cannot be queued. */
static long answer(struct vmc_conn *c, bool noreply, const char *s,
		   size_t used)
{
	return reply(c, noreply, s) ? (long)used : -1;
}

/* tokenize -- split on blanks like memcached; store up to max tokens and
 * return how many there are in all. */
static size_t tokenize(const char *s, size_t len, struct tok *t, size_t max)
{
	size_t n = 0, i = 0;
	while (i < len) {
		while (i < len && s[i] == ' ')
			i++;
		if (i == len)
			break;
		size_t b = i;
		while (i < len && s[i] != ' ')
			i++;
		if (n < max) {
			t[n].p = s + b;
			t[n].n = i - b;
		}
		n++;
	}
	return n;
}

static bool tok_is(const struct tok *t, const char *s)
{
	size_t n = strlen(s);
	return t->n == n && memcmp(t->p, s, n) == 0;
}

/* tok_cstr -- a token as a C string for strto*(); false if too long. */
static bool tok_cstr(const struct tok *t, char *buf, size_t size)
{
	if (t->n == 0 || t->n >= size)
		return false;
	memcpy(buf, t->p, t->n);
	buf[t->n] = 0;
	return true;
}

static bool end_ok(const char *end, const char *start)
{
	return end != start && (*end == 0 || *end == '\r' || *end == '\t' ||
				*end == '\n' || *end == ' ');
}

/* Number parsers with memcached's semantics (util.c safe_strto*), including
 * the truncation of 64-bit results to 32 bits where memcached does it. */
static bool parse_u64(const struct tok *t, uint64_t *out)
{
	char b[48], *e;
	if (!tok_cstr(t, b, sizeof b))
		return false;
	errno = 0;
	unsigned long long v = strtoull(b, &e, 10);
	if (errno == ERANGE || !end_ok(e, b))
		return false;
	if ((long long)v < 0 && memchr(b, '-', (size_t)(e - b)))
		return false;
	*out = v;
	return true;
}

static bool parse_u32(const struct tok *t, uint32_t *out)
{
	uint64_t v;
	if (!parse_u64(t, &v))
		return false;
	*out = (uint32_t)v;
	return true;
}

static bool parse_i32(const struct tok *t, int32_t *out)
{
	char b[48], *e;
	if (!tok_cstr(t, b, sizeof b))
		return false;
	errno = 0;
	long v = strtol(b, &e, 10);
	if (errno == ERANGE || !end_ok(e, b))
		return false;
	*out = (int32_t)v;
	return true;
}

/* abs_exptime -- memcached's realtime(), but as absolute unix seconds so
 * the value means the same after a restart. */
static int64_t abs_exptime(int32_t e, const struct vmc_clock *now)
{
	if (e == 0)
		return 0;
	if (e < 0)
		return 1; /* already expired */
	if (e > REALTIME_MAXDELTA)
		return e;
	return now->now_s + e;
}

/* fas_begin -- open this request's FAS, then take the cache lock.
 *
 * The request's FAS nests (flatly) in the worker's group FAS, opened here
 * at the first mutation of an epoll batch and ended by net.c once every
 * ready connection has been served, before any reply is sent: one commit
 * then carries the whole batch (in synchronous mode, pend() of the group
 * returns once all of it is durable). Nothing inside it waits for the
 * network: requests are complete in volatile buffers before we get here. */
static void fas_begin(struct vmc_conn *c)
{
	struct vmc_worker *w = c->w;
	if (!w->group_open) {
		pstart();
		w->group_open = true;
	}
	pstart();
	c->mutated = true;
	vmc_lock();
}

/* fas_end -- unlock, then close the request's (nested) FAS. */
static int fas_end(struct vmc_conn *c)
{
	vmc_unlock();
	int rc = pend();
	TSTAT_INC(c->w, fas);
	if (rc != 0) {
		TSTAT_INC(c->w, commit_errors);
		fprintf(stderr, "vmcached: commit failed: %s\n", vp_strerror(rc));
	}
	return rc;
}

#define COMMIT_FAILED "SERVER_ERROR commit failed"
#define BAD_FORMAT "CLIENT_ERROR bad command line format"

/* fas_answer -- answer a request whose FAS ended with rc: a failed commit
 * is reported even under noreply. */
static long fas_answer(struct vmc_conn *c, int rc, bool noreply,
		       const char *s, size_t used)
{
	return rc ? answer(c, false, COMMIT_FAILED, used)
		  : answer(c, noreply, s, used);
}

/* key_args -- the first checks of `<cmd> <key> <arg> [noreply]` (incr,
 * decr, touch), in memcached's order. 0 to go on, with *noreply set; else
 * the answered request's return value (never 0: a line has its '\n'). */
static long key_args(struct vmc_conn *c, const struct tok *t, size_t nt,
		     bool *noreply, size_t linelen)
{
	*noreply = false;
	if (nt != 3 && nt != 4)
		return answer(c, false, "ERROR", linelen);
	*noreply = tok_is(&t[nt - 1], "noreply");
	if (t[1].n > VMC_KEY_MAX)
		return answer(c, *noreply, BAD_FORMAT, linelen);
	return 0;
}

/* do_update -- set/add/replace/append/prepend/cas. Returns bytes used, 0
 * if the data block is not all here yet, -1 to close. */
static long do_update(struct vmc_conn *c, struct tok *t, size_t nt,
		      enum vmc_cmd cmd, size_t linelen)
{
	bool is_cas = cmd == VMC_CAS;
	if (!(nt == (is_cas ? 6u : 5u) || nt == (is_cas ? 7u : 6u)))
		return answer(c, false, "ERROR", linelen);
	bool noreply = tok_is(&t[nt - 1], "noreply");
	uint32_t flags;
	int32_t exptime, vlen;
	uint64_t cas_in = 0;
	if (t[1].n > VMC_KEY_MAX || !parse_u32(&t[2], &flags) ||
	    !parse_i32(&t[3], &exptime) || !parse_i32(&t[4], &vlen) ||
	    (is_cas && !parse_u64(&t[5], &cas_in)) || vlen < 0 ||
	    vlen > INT_MAX - 2)
		return answer(c, noreply, BAD_FORMAT, linelen);
	size_t nbytes = (size_t)vlen + 2;
	struct vmc_clock now;
	vmc_clock_now(&now);
	uint64_t hv = vmc_hash(t[1].p, t[1].n);
	if (vmc_item_size(t[1].n, nbytes) > vmc_item_max) {
		TSTAT_INC(c->w, store_too_large);
		c->swallow = nbytes;
		if (cmd == VMC_SET) {
			/* memcached drops the old value: a failed set must not
			 * leave stale data visible */
			fas_begin(c);
			vmc_unlink_key(t[1].p, t[1].n, hv, &now);
			fas_end(c);
		}
		return answer(c, noreply,
			      "SERVER_ERROR object too large for cache",
			      linelen);
	}
	if (c->rlen - c->rpos < linelen + nbytes) {
		c->need = linelen + nbytes;
		return 0;
	}
	const char *data = c->rbuf + c->rpos + linelen;
	if (data[nbytes - 2] != '\r' || data[nbytes - 1] != '\n')
		return answer(c, noreply, "CLIENT_ERROR bad data chunk",
			      linelen + nbytes);
	TSTAT_INC(c->w, cmd_set);
	fas_begin(c);
	enum vmc_store_res r = vmc_store(cmd, t[1].p, t[1].n, hv, flags,
					 abs_exptime(exptime, &now), data,
					 nbytes, cas_in, &now);
	int rc = fas_end(c);
	const char *s = "SERVER_ERROR out of memory storing object";
	switch (r) {
	case VMC_STORED: s = "STORED"; break;
	case VMC_NOT_STORED: s = "NOT_STORED"; break;
	case VMC_EXISTS: s = "EXISTS"; break;
	case VMC_NOT_FOUND: s = "NOT_FOUND"; break;
	case VMC_TOO_LARGE: s = "SERVER_ERROR object too large for cache";
		TSTAT_INC(c->w, store_too_large); break;
	case VMC_NO_MEMORY: TSTAT_INC(c->w, store_no_memory); break;
	}
	if (is_cas) {
		if (r == VMC_STORED)
			TSTAT_INC(c->w, cas_hits);
		else if (r == VMC_EXISTS)
			TSTAT_INC(c->w, cas_badval);
		else if (r == VMC_NOT_FOUND)
			TSTAT_INC(c->w, cas_misses);
	}
	return fas_answer(c, rc, noreply, s, linelen + nbytes);
}

/* value_out -- "VALUE key flags bytes [cas]\r\n" + data. */
static bool value_out(struct vmc_conn *c, struct vmc_item *it, bool with_cas)
{
	char hdr[VMC_KEY_MAX + 80];
	int n = snprintf(hdr, sizeof hdr, "VALUE %.*s %" PRIu32 " %" PRIu32,
			 (int)it->nkey, it->data, it->flags, it->nbytes - 2);
	if (with_cas)
		n += snprintf(hdr + n, sizeof hdr - (size_t)n, " %" PRIu64, it->cas);
	hdr[n++] = '\r';
	hdr[n++] = '\n';
	return out_append(c, hdr, (size_t)n) &&
	       out_append(c, vmc_item_value(it), it->nbytes);
}

/* next_key -- iterate the keys of a multi-get without a token limit. */
static bool next_key(const char **s, const char *end, struct tok *k)
{
	const char *p = *s;
	while (p < end && *p == ' ')
		p++;
	if (p == end)
		return false;
	k->p = p;
	while (p < end && *p != ' ')
		p++;
	k->n = (size_t)(p - k->p);
	*s = p;
	return true;
}

/* do_get -- get/gets, and gat/gats (touch = true) which change exptime and
 * so run as one FAS. */
static long do_get(struct vmc_conn *c, const char *line, size_t len,
		   struct tok *t, size_t nt, bool with_cas, bool touch,
		   size_t linelen)
{
	if (nt < 2)
		return answer(c, false, "ERROR", linelen);
	int32_t e = 0;
	if (touch && !parse_i32(&t[1], &e))
		return answer(c, false, "CLIENT_ERROR invalid exptime argument",
			      linelen);
	struct vmc_clock now;
	vmc_clock_now(&now);
	int64_t exptime = abs_exptime(e, &now);
	const char *end = line + len;
	const char *s = touch ? t[1].p + t[1].n : t[1].p;
	size_t mark = c->wlen;
	bool ok = true, badkey = false;
	struct tok k;
	if (touch)
		fas_begin(c);
	else
		vmc_lock();
	while (ok && next_key(&s, end, &k)) {
		if (k.n > VMC_KEY_MAX) {
			badkey = true;
			break;
		}
		uint64_t hv = vmc_hash(k.p, k.n);
		enum vmc_miss miss = VMC_MISS;
		struct vmc_item *it;
		if (touch) {
			TSTAT_INC(c->w, cmd_touch);
			it = vmc_touch(k.p, k.n, hv, exptime, &now);
			if (it)
				TSTAT_INC(c->w, touch_hits);
			else
				TSTAT_INC(c->w, touch_misses);
		} else {
			TSTAT_INC(c->w, cmd_get);
			it = vmc_find(k.p, k.n, hv, &now, &miss);
		}
		if (it) {
			TSTAT_INC(c->w, get_hits);
			ok = value_out(c, it, with_cas);
			vmc_referenced(it);
		} else {
			TSTAT_INC(c->w, get_misses);
			if (miss == VMC_MISS_EXPIRED)
				TSTAT_INC(c->w, get_expired);
			else if (miss == VMC_MISS_FLUSHED)
				TSTAT_INC(c->w, get_flushed);
		}
	}
	int rc = 0;
	if (touch) {
		rc = fas_end(c);
	} else {
		vmc_unlock();
	}
	if (!ok)
		return -1;
	if (badkey || rc != 0) {
		c->wlen = mark; /* like memcached, drop the partial answer */
		return answer(c, false, badkey ? BAD_FORMAT : COMMIT_FAILED,
			      linelen);
	}
	return answer(c, false, "END", linelen);
}

/* do_delete -- delete <key> [0] [noreply], memcached's legacy "0" too. */
static long do_delete(struct vmc_conn *c, struct tok *t, size_t nt,
		      size_t linelen)
{
	bool noreply = false;
	if (nt < 2 || nt > 4)
		return answer(c, false, "ERROR", linelen);
	if (nt > 2) {
		bool hold0 = tok_is(&t[2], "0");
		noreply = tok_is(&t[nt - 1], "noreply");
		bool valid = (nt == 3 && (hold0 || noreply)) ||
			     (nt == 4 && hold0 && noreply);
		if (!valid)
			return answer(c, noreply, BAD_FORMAT ".  Usage: delete "
				      "<key> [noreply]", linelen);
	}
	if (t[1].n > VMC_KEY_MAX)
		return answer(c, noreply, BAD_FORMAT, linelen);
	struct vmc_clock now;
	vmc_clock_now(&now);
	fas_begin(c);
	bool hit = vmc_delete(t[1].p, t[1].n, vmc_hash(t[1].p, t[1].n), &now);
	int rc = fas_end(c);
	if (hit)
		TSTAT_INC(c->w, delete_hits);
	else
		TSTAT_INC(c->w, delete_misses);
	return fas_answer(c, rc, noreply, hit ? "DELETED" : "NOT_FOUND",
			  linelen);
}

/* do_delta -- incr/decr <key> <delta> [noreply]. */
static long do_delta(struct vmc_conn *c, struct tok *t, size_t nt, bool incr,
		     size_t linelen)
{
	bool noreply;
	uint64_t delta;
	long done = key_args(c, t, nt, &noreply, linelen);
	if (done)
		return done;
	if (!parse_u64(&t[2], &delta))
		return answer(c, noreply,
			      "CLIENT_ERROR invalid numeric delta argument",
			      linelen);
	struct vmc_clock now;
	vmc_clock_now(&now);
	char out[32];
	fas_begin(c);
	enum vmc_delta_res r = vmc_delta(t[1].p, t[1].n, vmc_hash(t[1].p, t[1].n),
					 incr, delta, out, sizeof out, &now);
	int rc = fas_end(c);
	const char *s = out;
	switch (r) {
	case VMC_DELTA_OK:
		if (incr)
			TSTAT_INC(c->w, incr_hits);
		else
			TSTAT_INC(c->w, decr_hits);
		break;
	case VMC_DELTA_NOT_FOUND:
		if (incr)
			TSTAT_INC(c->w, incr_misses);
		else
			TSTAT_INC(c->w, decr_misses);
		s = "NOT_FOUND";
		break;
	case VMC_DELTA_NON_NUMERIC:
		s = "CLIENT_ERROR cannot increment or decrement non-numeric value";
		break;
	case VMC_DELTA_NO_MEMORY:
		s = "SERVER_ERROR out of memory";
		break;
	}
	return fas_answer(c, rc, noreply, s, linelen);
}

/* do_touch -- touch <key> <exptime> [noreply]. */
static long do_touch(struct vmc_conn *c, struct tok *t, size_t nt,
		     size_t linelen)
{
	bool noreply;
	int32_t e;
	long done = key_args(c, t, nt, &noreply, linelen);
	if (done)
		return done;
	if (!parse_i32(&t[2], &e))
		return answer(c, noreply,
			      "CLIENT_ERROR invalid exptime argument", linelen);
	struct vmc_clock now;
	vmc_clock_now(&now);
	TSTAT_INC(c->w, cmd_touch);
	fas_begin(c);
	bool hit = vmc_touch(t[1].p, t[1].n, vmc_hash(t[1].p, t[1].n),
			     abs_exptime(e, &now), &now) != NULL;
	int rc = fas_end(c);
	if (hit)
		TSTAT_INC(c->w, touch_hits);
	else
		TSTAT_INC(c->w, touch_misses);
	return fas_answer(c, rc, noreply, hit ? "TOUCHED" : "NOT_FOUND",
			  linelen);
}

/* do_flush -- flush_all [delay] [noreply]. */
static long do_flush(struct vmc_conn *c, struct tok *t, size_t nt,
		     size_t linelen)
{
	if (nt < 1 || nt > 3)
		return answer(c, false, "ERROR", linelen);
	bool noreply = tok_is(&t[nt - 1], "noreply");
	int32_t e = 0;
	if (nt != (noreply ? 2u : 1u) && !parse_i32(&t[1], &e))
		return answer(c, noreply,
			      "CLIENT_ERROR invalid exptime argument", linelen);
	struct vmc_clock now;
	vmc_clock_now(&now);
	TSTAT_INC(c->w, cmd_flush);
	/* a delay is relative unless it is past 30 days (absolute time) */
	int64_t delay = e;
	if (e > REALTIME_MAXDELTA)
		delay = e - now.now_s;
	fas_begin(c);
	vmc_flush(delay, &now);
	int rc = fas_end(c);
	return fas_answer(c, rc, noreply, "OK", linelen);
}

/* ---- stats ---- */

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
static long do_stats(struct vmc_conn *c, struct tok *t, size_t nt,
		     size_t linelen)
{
	bool ok;
	if (nt == 1) {
		ok = stats_general(c);
	} else if (tok_is(&t[1], "reset")) {
		for (int i = 0; i < vmc_settings.threads; i++) {
#define X(n) __atomic_store_n(&vmc_workers[i].st.n, 0, __ATOMIC_RELAXED);
			VMC_TSTATS(X)
#undef X
		}
		return answer(c, false, "RESET", linelen);
	} else if (tok_is(&t[1], "items")) {
		ok = stats_items(c);
	} else if (tok_is(&t[1], "slabs")) {
		ok = stats_slabs(c);
	} else if (tok_is(&t[1], "settings")) {
		ok = stats_settings(c);
	} else if (tok_is(&t[1], "detail")) {
		return answer(c, false,
			      "CLIENT_ERROR usage: stats detail on|off|dump",
			      linelen);
	} else {
		return answer(c, false, "ERROR", linelen);
	}
	return ok ? answer(c, false, "END", linelen) : -1;
}

/* ---- meta commands: mg ms md ma (mn is in dispatch) ----
 * The subset of memcached 1.6's meta protocol that clients use: flags
 * v q k c f s t O T (mg), F T C q k c O and modes E A P R S (ms), q k O C
 * (md), D J N T q k c t v O and modes I + D - (ma). */
struct meta {
	bool v, q, has_T, has_N, has_C, has_D, has_J, has_F;
	int32_t T, N;
	uint64_t C, D, J;
	uint32_t F;
	char mode;
	const struct tok *flags;   /* the flag tokens, echoed in order */
	size_t nflags;
};

/* meta_parse -- read the flags; NULL if fine, else the error to send. */
static const char *meta_parse(struct tok *t, size_t from, size_t nt,
			      struct meta *m)
{
	static const char invalid[] = "CLIENT_ERROR invalid flag";
	bool seen[128] = { false };
	memset(m, 0, sizeof *m);
	if (nt > NTOK)
		return invalid;
	m->flags = &t[from];
	m->nflags = nt > from ? nt - from : 0;
	for (size_t i = from; i < nt; i++) {
		struct tok a = { t[i].p + 1, t[i].n - 1 };
		unsigned char ch = (unsigned char)t[i].p[0];
		if (ch >= 128)
			return invalid;
		if (seen[ch])
			return "CLIENT_ERROR duplicate flag";
		seen[ch] = true;
		bool ok = true;
		switch (ch) {
		case 'v': m->v = true; break;
		case 'q': m->q = true; break;
		case 'k': case 'c': case 'f': case 's': case 't': case 'O': break;
		case 'I': break; /* invalidate: a plain store here */
		case 'T': ok = m->has_T = parse_i32(&a, &m->T); break;
		case 'N': ok = m->has_N = parse_i32(&a, &m->N); break;
		case 'C': ok = m->has_C = parse_u64(&a, &m->C); break;
		case 'D': ok = m->has_D = parse_u64(&a, &m->D); break;
		case 'J': ok = m->has_J = parse_u64(&a, &m->J); break;
		case 'F': ok = m->has_F = parse_u32(&a, &m->F); break;
		case 'M': ok = a.n == 1; m->mode = a.n ? a.p[0] : 0; break;
		default: ok = false;
		}
		if (!ok)
			return invalid;
	}
	return NULL;
}

/* meta_ret -- append the return flags the client asked for. */
static bool meta_ret(struct vmc_conn *c, const struct meta *m,
		     const struct tok *key, struct vmc_item *it,
		     const struct vmc_clock *now, const char *allowed)
{
	char b[64];
	for (size_t i = 0; i < m->nflags; i++) {
		const struct tok *f = &m->flags[i];
		char ch = f->p[0];
		int n = -1;
		if (!strchr(allowed, ch))
			continue;
		if (ch == 'k') {
			if (!out_append(c, " k", 2) || !out_append(c, key->p, key->n))
				return false;
			continue;
		}
		if (ch == 'O') {
			if (!out_append(c, " ", 1) || !out_append(c, f->p, f->n))
				return false;
			continue;
		}
		if (!it)
			continue;
		if (ch == 'c')
			n = snprintf(b, sizeof b, " c%" PRIu64, it->cas);
		else if (ch == 'f')
			n = snprintf(b, sizeof b, " f%" PRIu32, it->flags);
		else if (ch == 's')
			n = snprintf(b, sizeof b, " s%" PRIu32, it->nbytes - 2);
		else if (ch == 't')
			n = snprintf(b, sizeof b, " t%lld", it->exptime == 0 ? -1LL :
				     (long long)(it->exptime - now->now_s));
		if (n > 0 && !out_append(c, b, (size_t)n))
			return false;
	}
	return true;
}

/* meta_key_args -- check `<cmd> <key> <flags>*` (mg, md, ma) and read the
 * flags: NULL, or the error line to answer. */
static const char *meta_key_args(struct tok *t, size_t nt, struct meta *m)
{
	if (nt < 2)
		return "ERROR";
	if (t[1].n > VMC_KEY_MAX)
		return BAD_FORMAT;
	return meta_parse(t, 2, nt, m);
}

/* meta_done -- what a meta command returns once its lock or FAS is over
 * (rc: fas_end's, 0 without a FAS): on a failed commit, its answer (all
 * written since mark) becomes COMMIT_FAILED. */
static long meta_done(struct vmc_conn *c, bool ok, int rc, size_t mark,
		      size_t used)
{
	if (!ok)
		return -1;
	if (rc != 0) {
		c->wlen = mark;
		return answer(c, false, COMMIT_FAILED, used);
	}
	return (long)used;
}

/* do_mg -- mg <key> <flags>*: HD / VA <size> + data / EN. */
static long do_mg(struct vmc_conn *c, struct tok *t, size_t nt, size_t linelen)
{
	struct meta m;
	const char *err = meta_key_args(t, nt, &m);
	if (err)
		return answer(c, false, err, linelen);
	TSTAT_INC(c->w, cmd_meta);
	TSTAT_INC(c->w, cmd_get);
	struct vmc_clock now;
	vmc_clock_now(&now);
	uint64_t hv = vmc_hash(t[1].p, t[1].n);
	struct vmc_item *it;
	size_t mark = c->wlen;
	if (m.has_T) {
		fas_begin(c);
		it = vmc_touch(t[1].p, t[1].n, hv, abs_exptime(m.T, &now), &now);
	} else {
		vmc_lock();
		it = vmc_find(t[1].p, t[1].n, hv, &now, NULL);
	}
	bool ok = true;
	if (it) {
		TSTAT_INC(c->w, get_hits);
		vmc_referenced(it);
		char b[32];
		int n = m.v ? snprintf(b, sizeof b, "VA %" PRIu32, it->nbytes - 2)
			    : snprintf(b, sizeof b, "HD");
		ok = out_append(c, b, (size_t)n) &&
		     meta_ret(c, &m, &t[1], it, &now, "kOcfst") &&
		     out_append(c, "\r\n", 2) &&
		     (!m.v || out_append(c, vmc_item_value(it), it->nbytes));
	} else {
		TSTAT_INC(c->w, get_misses);
		if (!m.q)
			ok = out_append(c, "EN", 2) &&
			     meta_ret(c, &m, &t[1], NULL, &now, "kO") &&
			     out_append(c, "\r\n", 2);
	}
	int rc = 0;
	if (m.has_T)
		rc = fas_end(c);
	else
		vmc_unlock();
	return meta_done(c, ok, rc, mark, linelen);
}

/* do_ms -- ms <key> <datalen> <flags>* + data block: HD NS EX NF. */
static long do_ms(struct vmc_conn *c, struct tok *t, size_t nt, size_t linelen)
{
	struct meta m;
	int32_t vlen;
	if (nt < 2)
		return answer(c, false, "ERROR", linelen);
	if (nt < 3 || t[1].n > VMC_KEY_MAX || !parse_i32(&t[2], &vlen) ||
	    vlen < 0 || vlen > INT_MAX - 2)
		return answer(c, false, BAD_FORMAT, linelen);
	size_t nbytes = (size_t)vlen + 2;
	const char *perr = meta_parse(t, 3, nt, &m);
	if (perr) {
		c->swallow = nbytes;
		return answer(c, false, perr, linelen);
	}
	enum vmc_cmd cmd;
	switch (m.mode) {
	case 0: case 'S': case 's': cmd = VMC_SET; break;
	case 'E': case 'e': cmd = VMC_ADD; break;
	case 'A': case 'a': cmd = VMC_APPEND; break;
	case 'P': case 'p': cmd = VMC_PREPEND; break;
	case 'R': case 'r': cmd = VMC_REPLACE; break;
	default:
		c->swallow = nbytes;
		return answer(c, false,
			      "CLIENT_ERROR invalid mode for ms M token",
			      linelen);
	}
	if (m.has_C)
		cmd = VMC_CAS;
	if (vmc_item_size(t[1].n, nbytes) > vmc_item_max) {
		TSTAT_INC(c->w, store_too_large);
		c->swallow = nbytes;
		return answer(c, false,
			      "SERVER_ERROR object too large for cache",
			      linelen);
	}
	if (c->rlen - c->rpos < linelen + nbytes) {
		c->need = linelen + nbytes;
		return 0;
	}
	const char *data = c->rbuf + c->rpos + linelen;
	if (data[nbytes - 2] != '\r' || data[nbytes - 1] != '\n')
		return answer(c, false, "CLIENT_ERROR bad data chunk",
			      linelen + nbytes);
	struct vmc_clock now;
	vmc_clock_now(&now);
	TSTAT_INC(c->w, cmd_meta);
	TSTAT_INC(c->w, cmd_set);
	uint64_t hv = vmc_hash(t[1].p, t[1].n);
	size_t mark = c->wlen;
	fas_begin(c);
	enum vmc_store_res r = vmc_store(cmd, t[1].p, t[1].n, hv, m.F,
					 abs_exptime(m.T, &now), data, nbytes,
					 m.C, &now);
	const char *s = "SERVER_ERROR out of memory storing object";
	switch (r) {
	case VMC_STORED: s = "HD"; break;
	case VMC_NOT_STORED: s = "NS"; break;
	case VMC_EXISTS: s = "EX"; break;
	case VMC_NOT_FOUND: s = "NF"; break;
	case VMC_TOO_LARGE: s = "SERVER_ERROR object too large for cache"; break;
	case VMC_NO_MEMORY: break;
	}
	bool ok = true;
	if (!(m.q && r == VMC_STORED)) {
		struct vmc_item *it = r == VMC_STORED
			? vmc_find(t[1].p, t[1].n, hv, &now, NULL) : NULL;
		ok = out_append(c, s, strlen(s)) &&
		     (s[0] == 'S' || meta_ret(c, &m, &t[1], it, &now, "kOc")) &&
		     out_append(c, "\r\n", 2);
	}
	int rc = fas_end(c);
	return meta_done(c, ok, rc, mark, linelen + nbytes);
}

/* do_md -- md <key> <flags>*: HD NF EX. */
static long do_md(struct vmc_conn *c, struct tok *t, size_t nt, size_t linelen)
{
	struct meta m;
	const char *err = meta_key_args(t, nt, &m);
	if (err)
		return answer(c, false, err, linelen);
	struct vmc_clock now;
	vmc_clock_now(&now);
	TSTAT_INC(c->w, cmd_meta);
	uint64_t hv = vmc_hash(t[1].p, t[1].n);
	size_t mark = c->wlen;
	fas_begin(c);
	const char *s = "NF";
	struct vmc_item *it = vmc_find(t[1].p, t[1].n, hv, &now, NULL);
	if (it && m.has_C && it->cas != m.C)
		s = "EX";
	else if (it && vmc_delete(t[1].p, t[1].n, hv, &now))
		s = "HD";
	if (s[0] == 'H')
		TSTAT_INC(c->w, delete_hits);
	else
		TSTAT_INC(c->w, delete_misses);
	bool ok = true;
	if (!(m.q && s[0] == 'H'))
		ok = out_append(c, s, 2) && meta_ret(c, &m, &t[1], NULL, &now, "kO") &&
		     out_append(c, "\r\n", 2);
	int rc = fas_end(c);
	return meta_done(c, ok, rc, mark, linelen);
}

/* do_ma -- ma <key> <flags>*: arithmetic, with autovivify (N, J). */
static long do_ma(struct vmc_conn *c, struct tok *t, size_t nt, size_t linelen)
{
	struct meta m;
	const char *err = meta_key_args(t, nt, &m);
	if (err)
		return answer(c, false, err, linelen);
	bool incr;
	switch (m.mode) {
	case 0: case 'I': case 'i': case '+': incr = true; break;
	case 'D': case 'd': case '-': incr = false; break;
	default:
		return answer(c, false,
			      "CLIENT_ERROR invalid mode for ma M token",
			      linelen);
	}
	struct vmc_clock now;
	vmc_clock_now(&now);
	TSTAT_INC(c->w, cmd_meta);
	uint64_t hv = vmc_hash(t[1].p, t[1].n);
	uint64_t delta = m.has_D ? m.D : 1;
	char val[32];
	size_t mark = c->wlen;
	fas_begin(c);
	enum vmc_delta_res r = vmc_delta(t[1].p, t[1].n, hv, incr, delta, val,
					 sizeof val, &now);
	if (r == VMC_DELTA_NOT_FOUND && m.has_N) {
		/* autovivify with the initial value J (default 0) */
		char init[24];
		int n = snprintf(init, sizeof init, "%" PRIu64 "\r\n", m.J);
		if (vmc_store(VMC_ADD, t[1].p, t[1].n, hv, 0, abs_exptime(m.N, &now),
			      init, (size_t)n, 0, &now) == VMC_STORED) {
			snprintf(val, sizeof val, "%" PRIu64, m.J);
			r = VMC_DELTA_OK;
		}
	}
	bool ok = true;
	struct vmc_item *it = NULL;
	if (r == VMC_DELTA_OK) {
		if (incr)
			TSTAT_INC(c->w, incr_hits);
		else
			TSTAT_INC(c->w, decr_hits);
		it = vmc_find(t[1].p, t[1].n, hv, &now, NULL);
		if (it && m.has_T) {
			it = vmc_touch(t[1].p, t[1].n, hv, abs_exptime(m.T, &now), &now);
		}
		if (m.v) {
			char b[48];
			int n = snprintf(b, sizeof b, "VA %zu", strlen(val));
			ok = out_append(c, b, (size_t)n) &&
			     meta_ret(c, &m, &t[1], it, &now, "kOct") &&
			     out_append(c, "\r\n", 2) && out_str(c, val);
		} else if (!m.q) {
			ok = out_append(c, "HD", 2) &&
			     meta_ret(c, &m, &t[1], it, &now, "kOct") &&
			     out_append(c, "\r\n", 2);
		}
	} else if (r == VMC_DELTA_NOT_FOUND) {
		if (incr)
			TSTAT_INC(c->w, incr_misses);
		else
			TSTAT_INC(c->w, decr_misses);
		ok = out_append(c, "NF", 2) && meta_ret(c, &m, &t[1], NULL, &now, "kO") &&
		     out_append(c, "\r\n", 2);
	} else if (r == VMC_DELTA_NON_NUMERIC) {
		ok = out_str(c, "CLIENT_ERROR cannot increment or decrement non-numeric value");
	} else {
		ok = out_str(c, "SERVER_ERROR out of memory");
	}
	int rc = fas_end(c);
	return meta_done(c, ok, rc, mark, linelen);
}

/* dispatch -- one request whose command line is line[0, len) (without
 * "\r\n") and takes linelen bytes of input with its end of line. */
static long dispatch(struct vmc_conn *c, const char *line, size_t len,
		     size_t linelen)
{
	struct tok t[NTOK];
	size_t nt = tokenize(line, len, t, NTOK);
	if (nt == 0)
		return answer(c, false, "ERROR", linelen);
	const struct tok *cmd = &t[0];
	if (tok_is(cmd, "get") || tok_is(cmd, "bget"))
		return do_get(c, line, len, t, nt, false, false, linelen);
	if (tok_is(cmd, "gets"))
		return do_get(c, line, len, t, nt, true, false, linelen);
	if (tok_is(cmd, "gat"))
		return do_get(c, line, len, t, nt, false, true, linelen);
	if (tok_is(cmd, "gats"))
		return do_get(c, line, len, t, nt, true, true, linelen);
	if (nt <= NTOK) {
		if (tok_is(cmd, "set"))
			return do_update(c, t, nt, VMC_SET, linelen);
		if (tok_is(cmd, "add"))
			return do_update(c, t, nt, VMC_ADD, linelen);
		if (tok_is(cmd, "replace"))
			return do_update(c, t, nt, VMC_REPLACE, linelen);
		if (tok_is(cmd, "append"))
			return do_update(c, t, nt, VMC_APPEND, linelen);
		if (tok_is(cmd, "prepend"))
			return do_update(c, t, nt, VMC_PREPEND, linelen);
		if (tok_is(cmd, "cas"))
			return do_update(c, t, nt, VMC_CAS, linelen);
		if (tok_is(cmd, "delete"))
			return do_delete(c, t, nt, linelen);
		if (tok_is(cmd, "incr"))
			return do_delta(c, t, nt, true, linelen);
		if (tok_is(cmd, "decr"))
			return do_delta(c, t, nt, false, linelen);
		if (tok_is(cmd, "touch"))
			return do_touch(c, t, nt, linelen);
		if (tok_is(cmd, "flush_all"))
			return do_flush(c, t, nt, linelen);
		if (tok_is(cmd, "stats"))
			return do_stats(c, t, nt, linelen);
	}
	if (tok_is(cmd, "version"))
		return answer(c, false, "VERSION " VMC_VERSION, linelen);
	if (tok_is(cmd, "verbosity")) {
		if (nt != 2 && nt != 3)
			return answer(c, false, "ERROR", linelen);
		uint32_t level;
		if (parse_u32(&t[1], &level))
			vmc_settings.verbose = level > 2 ? 2 : (int)level;
		return answer(c, tok_is(&t[nt - 1], "noreply"), "OK", linelen);
	}
	if (tok_is(cmd, "quit")) {
		c->closing = true;
		return (long)linelen;
	}
	if (tok_is(cmd, "mg"))
		return do_mg(c, t, nt, linelen);
	if (tok_is(cmd, "ms"))
		return do_ms(c, t, nt, linelen);
	if (tok_is(cmd, "md"))
		return do_md(c, t, nt, linelen);
	if (tok_is(cmd, "ma"))
		return do_ma(c, t, nt, linelen);
	if (tok_is(cmd, "mn")) {
		TSTAT_INC(c->w, cmd_meta);
		return answer(c, false, "MN", linelen);
	}
	return answer(c, false, "ERROR", linelen);
}

/* long_line_ok -- memcached keeps reading a line longer than 2 KiB only if
 * it is a multi-get; anything else is closed. */
static bool long_line_ok(const char *p, size_t n)
{
	size_t i = 0;
	while (i < n && i < 100 && p[i] == ' ')
		i++;
	if (i >= 100)
		return false;
	return (n - i >= 4 && memcmp(p + i, "get ", 4) == 0) ||
	       (n - i >= 5 && memcmp(p + i, "gets ", 5) == 0);
}

int proto_process(struct vmc_conn *c)
{
	c->need = 0;
	while (!c->closing) {
		if (c->wlen - c->wpos >= OUT_BACKLOG)
			return 1;
		size_t avail = c->rlen - c->rpos;
		if (c->swallow) {
			size_t n = avail < c->swallow ? avail : (size_t)c->swallow;
			c->rpos += n;
			c->swallow -= n;
			if (c->swallow)
				break;
			continue;
		}
		if (avail == 0)
			break;
		char *start = c->rbuf + c->rpos;
		char *nl = memchr(start, '\n', avail);
		if (!nl) {
			if (avail > LINE_MAX_PLAIN &&
			    (!long_line_ok(start, avail) || avail > LINE_MAX_GET))
				return -1;
			break;
		}
		size_t linelen = (size_t)(nl - start) + 1;
		size_t len = linelen - 1;
		if (len > 0 && start[len - 1] == '\r')
			len--;
		long used = dispatch(c, start, len, linelen);
		if (used < 0)
			return -1;
		if (used == 0)
			break;
		c->rpos += (size_t)used;
	}
	return 0;
}
