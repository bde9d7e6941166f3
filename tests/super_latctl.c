/* super_latctl.c - the latency controller (RainForest 6.3.2) end to end:
 * an MCP in an LL cell "kv" (priority 10, target p99 in [1 ms, 2 ms],
 * 200 ms windows) publishes synthetic latencies (tests/super_latctl_mcp)
 * next to a CG cell "batch". On this 2-core node:
 *   - the latency target and priority are validated in full (a refused
 *     request changes nothing), on the socket and in the CLI;
 *   - p99 5 ms > ut, but batch holds only its floor (1 core) and no core
 *     is free: no move, the controller says why (logged once);
 *   - batch destroyed: its core is free, so the next window moves it to
 *     kv (a grant: the MCP runs 2 vcores), logged with its reason, in the
 *     journal as a loan, in `atoll top --once --json` and `atoll status`;
 *   - p99 100 us < lt: the core goes back where it came from (a
 *     revocation: 1 vcore), logged; then nothing is left to give back;
 *   - target and priority survive a restart of atolld;
 *   - standalone, rt_latency_record() is a no-op.
 * The choice among several donors is tested by super_latctl_policy (it
 * needs more cores than this node has). Runs with any enforcement. */
#include "super_mcp_common.c"

#define UT_NS 2000000
#define LT_NS 1000000
#define KV_LATENCY "{\"lt_ns\":1000000,\"ut_ns\":2000000,\"window_ms\":200}"

static const struct json *cell_of(const struct json *root, const char *name)
{
	const struct json *cells = json_get(root, "cells");

	for (size_t i = 0; cells && i < cells->len; i++)
		if (!strcmp(json_get(cells->kids[i], "name")->s, name))
			return cells->kids[i];
	return NULL;
}

static const char *sget(const struct json *o, const char *k)
{
	const struct json *v = json_get(o, k);

	return v && v->type == JSON_STR ? v->s : "";
}

static long long iget(const struct json *o, const char *k)
{
	const struct json *v = json_get(o, k);

	return v && v->type == JSON_NUM && v->is_int ? (long long)v->i : -1;
}

static struct json_doc *top(struct inst *in)
{
	struct json_doc *d = request(in, "{\"op\":\"cell.top\",\"moves_since\":0}");

	CHECK(reply_ok(d));
	return d;
}

/* Wait up to ms for kv's controller to report action (and a reason
 * holding why, if not NULL); fails the test on timeout. */
static void wait_action(struct inst *in, const char *action, const char *why,
			int ms)
{
	for (int t = 0; t <= ms; t += 20) {
		struct json_doc *d = top(in);
		const struct json *lat = json_get(cell_of(json_root(d), "kv"),
						  "latency");
		bool hit = !strcmp(sget(lat, "action"), action) &&
			   (!why || strstr(sget(lat, "reason"), why));

		json_free(d);
		if (hit)
			return;
		sleep_ms(20);
	}
	fprintf(stderr, "FAIL: kv's controller never reported %s (%s) within %d ms\n",
		action, why ? why : "-", ms);
	exit(TEST_FAIL);
}

/* Wait up to ms for the controller's move number seq; returns the doc
 * (caller frees) and the move in *mv. */
static struct json_doc *wait_move(struct inst *in, long long seq, int ms,
				  const struct json **mv)
{
	for (int t = 0; t <= ms; t += 20) {
		struct json_doc *d = top(in);
		const struct json *moves = json_get(json_root(d), "moves");

		for (size_t i = 0; moves && i < moves->len; i++)
			if (iget(moves->kids[i], "seq") == seq) {
				*mv = moves->kids[i];
				return d;
			}
		json_free(d);
		sleep_ms(20);
	}
	fprintf(stderr, "FAIL: no core move %lld within %d ms\n", seq, ms);
	exit(TEST_FAIL);
}

static long long moves_total(struct inst *in)
{
	struct json_doc *d = top(in);
	long long n = iget(json_root(d), "moves_total");

	json_free(d);
	return n;
}

static void read_file(const char *path, char *buf, size_t cap)
{
	FILE *f = fopen(path, "r");
	size_t n;

	CHECK(f != NULL);
	n = fread(buf, 1, cap - 1, f);
	buf[n] = '\0';
	fclose(f);
}

/* The controller logs a state when its cause changes, not every window:
 * "no core can be taken" is logged, and never twice in a row. */
