/* SPDX-License-Identifier: MIT */
/*
 * sys.c -- system calls made in the guest, run by the host side.
 *
 * The guest's pointers are the host's (guest-virtual == host-virtual), so
 * most calls are made as they are. Those that change the address space
 * (mmap, munmap, mprotect, mremap, brk) also change the memslots and the
 * guest page table before the guest sees their result. Those that write
 * user memory through the host's page table (read, pread64, readv, preadv,
 * preadv2, recvfrom, recvmsg) add the pages they wrote to the write set:
 * the guest PTE never sees that write. Any other call given a pointer into
 * the tracked range adds the page it points to and the next, unless it is
 * known to only read there (mark_pointers): stat, getrandom, pipe, ... .
 * Buffers reached only through other structures (io_uring, aio, the
 * iovecs of preadv in recvmmsg) are not seen. Those that take translations away
 * run with the world stopped (vm.c). clone of a thread starts a vCPU
 * (vm__clone), exit frees it; signal calls go to sig.c. fork, vfork,
 * clone of a process, execve and arch_prctl(SET_FS) are not supported:
 * -ENOSYS and one line on stderr. clone3 is -ENOSYS silently: glibc then
 * uses clone.
 */
#include <errno.h>
#include <sched.h>
#include <signal.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include "vm_internal.h"

static void mark_iov(const struct iovec *iov, long cnt, long bytes)
{
	for (long i = 0; i < cnt && bytes > 0; i++) {
		long n = (long)iov[i].iov_len < bytes ? (long)iov[i].iov_len : bytes;
		vm__mark_written((uint64_t)iov[i].iov_base, (uint64_t)n);
		bytes -= n;
	}
}

static const char *unsupported(const struct vm__frame *f)
{
	const uint64_t thread = CLONE_VM | CLONE_THREAD | CLONE_SIGHAND;
	switch (f->nr) {
	case SYS_clone:
		return (f->a[0] & thread) != thread || (f->a[0] & CLONE_VFORK) ?
		       "clone of a process (fork, posix_spawn, system)" : NULL;
	case SYS_fork: return "fork";
	case SYS_vfork: return "vfork";
	case SYS_execve: return "execve";
	case SYS_execveat: return "execveat";
	default: return NULL;
	}
}

/* input_only -- calls that only read user memory (or, for futex, touch
 * the word only for PI operations). Any other call with a pointer into the
 * tracked range may have written there through the host's page table. */
static bool input_only(uint64_t nr, const uint64_t *a)
{
	switch (nr) {
	case SYS_write: case SYS_pwrite64: case SYS_writev: case SYS_pwritev:
	case SYS_pwritev2: case SYS_sendto: case SYS_sendmsg: case SYS_open:
	case SYS_openat: case SYS_access: case SYS_faccessat: case SYS_unlink:
	case SYS_unlinkat: case SYS_mkdir: case SYS_rename: case SYS_renameat:
	case SYS_renameat2: case SYS_madvise: case SYS_msync: case SYS_mlock:
	case SYS_munlock: case SYS_mincore:
		return true;
	case SYS_futex: {
		unsigned op = (unsigned)a[1] & 127;   /* less FUTEX_PRIVATE_FLAG */
		return !(op == 6 || op == 7 || op == 8 || op == 11 || op == 12 || op == 13);
	}
	default:
		return false;
	}
}

/* mark_pointers -- after a call not known to the table below: every
 * argument that points into the tracked range marks its page and the next
 * (a structure the kernel filled may cross a page boundary). Extra pages
 * only cost a copy; a missed one would be a lost write. */
static void mark_pointers(const struct vm__frame *f)
{
	if (!vm__s.mode || input_only(f->nr, f->a))
		return;
	for (int i = 0; i < 6; i++)
		if (f->a[i] - vm__s.tbase < vm__s.tlen)
			vm__mark_written(f->a[i], VM_PAGE);
}

/* takes_away -- does syscall nr (with args a) remove or narrow guest
 * translations? Those run with the world stopped. */
static bool takes_away(uint64_t nr, const uint64_t *a)
{
	switch (nr) {
	case SYS_munmap:
	case SYS_mprotect:
	case SYS_mremap:
	case SYS_brk:
		return true;
	case SYS_mmap:
		return (a[3] & MAP_FIXED) != 0;
	default:
		return false;
	}
}

/* vm__forward -- run c's guest syscall (or hypercall) in f on the host;
 * the result goes to f->ret, which the LSTAR stub loads into RAX. */
