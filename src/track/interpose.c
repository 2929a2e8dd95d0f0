/* SPDX-License-Identifier: MIT */
/*
 * interpose.c -- the libc functions libvolipmem stands in front of.
 *
 * SIGSEGV: the mprotect tracker's handler must stay installed even when the
 * application installs its own. sigaction() and signal() for SIGSEGV are
 * therefore recorded here (the application's handler is what they set and
 * return) while ours stays with the kernel; faults that are not the
 * tracker's are forwarded to the application's handler, or get the default
 * action (the process dies of SIGSEGV as it would without us).
 *
 * Kernel writes: with mprotect, read() into a read-only heap page fails with
 * EFAULT instead of faulting. read, pread, readv, preadv, recv, recvfrom,
 * recvmsg and fread first make the destination writable (and count it as
 * written) through the tracker's before_kernel_write, after the concurrent
 * copy (commit/cow.c) has saved any page of the write set it still holds
 * read-only. Trackers that see
 * kernel writes (uffd) leave it NULL and these wrappers cost one load.
 *
 * The real functions are found with dlsym(RTLD_NEXT), so sanitizer
 * interceptors in front of us and libc behind us both keep working.
 */
#include <dlfcn.h>
#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include "track/track.h"
#include "util/util.h"

#define VP_EXPORT __attribute__((visibility("default")))

static struct vp_tracker *_Atomic kw_tracker;

static int (*real_sigaction)(int, const struct sigaction *, struct sigaction *);
static sighandler_t (*real_signal)(int, sighandler_t);
static ssize_t (*real_read)(int, void *, size_t);
static ssize_t (*real_pread)(int, void *, size_t, off_t);
static ssize_t (*real_readv)(int, const struct iovec *, int);
static ssize_t (*real_preadv)(int, const struct iovec *, int, off_t);
static ssize_t (*real_recv)(int, void *, size_t, int);
static ssize_t (*real_recvfrom)(int, void *, size_t, int, struct sockaddr *, socklen_t *);
static ssize_t (*real_recvmsg)(int, struct msghdr *, int);
static size_t (*real_fread)(void *, size_t, size_t, FILE *);
static int (*real_vsnprintf)(char *, size_t, const char *, va_list);
static int (*real_vsprintf)(char *, const char *, va_list);

/* lookup -- the next definition of name after ours; when libvolipmem was
 * loaded after libc (e.g. LD_PRELOAD in the wrong order) there is none
 * "next", so take libc's own. */
static void *lookup(const char *name)
{
	void *f = dlsym(RTLD_NEXT, name);
	if (!f) {
		void *libc = dlopen("libc.so.6", RTLD_NOLOAD | RTLD_LAZY);
		if (libc)
			f = dlsym(libc, name);
	}
	return f;
}
#define LOOKUP(name) (real_##name = (__typeof__(real_##name))lookup(#name))

__attribute__((constructor)) static void interpose_init(void)
{
	LOOKUP(sigaction);
	LOOKUP(signal);
	LOOKUP(read);
	LOOKUP(pread);
	LOOKUP(readv);
	LOOKUP(preadv);
	LOOKUP(recv);
	LOOKUP(recvfrom);
	LOOKUP(recvmsg);
	LOOKUP(fread);
	LOOKUP(vsnprintf);
	LOOKUP(vsprintf);
}

/* RESOLVE -- the real function; a call before our constructor ran (from
 * another library's constructor) resolves everything first. */
#define RESOLVE(name) (real_##name ? real_##name : (interpose_init(), real_##name))

/* ---------------- SIGSEGV ownership ---------------- */

static atomic_bool segv_owned;
static struct sigaction app_act;   /* the application's SIGSEGV action */
static bool (*_Atomic segv_fn)(siginfo_t *);
static bool (*_Atomic segv_pre)(siginfo_t *);
static int (*_Atomic kw_pre)(void *, size_t);

static void segv_dispatch(int sig, siginfo_t *si, void *uc)
{
	bool (*pre)(siginfo_t *) = atomic_load(&segv_pre);
	if (pre && pre(si))
		return;
	bool (*fn)(siginfo_t *) = atomic_load(&segv_fn);
	if (fn && fn(si))
		return;
	vp__segv_forward(sig, si, uc);
}

int vp__segv_install(bool (*fn)(siginfo_t *))
{
	atomic_store(&segv_fn, fn);
	if (atomic_load(&segv_owned) || !fn)
		return 0;
	struct sigaction sa, old;
	memset(&sa, 0, sizeof sa);
	sa.sa_sigaction = segv_dispatch;
	sa.sa_flags = SA_SIGINFO | SA_RESTART | SA_NODEFER;
	sigemptyset(&sa.sa_mask);
	if (RESOLVE(sigaction)(SIGSEGV, &sa, &old) != 0)
		return vp__err(-errno, "cannot install the SIGSEGV handler: %s", strerror(errno));
	app_act = old;
	atomic_store(&segv_owned, true);
	return 0;
}

