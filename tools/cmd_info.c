/* SPDX-License-Identifier: MIT */
/*
 * cmd_info.c -- `volipmem info PATH`: layout, sizes, log state, heap usage
 * and roots of a pool, read-only. Warns when a process has the pool open
 * (what it shows is then the last durable state, not the live heap).
 */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "cli.h"
#include "heap/heap.h"
#include "util/util.h"

static void print_roots(const uint8_t *heap, const struct vp_heaphdr *h, uint64_t heap_size)
{
	uint64_t off = h->roots_head;
	printf("roots:            %llu\n", (unsigned long long)h->nroots);
	for (uint64_t n = 0; off && off + sizeof(struct vp_root) <= heap_size && n < h->nroots; n++) {
		struct vp_root r;
		memcpy(&r, heap + off, sizeof r);
		r.name[sizeof r.name - 1] = 0;
		printf("  %-32s %10llu bytes at offset %#llx\n", r.name, (unsigned long long)r.size,
		       (unsigned long long)r.obj);
		off = r.next;
	}
}

int cmd_info(int argc, char **argv)
{
	if (argc != 2) {
		fprintf(stderr, "usage: volipmem info PATH\n");
		return 2;
	}
	struct cli_pool p;
	int rc = cli_open(&p, argv[1]);
	if (rc) {
		cli_close(&p);
		return 1;
	}
	if (p.pool.in_use)
		fprintf(stderr, "volipmem info: warning: %s is open in another process; "
				"this shows its last durable state\n", argv[1]);
	const struct vp_superblock *sb = &p.pool.sb;
	char when[64];
	time_t ct = (time_t)sb->create_time;
	strftime(when, sizeof when, "%Y-%m-%d %H:%M:%S UTC", gmtime(&ct));
	printf("pool:             %s\n", argv[1]);
	printf("format version:   %u (superblock seq %llu; copy A %s, copy B %s)\n", sb->version,
	       (unsigned long long)sb->seq, p.pool.sb_rc[0] ? "DAMAGED" : "ok", p.pool.sb_rc[1] ? "DAMAGED" : "ok");
	printf("uuid:             ");
	for (int i = 0; i < 16; i++)
		printf("%02x%s", sb->uuid[i], i == 3 || i == 5 || i == 7 || i == 9 ? "-" : "");
	printf("\ncreated:          %s\n", when);
	printf("heap:             %llu bytes (%llu pages) at %#llx, %llu bytes of address space reserved\n",
	       (unsigned long long)sb->heap_size, (unsigned long long)sb->heap_size / VP_PAGE,
	       (unsigned long long)sb->heap_base, (unsigned long long)sb->heap_reserve);
	printf("layout:           home image @%llu, log descriptors @%llu, log slots @%llu (%llu slots), file %llu bytes\n",
	       (unsigned long long)sb->home_off, (unsigned long long)sb->logdesc_off,
	       (unsigned long long)sb->logdata_off, (unsigned long long)sb->log_capacity,
	       (unsigned long long)sb->file_size);
	printf("log:              group %llu %s\n", (unsigned long long)p.rec.seq,
	       p.rec.state == VP_LOG_COMMITTED ? "COMMITTED, not yet applied (pmap will replay it)" : "applied (log empty)");
	if (p.rec.state == VP_LOG_COMMITTED)
		printf("                  %llu pages in the committed group, at log slots %u..%llu (base %u)\n",
		       (unsigned long long)p.rec.npages, p.rec.base, (unsigned long long)(p.rec.base + p.rec.npages - 1),
		       p.rec.base);
	const uint8_t *heap = cli_heap(&p);
	const struct vp_heaphdr *h = (const void *)heap;
	struct vp_heap_report rep;
	char err[300];
	int hrc = vp__heap_check(heap, sb->heap_size, &rep, err, sizeof err);
	if (hrc) {
		printf("heap metadata:    INCONSISTENT: %s (run `volipmem check`)\n", err);
	} else {
		printf("heap used:        %llu bytes in %llu small blocks (%llu runs) and %llu large blocks\n",
		       (unsigned long long)rep.used_bytes, (unsigned long long)rep.small_blocks, (unsigned long long)rep.runs,
		       (unsigned long long)rep.large_blocks);
		printf("heap pages:       %llu metadata, %llu below top, %llu in %llu free spans, %llu never used\n",
		       (unsigned long long)rep.meta_pages, (unsigned long long)rep.top,
		       (unsigned long long)rep.free_pages, (unsigned long long)rep.free_spans,
		       (unsigned long long)(rep.npages - rep.top));
		print_roots(heap, h, sb->heap_size);
	}
	cli_close(&p);
	return 0;
}
