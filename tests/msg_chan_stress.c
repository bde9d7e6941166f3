/* msg_chan_stress.c - ordering and no loss under stress: millions of
 * sequence-numbered messages, inline and by reference, checked one by
 * one (sequence and payload).
 *
 *  1. plain threads, both directions at once: four threads (the reader
 *     and the writer of each endpoint run concurrently), a small ring and
 *     data buffer so that both sides keep finding it full or empty, and a
 *     short poll time so that they keep sleeping on their doorbells;
 *  2. uthreads on two vcores, batched writes and reads, with uthreads
 *     that only yield sharing the vcores;
 *  3. uthreads on ONE vcore: the writer and the reader must take turns,
 *     which only works if a waiting side lets its vcore run the other
 *     (its poll loop yields, then it sleeps as a uthread).
 */
#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <string.h>
#include <sys/uio.h>

#include <atoll/atomic.h>
#include <atoll/chan.h>
#include <atoll/rt.h>
#include <atoll/uthread.h>

#include "harness.h"

#define MAXLEN 700

/* Message seq: its length, and its bytes after the 8-byte sequence. */
static size_t len_of(uint64_t seq)
{
	uint64_t h = seq * 0x9e3779b97f4a7c15ull;

	if ((h >> 60) == 0)		/* 1 in 16: by reference */
		return 57 + (size_t)((h >> 20) % (MAXLEN - 57));
	return 8 + (size_t)((h >> 30) % (CHAN_INLINE_MAX - 8 + 1));
}

static void make_msg(unsigned char *p, uint64_t seq)
{
	size_t len = len_of(seq);

	memcpy(p, &seq, 8);
	for (size_t i = 8; i < len; i++)
		p[i] = (unsigned char)(seq ^ i);
}

/* 0 if buf (len bytes) is message `want`, else prints and fails. */
static void check_msg(const unsigned char *p, size_t len, uint64_t want,
		      const char *who)
{
	uint64_t seq;

	if (len < 8) {
		fprintf(stderr, "FAIL %s: message %llu: length %zu\n", who,
			(unsigned long long)want, len);
		exit(TEST_FAIL);
	}
	memcpy(&seq, p, 8);
	if (seq != want || len != len_of(seq)) {
		fprintf(stderr, "FAIL %s: got message %llu (%zu bytes), "
			"expected %llu (%zu bytes)\n", who,
			(unsigned long long)seq, len, (unsigned long long)want,
			len_of(want));
		exit(TEST_FAIL);
	}
	for (size_t i = 8; i < len; i++)
		if (p[i] != (unsigned char)(seq ^ i)) {
			fprintf(stderr, "FAIL %s: message %llu byte %zu\n", who,
				(unsigned long long)seq, i);
			exit(TEST_FAIL);
		}
}

/* ---- 1. plain threads, both directions ------------------------------------ */

struct role {
	struct chan *c;
	uint64_t n;
	const char *name;
	pthread_t th;
};

static void *writer_thread(void *arg)
{
	struct role *r = arg;
	unsigned char buf[MAXLEN];

	for (uint64_t s = 0; s < r->n; s++) {
		make_msg(buf, s);
		CHECK_EQ(chan_write(r->c, buf, len_of(s), 0),
			 (long long)len_of(s));
	}
	return NULL;
}

static void *reader_thread(void *arg)
{
	struct role *r = arg;
	unsigned char buf[MAXLEN];

	for (uint64_t s = 0; s < r->n; s++) {
		ssize_t n = chan_read(r->c, buf, sizeof(buf), 0);

		CHECK(n >= 0);
		check_msg(buf, (size_t)n, s, r->name);
	}
	return NULL;
}

static void stress_threads(uint64_t n)
{
	struct chan_config cfg = { .nslots = 32, .data_size = 4096,
				   .poll_ns = 2000 };
	struct role roles[4];
	struct chan *a, *b;
	struct chan_stats sa, sb;

	CHECK_OK(chan_pair(&a, &b, &cfg));
	roles[0] = (struct role){ a, n, "a->b writer", 0 };
	roles[1] = (struct role){ b, n, "a->b reader", 0 };
	roles[2] = (struct role){ b, n, "b->a writer", 0 };
	roles[3] = (struct role){ a, n, "b->a reader", 0 };
	for (int i = 0; i < 4; i++)
		CHECK_EQ(pthread_create(&roles[i].th, NULL, i % 2 ?
					reader_thread : writer_thread,
					&roles[i]), 0);
	for (int i = 0; i < 4; i++)
		pthread_join(roles[i].th, NULL);
	chan_stats(a, &sa);
	chan_stats(b, &sb);
	CHECK_EQ(sa.sent, n);
	CHECK_EQ(sa.received, n);
	CHECK_EQ(sb.sent, n);
	CHECK_EQ(sb.received, n);
	CHECK_EQ(sa.bad + sb.bad, 0);
	printf("threads: %llu messages each way; a: full %llu, tx sleeps "
	       "%llu, rx sleeps %llu, bells %llu\n", (unsigned long long)n,
	       (unsigned long long)sa.full, (unsigned long long)sa.tx_sleeps,
	       (unsigned long long)sa.rx_sleeps, (unsigned long long)sa.bells);
	/* Sleeping happened: the doorbell path was exercised. */
	CHECK(sa.tx_sleeps + sa.rx_sleeps + sb.tx_sleeps + sb.rx_sleeps > 0);
	chan_close(a);
	chan_close(b);
}

