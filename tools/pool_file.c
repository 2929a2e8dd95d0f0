/* SPDX-License-Identifier: MIT */
/*
 * pool_file.c -- read-only access to a pool file for the CLI. The pool is
 * validated with the library's own checks; a committed log group is
 * replayed into a private copy-on-write mapping, so `info` and `check` see
 * the state pmap() would recover, and the file is never written.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli.h"
#include "runtime.h"
#include "util/util.h"

int cli_parse_size(const char *s, uint64_t *out)
{
	char *end;
	errno = 0;
	unsigned long long v = strtoull(s, &end, 0);
	if (errno || end == s)
		return -1;
	switch (*end) {
	case 'k': case 'K': v <<= 10; end++; break;
	case 'm': case 'M': v <<= 20; end++; break;
	case 'g': case 'G': v <<= 30; end++; break;
	case 't': case 'T': v <<= 40; end++; break;
	}
	if (*end == 'i' || *end == 'B')
		end++;
	if (*end == 'B')
		end++;
	if (*end)
		return -1;
	*out = v;
	return 0;
}

int cli_open(struct cli_pool *p, const char *path)
{
	struct stat st;
	memset(p, 0, sizeof *p);
	p->path = path;
	p->map = MAP_FAILED;
	p->fd = open(path, O_RDONLY | O_CLOEXEC);
	if (p->fd < 0) {
		fprintf(stderr, "volipmem: cannot open %s: %s\n", path, strerror(errno));
		return -errno;
	}
	if (flock(p->fd, LOCK_SH | LOCK_NB) != 0 && errno == EWOULDBLOCK)
		p->in_use = true;
	if (fstat(p->fd, &st) != 0 || !S_ISREG(st.st_mode)) {
		fprintf(stderr, "volipmem: %s is not a regular file\n", path);
		return VP_E_BADMAGIC;
	}
	p->file_size = (uint64_t)st.st_size;
	struct vp_superblock sb[2];
	for (int i = 0; i < 2; i++) {
		off_t off = i ? VP_SB_OFF_B : VP_SB_OFF_A;
		if (p->file_size < (uint64_t)off + sizeof sb[i] ||
		    pread(p->fd, &sb[i], sizeof sb[i], off) != (ssize_t)sizeof sb[i]) {
			p->sb_rc[i] = VP_E_TRUNCATED;
			snprintf(p->sb_why[i], sizeof p->sb_why[i], "file has %llu bytes, too short for this copy",
				 (unsigned long long)p->file_size);
			continue;
		}
		p->sb_rc[i] = vp__sb_validate(&sb[i], p->file_size, p->sb_why[i], sizeof p->sb_why[i]);
	}
	int best = p->sb_rc[0] == 0 && (p->sb_rc[1] || sb[0].seq >= sb[1].seq) ? 0 : p->sb_rc[1] == 0 ? 1 : -1;
	if (best < 0) {
		fprintf(stderr, "volipmem: %s: superblock copy A: %s\n", path, p->sb_why[0]);
		fprintf(stderr, "volipmem: %s: superblock copy B: %s\n", path, p->sb_why[1]);
		return p->sb_rc[0] == VP_E_TRUNCATED || p->sb_rc[1] == VP_E_TRUNCATED ? VP_E_TRUNCATED : p->sb_rc[0];
	}
	p->sb = sb[best];
	p->map = mmap(NULL, p->sb.file_size, PROT_READ | PROT_WRITE, MAP_PRIVATE, p->fd, 0);
	if (p->map == MAP_FAILED) {
		fprintf(stderr, "volipmem: cannot map %s: %s\n", path, strerror(errno));
		return -errno;
	}
	p->log_rc = vp__log_state(&p->sb, p->map, &p->rec);
	if (!p->log_rc && p->rec.state == VP_LOG_COMMITTED)
		p->log_rc = vp__log_verify(&p->sb, p->map, &p->rec);
	if (p->log_rc) {
		snprintf(p->log_why, sizeof p->log_why, "%s", vp_errormsg());
		fprintf(stderr, "volipmem: %s: redo log: %s\n", path, p->log_why);
		return p->log_rc;
	}
	if (p->rec.state == VP_LOG_COMMITTED) {
		const struct vp_logdesc *d = (const void *)(p->map + p->sb.logdesc_off);
		for (uint64_t i = 0; i < p->rec.npages; i++)
			memcpy(p->map + p->sb.home_off + d[i].pgno * VP_PAGE, p->map + p->sb.logdata_off + i * VP_PAGE,
			       VP_PAGE);
		p->replayed = true;
	}
	return 0;
}

uint8_t *cli_heap(struct cli_pool *p) { return p->map + p->sb.home_off; }

void cli_close(struct cli_pool *p)
{
	if (p->map != MAP_FAILED)
		munmap(p->map, p->sb.file_size);
	if (p->fd >= 0)
		close(p->fd);
}
