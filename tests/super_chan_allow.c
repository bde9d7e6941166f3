/* super_chan_allow.c - channel permissions between cells: a private atolld
 * (affinity mode, no cgroup rights needed) with cells A and B; a channel
 * from a process of A to a listener of B opens only when each cell allows
 * the other (cell.allow / cell.deny, chan.check), a process claiming a
 * cell it is not in is refused, and bad requests change nothing. The
 * listener is this process (ATOLL_CELL=B, attached to B), the opener a
 * forked child (ATOLL_CELL=A, attached to A unless it lies). */
#include "super_common.c"

#include <atoll/chan.h>

/* Child exit codes. */
#define K_OPENED 0      /* opened, sent "hello", got the ack */
#define K_EACCES 10     /* chan_open returned -EACCES */
#define K_OTHER 11      /* anything else */

struct opts {
	const char *cell;    /* the opener's ATOLL_CELL, NULL: unset */
	bool supervised;     /* the opener sees ATOLL_SOCKET */
	bool attached;       /* it runs in that cell, else it only claims it */
};

static struct inst in;

static void supervised(bool on)
{
	if (on)
		setenv("ATOLL_SOCKET", in.sock, 1);
	else
		unsetenv("ATOLL_SOCKET");
}

static int opener(const struct opts *o)
{
	struct chan *c;
	char ack[8];
	int err;

	if (o->cell)
		setenv("ATOLL_CELL", o->cell, 1);
	else
		unsetenv("ATOLL_CELL");
	supervised(o->supervised);
	err = chan_open(&c, "peer", NULL);
	if (err == -EACCES)
		return K_EACCES;
	if (err)
		return K_OTHER;
	if (chan_write(c, "hello", 5, 0) != 5 ||
	    chan_read(c, ack, sizeof(ack), 0) != 3 || memcmp(ack, "ack", 3))
		return K_OTHER;
	chan_close(c);
	return K_OPENED;
}

/* One attempt. want_accept: what chan_accept returns (1: do not call it,
 * the opener gives up before connecting). Returns the child's code. */
static int attempt(struct chan_listener *l, const struct opts *o,
		   int want_accept, bool exchange)
{
	struct chan *c = NULL;
	char buf[16], line[128];
	int st, r, go[2];
	pid_t pid;

	CHECK_OK(pipe(go));
	fflush(NULL);
	pid = fork();
	CHECK(pid >= 0);
	if (pid == 0) {
		close(chan_listener_fd(l));
		close(go[1]);
		if (read(go[0], buf, 1) != 1)	/* attached, if it is to be */
			_exit(K_OTHER);
		_exit(opener(o));
	}
	close(go[0]);
	if (o->attached) {
		snprintf(line, sizeof(line),
			 "{\"op\":\"cell.attach\",\"name\":\"%s\",\"pid\":%d}",
			 o->cell, (int)pid);
		expect_ok(&in, line);
	}
	CHECK_EQ(write(go[1], "g", 1), 1);
	close(go[1]);
	if (want_accept != 1) {
		r = chan_accept(l, &c, NULL);
		if (r != want_accept) {
			fprintf(stderr, "FAIL: chan_accept %d (%s), wanted %d\n",
				r, strerror(-r), want_accept);
			kill(pid, SIGKILL);
			waitpid(pid, NULL, 0);
			exit(TEST_FAIL);
		}
		if (!r && exchange) {
			CHECK_EQ(chan_read(c, buf, sizeof(buf), 0), 5);
			CHECK(!memcmp(buf, "hello", 5));
			CHECK_EQ(chan_write(c, "ack", 3, 0), 3);
		}
	}
	CHECK_EQ(waitpid(pid, &st, 0), pid);
	if (c)
		chan_close(c);
	CHECK(WIFEXITED(st));
	return WEXITSTATUS(st);
}

