/* rt_sync_cond.c - uth_cond: bounded-buffer producers/consumers checking
 * every item (order per producer, none lost or doubled) with signal and
 * with broadcast; timedwait timing; a signal and a timeout counting
 * exactly once when they race; signal counting with many timed waiters. */
#include <errno.h>

#include <atoll/clock.h>
#include <atoll/rt.h>
#include <atoll/sync.h>
#include <atoll/uthread.h>
#include <atoll/vcore.h>

#include "harness.h"

/* ---- bounded buffer ------------------------------------------------------- */

#define CAP 8
#define NR_PROD 4
#define NR_CONS 4

struct item {
	uint32_t prod;
	uint64_t seq;
};

static struct uth_mutex bb_m = UTH_MUTEX_INIT;
static struct uth_cond not_full = UTH_COND_INIT;
static struct uth_cond not_empty = UTH_COND_INIT;
/* Guarded by bb_m. */
static struct item buf[CAP];
static unsigned head, len;
static unsigned prod_done;
static int use_broadcast;
static uint64_t per_prod;
static uint64_t got[NR_PROD];   /* items consumed per producer */
static uint64_t sum[NR_PROD];   /* sum of their seq */

static void wake(struct uth_cond *c)
{
	if (use_broadcast)
		uth_cond_broadcast(c);
	else
		uth_cond_signal(c);
}

static void *producer(void *arg)
{
	uint32_t p = (uint32_t)(long)arg;

	for (uint64_t i = 0; i < per_prod; i++) {
		uth_mutex_lock(&bb_m);
		while (len == CAP)
			uth_cond_wait(&not_full, &bb_m);
		buf[(head + len) % CAP] = (struct item){ p, i };
		len++;
		wake(&not_empty);
		uth_mutex_unlock(&bb_m);
	}
	uth_mutex_lock(&bb_m);
	prod_done++;
	uth_cond_broadcast(&not_empty);
	uth_mutex_unlock(&bb_m);
	return NULL;
}

static void *consumer(void *arg)
{
	uint64_t next[NR_PROD] = { 0 }; /* seq expected next, per producer */

	(void)arg;
	for (;;) {
		struct item it;

		uth_mutex_lock(&bb_m);
		while (len == 0 && prod_done < NR_PROD)
			uth_cond_wait(&not_empty, &bb_m);
		if (len == 0) {
			uth_mutex_unlock(&bb_m);
			return NULL;
		}
		it = buf[head];
		head = (head + 1) % CAP;
		len--;
		CHECK(it.prod < NR_PROD);
		/* FIFO buffer: this consumer sees each producer's items in
		 * increasing order (others take the gaps). */
		CHECK(it.seq >= next[it.prod]);
		next[it.prod] = it.seq + 1;
		got[it.prod]++;
		sum[it.prod] += it.seq;
		wake(&not_full);
		uth_mutex_unlock(&bb_m);
	}
}

static void run_buffer(int broadcast)
{
	struct uthread *u[NR_PROD + NR_CONS];

	use_broadcast = broadcast;
	head = len = prod_done = 0;
	for (int p = 0; p < NR_PROD; p++)
		got[p] = sum[p] = 0;
	for (long i = 0; i < NR_CONS; i++)
		CHECK_OK(uthread_create(&u[i], NULL, consumer, NULL));
	for (long i = 0; i < NR_PROD; i++)
		CHECK_OK(uthread_create(&u[NR_CONS + i], NULL, producer,
					(void *)i));
	for (int i = 0; i < NR_PROD + NR_CONS; i++)
		CHECK_OK(uthread_join(u[i], NULL));
	for (int p = 0; p < NR_PROD; p++) {
		CHECK_EQ(got[p], per_prod);
		CHECK_EQ(sum[p], per_prod * (per_prod - 1) / 2);
	}
	CHECK_EQ(len, 0);
}

/* One producer, one consumer, strict order. */
static void *one_consumer(void *arg)
{
	(void)arg;
	for (uint64_t want = 0; want < per_prod; want++) {
		uth_mutex_lock(&bb_m);
		while (len == 0)
			uth_cond_wait(&not_empty, &bb_m);
		CHECK_EQ(buf[head].seq, want);
		head = (head + 1) % CAP;
		len--;
		uth_cond_signal(&not_full);
		uth_mutex_unlock(&bb_m);
	}
	return NULL;
}

