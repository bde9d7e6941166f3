/* benchproc.c - child processes, atolld and cgroups for the benchmarks
 * that drive programs (see benchproc.h). */
#include "benchproc.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <atoll/compiler.h>

#include "benchlib.h"

/* ---- time -------------------------------------------------------------- */

void bproc_sleep_ms(int ms)
{
	struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000L };

	nanosleep(&ts, NULL);
}

uint64_t bproc_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

double bproc_now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* ---- programs ---------------------------------------------------------- */

bool bproc_executable(const char *p)
{
	return p && *p && access(p, X_OK) == 0;
}

const char *bproc_find(const char *env, const char *built)
{
	const char *p = bench_tool(env, built);

	return bproc_executable(p) ? p : NULL;
}

bool bproc_in_path(const char *prog)
{
	const char *path = getenv("PATH");
	char buf[PATH_MAX];

	for (const char *p = path ? path : "/usr/bin:/bin"; *p;) {
		size_t n = strcspn(p, ":");

		snprintf(buf, sizeof(buf), "%.*s/%s", (int)n, p, prog);
		if (n && access(buf, X_OK) == 0)
			return true;
		p += n + (p[n] == ':');
	}
	return false;
}

/* ---- children ---------------------------------------------------------- */

/* In the child, before exec: default signal handling, the log, the
 * process group, death with the benchmark, the environment, affinity and
 * priority asked for. */
static void __attribute__((noreturn))
bproc__child(const struct bproc_spawn *sp, const sigset_t *mask)
{
	static const int sigs[] = { SIGINT, SIGTERM, SIGHUP, SIGALRM,
				    SIGPIPE };
	const char *file = sp->file ? sp->file : sp->argv[0];
	int fd;

	/* Not the benchmark's cleanup in here; and an ignored SIGPIPE
	 * would outlive exec. Signals stay blocked (by bproc_spawn())
	 * until this is done. */
	for (size_t i = 0; i < ARRAY_SIZE(sigs); i++)
		signal(sigs[i], SIG_DFL);
	sigprocmask(SIG_SETMASK, mask, NULL);
	fd = open(sp->log ? sp->log : "/dev/null",
		  O_WRONLY | O_CREAT | O_CLOEXEC |
		  (sp->log_trunc ? O_TRUNC : O_APPEND), 0644);
	if (sp->own_group)
		setpgid(0, 0);
	prctl(PR_SET_PDEATHSIG, sp->deathsig ? sp->deathsig : SIGKILL);
	if (fd >= 0) {
		dup2(sp->out_fd > 0 ? sp->out_fd : fd, 1);
		dup2(fd, 2);
	}
	for (const char *const *e = sp->env; e && *e; e++) {
		const char *eq = strchr(*e, '=');
		char name[64];

		if (!eq) {
			unsetenv(*e);
			continue;
		}
		snprintf(name, sizeof(name), "%.*s", (int)(eq - *e), *e);
		setenv(name, eq + 1, 1);
	}
	if (sp->cpus && sched_setaffinity(0, sizeof(*sp->cpus), sp->cpus))
		_exit(126);
	if (sp->fifo > 0) {
		struct sched_param prio = { .sched_priority = sp->fifo };

		if (sched_setscheduler(0, SCHED_FIFO, &prio))
			_exit(126);
	}
	execvp(file, sp->argv);
	fprintf(stderr, "cannot run %s: %s\n", file, strerror(errno));
	_exit(127);
}

pid_t bproc_spawn(const struct bproc_spawn *sp)
{
	sigset_t all, old;
	pid_t pid;

	/* No signal handler of ours may run in the child. */
	sigfillset(&all);
	sigprocmask(SIG_BLOCK, &all, &old);
	pid = fork();
	if (pid == 0)
		bproc__child(sp, &old);
	sigprocmask(SIG_SETMASK, &old, NULL);
	if (pid < 0)
		bench_die("fork: %s.", strerror(errno));
	if (sp->own_group)
		setpgid(pid, pid);	/* also here: no race with kill(-pid) */
	return pid;
}

int bproc_wait_until(pid_t pid, double deadline_s, struct rusage *ru)
{
	for (;;) {
		int st;
		pid_t r = wait4(pid, &st, WNOHANG, ru);

		if (r == pid)
			return st;
		if (r < 0 && errno != EINTR)
			return -errno;
		if (bproc_now_s() >= deadline_s)
			return -ETIMEDOUT;
		bproc_sleep_ms(5);
	}
}

