/* rt_sync_barrier.c - uth_barrier: nobody leaves a round before all have
 * arrived, exactly one serial waiter per round, reuse across rounds,
 * n = 1, and init's argument check. */
#include <errno.h>

#include <atoll/rt.h>
#include <atoll/sync.h>
#include <atoll/uthread.h>
#include <atoll/vcore.h>

#include "harness.h"

#define NR_UTH 8
#define MAX_ROUNDS 2000

static struct uth_barrier bar = UTH_BARRIER_INIT(NR_UTH);
static uint32_t arrived[MAX_ROUNDS];   /* atomic, per round */
static uint32_t left[MAX_ROUNDS];      /* atomic, per round */
static uint32_t serial[MAX_ROUNDS];    /* atomic, per round */
static uint64_t rounds;

static void *runner(void *arg)
{
	long id = (long)arg;

	for (uint64_t r = 0; r < rounds; r++) {
		int s;

		__atomic_fetch_add(&arrived[r], 1, __ATOMIC_RELAXED);
		if ((r + (uint64_t)id) % 3 == 0)
			uthread_yield(); /* arrive in varying orders */
		s = uth_barrier_wait(&bar);
		CHECK(s == 0 || s == 1);
		/* Nobody leaves before everyone of this round arrived. */
		CHECK_EQ(__atomic_load_n(&arrived[r], __ATOMIC_RELAXED),
			 NR_UTH);
		/* The next round cannot have completed without us. */
		if (r + 1 < rounds)
			CHECK(__atomic_load_n(&arrived[r + 1],
					      __ATOMIC_RELAXED) < NR_UTH);
		__atomic_fetch_add(&serial[r], (uint32_t)s, __ATOMIC_RELAXED);
		__atomic_fetch_add(&left[r], 1, __ATOMIC_RELAXED);
	}
	return NULL;
}

static void run_rounds(void)
{
	struct uthread *u[NR_UTH];

	for (uint64_t r = 0; r < rounds; r++)
		arrived[r] = left[r] = serial[r] = 0;
	for (long i = 0; i < NR_UTH; i++)
		CHECK_OK(uthread_create(&u[i], NULL, runner, (void *)i));
	for (int i = 0; i < NR_UTH; i++)
		CHECK_OK(uthread_join(u[i], NULL));
	for (uint64_t r = 0; r < rounds; r++) {
		CHECK_EQ(arrived[r], NR_UTH);
		CHECK_EQ(left[r], NR_UTH);
		CHECK_EQ(serial[r], 1);
	}
}

static void run_small(void)
{
	struct uth_barrier one;

	CHECK_EQ(uth_barrier_init(&one, 0), -EINVAL);
	CHECK_OK(uth_barrier_init(&one, 1));
	for (int i = 0; i < 3; i++)
		CHECK_EQ(uth_barrier_wait(&one), 1);
}

static int test_main(void *arg)
{
	(void)arg;
	rounds = test_scale(MAX_ROUNDS);
	run_small();
	run_rounds();
	run_rounds(); /* the same barrier, reused by a new set */
	return 0;
}

int main(void)
{
	struct rt_config one = { .nr_vcores = 1 };
	struct rt_config four = { .nr_vcores = 4, .no_pin = 1 };

	CHECK_EQ(rt_main(&one, test_main, NULL), 0);
	CHECK_EQ(rt_main(&four, test_main, NULL), 0);
	return TEST_PASS;
}
