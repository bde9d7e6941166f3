/* atoll.c - the management tool (RainForest's rfm): talks to atolld over
 * its control socket, one JSON line per request.
 *
 * Exit codes: 0 success, 1 atolld refused the request, 2 bad command line,
 * 3 atolld unreachable or its reply unreadable, 127 `atoll run` could not
 * start the command.
 */
#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <sched.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <atoll/compiler.h>
#include <atoll/proto.h>

#include "cpulist.h"
#include "json.h"

static const char *socket_path(void)
{
	const char *e = getenv(PROTO_SOCKET_ENV);

	return e && *e ? e : PROTO_SOCKET_DEFAULT;
}

/* The options of cell create and resize, for both help texts. */
#define CELL_SPEC_HELP \
"      --cores N|LIST     a count (\"2\") or a cpu list (\"1-3,5\": contains\n" \
"                         '-' or ','; or use --cpus LIST)\n" \
"      --mem SIZE         bytes or K/M/G/T (\"512M\"); 0, max or none: no limit\n" \
"      --mems LIST        NUMA memory nodes\n" \
"      --class ll|cg      low latency (takes IRQs) or coarse grained\n" \
"      --provision N      cores guaranteed on demand\n" \
"      --want N           cores the cell could use (default: those it holds);\n" \
"                         spare cores (free ones, idle provisioned ones of\n" \
"                         other cells) are lent up to it by DRF\n" \
"      --priority N       0-1000 (default 0); the latency controller takes\n" \
"                         cores only from cells of lower priority\n" \
"      --min-cores 0|1    fewest cores the latency controller leaves the cell\n" \
"                         (default 1); 0 (class cg only) lets it take the last\n" \
"                         one: the cell's processes are then frozen until a\n" \
"                         core comes back\n" \
"      --latency-target LT:UT[:WINDOW]\n" \
"                         keep the cell's tail latency between LT and UT:\n" \
"                         every WINDOW (default 1000 ms) atolld takes one core\n" \
"                         (a free one, else from the cell of lowest priority)\n" \
"                         when it is above UT and gives the last one it took\n" \
"                         back when it is below LT. LT, UT: durations, ns\n" \
"                         unless suffixed ns/us/ms/s (\"500us:2ms:200\");\n" \
"                         WINDOW: ms unless suffixed. \"off\" removes the target\n" \
"      --latency-percentile P  the tail measured (default 99; with\n" \
"                         --latency-target)\n"

static void help_main(FILE *f)
{
	fprintf(f,
"usage: atoll COMMAND [ARGS]\n"
"\n"
"Manage the cells of this node through atolld.\n"
"\n"
"  atoll cell create NAME --cores N|LIST [OPTIONS]\n"
"  atoll cell resize NAME OPTIONS\n"
CELL_SPEC_HELP
"  atoll cell destroy NAME [--grace-ms MS]\n"
"  atoll cell list [--json]\n"
"  atoll cell allow CELL PEER      (channels between cells need both allows)\n"
"  atoll cell deny CELL PEER\n"
"  atoll run --cell NAME -- CMD [ARGS...]\n"
"  atoll top [--interval SEC] [--once] [--json] [--moves N]\n"
"                                  live cores, load, tail latency, core moves\n"
"  atoll status [--json]\n"
"\n"
"The socket is $ATOLL_SOCKET, else " PROTO_SOCKET_DEFAULT ".\n"
"Every command takes --help; --json prints atolld's reply as is.\n"
"\n"
"Exit status: 0 success; 1 atolld refused the request (its sentence is\n"
"printed); 2 bad command line; 3 atolld unreachable or its reply unreadable;\n"
"127 atoll run could not start the command.\n");
}

static int usage_err(const char *fmt, ...)
	__attribute__((format(printf, 1, 2)));
static int usage_err(const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "atoll: ");
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, "\n(see atoll --help)\n");
	return ATOLL_EXIT_USAGE;
}

/* Send one request line, read one reply line into *reply (malloc'd). */
static int transact(const char *req, char **reply)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	const char *path = socket_path();
	size_t len = 0, cap = 4096;
	char *buf;
	int fd;

	if (strlen(path) >= sizeof(sa.sun_path)) {
		fprintf(stderr, "atoll: socket path %s is too long\n", path);
		return ATOLL_EXIT_CONNECT;
	}
	strcpy(sa.sun_path, path);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof(sa))) {
		fprintf(stderr, "atoll: cannot reach atolld at %s: %s\n", path,
			strerror(errno));
		if (fd >= 0)
			close(fd);
		return ATOLL_EXIT_CONNECT;
	}
	{
		size_t n = strlen(req), off = 0;

		while (off < n) {
			ssize_t w = send(fd, req + off, n - off, MSG_NOSIGNAL);

			if (w < 0) {
				if (errno == EINTR)
					continue;
				fprintf(stderr, "atoll: sending to atolld: %s\n",
					strerror(errno));
				close(fd);
				return ATOLL_EXIT_CONNECT;
			}
			off += (size_t)w;
		}
	}
	buf = malloc(cap);
	while (buf) {
		ssize_t n;

		if (len + 1 == cap) {
			char *nb = cap >= PROTO_LINE_MAX ? NULL :
				   realloc(buf, cap * 2);

			if (!nb) {
				free(buf);
				buf = NULL;
				break;
			}
			buf = nb;
			cap *= 2;
		}
		n = recv(fd, buf + len, cap - 1 - len, 0);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			free(buf);
			buf = NULL;
			break;
		}
		len += (size_t)n;
		buf[len] = '\0';
		if (memchr(buf, '\n', len))
			break;
	}
	close(fd);
	if (!buf) {
		fprintf(stderr, "atoll: atolld closed the connection without a reply\n");
		return ATOLL_EXIT_CONNECT;
	}
	*strchr(buf, '\n') = '\0';
	*reply = buf;
	return 0;
}

