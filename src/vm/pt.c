/* SPDX-License-Identifier: MIT */
/*
 * pt.c -- guest-physical memory and the guest page table.
 *
 * Guest-virtual == host-virtual, but guest-physical addresses are packed:
 * each new host range gets a memslot at the next free GPA (from 4 GiB, so
 * the legacy holes below stay empty), because the guest's MAXPHYADDR may be
 * smaller than the host's 47-bit user address space (40 bits under TCG).
 * Slots are never removed in this slice: a slot over an unmapped host range
 * is harmless (no PTE points there) and a later mmap at the same place
 * reuses it.
 *
 * The page table is a 4-level one built in the arena's pool: 4 KiB leaf
 * pages for every user mapping (the tracking granularity), with the host's
 * protections (U=1, RW if writable, NX if not executable, nothing for
 * PROT_NONE); the arena itself is mapped with 2 MiB supervisor pages.
 * Every vCPU has its own root (vm__cpu_root): a copy of the template's
 * user half, whose 256 entries are all created up front so a copy never
 * goes stale, plus its own block at VM_CPU_VA. Callers hold vm__lock; those
 * that take translations away stop the world around the change and bump
 * vm__s.gen, so every vCPU reloads CR3 before it runs again (vm.c).
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/kvm.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>
#include "vm_internal.h"

#define VM_MAX_SLOTS (VM_A_SCRATCH - VM_A_SLOTS) / sizeof(struct vm__slot)

/* vm__pool_alloc -- zeroed, page-aligned memory from the arena (never freed
 * before the VM is destroyed). NULL when the 1 GiB arena is exhausted. */
void *vm__pool_alloc(size_t len)
{
	struct vm__state *s = &vm__s;
	len = vm__page_up(len);
	if (VM_A_POOL + s->pool_used + len > VM_ARENA_LEN)
		return NULL;
	void *p = s->arena + VM_A_POOL + s->pool_used;
	s->pool_used += len;
	return p;   /* fresh MAP_NORESERVE pages: already zero */
}

static uint64_t *gpa_to_host(uint64_t gpa)
{
	return (uint64_t *)(void *)(vm__s.arena + (gpa - vm__s.arena_gpa));
}

static uint64_t host_to_gpa(const void *p)
{
	return vm__s.arena_gpa + (uint64_t)((const uint8_t *)p - vm__s.arena);
}

/* vm__pte -- the leaf PTE for va; with alloc, create the tables on the way
 * (intermediate entries P|RW|U: the leaf decides). NULL if absent. */
uint64_t *vm__pte(uint64_t va, bool alloc)
{
	uint64_t *t = gpa_to_host(vm__s.pml4_gpa);
	for (int shift = 39; shift > 12; shift -= 9) {
		uint64_t *e = &t[(va >> shift) & 511];
		if (*e & VM_PTE_PS)
			return NULL;   /* the arena's 2 MiB pages */
		if (!(*e & VM_PTE_P)) {
			if (!alloc)
				return NULL;
			uint64_t *n = vm__pool_alloc(VM_PAGE);
			if (!n)
				return NULL;
			*e = host_to_gpa(n) | VM_PTE_P | VM_PTE_RW | VM_PTE_U;
		}
		t = gpa_to_host(*e & VM_PTE_ADDR);
	}
	return &t[(va >> 12) & 511];
}

/* vm__pde -- the page-directory entry over va (shared by every vCPU's
 * root), or NULL if the tables down to it do not exist. */
uint64_t *vm__pde(uint64_t va)
{
	uint64_t *t = gpa_to_host(vm__s.pml4_gpa);
	for (int shift = 39; shift > 21; shift -= 9) {
		uint64_t e = t[(va >> shift) & 511];
		if (!(e & VM_PTE_P) || (e & VM_PTE_PS))
			return NULL;
		t = gpa_to_host(e & VM_PTE_ADDR);
	}
	return &t[(va >> 21) & 511];
}

