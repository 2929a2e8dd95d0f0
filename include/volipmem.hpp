// SPDX-License-Identifier: MIT
/*
 * volipmem.hpp -- the C++17 binding of libvolipmem, header-only.
 *
 * It adds to the C API (volipmem.h) what C++ code needs to keep objects in
 * the persistent heap without touching the C calls directly:
 *
 *   pmem_api::pool            RAII pmap()/punmap()
 *   pmem_api::pstart/pend     the failure-atomic section (FAS) primitives
 *   pmem_api::fas             RAII guard: pstart() now, pend() at scope exit
 *   pmem_api::provide_pobject<T>(name, args...)
 *                             the named root of type T, constructed with
 *                             args in a FAS the first time
 *   pmem_api::pnew<T>(args...), pdelete(p)
 *                             one object in its own heap block
 *   pmem_api::pmem_allocator<T>
 *                             a standard allocator over pmalloc(), so
 *                             std::vector, std::list, std::map,
 *                             std::unordered_map and std::basic_string keep
 *                             their storage in the persistent heap
 *
 *   #include <volipmem.hpp>
 *   using plist = std::list<long, pmem_api::pmem_allocator<long>>;
 *   int main() {
 *       pmem_api::pool pool("/dev/shm/list.pool", 64 << 20);
 *       plist &l = pmem_api::provide_pobject<plist>("list");
 *       {
 *           pmem_api::fas section;     // all of this or none of it
 *           l.push_front(42);
 *       }                              // pend(): durable here
 *   }
 *
 * EXCEPTIONS INSIDE A FAS
 *   A commit takes every page written since the previous commit, by every
 *   thread; it cannot take back one thread's writes. So when an exception
 *   leaves a pmem_api::fas scope, the section can only be committed as it
 *   is (half done) or never committed. The default policy is
 *   on_exception::terminate: the guard calls std::terminate(), the process
 *   dies inside its FAS, and the next pmap() recovers the state of the last
 *   commit -- the section stays all-or-nothing. A program whose sections
 *   keep the data consistent at every throw point (strong exception safety,
 *   e.g. a std::map insert that throws std::bad_alloc changes nothing) may
 *   choose on_exception::commit, and the guard ends the section normally
 *   while the exception propagates.
 *
 * WHAT MAY LIVE IN THE HEAP
 *   The heap is mapped at the same address in every run, so plain pointers
 *   between heap objects stay valid. Pointers out of the heap do not:
 *   - vtables and function pointers move with ASLR: provide_pobject and
 *     pmem_allocator reject polymorphic types at compile time; a plain
 *     function pointer or std::function member is not detectable and is
 *     the caller's responsibility;
 *   - containers with std::allocator put their nodes in the volatile heap:
 *     use pmem_allocator (or run under libvolipmem_preload.so, which serves
 *     malloc/new from the persistent heap);
 *   - pointers to the stack, to globals or to libc objects (FILE *, locale)
 *     dangle after a restart.
 *   Alignment above 16 bytes is rejected: pmalloc() aligns to 16.
 */
#ifndef VOLIPMEM_HPP
#define VOLIPMEM_HPP

#include <volipmem.h>

#include <cstddef>
#include <cstring>
#include <exception>
#include <limits>
#include <new>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <utility>

