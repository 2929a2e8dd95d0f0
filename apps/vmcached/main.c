/* SPDX-License-Identifier: MIT */
/*
 * main.c -- vmcached: a memcached-compatible server whose whole cache lives
 * in a VolipMem persistent heap, so its contents survive kill -9, power
 * loss (on a persistent medium) and restarts.
 *
 * Options follow memcached where they mean the same (-p -l -t -m -c -I -v
 * -d -P, -u accepted and ignored); --pool names the pool file and
 * --commit-interval chooses durability: 0 = each request is durable before
 * it is acknowledged, N > 0 = relaxed, a commit every N ms; --tracker
 * names the write tracker (VOLIPMEM_TRACKER).
 *
 * The same sources built with the cc instrumentation are vmcached-cc
 * (docs/vmcached.md): it uses the cc tracker unless told otherwise, and
 * this build, whose stores are not instrumented, refuses cc by name.
 *
 * SIGTERM, SIGINT and SIGHUP stop the server cleanly: the workers finish
 * their batch (within 200 ms, their longest wait), and punmap() commits
 * whatever was acknowledged but not yet committed (relaxed mode) before
 * the process exits 0. A service manager must give that final commit time
 * before it resorts to SIGKILL (vmcached.service).
 */
#include "vmcached.h"
#include "cache.h"

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <getopt.h>
#include <math.h>
#include <netdb.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <volipmem.h>

/* VMC_INSTRUMENTED -- 1 when clang compiled this file with the cc
 * instrumentation (vmcached-cc, or a build with
 * `pkg-config --cflags volipmem-cc`, which defines VOLIPMEM_CC_BUILD):
 * every store into the heap is recorded. */
#ifdef VOLIPMEM_CC_BUILD
#define VMC_INSTRUMENTED 1
#else
#define VMC_INSTRUMENTED 0
#endif
#define VMC_PROG (VMC_INSTRUMENTED ? "vmcached-cc" : "vmcached")

struct vmc_settings vmc_settings = {
	.port = 11211,
	.listen = "127.0.0.1",
	.threads = 0,
	.maxbytes = 64ull << 20,
	.maxconns = 1024,
	.pool = NULL,
	.commit_interval_ms = 0,
	.item_max = 1024 * 1024,
};
time_t vmc_started;

static void usage(FILE *f)
{
	fprintf(f,
"usage: %s [options]\n"
"  -p, --port=PORT           TCP port (11211)\n"
"  -l, --listen=ADDR         address to listen on (127.0.0.1)\n"
"  -t, --threads=N           worker threads (one per core)\n"
"  -m, --memory-limit=MB     item memory in MiB (64)\n"
"  -c, --conn-limit=N        max simultaneous connections (1024)\n"
"  -I, --max-item-size=SIZE  largest item, e.g. 1m, 512k (1m)\n"
"  -v                        verbose\n"
"  -d, --daemon              run in the background (returns once serving)\n"
"  -P, --pidfile=FILE        with -d, write the daemon's pid to FILE\n"
"  -F                        refuse flush_all (CLIENT_ERROR)\n"
"  -X                        refuse stats cachedump (CLIENT_ERROR)\n"
"  -b N                      listen backlog (1024)\n"
"  -R N                      requests a connection may make before the\n"
"                            others are served (no limit)\n"
"  -B ascii                  protocol: only ascii exists here\n"
"  -o OPT,...                memcached's extended options that tune its\n"
"                            slab and LRU threads, which vmcached has not:\n"
"                            accepted and ignored (others are refused)\n"
"      --pool=PATH           pool file (vmcached-PORT.pool)\n"
"      --commit-interval=MS  0 = every request durable before its reply\n"
"                            (default); MS > 0 = commit every MS ms\n"
"                            (fractions allowed, e.g. 0.1)\n"
"      --check               check the pool's cache and exit (0 = whole)\n"
"      --tracker=NAME        how write sets are found (VOLIPMEM_TRACKER):\n"
"                            uffd, mprotect, ...; default the library's\n"
"                            choice; cc only in vmcached-cc, its default\n"
"  -h, --help                this text\n"
"  -V, --version             print the version\n", VMC_PROG);
}

/* choose_tracker -- --tracker (or VOLIPMEM_TRACKER) against this build.
 * The cc tracker sees only instrumented stores. In the plain build none
 * of vmcached's is, and pmap() would refuse cc with the library's generic
 * message; name the build that has them instead. vmcached-cc defaults to
 * cc, the reason it exists; another tracker may still be named. */
