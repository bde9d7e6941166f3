/* super_squeeze.c - squeezable CG cells (min_cores 0) under the latency
 * controller, end to end on a 2-core node: an LL cell "kv" (cpu 1,
 * priority 10, target p99 in [1 ms, 2 ms], 200 ms windows) where
 * tests/super_latctl_mcp publishes synthetic latencies, beside a CG cell
 * "batch" (cpu 0, min_cores 0) running a busy shell loop.
 *   - min_cores is validated (0 or 1; 0 only for CG cells; no MCP in a
 *     squeezable cell; refused without a freezer, as with affinity-only
 *     enforcement), on the socket and in the CLI;
 *   - p99 5 ms > ut: the controller takes batch's only core; batch holds
 *     no core and is frozen (freezer state, and the loop's CPU time
 *     stops), its cpuset stays on cpu 0; list, top, CLI and journal say so;
 *   - p99 100 us < lt: the core goes back and batch is thawed (the loop's
 *     CPU time grows again); high again: frozen again;
 *   - a restart of atolld keeps it frozen; an operator's resize that
 *     frees a core thaws it (a frozen cell takes a free core);
 *   - destroying a frozen cell works (a frozen process takes no signal
 *     until thawed).
 * Skips without cgroups or without a freezer. */
#include "super_mcp_common.c"

#define KV_LATENCY "{\"lt_ns\":1000000,\"ut_ns\":2000000,\"window_ms\":200}"
#define BATCH_CELL "{\"op\":\"cell.create\",\"name\":\"batch\",\"cpus\":\"0\",\"class\":\"cg\",\"min_cores\":0}"

static struct inst g_in;

/* Thaw batch (every freezer interface, in every root of the instance):
 * frozen, its processes would survive the SIGKILLs of the cleanup. */
static void thaw_batch(void)
{
	for (int i = 0; i < g_in.nroots; i++) {
		char p[4200];
		int fd;

		snprintf(p, sizeof(p), "%s/batch/freezer.state", g_in.roots[i]);
		fd = open(p, O_WRONLY);
		if (fd >= 0) {
			(void)!write(fd, "THAWED", 6);
			close(fd);
		}
		snprintf(p, sizeof(p), "%s/batch/cgroup.freeze", g_in.roots[i]);
		fd = open(p, O_WRONLY);
		if (fd >= 0) {
			(void)!write(fd, "0", 1);
			close(fd);
		}
	}
}

static void on_fatal_thaw(int sig)
{
	thaw_batch();
	on_fatal(sig);
}

struct cell_view {
	char cpus[64];
	long long cores, min_cores;
	bool frozen, found;
};

/* Cell name as op ("cell.list" or "cell.top") shows it. */
static struct cell_view view(struct inst *in, const char *op, const char *name)
{
	char req[64];
	struct json_doc *d;
	const struct json *cells;
	struct cell_view v = { .cores = -1, .min_cores = -1 };

	snprintf(req, sizeof(req), "{\"op\":\"%s\"}", op);
	d = request(in, req);
	CHECK(reply_ok(d));
	cells = json_get(json_root(d), "cells");
	for (size_t i = 0; cells && i < cells->len; i++) {
		const struct json *c = cells->kids[i], *f;

		if (strcmp(json_get(c, "name")->s, name))
			continue;
		v.found = true;
		snprintf(v.cpus, sizeof(v.cpus), "%s", json_get(c, "cpus")->s);
		v.cores = json_get(c, "cores")->i;
		v.min_cores = json_get(c, "min_cores")->i;
		f = json_get(c, "frozen");
		v.frozen = f && f->type == JSON_BOOL && f->b;
	}
	json_free(d);
	return v;
}

/* batch holds no core and is frozen, or holds cpu 0 and is not, in both
 * cell.list and cell.top. */
static void check_batch(struct inst *in, bool frozen)
{
	static const char *const ops[] = { "cell.list", "cell.top" };

	for (size_t i = 0; i < ARRAY_SIZE(ops); i++) {
		struct cell_view v = view(in, ops[i], "batch");

		CHECK(v.found);
		CHECK_EQ(v.frozen, frozen);
		CHECK_EQ(v.cores, frozen ? 0 : 1);
		CHECK(!strcmp(v.cpus, frozen ? "" : "0"));
		CHECK_EQ(v.min_cores, 0);
	}
}

struct move {
	char direction[16], from[40], to[40];
	long long cpu;
};

