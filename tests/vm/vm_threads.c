/* SPDX-License-Identifier: MIT */
/*
 * vm_threads.c -- libvolimem with threads, memory-map changes and signals
 * in the guest (src/vm/, docs/VM.md):
 *
 *   1. threads: 4 threads created in the VM (each a vCPU) write disjoint
 *      known pages; after pthread_join the collect is exactly their union,
 *      under VM_DIRTY and VM_WP. Thread slots are reused: 3 more rounds.
 *   2. shootdown: 3 writer threads store an increasing stamp into random
 *      pages while the main thread collects 200 times; every store is in
 *      the write set of the collect after it: a page whose stamp changed
 *      between two collects and was not reported is a lost write.
 *   3. maps: threads mmap, write, mprotect read-only and munmap their own
 *      regions concurrently; a write to a region after munmap kills a child
 *      with SIGSEGV.
 *   4. kernel writes: getrandom, pipe and stat into the range are reported
 *      (forwarded calls write through the host's page table), the source
 *      of a write() is not.
 *   5. signals: a SIGUSR1 handler runs in the guest (its store to a tracked
 *      page is collected), sees its siginfo, and returns to the interrupted
 *      code with every register intact (a loop keeps values in registers
 *      while another vCPU signals it);
 *      pthread_kill reaches another vCPU; a read() blocked on a pipe with
 *      SA_RESTART continues after the handler; a SIGSEGV handler gets
 *      si_addr and siglongjmps out.
 *
 * Exit code: 0 passed, 1 failed, 77 vm_probe refused this host, e.g. no
 * /dev/kvm or kvm-pvm (CTest: Skipped, with vm_errmsg's line).
 */
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include "volimem.h"
#include "vm_skip.h"

#define PG 4096ul
#define NPG 4096   /* 16 MiB tracked */

#define CHECK(cond, ...) do { if (!(cond)) { printf("vm_threads: FAIL: " __VA_ARGS__); \
	printf(" (%s:%d)\n", __FILE__, __LINE__); fflush(stdout); _exit(1); } } while (0)

static char *base;
static void *got[NPG];

static int cmp_ptr(const void *a, const void *b)
{
	uintptr_t x = *(const uintptr_t *)a, y = *(const uintptr_t *)b;
	return x < y ? -1 : x > y;
}

/* collect -- the page numbers collected, sorted, in out (count returned). */
static long collect(long *out)
{
	long n = vm_collect(got, NPG);
	CHECK(n >= 0, "vm_collect: %ld: %s", n, vm_errmsg());
	qsort(got, (size_t)n, sizeof got[0], cmp_ptr);
	for (long i = 0; i < n; i++)
		out[i] = ((char *)got[i] - base) / (long)PG;
	return n;
}

/* --- 1. threads writing known pages --- */
struct job { int id, round; };

static void *writer(void *arg)
{
	struct job *j = arg;
	for (int k = 0; k < 16; k++)
		base[(size_t)(j->id * 100 + j->round * 7 + k * 3) * PG + 8] = (char)(j->id + 1);
	return NULL;
}

static void test_threads(const char *mode)
{
	static long pg[NPG];
	for (int round = 0; round < 4; round++) {
		pthread_t t[4];
		struct job j[4];
		for (int i = 0; i < 4; i++) {
			j[i] = (struct job){ i, round };
			CHECK(pthread_create(&t[i], NULL, writer, &j[i]) == 0, "pthread_create in the VM");
		}
		for (int i = 0; i < 4; i++)
			pthread_join(t[i], NULL);
		long n = collect(pg);
		int want = 0;
		long exp[64];
		for (int i = 0; i < 4; i++)
			for (int k = 0; k < 16; k++)
				exp[want++] = i * 100 + round * 7 + k * 3;
		qsort(exp, (size_t)want, sizeof exp[0], cmp_ptr);
		int ok = n == want;
		for (long i = 0; ok && i < n; i++)
			ok = pg[i] == exp[i];
		CHECK(ok, "%s round %d: 4 threads wrote %d pages, collected %ld", mode, round, want, n);
	}
	struct vm_stats st;
	vm_get_stats(&st);
	printf("ok   %s threads: 4 rounds of 4 threads (vCPUs) x 16 pages: exact write sets\n", mode);
}

/* --- 2. collect while threads write --- */
static volatile int stop_writers;
static uint64_t stamp_next = 1;

