/* rt_sync_mutex.c - uth_mutex: mutual exclusion under many uthreads (exact
 * count, a non-atomic invariant checked inside), trylock, FIFO hand-off
 * with no barging past a queued waiter; on 4 vcores (oversubscribed) and
 * on 1. */
#include <errno.h>

#include <atoll/rt.h>
#include <atoll/sync.h>
#include <atoll/uthread.h>
#include <atoll/vcore.h>

#include "harness.h"

#define NR_UTH 16

static struct uth_mutex big = UTH_MUTEX_INIT;
/* Guarded by big: plain on purpose (TSan reports any unprotected pair). */
static uint64_t count;
static uint64_t shadow;        /* always == count outside the section */
static int inside;             /* uthreads inside the section: 0 or 1 */
static uint64_t iters;

static void *hammer(void *arg)
{
	long id = (long)arg;

	for (uint64_t i = 0; i < iters; i++) {
		uth_mutex_lock(&big);
		CHECK_EQ(inside, 0);
		inside = 1;
		CHECK_EQ(count, shadow);
		count++;
		/* Switch away inside now and then: waiters then really queue
		 * and unlock really hands off. */
		if ((i + (uint64_t)id) % 64 == 0)
			uthread_yield();
		shadow++;
		CHECK_EQ(inside, 1);
		inside = 0;
		uth_mutex_unlock(&big);
		if (i % 16 == 0)
			uthread_yield();
	}
	return NULL;
}

static void *try_hammer(void *arg)
{
	uint64_t got = 0;

	(void)arg;
	while (got < iters / 4) {
		if (!uth_mutex_trylock(&big)) {
			uthread_yield();
			continue;
		}
		CHECK_EQ(inside, 0);
		inside = 1;
		count++;
		if (got % 8 == 0)
			uthread_yield();
		shadow++;
		CHECK_EQ(inside, 1);
		inside = 0;
		uth_mutex_unlock(&big);
		got++;
	}
	return NULL;
}

static void run_counter(void)
{
	struct uthread *u[NR_UTH + 2];

	count = shadow = 0;
	for (long i = 0; i < NR_UTH; i++)
		CHECK_OK(uthread_create(&u[i], NULL, hammer, (void *)i));
	for (long i = NR_UTH; i < NR_UTH + 2; i++)
		CHECK_OK(uthread_create(&u[i], NULL, try_hammer, NULL));
	for (int i = 0; i < NR_UTH + 2; i++)
		CHECK_OK(uthread_join(u[i], NULL));
	uth_mutex_lock(&big);
	CHECK_EQ(count, NR_UTH * iters + 2 * (iters / 4));
	CHECK_EQ(shadow, count);
	uth_mutex_unlock(&big);
}

/* ---- FIFO hand-off -------------------------------------------------------- */

static struct uth_mutex fifo_m;
static int order[8];
static int order_len;       /* guarded by fifo_m */
static int queued;          /* atomic: waiters about to block */

static void *fifo_waiter(void *arg)
{
	__atomic_fetch_add(&queued, 1, __ATOMIC_RELAXED);
	uth_mutex_lock(&fifo_m);
	order[order_len++] = (int)(long)arg;
	uth_mutex_unlock(&fifo_m);
	return NULL;
}

/* One vcore: deterministic. Main holds the mutex while 4 uthreads queue in
 * creation order; they must get it in that order, and main, unlocking and
 * retrying at once, must not barge past them. */
static void run_fifo(void)
{
	struct uthread *u[4];

	uth_mutex_init(&fifo_m);
	order_len = 0;
	queued = 0;
	uth_mutex_lock(&fifo_m);
	CHECK(!uth_mutex_trylock(&fifo_m));
	for (long i = 0; i < 4; i++)
		CHECK_OK(uthread_create(&u[i], NULL, fifo_waiter, (void *)i));
	/* Run them until each is blocked on the mutex. */
	while (__atomic_load_n(&queued, __ATOMIC_RELAXED) < 4)
		uthread_yield();
	uthread_yield();
	uth_mutex_unlock(&fifo_m);
	/* Handed to waiter 0, which has not run yet: no barging. */
	CHECK(!uth_mutex_trylock(&fifo_m));
	for (int i = 0; i < 4; i++)
		CHECK_OK(uthread_join(u[i], NULL));
	CHECK_EQ(order_len, 4);
	for (int i = 0; i < 4; i++)
		CHECK_EQ(order[i], i);
	CHECK(uth_mutex_trylock(&fifo_m));
	uth_mutex_unlock(&fifo_m);
}

static int one_main(void *arg)
{
	(void)arg;
	CHECK_EQ(max_vcores(), 1);
	iters = test_scale(4000);
	run_counter();
	run_fifo();
	return 0;
}

static int four_main(void *arg)
{
	(void)arg;
	CHECK_EQ(max_vcores(), 4);
	iters = test_scale(50000);
	run_counter();
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
