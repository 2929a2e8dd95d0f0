/* SPDX-License-Identifier: MIT */
/*
 * recover.c -- the redo log's on-media rules: the commit records (which
 * copy wins, how one is written), verification of a committed group, and
 * replay into the home image at open; a group that never reached its
 * commit point is ignored.
 *
 * The commit point of group seq is the drain that makes its slots,
 * descriptors and record copy A (state COMMITTED) durable together
 * (format version 4 on; commit/log.c, D1). Until that drain completes, A may
 * be durable over a torn group: recovery tells by the checksums and, while
 * copy B still names seq - 1, discards the group, which was never
 * acknowledged (vp__log_check, "The torn group"). Copy B names seq only
 * after D1, so a group both copies name is complete, and one that fails
 * then is damage. A torn record (bad checksum) loses to the other copy.
 * The group's slots start at the record's base (groups are appended); only
 * the group the records name is replayed, since each group's home image is
 * durable before the next group's record is written (commit/log.c).
 * Replay copies slots to home and then marks the record APPLIED: a crash during replay leaves the
 * record COMMITTED and the next pmap() replays again (idempotent).
 * Everything is validated before the first byte is written.
 */
#include <stdio.h>
#include <string.h>

#include "pool/pool.h"
#include "util/util.h"

/* rec_sealed -- copy r is whole: magic, checksum and this pool's uuid. A
 * copy torn by a crash fails here and is ignored. */
static bool rec_sealed(const struct vp_superblock *sb, const struct vp_logrec *r)
{
	return r->magic == VP_LOGREC_MAGIC && r->checksum == vp__csum(r, offsetof(struct vp_logrec, checksum)) &&
	       memcmp(r->uuid, sb->uuid, sizeof r->uuid) == 0;
}

/* rec_fields -- the fields of a sealed copy (name "A" or "B") are
 * possible: a known state, and the group's slots base .. base + npages - 1
 * inside the log (base 0 before version 3, where it was reserved). A
 * sealed copy that fails is damage, not a torn write. */
static int rec_fields(const struct vp_superblock *sb, const struct vp_logrec *r, const char *name)
{
	unsigned off = VP_LOGREC_OFF + (*name == 'B' ? VP_LOGREC_B : 0);
	if (r->state != VP_LOG_COMMITTED && r->state != VP_LOG_APPLIED)
		return vp__err(VP_E_LOGCORRUPT, "commit record copy %s (file offset %u): unknown state %u", name, off,
			       r->state);
	if (r->base && sb->version < VP_FORMAT_V3)
		return vp__err(VP_E_LOGCORRUPT,
			       "commit record copy %s (file offset %u): field base is %u in a format version %u pool "
			       "(reserved, must be 0)",
			       name, off, r->base, sb->version);
	if (r->npages > sb->log_capacity || r->base > sb->log_capacity - r->npages)
		return vp__err(VP_E_LOGCORRUPT,
			       "commit record copy %s (file offset %u): field base %u + npages %llu names slots beyond "
			       "the log (%llu slots)",
			       name, off, r->base, (unsigned long long)r->npages, (unsigned long long)sb->log_capacity);
	return 0;
}

int vp__log_state(const struct vp_superblock *sb, const uint8_t *pool, struct vp_logrec *rec)
{
	struct vp_logrec a, b;
	memcpy(&a, pool + VP_LOGREC_OFF, sizeof a);
	memcpy(&b, pool + VP_LOGREC_OFF + VP_LOGREC_B, sizeof b);
	bool va = rec_sealed(sb, &a), vb = rec_sealed(sb, &b);
	int rc;
	if ((va && (rc = rec_fields(sb, &a, "A"))) || (vb && (rc = rec_fields(sb, &b, "B"))))
		return rc;
	if (!va && !vb)
		return vp__err(VP_E_LOGCORRUPT,
			       "both commit records (file offsets %u and %u) are invalid: the log state is unknown",
			       VP_LOGREC_OFF, VP_LOGREC_OFF + VP_LOGREC_B);
	if (va && vb) {
		if (a.seq != b.seq)
			*rec = a.seq > b.seq ? a : b;
		else
			*rec = a.state == VP_LOG_APPLIED ? a : b;
	} else {
		*rec = va ? a : b;
	}
	return 0;
}

/* group_desc, group_slot -- a committed group's descriptors, and the data
 * of its i-th slot: both start at the record's base. pre: rec_fields. */
static const struct vp_logdesc *group_desc(const struct vp_superblock *sb, const uint8_t *pool,
					   const struct vp_logrec *rec)
{
	return (const struct vp_logdesc *)(pool + sb->logdesc_off) + rec->base;
}