namespace pmem_api {

/* error -- a VolipMem error code (0/-code of the C API) as an exception. */
class error : public std::runtime_error {
public:
	error(int code, const std::string &what)
		: std::runtime_error(what + ": " + vp_strerror(code) +
				     (*vp_errormsg() ? std::string(" (") + vp_errormsg() + ")" : std::string())),
		  code_(code) {}
	int code() const noexcept { return code_; }

private:
	int code_;
};

/* pool -- map the pool at construction, commit and unmap at destruction.
 * Throws pmem_api::error when pmap() fails. */
class pool {
public:
	pool(const char *path, std::size_t heap_size, unsigned flags = 0)
	{
		int rc = ::pmap(path, heap_size, flags);
		if (rc != 0)
			throw error(rc, std::string("pmap ") + path);
	}
	pool(const pool &) = delete;
	pool &operator=(const pool &) = delete;
	~pool() { (void)::punmap(); }
};

/* pstart -- begin a failure-atomic section (nesting is flat). */
inline void pstart() noexcept { ::pstart(); }

/* pend -- end it; 0 once durable (synchronous mode) or a negative code. */
inline int pend() noexcept { return ::pend(); }

/* pcommit / psync -- make every write so far durable (outside a FAS). */
inline int pcommit() noexcept { return ::pcommit(); }
inline int psync() noexcept { return ::psync(); }

/* on_exception -- what a fas guard does when an exception leaves it. */
enum class on_exception {
	terminate, /* std::terminate(): the section is never committed */
	commit,    /* pend(): the section is committed as far as it got */
};

/* fas -- RAII failure-atomic section. pstart() in the constructor, pend()
 * in end() or in the destructor; see EXCEPTIONS INSIDE A FAS above. */
class fas {
public:
	explicit fas(on_exception policy = on_exception::terminate) noexcept
		: policy_(policy), uncaught_(std::uncaught_exceptions())
	{
		::pstart();
	}
	fas(const fas &) = delete;
	fas &operator=(const fas &) = delete;

	/* end -- end the section now and return pend()'s status, so that the
	 * caller can see a failed commit (the destructor cannot report it). */
	int end() noexcept
	{
		if (ended_)
			return 0;
		ended_ = true;
		return ::pend();
	}

