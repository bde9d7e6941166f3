/* loadgen.c - an open-loop load generator for memcached-protocol servers:
 * options, then lg_run() (sender.c) and the report (report.c).
 *
 * A plain C program (pthreads and io_uring, not the Atoll runtime), so it
 * measures atoll-kv and memcached alike. See usage() for what it does and
 * sender.c for how.
 */
#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <netdb.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <atoll/clock.h>

#include "cpulist.h"
#include "keys.h"
#include "loadgen.h"
#include "mcproto.h"

#define EXIT_USAGE 2

static void usage(FILE *f)
{
	fprintf(f,
"usage: loadgen -r RATES [options]\n"
"\n"
"Open-loop load for a memcached text-protocol server: requests are sent on\n"
"a schedule (Poisson or fixed gaps) whatever the server does, and latency\n"
"runs from each request's SCHEDULED send time to the last byte of its\n"
"reply, so queueing anywhere is counted. One step per offered rate: warm-up\n"
"(sent, not recorded), then the measured window; a table on stdout, JSON\n"
"with --json. Exit status: 0 done, 1 the server could not be reached or\n"
"answered garbage, 2 a bad option.\n"
"\n"
"  -s, --server HOST:PORT   the server (default 127.0.0.1:11211; a bare PORT\n"
"                           means 127.0.0.1)\n"
"  -r, --rate LIST          offered rates in requests/s, comma-separated; k and\n"
"                           M suffixes; START:END:STEP is a sweep\n"
"                           (\"50k,100k\", \"20k:200k:20k\")\n"
"  -a, --arrival KIND       poisson (default) or fixed gaps\n"
"  -c, --conns N            connections in all (default 32)\n"
"  -T, --threads N          sender threads, each with conns/T connections and\n"
"                           rate/T (default 1)\n"
"      --depth N            requests outstanding per connection (default 1:\n"
"                           a request goes to the next connection without one,\n"
"                           and waits in the schedule when all are busy). More\n"
"                           than 1 pipelines in batches: requests fill one\n"
"                           connection up to N, then the next; a full one is\n"
"                           refilled once N/2 have been answered\n"
"  -d, --duration TIME      measured window per rate (default 5s)\n"
"  -w, --warmup TIME        unrecorded traffic before each window (default 1s)\n"
"      --grace TIME         how long to wait for the window's replies after\n"
"                           it; later ones count as unanswered (default 1s)\n"
"  -k, --keys N             key space (default 100000)\n"
"      --key-len N          key length in bytes (default 16, at most 250)\n"
"  -z, --zipf THETA         Zipf key popularity: key i drawn in proportion to\n"
"                           1/(i+1)^THETA, 0 < THETA <= 2 (default: uniform;\n"
"                           0.99 is the usual skew)\n"
"  -g, --get-ratio F        share of gets, the rest are sets (default 0.9)\n"
"  -v, --value-size N|MIN-MAX  bytes per set value, fixed or uniform in a\n"
"                           range (default 32)\n"
"      --no-preload         do not set every key before the first step\n"
"      --late-us X          a send more than X us after its schedule is late\n"
"                           (default 50)\n"
"      --spin-us X          busy-poll when the next arrival is within X us;\n"
"                           sleep otherwise (default 200)\n"
"      --poll-max PCT       spend at most PCT%% of each 10 ms busy-polling;\n"
"                           past it sleep until a reply or the next arrival\n"
"                           (default 80: the kernel stops SCHED_FIFO threads\n"
"                           that run more than 95%% of the time)\n"
"      --slice-ms X         typical percentiles: the median over X ms slices of\n"
"                           the window of each slice's own percentile, which\n"
"                           a short stall of the machine cannot move (default\n"
"                           10; 0: off)\n"
"      --fifo PRIO          run the senders at SCHED_FIFO priority 1-99\n"
"      --cpus LIST          pin sender i to the i-th cpu of LIST (\"0\", \"2-3\")\n"
"      --seed N             random seed (default 1)\n"
"      --json FILE          write the results as JSON (\"-\": stdout)\n"
"  -q, --quiet              no table\n"
"  -h, --help               this text\n"
"\n"
"TIME is seconds, or a number with s, ms or us. Table columns: latencies in\n"
"us; typ.p99 = the typical p99 (see --slice-ms); late = sent more than\n"
"--late-us after schedule, waited = late because every connection was at\n"
"its depth (the server's doing, the rest is the generator's), unansw = no\n"
"reply by the end of the grace time (counted as infinitely slow in the\n"
"percentiles), miss = gets that found no value, err = error replies,\n"
"busy = the busiest sender thread's share of time not idle.\n");
}

