/* echo.c - `make bench B=echo`: a TCP echo server on one core, ours
 * (uthread per connection on the runtime, sys_recv/sys_send through the
 * vcore's io_uring) against an epoll server (one thread, non-blocking
 * sockets), driven by the same open-loop load generator.
 *
 * Setup. Both servers are pinned to the first cpu of the affinity mask:
 * ours is rt_main() with one vcore called from a thread pinned there (the
 * default idle_poll_ns: an idle vcore polls 50 us, then parks in
 * io_uring_enter); the peer is one pthread pinned there, blocking in
 * epoll_wait() (level-triggered) and answering every readable socket with
 * one recv() and one send(). The client is a plain pthread (not on the
 * runtime) pinned to the second cpu. Loopback TCP, TCP_NODELAY on both
 * ends, NCONN connections, 64-byte messages echoed byte for byte.
 *
 * Load generator (open loop). Requests arrive as a Poisson process at the
 * offered rate, spread round-robin over the connections; each message
 * carries its SCHEDULED send time, and latency is measured from that time
 * to the arrival of the whole 64-byte echo (fast_ns(), one clock: the
 * client's). A client that falls behind sends late but the delay still
 * counts, so queueing anywhere is never hidden (no coordinated omission).
 * Sends that would block are queued per connection and retried.
 *
 * A step at rate R: WARMUP_NS of traffic not recorded, then STEP_NS whose
 * requests are recorded; requests not echoed by GRACE_NS after the window
 * count as infinitely late. Then the client waits until every echo is in
 * before the next step.
 *
 * Rows:
 *  - echo throughput per core: the highest offered rate whose typical p99
 *    (below; from the scheduled times, late requests as infinite) stays
 *    <= SLO_NS with at most 1% late.
 *    Found per run and server by doubling the rate from START_RATE until a
 *    step fails, then bisecting (geometrically) between the last pass and
 *    the first failure; a failed step is tried twice. Median over runs.
 *  - echo p99 latency: both servers at one fixed offered load, half the
 *    epoll server's median capacity from the first phase; median over runs
 *    of each run's typical p99; plain p50/p99/p99.9 in the notes.
 *
 * "Typical" percentiles: the machine is shared, and other jobs' time
 * slices stall the server or the client for milliseconds. Each window is
 * cut into SUB_NS slices (by scheduled time); a step's typical p50/p99 are
 * the medians over its slices of the slices' own percentiles, so a stall
 * spoils a slice, not the figure.
 *
 * Development aid: ECHO_PROBE=rate,rate,... runs one step per rate and
 * server, prints it and exits (no report); ECHO_BENCH_TRACE=1 prints every
 * step of a normal run.
 */
#include <errno.h>
#include <inttypes.h>
#include <liburing.h>
#include <math.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <stddef.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atoll/atomic.h>
#include <atoll/clock.h>
#include <atoll/compiler.h>
#include <atoll/hist.h>
#include <atoll/rt.h>
#include <atoll/sys.h>
#include <atoll/uthread.h>

#include "benchlib.h"

#define MAX_RUNS 64
#define NCONN 64
#define MSG 64
#define SLO_NS (1000 * NSEC_PER_USEC)
#define SUB_NS (10 * NSEC_PER_MSEC)	/* slice for typical percentiles */
#define MAX_SUB 256			/* slices per window, at most */
#define DISTURBED_PCT 10.0		/* other jobs' share that voids a run */
#define START_RATE 25000.0
#define MAX_RATE 4e6
#define MIN_RATE 1000.0
#define OUTBUF (64 * 1024)		/* client's per-connection backlog */
#define SRV_OUTBUF 4096		/* epoll server: recv size, backlog */

enum kind { OURS, PEER };

static const char *const kind_name[] = { "ours", "epoll" };

static int cpu_srv, cpu_cli;
static uint64_t warmup_ns, step_ns, grace_ns, lat_ns;
static int bisect_steps;

/* ---- small helpers ----------------------------------------------------- */

static void pin_or_die(int cpu)
{
	int err = bench_pin_cpu(cpu);

	if (err)
		bench_die("cannot pin a thread to cpu %d: %s.", cpu,
			  strerror(-err));
}

static void set_nodelay(int fd)
{
	int one = 1;

	if (setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one)))
		bench_die("TCP_NODELAY: %s.", strerror(errno));
}

/* Plain CUBIC rather than the system default (BBR here, whose pacing
 * delays sends by its bandwidth estimate): the servers' costs, not the
 * congestion control's, are measured. Accepted sockets inherit it from
 * the listener. Best effort. */
static void set_cc(int fd)
{
	static const char cc[] = "cubic";

	(void)setsockopt(fd, IPPROTO_TCP, TCP_CONGESTION, cc, sizeof(cc) - 1);
}

/* A listening socket on 127.0.0.1, any port; *port gets it. */
static int listen_on(int nonblock, uint16_t *port)
{
	struct sockaddr_in a = { .sin_family = AF_INET };
	socklen_t len = sizeof(a);
	int one = 1;
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC |
			(nonblock ? SOCK_NONBLOCK : 0), 0);

	if (fd < 0)
		bench_die("socket: %s.", strerror(errno));
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	set_cc(fd);
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (bind(fd, (struct sockaddr *)&a, sizeof(a)) ||
	    listen(fd, 1024) ||
	    getsockname(fd, (struct sockaddr *)&a, &len))
		bench_die("cannot listen on 127.0.0.1: %s.", strerror(errno));
	*port = ntohs(a.sin_port);
	return fd;
}

static int connect_to(uint16_t port)
{
	struct sockaddr_in a = { .sin_family = AF_INET };
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	if (fd < 0)
		bench_die("socket: %s.", strerror(errno));
	set_cc(fd);
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	a.sin_port = htons(port);
	if (connect(fd, (struct sockaddr *)&a, sizeof(a)))
		bench_die("connect: %s.", strerror(errno));
	return fd;
}

