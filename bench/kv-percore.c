/* kv-percore.c - `make bench B=kv-percore`: per-core efficiency of
 * atoll-kv with one vcore against stock `memcached -t 1`, same load, same
 * machine, same run (issue 6).
 *
 * Setup. Both servers run at once for a whole run, pinned to the second
 * cpu of the affinity mask (cpu 1 on this 2-cpu machine); the one not
 * being measured is stopped (SIGSTOP), so it takes no cpu time from the
 * other, and resumed (SIGCONT) for its own steps. bench/loadgen drives
 * them, one invocation per step, pinned to the first cpu at SCHED_FIFO
 * (when allowed) so other processes cannot delay its sends; this program
 * waits on the same cpu.
 *
 * Load (every step, both servers): open loop, Poisson arrivals, NCONN
 * connections with up to DEPTH requests pipelined on each, in batches
 * (loadgen --depth: requests fill one connection, then the next; a
 * request that finds them all full waits in the generator, its latency
 * counted from its scheduled time), KEYS keys of KEY_LEN bytes with
 * Zipf(0.99) popularity, 90% gets, VALUE-byte values, every key set once
 * per run before the first step (so gets hit). Why batches: a system
 * call costs over a microsecond in this VM, and a generator making one
 * send and one receive per request tops out near 130k requests/s on one
 * core, about what memcached -t 1 serves: it would measure itself.
 *
 * Sweep. Per run the offered rate climbs a fixed grid (25k apart; 20k
 * quick); at each rate both servers take one step, the order
 * alternating, so drift hits both. A step passes when its typical p99
 * (below) is <= 500 us with at most 1% of its requests unanswered; a
 * failed step is tried once more (a time slice another job took can fail
 * one), and a step in which the generator itself fell behind (over 1% of
 * its sends late through its own fault, or over 10% of the time waiting
 * for its cpu) is repeated up to twice (no repeats when quick). A server
 * leaves the grid after two failing rates in a row. Then bisection steps
 * per server between its last passing and first failing rate; the
 * highest passing rate is the run's "max rate under p99 500us". Rows are
 * medians over runs; the curves (p50/p99/p99.9 against offered load) are
 * medians per grid rate over the runs that reached it.
 *
 * The generator's own ceiling: its busy share at memcached's max rate
 * (achieved / busy estimates what it could drive), and a push against
 * memcached alone, rate after rate, until one step is not kept, saying
 * whether the generator or memcached was the busier then.
 *
 * Typical percentiles (as bench/echo.c): this 2-cpu machine is shared,
 * and other jobs' time slices stall a server or the generator for
 * milliseconds now and then; a plain p99 then measures the neighbours.
 * loadgen cuts each window into 10 ms slices by scheduled time and
 * reports the median over slices of each slice's own percentile
 * (unanswered requests as infinitely slow), so a stall spoils a slice,
 * not the figure. The plain percentiles are reported beside them.
 *
 * Cross-check: memcaslap (libmemcached's closed-loop load tool, nobody
 * here wrote it), -T 1 -c 16, 90% get, pinned to the first cpu, against
 * each server in every run.
 *
 * Paths: LOADGEN, ATOLL_KV, MEMCACHED, MEMCASLAP, LOADGEN_PLOT override
 * the built-in ones. ATOLL_KV=/usr/bin/memcached runs memcached against
 * itself (a check of the method: the ratio should be 1). Skips (exit 77)
 * when atoll-kv, memcached or loadgen is missing or fewer than two cpus
 * are allowed.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <math.h>
#include <sched.h>
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

#include "benchlib.h"
#include "benchproc.h"
#include "json.h"

#define MAX_RUNS 16
#define MAX_GRID 40
#define SLO_US 500.0
#define NCONN 32
#define DEPTH 8			/* requests pipelined per connection */
#define KEY_LEN 16
#define VALUE 64
#define ZIPF "0.99"
#define GET_RATIO "0.9"
#define FIFO_PRIO 50
/* A step is void when the generator sent more than this share of its
 * requests late through its own fault, or waited for its cpu more than
 * this share of the time. Not lower: even a real-time generator loses
 * its cpu 50 ms a second whenever ordinary tasks wait there (the
 * kernel's fair server reserves them 5%), and on this shared machine
 * they always do; the typical percentiles are immune to such stalls. */
#define GEN_LATE_MAX 0.10
#define GEN_PREEMPT_MAX 0.10
#define SERVER_MEM_MB 1024
#define GEN_RATE0 50000.0	/* generator push: steps of this */
#define GEN_RATE_MAX 600000.0

enum { OURS, PEER, NSRV };

struct server {
	const char *label;	/* for tables: "atoll-kv", "memcached -t 1" */
	const char *path;
	bool memcached;		/* speaks memcached's flags (-U, -u) */
	pid_t pid;
	uint16_t port;
	char log[96];
};

/* One loadgen step, as its JSON tells. */
struct step {
	bool ran;
	double offered, achieved;
	double p50, p99, p999;	/* us; INFINITY: among the unanswered */
	double tp50, tp99, tp999; /* typical: medians over 10 ms slices */
	uint64_t scheduled, unanswered, errors, misses;
	uint64_t late, gen_late;
	double busy;		/* loadgen's busiest thread */
	double preempted;	/* its share of time waiting for its cpu */
	double srv_ns_per_req;	/* server cpu time per request sent */
	double srv_busy;	/* server cpu time / the invocation's time */
};

static struct {
	const char *loadgen, *memcaslap, *plot;
	struct server srv[NSRV];
	int gen_cpu, srv_cpu;
	bool fifo;
	char tmp[64];		/* private temporary directory */
	double warmup_s, window_s, grace_s;
	int retries;		/* of a failed step; 0 in quick mode */
	uint64_t keys;
	int grid_n, bisect;
	double grid_step;
	int caslap_s;
	unsigned seed;
	int steps_run, steps_retried;
} g;

