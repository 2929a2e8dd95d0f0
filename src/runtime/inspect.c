/* SPDX-License-Identifier: MIT */
/*
 * inspect.c -- pool open, recovery and check on an in-memory image of the
 * pool file (see inspect.h). The image is a pool object with the cache-line
 * flush medium, so no msync is needed and the persist hooks see exactly the
 * stores a real recovery makes.
 */
#include <stdio.h>
#include <string.h>

#include "runtime/inspect.h"
#include "util/util.h"

int vp__image_open(struct vp_image *im, uint8_t *img, uint64_t len)
{
	memset(im, 0, sizeof *im);
	int rc = vp__pool_image(&im->pool, img, len);
	if (rc)
		return rc;
	return vp__log_check(&im->pool, &im->rec);
}

int vp__image_recover(struct vp_image *im)
{
	int rc = vp__log_replay(&im->pool, &im->rec);
	if (!rc)
		rc = vp__log_state(&im->pool.sb, im->pool.map, &im->rec);
	return rc;
}

int vp__image_check(struct vp_image *im, struct vp_heap_report *rep, char *err, size_t errlen)
{
	struct vp_logrec rec;
	const struct vp_pool *p = &im->pool;
	int rc = vp__log_state(&p->sb, p->map, &rec);
	if (rc) {
		snprintf(err, errlen, "%s", vp_errormsg());
		return rc;
	}
	if (rec.state != VP_LOG_APPLIED) {
		snprintf(err, errlen, "redo log: group %llu is committed but not applied",
			 (unsigned long long)rec.seq);
		return VP_E_LOGCORRUPT;
	}
	return vp__heap_check(p->map + p->sb.home_off, p->sb.heap_size, rep, err, errlen);
}
