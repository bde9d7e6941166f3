/* sender.c - loadgen's sender threads: connections, the open-loop
 * schedule, io_uring I/O and latency recording.
 *
 * Design. Each of the T sender threads owns conns/T connections (the first
 * conns % T threads one more), its own io_uring and its own share of the
 * offered rate, rate/T; the T independent Poisson processes add up to one
 * Poisson process at the full rate (with fixed gaps, thread i starts i/T
 * of a gap late, so the sum is evenly spaced too). The main thread only
 * starts the steps and merges the results, through a barrier: it writes
 * the step's start time before the barrier, the senders write their
 * struct lg_step before the next one (pthread_barrier_wait orders both).
 *
 * Open loop. Arrival times are computed, not waited for, and a request
 * is sent as soon as its time has come AND a connection has room for it.
 * "Room" means fewer than `depth` requests outstanding on the
 * connection: with depth 1 (the default) a request whose connection is
 * busy goes to the next free connection in round-robin order, and when
 * every connection is busy the arrival waits in the schedule (an implicit
 * backlog: the next arrival time stays in the past) until a reply frees
 * one. With depth > 1 requests are pipelined: they keep going to one
 * connection until it holds depth outstanding, then to the next, and a
 * full connection is refilled only once half its depth has drained. So
 * requests travel in batches (one send carries what came due since the
 * last; the server reads them together and answers them together) and
 * stay in batches under overload, when replies free slots one at a
 * time: a system call costs over a microsecond in this VM, and one send
 * and one receive per request would make the generator the bottleneck
 * near 130k requests/s against memcached. Latency always runs from the
 * SCHEDULED time to the moment the reply's last byte is read, so time
 * spent waiting for a connection, in the socket or in this program is
 * counted, never hidden. A request sent more than late_ns after its
 * scheduled time is a "late send"; those that waited because every
 * connection was at its depth are counted apart (the server's doing),
 * the rest are the generator falling behind (its own doing).
 *
 * I/O. System calls cost over a microsecond each in this VM, so a thread
 * makes at most ONE io_uring_enter per loop turn, for all its sends and
 * receives, and none in a turn with nothing to submit and no completion
 * work pending: with COOP_TASKRUN | TASKRUN_FLAG the kernel never
 * interrupts the thread to finish a receive, it raises IORING_SQ_TASKRUN
 * in the shared ring and the next turn enters to run that work. So an
 * idle spin is a few loads, not a system call. Per connection one
 * multishot receive stays armed (taking buffers from a provided-buffer
 * ring, so no request is submitted per reply) and at most one send is in
 * flight, so bytes stay in order; requests issued meanwhile wait in the
 * connection's pending buffer and leave together in its next send.
 * Replies are matched to requests in order (memcached answers a
 * connection's requests in order) and checked strictly (mcproto.h).
 *
 * Polling. A thread spins (polls the rings and the clock) while requests
 * are outstanding or the next arrival is within spin_ns; otherwise it
 * sleeps in io_uring_enter until spin_ns before the next arrival or a
 * completion. So at low load the core is free for others, and replies
 * are still seen at once. Spinning is capped at poll_max of every
 * POLL_PERIOD_NS: past that (in cpu time) the thread sleeps until a
 * completion or its next arrival, whatever is outstanding. Without the cap a SCHED_FIFO
 * sender at high load would spin its whole cpu and the kernel's
 * real-time throttle (95% by default) would stop it for 50 ms every
 * second; with it a reply may wait for a wake-up, which is slower than a
 * spin but bounded, and the same for every server measured.
 *
 * A step: t0 is the common start; arrivals in [t0, t0 + warmup) are sent
 * but not recorded, those in the window [t0 + warmup, + duration) are
 * recorded; then the thread waits up to grace_ns for their replies. What
 * is unanswered by then counts as infinitely slow (lg_step_percentile),
 * and the thread drains its connections before the next step.
 */
#include "loadgen.h"

#include <errno.h>
#include <liburing.h>
#include <math.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atoll/clock.h>
#include <atoll/compiler.h>

#include "keys.h"
#include "mcproto.h"

#define PBUF_SIZE 4096		/* a provided receive buffer */
#define PBUF_GROUP 0		/* their buffer group id */
/* Unparsed bytes of a connection: a partial line (< MC_LINE_MAX) and
 * the receive buffer appended to it. */
#define RBUF_SIZE (MC_LINE_MAX + PBUF_SIZE)
#define SBUF_MIN (8 * 1024)
#define CONNECT_TIMEOUT_S 3
#define HANDSHAKE_NS (5 * NSEC_PER_SEC)
#define STALL_NS (10 * NSEC_PER_SEC)	/* no reply for this long: dead */
#define POLL_PERIOD_NS (10 * NSEC_PER_MSEC)	/* the poll_max budget's */
#define POLL_CHECK_NS (250 * NSEC_PER_USEC)	/* how often it is checked */

#define TAG_RECV 0ull
#define TAG_SEND 1ull

enum { REQ_MEASURE = 0, REQ_PRELOAD = 1, REQ_HANDSHAKE = 2 };

struct req {
	uint64_t sched;		/* scheduled send time (fast_ns) */
	uint32_t key;
	uint8_t op;		/* enum mc_op */
	uint8_t kind;		/* REQ_* */
};

