/* SPDX-License-Identifier: MIT */
/*
 * test_refuse.c -- a pool that fails validation is never written:
 *   - each structure pmap() relies on is damaged in turn (every class of
 *     superblock check, on both copies; the commit records; a committed
 *     group's descriptors and slots; the heap header in the home image and
 *     as a committed group would replay it; a growth the reserve cannot
 *     hold), and pmap() with a larger size (so it would also grow the pool)
 *     must refuse it with a message and leave the file byte-for-byte as it
 *     was, size included; `volipmem check`, `check --repair` and `info`
 *     must not change it either;
 *   - a pool whose superblock copy B comes from another pool of the same
 *     size is refused by pmap(), `volipmem check` and `volipmem info` with
 *     one and the same message.
 * Usage: test_refuse PATH-TO-volipmem-CLI
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
#include "util/util.h"

static char path[256], other[256], errpath[256];
static const char *cli;

#define VPT_TEST_NAME "test_refuse"
#include "check.h"

/* vpt_check_cleanup -- what a failed CHECK removes before exiting */
static void vpt_check_cleanup(void)
{
	unlink(path);
	unlink(other);
	unlink(errpath);
}

#define HEAP (4u << 20)

static uint8_t *slurp(const char *p, size_t *n)
{
	FILE *f = fopen(p, "rb");
	CHECK(f, "open %s", p);
	fseek(f, 0, SEEK_END);
	*n = (size_t)ftell(f);
	fseek(f, 0, SEEK_SET);
	uint8_t *b = malloc(*n ? *n : 1);
	CHECK(b && fread(b, 1, *n, f) == *n, "read %s", p);
	fclose(f);
	return b;
}

static void spit(const uint8_t *b, size_t n)
{
	unlink(path);
	int fd = open(path, O_WRONLY | O_CREAT | O_EXCL, 0600);
	CHECK(fd >= 0 && write(fd, b, n) == (ssize_t)n, "write %s", path);
	close(fd);
}

/* run_cli -- run `volipmem ARGS path`, its stderr to errpath; exit code. */
static int run_cli(const char *args)
{
	char cmd[900];
	snprintf(cmd, sizeof cmd, "%s %s %s >/dev/null 2>%s", cli, args, path, errpath);
	int st = system(cmd);
	return WIFEXITED(st) ? WEXITSTATUS(st) : 255;
}

static bool err_has(const char *msg)
{
	size_t n;
	uint8_t *b = slurp(errpath, &n);
	b = realloc(b, n + 1);
	b[n] = 0;
	bool ok = strstr((char *)b, msg) != NULL;
	if (!ok)
		fprintf(stderr, "test_refuse: CLI said: %s\n", (char *)b);
	free(b);
	return ok;
}

static void reseal_sb(uint8_t *img, uint32_t off)
{
	struct vp_superblock *sb = (void *)(img + off);
	sb->checksum = vp__csum(sb, offsetof(struct vp_superblock, checksum));
}

/* commit_group_at -- make img's log hold a committed, not applied group of
 * the given descriptors and slot pages from slot base (the descriptors and
 * slots are written only where they fit the log), with both records
 * saying so. */
static void commit_group_at(uint8_t *img, uint32_t base, const struct vp_logdesc *d, const uint8_t *slots,
			    uint64_t n, bool bad_desc_csum)
{
	const struct vp_superblock *sb = (const void *)img;
	if (base + n <= sb->log_capacity) {
		memcpy(img + sb->logdesc_off + base * sizeof *d, d, n * sizeof *d);
		memcpy(img + sb->logdata_off + (uint64_t)base * VP_PAGE, slots, n * VP_PAGE);
	}
	struct vp_logrec r;
	memcpy(&r, img + VP_LOGREC_OFF, sizeof r);
	r.seq++;
	r.state = VP_LOG_COMMITTED;
	r.base = base;
	r.npages = n;
	r.desc_csum = vp__csum(d, n * sizeof *d) ^ (bad_desc_csum ? 1 : 0);
	r.checksum = vp__csum(&r, offsetof(struct vp_logrec, checksum));
	memcpy(img + VP_LOGREC_OFF, &r, sizeof r);
	memcpy(img + VP_LOGREC_OFF + VP_LOGREC_B, &r, sizeof r);
}

