/* SPDX-License-Identifier: MIT */
/*
 * log.c -- the pool side of a commit: place the group in the log and
 * reserve its space (step 2), copy the write set into the redo log and
 * write the commit record (step 3), copy the log into the home image
 * (step 4); retire the log when it wraps and when the pool is closed.
 *
 * Each page of the write set is logged as the lines that differ from its
 * home image, or whole (see copy_slots); step 4 stores just those lines.
 *
 * Groups are appended (see "Appending" below): group seq goes to slots
 * base .. base + n - 1 right after group seq - 1's, and its commit record
 * names base. Durability order (format versions 4 and 5: two drains per commit),
 * and what a crash at each point leaves:
 *   [wrap only] record A = APPLIED(seq-1) -> drain, B likewise -> drain
 *       the group did not fit after seq-1: the log is retired and the
 *       group starts at slot 0. Crash between: equal seq, APPLIED wins
 *       (replaying seq-1 again would be harmless too).
 *   D1: slots + descriptors copied, record A = COMMITTED(seq) stored
 *       -> drain "log:slots-and-record-A-committed"    <- commit point
 *       crash before it completes: B names seq-1 (COMMITTED, its slots
 *       intact since seq writes after them; or APPLIED after a wrap). A
 *       may be old, torn, or COMMITTED(seq) over slots or descriptors not
 *       all durable: those fail the record's descriptor checksum or their
 *       own, and recovery discards group seq (recover.c, "The torn
 *       group"); replaying seq-1 again is harmless. After: A and every
 *       slot are durable, recovery replays seq.
 *       Page checksums off (VOLIPMEM_CHECKSUM_PAGES=off): nothing would
 *       tell a torn slot, so the slots and descriptors get their own
 *       drain "log:slots-and-descriptors" first and A its own,
 *       "log:record-A-committed" (three drains per commit).
 *   D2: record B = COMMITTED(seq) stored, home lines copied from the slots
 *       -> drain "home:record-B-and-pages-updated"
 *       crash before it completes: A names seq over durable slots and
 *       wins (B is older, torn, or names seq too): recovery replays seq
 *       over whatever reached home (idempotent). pend() returns only after
 *       this drain, so both copies name every acknowledged group and one
 *       damaged copy never loses it. No retire records: D2 completes
 *       before group seq+1 starts, so COMMITTED(seq+1) implies every
 *       earlier group is home.
 * The file medium drains the same way: one msync of the range the stores
 * of a drain span (the records at the front of the file, the slots or home
 * pages behind them). msync writes back only the dirty pages of its range,
 * so the wider range adds no writes and each merge saves one msync call
 * (not timed here).
 * punmap retires the log (vp__log_retire): a closed pool's log is empty.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sys/stat.h>
#include <stdlib.h>
#include <string.h>

#include "commit/cow.h"
#include "commit/log.h"
#include "track/track.h"
#include "util/options.h"
#include "util/util.h"

/* reserve -- allocate file blocks so later stores through the mapping cannot
 * raise SIGBUS on a full medium. */
static int reserve(struct vp_log *lg, uint64_t off, uint64_t len, const char *what)
{
	int e = posix_fallocate(lg->pool->fd, (off_t)off, (off_t)len);
	if (e && e != EOPNOTSUPP && e != EINVAL)
		return vp__err(-e, "cannot reserve %llu bytes of %s in %s: %s", (unsigned long long)len, what,
			       lg->pool->path, strerror(e));
	return 0;
}

