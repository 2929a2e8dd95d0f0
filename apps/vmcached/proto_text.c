/* SPDX-License-Identifier: MIT */
/*
 * proto_text.c -- memcached's classic text commands: set add replace
 * append prepend cas, get gets gat gats, delete, incr decr, touch,
 * flush_all, version, verbosity, quit.
 *
 * Replies and error strings follow memcached 1.6 (proto_text.c), including
 * its quirks: a storage command with a bad command line does not swallow
 * its data block (which then reads as a command: ERROR), a too-large value
 * is swallowed, `noreply` silences errors too, decr pads in place.
 */
#include "proto.h"

#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>

/* key_args -- the first checks of `<cmd> <key> <arg> [noreply]` (incr,
 * decr, touch), in memcached's order. 0 to go on, with *noreply set; else
 * the answered request's return value (never 0: a line has its '\n'). */
static long key_args(struct vmc_conn *c, const struct tok *t, size_t nt,
		     bool *noreply, size_t linelen)
{
	*noreply = false;
	if (nt != 3 && nt != 4)
		return pr_answer(c, false, "ERROR", linelen);
	*noreply = pr_tok_is(&t[nt - 1], "noreply");
	if (t[1].n > VMC_KEY_MAX)
		return pr_answer(c, *noreply, BAD_FORMAT, linelen);
	return 0;
}

/* do_update -- set/add/replace/append/prepend/cas. Returns bytes used, 0
 * if the data block is not all here yet, -1 to close. */
long text_update(struct vmc_conn *c, const struct req *rq)
{
	struct tok *t = rq->t;
	size_t nt = rq->nt, linelen = rq->linelen;
	enum vmc_cmd cmd = (enum vmc_cmd)rq->arg;
	bool is_cas = cmd == VMC_CAS;
	if (!(nt == (is_cas ? 6u : 5u) || nt == (is_cas ? 7u : 6u)))
		return pr_answer(c, false, "ERROR", linelen);
	bool noreply = pr_tok_is(&t[nt - 1], "noreply");
	uint32_t flags;
	int32_t exptime, vlen;
	uint64_t cas_in = 0;
	if (t[1].n > VMC_KEY_MAX || !pr_parse_u32(&t[2], &flags) ||
	    !pr_parse_i32(&t[3], &exptime) || !pr_parse_i32(&t[4], &vlen) ||
	    (is_cas && !pr_parse_u64(&t[5], &cas_in)) || vlen < 0 ||
	    vlen > INT_MAX - 2)
		return pr_answer(c, noreply, BAD_FORMAT, linelen);
	size_t nbytes = (size_t)vlen + 2;
	struct vmc_clock now;
	vmc_clock_now(&now);
	uint64_t hv = vmc_hash(t[1].p, t[1].n);
	if (vmc_item_size(t[1].n, nbytes) > vmc_item_max)  /* set: drop old */
		return pr_too_large(c, t[1].p, t[1].n, hv, nbytes,
				    cmd == VMC_SET, noreply, linelen);
	long ret;
	const char *data = pr_data(c, linelen, nbytes, noreply, &ret);
	if (!data)
		return ret;
	TSTAT_INC(c->w, cmd_set);
	pr_fas_begin(c);
	enum vmc_store_res r = vmc_store(cmd, t[1].p, t[1].n, hv, flags,
					 pr_abs_exptime(exptime, &now), data,
					 nbytes, cas_in, 0, &now);
	int rc = pr_fas_end(c);
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
	return pr_fas_answer(c, rc, noreply, s, linelen + nbytes);
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
long text_get(struct vmc_conn *c, const struct req *rq)
{
	struct tok *t = rq->t;
	size_t nt = rq->nt, linelen = rq->linelen;
	const char *line = rq->line;
	size_t len = rq->len;
	bool with_cas = rq->arg & GET_CAS, touch = rq->arg & GET_TOUCH;
	if (nt < 2)
		return pr_answer(c, false, "ERROR", linelen);
	int32_t e = 0;
	if (touch && !pr_parse_i32(&t[1], &e))
		return pr_answer(c, false, "CLIENT_ERROR invalid exptime argument",
			      linelen);
	struct vmc_clock now;
	vmc_clock_now(&now);
	int64_t exptime = pr_abs_exptime(e, &now);
	const char *end = line + len;
	const char *s = touch ? t[1].p + t[1].n : t[1].p;
	size_t mark = c->wlen;
	bool ok = true, badkey = false;
	struct tok k;
	if (touch)
		pr_fas_begin(c);
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
			TSTAT_HIT(c->w, touch, it);
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
		rc = pr_fas_end(c);
	} else {
		vmc_unlock();
	}
	if (!ok)
		return -1;
	if (badkey || rc != 0) {
		c->wlen = mark; /* like memcached, drop the partial answer */
		return pr_answer(c, false, badkey ? BAD_FORMAT : COMMIT_FAILED,
			      linelen);
	}
	return pr_answer(c, false, "END", linelen);
}

/* do_delete -- delete <key> [0] [noreply], memcached's legacy "0" too. */
long text_delete(struct vmc_conn *c, const struct req *rq)
{
	struct tok *t = rq->t;
	size_t nt = rq->nt, linelen = rq->linelen;
	bool noreply = false;
	if (nt < 2 || nt > 4)
		return pr_answer(c, false, "ERROR", linelen);
	if (nt > 2) {
		bool hold0 = pr_tok_is(&t[2], "0");
		noreply = pr_tok_is(&t[nt - 1], "noreply");
		bool valid = (nt == 3 && (hold0 || noreply)) ||
			     (nt == 4 && hold0 && noreply);
		if (!valid)
			return pr_answer(c, noreply, BAD_FORMAT ".  Usage: delete "
				      "<key> [noreply]", linelen);
	}
	if (t[1].n > VMC_KEY_MAX)
		return pr_answer(c, noreply, BAD_FORMAT, linelen);
	struct vmc_clock now;
	vmc_clock_now(&now);
	pr_fas_begin(c);
	bool hit = vmc_delete(t[1].p, t[1].n, vmc_hash(t[1].p, t[1].n), &now);
	int rc = pr_fas_end(c);
	TSTAT_HIT(c->w, delete, hit);
	return pr_fas_answer(c, rc, noreply, hit ? "DELETED" : "NOT_FOUND",
			  linelen);
}