static const uint8_t *group_slot(const struct vp_superblock *sb, const uint8_t *pool, const struct vp_logrec *rec,
				 uint64_t i)
{
	return pool + sb->logdata_off + (rec->base + i) * VP_PAGE;
}

/* bad_slot -- the error for slot i of a committed group. */
#define bad_slot(rec, i, fmt, ...)                                                                                     \
	vp__err(VP_E_LOGCORRUPT, "committed group %llu: slot %llu " fmt, (unsigned long long)(rec)->seq,               \
		(unsigned long long)((rec)->base + (i)), __VA_ARGS__)

/* check_linehdr -- a LINES slot's header: magic, its own checksum, the page
 * of its descriptor, reserved zero, 1..VP_LINES_SLOT_MAX lines. */
static int check_linehdr(const struct vp_linehdr *h, uint64_t pgno)
{
	if (h->magic != VP_LINEHDR_MAGIC || h->checksum != vp__csum(h, offsetof(struct vp_linehdr, checksum)))
		return 1;
	if (h->pgno != pgno || h->reserved[0] || h->reserved[1] || h->reserved[2] || h->reserved[3])
		return 1;
	unsigned k = (unsigned)__builtin_popcountll(h->mask);
	return k < 1 || k > VP_LINES_SLOT_MAX;
}

uint64_t vp__slot_bytes(const struct vp_logdesc *d, const uint8_t *slot)
{
	switch (VP_DESC_KIND(d->pgno)) {
	case VP_DESC_PAGE:
		return VP_PAGE;
	case VP_DESC_LINES:
		return VP_LINE * (1 + (uint64_t)__builtin_popcountll(((const struct vp_linehdr *)slot)->mask));
	default:
		return 0;
	}
}

int vp__log_verify(const struct vp_superblock *sb, const uint8_t *pool, const struct vp_logrec *rec)
{
	const struct vp_logdesc *d = group_desc(sb, pool, rec);
	uint64_t pages = sb->heap_size / VP_PAGE;
	if (vp__csum(d, rec->npages * sizeof *d) != rec->desc_csum)
		return vp__err(VP_E_LOGCORRUPT,
			       "committed group %llu: descriptor table checksum mismatch (%llu descriptors at offset %llu)",
			       (unsigned long long)rec->seq, (unsigned long long)rec->npages,
			       (unsigned long long)((const uint8_t *)d - pool));
	for (uint64_t i = 0; i < rec->npages; i++) {
		uint64_t kind = VP_DESC_KIND(d[i].pgno), pg = VP_DESC_PGNO(d[i].pgno);
		const uint8_t *slot = group_slot(sb, pool, rec, i);
		uint64_t off = (uint64_t)(slot - pool);
		/* Version 1 knows only whole pages: its page index is the whole
		 * field, so any kind bit is a page beyond the heap. */
		if (kind != VP_DESC_PAGE && sb->version == VP_FORMAT_V1)
			pg = d[i].pgno;
		if (kind == VP_DESC_NONE) {
			if (pg || d[i].csum)
				return bad_slot(rec, i, "is unused but its descriptor names page %llu, checksum %016llx",
						(unsigned long long)pg, (unsigned long long)d[i].csum);
			continue;
		}
		if (kind > VP_DESC_NONE)
			return bad_slot(rec, i, "has unknown kind %llu", (unsigned long long)kind);
		if (pg >= pages)
			return bad_slot(rec, i, "names page %llu beyond the heap (%llu pages)", (unsigned long long)pg,
					(unsigned long long)pages);
		if (kind == VP_DESC_LINES && check_linehdr((const void *)slot, pg))
			return bad_slot(rec, i, "(heap page %llu, file offset %llu): bad line header", (unsigned long long)pg,
					(unsigned long long)off);
		if (d[i].csum && vp__csum(slot, vp__slot_bytes(&d[i], slot)) != d[i].csum)
			return bad_slot(rec, i, "(heap page %llu, file offset %llu) fails its checksum",
					(unsigned long long)pg, (unsigned long long)off);
	}
	return 0;
}

/*
 * The torn group (format version 4 on). Record A is stored with the slots
 * and descriptors it names and drained with them (commit/log.c, D1), so a
 * crash before that drain completes may leave A = COMMITTED(seq) durable
 * over torn slots or descriptors. Record B names seq only after D1, and
 * pend() returns only after B: so while the other copy still names seq - 1
 * (COMMITTED or APPLIED), group seq was never acknowledged, and a group
 * that fails its checksums is that torn group. It is discarded and the
 * other copy wins (seq - 1's slots come before seq's, or the log was
 * retired before seq went to slot 0: they are intact). When both copies
 * name the group, it was acknowledged: a failure is damage and refused.
 * The descriptor table checksum is in the record and every descriptor
 * checksums its slot's bytes in use (XXH3-64), so a torn group passes
 * only by a checksum collision (2^-64 per checksum for a given tear); with
 * VOLIPMEM_CHECKSUM_PAGES=off the slots are drained before A is stored,
 * so a group of unchecked slots is never torn under A.
 */
