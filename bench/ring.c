/* ring.c - `make bench B=ring`: Atoll's SPSC/MPSC rings against a mutex +
 * condvar bounded queue and a pipe, between threads pinned to two cores.
 *
 * Method. Every channel holds 1024 messages (the rings: 1024 slots of 64
 * bytes; the queue: 1024 slots; the pipe: F_SETPIPE_SZ 64 KiB = 1024 x 64
 * bytes). The consumer is the main thread, pinned to the first CPU of the
 * affinity mask; producers are pinned to the next CPU(s).
 *
 *  - Throughput: the producer sends sequence-numbered messages for a fixed
 *    time, then an end marker; the consumer checks every sequence number
 *    (loss or reordering aborts the benchmark) and divides messages
 *    received by the time from the start signal to the end marker.
 *    "single": one message per push/pop, write/read or lock round;
 *    "batch": BATCH messages per push_batch/pop_batch, lock round, or
 *    write/read of BATCH * 64 bytes.
 *  - Latency: ping-pong over two channels of the same kind for a fixed
 *    time; each round trip is timed with fast_ns() on the pinging thread
 *    and half of it (one-way) goes into a histogram.
 *
 * Waiting: our side spins (cpu_relax) on an empty or full ring; the
 * queue's threads sleep on condition variables and the pipe's in read and
 * write, i.e. both peers block in the kernel. That difference is what the
 * comparison measures.
 *
 * Each run measures every variant once, ours and peers back to back
 * (alternating which goes first); the report gives medians over
 * bench_runs() runs.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <atoll/atomic.h>
#include <atoll/clock.h>
#include <atoll/compiler.h>
#include <atoll/hist.h>
#include <atoll/ring.h>

#include "benchlib.h"

#define NSLOTS 1024u
#define BATCH 32u
#define MAX_PROD 2
#define END_SEQ UINT64_MAX
#define LAT_WARMUP 20		/* round trips not recorded */
#define LAT_MIN_SAMPLES 2000	/* past the deadline, until this many... */
#define LAT_MAX_STRETCH 5	/* ...or this many times the duration */

/* One message: 64 bytes on SPSC channels; MPSC channels carry the first
 * RING_MPSC_MSG_SIZE (56) bytes. */
struct bmsg {
	uint64_t seq;
	uint32_t producer;
	uint32_t pad0;
	uint64_t pad[6];
};
BUILD_ASSERT(sizeof(struct bmsg) == RING_SPSC_MSG_SIZE);
BUILD_ASSERT(offsetof(struct bmsg, pad[5]) == RING_MPSC_MSG_SIZE);

enum kind {
	K_SPSC,		/* ours: ring_spsc */
	K_MPSC,		/* ours: ring_mpsc, single messages only */
	K_MUTEX,	/* peer: mutex + condvar bounded queue */
	K_PIPE,		/* peer: pipe(2) */
};

/* ---- the peer: a mutex + condvar bounded queue --------------------------
 * The usual careful version: one lock, two condition variables, waiter
 * counts so that nobody signals when nobody sleeps, signals sent after
 * unlocking, and up to n messages moved per lock round (for batches). */
struct mcq {
	pthread_mutex_t lock;
	pthread_cond_t nonempty;
	pthread_cond_t nonfull;
	/* guarded by lock: */
	uint64_t head, tail;
	unsigned int wait_cons, wait_prod;
	/* fixed at init: */
	uint32_t cap;
	size_t msz;
	struct bmsg *slots;
};

static int mcq_init(struct mcq *q, uint32_t cap, size_t msz)
{
	memset(q, 0, sizeof(*q));
	q->cap = cap;
	q->msz = msz;
	q->slots = aligned_alloc(CACHE_LINE, cap * sizeof(*q->slots));
	if (!q->slots)
		return -ENOMEM;
	memset(q->slots, 0, cap * sizeof(*q->slots));
	pthread_mutex_init(&q->lock, NULL);
	pthread_cond_init(&q->nonempty, NULL);
	pthread_cond_init(&q->nonfull, NULL);
	return 0;
}

static void mcq_destroy(struct mcq *q)
{
	pthread_cond_destroy(&q->nonfull);
	pthread_cond_destroy(&q->nonempty);
	pthread_mutex_destroy(&q->lock);
	free(q->slots);
}

