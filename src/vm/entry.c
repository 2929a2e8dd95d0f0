/* SPDX-License-Identifier: MIT */
/*
 * entry.c -- the guest's CPL0 stubs and the switches between host and
 * guest, in x86-64 assembly.
 *
 *   vm__lstar       LSTAR: a `syscall` at CPL3 lands here at CPL0. Stores
 *                   the registers in this vCPU's frame (at VM_CPU_VA),
 *                   exits with `out` (the host side runs the syscall),
 *                   loads the result and the return RIP/RFLAGS/RSP (the
 *                   host may have redirected them into a signal handler),
 *                   reloads CR3 when the host asked, sysretq. It never
 *                   pushes: RSP is still the application's and its red
 *                   zone is live.
 *   vm__pf_entry    #PF (IST1): a VM_WP first write to a tracked page whose
 *                   host mapping is writable -> set RW, record the page in
 *                   vm__wp.bitmap (locked: vCPUs share them), invlpg,
 *                   iretq: no exit. Else a real fault.
 *   vm__flush_irq   vector 32, injected by the host (KVM_INTERRUPT) when
 *                   another vCPU took translations away: reload CR3.
 *   vm__exc_N       the other exceptions: store vector, error code, frame
 *                   and CR2 in vm__exc and exit; the host turns them into
 *                   the signal the process would have got natively, or
 *                   (stack growth) fixes the page table and sets retry:
 *                   then CR3 is reloaded and the instruction retried.
 *   vm__switch      host: save the caller's callee-saved registers, RSP and
 *                   return address (the guest resumes there) in the vCPU's
 *                   frame, then run the exit loop on the host's own stack.
 *   vm__exit_thread host: mark the vCPU slot free and end the thread with
 *                   no stack access in between (a new thread may take the
 *                   slot, and its host stack, at once).
 *   vm__resume_native  host: continue natively where the guest called
 *                   vm__leave_call (callee-saved registers, RSP, RIP).
 *
 * The stubs address their vCPU's block at the fixed VM_CPU_VA (each vCPU's
 * root maps its own block there) and vm__wp RIP-relatively: the guest sees
 * the process at the same virtual addresses, and CPL0 may read and write
 * U=1 pages (SMEP and SMAP stay off).
 */
#include <stddef.h>
#include <linux/kvm.h>
#include "vm_internal.h"

struct vm__wp vm__wp;

_Static_assert(offsetof(struct vm__frame, rip) == 56, "asm offset");
_Static_assert(offsetof(struct vm__frame, rbx) == 80, "asm offset");
_Static_assert(offsetof(struct vm__frame, ret) == 128, "asm offset");
_Static_assert(offsetof(struct vm__frame, flush) == 136, "asm offset");
_Static_assert(offsetof(struct vm__wp, faults) == 32, "asm offset");
_Static_assert(offsetof(struct vm__exc, retry) == 56, "asm offset");
_Static_assert(offsetof(struct vm__cpu, frame) == 0, "asm offset");
_Static_assert(offsetof(struct vm__cpu, exc) == VM_CPU_EXC, "asm offset");
_Static_assert(VM_CPU_VA == 0xffffffff80000000ull, "F() below");

#define S_(x) #x
#define S(x) S_(x)
/* F(o) -- offset o of this vCPU's frame, E(o) -- of its exc block: absolute
 * addresses in the top 2 GiB (a sign-extended disp32). */
#define F(o) "(-0x80000000+" #o ")"
#define E(o) "(-0x80000000+" S(VM_CPU_EXC) "+" #o ")"

