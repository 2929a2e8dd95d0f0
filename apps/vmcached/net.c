/* SPDX-License-Identifier: MIT */
/*
 * net.c -- worker threads, each with its own epoll loop.
 *
 * Every worker waits on the shared listening socket (EPOLLEXCLUSIVE, so one
 * worker wakes per new connection) and on the connections it accepted.
 * Connection buffers live in volatile memory: bytes arrive with read() into
 * them, and the protocol layer copies a value into the persistent heap only
 * once its whole request is here. A connection with output waiting is
 * watched for EPOLLOUT only, so a client that does not read its replies
 * cannot make us buffer without bound.
 *
 * Synchronous mode (--commit-interval 0) without blocking the workers: the
 * library runs in relaxed mode, so ending a batch's group FAS returns at
 * once; the replies of every connection that changed the cache are held
 * back until a syncer thread's psync() that started after that FAS ended
 * has returned 0. The syncer runs psync() back to back while replies wait,
 * so one commit acknowledges the batches of all workers, and the workers go
 * on serving (reads, and further batches) meanwhile. No reply to a change
 * leaves before the change is durable.
 */
#ifndef _GNU_SOURCE /* vmcached-cc is compiled with -D_GNU_SOURCE */
#define _GNU_SOURCE /* accept4 */
#endif
#include "vmcached.h"

#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <volipmem.h>

#define RBUF_INIT 16384
#define READ_CHUNK 65536

struct vmc_worker *vmc_workers;
uint64_t vmc_curr_conns, vmc_total_conns, vmc_rejected_conns;
volatile int vmc_stop;
static int listen_fd = -1;

/* ---- acknowledgement after durability (synchronous mode) ---- */
static bool ack_after_sync;
static uint64_t sync_started;  /* epochs: psync() calls begun        */
static uint64_t sync_done;     /* last epoch whose psync() returned 0 */
static uint64_t sync_failed;   /* last epoch whose psync() failed     */
static uint64_t sync_wanted;   /* highest epoch a worker waits for    */
static uint64_t sync_handled;  /* last epoch finished (ok or not)     */
/* VMCACHED_TEST_SYNC_DELAY_US: the syncer sleeps this long before each
 * psync(), so that test_crash's kill -9 lands, almost every time, between
 * the end of a batch's FAS and its durability: with the hold broken, acked
 * stores are then lost and the test fails. Tests only. */
static unsigned sync_delay_us;
static bool syncer_sleeping;   /* the syncer waits (or is about to) on
				  sync_cv                              */
static pthread_mutex_t sync_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t sync_cv = PTHREAD_COND_INITIALIZER;

static void held_del(struct vmc_worker *w, struct vmc_conn *c)
{
	if (!c->in_held)
		return;
	if (c->prev_held)
		c->prev_held->next_held = c->next_held;
	else
		w->held = c->next_held;
	if (c->next_held)
		c->next_held->prev_held = c->prev_held;
	c->prev_held = c->next_held = NULL;
	c->in_held = false;
}

static void held_add(struct vmc_worker *w, struct vmc_conn *c)
{
	if (c->in_held)
		return;
	c->in_held = true;
	c->prev_held = NULL;
	c->next_held = w->held;
	if (w->held)
		w->held->prev_held = c;
	w->held = c;
}

/* syncer_main -- psync() whenever a worker waits for one; each call is an
 * epoch, numbered before it starts. */