/* ---- our server: a uthread per connection ------------------------------ */

struct server {
	enum kind kind;
	int lfd;
	uint16_t port;
	pthread_t th;
	uint32_t stop;		/* set before the wake-up connection */
	uint32_t live;		/* ours: connection uthreads alive */
	int efd;		/* peer: eventfd that stops the loop */
	int err;		/* ours: rt_main's result */
};

struct ours_conn {
	struct server *srv;
	int fd;
};

static void *ours_conn_main(void *arg)
{
	struct ours_conn *c = arg;
	struct server *srv = c->srv;
	int fd = c->fd;
	char buf[SRV_OUTBUF];

	free(c);
	for (;;) {
		ssize_t n = sys_recv(fd, buf, sizeof(buf), 0), off = 0;

		if (n <= 0)
			break;
		while (off < n) {
			ssize_t w = sys_send(fd, buf + off, (size_t)(n - off),
					     MSG_NOSIGNAL);

			if (w <= 0)
				goto out;
			off += w;
		}
	}
out:
	close(fd);
	fetch_sub_acq_rel(&srv->live, 1);
	return NULL;
}

static int ours_server_main(void *arg)
{
	struct server *srv = arg;
	struct uthread_attr attr = { .detached = 1 };

	for (;;) {
		int fd = sys_accept(srv->lfd, NULL, NULL, SOCK_CLOEXEC), err;
		struct ours_conn *c;

		if (load_acquire(&srv->stop)) {
			if (fd >= 0)
				close(fd);
			break;
		}
		if (fd == -EINTR || fd == -ECONNABORTED)
			continue;
		if (fd < 0)
			bench_die("ours: accept: %s.", strerror(-fd));
		set_nodelay(fd);
		c = malloc(sizeof(*c));
		if (!c)
			bench_die("out of memory.");
		c->srv = srv;
		c->fd = fd;
		fetch_add_acq_rel(&srv->live, 1);
		err = uthread_create(NULL, &attr, ours_conn_main, c);
		if (err)
			bench_die("uthread_create: %s.", strerror(-err));
	}
	/* The client closed its connections before stopping us. */
	while (load_acquire(&srv->live))
		uthread_sleep_ns(NSEC_PER_MSEC);
	return 0;
}

static void *ours_server_thread(void *arg)
{
	struct server *srv = arg;
	/* One vcore; rt_main pins it to the calling thread's only cpu. */
	struct rt_config cfg = { .nr_vcores = 1 };

	pin_or_die(cpu_srv);
	srv->err = rt_main(&cfg, ours_server_main, srv);
	return NULL;
}

/* ---- the peer: one epoll thread ---------------------------------------- */

struct pconn {
	int fd;
	uint32_t len, off;	/* pending output */
	char out[SRV_OUTBUF];
};

static void pconn_close(int ep, struct pconn *c)
{
	epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, NULL);
	close(c->fd);
	free(c);
}

static void pconn_watch(int ep, struct pconn *c, uint32_t events)
{
	struct epoll_event ev = { .events = events, .data.ptr = c };

	if (epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &ev))
		bench_die("epoll_ctl: %s.", strerror(errno));
}

/* Send what is pending; false when the connection is dead. While output
 * is pending the connection waits for EPOLLOUT only and is not read:
 * back-pressure, as a uthread blocked in sys_send() gives. */
static bool pconn_flush(int ep, struct pconn *c)
{
	while (c->off < c->len) {
		ssize_t w = send(c->fd, c->out + c->off, c->len - c->off,
				 MSG_NOSIGNAL | MSG_DONTWAIT);

		if (w < 0 && errno == EAGAIN)
			return true;
		if (w <= 0)
			return false;
		c->off += (uint32_t)w;
	}
	c->off = c->len = 0;
	pconn_watch(ep, c, EPOLLIN);
	return true;
}

/* One recv, then echo it; a remainder that would block is kept. */
static bool pconn_readable(int ep, struct pconn *c)
{
	ssize_t n = recv(c->fd, c->out, sizeof(c->out), MSG_DONTWAIT), off = 0;

	if (n < 0 && errno == EAGAIN)
		return true;
	if (n <= 0)
		return false;
	while (off < n) {
		ssize_t w = send(c->fd, c->out + off, (size_t)(n - off),
				 MSG_NOSIGNAL | MSG_DONTWAIT);

		if (w < 0 && errno == EAGAIN) {
			c->off = (uint32_t)off;
			c->len = (uint32_t)n;
			pconn_watch(ep, c, EPOLLOUT);
			return true;
		}
		if (w <= 0)
			return false;
		off += w;
	}
	return true;
}

static void *peer_server_thread(void *arg)
{
	struct server *srv = arg;
	struct epoll_event evs[256], ev;
	int ep = epoll_create1(EPOLL_CLOEXEC);
	bool stop = false;

	pin_or_die(cpu_srv);
	if (ep < 0)
		bench_die("epoll_create1: %s.", strerror(errno));
	ev = (struct epoll_event){ .events = EPOLLIN, .data.ptr = NULL };
	epoll_ctl(ep, EPOLL_CTL_ADD, srv->lfd, &ev);
	ev = (struct epoll_event){ .events = EPOLLIN, .data.ptr = &srv->efd };
	epoll_ctl(ep, EPOLL_CTL_ADD, srv->efd, &ev);
	while (!stop) {
		int n = epoll_wait(ep, evs, 256, -1);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			bench_die("epoll_wait: %s.", strerror(errno));
		for (int i = 0; i < n; i++) {
			struct pconn *c = evs[i].data.ptr;

			if (evs[i].data.ptr == &srv->efd) {
				stop = true;
				continue;
			}
			if (!c) {
				int fd;

				while ((fd = accept4(srv->lfd, NULL, NULL,
						     SOCK_NONBLOCK |
						     SOCK_CLOEXEC)) >= 0) {
					set_nodelay(fd);
					c = calloc(1, sizeof(*c));
					if (!c)
						bench_die("out of memory.");
					c->fd = fd;
					ev = (struct epoll_event){
						.events = EPOLLIN,
						.data.ptr = c };
					epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev);
				}
				continue;
			}
			bool ok = true;

			if (c->len)
				ok = pconn_flush(ep, c);
			else
				ok = pconn_readable(ep, c);
			if (!ok)
				pconn_close(ep, c);
		}
	}
	/* The client closed its connections first; any left are closed by
	 * the process's end (never: every connection saw its EOF). */
	close(ep);
	return NULL;
}

