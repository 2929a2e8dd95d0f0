/* SPDX-License-Identifier: MIT */
/*
 * writeset.c -- the write set of one registered range, collected by the MMU.
 *
 * VM_DIRTY: the range's PTEs stay writable with D clear; the MMU sets D on
 * the first write through each translation, with no fault. Collect scans
 * the PTEs, clears D, and has the guest reload CR3 before it runs again: a
 * translation still cached with D set would let later writes through
 * without setting D again, and they would be lost. It skips every 2 MiB
 * region whose page-directory entry has A clear: no translation through it
 * was made since the last collect (which cleared A and flushed every TLB
 * and paging-structure cache), so no page of it can have been written.
 *
 * VM_WP: the range's writable PTEs are read-only with VM_PTE_SWW set; the
 * guest's own CPL0 #PF handler (entry.c) sets RW, records the page in
 * vm__wp.bitmap and runs invlpg: no exit. Collect returns the recorded
 * pages, clears RW again and has the guest reload CR3.
 *
 * Both: a forwarded syscall that writes the range writes it through the
 * host's page table, which neither D nor a guest #PF sees, so sys.c marks
 * those pages in the same bitmap (vm__mark_written).
 *
 * vm_track/vm_collect/vm_untrack called in the guest reach the host side by
 * a hypercall (a `syscall` with a number Linux never uses); a thread
 * outside the VM calls the host side directly. Either way the change is
 * made under vm__lock with the world stopped (every other vCPU out of
 * KVM_RUN), then gen is bumped so each vCPU reloads CR3 before it runs
 * again: no write can go through a stale translation and be missed.
 * Bitmap updates are atomic: the #PF handlers of several vCPUs and the
 * host sides of forwarded reads set bits concurrently.
 */
#include <errno.h>
#include <string.h>
#include "vm_internal.h"

static bool tracked(uint64_t va)
{
	return vm__s.mode && va - vm__s.tbase < vm__s.tlen;
}

static bool bit_test(uint64_t i)
{
	return __atomic_load_n(&vm__s.tbitmap[i / 64], __ATOMIC_RELAXED) >> (i % 64) & 1;
}

static bool bit_set(uint64_t i)
{
	uint64_t m = 1ull << (i % 64);
	return __atomic_fetch_or(&vm__s.tbitmap[i / 64], m, __ATOMIC_RELAXED) & m;
}

/* vm__track_pte_bits -- adjust a new PTE for va (replacing old) to the
 * tracking mode: read-only + SWW under VM_WP unless the page is already in
 * the write set; under VM_DIRTY a D bit the new PTE would drop is kept in
 * the bitmap. */
uint64_t vm__track_pte_bits(uint64_t va, uint64_t old, uint64_t pte)
{
	if (!tracked(va))
		return pte;
	uint64_t i = (va - vm__s.tbase) / VM_PAGE;
	if (vm__s.mode == VM_DIRTY) {
		if ((old & (VM_PTE_P | VM_PTE_D)) == (VM_PTE_P | VM_PTE_D))
			bit_set(i);
		return pte;
	}
	if ((pte & VM_PTE_RW) && !bit_test(i))
		pte = (pte & ~VM_PTE_RW) | VM_PTE_SWW;
	else if (pte & VM_PTE_RW)
		pte |= VM_PTE_SWW;
	return pte;
}

/* vm__mark_written -- pages of [addr, addr + len) the host wrote for the
 * guest join the write set. */
void vm__mark_written(uint64_t addr, uint64_t len)
{
	if (!vm__s.mode || !len)
		return;
	uint64_t a = vm__page_down(addr), e = vm__page_up(addr + len);
	for (; a < e; a += VM_PAGE) {
		if (!tracked(a))
			continue;
		if (!bit_set((a - vm__s.tbase) / VM_PAGE))
			__atomic_add_fetch(&vm__s.st.host_marks, 1, __ATOMIC_RELAXED);
	}
}

/* tables_changed -- end a change made with the world stopped: every vCPU
 * reloads CR3 before it runs again, then the world goes on. */