static void *syncer_main(void *arg)
{
	(void)arg;
	pthread_mutex_lock(&sync_mu);
	while (!vmc_stop) {
		if (__atomic_load_n(&sync_wanted, __ATOMIC_SEQ_CST) <= sync_handled) {
			/* Announce the sleep, then look again: a worker that
			 * raised sync_wanted before this store is seen by the
			 * second look, one that raises it after sees the flag
			 * and signals under sync_mu, which this thread holds
			 * until the wait releases it (seq_cst: a Dekker pair). */
			__atomic_store_n(&syncer_sleeping, true, __ATOMIC_SEQ_CST);
			if (__atomic_load_n(&sync_wanted, __ATOMIC_SEQ_CST) > sync_handled) {
				__atomic_store_n(&syncer_sleeping, false, __ATOMIC_SEQ_CST);
				continue;
			}
			struct timespec ts;
			clock_gettime(CLOCK_REALTIME, &ts);
			ts.tv_nsec += 200 * 1000 * 1000;
			if (ts.tv_nsec >= 1000000000) {
				ts.tv_sec++;
				ts.tv_nsec -= 1000000000;
			}
			pthread_cond_timedwait(&sync_cv, &sync_mu, &ts);
			__atomic_store_n(&syncer_sleeping, false, __ATOMIC_SEQ_CST);
			continue;
		}
		pthread_mutex_unlock(&sync_mu);
		uint64_t e = __atomic_add_fetch(&sync_started, 1, __ATOMIC_SEQ_CST);
		if (sync_delay_us)
			usleep(sync_delay_us);
		int rc = psync();
		if (rc == 0) {
			__atomic_store_n(&sync_done, e, __ATOMIC_SEQ_CST);
		} else {
			__atomic_store_n(&sync_failed, e, __ATOMIC_SEQ_CST);
			fprintf(stderr, "vmcached: commit failed: %s\n", vp_strerror(rc));
		}
		/* Wake only the workers that announced a hold since their last
		 * wake-up. A worker stores want before it checks sync_done
		 * (seq_cst, both sides): if it found its epoch not yet done,
		 * this load, after the store of sync_done, sees its want. A
		 * want of epoch e + 1 wakes it once early; it finds nothing to
		 * release and is woken again after e + 1. */
		for (int i = 0; i < vmc_settings.threads; i++) {
			struct vmc_worker *w = &vmc_workers[i];
			if (__atomic_load_n(&w->want, __ATOMIC_SEQ_CST) <= w->woken)
				continue;
			w->woken = e;
			uint64_t one = 1;
			ssize_t wr = write(w->efd, &one, sizeof one);
			(void)wr;
		}
		pthread_mutex_lock(&sync_mu);
		sync_handled = e;
	}
	pthread_mutex_unlock(&sync_mu);
	return NULL;
}

/* hold_for_sync -- the batch's changes are in a FAS that has ended: their
 * connections' replies wait for the next psync() that starts from now. */
static void hold_for_sync(struct vmc_worker *w)
{
	uint64_t need = __atomic_load_n(&sync_started, __ATOMIC_SEQ_CST) + 1;
	for (struct vmc_conn *c = w->touched; c; c = c->next_touched)
		if (c->mutated)
			c->hold_until = need;
	/* want only grows: need is sync_started + 1, and sync_started does */
	if (__atomic_load_n(&w->want, __ATOMIC_RELAXED) < need)
		__atomic_store_n(&w->want, need, __ATOMIC_SEQ_CST);
	/* Raise sync_wanted without sync_mu (the syncer reads it while it
	 * commits); take the lock only to wake a syncer that sleeps. */
	uint64_t cur = __atomic_load_n(&sync_wanted, __ATOMIC_SEQ_CST);
	while (cur < need && !__atomic_compare_exchange_n(&sync_wanted, &cur, need, false, __ATOMIC_SEQ_CST,
							   __ATOMIC_SEQ_CST))
		;
	if (__atomic_load_n(&syncer_sleeping, __ATOMIC_SEQ_CST)) {
		pthread_mutex_lock(&sync_mu);
		pthread_cond_signal(&sync_cv);
		pthread_mutex_unlock(&sync_mu);
	}
}

static void conn_close(struct vmc_conn *c)
{
	held_del(c->w, c);
	if (c->prev_all)
		c->prev_all->next_all = c->next_all;
	else
		c->w->all = c->next_all;
	if (c->next_all)
		c->next_all->prev_all = c->prev_all;
	epoll_ctl(c->w->epfd, EPOLL_CTL_DEL, c->fd, NULL);
	close(c->fd);
	free(c->rbuf);
	free(c->wbuf);
	free(c);
	__atomic_sub_fetch(&vmc_curr_conns, 1, __ATOMIC_RELAXED);
}

