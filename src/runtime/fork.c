/* SPDX-License-Identifier: MIT */
/*
 * fork.c -- what a fork() does to the mapped pool: the commit mutex is held
 * across the fork so the child never inherits it mid-change, and the child
 * is detached (keeps its private copy of the heap, never writes the pool).
 */
#include <pthread.h>
#include <stdbool.h>
#include <sys/mman.h>
#include <unistd.h>

#include "runtime/runtime.h"

static void atfork_prepare(void) { pthread_mutex_lock(&vp__cm.mu); }
static void atfork_parent(void) { pthread_mutex_unlock(&vp__cm.mu); }

/* atfork_child -- detach: the child keeps its private copy of the heap but
 * must never write the parent's pool. Dropping our reference to the file
 * description also lets the parent's lock go when the parent closes it. */
static void atfork_child(void)
{
	struct vp_rt *rt = &vp__rt;
	/* The forking thread took mu in atfork_prepare and is the child's only
	 * thread: release it. (Re-initialising a locked mutex is undefined, and
	 * TSan reports the child's next lock as a double lock.) */
	pthread_mutex_unlock(&vp__cm.mu);
	pthread_cond_init(&vp__cm.cv, NULL);
	pthread_cond_init(&vp__cm.tick, NULL);
	if (!rt->mapped)
		return;
	vp__commit_forked(&vp__cm);
	if (rt->trk.ops && rt->trk.ops->forked)
		rt->trk.ops->forked(&rt->trk);
	vp__pool_close(&rt->pool);
}

/* vp__fork_install -- register the handlers once per process. */
void vp__fork_install(void)
{
	static bool done;
	if (!done) {
		pthread_atfork(atfork_prepare, atfork_parent, atfork_child);
		done = true;
	}
}
