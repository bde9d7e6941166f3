/* rt.c - `make bench B=rt`: the uthread runtime's basic costs against the
 * pthread equivalents, in the same run.
 *
 * Rows (ours vs peer):
 *  - uthread yield switch: two uthreads on one vcore yielding to each other,
 *    ns per switch (elapsed / switches the vcore counted) vs two pthreads
 *    pinned to one cpu handing a futex word back and forth (a wakes b, then
 *    waits), ns per hand-off.
 *  - uthread create+join vs pthread_create+pthread_join, on one core.
 *  - mutex handoff: two threads on one core pass ownership strictly back and
 *    forth through three mutexes (below), uth_mutex vs pthread_mutex.
 *  - condvar ping-pong: a turn variable under a mutex, each side waits on
 *    its own condition variable and signals the other's, uth_cond vs
 *    pthread_cond.
 *  - cross-vcore wake: a uthread on one vcore wakes (uth_cond_signal) a
 *    uthread waiting on the other, whose vcore is idle and polling; ns from
 *    just before the signal to the first instruction of the woken uthread,
 *    both read from the TSC (fast_ns). Peer: a pthread on the other cpu
 *    signals a pthread_cond a pthread waits on.
 *  - memory per idle uthread: RSS growth (/proc/self/statm) for 10 000
 *    uthreads blocked on a condition variable, per uthread, vs 10 000
 *    pthreads (default attributes) blocked on a pthread_cond. Measured in
 *    a forked child each time so that neither side reuses the other's
 *    pages (2 000 in the quick version).
 *
 * Mutex handoff protocol. Threads T0 and T1 and mutexes m[0..2]; T0 starts
 * holding m0 and m2, T1 holding m1. Step i (i = 0, 1, 2, ...) of each
 * thread works on m[i % 3]: T0 unlocks on even steps and locks on odd ones,
 * T1 the opposite. Every lock of step i waits for the other thread's unlock
 * of step i, so ownership moves strictly back and forth, each thread does
 * exactly the same operations, and each step is one blocking lock plus one
 * hand-off to a sleeper. On one core each step is one context switch.
 * ns per handoff = elapsed / steps (both threads' steps counted once).
 *
 * Single-core rows run the runtime with one vcore (pinned to the first cpu)
 * and pin both pthreads to that same cpu. Batches are timed in short
 * chunks and a run takes its median chunk (see "chunks"). Each run
 * measures ours and the peer back to back (order alternating); rows are
 * medians over runs. RT_BENCH_TRACE=1 prints how long each part took.
 */
#include <errno.h>
#include <inttypes.h>
#include <linux/futex.h>
#include <pthread.h>
#include <sched.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atoll/atomic.h>
#include <atoll/clock.h>
#include <atoll/compiler.h>
#include <atoll/hist.h>
#include <atoll/rt.h>
#include <atoll/sched.h>
#include <atoll/sync.h>
#include <atoll/uthread.h>
#include <atoll/vcore.h>

#include "benchlib.h"

#define MAX_RUNS 64
#define WAKE_SETTLE_NS 20000	/* waker waits this long after "waiting" */

/* Operations per chunk (see "chunks"): each chunk lasts tens of us. */
#define K_YIELD 500	/* rounds of 2 switches */
#define K_FUTEX 8	/* rounds of 2 hand-offs */
#define K_CJ 200
#define K_PCJ 2
#define K_MTX 150	/* 2k hand-offs */
#define K_PMTX 6
#define K_CV 150	/* 2k hand-offs */
#define K_PCV 6

/* Sizes of one measurement, set in main() (full or quick). */
static long n_yield;		/* yields per uthread */
static long n_futex;		/* rounds (2 hand-offs each) */
static long n_cj, n_pcj;	/* create+join rounds */
static long n_mtx, n_pmtx;	/* mutex steps per thread (multiple of 3) */
static long n_cv, n_pcv;	/* condvar passes per thread */
static long n_wake, n_pwake;	/* cross-core wake-ups */
static long n_lat;		/* timed round trips for percentiles */
static int n_mem;		/* idle threads in the memory row */

static int cpu_a, cpu_b;	/* first and second cpu of the mask */

/* Samples, one per run. */
static struct {
	double yield[MAX_RUNS], futex[MAX_RUNS];
	double cj[MAX_RUNS], pcj[MAX_RUNS];
	double mtx[MAX_RUNS], pmtx[MAX_RUNS];
	double cv[MAX_RUNS], pcv[MAX_RUNS];
	double wake[MAX_RUNS], pwake[MAX_RUNS];
	double mem[MAX_RUNS], pmem[MAX_RUNS];
	uint64_t yield_switches;	/* of the last run: sanity */
	long wake_skipped;		/* rounds the wakee ran elsewhere */
} s;

/* Percentile histograms over all runs. */
static struct hist h_cj, h_pcj, h_mtx, h_pmtx, h_cv, h_pcv, h_wake, h_pwake;

static void pin_or_die(int cpu)
{
	int err = bench_pin_cpu(cpu);

	if (err)
		bench_die("cannot pin a thread to cpu %d: %s.", cpu,
			  strerror(-err));
}

static pthread_t start_thread(void *(*fn)(void *), void *arg)
{
	pthread_t t;
	int err = pthread_create(&t, NULL, fn, arg);

	if (err)
		bench_die("pthread_create: %s.", strerror(err));
	return t;
}

static void uth_start(struct uthread **u, void *(*fn)(void *), void *arg)
{
	int err = uthread_create(u, NULL, fn, arg);

	if (err)
		bench_die("uthread_create: %s.", strerror(-err));
}

