/* msg_chan_block.c - waiting: a full lane blocks the writer without losing
 * a message (slots full, and data buffer full), on a plain thread and as a
 * uthread; a uthread reader blocked on an empty lane lets its vcore run
 * other uthreads, and wakes on the doorbell; a plain-thread reader wakes
 * on a uthread's write and the other way round; vcore context never
 * blocks. */
#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <string.h>
#include <unistd.h>

#include <atoll/atomic.h>
#include <atoll/chan.h>
#include <atoll/clock.h>
#include <atoll/event.h>
#include <atoll/rt.h>
#include <atoll/uthread.h>

#include "harness.h"

#define NSLOTS 8
#define DELAY_NS (50 * NSEC_PER_MSEC)

/* ---- full lane blocks a plain-thread writer -------------------------------- */

struct slow {
	struct chan *c;
	uint64_t n;
	size_t len;
	uint64_t started;       /* when the reader began reading */
};

static void *slow_reader(void *arg)
{
	struct slow *s = arg;
	unsigned char buf[2048];

	usleep(DELAY_NS / 1000);
	store_release(&s->started, now_ns());
	for (uint64_t i = 0; i < s->n; i++) {
		uint64_t v;

		CHECK_EQ(chan_read(s->c, buf, sizeof(buf), 0),
			 (long long)s->len);
		memcpy(&v, buf, sizeof(v));
		CHECK_EQ(v, i);
	}
	return NULL;
}

/* Write n messages of len bytes into a lane of NSLOTS slots and a 4 KiB
 * buffer while the reader starts DELAY_NS late. */
static void full_blocks_writer(size_t len)
{
	struct chan_config cfg = { .nslots = NSLOTS, .data_size = 4096,
				   .poll_ns = 1000 };
	struct slow s = { .n = 20 * NSLOTS, .len = len };
	unsigned char buf[2048] = { 0 };
	struct chan *a;
	struct chan_stats st;
	pthread_t th;
	uint64_t t0 = now_ns(), blocked_at = 0;

	CHECK_OK(chan_pair(&a, &s.c, &cfg));
	CHECK_EQ(pthread_create(&th, NULL, slow_reader, &s), 0);
	for (uint64_t i = 0; i < s.n; i++) {
		uint64_t before = now_ns();

		memcpy(buf, &i, sizeof(i));
		CHECK_EQ(chan_write(a, buf, len, 0), (long long)len);
		if (now_ns() - before > DELAY_NS / 2 && !blocked_at)
			blocked_at = i;
	}
	pthread_join(th, NULL);
	chan_stats(a, &st);
	/* The writer waited for the reader: it slept, and the write that
	 * found the lane full returned only after the reader started. */
	CHECK(st.tx_sleeps > 0);
	CHECK(st.full > 0);
	CHECK(blocked_at > 0);
	CHECK(load_acquire(&s.started) - t0 >= DELAY_NS);
	printf("plain writer, %zu-byte messages: blocked at message %llu, "
	       "%llu sleeps\n", len, (unsigned long long)blocked_at,
	       (unsigned long long)st.tx_sleeps);
	chan_close(a);
	chan_close(s.c);
}

/* ---- uthreads ------------------------------------------------------------------ */

struct ut {
	struct chan *a, *b;
	uint64_t n;
	uint64_t ticks;         /* progress of the ticker, atomic */
	uint32_t stop;
	uint64_t ticks_while_blocked;
};

static void *ticker(void *arg)
{
	struct ut *u = arg;

	while (!load_acquire(&u->stop)) {
		fetch_add_relaxed(&u->ticks, 1);
		uthread_yield();
	}
	return NULL;
}

static void *ut_reader(void *arg)
{
	struct ut *u = arg;
	uint64_t v, t0 = load_relaxed(&u->ticks);

	/* Nothing is written before the ticker has run a while: we block
	 * here and the (single) vcore must run the ticker. */
	CHECK_EQ(chan_read(u->b, &v, sizeof(v), 0), (long long)sizeof(v));
	u->ticks_while_blocked = load_relaxed(&u->ticks) - t0;
	CHECK_EQ(v, 42);
	/* Then a stream from the writer, through a full lane. */
	for (uint64_t i = 0; i < u->n; i++) {
		CHECK_EQ(chan_read(u->b, &v, sizeof(v), 0),
			 (long long)sizeof(v));
		CHECK_EQ(v, i);
	}
	return NULL;
}

static void *ut_writer(void *arg)
{
	struct ut *u = arg;
	uint64_t v = 42;

	/* Let the reader block first, while the ticker runs. */
	while (load_relaxed(&u->ticks) < 2000)
		uthread_yield();
	CHECK_EQ(chan_write(u->a, &v, sizeof(v), 0), (long long)sizeof(v));
	for (uint64_t i = 0; i < u->n; i++)
		CHECK_EQ(chan_write(u->a, &i, sizeof(i), 0),
			 (long long)sizeof(i));
	return NULL;
}

static int one_vcore_main(void *arg)
{
	struct ut *u = arg;
	struct uthread *t, *r, *w;

	CHECK_OK(uthread_create(&t, NULL, ticker, u));
	CHECK_OK(uthread_create(&r, NULL, ut_reader, u));
	CHECK_OK(uthread_create(&w, NULL, ut_writer, u));
	CHECK_OK(uthread_join(r, NULL));
	CHECK_OK(uthread_join(w, NULL));
	/* Release: pairs with the ticker's load_acquire of stop. */
	store_release(&u->stop, 1);
	CHECK_OK(uthread_join(t, NULL));
	return 0;
}