/* Send, parse, and on error print the sentence; json_out: print the reply
 * line, notes: print atolld's notes (to stderr). *docp is the parsed reply
 * on success (caller frees). */
static int call_opt(const char *req, bool json_out, bool notes_out,
		    struct json_doc **docp)
{
	char *reply = NULL, err[256];
	struct json_doc *doc;
	const struct json *ok, *e, *notes;
	int r = transact(req, &reply);

	if (r)
		return r;
	doc = json_parse(reply, strlen(reply), err, sizeof(err));
	if (!doc || json_root(doc)->type != JSON_OBJ) {
		fprintf(stderr, "atoll: unreadable reply from atolld (%s)\n",
			doc ? "not an object" : err);
		free(reply);
		json_free(doc);
		return ATOLL_EXIT_CONNECT;
	}
	if (json_out)
		printf("%s\n", reply);
	free(reply);
	ok = json_get(json_root(doc), "ok");
	notes = json_get(json_root(doc), "notes");
	if (notes_out && notes && notes->type == JSON_ARR)
		for (size_t i = 0; i < notes->len; i++)
			if (notes->kids[i]->type == JSON_STR)
				fprintf(stderr, "atoll: note: %s\n",
					notes->kids[i]->s);
	if (!ok || ok->type != JSON_BOOL || !ok->b) {
		const struct json *code, *msg;

		e = json_get(json_root(doc), "error");
		code = json_get(e, "code");
		msg = json_get(e, "message");
		if (!json_out)
			fprintf(stderr, "atoll: %s (%s)\n",
				msg && msg->type == JSON_STR ? msg->s : "request refused",
				code && code->type == JSON_STR ? code->s : "?");
		json_free(doc);
		return ATOLL_EXIT_REFUSED;
	}
	*docp = doc;
	return 0;
}

static int call(const char *req, bool json_out, struct json_doc **docp)
{
	return call_opt(req, json_out, !json_out, docp);
}

/* The writer's object as a request line (malloc'd), or NULL. */
static char *to_line(const struct json_w *w)
{
	char *line;

	if (w->oom || !w->buf) {
		fprintf(stderr, "atoll: out of memory\n");
		return NULL;
	}
	line = malloc(w->len + 2);
	if (!line) {
		fprintf(stderr, "atoll: out of memory\n");
		return NULL;
	}
	memcpy(line, w->buf, w->len);
	line[w->len] = '\n';
	line[w->len + 1] = '\0';
	return line;
}

static const char *jstr(const struct json *o, const char *k)
{
	const struct json *v = json_get(o, k);

	return v && v->type == JSON_STR ? v->s : "";
}

static long long jint(const struct json *o, const char *k)
{
	const struct json *v = json_get(o, k);

	return v && v->type == JSON_NUM && v->is_int ? (long long)v->i : 0;
}

/* A cell's cpu list, or "frozen" when it holds no core. */
static const char *cpus_text(const struct json *c)
{
	const struct json *fr = json_get(c, "frozen");

	return fr && fr->type == JSON_BOOL && fr->b ? "frozen" :
	       jstr(c, "cpus");
}

/* A cell's loans, " lent:CPU<-FROM,...": FROM "(free)" for the free
 * pool, with "(prov)" when the core stands on the owner's provision. */
static void loans_text(const struct json *loans)
{
	for (size_t k = 0; loans && loans->type == JSON_ARR && k < loans->len;
	     k++) {
		const struct json *l = loans->kids[k];
		const char *from = jstr(l, "from");

		printf("%s%lld<-%s%s", k ? "," : " lent:", jint(l, "cpu"),
		       *from ? from : "(free)",
		       json_get(l, "provisioned") ? "(prov)" : "");
	}
}

static void print_cells(const struct json *cells)
{
	printf("%-20s %-5s %-12s %5s %5s %5s %9s %5s %s\n", "NAME", "CLASS",
	       "CPUS", "CORES", "PROV", "WANT", "MEM", "MEMS",
	       "PIDS [allows:PEERS] [lent:CPU<-FROM]");
	for (size_t i = 0; cells && i < cells->len; i++) {
		const struct json *c = cells->kids[i], *pids = json_get(c, "pids");
		const struct json *peers;
		char sz[32];

		if (jint(c, "mem"))
			size_format((uint64_t)jint(c, "mem"), sz, sizeof(sz));
		else
			snprintf(sz, sizeof(sz), "-");
		printf("%-20s %-5s %-12s %5lld %5lld %5lld %9s %5s",
		       jstr(c, "name"), jstr(c, "class"), cpus_text(c),
		       jint(c, "cores"), jint(c, "provision"), jint(c, "want"),
		       sz, jstr(c, "mems"));
		for (size_t k = 0; pids && pids->type == JSON_ARR && k < pids->len; k++)
			printf("%s%lld", k ? "," : " ", (long long)pids->kids[k]->i);
		peers = json_get(c, "allowed_peers");
		for (size_t k = 0; peers && peers->type == JSON_ARR && k < peers->len; k++)
			if (peers->kids[k]->type == JSON_STR)
				printf("%s%s", k ? "," : " allows:", peers->kids[k]->s);
		loans_text(json_get(c, "borrowed"));
		printf("%s\n", json_get(c, "destroying") ? " (destroying)" : "");
	}
}

