/* SPDX-License-Identifier: MIT */
/*
 * test_create.c -- pool creation killed with SIGKILL leaves nothing to
 * clean (src/pool/newfile.c):
 *   - a child pmap()s a new pool of VP_CREATE_MB MiB (default 64) in a
 *     private directory and is killed after a random delay drawn, in
 *     thirds, before, during and after the space reservation as timed
 *     on an unkilled creation first (VP_CREATE_KILLS times, default
 *     24), and at each named point of creation (paused there by the test
 *     hook), and at random moments inside the space reservation;
 *   - after each kill the directory holds nothing or the finished, valid
 *     pool, and the next pmap() of the path succeeds with a valid pool;
 *   - the named-temporary fallback (forced by the test hook): a killed
 *     creator's PATH.creating.PID is removed by the next pmap() and by
 *     `volipmem create`, a live creator's is not, nor one whose flock is
 *     held, nor names that only look alike;
 *   - a creator that loses the race opens the winner, or with
 *     VP_CREATE_ONLY fails with -EEXIST.
 * Usage: vp_test_create VOLIPMEM_CLI. VP_CREATE_SEED fixes the delays.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <volipmem.h>

#include "runtime/inspect.h"
#include "pool/newfile.h"
#include "../num.h"

static char dir[128], path[192];
static size_t pool_size;
static int no_tmpfile; /* O_TMPFILE refused in dir: every creation is a fallback one */

static void cleanup(void)
{
	DIR *d = opendir(dir);
	if (!d)
		return;
	struct dirent *e;
	char p[512];
	while ((e = readdir(d)))
		if (e->d_name[0] != '.') {
			snprintf(p, sizeof p, "%s/%s", dir, e->d_name);
			unlink(p);
		}
	closedir(d);
	rmdir(dir);
}

#define VPT_TEST_NAME "test_create"
#include "check.h"

/* vpt_check_cleanup -- what a failed CHECK removes before exiting */
static void vpt_check_cleanup(void)
{
	/* the test removes its private directory itself */
}

