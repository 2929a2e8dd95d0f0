/* SPDX-License-Identifier: MIT */
/*
 * daemon.c -- `-d` (run in the background) and `-P` (pid file), as
 * memcached has them, and telling a service manager when the server is
 * ready and when it is stopping.
 *
 * The fork happens before the pool is mapped, never after: a child forked
 * after pmap() gets a detached pool (the library closes its fd and shared
 * mapping in the child and pend()/pcommit() return VP_E_DETACHED; the
 * write tracker, a userfaultfd or a KVM VM, stays bound to the parent's
 * address space), while the parent, which would hold the pool's lock and
 * its only attached copy, is about to exit. So the child maps the pool
 * itself and is the only process that ever had it open.
 *
 * Unlike memcached, the starting process does not return at once: it waits
 * until the daemon has checked its pool and listens (or has failed, in
 * which case it exits with the daemon's status after the daemon printed why
 * on the still shared stderr). `vmcached -d && client` is then safe, and a
 * service manager's "forking" readiness is exact.
 *
 * Under systemd (Type=notify) the same moment is reported as READY=1 on
 * $NOTIFY_SOCKET, so units ordered after vmcached start only once its pool
 * has been checked, which takes a while for a big cache; STOPPING=1 says
 * the final commit is under way.
 */
#ifndef _GNU_SOURCE /* vmcached-cc is compiled with -D_GNU_SOURCE */
#define _GNU_SOURCE /* asprintf, pipe2 */
#endif
#include "vmcached.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <stddef.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

static int ready_fd = -1;
static const char *pid_path;

/* vmc_absolute -- path made absolute against the current directory (the
 * daemon runs in "/"; the result lives as long as the process); NULL and a
 * message on failure. */
const char *vmc_absolute(const char *path)
{
	if (path[0] == '/')
		return path;
	char cwd[PATH_MAX];
	char *abs = NULL;
	if (!getcwd(cwd, sizeof cwd) || asprintf(&abs, "%s/%s", cwd, path) < 0) {
		fprintf(stderr, "vmcached: cannot make %s absolute: %s\n", path,
			strerror(errno));
		return NULL;
	}
	return abs;
}

/* vmc_daemonize -- fork; the parent waits for vmc_daemon_ready() or the
 * child's exit and never returns. The child leaves the terminal's session
 * and works in "/". Returns 0 in the child, -1 (nothing forked) on error. */
int vmc_daemonize(void)
{
	int p[2];
	if (pipe2(p, O_CLOEXEC) != 0) {
		perror("vmcached: pipe");
		return -1;
	}
	fflush(NULL);
	pid_t pid = fork();
	if (pid < 0) {
		perror("vmcached: fork");
		close(p[0]);
		close(p[1]);
		return -1;
	}
	if (pid > 0) {
		close(p[1]);
		char c;
		ssize_t n;
		do
			n = read(p[0], &c, 1);
		while (n < 0 && errno == EINTR);
		if (n == 1)
			_exit(0);
		/* the child closed the pipe without saying ready: it failed */
		int st;
		if (waitpid(pid, &st, 0) == pid && WIFEXITED(st) && WEXITSTATUS(st))
			_exit(WEXITSTATUS(st));
		_exit(1);
	}
	close(p[0]);
	ready_fd = p[1];
	if (setsid() < 0 || chdir("/") != 0) {
		perror("vmcached: setsid/chdir");
		_exit(1);
	}
	return 0;
}

/* vmc_notify -- one datagram to the service manager's $NOTIFY_SOCKET
 * (systemd's notification protocol: a path, or "@" for an abstract name);
 * nothing when it is not set. */
void vmc_notify(const char *msg)
{
	const char *path = getenv("NOTIFY_SOCKET");
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	size_t n = path ? strlen(path) : 0;
	if (n < 2 || n >= sizeof sa.sun_path || (path[0] != '/' && path[0] != '@'))
		return;
	memcpy(sa.sun_path, path, n);
	if (sa.sun_path[0] == '@')
		sa.sun_path[0] = '\0';
	int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return;
	if (sendto(fd, msg, strlen(msg), MSG_NOSIGNAL, (struct sockaddr *)&sa,
		   (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n)) < 0 &&
	    vmc_settings.verbose)
		fprintf(stderr, "vmcached: NOTIFY_SOCKET %s: %s\n", path,
			strerror(errno));
	close(fd);
}

/* vmc_daemon_ready -- the server listens: write the pid file, let go of
 * stdin/stdout (and stderr unless -v, as memcached does) and release the
 * waiting parent. Returns -1 if the pid file cannot be written. */
int vmc_daemon_ready(const char *pidfile)
{
	if (pidfile) {
		FILE *f = fopen(pidfile, "we");
		if (!f || fprintf(f, "%ld\n", (long)getpid()) < 0 || fclose(f) != 0) {
			fprintf(stderr, "vmcached: cannot write pid file %s: %s\n",
				pidfile, strerror(errno));
			return -1;
		}
		pid_path = pidfile;
	}
	int null = open("/dev/null", O_RDWR);
	if (null >= 0) {
		dup2(null, STDIN_FILENO);
		dup2(null, STDOUT_FILENO);
		if (vmc_settings.verbose == 0)
			dup2(null, STDERR_FILENO);
		if (null > STDERR_FILENO)
			close(null);
	}
	if (ready_fd >= 0) {
		ssize_t n = write(ready_fd, "R", 1);
		(void)n;
		close(ready_fd);
		ready_fd = -1;
	}
	return 0;
}

/* vmc_daemon_exit -- a clean stop removes the pid file it wrote. */
void vmc_daemon_exit(void)
{
	if (pid_path)
		unlink(pid_path);
}