/* Put up to n messages (stride sizeof(struct bmsg)), sleeping while full.
 * Returns how many (>= 1). */
static unsigned int mcq_push(struct mcq *q, const struct bmsg *m,
			     unsigned int n)
{
	unsigned int k;
	bool wake;

	pthread_mutex_lock(&q->lock);
	while (q->tail - q->head == q->cap) {
		q->wait_prod++;
		pthread_cond_wait(&q->nonfull, &q->lock);
		q->wait_prod--;
	}
	k = q->cap - (unsigned int)(q->tail - q->head);
	if (k > n)
		k = n;
	for (unsigned int i = 0; i < k; i++)
		memcpy(&q->slots[(q->tail + i) & (q->cap - 1)], &m[i], q->msz);
	q->tail += k;
	wake = q->wait_cons > 0;
	pthread_mutex_unlock(&q->lock);
	if (wake)
		pthread_cond_signal(&q->nonempty);
	return k;
}

/* Take up to n messages, sleeping while empty. Returns how many (>= 1). */
static unsigned int mcq_pop(struct mcq *q, struct bmsg *m, unsigned int n)
{
	unsigned int k, waiters;

	pthread_mutex_lock(&q->lock);
	while (q->tail == q->head) {
		q->wait_cons++;
		pthread_cond_wait(&q->nonempty, &q->lock);
		q->wait_cons--;
	}
	k = (unsigned int)(q->tail - q->head);
	if (k > n)
		k = n;
	for (unsigned int i = 0; i < k; i++)
		memcpy(&m[i], &q->slots[(q->head + i) & (q->cap - 1)], q->msz);
	q->head += k;
	waiters = q->wait_prod;
	pthread_mutex_unlock(&q->lock);
	/* Several producers may wait (MPSC); k slots freed may serve all. */
	if (waiters > 1)
		pthread_cond_broadcast(&q->nonfull);
	else if (waiters)
		pthread_cond_signal(&q->nonfull);
	return k;
}

/* ---- channels ------------------------------------------------------------ */

/* One direction of communication, of one kind. */
struct chan {
	struct ring_spsc *spsc;
	struct ring_mpsc *mpsc;
	struct mcq q;
	int rfd, wfd;
	size_t carry;		/* pipe: bytes of a partial message */
	unsigned char part[sizeof(struct bmsg)];
};

static void chan_open(struct chan *c, enum kind k)
{
	size_t sz;
	int fds[2], err = 0;

	memset(c, 0, sizeof(*c));
	c->rfd = c->wfd = -1;
	switch (k) {
	case K_SPSC:
		sz = ring_spsc_size(NSLOTS);
		c->spsc = aligned_alloc(CACHE_LINE, sz);
		if (!c->spsc)
			bench_die("cannot allocate a %zu-byte ring.", sz);
		memset(c->spsc, 0, sz);
		err = ring_spsc_init(c->spsc, sz, NSLOTS);
		break;
	case K_MPSC:
		sz = ring_mpsc_size(NSLOTS);
		c->mpsc = aligned_alloc(CACHE_LINE, sz);
		if (!c->mpsc)
			bench_die("cannot allocate a %zu-byte ring.", sz);
		memset(c->mpsc, 0, sz);
		err = ring_mpsc_init(c->mpsc, sz, NSLOTS);
		break;
	case K_MUTEX:
		err = mcq_init(&c->q, NSLOTS, sizeof(struct bmsg));
		break;
	case K_PIPE:
		if (pipe2(fds, O_CLOEXEC))
			bench_die("cannot create a pipe: %s.", strerror(errno));
		c->rfd = fds[0];
		c->wfd = fds[1];
		/* Same capacity as the rings; the default is also 64 KiB, so
		 * a refusal (pipe-max-size) changes nothing. */
		(void)fcntl(c->wfd, F_SETPIPE_SZ,
			    (int)(NSLOTS * sizeof(struct bmsg)));
		break;
	}
	if (err)
		bench_die("cannot set up a channel: %s.", strerror(-err));
}

static void chan_close(struct chan *c, enum kind k)
{
	switch (k) {
	case K_SPSC:
		free(c->spsc);
		break;
	case K_MPSC:
		free(c->mpsc);
		break;
	case K_MUTEX:
		mcq_destroy(&c->q);
		break;
	case K_PIPE:
		close(c->rfd);
		close(c->wfd);
		break;
	}
}