static int choose_tracker(const char *opt)
{
	if (opt && setenv("VOLIPMEM_TRACKER", opt, 1) != 0) {
		fprintf(stderr, "%s: --tracker %s: %s\n", VMC_PROG, opt, strerror(errno));
		return -1;
	}
	const char *t = getenv("VOLIPMEM_TRACKER");
	if (VMC_INSTRUMENTED && (!t || !*t))
		return setenv("VOLIPMEM_TRACKER", "cc", 1) == 0 ? 0 : -1;
	if (!VMC_INSTRUMENTED && t && strcmp(t, "cc") == 0) {
		fprintf(stderr, "vmcached: the cc tracker (%s) needs vmcached-cc, the build "
			"of vmcached with the cc instrumentation: this binary's stores into the "
			"heap are not instrumented, so cc would miss them. Run vmcached-cc, "
			"or choose another tracker (uffd, mprotect)\n",
			opt ? "--tracker cc" : "VOLIPMEM_TRACKER=cc");
		return -1;
	}
	return 0;
}

static void on_signal(int sig)
{
	(void)sig;
	vmc_stop = 1;
}

/* compat_o -- memcached's -o list. The options named here tune memcached's
 * slab allocator and LRU maintenance threads; vmcached has neither (one
 * pmalloc heap, a CLOCK list), so they are accepted and change nothing.
 * Any other option is refused, so no setting is silently lost. */
static int compat_o(const char *list)
{
	static const char *const ignored[] = {
		"slab_chunk_max", "slab_reassign", "slab_automove", "modern",
		"no_modern", "lru_crawler", "no_lru_crawler", "lru_maintainer",
		"no_lru_maintainer", "hash_algorithm", NULL,
	};
	const char *p = list;
	while (*p) {
		size_t n = strcspn(p, ",");
		size_t name = strcspn(p, "=,");
		bool known = false;
		for (int i = 0; ignored[i] && !known; i++)
			known = strlen(ignored[i]) == name &&
				strncmp(p, ignored[i], name) == 0;
		if (!known) {
			fprintf(stderr, "vmcached: -o %.*s: not supported\n",
				(int)n, p);
			return -1;
		}
		p += n;
		if (*p == ',')
			p++;
	}
	return 0;
}

/* parse_num -- decimal digits only (no sign or blank), no overflow; with
 * `suffixes`, a k/K or m/M after them multiplies by 1024 or 1048576
 * ("1048576", "1m", "512k"). */
static int parse_num(const char *s, bool suffixes, size_t *out)
{
	char *e;
	errno = 0;
	if (!isdigit((unsigned char)s[0]))
		return -1;
	unsigned long long v = strtoull(s, &e, 10);
	if (errno)
		return -1;
	int shift = 0;
	if (suffixes && (*e == 'k' || *e == 'K'))
		shift = 10, e++;
	else if (suffixes && (*e == 'm' || *e == 'M'))
		shift = 20, e++;
	if (*e || v > (SIZE_MAX >> shift))
		return -1;
	*out = (size_t)v << shift;
	return 0;
}

/* opt_int -- option -opt's value `s` as a whole number in [min, max] into
 * *out; else "vmcached: bad -opt S (...)" and -1 (exit status 2). */
static int opt_int(char opt, const char *s, long min, long max, int *out)
{
	size_t v;
	if (parse_num(s, false, &v) != 0 || v < (size_t)min || v > (size_t)max) {
		fprintf(stderr, "vmcached: bad -%c %s (a whole number from %ld to %ld)\n", opt, s, min, max);
		return -1;
	}
	*out = (int)v;
	return 0;
}

static int open_listener(void)
{
	char port[16];
	snprintf(port, sizeof port, "%d", vmc_settings.port);
	struct addrinfo hints = { .ai_family = AF_UNSPEC,
				  .ai_socktype = SOCK_STREAM,
				  .ai_flags = AI_PASSIVE }, *res;
	int rc = getaddrinfo(vmc_settings.listen, port, &hints, &res);
	if (rc != 0) {
		fprintf(stderr, "vmcached: %s: %s\n", vmc_settings.listen,
			gai_strerror(rc));
		return -1;
	}
	int fd = socket(res->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	int one = 1;
	if (fd < 0 ||
	    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) != 0 ||
	    bind(fd, res->ai_addr, res->ai_addrlen) != 0 || listen(fd, vmc_settings.backlog) != 0) {
		fprintf(stderr, "vmcached: cannot listen on %s:%d: %s\n",
			vmc_settings.listen, vmc_settings.port, strerror(errno));
		if (fd >= 0)
			close(fd);
		fd = -1;
	}
	freeaddrinfo(res);
	return fd;
}

