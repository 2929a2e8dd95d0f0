/* SPDX-License-Identifier: MIT */
/*
 * vmcached.h -- what the server's parts share: settings, worker threads,
 * connections (all in volatile memory) and per-thread counters.
 *
 *   main.c   options, pool, listener, threads, signals
 *   daemon.c -d (background, before the pool is mapped), -P pid file,
 *            readiness for a service manager
 *   net.c    one epoll loop per worker thread, reading and writing sockets
 *   proto*.c the memcached protocol on a connection's buffers (proto.h)
 *   cache.c  the cache itself, in the persistent heap
 */
#ifndef VMCACHED_H
#define VMCACHED_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#define VMC_VERSION "1.6.18-vmcached-0.1"

struct vmc_settings {
	int port;
	const char *listen;
	int threads;
	uint64_t maxbytes;
	int maxconns;
	const char *pool;
	double commit_interval_ms; /* 0 = every request durable before reply */
	size_t item_max;
	int verbose;
	bool flush_disabled;  /* -F: flush_all answers an error       */
	bool dump_disabled;   /* -X: stats cachedump answers an error */
	int backlog;          /* -b: listen() backlog                  */
	int reqs_per_event;   /* -R: requests before a connection yields; 0 = no limit */
};
extern struct vmc_settings vmc_settings;
extern time_t vmc_started;

/* Counters owned by one worker: written by it alone with relaxed atomic
 * stores, read by `stats` from any thread. */
#define VMC_TSTATS(X) X(cmd_get) X(cmd_set) X(cmd_flush) X(cmd_touch) \
	X(cmd_meta) X(get_hits) X(get_misses) X(get_expired) X(get_flushed) \
	X(delete_misses) X(delete_hits) X(incr_misses) X(incr_hits) \
	X(decr_misses) X(decr_hits) X(cas_misses) X(cas_hits) X(cas_badval) \
	X(touch_hits) X(touch_misses) X(store_too_large) X(store_no_memory) \
	X(bytes_read) X(bytes_written) X(conn_yields) X(fas) X(commit_errors)
struct vmc_tstats {
#define X(n) uint64_t n;
	VMC_TSTATS(X)
#undef X
};
#define TSTAT_ADD(w, field, v) \
	__atomic_store_n(&(w)->st.field, (w)->st.field + (v), __ATOMIC_RELAXED)
#define TSTAT_INC(w, field) TSTAT_ADD(w, field, 1)
/* TSTAT_HIT -- count a keyed command's outcome: cmd_hits or cmd_misses. */
#define TSTAT_HIT(w, cmd, hit) \
	((hit) ? TSTAT_INC(w, cmd##_hits) : TSTAT_INC(w, cmd##_misses))

struct vmc_conn;
struct vmc_worker {
	pthread_t tid;
	int id;
	int epfd;
	bool group_open;          /* the batch's group FAS is open        */
	struct vmc_conn *touched; /* connections served in this batch     */
	struct vmc_conn *again;   /* connections with input left to parse */
	struct vmc_conn *all;     /* every open connection (to free at exit) */
	struct vmc_conn *held;    /* replies waiting for a commit (sync mode) */
	int efd;                  /* eventfd: the syncer finished a commit    */
	uint64_t want;            /* highest sync epoch it holds replies for  */
	uint64_t woken;           /* the syncer's: epoch of its last wake-up  */
	struct vmc_tstats st;
};
extern struct vmc_worker *vmc_workers;
extern uint64_t vmc_curr_conns, vmc_total_conns, vmc_rejected_conns;

struct vmc_conn {
	int fd;
	struct vmc_worker *w;
	char *rbuf;        /* unparsed input is rbuf[rpos, rlen)           */
	size_t rsize, rlen, rpos;
	size_t need;       /* bytes from rpos the current request needs    */
	char *wbuf;        /* pending output is wbuf[wpos, wlen)           */
	size_t wsize, wlen, wpos;
	uint64_t swallow;  /* input bytes still to discard                 */
	bool closing;      /* close once the output is written             */
	bool dead;         /* close at the end of the batch, unanswered    */
	bool mutated;      /* changed the cache in this batch              */
	bool more;         /* input left that the output backlog held back */
	bool in_touched, in_again;
	struct vmc_conn *next_touched, *next_again;
	struct vmc_conn *prev_all, *next_all;
	uint64_t hold_until;  /* replies wait until this sync epoch is done */
	bool in_held;
	struct vmc_conn *prev_held, *next_held;
	uint32_t events;   /* epoll interest currently registered          */
};

/* proto_process -- run every complete request in c's input. Returns 0
 * when it needs more input, 1 when it stopped with input left (much output
 * waits, or the connection made its -R requests),
 * -1 when the connection must be closed at once. */
int proto_process(struct vmc_conn *c);
/* out_append -- queue output; false if memory ran out. */
bool out_append(struct vmc_conn *c, const void *p, size_t n);

/* daemon.c */
const char *vmc_absolute(const char *path);
int vmc_daemonize(void);
int vmc_daemon_ready(const char *pidfile);
void vmc_daemon_exit(void);
void vmc_notify(const char *msg);

int net_run(int lfd);             /* start workers; returns when stopped */
extern volatile int vmc_stop;

#endif