static void uth_wait(struct uthread *u)
{
	int err = uthread_join(u, NULL);

	if (err)
		bench_die("uthread_join: %s.", strerror(-err));
}

/* ---- futex ------------------------------------------------------------- */

static void futex_wait(uint32_t *addr, uint32_t val)
{
	syscall(SYS_futex, addr, FUTEX_WAIT_PRIVATE, val, NULL, NULL, 0);
}

static void futex_wake(uint32_t *addr, int n)
{
	syscall(SYS_futex, addr, FUTEX_WAKE_PRIVATE, n, NULL, NULL, 0);
}

/* ---- chunks ------------------------------------------------------------ */

/* A batch is timed in short chunks (tens of microseconds): the timing
 * thread stamps fast_ns() every so many operations and each chunk gives
 * ns per operation. A run's value is the median chunk, so the time slices
 * other processes take on this shared machine (milliseconds, every few
 * milliseconds) spoil a few chunks, not the run. */
#define MAX_CHUNKS 8192

struct chunks {
	uint64_t last;
	size_t n;
	double per;		/* operations per chunk */
	double v[MAX_CHUNKS];
};

static struct chunks g_chunks;

static void chunks_start(struct chunks *c, double ops_per_chunk)
{
	c->n = 0;
	c->per = ops_per_chunk;
	c->last = fast_ns();
}

static inline void chunks_tick(struct chunks *c)
{
	uint64_t t = fast_ns();

	if (c->n < MAX_CHUNKS)
		c->v[c->n++] = (double)(t - c->last) / c->per;
	c->last = t;
}

static double chunks_median(const struct chunks *c)
{
	if (!c->n)
		bench_die("a batch was shorter than one chunk.");
	return bench_median(c->v, c->n);
}

/* ---- generic two-party pieces ------------------------------------------ */

/* What a pair of threads (either kind) share. */
struct pair {
	CACHE_ALIGNED uint32_t ready;	/* start gate */
	uint32_t turn;			/* futex, condvar: whose turn */
	long n;				/* rounds / steps / passes */
	long k;				/* T0 ticks a chunk every k of them */
	bool timed;			/* T0 times each round trip... */
	struct hist *h;			/* ...into this */
	/* ours */
	struct uth_mutex um[3];
	struct uth_cond uc[2];
	/* peer */
	pthread_mutex_t pm[3];
	pthread_cond_t pc[2];
};

struct party {
	struct pair *p;
	int me;
};

/* Both parties arrive, then go; `yield` lets the other run on one core. */
#define GATE(p, yield_stmt)                                                 \
	do {                                                                 \
		fetch_add_acq_rel(&(p)->ready, 1);                           \
		while (load_acquire(&(p)->ready) < 2)                        \
			yield_stmt;                                          \
	} while (0)

static void pair_reset(struct pair *p, long n, long k, bool timed,
		       struct hist *h)
{
	memset(p, 0, sizeof(*p));
	p->n = n;
	p->k = k;
	p->timed = timed;
	p->h = h;
	for (int i = 0; i < 3; i++) {
		uth_mutex_init(&p->um[i]);
		pthread_mutex_init(&p->pm[i], NULL);
	}
	for (int i = 0; i < 2; i++) {
		uth_cond_init(&p->uc[i]);
		pthread_cond_init(&p->pc[i], NULL);
	}
}

/* ---- yield switch ------------------------------------------------------ */

struct yjob {
	long n;
	long k;		/* 0: do not time */
};

static void *yielder(void *arg)
{
	struct yjob *j = arg;

	if (j->k)
		chunks_start(&g_chunks, 2.0 * (double)j->k);
	for (long i = 1; i <= j->n; i++) {
		uthread_yield();
		/* Between two returns of ours: our switch out and the
		 * other's, 2 switches. */
		if (j->k && i % j->k == 0)
			chunks_tick(&g_chunks);
	}
	return NULL;
}

static double ours_yield(void)
{
	struct sched_vcore_stats st0, st1;
	struct yjob ja = { n_yield, K_YIELD }, jb = { n_yield, 0 };
	struct uthread *a, *b;

	sched_vcore_stats((unsigned)vcore_id(), &st0);
	uth_start(&a, yielder, &ja);
	uth_start(&b, yielder, &jb);
	uth_wait(a);
	uth_wait(b);
	sched_vcore_stats((unsigned)vcore_id(), &st1);
	s.yield_switches = st1.switches - st0.switches;
	/* 2 per round, plus a few to start and end. */
	if (s.yield_switches < 2 * (uint64_t)n_yield ||
	    s.yield_switches > 2 * (uint64_t)n_yield + 8)
		bench_die("yield: %" PRIu64 " switches for %ld rounds.",
			  s.yield_switches, n_yield);
	return chunks_median(&g_chunks);
}

static void *futex_party(void *arg)
{
	struct party *pa = arg;
	struct pair *p = pa->p;
	uint32_t me = (uint32_t)pa->me, other = 1 - me;

	pin_or_die(cpu_a);
	GATE(p, sched_yield());
	if (me == 0)
		chunks_start(&g_chunks, 2.0 * (double)p->k);
	for (long i = 1; i <= p->n; i++) {
		uint32_t t;

		while ((t = load_acquire(&p->turn)) != me)
			futex_wait(&p->turn, t);
		store_release(&p->turn, other);
		futex_wake(&p->turn, 1);
		if (me == 0 && i % p->k == 0)
			chunks_tick(&g_chunks);
	}
	return NULL;
}

