/* SPDX-License-Identifier: MIT */
/*
 * proto_meta.c -- memcached 1.6.18's meta commands: mn, me, mg, ms, md, ma
 * with their flags, answers and errors as in its proto_text.c:
 *
 *   mg  b c f h k l O q s t u v  N R T       (vivify, recache, touch)
 *   ms  b c F I k O q T C  M<E A P R S>      (I + C: a stale set)
 *   md  b C I k O q T                        (I: invalidate, keep it stale)
 *   ma  b c k N J D T t O q v C  M<I + D ->
 *
 * The lease flags work as memcached's: a client that finds a stale item
 * or triggers N (a miss) or R (a TTL below the threshold) is sent W (won:
 * it should recache); others then see Z (a win was sent); a stale item is
 * marked X. Stale and win-sent are persistent item state (cache.h), so
 * a restart keeps an invalidated item stale. What a read does not write:
 * `h` (fetched before) lives in volatile memory beside the CLOCK mark, and
 * `l` (seconds since last access) counts from the last store -- vmcached's
 * reads write nothing to the heap, so a fetch does not move it.
 */
#include "proto.h"

#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>

#define MFLAG_MAX_TOKENS 19   /* memcached's MFLAG_MAX_OPT_LENGTH, less one */
#define MFLAG_MAX_OPAQUE 32   /* memcached's MFLAG_MAX_OPAQUE_LENGTH */
#define TOO_MANY_FLAGS "CLIENT_ERROR options flags too long"

/* a meta command's flags, as parsed */
struct meta {
	bool v, q, b, u, stale, has_T, has_N, has_R, has_C;
	int64_t T, N, R;           /* absolute exptimes */
	uint64_t C, D, J;
	uint32_t F;
	char mode;
	const struct tok *flags;   /* the flag tokens, in request order */
	size_t nflags;
	char key[VMC_KEY_MAX];     /* the key, decoded if b */
	size_t nkey;
};

/* b64_val -- a base64 digit's value, -1 if none (RFC 4648 alphabet). */
static int b64_val(unsigned char ch)
{
	if (ch >= 'A' && ch <= 'Z')
		return ch - 'A';
	if (ch >= 'a' && ch <= 'z')
		return ch - 'a' + 26;
	if (ch >= '0' && ch <= '9')
		return ch - '0' + 52;
	return ch == '+' ? 62 : ch == '/' ? 63 : -1;
}

/* b64_decode -- padded base64 to bytes; 0 if s is not base64. */
static size_t b64_decode(const char *s, size_t n, char *out)
{
	size_t o = 0;
	if (n == 0 || n % 4 != 0)
		return 0;
	for (size_t i = 0; i < n; i += 4) {
		int v[4], pad = 0;
		for (int j = 0; j < 4; j++) {
			unsigned char ch = (unsigned char)s[i + j];
			if (ch == '=' && i + 4 == n && j >= 2) {
				v[j] = 0;
				pad++;
				continue;
			}
			if (pad || (v[j] = b64_val(ch)) < 0)
				return 0;
		}
		uint32_t w = (uint32_t)(v[0] << 18 | v[1] << 12 | v[2] << 6 | v[3]);
		out[o++] = (char)(w >> 16);
		if (pad < 2)
			out[o++] = (char)(w >> 8);
		if (pad < 1)
			out[o++] = (char)w;
	}
	return o;
}

/* out_b64 -- key bytes as padded base64. */
static bool out_b64(struct vmc_conn *c, const char *key, size_t n)
{
	static const char dig[] =
		"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
	char b[(VMC_KEY_MAX + 2) / 3 * 4];
	size_t o = 0;
	for (size_t i = 0; i < n; i += 3) {
		uint32_t w = (uint32_t)(unsigned char)key[i] << 16;
		if (i + 1 < n)
			w |= (uint32_t)(unsigned char)key[i + 1] << 8;
		if (i + 2 < n)
			w |= (unsigned char)key[i + 2];
		b[o++] = dig[w >> 18 & 63];
		b[o++] = dig[w >> 12 & 63];
		b[o++] = i + 1 < n ? dig[w >> 6 & 63] : '=';
		b[o++] = i + 2 < n ? dig[w & 63] : '=';
	}
	return out_append(c, b, o);
}

