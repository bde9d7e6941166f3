/* rt_sync_rwlock.c - uth_rwlock: no writer concurrent with anyone (a
 * non-atomic two-field invariant readers check), exact write count,
 * trylock rules, and writers not starved by a stream of readers. */
#include <errno.h>

#include <atoll/clock.h>
#include <atoll/rt.h>
#include <atoll/sync.h>
#include <atoll/uthread.h>
#include <atoll/vcore.h>

#include "harness.h"

#define NR_READERS 12
#define NR_WRITERS 4

static struct uth_rwlock rw = UTH_RWLOCK_INIT;
static int readers_in;   /* atomic */
static int writers_in;   /* atomic */
static int max_readers;  /* atomic: most readers seen at once */
/* Guarded by rw: written by writers only, a == b outside a write. */
static uint64_t a, b;
static uint64_t iters;

static void note_max(int now)
{
	int seen = __atomic_load_n(&max_readers, __ATOMIC_RELAXED);

	while (now > seen &&
	       !__atomic_compare_exchange_n(&max_readers, &seen, now, 0,
					    __ATOMIC_RELAXED, __ATOMIC_RELAXED))
		;
}

static void *reader(void *arg)
{
	(void)arg;
	for (uint64_t i = 0; i < iters; i++) {
		uint64_t x;

		if (i % 8 == 7) {
			if (!uth_rwlock_tryrdlock(&rw)) {
				uthread_yield();
				continue;
			}
		} else {
			uth_rwlock_rdlock(&rw);
		}
		note_max(__atomic_add_fetch(&readers_in, 1, __ATOMIC_RELAXED));
		CHECK_EQ(__atomic_load_n(&writers_in, __ATOMIC_RELAXED), 0);
		x = a;
		if (i % 4 == 0)
			uthread_yield();
		CHECK_EQ(b, x);
		CHECK_EQ(__atomic_load_n(&writers_in, __ATOMIC_RELAXED), 0);
		__atomic_sub_fetch(&readers_in, 1, __ATOMIC_RELAXED);
		uth_rwlock_unlock(&rw);
		if (i % 2)
			uthread_yield();
	}
	return NULL;
}

static uint64_t writes_done;  /* atomic */

static void *writer(void *arg)
{
	(void)arg;
	for (uint64_t i = 0; i < iters / 4; i++) {
		if (i % 8 == 7) {
			if (!uth_rwlock_trywrlock(&rw)) {
				uthread_yield();
				i--; /* every writer does its full count */
				continue;
			}
		} else {
			uth_rwlock_wrlock(&rw);
		}
		CHECK_EQ(__atomic_add_fetch(&writers_in, 1, __ATOMIC_RELAXED),
			 1);
		CHECK_EQ(__atomic_load_n(&readers_in, __ATOMIC_RELAXED), 0);
		a++;
		if (i % 2 == 0)
			uthread_yield();
		b++;
		CHECK_EQ(__atomic_load_n(&readers_in, __ATOMIC_RELAXED), 0);
		__atomic_sub_fetch(&writers_in, 1, __ATOMIC_RELAXED);
		__atomic_fetch_add(&writes_done, 1, __ATOMIC_RELAXED);
		uth_rwlock_unlock(&rw);
		uthread_yield();
	}
	return NULL;
}

static void run_mixed(void)
{
	struct uthread *u[NR_READERS + NR_WRITERS];

	a = b = writes_done = 0;
	max_readers = 0;
	for (int i = 0; i < NR_READERS; i++)
		CHECK_OK(uthread_create(&u[i], NULL, reader, NULL));
	for (int i = 0; i < NR_WRITERS; i++)
		CHECK_OK(uthread_create(&u[NR_READERS + i], NULL, writer,
					NULL));
	for (int i = 0; i < NR_READERS + NR_WRITERS; i++)
		CHECK_OK(uthread_join(u[i], NULL));
	uth_rwlock_wrlock(&rw);
	CHECK_EQ(a, NR_WRITERS * (iters / 4));
	CHECK_EQ(b, a);
	uth_rwlock_unlock(&rw);
	printf("most readers at once: %d\n", max_readers);
}