static pthread_mutex_t die_lock = PTHREAD_MUTEX_INITIALIZER;

void lg_die(const char *fmt, ...)
{
	va_list ap;

	pthread_mutex_lock(&die_lock);	/* never released: we exit */
	fflush(stdout);
	fputs("loadgen: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	_exit(1);
}

static void bad_option(const char *fmt, ...)
	__attribute__((noreturn, format(printf, 1, 2)));
static void bad_option(const char *fmt, ...)
{
	va_list ap;

	fputs("loadgen: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputs("\n(loadgen --help lists the options.)\n", stderr);
	exit(EXIT_USAGE);
}

/* ---- option values ------------------------------------------------------ */

static uint64_t parse_uint(const char *opt, const char *s, uint64_t min,
			   uint64_t max)
{
	unsigned long long v;
	char *end;

	errno = 0;
	v = strtoull(s, &end, 10);
	if (!*s || *s == '-' || *end || errno || v < min || v > max)
		bad_option("%s wants a whole number from %llu to %llu, not "
			   "'%s'.", opt, (unsigned long long)min,
			   (unsigned long long)max, s);
	return v;
}

static double parse_double(const char *opt, const char *s, double min,
			   double max, const char *range)
{
	char *end;
	double v;

	errno = 0;
	v = strtod(s, &end);
	if (!*s || *end || errno || !(v >= min && v <= max))
		bad_option("%s wants a number %s, not '%s'.", opt, range, s);
	return v;
}

/* A rate: a positive number with an optional k or M suffix. */
static double parse_rate(const char *s, size_t len)
{
	char buf[64], *end;
	double v, mult = 1;

	if (len == 0 || len >= sizeof(buf))
		bad_option("--rate: '%.*s' is not a rate.", (int)len, s);
	memcpy(buf, s, len);
	buf[len] = '\0';
	if (buf[len - 1] == 'k' || buf[len - 1] == 'K')
		mult = 1e3;
	else if (buf[len - 1] == 'M')
		mult = 1e6;
	if (mult > 1)
		buf[len - 1] = '\0';
	errno = 0;
	v = strtod(buf, &end) * mult;
	if (!buf[0] || *end || errno || !(v >= 1 && v <= 1e8))
		bad_option("--rate: '%.*s' is not a rate from 1 to 100M "
			   "requests/s.", (int)len, s);
	return v;
}

static void add_rate(struct lg_config *cfg, double r)
{
	if (cfg->nrates >= LG_MAX_RATES)
		bad_option("--rate: at most %d rates per run.", LG_MAX_RATES);
	cfg->rates[cfg->nrates++] = r;
}

/* "50k,100k" or "20k:200k:20k" or a mix. */
static void parse_rates(struct lg_config *cfg, const char *s)
{
	cfg->nrates = 0;
	while (*s) {
		size_t len = strcspn(s, ",");
		const char *c1 = memchr(s, ':', len), *c2;

		if (!c1) {
			add_rate(cfg, parse_rate(s, len));
		} else {
			double lo, hi, step;

			c2 = memchr(c1 + 1, ':', len - (size_t)(c1 + 1 - s));
			if (!c2)
				bad_option("--rate: a sweep is START:END:STEP, "
					   "not '%.*s'.", (int)len, s);
			lo = parse_rate(s, (size_t)(c1 - s));
			hi = parse_rate(c1 + 1, (size_t)(c2 - c1 - 1));
			step = parse_rate(c2 + 1, len - (size_t)(c2 + 1 - s));
			if (hi < lo)
				bad_option("--rate: the sweep '%.*s' ends below "
					   "its start.", (int)len, s);
			for (double r = lo; r <= hi * (1 + 1e-9); r += step)
				add_rate(cfg, r);
		}
		s += len;
		if (*s == ',' && *++s == '\0')
			bad_option("--rate: the list ends with a comma.");
	}
}

/* Seconds, or a number with s, ms or us. */
static uint64_t parse_time(const char *opt, const char *s, uint64_t min_ns)
{
	char *end;
	double v, mult = 1e9;

	errno = 0;
	v = strtod(s, &end);
	if (!strcmp(end, "ms"))
		mult = 1e6;
	else if (!strcmp(end, "us"))
		mult = 1e3;
	else if (*end && strcmp(end, "s"))
		v = NAN;
	v *= mult;
	if (end == s || errno || !(v >= (double)min_ns && v <= 3600e9))
		bad_option("%s wants a time from %.3g s to 1 hour (\"5\", "
			   "\"500ms\"), not '%s'.", opt, (double)min_ns / 1e9,
			   s);
	return (uint64_t)v;
}

static void parse_value_size(struct lg_config *cfg, const char *s)
{
	const char *dash = strchr(s, '-');
	char lo[32];

	if (!dash) {
		cfg->vmin = cfg->vmax = (uint32_t)parse_uint("--value-size", s,
							     1, MC_VALUE_MAX);
		return;
	}
	if ((size_t)(dash - s) >= sizeof(lo))
		bad_option("--value-size wants N or MIN-MAX, not '%s'.", s);
	memcpy(lo, s, (size_t)(dash - s));
	lo[dash - s] = '\0';
	cfg->vmin = (uint32_t)parse_uint("--value-size", lo, 1, MC_VALUE_MAX);
	cfg->vmax = (uint32_t)parse_uint("--value-size", dash + 1, 1,
					 MC_VALUE_MAX);
	if (cfg->vmax < cfg->vmin)
		bad_option("--value-size: the range '%s' ends below its "
			   "start.", s);
}

/* HOST:PORT or PORT; HOST resolved to IPv4. */
static void parse_server(struct lg_config *cfg, const char *s)
{
	const char *colon = strrchr(s, ':');
	struct addrinfo hints = { .ai_family = AF_INET,
				  .ai_socktype = SOCK_STREAM }, *res;
	char host[256];
	uint64_t port;
	int err;

	if (!colon) {
		snprintf(host, sizeof(host), "127.0.0.1");
		port = parse_uint("--server", s, 1, 65535);
	} else {
		if ((size_t)(colon - s) >= sizeof(host) || colon == s)
			bad_option("--server wants HOST:PORT, not '%s'.", s);
		memcpy(host, s, (size_t)(colon - s));
		host[colon - s] = '\0';
		port = parse_uint("--server (port)", colon + 1, 1, 65535);
	}
	err = getaddrinfo(host, NULL, &hints, &res);
	if (err)
		bad_option("--server: cannot resolve '%s': %s.", host,
			   gai_strerror(err));
	memcpy(&cfg->addr, res->ai_addr, sizeof(cfg->addr));
	cfg->addr.sin_port = htons((uint16_t)port);
	freeaddrinfo(res);
	snprintf(cfg->server, sizeof(cfg->server), "%s:%u", host,
		 (unsigned)port);
}

static void parse_cpus(struct lg_config *cfg, const char *s)
{
	cpu_set_t set;

	if (cpulist_parse(s, &set) || !CPU_COUNT(&set))
		bad_option("--cpus wants a cpu list such as \"0\" or "
			   "\"0,2-3\", not '%s'.", s);
	cfg->ncpus = 0;
	for (int c = 0; c < CPU_SETSIZE && cfg->ncpus < LG_MAX_THREADS; c++)
		if (CPU_ISSET(c, &set))
			cfg->cpus[cfg->ncpus++] = c;
}

/* ---- the options -------------------------------------------------------- */

enum {
	OPT_DEPTH = 256, OPT_GRACE, OPT_KEY_LEN, OPT_NO_PRELOAD, OPT_LATE,
	OPT_SPIN, OPT_POLL_MAX, OPT_SLICE, OPT_FIFO, OPT_CPUS, OPT_SEED, OPT_JSON,
};

static const struct option long_opts[] = {
	{ "server", required_argument, NULL, 's' },
	{ "rate", required_argument, NULL, 'r' },
	{ "arrival", required_argument, NULL, 'a' },
	{ "conns", required_argument, NULL, 'c' },
	{ "threads", required_argument, NULL, 'T' },
	{ "depth", required_argument, NULL, OPT_DEPTH },
	{ "duration", required_argument, NULL, 'd' },
	{ "warmup", required_argument, NULL, 'w' },
	{ "grace", required_argument, NULL, OPT_GRACE },
	{ "keys", required_argument, NULL, 'k' },
	{ "key-len", required_argument, NULL, OPT_KEY_LEN },
	{ "zipf", required_argument, NULL, 'z' },
	{ "get-ratio", required_argument, NULL, 'g' },
	{ "value-size", required_argument, NULL, 'v' },
	{ "no-preload", no_argument, NULL, OPT_NO_PRELOAD },
	{ "late-us", required_argument, NULL, OPT_LATE },
	{ "spin-us", required_argument, NULL, OPT_SPIN },
	{ "poll-max", required_argument, NULL, OPT_POLL_MAX },
	{ "slice-ms", required_argument, NULL, OPT_SLICE },
	{ "fifo", required_argument, NULL, OPT_FIFO },
	{ "cpus", required_argument, NULL, OPT_CPUS },
	{ "seed", required_argument, NULL, OPT_SEED },
	{ "json", required_argument, NULL, OPT_JSON },
	{ "quiet", no_argument, NULL, 'q' },
	{ "help", no_argument, NULL, 'h' },
	{ NULL, 0, NULL, 0 },
};

static void set_defaults(struct lg_config *cfg)
{
	*cfg = (struct lg_config){
		.conns = 32, .threads = 1, .depth = 1, .keys = 100000,
		.key_len = 16, .get_ratio = 0.9, .vmin = 32, .vmax = 32,
		.warmup_ns = NSEC_PER_SEC, .duration_ns = 5 * NSEC_PER_SEC,
		.grace_ns = NSEC_PER_SEC, .late_ns = 50 * NSEC_PER_USEC,
		.spin_ns = 200 * NSEC_PER_USEC, .poll_max = 80,
		.slice_ns = 10 * NSEC_PER_MSEC,
		.preload = true, .seed = 1,
	};
	parse_server(cfg, "127.0.0.1:11211");
}

static void parse_one(struct lg_config *cfg, int opt, const char *arg)
{
	switch (opt) {
	case 's': parse_server(cfg, arg); break;
	case 'r': parse_rates(cfg, arg); break;
	case 'a':
		if (strcmp(arg, "poisson") && strcmp(arg, "fixed"))
			bad_option("--arrival is 'poisson' or 'fixed', not "
				   "'%s'.", arg);
		cfg->fixed = !strcmp(arg, "fixed");
		break;
	case 'c':
		cfg->conns = (unsigned)parse_uint("--conns", arg, 1,
						  LG_MAX_CONNS);
		break;
	case 'T':
		cfg->threads = (unsigned)parse_uint("--threads", arg, 1,
						    LG_MAX_THREADS);
		break;
	case OPT_DEPTH:
		cfg->depth = (unsigned)parse_uint("--depth", arg, 1,
						  LG_MAX_DEPTH);
		break;
	case 'd': cfg->duration_ns = parse_time("--duration", arg,
						NSEC_PER_MSEC); break;
	case 'w': cfg->warmup_ns = parse_time("--warmup", arg, 0); break;
	case OPT_GRACE: cfg->grace_ns = parse_time("--grace", arg,
						   NSEC_PER_MSEC); break;
	case 'k': cfg->keys = parse_uint("--keys", arg, 1, UINT32_MAX); break;
	case OPT_KEY_LEN:
		cfg->key_len = (unsigned)parse_uint("--key-len", arg, 2,
						    MC_KEY_MAX);
		break;
	case 'z':
		cfg->zipf = parse_double("--zipf", arg, 0, KEYGEN_THETA_MAX,
					 "from 0 (uniform) to 2");
		break;
	case 'g':
		cfg->get_ratio = parse_double("--get-ratio", arg, 0, 1,
					      "from 0 to 1");
		break;
	case 'v': parse_value_size(cfg, arg); break;
	case OPT_NO_PRELOAD: cfg->preload = false; break;
	case OPT_LATE:
		cfg->late_ns = (uint64_t)(parse_double("--late-us", arg, 0,
						       1e6, "from 0 to 1e6") *
					  1e3);
		break;
	case OPT_SPIN:
		cfg->spin_ns = (uint64_t)(parse_double("--spin-us", arg, 0,
						       1e6, "from 0 to 1e6") *
					  1e3);
		break;
	case OPT_POLL_MAX:
		cfg->poll_max = (unsigned)parse_uint("--poll-max", arg, 1, 100);
		break;
	case OPT_SLICE:
		cfg->slice_ns = (uint64_t)(parse_double("--slice-ms", arg, 0,
						       1e4, "from 0 to 1e4") *
					   1e6);
		break;
	case OPT_FIFO:
		cfg->fifo_prio = (int)parse_uint("--fifo", arg, 1, 99);
		break;
	case OPT_CPUS: parse_cpus(cfg, arg); break;
	case OPT_SEED: cfg->seed = parse_uint("--seed", arg, 0, UINT64_MAX);
		break;
	case OPT_JSON: cfg->json_path = arg; break;
	case 'q': cfg->quiet = true; break;
	case 'h': usage(stdout); exit(0);
	default:
		fputs("(loadgen --help lists the options.)\n", stderr);
		exit(EXIT_USAGE);
	}
}

/* Checks that span options. */
static void check_config(struct lg_config *cfg)
{
	struct keygen kg;
	unsigned digits;

	if (!cfg->nrates)
		bad_option("no rate given: -r RATE (requests/s), or a list or "
			   "sweep of them.");
	if (cfg->threads > cfg->conns)
		bad_option("%u threads need at least as many connections, not "
			   "%u (-c).", cfg->threads, cfg->conns);
	if (keygen_init(&kg, cfg->keys, cfg->zipf))
		bad_option("the key space (-k %llu, -z %g) is not usable.",
			   (unsigned long long)cfg->keys, cfg->zipf);
	digits = keygen_digits(&kg);
	if (cfg->key_len < digits + 1)
		bad_option("--key-len %u is too short for %llu keys: they need "
			   "%u bytes ('k' and %u digits).", cfg->key_len,
			   (unsigned long long)cfg->keys, digits + 1, digits);
	for (unsigned i = 0; i < cfg->nrates; i++)
		if (cfg->rates[i] / cfg->threads < 1)
			bad_option("%.0f requests/s over %u threads is under "
				   "one per thread per second.",
				   cfg->rates[i], cfg->threads);
}

int main(int argc, char **argv)
{
	static struct lg_step steps[LG_MAX_RATES];
	struct lg_config cfg;
	int opt;

	set_defaults(&cfg);
	while ((opt = getopt_long(argc, argv, "s:r:a:c:T:d:w:k:z:g:v:qh",
				  long_opts, NULL)) != -1)
		parse_one(&cfg, opt, optarg);
	if (optind < argc)
		bad_option("unexpected argument '%s'.", argv[optind]);
	check_config(&cfg);
	/* The cycle counter makes every timestamp a few ns; without it the
	 * figures are still right, only the generator is slower. */
	if (clock_calibrate() && !cfg.quiet)
		fprintf(stderr, "loadgen: cycle counter not usable; timing "
			"with clock_gettime.\n");
	lg_run(&cfg, steps);
	if (!cfg.quiet)
		report_footer(stdout, &cfg, steps);
	if (cfg.json_path && report_json(cfg.json_path, &cfg, steps))
		return 1;
	return 0;
}
