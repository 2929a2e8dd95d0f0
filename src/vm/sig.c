/* SPDX-License-Identifier: MIT */
/*
 * sig.c -- signals for code running in the guest.
 *
 * The application's handlers must run in the guest: a handler that runs on
 * the host side would write the heap through the host's page table, which
 * neither D bits nor guest faults see. So:
 *
 *   - rt_sigaction made in the guest is recorded here (acts[]); the host
 *     gets a trampoline for the signal instead (SIG_DFL and SIG_IGN go to
 *     the host as they are). The trampoline only notes the signal and its
 *     siginfo on the thread's vCPU; a blocking forwarded syscall returns
 *     EINTR and KVM_RUN returns, so the host side gets control soon.
 *   - The host side delivers a noted signal when the vCPU stands at CPL3
 *     (an interrupt window: RFLAGS.IF is only set there) or in the LSTAR
 *     stub after a syscall: it builds the kernel's x86-64 frame on the
 *     guest stack (return address = sa_restorer, ucontext, siginfo, an
 *     FXSAVE image of the FPU state), blocks sa_mask and the signal, and
 *     points RIP at the handler. rt_sigreturn restores the registers, the
 *     FPU state and the mask from the frame, at CPL3 (KVM_SET_REGS/SREGS:
 *     sysret would clobber RCX and R11).
 *   - A syscall interrupted by a handler with SA_RESTART is restarted (RIP
 *     back over the `syscall`, RAX = its number), except those the kernel
 *     never restarts (signal(7)); others return -EINTR.
 *   - Guest exceptions become the signal the kernel would send, delivered
 *     to the handler with si_addr (vm.c's fault()), or the process dies.
 *   - One real-time signal (vm__sig_kick(): SIGRTMAX - 2) is the library's:
 *     it kicks vCPUs out of KVM_RUN. The guest cannot handle or block it.
 *
 * Not done: the AVX upper halves are not saved in the frame (the FXSAVE
 * image holds x87/SSE only); real-time signals sent while one of the same
 * number is pending merge, as standard signals do.
 */
#include <errno.h>
#include <signal.h>
#include <stddef.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/ucontext.h>
#include "vm_internal.h"

/* The kernel's struct sigaction (not glibc's). */
struct ksigaction {
	void *handler;
	unsigned long flags;
	void *restorer;
	uint64_t mask;
};
#define K_SA_RESTORER 0x04000000ul

static struct ksigaction acts[65];   /* the guest's view, by signal number */
static uint64_t ours;                /* bit s-1: the host has our trampoline for s */

static long kio(int fd, unsigned long req, void *arg)
{
	return vm__sys6(SYS_ioctl, fd, (long)req, (long)arg, 0, 0, 0);
}

int vm__sig_kick(void)
{
	return SIGRTMAX - 2;
}

static uint64_t kick_bit(void)
{
	return 1ull << (vm__sig_kick() - 1);
}

static void kick_handler(int sig)
{
	(void)sig;
}

/* trampoline -- a signal the guest handles arrived on the host side. */
static void trampoline(int sig, siginfo_t *si, void *uc)
{
	(void)uc;
	struct vm__cpu *c = vm__self;
	if (!c || sig < 1 || sig > 64)
		return;
	c->siginfo[sig - 1] = *si;
	__atomic_or_fetch(&c->sigpend, 1ull << (sig - 1), __ATOMIC_SEQ_CST);
}

/* host_action -- what the host side installs for the guest's action a. */
static long host_action(int sig, const struct ksigaction *a)
{
	struct sigaction h;
	memset(&h, 0, sizeof h);
	if (a->handler == SIG_DFL || a->handler == SIG_IGN) {
		h.sa_handler = (void (*)(int))a->handler;
		h.sa_flags = (int)(a->flags & (SA_NOCLDSTOP | SA_NOCLDWAIT));
	} else {
		h.sa_sigaction = trampoline;
		h.sa_flags = SA_SIGINFO | (int)(a->flags & (SA_NOCLDSTOP | SA_NOCLDWAIT));
		sigfillset(&h.sa_mask);
	}
	if (sigaction(sig, &h, NULL) != 0)
		return -EINVAL;
	if (h.sa_flags & SA_SIGINFO)
		ours |= 1ull << (sig - 1);
	else
		ours &= ~(1ull << (sig - 1));
	return 0;
}

