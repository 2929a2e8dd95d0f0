/* SPDX-License-Identifier: MIT */
/*
 * pool.c -- pool files: geometry, superblock validation and choice,
 * creation, opening.
 *
 * A new pool is built as a file without a name and linked into place
 * only when complete (newfile.c), so a crash during creation never leaves
 * a half-made pool at `path`, nor anything else; the link fails if the
 * name exists, which makes creation exclusive like O_EXCL.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "pool/newfile.h"
#include "pool/pool.h"
#include "util/options.h"
#include "util/util.h"

/* vp__pool_geometry -- fill the layout fields for a heap of heap_size. */
void vp__pool_geometry(struct vp_superblock *sb, uint64_t heap_size)
{
	uint64_t pages = heap_size / VP_PAGE;
	sb->page_size = VP_PAGE;
	sb->heap_size = heap_size;
	sb->home_off = VP_HOME_OFF;
	sb->log_capacity = pages;
	sb->logdesc_off = vp_align_up(sb->home_off + heap_size, VP_PAGE);
	sb->logdata_off = sb->logdesc_off + vp_align_up(pages * sizeof(struct vp_logdesc), VP_PAGE);
	sb->file_size = sb->logdata_off + pages * VP_PAGE;
}

void vp__sb_seal(struct vp_superblock *sb)
{
	sb->checksum = vp__csum(sb, offsetof(struct vp_superblock, checksum));
}

bool vp__sb_accept_old;

/* vp__sb_validate -- check one superblock copy against the file size.
 * Returns 0 or a code, with a sentence in why. Every offset and size is
 * checked before anything uses it. */
int vp__sb_validate(const struct vp_superblock *sb, uint64_t file_size, char *why, size_t whylen)
{
	if (memcmp(sb->magic, VP_SB_MAGIC, 8) != 0) {
		snprintf(why, whylen, "bad magic (not a VolipMem pool)");
		return VP_E_BADMAGIC;
	}
	if (sb->checksum != vp__csum(sb, offsetof(struct vp_superblock, checksum))) {
		snprintf(why, whylen, "superblock checksum mismatch (stored %016llx)",
			 (unsigned long long)sb->checksum);
		return VP_E_CHECKSUM;
	}
	bool old = sb->version >= VP_FORMAT_V1 && sb->version <= VP_FORMAT_V4;
	if (sb->version != VP_FORMAT_VERSION && !(old && vp__sb_accept_old)) {
		if (old)
			snprintf(why, whylen, "format version %u, this library reads version %u: "
					      "convert it with `volipmem upgrade <pool>`",
				 sb->version, VP_FORMAT_VERSION);
		else
			snprintf(why, whylen, "format version %u, this library reads version %u",
				 sb->version, VP_FORMAT_VERSION);
		return VP_E_VERSION;
	}
	for (size_t i = 0; i < sizeof sb->reserved; i++)
		if (sb->reserved[i]) {
			snprintf(why, whylen, "reserved superblock byte %zu is not zero", i);
			return VP_E_LAYOUT;
		}
	if (sb->flags) {
		snprintf(why, whylen, "unknown feature flags %#llx", (unsigned long long)sb->flags);
		return VP_E_VERSION;
	}
	struct vp_superblock want = *sb;
	if (sb->page_size != VP_PAGE || sb->heap_size < VP_MIN_HEAP || sb->heap_size > VP_MAX_HEAP ||
	    sb->heap_size % VP_PAGE) {
		snprintf(why, whylen, "heap_size %llu / page_size %u out of range",
			 (unsigned long long)sb->heap_size, sb->page_size);
		return VP_E_LAYOUT;
	}
	vp__pool_geometry(&want, sb->heap_size);
	if (want.home_off != sb->home_off || want.logdesc_off != sb->logdesc_off ||
	    want.logdata_off != sb->logdata_off || want.log_capacity != sb->log_capacity ||
	    want.file_size != sb->file_size) {
		snprintf(why, whylen, "layout offsets do not match heap_size %llu",
			 (unsigned long long)sb->heap_size);
		return VP_E_LAYOUT;
	}
	/* The heap must be a canonical, user-space, 2 MiB aligned range that
	 * cannot wrap: anything else could make pmap map over other memory. */
	if (sb->heap_base == 0 || sb->heap_base % (2u << 20) || sb->heap_reserve < sb->heap_size ||
	    sb->heap_reserve % (2u << 20) || sb->heap_base >= 0x7ff000000000ull ||
	    sb->heap_reserve > 0x7ff000000000ull - sb->heap_base || sb->heap_base < (1ull << 32)) {
		snprintf(why, whylen, "heap address %#llx + reserve %#llx is not a valid user range",
			 (unsigned long long)sb->heap_base, (unsigned long long)sb->heap_reserve);
		return VP_E_LAYOUT;
	}
	if (file_size < sb->file_size) {
		snprintf(why, whylen, "file has %llu bytes, its layout needs %llu",
			 (unsigned long long)file_size, (unsigned long long)sb->file_size);
		return VP_E_TRUNCATED;
	}
	return 0;
}