/* do_delta -- incr/decr <key> <delta> [noreply]. */
long text_delta(struct vmc_conn *c, const struct req *rq)
{
	struct tok *t = rq->t;
	size_t nt = rq->nt, linelen = rq->linelen;
	bool incr = rq->arg;
	bool noreply;
	uint64_t delta;
	long done = key_args(c, t, nt, &noreply, linelen);
	if (done)
		return done;
	if (!pr_parse_u64(&t[2], &delta))
		return pr_answer(c, noreply,
			      "CLIENT_ERROR invalid numeric delta argument",
			      linelen);
	struct vmc_clock now;
	vmc_clock_now(&now);
	char out[32];
	pr_fas_begin(c);
	enum vmc_delta_res r = vmc_delta(t[1].p, t[1].n, vmc_hash(t[1].p, t[1].n),
					 incr, delta, 0, out, sizeof out, &now);
	int rc = pr_fas_end(c);
	const char *s = out;
	switch (r) {
	case VMC_DELTA_OK:
		pr_delta_stat(c, incr, true);
		break;
	case VMC_DELTA_NOT_FOUND:
		pr_delta_stat(c, incr, false);
		s = "NOT_FOUND";
		break;
	case VMC_DELTA_NON_NUMERIC:
		s = "CLIENT_ERROR cannot increment or decrement non-numeric value";
		break;
	case VMC_DELTA_NO_MEMORY:
		s = "SERVER_ERROR out of memory";
		break;
	case VMC_DELTA_EXISTS: /* no CAS given: cannot happen */
		s = "EXISTS";
		break;
	}
	return pr_fas_answer(c, rc, noreply, s, linelen);
}

/* do_touch -- touch <key> <exptime> [noreply]. */
long text_touch(struct vmc_conn *c, const struct req *rq)
{
	struct tok *t = rq->t;
	size_t nt = rq->nt, linelen = rq->linelen;
	bool noreply;
	int32_t e;
	long done = key_args(c, t, nt, &noreply, linelen);
	if (done)
		return done;
	if (!pr_parse_i32(&t[2], &e))
		return pr_answer(c, noreply,
			      "CLIENT_ERROR invalid exptime argument", linelen);
	struct vmc_clock now;
	vmc_clock_now(&now);
	TSTAT_INC(c->w, cmd_touch);
	pr_fas_begin(c);
	bool hit = vmc_touch(t[1].p, t[1].n, vmc_hash(t[1].p, t[1].n),
			     pr_abs_exptime(e, &now), &now) != NULL;
	int rc = pr_fas_end(c);
	TSTAT_HIT(c->w, touch, hit);
	return pr_fas_answer(c, rc, noreply, hit ? "TOUCHED" : "NOT_FOUND",
			  linelen);
}

/* do_flush -- flush_all [delay] [noreply]. */
long text_flush(struct vmc_conn *c, const struct req *rq)
{
	struct tok *t = rq->t;
	size_t nt = rq->nt, linelen = rq->linelen;
	if (nt < 1 || nt > 3)
		return pr_answer(c, false, "ERROR", linelen);
	bool noreply = pr_tok_is(&t[nt - 1], "noreply");
	TSTAT_INC(c->w, cmd_flush);  /* counted even when refused, as memcached */
	if (vmc_settings.flush_disabled)
		return pr_answer(c, noreply, "CLIENT_ERROR flush_all not allowed",
				 linelen);
	int32_t e = 0;
	if (nt != (noreply ? 2u : 1u) && !pr_parse_i32(&t[1], &e))
		return pr_answer(c, noreply,
			      "CLIENT_ERROR invalid exptime argument", linelen);
	struct vmc_clock now;
	vmc_clock_now(&now);
	/* a delay is relative unless it is past 30 days (absolute time) */
	int64_t delay = e;
	if (e > REALTIME_MAXDELTA)
		delay = e - now.now_s;
	pr_fas_begin(c);
	vmc_flush(delay, &now);
	int rc = pr_fas_end(c);
	return pr_fas_answer(c, rc, noreply, "OK", linelen);
}

long text_version(struct vmc_conn *c, const struct req *rq)
{
	return pr_answer(c, false, "VERSION " VMC_VERSION, rq->linelen);
}

/* text_verbosity -- verbosity <level> [noreply]. */
long text_verbosity(struct vmc_conn *c, const struct req *rq)
{
	if (rq->nt != 2 && rq->nt != 3)
		return pr_answer(c, false, "ERROR", rq->linelen);
	bool noreply = pr_tok_is(&rq->t[rq->nt - 1], "noreply");
	uint32_t level;
	if (!pr_parse_u32(&rq->t[1], &level))
		return pr_answer(c, noreply, BAD_FORMAT, rq->linelen);
	vmc_settings.verbose = level > 2 ? 2 : (int)level;
	return pr_answer(c, noreply, "OK", rq->linelen);
}

long text_quit(struct vmc_conn *c, const struct req *rq)
{
	c->closing = true;
	return (long)rq->linelen;
}