/*
 * Appending. Group seq + 1 is logged right after group seq (slot base(seq)
 * + n(seq)), so it never overwrites the slots the records still name, and
 * step 4 needs no retire records: group seq's home drain is complete
 * before group seq + 1's commit record is written (commit.c runs one
 * commit at a time), so COMMITTED(seq + 1) implies every earlier group is
 * home and recovery replays only the group the records name. When the
 * write set (n slots at most) does not fit after the newest group (within
 * the append window below), the log is retired first (APPLIED(seq) in A,
 * drain, in B, drain: the same two records step 4 wrote for every group in
 * format version 2) and the group starts at slot 0. A write set holds
 * distinct heap pages and the log has a slot per heap page, so a group
 * always fits an empty log.
 *
 * The append window. A group is appended only while the newest group ends
 * within the first VP_APPEND_WINDOW slots; past that the log wraps (as it
 * does when the write set does not fit the rest of the log). Appending
 * through the whole log would make
 * nearly every small commit store to a log page never touched before: on
 * tmpfs (and on a DAX file's first pass) that is a page fault and a page
 * allocation per commit. Measured here (bench_core same, uffd, forced
 * PMEM, 1 GiB heap, load ~10): the same-page sync FAS went from ~13-20 us
 * to ~29-44 us appending through the log. A window still costs a fresh
 * cache/TLB footprint per commit: at load ~1.5 the same FAS took a median
 * ~2.1 us with a 512-slot window, ~1.1 us with 64 slots (~1.25 us for
 * format version 2's slot 0 and six drains; both figures from version 3's
 * four drains per commit). With 64 slots (256 KiB) the wrap (two drains)
 * comes once per 64 one-slot groups. The write set's size is all that is
 * known before the copy (the line diff drops unchanged pages only while
 * copying), so a tracker that reports every page (libvolimem without dirty
 * tracking) wraps at every commit: four drains.
 */
#define VP_APPEND_WINDOW 64u

/* place -- choose lg->base for a group of at most n slots. */
static int place(struct vp_log *lg, uint64_t n)
{
	uint64_t cap = lg->pool->sb.log_capacity;
	if (n > cap)
		return vp__err(-ENOSPC, "a write set of %llu pages exceeds the redo log of %s (%llu slots)",
			       (unsigned long long)n, lg->pool->path, (unsigned long long)cap);
	if (lg->live && (lg->end >= VP_APPEND_WINDOW || lg->end + n > cap)) {
		int rc = vp__log_retire(lg);
		if (rc)
			return rc;
	}
	lg->base = lg->live ? lg->end : 0;
	return 0;
}

int vp__log_retire(struct vp_log *lg)
{
	if (!lg->live || lg->home_failed)
		return 0;
	int rc = vp__logrec_retire(lg->pool, lg->live);
	if (rc)
		return rc;
	lg->live = 0;
	lg->end = 0;
	return 0;
}

/* vp__log_prepare -- step 2. A pool created with VP_SPARSE gets its log
 * blocks on demand: the slots this commit needs are reserved here, before
 * anything is written, so a full medium fails the commit cleanly (-ENOSPC,
 * nothing lost) instead of raising SIGBUS in the middle of a copy. (The
 * home image of every pool is reserved at creation.) Also grows the
 * descriptor staging array. */
int vp__log_prepare(struct vp_log *lg, const struct vp_pageset *ws)
{
	uint64_t n = ws->n;
	int rc;
	if ((rc = place(lg, n)))
		return rc;
	if (!lg->sparse) {
		struct stat st;
		lg->sparse = fstat(lg->pool->fd, &st) == 0 && (uint64_t)st.st_blocks * 512 < lg->pool->sb.file_size ? 1 : 2;
	}
	uint64_t need = (lg->pool->sb.logdata_off - lg->pool->sb.logdesc_off) + (lg->base + n) * VP_PAGE;
	if (lg->sparse == 1 && need > lg->reserved) {
		uint64_t want = need + need / 4;
		uint64_t max = lg->pool->sb.file_size - lg->pool->sb.logdesc_off;
		if (want > max)
			want = max;
		if ((rc = reserve(lg, lg->pool->sb.logdesc_off, want, "redo log")))
			return rc;
		lg->reserved = want;
	}
	if (n > lg->desc_cap) {
		size_t cap = lg->desc_cap ? lg->desc_cap : 1024;
		while (cap < n)
			cap *= 2;
		void *p = realloc(lg->desc, cap * sizeof *lg->desc);
		if (p)
			lg->desc = p;
		void *c = p ? realloc(lg->changed, cap / 64 * sizeof *lg->changed) : NULL;
		if (c)
			lg->changed = c;
		void *si = c ? realloc(lg->slot, cap * sizeof *lg->slot) : NULL;
		if (!si)
			return vp__err(-ENOMEM, "out of memory for %llu log descriptors", (unsigned long long)n);
		lg->slot = si;
		lg->desc_cap = cap;
	}
	if (n)
		memset(lg->changed, 0, (n + 63) / 64 * sizeof *lg->changed);
	lg->sums = vp__opt.checksum_pages;
	return 0;
}