/* Per server, grid rate and run. */
static struct step grid[NSRV][MAX_GRID][MAX_RUNS];

/* ---- processes -------------------------------------------------------- */

/* fork + exec argv on `cpu`, at SCHED_FIFO priority fifo (0: the normal
 * policy), stdout and stderr to out (NULL: /dev/null), truncated. The
 * child dies with us. */
static pid_t spawn(const char *const argv[], int cpu, int fifo,
		   const char *out)
{
	cpu_set_t set;
	/* exec's prototype predates const; it does not write. */
	struct bproc_spawn sp = { .argv = (char *const *)argv, .log = out,
				  .log_trunc = true, .cpus = &set,
				  .fifo = fifo };

	CPU_ZERO(&set);
	CPU_SET(cpu, &set);
	return bproc_spawn(&sp);
}

/* An argument vector built up: each argument formatted into one buffer. */
struct args {
	const char *v[48];
	int n;
	size_t used;
	char buf[1024];
};

static void arg(struct args *a, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
static void arg(struct args *a, const char *fmt, ...)
{
	size_t room = sizeof(a->buf) - a->used;
	va_list ap;
	int len;

	va_start(ap, fmt);
	len = vsnprintf(a->buf + a->used, room, fmt, ap);
	va_end(ap);
	if (len < 0 || (size_t)len >= room || a->n + 1 >= (int)ARRAY_SIZE(a->v))
		bench_die("a command line grew too long.");
	a->v[a->n++] = a->buf + a->used;
	a->v[a->n] = NULL;
	a->used += (size_t)len + 1;
}

/* ---- servers ---------------------------------------------------------- */


static void server_start(struct server *s)
{
	struct args a = { .n = 0 };

	int r = bproc_free_port();

	if (r < 0)
		bench_die("cannot find a free port: %s.", strerror(-r));
	s->port = (uint16_t)r;
	arg(&a, "%s", s->path);
	arg(&a, "-p");
	arg(&a, "%u", s->port);
	arg(&a, "-l");
	arg(&a, "127.0.0.1");
	arg(&a, "-t");
	arg(&a, "1");
	arg(&a, "-m");
	arg(&a, "%d", SERVER_MEM_MB);
	arg(&a, "-c");
	arg(&a, "4096");
	if (s->memcached) {
		arg(&a, "-U");		/* no UDP */
		arg(&a, "0");
		if (geteuid() == 0) {	/* memcached refuses root without */
			arg(&a, "-u");
			arg(&a, "root");
		}
	}
	s->pid = spawn(a.v, g.srv_cpu, 0, s->log);
	r = bproc_wait_port(s->port, s->pid, 5);
	if (!r)
		return;
	if (r == -ECHILD) {
		s->pid = 0;
		bproc_show_log(s->log);
		bench_die("%s (%s) exited at start.", s->label, s->path);
	}
	bproc_show_log(s->log);
	bench_die("%s (%s) is not listening on port %u after 5 s.", s->label,
		  s->path, s->port);
}

static void server_stop(struct server *s)
{
	if (s->pid <= 0)
		return;
	kill(s->pid, SIGCONT);
	bproc_stop(&s->pid, SIGTERM, 2, -1);
}

/* Only the server measured may run. */
static void server_focus(int k)
{
	if (g.srv[!k].pid > 0)	/* never 0: that would stop our group */
		kill(g.srv[!k].pid, SIGSTOP);
	kill(g.srv[k].pid, SIGCONT);
}

/* utime + stime of pid, in ns; 0 when unknown. */
static uint64_t proc_cpu_ns(pid_t pid)
{
	char path[64], buf[1024], *p;
	unsigned long long ut, st;
	long hz = sysconf(_SC_CLK_TCK);
	FILE *f;
	size_t n;

	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	f = fopen(path, "re");
	if (!f)
		return 0;
	n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = '\0';
	p = strrchr(buf, ')');	/* the command may hold spaces */
	if (!p || hz <= 0 ||
	    sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu "
		   "%llu", &ut, &st) != 2)
		return 0;
	return (ut + st) * (1000000000ull / (unsigned long long)hz);
}

/* At exit (sig 0) and on a fatal signal. */
static void cleanup(int sig)
{
	char path[128];

	(void)sig;
	for (int k = 0; k < NSRV; k++)
		server_stop(&g.srv[k]);
	if (!g.tmp[0])
		return;
	for (int k = 0; k < NSRV; k++)
		unlink(g.srv[k].log);
	snprintf(path, sizeof(path), "%s/step.json", g.tmp);
	unlink(path);
	snprintf(path, sizeof(path), "%s/step.log", g.tmp);
	unlink(path);
	snprintf(path, sizeof(path), "%s/caslap.log", g.tmp);
	unlink(path);
	snprintf(path, sizeof(path), "%s/curves.json", g.tmp);
	unlink(path);
	rmdir(g.tmp);
}

/* ---- loadgen ---------------------------------------------------------- */

static double jnum(const struct json *o, const char *key)
{
	const struct json *v = json_get(o, key);

	if (v && v->type == JSON_NUM)
		return v->d;
	return INFINITY;	/* null: a percentile among the unanswered */
}

static uint64_t jcount(const struct json *o, const char *key)
{
	const struct json *v = json_get(o, key);

	if (!v || v->type != JSON_NUM || !v->is_int || v->i < 0)
		bench_die("loadgen's JSON has no count '%s'.", key);
	return (uint64_t)v->i;
}

static struct step parse_step(const char *path)
{
	const struct json *steps, *s;
	struct json_doc *doc;
	struct step st = { .ran = true };
	char err[200];
	size_t len = 0;
	char *text = bench_read_file(path, &len);

