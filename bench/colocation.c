/* colocation.c - `make bench B=colocation`: does atoll-kv keep its tail
 * latency when batch work runs next to it? In an LL cell, with the batch
 * work in a CG cell, against the same pair on plain Linux (RainForest 6.2).
 *
 * Method. Two CPUs, A < B (the first two of the affinity mask; on a 2-CPU
 * machine 0 and 1), and two setups of the same programs:
 *
 *  - cell: a private atolld (own temporary state directory, socket and
 *    --name, --no-irq) managing A and B; LL cell "kv" on B runs atoll-kv
 *    with ATOLL_CELL=kv (an MCP, one vcore); CG cell "batch" on A runs the
 *    antagonist through `atoll run --cell batch`;
 *  - plain: no atolld, no cells; atoll-kv and the antagonist started with
 *    the affinity {A, B} (all of a 2-CPU machine): the default scheduler
 *    places them, and the antagonist may use both CPUs. (Standalone,
 *    atoll-kv's runtime pins its vcore thread to CPU A; the benchmark
 *    undoes that pin once the server runs, see unpin_threads().)
 *
 * In both, the load generator (bench/loadgen: open loop, Poisson arrivals,
 * latency from the scheduled send) runs outside any cell at SCHED_FIFO,
 * pinned to A, so the antagonist cannot delay its sends; it counts the
 * sends it made late, and the table shows them. Each measurement is the
 * same fixed offered rate, a share of what atoll-kv sustained alone on one
 * core at the start of the run (measured: the achieved rate under an
 * overload), low enough that the generator stays well under the kernel's
 * real-time budget (see fit_rate()). Antagonists: stress-ng cpu, cache and vm (memory) stressors
 * and a compile loop (gcc -O2 of a generated C file, over and over), with
 * as many workers as the CPUs they may use (1 in the cell, 2 on plain
 * Linux).
 *
 * A run is one phase per setup (the order alternates between runs): start
 * the setup and atoll-kv, preload it, then measure it alone and beside
 * each antagonist in turn (the order rotates between runs), then tear it
 * all down. Slowdown = p99 (or p99.9) with the antagonist over p99 alone
 * in the same phase, minus one, in %; the rows give the medians over the
 * runs. The antagonist's own progress (stress-ng bogo-ops/s, compiles/s)
 * is recorded too: a cell protects atoll-kv by giving the batch work less
 * of the machine, and the table says how much less.
 *
 * Skips (exit 77) when not root, with fewer than two CPUs, without
 * stress-ng or gcc, or when atolld finds no cgroup hierarchy. Everything
 * it starts (atolld, cells, atoll-kv, antagonists, the load generator) is
 * stopped and its temporary directory removed at exit, on failure and on
 * SIGINT/SIGTERM too; a watchdog alarm bounds the whole run. Children die
 * with the benchmark even on SIGKILL (PR_SET_PDEATHSIG), and antagonists
 * stop by themselves after a deadline.
 *
 * The programs are those the build compiled in; ATOLL_ATOLLD, ATOLL_CLI,
 * ATOLL_KV and LOADGEN override them (ATOLL_KV=/usr/bin/memcached runs
 * stock memcached in atoll-kv's place, without the MCP check).
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <math.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <atoll/compiler.h>
#include <atoll/proto.h>

#include "benchlib.h"
#include "benchproc.h"
#include "json.h"

#define RUNS_MAX 50
#define LOAD_SHARE 0.3		/* offered rate / what kv sustains alone */
#define RATE_FLOOR 1000.0
#define CALIBRATE_PROBES 3
#define NOISY_ALONE_US 2000.0	/* a p99 alone above this: a noisy machine */
#define CONNS 16
#define KEYS 10000
#define FIFO_PRIO 50
#define LATE_US 500		/* a send this late is the generator's */
#define GEN_CPU_MAX 0.6		/* of its CPU: well under the RT budget */
#define KV_MEM_MB 64
#define BATCH_MEM "1G"		/* the batch cell's memory limit */
#define VM_BYTES "128M"		/* per stress-ng vm worker */
#define RAMP_MS 300		/* antagonist start -> load generator start */
#define STOP_WAIT_MS 3000	/* SIGINT -> SIGKILL for an antagonist */
#define COMPILE_FUNCS 20	/* ~0.1 s of gcc -O2 per compile */
#define SETTLE_MS 200		/* after an antagonist is gone */

enum setup { CELL, PLAIN, NSETUPS };

static const char *const setup_name[NSETUPS] = {
	[CELL] = "in a cell",
	[PLAIN] = "plain Linux",
};

/* What runs beside atoll-kv. Index 0 is "alone". */
enum ant { ALONE, ANT_CPU, ANT_CACHE, ANT_MEM, ANT_COMPILE, NANTS };

static const struct {
	const char *name;	/* in the row names */
	const char *stressor;	/* stress-ng option, NULL: not stress-ng */
	const char *what;	/* for the notes */
} ants[NANTS] = {
	[ALONE] = { "alone", NULL, "nothing" },
	[ANT_CPU] = { "cpu", "--cpu", "stress-ng --cpu N" },
	[ANT_CACHE] = { "cache", "--cache", "stress-ng --cache N" },
	[ANT_MEM] = { "memory", "--vm",
		      "stress-ng --vm N --vm-bytes " VM_BYTES },
	[ANT_COMPILE] = { "compile", NULL,
			  "N loops of gcc -O2 -c on a generated 140-line C "
			  "file" },
};

/* One load generator step, as its JSON gives it. */
struct lg_result {
	double achieved;	/* replies/s in the window */
	double p99_us, p999_us;	/* INFINITY: some never answered */
	double typ_p99_us;	/* the median of 10 ms slices' p99s */
	double scheduled;
	double late;		/* sent late because the generator was */
	double cpu_share;	/* the generator's CPU time / its run time */
};

static struct {
	char dir[64];		/* temporary directory, "" = none */
	char sock[96], state[96], name[40];
	const char *atolld, *atoll, *kv, *loadgen;
	bool kv_is_memcached;	/* the stand-in: no MCP to expect */
	int kv_pinned;		/* its threads pinned on plain Linux */
	double gen_cpu;		/* the generator's CPU share at g.rate */
	bool quiet_exit;	/* nothing failed: no logs to show at exit */
	int cpu_a, cpu_b;
	pid_t atolld_pid, kv_pid, ant_pid, lg_pid;
	bool cells_made;
	char enforcement[32];
	int port;
	/* measurement parameters */
	double rate;		/* offered req/s */
	double warmup_s, window_s;
	int runs;
} g;

/* ---- small helpers ------------------------------------------------------ */

/* Skip quietly: the exit handler then has nothing to report. */
#define skip(...) (g.quiet_exit = true, bench_skip(__VA_ARGS__))

/* The program's path: $env if set, else the one meson compiled in. */
static const char *find_tool(const char *env, const char *compiled,
			     const char *what)
{
	const char *p = bproc_find(env, compiled);

	if (!p)
		bench_die("%s not found at '%s' (build it, or set %s).", what,
			  bench_tool(env, compiled), env);
	return p;
}

