/* benchlib.c - run policy, reports (table, JSON, Markdown), pinning, stats. */
#include "benchlib.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <pthread.h>
#include <sched.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>

#include <atoll/compiler.h>

struct bench_note {
	char *key;
	char *val;
};

struct bench_row {
	char *metric;
	char *unit;
	enum bench_better better;
	double ours;		/* median of the ours samples */
	double ours_min, ours_max;
	double peer;		/* median of the peer samples, NaN: none */
	char *peer_name;	/* NULL: no peer */
	double ratio;		/* > 1: ours better; NaN: undefined */
	size_t n;		/* runs behind ours */
	struct bench_note *notes;
	size_t n_notes;
};

/* CPU time spent by the whole machine and by this process, to tell how
 * much of the machine other processes used during a run. */
struct bench_load {
	bool ok;
	double busy_s;		/* all CPUs, not idle (steal is busy) */
	double total_s;		/* all CPUs, all states */
	double self_s;		/* this process and the children it
				 * reaped, user + system */
};

struct bench_report {
	char *name;
	struct bench_row *rows;
	size_t n_rows;
	char **texts;		/* paragraphs for the .md */
	size_t n_texts;
	struct bench_load load0;	/* machine and process CPU at open */
	double others_pct;	/* set by close: others' share, < 0 unknown */
};

/* ---- environment -------------------------------------------------------- */

bool bench_quick(void)
{
	const char *q = getenv("BENCH_QUICK");

	return q && *q && strcmp(q, "0") != 0;
}

int bench_runs(void)
{
	static int warned;
	int def = bench_quick() ? 3 : 5;
	const char *s = getenv("BENCH_RUNS");
	char *end;
	long v;

	if (!s || !*s)
		return def;
	errno = 0;
	v = strtol(s, &end, 10);
	if (errno || *end || v < 1 || v > 1000) {
		if (!warned++)
			fprintf(stderr, "bench: BENCH_RUNS='%s' is not an "
				"integer from 1 to 1000; using %d runs.\n", s,
				def);
		return def;
	}
	return (int)v;
}