	~fas()
	{
		if (ended_)
			return;
		if (std::uncaught_exceptions() > uncaught_ &&
		    policy_ == on_exception::terminate)
			std::terminate(); // die inside the FAS: recovery drops it
		(void)end();
	}

private:
	on_exception policy_;
	int uncaught_;
	bool ended_ = false;
};

/* in_fas -- run f() inside a fas guard and return what it returns. */
template <class F>
auto in_fas(F &&f, on_exception policy = on_exception::terminate)
	-> decltype(f())
{
	fas section(policy);
	return std::forward<F>(f)();
}

namespace detail {
constexpr std::size_t heap_align = 16; // pmalloc()'s alignment

template <class T>
constexpr void check_storable()
{
	static_assert(!std::is_polymorphic<T>::value,
		      "a polymorphic type keeps a vtable pointer, which moves with "
		      "ASLR and dangles after a restart: it cannot live in the "
		      "persistent heap");
	static_assert(!std::is_reference<T>::value && !std::is_function<T>::value,
		      "references and functions cannot live in the persistent heap");
	static_assert(alignof(T) <= heap_align,
		      "the persistent heap aligns blocks to 16 bytes");
}

/* find_root -- the object of root `name` and its size, without creating it
 * (proot() would create it, and in synchronous mode even an empty FAS
 * around it costs a commit). */
inline void *find_root(const char *name, std::size_t *size) noexcept
{
	struct want {
		const char *name;
		void *obj;
		std::size_t size;
	} w{name, nullptr, 0};
	::vp_root_list(
		[](const char *n, void *obj, std::size_t sz, void *arg) -> int {
			want *wp = static_cast<want *>(arg);
			if (std::strcmp(n, wp->name) != 0)
				return 0;
			wp->obj = obj;
			wp->size = sz;
			return 1;
		},
		&w);
	*size = w.size;
	return w.obj;
}
} // namespace detail

/* provide_pobject -- the root called `name`, of type T. The first time (no
 * such root yet) it is created and T is constructed from args inside one
 * FAS, so a crash leaves either no root or a fully constructed one. The
 * root records only its size: asking for a root with another type of the
 * same size is not detected. Two threads asking for the same new root at
 * once may see it before it is constructed: create roots from one thread.
 * Throws pmem_api::error (root of another size,
 * no pool, out of memory); an exception from T's constructor follows the
 * on_exception::terminate policy. */
template <class T, class... Args>
T &provide_pobject(const char *name, Args &&...args)
{
	detail::check_storable<T>();
	std::size_t size = 0;
	if (void *found = detail::find_root(name, &size); found != nullptr && size == sizeof(T))
		return *static_cast<T *>(found); // the common case: no FAS needed
	T *obj;
	{
		fas section;
		bool created = false;
		obj = static_cast<T *>(::proot(name, sizeof(T), &created));
		if (obj != nullptr && created)
			::new (static_cast<void *>(obj)) T(std::forward<Args>(args)...);
		if (obj == nullptr) {
			(void)section.end(); // nothing written: end before throwing
			throw error(VP_E_INVAL, std::string("proot ") + name);
		}
	}
	return *obj;
}

/* destroy_pobject -- run T's destructor and remove the root, in one FAS. */
template <class T>
int destroy_pobject(const char *name)
{
	detail::check_storable<T>();
	fas section;
	bool created = false;
	T *obj = static_cast<T *>(::proot(name, sizeof(T), &created));
	if (obj == nullptr)
		return VP_E_NOROOT;
	if (!created)
		obj->~T();
	int rc = ::vp_root_remove(name);
	int rc2 = section.end();
	return rc != 0 ? rc : rc2;
}

/* pnew -- construct a T from args in a new heap block (pmalloc). Throws
 * std::bad_alloc when the heap is full; if T's constructor throws, the
 * block is freed and the exception propagates. */
template <class T, class... Args>
T *pnew(Args &&...args)
{
	detail::check_storable<T>();
	void *p = ::pmalloc(sizeof(T));
	if (p == nullptr)
		throw std::bad_alloc();
	try {
		return ::new (p) T(std::forward<Args>(args)...);
	} catch (...) {
		::pfree(p);
		throw;
	}
}

/* pdelete -- destroy a T made by pnew and free its block. */
template <class T>
void pdelete(T *p) noexcept
{
	if (p == nullptr)
		return;
	p->~T();
	::pfree(const_cast<void *>(static_cast<const volatile void *>(p)));
}

/* pmem_allocator -- a stateless standard allocator over pmalloc()/pfree().
 * Every instance is equal to every other, so containers may swap and move
 * storage freely. Each allocation outside a FAS is an implicit FAS (a
 * commit in synchronous mode): change containers inside a fas guard. */
template <class T>
class pmem_allocator {
public:
	using value_type = T;
	using size_type = std::size_t;
	using difference_type = std::ptrdiff_t;
	using propagate_on_container_move_assignment = std::true_type;
	using is_always_equal = std::true_type;

	template <class U>
	struct rebind {
		using other = pmem_allocator<U>;
	};

	pmem_allocator() noexcept = default;
	template <class U>
	pmem_allocator(const pmem_allocator<U> &) noexcept {}

	T *allocate(std::size_t n)
	{
		detail::check_storable<T>();
		if (n > std::numeric_limits<std::size_t>::max() / sizeof(T))
			throw std::bad_array_new_length();
		void *p = ::pmalloc(n * sizeof(T));
		if (p == nullptr)
			throw std::bad_alloc();
		return static_cast<T *>(p);
	}

	void deallocate(T *p, std::size_t) noexcept { ::pfree(p); }

	template <class U>
	bool operator==(const pmem_allocator<U> &) const noexcept { return true; }
	template <class U>
	bool operator!=(const pmem_allocator<U> &) const noexcept { return false; }
};

/* pstring -- a std::basic_string whose characters live in the heap (the
 * short-string buffer is inside the string object itself). */
using pstring = std::basic_string<char, std::char_traits<char>, pmem_allocator<char>>;

} // namespace pmem_api

#endif /* VOLIPMEM_HPP */
