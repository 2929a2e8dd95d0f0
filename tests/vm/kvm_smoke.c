/* SPDX-License-Identifier: MIT */
/*
 * kvm_smoke.c -- does this /dev/kvm do what libvolimem (src/vm/) will need,
 * and what does each event cost?
 *
 * libvolimem will run the process as a KVM guest that owns its page table:
 * application code at guest CPL3, a small CPL0 handler of its own for page
 * faults, and the host side waiting in KVM_RUN for exits. This program
 * checks those mechanisms one by one on a tiny guest and times them:
 *
 *   1. API version 12; a VM with one memslot and one vCPU.
 *   2. Real mode: `out` -> KVM_EXIT_IO round trips, then `hlt`.
 *   3. Long mode at CPL3 with identity page tables (GVA == GPA):
 *      - writes to a read-only page raise #PF, handled by the guest's own
 *        IDT handler with no exit to us (the vm-wp tracker's fast path);
 *      - a handler that sets RW, runs invlpg and retries the write;
 *      - the hardware A/D bits in the guest PTEs (the vm-dirty tracker);
 *      - the first touch of fresh guest pages (host-side NPT/EPT fault);
 *      - exits by MMIO writes to an address outside every memslot, the one
 *        way from CPL3 to the host that works on every KVM backend (kvm-pvm
 *        strips IOPL, so `out` at CPL3 would fault there).
 *
 * Exit code: 0 all checks passed, 1 a check failed (the message names the
 * step), 77 no usable /dev/kvm (CTest: Skipped). On a machine without one,
 * run it as `tests/vm/kvm-guest.sh -- kvm_smoke` (docs/VM.md).
 *
 *   kvm_smoke [ROUND_TRIPS [FAULTS]]      defaults 2000 and 20000
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/kvm.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>
#include "vm_skip.h"
#include "../num.h"

/* Guest code, copied into guest memory at run time. */
extern const uint8_t smoke_rm_start[], smoke_rm_end[];
extern const uint8_t smoke_lm_start[], smoke_lm_pf[], smoke_lm_end[];

__asm__(
	".pushsection .rodata\n"

	/* Real mode, loaded at 0x1000. %ecx = round trips. */
	".code16\n"
	"smoke_rm_start:\n"
	"	mov $0x3f8, %dx\n"
	"	mov $'A', %al\n"
	"	out %al, %dx\n"           /* first exit: KVM_EXIT_IO 0x3f8 'A' */
	"	mov $0x11, %dx\n"
	"1:	out %al, %dx\n"           /* one round trip each */
	"	dec %ecx\n"
	"	jnz 1b\n"
	"	hlt\n"                    /* KVM_EXIT_HLT */
	"smoke_rm_end:\n"
	".code64\n"

	/*
	 * Long mode, CPL3 part. Set by the host: %rbx read-only page for the
	 * timing loop, %ecx its iterations, %rdi read-only page the handler
	 * fixes, %rsi writable page, %rbp read-only page only read, %rdx first
	 * fresh page, %r8d fresh pages, %r12 MMIO exit address, %r13 &PTE(%rdi),
	 * %r14 handler mode (0 skip, 1 fix), %r15 fault count.
	 */
	"smoke_lm_start:\n"
	"2:	movb %al, (%rbx)\n"       /* 2-byte insn: #PF, the handler skips it */
	"	dec %ecx\n"
	"	jnz 2b\n"
	"	movq %r15, 0(%r12)\n"     /* exit 1: fault count */
	"	mov $1, %r14d\n"
	"	movb $0x5a, (%rdi)\n"     /* #PF, handler sets RW, write retried */
	"	movb $0x77, (%rsi)\n"     /* sets A and D */
	"	movq (%rbp), %rax\n"      /* sets A only */
	"	movq %r15, 8(%r12)\n"     /* exit 2: host reads the PTEs */
	"3:	movb $1, (%rdx)\n"        /* first touch of fresh pages */
	"	add $0x1000, %rdx\n"
	"	dec %r8d\n"
	"	jnz 3b\n"
	"	movq %r15, 16(%r12)\n"    /* exit 3 */
	"	mov $0x12345678, %eax\n"
	"	movl %eax, 24(%r12)\n"    /* exit 4: done */
	"	jmp .\n"

	/* #PF handler, CPL0 interrupt gate on the TSS's RSP0 stack. */
	"smoke_lm_pf:\n"
	"	inc %r15\n"
	"	test %r14, %r14\n"
	"	jz 4f\n"
	"	orq $2, (%r13)\n"         /* PTE.RW = 1 */
	"	mov %cr2, %rax\n"
	"	invlpg (%rax)\n"          /* drop the stale read-only translation */
	"	add $8, %rsp\n"           /* error code */
	"	iretq\n"                  /* retry the write */
	"4:	add $8, %rsp\n"
	"	addq $2, (%rsp)\n"        /* skip the faulting movb */
	"	iretq\n"
	"smoke_lm_end:\n"
	".popsection\n");