static double now(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

static void sleep_s(double s)
{
	struct timespec t = {(time_t)s, (long)((s - (double)(time_t)s) * 1e9)};
	while (nanosleep(&t, &t) != 0 && errno == EINTR)
		;
}

/* ---- the creating child ---- */

/* Shared with the children: the last named point a creator passed and
 * when (seconds after its start), for the measurement and the tally. */
static const char *const points[] = {"start", "opened", "reserve", "reserved", "durable", "linked", "done"};
#define NPOINTS (int)(sizeof points / sizeof points[0])
struct shared { volatile int reached; double at[NPOINTS]; double t0; };
static struct shared *sh;
static const char *pause_at;
static unsigned creator_flags; /* pmap flags of the creating child */

static void hook(const char *point)
{
	for (int i = 0; i < NPOINTS; i++)
		if (strcmp(points[i], point) == 0) {
			sh->at[i] = now() - sh->t0;
			sh->reached = i;
		}
	if (pause_at && strcmp(point, pause_at) == 0)
		raise(SIGSTOP);
}

/* spawn_creator -- fork a child that pmap()s path (creating it), pausing
 * (SIGSTOP) at point stop if given; named forces the fallback. */
static pid_t spawn_creator(const char *stop, int named)
{
	fflush(NULL);
	memset(sh, 0, sizeof *sh);
	sh->t0 = now();
	pid_t pid = fork();
	CHECK(pid >= 0, "fork");
	if (pid == 0) {
		prctl(PR_SET_PDEATHSIG, SIGKILL); /* a paused one must not outlive a failed test */
		pause_at = stop;
		vp__newfile_named = named;
		vp__create_pause = hook;
		int rc = pmap(path, pool_size, creator_flags);
		if (rc == -EEXIST && (creator_flags & VP_CREATE_ONLY))
			_exit(6);
		if (rc) {
			fprintf(stderr, "creator: pmap(%s): %s\n", path, vp_errormsg());
			_exit(3);
		}
		hook("done");
		_exit(punmap() == 0 ? 0 : 4);
	}
	return pid;
}

static void kill_wait(pid_t pid)
{
	kill(pid, SIGKILL);
	int st;
	CHECK(waitpid(pid, &st, 0) == pid, "waitpid");
	CHECK((WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL) || (WIFEXITED(st) && WEXITSTATUS(st) == 0),
	      "creator ended with status %#x", st);
}

/* wait_stopped -- wait until the child pauses at its point (or fails). */
static void wait_stopped(pid_t pid, const char *point)
{
	int st;
	CHECK(waitpid(pid, &st, WUNTRACED) == pid, "waitpid");
	CHECK(WIFSTOPPED(st), "creator did not pause at \"%s\" (status %#x)", point, st);
}

/* ---- the checks ---- */

/* dir_is -- the directory holds exactly the names in want (NULL-ended,
 * each optional if its name starts with '?'). Returns a description. */
static int dir_is(const char *const *want, char *got, size_t gotlen)
{
	DIR *d = opendir(dir);
	CHECK(d, "opendir %s", dir);
	int ok = 1;
	size_t n = 0, seen = 0;
	got[0] = 0;
	struct dirent *e;
	while ((e = readdir(d))) {
		if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
			continue;
		n += (size_t)snprintf(got + n, n < gotlen ? gotlen - n : 0, "%s ", e->d_name);
		n = n < gotlen ? n : gotlen;
		int found = 0;
		for (int i = 0; want[i]; i++)
			if (!strcmp(e->d_name, want[i] + (want[i][0] == '?'))) {
				found = 1;
				seen |= 1u << i;
			}
		ok &= found;
	}
	closedir(d);
	for (int i = 0; want[i]; i++)
		if (want[i][0] != '?' && !(seen & (1u << i)))
			ok = 0;
	return ok;
}

/* pool_valid -- what `volipmem check` verifies, on a private mapping. */
static void pool_valid(const char *when)
{
	int fd = open(path, O_RDONLY);
	CHECK(fd >= 0, "%s: no pool: %s", when, strerror(errno));
	struct stat st;
	CHECK(fstat(fd, &st) == 0, "fstat");
	uint8_t *m = mmap(NULL, (size_t)st.st_size, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0);
	CHECK(m != MAP_FAILED, "mmap");
	struct vp_image im;
	struct vp_heap_report rep;
	char err[400];
	CHECK(vp__image_open(&im, m, (uint64_t)st.st_size) == 0, "%s: the pool does not open: %s", when, vp_errormsg());
	CHECK(vp__image_recover(&im) == 0, "%s: recovery: %s", when, vp_errormsg());
	CHECK(vp__image_check(&im, &rep, err, sizeof err) == 0, "%s: check: %s", when, err);
	munmap(m, (size_t)st.st_size);
	close(fd);
}

static void reopen_child(void)
{
	/* 1 MiB: opens the pool at its size, or makes a small one. */
	if (pmap(path, 1 << 20, 0) != 0) {
		fprintf(stderr, "next pmap(%s): %s\n", path, vp_errormsg());
		_exit(3);
	}
	bool created;
	uint64_t *r = proot("after-kill", sizeof *r, &created);
	if (!r)
		_exit(4);
	pstart();
	*r += 1;
	_exit(pend() == 0 && punmap() == 0 ? 0 : 5);
}

/* next_pmap -- pmap the path in a child, which must succeed. */
static void next_pmap(const char *what)
{
	fflush(NULL);
	pid_t pid = fork();
	CHECK(pid >= 0, "fork");
	if (pid == 0)
		reopen_child();
	int st;
	waitpid(pid, &st, 0);
	CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0, "%s: pmap failed (status %#x)", what, st);
}

/* after_kill -- the invariants after a kill: only the finished pool (or
 * nothing, or in the fallback the killed creator's temporary), then a
 * pmap() that succeeds, a valid pool, and nothing else. */