/* Send all n messages, waiting (spinning or sleeping, by kind) for room.
 * Inlined with a constant kind, so each loop below gets its own copy. */
static ALWAYS_INLINE void chan_send(struct chan *c, enum kind k,
				    const struct bmsg *m, unsigned int n)
{
	switch (k) {
	case K_SPSC:
		if (n == 1) {
			while (ring_spsc_push(c->spsc, m))
				cpu_relax();
			return;
		}
		while (n) {
			unsigned int done = ring_spsc_push_batch(c->spsc, m, n);

			m += done;
			n -= done;
			if (n)
				cpu_relax();
		}
		return;
	case K_MPSC:
		BUG_ON(n != 1);
		while (ring_mpsc_push(c->mpsc, m))
			cpu_relax();
		return;
	case K_MUTEX:
		while (n) {
			unsigned int done = mcq_push(&c->q, m, n);

			m += done;
			n -= done;
		}
		return;
	case K_PIPE: {
		const char *p = (const char *)m;
		size_t left = n * sizeof(*m);

		while (left) {
			ssize_t w = write(c->wfd, p, left);

			if (w < 0 && errno == EINTR)
				continue;
			if (w <= 0)
				bench_die("pipe write failed: %s.",
					  strerror(errno));
			p += w;
			left -= (size_t)w;
		}
		return;
	}
	}
}

/* Receive between 1 and max messages, waiting for at least one. */
static ALWAYS_INLINE unsigned int chan_recv(struct chan *c, enum kind k,
					    struct bmsg *m, unsigned int max)
{
	unsigned int n;

	switch (k) {
	case K_SPSC:
		if (max == 1) {
			while (ring_spsc_pop(c->spsc, m))
				cpu_relax();
			return 1;
		}
		while (!(n = ring_spsc_pop_batch(c->spsc, m, max)))
			cpu_relax();
		return n;
	case K_MPSC:
		BUG_ON(max != 1);
		while (ring_mpsc_pop(c->mpsc, m))
			cpu_relax();
		return 1;
	case K_MUTEX:
		return mcq_pop(&c->q, m, max);
	case K_PIPE: {
		/* Whole messages only: a read may end inside one (pipes are
		 * byte streams), so the tail is carried to the next call. */
		char *p = (char *)m;
		size_t want = max * sizeof(*m), have;

		memcpy(p, c->part, c->carry);
		have = c->carry;
		while (have < sizeof(*m)) {
			ssize_t r = read(c->rfd, p + have, want - have);

			if (r < 0 && errno == EINTR)
				continue;
			if (r <= 0)
				bench_die("pipe read failed: %s.",
					  r ? strerror(errno) : "end of file");
			have += (size_t)r;
		}
		n = (unsigned int)(have / sizeof(*m));
		c->carry = have % sizeof(*m);
		memcpy(c->part, p + n * sizeof(*m), c->carry);
		return n;
	}
	}
	return 0;
}

/* ---- threads ---------------------------------------------------------- */

/* What one measurement's threads share. */
struct test {
	enum kind kind;
	unsigned int batch;
	int nprod;
	struct chan ch;		/* throughput: producers -> consumer */
	struct chan back;	/* latency: ponger -> pinger */
	uint32_t ready;		/* workers at the start gate */
	uint32_t go;		/* the start signal */
	uint64_t deadline;	/* fast_ns() time to stop; set before go */
};

struct worker {
	pthread_t th;
	int cpu;
	int id;
	struct test *t;
	void (*fn)(struct test *t, int id);
};

/* Check in at the start gate and wait for the signal. */
static void gate_wait(struct test *t)
{
	/* Release pairs with the acquire load of ready in gate_open(). */
	fetch_add_acq_rel(&t->ready, 1);
	/* Acquire pairs with the store_release of go in gate_open(): the
	 * deadline written before it is visible. */
	while (!load_acquire(&t->go))
		cpu_relax();
}

/* Wait for n workers at the gate, set the deadline and let them go.
 * Returns the start time. */
