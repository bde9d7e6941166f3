/* super_common.c - helpers for the atolld tests, included (not linked) by
 * each tests/super_*.c program: start a private atolld instance (own
 * temp dir, socket, state dir and cgroup root name), talk to it, run the
 * atoll CLI, and clean up everything at exit, even after a failed CHECK.
 *
 * The tests get the paths of atolld and atoll as argv[1] and argv[2].
 * They never touch a cgroup they did not create and always run atolld
 * with --no-irq.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdbool.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <atoll/proto.h>

#include "harness.h"

#include "../src/super/json.h"

struct inst {
	char dir[256];
	char sock[300];
	char state[300];
	char name[40];
	char cpus[32];
	const char *extra;   /* one more atolld option, or NULL */
	pid_t pid;
	int nroots;
	char roots[3][4096];
};

static const char *g_atolld, *g_atoll;
static struct inst *g_inst;
static pid_t g_kids[64];
static int g_nkids;

static inline void sleep_ms(int ms)
{
	struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000L };

	nanosleep(&ts, NULL);
}

static inline void rm_rf(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *de;

	if (!d)
		return;
	while ((de = readdir(d))) {
		char p[1024];

		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
			continue;
		snprintf(p, sizeof(p), "%s/%s", dir, de->d_name);
		if (de->d_type == DT_DIR)
			rm_rf(p);
		else
			unlink(p);
	}
	closedir(d);
	rmdir(dir);
}

/* Kill what is left in one of our cgroup roots, then remove it. */
static inline void root_purge(const char *root)
{
	DIR *d = opendir(root);
	struct dirent *de;

	if (!d)
		return;
	while ((de = readdir(d))) {
		char p[4200], line[64];
		FILE *f;

		if (de->d_type != DT_DIR || de->d_name[0] == '.')
			continue;
		snprintf(p, sizeof(p), "%s/%s/cgroup.procs", root, de->d_name);
		for (int round = 0; round < 50; round++) {
			bool any = false;

			f = fopen(p, "r");
			if (!f)
				break;
			while (fgets(line, sizeof(line), f)) {
				any = true;
				kill(atoi(line), SIGKILL);
			}
			fclose(f);
			if (!any)
				break;
			sleep_ms(20);
		}
		snprintf(p, sizeof(p), "%s/%s", root, de->d_name);
		for (int i = 0; i < 50 && rmdir(p) && errno == EBUSY; i++)
			sleep_ms(20);
	}
	closedir(d);
	rmdir(root);
}

static inline void cleanup(void)
{
	for (int i = 0; i < g_nkids; i++) {
		kill(g_kids[i], SIGKILL);
		waitpid(g_kids[i], NULL, 0);
	}
	g_nkids = 0;
	if (!g_inst)
		return;
	if (g_inst->pid > 0) {
		kill(g_inst->pid, SIGKILL);
		waitpid(g_inst->pid, NULL, 0);
		g_inst->pid = 0;
	}
	if (g_inst->nroots == 0) {
		/* roots unknown (failed early): take them from the journal */
		static const char *const keys[] = { "v2_root", "cpuset_root",
						    "mem_root" };
		char p[400], text[65536], err[128];
		FILE *f;
		size_t n = 0;
		struct json_doc *d;

		snprintf(p, sizeof(p), "%s/cells.json", g_inst->state);
		f = fopen(p, "r");
		if (f) {
			n = fread(text, 1, sizeof(text) - 1, f);
			fclose(f);
		}
		text[n] = '\0';
		d = n ? json_parse(text, n, err, sizeof(err)) : NULL;
		for (int i = 0; d && i < 3; i++) {
			const struct json *v = json_get(json_root(d), keys[i]);

			if (v && v->type == JSON_STR && v->s[0] &&
			    strstr(v->s, g_inst->name))
				snprintf(g_inst->roots[g_inst->nroots++],
					 sizeof(g_inst->roots[0]), "%s", v->s);
		}
		json_free(d);
	}
	for (int i = 0; i < g_inst->nroots; i++)
		root_purge(g_inst->roots[i]);
	rm_rf(g_inst->dir);
	g_inst = NULL;
}

static inline void on_fatal(int sig)
{
	(void)sig;
	cleanup();
	_exit(TEST_FAIL);
}