int vp__log_check(const struct vp_pool *p, struct vp_logrec *rec)
{
	int rc = vp__log_state(&p->sb, p->map, rec);
	if (rc || rec->state == VP_LOG_APPLIED)
		return rc;
	if (!(rc = vp__log_verify(&p->sb, p->map, rec)))
		return 0;
	char why[256];
	snprintf(why, sizeof why, "%s", vp_errormsg());
	struct vp_logrec a, b;
	memcpy(&a, p->map + VP_LOGREC_OFF, sizeof a);
	memcpy(&b, p->map + VP_LOGREC_OFF + VP_LOGREC_B, sizeof b);
	bool va = rec_sealed(&p->sb, &a), vb = rec_sealed(&p->sb, &b);
	if (va && vb && a.seq == rec->seq && b.seq == rec->seq)
		return vp__err(rc, "%s; both commit record copies name group %llu, so it was acknowledged: the log is "
				   "damaged",
			       why, (unsigned long long)rec->seq);
	/* The copy that did not win: the one naming another group. */
	const struct vp_logrec *o = va && a.seq != rec->seq ? &a : vb && b.seq != rec->seq ? &b : NULL;
	if (p->sb.version < VP_FORMAT_V4)
		return vp__err(rc, "%s; format version %u makes a group's slots durable before its commit record, so "
				   "this is damage",
			       why, p->sb.version);
	if (!o || o->seq + 1 != rec->seq)
		return vp__err(rc, "%s; the other commit record copy %s, so this is damage, not a group torn by a crash",
			       why, !o ? "is invalid" : "does not name the group before it");
	vp__diag(1, "pool %s: committed group %llu was torn by a crash before its commit completed (%s); it was "
		    "never acknowledged: discarded, the log's group %llu (%s) stands",
		 p->path, (unsigned long long)rec->seq, why, (unsigned long long)o->seq,
		 o->state == VP_LOG_APPLIED ? "applied" : "committed");
	*rec = *o;
	if (rec->state == VP_LOG_APPLIED)
		return 0;
	return vp__log_verify(&p->sb, p->map, rec);
}

void vp__slot_apply(struct vp_persist *ps, uint8_t *home, const struct vp_logdesc *d, const uint8_t *slot)
{
	uint64_t kind = VP_DESC_KIND(d->pgno);
	uint8_t *page = home + VP_DESC_PGNO(d->pgno) * VP_PAGE;
	if (kind == VP_DESC_PAGE) {
		vp__pcopy(ps, page, slot, VP_PAGE);
	} else if (kind == VP_DESC_LINES) {
		const uint8_t *src = slot + VP_LINE;
		for (uint64_t m = ((const struct vp_linehdr *)slot)->mask; m; m &= m - 1, src += VP_LINE)
			vp__pcopy(ps, page + (unsigned)__builtin_ctzll(m) * VP_LINE, src, VP_LINE);
	}
}

void vp__log_page(const struct vp_pool *p, const struct vp_logrec *rec, uint64_t pgno, uint8_t *out)
{
	memcpy(out, p->map + p->sb.home_off + pgno * VP_PAGE, VP_PAGE);
	if (rec->state != VP_LOG_COMMITTED)
		return;
	const struct vp_logdesc *d = group_desc(&p->sb, p->map, rec);
	for (uint64_t i = 0; i < rec->npages; i++) {
		uint64_t kind = VP_DESC_KIND(d[i].pgno);
		const uint8_t *slot = group_slot(&p->sb, p->map, rec, i);
		if (kind > VP_DESC_LINES || VP_DESC_PGNO(d[i].pgno) != pgno)
			continue;
		if (kind == VP_DESC_PAGE) {
			memcpy(out, slot, VP_PAGE);
			continue;
		}
		const uint8_t *src = slot + VP_LINE;
		for (uint64_t m = ((const struct vp_linehdr *)slot)->mask; m; m &= m - 1, src += VP_LINE)
			memcpy(out + (unsigned)__builtin_ctzll(m) * VP_LINE, src, VP_LINE);
	}
}

void vp__logrec_build(const struct vp_pool *p, struct vp_logrec *r, uint32_t state, uint64_t seq, uint32_t base,
		      uint64_t npages, uint64_t desc_csum)
{
	memset(r, 0, sizeof *r);
	r->magic = VP_LOGREC_MAGIC;
	r->seq = seq;
	r->state = state;
	r->base = base;
	r->npages = npages;
	r->desc_csum = desc_csum;
	memcpy(r->uuid, p->sb.uuid, sizeof r->uuid);
	r->checksum = vp__csum(r, offsetof(struct vp_logrec, checksum));
}