	if (!text)
		bench_die("cannot read loadgen's results %s.", path);
	doc = json_parse(text, len, err, sizeof(err));
	free(text);
	if (!doc)
		bench_die("loadgen's results are not JSON: %s.", err);
	steps = json_get(json_root(doc), "steps");
	if (!steps || steps->type != JSON_ARR || steps->len != 1)
		bench_die("loadgen's results hold no step.");
	s = steps->kids[0];
	st.offered = jnum(s, "offered");
	st.achieved = jnum(s, "achieved");
	st.p50 = jnum(s, "p50_us");
	st.p99 = jnum(s, "p99_us");
	st.p999 = jnum(s, "p999_us");
	st.tp50 = jnum(s, "typ_p50_us");
	st.tp99 = jnum(s, "typ_p99_us");
	st.tp999 = jnum(s, "typ_p999_us");
	st.busy = jnum(s, "busy_frac");
	st.preempted = jnum(s, "preempted_frac");	/* null: unknown */
	if (!isfinite(st.preempted))
		st.preempted = 0;
	st.scheduled = jcount(s, "scheduled");
	st.unanswered = jcount(s, "unanswered");
	st.errors = jcount(s, "errors") + jcount(s, "not_stored");
	st.misses = jcount(s, "misses");
	st.late = jcount(s, "late_sends");
	st.gen_late = st.late - jcount(s, "late_waited_for_conn");
	json_free(doc);
	return st;
}

/* One loadgen invocation against server k at `rate`, `depth` requests per
 * connection; with preload it sets every key first (the run's first
 * contact with the server) and measures only a token step. */
static struct step loadgen_run(int k, double rate, bool preload, int depth)
{
	struct server *s = &g.srv[k];
	struct args a = { .n = 0 };
	char json[96], log[96];
	uint64_t cpu0, cpu1, t0;
	struct step st;
	int rc;

	snprintf(json, sizeof(json), "%s/step.json", g.tmp);
	snprintf(log, sizeof(log), "%s/step.log", g.tmp);
	arg(&a, "%s", g.loadgen);
	arg(&a, "-q");
	arg(&a, "--server=127.0.0.1:%u", s->port);
	arg(&a, "--rate=%.0f", rate);
	arg(&a, "--duration=%.3f", preload ? 0.05 : g.window_s);
	arg(&a, "--warmup=%.3f", preload ? 0 : g.warmup_s);
	arg(&a, "--grace=%.3f", g.grace_s);
	arg(&a, "--conns=%d", NCONN);
	arg(&a, "--depth=%d", depth);
	arg(&a, "--keys=%" PRIu64, g.keys);
	arg(&a, "--key-len=%d", KEY_LEN);
	arg(&a, "--zipf=%s", ZIPF);
	arg(&a, "--get-ratio=%s", GET_RATIO);
	arg(&a, "--value-size=%d", VALUE);
	arg(&a, "--cpus=%d", g.gen_cpu);
	arg(&a, "--seed=%u", g.seed++);
	arg(&a, "--json=%s", json);
	if (!preload)
		arg(&a, "--no-preload");
	if (g.fifo)
		arg(&a, "--fifo=%d", FIFO_PRIO);
	server_focus(k);
	cpu0 = proc_cpu_ns(s->pid);
	t0 = bproc_now_ns();
	rc = bproc_reap(spawn(a.v, g.gen_cpu, 0, log));
	cpu1 = proc_cpu_ns(s->pid);
	t0 = bproc_now_ns() - t0;
	if (rc) {
		bproc_show_log(log);
		bench_die("loadgen against %s at %.0f req/s failed (exit %d).",
			  s->label, rate, rc);
	}
	st = parse_step(json);
	/* Every request sent in the invocation, warm-up included. */
	st.srv_ns_per_req = (double)(cpu1 - cpu0) /
			    (rate * (g.warmup_s + g.window_s));
	st.srv_busy = (double)(cpu1 - cpu0) / (double)t0;
	g.steps_run++;
	return st;
}

static struct step loadgen_step(int k, double rate, bool preload)
{
	return loadgen_run(k, rate, preload, DEPTH);
}

/* The bound, on the typical p99 (see the top note), with at most 1% of
 * the window's requests unanswered. */
static bool step_ok(const struct step *st)
{
	return st->tp99 <= SLO_US && st->unanswered * 100 <= st->scheduled;
}

/* The bound on the plain p99 of the whole window. */
static bool step_ok_plain(const struct step *st)
{
	return st->p99 <= SLO_US;
}

/* The generator kept its schedule and its cpu (while it waits for the
 * cpu, replies sit unread and latencies grow for reasons not the
 * server's); see GEN_LATE_MAX. */
static bool gen_ok(const struct step *st)
{
	return (double)st->gen_late <= GEN_LATE_MAX * (double)st->scheduled &&
	       st->preempted <= GEN_PREEMPT_MAX;
}

/* A step, repeated when the generator fell behind (up to twice) and
 * retried once when it fails the bound. */
static struct step measured_step(int k, double rate)
{
	struct step st = loadgen_step(k, rate, false);

	for (int i = 0; i < 2 * g.retries && !gen_ok(&st); i++) {
		g.steps_retried++;
		st = loadgen_step(k, rate, false);
	}
	if (!step_ok(&st) && g.retries) {
		g.steps_retried++;
		st = loadgen_step(k, rate, false);
	}
	if (getenv("KV_PERCORE_TRACE"))
		fprintf(stderr, "  %-14s %7.0f/s achieved %7.0f typical "
			"p50/p99/p99.9 %.1f/%.1f/%.1f plain p99 %.1f us late "
			"%" PRIu64 " (gen %" PRIu64 ") busy %.0f%% preempted "
			"%.0f%% srv %.0f ns/req %s\n", g.srv[k].label, rate,
			st.achieved, st.tp50, st.tp99, st.tp999, st.p99,
			st.late, st.gen_late, 100 * st.busy,
			100 * st.preempted, st.srv_ns_per_req,
			step_ok(&st) ? "ok" : "FAIL");
	return st;
}