/* out_key -- the k return flag: " k<key>", or " k<base64> b" for a
 * binary key, as memcached's META_KEY. */
static bool out_key(struct vmc_conn *c, const char *key, size_t n, bool bin)
{
	if (!out_append(c, " k", 2))
		return false;
	if (!bin)
		return out_append(c, key, n);
	return out_b64(c, key, n) && out_append(c, " b", 2);
}

/* num_flag -- the number after a flag letter, memcached's safe_strto*. */
static bool num_i32(const struct tok *f, int32_t *v)
{
	struct tok a = { f->p + 1, f->n - 1 };
	return pr_parse_i32(&a, v);
}

static bool num_u64(const struct tok *f, uint64_t *v)
{
	struct tok a = { f->p + 1, f->n - 1 };
	return pr_parse_u64(&a, v);
}

/* meta_parse -- read the flags from token `from` on, like memcached's
 * _meta_flag_preparse: NULL, or the error to answer. A duplicate or
 * unknown flag stops at once; a bad number is reported after the rest. */
static const char *meta_parse(const struct req *rq, size_t from,
			      struct meta *m)
{
	static const char bad_token[] =
		"CLIENT_ERROR bad token in command line format";
	const char *err = NULL;
	bool seen[127] = { false };
	struct vmc_clock now;
	vmc_clock_now(&now);
	memset(m, 0, sizeof *m);
	m->D = 1;
	m->flags = &rq->t[from];
	m->nflags = rq->nt > from ? rq->nt - from : 0;
	memcpy(m->key, rq->t[1].p, rq->t[1].n);
	m->nkey = rq->t[1].n;
	for (size_t i = from; i < rq->nt; i++) {
		const struct tok *f = &rq->t[i];
		unsigned char ch = (unsigned char)f->p[0];
		int32_t n;
		if (ch >= 127 || seen[ch])
			return "CLIENT_ERROR duplicate flag";
		seen[ch] = true;
		switch (ch) {
		case 'b':
			m->b = true;
			m->nkey = b64_decode(rq->t[1].p, rq->t[1].n, m->key);
			if (m->nkey == 0)
				err = "CLIENT_ERROR error decoding key";
			break;
		case 'N': case 'T': case 'R':
			if (!num_i32(f, &n)) {
				err = bad_token;
				break;
			}
			if (ch == 'N') {
				m->has_N = true;
				m->N = pr_abs_exptime(n, &now);
			} else if (ch == 'T') {
				m->has_T = true;
				m->T = pr_abs_exptime(n, &now);
			} else {
				m->has_R = true;
				m->R = pr_abs_exptime(n, &now);
			}
			break;
		case 'v': m->v = true; break;
		case 'q': m->q = true; break;
		case 'u': m->u = true; break;
		case 'I': m->stale = true; break;
		case 'l': case 'h': case 'O': case 'P': case 'L': case 'k':
		case 's': case 't': case 'c': case 'f':
			break;
		case 'F': {
			struct tok a = { f->p + 1, f->n - 1 };
			if (!pr_parse_u32(&a, &m->F))
				err = err ? err : BAD_FORMAT;
			break;
		}
		case 'C':
			if (!num_u64(f, &m->C))
				err = bad_token;
			else
				m->has_C = true;
			break;
		case 'M':
			if (f->n != 2)
				err = "CLIENT_ERROR incorrect length for M token";
			else
				m->mode = f->p[1];
			break;
		case 'J':
			if (!num_u64(f, &m->J))
				err = "CLIENT_ERROR invalid numeric initial value";
			break;
		case 'D':
			if (!num_u64(f, &m->D))
				err = "CLIENT_ERROR invalid numeric delta value";
			break;
		default:
			return "CLIENT_ERROR invalid flag";
		}
	}
	return err;
}

