/* benchlib.h - the shared machinery of every benchmark under bench/.
 *
 * Owns: run-count policy (quick or full), the report (one per benchmark
 * program: a human table on stdout plus $BENCH_OUT/<name>.json and .md, in
 * the form DESIGN.md's "The benchmark contract" fixes), CPU pinning and a
 * few statistics on arrays of doubles.
 *
 * Thread-safety: a report belongs to the thread that opened it; the other
 * helpers are safe from any thread. Call from plain threads only (not from
 * uthreads or signal handlers): the report allocates and does file I/O.
 *
 * A benchmark typically looks like:
 *
 *	struct bench_report *rep = bench_report_open("ring");
 *	for (int r = 0; r < bench_runs(); r++) {
 *		ours[r] = run_ours();	// ours and peer interleaved
 *		peer[r] = run_peer();
 *	}
 *	int row = bench_report_row(rep, "spsc throughput", "msgs/s",
 *				   BENCH_HIGHER, ours, n, peer, n,
 *				   "mutex+condvar queue");
 *	bench_report_note(rep, row, "p99", "%.0f ns", p99);
 *	return bench_report_close(rep) ? 1 : 0;
 *
 * Each row's "ours" and "peer" are the medians of the samples given (one
 * sample per run), "spread" is "min..max" of ours, and "ratio" is oriented
 * so that > 1 means ours is better: peer/ours when lower is better,
 * ours/peer when higher is better.
 */
#ifndef ATOLL_BENCHLIB_H
#define ATOLL_BENCHLIB_H

#include <stdbool.h>
#include <stddef.h>

/* Which direction of a metric is good. */
enum bench_better {
	BENCH_LOWER,	/* latency, time, bytes: smaller wins */
	BENCH_HIGHER,	/* throughput: larger wins */
};

struct bench_report;

/* True when the environment asks for the few-second smoke version:
 * BENCH_QUICK set, non-empty and not "0". */
bool bench_quick(void);

/* How many times each measurement repeats: BENCH_RUNS if set to a
 * positive integer, else 3 quick / 5 full. */
int bench_runs(void);

/* Pick the first of two values according to bench_quick(). */
static inline double bench_pick(double full, double quick)
{
	return bench_quick() ? quick : full;
}

/* Print "bench: <message>" to stderr and exit(1). For setup failures a
 * benchmark cannot continue past. */
void bench_die(const char *fmt, ...)
	__attribute__((noreturn, format(printf, 1, 2)));

/* Print "SKIP: <sentence>" on stdout and exit 77 (the benchmark cannot
 * run here: not root, one cpu, a program missing). */
void bench_skip(const char *fmt, ...)
	__attribute__((noreturn, format(printf, 1, 2)));

/* The whole file at path, NUL-terminated, in malloc'd memory (works for
 * /proc files, whose size is not known ahead); *len (if not NULL) gets
 * its length. NULL when it cannot be opened or memory runs out. */
char *bench_read_file(const char *path, size_t *len);

/* ---- report ---------------------------------------------------------- */

/* Start the report of benchmark `name` (letters, digits, '-', '_'; it
 * names the output files). Open it before measuring: it notes the CPU
 * time used so far, so close can tell how much of the machine other
 * processes took during the run. Returns NULL, with a message on stderr,
 * when the name is invalid or memory is short. */
struct bench_report *bench_report_open(const char *name);

/* Add one row. ours[n_ours] and peer[n_peer] hold one sample per run;
 * n_peer may be 0 (peer NULL) for a row without a peer, in which case
 * "peer", "peer_name" and "ratio" are null. Non-finite samples are an
 * error. Returns the row's index (>= 0) for bench_report_note(), or
 * -EINVAL / -ENOMEM. */
int bench_report_row(struct bench_report *rep, const char *metric,
		     const char *unit, enum bench_better better,
		     const double *ours, size_t n_ours,
		     const double *peer, size_t n_peer,
		     const char *peer_name);

