/* msg_rpc_fleet.c - a fleet of 3 RPC servers behind one name: registered
 * in the name service, resolved per call with the service's policy.
 * HASH: 10k calls (scaled) from 8 uthreads, each key always answered by
 * the same member and every member used; RR without a cache: calls
 * spread evenly; a member that leaves (unregistered, then destroyed): its
 * keys move, the others' stay, nothing fails; a member that dies while
 * still registered: calls to it fail fast with an error, not a hang, and
 * succeed again once it is unregistered. */
#include <errno.h>
#include <unistd.h>

#include <atoll/clock.h>
#include <atoll/name.h>
#include <atoll/rpc.h>
#include <atoll/rt.h>
#include <atoll/sync.h>
#include <atoll/uthread.h>

#include "harness.h"

#define F_MSGS(M)                                                            \
	M(FL_WHO, fl_who, F_STR(key, 32) F_U64(x), F_U32(member) F_U64(x))

RPC_DECLARE(fl, F_MSGS);
RPC_DEFINE(fl, F_MSGS);

#define NMEMBERS 3
#define NKEYS 48
#define SVC "/svc/rpc-fleet"
#define SVC_RR "/svc/rpc-fleet-rr"

static char path[108];

struct member {
	uint32_t idx;
	struct rpc_server *srv;
	struct name_reg reg, reg_rr;
	uint64_t served;        /* atomic */
};

static struct member members[NMEMBERS];
/* Calls that should succeed get time to, even on a loaded machine. */
static const struct rpc_client_opts copts = { .timeout_ns = 10 * NSEC_PER_SEC };

static int h_who(void *arg, const struct fl_who_req *req,
		 struct fl_who_rep *rep, struct rpc_ctx *ctx)
{
	struct member *m = arg;

	(void)ctx;
	rep->member = m->idx;
	rep->x = req->x * 3 + 1;
	__atomic_fetch_add(&m->served, 1, __ATOMIC_RELAXED);
	return 0;
}

static void member_start(struct name_client *nc, struct member *m)
{
	CHECK_OK(rpc_server_create(&m->srv, &fl_rpc, NULL));
	CHECK_OK(rpc_serve_fl_who(m->srv, h_who, m));
	CHECK_OK(rpc_server_start(m->srv));
	CHECK_OK(name_register_mbox(nc, SVC, rpc_server_mbox(m->srv), 0,
				    &m->reg));
	CHECK_OK(name_register_mbox(nc, SVC_RR, rpc_server_mbox(m->srv), 0,
				    &m->reg_rr));
}

/* ---- HASH: many uthreads, many keys ------------------------------------- */

static int32_t key_member[NKEYS];       /* first member seen, -1 none */
static struct uth_mutex key_lock = UTH_MUTEX_INIT;

struct caller {
	struct rpc_client *cl;
	int id, n;
	uint32_t skip;          /* a member that must not answer */
};

static void *caller_fn(void *arg)
{
	struct caller *c = arg;

	for (int i = 0; i < c->n; i++) {
		int k = (c->id * 7 + i) % NKEYS;
		struct fl_who_req q = { .x = (uint64_t)i };
		struct fl_who_rep p;
		struct rpc_call_opts o = { .timeout_ns = 5 * NSEC_PER_SEC };

		snprintf(q.key, sizeof(q.key), "key-%d", k);
		o.key = q.key;
		o.keylen = strlen(q.key);
		CHECK_EQ(rpc_call_fl_who(c->cl, &q, &p, &o), 0);
		CHECK(p.x == (uint64_t)i * 3 + 1);
		CHECK(p.member < NMEMBERS);
		CHECK(p.member != c->skip);
		uth_mutex_lock(&key_lock);
		if (key_member[k] < 0)
			key_member[k] = (int32_t)p.member;
		if (key_member[k] != (int32_t)p.member) {
			fprintf(stderr, "key %d: member %u, before %d\n", k,
				p.member, key_member[k]);
			CHECK(0);
		}
		uth_mutex_unlock(&key_lock);
	}
	return NULL;
}

