/* report.c - loadgen's results: a table on stdout and a JSON file. */
#include "loadgen.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <string.h>
#include <unistd.h>

/* Percentiles every report gives, and their JSON names. */
static const struct {
	double p;
	const char *json;
	const char *head;
} pcts[] = {
	{ 50, "p50_us", "p50" },
	{ 90, "p90_us", "p90" },
	{ 99, "p99_us", "p99" },
	{ 99.9, "p999_us", "p99.9" },
};

uint64_t lg_percentile(const struct hist *h, uint64_t scheduled, double p)
{
	uint64_t rank, answered = hist_count(h);

	if (!scheduled || !answered)
		return UINT64_MAX;
	rank = (uint64_t)ceil(p / 100.0 * (double)scheduled);
	if (rank < 1)
		rank = 1;
	if (rank > answered)
		return UINT64_MAX;
	return hist_percentile(h, 100.0 * (double)rank / (double)answered);
}

uint64_t lg_step_percentile(const struct lg_step *st, double p)
{
	return lg_percentile(&st->hist, st->scheduled, p);
}

double lg_step_achieved(const struct lg_step *st)
{
	return st->window_ns ? (double)st->replies_in_window * 1e9 /
			       (double)st->window_ns : 0;
}

static uint64_t incomplete(const struct lg_step *st)
{
	return st->scheduled - st->completed;
}

/* Microseconds for the table, "inf" for an unanswered percentile. */
static void us_cell(char *buf, size_t len, uint64_t ns)
{
	if (ns == UINT64_MAX)
		snprintf(buf, len, "inf");
	else
		snprintf(buf, len, "%.1f", (double)ns / 1e3);
}

void report_header(FILE *f)
{
	fprintf(f, "%10s %10s", "offered/s", "achieved/s");
	for (size_t i = 0; i < sizeof(pcts) / sizeof(pcts[0]); i++)
		fprintf(f, " %8s", pcts[i].head);
	fprintf(f, " %8s %8s %7s %7s %7s %6s %6s %5s\n", "max(us)",
		"typ.p99", "late", "waited", "unansw", "miss", "err", "busy");
	fflush(f);
}

void report_step(FILE *f, const struct lg_step *st)
{
	char cell[32];

	fprintf(f, "%10.0f %10.0f", st->offered, lg_step_achieved(st));
	for (size_t i = 0; i < sizeof(pcts) / sizeof(pcts[0]); i++) {
		us_cell(cell, sizeof(cell), lg_step_percentile(st, pcts[i].p));
		fprintf(f, " %8s", cell);
	}
	us_cell(cell, sizeof(cell), incomplete(st) ? UINT64_MAX :
		hist_max(&st->hist));
	fprintf(f, " %8s", cell);
	if (isnan(st->typ_p99))
		snprintf(cell, sizeof(cell), "-");
	else
		us_cell(cell, sizeof(cell), isfinite(st->typ_p99) ?
			(uint64_t)st->typ_p99 : UINT64_MAX);
	fprintf(f, " %8s %7" PRIu64 " %7" PRIu64 " %7" PRIu64 " %6" PRIu64
		" %6" PRIu64 " %4.0f%%\n", cell, st->late, st->late_waited,
		incomplete(st), st->misses, st->failed + st->not_stored,
		100 * st->busy_frac);
	fflush(f);
}

void report_footer(FILE *f, const struct lg_config *cfg,
		   const struct lg_step *steps)
{
	uint64_t late = 0, waited = 0, failed = 0, gen_lag = 0;
	double preempted = 0;
	const char *first = NULL;

	for (unsigned i = 0; i < cfg->nrates; i++) {
		late += steps[i].late;
		waited += steps[i].late_waited;
		failed += steps[i].failed;
		if (steps[i].max_gen_lag_ns > gen_lag)
			gen_lag = steps[i].max_gen_lag_ns;
		if (steps[i].preempted_frac > preempted)
			preempted = steps[i].preempted_frac;
		if (!first && steps[i].first_error[0])
			first = steps[i].first_error;
	}
	fprintf(f, "# late: sent > %.0f us after schedule; waited: of "
		"those, because every connection had %u outstanding; unansw: "
		"no reply %.1f s after the window; busy: the busiest sender's "
		"share of time not idle\n", (double)cfg->late_ns / 1e3,
		cfg->depth, (double)cfg->grace_ns / 1e9);
	if (late > waited)
		fprintf(f, "# warning: %" PRIu64 " sends were late through the "
			"generator's own fault (worst %.0f us); pin it "
			"(--cpus) and raise its priority (--fifo) or add "
			"threads (-T).\n", late - waited, (double)gen_lag / 1e3);
	if (preempted > 0.05)
		fprintf(f, "# warning: a sender waited for its cpu %.0f%% of "
			"a step (other processes ran there); busy counts that "
			"time too. --fifo stops it.\n", 100 * preempted);
	if (failed)
		fprintf(f, "# warning: the server answered %" PRIu64 " "
			"requests with an error, first: %s\n", failed, first);
	fflush(f);
}

/* ---- JSON --------------------------------------------------------------- */

static void json_us(FILE *f, const char *key, uint64_t ns)
{
	if (ns == UINT64_MAX)
		fprintf(f, ", \"%s\": null", key);
	else
		fprintf(f, ", \"%s\": %.3f", key, (double)ns / 1e3);
}