/* Attach an extra string field `key` to row `row` (for example "ours_p99"
 * = "212 ns"). It appears as a JSON field of the row and in the notes
 * column of the tables. key must not be one of the standard fields.
 * Returns 0, -EINVAL or -ENOMEM. */
int bench_report_note(struct bench_report *rep, int row, const char *key,
		      const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

/* Append a paragraph to the Markdown file, below the table (method,
 * caveats). Returns 0 or -ENOMEM. */
int bench_report_text(struct bench_report *rep, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/* Print the table to stdout, write $BENCH_OUT/<name>.json and .md
 * (BENCH_OUT defaults to ./bench/results; created if missing) each
 * through a temporary file and rename, and free the report. The Markdown
 * header gives the command (env BENCH_CMD, else this process's argv), the
 * UTC date, nproc, the CPU model, the mode and the share of CPU time
 * other processes used since open (warned about on stderr above 10%).
 * Returns 0, or a negative errno after printing which file failed and
 * why. rep may be NULL (a failed open): returns -EINVAL. */
int bench_report_close(struct bench_report *rep);

/* ---- programs a benchmark drives ------------------------------------- */

/* Paths of the tree's programs, compiled in by bench/meson.build
 * (bench_tools_dep) for the benchmarks that drive them; empty otherwise. */
#ifndef ATOLL_ATOLLD_PATH
#define ATOLL_ATOLLD_PATH ""
#endif
#ifndef ATOLL_CLI_PATH
#define ATOLL_CLI_PATH ""
#endif
#ifndef ATOLL_KV_PATH
#define ATOLL_KV_PATH ""
#endif
#ifndef LOADGEN_PATH
#define LOADGEN_PATH ""
#endif
#ifndef LOADGEN_PLOT_PATH
#define LOADGEN_PLOT_PATH ""
#endif

/* The path of a program to run as a child: $env when set and not empty
 * (an override), else built (the path bench/meson.build compiled in, or a
 * system default). Whether it exists is for the caller to check. */
const char *bench_tool(const char *env, const char *built);

/* ---- CPUs ------------------------------------------------------------ */

/* Pin the calling thread to `cpu`. Returns 0 or a negative errno. */
int bench_pin_cpu(int cpu);

/* Fill cpus[0..max) with CPUs of the affinity mask the process started
 * with (taken before main(), so pinning does not shrink it), in ascending
 * order. Returns how many (>= 0) or a negative errno. */
int bench_cpus(int *cpus, int max);

/* Two distinct CPUs from the starting affinity mask (as bench_cpus()):
 * *a is the first allowed CPU, *b the next one. Returns 0, or -ENODEV
 * when fewer than two are allowed. */
int bench_two_cpus(int *a, int *b);

struct rusage;

/* User + system time of ru, in seconds. */
double bench_rusage_s(const struct rusage *ru);

/* Run ours_stmt and peer_stmt, ours first when run r is even: the order
 * alternates, so warm-up or drift favours neither side. */
#define BENCH_PAIR(r, ours_stmt, peer_stmt)                                \
	do {                                                               \
		if ((r) % 2 == 0) {                                        \
			ours_stmt;                                         \
			peer_stmt;                                         \
		} else {                                                   \
			peer_stmt;                                         \
			ours_stmt;                                         \
		}                                                          \
	} while (0)

/* ---- statistics on samples ------------------------------------------- */

/* Median (mean of the two middle values for even n), min and max of
 * v[0..n). The array is not modified. n == 0 gives NaN. */
double bench_median(const double *v, size_t n);
double bench_min(const double *v, size_t n);
double bench_max(const double *v, size_t n);

/* The p-th percentile (0 <= p <= 100) of v[0..n), nearest rank; the array
 * is not modified. n == 0 gives NaN. For large sample sets prefer hist.h. */
double bench_percentile(const double *v, size_t n, double p);

/* Format x compactly for humans: 3 significant digits with a k/M/G suffix
 * from 10 000 up ("48.2M", "612", "41.2", "0.0312"). Returns buf. */
char *bench_fmt(char *buf, size_t len, double x);

#endif /* ATOLL_BENCHLIB_H */