/*
 * Splitting large copies. A write set of PAR_MIN pages or more is copied by
 * two threads, each its own half of the slots and descriptors, each through
 * its own struct vp_persist (the file medium remembers the range to msync
 * per thread; sfence orders only the issuing thread's non-temporal stores).
 * The helper drains its half before it ends (one more drain), and the
 * caller joins it before anything that must come after the copy (record A
 * and D1 in step 3, the end of step 4: pend() returns after the join), so
 * the durability order in the comment at the top is unchanged. Off under the crash simulator's
 * hooks (they record one thread's stores) and with VOLIPMEM_COPY_THREADS=1;
 * a failed pthread_create just copies the whole set on the calling thread.
 * Measured here: a 32,768-page set's copy time nearly halves.
 */
#define PAR_MIN 512

struct half {
	struct vp_log *lg;
	const struct vp_pageset *ws;
	uint64_t from, to, end;
	struct vp_persist ps;
	int rc;
};

/*
 * Line-granular entries. A page of the write set is compared, line by line
 * (64 bytes), with its home image, which at this point holds every earlier
 * group: commit E+1 starts only after step 4 of E has drained it (commit.c,
 * `committing`), so the base is never stale and a line changed in E and
 * changed back in E+1 differs from home and is logged. Up to
 * VP_LINES_LOG_MAX changed lines are logged as a LINES slot (header + the
 * lines); more, as the whole page. At half the page the LINES entry saves
 * less than half of the bytes, while the page is one streaming copy in
 * both steps and needs no per-line stores at apply; a page that changed
 * that much usually keeps changing wholesale. A page with no changed line
 * (rewritten with equal bytes) takes no slot; only between the halves of
 * a split copy are slots left unused (NONE descriptors). VP_LINES_LOG_MAX
 * (log.h) is 32.
 */

/* line_mask -- which lines of the working page differ from home, among
 * the candidates (all 64, or the lines the tracker recorded: a line no
 * instrumented store touched was not written). */
static uint64_t line_mask(const uint8_t *work, const uint8_t *home, uint64_t cand)
{
	uint64_t m = 0;
	for (; cand; cand &= cand - 1) {
		unsigned j = (unsigned)__builtin_ctzll(cand);
		if (memcmp(work + j * VP_LINE, home + j * VP_LINE, VP_LINE))
			m |= 1ull << j;
	}
	return m;
}

uint64_t vp__log_line_mask(const uint8_t *work, const uint8_t *home)
{
	return line_mask(work, home, ~0ull);
}

/*
 * The stage. A LINES entry is a few lines of non-temporal stores into the
 * log; step 4 would read them back from memory (a miss per line, and one
 * more for the header) to store them home. The copy builds each LINES
 * entry (header and lines) in lg->stage (a DRAM buffer of VP_STAGE_BYTES,
 * allocated once and reused by every group; each half of a split copy
 * fills its own half of it) and copies it into the slot from there, and
 * step 4 applies it from there: the same bytes, from the cache.
 * Entries past the stage's end are applied from the slot as before.
 * Recovery always reads the slots. The size: a relaxed 1 ms group of the
 * cc hashmap at 1 insert per FAS holds ~1,500 pages of ~3 lines, ~300 KiB
 * of lines; a 4 MiB stage covers groups ten times that. Only the part a
 * group fills is ever touched (the buffer comes from mmap, lazily).
 */
#define VP_STAGE_BYTES (4u * 1024u * 1024u)

