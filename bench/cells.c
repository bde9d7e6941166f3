/* cells.c - `make bench B=cells`: how long atolld takes to create, destroy
 * and resize a cell, as a client sees it, against the same cgroup writes
 * done directly by this program in the same run.
 *
 * Method. The benchmark starts a private atolld (its own temporary state
 * directory, socket and --name, --no-irq) managing the last two CPUs of
 * its affinity mask, A < B (on a 2-CPU machine: 0 and 1; a one-core add or
 * remove needs two managed cores). It keeps one connection to the control
 * socket and times each request from the write of the JSON line to the
 * read of the reply's newline (CLOCK_MONOTONIC).
 *
 *  - create / destroy: cell "bc" on CPU B with a 512 MiB memory limit and
 *    no process; destroy with grace_ms 0.
 *  - one core: cell "rz", holding one idle child process, goes from
 *    cpus "B" to "A,B" (add) and back (remove).
 *  - 512 MiB: the same cell's memory limit goes from 512 MiB to 1 GiB
 *    (add) and back (remove).
 *
 * The same-run peer is the kernel operation alone: the cgroup directories
 * and files atolld's enforcer writes (src/super/cgroup.c), written by this
 * program under a sibling root of its own (atollbench-peer-<pid>) with its
 * own idle child in the resized cgroup. So each row's ratio is atolld's
 * overhead (parsing, validation, journal with fsync, affinity rewrite,
 * reply) over the bare kernel operation. RainForest's Table 4 and its LXC
 * row are published figures, quoted beside the rows, not measured here.
 *
 * Each run does every operation once, ours and peer back to back, the
 * order alternating between runs. Runs: 100, or 20 with BENCH_QUICK
 * (BENCH_RUNS overrides). Skips (exit 77) when not root, with fewer than
 * two CPUs, or when atolld finds no usable cgroup hierarchy. Everything
 * it creates (cells, cgroups, processes, the temporary directory) is
 * removed at exit, on failure too.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/magic.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <atoll/proto.h>

#include "benchlib.h"
#include "benchproc.h"
#include "json.h"

#define RUNS_FULL 100
#define RUNS_QUICK 20
#define RUNS_MAX 1000
#define MIB (1024ll * 1024)
#define MEM_BASE (512 * MIB)
#define MEM_STEP (512 * MIB)

enum op { OP_CREATE, OP_DESTROY, OP_ADD_CORE, OP_DEL_CORE, OP_ADD_MEM,
	  OP_DEL_MEM, NOPS };

static const struct {
	const char *metric;
	const char *rf;		/* RainForest, Table 4 (published) */
	const char *lxc;	/* LXC, same table (published) */
	double target_p99_us;	/* issue 4's target, 0 = none */
} g_ops[NOPS] = {
	[OP_CREATE] = { "cell create", "6.1 s", "2.1 s", 10000 },
	[OP_DESTROY] = { "cell destroy", "0 s", "0 s", 0 },
	[OP_ADD_CORE] = { "add one core", "66 ms", "2 ms", 1000 },
	[OP_DEL_CORE] = { "remove one core", "54 ms", "2 ms", 1000 },
	[OP_ADD_MEM] = { "add 512 MiB (memory limit)", "20 ms", "2 ms", 0 },
	[OP_DEL_MEM] = { "remove 512 MiB (memory limit)", "60 ms", "2 ms", 0 },
};

enum enf { ENF_NONE, ENF_V1, ENF_V2 };

static struct {
	char dir[64];		/* temporary directory, "" = none */
	char sock[80], state[80], log[80], name[40];
	pid_t atolld;
	int fd;			/* connection to atolld, -1 = none */
	enum enf enf;
	char roots[3][PATH_MAX];	/* atolld's cgroup roots */
	int nroots;
	char mems[64];		/* memory nodes (from atolld's root) */
	/* the peer: our own roots, v1 cpuset + memory or v2 alone */
	char peer_cpu[PATH_MAX], peer_mem[PATH_MAX];
	bool peer_made;
	pid_t kid_ours, kid_peer;	/* idle processes in the "rz" cells */
	int cpu_a, cpu_b;
} g = { .fd = -1 };

/* ---- small helpers ------------------------------------------------------ */