void bench_die(const char *fmt, ...)
{
	va_list ap;

	fflush(stdout);
	fputs("bench: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	exit(1);
}

/* ---- statistics --------------------------------------------------------- */

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

/* Sorted copy of v, or NULL when n == 0 or memory is short. */
static double *sorted_copy(const double *v, size_t n)
{
	double *c;

	if (n == 0)
		return NULL;
	c = malloc(n * sizeof(*c));
	if (!c)
		return NULL;
	memcpy(c, v, n * sizeof(*c));
	qsort(c, n, sizeof(*c), cmp_double);
	return c;
}

double bench_median(const double *v, size_t n)
{
	double *c = sorted_copy(v, n);
	double m;

	if (!c)
		return NAN;
	m = n % 2 ? c[n / 2] : (c[n / 2 - 1] + c[n / 2]) / 2;
	free(c);
	return m;
}

double bench_percentile(const double *v, size_t n, double p)
{
	double *c = sorted_copy(v, n);
	double x;
	size_t rank;

	if (!c)
		return NAN;
	if (p <= 0)
		rank = 1;
	else if (p >= 100)
		rank = n;
	else
		rank = (size_t)ceil(p / 100.0 * (double)n);
	if (rank < 1)
		rank = 1;
	x = c[rank - 1];
	free(c);
	return x;
}

double bench_min(const double *v, size_t n)
{
	double m = n ? v[0] : NAN;

	for (size_t i = 1; i < n; i++)
		if (v[i] < m)
			m = v[i];
	return m;
}

double bench_max(const double *v, size_t n)
{
	double m = n ? v[0] : NAN;

	for (size_t i = 1; i < n; i++)
		if (v[i] > m)
			m = v[i];
	return m;
}

char *bench_fmt(char *buf, size_t len, double x)
{
	static const struct {
		double scale;
		const char *suffix;
	} units[] = { { 1e12, "T" }, { 1e9, "G" }, { 1e6, "M" }, { 1e3, "k" } };
	double a = fabs(x);

	if (!isfinite(x)) {
		snprintf(buf, len, "-");
		return buf;
	}
	if (a >= 1e4) {
		for (size_t i = 0; i < ARRAY_SIZE(units); i++) {
			if (a >= units[i].scale) {
				snprintf(buf, len, "%.3g%s", x / units[i].scale,
					 units[i].suffix);
				return buf;
			}
		}
	}
	if (a >= 1000)
		snprintf(buf, len, "%.0f", x);
	else
		snprintf(buf, len, "%.3g", x);
	return buf;
}

/* ---- CPUs --------------------------------------------------------------- */

/* The affinity mask the process started with, taken before main() so that
 * pinning threads later does not shrink what bench_cpus() and the report
 * header see. */
static cpu_set_t start_mask;
static int start_mask_err;

__attribute__((constructor)) static void bench__save_mask(void)
{
	CPU_ZERO(&start_mask);
	if (sched_getaffinity(0, sizeof(start_mask), &start_mask) < 0)
		start_mask_err = -errno;
}

void bench_skip(const char *fmt, ...)
{
	va_list ap;

	printf("SKIP: ");
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	printf("\n");
	fflush(stdout);
	exit(77);
}

char *bench_read_file(const char *path, size_t *len)
{
	FILE *f = fopen(path, "re");
	char *buf = NULL, *bigger;
	size_t cap = 0, n = 0, r;

	if (!f)
		return NULL;
	do {
		if (cap - n < 4096 + 1) {
			cap = 2 * cap + 8192;
			bigger = realloc(buf, cap);
			if (!bigger) {
				free(buf);
				fclose(f);
				return NULL;
			}
			buf = bigger;
		}
		r = fread(buf + n, 1, cap - n - 1, f);
		n += r;
	} while (r);
	fclose(f);
	buf[n] = '\0';
	if (len)
		*len = n;
	return buf;
}

const char *bench_tool(const char *env, const char *built)
{
	const char *v = getenv(env);

	return v && *v ? v : built;
}

int bench_pin_cpu(int cpu)
{
	cpu_set_t set;

	if (cpu < 0 || cpu >= CPU_SETSIZE)
		return -EINVAL;
	CPU_ZERO(&set);
	CPU_SET(cpu, &set);
	/* pthread_* return the error number instead of setting errno. */
	return -pthread_setaffinity_np(pthread_self(), sizeof(set), &set);
}

int bench_cpus(int *cpus, int max)
{
	int n = 0;

	if (max < 0 || (max > 0 && !cpus))
		return -EINVAL;
	if (start_mask_err)
		return start_mask_err;
	for (int c = 0; c < CPU_SETSIZE && n < max; c++)
		if (CPU_ISSET(c, &start_mask))
			cpus[n++] = c;
	return n;
}

int bench_two_cpus(int *a, int *b)
{
	int cpus[2];
	int n = bench_cpus(cpus, 2);

	if (n < 0)
		return n;
	if (n < 2)
		return -ENODEV;
	*a = cpus[0];
	*b = cpus[1];
	return 0;
}

/* ---- background load ------------------------------------------------- */

double bench_rusage_s(const struct rusage *ru)
{
	return (double)(ru->ru_utime.tv_sec + ru->ru_stime.tv_sec) +
	       (double)(ru->ru_utime.tv_usec + ru->ru_stime.tv_usec) / 1e6;
}

static struct bench_load load_now(void)
{
	struct bench_load l = { 0 };
	unsigned long long v[8] = { 0 };
	long hz = sysconf(_SC_CLK_TCK);
	struct rusage kids;
	struct timespec ts;
	FILE *f = fopen("/proc/stat", "re");
	int n;

	if (!f)
		return l;
	/* cpu  user nice system idle iowait irq softirq steal ... */
	n = fscanf(f, "cpu %llu %llu %llu %llu %llu %llu %llu %llu", &v[0],
		   &v[1], &v[2], &v[3], &v[4], &v[5], &v[6], &v[7]);
	fclose(f);
	if (n < 5 || hz <= 0 ||
	    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts) ||
	    getrusage(RUSAGE_CHILDREN, &kids))
		return l;
	for (int i = 0; i < 8; i++)
		l.total_s += (double)v[i] / (double)hz;
	l.busy_s = l.total_s - (double)(v[3] + v[4]) / (double)hz;
	/* The servers, generators and antagonists a benchmark runs are its
	 * own load, not the machine's: count them once reaped. */
	l.self_s = (double)ts.tv_sec + (double)ts.tv_nsec / 1e9 +
		   bench_rusage_s(&kids);
	l.ok = true;
	return l;
}

