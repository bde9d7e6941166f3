/* rt_vcore.c - the vcore API: counts, vcore_request lowering and raising
 * the vcore count, vcore_revoke making a vcore hand its queued uthreads to
 * siblings and give its core back (a sleep or a system call begun there
 * still completes), vcore_grant bringing it back, and idle vcores parking
 * and waking for work. */
#include <errno.h>
#include <pthread.h>
#include <unistd.h>

#include <atoll/atomic.h>
#include <atoll/clock.h>
#include <atoll/rt.h>
#include <atoll/sched.h>
#include <atoll/sys.h>
#include <atoll/uthread.h>
#include <atoll/vcore.h>

#include "harness.h"

#define NR_VC 4
#define TIMEOUT_NS (10 * NSEC_PER_SEC)

/* ---- helpers -------------------------------------------------------------------- */

static uint64_t ran_mask; /* atomic: bit v = some batch uthread ran on v */

static void note_vcore(void)
{
	int v = vcore_id();

	CHECK(v >= 0 && v < NR_VC);
	fetch_or_acq_rel(&ran_mask, 1ull << v);
}

/* CPU-bound: spins in slices and yields between them. */
static void *busy(void *arg)
{
	for (int i = 0; i < 10; i++) {
		note_vcore();
		delay_ns(100 * NSEC_PER_USEC);
		uthread_yield();
	}
	return arg;
}

/* Run n busy uthreads to completion; returns the vcores they ran on. */
static uint64_t run_batch(unsigned n)
{
	struct uthread *u[64];
	void *r;

	CHECK(n <= 64);
	store_relaxed(&ran_mask, 0);
	for (uintptr_t i = 0; i < n; i++)
		CHECK_OK(uthread_create(&u[i], NULL, busy, (void *)i));
	for (uintptr_t i = 0; i < n; i++) {
		CHECK_OK(uthread_join(u[i], &r));
		CHECK_EQ((uintptr_t)r, i);
	}
	return load_relaxed(&ran_mask);
}

static void wait_until_settled(unsigned v)
{
	uint64_t t0 = now_ns();

	while (vcore_preempt_pending(v)) {
		CHECK(now_ns() - t0 < TIMEOUT_NS);
		uthread_sleep_ns(100 * NSEC_PER_USEC);
	}
}

static uint64_t parks_of(unsigned v)
{
	struct sched_vcore_stats st;

	CHECK_OK(sched_vcore_stats(v, &st));
	return st.parks;
}

/* ---- request: lower and raise ---------------------------------------------------------- */

static void test_request(void)
{
	uint64_t mask = 0, t0;
	int r;

	CHECK_EQ(vcore_request(0), -EINVAL);
	CHECK_EQ(vcore_request(NR_VC + 1), -EINVAL);
	CHECK_EQ(vcore_revoke(0, 0), -EINVAL);
	CHECK_EQ(vcore_revoke(NR_VC, 0), -EINVAL);
	CHECK_EQ(vcore_grant(NR_VC, -1), -EINVAL);
	CHECK_EQ(vcore_grant(0, -1), -EBUSY);

	/* Lower to 2: vcores 2 and 3 give their cores back. */
	r = vcore_request(2);
	CHECK(r >= 2 && r <= NR_VC);
	wait_until_settled(2);
	wait_until_settled(3);
	CHECK_EQ(vcore_request(2), 2);
	CHECK(num_vcores() <= 2);
	CHECK(vcore_id() == 0 || vcore_id() == 1);
	for (int round = 0; round < 3; round++)
		mask |= run_batch(32);
	CHECK_EQ(mask & ~3ull, 0); /* nothing ran on a vcore given back */

	/* Raise to 4: the new vcores join in and take work. */
	CHECK_EQ(vcore_request(NR_VC), NR_VC);
	CHECK_EQ(vcore_grant(3, -1), -EBUSY);
	mask = 0;
	t0 = now_ns();
	while (!(mask & 0xc)) {
		CHECK(now_ns() - t0 < TIMEOUT_NS);
		mask |= run_batch(32);
	}
}

/* ---- revoke with queued uthreads ------------------------------------------------------------ */

#define NR_VICTIMS 32

static uint32_t revoker_taken; /* atomic: one probe becomes the revoker */
static int revoked_vc = -1;    /* atomic */

static void *victim(void *arg)
{
	for (int i = 0; i < 5; i++) {
		/* Queued on the revoked vcore, yet never run there. */
		CHECK(vcore_id() != load_relaxed(&revoked_vc));
		delay_ns(20 * NSEC_PER_USEC);
		uthread_yield();
	}
	return arg;
}

static int pipe_fds[2];
static uint32_t probe_round; /* atomic: which test_revoke round */

static void *late_writer(void *arg)
{
	(void)arg;
	usleep(20000);
	CHECK_EQ(write(pipe_fds[1], "x", 1), 1);
	return NULL;
}