/* Write s to dir/file (one write(2), as atolld does). 0 or -errno. */
static int put(const char *dir, const char *file, const char *s)
{
	char p[PATH_MAX + 64];
	size_t n = strlen(s);
	ssize_t w;
	int fd, err = 0;

	snprintf(p, sizeof(p), "%s/%s", dir, file);
	fd = open(p, O_WRONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	w = write(fd, s, n);
	if (w < 0)
		err = -errno;
	else if ((size_t)w != n)
		err = -EIO;
	if (close(fd) && !err)
		err = -errno;
	return err;
}

static void put_or_die(const char *dir, const char *file, const char *s)
{
	int r = put(dir, file, s);

	if (r)
		bench_die("cannot write '%s' to %s/%s: %s.", s, dir, file,
			  strerror(-r));
}

static void mkdir_or_die(const char *d)
{
	if (mkdir(d, 0755))
		bench_die("cannot create %s: %s.", d, strerror(errno));
}

static bool exists(const char *p)
{
	struct stat st;

	return stat(p, &st) == 0;
}

/* ---- atolld --------------------------------------------------------------- */

/* Send one request line (without its newline) and read the reply line
 * into reply. Returns the round-trip time in ns, or 0 when the connection
 * failed (reply then holds a reason). */
static uint64_t roundtrip(const char *req, char *reply, size_t cap)
{
	uint64_t t0, t1;

	t0 = bproc_now_ns();
	if (bproc_ctl_line(g.fd, req, reply, cap) < 0)
		return 0;
	t1 = bproc_now_ns();
	return t1 - t0 ? t1 - t0 : 1;
}

/* A request that must succeed; returns its parsed reply (caller frees). */
static struct json_doc *request_doc(const char *req, uint64_t *ns)
{
	static char reply[1 << 20];
	char err[128];
	const struct json *ok, *e;
	struct json_doc *d;
	uint64_t t;

	if (g.fd < 0)
		bench_die("no connection to atolld for %s.", req);
	t = roundtrip(req, reply, sizeof(reply));
	if (!t)
		bench_die("request %s: %s (atolld log: %s).", req, reply,
			  g.log);
	d = json_parse(reply, strlen(reply), err, sizeof(err));
	if (!d)
		bench_die("request %s: unparsable reply (%s): %s", req, err,
			  reply);
	ok = json_get(json_root(d), "ok");
	if (!ok || ok->type != JSON_BOOL || !ok->b) {
		e = json_get(json_get(json_root(d), "error"), "message");
		bench_die("request %s refused: %s", req,
			  e && e->type == JSON_STR ? e->s : reply);
	}
	if (ns)
		*ns = t;
	return d;
}

static double request_us(const char *req)
{
	uint64_t ns;

	json_free(request_doc(req, &ns));
	return (double)ns / 1e3;
}

static const char *find_atolld(char *buf, size_t len)
{
	const char *path = bproc_find("ATOLL_ATOLLD", ATOLL_ATOLLD_PATH);
	ssize_t n;
	char *slash;

	if (path)
		return path;
	/* The build tree's layout: bench/bench-cells, src/super/atolld. */
	n = readlink("/proc/self/exe", buf, len - 32);
	if (n > 0) {
		buf[n] = '\0';
		slash = strrchr(buf, '/');
		if (slash) {
			strcpy(slash, "/../src/super/atolld");
			if (access(buf, X_OK) == 0)
				return buf;
		}
	}
	return NULL;
}

static void atolld_start(const char *exe)
{
	char cpus[32];
	/* Should this benchmark die by SIGKILL, atolld stops too. */
	struct bproc_atolld a = { .exe = exe, .argv0 = "atolld",
				  .state = g.state, .sock = g.sock,
				  .cpus = cpus, .name = g.name, .grace_ms = 0,
				  .log = g.log, .deathsig = SIGTERM };
	int st = 0;

	snprintf(cpus, sizeof(cpus), "%d,%d", g.cpu_a, g.cpu_b);
	g.fd = bproc_atolld_start(&a, &g.atolld, &st);
	if (g.fd == -ECHILD)
		bench_die("atolld (%s) exited at start (status 0x%x); see %s.",
			  exe, st, g.log);
	if (g.fd < 0)
		bench_die("atolld did not open %s within 5 s; see %s.", g.sock,
			  g.log);
}

/* Ask atolld for its enforcement and cgroup roots. */
static void atolld_status(char *enf, size_t len)
{
	struct json_doc *d = request_doc("{\"op\":\"status\"}", NULL);
	const struct json *e = json_get(json_root(d), "enforcement");
	const struct json *roots = json_get(json_root(d), "cgroup_roots");

	snprintf(enf, len, "%s", e && e->type == JSON_STR ? e->s : "?");
	g.enf = !strcmp(enf, PROTO_ENF_V1) ? ENF_V1 :
		!strcmp(enf, PROTO_ENF_V2) ? ENF_V2 : ENF_NONE;
	for (size_t i = 0; roots && roots->type == JSON_ARR &&
	     i < roots->len && i < 3; i++)
		if (roots->kids[i]->type == JSON_STR)
			snprintf(g.roots[g.nroots++], sizeof(g.roots[0]), "%s",
				 roots->kids[i]->s);
	json_free(d);
}

/* ---- the peer: the same cgroup writes, done directly ----------------------- */

static void sibling(const char *root, char *out, size_t len)
{
	const char *slash = strrchr(root, '/');
	int base = slash ? (int)(slash - root) : 0;

	snprintf(out, len, "%.*s/atollbench-peer-%d", base, root, (int)getpid());
}

/* Mirror of atolld's enf_setup: a root per hierarchy with the managed cpus
 * and the memory nodes. Not timed. */
static void peer_setup(void)
{
	char cpus[32], p[PATH_MAX + 32];
	FILE *f;

	snprintf(p, sizeof(p), "%s/cpuset.mems", g.roots[0]);
	f = fopen(p, "re");
	if (!f || !fgets(g.mems, sizeof(g.mems), f))
		bench_die("cannot read %s.", p);
	fclose(f);
	g.mems[strcspn(g.mems, "\n")] = '\0';
	snprintf(cpus, sizeof(cpus), "%d,%d", g.cpu_a, g.cpu_b);

	sibling(g.roots[0], g.peer_cpu, sizeof(g.peer_cpu));
	if (g.enf == ENF_V1) {
		if (g.nroots < 2)
			bench_die("atolld reported %d cgroup roots, want 2.",
				  g.nroots);
		sibling(g.roots[1], g.peer_mem, sizeof(g.peer_mem));
	}
	g.peer_made = true;
	mkdir_or_die(g.peer_cpu);
	if (g.enf == ENF_V1) {
		put_or_die(g.peer_cpu, "cpuset.mems", g.mems);
		put_or_die(g.peer_cpu, "cpuset.cpus", cpus);
		mkdir_or_die(g.peer_mem);
	} else {
		put_or_die(g.peer_cpu, "cpuset.cpus", cpus);
		put_or_die(g.peer_cpu, "cpuset.mems", g.mems);
		put_or_die(g.peer_cpu, "cgroup.subtree_control",
			   "+cpuset +memory");
	}
}

static void cell_path(const char *root, const char *cell, char *out,
		      size_t len)
{
	snprintf(out, len, "%s/%s", root, cell);
}

/* Each peer operation returns its time in us. */
static double peer_create(const char *cell, const char *cpus, long long mem)
{
	char d[PATH_MAX + 64], m[PATH_MAX + 64], val[32];
	uint64_t t0 = bproc_now_ns();

	snprintf(val, sizeof(val), "%lld", mem);
	cell_path(g.peer_cpu, cell, d, sizeof(d));
	mkdir_or_die(d);
	if (g.enf == ENF_V1) {
		put_or_die(d, "cpuset.mems", g.mems);
		put_or_die(d, "cpuset.cpus", cpus);
		cell_path(g.peer_mem, cell, m, sizeof(m));
		mkdir_or_die(m);
		put_or_die(m, "memory.limit_in_bytes", val);
	} else {
		put_or_die(d, "cpuset.cpus", cpus);
		put_or_die(d, "cpuset.mems", g.mems);
		put_or_die(d, "memory.max", val);
	}
	return (double)(bproc_now_ns() - t0) / 1e3;
}

static double peer_destroy(const char *cell)
{
	char d[PATH_MAX + 64];
	uint64_t t0 = bproc_now_ns();
	int r;

	if (g.enf == ENF_V1) {
		cell_path(g.peer_mem, cell, d, sizeof(d));
		r = bproc_rmdir_retry(d);
		if (r)
			bench_die("cannot remove %s: %s.", d, strerror(-r));
	}
	cell_path(g.peer_cpu, cell, d, sizeof(d));
	r = bproc_rmdir_retry(d);
	if (r)
		bench_die("cannot remove %s: %s.", d, strerror(-r));
	return (double)(bproc_now_ns() - t0) / 1e3;
}

static double peer_set(const char *cell, const char *file, const char *val)
{
	char d[PATH_MAX + 64];
	uint64_t t0 = bproc_now_ns();

	cell_path(!strcmp(file, "memory.limit_in_bytes") ? g.peer_mem :
		  g.peer_cpu, cell, d, sizeof(d));
	put_or_die(d, file, val);
	return (double)(bproc_now_ns() - t0) / 1e3;
}

static void peer_attach(const char *cell, pid_t pid)
{
	char d[PATH_MAX + 64], val[32];

	snprintf(val, sizeof(val), "%d", (int)pid);
	if (g.enf == ENF_V1) {
		cell_path(g.peer_mem, cell, d, sizeof(d));
		put_or_die(d, "cgroup.procs", val);
	}
	cell_path(g.peer_cpu, cell, d, sizeof(d));
	put_or_die(d, "cgroup.procs", val);
}

/* ---- cleanup ------------------------------------------------------------------ */

/* At exit (sig 0), on a fatal signal and after each atolld instance. */
static void cleanup(int sig)
{
	char reply[4096];

	(void)sig;
	bproc_stop(&g.kid_ours, SIGKILL, -1, -1);
	bproc_stop(&g.kid_peer, SIGKILL, -1, -1);
	if (g.atolld > 0) {
		/* Destroy our cells so that a clean stop removes the roots. */
		if (g.fd >= 0) {
			roundtrip("{\"op\":\"cell.destroy\",\"name\":\"bc\","
				  "\"grace_ms\":0}", reply, sizeof(reply));
			roundtrip("{\"op\":\"cell.destroy\",\"name\":\"rz\","
				  "\"grace_ms\":0}", reply, sizeof(reply));
		}
		bproc_stop(&g.atolld, SIGTERM, 3, -1);
	}
	if (g.fd >= 0)
		close(g.fd);
	g.fd = -1;
	/* Whatever a failure left behind (no-ops after a clean stop). */
	for (int i = 0; i < g.nroots; i++)
		bproc_purge_cgroup(g.roots[i]);
	if (g.peer_made) {
		bproc_purge_cgroup(g.peer_cpu);
		if (g.peer_mem[0])
			bproc_purge_cgroup(g.peer_mem);
		g.peer_made = false;
	}
	if (g.dir[0])
		bproc_rm_tree(g.dir);
	g.dir[0] = '\0';
}

/* An idle child process (for the resized cells). */
static pid_t idle_kid(void)
{
	pid_t pid = fork();

	if (pid < 0)
		bench_die("fork: %s.", strerror(errno));
	if (pid == 0) {
		for (;;)
			pause();
	}
	return pid;
}

static int affinity_count(pid_t pid)
{
	cpu_set_t set;

	if (sched_getaffinity(pid, sizeof(set), &set))
		return -1;
	return CPU_COUNT(&set);
}

/* ---- measurement ------------------------------------------------------------- */

/* Variants: atolld's state directory on the disk (as the systemd unit's
 * /var/lib/atoll) or on tmpfs. */
enum { V_DISK, V_TMPFS, NVARS };
static int g_var;
static double s_ours[NVARS][NOPS][RUNS_MAX], s_peer[NVARS][NOPS][RUNS_MAX];
static double s_journal[NVARS][RUNS_MAX];

/* Not a peer: what one journal rewrite of the kind atolld does after every
 * change costs on this file system (a 1 KiB temp file written, fsync,
 * rename, fsync of the directory), in atolld's state directory. Returns
 * its time in us. */
static double journal_probe(void)
{
	char tmp[128], dst[128], buf[1024];
	uint64_t t0;
	int fd, dfd;

	memset(buf, ' ', sizeof(buf));
	snprintf(tmp, sizeof(tmp), "%s/probe.tmp", g.dir);
	snprintf(dst, sizeof(dst), "%s/probe.json", g.dir);
	t0 = bproc_now_ns();
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0 || write(fd, buf, sizeof(buf)) != (ssize_t)sizeof(buf) ||
	    fsync(fd) || close(fd) || rename(tmp, dst))
		bench_die("journal probe in %s: %s.", g.dir, strerror(errno));
	dfd = open(g.dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd < 0 || fsync(dfd) || close(dfd))
		bench_die("journal probe: fsync of %s: %s.", g.dir,
			  strerror(errno));
	return (double)(bproc_now_ns() - t0) / 1e3;
}