/* ---- server start and stop --------------------------------------------- */

static void server_start(struct server *srv, enum kind k)
{
	int err;

	memset(srv, 0, sizeof(*srv));
	srv->kind = k;
	srv->efd = -1;
	/* io_uring honours O_NONBLOCK (it would fail with EAGAIN instead of
	 * waiting), so our listener blocks; the epoll server's does not. */
	srv->lfd = listen_on(k == PEER, &srv->port);
	if (k == PEER) {
		srv->efd = eventfd(0, EFD_CLOEXEC);
		if (srv->efd < 0)
			bench_die("eventfd: %s.", strerror(errno));
	}
	err = pthread_create(&srv->th, NULL, k == OURS ? ours_server_thread :
			     peer_server_thread, srv);
	if (err)
		bench_die("pthread_create: %s.", strerror(err));
}

static void server_stop(struct server *srv)
{
	store_release(&srv->stop, 1);
	if (srv->kind == OURS) {
		close(connect_to(srv->port)); /* wakes the accept */
	} else {
		uint64_t one = 1;

		if (write(srv->efd, &one, sizeof(one)) != sizeof(one))
			bench_die("eventfd write: %s.", strerror(errno));
	}
	pthread_join(srv->th, NULL);
	if (srv->kind == OURS && srv->err)
		bench_die("ours: rt_main: %s.", strerror(-srv->err));
	close(srv->lfd);
	if (srv->efd >= 0)
		close(srv->efd);
}

/* ---- the open-loop client ---------------------------------------------- */

/* The client drives its sockets through its own io_uring (plain liburing,
 * not the runtime): system calls cost over a microsecond each in this VM,
 * and a client doing send + epoll_wait + recv per request would saturate
 * before either server. Each loop iteration queues the requests that are
 * due, then makes ONE io_uring_enter (submit and reap). Per connection:
 * one recv always in flight, and at most one send in flight (so bytes stay
 * in order); messages due meanwhile wait in the connection's pending
 * buffer and go out together in its next send. */

#define TAG_RECV 0ull
#define TAG_SEND 1ull

struct cconn {
	int fd;
	bool send_busy;
	uint32_t carry;			/* bytes of a partial echo */
	uint32_t plen;			/* pending: not yet handed to a send */
	uint32_t slen, soff;		/* the send in flight */
	uint64_t sent, echoed;		/* whole messages */
	char part[MSG];
	char rbuf[16384];
	char pend[OUTBUF];
	char sbuf[OUTBUF];
};

struct client {
	struct io_uring ring;
	struct cconn *c;		/* NCONN of them */
	uint64_t rng;
	unsigned rr;
	/* the current step's window, for recording */
	struct hist *h;
	uint64_t win_lo, win_hi, in_window;
	struct hist *sub;		/* one per SUB_NS of the window */
	uint64_t *sub_sched;		/* requests scheduled in each */
	unsigned nsub, max_sub;
};

/* Result of one step. */
struct step {
	double offered;		/* req/s */
	double achieved;	/* echoes of the window's requests / window */
	uint64_t measured;	/* requests scheduled in the window */
	uint64_t late;		/* ...not echoed by the grace deadline */
	uint64_t p50, p99;	/* ns, late ones counted as infinite */
	double tp50, tp99;	/* typical: medians over SUB_NS slices, ns */
	double max_lag_us;	/* worst send lateness of the client */
	bool backlog_full;
};

static double rng_unit(struct client *cl)
{
	/* xorshift64*; a double in (0, 1]. */
	cl->rng ^= cl->rng >> 12;
	cl->rng ^= cl->rng << 25;
	cl->rng ^= cl->rng >> 27;
	return ((double)((cl->rng * 0x2545F4914F6CDD1Dull) >> 11) + 1.0) /
	       9007199254740992.0;
}

static struct io_uring_sqe *client_sqe(struct client *cl)
{
	struct io_uring_sqe *sqe = io_uring_get_sqe(&cl->ring);

	if (!sqe) {
		io_uring_submit(&cl->ring);
		sqe = io_uring_get_sqe(&cl->ring);
		if (!sqe)
			bench_die("client: io_uring submission queue full.");
	}
	return sqe;
}

static void arm_recv(struct client *cl, struct cconn *c)
{
	struct io_uring_sqe *sqe = client_sqe(cl);

	io_uring_prep_recv(sqe, c->fd, c->rbuf, sizeof(c->rbuf), 0);
	io_uring_sqe_set_data64(sqe, ((uint64_t)(c - cl->c) << 1) | TAG_RECV);
}

static void arm_send(struct client *cl, struct cconn *c)
{
	struct io_uring_sqe *sqe = client_sqe(cl);

	io_uring_prep_send(sqe, c->fd, c->sbuf + c->soff, c->slen - c->soff,
			   MSG_NOSIGNAL);
	io_uring_sqe_set_data64(sqe, ((uint64_t)(c - cl->c) << 1) | TAG_SEND);
	c->send_busy = true;
}