static void tables_changed(void)
{
	__atomic_add_fetch(&vm__s.gen, 1, __ATOMIC_SEQ_CST);
	vm__start_world();
}

/* vm__track_host -- start tracking (the VM_HC_TRACK hypercall). */
long vm__track_host(uint64_t base, uint64_t len, int mode)
{
	struct vm__state *s = &vm__s;
	long r = 0;
	vm__lock();
	if (s->mode) {
		r = vm__err(-EBUSY, "volimem: vm_track: a range is already tracked (one per VM)");
		goto out;
	}
	uint64_t n = len / VM_PAGE;
	uint64_t **ptes = vm__pool_alloc(n * sizeof *ptes);
	uint64_t *bm = vm__pool_alloc((n + 63) / 64 * 8);
	if (!ptes || !bm) {
		r = vm__err(-ENOMEM, "volimem: vm_track: the arena cannot hold the arrays for "
			    "%llu pages", (unsigned long long)n);
		goto out;
	}
	for (uint64_t i = 0; i < n; i++) {
		ptes[i] = vm__pte(base + i * VM_PAGE, true);
		if (!ptes[i]) {
			r = vm__err(-ENOMEM, "volimem: vm_track: arena full (page tables)");
			goto out;
		}
	}
	uint64_t r0 = base & ~(VM_2M - 1), nr = (base + len - r0 + VM_2M - 1) / VM_2M;
	uint64_t **pdes = mode == VM_DIRTY ? vm__pool_alloc(nr * sizeof *pdes) : NULL;
	if (mode == VM_DIRTY && !pdes) {
		r = vm__err(-ENOMEM, "volimem: vm_track: arena full (page directory array)");
		goto out;
	}
	for (uint64_t k = 0; pdes && k < nr; k++)
		pdes[k] = vm__pde(r0 + k * VM_2M);   /* exists: vm__pte built it */
	vm__stop_world();
	for (uint64_t i = 0; i < n; i++) {
		uint64_t *p = ptes[i];
		if (!(*p & VM_PTE_P))
			continue;
		if (mode == VM_DIRTY)
			*p &= ~VM_PTE_D;
		else if (*p & VM_PTE_RW)
			*p = (*p & ~VM_PTE_RW) | VM_PTE_SWW;
	}
	s->mode = mode;
	s->tbase = base;
	s->tlen = len;
	s->tptes = ptes;
	s->tpdes = pdes;
	s->ntpdes = nr;
	s->tbitmap = bm;
	if (mode == VM_WP)
		vm__wp = (struct vm__wp){ .base = base, .len = len, .ptes = ptes, .bitmap = bm,
					  .faults = vm__wp.faults };
	tables_changed();
out:
	vm__unlock();
	return r;
}

/* stop_tracked -- take the lock and stop the world if a range is tracked
 * (true), else unlock and record why call fails (false). */
static bool stop_tracked(const char *call)
{
	vm__lock();
	if (vm__s.mode) {
		vm__stop_world();
		return true;
	}
	vm__unlock();
	vm__err(-EINVAL, "volimem: %s: no range is tracked (vm_track first)", call);
	return false;
}

/* vm__untrack_host -- stop tracking: VM_WP pages writable again. */
long vm__untrack_host(void)
{
	struct vm__state *s = &vm__s;
	if (!stop_tracked("vm_untrack"))
		return -EINVAL;
	for (uint64_t i = 0; i < s->tlen / VM_PAGE; i++)
		if (*s->tptes[i] & VM_PTE_SWW)
			*s->tptes[i] = (*s->tptes[i] | VM_PTE_RW) & ~VM_PTE_SWW;
	s->st.wp_faults += vm__wp.faults;
	memset(&vm__wp, 0, sizeof vm__wp);
	s->mode = 0;
	s->tlen = 0;
	tables_changed();
	vm__unlock();
	return 0;
}

