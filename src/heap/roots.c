/* SPDX-License-Identifier: MIT */
/*
 * roots.c -- named root objects: the entry points a program finds its data
 * through after a restart. A singly linked list of struct vp_root records
 * in the heap (offsets, creation order), changed inside implicit FASes.
 */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "heap/heap.h"
#include "util/util.h"

static pthread_mutex_t root_mu = PTHREAD_MUTEX_INITIALIZER;

static struct vp_heaphdr *hdr(void) { return (struct vp_heaphdr *)vp__heap_mem(); }
static void *at(uint64_t off) { return off ? vp__heap_mem() + off : NULL; }
static uint64_t off_of(const void *p) { return (uint64_t)((const uint8_t *)p - vp__heap_mem()); }

static int check_name(const char *name, const char *who)
{
	if (!name || !*name)
		return vp__misuse(VP_E_INVAL, "%s: empty root name", who);
	if (strlen(name) > VP_ROOT_NAME_MAX)
		return vp__misuse(VP_E_INVAL, "%s(\"%.20s...\"): root names are at most %d bytes", who, name,
				  VP_ROOT_NAME_MAX);
	if (!vp__heap_mem())
		return vp__misuse(VP_E_NOTMAPPED, "%s(\"%s\") called while no pool is mapped", who, name);
	return 0;
}

/* find -- the record named name and its predecessor. pre: root_mu held. */
static struct vp_root *find(const char *name, struct vp_root **prevp)
{
	struct vp_root *prev = NULL;
	for (struct vp_root *r = at(hdr()->roots_head); r; prev = r, r = at(r->next))
		if (strcmp(r->name, name) == 0) {
			if (prevp)
				*prevp = prev;
			return r;
		}
	return NULL;
}

void *proot(const char *name, size_t size, bool *created)
{
	if (created)
		*created = false;
	if (check_name(name, "proot"))
		return NULL;
	if (size == 0) {
		vp__misuse(VP_E_INVAL, "proot(\"%s\", 0): a root needs a size", name);
		return NULL;
	}
	void *obj = NULL;
	pstart();
	pthread_mutex_lock(&root_mu);
	struct vp_root *r = find(name, NULL);
	if (r) {
		if (r->size != size)
			vp__err(VP_E_ROOTSIZE, "proot(\"%s\", %zu): the root exists with size %llu", name, size,
				(unsigned long long)r->size);
		else
			obj = at(r->obj);
	} else {
		struct vp_root *nr = vp__alloc(sizeof *nr);
		obj = nr ? vp__alloc(size) : NULL;
		if (!obj) {
			if (nr)
				vp__free(nr);
			vp__err(-ENOMEM, "proot(\"%s\", %zu): the persistent heap is full", name, size);
		} else {
			memset(obj, 0, size);
			memset(nr, 0, sizeof *nr);
			nr->magic = VP_ROOTS_MAGIC;
			nr->obj = off_of(obj);
			nr->size = size;
			strcpy(nr->name, name);
			struct vp_heaphdr *h = hdr();
			if (h->roots_tail) {
				struct vp_root *tail = at(h->roots_tail);
				tail->next = off_of(nr);
				vp__cc_note(tail, sizeof *tail);
			} else
				h->roots_head = off_of(nr);
			h->roots_tail = off_of(nr);
			h->nroots++;
			vp__cc_note(obj, size);
			vp__cc_note(nr, sizeof *nr);
			vp__cc_note(h, sizeof *h);
			if (created)
				*created = true;
		}
	}
	pthread_mutex_unlock(&root_mu);
	int rc = pend();
	if (rc && obj)
		vp__err(rc, "proot(\"%s\"): the commit failed: %s", name, vp_strerror(rc));
	return obj;
}

int vp_root_remove(const char *name)
{
	int rc = check_name(name, "vp_root_remove");
	if (rc)
		return rc;
	pstart();
	pthread_mutex_lock(&root_mu);
	struct vp_root *prev, *r = find(name, &prev);
	if (!r) {
		rc = vp__err(VP_E_NOROOT, "vp_root_remove(\"%s\"): no such root", name);
	} else {
		struct vp_heaphdr *h = hdr();
		if (prev)
			prev->next = r->next;
		else
			h->roots_head = r->next;
		if (h->roots_tail == off_of(r))
			h->roots_tail = prev ? off_of(prev) : 0;
		h->nroots--;
		if (prev)
			vp__cc_note(prev, sizeof *prev);
		vp__cc_note(h, sizeof *h);
		vp__free(at(r->obj));
		vp__free(r);
	}
	pthread_mutex_unlock(&root_mu);
	int rc2 = pend();
	return rc ? rc : rc2;
}

int vp_root_list(vp_root_fn fn, void *arg)
{
	if (!vp__heap_mem())
		return vp__misuse(VP_E_NOTMAPPED, "vp_root_list called while no pool is mapped");
	if (!fn)
		return vp__misuse(VP_E_INVAL, "vp_root_list: no callback");
	/* Snapshot first, so the callback may call proot/vp_root_remove. */
	pthread_mutex_lock(&root_mu);
	size_t n = (size_t)hdr()->nroots, i = 0;
	struct vp_root *snap = calloc(n ? n : 1, sizeof *snap);
	if (!snap) {
		pthread_mutex_unlock(&root_mu);
		return vp__err(-ENOMEM, "vp_root_list: out of memory");
	}
	for (struct vp_root *r = at(hdr()->roots_head); r && i < n; r = at(r->next))
		snap[i++] = *r;
	pthread_mutex_unlock(&root_mu);
	int visited = 0;
	for (size_t k = 0; k < i; k++) {
		visited++;
		if (fn(snap[k].name, at(snap[k].obj), (size_t)snap[k].size, arg))
			break;
	}
	free(snap);
	return visited;
}