/* Move a connection's pending bytes into a send, if none is in flight. */
static void kick_send(struct client *cl, struct cconn *c)
{
	if (c->send_busy || !c->plen)
		return;
	memcpy(c->sbuf, c->pend, c->plen);
	c->slen = c->plen;
	c->soff = 0;
	c->plen = 0;
	arm_send(cl, c);
}

/* Queue one message scheduled at `at`; false when the backlog is full. */
static bool client_send(struct client *cl, uint64_t at)
{
	struct cconn *c = &cl->c[cl->rr++ % NCONN];

	if (c->plen + MSG > OUTBUF)
		return false;
	memset(c->pend + c->plen, 0x5a, MSG);
	memcpy(c->pend + c->plen, &at, sizeof(at));
	c->plen += MSG;
	c->sent++;
	kick_send(cl, c);
	return true;
}

static void echo_arrived(struct client *cl, struct cconn *c, const char *m,
			 uint64_t now)
{
	uint64_t at;

	memcpy(&at, m, sizeof(at));
	if (at >= cl->win_lo && at < cl->win_hi) {
		hist_record(cl->h, now - at);
		hist_record(&cl->sub[(at - cl->win_lo) / SUB_NS], now - at);
		cl->in_window++;
	}
	c->echoed++;
}

static void on_recv(struct client *cl, struct cconn *c, int res)
{
	uint64_t now = fast_ns();
	size_t off = 0, r;

	if (res <= 0)
		bench_die("client recv: %s.",
			  res ? strerror(-res) : "connection closed");
	r = (size_t)res;
	if (c->carry) {
		size_t take = MSG - c->carry;

		if (take > r)
			take = r;
		memcpy(c->part + c->carry, c->rbuf, take);
		c->carry += (uint32_t)take;
		off = take;
		if (c->carry == MSG) {
			c->carry = 0;
			echo_arrived(cl, c, c->part, now);
		}
	}
	for (; off + MSG <= r; off += MSG)
		echo_arrived(cl, c, c->rbuf + off, now);
	if (off < r) {
		c->carry = (uint32_t)(r - off);
		memcpy(c->part, c->rbuf + off, c->carry);
	}
	arm_recv(cl, c);
}

static void on_send(struct client *cl, struct cconn *c, int res)
{
	if (res == -EINTR || res == -EAGAIN)
		res = 0;
	if (res < 0)
		bench_die("client send: %s.", strerror(-res));
	c->soff += (uint32_t)res;
	if (c->soff < c->slen) {
		arm_send(cl, c);	/* partial: the rest, still in order */
		return;
	}
	c->send_busy = false;
	kick_send(cl, c);
}

/* One io_uring_enter: submit what is queued, reap what completed. */
static void client_turn(struct client *cl)
{
	struct io_uring_cqe *cqe;
	unsigned head, n = 0;
	int r = io_uring_submit_and_get_events(&cl->ring);

	if (r < 0 && r != -EINTR && r != -EBUSY && r != -EAGAIN)
		bench_die("client: io_uring_enter: %s.", strerror(-r));
	io_uring_for_each_cqe(&cl->ring, head, cqe) {
		uint64_t d = io_uring_cqe_get_data64(cqe);
		struct cconn *c = &cl->c[d >> 1];

		if ((d & 1) == TAG_RECV)
			on_recv(cl, c, cqe->res);
		else
			on_send(cl, c, cqe->res);
		n++;
	}
	io_uring_cq_advance(&cl->ring, n);
}

static uint64_t client_outstanding(const struct client *cl)
{
	uint64_t n = 0;

	for (int i = 0; i < NCONN; i++)
		n += cl->c[i].sent - cl->c[i].echoed;
	return n;
}

/* Wait until every request has been echoed (or give up after limit_ns). */
static bool client_drain(struct client *cl, uint64_t limit_ns)
{
	uint64_t until = fast_ns() + limit_ns;

	cl->win_lo = cl->win_hi = 0;
	while (client_outstanding(cl)) {
		client_turn(cl);
		if (fast_ns() > until)
			return false;
	}
	return true;
}

static void client_open(struct client *cl, uint16_t port, struct hist *h)
{
	struct io_uring_params par = {
		.flags = IORING_SETUP_SINGLE_ISSUER |
			 IORING_SETUP_DEFER_TASKRUN,
	};
	int err;

	memset(cl, 0, sizeof(*cl));
	cl->rng = 0x9e3779b97f4a7c15ull ^ fast_ns();
	cl->h = h;
	err = io_uring_queue_init_params(4 * NCONN, &cl->ring, &par);
	if (err) {	/* older kernel: task work on interrupts instead */
		memset(&par, 0, sizeof(par));
		err = io_uring_queue_init_params(4 * NCONN, &cl->ring, &par);
	}
	if (err)
		bench_die("client: io_uring: %s.", strerror(-err));
	cl->c = aligned_alloc(CACHE_LINE, NCONN * sizeof(*cl->c));
	cl->max_sub = MAX_SUB;
	cl->sub = calloc(cl->max_sub, sizeof(*cl->sub));
	cl->sub_sched = calloc(cl->max_sub, sizeof(*cl->sub_sched));
	if (!cl->c || !cl->sub || !cl->sub_sched)
		bench_die("out of memory.");
	for (int i = 0; i < NCONN; i++) {
		struct cconn *c = &cl->c[i];

		memset(c, 0, sizeof(*c));	/* and fault the pages in */
		c->fd = connect_to(port);
		set_nodelay(c->fd);
		arm_recv(cl, c);
	}
	/* One message per connection: every one is accepted and served. */
	for (int i = 0; i < NCONN; i++)
		client_send(cl, 0);
	if (!client_drain(cl, 5 * NSEC_PER_SEC))
		bench_die("the server does not answer.");
}