static int bproc__exit_code(int st)
{
	return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

int bproc_reap(pid_t pid)
{
	int st;

	while (waitpid(pid, &st, 0) < 0)
		if (errno != EINTR)
			return -1;
	return bproc__exit_code(st);
}

int bproc_reap_within(pid_t pid, int secs)
{
	int st = bproc_wait_until(pid, bproc_now_s() + secs, NULL);

	if (st >= 0)
		return bproc__exit_code(st);
	if (st != -ETIMEDOUT)
		return -1;
	fprintf(stderr, "bench: a child (pid %d) ran over %d s; killed.\n",
		(int)pid, secs);
	kill(pid, SIGKILL);
	return bproc_reap(pid);
}

/* Wait for pid for wait_s seconds, < 0: without limit. */
static int bproc__wait(pid_t pid, double wait_s)
{
	int st;

	if (wait_s >= 0)
		return bproc_wait_until(pid, bproc_now_s() + wait_s, NULL);
	while (waitpid(pid, &st, 0) < 0)
		if (errno != EINTR)
			return -errno;
	return st;
}

int bproc_stop(pid_t *pid, int sig, double grace_s, double kill_wait_s)
{
	int st;

	if (*pid <= 0)
		return -ECHILD;
	kill(*pid, sig);
	st = bproc__wait(*pid, grace_s);
	if (st == -ETIMEDOUT) {
		kill(*pid, SIGKILL);
		st = bproc__wait(*pid, kill_wait_s);
	}
	*pid = 0;
	return st;
}

void bproc_kill_group(pid_t *pid)
{
	if (*pid <= 0)
		return;
	kill(-*pid, SIGKILL);
	waitpid(*pid, NULL, 0);
	for (int i = 0; i < 200 && kill(-*pid, 0) == 0; i++)
		bproc_sleep_ms(10);
	*pid = 0;
}

void bproc_show_log(const char *path)
{
	char buf[2048];
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	off_t size;
	ssize_t n;

	if (fd < 0)
		return;
	size = lseek(fd, 0, SEEK_END);
	lseek(fd, size > (off_t)sizeof(buf) - 1 ?
	      size - (off_t)sizeof(buf) + 1 : 0, SEEK_SET);
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n > 0) {
		buf[n] = '\0';
		fprintf(stderr, "--- %s ---\n%s%s", path, buf,
			buf[n - 1] == '\n' ? "" : "\n");
	}
}

/* ---- TCP ---------------------------------------------------------------- */

int bproc_free_port(void)
{
	struct sockaddr_in sa = { .sin_family = AF_INET,
				  .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t len = sizeof(sa);
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), port;

	if (fd < 0)
		return -errno;
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) ||
	    getsockname(fd, (struct sockaddr *)&sa, &len))
		port = -errno;
	else
		port = ntohs(sa.sin_port);
	close(fd);
	return port;
}

bool bproc_port_open(int port)
{
	struct sockaddr_in sa = { .sin_family = AF_INET,
				  .sin_port = htons((uint16_t)port),
				  .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	bool ok;

	if (fd < 0)
		return false;
	ok = connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0;
	close(fd);
	return ok;
}

int bproc_wait_port(int port, pid_t pid, double timeout_s)
{
	double deadline = bproc_now_s() + timeout_s;

	while (!bproc_port_open(port)) {
		if (pid > 0 && waitpid(pid, NULL, WNOHANG) == pid)
			return -ECHILD;
		if (bproc_now_s() >= deadline)
			return -ETIMEDOUT;
		bproc_sleep_ms(10);
	}
	return 0;
}

/* ---- atolld ------------------------------------------------------------ */

int bproc_ctl_connect(const char *path, int timeout_s)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0), err;

	if (fd < 0)
		return -errno;
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa))) {
		err = -errno;
		close(fd);
		return err;
	}
	/* An atolld that stops answering ends the run, not hangs it. */
	if (timeout_s > 0)
		setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO,
			   &(struct timeval){ .tv_sec = timeout_s },
			   sizeof(struct timeval));
	return fd;
}

int bproc_atolld_start(const struct bproc_atolld *a, pid_t *pid,
		       int *status)
{
	char grace[16];
	char *argv[] = { (char *)(a->argv0 ? a->argv0 : a->exe),
			 (char *)"--foreground", (char *)"--state-dir",
			 (char *)a->state, (char *)"--socket", (char *)a->sock,
			 (char *)"--cpus", (char *)a->cpus, (char *)"--name",
			 (char *)a->name, (char *)"--no-irq",
			 (char *)"--grace-ms", grace, NULL };
	struct bproc_spawn sp = { .argv = argv, .file = a->exe,
				  .log = a->log, .own_group = a->own_group,
				  .deathsig = a->deathsig, .env = a->env };
	double deadline;
	int fd, st;

	snprintf(grace, sizeof(grace), "%d", a->grace_ms);
	*pid = bproc_spawn(&sp);
	deadline = bproc_now_s() + 5;
	while ((fd = bproc_ctl_connect(a->sock, a->ctl_timeout_s)) < 0) {
		if (waitpid(*pid, &st, WNOHANG) == *pid) {
			*pid = 0;
			if (status)
				*status = st;
			return -ECHILD;
		}
		if (bproc_now_s() >= deadline)
			return -ETIMEDOUT;
		bproc_sleep_ms(5);
	}
	return fd;
}

