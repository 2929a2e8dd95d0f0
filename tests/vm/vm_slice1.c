/* SPDX-License-Identifier: MIT */
/*
 * vm_slice1.c -- libvolimem's first checks (src/vm/, docs/VM.md): the thread runs
 * in a KVM guest and the MMU collects its write set.
 *
 *   1. vm_enter; printf, malloc/free of small and large blocks (brk and
 *      mmap), clock_gettime/gettimeofday (vDSO) against the real syscall,
 *      a file written and read back, fork -> ENOSYS; vm_leave; the program
 *      goes on natively. Cost of a forwarded syscall.
 *   2. VM_DIRTY and VM_WP, each in its own VM: write a known set of pages,
 *      collect: exactly that set; collect again: empty; write another set:
 *      exactly it; a read() into the range is reported. Cost of a first
 *      write, of an in-guest WP fault, of a collect.
 *   3. Children that write to an unmapped address / run ud2 in the guest
 *      die of SIGSEGV / SIGILL.
 *
 * Exit code: 0 passed, 1 a check failed (the message says which), 77
 * vm_probe refused this host, e.g. no /dev/kvm or kvm-pvm (CTest: Skipped,
 * with vm_errmsg's line; vm_skip.h); run it as
 * tests/vm/kvm-guest.sh -- vm_slice1.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include "volimem.h"
#include "vm_skip.h"

#define PG 4096ul

static double now_s(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

#define CHECK(cond, ...) do { if (!(cond)) { printf("vm_slice1: FAIL: " __VA_ARGS__); \
	printf(" (%s:%d)\n", __FILE__, __LINE__); fflush(stdout); exit(1); } } while (0)

static void enter(void)
{
	int r = vm_enter();
	CHECK(r == 0, "vm_enter: %d: %s", r, vm_errmsg());
	CHECK(vm_in_guest(), "vm_in_guest() is 0 after vm_enter");
}

static int cmp_ptr(const void *a, const void *b)
{
	uintptr_t x = *(const uintptr_t *)a, y = *(const uintptr_t *)b;
	return x < y ? -1 : x > y;
}

/* expect -- collect and compare with exactly the pages idx[0..n) of base. */
static void expect(const char *what, char *base, const long *idx, int n)
{
	static void *got[4096];
	long g = vm_collect(got, 4096);
	CHECK(g >= 0, "%s: vm_collect: %ld: %s", what, g, vm_errmsg());
	qsort(got, (size_t)g, sizeof got[0], cmp_ptr);
	int ok = g == n;
	for (int i = 0; ok && i < n; i++)
		ok = got[i] == base + idx[i] * PG;
	if (!ok) {
		printf("vm_slice1: %s: collected %ld pages:", what, g);
		for (long i = 0; i < g && i < 20; i++)
			printf(" %ld", (long)(((char *)got[i] - base) / (long)PG));
		printf("; expected %d:", n);
		for (int i = 0; i < n && i < 20; i++)
			printf(" %ld", idx[i]);
		printf("\n");
	}
	CHECK(ok, "%s: the write set is not exact", what);
}

/* deep -- recursion with 32 KiB frames: grows the stack in the guest. */
static __attribute__((noinline)) long deep(int n)
{
	volatile char frame[32768];
	frame[0] = (char)n;
	frame[sizeof frame - 1] = 1;
	long r = n ? deep(n - 1) : 0;
	return r + frame[0] + frame[sizeof frame - 1];
}

static double t_syscall_us, t_first_dirty_us, t_wp_fault_us, t_collect_dirty_ms, t_collect_wp_ms;

