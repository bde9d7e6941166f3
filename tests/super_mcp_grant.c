/* super_mcp_grant.c - an MCP registers with atolld, receives its
 * procinfo/procdata memfd, and its vcore count follows the cell: one core,
 * grown to two, shrunk back to one; the journal records the registration;
 * the MCP's exit deregisters it and a new MCP takes the cores; without
 * ATOLL_CELL the runtime does not register at all. Runs with
 * any enforcement (affinity only included). */
#include "super_mcp_common.c"

int main(int argc, char **argv)
{
	static struct inst in;
	struct mcp_kid k, k2;
	char path[400], text[65536];
	FILE *f;
	size_t n;

	mcp_init(argc, argv);
	inst_init(&in, "mcpg", "0-1");
	inst_start(&in);
	expect_ok(&in, "{\"op\":\"cell.create\",\"name\":\"m\",\"cpus\":\"1\"}");

	/* bad registrations change nothing */
	expect_error(&in, "{\"op\":\"mcp.register\",\"cell\":\"nope\"}",
		     PROTO_E_NOCELL);
	expect_error(&in, "{\"op\":\"mcp.register\",\"cell\":\"m\",\"min\":2}",
		     PROTO_E_ADMISSION);
	expect_error(&in, "{\"op\":\"mcp.register\",\"cell\":\"m\",\"min\":3,\"max\":2}",
		     PROTO_E_RANGE);
	expect_error(&in, "{\"op\":\"mcp.register\",\"cell\":\"m\",\"bogus\":1}",
		     PROTO_E_BADREQ);
	CHECK_EQ(mcp_allocated(&in, "m"), -1);

	/* without ATOLL_CELL the runtime stays standalone: no registration */
	mcp_spawn_opt(&in, "m", "busy", false, &k);
	EXPECT_LINE(&k, "vcores 1", 5000);
	sleep_ms(100);
	CHECK_EQ(mcp_allocated(&in, "m"), -1);
	mcp_reap(&k);

	mcp_spawn(&in, "m", "busy", &k);
	EXPECT_LINE(&k, "vcores 1", 5000);
	CHECK_EQ(mcp_allocated(&in, "m"), 1);
	snprintf(path, sizeof(path), "%s/cells.json", in.state);
	f = fopen(path, "r");
	CHECK(f != NULL);
	n = fread(text, 1, sizeof(text) - 1, f);
	text[n] = '\0';
	fclose(f);
	CHECK(strstr(text, "\"mcps\":[{\"pid\":") != NULL);

	/* grow: the second core becomes a second vcore */
	expect_ok(&in, "{\"op\":\"cell.resize\",\"name\":\"m\",\"cores\":2}");
	EXPECT_LINE(&k, "vcores 2", 5000);
	CHECK_EQ(mcp_allocated(&in, "m"), 2);

	/* shrink: the vcore on cpu 0 is revoked and gives its core back */
	expect_ok(&in, "{\"op\":\"cell.resize\",\"name\":\"m\",\"cpus\":\"1\"}");
	EXPECT_LINE(&k, "vcores 1", 5000);
	CHECK(mcp_wait_allocated(&in, "m", 1, 5000));

	/* grow again, then the MCP exits: deregistered, cores released */
	expect_ok(&in, "{\"op\":\"cell.resize\",\"name\":\"m\",\"cores\":2}");
	EXPECT_LINE(&k, "vcores 2", 5000);
	mcp_reap(&k);
	CHECK(mcp_wait_allocated(&in, "m", -1, 5000));

	/* a new MCP gets both cores at once */
	mcp_spawn(&in, "m", "busy", &k2);
	EXPECT_LINE(&k2, "vcores 2", 5000);
	mcp_reap(&k2);

	expect_ok(&in, "{\"op\":\"cell.destroy\",\"name\":\"m\",\"grace_ms\":100}");
	inst_kill(&in, SIGTERM);
	printf("ok\n");
	return TEST_PASS;
}