struct conn {
	int fd;
	bool queued;		/* in the sender's ready ring */
	bool send_busy;		/* a send is in flight */
	bool dirty;		/* on the dirty list: pending bytes to send */
	bool reading;		/* rd has started on q[head] */
	uint32_t head, tail;	/* q[head..tail): outstanding, oldest first */
	uint32_t plen;		/* pending bytes, not yet in a send */
	uint32_t slen, soff;	/* the send in flight */
	uint32_t rlen;		/* unparsed bytes at the start of rbuf */
	struct req *q;		/* qmask + 1 entries */
	char *pend, *sbuf, *rbuf;
	struct mc_reader rd;
};

struct sender {
	const struct lg_config *cfg;
	const struct keygen *kg;
	const char *value;	/* vmax bytes, what every set stores */
	unsigned id;
	pthread_t th;
	struct io_uring ring;
	struct conn *conns;
	unsigned nconn;
	uint32_t qmask;
	uint32_t bufcap;	/* pend and sbuf size */
	uint32_t maxreq;	/* longest request formatted */
	unsigned *ready;	/* ring of conns with room, round-robin */
	unsigned ready_head, ready_count;
	unsigned *dirty;	/* conns with pending bytes and no send */
	unsigned ndirty;
	struct io_uring_buf_ring *br;	/* provided receive buffers */
	char *pbufs;			/* nbufs x PBUF_SIZE */
	unsigned nbufs;
	struct rng rng;
	uint64_t outstanding;	/* requests sent or pending, unanswered */
	uint64_t last_reply;	/* fast_ns of the last reply (stall check) */
	uint64_t poll_from;	/* start of the current polling period */
	uint64_t poll_cpu0;	/* ...the thread's cpu time then */
	uint64_t poll_checked;	/* when the cpu time was last read */
	bool poll_spent;	/* the period's polling budget is used up */
	/* the current step */
	double gap_ns;		/* mean gap between this thread's arrivals */
	double carry;		/* fraction of a ns not yet added to next */
	uint64_t next;		/* next arrival's scheduled time */
	uint64_t win_lo, win_hi; /* recorded window; 0, 0 outside steps */
	bool backlogged;	/* an arrival found no connection with room */
	struct conn *cur;	/* depth > 1: the connection being filled */
	struct lg_step st;
	/* typical percentiles: per slice of the window (by scheduled time) */
	struct hist *slice;	/* LG_MAX_SLICES, answered latencies */
	uint64_t *slice_sched;	/* requests scheduled in each */
	unsigned nslices;
	uint64_t slice_ns;
};

/* Shared by lg_run() and the sender threads; see the top note. */
static struct {
	struct keygen kg;
	char *value;
	struct sender *s;
	pthread_barrier_t bar;
	uint64_t t0;		/* written before a barrier, read after */
} g;

/* ---- connections -------------------------------------------------------- */

static void set_nodelay(int fd)
{
	int one = 1;

	if (setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one)))
		lg_die("cannot set TCP_NODELAY: %s.", strerror(errno));
}

/* Plain CUBIC for the requests, whatever the system default: BBR (the
 * default here) paces sends by its bandwidth estimate, which delays
 * requests for reasons neither server controls. Best effort. */
static void set_cubic(int fd)
{
	static const char cc[] = "cubic";

	(void)setsockopt(fd, IPPROTO_TCP, TCP_CONGESTION, cc, sizeof(cc) - 1);
}

static int connect_server(const struct lg_config *cfg)
{
	struct timeval tv = { .tv_sec = CONNECT_TIMEOUT_S };
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	if (fd < 0)
		lg_die("cannot create a socket: %s.", strerror(errno));
	/* SO_SNDTIMEO bounds a blocking connect() on Linux. */
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	if (connect(fd, (const struct sockaddr *)&cfg->addr,
		    sizeof(cfg->addr))) {
		int e = errno;

		lg_die("cannot connect to the server at %s: %s.", cfg->server,
		       e == EINPROGRESS || e == EAGAIN ?
		       "no answer within 3 s" : strerror(e));
	}
	set_nodelay(fd);
	set_cubic(fd);
	return fd;
}

static struct io_uring_sqe *get_sqe(struct sender *s)
{
	struct io_uring_sqe *sqe = io_uring_get_sqe(&s->ring);

	if (!sqe) {
		io_uring_submit(&s->ring);
		sqe = io_uring_get_sqe(&s->ring);
		if (!sqe)
			lg_die("io_uring submission queue full.");
	}
	return sqe;
}

/* One multishot receive per connection: it stays armed across replies
 * (no new request and no new poll per reply), taking a buffer from the
 * sender's provided-buffer ring for each completion. */
static void arm_recv(struct sender *s, struct conn *c)
{
	struct io_uring_sqe *sqe = get_sqe(s);

	io_uring_prep_recv_multishot(sqe, c->fd, NULL, 0, 0);
	sqe->flags |= IOSQE_BUFFER_SELECT;
	sqe->buf_group = PBUF_GROUP;
	io_uring_sqe_set_data64(sqe, (uint64_t)(c - s->conns) << 1 | TAG_RECV);
}

static void pbuf_give(struct sender *s, unsigned bid)
{
	io_uring_buf_ring_add(s->br, s->pbufs + (size_t)bid * PBUF_SIZE,
			      PBUF_SIZE, (unsigned short)bid,
			      io_uring_buf_ring_mask(s->nbufs), 0);
	io_uring_buf_ring_advance(s->br, 1);
}