__asm__(
	".text\n"
	".globl vm__lstar\n"
	".hidden vm__lstar\n"
	"vm__lstar:\n"
	"	mov %rax, " F(0) "\n"
	"	mov %rdi, " F(8) "\n"
	"	mov %rsi, " F(16) "\n"
	"	mov %rdx, " F(24) "\n"
	"	mov %r10, " F(32) "\n"
	"	mov %r8, " F(40) "\n"
	"	mov %r9, " F(48) "\n"
	"	mov %rcx, " F(56) "\n"
	"	mov %r11, " F(64) "\n"
	"	mov %rsp, " F(72) "\n"
	"	mov %rbx, " F(80) "\n"
	"	mov %rbp, " F(88) "\n"
	"	mov %r12, " F(96) "\n"
	"	mov %r13, " F(104) "\n"
	"	mov %r14, " F(112) "\n"
	"	mov %r15, " F(120) "\n"
	"	out %al, $" S(VM_PORT_SYSCALL) "\n"
	"	cmpq $0, " F(136) "\n"
	"	je 1f\n"
	"	movq $0, " F(136) "\n"
	"	mov %cr3, %rax\n"                 /* flush the whole guest TLB */
	"	mov %rax, %cr3\n"
	"1:	mov " F(128) ", %rax\n"
	"	mov " F(56) ", %rcx\n"
	"	mov " F(64) ", %r11\n"
	"	mov " F(72) ", %rsp\n"
	"	sysretq\n"

	/* #PF: error code on the IST1 stack. */
	".globl vm__pf_entry\n"
	".hidden vm__pf_entry\n"
	"vm__pf_entry:\n"
	"	push %rax\n"
	"	push %rcx\n"
	"	push %rdx\n"
	"	mov 24(%rsp), %rdx\n"             /* error code */
	"	and $3, %edx\n"
	"	cmp $3, %edx\n"                   /* present + write */
	"	jne 9f\n"
	"	mov %cr2, %rax\n"
	"	sub vm__wp+0(%rip), %rax\n"
	"	cmp vm__wp+8(%rip), %rax\n"       /* unsigned: below base wraps */
	"	jae 9f\n"
	"	shr $12, %rax\n"
	"	mov vm__wp+16(%rip), %rcx\n"
	"	mov (%rcx,%rax,8), %rcx\n"        /* &PTE */
	"	mov (%rcx), %rdx\n"
	"	bt $9, %rdx\n"                    /* VM_PTE_SWW: writable on the host */
	"	jnc 9f\n"
	"	lock orq $2, (%rcx)\n"
	"	mov vm__wp+24(%rip), %rcx\n"
	"	lock bts %rax, (%rcx)\n"
	"	lock incq vm__wp+32(%rip)\n"
	"	mov %cr2, %rax\n"
	"	invlpg (%rax)\n"
	"	pop %rdx\n"
	"	pop %rcx\n"
	"	pop %rax\n"
	"	add $8, %rsp\n"
	"	iretq\n"
	"9:	pop %rdx\n"
	"	pop %rcx\n"
	"	pop %rax\n"
	"	push $14\n"
	"	jmp vm__exc_common\n"

	/* vector 32: a TLB shootdown from the host */
	".globl vm__flush_irq\n"
	".hidden vm__flush_irq\n"
	"vm__flush_irq:\n"
	"	push %rax\n"
	"	mov %cr3, %rax\n"
	"	mov %rax, %cr3\n"
	"	pop %rax\n"
	"	iretq\n"

	".irp v, 0,1,2,3,4,5,6,7,9,15,16,18,19,20,22,23,24,25,26,27,28,31\n"
	"vm__exc_\\v: push $0\n"
	"	push $\\v\n"
	"	jmp vm__exc_common\n"
	".endr\n"
	".irp v, 8,10,11,12,13,17,21,29,30\n"
	"vm__exc_\\v: push $\\v\n"
	"	jmp vm__exc_common\n"
	".endr\n"
	"vm__exc_common:\n"                       /* vector, err, rip, cs, rflags, rsp, ss */
	"	push %rax\n"
	"	mov 8(%rsp), %rax\n"
	"	mov %rax, " E(0) "\n"
	"	mov 16(%rsp), %rax\n"
	"	mov %rax, " E(8) "\n"
	"	mov 24(%rsp), %rax\n"
	"	mov %rax, " E(16) "\n"
	"	mov 32(%rsp), %rax\n"
	"	mov %rax, " E(24) "\n"
	"	mov 40(%rsp), %rax\n"
	"	mov %rax, " E(32) "\n"
	"	mov 48(%rsp), %rax\n"
	"	mov %rax, " E(40) "\n"
	"	mov %cr2, %rax\n"
	"	mov %rax, " E(48) "\n"
	"	out %al, $" S(VM_PORT_EXC) "\n"
	"	cmpq $0, " E(56) "\n"    /* retry: the host fixed it (stack growth) */
	"	je 2f\n"
	"	movq $0, " E(56) "\n"
	"	mov %cr3, %rax\n"
	"	mov %rax, %cr3\n"
	"	pop %rax\n"
	"	add $16, %rsp\n"                 /* vector, error code */
	"	iretq\n"
	"2:	hlt\n"
	"	jmp 2b\n"

	/* vm__leave_call: the hypercall that ends the guest run. The host
	 * resumes natively at the `ret` with RAX = 0. */
	".globl vm__leave_call\n"
	".hidden vm__leave_call\n"
	"vm__leave_call:\n"
	"	mov $" S(VM_HC_LEAVE) ", %eax\n"
	"	syscall\n"
	"	ret\n"

	/* vm__switch(host_stack_top, cpu): the frame is at offset 0 of cpu */
	".globl vm__switch\n"
	".hidden vm__switch\n"
	"vm__switch:\n"
	"	mov (%rsp), %rax\n"
	"	mov %rax, 56(%rsi)\n"
	"	lea 8(%rsp), %rax\n"
	"	mov %rax, 72(%rsi)\n"
	"	mov %rbx, 80(%rsi)\n"
	"	mov %rbp, 88(%rsi)\n"
	"	mov %r12, 96(%rsi)\n"
	"	mov %r13, 104(%rsi)\n"
	"	mov %r14, 112(%rsi)\n"
	"	mov %r15, 120(%rsi)\n"
	"	mov %rdi, %rsp\n"
	"	mov %rsi, %rdi\n"
	"	xor %ebp, %ebp\n"
	"	call vm__host_loop\n"
	"	ud2\n"

	/* vm__exit_thread(busy, code) */
	".globl vm__exit_thread\n"
	".hidden vm__exit_thread\n"
	"vm__exit_thread:\n"
	"	mov %rsi, %rdx\n"
	"	mov $60, %eax\n"
	"	movl $0, (%rdi)\n"
	"	mov %rdx, %rdi\n"
	"	syscall\n"
	"	ud2\n"

	/* vm__resume_native(frame) */
	".globl vm__resume_native\n"
	".hidden vm__resume_native\n"
	"vm__resume_native:\n"
	"	mov 72(%rdi), %rsp\n"
	"	mov 80(%rdi), %rbx\n"
	"	mov 88(%rdi), %rbp\n"
	"	mov 96(%rdi), %r12\n"
	"	mov 104(%rdi), %r13\n"
	"	mov 112(%rdi), %r14\n"
	"	mov 120(%rdi), %r15\n"
	"	mov 56(%rdi), %rcx\n"
	"	xor %eax, %eax\n"
	"	jmp *%rcx\n"

	/* vm__sys6: a raw syscall for the host side, which must not touch
	 * errno: the TLS it lives in is also the guest's. */
	".globl vm__sys6\n"
	".hidden vm__sys6\n"
	"vm__sys6:\n"
	"	mov %rdi, %rax\n"
	"	mov %rsi, %rdi\n"
	"	mov %rdx, %rsi\n"
	"	mov %rcx, %rdx\n"
	"	mov %r8, %r10\n"
	"	mov %r9, %r8\n"
	"	mov 8(%rsp), %r9\n"
	"	syscall\n"
	"	ret\n"

	".section .data.rel.ro,\"aw\"\n"
	".balign 8\n"
	".globl vm__exc_table\n"
	".hidden vm__exc_table\n"
	"vm__exc_table:\n"
	".irp v, 0,1,2,3,4,5,6,7,8,9,10,11,12,13\n"
	"	.quad vm__exc_\\v\n"
	".endr\n"
	"	.quad vm__pf_entry\n"
	".irp v, 15,16,17,18,19,20,21,22,23,24,25,26,27,28,29,30,31\n"
	"	.quad vm__exc_\\v\n"
	".endr\n"
	".text\n");