static void client_close(struct client *cl)
{
	/* Closing the sockets ends the in-flight recvs; the ring goes. */
	for (int i = 0; i < NCONN; i++)
		shutdown(cl->c[i].fd, SHUT_RDWR);
	io_uring_queue_exit(&cl->ring);
	for (int i = 0; i < NCONN; i++)
		close(cl->c[i].fd);
	free(cl->c);
	free(cl->sub);
	free(cl->sub_sched);
}

/* Percentile p of the window's latencies, the late requests counted as
 * +infinity (UINT64_MAX). */
static uint64_t pct_with_late(const struct hist *h, uint64_t measured,
			      uint64_t in_window, double p)
{
	uint64_t rank;

	if (!measured)
		return UINT64_MAX;
	rank = (uint64_t)ceil(p / 100.0 * (double)measured);
	if (rank < 1)
		rank = 1;
	if (rank > in_window)
		return UINT64_MAX;
	return hist_percentile(h, 100.0 * (double)rank / (double)in_window);
}

/* One step at `rate` req/s; the window's latencies go into cl->h (reset
 * first). */
static struct step client_step(struct client *cl, double rate,
			       uint64_t window_ns)
{
	struct step st = { .offered = rate };
	double mean_gap = 1e9 / rate, carry = 0;
	uint64_t t0 = fast_ns() + 1000, next = t0, max_lag = 0, measured = 0;
	uint64_t hard;

	hist_reset(cl->h);
	cl->in_window = 0;
	cl->win_lo = t0 + warmup_ns;
	cl->win_hi = cl->win_lo + window_ns;
	cl->nsub = (unsigned)((window_ns + SUB_NS - 1) / SUB_NS);
	if (cl->nsub > cl->max_sub)
		bench_die("window too long.");
	for (unsigned i = 0; i < cl->nsub; i++) {
		hist_reset(&cl->sub[i]);
		cl->sub_sched[i] = 0;
	}
	hard = cl->win_hi + grace_ns;
	for (;;) {
		uint64_t now = fast_ns();

		/* Queue everything due. */
		while (next <= now && next < cl->win_hi) {
			if (now - next > max_lag)
				max_lag = now - next;
			if (!client_send(cl, next)) {
				st.backlog_full = true;
				break;
			}
			if (next >= cl->win_lo) {
				measured++;
				cl->sub_sched[(next - cl->win_lo) / SUB_NS]++;
			}
			carry += -log(rng_unit(cl)) * mean_gap;
			next += (uint64_t)carry;
			carry -= (double)(uint64_t)carry;
		}
		if (st.backlog_full)
			break;
		client_turn(cl);
		if (now >= cl->win_hi &&
		    (cl->in_window == measured || now >= hard))
			break;
	}
	st.measured = measured;
	st.late = measured > cl->in_window ? measured - cl->in_window : 0;
	st.achieved = (double)cl->in_window * 1e9 / (double)window_ns;
	st.max_lag_us = (double)max_lag / 1e3;
	if (st.backlog_full) {
		st.p50 = st.p99 = UINT64_MAX;
		st.tp50 = st.tp99 = INFINITY;
	} else {
		static double v50[MAX_SUB], v99[MAX_SUB];

		st.p50 = pct_with_late(cl->h, measured, cl->in_window, 50);
		st.p99 = pct_with_late(cl->h, measured, cl->in_window, 99);
		for (unsigned i = 0; i < cl->nsub; i++) {
			const struct hist *h = &cl->sub[i];
			uint64_t m = cl->sub_sched[i], got = hist_count(h);
			uint64_t a = pct_with_late(h, m, got, 50);
			uint64_t b = pct_with_late(h, m, got, 99);

			v50[i] = a == UINT64_MAX ? INFINITY : (double)a;
			v99[i] = b == UINT64_MAX ? INFINITY : (double)b;
		}
		st.tp50 = bench_median(v50, cl->nsub);
		st.tp99 = bench_median(v99, cl->nsub);
	}
	/* Clean slate for the next step. */
	if (!client_drain(cl, 10 * NSEC_PER_SEC))
		bench_die("the server did not catch up within 10 s.");
	return st;
}

/* Sustained: the typical p99 (median over the window's slices) stays
 * within SLO_NS, so no queue builds up, and <= 1% of requests are late. */
static bool step_ok(const struct step *st)
{
	return st->tp99 <= (double)SLO_NS && st->late * 100 <= st->measured;
}

static void print_step(enum kind k, const struct step *st)
{
	if (!getenv("ECHO_BENCH_TRACE"))
		return;
	fprintf(stderr, "  %-5s offered %8.0f achieved %8.0f typ p50/p99 "
		"%.1f/%.1f p50 %.1f p99 %.1f us late %" PRIu64 "/%" PRIu64
		" lag %.0f us %s\n", kind_name[k], st->offered, st->achieved,
		st->tp50 / 1e3, st->tp99 / 1e3,
		st->p50 == UINT64_MAX ? INFINITY : (double)st->p50 / 1e3,
		st->p99 == UINT64_MAX ? INFINITY : (double)st->p99 / 1e3,
		st->late, st->measured, st->max_lag_us,
		step_ok(st) ? "ok" : "FAIL");
}

/* ---- the two phases ---------------------------------------------------- */

static struct hist h_step, h_lat[2], h_run[2];

/* A capacity step: a failed one gets a second try, so that a time slice
 * another job took from the server or the client does not decide it. */
static struct step capacity_step(struct client *cl, enum kind k, double rate)
{
	struct step st = client_step(cl, rate, step_ns);