static void measure(int runs)
{
	char req[512], one[16], two[32], base[32], big[32];

	snprintf(one, sizeof(one), "%d", g.cpu_b);
	snprintf(two, sizeof(two), "%d,%d", g.cpu_a, g.cpu_b);
	snprintf(base, sizeof(base), "%lld", MEM_BASE);
	snprintf(big, sizeof(big), "%lld", MEM_BASE + MEM_STEP);

	/* Create / destroy; one pair of each first, not recorded. */
	for (int r = -1; r < runs; r++) {
		double o, p;

		snprintf(req, sizeof(req),
			 "{\"op\":\"cell.create\",\"name\":\"bc\",\"cpus\":\"%s\","
			 "\"mem\":%lld}", one, MEM_BASE);
		BENCH_PAIR(r + 2, o = request_us(req),
		     p = peer_create("bc", one, MEM_BASE));
		if (r >= 0) {
			s_ours[g_var][OP_CREATE][r] = o;
			s_peer[g_var][OP_CREATE][r] = p;
		}
		BENCH_PAIR(r + 2, o = request_us("{\"op\":\"cell.destroy\","
					   "\"name\":\"bc\",\"grace_ms\":0}"),
		     p = peer_destroy("bc"));
		if (r >= 0) {
			s_ours[g_var][OP_DESTROY][r] = o;
			s_peer[g_var][OP_DESTROY][r] = p;
		}
	}

	/* The resized cells, each with one idle process. */
	snprintf(req, sizeof(req),
		 "{\"op\":\"cell.create\",\"name\":\"rz\",\"cpus\":\"%s\","
		 "\"mem\":%lld}", one, MEM_BASE);
	request_us(req);
	peer_create("rz", one, MEM_BASE);
	g.kid_ours = idle_kid();
	g.kid_peer = idle_kid();
	snprintf(req, sizeof(req),
		 "{\"op\":\"cell.attach\",\"name\":\"rz\",\"pid\":%d}",
		 (int)g.kid_ours);
	request_us(req);
	peer_attach("rz", g.kid_peer);
	if (affinity_count(g.kid_ours) != 1 || affinity_count(g.kid_peer) != 1)
		bench_die("the idle processes are not confined to CPU %d.",
			  g.cpu_b);

	for (int r = -1; r < runs; r++) {
		double o, p;

		snprintf(req, sizeof(req), "{\"op\":\"cell.resize\","
			 "\"name\":\"rz\",\"cpus\":\"%s\"}", two);
		BENCH_PAIR(r + 2, o = request_us(req),
		     p = peer_set("rz", "cpuset.cpus", two));
		if (r < 0 && (affinity_count(g.kid_ours) != 2 ||
			      affinity_count(g.kid_peer) != 2))
			bench_die("after adding a core, the idle processes "
				  "may use %d (ours) and %d (peer) CPUs, "
				  "not 2.", affinity_count(g.kid_ours),
				  affinity_count(g.kid_peer));
		if (r >= 0) {
			s_ours[g_var][OP_ADD_CORE][r] = o;
			s_peer[g_var][OP_ADD_CORE][r] = p;
		}
		snprintf(req, sizeof(req), "{\"op\":\"cell.resize\","
			 "\"name\":\"rz\",\"cpus\":\"%s\"}", one);
		BENCH_PAIR(r + 2, o = request_us(req),
		     p = peer_set("rz", "cpuset.cpus", one));
		if (r >= 0) {
			s_ours[g_var][OP_DEL_CORE][r] = o;
			s_peer[g_var][OP_DEL_CORE][r] = p;
		}
		snprintf(req, sizeof(req), "{\"op\":\"cell.resize\","
			 "\"name\":\"rz\",\"mem\":%s}", big);
		BENCH_PAIR(r + 2, o = request_us(req),
		     p = peer_set("rz", g.enf == ENF_V1 ?
				  "memory.limit_in_bytes" : "memory.max",
				  big));
		if (r >= 0) {
			s_ours[g_var][OP_ADD_MEM][r] = o;
			s_peer[g_var][OP_ADD_MEM][r] = p;
		}
		snprintf(req, sizeof(req), "{\"op\":\"cell.resize\","
			 "\"name\":\"rz\",\"mem\":%s}", base);
		BENCH_PAIR(r + 2, o = request_us(req),
		     p = peer_set("rz", g.enf == ENF_V1 ?
				  "memory.limit_in_bytes" : "memory.max",
				  base));
		if (r >= 0) {
			s_ours[g_var][OP_DEL_MEM][r] = o;
			s_peer[g_var][OP_DEL_MEM][r] = p;
		}
		o = journal_probe();
		if (r >= 0)
			s_journal[g_var][r] = o;
	}

	/* Tear down: the processes first, so destroy has nothing to stop. */
	bproc_stop(&g.kid_ours, SIGKILL, -1, -1);
	bproc_stop(&g.kid_peer, SIGKILL, -1, -1);
	request_us("{\"op\":\"cell.destroy\",\"name\":\"rz\",\"grace_ms\":0}");
	peer_destroy("rz");
}