static void run_spsc(void)
{
	struct uthread *c;

	use_broadcast = 0;
	head = len = prod_done = 0;
	CHECK_OK(uthread_create(&c, NULL, one_consumer, NULL));
	for (uint64_t i = 0; i < per_prod; i++) {
		uth_mutex_lock(&bb_m);
		while (len == CAP)
			uth_cond_wait(&not_full, &bb_m);
		buf[(head + len) % CAP] = (struct item){ 0, i };
		len++;
		uth_cond_signal(&not_empty);
		uth_mutex_unlock(&bb_m);
	}
	CHECK_OK(uthread_join(c, NULL));
}

/* ---- timedwait ------------------------------------------------------------ */

static struct uth_mutex tm = UTH_MUTEX_INIT;
static struct uth_cond tc = UTH_COND_INIT;

static void run_timeout_accuracy(void)
{
	static const uint64_t ms[] = { 0, 1, 10, 50 };

	for (unsigned i = 0; i < ARRAY_SIZE(ms); i++) {
		uint64_t t = ms[i] * NSEC_PER_MSEC;
		uint64_t t0, dt;
		int r;

		uth_mutex_lock(&tm);
		t0 = fast_ns();
		r = uth_cond_timedwait(&tc, &tm, t);
		dt = fast_ns() - t0;
		/* The mutex is held again. */
		CHECK(!uth_mutex_trylock(&tm));
		uth_mutex_unlock(&tm);
		CHECK_EQ(r, -ETIMEDOUT);
		CHECK(dt >= t);
		CHECK(dt < t + 500 * NSEC_PER_MSEC);
	}
}

/* ---- signal vs timeout ------------------------------------------------------ */

/* Guarded by tm. */
static unsigned nr_queued;     /* waiters that entered a wait this round */
static int t_ret;              /* result of the timed waiter */
static int t_done, w_done;
static uint64_t t_timeout;

static void *timed_waiter(void *arg)
{
	(void)arg;
	uth_mutex_lock(&tm);
	nr_queued++;
	t_ret = uth_cond_timedwait(&tc, &tm, t_timeout);
	t_done = 1;
	uth_mutex_unlock(&tm);
	return NULL;
}

static void *plain_waiter(void *arg)
{
	(void)arg;
	uth_mutex_lock(&tm);
	nr_queued++;
	uth_cond_wait(&tc, &tm);
	w_done = 1;
	uth_mutex_unlock(&tm);
	return NULL;
}

static int w_woken(void)
{
	int r;

	uth_mutex_lock(&tm);
	r = w_done;
	uth_mutex_unlock(&tm);
	return r;
}

/* Timed waiter T queues first, plain waiter W second; one signal goes out
 * around T's deadline. Exactly one of them may take it: T returns 0 and W
 * sleeps on, or T times out (it left the queue) and the signal wakes W. */