static void test_basic(void)
{
	double t0 = now_s();
	enter();
	double t_enter = (now_s() - t0) * 1e3;
	printf("ok   enter: vm_enter %.1f ms, now printing from the guest (pid %d)\n", t_enter, getpid());

	/* malloc: small blocks (brk heap) and large ones (mmap). */
	char *small[200];
	for (int i = 0; i < 200; i++) {
		small[i] = malloc((size_t)(16 + i * 8));
		CHECK(small[i], "malloc small");
		memset(small[i], i, (size_t)(16 + i * 8));
	}
	char *big = malloc(64 << 20);
	CHECK(big, "malloc 64 MiB");
	for (size_t o = 0; o < (64u << 20); o += 256 * PG)
		big[o] = (char)o;
	char *grow = NULL;
	for (int i = 1; i <= 8; i++) {
		grow = realloc(grow, (size_t)i << 20);   /* mremap */
		CHECK(grow, "realloc to %d MiB", i);
		grow[((size_t)i << 20) - 1] = 1;
	}
	for (int i = 0; i < 200; i++)
		CHECK(small[i][15] == (char)i, "small block %d corrupted", i);
	for (int i = 0; i < 200; i++)
		free(small[i]);
	free(big);
	free(grow);
	char *again = malloc(1 << 20);
	CHECK(again, "malloc after free");
	again[0] = 1;
	free(again);
	printf("ok   malloc: 200 small blocks, 64 MiB, realloc 1..8 MiB, free\n");

	/* Time: the vDSO (reads [vvar] in the guest) against the real syscall. */
	struct timespec v, k;
	struct timeval tv;
	CHECK(clock_gettime(CLOCK_REALTIME, &v) == 0, "clock_gettime");
	CHECK(syscall(SYS_clock_gettime, CLOCK_REALTIME, &k) == 0, "SYS_clock_gettime");
	CHECK(gettimeofday(&tv, NULL) == 0, "gettimeofday");
	double dv = (double)v.tv_sec + v.tv_nsec * 1e-9, dk = (double)k.tv_sec + k.tv_nsec * 1e-9;
	double dt = (double)tv.tv_sec + tv.tv_usec * 1e-6;
	CHECK(dk - dv >= 0 && dk - dv < 0.5 && dt - dk > -0.001 && dt - dk < 0.5,
	      "clock_gettime %.6f, syscall %.6f, gettimeofday %.6f disagree", dv, dk, dt);
	struct vm_stats s0, s1;
	vm_get_stats(&s0);
	for (int i = 0; i < 100; i++)
		clock_gettime(CLOCK_MONOTONIC, &v);
	vm_get_stats(&s1);
	printf("ok   time: 100 clock_gettime(CLOCK_MONOTONIC) made %llu forwarded syscalls (%s)\n",
	       (unsigned long long)(s1.syscalls - s0.syscalls),
	       s1.syscalls == s0.syscalls ? "the vDSO read [vvar] in the guest"
					  : "the vDSO fell back to the syscall: clocksource not vDSO-capable");
	/* The vDSO's clock must bracket the host's: v1 <= syscall <= v2. A
	 * guest TSC offset from the host's would put the vDSO in the past
	 * or future (only when the vDSO does not fall back to the syscall). */
	double worst = 0;
	for (int i = 0; i < 20; i++) {
		struct timespec a, b, c;
		clock_gettime(CLOCK_MONOTONIC, &a);
		syscall(SYS_clock_gettime, CLOCK_MONOTONIC, &b);
		clock_gettime(CLOCK_MONOTONIC, &c);
		double x = (double)a.tv_sec + a.tv_nsec * 1e-9, y = (double)b.tv_sec + b.tv_nsec * 1e-9;
		double z = (double)c.tv_sec + c.tv_nsec * 1e-9;
		CHECK(x <= y && y <= z, "CLOCK_MONOTONIC: vDSO %.9f, syscall %.9f, vDSO %.9f: out of order",
		      x, y, z);
		worst = z - x > worst ? z - x : worst;
	}
	printf("ok   time: 20 x (vDSO <= syscall <= vDSO) on CLOCK_MONOTONIC, widest bracket %.1f us\n",
	       worst * 1e6);
	double m0 = now_s();
	usleep(20000);
	double slept = now_s() - m0;
	CHECK(slept >= 0.019 && slept < 2, "usleep(20 ms) took %.3f s by CLOCK_MONOTONIC", slept);
	printf("ok   time: clock_gettime %.6f vs syscall %.6f vs gettimeofday %.6f; "
	       "usleep(20 ms) measured %.1f ms\n", dv, dk, dt, slept * 1e3);

	long d = deep(120);   /* ~4 MiB: past the 1 MiB touched at entry */
	CHECK(d == 121 + 120 * 121 / 2, "deep recursion returned %ld", d);
	printf("ok   stack: 4 MiB of recursion grew the main thread's stack in the guest\n");

	/* A file written and read back through forwarded syscalls. */
	const char *dir = getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp";
	char path[256];
	snprintf(path, sizeof path, "%s/vm_slice1.%d", dir, getpid());
	FILE *f = fopen(path, "w");
	CHECK(f, "fopen %s for writing: %s", path, strerror(errno));
	for (int i = 0; i < 1000; i++)
		fprintf(f, "line %d\n", i);
	CHECK(fclose(f) == 0, "fclose");
	f = fopen(path, "r");
	CHECK(f, "fopen %s for reading: %s", path, strerror(errno));
	char line[64];
	int lines = 0, bad = 0;
	while (fgets(line, sizeof line, f)) {
		char want[64];
		snprintf(want, sizeof want, "line %d\n", lines++);
		bad += strcmp(line, want) != 0;
	}
	fclose(f);
	unlink(path);
	CHECK(lines == 1000 && !bad, "file read back: %d lines, %d wrong", lines, bad);
	printf("ok   file: 1000 lines written and read back in %s\n", dir);

	errno = 0;
	pid_t p = fork();
	CHECK(p == -1 && errno == ENOSYS, "fork in the guest: %d errno %d, expected -1 ENOSYS", p, errno);
	printf("ok   fork in the guest: -1 ENOSYS (not supported in the VM)\n");

	enum { N = 2000 };
	m0 = now_s();
	for (int i = 0; i < N; i++)
		syscall(SYS_getppid);
	t_syscall_us = (now_s() - m0) / N * 1e6;
	printf("ok   syscall: forwarded getppid round trip %.2f us\n", t_syscall_us);

	struct vm_stats st;
	vm_get_stats(&st);
	CHECK(vm_leave() == 0, "vm_leave: %s", vm_errmsg());
	CHECK(!vm_in_guest(), "vm_in_guest() after vm_leave");
	m0 = now_s();
	for (int i = 0; i < N; i++)
		syscall(SYS_getppid);
	double native = (now_s() - m0) / N * 1e6;
	printf("ok   leave: back on the host after %llu exits, %llu syscalls; native getppid %.2f us\n",
	       (unsigned long long)st.exits, (unsigned long long)st.syscalls, native);
}