/* ns as "850 ns", "12.3 us", "4.56 ms" or "1.2 s". */
static const char *fmt_ns(uint64_t ns, char *buf, size_t len)
{
	if (ns < 1000)
		snprintf(buf, len, "%" PRIu64 " ns", ns);
	else if (ns < 1000000)
		snprintf(buf, len, "%.3g us", (double)ns / 1e3);
	else if (ns < 1000000000)
		snprintf(buf, len, "%.3g ms", (double)ns / 1e6);
	else
		snprintf(buf, len, "%.3g s", (double)ns / 1e9);
	return buf;
}

static double jnum(const struct json *o, const char *k)
{
	const struct json *v = json_get(o, k);

	return v && v->type == JSON_NUM ? v->d : 0.0;
}

static const char *pool_name(const char *cell)
{
	return *cell ? cell : "(free)";
}

/* One core move, on one line: the latency controller's with its
 * figures, best-effort sharing's (lend.c) with its reason. */
static void print_move(const struct json *mv)
{
	char when[32] = "?", tail[32], thr[32];
	time_t t = (time_t)(jint(mv, "unix_ms") / 1000);
	struct tm tm;
	const char *dir = jstr(mv, "direction");

	if (localtime_r(&t, &tm))
		strftime(when, sizeof(when), "%H:%M:%S", &tm);
	printf("  #%-4lld %s.%03lld  cpu %-3lld %s -> %s  ",
	       jint(mv, "seq"), when, jint(mv, "unix_ms") % 1000,
	       jint(mv, "cpu"), pool_name(jstr(mv, "from")),
	       pool_name(jstr(mv, "to")));
	if (strcmp(dir, "grow") && strcmp(dir, "shrink")) {
		printf("(%s: %s)\n", dir, jstr(mv, "reason"));
		return;
	}
	printf("(cell '%s': p%g %s %s %s %s, %lld samples in %lld ms)\n",
	       jstr(mv, "cell"),
	       jnum(mv, "percentile"),
	       fmt_ns((uint64_t)jint(mv, "tail_ns"), tail, sizeof(tail)),
	       !strcmp(jstr(mv, "direction"), "grow") ? ">" : "<",
	       jstr(mv, "threshold"),
	       fmt_ns((uint64_t)jint(mv, "threshold_ns"), thr, sizeof(thr)),
	       jint(mv, "samples"), jint(mv, "window_ms"));
}

/* "p99 4.5 ms over 200 ms (1000 samples)" or "no window yet". */
static void print_window(const struct json *lat)
{
	const struct json *win = json_get(lat, "window");
	char b[32];

	if (!win || win->type != JSON_OBJ) {
		printf("no window yet");
		return;
	}
	printf("p%g %s over %lld ms (%lld samples)", jnum(win, "percentile"),
	       fmt_ns((uint64_t)jint(win, "tail_ns"), b, sizeof(b)),
	       jint(win, "ms"), jint(win, "samples"));
}

/* "p99 in [1 ms, 2 ms] every 200 ms" or "-". */
static const char *target_text(const struct json *t, char *buf, size_t len)
{
	char lt[32], ut[32];

	if (!t || t->type != JSON_OBJ) {
		snprintf(buf, len, "-");
		return buf;
	}
	snprintf(buf, len, "p%g in [%s, %s] every %lld ms", jnum(t, "percentile"),
		 fmt_ns((uint64_t)jint(t, "lt_ns"), lt, sizeof(lt)),
		 fmt_ns((uint64_t)jint(t, "ut_ns"), ut, sizeof(ut)),
		 jint(t, "window_ms"));
	return buf;
}

static void print_latctl(const struct json *lc)
{
	const struct json *cells = json_get(lc, "cells");
	const struct json *last = json_get(lc, "last_move");
	char tgt[128];

	if (!lc || lc->type != JSON_OBJ)
		return;
	printf("latency ctl  %zu cells with a latency target, %lld core moves\n",
	       cells && cells->type == JSON_ARR ? cells->len : 0,
	       jint(lc, "moves_total"));
	for (size_t i = 0; cells && cells->type == JSON_ARR && i < cells->len; i++) {
		const struct json *c = cells->kids[i];
		const struct json *lat = json_get(c, "latency");

		printf("  cell '%s' (priority %lld, %lld cores borrowed): %s; last: ",
		       jstr(c, "name"), jint(c, "priority"), jint(c, "borrowed"),
		       target_text(json_get(lat, "target"), tgt, sizeof(tgt)));
		print_window(lat);
		printf("; %s\n", jstr(lat, "reason"));
	}
	if (last && last->type == JSON_OBJ) {
		printf("  last move:\n");
		print_move(last);
	}
}