/* vm__sig_fini -- the VM is gone: the guest's handlers become the host's. */
void vm__sig_fini(void)
{
	for (int sig = 1; sig <= 64; sig++)
		if (ours & (1ull << (sig - 1)))
			vm__sys6(SYS_rt_sigaction, sig, (long)&acts[sig], 0, 8, 0, 0);
	ours = 0;
	signal(vm__sig_kick(), SIG_DFL);
}

/* vm__sig_init -- the kick signal's handler; the guest's view of every
 * action starts as the host's. */
int vm__sig_init(void)
{
	struct sigaction k;
	memset(&k, 0, sizeof k);
	k.sa_handler = kick_handler;
	k.sa_flags = SA_RESTART;
	if (sigaction(vm__sig_kick(), &k, NULL) != 0)
		return vm__err(-errno, "volimem: cannot install the kick signal's handler");
	/* The entering thread may have blocked it natively; threads created in
	 * the VM inherit its mask, and the guest cannot block it again. */
	uint64_t kb = kick_bit();
	vm__sys6(SYS_rt_sigprocmask, SIG_UNBLOCK, (long)&kb, 0, 8, 0, 0);
	for (int sig = 1; sig <= 64; sig++) {
		struct ksigaction a;
		if (vm__sys6(SYS_rt_sigaction, sig, 0, (long)&a, 8, 0, 0) == 0)
			acts[sig] = a;
	}
	return 0;
}

/* is_sync -- signals the guest gets from its own exceptions: never a host
 * trampoline (a fault in the host side's own code must stay fatal). */
static bool is_sync(int sig)
{
	return sig == SIGSEGV || sig == SIGBUS || sig == SIGILL || sig == SIGFPE || sig == SIGTRAP;
}

/* vm__sig_action -- rt_sigaction from the guest. true: answered here. */
bool vm__sig_action(struct vm__frame *f)
{
	int sig = (int)f->a[0];
	const struct ksigaction *na = (const struct ksigaction *)f->a[1];
	struct ksigaction *oa = (struct ksigaction *)f->a[2];
	if (sig < 1 || sig > 64 || f->a[3] != 8)
		return false;   /* the kernel says why */
	if (sig == vm__sig_kick()) {
		vm__say("volimem: signal %d is libvolimem's own (it kicks vCPUs); "
			"rt_sigaction on it in the VM: -EINVAL", sig);
		f->ret = (uint64_t)-EINVAL;
		return true;
	}
	if (sig == SIGKILL || sig == SIGSTOP || (sig >= 32 && sig < SIGRTMIN))
		return false;   /* glibc's own (SIGCANCEL, SIGSETXID): host side */
	struct ksigaction old = acts[sig];
	if (na) {
		struct ksigaction n = *na;
		long r = 0;
		if (!is_sync(sig) || n.handler == SIG_DFL || n.handler == SIG_IGN)
			r = host_action(sig, &n);
		if (r < 0) {
			f->ret = (uint64_t)r;
			return true;
		}
		acts[sig] = n;
	}
	if (oa)
		*oa = old;
	f->ret = 0;
	return true;
}

/* vm__sig_mask -- rt_sigprocmask from the guest: the host thread's mask is
 * the guest thread's, less the kick signal. */
long vm__sig_mask(struct vm__frame *f)
{
	uint64_t set;
	const uint64_t *p = (const uint64_t *)f->a[1];
	if (p && f->a[3] == 8) {
		set = *p & ~kick_bit();
		p = &set;
	}
	return vm__sys6(SYS_rt_sigprocmask, (long)f->a[0], (long)p, (long)f->a[2], (long)f->a[3], 0, 0);
}

/* no_restart -- calls the kernel never restarts after a handler, even with
 * SA_RESTART (signal(7)). */
static bool no_restart(uint64_t nr)
{
	switch (nr) {
	case SYS_select: case SYS_pselect6: case SYS_poll: case SYS_ppoll:
	case SYS_epoll_wait: case SYS_epoll_pwait: case SYS_nanosleep:
	case SYS_clock_nanosleep: case SYS_pause: case SYS_rt_sigsuspend:
	case SYS_rt_sigtimedwait: case SYS_io_getevents: case SYS_semtimedop:
		return true;
	default:
		return false;
	}
}

/* The frame the handler sees: at its entry RSP points at ret and RSP + 8
 * is 16-byte aligned, as after a call. */
struct sigframe {
	uint64_t ret;
	ucontext_t uc;
	siginfo_t info;
};

