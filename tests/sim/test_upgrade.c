/* SPDX-License-Identifier: MIT */
/*
 * test_upgrade.c -- version-1 to -4 pools: pmap refuses one with a
 * message naming both versions and `volipmem upgrade`, leaving the file
 * unchanged; the upgrade, stopped after each of its steps (as a crash there
 * would) and with superblock copy A torn after its write, always leaves a
 * pool that is valid under its old version or version-5 valid, and run
 * again finishes; the committed old-version group it replays (what a pool
 * not closed cleanly holds) is in the heap afterwards. An old record whose
 * base field is not zero (reserved before version 3; in version 3 it names
 * slots that fail their descriptors, and version 3 never discards a
 * group) is refused by the upgrade, file unchanged.
 * Usage: vp_test_upgrade PATH-OF-volipmem
 */
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <volipmem.h>

#include "pool/pool.h"
#include "util/util.h"

static const char *cli;
static char v1path[256], path[256];
static unsigned old; /* the version under test */

#define CHECK(c)                                                                                                       \
	do {                                                                                                           \
		if (!(c)) {                                                                                            \
			fprintf(stderr, "test_upgrade: %s:%d: %s failed (%s)\n", __FILE__, __LINE__, #c, vp_errormsg()); \
			exit(1);                                                                                       \
		}                                                                                                      \
	} while (0)

static uint8_t *slurp(const char *p, size_t *n)
{
	FILE *f = fopen(p, "rb");
	CHECK(f);
	fseek(f, 0, SEEK_END);
	*n = (size_t)ftell(f);
	rewind(f);
	uint8_t *b = malloc(*n);
	CHECK(fread(b, 1, *n, f) == *n);
	fclose(f);
	return b;
}

static void spit(const char *p, const uint8_t *b, size_t n)
{
	FILE *f = fopen(p, "wb");
	CHECK(f && fwrite(b, 1, n, f) == n);
	fclose(f);
}

static int run(const char *env)
{
	char cmd[700];
	snprintf(cmd, sizeof cmd, "%s %s upgrade %s >/dev/null 2>&1", env, cli, path);
	int st = system(cmd);
	return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

/* make_old -- a pool holding 1 in root "u", then a committed, unapplied
 * group at slot 0 (a whole page, which both old versions know) that sets
 * it to 2, then version `old` written into both superblocks: exactly what
 * the old library left after a crash. */
static void make_old(void)
{
	CHECK(pmap(v1path, 1 << 20, VP_CREATE_ONLY) == 0);
	uint64_t *u = proot("u", sizeof *u, NULL);
	pstart();
	*u = 1;
	CHECK(pend() == 0);
	uint64_t off = (uint64_t)((uint8_t *)u - (uint8_t *)vp_heap_base());
	CHECK(punmap() == 0);

	struct vp_pool p;
	struct vp_logrec rec;
	CHECK(vp__pool_open(&p, v1path, VP_POOL_RW) == 0);
	CHECK(vp__log_state(&p.sb, p.map, &rec) == 0 && rec.state == VP_LOG_APPLIED);
	uint8_t *slot = p.map + p.sb.logdata_off;
	memcpy(slot, p.map + p.sb.home_off + off / VP_PAGE * VP_PAGE, VP_PAGE);
	*(uint64_t *)(slot + off % VP_PAGE) = 2;
	struct vp_logdesc d = {.pgno = off / VP_PAGE, .csum = vp__csum(slot, VP_PAGE)};
	memcpy(p.map + p.sb.logdesc_off, &d, sizeof d);
	CHECK(vp__logrec_write(&p, VP_LOG_COMMITTED, rec.seq + 1, 0, 1, vp__csum(&d, sizeof d)) == 0);
	struct vp_superblock sb = p.sb;
	sb.version = old;
	vp__sb_seal(&sb);
	CHECK(vp__sb_write(&p, 0, &sb) == 0 && vp__sb_write(&p, 1, &sb) == 0);
	vp__pool_close(&p);
}

/* read_u -- pmap the pool (the current version) and return root u. */
static uint64_t read_u(void)
{
	CHECK(pmap(path, 1 << 20, VP_OPEN_ONLY) == 0);
	uint64_t v = *(uint64_t *)proot("u", 8, NULL);
	CHECK(punmap() == 0);
	return v;
}

/* valid_either -- the pool opens as the current version with u = 2, or it is refused
 * as the old version and is a valid pool of that version (its log checks). */
static void valid_either(void)
{
	int rc = pmap(path, 1 << 20, VP_OPEN_ONLY);
	if (rc == 0) {
		CHECK(*(uint64_t *)proot("u", 8, NULL) == 2);
		CHECK(punmap() == 0);
		return;
	}
	/* refused: copy A torn (checksum) or both copies version 1 */
	CHECK(rc == VP_E_VERSION || rc == VP_E_CHECKSUM);
	struct vp_pool p;
	struct vp_logrec rec;
	vp__sb_accept_old = true;
	CHECK(vp__pool_open(&p, path, VP_POOL_PRIVATE) == 0 && p.sb.version == old);
	CHECK(vp__log_check(&p, &rec) == 0);
	vp__pool_close(&p);
	vp__sb_accept_old = false;
}

/* one_version -- every check above for version `old`. */
static void one_version(void)
{
	unlink(v1path);
	make_old();
	size_t n, n2;
	uint8_t *v1 = slurp(v1path, &n);
	char want[32], cur[32];

	/* Refused, with both versions and the command named; unchanged. */
	spit(path, v1, n);
	CHECK(pmap(path, 1 << 20, 0) == VP_E_VERSION);
	const char *m = vp_errormsg();
	snprintf(want, sizeof want, "version %u", old);
	snprintf(cur, sizeof cur, "version %u", VP_FORMAT_VERSION);
	CHECK(strstr(m, want) && strstr(m, cur) && strstr(m, "volipmem upgrade"));
	uint8_t *now = slurp(path, &n2);
	CHECK(n2 == n && memcmp(now, v1, n) == 0);
	free(now);

	/* The old record's base set to 1: damage under the old rules (a
	 * reserved field before version 3; slot 1's descriptor fails the
	 * record's checksum in version 3), refused by the upgrade, nothing
	 * written. */
	{
		uint8_t *img = malloc(n);
		CHECK(img);
		memcpy(img, v1, n);
		for (uint32_t off = 0; off <= VP_LOGREC_B; off += VP_LOGREC_B) {
			struct vp_logrec *r = (void *)(img + VP_LOGREC_OFF + off);
			r->base = 1;
			r->checksum = vp__csum(r, offsetof(struct vp_logrec, checksum));
		}
		spit(path, img, n);
		CHECK(run("") == 1);
		now = slurp(path, &n2);
		CHECK(n2 == n && memcmp(now, img, n) == 0);
		free(now);
		free(img);
	}

	/* Stopped after each step, and A torn after its write: valid either
	 * way; run again, it finishes. */
	for (int stop = 0; stop <= 3; stop++) {
		spit(path, v1, n);
		char env[64];
		snprintf(env, sizeof env, "VP_UPGRADE_STOP_AFTER=%d", stop == 3 ? 2 : stop);
		CHECK(run(env) == (stop ? 1 : 0));
		if (stop == 3) {
			uint8_t *img = slurp(path, &n2);
			img[VP_SB_OFF_A + 100] ^= 0x40; /* A torn: B (old version) wins */
			spit(path, img, n2);
			free(img);
		}
		valid_either();
		CHECK(run("") == 0);
		CHECK(read_u() == 2);
		/* Again: nothing to do, nothing written. */
		uint8_t *before = slurp(path, &n2);
		CHECK(run("") == 0);
		now = slurp(path, &n2);
		CHECK(memcmp(now, before, n2) == 0);
		free(now);
		free(before);
	}
	free(v1);
	printf("test_upgrade: version %u -> %u OK\n", old, VP_FORMAT_VERSION);
}

int main(int argc, char **argv)
{
	CHECK(argc == 2);
	cli = argv[1];
	snprintf(v1path, sizeof v1path, "/dev/shm/vp-upgrade-old-%d.pool", (int)getpid());
	snprintf(path, sizeof path, "/dev/shm/vp-upgrade-%d.pool", (int)getpid());
	for (old = VP_FORMAT_V1; old <= VP_FORMAT_V4; old++)
		one_version();
	unlink(v1path);
	unlink(path);
	printf("test_upgrade: OK\n");
	return 0;
}