static void commit_group(uint8_t *img, const struct vp_logdesc *d, const uint8_t *slots, uint64_t n,
			 bool bad_desc_csum)
{
	commit_group_at(img, 0, d, slots, n, bad_desc_csum);
}

static int ncases;

/* refused -- install img (n bytes) as the pool; pmap(path, grow_to) must
 * fail, and neither it nor the CLI may change the file. */
static void refused(const char *what, const uint8_t *img, size_t n, size_t grow_to)
{
	spit(img, n);
	vp__clear_err();
	int rc = pmap(path, grow_to, 0);
	if (rc == 0)
		punmap();
	CHECK(rc != 0, "%s: pmap accepted the damaged pool", what);
	CHECK(*vp_errormsg(), "%s: pmap refused (%s) without saying why", what, vp_strerror(rc));
	printf("%-44s refused: %s\n", what, vp_errormsg());
	size_t m;
	uint8_t *now = slurp(path, &m);
	CHECK(m == n, "%s: pmap changed the file size from %zu to %zu bytes", what, n, m);
	CHECK(memcmp(now, img, n) == 0, "%s: pmap wrote to a pool that failed validation", what);
	free(now);
	const char *cmds[] = {"check", "check --repair", "info"};
	for (int i = 0; i < 3; i++) {
		run_cli(cmds[i]);
		now = slurp(path, &m);
		CHECK(m == n && memcmp(now, img, n) == 0, "%s: `volipmem %s` changed the file", what, cmds[i]);
		free(now);
	}
	ncases++;
}

