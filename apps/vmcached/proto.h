/* SPDX-License-Identifier: MIT */
/*
 * proto.h -- what the protocol files share: the tokenized request, the
 * command table's handler type, replies, number parsers with memcached's
 * semantics and the FAS bracket around a change to the cache.
 *
 *   proto.c        tokenizer, the one command table, request framing
 *   proto_text.c   the classic text commands (storage, get, delete, ...)
 *   proto_meta.c   the meta commands (mn mg ms md ma)
 *   proto_admin.c  stats and the administrative commands
 *
 * Every handler gets a request whose command line and, for storage
 * commands, data block may still be partly missing; it returns the bytes
 * of input it used, 0 if it needs more input first (then c->need says how
 * much), or -1 to close the connection at once.
 */
#ifndef VMC_PROTO_H
#define VMC_PROTO_H

#include "vmcached.h"
#include "cache.h"

#define NTOK 24                     /* memcached's MAX_TOKENS */
#define REALTIME_MAXDELTA (60 * 60 * 24 * 30)
#define COMMIT_FAILED "SERVER_ERROR commit failed"
#define BAD_FORMAT "CLIENT_ERROR bad command line format"

struct tok {
	const char *p;
	size_t n;
};

/* One request: its command line line[0, len) without "\r\n", which takes
 * linelen bytes of input with its end of line, split into nt tokens of
 * which the first min(nt, NTOK) are in t; arg is the table entry's. */
struct req {
	const char *line;
	size_t len, linelen;
	struct tok *t;
	size_t nt;
	int arg;
};

/* text_get's arg */
#define GET_CAS 1    /* gets, gats: VALUE lines carry the CAS */
#define GET_TOUCH 2  /* gat, gats: an exptime first, set on every hit */

typedef long pr_handler(struct vmc_conn *c, const struct req *r);

/* the handlers of the command table (proto.c) */
pr_handler text_get, text_update, text_delete, text_delta, text_touch,
	text_flush, text_version, text_verbosity, text_quit;
pr_handler meta_mn, meta_me, meta_mg, meta_ms, meta_md, meta_ma;
pr_handler admin_stats, admin_slabs, admin_memlimit;

bool pr_out_str(struct vmc_conn *c, const char *s);
bool pr_reply(struct vmc_conn *c, bool noreply, const char *s);
long pr_answer(struct vmc_conn *c, bool noreply, const char *s, size_t used);
bool pr_tok_is(const struct tok *t, const char *s);
bool pr_parse_u64(const struct tok *t, uint64_t *out);
bool pr_parse_u32(const struct tok *t, uint32_t *out);
bool pr_parse_i32(const struct tok *t, int32_t *out);
int64_t pr_abs_exptime(int32_t e, const struct vmc_clock *now);
void pr_fas_begin(struct vmc_conn *c);
int pr_fas_end(struct vmc_conn *c);
/* pr_data -- the data block of nbytes (value + "\r\n") after a storage
 * command line: the block, or NULL with *ret what the handler returns (0:
 * not all here yet, c->need set; else "bad data chunk" answered). */
const char *pr_data(struct vmc_conn *c, size_t linelen, size_t nbytes,
		    bool noreply, long *ret);
/* pr_too_large -- answer a value over -I: its data block is swallowed
 * and, if drop, the key's old value unlinked (memcached leaves no stale
 * value behind a failed store). */
long pr_too_large(struct vmc_conn *c, const char *key, size_t nkey,
		  uint64_t hv, size_t nbytes, bool drop, bool noreply,
		  size_t linelen);
/* pr_delta_stat -- count an incr/decr (text or meta) hit or miss. */
void pr_delta_stat(struct vmc_conn *c, bool incr, bool hit);
long pr_fas_answer(struct vmc_conn *c, int rc, bool noreply, const char *s,
		   size_t used);

#endif