/* Send all of buf[n]; 0 or a negative errno. */
static int bproc__send_all(int fd, const char *buf, size_t n)
{
	for (size_t off = 0; off < n;) {
		ssize_t w = send(fd, buf + off, n - off, MSG_NOSIGNAL);

		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return w < 0 ? -errno : -EPIPE;
		off += (size_t)w;
	}
	return 0;
}

int bproc_ctl_line(int fd, const char *req, char *reply, size_t cap)
{
	char small[1024], *line = small;
	size_t n = strlen(req), len = 0;
	int err;

	/* One send for the line (the latency of a request is measured). */
	if (n + 1 > sizeof(small)) {
		line = malloc(n + 1);
		if (!line) {
			snprintf(reply, cap, "cannot send to atolld: %s",
				 strerror(ENOMEM));
			return -ENOMEM;
		}
	}
	memcpy(line, req, n);
	line[n] = '\n';
	err = fd < 0 ? -EBADF : bproc__send_all(fd, line, n + 1);
	if (line != small)
		free(line);
	if (err) {
		snprintf(reply, cap, "cannot send to atolld: %s",
			 strerror(-err));
		return err;
	}
	for (;;) {
		ssize_t r = recv(fd, reply + len, cap - 1 - len, 0);

		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
			snprintf(reply, cap, "no reply from atolld within "
				 "the socket's timeout");
			return -ETIMEDOUT;
		}
		if (r <= 0) {
			err = r < 0 ? -errno : -ECONNRESET;
			snprintf(reply, cap, "no reply from atolld: %s",
				 r < 0 ? strerror(errno) : "connection closed");
			return err;
		}
		len += (size_t)r;
		if (reply[len - 1] == '\n')
			break;
		if (len + 1 >= cap) {
			snprintf(reply, cap, "reply longer than %zu bytes",
				 cap);
			return -EMSGSIZE;
		}
	}
	reply[len] = '\0';
	return (int)len;
}

/* ---- files and cgroups -------------------------------------------------- */

static int bproc__rm_entry(const char *path, const struct stat *st, int flag,
			   struct FTW *ftw)
{
	(void)st, (void)flag, (void)ftw;
	remove(path);
	return 0;
}

void bproc_rm_tree(const char *dir)
{
	nftw(dir, bproc__rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

int bproc_rmdir_retry(const char *d)
{
	for (int i = 0; i < 100; i++) {
		if (!rmdir(d) || errno == ENOENT)
			return 0;
		if (errno != EBUSY)
			return -errno;
		bproc_sleep_ms(10);
	}
	return -EBUSY;
}

/* Write s to dir/file if it exists; errors are ignored. */
static void bproc__put(const char *dir, const char *file, const char *s)
{
	char p[PATH_MAX + 400];
	int fd;

	snprintf(p, sizeof(p), "%s/%s", dir, file);
	fd = open(p, O_WRONLY | O_CLOEXEC);
	if (fd >= 0) {
		(void)!write(fd, s, strlen(s));
		close(fd);
	}
}

void bproc_purge_cgroup(const char *root)
{
	DIR *d = opendir(root);
	struct dirent *de;

	if (!d)
		return;
	while ((de = readdir(d))) {
		char dir[PATH_MAX + 300], p[PATH_MAX + 320], line[64];
		FILE *f;

		if (de->d_type != DT_DIR || de->d_name[0] == '.')
			continue;
		snprintf(dir, sizeof(dir), "%s/%s", root, de->d_name);
		/* Frozen, its processes would take no signal. */
		bproc__put(dir, "freezer.state", "THAWED");
		bproc__put(dir, "cgroup.freeze", "0");
		snprintf(p, sizeof(p), "%s/cgroup.procs", dir);
		for (int round = 0; round < 50; round++) {
			bool any = false;

			f = fopen(p, "re");
			if (!f)
				break;
			while (fgets(line, sizeof(line), f)) {
				any = true;
				kill(atoi(line), SIGKILL);
			}
			fclose(f);
			if (!any)
				break;
			bproc_sleep_ms(10);
		}
		bproc_rmdir_retry(dir);
	}
	closedir(d);
	bproc_rmdir_retry(root);
}

/* ---- exit ---------------------------------------------------------------- */

static void (*bproc__cleanup_fn)(int sig);

static void bproc__at_exit(void)
{
	bproc__cleanup_fn(0);
}

static void bproc__on_signal(int sig)
{
	bproc__cleanup_fn(sig);
	signal(sig, SIG_DFL);
	raise(sig);
}

void bproc_cleanup_on(void (*fn)(int sig), const int *sigs, size_t n)
{
	bproc__cleanup_fn = fn;
	atexit(bproc__at_exit);
	for (size_t i = 0; i < n; i++)
		signal(sigs[i], bproc__on_signal);
}