/* opaque_ok -- memcached refuses an O token longer than 32 bytes. */
static bool opaque_ok(const struct meta *m)
{
	for (size_t i = 0; i < m->nflags; i++)
		if (m->flags[i].p[0] == 'O' && m->flags[i].n > MFLAG_MAX_OPAQUE)
			return false;
	return true;
}

/* out_ok_flags -- the O (opaque) and k (key) flags of a reply, in order. */
static bool out_ok_flags(struct vmc_conn *c, const struct meta *m, bool bin)
{
	for (size_t i = 0; i < m->nflags; i++) {
		const struct tok *f = &m->flags[i];
		bool ok = true;
		if (f->p[0] == 'O')
			ok = out_append(c, " ", 1) && out_append(c, f->p, f->n);
		else if (f->p[0] == 'k')
			ok = out_key(c, m->key, m->nkey, bin);
		if (!ok)
			return false;
	}
	return true;
}

/* out_num -- " <ch><v>". */
static bool out_num(struct vmc_conn *c, char ch, long long v)
{
	char b[32];
	int n = snprintf(b, sizeof b, " %c%lld", ch, v);
	return out_append(c, b, (size_t)n);
}

static long long ttl_of(const struct vmc_item *it, const struct vmc_clock *now)
{
	return it->exptime == 0 ? -1 : (long long)(it->exptime - now->now_s);
}

/* meta_head -- check `<cmd> <key> <flags>*` and parse the flags: NULL, or
 * the error line to answer. */
static const char *meta_head(const struct req *rq, struct meta *m,
			     const char *too_many, const char *bad_flags)
{
	if (rq->nt < 2)
		return "ERROR";
	if (rq->t[1].n > VMC_KEY_MAX)
		return BAD_FORMAT;
	if (rq->nt > MFLAG_MAX_TOKENS)
		return too_many;
	const char *err = meta_parse(rq, 2, m);
	if (err)
		return bad_flags ? bad_flags : err;
	if (!opaque_ok(m))
		return "CLIENT_ERROR opaque token too long";
	return NULL;
}

/* meta_done -- what a meta command returns once its lock or FAS is over
 * (rc: pr_fas_end's, 0 without a FAS): on a failed commit, its answer
 * (all written since mark) becomes COMMIT_FAILED. */
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

/* mg_hit -- the reply to an mg that found (or made) item it; applies T,
 * N and R in flag order as memcached does, so `t` before `T` shows the
 * old TTL. Returns false if output could not be queued. */
static bool mg_hit(struct vmc_conn *c, const struct meta *m, uint64_t hv,
		   struct vmc_item *it, bool created, bool fas,
		   const struct vmc_clock *now)
{
	bool won = false, bin = it->iflags & VMC_IT_KEY_BINARY;
	char b[32];
	int n = m->v ? snprintf(b, sizeof b, "VA %" PRIu32, it->nbytes - 2)
		     : snprintf(b, sizeof b, "HD");
	bool ok = out_append(c, b, (size_t)n);
	for (size_t i = 0; ok && i < m->nflags; i++) {
		const struct tok *f = &m->flags[i];
		switch (f->p[0]) {
		case 'T':
			it = vmc_touch(m->key, m->nkey, hv, m->T, now);
			break;
		case 'N':
			if (created) {
				it = vmc_touch(m->key, m->nkey, hv, m->N, now);
				won = true;
			}
			break;
		case 'R':
			if (!(it->iflags & VMC_IT_TOKEN_SENT) && !created &&
			    it->exptime != 0 && it->exptime < m->R)
				won = true;
			break;
		case 's': ok = out_num(c, 's', it->nbytes - 2); break;
		case 't': ok = out_num(c, 't', ttl_of(it, now)); break;
		case 'c': ok = out_num(c, 'c', (long long)it->cas); break;
		case 'f': ok = out_num(c, 'f', it->flags); break;
		case 'l':
			ok = out_num(c, 'l', now->now_s -
				     (long long)(it->time_ms / 1000));
			break;
		case 'h': ok = out_num(c, 'h', vmc_fetched(it)); break;
		case 'O':
			ok = out_append(c, " ", 1) && out_append(c, f->p, f->n);
			break;
		case 'k':
			ok = out_key(c, it->data, it->nkey, bin);
			break;
		}
	}
	if (it->iflags & VMC_IT_TOKEN_SENT)
		ok = ok && out_append(c, " Z", 2);
	if (it->iflags & VMC_IT_STALE) {
		ok = ok && out_append(c, " X", 2);
		if (!(it->iflags & VMC_IT_TOKEN_SENT))
			won = true;
	}
	if (won) {
		ok = ok && out_append(c, " W", 2);
		if (fas)  /* mg_run makes sure a win runs in a FAS */
			vmc_set_iflags(it, VMC_IT_TOKEN_SENT);
	}
	ok = ok && out_append(c, "\r\n", 2) &&
	     (!m->v || out_append(c, vmc_item_value(it), it->nbytes));
	if (!m->u)
		vmc_referenced(it);
	return ok;
}

