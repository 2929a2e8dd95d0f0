/* SPDX-License-Identifier: MIT */
/*
 * volipmem.h -- the public C API of libvolipmem.
 *
 * VolipMem makes a program's data persistent and crash-consistent with three
 * primitives and no per-write instrumentation:
 *
 *   pmap(path, size, flags)   map the persistent heap of a pool file at the
 *                             address recorded in the pool, recovering it
 *                             first if a crash interrupted a commit;
 *   pstart() ... pend()       a failure-atomic section (FAS): after a crash,
 *                             recovery shows all of its writes or none.
 *
 * Inside a FAS the program uses plain loads and stores on memory obtained
 * from pmalloc() or proot(). The write set is collected by the memory
 * management hardware at page granularity (see "Trackers" below).
 *
 *   #include <volipmem.h>
 *   struct bank { long balance[2]; };
 *   int main(void) {
 *       if (pmap("bank.pool", 64 << 20, 0) != 0) return 1;
 *       bool created;
 *       struct bank *b = proot("bank", sizeof *b, &created);
 *       pstart();
 *       b->balance[0] -= 100;
 *       b->balance[1] += 100;
 *       if (pend() != 0) return 1;      // durable once pend returns 0
 *       return punmap();
 *   }
 *
 * ERRORS
 *   Functions return 0 or a negative code: -errno (e.g. -ENOMEM, -EIO,
 *   -ENOSPC) or one of the VP_E_* codes below. vp_strerror(code) names the
 *   code; vp_errormsg() gives the calling thread's last detailed message
 *   (which file, which field, which address). The library never exits or
 *   aborts on bad input.
 *
 * SEMANTICS
 *   - Nesting is flat: only the outermost pstart/pend pair counts.
 *   - A commit takes every page written since the previous commit, so it
 *     runs only when no thread is inside a FAS (a quiescent point), and one
 *     commit may carry several threads' FASes (a group commit). A pending
 *     commit holds back new outermost pstart() calls until its write set is
 *     collected and copied, so a commit can never be starved.
 *   - FASes are failure-atomic, not isolated: threads synchronise shared
 *     data themselves.
 *   - DEADLOCK RULE: a thread must not block inside a FAS on something that
 *     only a thread waiting in pstart() can release. Example: thread A holds
 *     mutex M and calls pstart() while a commit is pending; thread B, inside
 *     a FAS, waits for M. B never leaves its FAS, so the commit never runs,
 *     so A never returns from pstart(). Take such locks inside the FAS, or
 *     release them before pstart().
 *   - Writes outside any FAS carry no atomicity beyond aligned 8-byte
 *     stores; they become durable at the next commit, whichever thread
 *     triggers it.
 *   - Every change the library makes itself (allocator metadata, roots) runs
 *     in an implicit FAS: pmalloc() outside a FAS is atomic too (and, in
 *     synchronous mode, costs a commit).
 *   - Locks belong in volatile memory. A lock stored in the heap would come
 *     back locked after a crash, and every lock/unlock would be a tracked
 *     write that makes its page part of the next commit.
 *   - Writes the kernel makes into the heap (read(), recv(), fread() into a
 *     heap buffer) are part of the write set. Both trackers keep pages that
 *     were not written lately read-only (mprotect: per page; uffd: per
 *     2 MiB region that saw no write for 16 commits), so the library
 *     interposes read, pread, readv, preadv, recv, recvfrom, recvmsg and
 *     fread and makes the destination writable (and counted) before the
 *     call. Other system calls that write user memory (raw syscall(),
 *     io_uring, getdents, fortified __read_chk, ...) may fail with EFAULT on
 *     such a page: store into the buffer first (e.g. memset) inside the FAS.
 *   - fork() after pmap(): the child is detached from the pool. It keeps a
 *     private copy of the heap, but commits in the child do nothing and
 *     pend()/pcommit() return VP_E_DETACHED; only the parent writes the pool.
 *   - Only one process may have a pool open; pmap() takes an exclusive lock.
 *   - Signals: the library owns SIGSEGV (both trackers use it). An
 *     application may still install its own SIGSEGV handler (sigaction and
 *     signal are interposed); it is called for faults that are not the
 *     tracker's.
 *
 * TRACKERS (VOLIPMEM_TRACKER=name)
 *   uffd      userfaultfd async write-protect + PAGEMAP_SCAN (Linux 6.7+),
 *             over 2 MiB regions made writable on their first write. The
 *             default where the kernel has it.
 *   mprotect  PROT_READ + SIGSEGV; works on any Linux. The fallback
 *             (VOLIPMEM_VERBOSE=1 says why uffd was not usable).
 *   full      every page counts as written; a test oracle.
 *   vm-dirty, vm-wp
 *             the process runs as a KVM guest that owns its page table
 *             (libvolimem, docs/VM.md): hardware D bits, or read-only guest
 *             PTEs with an in-guest fault handler. Never chosen
 *             automatically. pmap() must be called while the process has
 *             one thread; threads created afterwards run in the VM; fork
 *             in the VM fails with ENOSYS. Needs a standard /dev/kvm: on a
 *             kvm-pvm host or without KVM, pmap() fails with VP_E_TRACKER
 *             and one line saying so.
 *   An unknown name makes pmap() fail with VP_E_TRACKER and a message that
 *   lists the available ones.
 *
 * DURABILITY MODES
 *   VP_SYNC (default): pend() returns once the FAS's group is durable.
 *   VP_RELAXED: pend() returns at once; a committer thread commits every
 *   interval_ms milliseconds; psync() waits until every write made so far is
 *   durable. A crash never shows part of a FAS in either mode.
 *   Relaxed mode bounds how far durability may lag: with B = max(4 N,
 *   N + 50 ms) for interval N, an outermost pstart() waits (asking for the
 *   commit) while some FAS that ended more than B ago is not durable. So at
 *   every pstart() return, every FAS that ended more than B earlier is
 *   durable; a crash loses at most B plus the commit in flight. A nested
 *   pstart() and a forked child never wait; a failed commit counts as
 *   finished. B is measured with CLOCK_MONOTONIC_COARSE (to one tick).
 *   VOLIPMEM_COMMIT_INTERVAL_MS=N selects relaxed mode with period N (0 =
 *   synchronous).
 *
 * ENVIRONMENT
 *   See docs/API.md for the full table of VOLIPMEM_* options.
 */
