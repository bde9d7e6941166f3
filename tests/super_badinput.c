/* super_badinput.c - bad requests to atolld and bad CLI arguments: each
 * gets a clear error with its code, and nothing changes. */
#include "super_common.c"

#include <sys/prctl.h>

int main(int argc, char **argv)
{
	static struct inst in;
	char before[4096], after[4096], out[8192], reply[4096];
	static char big[PROTO_LINE_MAX + 16];

	super_init(argc, argv, true);
	inst_init(&in, "bad", "1");
	inst_start(&in);
	need_cgroups(&in);
	expect_ok(&in, "{\"op\":\"cell.create\",\"name\":\"kv\",\"cores\":1,\"mem\":67108864}");
	list_snapshot(&in, before, sizeof(before));

	/* malformed JSON and malformed requests */
	expect_error(&in, "{\"op\":\"cell.create\",", "parse");
	expect_error(&in, "{\"op\":\"status\"} x", "parse");
	expect_error(&in, "{\"op\":\"status\",\"op\":\"status\"}", "parse");
	expect_error(&in, "{\"op\":\"st\\u0000\"}", "parse");
	expect_error(&in, "{\"op\":\"\xff\"}", "parse");
	expect_error(&in, "[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]", "parse");
	expect_error(&in, "[1,2]", "bad-request");
	expect_error(&in, "{\"op\":7}", "bad-request");
	expect_error(&in, "{\"op\":\"cell.explode\"}", "unknown-op");
	expect_error(&in, "{\"op\":\"status\",\"x\":1}", "bad-request");
	expect_error(&in, "{\"op\":\"cell.create\",\"name\":\"n\",\"cores\":1,\"color\":\"red\"}", "bad-request");
	expect_error(&in, "{\"op\":\"cell.create\",\"name\":\"../etc\",\"cores\":1}", "bad-request");
	expect_error(&in, "{\"op\":\"cell.create\",\"name\":\"\",\"cores\":1}", "bad-request");
	expect_error(&in, "{\"op\":\"cell.create\",\"cores\":1}", "bad-request");
	expect_error(&in, "{\"op\":\"cell.create\",\"name\":\"n\"}", "bad-request");
	expect_error(&in, "{\"op\":\"cell.create\",\"name\":\"n\",\"cores\":\"1\"}", "bad-request");
	/* unknown cell */
	expect_error(&in, "{\"op\":\"cell.resize\",\"name\":\"nope\",\"mem\":0}", "unknown-cell");
	expect_error(&in, "{\"op\":\"cell.destroy\",\"name\":\"nope\"}", "unknown-cell");
	expect_error(&in, "{\"op\":\"cell.attach\",\"name\":\"nope\",\"pid\":1}", "unknown-cell");
	/* negative or absurd sizes, too many cores */
	expect_error(&in, "{\"op\":\"cell.create\",\"name\":\"n\",\"cores\":-1}", "range");
	expect_error(&in, "{\"op\":\"cell.create\",\"name\":\"n\",\"cores\":0}", "range");
	expect_error(&in, "{\"op\":\"cell.create\",\"name\":\"n\",\"cores\":4096}", "range");
	expect_error(&in, "{\"op\":\"cell.create\",\"name\":\"n\",\"cores\":1e3}", "range");
	expect_error(&in, "{\"op\":\"cell.create\",\"name\":\"n\",\"cores\":99999999999999999999999}", "range");
	expect_error(&in, "{\"op\":\"cell.resize\",\"name\":\"kv\",\"mem\":-5}", "range");
	expect_error(&in, "{\"op\":\"cell.resize\",\"name\":\"kv\",\"mem\":1125899906842624}", "range");
	expect_error(&in, "{\"op\":\"cell.resize\",\"name\":\"kv\",\"mem\":100}", "range");
	expect_error(&in, "{\"op\":\"cell.resize\",\"name\":\"kv\",\"cpus\":\"0-1\"}", "range");
	expect_error(&in, "{\"op\":\"cell.resize\",\"name\":\"kv\",\"cpus\":\"1-0\"}", "bad-request");
	expect_error(&in, "{\"op\":\"cell.resize\",\"name\":\"kv\",\"mems\":\"7\"}", "range");
	expect_error(&in, "{\"op\":\"cell.resize\",\"name\":\"kv\",\"class\":\"fast\"}", "bad-request");
	expect_error(&in, "{\"op\":\"cell.resize\",\"name\":\"kv\",\"provision\":9}", "range");
	expect_error(&in, "{\"op\":\"cell.resize\",\"name\":\"kv\"}", "bad-request");
	expect_error(&in, "{\"op\":\"cell.create\",\"name\":\"kv\",\"cores\":1}", "exists");
	expect_error(&in, "{\"op\":\"cell.attach\",\"name\":\"kv\",\"pid\":0}", "range");
	expect_error(&in, "{\"op\":\"cell.attach\",\"name\":\"kv\",\"pid\":2147483647}", "no-process");
	expect_error(&in, "{\"op\":\"cell.destroy\",\"name\":\"kv\",\"grace_ms\":-1}", "range");

	/* a line over the limit: an error, then the connection closes */
	memset(big, ' ', sizeof(big));
	big[0] = '{';
	big[sizeof(big) - 1] = '\n';
	CHECK(raw_request(in.sock, big, sizeof(big), reply, sizeof(reply)) == 0);
	CHECK(strstr(reply, "\"too-long\"") != NULL);

	/* a non-root peer may look but not change */
	{
		int p[2], st;
		pid_t pid;

		CHECK_OK(pipe(p));
		pid = fork();
		CHECK(pid >= 0);
		if (pid == 0) {
			char r1[8192], r2[8192];
			const char *req = "{\"op\":\"cell.destroy\",\"name\":\"kv\"}\n";
			const char *st_req = "{\"op\":\"cell.list\"}\n";
			int ok;

			close(p[0]);
			if (setgid(65534) || setuid(65534))
				_exit(3);
			ok = raw_request(in.sock, req, strlen(req), r1, sizeof(r1)) == 0 &&
			     strstr(r1, "\"permission\"") &&
			     strstr(r1, "may not change cells") &&
			     raw_request(in.sock, st_req, strlen(st_req), r2,
					 sizeof(r2)) == 0 &&
			     strstr(r2, "\"ok\":true");
			if (write(p[1], r1, strlen(r1)) < 0)
				_exit(4);
			_exit(ok ? 0 : 1);
		}
		close(p[1]);
		{
			ssize_t n = read(p[0], out, sizeof(out) - 1);

			out[n > 0 ? n : 0] = '\0';
		}
		close(p[0]);
		CHECK(waitpid(pid, &st, 0) == pid);
		if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
			fprintf(stderr, "FAIL: non-root peer: status %d, reply %s\n",
				st, out);
			return TEST_FAIL;
		}
	}

	/* bad CLI arguments: exit 2 and no request sent */
	{
		const char *a1[] = { "cell", "create", "x", "--cores", "-3", NULL };
		const char *a2[] = { "cell", "create", "x", "--cores", "1", "--mem", "lots", NULL };
		const char *a3[] = { "cell", "frobnicate", NULL };
		const char *a4[] = { "run", "--cell", "kv", NULL };
		const char *a5[] = { "cell", "create", "x", "--class", "zz", "--cores", "1", NULL };
		const char *a6[] = { "cell", "resize", "nope", "--mem", "1G", NULL };
		const char *a7[] = { "--help", NULL };
		const char *a8[] = { "cell", "list", "--help", NULL };

		CHECK_EQ(cli(&in, NULL, 0, a1), 2);
		CHECK_EQ(cli(&in, NULL, 0, a2), 2);
		CHECK_EQ(cli(&in, NULL, 0, a3), 2);
		CHECK_EQ(cli(&in, NULL, 0, a4), 2);
		CHECK_EQ(cli(&in, NULL, 0, a5), 2);
		CHECK_EQ(cli(&in, NULL, 0, a6), 1);
		CHECK_EQ(cli(&in, out, sizeof(out), a7), 0);
		CHECK(strstr(out, "Exit status") != NULL);
		CHECK_EQ(cli(&in, out, sizeof(out), a8), 0);
	}
	/* atolld unreachable: exit 3 */
	{
		struct inst gone = in;
		const char *a[] = { "status", NULL };

		snprintf(gone.sock, sizeof(gone.sock), "%s/none", in.dir);
		CHECK_EQ(cli(&gone, NULL, 0, a), 3);
	}

	list_snapshot(&in, after, sizeof(after));
	CHECK(!strcmp(before, after));
	/* atolld survived all of it */
	expect_ok(&in, "{\"op\":\"status\"}");
	expect_ok(&in, "{\"op\":\"cell.destroy\",\"name\":\"kv\"}");
	printf("ok\n");
	return TEST_PASS;
}
