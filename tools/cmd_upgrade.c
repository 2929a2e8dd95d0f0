/* SPDX-License-Identifier: MIT */
/*
 * cmd_upgrade.c -- `volipmem upgrade PATH`: convert a version-1 pool (the
 * whole-page redo log), a version-2 pool (line-granular, every group at
 * slot 0), a version-3 pool (groups appended, slots drained before record
 * A) or a version-4 pool (the heap header counts the bytes in use) to
 * version 5 (record A drained with the slots it names, no count), in
 * place and crash-safely. The layout is the same, an older record is a
 * version-5 record (base 0 before version 3) and version 5 ignores the
 * count, so: validate under the old
 * version's rules (nothing written before; a version-3 group that fails
 * its checksums is damage, never discarded as torn), replay and retire a
 * committed group (a pool that was not closed cleanly has one), then
 * rewrite superblock copy A, then B, with version 5. A crash at any point
 * leaves a pool that is valid under its old version (run upgrade again) or
 * version-5 valid with an empty log.
 * docs/FORMAT.md, "Versioning".
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <volipmem.h>

#include "cli.h"
#include "util/util.h"

/* stop_after -- test hook VP_UPGRADE_STOP_AFTER=n: stop, as a crash would,
 * after step n (1 log replayed, 2 superblock A written). */
static bool stop_after(int step)
{
	const char *s = getenv("VP_UPGRADE_STOP_AFTER");
	if (s && s[0] - '0' == step && !s[1]) {
		fprintf(stderr, "volipmem upgrade: stopped after step %d (VP_UPGRADE_STOP_AFTER)\n", step);
		return true;
	}
	return false;
}

/* stop_after_valid -- VP_UPGRADE_STOP_AFTER is unset, 0 (no stop), 1 or 2;
 * anything else is refused before the pool is touched, not ignored. */
static bool stop_after_valid(void)
{
	const char *s = getenv("VP_UPGRADE_STOP_AFTER");
	if (!s || (s[0] >= '0' && s[0] <= '2' && !s[1]))
		return true;
	fprintf(stderr, "volipmem upgrade: VP_UPGRADE_STOP_AFTER=\"%s\" is not 0, 1 or 2\n", s);
	return false;
}

int cmd_upgrade(int argc, char **argv)
{
	if (argc != 2) {
		fprintf(stderr, "usage: volipmem upgrade PATH\n");
		return 2;
	}
	if (!stop_after_valid())
		return 2;
	const char *path = argv[1];
	struct vp_pool p = {.fd = -1};
	struct vp_logrec rec;
	vp__sb_accept_old = true;
	int rc = vp__pool_open(&p, path, VP_POOL_RW);
	if (!rc)
		rc = vp__log_check(&p, &rec);
	if (rc) {
		fprintf(stderr, "volipmem upgrade: %s: %s: %s\n", path, vp_strerror(rc), vp_errormsg());
		if (p.fd >= 0)
			vp__pool_close(&p);
		return 1;
	}
	const struct vp_superblock *a = (const void *)(p.map + VP_SB_OFF_A), *b = (const void *)(p.map + VP_SB_OFF_B);
	if (p.sb_rc[0] == 0 && p.sb_rc[1] == 0 && a->version == VP_FORMAT_VERSION && b->version == VP_FORMAT_VERSION) {
		printf("%s: already format version %u; nothing to do\n", path, VP_FORMAT_VERSION);
		vp__pool_close(&p);
		return 0;
	}
	unsigned from = p.sb.version;
	/* Step 1: empty the log under the rules of the winning copy. */
	if (!(rc = vp__log_replay(&p, &rec)) && !stop_after(1)) {
		struct vp_superblock sb = p.sb;
		sb.version = VP_FORMAT_VERSION;
		sb.seq++;
		vp__sb_seal(&sb);
		/* Steps 2 and 3: one copy at a time, each synced before the next. */
		if (!(rc = vp__sb_write(&p, 0, &sb)) && !stop_after(2))
			rc = vp__sb_write(&p, 1, &sb);
		else if (!rc)
			rc = -1;
	} else if (!rc) {
		rc = -1;
	}
	vp__pool_close(&p);
	if (rc == -1)
		return 1;
	if (rc) {
		fprintf(stderr, "volipmem upgrade: %s: %s: %s\n", path, vp_strerror(rc), vp_errormsg());
		return 1;
	}
	printf("upgraded %s: format version %u -> %u\n", path, from, VP_FORMAT_VERSION);
	return 0;
}