static void fpu_to_fx(const struct kvm_fpu *k, struct _libc_fpstate *fx)
{
	memset(fx, 0, sizeof *fx);
	fx->cwd = k->fcw;
	fx->swd = k->fsw;
	fx->ftw = k->ftwx;
	fx->fop = k->last_opcode;
	fx->rip = k->last_ip;
	fx->rdp = k->last_dp;
	fx->mxcsr = k->mxcsr;
	fx->mxcr_mask = 0xffff;
	memcpy(fx->_st, k->fpr, sizeof k->fpr);
	memcpy(fx->_xmm, k->xmm, sizeof k->xmm);
}

static void fx_to_fpu(const struct _libc_fpstate *fx, struct kvm_fpu *k)
{
	memset(k, 0, sizeof *k);
	k->fcw = fx->cwd;
	k->fsw = fx->swd;
	k->ftwx = (uint8_t)fx->ftw;
	k->last_opcode = fx->fop;
	k->last_ip = fx->rip;
	k->last_dp = fx->rdp;
	k->mxcsr = fx->mxcsr;
	memcpy(k->fpr, fx->_st, sizeof k->fpr);
	memcpy(k->xmm, fx->_xmm, sizeof k->xmm);
}

static void regs_to_uc(const struct kvm_regs *r, ucontext_t *uc)
{
	greg_t *g = uc->uc_mcontext.gregs;
	g[REG_R8] = (greg_t)r->r8; g[REG_R9] = (greg_t)r->r9; g[REG_R10] = (greg_t)r->r10;
	g[REG_R11] = (greg_t)r->r11; g[REG_R12] = (greg_t)r->r12; g[REG_R13] = (greg_t)r->r13;
	g[REG_R14] = (greg_t)r->r14; g[REG_R15] = (greg_t)r->r15; g[REG_RDI] = (greg_t)r->rdi;
	g[REG_RSI] = (greg_t)r->rsi; g[REG_RBP] = (greg_t)r->rbp; g[REG_RBX] = (greg_t)r->rbx;
	g[REG_RDX] = (greg_t)r->rdx; g[REG_RAX] = (greg_t)r->rax; g[REG_RCX] = (greg_t)r->rcx;
	g[REG_RSP] = (greg_t)r->rsp; g[REG_RIP] = (greg_t)r->rip; g[REG_EFL] = (greg_t)r->rflags;
	g[REG_CSGSFS] = 0x33;
}

static void uc_to_regs(const ucontext_t *uc, struct kvm_regs *r)
{
	const greg_t *g = uc->uc_mcontext.gregs;
	r->r8 = (uint64_t)g[REG_R8]; r->r9 = (uint64_t)g[REG_R9]; r->r10 = (uint64_t)g[REG_R10];
	r->r11 = (uint64_t)g[REG_R11]; r->r12 = (uint64_t)g[REG_R12]; r->r13 = (uint64_t)g[REG_R13];
	r->r14 = (uint64_t)g[REG_R14]; r->r15 = (uint64_t)g[REG_R15]; r->rdi = (uint64_t)g[REG_RDI];
	r->rsi = (uint64_t)g[REG_RSI]; r->rbp = (uint64_t)g[REG_RBP]; r->rbx = (uint64_t)g[REG_RBX];
	r->rdx = (uint64_t)g[REG_RDX]; r->rax = (uint64_t)g[REG_RAX]; r->rcx = (uint64_t)g[REG_RCX];
	r->rsp = (uint64_t)g[REG_RSP]; r->rip = (uint64_t)g[REG_RIP];
	/* user-changeable flags only (CF PF AF ZF SF TF DF OF AC), IF always on */
	r->rflags = ((uint64_t)g[REG_EFL] & 0x40dd5) | 0x202;
}

/* to_cpl3 -- make c run at CPL3 with its current FS base: the vCPU may
 * stand in a CPL0 stub, whose rest is abandoned (it holds nothing). */
static void to_cpl3(struct vm__cpu *c)
{
	struct kvm_sregs sr;
	if (kio(c->fd, KVM_GET_SREGS, &sr) < 0)
		vm__die(SIGABRT, "KVM_GET_SREGS for a signal");
	sr.cs.selector = 0x33;
	sr.cs.dpl = 3;
	sr.cs.type = 11;
	sr.cs.l = 1;
	sr.cs.db = 0;
	sr.ss.selector = 0x2b;
	sr.ss.dpl = 3;
	sr.ss.type = 3;
	sr.ss.db = 1;
	if (kio(c->fd, KVM_SET_SREGS, &sr) < 0)
		vm__die(SIGABRT, "KVM_SET_SREGS for a signal");
}

