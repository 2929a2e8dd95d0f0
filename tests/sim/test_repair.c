/* SPDX-License-Identifier: MIT */
/*
 * test_repair.c -- `volipmem check --repair` on damaged pool files:
 *   - derived allocator metadata destroyed (bins, class lists, run free
 *     counts, used bytes): check fails, repair succeeds, check passes, the
 *     program's data is intact and the allocator works on;
 *   - a damaged superblock copy is rewritten from the other;
 *   - unrecoverable damage (a block head lost, both commit records
 *     corrupt) is refused and the file is left byte-for-byte unchanged.
 * Usage: test_repair PATH-TO-volipmem-CLI
 */
#include <fcntl.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <volipmem.h>

#include "pool/format.h"

#define VP_PAGE 4096u

static char path[256];
static const char *cli;

#define VPT_TEST_NAME "test_repair"
#include "check.h"

/* vpt_check_cleanup -- what a failed CHECK removes before exiting */
static void vpt_check_cleanup(void)
{
	unlink(path);
}

static int run_cli(const char *mode)
{
	char cmd[700];
	snprintf(cmd, sizeof cmd, "%s check %s %s", cli, mode, path);
	printf("$ %s\n", cmd);
	fflush(stdout);
	int st = system(cmd);
	return WIFEXITED(st) ? WEXITSTATUS(st) : 255;
}

static uint8_t *slurp(size_t *n)
{
	FILE *f = fopen(path, "rb");
	CHECK(f, "open %s", path);
	fseek(f, 0, SEEK_END);
	*n = (size_t)ftell(f);
	fseek(f, 0, SEEK_SET);
	uint8_t *b = malloc(*n);
	CHECK(b && fread(b, 1, *n, f) == *n, "read %s", path);
	fclose(f);
	return b;
}

static void spit(const uint8_t *b, size_t n)
{
	int fd = open(path, O_WRONLY);
	CHECK(fd >= 0 && pwrite(fd, b, n, 0) == (ssize_t)n, "write %s", path);
	close(fd);
}

struct data { uint64_t magic; uint64_t big, small[40]; };

/* build -- a pool with roots, runs with holes, large blocks and free spans. */
static void build(void)
{
	unlink(path);
	CHECK(pmap(path, 4 << 20, VP_CREATE_ONLY) == 0, "pmap: %s", vp_errormsg());
	uint8_t *base = vp_heap_base();
	struct data *d = proot("data", sizeof *d, NULL);
	CHECK(d, "proot");
	pstart();
	d->magic = 0x1234;
	void *big[6];
	for (int i = 0; i < 6; i++) {
		big[i] = pmalloc(20000 + 4096 * (size_t)i);
		memset(big[i], i + 1, 20000);
	}
	d->big = (uint64_t)((uint8_t *)big[3] - base);
	for (int i = 0; i < 40; i++) {
		char *s = pmalloc(24 + (size_t)(i % 3) * 100);
		snprintf(s, 24, "block %d", i);
		d->small[i] = (uint64_t)((uint8_t *)s - base);
	}
	CHECK(pend() == 0, "pend");
	for (int i = 0; i < 40; i += 3) {
		pfree(base + d->small[i]);
		d->small[i] = 0;
	}
	pfree(big[1]);
	pfree(big[4]);
	pfree(big[5]);
	CHECK(pcommit() == 0 && punmap() == 0, "punmap");
}