/* note_changed -- set the write set's pages of word w in lg->changed. The
 * halves of a split copy may share a word (atomic then); one store per 64
 * pages, not one per page: a locked instruction between the non-temporal
 * stores of two pages waits for the first page's to complete. */
static void note_changed(struct vp_log *lg, uint64_t w, uint64_t bits, bool shared)
{
	if (!bits)
		return;
	if (shared)
		__atomic_fetch_or(&lg->changed[w], bits, __ATOMIC_RELAXED);
	else
		lg->changed[w] |= bits;
}

/* copy_slots -- log entries for pages [from, to) of the write set into
 * slots base + from, base + from + 1, ...: unchanged pages take none. Returns the slot
 * after the last one used. shared: the other half of a split copy runs
 * beside this one. LINES entries are also kept in lg->stage[st, st_end). */
static uint64_t copy_slots(struct vp_log *lg, struct vp_persist *ps, const struct vp_pageset *ws, uint64_t from,
			   uint64_t to, bool shared, size_t st, size_t st_end)
{
	uint8_t *slots = lg->pool->map + lg->pool->sb.logdata_off + lg->base * VP_PAGE;
	const uint8_t *home = lg->pool->map + lg->pool->sb.home_off;
	bool sums = lg->sums;
	_Alignas(64) uint8_t buf[VP_LINE * (1 + VP_LINES_LOG_MAX)];
	uint64_t i = from, cw = 0, cwi = from / 64;
	if (!lg->stage)
		st = st_end = 0; /* out of memory for it: apply from the slots */
	/* vp__cow_src/vp__cow_copied: during a concurrent copy (cow.c) the
	 * page comes from the working copy or from what a writer saved of it;
	 * with a snapshot (snap.c), from its place in the arena. */
	struct vp_tracker *lt = lg->lines_from;
	/* The shadows (shadow.c) serve one thread's copy of a group whose
	 * lines are found by the diff; vp__log_copy dropped them otherwise. */
	struct vp_shadow *sw = !lt && !shared ? &lg->shadow : NULL;
	bool install = ws->n <= vp__opt.shadow_pages / 4;
	for (uint64_t p = from; p < to; vp__cow_copied(p), p++) {
		const uint8_t *src = vp__cow_src(p, lg->snap ? lg->snap + lg->snap_off[p] : lg->heap + ws->pg[p] * VP_PAGE);
		/* A tracker that names the lines written (cc) needs no diff: its
		 * lines are logged as they are. Reading home to drop the few
		 * rewritten with equal bytes costs a miss per line (step 4's
		 * non-temporal stores left none of home in the cache). */
		uint8_t *sh = sw ? vp__shadow_find(sw, ws->pg[p]) : NULL;
		uint64_t m = lt ? lt->ops->lines(lt, ws->pg[p])
				: line_mask(src, sh ? sh : home + ws->pg[p] * VP_PAGE, ~0ull);
		unsigned k = (unsigned)__builtin_popcountll(m);
		const uint8_t *logged = src;
		size_t len = VP_PAGE;
		if (k == 0)
			continue;
		if (sw)
			vp__shadow_logged(sw, ws->pg[p], sh, src, m, install);
		if (p / 64 != cwi) {
			note_changed(lg, cwi, cw, shared);
			cw = 0;
			cwi = p / 64;
		}
		cw |= 1ull << (p % 64);
		struct vp_slotinfo *si = &lg->slot[i];
		si->stage = VP_NOT_STAGED;
		if (k <= VP_LINES_LOG_MAX) {
			len = (size_t)VP_LINE * (1 + k);
			/* Built in the stage when it has room, else on the stack. */
			uint8_t *e = buf;
			if (st + len <= st_end) {
				e = lg->stage + st;
				si->stage = (uint32_t)st;
				st += len;
			}
			struct vp_linehdr *h = (void *)e;
			*h = (struct vp_linehdr){.magic = VP_LINEHDR_MAGIC, .pgno = ws->pg[p], .mask = m};
			h->checksum = vp__csum(h, offsetof(struct vp_linehdr, checksum));
			uint8_t *o = e + VP_LINE;
			if (lg->snap && lt)
				memcpy(o, src, (size_t)k * VP_LINE); /* the snapshot holds them in order */
			else
				for (uint64_t b = m; b; b &= b - 1, o += VP_LINE)
					memcpy(o, src + (unsigned)__builtin_ctzll(b) * VP_LINE, VP_LINE);
			logged = e;
			lg->desc[i].pgno = VP_DESC_LINES << VP_DESC_KIND_SHIFT | ws->pg[p];
		} else {
			lg->desc[i].pgno = ws->pg[p];
		}
		si->len = (uint32_t)len;
		vp__pcopy(ps, slots + i * VP_PAGE, logged, len);
		/* The checksum is taken from what was copied, while threads are
		 * paused, the page is still held (cow.c) or from the snapshot. */
		lg->desc[i].csum = sums ? vp__csum(logged, len) : 0;
		if (sums && !lg->desc[i].csum)
			lg->desc[i].csum = 1; /* 0 means "no checksum" */
		i++;
	}
	note_changed(lg, cwi, cw, shared);
	return i;
}