/* ---- trylock rules ------------------------------------------------------- */

static struct uth_rwlock tr;
static int w_queued;   /* atomic */
static int w_got;      /* atomic */

static void *queued_writer(void *arg)
{
	(void)arg;
	__atomic_store_n(&w_queued, 1, __ATOMIC_RELAXED);
	uth_rwlock_wrlock(&tr);
	__atomic_store_n(&w_got, 1, __ATOMIC_RELAXED);
	uth_rwlock_unlock(&tr);
	return NULL;
}

/* One vcore, deterministic. */
static void run_try_rules(void)
{
	struct uthread *u;

	uth_rwlock_init(&tr);
	CHECK(uth_rwlock_trywrlock(&tr));
	CHECK(!uth_rwlock_tryrdlock(&tr));
	CHECK(!uth_rwlock_trywrlock(&tr));
	uth_rwlock_unlock(&tr);

	uth_rwlock_rdlock(&tr);
	CHECK(uth_rwlock_tryrdlock(&tr)); /* shared */
	CHECK(!uth_rwlock_trywrlock(&tr));
	uth_rwlock_unlock(&tr);
	/* A writer queues behind the reader: new readers must not pass. */
	w_queued = w_got = 0;
	CHECK_OK(uthread_create(&u, NULL, queued_writer, NULL));
	while (!__atomic_load_n(&w_queued, __ATOMIC_RELAXED))
		uthread_yield();
	CHECK(!uth_rwlock_tryrdlock(&tr));
	CHECK(!__atomic_load_n(&w_got, __ATOMIC_RELAXED));
	uth_rwlock_unlock(&tr); /* last reader: hands to the writer */
	CHECK(!uth_rwlock_tryrdlock(&tr));
	CHECK_OK(uthread_join(u, NULL));
	CHECK(__atomic_load_n(&w_got, __ATOMIC_RELAXED));
	CHECK(uth_rwlock_trywrlock(&tr));
	uth_rwlock_unlock(&tr);
}

/* ---- writers are not starved ------------------------------------------------ */

static int stream_stop;   /* atomic */

static void *stream_reader(void *arg)
{
	(void)arg;
	while (!__atomic_load_n(&stream_stop, __ATOMIC_RELAXED)) {
		uth_rwlock_rdlock(&rw);
		uthread_yield(); /* hold it across a switch: readers overlap */
		uth_rwlock_unlock(&rw);
	}
	return NULL;
}

/* Readers hold the lock back to back, always overlapping; a writer must
 * still get it, promptly, each time. */
static void run_no_starvation(void)
{
	struct uthread *u[8];
	uint64_t worst = 0;

	stream_stop = 0;
	for (int i = 0; i < 8; i++)
		CHECK_OK(uthread_create(&u[i], NULL, stream_reader, NULL));
	uthread_sleep_ns(NSEC_PER_MSEC);
	for (int i = 0; i < 20; i++) {
		uint64_t t0 = fast_ns(), dt;

		uth_rwlock_wrlock(&rw);
		dt = fast_ns() - t0;
		uth_rwlock_unlock(&rw);
		if (dt > worst)
			worst = dt;
		uthread_sleep_ns(100000);
	}
	__atomic_store_n(&stream_stop, 1, __ATOMIC_RELAXED);
	for (int i = 0; i < 8; i++)
		CHECK_OK(uthread_join(u[i], NULL));
	printf("writer's worst wait among readers: %llu us\n",
	       (unsigned long long)(worst / 1000));
	CHECK(worst < 2 * NSEC_PER_SEC);
}

static int one_main(void *arg)
{
	(void)arg;
	iters = test_scale(4000);
	run_try_rules();
	run_mixed();
	run_no_starvation();
	return 0;
}

static int four_main(void *arg)
{
	(void)arg;
	iters = test_scale(20000);
	run_mixed();
	run_no_starvation();
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