static double peer_futex(void)
{
	static struct pair p;
	struct party pa[2] = { { &p, 0 }, { &p, 1 } };
	pthread_t t[2];

	pair_reset(&p, n_futex, K_FUTEX, false, NULL);
	for (int i = 0; i < 2; i++)
		t[i] = start_thread(futex_party, &pa[i]);
	for (int i = 0; i < 2; i++)
		pthread_join(t[i], NULL);
	return chunks_median(&g_chunks);
}

/* ---- create + join ----------------------------------------------------- */

static void *nop(void *arg)
{
	return arg;
}

static double ours_cj(void)
{
	double r;

	chunks_start(&g_chunks, K_CJ);
	for (long i = 1; i <= n_cj; i++) {
		struct uthread *u;

		uth_start(&u, nop, NULL);
		uth_wait(u);
		if (i % K_CJ == 0)
			chunks_tick(&g_chunks);
	}
	r = chunks_median(&g_chunks);
	/* A shorter pass timing each one, for the percentiles. */
	for (long i = 0; i < n_lat; i++) {
		struct uthread *u;
		uint64_t a = fast_ns();

		uth_start(&u, nop, NULL);
		uth_wait(u);
		hist_record(&h_cj, fast_ns() - a);
	}
	return r;
}

static void *peer_cj_thread(void *arg)
{
	double *out = arg;

	pin_or_die(cpu_a);
	chunks_start(&g_chunks, K_PCJ);
	for (long i = 1; i <= n_pcj; i++) {
		pthread_join(start_thread(nop, NULL), NULL);
		if (i % K_PCJ == 0)
			chunks_tick(&g_chunks);
	}
	*out = chunks_median(&g_chunks);
	for (long i = 0; i < n_pcj / 4; i++) {
		uint64_t a = fast_ns();

		pthread_join(start_thread(nop, NULL), NULL);
		hist_record(&h_pcj, fast_ns() - a);
	}
	return NULL;
}

static double peer_cj(void)
{
	double r = 0;

	pthread_join(start_thread(peer_cj_thread, &r), NULL);
	return r;
}

/* ---- mutex handoff ----------------------------------------------------- */

/* One thread's part of the three-mutex rotation (see the top note): 2n
 * steps. T0 ticks a chunk every 2k steps (2k hand-offs); the timed
 * variant instead records each two-step round trip of T0, halved. */
#define MUTEX_ROTATION(name, LOCK, UNLOCK, M, YIELD)                          \
	static void name(struct pair *p, int me)                              \
	{                                                                      \
		long steps = 2 * p->n, k2 = 2 * p->k;                          \
		bool chunk = me == 0 && !p->timed;                             \
		bool timed = me == 0 && p->timed;                              \
		uint64_t a = 0;                                                \
                                                                               \
		if (me == 0) {                                                 \
			LOCK(&p->M[0]);                                        \
			LOCK(&p->M[2]);                                        \
		} else {                                                       \
			LOCK(&p->M[1]);                                        \
		}                                                              \
		GATE(p, YIELD);                                                \
		if (chunk)                                                     \
			chunks_start(&g_chunks, (double)k2);                   \
		for (long i = 0; i < steps; i++) {                             \
			if (((i & 1) == 0) == (me == 0)) {                     \
				if (chunk && i && i % k2 == 0)                 \
					chunks_tick(&g_chunks);                \
				if (timed)                                     \
					a = fast_ns();                         \
				UNLOCK(&p->M[i % 3]);                          \
			} else {                                               \
				LOCK(&p->M[i % 3]);                            \
				if (timed)                                     \
					hist_record(p->h,                      \
						    (fast_ns() - a) / 2);      \
			}                                                      \
		}                                                              \
		/* 2n is a multiple of 6: back to the starting holdings. */   \
		if (me == 0) {                                                 \
			UNLOCK(&p->M[0]);                                      \
			UNLOCK(&p->M[2]);                                      \
		} else {                                                       \
			UNLOCK(&p->M[1]);                                      \
		}                                                              \
	}

MUTEX_ROTATION(uth_rotation, uth_mutex_lock, uth_mutex_unlock, um,
	       uthread_yield())
MUTEX_ROTATION(pth_rotation, pthread_mutex_lock, pthread_mutex_unlock, pm,
	       sched_yield())

/* The condvar ping-pong: n passes per thread, 2n hand-offs. T0 ticks a
 * chunk every k passes (2k hand-offs) or, timed, records each pass of
 * its own (a round trip, two hand-offs), halved. */
#define CV_PINGPONG(name, LOCK, UNLOCK, WAIT, SIGNAL, M, C, YIELD)             \
	static void name(struct pair *p, int me)                              \
	{                                                                      \
		uint32_t other = 1 - (uint32_t)me;                             \
		bool chunk = me == 0 && !p->timed;                             \
		bool timed = me == 0 && p->timed;                              \
		uint64_t a = 0;                                                \
                                                                               \
		GATE(p, YIELD);                                                \
		if (chunk)                                                     \
			chunks_start(&g_chunks, 2.0 * (double)p->k);           \
		for (long i = 1; i <= p->n; i++) {                             \
			LOCK(&p->M);                                           \
			while (p->turn != (uint32_t)me)                        \
				WAIT(&p->C[me], &p->M);                        \
			if (timed) {                                           \
				uint64_t b = fast_ns();                        \
				if (i > 1)                                     \
					hist_record(p->h, (b - a) / 2);        \
				a = b;                                         \
			}                                                      \
			p->turn = other;                                       \
			SIGNAL(&p->C[other]);                                  \
			UNLOCK(&p->M);                                         \
			if (chunk && i % p->k == 0)                            \
				chunks_tick(&g_chunks);                        \
		}                                                              \
	}