/* Wait up to ms for the controller's move number seq. */
static struct move wait_move(struct inst *in, long long seq, int ms)
{
	for (int t = 0; t <= ms; t += 20) {
		struct json_doc *d = request(in, "{\"op\":\"cell.top\",\"moves_since\":0}");
		const struct json *mv = json_get(json_root(d), "moves");

		for (size_t i = 0; mv && i < mv->len; i++) {
			const struct json *m = mv->kids[i];
			struct move r;

			if (json_get(m, "seq")->i != seq)
				continue;
			snprintf(r.direction, sizeof(r.direction), "%s",
				 json_get(m, "direction")->s);
			snprintf(r.from, sizeof(r.from), "%s", json_get(m, "from")->s);
			snprintf(r.to, sizeof(r.to), "%s", json_get(m, "to")->s);
			r.cpu = json_get(m, "cpu")->i;
			json_free(d);
			return r;
		}
		json_free(d);
		sleep_ms(20);
	}
	fprintf(stderr, "FAIL: no core move %lld within %d ms\n", seq, ms);
	exit(TEST_FAIL);
}

static void check_move(const struct move *m, const char *dir, const char *from,
		       const char *to)
{
	if (strcmp(m->direction, dir) || strcmp(m->from, from) ||
	    strcmp(m->to, to) || m->cpu != 0) {
		fprintf(stderr, "FAIL: move %s cpu %lld from '%s' to '%s'; wanted %s cpu 0 from '%s' to '%s'\n",
			m->direction, m->cpu, m->from, m->to, dir, from, to);
		exit(TEST_FAIL);
	}
}

/* utime + stime of pid, clock ticks. */
static long long cpu_ticks(pid_t pid)
{
	char path[64], buf[1024], *p;
	unsigned long long ut, st;
	FILE *f;
	size_t n;

	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	f = fopen(path, "r");
	CHECK(f != NULL);
	n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = '\0';
	p = strrchr(buf, ')');
	CHECK(p && sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu",
			  &ut, &st) == 2);
	return (long long)(ut + st);
}

static char proc_state(pid_t pid)
{
	char path[64], buf[512], *p;
	FILE *f;
	size_t n;

	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	f = fopen(path, "r");
	if (!f)
		return '?';
	n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = '\0';
	p = strrchr(buf, ')');
	return p && p[1] == ' ' ? p[2] : '?';
}

/* The kernel's word: batch's freezer says frozen (or thawed). */
static bool kernel_frozen(struct inst *in)
{
	for (int i = 0; i < in->nroots; i++) {
		char p[4200], text[256] = "";
		FILE *f;
		size_t n;

		snprintf(p, sizeof(p), "%s/batch/freezer.state", in->roots[i]);
		f = fopen(p, "r");
		if (!f) {
			snprintf(p, sizeof(p), "%s/batch/cgroup.events",
				 in->roots[i]);
			f = fopen(p, "r");
		}
		if (!f)
			continue;
		n = fread(text, 1, sizeof(text) - 1, f);
		fclose(f);
		text[n] = '\0';
		return strstr(text, "FROZEN") || strstr(text, "frozen 1");
	}
	return false;
}

static void wait_kernel_frozen(struct inst *in, bool frozen)
{
	for (int t = 0; t < 3000 && kernel_frozen(in) != frozen; t += 20)
		sleep_ms(20);
	if (kernel_frozen(in) != frozen) {
		fprintf(stderr, "FAIL: the kernel says batch is %sfrozen\n",
			frozen ? "not " : "");
		exit(TEST_FAIL);
	}
}

/* The loop's CPU time: frozen, it does not move in a second; running, it
 * grows by 3 ticks (30 ms) within 5 s (generous: the node is shared). */
static void check_runs(pid_t busy, bool runs)
{
	long long t0 = cpu_ticks(busy), d = 0;
	int ms = 0;

	if (runs) {
		for (; ms < 5000 && d < 3; ms += 50) {
			sleep_ms(50);
			d = cpu_ticks(busy) - t0;
		}
	} else {
		sleep_ms(ms = 1000);
		d = cpu_ticks(busy) - t0;
	}
	printf("busy loop: state %c, %lld ticks in %d ms (%s)\n",
	       proc_state(busy), d, ms, runs ? "runs" : "frozen");
	if (runs ? d < 3 : d > 1) {
		fprintf(stderr, "FAIL: the batch loop used %lld ticks in %d ms; it should %s\n",
			d, ms, runs ? "run" : "be frozen");
		exit(TEST_FAIL);
	}
}

/* `atoll run --cell batch -- sh -c <busy loop>`; returns its pid once
 * the loop runs. */