/* setup_frame -- deliver sig with info to c, interrupted in state r (the
 * CPL3 registers the handler's ucontext records). Returns the registers
 * the handler starts with, or false when the action is not a handler any
 * more (then it was taken here: ignored, or the process ended). */
static bool setup_frame(struct vm__cpu *c, int sig, const siginfo_t *info, struct kvm_regs *r)
{
	struct ksigaction a = acts[sig];
	if (a.handler == SIG_IGN)
		return false;
	if (a.handler == SIG_DFL) {
		if (sig == SIGCHLD || sig == SIGURG || sig == SIGWINCH || sig == SIGCONT)
			return false;
		vm__die(sig, "signal %d (default action) in the VM", sig);
	}
	uint64_t sp = r->rsp;
	stack_t ss;
	if ((a.flags & SA_ONSTACK) && vm__sys6(SYS_sigaltstack, 0, (long)&ss, 0, 0, 0, 0) == 0 &&
	    !(ss.ss_flags & SS_DISABLE) && !(sp - (uint64_t)ss.ss_sp < ss.ss_size))
		sp = (uint64_t)ss.ss_sp + ss.ss_size;
	sp -= 128;   /* the red zone */
	sp = (sp - sizeof(struct _libc_fpstate)) & ~63ull;
	struct _libc_fpstate *fx = (struct _libc_fpstate *)sp;
	sp = ((sp - sizeof(struct sigframe)) & ~15ull) - 8;
	struct sigframe *fr = (struct sigframe *)sp;
	vm__mark_written(sp, (uint64_t)fx + sizeof *fx - sp);

	struct kvm_fpu fpu;
	if (kio(c->fd, KVM_GET_FPU, &fpu) < 0)
		vm__die(SIGABRT, "KVM_GET_FPU for a signal");
	fpu_to_fx(&fpu, fx);
	memset(fr, 0, sizeof *fr);
	fr->ret = (uint64_t)a.restorer;
	fr->info = *info;
	regs_to_uc(r, &fr->uc);
	fr->uc.uc_mcontext.fpregs = fx;
	if (vm__sys6(SYS_sigaltstack, 0, (long)&fr->uc.uc_stack, 0, 0, 0, 0) != 0)
		fr->uc.uc_stack.ss_flags = SS_DISABLE;
	uint64_t old = 0, block = a.mask | ((a.flags & SA_NODEFER) ? 0 : 1ull << (sig - 1));
	block &= ~kick_bit();
	vm__sys6(SYS_rt_sigprocmask, SIG_BLOCK, (long)&block, (long)&old, 8, 0, 0);
	memcpy(&fr->uc.uc_sigmask, &old, 8);
	if (a.flags & SA_RESETHAND) {
		acts[sig].handler = SIG_DFL;
		host_action(sig, &acts[sig]);
	}
	r->rip = (uint64_t)a.handler;
	r->rsp = sp;
	r->rdi = (uint64_t)sig;
	r->rsi = (uint64_t)&fr->info;
	r->rdx = (uint64_t)&fr->uc;
	r->rax = 0;
	r->rflags &= ~0x40500ull;   /* TF DF AC, as the kernel does */
	r->rflags |= 0x202;
	return true;
}

/* start_handler -- deliver sig to c from state r (see setup_frame) and load
 * the handler's registers; cpl3: the vCPU stands in a CPL0 stub, whose rest
 * is abandoned. false if the action was taken here instead. */
static bool start_handler(struct vm__cpu *c, int sig, const siginfo_t *info, struct kvm_regs *r,
			  bool cpl3)
{
	if (!setup_frame(c, sig, info, r))
		return false;
	if (kio(c->fd, KVM_SET_REGS, r) < 0)
		vm__die(SIGABRT, "KVM_SET_REGS for signal %d", sig);
	if (cpl3)
		to_cpl3(c);
	return true;
}

/* take -- the lowest pending signal of c, with its siginfo; 0 if none. */
static int take(struct vm__cpu *c, siginfo_t *info)
{
	uint64_t p = __atomic_load_n(&c->sigpend, __ATOMIC_SEQ_CST);
	if (!p)
		return 0;
	int sig = __builtin_ctzll(p) + 1;
	*info = c->siginfo[sig - 1];
	__atomic_and_fetch(&c->sigpend, ~(1ull << (sig - 1)), __ATOMIC_SEQ_CST);
	return sig;
}

