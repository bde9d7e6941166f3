/* kv_badinput.c - bad input gets memcached's error line or a close, never
 * a crash, and the connection (or the next one) goes on working.
 *
 * Oversized keys and values, values that arrive in pieces or never end,
 * lines that never end, truncated requests, and random bytes in random
 * pieces (run under ASan+UBSan in the sanitizer builds).
 */
#include "harness.h"
#include "kvtest.h"

#define BAD_FORMAT "CLIENT_ERROR bad command line format\r\n"
#define TOO_LARGE "SERVER_ERROR object too large for cache\r\n"

static void check_keys(void)
{
	static const char *const cmds[][2] = {	/* before, after the key */
		{ "get ", "\r\n" }, { "gets a ", "\r\n" },
		{ "gat 0 ", "\r\n" }, { "set ", " 0 0 1\r\n" },
		{ "cas ", " 0 0 1 1\r\n" }, { "delete ", "\r\n" },
		{ "incr ", " 1\r\n" }, { "touch ", " 1\r\n" },
	};
	char key[300];
	struct kvt t;

	memset(key, 'k', sizeof(key) - 1);
	key[sizeof(key) - 1] = '\0';
	kvt_init(&t, NULL);
	key[251] = '\0';
	for (size_t i = 0; i < ARRAY_SIZE(cmds); i++)
		KVT_EXPECTF(&t, BAD_FORMAT, "%s%s%s", cmds[i][0], key,
			    cmds[i][1]);
	key[250] = '\0';
	KVT_EXPECTF(&t, "STORED\r\n", "set %s 0 0 1\r\nx\r\n", key);
	KVT_EXPECTF(&t, "DELETED\r\n", "delete %s\r\n", key);
	kvt_fini(&t);
}

/* A value over -I is answered at once and its bytes skipped as they come,
 * however many; the old value of a set is gone, an add's is kept. */
static void check_large_values(void)
{
	struct kvt_config cfg = { .item_max = 4096 };
	size_t big = 3 * 1024 * 1024;
	char *junk = malloc(big);
	struct kvt t;

	CHECK(junk);
	memset(junk, 'j', big);
	kvt_init(&t, &cfg);
	kvt_cmd(&t, "set a 0 0 1\r\nx\r\nset b 0 0 1\r\ny\r\n");
	/* with memcached's 59 bytes of overhead and the key, 4036 fits */
	KVT_EXPECTF(&t, "STORED\r\n", "set c 0 0 4036\r\n%4036d\r\n", 1);
	KVT_EXPECTF(&t, TOO_LARGE, "set c 0 0 4037\r\n%4037d\r\n", 1);
	KVT_EXPECT(&t, "get c\r\n", "END\r\n");
	KVT_EXPECTF(&t, TOO_LARGE, "set a 0 0 %zu\r\n", big);
	for (size_t off = 0; off < big; off += 65536)
		CHECK(strcmp(kvt_feed(&t, junk + off, 65536), "") == 0);
	KVT_EXPECT(&t, "\r\nget a\r\n", "END\r\n");
	KVT_EXPECTF(&t, TOO_LARGE "VALUE b 0 1\r\ny\r\nEND\r\n",
		    "add b 0 0 5000\r\n%5000d\r\nget b\r\n", 0);
	KVT_EXPECTF(&t, "", "set b 0 0 5000 noreply\r\n%5000d\r\n", 0);
	/* the largest value the protocol allows is still just skipped */
	KVT_EXPECT(&t, "set z 0 0 2147483645\r\n", TOO_LARGE);
	CHECK(strcmp(kvt_feed(&t, junk, big), "") == 0);
	CHECK_EQ(kv_session_want(t.sess), 0);
	free(junk);
	kvt_fini(&t);
}

/* A value arriving a byte at a time is stored once; the session says how
 * much it waits for; a vanished client leaves nothing behind (leak check
 * under ASan). */
static void check_partial_values(void)
{
	struct kvt t;
	char req[128];
	int n = snprintf(req, sizeof(req), "set k 0 0 40\r\n%040d\r\n", 7);

	kvt_init(&t, NULL);
	for (int i = 0; i < n - 1; i++)
		CHECK(strcmp(kvt_feed(&t, req + i, 1), "") == 0);
	CHECK_EQ(kv_session_want(t.sess), (size_t)n);
	KVT_EXPECT(&t, "\n", "STORED\r\n");
	kvt_feed(&t, "set k 0 0 1000\r\nabc", 19);
	kvt_reset(&t);
	KVT_EXPECT(&t, "get k\r\n", "END\r\n");
	kvt_fini(&t);
}