static void arm_send(struct sender *s, struct conn *c)
{
	struct io_uring_sqe *sqe = get_sqe(s);

	io_uring_prep_send(sqe, c->fd, c->sbuf + c->soff, c->slen - c->soff,
			   MSG_NOSIGNAL);
	io_uring_sqe_set_data64(sqe, (uint64_t)(c - s->conns) << 1 | TAG_SEND);
	c->send_busy = true;
}

/* Hand a connection's pending bytes to a send, if none is in flight. */
static void kick_send(struct sender *s, struct conn *c)
{
	char *t;

	if (c->send_busy || !c->plen)
		return;
	t = c->sbuf;		/* swap: pending becomes the send */
	c->sbuf = c->pend;
	c->pend = t;
	c->slen = c->plen;
	c->soff = 0;
	c->plen = 0;
	arm_send(s, c);
}

static void flush_sends(struct sender *s)
{
	for (unsigned i = 0; i < s->ndirty; i++) {
		struct conn *c = &s->conns[s->dirty[i]];

		c->dirty = false;
		kick_send(s, c);
	}
	s->ndirty = 0;
}

static bool has_room(const struct sender *s, const struct conn *c)
{
	return c->tail - c->head < s->cfg->depth &&
	       c->plen + s->maxreq <= s->bufcap;
}

static void ready_push(struct sender *s, struct conn *c)
{
	unsigned i = s->ready_head + s->ready_count++;

	s->ready[i % s->nconn] = (unsigned)(c - s->conns);
	c->queued = true;
}

/* The next connection with room, round-robin. A connection in the ring
 * may have filled up since it was queued (dispatch_due() keeps using the
 * one it has): such entries are dropped here, and requeue() puts the
 * connection back when a reply or a finished send makes room. */
static struct conn *ready_pop(struct sender *s)
{
	while (s->ready_count) {
		struct conn *c = &s->conns[s->ready[s->ready_head]];

		s->ready_head = (s->ready_head + 1) % s->nconn;
		s->ready_count--;
		c->queued = false;
		if (has_room(s, c))
			return c;
	}
	return NULL;
}

/* Put c back among the connections to fill once it has room again; with
 * depth > 1, once half its depth has drained, so that a connection is
 * refilled with a batch, not one request per reply. */
static void requeue(struct sender *s, struct conn *c)
{
	uint32_t refill = s->cfg->depth > 1 ? s->cfg->depth / 2 : 0;

	if (!c->queued && c != s->cur && c->tail - c->head <= refill &&
	    has_room(s, c))
		ready_push(s, c);
}

/* Append one request to c's pending bytes and its queue. */
static void issue(struct sender *s, struct conn *c, enum mc_op op,
		  uint32_t key, uint64_t sched, uint8_t kind)
{
	struct req *r = &c->q[c->tail++ & s->qmask];
	char name[MC_KEY_MAX];
	char *dst = c->pend + c->plen;
	unsigned klen = s->cfg->key_len;
	uint32_t vlen;

	*r = (struct req){ .sched = sched, .key = key, .op = (uint8_t)op,
			   .kind = kind };
	if (op != MC_VERSION)
		key_name(name, klen, key);
	switch (op) {
	case MC_GET:
		c->plen += (uint32_t)mc_format_get(dst, name, klen);
		break;
	case MC_SET:
		vlen = s->cfg->vmin + (uint32_t)rng_below(&s->rng,
				s->cfg->vmax - s->cfg->vmin + 1ull);
		c->plen += (uint32_t)mc_format_set(dst, name, klen, s->value,
						   vlen);
		break;
	case MC_VERSION:
		c->plen += (uint32_t)mc_format_version(dst);
		break;
	}
	s->outstanding++;
	if (!c->dirty && !c->send_busy) {
		c->dirty = true;
		s->dirty[s->ndirty++] = (unsigned)(c - s->conns);
	}
	requeue(s, c);
}

/* ---- replies ------------------------------------------------------------ */

static bool in_window(const struct sender *s, uint64_t t)
{
	return t >= s->win_lo && t < s->win_hi;
}

/* The slice of a scheduled time in the window, or -1 (slices off). */
static int slice_of(const struct sender *s, uint64_t sched)
{
	return s->nslices ? (int)((sched - s->win_lo) / s->slice_ns) : -1;
}

/* An arrival of the window was scheduled (sent or not). */
static void count_scheduled(struct sender *s, uint64_t sched)
{
	int i = slice_of(s, sched);

	s->st.scheduled++;
	if (i >= 0)
		s->slice_sched[i]++;
}

static void complete(struct sender *s, struct conn *c, const struct req *r,
		     enum mc_status status, uint64_t now)
{
	struct lg_step *st = &s->st;