static uint64_t gate_open(struct test *t, int n, uint64_t dur_ns)
{
	uint64_t t0;

	/* Acquire pairs with the fetch_add in gate_wait(). */
	while (load_acquire(&t->ready) != (uint32_t)n)
		cpu_relax();
	t0 = fast_ns();
	t->deadline = t0 + dur_ns;
	/* Release pairs with the load_acquire of go in gate_wait(). */
	store_release(&t->go, 1);
	return t0;
}

static void *worker_main(void *arg)
{
	struct worker *w = arg;
	int err = bench_pin_cpu(w->cpu);

	if (err)
		bench_die("cannot pin a thread to CPU %d: %s.", w->cpu,
			  strerror(-err));
	w->fn(w->t, w->id);
	return NULL;
}

static void worker_start(struct worker *w)
{
	int err = pthread_create(&w->th, NULL, worker_main, w);

	if (err)
		bench_die("cannot create a thread: %s.", strerror(err));
}

static void worker_join(struct worker *w)
{
	pthread_join(w->th, NULL);
}

/* ---- throughput ---------------------------------------------------------- */

static ALWAYS_INLINE void tput_produce(struct test *t, int id, enum kind k)
{
	struct bmsg buf[BATCH];
	unsigned int b = t->batch;
	uint64_t seq = 0;

	memset(buf, 0, sizeof(buf));
	for (unsigned int i = 0; i < BATCH; i++)
		buf[i].producer = (uint32_t)id;
	gate_wait(t);
	for (uint64_t round = 0; ; round++) {
		for (unsigned int i = 0; i < b; i++)
			buf[i].seq = seq++;
		chan_send(&t->ch, k, buf, b);
		if ((round & 63) == 0 && fast_ns() >= t->deadline)
			break;
	}
	buf[0].seq = END_SEQ;
	chan_send(&t->ch, k, buf, 1);
}

/* Returns messages per second. */
static ALWAYS_INLINE double tput_consume(struct test *t, enum kind k,
					 uint64_t t0)
{
	struct bmsg buf[BATCH];
	uint64_t expect[MAX_PROD] = { 0 }, total = 0;
	int ends = 0;

	while (ends < t->nprod) {
		unsigned int n = chan_recv(&t->ch, k, buf, t->batch);

		for (unsigned int i = 0; i < n; i++) {
			uint32_t p = buf[i].producer;

			if (p >= (uint32_t)t->nprod)
				bench_die("message from unknown producer %u.",
					  p);
			if (buf[i].seq == END_SEQ) {
				ends++;
				continue;
			}
			if (buf[i].seq != expect[p])
				bench_die("producer %u: got message %" PRIu64
					  ", expected %" PRIu64 ".", p,
					  buf[i].seq, expect[p]);
			expect[p]++;
			total++;
		}
	}
	return (double)total * 1e9 / (double)(fast_ns() - t0);
}

/* One copy of the loop per kind (the kind is a constant in each). */
static void produce_spsc(struct test *t, int id)
{
	tput_produce(t, id, K_SPSC);
}

static void produce_mpsc(struct test *t, int id)
{
	tput_produce(t, id, K_MPSC);
}

static void produce_mutex(struct test *t, int id)
{
	tput_produce(t, id, K_MUTEX);
}

static void produce_pipe(struct test *t, int id)
{
	tput_produce(t, id, K_PIPE);
}

static int g_cpus[1 + MAX_PROD];	/* consumer, then producers */
static int g_nprod_mpsc;		/* producers in the MPSC test */
static uint64_t g_dur_ns;		/* length of one measurement */

/* One throughput measurement with nprod producers and messages of msz
 * bytes (64, or 56 for the MPSC ring and its peer). Returns messages per
 * second. */
