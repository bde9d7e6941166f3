/* msg_chan_close.c - a closed peer wakes blocked parties with -EPIPE:
 * a reader sleeping on an empty lane (after it has read everything sent
 * before the close), a writer sleeping on a full lane, and both roles of
 * one endpoint at once; on plain threads and as uthreads. */
#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <unistd.h>

#include <atoll/atomic.h>
#include <atoll/chan.h>
#include <atoll/clock.h>
#include <atoll/rt.h>
#include <atoll/uthread.h>

#include "harness.h"

#define NSLOTS 4

struct party {
	struct chan *c;
	int64_t result;
	uint64_t got;           /* messages read before the error */
	uint32_t done;
};

/* Read until an error; count the messages. */
static void read_until_error(struct party *p)
{
	uint64_t v;
	ssize_t r;

	while ((r = chan_read(p->c, &v, sizeof(v), 0)) == sizeof(v)) {
		CHECK_EQ(v, p->got);
		p->got++;
	}
	p->result = r;
	/* Release: pairs with the load_acquire of done by the waiter. */
	store_release(&p->done, 1);
}

/* Write until an error (the lane fills up and the writer sleeps). */
static void write_until_error(struct party *p)
{
	uint64_t v = 0;
	ssize_t r;

	while ((r = chan_write(p->c, &v, sizeof(v), 0)) == sizeof(v))
		v++;
	p->got = v;
	p->result = r;
	store_release(&p->done, 1);
}

static void *reader_th(void *arg)
{
	read_until_error(arg);
	return NULL;
}

static void *writer_th(void *arg)
{
	write_until_error(arg);
	return NULL;
}

/* Wait until c's role slept at least once (the party is blocked). */
static void wait_sleeping(struct chan *c, bool reader)
{
	uint64_t t0 = now_ns();
	struct chan_stats st;

	for (;;) {
		chan_stats(c, &st);
		if ((reader ? st.rx_sleeps : st.tx_sleeps) > 0)
			break;
		CHECK(now_ns() - t0 < 10 * NSEC_PER_SEC);
		if (uthread_self())
			uthread_sleep_ns(100000);
		else
			usleep(100);
	}
	/* Let it settle in poll. */
	if (uthread_self())
		uthread_sleep_ns(2000000);
	else
		usleep(2000);
}

static void threads(void)
{
	struct chan_config cfg = { .nslots = NSLOTS, .poll_ns = 1000 };
	struct party r = { 0 }, w = { 0 }, r2 = { 0 }, w2 = { 0 };
	struct chan *a, *b;
	pthread_t tr, tw;

	/* A reader sleeping on an empty lane; 3 messages sent first. */
	CHECK_OK(chan_pair(&a, &b, &cfg));
	r.c = b;
	for (uint64_t i = 0; i < 3; i++)
		CHECK_EQ(chan_write(a, &i, sizeof(i), 0), (long long)sizeof(i));
	CHECK_EQ(pthread_create(&tr, NULL, reader_th, &r), 0);
	wait_sleeping(b, true);
	CHECK(!load_acquire(&r.done));
	CHECK_OK(chan_close(a));
	pthread_join(tr, NULL);
	CHECK_EQ(r.result, -EPIPE);
	CHECK_EQ(r.got, 3);
	chan_close(b);

	/* A writer sleeping on a full lane. */
	CHECK_OK(chan_pair(&a, &b, &cfg));
	w.c = a;
	CHECK_EQ(pthread_create(&tw, NULL, writer_th, &w), 0);
	wait_sleeping(a, false);
	CHECK(!load_acquire(&w.done));
	{
		struct chan_stats st;

		chan_stats(a, &st);
		CHECK_EQ(st.sent, NSLOTS);
	}
	CHECK_OK(chan_close(b));
	pthread_join(tw, NULL);
	CHECK_EQ(w.result, -EPIPE);
	chan_close(a);

	/* Both roles of one endpoint blocked at once: endpoint a's reader
	 * (nothing comes from b) and writer (b reads nothing). */
	CHECK_OK(chan_pair(&a, &b, &cfg));
	r2.c = a;
	w2.c = a;
	CHECK_EQ(pthread_create(&tr, NULL, reader_th, &r2), 0);
	CHECK_EQ(pthread_create(&tw, NULL, writer_th, &w2), 0);
	wait_sleeping(a, true);
	wait_sleeping(a, false);
	CHECK_OK(chan_close(b));
	pthread_join(tr, NULL);
	pthread_join(tw, NULL);
	CHECK_EQ(r2.result, -EPIPE);
	CHECK_EQ(w2.result, -EPIPE);
	chan_close(a);
}

/* ---- uthreads ------------------------------------------------------------------ */

static void *u_reader(void *arg)
{
	read_until_error(arg);
	return NULL;
}

static void *u_writer(void *arg)
{
	write_until_error(arg);
	return NULL;
}

static int u_main(void *arg)
{
	struct chan_config cfg = { .nslots = NSLOTS, .poll_ns = 1000 };
	struct party r = { 0 }, w = { 0 };
	struct uthread *ur, *uw;
	struct chan *a, *b;

	(void)arg;
	/* Reader and writer of one endpoint, as uthreads, both asleep in
	 * their vcores' io_uring; the peer closes from a third uthread. */
	CHECK_OK(chan_pair(&a, &b, &cfg));
	r.c = a;
	w.c = a;
	CHECK_OK(uthread_create(&ur, NULL, u_reader, &r));
	CHECK_OK(uthread_create(&uw, NULL, u_writer, &w));
	wait_sleeping(a, true);
	wait_sleeping(a, false);
	CHECK(!load_acquire(&r.done) && !load_acquire(&w.done));
	CHECK_OK(chan_close(b));
	CHECK_OK(uthread_join(ur, NULL));
	CHECK_OK(uthread_join(uw, NULL));
	CHECK_EQ(r.result, -EPIPE);
	CHECK_EQ(w.result, -EPIPE);
	CHECK_EQ(w.got, NSLOTS);
	chan_close(a);
	return 0;
}

static void uthreads(unsigned nr_vcores)
{
	struct rt_config rc = { .nr_vcores = nr_vcores, .no_pin = 1 };

	CHECK_EQ(rt_main(&rc, u_main, NULL), 0);
}

int main(void)
{
	threads();
	uthreads(1);
	uthreads(2);
	printf("msg_chan_close: ok\n");
	return TEST_PASS;
}
