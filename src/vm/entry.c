/* SPDX-License-Identifier: MIT */
/*
 * entry.c -- the guest's CPL0 stubs and the switches between host and
 * guest, in x86-64 assembly.
 *
 *   vm__lstar       LSTAR: a `syscall` at CPL3 lands here at CPL0. Stores
 *                   the registers in vm__frame, exits with `out` (the host
 *                   side runs the syscall), loads the result, reloads CR3
 *                   when the host changed the page table, sysretq. It never
 *                   touches the stack: RSP is still the application's and
 *                   its red zone is live.
 *   vm__pf_entry    #PF (IST1): a VM_WP first write to a tracked page whose
 *                   host mapping is writable -> set RW, record the page in
 *                   vm__wp.bitmap, invlpg, iretq: no exit. Else a real fault.
 *   vm__exc_N       the other exceptions: store vector, error code, frame
 *                   and CR2 in vm__exc and exit; the host turns them into
 *                   the signal the process would have got natively, or
 *                   (stack growth) fixes the page table and sets retry:
 *                   then CR3 is reloaded and the instruction retried.
 *   vm__switch      host: save the caller's callee-saved registers, RSP and
 *                   return address (the guest resumes there), then run the
 *                   exit loop on the host's own stack.
 *   vm__resume_native  host: continue natively where the guest called
 *                   vm__leave_call (callee-saved registers, RSP, RIP).
 *
 * The stubs address the .bss blocks RIP-relatively: the guest sees the
 * process at the same virtual addresses, and CPL0 may read and write U=1
 * pages (SMEP and SMAP stay off).
 */
#include <stddef.h>
#include <linux/kvm.h>
#include "vm_internal.h"

struct vm__frame vm__frame;
struct vm__exc vm__exc;
struct vm__wp vm__wp;

_Static_assert(offsetof(struct vm__frame, rip) == 56, "asm offset");
_Static_assert(offsetof(struct vm__frame, rbx) == 80, "asm offset");
_Static_assert(offsetof(struct vm__frame, ret) == 128, "asm offset");
_Static_assert(offsetof(struct vm__frame, flush) == 136, "asm offset");
_Static_assert(offsetof(struct vm__wp, faults) == 32, "asm offset");
_Static_assert(offsetof(struct vm__exc, retry) == 56, "asm offset");

#define S_(x) #x
#define S(x) S_(x)

__asm__(
	".text\n"
	".globl vm__lstar\n"
	".hidden vm__lstar\n"
	"vm__lstar:\n"
	"	mov %rax, vm__frame+0(%rip)\n"
	"	mov %rdi, vm__frame+8(%rip)\n"
	"	mov %rsi, vm__frame+16(%rip)\n"
	"	mov %rdx, vm__frame+24(%rip)\n"
	"	mov %r10, vm__frame+32(%rip)\n"
	"	mov %r8, vm__frame+40(%rip)\n"
	"	mov %r9, vm__frame+48(%rip)\n"
	"	mov %rcx, vm__frame+56(%rip)\n"
	"	mov %r11, vm__frame+64(%rip)\n"
	"	mov %rsp, vm__frame+72(%rip)\n"
	"	mov %rbx, vm__frame+80(%rip)\n"
	"	mov %rbp, vm__frame+88(%rip)\n"
	"	mov %r12, vm__frame+96(%rip)\n"
	"	mov %r13, vm__frame+104(%rip)\n"
	"	mov %r14, vm__frame+112(%rip)\n"
	"	mov %r15, vm__frame+120(%rip)\n"
	"	out %al, $" S(VM_PORT_SYSCALL) "\n"
	"	mov vm__frame+128(%rip), %rax\n"
	"	cmpq $0, vm__frame+136(%rip)\n"
	"	je 1f\n"
	"	movq $0, vm__frame+136(%rip)\n"
	"	mov %cr3, %rcx\n"                 /* flush the whole guest TLB */
	"	mov %rcx, %cr3\n"
	"	mov vm__frame+56(%rip), %rcx\n"
	"1:	sysretq\n"

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
	"	or $2, %rdx\n"
	"	mov %rdx, (%rcx)\n"
	"	mov vm__wp+24(%rip), %rcx\n"
	"	bts %rax, (%rcx)\n"
	"	incq vm__wp+32(%rip)\n"
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
	"	mov %rax, vm__exc+0(%rip)\n"
	"	mov 16(%rsp), %rax\n"
	"	mov %rax, vm__exc+8(%rip)\n"
	"	mov 24(%rsp), %rax\n"
	"	mov %rax, vm__exc+16(%rip)\n"
	"	mov 32(%rsp), %rax\n"
	"	mov %rax, vm__exc+24(%rip)\n"
	"	mov 40(%rsp), %rax\n"
	"	mov %rax, vm__exc+32(%rip)\n"
	"	mov 48(%rsp), %rax\n"
	"	mov %rax, vm__exc+40(%rip)\n"
	"	mov %cr2, %rax\n"
	"	mov %rax, vm__exc+48(%rip)\n"
	"	out %al, $" S(VM_PORT_EXC) "\n"
	"	cmpq $0, vm__exc+56(%rip)\n"    /* retry: the host fixed it (stack growth) */
	"	je 2f\n"
	"	movq $0, vm__exc+56(%rip)\n"
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

	/* vm__switch(host_stack_top) */
	".globl vm__switch\n"
	".hidden vm__switch\n"
	"vm__switch:\n"
	"	mov (%rsp), %rax\n"
	"	mov %rax, vm__frame+56(%rip)\n"
	"	lea 8(%rsp), %rax\n"
	"	mov %rax, vm__frame+72(%rip)\n"
	"	mov %rbx, vm__frame+80(%rip)\n"
	"	mov %rbp, vm__frame+88(%rip)\n"
	"	mov %r12, vm__frame+96(%rip)\n"
	"	mov %r13, vm__frame+104(%rip)\n"
	"	mov %r14, vm__frame+112(%rip)\n"
	"	mov %r15, vm__frame+120(%rip)\n"
	"	mov %rdi, %rsp\n"
	"	xor %ebp, %ebp\n"
	"	call vm__host_loop\n"
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