	s->outstanding--;
	s->last_reply = now;
	if (r->kind == REQ_PRELOAD && status != MC_STORED)
		lg_die("the server at %s refused a set while preloading the "
		       "keys (\"%s\"); is it out of memory (memcached -m)?",
		       s->cfg->server, status == MC_FAILED ? c->rd.why :
		       "NOT_STORED");
	if (in_window(s, now))
		st->replies_in_window++;
	if (r->kind == REQ_MEASURE && in_window(s, r->sched)) {
		int i = slice_of(s, r->sched);

		hist_record(&st->hist, now - r->sched);
		if (i >= 0)
			hist_record(&s->slice[i], now - r->sched);
		st->completed++;
		if (r->op == MC_GET)
			st->gets++;
		else
			st->sets++;
		switch (status) {
		case MC_HIT:
			st->hits++;
			break;
		case MC_MISS:
			st->misses++;
			break;
		case MC_NOT_STORED:
			st->not_stored++;
			break;
		case MC_FAILED:
			if (!st->failed++)
				snprintf(st->first_error,
					 sizeof(st->first_error), "%s",
					 c->rd.why);
			break;
		default:
			break;
		}
	}
}

/* Parse c->rbuf[0..rlen): complete every reply in it, keep a partial
 * line. */
static void parse_replies(struct sender *s, struct conn *c, uint64_t now)
{
	size_t pos = 0, len = c->rlen;

	while (pos < len) {
		struct req *r;
		struct mc_expect ex;
		char name[MC_KEY_MAX];
		enum mc_status status = MC_MISS;
		bool done;
		long n;

		if (c->head == c->tail)
			lg_die("the server at %s sent %zu bytes nobody asked "
			       "for.", s->cfg->server, len - pos);
		r = &c->q[c->head & s->qmask];
		if (!c->reading) {
			mc_reader_start(&c->rd);
			c->reading = true;
		}
		ex = (struct mc_expect){ .op = (enum mc_op)r->op,
					 .key = name,
					 .key_len = s->cfg->key_len,
					 .vmin = s->cfg->vmin,
					 .vmax = s->cfg->vmax };
		if (r->op == MC_GET)
			key_name(name, ex.key_len, r->key);
		n = mc_reader_feed(&c->rd, &ex, c->rbuf + pos, len - pos,
				   &done, &status);
		if (n < 0)
			lg_die("the server at %s answered garbage: %s.",
			       s->cfg->server, c->rd.why);
		pos += (size_t)n;
		if (!done)
			break;
		c->reading = false;
		c->head++;
		complete(s, c, r, status, now);
	}
	c->rlen = (uint32_t)(len - pos);
	if (c->rlen)
		memmove(c->rbuf, c->rbuf + pos, c->rlen);
}

static void on_recv(struct sender *s, struct conn *c,
		    const struct io_uring_cqe *cqe, uint64_t now)
{
	int res = cqe->res;

	if (res > 0) {
		unsigned bid = cqe->flags >> IORING_CQE_BUFFER_SHIFT;

		/* The partial line left is < MC_LINE_MAX: room for res. */
		memcpy(c->rbuf + c->rlen, s->pbufs + (size_t)bid * PBUF_SIZE,
		       (size_t)res);
		c->rlen += (uint32_t)res;
		pbuf_give(s, bid);
		parse_replies(s, c, now);
		requeue(s, c);
	} else if (res == 0) {
		lg_die("the server at %s closed a connection.", s->cfg->server);
	} else if (res != -ENOBUFS) {
		lg_die("receiving from the server at %s failed: %s.",
		       s->cfg->server, strerror(-res));
	}
	/* Out of buffers (they are back by now) or ended: arm again. */
	if (!(cqe->flags & IORING_CQE_F_MORE))
		arm_recv(s, c);
}

static void on_send(struct sender *s, struct conn *c, int res)
{
	if (res == -EINTR || res == -EAGAIN)
		res = 0;
	if (res < 0)
		lg_die("sending to the server at %s failed: %s.",
		       s->cfg->server, strerror(-res));
	c->soff += (uint32_t)res;
	if (c->soff < c->slen) {
		arm_send(s, c);		/* the rest, still in order */
		return;
	}
	c->send_busy = false;
	kick_send(s, c);
	requeue(s, c);
}

/* Handle every completion in the ring; returns how many. */
static unsigned reap_cqes(struct sender *s)
{
	struct io_uring_cqe *cqe;
	unsigned head, n = 0;
	uint64_t now = fast_ns();

	io_uring_for_each_cqe(&s->ring, head, cqe) {
		uint64_t d = io_uring_cqe_get_data64(cqe);
		struct conn *c = &s->conns[d >> 1];

		if ((d & 1) == TAG_RECV)
			on_recv(s, c, cqe, now);
		else
			on_send(s, c, cqe->res);
		n++;
	}
	io_uring_cq_advance(&s->ring, n);
	return n;
}

/*
 * One loop turn's I/O: submit what is queued and run the kernel's pending
 * completion work, in one io_uring_enter, but only if there is either
 * (a system call costs over a microsecond here; an idle spin must not
 * make one). With wait_ns, sleep up to that long for a completion
 * instead. Returns how many completions were handled.
 */
static unsigned turn_io(struct sender *s, uint64_t wait_ns)
{
	int r = 0;

	flush_sends(s);
	if (wait_ns) {
		struct __kernel_timespec ts = {
			.tv_sec = (long long)(wait_ns / NSEC_PER_SEC),
			.tv_nsec = (long long)(wait_ns % NSEC_PER_SEC),
		};
		struct io_uring_cqe *cqe;

		r = io_uring_submit_and_wait_timeout(&s->ring, &cqe, 1, &ts,
						     NULL);
	} else if (io_uring_sq_ready(&s->ring) ||
		   /* Acquire: pairs with the kernel's atomic_or of the flag
		    * after it queued the work (COOP_TASKRUN | TASKRUN_FLAG). */
		   (__atomic_load_n(s->ring.sq.kflags, __ATOMIC_ACQUIRE) &
		    IORING_SQ_TASKRUN)) {
		r = io_uring_submit_and_get_events(&s->ring);
	}
	if (r < 0 && r != -ETIME && r != -EINTR && r != -EBUSY &&
	    r != -EAGAIN)
		lg_die("io_uring_enter failed: %s.", strerror(-r));
	return io_uring_cq_ready(&s->ring) ? reap_cqes(s) : 0;
}