static inline void super_init(int argc, char **argv, bool need_root)
{
	if (argc < 3) {
		fprintf(stderr, "usage: %s ATOLLD ATOLL\n", argv[0]);
		exit(TEST_FAIL);
	}
	g_atolld = argv[1];
	g_atoll = argv[2];
	if (need_root && geteuid() != 0)
		test_skip("needs root to create cgroups (uid %d)", (int)geteuid());
	atexit(cleanup);
	signal(SIGALRM, on_fatal);
	signal(SIGTERM, on_fatal);
	alarm(50);
}

/* Connect, send one line, read one line (reply must end in '\n'). */
static inline int raw_request(const char *sock, const char *req, size_t reqlen,
		       char *reply, size_t cap)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	size_t len = 0;
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", sock);
	if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof(sa))) {
		if (fd >= 0)
			close(fd);
		return -1;
	}
	if (send(fd, req, reqlen, MSG_NOSIGNAL) != (ssize_t)reqlen) {
		close(fd);
		return -1;
	}
	reply[0] = '\0';
	while (len + 1 < cap) {
		ssize_t n = recv(fd, reply + len, cap - 1 - len, 0);

		if (n <= 0)
			break;
		len += (size_t)n;
		reply[len] = '\0';
		if (memchr(reply, '\n', len))
			break;
	}
	close(fd);
	return memchr(reply, '\n', len) ? 0 : -1;
}

/* One request to the instance; returns the parsed reply (never NULL). */
static inline struct json_doc *request(struct inst *in, const char *line)
{
	static char reply[1 << 20];
	char err[256];
	char buf[8192];
	struct json_doc *doc;

	snprintf(buf, sizeof(buf), "%s\n", line);
	CHECK(raw_request(in->sock, buf, strlen(buf), reply, sizeof(reply)) == 0);
	doc = json_parse(reply, strlen(reply), err, sizeof(err));
	if (!doc) {
		fprintf(stderr, "unparsable reply: %s (%s)\n", reply, err);
		exit(TEST_FAIL);
	}
	return doc;
}

static inline bool reply_ok(struct json_doc *doc)
{
	const struct json *ok = json_get(json_root(doc), "ok");

	return ok && ok->type == JSON_BOOL && ok->b;
}

static inline const char *reply_code(struct json_doc *doc)
{
	const struct json *c = json_get(json_get(json_root(doc), "error"), "code");

	return c && c->type == JSON_STR ? c->s : "";
}

static inline const char *reply_msg(struct json_doc *doc)
{
	const struct json *c = json_get(json_get(json_root(doc), "error"),
					"message");

	return c && c->type == JSON_STR ? c->s : "";
}

/* Expect an error with this code and a non-trivial sentence. */
static inline void expect_error(struct inst *in, const char *line, const char *code)
{
	struct json_doc *d = request(in, line);

	if (reply_ok(d) || strcmp(reply_code(d), code) || strlen(reply_msg(d)) < 10) {
		fprintf(stderr, "FAIL: request %s: wanted error %s, got %s / %s\n",
			line, code, reply_ok(d) ? "ok" : reply_code(d),
			reply_msg(d));
		exit(TEST_FAIL);
	}
	printf("refused as expected (%s): %s\n", code, reply_msg(d));
	json_free(d);
}

static inline void expect_ok(struct inst *in, const char *line)
{
	struct json_doc *d = request(in, line);

	if (!reply_ok(d)) {
		fprintf(stderr, "FAIL: request %s: %s: %s\n", line,
			reply_code(d), reply_msg(d));
		exit(TEST_FAIL);
	}
	json_free(d);
}

static inline void inst_init(struct inst *in, const char *tag, const char *cpus)
{
	memset(in, 0, sizeof(*in));
	snprintf(in->dir, sizeof(in->dir), "/tmp/atoll-%s-XXXXXX", tag);
	CHECK(mkdtemp(in->dir) != NULL);
	CHECK_OK(chmod(in->dir, 0711)); /* a non-root peer must reach the socket */
	snprintf(in->sock, sizeof(in->sock), "%s/sock", in->dir);
	snprintf(in->state, sizeof(in->state), "%s/state", in->dir);
	snprintf(in->name, sizeof(in->name), "t%d-%s", (int)getpid(), tag);
	snprintf(in->cpus, sizeof(in->cpus), "%s", cpus);
	g_inst = in;
}

