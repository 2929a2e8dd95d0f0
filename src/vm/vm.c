/* SPDX-License-Identifier: MIT */
/*
 * vm.c -- the VM, its vCPU, entering and leaving, and the host side's exit
 * loop.
 *
 * vm_enter builds everything while still native: the VM and vCPU 0 (CPUID
 * from KVM_GET_SUPPORTED_CPUID, set before the sregs or EFER.LME/NXE is
 * refused), the arena, the mirror of /proc/self/maps, GDT/IDT/TSS, the
 * syscall MSRs, XCR0 (glibc chose its SIMD code from the host's CPUID), FS
 * base, and a TSC offset of 0 so the vDSO's clock reads host time. Then
 * vm__switch moves the thread's registers into the vCPU and the host side
 * onto a stack of its own in the arena, and the guest returns from
 * vm_enter. The loop serves exits until vm_leave's hypercall, then resumes
 * the thread natively.
 *
 * Threads: a clone(CLONE_VM|CLONE_THREAD) made in the guest becomes a host
 * thread made with the same flags, TLS and tid pointers, which runs a vCPU
 * of its own (a free slot's, reused, or a new one) starting where the
 * parent's syscall returns, with RAX 0 and the new stack; its host side
 * runs on a stack of the slot. exit frees the slot.
 *
 * TLB shootdown: whoever takes translations away (munmap, mprotect, a
 * collect) holds vm__lock, stops the world -- every other vCPU out of
 * KVM_RUN (immediate_exit + a kick signal) and held at its entry -- makes
 * the change, bumps vm__s.gen, and lets the world go. A vCPU whose gen is
 * stale reloads CR3 before it runs CPL3 code again: through the LSTAR
 * stub's flush flag when it stopped in a syscall, else through an injected
 * interrupt (vector 32) once its interrupt window is open.
 */
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <linux/futex.h>
#include <linux/kvm.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>
#include "vm_internal.h"

struct vm__state vm__s = { .kvm = -1, .vm = -1 };
__thread struct vm__cpu *vm__self __attribute__((tls_model("initial-exec")));
static char vm__msg[512];

int vm__cpu_root(struct vm__cpu *c);

int vm__slots_init(void);
int vm__map_arena(void);
int vm__pt_init(void);

const char *vm_errmsg(void)
{
	return vm__msg;
}

/* vm__err -- record why a call fails; returns code (negative errno). */
int vm__err(int code, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(vm__msg, sizeof vm__msg, fmt, ap);
	va_end(ap);
	return code;
}

/* vm__say -- one line on stderr by raw write (no stdio lock, no errno:
 * the guest may be inside stdio when the host side speaks). */