static int write_all(int fd, const void *buf, size_t n, off_t off)
{
	const uint8_t *p = buf;
	while (n) {
		ssize_t w = pwrite(fd, p, n, off);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		p += w;
		n -= (size_t)w;
		off += w;
	}
	return 0;
}

int vp__sb_write(struct vp_pool *p, int copy, const struct vp_superblock *sb)
{
	int rc = write_all(p->fd, sb, sizeof *sb, copy ? VP_SB_OFF_B : VP_SB_OFF_A);
	if (!rc && fdatasync(p->fd) != 0)
		rc = -errno;
	if (rc)
		return vp__err(rc, "cannot write superblock copy %c of %s: %s", 'A' + copy, p->path, strerror(-rc));
	return 0;
}

/* vp__pool_create -- see pool.h. */
int vp__pool_create(const char *path, size_t heap_size, unsigned flags,
		    int (*format_heap)(uint8_t *img, size_t heap_size))
{
	struct vp_superblock sb;
	struct vp_newfile nf;
	uint8_t *map = MAP_FAILED;
	int fd = -1, rc;

	if (heap_size < VP_MIN_HEAP)
		return vp__err(VP_E_TOOSMALL, "heap size %zu is below the minimum of %u bytes",
			       heap_size, VP_MIN_HEAP);
	heap_size = vp_align_up(heap_size, VP_PAGE);
	if (heap_size > VP_MAX_HEAP)
		return vp__err(VP_E_INVAL, "heap size %zu is above the maximum of %llu bytes",
			       heap_size, (unsigned long long)VP_MAX_HEAP);
	memset(&sb, 0, sizeof sb);
	memcpy(sb.magic, VP_SB_MAGIC, 8);
	sb.version = VP_FORMAT_VERSION;
	sb.seq = 1;
	sb.heap_base = vp__opt.heap_base;
	sb.heap_reserve = vp_align_up(heap_size > vp__opt.reserve ? heap_size : vp__opt.reserve, 2u << 20);
	vp__pool_geometry(&sb, heap_size);
	sb.create_time = (uint64_t)time(NULL);
	if (getrandom(sb.uuid, sizeof sb.uuid, 0) != (ssize_t)sizeof sb.uuid)
		for (size_t i = 0; i < sizeof sb.uuid; i++)
			sb.uuid[i] = (uint8_t)(rand() ^ (int)getpid());
	vp__sb_seal(&sb);

	if ((rc = vp__newfile_open(&nf, path)))
		return rc;
	fd = nf.fd;
	if (ftruncate(fd, (off_t)sb.file_size) != 0) {
		rc = vp__err(-errno, "cannot size pool %s to %llu bytes: %s", path,
			     (unsigned long long)sb.file_size, strerror(errno));
		goto fail;
	}
	{
		/* Reserve blocks now, so a full medium is reported here and not
		 * as SIGBUS on a later store. VP_SPARSE leaves only the redo log
		 * sparse: each commit reserves the slots it needs (log.c). The
		 * home image is always reserved, because the working copy reads
		 * it through a private mapping, and a read of a hole on a full
		 * tmpfs raises SIGBUS. */
		uint64_t len = (flags & VP_SPARSE) ? sb.logdesc_off : sb.file_size;
		vp__create_point("reserve");
		int e = posix_fallocate(fd, 0, (off_t)len);
		if (e) {
			rc = vp__err(-e, "cannot reserve %llu bytes for pool %s: %s",
				     (unsigned long long)len, path, strerror(e));
			goto fail;
		}
		vp__create_point("reserved");
	}
	/* The heap's own metadata: its header and page map, at the start of
	 * the home image. */
	size_t meta = vp_align_up(sizeof(struct vp_heaphdr), VP_PAGE) +
		      vp_align_up((heap_size / VP_PAGE) * sizeof(struct vp_pgent), VP_PAGE);
	map = mmap(NULL, meta, PROT_READ | PROT_WRITE, MAP_SHARED, fd, (off_t)sb.home_off);
	if (map == MAP_FAILED) {
		rc = vp__err(-errno, "cannot map new pool %s: %s", path, strerror(errno));
		goto fail;
	}
	if ((rc = format_heap(map, heap_size)))
		goto fail;
	if (msync(map, meta, MS_SYNC) != 0) {
		rc = vp__err(-errno, "cannot write new pool %s: %s", path, strerror(errno));
		goto fail;
	}
	munmap(map, meta);
	map = MAP_FAILED;

	/* Both commit records say "group 0 applied": an empty log. */
	struct vp_logrec rec;
	memset(&rec, 0, sizeof rec);
	rec.magic = VP_LOGREC_MAGIC;
	rec.state = VP_LOG_APPLIED;
	memcpy(rec.uuid, sb.uuid, sizeof rec.uuid);
	rec.checksum = vp__csum(&rec, offsetof(struct vp_logrec, checksum));
	if ((rc = write_all(fd, &rec, sizeof rec, VP_LOGREC_OFF)) ||
	    (rc = write_all(fd, &rec, sizeof rec, VP_LOGREC_OFF + VP_LOGREC_B)) ||
	    (rc = write_all(fd, &sb, sizeof sb, VP_SB_OFF_A)) ||
	    (rc = write_all(fd, &sb, sizeof sb, VP_SB_OFF_B))) {
		rc = vp__err(rc, "cannot write new pool %s: %s", path, strerror(-rc));
		goto fail;
	}
	if (fsync(fd) != 0) {
		rc = vp__err(-errno, "cannot sync new pool %s: %s", path, strerror(errno));
		goto fail;
	}
	vp__create_point("durable");
	if ((rc = vp__newfile_publish(&nf)))
		return rc;
	vp__diag(1, "created pool %s: heap %zu bytes at %#llx", path, heap_size,
		(unsigned long long)sb.heap_base);
	return 0;
fail:
	if (map != MAP_FAILED)
		munmap(map, meta);
	vp__newfile_drop(&nf);
	return rc;
}