/* dir/name of one of our log files. */
static char *log_path(char *buf, size_t len, const char *name)
{
	snprintf(buf, len, "%s/%s.log", g.dir, name);
	return buf;
}

/* ---- child processes ------------------------------------------------------ */

/* {A, B}: the whole machine of the plain-Linux setup. */
static cpu_set_t pair_set(void)
{
	cpu_set_t set;

	CPU_ZERO(&set);
	CPU_SET(g.cpu_a, &set);
	CPU_SET(g.cpu_b, &set);
	return set;
}

struct spawn {
	char *const *argv;
	const char *log;	/* stdout and stderr, appended; NULL: /dev/null */
	const char *cell;	/* ATOLL_CELL, NULL: unset */
	bool supervised;	/* ATOLL_SOCKET = our atolld's */
	bool on_pair;		/* affinity {A, B} */
	int out_fd;		/* >= 0: stdout goes there instead */
};

/* Start sp's program in its own process group (so that one kill stops it
 * and its workers, and a terminal's ^C reaches only us), dying with the
 * benchmark, with ATOLL_CELL and ATOLL_SOCKET as sp asks. */
static pid_t spawn(const struct spawn *sp)
{
	char cell[64], sock[128];
	const char *env[] = { "ATOLL_CELL", "ATOLL_SOCKET", NULL, NULL, NULL };
	cpu_set_t pair = pair_set();
	struct bproc_spawn bp = { .argv = sp->argv, .log = sp->log,
				  .out_fd = sp->out_fd, .own_group = true,
				  .cpus = sp->on_pair ? &pair : NULL,
				  .env = env };
	size_t n = 2;

	if (sp->cell) {
		snprintf(cell, sizeof(cell), "ATOLL_CELL=%s", sp->cell);
		env[n++] = cell;
	}
	if (sp->supervised) {
		snprintf(sock, sizeof(sock), "ATOLL_SOCKET=%s", g.sock);
		env[n++] = sock;
	}
	return bproc_spawn(&bp);
}


/* Run argv to completion (at most timeout_s) with stdout to out (NUL
 * terminated, cap bytes, may be NULL) and stderr to the log. Returns its
 * exit status, or -1 when it did not exit normally. */