/* ---- one run ---------------------------------------------------------- */

static double grid_rate(int i)
{
	return g.grid_step * (i + 1);
}

/* Sweep the grid, then bisect; cap[k] gets each server's highest
 * passing rate (0: none). */
static void sweep(int run, double cap[NSRV])
{
	int fails[NSRV] = { 0, 0 }, first_fail[NSRV] = { -1, -1 };

	cap[OURS] = cap[PEER] = 0;
	for (int i = 0; i < g.grid_n; i++) {
		if (fails[OURS] >= 2 && fails[PEER] >= 2)
			break;
		for (int j = 0; j < NSRV; j++) {
			int k = (run + i + j) % 2;
			struct step st;

			if (fails[k] >= 2)
				continue;
			st = measured_step(k, grid_rate(i));
			grid[k][i][run] = st;
			if (step_ok(&st)) {
				fails[k] = 0;
				if (first_fail[k] < 0)
					cap[k] = grid_rate(i);
			} else {
				fails[k]++;
				if (first_fail[k] < 0)
					first_fail[k] = i;
			}
		}
	}
	/* Bisect between the last pass below the first failure and it. */
	for (int b = 0; b < g.bisect; b++) {
		static double lo[NSRV], hi[NSRV];

		for (int j = 0; j < NSRV; j++) {
			int k = (run + b + j) % 2;
			double mid;
			struct step st;

			if (first_fail[k] < 0)
				continue;
			if (b == 0) {
				lo[k] = cap[k];
				hi[k] = grid_rate(first_fail[k]);
			}
			mid = (lo[k] + hi[k]) / 2;
			st = measured_step(k, mid);
			if (step_ok(&st))
				lo[k] = mid;
			else
				hi[k] = mid;
			cap[k] = lo[k];
		}
	}
}

/* Server k's highest grid rate in run r whose plain p99 met the bound,
 * below the first that did not. */
static double plain_cap(int k, int r)
{
	double cap = 0;

	for (int i = 0; i < g.grid_n && grid[k][i][r].ran; i++) {
		if (!step_ok_plain(&grid[k][i][r]))
			break;
		cap = grid_rate(i);
	}
	return cap;
}

/* memcaslap's TPS against server k; 0 if it could not be read. */
static double memcaslap(int k)
{
	char server[32], t[16], log[96], line[256];
	const char *argv[] = { g.memcaslap, "-s", server, "-T", "1", "-c",
			 "16", "-t", t, NULL };
	double tps = 0;
	FILE *f;
	int rc;

	snprintf(server, sizeof(server), "127.0.0.1:%u", g.srv[k].port);
	snprintf(t, sizeof(t), "%ds", g.caslap_s);
	snprintf(log, sizeof(log), "%s/caslap.log", g.tmp);
	server_focus(k);
	/* Normal priority: memcaslap's threads spin, and at SCHED_FIFO on
	 * one cpu its timer thread never ran, so it never stopped. */
	rc = bproc_reap_within(spawn(argv, g.gen_cpu, 0, log),
			       g.caslap_s + 30);
	f = fopen(log, "re");
	while (f && fgets(line, sizeof(line), f)) {
		const char *p = strstr(line, "TPS: ");

		if (p && !strncmp(line, "Run time:", 9))
			tps = atof(p + 5);
	}
	if (f)
		fclose(f);
	if (rc || tps <= 0) {
		bproc_show_log(log);
		fprintf(stderr, "bench: memcaslap against %s gave no figure "
			"(exit %d).\n", g.srv[k].label, rc);
	}
	return tps;
}

/* ---- curves and plot -------------------------------------------------- */

struct curve_pt {
	double rate;
	double p50, p99, p999;	/* typical; medians over the runs */
	double plain99;		/* plain p99, median over the runs */
	int n;
};

/* Medians per grid rate of server k, for the rates at least half the
 * runs reached. Returns how many points. */
static int curve(int k, int runs, struct curve_pt *pts)
{
	int np = 0;

	for (int i = 0; i < g.grid_n; i++) {
		double a[MAX_RUNS], b[MAX_RUNS], c[MAX_RUNS], d[MAX_RUNS];
		int n = 0;

		for (int r = 0; r < runs; r++) {
			const struct step *st = &grid[k][i][r];

			if (!st->ran)
				continue;
			a[n] = st->tp50;
			b[n] = st->tp99;
			c[n] = st->tp999;
			d[n] = st->p99;
			n++;
		}
		if (n * 2 < runs || n == 0)
			continue;
		pts[np++] = (struct curve_pt){
			.rate = grid_rate(i), .n = n,
			.p50 = bench_median(a, (size_t)n),
			.p99 = bench_median(b, (size_t)n),
			.p999 = bench_median(c, (size_t)n),
			.plain99 = bench_median(d, (size_t)n),
		};
	}
	return np;
}

static void fmt_us(char *buf, size_t len, double us)
{
	if (isfinite(us))
		snprintf(buf, len, "%.0f", us);
	else
		snprintf(buf, len, "unanswered");
}