CV_PINGPONG(uth_pingpong, uth_mutex_lock, uth_mutex_unlock, uth_cond_wait,
	    uth_cond_signal, um[0], uc, uthread_yield())
CV_PINGPONG(pth_pingpong, pthread_mutex_lock, pthread_mutex_unlock,
	    pthread_cond_wait, pthread_cond_signal, pm[0], pc, sched_yield())

enum pair_kind { PK_MUTEX, PK_CV };

struct pair_job {
	struct pair *p;
	int me;
	enum pair_kind kind;
};

static void *uth_pair_main(void *arg)
{
	struct pair_job *j = arg;

	if (j->kind == PK_MUTEX)
		uth_rotation(j->p, j->me);
	else
		uth_pingpong(j->p, j->me);
	return NULL;
}

static void *pth_pair_main(void *arg)
{
	struct pair_job *j = arg;

	pin_or_die(cpu_a);
	if (j->kind == PK_MUTEX)
		pth_rotation(j->p, j->me);
	else
		pth_pingpong(j->p, j->me);
	return NULL;
}

/* The rotation needs 2n to be a multiple of 6. */
static long mult3(long n)
{
	return n - n % 3 > 0 ? n - n % 3 : 3;
}

/* A chunked batch of n (k per chunk), then a timed pass of n_timed. */
static double ours_pair(enum pair_kind kind, long n, long k, long n_timed,
			struct hist *h)
{
	static struct pair p;
	struct pair_job j[2] = { { &p, 0, kind }, { &p, 1, kind } };
	struct uthread *u[2];
	double r = 0;

	for (int timed = 0; timed < 2; timed++) {
		pair_reset(&p, mult3(timed ? n_timed : n), k, timed, h);
		for (int i = 0; i < 2; i++)
			uth_start(&u[i], uth_pair_main, &j[i]);
		for (int i = 0; i < 2; i++)
			uth_wait(u[i]);
		if (!timed)
			r = chunks_median(&g_chunks);
	}
	return r;
}

static double peer_pair(enum pair_kind kind, long n, long k, long n_timed,
			struct hist *h)
{
	static struct pair p;
	struct pair_job j[2] = { { &p, 0, kind }, { &p, 1, kind } };
	pthread_t t[2];
	double r = 0;

	for (int timed = 0; timed < 2; timed++) {
		pair_reset(&p, mult3(timed ? n_timed : n), k, timed, h);
		for (int i = 0; i < 2; i++)
			t[i] = start_thread(pth_pair_main, &j[i]);
		for (int i = 0; i < 2; i++)
			pthread_join(t[i], NULL);
		if (!timed)
			r = chunks_median(&g_chunks);
	}
	return r;
}

/* ---- cross-core wake --------------------------------------------------- */

struct wake {
	/* wakee's side, written under the mutex */
	uint32_t waiting;
	uint32_t go;
	/* published by the wakee after it ran: seq then time */
	CACHE_ALIGNED uint64_t run_seq;
	uint64_t run_at;
	/* the waker's */
	CACHE_ALIGNED uint64_t sig_at;
	uint32_t on_other;	/* ours: the waker reached the other vcore */
	uint32_t elsewhere;	/* ours: this round's wakee ran off its vcore */
	long skipped;		/* rounds not recorded because of that */
	int home;		/* ours: main's vcore, the wakee's */
	long n;
	struct hist *h;
	double p50;		/* of this run */
	struct uth_mutex um;
	struct uth_cond uc;
	pthread_mutex_t pm;
	pthread_cond_t pc;
};

/* The waker: for each round wait until the wakee sleeps, let it settle
 * WAKE_SETTLE_NS, set go, stamp and signal, then spin until it ran. */
#define WAKER(name, TRYLOCK, UNLOCK, SIGNAL, M, C)                            \
	static void name(struct wake *w)                                      \
	{                                                                      \
		struct hist *run = malloc(sizeof(*run));                       \
                                                                               \
		if (!run)                                                      \
			bench_die("out of memory.");                           \
		hist_init(run);                                                \
		for (long i = 1; i <= w->n; i++) {                             \
			while (!load_acquire(&w->waiting))                     \
				cpu_relax();                                   \
			delay_ns(WAKE_SETTLE_NS);                              \
			/* Free by now (the wakee released it in the wait); */\
			/* spin, never block: the waker must keep its vcore. */\
			while (!TRYLOCK(&w->M))                                \
				cpu_relax();                                   \
			w->go = 1;                                             \
			w->waiting = 0;                                        \
			UNLOCK(&w->M);                                         \
			w->sig_at = fast_ns();                                 \
			SIGNAL(&w->C);                                         \
			while (load_acquire(&w->run_seq) != (uint64_t)i)       \
				cpu_relax();                                   \
			uint64_t d = w->run_at > w->sig_at ?                   \
				     w->run_at - w->sig_at : 0;                \
			if (w->elsewhere) {                                    \
				w->skipped++;                                  \
				continue;                                      \
			}                                                      \
			hist_record(w->h, d);                                  \
			hist_record(run, d);                                   \
		}                                                              \
		if (w->skipped > w->n / 10)                                    \
			bench_die("cross-vcore wake: the wakee ran on the "    \
				  "waker's vcore in %ld of %ld rounds.",       \
				  w->skipped, w->n);                           \
		w->p50 = (double)hist_percentile(run, 50);                     \
		free(run);                                                     \
	}

