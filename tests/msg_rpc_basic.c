/* msg_rpc_basic.c - one server, its clients: typed calls from many
 * uthreads, started-then-waited calls, handler errors, unknown types,
 * bounds on both sides, timeouts (on time; the late reply dropped and
 * counted), expiry in the server's queue, cancellation (client and
 * server side), wrong capability and wrong protocol, a destroyed server.
 * Runs on 2 vcores and on 1. */
#include <errno.h>

#include <atoll/clock.h>
#include <atoll/rpc.h>
#include <atoll/rt.h>
#include <atoll/sync.h>
#include <atoll/uthread.h>
#include <atoll/vcore.h>

#include "harness.h"

#define B_MSGS(M)                                                            \
	M(B_ADD, b_add, F_U64(a) F_U64(b), F_U64(sum))                       \
	M(B_ECHO, b_echo, F_STR(s, 64) F_BYTES(data, 512),                    \
	  F_STR(s, 64) F_BYTES(data, 512))                                   \
	M(B_SLEEP, b_sleep, F_U64(ns) F_U32(poll_cancel), F_U32(saw_cancel)) \
	M(B_FAIL, b_fail, F_I32(err), F_NONE)                                \
	M(B_NOHANDLER, b_nohandler, F_NONE, F_NONE)                          \
	M(B_BADREP, b_badrep, F_NONE, F_STR(s, 4))

RPC_DECLARE(b, B_MSGS);
RPC_DEFINE(b, B_MSGS);

/* Another protocol whose first type has the same number and fields. */
#define O_MSGS(M) M(O_ADD, o_add, F_U64(a) F_U64(b), F_U64(sum))

RPC_DECLARE(other, O_MSGS);
RPC_DEFINE(other, O_MSGS);

/* Slack for "on time": generous, the box has 2 cpus and sanitizers. */
#if defined(ATOLL_TSAN) || defined(ATOLL_ASAN)
#define SLACK_NS (150 * NSEC_PER_MSEC)
#define TMO_NS (40 * NSEC_PER_MSEC)
#else
#define SLACK_NS (40 * NSEC_PER_MSEC)
#define TMO_NS (10 * NSEC_PER_MSEC)
#endif

static uint32_t sleepers_saw_cancel;
static uint32_t sleepers_done;

static int h_add(void *arg, const struct b_add_req *req, struct b_add_rep *rep,
		 struct rpc_ctx *ctx)
{
	(void)ctx;
	CHECK(arg == (void *)0x1234);
	rep->sum = req->a + req->b;
	return 0;
}

static int h_echo(void *arg, const struct b_echo_req *req,
		  struct b_echo_rep *rep, struct rpc_ctx *ctx)
{
	(void)arg;
	(void)ctx;
	/* Yield in the middle: handlers are uthreads of their own. */
	uthread_yield();
	strcpy(rep->s, req->s);
	rep->data_len = req->data_len;
	memcpy(rep->data, req->data, req->data_len);
	return 0;
}

static int h_sleep(void *arg, const struct b_sleep_req *req,
		   struct b_sleep_rep *rep, struct rpc_ctx *ctx)
{
	uint64_t t0 = now_ns();

	(void)arg;
	CHECK(rpc_ctx_deadline(ctx) != 0);
	while (ns_since(t0) < req->ns) {
		uthread_sleep_ns(req->poll_cancel ? NSEC_PER_MSEC : req->ns);
		if (req->poll_cancel && rpc_ctx_cancelled(ctx)) {
			rep->saw_cancel = 1;
			__atomic_fetch_add(&sleepers_saw_cancel, 1,
					   __ATOMIC_RELAXED);
			break;
		}
	}
	__atomic_fetch_add(&sleepers_done, 1, __ATOMIC_RELEASE);
	return 0;
}

static int h_fail(void *arg, const struct b_fail_req *req,
		  struct b_fail_rep *rep, struct rpc_ctx *ctx)
{
	(void)arg;
	(void)rep;
	(void)ctx;
	return req->err;
}

