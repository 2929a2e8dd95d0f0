/* SPDX-License-Identifier: MIT */
/*
 * newfile.c -- files that get their name only when complete.
 *
 * The file is opened with O_TMPFILE in the target's directory: an inode
 * with no name, freed by the kernel when the last descriptor closes, so a
 * process killed at any instant leaves nothing (on a disk file system a
 * crash of the machine leaves an orphan inode, which the journal replay
 * frees at the next mount). When the contents are synced, linkat() gives
 * it the name; linkat fails with EEXIST if the name exists, which makes
 * creation exclusive like O_EXCL.
 *
 * Where O_TMPFILE is refused (file systems without it, old kernels), the
 * file is built at PATH.creating.PID and link()ed. A killed creator leaves
 * that name behind; the next creation (and pmap of an existing pool)
 * removes it once its creator is gone. "Gone" needs two signs, because
 * either alone can lie: kill(PID, 0) fails with ESRCH (a PID number means
 * nothing across PID namespaces or hosts sharing the directory), and the
 * file's flock, which a live creator holds from open to unlink, is free
 * (an old library's creator never took it). PID reuse can only make a
 * stale file wait until the new holder of that PID exits; it can never get
 * a live creator's file removed.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "pool/newfile.h"
#include "util/util.h"

#define TMP_INFIX ".creating."

int vp__newfile_named;
void (*vp__create_pause)(const char *point);

void vp__create_point(const char *point)
{
	if (vp__create_pause)
		vp__create_pause(point);
}

/* split -- path's directory into dir ("." when none) and a pointer to its
 * last component into *base; -ENAMETOOLONG or -EISDIR when unusable. */
static int split(const char *path, char dir[PATH_MAX], const char **base)
{
	const char *slash = strrchr(path, '/');
	if (!slash) {
		strcpy(dir, ".");
		*base = path;
	} else {
		size_t n = slash == path ? 1 : (size_t)(slash - path);
		if (n >= PATH_MAX)
			return -ENAMETOOLONG;
		memcpy(dir, path, n);
		dir[n] = 0;
		*base = slash + 1;
	}
	return **base ? 0 : -EISDIR;
}

/* sync_dir -- make a name just made in dir durable. A directory this
 * process may not read cannot be synced; its entry then reaches the medium
 * with the next journal commit, as any new file's does. */
static int sync_dir(const char *dir, const char *path)
{
	int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd < 0)
		return 0;
	int rc = fsync(dfd) == 0 || errno == EINVAL ? 0 : -errno;
	close(dfd);
	if (rc)
		return vp__err(rc, "cannot sync the directory of new pool %s: %s", path, strerror(-rc));
	return 0;
}

/* creator_gone -- could the process that named a temporary PID be dead? */
static bool creator_gone(long pid)
{
	if (pid == (long)getpid())
		return true; /* not creating it now: pmap makes one pool at a time */
	return kill((pid_t)pid, 0) != 0 && errno == ESRCH;
}

/* stale_pid -- PID if name is base + ".creating." + PID, else 0. */
static long stale_pid(const char *name, const char *base)
{
	size_t bl = strlen(base), il = sizeof TMP_INFIX - 1;
	if (strncmp(name, base, bl) != 0 || strncmp(name + bl, TMP_INFIX, il) != 0)
		return 0;
	const char *d = name + bl + il;
	long pid = 0;
	if (*d < '1' || *d > '9' || strlen(d) > 9)
		return 0; /* empty, a sign or a leading zero: not a name made here */
	for (; *d; d++) {
		if (*d < '0' || *d > '9')
			return 0;
		pid = pid * 10 + (*d - '0');
	}
	return pid;
}

