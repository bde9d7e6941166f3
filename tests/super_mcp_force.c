/* super_mcp_force.c - a revocation the MCP ignores (a uthread that never
 * yields holds vcore 1) is forced at its deadline: atolld marks the slot
 * taken and moves the vcore's thread off the core, the runtime drops the
 * vcore (num_vcores falls to 1), the hog keeps running, and once it yields
 * it resumes on vcore 0. */
#include "super_mcp_common.c"

int main(int argc, char **argv)
{
	static struct inst in;
	struct mcp_kid k;
	char path[400], text[65536];
	FILE *f;
	size_t n;

	mcp_init(argc, argv);
	inst_init(&in, "mcpf", "0-1");
	in.extra = "--mcp-grace-ms=20";
	inst_start(&in);
	expect_ok(&in, "{\"op\":\"cell.create\",\"name\":\"h\",\"cpus\":\"0-1\"}");

	mcp_spawn(&in, "h", "hog", &k);
	EXPECT_LINE(&k, "hog on 1", 5000);
	CHECK_EQ(mcp_allocated(&in, "h"), 2);
	/* vcore 0 holds cpu 0 (the lowest): take cpu 1 away */
	expect_ok(&in, "{\"op\":\"cell.resize\",\"name\":\"h\",\"cpus\":\"0\"}");
	EXPECT_LINE(&k, "vcores 1", 5000);
	EXPECT_LINE(&k, "hog progressing", 5000);
	EXPECT_LINE(&k, "hog resumed on vcore 0", 5000);
	CHECK(mcp_wait_allocated(&in, "h", 1, 5000));
	snprintf(path, sizeof(path), "%s/atolld.log", in.dir);
	f = fopen(path, "r");
	CHECK(f != NULL);
	n = fread(text, 1, sizeof(text) - 1, f);
	text[n] = '\0';
	fclose(f);
	CHECK(strstr(text, "taken by force") != NULL);

	mcp_reap(&k);
	expect_ok(&in, "{\"op\":\"cell.destroy\",\"name\":\"h\",\"grace_ms\":100}");
	inst_kill(&in, SIGTERM);
	printf("ok\n");
	return TEST_PASS;
}