static void uthreads_one_vcore(void)
{
	struct chan_config cfg = { .nslots = NSLOTS, .poll_ns = 1000 };
	struct rt_config rc = { .nr_vcores = 1, .no_pin = 1 };
	struct ut u = { .n = 50 * NSLOTS };
	struct chan_stats sa, sb;

	CHECK_OK(chan_pair(&u.a, &u.b, &cfg));
	CHECK_EQ(rt_main(&rc, one_vcore_main, &u), 0);
	chan_stats(u.a, &sa);
	chan_stats(u.b, &sb);
	printf("one vcore: ticker ran %llu times while the reader waited; "
	       "reader slept %llu times, writer %llu\n",
	       (unsigned long long)u.ticks_while_blocked,
	       (unsigned long long)sb.rx_sleeps,
	       (unsigned long long)sa.tx_sleeps);
	CHECK(u.ticks_while_blocked >= 1000);
	CHECK(sb.rx_sleeps > 0);
	CHECK_EQ(sb.received, u.n + 1);
	chan_close(u.a);
	chan_close(u.b);
}

/* ---- a plain thread and a uthread, both ways ------------------------------------ */

struct mixed {
	struct chan *a, *b;
	uint64_t n;
	int64_t handler_ret;    /* what chan_read gave in vcore context */
	uint32_t handler_ran;
};

/* Runs in vcore context: an event handler polls without waiting (chan.h:
 * handlers pass CHAN_DONTWAIT). */
static void vcore_ctx_read(const struct event *ev, void *arg)
{
	struct mixed *m = arg;
	uint64_t v;

	(void)ev;
	m->handler_ret = chan_read(m->a, &v, sizeof(v), CHAN_DONTWAIT);
	/* Release: pairs with the load_acquire in mixed_main. */
	store_release(&m->handler_ran, 1);
}

static void *plain_echo(void *arg)
{
	struct mixed *m = arg;
	uint64_t v;

	for (uint64_t i = 0; i < m->n; i++) {
		CHECK_EQ(chan_read(m->b, &v, sizeof(v), 0), (long long)sizeof(v));
		CHECK_EQ(v, i);
		v = i * 3;
		CHECK_EQ(chan_write(m->b, &v, sizeof(v), 0), (long long)sizeof(v));
	}
	return NULL;
}

static int mixed_main(void *arg)
{
	struct mixed *m = arg;
	struct ev_queue *q;
	uint64_t v;

	/* Nothing written yet: without waiting, from a uthread and from an
	 * event handler, a read returns -EAGAIN. */
	CHECK_EQ(chan_read(m->a, &v, sizeof(v), CHAN_DONTWAIT), -EAGAIN);
	CHECK_OK(ev_queue_create(&q, 4, 0, vcore_ctx_read, m));
	CHECK_OK(ev_post(q, 1, NULL, 0));
	while (!load_acquire(&m->handler_ran))
		uthread_yield();
	CHECK_EQ(m->handler_ret, -EAGAIN);
	CHECK_OK(ev_queue_destroy(q));
	for (uint64_t i = 0; i < m->n; i++) {
		CHECK_EQ(chan_write(m->a, &i, sizeof(i), 0), (long long)sizeof(i));
		CHECK_EQ(chan_read(m->a, &v, sizeof(v), 0), (long long)sizeof(v));
		CHECK_EQ(v, i * 3);
		/* Now and then, let both sides fall asleep. */
		if (i % 64 == 0)
			uthread_sleep_ns(200000);
	}
	return 0;
}

static void uthread_and_thread(void)
{
	struct chan_config cfg = { .nslots = 4, .poll_ns = 5000 };
	struct rt_config rc = { .nr_vcores = 1, .no_pin = 1 };
	struct mixed m = { .n = test_scale(20000) };
	struct chan_stats sa, sb;
	pthread_t th;

	CHECK_OK(chan_pair(&m.a, &m.b, &cfg));
	CHECK_EQ(pthread_create(&th, NULL, plain_echo, &m), 0);
	CHECK_EQ(rt_main(&rc, mixed_main, &m), 0);
	pthread_join(th, NULL);
	chan_stats(m.a, &sa);
	chan_stats(m.b, &sb);
	CHECK(sb.rx_sleeps > 0);	/* the thread slept in poll(2) */
	CHECK(sa.rx_sleeps > 0);	/* the uthread slept in io_uring */
	printf("uthread <-> thread: %llu round trips; uthread slept %llu, "
	       "thread %llu times\n", (unsigned long long)m.n,
	       (unsigned long long)sa.rx_sleeps,
	       (unsigned long long)sb.rx_sleeps);
	chan_close(m.a);
	chan_close(m.b);
}

int main(void)
{
	full_blocks_writer(16);		/* slots run out */
	full_blocks_writer(1500);	/* the data buffer runs out */
	uthreads_one_vcore();
	uthread_and_thread();
	printf("msg_chan_block: ok\n");
	return TEST_PASS;
}
