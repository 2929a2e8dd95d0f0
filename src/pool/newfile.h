/* SPDX-License-Identifier: MIT */
/*
 * newfile.h -- a file built where nobody can see it and given its name
 * only when complete (docs/FORMAT.md, "Creation"). Pool creation uses it;
 * so a crash at any instant leaves either no file or the finished one.
 */
#ifndef VP_NEWFILE_H
#define VP_NEWFILE_H

#include <limits.h>
#include <stdbool.h>

struct vp_newfile {
	int fd;               /* the file being built, O_RDWR, -1 when none    */
	bool named;           /* fallback: it lives at tmp until published     */
	const char *path;     /* the name it gets when published               */
	char tmp[PATH_MAX];   /* "PATH.creating.PID" (fallback only)           */
};

/* vp__newfile_open -- start a new file for path, mode 0600: an unnamed
 * O_TMPFILE in path's directory or, where the file system refuses that, a
 * named temporary PATH.creating.PID held under flock (the mark of a live
 * creator). Stale temporaries of dead creators are removed first.
 * Returns 0 or a code with the reason in vp_errormsg(). */
int vp__newfile_open(struct vp_newfile *nf, const char *path);

/* vp__newfile_publish -- give the complete file its name, then make the
 * name durable. pre: the contents are synced. Returns 0, -EEXIST if path
 * appeared meanwhile (no message: the caller opens the winner), or a code
 * with a message. The file is closed either way. */
int vp__newfile_publish(struct vp_newfile *nf);

/* vp__newfile_drop -- abandon an unpublished file: close it, remove the
 * named temporary. Safe to call after publish. */
void vp__newfile_drop(struct vp_newfile *nf);

/* vp__newfile_sweep -- remove every PATH.creating.PID next to path whose
 * creator is gone: no process PID exists here (kill(PID, 0) says ESRCH,
 * or PID is this process) and nobody holds the file's flock. Returns how
 * many were removed. Never fails: what cannot be examined is kept. */
int vp__newfile_sweep(const char *path);

/* Test hooks. vp__newfile_named forces the named-temporary fallback, as
 * on a file system without O_TMPFILE. vp__create_pause, when set, is
 * called at each named point of pool creation: "opened" (the file
 * exists), "reserve" and "reserved" (around the space reservation),
 * "durable" (contents synced, not yet named), "linked" (named, the
 * temporary not yet removed). */
extern int vp__newfile_named;
extern void (*vp__create_pause)(const char *point);

/* vp__create_point -- call the pause hook, if any, at point. */
void vp__create_point(const char *point);

#endif
