/* elastic.c - `make bench B=elastic`: the latency controller moving cores
 * between atoll-kv's cell and a batch cell as the load steps up and down
 * (RainForest 6.3.2), beside a static split of the same two cores.
 *
 * Method. Two CPUs, A < B (the first two of the affinity mask; on a 2-CPU
 * machine 0 and 1). A private atolld (own temporary state directory,
 * socket and --name, --no-irq) manages A and B and holds two cells:
 *
 *  - "kv": LL, cpu B, priority 10, atoll-kv in it as an MCP
 *    (`ATOLL_CELL=kv atoll run --cell kv -- atoll-kv -p 0 -t 2`: two
 *    vcores, one shard each; it records the latency of each request batch
 *    with rt_latency_record(), which is what the controller reads);
 *  - "batch": CG, cpu A, priority 0, min_cores 0 (squeezable: the
 *    controller may take its only core, which freezes it), running the
 *    batch job: this program again (BATCH_WORKER), doing 64x64 matrix
 *    products and keeping their count in a file, which is the batch work
 *    completed. (stress-ng's metrics come only at its exit, and version
 *    0.15 crashed now and then on the stopping signal after a thaw.)
 *
 * The load generator (bench/loadgen: open loop, Poisson arrivals, latency
 * from each request's scheduled send) runs outside the cells at
 * SCHED_FIFO, pinned to A, sleeps between arrivals (--spin-us 0) and,
 * but for 5% of its cpu time (--poll-max 5), while replies are out, so
 * that it leaves A to the others when it can: a borrowed core on A runs
 * one of kv's vcores, and a generator polling for that vcore's replies
 * would keep it from making them. First it measures what
 * atoll-kv on its one core sustains (the achieved rate under an
 * overload, before the batch work starts); the phases offer a share of
 * that: low, high, low (10 s each, 2 s quick), one loadgen run per phase,
 * measured over the whole phase, after a pause and a warm-up the
 * controller does not see. Meanwhile the benchmark asks atolld for
 * "cell.top" every 200 ms: cores and frozen state per cell, the CPU time
 * of each cell's processes, and kv's last controller window (its p99).
 *
 * Two setups of the same programs and phases, the order alternating
 * between runs:
 *  - elastic (ours): kv has a latency target (p99 in [LT, UT] over
 *    WINDOW_MS windows): above UT the controller takes batch's core (batch
 *    is frozen), below LT it gives it back (batch is thawed);
 *  - static (the peer): no target; kv keeps B, batch keeps A.
 * Rows: per phase, the client's p99 and p99.9 (medians over runs); the
 * achieved rate in the high phase; the batch work completed; for the
 * elastic setup, the core moves and the time from the load step to the
 * first move; and what atoll-kv sustains holding both cores (the batch
 * cell gone), against its one core: what the borrowed core is worth to
 * it here. bench/results/elastic.png plots both setups over time
 * (run 1): kv's p99 per controller window, the cores each cell holds and
 * the batch's CPU use, the phases shaded.
 *
 * Skips (exit 77) when not root, with fewer than two CPUs, or when
 * atolld has no cgroups or no freezer. Everything it starts (atolld,
 * cells, atoll-kv, the batch job, loadgen) is stopped and its
 * temporary directory removed at exit, on failure and on SIGINT/SIGTERM
 * too (frozen processes are thawed first: frozen, they take no signal);
 * a watchdog alarm bounds the run; children die with the benchmark
 * (PR_SET_PDEATHSIG) and the batch job stops by itself after a deadline.
 * The programs are those the build compiled in; ATOLL_ATOLLD, ATOLL_CLI,
 * ATOLL_KV and LOADGEN override them.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <math.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <atoll/compiler.h>
#include <atoll/proto.h>

#include "benchlib.h"
#include "benchproc.h"
#include "json.h"

#define PYTHON "/usr/bin/python3"
#define KV_PRIORITY 10
#define LT_US 100		/* kv's latency target: p99 in [LT, UT] */
#define UT_US 130
#define WINDOW_MS 500
#define KV_VCORES "2"
#define LOW_SHARE 0.25		/* offered rate / kv's one-core capacity */
#define HIGH_SHARE 0.9
#define CAPACITY_RATE "2M"	/* an overload */
#define CONNS 16
#define KEYS 10000
#define FIFO_PRIO 50
#define GRACE_S 2		/* loadgen: replies later than this: lost */
#define SAMPLE_MS 200
#define RUNS_MAX 20
#define SAMPLES_MAX 4096
#define WINDOWS_MAX 2048
#define MOVES_MAX 256
#define STOP_WAIT_MS 5000
#define BATCH_WORKER "--batch-worker"
#define WORK_N 64		/* a batch work unit: one WORK_N^2 product */
#define CTL_TIMEOUT_S 30	/* for atolld's reply to a request */
#define STR_(x) #x
#define STR(x) STR_(x)

enum setup { ELASTIC, STATIC, NSETUPS };
enum phase { LOW1, HIGH, LOW2, NPHASES };

static const char *const setup_name[NSETUPS] = { "elastic", "static" };
static const char *const phase_name[NPHASES] = { "first low", "high",
						 "last low" };
static const double phase_share[NPHASES] = { LOW_SHARE, HIGH_SHARE,
					     LOW_SHARE };

/* One loadgen run: its step, as its JSON gives it. */
struct lg_result {
	double offered, achieved;	/* req/s */
	double p99_us, p999_us;		/* INFINITY: among the unanswered */
	double late_gen;		/* sent late by the generator's fault */
	double scheduled;
};

/* A cell.top sample; t in s from the first phase's start. */
struct sample {
	double t;
	int kv_cores, batch_cores;
	bool batch_frozen;
	double kv_cpu_s, batch_cpu_s;
};

/* One controller window of kv: its end and its p99. */
struct window {
	double t, tail_us;
};

struct move {
	double t;
	bool grow;
	int cpu;
};

struct run {
	double capacity;		/* req/s, kv on one core, overloaded */
	double capacity2;		/* static runs: kv on both cores */
	struct lg_result ph[NPHASES];
	double ph_t0[NPHASES], ph_t1[NPHASES];	/* s, from LOW1's start */
	double batch_units;		/* matrix products the batch job did */
	double batch_cpu_s;		/* batch CPU time over the phases */
	double frozen_s;		/* time batch spent frozen */
	bool frozen_at_end;		/* still frozen after the last phase */
	int nsamples, nwindows, nmoves;
	struct sample samples[SAMPLES_MAX];
	struct window windows[WINDOWS_MAX];
	struct move moves[MOVES_MAX];
};

static struct {
	const char *atolld, *atoll, *kv, *loadgen;
	char self[PATH_MAX];	/* this program: the batch job too */
	int cpu_a, cpu_b;
	char dir[64];		/* temporary directory */
	char sock[96], state[96], name[48];
	pid_t atolld_pid, kv_pid, batch_pid, lg_pid;
	int fd;			/* control connection */
	int nroots;
	char roots[3][PATH_MAX];
	double phase_s, capacity_s;
	int recover_ms;		/* kv's recovery from the capacity overload */
	double rate[NPHASES];	/* fixed by the first capacity measurement */
	uint64_t origin_ns;	/* the current run's t = 0 */
	uint64_t moves_base;	/* atolld's moves_total before the run */
	uint64_t last_window;	/* end_ns of kv's last window recorded */
	int port;
} g = { .fd = -1 };