#define WAKEE(name, LOCK, UNLOCK, WAIT, M, C, CHECK)                          \
	static void name(struct wake *w)                                      \
	{                                                                      \
		for (long i = 1; i <= w->n; i++) {                             \
			uint64_t t;                                            \
                                                                               \
			LOCK(&w->M);                                           \
			store_release(&w->waiting, 1);                         \
			do {                                                   \
				WAIT(&w->C, &w->M);                            \
			} while (!w->go);                                      \
			t = fast_ns();                                         \
			w->go = 0;                                             \
			UNLOCK(&w->M);                                         \
			w->elsewhere = CHECK;                                  \
			w->run_at = t;                                         \
			store_release(&w->run_seq, (uint64_t)i);               \
		}                                                              \
	}

#define PTH_TRYLOCK(m) (pthread_mutex_trylock(m) == 0)

WAKER(uth_waker, uth_mutex_trylock, uth_mutex_unlock, uth_cond_signal, um,
      uc)
WAKER(pth_waker, PTH_TRYLOCK, pthread_mutex_unlock, pthread_cond_signal,
      pm, pc)
WAKEE(uth_wakee, uth_mutex_lock, uth_mutex_unlock, uth_cond_wait, um, uc,
      vcore_id() != w->home)
WAKEE(pth_wakee, pthread_mutex_lock, pthread_mutex_unlock, pthread_cond_wait,
      pm, pc, 0)

static void *uth_waker_main(void *arg)
{
	struct wake *w = arg;

	/* Created on main's vcore, stolen by the idle other one while main
	 * spins. */
	if (vcore_id() == w->home)
		bench_die("cross-vcore wake: the waker runs on main's vcore "
			  "%d.", vcore_id());
	store_release(&w->on_other, 1);
	uth_waker(w);
	return NULL;
}

static void *uth_wakee_main(void *arg)
{
	uth_wakee(arg);
	return NULL;
}

static int ours_wake_main(void *arg)
{
	struct wake *w = arg;
	struct uthread *waker, *wakee;
	uint64_t until = fast_ns() + 5 * NSEC_PER_SEC;

	/* Main may start on either vcore (the idle one can steal it). */
	w->home = vcore_id();
	uth_start(&waker, uth_waker_main, w);
	/* Keep this vcore busy until the other one has taken the waker. */
	while (!load_acquire(&w->on_other)) {
		cpu_relax();
		if (fast_ns() > until)
			bench_die("cross-vcore wake: the other vcore never "
				  "took the waker.");
	}
	/* The other vcore now spins in the waker and never takes work: the
	 * wakee runs here, and after each wake-up this vcore (polling,
	 * idle) steals it back from the waker's queue, where the default
	 * 2LS put it. */
	uth_start(&wakee, uth_wakee_main, w);
	uth_wait(wakee);
	uth_wait(waker);
	return 0;
}

static void wake_reset(struct wake *w, long n, struct hist *h)
{
	memset(w, 0, sizeof(*w));
	w->n = n;
	w->h = h;
	uth_mutex_init(&w->um);
	uth_cond_init(&w->uc);
	pthread_mutex_init(&w->pm, NULL);
	pthread_cond_init(&w->pc, NULL);
}

static double ours_wake(void)
{
	static struct wake w;
	struct rt_config cfg = {
		.nr_vcores = 2,
		/* Idle vcores poll and never park during the test. */
		.idle_poll_ns = 60 * NSEC_PER_SEC,
	};
	int err;

	wake_reset(&w, n_wake, &h_wake);
	err = rt_main(&cfg, ours_wake_main, &w);
	if (err)
		bench_die("cross-vcore wake: rt_main: %s.", strerror(-err));
	s.wake_skipped += w.skipped;
	return w.p50;
}

static void *pth_waker_main(void *arg)
{
	pin_or_die(cpu_b);
	pth_waker(arg);
	return NULL;
}

static void *pth_wakee_main(void *arg)
{
	pin_or_die(cpu_a);
	pth_wakee(arg);
	return NULL;
}

static double peer_wake(void)
{
	static struct wake w;
	pthread_t a, b;

	wake_reset(&w, n_pwake, &h_pwake);
	a = start_thread(pth_wakee_main, &w);
	b = start_thread(pth_waker_main, &w);
	pthread_join(a, NULL);
	pthread_join(b, NULL);
	return w.p50;
}

/* ---- memory per idle thread -------------------------------------------- */

static long rss_bytes(void)
{
	long size, rss;
	FILE *f = fopen("/proc/self/statm", "r");

	if (!f)
		bench_die("cannot open /proc/self/statm: %s.", strerror(errno));
	if (fscanf(f, "%ld %ld", &size, &rss) != 2)
		bench_die("cannot parse /proc/self/statm.");
	fclose(f);
	return rss * sysconf(_SC_PAGESIZE);
}

struct idle {
	uint32_t started;
	uint32_t release;	/* never set: the child exits instead */
	struct uth_mutex um;
	struct uth_cond uc;
	pthread_mutex_t pm;
	pthread_cond_t pc;
	long rss0;
	int n;
	int fd;			/* where the child writes its result */
};

/* Send (rss_now - rss0) / n to the parent and end the child at once: the
 * idle threads are never released, so nobody waits for 10k exits and
 * munmaps (each a TLB shoot-down) that this row does not measure. */
static void __attribute__((noreturn)) mem_report(struct idle *d)
{
	double v = (double)(rss_bytes() - d->rss0) / d->n;

	if (write(d->fd, &v, sizeof(v)) != sizeof(v))
		_exit(1);
	_exit(0);
}

