/* rt_event.c - event queues: handlers run on the bound vcore and see every
 * event once in per-poster order (posters: plain pthreads and uthreads);
 * a post wakes a parked bound vcore; while the bound vcore is revoked,
 * vcore 0 runs its handlers; a full queue refuses and counts;
 * ev_wait blocks a uthread until an event arrives; argument errors. */
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <unistd.h>

#include <atoll/atomic.h>
#include <atoll/clock.h>
#include <atoll/event.h>
#include <atoll/rt.h>
#include <atoll/sched.h>
#include <atoll/uthread.h>
#include <atoll/vcore.h>

#include "harness.h"

#define NR_PTHREADS 3
#define NR_UTHREADS 4
#define NR_PRODUCERS (NR_PTHREADS + NR_UTHREADS)
#define EV_TYPE_SEQ 7u

struct seq_msg {
	uint32_t producer;
	uint32_t pad;
	uint64_t seq;
};

/* ---- handlers on bound vcores ------------------------------------------ */

struct sink {
	int vcore;                      /* where the handler must run */
	uint64_t next[NR_PRODUCERS];    /* handler only */
	uint64_t count;                 /* written by the handler, atomic */
};

static void seq_handler(const struct event *ev, void *arg)
{
	struct sink *s = arg;
	struct seq_msg m;

	CHECK_EQ(vcore_id(), s->vcore);
	CHECK_EQ(ev->type, EV_TYPE_SEQ);
	CHECK_EQ(ev->len, sizeof(m));
	memcpy(&m, ev->payload, sizeof(m));
	CHECK(m.producer < NR_PRODUCERS);
	CHECK_EQ(m.seq, s->next[m.producer]);
	s->next[m.producer]++;
	/* Release pairs with the main uthread's acquire: the checks above
	 * are done when it sees the count. */
	store_release(&s->count, s->count + 1);
}

struct producer {
	struct ev_queue *q[2];
	unsigned nq;
	uint32_t id;
	uint64_t n;
	int is_uthread;
	uint64_t refused;               /* -EAGAIN seen, then retried */
};

static void post_all(struct producer *p)
{
	for (uint64_t i = 0; i < p->n; i++) {
		for (unsigned k = 0; k < p->nq; k++) {
			struct seq_msg m = { .producer = p->id, .seq = i };
			unsigned tries = 0;
			int r;

			/* Full: retry, sleeping a little once the consumer
			 * looks descheduled (vcores share the cpus here). */
			while ((r = ev_post(p->q[k], EV_TYPE_SEQ, &m,
					    sizeof(m))) == -EAGAIN) {
				p->refused++;
				if (p->is_uthread)
					tries++ < 8 ? uthread_yield()
						    : uthread_sleep_ns(20000);
				else
					tries++ < 8 ? (void)sched_yield()
						    : (void)usleep(20);
			}
			CHECK_EQ(r, 0);
		}
	}
}

static void *producer_pthread(void *arg)
{
	CHECK_EQ(vcore_id(), -1);
	post_all(arg);
	return NULL;
}

static void *producer_uthread(void *arg)
{
	post_all(arg);
	return NULL;
}

static void wait_count(const uint64_t *count, uint64_t want)
{
	uint64_t t0 = now_ns();

	/* Acquire pairs with the handler's release of count. */
	while (load_acquire(count) < want) {
		CHECK(now_ns() - t0 < 20 * NSEC_PER_SEC);
		uthread_sleep_ns(100000);
	}
}

/* Forwards each event to a handler-less queue, noting where it ran. */
struct forwarder {
	struct ev_queue *to;
	int vcore;                      /* atomic: where the handler ran */
};

static void forward_handler(const struct event *ev, void *arg)
{
	struct forwarder *f = arg;

	store_relaxed(&f->vcore, vcore_id());
	CHECK_EQ(ev_post(f->to, ev->type + 1, ev->payload, ev->len), 0);
}

/* The bound vcore is parked when the event comes: the post wakes it, its
 * handler forwards to a queue a uthread waits on. */