static double measure_tput(enum kind k, unsigned int batch, int nprod,
			   size_t msz)
{
	static void (*const produce[])(struct test *, int) = {
		[K_SPSC] = produce_spsc, [K_MPSC] = produce_mpsc,
		[K_MUTEX] = produce_mutex, [K_PIPE] = produce_pipe,
	};
	struct test *t = aligned_alloc(CACHE_LINE, ALIGN_UP(sizeof(*t),
							    CACHE_LINE));
	struct worker w[MAX_PROD];
	uint64_t t0;
	double rate = 0;

	if (!t)
		bench_die("out of memory.");
	memset(t, 0, sizeof(*t));
	t->kind = k;
	t->batch = batch;
	t->nprod = nprod;
	chan_open(&t->ch, k);
	if (k == K_MUTEX)
		t->ch.q.msz = msz;
	for (int i = 0; i < nprod; i++) {
		w[i] = (struct worker){ .cpu = g_cpus[1 + i], .id = i, .t = t,
					.fn = produce[k] };
		worker_start(&w[i]);
	}
	t0 = gate_open(t, nprod, g_dur_ns);
	switch (k) {
	case K_SPSC:
		rate = tput_consume(t, K_SPSC, t0);
		break;
	case K_MPSC:
		rate = tput_consume(t, K_MPSC, t0);
		break;
	case K_MUTEX:
		rate = tput_consume(t, K_MUTEX, t0);
		break;
	case K_PIPE:
		rate = tput_consume(t, K_PIPE, t0);
		break;
	}
	for (int i = 0; i < nprod; i++)
		worker_join(&w[i]);
	chan_close(&t->ch, k);
	free(t);
	return rate;
}

/* ---- latency ------------------------------------------------------------- */

static ALWAYS_INLINE void lat_pong(struct test *t, enum kind k)
{
	struct bmsg m;

	gate_wait(t);
	for (;;) {
		chan_recv(&t->ch, k, &m, 1);
		if (m.seq == END_SEQ)
			break;
		chan_send(&t->back, k, &m, 1);
	}
}

/* Records one-way latencies (round trip / 2) into h. */
static ALWAYS_INLINE void lat_ping(struct test *t, enum kind k,
				   struct hist *h)
{
	uint64_t hard = t->deadline + LAT_MAX_STRETCH * g_dur_ns;
	struct bmsg m, r;

	memset(&m, 0, sizeof(m));
	for (uint64_t i = 0; ; i++) {
		uint64_t start = fast_ns(), rtt;

		m.seq = i;
		chan_send(&t->ch, k, &m, 1);
		chan_recv(&t->back, k, &r, 1);
		rtt = fast_ns() - start;
		if (r.seq != i)
			bench_die("ping-pong: got message %" PRIu64
				  ", expected %" PRIu64 ".", r.seq, i);
		if (i >= LAT_WARMUP)
			hist_record(h, rtt / 2);
		/* Slow peers get extra time for a usable p99. */
		if (start >= t->deadline &&
		    (i >= LAT_WARMUP + LAT_MIN_SAMPLES || start >= hard))
			break;
	}
	m.seq = END_SEQ;
	chan_send(&t->ch, k, &m, 1);
}

static void pong_spsc(struct test *t, int id)
{
	(void)id;
	lat_pong(t, K_SPSC);
}

static void pong_mutex(struct test *t, int id)
{
	(void)id;
	lat_pong(t, K_MUTEX);
}

static void pong_pipe(struct test *t, int id)
{
	(void)id;
	lat_pong(t, K_PIPE);
}

/* One latency measurement: fills run (reset first) and adds it to all. */
static void measure_lat(enum kind k, struct hist *run, struct hist *all)
{
	struct test *t = aligned_alloc(CACHE_LINE, ALIGN_UP(sizeof(*t),
							    CACHE_LINE));
	struct worker w;

	if (!t)
		bench_die("out of memory.");
	memset(t, 0, sizeof(*t));
	t->kind = k;
	t->batch = 1;
	t->nprod = 1;
	chan_open(&t->ch, k);
	chan_open(&t->back, k);
	w = (struct worker){ .cpu = g_cpus[1], .t = t,
			     .fn = k == K_SPSC ? pong_spsc :
				   k == K_MUTEX ? pong_mutex : pong_pipe };
	worker_start(&w);
	hist_reset(run);
	gate_open(t, 1, g_dur_ns);
	switch (k) {
	case K_SPSC:
		lat_ping(t, K_SPSC, run);
		break;
	case K_MUTEX:
		lat_ping(t, K_MUTEX, run);
		break;
	default:
		lat_ping(t, K_PIPE, run);
		break;
	}
	worker_join(&w);
	chan_close(&t->back, k);
	chan_close(&t->ch, k);
	free(t);
	hist_merge(all, run);
}

/* ---- main ---------------------------------------------------------------- */

/* The samples of one run, indexed by run. */
struct series {
	double spsc1[64], mutex1[64], pipe1[64];
	double spscb[64], mutexb[64], pipeb[64];
	double mpsc[64], mpsc_mutex[64];
	double lat_spsc[64], lat_mutex[64], lat_pipe[64];
};