	print_step(k, &st);
	if (!step_ok(&st)) {
		st = client_step(cl, rate, step_ns);
		print_step(k, &st);
	}
	return st;
}

/* What the capacity search found: the highest passing step. */
struct capacity {
	double rate;		/* req/s; 0 if even MIN_RATE failed */
	double p99_us;		/* that step's typical p99 (slice median) */
	double raw_p99_us;	/* and its plain p99 */
	double lag_us;		/* the client's worst send lag in it */
};

static void cap_pass(struct capacity *c, const struct step *st)
{
	c->rate = st->offered;
	c->p99_us = st->tp99 / 1e3;
	c->raw_p99_us = st->p99 == UINT64_MAX ? INFINITY :
			(double)st->p99 / 1e3;
	c->lag_us = st->max_lag_us;
}

/* Highest sustained rate (see the top note). */
static struct capacity find_capacity(enum kind k)
{
	struct capacity cap = { 0, 0, 0, 0 };
	struct server srv;
	struct client cl;
	double lo = 0, hi = 0, r = START_RATE;
	struct step st;

	server_start(&srv, k);
	client_open(&cl, srv.port, &h_step);
	/* Double until a step fails (or halve until one passes). */
	for (;;) {
		st = capacity_step(&cl, k, r);
		if (step_ok(&st)) {
			lo = r;
			cap_pass(&cap, &st);
			if (hi || r * 2 > MAX_RATE)
				break;
			r *= 2;
		} else {
			hi = r;
			if (lo || r / 2 < MIN_RATE)
				break;
			r /= 2;
		}
	}
	if (!hi)
		hi = MAX_RATE;
	/* Bisect geometrically. */
	for (int i = 0; i < bisect_steps && lo > 0; i++) {
		double mid = sqrt(lo * hi);

		st = capacity_step(&cl, k, mid);
		if (step_ok(&st)) {
			lo = mid;
			cap_pass(&cap, &st);
		} else {
			hi = mid;
		}
	}
	client_close(&cl);
	server_stop(&srv);
	return cap;
}

/* The fixed-load step of one server; its latencies are added to
 * h_run[k]. */
static struct step fixed_load(enum kind k, double rate)
{
	struct server srv;
	struct client cl;
	struct step st;

	server_start(&srv, k);
	client_open(&cl, srv.port, &h_step);
	st = client_step(&cl, rate, lat_ns);
	print_step(k, &st);
	hist_merge(&h_run[k], &h_step);
	client_close(&cl);
	server_stop(&srv);
	return st;
}

/* ---- disturbance ------------------------------------------------------- */

/* CPU time of the whole machine and of this process, to tell how much of
 * the machine other jobs took during a run. */
struct cpu_mark {
	bool ok;
	double busy_s, total_s, self_s;
};

static struct cpu_mark cpu_mark(void)
{
	struct cpu_mark m = { .ok = false };
	unsigned long long v[8] = { 0 };
	struct rusage ru;
	double hz = (double)sysconf(_SC_CLK_TCK), total = 0;
	FILE *f = fopen("/proc/stat", "r");

	if (!f)
		return m;
	if (fscanf(f, "cpu %llu %llu %llu %llu %llu %llu %llu %llu", &v[0],
		   &v[1], &v[2], &v[3], &v[4], &v[5], &v[6], &v[7]) == 8 &&
	    !getrusage(RUSAGE_SELF, &ru) && hz > 0) {
		for (int i = 0; i < 8; i++)
			total += (double)v[i];
		m.total_s = total / hz;
		m.busy_s = (total - (double)v[3] - (double)v[4]) / hz;
		m.self_s = bench_rusage_s(&ru);
		m.ok = true;
	}
	fclose(f);
	return m;
}

/* Percent of the machine's CPU time other processes used since m0; 0
 * when unknown. */
static double others_pct(const struct cpu_mark *m0)
{
	struct cpu_mark m1 = cpu_mark();
	double total, others;

	if (!m0->ok || !m1.ok)
		return 0;
	total = m1.total_s - m0->total_s;
	others = (m1.busy_s - m0->busy_s) - (m1.self_s - m0->self_s);
	return total > 0 && others > 0 ? 100.0 * others / total : 0;
}

/* Whether a run that saw `pct` of other load is to be repeated; counts
 * the repeats against the budget. */
static bool redo_run(const char *what, int r, double pct, int *budget)
{
	if (pct <= DISTURBED_PCT || *budget <= 0)
		return false;
	(*budget)--;
	fprintf(stderr, "bench: %s run %d: other jobs took %.0f%% of the "
		"machine; repeating it.\n", what, r, pct);
	usleep(500 * 1000);
	return true;
}

static double us_or_inf(uint64_t ns)
{
	return ns == UINT64_MAX ? INFINITY : (double)ns / 1e3;
}

