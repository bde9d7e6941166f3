/* benchproc.h - the child processes of the benchmarks that drive programs.
 *
 * Owns what bench-colocation, bench-elastic, bench-kv-percore and
 * bench-cells need to start, watch and stop other programs: sleeping and
 * a monotonic clock, finding a program, spawning a child (log file, its
 * own process group, death with the benchmark, CPU pinning, SCHED_FIFO,
 * environment changes), waiting for it with a deadline, stopping it or
 * its process group, a free TCP port and waiting for a listener, a
 * private atolld and its control socket (one JSON line each way),
 * removing a temporary tree and purging a cgroup root, and running a
 * cleanup at exit and on fatal signals. The benchmarks keep their policy
 * (what to run, with which arguments, what a failure means).
 *
 * Errors: functions return 0 (or a count, a pid, an fd) or a negative
 * errno; none exits, except bproc_spawn() when fork fails (bench_die(),
 * as every benchmark would). Call from the benchmark's main thread; the
 * child-side setup of bproc_spawn() is async-signal-safe apart from the
 * environment changes it is asked for.
 */
#ifndef ATOLL_BENCHPROC_H
#define ATOLL_BENCHPROC_H

#include <sched.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/resource.h>
#include <sys/types.h>

/* ---- time -------------------------------------------------------------- */

/* Sleep ms milliseconds (a signal may cut it short). */
void bproc_sleep_ms(int ms);

/* CLOCK_MONOTONIC in seconds, and in nanoseconds. */
double bproc_now_s(void);
uint64_t bproc_now_ns(void);

/* ---- programs ---------------------------------------------------------- */

/* Whether p is a non-empty path to an executable file. */
bool bproc_executable(const char *p);

/* bench_tool(env, built) when that is executable, else NULL. */
const char *bproc_find(const char *env, const char *built);

/* Whether prog is an executable in one of $PATH's directories
 * ("/usr/bin:/bin" when PATH is unset). */
bool bproc_in_path(const char *prog);

/* ---- children ---------------------------------------------------------- */

/* What bproc_spawn() sets up in the child before it execs. All fields
 * but argv may be left zero. */
struct bproc_spawn {
	char *const *argv;	/* argv[0] is the program (PATH searched
				 * when it has no '/') unless file is set */
	const char *file;	/* the program when argv[0] is not it */
	const char *log;	/* stdout and stderr; NULL: /dev/null */
	bool log_trunc;		/* truncate log (default: append) */
	int out_fd;		/* > 0: stdout goes there instead of log */
	bool own_group;		/* its own process group (bproc_kill_group) */
	int deathsig;		/* sent when we die; 0: SIGKILL */
	const cpu_set_t *cpus;	/* its affinity; NULL: ours */
	int fifo;		/* > 0: SCHED_FIFO at this priority */
	const char *const *env;	/* NULL-terminated, applied in order:
				 * "NAME=value" sets, "NAME" unsets */
};

/* Fork and exec sp->argv as struct bproc_spawn describes. Our signal
 * handlers never run in the child (signals are blocked across the fork,
 * the child resets SIGINT, SIGTERM, SIGHUP, SIGALRM and SIGPIPE to
 * default). A child that cannot get its affinity or priority exits 126,
 * one that cannot exec exits 127 (after a line in its log). Returns the
 * pid; dies (bench_die) when fork fails. */
pid_t bproc_spawn(const struct bproc_spawn *sp);

/* Wait for pid until deadline_s (bproc_now_s() clock; polls every 5 ms);
 * ru (may be NULL) gets its resource usage. Returns its wait status
 * (>= 0), -ETIMEDOUT when it still runs at the deadline, or -ECHILD (or
 * another negative errno) when it is not a child of ours to wait for. */
int bproc_wait_until(pid_t pid, double deadline_s, struct rusage *ru);

/* Wait for pid without limit. Returns its exit status, 128 + the signal
 * that ended it, or -1 when it cannot be waited for. */
int bproc_reap(pid_t pid);

/* bproc_reap(), but after secs seconds pid is killed (SIGKILL, with a
 * line on stderr): a tool that hangs must not hang the benchmark. Same
 * returns as bproc_reap(). */
int bproc_reap_within(pid_t pid, int secs);

