/* super_restart.c - kill -9 atolld while a cell runs a process, restart
 * it: the same cells, the process untouched (same pid, same cgroup, same
 * affinity), the journal consistent; a SIGTERM stop keeps cells too. */
#include "super_common.c"

static void read_journal(struct inst *in, char *buf, size_t cap)
{
	char p[400];
	FILE *f;
	size_t n;

	snprintf(p, sizeof(p), "%s/cells.json", in->state);
	f = fopen(p, "r");
	CHECK(f != NULL);
	n = fread(buf, 1, cap - 1, f);
	buf[n] = '\0';
	fclose(f);
}

int main(int argc, char **argv)
{
	static struct inst in;
	char before[4096], after[4096], jr[65536], cg[64], err[256], p[400];
	struct json_doc *d;
	pid_t kid;
	int first;
	const char *ctl;

	super_init(argc, argv, true);
	inst_init(&in, "restart", "1");
	inst_start(&in);
	need_cgroups(&in);
	ctl = strcmp(enforcement(&in), "cgroup-v1") ? "" : "cpuset";

	expect_ok(&in, "{\"op\":\"cell.create\",\"name\":\"kv\",\"cores\":1,\"mem\":67108864,\"class\":\"cg\",\"provision\":1}");
	kid = spawn_in_cell(&in, "kv");
	snprintf(cg, sizeof(cg), "/atoll-%s/kv", in.name);
	CHECK(in_cgroup(kid, ctl, cg));
	list_snapshot(&in, before, sizeof(before));

	inst_kill(&in, SIGKILL);
	/* the cell runs on without its supervisor */
	CHECK(kill(kid, 0) == 0);
	CHECK(in_cgroup(kid, ctl, cg));

	inst_start(&in);
	list_snapshot(&in, after, sizeof(after));
	CHECK(!strcmp(before, after));
	CHECK(kill(kid, 0) == 0);
	CHECK(in_cgroup(kid, ctl, cg));
	CHECK_EQ(affinity_count(kid, &first), 1);
	CHECK_EQ(first, 1);
	{
		struct json_doc *l = request(&in, "{\"op\":\"cell.list\"}");
		const struct json *c = json_get(json_root(l), "cells")->kids[0];
		const struct json *pids = json_get(c, "pids");

		CHECK_EQ(pids->len, 1);
		CHECK_EQ(pids->kids[0]->i, kid);
		json_free(l);
	}

	/* journal: valid JSON, this instance, the one cell */
	read_journal(&in, jr, sizeof(jr));
	d = json_parse(jr, strlen(jr), err, sizeof(err));
	CHECK(d != NULL);
	CHECK(!strcmp(json_get(json_root(d), "name")->s, in.name));
	CHECK_EQ(json_get(json_root(d), "cells")->len, 1);
	CHECK(!strcmp(json_get(json_get(json_root(d), "cells")->kids[0], "name")->s,
		      "kv"));
	json_free(d);
	snprintf(p, sizeof(p), "%s/cells.json.tmp", in.state);
	CHECK(!path_exists(p));

	/* a clean stop keeps the cell and its process as well */
	inst_kill(&in, SIGTERM);
	CHECK(kill(kid, 0) == 0);
	inst_start(&in);
	list_snapshot(&in, after, sizeof(after));
	CHECK(!strcmp(before, after));

	/* a second instance on the same state dir is refused */
	{
		struct inst twin = in;
		int st;
		pid_t pid = fork();

		CHECK(pid >= 0);
		if (pid == 0) {
			int fd = open("/dev/null", O_WRONLY);

			dup2(fd, 2);
			execl(g_atolld, "atolld", "--foreground", "--state-dir",
			      twin.state, "--cpus", "1", "--name", twin.name,
			      "--socket", "/tmp/atoll-never.sock", (char *)NULL);
			_exit(127);
		}
		CHECK(waitpid(pid, &st, 0) == pid);
		CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 1);
	}

	expect_ok(&in, "{\"op\":\"cell.destroy\",\"name\":\"kv\"}");
	reap(kid);
	read_journal(&in, jr, sizeof(jr));
	CHECK(strstr(jr, "\"cells\":[]") != NULL);
	inst_kill(&in, SIGTERM);
	for (int i = 0; i < in.nroots; i++)
		CHECK(!path_exists(in.roots[i]));
	printf("ok\n");
	return TEST_PASS;
}