static bool has_help(int argc, char **argv)
{
	for (int i = 0; i < argc; i++) {
		if (!strcmp(argv[i], "--"))
			return false;
		if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h"))
			return true;
	}
	return false;
}

/* A duration: a decimal number with an optional unit (ns, us, ms, s;
 * bare numbers are in units of dflt_ns), > 0 and at most a day. */
static int duration_parse(const char *s, uint64_t dflt_ns, uint64_t *out)
{
	static const struct { const char *sfx; uint64_t ns; } units[] = {
		{ "ns", 1 }, { "us", 1000 }, { "ms", 1000000 },
		{ "s", 1000000000 },
	};
	uint64_t scale = dflt_ns;
	char *end;
	double v;

	if (!*s || *s == '-' || *s == '+' || isspace((unsigned char)*s))
		return -EINVAL;
	v = strtod(s, &end);
	if (end == s)
		return -EINVAL;
	if (*end) {
		size_t i;

		for (i = 0; i < ARRAY_SIZE(units); i++)
			if (!strcmp(end, units[i].sfx))
				break;
		if (i == ARRAY_SIZE(units))
			return -EINVAL;
		scale = units[i].ns;
	}
	v *= (double)scale;
	if (!(v >= 1.0 && v <= 86400e9))
		return -ERANGE;
	*out = (uint64_t)(v + 0.5);
	return 0;
}

/* "--latency-target LT:UT[:WINDOW]" and "--latency-percentile P" as the
 * request's "latency" object (null for "off"). */
static int build_latency(struct json_w *w, const char *target,
			 const char *pct)
{
	char buf[128], *parts[3], *colon;
	int n = 1;
	uint64_t lt, ut, win = 0;
	double p = 0;

	if (!strcmp(target, "off")) {
		if (pct)
			return usage_err("--latency-percentile needs a --latency-target%s", "");
		jw_key(w, "latency");
		jw_null(w);
		return 0;
	}
	if (strlen(target) >= sizeof(buf))
		return usage_err("--latency-target '%s' is too long", target);
	strcpy(buf, target);
	parts[0] = buf;
	while (n <= 3 && (colon = strchr(parts[n - 1], ':'))) {
		*colon = '\0';
		if (n < 3)
			parts[n] = colon + 1;
		n++;
	}
	if (n != 2 && n != 3)
		return usage_err("--latency-target '%s' must be LT:UT or LT:UT:WINDOW (\"500us:2ms:200\") or off",
				 target);
	if (duration_parse(parts[0], 1, &lt) || duration_parse(parts[1], 1, &ut))
		return usage_err("--latency-target '%s': LT and UT must be durations like 500000, 500us or 2ms",
				 target);
	if (n == 3 && duration_parse(parts[2], 1000000, &win))
		return usage_err("--latency-target '%s': WINDOW must be milliseconds or a duration like 2s",
				 target);
	if (pct) {
		char *end;

		p = strtod(pct, &end);
		if (!*pct || *end || !(p > 0 && p <= 100))
			return usage_err("--latency-percentile '%s' must be a number above 0 and at most 100",
					 pct);
	}
	jw_key(w, "latency");
	jw_obj(w);
	jw_kint(w, "lt_ns", (int64_t)lt);
	jw_kint(w, "ut_ns", (int64_t)ut);
	if (n == 3)
		jw_kint(w, "window_ms", (int64_t)((win + 999999) / 1000000));
	if (pct)
		jw_kdouble(w, "percentile", p);
	jw_obj_end(w);
	return 0;
}

/* The options of cell create/resize as request fields. */
static int build_spec(struct json_w *w, int argc, char **argv, bool create)
{
	bool cores_seen = false;
	const char *lat = NULL, *pct = NULL;

	for (int i = 0; i < argc; i++) {
		const char *o = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;

		if (!strcmp(o, "--cores") || !strcmp(o, "--cpus")) {
			if (!v)
				return usage_err("%s needs a value", o);
			if (!strcmp(o, "--cpus") || strpbrk(v, ",-")) {
				cpu_set_t set;

				if (cpulist_parse(v, &set))
					return usage_err("'%s' is not a cpu list like 1-3,5", v);
				jw_kstr(w, "cpus", v);
			} else {
				char *end;
				long long n = strtoll(v, &end, 10);

				if (!*v || *end || n < 0)
					return usage_err("--cores '%s' must be a positive count or a cpu list", v);
				jw_kint(w, "cores", n);
			}
			cores_seen = true;
		} else if (!strcmp(o, "--mem")) {
			uint64_t b;

			if (!v)
				return usage_err("%s needs a value", o);
			if (!strcmp(v, "max") || !strcmp(v, "none"))
				b = 0;
			else if (size_parse(v, &b) || b > INT64_MAX)
				return usage_err("--mem '%s' must be a size like 512M, 2G or max", v);
			jw_kint(w, "mem", (int64_t)b);
		} else if (!strcmp(o, "--mems")) {
			if (!v)
				return usage_err("%s needs a value", o);
			jw_kstr(w, "mems", v);
		} else if (!strcmp(o, "--class")) {
			if (!v || (strcmp(v, "ll") && strcmp(v, "cg")))
				return usage_err("--class must be ll or cg%s", "");
			jw_kstr(w, "class", v);
		} else if (!strcmp(o, "--provision") || !strcmp(o, "--want")) {
			char *end;
			long long n;

			if (!v)
				return usage_err("%s needs a value", o);
			n = strtoll(v, &end, 10);
			if (!*v || *end || n < 0)
				return usage_err("%s '%s' must be a count of cores", o, v);
			jw_kint(w, o + 2, n);
		} else if (!strcmp(o, "--priority")) {
			char *end;
			long long n;

			if (!v)
				return usage_err("%s needs a value", o);
			n = strtoll(v, &end, 10);
			if (!*v || *end)
				return usage_err("--priority '%s' must be a number (0-1000)", v);
			jw_kint(w, "priority", n);
		} else if (!strcmp(o, "--min-cores")) {
			if (!v)
				return usage_err("%s needs a value", o);
			if (strcmp(v, "0") && strcmp(v, "1"))
				return usage_err("--min-cores '%s' must be 0 or 1", v);
			jw_kint(w, "min_cores", v[0] - '0');
		} else if (!strcmp(o, "--latency-target") ||
			   !strcmp(o, "--latency-percentile")) {
			if (!v)
				return usage_err("%s needs a value", o);
			if (!strcmp(o, "--latency-target"))
				lat = v;
			else
				pct = v;
		} else {
			return usage_err("unknown option '%s'", o);
		}
		i++;
	}
	if (create && !cores_seen)
		return usage_err("cell create needs --cores N or --cores LIST%s", "");
	if (pct && !lat)
		return usage_err("--latency-percentile needs a --latency-target%s", "");
	return lat ? build_latency(w, lat, pct) : 0;
}

