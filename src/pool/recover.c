/* SPDX-License-Identifier: MIT */
/*
 * recover.c -- reading the redo log at pmap(): replay a committed group into
 * the home image, ignore one that never reached its commit point.
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

#include "commit/log.h"
#include "runtime.h"
#include "util/util.h"

static bool rec_valid(const struct vp_superblock *sb, const struct vp_logrec *r)
{
	return r->magic == VP_LOGREC_MAGIC &&
	       r->checksum == vp__csum(r, offsetof(struct vp_logrec, checksum)) &&
	       memcmp(r->uuid, sb->uuid, sizeof r->uuid) == 0 &&
	       (r->state == VP_LOG_COMMITTED || r->state == VP_LOG_APPLIED) && !r->reserved0 &&
	       r->npages <= sb->log_capacity;
}

/* vp__log_state -- the winning commit record: the valid copy with the
 * highest seq, APPLIED beating COMMITTED at equal seq. */
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

/* vp__log_verify -- check every descriptor and slot of a committed group. */
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

/* retire -- mark the replayed group APPLIED in both record copies without
 * ever overwriting the only valid copy. A crash during the commit may have
 * left copy B torn (invalid) beside a valid COMMITTED copy A; writing A
 * first would open a window where a torn A leaves no valid record at all
 * and the pool could not be opened. So a damaged B is rewritten first. */
static int retire(struct vp_rt *rt, uint64_t seq)
{
	struct vp_logrec b;
	memcpy(&b, rt->pool + VP_LOGREC_OFF + VP_LOGREC_B, sizeof b);
	if (!rec_valid(&rt->sb, &b)) {
		int rc = vp__logrec_store(rt, VP_LOGREC_B, VP_LOG_APPLIED, seq, 0, 0,
					  VP_CRASH_POINT("recover:damaged-record-B-rewritten"));
		if (rc)
			return rc;
	}
	return vp__logrec_retire(rt, seq);
}

/* vp__recover -- bring the home image up to date. write=false only checks
 * (and says what would be replayed). */
int vp__recover(struct vp_rt *rt, bool write)
{
	struct vp_logrec rec;
	int rc;

	if ((rc = vp__log_state(&rt->sb, rt->pool, &rec)))
		return rc;
	rt->seq = rec.seq;
	if (rec.state == VP_LOG_APPLIED)
		return 0;
	if ((rc = vp__log_verify(&rt->sb, rt->pool, &rec)))
		return rc;
	if (!write)
		return 0;
	vp__log(1, "pool %s: replaying committed group %llu (%llu pages)", rt->path,
		(unsigned long long)rec.seq, (unsigned long long)rec.npages);
	const struct vp_logdesc *d = (const void *)(rt->pool + rt->sb.logdesc_off);
	for (uint64_t i = 0; i < rec.npages; i++)
		vp__pcopy(&rt->ps, rt->pool + rt->sb.home_off + d[i].pgno * VP_PAGE,
			  rt->pool + rt->sb.logdata_off + i * VP_PAGE, VP_PAGE);
	/* Crash before this drain: the record still says COMMITTED, replay
	 * runs again at the next pmap. */
	if ((rc = vp__pdrain(&rt->ps, VP_CRASH_POINT("recover:home-replayed"))))
		return rc;
	return retire(rt, rec.seq);
}