static void curves_text(struct bench_report *rep, int runs)
{
	static struct curve_pt pts[NSRV][MAX_GRID];
	int np[NSRV];
	char *text = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&text, &len);

	if (!f)
		return;
	for (int k = 0; k < NSRV; k++)
		np[k] = curve(k, runs, pts[k]);
	fprintf(f, "Latency against offered load (us; typical p50/p99/p99.9 "
		"and the plain p99 of the whole window; medians over the runs "
		"that reached the rate; 'unanswered': the percentile falls "
		"among requests never answered within the grace time):\n\n"
		"| offered (ops/s) | %s p50 | p99 | p99.9 | plain p99 | %s p50 "
		"| p99 | p99.9 | plain p99 |\n"
		"|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n",
		g.srv[OURS].label, g.srv[PEER].label);
	for (int i = 0; i < g.grid_n; i++) {
		bool any = false;

		for (int k = 0; k < NSRV; k++)
			for (int j = 0; j < np[k]; j++)
				any |= pts[k][j].rate == grid_rate(i);
		if (!any)
			continue;
		fprintf(f, "| %.0f", grid_rate(i));
		for (int k = 0; k < NSRV; k++) {
			const struct curve_pt *p = NULL;
			char a[16], b[16], c[16], d[16];

			for (int j = 0; j < np[k]; j++)
				if (pts[k][j].rate == grid_rate(i))
					p = &pts[k][j];
			if (!p) {
				fprintf(f, " | - | - | - | -");
				continue;
			}
			fmt_us(a, sizeof(a), p->p50);
			fmt_us(b, sizeof(b), p->p99);
			fmt_us(c, sizeof(c), p->p999);
			fmt_us(d, sizeof(d), p->plain99);
			fprintf(f, " | %s | %s | %s | %s", a, b, c, d);
		}
		fprintf(f, " |\n");
	}
	fclose(f);
	bench_report_text(rep, "%s", text);
	free(text);
}

static void json_curve(FILE *f, int k, int runs)
{
	static struct curve_pt pts[MAX_GRID];
	int n = curve(k, runs, pts);

	fprintf(f, "{\"label\": \"%s\", \"points\": [", g.srv[k].label);
	for (int i = 0; i < n; i++) {
		double v[3] = { pts[i].p50, pts[i].p99, pts[i].p999 };

		fprintf(f, "%s[%.0f", i ? ", " : "", pts[i].rate);
		for (int j = 0; j < 3; j++) {
			if (isfinite(v[j]))
				fprintf(f, ", %.1f", v[j]);
			else
				fprintf(f, ", null");
		}
		fputc(']', f);
	}
	fprintf(f, "]}");
}

/* Hand the curves to the plot script; $BENCH_OUT/kv-percore.png. */
static void plot(int runs)
{
	const char *dir = bench_tool("BENCH_OUT", "bench/results");
	char data[96], png[4096];
	FILE *f;
	int rc;

	if (!bproc_executable("/usr/bin/python3") || !g.plot[0] ||
	    access(g.plot, R_OK)) {
		fprintf(stderr, "bench: no plot (needs /usr/bin/python3 and "
			"the plot script '%s').\n", g.plot);
		return;
	}
	snprintf(data, sizeof(data), "%s/curves.json", g.tmp);
	snprintf(png, sizeof(png), "%s/kv-percore.png", dir);
	f = fopen(data, "we");
	if (!f)
		return;
	fprintf(f, "{\"title\": \"kv-percore: one core, open loop, typical "
		"percentiles (%s)\", "
		"\"slo_us\": %.0f, \"series\": [", bench_quick() ? "quick" :
		"full", SLO_US);
	json_curve(f, OURS, runs);
	fputs(", ", f);
	json_curve(f, PEER, runs);
	fputs("]}\n", f);
	fclose(f);
	{
		const char *argv[] = { "/usr/bin/python3", g.plot, data, png,
				       NULL };

		rc = bproc_reap(spawn(argv, g.gen_cpu, 0, NULL));
	}
	if (rc)
		fprintf(stderr, "bench: the plot script failed (exit %d; is "
			"python3-matplotlib installed?).\n", rc);
	else
		printf("wrote %s\n", png);
}

/* ---- main ------------------------------------------------------------- */

static void setup(void)
{
	struct sched_param sp = { .sched_priority = 1 };
	const char *kv = bench_tool("ATOLL_KV", ATOLL_KV_PATH);
	const char *mc = bench_tool("MEMCACHED", "/usr/bin/memcached");

	g.loadgen = bench_tool("LOADGEN", LOADGEN_PATH);
	g.memcaslap = bench_tool("MEMCASLAP", "/usr/bin/memcaslap");
	g.plot = bench_tool("LOADGEN_PLOT", LOADGEN_PLOT_PATH);
	if (!bproc_executable(kv))
		bench_skip("atoll-kv not found at '%s' (build apps/kv, or set "
			   "ATOLL_KV=/usr/bin/memcached to try the method on "
			   "memcached against itself).", kv);
	if (!bproc_executable(mc) || !bproc_executable(g.loadgen))
		bench_skip("needs memcached ('%s') and loadgen ('%s'); "
			   "scripts/deps.sh installs memcached.", mc,
			   g.loadgen);
	if (bench_two_cpus(&g.gen_cpu, &g.srv_cpu))
		bench_skip("kv-percore needs two cpus in the affinity mask.");
	g.srv[OURS] = (struct server){ .label = "atoll-kv", .path = kv };
	g.srv[PEER] = (struct server){ .label = "memcached -t 1", .path = mc,
				       .memcached = true };
	/* The override runs memcached as "ours": give it its flags, and
	 * say so in every table. */
	if (strstr(kv, "memcached")) {
		g.srv[OURS].memcached = true;
		g.srv[OURS].label = "memcached as ours";
	}
	/* SCHED_FIFO for loadgen when we may (root or CAP_SYS_NICE); not in
	 * the quick version, a smoke test that runs beside other tests a
	 * spinning real-time generator would starve. */
	if (!bench_quick()) {
		g.fifo = sched_setscheduler(0, SCHED_FIFO, &sp) == 0;
		sp.sched_priority = 0;
		sched_setscheduler(0, SCHED_OTHER, &sp);
	}
	snprintf(g.tmp, sizeof(g.tmp), "/tmp/kv-percore.XXXXXX");
	if (!mkdtemp(g.tmp)) {
		g.tmp[0] = '\0';
		bench_die("cannot create a temporary directory: %s.",
			  strerror(errno));
	}
	for (int k = 0; k < NSRV; k++)
		snprintf(g.srv[k].log, sizeof(g.srv[k].log), "%s/server%d.log",
			 g.tmp, k);
	bproc_cleanup_on(cleanup, (const int[]){ SIGINT, SIGTERM }, 2);
	/* This program only waits: keep it off the servers' cpu. */
	bench_pin_cpu(g.gen_cpu);
	g.warmup_s = bench_pick(0.5, 0.1);
	g.window_s = bench_pick(2.0, 0.25);
	g.grace_s = bench_pick(1.0, 0.2);
	g.retries = (int)bench_pick(1, 0);
	g.keys = (uint64_t)bench_pick(100000, 10000);
	g.grid_step = bench_pick(25000, 20000);
	g.grid_n = (int)bench_pick(MAX_GRID, 2);
	g.bisect = (int)bench_pick(3, 0);
	g.caslap_s = (int)bench_pick(10, 1);
	g.seed = 1;
}

