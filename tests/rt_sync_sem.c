/* rt_sync_sem.c - uth_sem: limits concurrency to its count, trydown and
 * overflow, hand-off to a sleeper, timeddown timing, and units conserved
 * exactly when timeouts race ups. */
#include <errno.h>

#include <atoll/clock.h>
#include <atoll/rt.h>
#include <atoll/sync.h>
#include <atoll/uthread.h>
#include <atoll/vcore.h>

#include "harness.h"

#define NR_UTH 16
#define LIMIT 3

static struct uth_sem gate = UTH_SEM_INIT(LIMIT);
static int inside;        /* atomic */
static int max_inside;    /* atomic */
static uint64_t iters;

static void *worker(void *arg)
{
	(void)arg;
	for (uint64_t i = 0; i < iters; i++) {
		int now, seen;

		uth_sem_down(&gate);
		now = __atomic_add_fetch(&inside, 1, __ATOMIC_RELAXED);
		seen = __atomic_load_n(&max_inside, __ATOMIC_RELAXED);
		while (now > seen &&
		       !__atomic_compare_exchange_n(&max_inside, &seen, now, 0,
						    __ATOMIC_RELAXED,
						    __ATOMIC_RELAXED))
			;
		CHECK(now <= LIMIT);
		uthread_yield();
		__atomic_sub_fetch(&inside, 1, __ATOMIC_RELAXED);
		CHECK_OK(uth_sem_up(&gate));
	}
	return NULL;
}

static void run_limit(void)
{
	struct uthread *u[NR_UTH];

	inside = max_inside = 0;
	for (int i = 0; i < NR_UTH; i++)
		CHECK_OK(uthread_create(&u[i], NULL, worker, NULL));
	for (int i = 0; i < NR_UTH; i++)
		CHECK_OK(uthread_join(u[i], NULL));
	CHECK(max_inside <= LIMIT);
	CHECK(max_inside >= 1);
	/* Every unit is back. */
	for (int i = 0; i < LIMIT; i++)
		CHECK(uth_sem_trydown(&gate));
	CHECK(!uth_sem_trydown(&gate));
	for (int i = 0; i < LIMIT; i++)
		CHECK_OK(uth_sem_up(&gate));
}

static void run_basics(void)
{
	struct uth_sem s;

	uth_sem_init(&s, 2);
	CHECK(uth_sem_trydown(&s));
	CHECK(uth_sem_trydown(&s));
	CHECK(!uth_sem_trydown(&s));
	CHECK_OK(uth_sem_up(&s));
	CHECK(uth_sem_trydown(&s));
	uth_sem_init(&s, UINT32_MAX);
	CHECK_EQ(uth_sem_up(&s), -EOVERFLOW);
	uth_sem_down(&s);
	CHECK_OK(uth_sem_up(&s));
}

/* ---- hand-off -------------------------------------------------------------- */

static struct uth_sem hs = UTH_SEM_INIT(0);
static int hs_waiting;     /* atomic */

static void *hs_sleeper(void *arg)
{
	(void)arg;
	__atomic_store_n(&hs_waiting, 1, __ATOMIC_RELAXED);
	uth_sem_down(&hs);
	return NULL;
}

/* On one vcore: up() with a sleeper queued gives it the unit; the count
 * stays 0, so nobody else can take it first. */
static void run_handoff(void)
{
	struct uthread *u;

	CHECK_OK(uthread_create(&u, NULL, hs_sleeper, NULL));
	while (!__atomic_load_n(&hs_waiting, __ATOMIC_RELAXED))
		uthread_yield();
	CHECK_OK(uth_sem_up(&hs));
	CHECK(!uth_sem_trydown(&hs));
	CHECK_OK(uthread_join(u, NULL));
	CHECK(!uth_sem_trydown(&hs));
}

/* ---- timeddown -------------------------------------------------------------- */

static struct uth_sem ts = UTH_SEM_INIT(0);

