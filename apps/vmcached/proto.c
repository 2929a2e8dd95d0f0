/* SPDX-License-Identifier: MIT */
/*
 * proto.c -- request framing, the tokenizer and the one table of commands
 * of vmcached's memcached protocol; the handlers live in proto_text.c
 * (classic text commands), proto_meta.c (meta commands) and proto_admin.c
 * (stats and administration).
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
 */
#include "proto.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <volipmem.h>

#define LINE_MAX_PLAIN 2048         /* a longer line must be a multi-get */
#define LINE_MAX_GET (8u << 20)     /* longest multi-get line we buffer  */
#define OUT_BACKLOG (4u << 20)      /* stop parsing while this much output waits */

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

bool pr_out_str(struct vmc_conn *c, const char *s)
{
	return out_append(c, s, strlen(s)) && out_append(c, "\r\n", 2);
}

/* reply -- one status line, unless the request said noreply. */
bool pr_reply(struct vmc_conn *c, bool noreply, const char *s)
{
	return noreply ? true : pr_out_str(c, s);
}

/* answer -- reply s to a request that used `used` bytes of input, and
 * return what its handler returns: used, or -1 (close) if the reply
 * cannot be queued. */
long pr_answer(struct vmc_conn *c, bool noreply, const char *s,
		   size_t used)
{
	return pr_reply(c, noreply, s) ? (long)used : -1;
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

bool pr_tok_is(const struct tok *t, const char *s)
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
bool pr_parse_u64(const struct tok *t, uint64_t *out)
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

bool pr_parse_u32(const struct tok *t, uint32_t *out)
{
	uint64_t v;
	if (!pr_parse_u64(t, &v))
		return false;
	*out = (uint32_t)v;
	return true;
}

bool pr_parse_i32(const struct tok *t, int32_t *out)
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
int64_t pr_abs_exptime(int32_t e, const struct vmc_clock *now)
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
void pr_fas_begin(struct vmc_conn *c)
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
int pr_fas_end(struct vmc_conn *c)
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


/* fas_answer -- answer a request whose FAS ended with rc: a failed commit
 * is reported even under noreply. */
long pr_fas_answer(struct vmc_conn *c, int rc, bool noreply,
		       const char *s, size_t used)
{
	return rc ? pr_answer(c, false, COMMIT_FAILED, used)
		  : pr_answer(c, noreply, s, used);
}
const char *pr_data(struct vmc_conn *c, size_t linelen, size_t nbytes,
		    bool noreply, long *ret)
{
	if (c->rlen - c->rpos < linelen + nbytes) {
		c->need = linelen + nbytes;
		*ret = 0;
		return NULL;
	}
	const char *data = c->rbuf + c->rpos + linelen;
	if (data[nbytes - 2] != '\r' || data[nbytes - 1] != '\n') {
		*ret = pr_answer(c, noreply, "CLIENT_ERROR bad data chunk",
				 linelen + nbytes);
		return NULL;
	}
	return data;
}

long pr_too_large(struct vmc_conn *c, const char *key, size_t nkey,
		  uint64_t hv, size_t nbytes, bool drop, bool noreply,
		  size_t linelen)
{
	static const char msg[] = "SERVER_ERROR object too large for cache";
	TSTAT_INC(c->w, store_too_large);
	c->swallow = nbytes;
	if (!drop)
		return pr_answer(c, noreply, msg, linelen);
	struct vmc_clock now;
	vmc_clock_now(&now);
	pr_fas_begin(c);
	vmc_unlink_key(key, nkey, hv, &now);
	int rc = pr_fas_end(c);
	return pr_fas_answer(c, rc, noreply, msg, linelen);
}

void pr_delta_stat(struct vmc_conn *c, bool incr, bool hit)
{
	if (incr)
		TSTAT_HIT(c->w, incr, hit);
	else
		TSTAT_HIT(c->w, decr, hit);
}

/* The commands. `short_only`: like memcached, a line of more than NTOK
 * tokens is not that command (it falls through to ERROR); retrieval takes
 * any number of keys and the meta commands check their token count
 * themselves. */
static const struct proto_cmd {
	const char *name;
	pr_handler *fn;
	int arg;
	bool short_only;
} commands[] = {
	{ "get", text_get, 0, false },
	{ "bget", text_get, 0, false },
	{ "gets", text_get, GET_CAS, false },
	{ "gat", text_get, GET_TOUCH, false },
	{ "gats", text_get, GET_CAS | GET_TOUCH, false },
	{ "set", text_update, VMC_SET, true },
	{ "add", text_update, VMC_ADD, true },
	{ "replace", text_update, VMC_REPLACE, true },
	{ "append", text_update, VMC_APPEND, true },
	{ "prepend", text_update, VMC_PREPEND, true },
	{ "cas", text_update, VMC_CAS, true },
	{ "delete", text_delete, 0, true },
	{ "incr", text_delta, 1, true },
	{ "decr", text_delta, 0, true },
	{ "touch", text_touch, 0, true },
	{ "flush_all", text_flush, 0, true },
	{ "version", text_version, 0, false },
	{ "verbosity", text_verbosity, 0, false },
	{ "quit", text_quit, 0, false },
	{ "mn", meta_mn, 0, false },
	{ "me", meta_me, 0, false },
	{ "mg", meta_mg, 0, false },
	{ "ms", meta_ms, 0, false },
	{ "md", meta_md, 0, false },
	{ "ma", meta_ma, 0, false },
	{ "stats", admin_stats, 0, true },
	{ "slabs", admin_slabs, 0, true },
	{ "cache_memlimit", admin_memlimit, 0, true },
};

/* dispatch -- one request whose command line is line[0, len) (without
 * "\r\n") and takes linelen bytes of input with its end of line. */
static long dispatch(struct vmc_conn *c, const char *line, size_t len,
		     size_t linelen)
{
	struct tok t[NTOK];
	struct req r = { .line = line, .len = len, .linelen = linelen, .t = t };
	r.nt = tokenize(line, len, t, NTOK);
	if (r.nt == 0)
		return pr_answer(c, false, "ERROR", linelen);
	for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++) {
		const struct proto_cmd *pc = &commands[i];
		if (!pr_tok_is(&t[0], pc->name) || (pc->short_only && r.nt > NTOK))
			continue;
		r.arg = pc->arg;
		return pc->fn(c, &r);
	}
	/* like memcached, an HTTP request line closes the connection unanswered */
	const struct tok *last = &t[(r.nt < NTOK ? r.nt : NTOK) - 1];
	if (last->n >= 5 && memcmp(last->p, "HTTP/", 5) == 0) {
		c->closing = true;
		return (long)linelen;
	}
	return pr_answer(c, false, "ERROR", linelen);
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
	int served = 0;
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
		if (vmc_settings.reqs_per_event &&
		    served == vmc_settings.reqs_per_event) {
			/* -R: let the worker's other connections go first;
			 * net.c comes back to this one in its next batch */
			TSTAT_INC(c->w, conn_yields);
			return 1;
		}
		long used = dispatch(c, start, len, linelen);
		if (used < 0)
			return -1;
		if (used == 0)
			break;
		c->rpos += (size_t)used;
		served++;
	}
	return 0;
}