static void *uth_idler(void *arg)
{
	struct idle *d = arg;

	uth_mutex_lock(&d->um);
	d->started++;
	while (!d->release)
		uth_cond_wait(&d->uc, &d->um);
	uth_mutex_unlock(&d->um);
	return NULL;
}

static int ours_mem_main(void *arg)
{
	struct idle *d = arg;
	struct uthread **u = calloc((size_t)d->n, sizeof(*u));

	if (!u)
		bench_die("out of memory.");
	memset(u, 0xff, (size_t)d->n * sizeof(*u)); /* commit it now */
	d->rss0 = rss_bytes();
	for (int i = 0; i < d->n; i++)
		uth_start(&u[i], uth_idler, d);
	/* One vcore: each yield lets the queued uthreads run and block. */
	while (load_acquire(&d->started) < (uint32_t)d->n)
		uthread_yield();
	mem_report(d);
}

static void *pth_idler(void *arg)
{
	struct idle *d = arg;

	pthread_mutex_lock(&d->pm);
	d->started++;
	while (!d->release)
		pthread_cond_wait(&d->pc, &d->pm);
	pthread_mutex_unlock(&d->pm);
	return NULL;
}

/* In the child: measure and exit. */
static void __attribute__((noreturn)) child_mem(bool ours, int fd)
{
	static struct idle d;
	int err;

	memset(&d, 0, sizeof(d));
	d.n = n_mem;
	d.fd = fd;
	uth_mutex_init(&d.um);
	uth_cond_init(&d.uc);
	pthread_mutex_init(&d.pm, NULL);
	pthread_cond_init(&d.pc, NULL);
	if (ours) {
		struct rt_config cfg = { .nr_vcores = 1 };

		err = rt_main(&cfg, ours_mem_main, &d);
		bench_die("memory: rt_main: %s.", strerror(-err));
	}
	pthread_t *t = calloc((size_t)d.n, sizeof(*t));

	if (!t)
		bench_die("out of memory.");
	memset(t, 0xff, (size_t)d.n * sizeof(*t));
	d.rss0 = rss_bytes();
	for (int i = 0; i < d.n; i++)
		t[i] = start_thread(pth_idler, &d);
	for (;;) {
		pthread_mutex_lock(&d.pm);
		bool all = d.started == (uint32_t)d.n;
		pthread_mutex_unlock(&d.pm);
		if (all)
			break;
		usleep(1000);
	}
	mem_report(&d);
}

/* Run child_mem(ours) in a fresh child process; returns bytes per thread. */
static double measure_mem(bool ours)
{
	int fds[2], st;
	double v = -1;
	pid_t pid;

	if (pipe(fds))
		bench_die("pipe: %s.", strerror(errno));
	fflush(NULL);
	pid = fork();
	if (pid < 0)
		bench_die("fork: %s.", strerror(errno));
	if (pid == 0) {
		close(fds[0]);
		child_mem(ours, fds[1]);
	}
	close(fds[1]);
	if (read(fds[0], &v, sizeof(v)) != sizeof(v))
		v = -1;
	close(fds[0]);
	if (waitpid(pid, &st, 0) < 0 || !WIFEXITED(st) || WEXITSTATUS(st) ||
	    v < 0)
		bench_die("memory measurement (%s) failed.",
			  ours ? "uthreads" : "pthreads");
	return v;
}

/* ---- one run ----------------------------------------------------------- */

struct single {
	int r;
};

/* Everything ours that runs on one vcore, in one runtime. */
static int ours_single_main(void *arg)
{
	int r = ((struct single *)arg)->r;

	s.yield[r] = ours_yield();
	s.cj[r] = ours_cj();
	s.mtx[r] = ours_pair(PK_MUTEX, n_mtx, K_MTX, n_lat, &h_mtx);
	s.cv[r] = ours_pair(PK_CV, n_cv, K_CV, n_lat, &h_cv);
	return 0;
}

static void ours_single(int r)
{
	struct rt_config cfg = { .nr_vcores = 1 };
	struct single a = { r };
	int err = rt_main(&cfg, ours_single_main, &a);

	if (err)
		bench_die("rt_main: %s.", strerror(-err));
}

static void peer_single(int r)
{
	s.futex[r] = peer_futex();
	s.pcj[r] = peer_cj();
	s.pmtx[r] = peer_pair(PK_MUTEX, n_pmtx, K_PMTX, n_lat / 4, &h_pmtx);
	s.pcv[r] = peer_pair(PK_CV, n_pcv, K_PCV, n_lat / 4, &h_pcv);
}

#define TIMED(stmt)                                                           \
	do {                                                                  \
		uint64_t t_ = now_ns();                                       \
		stmt;                                                         \
		if (getenv("RT_BENCH_TRACE"))                                 \
			fprintf(stderr, "  %-40s %8.1f ms\n", #stmt,          \
				(double)(now_ns() - t_) / 1e6);               \
	} while (0)

static void run_once(int r)
{
	if (r % 2 == 0) {
		TIMED(ours_single(r));
		TIMED(peer_single(r));
		TIMED(s.wake[r] = ours_wake());
		TIMED(s.pwake[r] = peer_wake());
		TIMED(s.mem[r] = measure_mem(true));
		TIMED(s.pmem[r] = measure_mem(false));
	} else {
		TIMED(peer_single(r));
		TIMED(ours_single(r));
		TIMED(s.pwake[r] = peer_wake());
		TIMED(s.wake[r] = ours_wake());
		TIMED(s.pmem[r] = measure_mem(false));
		TIMED(s.mem[r] = measure_mem(true));
	}
}