/* Percent of the machine's CPU time used by other processes (and the
 * hypervisor's steal) since l0; negative when unknown. */
static double load_others_pct(const struct bench_load *l0)
{
	struct bench_load l1 = load_now();
	double total, others;

	if (!l0->ok || !l1.ok)
		return -1;
	total = l1.total_s - l0->total_s;
	if (total <= 0)
		return -1;
	others = (l1.busy_s - l0->busy_s) - (l1.self_s - l0->self_s);
	if (others < 0)
		others = 0;
	return 100.0 * others / total;
}

/* ---- report ------------------------------------------------------------- */

static const char *const std_fields[] = {
	"metric", "unit", "ours", "peer", "peer_name", "better", "n",
	"spread", "ratio",
};

struct bench_report *bench_report_open(const char *name)
{
	struct bench_report *rep;

	if (!name || !*name || strlen(name) > 64 ||
	    strspn(name, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
			 "0123456789-_") != strlen(name)) {
		fprintf(stderr, "bench: report name '%s' is not a plain file "
			"name (letters, digits, '-', '_', at most 64).\n",
			name ? name : "(null)");
		return NULL;
	}
	rep = calloc(1, sizeof(*rep));
	if (rep)
		rep->name = strdup(name);
	if (!rep || !rep->name) {
		free(rep);
		fprintf(stderr, "bench: out of memory opening report '%s'.\n",
			name);
		return NULL;
	}
	rep->load0 = load_now();
	return rep;
}

static bool all_finite(const double *v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (!isfinite(v[i]))
			return false;
	return true;
}

static void row_free(struct bench_row *r)
{
	free(r->metric);
	free(r->unit);
	free(r->peer_name);
	for (size_t i = 0; i < r->n_notes; i++) {
		free(r->notes[i].key);
		free(r->notes[i].val);
	}
	free(r->notes);
}

int bench_report_row(struct bench_report *rep, const char *metric,
		     const char *unit, enum bench_better better,
		     const double *ours, size_t n_ours,
		     const double *peer, size_t n_peer,
		     const char *peer_name)
{
	struct bench_row r = { 0 }, *rows;

	if (!rep || !metric || !unit || !ours || n_ours == 0 ||
	    (better != BENCH_LOWER && better != BENCH_HIGHER) ||
	    (n_peer && (!peer || !peer_name)) || rep->n_rows >= INT32_MAX)
		return -EINVAL;
	if (!all_finite(ours, n_ours) || !all_finite(peer, n_peer)) {
		fprintf(stderr, "bench: row '%s' has a non-finite sample; "
			"dropped.\n", metric);
		return -EINVAL;
	}
	r.better = better;
	r.n = n_ours;
	r.ours = bench_median(ours, n_ours);
	r.ours_min = bench_min(ours, n_ours);
	r.ours_max = bench_max(ours, n_ours);
	r.peer = NAN;
	r.ratio = NAN;
	if (n_peer) {
		r.peer = bench_median(peer, n_peer);
		if (better == BENCH_LOWER && r.ours > 0)
			r.ratio = r.peer / r.ours;
		else if (better == BENCH_HIGHER && r.peer > 0)
			r.ratio = r.ours / r.peer;
	}
	r.metric = strdup(metric);
	r.unit = strdup(unit);
	r.peer_name = n_peer ? strdup(peer_name) : NULL;
	rows = realloc(rep->rows, (rep->n_rows + 1) * sizeof(*rows));
	if (!r.metric || !r.unit || (n_peer && !r.peer_name) || !rows ||
	    isnan(r.ours) || (n_peer && isnan(r.peer))) {
		if (rows)
			rep->rows = rows;
		row_free(&r);
		return -ENOMEM;
	}
	rep->rows = rows;
	rows[rep->n_rows] = r;
	return (int)rep->n_rows++;
}

