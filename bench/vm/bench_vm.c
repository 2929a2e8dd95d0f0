/* SPDX-License-Identifier: MIT */
/*
 * bench_vm.c -- per-event costs of the write-tracking mechanisms, side by
 * side in one process run: libvolimem's VM_DIRTY and VM_WP (src/vm/,
 * docs/VM.md) against the host kernel's userfaultfd async write-protect
 * and an mprotect + SIGSEGV tracker, plus a forwarded system call against
 * a native one.
 *
 * Order: everything native first (getppid, uffd, mprotect), then the VM
 * part, one VM per (mode, range) since libvolimem tracks one range per VM.
 * vm_enter needs a single-threaded process: this program never starts a
 * thread (uffd in async mode needs no handler thread).
 *
 * Every event is a median of many repetitions, in ns:
 *   getppid           one system call round trip (native; vm: forwarded)
 *   first-write       first store to a clean, populated, armed page; timed
 *                     in batches of 64 pages, the median of batch means
 *   collect-*-{64m,256m}  one collect + re-arm of the whole range, with
 *                     nothing, 1 or 512 pages written since the last one;
 *                     also given in ms per GiB of range
 * Output: one "event=E mech=M ns=X n=N ..." line per result, one
 * "unavailable: mech=M reason=..." line per mechanism that cannot run here
 * (no /dev/kvm, kvm-pvm, a kernel without WP_ASYNC or PAGEMAP_SCAN), a
 * table for humans at the end. Exit 0 unless a mechanism that ran returned a wrong
 * write set (1) or the arguments are wrong (2). bench/vm/run.py runs it on
 * the host and in the qemu guest and writes docs/bench-vm.md.
 *
 *   bench_vm [--quick]      --quick: few repetitions (the ctest smoke test)
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>

#include "track/uffd_abi.h"
#include "volimem.h"

#define PG 4096ul
#define MiB (1ul << 20)
#define GiB (1ul << 30)
#define BATCH 64          /* first writes timed together */
#define MAXN 512          /* most pages written before one collect */

/* Repetition counts; --quick divides them. */
static struct {
	int sys_batches, sys_native_per, sys_vm_per; /* getppid */
	int fw_batches;                              /* first-write: batches of BATCH */
	int collects;                                /* per collect event */
} reps = {50, 200, 40, 64, 15};

static const size_t range_mib[] = {64, 256};
static const int written[] = {0, 1, MAXN};
#define NRANGE (sizeof range_mib / sizeof range_mib[0])
#define NWRITTEN (sizeof written / sizeof written[0])

static int failed;

static uint64_t now_ns(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (uint64_t)t.tv_sec * 1000000000u + (uint64_t)t.tv_nsec;
}

