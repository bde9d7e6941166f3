/* rt_timer.c - timers and sleep: uthread_sleep_ns sleeps at least as long
 * as asked and not much longer; sleepers on one vcore wake in deadline
 * order; a cancelled timer never fires, a cancel racing with expiry is
 * exactly one of "cancelled" or "fired". White-box: uses the runtime's
 * private timer_arm/timer_cancel. */
#include <pthread.h>
#include <sched.h>

#include <atoll/atomic.h>
#include <atoll/clock.h>
#include <atoll/rt.h>
#include <atoll/uthread.h>
#include <atoll/vcore.h>

#include "../src/rt/internal.h"
#include "harness.h"

/* How late a sleeper may wake. Sanitizers slow every switch and TSan's
 * first run of a uthread (a new TSan fiber) costs milliseconds, so a
 * sleeper's vcore may be busy starting others when it is due. */
#if defined(ATOLL_TSAN)
#define SLACK_NS (250 * NSEC_PER_MSEC)
#elif defined(ATOLL_ASAN)
#define SLACK_NS (100 * NSEC_PER_MSEC)
#else
#define SLACK_NS (50 * NSEC_PER_MSEC)
#endif

/* ---- accuracy ------------------------------------------------------------------ */

static void check_sleep(uint64_t ns)
{
	uint64_t t0 = fast_ns(), m0 = now_ns();
	uint64_t took, mono;

	uthread_sleep_ns(ns);
	took = fast_ns() - t0;
	mono = now_ns() - m0;
	/* At least what was asked on the runtime's clock... */
	CHECK(took >= ns);
	/* ...and on CLOCK_MONOTONIC, up to fast_ns()'s calibration error. */
	CHECK(mono + ns / 1000 + 10 * NSEC_PER_USEC >= ns);
	if (took > ns + SLACK_NS)
		fprintf(stderr, "slept %llu ns for %llu\n",
			(unsigned long long)took, (unsigned long long)ns);
	CHECK(took <= ns + SLACK_NS);
}

#define NR_LOOPERS 16

static uint32_t loopers_started; /* atomic */

static void *sleeper_loop(void *arg)
{
	uint64_t base = (uintptr_t)arg;

	/* Time nothing until every looper has had its (slow, under TSan)
	 * first run. */
	fetch_add_relaxed(&loopers_started, 1);
	while (load_relaxed(&loopers_started) < NR_LOOPERS)
		uthread_yield();
	for (int i = 0; i < 5; i++)
		check_sleep(base + (uint64_t)i * 300 * NSEC_PER_USEC);
	return NULL;
}

static int accuracy_main(void *arg)
{
	static const uint64_t d[] = { 0, 1000, 50000, NSEC_PER_MSEC,
				      5 * NSEC_PER_MSEC, 20 * NSEC_PER_MSEC };
	struct uthread *u[NR_LOOPERS];

	(void)arg;
	for (unsigned i = 0; i < sizeof(d) / sizeof(d[0]); i++)
		check_sleep(d[i]);
	/* Many at once, on every vcore. */
	for (uintptr_t i = 0; i < NR_LOOPERS; i++)
		CHECK_OK(uthread_create(&u[i], NULL, sleeper_loop,
					(void *)(i * 100 * NSEC_PER_USEC)));
	for (int i = 0; i < NR_LOOPERS; i++)
		CHECK_OK(uthread_join(u[i], NULL));
	return 0;
}

/* ---- deadline order on one vcore -------------------------------------------------- */

#define NR_SLEEPERS 32

static uint64_t t_start;
static int nr_started;
static int order[NR_SLEEPERS];
static int nr_woken;
static int spoiled;

/* Sleeper k wakes at t_start + 20 ms + rank(k) * 300 us; ranks are a
 * permutation, so creation order differs from deadline order. */
static unsigned rank_of(unsigned k)
{
	return (k * 13 + 5) % NR_SLEEPERS;
}

static void *ordered_sleeper(void *arg)
{
	unsigned k = (unsigned)(uintptr_t)arg;
	uint64_t due, now;

	/* One vcore, so plain variables. Wait for all to have started (a
	 * first run is slow under TSan); the last one starts the clock. */
	if (++nr_started == NR_SLEEPERS)
		t_start = fast_ns();
	while (nr_started < NR_SLEEPERS)
		uthread_yield();
	due = t_start + 20 * NSEC_PER_MSEC + rank_of(k) * 300 * NSEC_PER_USEC;
	now = fast_ns();
	/* The order is only defined if every sleeper is armed before its
	 * deadline; a vcore thread descheduled for 20 ms spoils the round. */
	if (now >= due)
		spoiled = 1;
	uthread_sleep_ns(now < due ? due - now : 0);
	CHECK(fast_ns() >= due);
	order[nr_woken++] = (int)k;
	return NULL;
}

static int order_main(void *arg)
{
	struct uthread *u[NR_SLEEPERS];
	int round;

	(void)arg;
	CHECK_EQ(max_vcores(), 1);
	for (round = 0; round < 5; round++) {
		nr_started = nr_woken = spoiled = 0;
		for (uintptr_t k = 0; k < NR_SLEEPERS; k++)
			CHECK_OK(uthread_create(&u[k], NULL, ordered_sleeper,
						(void *)k));
		for (int k = 0; k < NR_SLEEPERS; k++)
			CHECK_OK(uthread_join(u[k], NULL));
		CHECK_EQ(nr_woken, NR_SLEEPERS);
		if (!spoiled)
			break;
	}
	CHECK(round < 5);
	for (int i = 0; i < NR_SLEEPERS; i++)
		CHECK_EQ(rank_of((unsigned)order[i]), (unsigned)i);
	return 0;
}