static void run_timeout_accuracy(void)
{
	static const uint64_t ms[] = { 0, 2, 20 };

	for (unsigned i = 0; i < ARRAY_SIZE(ms); i++) {
		uint64_t t = ms[i] * NSEC_PER_MSEC;
		uint64_t t0 = fast_ns(), dt;

		CHECK_EQ(uth_sem_timeddown(&ts, t), -ETIMEDOUT);
		dt = fast_ns() - t0;
		CHECK(dt >= t);
		CHECK(dt < t + 500 * NSEC_PER_MSEC);
	}
	CHECK_OK(uth_sem_up(&ts));
	CHECK_EQ(uth_sem_timeddown(&ts, 0), 0);
}

static void *late_up(void *arg)
{
	(void)arg;
	uthread_sleep_ns(5 * NSEC_PER_MSEC);
	CHECK_OK(uth_sem_up(&ts));
	return NULL;
}

static void run_up_before_timeout(void)
{
	struct uthread *u;
	uint64_t t0 = fast_ns();

	CHECK_OK(uthread_create(&u, NULL, late_up, NULL));
	CHECK_EQ(uth_sem_timeddown(&ts, 10 * NSEC_PER_SEC), 0);
	CHECK(fast_ns() - t0 < 5 * NSEC_PER_SEC);
	CHECK_OK(uthread_join(u, NULL));
}

/* Ups race short timeddowns: each unit is either taken (counted by its
 * taker) or left in the semaphore, never both nor lost. */
#define NR_TAKERS 8
static struct uth_sem race = UTH_SEM_INIT(0);
static uint64_t taken;      /* atomic */
static uint64_t timeouts;   /* atomic */
static int race_stop;       /* atomic */

static void *taker(void *arg)
{
	long id = (long)arg;
	uint64_t n = 0;

	while (!__atomic_load_n(&race_stop, __ATOMIC_ACQUIRE)) {
		int r = uth_sem_timeddown(&race, 5000 + (n++ % 8) * 7000 +
						 (uint64_t)id * 1000);

		if (r == 0)
			__atomic_fetch_add(&taken, 1, __ATOMIC_RELAXED);
		else if (r == -ETIMEDOUT)
			__atomic_fetch_add(&timeouts, 1, __ATOMIC_RELAXED);
		else
			CHECK_EQ(r, 0);
	}
	return NULL;
}

static void run_race(void)
{
	struct uthread *u[NR_TAKERS];
	uint64_t ups = test_scale(40000);
	uint64_t left = 0;

	taken = timeouts = 0;
	race_stop = 0;
	for (long i = 0; i < NR_TAKERS; i++)
		CHECK_OK(uthread_create(&u[i], NULL, taker, (void *)i));
	for (uint64_t i = 0; i < ups; i++) {
		CHECK_OK(uth_sem_up(&race));
		if (i % 4 == 0)
			uthread_sleep_ns(i % 3 ? 1000 : 20000);
		else
			uthread_yield();
	}
	__atomic_store_n(&race_stop, 1, __ATOMIC_RELEASE);
	for (int i = 0; i < NR_TAKERS; i++)
		CHECK_OK(uthread_join(u[i], NULL));
	while (uth_sem_trydown(&race))
		left++;
	printf("race: %llu ups, %llu taken, %llu left, %llu timeouts\n",
	       (unsigned long long)ups, (unsigned long long)taken,
	       (unsigned long long)left, (unsigned long long)timeouts);
	CHECK_EQ(taken + left, ups);
}

static int one_main(void *arg)
{
	(void)arg;
	iters = test_scale(2000);
	run_basics();
	run_handoff();
	run_limit();
	run_timeout_accuracy();
	run_up_before_timeout();
	run_race();
	return 0;
}

static int four_main(void *arg)
{
	(void)arg;
	iters = test_scale(5000);
	run_basics();
	run_limit();
	run_timeout_accuracy();
	run_up_before_timeout();
	run_race();
	return 0;
}

int main(void)
{
	struct rt_config one = { .nr_vcores = 1 };
	struct rt_config four = { .nr_vcores = 4, .no_pin = 1 };

	CHECK_EQ(rt_main(&one, one_main, NULL), 0);
	CHECK_EQ(rt_main(&four, four_main, NULL), 0);
	return TEST_PASS;
}