/* Reap until nothing is outstanding; die after limit_ns without a reply. */
static void drain(struct sender *s, const char *what)
{
	s->last_reply = fast_ns();
	while (s->outstanding) {
		turn_io(s, 10 * NSEC_PER_MSEC);
		if (s->outstanding && fast_ns() - s->last_reply > STALL_NS)
			lg_die("the server at %s stopped answering %s: %lu "
			       "requests unanswered after %llu s.",
			       s->cfg->server, what,
			       (unsigned long)s->outstanding,
			       STALL_NS / NSEC_PER_SEC);
	}
}

/* ---- set-up ------------------------------------------------------------- */

static void *xcalloc(size_t n, size_t size)
{
	void *p = calloc(n, size);

	if (!p)
		lg_die("out of memory.");
	return p;
}

/* The provided-buffer ring the receives take from: two buffers per
 * connection (a reply being parsed and the next one arriving). */
static void pbufs_setup(struct sender *s)
{
	struct io_uring_buf_reg reg = { .bgid = PBUF_GROUP };
	void *ring;
	int err;

	s->nbufs = 64;
	while (s->nbufs < 2 * s->nconn && s->nbufs < 32768)
		s->nbufs *= 2;
	if (posix_memalign(&ring, 4096, s->nbufs * sizeof(struct io_uring_buf)))
		lg_die("out of memory.");
	s->br = ring;
	s->pbufs = xcalloc(s->nbufs, PBUF_SIZE);
	reg.ring_addr = (uint64_t)(uintptr_t)ring;
	reg.ring_entries = s->nbufs;
	err = io_uring_register_buf_ring(&s->ring, &reg, 0);
	if (err)
		lg_die("cannot register receive buffers with io_uring (Linux "
		       "5.19 or later is needed): %s.", strerror(-err));
	io_uring_buf_ring_init(s->br);
	for (unsigned i = 0; i < s->nbufs; i++)
		io_uring_buf_ring_add(s->br, s->pbufs + (size_t)i * PBUF_SIZE,
				      PBUF_SIZE, (unsigned short)i,
				      io_uring_buf_ring_mask(s->nbufs), (int)i);
	io_uring_buf_ring_advance(s->br, (int)s->nbufs);
}

static void sender_open(struct sender *s)
{
	const struct lg_config *cfg = s->cfg;
	struct io_uring_params par = {
		.flags = IORING_SETUP_SINGLE_ISSUER |
			 IORING_SETUP_COOP_TASKRUN |
			 IORING_SETUP_TASKRUN_FLAG,
	};
	unsigned entries = 64;
	uint32_t qlen = 1;
	int err;

	while (entries < 2 * s->nconn + 16)
		entries *= 2;
	err = io_uring_queue_init_params(entries, &s->ring, &par);
	if (err)
		lg_die("cannot set up an io_uring (Linux 6.1 or later is "
		       "needed): %s.", strerror(-err));
	while (qlen < cfg->depth)
		qlen *= 2;
	s->qmask = qlen - 1;
	s->maxreq = MC_REQ_OVERHEAD + cfg->vmax;
	s->bufcap = 2 * s->maxreq > SBUF_MIN ? 2 * s->maxreq : SBUF_MIN;
	pbufs_setup(s);
	if (cfg->slice_ns) {
		s->slice = xcalloc(LG_MAX_SLICES, sizeof(*s->slice));
		s->slice_sched = xcalloc(LG_MAX_SLICES,
					 sizeof(*s->slice_sched));
	}
	s->conns = xcalloc(s->nconn, sizeof(*s->conns));
	s->ready = xcalloc(s->nconn, sizeof(*s->ready));
	s->dirty = xcalloc(s->nconn, sizeof(*s->dirty));
	for (unsigned i = 0; i < s->nconn; i++) {
		struct conn *c = &s->conns[i];

		c->q = xcalloc(qlen, sizeof(*c->q));
		c->pend = xcalloc(1, s->bufcap);
		c->sbuf = xcalloc(1, s->bufcap);
		c->rbuf = xcalloc(1, RBUF_SIZE);
		c->fd = connect_server(cfg);
		ready_push(s, c);
		arm_recv(s, c);
	}
}

static void sender_close(struct sender *s)
{
	for (unsigned i = 0; i < s->nconn; i++)
		shutdown(s->conns[i].fd, SHUT_RDWR);
	io_uring_queue_exit(&s->ring);
	for (unsigned i = 0; i < s->nconn; i++) {
		struct conn *c = &s->conns[i];

		close(c->fd);
		free(c->q);
		free(c->pend);
		free(c->sbuf);
		free(c->rbuf);
	}
	free(s->conns);
	free(s->ready);
	free(s->dirty);
	free(s->br);
	free(s->pbufs);
	free(s->slice);
	free(s->slice_sched);
}

