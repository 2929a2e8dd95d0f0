/* SPDX-License-Identifier: MIT */
/*
 * track.h -- the tracker contract: which heap pages were written since the
 * last collection?
 *
 * Conventions shared by every tracker:
 *   - The tracked range is the heap's working copy [base, base + len), page
 *     aligned, mapped read/write for the application (MAP_PRIVATE of the
 *     home image).
 *   - A page "written" is one the application (or the kernel on its behalf)
 *     stored into since the previous collect(). Reporting extra pages is
 *     allowed (they are logged needlessly); missing one is a lost write.
 *   - collect() runs only at a quiescent point: no thread inside a FAS and
 *     the commit gate closed, so no FAS write can race with it. Writes
 *     outside FASes may race; a page written during collect() is reported
 *     now or at the next collect(), never lost.
 *   - Page numbers are indices from base, reported in increasing order.
 *   - The optional op lines(t, pgno) gives, for a page collect() just
 *     reported, the 64-byte lines written (bit j = line j); NULL means
 *     every line of a reported page counts as written. Verify mode
 *     (commit/verify.c) reads it.
 *
 * A new tracker is one new file with one `struct vp_tracker_ops` and one
 * line in the table of track.c.
 */
#ifndef VP_TRACK_H
#define VP_TRACK_H

#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* struct vp_pageset -- a growable array of page numbers. */
struct vp_pageset {
	uint64_t *pg;
	size_t n, cap;
};
int vp__pageset_push(struct vp_pageset *s, uint64_t pg);
int vp__pageset_reserve(struct vp_pageset *s, size_t cap);
void vp__pageset_free(struct vp_pageset *s);
/* vp__pageset_sort_unique -- sort and drop duplicates. */
void vp__pageset_sort_unique(struct vp_pageset *s);

struct vp_tracker {
	const struct vp_tracker_ops *ops;
	uint8_t *base;
	size_t len;
	size_t npages;
	void *priv;               /* the tracker's own state */
};

struct vp_tracker_ops {
	const char *name;
	/* probe -- 0 if usable on this kernel, else a code with the reason in
	 * vp_errormsg(). Must not change any state. */
	int (*probe)(void);
	/* attach -- start tracking [base, base+len): every page clean.
	 * pre: t->base/len/npages set; the range is mapped RW. */
	int (*attach)(struct vp_tracker *t);
	/* collect -- append the written pages to out (increasing order) and
	 * re-arm them, atomically per page. pre: quiescent point (see above). */
	int (*collect)(struct vp_tracker *t, struct vp_pageset *out);
	/* detach -- stop tracking; leave the range mapped RW. */
	void (*detach)(struct vp_tracker *t);
	/* before_kernel_write -- the kernel is about to write [addr, addr+n)
	 * (a read() into the heap): make it writable and count it as written.
	 * NULL when kernel writes are tracked anyway. pre: range inside heap. */
	int (*before_kernel_write)(struct vp_tracker *t, void *addr, size_t n);
	/* forked -- in a forked child (detached from the pool): drop what the
	 * child shares with the parent without touching the parent's state
	 * (a userfaultfd acts on the mm that created it). NULL if nothing. */
	void (*forked)(struct vp_tracker *t);
	/* settled -- after step 3's copy of the write set ws (which collect
	 * produced, plus any pages of a failed commit): bit i of changed[] is
	 * set when page ws->pg[i] differed from the committed image. Lets a
	 * tracker learn which pages keep changing. NULL if unused. */
	void (*settled)(struct vp_tracker *t, const struct vp_pageset *ws, const uint64_t *changed);
	/* faults -- faults taken so far (0 if the tracker takes none). */
	uint64_t (*faults)(struct vp_tracker *t);
	/* lines -- the 64-bit mask of the 64-byte lines of page pgno recorded
	 * since the collection before the last one, captured by the last
	 * collect(); valid for the pages that collect() reported, until the
	 * next collect(). NULL: the tracker knows pages only (whole page). */
	uint64_t (*lines)(struct vp_tracker *t, uint64_t pgno);
	/* cow -- how the commit may copy a write set while threads run
	 * (commit/cow.c): VP_TRK_COW_NONE, it may not; VP_TRK_COW_RO, collect()
	 * leaves every collected page read-only and the tracker's SIGSEGV
	 * handler makes it writable on the next write; VP_TRK_COW_RW, collected
	 * pages stay writable, and giving one back PROT_READ|PROT_WRITE after a
	 * temporary PROT_READ keeps it tracked. */
	int cow;
	/* cow_hot -- VP_TRK_COW_RW: may collected page pg be held read-only
	 * and given back writable now (else the copy is done paused)? Called
	 * on the collector's thread after collect. */
	bool (*cow_hot)(struct vp_tracker *t, uint64_t pg);
};

enum { VP_TRK_COW_NONE = 0, VP_TRK_COW_RO, VP_TRK_COW_RW };

extern const struct vp_tracker_ops vp__track_uffd;
extern const struct vp_tracker_ops vp__track_mprotect;
extern const struct vp_tracker_ops vp__track_full;
extern const struct vp_tracker_ops vp__track_vm_dirty;
extern const struct vp_tracker_ops vp__track_vm_wp;
extern const struct vp_tracker_ops vp__track_cc;

/* vp__track_choose -- the tracker named (NULL or "" = best available).
 * Fails with VP_E_TRACKER and a message listing the known names, or naming
 * the missing kernel feature. */
int vp__track_choose(const char *name, const struct vp_tracker_ops **out);

/* ---- interposition and SIGSEGV ownership (interpose.c) ---- */
void vp__interpose_set(struct vp_tracker *t);
/* vp__segv_install -- route SIGSEGV to fn first (the tracker in use); fn
 * returns true when the fault was its own and the access may be retried.
 * fn == NULL: no tracker. Async-signal-safe fn only. */
int vp__segv_install(bool (*fn)(siginfo_t *));
/* vp__segv_pre_install -- a second client of the chain, asked before the
 * tracker (the concurrent copy, commit/cow.c): fault as above; kw is called
 * before the tracker's before_kernel_write for a kernel write into the heap.
 * NULLs remove it. */
void vp__segv_pre_install(bool (*fault)(siginfo_t *), int (*kw)(void *, size_t));
/* vp__segv_forward -- hand a fault that is not the tracker's to the
 * application's handler (or the default action). */
void vp__segv_forward(int sig, siginfo_t *si, void *uc);

#endif