int vp__logrec_put(struct vp_pool *p, uint32_t off, const struct vp_logrec *r, const char *point)
{
	uint8_t *dst = p->map + VP_LOGREC_OFF + off;
	vp__pstore(&p->ps, dst, r, sizeof *r);
	vp__pflush(&p->ps, dst, sizeof *r);
	return point ? vp__pdrain(&p->ps, point) : 0;
}

int vp__logrec_store(struct vp_pool *p, uint32_t off, uint32_t state, uint64_t seq, uint32_t base, uint64_t npages,
		     uint64_t desc_csum, const char *point)
{
	struct vp_logrec r;
	vp__logrec_build(p, &r, state, seq, base, npages, desc_csum);
	return vp__logrec_put(p, off, &r, point);
}

int vp__logrec_write(struct vp_pool *p, uint32_t state, uint64_t seq, uint32_t base, uint64_t npages,
		     uint64_t desc_csum)
{
	int rc = vp__logrec_store(p, 0, state, seq, base, npages, desc_csum,
				  state == VP_LOG_COMMITTED ? VP_CRASH_POINT("log:record-A-committed")
							    : VP_CRASH_POINT("log:record-A-applied"));
	if (rc)
		return rc;
	return vp__logrec_store(p, VP_LOGREC_B, state, seq, base, npages, desc_csum,
				state == VP_LOG_COMMITTED ? VP_CRASH_POINT("log:record-B-committed")
							  : VP_CRASH_POINT("log:record-B-applied"));
}

int vp__logrec_retire(struct vp_pool *p, uint64_t seq)
{
	return vp__logrec_write(p, VP_LOG_APPLIED, seq, 0, 0, 0);
}

/* retire -- mark the replayed group seq APPLIED in both record copies
 * without ever overwriting the only copy that names seq. When copy A names
 * seq and B does not, B goes first:
 *   - a crash during the commit may have torn B: writing A first would open
 *     a window where a torn A leaves no valid record at all;
 *   - B may still name group seq - 1 (the crash came before D2, which
 *     makes B durable with seq's home lines, completed): a torn A would
 *     then let B win, and replaying seq - 1 over a home image that already
 *     holds some of seq (whose slots come after seq - 1's) would undo
 *     seq's lines.
 * pre: vp__log_state accepted the records, so a sealed B is valid. */
static int retire(struct vp_pool *p, uint64_t seq)
{
	struct vp_logrec b;
	memcpy(&b, p->map + VP_LOGREC_OFF + VP_LOGREC_B, sizeof b);
	if (!rec_sealed(&p->sb, &b) || b.seq != seq) {
		int rc = vp__logrec_store(p, VP_LOGREC_B, VP_LOG_APPLIED, seq, 0, 0, 0,
					  VP_CRASH_POINT("recover:record-B-retired-first"));
		if (rc)
			return rc;
	}
	return vp__logrec_retire(p, seq);
}

/* drop_torn -- after vp__log_check discarded a torn group and chose the
 * APPLIED copy rec, store the copy that names the torn group as rec too,
 * so the records agree. A crash while it is stored tears that copy, and
 * the other one, rec, wins. */
static int drop_torn(struct vp_pool *p, const struct vp_logrec *rec)
{
	struct vp_logrec r;
	for (uint32_t off = 0; off <= VP_LOGREC_B; off += VP_LOGREC_B) {
		memcpy(&r, p->map + VP_LOGREC_OFF + off, sizeof r);
		if (rec_sealed(&p->sb, &r) && r.seq > rec->seq) {
			int rc = vp__logrec_store(p, off, VP_LOG_APPLIED, rec->seq, 0, 0, 0,
						  VP_CRASH_POINT("recover:torn-record-dropped"));
			if (rc)
				return rc;
		}
	}
	return 0;
}

int vp__log_replay(struct vp_pool *p, const struct vp_logrec *rec)
{
	if (rec->state == VP_LOG_APPLIED)
		return drop_torn(p, rec);
	vp__diag(1, "pool %s: replaying committed group %llu (%llu slots from slot %u)", p->path,
		(unsigned long long)rec->seq, (unsigned long long)rec->npages, rec->base);
	const struct vp_logdesc *d = group_desc(&p->sb, p->map, rec);
	for (uint64_t i = 0; i < rec->npages; i++)
		vp__slot_apply(&p->ps, p->map + p->sb.home_off, &d[i], group_slot(&p->sb, p->map, rec, i));
	/* Crash before this drain: the record still says COMMITTED, replay
	 * runs again at the next pmap. */
	int rc = vp__pdrain(&p->ps, VP_CRASH_POINT("recover:home-replayed"));
	if (rc)
		return rc;
	return retire(p, rec->seq);
}