static void blocked_logged_once(const char *log)
{
	static const char tag[] = "latctl: cell 'kv': ";
	bool last_blocked = false;
	int n = 0;

	for (const char *p = log; (p = strstr(p, tag)); p++) {
		const char *eol = strchr(p, '\n');
		const char *hit = strstr(p, "no core can be taken");
		bool blocked = hit && (!eol || hit < eol);

		if (blocked && last_blocked) {
			fprintf(stderr, "FAIL: the blocked state was logged twice in a row:\n%s",
				log);
			exit(TEST_FAIL);
		}
		last_blocked = blocked;
		n += blocked;
	}
	CHECK(n >= 1);
}

static void log_text(struct inst *in, char *buf, size_t cap)
{
	char path[400];

	snprintf(path, sizeof(path), "%s/atolld.log", in->dir);
	read_file(path, buf, cap);
}

/* kv's cell.list entry as "cpus|priority|lt|ut|window|borrowed". */
static void kv_config(struct inst *in, char *out, size_t cap)
{
	struct json_doc *d = request(in, "{\"op\":\"cell.list\"}");
	const struct json *kv = cell_of(json_root(d), "kv");
	const struct json *lat = json_get(kv, "latency");
	const struct json *bor = json_get(kv, "borrowed");

	CHECK(kv != NULL);
	snprintf(out, cap, "%s|%lld|%lld|%lld|%lld|%zu", sget(kv, "cpus"),
		 iget(kv, "priority"), iget(lat, "lt_ns"), iget(lat, "ut_ns"),
		 iget(lat, "window_ms"), bor ? bor->len : 99);
	json_free(d);
}

static void check_validation(struct inst *in)
{
	static const char *const bad[][2] = {
		{ "\"latency\":{\"lt_ns\":2000000,\"ut_ns\":1000000}", PROTO_E_RANGE },
		{ "\"latency\":{\"lt_ns\":1000000,\"ut_ns\":1000000}", PROTO_E_RANGE },
		{ "\"latency\":{\"lt_ns\":1,\"ut_ns\":2,\"bogus\":1}", PROTO_E_BADREQ },
		{ "\"latency\":{\"lt_ns\":1000000}", PROTO_E_BADREQ },
		{ "\"latency\":\"fast\"", PROTO_E_BADREQ },
		{ "\"latency\":{\"lt_ns\":1,\"ut_ns\":2,\"window_ms\":1}", PROTO_E_RANGE },
		{ "\"latency\":{\"lt_ns\":1,\"ut_ns\":2,\"percentile\":0}", PROTO_E_RANGE },
		{ "\"latency\":{\"lt_ns\":1,\"ut_ns\":2,\"percentile\":\"99\"}", PROTO_E_BADREQ },
		{ "\"latency\":{\"lt_ns\":-5,\"ut_ns\":2}", PROTO_E_RANGE },
		{ "\"priority\":1001", PROTO_E_RANGE },
		{ "\"priority\":-1", PROTO_E_RANGE },
		{ "\"priority\":1.5", PROTO_E_RANGE },
	};
	char before[256], after[256], line[512], out[4096];
	struct json_doc *d;

	kv_config(in, before, sizeof(before));
	for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
		snprintf(line, sizeof(line),
			 "{\"op\":\"cell.resize\",\"name\":\"kv\",%s}", bad[i][0]);
		expect_error(in, line, bad[i][1]);
		snprintf(line, sizeof(line),
			 "{\"op\":\"cell.create\",\"name\":\"x\",\"cores\":1,%s}",
			 bad[i][0]);
		expect_error(in, line, bad[i][1]);
	}
	expect_error(in, "{\"op\":\"cell.top\",\"bogus\":1}", PROTO_E_BADREQ);
	expect_error(in, "{\"op\":\"cell.top\",\"moves_since\":-1}", PROTO_E_RANGE);
	/* The CLI: atolld's refusal (1), or its own usage errors (2). */
	CHECK_EQ(cli(in, NULL, 0, (const char *const[]){ "cell", "resize", "kv",
		 "--latency-target", "2ms:1ms", NULL }), 1);
	CHECK_EQ(cli(in, NULL, 0, (const char *const[]){ "cell", "resize", "kv",
		 "--latency-target", "1ms", NULL }), 2);
	kv_config(in, after, sizeof(after));
	CHECK(!strcmp(before, after));
	d = request(in, "{\"op\":\"cell.list\"}");
	CHECK(cell_of(json_root(d), "x") == NULL);
	json_free(d);
	/* The CLI's syntax reaches atolld as the same target. */
	CHECK_EQ(cli(in, out, sizeof(out), (const char *const[]){ "cell", "resize",
		 "kv", "--priority", "10", "--latency-target", "1ms:2000us:0.2s",
		 NULL }), 0);
	kv_config(in, after, sizeof(after));
	CHECK(!strcmp(before, after));
	printf("validation ok: %s\n", after);
}