static struct run s_runs[NSETUPS][RUNS_MAX];

/* ---- small helpers ---------------------------------------------------------- */

static double since_origin(uint64_t ns)
{
	return ((double)ns - (double)g.origin_ns) / 1e9;
}

static void log_path(char *buf, size_t len, const char *what)
{
	snprintf(buf, len, "%s/%s.log", g.dir, what);
}

static double jnum(const struct json *o, const char *key)
{
	const struct json *v = json_get(o, key);

	if (v && v->type == JSON_NUM)
		return v->is_int ? (double)v->i : v->d;
	return NAN;
}

static const char *jstr(const struct json *o, const char *key)
{
	const struct json *v = json_get(o, key);

	return v && v->type == JSON_STR ? v->s : "";
}

/* ---- the batch job ------------------------------------------------------------ */

static void batch_count_path(char *buf, size_t len)
{
	snprintf(buf, len, "%s/batch.count", g.dir);
}

/* The batch job, run in the batch cell as this program with the
 * arguments BATCH_WORKER PATH SECONDS: WORK_N x WORK_N matrix products
 * (a work unit each) for SECONDS at most, the count of those done written
 * at the start of PATH every 16 units, so the count is there to read
 * whenever the job stops, frozen or killed. */
static int batch_worker(const char *path, const char *seconds)
{
	static double a[WORK_N][WORK_N], b[WORK_N][WORK_N], c[WORK_N][WORK_N];
	uint64_t end = bproc_now_ns() + (uint64_t)(atof(seconds) * 1e9);
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);

	if (fd < 0)
		return 1;
	for (int i = 0; i < WORK_N; i++)
		for (int j = 0; j < WORK_N; j++) {
			a[i][j] = 1.0 / (i + j + 1);
			b[i][j] = (double)(i - j) / WORK_N;
		}
	for (uint64_t units = 1;; units++) {
		for (int i = 0; i < WORK_N; i++)
			for (int j = 0; j < WORK_N; j++) {
				double sum = 0;

				for (int k = 0; k < WORK_N; k++)
					sum += a[i][k] * b[k][j];
				c[i][j] = sum;
			}
		/* Feed the product back so no unit can be skipped. */
		a[units % WORK_N][0] += c[0][units % WORK_N] * 1e-12;
		if (units % 16 == 0) {
			char buf[32];
			int n = snprintf(buf, sizeof(buf), "%llu\n",
					 (unsigned long long)units);

			if (pwrite(fd, buf, (size_t)n, 0) != n ||
			    bproc_now_ns() > end)
				break;
		}
	}
	close(fd);
	return 0;
}

/* ---- processes -------------------------------------------------------------- */

/* Fork and exec argv with stdout and stderr into log (stdout into out
 * instead when out >= 0), ATOLL_SOCKET naming our atolld; in a cell's
 * environment when cell is set (ATOLL_CELL, for an MCP). The child dies
 * with us. */
static pid_t spawn(char *const *argv, const char *log, const char *cell,
		   int out)
{
	char sock[128], cell_env[64];
	const char *env[] = { sock, "ATOLL_CELL", NULL, NULL };
	struct bproc_spawn sp = { .argv = argv, .log = log, .out_fd = out,
				  .env = env };

	snprintf(sock, sizeof(sock), "%s=%s", PROTO_SOCKET_ENV, g.sock);
	if (cell) {
		snprintf(cell_env, sizeof(cell_env), "ATOLL_CELL=%s", cell);
		env[2] = cell_env;
	}
	return bproc_spawn(&sp);
}

/* Wait up to ms for pid; its status, or -1 if it still runs. */
static int wait_ms(pid_t pid, int ms)
{
	int st = bproc_wait_until(pid, bproc_now_s() + ms / 1e3, NULL);

	return st == -ETIMEDOUT ? -1 : st < 0 ? 0 : st;
}

/* Signal pid, then SIGKILL after ms. A frozen process dies only once
 * thawed (atolld does it when the cell goes), so this never waits
 * forever: it gives up after STOP_WAIT_MS more. */
static void stop(pid_t *pid, int sig, int ms)
{
	bproc_stop(pid, sig, ms / 1e3, STOP_WAIT_MS / 1e3);
}

/* ---- atolld ------------------------------------------------------------------ */

/* One request line, its reply parsed; NULL with why in err. */
static struct json_doc *ctl_try(const char *req, char *err, size_t errlen)
{
	static char reply[1 << 20];
	int len = bproc_ctl_line(g.fd, req, reply, sizeof(reply));

	if (len == -ETIMEDOUT) {
		snprintf(err, errlen, "no reply from atolld within "
			 STR(CTL_TIMEOUT_S) " s");
		return NULL;
	}
	if (len < 0) {
		snprintf(err, errlen, "%.200s", reply);
		return NULL;
	}
	return json_parse(reply, (size_t)len, err, errlen);
}

static bool reply_ok(const struct json_doc *d)
{
	const struct json *ok = json_get(json_root(d), "ok");

	return ok && ok->type == JSON_BOOL && ok->b;
}

static const char *reply_error(const struct json_doc *d, const char *what)
{
	return jstr(json_get(json_root(d), "error"), what);
}

/* A request that must succeed (printf-style); its reply. */
static struct json_doc *ctl(const char *fmt, ...)
	__attribute__((format(printf, 1, 2)));
static struct json_doc *ctl(const char *fmt, ...)
{
	char req[1024], err[256];
	struct json_doc *d;
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(req, sizeof(req), fmt, ap);
	va_end(ap);
	d = ctl_try(req, err, sizeof(err));
	if (!d)
		bench_die("request %s: %s (atolld's log: %s/atolld.log).", req,
			  err, g.dir);
	if (!reply_ok(d))
		bench_die("atolld refused %s: %s", req,
			  reply_error(d, "message"));
	return d;
}

static void atolld_start(void)
{
	char cpus[32], log[128], sock[128];
	const char *env[] = { sock, "ATOLL_CELL", NULL };
	struct bproc_atolld a = { .exe = g.atolld, .state = g.state,
				  .sock = g.sock, .cpus = cpus,
				  .name = g.name, .grace_ms = 200, .log = log,
				  .env = env, .ctl_timeout_s = CTL_TIMEOUT_S };
	struct json_doc *d;
	const struct json *roots;

	snprintf(cpus, sizeof(cpus), "%d,%d", g.cpu_a, g.cpu_b);
	snprintf(sock, sizeof(sock), "%s=%s", PROTO_SOCKET_ENV, g.sock);
	log_path(log, sizeof(log), "atolld");
	g.fd = bproc_atolld_start(&a, &g.atolld_pid, NULL);
	if (g.fd == -ECHILD)
		bench_die("atolld (%s) exited at start; see %s.", g.atolld,
			  log);
	if (g.fd < 0)
		bench_die("atolld did not open %s within 5 s; see %s.", g.sock,
			  log);
	d = ctl("{\"op\":\"status\"}");
	roots = json_get(json_root(d), "cgroup_roots");
	for (size_t i = 0; roots && roots->type == JSON_ARR &&
	     i < roots->len && i < ARRAY_SIZE(g.roots); i++)
		snprintf(g.roots[g.nroots++], sizeof(g.roots[0]), "%s",
			 roots->kids[i]->s);
	if (strncmp(jstr(json_root(d), "enforcement"), "cgroup", 6))
		bench_skip("atolld has no usable cgroup hierarchy (%s); cells and "
		     "the freezer need one", jstr(json_root(d), "weak_reason"));
	json_free(d);
}

