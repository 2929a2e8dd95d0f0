/* SPDX-License-Identifier: MIT */
/*
 * test_perm.c -- pool files are private and exclusive: created with mode
 * 0600 (whatever the umask), creation of an existing pool fails with
 * -EEXIST, and a pool this process may not write is refused with a clear
 * message naming the file, before anything is mapped. As root the last
 * check cannot fail (root writes anything), so the test drops to the
 * "nobody" user in a child; it exits 77 (skip) if it can do neither.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <volipmem.h>

#define CHECK(c, ...)                                                                  \
	do {                                                                           \
		if (!(c)) {                                                            \
			fprintf(stderr, "test_perm: FAILED: " __VA_ARGS__);            \
			fputc('\n', stderr);                                           \
			unlink(path);                                                  \
			exit(1);                                                       \
		}                                                                      \
	} while (0)

static char path[256];

/* refused -- pmap(path) must fail with -EACCES and say why. */
static int refused(void)
{
	int rc = pmap(path, 1 << 20, VP_OPEN_ONLY);
	if (rc == 0) {
		fprintf(stderr, "test_perm: pmap of a pool this process may not write succeeded\n");
		return 1;
	}
	if (rc != -EACCES || !strstr(vp_errormsg(), "not writable") || !strstr(vp_errormsg(), path)) {
		fprintf(stderr, "test_perm: pmap returned %d (%s), message \"%s\"\n", rc, vp_strerror(rc), vp_errormsg());
		return 1;
	}
	printf("test_perm: refused as expected: %s\n", vp_errormsg());
	fflush(stdout);
	return 0;
}

int main(void)
{
	snprintf(path, sizeof path, "/dev/shm/vpt-perm-%d.pool", (int)getpid());
	unlink(path);
	umask(0);                 /* the library, not the umask, must make it 0600 */
	int rc = pmap(path, 1 << 20, VP_CREATE_ONLY);
	CHECK(rc == 0, "pmap create: %s", vp_errormsg());
	CHECK(punmap() == 0, "punmap: %s", vp_errormsg());
	struct stat st;
	CHECK(stat(path, &st) == 0 && (st.st_mode & 07777) == 0600, "pool mode is %o, want 0600",
	      (unsigned)(st.st_mode & 07777));
	rc = pmap(path, 1 << 20, VP_CREATE_ONLY);
	CHECK(rc == -EEXIST, "creating over an existing pool returned %d, want -EEXIST", rc);

	if (geteuid() != 0) {
		CHECK(chmod(path, 0400) == 0, "chmod: %s", strerror(errno));
		rc = refused();
		unlink(path);
		return rc;
	}
	/* Root: drop to nobody in a child. */
	fflush(NULL);
	pid_t pid = fork();
	if (pid == 0) {
		if (setgid(65534) != 0 || setuid(65534) != 0) {
			fprintf(stderr, "test_perm: cannot drop privileges to nobody: %s\n", strerror(errno));
			_exit(77);
		}
		if (geteuid() == 0)
			_exit(77);
		_exit(refused());
	}
	int ws = 0;
	waitpid(pid, &ws, 0);
	unlink(path);
	if (WIFEXITED(ws) && WEXITSTATUS(ws) == 77) {
		printf("test_perm: SKIP: running as root and cannot switch to an unprivileged user\n");
		return 77;
	}
	CHECK(WIFEXITED(ws) && WEXITSTATUS(ws) == 0, "the unprivileged child failed (status %#x)", ws);
	printf("test_perm: OK: mode 0600, exclusive creation, unwritable pool refused clearly\n");
	return 0;
}
