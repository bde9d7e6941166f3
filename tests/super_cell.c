/* super_cell.c - cells with a process inside: create, resize (memory,
 * cores), an overlapping resize refused with nothing changed, destroy that
 * stops the process and leaves no cgroup behind. */
#include "super_common.c"

static long long read_ll(const char *dir, const char *cell, const char *file)
{
	char p[4400], b[64] = "";
	FILE *f;

	snprintf(p, sizeof(p), "%s/%s/%s", dir, cell, file);
	f = fopen(p, "r");
	if (!f)
		return -1;
	if (!fgets(b, sizeof(b), f))
		b[0] = '\0';
	fclose(f);
	return atoll(b);
}

int main(int argc, char **argv)
{
	static struct inst in;
	char before[4096], after[4096], out[8192], cg[64];
	pid_t kid;
	int first;
	long long lim;
	const char *mem_root = NULL, *cpu_root = NULL;

	super_init(argc, argv, true);
	if (sysconf(_SC_NPROCESSORS_ONLN) < 2)
		test_skip("needs 2 online cpus");
	inst_init(&in, "cell", "0-1");
	inst_start(&in);
	need_cgroups(&in);
	if (!strcmp(enforcement(&in), "cgroup-v1")) {
		cpu_root = in.roots[0];
		mem_root = in.roots[1];
	} else {
		cpu_root = mem_root = in.roots[0];
	}

	/* a: cpu 1 with a process; b: a tiny cell on cpu 0, no process */
	{
		const char *a1[] = { "cell", "create", "a", "--cores", "1-1",
				     "--mem", "64M", NULL };
		const char *a2[] = { "cell", "create", "b", "--cpus", "0", NULL };

		CHECK_EQ(cli(&in, out, sizeof(out), a1), 0);
		CHECK_EQ(cli(&in, out, sizeof(out), a2), 0);
	}
	kid = spawn_in_cell(&in, "a");
	snprintf(cg, sizeof(cg), "/atoll-%s/a", in.name);
	CHECK(in_cgroup(kid, strcmp(enforcement(&in), "cgroup-v1") ? "" : "cpuset",
			cg));
	CHECK_EQ(affinity_count(kid, &first), 1);
	CHECK_EQ(first, 1);
	lim = read_ll(mem_root, "a", strcmp(enforcement(&in), "cgroup-v1") ?
			"memory.max" : "memory.limit_in_bytes");
	CHECK_EQ(lim, 64ll << 20);

	/* the CLI lists the cell with its process */
	{
		const char *ls[] = { "cell", "list", NULL };
		char pidtxt[32];

		CHECK_EQ(cli(&in, out, sizeof(out), ls), 0);
		snprintf(pidtxt, sizeof(pidtxt), "%d", (int)kid);
		CHECK(strstr(out, pidtxt) != NULL);
	}

	/* overlapping resizes are refused and change nothing */
	list_snapshot(&in, before, sizeof(before));
	expect_error(&in, "{\"op\":\"cell.resize\",\"name\":\"b\",\"cpus\":\"0-1\"}",
		     "busy");
	expect_error(&in, "{\"op\":\"cell.resize\",\"name\":\"a\",\"cores\":2}",
		     "no-cores");
	expect_error(&in, "{\"op\":\"cell.create\",\"name\":\"c\",\"cpus\":\"1\"}",
		     "busy");
	expect_error(&in, "{\"op\":\"cell.resize\",\"name\":\"b\",\"provision\":2}",
		     "admission");
	list_snapshot(&in, after, sizeof(after));
	CHECK(!strcmp(before, after));
	CHECK_EQ(affinity_count(kid, &first), 1);
	CHECK_EQ(first, 1);
	CHECK_EQ(read_ll(cpu_root, "b", "cpuset.cpus"), 0);

	/* resize memory on the fly */
	expect_ok(&in, "{\"op\":\"cell.resize\",\"name\":\"a\",\"mem\":134217728}");
	lim = read_ll(mem_root, "a", strcmp(enforcement(&in), "cgroup-v1") ?
			"memory.max" : "memory.limit_in_bytes");
	CHECK_EQ(lim, 128ll << 20);

	/* free cpu 0, grow a to two cores: the process follows */
	{
		const char *d[] = { "cell", "destroy", "b", NULL };

		CHECK_EQ(cli(&in, out, sizeof(out), d), 0);
	}
	CHECK(!path_exists(strcat(strcpy(out, cpu_root), "/b")));
	expect_ok(&in, "{\"op\":\"cell.resize\",\"name\":\"a\",\"cores\":2}");
	CHECK_EQ(affinity_count(kid, &first), 2);
	expect_ok(&in, "{\"op\":\"cell.resize\",\"name\":\"a\",\"cpus\":\"1\"}");
	CHECK_EQ(affinity_count(kid, &first), 1);
	CHECK_EQ(first, 1);
	/* a provision within the node is admitted and reported */
	expect_ok(&in, "{\"op\":\"cell.resize\",\"name\":\"a\",\"provision\":2}");
	expect_error(&in, "{\"op\":\"cell.create\",\"name\":\"c\",\"cores\":1}",
		     "no-cores");
	{
		const char *ls[] = { "cell", "list", "--json", NULL };

		CHECK_EQ(cli(&in, out, sizeof(out), ls), 0);
		CHECK(strstr(out, "\"provision\":2") != NULL);
	}

	/* destroy stops the process and leaves nothing */
	{
		const char *d[] = { "cell", "destroy", "a", NULL };

		CHECK_EQ(cli(&in, out, sizeof(out), d), 0);
	}
	reap(kid);
	snprintf(out, sizeof(out), "%s/a", cpu_root);
	CHECK(!path_exists(out));
	snprintf(out, sizeof(out), "%s/a", mem_root);
	CHECK(!path_exists(out));
	list_snapshot(&in, after, sizeof(after));
	CHECK_EQ(strlen(after), 0);

	/* a clean stop with no cells removes the instance roots too */
	inst_kill(&in, SIGTERM);
	for (int i = 0; i < in.nroots; i++)
		CHECK(!path_exists(in.roots[i]));
	printf("ok\n");
	return TEST_PASS;
}