/* The batch cell: CG on A, squeezable; skips without a freezer. */
static void batch_cell_create(void)
{
	char req[256], err[256];
	struct json_doc *d;

	snprintf(req, sizeof(req),
		 "{\"op\":\"cell.create\",\"name\":\"batch\",\"cpus\":\"%d\","
		 "\"class\":\"cg\",\"priority\":0,\"min_cores\":0}", g.cpu_a);
	d = ctl_try(req, err, sizeof(err));
	if (!d)
		bench_die("request %s: %s.", req, err);
	if (!reply_ok(d) && !strcmp(reply_error(d, "code"), PROTO_E_SYSTEM))
		bench_skip("%s", reply_error(d, "message"));
	if (!reply_ok(d))
		bench_die("atolld refused %s: %s", req,
			  reply_error(d, "message"));
	json_free(d);
}

static void cells_create(void)
{
	json_free(ctl("{\"op\":\"cell.create\",\"name\":\"kv\",\"cpus\":\"%d\","
		      "\"class\":\"ll\",\"priority\":%d}", g.cpu_b,
		      KV_PRIORITY));
	batch_cell_create();
}

/* Destroy both cells (a frozen batch is thawed by atolld first); quiet
 * on failure, for the cleanup. */
static void cells_destroy(void)
{
	static const char *const cells[] = { "kv", "batch" };
	char req[128], err[256];

	for (size_t i = 0; i < ARRAY_SIZE(cells); i++) {
		snprintf(req, sizeof(req),
			 "{\"op\":\"cell.destroy\",\"name\":\"%s\","
			 "\"grace_ms\":500}", cells[i]);
		json_free(ctl_try(req, err, sizeof(err)));
	}
}

static int kv_mcps(void)
{
	struct json_doc *d = ctl("{\"op\":\"cell.top\"}");
	const struct json *cells = json_get(json_root(d), "cells");
	int n = 0;

	for (size_t i = 0; cells && i < cells->len; i++)
		if (!strcmp(jstr(cells->kids[i], "name"), "kv"))
			n = (int)jnum(cells->kids[i], "mcps");
	json_free(d);
	return n;
}

/* atoll-kv in cell kv; waits until it listens and has registered. */
static void kv_start(void)
{
	char log[128];
	char *argv[] = { (char *)g.atoll, (char *)"run", (char *)"--cell",
			 (char *)"kv", (char *)"--", (char *)g.kv, (char *)"-p",
			 (char *)"0", (char *)"-t", (char *)KV_VCORES, NULL };

	log_path(log, sizeof(log), "kv");
	unlink(log);
	g.kv_pid = spawn(argv, log, "kv", -1);
	for (int i = 0; g.port <= 0; i++) {
		char *text = bench_read_file(log, NULL), *at;

		at = text ? strstr(text, "listening on ") : NULL;
		at = at ? strrchr(at, ':') : NULL;
		g.port = at ? atoi(at + 1) : 0;
		free(text);
		if (g.port > 0)
			break;
		if (wait_ms(g.kv_pid, 0) != -1) {
			g.kv_pid = 0;
			bench_die("%s exited at start; see %s.", g.kv, log);
		}
		if (i == 1000)
			bench_die("%s printed no \"listening on\" within 10 s; "
				  "see %s.", g.kv, log);
		bproc_sleep_ms(10);
	}
	for (int i = 0; kv_mcps() < 1; i++) {
		if (i == 250)
			bench_die("atoll-kv listens but did not register with "
				  "atolld as an MCP within 5 s; see %s.", log);
		bproc_sleep_ms(20);
	}
}

static void batch_start(void)
{
	char log[128], count[128], life[32];
	char *argv[] = { (char *)g.atoll, (char *)"run", (char *)"--cell",
			 (char *)"batch", (char *)"--", g.self,
			 (char *)BATCH_WORKER, count, life, NULL };

	/* A deadline of its own, should the benchmark die unseen. */
	snprintf(life, sizeof(life), "%.0f",
		 (NPHASES + 1) * (g.phase_s + GRACE_S) + 120);
	batch_count_path(count, sizeof(count));
	log_path(log, sizeof(log), "batch");
	unlink(count);
	g.batch_pid = spawn(argv, log, NULL, -1);
}

/* The work units the batch job completed, as its count file says. */
static double batch_units(void)
{
	char path[128], *text;
	double n = 0;

	batch_count_path(path, sizeof(path));
	text = bench_read_file(path, NULL);
	if (text)
		n = strtod(text, NULL);
	free(text);
	return n;
}

/* Stop the batch job (the cell is thawed by then); its units. */
static double batch_stop(void)
{
	stop(&g.batch_pid, SIGKILL, STOP_WAIT_MS);
	return batch_units();
}

/* ---- sampling ------------------------------------------------------------ */

static const struct json *top_cell(const struct json *root, const char *name)
{
	const struct json *cells = json_get(root, "cells");

	for (size_t i = 0; cells && cells->type == JSON_ARR && i < cells->len;
	     i++)
		if (!strcmp(jstr(cells->kids[i], "name"), name))
			return cells->kids[i];
	return NULL;
}

/* One cell.top into the run's series: cores, frozen, CPU time, and
 * kv's window when a new one ended. */
static void sample(struct run *r)
{
	struct json_doc *d = ctl("{\"op\":\"cell.top\"}");
	const struct json *root = json_root(d);
	const struct json *kv = top_cell(root, "kv");
	const struct json *batch = top_cell(root, "batch");
	const struct json *win = json_get(json_get(kv, "latency"), "window");
	const struct json *fr = json_get(batch, "frozen");
	bool has_win = win && win->type == JSON_OBJ &&
		       jnum(win, "samples") > 0;
	uint64_t end = has_win ? (uint64_t)jnum(win, "end_ns") : 0;

	if (kv && batch && r->nsamples < SAMPLES_MAX) {
		struct sample *s = &r->samples[r->nsamples++];

		s->t = since_origin((uint64_t)jnum(root, "now_ns"));
		s->kv_cores = (int)jnum(kv, "cores");
		s->batch_cores = (int)jnum(batch, "cores");
		s->batch_frozen = fr && fr->type == JSON_BOOL && fr->b;
		s->kv_cpu_s = jnum(kv, "cpu_ns") / 1e9;
		s->batch_cpu_s = jnum(batch, "cpu_ns") / 1e9;
	}
	if (has_win && end != g.last_window && r->nwindows < WINDOWS_MAX) {
		r->windows[r->nwindows++] = (struct window){
			.t = since_origin(end),
			.tail_us = jnum(win, "tail_ns") / 1e3,
		};
		g.last_window = end;
	}
	json_free(d);
}

/* Sample every SAMPLE_MS for ms. */
static void sample_for(struct run *r, int ms)
{
	uint64_t end = bproc_now_ns() + (uint64_t)ms * 1000000ull;

	while (bproc_now_ns() < end) {
		sample(r);
		bproc_sleep_ms(SAMPLE_MS);
	}
}