static void check_forward_when_parked(void)
{
	struct forwarder f = { .vcore = -1 };
	struct ev_queue *in;
	struct event ev;
	const char msg[] = "ping";

	CHECK_OK(ev_queue_create(&f.to, 4, 0, NULL, NULL));
	CHECK_OK(ev_queue_create(&in, 4, 2, forward_handler, &f));
	for (int round = 0; round < 3; round++) {
		uthread_sleep_ns(20 * NSEC_PER_MSEC); /* idle: vcores park */
		CHECK_EQ(ev_post(in, 10, msg, sizeof(msg)), 0);
		CHECK_EQ(ev_wait(f.to, &ev), 0);
		CHECK_EQ(ev.type, 11);
		CHECK_EQ(ev.len, sizeof(msg));
		CHECK(memcmp(ev.payload, msg, sizeof(msg)) == 0);
		CHECK_EQ(load_relaxed(&f.vcore), 2);
	}
	CHECK_EQ(ev_queue_destroy(in), 0);
	CHECK_EQ(ev_queue_destroy(f.to), 0);
}

/* ---- a revoked vcore's handlers run on vcore 0 ------------------------------ */

struct standin {
	uint64_t next;                  /* handler only */
	uint64_t count;                 /* atomic */
	uint32_t ran_on;                /* atomic: mask of vcores */
};

static void standin_handler(const struct event *ev, void *arg)
{
	struct standin *st = arg;
	uint64_t seq;

	memcpy(&seq, ev->payload, sizeof(seq));
	CHECK_EQ(seq, st->next);
	st->next++;
	fetch_or_acq_rel(&st->ran_on, 1u << vcore_id());
	store_release(&st->count, st->count + 1); /* pairs with wait_count */
}

static void post_seq(struct ev_queue *q, struct standin *st, uint64_t from,
		     uint64_t to)
{
	for (uint64_t i = from; i < to; i++) {
		int r;

		while ((r = ev_post(q, 1, &i, sizeof(i))) == -EAGAIN)
			uthread_sleep_ns(10000); /* let the drainer run */
		CHECK_EQ(r, 0);
	}
	wait_count(&st->count, to);
}

/* Wait until the drain that delivered the last event has left q. */
static void wait_delivered(struct ev_queue *q, uint64_t n)
{
	struct ev_queue_stats qs;

	for (ev_queue_stats(q, &qs); qs.delivered < n; ev_queue_stats(q, &qs))
		uthread_sleep_ns(100000);
}

static void check_revoked_standin(void)
{
	struct standin st = { 0 };
	struct sched_vcore_stats vs;
	struct ev_queue *q;
	uint64_t parks, t0;

	CHECK_OK(ev_queue_create(&q, 64, 2, standin_handler, &st));
	post_seq(q, &st, 0, 10);
	wait_delivered(q, 10);
	CHECK_EQ(load_relaxed(&st.ran_on), 1u << 2);

	/* Revoke vcore 2 and wait until it has parked for good. */
	CHECK_OK(sched_vcore_stats(2, &vs));
	parks = vs.parks;
	CHECK_OK(vcore_revoke(2, now_ns() + NSEC_PER_MSEC));
	t0 = now_ns();
	do {
		CHECK(now_ns() - t0 < 10 * NSEC_PER_SEC);
		uthread_sleep_ns(100000);
		CHECK_OK(sched_vcore_stats(2, &vs));
	} while (vcore_preempt_pending(2) || vs.parks == parks);
	uthread_sleep_ns(NSEC_PER_MSEC);
	store_relaxed(&st.ran_on, 0);
	post_seq(q, &st, 10, 200); /* more than a drain batch */
	wait_delivered(q, 200);
	CHECK_EQ(load_relaxed(&st.ran_on), 1u << 0);

	/* Granted again: its own handlers are its own again. */
	CHECK_OK(vcore_grant(2, -1));
	store_relaxed(&st.ran_on, 0);
	post_seq(q, &st, 200, 210);
	CHECK_EQ(load_relaxed(&st.ran_on), 1u << 2);
	CHECK_EQ(ev_queue_destroy(q), 0);
}

