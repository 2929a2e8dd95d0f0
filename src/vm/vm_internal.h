/* SPDX-License-Identifier: MIT */
/*
 * vm_internal.h -- state shared by the files of libvolimem (src/vm/).
 *
 * One VM per process: a single global (vm__s), one block per vCPU (struct
 * vm__cpu, in the arena; the CPL0 stubs reach their own at VM_CPU_VA) and
 * vm__wp, which every vCPU's #PF handler reads. The guest sees the whole
 * process at the same addresses, so host and guest share these variables;
 * the host side changes the page table under vm__lock with the other
 * vCPUs stopped (vm.c: TLB shootdown).
 *
 * The arena: one 2 MiB-aligned private mapping, one memslot, mapped in the
 * guest with 2 MiB supervisor pages (U=0, NX): GDT and IDT, vCPU 0's host
 * stack for the exit loop, the memslot table, a scratch buffer, then a bump
 * pool for page tables, vCPU blocks (TSS, CPL0 stack), the host stacks of
 * threads created in the VM, and tracking arrays.
 */
#ifndef VM_INTERNAL_H
#define VM_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <signal.h>
#include <linux/kvm.h>
#include "volimem.h"

#define VM_PAGE 4096ul
#define VM_2M (2ul << 20)

/* I/O ports the CPL0 stubs exit on (`out` from ring 0: KVM_EXIT_IO). */
#define VM_PORT_SYSCALL 0xf1
#define VM_PORT_EXC 0xf2

/* Hypercalls: `syscall` numbers Linux will never use (-ENOSYS natively). */
#define VM_HC_LEAVE 0x56000001
#define VM_HC_TRACK 0x56000002
#define VM_HC_COLLECT 0x56000003
#define VM_HC_UNTRACK 0x56000004

/* Guest PTE bits. VM_PTE_SWW: "the host mapping is writable", set on
 * VM_WP-tracked pages whose RW bit is cleared to catch the first write. */
#define VM_PTE_P 0x1ull
#define VM_PTE_RW 0x2ull
#define VM_PTE_U 0x4ull
#define VM_PTE_A 0x20ull
#define VM_PTE_D 0x40ull
#define VM_PTE_PS 0x80ull
#define VM_PTE_SWW 0x200ull
#define VM_PTE_NX (1ull << 63)
#define VM_PTE_ADDR 0x000ffffffffff000ull

/* Arena layout (offsets). */
#define VM_A_GDT 0x0000ul
#define VM_A_IDT 0x1000ul
#define VM_A_HSTACK_TOP 0x400000ul        /* vCPU 0's host exit-loop stack: 2 MiB below */
#define VM_A_SLOTS 0x400000ul             /* memslot table, 2 MiB */
#define VM_A_SCRATCH 0x600000ul           /* /proc/self/maps buffer, 2 MiB */
#define VM_A_SCRATCH_LEN 0x200000ul
#define VM_A_POOL 0x800000ul              /* page tables, tracking arrays */
#define VM_ARENA_LEN (1ul << 30)

/*
 * vm__frame -- a forwarded syscall or hypercall: the LSTAR stub stores the
 * guest's registers here before it exits, then loads ret into RAX and
 * rip/rflags/rsp into RCX/R11/RSP (so the host can redirect the return,
 * e.g. into a signal handler) and, if flush is set, reloads CR3 before
 * sysretq. Offsets are used by entry.c's asm.
 */
struct vm__frame {
	uint64_t nr, a[6];                      /* 0: rax, rdi rsi rdx r10 r8 r9 */
	uint64_t rip, rflags, rsp;              /* 56: rcx r11 rsp */
	uint64_t rbx, rbp, r12, r13, r14, r15;  /* 80 */
	uint64_t ret;                           /* 128 */
	uint64_t flush;                         /* 136: reload CR3 on the way back */
};

/* vm__exc -- an exception the guest cannot handle, stored by the CPL0 stub. */
struct vm__exc {
	uint64_t vector, err, rip, cs, rflags, rsp, cr2;
	uint64_t retry;   /* 56: set by the host: iretq instead of dying */
};

/* vm__wp -- what the in-guest #PF handler needs for VM_WP (offsets used).
 * Shared by all vCPUs: the handler updates PTEs and the bitmap with locked
 * instructions. */
struct vm__wp {
	uint64_t base, len;   /* 0, 8: tracked range; len 0 = not VM_WP */
	uint64_t **ptes;      /* 16: &PTE of each page (host == guest address) */
	uint64_t *bitmap;     /* 24: one bit per page, set = written */
	uint64_t faults;      /* 32 */
};

struct vm__slot {
	uint64_t hva, len, gpa;
	uint32_t id;
};

/*
 * Per-vCPU blocks. Every vCPU has its own root table, identical to the
 * template root (vm__s.pml4_gpa) in the user half and mapping its own block
 * at VM_CPU_VA in the top 2 GiB, where the process can never have anything:
 * the CPL0 stubs reach "their" frame with absolute 32-bit addresses, with
 * no register to spare and no swapgs. The block: struct vm__cpu at 0 (the
 * guest-visible frame and exc first), the TSS at VM_CPU_TSS, the CPL0 stack
 * up to VM_CPU_LEN. The host reaches the same block at its arena address.
 */
#define VM_MAX_CPUS 64
#define VM_CPU_VA 0xffffffff80000000ull
#define VM_CPU_LEN 0x10000ul
#define VM_CPU_EXC 256                 /* offsetof(struct vm__cpu, exc) */
#define VM_CPU_TSS 0x1000ul
#define VM_CPU_HSTACK_LEN 0x80000ul    /* host stack of a thread created in the VM */
#define VM_IRQ_FLUSH 32                /* injected vector: reload CR3 */

