/* atoll.c - the management tool (RainForest's rfm): talks to atolld over
 * its control socket, one JSON line per request.
 *
 * Exit codes: 0 success, 1 atolld refused the request, 2 bad command line,
 * 3 atolld unreachable or its reply unreadable, 127 `atoll run` could not
 * start the command.
 */
#include <errno.h>
#include <inttypes.h>
#include <sched.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <atoll/proto.h>

#include "cpulist.h"
#include "json.h"

static const char *socket_path(void)
{
	const char *e = getenv(PROTO_SOCKET_ENV);

	return e && *e ? e : PROTO_SOCKET_DEFAULT;
}

static void help_main(FILE *f)
{
	fprintf(f,
"usage: atoll COMMAND [ARGS]\n"
"\n"
"Manage the cells of this node through atolld.\n"
"\n"
"  atoll cell create NAME --cores N|LIST [--mem SIZE] [--mems LIST]\n"
"                         [--class ll|cg] [--provision N]\n"
"  atoll cell resize NAME [--cores N|LIST] [--mem SIZE] [--mems LIST]\n"
"                         [--class ll|cg] [--provision N]\n"
"  atoll cell destroy NAME [--grace-ms MS]\n"
"  atoll cell list [--json]\n"
"  atoll cell allow CELL PEER      (channels between cells need both allows)\n"
"  atoll cell deny CELL PEER\n"
"  atoll run --cell NAME -- CMD [ARGS...]\n"
"  atoll status [--json]\n"
"\n"
"--cores takes a count (\"2\") or a cpu list (\"1-3,5\": contains '-' or ',',\n"
"or use --cpus LIST). SIZE is bytes or K/M/G/T (\"512M\"); 0 or \"max\" means\n"
"no limit. The socket is $ATOLL_SOCKET, else " PROTO_SOCKET_DEFAULT ".\n"
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

/* Send, parse, and on error print the sentence. *docp is the parsed reply
 * on success (caller frees). */
static int call(const char *req, bool json_out, struct json_doc **docp)
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
	if (!json_out && notes && notes->type == JSON_ARR)
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

static void print_cells(const struct json *cells)
{
	printf("%-20s %-5s %-12s %5s %5s %9s %5s %s\n", "NAME", "CLASS", "CPUS",
	       "CORES", "PROV", "MEM", "MEMS", "PIDS [allows:PEERS]");
	for (size_t i = 0; cells && i < cells->len; i++) {
		const struct json *c = cells->kids[i], *pids = json_get(c, "pids");
		const struct json *peers;
		char sz[32];

		if (jint(c, "mem"))
			size_format((uint64_t)jint(c, "mem"), sz, sizeof(sz));
		else
			snprintf(sz, sizeof(sz), "-");
		printf("%-20s %-5s %-12s %5lld %5lld %9s %5s", jstr(c, "name"),
		       jstr(c, "class"), jstr(c, "cpus"), jint(c, "cores"),
		       jint(c, "provision"), sz, jstr(c, "mems"));
		for (size_t k = 0; pids && pids->type == JSON_ARR && k < pids->len; k++)
			printf("%s%lld", k ? "," : " ", (long long)pids->kids[k]->i);
		peers = json_get(c, "allowed_peers");
		for (size_t k = 0; peers && peers->type == JSON_ARR && k < peers->len; k++)
			if (peers->kids[k]->type == JSON_STR)
				printf("%s%s", k ? "," : " allows:", peers->kids[k]->s);
		printf("%s\n", json_get(c, "destroying") ? " (destroying)" : "");
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

/* Append a JSON string member with escaping via the writer. */
static int build_spec(struct json_w *w, int argc, char **argv, bool create)
{
	bool cores_seen = false;

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
		} else if (!strcmp(o, "--provision")) {
			char *end;
			long long n;

			if (!v)
				return usage_err("%s needs a value", o);
			n = strtoll(v, &end, 10);
			if (!*v || *end || n < 0)
				return usage_err("--provision '%s' must be a count of cores", v);
			jw_kint(w, "provision", n);
		} else {
			return usage_err("unknown option '%s'", o);
		}
		i++;
	}
	if (create && !cores_seen)
		return usage_err("cell create needs --cores N or --cores LIST%s", "");
	return 0;
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
		printf("usage: atoll cell create NAME --cores N|LIST [--mem SIZE] [--mems LIST] [--class ll|cg] [--provision N]\n"
		       "       atoll cell resize NAME [--cores N|LIST] [--mem SIZE] [--mems LIST] [--class ll|cg] [--provision N]\n"
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
			cell = json_get(root, "cell");
			printf("cell '%s' %s: cpus %s, class %s, provision %lld\n",
			       jstr(cell, "name"),
			       !strcmp(sub, "create") ? "created" : "resized",
			       jstr(cell, "cpus"), jstr(cell, "class"),
			       jint(cell, "provision"));
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
			       "Show atolld's instance, managed and free cores, enforcement and the node's inventory.\n"
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
	if (!strcmp(argv[1], "run"))
		return cmd_run(argc - 2, argv + 2);
	return usage_err("unknown command '%s'", argv[1]);
}