/* The controller's moves of this run. */
static void collect_moves(struct run *r)
{
	struct json_doc *d = ctl("{\"op\":\"cell.top\",\"moves_since\":%llu}",
				 (unsigned long long)g.moves_base);
	const struct json *mv = json_get(json_root(d), "moves");

	for (size_t i = 0; mv && i < mv->len && r->nmoves < MOVES_MAX; i++)
		r->moves[r->nmoves++] = (struct move){
			.t = since_origin((uint64_t)jnum(mv->kids[i], "at_ns")),
			.grow = !strcmp(jstr(mv->kids[i], "direction"), "grow"),
			.cpu = (int)jnum(mv->kids[i], "cpu"),
		};
	json_free(d);
}

static uint64_t moves_total(void)
{
	struct json_doc *d = ctl("{\"op\":\"cell.top\",\"moves_since\":0}");
	uint64_t n = (uint64_t)jnum(json_root(d), "moves_total");

	json_free(d);
	return n;
}

/* ---- the load ---------------------------------------------------------------- */

/* Start loadgen: one step per rate of the comma-separated list, each
 * duration_s long and measured whole (no warm-up); its table goes to a
 * pipe (*out, non-blocking) when out is set, else to its log. */
static pid_t loadgen_start(const char *rates, double duration_s, bool preload,
			   int *out)
{
	char server[48], d[32], conns[16], keys[16], prio[16], cpu[16];
	char grace[16], json_path[128], log[128];
	char *argv[] = { (char *)g.loadgen, (char *)"-s", server, (char *)"-r",
			 (char *)rates, (char *)"-w", (char *)"0", (char *)"-d",
			 d, (char *)"-c", conns, (char *)"-k", keys,
			 (char *)"--fifo", prio, (char *)"--cpus", cpu,
			 (char *)"--spin-us", (char *)"0", (char *)"--poll-max",
			 (char *)"5", (char *)"--grace",
			 grace, (char *)"--json", json_path,
			 preload ? NULL : (char *)"--no-preload", NULL };
	int p[2] = { -1, -1 };
	pid_t pid;

	snprintf(server, sizeof(server), "127.0.0.1:%d", g.port);
	snprintf(d, sizeof(d), "%.3f", duration_s);
	snprintf(conns, sizeof(conns), "%d", CONNS);
	snprintf(keys, sizeof(keys), "%d", KEYS);
	snprintf(prio, sizeof(prio), "%d", FIFO_PRIO);
	snprintf(cpu, sizeof(cpu), "%d", g.cpu_a);
	snprintf(grace, sizeof(grace), "%d", GRACE_S);
	snprintf(json_path, sizeof(json_path), "%s/lg.json", g.dir);
	log_path(log, sizeof(log), "loadgen");
	unlink(json_path);
	if (out && pipe2(p, O_CLOEXEC))
		bench_die("pipe: %s.", strerror(errno));
	pid = spawn(argv, log, NULL, p[1]);
	if (out) {
		close(p[1]);
		fcntl(p[0], F_SETFL, O_NONBLOCK);
		*out = p[0];
	}
	return pid;
}

/* loadgen ended with status st (-1: it did not end in time): n steps
 * of results from its JSON, or the benchmark dies. */
static void loadgen_results(int st, struct lg_result *res, size_t n)
{
	char json_path[128], log[128], err[128], *text;
	size_t len;
	const struct json *steps;
	struct json_doc *doc;

	if (st == -1)
		stop(&g.lg_pid, SIGKILL, 1000);
	g.lg_pid = 0;
	log_path(log, sizeof(log), "loadgen");
	if (st == -1 || !WIFEXITED(st) || WEXITSTATUS(st))
		bench_die("the load generator %s; see %s.",
			  st == -1 ? "did not finish in time" : "failed", log);
	snprintf(json_path, sizeof(json_path), "%s/lg.json", g.dir);
	text = bench_read_file(json_path, &len);
	doc = text ? json_parse(text, len, err, sizeof(err)) : NULL;
	free(text);
	steps = doc ? json_get(json_root(doc), "steps") : NULL;
	if (!steps || steps->type != JSON_ARR || steps->len != n)
		bench_die("cannot read the load generator's results in %s.",
			  json_path);
	for (size_t i = 0; i < n; i++) {
		const struct json *step = steps->kids[i];

		res[i] = (struct lg_result){
			.offered = jnum(step, "offered"),
			.achieved = jnum(step, "achieved"),
			.p99_us = jnum(step, "p99_us"),
			.p999_us = jnum(step, "p999_us"),
			.late_gen = jnum(step, "late_sends") -
				    jnum(step, "late_waited_for_conn"),
			.scheduled = jnum(step, "scheduled"),
		};
		/* null: the percentile is among the requests never
		 * answered. */
		if (isnan(res[i].p99_us))
			res[i].p99_us = INFINITY;
		if (isnan(res[i].p999_us))
			res[i].p999_us = INFINITY;
	}
	json_free(doc);
}

/* Milliseconds loadgen may take for steps of duration_s: the windows,
 * the grace for the replies of each, and slack. */
static int loadgen_limit_ms(int steps, double duration_s)
{
	return (int)(steps * (duration_s + GRACE_S) * 1000) + 30000;
}

/* One step at rate, without sampling; its results. */
static struct lg_result loadgen_step(const char *rate, double duration_s,
				     bool preload)
{
	struct lg_result res;

	g.lg_pid = loadgen_start(rate, duration_s, preload, NULL);
	loadgen_results(wait_ms(g.lg_pid, loadgen_limit_ms(1, duration_s)),
			&res, 1);
	return res;
}

/* Whether line is one of loadgen's table rows of a step (it starts
 * with the offered rate), not its header or its warnings. */
static bool step_line(const char *line)
{
	while (*line == ' ')
		line++;
	return *line >= '0' && *line <= '9';
}

/* Read what loadgen printed; returns how many step rows ended. */
static int step_rows(int fd)
{
	static char buf[4096];
	static size_t len;
	int rows = 0;
	ssize_t n;

	while ((n = read(fd, buf + len, sizeof(buf) - 1 - len)) > 0) {
		char *nl;

		len += (size_t)n;
		buf[len] = '\0';
		while ((nl = strchr(buf, '\n'))) {
			*nl = '\0';
			rows += step_line(buf);
			len -= (size_t)(nl + 1 - buf);
			memmove(buf, nl + 1, len + 1);
		}
		if (len == sizeof(buf) - 1)
			len = 0;	/* a line that long is no row */
	}
	return rows;
}

/* ---- one run of one setup ------------------------------------------------- */

/* The batch's CPU time from the first sample at or after t0 to the last
 * at or before t1. */
static double batch_cpu_between(const struct run *r, double t0, double t1)
{
	int a = 0, b = r->nsamples - 1;

	while (a < r->nsamples && r->samples[a].t < t0)
		a++;
	while (b >= 0 && r->samples[b].t > t1)
		b--;
	return a < b ? r->samples[b].batch_cpu_s - r->samples[a].batch_cpu_s :
		       0;
}

/* How long batch was frozen during the phases, from the samples (each
 * holds until the next). */