struct vm__cpu {
	struct vm__frame frame;        /* 0: guest-visible at VM_CPU_VA */
	uint8_t pad0[VM_CPU_EXC - sizeof(struct vm__frame)];
	struct vm__exc exc;            /* VM_CPU_EXC */
	/* host side only */
	int idx, fd, tid;
	int busy;                      /* atomic: slot in use by a thread */
	int in_guest;                  /* atomic: between entry check and KVM_RUN's return */
	struct kvm_run *run;
	uint64_t root_gpa;
	uint8_t *hstack_top;           /* NULL for the thread that called vm_enter */
	uint64_t flushed_gen;          /* TLB state the vCPU is known to match */
	bool flush_pending;            /* flush still to arrange before CPL3 code runs */
	uint64_t sigpend;              /* bit s-1: signal s caught on the host side */
	siginfo_t siginfo[64];
};
_Static_assert(sizeof(struct vm__frame) <= VM_CPU_EXC, "frame fits before exc");

struct vm__state {
	int kvm, vm;
	size_t run_size;
	uint8_t *arena;          /* VM_ARENA_LEN, 2 MiB aligned */
	uint8_t *arena_map;      /* what mmap returned, arena_map_len */
	size_t arena_map_len;
	uint64_t arena_gpa;
	size_t pool_used;        /* bump allocator in the arena */
	uint64_t pml4_gpa;       /* template root: the user half of every vCPU's root */
	uint64_t gpa_next, gpa_limit;
	struct vm__slot *slots;
	uint32_t nslots;
	uint64_t brk;            /* the program break as last seen */
	uint64_t stack_lo, stack_max; /* main thread's [stack]: start, rlimit */
	bool trace_faults;       /* VOLIMEM_TRACE_FAULTS=1: say each exception
	                            handed to the application's handler */
	struct kvm_cpuid2 *cpuid;
	/* vCPUs and the TLB protocol (docs/VM.md "Threads") */
	struct vm__cpu *cpus[VM_MAX_CPUS];
	int ncpus;                 /* slots created; a free one (busy 0) is reused */
	int nthreads;              /* atomic: busy slots (readable at CPL3) */
	int lock;                  /* futex: page table, slots, pool, cpus[] */
	int stopping;              /* atomic: a world stop is in progress */
	uint64_t gen;              /* atomic: bumped when translations were taken away */
	/* tracking (one range) */
	int mode;
	uint64_t tbase, tlen;
	uint64_t **tptes;
	uint64_t **tpdes;        /* VM_DIRTY: the PDE over each 2 MiB region */
	uint64_t ntpdes;
	uint64_t *tbitmap;       /* VM_WP: the handler's; both: host marks */
	struct vm_stats st;
};

extern struct vm__state vm__s;
extern struct vm__wp vm__wp;
extern __thread struct vm__cpu *vm__self __attribute__((tls_model("initial-exec")));

/* entry.c: guest stubs and the host/guest switches */
extern const char vm__lstar[], vm__pf_entry[], vm__flush_irq[];
void vm__leave_call(void);
extern const uint64_t vm__exc_table[32];
void vm__switch(void *host_stack_top, struct vm__cpu *c);
_Noreturn void vm__resume_native(const struct vm__frame *f);
long vm__sys6(long nr, long a, long b, long c, long d, long e, long f);
_Noreturn void vm__exit_thread(int *busy, long code);
_Noreturn void vm__host_loop(struct vm__cpu *c);

/* vm.c */
void vm__lock(void);
void vm__unlock(void);
void vm__stop_world(void);
void vm__start_world(void);
long vm__clone(struct vm__cpu *c, struct vm__frame *f);
int vm__err(int code, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void vm__say(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
_Noreturn void vm__die(int sig, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* host.c: the KVM device, kvm-pvm refused */
int vm__open_kvm(void);

/* pt.c: arena, memslots, the guest page table */
void *vm__pool_alloc(size_t len);
uint64_t *vm__pte(uint64_t va, bool alloc);
uint64_t *vm__pde(uint64_t va);
int vm__map(uint64_t start, uint64_t end, int prot);
void vm__unmap(uint64_t start, uint64_t end);
int vm__mirror_maps(void);
int vm__prot_of(uint64_t va);

/* sys.c */
void vm__forward(struct vm__cpu *c, struct vm__frame *f);

/* sig.c: signals for the guest */
int vm__sig_init(void);
void vm__sig_fini(void);
bool vm__sig_action(struct vm__frame *f);
bool vm__sig_deliver(struct vm__cpu *c, int how);
bool vm__sig_fault(struct vm__cpu *c, int sig);
void vm__sig_return(struct vm__cpu *c, struct vm__frame *f);
long vm__sig_mask(struct vm__frame *f);
int vm__sig_kick(void);
#define VM_DELIVER_SYSCALL 1   /* stopped in the LSTAR stub after `out` */
#define VM_DELIVER_REGS 2      /* stopped anywhere: needs CPL3 */

/* writeset.c */
long vm__track_host(uint64_t base, uint64_t len, int mode);
long vm__collect_host(void **pages, uint64_t max);
long vm__untrack_host(void);
void vm__mark_written(uint64_t addr, uint64_t len);
uint64_t vm__track_pte_bits(uint64_t va, uint64_t old, uint64_t pte);

static inline uint64_t vm__page_down(uint64_t a) { return a & ~(VM_PAGE - 1); }
static inline uint64_t vm__page_up(uint64_t a) { return (a + VM_PAGE - 1) & ~(VM_PAGE - 1); }

#endif