static void check_lines(void)
{
	char *line = malloc(1100000);
	struct kvt t;

	CHECK(line);
	kvt_init(&t, NULL);
	/* 2048 bytes without a newline, not a get: closed */
	memset(line, 'x', 3000);
	KVT_EXPECT(&t, "version\r\n", "VERSION " KV_VERSION "\r\n");
	kvt_feed(&t, line, 2048);
	CHECK(!t.closed);
	kvt_feed(&t, line, 1);
	CHECK(t.closed);
	CHECK_EQ(t.out.len, 0);
	/* a get may be longer, up to the largest storage request */
	kvt_reset(&t);
	memcpy(line, "get ", 4);
	kvt_feed(&t, line, 3000);
	CHECK(!t.closed);
	CHECK(kv_session_want(t.sess) > 3000);
	memset(line, 'x', 1100000);
	memcpy(line, "get ", 4);
	kvt_feed(&t, line, 1100000);
	CHECK(t.closed);
	/* a web client is closed on */
	kvt_reset(&t);
	kvt_cmd(&t, "GET / HTTP/1.1\r\nHost: x\r\n\r\n");
	CHECK(t.closed && kvt_out_len(&t) == 0);
	free(line);
	kvt_fini(&t);
}

/* Every prefix of a set of valid requests, then more requests: no crash,
 * and the complete requests in the prefix are answered as whole. */
static void check_truncated(void)
{
	static const char reqs[] =
		"set a 1 0 3\r\nabc\r\ngets a b\r\nincr n 1\r\n"
		"cas a 0 0 1 1 noreply\r\nx\r\ntouch a 10\r\nflush_all 5\r\n"
		"delete a 0\r\nverbosity 1\r\nstats\r\nversion\r\nquit\r\n";
	struct kvt t;

	kvt_init(&t, NULL);
	for (size_t cut = 0; cut < sizeof(reqs) - 1; cut++) {
		kvt_reset(&t);
		kvt_feed(&t, reqs, cut);
		CHECK(!t.closed);
		kvt_feed(&t, "\r\nget a\r\n", 9);
	}
	kvt_fini(&t);
}

static uint64_t rng_state = 0x9e3779b97f4a7c15ull;

static uint64_t rnd(void)
{
	rng_state ^= rng_state << 13;
	rng_state ^= rng_state >> 7;
	rng_state ^= rng_state << 17;
	return rng_state;
}

/* Random bytes, and random mixes of protocol words and bytes, fed in random
 * pieces to 1..4 shards with small limits. */
static void check_garbage(void)
{
	static const char *const words[] = {
		"get ", "gets ", "set ", "add ", "cas ", "incr ", "decr ",
		"append ", "touch ", "gat ", "delete ", "flush_all ", "stats",
		"noreply", " ", "\r\n", "\n", "k", "key ", "0 ", "1 ", "-1 ",
		"99999999999 ", "4294967296 ", "18446744073709551616 ",
		"mn\r\n", "quit", "HTTP/1.1", "\r", "\0",
	};
	char buf[4096];
	int rounds = (int)test_scale(4000);

	for (int r = 0; r < rounds; r++) {
		struct kvt_config cfg = {
			.nshards = 1 + (unsigned)(rnd() % 4),
			.mem_limit = 2048 + rnd() % 8192,
			.item_max = 256 + rnd() % 2048,
			.no_evict = (int)(rnd() % 2),
		};
		size_t len = 0, want = rnd() % sizeof(buf);
		struct kvt t;

		while (len < want) {
			if (r % 3 == 0) {
				buf[len++] = (char)rnd();
				continue;
			}
			const char *w = words[rnd() % ARRAY_SIZE(words)];
			size_t wl = strlen(w) ? strlen(w) : 1;

			if (len + wl > sizeof(buf))
				break;
			memcpy(buf + len, w, wl);
			len += wl;
		}
		kvt_init(&t, &cfg);
		for (size_t off = 0; off < len && !t.closed;) {
			size_t n = 1 + rnd() % 64;

			n = n < len - off ? n : len - off;
			kvt_feed(&t, buf + off, n);
			off += n;
			t.now += (uint32_t)(rnd() % 3);
		}
		for (unsigned sh = 0; sh < cfg.nshards; sh++) {
			struct kv_store_stats st;

			kv_store_get_stats(t.st[sh], &st);
			CHECK(st.bytes <= cfg.mem_limit);
		}
		kvt_fini(&t);
	}
}

int main(void)
{
	check_keys();
	check_large_values();
	check_partial_values();
	check_lines();
	check_truncated();
	check_garbage();
	return TEST_PASS;
}