/* `atoll top --once --json`: one snapshot, parsed and checked. */
static void check_top_json(struct inst *in)
{
	static char out[1 << 16];
	char err[256];
	struct json_doc *d;
	const struct json *root, *kv, *win, *moves, *load;

	CHECK_EQ(cli(in, out, sizeof(out), (const char *const[]){ "top", "--once",
		 "--json", "--interval", "0.3", NULL }), 0);
	d = json_parse(out, strlen(out), err, sizeof(err));
	if (!d) {
		fprintf(stderr, "FAIL: atoll top --json printed no JSON (%s): %s\n",
			err, out);
		exit(TEST_FAIL);
	}
	root = json_root(d);
	CHECK_EQ(iget(root, "interval_ms"), 300);
	CHECK(json_get(root, "ok") == NULL);
	kv = cell_of(root, "kv");
	CHECK(kv != NULL);
	CHECK_EQ(iget(kv, "cores"), 2);
	CHECK(!strcmp(sget(kv, "cpus"), "0-1"));
	CHECK_EQ(iget(kv, "priority"), 10);
	CHECK_EQ(iget(kv, "mcps"), 1);
	load = json_get(kv, "load");
	CHECK(load && load->type == JSON_NUM);
	CHECK(load->d >= 0.0 && load->d < 3.0);
	win = json_get(json_get(kv, "latency"), "window");
	CHECK(win && win->type == JSON_OBJ);
	/* (an empty window: the MCP stalled on a busy node) */
	CHECK(iget(win, "samples") == 0 || iget(win, "tail_ns") > UT_NS);
	CHECK(iget(win, "samples") >= 0 && iget(win, "ms") > 0);
	CHECK(iget(json_get(json_get(kv, "latency"), "target"), "ut_ns") == UT_NS);
	moves = json_get(root, "moves");
	CHECK(moves && moves->len >= 1);
	CHECK_EQ(iget(moves->kids[0], "seq"), 1);
	printf("top --json ok: kv load %.2f, p99 %lld ns\n", load->d,
	       iget(win, "tail_ns"));
	json_free(d);
}