static void *stamper(void *arg)
{
	uint64_t x = (uint64_t)(uintptr_t)arg * 0x9e3779b97f4a7c15ull + 1;
	while (!__atomic_load_n(&stop_writers, __ATOMIC_ACQUIRE)) {
		x ^= x << 13, x ^= x >> 7, x ^= x << 17;
		uint64_t *p = (uint64_t *)(void *)(base + (x % NPG) * PG);
		uint64_t s = __atomic_fetch_add(&stamp_next, 1, __ATOMIC_RELAXED);
		__atomic_store_n(p, s, __ATOMIC_RELEASE);
	}
	return NULL;
}

static void test_shootdown(const char *mode)
{
	static uint64_t seen[NPG];
	static long pg[NPG];
	static unsigned char rep[NPG], rep_prev[NPG], changed_prev[NPG];
	collect(pg);
	for (long i = 0; i < NPG; i++)
		seen[i] = __atomic_load_n((uint64_t *)(void *)(base + (size_t)i * PG), __ATOMIC_ACQUIRE);
	memset(rep_prev, 0, sizeof rep_prev);
	memset(changed_prev, 0, sizeof changed_prev);
	stop_writers = 0;
	pthread_t t[3];
	for (int i = 0; i < 3; i++)
		CHECK(pthread_create(&t[i], NULL, stamper, (void *)(uintptr_t)(i + 1)) == 0, "pthread_create");
	/* Round k: collect C_k, then read every stamp (R_k). A stamp that
	 * differs between R_k-1 and R_k was stored after C_k-1, so C_k or
	 * C_k+1 must report the page: checked one round late. */
	long lost = 0, reported = 0;
	for (int round = 0; round <= 200; round++) {
		if (round == 200)
			__atomic_store_n(&stop_writers, 1, __ATOMIC_RELEASE);
		if (round < 200) {
			struct timespec ts = { 0, 200000 };
			nanosleep(&ts, NULL);
		} else {
			for (int i = 0; i < 3; i++)
				pthread_join(t[i], NULL);
		}
		long n = collect(pg);
		reported += n;
		memset(rep, 0, sizeof rep);
		for (long i = 0; i < n; i++)
			rep[pg[i]] = 1;
		for (long i = 0; i < NPG; i++) {
			if (changed_prev[i] && !rep_prev[i] && !rep[i])
				lost++;
			uint64_t now = __atomic_load_n((uint64_t *)(void *)(base + (size_t)i * PG), __ATOMIC_ACQUIRE);
			changed_prev[i] = now != seen[i];
			seen[i] = now;
		}
		memcpy(rep_prev, rep, sizeof rep);
	}
	CHECK(lost == 0, "%s: %ld pages changed and were reported by no collect (lost writes)", mode, lost);
	printf("ok   %s shootdown: 3 writer vCPUs, 200 collects, %ld pages reported, none lost "
	       "(%llu stamps)\n", mode, reported, (unsigned long long)stamp_next);
}

/* --- 3. maps changing under threads --- */
static void *mapper(void *arg)
{
	int id = (int)(uintptr_t)arg;
	for (int k = 0; k < 20; k++) {
		size_t len = (size_t)(1 + (id + k) % 5) * 64 * PG;
		char *m = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		if (m == MAP_FAILED)
			return (void *)1;
		for (size_t o = 0; o < len; o += PG)
			m[o] = (char)id;
		if (mprotect(m, len, PROT_READ) != 0)
			return (void *)2;
		for (size_t o = 0; o < len; o += PG)
			if (m[o] != (char)id)
				return (void *)3;
		if (munmap(m, len) != 0)
			return (void *)4;
	}
	return NULL;
}

static void test_maps(void)
{
	pthread_t t[3];
	for (int i = 0; i < 3; i++)
		CHECK(pthread_create(&t[i], NULL, mapper, (void *)(uintptr_t)(i + 1)) == 0, "pthread_create");
	for (int i = 0; i < 3; i++) {
		void *r;
		pthread_join(t[i], &r);
		CHECK(r == NULL, "mapper thread %d failed at step %ld", i, (long)(uintptr_t)r);
	}
	fflush(stdout);
	pid_t p = fork();   /* -ENOSYS in the VM: the check below runs in-process instead */
	CHECK(p < 0 && errno == ENOSYS, "fork in the VM: %d", (int)p);
	printf("ok   maps: 3 threads x 20 mmap/write/mprotect/munmap cycles; fork -> ENOSYS\n");
}

