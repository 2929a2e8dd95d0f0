/* SPDX-License-Identifier: MIT */
/*
 * preload.c -- libvolipmem_preload.so: the persistent process heap.
 *
 * Loaded with LD_PRELOAD="libvolipmem.so libvolipmem_preload.so" (the
 * runtime first: see runtime_first), this library replaces
 * malloc, free, calloc, realloc, reallocarray, posix_memalign,
 * aligned_alloc, memalign, valloc, pvalloc, malloc_usable_size, strdup and
 * strndup. C++ operator new/delete reach it through libstdc++, which
 * implements them with malloc/free and aligned_alloc. Once a pool is mapped,
 * the application's allocations come from the persistent heap (pmalloc),
 * so unmodified code -- a std::list with std::allocator -- keeps its data
 * in the pool.
 *
 * Where a block comes from:
 *   - persistent heap: a call made by the application (any object except
 *     the three below) while a pool is mapped;
 *   - glibc's allocator (its exported __libc_malloc & co, which need no
 *     dlsym and so cannot recurse into us): everything before pmap(), every
 *     call whose caller is libc, the dynamic loader or libvolipmem itself
 *     (stdio buffers, DIR streams, thread and TLS blocks, the runtime's own
 *     bookkeeping), and every call made while this library is itself inside
 *     pmap() or another libvolipmem call (a thread-local re-entrancy flag).
 *   The caller is the return address of the malloc call, checked against
 *   the executable segments of those objects, found once at start-up.
 * free/realloc/malloc_usable_size route by address, so blocks of either
 * kind may be freed from anywhere; a block stays in the heap it was born in.
 *
 * The pool: VOLIPMEM_POOL=path maps it from this library's constructor,
 * with VOLIPMEM_POOL_SIZE bytes of heap (K/M/G suffixes; default 64M) for a
 * new pool; without VOLIPMEM_POOL the process heap turns persistent as soon
 * as the program calls pmap() itself. At exit, psync() makes the last
 * writes durable; the heap stays mapped because later destructors may
 * still free heap blocks. Once mapped, VOLIPMEM_POOL is removed from the
 * environment, so that programs this one starts do not contend for it.
 *
 * Cost: each allocation or free outside a FAS is an implicit FAS, i.e. a
 * commit in synchronous mode. Run unmodified programs in relaxed mode
 * (VOLIPMEM_COMMIT_INTERVAL_MS=N) -- see docs/bindings-cpp-rust.md.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <link.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "volipmem.h"

#define PUBLIC __attribute__((visibility("default")))

/* vp_preload_heap -- this library serves the process's malloc: the cc
 * tracker, which sees only instrumented stores, refuses to run under it
 * (it looks this symbol up). */
PUBLIC const int vp_preload_heap = 1;

/* glibc's allocator under its own names (exported since glibc 2.2.5). */
extern void *__libc_malloc(size_t);
extern void __libc_free(void *);
extern void *__libc_calloc(size_t, size_t);
extern void *__libc_realloc(void *, size_t);
extern void *__libc_memalign(size_t, size_t);
/* a symbol of the dynamic loader, to find its segments */
extern void *__tls_get_addr(void *);

/* Set while this thread runs inside libvolipmem on our behalf: nested
 * allocations go to glibc. initial-exec: no __tls_get_addr (which may
 * allocate) on the malloc path. */
static __thread int in_runtime __attribute__((tls_model("initial-exec")));
#define ENTER_RUNTIME() int saved_in_runtime_ = in_runtime; in_runtime = 1
#define LEAVE_RUNTIME() in_runtime = saved_in_runtime_

#define MAX_RANGES 16
static struct { uintptr_t lo, hi; } sys_range[MAX_RANGES]; /* code of libc, ld.so, libvolipmem */
static int nsys_range;
static size_t (*real_usable_size)(void *);
static int mapped_by_us;
/* The last heap seen mapped, so that free() of a heap block after
 * punmap() is dropped instead of being handed to glibc. */
