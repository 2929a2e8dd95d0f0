/* SPDX-License-Identifier: MIT */
/*
 * recover.c -- the redo log's on-media rules: the commit records (which
 * copy wins, how one is written), verification of a committed group, and
 * replay into the home image at open; a group that never reached its
 * commit point is ignored.
 *
 * The commit point of group seq is the first copy of its commit record
 * (state COMMITTED) becoming durable; the record is written only after the
 * group's data slots and descriptors are durable. So a valid COMMITTED
 * record always has a complete group behind it, and a torn record (bad
 * checksum) means the group never committed. Replay copies slots to home
 * and then marks the record APPLIED: a crash during replay leaves the
 * record COMMITTED and the next pmap() replays again (idempotent).
 * Everything is validated before the first byte is written.
 */
#include <stdio.h>
#include <string.h>

#include "pool/pool.h"
#include "util/util.h"

static bool rec_valid(const struct vp_superblock *sb, const struct vp_logrec *r)
{
	return r->magic == VP_LOGREC_MAGIC &&
	       r->checksum == vp__csum(r, offsetof(struct vp_logrec, checksum)) &&
	       memcmp(r->uuid, sb->uuid, sizeof r->uuid) == 0 &&
	       (r->state == VP_LOG_COMMITTED || r->state == VP_LOG_APPLIED) && !r->reserved0 &&
	       r->npages <= sb->log_capacity;
}