int main(void)
{
	static double cap[2][MAX_RUNS], lat[2][MAX_RUNS], lag[2][MAX_RUNS];
	static double cap_p99[2][MAX_RUNS], cap_raw99[2][MAX_RUNS];
	static double raw99[2][MAX_RUNS], tp50[2][MAX_RUNS];
	int budget, redone = 0;
	struct bench_report *rep;
	int runs = bench_runs(), row, err;
	uint64_t late[2] = { 0, 0 };
	double load;
	size_t n;

	if (runs > MAX_RUNS)
		runs = MAX_RUNS;
	n = (size_t)runs;
	if (bench_two_cpus(&cpu_srv, &cpu_cli)) {
		printf("SKIP: the echo benchmark needs two cpus in the "
		       "affinity mask.\n");
		return 77;
	}
	err = clock_calibrate();
	if (err)
		fprintf(stderr, "bench: cycle counter not calibrated (%s); "
			"timing with clock_gettime.\n", strerror(-err));
	warmup_ns = (uint64_t)bench_pick(30e6, 10e6);
	step_ns = (uint64_t)bench_pick(200e6, 50e6);
	grace_ns = 20 * NSEC_PER_MSEC;
	lat_ns = (uint64_t)bench_pick(1e9, 150e6);
	bisect_steps = (int)bench_pick(5, 2);
	pin_or_die(cpu_cli);	/* the client is this thread */
	hist_init(&h_step);
	hist_init(&h_lat[OURS]);
	hist_init(&h_lat[PEER]);
	hist_init(&h_run[OURS]);
	hist_init(&h_run[PEER]);
	budget = (int)bench_pick(2 * runs, 0);

	if (getenv("ECHO_PROBE")) {	/* development: one step per rate */
		char *e = getenv("ECHO_PROBE");

		for (char *t = strtok(e, ","); t; t = strtok(NULL, ",")) {
			for (int k = 0; k < 2; k++) {
				struct server srv;
				struct client cl;
				struct step st;

				server_start(&srv, (enum kind)k);
				client_open(&cl, srv.port, &h_step);
				st = client_step(&cl, atof(t), step_ns);
				setenv("ECHO_BENCH_TRACE", "1", 1);
				print_step((enum kind)k, &st);
				client_close(&cl);
				server_stop(&srv);
			}
		}
		return 0;
	}
	rep = bench_report_open("echo");
	if (!rep)
		return 1;

	/* Phase 1: capacity under the SLO. */
	for (int r = 0; r < runs; r++) {
		enum kind first = r % 2 ? PEER : OURS;
		struct cpu_mark m0 = cpu_mark();

		for (int i = 0; i < 2; i++) {
			enum kind k = i ? !first : first;
			struct capacity c = find_capacity(k);

			cap[k][r] = c.rate;
			cap_p99[k][r] = c.p99_us;
			cap_raw99[k][r] = c.raw_p99_us;
			lag[k][r] = c.lag_us;
		}
		fprintf(stderr, "run %d: capacity ours %.0f epoll %.0f req/s\n",
			r, cap[OURS][r], cap[PEER][r]);
		if (redo_run("capacity", r, others_pct(&m0), &budget)) {
			redone++;
			r--;
		}
	}
	/* Phase 2: latency at half the epoll server's capacity. */
	load = 0.5 * bench_median(cap[PEER], n);
	if (load < MIN_RATE)
		load = MIN_RATE;
	for (int r = 0; r < runs; r++) {
		enum kind first = r % 2 ? PEER : OURS;
		struct cpu_mark m0 = cpu_mark();
		struct step st;
		uint64_t run_late[2] = { 0, 0 };

		hist_reset(&h_run[OURS]);
		hist_reset(&h_run[PEER]);
		for (int i = 0; i < 2; i++) {
			enum kind k = i ? !first : first;

			st = fixed_load(k, load);
			lat[k][r] = st.tp99 / 1e3;
			if (!isfinite(lat[k][r])) {	/* a step gone wrong */
				fprintf(stderr, "bench: %s: late echoes at "
					"the fixed load; using its maximum.\n",
					kind_name[k]);
				lat[k][r] = (double)hist_max(&h_step) / 1e3;
			}
			tp50[k][r] = st.tp50 / 1e3;
			raw99[k][r] = us_or_inf(st.p99);
			run_late[k] = st.late;
		}
		fprintf(stderr, "run %d: at %.0f req/s, typical p99 ours %.1f "
			"epoll %.1f us; plain p99 ours %.1f epoll %.1f us\n", r,
			load, lat[OURS][r], lat[PEER][r], raw99[OURS][r],
			raw99[PEER][r]);
		if (redo_run("latency", r, others_pct(&m0), &budget)) {
			redone++;
			r--;
			continue;
		}
		hist_merge(&h_lat[OURS], &h_run[OURS]);
		hist_merge(&h_lat[PEER], &h_run[PEER]);
		late[OURS] += run_late[OURS];
		late[PEER] += run_late[PEER];
	}

	double o = bench_median(cap[OURS], n), p = bench_median(cap[PEER], n);
	double o99 = bench_median(cap_p99[OURS], n);
	double p99 = bench_median(cap_p99[PEER], n);

	row = bench_report_row(rep, "echo throughput per core", "req/s",
			       BENCH_HIGHER, cap[OURS], n, cap[PEER], n,
			       "epoll server, 1 thread");
	double ol = bench_median(lat[OURS], n), pl = bench_median(lat[PEER], n);

	if (o > 0 && p > 0)
		bench_report_note(rep, row, "target", ">= 1.2x the epoll "
				  "server at equal or lower p99: %s (throughput "
				  "%.2fx; typical p99 at capacity ours %.0f us vs "
				  "epoll %.0f us; at the fixed load ours %.0f us "
				  "vs epoll %.0f us)", o >= 1.2 * p && o99 <= p99 &&
				  ol <= pl ? "met" : "NOT met", o / p, o99, p99,
				  ol, pl);
	else
		bench_report_note(rep, row, "target", ">= 1.2x the epoll "
				  "server: not measured (no rate met the "
				  "bound; machine too disturbed?)");
	bench_report_note(rep, row, "method", "highest offered rate whose "
			  "typical p99 (median over 10 ms slices) from the "
			  "scheduled time is <= %.0f us with <= 1%% late; open "
			  "loop, Poisson, %d connections, 64-byte messages",
			  (double)SLO_NS / 1e3, NCONN);
	bench_report_note(rep, row, "plain p99 at capacity",
			  "ours %.0f us, epoll %.0f us (medians)",
			  bench_median(cap_raw99[OURS], n),
			  bench_median(cap_raw99[PEER], n));
	bench_report_note(rep, row, "client max send lag at capacity",
			  "ours %.0f us, epoll %.0f us (medians)",
			  bench_median(lag[OURS], n), bench_median(lag[PEER], n));
	row = bench_report_row(rep, "echo p99 latency", "us", BENCH_LOWER,
			       lat[OURS], n, lat[PEER], n,
			       "epoll server, 1 thread");
	bench_report_note(rep, row, "offered load", "%.0f req/s (half the "
			  "epoll server's capacity)", load);
	bench_report_note(rep, row, "typical p50", "ours %.1f us, epoll "
			  "%.1f us (medians)", bench_median(tp50[OURS], n),
			  bench_median(tp50[PEER], n));
	bench_report_note(rep, row, "plain p99", "ours %.1f us, epoll %.1f "
			  "us (medians)", bench_median(raw99[OURS], n),
			  bench_median(raw99[PEER], n));
	for (int k = 0; k < 2; k++) {
		char key[64];
		const struct hist *h = &h_lat[k];

		snprintf(key, sizeof(key), "%s plain p50/p99/p99.9",
			 k == OURS ? "ours" : "peer");
		bench_report_note(rep, row, key, "%.1f/%.1f/%.1f us (all "
				  "runs, %" PRIu64 " samples, %" PRIu64
				  " late)",
				  (double)hist_percentile(h, 50) / 1e3,
				  (double)hist_percentile(h, 99) / 1e3,
				  (double)hist_percentile(h, 99.9) / 1e3,
				  hist_count(h), late[k]);
	}

	bench_report_text(rep,
		"Setup: loopback TCP with TCP_NODELAY and CUBIC congestion "
		"control on every socket (the system default here is BBR, "
		"whose pacing delayed sends by its bandwidth estimate and made "
		"both servers' figures drift between runs), %d connections, "
		"64-byte messages echoed byte for byte. Server on cpu %d, "
		"client on "
		"cpu %d. Ours: rt_main() with one vcore, a uthread per "
		"connection looping sys_recv() / sys_send() (the vcore's "
		"io_uring; default idle_poll_ns: poll 50 us, then park in "
		"io_uring_enter). Peer: one pthread, level-triggered "
		"epoll_wait() blocking, one recv() and one send() per readable "
		"socket (non-blocking sockets; a send that would block is "
		"finished on EPOLLOUT before the socket is read again).",
		NCONN, cpu_srv, cpu_cli);
	bench_report_text(rep,
		"Load generator: one plain pthread (not on the runtime), open "
		"loop. Requests arrive as a Poisson process at the offered "
		"rate, round-robin over the connections, and carry their "
		"scheduled send time; latency runs from the scheduled time to "
		"the arrival of the whole echo, so a late send (client or "
		"socket backlog) still counts. The client drives its sockets "
		"through its own io_uring (liburing, DEFER_TASKRUN), one "
		"io_uring_enter per loop turn for all its sends and receives: "
		"a system call costs over 1 us in this VM, and a send + "
		"epoll_wait + recv client saturated before the servers did. "
		"Per connection one send is in flight at a time; messages due "
		"meanwhile leave together in the next one. A step sends %.0f "
		"ms of warm-up, then a %.0f ms window whose requests are "
		"measured; echoes still missing %.0f ms after the window count "
		"as infinitely late. The client then waits for every echo "
		"before the next step.",
		(double)warmup_ns / 1e6, (double)step_ns / 1e6,
		(double)grace_ns / 1e6);
	bench_report_text(rep,
		"Typical percentiles: this 2-cpu machine is shared with other "
		"jobs, whose time slices stall the server or the client for "
		"milliseconds now and then; a plain p99 then measures those "
		"stalls, for either server. So each window is cut into 10 ms "
		"slices by scheduled time, each slice gets its own p50/p99 "
		"(late requests as infinite), and the step's typical p50/p99 "
		"are the medians over slices: a stall spoils a slice or two, "
		"not the figure. Plain percentiles are in the notes.");
	bench_report_text(rep,
		"Throughput per core: the highest offered rate whose typical "
		"p99 stays <= %.0f us with at most 1%% of requests late. Above "
		"capacity the backlog, hence the latency, grows through the "
		"whole window, so the criterion trips about 1%% above "
		"capacity. A failed step is tried once more (a time slice taken "
		"by another job can fail one). Per run and server the rate "
		"doubles from %.0f req/s until a step fails (or halves until "
		"one passes), then %d geometric bisection steps between the last passing and "
		"the first failing rate narrow it to about %.0f%%; the row is "
		"the median over runs of the highest passing rate. The curve "
		"is not monotonic: far enough above capacity, messages pile "
		"up in the sockets and each recv() returns many of them, so a "
		"server may again keep up, in bulk; the search stops at the "
		"first failing rate to stay in the one-message-per-read "
		"regime, but a run that never fails while doubling ends up "
		"there (it shows as a huge top of the spread; the median "
		"ignores it).",
		(double)SLO_NS / 1e3, START_RATE, bisect_steps,
		(pow(2.0, 1.0 / (1 << bisect_steps)) - 1) * 100);
	bench_report_text(rep,
		"p99 latency: both servers at %.0f req/s, half the epoll "
		"server's median capacity from the first phase, %.0f ms per "
		"run; the row is the median over runs of each run's typical "
		"p99.", load, (double)lat_ns / 1e6);
	bench_report_text(rep,
		"Disturbed runs: a run (both servers, in either phase) during "
		"which other processes used more than %.0f%% of the machine's "
		"CPU time (/proc/stat minus this process) is repeated, up to "
		"%d repeats in all (none in the quick version). This run "
		"repeated %d.", DISTURBED_PCT, (int)bench_pick(2 * runs, 0),
		redone);
	return bench_report_close(rep) ? 1 : 0;
}
