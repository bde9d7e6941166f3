/* rt_sys_pipe.c - on a single vcore, a uthread blocked reading an empty
 * pipe (through the ring, or inside a sys_offload'ed read()) does not stop
 * the others: a second uthread keeps running, then writes, and the reader
 * wakes with the data. Also: an idle vcore sleeps through a blocked read
 * and is woken by the completion, and parks stay parked after an outside
 * wake-up (the eventfd read is re-armed). */
#include <errno.h>
#include <pthread.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <atoll/clock.h>
#include <atoll/rt.h>
#include <atoll/sched.h>
#include <atoll/sys.h>
#include <atoll/uthread.h>
#include <atoll/vcore.h>

#include "harness.h"

#define MSG "the quick brown fox jumps over the lazy vcore"
#define SPIN_ITERS 2000

struct pipe_case {
	int fds[2];
	int use_offload;
	int reader_in;          /* the reader is about to block */
	int reader_out;         /* the reader has returned */
	long iters_at_wake;     /* the other uthread's count seen on wake-up */
	long iters;             /* bumped by the other uthread */
	ssize_t got;
	char buf[128];
};

static long blocking_read(void *arg)
{
	struct pipe_case *pc = arg;
	ssize_t r = read(pc->fds[0], pc->buf, sizeof(pc->buf));

	return r < 0 ? -errno : r;
}

static void *reader(void *arg)
{
	struct pipe_case *pc = arg;

	pc->reader_in = 1;
	if (pc->use_offload)
		pc->got = sys_offload(blocking_read, pc);
	else
		pc->got = sys_read(pc->fds[0], pc->buf, sizeof(pc->buf));
	pc->iters_at_wake = pc->iters;
	pc->reader_out = 1;
	return NULL;
}

static void *spinner(void *arg)
{
	struct pipe_case *pc = arg;

	/* One vcore: if the reader's block held it, we would never run. */
	CHECK(pc->reader_in);
	for (int i = 0; i < SPIN_ITERS; i++) {
		pc->iters++;
		uthread_yield();
		CHECK(!pc->reader_out);
	}
	if (pc->use_offload)
		CHECK_EQ(write(pc->fds[1], MSG, sizeof(MSG)), sizeof(MSG));
	else
		CHECK_EQ(sys_write(pc->fds[1], MSG, sizeof(MSG)), sizeof(MSG));
	return NULL;
}

static void run_pipe_case(int use_offload)
{
	struct pipe_case pc;
	struct uthread *r, *s;

	memset(&pc, 0, sizeof(pc));
	pc.use_offload = use_offload;
	CHECK_OK(pipe(pc.fds));
	CHECK_OK(uthread_create(&r, NULL, reader, &pc));
	CHECK_OK(uthread_create(&s, NULL, spinner, &pc));
	CHECK_OK(uthread_join(s, NULL));
	CHECK_OK(uthread_join(r, NULL));
	CHECK_EQ(pc.iters, SPIN_ITERS);
	CHECK_EQ(pc.iters_at_wake, SPIN_ITERS);
	CHECK_EQ(pc.got, sizeof(MSG));
	CHECK(memcmp(pc.buf, MSG, sizeof(MSG)) == 0);
	close(pc.fds[0]);
	close(pc.fds[1]);
}

/* Two uthreads on one vcore pass a counter back and forth over two pipes:
 * every round blocks one of them in sys_read. */
struct pingpong {
	int ab[2], ba[2];
	int rounds;
};

static void *ping(void *arg)
{
	struct pingpong *pp = arg;

	for (uint32_t i = 0; i < (uint32_t)pp->rounds; i++) {
		uint32_t v;

		CHECK_EQ(sys_write(pp->ab[1], &i, sizeof(i)), sizeof(i));
		CHECK_EQ(sys_read(pp->ba[0], &v, sizeof(v)), sizeof(v));
		CHECK_EQ(v, i + 1);
	}
	return NULL;
}

static void *pong(void *arg)
{
	struct pingpong *pp = arg;

	for (uint32_t i = 0; i < (uint32_t)pp->rounds; i++) {
		uint32_t v;

		CHECK_EQ(sys_read(pp->ab[0], &v, sizeof(v)), sizeof(v));
		CHECK_EQ(v, i);
		v++;
		CHECK_EQ(sys_write(pp->ba[1], &v, sizeof(v)), sizeof(v));
	}
	return NULL;
}

static void run_pingpong(void)
{
	struct pingpong pp = { .rounds = (int)test_scale(5000) };
	struct uthread *a, *b;

	CHECK_OK(pipe(pp.ab));
	CHECK_OK(pipe(pp.ba));
	CHECK_OK(uthread_create(&a, NULL, ping, &pp));
	CHECK_OK(uthread_create(&b, NULL, pong, &pp));
	CHECK_OK(uthread_join(a, NULL));
	CHECK_OK(uthread_join(b, NULL));
	close(pp.ab[0]);
	close(pp.ab[1]);
	close(pp.ba[0]);
	close(pp.ba[1]);
}