static int cmd_cell(int argc, char **argv)
{
	const char *sub = argc > 0 ? argv[0] : NULL;
	struct json_w w;
	struct json_doc *doc = NULL;
	bool json_out = false;
	const char *peer_arg = "";
	int r;

	if (!sub || !strcmp(sub, "--help") || !strcmp(sub, "-h") ||
	    has_help(argc, argv)) {
		printf("usage: atoll cell create NAME --cores N|LIST [OPTIONS]\n"
		       "       atoll cell resize NAME OPTIONS\n"
		       CELL_SPEC_HELP
		       "       atoll cell destroy NAME [--grace-ms MS]\n"
		       "       atoll cell list [--json]\n"
		       "       atoll cell allow CELL PEER [--json]\n"
		       "       atoll cell deny CELL PEER [--json]\n"
		       "allow: CELL allows channels (chan_open) with PEER; a channel between two\n"
		       "cells opens only when each allows the other. deny takes that back\n"
		       "(channels already open stay open).\n"
		       "Exit status: 0 ok, 1 refused by atolld, 2 usage, 3 atolld unreachable.\n");
		return sub ? 0 : ATOLL_EXIT_USAGE;
	}
	jw_init(&w);
	jw_obj(&w);
	if (!strcmp(sub, "list")) {
		for (int i = 1; i < argc; i++) {
			if (strcmp(argv[i], "--json")) {
				jw_free(&w);
				return usage_err("unknown option '%s'", argv[i]);
			}
			json_out = true;
		}
		jw_kstr(&w, "op", "cell.list");
	} else if (!strcmp(sub, "create") || !strcmp(sub, "resize") ||
		   !strcmp(sub, "destroy")) {
		if (argc < 2 || argv[1][0] == '-') {
			jw_free(&w);
			return usage_err("cell %s needs a NAME", sub);
		}
		jw_kstr(&w, "op", !strcmp(sub, "create") ? "cell.create" :
				  !strcmp(sub, "resize") ? "cell.resize" :
				  "cell.destroy");
		jw_kstr(&w, "name", argv[1]);
		if (!strcmp(sub, "destroy")) {
			for (int i = 2; i < argc; i += 2) {
				char *end;
				long long g;

				if (strcmp(argv[i], "--grace-ms") || i + 1 >= argc) {
					jw_free(&w);
					return usage_err("unknown option '%s'", argv[i]);
				}
				g = strtoll(argv[i + 1], &end, 10);
				if (!*argv[i + 1] || *end) {
					jw_free(&w);
					return usage_err("--grace-ms '%s' must be milliseconds",
							 argv[i + 1]);
				}
				jw_kint(&w, "grace_ms", g);
			}
		} else {
			r = build_spec(&w, argc - 2, argv + 2, !strcmp(sub, "create"));
			if (r) {
				jw_free(&w);
				return r;
			}
		}
	} else if (!strcmp(sub, "allow") || !strcmp(sub, "deny")) {
		int npos = 0;
		const char *pos[2] = { NULL, NULL };

		for (int i = 1; i < argc; i++) {
			if (!strcmp(argv[i], "--json")) {
				json_out = true;
			} else if (argv[i][0] == '-' || npos == 2) {
				jw_free(&w);
				return usage_err("cell %s takes CELL PEER; '%s' is extra",
						 sub, argv[i]);
			} else {
				pos[npos++] = argv[i];
			}
		}
		if (npos != 2) {
			jw_free(&w);
			return usage_err("cell %s needs CELL and PEER", sub);
		}
		jw_kstr(&w, "op", !strcmp(sub, "allow") ? "cell.allow" :
				  "cell.deny");
		jw_kstr(&w, "cell", pos[0]);
		jw_kstr(&w, "peer", pos[1]);
		peer_arg = pos[1];
	} else {
		jw_free(&w);
		return usage_err("unknown cell command '%s'", sub);
	}
	jw_obj_end(&w);
	{
		char *line = to_line(&w);

		jw_free(&w);
		if (!line)
			return ATOLL_EXIT_CONNECT;
		r = call(line, json_out, &doc);
		free(line);
	}
	if (r)
		return r;
	if (!json_out) {
		const struct json *root = json_root(doc), *cell;

		if (!strcmp(sub, "list")) {
			print_cells(json_get(root, "cells"));
		} else if (!strcmp(sub, "destroy")) {
			printf("cell '%s' destroyed\n", argv[1]);
		} else if (!strcmp(sub, "allow") || !strcmp(sub, "deny")) {
			const struct json *ch = json_get(root, "changed");
			bool changed = ch && ch->type == JSON_BOOL && ch->b;

			cell = json_get(root, "cell");
			printf("cell '%s' %s channels with '%s'%s\n",
			       jstr(cell, "name"),
			       !strcmp(sub, "allow") ? "allows" : "no longer allows",
			       peer_arg,
			       changed ? "" : " (unchanged)");
		} else {
			char tgt[128];

			cell = json_get(root, "cell");
			printf("cell '%s' %s: cpus %s, class %s, provision %lld, want %lld, min_cores %lld, priority %lld, latency target %s\n",
			       jstr(cell, "name"),
			       !strcmp(sub, "create") ? "created" : "resized",
			       cpus_text(cell), jstr(cell, "class"),
			       jint(cell, "provision"), jint(cell, "want"),
			       jint(cell, "min_cores"),
			       jint(cell, "priority"),
			       target_text(json_get(cell, "latency"), tgt,
					   sizeof(tgt)));
		}
	}
	json_free(doc);
	return 0;
}