static pid_t spawn_busy(struct inst *in)
{
	static const char *const loop[] = { "/bin/sh", "-c",
					    "while :; do :; done", NULL };

	return spawn_cmd_in_cell(in, "batch", "sh", loop);
}

static void check_validation(struct inst *in)
{
	static const char *const bad[][2] = {
		{ "\"class\":\"cg\",\"min_cores\":2", PROTO_E_RANGE },
		{ "\"class\":\"cg\",\"min_cores\":-1", PROTO_E_RANGE },
		{ "\"class\":\"cg\",\"min_cores\":\"0\"", PROTO_E_BADREQ },
		{ "\"class\":\"ll\",\"min_cores\":0", PROTO_E_BADREQ },
		{ "\"min_cores\":0", PROTO_E_BADREQ }, /* ll by default */
	};
	char line[256];

	for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
		snprintf(line, sizeof(line),
			 "{\"op\":\"cell.create\",\"name\":\"x\",\"cpus\":\"0\",%s}",
			 bad[i][0]);
		expect_error(in, line, bad[i][1]);
	}
	expect_error(in, "{\"op\":\"cell.resize\",\"name\":\"kv\",\"min_cores\":0}",
		     PROTO_E_BADREQ);
	CHECK(!view(in, "cell.list", "x").found);
	CHECK_EQ(view(in, "cell.list", "kv").min_cores, 1);
	CHECK_EQ(cli(in, NULL, 0, (const char *const[]){ "cell", "resize", "kv",
		 "--min-cores", "2", NULL }), 2);
	CHECK_EQ(cli(in, NULL, 0, (const char *const[]){ "cell", "resize", "kv",
		 "--min-cores", "0", NULL }), 1);
}

/* Without a freezer (affinity-only enforcement), min_cores 0 is refused
 * with the reason. */
static void check_no_freezer(struct inst *in)
{
	struct json_doc *d;

	inst_init(in, "sqza", "0-1");
	in->extra = "--enforce=affinity";
	inst_start(in);
	d = request(in, BATCH_CELL);
	CHECK(!reply_ok(d));
	CHECK(!strcmp(reply_code(d), PROTO_E_SYSTEM));
	CHECK(strstr(reply_msg(d), "affinity-only") != NULL);
	printf("refused as expected: %s\n", reply_msg(d));
	json_free(d);
	CHECK(!view(in, "cell.list", "batch").found);
	inst_kill(in, SIGTERM);
	rm_rf(in->dir);
}

/* batch exists with min_cores 0, or the test skips (no freezer). */
static void create_batch(struct inst *in)
{
	struct json_doc *d = request(in, BATCH_CELL);

	if (!reply_ok(d) && !strcmp(reply_code(d), PROTO_E_SYSTEM))
		test_skip("%s", reply_msg(d));
	if (!reply_ok(d)) {
		fprintf(stderr, "FAIL: creating batch: %s: %s\n", reply_code(d),
			reply_msg(d));
		exit(TEST_FAIL);
	}
	json_free(d);
	printf("batch created with min_cores 0\n");
}

static void read_text(const char *path, char *buf, size_t cap)
{
	FILE *f = fopen(path, "r");
	size_t n;

	CHECK(f != NULL);
	n = fread(buf, 1, cap - 1, f);
	buf[n] = '\0';
	fclose(f);
}

/* The squeeze as everyone shows it: CLI, journal, batch's cpuset. */
static void check_frozen_views(struct inst *in)
{
	static char text[1 << 16];
	char path[4200];

	CHECK_EQ(cli(in, text, sizeof(text), (const char *const[]){ "cell",
		 "list", NULL }), 0);
	CHECK(strstr(text, "frozen") != NULL);
	CHECK_EQ(cli(in, text, sizeof(text), (const char *const[]){ "top",
		 "--once", "--interval", "0.1", NULL }), 0);
	CHECK(strstr(text, "frozen") != NULL);
	CHECK(strstr(text, "batch -> kv") != NULL);
	snprintf(path, sizeof(path), "%s/cells.json", in->state);
	read_text(path, text, sizeof(text));
	CHECK(strstr(text, "\"min_cores\":0,\"parked_cpu\":0") != NULL);
	CHECK(strstr(text, "\"borrowed\":[{\"cpu\":0,\"from\":\"batch\"}]") != NULL);
	/* The cpuset stays on the lost core: it may not be empty. */
	snprintf(path, sizeof(path), "%s/batch/cpuset.cpus", in->roots[0]);
	read_text(path, text, sizeof(text));
	CHECK(!strcmp(text, "0\n"));
}