static int h_badrep(void *arg, const struct b_badrep_req *req,
		    struct b_badrep_rep *rep, struct rpc_ctx *ctx)
{
	(void)arg;
	(void)req;
	(void)ctx;
	memset(rep->s, 'x', sizeof(rep->s)); /* not terminated */
	return 0;
}

static struct rpc_server *server_new_opts(uint32_t max_inflight, bool fresh)
{
	struct rpc_server_opts so = { .max_inflight = max_inflight,
				      .fresh_uthreads = fresh };
	struct rpc_server *srv;

	so.mbox.flags = MBOX_F_LOCAL_ONLY;
	CHECK_OK(rpc_server_create(&srv, &b_rpc, &so));
	CHECK_OK(rpc_serve_b_add(srv, h_add, (void *)0x1234));
	CHECK_OK(rpc_serve_b_echo(srv, h_echo, NULL));
	CHECK_OK(rpc_serve_b_sleep(srv, h_sleep, NULL));
	CHECK_OK(rpc_serve_b_fail(srv, h_fail, NULL));
	CHECK_OK(rpc_serve_b_badrep(srv, h_badrep, NULL));
	CHECK_OK(rpc_server_start(srv));
	/* Too late to register now. */
	CHECK_EQ(rpc_serve_b_add(srv, h_add, NULL), -EBUSY);
	return srv;
}

static struct rpc_server *server_new(uint32_t max_inflight)
{
	return server_new_opts(max_inflight, false);
}

static struct rpc_client *client_new(struct rpc_server *srv,
				     const struct rpc_proto *proto)
{
	struct rpc_client_opts co = { .timeout_ns = 5 * NSEC_PER_SEC };
	struct rpc_client *cl;
	struct mbox_addr addr;
	struct mbox_cap cap;

	co.mbox.flags = MBOX_F_LOCAL_ONLY;
	mbox_addr(rpc_server_mbox(srv), &addr);
	mbox_cap(rpc_server_mbox(srv), &cap);
	CHECK_OK(rpc_client_open(&cl, proto, &addr, &cap, &co));
	return cl;
}

/* ---- many uthreads calling ---------------------------------------------- */

struct caller {
	struct rpc_client *cl;
	uint64_t seed;
	int n;
};

static void *caller_fn(void *arg)
{
	struct caller *c = arg;

	for (int i = 0; i < c->n; i++) {
		struct b_add_req req = { .a = c->seed, .b = (uint64_t)i };
		struct b_add_rep rep = { 0 };

		CHECK_EQ(rpc_call_b_add(c->cl, &req, &rep, NULL), 0);
		CHECK(rep.sum == c->seed + (uint64_t)i);
		if (i % 16 == 0) {
			struct b_echo_req er = { 0 };
			struct b_echo_rep ep;

			snprintf(er.s, sizeof(er.s), "u%" PRIu64 "-%d",
				 c->seed, i);
			er.data_len = (uint32_t)(i % 512);
			for (uint32_t j = 0; j < er.data_len; j++)
				er.data[j] = (uint8_t)(j + c->seed);
			CHECK_EQ(rpc_call_b_echo(c->cl, &er, &ep, NULL), 0);
			CHECK(strcmp(ep.s, er.s) == 0);
			CHECK_EQ(ep.data_len, er.data_len);
			CHECK(memcmp(ep.data, er.data, er.data_len) == 0);
		}
	}
	return NULL;
}

static void test_many(struct rpc_server *srv, struct rpc_client *cl)
{
	enum { NCALLERS = 8 };
	struct caller c[NCALLERS];
	struct uthread *u[NCALLERS];
	struct rpc_client_stats cs;
	int per = (int)test_scale(1000);

	for (int i = 0; i < NCALLERS; i++) {
		c[i] = (struct caller){ cl, (uint64_t)i << 40, per };
		CHECK_OK(uthread_create(&u[i], NULL, caller_fn, &c[i]));
	}
	for (int i = 0; i < NCALLERS; i++)
		CHECK_OK(uthread_join(u[i], NULL));
	rpc_client_stats(cl, &cs);
	CHECK(cs.ok >= (uint64_t)NCALLERS * (uint64_t)per);
	CHECK_EQ(cs.timeouts, 0);
	CHECK_EQ(cs.bad, 0);
	(void)srv;
}