static void test_track(int mode)
{
	const char *name = mode == VM_DIRTY ? "VM_DIRTY" : "VM_WP";
	enum { NPG = 65536, NTIME = 1000 };   /* 256 MiB */
	enter();
	char *base = mmap(NULL, NPG * PG, PROT_READ | PROT_WRITE,
			  MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	CHECK(base != MAP_FAILED, "mmap 256 MiB in the guest: %s", strerror(errno));
	/* Pages 20000.. are written once first so the timed writes below
	 * measure the tracker, not the host's first touch. */
	for (long i = 0; i < NTIME; i++)
		base[(20000 + i) * PG] = 1;
	int r = vm_track(base, NPG * PG, mode);
	CHECK(r == 0, "vm_track %s: %d %s", name, r, vm_errmsg());

	static const long set1[] = { 0, 1, 2, 77, 4095, 4096, 30000, 65535 };
	static const long set2[] = { 3, 77, 1000, 65534 };
	for (size_t i = 0; i < sizeof set1 / sizeof set1[0]; i++) {
		base[set1[i] * PG + 100] = 1;
		base[set1[i] * PG + 200] = 2;   /* a second write: no new fault */
	}
	(void)*(volatile char *)(base + 5 * PG);   /* read only: not in the set */
	expect(name, base, set1, 8);
	expect(name, base, NULL, 0);
	for (size_t i = 0; i < sizeof set2 / sizeof set2[0]; i++)
		base[set2[i] * PG + 8] = 3;
	expect(name, base, set2, 4);
	for (size_t i = 0; i < sizeof set1 / sizeof set1[0]; i++)   /* re-armed? */
		base[set1[i] * PG + 300] = 4;
	expect(name, base, set1, 8);
	printf("ok   %s: exact: 8 pages written -> those 8; none -> empty; 4 -> those 4; "
	       "the first 8 again -> those 8\n", name);

	/* read() into the range: the host writes it, the PTE never sees it. */
	const char *dir = getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp";
	char path[256];
	snprintf(path, sizeof path, "%s/vm_slice1_rd.%d", dir, getpid());
	int fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0600);
	CHECK(fd >= 0, "open %s: %s", path, strerror(errno));
	char buf[2 * PG];
	memset(buf, 'x', sizeof buf);
	CHECK(write(fd, buf, sizeof buf) == (ssize_t)sizeof buf, "write");
	CHECK(pread(fd, base + 40000 * PG + 2000, 5000, 0) == 5000, "pread into the range");
	close(fd);
	unlink(path);
	static const long rd[] = { 40000, 40001 };
	expect(name, base, rd, 2);
	printf("ok   %s: pread of 5000 bytes at page 40000 + 2000 -> pages 40000, 40001\n", name);

	double t0 = now_s();
	for (long i = 0; i < NTIME; i++)
		base[(20000 + i) * PG] = 2;
	double tw = (now_s() - t0) / NTIME * 1e6;
	t0 = now_s();
	void **got = malloc(NTIME * sizeof *got);
	long g = vm_collect(got, NTIME);
	double tc = (now_s() - t0) * 1e3;
	CHECK(g == NTIME, "%s: %ld pages collected after %d writes", name, g, NTIME);
	/* max > 0: with max 0 the collect stops before reading a PTE */
	t0 = now_s();
	g = vm_collect(got, NTIME);
	double te = (now_s() - t0) * 1e3;
	CHECK(g == 0, "empty collect: %ld", g);
	free(got);
	struct vm_stats st;
	vm_get_stats(&st);
	if (mode == VM_DIRTY) {
		t_first_dirty_us = tw;
		t_collect_dirty_ms = te;
	} else {
		t_wp_fault_us = tw;
		t_collect_wp_ms = te;
	}
	printf("ok   %s: first write %.2f us/page (%d pages); collect of %d pages %.2f ms; "
	       "empty collect over 65536 pages (256 MiB) %.2f ms = %.2f ms/GiB; wp_faults %llu "
	       "host_marks %llu\n", name, tw, NTIME, NTIME, tc, te, te * 4,
	       (unsigned long long)st.wp_faults, (unsigned long long)st.host_marks);
	CHECK(vm_leave() == 0, "vm_leave: %s", vm_errmsg());
}