/* vasprintf-like; NULL when memory is short. */
static char *vfmt(const char *fmt, va_list ap)
{
	char *s = NULL;

	if (vasprintf(&s, fmt, ap) < 0)
		return NULL;
	return s;
}

int bench_report_note(struct bench_report *rep, int row, const char *key,
		      const char *fmt, ...)
{
	struct bench_row *r;
	struct bench_note *notes;
	char *k, *v;
	va_list ap;

	if (!rep || row < 0 || (size_t)row >= rep->n_rows || !key || !*key ||
	    !fmt)
		return -EINVAL;
	for (size_t i = 0; i < ARRAY_SIZE(std_fields); i++)
		if (!strcmp(key, std_fields[i]))
			return -EINVAL;
	r = &rep->rows[row];
	for (size_t i = 0; i < r->n_notes; i++)
		if (!strcmp(key, r->notes[i].key))
			return -EINVAL;
	va_start(ap, fmt);
	v = vfmt(fmt, ap);
	va_end(ap);
	k = strdup(key);
	notes = realloc(r->notes, (r->n_notes + 1) * sizeof(*notes));
	if (notes)
		r->notes = notes;
	if (!k || !v || !notes) {
		free(k);
		free(v);
		return -ENOMEM;
	}
	notes[r->n_notes].key = k;
	notes[r->n_notes].val = v;
	r->n_notes++;
	return 0;
}

int bench_report_text(struct bench_report *rep, const char *fmt, ...)
{
	char **texts, *s;
	va_list ap;

	if (!rep || !fmt)
		return -EINVAL;
	va_start(ap, fmt);
	s = vfmt(fmt, ap);
	va_end(ap);
	texts = realloc(rep->texts, (rep->n_texts + 1) * sizeof(*texts));
	if (texts)
		rep->texts = texts;
	if (!s || !texts) {
		free(s);
		return -ENOMEM;
	}
	texts[rep->n_texts++] = s;
	return 0;
}

static void report_free(struct bench_report *rep)
{
	for (size_t i = 0; i < rep->n_rows; i++)
		row_free(&rep->rows[i]);
	for (size_t i = 0; i < rep->n_texts; i++)
		free(rep->texts[i]);
	free(rep->rows);
	free(rep->texts);
	free(rep->name);
	free(rep);
}

/* ---- output helpers ----------------------------------------------------- */

static const char *better_str(enum bench_better b)
{
	return b == BENCH_LOWER ? "lower" : "higher";
}

static void json_str(FILE *f, const char *s)
{
	fputc('"', f);
	for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
		if (*p == '"' || *p == '\\')
			fprintf(f, "\\%c", *p);
		else if (*p == '\n')
			fputs("\\n", f);
		else if (*p == '\t')
			fputs("\\t", f);
		else if (*p < 0x20)
			fprintf(f, "\\u%04x", *p);
		else
			fputc(*p, f);
	}
	fputc('"', f);
}

/* A JSON number with sensible precision, or null. */
static void json_num(FILE *f, double x)
{
	double a = fabs(x);

	if (!isfinite(x))
		fputs("null", f);
	else if (a >= 1000)
		fprintf(f, "%.0f", x);
	else if (a >= 1 || a == 0)
		fprintf(f, "%.3f", x);
	else
		fprintf(f, "%.4g", x);
}