/* ---- main --------------------------------------------------------------------- */

static int runs_wanted(void)
{
	const char *e = getenv("BENCH_RUNS");
	long v;
	char *end;

	if (e && e[0]) {
		v = strtol(e, &end, 10);
		if (!*end && v > 0)
			return v > RUNS_MAX ? RUNS_MAX : (int)v;
	}
	return bench_quick() ? RUNS_QUICK : RUNS_FULL;
}

static bool is_tmpfs(const char *dir)
{
	struct statfs sf;

	return statfs(dir, &sf) == 0 && sf.f_type == TMPFS_MAGIC;
}

/* One private atolld with its state under base, measured, then stopped;
 * checks that nothing is left. Returns false (after cleaning up) to skip
 * when atolld has no cgroups; enf gets its enforcement. */
static bool run_instance(const char *exe, const char *base, const char *tag,
			 int runs, char *enf, size_t enflen)
{
	snprintf(g.dir, sizeof(g.dir), "%s/atoll-bench-cells-XXXXXX", base);
	if (!mkdtemp(g.dir)) {
		g.dir[0] = '\0';
		bench_die("mkdtemp in %s: %s.", base, strerror(errno));
	}
	snprintf(g.sock, sizeof(g.sock), "%s/sock", g.dir);
	snprintf(g.state, sizeof(g.state), "%s/state", g.dir);
	snprintf(g.log, sizeof(g.log), "%s/atolld.log", g.dir);
	snprintf(g.name, sizeof(g.name), "bench%d%s", (int)getpid(), tag);
	g.nroots = 0;
	g.peer_mem[0] = '\0';

	atolld_start(exe);
	atolld_status(enf, enflen);
	if (g.enf == ENF_NONE) {
		cleanup(0);
		return false;
	}
	peer_setup();
	measure(runs);

	/* A clean stop with no cells removes atolld's roots. */
	cleanup(0);
	for (int i = 0; i < g.nroots; i++)
		if (exists(g.roots[i]))
			bench_die("%s is still there after atolld stopped.",
				  g.roots[i]);
	g.nroots = 0;
	return true;
}

