/* rt_sched_many.c - 100k uthreads (scaled down under sanitizers) created
 * and joined, in waves and all at once, on 2 and 4 vcores; every return
 * value is checked. A created uthread holds no stack until it first runs,
 * so having them all exist at once costs only their descriptors. */
#include <atoll/atomic.h>
#include <atoll/rt.h>
#include <atoll/sched.h>
#include <atoll/uthread.h>
#include <atoll/vcore.h>

#include "harness.h"

/* Uthreads per phase: 100k, fewer under sanitizers (test_scale). */
static unsigned nr_uthreads(void)
{
	return (unsigned)test_scale(100000);
}

static uint64_t started;   /* atomic: uthreads that ran */

static void *worker(void *arg)
{
	uintptr_t i = (uintptr_t)arg;

	fetch_add_relaxed(&started, 1);
	if (i % 16 == 0)
		uthread_yield(); /* some of them switch around on the way */
	return (void *)(i * 3 + 1);
}

static void join_check(struct uthread **u, uintptr_t first, unsigned n)
{
	void *r;

	for (unsigned k = 0; k < n; k++) {
		CHECK_OK(uthread_join(u[k], &r));
		CHECK_EQ((uintptr_t)r, (first + k) * 3 + 1);
	}
}

static int many_main(void *arg)
{
	unsigned n = nr_uthreads(), wave = n / 5 < 1000 ? n / 5 : 1000;
	struct uthread **u = calloc(n, sizeof(*u));
	unsigned nvc = max_vcores(), ran_somewhere = 0;
	struct sched_vcore_stats st;

	CHECK(u != NULL);
	CHECK_EQ(nvc, (unsigned)(uintptr_t)arg);

	/* Waves: a wave created, then joined, over and over. */
	store_relaxed(&started, 0);
	for (unsigned base = 0; base < n; base += wave) {
		unsigned m = n - base < wave ? n - base : wave;

		for (unsigned k = 0; k < m; k++)
			CHECK_OK(uthread_create(&u[k], NULL, worker,
						(void *)(uintptr_t)(base + k)));
		join_check(u, base, m);
	}
	CHECK_EQ(load_relaxed(&started), n);

	/* All at once: n uthreads exist before the first join. */
	store_relaxed(&started, 0);
	for (unsigned k = 0; k < n; k++)
		CHECK_OK(uthread_create(&u[k], NULL, worker,
					(void *)(uintptr_t)k));
	join_check(u, 0, n);
	CHECK_EQ(load_relaxed(&started), n);

	/* Detached ones too: counted as they run, none joined. */
	struct uthread_attr det = { .detached = 1 };

	store_relaxed(&started, 0);
	for (unsigned k = 0; k < n / 10; k++)
		CHECK_OK(uthread_create(NULL, &det, worker,
					(void *)(uintptr_t)k));
	while (load_relaxed(&started) < n / 10)
		uthread_yield();

	for (unsigned i = 0; i < nvc; i++) {
		CHECK_OK(sched_vcore_stats(i, &st));
		if (st.runs)
			ran_somewhere++;
	}
	printf("%u vcores: %u uthreads x 2 + %u detached; %u vcores ran "
	       "some\n", nvc, n, n / 10, ran_somewhere);
	free(u);
	return 0;
}

int main(void)
{
	struct rt_config two = { .nr_vcores = 2 };
	struct rt_config four = { .nr_vcores = 4 }; /* oversubscribed */

	CHECK_EQ(rt_main(&two, many_main, (void *)2), 0);
	CHECK_EQ(rt_main(&four, many_main, (void *)4), 0);
	return TEST_PASS;
}
