/* rt_sched_custom.c - an application's own 2LS plugged in through
 * rt_config.sched: one global LIFO stack under a spinlock. It drives a
 * create/join/yield/sleep workload on several vcores, and on one vcore the
 * run order is exactly LIFO. */
#include <atoll/atomic.h>
#include <atoll/list.h>
#include <atoll/lock.h>
#include <atoll/rt.h>
#include <atoll/sched.h>
#include <atoll/uthread.h>
#include <atoll/vcore.h>

#include "harness.h"

/* ---- the scheduler ------------------------------------------------------------ */

static DEFINE_SPINLOCK(lifo_lock);
static struct snode *lifo_top;        /* under lifo_lock */
static size_t lifo_depth;             /* written under lifo_lock */
static uint64_t nr_inits, nr_finis;   /* written by the main thread only */
static uint64_t nr_picks, nr_pushes;  /* atomic */

static int lifo_init(unsigned nr_vcores)
{
	CHECK(nr_vcores >= 1);
	lifo_top = NULL;
	lifo_depth = 0;
	nr_inits++;
	return 0;
}

static void lifo_fini(void)
{
	CHECK(lifo_top == NULL);
	nr_finis++;
}

static void lifo_runnable(struct uthread *uth)
{
	struct snode *n = sched_uthread_link(uth);

	spin_lock(&lifo_lock);
	n->next = lifo_top;
	lifo_top = n;
	store_relaxed(&lifo_depth, lifo_depth + 1);
	spin_unlock(&lifo_lock);
	fetch_add_relaxed(&nr_pushes, 1);
	/* One queue for all: a parked vcore may take this. */
	sched_poke_idle_vcore();
}

static struct uthread *lifo_pick(unsigned vc)
{
	struct snode *n;

	(void)vc;
	if (!load_relaxed(&lifo_depth))
		return NULL;
	spin_lock(&lifo_lock);
	n = lifo_top;
	if (n) {
		lifo_top = n->next;
		store_relaxed(&lifo_depth, lifo_depth - 1);
	}
	spin_unlock(&lifo_lock);
	if (!n)
		return NULL;
	fetch_add_relaxed(&nr_picks, 1);
	return sched_link_uthread(n);
}

static size_t lifo_nr_runnable(unsigned vc)
{
	(void)vc; /* every vcore sees the one queue */
	return load_relaxed(&lifo_depth);
}

static const struct sched_ops lifo_ops = {
	.name = "lifo",
	.init = lifo_init,
	.fini = lifo_fini,
	.thread_runnable = lifo_runnable,
	.pick_next = lifo_pick,
	.nr_runnable = lifo_nr_runnable,
};

/* ---- one vcore: the order is LIFO ---------------------------------------------- */

static int trace[32];
static int trace_len;

static void *traced(void *arg)
{
	int id = (int)(intptr_t)arg;

	trace[trace_len++] = id;
	uthread_yield();
	trace[trace_len++] = id;
	return (void *)(intptr_t)(id * 2);
}

static int lifo_main(void *arg)
{
	/* Stack after creating 1, 2, 3: [1 2 3>. join(1) blocks main: 3 runs
	 * and yields (the next is picked before the yielder is pushed):
	 * 2 runs, [1 3>; 2 yields: 3 runs, [1 2>; 3 ends: 2 runs; 2 ends:
	 * 1 runs; 1 yields with nothing else to run and goes on. */
	static const int want[] = { 3, 2, 3, 2, 1, 1 };
	struct uthread *u[3];
	void *r;

	(void)arg;
	CHECK_EQ(max_vcores(), 1);
	for (int i = 0; i < 3; i++)
		CHECK_OK(uthread_create(&u[i], NULL, traced,
					(void *)(intptr_t)(i + 1)));
	for (int i = 0; i < 3; i++) {
		CHECK_OK(uthread_join(u[i], &r));
		CHECK_EQ((intptr_t)r, (i + 1) * 2);
	}
	CHECK_EQ(trace_len, 6);
	for (int i = 0; i < 6; i++)
		CHECK_EQ(trace[i], want[i]);
	/* A sleeper is woken through the 2LS too. */
	uint64_t picks = load_relaxed(&nr_picks);

	uthread_sleep_ns(1000000);
	CHECK(load_relaxed(&nr_picks) > picks);
	return 0;
}

/* ---- several vcores: a workload -------------------------------------------------- */

#define NR_WORKERS 64

static uint64_t total;   /* atomic */

static void *child(void *arg)
{
	uintptr_t v = (uintptr_t)arg;

	uthread_yield();
	return (void *)(v + 1);
}

static void *worker(void *arg)
{
	uintptr_t id = (uintptr_t)arg;
	uint64_t sum = 0;

	for (int round = 0; round < 10; round++) {
		struct uthread *c;
		void *r;

		CHECK_OK(uthread_create(&c, NULL, child,
					(void *)(id * 100 + round)));
		if (round % 3 == 0)
			uthread_sleep_ns(200000);
		else
			uthread_yield();
		CHECK_OK(uthread_join(c, &r));
		CHECK_EQ((uintptr_t)r, id * 100 + round + 1);
		sum += (uintptr_t)r;
	}
	fetch_add_relaxed(&total, sum);
	return (void *)id;
}

static int work_main(void *arg)
{
	struct uthread *u[NR_WORKERS];
	uint64_t want = 0;
	void *r;

	(void)arg;
	CHECK_EQ(max_vcores(), 3);
	for (uintptr_t i = 0; i < NR_WORKERS; i++)
		CHECK_OK(uthread_create(&u[i], NULL, worker, (void *)i));
	for (uintptr_t i = 0; i < NR_WORKERS; i++) {
		CHECK_OK(uthread_join(u[i], &r));
		CHECK_EQ((uintptr_t)r, i);
		for (int round = 0; round < 10; round++)
			want += i * 100 + round + 1;
	}
	CHECK_EQ(load_relaxed(&total), want);
	return 7;
}

int main(void)
{
	struct rt_config one = { .nr_vcores = 1, .sched = &lifo_ops };
	struct rt_config three = { .nr_vcores = 3, .sched = &lifo_ops,
				   .no_pin = 1 };

	CHECK_EQ(rt_main(&one, lifo_main, NULL), 0);
	CHECK_EQ(nr_inits, 1);
	CHECK_EQ(nr_finis, 1);
	CHECK(load_relaxed(&nr_picks) > 0);
	CHECK_EQ(rt_main(&three, work_main, NULL), 7);
	CHECK_EQ(nr_inits, 2);
	CHECK_EQ(nr_finis, 2);
	/* Every uthread handed to the 2LS was taken from it. */
	CHECK_EQ(load_relaxed(&nr_pushes), load_relaxed(&nr_picks));
	return TEST_PASS;
}