/* test_exit -- exit() in the guest flushes stdio and ends the process with
 * its status, as natively. */
static void test_exit(void)
{
	fflush(stdout);
	pid_t p = fork();
	CHECK(p >= 0, "fork: %s", strerror(errno));
	if (p == 0) {
		enter();
		setvbuf(stdout, NULL, _IOFBF, 4096);   /* only exit() will flush it */
		printf("ok   exit: this line was flushed by exit(3) in the guest\n");
		exit(3);
	}
	int status;
	CHECK(waitpid(p, &status, 0) == p, "waitpid");
	CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 3,
	      "child calling exit(3) in the guest: status 0x%x", status);
}

/* test_fault -- a child that faults in the guest dies of sig. */
static void test_fault(int sig)
{
	fflush(stdout);
	pid_t p = fork();
	CHECK(p >= 0, "fork: %s", strerror(errno));
	if (p == 0) {
		enter();
		volatile uintptr_t bad = 0x10;   /* opaque to the compiler */
		if (sig == SIGSEGV)
			*(volatile int *)bad = 1;
		else
			__builtin_trap();
		_exit(0);
	}
	int status;
	CHECK(waitpid(p, &status, 0) == p, "waitpid");
	CHECK(WIFSIGNALED(status) && WTERMSIG(status) == sig,
	      "child faulting in the guest: status 0x%x, expected death by signal %d", status, sig);
	printf("ok   fault: a child's %s in the guest killed it with %s\n",
	       sig == SIGSEGV ? "write to 0x10" : "ud2", strsignal(sig));
}

int main(void)
{
	setvbuf(stdout, NULL, _IOLBF, 0);
	if (vm_probe() != 0)
		vm_skip("vm_slice1", vm_errmsg());   /* no /dev/kvm, kvm-pvm, ... */
	double t0 = now_s();
	test_basic();
	test_track(VM_DIRTY);
	test_track(VM_WP);
	test_exit();
	test_fault(SIGSEGV);
	test_fault(SIGILL);
	printf("vm_slice1: PASS in %.2f s: syscall_us=%.2f first_dirty_write_us=%.2f wp_fault_us=%.2f "
	       "collect_dirty_ms_per_GiB=%.2f collect_wp_ms_per_GiB=%.2f\n", now_s() - t0,
	       t_syscall_us, t_first_dirty_us, t_wp_fault_us, t_collect_dirty_ms * 4,
	       t_collect_wp_ms * 4);
	return 0;
}