static void add_rows(struct bench_report *rep, int var, size_t n,
		     const char *suffix, bool *missed)
{
	static const char *const rf_cfg[NOPS] = {
		"6 CPUs, 16G RAM", "6 CPUs, 16G RAM", "1 CPU", "1 CPU",
		"512M RAM", "512M RAM",
	};
	char metric[128], peer_name[160];
	int row;

	snprintf(peer_name, sizeof(peer_name),
		 "the same cgroup-%s writes, direct (same run)",
		 g.enf == ENF_V1 ? "v1" : "v2");
	for (int op = 0; op < NOPS; op++) {
		double o99 = bench_percentile(s_ours[var][op], n, 99);

		snprintf(metric, sizeof(metric), "%s%s", g_ops[op].metric,
			 suffix);
		row = bench_report_row(rep, metric, "us", BENCH_LOWER,
				       s_ours[var][op], n, s_peer[var][op], n,
				       peer_name);
		if (row < 0)
			bench_die("cannot add a row: %s.", strerror(-row));
		bench_report_note(rep, row, "ours p50/p99", "%.0f/%.0f us",
				  bench_percentile(s_ours[var][op], n, 50),
				  o99);
		bench_report_note(rep, row, "peer p50/p99", "%.0f/%.0f us",
				  bench_percentile(s_peer[var][op], n, 50),
				  bench_percentile(s_peer[var][op], n, 99));
		if (g_ops[op].target_p99_us > 0) {
			bool ok = o99 <= g_ops[op].target_p99_us;

			if (var == V_DISK)
				*missed |= !ok;
			bench_report_note(rep, row, "target",
					  "p99 <= %g ms: %s",
					  g_ops[op].target_p99_us / 1e3,
					  ok ? "met" : "MISSED");
		}
		bench_report_note(rep, row, "RainForest (Table 4, published)",
				  "%s (%s)", g_ops[op].rf, rf_cfg[op]);
		bench_report_note(rep, row, "LXC (Table 4, published)", "%s",
				  g_ops[op].lxc);
	}
	snprintf(metric, sizeof(metric), "reference: one fsync'd journal "
		 "rewrite%s", suffix);
	row = bench_report_row(rep, metric, "us", BENCH_LOWER, s_journal[var],
			       n, NULL, 0, NULL);
	if (row < 0)
		bench_die("cannot add a row: %s.", strerror(-row));
	bench_report_note(rep, row, "p50/p99", "%.0f/%.0f us",
			  bench_percentile(s_journal[var], n, 50),
			  bench_percentile(s_journal[var], n, 99));
	bench_report_note(rep, row, "what", "not a peer: a 1 KiB temp file "
			  "written, fsync, rename, directory fsync, next to "
			  "atolld's state directory; atolld does this after "
			  "every change");
}