static int handlers_main(void *arg)
{
	static struct sink sink[2];
	struct producer prod[NR_PRODUCERS];
	pthread_t pt[NR_PTHREADS];
	struct uthread *ut[NR_UTHREADS];
	struct ev_queue_stats st;
	struct ev_queue *q[2];
	uint64_t n = test_scale(5000), refused = 0, full = 0;

	(void)arg;
	CHECK_EQ(max_vcores(), 3);
	sink[0].vcore = 1;
	sink[1].vcore = 2;

	CHECK_OK(ev_queue_create(&q[0], 64, 1, seq_handler, &sink[0]));
	CHECK_OK(ev_queue_create(&q[1], 256, 2, seq_handler, &sink[1]));
	for (uint32_t i = 0; i < NR_PRODUCERS; i++) {
		prod[i] = (struct producer){
			.q = { q[0], q[1] }, .nq = 2, .id = i, .n = n,
			.is_uthread = i >= NR_PTHREADS,
		};
	}
	for (int i = 0; i < NR_PTHREADS; i++)
		CHECK_EQ(pthread_create(&pt[i], NULL, producer_pthread,
					&prod[i]), 0);
	for (int i = 0; i < NR_UTHREADS; i++)
		CHECK_OK(uthread_create(&ut[i], NULL, producer_uthread,
					&prod[NR_PTHREADS + i]));
	for (int i = 0; i < NR_UTHREADS; i++)
		CHECK_OK(uthread_join(ut[i], NULL));
	wait_count(&sink[0].count, n * NR_PRODUCERS);
	wait_count(&sink[1].count, n * NR_PRODUCERS);
	/* Every event was posted, so the pthreads are done or returning. */
	for (int i = 0; i < NR_PTHREADS; i++)
		CHECK_EQ(pthread_join(pt[i], NULL), 0);

	for (int k = 0; k < 2; k++) {
		CHECK_EQ(sink[k].count, n * NR_PRODUCERS);
		for (int i = 0; i < NR_PRODUCERS; i++)
			CHECK_EQ(sink[k].next[i], n);
		ev_queue_stats(q[k], &st);
		CHECK_EQ(st.delivered, n * NR_PRODUCERS);
		CHECK_EQ(st.pending, 0);
		full += st.full;
	}
	for (int i = 0; i < NR_PRODUCERS; i++)
		refused += prod[i].refused;
	/* Every refusal was counted, and nothing else was. */
	CHECK_EQ(full, refused);
	printf("handlers: %llu events, %llu refusals (queue full)\n",
	       (unsigned long long)(2 * n * NR_PRODUCERS),
	       (unsigned long long)refused);
	CHECK_EQ(ev_queue_destroy(q[0]), 0);
	CHECK_EQ(ev_queue_destroy(q[1]), 0);
	check_forward_when_parked();
	check_revoked_standin();
	return 0;
}

/* ---- one vcore: fullness, payloads, errors -------------------------------- */

static uint32_t seen_types[16];
static unsigned nr_seen;
static int create_in_handler = 1;

static void record_handler(const struct event *ev, void *arg)
{
	struct ev_queue *tmp;

	(void)arg;
	CHECK(nr_seen < 16);
	CHECK_EQ(vcore_id(), 0);
	seen_types[nr_seen++] = ev->type;
	if (ev->type == 100)
		create_in_handler = ev_queue_create(&tmp, 8, 0, record_handler,
						    NULL);
}

struct waiter_arg {
	struct ev_queue *q;
	uint32_t done;                  /* atomic */
	struct event ev;
};

static void *waiter(void *arg)
{
	struct waiter_arg *wa = arg;

	CHECK_EQ(ev_wait(wa->q, &wa->ev), 0);
	store_release(&wa->done, 1); /* pairs with the main uthread */
	return NULL;
}