/* ticker -- commit intervals below 1 ms or not whole ms: the library takes
 * whole milliseconds, so a thread of ours calls pcommit() on time. */
static void *ticker(void *arg)
{
	double ms = *(double *)arg;
	struct timespec ts = { .tv_sec = (time_t)(ms / 1000),
			       .tv_nsec = (long)(fmod(ms, 1000.0) * 1e6) };
	while (!vmc_stop) {
		nanosleep(&ts, NULL);
		pcommit();
	}
	return NULL;
}

int main(int argc, char **argv)
{
	enum { OPT_POOL = 1000, OPT_INTERVAL, OPT_CHECK, OPT_TRACKER };
	static const struct option opts[] = {
		{ "port", required_argument, NULL, 'p' },
		{ "listen", required_argument, NULL, 'l' },
		{ "threads", required_argument, NULL, 't' },
		{ "memory-limit", required_argument, NULL, 'm' },
		{ "conn-limit", required_argument, NULL, 'c' },
		{ "max-item-size", required_argument, NULL, 'I' },
		{ "user", required_argument, NULL, 'u' },
		{ "daemon", no_argument, NULL, 'd' },
		{ "pidfile", required_argument, NULL, 'P' },
		{ "pool", required_argument, NULL, OPT_POOL },
		{ "commit-interval", required_argument, NULL, OPT_INTERVAL },
		{ "check", no_argument, NULL, OPT_CHECK },
		{ "tracker", required_argument, NULL, OPT_TRACKER },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ NULL, 0, NULL, 0 },
	};
	bool check_only = false, background = false;
	const char *pidfile = NULL, *tracker = NULL;
	int backlog = 1024;
	bool item_max_given = false;
	int o;
	char *e;
	size_t mb;
	while ((o = getopt_long(argc, argv, "p:l:t:m:c:I:u:dP:vhVFXb:B:o:R:", opts, NULL)) != -1) {
		switch (o) {
		case 'p':
			if (opt_int('p', optarg, 0, 65535, &vmc_settings.port) != 0)
				return 2;
			break;
		case 'l': vmc_settings.listen = optarg; break;
		case 't':
			/* unset means one per core; 0 given is an error, as
			 * in memcached */
			if (opt_int('t', optarg, 1, 1024, &vmc_settings.threads) != 0)
				return 2;
			break;
		case 'm':
			if (parse_num(optarg, false, &mb) != 0 || mb == 0 || mb > (SIZE_MAX >> 20)) {
				fprintf(stderr, "vmcached: bad -m %s\n", optarg);
				return 2;
			}
			vmc_settings.maxbytes = (uint64_t)mb << 20;
			break;
		case 'c':
			if (opt_int('c', optarg, 1, INT_MAX, &vmc_settings.maxconns) != 0)
				return 2;
			break;
		case 'I':
			if (parse_num(optarg, true, &vmc_settings.item_max) != 0 ||
			    vmc_settings.item_max < 1024 ||
			    vmc_settings.item_max > (1u << 30)) {
				fprintf(stderr, "vmcached: bad -I %s\n", optarg);
				return 2;
			}
			item_max_given = true;
			break;
		case 'u': break; /* memcached compatibility; we do not switch user */
		case 'v': vmc_settings.verbose++; break;
		case 'd': background = true; break;
		case 'P': pidfile = optarg; break; /* like memcached: only with -d */
		case 'F': vmc_settings.flush_disabled = true; break;
		case 'X': vmc_settings.dump_disabled = true; break;
		case 'b':
			if (opt_int('b', optarg, 1, INT_MAX, &backlog) != 0)
				return 2;
			break;
		case 'R':
			if (opt_int('R', optarg, 1, INT_MAX, &vmc_settings.reqs_per_event) != 0)
				return 2;
			break;
		case 'B':
			if (strcmp(optarg, "ascii") != 0) {
				fprintf(stderr, "vmcached: -B %s: only the ascii "
					"protocol is supported\n", optarg);
				return 2;
			}
			break;
		case 'o':
			if (compat_o(optarg) != 0)
				return 2;
			break;
		case OPT_POOL: vmc_settings.pool = optarg; break;
		case OPT_INTERVAL:
			errno = 0;
			vmc_settings.commit_interval_ms = strtod(optarg, &e);
			if (e == optarg || *e || errno || !(vmc_settings.commit_interval_ms >= 0)) {
				fprintf(stderr, "vmcached: bad --commit-interval %s\n",
					optarg);
				return 2;
			}
			break;
		case OPT_CHECK: check_only = true; break;
		case OPT_TRACKER: tracker = optarg; break;
		case 'h': usage(stdout); return 0;
		case 'V': printf("%s %s\n", VMC_PROG, VMC_VERSION); return 0;
		default: usage(stderr); return 2;
		}
	}
	if (optind < argc) {
		usage(stderr);
		return 2;
	}
	if (vmc_settings.threads <= 0) {
		long n = sysconf(_SC_NPROCESSORS_ONLN);
		vmc_settings.threads = n > 0 ? (int)n : 1;
	}
	if (vmc_settings.maxconns <= 0 || vmc_settings.port <= 0 ||
	    vmc_settings.port > 65535 || vmc_settings.threads > 256) {
		fprintf(stderr, "vmcached: bad -c, -p or -t\n");
		return 2;
	}
	static char defpool[64];
	if (!vmc_settings.pool) {
		snprintf(defpool, sizeof defpool, "vmcached-%d.pool", vmc_settings.port);
		vmc_settings.pool = defpool;
	}
	if (item_max_given && vmc_settings.item_max > vmc_settings.maxbytes / 2) {
		/* memcached's rule: an item may take at most half of -m
		 * (applied to an explicit -I only: a small -m with the
		 * default -I has always been accepted here) */
		fprintf(stderr, "vmcached: -I %zu is more than half of -m\n",
			vmc_settings.item_max);
		return 2;
	}
	vmc_settings.backlog = backlog;
	/* before -d: a refusal must reach the terminal */
	if (choose_tracker(tracker) != 0)
		return 2;
	if (background && !check_only) {
		/* Before pmap(), never after: see daemon.c. Paths are made
		 * absolute first, the daemon works in "/". */
		const char *pf = pidfile ? vmc_absolute(pidfile) : NULL;
		vmc_settings.pool = vmc_absolute(vmc_settings.pool);
		if (!vmc_settings.pool || (pidfile && !pf) || vmc_daemonize() != 0)
			return 1;
		pidfile = pf;
	}
	vmc_item_max = vmc_settings.item_max;
	vmc_limit = vmc_settings.maxbytes;
	vmc_started = time(NULL);

	double ms = vmc_settings.commit_interval_ms;
	bool whole = ms >= 1 && ms == floor(ms) && ms < 1e6;
	/* Synchronous mode runs the library relaxed: net.c acknowledges a
	 * change only after a psync() that covers it has returned 0. */
	int rc = ms == 0 ? vp_set_durability(VP_RELAXED, 1000)
			 : vp_set_durability(VP_RELAXED, whole ? (unsigned)ms
						       : (unsigned)ceil(ms));
	if (rc != 0) {
		fprintf(stderr, "vmcached: vp_set_durability: %s\n", vp_strerror(rc));
		return 1;
	}
	if (vmc_open(vmc_settings.pool, vmc_limit, check_only,
		     vmc_settings.verbose == 0 && false) != 0)
		return 1;
	if (check_only)
		return punmap() == 0 ? 0 : 1;

	struct rlimit rl;
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0) {
		rlim_t want = (rlim_t)vmc_settings.maxconns + 64;
		if (rl.rlim_cur < want) {
			rl.rlim_cur = want < rl.rlim_max ? want : rl.rlim_max;
			setrlimit(RLIMIT_NOFILE, &rl);
		}
	}
	struct sigaction sa = { .sa_handler = on_signal };
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL); /* its default would skip the commit */
	signal(SIGPIPE, SIG_IGN);

	int lfd = open_listener();
	if (lfd < 0) {
		punmap();
		return 1;
	}
	pthread_t tick;
	bool ticking = ms > 0 && !whole;
	if (ticking && pthread_create(&tick, NULL, ticker, &ms) != 0)
		ticking = false;
	fprintf(stderr, "%s: listening on %s:%d, %d threads, -m %llu MiB, "
		"%s%g ms, tracker %s\n", VMC_PROG, vmc_settings.listen, vmc_settings.port,
		vmc_settings.threads,
		(unsigned long long)(vmc_settings.maxbytes >> 20),
		ms == 0 ? "synchronous commits, " : "relaxed commits every ", ms,
		vp_tracker_name());
	if (background && vmc_daemon_ready(pidfile) != 0) {
		vmc_stop = 1;
		rc = -1;
	} else {
		vmc_notify("READY=1");
		rc = net_run(lfd);
	}
	vmc_notify("STOPPING=1");
	vmc_stop = 1;
	if (ticking)
		pthread_join(tick, NULL);
	close(lfd);
	int urc = punmap();
	if (urc != 0)
		fprintf(stderr, "vmcached: final commit failed: %s\n", vp_strerror(urc));
	if (background)
		vmc_daemon_exit();
	return rc == 0 && urc == 0 ? 0 : 1;
}