int main(int argc, char **argv)
{
	struct inst *in = &g_in;
	struct mcp_kid k;
	struct move m;
	pid_t busy;
	int st;

	mcp_init(argc, argv);
	if (geteuid() != 0)
		test_skip("needs root to create cgroups (uid %d)", (int)geteuid());
	signal(SIGALRM, on_fatal_thaw);
	signal(SIGTERM, on_fatal_thaw);
	atexit(thaw_batch); /* runs before super_common's cleanup */
	alarm(110);
	check_no_freezer(in);
	inst_init(in, "sqz", "0-1");
	inst_start(in);
	need_cgroups(in);
	expect_ok(in, "{\"op\":\"cell.create\",\"name\":\"kv\",\"cpus\":\"1\",\"class\":\"ll\",\"priority\":10,\"latency\":" KV_LATENCY "}");
	check_validation(in);
	create_batch(in);
	expect_error(in, "{\"op\":\"cell.resize\",\"name\":\"batch\",\"class\":\"ll\"}",
		     PROTO_E_BADREQ);
	expect_error(in, "{\"op\":\"mcp.register\",\"cell\":\"batch\"}",
		     PROTO_E_ADMISSION);
	busy = spawn_busy(in);
	check_batch(in, false);
	check_runs(busy, true);

	/* Above ut: batch's only core goes to kv, and batch is frozen. */
	mcp_spawn(in, "kv", "run", &k);
	EXPECT_LINE(&k, "vcores 1", 5000);
	m = wait_move(in, 1, 5000);
	check_move(&m, "grow", "batch", "kv");
	check_batch(in, true);
	CHECK(!strcmp(view(in, "cell.list", "kv").cpus, "0-1"));
	wait_kernel_frozen(in, true);
	EXPECT_LINE(&k, "vcores 2", 5000);
	check_runs(busy, false);
	check_frozen_views(in);
	/* Frozen, it keeps min_cores 0 unless it gets cores (none free). */
	expect_error(in, "{\"op\":\"cell.resize\",\"name\":\"batch\",\"min_cores\":1}",
		     PROTO_E_RANGE);
	expect_error(in, "{\"op\":\"cell.resize\",\"name\":\"batch\",\"min_cores\":1,\"cores\":1}",
		     PROTO_E_NOCORES);

	/* Below lt: the core goes back and batch runs again. */
	CHECK_OK(kill(k.pid, SIGUSR1));
	EXPECT_LINE(&k, "latency low", 5000);
	m = wait_move(in, 2, 5000);
	check_move(&m, "shrink", "kv", "batch");
	check_batch(in, false);
	wait_kernel_frozen(in, false);
	check_runs(busy, true);

	/* High again: frozen again; a restart of atolld keeps it so. */
	CHECK_OK(kill(k.pid, SIGUSR2));
	m = wait_move(in, 3, 5000);
	check_move(&m, "grow", "batch", "kv");
	wait_kernel_frozen(in, true);
	mcp_reap(&k);
	inst_kill(in, SIGTERM);
	inst_start(in);
	check_batch(in, true);
	wait_kernel_frozen(in, true);
	check_runs(busy, false);

	/* An operator's resize frees cpu 0: batch takes it and runs. */
	expect_ok(in, "{\"op\":\"cell.resize\",\"name\":\"kv\",\"cpus\":\"1\"}");
	check_batch(in, false);
	wait_kernel_frozen(in, false);
	check_runs(busy, true);

	/* Destroying a frozen cell stops its processes. */
	mcp_spawn(in, "kv", "run", &k);
	m = wait_move(in, 1, 5000);
	check_move(&m, "grow", "batch", "kv");
	wait_kernel_frozen(in, true);
	expect_ok(in, "{\"op\":\"cell.destroy\",\"name\":\"batch\",\"grace_ms\":100}");
	for (int i = 0; i < 250 && waitpid(busy, &st, WNOHANG) != busy; i++)
		sleep_ms(20);
	CHECK(kill(busy, 0) != 0);
	for (int i = 0; i < g_nkids; i++)
		if (g_kids[i] == busy)
			g_kids[i] = g_kids[--g_nkids];
	mcp_reap(&k);
	expect_ok(in, "{\"op\":\"cell.destroy\",\"name\":\"kv\",\"grace_ms\":100}");
	inst_kill(in, SIGTERM);
	printf("ok\n");
	return TEST_PASS;
}
