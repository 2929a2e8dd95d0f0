/* SPDX-License-Identifier: MIT */
/*
 * cc.h -- the state the cc tracker's store callbacks (cc_rt.c) share with
 * its collector (cc.c): the heap range, the line map and the list of pages
 * touched since the last collection.
 */
#ifndef VP_TRACK_CC_H
#define VP_TRACK_CC_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct vp_cc_map {
	uintptr_t base;            /* the heap; len 0 while nothing is tracked */
	size_t len;
	_Atomic uint64_t *live;    /* per page: lines written since collection */
	_Atomic uint64_t *list;    /* page + 1 of each newly touched page      */
	size_t cap;                /* slots in list                            */
	atomic_size_t nlist;       /* slots claimed                            */
	atomic_bool overflow;      /* a push found the list full               */
};
extern struct vp_cc_map vp__cc;

/* vp__cc_instrumented -- an instrumented module's constructor has run. */
bool vp__cc_instrumented(void);

#endif