static void spread_str(char *buf, size_t len, const struct bench_row *r)
{
	char lo[32], hi[32];

	snprintf(buf, len, "%s..%s", bench_fmt(lo, sizeof(lo), r->ours_min),
		 bench_fmt(hi, sizeof(hi), r->ours_max));
}

static void ratio_str(char *buf, size_t len, double ratio)
{
	if (!isfinite(ratio))
		snprintf(buf, len, "-");
	else if (ratio >= 100)
		snprintf(buf, len, "%.0fx", ratio);
	else
		snprintf(buf, len, "%.2fx", ratio);
}

static void write_json(FILE *f, const struct bench_report *rep)
{
	char spread[80];

	fputs("[\n", f);
	for (size_t i = 0; i < rep->n_rows; i++) {
		const struct bench_row *r = &rep->rows[i];

		fputs("  {\"metric\": ", f);
		json_str(f, r->metric);
		fputs(", \"unit\": ", f);
		json_str(f, r->unit);
		fputs(", \"ours\": ", f);
		json_num(f, r->ours);
		fputs(", \"peer\": ", f);
		json_num(f, r->peer);
		fputs(", \"peer_name\": ", f);
		if (r->peer_name)
			json_str(f, r->peer_name);
		else
			fputs("null", f);
		fprintf(f, ", \"better\": \"%s\", \"n\": %zu, \"spread\": ",
			better_str(r->better), r->n);
		spread_str(spread, sizeof(spread), r);
		json_str(f, spread);
		fputs(", \"ratio\": ", f);
		json_num(f, r->ratio);
		for (size_t k = 0; k < r->n_notes; k++) {
			fputs(", ", f);
			json_str(f, r->notes[k].key);
			fputs(": ", f);
			json_str(f, r->notes[k].val);
		}
		fprintf(f, "}%s\n", i + 1 < rep->n_rows ? "," : "");
	}
	fputs("]\n", f);
}

/* Markdown cell text: '|' would end the cell, newlines the row. */
static void md_cell(FILE *f, const char *s)
{
	for (; *s; s++) {
		if (*s == '|')
			fputs("\\|", f);
		else if (*s == '\n')
			fputc(' ', f);
		else
			fputc(*s, f);
	}
}

