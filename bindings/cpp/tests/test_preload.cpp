// SPDX-License-Identifier: MIT
/*
 * test_preload.cpp -- end-to-end test of libvolipmem_preload.so, the
 * persistent process heap.
 *
 * The parent runs each phase as a fresh exec of this program with
 * LD_PRELOAD=<the library> and, for most phases, VOLIPMEM_POOL=<pool>:
 *   placement   the program's malloc/new/strdup/aligned blocks are in the
 *               heap; libc's own (FILE, DIR, thread start-up) are not;
 *   late-pmap   without VOLIPMEM_POOL the heap turns persistent when the
 *               program calls pmap() itself;
 *   list-*      the talk's provide_pobject<std::list<K>>("list") with the
 *               default std::allocator survives a restart;
 *   stl-*       std::vector/list/map/unordered_map/string with
 *               std::allocator: N random operations (VP_BINDINGS_OPS,
 *               default 10,000), each a FAS, kill -9 inside a FAS half way,
 *               then resume and check against a volatile replay.
 *   unmodified  a program that does not link libvolipmem (tests/unmodified.c)
 *               run twice with LD_PRELOAD="libvolipmem.so <the library>",
 *               relaxed mode, default and mprotect trackers: its never
 *               freed nodes are in the pool afterwards.
 * Usage: test_preload PRELOAD_SO LIBVOLIPMEM_SO UNMODIFIED_PROG [pool-dir]
 */
#include <volipmem.hpp>

#include "stl_model.hpp"

#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <dirent.h>
#include <fcntl.h>
#include <list>
#include <malloc.h>
#include <pthread.h>
#include <string>
#include <sys/wait.h>
#include <thread>
#include <unistd.h>

