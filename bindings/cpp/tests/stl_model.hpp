// SPDX-License-Identifier: MIT
/*
 * stl_model.hpp -- a set of STL containers driven by a reproducible stream
 * of random operations, for the binding tests.
 *
 * Operation i depends only on (seed, i), so a checker can rebuild the state
 * after any number of operations in volatile memory and compare it with
 * what the persistent heap holds after a crash. The allocator is a template
 * parameter: pmem_allocator for the C++ binding test, std::allocator for
 * the persistent process heap (LD_PRELOAD) test.
 */
#ifndef VP_STL_MODEL_HPP
#define VP_STL_MODEL_HPP

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <functional>
#include <iterator>
#include <list>
#include <map>
#include <string>
#include <unordered_map>
#include <vector>

namespace vptest {

/* mix -- splitmix64 finaliser: the random word of operation i. */
inline std::uint64_t mix(std::uint64_t x)
{
	x += 0x9e3779b97f4a7c15ull;
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
	x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
	return x ^ (x >> 31);
}

template <template <class> class A>
struct containers {
	using str = std::basic_string<char, std::char_traits<char>, A<char>>;
	std::vector<long, A<long>> vec;
	std::list<long, A<long>> lst;
	std::map<long, str, std::less<long>, A<std::pair<const long, str>>> map;
	std::unordered_map<long, long, std::hash<long>, std::equal_to<long>,
			   A<std::pair<const long, long>>> umap;
	str s;
	std::uint64_t done = 0; // operations applied, updated in the same FAS

	/* apply -- operation number i of the stream seeded with seed. */
	void apply(std::uint64_t seed, std::uint64_t i)
	{
		std::uint64_t r = mix(seed * 1000003u + i);
		long key = long((r >> 8) % 512);
		long val = long(r >> 20);
		switch (r % 12) {
		case 0:
			if (vec.size() < 3000)
				vec.push_back(val);
			else
				vec.clear();
			break;
		case 1:
			if (!vec.empty())
				vec[std::size_t(key) % vec.size()] = val;
			break;
		case 2:
			if (!vec.empty())
				vec.pop_back();
			break;
		case 3:
			lst.push_front(val);
			break;
		case 4:
			if (lst.size() < 1500)
				lst.push_back(val);
			else
				lst.pop_front();
			break;
		case 5:
			if (!lst.empty()) {
				auto it = lst.begin();
				std::advance(it, std::size_t(key) % lst.size());
				lst.erase(it);
			}
			break;
		case 6:
			map[key] = str(std::size_t(val % 48), char('a' + key % 26));
			break;
		case 7:
			map.erase(key);
			break;
		case 8:
			umap[key] = val;
			break;
		case 9:
			umap.erase(key);
			break;
		case 10:
			if (s.size() < 4000)
				s.append(std::size_t(val % 64), char('A' + key % 26));
			else
				s.clear();
			break;
		default:
			s.erase(0, std::min(s.size(), std::size_t(key % 7)));
			break;
		}
	}
};

/* same -- whether two container sets (any allocators) hold the same data;
 * prints the first difference. */
template <class X, class Y>
bool same(const X &a, const Y &b)
{
	bool ok = true;
	auto fail = [&](const char *what) {
		std::fprintf(stderr, "mismatch in %s\n", what);
		ok = false;
	};
	if (a.done != b.done)
		std::fprintf(stderr, "done %llu vs %llu\n", (unsigned long long)a.done,
			     (unsigned long long)b.done), ok = false;
	if (!std::equal(a.vec.begin(), a.vec.end(), b.vec.begin(), b.vec.end()))
		fail("vector");
	if (!std::equal(a.lst.begin(), a.lst.end(), b.lst.begin(), b.lst.end()))
		fail("list");
	if (a.map.size() != b.map.size())
		fail("map size");
	else
		for (auto [ia, ib] = std::make_pair(a.map.begin(), b.map.begin());
		     ia != a.map.end(); ++ia, ++ib)
			if (ia->first != ib->first ||
			    !std::equal(ia->second.begin(), ia->second.end(),
					ib->second.begin(), ib->second.end())) {
				fail("map");
				break;
			}
	if (a.umap.size() != b.umap.size())
		fail("unordered_map size");
	else
		for (auto &kv : a.umap) {
			auto it = b.umap.find(kv.first);
			if (it == b.umap.end() || it->second != kv.second) {
				fail("unordered_map");
				break;
			}
		}
	if (!std::equal(a.s.begin(), a.s.end(), b.s.begin(), b.s.end()))
		fail("string");
	return ok;
}

} // namespace vptest

#endif