/* ---- report ------------------------------------------------------------ */

static void note_pcts(struct bench_report *rep, int row, const char *who,
		      const struct hist *h)
{
	char key[64];

	snprintf(key, sizeof(key), "%s p50/p99", who);
	bench_report_note(rep, row, key, "%" PRIu64 "/%" PRIu64 " ns (%"
			  PRIu64 " samples)", hist_percentile(h, 50),
			  hist_percentile(h, 99), hist_count(h));
}

static void note_target(struct bench_report *rep, int row, double ours,
			double peer, double abs_max, double min_ratio)
{
	double ratio = peer / ours;
	bool ok = ours <= abs_max && ratio >= min_ratio;

	bench_report_note(rep, row, "target",
			  "<= %.0f ns and >= %.0fx the peer: %s (%.1f ns, "
			  "%.0fx)", abs_max, min_ratio, ok ? "met" : "NOT met",
			  ours, ratio);
}

int main(void)
{
	struct bench_report *rep;
	int runs = bench_runs(), row, err;
	size_t n;

	if (runs > MAX_RUNS)
		runs = MAX_RUNS;
	n = (size_t)runs;
	if (bench_two_cpus(&cpu_a, &cpu_b)) {
		printf("SKIP: the rt benchmark needs two cpus in the affinity "
		       "mask.\n");
		return 77;
	}
	err = clock_calibrate();
	if (err)
		fprintf(stderr, "bench: cycle counter not calibrated (%s); "
			"timing with clock_gettime.\n", strerror(-err));
	n_yield = (long)bench_pick(2e6, 2e5);
	n_futex = (long)bench_pick(1e5, 1e4);
	n_cj = (long)bench_pick(1e6, 1e5);
	n_pcj = (long)bench_pick(5e3, 1e3);
	n_mtx = (long)bench_pick(6e5, 6e4);
	n_pmtx = (long)bench_pick(6e4, 6e3);
	n_cv = (long)bench_pick(5e5, 5e4);
	n_pcv = (long)bench_pick(5e4, 5e3);
	n_wake = (long)bench_pick(2e3, 3e2);
	n_pwake = n_wake;
	n_lat = (long)bench_pick(6e4, 6e3);
	n_mem = (int)bench_pick(10000, 2000);
	hist_init(&h_cj);
	hist_init(&h_pcj);
	hist_init(&h_mtx);
	hist_init(&h_pmtx);
	hist_init(&h_cv);
	hist_init(&h_pcv);
	hist_init(&h_wake);
	hist_init(&h_pwake);

	rep = bench_report_open("rt");
	if (!rep)
		return 1;

	for (int r = 0; r < runs; r++) {
		run_once(r);
		fprintf(stderr, "run %d: yield %.1f/%.0f cj %.0f/%.0f mutex "
			"%.0f/%.0f cv %.0f/%.0f wake %.0f/%.0f mem %.0f/%.0f\n",
			r, s.yield[r], s.futex[r], s.cj[r], s.pcj[r], s.mtx[r],
			s.pmtx[r], s.cv[r], s.pcv[r], s.wake[r], s.pwake[r],
			s.mem[r], s.pmem[r]);
	}

	row = bench_report_row(rep, "uthread yield switch", "ns", BENCH_LOWER,
			       s.yield, n, s.futex, n, "pthread futex handoff");
	note_target(rep, row, bench_median(s.yield, n),
		    bench_median(s.futex, n), 30, 50);
	bench_report_note(rep, row, "method", "%ld yields per uthread, "
			  "chunks of %d switches (%" PRIu64 " switches counted "
			  "by the vcore); peer: %ld rounds, chunks of %d "
			  "hand-offs, both threads on cpu %d", n_yield,
			  2 * K_YIELD, s.yield_switches, n_futex,
			  2 * K_FUTEX, cpu_a);
	row = bench_report_row(rep, "uthread create+join", "ns", BENCH_LOWER,
			       s.cj, n, s.pcj, n, "pthread_create+join");
	note_target(rep, row, bench_median(s.cj, n), bench_median(s.pcj, n),
		    200, 100);
	note_pcts(rep, row, "ours", &h_cj);
	note_pcts(rep, row, "peer", &h_pcj);
	row = bench_report_row(rep, "mutex handoff", "ns", BENCH_LOWER,
			       s.mtx, n, s.pmtx, n,
			       "pthread_mutex, same protocol, one cpu");
	note_pcts(rep, row, "ours", &h_mtx);
	note_pcts(rep, row, "peer", &h_pmtx);
	row = bench_report_row(rep, "condvar ping-pong", "ns", BENCH_LOWER,
			       s.cv, n, s.pcv, n,
			       "pthread_cond + pthread_mutex, one cpu");
	note_pcts(rep, row, "ours", &h_cv);
	note_pcts(rep, row, "peer", &h_pcv);
	row = bench_report_row(rep, "cross-vcore wake", "ns", BENCH_LOWER,
			       s.wake, n, s.pwake, n,
			       "pthread_cond_signal to the other cpu");
	note_pcts(rep, row, "ours", &h_wake);
	note_pcts(rep, row, "peer", &h_pwake);
	if (s.wake_skipped)
		bench_report_note(rep, row, "rounds skipped", "%ld (the wakee "
				  "ran on the waker's vcore)", s.wake_skipped);
	row = bench_report_row(rep, "memory per idle uthread", "bytes",
			       BENCH_LOWER, s.mem, n, s.pmem, n,
			       "pthread, default attributes (committed RSS)");
	bench_report_note(rep, row, "threads", "%d", n_mem);

	bench_report_text(rep,
		"Single-core rows (yield, create+join, mutex, condvar) run "
		"the runtime with one vcore, pinned to cpu %d, and pin both "
		"pthreads of the peer to the same cpu %d, so each hand-off is "
		"a context switch on one core in both cases. Each batch is "
		"timed in chunks of tens of microseconds (fast_ns() stamped "
		"every k operations by one of the threads: ours %d yield "
		"switches, %d create+joins, %d mutex or condvar hand-offs; "
		"peer %d, %d, %d, %d), a run's value is its median chunk "
		"(elapsed / operations), and rows are medians over runs. The "
		"time slices that other processes take on this shared 2-cpu "
		"machine (milliseconds each) then spoil a few chunks rather "
		"than every run's mean: the rows are the uncontended cost. "
		"p50/p99 come from a "
		"separate, shorter pass in "
		"which each operation (create+join) or each round trip of two "
		"hand-offs (halved: mutex, condvar) is timed with fast_ns(), "
		"whose own cost (~10 ns) is included.", cpu_a, cpu_a,
		2 * K_YIELD, K_CJ, 2 * K_MTX, 2 * K_FUTEX, K_PCJ, 2 * K_PMTX,
		2 * K_PCV);
	bench_report_text(rep,
		"Yield switch: two uthreads each call uthread_yield() %ld "
		"times; a round of the timing uthread (its yield until its "
		"next) is 2 switches, checked against the vcore's switch "
		"count (sched_vcore_stats). Peer: two pthreads pass a futex "
		"word back and forth (store the other's turn, FUTEX_WAKE, then "
		"FUTEX_WAIT until it is ours again): one kernel context switch "
		"per hand-off.", n_yield);
	bench_report_text(rep,
		"Mutex handoff: threads T0 and T1 pass ownership through three "
		"mutexes m0..m2. T0 starts holding m0 and m2, T1 holding m1; "
		"step i of each thread works on m[i mod 3], T0 unlocking on "
		"even steps and locking on odd ones, T1 the reverse. Every lock "
		"of step i waits for the other thread's unlock of step i, so "
		"ownership moves strictly back and forth, both threads run the "
		"same code, and each hand-off is one blocking lock woken by an "
		"unlock (uth_mutex hands the mutex to the waiter; glibc wakes "
		"it to retake a free mutex: either way strict alternation). "
		"Condvar ping-pong: a turn variable under one mutex; each side "
		"waits on its own condition variable until the turn is its, "
		"flips it, signals the other's variable and unlocks. Both rows "
		"give ns per hand-off.");
	bench_report_text(rep,
		"Cross-vcore wake: the runtime runs 2 vcores (cpus %d and %d) "
		"with idle_poll_ns = 60 s, so an idle vcore polls and never "
		"parks. The waker uthread spins on one vcore; the wakee waits "
		"in uth_cond_wait on the other, which is then idle. Each round the "
		"waker waits until the wakee has announced it waits, %d us "
		"more so that it is surely asleep, sets the predicate under "
		"the mutex (taken by trylock in a spin, so that the waker "
		"never blocks and keeps its vcore), stamps fast_ns() and "
		"calls uth_cond_signal(); the wakee stamps fast_ns() first "
		"thing after its wait returns. "
		"The default 2LS queues the woken uthread on the waker's "
		"vcore, which is busy; the wakee's idle vcore steals it, so "
		"the latency is signal + steal + switch. The TSC is invariant "
		"and synchronised across cpus here (%s). Peer: the same "
		"protocol with pthread_mutex/pthread_cond, the waiter pinned "
		"to cpu %d (sleeping in the kernel: its cpu goes idle, and how "
		"long this VM takes to wake an idle cpu varies: the peer's "
		"figure ranged from about 9 to 55 us across our runs), the "
		"signaller to cpu %d. %ld wake-ups per run; the row is the "
		"median over runs of each run's p50, the notes give p50/p99 "
		"over all runs. The waker spins (it never blocks) on both "
		"sides.",
		cpu_a, cpu_b, WAKE_SETTLE_NS / 1000,
		clock_is_tsc() ? "fast_ns() reads it" :
				 "NOT calibrated: clock_gettime",
		cpu_a, cpu_b, n_wake);
	bench_report_text(rep,
		"Memory: in a fresh child process, RSS (/proc/self/statm, "
		"resident pages) before and after starting %d threads that "
		"each take a mutex, count themselves and wait on a condition "
		"variable; (after - before) / %d. The child then exits at once "
		"(the threads' teardown is not measured). Ours: uthreads on one vcore "
		"with the default %u KiB stack (mmap'd MAP_NORESERVE, only "
		"touched pages are committed) plus the descriptor (calloc). "
		"Peer: pthreads with default attributes, whose stacks reserve "
		"8 MiB of virtual memory each (80 GB for 10k) of which only "
		"the touched pages (the thread's frames plus glibc's thread "
		"descriptor and TLS at the top of the stack) are committed; "
		"that committed RSS is what the row compares. Neither figure "
		"counts kernel memory: a pthread also costs a kernel task "
		"(task_struct, a 16 KiB kernel stack), a uthread nothing in "
		"the kernel beyond its page-table entries. The forked "
		"children's CPU time (creating 10k pthreads) is not this "
		"process's, so the header's 'other load' counts it: about "
		"25%% on an otherwise idle machine.",
		n_mem, n_mem, RT_DEFAULT_STACK_SIZE / 1024);
	return bench_report_close(rep) ? 1 : 0;
}