static struct hist h_run, h_spsc, h_mutex, h_pipe;

static void run_once(struct series *s, int r)
{
	BENCH_PAIR(r, s->spsc1[r] = measure_tput(K_SPSC, 1, 1, 64),
	     (s->mutex1[r] = measure_tput(K_MUTEX, 1, 1, 64),
	      s->pipe1[r] = measure_tput(K_PIPE, 1, 1, 64)));
	BENCH_PAIR(r, s->spscb[r] = measure_tput(K_SPSC, BATCH, 1, 64),
	     (s->mutexb[r] = measure_tput(K_MUTEX, BATCH, 1, 64),
	      s->pipeb[r] = measure_tput(K_PIPE, BATCH, 1, 64)));
	BENCH_PAIR(r, s->mpsc[r] = measure_tput(K_MPSC, 1, g_nprod_mpsc,
					    RING_MPSC_MSG_SIZE),
	     s->mpsc_mutex[r] = measure_tput(K_MUTEX, 1,
						  g_nprod_mpsc,
						  RING_MPSC_MSG_SIZE));

	BENCH_PAIR(r, (measure_lat(K_SPSC, &h_run, &h_spsc),
	      s->lat_spsc[r] = (double)hist_percentile(&h_run, 50)),
	     (measure_lat(K_MUTEX, &h_run, &h_mutex),
	      s->lat_mutex[r] = (double)hist_percentile(&h_run, 50),
	      measure_lat(K_PIPE, &h_run, &h_pipe),
	      s->lat_pipe[r] = (double)hist_percentile(&h_run, 50)));
}

static void note_pcts(struct bench_report *rep, int row, const char *who,
		      const struct hist *h)
{
	char key[64];

	snprintf(key, sizeof(key), "%s p50/p99/p99.9", who);
	bench_report_note(rep, row, key, "%" PRIu64 "/%" PRIu64 "/%" PRIu64
			  " ns (%" PRIu64 " samples)", hist_percentile(h, 50),
			  hist_percentile(h, 99), hist_percentile(h, 99.9),
			  hist_count(h));
}