/* vp__sb_choose -- see pool.h. When no copy is valid, copy A's problem is
 * reported (a truncated file says "truncated" even if the tail copy also
 * fails). */
int vp__sb_choose(struct vp_pool *p, const struct vp_superblock *a, const struct vp_superblock *b,
		  uint64_t file_size)
{
	const struct vp_superblock *c[2] = {a, b};
	for (int i = 0; i < 2; i++) {
		if (c[i])
			p->sb_rc[i] = vp__sb_validate(c[i], file_size, p->sb_why[i], sizeof p->sb_why[i]);
		else {
			p->sb_rc[i] = VP_E_TRUNCATED;
			snprintf(p->sb_why[i], sizeof p->sb_why[i], "file has %llu bytes, too short for superblock copy %c",
				 (unsigned long long)file_size, 'A' + i);
		}
	}
	int *rc = p->sb_rc;
	if (rc[0] == 0 && rc[1] == 0) {
		if (memcmp(a->uuid, b->uuid, sizeof a->uuid) != 0)
			return vp__err(VP_E_LAYOUT, "pool %s: the two superblock copies belong to different pools",
				       p->path);
		p->sb = a->seq >= b->seq ? *a : *b;
		return 0;
	}
	if (rc[0] == 0 || rc[1] == 0) {
		int good = rc[0] == 0 ? 0 : 1;
		vp__diag(1, "pool %s: superblock copy %c is damaged (%s); using copy %c", p->path, 'B' - good,
			p->sb_why[1 - good], 'A' + good);
		p->sb = *c[good];
		return 0;
	}
	if (rc[0] == VP_E_TRUNCATED || rc[1] == VP_E_TRUNCATED)
		return vp__err(VP_E_TRUNCATED, "pool %s is truncated: %s", p->path,
			       rc[0] == VP_E_TRUNCATED ? p->sb_why[0] : p->sb_why[1]);
	return vp__err(rc[0], "pool %s: superblock copy A: %s; copy B: %s", p->path, p->sb_why[0], p->sb_why[1]);
}