static void check_says(const char *line, const char *code, const char *word)
{
	struct json_doc *d = request(&in, line);

	CHECK(!reply_ok(d));
	CHECK(!strcmp(reply_code(d), code));
	if (word && !strstr(reply_msg(d), word)) {
		fprintf(stderr, "FAIL: '%s' not in \"%s\"\n", word, reply_msg(d));
		exit(TEST_FAIL);
	}
	printf("chan.check refused (%s): %s\n", code, reply_msg(d));
	json_free(d);
}

/* chan.check A->B asked by a child running as nobody: the reply must
 * hold want. */
static void check_unprivileged(const char *want)
{
	const char *req = "{\"op\":\"chan.check\",\"from\":\"A\",\"to\":\"B\"}\n";
	int st;
	pid_t pid;

	fflush(NULL);
	pid = fork();
	CHECK(pid >= 0);
	if (pid == 0) {
		char reply[4096];

		if (setgid(65534) || setuid(65534))
			_exit(3);
		if (raw_request(in.sock, req, strlen(req), reply, sizeof(reply)))
			_exit(4);
		printf("unprivileged chan.check: %s", reply);
		_exit(strstr(reply, want) ? 0 : 1);
	}
	CHECK_EQ(waitpid(pid, &st, 0), pid);
	CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0);
}

static void attach_self(const char *cell)
{
	char line[128];

	snprintf(line, sizeof(line),
		 "{\"op\":\"cell.attach\",\"name\":\"%s\",\"pid\":%d}",
		 cell, (int)getpid());
	expect_ok(&in, line);
}

/* Every cell's allowed peers, as text. */
static void peers_snapshot(char *out, size_t cap)
{
	struct json_doc *d = request(&in, "{\"op\":\"cell.list\"}");
	const struct json *cells = json_get(json_root(d), "cells");

	out[0] = '\0';
	for (size_t i = 0; cells && i < cells->len; i++) {
		const struct json *p = json_get(cells->kids[i], "allowed_peers");

		CHECK(p && p->type == JSON_ARR);
		strncat(out, json_get(cells->kids[i], "name")->s,
			cap - strlen(out) - 1);
		strncat(out, ":", cap - strlen(out) - 1);
		for (size_t k = 0; k < p->len; k++) {
			strncat(out, p->kids[k]->s, cap - strlen(out) - 1);
			strncat(out, ",", cap - strlen(out) - 1);
		}
		strncat(out, ";", cap - strlen(out) - 1);
	}
	json_free(d);
}

