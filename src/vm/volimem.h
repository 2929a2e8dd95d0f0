/* SPDX-License-Identifier: MIT */
/*
 * volimem.h -- libvolimem: the process enters a KVM guest and keeps running
 * its own code there (guest-virtual == host-virtual, CPL3, system calls
 * forwarded to the host), and the library collects the pages written in
 * one registered range by the MMU (D bits or write protection).
 *
 * vm_enter is called while the process has one thread; every thread it
 * creates afterwards runs as a vCPU of its own. Signal handlers run in the
 * guest. fork, vfork, posix_spawn/system, execve and arch_prctl(SET_FS)
 * made in the guest return -ENOSYS with a line on stderr; one real-time
 * signal (SIGRTMAX - 2) belongs to the library. The runtime's vm-dirty and
 * vm-wp trackers (src/track/vm.c) are built on this API. docs/VM.md says
 * what works, what does not, and how kvm-pvm and TCG differ from VT-x.
 */
#ifndef VOLIMEM_H
#define VOLIMEM_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Write-set collection modes for vm_track(). */
enum vm_track_mode {
	VM_DIRTY = 1, /* hardware D bits in the guest PTEs, no fault at all */
	VM_WP = 2,    /* guest PTEs read-only; an in-guest CPL0 #PF handler records */
};

/* Counters, updated by the library; readable in and out of the guest. */
struct vm_stats {
	uint64_t exits;      /* KVM_RUN returns to the host side */
	uint64_t syscalls;   /* system calls forwarded to the host */
	uint64_t wp_faults;  /* VM_WP first writes recorded in the guest */
	uint64_t host_marks; /* pages added because a forwarded syscall wrote them */
};

/* vm_enter -- create a VM and a vCPU and continue the calling thread in
 * it, at CPL3, from the point where vm_enter returns. Returns 0 (now in the
 * guest) or a negative errno with vm_errmsg() naming the cause (the
 * vm_probe codes below; -EBUSY: already in; -EOPNOTSUPP: more than one
 * thread). */
int vm_enter(void);

/* vm_probe -- 0 if vm_enter could work here (a usable /dev/kvm), else the
 * negative errno vm_enter would fail with, with vm_errmsg() saying why in
 * one line: -ENODEV /dev/kvm is kvm-pvm (refused: docs/VM.md) or no KVM
 * device, -ENOENT no /dev/kvm (on a kvm-pvm host or not), -EACCES/-EPERM
 * not allowed to open it, -EINVAL another API version. VOLIMEM_HOST_ROOT=DIR looks for
 * DIR/dev/kvm and DIR/sys/module/kvm_pvm instead (tests). */
int vm_probe(void);

/* vm_leave -- return the thread to the host and destroy the VM. -EBUSY
 * while other threads still run in it. */
int vm_leave(void);

/* vm_in_guest -- 1 if the calling thread runs in the VM, else 0. */
int vm_in_guest(void);

/* vm_track -- start collecting the pages written in [base, base + len),
 * both page-aligned, with mode VM_DIRTY or VM_WP. One range per VM. Any
 * thread, in the guest or not, once the VM exists. Returns 0 or a negative
 * errno. */
int vm_track(void *base, size_t len, int mode);

/* vm_collect -- store up to max addresses of pages of the tracked range
 * written since vm_track or the previous vm_collect into pages[], forget
 * them, and re-arm them (D clear or read-only, guest TLB flushed). Pages
 * beyond max stay recorded for the next call. Returns the count stored or a
 * negative errno. */
long vm_collect(void **pages, size_t max);

/* vm_untrack -- stop tracking the range (its pages writable again). */
int vm_untrack(void);

/* vm_get_stats -- copy the counters. */
void vm_get_stats(struct vm_stats *st);

/* vm_errmsg -- why the last failing call failed (static buffer). */
const char *vm_errmsg(void);

#ifdef __cplusplus
}
#endif
#endif