static inline void inst_start(struct inst *in)
{
	char log[400];
	struct json_doc *d = NULL;

	snprintf(log, sizeof(log), "%s/atolld.log", in->dir);
	in->pid = fork();
	CHECK(in->pid >= 0);
	if (in->pid == 0) {
		int fd = open(log, O_WRONLY | O_CREAT | O_APPEND, 0644);

		if (fd >= 0) {
			dup2(fd, 2);
			dup2(fd, 1);
		}
		setenv("ATOLL_SOCKET", in->sock, 1);
		execl(g_atolld, "atolld", "--foreground", "--state-dir", in->state,
		      "--cpus", in->cpus, "--name", in->name, "--no-irq",
		      "--grace-ms", "500", in->extra, (char *)NULL);
		_exit(127);
	}
	for (int i = 0; i < 500; i++) {
		char reply[1 << 16];
		int st;

		if (raw_request(in->sock, "{\"op\":\"status\"}\n", 16, reply,
				sizeof(reply)) == 0) {
			d = json_parse(reply, strlen(reply), log, sizeof(log));
			break;
		}
		if (waitpid(in->pid, &st, WNOHANG) == in->pid) {
			in->pid = 0;
			fprintf(stderr, "FAIL: atolld exited at start (status %d); see %s/atolld.log\n",
				st, in->dir);
			exit(TEST_FAIL);
		}
		sleep_ms(10);
	}
	CHECK(d != NULL);
	{
		const struct json *roots = json_get(json_root(d), "cgroup_roots");

		in->nroots = 0;
		for (size_t i = 0; roots && i < roots->len && i < 3; i++)
			snprintf(in->roots[in->nroots++], sizeof(in->roots[0]),
				 "%s", roots->kids[i]->s);
	}
	json_free(d);
}

static inline void inst_kill(struct inst *in, int sig)
{
	int st;

	CHECK(in->pid > 0);
	kill(in->pid, sig);
	CHECK(waitpid(in->pid, &st, 0) == in->pid);
	in->pid = 0;
}

static inline const char *enforcement(struct inst *in)
{
	static char e[32];
	struct json_doc *d = request(in, "{\"op\":\"status\"}");
	const struct json *v = json_get(json_root(d), "enforcement");

	snprintf(e, sizeof(e), "%s", v && v->type == JSON_STR ? v->s : "?");
	json_free(d);
	return e;
}

/* Run the CLI with ATOLL_SOCKET set; stdout into out (may be NULL).
 * Returns its exit status. */
static inline int cli(struct inst *in, char *out, size_t cap, const char *const *args)
{
	int p[2], st;
	pid_t pid;
	size_t len = 0;

	CHECK_OK(pipe(p));
	pid = fork();
	CHECK(pid >= 0);
	if (pid == 0) {
		const char *argv[32];
		int n = 0;

		dup2(p[1], 1);
		close(p[0]);
		setenv("ATOLL_SOCKET", in->sock, 1);
		argv[n++] = "atoll";
		for (; *args && n < 31; args++)
			argv[n++] = *args;
		argv[n] = NULL;
		execv(g_atoll, (char *const *)argv);
		_exit(127);
	}
	close(p[1]);
	for (;;) {
		char tmp[4096];
		ssize_t n = read(p[0], tmp, sizeof(tmp));

		if (n <= 0)
			break;
		if (out && len + (size_t)n < cap) {
			memcpy(out + len, tmp, (size_t)n);
			len += (size_t)n;
		}
	}
	if (out)
		out[len] = '\0';
	close(p[0]);
	CHECK(waitpid(pid, &st, 0) == pid);
	return WIFEXITED(st) ? WEXITSTATUS(st) : 128;
}

/* Start `atoll run --cell cell -- cmd...` and wait until cmd runs: until
 * the child's /proc/PID/comm says comm. */