/* ---- started, then waited ----------------------------------------------- */

static void test_async(struct rpc_client *cl)
{
	enum { N = 64 };
	static struct rpc_call calls[N];
	static struct b_add_rep reps[N];

	for (int i = 0; i < N; i++) {
		struct b_add_req req = { .a = (uint64_t)i, .b = 1000 };

		CHECK_OK(rpc_start_b_add(cl, &calls[i], &req, &reps[i], NULL));
	}
	/* Wait in reverse order: replies are matched by id, not order. */
	for (int i = N - 1; i >= 0; i--) {
		CHECK_EQ(rpc_wait(&calls[i]), 0);
		CHECK(reps[i].sum == (uint64_t)i + 1000);
	}
}

/* ---- errors ------------------------------------------------------------- */

static void test_errors(struct rpc_client *cl)
{
	struct b_fail_req fr = { .err = -ENOENT };
	struct b_fail_rep frep;
	struct b_nohandler_req nr;
	struct b_nohandler_rep nrep;
	struct b_badrep_req br;
	struct b_badrep_rep brep;
	struct b_echo_req er = { 0 };
	struct b_echo_rep erep;
	struct rpc_client_stats before, after;

	rpc_client_stats(cl, &before);
	CHECK_EQ(rpc_call_b_fail(cl, &fr, &frep, NULL), -ENOENT);
	fr.err = -EEXIST;
	CHECK_EQ(rpc_call_b_fail(cl, &fr, &frep, NULL), -EEXIST);
	/* a positive or absurd status is the server's protocol error */
	fr.err = 7;
	CHECK_EQ(rpc_call_b_fail(cl, &fr, &frep, NULL), -EPROTO);
	fr.err = INT32_MIN;
	CHECK_EQ(rpc_call_b_fail(cl, &fr, &frep, NULL), -EPROTO);
	/* a type the server has no handler for */
	CHECK_EQ(rpc_call_b_nohandler(cl, &nr, &nrep, NULL), -ENOSYS);
	/* the handler's reply breaks its bounds */
	CHECK_EQ(rpc_call_b_badrep(cl, &br, &brep, NULL), -EPROTO);
	/* a request out of bounds never leaves */
	memset(er.s, 'y', sizeof(er.s));
	CHECK_EQ(rpc_call_b_echo(cl, &er, &erep, NULL), -EINVAL);
	er.s[0] = '\0';
	er.data_len = 513;
	CHECK_EQ(rpc_call_b_echo(cl, &er, &erep, NULL), -EINVAL);
	/* a descriptor of another protocol */
	{
		struct o_add_req oq = { 1, 2 };
		struct o_add_rep op;

		CHECK_EQ(rpc__call(cl, &o_add_desc, &oq, &op, NULL), -EINVAL);
	}
	rpc_client_stats(cl, &after);
	CHECK_EQ(after.failed - before.failed, 6);
	CHECK_EQ(after.calls - before.calls, 6);
}

/* ---- timeouts ----------------------------------------------------------- */

/* Wait until the client has counted `want` late replies, those the
 * server sent: a request whose handler had not started by its deadline
 * is not run and gets no reply (stats.expired). */
