/* loadgen_proto.c - loadgen's memcached request formatting and its strict
 * reply reader (bench/loadgen/mcproto.h): every well-formed reply is read
 * whole whatever way it is cut into pieces, and every kind of garbage is
 * refused with a sentence. */
#include <errno.h>
#include <string.h>

#include "harness.h"
#include "mcproto.h"

static const struct mc_expect get_k1 = {
	.op = MC_GET, .key = "k001", .key_len = 4, .vmin = 1, .vmax = 100,
};
static const struct mc_expect set_req = { .op = MC_SET };
static const struct mc_expect version_req = { .op = MC_VERSION };

/* Feed the whole text at once. Returns the result; *st, *done out. */
static long feed_all(const struct mc_expect *ex, const char *text,
		     bool *done, enum mc_status *st, struct mc_reader *r)
{
	mc_reader_start(r);
	return mc_reader_feed(r, ex, text, strlen(text), done, st);
}

/* Feed text in pieces of `piece` bytes the way a connection does: bytes
 * not consumed (a partial line) are kept and fed again with the next
 * piece. Returns the status; fails the test on garbage or if the reply
 * does not complete exactly at the end of text. */
static enum mc_status feed_pieces(const struct mc_expect *ex,
				  const char *text, size_t piece)
{
	struct mc_reader r;
	char buf[4096];
	size_t have = 0, off = 0, len = strlen(text);
	enum mc_status st = MC_FAILED;
	bool done = false;

	mc_reader_start(&r);
	while (!done) {
		size_t take = len - off < piece ? len - off : piece;
		long n;

		CHECK(take > 0);	/* the reply must finish within text */
		memcpy(buf + have, text + off, take);
		have += take;
		off += take;
		n = mc_reader_feed(&r, ex, buf, have, &done, &st);
		CHECK(n >= 0);
		memmove(buf, buf + n, have - (size_t)n);
		have -= (size_t)n;
	}
	CHECK_EQ(have, 0);
	CHECK_EQ(off, len);
	return st;
}

static void test_format(void)
{
	char buf[MC_REQ_OVERHEAD + 16];
	size_t n;

	n = mc_format_get(buf, "k001", 4);
	CHECK_EQ(n, 10);
	CHECK(!memcmp(buf, "get k001\r\n", n));
	n = mc_format_set(buf, "k001", 4, "hello", 5);
	CHECK_EQ(n, strlen("set k001 0 0 5\r\nhello\r\n"));
	CHECK(!memcmp(buf, "set k001 0 0 5\r\nhello\r\n", n));
	n = mc_format_set(buf, "k9", 2, "", 0);
	CHECK(!memcmp(buf, "set k9 0 0 0\r\n\r\n", n));
	n = mc_format_version(buf);
	CHECK(!memcmp(buf, "version\r\n", n));
}

static void test_good_replies(void)
{
	static const char hit[] = "VALUE k001 0 5\r\nhello\r\nEND\r\n";
	static const char hit_cas[] = "VALUE k001 7 3 99\r\nabc\r\nEND\r\n";
	/* A value holding CRLF and "END" is data, not protocol. */
	static const char tricky[] = "VALUE k001 0 7\r\nEND\r\n\r\n\r\nEND\r\n";

	for (size_t piece = 1; piece <= sizeof(hit); piece++) {
		CHECK_EQ(feed_pieces(&get_k1, hit, piece), MC_HIT);
		CHECK_EQ(feed_pieces(&get_k1, hit_cas, piece), MC_HIT);
		CHECK_EQ(feed_pieces(&get_k1, tricky, piece), MC_HIT);
		CHECK_EQ(feed_pieces(&get_k1, "END\r\n", piece), MC_MISS);
		CHECK_EQ(feed_pieces(&set_req, "STORED\r\n", piece),
			 MC_STORED);
		CHECK_EQ(feed_pieces(&set_req, "NOT_STORED\r\n", piece),
			 MC_NOT_STORED);
		CHECK_EQ(feed_pieces(&version_req, "VERSION 1.6.18\r\n", piece),
			 MC_VERSION_OK);
	}
}