#ifndef VOLIPMEM_H
#define VOLIPMEM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif
#if defined(__GNUC__)
#pragma GCC visibility push(default)
#endif

#define VOLIPMEM_VERSION_MAJOR 0
#define VOLIPMEM_VERSION_MINOR 1
#define VOLIPMEM_VERSION_PATCH 0

/* ---- error codes (negative; errno values are returned as -errno) ---- */
#define VP_E_BASE      (-30000)
#define VP_E_BADMAGIC   (VP_E_BASE - 1)  /* not a VolipMem pool            */
#define VP_E_VERSION    (VP_E_BASE - 2)  /* pool format version unsupported */
#define VP_E_CHECKSUM   (VP_E_BASE - 3)  /* superblock checksum mismatch   */
#define VP_E_TRUNCATED  (VP_E_BASE - 4)  /* file shorter than its layout   */
#define VP_E_LAYOUT     (VP_E_BASE - 5)  /* layout fields out of range     */
#define VP_E_ADDRINUSE  (VP_E_BASE - 6)  /* heap address already mapped   */
#define VP_E_LOCKED     (VP_E_BASE - 7)  /* pool open in another process   */
#define VP_E_LOGCORRUPT (VP_E_BASE - 8)  /* committed log fails checksum   */
#define VP_E_HEAPCORRUPT (VP_E_BASE - 9) /* allocator metadata inconsistent */
#define VP_E_NOTMAPPED  (VP_E_BASE - 10) /* no pool is mapped              */
#define VP_E_MAPPED     (VP_E_BASE - 11) /* a pool is already mapped       */
#define VP_E_NOFAS      (VP_E_BASE - 12) /* pend() without pstart()        */
#define VP_E_INFAS      (VP_E_BASE - 13) /* not allowed inside a FAS       */
#define VP_E_TRACKER    (VP_E_BASE - 14) /* tracker unknown or unusable    */
#define VP_E_BROKEN     (VP_E_BASE - 15) /* an earlier commit failed after
                                            its commit point; remap to
                                            finish recovery               */
#define VP_E_DETACHED   (VP_E_BASE - 16) /* forked child: pool detached    */
#define VP_E_ROOTSIZE   (VP_E_BASE - 17) /* root exists with another size  */
#define VP_E_NOROOT     (VP_E_BASE - 18) /* no root of that name           */
#define VP_E_INVAL      (VP_E_BASE - 19) /* invalid argument               */
#define VP_E_TOOSMALL   (VP_E_BASE - 20) /* heap size below the minimum    */
#define VP_E_LAST       (VP_E_BASE - 21)