static double frozen_time(const struct run *r)
{
	double s = 0;

	for (int i = 0; i + 1 < r->nsamples; i++) {
		double t0 = fmax(r->samples[i].t, r->ph_t0[LOW1]);
		double t1 = fmin(r->samples[i + 1].t, r->ph_t1[LOW2]);

		if (r->samples[i].batch_frozen && t1 > t0)
			s += t1 - t0;
	}
	return s;
}

/* kv's cores at time t, from the samples; -1 before the first. */
static int kv_cores_at(const struct run *r, double t)
{
	int n = -1;

	for (int i = 0; i < r->nsamples && r->samples[i].t <= t; i++)
		n = r->samples[i].kv_cores;
	return n;
}

/* What kv sustains on both cores, one shared with the generator: the
 * batch cell goes, kv takes its core, then the same overload as on one
 * core. */
static double capacity_both_cores(void)
{
	json_free(ctl("{\"op\":\"cell.destroy\",\"name\":\"batch\","
		      "\"grace_ms\":500}"));
	json_free(ctl("{\"op\":\"cell.resize\",\"name\":\"kv\","
		      "\"cpus\":\"%d,%d\"}", g.cpu_a, g.cpu_b));
	return loadgen_step(CAPACITY_RATE, g.capacity_s, false).achieved;
}

/* The load's warm-up step ended: t = 0, the batch work starts and, for
 * the elastic setup, kv gets its latency target (its first window
 * starts then). */
static void phases_begin(enum setup su)
{
	g.origin_ns = bproc_now_ns();
	g.moves_base = moves_total();
	g.last_window = 0;
	batch_start();
	if (su == ELASTIC)
		json_free(ctl("{\"op\":\"cell.resize\",\"name\":\"kv\","
			      "\"latency\":{\"lt_ns\":%d,\"ut_ns\":%d,"
			      "\"window_ms\":%d,\"percentile\":99}}",
			      LT_US * 1000, UT_US * 1000, WINDOW_MS));
}

/* The phases: one loadgen run whose steps are a warm-up and then one per
 * phase, so its connections stay open from one phase to the next (new
 * ones are slow at first: their uthreads' stacks fault in). Its table
 * comes on a pipe: a step's row marks its end and the next one's start.
 * cell.top is sampled from the warm-up's end on. */
static void phases_run(enum setup su, struct run *r)
{
	struct lg_result res[NPHASES + 1];
	uint64_t deadline, next = 0;
	char rates[128];
	int out, ended = 0, st = -1;

	snprintf(rates, sizeof(rates), "%.0f,%.0f,%.0f,%.0f", g.rate[LOW1],
		 g.rate[LOW1], g.rate[HIGH], g.rate[LOW2]);
	g.lg_pid = loadgen_start(rates, g.phase_s, false, &out);
	deadline = bproc_now_ns() +
		   (uint64_t)loadgen_limit_ms(NPHASES + 1, g.phase_s) *
		   1000000ull;
	for (bool done = false; !done;) {
		int rows;

		/* Exited first, read second: then every row is read. */
		done = waitpid(g.lg_pid, &st, WNOHANG) == g.lg_pid;
		for (rows = step_rows(out); rows > 0; rows--, ended++) {
			double t = ended ? since_origin(bproc_now_ns()) : 0;

			if (!ended)
				phases_begin(su);
			else
				r->ph_t1[ended - 1] = t;
			if (ended < NPHASES)
				r->ph_t0[ended] = t;
		}
		if (done)
			break;
		st = -1;
		if (bproc_now_ns() >= deadline)
			break;
		if (ended && bproc_now_ns() >= next) {
			sample(r);
			next = bproc_now_ns() + SAMPLE_MS * 1000000ull;
		}
		bproc_sleep_ms(5);
	}
	close(out);
	loadgen_results(st, res, NPHASES + 1);
	if (ended != NPHASES + 1)
		bench_die("the load generator printed %d of its %d step rows.",
			  ended, NPHASES + 1);
	memcpy(r->ph, res + 1, sizeof(r->ph));
}

static void run_setup(enum setup su, struct run *r, bool calibrate)
{
	memset(r, 0, sizeof(*r));
	cells_create();
	kv_start();
	/* kv on its one core, overloaded; this load also stores every key. */
	r->capacity = loadgen_step(CAPACITY_RATE, g.capacity_s, true).achieved;
	if (calibrate)
		for (int p = 0; p < NPHASES; p++)
			g.rate[p] = fmax(1000, round(phase_share[p] *
						     r->capacity / 100) * 100);
	bproc_sleep_ms(g.recover_ms);
	phases_run(su, r);
	sample_for(r, 1000);
	collect_moves(r);
	r->frozen_s = frozen_time(r);
	r->batch_cpu_s = batch_cpu_between(r, r->ph_t0[LOW1], r->ph_t1[LOW2]);
	r->frozen_at_end = r->nsamples &&
			   r->samples[r->nsamples - 1].batch_frozen;
	/* Frozen, the batch job would take no signal: the controller stops and
	 * an operator's resize gives kv its own core back, so batch takes
	 * the free one and runs (a no-op for the static setup). */
	json_free(ctl("{\"op\":\"cell.resize\",\"name\":\"kv\","
		      "\"latency\":null,\"cpus\":\"%d\"}", g.cpu_b));
	r->batch_units = batch_stop();
	if (su == STATIC)
		r->capacity2 = capacity_both_cores();
	stop(&g.kv_pid, SIGTERM, STOP_WAIT_MS);
	cells_destroy();
	g.port = 0;
}

/* ---- report ----------------------------------------------------------------- */

static double first_move_after(const struct run *r, double t0, bool grow)
{
	for (int i = 0; i < r->nmoves; i++)
		if (r->moves[i].grow == grow && r->moves[i].t >= t0)
			return (r->moves[i].t - t0) * 1e3;
	return NAN;
}

/* The finite values of v[0..n) into out; how many. */
static size_t finite_only(const double *v, size_t n, double *out)
{
	size_t k = 0;

	for (size_t i = 0; i < n; i++)
		if (isfinite(v[i]))
			out[k++] = v[i];
	return k;
}

static const char peer_name[] =
	"static split (kv 1 core, batch 1 core, no latency target)";

/* A latency row: unanswered percentiles count as the grace time, and
 * say so. */
static void latency_row(struct bench_report *rep, int runs, enum phase p,
			bool p999)
{
	double v[NSETUPS][RUNS_MAX];
	int lost[NSETUPS] = { 0 };
	char metric[64];
	int row;

	for (int su = 0; su < NSETUPS; su++)
		for (int k = 0; k < runs; k++) {
			const struct lg_result *res = &s_runs[su][k].ph[p];
			double x = p999 ? res->p999_us : res->p99_us;

			lost[su] += !isfinite(x);
			v[su][k] = isfinite(x) ? x : GRACE_S * 1e6;
		}
	snprintf(metric, sizeof(metric), "%s in %s phase",
		 p999 ? "p99.9" : "p99", phase_name[p]);
	row = bench_report_row(rep, metric, "us", BENCH_LOWER, v[ELASTIC],
			       (size_t)runs, v[STATIC], (size_t)runs,
			       peer_name);
	if (row < 0)
		return;
	bench_report_note(rep, row, "offered", "%.0f req/s", g.rate[p]);
	for (int su = 0; su < NSETUPS; su++)
		if (lost[su])
			bench_report_note(rep, row, setup_name[su],
					  "%d of %d runs had the percentile "
					  "among unanswered requests, counted "
					  "as %d s", lost[su], runs, GRACE_S);
}

