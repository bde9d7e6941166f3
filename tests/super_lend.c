/* super_lend.c - lending of idle provisioned cores and best-effort cores
 * (src/super/lend.c), end to end on a 2-core node:
 *   - cell a (CG, min_cores 0, provision 1) is parked with 0 cores: it
 *     holds none (frozen) and its provisioned core is idle;
 *   - cell b (LL, cpu 1, want 2) borrows it at once: cell.list shows the
 *     loan (owed to a, on its provision), reservations stay within the
 *     node, b's process runs on both cores, cell.top has the move;
 *   - the loan survives a SIGKILL and restart of atolld (journal);
 *   - bad `want` (below what b holds of its own, negative, huge, wrong
 *     type) is refused with a sentence and changes nothing, on the socket
 *     and in the CLI;
 *   - a asks for its core (resize to 1 core): b gives it back at once
 *     (a runs again, b's process is back on cpu 1), a "reclaim" move;
 *   - the CLI's --want lends again after a parks once more, and a
 *     smaller want gives the core back;
 *   - with a many-core process (tests/mcp_client) in b: it is granted
 *     the lent core (2 vcores) and loses it through a revocation when a
 *     takes it back (1 vcore);
 *   - best-effort cores never block a create: b (cpu 1, want 2) borrows
 *     the free cpu 0; a create asking for more than can be taken back
 *     (2 cores, a provision of 2, cpus 0-1) is refused with nothing
 *     changed; `cell.create c --cores 1` takes cpu 0 back (b's MCP loses
 *     its vcore, a "reclaim" move b -> c with its reason), which
 *     survives a SIGKILL and restart; c parked and resized back to 1
 *     core (no provision) takes it back the same way, and so does a
 *     provision given to c parked (b then borrows the core from it).
 * Skips without root, cgroups or a freezer. */
#include "super_mcp_common.c"

struct view {
	char cpus[32];
	long long cores, want, reserved, nloans;
	char from[40];
	bool prov, best_effort, frozen;
};

static struct view view(struct inst *in, const char *name)
{
	struct json_doc *d = request(in, "{\"op\":\"cell.list\"}");
	const struct json *cells = json_get(json_root(d), "cells");
	struct view v;

	memset(&v, 0, sizeof(v));
	v.cores = -1;
	for (size_t i = 0; cells && i < cells->len; i++) {
		const struct json *c = cells->kids[i], *b, *f;

		if (strcmp(json_get(c, "name")->s, name))
			continue;
		snprintf(v.cpus, sizeof(v.cpus), "%s", json_get(c, "cpus")->s);
		v.cores = json_get(c, "cores")->i;
		v.want = json_get(c, "want")->i;
		v.reserved = json_get(c, "reserved")->i;
		f = json_get(c, "frozen");
		v.frozen = f && f->b;
		b = json_get(c, "borrowed");
		v.nloans = (long long)b->len;
		if (b->len) {
			const struct json *l = b->kids[0];

			snprintf(v.from, sizeof(v.from), "%s",
				 json_get(l, "from")->s);
			v.prov = json_get(l, "provisioned") != NULL;
			v.best_effort = json_get(l, "best_effort") != NULL;
		}
	}
	json_free(d);
	CHECK(v.cores >= 0);
	return v;
}

static void view_text(struct inst *in, char *out, size_t cap)
{
	struct view a = view(in, "a"), b = view(in, "b");

	snprintf(out, cap, "a:%s:%lld:%lld b:%s:%lld:%lld:%lld:%s", a.cpus,
		 a.want, a.reserved, b.cpus, b.want, b.reserved, b.nloans,
		 b.from);
}