static void wait_late(struct rpc_server *srv, struct rpc_client *cl,
		      uint64_t want)
{
	struct rpc_client_stats cs;
	struct rpc_server_stats ss;
	uint64_t t0 = now_ns();

	for (;;) {
		uthread_sleep_ns(NSEC_PER_MSEC);
		rpc_client_stats(cl, &cs);
		rpc_server_stats(srv, &ss);
		if (cs.late + ss.expired >= want && !ss.inflight)
			break;
		if (ns_since(t0) > 10 * NSEC_PER_SEC) {
			fprintf(stderr, "late %" PRIu64 " expired %" PRIu64
				" inflight %u want %" PRIu64 "\n", cs.late,
				ss.expired, ss.inflight, want);
			CHECK(0);
		}
	}
	CHECK_EQ(cs.late + ss.expired, want);
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

#define TRIALS 5

static void test_timeout(struct rpc_server *srv, struct rpc_client *cl)
{
	/* Replies come long after the timeouts, so even a loaded machine
	 * cannot deliver one first. */
	struct b_sleep_req req = { .ns = 20 * TMO_NS };
	struct b_sleep_rep rep;
	struct rpc_call_opts o = { .timeout_ns = TMO_NS };
	struct rpc_client_stats cs0, cs;
	struct rpc_server_stats ss0;
	struct b_add_req ar = { 2, 3 };
	struct b_add_rep arep;
	uint64_t t0, el, lat[TRIALS];

	rpc_client_stats(cl, &cs0);
	rpc_server_stats(srv, &ss0);
	/* Never early; on time in the median (the box may be loaded: one
	 * trial may be late by a scheduling delay, not by much). */
	for (int i = 0; i < TRIALS; i++) {
		t0 = now_ns();
		CHECK_EQ(rpc_call_b_sleep(cl, &req, &rep, &o), -ETIMEDOUT);
		el = ns_since(t0);
		CHECK(el >= o.timeout_ns);
		CHECK(el < o.timeout_ns + NSEC_PER_SEC);
		lat[i] = el;
	}
	qsort(lat, TRIALS, sizeof(lat[0]), cmp_u64);
	if (lat[TRIALS / 2] > o.timeout_ns + SLACK_NS) {
		fprintf(stderr, "timeout %" PRIu64 " ns: median return after "
			"%" PRIu64 " ns\n", o.timeout_ns, lat[TRIALS / 2]);
		CHECK(0);
	}
	rpc_client_stats(cl, &cs);
	CHECK_EQ(cs.timeouts - cs0.timeouts, TRIALS);
	/* The handlers finish later and reply: dropped, counted. */
	wait_late(srv, cl, cs0.late + ss0.expired + TRIALS);
	/* And the client goes on. */
	CHECK_EQ(rpc_call_b_add(cl, &ar, &arep, NULL), 0);
	CHECK(arep.sum == 5);

	/* Many at once, some timing out, some not. */
	{
		enum { N = 16 };
		struct rpc_call calls[N];
		struct b_sleep_rep reps[N];
		int timeouts = 0;

		for (int i = 0; i < N; i++) {
			struct b_sleep_req r = {
				.ns = (i % 2) ? 20 * TMO_NS : 0 };
			struct rpc_call_opts oo = {
				.timeout_ns = (i % 2) ? 2 * TMO_NS
						      : 5 * NSEC_PER_SEC };

			CHECK_OK(rpc_start_b_sleep(cl, &calls[i], &r, &reps[i],
						   &oo));
		}
		for (int i = 0; i < N; i++) {
			int r = rpc_wait(&calls[i]);

			if (i % 2) {
				CHECK_EQ(r, -ETIMEDOUT);
				timeouts++;
			} else {
				CHECK_EQ(r, 0);
			}
		}
		CHECK_EQ(timeouts, N / 2);
		wait_late(srv, cl, cs0.late + ss0.expired + TRIALS + N / 2);
		/* Most handlers started in time and their replies came
		 * late. */
		rpc_client_stats(cl, &cs);
		CHECK(cs.late > cs0.late);
	}
}

/* A request that waited in the server's queue past its caller's timeout
 * is not run. */
static void test_expired(void)
{
	struct rpc_server *srv = server_new(1);
	struct rpc_client *cl = client_new(srv, &b_rpc);
	struct b_sleep_req slow = { .ns = 40 * NSEC_PER_MSEC };
	struct b_sleep_req fast = { .ns = 0 };
	struct b_sleep_rep r1, r2;
	struct rpc_call c1, c2;
	struct rpc_call_opts o2 = { .timeout_ns = 5 * NSEC_PER_MSEC };
	struct rpc_server_stats ss;
	uint32_t done0 = __atomic_load_n(&sleepers_done, __ATOMIC_ACQUIRE);

	CHECK_OK(rpc_start_b_sleep(cl, &c1, &slow, &r1, NULL));
	uthread_sleep_ns(2 * NSEC_PER_MSEC); /* c1 runs in the only slot */
	CHECK_OK(rpc_start_b_sleep(cl, &c2, &fast, &r2, &o2));
	CHECK_EQ(rpc_wait(&c2), -ETIMEDOUT);
	CHECK_EQ(rpc_wait(&c1), 0);
	rpc_server_destroy(srv); /* waits for every handler */
	CHECK_EQ(__atomic_load_n(&sleepers_done, __ATOMIC_ACQUIRE), done0 + 1);
	rpc_client_close(cl);
	(void)ss;
}

/* ---- cancellation ------------------------------------------------------- */

struct canceller {
	struct rpc_client *cl;
	uint64_t id;
	int ret;
};

static void *cancel_fn(void *arg)
{
	struct canceller *k = arg;

	uthread_sleep_ns(5 * NSEC_PER_MSEC);
	k->ret = rpc_cancel(k->cl, k->id);
	return NULL;
}

static void test_cancel(struct rpc_server *srv, struct rpc_client *cl)
{
	struct b_sleep_req req = { .ns = 3 * NSEC_PER_SEC, .poll_cancel = 1 };
	struct b_sleep_rep rep;
	struct rpc_call call;
	struct canceller k = { cl, 0, 1 };
	struct uthread *u;
	struct rpc_server_stats ss0, ss;
	struct rpc_client_stats cs0, cs;
	uint32_t saw0 = __atomic_load_n(&sleepers_saw_cancel, __ATOMIC_RELAXED);
	uint64_t t0;

	rpc_server_stats(srv, &ss0);
	rpc_client_stats(cl, &cs0);
	t0 = now_ns();
	CHECK_OK(rpc_start_b_sleep(cl, &call, &req, &rep, NULL));
	k.id = rpc_call_id(&call);
	CHECK_OK(uthread_create(&u, NULL, cancel_fn, &k));
	CHECK_EQ(rpc_wait(&call), -ECANCELED);
	CHECK(ns_since(t0) < NSEC_PER_SEC);
	CHECK_OK(uthread_join(u, NULL));
	CHECK_EQ(k.ret, 0);
	/* Once is enough; unknown ids are not pending. */
	CHECK_EQ(rpc_cancel(cl, k.id), -ENOENT);
	CHECK_EQ(rpc_cancel(cl, 0), -ENOENT);
	CHECK_EQ(rpc_cancel(cl, UINT64_MAX), -ENOENT);
	/* The server saw it: its handler gave up, no reply was sent. */
	do {
		uthread_sleep_ns(NSEC_PER_MSEC);
		rpc_server_stats(srv, &ss);
		CHECK(ns_since(t0) < 2 * NSEC_PER_SEC);
	} while (ss.cancelled == ss0.cancelled);
	CHECK_EQ(ss.cancelled - ss0.cancelled, 1);
	CHECK_EQ(__atomic_load_n(&sleepers_saw_cancel, __ATOMIC_RELAXED),
		 saw0 + 1);
	rpc_client_stats(cl, &cs);
	CHECK_EQ(cs.cancelled - cs0.cancelled, 1);
	CHECK_EQ(cs.late, cs0.late);
	CHECK_EQ(ss.replies, ss0.replies);

	/* Cancel a call that has already finished: nothing happens. */
	{
		struct b_add_req ar = { 1, 1 };
		struct b_add_rep arep;

		CHECK_OK(rpc_start_b_add(cl, &call, (void *)&ar, (void *)&arep,
					 NULL));
		k.id = rpc_call_id(&call);
		CHECK_EQ(rpc_wait(&call), 0);
		CHECK_EQ(rpc_cancel(cl, k.id), -ENOENT);
	}
}

/* ---- access ------------------------------------------------------------- */

static void test_access(struct rpc_server *srv)
{
	struct rpc_client *cl;
	struct mbox_addr addr;
	struct mbox_cap cap;
	struct o_add_req oq = { 1, 2 };
	struct o_add_rep op;
	struct rpc_client_opts co = { 0 };

	co.mbox.flags = MBOX_F_LOCAL_ONLY;
	mbox_addr(rpc_server_mbox(srv), &addr);
	mbox_cap(rpc_server_mbox(srv), &cap);
	cap.b[7] ^= 0x10;
	CHECK_EQ(rpc_client_open(&cl, &b_rpc, &addr, &cap, &co), -EACCES);
	cap.b[7] ^= 0x10;
	/* A client of another protocol: the server refuses it. */
	CHECK_OK(rpc_client_open(&cl, &other_rpc, &addr, &cap, &co));
	CHECK_EQ(rpc_call_o_add(cl, &oq, &op, NULL), -EPROTO);
	rpc_client_close(cl);
	/* Bad arguments. */
	CHECK_EQ(rpc_client_open(&cl, &b_rpc, NULL, &cap, &co), -EINVAL);
	CHECK_EQ(rpc_client_open(&cl, NULL, &addr, &cap, &co), -EINVAL);
}

/* A server destroyed under its clients: their calls fail, no hang. */
static void test_gone(void)
{
	struct rpc_server *srv = server_new(0);
	struct rpc_client *cl = client_new(srv, &b_rpc);
	struct b_add_req ar = { 1, 2 };
	struct b_add_rep arep;
	int r;

	CHECK_EQ(rpc_call_b_add(cl, &ar, &arep, NULL), 0);
	rpc_server_destroy(srv);
	r = rpc_call_b_add(cl, &ar, &arep, NULL);
	CHECK(r == -EPIPE || r == -ENOENT);
	r = rpc_call_b_add(cl, &ar, &arep, NULL);
	CHECK(r == -EPIPE || r == -ENOENT);
	rpc_client_close(cl);
}

static int test_main(void *arg)
{
	struct rpc_server *srv = server_new(0);
	struct rpc_client *cl = client_new(srv, &b_rpc);
	struct rpc_client *cl2 = client_new(srv, &b_rpc);
	struct rpc_server_stats ss;

	(void)arg;
	test_many(srv, cl);
	test_many(srv, cl2);
	test_async(cl);
	test_errors(cl);
	test_timeout(srv, cl);
	test_cancel(srv, cl2);
	test_access(srv);
	/* The other protocol's client said goodbye (asynchronously). */
	for (int i = 0;; i++) {
		rpc_server_stats(srv, &ss);
		if (ss.peers == 2)
			break;
		CHECK(i < 5000);
		uthread_sleep_ns(NSEC_PER_MSEC);
	}
	CHECK_EQ(ss.bad, 0);
	rpc_client_close(cl2);
	rpc_client_close(cl);
	rpc_server_destroy(srv);
	test_expired();
	test_gone();
	/* A fresh uthread for every request. */
	srv = server_new_opts(0, true);
	cl = client_new(srv, &b_rpc);
	test_async(cl);
	test_errors(cl);
	rpc_client_close(cl);
	rpc_server_destroy(srv);
	return 0;
}

int main(void)
{
	struct rt_config two = { .nr_vcores = 2, .no_pin = 1 };
	struct rt_config one = { .nr_vcores = 1 };

	clock_calibrate();
	CHECK_EQ(rt_main(&two, test_main, NULL), 0);
	CHECK_EQ(rt_main(&one, test_main, NULL), 0);
	printf("msg_rpc_basic: ok\n");
	return TEST_PASS;
}