static void test_error_lines(void)
{
	struct mc_reader r;
	enum mc_status st;
	bool done;
	const char *text = "SERVER_ERROR out of memory storing object\r\n";

	CHECK_EQ(feed_all(&set_req, text, &done, &st, &r), strlen(text));
	CHECK(done);
	CHECK_EQ(st, MC_FAILED);
	CHECK(strstr(r.why, "out of memory"));
	CHECK_EQ(feed_all(&get_k1, "ERROR\r\n", &done, &st, &r), 7);
	CHECK(done && st == MC_FAILED);
	CHECK_EQ(feed_all(&get_k1, "CLIENT_ERROR bad data chunk\r\n", &done,
			  &st, &r), 29);
	CHECK(done && st == MC_FAILED);
	/* A server that answers "version" with an error is no server of
	 * ours: garbage. */
	CHECK_EQ(feed_all(&version_req, "ERROR\r\n", &done, &st, &r), -EPROTO);
}

/* Two replies back to back: only the first one's bytes are consumed. */
static void test_back_to_back(void)
{
	static const char two[] = "END\r\nVALUE k001 0 1\r\nx\r\nEND\r\n";
	struct mc_reader r;
	enum mc_status st;
	bool done;
	long n = feed_all(&get_k1, two, &done, &st, &r);

	CHECK_EQ(n, 5);
	CHECK(done && st == MC_MISS);
	mc_reader_start(&r);
	n = mc_reader_feed(&r, &get_k1, two + 5, strlen(two) - 5, &done, &st);
	CHECK_EQ(n, (long)strlen(two) - 5);
	CHECK(done && st == MC_HIT);
}

static void expect_garbage(const struct mc_expect *ex, const char *text,
			   const char *why_part)
{
	struct mc_reader r;
	enum mc_status st;
	bool done;

	if (feed_all(ex, text, &done, &st, &r) != -EPROTO) {
		fprintf(stderr, "FAIL: accepted as a reply: \"%s\"\n", text);
		exit(TEST_FAIL);
	}
	if (!strstr(r.why, why_part)) {
		fprintf(stderr, "FAIL: for \"%s\": why is \"%s\", wanted "
			"\"%s\" in it\n", text, r.why, why_part);
		exit(TEST_FAIL);
	}
}

static void test_garbage(void)
{
	char longline[MC_LINE_MAX + 10];

	expect_garbage(&get_k1, "VALUE k002 0 5\r\nhello\r\nEND\r\n",
		       "another key");
	expect_garbage(&get_k1, "VALUE k0011 0 5\r\nhello\r\nEND\r\n",
		       "another key");
	expect_garbage(&get_k1, "VALUE k001 0 500\r\n", "size never set");
	expect_garbage(&get_k1, "VALUE k001 0 0\r\n\r\nEND\r\n",
		       "size never set");
	expect_garbage(&get_k1, "VALUE k001 x 5\r\n", "bad flags");
	expect_garbage(&get_k1, "VALUE k001 0 5x\r\n", "bad length");
	expect_garbage(&get_k1, "VALUE k001 0 5 1 2\r\n", "bad VALUE line");
	expect_garbage(&get_k1, "VALUE k001 0 5\r\nhello!\r\nEND\r\n",
		       "longer than announced");
	expect_garbage(&get_k1,
		       "VALUE k001 0 1\r\na\r\nVALUE k001 0 1\r\nb\r\nEND\r\n",
		       "second VALUE");
	expect_garbage(&get_k1, "STORED\r\n", "unexpected reply");
	expect_garbage(&set_req, "END\r\n", "unexpected reply");
	expect_garbage(&set_req, "STORED\n", "CRLF");
	expect_garbage(&set_req, "\n", "CRLF");
	expect_garbage(&version_req, "HTTP/1.1 400 Bad Request\r\n",
		       "unexpected reply to a version");
	expect_garbage(&set_req, "STO\x01RED\r\n", "STO?RED");
	memset(longline, 'x', sizeof(longline) - 1);
	longline[sizeof(longline) - 1] = '\0';
	expect_garbage(&set_req, longline, "too long");
}

int main(void)
{
	test_format();
	test_good_replies();
	test_error_lines();
	test_back_to_back();
	test_garbage();
	printf("loadgen_proto: ok\n");
	return TEST_PASS;
}