static void *probe(void *arg)
{
	struct uthread *u[NR_VICTIMS];
	pthread_t pt;
	char c = 0;
	uint32_t expected = 0;
	int v = vcore_id();
	void *r;

	(void)arg;
	if (v == 0 || !cas_acq_rel(&revoker_taken, &expected, 1))
		return NULL;
	/* We run on vcore v, which no one else does now. With no
	 * scheduling point in between, queue victims on v and revoke it:
	 * they must all run elsewhere. */
	store_relaxed(&revoked_vc, v);
	for (uintptr_t i = 0; i < NR_VICTIMS; i++)
		CHECK_OK(uthread_create(&u[i], NULL, victim, (void *)i));
	CHECK_OK(vcore_revoke((unsigned)v, now_ns() + 10 * NSEC_PER_MSEC));
	CHECK(vcore_preempt_pending((unsigned)v));
	/* A system call begun on the vcore being revoked still completes
	 * (it is submitted on that vcore's ring as the vcore gives its core
	 * back), and so does a sleep begun there (its timer is armed there). */
	if (load_relaxed(&probe_round) % 2) {
		CHECK_EQ(pthread_create(&pt, NULL, late_writer, NULL), 0);
		CHECK_EQ(sys_read(pipe_fds[0], &c, 1), 1);
		CHECK_EQ(c, 'x');
		CHECK_EQ(pthread_join(pt, NULL), 0);
	} else {
		uthread_sleep_ns(NSEC_PER_MSEC);
	}
	for (uintptr_t i = 0; i < NR_VICTIMS; i++) {
		CHECK_OK(uthread_join(u[i], &r));
		CHECK_EQ((uintptr_t)r, i);
	}
	CHECK(vcore_id() != v);
	return (void *)(intptr_t)v;
}

static void test_revoke(void)
{
	struct uthread *p[16];
	uint64_t t0 = now_ns(), parks0[NR_VC], mask;
	int v = -1;
	void *r;

	CHECK_EQ(pipe(pipe_fds), 0);
	store_relaxed(&revoker_taken, 0);
	for (unsigned i = 0; i < NR_VC; i++)
		parks0[i] = parks_of(i);
	/* Probes spread over the vcores by stealing; the first to land
	 * off vcore 0 (which cannot be revoked) does the test. */
	while (v < 0) {
		CHECK(now_ns() - t0 < TIMEOUT_NS);
		for (int i = 0; i < 16; i++)
			CHECK_OK(uthread_create(&p[i], NULL, probe, NULL));
		for (int i = 0; i < 16; i++) {
			CHECK_OK(uthread_join(p[i], &r));
			if (r)
				v = (int)(intptr_t)r;
		}
	}
	printf("revoked vcore %d\n", v);
	close(pipe_fds[0]);
	close(pipe_fds[1]);
	fetch_add_relaxed(&probe_round, 1);
	wait_until_settled((unsigned)v);
	/* It gave its core back: it is not granted and has parked. */
	CHECK(parks_of((unsigned)v) > parks0[v]);
	mask = run_batch(32);
	CHECK_EQ(mask & (1ull << v), 0);
	CHECK_EQ(vcore_grant((unsigned)v, -1), 0);
	CHECK_EQ(vcore_grant((unsigned)v, -1), -EBUSY);
	store_relaxed(&revoked_vc, -1);
	/* Granted again, it takes work again. */
	mask = 0;
	t0 = now_ns();
	while (!(mask & (1ull << v))) {
		CHECK(now_ns() - t0 < TIMEOUT_NS);
		mask |= run_batch(32);
	}
}

/* ---- idle: park, then wake for work ---------------------------------------------------------------- */

static void test_idle(void)
{
	struct sched_vcore_stats before[NR_VC], after[NR_VC];
	uint64_t t0 = now_ns();
	int me, others_woke = 0, others_ran = 0;

	/* Idle far longer than idle_poll_ns: everyone but us parks. */
	uthread_sleep_ns(20 * NSEC_PER_MSEC);
	while (num_vcores() > 1) {
		CHECK(now_ns() - t0 < TIMEOUT_NS);
		uthread_sleep_ns(NSEC_PER_MSEC);
	}
	for (unsigned i = 0; i < NR_VC; i++) {
		CHECK(parks_of(i) > 0);
		CHECK_OK(sched_vcore_stats(i, &before[i]));
	}
	/* Work arrives: parked vcores are woken to share it. */
	me = vcore_id();
	run_batch(32);
	for (unsigned i = 0; i < NR_VC; i++) {
		CHECK_OK(sched_vcore_stats(i, &after[i]));
		if ((int)i == me)
			continue;
		others_woke += after[i].wakeups > before[i].wakeups;
		others_ran += after[i].runs > before[i].runs;
	}
	CHECK(others_woke > 0);
	CHECK(others_ran > 0);
}

static int vcore_main(void *arg)
{
	(void)arg;
	CHECK_EQ(max_vcores(), NR_VC);
	CHECK(num_vcores() >= 1 && num_vcores() <= NR_VC);
	CHECK(vcore_id() >= 0 && vcore_id() < NR_VC);
	vcore_yield(); /* from uthread context: returns at once */

	test_request();
	test_revoke();  /* with a sleep */
	test_revoke();  /* with a system call */
	test_idle();
	return 0;
}

int main(void)
{
	struct rt_config cfg = {
		.nr_vcores = NR_VC, /* oversubscribed on small machines */
		.idle_poll_ns = 200 * NSEC_PER_USEC,
		.no_pin = 1,
	};

	CHECK_EQ(max_vcores(), 0); /* no runtime */
	CHECK_EQ(vcore_id(), -1);
	CHECK_EQ(rt_main(&cfg, vcore_main, NULL), 0);
	return TEST_PASS;
}
