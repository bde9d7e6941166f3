/* msg_rpc_node.c - RPC between processes of one node (the NODE mailbox
 * transport both ways): a server in a child process registered in the
 * name service, a client in the parent resolving it; calls, a timeout
 * with its late reply, a cancellation the remote handler sees; then the
 * child is killed and calls fail fast instead of hanging. Also the NODE
 * transport forced within one process. */
#include <errno.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atoll/clock.h>
#include <atoll/name.h>
#include <atoll/rpc.h>
#include <atoll/rt.h>
#include <atoll/sys.h>
#include <atoll/uthread.h>

#include "harness.h"

#define N_MSGS(M)                                                            \
	M(N_ADD, n_add, F_U64(a) F_U64(b), F_U64(sum) F_U32(pid))            \
	M(N_SLEEP, n_sleep, F_U64(ns), F_NONE)                               \
	M(N_CANCELS, n_cancels, F_NONE, F_U32(seen))

RPC_DECLARE(n, N_MSGS);
RPC_DEFINE(n, N_MSGS);

#define SVC "/svc/rpc-node"

static char path[108];
static int stop_pipe[2];
static uint32_t cancels_seen;
/* Calls that should succeed get time to, even on a loaded machine. */
static const struct rpc_client_opts copts = { .timeout_ns = 10 * NSEC_PER_SEC };

static int h_add(void *arg, const struct n_add_req *req, struct n_add_rep *rep,
		 struct rpc_ctx *ctx)
{
	(void)arg;
	(void)ctx;
	rep->sum = req->a + req->b;
	rep->pid = (uint32_t)getpid();
	return 0;
}

static int h_sleep(void *arg, const struct n_sleep_req *req,
		   struct n_sleep_rep *rep, struct rpc_ctx *ctx)
{
	uint64_t t0 = now_ns();

	(void)arg;
	(void)rep;
	while (ns_since(t0) < req->ns) {
		uthread_sleep_ns(NSEC_PER_MSEC);
		if (rpc_ctx_cancelled(ctx)) {
			__atomic_fetch_add(&cancels_seen, 1, __ATOMIC_RELAXED);
			return -ECANCELED;
		}
	}
	return 0;
}

static int h_cancels(void *arg, const struct n_cancels_req *req,
		     struct n_cancels_rep *rep, struct rpc_ctx *ctx)
{
	(void)arg;
	(void)req;
	(void)ctx;
	rep->seen = __atomic_load_n(&cancels_seen, __ATOMIC_RELAXED);
	return 0;
}

static struct rpc_server *server(const struct rpc_server_opts *so)
{
	struct rpc_server *srv;

	CHECK_OK(rpc_server_create(&srv, &n_rpc, so));
	CHECK_OK(rpc_serve_n_add(srv, h_add, NULL));
	CHECK_OK(rpc_serve_n_sleep(srv, h_sleep, NULL));
	CHECK_OK(rpc_serve_n_cancels(srv, h_cancels, NULL));
	CHECK_OK(rpc_server_start(srv));
	return srv;
}

/* ---- the child: a server until told to stop (or killed) --------------- */

static int child_main(void *arg)
{
	struct name_client *nc = NULL;
	struct rpc_server *srv = server(NULL);
	struct name_reg reg;
	char c;
	int err = -ENOENT;

	(void)arg;
	for (int i = 0; i < 500 && err; i++) {
		err = name_client_open(path, NULL, &nc);
		if (err)
			uthread_sleep_ns(10 * NSEC_PER_MSEC);
	}
	CHECK_OK(err);
	CHECK_OK(name_register_mbox(nc, SVC, rpc_server_mbox(srv), 0, &reg));
	/* Until the parent closes its end (or kills us). */
	CHECK(sys_read(stop_pipe[0], &c, 1) >= 0);
	rpc_server_destroy(srv);
	name_client_close(nc);
	return 0;
}

/* ---- the parent -------------------------------------------------------- */

static pid_t child;