void vp__segv_pre_install(bool (*fault)(siginfo_t *), int (*kw)(void *, size_t))
{
	atomic_store(&kw_pre, kw);
	atomic_store(&segv_pre, fault);
}

void vp__segv_forward(int sig, siginfo_t *si, void *uc)
{
	struct sigaction a = app_act;
	if (a.sa_flags & SA_SIGINFO) {
		if (a.sa_sigaction) {
			a.sa_sigaction(sig, si, uc);
			return;
		}
	} else if (a.sa_handler != SIG_DFL && a.sa_handler != SIG_IGN) {
		a.sa_handler(sig);
		return;
	}
	/* Default action: restore it and return; the faulting instruction runs
	 * again and the kernel kills the process with SIGSEGV. */
	struct sigaction dfl;
	memset(&dfl, 0, sizeof dfl);
	dfl.sa_handler = SIG_DFL;
	RESOLVE(sigaction)(SIGSEGV, &dfl, NULL);
	atomic_store(&segv_owned, false);
}

VP_EXPORT int sigaction(int sig, const struct sigaction *act, struct sigaction *old)
{
	if (sig == SIGSEGV && atomic_load(&segv_owned)) {
		if (old)
			*old = app_act;
		if (act)
			app_act = *act;
		return 0;
	}
	return RESOLVE(sigaction)(sig, act, old);
}

VP_EXPORT sighandler_t signal(int sig, sighandler_t h)
{
	if (sig == SIGSEGV && atomic_load(&segv_owned)) {
		sighandler_t prev = (app_act.sa_flags & SA_SIGINFO) ? (sighandler_t)(void *)app_act.sa_sigaction
								    : app_act.sa_handler;
		memset(&app_act, 0, sizeof app_act);
		app_act.sa_handler = h;
		app_act.sa_flags = SA_RESTART;
		return prev;
	}
	return RESOLVE(signal)(sig, h);
}

/* ---------------- kernel writes into the heap ---------------- */

void vp__interpose_set(struct vp_tracker *t)
{
	atomic_store(&kw_tracker, t && t->ops->before_kernel_write ? t : NULL);
}

/* prepare -- if [buf, buf+n) overlaps the heap, let the tracker open it. */
static inline int prepare(void *buf, size_t n)
{
	struct vp_tracker *t = atomic_load_explicit(&kw_tracker, memory_order_relaxed);
	if (vp_likely(!t) || !n)
		return 0;
	uint8_t *a = buf, *e = a + n;
	if (e <= t->base || a >= t->base + t->len)
		return 0;
	if (a < t->base)
		a = t->base;
	if (e > t->base + t->len)
		e = t->base + t->len;
	int (*pre)(void *, size_t) = atomic_load_explicit(&kw_pre, memory_order_relaxed);
	if (pre)
		pre(a, (size_t)(e - a));
	return t->ops->before_kernel_write(t, a, (size_t)(e - a));
}

static int prepare_iov(const struct iovec *iov, int cnt)
{
	for (int i = 0; i < cnt; i++)
		if (prepare(iov[i].iov_base, iov[i].iov_len))
			return -1;
	return 0;
}

VP_EXPORT ssize_t read(int fd, void *buf, size_t n)
{
	prepare(buf, n);
	return RESOLVE(read)(fd, buf, n);
}

VP_EXPORT ssize_t pread(int fd, void *buf, size_t n, off_t off)
{
	prepare(buf, n);
	return RESOLVE(pread)(fd, buf, n, off);
}

VP_EXPORT ssize_t readv(int fd, const struct iovec *iov, int cnt)
{
	prepare_iov(iov, cnt);
	return RESOLVE(readv)(fd, iov, cnt);
}

VP_EXPORT ssize_t preadv(int fd, const struct iovec *iov, int cnt, off_t off)
{
	prepare_iov(iov, cnt);
	return RESOLVE(preadv)(fd, iov, cnt, off);
}

VP_EXPORT ssize_t recv(int fd, void *buf, size_t n, int flags)
{
	prepare(buf, n);
	return RESOLVE(recv)(fd, buf, n, flags);
}

VP_EXPORT ssize_t recvfrom(int fd, void *buf, size_t n, int flags, struct sockaddr *sa, socklen_t *len)
{
	prepare(buf, n);
	return RESOLVE(recvfrom)(fd, buf, n, flags, sa, len);
}