static void after_kill(const char *what, pid_t killed, int named)
{
	char got[1024], tmp[64];
	snprintf(tmp, sizeof tmp, "?pool.creating.%d", (int)killed);
	const char *allowed[] = {"?pool", named || no_tmpfile ? tmp : NULL, NULL};
	CHECK(dir_is(allowed, got, sizeof got), "%s: left [%s]", what, got);
	if (access(path, F_OK) == 0)
		pool_valid(what);
	next_pmap(what);
	const char *only[] = {"pool", NULL};
	CHECK(dir_is(only, got, sizeof got), "%s: after the next pmap: [%s]", what, got);
	pool_valid(what);
	CHECK(unlink(path) == 0, "unlink");
}

static int tally[NPOINTS];

/* kill_after -- a creator killed delay seconds after its start. */
static void kill_after(double delay, int named)
{
	pid_t pid = spawn_creator(NULL, named);
	sleep_s(delay - (now() - sh->t0));
	kill_wait(pid);
	tally[sh->reached]++;
	char what[96];
	snprintf(what, sizeof what, "%s kill at %.3f s (past \"%s\")", named ? "fallback" : "O_TMPFILE", delay,
		 points[sh->reached]);
	after_kill(what, pid, named);
}

/* kill_at -- a creator killed at a named point, or (during > 0) that long
 * after it resumed from it. */
static void kill_at(const char *point, double during, int named)
{
	pid_t pid = spawn_creator(point, named);
	wait_stopped(pid, point);
	if (during > 0) {
		kill(pid, SIGCONT);
		sleep_s(during);
	}
	kill_wait(pid);
	char what[96];
	snprintf(what, sizeof what, "%s kill at \"%s\" + %.3f s", named ? "fallback" : "O_TMPFILE", point, during);
	after_kill(what, pid, named);
}

/* measure -- one whole creation: the times of its named points. */
static void measure(double at[NPOINTS])
{
	pid_t pid = spawn_creator(NULL, 0);
	int st;
	waitpid(pid, &st, 0);
	CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0, "an unkilled creation failed (status %#x)", st);
	memcpy(at, sh->at, sizeof sh->at);
	pool_valid("unkilled creation");
	CHECK(unlink(path) == 0, "unlink");
}

void stale_files_test(const char *cli);