/* vm__sig_deliver -- deliver c's lowest pending signal. how: where the
 * vCPU stands (VM_DELIVER_SYSCALL: in the LSTAR stub after a forwarded
 * call, whose result and restart the frame records; VM_DELIVER_REGS: at
 * CPL3). Returns true if the vCPU now starts a handler at CPL3. */
bool vm__sig_deliver(struct vm__cpu *c, int how)
{
	siginfo_t info;
	int sig = take(c, &info);
	if (!sig)
		return false;
	struct kvm_regs r;
	if (kio(c->fd, KVM_GET_REGS, &r) < 0)
		vm__die(SIGABRT, "KVM_GET_REGS for a signal");
	if (how == VM_DELIVER_SYSCALL) {
		struct vm__frame *f = &c->frame;
		r.rip = r.rcx = f->rip;
		r.rflags = r.r11 = f->rflags;
		r.rsp = f->rsp;
		r.rax = f->ret;
		if (f->ret == (uint64_t)-EINTR && (acts[sig].flags & SA_RESTART) && !no_restart(f->nr)) {
			r.rip -= 2;   /* `syscall` is 2 bytes: run it again */
			r.rax = f->nr;
		}
	}
	/* not started: a stub goes on returning as it would have */
	return start_handler(c, sig, &info, &r, how == VM_DELIVER_SYSCALL);
}

/* vm__sig_fault -- the guest's exception c->exc is signal sig: deliver it
 * to the application's handler (true), or false if it has none. */
bool vm__sig_fault(struct vm__cpu *c, int sig)
{
	struct ksigaction a = acts[sig];
	if (a.handler == SIG_DFL || a.handler == SIG_IGN)
		return false;
	uint64_t blocked = 0;
	vm__sys6(SYS_rt_sigprocmask, SIG_BLOCK, 0, (long)&blocked, 8, 0, 0);
	if (blocked & (1ull << (sig - 1)))
		return false;   /* the kernel kills a process that blocks its own fault */
	const struct vm__exc *e = &c->exc;
	if (vm__s.trace_faults) {
		uint64_t *pte = e->vector == 14 ? vm__pte(e->cr2, false) : NULL;
		vm__say("volimem: guest exception %llu at rip 0x%llx, address 0x%llx (error 0x%llx, "
			"guest PTE 0x%llx, vCPU %d) -> signal %d to the application's handler",
			(unsigned long long)e->vector, (unsigned long long)e->rip, (unsigned long long)e->cr2,
			(unsigned long long)e->err, pte ? (unsigned long long)*pte : 0ull, c->idx, sig);
	}
	struct kvm_regs r;
	if (kio(c->fd, KVM_GET_REGS, &r) < 0)
		vm__die(SIGABRT, "KVM_GET_REGS for a fault");
	/* The exception stub pushed RAX on its stack before exiting. */
	r.rax = *(const uint64_t *)r.rsp;
	r.rip = e->rip;
	r.rsp = e->rsp;
	r.rflags = e->rflags;
	siginfo_t info;
	memset(&info, 0, sizeof info);
	info.si_signo = sig;
	if (e->vector == 14) {
		info.si_code = (e->err & 1) ? SEGV_ACCERR : SEGV_MAPERR;
		info.si_addr = (void *)e->cr2;
	} else {
		info.si_code = sig == SIGILL ? ILL_ILLOPN : sig == SIGFPE ? FPE_INTDIV : 0;
		info.si_addr = (void *)e->rip;
	}
	return start_handler(c, sig, &info, &r, true);
}

/* vm__sig_return -- rt_sigreturn from the guest: the handler returned
 * through sa_restorer, RSP at the ucontext. */
void vm__sig_return(struct vm__cpu *c, struct vm__frame *f)
{
	const ucontext_t *uc = (const ucontext_t *)(f->rsp);
	struct kvm_regs r;
	memset(&r, 0, sizeof r);
	uc_to_regs(uc, &r);
	if (uc->uc_mcontext.fpregs) {
		struct kvm_fpu fpu;
		fx_to_fpu(uc->uc_mcontext.fpregs, &fpu);
		kio(c->fd, KVM_SET_FPU, &fpu);
	}
	uint64_t mask;
	memcpy(&mask, &uc->uc_sigmask, 8);
	mask &= ~kick_bit();
	vm__sys6(SYS_rt_sigprocmask, SIG_SETMASK, (long)&mask, 0, 8, 0, 0);
	if (kio(c->fd, KVM_SET_REGS, &r) < 0)
		vm__die(SIGABRT, "KVM_SET_REGS at rt_sigreturn");
	to_cpl3(c);
}