static inline pid_t spawn_cmd_in_cell(struct inst *in, const char *cell,
				      const char *comm,
				      const char *const cmd[])
{
	const char *argv[16] = { "atoll", "run", "--cell", cell, "--" };
	size_t n = 5, len = strlen(comm);
	pid_t pid;

	for (size_t i = 0; cmd[i]; i++) {
		CHECK(n < ARRAY_SIZE(argv) - 1);
		argv[n++] = cmd[i];
	}
	argv[n] = NULL;
	pid = fork();
	CHECK(pid >= 0);
	if (pid == 0) {
		setenv("ATOLL_SOCKET", in->sock, 1);
		execv(g_atoll, (char *const *)argv);
		_exit(127);
	}
	g_kids[g_nkids++] = pid;
	for (int i = 0; i < 500; i++) {
		char path[64], got[64] = "";
		FILE *f;

		snprintf(path, sizeof(path), "/proc/%d/comm", (int)pid);
		f = fopen(path, "r");
		if (f) {
			if (!fgets(got, sizeof(got), f))
				got[0] = '\0';
			fclose(f);
		}
		if (!strncmp(got, comm, len) && got[len] == '\n')
			return pid;
		sleep_ms(10);
	}
	fprintf(stderr, "FAIL: atoll run did not exec %s\n", cmd[0]);
	exit(TEST_FAIL);
}

/* Start `atoll run --cell cell -- sleep 60` and wait until the sleep runs. */
static inline pid_t spawn_in_cell(struct inst *in, const char *cell)
{
	static const char *const sleep60[] = { "sleep", "60", NULL };

	return spawn_cmd_in_cell(in, cell, "sleep", sleep60);
}

/* Whether pid's /proc/PID/cgroup line for controller ctl ends in suffix. */
static inline bool in_cgroup(pid_t pid, const char *ctl, const char *suffix)
{
	char path[64], line[1024];
	FILE *f;
	bool hit = false;

	snprintf(path, sizeof(path), "/proc/%d/cgroup", (int)pid);
	f = fopen(path, "r");
	if (!f)
		return false;
	while (fgets(line, sizeof(line), f)) {
		char *c1 = strchr(line, ':'), *c2, *nl;
		size_t ls, ss = strlen(suffix);

		if (!c1 || !(c2 = strchr(c1 + 1, ':')))
			continue;
		*c2 = '\0';
		nl = strchr(c2 + 1, '\n');
		if (nl)
			*nl = '\0';
		if (!strstr(c1 + 1, ctl) && !(ctl[0] == '\0' && c1[1] == '\0'))
			continue;
		ls = strlen(c2 + 1);
		if (ls >= ss && !strcmp(c2 + 1 + ls - ss, suffix))
			hit = true;
	}
	fclose(f);
	return hit;
}

static inline int affinity_count(pid_t pid, int *first)
{
	cpu_set_t set;

	if (sched_getaffinity(pid, sizeof(set), &set))
		return -1;
	*first = -1;
	for (int i = 0; i < CPU_SETSIZE; i++)
		if (CPU_ISSET(i, &set)) {
			*first = i;
			break;
		}
	return CPU_COUNT(&set);
}

static inline void reap(pid_t pid)
{
	int st;

	CHECK(waitpid(pid, &st, 0) == pid);
	for (int i = 0; i < g_nkids; i++)
		if (g_kids[i] == pid)
			g_kids[i] = g_kids[--g_nkids];
}

static inline bool path_exists(const char *p)
{
	struct stat st;

	return stat(p, &st) == 0;
}

/* The cell list as compact text, to compare before/after. */
static inline void list_snapshot(struct inst *in, char *out, size_t cap)
{
	struct json_doc *d = request(in, "{\"op\":\"cell.list\"}");
	const struct json *cells = json_get(json_root(d), "cells");

	out[0] = '\0';
	for (size_t i = 0; cells && i < cells->len; i++) {
		const struct json *c = cells->kids[i];
		char one[256];

		snprintf(one, sizeof(one), "%s:%s:%s:%lld:%lld;",
			 json_get(c, "name")->s, json_get(c, "cpus")->s,
			 json_get(c, "class")->s,
			 (long long)json_get(c, "mem")->i,
			 (long long)json_get(c, "provision")->i);
		strncat(out, one, cap - strlen(out) - 1);
	}
	json_free(d);
}

/* Skip unless the instance enforces with cgroups. */
static inline void need_cgroups(struct inst *in)
{
	const char *e = enforcement(in);

	if (strncmp(e, "cgroup", 6))
		test_skip("no usable cgroup hierarchy (atolld fell back to %s)", e);
}