static void run_signal_vs_timeout(void)
{
	uint64_t rounds = test_scale(300);
	unsigned both[2] = { 0, 0 };

	for (uint64_t r = 0; r < rounds; r++) {
		struct uthread *t, *w;
		uint64_t deadline, busy_until;

		t_timeout = 20000 + (r % 20) * 10000; /* 20..210 us */
		nr_queued = 0;
		t_done = w_done = 0;
		CHECK_OK(uthread_create(&t, NULL, timed_waiter, NULL));
		for (;;) { /* T queues before W: W is created after */
			uth_mutex_lock(&tm);
			unsigned n = nr_queued;
			uth_mutex_unlock(&tm);
			if (n == 1)
				break;
			uthread_yield();
		}
		CHECK_OK(uthread_create(&w, NULL, plain_waiter, NULL));
		for (;;) {
			uth_mutex_lock(&tm);
			unsigned n = nr_queued;
			uth_mutex_unlock(&tm);
			if (n == 2)
				break;
			uthread_yield();
		}
		uthread_sleep_ns(t_timeout - 20000 + (r % 7) * 5000);
		uth_cond_signal(&tc);
		/* Keep the vcore a while: a T dequeued by the signal may
		 * then resume only after its timer fired. */
		busy_until = fast_ns() + (r % 5) * 15000;
		while (fast_ns() < busy_until)
			;
		CHECK_OK(uthread_join(t, NULL));
		if (t_ret == 0) {
			/* T took the signal: W must still wait. */
			uthread_sleep_ns(2 * NSEC_PER_MSEC);
			CHECK(!w_woken());
			uth_cond_signal(&tc);
		} else {
			CHECK_EQ(t_ret, -ETIMEDOUT);
		}
		/* Either way W wakes now (in the timeout case, from the first
		 * signal); never stuck. */
		deadline = fast_ns() + 5 * NSEC_PER_SEC;
		while (!w_woken()) {
			CHECK(fast_ns() < deadline);
			uthread_yield();
		}
		CHECK_OK(uthread_join(w, NULL));
		both[t_ret == 0]++;
	}
	printf("signal vs timeout: %u signalled, %u timed out\n", both[1],
	       both[0]);
}

/* K timed waiters queue; J signals go out; exactly J return 0. */
static unsigned sig_zero, sig_timeout;

static void *counted_waiter(void *arg)
{
	int r;

	(void)arg;
	uth_mutex_lock(&tm);
	nr_queued++;
	r = uth_cond_timedwait(&tc, &tm, 300 * NSEC_PER_MSEC);
	if (r == 0)
		sig_zero++;
	else if (r == -ETIMEDOUT)
		sig_timeout++;
	uth_mutex_unlock(&tm);
	return NULL;
}

static void run_counted(void)
{
	enum { K = 12, J = 5 };
	struct uthread *u[K];

	nr_queued = sig_zero = sig_timeout = 0;
	for (int i = 0; i < K; i++)
		CHECK_OK(uthread_create(&u[i], NULL, counted_waiter, NULL));
	for (;;) {
		uth_mutex_lock(&tm);
		if (nr_queued == K)
			break; /* all queued: wait queues before it unlocks */
		uth_mutex_unlock(&tm);
		uthread_yield();
	}
	for (int i = 0; i < J; i++)
		uth_cond_signal(&tc);
	uth_mutex_unlock(&tm);
	for (int i = 0; i < K; i++)
		CHECK_OK(uthread_join(u[i], NULL));
	CHECK_EQ(sig_zero, J);
	CHECK_EQ(sig_timeout, K - J);
}

/* A signalled timedwait returns 0 early. */
static void *late_signaller(void *arg)
{
	(void)arg;
	uthread_sleep_ns(5 * NSEC_PER_MSEC);
	uth_mutex_lock(&tm);
	t_done = 1;
	uth_cond_signal(&tc);
	uth_mutex_unlock(&tm);
	return NULL;
}

static void run_signalled_early(void)
{
	struct uthread *s;
	uint64_t t0 = fast_ns();
	int r = 0;

	t_done = 0;
	CHECK_OK(uthread_create(&s, NULL, late_signaller, NULL));
	uth_mutex_lock(&tm);
	while (!t_done && r == 0)
		r = uth_cond_timedwait(&tc, &tm, 10 * NSEC_PER_SEC);
	uth_mutex_unlock(&tm);
	CHECK_EQ(r, 0);
	CHECK(fast_ns() - t0 < 5 * NSEC_PER_SEC);
	CHECK_OK(uthread_join(s, NULL));
}

static int test_main(void *arg)
{
	(void)arg;
	per_prod = test_scale(40000);
	run_spsc();
	run_buffer(0);
	run_buffer(1);
	run_timeout_accuracy();
	run_signalled_early();
	run_counted();
	run_signal_vs_timeout();
	return 0;
}

int main(void)
{
	struct rt_config four = { .nr_vcores = 4, .no_pin = 1 };
	struct rt_config one = { .nr_vcores = 1 };

	CHECK_EQ(rt_main(&four, test_main, NULL), 0);
	CHECK_EQ(rt_main(&one, test_main, NULL), 0);
	return TEST_PASS;
}
