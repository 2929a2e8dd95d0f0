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
 */
#define _GNU_SOURCE /* accept4 */
#include "vmcached.h"

#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <volipmem.h>

#define RBUF_INIT 16384
#define READ_CHUNK 65536

struct vmc_worker *vmc_workers;
uint64_t vmc_curr_conns, vmc_total_conns, vmc_rejected_conns;
volatile int vmc_stop;
static int listen_fd = -1;

static void conn_close(struct vmc_conn *c)
{
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

/* conn_work -- phase 1 of a batch: read what is there and run every
 * complete request; replies stay queued until the group FAS has ended. */
static void conn_work(struct vmc_worker *w, struct vmc_conn *c, uint32_t events)
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
	if ((events & EPOLLIN) && conn_read(c) < 0) {
		c->dead = true;
		return;
	}
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
	if (c->dead || conn_flush(c) != 0) {
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
	if (rc == 0)
		return;
	TSTAT_INC(w, commit_errors);
	fprintf(stderr, "vmcached: group commit failed: %s\n", vp_strerror(rc));
	for (struct vmc_conn *c = w->touched; c; c = c->next_touched)
		if (c->mutated)
			c->dead = true;
}

static void *worker_main(void *arg)
{
	struct vmc_worker *w = arg;
	struct epoll_event evs[64];
	while (!vmc_stop) {
		int n = epoll_wait(w->epfd, evs, 64, w->again ? 0 : 200);
		struct vmc_conn *a = w->again;
		w->again = NULL;
		while (a) {
			struct vmc_conn *next = a->next_again;
			a->in_again = false;
			conn_work(w, a, 0);
			a = next;
		}
		for (int i = 0; i < n; i++) {
			if (evs[i].data.ptr == NULL)
				conn_accept(w);
			else
				conn_work(w, evs[i].data.ptr, evs[i].events);
		}
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
		if (w->epfd < 0 || epoll_ctl(w->epfd, EPOLL_CTL_ADD, lfd, &ev) != 0) {
			perror("vmcached: epoll");
			return -1;
		}
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
	return 0;
}