static void test_remote(void)
{
	struct name_client *nc;
	struct rpc_client *cl;
	struct rpc_client_stats cs;
	int n = (int)test_scale(2000);
	int err = -ENOENT;

	CHECK_OK(name_client_open(path, NULL, &nc));
	/* The child registers when it is up. */
	for (int i = 0; i < 1000 && err; i++) {
		struct name_entry e;

		err = name_resolve(nc, SVC, NULL, 0, NAME_RESOLVE_FRESH, &e);
		if (err)
			uthread_sleep_ns(10 * NSEC_PER_MSEC);
	}
	CHECK_OK(err);
	CHECK_OK(rpc_client_open_name(&cl, &n_rpc, nc, SVC, &copts));
	for (int i = 0; i < n; i++) {
		struct n_add_req q = { (uint64_t)i, 1 };
		struct n_add_rep p;

		CHECK_EQ(rpc_call_n_add(cl, &q, &p, NULL), 0);
		CHECK(p.sum == (uint64_t)i + 1);
		CHECK_EQ(p.pid, child);
	}

	/* A timeout across processes; the late reply is counted. */
	{
		/* The reply comes long after the timeout, so even a
		 * loaded machine cannot deliver it first. */
		struct n_sleep_req q = { NSEC_PER_SEC };
		struct n_sleep_rep p;
		struct rpc_call_opts o = { .timeout_ns = 50 * NSEC_PER_MSEC };
		uint64_t t0 = now_ns();

		CHECK_EQ(rpc_call_n_sleep(cl, &q, &p, &o), -ETIMEDOUT);
		CHECK(ns_since(t0) >= o.timeout_ns);
		CHECK(ns_since(t0) < o.timeout_ns + NSEC_PER_SEC);
		for (int i = 0;; i++) {
			rpc_client_stats(cl, &cs);
			if (cs.late == 1)
				break;
			CHECK(i < 5000);
			uthread_sleep_ns(NSEC_PER_MSEC);
		}
	}
	/* A cancellation the remote handler sees. */
	{
		struct n_sleep_req q = { 5 * NSEC_PER_SEC };
		struct n_sleep_rep p;
		struct n_cancels_req cq;
		struct n_cancels_rep cp = { 0 };
		struct rpc_call call;

		CHECK_OK(rpc_start_n_sleep(cl, &call, &q, &p, NULL));
		uthread_sleep_ns(20 * NSEC_PER_MSEC);
		CHECK_OK(rpc_cancel(cl, rpc_call_id(&call)));
		CHECK_EQ(rpc_wait(&call), -ECANCELED);
		for (int i = 0; cp.seen == 0; i++) {
			CHECK(i < 5000);
			uthread_sleep_ns(NSEC_PER_MSEC);
			CHECK_EQ(rpc_call_n_cancels(cl, &cq, &cp, NULL), 0);
		}
		CHECK_EQ(cp.seen, 1);
	}

	/* The member dies: no hang, an error within the call's timeout. */
	CHECK_EQ(kill(child, SIGKILL), 0);
	{
		int st;

		CHECK_EQ(waitpid(child, &st, 0), child);
		child = 0;
	}
	for (int i = 0; i < 5; i++) {
		struct n_add_req q = { 1, 1 };
		struct n_add_rep p;
		struct rpc_call_opts o = { .timeout_ns = 200 * NSEC_PER_MSEC };
		uint64_t t0 = now_ns();
		int r = rpc_call_n_add(cl, &q, &p, &o);

		CHECK(r < 0);
		CHECK(r == -EPIPE || r == -ENOENT || r == -ECONNREFUSED ||
		      r == -ETIMEDOUT || r == -ECONNRESET);
		CHECK(ns_since(t0) < 2 * NSEC_PER_SEC);
	}
	rpc_client_close(cl);
	name_client_close(nc);
}

/* NODE both ways inside one process: the transport's own path. */
static void test_forced_node(void)
{
	struct rpc_server_opts so = { .reply_transport = MBOX_TRANSPORT_NODE };
	struct rpc_client_opts co = { .transport = MBOX_TRANSPORT_NODE,
				      .timeout_ns = 10 * NSEC_PER_SEC };
	struct rpc_server *srv = server(&so);
	struct rpc_client *cl;
	struct mbox_addr addr;
	struct mbox_cap cap;

	mbox_addr(rpc_server_mbox(srv), &addr);
	mbox_cap(rpc_server_mbox(srv), &cap);
	CHECK_OK(rpc_client_open(&cl, &n_rpc, &addr, &cap, &co));
	for (int i = 0; i < (int)test_scale(1000); i++) {
		struct n_add_req q = { (uint64_t)i, 2 };
		struct n_add_rep p;

		uint64_t t0 = now_ns();
		int r = rpc_call_n_add(cl, &q, &p, NULL);

		if (r) { /* say where it got stuck */
			struct rpc_server_stats ss;
			struct rpc_client_stats cs;
			struct mbox_stats ms, mc;

			rpc_server_stats(srv, &ss);
			rpc_client_stats(cl, &cs);
			mbox_stats(rpc_server_mbox(srv), &ms);
			mbox_stats(rpc_client_mbox(cl), &mc);
			fprintf(stderr, "call %d: %d after %.1f ms; server "
				"requests %" PRIu64 " replies %" PRIu64
				" inflight %u; client calls %" PRIu64
				" late %" PRIu64 "; server mbox received %"
				PRIu64 "; client mbox received %" PRIu64 "\n",
				i, r, ns_since(t0) / 1e6, ss.requests,
				ss.replies, ss.inflight, cs.calls, cs.late,
				ms.received, mc.received);
		}
		CHECK_EQ(r, 0);
		CHECK(p.sum == (uint64_t)i + 2);
	}
	rpc_client_close(cl);
	rpc_server_destroy(srv);
}

static int parent_main(void *arg)
{
	(void)arg;
	test_forced_node();
	test_remote();
	return 0;
}

int main(void)
{
	struct rt_config cfg = { .nr_vcores = 2, .no_pin = 1 };
	struct name_server *ns;

	clock_calibrate();
	snprintf(path, sizeof(path), "/tmp/atoll-rpc-node-%d.sock",
		 (int)getpid());
	CHECK_EQ(pipe(stop_pipe), 0);
	child = fork();
	CHECK(child >= 0);
	if (child == 0) {
		close(stop_pipe[1]);
		exit(rt_main(&cfg, child_main, NULL) ? 1 : 0);
	}
	close(stop_pipe[0]);
	CHECK_OK(name_server_start(path, &ns));
	CHECK_EQ(rt_main(&cfg, parent_main, NULL), 0);
	if (child > 0)
		kill(child, SIGKILL);
	close(stop_pipe[1]);
	name_server_stop(ns);
	printf("msg_rpc_node: ok\n");
	return TEST_PASS;
}