static void conn_accept(struct vmc_worker *w)
{
	for (int i = 0; i < 64; i++) {
		int fd = accept4(listen_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd < 0)
			return; /* EAGAIN: another worker took it; EMFILE: retry later */
		uint64_t n = __atomic_add_fetch(&vmc_curr_conns, 1, __ATOMIC_RELAXED);
		if (n > (uint64_t)vmc_settings.maxconns) {
			static const char msg[] = "ERROR Too many open connections\r\n";
			ssize_t r = write(fd, msg, sizeof msg - 1);
			(void)r;
			close(fd);
			__atomic_sub_fetch(&vmc_curr_conns, 1, __ATOMIC_RELAXED);
			__atomic_add_fetch(&vmc_rejected_conns, 1, __ATOMIC_RELAXED);
			continue;
		}
		__atomic_add_fetch(&vmc_total_conns, 1, __ATOMIC_RELAXED);
		int one = 1;
		setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
		struct vmc_conn *c = calloc(1, sizeof *c);
		if (c)
			c->rbuf = malloc(RBUF_INIT);
		if (!c || !c->rbuf) {
			free(c);
			close(fd);
			__atomic_sub_fetch(&vmc_curr_conns, 1, __ATOMIC_RELAXED);
			continue;
		}
		c->fd = fd;
		c->w = w;
		c->rsize = RBUF_INIT;
		c->events = EPOLLIN;
		struct epoll_event ev = { .events = EPOLLIN, .data.ptr = c };
		if (epoll_ctl(w->epfd, EPOLL_CTL_ADD, fd, &ev) != 0) {
			free(c->rbuf);
			free(c);
			close(fd);
			__atomic_sub_fetch(&vmc_curr_conns, 1, __ATOMIC_RELAXED);
			continue;
		}
		c->next_all = w->all;
		if (w->all)
			w->all->prev_all = c;
		w->all = c;
	}
}

/* conn_flush -- write pending output; -1 on a dead socket. */
static int conn_flush(struct vmc_conn *c)
{
	while (c->wpos < c->wlen) {
		ssize_t n = send(c->fd, c->wbuf + c->wpos, c->wlen - c->wpos,
				 MSG_NOSIGNAL);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN || errno == EWOULDBLOCK)
				return 0;
			return -1;
		}
		c->wpos += (size_t)n;
		TSTAT_ADD(c->w, bytes_written, (uint64_t)n);
	}
	c->wpos = c->wlen = 0;
	if (c->wsize > (1u << 20)) { /* give back a big multi-get's buffer */
		free(c->wbuf);
		c->wbuf = NULL;
		c->wsize = 0;
	}
	return 0;
}

/* conn_read -- one read into the input buffer, growing it when the request
 * being parsed needs more room. 1 = got bytes, 0 = nothing, -1 = closed. */
static int conn_read(struct vmc_conn *c)
{
	if (c->rpos > 0) {
		memmove(c->rbuf, c->rbuf + c->rpos, c->rlen - c->rpos);
		c->rlen -= c->rpos;
		c->rpos = 0;
	}
	if (c->rlen == 0 && c->rsize > (1u << 20)) { /* after a big value */
		char *nb = realloc(c->rbuf, RBUF_INIT);
		if (nb) {
			c->rbuf = nb;
			c->rsize = RBUF_INIT;
		}
	}
	size_t want = c->rlen + READ_CHUNK;
	if (c->need > want)
		want = c->need;
	if (c->swallow) /* discarding: no need to grow */
		want = c->rlen + 1;
	if (want > c->rsize && c->rlen + 4096 > c->rsize) {
		size_t sz = c->rsize;
		while (sz < want)
			sz *= 2;
		char *nb = realloc(c->rbuf, sz);
		if (!nb)
			return -1;
		c->rbuf = nb;
		c->rsize = sz;
	}
	if (c->rlen == c->rsize)
		return 0;
	ssize_t n = read(c->fd, c->rbuf + c->rlen, c->rsize - c->rlen);
	if (n == 0)
		return -1;
	if (n < 0)
		return (errno == EAGAIN || errno == EINTR) ? 0 : -1;
	c->rlen += (size_t)n;
	TSTAT_ADD(c->w, bytes_read, (uint64_t)n);
	return 1;
}