/* meta_mg -- mg <key> <flags>*: VA <size> + data / HD / EN. Runs without
 * a FAS unless it may write: T, N, R, or a stale item whose win token is
 * still to be sent (then it starts over inside a FAS). */
long meta_mg(struct vmc_conn *c, const struct req *rq)
{
	struct meta m;
	const char *err = meta_head(rq, &m,
				    "CLIENT_ERROR options flags are too long",
				    NULL);
	if (err)
		return pr_answer(c, false, err, rq->linelen);
	TSTAT_INC(c->w, cmd_meta);
	struct vmc_clock now;
	vmc_clock_now(&now);
	uint64_t hv = vmc_hash(m.key, m.nkey);
	bool fas = m.has_T || m.has_N || m.has_R;
	size_t mark = c->wlen;
	struct vmc_item *it;
	for (;;) {
		if (fas)
			pr_fas_begin(c);
		else
			vmc_lock();
		it = vmc_find(m.key, m.nkey, hv, &now, NULL);
		if (fas || !it || (it->iflags & (VMC_IT_STALE | VMC_IT_TOKEN_SENT))
				  != VMC_IT_STALE)
			break;
		vmc_unlock();  /* a win to record: again, in a FAS */
		fas = true;
	}
	bool created = false;
	if (!it && m.has_N) {
		/* autovivify: an empty item, its TTL set by N below */
		if (vmc_store(VMC_ADD, m.key, m.nkey, hv, 0, 0, "\r\n", 2, 0,
			      m.b ? VMC_OPT_BINKEY : 0, &now) == VMC_STORED)
			it = vmc_find(m.key, m.nkey, hv, &now, NULL);
		created = it != NULL;
	}
	bool ok = true;
	if (m.has_T)
		TSTAT_INC(c->w, cmd_touch);
	else
		TSTAT_INC(c->w, cmd_get);
	if (m.has_T)
		TSTAT_HIT(c->w, touch, it);
	else
		TSTAT_HIT(c->w, get, it);
	if (it) {
		ok = mg_hit(c, &m, hv, it, created, fas, &now);
	} else {
		if (!m.q)
			ok = out_append(c, "EN", 2) && out_ok_flags(c, &m, m.b) &&
			     out_append(c, "\r\n", 2);
	}
	int rc = 0;
	if (fas)
		rc = pr_fas_end(c);
	else
		vmc_unlock();
	return meta_done(c, ok, rc, mark, rq->linelen);
}

/* ms_code -- the two-letter answer of a store, or NULL for an error line. */
static const char *ms_code(enum vmc_store_res r, const char **errline)
{
	switch (r) {
	case VMC_STORED: return "HD";
	case VMC_NOT_STORED: return "NS";
	case VMC_EXISTS: return "EX";
	case VMC_NOT_FOUND: return "NF";
	case VMC_TOO_LARGE:
		*errline = "SERVER_ERROR object too large for cache";
		return NULL;
	case VMC_NO_MEMORY:
		break;
	}
	*errline = "SERVER_ERROR out of memory storing object";
	return NULL;
}