/* "version" on every connection: proves the server speaks the protocol
 * before any figure is taken. */
static void handshake(struct sender *s)
{
	uint64_t until = fast_ns() + HANDSHAKE_NS;

	for (unsigned i = 0; i < s->nconn; i++)
		issue(s, &s->conns[i], MC_VERSION, 0, 0, REQ_HANDSHAKE);
	while (s->outstanding) {
		turn_io(s, NSEC_PER_MSEC);
		if (s->outstanding && fast_ns() > until)
			lg_die("the server at %s accepted the connections but "
			       "did not answer 'version' within %llu s; is it "
			       "a memcached server?", s->cfg->server,
			       HANDSHAKE_NS / NSEC_PER_SEC);
	}
}

/* Set keys id, id + T, id + 2T, ... (closed loop, depth per conn). */
static void preload(struct sender *s)
{
	uint64_t key = s->id, stride = s->cfg->threads;

	s->last_reply = fast_ns();
	while (key < s->cfg->keys || s->outstanding) {
		struct conn *c;

		while (key < s->cfg->keys && (c = ready_pop(s))) {
			issue(s, c, MC_SET, (uint32_t)key, 0, REQ_PRELOAD);
			key += stride;
		}
		turn_io(s, s->outstanding ? NSEC_PER_MSEC : 0);
		if (fast_ns() - s->last_reply > STALL_NS)
			lg_die("the server at %s stopped answering while the "
			       "keys were preloaded.", s->cfg->server);
	}
}

/* ---- a step ------------------------------------------------------------- */

static void advance(struct sender *s)
{
	double gap = s->cfg->fixed ? s->gap_ns :
		     -log(rng_unit(&s->rng)) * s->gap_ns;

	s->carry += gap;
	s->next += (uint64_t)s->carry;
	s->carry -= (double)(uint64_t)s->carry;
}

/* Send every arrival that is due and has a connection. Returns whether
 * any was sent. */
static bool dispatch_due(struct sender *s, uint64_t now)
{
	struct lg_step *st = &s->st;
	bool any = false;
	struct conn *c = s->cur;

	while (s->next <= now && s->next < s->win_hi) {
		uint64_t lag = now - s->next;
		bool get;

		/* With depth > 1 requests keep going to one connection until
		 * it is full, so they travel (and are answered) in batches. */
		if (!c || !has_room(s, c))
			c = ready_pop(s);
		if (!c) {
			s->backlogged = true;
			break;
		}
		get = rng_unit(&s->rng) <= s->cfg->get_ratio;
		issue(s, c, get ? MC_GET : MC_SET,
		      (uint32_t)keygen_next(s->kg, &s->rng), s->next,
		      REQ_MEASURE);
		if (s->next >= s->win_lo) {
			count_scheduled(s, s->next);
			if (lag > s->cfg->late_ns) {
				st->late++;
				st->late_waited += s->backlogged;
			}
			if (lag > st->max_lag_ns)
				st->max_lag_ns = lag;
			if (!s->backlogged && lag > st->max_gen_lag_ns)
				st->max_gen_lag_ns = lag;
		}
		advance(s);
		any = true;
	}
	if (s->cfg->depth > 1 && c != s->cur) {
		struct conn *old = s->cur;

		s->cur = c;
		if (old)
			requeue(s, old);
	}
	if (s->next > now)
		s->backlogged = false;
	return any;
}

static void step_reset(struct sender *s, double rate, uint64_t t0)
{
	struct lg_step *st = &s->st;
	double per_thread = rate / s->cfg->threads;

	memset(st, 0, offsetof(struct lg_step, hist));
	hist_reset(&st->hist);
	st->offered = rate;
	st->window_ns = s->cfg->duration_ns;
	s->gap_ns = 1e9 / per_thread;
	s->carry = 0;
	s->next = t0;
	s->win_lo = t0 + s->cfg->warmup_ns;
	s->win_hi = s->win_lo + s->cfg->duration_ns;
	s->backlogged = false;
	s->nslices = 0;
	if (s->cfg->slice_ns) {
		/* At most LG_MAX_SLICES: longer windows get longer slices. */
		s->slice_ns = s->cfg->slice_ns;
		if (s->cfg->duration_ns / s->slice_ns >= LG_MAX_SLICES)
			s->slice_ns = s->cfg->duration_ns / LG_MAX_SLICES + 1;
		s->nslices = (unsigned)((s->cfg->duration_ns + s->slice_ns - 1) /
					s->slice_ns);
		for (unsigned i = 0; i < s->nslices; i++) {
			hist_reset(&s->slice[i]);
			s->slice_sched[i] = 0;
		}
	}
	if (s->cfg->fixed)	/* stagger the threads' combs */
		s->carry = s->gap_ns * s->id / s->cfg->threads;
	advance(s);
}

/* Nanoseconds this thread has waited runnable but not running (the
 * kernel's schedstat run delay), or UINT64_MAX when unknown. */
static uint64_t run_delay_ns(void)
{
	unsigned long long cpu, delay;
	FILE *f = fopen("/proc/thread-self/schedstat", "re");
	int n;

	if (!f)
		return UINT64_MAX;
	n = fscanf(f, "%llu %llu", &cpu, &delay);
	fclose(f);
	return n == 2 ? delay : UINT64_MAX;
}