static uintptr_t heap_lo, heap_hi;

#define ALIGN_MAGIC 0x56504d414c49474eull /* header of an over-aligned block */
#define HEAP_ALIGN  16u

/* collect_ranges -- dl_iterate_phdr callback: record the executable
 * segments of each object that contains one of the probe addresses. */
static int collect_ranges(struct dl_phdr_info *info, size_t size, void *arg)
{
	const uintptr_t *probe = arg;
	(void)size;
	for (int k = 0; probe[k]; k++) {
		int hit = 0;
		for (int i = 0; i < info->dlpi_phnum && !hit; i++) {
			const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
			uintptr_t lo = info->dlpi_addr + ph->p_vaddr;
			if (ph->p_type == PT_LOAD && probe[k] >= lo && probe[k] < lo + ph->p_memsz)
				hit = 1;
		}
		if (!hit)
			continue;
		for (int i = 0; i < info->dlpi_phnum && nsys_range < MAX_RANGES; i++) {
			const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
			if (ph->p_type != PT_LOAD || !(ph->p_flags & PF_X))
				continue;
			sys_range[nsys_range].lo = info->dlpi_addr + ph->p_vaddr;
			sys_range[nsys_range].hi = info->dlpi_addr + ph->p_vaddr + ph->p_memsz;
			nsys_range++;
		}
		break;
	}
	return 0;
}

/* from_system -- whether a malloc call returning to `ret` was made by libc,
 * the loader or libvolipmem (their blocks must stay volatile). */
static inline int from_system(const void *ret)
{
	uintptr_t a = (uintptr_t)ret;
	for (int i = 0; i < nsys_range; i++)
		if (a >= sys_range[i].lo && a < sys_range[i].hi)
			return 1;
	return 0;
}

/* heap_on -- whether a pool is mapped now; remembers its range. */
static inline int heap_on(void)
{
	void *base = vp_heap_base();
	if (base == NULL)
		return 0;
	if (__atomic_load_n(&heap_lo, __ATOMIC_RELAXED) != (uintptr_t)base) {
		__atomic_store_n(&heap_hi, (uintptr_t)base + vp_heap_size(), __ATOMIC_RELAXED);
		__atomic_store_n(&heap_lo, (uintptr_t)base, __ATOMIC_RELEASE);
	}
	return 1;
}

/* in_heap_range -- whether p lies in the heap seen last (mapped or not). */
static inline int in_heap_range(const void *p)
{
	uintptr_t a = (uintptr_t)p;
	return a >= __atomic_load_n(&heap_lo, __ATOMIC_ACQUIRE) &&
	       a < __atomic_load_n(&heap_hi, __ATOMIC_RELAXED);
}

/* heap_ptr -- whether p is in the heap (mapped now or seen last). Until
 * the range is known (no allocation since pmap yet) ask the runtime. */
static inline int heap_ptr(const void *p)
{
	if (in_heap_range(p))
		return 1;
	return __atomic_load_n(&heap_lo, __ATOMIC_ACQUIRE) == 0 && heap_on() && in_heap_range(p);
}

/* persistent_for -- whether an allocation by the caller at `ret` goes to
 * the persistent heap. */
static inline int persistent_for(const void *ret)
{
	return !in_runtime && heap_on() && !from_system(ret);
}

/* heap_alloc -- a persistent block of n bytes aligned to `align` (a power
 * of two). Over-aligned blocks are carved from a larger one, with the
 * magic and the real block start in the 16 bytes below. */