/* Send sig to *pid, wait up to grace_s (< 0: without limit), then
 * SIGKILL and wait up to kill_wait_s more (< 0: without limit; a frozen
 * process dies only once thawed, so a limit gives up on it). Sets *pid
 * to 0. Returns its wait status, or a negative errno as
 * bproc_wait_until(); -ECHILD without doing anything when *pid <= 0. */
int bproc_stop(pid_t *pid, int sig, double grace_s, double kill_wait_s);

/* SIGKILL the process group led by *pid (spawned with own_group), reap
 * the leader, then wait (up to 2 s) until the group's last member is
 * gone. Nothing when *pid <= 0. Sets *pid to 0. */
void bproc_kill_group(pid_t *pid);

/* The last 2 KiB of the file at path, on stderr between "--- path ---"
 * and the end; nothing when it cannot be read. */
void bproc_show_log(const char *path);

/* ---- TCP ---------------------------------------------------------------- */

/* A loopback TCP port nobody listens on now (the kernel's pick,
 * released). Returns it (> 0) or a negative errno. */
int bproc_free_port(void);

/* Whether something accepts connections on 127.0.0.1:port now. */
bool bproc_port_open(int port);

/* Wait until 127.0.0.1:port accepts connections (polls every 10 ms) for
 * at most timeout_s, while child pid (> 0) runs. Returns 0; -ECHILD when
 * pid exited (it is reaped); -ETIMEDOUT. */
int bproc_wait_port(int port, pid_t pid, double timeout_s);

/* ---- atolld ------------------------------------------------------------ */

/* A private atolld: exe --foreground --state-dir STATE --socket SOCK
 * --cpus CPUS --name NAME --no-irq --grace-ms GRACE_MS. */
struct bproc_atolld {
	const char *exe;
	const char *argv0;	/* its argv[0]; NULL: exe */
	const char *state, *sock, *cpus, *name;
	int grace_ms;
	const char *log;	/* its stdout and stderr, appended */
	bool own_group;		/* as struct bproc_spawn */
	int deathsig;		/* as struct bproc_spawn */
	const char *const *env;	/* as struct bproc_spawn */
	int ctl_timeout_s;	/* > 0: a reply must come within this */
};

/* Start atolld as a describes and wait up to 5 s until its control
 * socket accepts a connection. Returns that connection (an fd >= 0) with
 * the pid in *pid; or -ECHILD when atolld exited at start (reaped, its
 * wait status in *status when not NULL, *pid = 0), -ETIMEDOUT when it did
 * not open the socket in time (it still runs, as *pid). */
int bproc_atolld_start(const struct bproc_atolld *a, pid_t *pid,
		       int *status);

/* Connect to the control socket at path; with timeout_s > 0 a reply
 * must come within that many seconds. Returns the fd or a negative
 * errno. */
int bproc_ctl_connect(const char *path, int timeout_s);

/* Send the request line req (without its newline) on fd and read the
 * reply line into reply[cap] (NUL-terminated, its newline kept). Returns
 * the reply's length, or a negative errno with a reason in reply
 * ("cannot send to atolld: ...", "no reply from atolld...", "reply
 * longer than ..."). */
int bproc_ctl_line(int fd, const char *req, char *reply, size_t cap);

/* ---- files and cgroups -------------------------------------------------- */

/* Remove the tree at dir (not following links); errors are ignored. */
void bproc_rm_tree(const char *dir);

/* rmdir d, retrying for up to 1 s while it is busy (the kernel still
 * counts an exiting task in a cgroup). Returns 0 (also when d is gone
 * already) or a negative errno. */
int bproc_rmdir_retry(const char *d);

/* Empty and remove a cgroup root of ours: in each directory below root,
 * thaw it (cgroup v1 freezer.state, v2 cgroup.freeze), SIGKILL the
 * processes in its cgroup.procs until none is left (up to 50 rounds 10 ms
 * apart), rmdir it; then rmdir root. Only ever call it on roots the
 * benchmark or its atolld created. */
void bproc_purge_cgroup(const char *root);

/* ---- exit ---------------------------------------------------------------- */

/* Run fn at exit and when one of the signals sigs[0..n) arrives: then
 * fn(sig) runs, and the signal is re-raised with its default action (at
 * exit fn(0) runs). fn must be safe to call twice. */
void bproc_cleanup_on(void (*fn)(int sig), const int *sigs, size_t n);

#endif /* ATOLL_BENCHPROC_H */