/* The calling thread's cpu time; a system call, so called sparingly. */
static uint64_t thread_cpu_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
	return (uint64_t)ts.tv_sec * NSEC_PER_SEC + (uint64_t)ts.tv_nsec;
}

/*
 * Whether this period's polling budget is spent. The budget is of cpu time
 * (what the kernel's real-time throttle counts, softirq work done on the
 * thread's behalf included), read every POLL_CHECK_NS, so it can be
 * overrun by that much at most.
 */
static bool poll_budget_spent(struct sender *s, uint64_t now)
{
	if (now - s->poll_from >= POLL_PERIOD_NS) {
		s->poll_from = s->poll_checked = now;
		s->poll_cpu0 = thread_cpu_ns();
		s->poll_spent = false;
	} else if (!s->poll_spent && now - s->poll_checked >= POLL_CHECK_NS) {
		s->poll_checked = now;
		s->poll_spent = (thread_cpu_ns() - s->poll_cpu0) * 100 >=
				POLL_PERIOD_NS * s->cfg->poll_max;
	}
	return s->poll_spent;
}

/*
 * How long this turn may sleep in io_uring_enter (0: spin). It sleeps when
 * nothing is outstanding and the next arrival is beyond spin_ns, or, until
 * the period ends or the next arrival, when the polling budget is spent.
 */
static uint64_t turn_wait_ns(struct sender *s, uint64_t now, bool sent)
{
	uint64_t until;

	if (sent)
		return 0;		/* there is a send to submit now */
	if (!s->outstanding && s->next > now + s->cfg->spin_ns)
		return s->next - now - s->cfg->spin_ns;
	if (!poll_budget_spent(s, now))
		return 0;
	/* An arrival already due waits for a connection, so for a reply:
	 * only a future one bounds the sleep. */
	until = s->poll_from + POLL_PERIOD_NS;
	if (s->next > now && s->next < until)
		until = s->next;
	return until > now ? until - now : 0;
}

static void run_step(struct sender *s, double rate, uint64_t t0)
{
	const struct lg_config *cfg = s->cfg;
	uint64_t hard, prev = fast_ns(), idle = 0, delay0, delay1;
	bool worked = true;

	step_reset(s, rate, t0);
	delay0 = run_delay_ns();
	hard = s->win_hi + cfg->grace_ns;
	for (;;) {
		uint64_t now = fast_ns(), wait = 0;
		bool sent;

		if (!worked && now > t0)
			idle += now - (prev > t0 ? prev : t0);
		prev = now;
		sent = dispatch_due(s, now);
		if ((s->next >= s->win_hi && !s->outstanding) || now >= hard)
			break;
		wait = turn_wait_ns(s, now, sent);
		worked = turn_io(s, wait) || sent;
	}
	/* Arrivals never sent are scheduled all the same, unanswered, and
	 * the latest sends of all. */
	for (; s->next < s->win_hi; advance(s)) {
		if (s->next < s->win_lo)
			continue;
		count_scheduled(s, s->next);
		s->st.late++;
		s->st.late_waited += s->backlogged;
	}
	s->st.busy_frac = 1.0 - (double)idle / (double)(prev - t0);
	delay1 = run_delay_ns();
	s->st.preempted_frac = delay0 == UINT64_MAX || delay1 == UINT64_MAX ?
			       NAN : (double)(delay1 - delay0) /
				     (double)(fast_ns() - t0);
	s->win_lo = s->win_hi = 0;	/* replies from here on: not recorded */
	drain(s, "after a step");
}

/* ---- threads ------------------------------------------------------------ */

static void barrier(void)
{
	pthread_barrier_wait(&g.bar);
}

static void sender_setup_thread(const struct sender *s)
{
	const struct lg_config *cfg = s->cfg;
	int err;

	if (cfg->ncpus) {
		int cpu = cfg->cpus[s->id % cfg->ncpus];
		cpu_set_t set;

		CPU_ZERO(&set);
		CPU_SET(cpu, &set);
		err = pthread_setaffinity_np(pthread_self(), sizeof(set), &set);
		if (err)
			lg_die("cannot pin sender %u to cpu %d: %s.", s->id,
			       cpu, strerror(err));
	}
	if (cfg->fifo_prio) {
		struct sched_param sp = { .sched_priority = cfg->fifo_prio };

		err = pthread_setschedparam(pthread_self(), SCHED_FIFO, &sp);
		if (err)
			lg_die("cannot run at SCHED_FIFO priority %d: %s%s.",
			       cfg->fifo_prio, strerror(err), err == EPERM ?
			       " (it needs root or CAP_SYS_NICE)" : "");
	}
}

static void *sender_main(void *arg)
{
	struct sender *s = arg;

	sender_setup_thread(s);
	sender_open(s);
	handshake(s);
	barrier();			/* everyone connected */
	if (s->cfg->preload)
		preload(s);
	barrier();			/* every key set */
	for (unsigned i = 0; i < s->cfg->nrates; i++) {
		barrier();		/* g.t0 is written */
		run_step(s, s->cfg->rates[i], g.t0);
		barrier();		/* s->st is complete */
		barrier();		/* main has read it */
	}
	sender_close(s);
	return NULL;
}

/* ---- lg_run ------------------------------------------------------------- */