/* ---- pmap flags ---- */
#define VP_CREATE_ONLY  0x1u  /* fail with -EEXIST if the pool exists      */
#define VP_OPEN_ONLY    0x2u  /* fail with -ENOENT if the pool is absent   */
#define VP_SPARSE       0x4u  /* reserve the redo log on demand, not at create */

/* pmap -- create the pool at `path` with `heap_size` bytes of heap if it does
 * not exist (heap_size is rounded up to a page), else open, validate and
 * recover it and map its heap at the address recorded in it. heap_size is
 * ignored for an existing pool unless larger than its heap, in which case
 * the heap grows in place, crash-safely, at the same address (pointers stay
 * valid): by at least 1 MiB, up to the address space reserved at creation
 * (VOLIPMEM_RESERVE, default 64 GiB; beyond it pmap fails with VP_E_INVAL);
 * `volipmem grow PATH SIZE` does the same from the shell. Returns 0 or a
 * negative code; nothing is written to a pool that fails validation. One
 * pool per process. A new pool gets its name only when complete, so a
 * crash during creation leaves nothing or the finished pool; if another
 * process creates it meanwhile, pmap opens that one (VP_CREATE_ONLY: fails
 * with -EEXIST). Where the file system lacks O_TMPFILE the pool is built at
 * PATH.creating.PID, and pmap removes such a file once its creator is gone
 * (docs/FORMAT.md, "Creation"). */
int pmap(const char *path, size_t heap_size, unsigned flags);

/* punmap -- commit what is pending, stop tracking and unmap the heap.
 * Returns the status of that final commit. pmap() may be called again. */
int punmap(void);

/* pstart -- begin a failure-atomic section (nesting is flat). May block
 * while a commit collects its write set, and in relaxed mode while an ended
 * FAS older than B is not durable (see DURABILITY MODES, DEADLOCK RULE). Before pmap()
 * it prints an error and does nothing; the matching pend() then returns
 * VP_E_NOTMAPPED. */
void pstart(void);

/* pend -- end a FAS. In synchronous mode returns 0 once the FAS is durable.
 * On failure (-EIO, -ENOSPC, ...) the working copy keeps every write, the
 * pool still holds the state of the last successful commit (a crash now
 * recovers that state), and the failed write set is retried by the next
 * commit. If the failure came after the commit point (the log was durable
 * but the home image could not be updated), the FAS is durable, the pool is
 * recovered at the next pmap(), and every later commit in this process
 * returns VP_E_BROKEN. pend() without pstart() returns VP_E_NOFAS. */
int pend(void);

/* pcommit -- make every write made so far durable. Waits until no thread is
 * inside a FAS; calling it inside a FAS returns VP_E_INFAS. */
int pcommit(void);

/* psync -- like pcommit(): returns once everything written so far is
 * durable (in relaxed mode it waits for, or triggers, the next commit). */
int psync(void);

#define VP_SYNC     0
#define VP_RELAXED  1
/* vp_set_durability -- choose VP_SYNC or VP_RELAXED with a commit period of
 * interval_ms (>= 1) milliseconds. May be called before or after pmap().
 * Called before, it sets the mode pmap() starts in, kept for later pmap()
 * calls too, unless VOLIPMEM_COMMIT_INTERVAL_MS is set: the variable wins. */
int vp_set_durability(int mode, unsigned interval_ms);

/* ---- allocation (thread-safe; each call is an implicit FAS) ---- */
/* Blocks are 16-byte aligned. Out of memory returns NULL with errno ENOMEM
 * and leaves the heap consistent. pfree() of a pointer not returned by
 * pmalloc() prints an error and leaves the heap unchanged. */
void *pmalloc(size_t size);
void  pfree(void *ptr);
void *pcalloc(size_t nmemb, size_t size);
void *prealloc(void *ptr, size_t size);
/* vp_usable_size -- bytes usable in a block from pmalloc (0 if not one). */
size_t vp_usable_size(const void *ptr);
/* vp_in_heap -- whether ptr lies inside the mapped persistent heap. */
bool vp_in_heap(const void *ptr);

/* ---- roots ---- */
#define VP_ROOT_NAME_MAX 63
/* proot -- find the root called `name` (at most VP_ROOT_NAME_MAX bytes), or
 * create it zeroed with `size` bytes. *created (if not NULL) says which.
 * Asking for an existing root with a different size fails (NULL, message in
 * vp_errormsg()). */
void *proot(const char *name, size_t size, bool *created);
/* vp_root_remove -- delete a root and free its object. VP_E_NOROOT if
 * absent. */
int vp_root_remove(const char *name);
/* vp_root_list -- call fn once per root (in creation order) until it
 * returns non-zero; returns the number of roots visited. */