static void side_by_side(struct bench_report *rep, int var, size_t n,
			 const char *title)
{
	char tab[4096];
	size_t len = 0;

	len += (size_t)snprintf(tab + len, sizeof(tab) - len,
		"%s: p50 / p99 over %zu runs, in microseconds. The last two "
		"columns are published figures (RainForest's Table 4), NOT "
		"measured here.\n\n"
		"| operation | atolld request | direct cgroup writes (same "
		"run) | RainForest, Table 4 | LXC, Table 4 |\n"
		"|---|---|---|---|---|\n", title, n);
	for (int op = 0; op < NOPS && len < sizeof(tab); op++)
		len += (size_t)snprintf(tab + len, sizeof(tab) - len,
			"| %s | %.0f / %.0f | %.0f / %.0f | %s | %s |\n",
			g_ops[op].metric,
			bench_percentile(s_ours[var][op], n, 50),
			bench_percentile(s_ours[var][op], n, 99),
			bench_percentile(s_peer[var][op], n, 50),
			bench_percentile(s_peer[var][op], n, 99),
			g_ops[op].rf, g_ops[op].lxc);
	if (len < sizeof(tab))
		snprintf(tab + len, sizeof(tab) - len,
			 "| (journal rewrite, fsync'd) | %.0f / %.0f | | | |\n",
			 bench_percentile(s_journal[var], n, 50),
			 bench_percentile(s_journal[var], n, 99));
	bench_report_text(rep, "%s", tab);
}