int vp__newfile_sweep(const char *path)
{
	char dir[PATH_MAX];
	const char *base;
	int removed = 0;
	if (split(path, dir, &base))
		return 0;
	DIR *d = opendir(dir);
	if (!d)
		return 0;
	struct dirent *e;
	while ((e = readdir(d))) {
		long pid = stale_pid(e->d_name, base);
		if (pid <= 0 || !creator_gone(pid))
			continue;
		int fd = openat(dirfd(d), e->d_name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
		if (fd < 0)
			continue;
		struct stat a, b;
		/* The lock proves no creator holds it; the second stat that the
		 * name still is the locked file (another sweeper may have removed
		 * it and a new creator taken the name since we opened it). A file
		 * with a second name was published (a creator died between link
		 * and unlink): that is the pool, whose lock is pmap's, and this
		 * name can go without it. */
		if (fstat(fd, &a) == 0 && S_ISREG(a.st_mode) && (a.st_nlink > 1 || flock(fd, LOCK_EX | LOCK_NB) == 0) &&
		    fstatat(dirfd(d), e->d_name, &b, AT_SYMLINK_NOFOLLOW) == 0 && a.st_dev == b.st_dev &&
		    a.st_ino == b.st_ino && unlinkat(dirfd(d), e->d_name, 0) == 0) {
			vp__diag(1, "removed %s/%s, left by a creation that did not finish", dir, e->d_name);
			removed++;
		}
		close(fd);
	}
	closedir(d);
	return removed;
}

/* open_named -- the fallback: PATH.creating.PID, locked before anything
 * is written to it. */
static int open_named(struct vp_newfile *nf)
{
	const char *path = nf->path;
	if ((size_t)snprintf(nf->tmp, sizeof nf->tmp, "%s" TMP_INFIX "%d", path, (int)getpid()) >= sizeof nf->tmp)
		return vp__err(-ENAMETOOLONG, "pool path too long: %s", path);
	nf->fd = open(nf->tmp, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (nf->fd < 0)
		return vp__err(-errno, "cannot create pool %s: %s", nf->tmp, strerror(errno));
	nf->named = true;
	if (flock(nf->fd, LOCK_EX | LOCK_NB) != 0) {
		int rc = vp__err(-errno, "cannot lock new pool %s: %s", nf->tmp, strerror(errno));
		vp__newfile_drop(nf);
		return rc;
	}
	return 0;
}

int vp__newfile_open(struct vp_newfile *nf, const char *path)
{
	char dir[PATH_MAX];
	const char *base;
	nf->fd = -1;
	nf->named = false;
	nf->path = path;
	nf->tmp[0] = 0;
	int rc = split(path, dir, &base);
	if (rc)
		return vp__err(rc, "pool path %s %s", path, rc == -EISDIR ? "names a directory" : "is too long");
	vp__newfile_sweep(path);
	if (!vp__newfile_named) {
		nf->fd = open(dir, O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
		if (nf->fd < 0 && errno != EOPNOTSUPP && errno != EISDIR && errno != EINVAL)
			return vp__err(-errno, "cannot create pool %s in %s: %s", path, dir, strerror(errno));
	}
	if (nf->fd < 0) {
		vp__diag(2, "pool %s: no O_TMPFILE here, building it as %s" TMP_INFIX "%d", path, path, (int)getpid());
		if ((rc = open_named(nf)))
			return rc;
	}
	vp__create_point("opened");
	return 0;
}

/* link_unnamed -- linkat the O_TMPFILE inode to path. Through /proc it
 * needs no privilege; AT_EMPTY_PATH (needs CAP_DAC_READ_SEARCH) serves
 * where /proc is not mounted. */
static int link_unnamed(struct vp_newfile *nf)
{
	char proc[64];
	snprintf(proc, sizeof proc, "/proc/self/fd/%d", nf->fd);
	if (linkat(AT_FDCWD, proc, AT_FDCWD, nf->path, AT_SYMLINK_FOLLOW) == 0)
		return 0;
	int e = errno;
	if (e == ENOENT && access("/proc/self/fd", F_OK) != 0) {
		if (linkat(nf->fd, "", AT_FDCWD, nf->path, AT_EMPTY_PATH) == 0)
			return 0;
		e = errno;
	}
	return -e;
}

int vp__newfile_publish(struct vp_newfile *nf)
{
	char dir[PATH_MAX];
	const char *base;
	int rc = nf->named ? (link(nf->tmp, nf->path) == 0 ? 0 : -errno) : link_unnamed(nf);
	if (rc == 0)
		vp__create_point("linked");
	/* Unlink before close: the lock must cover the temporary's whole life. */
	vp__newfile_drop(nf);
	if (rc == -EEXIST)
		return rc;
	if (rc)
		return vp__err(rc, "cannot create pool %s: %s", nf->path, strerror(-rc));
	split(nf->path, dir, &base);
	return sync_dir(dir, nf->path);
}

void vp__newfile_drop(struct vp_newfile *nf)
{
	if (nf->named && nf->tmp[0])
		unlink(nf->tmp);
	nf->tmp[0] = 0;
	if (nf->fd >= 0)
		close(nf->fd);
	nf->fd = -1;
}