int main(int argc, char **argv)
{
	const struct opts a = { "A", true, true }, anon = { NULL, true, false };
	const struct opts liar = { "A", true, false };
	struct chan_listener *l;
	char before[1024], after[1024], out[8192], dir[400];

	super_init(argc, argv, false);
	if (sysconf(_SC_NPROCESSORS_ONLN) < 2)
		test_skip("needs 2 online cpus");
	inst_init(&in, "chanallow", "0-1");
	in.extra = "--enforce=affinity";
	inst_start(&in);
	expect_ok(&in, "{\"op\":\"cell.create\",\"name\":\"A\",\"cpus\":\"0\"}");
	expect_ok(&in, "{\"op\":\"cell.create\",\"name\":\"B\",\"cpus\":\"1\"}");

	snprintf(dir, sizeof(dir), "%s/chan", in.dir);
	setenv("ATOLL_CHAN_DIR", dir, 1);
	/* A process in neither cell may not ask about their channels; once
	 * this process is in B, its children are too (and get the answer:
	 * nobody allows the channel yet). */
	check_unprivileged("\"permission\"");
	check_unprivileged("neither cell 'A' nor 'B'");
	attach_self("B");
	check_unprivileged("\"not-allowed\"");
	setenv("ATOLL_CELL", "B", 1);
	supervised(true);
	CHECK_OK(chan_listen(&l, "peer"));

	/* Nobody allows: the acceptor asks atolld and refuses; the opener
	 * gets -EACCES. */
	check_says("{\"op\":\"chan.check\",\"from\":\"A\",\"to\":\"B\"}",
		   PROTO_E_NOTALLOWED, "neither");
	CHECK_EQ(attempt(l, &a, -EACCES, false), K_EACCES);

	/* A allows B only: still refused, and the sentence names B. */
	{
		const char *al[] = { "cell", "allow", "A", "B", NULL };

		CHECK_EQ(cli(&in, out, sizeof(out), al), 0);
		CHECK(strstr(out, "allows") != NULL);
	}
	check_says("{\"op\":\"chan.check\",\"from\":\"A\",\"to\":\"B\"}",
		   PROTO_E_NOTALLOWED, "'B' (the target) does not allow");
	check_says("{\"op\":\"chan.check\",\"from\":\"B\",\"to\":\"A\"}",
		   PROTO_E_NOTALLOWED, "'B' (the opener) does not allow");
	CHECK_EQ(attempt(l, &a, -EACCES, false), K_EACCES);

	/* Both allow: the channel opens and a message goes through. */
	expect_ok(&in, "{\"op\":\"cell.allow\",\"cell\":\"B\",\"peer\":\"A\"}");
	expect_ok(&in, "{\"op\":\"chan.check\",\"from\":\"A\",\"to\":\"B\"}");
	expect_ok(&in, "{\"op\":\"chan.check\",\"from\":\"B\",\"to\":\"A\"}");
	CHECK_EQ(attempt(l, &a, 0, true), K_OPENED);
	/* A claim is checked against the process: one that names cell A
	 * without running in it is refused, though A and B allow each other. */
	CHECK_EQ(attempt(l, &liar, -EACCES, false), K_EACCES);
	{
		char line[160];

		snprintf(line, sizeof(line),
			 "{\"op\":\"chan.check\",\"from\":\"A\",\"to\":\"B\",\"from_pid\":%d}",
			 (int)getpid());
		check_says(line, PROTO_E_PERM, "is not in cell 'A'");
		snprintf(line, sizeof(line),
			 "{\"op\":\"chan.check\",\"from\":\"A\",\"to\":\"B\",\"to_pid\":%d}",
			 (int)getpid());
		expect_ok(&in, line);
	}
	{
		const char *ls[] = { "cell", "list", NULL };

		CHECK_EQ(cli(&in, out, sizeof(out), ls), 0);
		CHECK(strstr(out, "allows:B") != NULL);
		CHECK(strstr(out, "allows:A") != NULL);
	}
	/* The allows are journaled: a restarted atolld keeps them. */
	peers_snapshot(before, sizeof(before));
	inst_kill(&in, SIGKILL);
	inst_start(&in);
	peers_snapshot(after, sizeof(after));
	CHECK(!strcmp(before, after));
	CHECK(strstr(after, "A:B,;") && strstr(after, "B:A,;"));
	expect_ok(&in, "{\"op\":\"chan.check\",\"from\":\"A\",\"to\":\"B\"}");
	/* Allowing twice changes nothing. */
	expect_ok(&in, "{\"op\":\"cell.allow\",\"cell\":\"B\",\"peer\":\"A\"}");

	/* The opener needs ATOLL_CELL with a supervisor: refused before it
	 * connects. */
	CHECK_EQ(attempt(l, &anon, 1, false), K_EACCES);

	/* The opener asks on its own: a listener without a supervisor
	 * accepts, the supervised opener refuses once it learns the
	 * target's cell (C is unknown to atolld) and hangs up. */
	setenv("ATOLL_CELL", "C", 1);
	supervised(false);
	CHECK_EQ(attempt(l, &a, 0, false), K_EACCES);
	setenv("ATOLL_CELL", "B", 1);
	supervised(true);

	/* B takes its allow back: refused again. */
	{
		const char *dn[] = { "cell", "deny", "B", "A", NULL };

		CHECK_EQ(cli(&in, out, sizeof(out), dn), 0);
	}
	check_says("{\"op\":\"chan.check\",\"from\":\"A\",\"to\":\"B\"}",
		   PROTO_E_NOTALLOWED, "'B' (the target) does not allow");
	CHECK_EQ(attempt(l, &a, -EACCES, false), K_EACCES);

	/* Bad requests: errors, nothing changed. */
	peers_snapshot(before, sizeof(before));
	CHECK(!strcmp(before, "A:B,;B:;") || !strcmp(before, "B:;A:B,;"));
	expect_error(&in, "{\"op\":\"cell.allow\",\"cell\":\"A\",\"peer\":\"Z\"}",
		     PROTO_E_NOCELL);
	expect_error(&in, "{\"op\":\"cell.allow\",\"cell\":\"Z\",\"peer\":\"A\"}",
		     PROTO_E_NOCELL);
	expect_error(&in, "{\"op\":\"cell.deny\",\"cell\":\"Z\",\"peer\":\"A\"}",
		     PROTO_E_NOCELL);
	expect_error(&in, "{\"op\":\"cell.allow\",\"cell\":\"B\"}",
		     PROTO_E_BADREQ);
	expect_error(&in, "{\"op\":\"cell.allow\",\"peer\":\"B\"}",
		     PROTO_E_BADREQ);
	expect_error(&in, "{\"op\":\"cell.allow\",\"cell\":\"B\",\"peer\":7}",
		     PROTO_E_BADREQ);
	expect_error(&in, "{\"op\":\"cell.allow\",\"cell\":\"B\",\"peer\":\"../x\"}",
		     PROTO_E_BADREQ);
	expect_error(&in, "{\"op\":\"cell.allow\",\"cell\":\"B\",\"peer\":\"A\",\"x\":1}",
		     PROTO_E_BADREQ);
	expect_error(&in, "{\"op\":\"cell.allow\",\"cell\":\"B\",\"peer\":\"B\"}",
		     PROTO_E_BADREQ);
	expect_error(&in, "{\"op\":\"chan.check\",\"from\":\"A\",\"to\":\"Z\"}",
		     PROTO_E_NOCELL);
	expect_error(&in, "{\"op\":\"chan.check\",\"from\":\"Z\",\"to\":\"A\"}",
		     PROTO_E_NOCELL);
	expect_error(&in, "{\"op\":\"chan.check\",\"from\":\"A\"}",
		     PROTO_E_BADREQ);
	expect_error(&in, "{\"op\":\"chan.check\",\"from\":\"A\",\"to\":\"B\",\"from_pid\":0}",
		     PROTO_E_RANGE);
	expect_error(&in, "{\"op\":\"chan.check\",\"from\":\"A\",\"to\":\"B\",\"to_pid\":\"1\"}",
		     PROTO_E_BADREQ);
	{
		const char *u1[] = { "cell", "allow", "A", NULL };
		const char *u2[] = { "cell", "allow", "A", "B", "C", NULL };
		const char *u3[] = { "cell", "allow", "A", "Z", NULL };
		const char *h[] = { "cell", "allow", "--help", NULL };

		CHECK_EQ(cli(&in, NULL, 0, u1), ATOLL_EXIT_USAGE);
		CHECK_EQ(cli(&in, NULL, 0, u2), ATOLL_EXIT_USAGE);
		CHECK_EQ(cli(&in, NULL, 0, u3), ATOLL_EXIT_REFUSED);
		CHECK_EQ(cli(&in, out, sizeof(out), h), 0);
		CHECK(strstr(out, "allow CELL PEER") != NULL);
	}
	peers_snapshot(after, sizeof(after));
	CHECK(!strcmp(before, after));

	/* Destroying a cell drops the allows that name it (this process
	 * moves to A first: destroying B would kill it). */
	attach_self("A");
	expect_ok(&in, "{\"op\":\"cell.destroy\",\"name\":\"B\"}");
	peers_snapshot(after, sizeof(after));
	CHECK(!strcmp(after, "A:;"));

	/* No socket at ATOLL_SOCKET: no supervisor, opening directly. */
	setenv("ATOLL_SOCKET", "/nonexistent/atolld.sock", 1);
	{
		const struct opts gone = { "A", false, false };

		CHECK_EQ(attempt(l, &gone, 0, true), K_OPENED);
	}
	chan_listener_close(l);
	rmdir(dir);
	printf("super_chan_allow: ok\n");
	return TEST_PASS;
}