static int run_capture(char *const *argv, bool supervised, char *out,
		       size_t cap, double timeout_s)
{
	char path[128];
	struct spawn sp = { .argv = argv, .supervised = supervised,
			    .out_fd = -1 };
	int fd = -1, st;
	pid_t pid;

	sp.log = log_path(path, sizeof(path), "tools");
	if (out) {
		char tmp[128];

		snprintf(tmp, sizeof(tmp), "%s/capture", g.dir);
		fd = open(tmp, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
		if (fd < 0)
			bench_die("cannot create %s: %s.", tmp,
				  strerror(errno));
		sp.out_fd = fd;
	}
	pid = spawn(&sp);
	st = bproc_wait_until(pid, bproc_now_s() + timeout_s, NULL);
	if (st < 0) {
		bproc_kill_group(&pid);
		fprintf(stderr, "bench: %s did not finish within %.0f s.\n",
			argv[0], timeout_s);
	}
	if (out) {
		ssize_t n = pread(fd, out, cap - 1, 0);

		out[n > 0 ? n : 0] = '\0';
		close(fd);
	}
	return st >= 0 && WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

/* ---- atolld and the cells ------------------------------------------------ */

/* `atoll ARG...` (NULL-terminated) against our atolld; dies unless it
 * succeeds. */
static void __attribute__((sentinel)) atoll_or_die(const char *arg, ...)
{
	char *argv[16] = { (char *)g.atoll };
	char line[256];
	size_t n = 1, len = 0;
	va_list ap;

	va_start(ap, arg);
	for (const char *a = arg; a && n + 1 < ARRAY_SIZE(argv);
	     a = va_arg(ap, const char *)) {
		argv[n++] = (char *)a;
		len += (size_t)snprintf(line + len, sizeof(line) - len, " %s",
					a);
		if (len >= sizeof(line))
			len = sizeof(line) - 1;
	}
	va_end(ap);
	if (run_capture(argv, true, NULL, 0, 30) != 0)
		bench_die("'atoll%s' failed (the logs follow).", line);
}

/* `atoll ARG1 [ARG2] --json` parsed; NULL when it failed. */
static struct json_doc *atoll_json(const char *a1, const char *a2)
{
	char *argv[] = { (char *)g.atoll, (char *)a1,
			 (char *)(a2 ? a2 : "--json"), (char *)"--json", NULL };
	static char out[1 << 16];
	char err[128];

	if (!a2)
		argv[3] = NULL;

	if (run_capture(argv, true, out, sizeof(out), 30) != 0)
		return NULL;
	return json_parse(out, strlen(out), err, sizeof(err));
}

static void atolld_start(void)
{
	static const char *const env[] = { "ATOLL_CELL", "ATOLL_SOCKET",
					   NULL };
	char cpus[32], log[128];
	struct bproc_atolld a = { .exe = g.atolld, .state = g.state,
				  .sock = g.sock, .cpus = cpus,
				  .name = g.name, .grace_ms = 0, .log = log,
				  .own_group = true, .env = env };
	int fd;

	snprintf(cpus, sizeof(cpus), "%d,%d", g.cpu_a, g.cpu_b);
	log_path(log, sizeof(log), "atolld");
	fd = bproc_atolld_start(&a, &g.atolld_pid, NULL);
	if (fd == -ECHILD)
		bench_die("atolld (%s) exited at start (its log follows).",
			  g.atolld);
	if (fd < 0)
		bench_die("atolld did not open %s within 5 s (its log "
			  "follows).", g.sock);
	close(fd);	/* the CLI speaks to it */
}

/* Destroy what cells there are (SIGKILL to their processes, grace 0)
 * and stop atolld; with no cells left, its clean stop removes its cgroup
 * roots. */
static void atolld_stop(void)
{
	char *argv[] = { (char *)g.atoll, (char *)"cell", (char *)"destroy",
			 NULL, (char *)"--grace-ms", (char *)"0", NULL };
	static const char *const cells[] = { "kv", "batch" };

	if (g.atolld_pid <= 0)
		return;
	if (g.cells_made) {
		for (size_t i = 0; i < ARRAY_SIZE(cells); i++) {
			argv[3] = (char *)cells[i];
			run_capture(argv, true, NULL, 0, 10);
		}
		g.cells_made = false;
	}
	kill(g.atolld_pid, SIGTERM);
	if (bproc_wait_until(g.atolld_pid, bproc_now_s() + 5, NULL) < 0) {
		fprintf(stderr, "bench: atolld did not stop within 5 s and "
			"was killed; cgroups named atoll-%s may remain.\n",
			g.name);
		bproc_kill_group(&g.atolld_pid);
	}
	g.atolld_pid = 0;
	unlink(g.sock);
}

/* The enforcement atolld chose; skips the benchmark without cgroups. */
static void atolld_check_cgroups(void)
{
	struct json_doc *d = atoll_json("status", NULL);
	const struct json *e = d ? json_get(json_root(d), "enforcement") : NULL;

	if (!e || e->type != JSON_STR)
		bench_die("'atoll status --json' gave no enforcement (the "
			  "logs follow).");
	snprintf(g.enforcement, sizeof(g.enforcement), "%s", e->s);
	json_free(d);
	if (strcmp(g.enforcement, PROTO_ENF_V1) &&
	    strcmp(g.enforcement, PROTO_ENF_V2))
		skip("atolld found no usable cgroup hierarchy (enforcement "
		     "'%s'): the cells would be affinity only, not the "
		     "isolation this benchmark is about.", g.enforcement);
}

static void cells_create(void)
{
	char a[16], b[16];

	snprintf(a, sizeof(a), "%d", g.cpu_a);
	snprintf(b, sizeof(b), "%d", g.cpu_b);
	g.cells_made = true;
	atoll_or_die("cell", "create", "kv", "--cpus", b, "--class", "ll",
		     NULL);
	atoll_or_die("cell", "create", "batch", "--cpus", a, "--class", "cg",
		     "--mem", BATCH_MEM, NULL);
}

/* ---- atoll-kv -------------------------------------------------------------- */

/* How many MCPs the kv cell has registered (atoll cell list --json). */
static int kv_cell_mcps(void)
{
	struct json_doc *d = atoll_json("cell", "list");
	const struct json *cells = d ? json_get(json_root(d), "cells") : NULL;
	int n = -1;

	for (size_t i = 0; cells && cells->type == JSON_ARR &&
	     i < cells->len; i++) {
		const struct json *c = cells->kids[i];
		const struct json *name = json_get(c, "name");
		const struct json *mcps = json_get(c, "mcps");

		if (name && name->type == JSON_STR && !strcmp(name->s, "kv"))
			n = mcps && mcps->type == JSON_ARR ? (int)mcps->len : 0;
	}
	json_free(d);
	return n;
}

/* Wait until the server listens and, in its cell, has registered as an
 * MCP. */
static void kv_wait_ready(enum setup s)
{
	int r = bproc_wait_port(g.port, g.kv_pid, 10);

	if (r == -ECHILD) {
		g.kv_pid = 0;
		bench_die("%s exited at start (its log follows).", g.kv);
	}
	if (r < 0)
		bench_die("%s did not listen on port %d within 10 s (its log "
			  "follows).", g.kv, g.port);
	if (s == CELL && !g.kv_is_memcached) {
		int n = 0;

		/* Registration follows the listen; give it a moment. */
		for (int i = 0; i < 100 && (n = kv_cell_mcps()) < 1; i++)
			bproc_sleep_ms(20);
		if (n < 1)
			bench_die("atoll-kv runs in cell 'kv' but did not "
				  "register with atolld as an MCP (the logs "
				  "follow).");
	}
}

static void kv_start(enum setup s)
{
	char port[16], mem[16], log[128];
	char *kv_argv[] = { (char *)g.kv, (char *)"-p", port, (char *)"-l",
			    (char *)"127.0.0.1", (char *)"-t", (char *)"1",
			    (char *)"-m", mem, (char *)"-U", (char *)"0",
			    (char *)"-u", (char *)"root", NULL };
	char *cell_argv[ARRAY_SIZE(kv_argv) + 5] = {
		(char *)g.atoll, (char *)"run", (char *)"--cell",
		(char *)"kv", (char *)"--" };
	struct spawn sp = { .log = log, .out_fd = -1 };

	/* atoll-kv refuses memcached's -u; memcached needs it as root. */
	if (!g.kv_is_memcached)
		kv_argv[ARRAY_SIZE(kv_argv) - 3] = NULL;
	memcpy(cell_argv + 5, kv_argv, sizeof(kv_argv));
	g.port = bproc_free_port();
	if (g.port < 0)
		bench_die("cannot find a free TCP port: %s.",
			  strerror(-g.port));
	snprintf(port, sizeof(port), "%d", g.port);
	snprintf(mem, sizeof(mem), "%d", KV_MEM_MB);
	log_path(log, sizeof(log), "kv");
	if (s == CELL) {
		sp.argv = cell_argv;
		sp.cell = "kv";
		sp.supervised = true;
	} else {
		sp.argv = kv_argv;
		sp.on_pair = true;
	}
	g.kv_pid = spawn(&sp);
	kv_wait_ready(s);
}

/* Give every thread of pid the affinity {A, B}; returns how many were
 * pinned to one CPU before. Standalone, atoll-kv's runtime pins each
 * vcore thread to a CPU of its mask, the first one for -t 1: CPU A, the
 * load generator's. The plain-Linux peer is about the default scheduler
 * placing the programs, so these pins are undone. Call it once the
 * runtime is up (the server has answered): its threads exist by then. */
static int unpin_threads(pid_t pid)
{
	cpu_set_t pair = pair_set(), cur;
	struct dirent *de;
	char path[64];
	int pinned = 0;
	DIR *d;

	snprintf(path, sizeof(path), "/proc/%d/task", (int)pid);
	d = opendir(path);
	if (!d)
		bench_die("cannot list the threads of %s (%s): %s.", g.kv,
			  path, strerror(errno));
	while ((de = readdir(d))) {
		pid_t tid = (pid_t)atoi(de->d_name);

		if (tid <= 0)
			continue;
		if (!sched_getaffinity(tid, sizeof(cur), &cur) &&
		    CPU_COUNT(&cur) == 1)
			pinned++;
		sched_setaffinity(tid, sizeof(pair), &pair);
	}
	closedir(d);
	return pinned;
}

/* ---- antagonists ------------------------------------------------------------ */

/* A C file that keeps gcc -O2 busy for a fraction of a second. */
static void write_compile_source(void)
{
	char path[128];
	FILE *f;

	snprintf(path, sizeof(path), "%s/cc.c", g.dir);
	f = fopen(path, "we");
	if (!f)
		bench_die("cannot create %s: %s.", path, strerror(errno));
	for (int i = 0; i < COMPILE_FUNCS; i++) {
		fprintf(f, "unsigned long f%d(unsigned long x, int n)\n{\n"
			"\tunsigned long a[16] = { x };\n"
			"\tfor (int i = 1; i < n; i++)\n"
			"\t\ta[i & 15] += a[(i * 7) & 15] * %dUL ^ (x >> (i & 31));\n"
			"\treturn a[3] + a[n & 15];\n}\n", i, i + 3);
	}
	if (fclose(f))
		bench_die("cannot write %s: %s.", path, strerror(errno));
}

/* The shell loop of the compile antagonist: $1 workers, each compiling
 * until $2 (epoch seconds), one byte appended to $4/cc.count per
 * compile. */
static const char compile_script[] =
	"i=0; while [ $i -lt $1 ]; do "
	"( while [ $(date +%s) -lt $2 ]; do "
	"gcc -O2 -c \"$3\" -o \"$4/cc$i.o\" && printf x >> \"$4/cc.count\"; "
	"done ) & i=$((i+1)); done; wait";

/* Start antagonist a with as many workers as the setup lets it use. It
 * stops by itself after life_s seconds should we fail to stop it. */
static void ant_start(enum setup s, enum ant a, double life_s)
{
	char n[8], t[32], until[32], yaml[128], log[128], src[128];
	char *cmd[16] = { 0 }, *argv[24] = { 0 };
	struct spawn sp = { .argv = argv, .log = log, .out_fd = -1 };
	int k = 0, j = 0;

	snprintf(n, sizeof(n), "%d", s == CELL ? 1 : 2);
	snprintf(t, sizeof(t), "%.0fs", ceil(life_s));
	snprintf(until, sizeof(until), "%.0f",
		 (double)time(NULL) + ceil(life_s));
	snprintf(yaml, sizeof(yaml), "%s/ant.yaml", g.dir);
	log_path(log, sizeof(log), "antagonist");
	snprintf(src, sizeof(src), "%s/cc.c", g.dir);
	unlink(yaml);
	if (ants[a].stressor) {
		cmd[k++] = (char *)"stress-ng";
		cmd[k++] = (char *)ants[a].stressor;
		cmd[k++] = n;
		if (a == ANT_MEM) {
			cmd[k++] = (char *)"--vm-bytes";
			cmd[k++] = (char *)VM_BYTES;
		}
		cmd[k++] = (char *)"--timeout";
		cmd[k++] = t;
		cmd[k++] = (char *)"--metrics-brief";
		cmd[k++] = (char *)"--yaml";
		cmd[k++] = yaml;
	} else {
		char count[128];

		snprintf(count, sizeof(count), "%s/cc.count", g.dir);
		unlink(count);
		cmd[k++] = (char *)"sh";
		cmd[k++] = (char *)"-c";
		cmd[k++] = (char *)compile_script;
		cmd[k++] = (char *)"compile";
		cmd[k++] = n;
		cmd[k++] = until;
		cmd[k++] = src;
		cmd[k++] = g.dir;
	}
	if (s == CELL) {
		argv[j++] = (char *)g.atoll;
		argv[j++] = (char *)"run";
		argv[j++] = (char *)"--cell";
		argv[j++] = (char *)"batch";
		argv[j++] = (char *)"--";
		sp.supervised = true;
	} else {
		sp.on_pair = true;
	}
	memcpy(argv + j, cmd, (size_t)k * sizeof(cmd[0]));
	g.ant_pid = spawn(&sp);
}

/* stress-ng's bogo-ops/s (real time) from its YAML, or NAN. */
static double stress_rate(void)
{
	char path[128];
	size_t len;
	char *text, *p;
	double v = NAN;

	snprintf(path, sizeof(path), "%s/ant.yaml", g.dir);
	text = bench_read_file(path, &len);
	p = text ? strstr(text, "bogo-ops-per-second-real-time:") : NULL;
	if (p)
		v = strtod(p + strlen("bogo-ops-per-second-real-time:"), NULL);
	free(text);
	return v;
}

/* Stop the antagonist and return its work rate over its life (stress-ng
 * bogo-ops/s, compiles/s), NAN if unknown. stress-ng gets SIGINT first,
 * so that it writes its metrics; then SIGKILL goes to what is left of the
 * process group (the compile loops only ever get this: background jobs
 * of a script ignore SIGINT). */
static double ant_stop(enum ant a, double life_s)
{
	char path[128];
	struct stat st;

	if (ants[a].stressor) {
		kill(g.ant_pid, SIGINT);
		bproc_wait_until(g.ant_pid,
				 bproc_now_s() + STOP_WAIT_MS / 1e3, NULL);
	}
	bproc_kill_group(&g.ant_pid);
	if (ants[a].stressor)
		return stress_rate();
	snprintf(path, sizeof(path), "%s/cc.count", g.dir);
	return stat(path, &st) ? 0 : (double)st.st_size / life_s;
}

/* ---- the load generator ------------------------------------------------- */

static double json_num(const struct json *o, const char *key)
{
	const struct json *v = json_get(o, key);

	if (v && v->type == JSON_NUM)
		return v->d;
	return INFINITY;	/* null: a percentile among the unanswered */
}

/* One loadgen step at `rate` for warmup + window seconds. */
static struct lg_result loadgen_run(double rate, double warmup_s,
				    double window_s, bool preload)
{
	char server[48], r[32], w[32], d[32], conns[16], keys[16], prio[16];
	char cpu[16], json_path[128], log[128], late[16];
	char *argv[] = { (char *)g.loadgen, (char *)"-s", server, (char *)"-r",
			 r, (char *)"-w", w, (char *)"-d", d, (char *)"-c",
			 conns, (char *)"-k", keys, (char *)"--fifo", prio,
			 (char *)"--cpus", cpu, (char *)"--json", json_path,
			 (char *)"--spin-us", (char *)"0", (char *)"--late-us",
			 late, (char *)"-q",
			 /* the last option, or the end of the list */
			 preload ? NULL : (char *)"--no-preload", NULL };
	struct spawn sp = { .argv = argv, .log = log, .out_fd = -1 };
	struct lg_result res = { 0 };
	struct rusage ru = { 0 };
	const struct json *step;
	double t0;
	struct json_doc *doc;
	char err[128], *text;
	size_t len;
	int st;

	snprintf(server, sizeof(server), "127.0.0.1:%d", g.port);
	snprintf(r, sizeof(r), "%.0f", rate);
	snprintf(w, sizeof(w), "%.3f", warmup_s);
	snprintf(d, sizeof(d), "%.3f", window_s);
	snprintf(conns, sizeof(conns), "%d", CONNS);
	snprintf(keys, sizeof(keys), "%d", KEYS);
	snprintf(prio, sizeof(prio), "%d", FIFO_PRIO);
	snprintf(cpu, sizeof(cpu), "%d", g.cpu_a);
	snprintf(late, sizeof(late), "%d", LATE_US);
	snprintf(json_path, sizeof(json_path), "%s/lg.json", g.dir);
	log_path(log, sizeof(log), "loadgen");
	unlink(json_path);
	t0 = bproc_now_s();
	g.lg_pid = spawn(&sp);
	/* Preload, warm-up, window, at most 1 s of grace, and slack. */
	st = bproc_wait_until(g.lg_pid, t0 + warmup_s + window_s + 30, &ru);
	res.cpu_share = bench_rusage_s(&ru) / (bproc_now_s() - t0);
	if (st < 0)
		bproc_kill_group(&g.lg_pid);
	g.lg_pid = 0;
	if (st < 0 || !WIFEXITED(st) || WEXITSTATUS(st))
		bench_die("the load generator %s (its log follows).",
			  st < 0 ? "did not finish in time" : "failed");
	text = bench_read_file(json_path, &len);
	doc = text ? json_parse(text, len, err, sizeof(err)) : NULL;
	free(text);
	step = doc ? json_get(json_root(doc), "steps") : NULL;
	if (!step || step->type != JSON_ARR || step->len != 1)
		bench_die("cannot read the load generator's results in %s.",
			  json_path);
	step = step->kids[0];
	res.achieved = json_num(step, "achieved");
	res.p99_us = json_num(step, "p99_us");
	res.p999_us = json_num(step, "p999_us");
	res.typ_p99_us = json_num(step, "typ_p99_us");
	res.scheduled = json_num(step, "scheduled");
	res.late = json_num(step, "late_sends") -
		   json_num(step, "late_waited_for_conn");
	json_free(doc);
	return res;
}

/* ---- cleanup ------------------------------------------------------------------ */

/* After a failure: the end of every log, before they go with the
 * temporary directory. */
static void dump_logs(void)
{
	static const char *const names[] = { "atolld", "tools", "kv",
					     "antagonist", "loadgen" };

	for (size_t i = 0; i < ARRAY_SIZE(names); i++) {
		char path[128];
		size_t len, start;
		char *text = bench_read_file(log_path(path, sizeof(path), names[i]),
				       &len);
		int lines = 0;

		if (text && len) {
			for (start = len - 1; start > 0 && lines <= 20; start--)
				lines += text[start - 1] == '\n';
			fprintf(stderr, "---- %s.log%s ----\n%s", names[i],
				start ? " (its end)" : "", text + start);
		}
		free(text);
	}
}

/* The whole run's time limit (SIGALRM). */
static int watchdog_s(void)
{
	return bench_quick() ? 150 : 3600;
}

/* At exit (sig 0) and on a fatal signal sig. */
static void cleanup(int sig)
{
	static bool started;

	if (sig) {
		/* Interrupted, nothing to explain; the watchdog's alarm is
		 * a hang. */
		g.quiet_exit = sig != SIGALRM;
		if (sig == SIGALRM)
			fprintf(stderr, "bench: the run took longer than its "
				"%d s limit; stopped.\n", watchdog_s());
	}
	/* Once: a failure inside it, or a signal, must not start it over. */
	if (started)
		return;
	started = true;
	bproc_kill_group(&g.lg_pid);
	bproc_kill_group(&g.ant_pid);
	bproc_kill_group(&g.kv_pid);
	atolld_stop();
	if (g.dir[0]) {
		if (!g.quiet_exit)
			dump_logs();
		bproc_rm_tree(g.dir);
	}
	g.dir[0] = '\0';
}

/* ---- measurement ------------------------------------------------------------- */

/* Samples: [setup][antagonist][run]. */
static struct lg_result s_lg[NSETUPS][NANTS][RUNS_MAX];
static double s_work[NSETUPS][NANTS][RUNS_MAX];
static double s_capacity;

static void setup_start(enum setup s)
{
	if (s == CELL) {
		atolld_start();
		cells_create();
	}
	kv_start(s);
}

static void setup_stop(enum setup s)
{
	bproc_kill_group(&g.kv_pid);
	if (s == CELL)
		atolld_stop();
}

/* What atoll-kv sustains alone on its core: the achieved rate under an
 * overload, the median of CALIBRATE_PROBES probes (one unlucky time
 * slice must not set the load of the whole run). Sets the offered rate of
 * every measurement. */
static void calibrate(void)
{
	double probe[CALIBRATE_PROBES];

	for (int i = 0; i < CALIBRATE_PROBES; i++)
		probe[i] = loadgen_run(2e6, 0.2, bench_pick(1.5, 0.5),
				       i == 0).achieved;
	s_capacity = bench_median(probe, CALIBRATE_PROBES);
	fprintf(stderr, "atoll-kv alone on one core sustains %.0f req/s "
		"(median of %d probes, %.0f..%.0f).\n", s_capacity,
		CALIBRATE_PROBES, bench_min(probe, CALIBRATE_PROBES),
		bench_max(probe, CALIBRATE_PROBES));
}

/* The generator runs at SCHED_FIFO and polls without sleeping while a
 * request is outstanding, up to its --poll-max budget (80% of its cpu
 * time), under the kernel's real-time budget. Past that budget it sleeps
 * for replies, and their wake-ups would add to every latency measured.
 * So the rate comes down from LOAD_SHARE of the capacity until the
 * generator, alone with atoll-kv, uses at most GEN_CPU_MAX of its CPU. */
static void fit_rate(void)
{
	g.rate = fmax(RATE_FLOOR, round(LOAD_SHARE * s_capacity / 100) * 100);
	for (;;) {
		g.gen_cpu = loadgen_run(g.rate, 0.2, bench_pick(1, 0.5),
					false).cpu_share;
		if (g.gen_cpu <= GEN_CPU_MAX || g.rate <= RATE_FLOOR)
			break;
		g.rate = fmax(RATE_FLOOR, round(0.7 * g.rate / 100) * 100);
	}
	fprintf(stderr, "offered rate: %.0f req/s (%.0f%% of it; the "
		"generator used %.0f%% of its CPU).\n", g.rate,
		100 * g.rate / s_capacity, 100 * g.gen_cpu);
}

static void measure_one(enum setup s, enum ant a, int run)
{
	double life = RAMP_MS / 1e3 + g.warmup_s + g.window_s + 10;
	struct lg_result *r = &s_lg[s][a][run];
	double t0 = bproc_now_s();

	if (a != ALONE) {
		ant_start(s, a, life);
		bproc_sleep_ms(RAMP_MS);
	}
	*r = loadgen_run(g.rate, g.warmup_s, g.window_s, false);
	s_work[s][a][run] = a == ALONE ? NAN : ant_stop(a, bproc_now_s() - t0);
	bproc_sleep_ms(SETTLE_MS);
	fprintf(stderr, "  run %d, %-11s %-8s p99 %7.1f us  p99.9 %7.1f us"
		"  late sends %.0f  generator CPU %.0f%%\n", run + 1,
		setup_name[s], ants[a].name, r->p99_us, r->p999_us, r->late,
		100 * r->cpu_share);
}

static void phase(enum setup s, int run)
{
	setup_start(s);
	if (run == 0 && s == CELL) {
		calibrate();
		fit_rate();
	} else {	/* the keys, and a warm server */
		loadgen_run(g.rate, 0.1, 0.2, true);
	}
	if (s == PLAIN)
		g.kv_pinned = unpin_threads(g.kv_pid);
	for (int i = 0; i < NANTS; i++)
		measure_one(s, (enum ant)((i + run) % NANTS), run);
	setup_stop(s);
}

static void measure(void)
{
	for (int run = 0; run < g.runs; run++) {
		/* The cell goes first in run 0: it calibrates the rate. */
		phase(run % 2 ? PLAIN : CELL, run);
		phase(run % 2 ? CELL : PLAIN, run);
	}
}

/* ---- the report ------------------------------------------------------------- */

/* The percentiles with rows: p99 and p99.9 of the whole window, and the
 * typical p99 (loadgen's median of the 10 ms slices' p99s), which a
 * stall of the whole machine (another VM's turn on the host) moves
 * little, so it shows what a cell isolates from what it cannot. */
enum pct { P99, P999, TYP_P99, NPCTS };

static const char *const pct_name[NPCTS] = { "p99", "p99.9", "typical p99" };

static double lat(const struct lg_result *r, enum pct p)
{
	return p == P999 ? r->p999_us : p == TYP_P99 ? r->typ_p99_us :
	       r->p99_us;
}

/* Per-run slowdowns of setup s under antagonist a, in %. An unanswered
 * percentile (infinite) is capped at the window: the slowdown is then a
 * lower bound, and *capped says so. */
static void slowdowns(enum setup s, enum ant a, enum pct p, double *out,
		      bool *capped)
{
	for (int run = 0; run < g.runs; run++) {
		double with = lat(&s_lg[s][a][run], p);
		double alone = lat(&s_lg[s][ALONE][run], p);

		if (!isfinite(with) || !isfinite(alone)) {
			*capped = true;
			with = fmin(with, g.window_s * 1e6);
			alone = fmin(alone, g.window_s * 1e6);
		}
		out[run] = 100.0 * (with / alone - 1.0);
	}
}

static double median_lat(enum setup s, enum ant a, enum pct p)
{
	double v[RUNS_MAX];

	for (int run = 0; run < g.runs; run++)
		v[run] = lat(&s_lg[s][a][run], p);
	return bench_median(v, (size_t)g.runs);
}

/* The generator's own late sends, in % of the scheduled ones, over all
 * the runs of setup s with the antagonists lo..hi. */
static double late_pct(enum setup s, enum ant lo, enum ant hi)
{
	double late = 0, sched = 0;

	for (int a = lo; a <= (int)hi; a++) {
		for (int run = 0; run < g.runs; run++) {
			late += s_lg[s][a][run].late;
			sched += s_lg[s][a][run].scheduled;
		}
	}
	return sched > 0 ? 100.0 * late / sched : 0;
}

static double median_work(enum setup s, enum ant a)
{
	return bench_median(s_work[s][a], (size_t)g.runs);
}

static const char peer_name[] =
	"the same pair on plain Linux (no cells, default scheduler)";

/* The notes only the p99 row of antagonist a carries. */
static void p99_notes(struct bench_report *rep, int row, enum ant a,
		      double ours_median)
{
	bench_report_note(rep, row, "target", "<= 5%% in the cell: %s",
			  ours_median <= 5 ? "met" : "MISSED");
	bench_report_note(rep, row, "late_sends",
			  "%.2f%% in the cell, %.2f%% on plain Linux",
			  late_pct(CELL, a, a), late_pct(PLAIN, a, a));
	bench_report_note(rep, row, "batch_work_cell_vs_plain", "%.0f%%",
			  100 * median_work(CELL, a) / median_work(PLAIN, a));
}

/* The row "<percentile> slowdown vs alone: <antagonist>". */
static void add_row(struct bench_report *rep, enum ant a, enum pct p)
{
	const char *pct = pct_name[p];
	double ours[RUNS_MAX], peer[RUNS_MAX];
	bool capped[NSETUPS] = { false, false };
	char metric[96];
	int row;

	slowdowns(CELL, a, p, ours, &capped[CELL]);
	slowdowns(PLAIN, a, p, peer, &capped[PLAIN]);
	snprintf(metric, sizeof(metric), "%s slowdown vs alone: %s", pct,
		 ants[a].name);
	row = bench_report_row(rep, metric, "%", BENCH_LOWER, ours,
			       (size_t)g.runs, peer, (size_t)g.runs,
			       peer_name);
	if (row < 0)
		return;
	bench_report_note(rep, row, "antagonist", "%s", ants[a].what);
	bench_report_note(rep, row, "ours_us", "%s %.1f alone, %.1f with",
			  pct, median_lat(CELL, ALONE, p),
			  median_lat(CELL, a, p));
	bench_report_note(rep, row, "peer_us", "%s %.1f alone, %.1f with",
			  pct, median_lat(PLAIN, ALONE, p),
			  median_lat(PLAIN, a, p));
	if (p == P99)
		p99_notes(rep, row, a, bench_median(ours, (size_t)g.runs));
	if (p == TYP_P99)
		bench_report_note(rep, row, "method", "the median over the "
				  "window's 10 ms slices of each slice's p99: "
				  "a stall of the whole machine spoils a slice "
				  "or two, not the figure");
	if (capped[CELL] || capped[PLAIN])
		bench_report_note(rep, row, "unanswered", "%s: some requests "
				  "got no reply, their latency counted as the "
				  "window (the slowdown is a lower bound)",
				  capped[CELL] ? (capped[PLAIN] ? "both setups" :
				  "in the cell") : "on plain Linux");
}

static void add_rows(struct bench_report *rep)
{
	for (int a = ANT_CPU; a < NANTS; a++) {
		for (int p = 0; p < NPCTS; p++)
			add_row(rep, (enum ant)a, (enum pct)p);
	}
}

/* The highest CPU share the generator used in any measurement. */
static double gen_cpu_max(void)
{
	double m = g.gen_cpu;

	for (int s = 0; s < NSETUPS; s++)
		for (int a = 0; a < NANTS; a++)
			for (int run = 0; run < g.runs; run++)
				m = fmax(m, s_lg[s][a][run].cpu_share);
	return m;
}

/* What the tables show for one antagonist: medians over the runs. */
struct summary {
	double alone_us[NSETUPS], with_us[NSETUPS];	/* p99 */
	double slow[NSETUPS][2];	/* slowdown %, p99 and p99.9 */
	double late[NSETUPS];		/* % of the scheduled sends */
	double work_pct;		/* batch work, cell / plain, % */
};

static struct summary summarize(enum ant a)
{
	struct summary sum;

	for (int s = 0; s < NSETUPS; s++) {
		sum.alone_us[s] = median_lat((enum setup)s, ALONE, P99);
		sum.with_us[s] = median_lat((enum setup)s, a, P99);
		sum.late[s] = late_pct((enum setup)s, a, a);
		for (int p = 0; p < 2; p++) {
			double v[RUNS_MAX];
			bool capped = false;

			slowdowns((enum setup)s, a, (enum pct)p, v, &capped);
			sum.slow[s][p] = bench_median(v, (size_t)g.runs);
		}
	}
	sum.work_pct = 100 * median_work(CELL, a) / median_work(PLAIN, a);
	return sum;
}

/* v with its unit for the table; "-" when unknown, "no reply" when some
 * requests were never answered. */
static void cell_text(char *buf, size_t len, double v, bool sign,
		      const char *unit)
{
	if (isinf(v))
		snprintf(buf, len, "no reply");
	else if (isnan(v))
		snprintf(buf, len, "-");
	else
		snprintf(buf, len, sign ? "%+.0f%s" : "%.0f%s", v, unit);
}

/* The table a newcomer reads, on stdout: p99 alone and with each
 * antagonist, and the slowdowns, in a cell and on plain Linux. */
static void print_table(void)
{
	double worst[NSETUPS] = { -INFINITY, -INFINITY };
	char c[7][16];

	printf("\natoll-kv at %.0f req/s: p99 latency alone and beside each "
	       "antagonist (median of %d run%s)\n\n", g.rate, g.runs,
	       g.runs > 1 ? "s" : "");
	printf("%-10s  %-30s  %-30s  %s\n", "", "---------- in a cell "
	       "----------", "--------- plain Linux ---------", "batch work");
	printf("%-10s  %9s %9s %10s  %9s %9s %10s  %10s\n", "antagonist",
	       "alone", "with", "slowdown", "alone", "with", "slowdown",
	       "cell/plain");
	for (int a = ANT_CPU; a < NANTS; a++) {
		struct summary m = summarize((enum ant)a);

		for (int s = 0; s < NSETUPS; s++) {
			cell_text(c[3 * s], 16, m.alone_us[s], false, " us");
			cell_text(c[3 * s + 1], 16, m.with_us[s], false,
				  " us");
			cell_text(c[3 * s + 2], 16, m.slow[s][0], true, "%");
			worst[s] = fmax(worst[s], m.slow[s][0]);
		}
		cell_text(c[6], 16, m.work_pct, false, "%");
		printf("%-10s  %9s %9s %10s  %9s %9s %10s  %10s\n",
		       ants[a].name, c[0], c[1], c[2], c[3], c[4], c[5], c[6]);
	}
	printf("\nWorst p99 slowdown: %+.0f%% in a cell (target: at most "
	       "+5%%), %+.0f%% on plain Linux.\n", worst[CELL], worst[PLAIN]);
	printf("Sends the load generator made over %d us late by its own "
	       "fault: %.2f%% in the cell setup, %.2f%% on plain Linux\n"
	       "(it used at most %.0f%% of its CPU; past 95%% the kernel "
	       "would throttle it).\n", LATE_US,
	       late_pct(CELL, ALONE, NANTS - 1),
	       late_pct(PLAIN, ALONE, NANTS - 1), 100 * gen_cpu_max());
}

/* Which antagonists meet issue 6's target in the cell. */
static void target_text(struct bench_report *rep)
{
	char missed[128] = "";
	size_t len = 0;
	int met = 0;

	for (int a = ANT_CPU; a < NANTS; a++) {
		if (summarize((enum ant)a).slow[CELL][0] <= 5)
			met++;
		else
			len += (size_t)snprintf(missed + len,
				sizeof(missed) - len, "%s%s", len ? ", " : "",
				ants[a].name);
	}
	bench_report_text(rep, "Target (issue 6): p99 slowdown <= 5%% in "
			  "the cell under each antagonist: met for %d of %d%s%s"
			  "%s.", met, NANTS - 1, met < NANTS - 1 ?
			  " (missed: " : "", missed, met < NANTS - 1 ? ")" :
			  "");
}

/* The same in the .md, with the p99.9 slowdowns and the late sends. */
static void md_table(struct bench_report *rep)
{
	char tab[4096];
	size_t len = 0;

	len += (size_t)snprintf(tab + len, sizeof(tab) - len,
		"atoll-kv at %.0f req/s, medians of %d run%s:\n\n"
		"| antagonist | cell: p99 alone / with (us) | cell: slowdown "
		"p99 / p99.9 | plain: p99 alone / with (us) | plain: slowdown "
		"p99 / p99.9 | late sends cell / plain | batch work, cell / "
		"plain |\n|---|---|---|---|---|---|---|\n", g.rate, g.runs,
		g.runs > 1 ? "s" : "");
	for (int a = ANT_CPU; a < NANTS && len < sizeof(tab); a++) {
		struct summary m = summarize((enum ant)a);

		len += (size_t)snprintf(tab + len, sizeof(tab) - len,
			"| %s | %.1f / %.1f | %+.0f%% / %+.0f%% | %.1f / %.1f "
			"| %+.0f%% / %+.0f%% | %.2f%% / %.2f%% | %.0f%% |\n",
			ants[a].name, m.alone_us[CELL], m.with_us[CELL],
			m.slow[CELL][0], m.slow[CELL][1], m.alone_us[PLAIN],
			m.with_us[PLAIN], m.slow[PLAIN][0], m.slow[PLAIN][1],
			m.late[CELL], m.late[PLAIN], m.work_pct);
	}
	bench_report_text(rep, "%s", tab);
	target_text(rep);
}

static void text_setup(struct bench_report *rep)
{
	bench_report_text(rep,
		"Setup (2 CPUs, %d and %d; atolld enforcement %s). Cell: a "
		"private atolld (--no-irq: loopback traffic raises no device "
		"IRQ) managing both CPUs; LL cell 'kv' on CPU %d runs %s "
		"-t 1 with ATOLL_CELL=kv (%s); CG cell 'batch' on CPU %d "
		"(memory limit %s) runs the antagonist through `atoll run "
		"--cell batch`, with 1 worker. Plain Linux: no atolld, no "
		"cells; the same binaries started with the affinity {%d,%d} "
		"(all of a 2-CPU machine), placed by the default scheduler; "
		"the antagonist has 2 workers.",
		g.cpu_a, g.cpu_b, g.enforcement, g.cpu_b, g.kv,
		g.kv_is_memcached ? "memcached stand-in, no MCP" :
		"registered as an MCP, checked", g.cpu_a, BATCH_MEM, g.cpu_a,
		g.cpu_b);
	if (g.kv_pinned)
		bench_report_text(rep,
			"Standalone, atoll-kv's runtime pins its vcore threads "
			"(%d here) to CPUs of its affinity mask, CPU %d for "
			"-t 1: the load generator's. So that the plain-Linux "
			"peer is the default scheduler's placement, the "
			"benchmark gives those threads the affinity {%d,%d} "
			"back once the server runs.", g.kv_pinned, g.cpu_a,
			g.cpu_a, g.cpu_b);
}

static void text_load(struct bench_report *rep)
{
	bench_report_text(rep,
		"Load, the same in both setups: bench/loadgen outside any "
		"cell at SCHED_FIFO %d pinned to CPU %d, %d connections with "
		"1 request outstanding each, Poisson arrivals at %.0f req/s, "
		"%d keys preloaded, 90%% gets, 32-byte values; %.1f s "
		"warm-up and %.1f s measured per point; latency from the "
		"scheduled send to the reply's last byte. atoll-kv alone on "
		"its core sustained %.0f req/s (the median achieved rate of "
		"%d overload probes at the start); the offered rate is %.0f%% "
		"of that, lowered (x0.7 at a time) while the generator needed "
		"more than %.0f%% of its CPU. The generator polls without "
		"sleeping while a request is outstanding (--spin-us 0: it "
		"sleeps between arrivals otherwise) for at most 80%% of its "
		"CPU time (loadgen --poll-max): past the kernel's real-time "
		"budget (sched_rt_runtime_us, 95%% of each second) a "
		"SCHED_FIFO task is stopped for the rest of the second, a "
		"50 ms stall in every second that would set every p99. At "
		"the rate used it needed %.0f%% of its CPU alone, at most "
		"%.0f%% in any measurement.",
		FIFO_PRIO, g.cpu_a, CONNS, g.rate, KEYS, g.warmup_s,
		g.window_s, s_capacity, CALIBRATE_PROBES,
		100 * g.rate / s_capacity, 100 * GEN_CPU_MAX,
		100 * g.gen_cpu, 100 * gen_cpu_max());
	if (median_lat(CELL, ALONE, P99) > NOISY_ALONE_US)
		bench_report_text(rep,
			"Caution: atoll-kv's p99 alone in its cell was %.0f us, "
			"far above its service time (the calibration puts it "
			"near %.0f us per request): on this machine the tail "
			"is set by something else (vCPU wake-ups, the host, "
			"other processes, which a cell does not keep off its "
			"core unless they are in cells too). Slowdowns smaller "
			"than the run-to-run spread are noise; run it on a "
			"quiet machine for figures to compare with "
			"RainForest's.", median_lat(CELL, ALONE, P99),
			1e6 / s_capacity);
}

static void text_method(struct bench_report *rep)
{
	bench_report_text(rep,
		"Each run starts each setup afresh (the order alternates "
		"between runs), measures atoll-kv alone and beside each "
		"antagonist (the order rotates), then tears it down. Slowdown "
		"= p99 (p99.9) with the antagonist / p99 (p99.9) alone in the "
		"same phase - 1, per run; the rows and the slowdown columns "
		"are the medians of those per-run slowdowns, which need not "
		"equal the ratio of the median p99s shown beside them. 'late "
		"sends' are the generator's own (sent more than %d us after "
		"schedule while a connection was free), in %% of the "
		"scheduled requests: near zero means the antagonist did not "
		"delay the load. 'batch work' is the antagonist's rate "
		"(stress-ng bogo-ops/s, compiles/s) in the cell over its rate "
		"on plain Linux: the cell gives it one CPU, shared with the "
		"generator, where plain Linux gives it two.", LATE_US);
	bench_report_text(rep,
		"How this differs from RainForest 6.2: there each OS "
		"instance has 3 (6.2.1) or 6 (6.2.3) cores and 8-16 GB on a "
		"big NUMA server, the client runs on another machine, and "
		"the antagonists are SPEC CPU, cachebench, netperf, IOzone "
		"and PARSEC. Here the whole machine is 2 vCPUs of a VM: each "
		"cell has one CPU, the load generator must share CPU %d with "
		"the batch cell (at real-time priority so the antagonist "
		"cannot delay it, but it takes CPU time from the batch "
		"work), the traffic is loopback, and the antagonists are "
		"stress-ng stressors and gcc. Shared caches, memory "
		"bandwidth and the kernel are not partitioned by a cell (a "
		"RainForest subOS has a kernel of its own): the cache, "
		"memory and compile rows show that part. One part of it is "
		"the generator's, not atoll-kv's: on CPU %d a batch worker "
		"that is in the kernel (page faults, fork and exec) delays "
		"even a SCHED_FIFO task's wake-ups, so replies are read "
		"later; the late-send column shows where this reaches the "
		"sends.", g.cpu_a, g.cpu_a);
}

/* ---- main ---------------------------------------------------------------------- */

static void check_environment(void)
{
	int cpus[CPU_SETSIZE], n;

	if (geteuid() != 0)
		skip("the colocation benchmark creates cells (cgroups) and "
		     "runs the load generator at SCHED_FIFO: it needs root "
		     "(uid %d).", (int)geteuid());
	n = bench_cpus(cpus, CPU_SETSIZE);
	if (n < 2)
		skip("it needs two CPUs (one per cell), this process may use "
		     "%d.", n);
	g.cpu_a = cpus[0];
	g.cpu_b = cpus[1];
	if (!bproc_in_path("stress-ng"))
		skip("stress-ng is not installed (the antagonists); "
		     "scripts/deps.sh installs it.");
	if (!bproc_in_path("gcc"))
		skip("gcc is not installed (the compile antagonist).");
	g.atolld = find_tool("ATOLL_ATOLLD", ATOLL_ATOLLD_PATH, "atolld");
	g.atoll = find_tool("ATOLL_CLI", ATOLL_CLI_PATH, "the atoll CLI");
	g.kv = find_tool("ATOLL_KV", ATOLL_KV_PATH, "atoll-kv");
	g.loadgen = find_tool("LOADGEN", LOADGEN_PATH, "loadgen");
	g.kv_is_memcached = strstr(g.kv, "memcached") != NULL;
}

static void make_tempdir(void)
{
	snprintf(g.dir, sizeof(g.dir), "/tmp/atoll-coloc.XXXXXX");
	if (!mkdtemp(g.dir)) {
		g.dir[0] = '\0';
		bench_die("cannot create a temporary directory: %s.",
			  strerror(errno));
	}
	snprintf(g.sock, sizeof(g.sock), "%s/atolld.sock", g.dir);
	snprintf(g.state, sizeof(g.state), "%s/state", g.dir);
	snprintf(g.name, sizeof(g.name), "coloc-%d", (int)getpid());
}

int main(void)
{
	struct bench_report *rep;
	char runs[16];

	check_environment();
	g.runs = bench_quick() ? 1 : bench_runs();
	if (getenv("BENCH_RUNS") && getenv("BENCH_RUNS")[0])
		g.runs = bench_runs();
	if (g.runs > RUNS_MAX)
		g.runs = RUNS_MAX;
	/* So that benchlib's header gives the real number of runs. */
	snprintf(runs, sizeof(runs), "%d", g.runs);
	setenv("BENCH_RUNS", runs, 1);
	g.warmup_s = bench_pick(1.0, 0.2);
	g.window_s = bench_pick(5.0, 1.2);

	bproc_cleanup_on(cleanup, (const int[]){ SIGINT, SIGTERM, SIGHUP,
						 SIGALRM }, 4);
	/* Output to a closed pipe must not skip the cleanup. */
	signal(SIGPIPE, SIG_IGN);
	alarm((unsigned)watchdog_s());
	make_tempdir();
	write_compile_source();

	rep = bench_report_open("colocation");
	if (!rep)
		return 1;
	/* One look at atolld first: skip cleanly without cgroups. */
	atolld_start();
	atolld_check_cgroups();
	atolld_stop();

	measure();
	g.quiet_exit = true;
	add_rows(rep);
	print_table();
	md_table(rep);
	text_setup(rep);
	text_load(rep);
	text_method(rep);
	return bench_report_close(rep) ? 1 : 0;
}
