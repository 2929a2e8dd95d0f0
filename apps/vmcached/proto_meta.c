/* SPDX-License-Identifier: MIT */
/*
 * proto_meta.c -- memcached's meta commands: mn, and the subset of mg ms
 * md ma that clients use: flags v q k c f s t O T (mg), F T C q k c O and
 * modes E A P R S (ms), q k O C (md), D J N T q k c t v O and modes
 * I + D - (ma). Answers and errors follow memcached 1.6.18's proto_text.c.
 */
#include "proto.h"

#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>

/* a meta command's flags, as parsed */
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
		case 'T': ok = m->has_T = pr_parse_i32(&a, &m->T); break;
		case 'N': ok = m->has_N = pr_parse_i32(&a, &m->N); break;
		case 'C': ok = m->has_C = pr_parse_u64(&a, &m->C); break;
		case 'D': ok = m->has_D = pr_parse_u64(&a, &m->D); break;
		case 'J': ok = m->has_J = pr_parse_u64(&a, &m->J); break;
		case 'F': ok = m->has_F = pr_parse_u32(&a, &m->F); break;
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
		return pr_answer(c, false, COMMIT_FAILED, used);
	}
	return (long)used;
}

/* do_mg -- mg <key> <flags>*: HD / VA <size> + data / EN. */
long meta_mg(struct vmc_conn *c, const struct req *rq)
{
	struct tok *t = rq->t;
	size_t nt = rq->nt, linelen = rq->linelen;
	struct meta m;
	const char *err = meta_key_args(t, nt, &m);
	if (err)
		return pr_answer(c, false, err, linelen);
	TSTAT_INC(c->w, cmd_meta);
	TSTAT_INC(c->w, cmd_get);
	struct vmc_clock now;
	vmc_clock_now(&now);
	uint64_t hv = vmc_hash(t[1].p, t[1].n);
	struct vmc_item *it;
	size_t mark = c->wlen;
	if (m.has_T) {
		pr_fas_begin(c);
		it = vmc_touch(t[1].p, t[1].n, hv, pr_abs_exptime(m.T, &now), &now);
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
		rc = pr_fas_end(c);
	else
		vmc_unlock();
	return meta_done(c, ok, rc, mark, linelen);
}

/* do_ms -- ms <key> <datalen> <flags>* + data block: HD NS EX NF. */
long meta_ms(struct vmc_conn *c, const struct req *rq)
{
	struct tok *t = rq->t;
	size_t nt = rq->nt, linelen = rq->linelen;
	struct meta m;
	int32_t vlen;
	if (nt < 2)
		return pr_answer(c, false, "ERROR", linelen);
	if (nt < 3 || t[1].n > VMC_KEY_MAX || !pr_parse_i32(&t[2], &vlen) ||
	    vlen < 0 || vlen > INT_MAX - 2)
		return pr_answer(c, false, BAD_FORMAT, linelen);
	size_t nbytes = (size_t)vlen + 2;
	const char *perr = meta_parse(t, 3, nt, &m);
	if (perr) {
		c->swallow = nbytes;
		return pr_answer(c, false, perr, linelen);
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
		return pr_answer(c, false,
			      "CLIENT_ERROR invalid mode for ms M token",
			      linelen);
	}
	if (m.has_C)
		cmd = VMC_CAS;
	if (vmc_item_size(t[1].n, nbytes) > vmc_item_max) {
		TSTAT_INC(c->w, store_too_large);
		c->swallow = nbytes;
		return pr_answer(c, false,
			      "SERVER_ERROR object too large for cache",
			      linelen);
	}
	if (c->rlen - c->rpos < linelen + nbytes) {
		c->need = linelen + nbytes;
		return 0;
	}
	const char *data = c->rbuf + c->rpos + linelen;
	if (data[nbytes - 2] != '\r' || data[nbytes - 1] != '\n')
		return pr_answer(c, false, "CLIENT_ERROR bad data chunk",
			      linelen + nbytes);
	struct vmc_clock now;
	vmc_clock_now(&now);
	TSTAT_INC(c->w, cmd_meta);
	TSTAT_INC(c->w, cmd_set);
	uint64_t hv = vmc_hash(t[1].p, t[1].n);
	size_t mark = c->wlen;
	pr_fas_begin(c);
	enum vmc_store_res r = vmc_store(cmd, t[1].p, t[1].n, hv, m.F,
					 pr_abs_exptime(m.T, &now), data, nbytes,
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
	int rc = pr_fas_end(c);
	return meta_done(c, ok, rc, mark, linelen + nbytes);
}

/* do_md -- md <key> <flags>*: HD NF EX. */
long meta_md(struct vmc_conn *c, const struct req *rq)
{
	struct tok *t = rq->t;
	size_t nt = rq->nt, linelen = rq->linelen;
	struct meta m;
	const char *err = meta_key_args(t, nt, &m);
	if (err)
		return pr_answer(c, false, err, linelen);
	struct vmc_clock now;
	vmc_clock_now(&now);
	TSTAT_INC(c->w, cmd_meta);
	uint64_t hv = vmc_hash(t[1].p, t[1].n);
	size_t mark = c->wlen;
	pr_fas_begin(c);
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
	int rc = pr_fas_end(c);
	return meta_done(c, ok, rc, mark, linelen);
}

/* do_ma -- ma <key> <flags>*: arithmetic, with autovivify (N, J). */
long meta_ma(struct vmc_conn *c, const struct req *rq)
{
	struct tok *t = rq->t;
	size_t nt = rq->nt, linelen = rq->linelen;
	struct meta m;
	const char *err = meta_key_args(t, nt, &m);
	if (err)
		return pr_answer(c, false, err, linelen);
	bool incr;
	switch (m.mode) {
	case 0: case 'I': case 'i': case '+': incr = true; break;
	case 'D': case 'd': case '-': incr = false; break;
	default:
		return pr_answer(c, false,
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
	pr_fas_begin(c);
	enum vmc_delta_res r = vmc_delta(t[1].p, t[1].n, hv, incr, delta, val,
					 sizeof val, &now);
	if (r == VMC_DELTA_NOT_FOUND && m.has_N) {
		/* autovivify with the initial value J (default 0) */
		char init[24];
		int n = snprintf(init, sizeof init, "%" PRIu64 "\r\n", m.J);
		if (vmc_store(VMC_ADD, t[1].p, t[1].n, hv, 0, pr_abs_exptime(m.N, &now),
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
			it = vmc_touch(t[1].p, t[1].n, hv, pr_abs_exptime(m.T, &now), &now);
		}
		if (m.v) {
			char b[48];
			int n = snprintf(b, sizeof b, "VA %zu", strlen(val));
			ok = out_append(c, b, (size_t)n) &&
			     meta_ret(c, &m, &t[1], it, &now, "kOct") &&
			     out_append(c, "\r\n", 2) && pr_out_str(c, val);
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
		ok = pr_out_str(c, "CLIENT_ERROR cannot increment or decrement non-numeric value");
	} else {
		ok = pr_out_str(c, "SERVER_ERROR out of memory");
	}
	int rc = pr_fas_end(c);
	return meta_done(c, ok, rc, mark, linelen);
}

long meta_mn(struct vmc_conn *c, const struct req *rq)
{
	TSTAT_INC(c->w, cmd_meta);
	return pr_answer(c, false, "MN", rq->linelen);
}