/* The command that produced the results: $BENCH_CMD, else our argv. */
static void command_str(char *buf, size_t len)
{
	const char *env = getenv("BENCH_CMD");
	ssize_t n;
	int fd;

	if (env && *env) {
		snprintf(buf, len, "%s", env);
		return;
	}
	snprintf(buf, len, "(unknown)");
	fd = open("/proc/self/cmdline", O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return;
	n = read(fd, buf, len - 1);
	close(fd);
	if (n <= 0) {
		snprintf(buf, len, "(unknown)");
		return;
	}
	buf[n] = '\0';
	while (n > 0 && buf[n - 1] == '\0')
		n--;
	for (ssize_t i = 0; i < n; i++)
		if (buf[i] == '\0')
			buf[i] = ' ';
}

static void cpu_model(char *buf, size_t len)
{
	/* x86 says "model name"; arm64 kernels give only part numbers. */
	static const char *const keys[] = { "model name", "Model", "CPU part" };
	char line[512];
	FILE *f = fopen("/proc/cpuinfo", "re");

	snprintf(buf, len, "unknown");
	if (!f)
		return;
	for (size_t k = 0; k < ARRAY_SIZE(keys); k++) {
		rewind(f);
		while (fgets(line, sizeof(line), f)) {
			char *colon = strchr(line, ':');

			if (strncmp(line, keys[k], strlen(keys[k])) || !colon)
				continue;
			colon++;
			colon += strspn(colon, " \t");
			colon[strcspn(colon, "\n")] = '\0';
			snprintf(buf, len, "%s%s", k == 2 ? "CPU part " : "",
				 colon);
			fclose(f);
			return;
		}
	}
	fclose(f);
}

static void write_md(FILE *f, const struct bench_report *rep)
{
	char cmd[1024], model[256], date[64], num[32], spread[80], ratio[32];
	long online = sysconf(_SC_NPROCESSORS_ONLN);
	int allowed = start_mask_err ? -1 : CPU_COUNT(&start_mask);
	struct utsname uts;
	time_t now = time(NULL);
	struct tm tm;

	command_str(cmd, sizeof(cmd));
	cpu_model(model, sizeof(model));
	if (gmtime_r(&now, &tm))
		strftime(date, sizeof(date), "%Y-%m-%d %H:%M:%S UTC", &tm);
	else
		snprintf(date, sizeof(date), "unknown");
	if (uname(&uts))
		snprintf(uts.release, sizeof(uts.release), "unknown");

	fprintf(f, "# Benchmark: %s\n\n", rep->name);
	fprintf(f, "- command: `%s`\n", cmd);
	fprintf(f, "- date: %s\n", date);
	fprintf(f, "- nproc: %ld online, %d in the affinity mask at start\n",
		online, allowed);
	fprintf(f, "- CPU: %s\n", model);
	fprintf(f, "- kernel: Linux %s\n", uts.release);
	fprintf(f, "- mode: %s, %d runs per measurement; ours and peer "
		"interleaved in each run; values are medians of the runs\n",
		bench_quick() ? "quick (BENCH_QUICK)" : "full", bench_runs());
	if (rep->others_pct >= 0)
		fprintf(f, "- other load: %.0f%% of the machine's CPU time "
			"went to other processes (or hypervisor steal) during "
			"the run (this benchmark's children count as its own "
			"once reaped)%s\n", rep->others_pct,
			rep->others_pct > 10 ? "; figures may be disturbed" :
			"");
	fputc('\n', f);

	fputs("| metric | unit | ours | peer | peer name | better | ratio | "
	      "runs | spread of ours | notes |\n", f);
	fputs("|---|---|---:|---:|---|---|---:|---:|---|---|\n", f);
	for (size_t i = 0; i < rep->n_rows; i++) {
		const struct bench_row *r = &rep->rows[i];

		fputs("| ", f);
		md_cell(f, r->metric);
		fputs(" | ", f);
		md_cell(f, r->unit);
		fprintf(f, " | %s", bench_fmt(num, sizeof(num), r->ours));
		fprintf(f, " | %s | ", bench_fmt(num, sizeof(num), r->peer));
		md_cell(f, r->peer_name ? r->peer_name : "-");
		ratio_str(ratio, sizeof(ratio), r->ratio);
		spread_str(spread, sizeof(spread), r);
		fprintf(f, " | %s | %s | %zu | %s | ", better_str(r->better),
			ratio, r->n, spread);
		for (size_t k = 0; k < r->n_notes; k++) {
			fprintf(f, "%s", k ? "; " : "");
			md_cell(f, r->notes[k].key);
			fputs(": ", f);
			md_cell(f, r->notes[k].val);
		}
		fputs(" |\n", f);
	}
	fputs("\nratio: how many times better ours is (peer/ours for "
	      "lower-is-better metrics, ours/peer for higher-is-better); "
	      "> 1 means ours wins.\n", f);
	for (size_t i = 0; i < rep->n_texts; i++)
		fprintf(f, "\n%s\n", rep->texts[i]);
}

static void print_table(const struct bench_report *rep)
{
	char ours[32], peer[32], ratio[32], spread[80];
	int w = 6;

	for (size_t i = 0; i < rep->n_rows; i++) {
		int l = (int)strlen(rep->rows[i].metric);

		if (l > w)
			w = l;
	}
	printf("\n%s (%s, %d runs, medians)\n", rep->name,
	       bench_quick() ? "quick" : "full", bench_runs());
	printf("%-*s %-8s %9s %9s %8s  %-18s %s\n", w, "metric", "unit",
	       "ours", "peer", "ratio", "spread of ours", "peer name");
	for (size_t i = 0; i < rep->n_rows; i++) {
		const struct bench_row *r = &rep->rows[i];

		ratio_str(ratio, sizeof(ratio), r->ratio);
		spread_str(spread, sizeof(spread), r);
		printf("%-*s %-8s %9s %9s %8s  %-18s %s\n", w, r->metric,
		       r->unit, bench_fmt(ours, sizeof(ours), r->ours),
		       bench_fmt(peer, sizeof(peer), r->peer), ratio, spread,
		       r->peer_name ? r->peer_name : "-");
		for (size_t k = 0; k < r->n_notes; k++)
			printf("%*s %s: %s\n", w, "", r->notes[k].key,
			       r->notes[k].val);
	}
	printf("(ratio > 1: ours better)\n");
	fflush(stdout);
}

/* mkdir -p. Returns 0 or a negative errno. */
static int mkdirs(const char *path)
{
	char *p = strdup(path);
	int err = 0;

	if (!p)
		return -ENOMEM;
	for (char *s = p + 1; ; s++) {
		if (*s != '/' && *s != '\0')
			continue;
		char c = *s;

		*s = '\0';
		if (mkdir(p, 0777) && errno != EEXIST) {
			err = -errno;
			break;
		}
		*s = c;
		if (!c)
			break;
	}
	free(p);
	return err;
}

/* Write dir/name.ext through dir/.name.ext.tmp.<pid> and rename(2), so a
 * reader never sees half a file. */
static int write_file(const char *dir, const struct bench_report *rep,
		      const char *ext,
		      void (*emit)(FILE *, const struct bench_report *))
{
	char path[4096], tmp[4200];
	FILE *f;
	int err = 0;

	if ((size_t)snprintf(path, sizeof(path), "%s/%s.%s", dir, rep->name,
			     ext) >= sizeof(path)) {
		fprintf(stderr, "bench: output directory '%s' is too long a "
			"path.\n", dir);
		return -ENAMETOOLONG;
	}
	snprintf(tmp, sizeof(tmp), "%s/.%s.%s.tmp.%ld", dir, rep->name, ext,
		 (long)getpid());
	f = fopen(tmp, "we");
	if (!f) {
		err = -errno;
		fprintf(stderr, "bench: cannot create %s: %s.\n", tmp,
			strerror(-err));
		return err;
	}
	emit(f, rep);
	if (fflush(f) || ferror(f) || fsync(fileno(f)))
		err = -(errno ? errno : EIO);
	if (fclose(f) && !err)
		err = -errno;
	if (!err && rename(tmp, path))
		err = -errno;
	if (err) {
		fprintf(stderr, "bench: cannot write %s: %s.\n", path,
			strerror(-err));
		unlink(tmp);
		return err;
	}
	printf("wrote %s\n", path);
	return 0;
}

int bench_report_close(struct bench_report *rep)
{
	const char *dir = getenv("BENCH_OUT");
	int err;

	if (!rep)
		return -EINVAL;
	if (!dir || !*dir)
		dir = "bench/results";
	rep->others_pct = load_others_pct(&rep->load0);
	print_table(rep);
	if (rep->others_pct > 10)
		fprintf(stderr, "bench: other processes used %.0f%% of the "
			"machine's CPU time during the run; the figures may be "
			"disturbed.\n", rep->others_pct);
	err = mkdirs(dir);
	if (err)
		fprintf(stderr, "bench: cannot create output directory %s: "
			"%s.\n", dir, strerror(-err));
	if (!err)
		err = write_file(dir, rep, "json", write_json);
	if (!err)
		err = write_file(dir, rep, "md", write_md);
	fflush(stdout);
	report_free(rep);
	return err;
}