/* slot_find -- the slot holding hva, or NULL. */
static struct vm__slot *slot_find(uint64_t hva)
{
	for (uint32_t i = 0; i < vm__s.nslots; i++) {
		struct vm__slot *sl = &vm__s.slots[i];
		if (hva >= sl->hva && hva - sl->hva < sl->len)
			return sl;
	}
	return NULL;
}

/* slot_add -- a memslot for [hva, hva + len) at the next free GPA. */
static int slot_add(uint64_t hva, uint64_t len)
{
	struct vm__state *s = &vm__s;
	if (s->nslots >= VM_MAX_SLOTS)
		return vm__err(-ENOSPC, "volimem: out of memslots (%u)", s->nslots);
	if (s->gpa_next + len > s->gpa_limit)
		return vm__err(-ENOMEM, "volimem: guest-physical space exhausted: 0x%llx + 0x%llx "
			       "bytes passes MAXPHYADDR (0x%llx)", (unsigned long long)s->gpa_next,
			       (unsigned long long)len, (unsigned long long)s->gpa_limit);
	struct kvm_userspace_memory_region r = {
		.slot = s->nslots, .guest_phys_addr = s->gpa_next, .memory_size = len,
		.userspace_addr = hva,
	};
	long e = vm__sys6(SYS_ioctl, s->vm, KVM_SET_USER_MEMORY_REGION, (long)&r, 0, 0, 0);
	if (e < 0)
		return vm__err((int)e, "volimem: KVM_SET_USER_MEMORY_REGION hva 0x%llx len 0x%llx "
			       "gpa 0x%llx: %s", (unsigned long long)hva, (unsigned long long)len,
			       (unsigned long long)s->gpa_next, strerror((int)-e));
	s->slots[s->nslots] = (struct vm__slot){ hva, len, s->gpa_next, s->nslots };
	s->nslots++;
	s->gpa_next += len;
	return 0;
}

/* vm__slots_init -- the arena's own slot (slot 0), used by vm.c. */
int vm__slots_init(void);
int vm__slots_init(void)
{
	struct vm__state *s = &vm__s;
	s->slots = (struct vm__slot *)(void *)(s->arena + VM_A_SLOTS);
	s->arena_gpa = s->gpa_next;
	return slot_add((uint64_t)s->arena, VM_ARENA_LEN);
}

/* cover -- memslots over every page of [start, end). */
static int cover(uint64_t start, uint64_t end)
{
	uint64_t a = start;
	while (a < end) {
		struct vm__slot *sl = slot_find(a);
		if (sl) {
			a = sl->hva + sl->len;
			continue;
		}
		uint64_t b = end;
		for (uint32_t i = 0; i < vm__s.nslots; i++)
			if (vm__s.slots[i].hva > a && vm__s.slots[i].hva < b)
				b = vm__s.slots[i].hva;
		int r = slot_add(a, b - a);
		if (r < 0)
			return r;
		a = b;
	}
	return 0;
}

/* vm__map -- mirror a host mapping [start, end) with prot (PROT_*) into the
 * guest: slots, then one PTE per page (PROT_NONE clears them). */
int vm__map(uint64_t start, uint64_t end, int prot)
{
	start = vm__page_down(start);
	end = vm__page_up(end);
	if (!(prot & (PROT_READ | PROT_WRITE | PROT_EXEC))) {
		vm__unmap(start, end);
		return 0;
	}
	int r = cover(start, end);
	if (r < 0)
		return r;
	struct vm__slot *sl = NULL;
	for (uint64_t va = start; va < end; va += VM_PAGE) {
		if (!sl || va - sl->hva >= sl->len)
			sl = slot_find(va);
		uint64_t *pte = vm__pte(va, true);
		if (!pte)
			return vm__err(-ENOMEM, "volimem: arena full building the page table at 0x%llx",
				       (unsigned long long)va);
		uint64_t e = (sl->gpa + (va - sl->hva)) | VM_PTE_P | VM_PTE_U;
		if (prot & PROT_WRITE)
			e |= VM_PTE_RW;
		if (!(prot & PROT_EXEC))
			e |= VM_PTE_NX;
		*pte = vm__track_pte_bits(va, *pte, e);
	}
	__atomic_add_fetch(&vm__s.gen, 1, __ATOMIC_SEQ_CST);
	return 0;
}

