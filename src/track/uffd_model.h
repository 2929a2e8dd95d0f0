/* SPDX-License-Identifier: MIT */
/*
 * uffd_model.h -- the uffd tracker's cost model: what the machine charges
 * for the operations the tracker chooses between (measured once per
 * process by uf_probe), and the policy derived from it. A pure function,
 * so tests can feed it any machine.
 */
#ifndef VP_UFFD_MODEL_H
#define VP_UFFD_MODEL_H

#include <stdint.h>

/* What the machine charges, in ns. */
struct uffd_cost {
	uint64_t scan_fixed;     /* PAGEMAP_SCAN of one clean page             */
	uint64_t scan_page_x16;  /* each further clean page, in 1/16 ns        */
	uint64_t fault;          /* first write to an armed page               */
	uint64_t rearm;          /* a scan that re-protects one written page,
	                            beyond scan_fixed                          */
	uint64_t mprotect_pair;  /* PROT_READ then PROT_READ|PROT_WRITE        */
	uint64_t compare;        /* comparing one page with another            */
};

/* What the tracker does with it. */
struct uffd_policy {
	unsigned cool_after;     /* clean commits before a hot region cools    */
	unsigned sticky_age;     /* commits a sticky page may go unchanged
	                            before it is scanned again                 */
	unsigned merge_gap;      /* cold regions between two hot runs that one
	                            scan walks rather than making two          */
};

static inline unsigned uffd_clamp(uint64_t v, unsigned lo, unsigned hi)
{
	return v < lo ? lo : v > hi ? hi : (unsigned)v;
}

/*
 * uffd_policy_from -- a hot region that nobody writes costs its share of
 * every scan (region_pages clean pages); cooling it and heating it again at
 * the next write costs an mprotect pair, the trap of that write and one
 * scan of the region (recording what was written meanwhile). Keep it hot
 * while the first is cheaper: cool after cycle / per-commit cost clean
 * commits. A sticky page costs a page compare per commit; being scanned
 * instead costs, when it is written again, a fault and a re-arm. So a
 * sticky page that stopped changing is scanned again after
 * (fault + rearm) / compare commits: by then it has cost what one more
 * write would have saved. Two runs of hot regions separated by a few
 * cold ones are cheaper as one scan when walking the gap costs less than
 * a scan's fixed cost.
 */
static inline struct uffd_policy uffd_policy_from(const struct uffd_cost *c, unsigned region_pages)
{
	uint64_t region = c->scan_page_x16 * region_pages / 16 + 1;
	uint64_t cycle = c->mprotect_pair + c->fault + c->scan_fixed + region;
	uint64_t cmp = c->compare ? c->compare : 1;
	return (struct uffd_policy){
		.cool_after = uffd_clamp(cycle / region, 2, 255),
		.sticky_age = uffd_clamp((c->fault + c->rearm) / cmp, 4, 255),
		.merge_gap = uffd_clamp(c->scan_fixed / region, 0, 64),
	};
}

#endif