void lg_step_merge(struct lg_step *dst, const struct lg_step *src)
{
	dst->scheduled += src->scheduled;
	dst->completed += src->completed;
	dst->replies_in_window += src->replies_in_window;
	dst->gets += src->gets;
	dst->sets += src->sets;
	dst->hits += src->hits;
	dst->misses += src->misses;
	dst->not_stored += src->not_stored;
	dst->failed += src->failed;
	dst->late += src->late;
	dst->late_waited += src->late_waited;
	if (src->max_lag_ns > dst->max_lag_ns)
		dst->max_lag_ns = src->max_lag_ns;
	if (src->max_gen_lag_ns > dst->max_gen_lag_ns)
		dst->max_gen_lag_ns = src->max_gen_lag_ns;
	if (src->busy_frac > dst->busy_frac)
		dst->busy_frac = src->busy_frac;
	if (src->preempted_frac > dst->preempted_frac)
		dst->preempted_frac = src->preempted_frac;
	if (!dst->first_error[0])
		memcpy(dst->first_error, src->first_error,
		       sizeof(dst->first_error));
	hist_merge(&dst->hist, &src->hist);
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

/* Median of v[0..n), n > 0; sorts v. INFINITY sorts last. */
static double median(double *v, unsigned n)
{
	qsort(v, n, sizeof(*v), cmp_double);
	return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

static double pct_or_inf(const struct hist *h, uint64_t sched, double p)
{
	uint64_t ns = lg_percentile(h, sched, p);

	return ns == UINT64_MAX ? INFINITY : (double)ns;
}

/* Fill st's typical percentiles from the senders' slices (see
 * loadgen.h); slices nothing was scheduled in are left out. Main thread,
 * between the barriers that bracket the senders' step. */
static void typical_percentiles(const struct lg_config *cfg,
				struct lg_step *st)
{
	static struct hist h;
	static double v50[LG_MAX_SLICES], v99[LG_MAX_SLICES];
	static double v999[LG_MAX_SLICES];
	unsigned n = 0;

	st->typ_p50 = st->typ_p99 = st->typ_p999 = NAN;
	st->slices = 0;
	for (unsigned j = 0; j < g.s[0].nslices; j++) {
		uint64_t sched = 0;

		hist_init(&h);
		for (unsigned k = 0; k < cfg->threads; k++) {
			hist_merge(&h, &g.s[k].slice[j]);
			sched += g.s[k].slice_sched[j];
		}
		if (!sched)
			continue;
		v50[n] = pct_or_inf(&h, sched, 50);
		v99[n] = pct_or_inf(&h, sched, 99);
		v999[n] = pct_or_inf(&h, sched, 99.9);
		n++;
	}
	if (!n)
		return;
	st->slices = n;
	st->typ_p50 = median(v50, n);
	st->typ_p99 = median(v99, n);
	st->typ_p999 = median(v999, n);
}

/* Enough file descriptors for every connection. */
static void raise_fd_limit(unsigned conns)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl))
		return;
	if (rl.rlim_cur < conns + 64 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
}

static void start_senders(const struct lg_config *cfg)
{
	g.s = xcalloc(cfg->threads, sizeof(*g.s));
	for (unsigned i = 0; i < cfg->threads; i++) {
		struct sender *s = &g.s[i];
		int err;

		s->cfg = cfg;
		s->kg = &g.kg;
		s->value = g.value;
		s->id = i;
		s->nconn = cfg->conns / cfg->threads +
			   (i < cfg->conns % cfg->threads);
		s->rng.s = cfg->seed * 0x2545f4914f6cdd1dull + i + 1;
		err = pthread_create(&s->th, NULL, sender_main, s);
		if (err)
			lg_die("cannot start a sender thread: %s.",
			       strerror(err));
	}
}

void lg_run(const struct lg_config *cfg, struct lg_step *steps)
{
	uint64_t t;
	int err;

	err = keygen_init(&g.kg, cfg->keys, cfg->zipf);
	if (err)
		lg_die("bad key space: %s.", strerror(-err));
	g.value = xcalloc(1, cfg->vmax + 1);
	for (uint32_t i = 0; i < cfg->vmax; i++)
		g.value[i] = (char)('a' + i % 26);
	raise_fd_limit(cfg->conns);
	if (pthread_barrier_init(&g.bar, NULL, cfg->threads + 1))
		lg_die("cannot create a barrier.");
	start_senders(cfg);
	barrier();			/* connected */
	t = now_ns();
	barrier();			/* preloaded */
	if (cfg->preload && !cfg->quiet)
		printf("# preloaded %llu keys in %.2f s\n",
		       (unsigned long long)cfg->keys,
		       (double)(now_ns() - t) / 1e9);
	if (!cfg->quiet)
		report_header(stdout);
	for (unsigned i = 0; i < cfg->nrates; i++) {
		g.t0 = fast_ns() + 2 * NSEC_PER_MSEC;
		barrier();		/* start */
		barrier();		/* done */
		memcpy(&steps[i], &g.s[0].st, sizeof(steps[i]));
		for (unsigned k = 1; k < cfg->threads; k++)
			lg_step_merge(&steps[i], &g.s[k].st);
		typical_percentiles(cfg, &steps[i]);
		barrier();		/* read */
		if (!cfg->quiet)
			report_step(stdout, &steps[i]);
	}
	for (unsigned i = 0; i < cfg->threads; i++)
		pthread_join(g.s[i].th, NULL);
	pthread_barrier_destroy(&g.bar);
	free(g.s);
	free(g.value);
}
