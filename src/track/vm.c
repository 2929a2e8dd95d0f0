/* SPDX-License-Identifier: MIT */
/*
 * vm.c -- the "vm-dirty" and "vm-wp" trackers: the process runs as a KVM
 * guest that owns its page table (libvolimem, src/vm/, docs/VM.md).
 *
 * attach enters the VM from the thread calling pmap (the process must
 * still have one thread: every thread created afterwards, the runtime's
 * committer and copy helpers included, runs as a vCPU of its own) and
 * registers the heap:
 *   vm-dirty  the MMU sets D in the guest PTEs on the first write, with no
 *             fault; collect scans and clears them;
 *   vm-wp     the heap's guest PTEs are read-only; the first write faults
 *             into the guest's own CPL0 handler, which records the page and
 *             makes it writable, with no exit.
 * collect stops the other vCPUs, takes and re-arms the write set and has
 * every vCPU reload CR3 (libvolimem's TLB shootdown). Kernel writes into
 * the heap (read, recv, ...) are forwarded syscalls that libvolimem adds to
 * the write set itself, so before_kernel_write is not needed.
 *
 * Never chosen automatically: only VOLIPMEM_TRACKER=vm-dirty or vm-wp
 * selects them (track.c). The process stays in the VM after detach if
 * other threads still run in it. fork is not supported in the VM.
 */
#include <errno.h>
#include <stdlib.h>

#include "track/track.h"
#include "util/util.h"
#include "vm/volimem.h"

#define BATCH 4096

static int vmt_probe(void)
{
	int r = vm_probe();
	if (r < 0)
		return vp__err(r, "%s", vm_errmsg());   /* names the cause in one line */
	return 0;
}

static int attach(struct vp_tracker *t, int mode)
{
	int r;
	if (!vm_in_guest() && (r = vm_enter()) < 0)
		return vp__err(r, "tracker %s cannot enter the VM: %s", t->ops->name, vm_errmsg());
	if ((r = vm_track(t->base, t->len, mode)) < 0)
		return vp__err(r, "tracker %s: %s", t->ops->name, vm_errmsg());
	return 0;
}

static int dirty_attach(struct vp_tracker *t) { return attach(t, VM_DIRTY); }
static int wp_attach(struct vp_tracker *t) { return attach(t, VM_WP); }

static int vmt_collect(struct vp_tracker *t, struct vp_pageset *out)
{
	void **pages = malloc(BATCH * sizeof *pages);
	if (!pages)
		return vp__err(-ENOMEM, "out of memory collecting the write set");
	long n;
	do {
		n = vm_collect(pages, BATCH);
		if (n < 0) {
			free(pages);
			return vp__err((int)n, "%s collect: %s", t->ops->name, vm_errmsg());
		}
		if (vp__pageset_reserve(out, out->n + (size_t)n)) {
			free(pages);
			return vp__err(-ENOMEM, "out of memory collecting %ld pages", n);
		}
		for (long i = 0; i < n; i++)
			out->pg[out->n++] = (uint64_t)((uint8_t *)pages[i] - t->base) / VP_PAGE;
	} while (n == BATCH);
	free(pages);
	return 0;
}

static void vmt_detach(struct vp_tracker *t)
{
	(void)t;
	vm_untrack();
	if (vm_leave() < 0)
		vp__diag(1, "staying in the VM after punmap: %s", vm_errmsg());
}

static uint64_t vmt_faults(struct vp_tracker *t)
{
	(void)t;
	struct vm_stats st;
	vm_get_stats(&st);
	return st.wp_faults;
}

const struct vp_tracker_ops vp__track_vm_dirty = {
	.name = "vm-dirty",
	.probe = vmt_probe,
	.attach = dirty_attach,
	.collect = vmt_collect,
	.detach = vmt_detach,
	.before_kernel_write = NULL,
	.forked = NULL,
	.faults = vmt_faults,
};

const struct vp_tracker_ops vp__track_vm_wp = {
	.name = "vm-wp",
	.probe = vmt_probe,
	.attach = wp_attach,
	.collect = vmt_collect,
	.detach = vmt_detach,
	.before_kernel_write = NULL,
	.forked = NULL,
	.faults = vmt_faults,
};