/* vm__collect_host -- the VM_HC_COLLECT hypercall. */
long vm__collect_host(void **pages, uint64_t max)
{
	struct vm__state *s = &vm__s;
	if (!stop_tracked("vm_collect"))
		return -EINVAL;
	uint64_t n = s->tlen / VM_PAGE, got = 0;
	if (s->mode == VM_DIRTY) {
		/* D bits of regions walked since the last collect -> bitmap */
		uint64_t r0 = s->tbase & ~(VM_2M - 1);
		for (uint64_t k = 0; k < s->ntpdes; k++) {
			uint64_t *pde = s->tpdes[k];
			if (pde && !(__atomic_fetch_and(pde, ~VM_PTE_A, __ATOMIC_RELAXED) & VM_PTE_A))
				continue;
			uint64_t lo = r0 + k * VM_2M, hi = lo + VM_2M;
			lo = lo < s->tbase ? s->tbase : lo;
			hi = hi > s->tbase + s->tlen ? s->tbase + s->tlen : hi;
			/* plain reads first: a locked RMW on every PTE costs more
			 * than the scan (the world is stopped; A and D are only
			 * set by the MMU of a running vCPU) */
			for (uint64_t i = (lo - s->tbase) / VM_PAGE; i < (hi - s->tbase) / VM_PAGE; i++)
				if ((__atomic_load_n(s->tptes[i], __ATOMIC_RELAXED) & VM_PTE_D) &&
				    (__atomic_fetch_and(s->tptes[i], ~VM_PTE_D, __ATOMIC_RELAXED) & VM_PTE_D))
					bit_set(i);
		}
	}
	for (uint64_t w = 0; w < (n + 63) / 64 && got < max; w++) {
		uint64_t bits = __atomic_load_n(&s->tbitmap[w], __ATOMIC_RELAXED);
		for (; bits && got < max; bits &= bits - 1) {
			uint64_t i = w * 64 + (uint64_t)__builtin_ctzll(bits);
			uint64_t *p = s->tptes[i];
			pages[got++] = (void *)(s->tbase + i * VM_PAGE);
			__atomic_fetch_and(&s->tbitmap[w], ~(1ull << (i % 64)), __ATOMIC_RELAXED);
			if (s->mode == VM_WP && (*p & VM_PTE_SWW))
				*p &= ~VM_PTE_RW;
		}
	}
	tables_changed();
	vm__unlock();
	return (long)got;
}

/* hypercall -- a `syscall` the host side serves itself (VM_HC_*). */
static long hypercall(long nr, long a0, long a1, long a2)
{
	long ret;
	__asm__ volatile("syscall"
			 : "=a"(ret)
			 : "a"(nr), "D"(a0), "S"(a1), "d"(a2)
			 : "rcx", "r11", "memory");
	return ret;
}

int vm_track(void *base, size_t len, int mode)
{
	if (vm__s.vm < 0)
		return vm__err(-EINVAL, "volimem: vm_track: no VM (vm_enter first)");
	if (((uintptr_t)base | len) & (VM_PAGE - 1) || !len)
		return vm__err(-EINVAL, "volimem: vm_track: range %p + 0x%zx is not page-aligned",
			       base, len);
	if (mode != VM_DIRTY && mode != VM_WP)
		return vm__err(-EINVAL, "volimem: vm_track: mode %d is neither VM_DIRTY nor VM_WP", mode);
	if (!vm__self)
		return (int)vm__track_host((uint64_t)base, len, mode);
	return (int)hypercall(VM_HC_TRACK, (long)base, (long)len, mode);
}

int vm_untrack(void)
{
	if (vm__s.vm < 0)
		return vm__err(-EINVAL, "volimem: vm_untrack: no VM");
	if (!vm__self)
		return (int)vm__untrack_host();
	return (int)hypercall(VM_HC_UNTRACK, 0, 0, 0);
}

long vm_collect(void **pages, size_t max)
{
	if (vm__s.vm < 0)
		return vm__err(-EINVAL, "volimem: vm_collect: no VM");
	if (!vm__self)
		return vm__collect_host(pages, max);
	return hypercall(VM_HC_COLLECT, (long)pages, (long)max, 0);
}
