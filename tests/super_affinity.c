/* super_affinity.c - the weak mode (no cgroups): every reply says so, a
 * process run in a cell gets the cell's affinity and follows a resize,
 * destroy stops it, and the journal keeps the tracked process across a
 * restart. Needs no cgroup rights. */
#include "super_common.c"

int main(int argc, char **argv)
{
	static struct inst in;
	struct json_doc *d;
	const struct json *notes;
	pid_t kid;
	int first;
	bool weak_note = false;

	super_init(argc, argv, false);
	if (sysconf(_SC_NPROCESSORS_ONLN) < 2)
		test_skip("needs 2 online cpus");
	inst_init(&in, "aff", "0-1");
	in.extra = "--enforce=affinity";
	inst_start(&in);
	CHECK(!strcmp(enforcement(&in), "affinity"));
	CHECK_EQ(in.nroots, 0);

	d = request(&in, "{\"op\":\"cell.create\",\"name\":\"w\",\"cpus\":\"1\"}");
	CHECK(reply_ok(d));
	CHECK(json_get(json_root(d), "weak") &&
	      json_get(json_root(d), "weak")->b);
	notes = json_get(json_root(d), "notes");
	for (size_t i = 0; notes && i < notes->len; i++)
		if (strstr(notes->kids[i]->s, "enforcement is weak"))
			weak_note = true;
	CHECK(weak_note);
	json_free(d);
	/* errors say it too */
	d = request(&in, "{\"op\":\"cell.destroy\",\"name\":\"zz\"}");
	CHECK(!reply_ok(d) && json_get(json_root(d), "weak"));
	json_free(d);

	kid = spawn_in_cell(&in, "w");
	CHECK_EQ(affinity_count(kid, &first), 1);
	CHECK_EQ(first, 1);
	expect_ok(&in, "{\"op\":\"cell.resize\",\"name\":\"w\",\"cores\":2}");
	CHECK_EQ(affinity_count(kid, &first), 2);

	/* restart: the tracked process is still the cell's */
	inst_kill(&in, SIGKILL);
	inst_start(&in);
	expect_ok(&in, "{\"op\":\"cell.resize\",\"name\":\"w\",\"cpus\":\"1\"}");
	CHECK_EQ(affinity_count(kid, &first), 1);
	CHECK_EQ(first, 1);

	expect_ok(&in, "{\"op\":\"cell.destroy\",\"name\":\"w\",\"grace_ms\":100}");
	reap(kid);
	inst_kill(&in, SIGTERM);
	printf("ok\n");
	return TEST_PASS;
}