/* Long-mode guest layout: the first 2 MiB identity-mapped with 4 KiB pages,
 * the next 2 MiB one large page with no memslot behind it (MMIO exits). */
enum {
	G_PML4 = 0x1000, G_PDPT = 0x2000, G_PD = 0x3000, G_PT = 0x4000,
	G_GDT = 0x5000, G_IDT = 0x6000, G_TSS = 0x7000, G_CODE = 0x8000,
	G_USTACK = 0x20000, G_KSTACK = 0x31000,
	G_RO_LOOP = 0x40000, G_RW = 0x41000, G_RO_FIX = 0x42000, G_RO_READ = 0x43000,
	G_FRESH = 0x100000, G_NFRESH = 256,
	G_MEM = 0x200000, G_MMIO = 0x200000,
};
enum { PTE_P = 1, PTE_RW = 2, PTE_U = 4, PTE_A = 0x20, PTE_D = 0x40, PTE_PS = 0x80 };

struct smoke_vm {
	int fd, vcpu;
	uint8_t *mem;
	size_t memsz;
	struct kvm_run *run;
};

static int kvm = -1;
static int run_size;

/* fail -- a check failed: say which step and why, exit 1. */
static void fail(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	printf("kvm_smoke: FAIL: ");
	vprintf(fmt, ap);
	printf("\n");
	va_end(ap);
	fflush(stdout);
	exit(1);
}

/* skip -- this machine cannot run the test: one line, exit 77. */
static void skip(const char *why)
{
	vm_skip("kvm_smoke", why);
}

/* xioctl -- ioctl that fails the test, naming the step, on error. */
static int xioctl(int fd, unsigned long req, void *arg, const char *step)
{
	int r = ioctl(fd, req, arg);
	if (r < 0)
		fail("%s: %s", step, strerror(errno));
	return r;
}