static void add_rows(struct bench_report *rep, int runs)
{
	double v[NSETUPS][RUNS_MAX], w[RUNS_MAX], up[RUNS_MAX], down[RUNS_MAX];
	size_t n;
	int row;

	for (int p = 0; p < NPHASES; p++) {
		latency_row(rep, runs, (enum phase)p, false);
		latency_row(rep, runs, (enum phase)p, true);
	}
	for (int su = 0; su < NSETUPS; su++)
		for (int k = 0; k < runs; k++)
			v[su][k] = s_runs[su][k].ph[HIGH].achieved;
	row = bench_report_row(rep, "achieved rate in high phase", "req/s",
			       BENCH_HIGHER, v[ELASTIC], (size_t)runs,
			       v[STATIC], (size_t)runs, peer_name);
	if (row >= 0)
		bench_report_note(rep, row, "offered", "%.0f req/s",
				  g.rate[HIGH]);
	for (int su = 0; su < NSETUPS; su++)
		for (int k = 0; k < runs; k++)
			v[su][k] = s_runs[su][k].batch_units;
	row = bench_report_row(rep, "batch work completed", "units",
			       BENCH_HIGHER, v[ELASTIC], (size_t)runs,
			       v[STATIC], (size_t)runs, peer_name);
	for (int su = 0; row >= 0 && su < NSETUPS; su++) {
		for (int k = 0; k < runs; k++)
			w[k] = s_runs[su][k].batch_cpu_s;
		bench_report_note(rep, row, setup_name[su],
				  "units: %dx%d matrix products; batch CPU time "
				  "over the phases %.1f s (median)", WORK_N, WORK_N,
				  bench_median(w, (size_t)runs));
	}
	for (int k = 0; k < runs; k++)
		v[ELASTIC][k] = s_runs[ELASTIC][k].nmoves;
	row = bench_report_row(rep, "core moves", "moves", BENCH_LOWER,
			       v[ELASTIC], (size_t)runs, NULL, 0, NULL);
	if (row >= 0) {
		double span[RUNS_MAX];

		for (int k = 0; k < runs; k++) {
			const struct run *r = &s_runs[ELASTIC][k];

			w[k] = r->frozen_s;
			span[k] = r->ph_t1[LOW2] - r->ph_t0[LOW1];
		}
		bench_report_note(rep, row, "batch_frozen",
				  "%.1f s of the %.1f s of the phases (medians)",
				  bench_median(w, (size_t)runs),
				  bench_median(span, (size_t)runs));
	}
	for (int k = 0; k < runs; k++) {
		const struct run *r = &s_runs[ELASTIC][k];

		/* A core kv already held at the step is no reaction to it. */
		up[k] = kv_cores_at(r, r->ph_t0[HIGH]) == 1 ?
			first_move_after(r, r->ph_t0[HIGH], true) : NAN;
		down[k] = first_move_after(r, r->ph_t0[LOW2], false);
	}
	n = finite_only(up, (size_t)runs, w);
	row = n ? bench_report_row(rep, "load step up to core move", "ms",
				   BENCH_LOWER, w, n, NULL, 0, NULL) : -1;
	if (row >= 0)
		bench_report_note(rep, row, "runs", "%zu of %d runs moved a "
				  "core in the high phase, from one core at "
				  "its start", n, runs);
	n = finite_only(down, (size_t)runs, w);
	row = n ? bench_report_row(rep, "load step down to core back", "ms",
				   BENCH_LOWER, w, n, NULL, 0, NULL) : -1;
	if (row >= 0)
		bench_report_note(rep, row, "runs", "%zu of %d runs gave the "
				  "core back in the last low phase", n, runs);
	for (int k = 0; k < runs; k++) {
		v[ELASTIC][k] = s_runs[STATIC][k].capacity2;
		v[STATIC][k] = s_runs[STATIC][k].capacity;
	}
	bench_report_row(rep, "kv capacity with the batch core too", "req/s",
			 BENCH_HIGHER, v[ELASTIC], (size_t)runs, v[STATIC],
			 (size_t)runs, "kv on its one core");
}

/* What the borrowed core is worth to kv: both cores' capacity against
 * one core's, and, when it is a loss, why. */
static void worth_text(struct bench_report *rep, double both, double one)
{
	if (both >= 0.9 * one) {
		bench_report_text(rep,
			"What the borrowed core is worth here: atoll-kv holding "
			"both cores sustained %.0f req/s (median), %.0f%% of "
			"what it sustains on its one core (%.0f).",
			both, 100 * both / one, one);
		return;
	}
	bench_report_text(rep,
		"What the borrowed core is worth here: atoll-kv holding both "
		"cores sustained %.0f req/s (median), against %.0f on its one "
		"core. Its second vcore, with its shard, lands on the "
		"generator's cpu, where the SCHED_FIFO generator runs ahead "
		"of it whenever it has work (it sleeps for replies, so the "
		"vcore gets the rest, not nothing): the requests for that "
		"shard wait for that rest, and the whole service slows to "
		"what that vcore gets. So on this "
		"machine a core the controller lends to kv costs it "
		"throughput instead of adding some, whatever the thresholds: "
		"the experiment shows the controller's reactions and the "
		"batch work they cost, not a tail-latency gain, which needs a "
		"core for the generator apart from the two the cells share.",
		both, one);
}