int main(int argc, char **argv)
{
	CHECK(argc == 2, "usage: test_refuse PATH-TO-volipmem-CLI");
	cli = argv[1];
	snprintf(path, sizeof path, "/dev/shm/vpt-refuse-%d.pool", (int)getpid());
	snprintf(other, sizeof other, "/dev/shm/vpt-refuse-%d-other.pool", (int)getpid());
	snprintf(errpath, sizeof errpath, "/dev/shm/vpt-refuse-%d.err", (int)getpid());
	unlink(path);
	unlink(other);

	/* Two pools of the same size, each with a root. */
	const char *paths[2] = {other, path};
	for (int i = 0; i < 2; i++) {
		CHECK(pmap(paths[i], HEAP, VP_CREATE_ONLY) == 0, "pmap: %s", vp_errormsg());
		uint64_t *r = proot("data", 64, NULL);
		CHECK(r, "proot");
		pstart();
		*r = 0x5eed + (uint64_t)i;
		CHECK(pend() == 0 && punmap() == 0, "punmap: %s", vp_errormsg());
	}
	size_t n, on;
	uint8_t *good = slurp(path, &n), *oth = slurp(other, &on);
	uint8_t *img = malloc(n);
	CHECK(img && on == n, "two pools of the same size");
	const struct vp_superblock *gsb = (const void *)good;
	const size_t grow = 2 * HEAP;

	/* The undamaged pool opens (so every refusal below is the damage's). */
	CHECK(pmap(path, 0, VP_OPEN_ONLY) == 0 && punmap() == 0, "the undamaged pool: %s", vp_errormsg());
	spit(good, n);

	/* ---- superblock: each class of check, on both copies ---- */
	struct {
		const char *what;
		size_t off, len;     /* bytes set to val at this field offset */
		uint8_t val;
		bool reseal;
	} sbd[] = {
		{"superblock magic", offsetof(struct vp_superblock, magic), 1, 'X', true},
		{"superblock checksum", offsetof(struct vp_superblock, checksum), 1, 0x5a, false},
		{"superblock version", offsetof(struct vp_superblock, version), 1, 7, true},
		{"superblock reserved byte", offsetof(struct vp_superblock, reserved) + 100, 1, 1, true},
		{"superblock feature flags", offsetof(struct vp_superblock, flags), 1, 1, true},
		{"superblock heap size", offsetof(struct vp_superblock, heap_size) + 2, 1, 0x33, true},
		{"superblock log offsets", offsetof(struct vp_superblock, logdesc_off) + 1, 1, 0x7f, true},
		{"superblock heap address", offsetof(struct vp_superblock, heap_base), 1, 0x40, true},
		{"superblock heap reserve", offsetof(struct vp_superblock, heap_reserve), 8, 0, true},
		{"superblock file size", offsetof(struct vp_superblock, file_size) + 5, 1, 0x10, true},
	};
	for (size_t k = 0; k < sizeof sbd / sizeof sbd[0]; k++) {
		memcpy(img, good, n);
		for (int c = 0; c < 2; c++) {
			uint32_t off = c ? VP_SB_OFF_B : VP_SB_OFF_A;
			memset(img + off + sbd[k].off, sbd[k].val, sbd[k].len);
			if (sbd[k].reseal)
				reseal_sb(img, off);
		}
		refused(sbd[k].what, img, n, grow);
	}
	/* A truncated file: the layout needs more bytes than there are. */
	refused("file truncated below its layout", good, n - 2 * VP_PAGE, grow);

	/* ---- the two copies belong to different pools ---- */
	memcpy(img, good, n);
	memcpy(img + VP_SB_OFF_B, oth + VP_SB_OFF_B, sizeof(struct vp_superblock));
	refused("superblock copy B from another pool", img, n, grow);
	{
		char msg[400];
		snprintf(msg, sizeof msg, "pool %s: the two superblock copies belong to different pools", path);
		CHECK(pmap(path, 0, 0) != 0 && strcmp(vp_errormsg(), msg) == 0, "pmap says: %s", vp_errormsg());
		CHECK(run_cli("check") == 1 && err_has(msg), "`volipmem check` does not refuse the mixed pool");
		CHECK(run_cli("info") == 1 && err_has(msg), "`volipmem info` does not refuse the mixed pool");
		printf("mixed superblocks: pmap, check and info all say \"%s\"\n", msg);
	}

	/* ---- the redo log ---- */
	memcpy(img, good, n);
	img[VP_LOGREC_OFF + 20] ^= 1;
	img[VP_LOGREC_OFF + VP_LOGREC_B + 20] ^= 1;
	refused("both commit records", img, n, grow);

	uint8_t *slot = malloc(2 * VP_PAGE);
	CHECK(slot, "malloc");
	struct vp_logdesc d[2];
	/* A committed group: data page 40 of the heap, with its checksum. */
	memset(slot, 0xab, VP_PAGE);
	d[0] = (struct vp_logdesc){.pgno = 40, .csum = vp__csum(slot, VP_PAGE)};
	memcpy(img, good, n);
	commit_group(img, d, slot, 1, true);
	refused("committed group: descriptor checksum", img, n, grow);
	memcpy(img, good, n);
	d[0].csum ^= 1;
	commit_group(img, d, slot, 1, false);
	refused("committed group: slot checksum", img, n, grow);
	memcpy(img, good, n);
	d[0] = (struct vp_logdesc){.pgno = gsb->heap_size / VP_PAGE + 3, .csum = 0};
	commit_group(img, d, slot, 1, false);
	refused("committed group: page beyond the heap", img, n, grow);
	/* Appended groups: the record's base. A group at slot 17 is read
	 * there (its slot checksum is checked there); a base that puts the
	 * group's slots beyond the log is damage, in both copies or in one. */
	memset(slot, 0xab, VP_PAGE);
	d[0] = (struct vp_logdesc){.pgno = 40, .csum = vp__csum(slot, VP_PAGE) ^ 1};
	memcpy(img, good, n);
	commit_group_at(img, 17, d, slot, 1, false);
	refused("committed group at base 17: slot checksum", img, n, grow);
	d[0].csum ^= 1;
	memcpy(img, good, n);
	commit_group_at(img, (uint32_t)gsb->log_capacity, d, slot, 1, false);
	refused("commit record base beyond the log", img, n, grow);
	CHECK(strstr(vp_errormsg(), "field base"), "the refusal names the field: %s", vp_errormsg());
	memcpy(img, good, n);
	commit_group_at(img, UINT32_MAX, d, slot, 1, false);
	refused("commit record base + npages past 2^32", img, n, grow);
	memcpy(img, good, n);
	commit_group_at(img, (uint32_t)gsb->log_capacity - 1, d, slot, 2, false);
	refused("commit record base + npages beyond the log", img, n, grow);
	memcpy(img, good, n);
	{
		struct vp_logrec *ra = (void *)(img + VP_LOGREC_OFF);
		ra->seq++;
		ra->state = VP_LOG_APPLIED;
		ra->base = (uint32_t)gsb->log_capacity + 1;
		ra->checksum = vp__csum(ra, offsetof(struct vp_logrec, checksum));
	}
	refused("commit record copy A base beyond the log", img, n, grow);

	/* ---- the heap header ---- */
	const struct vp_heaphdr *gh = (const void *)(good + gsb->home_off);
	memcpy(img, good, n);
	img[gsb->home_off] ^= 0xff;
	refused("heap header magic", img, n, grow);
	memcpy(img, good, n);
	((struct vp_heaphdr *)(img + gsb->home_off))->top = gh->npages + 1;
	refused("heap header top beyond the heap", img, n, grow);
	/* Valid in the home image, broken as the committed group replays it. */
	memcpy(slot, good + gsb->home_off, VP_PAGE);
	((struct vp_heaphdr *)slot)->version = 9;
	memset(slot + VP_PAGE, 0xcd, VP_PAGE);
	d[0] = (struct vp_logdesc){.pgno = 40, .csum = vp__csum(slot + VP_PAGE, VP_PAGE)};
	d[1] = (struct vp_logdesc){.pgno = 0, .csum = 0};
	struct vp_logdesc dd[2] = {d[0], d[1]};
	uint8_t *slots2 = malloc(2 * VP_PAGE);
	CHECK(slots2, "malloc");
	memcpy(slots2, slot + VP_PAGE, VP_PAGE);
	memcpy(slots2 + VP_PAGE, slot, VP_PAGE);
	memcpy(img, good, n);
	commit_group(img, dd, slots2, 2, false);
	refused("heap header as the log would replay it", img, n, grow);

	/* ---- a growth the reserved address space cannot hold ---- */
	refused("growth beyond the reserve", good, n, gsb->heap_reserve + (4u << 20));

	/* The issue's own numbers: a 64 MiB pool, heap magic damaged,
	 * opened with pmap(path, 128 MiB, 0). */
	unlink(path);
	CHECK(pmap(path, 64u << 20, VP_CREATE_ONLY) == 0 && punmap() == 0, "pmap 64 MiB: %s", vp_errormsg());
	size_t bn;
	uint8_t *big = slurp(path, &bn);
	big[((const struct vp_superblock *)big)->home_off] ^= 0xff;
	refused("64 MiB pool, heap magic, pmap(128 MiB)", big, bn, 128u << 20);
	free(big);

	unlink(path);
	unlink(other);
	unlink(errpath);
	free(good);
	free(oth);
	free(img);
	free(slot);
	free(slots2);
	printf("test_refuse: %d damaged pools refused, none of them written\n", ncases);
	return 0;
}