/* copy_home -- step 4: apply slots [from, to) to their home pages. */
static void copy_home(struct vp_log *lg, struct vp_persist *ps, uint64_t from, uint64_t to)
{
	uint8_t *home = lg->pool->map + lg->pool->sb.home_off;
	uint8_t *slots = lg->pool->map + lg->pool->sb.logdata_off + lg->base * VP_PAGE;
	for (uint64_t i = from; i < to; i++) {
		uint32_t st = lg->slot[i].stage;
		vp__slot_apply(ps, home, &lg->desc[i], st == VP_NOT_STAGED ? slots + i * VP_PAGE : lg->stage + st);
	}
}

static void *slots_helper(void *arg)
{
	struct half *h = arg;
	h->end = copy_slots(h->lg, &h->ps, h->ws, h->from, h->to, true, VP_STAGE_BYTES / 2, VP_STAGE_BYTES);
	h->rc = vp__pdrain(&h->ps, VP_CRASH_POINT("log:slots-second-half"));
	return NULL;
}

static void *home_helper(void *arg)
{
	struct half *h = arg;
	copy_home(h->lg, &h->ps, h->from, h->to);
	h->rc = vp__pdrain(&h->ps, VP_CRASH_POINT("home:pages-second-half"));
	return NULL;
}

/* split -- start fn on the second half of n pages; returns where the
 * caller's half ends (n when nothing was started). */
static uint64_t split(struct vp_log *lg, const struct vp_pageset *ws, uint64_t n, void *(*fn)(void *),
		      struct half *h, pthread_t *th)
{
	if (n < PAR_MIN || vp__opt.copy_threads < 2 || vp__persist_hooks)
		return n;
	*h = (struct half){.lg = lg, .ws = ws, .from = n / 2, .to = n, .ps = lg->pool->ps};
	h->ps.lo = UINTPTR_MAX;
	h->ps.hi = 0;
	h->ps.stored = 0;
	h->ps.drains = 0;
	if (pthread_create(th, NULL, fn, h) != 0)
		return n;
	return n / 2;
}

int vp__log_copy(struct vp_log *lg, const struct vp_pageset *ws, uint64_t *used)
{
	struct half h;
	pthread_t th;
	if (!lg->stage)
		lg->stage = aligned_alloc(VP_LINE, VP_STAGE_BYTES); /* NULL: copy_slots stages nothing */
	uint64_t mine = split(lg, ws, ws->n, slots_helper, &h, &th);
	if (lg->lines_from || mine != ws->n)
		vp__shadow_drop(&lg->shadow); /* this group does not keep them */
	uint64_t end = copy_slots(lg, &lg->pool->ps, ws, 0, mine, mine != ws->n, 0,
				  mine != ws->n ? VP_STAGE_BYTES / 2 : VP_STAGE_BYTES);
	*used = end;
	if (mine == ws->n)
		return 0;
	pthread_join(th, NULL);
	lg->pool->ps.stored += h.ps.stored;
	lg->pool->ps.drains += h.ps.drains;
	/* The helper's slots start at mine: the slots between the halves
	 * are unused. */
	for (uint64_t i = end; i < mine; i++) {
		lg->desc[i] = (struct vp_logdesc){.pgno = VP_DESC_NONE << VP_DESC_KIND_SHIFT, .csum = 0};
		lg->slot[i] = (struct vp_slotinfo){.len = 0, .stage = VP_NOT_STAGED};
	}
	*used = h.end > mine ? h.end : end;
	return h.rc;
}