int vp__pool_map(int fd, size_t len, uint8_t **map, bool *dax)
{
	/* MAP_SYNC is accepted only on a DAX file system: then cache-line
	 * flushes are enough to make stores durable. */
	void *m = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED_VALIDATE | MAP_SYNC, fd, 0);
	*dax = m != MAP_FAILED;
	if (m == MAP_FAILED)
		m = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (m == MAP_FAILED)
		return -errno;
	*map = m;
	return 0;
}

static void pool_init(struct vp_pool *p, const char *path)
{
	memset(p, 0, sizeof *p);
	p->fd = -1;
	snprintf(p->path, sizeof p->path, "%s", path);
}

/* vp__pool_open -- see pool.h. */
int vp__pool_open(struct vp_pool *p, const char *path, enum vp_pool_mode mode)
{
	struct vp_superblock a, b;
	struct stat st;
	bool rw = mode == VP_POOL_RW, dax = false;
	int rc;

	pool_init(p, path);
	p->fd = open(path, (rw ? O_RDWR : O_RDONLY) | O_CLOEXEC);
	if (p->fd < 0) {
		rc = -errno;
		if (rw && (errno == EACCES || errno == EROFS || errno == EPERM))
			return vp__err(rc, "pool %s is not writable by this process: %s", path, strerror(errno));
		return vp__err(rc, "cannot open pool %s: %s", path, strerror(errno));
	}
	if (flock(p->fd, (rw ? LOCK_EX : LOCK_SH) | LOCK_NB) != 0) {
		if (errno == EWOULDBLOCK && !rw) {
			p->in_use = true;
		} else {
			rc = errno == EWOULDBLOCK ? vp__err(VP_E_LOCKED, "pool %s is open in another process", path)
						  : vp__err(-errno, "cannot lock pool %s: %s", path, strerror(errno));
			goto fail;
		}
	}
	if (fstat(p->fd, &st) != 0) {
		rc = vp__err(-errno, "cannot stat pool %s: %s", path, strerror(errno));
		goto fail;
	}
	if (!S_ISREG(st.st_mode)) {
		rc = vp__err(VP_E_BADMAGIC, "pool %s is not a regular file", path);
		goto fail;
	}
	p->file_size = (uint64_t)st.st_size;
	bool ha = p->file_size >= VP_SB_OFF_A + sizeof a && pread(p->fd, &a, sizeof a, VP_SB_OFF_A) == (ssize_t)sizeof a;
	bool hb = p->file_size >= VP_SB_OFF_B + sizeof b && pread(p->fd, &b, sizeof b, VP_SB_OFF_B) == (ssize_t)sizeof b;
	if ((rc = vp__sb_choose(p, ha ? &a : NULL, hb ? &b : NULL, p->file_size)))
		goto fail;

	p->len = p->sb.file_size;
	if (rw) {
		rc = vp__pool_map(p->fd, p->len, &p->map, &dax);
	} else {
		void *m = mmap(NULL, p->len, PROT_READ | PROT_WRITE, MAP_PRIVATE, p->fd, 0);
		rc = m == MAP_FAILED ? -errno : 0;
		p->map = m;
	}
	if (rc) {
		p->map = NULL;
		rc = vp__err(rc, "cannot map pool %s (%zu bytes): %s", path, p->len, strerror(-rc));
		goto fail;
	}
	/* A private copy is written with cache-line flushes: nothing to msync. */
	vp__persist_open(&p->ps, p->map, p->len, dax, rw ? vp__opt.force_pmem : true);
	return 0;
fail:
	close(p->fd);
	p->fd = -1;
	return rc;
}

int vp__pool_image(struct vp_pool *p, uint8_t *img, uint64_t len)
{
	pool_init(p, "(pool image)");
	p->file_size = len;
	const struct vp_superblock *a = len >= VP_SB_OFF_A + sizeof *a ? (const void *)(img + VP_SB_OFF_A) : NULL;
	const struct vp_superblock *b = len >= VP_SB_OFF_B + sizeof *b ? (const void *)(img + VP_SB_OFF_B) : NULL;
	int rc = vp__sb_choose(p, a, b, len);
	if (rc)
		return rc;
	p->map = img;
	p->len = p->sb.file_size;
	vp__persist_open(&p->ps, img, p->len, false, true);
	return 0;
}

void vp__pool_close(struct vp_pool *p)
{
	if (p->map && p->fd >= 0)
		munmap(p->map, p->len);
	p->map = NULL;
	if (p->fd >= 0)
		close(p->fd);
	p->fd = -1;
}