static int cmd_status(int argc, char **argv)
{
	struct json_doc *doc = NULL;
	bool json_out = false;
	const struct json *root, *inv, *nics;
	int r;

	for (int i = 0; i < argc; i++) {
		if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
			printf("usage: atoll status [--json]\n"
			       "Show atolld's instance, managed and free cores, enforcement, the latency\n"
			       "controller (its moves and the cells with a latency target) and the node's\n"
			       "inventory.\n"
			       "Exit status: 0 ok, 1 refused, 2 usage, 3 atolld unreachable.\n");
			return 0;
		}
		if (strcmp(argv[i], "--json"))
			return usage_err("unknown option '%s'", argv[i]);
		json_out = true;
	}
	r = call("{\"op\":\"status\"}\n", json_out, &doc);
	if (r || json_out) {
		json_free(doc);
		return r;
	}
	root = json_root(doc);
	inv = json_get(root, "inventory");
	printf("instance     %s (pid %lld)\n", jstr(root, "instance"),
	       jint(root, "pid"));
	printf("enforcement  %s%s\n", jstr(root, "enforcement"),
	       json_get(root, "weak") ? " (WEAK: affinity only)" : "");
	printf("managed      %s (%lld cores), free %s, reserved %lld\n",
	       jstr(root, "managed"), jint(root, "managed_cores"),
	       jstr(root, "free"), jint(root, "reserved_cores"));
	printf("cells        %lld\n", jint(root, "cells"));
	print_latctl(json_get(root, "latctl"));
	printf("node cpus    %s, memory %lld MiB\n", jstr(inv, "online"),
	       jint(inv, "mem_total") >> 20);
	nics = json_get(inv, "nics");
	for (size_t i = 0; nics && nics->type == JSON_ARR && i < nics->len; i++) {
		const struct json *irqs = json_get(nics->kids[i], "irqs");

		printf("nic          %s irqs", jstr(nics->kids[i], "name"));
		for (size_t k = 0; irqs && irqs->type == JSON_ARR && k < irqs->len; k++)
			printf("%s%lld", k ? "," : " ", (long long)irqs->kids[k]->i);
		printf("\n");
	}
	json_free(doc);
	return 0;
}

/* ---- atoll top ---- */

#define TOP_MOVES_DEFAULT 10

static void top_help(void)
{
	printf("usage: atoll top [--interval SEC] [--once] [--json] [--moves N]\n"
	       "Live view of the cells: cores (count and list), load (cores busy: the CPU\n"
	       "time of the cell's processes over the interval, clock-tick resolution), the\n"
	       "tail latency the latency controller measured over the cell's last window,\n"
	       "its target and decision, and the latest core moves.\n"
	       "  --interval SEC  refresh every SEC seconds (default 1; decimals allowed)\n"
	       "  --once          print one view (after one interval, for the load) and exit\n"
	       "  --json          print one snapshot as a JSON object and exit: atolld's\n"
	       "                  cell.top reply (docs/supervisor-protocol.md) plus\n"
	       "                  interval_ms and, per cell, load (null when unknown)\n"
	       "  --moves N       moves shown (default %d; at most 256)\n"
	       "Exit status: 0 ok, 1 refused, 2 usage, 3 atolld unreachable.\n",
	       TOP_MOVES_DEFAULT);
}

