// SPDX-License-Identifier: MIT
/*
 * polymorphic_root.cpp -- must NOT compile: a type with a vtable cannot be
 * a persistent root (its vtable pointer dangles after a restart). The test
 * compiles it and expects the binding's static_assert message.
 */
#include <volipmem.hpp>

struct shape {
	virtual ~shape() = default;
	int sides = 0;
};

int main()
{
	return pmem_api::provide_pobject<shape>("shape").sides;
}
