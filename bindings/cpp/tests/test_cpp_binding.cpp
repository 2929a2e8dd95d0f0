// SPDX-License-Identifier: MIT
/*
 * test_cpp_binding.cpp -- end-to-end test of include/volipmem.hpp.
 *
 * One parent process runs every phase in a forked child (one pool per
 * process, and a child can die by kill -9 without taking the test down):
 *   1. provide_pobject constructs a root once; a second process finds it
 *      with its data and does not construct it again;
 *   2. STL containers over pmem_allocator: N random operations (default
 *      10,000, VP_BINDINGS_OPS), each its own FAS, with a kill -9 inside a
 *      FAS half way; the next process must find exactly the operations
 *      before that FAS, then finishes the stream; a third checks it all;
 *   2b. a raw-pointer list of pnew'd nodes is found by the next process;
 *   3. exception policy: a throw out of a fas guard terminates the process
 *      and the section is lost (default), or commits it (on_exception::commit).
 * Usage: test_cpp_binding [pool-dir]   (default /dev/shm)
 */
#include <volipmem.hpp>

#include "stl_model.hpp"

#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <sys/wait.h>
#include <unistd.h>

namespace {

const std::size_t heap_size = 16u << 20;
std::string pool_path;
std::uint64_t nops = 10000;
const std::uint64_t seed = 20240523;

using pstate = vptest::containers<pmem_api::pmem_allocator>;
using vstate = vptest::containers<std::allocator>;

struct counter {
	long value;
	long constructed;
	explicit counter(long v) : value(v), constructed(1) {}
};

/* the talk's hand-made list: raw pointers between pnew'd nodes */
struct node {
	long key;
	node *next;
	node(long k, node *n) : key(k), next(n) {}
};
struct list_head {
	node *first;
	long count;
};

struct exc_box {
	long terminated_write;
	long committed_write;
};

#define CHECK(c)                                                              \
	do {                                                                  \
		if (!(c)) {                                                   \
			std::fprintf(stderr, "%s:%d: check failed: %s\n",     \
				     __FILE__, __LINE__, #c);                 \
			return 1;                                             \
		}                                                             \
	} while (0)

/* phase_root_create / phase_root_check -- provide_pobject semantics. */
int phase_root_create()
{
	pmem_api::pool pool(pool_path.c_str(), heap_size);
	counter &c = pmem_api::provide_pobject<counter>("counter", 41L);
	CHECK(c.constructed == 1 && c.value == 41);
	CHECK(vp_in_heap(&c));
	pmem_api::fas section;
	c.value++;
	return section.end() == 0 ? 0 : 1;
}

int phase_raw_build()
{
	pmem_api::pool pool(pool_path.c_str(), heap_size);
	list_head &h = pmem_api::provide_pobject<list_head>("raw");
	for (long k = 0; k < 100; k++) {
		pmem_api::fas section;
		h.first = pmem_api::pnew<node>(k, h.first);
		h.count++;
	}
	{
		pmem_api::fas section; // pop one again: pdelete in a FAS
		node *n = h.first;
		h.first = n->next;
		h.count--;
		pmem_api::pdelete(n);
	}
	return 0;
}

int phase_raw_check()
{
	pmem_api::pool pool(pool_path.c_str(), heap_size);
	list_head &h = pmem_api::provide_pobject<list_head>("raw");
	CHECK(h.count == 99);
	long want = 98;
	for (node *n = h.first; n != nullptr; n = n->next, want--) {
		CHECK(vp_in_heap(n));
		CHECK(n->key == want);
	}
	CHECK(want == -1);
	return 0;
}

int phase_root_check()
{
	pmem_api::pool pool(pool_path.c_str(), heap_size);
	counter &c = pmem_api::provide_pobject<counter>("counter", 7L);
	CHECK(c.constructed == 1);
	CHECK(c.value == 42);
	// a root of the same name but another size must be refused
	bool threw = false;
	try {
		struct bigger { long x[5]; };
		(void)pmem_api::provide_pobject<bigger>("counter");
	} catch (const pmem_api::error &) {
		threw = true;
	}
	CHECK(threw);
	return 0;
}

/* run_ops -- apply operations [from, to) each in its own FAS; when crash_at
 * falls in the range, die by SIGKILL inside that operation's FAS after
 * applying it and one more. */
int run_ops(pstate &st, std::uint64_t from, std::uint64_t to, std::uint64_t crash_at)
{
	for (std::uint64_t i = from; i < to; i++) {
		pmem_api::fas section;
		st.apply(seed, i);
		if (i == crash_at) {
			st.apply(seed, i + 1);
			st.vec.push_back(-1);
			raise(SIGKILL);
		}
		st.done = i + 1;
		if (section.end() != 0) {
			std::fprintf(stderr, "pend failed at op %llu\n", (unsigned long long)i);
			return 1;
		}
	}
	return 0;
}

/* check_model -- the heap holds exactly the first st.done operations. */
int check_model(const pstate &st, std::uint64_t expect_done)
{
	vstate model;
	for (std::uint64_t i = 0; i < st.done; i++)
		model.apply(seed, i);
	model.done = st.done;
	CHECK(st.done == expect_done);
	CHECK(vptest::same(st, model));
	CHECK(st.vec.empty() || vp_in_heap(st.vec.data()));
	CHECK(st.lst.empty() || vp_in_heap(&st.lst.front()));
	return 0;
}

int phase_stl_crash()
{
	pmem_api::pool pool(pool_path.c_str(), heap_size);
	pstate &st = pmem_api::provide_pobject<pstate>("stl");
	CHECK(st.done == 0);
	return run_ops(st, 0, nops, nops / 2); // never returns: dies at nops/2
}

int phase_stl_resume()
{
	pmem_api::pool pool(pool_path.c_str(), heap_size);
	pstate &st = pmem_api::provide_pobject<pstate>("stl");
	if (check_model(st, nops / 2) != 0)
		return 1;
	return run_ops(st, st.done, nops, ~0ull);
}

int phase_stl_final()
{
	pmem_api::pool pool(pool_path.c_str(), heap_size);
	pstate &st = pmem_api::provide_pobject<pstate>("stl");
	return check_model(st, nops);
}

int phase_throw_terminate()
{
	pmem_api::pool pool(pool_path.c_str(), heap_size);
	exc_box &b = pmem_api::provide_pobject<exc_box>("exc");
	std::set_terminate([] { std::_Exit(42); }); // as abort, but a known code
	try {
		pmem_api::fas section;
		b.terminated_write = 1;
		throw std::runtime_error("inside a FAS");
	} catch (...) {
		std::fprintf(stderr, "exception escaped the guard\n");
	}
	return 1;
}

int phase_throw_commit()
{
	pmem_api::pool pool(pool_path.c_str(), heap_size);
	exc_box &b = pmem_api::provide_pobject<exc_box>("exc");
	CHECK(b.terminated_write == 0); // the terminated section was lost
	try {
		pmem_api::fas section(pmem_api::on_exception::commit);
		b.committed_write = 1;
		throw std::runtime_error("inside a FAS");
	} catch (const std::runtime_error &) {
	}
	std::_Exit(0); // no punmap: only the guard's pend() made it durable
}

int phase_throw_check()
{
	pmem_api::pool pool(pool_path.c_str(), heap_size);
	exc_box &b = pmem_api::provide_pobject<exc_box>("exc");
	CHECK(b.terminated_write == 0);
	CHECK(b.committed_write == 1);
	return 0;
}

/* child -- run one phase in a child; expect exit code `code`, or death by
 * signal `sig` when sig != 0. */
bool child(const char *name, int (*phase)(), int code, int sig = 0)
{
	std::fflush(nullptr);
	auto t0 = std::chrono::steady_clock::now();
	pid_t pid = fork();
	if (pid == 0) {
		int rc = 1;
		try {
			rc = phase();
		} catch (const std::exception &e) {
			std::fprintf(stderr, "%s: %s\n", name, e.what());
		}
		std::fflush(nullptr);
		std::_Exit(rc);
	}
	int st = 0;
	if (pid < 0 || waitpid(pid, &st, 0) != pid)
		return false;
	bool ok = sig ? (WIFSIGNALED(st) && WTERMSIG(st) == sig)
		      : (WIFEXITED(st) && WEXITSTATUS(st) == code);
	double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
	std::printf("%-16s %-6s %8.1f ms\n", name, ok ? "ok" : "FAILED", ms);
	if (!ok)
		std::printf("  status: %s %d\n", WIFSIGNALED(st) ? "signal" : "exit",
			    WIFSIGNALED(st) ? WTERMSIG(st) : WEXITSTATUS(st));
	return ok;
}

} // namespace

int main(int argc, char **argv)
{
	const char *dir = argc > 1 ? argv[1] : "/dev/shm";
	pool_path = std::string(dir) + "/vp-cpp-" + std::to_string(getpid()) + ".pool";
	if (const char *t = std::getenv("VOLIPMEM_TRACKER"))
		if (std::strcmp(t, "full") == 0)
			nops = 300; // the oracle tracker commits the whole heap each time
	if (const char *e = std::getenv("VP_BINDINGS_OPS"))
		nops = std::strtoull(e, nullptr, 10);
	if (nops < 4)
		nops = 4;

	bool ok = child("root-create", phase_root_create, 0) &&
		  child("root-check", phase_root_check, 0) &&
		  child("raw-build", phase_raw_build, 0) &&
		  child("raw-check", phase_raw_check, 0) &&
		  child("stl-crash", phase_stl_crash, 0, SIGKILL) &&
		  child("stl-resume", phase_stl_resume, 0) &&
		  child("stl-final", phase_stl_final, 0) &&
		  child("throw-terminate", phase_throw_terminate, 42) &&
		  child("throw-commit", phase_throw_commit, 0) &&
		  child("throw-check", phase_throw_check, 0);
	unlink(pool_path.c_str());
	std::printf("%s (%llu operations)\n", ok ? "PASS" : "FAIL", (unsigned long long)nops);
	return ok ? 0 : 1;
}