int vp__log_state(const struct vp_superblock *sb, const uint8_t *pool, struct vp_logrec *rec)
{
	struct vp_logrec a, b;
	memcpy(&a, pool + VP_LOGREC_OFF, sizeof a);
	memcpy(&b, pool + VP_LOGREC_OFF + VP_LOGREC_B, sizeof b);
	bool va = rec_valid(sb, &a), vb = rec_valid(sb, &b);
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

int vp__log_verify(const struct vp_superblock *sb, const uint8_t *pool, const struct vp_logrec *rec)
{
	const struct vp_logdesc *d = (const void *)(pool + sb->logdesc_off);
	uint64_t pages = sb->heap_size / VP_PAGE;
	if (vp__csum(d, rec->npages * sizeof *d) != rec->desc_csum)
		return vp__err(VP_E_LOGCORRUPT,
			       "committed group %llu: descriptor table checksum mismatch (%llu descriptors at offset %llu)",
			       (unsigned long long)rec->seq, (unsigned long long)rec->npages,
			       (unsigned long long)sb->logdesc_off);
	for (uint64_t i = 0; i < rec->npages; i++) {
		if (d[i].pgno >= pages)
			return vp__err(VP_E_LOGCORRUPT, "committed group %llu: slot %llu names page %llu beyond the heap (%llu pages)",
				       (unsigned long long)rec->seq, (unsigned long long)i,
				       (unsigned long long)d[i].pgno, (unsigned long long)pages);
		const uint8_t *slot = pool + sb->logdata_off + i * VP_PAGE;
		if (d[i].csum && vp__csum(slot, VP_PAGE) != d[i].csum)
			return vp__err(VP_E_LOGCORRUPT,
				       "committed group %llu: slot %llu (heap page %llu, file offset %llu) fails its checksum",
				       (unsigned long long)rec->seq, (unsigned long long)i,
				       (unsigned long long)d[i].pgno,
				       (unsigned long long)(sb->logdata_off + i * VP_PAGE));
	}
	return 0;
}

int vp__log_check(const struct vp_pool *p, struct vp_logrec *rec)
{
	int rc = vp__log_state(&p->sb, p->map, rec);
	if (rc || rec->state == VP_LOG_APPLIED)
		return rc;
	return vp__log_verify(&p->sb, p->map, rec);
}

const uint8_t *vp__log_page(const struct vp_pool *p, const struct vp_logrec *rec, uint64_t pgno)
{
	if (rec->state == VP_LOG_COMMITTED) {
		const struct vp_logdesc *d = (const void *)(p->map + p->sb.logdesc_off);
		for (uint64_t i = rec->npages; i-- > 0;)
			if (d[i].pgno == pgno)
				return p->map + p->sb.logdata_off + i * VP_PAGE;
	}
	return p->map + p->sb.home_off + pgno * VP_PAGE;
}

int vp__logrec_store(struct vp_pool *p, uint32_t off, uint32_t state, uint64_t seq, uint64_t npages,
		     uint64_t desc_csum, const char *point)
{
	struct vp_logrec r;
	memset(&r, 0, sizeof r);
	r.magic = VP_LOGREC_MAGIC;
	r.seq = seq;
	r.state = state;
	r.npages = npages;
	r.desc_csum = desc_csum;
	memcpy(r.uuid, p->sb.uuid, sizeof r.uuid);
	r.checksum = vp__csum(&r, offsetof(struct vp_logrec, checksum));
	uint8_t *dst = p->map + VP_LOGREC_OFF + off;
	vp__pstore(&p->ps, dst, &r, sizeof r);
	vp__pflush(&p->ps, dst, sizeof r);
	return vp__pdrain(&p->ps, point);
}

int vp__logrec_write(struct vp_pool *p, uint32_t state, uint64_t seq, uint64_t npages, uint64_t desc_csum)
{
	int rc = vp__logrec_store(p, 0, state, seq, npages, desc_csum,
				  state == VP_LOG_COMMITTED ? VP_CRASH_POINT("log:record-A-committed")
							    : VP_CRASH_POINT("log:record-A-applied"));
	if (rc)
		return rc;
	return vp__logrec_store(p, VP_LOGREC_B, state, seq, npages, desc_csum,
				state == VP_LOG_COMMITTED ? VP_CRASH_POINT("log:record-B-committed")
							  : VP_CRASH_POINT("log:record-B-applied"));
}

int vp__logrec_retire(struct vp_pool *p, uint64_t seq)
{
	return vp__logrec_write(p, VP_LOG_APPLIED, seq, 0, 0);
}

/* retire -- mark the replayed group APPLIED in both record copies without
 * ever overwriting the only valid copy. A crash during the commit may have
 * left copy B torn (invalid) beside a valid COMMITTED copy A; writing A
 * first would open a window where a torn A leaves no valid record at all
 * and the pool could not be opened. So a damaged B is rewritten first. */
static int retire(struct vp_pool *p, uint64_t seq)
{
	struct vp_logrec b;
	memcpy(&b, p->map + VP_LOGREC_OFF + VP_LOGREC_B, sizeof b);
	if (!rec_valid(&p->sb, &b)) {
		int rc = vp__logrec_store(p, VP_LOGREC_B, VP_LOG_APPLIED, seq, 0, 0,
					  VP_CRASH_POINT("recover:damaged-record-B-rewritten"));
		if (rc)
			return rc;
	}
	return vp__logrec_retire(p, seq);
}

int vp__log_replay(struct vp_pool *p, const struct vp_logrec *rec)
{
	if (rec->state == VP_LOG_APPLIED)
		return 0;
	vp__diag(1, "pool %s: replaying committed group %llu (%llu pages)", p->path, (unsigned long long)rec->seq,
		(unsigned long long)rec->npages);
	const struct vp_logdesc *d = (const void *)(p->map + p->sb.logdesc_off);
	for (uint64_t i = 0; i < rec->npages; i++)
		vp__pcopy(&p->ps, p->map + p->sb.home_off + d[i].pgno * VP_PAGE,
			  p->map + p->sb.logdata_off + i * VP_PAGE, VP_PAGE);
	/* Crash before this drain: the record still says COMMITTED, replay
	 * runs again at the next pmap. */
	int rc = vp__pdrain(&p->ps, VP_CRASH_POINT("recover:home-replayed"));
	if (rc)
		return rc;
	return retire(p, rec->seq);
}
