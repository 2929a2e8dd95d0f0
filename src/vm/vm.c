/* SPDX-License-Identifier: MIT */
/*
 * vm.c -- the VM, its vCPU, entering and leaving, and the host side's exit
 * loop.
 *
 * vm_enter builds everything while still native: the VM and vCPU (CPUID
 * from KVM_GET_SUPPORTED_CPUID, set before the sregs or EFER.LME/NXE is
 * refused), the arena, the mirror of /proc/self/maps, GDT/IDT/TSS, the
 * syscall MSRs, XCR0 (glibc chose its SIMD code from the host's CPUID), FS
 * base, and a TSC offset of 0 so the vDSO's clock reads host time. Then
 * vm__switch moves the thread's registers into the vCPU and the host side
 * onto a stack of its own in the arena, and the guest returns from
 * vm_enter. The loop serves exits until vm_leave's hypercall, then resumes
 * the thread natively.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/kvm.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>
#include "vm_internal.h"

struct vm__state vm__s = { .kvm = -1, .vm = -1, .vcpu = -1 };
static char vm__msg[512];

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

/* open_kvm -- /dev/kvm, or a message that names why not. */
static int open_kvm(void)
{
	int fd = open("/dev/kvm", O_RDWR | O_CLOEXEC);
	if (fd >= 0)
		return fd;
	int e = errno;
	if (e == ENOENT && access("/sys/module/kvm_pvm", F_OK) == 0)
		return vm__err(-ENOENT, "volimem: no /dev/kvm: this is a kvm-pvm host "
			       "(/sys/module/kvm_pvm is loaded) without a KVM device; libvolimem needs "
			       "a standard KVM (VT-x/AMD-V), e.g. tests/vm/kvm-guest.sh (docs/VM.md)");
	if (e == ENOENT)
		return vm__err(-ENOENT, "volimem: no /dev/kvm on this machine (no KVM module loaded)");
	return vm__err(-e, "volimem: cannot open /dev/kvm: %s", strerror(e));
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

/* setup_tables -- GDT (Linux's selectors), TSS with IST1 = RSP0 = the CPL0
 * stack, IDT with the 32 exception stubs on IST1. */
static void setup_tables(void)
{
	uint8_t *a = vm__s.arena;
	uint64_t *gdt = (uint64_t *)(void *)(a + VM_A_GDT);
	gdt[2] = 0x00af9b000000ffffull;   /* 0x10 kernel code64 */
	gdt[3] = 0x00cf93000000ffffull;   /* 0x18 kernel data */
	gdt[4] = 0x00cffb000000ffffull;   /* 0x20 user code32 (unused) */
	gdt[5] = 0x00cff3000000ffffull;   /* 0x2b user data */
	gdt[6] = 0x00affb000000ffffull;   /* 0x33 user code64 */
	uint64_t tss = (uint64_t)(a + VM_A_TSS);
	gdt[8] = 0x67 | ((tss & 0xffffff) << 16) | (0x89ull << 40) | ((tss >> 24 & 0xff) << 56);
	gdt[9] = tss >> 32;
	uint64_t kst = (uint64_t)(a + VM_A_KSTACK_TOP);
	memcpy(a + VM_A_TSS + 4, &kst, 8);      /* RSP0 */
	memcpy(a + VM_A_TSS + 0x24, &kst, 8);   /* IST1 */
	uint16_t iomap = 0x68;
	memcpy(a + VM_A_TSS + 0x66, &iomap, 2);
	uint64_t *idt = (uint64_t *)(void *)(a + VM_A_IDT);
	for (int v = 0; v < 32; v++) {
		uint64_t h = vm__exc_table[v];
		idt[2 * v] = (h & 0xffff) | (0x10ull << 16) | (1ull << 32) | (0x8eull << 40) |
			     (((h >> 16) & 0xffff) << 48);
		idt[2 * v + 1] = h >> 32;
	}
}

/* setup_cpu -- long mode at CPL3 with Linux's selectors, SSE/AVX state
 * enabled (glibc picked its SIMD code from the host's CPUID), the syscall
 * MSRs pointing at vm__lstar, and the guest TSC equal to the host's. */
static int setup_cpu(struct kvm_cpuid2 *cpuid)
{
	struct vm__state *s = &vm__s;
	long r;
	struct kvm_cpuid_entry2 *l1 = cpuid_leaf(cpuid, 1, 0);
	bool xsave = l1 && (l1->ecx & (1u << 26));

	struct kvm_sregs sr;
	if ((r = kioctl(s->vcpu, KVM_GET_SREGS, &sr)) < 0)
		return vm__err((int)r, "volimem: KVM_GET_SREGS: %s", strerror((int)-r));
	struct kvm_segment cs = { .limit = 0xffffffff, .selector = 0x33, .type = 11,
				  .present = 1, .dpl = 3, .s = 1, .l = 1, .g = 1 };
	struct kvm_segment ds = { .limit = 0xffffffff, .selector = 0x2b, .type = 3,
				  .present = 1, .dpl = 3, .db = 1, .s = 1, .g = 1 };
	sr.cs = cs;
	sr.ds = sr.es = sr.ss = ds;
	sr.fs = ds;
	sr.fs.selector = 0;
	sr.fs.base = s->fs_base;
	sr.gs = ds;
	sr.gs.selector = 0;
	sr.gs.base = 0;
	sr.tr = (struct kvm_segment){ .base = (uint64_t)(s->arena + VM_A_TSS), .limit = 0x67,
				      .selector = 0x40, .type = 11, .present = 1 };
	sr.ldt = (struct kvm_segment){ .type = 2, .present = 1, .unusable = 1 };
	sr.gdt.base = (uint64_t)(s->arena + VM_A_GDT);
	sr.gdt.limit = 10 * 8 - 1;
	sr.idt.base = (uint64_t)(s->arena + VM_A_IDT);
	sr.idt.limit = 32 * 16 - 1;
	sr.cr3 = s->pml4_gpa;
	sr.cr4 = (1u << 5) | (1u << 9) | (1u << 10) | (xsave ? 1u << 18 : 0);
	sr.cr0 = 0x80050033;   /* PG WP NE ET MP PE: ring 0 honours read-only PTEs */
	sr.efer = 0xd01;       /* NXE LMA LME SCE */
	if ((r = kioctl(s->vcpu, KVM_SET_SREGS, &sr)) < 0)
		return vm__err((int)r, "volimem: KVM_SET_SREGS (long mode, CPL3): %s", strerror((int)-r));

	if (xsave) {
		uint32_t lo, hi;
		__asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
		struct kvm_cpuid_entry2 *d = cpuid_leaf(cpuid, 0xd, 0);
		uint64_t sup = d ? ((uint64_t)d->edx << 32 | d->eax) : 3;
		struct kvm_xcrs x = { .nr_xcrs = 1 };
		x.xcrs[0].xcr = 0;
		x.xcrs[0].value = ((uint64_t)hi << 32 | lo) & sup;
		if ((r = kioctl(s->vcpu, KVM_SET_XCRS, &x)) < 0)
			return vm__err((int)r, "volimem: KVM_SET_XCRS 0x%llx: %s",
				       (unsigned long long)x.xcrs[0].value, strerror((int)-r));
	}

	const struct kvm_msr_entry sys[3] = {
		{ .index = 0xc0000081, .data = (0x23ull << 48) | (0x10ull << 32) },
		{ .index = 0xc0000082, .data = (uint64_t)vm__lstar },
		{ .index = 0xc0000084, .data = 0x47700 },
	};
	if ((r = set_msrs(s->vcpu, sys, 3)) != 3)
		return vm__err(r < 0 ? (int)r : -EINVAL, "volimem: KVM_SET_MSRS STAR/LSTAR/SFMASK: %ld", r);

	/* Guest TSC == host TSC, so the vDSO's clock agrees with the host's. */
	uint64_t zero = 0;
	struct kvm_device_attr at = { .group = KVM_VCPU_TSC_CTRL, .attr = KVM_VCPU_TSC_OFFSET,
				      .addr = (uint64_t)&zero };
	if (kioctl(s->vcpu, KVM_SET_DEVICE_ATTR, &at) < 0) {
		uint32_t lo, hi;
		__asm__ volatile("rdtsc" : "=a"(lo), "=d"(hi));
		const struct kvm_msr_entry tsc = { .index = 0x10, .data = (uint64_t)hi << 32 | lo };
		set_msrs(s->vcpu, &tsc, 1);
	}
	return 0;
}

/* destroy -- close the VM and free the arena; keeps the counters. */
static void destroy(void)
{
	struct vm__state *s = &vm__s;
	if (s->run)
		munmap(s->run, s->run_size);
	if (s->vcpu >= 0)
		close(s->vcpu);
	if (s->vm >= 0)
		close(s->vm);
	if (s->kvm >= 0)
		close(s->kvm);
	if (s->arena_map)
		munmap(s->arena_map, s->arena_map_len);
	s->st.wp_faults += vm__wp.faults;
	memset(&vm__wp, 0, sizeof vm__wp);
	memset(&vm__frame, 0, sizeof vm__frame);
	*s = (struct vm__state){ .kvm = -1, .vm = -1, .vcpu = -1, .st = s->st };
}

/* create -- everything up to the registers. */
static int create(void)
{
	struct vm__state *s = &vm__s;
	long r;
	s->kvm = open_kvm();
	if (s->kvm < 0)
		return s->kvm;
	if ((r = kioctl(s->kvm, KVM_GET_API_VERSION, NULL)) != KVM_API_VERSION)
		return vm__err(-EINVAL, "volimem: KVM API version %ld, need %d", r, KVM_API_VERSION);
	s->arena_map_len = VM_ARENA_LEN + VM_2M;
	void *m = mmap(NULL, s->arena_map_len, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (m == MAP_FAILED)
		return vm__err(-errno, "volimem: mmap of the 1 GiB arena: %s", strerror(errno));
	s->arena_map = m;
	s->arena = (uint8_t *)(((uintptr_t)m + VM_2M - 1) & ~(VM_2M - 1));

	struct kvm_cpuid2 *cpuid = supported_cpuid(s->kvm);
	if (!cpuid)
		return vm__err(-EINVAL, "volimem: KVM_GET_SUPPORTED_CPUID failed");
	struct kvm_cpuid_entry2 *ext = cpuid_leaf(cpuid, 0x80000008, 0);
	unsigned maxphy = ext ? (ext->eax & 0xff) : 36;
	s->gpa_next = 1ull << 32;
	s->gpa_limit = 1ull << maxphy;

	if ((r = kioctl(s->kvm, KVM_CREATE_VM, 0)) < 0)
		return vm__err((int)r, "volimem: KVM_CREATE_VM: %s", strerror((int)-r));
	s->vm = (int)r;
	if ((r = vm__slots_init()) < 0 || (r = vm__pt_init()) < 0 || (r = vm__map_arena()) < 0)
		return (int)r;
	if ((r = kioctl(s->vm, KVM_CREATE_VCPU, 0)) < 0)
		return vm__err((int)r, "volimem: KVM_CREATE_VCPU: %s", strerror((int)-r));
	s->vcpu = (int)r;
	if ((r = kioctl(s->kvm, KVM_GET_VCPU_MMAP_SIZE, 0)) < 0)
		return vm__err((int)r, "volimem: KVM_GET_VCPU_MMAP_SIZE: %s", strerror((int)-r));
	s->run_size = (size_t)r;
	s->run = mmap(NULL, s->run_size, PROT_READ | PROT_WRITE, MAP_SHARED, s->vcpu, 0);
	if (s->run == MAP_FAILED) {
		s->run = NULL;
		return vm__err(-errno, "volimem: mmap kvm_run: %s", strerror(errno));
	}
	if ((r = kioctl(s->vcpu, KVM_SET_CPUID2, cpuid)) < 0)
		return vm__err((int)r, "volimem: KVM_SET_CPUID2: %s", strerror((int)-r));
	setup_tables();
	return setup_cpu(cpuid);
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
static bool grow_guest_stack(void)
{
	struct vm__state *s = &vm__s;
	uint64_t a = vm__page_down(vm__exc.cr2);
	if (vm__exc.vector != 14 || (vm__exc.err & 1) || !s->stack_lo || a >= s->stack_lo ||
	    s->stack_lo - a > s->stack_max)
		return false;
	(void)*(volatile char *)a;
	if (vm__map(a, s->stack_lo, PROT_READ | PROT_WRITE) < 0)
		return false;
	s->stack_max -= s->stack_lo - a;
	s->stack_lo = a;
	vm__exc.retry = 1;
	return true;
}

int vm_in_guest(void)
{
	return vm__s.in_guest;
}

void vm_get_stats(struct vm_stats *st)
{
	*st = vm__s.st;
	st->wp_faults += vm__wp.faults;
}

int vm_enter(void)
{
	struct vm__state *s = &vm__s;
	if (s->in_guest || s->vm >= 0)
		return vm__err(-EBUSY, "volimem: vm_enter: this thread is already in the VM");
	int n = threads();
	if (n != 1)
		return vm__err(-EOPNOTSUPP, "volimem: vm_enter: the process has %d threads; "
			       "slice 1 supports single-threaded processes only", n);
	grow_stack();
	int r = create();
	if (r < 0)
		goto fail;
	s->brk = (uint64_t)vm__sys6(SYS_brk, 0, 0, 0, 0, 0, 0);
	unsigned long fs = 0;
	vm__sys6(SYS_arch_prctl, 0x1003 /* ARCH_GET_FS */, (long)&fs, 0, 0, 0, 0);
	s->fs_base = fs;
	struct kvm_sregs sr;
	if (kioctl(s->vcpu, KVM_GET_SREGS, &sr) == 0) {
		sr.fs.base = fs;
		kioctl(s->vcpu, KVM_SET_SREGS, &sr);
	}
	if ((r = vm__mirror_maps()) < 0)
		goto fail;
	vm__frame.flush = 0;
	s->in_guest = true;
	vm__switch(s->arena + VM_A_HSTACK_TOP);
	return 0;   /* in the guest */
fail:
	destroy();
	return r;
}

int vm_leave(void)
{
	if (!vm__s.in_guest)
		return vm__err(-EINVAL, "volimem: vm_leave: not in the VM");
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
 * process would have got natively. */
static _Noreturn void fault(void)
{
	const struct vm__exc *e = &vm__exc;
	int sig = SIGSEGV;
	switch (e->vector) {
	case 0: case 16: case 19: sig = SIGFPE; break;
	case 1: case 3: sig = SIGTRAP; break;
	case 6: sig = SIGILL; break;
	case 17: sig = SIGBUS; break;
	}
	if (e->vector == 14)
		vm__die(sig, "guest #PF at rip 0x%llx, address 0x%llx (error 0x%llx) -> signal %d",
			(unsigned long long)e->rip, (unsigned long long)e->cr2,
			(unsigned long long)e->err, sig);
	vm__die(sig, "guest exception %llu at rip 0x%llx (error 0x%llx, cs 0x%llx) -> signal %d",
		(unsigned long long)e->vector, (unsigned long long)e->rip,
		(unsigned long long)e->err, (unsigned long long)e->cs, sig);
}

/* vm__host_loop -- the host side, on the arena's stack: serve exits until
 * vm_leave's hypercall, then continue natively where the guest was. */
void vm__host_loop(void)
{
	struct vm__state *s = &vm__s;
	struct kvm_regs regs = {
		.rip = vm__frame.rip, .rsp = vm__frame.rsp, .rflags = 2,
		.rbx = vm__frame.rbx, .rbp = vm__frame.rbp, .r12 = vm__frame.r12,
		.r13 = vm__frame.r13, .r14 = vm__frame.r14, .r15 = vm__frame.r15,
	};
	long r = kioctl(s->vcpu, KVM_SET_REGS, &regs);
	if (r < 0)
		vm__die(SIGABRT, "KVM_SET_REGS at entry: %s", strerror((int)-r));
	for (;;) {
		r = kioctl(s->vcpu, KVM_RUN, NULL);
		s->st.exits++;
		if (r == -EINTR || r == -EAGAIN)
			continue;
		if (r < 0)
			vm__die(SIGABRT, "KVM_RUN: %s", strerror((int)-r));
		struct kvm_run *run = s->run;
		if (run->exit_reason == KVM_EXIT_IO && run->io.port == VM_PORT_SYSCALL) {
			if (vm__frame.nr == (uint64_t)VM_HC_LEAVE) {
				s->in_guest = false;
				vm__resume_native(&vm__frame);
			}
			vm__forward(&vm__frame);
			continue;
		}
		if (run->exit_reason == KVM_EXIT_IO && run->io.port == VM_PORT_EXC) {
			if (grow_guest_stack())
				continue;
			fault();
		}
		kioctl(s->vcpu, KVM_GET_REGS, &regs);
		vm__die(SIGABRT, "internal error: %s (%u) at rip 0x%llx%s", exit_name(run->exit_reason),
			run->exit_reason, (unsigned long long)regs.rip,
			run->exit_reason == KVM_EXIT_INTERNAL_ERROR ? " (emulation failed)" : "");
	}
}
