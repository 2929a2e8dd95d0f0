/* SPDX-License-Identifier: MIT */
/*
 * pool_file.c -- read-only access to a pool file for the CLI. The pool is
 * opened and validated by the functions pmap() uses (pool/pool.h); a
 * committed log group is replayed into a private copy-on-write mapping, so
 * `info` and `check` see the state pmap() would recover, and the file is
 * never written.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "util/util.h"

int cli_parse_size(const char *s, uint64_t *out)
{
	char *end;
	errno = 0;
	unsigned long long v = strtoull(s, &end, 0);
	if (errno || end == s)
		return -1;
	switch (*end) {
	case 'k': case 'K': v <<= 10; end++; break;
	case 'm': case 'M': v <<= 20; end++; break;
	case 'g': case 'G': v <<= 30; end++; break;
	case 't': case 'T': v <<= 40; end++; break;
	}
	if (*end == 'i' || *end == 'B')
		end++;
	if (*end == 'B')
		end++;
	if (*end)
		return -1;
	*out = v;
	return 0;
}

int cli_open(struct cli_pool *p, const char *path)
{
	memset(p, 0, sizeof *p);
	int rc = vp__pool_open(&p->pool, path, VP_POOL_PRIVATE);
	if (rc) {
		fprintf(stderr, "volipmem: %s\n", vp_errormsg());
		return rc;
	}
	if ((p->log_rc = vp__log_check(&p->pool, &p->rec))) {
		fprintf(stderr, "volipmem: %s: redo log: %s\n", path, vp_errormsg());
		return p->log_rc;
	}
	p->replayed = p->rec.state == VP_LOG_COMMITTED;
	if ((rc = vp__log_replay(&p->pool, &p->rec))) {
		fprintf(stderr, "volipmem: %s: replaying the redo log: %s\n", path, vp_errormsg());
		return rc;
	}
	return 0;
}

uint8_t *cli_heap(struct cli_pool *p) { return p->pool.map + p->pool.sb.home_off; }

void cli_close(struct cli_pool *p) { vp__pool_close(&p->pool); }