/* meta_ms -- ms <key> <datalen> <flags>* + data block: HD NS EX NF. */
long meta_ms(struct vmc_conn *c, const struct req *rq)
{
	struct tok *t = rq->t;
	size_t nt = rq->nt, linelen = rq->linelen;
	struct meta m;
	int32_t vlen;
	if (nt < 2)
		return pr_answer(c, false, "ERROR", linelen);
	if (t[1].n > VMC_KEY_MAX || nt == 2)
		return pr_answer(c, false, BAD_FORMAT, linelen);
	if (nt > MFLAG_MAX_TOKENS)
		return pr_answer(c, false, TOO_MANY_FLAGS, linelen);
	if (!pr_parse_i32(&t[2], &vlen) || vlen < 0 || vlen > INT_MAX - 2)
		return pr_answer(c, false, BAD_FORMAT, linelen);
	size_t nbytes = (size_t)vlen + 2;
	/* from here on an error swallows the data block */
	const char *err = meta_parse(rq, 3, &m);
	if (!err && !opaque_ok(&m))
		err = "CLIENT_ERROR opaque token too long";
	enum vmc_cmd cmd = VMC_SET;
	switch (m.mode) {
	case 0: case 'S': break;
	case 'E': cmd = VMC_ADD; break;
	case 'A': cmd = VMC_APPEND; break;
	case 'P': cmd = VMC_PREPEND; break;
	case 'R': cmd = VMC_REPLACE; break;
	default:
		if (!err)
			err = "CLIENT_ERROR invalid mode for ms M token";
	}
	if (err) {
		c->swallow = nbytes;
		return pr_answer(c, false, err, linelen);
	}
	if (m.has_C && (cmd == VMC_SET || cmd == VMC_REPLACE))
		cmd = VMC_CAS;
	uint64_t hv = vmc_hash(m.key, m.nkey);
	struct vmc_clock now;
	vmc_clock_now(&now);
	if (vmc_item_size(m.nkey, nbytes) > vmc_item_max)  /* any mode */
		return pr_too_large(c, m.key, m.nkey, hv, nbytes, true, false,
				    linelen);
	long ret;
	const char *data = pr_data(c, linelen, nbytes, false, &ret);
	if (!data)
		return ret;
	TSTAT_INC(c->w, cmd_meta);
	TSTAT_INC(c->w, cmd_set);
	unsigned opts = (m.b ? VMC_OPT_BINKEY : 0) |
			(m.stale && cmd == VMC_CAS ? VMC_OPT_STALE_CAS : 0);
	size_t mark = c->wlen;
	pr_fas_begin(c);
	enum vmc_store_res r = vmc_store(cmd, m.key, m.nkey, hv, m.F,
					 m.has_T ? m.T : 0, data, nbytes,
					 m.has_C ? m.C : 0, opts, &now);
	if (r == VMC_NO_MEMORY)
		TSTAT_INC(c->w, store_no_memory);
	const char *errline = NULL;
	const char *code = ms_code(r, &errline);
	bool ok = true;
	if (!code) {
		ok = pr_out_str(c, errline);
	} else if (!(m.q && r == VMC_STORED)) {
		struct vmc_item *it = r == VMC_STORED
			? vmc_find(m.key, m.nkey, hv, &now, NULL) : NULL;
		ok = out_append(c, code, 2);
		for (size_t i = 0; ok && i < m.nflags; i++) {
			const struct tok *f = &m.flags[i];
			if (f->p[0] == 'O')
				ok = out_append(c, " ", 1) &&
				     out_append(c, f->p, f->n);
			else if (f->p[0] == 'k')
				ok = out_key(c, m.key, m.nkey, m.b);
			else if (f->p[0] == 'c')  /* 0 when not stored */
				ok = out_num(c, 'c', it ? (long long)it->cas : 0);
		}
		ok = ok && out_append(c, "\r\n", 2);
	}
	int rc = pr_fas_end(c);
	return meta_done(c, ok, rc, mark, linelen + nbytes);
}

