/* SPDX-License-Identifier: MIT */
/*
 * log.h -- the four-step commit pipeline's pool-side operations (prepare,
 * log, update); the commit records themselves are pool/pool.h's.
 */
#ifndef VP_LOG_H
#define VP_LOG_H

#include <stdint.h>

struct vp_rt;
struct vp_pageset;

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