VP_EXPORT ssize_t recvmsg(int fd, struct msghdr *msg, int flags)
{
	if (msg)
		prepare_iov(msg->msg_iov, (int)msg->msg_iovlen);
	return RESOLVE(recvmsg)(fd, msg, flags);
}

VP_EXPORT size_t fread(void *buf, size_t size, size_t n, FILE *f)
{
	if (size && n <= SIZE_MAX / size)
		prepare(buf, size * n);
	return RESOLVE(fread)(buf, size, n, f);
}

/* ---------------- bulk writes by libc into the heap ---------------- */
/*
 * The cc tracker sees only instrumented stores; the writes libc makes on
 * the program's behalf are recorded here as ranges (vp__cc_note: one
 * compare when the destination is not the tracked heap). The pass plugin
 * records the memcpy/memmove/memset the compiler keeps as intrinsics; these
 * wrappers catch the calls that reach libc, from instrumented code or not.
 * The copies themselves are glibc's checked entry points with an unbounded
 * object size, which are plain copies and need no dlsym (which may itself
 * copy), declared under other C names (asm labels) so that no compiler
 * takes them for its builtins and folds them back into calls to ours. The
 * printf family goes through RTLD_NEXT like read(): a sanitizer's
 * __vsnprintf_chk interceptor calls the next vsnprintf, ours.
 */
/* unbounded -- SIZE_MAX, hidden from the optimiser: with a constant object
 * size LLVM's fortified-call simplifier turns __memcpy_chk(.., SIZE_MAX)
 * back into memcpy, that is, into ours (an endless loop). */
static inline size_t unbounded(void)
{
	size_t m = SIZE_MAX;
	__asm__("" : "+r"(m));
	return m;
}

extern void *libc_memcpy_chk(void *, const void *, size_t, size_t) __asm__("__memcpy_chk");
extern void *libc_memmove_chk(void *, const void *, size_t, size_t) __asm__("__memmove_chk");
extern void *libc_memset_chk(void *, int, size_t, size_t) __asm__("__memset_chk");
extern char *libc_strcpy_chk(char *, const char *, size_t) __asm__("__strcpy_chk");
extern char *libc_stpcpy_chk(char *, const char *, size_t) __asm__("__stpcpy_chk");
extern char *libc_strncpy_chk(char *, const char *, size_t, size_t) __asm__("__strncpy_chk");
extern char *libc_strcat_chk(char *, const char *, size_t) __asm__("__strcat_chk");

VP_EXPORT void *memcpy(void *d, const void *s, size_t n)
{
	vp__cc_note(d, n);
	return libc_memcpy_chk(d, s, n, unbounded());
}

VP_EXPORT void *memmove(void *d, const void *s, size_t n)
{
	vp__cc_note(d, n);
	return libc_memmove_chk(d, s, n, unbounded());
}

VP_EXPORT void *memset(void *d, int c, size_t n)
{
	vp__cc_note(d, n);
	return libc_memset_chk(d, c, n, unbounded());
}

VP_EXPORT char *strcpy(char *d, const char *s)
{
	char *r = libc_strcpy_chk(d, s, unbounded());
	vp__cc_note(d, strlen(d) + 1);
	return r;
}

VP_EXPORT char *stpcpy(char *d, const char *s)
{
	char *e = libc_stpcpy_chk(d, s, unbounded());
	vp__cc_note(d, (size_t)(e - d) + 1);
	return e;
}

VP_EXPORT char *strncpy(char *d, const char *s, size_t n)
{
	vp__cc_note(d, n); /* strncpy pads with NULs to n */
	return libc_strncpy_chk(d, s, n, unbounded());
}

VP_EXPORT char *strcat(char *d, const char *s)
{
	size_t l = strlen(d);
	char *r = libc_strcat_chk(d, s, unbounded());
	vp__cc_note(d + l, strlen(d + l) + 1);
	return r;
}

VP_EXPORT int vsnprintf(char *s, size_t n, const char *fmt, va_list ap)
{
	int r = RESOLVE(vsnprintf)(s, n, fmt, ap);
	if (r >= 0 && n)
		vp__cc_note(s, (size_t)r < n ? (size_t)r + 1 : n);
	return r;
}

VP_EXPORT int snprintf(char *s, size_t n, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int r = vsnprintf(s, n, fmt, ap);
	va_end(ap);
	return r;
}

VP_EXPORT int vsprintf(char *s, const char *fmt, va_list ap)
{
	int r = RESOLVE(vsprintf)(s, fmt, ap);
	if (r >= 0)
		vp__cc_note(s, (size_t)r + 1);
	return r;
}

VP_EXPORT int sprintf(char *s, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int r = vsprintf(s, fmt, ap);
	va_end(ap);
	return r;
}
