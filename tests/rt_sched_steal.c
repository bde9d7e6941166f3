/* rt_sched_steal.c - the default 2LS spreads load by stealing: one uthread
 * creates many CPU-bound uthreads on its own vcore and every vcore ends up
 * running a fair share of them; high-priority uthreads run before normal
 * ones on one vcore. */
#include <errno.h>
#include <sched.h>

#include <atoll/atomic.h>
#include <atoll/clock.h>
#include <atoll/rt.h>
#include <atoll/sched.h>
#include <atoll/uthread.h>
#include <atoll/vcore.h>

#include "harness.h"

#define MAX_VC 4

/* Work per round. Under TSan a uthread's first run costs milliseconds (a
 * new TSan fiber), which would dwarf short rounds and skew the shares. */
#ifdef ATOLL_TSAN
#define ROUND_NS (300 * NSEC_PER_USEC)
#else
#define ROUND_NS (20 * NSEC_PER_USEC)
#endif

/* ---- stealing --------------------------------------------------------------- */

static uint64_t ran_on[MAX_VC];   /* rounds run per vcore, atomic */

static void *spinner(void *arg)
{
	for (int round = 0; round < 20; round++) {
		int vc = vcore_id();

		CHECK(vc >= 0 && vc < MAX_VC);
		fetch_add_relaxed(&ran_on[vc], 1);
		delay_ns(ROUND_NS);
		uthread_yield();
	}
	return arg;
}

static unsigned nr_cpus(void)
{
	cpu_set_t set;

	CHECK_EQ(sched_getaffinity(0, sizeof(set), &set), 0);
	return (unsigned)CPU_COUNT(&set);
}

static int steal_main(void *arg)
{
	unsigned nvc = max_vcores();
	unsigned n = (unsigned)test_scale(400);
	struct sched_vcore_stats before[MAX_VC], after[MAX_VC];
	struct uthread **u = calloc(n, sizeof(*u));
	uint64_t runs = 0, steals = 0, rounds = 0;
	unsigned min_pct = nvc <= nr_cpus() ? 10 : 3;
	void *r;

	(void)arg;
	CHECK(u != NULL);
	CHECK(nvc >= 2 && nvc <= MAX_VC);
	for (unsigned i = 0; i < nvc; i++)
		CHECK_OK(sched_vcore_stats(i, &before[i]));
	/* No scheduling point while creating: all land on our vcore. */
	for (unsigned i = 0; i < n; i++)
		CHECK_OK(uthread_create(&u[i], NULL, spinner,
					(void *)(uintptr_t)(i + 1)));
	for (unsigned i = 0; i < n; i++) {
		CHECK_OK(uthread_join(u[i], &r));
		CHECK_EQ((uintptr_t)r, i + 1);
	}
	for (unsigned i = 0; i < nvc; i++) {
		CHECK_OK(sched_vcore_stats(i, &after[i]));
		runs += after[i].runs - before[i].runs;
		steals += after[i].steals - before[i].steals;
		rounds += load_relaxed(&ran_on[i]);
	}
	CHECK_EQ(rounds, 20ull * n);
	CHECK(steals > 0);
	for (unsigned i = 0; i < nvc; i++) {
		uint64_t mine = load_relaxed(&ran_on[i]);

		printf("vcore %u: %llu of %llu rounds, %llu steals\n", i,
		       (unsigned long long)mine, (unsigned long long)rounds,
		       (unsigned long long)(after[i].steals -
					    before[i].steals));
		/* A generous share: at least 10% each, or 3% when vcores
		 * outnumber cpus (the kernel then slices them unevenly). */
		CHECK(mine * 100 >= rounds * min_pct);
		CHECK((after[i].runs - before[i].runs) * 100 >= runs * min_pct);
	}
	free(u);
	return 0;
}

/* ---- priority ------------------------------------------------------------------ */

static int trace[16];
static int trace_len;

static void *tracer(void *arg)
{
	trace[trace_len++] = (int)(intptr_t)arg;
	return NULL;
}

static int prio_main(void *arg)
{
	struct uthread_attr high = { .prio = UTH_PRIO_HIGH };
	struct uthread_attr bad = { .prio = (enum uthread_prio)7 };
	struct uthread *u[8], *v;

	(void)arg;
	CHECK_EQ(max_vcores(), 1);
	/* Normal ones are ids 0..3, high ones 10..13, created interleaved. */
	for (int i = 0; i < 4; i++) {
		CHECK_OK(uthread_create(&u[2 * i], NULL, tracer,
					(void *)(intptr_t)i));
		CHECK_OK(uthread_create(&u[2 * i + 1], &high, tracer,
					(void *)(intptr_t)(10 + i)));
		CHECK_EQ(uthread_get_prio(u[2 * i + 1]), UTH_PRIO_HIGH);
	}
	for (int i = 0; i < 8; i++)
		CHECK_OK(uthread_join(u[i], NULL));
	CHECK_EQ(trace_len, 8);
	for (int i = 0; i < 4; i++) {
		CHECK_EQ(trace[i], 10 + i);   /* high first, FIFO among them */
		CHECK_EQ(trace[4 + i], i);    /* then normal, FIFO */
	}
	CHECK_EQ(uthread_create(&v, &bad, tracer, NULL), -EINVAL);

	/* A priority set later counts from the next enqueue. yield hands
	 * the vcore to the next in line (n1) before requeueing the caller,
	 * which, now high, then runs before n2. */
	trace_len = 0;
	CHECK_OK(uthread_create(&u[0], NULL, tracer, (void *)(intptr_t)1));
	CHECK_OK(uthread_create(&u[1], NULL, tracer, (void *)(intptr_t)2));
	uthread_set_prio(uthread_self(), UTH_PRIO_HIGH);
	uthread_yield();
	trace[trace_len++] = 0;
	uthread_set_prio(uthread_self(), UTH_PRIO_NORMAL);
	CHECK_OK(uthread_join(u[0], NULL));
	CHECK_OK(uthread_join(u[1], NULL));
	CHECK_EQ(trace_len, 3);
	CHECK_EQ(trace[0], 1);
	CHECK_EQ(trace[1], 0);
	CHECK_EQ(trace[2], 2);
	return 0;
}

int main(void)
{
	struct rt_config two = { .nr_vcores = 2 };
	struct rt_config three = { .nr_vcores = 3, .no_pin = 1 };
	struct rt_config one = { .nr_vcores = 1 };

	CHECK_EQ(rt_main(&two, steal_main, NULL), 0);
	for (int i = 0; i < MAX_VC; i++)
		store_relaxed(&ran_on[i], 0);
	CHECK_EQ(rt_main(&three, steal_main, NULL), 0);
	CHECK_EQ(rt_main(&one, prio_main, NULL), 0);
	return TEST_PASS;
}