/* A typical percentile: null when infinite or not computed. */
static void json_typ(FILE *f, const char *key, double ns)
{
	if (!isfinite(ns))
		fprintf(f, ", \"%s\": null", key);
	else
		fprintf(f, ", \"%s\": %.3f", key, ns / 1e3);
}

/* A string with the characters JSON cannot carry raw escaped. */
static void json_str(FILE *f, const char *s)
{
	fputc('"', f);
	for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
		if (*p == '"' || *p == '\\')
			fprintf(f, "\\%c", *p);
		else if (*p < 0x20)
			fprintf(f, "\\u%04x", *p);
		else
			fputc(*p, f);
	}
	fputc('"', f);
}

static void json_config(FILE *f, const struct lg_config *cfg)
{
	fprintf(f, "  \"server\": ");
	json_str(f, cfg->server);
	fprintf(f, ",\n  \"config\": {\"connections\": %u, \"threads\": %u, "
		"\"depth\": %u, \"arrival\": \"%s\", \"keys\": %" PRIu64
		", \"key_len\": %u, \"zipf_theta\": %.4f, \"get_ratio\": %.4f, "
		"\"value_min\": %u, \"value_max\": %u, \"warmup_s\": %.3f, "
		"\"duration_s\": %.3f, \"grace_s\": %.3f, \"late_us\": %.1f, "
		"\"slice_ms\": %.3f, \"preload\": %s, \"fifo_prio\": %d, "
		"\"seed\": %" PRIu64 "},\n",
		cfg->conns, cfg->threads, cfg->depth,
		cfg->fixed ? "fixed" : "poisson", cfg->keys, cfg->key_len,
		cfg->zipf, cfg->get_ratio, cfg->vmin, cfg->vmax,
		(double)cfg->warmup_ns / 1e9, (double)cfg->duration_ns / 1e9,
		(double)cfg->grace_ns / 1e9, (double)cfg->late_ns / 1e3,
		(double)cfg->slice_ns / 1e6, cfg->preload ? "true" : "false",
		cfg->fifo_prio, cfg->seed);
}

static void json_step(FILE *f, const struct lg_step *st)
{
	fprintf(f, "    {\"offered\": %.1f, \"achieved\": %.1f, "
		"\"scheduled\": %" PRIu64 ", \"completed\": %" PRIu64
		", \"unanswered\": %" PRIu64 ", \"gets\": %" PRIu64
		", \"sets\": %" PRIu64 ", \"hits\": %" PRIu64 ", \"misses\": %"
		PRIu64 ", \"not_stored\": %" PRIu64 ", \"errors\": %" PRIu64
		", \"late_sends\": %" PRIu64 ", \"late_waited_for_conn\": %"
		PRIu64, st->offered, lg_step_achieved(st), st->scheduled,
		st->completed, incomplete(st), st->gets, st->sets, st->hits,
		st->misses, st->not_stored, st->failed, st->late,
		st->late_waited);
	json_us(f, "max_send_lag_us", st->max_lag_ns);
	json_us(f, "max_gen_lag_us", st->max_gen_lag_ns);
	fprintf(f, ", \"busy_frac\": %.4f, \"preempted_frac\": ",
		st->busy_frac);
	if (isfinite(st->preempted_frac))
		fprintf(f, "%.4f", st->preempted_frac);
	else
		fputs("null", f);
	for (size_t i = 0; i < sizeof(pcts) / sizeof(pcts[0]); i++)
		json_us(f, pcts[i].json, lg_step_percentile(st, pcts[i].p));
	json_us(f, "max_us", incomplete(st) ? UINT64_MAX :
		hist_max(&st->hist));
	fprintf(f, ", \"slices\": %u", st->slices);
	json_typ(f, "typ_p50_us", st->typ_p50);
	json_typ(f, "typ_p99_us", st->typ_p99);
	json_typ(f, "typ_p999_us", st->typ_p999);
	fprintf(f, ", \"mean_us\": %.3f, \"first_error\": ",
		hist_mean(&st->hist) / 1e3);
	json_str(f, st->first_error);
	fputc('}', f);
}

int report_json(const char *path, const struct lg_config *cfg,
		const struct lg_step *steps)
{
	bool out = !strcmp(path, "-");
	FILE *f = out ? stdout : fopen(path, "we");
	int err = 0;

	if (!f) {
		err = -errno;
		fprintf(stderr, "loadgen: cannot create %s: %s.\n", path,
			strerror(-err));
		return err;
	}
	fprintf(f, "{\n  \"tool\": \"loadgen\",\n");
	json_config(f, cfg);
	fprintf(f, "  \"steps\": [\n");
	for (unsigned i = 0; i < cfg->nrates; i++) {
		json_step(f, &steps[i]);
		fprintf(f, "%s\n", i + 1 < cfg->nrates ? "," : "");
	}
	fprintf(f, "  ]\n}\n");
	if (fflush(f) || ferror(f))
		err = -(errno ? errno : EIO);
	if (!out && fclose(f) && !err)
		err = -errno;
	if (err)
		fprintf(stderr, "loadgen: cannot write %s: %s.\n", path,
			strerror(-err));
	return err;
}
