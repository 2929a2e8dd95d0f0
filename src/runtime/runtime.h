/* SPDX-License-Identifier: MIT */
/*
 * runtime.h -- the runtime layer's state: what pmap() opened and mapped
 * (the pool object, the working copy, the tracker), above the commit layer
 * (vp__cm, commit/commit.h). One pool per process: a single global
 * instance, vp__rt. Nothing below runtime/ includes this header.
 */
#ifndef VP_RUNTIME_H
#define VP_RUNTIME_H

#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>

#include "commit/commit.h"
#include "pool/pool.h"
#include "track/track.h"
#include "volipmem.h"

struct vp_rt {
	/* ---- pool (set by pmap, constant until punmap) ---- */
	bool mapped;
	struct vp_pool pool;      /* the file, its superblock and mapping      */
	uint8_t *heap;            /* working copy, at sb.heap_base             */
	size_t heap_size;
	size_t heap_pages;
	size_t reserve;           /* address space reserved at heap            */

	/* ---- tracker ---- */
	struct vp_tracker trk;
};

extern struct vp_rt vp__rt;

/* ---- runtime/ ---- */
/* vp__fork_install -- pthread_atfork handlers that detach a child (fork.c). */
void vp__fork_install(void);

#endif