int main(void)
{
	static struct series s;
	struct bench_report *rep;
	int runs = bench_runs(), ncpu, err, row;
	size_t n;

	if (runs > 64)
		runs = 64;
	n = (size_t)runs;
	ncpu = bench_cpus(g_cpus, 1 + MAX_PROD);
	if (ncpu < 2) {
		/* Spinning threads sharing one CPU measure the scheduler. */
		printf("SKIP: the ring benchmark needs two CPUs in the "
		       "affinity mask, this process has %d.\n", ncpu);
		return 77;
	}
	g_nprod_mpsc = ncpu - 1 < MAX_PROD ? ncpu - 1 : MAX_PROD;
	g_dur_ns = (uint64_t)bench_pick(300e6, 40e6);
	err = bench_pin_cpu(g_cpus[0]);
	if (err)
		bench_die("cannot pin the main thread to CPU %d: %s.",
			  g_cpus[0], strerror(-err));
	err = clock_calibrate();
	if (err)
		fprintf(stderr, "bench: cycle counter not calibrated (%s); "
			"timing with clock_gettime.\n", strerror(-err));
	hist_init(&h_run);
	hist_init(&h_spsc);
	hist_init(&h_mutex);
	hist_init(&h_pipe);

	rep = bench_report_open("ring");
	if (!rep)
		return 1;

	/* Warm-up, not recorded: page in the code and let clocks ramp. */
	(void)measure_tput(K_SPSC, 1, 1, 64);
	(void)measure_tput(K_MUTEX, 1, 1, 64);

	for (int r = 0; r < runs; r++)
		run_once(&s, r);

	row = bench_report_row(rep, "spsc throughput", "msgs/s", BENCH_HIGHER,
			       s.spsc1, n, s.mutex1, n, "mutex+condvar queue");
	bench_report_note(rep, row, "mode", "one message per push/pop");
	row = bench_report_row(rep, "spsc throughput vs pipe", "msgs/s",
			       BENCH_HIGHER, s.spsc1, n, s.pipe1, n,
			       "pipe, 64-byte write/read");
	bench_report_note(rep, row, "mode", "one message per push/pop");
	row = bench_report_row(rep, "spsc throughput, batch 32", "msgs/s",
			       BENCH_HIGHER, s.spscb, n, s.mutexb, n,
			       "mutex+condvar queue, 32 per lock");
	bench_report_note(rep, row, "mode", "push_batch/pop_batch of 32");
	row = bench_report_row(rep, "spsc throughput, batch 32, vs pipe",
			       "msgs/s", BENCH_HIGHER, s.spscb, n, s.pipeb, n,
			       "pipe, 2048-byte write/read");
	bench_report_note(rep, row, "mode", "push_batch/pop_batch of 32");
	row = bench_report_row(rep, "mpsc throughput", "msgs/s", BENCH_HIGHER,
			       s.mpsc, n, s.mpsc_mutex, n,
			       "mutex+condvar queue");
	bench_report_note(rep, row, "producers", "%d%s", g_nprod_mpsc,
			  g_nprod_mpsc < MAX_PROD ?
			  " (only 2 CPUs: one per thread)" : "");
	bench_report_note(rep, row, "mode", "56-byte messages, one per "
			  "push/pop");
	row = bench_report_row(rep, "spsc one-way latency", "ns", BENCH_LOWER,
			       s.lat_spsc, n, s.lat_mutex, n,
			       "mutex+condvar queue");
	note_pcts(rep, row, "ours", &h_spsc);
	note_pcts(rep, row, "peer", &h_mutex);
	row = bench_report_row(rep, "spsc one-way latency vs pipe", "ns",
			       BENCH_LOWER, s.lat_spsc, n, s.lat_pipe, n,
			       "pipe");
	note_pcts(rep, row, "ours", &h_spsc);
	note_pcts(rep, row, "peer", &h_pipe);

	bench_report_text(rep,
		"Setup: consumer (or pinger) on CPU %d, producer (or ponger) "
		"on CPU %d%s. Every channel holds %u messages of 64 bytes (56 "
		"in the MPSC rows): rings of %u slots, a %u-slot queue, a "
		"%u KiB pipe. Each measurement lasts %.0f ms; every message's "
		"sequence number is checked.",
		g_cpus[0], g_cpus[1], g_nprod_mpsc > 1 ?
		" (the second MPSC producer on the next CPU)" : "",
		NSLOTS, NSLOTS, NSLOTS,
		(unsigned int)(NSLOTS * sizeof(struct bmsg) / 1024),
		(double)g_dur_ns / 1e6);
	bench_report_text(rep,
		"Waiting: our threads spin (cpu_relax) on an empty or full "
		"ring, each on its own core. The mutex+condvar queue sleeps "
		"on condition variables (futex) and the pipe sleeps in "
		"read/write: both peers block in the kernel. That is the "
		"point of the comparison: a spinning ring between dedicated "
		"cores against the blocking primitives a thread-per-request "
		"program uses; it is not a claim about CPU efficiency.");
	bench_report_text(rep,
		"Throughput: messages received per second, from the start "
		"signal to the end marker. 'batch 32' rows move 32 messages "
		"per push_batch/pop_batch on our side, per lock round in the "
		"queue, per 2048-byte write/read on the pipe.");
	bench_report_text(rep,
		"MPSC: %d producer%s through the multi-producer path "
		"(CAS-claimed slots) against the same queue with as many "
		"producers. %s",
		g_nprod_mpsc, g_nprod_mpsc > 1 ? "s" : "",
		g_nprod_mpsc < MAX_PROD ?
		"This machine has 2 CPUs, so one producer: two spinning "
		"producers sharing a core would measure the scheduler's "
		"time slices, not the ring. The row is then the cost of the "
		"MPSC protocol uncontended." : "");
	bench_report_text(rep,
		"Latency: ping-pong over two channels of the same kind; each "
		"round trip is timed with fast_ns() (%s) on the pinging "
		"thread and half of it recorded as the one-way latency in an "
		"HDR histogram (first %d round trips skipped). The row value "
		"is the median over runs of each run's p50; the notes give "
		"p50/p99/p99.9 over all runs.",
		clock_is_tsc() ? "the calibrated cycle counter" :
		"clock_gettime: the cycle counter was not calibrated",
		LAT_WARMUP);
	return bench_report_close(rep) ? 1 : 0;
}