int main(void)
{
	char exe_buf[PATH_MAX], enf[32];
	const char *exe, *disk = "/tmp", *shm = "/dev/shm";
	struct bench_report *rep;
	int cpus[CPU_SETSIZE], ncpu, runs = runs_wanted();
	size_t n = (size_t)runs;
	bool missed = false, have_tmpfs;

	if (geteuid() != 0)
		bench_skip("the cells benchmark creates cgroups and needs root "
		     "(uid %d).", (int)geteuid());
	ncpu = bench_cpus(cpus, CPU_SETSIZE);
	if (ncpu < 2)
		bench_skip("adding and removing one core needs two CPUs in the "
		     "affinity mask, this process has %d.", ncpu);
	g.cpu_a = cpus[ncpu - 2];
	g.cpu_b = cpus[ncpu - 1];
	exe = find_atolld(exe_buf, sizeof(exe_buf));
	if (!exe)
		bench_die("atolld not found (build it, or set ATOLL_ATOLLD).");
	if (is_tmpfs(disk))
		disk = "/var/tmp";
	have_tmpfs = is_tmpfs(shm);
	if (!getenv("BENCH_RUNS") || !getenv("BENCH_RUNS")[0]) {
		char v[16];

		/* So that benchlib's header gives the real number of runs. */
		snprintf(v, sizeof(v), "%d", runs);
		setenv("BENCH_RUNS", v, 1);
	}
	bproc_cleanup_on(cleanup, (const int[]){ SIGINT, SIGTERM, SIGALRM },
			 3);
	alarm(bench_quick() ? 120 : 1200);

	rep = bench_report_open("cells");
	if (!rep)
		return 1;
	g_var = V_DISK;
	if (!run_instance(exe, disk, "d", runs, enf, sizeof(enf)))
		bench_skip("atolld found no usable cgroup hierarchy (enforcement "
		     "'%s'): nothing to compare with the kernel operation.",
		     enf);
	if (have_tmpfs) {
		g_var = V_TMPFS;
		if (!run_instance(exe, shm, "t", runs, enf, sizeof(enf)))
			bench_die("the second atolld lost its cgroups.");
	}

	add_rows(rep, V_DISK, n, "", &missed);
	if (have_tmpfs)
		add_rows(rep, V_TMPFS, n, " [state on tmpfs]", &missed);

	side_by_side(rep, V_DISK, n, "State directory on disk (the "
		     "systemd unit's /var/lib/atoll is on disk)");
	if (have_tmpfs)
		side_by_side(rep, V_TMPFS, n, "State directory on tmpfs "
			     "(rows marked [state on tmpfs])");
	bench_report_text(rep,
		"Setup: a private atolld (enforcement %s, --no-irq, --grace-ms "
		"0) managing CPUs %d and %d of this machine: a one-core add or "
		"remove needs two managed cores, so on a 2-CPU machine the "
		"cells are tiny (1 or 2 CPUs) and CPU %d is shared with the "
		"client and atolld while the resized cell holds it. The "
		"benchmark keeps one connection to the control socket and "
		"times each request from writing the JSON line to reading "
		"the reply's newline (CLOCK_MONOTONIC); the client and atolld "
		"are not pinned. Create/destroy: cell 'bc' on CPU %d with a "
		"512 MiB memory limit and no process, destroyed with "
		"grace_ms 0. One core: cell 'rz', holding one idle process, "
		"goes from cpus '%d' to '%d,%d' and back (atolld also "
		"rewrites the affinity of the process's threads). 512 MiB: "
		"the same cell's memory limit goes from 512 MiB to 1 GiB and "
		"back. Every run does each operation once for atolld and "
		"once for the peer, the order alternating; one unrecorded "
		"run first. The whole set runs twice, each time with a fresh "
		"atolld: first with its state directory (journal) in %s, on "
		"disk, then%s.",
		enf, g.cpu_a, g.cpu_b, g.cpu_a, g.cpu_b, g.cpu_b, g.cpu_a,
		g.cpu_b, disk, have_tmpfs ? " in /dev/shm (tmpfs), where "
		"fsync costs nothing" : " (no tmpfs at /dev/shm: skipped) "
		"on tmpfs");
	bench_report_text(rep,
		"Peer (measured in the same run): the kernel operation alone. "
		"This program does the cgroup writes atolld's enforcer does "
		"(src/super/cgroup.c) under its own sibling root "
		"(atollbench-peer-PID) with its own idle process in the "
		"resized cgroup: create = mkdir + cpuset.mems + cpuset.cpus "
		"(+ mkdir of the memory cgroup + memory.limit_in_bytes on v1, "
		"memory.max on v2); destroy = rmdir; one core = one write of "
		"cpuset.cpus; 512 MiB = one write of the memory limit. The "
		"ratio is therefore atolld's overhead over the kernel work "
		"(protocol, validation, the journal rewritten with fsync "
		"after every change, affinity rewrite, reply), not a "
		"comparison with another system. The 'journal rewrite' "
		"reference rows time one fsync'd rewrite of a 1 KiB file "
		"beside the state directory: on disk it accounts for most "
		"of atolld's time.");
	bench_report_text(rep,
		"RainForest and LXC (NOT measured here): the figures of "
		"RainForest's Table 4 (Xu et al., 'isolate first, then "
		"share'), quoted as published, from 100 operations on their "
		"S-A server, Linux 2.6.32-based: RainForest create 6.1 s and "
		"destroy 0 s for a 6-CPU 16 GB subOS, CPU online 66 ms / "
		"offline 54 ms, 512 MB online 20 ms / offline 60 ms; LXC "
		"create 2.1 s, destroy 0 s, and 0.002 s for each resize. A "
		"RainForest subOS is a kernel instance (create boots it; "
		"resize hot-plugs CPUs and memory), an Atoll cell is a set of "
		"cgroups on one kernel: the figures show the order of "
		"magnitude of the alternatives, not a same-conditions "
		"comparison. Their create is for a bigger instance (6 CPUs, "
		"16 GB) than ours (1 CPU, 512 MiB limit).");
	bench_report_text(rep,
		"Targets (issue 4), judged on the on-disk rows: cell create "
		"<= 10 ms at p99, one-core resize <= 1 ms at p99: %s.",
		missed ? "at least one MISSED (see the target notes)" :
		"all met in this run");
	return bench_report_close(rep) ? 1 : 0;
}