static int single_main(void *arg)
{
	struct waiter_arg wa = { 0 };
	struct uthread *u;
	struct ev_queue *q, *w;
	struct ev_queue_stats st;
	struct event ev;
	unsigned char big[EV_PAYLOAD_SIZE + 1] = { 0 };

	(void)arg;
	CHECK_OK(ev_queue_create(&q, 8, 0, record_handler, NULL));
	/* No scheduling point between posts: nothing drains the queue. */
	for (uint32_t i = 0; i < 8; i++)
		CHECK_EQ(ev_post(q, i, NULL, 0), 0);
	CHECK_EQ(ev_post(q, 99, NULL, 0), -EAGAIN);
	CHECK_EQ(ev_post(q, 99, NULL, 0), -EAGAIN);
	ev_queue_stats(q, &st);
	CHECK_EQ(st.full, 2);
	CHECK_EQ(st.pending, 8);
	CHECK_EQ(st.delivered, 0);
	CHECK_EQ(nr_seen, 0);
	uthread_yield(); /* a scheduling point: the vcore drains */
	CHECK_EQ(nr_seen, 8);
	for (unsigned i = 0; i < 8; i++)
		CHECK_EQ(seen_types[i], i);
	ev_queue_stats(q, &st);
	CHECK_EQ(st.delivered, 8);
	CHECK_EQ(st.pending, 0);
	CHECK_EQ(st.full, 2);

	/* A handler may not create queues. */
	CHECK_EQ(ev_post(q, 100, NULL, 0), 0);
	uthread_yield();
	CHECK_EQ(nr_seen, 9);
	CHECK_EQ(create_in_handler, -EDEADLK);

	/* Argument errors. */
	CHECK_EQ(ev_post(q, 1, big, sizeof(big)), -EMSGSIZE);
	CHECK_EQ(ev_wait(q, &ev), -EINVAL);
	CHECK_EQ(ev_trywait(q, &ev), -EINVAL);
	CHECK_EQ(ev_queue_create(&w, 3, 0, NULL, NULL), -EINVAL);
	CHECK_EQ(ev_queue_create(&w, 1, 0, NULL, NULL), -EINVAL);
	CHECK_EQ(ev_queue_create(&w, 8, 1, NULL, NULL), -EINVAL);
	CHECK_EQ(ev_queue_create(NULL, 8, 0, NULL, NULL), -EINVAL);
	/* Pending events are dropped by destroy, and said so. */
	CHECK_EQ(ev_post(q, 1, NULL, 0), 0);
	CHECK_EQ(ev_post(q, 2, NULL, 0), 0);
	CHECK_EQ(ev_queue_destroy(q), 2);

	/* Handler-less: fills, refuses, hands events out in order with
	 * their payloads (zero past len). */
	CHECK_OK(ev_queue_create(&w, 4, 0, NULL, NULL));
	for (uint32_t i = 0; i < 4; i++) {
		char c = (char)('a' + i);

		CHECK_EQ(ev_post(w, i, &c, 1), 0);
	}
	CHECK_EQ(ev_post(w, 4, NULL, 0), -EAGAIN);
	for (uint32_t i = 0; i < 4; i++) {
		CHECK_EQ(ev_trywait(w, &ev), 0);
		CHECK_EQ(ev.type, i);
		CHECK_EQ(ev.len, 1);
		CHECK_EQ(ev.payload[0], 'a' + i);
		for (unsigned b = 1; b < EV_PAYLOAD_SIZE; b++)
			CHECK_EQ(ev.payload[b], 0);
	}
	CHECK_EQ(ev_trywait(w, &ev), -EAGAIN);
	ev_queue_stats(w, &st);
	CHECK_EQ(st.full, 1);
	CHECK_EQ(st.delivered, 4);

	/* One consumer at a time: with the waiter blocked (one vcore, so
	 * it has run when we get back), others are refused. */
	wa.q = w;
	CHECK_OK(uthread_create(&u, NULL, waiter, &wa));
	uthread_yield();
	CHECK_EQ(load_acquire(&wa.done), 0);
	CHECK_EQ(ev_wait(w, &ev), -EBUSY);
	CHECK_EQ(ev_trywait(w, &ev), -EBUSY);
	CHECK_EQ(ev_queue_destroy(w), -EBUSY);
	CHECK_EQ(ev_post(w, 5, NULL, 0), 0);
	CHECK_OK(uthread_join(u, NULL));
	CHECK_EQ(load_acquire(&wa.done), 1);
	CHECK_EQ(wa.ev.type, 5);
	CHECK_EQ(ev_queue_destroy(w), 0);
	return 0;
}

/* ---- ev_wait -------------------------------------------------------------- */

static void *late_poster(void *arg)
{
	struct ev_queue *q = arg;
	struct event ev;
	const char msg[] = "wake";

	CHECK_EQ(ev_wait(q, &ev), -EPERM); /* not a uthread */
	usleep(20000);
	CHECK_EQ(ev_post(q, 42, msg, sizeof(msg)), 0);
	return NULL;
}