static void *heap_alloc(size_t n, size_t align, int zero)
{
	void *p;
	ENTER_RUNTIME();
	if (align <= HEAP_ALIGN) {
		p = zero ? pcalloc(1, n ? n : 1) : pmalloc(n ? n : 1);
	} else if (n > SIZE_MAX - align - 2 * HEAP_ALIGN) {
		p = NULL;
	} else {
		char *raw = zero ? pcalloc(1, n + align + HEAP_ALIGN)
				 : pmalloc(n + align + HEAP_ALIGN);
		p = NULL;
		if (raw != NULL) {
			uintptr_t a = ((uintptr_t)raw + HEAP_ALIGN + align - 1) & ~(uintptr_t)(align - 1);
			uint64_t *hdr = (uint64_t *)a - 2;
			hdr[0] = ALIGN_MAGIC ^ a;
			hdr[1] = (uint64_t)(uintptr_t)raw;
			p = (void *)a;
		}
	}
	LEAVE_RUNTIME();
	if (p == NULL)
		errno = ENOMEM;
	return p;
}

/* aligned_header -- the header of an over-aligned block at p, or NULL.
 * vp_usable_size() cannot tell an interior pointer from a block start in
 * every case, so the header is recognised by its own magic (bound to p)
 * and a plausible block start below p. */
static uint64_t *aligned_header(void *p)
{
	uintptr_t a = (uintptr_t)p;
	if ((a & (HEAP_ALIGN - 1)) != 0 || a - 2 * sizeof(uint64_t) < heap_lo)
		return NULL;
	uint64_t *hdr = (uint64_t *)p - 2;
	uintptr_t raw = (uintptr_t)hdr[1];
	if (hdr[0] != (ALIGN_MAGIC ^ a) || raw >= a || a - raw > ((uintptr_t)1 << 30) || raw < heap_lo)
		return NULL;
	return hdr;
}

/* heap_block -- the pmalloc block that p (a pointer we handed out) lives
 * in, and the bytes usable from p. NULL if p is not one of ours. */
static void *heap_block(void *p, size_t *usable)
{
	ENTER_RUNTIME();
	void *blk = p;
	size_t u;
	uint64_t *hdr = aligned_header(p);
	if (hdr != NULL) {
		blk = (void *)(uintptr_t)hdr[1];
		size_t bu = vp_usable_size(blk);
		size_t skip = (size_t)((char *)p - (char *)blk);
		u = bu > skip ? bu - skip : 0;
	} else {
		u = vp_usable_size(p);
	}
	LEAVE_RUNTIME();
	if (usable)
		*usable = u;
	return u ? blk : NULL;
}

/* heap_free -- free a block in the heap range. */
static void heap_free(void *p)
{
	if (!heap_on())
		return; /* the heap is gone (punmap): nothing to free */
	void *blk = heap_block(p, NULL);
	if (blk == NULL) {
		fprintf(stderr, "volipmem_preload: free(%p): not a heap block\n", p);
		return;
	}
	if (blk != p) {
		/* clear the header (it lies inside blk) so that a block allocated
		 * at p later cannot be mistaken for an over-aligned one; the
		 * store is committed no later than pfree's own commit */
		uint64_t *hdr = (uint64_t *)p - 2;
		hdr[0] = 0;
	}
	ENTER_RUNTIME();
	pfree(blk);
	LEAVE_RUNTIME();
}

/* alloc_for -- malloc on behalf of the caller at `ret`. */
static void *alloc_for(size_t n, const void *ret)
{
	if (persistent_for(ret))
		return heap_alloc(n, HEAP_ALIGN, 0);
	return __libc_malloc(n);
}

PUBLIC void *malloc(size_t n)
{
	return alloc_for(n, __builtin_return_address(0));
}

PUBLIC void free(void *p)
{
	if (p == NULL)
		return;
	if (heap_ptr(p))
		heap_free(p);
	else
		__libc_free(p);
}

PUBLIC void *calloc(size_t n, size_t m)
{
	if (m && n > SIZE_MAX / m) {
		errno = ENOMEM;
		return NULL;
	}
	if (persistent_for(__builtin_return_address(0)))
		return heap_alloc(n * m, HEAP_ALIGN, 1);
	return __libc_calloc(n, m);
}