int vp__log_commit(struct vp_log *lg, uint64_t seq, uint64_t n)
{
	uint8_t *dt = lg->pool->map + lg->pool->sb.logdesc_off + lg->base * sizeof(struct vp_logdesc);
	size_t dbytes = n * sizeof(struct vp_logdesc);
	int rc;
	lg->entries = lg->bytes = 0;
	for (uint64_t i = 0; i < n; i++) {
		lg->entries += lg->slot[i].len != 0;
		lg->bytes += lg->slot[i].len;
	}
	vp__pstore(&lg->pool->ps, dt, lg->desc, dbytes);
	vp__pflush(&lg->pool->ps, dt, dbytes);
	/* Without slot checksums a torn slot could not be told from a good
	 * one: the slots must be durable before record A names them. Crash
	 * before this drain: no record names group seq; discarded. */
	if (!lg->sums && (rc = vp__pdrain(&lg->pool->ps, VP_CRASH_POINT("log:slots-and-descriptors"))))
		return rc;
	uint64_t dsum = vp__csum(lg->desc, dbytes);
	/* D1, the commit point. Crash before it completes: record A may be
	 * durable over torn slots or descriptors; their checksums fail while
	 * B still names seq - 1, and recovery discards the group (recover.c). */
	vp__logrec_build(lg->pool, &lg->rec, VP_LOG_COMMITTED, seq, (uint32_t)lg->base, n, dsum);
	if ((rc = vp__logrec_put(lg->pool, 0, &lg->rec,
				 lg->sums ? VP_CRASH_POINT("log:slots-and-record-A-committed")
					  : VP_CRASH_POINT("log:record-A-committed"))))
		return rc;
	lg->live = seq;
	lg->end = lg->base + n;
	return 0;
}

int vp__log_apply(struct vp_log *lg, uint64_t n)
{
	struct half h;
	pthread_t th;
	/* Record B, undrained: D2 below makes it durable with the home lines.
	 * Record A and the slots are durable (D1), so any crash from here on
	 * replays group seq whatever part of B or of the home image is
	 * durable. */
	vp__logrec_put(lg->pool, VP_LOGREC_B, &lg->rec, NULL); /* the same bytes as A */
	uint64_t mine = split(lg, NULL, n, home_helper, &h, &th);
	copy_home(lg, &lg->pool->ps, 0, mine);
	/* D2. Crash before it completes: record A says COMMITTED; replayed. */
	int rc = vp__pdrain(&lg->pool->ps, VP_CRASH_POINT("home:record-B-and-pages-updated"));
	if (mine != n) {
		pthread_join(th, NULL);
		lg->pool->ps.stored += h.ps.stored;
		lg->pool->ps.drains += h.ps.drains;
		if (!rc)
			rc = h.rc;
	}
	/* No retire: see "Appending". A failed home copy leaves the group
	 * for recovery: the log is never retired after it. */
	if (rc)
		lg->home_failed = true;
	return rc;
}

void vp__log_free(struct vp_log *lg)
{
	free(lg->desc);
	free(lg->changed);
	free(lg->slot);
	free(lg->stage);
	vp__shadow_free(&lg->shadow);
	lg->desc = NULL;
	lg->changed = NULL;
	lg->slot = NULL;
	lg->stage = NULL;
	lg->desc_cap = 0;
}