static void report_texts(struct bench_report *rep)
{
	bench_report_text(rep,
		"Setup: both servers run at once for a whole run, pinned to "
		"cpu %d; the one not being measured is stopped (SIGSTOP), so "
		"it cannot take cpu time. %s: `%s -p PORT -l 127.0.0.1 -t 1 "
		"-m %d -c 4096%s`; %s: `%s` with the same flags and `-U 0`. "
		"The load generator (bench/loadgen, plain C on pthreads and "
		"io_uring, not on Atoll's runtime) is pinned to cpu %d%s; this "
		"program waits on the same cpu; memcaslap runs there too, at "
		"normal priority. Loopback TCP; the generator's sockets have "
		"TCP_NODELAY and CUBIC, the servers' whatever each server "
		"sets.",
		g.srv_cpu, g.srv[OURS].label, g.srv[OURS].path, SERVER_MEM_MB,
		g.srv[OURS].memcached ? " -U 0" : "", g.srv[PEER].label,
		g.srv[PEER].path, g.gen_cpu, g.fifo ?
		" at SCHED_FIFO priority 50" : bench_quick() ? " at normal "
		"priority (quick version)" : " (SCHED_FIFO not permitted: "
		"normal priority)");
	bench_report_text(rep,
		"Load: open loop; requests arrive as a Poisson process at the "
		"offered rate and are pipelined in batches over %d "
		"connections, up to %d outstanding on each (they fill one "
		"connection, then the next; a full one is refilled once half "
		"its requests are answered; when all are full the request "
		"waits in the generator); latency runs from the SCHEDULED send "
		"time to the reply's last byte, so queueing anywhere counts. "
		"Batches, not one request per connection: a system call costs "
		"over a microsecond in this VM, and a generator making one "
		"send and one receive per request tops out near 130k "
		"requests/s on one core, about what memcached -t 1 serves. "
		"%" PRIu64
		" keys of %d bytes, Zipf(%s) popularity, %s gets, %d-byte "
		"values, every key set once per run before the first step. "
		"Each step: %.1f s warm-up (not recorded), %.2f s measured; "
		"replies missing %.1f s after the window count as infinitely "
		"slow.", NCONN, DEPTH, g.keys, KEY_LEN, ZIPF, GET_RATIO, VALUE,
		g.warmup_s, g.window_s, g.grace_s);
	bench_report_text(rep,
		"Typical percentiles: this 2-cpu machine is shared with other "
		"jobs, whose time slices stall a server or the generator for "
		"milliseconds now and then, and a plain p99 then measures "
		"those stalls. So loadgen cuts each measured window into 10 ms "
		"slices by scheduled send time, computes each slice's own "
		"percentiles (unanswered requests as infinitely slow), and "
		"reports the median over slices: a stall spoils a slice or "
		"two, not the figure. The bound is applied to the typical "
		"p99 (with at most 1%% of requests unanswered); the plain p99 "
		"of the whole window is given beside it (the notes, the "
		"table).");
	bench_report_text(rep,
		"Sweep: per run, rates on a %.0fk grid, both servers at each "
		"rate in alternating order; %s A server leaves the grid after "
		"two failing rates in a row; then %d bisection steps refine "
		"its highest passing rate. %d loadgen steps in all, %d of them "
		"repeats.", g.grid_step / 1e3, g.retries ?
		"a failed step (typical p99 > 500 us) is tried once more, and "
		"a step in which the generator fell behind by its own fault "
		"(over 10% of sends more than 50 us late, not because every "
		"connection was full) or waited for its cpu over 10% of the "
		"time is repeated up to twice (not lower: even a real-time "
		"generator loses its cpu 50 ms a second whenever ordinary "
		"tasks wait there, the kernel's fair server reserving them "
		"5%; the typical percentiles are immune to such stalls)." :
		"no step is repeated (quick mode).", g.bisect, g.steps_run,
		g.steps_retried);
	bench_report_text(rep,
		"How this differs from a real deployment: client and server "
		"share one 2-cpu VM and talk over loopback, so the kernel's "
		"TCP work for both directions lands on these two cpus (a "
		"request's send costs the generator's cpu, the reply's send "
		"the server's) and no NIC, interrupt or network delay is "
		"involved; the generator runs at real-time priority on the "
		"other cpu, which real clients do not; other jobs on the "
		"machine take time slices from either side now and then "
		"(the header gives their share; a real-time generator that "
		"keeps its cpu busy also gets stopped for up to 50 ms a second "
		"when ordinary tasks wait on that cpu, the kernel's guard "
		"against real-time starvation: those stalls show as the "
		"generator's own late sends, and such steps are repeated); "
		"and one server thread on one core is the point of the "
		"experiment, not how either server is deployed.");
}