/* meta_md -- md <key> <flags>*: HD NF EX; with I the item stays, stale. */
long meta_md(struct vmc_conn *c, const struct req *rq)
{
	struct meta m;
	const char *err = meta_head(rq, &m, TOO_MANY_FLAGS,
				    "CLIENT_ERROR invalid or duplicate flag");
	if (err)
		return pr_answer(c, false, err, rq->linelen);
	struct vmc_clock now;
	vmc_clock_now(&now);
	TSTAT_INC(c->w, cmd_meta);
	uint64_t hv = vmc_hash(m.key, m.nkey);
	size_t mark = c->wlen;
	pr_fas_begin(c);
	const char *s = "NF";
	struct vmc_item *it = vmc_find(m.key, m.nkey, hv, &now, NULL);
	if (it && m.has_C && it->cas != m.C) {
		s = "EX";
	} else if (it && m.stale) {
		vmc_invalidate(m.key, m.nkey, hv, m.has_T, m.T, &now);
		s = "HD";
	} else if (it && vmc_delete(m.key, m.nkey, hv, &now)) {
		TSTAT_INC(c->w, delete_hits);
		s = "HD";
	}
	if (s[0] != 'H')
		TSTAT_INC(c->w, delete_misses);
	bool ok = true;
	if (!(m.q && s[0] == 'H'))
		ok = out_append(c, s, 2) && out_ok_flags(c, &m, m.b) &&
		     out_append(c, "\r\n", 2);
	int rc = pr_fas_end(c);
	return meta_done(c, ok, rc, mark, rq->linelen);
}

/* ma_hit -- the reply to an ma whose item it now holds val. */
static bool ma_hit(struct vmc_conn *c, const struct meta *m, uint64_t hv,
		   struct vmc_item *it, bool created, const char *val,
		   const struct vmc_clock *now)
{
	char b[32];
	int n = m->v ? snprintf(b, sizeof b, "VA %zu", strlen(val))
		     : snprintf(b, sizeof b, "HD");
	bool ok = out_append(c, b, (size_t)n);
	for (size_t i = 0; ok && it && i < m->nflags; i++) {
		const struct tok *f = &m->flags[i];
		switch (f->p[0]) {
		case 'c': ok = out_num(c, 'c', (long long)it->cas); break;
		case 't': ok = out_num(c, 't', ttl_of(it, now)); break;
		case 'T':
			it = vmc_touch(m->key, m->nkey, hv, m->T, now);
			break;
		case 'N':
			if (created)
				it = vmc_touch(m->key, m->nkey, hv, m->N, now);
			break;
		case 'O':
			ok = out_append(c, " ", 1) && out_append(c, f->p, f->n);
			break;
		case 'k':
			ok = out_key(c, m->key, m->nkey, m->b);
			break;
		}
	}
	if (m->v)
		ok = ok && out_append(c, "\r\n", 2) &&
		     out_append(c, val, strlen(val));
	return ok && out_append(c, "\r\n", 2);
}

