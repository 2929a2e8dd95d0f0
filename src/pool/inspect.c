/* SPDX-License-Identifier: MIT */
/*
 * inspect.c -- pool open, recovery and check on an in-memory image of the
 * pool file (see inspect.h). Recovery runs the library's own vp__recover on
 * a private runtime record whose "pool mapping" is the image, with the
 * cache-line flush medium, so no msync is needed and the persist hooks see
 * exactly the stores a real recovery makes.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pool/inspect.h"
#include "runtime.h"
#include "util/util.h"

int vp__sb_pick(const struct vp_superblock sb[2], const int rc[2], int *best, char *why, size_t whylen)
{
	*best = -1;
	if (rc[0] == 0 && rc[1] == 0) {
		if (memcmp(sb[0].uuid, sb[1].uuid, sizeof sb[0].uuid) != 0) {
			snprintf(why, whylen, "the two superblock copies belong to different pools");
			return VP_E_LAYOUT;
		}
		*best = sb[0].seq >= sb[1].seq ? 0 : 1;
		return 0;
	}
	if (rc[0] == 0 || rc[1] == 0) {
		*best = rc[0] == 0 ? 0 : 1;
		return 0;
	}
	snprintf(why, whylen, "no valid superblock copy");
	return rc[0] == VP_E_TRUNCATED || rc[1] == VP_E_TRUNCATED ? VP_E_TRUNCATED : rc[0];
}

int vp__image_open(struct vp_image *im, uint8_t *img, uint64_t len)
{
	struct vp_superblock sb[2];
	char why[200] = "";
	memset(im, 0, sizeof *im);
	im->img = img;
	im->len = len;
	for (int i = 0; i < 2; i++) {
		uint64_t off = i ? VP_SB_OFF_B : VP_SB_OFF_A;
		if (len < off + sizeof sb[i]) {
			im->sb_rc[i] = VP_E_TRUNCATED;
			snprintf(im->sb_why[i], sizeof im->sb_why[i], "file has %llu bytes, too short for copy %c",
				 (unsigned long long)len, 'A' + i);
			memset(&sb[i], 0, sizeof sb[i]);
			continue;
		}
		memcpy(&sb[i], img + off, sizeof sb[i]);
		im->sb_rc[i] = vp__sb_validate(&sb[i], len, im->sb_why[i], sizeof im->sb_why[i]);
	}
	int rc = vp__sb_pick(sb, im->sb_rc, &im->best, why, sizeof why);
	if (rc)
		return vp__err(rc, "superblock: %s (copy A: %s; copy B: %s)", why,
			       im->sb_rc[0] ? im->sb_why[0] : "ok", im->sb_rc[1] ? im->sb_why[1] : "ok");
	im->sb = sb[im->best];
	return vp__log_state(&im->sb, im->img, &im->rec);
}

int vp__image_recover(struct vp_image *im)
{
	struct vp_rt *rt = calloc(1, sizeof *rt);
	if (!rt)
		return vp__err(-12 /* ENOMEM */, "out of memory for a recovery record");
	rt->fd = -1;
	rt->sb = im->sb;
	rt->pool = im->img;
	rt->pool_len = im->sb.file_size;
	vp__persist_open(&rt->ps, im->img, im->sb.file_size, false, true);
	snprintf(rt->path, sizeof rt->path, "(pool image)");
	int rc = vp__recover(rt, true);
	free(rt);
	if (!rc)
		rc = vp__log_state(&im->sb, im->img, &im->rec);
	return rc;
}

int vp__image_check(struct vp_image *im, struct vp_heap_report *rep, char *err, size_t errlen)
{
	struct vp_logrec rec;
	int rc = vp__log_state(&im->sb, im->img, &rec);
	if (rc) {
		snprintf(err, errlen, "%s", vp_errormsg());
		return rc;
	}
	if (rec.state != VP_LOG_APPLIED) {
		snprintf(err, errlen, "redo log: group %llu is committed but not applied",
			 (unsigned long long)rec.seq);
		return VP_E_LOGCORRUPT;
	}
	return vp__heap_check(im->img + im->sb.home_off, im->sb.heap_size, rep, err, errlen);
}