/* vm__unmap -- clear the PTEs of [start, end), skipping absent tables. */
void vm__unmap(uint64_t start, uint64_t end)
{
	start = vm__page_down(start);
	end = vm__page_up(end);
	for (uint64_t va = start; va < end;) {
		uint64_t *pte = vm__pte(va, false);
		if (!pte) {
			va = (va + VM_2M) & ~(VM_2M - 1);
			continue;
		}
		*pte = 0;
		va += VM_PAGE;
	}
	__atomic_add_fetch(&vm__s.gen, 1, __ATOMIC_SEQ_CST);
}

/* vm__prot_of -- the PROT_* a present guest PTE gives va (0 if none). */
int vm__prot_of(uint64_t va)
{
	uint64_t *pte = vm__pte(va, false);
	if (!pte || !(*pte & VM_PTE_P))
		return 0;
	int p = PROT_READ;
	if (*pte & (VM_PTE_RW | VM_PTE_SWW))
		p |= PROT_WRITE;
	if (!(*pte & VM_PTE_NX))
		p |= PROT_EXEC;
	return p;
}

/* parse_hex -- a hex number at *p, advancing past it. */
static uint64_t parse_hex(const char **p)
{
	uint64_t v = 0;
	for (;; (*p)++) {
		char c = **p;
		if (c >= '0' && c <= '9')
			v = v * 16 + (uint64_t)(c - '0');
		else if (c >= 'a' && c <= 'f')
			v = v * 16 + (uint64_t)(c - 'a' + 10);
		else
			return v;
	}
}

/* vm__mirror_maps -- map every range of /proc/self/maps into the guest,
 * except [vsyscall] (above the user half; its legacy calls fault), KVM's
 * own mappings (anon_inode:kvm-vcpu:N, the kvm_run page: a slot there
 * would make KVM map its own structures into the guest) and the arena.
 * [vvar] is mapped like the rest, read-only: KVM maps its PFNMAP pages,
 * so the vDSO's clock_gettime works in the guest. */
int vm__mirror_maps(void)
{
	char *buf = (char *)(vm__s.arena + VM_A_SCRATCH);
	long fd = vm__sys6(SYS_openat, AT_FDCWD, (long)"/proc/self/maps", O_RDONLY | O_CLOEXEC, 0, 0, 0);
	if (fd < 0)
		return vm__err((int)fd, "volimem: cannot open /proc/self/maps: %s", strerror((int)-fd));
	size_t n = 0;
	for (;;) {
		long r = vm__sys6(SYS_read, fd, (long)(buf + n), (long)(VM_A_SCRATCH_LEN - 1 - n), 0, 0, 0);
		if (r <= 0)
			break;
		n += (size_t)r;
	}
	vm__sys6(SYS_close, fd, 0, 0, 0, 0, 0);
	if (n >= VM_A_SCRATCH_LEN - 1)
		return vm__err(-E2BIG, "volimem: /proc/self/maps is larger than %lu bytes", VM_A_SCRATCH_LEN);
	buf[n] = 0;

	uint64_t a0 = (uint64_t)vm__s.arena, a1 = a0 + VM_ARENA_LEN;
	for (const char *p = buf; *p;) {
		const char *line = p;
		uint64_t start = parse_hex(&p);
		p++;
		uint64_t end = parse_hex(&p);
		p++;
		int prot = (p[0] == 'r' ? PROT_READ : 0) | (p[1] == 'w' ? PROT_WRITE : 0) |
			   (p[2] == 'x' ? PROT_EXEC : 0);
		const char *eol = strchr(line, '\n');
		if (!eol)
			eol = line + strlen(line);
		const char *name = p;
		for (int f = 0; f < 4 && name < eol; f++) {   /* skip perms offset dev inode */
			while (name < eol && *name != ' ')
				name++;
			while (name < eol && *name == ' ')
				name++;
		}
		p = *eol ? eol + 1 : eol;
		size_t nl = (size_t)(eol - name);
		if ((nl >= 11 && memcmp(name, "[vsyscall]", 10) == 0) ||
		    (nl >= 14 && memcmp(name, "anon_inode:kvm", 14) == 0))
			continue;
		if (start >= (1ull << 47) || (start < a1 && end > a0))
			continue;
		int r = vm__map(start, end, prot);
		if (r < 0)
			return r;
	}
	return 0;
}