/* verify -- the program's data survived, and the allocator still works. */
static void verify(void)
{
	CHECK(pmap(path, 0, VP_OPEN_ONLY) == 0, "pmap after repair: %s", vp_errormsg());
	uint8_t *base = vp_heap_base();
	struct data *d = proot("data", sizeof *d, NULL);
	CHECK(d && d->magic == 0x1234, "root lost");
	uint8_t *b = base + d->big;
	for (int i = 0; i < 20000; i++)
		CHECK(b[i] == 4, "large block contents changed");
	for (int i = 0; i < 40; i++) {
		char want[24];
		snprintf(want, sizeof want, "block %d", i);
		CHECK(!d->small[i] || strcmp((char *)base + d->small[i], want) == 0, "small block %d changed", i);
	}
	/* Allocate until the heap is full: nothing live may be handed out. */
	for (int i = 0; i < 200; i++) {
		uint8_t *p = pmalloc(i % 2 ? 100 : 9000);
		if (!p)
			break;
		memset(p, 0xee, i % 2 ? 100 : 9000);
	}
	for (int i = 0; i < 20000; i++)
		CHECK(b[i] == 4, "a new allocation overlapped a live block");
	for (int i = 0; i < 40; i++) {
		char want[24];
		snprintf(want, sizeof want, "block %d", i);
		CHECK(!d->small[i] || strcmp((char *)base + d->small[i], want) == 0,
		      "a new allocation overlapped small block %d", i);
	}
	CHECK(punmap() == 0, "punmap");
	CHECK(run_cli("") == 0, "check after using the repaired pool");
}

int main(int argc, char **argv)
{
	if (argc != 2)
		return 2;
	cli = argv[1];
	snprintf(path, sizeof path, "/dev/shm/vpt-repair-%d.pool", (int)getpid());

	/* 1. derived metadata destroyed */
	build();
	size_t n;
	uint8_t *f = slurp(&n);
	struct vp_heaphdr *h = (void *)(f + VP_HOME_OFF);
	struct vp_pgent *pm = (void *)(f + VP_HOME_OFF + VP_PAGE);
	memset(h->bin_head, 0, sizeof h->bin_head);
	memset(h->class_head, 0, sizeof h->class_head);
	for (uint64_t p = h->meta_pages; p < h->top; p++)
		if (pm[p].kind == VP_PG_RUN)
			pm[p].nfree = 0;
	spit(f, n);
	free(f);
	CHECK(run_cli("") == 1, "check accepted a heap with destroyed bins");
	CHECK(run_cli("--repair") == 0, "repair failed");
	CHECK(run_cli("") == 0, "check fails after repair");
	verify();

	/* 2. superblock copy A damaged */
	f = slurp(&n);
	f[VP_SB_OFF_A + 100] ^= 0x40;
	spit(f, n);
	free(f);
	CHECK(run_cli("") == 1, "check accepted a damaged superblock copy");
	CHECK(run_cli("--repair") == 0, "repair of a superblock copy failed");
	CHECK(run_cli("") == 0, "check fails after the superblock repair");

	/* 3. a block head lost: refused, nothing written */
	f = slurp(&n);
	h = (void *)(f + VP_HOME_OFF);
	pm = (void *)(f + VP_HOME_OFF + VP_PAGE);
	uint64_t p = h->meta_pages;
	while (p < h->top && pm[p].kind != VP_PG_LARGE)
		p++;
	CHECK(p < h->top, "no large block to damage");
	pm[p].kind = VP_PG_UNUSED;
	spit(f, n);
	CHECK(run_cli("--repair") == 1, "repair accepted a heap whose block tiling is broken");
	size_t n2;
	uint8_t *g = slurp(&n2);
	CHECK(n2 == n && memcmp(f, g, n) == 0, "a refused repair changed the file");
	free(g);

	/* 4. both commit records corrupt: refused, nothing written */
	pm[p].kind = VP_PG_LARGE;
	f[VP_LOGREC_OFF + 8] ^= 1;
	f[VP_LOGREC_OFF + VP_LOGREC_B + 8] ^= 1;
	spit(f, n);
	CHECK(run_cli("--repair") == 1, "repair accepted a pool with no valid commit record");
	g = slurp(&n2);
	CHECK(n2 == n && memcmp(f, g, n) == 0, "a refused repair changed the file");
	free(g);
	free(f);
	unlink(path);
	printf("test_repair: OK\n");
	return 0;
}