void vm__say(const char *fmt, ...)
{
	char b[512];
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(b, sizeof b - 1, fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	if ((size_t)n > sizeof b - 2)
		n = sizeof b - 2;
	b[n++] = '\n';
	vm__sys6(SYS_write, 2, (long)b, n, 0, 0, 0);
}

/* vm__die -- end the process with sig, as the fault would have natively
 * (default action, unblocked), after saying why. */
void vm__die(int sig, const char *fmt, ...)
{
	char b[400];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(b, sizeof b, fmt, ap);
	va_end(ap);
	vm__say("volimem: %s", b);
	struct { void *h; unsigned long flags; void *restorer; uint64_t mask; } sa = { SIG_DFL, 0, 0, 0 };
	vm__sys6(SYS_rt_sigaction, sig, (long)&sa, 0, 8, 0, 0);
	uint64_t set = 1ull << (sig - 1);
	vm__sys6(SYS_rt_sigprocmask, SIG_UNBLOCK, (long)&set, 0, 8, 0, 0);
	vm__sys6(SYS_tgkill, vm__sys6(SYS_getpid, 0, 0, 0, 0, 0, 0),
		 vm__sys6(SYS_gettid, 0, 0, 0, 0, 0, 0), sig, 0, 0, 0);
	vm__sys6(SYS_exit_group, 128 + sig, 0, 0, 0, 0, 0);
	__builtin_unreachable();
}

/* kioctl -- ioctl by raw syscall: -errno, errno untouched. */
static long kioctl(int fd, unsigned long req, void *arg)
{
	return vm__sys6(SYS_ioctl, fd, (long)req, (long)arg, 0, 0, 0);
}

/* set_msrs -- KVM_SET_MSRS for n entries (n <= 4); returns how many were
 * set, or a negative errno. struct kvm_msrs ends in a flexible array, so
 * the entries follow it in one suitably aligned buffer. */
static long set_msrs(int vcpu, const struct kvm_msr_entry *e, unsigned n)
{
	union {
		struct kvm_msrs h;
		uint8_t b[sizeof(struct kvm_msrs) + 4 * sizeof(struct kvm_msr_entry)];
	} m;
	if (n > 4)
		return -EINVAL;
	memset(&m, 0, sizeof m);
	m.h.nmsrs = n;
	memcpy(m.b + sizeof(struct kvm_msrs), e, n * sizeof *e);
	return kioctl(vcpu, KVM_SET_MSRS, &m);
}

static long futex(int *uaddr, int op, int val)
{
	return vm__sys6(SYS_futex, (long)uaddr, op, val, 0, 0, 0);
}

/* vm__lock -- the VM's lock (0 free, 1 held, 2 held with waiters): page
 * table, memslots, arena pool, vCPU slots, tracking state. Raw futexes:
 * the host side must not touch errno, which is the guest's. */
void vm__lock(void)
{
	int z = 0;
	if (__atomic_compare_exchange_n(&vm__s.lock, &z, 1, false, __ATOMIC_ACQUIRE, __ATOMIC_RELAXED))
		return;
	while (__atomic_exchange_n(&vm__s.lock, 2, __ATOMIC_ACQUIRE) != 0)
		futex(&vm__s.lock, FUTEX_WAIT_PRIVATE, 2);
}

void vm__unlock(void)
{
	if (__atomic_exchange_n(&vm__s.lock, 0, __ATOMIC_RELEASE) == 2)
		futex(&vm__s.lock, FUTEX_WAKE_PRIVATE, 1);
}

/* vm__stop_world -- (lock held) every vCPU but the caller's out of KVM_RUN
 * and held at its entry until vm__start_world. */
void vm__stop_world(void)
{
	struct vm__state *s = &vm__s;
	__atomic_store_n(&s->stopping, 1, __ATOMIC_SEQ_CST);
	long pid = vm__sys6(SYS_getpid, 0, 0, 0, 0, 0, 0);
	for (int i = 0; i < s->ncpus; i++) {
		struct vm__cpu *c = s->cpus[i];
		if (c == vm__self)
			continue;
		for (unsigned spin = 0; __atomic_load_n(&c->in_guest, __ATOMIC_SEQ_CST); spin++) {
			c->run->immediate_exit = 1;
			if (spin % 64 == 0)
				vm__sys6(SYS_tgkill, pid, c->tid, vm__sig_kick(), 0, 0, 0);
			vm__sys6(SYS_sched_yield, 0, 0, 0, 0, 0, 0);
		}
	}
}

void vm__start_world(void)
{
	__atomic_store_n(&vm__s.stopping, 0, __ATOMIC_SEQ_CST);
	futex(&vm__s.stopping, FUTEX_WAKE_PRIVATE, 1 << 30);
}

/* threads -- the process's thread count, from /proc/self/status. */
static int threads(void)
{
	FILE *f = fopen("/proc/self/status", "r");
	char line[256];
	int n = -1;
	while (f && fgets(line, sizeof line, f))
		if (sscanf(line, "Threads: %d", &n) == 1)
			break;
	if (f)
		fclose(f);
	return n;
}

/* supported_cpuid -- KVM_GET_SUPPORTED_CPUID, grown until it fits (arena memory). */
static struct kvm_cpuid2 *supported_cpuid(int kvm)
{
	for (int n = 64; n <= 4096; n *= 2) {
		struct kvm_cpuid2 *c = vm__pool_alloc(sizeof *c + (size_t)n * sizeof c->entries[0]);
		if (!c)
			return NULL;
		c->nent = (uint32_t)n;
		if (kioctl(kvm, KVM_GET_SUPPORTED_CPUID, c) == 0)
			return c;
	}
	return NULL;
}

static struct kvm_cpuid_entry2 *cpuid_leaf(struct kvm_cpuid2 *c, uint32_t fn, uint32_t idx)
{
	for (uint32_t i = 0; i < c->nent; i++)
		if (c->entries[i].function == fn && c->entries[i].index == idx)
			return &c->entries[i];
	return NULL;
}

/* setup_tables -- the GDT (Linux's selectors and one TSS descriptor: each
 * vCPU loads its own TSS base through KVM_SET_SREGS, which does not read
 * the descriptor) and the IDT: the 32 exception stubs and the flush
 * vector, all on IST1. */
static void setup_tables(void)
{
	uint8_t *a = vm__s.arena;
	uint64_t *gdt = (uint64_t *)(void *)(a + VM_A_GDT);
	gdt[2] = 0x00af9b000000ffffull;   /* 0x10 kernel code64 */
	gdt[3] = 0x00cf93000000ffffull;   /* 0x18 kernel data */
	gdt[4] = 0x00cffb000000ffffull;   /* 0x20 user code32 (unused) */
	gdt[5] = 0x00cff3000000ffffull;   /* 0x2b user data */
	gdt[6] = 0x00affb000000ffffull;   /* 0x33 user code64 */
	gdt[8] = 0x67 | (0x89ull << 40);  /* 0x40 TSS (base per vCPU) */
	uint64_t *idt = (uint64_t *)(void *)(a + VM_A_IDT);
	for (int v = 0; v <= VM_IRQ_FLUSH; v++) {
		uint64_t h = v < 32 ? vm__exc_table[v] : (uint64_t)vm__flush_irq;
		idt[2 * v] = (h & 0xffff) | (0x10ull << 16) | (1ull << 32) | (0x8eull << 40) |
			     (((h >> 16) & 0xffff) << 48);
		idt[2 * v + 1] = h >> 32;
	}
}

/* set_cpl3 -- c's segment state for CPL3 with Linux's selectors, FS base
 * fs, its own TSS and root. */
static int set_cpl3(struct vm__cpu *c, uint64_t fs)
{
	struct vm__state *s = &vm__s;
	struct kvm_sregs sr;
	long r;
	if ((r = kioctl(c->fd, KVM_GET_SREGS, &sr)) < 0)
		return vm__err((int)r, "volimem: KVM_GET_SREGS: %s", strerror((int)-r));
	struct kvm_segment cs = { .limit = 0xffffffff, .selector = 0x33, .type = 11,
				  .present = 1, .dpl = 3, .s = 1, .l = 1, .g = 1 };
	struct kvm_segment ds = { .limit = 0xffffffff, .selector = 0x2b, .type = 3,
				  .present = 1, .dpl = 3, .db = 1, .s = 1, .g = 1 };
	sr.cs = cs;
	sr.ds = sr.es = sr.ss = ds;
	sr.fs = ds;
	sr.fs.selector = 0;
	sr.fs.base = fs;
	sr.gs = ds;
	sr.gs.selector = 0;
	sr.gs.base = 0;
	sr.tr = (struct kvm_segment){ .base = (uint64_t)c + VM_CPU_TSS, .limit = 0x67,
				      .selector = 0x40, .type = 11, .present = 1 };
	sr.ldt = (struct kvm_segment){ .type = 2, .present = 1, .unusable = 1 };
	sr.gdt.base = (uint64_t)(s->arena + VM_A_GDT);
	sr.gdt.limit = 10 * 8 - 1;
	sr.idt.base = (uint64_t)(s->arena + VM_A_IDT);
	sr.idt.limit = (VM_IRQ_FLUSH + 1) * 16 - 1;
	sr.cr3 = c->root_gpa;
	struct kvm_cpuid_entry2 *l1 = cpuid_leaf(s->cpuid, 1, 0);
	bool xsave = l1 && (l1->ecx & (1u << 26));
	sr.cr4 = (1u << 5) | (1u << 9) | (1u << 10) | (xsave ? 1u << 18 : 0);
	sr.cr0 = 0x80050033;   /* PG WP NE ET MP PE: ring 0 honours read-only PTEs */
	sr.efer = 0xd01;       /* NXE LMA LME SCE */
	memset(sr.interrupt_bitmap, 0, sizeof sr.interrupt_bitmap);
	if ((r = kioctl(c->fd, KVM_SET_SREGS, &sr)) < 0)
		return vm__err((int)r, "volimem: KVM_SET_SREGS (long mode, CPL3): %s", strerror((int)-r));
	return 0;
}

/* setup_cpu -- c's CPUID, XCR0 (glibc picked its SIMD code from the host's
 * CPUID), the syscall MSRs pointing at vm__lstar, the guest TSC equal to
 * the host's, its TSS (IST1 = RSP0 = the top of its block) and root. */
static int setup_cpu(struct vm__cpu *c)
{
	struct vm__state *s = &vm__s;
	long r;
	if ((r = kioctl(c->fd, KVM_SET_CPUID2, s->cpuid)) < 0)
		return vm__err((int)r, "volimem: KVM_SET_CPUID2: %s", strerror((int)-r));
	uint8_t *tss = (uint8_t *)c + VM_CPU_TSS;
	uint64_t kst = (uint64_t)c + VM_CPU_LEN;
	memcpy(tss + 4, &kst, 8);      /* RSP0 */
	memcpy(tss + 0x24, &kst, 8);   /* IST1 */
	uint16_t iomap = 0x68;
	memcpy(tss + 0x66, &iomap, 2);
	if ((r = vm__cpu_root(c)) < 0)
		return (int)r;
	if ((r = set_cpl3(c, 0)) < 0)
		return (int)r;

	struct kvm_cpuid_entry2 *l1 = cpuid_leaf(s->cpuid, 1, 0);
	if (l1 && (l1->ecx & (1u << 26))) {
		uint32_t lo, hi;
		__asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
		struct kvm_cpuid_entry2 *d = cpuid_leaf(s->cpuid, 0xd, 0);
		uint64_t sup = d ? ((uint64_t)d->edx << 32 | d->eax) : 3;
		struct kvm_xcrs x = { .nr_xcrs = 1 };
		x.xcrs[0].xcr = 0;
		x.xcrs[0].value = ((uint64_t)hi << 32 | lo) & sup;
		if ((r = kioctl(c->fd, KVM_SET_XCRS, &x)) < 0)
			return vm__err((int)r, "volimem: KVM_SET_XCRS 0x%llx: %s",
				       (unsigned long long)x.xcrs[0].value, strerror((int)-r));
	}

	const struct kvm_msr_entry sys[3] = {
		{ .index = 0xc0000081, .data = (0x23ull << 48) | (0x10ull << 32) },
		{ .index = 0xc0000082, .data = (uint64_t)vm__lstar },
		{ .index = 0xc0000084, .data = 0x47700 },
	};
	if ((r = set_msrs(c->fd, sys, 3)) != 3)
		return vm__err(r < 0 ? (int)r : -EINVAL, "volimem: KVM_SET_MSRS STAR/LSTAR/SFMASK: %ld", r);

	/* Guest TSC == host TSC, so the vDSO's clock agrees with the host's. */
	uint64_t zero = 0;
	struct kvm_device_attr at = { .group = KVM_VCPU_TSC_CTRL, .attr = KVM_VCPU_TSC_OFFSET,
				      .addr = (uint64_t)&zero };
	if (kioctl(c->fd, KVM_SET_DEVICE_ATTR, &at) < 0) {
		uint32_t lo, hi;
		__asm__ volatile("rdtsc" : "=a"(lo), "=d"(hi));
		const struct kvm_msr_entry tsc = { .index = 0x10, .data = (uint64_t)hi << 32 | lo };
		set_msrs(c->fd, &tsc, 1);
	}
	return 0;
}

/* cpu_get -- (lock held) a free vCPU slot, marked busy: a reused one or a
 * new one (block, vCPU, kvm_run, registers' fixed part). with_stack: the
 * slot needs a host stack (a thread created in the guest). */
static struct vm__cpu *cpu_get(bool with_stack)
{
	struct vm__state *s = &vm__s;
	struct vm__cpu *c = NULL;
	for (int i = 0; i < s->ncpus && !c; i++) {
		int z = 0;
		if (__atomic_compare_exchange_n(&s->cpus[i]->busy, &z, 1, false, __ATOMIC_ACQUIRE,
						__ATOMIC_RELAXED))
			c = s->cpus[i];
	}
	if (!c) {
		if (s->ncpus == VM_MAX_CPUS) {
			vm__err(-EAGAIN, "volimem: %d vCPUs (threads in the VM) is the limit", VM_MAX_CPUS);
			return NULL;
		}
		c = vm__pool_alloc(VM_CPU_LEN);
		if (!c) {
			vm__err(-ENOMEM, "volimem: arena full (vCPU block)");
			return NULL;
		}
		c->idx = s->ncpus;
		c->busy = 1;
		long r = kioctl(s->vm, KVM_CREATE_VCPU, (void *)(long)c->idx);
		if (r < 0) {
			vm__err((int)r, "volimem: KVM_CREATE_VCPU %d: %s", c->idx, strerror((int)-r));
			return NULL;
		}
		c->fd = (int)r;
		void *run = (void *)vm__sys6(SYS_mmap, 0, (long)s->run_size, PROT_READ | PROT_WRITE,
					     MAP_SHARED, c->fd, 0);
		if ((unsigned long)run > -4096ul) {
			vm__err((int)(long)run, "volimem: mmap kvm_run: %s", strerror((int)-(long)run));
			vm__sys6(SYS_close, c->fd, 0, 0, 0, 0, 0);
			return NULL;
		}
		c->run = run;
		if (setup_cpu(c) < 0) {
			vm__sys6(SYS_munmap, (long)run, (long)s->run_size, 0, 0, 0, 0);
			vm__sys6(SYS_close, c->fd, 0, 0, 0, 0, 0);
			return NULL;
		}
		s->cpus[s->ncpus++] = c;   /* published last: stop_world reads it */
	}
	if (with_stack && !c->hstack_top) {
		uint8_t *st = vm__pool_alloc(VM_CPU_HSTACK_LEN);
		if (!st) {
			__atomic_store_n(&c->busy, 0, __ATOMIC_RELEASE);
			vm__err(-ENOMEM, "volimem: arena full (a host stack for a new thread)");
			return NULL;
		}
		c->hstack_top = st + VM_CPU_HSTACK_LEN;
	}
	__atomic_add_fetch(&s->nthreads, 1, __ATOMIC_SEQ_CST);
	c->tid = 0;
	c->sigpend = 0;
	c->flushed_gen = 0;
	c->flush_pending = true;
	memset(&c->frame, 0, sizeof c->frame);
	memset(&c->exc, 0, sizeof c->exc);
	c->run->immediate_exit = 0;
	c->run->request_interrupt_window = 0;
	return c;
}

/* destroy -- close the VM and free the arena; keeps the counters. */
static void destroy(void)
{
	struct vm__state *s = &vm__s;
	for (int i = 0; i < s->ncpus; i++) {
		munmap(s->cpus[i]->run, s->run_size);
		close(s->cpus[i]->fd);
	}
	if (s->vm >= 0)
		close(s->vm);
	if (s->kvm >= 0)
		close(s->kvm);
	if (s->arena_map)
		munmap(s->arena_map, s->arena_map_len);
	s->st.wp_faults += vm__wp.faults;
	memset(&vm__wp, 0, sizeof vm__wp);
	vm__self = NULL;
	vm__sig_fini();
	*s = (struct vm__state){ .kvm = -1, .vm = -1, .st = s->st };
}

/* create -- the VM, the arena and the page table, up to the vCPUs. */
static int create(void)
{
	struct vm__state *s = &vm__s;
	long r;
	s->kvm = vm__open_kvm();   /* host.c: refuses kvm-pvm, checks the API version */
	if (s->kvm < 0)
		return s->kvm;
	s->arena_map_len = VM_ARENA_LEN + VM_2M;
	void *m = mmap(NULL, s->arena_map_len, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (m == MAP_FAILED)
		return vm__err(-errno, "volimem: mmap of the 1 GiB arena: %s", strerror(errno));
	s->arena_map = m;
	s->arena = (uint8_t *)(((uintptr_t)m + VM_2M - 1) & ~(VM_2M - 1));

	s->cpuid = supported_cpuid(s->kvm);
	if (!s->cpuid)
		return vm__err(-EINVAL, "volimem: KVM_GET_SUPPORTED_CPUID failed");
	struct kvm_cpuid_entry2 *ext = cpuid_leaf(s->cpuid, 0x80000008, 0);
	unsigned maxphy = ext ? (ext->eax & 0xff) : 36;
	s->gpa_next = 1ull << 32;
	s->gpa_limit = 1ull << maxphy;

	if ((r = kioctl(s->kvm, KVM_CREATE_VM, 0)) < 0)
		return vm__err((int)r, "volimem: KVM_CREATE_VM: %s", strerror((int)-r));
	s->vm = (int)r;
	if ((r = vm__slots_init()) < 0 || (r = vm__pt_init()) < 0 || (r = vm__map_arena()) < 0)
		return (int)r;
	if ((r = kioctl(s->kvm, KVM_GET_VCPU_MMAP_SIZE, 0)) < 0)
		return vm__err((int)r, "volimem: KVM_GET_VCPU_MMAP_SIZE: %s", strerror((int)-r));
	s->run_size = (size_t)r;
	setup_tables();
	return vm__sig_init();
}

/* grow_stack -- touch 1 MiB below the stack pointer while native, so the
 * main thread's [stack] VMA covers it before it is mirrored: in the guest
 * a fault below the VMA would not grow it. */
static __attribute__((noinline)) void grow_stack(void)
{
	uint64_t sp = (uint64_t)__builtin_frame_address(0);
	FILE *f = fopen("/proc/self/maps", "r");
	char line[512];
	uint64_t lo = 0, hi = 0;
	while (f && fgets(line, sizeof line, f)) {
		unsigned long long a, b;
		if (strstr(line, "[stack]") && sscanf(line, "%llx-%llx", &a, &b) == 2)
			lo = a, hi = b;
	}
	if (f)
		fclose(f);
	if (!(sp >= lo && sp < hi))
		return;   /* not the main thread's stack: fixed size */
	for (uint64_t a = vm__page_down(sp) - 256 * VM_PAGE; a < lo; a += VM_PAGE)
		(void)*(volatile char *)a;
	struct rlimit rl;
	vm__s.stack_lo = vm__page_down(sp) - 256 * VM_PAGE < lo ? vm__page_down(sp) - 256 * VM_PAGE : lo;
	vm__s.stack_max = getrlimit(RLIMIT_STACK, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY ?
			  rl.rlim_cur : 1ul << 30;
	vm__s.stack_max = vm__s.stack_max > hi - vm__s.stack_lo ? vm__s.stack_max - (hi - vm__s.stack_lo) : 0;
}

/* grow_guest_stack -- a not-present #PF just below the main thread's
 * [stack], within RLIMIT_STACK: touch the address natively (the kernel
 * grows the VMA, or kills us with SIGSEGV exactly as it would have), map
 * the new pages into the guest and let the stub retry the access. */
static bool grow_guest_stack(struct vm__cpu *c)
{
	struct vm__state *s = &vm__s;
	uint64_t a = vm__page_down(c->exc.cr2);
	if (c->exc.vector != 14 || (c->exc.err & 1) || !s->stack_lo || a >= s->stack_lo ||
	    s->stack_lo - a > s->stack_max)
		return false;
	(void)*(volatile char *)a;
	vm__lock();
	int r = vm__map(a, s->stack_lo, PROT_READ | PROT_WRITE);
	if (r == 0) {
		s->stack_max -= s->stack_lo - a;
		s->stack_lo = a;
	}
	vm__unlock();
	if (r < 0)
		return false;
	c->exc.retry = 1;   /* the stub reloads CR3 and retries */
	c->flushed_gen = __atomic_load_n(&s->gen, __ATOMIC_SEQ_CST);
	return true;
}

int vm_in_guest(void)
{
	return vm__self != NULL;
}

void vm_get_stats(struct vm_stats *st)
{
	*st = vm__s.st;
	st->wp_faults += vm__wp.faults;
}

int vm_enter(void)
{
	struct vm__state *s = &vm__s;
	if (vm__self || s->vm >= 0)
		return vm__err(-EBUSY, "volimem: vm_enter: %s",
			       vm__self ? "this thread is already in the VM" :
			       "the process is already in a VM (one per process)");
	int n = threads();
	if (n != 1)
		return vm__err(-EOPNOTSUPP, "volimem: vm_enter: the process has %d threads; enter the VM "
			       "before creating any (threads created in the VM become vCPUs)", n);
	grow_stack();
	const char *tf = secure_getenv("VOLIMEM_TRACE_FAULTS");
	s->trace_faults = tf && !strcmp(tf, "1");
	int r = create();
	if (r < 0)
		goto fail;
	s->brk = (uint64_t)vm__sys6(SYS_brk, 0, 0, 0, 0, 0, 0);
	unsigned long fs = 0;
	vm__sys6(SYS_arch_prctl, 0x1003 /* ARCH_GET_FS */, (long)&fs, 0, 0, 0, 0);
	if ((r = vm__mirror_maps()) < 0)
		goto fail;
	struct vm__cpu *c = cpu_get(false);
	if (!c) {
		r = -ENOMEM;
		goto fail;
	}
	if ((r = set_cpl3(c, fs)) < 0)
		goto fail;
	c->tid = (int)vm__sys6(SYS_gettid, 0, 0, 0, 0, 0, 0);
	c->flushed_gen = s->gen;
	c->flush_pending = false;
	vm__self = c;
	vm__switch(s->arena + VM_A_HSTACK_TOP, c);
	return 0;   /* in the guest */
fail:
	destroy();
	return r;
}

int vm_leave(void)
{
	if (!vm__self)
		return vm__err(-EINVAL, "volimem: vm_leave: not in the VM");
	/* (the vCPU blocks are in the arena, which CPL3 cannot read) */
	int busy = __atomic_load_n(&vm__s.nthreads, __ATOMIC_ACQUIRE);
	if (busy > 1)
		return vm__err(-EBUSY, "volimem: vm_leave: %d other threads still run in the VM; "
			       "the VM is left by the last one", busy - 1);
	vm__leave_call();   /* an ordinary call: only callee-saved registers survive */
	destroy();   /* native again, on the original stack */
	return 0;
}

static const char *exit_name(uint32_t r)
{
	switch (r) {
	case KVM_EXIT_IO: return "KVM_EXIT_IO";
	case KVM_EXIT_HLT: return "KVM_EXIT_HLT";
	case KVM_EXIT_MMIO: return "KVM_EXIT_MMIO";
	case KVM_EXIT_SHUTDOWN: return "KVM_EXIT_SHUTDOWN (triple fault)";
	case KVM_EXIT_FAIL_ENTRY: return "KVM_EXIT_FAIL_ENTRY";
	case KVM_EXIT_INTERNAL_ERROR: return "KVM_EXIT_INTERNAL_ERROR";
	default: return "an unexpected exit";
	}
}

/* fault -- a guest exception the guest could not handle: the signal the
 * process would have got natively, to the application's handler if it
 * has one (then false: go on), else the process dies of it. */
static void fault(struct vm__cpu *c)
{
	const struct vm__exc *e = &c->exc;
	int sig = SIGSEGV;
	switch (e->vector) {
	case 0: case 16: case 19: sig = SIGFPE; break;
	case 1: case 3: sig = SIGTRAP; break;
	case 6: sig = SIGILL; break;
	case 17: sig = SIGBUS; break;
	}
	if (vm__sig_fault(c, sig))
		return;
	if (e->vector == 14) {
		uint64_t *pte = vm__pte(e->cr2, false);
		vm__die(sig, "guest #PF at rip 0x%llx, address 0x%llx (error 0x%llx, guest PTE 0x%llx, "
			"vCPU %d) -> signal %d", (unsigned long long)e->rip, (unsigned long long)e->cr2,
			(unsigned long long)e->err, pte ? (unsigned long long)*pte : 0ull, c->idx, sig);
	}
	vm__die(sig, "guest exception %llu at rip 0x%llx (error 0x%llx, cs 0x%llx) -> signal %d",
		(unsigned long long)e->vector, (unsigned long long)e->rip,
		(unsigned long long)e->err, (unsigned long long)e->cs, sig);
}

/* enter_guest -- the entry protocol: wait out a world stop, then make a
 * stale TLB reload before any CPL3 code runs. how: where the vCPU stopped
 * (VM_DELIVER_SYSCALL: in the LSTAR stub, which can reload CR3 itself). */
static void enter_guest(struct vm__cpu *c, int how)
{
	struct vm__state *s = &vm__s;
	/* Signals still pending: delivered now if the vCPU stands at CPL3 and
	 * can take them (each on the frame of the one before, as the kernel
	 * nests them), else as soon as its interrupt window opens. */
	if (c->sigpend) {
		if (how != VM_DELIVER_SYSCALL && c->run->if_flag && c->run->ready_for_interrupt_injection)
			while (c->sigpend)
				vm__sig_deliver(c, VM_DELIVER_REGS);
		else
			c->run->request_interrupt_window = 1;
	}
	for (;;) {
		__atomic_store_n(&c->in_guest, 1, __ATOMIC_SEQ_CST);
		if (!__atomic_load_n(&s->stopping, __ATOMIC_SEQ_CST))
			break;
		__atomic_store_n(&c->in_guest, 0, __ATOMIC_SEQ_CST);
		futex(&s->stopping, FUTEX_WAIT_PRIVATE, 1);
	}
	uint64_t g = __atomic_load_n(&s->gen, __ATOMIC_SEQ_CST);
	if (g != c->flushed_gen) {
		c->flushed_gen = g;
		c->flush_pending = true;
	}
	if (!c->flush_pending)
		return;
	if (how == VM_DELIVER_SYSCALL) {
		c->frame.flush = 1;
		c->flush_pending = false;
	} else if (c->run->if_flag && c->run->ready_for_interrupt_injection) {
		struct kvm_interrupt irq = { .irq = VM_IRQ_FLUSH };
		long r = kioctl(c->fd, KVM_INTERRUPT, &irq);
		if (r < 0)
			vm__die(SIGABRT, "KVM_INTERRUPT (TLB flush): %s", strerror((int)-r));
		c->flush_pending = false;
	} else {
		c->run->request_interrupt_window = 1;
	}
}

/* run_loop -- serve c's exits until vm_leave's hypercall. */
static _Noreturn void run_loop(struct vm__cpu *c)
{
	struct vm__state *s = &vm__s;
	int how = 0;   /* where the vCPU stands: VM_DELIVER_SYSCALL or not */
	for (;;) {
		enter_guest(c, how);
		long r = kioctl(c->fd, KVM_RUN, NULL);
		__atomic_store_n(&c->in_guest, 0, __ATOMIC_SEQ_CST);
		c->run->immediate_exit = 0;
		__atomic_add_fetch(&s->st.exits, 1, __ATOMIC_RELAXED);
		struct kvm_run *run = c->run;
		how = VM_DELIVER_REGS;
		if (r == -EINTR || r == -EAGAIN) {
			if (c->sigpend && run->if_flag && run->ready_for_interrupt_injection)
				vm__sig_deliver(c, VM_DELIVER_REGS);
			continue;
		}
		if (r < 0)
			vm__die(SIGABRT, "KVM_RUN: %s", strerror((int)-r));
		if (run->exit_reason == KVM_EXIT_IRQ_WINDOW_OPEN) {
			run->request_interrupt_window = 0;
			if (c->sigpend)
				vm__sig_deliver(c, VM_DELIVER_REGS);
			continue;
		}
		if (run->exit_reason == KVM_EXIT_IO && run->io.port == VM_PORT_SYSCALL) {
			how = VM_DELIVER_SYSCALL;
			if (c->frame.nr == (uint64_t)VM_HC_LEAVE) {
				vm__self = NULL;
				vm__resume_native(&c->frame);
			}
			vm__forward(c, &c->frame);
			if (c->frame.nr == SYS_rt_sigreturn)
				how = VM_DELIVER_REGS;   /* CPL3 state set from the signal frame */
			if (c->sigpend && vm__sig_deliver(c, how))
				how = VM_DELIVER_REGS;
			continue;
		}
		if (run->exit_reason == KVM_EXIT_IO && run->io.port == VM_PORT_EXC) {
			if (grow_guest_stack(c))
				continue;
			fault(c);   /* returns only into the application's handler */
			continue;
		}
		struct kvm_regs regs;
		kioctl(c->fd, KVM_GET_REGS, &regs);
		vm__die(SIGABRT, "internal error: %s (%u) at rip 0x%llx%s", exit_name(run->exit_reason),
			run->exit_reason, (unsigned long long)regs.rip,
			run->exit_reason == KVM_EXIT_INTERNAL_ERROR ? " (emulation failed)" : "");
	}
}

/* vm__host_loop -- vCPU 0's host side, on the arena's stack: load the
 * registers vm__switch saved, then serve exits. */
void vm__host_loop(struct vm__cpu *c)
{
	struct kvm_regs regs = {
		.rip = c->frame.rip, .rsp = c->frame.rsp, .rflags = 2,
		.rbx = c->frame.rbx, .rbp = c->frame.rbp, .r12 = c->frame.r12,
		.r13 = c->frame.r13, .r14 = c->frame.r14, .r15 = c->frame.r15,
	};
	long r = kioctl(c->fd, KVM_SET_REGS, &regs);
	if (r < 0)
		vm__die(SIGABRT, "KVM_SET_REGS at entry: %s", strerror((int)-r));
	run_loop(c);
}

/* a new thread's start: what its vCPU begins with */
struct vm__start {
	struct vm__cpu *c;
	struct kvm_regs regs;
	struct kvm_fpu fpu;
	uint64_t fs;
};

/* thread_main -- a thread created in the guest, on its slot's host stack
 * with the guest thread's TLS: load its vCPU and serve its exits. */
static int thread_main(void *arg)
{
	struct vm__start *st = arg;
	struct vm__cpu *c = st->c;
	vm__self = c;
	__atomic_store_n(&c->tid, (int)vm__sys6(SYS_gettid, 0, 0, 0, 0, 0, 0), __ATOMIC_SEQ_CST);
	long r;
	if (set_cpl3(c, st->fs) < 0 || (r = kioctl(c->fd, KVM_SET_REGS, &st->regs)) < 0 ||
	    (r = kioctl(c->fd, KVM_SET_FPU, &st->fpu)) < 0)
		vm__die(SIGABRT, "starting vCPU %d for a new thread: %s", c->idx, vm_errmsg());
	c->flushed_gen = __atomic_load_n(&vm__s.gen, __ATOMIC_SEQ_CST);
	c->flush_pending = false;   /* a new vCPU's TLB holds nothing */
	run_loop(c);
}

/* vm__clone -- SYS_clone of a thread (CLONE_VM | CLONE_THREAD) made by c's
 * guest, stopped in the LSTAR stub: returns the new tid or -errno. */
long vm__clone(struct vm__cpu *c, struct vm__frame *f)
{
	struct vm__state *s = &vm__s;
	uint64_t flags = f->a[0];
	vm__lock();
	struct vm__cpu *n = cpu_get(true);
	vm__unlock();
	if (!n) {
		vm__say("%s", vm_errmsg());
		return -EAGAIN;
	}
	/* The start block lives on the new thread's host stack, written
	 * before the thread exists. */
	struct vm__start *st = (struct vm__start *)(void *)((uint64_t)(n->hstack_top - sizeof *st) & ~63ull);
	st->c = n;
	long r = kioctl(c->fd, KVM_GET_REGS, &st->regs);
	if (r >= 0)
		r = kioctl(c->fd, KVM_GET_FPU, &st->fpu);
	if (r < 0) {
		__atomic_sub_fetch(&s->nthreads, 1, __ATOMIC_SEQ_CST);
		__atomic_store_n(&n->busy, 0, __ATOMIC_RELEASE);
		return r;
	}
	st->regs.rax = 0;
	st->regs.rip = st->regs.rcx = f->rip;
	st->regs.rflags = st->regs.r11 = f->rflags;
	if (f->a[1])
		st->regs.rsp = f->a[1];
	struct kvm_sregs sr;
	kioctl(c->fd, KVM_GET_SREGS, &sr);
	st->fs = (flags & CLONE_SETTLS) ? f->a[4] : sr.fs.base;
	r = clone(thread_main, st, (int)flags, st, (pid_t *)f->a[2], (void *)f->a[4], (pid_t *)f->a[3]);
	if (r < 0) {
		r = -errno;
		__atomic_sub_fetch(&s->nthreads, 1, __ATOMIC_SEQ_CST);
		__atomic_store_n(&n->busy, 0, __ATOMIC_RELEASE);
	}
	return r;
}