/* ---- cancellation ------------------------------------------------------------------- */

#define NR_TIMERS 256

struct test_timer {
	struct rt_timer t;
	uint32_t fired;        /* atomic */
	uint32_t cancelled;    /* cancel returned true; atomic */
};

static struct test_timer timers[NR_TIMERS];
static uint32_t nr_fired; /* atomic */

static void on_fire(struct rt_timer *t)
{
	struct test_timer *tt = container_of(t, struct test_timer, t);

	CHECK_EQ(fetch_add_relaxed(&tt->fired, 1), 0);
	fetch_add_relaxed(&nr_fired, 1);
}

static void reset_timers(void)
{
	for (int i = 0; i < NR_TIMERS; i++) {
		timers[i].t.heap_idx = -1;
		store_relaxed(&timers[i].fired, 0);
		store_relaxed(&timers[i].cancelled, 0);
	}
	store_relaxed(&nr_fired, 0);
}

static uint32_t go; /* atomic: timers armed, the canceller may start */

static void *canceller(void *arg)
{
	(void)arg;
	/* Acquire pairs with the release after arming: the timers are
	 * initialised. */
	while (!load_acquire(&go))
		sched_yield();
	/* From a plain thread, while their vcore runs them out. */
	for (int i = 0; i < NR_TIMERS; i++) {
		if (timer_cancel(&timers[i].t))
			store_relaxed(&timers[i].cancelled, 1);
		delay_ns(10 * NSEC_PER_USEC);
	}
	return NULL;
}

static int cancel_main(void *arg)
{
	uint64_t now, t0;
	pthread_t pt;
	unsigned done;

	(void)arg;
	/* Cancel before expiry: every other timer; the rest fire once. */
	reset_timers();
	now = fast_ns();
	for (int i = 0; i < NR_TIMERS; i++)
		CHECK_OK(timer_arm(&timers[i].t, now + NSEC_PER_MSEC +
				   (uint64_t)(i % 17) * 100 * NSEC_PER_USEC,
				   on_fire));
	for (int i = 0; i < NR_TIMERS; i += 2)
		CHECK(timer_cancel(&timers[i].t));
	CHECK(!timer_cancel(&timers[0].t)); /* not armed any more */
	uthread_sleep_ns(10 * NSEC_PER_MSEC);
	t0 = now_ns();
	while (load_relaxed(&nr_fired) < NR_TIMERS / 2) {
		CHECK(now_ns() - t0 < 5 * NSEC_PER_SEC);
		uthread_sleep_ns(NSEC_PER_MSEC);
	}
	uthread_sleep_ns(5 * NSEC_PER_MSEC); /* late firings would show */
	for (int i = 0; i < NR_TIMERS; i++)
		CHECK_EQ(load_relaxed(&timers[i].fired), i % 2);
	CHECK_EQ(load_relaxed(&nr_fired), NR_TIMERS / 2);
	for (int i = 1; i < NR_TIMERS; i += 2)
		CHECK(!timer_cancel(&timers[i].t)); /* fired: too late */

	/* Cancel racing with expiry, from another thread: each timer ends
	 * up cancelled or fired, never both, never neither. */
	reset_timers();
	store_relaxed(&go, 0);
	CHECK_EQ(pthread_create(&pt, NULL, canceller, NULL), 0);
	now = fast_ns();
	for (int i = 0; i < NR_TIMERS; i++)
		CHECK_OK(timer_arm(&timers[i].t, now + (uint64_t)i * 20 *
				   NSEC_PER_USEC, on_fire));
	store_release(&go, 1);
	t0 = now_ns();
	do {
		CHECK(now_ns() - t0 < 5 * NSEC_PER_SEC);
		uthread_sleep_ns(100 * NSEC_PER_USEC);
		done = 0;
		for (int i = 0; i < NR_TIMERS; i++)
			done += load_relaxed(&timers[i].fired) +
				load_relaxed(&timers[i].cancelled);
	} while (done < NR_TIMERS);
	CHECK_EQ(pthread_join(pt, NULL), 0);
	uthread_sleep_ns(2 * NSEC_PER_MSEC);
	unsigned nc = 0;

	for (int i = 0; i < NR_TIMERS; i++) {
		CHECK_EQ(load_relaxed(&timers[i].fired) +
			 load_relaxed(&timers[i].cancelled), 1);
		nc += load_relaxed(&timers[i].cancelled);
	}
	printf("race: %u cancelled, %u fired\n", nc, NR_TIMERS - nc);
	return 0;
}

int main(void)
{
	struct rt_config one = { .nr_vcores = 1 };
	struct rt_config three = { .nr_vcores = 3, .no_pin = 1 };

	CHECK_EQ(rt_main(&three, accuracy_main, NULL), 0);
	CHECK_EQ(rt_main(&one, order_main, NULL), 0);
	CHECK_EQ(rt_main(&one, cancel_main, NULL), 0);
	CHECK_EQ(rt_main(&three, cancel_main, NULL), 0);
	return TEST_PASS;
}