static void set_interest(struct vmc_conn *c, uint32_t ev)
{
	if (c->events == ev)
		return;
	struct epoll_event e = { .events = ev, .data.ptr = c };
	epoll_ctl(c->w->epfd, EPOLL_CTL_MOD, c->fd, &e);
	c->events = ev;
}

/* conn_read_in -- phase 1a of a batch: read what is there. The reads of a
 * batch come before its requests run, so that the group FAS (opened by the
 * first request that changes the cache) spans no system call and a commit
 * waiting for the workers to be quiescent waits only for request work. */
static void conn_read_in(struct vmc_worker *w, struct vmc_conn *c, uint32_t events)
{
	if (!c->in_touched) {
		c->in_touched = true;
		c->next_touched = w->touched;
		w->touched = c;
	}
	if (c->dead)
		return;
	if ((events & (EPOLLERR | EPOLLHUP)) && !(events & EPOLLIN)) {
		c->dead = true;
		return;
	}
	if ((events & EPOLLIN) && conn_read(c) < 0)
		c->dead = true;
}

/* conn_run -- phase 1b: run every complete request; replies stay queued
 * until the group FAS has ended. */
static void conn_run(struct vmc_conn *c)
{
	if (c->dead)
		return;
	int r = proto_process(c);
	if (r < 0)
		c->dead = true;
	c->more = r == 1;
}

/* conn_finish -- phase 2, after the group FAS ended: send the replies,
 * close what must be closed, choose what to wait for next. */
static void conn_finish(struct vmc_worker *w, struct vmc_conn *c)
{
	c->in_touched = false;
	c->mutated = false;
	if (c->dead) {
		conn_close(c);
		return;
	}
	if (c->hold_until > __atomic_load_n(&sync_done, __ATOMIC_SEQ_CST)) {
		if (c->hold_until <= __atomic_load_n(&sync_failed, __ATOMIC_SEQ_CST)) {
			conn_close(c); /* its changes were never acknowledged */
			return;
		}
		/* keep reading and serving; a full output backlog (c->more)
		 * waits for the release, which re-queues it */
		held_add(w, c);
		set_interest(c, EPOLLIN);
		return;
	}
	held_del(w, c);
	if (conn_flush(c) != 0) {
		conn_close(c);
		return;
	}
	if (c->wpos < c->wlen) {
		set_interest(c, EPOLLOUT); /* socket full */
		return;
	}
	if (c->closing) {
		conn_close(c);
		return;
	}
	if (c->more && !c->in_again) {
		c->in_again = true;
		c->next_again = w->again;
		w->again = c;
	}
	set_interest(c, EPOLLIN);
}

/* group_end -- end the batch's group FAS. In synchronous mode this waits
 * until the batch is durable; if the commit failed, the connections that
 * changed the cache are closed without a reply (nothing was acknowledged). */
static void group_end(struct vmc_worker *w)
{
	if (!w->group_open)
		return;
	w->group_open = false;
	int rc = pend();
	if (rc == 0) {
		if (ack_after_sync)
			hold_for_sync(w);
		return;
	}
	TSTAT_INC(w, commit_errors);
	fprintf(stderr, "vmcached: group commit failed: %s\n", vp_strerror(rc));
	for (struct vmc_conn *c = w->touched; c; c = c->next_touched)
		if (c->mutated)
			c->dead = true;
}

/* release_held -- send the replies whose changes are now durable (the
 * syncer's psync() covered them, or failed and their connections close).
 * Called first in a loop iteration, before any connection is touched: a
 * held connection's output then holds only replies its hold_until covers,
 * and it goes out now rather than after this iteration's batch. */