namespace {

std::string pool_path;
std::uint64_t nops = 10000;
const std::uint64_t seed = 77;
using state = vptest::containers<std::allocator>;

#define CHECK(c)                                                              \
	do {                                                                  \
		if (!(c)) {                                                   \
			std::fprintf(stderr, "%s:%d: check failed: %s\n",     \
				     __FILE__, __LINE__, #c);                 \
			return 1;                                             \
		}                                                             \
	} while (0)

/* in_heap -- vp_in_heap() on an address (the pointee may be uninitialised,
 * and gcc would warn about passing it as const void *). */
__attribute__((noinline)) bool in_heap_addr(std::uintptr_t a)
{
	return vp_in_heap(reinterpret_cast<const void *>(a));
}
#define in_heap(p) in_heap_addr(reinterpret_cast<std::uintptr_t>(p))

int check_allocations_inner()
{
	void *m = std::malloc(100);
	CHECK(in_heap(m));
	CHECK(malloc_usable_size(m) >= 100);
	std::memset(m, 1, 100);
	m = std::realloc(m, 5000);
	CHECK(in_heap(m) && static_cast<unsigned char *>(m)[99] == 1);
	std::free(m);
	int *z = static_cast<int *>(std::calloc(1000, sizeof(int)));
	CHECK(in_heap(z));
	for (int i = 0; i < 1000; i++)
		CHECK(z[i] == 0);
	std::free(z);
	int *n = new int(5);
	CHECK(in_heap(n));
	delete n;
	std::string s(200, 'x');
	CHECK(in_heap(s.data()));
	char *d = strdup("persistent");
	CHECK(in_heap(d) && std::strcmp(d, "persistent") == 0);
	std::free(d);
	void *a = nullptr;
	CHECK(posix_memalign(&a, 256, 1000) == 0);
	CHECK(in_heap(a) && (reinterpret_cast<uintptr_t>(a) & 255) == 0);
	CHECK(malloc_usable_size(a) >= 1000);
	std::memset(a, 2, 1000);
	a = std::realloc(a, 3000);
	CHECK(in_heap(a) && static_cast<unsigned char *>(a)[999] == 2);
	std::free(a);
	void *pg = aligned_alloc(4096, 4096);
	CHECK(in_heap(pg) && (reinterpret_cast<uintptr_t>(pg) & 4095) == 0);
	std::free(pg);
	struct alignas(64) line { char c[64]; };
	line *l = new line[3];
	CHECK(in_heap(l) && (reinterpret_cast<uintptr_t>(l) & 63) == 0);
	delete[] l;
	// libc's own allocations stay volatile
	FILE *f = std::fopen("/proc/self/stat", "r");
	CHECK(f != nullptr && !in_heap(f));
	char buf[64];
	CHECK(std::fgets(buf, sizeof buf, f) != nullptr);
	std::fclose(f);
	DIR *dir = opendir("/");
	CHECK(dir != nullptr && !in_heap(dir));
	closedir(dir);
	// threads (TLS and stacks come from libc and the loader)
	int *from_thread = nullptr;
	std::thread t([&] { from_thread = new int(7); });
	t.join();
	CHECK(in_heap(from_thread) && *from_thread == 7);
	delete from_thread;
	return 0;
}

/* check_allocations -- the checks above; every heap block they made must
 * have been given back (the over-aligned ones through their header). */
int check_allocations()
{
	struct vp_stats before, after;
	CHECK(vp_stats(&before) == 0);
	if (check_allocations_inner() != 0)
		return 1;
	CHECK(vp_stats(&after) == 0);
	if (before.heap_used != after.heap_used)
		std::fprintf(stderr, "heap_used %llu -> %llu\n", (unsigned long long)before.heap_used,
			     (unsigned long long)after.heap_used);
	CHECK(before.heap_used == after.heap_used);
	return 0;
}

int phase_placement()
{
	CHECK(vp_heap_base() != nullptr);
	CHECK(std::getenv("VOLIPMEM_POOL") == nullptr); // not passed to children
	return check_allocations();
}

int phase_late_pmap()
{
	CHECK(vp_heap_base() == nullptr);
	void *before = std::malloc(64);
	CHECK(before != nullptr && !vp_in_heap(before));
	CHECK(pmap(pool_path.c_str(), 16u << 20, 0) == 0);
	// free() of a pmalloc block before any malloc taught the library the
	// heap's range: it must still go back to the heap, not to glibc
	struct vp_stats s0, s1;
	CHECK(vp_stats(&s0) == 0);
	std::free(pmalloc(64));
	CHECK(vp_stats(&s1) == 0);
	CHECK(s0.heap_used == s1.heap_used);
	if (check_allocations() != 0)
		return 1;
	std::free(before); // a volatile block freed while the heap is on
	void *late = std::malloc(64);
	CHECK(vp_in_heap(late));
	CHECK(punmap() == 0);
	std::free(late); // heap gone: dropped, not handed to glibc
	void *after = std::malloc(64);
	CHECK(after != nullptr && !vp_in_heap(after));
	std::free(after);
	return 0;
}

int phase_list_build()
{
	std::list<long> &l = pmem_api::provide_pobject<std::list<long>>("list");
	CHECK(l.empty());
	for (long i = 1; i <= 100; i++) {
		pmem_api::pstart();
		l.push_front(i);
		CHECK(pmem_api::pend() == 0);
	}
	return 0;
}

int phase_list_check()
{
	std::list<long> &l = pmem_api::provide_pobject<std::list<long>>("list");
	CHECK(l.size() == 100);
	long want = 100;
	for (long &v : l) {
		CHECK(v == want && vp_in_heap(&v));
		want--;
	}
	return 0;
}

int run_ops(state &st, std::uint64_t from, std::uint64_t to, std::uint64_t crash_at)
{
	for (std::uint64_t i = from; i < to; i++) {
		pmem_api::fas section;
		st.apply(seed, i);
		if (i == crash_at) {
			st.apply(seed, i + 1);
			st.lst.push_back(-1);
			raise(SIGKILL);
		}
		st.done = i + 1;
		CHECK(section.end() == 0);
	}
	return 0;
}

/* check_model -- compare with a volatile replay. The replay's blocks are
 * themselves in the heap (std::allocator): build it inside one FAS so that
 * its allocations do not each cost a commit. */
int check_model(const state &st, std::uint64_t expect_done)
{
	CHECK(st.done == expect_done);
	pmem_api::fas section;
	bool ok;
	{
		state model;
		for (std::uint64_t i = 0; i < st.done; i++)
			model.apply(seed, i);
		model.done = st.done;
		ok = vptest::same(st, model);
	}
	CHECK(section.end() == 0);
	CHECK(ok);
	return 0;
}

int phase_stl_crash()
{
	state &st = pmem_api::provide_pobject<state>("stl");
	return run_ops(st, 0, nops, nops / 2);
}

int phase_stl_resume()
{
	state &st = pmem_api::provide_pobject<state>("stl");
	if (check_model(st, nops / 2) != 0)
		return 1;
	return run_ops(st, st.done, nops, ~0ull);
}

int phase_stl_final()
{
	state &st = pmem_api::provide_pobject<state>("stl");
	return check_model(st, nops);
}

/* Relaxed mode (VOLIPMEM_COMMIT_INTERVAL_MS), as recommended for
 * unmodified programs: a kill -9 loses the last interval but never part of
 * a FAS, and a normal exit is made durable by the library's psync(). */
/* commits_so_far -- commits made by the committer thread, logged or not. */
std::uint64_t commits_so_far()
{
	struct vp_stats s;
	return vp_stats(&s) == 0 ? s.commits + s.empty_commits : 0;
}

int phase_relaxed_crash()
{
	state &st = pmem_api::provide_pobject<state>("relaxed");
	if (run_ops(st, 0, nops / 4, ~0ull) != 0)
		return 1;
	// wait for the committer (it commits only when a FAS ended since its
	// last commit): one commit, then one more unless nothing was left.
	// The first quarter is then durable.
	std::uint64_t c0 = commits_so_far();
	for (int i = 0; i < 5000 && commits_so_far() < c0 + 1; i++)
		usleep(1000);
	CHECK(commits_so_far() >= c0 + 1);
	std::uint64_t c1 = commits_so_far();
	for (int i = 0; i < 200 && commits_so_far() < c1 + 1; i++)
		usleep(1000);
	return run_ops(st, nops / 4, nops, nops / 2);
}

int phase_relaxed_resume()
{
	state &st = pmem_api::provide_pobject<state>("relaxed");
	CHECK(st.done >= nops / 4 && st.done <= nops / 2);
	std::printf("  relaxed: %llu of %llu operations were durable at the crash\n",
		    (unsigned long long)st.done, (unsigned long long)(nops / 2));
	if (check_model(st, st.done) != 0)
		return 1;
	return run_ops(st, st.done, nops, ~0ull); // exit: psync in the library
}

int phase_relaxed_final()
{
	state &st = pmem_api::provide_pobject<state>("relaxed");
	return check_model(st, nops);
}

/* phase_unmodified_check -- the two runs of tests/unmodified.c (1000
 * nodes of 120 bytes each, never freed) left their blocks in the heap. */
int phase_unmodified_check()
{
	struct vp_stats st;
	CHECK(vp_stats(&st) == 0);
	std::printf("  heap in use after two unmodified runs: %llu bytes\n",
		    (unsigned long long)st.heap_used);
	CHECK(st.heap_used >= 2 * 1000 * 120);
	return 0;
}

struct phase {
	const char *name;
	int (*fn)();
	bool with_pool;
	int sig; // expected fatal signal, 0 = exit 0
	bool relaxed = false;
};
const phase phases[] = {
	{ "placement", phase_placement, true, 0 },
	{ "late-pmap", phase_late_pmap, false, 0 },
	{ "list-build", phase_list_build, true, 0 },
	{ "list-check", phase_list_check, true, 0 },
	{ "stl-crash", phase_stl_crash, true, SIGKILL },
	{ "stl-resume", phase_stl_resume, true, 0 },
	{ "stl-final", phase_stl_final, true, 0 },
	{ "relaxed-crash", phase_relaxed_crash, true, SIGKILL, true },
	{ "relaxed-resume", phase_relaxed_resume, true, 0, true },
	{ "relaxed-final", phase_relaxed_final, true, 0 },
	{ "unmodified-check", phase_unmodified_check, true, 0 },
};

/* spawn_unmodified -- run tests/unmodified.c under both libraries (the
 * runtime preloaded first), relaxed mode, with the given tracker. */
bool spawn_unmodified(const char *prog, const char *runtime, const char *preload,
		      const char *tracker)
{
	std::fflush(nullptr);
	pid_t pid = fork();
	if (pid == 0) {
		std::string both = std::string(runtime) + " " + preload;
		setenv("LD_PRELOAD", both.c_str(), 1);
		setenv("VOLIPMEM_POOL", pool_path.c_str(), 1);
		setenv("VOLIPMEM_POOL_SIZE", "16M", 1);
		setenv("VOLIPMEM_COMMIT_INTERVAL_MS", "10", 1);
		if (tracker)
			setenv("VOLIPMEM_TRACKER", tracker, 1);
		int devnull = open("/dev/null", O_WRONLY);
		if (devnull >= 0)
			dup2(devnull, 1);
		execl(prog, prog, (char *)nullptr);
		std::_Exit(127);
	}
	int st = 0;
	bool ok = pid > 0 && waitpid(pid, &st, 0) == pid && WIFEXITED(st) && WEXITSTATUS(st) == 0;
	std::printf("%-16s %s (tracker %s)\n", "unmodified", ok ? "ok" : "FAILED",
		    tracker ? tracker : "default");
	return ok;
}

/* spawn -- run one phase as a new process under the preload library. */
bool spawn(const phase &ph, const char *self, const char *preload)
{
	std::fflush(nullptr);
	auto t0 = std::chrono::steady_clock::now();
	pid_t pid = fork();
	if (pid == 0) {
		setenv("LD_PRELOAD", preload, 1);
		if (ph.with_pool)
			setenv("VOLIPMEM_POOL", pool_path.c_str(), 1);
		else
			unsetenv("VOLIPMEM_POOL");
		setenv("VOLIPMEM_POOL_SIZE", "16M", 1);
		if (ph.relaxed)
			setenv("VOLIPMEM_COMMIT_INTERVAL_MS", "5", 1);
		else
			unsetenv("VOLIPMEM_COMMIT_INTERVAL_MS");
		execl(self, self, "--phase", ph.name, pool_path.c_str(), (char *)nullptr);
		std::_Exit(127);
	}
	int st = 0;
	if (pid < 0 || waitpid(pid, &st, 0) != pid)
		return false;
	bool ok = ph.sig ? (WIFSIGNALED(st) && WTERMSIG(st) == ph.sig)
			 : (WIFEXITED(st) && WEXITSTATUS(st) == 0);
	double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
	std::printf("%-16s %-6s %8.1f ms\n", ph.name, ok ? "ok" : "FAILED", ms);
	if (!ok)
		std::printf("  status: %s %d\n", WIFSIGNALED(st) ? "signal" : "exit",
			    WIFSIGNALED(st) ? WTERMSIG(st) : WEXITSTATUS(st));
	return ok;
}

} // namespace

int main(int argc, char **argv)
{
	if (const char *t = std::getenv("VOLIPMEM_TRACKER"))
		if (std::strcmp(t, "full") == 0)
			nops = 300; // the oracle tracker commits the whole heap each time
	if (const char *e = std::getenv("VP_BINDINGS_OPS"))
		nops = std::strtoull(e, nullptr, 10);
	if (nops < 4)
		nops = 4;
	if (argc == 4 && std::strcmp(argv[1], "--phase") == 0) {
		pool_path = argv[3];
		for (const phase &ph : phases)
			if (std::strcmp(ph.name, argv[2]) == 0) {
				try {
					return ph.fn();
				} catch (const std::exception &e) {
					std::fprintf(stderr, "%s: %s\n", ph.name, e.what());
					return 1;
				}
			}
		return 2;
	}
#ifdef VP_PRELOAD_SKIP
	std::printf("skipped: %s\n", VP_PRELOAD_SKIP);
	return 77;
#endif
	if (argc < 4) {
		std::fprintf(stderr, "usage: %s PRELOAD_SO LIBVOLIPMEM_SO UNMODIFIED_PROG [pool-dir]\n", argv[0]);
		return 2;
	}
	const char *dir = argc > 4 ? argv[4] : "/dev/shm";
	pool_path = std::string(dir) + "/vp-preload-" + std::to_string(getpid()) + ".pool";
	char self[4096];
	ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
	if (n <= 0)
		return 2;
	self[n] = '\0';
	bool ok = true;
	for (const phase &ph : phases) {
		if (std::strcmp(ph.name, "list-build") == 0 ||
		    std::strcmp(ph.name, "unmodified-check") == 0)
			unlink(pool_path.c_str()); // a fresh pool
		if (std::strcmp(ph.name, "unmodified-check") == 0)
			ok = spawn_unmodified(argv[3], argv[2], argv[1], nullptr) &&
			     spawn_unmodified(argv[3], argv[2], argv[1], "mprotect");
		if (!ok || !(ok = spawn(ph, self, argv[1])))
			break;
	}
	unlink(pool_path.c_str());
	std::printf("%s (%llu operations)\n", ok ? "PASS" : "FAIL", (unsigned long long)nops);
	return ok ? 0 : 1;
}