static const struct json *top_cell(const struct json *root, const char *name)
{
	const struct json *cells = json_get(root, "cells");

	for (size_t i = 0; cells && cells->type == JSON_ARR && i < cells->len; i++)
		if (!strcmp(jstr(cells->kids[i], "name"), name))
			return cells->kids[i];
	return NULL;
}

/* Cores cell c of snapshot cur kept busy since snapshot prev; NAN if the
 * cell is new. CPU time of processes that left the cell is lost, so a
 * negative difference counts as 0. */
static double top_load(const struct json *prev, const struct json *cur,
		       const struct json *c)
{
	const struct json *p = top_cell(prev, jstr(c, "name"));
	long long dt = jint(cur, "now_ns") - jint(prev, "now_ns");
	long long d;

	if (!p || dt <= 0)
		return NAN;
	d = jint(c, "cpu_ns") - jint(p, "cpu_ns");
	return d > 0 ? (double)d / (double)dt : 0.0;
}

static void top_print(const struct json *prev, const struct json *cur,
		      double interval, long moves_shown)
{
	const struct json *cells = json_get(cur, "cells");
	const struct json *moves = json_get(cur, "moves");
	size_t nc = cells && cells->type == JSON_ARR ? cells->len : 0;
	size_t nm = moves && moves->type == JSON_ARR ? moves->len : 0;
	char b[32], tgt[128];

	printf("atoll top: %zu cells, %lld core moves, every %g s\n\n", nc,
	       jint(cur, "moves_total"), interval);
	printf("%-16s %-5s %4s %5s %-12s %6s %-16s %8s  %s\n", "CELL", "CLASS",
	       "PRIO", "CORES", "CPUS", "LOAD", "TAIL", "SAMPLES", "TARGET");
	for (size_t i = 0; i < nc; i++) {
		const struct json *c = cells->kids[i];
		const struct json *lat = json_get(c, "latency");
		const struct json *win = json_get(lat, "window");
		double load = top_load(prev, cur, c);
		char tail[48] = "-", load_s[16] = "-", n[24] = "-";

		if (!isnan(load))
			snprintf(load_s, sizeof(load_s), "%.2f", load);
		if (win && win->type == JSON_OBJ) {
			snprintf(tail, sizeof(tail), "p%g %s", jnum(win, "percentile"),
				 fmt_ns((uint64_t)jint(win, "tail_ns"), b, sizeof(b)));
			snprintf(n, sizeof(n), "%lld", jint(win, "samples"));
		}
		printf("%-16s %-5s %4lld %5lld %-12s %6s %-16s %8s  %s\n",
		       jstr(c, "name"), jstr(c, "class"), jint(c, "priority"),
		       jint(c, "cores"), cpus_text(c), load_s, tail, n,
		       target_text(json_get(lat, "target"), tgt, sizeof(tgt)));
	}
	printf("\nlatency controller\n");
	for (size_t i = 0; i < nc; i++) {
		const struct json *c = cells->kids[i];
		const struct json *lat = json_get(c, "latency");
		const struct json *bor = json_get(c, "borrowed");

		if (!json_get(lat, "target") ||
		    json_get(lat, "target")->type != JSON_OBJ)
			continue;
		printf("  %-16s %-7s %s", jstr(c, "name"), jstr(lat, "action"),
		       jstr(lat, "reason"));
		for (size_t k = 0; bor && bor->type == JSON_ARR && k < bor->len; k++)
			printf("%s%lld from %s", k ? ", " : "; borrowed: cpu ",
			       jint(bor->kids[k], "cpu"),
			       pool_name(jstr(bor->kids[k], "from")));
		printf("\n");
	}
	printf("\nrecent core moves (newest last)\n");
	if (!nm)
		printf("  none\n");
	for (size_t i = nm > (size_t)moves_shown ? nm - (size_t)moves_shown : 0;
	     i < nm; i++)
		print_move(moves->kids[i]);
}

/* One snapshot: cur's members, interval_ms, and each cell's load. */
static int top_json(const struct json *prev, const struct json *cur,
		    double interval)
{
	struct json_w w;
	int r = 0;

	jw_init(&w);
	jw_obj(&w);
	jw_kint(&w, "interval_ms", (int64_t)(interval * 1000.0 + 0.5));
	for (size_t i = 0; i < cur->len; i++) {
		const struct json *v = cur->kids[i];

		if (!strcmp(cur->keys[i], "ok"))
			continue;
		jw_key(&w, cur->keys[i]);
		if (strcmp(cur->keys[i], "cells") || v->type != JSON_ARR) {
			jw_json(&w, v);
			continue;
		}
		jw_arr(&w);
		for (size_t k = 0; k < v->len; k++) {
			const struct json *c = v->kids[k];

			jw_obj(&w);
			for (size_t m = 0; m < c->len; m++) {
				jw_key(&w, c->keys[m]);
				jw_json(&w, c->kids[m]);
			}
			jw_kdouble(&w, "load", top_load(prev, cur, c));
			jw_obj_end(&w);
		}
		jw_arr_end(&w);
	}
	jw_obj_end(&w);
	if (w.oom) {
		fprintf(stderr, "atoll: out of memory\n");
		r = ATOLL_EXIT_CONNECT;
	} else {
		printf("%s\n", w.buf);
	}
	jw_free(&w);
	return r;
}