static void release_held(struct vmc_worker *w)
{
	struct vmc_conn *c = w->held;
	while (c) {
		struct vmc_conn *next = c->next_held;
		if (c->hold_until <= __atomic_load_n(&sync_done, __ATOMIC_SEQ_CST) ||
		    c->hold_until <= __atomic_load_n(&sync_failed, __ATOMIC_SEQ_CST))
			conn_finish(w, c);
		c = next;
	}
}

static void *worker_main(void *arg)
{
	struct vmc_worker *w = arg;
	struct epoll_event evs[64];
	while (!vmc_stop) {
		int n = epoll_wait(w->epfd, evs, 64, w->again ? 0 : 200);
		for (int i = 0; i < n; i++)
			if (evs[i].data.ptr == w) {
				uint64_t v;
				ssize_t rd = read(w->efd, &v, sizeof v);
				(void)rd;
				release_held(w);
			}
		struct vmc_conn *a = w->again;
		w->again = NULL;
		while (a) {
			struct vmc_conn *next = a->next_again;
			a->in_again = false;
			conn_read_in(w, a, 0);
			a = next;
		}
		for (int i = 0; i < n; i++) {
			if (evs[i].data.ptr == NULL)
				conn_accept(w);
			else if (evs[i].data.ptr != w)
				conn_read_in(w, evs[i].data.ptr, evs[i].events);
		}
		for (struct vmc_conn *t = w->touched; t; t = t->next_touched)
			conn_run(t);
		group_end(w);
		struct vmc_conn *c = w->touched;
		w->touched = NULL;
		while (c) {
			struct vmc_conn *next = c->next_touched;
			conn_finish(w, c);
			c = next;
		}
	}
	while (w->all) /* stopping: every acknowledged request is in the heap */
		conn_close(w->all);
	close(w->epfd);
	return NULL;
}

/* net_run -- start the workers on listening socket lfd and wait for them
 * to stop (vmc_stop set by a signal). Connections still open are simply
 * dropped: every acknowledged request is already in the heap. */
int net_run(int lfd)
{
	listen_fd = lfd;
	int nt = vmc_settings.threads;
	vmc_workers = calloc((size_t)nt, sizeof *vmc_workers);
	if (!vmc_workers)
		return -1;
	for (int i = 0; i < nt; i++) {
		struct vmc_worker *w = &vmc_workers[i];
		w->id = i;
		w->epfd = epoll_create1(EPOLL_CLOEXEC);
		struct epoll_event ev = { .events = EPOLLIN | EPOLLEXCLUSIVE,
					  .data.ptr = NULL };
		w->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
		struct epoll_event eev = { .events = EPOLLIN, .data.ptr = w };
		if (w->epfd < 0 || epoll_ctl(w->epfd, EPOLL_CTL_ADD, lfd, &ev) != 0 ||
		    w->efd < 0 || epoll_ctl(w->epfd, EPOLL_CTL_ADD, w->efd, &eev) != 0) {
			perror("vmcached: epoll");
			return -1;
		}
	}
	ack_after_sync = vmc_settings.commit_interval_ms == 0;
	const char *delay = getenv("VMCACHED_TEST_SYNC_DELAY_US");
	sync_delay_us = delay ? (unsigned)strtoul(delay, NULL, 10) : 0;
	pthread_t syncer;
	if (ack_after_sync && pthread_create(&syncer, NULL, syncer_main, NULL) != 0) {
		perror("vmcached: pthread_create");
		return -1;
	}
	for (int i = 0; i < nt; i++)
		if (pthread_create(&vmc_workers[i].tid, NULL, worker_main,
				   &vmc_workers[i]) != 0) {
			perror("vmcached: pthread_create");
			vmc_stop = 1;
			for (int j = 0; j < i; j++)
				pthread_join(vmc_workers[j].tid, NULL);
			return -1;
		}
	for (int i = 0; i < nt; i++)
		pthread_join(vmc_workers[i].tid, NULL);
	if (ack_after_sync)
		pthread_join(syncer, NULL);
	for (int i = 0; i < nt; i++)
		close(vmc_workers[i].efd);
	return 0;
}