/* Every run's results. */
static struct {
	double cap[NSRV][MAX_RUNS];	/* max rate under the bound */
	double cap_plain[NSRV][MAX_RUNS]; /* ...on the plain p99, grid only */
	double caslap[NSRV][MAX_RUNS];	/* memcaslap TPS */
	int ncaslap;
	struct step gen;		/* the generator's fastest clean step */
	struct step gen_stop;		/* ...and the step that stopped it */
} res;

static void one_run(int r)
{
	double c[NSRV];

	for (int k = 0; k < NSRV; k++)
		server_start(&g.srv[k]);
	for (int k = 0; k < NSRV; k++)	/* set every key */
		loadgen_step(k, 1000, true);
	sweep(r, c);
	for (int k = 0; k < NSRV; k++) {
		res.cap[k][r] = c[k];
		res.cap_plain[k][r] = plain_cap(k, r);
	}
	if (bproc_executable(g.memcaslap) && (r == 0 || !bench_quick())) {
		for (int j = 0; j < NSRV; j++) {
			int k = (r + j) % 2;

			res.caslap[k][res.ncaslap] = memcaslap(k);
		}
		res.ncaslap++;
	}
	for (int k = 0; k < NSRV; k++)
		server_stop(&g.srv[k]);
	fprintf(stderr, "run %d: max rate under p99 %.0f us: %s %.0f, %s %.0f "
		"ops/s\n", r, SLO_US, g.srv[OURS].label, c[OURS],
		g.srv[PEER].label, c[PEER]);
}

/* The offered rate was served and the generator kept up. */
static bool kept(const struct step *st)
{
	return st->achieved >= 0.95 * st->offered && gen_ok(st);
}

/* The generator pushed hard, with the experiment's load against
 * memcached, offered more and more: the fastest step it kept up with
 * (achieved >= 95% of offered, and gen_ok()), and the first
 * it did not, with who was busy then (the generator or the server). */
static void generator_push(void)
{
	server_start(&g.srv[PEER]);
	loadgen_step(PEER, 1000, true);
	for (double r = GEN_RATE0; r <= bench_pick(GEN_RATE_MAX, GEN_RATE0);
	     r += GEN_RATE0) {
		struct step st = loadgen_step(PEER, r, false);

		/* A step another job disturbed gets two more tries. */
		for (int i = 0; i < 2 * g.retries && !kept(&st); i++) {
			g.steps_retried++;
			st = loadgen_step(PEER, r, false);
		}
		if (getenv("KV_PERCORE_TRACE"))
			fprintf(stderr, "  generator push: %7.0f/s achieved "
				"%7.0f busy %.0f%% (memcached %.0f%%) gen late "
				"%" PRIu64 "\n", r, st.achieved, 100 * st.busy,
				100 * st.srv_busy, st.gen_late);
		if (!kept(&st)) {
			res.gen_stop = st;
			break;
		}
		res.gen = st;
	}
	server_stop(&g.srv[PEER]);
}

/* The step at a run's highest passing grid rate of server k, or NULL. */
static const struct step *cap_step(int k, int r)
{
	const struct step *best = NULL;

	for (int i = 0; i < g.grid_n; i++) {
		const struct step *st = &grid[k][i][r];

		if (st->ran && step_ok(st) && grid_rate(i) <= res.cap[k][r])
			best = st;
	}
	return best;
}

/* Whether server k passed the grid's top rate in any of n runs. */
static bool passed_whole_grid(int k, size_t n)
{
	for (size_t r = 0; r < n; r++)
		if (res.cap[k][r] >= grid_rate(g.grid_n - 1))
			return true;
	return false;
}

static void rows_capacity(struct bench_report *rep, size_t n)
{
	double o = bench_median(res.cap[OURS], n);
	double p = bench_median(res.cap[PEER], n);
	int row = bench_report_row(rep, "max rate under p99 500us", "ops/s",
				   BENCH_HIGHER, res.cap[OURS], n,
				   res.cap[PEER], n, g.srv[PEER].label);

	if (row >= 0) {
		bench_report_note(rep, row, "target", ">= 1.5x memcached -t 1: "
				  "%s (%.2fx)", p > 0 && o >= 1.5 * p ? "met" :
				  "NOT met", p > 0 ? o / p : 0);
		bench_report_note(rep, row, "method", "open loop, Poisson, %d "
				  "connections, up to %d pipelined on each, %"
				  PRIu64 " keys Zipf %s, %s get, %d-byte values; "
				  "highest offered rate whose typical p99 "
				  "(median over 10 ms slices, from the scheduled "
				  "send) is <= %.0f us with <= 1%% unanswered: a "
				  "%.0fk grid then %d bisection steps", NCONN,
				  DEPTH, g.keys, ZIPF, GET_RATIO, VALUE, SLO_US,
				  g.grid_step / 1e3, g.bisect);
		for (int k = 0; k < NSRV; k++)
			if (passed_whole_grid(k, n))
				bench_report_note(rep, row, "grid top",
					"%s passed every grid rate in some "
					"run; such a run counts the top, "
					"%.0fk: a lower bound", g.srv[k].label,
					grid_rate(g.grid_n - 1) / 1e3);
		bench_report_note(rep, row, "on the plain p99", "%s %.0f, %s "
				  "%.0f ops/s (medians; grid rates only)",
				  g.srv[OURS].label,
				  bench_median(res.cap_plain[OURS], n),
				  g.srv[PEER].label,
				  bench_median(res.cap_plain[PEER], n));
	}
	if (!res.ncaslap) {
		fprintf(stderr, "bench: no memcaslap cross-check: '%s' is not "
			"there (Debian's libmemcached-tools has it).\n",
			g.memcaslap);
		return;
	}
	row = bench_report_row(rep, "memcaslap closed-loop throughput",
			       "ops/s", BENCH_HIGHER, res.caslap[OURS],
			       (size_t)res.ncaslap, res.caslap[PEER],
			       (size_t)res.ncaslap, g.srv[PEER].label);
	if (row >= 0)
		bench_report_note(rep, row, "method", "memcaslap -T 1 -c 16 -t "
				  "%ds (90%% get), pinned to cpu %d; closed "
				  "loop: it slows down with the server",
				  g.caslap_s, g.gen_cpu);
}