/* The latest move of cell.top has this direction, from, to and cpu. */
static void check_last_move(struct inst *in, const char *dir,
			    const char *from, const char *to, int cpu)
{
	struct json_doc *d = request(in, "{\"op\":\"cell.top\",\"moves_since\":0}");
	const struct json *mv = json_get(json_root(d), "moves"), *m;

	CHECK(mv && mv->len > 0);
	m = mv->kids[mv->len - 1];
	if (strcmp(json_get(m, "direction")->s, dir) ||
	    strcmp(json_get(m, "from")->s, from) ||
	    strcmp(json_get(m, "to")->s, to) || json_get(m, "cpu")->i != cpu) {
		fprintf(stderr, "FAIL: last move %s cpu %lld %s -> %s, want %s cpu %d %s -> %s\n",
			json_get(m, "direction")->s,
			(long long)json_get(m, "cpu")->i,
			json_get(m, "from")->s, json_get(m, "to")->s, dir, cpu,
			from, to);
		exit(TEST_FAIL);
	}
	CHECK(strlen(json_get(m, "reason")->s) > 10);
	printf("move: %s cpu %d %s -> %s: %s\n", dir, cpu, from, to,
	       json_get(m, "reason")->s);
	json_free(d);
}

/* b borrows a's idle provisioned core 0. */
static void check_lent(struct inst *in, pid_t sleeper)
{
	struct view a = view(in, "a"), b = view(in, "b");
	int first;

	CHECK(a.frozen);
	CHECK_EQ(a.cores, 0);
	CHECK_EQ(a.reserved, 1);              /* its provision */
	CHECK(!strcmp(b.cpus, "0-1"));
	CHECK_EQ(b.nloans, 1);
	CHECK(!strcmp(b.from, "a"));
	CHECK(b.prov && b.best_effort);
	CHECK_EQ(b.reserved, 1);              /* the loan is a's guarantee */
	CHECK_EQ(b.want, 2);
	for (int i = 0; i < 100 && affinity_count(sleeper, &first) != 2; i++)
		sleep_ms(10);
	CHECK_EQ(affinity_count(sleeper, &first), 2);
}

static void check_bad_want(struct inst *in)
{
	static const char *const bad[][2] = {
		{ "{\"op\":\"cell.resize\",\"name\":\"b\",\"want\":0}", PROTO_E_RANGE },
		{ "{\"op\":\"cell.resize\",\"name\":\"b\",\"want\":-1}", PROTO_E_RANGE },
		{ "{\"op\":\"cell.resize\",\"name\":\"b\",\"want\":100000}", PROTO_E_RANGE },
		{ "{\"op\":\"cell.resize\",\"name\":\"b\",\"want\":1.5}", PROTO_E_RANGE },
		{ "{\"op\":\"cell.resize\",\"name\":\"b\",\"want\":\"2\"}", PROTO_E_BADREQ },
		{ "{\"op\":\"cell.resize\",\"name\":\"b\",\"want\":null}", PROTO_E_BADREQ },
		{ "{\"op\":\"cell.resize\",\"name\":\"a\",\"cores\":0,\"want\":-5}", PROTO_E_RANGE },
		{ "{\"op\":\"cell.create\",\"name\":\"c\",\"cores\":1,\"want\":true}", PROTO_E_BADREQ },
		{ "{\"op\":\"cell.resize\",\"name\":\"b\",\"cores\":0}", PROTO_E_RANGE },
	};
	char before[512], after[512], out[4096];

	view_text(in, before, sizeof(before));
	for (size_t i = 0; i < ARRAY_SIZE(bad); i++)
		expect_error(in, bad[i][0], bad[i][1]);
	CHECK_EQ(cli(in, out, sizeof(out), (const char *const[]){ "cell",
		 "resize", "b", "--want", "-1", NULL }), 2);
	CHECK_EQ(cli(in, out, sizeof(out), (const char *const[]){ "cell",
		 "resize", "b", "--want", "x", NULL }), 2);
	CHECK_EQ(cli(in, out, sizeof(out), (const char *const[]){ "cell",
		 "resize", "b", "--want", "0", NULL }), 1);
	view_text(in, after, sizeof(after));
	if (strcmp(before, after)) {
		fprintf(stderr, "FAIL: a refused request changed %s into %s\n",
			before, after);
		exit(TEST_FAIL);
	}
	printf("bad want refused, nothing changed: %s\n", after);
}

/* b (cpu 1, want 2) borrows the free cpu 0 as a best-effort core; a
 * create of c for 1 core takes it back (b's MCP loses its vcore), one
 * that asks for more than can be taken back changes nothing. */
