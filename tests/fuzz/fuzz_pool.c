/* SPDX-License-Identifier: MIT */
/*
 * fuzz_pool.c -- pool open + recovery + check on arbitrary bytes. Built two
 * ways:
 *   - with clang -fsanitize=fuzzer,address (tests/fuzz/run.sh): a libFuzzer
 *     target;
 *   - with any compiler (the ordinary build): a program that runs the same
 *     body on each file named on the command line, then on N random
 *     mutations of them (VP_FUZZ_ITERS, default 2000), a regression test
 *     for everything the fuzzer found.
 * The body must never crash, hang or read outside the image, and every
 * rejection must name its problem (a non-empty message).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_image.h"
#include "runtime/inspect.h"
#include "util/util.h"

#include "persist/persist.h"

#include "../num.h"

static uint8_t *img;
static int verbose;   /* say what happened to each input (replay mode) */

/* Byte ranges of img written by the last input: zeroing only those (not
 * the whole 4 MiB) makes an execution several times cheaper. */
#define MAXDIRTY 4096
static struct { size_t off, n; } dirty[MAXDIRTY];
static size_t ndirty;
static int dirty_lost;

static void mark(size_t off, size_t n)
{
	if (ndirty == MAXDIRTY)
		dirty_lost = 1;
	else
		dirty[ndirty++].off = off, dirty[ndirty - 1].n = n;
}

static void clean_image(void)
{
	if (dirty_lost)
		memset(img, 0, (size_t)FUZZ_MAX_PAGES * 4096u);
	else
		for (size_t i = 0; i < ndirty; i++)
			memset(img + dirty[i].off, 0, dirty[i].n);
	ndirty = 0;
	dirty_lost = 0;
}

static void h_store(void *c, const void *dst, size_t n)
{
	(void)c;
	mark((size_t)((const uint8_t *)dst - img), n);
}
static void h_flush(void *c, const void *a, size_t n) { (void)c; (void)a; (void)n; }
static int h_fence(void *c, const char *p) { (void)c; (void)p; return 0; }
static struct vp_persist_hooks hooks = {h_store, h_flush, h_fence, NULL};

/* reseal -- recompute every checksum the format has, where the fields
 * that locate it fit the image, so a mutated field is judged by the field
 * checks and not only by a checksum mismatch. */
static void reseal(uint8_t *im, size_t len)
{
	mark(0, VP_LOGREC_OFF + VP_PAGE);
	for (int c = 0; c < 2; c++) {
		size_t so = c ? VP_SB_OFF_B : VP_SB_OFF_A;
		if (len < so + sizeof(struct vp_superblock))
			return;
		struct vp_superblock *sb = (void *)(im + so);
		sb->checksum = vp__csum(sb, offsetof(struct vp_superblock, checksum));
	}
	/* Locals: the descriptor table may overlap the records themselves. */
	uint64_t doff, loff;
	memcpy(&doff, im + offsetof(struct vp_superblock, logdesc_off), 8);
	memcpy(&loff, im + offsetof(struct vp_superblock, logdata_off), 8);
	if (len < VP_LOGREC_OFF + VP_PAGE || doff % 16)
		return;
	for (int c = 0; c < 2; c++) {
		struct vp_logrec *r = (void *)(im + VP_LOGREC_OFF + (c ? VP_LOGREC_B : 0));
		/* The group starts at slot base (format version 3). */
		uint64_t np = r->npages, b = r->base, bd = b * sizeof(struct vp_logdesc);
		if (np <= len / sizeof(struct vp_logdesc) && doff <= len && bd <= len - doff &&
		    np * sizeof(struct vp_logdesc) <= len - doff - bd) {
			struct vp_logdesc *d = (void *)(im + doff + bd);
			mark(doff + bd, np * sizeof *d);
			for (uint64_t i = 0; i < np; i++) {
				uint64_t at = b + i;
				if (d[i].csum && loff <= len && at < len / VP_PAGE && loff + at * VP_PAGE + VP_PAGE <= len) {
					uint64_t k = vp__csum(im + loff + at * VP_PAGE, VP_PAGE);
					d[i].csum = k ? k : 1;
				}
			}
			uint64_t dc = vp__csum(d, np * sizeof *d);
			r->desc_csum = dc;
		}
		r->checksum = vp__csum(r, offsetof(struct vp_logrec, checksum));
	}
}