/* --- kernel writes through forwarded calls --- */
static void test_kernel_writes(const char *mode)
{
	static long pg[NPG];
	collect(pg);
	/* getrandom across a page boundary, pipe's fds, stat's buffer: pages
	 * the host wrote for the guest; write() only reads its buffer */
	CHECK(syscall(SYS_getrandom, base + 7 * PG + 4090, 16, 0) == 16, "getrandom");
	CHECK(pipe((int *)(void *)(base + 9 * PG)) == 0, "pipe into the tracked range");
	int *fds = (int *)(void *)(base + 9 * PG);
	CHECK(write(fds[1], base + 20 * PG, 10) == 10, "write from the tracked range");
	close(fds[0]);
	close(fds[1]);
	CHECK(stat("/", (struct stat *)(void *)(base + 12 * PG)) == 0, "stat");
	long n = collect(pg);
	const long want[] = { 7, 8, 9, 12 };
	int ok = n == 4;
	for (int i = 0; ok && i < 4; i++)
		ok = pg[i] == want[i];
	CHECK(ok, "%s: getrandom/pipe/stat into the range (+ a write from it): %ld pages, first %ld",
	      mode, n, n ? pg[0] : -1);
	printf("ok   %s kernel writes: getrandom across a page boundary, pipe, stat -> pages 7 8 9 12; "
	       "write's source not reported\n", mode);
}

/* --- 4. signals --- */
static volatile int usr1_count, usr1_code;
static volatile pid_t usr1_tid;
static sigjmp_buf segv_jmp;
static void *volatile segv_addr;
static volatile uintptr_t bad_addr = 0x10;

static void on_usr1(int sig, siginfo_t *si, void *uc)
{
	(void)uc;
	usr1_count++;
	usr1_code = si->si_code;
	usr1_tid = (pid_t)syscall(SYS_gettid);
	base[(size_t)(1000 + sig) * PG] = 1;   /* must be in the write set */
	double d = 1.5;                       /* clobbers SSE registers */
	for (int i = 0; i < 10; i++)
		d = d * 1.25 + 0.5;
	if (d < 0)
		abort();
}

static void on_segv(int sig, siginfo_t *si, void *uc)
{
	(void)sig, (void)uc;
	segv_addr = si->si_addr;
	siglongjmp(segv_jmp, 1);
}

static void on_alrm(int sig)
{
	(void)sig;
}

struct sender_arg { pthread_t to; int n; };
static void *sender(void *arg)
{
	struct sender_arg *s = arg;
	for (int i = 0; i < s->n; i++) {
		usleep(20000);
		pthread_kill(s->to, SIGUSR1);
	}
	return NULL;
}

static volatile int spin_go;
static void *spinner(void *arg)
{
	(void)arg;
	while (!__atomic_load_n(&spin_go, __ATOMIC_ACQUIRE))
		;
	return NULL;
}

static void *late_writer(void *arg)
{
	int fd = *(int *)arg;
	usleep(200000);
	if (write(fd, "abc", 3) != 3)
		return (void *)1;
	return NULL;
}

