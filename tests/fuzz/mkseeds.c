/* SPDX-License-Identifier: MIT */
/*
 * mkseeds.c -- write the fuzzer's seed corpus: real pools in the states
 * recovery must handle, captured from a running pool through the persist
 * hooks, in the compact fuzz input format (fuzz_image.h):
 *   clean            log applied, heap with runs, large blocks and roots
 *   committed        a group committed, home image not yet updated (two
 *                    pages, one changed line each: LINES slots)
 *   committed-mixed  the same with a whole page changed too (a PAGE slot)
 *   committed-tornB  the same with commit record copy B torn
 *   torn             commit record A torn before the commit point
 *   sbA-damaged      superblock copy A corrupt, copy B valid
 *   committed-wrapped  a group committed at slot 0 after the log was
 *                    retired because the next group did not fit
 * each also with the reseal flag set. The committed groups sit after the
 * earlier groups in the log (format version 3: their base is not 0). Usage: mkseeds OUTDIR
 */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fuzz_image.h"
#include "persist/persist.h"
#include "runtime/runtime.h"

static const char *want;
static uint8_t *snap;
static int got;

static void h_store(void *c, const void *d, size_t n) { (void)c; (void)d; (void)n; }
static void h_flush(void *c, const void *d, size_t n) { (void)c; (void)d; (void)n; }
static int h_fence(void *c, const char *point)
{
	(void)c;
	if (want && !got && strstr(point, want)) {
		memcpy(snap, vp__rt.pool.map, vp__rt.pool.len);
		got = 1;
	}
	return 0;
}

static const char *outdir;
static size_t plen;

static void emit(const char *name, const uint8_t *img)
{
	uint8_t *enc = malloc(2 + plen + 6 * (plen / 64));
	for (int r = 0; r < 2; r++) {
		char path[600];
		snprintf(path, sizeof path, "%s/seed-%s%s", outdir, name, r ? "-reseal" : "");
		size_t n = fuzz_encode(img, plen, enc, r ? FUZZ_RESEAL : 0);
		FILE *f = fopen(path, "wb");
		if (!f || fwrite(enc, 1, n, f) != n) {
			fprintf(stderr, "mkseeds: cannot write %s\n", path);
			exit(1);
		}
		fclose(f);
	}
	free(enc);
}

static void capture(const char *point, uint64_t *word, bool whole)
{
	want = point;
	got = 0;
	pstart();
	word[0]++;
	word[1024]++;
	for (unsigned i = 0; whole && i < 512; i++)
		word[512 + i] += i + 1;
	if (pend() != 0 || !got) {
		fprintf(stderr, "mkseeds: no drain named %s\n", point);
		exit(1);
	}
	want = NULL;
}

/* capture_committed -- the pool as a crash during a commit's second drain
 * can leave it: slots and both record copies naming the group, the home
 * image not yet updated (snapshot at the first drain, record A copied
 * into B). */
static void capture_committed(uint64_t *word, bool whole)
{
	capture("slots-and-record-A-committed", word, whole);
	memcpy(snap + VP_LOGREC_OFF + VP_LOGREC_B, snap + VP_LOGREC_OFF, sizeof(struct vp_logrec));
}

int main(int argc, char **argv)
{
	if (argc != 2) {
		fprintf(stderr, "usage: mkseeds OUTDIR\n");
		return 2;
	}
	outdir = argv[1];
	mkdir(outdir, 0755);
	char path[256];
	snprintf(path, sizeof path, "/dev/shm/vpfuzz-seed-%d.pool", (int)getpid());
	unlink(path);
	setenv("VOLIPMEM_FORCE_PMEM", "1", 1);
	if (pmap(path, 1 << 20, VP_CREATE_ONLY) != 0) {
		fprintf(stderr, "mkseeds: pmap: %s\n", vp_errormsg());
		return 1;
	}
	plen = vp__rt.pool.len;
	snap = malloc(plen);
	uint64_t *a = proot("a", 3 * 4096, NULL);
	char *s = proot("small", 100, NULL);
	void *big = pmalloc(20000);
	void *x = pmalloc(48), *y = pmalloc(48);
	pfree(x);
	(void)y;
	(void)big;
	strcpy(s, "hello");
	static struct vp_persist_hooks hk = {h_store, h_flush, h_fence, NULL};
	vp__persist_hooks = &hk;

	capture_committed(a, true);
	emit("committed-mixed", snap);
	capture_committed(a, false);
	emit("committed", snap);
	snap[VP_LOGREC_OFF + VP_LOGREC_B + 40] ^= 0x5a;
	emit("committed-tornB", snap);
	const struct vp_logrec *ra = (const void *)(snap + VP_LOGREC_OFF);
	if (ra->state != VP_LOG_COMMITTED || ra->base == 0) {
		fprintf(stderr, "mkseeds: the committed seed's group is not appended (base %u)\n", ra->base);
		return 1;
	}
	capture("slots-and-record-A-committed", a, false);
	snap[VP_LOGREC_OFF + 40] ^= 0x5a;
	emit("torn", snap);
	/* Commit until the log wraps: the group after the retire starts at 0. */
	for (int i = 0; i < 4096; i++) {
		capture_committed(a, false);
		if (ra->base == 0)
			break;
	}
	if (ra->state != VP_LOG_COMMITTED || ra->base != 0) {
		fprintf(stderr, "mkseeds: the log never wrapped\n");
		return 1;
	}
	emit("committed-wrapped", snap);
	vp__persist_hooks = NULL;
	if (punmap() != 0)
		return 1;
	FILE *f = fopen(path, "rb");
	if (!f || fread(snap, 1, plen, f) != plen)
		return 1;
	fclose(f);
	unlink(path);
	emit("clean", snap);
	snap[VP_SB_OFF_A + 20] ^= 1;
	emit("sbA-damaged", snap);
	printf("mkseeds: 14 seeds in %s\n", outdir);
	return 0;
}