struct stream {
	struct ev_queue *q;
	uint64_t n_each;
};

static void *stream_consumer(void *arg)
{
	struct stream *s = arg;
	uint64_t next[NR_PRODUCERS] = { 0 };
	struct event ev;
	struct seq_msg m;

	for (uint64_t i = 0; i < s->n_each * NR_PRODUCERS; i++) {
		CHECK_EQ(ev_wait(s->q, &ev), 0);
		CHECK_EQ(ev.type, EV_TYPE_SEQ);
		memcpy(&m, ev.payload, sizeof(m));
		CHECK(m.producer < NR_PRODUCERS);
		CHECK_EQ(m.seq, next[m.producer]);
		next[m.producer]++;
	}
	for (int i = 0; i < NR_PRODUCERS; i++)
		CHECK_EQ(next[i], s->n_each);
	return NULL;
}

static int wait_main(void *arg)
{
	struct waiter_arg wa = { 0 };
	struct uthread *u, *c, *ut[NR_UTHREADS];
	struct producer prod[NR_PRODUCERS];
	pthread_t pt, ppt[NR_PTHREADS];
	struct stream s;
	struct ev_queue_stats st;

	(void)arg;
	CHECK_OK(ev_queue_create(&wa.q, 16, 1, NULL, NULL));
	CHECK_OK(uthread_create(&u, NULL, waiter, &wa));
	uthread_sleep_ns(10 * NSEC_PER_MSEC);
	CHECK_EQ(load_acquire(&wa.done), 0); /* blocked: nothing posted */
	CHECK_EQ(pthread_create(&pt, NULL, late_poster, wa.q), 0);
	CHECK_OK(uthread_join(u, NULL));
	CHECK_EQ(load_acquire(&wa.done), 1);
	CHECK_EQ(wa.ev.type, 42);
	CHECK_EQ(wa.ev.len, 5);
	CHECK(memcmp(wa.ev.payload, "wake", 5) == 0);
	CHECK_EQ(pthread_join(pt, NULL), 0);
	CHECK_EQ(ev_queue_destroy(wa.q), 0);

	/* A stream from pthreads and uthreads through a small queue to one
	 * blocking consumer: each producer's events in order, none lost. */
	s.n_each = test_scale(5000);
	CHECK_OK(ev_queue_create(&s.q, 32, 0, NULL, NULL));
	CHECK_OK(uthread_create(&c, NULL, stream_consumer, &s));
	for (uint32_t i = 0; i < NR_PRODUCERS; i++)
		prod[i] = (struct producer){
			.q = { s.q }, .nq = 1, .id = i, .n = s.n_each,
			.is_uthread = i >= NR_PTHREADS,
		};
	for (int i = 0; i < NR_PTHREADS; i++)
		CHECK_EQ(pthread_create(&ppt[i], NULL, producer_pthread,
					&prod[i]), 0);
	for (int i = 0; i < NR_UTHREADS; i++)
		CHECK_OK(uthread_create(&ut[i], NULL, producer_uthread,
					&prod[NR_PTHREADS + i]));
	for (int i = 0; i < NR_UTHREADS; i++)
		CHECK_OK(uthread_join(ut[i], NULL));
	CHECK_OK(uthread_join(c, NULL));
	for (int i = 0; i < NR_PTHREADS; i++)
		CHECK_EQ(pthread_join(ppt[i], NULL), 0);
	ev_queue_stats(s.q, &st);
	CHECK_EQ(st.delivered, s.n_each * NR_PRODUCERS);
	CHECK_EQ(st.pending, 0);
	uint64_t refused = 0;

	for (int i = 0; i < NR_PRODUCERS; i++)
		refused += prod[i].refused;
	CHECK_EQ(st.full, refused);
	CHECK_EQ(ev_queue_destroy(s.q), 0);
	return 0;
}

/* ---- ev_queue_run_local: the same exclusion as the handlers ---------------- */

#define LOCAL_WORKERS 8
#define LOCAL_QUEUES 3          /* one per vcore of the `three` config */

struct shared_count {
	struct ev_queue *q;
	uint64_t plain;       /* only under the bound vcore's event lock */
	uint64_t locals;      /* atomic: calls that ran in place */
	uint64_t posted;      /* atomic: calls that went through the ring */
	uint64_t delivered;   /* atomic */
};

