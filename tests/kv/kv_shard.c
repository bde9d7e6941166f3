/* kv_shard.c - keys spread over shards, land on their owners, and a get
 * across shards answers in key order with one trip per shard.
 */
#include "harness.h"
#include "kvtest.h"

/* kv_shard_of is a function of the key alone, in range, and even. */
static void check_spread(void)
{
	enum { KEYS = 80000, SHARDS = 8 };
	unsigned count[SHARDS] = { 0 };
	char key[32];

	CHECK_EQ(kv_shard_of("foo", 3, 1), 0);
	CHECK_EQ(kv_shard_of("foo", 3, 7), kv_shard_of("foo", 3, 7));
	for (int i = 0; i < KEYS; i++) {
		int n = snprintf(key, sizeof(key), "user:%d", i);
		unsigned sh = kv_shard_of(key, (size_t)n, SHARDS);

		CHECK(sh < SHARDS);
		count[sh]++;
	}
	for (int sh = 0; sh < SHARDS; sh++) {
		CHECK(count[sh] > KEYS / SHARDS * 9 / 10);
		CHECK(count[sh] < KEYS / SHARDS * 11 / 10);
	}
	for (unsigned n = 1; n <= 64; n++)
		CHECK(kv_shard_of("x", 1, n) < n);
}

/* Each key is stored by, and only by, the shard kv_shard_of names, and a
 * one-key command runs on that shard alone. */
static void check_owners(void)
{
	struct kvt_config cfg = { .nshards = 5 };
	unsigned expect[5] = { 0 };
	struct kvt t;
	char key[32];

	kvt_init(&t, &cfg);
	for (int i = 0; i < 2000; i++) {
		int n = snprintf(key, sizeof(key), "k%d", i);
		unsigned sh = kv_shard_of(key, (size_t)n, cfg.nshards);
		uint64_t before = t.runs[sh];

		KVT_EXPECTF(&t, "STORED\r\n", "set %s 0 0 1\r\nx\r\n", key);
		KVT_EXPECTF(&t, "VALUE k0 0 1\r\nx\r\nEND\r\n", "get k%d\r\n",
			    0);
		if (sh == kv_shard_of("k0", 2, cfg.nshards))
			before++;
		CHECK_EQ(t.runs[sh], before + 1);
		expect[sh]++;
	}
	for (unsigned sh = 0; sh < cfg.nshards; sh++) {
		struct kv_store_stats st;

		kv_store_get_stats(t.st[sh], &st);
		CHECK_EQ(st.curr_items, expect[sh]);
	}
	kvt_fini(&t);
}

/* A multi-get over N shards: values in the order asked (repeats and
 * misses included), one run() per shard involved. */
static void check_multiget(unsigned nshards)
{
	struct kvt_config cfg = { .nshards = nshards };
	struct kvt t;
	char req[4096], want[16384];
	size_t rlen, wlen;
	uint64_t runs_before = 0, runs_after = 0;

	kvt_init(&t, &cfg);
	for (int i = 0; i < 100; i += 2)
		kvt_cmdf(&t, "set k%d %d 0 %d\r\nvalue-%d\r\n", i, i,
			 6 + snprintf(NULL, 0, "%d", i), i);
	rlen = (size_t)sprintf(req, "get");
	wlen = 0;
	for (int j = 0; j < 150; j++) {
		int i = (j * 37) % 100;

		rlen += (size_t)sprintf(req + rlen, " k%d", i);
		if (i % 2 == 0)
			wlen += (size_t)sprintf(want + wlen,
						"VALUE k%d %d %d\r\nvalue-%d\r\n",
						i, i,
						6 + snprintf(NULL, 0, "%d", i),
						i);
	}
	rlen += (size_t)sprintf(req + rlen, "\r\n");
	wlen += (size_t)sprintf(want + wlen, "END\r\n");
	for (unsigned sh = 0; sh < nshards; sh++)
		runs_before += t.runs[sh];
	kvt_feed(&t, req, rlen);
	kvt_expect_eq(__FILE__, __LINE__, "multi-get", t.out.p,
		      kvt_out_len(&t), want, wlen);
	for (unsigned sh = 0; sh < nshards; sh++)
		runs_after += t.runs[sh];
	CHECK(runs_after - runs_before <= nshards);
	/* the same answer again: reused scratch buffers start empty */
	kvt_feed(&t, req, rlen);
	kvt_expect_eq(__FILE__, __LINE__, "multi-get again", t.out.p,
		      kvt_out_len(&t), want, wlen);
	KVT_EXPECT(&t, "get nope1 nope2 nope3\r\n", "END\r\n");
	kvt_fini(&t);
}

int main(void)
{
	check_spread();
	check_owners();
	for (unsigned n = 1; n <= KVT_MAX_SHARDS; n++)
		check_multiget(n);
	return TEST_PASS;
}