static int cmp_d(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

/* median -- sorts v. */
static double median(double *v, int n)
{
	qsort(v, (size_t)n, sizeof *v, cmp_d);
	return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

/* ---- results ---------------------------------------------------------- */

static const char *const mechs[] = {"native", "uffd", "mprotect", "vm-dirty", "vm-wp", "vm"};
#define NMECH (sizeof mechs / sizeof mechs[0])

struct result { char event[32]; int mech; double ns; int n; size_t mib; };
static struct result results[64];
static int nresults;
static char why_unavail[NMECH][400];

static int mech_id(const char *m)
{
	for (size_t i = 0; i < NMECH; i++)
		if (!strcmp(mechs[i], m))
			return (int)i;
	abort();
}

/* report -- one result line, kept for the table. mib: the range size of a
 * collect event (0 for the others), which adds ms per GiB. */
static void report(const char *event, const char *mech, double *v, int n, double div, size_t mib)
{
	double ns = median(v, n) / div;
	printf("event=%s mech=%s ns=%.0f n=%d", event, mech, ns, n);
	if (mib)
		printf(" range_mib=%zu ms_per_gib=%.3f", mib, ns / 1e6 * (double)(GiB / (mib * MiB)));
	printf("\n");
	if (nresults < (int)(sizeof results / sizeof results[0])) {
		struct result *r = &results[nresults++];
		snprintf(r->event, sizeof r->event, "%s", event);
		r->mech = mech_id(mech);
		r->ns = ns;
		r->n = n;
		r->mib = mib;
	}
}

static void unavailable(const char *mech, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* unavailable -- this mechanism cannot run here: say why, once. */
static void unavailable(const char *mech, const char *fmt, ...)
{
	char *w = why_unavail[mech_id(mech)];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(w, sizeof why_unavail[0], fmt, ap);
	va_end(ap);
	printf("unavailable: mech=%s reason=%s\n", mech, w);
}

/* wrong -- a mechanism returned a wrong write set: the numbers are void. */
static void wrong(const char *mech, const char *what, long got, long want)
{
	printf("error: mech=%s %s: %ld pages collected, %ld written\n", mech, what, got, want);
	failed = 1;
}

static char *region_new(size_t len)
{
	char *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED) {
		printf("error: mmap %zu MiB: %s\n", len / MiB, strerror(errno));
		exit(1);
	}
	/* 4 KiB pages for every mechanism, whatever the THP policy: the
	 * tracking granularity, and the guest's page size under libvolimem
	 * (uffd-wp and mprotect would split a huge page on the first write). */
	madvise(p, len, MADV_NOHUGEPAGE);
	for (size_t o = 0; o < len; o += PG)   /* populated: a heap in use */
		p[o] = 1;
	return p;
}

/* write_pages -- one store to each of n pages spread over npages,
 * shifted by rep so consecutive rounds hit other pages. */
static void write_pages(char *base, size_t npages, int n, int rep)
{
	size_t stride = npages / (size_t)(n ? n : 1);
	for (int i = 0; i < n; i++)
		base[((size_t)i * stride + (size_t)rep % stride) * PG + 8] = (char)rep;
}

/* first_writes -- fw_batches batches of BATCH first stores to the pages
 * [first, ...) of base; v[] gets the time of each batch. */
static void first_writes(char *base, size_t first, double *v)
{
	for (int b = 0; b < reps.fw_batches; b++) {
		volatile char *p = base + (first + (size_t)b * BATCH) * PG;
		uint64_t t0 = now_ns();
		for (size_t i = 0; i < BATCH; i++)
			p[i * PG] = 2;
		v[b] = (double)(now_ns() - t0);
	}
}

static void event_name(char *buf, size_t len, int nw, size_t mib)
{
	if (nw)
		snprintf(buf, len, "collect-%dp-%zum", nw, mib);
	else
		snprintf(buf, len, "collect-empty-%zum", mib);
}

/* ---- native: system call, plain store ---------------------------------- */

/* time_getppid -- batches of per getppid calls, reported under mech (v:
 * room for reps.sys_batches results). */
static void time_getppid(const char *mech, int per, double *v)
{
	for (int b = 0; b < reps.sys_batches; b++) {
		uint64_t t0 = now_ns();
		for (int i = 0; i < per; i++)
			syscall(SYS_getppid);
		v[b] = (double)(now_ns() - t0);
	}
	report("getppid", mech, v, reps.sys_batches, per, 0);
}

static void bench_native(void)
{
	double v[200];
	time_getppid("native", reps.sys_native_per, v);
	/* No tracker: a store to a populated, writable page (the floor). */
	size_t len = range_mib[0] * MiB;
	char *base = region_new(len);
	first_writes(base, 0, v);
	report("first-write", "native", v, reps.fw_batches, BATCH, 0);
	munmap(base, len);
}

/* ---- uffd: async write-protect + PAGEMAP_SCAN --------------------------- */

static struct page_region scan_vec[MAXN + 8];

/* uffd_collect -- PAGEMAP_SCAN over the range: report the written pages
 * and write-protect them again in the same walk. Returns pages or -errno. */
static long uffd_collect(int pm, char *base, size_t len)
{
	struct pm_scan_arg a = {
		.size = sizeof a, .flags = PM_SCAN_WP_MATCHING | PM_SCAN_CHECK_WPASYNC,
		.start = (uintptr_t)base, .end = (uintptr_t)base + len,
		.vec = (uintptr_t)scan_vec, .vec_len = sizeof scan_vec / sizeof scan_vec[0],
		.category_mask = PAGE_IS_WRITTEN, .return_mask = PAGE_IS_WRITTEN,
	};
	long pages = 0;
	while (a.start < a.end) {
		long r = ioctl(pm, PAGEMAP_SCAN, &a);
		if (r < 0)
			return -errno;
		for (long i = 0; i < r; i++)
			pages += (long)((scan_vec[i].end - scan_vec[i].start) / PG);
		if (a.walk_end <= a.start)
			return -EIO;
		a.start = a.walk_end;
	}
	return pages;
}

/* uffd_arm -- a userfaultfd with async write-protect over [base, len),
 * every page write-protected. Returns the fd or -1 after unavailable(). */
static int uffd_arm(char *base, size_t len, int pm)
{
	int fd = (int)syscall(SYS_userfaultfd, O_CLOEXEC | O_NONBLOCK | UFFD_USER_MODE_ONLY);
	if (fd < 0) {
		unavailable("uffd", "userfaultfd(2): %s", strerror(errno));
		return -1;
	}
	struct uffdio_api api = {.api = UFFD_API, .features = UFFD_FEATURE_WP_ASYNC};
	if (ioctl(fd, UFFDIO_API, &api) != 0 || !(api.features & UFFD_FEATURE_WP_ASYNC)) {
		unavailable("uffd", "UFFDIO_API with UFFD_FEATURE_WP_ASYNC: %s (needs Linux 6.7+)",
			    strerror(errno));
		goto fail;
	}
	struct uffdio_register reg = {.range = {(uintptr_t)base, len}, .mode = UFFDIO_REGISTER_MODE_WP};
	struct uffdio_writeprotect wp = {.range = {(uintptr_t)base, len},
					 .mode = UFFDIO_WRITEPROTECT_MODE_WP};
	if (ioctl(fd, UFFDIO_REGISTER, &reg) != 0 || ioctl(fd, UFFDIO_WRITEPROTECT, &wp) != 0) {
		unavailable("uffd", "UFFDIO_REGISTER/WRITEPROTECT (WP) on private anonymous memory: %s",
			    strerror(errno));
		goto fail;
	}
	long r = uffd_collect(pm, base, len);
	if (r < 0) {
		unavailable("uffd", "PAGEMAP_SCAN on /proc/self/pagemap: %s (needs Linux 6.7+)",
			    strerror((int)-r));
		goto fail;
	}
	return fd;
fail:
	close(fd);
	return -1;
}

static void bench_uffd(void)
{
	int pm = open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC);
	if (pm < 0) {
		unavailable("uffd", "open /proc/self/pagemap: %s", strerror(errno));
		return;
	}
	for (size_t r = 0; r < NRANGE; r++) {
		size_t len = range_mib[r] * MiB, npages = len / PG;
		char *base = region_new(len);
		int fd = uffd_arm(base, len, pm);
		if (fd < 0) {
			munmap(base, len);
			break;
		}
		double v[200];
		if (r == 0) {
			first_writes(base, 0, v);
			report("first-write", "uffd", v, reps.fw_batches, BATCH, 0);
			long got = uffd_collect(pm, base, len);
			if (got != (long)reps.fw_batches * BATCH)
				wrong("uffd", "first-write", got, (long)reps.fw_batches * BATCH);
		}
		for (size_t w = 0; w < NWRITTEN; w++) {
			for (int k = 0; k < reps.collects; k++) {
				write_pages(base, npages, written[w], k);
				uint64_t t0 = now_ns();
				long got = uffd_collect(pm, base, len);
				v[k] = (double)(now_ns() - t0);
				if (got != written[w])
					wrong("uffd", "collect", got, written[w]);
			}
			char ev[32];
			event_name(ev, sizeof ev, written[w], range_mib[r]);
			report(ev, "uffd", v, reps.collects, 1, range_mib[r]);
		}
		close(fd);
		munmap(base, len);
	}
	close(pm);
}

/* ---- mprotect: read-only range, SIGSEGV handler makes a page writable --- */

static char *mp_base;
static size_t mp_len;
static void *mp_rec[16384];
static volatile size_t mp_nrec;

/* mp_fault -- the tracker's handler: record the page, make it writable,
 * retry the store. A fault outside the range dies as it would have. */
static void mp_fault(int sig, siginfo_t *si, void *ctx)
{
	(void)ctx;
	char *a = si->si_addr;
	if (a < mp_base || a >= mp_base + mp_len) {
		signal(sig, SIG_DFL);
		return;
	}
	char *page = (char *)((uintptr_t)a & ~(PG - 1));
	if (mp_nrec < sizeof mp_rec / sizeof mp_rec[0])
		mp_rec[mp_nrec] = page;
	mp_nrec = mp_nrec + 1;
	if (mprotect(page, PG, PROT_READ | PROT_WRITE) != 0)
		signal(sig, SIG_DFL);
}

/* mp_collect -- take the recorded pages, re-arm the whole range. */
static long mp_collect(void)
{
	long n = (long)mp_nrec;
	mp_nrec = 0;
	if (mprotect(mp_base, mp_len, PROT_READ) != 0)
		return -errno;
	return n;
}

static void bench_mprotect(void)
{
	struct sigaction sa = {.sa_sigaction = mp_fault, .sa_flags = SA_SIGINFO}, old;
	sigemptyset(&sa.sa_mask);
	if (sigaction(SIGSEGV, &sa, &old) != 0) {
		unavailable("mprotect", "sigaction(SIGSEGV): %s", strerror(errno));
		return;
	}
	for (size_t r = 0; r < NRANGE; r++) {
		mp_len = range_mib[r] * MiB;
		size_t npages = mp_len / PG;
		mp_base = region_new(mp_len);
		long got = mp_collect();
		if (got < 0) {
			unavailable("mprotect", "mprotect(PROT_READ) of %zu MiB: %s", range_mib[r],
				    strerror((int)-got));
			munmap(mp_base, mp_len);
			break;
		}
		double v[200];
		if (r == 0) {
			first_writes(mp_base, 0, v);
			report("first-write", "mprotect", v, reps.fw_batches, BATCH, 0);
			got = mp_collect();
			if (got != (long)reps.fw_batches * BATCH)
				wrong("mprotect", "first-write", got, (long)reps.fw_batches * BATCH);
		}
		for (size_t w = 0; w < NWRITTEN; w++) {
			for (int k = 0; k < reps.collects; k++) {
				write_pages(mp_base, npages, written[w], k);
				uint64_t t0 = now_ns();
				got = mp_collect();
				v[k] = (double)(now_ns() - t0);
				if (got != written[w])
					wrong("mprotect", "collect", got, written[w]);
			}
			char ev[32];
			event_name(ev, sizeof ev, written[w], range_mib[r]);
			report(ev, "mprotect", v, reps.collects, 1, range_mib[r]);
		}
		munmap(mp_base, mp_len);
	}
	sigaction(SIGSEGV, &old, NULL);
	mp_base = NULL;
}

/* ---- libvolimem: VM_DIRTY, VM_WP, forwarded system calls ---------------- */

static void *vm_pages[MAXN + 8];

/* vm_bench_syscall -- in the guest: forwarded getppid, and whether
 * clock_gettime is served by the vDSO in the guest or forwarded (then
 * every timing here carries one forwarded call per measurement). */
static void vm_bench_syscall(void)
{
	struct vm_stats s0, s1;
	vm_get_stats(&s0);
	for (int i = 0; i < 100; i++)
		now_ns();
	vm_get_stats(&s1);
	printf("info: in the guest clock_gettime %s\n", s1.syscalls == s0.syscalls
	       ? "runs in the vDSO (no exit)"
	       : "is forwarded (clocksource not vDSO-capable): each timing adds one round trip");
	double v[200];
	time_getppid("vm", reps.sys_vm_per, v);
}

/* vm_bench_one -- one VM: track base+len with mode, time first writes (on
 * the first range only) and collects. Returns 0, or -1 when the VM could
 * not be entered (unavailable() said why). */
static int vm_bench_one(char *base, size_t mib, int mode, int with_syscall, int with_fw)
{
	const char *mech = mode == VM_DIRTY ? "vm-dirty" : "vm-wp";
	size_t len = mib * MiB, npages = len / PG;
	size_t nfw = (size_t)reps.fw_batches * BATCH;
	int r = vm_enter();
	if (r != 0) {
		unavailable("vm", "vm_enter -> %d: %s", r, vm_errmsg());
		unavailable("vm-dirty", "no VM (see mech=vm)");
		unavailable("vm-wp", "no VM (see mech=vm)");
		return -1;
	}
	if (with_syscall)
		vm_bench_syscall();
	/* The nested page table of the host's KVM fills on the first guest
	 * access of each page: take that before timing first writes. */
	if (with_fw)
		for (size_t i = 0; i < nfw; i++)
			base[i * PG] = 1;
	r = vm_track(base, len, mode);
	if (r != 0) {
		vm_leave();
		unavailable(mech, "vm_track %zu MiB -> %d: %s", mib, r, vm_errmsg());
		return 0;
	}
	double v[200];
	struct vm_stats s0, s1;
	if (with_fw) {
		vm_get_stats(&s0);
		first_writes(base, 0, v);
		vm_get_stats(&s1);
		long got = 0;
		for (long g; (g = vm_collect(vm_pages, MAXN)) > 0;)
			got += g;
		report("first-write", mech, v, reps.fw_batches, BATCH, 0);
		if (got != (long)nfw)
			wrong(mech, "first-write", got, (long)nfw);
		if (mode == VM_WP && s1.wp_faults - s0.wp_faults != nfw)
			wrong(mech, "first-write: in-guest #PF count", (long)(s1.wp_faults - s0.wp_faults),
			      (long)nfw);
		if (s1.exits != s0.exits)
			printf("info: mech=%s first writes made %llu exits\n", mech,
			       (unsigned long long)(s1.exits - s0.exits));
	}
	for (size_t w = 0; w < NWRITTEN; w++) {
		for (int k = 0; k < reps.collects; k++) {
			write_pages(base, npages, written[w], k);
			uint64_t t0 = now_ns();
			/* max > 0 even when nothing was written: vm_collect scans
			 * only while it may still store a page. */
			long got = vm_collect(vm_pages, MAXN + 8);
			v[k] = (double)(now_ns() - t0);
			if (got != written[w])
				wrong(mech, "collect", got, written[w]);
		}
		char ev[32];
		event_name(ev, sizeof ev, written[w], mib);
		report(ev, mech, v, reps.collects, 1, mib);
	}
	r = vm_leave();
	if (r != 0) {
		printf("error: vm_leave -> %d: %s\n", r, vm_errmsg());
		exit(1);
	}
	return 0;
}

static void bench_vm(void)
{
	if (vm_probe() != 0) {
		/* One line naming the cause: no /dev/kvm, kvm-pvm, ... */
		unavailable("vm", "%s", vm_errmsg());
		unavailable("vm-dirty", "no VM (see mech=vm)");
		unavailable("vm-wp", "no VM (see mech=vm)");
		return;
	}
	for (size_t r = 0; r < NRANGE; r++) {
		size_t len = range_mib[r] * MiB;
		char *base = region_new(len);
		int first = r == 0;
		if (vm_bench_one(base, range_mib[r], VM_DIRTY, first, first) != 0 ||
		    vm_bench_one(base, range_mib[r], VM_WP, 0, first) != 0) {
			munmap(base, len);
			return;
		}
		munmap(base, len);
	}
}

/* ---- the table for humans ----------------------------------------------- */

static void table(void)
{
	static const int cols[] = {0, 5, 1, 2, 3, 4};   /* native, vm, uffd, mprotect, vm-* */
	printf("\n%-20s", "event (ns, median)");
	for (size_t c = 0; c < NMECH; c++)
		printf(" %14s", mechs[cols[c]]);
	printf("\n");
	for (int i = 0; i < nresults; i++) {
		int seen = 0;
		for (int j = 0; j < i; j++)
			seen |= !strcmp(results[j].event, results[i].event);
		if (seen)
			continue;
		printf("%-20s", results[i].event);
		for (size_t c = 0; c < NMECH; c++) {
			const struct result *f = NULL;
			for (int j = i; j < nresults; j++)
				if (!strcmp(results[j].event, results[i].event) && results[j].mech == cols[c])
					f = &results[j];
			if (!f)
				printf(" %14s", why_unavail[cols[c]][0] ? "unavail" : "-");
			else
				printf(" %14.0f", f->ns);
		}
		printf("\n");
		if (!results[i].mib)
			continue;
		printf("%-20s", "  = ms per GiB");
		for (size_t c = 0; c < NMECH; c++) {
			const struct result *f = NULL;
			for (int j = i; j < nresults; j++)
				if (!strcmp(results[j].event, results[i].event) && results[j].mech == cols[c])
					f = &results[j];
			if (f)
				printf(" %14.3f", f->ns / 1e6 * (double)(GiB / (f->mib * MiB)));
			else
				printf(" %14s", "");
		}
		printf("\n");
	}
	for (size_t c = 0; c < NMECH; c++)
		if (why_unavail[c][0])
			printf("%s unavailable: %s\n", mechs[c], why_unavail[c]);
}

int main(int argc, char **argv)
{
	setvbuf(stdout, NULL, _IOLBF, 0);
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--quick")) {
			reps.sys_batches = 10;
			reps.sys_vm_per = 10;
			reps.fw_batches = 8;
			reps.collects = 5;
		} else {
			fprintf(stderr, "usage: bench_vm [--quick]\n");
			return 2;
		}
	}
	struct utsname u;
	uname(&u);
	char thp[128] = "?";
	FILE *f = fopen("/sys/kernel/mm/transparent_hugepage/enabled", "r");
	if (f) {
		if (!fgets(thp, sizeof thp, f))
			snprintf(thp, sizeof thp, "?");
		thp[strcspn(thp, "\n")] = 0;
		fclose(f);
	}
	printf("info: bench_vm kernel=%s ranges=64,256MiB first-write-batch=%d collect-reps=%d "
	       "thp=\"%s\" (regions are MADV_NOHUGEPAGE)\n", u.release, BATCH, reps.collects, thp);
	bench_native();
	bench_uffd();
	bench_mprotect();
	bench_vm();   /* last: vm_enter wants no other thread; none was started */
	table();
	return failed;
}
