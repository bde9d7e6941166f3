/* super_json.c - the strict JSON parser and writer, cpu lists and sizes
 * used by atolld and the CLI. */
#include "harness.h"

#include <errno.h>

#include "../src/super/cpulist.h"
#include "../src/super/json.h"

static void good(const char *s)
{
	char err[256];
	struct json_doc *d = json_parse(s, strlen(s), err, sizeof(err));

	if (!d) {
		fprintf(stderr, "FAIL: rejected %s: %s\n", s, err);
		exit(TEST_FAIL);
	}
	json_free(d);
}

static void bad(const char *s)
{
	char err[256];
	struct json_doc *d = json_parse(s, strlen(s), err, sizeof(err));

	if (d) {
		fprintf(stderr, "FAIL: accepted %s\n", s);
		exit(TEST_FAIL);
	}
	CHECK(strlen(err) > 5);
}

int main(void)
{
	char err[256], buf[256];
	struct json_doc *d;
	const struct json *r;
	struct json_w w;
	cpu_set_t set;
	uint64_t sz;

	good("{}");
	good(" [1, -0, 0.5, 1e10, -2E-3, true, false, null, \"\"] ");
	good("{\"a\":{\"b\":[{}]},\"c\":\"\\u00e9\\ud83d\\ude00\\n\"}");
	good("\"caf\xc3\xa9\"");
	bad("");
	bad("{");
	bad("{\"a\"}");
	bad("{\"a\":1,}");
	bad("[1,]");
	bad("[01]");
	bad("[1.]");
	bad("[.5]");
	bad("[+1]");
	bad("[1e]");
	bad("{'a':1}");
	bad("{\"a\":1}{}");
	bad("{\"a\":1,\"a\":2}");
	bad("\"\\x\"");
	bad("\"\\u12\"");
	bad("\"\\ud800\"");
	bad("\"\\u0000\"");
	bad("\"a\tb\"");
	bad("\"\xc0\xaf\"");      /* overlong */
	bad("\"\xed\xa0\x80\"");  /* surrogate in UTF-8 */
	bad("\"abc");
	bad("tru");
	bad("nul");
	bad("[[[[[[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]]]]]]");
	{
		static char many[JSON_NODES_MAX * 2 + 8];
		size_t n = 0;

		many[n++] = '[';
		for (int i = 0; i < JSON_NODES_MAX + 1; i++) {
			many[n++] = '0';
			many[n++] = ',';
		}
		many[n - 1] = ']';
		many[n] = '\0';
		bad(many);
	}

	{
		const char *t = "{\"i\":9223372036854775807,\"j\":9223372036854775808,"
				"\"k\":-12,\"s\":\"a\\\"b\"}";

		d = json_parse(t, strlen(t), err, sizeof(err));
	}
	CHECK(d != NULL);
	r = json_root(d);
	CHECK(json_get(r, "i")->is_int);
	CHECK(json_get(r, "i")->i == INT64_MAX);
	CHECK(!json_get(r, "j")->is_int);
	CHECK_EQ(json_get(r, "k")->i, -12);
	CHECK(!strcmp(json_get(r, "s")->s, "a\"b"));
	CHECK(json_get(r, "zz") == NULL);
	json_free(d);

	/* writer output parses back to the same values */
	jw_init(&w);
	jw_obj(&w);
	jw_kstr(&w, "s", "tab\there \"q\" \\ \x01");
	jw_kint(&w, "n", INT64_MIN);
	jw_key(&w, "a");
	jw_arr(&w);
	jw_bool(&w, true);
	jw_null(&w);
	jw_obj(&w);
	jw_obj_end(&w);
	jw_arr_end(&w);
	jw_obj_end(&w);
	CHECK(!w.oom);
	d = json_parse(w.buf, w.len, err, sizeof(err));
	CHECK(d != NULL);
	CHECK(!strcmp(json_get(json_root(d), "s")->s, "tab\there \"q\" \\ \x01"));
	CHECK(json_get(json_root(d), "n")->i == INT64_MIN);
	CHECK_EQ(json_get(json_root(d), "a")->len, 3);
	json_free(d);
	jw_free(&w);

	/* cpu lists */
	CHECK_OK(cpulist_parse("0-3,8,10-11\n", &set));
	CHECK_EQ(CPU_COUNT(&set), 7);
	CHECK_OK(cpulist_format(&set, buf, sizeof(buf)));
	CHECK(!strcmp(buf, "0-3,8,10-11"));
	CHECK_OK(cpulist_parse("", &set));
	CHECK_EQ(CPU_COUNT(&set), 0);
	CHECK_EQ(cpulist_parse("3-1", &set), -EINVAL);
	CHECK_EQ(cpulist_parse("1,,2", &set), -EINVAL);
	CHECK_EQ(cpulist_parse("1 ", &set), -EINVAL);
	CHECK_EQ(cpulist_parse("-1", &set), -EINVAL);
	CHECK_EQ(cpulist_parse("99999", &set), -ERANGE);

	/* sizes */
	CHECK_OK(size_parse("512M", &sz));
	CHECK(sz == 512ull << 20);
	CHECK_OK(size_parse("2GiB", &sz));
	CHECK(sz == 2ull << 30);
	CHECK_OK(size_parse("4096", &sz));
	CHECK(sz == 4096);
	CHECK_EQ(size_parse("-1M", &sz), -EINVAL);
	CHECK_EQ(size_parse("1X", &sz), -EINVAL);
	CHECK_EQ(size_parse("99999999999999999999", &sz), -ERANGE);
	CHECK_EQ(size_parse("99999999999T", &sz), -ERANGE);
	size_format(512ull << 20, buf, sizeof(buf));
	CHECK(!strcmp(buf, "512M"));
	printf("ok\n");
	return TEST_PASS;
}