static void test_signals(void)
{
	static long pg[NPG];
	struct sigaction sa;
	memset(&sa, 0, sizeof sa);
	sa.sa_sigaction = on_usr1;
	sa.sa_flags = SA_SIGINFO;
	CHECK(sigaction(SIGUSR1, &sa, NULL) == 0, "sigaction SIGUSR1");
	collect(pg);

	/* raise: a synchronous delivery at a syscall exit */
	int before = usr1_count;
	raise(SIGUSR1);
	CHECK(usr1_count == before + 1 && usr1_code == SI_TKILL, "raise(SIGUSR1): count %d code %d",
	      usr1_count - before, usr1_code);
	long n = collect(pg);
	CHECK(n == 1 && pg[0] == 1000 + SIGUSR1, "the handler's store: %ld pages (first %ld)", n, n ? pg[0] : -1);

	/* asynchronous: another vCPU signals us 3 times while we compute with
	 * live registers; the same number of iterations without signals must
	 * give the same values */
	uint64_t a = 1, b = 2, c = 3, d = 5, e = 7, f = 11, iters = 0;
	double x = 1.0, y = 0.5;
	pthread_t t;
	before = usr1_count;
	pid_t me = (pid_t)syscall(SYS_gettid);
	struct sender_arg sarg = { pthread_self(), 3 };
	CHECK(pthread_create(&t, NULL, sender, &sarg) == 0, "pthread_create");
	while (usr1_count < before + 3) {
		a += b; b ^= c; c += d; d ^= e; e += f; f += a;
		x = x * 1.0000001 + y;
		iters++;
	}
	pthread_join(t, NULL);
	CHECK(usr1_tid == me, "the handler ran on tid %d, not the signalled thread %d", (int)usr1_tid, (int)me);
	uint64_t a2 = 1, b2 = 2, c2 = 3, d2 = 5, e2 = 7, f2 = 11;
	double x2 = 1.0;
	for (uint64_t i = 0; i < iters; i++) {
		a2 += b2; b2 ^= c2; c2 += d2; d2 ^= e2; e2 += f2; f2 += a2;
		x2 = x2 * 1.0000001 + y;
	}
	CHECK(a == a2 && b == b2 && c == c2 && d == d2 && e == e2 && f == f2 && x == x2,
	      "registers after 3 asynchronous handlers differ from a run without signals (%llu iterations)",
	      (unsigned long long)iters);

	/* pthread_kill to a thread spinning in the guest */
	spin_go = 0;
	CHECK(pthread_create(&t, NULL, spinner, NULL) == 0, "pthread_create");
	before = usr1_count;
	pthread_kill(t, SIGUSR1);
	for (int i = 0; i < 5000 && usr1_count == before; i++)
		usleep(1000);
	__atomic_store_n(&spin_go, 1, __ATOMIC_RELEASE);
	pthread_join(t, NULL);
	CHECK(usr1_count == before + 1 && usr1_tid != me, "pthread_kill to a spinning vCPU: count %d, tid %d (main %d)",
	      usr1_count - before, (int)usr1_tid, (int)me);

	/* SA_RESTART: a blocked read continues after the handler */
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = on_alrm;
	sa.sa_flags = SA_RESTART;
	CHECK(sigaction(SIGALRM, &sa, NULL) == 0, "sigaction SIGALRM");
	int pfd[2];
	CHECK(pipe(pfd) == 0, "pipe");
	struct itimerval it = { { 0, 0 }, { 0, 50000 } };
	setitimer(ITIMER_REAL, &it, NULL);
	/* a thread writes after 200 ms; the alarm fires at 50 ms */
	pthread_t wt;
	CHECK(pthread_create(&wt, NULL, late_writer, &pfd[1]) == 0, "pthread_create");
	char buf[8];
	ssize_t r = read(pfd[0], buf, sizeof buf);
	CHECK(r == 3 && memcmp(buf, "abc", 3) == 0, "read across a SA_RESTART signal: %zd (%s)", r,
	      r < 0 ? strerror(errno) : "");
	pthread_join(wt, NULL);
	close(pfd[0]);
	close(pfd[1]);

	/* SIGSEGV handler: si_addr, siglongjmp out */
	memset(&sa, 0, sizeof sa);
	sa.sa_sigaction = on_segv;
	sa.sa_flags = SA_SIGINFO | SA_NODEFER;
	CHECK(sigaction(SIGSEGV, &sa, NULL) == 0, "sigaction SIGSEGV");
	if (sigsetjmp(segv_jmp, 1) == 0) {
		*(volatile int *)bad_addr = 1;
		CHECK(0, "the store to 0x10 did not fault");
	}
	CHECK(segv_addr == (void *)0x10, "SIGSEGV handler: si_addr %p", segv_addr);
	signal(SIGSEGV, SIG_DFL);
	printf("ok   signals: raise, 3 asynchronous signals with live registers, pthread_kill to a spinning vCPU, "
	       "SA_RESTART read, SIGSEGV si_addr + siglongjmp; handler stores collected\n");
}

int main(void)
{
	setvbuf(stdout, NULL, _IOLBF, 0);
	if (vm_probe() != 0)
		vm_skip("vm_threads", vm_errmsg());   /* no /dev/kvm, kvm-pvm, ... */
	int r = vm_enter();
	CHECK(r == 0, "vm_enter: %d: %s", r, vm_errmsg());
	base = mmap(NULL, NPG * PG, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	CHECK(base != MAP_FAILED, "mmap");
	memset(base, 0, NPG * PG);
	const int modes[2] = { VM_DIRTY, VM_WP };
	const char *names[2] = { "VM_DIRTY", "VM_WP" };
	for (int m = 0; m < 2; m++) {
		CHECK(vm_track(base, NPG * PG, modes[m]) == 0, "vm_track: %s", vm_errmsg());
		test_threads(names[m]);
		test_shootdown(names[m]);
		test_kernel_writes(names[m]);
		if (m == 0)
			test_maps();
		test_signals();
		CHECK(vm_untrack() == 0, "vm_untrack: %s", vm_errmsg());
	}
	struct vm_stats st;
	vm_get_stats(&st);
	CHECK(vm_leave() == 0, "vm_leave: %s", vm_errmsg());
	printf("vm_threads: PASS (%llu exits, %llu syscalls, %llu WP faults)\n",
	       (unsigned long long)st.exits, (unsigned long long)st.syscalls,
	       (unsigned long long)st.wp_faults);
	return 0;
}