static void run_callers(struct rpc_client *cl, int ncallers, int total,
			uint32_t skip)
{
	struct caller c[8];
	struct uthread *u[8];

	for (int i = 0; i < ncallers; i++) {
		c[i] = (struct caller){ cl, i, total / ncallers, skip };
		CHECK_OK(uthread_create(&u[i], NULL, caller_fn, &c[i]));
	}
	for (int i = 0; i < ncallers; i++)
		CHECK_OK(uthread_join(u[i], NULL));
}

static uint64_t served(int i)
{
	return __atomic_load_n(&members[i].served, __ATOMIC_RELAXED);
}

static void test_hash(struct name_client *nc, struct name_client *ncl)
{
	struct rpc_client *cl;
	struct rpc_client_stats cs;
	struct rpc_server_stats ss;
	int total = (int)test_scale(10000) / 8 * 8;
	uint64_t sum = 0;

	CHECK_OK(name_set_policy(nc, &members[0].reg, NAME_POLICY_HASH));
	CHECK_OK(rpc_client_open_name(&cl, &fl_rpc, ncl, SVC, &copts));
	for (int k = 0; k < NKEYS; k++)
		key_member[k] = -1;
	for (int i = 0; i < NMEMBERS; i++)
		members[i].served = 0;
	run_callers(cl, 8, total, UINT32_MAX);
	for (int i = 0; i < NMEMBERS; i++) {
		CHECK(served(i) > 0); /* every member had keys */
		rpc_server_stats(members[i].srv, &ss);
		CHECK(ss.requests == served(i));
		CHECK_EQ(ss.bad, 0);
		CHECK_EQ(ss.rejected, 0);
		sum += served(i);
	}
	CHECK_EQ(sum, total);
	rpc_client_stats(cl, &cs);
	CHECK_EQ(cs.ok, total);
	CHECK_EQ(cs.timeouts + cs.failed + cs.bad + cs.late + cs.stray, 0);
	printf("hash: %d calls, members served %" PRIu64 " %" PRIu64
	       " %" PRIu64 "\n", total, served(0), served(1), served(2));
	rpc_client_close(cl);
}

/* ---- RR, no cache: one call per resolution ------------------------------ */

static void test_rr(const char *sock)
{
	struct name_client *nc;
	struct name_client_opts no = { .no_cache = true };
	struct rpc_client *cl;
	int n = (int)test_scale(600) / 3 * 3;
	uint64_t lo = UINT64_MAX, hi = 0;

	CHECK_OK(name_client_open(sock, &no, &nc));
	CHECK_OK(rpc_client_open_name(&cl, &fl_rpc, nc, SVC_RR, &copts));
	for (int i = 0; i < NMEMBERS; i++)
		members[i].served = 0;
	for (int i = 0; i < n; i++) {
		struct fl_who_req q = { .x = 1 };
		struct fl_who_rep p;

		strcpy(q.key, "rr");
		CHECK_EQ(rpc_call_fl_who(cl, &q, &p, NULL), 0);
	}
	for (int i = 0; i < NMEMBERS; i++) {
		lo = served(i) < lo ? served(i) : lo;
		hi = served(i) > hi ? served(i) : hi;
	}
	/* Round-robin: an even spread (one resolver, one caller). */
	CHECK(hi - lo <= 1);
	CHECK_EQ(served(0) + served(1) + served(2), n);
	rpc_client_close(cl);
	name_client_close(nc);
}

/* ---- a member leaves ---------------------------------------------------- */

static void test_leave(struct name_client *nc, struct name_client *ncl)
{
	struct rpc_client *cl;
	struct rpc_client_stats cs;
	int32_t before[NKEYS];
	int total = (int)test_scale(2000) / 4 * 4;
	const uint32_t gone = 1;

	CHECK_OK(rpc_client_open_name(&cl, &fl_rpc, ncl, SVC, &copts));
	/* Where each key goes now. */
	for (int k = 0; k < NKEYS; k++)
		key_member[k] = -1;
	run_callers(cl, 4, NKEYS * 4, UINT32_MAX);
	memcpy(before, key_member, sizeof(before));
	/* Member 1 leaves the service properly, then goes away. */
	CHECK_OK(name_unregister(nc, &members[gone].reg));
	CHECK_OK(name_unregister(nc, &members[gone].reg_rr));
	rpc_server_destroy(members[gone].srv);
	members[gone].srv = NULL;
	/* Its keys move to the others; nobody else's key moves. */
	for (int k = 0; k < NKEYS; k++)
		if (key_member[k] == (int32_t)gone)
			key_member[k] = -1;
	run_callers(cl, 4, total, gone);
	for (int k = 0; k < NKEYS; k++)
		if (before[k] != (int32_t)gone)
			CHECK_EQ(key_member[k], before[k]);
	rpc_client_stats(cl, &cs);
	CHECK_EQ(cs.failed + cs.timeouts + cs.bad, 0);
	rpc_client_close(cl);
}