/* realloc_for -- realloc on behalf of the caller at `ret`. */
static void *realloc_for(void *p, size_t n, const void *ret)
{
	if (p == NULL)
		return alloc_for(n, ret);
	if (!heap_ptr(p))
		return __libc_realloc(p, n);
	if (n == 0) {
		heap_free(p);
		return NULL;
	}
	size_t usable;
	void *blk = heap_on() ? heap_block(p, &usable) : NULL;
	if (blk == NULL) {
		errno = EINVAL;
		return NULL;
	}
	if (blk == p) {
		ENTER_RUNTIME();
		void *q = prealloc(p, n);
		LEAVE_RUNTIME();
		if (q == NULL)
			errno = ENOMEM;
		return q;
	}
	/* over-aligned block: move it to a plain one */
	void *q = heap_alloc(n, HEAP_ALIGN, 0);
	if (q != NULL) {
		memcpy(q, p, usable < n ? usable : n);
		heap_free(p);
	}
	return q;
}

PUBLIC void *realloc(void *p, size_t n)
{
	return realloc_for(p, n, __builtin_return_address(0));
}

PUBLIC void *reallocarray(void *p, size_t n, size_t m)
{
	if (m && n > SIZE_MAX / m) {
		errno = ENOMEM;
		return NULL;
	}
	return realloc_for(p, n * m, __builtin_return_address(0));
}

/* memalign_for -- an aligned block for the caller at `ret`. */
static void *memalign_for(size_t align, size_t n, const void *ret)
{
	if (persistent_for(ret))
		return heap_alloc(n, align < HEAP_ALIGN ? HEAP_ALIGN : align, 0);
	return __libc_memalign(align, n);
}

PUBLIC int posix_memalign(void **out, size_t align, size_t n)
{
	if (align < sizeof(void *) || (align & (align - 1)) != 0)
		return EINVAL;
	void *p = memalign_for(align, n, __builtin_return_address(0));
	if (p == NULL)
		return ENOMEM;
	*out = p;
	return 0;
}

PUBLIC void *aligned_alloc(size_t align, size_t n)
{
	if (align == 0 || (align & (align - 1)) != 0) {
		errno = EINVAL;
		return NULL;
	}
	return memalign_for(align, n, __builtin_return_address(0));
}

PUBLIC void *memalign(size_t align, size_t n)
{
	if (align == 0 || (align & (align - 1)) != 0) {
		errno = EINVAL;
		return NULL;
	}
	return memalign_for(align, n, __builtin_return_address(0));
}

PUBLIC void *valloc(size_t n)
{
	return memalign_for((size_t)sysconf(_SC_PAGESIZE), n, __builtin_return_address(0));
}

PUBLIC void *pvalloc(size_t n)
{
	size_t pg = (size_t)sysconf(_SC_PAGESIZE);
	if (n > SIZE_MAX - pg) {
		errno = ENOMEM;
		return NULL;
	}
	n = (n + pg - 1) & ~(pg - 1);
	return memalign_for(pg, n ? n : pg, __builtin_return_address(0));
}

PUBLIC size_t malloc_usable_size(void *p)
{
	if (p == NULL)
		return 0;
	if (heap_ptr(p)) {
		size_t u = 0;
		if (heap_on())
			(void)heap_block(p, &u);
		return u;
	}
	if (real_usable_size == NULL) {
		ENTER_RUNTIME();
		real_usable_size = (size_t (*)(void *))dlsym(RTLD_NEXT, "malloc_usable_size");
		LEAVE_RUNTIME();
	}
	return real_usable_size ? real_usable_size(p) : 0;
}

PUBLIC char *strdup(const char *s)
{
	size_t n = strlen(s) + 1;
	char *d = alloc_for(n, __builtin_return_address(0));
	if (d != NULL)
		memcpy(d, s, n);
	return d;
}