static void method_text(struct bench_report *rep, int runs)
{
	double one[RUNS_MAX], both[RUNS_MAX];

	for (int k = 0; k < runs; k++) {
		one[k] = s_runs[STATIC][k].capacity;
		both[k] = s_runs[STATIC][k].capacity2;
	}
	bench_report_text(rep,
		"Method: a private atolld manages cpus %d and %d. Cell kv (LL, "
		"cpu %d, priority %d) runs atoll-kv as an MCP with %s vcores; "
		"cell batch (CG, cpu %d, priority 0, min_cores 0) runs the "
		"batch job, %dx%d matrix products counted in a file (the "
		"units of the batch rows). bench/loadgen "
		"(open loop, Poisson, %d connections, %d keys, 90%% gets, "
		"latency from the scheduled send) runs at SCHED_FIFO %d on cpu "
		"%d, outside the cells, with --spin-us 0 --poll-max 5 (it "
		"sleeps between arrivals, and for replies but for 5%% of its "
		"cpu time, so that a vcore of kv on its cpu can run). "
		"atoll-kv alone on "
		"its core, overloaded, sustained %.0f req/s (first run); the "
		"phases offer %.0f, %.0f and %.0f req/s (%.0f%%, %.0f%%, "
		"%.0f%%), %.0f s each, each a step of one loadgen run (its "
		"connections open throughout, after a warm-up step at the low "
		"rate), measured whole; the batch work starts with the first "
		"phase. Elastic: "
		"kv's latency target is p99 in [%d us, %d us] over %d ms "
		"windows, set where atoll-kv's own p99 (inside the server, per "
		"request batch) sat at the low and the high rate on a quiet "
		"run of this machine (about 60-100 and 90-150 us: with "
		"one request per connection in flight, queueing happens mostly "
		"outside the server, which this figure does not see); static: "
		"no target. %d runs per setup, the order alternating; rows are "
		"medians. cell.top was sampled every %d ms. The header's "
		"\"other load\" counts this benchmark's own children (atolld, "
		"atoll-kv, the batch job, loadgen) as other processes.",
		g.cpu_a, g.cpu_b, g.cpu_b, KV_PRIORITY, KV_VCORES, g.cpu_a,
		WORK_N, WORK_N, CONNS, KEYS, FIFO_PRIO, g.cpu_a,
		s_runs[ELASTIC][0].capacity,
		g.rate[LOW1], g.rate[HIGH], g.rate[LOW2],
		100 * LOW_SHARE, 100 * HIGH_SHARE, 100 * LOW_SHARE,
		g.phase_s, LT_US, UT_US, WINDOW_MS, runs, SAMPLE_MS);
	bench_report_text(rep,
		"How this differs from RainForest 6.3.2: there, Search and a "
		"PARSEC batch job each had an OS instance of a 12-core server, "
		"clients came from other machines, (lt, ut) = (160, 200) ms "
		"over 10 s windows, and cores moved one at a time among many. "
		"Here the machine has 2 cores: kv's own core and the batch's "
		"one, so the only core the controller can move is the batch's "
		"last, and the batch cell is frozen (cgroup freezer) while it "
		"holds none, where RainForest's PARSEC instance kept running "
		"on fewer cores. The load generator shares the batch's cpu at "
		"SCHED_FIFO, so the core kv borrows is the generator's too: "
		"the borrowed vcore runs only when the generator waits, and "
		"the kernel stops a real-time task that keeps its cpu busy "
		"for up to 50 ms a second when ordinary tasks wait there. The "
		"controller steers by the latency atoll-kv measures inside "
		"the server (per request batch), while the rows give the "
		"client's latency from the scheduled send.");
	worth_text(rep, bench_median(both, (size_t)runs),
		   bench_median(one, (size_t)runs));
}

/* Per run and setup: capacity, phases and moves, for the .md. */
static void details_text(struct bench_report *rep, int runs)
{
	for (int k = 0; k < runs; k++)
		for (int su = 0; su < NSETUPS; su++) {
			const struct run *r = &s_runs[su][k];
			char moves[512] = "";
			size_t len = 0;

			for (int i = 0; i < r->nmoves && len < sizeof(moves) - 40;
			     i++)
				len += (size_t)snprintf(moves + len,
					sizeof(moves) - len, "%s%s cpu %d at %.2f s",
					i ? ", " : "",
					r->moves[i].grow ? "to kv" : "back to batch",
					r->moves[i].cpu, r->moves[i].t);
			bench_report_text(rep,
				"Run %d, %s: capacity %.0f req/s; p99 %.0f / "
				"%.0f / %.0f us, achieved %.0f / %.0f / %.0f "
				"req/s, generator-late sends %.0f / %.0f / %.0f "
				"(low, high, low); batch %.0f units, %.1f s "
				"of CPU, frozen %.1f s%s; moves: %s.",
				k + 1, setup_name[su], r->capacity,
				r->ph[LOW1].p99_us, r->ph[HIGH].p99_us,
				r->ph[LOW2].p99_us, r->ph[LOW1].achieved,
				r->ph[HIGH].achieved, r->ph[LOW2].achieved,
				r->ph[LOW1].late_gen, r->ph[HIGH].late_gen,
				r->ph[LOW2].late_gen, r->batch_units,
				r->batch_cpu_s, r->frozen_s,
				r->frozen_at_end ? " (still frozen after the "
				"last phase)" : "",
				r->nmoves ? moves : "none");
		}
}

/* ---- the plot ----------------------------------------------------------------- */

static void series_json(struct json_w *w, const struct run *r)
{
	jw_obj(w);
	jw_key(w, "phases");
	jw_arr(w);
	for (int p = 0; p < NPHASES; p++) {
		jw_arr(w);
		jw_str(w, phase_name[p]);
		jw_double(w, r->ph_t0[p]);
		jw_double(w, r->ph_t1[p]);
		jw_double(w, r->ph[p].p99_us);
		jw_arr_end(w);
	}
	jw_arr_end(w);
	jw_key(w, "windows");
	jw_arr(w);
	for (int i = 0; i < r->nwindows; i++) {
		jw_arr(w);
		jw_double(w, r->windows[i].t);
		jw_double(w, r->windows[i].tail_us);
		jw_arr_end(w);
	}
	jw_arr_end(w);
	jw_key(w, "samples");
	jw_arr(w);
	for (int i = 0; i < r->nsamples; i++) {
		const struct sample *s = &r->samples[i];

		jw_arr(w);
		jw_double(w, s->t);
		jw_int(w, s->kv_cores);
		jw_int(w, s->batch_cores);
		jw_bool(w, s->batch_frozen);
		jw_double(w, s->kv_cpu_s);
		jw_double(w, s->batch_cpu_s);
		jw_arr_end(w);
	}
	jw_arr_end(w);
	jw_obj_end(w);
}

static const char plot_py[] =
"import json, sys\n"
"import matplotlib\n"
"matplotlib.use('Agg')\n"
"import matplotlib.pyplot as plt\n"
"d = json.load(open(sys.argv[1]))\n"
"fig, ax = plt.subplots(3, 1, figsize=(10, 9), sharex=True)\n"
"colors = {'elastic': 'tab:blue', 'static': 'tab:orange'}\n"
"for name, s in d['setups'].items():\n"
"    c = colors[name]\n"
"    w = s['windows']\n"
"    ax[0].plot([x[0] for x in w], [x[1] for x in w], '.-', color=c, lw=1,\n"
"               ms=3, label=name + ': kv p99 per controller window (in server)')\n"
"    for p in s['phases']:\n"
"        if p[3] is not None:\n"
"            ax[0].hlines(p[3], p[1], p[2], colors=c, linestyles='dashed', lw=2)\n"
"    sm = s['samples']\n"
"    t = [x[0] for x in sm]\n"
"    ax[1].step(t, [x[1] for x in sm], where='post', color=c, label=name + ': kv cores')\n"
"    ax[1].step(t, [x[2] for x in sm], where='post', color=c, ls=':',\n"
"               label=name + ': batch cores')\n"
"    rate = [(sm[i + 1][5] - sm[i][5]) / (sm[i + 1][0] - sm[i][0])\n"
"            for i in range(len(sm) - 1) if sm[i + 1][0] > sm[i][0]]\n"
"    ax[2].plot([x[0] for x in sm[1:len(rate) + 1]], rate, color=c,\n"
"               label=name + ': batch CPU use')\n"
"for name, s in d['setups'].items():\n"
"    p = s['phases'][1]\n"
"    for a in ax:\n"
"        a.axvspan(p[1], p[2], color=colors[name], alpha=0.1, lw=0)\n"
"ax[0].axhline(d['lt_us'], color='green', lw=0.8, ls=':', label='lt')\n"
"ax[0].axhline(d['ut_us'], color='red', lw=0.8, ls=':', label='ut')\n"
"ax[0].set_yscale('log')\n"
"ax[0].set_ylabel('latency (us)')\n"
"ax[0].set_title(d['title'] + '\\n(dashed: client p99 per phase; shaded: each setup\\'s high phase)')\n"
"ax[1].set_ylabel('cores held')\n"
"ax[1].set_ylim(-0.2, 2.4)\n"
"ax[2].set_ylabel('batch CPU (cores)')\n"
"ax[2].set_xlabel('time since the first phase began (s)')\n"
"for a in ax:\n"
"    a.legend(fontsize=7, loc='upper right')\n"
"    a.grid(alpha=0.3)\n"
"fig.tight_layout()\n"
"fig.savefig(sys.argv[2], dpi=100)\n";