static void need_message(const char *what, int rc, const char *msg)
{
	if (!msg || !*msg) {
		fprintf(stderr, "fuzz_pool: %s failed with %d (%s) without saying why\n", what, rc, vp_strerror(rc));
		__builtin_trap();
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (!img && !(img = calloc((size_t)FUZZ_MAX_PAGES, 4096u)))
		return 0;
	clean_image();
	uint16_t hdr;
	size_t len = fuzz_decode(data, size, img, &hdr, mark);
	if (hdr & FUZZ_RESEAL)
		reseal(img, len);
	struct vp_image im;
	vp__clear_err();
	int rc = vp__image_open(&im, img, len);
	if (rc) {
		need_message("open", rc, vp_errormsg());
		if (verbose)
			fprintf(stderr, "fuzz_pool: open: %s\n", vp_errormsg());
		return 0;
	}
	vp__clear_err();
	vp__persist_hooks = &hooks;
	rc = vp__image_recover(&im);
	vp__persist_hooks = NULL;
	if (rc) {
		need_message("recovery", rc, vp_errormsg());
		if (verbose)
			fprintf(stderr, "fuzz_pool: recovery: %s\n", vp_errormsg());
		return 0;
	}
	struct vp_heap_report rep;
	char err[400];
	if ((rc = vp__image_check(&im, &rep, err, sizeof err)))
		need_message("check", rc, err);
	if (verbose)
		fprintf(stderr, "fuzz_pool: %s\n", rc ? err : "pool opens, recovers and checks clean");
	return 0;
}

#ifndef VP_LIBFUZZER
static uint64_t rs = 0x9e3779b97f4a7c15ull;
static uint64_t rnd(void)
{
	rs ^= rs << 13;
	rs ^= rs >> 7;
	rs ^= rs << 17;
	return rs;
}

static uint8_t *slurp(const char *path, size_t *n)
{
	FILE *f = fopen(path, "rb");
	if (!f)
		return NULL;
	fseek(f, 0, SEEK_END);
	long sz = ftell(f);
	fseek(f, 0, SEEK_SET);
	uint8_t *b = malloc(sz > 0 ? (size_t)sz : 1);
	if (b && fread(b, 1, (size_t)sz, f) != (size_t)sz) {
		free(b);
		b = NULL;
	}
	fclose(f);
	*n = (size_t)sz;
	return b;
}

int main(int argc, char **argv)
{
	long iters = (long)vpt_env_uint("fuzz_pool", "VP_FUZZ_ITERS", 2000, 0, LONG_MAX);
	int nfiles = 0;
	for (int i = 1; i < argc; i++) {
		size_t n;
		uint8_t *b = slurp(argv[i], &n);
		if (!b) {
			fprintf(stderr, "fuzz_pool: cannot read %s\n", argv[i]);
			return 1;
		}
		verbose = 1;
		fprintf(stderr, "%s:\n", argv[i]);
		LLVMFuzzerTestOneInput(b, n);
		verbose = 0;
		nfiles++;
		for (long k = 0; k < iters / (argc - 1); k++) {
			uint8_t *m = malloc(n);
			memcpy(m, b, n);
			int flips = 1 + (int)(rnd() % 8);
			for (int f = 0; f < flips && n > 2; f++) {
				size_t at = 2 + rnd() % (n - 2);
				switch (rnd() % 3) {
				case 0: m[at] ^= (uint8_t)(1u << (rnd() % 8)); break;
				case 1: m[at] = (uint8_t)rnd(); break;
				default: m[at] = (uint8_t)(rnd() % 2 ? 0xff : 0); break;
				}
			}
			LLVMFuzzerTestOneInput(m, n);
			free(m);
		}
		free(b);
	}
	printf("fuzz_pool: %d inputs and %ld mutations each ran clean\n", nfiles, nfiles ? iters / nfiles : 0);
	return nfiles ? 0 : 77;
}
#endif