struct local_test {
	struct shared_count c[LOCAL_QUEUES];
	uint64_t n_each;
};

static void bump(void *arg)
{
	struct shared_count *sc = arg;

	sc->plain++;
}

static void bump_handler(const struct event *ev, void *arg)
{
	struct shared_count *sc = arg;

	(void)ev;
	bump(sc);
	fetch_add_acq_rel(&sc->delivered, 1);
}

/* One call on every queue: in place on the one bound to the vcore the
 * worker runs on, posted to the others. The plain counters only stay
 * exact if the two paths never overlap (TSan also watches them). */
static void bump_all(struct local_test *t)
{
	for (int k = 0; k < LOCAL_QUEUES; k++) {
		struct shared_count *sc = &t->c[k];
		int here = vcore_id() == k;
		int r = ev_queue_run_local(sc->q, bump, sc);

		if (r == 0) {
			CHECK(here);
			fetch_add_relaxed(&sc->locals, 1);
			continue;
		}
		CHECK(r == (here ? -EBUSY : -EXDEV));
		while ((r = ev_post(sc->q, 1, NULL, 0)) == -EAGAIN)
			uthread_sleep_ns(10000);
		CHECK_EQ(r, 0);
		fetch_add_relaxed(&sc->posted, 1);
	}
}

static void *bump_worker(void *arg)
{
	struct local_test *t = arg;

	for (uint64_t i = 0; i < t->n_each; i++) {
		bump_all(t);
		if (i % 16 == 0)
			uthread_yield(); /* let stealing move us around */
	}
	return NULL;
}

static int run_local_main(void *arg)
{
	struct local_test t = { .n_each = test_scale(20000) };
	struct uthread *w[LOCAL_WORKERS];
	struct ev_queue *bare;
	uint64_t locals = 0, t0;

	(void)arg;
	CHECK_OK(ev_queue_create(&bare, 16, 1, NULL, NULL));
	CHECK_EQ(ev_queue_run_local(bare, bump, &t.c[0]), -EINVAL);
	CHECK_EQ(ev_queue_destroy(bare), 0);
	for (unsigned k = 0; k < LOCAL_QUEUES; k++)
		CHECK_OK(ev_queue_create(&t.c[k].q, 256, k, bump_handler,
					 &t.c[k]));
	for (int i = 0; i < LOCAL_WORKERS; i++)
		CHECK_OK(uthread_create(&w[i], NULL, bump_worker, &t));
	for (int i = 0; i < LOCAL_WORKERS; i++)
		CHECK_OK(uthread_join(w[i], NULL));
	for (int k = 0; k < LOCAL_QUEUES; k++) {
		struct shared_count *sc = &t.c[k];

		t0 = now_ns();
		while (load_acquire(&sc->delivered) < sc->posted) {
			CHECK(now_ns() - t0 < 30 * NSEC_PER_SEC);
			uthread_sleep_ns(100000);
		}
		wait_delivered(sc->q, sc->posted);
		CHECK_EQ(sc->locals + sc->posted, t.n_each * LOCAL_WORKERS);
		CHECK_EQ(sc->plain, t.n_each * LOCAL_WORKERS);
		locals += sc->locals;
		CHECK_EQ(ev_queue_destroy(sc->q), 0);
	}
	/* Every round ran exactly one call in place (the worker was on
	 * some vcore), unless the event lock was busy. */
	CHECK(locals > 0);
	printf("run_local: %llu calls in place, the rest posted\n",
	       (unsigned long long)locals);
	return 0;
}

int main(void)
{
	/* Unpinned: the posting pthreads would inherit vcore 0's cpu. */
	struct rt_config three = { .nr_vcores = 3, .no_pin = 1 };
	struct rt_config one = { .nr_vcores = 1 };

	CHECK_EQ(rt_main(&one, single_main, NULL), 0);
	CHECK_EQ(rt_main(&three, handlers_main, NULL), 0);
	CHECK_EQ(rt_main(&three, wait_main, NULL), 0);
	CHECK_EQ(rt_main(&three, run_local_main, NULL), 0);
	return TEST_PASS;
}