/* ---- 2 and 3. uthreads ---------------------------------------------------------- */

#define BATCH 16

struct ustress {
	struct chan *a, *b;
	uint64_t n;
	uint32_t stop;          /* the yielders stop */
	uint64_t yields;        /* by the yielders, atomic */
	uint64_t reader_waits;  /* times the reader found nothing */
};

static void *u_writer(void *arg)
{
	struct ustress *u = arg;
	static unsigned char bufs[BATCH][MAXLEN];
	struct iovec v[BATCH];
	uint64_t s = 0;

	while (s < u->n) {
		unsigned k = (unsigned)(s % BATCH) + 1;

		if (k > u->n - s)
			k = (unsigned)(u->n - s);
		for (unsigned i = 0; i < k; i++) {
			make_msg(bufs[i], s + i);
			v[i].iov_base = bufs[i];
			v[i].iov_len = len_of(s + i);
		}
		CHECK_EQ(chan_write_batch(u->a, v, k, 0), (long long)k);
		s += k;
	}
	return NULL;
}

static void *u_reader(void *arg)
{
	struct ustress *u = arg;
	static unsigned char bufs[BATCH][MAXLEN];
	struct iovec v[BATCH];
	uint64_t s = 0;

	while (s < u->n) {
		int k;

		for (int i = 0; i < BATCH; i++) {
			v[i].iov_base = bufs[i];
			v[i].iov_len = MAXLEN;
		}
		k = chan_read_batch(u->b, v, BATCH, CHAN_DONTWAIT);
		if (k == -EAGAIN) {
			u->reader_waits++;
			k = chan_read_batch(u->b, v, BATCH, 0);
		}
		CHECK(k > 0);
		for (int i = 0; i < k; i++)
			check_msg(bufs[i], v[i].iov_len, s++, "uthread reader");
	}
	return NULL;
}

static void *u_yielder(void *arg)
{
	struct ustress *u = arg;

	while (!load_acquire(&u->stop)) {
		fetch_add_relaxed(&u->yields, 1);
		uthread_yield();
	}
	return NULL;
}

static int ustress_main(void *arg)
{
	struct ustress *u = arg;
	struct uthread *w, *r, *y[2];

	CHECK_OK(uthread_create(&y[0], NULL, u_yielder, u));
	CHECK_OK(uthread_create(&y[1], NULL, u_yielder, u));
	CHECK_OK(uthread_create(&r, NULL, u_reader, u));
	CHECK_OK(uthread_create(&w, NULL, u_writer, u));
	CHECK_OK(uthread_join(w, NULL));
	CHECK_OK(uthread_join(r, NULL));
	/* Release: pairs with the yielders' load_acquire of stop. */
	store_release(&u->stop, 1);
	CHECK_OK(uthread_join(y[0], NULL));
	CHECK_OK(uthread_join(y[1], NULL));
	return 0;
}

static void stress_uthreads(uint64_t n, unsigned nr_vcores, uint64_t poll_ns)
{
	struct chan_config cfg = { .nslots = 64, .data_size = 8192,
				   .poll_ns = poll_ns };
	struct rt_config rc = { .nr_vcores = nr_vcores, .no_pin = 1 };
	struct ustress u = { .n = n };
	struct chan_stats sa, sb;

	CHECK_OK(chan_pair(&u.a, &u.b, &cfg));
	CHECK_EQ(rt_main(&rc, ustress_main, &u), 0);
	chan_stats(u.a, &sa);
	chan_stats(u.b, &sb);
	CHECK_EQ(sa.sent, n);
	CHECK_EQ(sb.received, n);
	printf("uthreads on %u vcore(s): %llu messages; full %llu, tx sleeps "
	       "%llu, rx sleeps %llu, yields by others %llu\n", nr_vcores,
	       (unsigned long long)n, (unsigned long long)sa.full,
	       (unsigned long long)sa.tx_sleeps,
	       (unsigned long long)sb.rx_sleeps,
	       (unsigned long long)load_relaxed(&u.yields));
	/* The other uthreads ran meanwhile. */
	CHECK(load_relaxed(&u.yields) > 0);
	chan_close(u.a);
	chan_close(u.b);
}

int main(void)
{
	stress_threads(test_scale(2000000));
	stress_uthreads(test_scale(2000000), 2, 0);
	/* One vcore, a tiny poll time: a waiting side must give the vcore
	 * to the other. */
	stress_uthreads(test_scale(300000), 1, 1000);
	printf("msg_chan_stress: ok\n");
	return TEST_PASS;
}