static int cmd_top(int argc, char **argv)
{
	struct json_doc *prev = NULL, *cur = NULL;
	bool once = false, json_out = false;
	double interval = 1.0;
	long moves_shown = TOP_MOVES_DEFAULT;
	const char *req = "{\"op\":\"cell.top\"}\n";
	int r;

	for (int i = 0; i < argc; i++) {
		const char *o = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
		char *end;

		if (!strcmp(o, "--help") || !strcmp(o, "-h")) {
			top_help();
			return 0;
		} else if (!strcmp(o, "--once")) {
			once = true;
		} else if (!strcmp(o, "--json")) {
			json_out = true;
		} else if (!strcmp(o, "--interval") || !strcmp(o, "-d")) {
			if (!v)
				return usage_err("%s needs a value", o);
			interval = strtod(v, &end);
			if (!*v || *end || !(interval >= 0.01 && interval <= 3600))
				return usage_err("--interval '%s' must be seconds between 0.01 and 3600", v);
			i++;
		} else if (!strcmp(o, "--moves")) {
			if (!v)
				return usage_err("%s needs a value", o);
			moves_shown = strtol(v, &end, 10);
			if (!*v || *end || moves_shown < 0 || moves_shown > 256)
				return usage_err("--moves '%s' must be a count from 0 to 256", v);
			i++;
		} else {
			return usage_err("unknown option '%s'", o);
		}
	}
	if (moves_shown > 16) /* atolld sends its last 16 unless asked */
		req = "{\"op\":\"cell.top\",\"moves_since\":0}\n";
	r = call_opt(req, false, false, &prev);
	while (!r) {
		struct timespec ts = { (time_t)interval,
				       (long)((interval - (double)(time_t)interval) * 1e9) };

		nanosleep(&ts, NULL);
		r = call_opt(req, false, false, &cur);
		if (r)
			break;
		if (json_out) {
			r = top_json(json_root(prev), json_root(cur), interval);
			break;
		}
		if (!once && isatty(STDOUT_FILENO))
			printf("\033[H\033[2J"); /* home, clear */
		top_print(json_root(prev), json_root(cur), interval, moves_shown);
		fflush(stdout);
		json_free(prev);
		prev = cur;
		cur = NULL;
		if (once)
			break;
		printf("\n");
	}
	json_free(prev);
	json_free(cur);
	return r;
}

static int cmd_run(int argc, char **argv)
{
	const char *cell = NULL;
	int i;
	struct json_w w;
	struct json_doc *doc = NULL;
	cpu_set_t set;
	int r;

	for (i = 0; i < argc; i++) {
		if (!strcmp(argv[i], "--")) {
			i++;
			break;
		}
		if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
			printf("usage: atoll run --cell NAME -- CMD [ARGS...]\n"
			       "Move this process into cell NAME (cgroup and affinity), then exec CMD.\n"
			       "Exit status: CMD's own; 1 refused by atolld, 2 usage, 3 atolld unreachable,\n"
			       "127 CMD could not be executed.\n");
			return 0;
		}
		if (!strcmp(argv[i], "--cell") && i + 1 < argc) {
			cell = argv[++i];
			continue;
		}
		return usage_err("unknown option '%s' (use --cell NAME -- CMD)",
				 argv[i]);
	}
	if (!cell)
		return usage_err("atoll run needs --cell NAME%s", "");
	if (i >= argc)
		return usage_err("atoll run needs a command after --%s", "");
	jw_init(&w);
	jw_obj(&w);
	jw_kstr(&w, "op", "cell.attach");
	jw_kstr(&w, "name", cell);
	jw_kint(&w, "pid", getpid());
	jw_obj_end(&w);
	{
		char *line = to_line(&w);

		jw_free(&w);
		if (!line)
			return ATOLL_EXIT_CONNECT;
		r = call(line, false, &doc);
		free(line);
	}
	if (r)
		return r;
	if (cpulist_parse(jstr(json_get(json_root(doc), "cell"), "cpus"), &set) ||
	    CPU_COUNT(&set) == 0) {
		fprintf(stderr, "atoll: atolld's reply lacks the cell's cpus\n");
		json_free(doc);
		return ATOLL_EXIT_CONNECT;
	}
	json_free(doc);
	if (sched_setaffinity(0, sizeof(set), &set))
		fprintf(stderr, "atoll: note: cannot set affinity: %s\n",
			strerror(errno));
	execvp(argv[i], argv + i);
	fprintf(stderr, "atoll: cannot run %s: %s\n", argv[i], strerror(errno));
	return ATOLL_EXIT_EXEC;
}

int main(int argc, char **argv)
{
	if (argc < 2) {
		help_main(stderr);
		return ATOLL_EXIT_USAGE;
	}
	if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") ||
	    !strcmp(argv[1], "help")) {
		help_main(stdout);
		return 0;
	}
	if (!strcmp(argv[1], "cell"))
		return cmd_cell(argc - 2, argv + 2);
	if (!strcmp(argv[1], "status"))
		return cmd_status(argc - 2, argv + 2);
	if (!strcmp(argv[1], "top"))
		return cmd_top(argc - 2, argv + 2);
	if (!strcmp(argv[1], "run"))
		return cmd_run(argc - 2, argv + 2);
	return usage_err("unknown command '%s'", argv[1]);
}