static void check_create_reclaims(struct inst *in)
{
	struct json_doc *d;
	struct mcp_kid k;
	struct view b;
	char path[400], out[8192];
	FILE *f;

	expect_ok(in, "{\"op\":\"cell.create\",\"name\":\"b\",\"cpus\":\"1\",\"want\":2}");
	b = view(in, "b");
	CHECK(!strcmp(b.cpus, "0-1"));
	CHECK_EQ(b.nloans, 1);
	CHECK(!strcmp(b.from, ""));
	CHECK(!b.prov && b.best_effort);
	CHECK_EQ(b.reserved, 2);               /* a free-pool loan counts */
	check_last_move(in, "lend", "", "b", 0);
	mcp_spawn(in, "b", "busy", &k);
	EXPECT_LINE(&k, "vcores 2", 5000);

	/* more than can be taken back: refused, nothing changed */
	expect_error(in, "{\"op\":\"cell.create\",\"name\":\"c\",\"cores\":2}",
		     PROTO_E_NOCORES);
	expect_error(in, "{\"op\":\"cell.create\",\"name\":\"c\",\"cores\":1,\"provision\":2}",
		     PROTO_E_ADMISSION);
	expect_error(in, "{\"op\":\"cell.create\",\"name\":\"c\",\"cpus\":\"0-1\"}",
		     PROTO_E_BUSY);
	b = view(in, "b");
	CHECK(!strcmp(b.cpus, "0-1"));
	CHECK_EQ(b.nloans, 1);
	check_last_move(in, "lend", "", "b", 0);
	CHECK_EQ(mcp_allocated(in, "b"), 2);

	/* c asks for 1 core: b's best-effort core yields */
	d = request(in, "{\"op\":\"cell.create\",\"name\":\"c\",\"cores\":1,\"class\":\"cg\",\"min_cores\":0}");
	CHECK(reply_ok(d));
	CHECK(!strcmp(json_get(json_get(json_root(d), "cell"), "cpus")->s, "0"));
	json_free(d);
	b = view(in, "b");
	CHECK(!strcmp(b.cpus, "1"));
	CHECK_EQ(b.nloans, 0);
	CHECK_EQ(b.want, 2);                   /* still wants, nothing spare */
	check_last_move(in, "reclaim", "b", "c", 0);
	EXPECT_LINE(&k, "vcores 1", 5000);
	CHECK(mcp_wait_allocated(in, "b", 1, 5000));
	mcp_reap(&k);
	CHECK_EQ(cli(in, out, sizeof(out), (const char *const[]){ "top",
		 "--once", "--interval", "0.1", NULL }), 0);
	CHECK(strstr(out, "cpu 0   b -> c  (reclaim: cell 'c' asked for cores") != NULL);
	printf("a create takes back a best-effort core\n");

	/* the journal has it: kill -9 and restart keep it */
	snprintf(path, sizeof(path), "%s/cells.json", in->state);
	f = fopen(path, "r");
	CHECK(f != NULL);
	out[fread(out, 1, sizeof(out) - 1, f)] = '\0';
	fclose(f);
	CHECK(strstr(out, "best_effort") == NULL);
	inst_kill(in, SIGKILL);
	inst_start(in);
	CHECK(!strcmp(view(in, "b").cpus, "1"));
	CHECK_EQ(view(in, "b").nloans, 0);
	CHECK(!strcmp(view(in, "c").cpus, "0"));
	/* and nothing more: no core is spare for b */
	expect_error(in, "{\"op\":\"cell.create\",\"name\":\"d\",\"cores\":1}",
		     PROTO_E_NOCORES);
	printf("the reclaim survives a restart\n");

	/* a resize that grows c (no provision) takes it back too */
	expect_ok(in, "{\"op\":\"cell.resize\",\"name\":\"c\",\"cores\":0}");
	CHECK(!strcmp(view(in, "b").cpus, "0-1"));
	check_last_move(in, "lend", "", "b", 0);
	d = request(in, "{\"op\":\"cell.resize\",\"name\":\"c\",\"cores\":1}");
	CHECK(reply_ok(d));
	CHECK(!strcmp(json_get(json_get(json_root(d), "cell"), "cpus")->s, "0"));
	json_free(d);
	CHECK(!view(in, "c").frozen);
	CHECK(!strcmp(view(in, "b").cpus, "1"));
	CHECK_EQ(view(in, "b").nloans, 0);
	check_last_move(in, "reclaim", "b", "c", 0);
	printf("a resize takes back a best-effort core\n");

	/* a provision too: c parks, b borrows cpu 0 from the free pool; a
	 * provision of 1 for c is admitted by taking it back (to the free
	 * pool), and b borrows it again, now from c's idle provision */
	expect_ok(in, "{\"op\":\"cell.resize\",\"name\":\"c\",\"cores\":0}");
	b = view(in, "b");
	CHECK(!strcmp(b.cpus, "0-1") && !strcmp(b.from, "") && !b.prov);
	expect_ok(in, "{\"op\":\"cell.resize\",\"name\":\"c\",\"provision\":1}");
	b = view(in, "b");
	CHECK(!strcmp(b.cpus, "0-1"));
	CHECK(!strcmp(b.from, "c") && b.prov && b.best_effort);
	CHECK_EQ(b.reserved, 1);
	CHECK_EQ(view(in, "c").reserved, 1);
	check_last_move(in, "lend", "c", "b", 0);
	printf("a provision takes back a best-effort core\n");

	expect_ok(in, "{\"op\":\"cell.destroy\",\"name\":\"c\",\"grace_ms\":100}");
	expect_ok(in, "{\"op\":\"cell.destroy\",\"name\":\"b\",\"grace_ms\":100}");
}