/* p99 and server cpu per request at the fixed load: the highest grid
 * rate at or below half the peer's median capacity (the lowest if
 * none). */
static void rows_fixed_load(struct bench_report *rep, int runs)
{
	static double p99[NSRV][MAX_RUNS], cpu[NSRV][MAX_RUNS];
	static double plain[NSRV][MAX_RUNS];
	size_t n_at[NSRV] = { 0, 0 };
	double half = 0.5 * bench_median(res.cap[PEER], (size_t)runs);
	int fixed = 0, row;

	for (int i = 1; i < g.grid_n; i++)
		if (grid_rate(i) <= half)
			fixed = i;
	for (int k = 0; k < NSRV; k++) {
		for (int r = 0; r < runs; r++) {
			const struct step *st = &grid[k][fixed][r];

			if (!st->ran)
				continue;
			/* Unanswered: count as the grace time. */
			p99[k][n_at[k]] = isfinite(st->tp99) ? st->tp99 :
					  g.grace_s * 1e6;
			plain[k][n_at[k]] = isfinite(st->p99) ? st->p99 :
					    g.grace_s * 1e6;
			cpu[k][n_at[k]++] = st->srv_ns_per_req;
		}
	}
	if (!n_at[OURS] || !n_at[PEER])
		return;
	row = bench_report_row(rep, "p99 at fixed load", "us", BENCH_LOWER,
			       p99[OURS], n_at[OURS], p99[PEER], n_at[PEER],
			       g.srv[PEER].label);
	if (row >= 0) {
		bench_report_note(rep, row, "offered load", "%.0f ops/s (the "
				  "grid rate at or below half memcached's max "
				  "rate); typical p99", grid_rate(fixed));
		bench_report_note(rep, row, "plain p99", "%s %.0f us, %s %.0f "
				  "us (medians)", g.srv[OURS].label,
				  bench_median(plain[OURS], n_at[OURS]),
				  g.srv[PEER].label,
				  bench_median(plain[PEER], n_at[PEER]));
	}
	row = bench_report_row(rep, "server cpu per request at fixed load",
			       "ns", BENCH_LOWER, cpu[OURS], n_at[OURS],
			       cpu[PEER], n_at[PEER], g.srv[PEER].label);
	if (row >= 0)
		bench_report_note(rep, row, "method", "the server process's "
				  "user + system time (/proc/PID/stat, 10 ms "
				  "ticks) over the loadgen invocation at %.0f "
				  "ops/s, divided by the requests sent",
				  grid_rate(fixed));
}

/* The generator's own ceiling on one core, estimated from its busy share
 * (time in loop turns that did work) at each server's max rate: its cost
 * per request is what limits it, whichever server it drives. */
static void rows_generator(struct bench_report *rep, int runs)
{
	double est[MAX_RUNS], busy[MAX_RUNS];
	size_t n = 0;
	int row;

	/* At memcached's max rate: the highest load of the experiment,
	 * whatever atoll-kv does. */
	for (int r = 0; r < runs; r++) {
		const struct step *st = cap_step(PEER, r);

		if (st && st->busy > 0) {
			busy[n] = 100 * st->busy;
			est[n++] = st->achieved / st->busy;
		}
	}
	if (!n)
		return;
	row = bench_report_row(rep, "loadgen ceiling, 1 core (estimate)",
			       "ops/s", BENCH_HIGHER, est, n, NULL, 0, NULL);
	if (row < 0)
		return;
	bench_report_note(rep, row, "method", "achieved rate / the "
			  "generator's busy share (time in loop turns that "
			  "sent or received; idle polling excluded), at "
			  "memcached's max rate in each run, the experiment's "
			  "load; median over runs. Conservative: batches grow "
			  "with the load, and the cost per request falls");
	bench_report_note(rep, row, "generator busy at memcached's max "
			  "rate", "%.0f%% (median)", bench_median(busy, n));
	if (res.gen.ran)
		bench_report_note(rep, row, "pushed against memcached -t 1",
				  "kept %.0f ops/s (generator busy %.0f%%, "
				  "memcached's cpu %.0f%%)", res.gen.offered,
				  100 * res.gen.busy, 100 * res.gen.srv_busy);
	if (res.gen_stop.ran)
		bench_report_note(rep, row, "first rate not kept", "offered "
				  "%.0f, achieved %.0f ops/s (generator busy "
				  "%.0f%%, memcached's cpu %.0f%%: the busier "
				  "one stopped it)", res.gen_stop.offered,
				  res.gen_stop.achieved, 100 * res.gen_stop.busy,
				  100 * res.gen_stop.srv_busy);
}

int main(void)
{
	int runs = bench_runs(), err;
	struct bench_report *rep;

	if (runs > MAX_RUNS)
		runs = MAX_RUNS;
	setup();
	rep = bench_report_open("kv-percore");
	if (!rep)
		return 1;
	for (int r = 0; r < runs; r++)
		one_run(r);
	generator_push();
	rows_capacity(rep, (size_t)runs);
	rows_fixed_load(rep, runs);
	rows_generator(rep, runs);
	curves_text(rep, runs);
	report_texts(rep);
	err = bench_report_close(rep);
	plot(runs);
	return err ? 1 : 0;
}