/* vm__map_arena -- the arena in the guest: 2 MiB supervisor pages, RW, NX
 * (the CPL0 stubs run from the program's text; this is data and stacks). */
int vm__map_arena(void);
int vm__map_arena(void)
{
	for (uint64_t off = 0; off < VM_ARENA_LEN; off += VM_2M) {
		uint64_t va = (uint64_t)vm__s.arena + off;
		uint64_t *t = gpa_to_host(vm__s.pml4_gpa);
		for (int shift = 39; shift > 21; shift -= 9) {
			uint64_t *e = &t[(va >> shift) & 511];
			if (!(*e & VM_PTE_P)) {
				uint64_t *n = vm__pool_alloc(VM_PAGE);
				if (!n)
					return vm__err(-ENOMEM, "volimem: arena full mapping the arena");
				*e = host_to_gpa(n) | VM_PTE_P | VM_PTE_RW | VM_PTE_U;
			}
			t = gpa_to_host(*e & VM_PTE_ADDR);
		}
		t[(va >> 21) & 511] = (vm__s.arena_gpa + off) | VM_PTE_P | VM_PTE_RW | VM_PTE_PS |
				      VM_PTE_NX;
	}
	return 0;
}

/* vm__pt_init -- the template root, its user half complete (256 PDPTs,
 * 1 MiB of the arena, zero until used) so the vCPUs' copies stay true. */
int vm__pt_init(void);
int vm__pt_init(void)
{
	uint64_t *root = vm__pool_alloc(VM_PAGE);
	uint64_t *pdpt = vm__pool_alloc(256 * VM_PAGE);
	if (!root || !pdpt)
		return vm__err(-ENOMEM, "volimem: arena full");
	for (int i = 0; i < 256; i++)
		root[i] = host_to_gpa(pdpt + i * 512) | VM_PTE_P | VM_PTE_RW | VM_PTE_U;
	vm__s.pml4_gpa = host_to_gpa(root);
	return 0;
}

/* vm__cpu_root -- c's own root: the template's user half, and c's block
 * (VM_CPU_LEN bytes at c) at VM_CPU_VA with 4 KiB supervisor pages. */
int vm__cpu_root(struct vm__cpu *c);
int vm__cpu_root(struct vm__cpu *c)
{
	uint64_t *root = vm__pool_alloc(VM_PAGE), *pdpt = vm__pool_alloc(VM_PAGE);
	uint64_t *pd = vm__pool_alloc(VM_PAGE), *pt = vm__pool_alloc(VM_PAGE);
	if (!root || !pdpt || !pd || !pt)
		return vm__err(-ENOMEM, "volimem: arena full (vCPU %d's page table)", c->idx);
	memcpy(root, gpa_to_host(vm__s.pml4_gpa), 256 * sizeof *root);
	const uint64_t dir = VM_PTE_P | VM_PTE_RW;
	root[(VM_CPU_VA >> 39) & 511] = host_to_gpa(pdpt) | dir;
	pdpt[(VM_CPU_VA >> 30) & 511] = host_to_gpa(pd) | dir;
	pd[(VM_CPU_VA >> 21) & 511] = host_to_gpa(pt) | dir;
	for (uint64_t off = 0; off < VM_CPU_LEN; off += VM_PAGE)
		pt[((VM_CPU_VA + off) >> 12) & 511] = host_to_gpa((uint8_t *)c + off) | dir | VM_PTE_NX;
	c->root_gpa = host_to_gpa(root);
	return 0;
}