int main(int argc, char **argv)
{
	struct inst in;
	struct json_doc *d;
	char out[8192], path[400];
	struct mcp_kid k;
	pid_t sleeper;
	int first;
	FILE *f;

	mcp_init(argc, argv);
	if (geteuid() != 0)
		test_skip("needs root to create cgroups (uid %d)", (int)geteuid());
	inst_init(&in, "lend", "0-1");
	inst_start(&in);
	need_cgroups(&in);
	d = request(&in, "{\"op\":\"cell.create\",\"name\":\"a\",\"cpus\":\"0\",\"class\":\"cg\",\"min_cores\":0,\"provision\":1}");
	if (!reply_ok(d) && !strcmp(reply_code(d), PROTO_E_SYSTEM))
		test_skip("%s", reply_msg(d));
	CHECK(reply_ok(d));
	json_free(d);
	/* parked: a holds no core, its provision is idle */
	expect_ok(&in, "{\"op\":\"cell.resize\",\"name\":\"a\",\"cores\":0}");
	CHECK(view(&in, "a").frozen);
	CHECK_EQ(view(&in, "a").want, 0);
	/* no core left for a cell of 2, nor a provision beyond the node */
	expect_error(&in, "{\"op\":\"cell.create\",\"name\":\"c\",\"cores\":2}",
		     PROTO_E_NOCORES);
	expect_error(&in, "{\"op\":\"cell.create\",\"name\":\"c\",\"cores\":1,\"provision\":2}",
		     PROTO_E_ADMISSION);

	/* b wants 2: it borrows a's idle provisioned core at once */
	expect_ok(&in, "{\"op\":\"cell.create\",\"name\":\"b\",\"cpus\":\"1\",\"class\":\"ll\",\"want\":2}");
	sleeper = spawn_in_cell(&in, "b");
	check_lent(&in, sleeper);
	check_last_move(&in, "lend", "a", "b", 0);
	/* the loan is no guarantee: nothing more is admitted */
	expect_error(&in, "{\"op\":\"cell.create\",\"name\":\"c\",\"cores\":1}",
		     PROTO_E_NOCORES);
	CHECK_EQ(cli(&in, out, sizeof(out), (const char *const[]){ "cell",
		 "list", NULL }), 0);
	CHECK(strstr(out, "WANT") != NULL);
	CHECK(strstr(out, "lent:0<-a(prov)") != NULL);
	CHECK_EQ(cli(&in, out, sizeof(out), (const char *const[]){ "top",
		 "--once", "--interval", "0.1", NULL }), 0);
	CHECK(strstr(out, "cpu 0   a -> b  (lend: cell 'b' wants 2") != NULL);
	printf("b borrows a's idle provisioned core\n");

	check_bad_want(&in);

	/* the journal holds the loan: kill -9 and restart keep it */
	snprintf(path, sizeof(path), "%s/cells.json", in.state);
	f = fopen(path, "r");
	CHECK(f != NULL);
	out[fread(out, 1, sizeof(out) - 1, f)] = '\0';
	fclose(f);
	CHECK(strstr(out, "{\"cpu\":0,\"from\":\"a\",\"provisioned\":true,\"best_effort\":true}") != NULL);
	inst_kill(&in, SIGKILL);
	inst_start(&in);
	check_lent(&in, sleeper);
	printf("the loan survives a restart\n");

	/* a asks for its core: b gives it back at once */
	d = request(&in, "{\"op\":\"cell.resize\",\"name\":\"a\",\"cores\":1}");
	CHECK(reply_ok(d));
	CHECK(!strcmp(json_get(json_get(json_root(d), "cell"), "cpus")->s, "0"));
	json_free(d);
	CHECK(!view(&in, "a").frozen);
	CHECK(!strcmp(view(&in, "b").cpus, "1"));
	CHECK_EQ(view(&in, "b").nloans, 0);
	CHECK_EQ(view(&in, "b").want, 2);     /* still wants, nothing spare */
	check_last_move(&in, "reclaim", "b", "a", 0);
	for (int i = 0; i < 100 && affinity_count(sleeper, &first) != 1; i++)
		sleep_ms(10);
	CHECK_EQ(affinity_count(sleeper, &first), 1);
	CHECK_EQ(first, 1);
	printf("a took its core back\n");

	/* through the CLI: b wants 1, a parks, nothing lent; want 2: lent */
	CHECK_EQ(cli(&in, out, sizeof(out), (const char *const[]){ "cell",
		 "resize", "b", "--want", "1", NULL }), 0);
	CHECK(strstr(out, "want 1") != NULL);
	expect_ok(&in, "{\"op\":\"cell.resize\",\"name\":\"a\",\"cores\":0}");
	CHECK(!strcmp(view(&in, "b").cpus, "1"));
	CHECK_EQ(cli(&in, out, sizeof(out), (const char *const[]){ "cell",
		 "resize", "b", "--want", "2", NULL }), 0);
	CHECK(!strcmp(view(&in, "b").cpus, "0-1"));
	CHECK(strstr(out, "want 2") != NULL);
	/* a smaller want gives the best-effort core back */
	expect_ok(&in, "{\"op\":\"cell.resize\",\"name\":\"b\",\"want\":1}");
	CHECK(!strcmp(view(&in, "b").cpus, "1"));
	check_last_move(&in, "return", "b", "", 0);
	printf("--want lends and gives back\n");

	/* b's MCP gets the lent core, and loses it when a asks */
	expect_ok(&in, "{\"op\":\"cell.resize\",\"name\":\"b\",\"want\":2}");
	CHECK(!strcmp(view(&in, "b").cpus, "0-1"));
	mcp_spawn(&in, "b", "busy", &k);
	EXPECT_LINE(&k, "vcores 2", 5000);
	expect_ok(&in, "{\"op\":\"cell.resize\",\"name\":\"a\",\"cores\":1}");
	CHECK(!strcmp(view(&in, "b").cpus, "1"));
	check_last_move(&in, "reclaim", "b", "a", 0);
	EXPECT_LINE(&k, "vcores 1", 5000);
	CHECK(mcp_wait_allocated(&in, "b", 1, 5000));
	mcp_reap(&k);
	printf("the MCP's lent vcore is revoked\n");

	expect_ok(&in, "{\"op\":\"cell.destroy\",\"name\":\"b\",\"grace_ms\":100}");
	reap(sleeper);
	expect_ok(&in, "{\"op\":\"cell.destroy\",\"name\":\"a\",\"grace_ms\":100}");

	check_create_reclaims(&in);
	inst_kill(&in, SIGTERM);
	printf("ok\n");
	return TEST_PASS;
}