void vm__forward(struct vm__cpu *c, struct vm__frame *f)
{
	struct vm__state *s = &vm__s;
	uint64_t *a = f->a;
	const char *u = unsupported(f);
	long r;

	__atomic_add_fetch(&s->st.syscalls, 1, __ATOMIC_RELAXED);
	if (u) {
		vm__say("volimem: %s in the VM is not supported: -ENOSYS", u);
		f->ret = (uint64_t)-ENOSYS;
		return;
	}
	switch (f->nr) {
	case VM_HC_TRACK:
		f->ret = (uint64_t)vm__track_host(a[0], a[1], (int)a[2]);
		return;
	case VM_HC_COLLECT:
		f->ret = (uint64_t)vm__collect_host((void **)a[0], a[1]);
		return;
	case VM_HC_UNTRACK:
		f->ret = (uint64_t)vm__untrack_host();
		return;
	case 435:   /* clone3: glibc falls back to clone */
		f->ret = (uint64_t)-ENOSYS;
		return;
	case SYS_clone:
		f->ret = (uint64_t)vm__clone(c, f);
		return;
	case SYS_exit:
		__atomic_sub_fetch(&s->nthreads, 1, __ATOMIC_SEQ_CST);
		vm__exit_thread(&c->busy, (long)a[0]);
	case SYS_rt_sigaction:
		if (vm__sig_action(f))
			return;
		break;
	case SYS_rt_sigprocmask:
		f->ret = (uint64_t)vm__sig_mask(f);
		return;
	case SYS_rt_sigreturn:
		vm__sig_return(c, f);
		return;
	case SYS_arch_prctl:
		if (a[0] == 0x1001 || a[0] == 0x1002) {   /* ARCH_SET_GS, ARCH_SET_FS */
			vm__say("volimem: arch_prctl(SET_FS/SET_GS) in the guest is not supported: -ENOSYS");
			f->ret = (uint64_t)-ENOSYS;
			return;
		}
		break;
	}

	bool mm = takes_away(f->nr, a);
	bool maps = mm || f->nr == SYS_mmap;
	if (maps) {
		vm__lock();
		if (mm)
			vm__stop_world();
	}
	r = vm__sys6((long)f->nr, (long)a[0], (long)a[1], (long)a[2], (long)a[3], (long)a[4], (long)a[5]);
	f->ret = (uint64_t)r;

	int e = 0;
	if (r >= 0 || r <= -4096) {
		switch (f->nr) {
		case SYS_mmap:
			e = vm__map((uint64_t)r, (uint64_t)r + a[1], (int)a[2]);
			break;
		case SYS_munmap:
			vm__unmap(a[0], a[0] + a[1]);
			break;
		case SYS_mprotect:
			e = vm__map(a[0], a[0] + a[1], (int)a[2]);
			break;
		case SYS_mremap: {
			int prot = vm__prot_of(a[0]);
			if ((uint64_t)r != a[0])
				vm__unmap(a[0], a[0] + a[1]);
			else if (a[2] < a[1])
				vm__unmap(a[0] + a[2], a[0] + a[1]);
			e = vm__map((uint64_t)r, (uint64_t)r + a[2], prot);
			break;
		}
		case SYS_brk: {
			uint64_t old = vm__page_up(s->brk), now = vm__page_up((uint64_t)r);
			if (now > old)
				e = vm__map(old, now, PROT_READ | PROT_WRITE);
			else if (now < old)
				vm__unmap(now, old);
			s->brk = (uint64_t)r;
			break;
		}
		case SYS_read:
		case SYS_pread64:
		case SYS_recvfrom:
			vm__mark_written(a[1], (uint64_t)r);
			break;
		case SYS_readv:
		case SYS_preadv:
		case SYS_preadv2:
			mark_iov((const struct iovec *)a[1], (long)a[2], r);
			break;
		case SYS_recvmsg: {
			const struct msghdr *m = (const struct msghdr *)a[1];
			mark_iov(m->msg_iov, (long)m->msg_iovlen, r);
			break;
		}
		default:
			mark_pointers(f);
			break;
		}
	}
	if (maps) {
		if (mm)
			vm__start_world();
		vm__unlock();
	}
	if (e < 0)
		vm__die(SIGABRT, "cannot mirror syscall %llu's mapping change into the guest: %s",
			(unsigned long long)f->nr, vm_errmsg());
}