PUBLIC char *strndup(const char *s, size_t max)
{
	size_t n = strnlen(s, max);
	char *d = alloc_for(n + 1, __builtin_return_address(0));
	if (d != NULL) {
		memcpy(d, s, n);
		d[n] = '\0';
	}
	return d;
}

/* parse_size -- "64M" style sizes; 0 on a malformed value. */
static size_t parse_size(const char *s)
{
	char *end;
	unsigned long long v = strtoull(s, &end, 10);
	switch (*end) {
	case 'k': case 'K': v <<= 10; end++; break;
	case 'm': case 'M': v <<= 20; end++; break;
	case 'g': case 'G': v <<= 30; end++; break;
	default: break;
	}
	return *end == '\0' ? (size_t)v : 0;
}

/* runtime_first -- whether libvolipmem's interposers (sigaction, read,
 * ...) come before libc's in the global symbol scope. A preloaded library's
 * own dependencies are loaded after the program's, so when the program
 * does not link libvolipmem itself, libc would come first: the mprotect
 * tracker would then lose its SIGSEGV handler and kernel-write wrappers.
 * Preloading "libvolipmem.so libvolipmem_preload.so" puts it first. */
static int runtime_first(void)
{
	Dl_info di;
	if (!dladdr((void *)&pmalloc, &di) || di.dli_fname == NULL)
		return 1;
	void *h = dlopen(di.dli_fname, RTLD_LAZY | RTLD_NOLOAD);
	if (h == NULL)
		return 1;
	void *ours = dlsym(h, "sigaction");
	void *seen = dlsym(RTLD_DEFAULT, "sigaction");
	dlclose(h);
	return ours == NULL || ours == seen;
}

/* preload_init -- find the system objects' code, then map VOLIPMEM_POOL.
 * Runs after libc's and libvolipmem's constructors (they are our
 * dependencies) and before the program's. */
__attribute__((constructor)) static void preload_init(void)
{
	ENTER_RUNTIME();
	uintptr_t probe[] = { (uintptr_t)&__libc_malloc, (uintptr_t)&__tls_get_addr,
			      (uintptr_t)&pmalloc, 0 };
	dl_iterate_phdr(collect_ranges, probe);
	real_usable_size = (size_t (*)(void *))dlsym(RTLD_NEXT, "malloc_usable_size");

	const char *path = getenv("VOLIPMEM_POOL");
	if (path != NULL && *path != '\0' && !runtime_first()) {
		fprintf(stderr, "volipmem_preload: libvolipmem is loaded after libc, so its "
			"signal and read() wrappers are bypassed; preload it first: "
			"LD_PRELOAD=\"libvolipmem.so libvolipmem_preload.so\". The process "
			"heap stays volatile.\n");
		path = NULL;
	}
	if (path != NULL && *path != '\0') {
		const char *sz = getenv("VOLIPMEM_POOL_SIZE");
		size_t size = sz ? parse_size(sz) : (size_t)64 << 20;
		int rc = size ? pmap(path, size, 0) : VP_E_INVAL;
		if (rc == 0) {
			mapped_by_us = 1;
			(void)heap_on(); /* learn the heap's range now */
			/* the pool is this process's: programs it starts must not
			 * try to map it too (it is locked; they would only fail) */
			unsetenv("VOLIPMEM_POOL");
		}
		else
			fprintf(stderr, "volipmem_preload: pmap(%s): %s (%s); the process "
				"heap stays volatile\n", path, vp_strerror(rc), vp_errormsg());
	}
	LEAVE_RUNTIME();
}

/* preload_fini -- make the last writes durable (relaxed mode). */
__attribute__((destructor)) static void preload_fini(void)
{
	if (!mapped_by_us || vp_heap_base() == NULL)
		return;
	ENTER_RUNTIME();
	int rc = psync();
	if (rc != 0 && rc != VP_E_INFAS && rc != VP_E_DETACHED)
		fprintf(stderr, "volipmem_preload: final psync: %s\n", vp_strerror(rc));
	LEAVE_RUNTIME();
}
