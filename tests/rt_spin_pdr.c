/* rt_spin_pdr.c - spin_pdr: mutual exclusion under contention with holders
 * that switch away inside the critical section (on one vcore a waiter must
 * notice the holder is not running and yield, or nothing progresses), and
 * the same while vcores are revoked and granted again. */
#include <errno.h>
#include <string.h>

#include <atoll/clock.h>
#include <atoll/rt.h>
#include <atoll/sync.h>
#include <atoll/uthread.h>
#include <atoll/vcore.h>

#include "harness.h"

#define NR_UTH 12

static struct spin_pdr lk = SPIN_PDR_INIT;
/* Guarded by lk: plain on purpose. */
static uint64_t count, shadow;
static int inside;
static uint64_t iters;
static int ran_on[8];       /* atomic: vcores the contenders ran on */
static int stop;            /* atomic: contenders may finish */

static void *contender(void *arg)
{
	long id = (long)arg;

	uint64_t i;

	for (i = 0; i < iters || !__atomic_load_n(&stop, __ATOMIC_RELAXED);
	     i++) {
		if (i % 5 == 4) {
			while (!spin_pdr_trylock(&lk))
				uthread_yield();
		} else {
			spin_pdr_lock(&lk);
		}
		CHECK(spin_pdr_held(&lk));
		CHECK_EQ(inside, 0);
		inside = 1;
		CHECK_EQ(count, shadow);
		count++;
		/* A holder that stops running inside: its waiters must get
		 * out of the way. */
		if ((i + (uint64_t)id) % 16 == 0)
			uthread_yield();
		shadow++;
		inside = 0;
		spin_pdr_unlock(&lk);
		__atomic_store_n(&ran_on[vcore_id() & 7], 1, __ATOMIC_RELAXED);
		if (i % 8 == 0)
			uthread_yield();
	}
	return (void *)(uintptr_t)i;
}

static void spawn(struct uthread **u, int stop_at_iters)
{
	count = shadow = 0;
	__atomic_store_n(&stop, stop_at_iters, __ATOMIC_RELAXED);
	for (long i = 0; i < NR_UTH; i++)
		CHECK_OK(uthread_create(&u[i], NULL, contender, (void *)i));
}

static void join_and_check(struct uthread **u)
{
	uint64_t total = 0;

	for (int i = 0; i < NR_UTH; i++) {
		void *r;

		CHECK_OK(uthread_join(u[i], &r));
		CHECK((uintptr_t)r >= iters);
		total += (uintptr_t)r;
	}
	spin_pdr_lock(&lk);
	CHECK_EQ(count, total);
	CHECK_EQ(shadow, count);
	spin_pdr_unlock(&lk);
}

static void run_basics(void)
{
	struct spin_pdr l;

	spin_pdr_init(&l);
	CHECK(!spin_pdr_held(&l));
	CHECK(spin_pdr_trylock(&l));
	CHECK(!spin_pdr_trylock(&l));
	spin_pdr_unlock(&l);
	spin_pdr_lock(&l);
	CHECK(spin_pdr_held(&l));
	spin_pdr_unlock(&l);
}

static int one_main(void *arg)
{
	struct uthread *u[NR_UTH];

	(void)arg;
	iters = test_scale(4000);
	run_basics();
	spawn(u, 1);
	join_and_check(u);
	return 0;
}

/* Wait about ns without a timer: a timer lives on the heap of the vcore
 * that armed it, and that vcore may be the one being revoked. */
static void yield_for(uint64_t ns)
{
	uint64_t end = fast_ns() + ns;

	while (fast_ns() < end)
		uthread_yield();
}

/* Main revokes vcores 1-3 (vcore 0 cannot be) and grants them back while
 * the contenders run; uthreads queued on a revoked vcore are moved
 * elsewhere, lock holders among them. */
static int four_main(void *arg)
{
	struct uthread *u[NR_UTH];
	unsigned flips = 0;

	(void)arg;
	iters = test_scale(20000);
	run_basics();
	spawn(u, 1);
	join_and_check(u);

	/* Contenders go on until the revocations are done. */
	memset(ran_on, 0, sizeof(ran_on));
	spawn(u, 0);
	while (flips < 25) {
		unsigned id = 1 + flips % 3;

		CHECK_OK(vcore_revoke(id, now_ns() + NSEC_PER_MSEC));
		if (flips % 2)
			CHECK_OK(vcore_revoke(1 + id % 3,
					      now_ns() + NSEC_PER_MSEC));
		yield_for(300000);
		for (unsigned v = 1; v < 4; v++) {
			int e = vcore_grant(v, -1);

			CHECK(e == 0 || e == -EBUSY);
		}
		flips++;
		yield_for(100000);
	}
	__atomic_store_n(&stop, 1, __ATOMIC_RELAXED);
	join_and_check(u);
	printf("%u revocations; contenders ran on vcores: %d%d%d%d\n",
	       flips, ran_on[0], ran_on[1], ran_on[2], ran_on[3]);
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