/* meta_ma -- ma <key> <flags>*: arithmetic, with autovivify (N, J). */
long meta_ma(struct vmc_conn *c, const struct req *rq)
{
	struct meta m;
	const char *err = meta_head(rq, &m, TOO_MANY_FLAGS,
				    "CLIENT_ERROR invalid or duplicate flag");
	if (err)
		return pr_answer(c, false, err, rq->linelen);
	bool incr;
	switch (m.mode) {
	case 0: case 'I': case '+': incr = true; break;
	case 'D': case '-': incr = false; break;
	default:
		return pr_answer(c, false,
				 "CLIENT_ERROR invalid mode for ma M token",
				 rq->linelen);
	}
	struct vmc_clock now;
	vmc_clock_now(&now);
	TSTAT_INC(c->w, cmd_meta);
	uint64_t hv = vmc_hash(m.key, m.nkey);
	char val[32];
	size_t mark = c->wlen;
	pr_fas_begin(c);
	enum vmc_delta_res r = vmc_delta(m.key, m.nkey, hv, incr, m.D,
					 m.has_C ? m.C : 0, val, sizeof val,
					 &now);
	bool created = false, ok = true;
	struct vmc_item *it = NULL;
	const char *code = NULL;
	switch (r) {
	case VMC_DELTA_OK:
		pr_delta_stat(c, incr, true);
		it = vmc_find(m.key, m.nkey, hv, &now, NULL);
		if (m.q)  /* memcached: q silences a plain success */
			goto out;
		break;
	case VMC_DELTA_NOT_FOUND:
		pr_delta_stat(c, incr, false);
		code = "NF";
		if (m.has_N) {
			/* autovivify with the initial value J (default 0) */
			char init[24];
			int n = snprintf(init, sizeof init, "%" PRIu64 "\r\n", m.J);
			code = "NS";
			if (vmc_store(VMC_ADD, m.key, m.nkey, hv, 0, 0, init,
				      (size_t)n, 0, m.b ? VMC_OPT_BINKEY : 0,
				      &now) == VMC_STORED) {
				snprintf(val, sizeof val, "%" PRIu64, m.J);
				it = vmc_find(m.key, m.nkey, hv, &now, NULL);
				created = it != NULL;
			}
		}
		break;
	case VMC_DELTA_EXISTS:
		code = "EX";
		break;
	case VMC_DELTA_NON_NUMERIC:
		ok = pr_out_str(c, "CLIENT_ERROR cannot increment or decrement "
				"non-numeric value");
		goto out;
	case VMC_DELTA_NO_MEMORY:
		ok = pr_out_str(c, "SERVER_ERROR out of memory");
		goto out;
	}
	if (it)
		ok = ma_hit(c, &m, hv, it, created, val, &now);
	else
		ok = out_append(c, code, 2) && out_ok_flags(c, &m, m.b) &&
		     out_append(c, "\r\n", 2);
out:;
	int rc = pr_fas_end(c);
	return meta_done(c, ok, rc, mark, rq->linelen);
}

/* meta_me -- me <key> [b]: memcached's debug line about an item. exp is
 * memcached's (now - exptime, -1 = never), la counts from the last
 * store, cls is the one pseudo slab class, size the item's bytes. */
long meta_me(struct vmc_conn *c, const struct req *rq)
{
	TSTAT_INC(c->w, cmd_meta);
	if (rq->nt < 2 || rq->t[1].n > VMC_KEY_MAX)
		return pr_answer(c, false, BAD_FORMAT, rq->linelen);
	char key[VMC_KEY_MAX];
	size_t nkey = rq->t[1].n;
	memcpy(key, rq->t[1].p, nkey);
	if (rq->nt >= 3 && pr_tok_is(&rq->t[2], "b")) {
		nkey = b64_decode(rq->t[1].p, rq->t[1].n, key);
		if (nkey == 0)
			return pr_answer(c, false, BAD_FORMAT, rq->linelen);
	}
	struct vmc_clock now;
	vmc_clock_now(&now);
	vmc_lock();
	struct vmc_item *it = vmc_find(key, nkey, vmc_hash(key, nkey), &now, NULL);
	bool ok;
	if (it) {
		char b[160];
		int n = snprintf(b, sizeof b, " exp=%lld la=%lld cas=%" PRIu64
				 " fetch=%s cls=1 size=%zu\r\n",
				 it->exptime == 0 ? -1LL
				 : (long long)(now.now_s - it->exptime),
				 (long long)(now.now_s - (int64_t)(it->time_ms / 1000)),
				 it->cas, vmc_fetched(it) ? "yes" : "no",
				 vmc_item_size(it->nkey, it->nbytes));
		ok = out_append(c, "ME ", 3) &&
		     (it->iflags & VMC_IT_KEY_BINARY
		      ? out_b64(c, it->data, it->nkey)
		      : out_append(c, it->data, it->nkey)) &&
		     out_append(c, b, (size_t)n);
	} else {
		ok = pr_out_str(c, "EN");
	}
	vmc_unlock();
	return ok ? (long)rq->linelen : -1;
}

long meta_mn(struct vmc_conn *c, const struct req *rq)
{
	TSTAT_INC(c->w, cmd_meta);
	return pr_answer(c, false, "MN", rq->linelen);
}
