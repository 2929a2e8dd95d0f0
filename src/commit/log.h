/* SPDX-License-Identifier: MIT */
/*
 * log.h -- the redo log: commit records and the four-step commit pipeline's
 * pool-side operations (prepare, log, update).
 */
#ifndef VP_LOG_H
#define VP_LOG_H

#include <stdint.h>

struct vp_rt;
struct vp_pageset;

/* vp__logrec_store -- write one commit record copy (off: 0 for A,
 * VP_LOGREC_B for B), flush it and drain at crash point `point`. */
int vp__logrec_store(struct vp_rt *rt, uint32_t off, uint32_t state, uint64_t seq, uint64_t npages,
		     uint64_t desc_csum, const char *point);
/* vp__logrec_write -- write both commit records (A, drain, B, drain). */
int vp__logrec_write(struct vp_rt *rt, uint32_t state, uint64_t seq, uint64_t npages, uint64_t desc_csum);
/* vp__logrec_retire -- mark group seq APPLIED in both records. */
int vp__logrec_retire(struct vp_rt *rt, uint64_t seq);
/* Step 2: make sure the medium has room for the write set's log slots. */
int vp__log_prepare(struct vp_rt *rt, const struct vp_pageset *ws);
/* Step 3, first half: copy the write set's pages from the working copy into
 * the log slots and compute descriptors. Threads are paused meanwhile. A
 * large set is split with a helper thread (VOLIPMEM_COPY_THREADS); its half
 * is drained before this returns. Returns 0 or the helper's drain error. */
int vp__log_copy(struct vp_rt *rt, const struct vp_pageset *ws);
/* Step 3, second half: make slots and descriptors durable, then the commit
 * record (the commit point). Threads run meanwhile. */
int vp__log_commit(struct vp_rt *rt, uint64_t seq, uint64_t n);
/* Step 4: copy the slots into the home image (split like step 3 for a
 * large set), make it durable, retire. */
int vp__log_apply(struct vp_rt *rt, uint64_t seq, uint64_t n);

#endif