static double now_s(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

static bool exists(const char *path)
{
	return access(path, F_OK) == 0;
}

/* read_param -- first word of a sysfs file, or "?" */
static const char *read_param(const char *path, char *buf, size_t len)
{
	FILE *f = fopen(path, "r");
	if (!f || !fgets(buf, (int)len, f))
		snprintf(buf, len, "?");
	else
		buf[strcspn(buf, " \n")] = 0;
	if (f)
		fclose(f);
	return buf;
}

/* open_kvm -- open /dev/kvm, or skip with the reason; name the backend,
 * because kvm-pvm's costs and quirks are nothing like VT-x/AMD-V's. */
static void open_kvm(void)
{
	bool pvm = exists("/sys/module/kvm_pvm");
	char p[32];

	kvm = open("/dev/kvm", O_RDWR | O_CLOEXEC);
	if (kvm < 0 && errno == ENOENT && pvm)
		skip("no /dev/kvm: this is a kvm-pvm host (/sys/module/kvm_pvm is loaded) "
		     "without a KVM device; run it in the qemu guest: "
		     "tests/vm/kvm-guest.sh -- kvm_smoke, after `bash scripts/setup-vm.sh` (docs/VM.md)");
	if (kvm < 0 && errno == ENOENT)
		skip("no /dev/kvm on this machine (no KVM module loaded); run it in the qemu guest: "
		     "tests/vm/kvm-guest.sh -- kvm_smoke, after `bash scripts/setup-vm.sh` (docs/VM.md)");
	if (kvm < 0 && (errno == EACCES || errno == EPERM))
		skip("/dev/kvm exists but this user may not open it (group kvm?)");
	if (kvm < 0)
		fail("open /dev/kvm: %s", strerror(errno));

	if (pvm)
		printf("kvm_smoke: backend kvm-pvm: shadow paging, guest ring 0 emulated; "
		       "timings are not those of VT-x/AMD-V (docs/VM.md)\n");
	else if (exists("/sys/module/kvm_amd"))
		printf("kvm_smoke: backend kvm_amd, npt=%s\n",
		       read_param("/sys/module/kvm_amd/parameters/npt", p, sizeof p));
	else if (exists("/sys/module/kvm_intel"))
		printf("kvm_smoke: backend kvm_intel, ept=%s\n",
		       read_param("/sys/module/kvm_intel/parameters/ept", p, sizeof p));
	else
		printf("kvm_smoke: backend unknown (no kvm_amd/kvm_intel/kvm_pvm in /sys/module)\n");

	int api = xioctl(kvm, KVM_GET_API_VERSION, NULL, "KVM_GET_API_VERSION");
	if (api != KVM_API_VERSION)
		fail("KVM_GET_API_VERSION: %d, expected %d", api, KVM_API_VERSION);
	if (ioctl(kvm, KVM_CHECK_EXTENSION, KVM_CAP_USER_MEMORY) <= 0)
		fail("KVM_CHECK_EXTENSION: no KVM_CAP_USER_MEMORY");
	run_size = xioctl(kvm, KVM_GET_VCPU_MMAP_SIZE, NULL, "KVM_GET_VCPU_MMAP_SIZE");
	printf("ok   api: KVM_GET_API_VERSION %d; caps NR_MEMSLOTS=%d SYNC_REGS=%d READONLY_MEM=%d "
	       "DIRTY_LOG_RING=%d MANUAL_DIRTY_LOG_PROTECT2=%d\n", api,
	       ioctl(kvm, KVM_CHECK_EXTENSION, KVM_CAP_NR_MEMSLOTS),
	       ioctl(kvm, KVM_CHECK_EXTENSION, KVM_CAP_SYNC_REGS),
	       ioctl(kvm, KVM_CHECK_EXTENSION, KVM_CAP_READONLY_MEM),
	       ioctl(kvm, KVM_CHECK_EXTENSION, KVM_CAP_DIRTY_LOG_RING),
	       ioctl(kvm, KVM_CHECK_EXTENSION, KVM_CAP_MANUAL_DIRTY_LOG_PROTECT2));
}

/* set_cpuid -- give the vCPU what KVM supports. Must come before
 * KVM_SET_SREGS, or EFER.LME is refused. */
static void set_cpuid(int vcpu)
{
	int n = 64;
	for (;;) {
		struct kvm_cpuid2 *c = calloc(1, sizeof *c + (size_t)n * sizeof c->entries[0]);
		if (!c)
			fail("KVM_GET_SUPPORTED_CPUID: out of memory");
		c->nent = (uint32_t)n;
		if (ioctl(kvm, KVM_GET_SUPPORTED_CPUID, c) == 0) {
			xioctl(vcpu, KVM_SET_CPUID2, c, "KVM_SET_CPUID2");
			free(c);
			return;
		}
		free(c);
		if (errno != E2BIG || n > 4096)
			fail("KVM_GET_SUPPORTED_CPUID: %s", strerror(errno));
		n *= 2;
	}
}

/* vm_create -- a VM with memsz bytes of guest memory at GPA 0 (one memslot,
 * untouched anonymous memory) and one vCPU with its kvm_run mapped. */
static void vm_create(struct smoke_vm *v, size_t memsz)
{
	v->fd = xioctl(kvm, KVM_CREATE_VM, NULL, "KVM_CREATE_VM");
	v->memsz = memsz;
	v->mem = mmap(NULL, memsz, PROT_READ | PROT_WRITE,
		      MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (v->mem == MAP_FAILED)
		fail("mmap guest memory: %s", strerror(errno));
	struct kvm_userspace_memory_region slot = {
		.slot = 0, .guest_phys_addr = 0, .memory_size = memsz,
		.userspace_addr = (uint64_t)(uintptr_t)v->mem,
	};
	xioctl(v->fd, KVM_SET_USER_MEMORY_REGION, &slot, "KVM_SET_USER_MEMORY_REGION");
	v->vcpu = xioctl(v->fd, KVM_CREATE_VCPU, (void *)0, "KVM_CREATE_VCPU");
	v->run = mmap(NULL, (size_t)run_size, PROT_READ | PROT_WRITE, MAP_SHARED, v->vcpu, 0);
	if (v->run == MAP_FAILED)
		fail("mmap kvm_run: %s", strerror(errno));
	set_cpuid(v->vcpu);
}

static void vm_destroy(struct smoke_vm *v)
{
	munmap(v->run, (size_t)run_size);
	close(v->vcpu);
	close(v->fd);
	munmap(v->mem, v->memsz);
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
	default: return "another exit";
	}
}

/* unexpected -- fail with the exit and the guest state that explain it. */
static void unexpected(struct smoke_vm *v, const char *step, const char *want)
{
	struct kvm_regs r = {0};
	struct kvm_sregs s = {0};
	ioctl(v->vcpu, KVM_GET_REGS, &r);
	ioctl(v->vcpu, KVM_GET_SREGS, &s);
	uint32_t e = v->run->exit_reason;
	char extra[96] = "";
	if (e == KVM_EXIT_IO)
		snprintf(extra, sizeof extra, " port 0x%x", v->run->io.port);
	else if (e == KVM_EXIT_MMIO)
		snprintf(extra, sizeof extra, " addr 0x%llx", (unsigned long long)v->run->mmio.phys_addr);
	else if (e == KVM_EXIT_INTERNAL_ERROR)
		snprintf(extra, sizeof extra, " suberror %u", v->run->internal.suberror);
	else if (e == KVM_EXIT_FAIL_ENTRY)
		snprintf(extra, sizeof extra, " hw reason 0x%llx",
			 (unsigned long long)v->run->fail_entry.hardware_entry_failure_reason);
	fail("%s: got %s (%u)%s, expected %s; rip 0x%llx cs 0x%x cr2 0x%llx r15 %llu", step,
	     exit_name(e), e, extra, want, (unsigned long long)r.rip, s.cs.selector,
	     (unsigned long long)s.cr2, (unsigned long long)r.r15);
}

/* vm_run -- one KVM_RUN; returns the exit reason. */
static uint32_t vm_run(struct smoke_vm *v, const char *step)
{
	xioctl(v->vcpu, KVM_RUN, NULL, step);
	return v->run->exit_reason;
}

/* expect_mmio -- run to the next exit, which must be the guest's 8- or
 * 4-byte write to addr; returns the value written. */
static uint64_t expect_mmio(struct smoke_vm *v, uint64_t addr, const char *step)
{
	char want[64];
	snprintf(want, sizeof want, "an MMIO write to 0x%llx", (unsigned long long)addr);
	if (vm_run(v, step) != KVM_EXIT_MMIO || !v->run->mmio.is_write ||
	    v->run->mmio.phys_addr != addr)
		unexpected(v, step, want);
	uint64_t val = 0;
	memcpy(&val, v->run->mmio.data, v->run->mmio.len <= 8 ? v->run->mmio.len : 8);
	return val;
}

/* test_realmode -- VM lifecycle, a KVM_EXIT_IO round trip, a vCPU ioctl. */
static void test_realmode(long trips, double *rt_us, double *ioctl_us, double *create_ms)
{
	struct smoke_vm v;
	double t0 = now_s();
	vm_create(&v, 0x10000);
	*create_ms = (now_s() - t0) * 1e3;
	printf("ok   vm: VM + 64 KiB memslot + vCPU created in %.2f ms\n", *create_ms);

	memcpy(v.mem + 0x1000, smoke_rm_start, (size_t)(smoke_rm_end - smoke_rm_start));
	struct kvm_sregs s;
	xioctl(v.vcpu, KVM_GET_SREGS, &s, "realmode KVM_GET_SREGS");
	s.cs.base = 0;
	s.cs.selector = 0;
	xioctl(v.vcpu, KVM_SET_SREGS, &s, "realmode KVM_SET_SREGS");
	struct kvm_regs r = { .rip = 0x1000, .rflags = 2, .rcx = (uint64_t)trips };
	xioctl(v.vcpu, KVM_SET_REGS, &r, "realmode KVM_SET_REGS");

	if (vm_run(&v, "realmode first KVM_RUN") != KVM_EXIT_IO || v.run->io.port != 0x3f8 ||
	    v.run->io.direction != KVM_EXIT_IO_OUT ||
	    ((uint8_t *)v.run)[v.run->io.data_offset] != 'A')
		unexpected(&v, "realmode first exit", "KVM_EXIT_IO out 0x3f8 'A'");
	printf("ok   realmode: first exit KVM_EXIT_IO out 0x3f8 'A'\n");

	long n = 0;
	double t1 = now_s();
	while (vm_run(&v, "realmode KVM_RUN") == KVM_EXIT_IO && v.run->io.port == 0x11)
		n++;
	double t2 = now_s();
	if (v.run->exit_reason != KVM_EXIT_HLT || n != trips)
		unexpected(&v, "realmode round trips", "KVM_EXIT_HLT after the round trips");
	*rt_us = (t2 - t1) / (double)(n + 1) * 1e6;
	printf("ok   realmode: %ld KVM_EXIT_IO round trips then KVM_EXIT_HLT: %.1f us per round trip\n",
	       n, *rt_us);

	enum { IOCTLS = 1000 };
	t1 = now_s();
	for (int i = 0; i < IOCTLS; i++)
		xioctl(v.vcpu, KVM_GET_REGS, &r, "KVM_GET_REGS");
	*ioctl_us = (now_s() - t1) / IOCTLS * 1e6;
	printf("ok   vcpu ioctl: KVM_GET_REGS %.2f us\n", *ioctl_us);
	vm_destroy(&v);
}

/* build_longmode -- page tables, GDT, TSS, IDT and code for the CPL3 test. */
static void build_longmode(uint8_t *m)
{
	uint64_t *pml4 = (uint64_t *)(m + G_PML4), *pdpt = (uint64_t *)(m + G_PDPT);
	uint64_t *pd = (uint64_t *)(m + G_PD), *pt = (uint64_t *)(m + G_PT);

	pml4[0] = G_PDPT | PTE_P | PTE_RW | PTE_U;
	pdpt[0] = G_PD | PTE_P | PTE_RW | PTE_U;
	pd[0] = G_PT | PTE_P | PTE_RW | PTE_U;
	pd[1] = G_MMIO | PTE_P | PTE_RW | PTE_U | PTE_PS;   /* no memslot behind it */
	for (uint64_t i = 1; i < 512; i++)                  /* page 0 stays unmapped */
		pt[i] = (i << 12) | PTE_P | PTE_RW | PTE_U;  /* A and D clear */
	pt[G_RO_LOOP >> 12] &= ~(uint64_t)PTE_RW;
	pt[G_RO_FIX >> 12] &= ~(uint64_t)PTE_RW;
	pt[G_RO_READ >> 12] &= ~(uint64_t)PTE_RW;

	uint64_t *gdt = (uint64_t *)(m + G_GDT);
	gdt[1] = 0x00af9a000000ffffull;                     /* 0x08 kernel code64 */
	gdt[2] = 0x00cf92000000ffffull;                     /* 0x10 kernel data */
	gdt[3] = 0x00cff2000000ffffull;                     /* 0x18 user data */
	gdt[4] = 0x00affa000000ffffull;                     /* 0x20 user code64 */
	gdt[5] = 0x67 | ((uint64_t)G_TSS << 16) | (0x89ull << 40); /* 0x28 TSS, 16 bytes */
	gdt[6] = 0;
	memcpy(m + G_TSS + 4, &(uint64_t){ G_KSTACK }, 8);  /* RSP0: the handler's stack */
	memcpy(m + G_TSS + 0x66, &(uint16_t){ 0x68 }, 2);   /* no I/O bitmap */

	memcpy(m + G_CODE, smoke_lm_start, (size_t)(smoke_lm_end - smoke_lm_start));
	uint64_t h = G_CODE + (uint64_t)(smoke_lm_pf - smoke_lm_start);
	uint64_t *idt = (uint64_t *)(m + G_IDT);
	idt[14 * 2] = (h & 0xffff) | (0x08ull << 16) | (0x8eull << 40) | (((h >> 16) & 0xffff) << 48);
	idt[14 * 2 + 1] = h >> 32;                         /* #PF: interrupt gate, DPL0 */
}

/* enter_longmode -- 64-bit paging with CR0.WP (so ring 0 honours read-only
 * PTEs too) and the vCPU at CPL3 with IOPL 0, as an application would run. */
static void enter_longmode(struct smoke_vm *v, long faults)
{
	struct kvm_sregs s;
	xioctl(v->vcpu, KVM_GET_SREGS, &s, "longmode KVM_GET_SREGS");
	struct kvm_segment cs = { .limit = 0xffffffff, .selector = 0x23, .type = 11,
				  .present = 1, .dpl = 3, .s = 1, .l = 1, .g = 1 };
	struct kvm_segment ds = { .limit = 0xffffffff, .selector = 0x1b, .type = 3,
				  .present = 1, .dpl = 3, .db = 1, .s = 1, .g = 1 };
	s.cs = cs;
	s.ds = s.es = s.fs = s.gs = s.ss = ds;
	s.tr = (struct kvm_segment){ .base = G_TSS, .limit = 0x67, .selector = 0x28,
				     .type = 11, .present = 1 };
	s.gdt.base = G_GDT;
	s.gdt.limit = 7 * 8 - 1;
	s.idt.base = G_IDT;
	s.idt.limit = 256 * 16 - 1;
	s.cr3 = G_PML4;
	s.cr4 = 1u << 5;                                    /* PAE */
	s.cr0 = 0x80050033;                                 /* PG WP NE ET MP PE */
	s.efer = 0x500;                                     /* LMA LME */
	xioctl(v->vcpu, KVM_SET_SREGS, &s, "longmode KVM_SET_SREGS");

	struct kvm_regs r = {
		.rip = G_CODE, .rflags = 2, .rsp = G_USTACK,
		.rbx = G_RO_LOOP, .rcx = (uint64_t)faults, .rdi = G_RO_FIX, .rsi = G_RW,
		.rbp = G_RO_READ, .rdx = G_FRESH, .r8 = G_NFRESH, .r12 = G_MMIO,
		.r13 = G_PT + (G_RO_FIX >> 12) * 8, .r14 = 0, .r15 = 0,
	};
	xioctl(v->vcpu, KVM_SET_REGS, &r, "longmode KVM_SET_REGS");
}

/* test_longmode -- guest #PF handling, PTE fix-up, A/D bits, first touch. */
static void test_longmode(long faults, double *pf_us, double *touch_us)
{
	struct smoke_vm v;
	vm_create(&v, G_MEM);
	uint8_t *m = v.mem;
	uint64_t *pt = (uint64_t *)(m + G_PT);
	build_longmode(m);
	enter_longmode(&v, faults);

	/* One KVM_RUN for all the faults: any exit in between would have
	 * come back here as something other than this MMIO write. */
	double t0 = now_s();
	uint64_t n = expect_mmio(&v, G_MMIO, "longmode #PF loop");
	*pf_us = (now_s() - t0) / (double)faults * 1e6;
	if (n != (uint64_t)faults)
		fail("longmode #PF loop: the guest handler counted %llu faults, expected %ld",
		     (unsigned long long)n, faults);
	printf("ok   longmode: %ld #PF at CPL3 handled by the guest IDT handler, 0 exits: "
	       "%.2f us per fault\n", faults, *pf_us);

	n = expect_mmio(&v, G_MMIO + 8, "longmode fix-up");
	uint64_t fix = pt[G_RO_FIX >> 12], rw = pt[G_RW >> 12], rd = pt[G_RO_READ >> 12];
	if (n != (uint64_t)faults + 1 || m[G_RO_FIX] != 0x5a || !(fix & PTE_RW))
		fail("longmode fix-up: %llu faults (expected 1), byte 0x%x (expected 0x5a), PTE 0x%llx",
		     (unsigned long long)(n - (uint64_t)faults), m[G_RO_FIX], (unsigned long long)fix);
	printf("ok   longmode: fix-up handler (set RW, invlpg, retry): 1 fault, the write landed\n");
	if ((rw & (PTE_A | PTE_D)) != (PTE_A | PTE_D) || m[G_RW] != 0x77 ||
	    (fix & (PTE_A | PTE_D)) != (PTE_A | PTE_D) || (rd & (PTE_A | PTE_D)) != PTE_A)
		fail("longmode A/D bits: written PTE 0x%llx (want A D), fixed+written 0x%llx "
		     "(want A D), read-only 0x%llx (want A, not D)", (unsigned long long)rw,
		     (unsigned long long)fix, (unsigned long long)rd);
	printf("ok   longmode: A/D bits: written A=1 D=1, fixed+written A=1 D=1, read A=1 D=0\n");

	t0 = now_s();
	expect_mmio(&v, G_MMIO + 16, "longmode first touch");
	*touch_us = (now_s() - t0) / G_NFRESH * 1e6;
	int dirty = 0;
	for (int i = 0; i < G_NFRESH; i++)
		dirty += (pt[(G_FRESH >> 12) + i] & PTE_D) != 0;
	if (dirty != G_NFRESH)
		fail("longmode first touch: %d of %d PTEs dirty", dirty, G_NFRESH);
	printf("ok   longmode: first touch of %d fresh pages: %.1f us per page, %d/%d PTEs dirty\n",
	       G_NFRESH, *touch_us, dirty, G_NFRESH);

	n = expect_mmio(&v, G_MMIO + 24, "longmode final exit");
	if ((uint32_t)n != 0x12345678 || v.run->mmio.len != 4)
		fail("longmode final exit: 4-byte 0x12345678 expected, got %u bytes 0x%llx",
		     v.run->mmio.len, (unsigned long long)n);
	printf("ok   longmode: final exit KVM_EXIT_MMIO, 4 bytes 0x%x\n", (uint32_t)n);
	vm_destroy(&v);
}

int main(int argc, char **argv)
{
	long trips = argc > 1 ? (long)vpt_uint("kvm_smoke", "TRIPS", argv[1], 1, LONG_MAX) : 2000;
	long faults = argc > 2 ? (long)vpt_uint("kvm_smoke", "FAULTS", argv[2], 1, LONG_MAX) : 20000;
	if (argc > 3 || trips < 1 || faults < 1) {
		fprintf(stderr, "usage: kvm_smoke [ROUND_TRIPS [FAULTS]]\n");
		return 2;
	}
	setvbuf(stdout, NULL, _IOLBF, 0);

	double t0 = now_s(), rt_us, ioctl_us, create_ms, pf_us, touch_us;
	open_kvm();
	test_realmode(trips, &rt_us, &ioctl_us, &create_ms);
	test_longmode(faults, &pf_us, &touch_us);
	printf("kvm_smoke: PASS in %.2f s: vm_create_ms=%.2f rt_us=%.1f vcpu_ioctl_us=%.2f "
	       "pf_us=%.2f touch_us=%.1f\n", now_s() - t0, create_ms, rt_us, ioctl_us, pf_us,
	       touch_us);
	return 0;
}