/* Write run 1 of both setups as JSON and plot it with matplotlib into
 * $BENCH_OUT/elastic.png. Returns 0, or -1 after saying why not. */
static int plot(void)
{
	const char *out = getenv("BENCH_OUT");
	char data[128], png[PATH_MAX], title[256];
	struct json_w w;
	FILE *f;
	int st;
	pid_t pid;

	if (!out || !*out)
		out = "bench/results";
	snprintf(png, sizeof(png), "%s/elastic.png", out);
	snprintf(data, sizeof(data), "%s/series.json", g.dir);
	snprintf(title, sizeof(title),
		 "atoll-kv load low / high / low (%.0f / %.0f / %.0f req/s): "
		 "elastic vs static split, run 1",
		 g.rate[LOW1], g.rate[HIGH], g.rate[LOW2]);
	jw_init(&w);
	jw_obj(&w);
	jw_kstr(&w, "title", title);
	jw_kint(&w, "lt_us", LT_US);
	jw_kint(&w, "ut_us", UT_US);
	jw_key(&w, "setups");
	jw_obj(&w);
	for (int su = 0; su < NSETUPS; su++) {
		jw_key(&w, setup_name[su]);
		series_json(&w, &s_runs[su][0]);
	}
	jw_obj_end(&w);
	jw_obj_end(&w);
	f = w.oom ? NULL : fopen(data, "we");
	if (f) {
		fputs(w.buf, f);
		fclose(f);
	}
	jw_free(&w);
	if (!f || access(PYTHON, X_OK)) {
		fprintf(stderr, "bench: no plot: %s\n",
			f ? PYTHON " is missing" : "cannot write the series");
		return -1;
	}
	mkdir(out, 0777);
	pid = fork();
	if (pid == 0) {
		execl(PYTHON, PYTHON, "-c", plot_py, data, png, (char *)NULL);
		_exit(127);
	}
	if (pid < 0 || waitpid(pid, &st, 0) != pid || !WIFEXITED(st) ||
	    WEXITSTATUS(st)) {
		fprintf(stderr, "bench: no plot: %s failed (python3-matplotlib "
			"missing?)\n", PYTHON);
		return -1;
	}
	printf("wrote %s\n", png);
	return 0;
}

/* ---- cleanup ------------------------------------------------------------------ */

/* At exit (sig 0) and on a fatal signal. */
static void cleanup(int sig)
{
	(void)sig;
	stop(&g.lg_pid, SIGKILL, 1000);
	if (g.atolld_pid > 0) {
		cells_destroy();
		stop(&g.atolld_pid, SIGTERM, 3000);
	}
	stop(&g.kv_pid, SIGKILL, 1000);
	stop(&g.batch_pid, SIGKILL, 1000);
	if (g.fd >= 0)
		close(g.fd);
	g.fd = -1;
	for (int i = 0; i < g.nroots; i++)
		bproc_purge_cgroup(g.roots[i]);
	g.nroots = 0;
	if (g.dir[0])
		bproc_rm_tree(g.dir);
	g.dir[0] = '\0';
}

/* ---- main ----------------------------------------------------------------------- */

static void check_environment(void)
{
	if (geteuid() != 0)
		bench_skip("elastic needs root (cgroups, the freezer, SCHED_FIFO)");
	if (bench_two_cpus(&g.cpu_a, &g.cpu_b))
		bench_skip("elastic needs two cpus in the affinity mask");
	g.atolld = bproc_find("ATOLL_ATOLLD", ATOLL_ATOLLD_PATH);
	g.atoll = bproc_find("ATOLL_CLI", ATOLL_CLI_PATH);
	g.kv = bproc_find("ATOLL_KV", ATOLL_KV_PATH);
	g.loadgen = bproc_find("LOADGEN", LOADGEN_PATH);
	if (!g.atolld || !g.atoll || !g.kv || !g.loadgen)
		bench_die("a program is missing: atolld %s, atoll %s, atoll-kv "
			  "%s, loadgen %s (build them, or name them with "
			  "ATOLL_ATOLLD, ATOLL_CLI, ATOLL_KV, LOADGEN).",
			  g.atolld ? "ok" : "missing", g.atoll ? "ok" : "missing",
			  g.kv ? "ok" : "missing",
			  g.loadgen ? "ok" : "missing");
	if (readlink("/proc/self/exe", g.self, sizeof(g.self) - 1) <= 0)
		bench_die("cannot find this program: %s.", strerror(errno));
}

int main(int argc, char **argv)
{
	struct bench_report *rep;
	int runs;
	const char *env = getenv("BENCH_RUNS");
	char runs_s[16];

	if (argc == 4 && !strcmp(argv[1], BATCH_WORKER))
		return batch_worker(argv[2], argv[3]);
	check_environment();
	runs = env && atoi(env) > 0 ? atoi(env) : bench_quick() ? 1 : 3;
	if (runs > RUNS_MAX)
		runs = RUNS_MAX;
	/* The report's header gives bench_runs(): make it ours. */
	snprintf(runs_s, sizeof(runs_s), "%d", runs);
	setenv("BENCH_RUNS", runs_s, 1);
	g.phase_s = bench_pick(10, 1);
	g.capacity_s = bench_pick(2, 0.5);
	g.recover_ms = (int)bench_pick(2000, 500);
	snprintf(g.dir, sizeof(g.dir), "/tmp/atoll-elastic.XXXXXX");
	if (!mkdtemp(g.dir)) {
		g.dir[0] = '\0';
		bench_die("cannot create a temporary directory: %s.",
			  strerror(errno));
	}
	snprintf(g.sock, sizeof(g.sock), "%s/sock", g.dir);
	snprintf(g.state, sizeof(g.state), "%s/state", g.dir);
	snprintf(g.name, sizeof(g.name), "elastic%d", (int)getpid());
	bproc_cleanup_on(cleanup, (const int[]){ SIGINT, SIGTERM, SIGALRM },
			 3);
	alarm((unsigned)(runs * NSETUPS * (3 * g.phase_s + 60) + 60));
	rep = bench_report_open("elastic");
	if (!rep)
		return 1;
	atolld_start();
	for (int k = 0; k < runs; k++)
		for (int i = 0; i < NSETUPS; i++) {
			enum setup su = (enum setup)((i + k) % NSETUPS);

			fprintf(stderr, "run %d/%d: %s\n", k + 1, runs,
				setup_name[su]);
			run_setup(su, &s_runs[su][k], k == 0 && i == 0);
		}
	add_rows(rep, runs);
	method_text(rep, runs);
	details_text(rep, runs);
	if (!plot())
		bench_report_text(rep, "![p99 and cores over time](elastic.png)");
	return bench_report_close(rep) ? 1 : 0;
}
