/* loadgen.h - the pieces of bench/loadgen, an open-loop load generator
 * for memcached-protocol servers: its configuration, the results of one
 * offered rate, the sender threads (sender.c) and the report (report.c).
 *
 * Owns: nothing global besides lg_die()'s lock. A struct lg_config is
 * written by option parsing and read-only afterwards; each sender thread
 * owns its connections, its io_uring and its own struct lg_step, which
 * the main thread merges after every step (see sender.c).
 *
 * Errors: a failure the run cannot continue past (server unreachable,
 * garbage on the wire, no memory) ends the process through lg_die() with
 * a sentence on stderr and exit status 1; option mistakes exit 2.
 */
#ifndef LOADGEN_LOADGEN_H
#define LOADGEN_LOADGEN_H

#include <netinet/in.h>
#include <sched.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include <atoll/hist.h>

#define LG_MAX_CONNS 4096
#define LG_MAX_THREADS 64
#define LG_MAX_DEPTH 1024
#define LG_MAX_RATES 256
#define LG_MAX_SLICES 256	/* of a window, for typical percentiles */

struct lg_config {
	struct sockaddr_in addr;	/* the server */
	char server[272];		/* "host:port" as given */
	unsigned conns;			/* in all, spread over threads */
	unsigned threads;
	unsigned depth;			/* max requests outstanding per conn */
	double rates[LG_MAX_RATES];	/* offered req/s, one step each */
	unsigned nrates;
	bool fixed;			/* fixed gaps, else Poisson */
	uint64_t keys;
	double zipf;			/* 0: uniform */
	unsigned key_len;
	double get_ratio;
	uint32_t vmin, vmax;		/* set value sizes, inclusive */
	uint64_t warmup_ns, duration_ns, grace_ns;
	uint64_t late_ns;		/* a send this late is "late" */
	uint64_t spin_ns;		/* busy-poll this close to an arrival */
	unsigned poll_max;		/* % of time a sender may busy-poll */
	uint64_t slice_ns;		/* typical percentiles' slice; 0: off */
	bool preload;
	int fifo_prio;			/* 0: keep the normal policy */
	int cpus[LG_MAX_THREADS];	/* sender i runs on cpus[i % ncpus] */
	unsigned ncpus;			/* 0: not pinned */
	uint64_t seed;
	const char *json_path;		/* NULL: no JSON */
	bool quiet;
};

/* The results of one offered rate; each sender fills its own, the main
 * thread adds them up (lg_step_merge). Counts are of the requests
 * SCHEDULED in the measurement window, except replies_in_window. */
struct lg_step {
	double offered;			/* req/s */
	uint64_t window_ns;
	uint64_t scheduled;		/* requests scheduled in the window */
	uint64_t completed;		/* ...answered before the grace ran out */
	uint64_t replies_in_window;	/* replies that arrived in it */
	uint64_t gets, sets;		/* answered, by kind */
	uint64_t hits, misses;
	uint64_t not_stored, failed;	/* NOT_STORED; error lines */
	uint64_t late;			/* sent > late_ns after schedule */
	uint64_t late_waited;		/* ...of those, because every
					 * connection was at its depth */
	uint64_t max_lag_ns;		/* worst send lag, any cause */
	uint64_t max_gen_lag_ns;	/* worst lag not waiting for a conn */
	double busy_frac;		/* the busiest sender's busy share */
	double preempted_frac;		/* the most preempted sender's share
					 * of time runnable but not running
					 * (NAN: unknown); busy_frac counts
					 * such time when it falls in a
					 * turn that worked */
	/* Typical percentiles (ns, INFINITY among the unanswered): the
	 * window cut into slices by scheduled time, each slice's own
	 * percentile, the median over slices. A stall of the machine
	 * spoils a slice or two, not the figure. NAN: not computed. */
	double typ_p50, typ_p99, typ_p999;
	unsigned slices;
	char first_error[200];		/* the server's first error line */
	struct hist hist;		/* scheduled send -> reply's last byte */
};

/* Print "loadgen: <message>" to stderr and exit(1). Any thread; the
 * first caller wins. */
void lg_die(const char *fmt, ...)
	__attribute__((noreturn, format(printf, 1, 2)));

/* Connect, preload, then run one step per rate in cfg, filling steps[i]
 * (cfg->nrates of them) and calling report_step() after each unless
 * quiet. Returns when done; fatal errors go through lg_die(). */
void lg_run(const struct lg_config *cfg, struct lg_step *steps);

/* Add src into dst (dst's offered and window_ns are kept). */
void lg_step_merge(struct lg_step *dst, const struct lg_step *src);

/* Latency percentile p of a step in ns, the requests never answered
 * counted as infinitely slow: UINT64_MAX when p falls among those. */
uint64_t lg_step_percentile(const struct lg_step *st, double p);

/* The same for any histogram h of `scheduled` requests, of which
 * hist_count(h) were answered. */
uint64_t lg_percentile(const struct hist *h, uint64_t scheduled, double p);

/* Achieved rate: replies that arrived in the window, per second. */
double lg_step_achieved(const struct lg_step *st);

/* The table: a header, then one line per step. */
void report_header(FILE *f);
void report_step(FILE *f, const struct lg_step *st);
/* Totals and warnings after the last step (late sends, errors). */
void report_footer(FILE *f, const struct lg_config *cfg,
		   const struct lg_step *steps);

/* Write the configuration and every step as JSON to path ("-": stdout).
 * Returns 0 or a negative errno (after a message on stderr). */
int report_json(const char *path, const struct lg_config *cfg,
		const struct lg_step *steps);

#endif /* LOADGEN_LOADGEN_H */