typedef int (*vp_root_fn)(const char *name, void *obj, size_t size, void *arg);
int vp_root_list(vp_root_fn fn, void *arg);

/* ---- statistics ---- */
struct vp_stats {
	uint64_t commits;        /* commits that logged at least one line   */
	uint64_t empty_commits;  /* commits that found nothing written      */
	uint64_t fas;            /* outermost FASes ended                   */
	uint64_t pages_logged;   /* pages with lines (or whole) in the log  */
	uint64_t bytes_logged;   /* bytes written to the log (data + meta)  */
	uint64_t faults;         /* tracker faults: mprotect, per page;     
	                            uffd, per 2 MiB region heated        */
	uint64_t failed_commits; /* commits that returned an error          */
	uint64_t ns_collect;     /* time in step 1, collect the write set   */
	uint64_t ns_prepare;     /* time in step 2, reserve log entries     */
	uint64_t ns_log;         /* time in step 3, copy + persist the log  */
	uint64_t ns_update;      /* time in step 4, update the home image   */
	uint64_t ns_stall;       /* time other threads were held in pstart  */
	uint64_t heap_size;      /* bytes of heap                           */
	uint64_t heap_used;      /* bytes handed out by the allocator       */
	char tracker[16];        /* name of the tracker in use              */
	char medium[16];         /* "pmem", "pmem-forced" or "file"         */
	/* relaxed-mode bound (see DURABILITY MODES) */
	uint64_t ns_bound;       /* B in ns; 0 in synchronous mode          */
	uint64_t bound_waits;    /* pstart() calls that waited for an
	                            overdue group to become durable         */
	uint64_t ns_bound_wait;  /* total time of those waits               */
	uint64_t bytes_persisted;/* bytes the commits stored to the pool
	                            medium: log entries, descriptors, commit
	                            records, home image                     */
	uint64_t pages_collected;/* pages in the write sets the commits
	                            collected, before the line diff drops
	                            the unchanged ones (so >= pages_logged) */
	/* verify mode (VOLIPMEM_VERIFY=1; both 0 when it is off) */
	uint64_t verify_pages_checked; /* private pages of the working copy
	                            compared with the home image            */
	uint64_t verify_missed_lines;  /* changed 64-byte lines the tracker
	                            did not record (each reported on stderr,
	                            and its page logged anyway)             */
	/* the pause (see docs/COMMIT.md, "Concurrent copy") */
	uint64_t ns_pause;       /* time commits held the gate closed (collect,
	                            prepare, and the copy unless concurrent,
	                            or the snapshot in its place);
	                            per commit: ns_pause / (commits +
	                            empty_commits + failed_commits)         */
	uint64_t cow_commits;    /* commits whose copy ran while threads ran */
	uint64_t cow_faults;     /* pages a writer (or a kernel write) saved
	                            into the log during such a copy         */
	uint64_t drains;         /* ordering points the commits made: one
	                            sfence (PMEM) or msync (file) each; a
	                            commit makes 2 (slots + record A, then
	                            record B + home image), 2 more when the
	                            log wraps (once per 64 small groups), 2
	                            more when a helper thread copies half
	                            of a large write set (its slots, its
	                            home pages), 1 more with
	                            VOLIPMEM_CHECKSUM_PAGES=off (docs/
	                            COMMIT.md)                              */
	uint64_t snap_commits;   /* commits whose copy read a DRAM snapshot
	                            of the recorded lines (cc tracker), with
	                            threads running; docs/COMMIT.md          */
	uint64_t shadow_hits;    /* pages step 3 compared with a DRAM copy of
	                            their committed image instead of the
	                            home image (page trackers;
	                            VOLIPMEM_SHADOW_PAGES, docs/COMMIT.md)   */
};
int vp_stats(struct vp_stats *out);
/* vp_stats_reset -- zero the counters. */
void vp_stats_reset(void);

/* ---- errors ---- */
const char *vp_strerror(int code);
/* vp_errormsg -- this thread's last detailed error message ("" if none). */
const char *vp_errormsg(void);

/* vp_tracker_name -- the tracker in use (NULL before pmap). */
const char *vp_tracker_name(void);
/* vp_heap_base / vp_heap_size -- the mapped heap (NULL/0 before pmap). */
void *vp_heap_base(void);
size_t vp_heap_size(void);

#if defined(__GNUC__)
#pragma GCC visibility pop
#endif
#ifdef __cplusplus
}
#endif
#endif /* VOLIPMEM_H */
