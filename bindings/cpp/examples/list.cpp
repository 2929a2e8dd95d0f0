// SPDX-License-Identifier: MIT
/*
 * list.cpp -- a persistent std::list, the C++ example of the VolipMem talk.
 *
 * Each run maps the pool, finds (or creates) the list root, pushes its
 * arguments to the front inside a failure-atomic section, and prints the
 * whole list: run it twice and the first run's elements are still there.
 *
 *   list /dev/shm/list.pool 1 2 3
 *   list /dev/shm/list.pool 4        # prints 4 3 2 1
 *
 * With std::allocator instead of pmem_allocator the same code works under
 * libvolipmem_preload.so (see docs/bindings-cpp-rust.md).
 */
#include <volipmem.hpp>

#include <cstdio>
#include <cstdlib>
#include <list>

template <class K>
using plist = std::list<K, pmem_api::pmem_allocator<K>>;

/* create_list -- the list root, constructed empty on first use. */
template <class K>
plist<K> *create_list()
{
	return &pmem_api::provide_pobject<plist<K>>("list");
}

/* insert -- push one element, all or nothing. */
template <class K>
void insert(plist<K> &my_list, const K &element)
{
	pmem_api::pstart();
	my_list.push_front(element);
	pmem_api::pend();
}

int main(int argc, char **argv)
{
	if (argc < 2) {
		std::fprintf(stderr, "usage: %s POOL [NUMBER...]\n", argv[0]);
		return 2;
	}
	try {
		pmem_api::pool pool(argv[1], 16u << 20);
		plist<long> *list = create_list<long>();
		for (int i = 2; i < argc; i++)
			insert(*list, std::strtol(argv[i], nullptr, 10));
		for (long v : *list)
			std::printf("%ld ", v);
		std::printf("\n");
	} catch (const pmem_api::error &e) {
		std::fprintf(stderr, "%s\n", e.what());
		return 1;
	}
	return 0;
}