/* A plain thread writes after a delay while the only uthread waits in
 * sys_read: the vcore has nothing to run, parks, and the completion wakes
 * it. */
struct late_writer {
	int fd;
	uint64_t delay_ns;
};

static void *late_write(void *arg)
{
	struct late_writer *lw = arg;
	struct timespec ts = { 0, (long)lw->delay_ns };

	nanosleep(&ts, NULL);
	CHECK_EQ(write(lw->fd, MSG, sizeof(MSG)), sizeof(MSG));
	return NULL;
}

static long join_thread(void *arg)
{
	return -pthread_join(*(pthread_t *)arg, NULL);
}

static long sleep_20ms(void *arg)
{
	struct timespec ts = { 0, 20 * 1000 * 1000 };

	(void)arg;
	return nanosleep(&ts, NULL);
}

static void run_idle_wake(void)
{
	struct sched_vcore_stats st0, st1;
	struct late_writer lw = { .delay_ns = 50 * NSEC_PER_MSEC };
	int fds[2];
	pthread_t t;
	char buf[128];
	uint64_t t0, dt;

	CHECK_OK(pipe(fds));
	lw.fd = fds[1];
	CHECK_OK(sched_vcore_stats(0, &st0));
	CHECK_EQ(pthread_create(&t, NULL, late_write, &lw), 0);
	t0 = now_ns();
	CHECK_EQ(sys_read(fds[0], buf, sizeof(buf)), sizeof(MSG));
	dt = now_ns() - t0;
	CHECK(memcmp(buf, MSG, sizeof(MSG)) == 0);
	CHECK_OK(sched_vcore_stats(0, &st1));
	/* It slept rather than spun: a handful of parks, not thousands. */
	CHECK(st1.parks > st0.parks);
	CHECK(st1.parks - st0.parks < 100);
	CHECK(dt < 5 * NSEC_PER_SEC);
	CHECK_OK(sys_offload(join_thread, &t));

	/* An offload worker wakes us through the eventfd, with nothing in
	 * flight on the ring (the vcore parked while the worker slept): the
	 * vcore must still park for real afterwards (an unconsumed eventfd
	 * completion would make every later park return at once). */
	CHECK_OK(sys_offload(sleep_20ms, NULL));
	CHECK_OK(sched_vcore_stats(0, &st0));
	uthread_sleep_ns(100 * NSEC_PER_MSEC);
	CHECK_OK(sys_timeout(50 * NSEC_PER_MSEC));
	CHECK_OK(sched_vcore_stats(0, &st1));
	CHECK(st1.parks - st0.parks < 100);
	close(fds[0]);
	close(fds[1]);
}

/* Both ends through sys_offload: two workers block at once (the pool must
 * grow rather than queue the write behind the read). */
struct two_offload {
	int fds[2];
	int reading;            /* atomic: the read's worker is in read() */
	char buf[64];
};

static long off_read(void *arg)
{
	struct two_offload *to = arg;
	ssize_t r;

	__atomic_store_n(&to->reading, 1, __ATOMIC_RELEASE);
	r = read(to->fds[0], to->buf, sizeof(to->buf));

	return r < 0 ? -errno : r;
}

static long off_write(void *arg)
{
	struct two_offload *to = arg;
	ssize_t r;

	r = write(to->fds[1], MSG, sizeof(MSG));
	return r < 0 ? -errno : r;
}

static void *off_reader(void *arg)
{
	return (void *)sys_offload(off_read, arg);
}

static void run_two_offloads(void)
{
	struct two_offload to;
	struct uthread *r;
	void *got;

	memset(&to, 0, sizeof(to));
	CHECK_OK(pipe(to.fds));
	CHECK_OK(uthread_create(&r, NULL, off_reader, &to));
	/* The only worker so far is taken by the read (it may take a moment
	 * to enter read(); a little more and it is blocked there). */
	while (!__atomic_load_n(&to.reading, __ATOMIC_ACQUIRE))
		uthread_sleep_ns(NSEC_PER_MSEC);
	uthread_sleep_ns(10 * NSEC_PER_MSEC);
	CHECK_EQ(sys_offload(off_write, &to), sizeof(MSG));
	CHECK_OK(uthread_join(r, &got));
	CHECK_EQ((long)got, sizeof(MSG));
	CHECK(memcmp(to.buf, MSG, sizeof(MSG)) == 0);
	close(to.fds[0]);
	close(to.fds[1]);
}

static int single_main(void *arg)
{
	(void)arg;
	CHECK_EQ(max_vcores(), 1);
	if (!sys_uses_io_uring())
		printf("note: io_uring unavailable; the ring cases run on "
		       "the offload pool\n");
	run_pipe_case(0);
	run_pipe_case(1);
	run_pingpong();
	run_idle_wake();
	run_two_offloads();
	return 0;
}

int main(void)
{
	/* The park counts below assume the default idle poll, whatever the
	 * environment says. */
	struct rt_config one = { .nr_vcores = 1,
				 .idle_poll_ns = RT_DEFAULT_IDLE_POLL_NS };

	CHECK_EQ(rt_main(&one, single_main, NULL), 0);
	return TEST_PASS;
}