int main(int argc, char **argv)
{
	CHECK(argc == 2, "usage: vp_test_create VOLIPMEM_CLI");
	int kills = (int)vpt_env_uint("test_create", "VP_CREATE_KILLS", 24, 1, INT_MAX);
	pool_size = (size_t)vpt_env_uint("test_create", "VP_CREATE_MB", 64, 1, 1u << 20) << 20;
	unsigned seed = getenv("VP_CREATE_SEED") ? (unsigned)vpt_env_uint("test_create", "VP_CREATE_SEED", 0, 0, UINT_MAX)
						       : (unsigned)time(NULL) ^ (unsigned)getpid();
	srand(seed);
	snprintf(dir, sizeof dir, "%s/vpt-create-XXXXXX", getenv("VP_TEST_DIR") ? getenv("VP_TEST_DIR") : "/dev/shm");
	CHECK(mkdtemp(dir), "mkdtemp %s: %s", dir, strerror(errno));
	atexit(cleanup);
	snprintf(path, sizeof path, "%s/pool", dir);
	sh = mmap(NULL, sizeof *sh, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	CHECK(sh != MAP_FAILED, "mmap");

	int probe = open(dir, O_TMPFILE | O_RDWR, 0600);
	if (probe < 0) {
		no_tmpfile = 1;
		printf("test_create: O_TMPFILE is refused in %s (%s): only the fallback can be tested here\n", dir,
		       strerror(errno));
	} else {
		close(probe);
	}

	double at[NPOINTS];
	measure(at);
	double total = at[NPOINTS - 1];
	printf("test_create: %zu MiB pool in %s, seed %u; unkilled creation: opened %.4f s, reservation %.4f-%.4f s, "
	       "durable %.4f s, linked %.4f s, done %.4f s\n",
	       pool_size >> 20, dir, seed, at[1], at[2], at[3], at[4], at[5], total);

	/* Random moments before, during and after the reservation (as the
	 * unkilled creation timed them), the last a little past its end. */
	for (int k = 0; k < kills; k++) {
		double edge[4] = {0, at[2], at[3], total * 1.05}, lo = edge[k % 3], hi = edge[k % 3 + 1];
		kill_after(lo + (hi - lo) * rand() / RAND_MAX, 0);
	}
	printf("test_create: %d random kills; last point passed:", kills);
	for (int i = 0; i < NPOINTS; i++)
		printf(" %s %d", points[i], tally[i]);
	printf("\n");

	/* Each named point, and random moments inside the reservation. */
	for (int i = 1; i < NPOINTS - 1; i++)
		kill_at(points[i], 0, 0);
	double resv = at[3] - at[2];
	for (int k = 0; k < 4; k++)
		kill_at("reserve", resv * rand() / RAND_MAX, 0);
	printf("test_create: killed at each named point and 4 times inside the reservation: nothing left\n");

	/* The fallback: the killed creator's temporary goes at the next pmap. */
	memset(tally, 0, sizeof tally);
	for (int i = 1; i < NPOINTS - 1; i++)
		kill_at(points[i], 0, 1);
	kill_at("reserve", resv / 2, 1);
	for (int k = 0; k < 4; k++)
		kill_after(total * 1.05 * rand() / RAND_MAX, 1);
	printf("test_create: fallback: killed at each named point and 5 random moments: the next pmap removes "
	       "the temporary\n");

	stale_files_test(argv[1]);
	printf("test_create: OK\n");
	return 0;
}

/* ---- stale temporaries of the fallback ---- */

/* dead_pid -- a PID that no process has now. */
static pid_t dead_pid(void)
{
	for (;;) {
		pid_t p = fork();
		CHECK(p >= 0, "fork");
		if (p == 0)
			_exit(0);
		waitpid(p, NULL, 0);
		if (kill(p, 0) != 0 && errno == ESRCH)
			return p;
	}
}

/* put -- a 1 MiB file dir/NAME-PREFIX-PID, as a killed creator leaves. */
static char *put(char name[64], const char *prefix, long pid)
{
	char p[256];
	snprintf(name, 64, "%s%ld", prefix, pid);
	snprintf(p, sizeof p, "%s/%s", dir, name);
	int fd = open(p, O_RDWR | O_CREAT | O_TRUNC, 0600);
	CHECK(fd >= 0 && ftruncate(fd, 1 << 20) == 0, "create %s", p);
	close(fd);
	return name;
}

/* cli_create -- `volipmem create PATH 4M`, which must exit with want. */
static void cli_create(const char *cli, int want)
{
	fflush(NULL);
	pid_t pid = fork();
	CHECK(pid >= 0, "fork");
	if (pid == 0) {
		execl(cli, cli, "create", path, "4M", (char *)NULL);
		_exit(127);
	}
	int st;
	waitpid(pid, &st, 0);
	CHECK(WIFEXITED(st) && WEXITSTATUS(st) == want, "%s create %s: status %#x, want exit %d", cli, path, st, want);
}

void stale_files_test(const char *cli)
{
	char dead[64], live[64], locked[64], alike[4][64], got[1024], p[256];
	pid_t lp = fork();
	CHECK(lp >= 0, "fork");
	if (lp == 0) {
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		pause();
		_exit(0);
	}
	put(dead, "pool.creating.", dead_pid());     /* an old library's: no lock */
	put(live, "pool.creating.", lp);             /* its process is alive */
	put(locked, "pool.creating.", dead_pid());   /* locked: a creator whose PID */
	snprintf(p, sizeof p, "%s/%s", dir, locked); /* means nothing here         */
	int lfd = open(p, O_RDONLY);
	CHECK(lfd >= 0 && flock(lfd, LOCK_EX) == 0, "lock %s", p);
	put(alike[0], "pool.creating.1x", 0);
	put(alike[1], "poolx.creating.", dead_pid());
	put(alike[2], "pool.creating.0", dead_pid());
	snprintf(alike[3], 64, "pool.creating.");
	snprintf(p, sizeof p, "%s/%s", dir, alike[3]);
	CHECK(close(open(p, O_RDWR | O_CREAT, 0600)) == 0, "create %s", p);

	/* pmap creating the pool, pmap of the existing pool, volipmem create. */
	for (int round = 0; round < 3; round++) {
		const char *what = round == 0 ? "pmap creating the pool" : round == 1 ? "pmap of an existing pool"
										 : "volipmem create";
		if (round)
			put(dead, "pool.creating.", dead_pid());
		if (round == 2) {
			CHECK(unlink(path) == 0, "unlink");
			cli_create(cli, 0);
		} else {
			next_pmap(what);
		}
		const char *want[] = {"pool", live, locked, alike[0], alike[1], alike[2], alike[3], NULL};
		CHECK(dir_is(want, got, sizeof got), "%s: left [%s]", what, got);
		pool_valid(what);
		printf("test_create: %s removed %s, kept the live creator's, the locked one and 4 look-alikes\n", what,
		       dead);
	}

	/* Once their creators are gone, they go too. */
	kill(lp, SIGKILL);
	waitpid(lp, NULL, 0);
	close(lfd);
	next_pmap("after the live creator died");
	const char *want2[] = {"pool", alike[0], alike[1], alike[2], alike[3], NULL};
	CHECK(dir_is(want2, got, sizeof got), "after their creators died: left [%s]", got);

	/* A live fallback creator, paused mid-creation, while another
	 * process creates the pool: its temporary stays, and when it resumes
	 * it loses the race, removes its temporary and opens the winner. */
	CHECK(unlink(path) == 0, "unlink");
	pid_t a = spawn_creator("reserved", 1);
	wait_stopped(a, "reserved");
	char tmp[64];
	snprintf(tmp, sizeof tmp, "pool.creating.%d", (int)a);
	next_pmap("pmap while a creator is paused");
	const char *want3[] = {"pool", tmp, alike[0], alike[1], alike[2], alike[3], NULL};
	CHECK(dir_is(want3, got, sizeof got), "a live creator's temporary: [%s]", got);
	kill(a, SIGCONT);
	int st;
	CHECK(waitpid(a, &st, 0) == a && WIFEXITED(st) && WEXITSTATUS(st) == 0,
	      "the creator that lost the race did not open the winner (status %#x)", st);
	CHECK(dir_is(want2, got, sizeof got), "after the race: [%s]", got);
	pool_valid("after the race");
	printf("test_create: a live creator's temporary is kept; losing the race it removes it and opens the winner\n");

	/* Killed between link and unlink, a creator leaves a second name of
	 * the pool: it goes even while the pool is open (its flock held). */
	CHECK(unlink(path) == 0, "unlink");
	pid_t c = spawn_creator("linked", 1);
	wait_stopped(c, "linked");
	kill_wait(c);
	int pfd = open(path, O_RDONLY);
	CHECK(pfd >= 0 && flock(pfd, LOCK_EX | LOCK_NB) == 0, "lock the pool");
	cli_create(cli, 1); /* the path exists: refused, after the sweep */
	CHECK(dir_is(want2, got, sizeof got), "a second name of an open pool: [%s]", got);
	close(pfd);
	printf("test_create: a second name left between link and unlink is removed while the pool is open\n");

	/* VP_CREATE_ONLY that loses the race fails with -EEXIST. */
	CHECK(unlink(path) == 0, "unlink");
	creator_flags = VP_CREATE_ONLY;
	c = spawn_creator("durable", 0);
	creator_flags = 0;
	wait_stopped(c, "durable");
	next_pmap("pmap while a VP_CREATE_ONLY creator is paused");
	kill(c, SIGCONT);
	CHECK(waitpid(c, &st, 0) == c && WIFEXITED(st) && WEXITSTATUS(st) == 6,
	      "VP_CREATE_ONLY losing the race: status %#x, want -EEXIST (exit 6)", st);
	CHECK(dir_is(want2, got, sizeof got), "after the VP_CREATE_ONLY race: [%s]", got);
	printf("test_create: VP_CREATE_ONLY that loses the race fails with -EEXIST\n");
}