/* ---- a member dies registered ------------------------------------------- */

static void test_death(struct name_client *nc, struct name_client *ncl)
{
	struct rpc_client *cl;
	const uint32_t dead = 2;
	int key = -1, errors = 0;
	uint64_t t0;

	CHECK_OK(rpc_client_open_name(&cl, &fl_rpc, ncl, SVC, &copts));
	/* A key member 2 answers, connected before it dies. */
	for (int k = 0; k < NKEYS && key < 0; k++) {
		struct fl_who_req q = { 0 };
		struct fl_who_rep p;
		struct rpc_call_opts o = { 0 };

		snprintf(q.key, sizeof(q.key), "key-%d", k);
		o.key = q.key;
		o.keylen = strlen(q.key);
		CHECK_EQ(rpc_call_fl_who(cl, &q, &p, &o), 0);
		if (p.member == dead)
			key = k;
	}
	CHECK(key >= 0);
	rpc_server_destroy(members[dead].srv);
	members[dead].srv = NULL;
	/* Still registered: calls for its key fail at once. */
	t0 = now_ns();
	for (int i = 0; i < 3; i++) {
		struct fl_who_req q = { 0 };
		struct fl_who_rep p;
		struct rpc_call_opts o = { .timeout_ns = 5 * NSEC_PER_SEC };
		int r;

		snprintf(q.key, sizeof(q.key), "key-%d", key);
		o.key = q.key;
		o.keylen = strlen(q.key);
		r = rpc_call_fl_who(cl, &q, &p, &o);
		CHECK(r == -EPIPE || r == -ENOENT);
		errors++;
	}
	CHECK(ns_since(t0) < 2 * NSEC_PER_SEC);
	/* Unregistered: its keys go to the member left. */
	CHECK_OK(name_unregister(nc, &members[dead].reg));
	CHECK_OK(name_unregister(nc, &members[dead].reg_rr));
	{
		struct fl_who_req q = { 0 };
		struct fl_who_rep p;
		struct rpc_call_opts o = { 0 };

		snprintf(q.key, sizeof(q.key), "key-%d", key);
		o.key = q.key;
		o.keylen = strlen(q.key);
		CHECK_EQ(rpc_call_fl_who(cl, &q, &p, &o), 0);
		CHECK_EQ(p.member, 0);
	}
	CHECK_EQ(errors, 3);
	rpc_client_close(cl);
}

static int test_main(void *arg)
{
	struct name_client *nc, *ncl;

	(void)arg;
	CHECK_OK(name_client_open(path, NULL, &nc));   /* the members' */
	CHECK_OK(name_client_open(path, NULL, &ncl));  /* the callers' */
	for (uint32_t i = 0; i < NMEMBERS; i++) {
		members[i].idx = i;
		member_start(nc, &members[i]);
	}
	test_hash(nc, ncl);
	test_rr(path);
	test_leave(nc, ncl);
	test_death(nc, ncl);
	for (int i = 0; i < NMEMBERS; i++)
		if (members[i].srv)
			rpc_server_destroy(members[i].srv);
	name_client_close(ncl);
	name_client_close(nc);
	return 0;
}

int main(void)
{
	struct rt_config cfg = { .nr_vcores = 2, .no_pin = 1 };
	struct name_server *ns;

	clock_calibrate();
	snprintf(path, sizeof(path), "/tmp/atoll-rpc-fleet-%d.sock",
		 (int)getpid());
	CHECK_OK(name_server_start(path, &ns));
	CHECK_EQ(rt_main(&cfg, test_main, NULL), 0);
	name_server_stop(ns);
	printf("msg_rpc_fleet: ok\n");
	return TEST_PASS;
}