int main(int argc, char **argv)
{
	static struct inst in;
	static char text[1 << 17];
	struct mcp_kid k, sa;
	struct json_doc *d;
	const struct json *mv, *kv;
	char path[400], conf[256];

	mcp_init(argc, argv);
	/* Longer than super_common's 50 s: a run of the CLI or of a client
	 * takes about a second under the sanitizers on a busy 2-core node. */
	alarm(110);
	inst_init(&in, "lat", "0-1");
	inst_start(&in);
	expect_ok(&in, "{\"op\":\"cell.create\",\"name\":\"kv\",\"cpus\":\"0\",\"class\":\"ll\",\"priority\":10,\"latency\":" KV_LATENCY "}");
	expect_ok(&in, "{\"op\":\"cell.create\",\"name\":\"batch\",\"cpus\":\"1\",\"class\":\"cg\"}");
	check_validation(&in);

	/* Standalone, the API records nothing and says so. */
	mcp_spawn_opt(&in, "kv", "standalone", false, &sa);
	EXPECT_LINE(&sa, "standalone ok", 5000);
	reap(sa.pid);
	close(sa.out);

	/* Above ut, but batch is at its floor and no core is free. */
	mcp_spawn(&in, "kv", "run", &k);
	EXPECT_LINE(&k, "vcores 1", 5000);
	EXPECT_LINE(&k, "snapshot ok", 5000);
	wait_action(&in, "blocked", "no core can be taken", 5000);
	sleep_ms(700); /* three more windows, still blocked */
	wait_action(&in, "blocked", "no core can be taken", 5000);
	CHECK_EQ(moves_total(&in), 0);
	log_text(&in, text, sizeof(text));
	blocked_logged_once(text);

	/* batch gone: its core is free and moves to kv. */
	expect_ok(&in, "{\"op\":\"cell.destroy\",\"name\":\"batch\",\"grace_ms\":100}");
	d = wait_move(&in, 1, 5000, &mv);
	CHECK(!strcmp(sget(mv, "cell"), "kv"));
	CHECK(!strcmp(sget(mv, "direction"), "grow"));
	CHECK(!strcmp(sget(mv, "from"), ""));
	CHECK(!strcmp(sget(mv, "to"), "kv"));
	CHECK_EQ(iget(mv, "cpu"), 1);
	CHECK(!strcmp(sget(mv, "threshold"), "ut"));
	CHECK_EQ(iget(mv, "threshold_ns"), UT_NS);
	CHECK(iget(mv, "tail_ns") > UT_NS);
	CHECK(iget(mv, "samples") > 0);
	kv = cell_of(json_root(d), "kv");
	CHECK(!strcmp(sget(kv, "cpus"), "0-1"));
	CHECK_EQ(json_get(kv, "borrowed")->len, 1);
	json_free(d);
	EXPECT_LINE(&k, "vcores 2", 5000);
	EXPECT_LINE(&k, "recorded on vcore 1", 5000);
	CHECK_EQ(mcp_allocated(&in, "kv"), 2);
	log_text(&in, text, sizeof(text));
	CHECK(strstr(text, "latctl: move 1: cell 'kv': p99 ") != NULL);
	CHECK(strstr(text, "above ut 2000000 ns: cpu 1 moved from (free) to kv") != NULL);
	snprintf(path, sizeof(path), "%s/cells.json", in.state);
	read_file(path, text, sizeof(text));
	CHECK(strstr(text, "\"borrowed\":[{\"cpu\":1,\"from\":\"\"}]") != NULL);
	CHECK(strstr(text, "\"priority\":10,\"latency\":{\"lt_ns\":1000000,\"ut_ns\":2000000,\"window_ms\":200,\"percentile\":99}") != NULL);
	check_top_json(&in);
	CHECK_EQ(cli(&in, text, sizeof(text), (const char *const[]){ "top",
		 "--once", "--interval", "0.1", NULL }), 0);
	CHECK(strstr(text, "(free) -> kv") != NULL);
	CHECK_EQ(cli(&in, text, sizeof(text), (const char *const[]){ "status",
		 NULL }), 0);
	if (!strstr(text, "latency ctl  1 cells with a latency target, 1 core moves")) {
		fprintf(stderr, "FAIL: atoll status says:\n%s", text);
		exit(TEST_FAIL);
	}

	/* Below lt: the borrowed core goes back to the free pool. */
	CHECK_OK(kill(k.pid, SIGUSR1));
	EXPECT_LINE(&k, "latency low", 5000);
	d = wait_move(&in, 2, 5000, &mv);
	CHECK(!strcmp(sget(mv, "direction"), "shrink"));
	CHECK(!strcmp(sget(mv, "from"), "kv"));
	CHECK(!strcmp(sget(mv, "to"), ""));
	CHECK_EQ(iget(mv, "cpu"), 1);
	CHECK(!strcmp(sget(mv, "threshold"), "lt"));
	CHECK(iget(mv, "tail_ns") < LT_NS);
	kv = cell_of(json_root(d), "kv");
	CHECK(!strcmp(sget(kv, "cpus"), "0"));
	CHECK_EQ(json_get(kv, "borrowed")->len, 0);
	json_free(d);
	EXPECT_LINE(&k, "vcores 1", 5000);
	CHECK(mcp_wait_allocated(&in, "kv", 1, 5000));
	log_text(&in, text, sizeof(text));
	CHECK(strstr(text, "below lt 1000000 ns: cpu 1 moved from kv to (free)") != NULL);
	wait_action(&in, "none", "nothing borrowed to give back", 5000);
	d = top(&in);
	mv = json_get(json_root(d), "moves");
	CHECK(mv && mv->len >= 2); /* more only if the MCP stalled for 2 s */
	CHECK(!strcmp(sget(mv->kids[mv->len - 1], "direction"), "shrink"));
	json_free(d);

	/* The target and priority are journaled: a restart keeps them. */
	mcp_reap(&k);
	kv_config(&in, conf, sizeof(conf));
	CHECK(!strcmp(conf, "0|10|1000000|2000000|200|0"));
	inst_kill(&in, SIGTERM);
	inst_start(&in);
	kv_config(&in, text, sizeof(text));
	CHECK(!strcmp(conf, text));

	expect_ok(&in, "{\"op\":\"cell.destroy\",\"name\":\"kv\",\"grace_ms\":100}");
	inst_kill(&in, SIGTERM);
	printf("ok\n");
	return TEST_PASS;
}
