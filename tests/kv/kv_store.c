/* kv_store.c - what a shard keeps: values, CAS, counters, expiry against a
 * settable clock, flush_all, the memory limit with LRU eviction, and a
 * hash table that grows.
 */
#include "harness.h"
#include "kvtest.h"

#define T0 KVT_CLOCK_START
#define NO_MEMORY "SERVER_ERROR out of memory storing object\r\n"

static void check_values(void)
{
	static const char binary[] = "set b 0 0 5\r\n\r\n\0x\n\r\n";
	struct kvt t;

	kvt_init(&t, NULL);
	KVT_EXPECT(&t, "set a 5 0 3\r\nabc\r\nget a\r\n",
		   "STORED\r\nVALUE a 5 3\r\nabc\r\nEND\r\n");
	/* a value may hold CR, LF and NUL */
	kvt_feed(&t, binary, sizeof(binary) - 1);
	kvt_expect_eq(__FILE__, __LINE__, "binary set", t.out.p,
		      kvt_out_len(&t), "STORED\r\n", 8);
	kvt_cmd(&t, "get b\r\n");
	kvt_expect_eq(__FILE__, __LINE__, "binary value", t.out.p,
		      kvt_out_len(&t), "VALUE b 0 5\r\n\r\n\0x\n\r\nEND\r\n",
		      25);
	KVT_EXPECT(&t, "add a 0 0 1\r\nx\r\nadd c 0 0 1\r\nx\r\n",
		   "NOT_STORED\r\nSTORED\r\n");
	KVT_EXPECT(&t, "replace z 0 0 1\r\nx\r\nreplace c 7 0 1\r\ny\r\n",
		   "NOT_STORED\r\nSTORED\r\n");
	/* append and prepend keep the flags (and expiry) they found */
	KVT_EXPECT(&t, "append c 9 0 2\r\nzz\r\nprepend c 9 0 2\r\naa\r\n"
		   "get c\r\n",
		   "STORED\r\nSTORED\r\nVALUE c 7 5\r\naayzz\r\nEND\r\n");
	KVT_EXPECT(&t, "append z 0 0 1\r\nx\r\nprepend z 0 0 1\r\nx\r\n",
		   "NOT_STORED\r\nNOT_STORED\r\n");
	KVT_EXPECT(&t, "delete c\r\ndelete c\r\nget c\r\n",
		   "DELETED\r\nNOT_FOUND\r\nEND\r\n");
	kvt_fini(&t);
}

/* Every store gets a new unique; cas stores only over the same unique. */
static void check_cas(void)
{
	struct kvt_config cfg = { .nshards = 4 };
	struct kvt t;
	unsigned long long cas, seen[400];

	kvt_init(&t, &cfg);
	for (int i = 0; i < 400; i++) {
		kvt_cmdf(&t, "set k%d 0 0 1\r\nx\r\n", i % 100);
		CHECK(sscanf(kvt_cmdf(&t, "gets k%d\r\n", i % 100),
			     "VALUE k%*d 0 1 %llu", &seen[i]) == 1);
		for (int j = 0; j < i; j++)
			CHECK(seen[j] != seen[i]);
	}
	CHECK(sscanf(kvt_cmd(&t, "gets k1\r\n"), "VALUE k1 0 1 %llu",
		     &cas) == 1);
	KVT_EXPECTF(&t, "EXISTS\r\n", "cas k1 0 0 1 %llu\r\ny\r\n", cas + 1);
	KVT_EXPECTF(&t, "STORED\r\n", "cas k1 0 0 1 %llu\r\ny\r\n", cas);
	KVT_EXPECTF(&t, "EXISTS\r\n", "cas k1 0 0 1 %llu\r\nz\r\n", cas);
	KVT_EXPECT(&t, "cas nope 0 0 1 1\r\nz\r\n", "NOT_FOUND\r\n");
	KVT_EXPECT(&t, "get k1\r\n", "VALUE k1 0 1\r\ny\r\nEND\r\n");
	/* incr, append and touch-free paths change the unique too */
	kvt_cmd(&t, "set n 0 0 1\r\n1\r\n");
	CHECK(sscanf(kvt_cmd(&t, "gets n\r\n"), "VALUE n 0 1 %llu",
		     &cas) == 1);
	kvt_cmd(&t, "incr n 1\r\n");
	KVT_EXPECTF(&t, "EXISTS\r\n", "cas n 0 0 1 %llu\r\n5\r\n", cas);
	kvt_fini(&t);

	cfg.no_cas = 1;
	kvt_init(&t, &cfg);
	KVT_EXPECT(&t, "set a 0 0 1\r\nx\r\ngets a\r\n",
		   "STORED\r\nVALUE a 0 1 0\r\nx\r\nEND\r\n");
	KVT_EXPECT(&t, "stats settings\r\n",
		   "STAT maxbytes 268435456\r\nSTAT evictions on\r\n"
		   "STAT cas_enabled no\r\nSTAT item_size_max 1048576\r\n"
		   "END\r\n");
	kvt_fini(&t);
}

static void check_incr_decr(void)
{
	struct kvt t;

	kvt_init(&t, NULL);
	KVT_EXPECT(&t, "set n 0 0 2\r\n10\r\nincr n 5\r\ndecr n 100\r\n",
		   "STORED\r\n15\r\n0\r\n");
	/* a shorter result is padded with spaces to the old length */
	KVT_EXPECT(&t, "get n\r\n", "VALUE n 0 2\r\n0 \r\nEND\r\n");
	/* a longer one makes a new item */
	KVT_EXPECT(&t, "incr n 12345\r\nget n\r\n",
		   "12345\r\nVALUE n 0 5\r\n12345\r\nEND\r\n");
	/* 64-bit: incr wraps, decr stops at 0 */
	KVT_EXPECT(&t, "set n 0 0 20\r\n18446744073709551615\r\nincr n 1\r\n",
		   "STORED\r\n0\r\n");
	KVT_EXPECT(&t, "set n 0 0 20\r\n18446744073709551615\r\n"
		   "decr n 18446744073709551615\r\n", "STORED\r\n0\r\n");
	KVT_EXPECT(&t, "incr n 18446744073709551615\r\n",
		   "18446744073709551615\r\n");
	KVT_EXPECT(&t, "incr n 18446744073709551616\r\nincr n -1\r\n",
		   "CLIENT_ERROR invalid numeric delta argument\r\n"
		   "CLIENT_ERROR invalid numeric delta argument\r\n");
	KVT_EXPECT(&t, "set s 0 0 2\r\nab\r\nincr s 1\r\nincr none 1\r\n",
		   "STORED\r\nCLIENT_ERROR cannot increment or decrement "
		   "non-numeric value\r\nNOT_FOUND\r\n");
	kvt_fini(&t);
}

static void check_expiry(void)
{
	struct kvt t;

	kvt_init(&t, NULL);
	/* relative: live for exactly 10 s */
	kvt_cmd(&t, "set r 0 10 1\r\nx\r\n");
	t.now = T0 + 9;
	KVT_EXPECT(&t, "get r\r\n", "VALUE r 0 1\r\nx\r\nEND\r\n");
	t.now = T0 + 10;
	KVT_EXPECT(&t, "get r\r\n", "END\r\n");
	/* 30 days is still relative, one second more is a unix time */
	t.now = T0;
	kvt_cmd(&t, "set d 0 2592000 1\r\nx\r\nset e 0 2592001 1\r\nx\r\n");
	KVT_EXPECT(&t, "get d e\r\n", "VALUE d 0 1\r\nx\r\nEND\r\n");
	t.now = T0 + 2592000;
	KVT_EXPECT(&t, "get d\r\n", "END\r\n");
	/* absolute */
	t.now = T0;
	KVT_EXPECTF(&t, "STORED\r\n", "set a 0 %u 1\r\nx\r\n", T0 + 5);
	KVT_EXPECTF(&t, "STORED\r\n", "set p 0 %u 1\r\nx\r\n", T0 - 5);
	t.now = T0 + 4;
	KVT_EXPECT(&t, "get a p\r\n", "VALUE a 0 1\r\nx\r\nEND\r\n");
	t.now = T0 + 5;
	KVT_EXPECT(&t, "get a\r\n", "END\r\n");
	/* negative: expired at once; 0: never */
	KVT_EXPECT(&t, "set n 0 -1 1\r\nx\r\nget n\r\n", "STORED\r\nEND\r\n");
	kvt_cmd(&t, "set z 0 0 1\r\nx\r\n");
	t.now += 20 * 365 * 86400u;
	KVT_EXPECT(&t, "get z\r\n", "VALUE z 0 1\r\nx\r\nEND\r\n");
	/* touch and gat move the expiry; expired keys cannot be touched */
	kvt_cmd(&t, "set t 0 10 1\r\nx\r\nset g 0 10 1\r\ny\r\n");
	KVT_EXPECT(&t, "touch t 100\r\n", "TOUCHED\r\n");
	KVT_EXPECT(&t, "gat 100 g\r\n", "VALUE g 0 1\r\ny\r\nEND\r\n");
	t.now += 50;
	KVT_EXPECT(&t, "get t g\r\n",
		   "VALUE t 0 1\r\nx\r\nVALUE g 0 1\r\ny\r\nEND\r\n");
	KVT_EXPECT(&t, "touch t -1\r\nget t\r\ntouch t 10\r\n",
		   "TOUCHED\r\nEND\r\nNOT_FOUND\r\n");
	/* expired items answer NOT_FOUND / NOT_STORED like absent ones */
	kvt_cmd(&t, "set x 0 1 1\r\n5\r\n");
	t.now += 1;
	KVT_EXPECT(&t, "incr x 1\r\nreplace x 0 0 1\r\n1\r\nadd x 0 0 1\r\n"
		   "2\r\ndelete y\r\n",
		   "NOT_FOUND\r\nNOT_STORED\r\nSTORED\r\nNOT_FOUND\r\n");
	kvt_fini(&t);
}

static void check_flush(void)
{
	struct kvt_config cfg = { .nshards = 3 };
	struct kvt t;

	kvt_init(&t, &cfg);
	for (int i = 0; i < 30; i++)
		kvt_cmdf(&t, "set k%d 0 0 1\r\nx\r\n", i);
	KVT_EXPECT(&t, "flush_all\r\nget k0 k1 k2 k3\r\n", "OK\r\nEND\r\n");
	CHECK_EQ(kvt_stats(&t).curr_items, 0);

	/* delayed: everything stored before the deadline goes at it */
	kvt_cmd(&t, "set a 0 0 1\r\nx\r\n");
	KVT_EXPECT(&t, "flush_all 10\r\n", "OK\r\n");
	t.now = T0 + 9;
	kvt_cmd(&t, "set b 0 0 1\r\ny\r\n");
	KVT_EXPECT(&t, "get a b\r\n",
		   "VALUE a 0 1\r\nx\r\nVALUE b 0 1\r\ny\r\nEND\r\n");
	t.now = T0 + 10;
	KVT_EXPECT(&t, "get a b\r\n", "END\r\n");
	kvt_cmd(&t, "set c 0 0 1\r\nz\r\n");
	t.now = T0 + 100;
	KVT_EXPECT(&t, "get c\r\n", "VALUE c 0 1\r\nz\r\nEND\r\n");

	/* a later flush_all replaces a pending one */
	KVT_EXPECT(&t, "flush_all 10 noreply\r\nflush_all 0\r\n", "OK\r\n");
	kvt_cmd(&t, "set d 0 0 1\r\nx\r\n");
	t.now = T0 + 200;
	KVT_EXPECT(&t, "get d\r\n", "VALUE d 0 1\r\nx\r\nEND\r\n");
	/* an absolute deadline */
	KVT_EXPECTF(&t, "OK\r\n", "flush_all %u\r\n", T0 + 300);
	t.now = T0 + 299;
	KVT_EXPECT(&t, "get d\r\n", "VALUE d 0 1\r\nx\r\nEND\r\n");
	t.now = T0 + 300;
	KVT_EXPECT(&t, "get d\r\n", "END\r\n");
	CHECK_EQ(kvt_stats(&t).cmd_flush, 5);
	kvt_fini(&t);
}

static unsigned long long stat_of(struct kvt *t, const char *name)
{
	const char *out = kvt_cmd(t, "stats\r\n");
	char key[64];
	const char *p;
	unsigned long long v;

	snprintf(key, sizeof(key), "STAT %s ", name);
	p = strstr(out, key);
	CHECK(p);
	CHECK(sscanf(p + strlen(key), "%llu", &v) == 1);
	return v;
}

static void check_counters(void)
{
	struct kvt_config cfg = { .nshards = 2 };
	struct kvt t;
	const char *out;

	kvt_init(&t, &cfg);
	kvt_cmd(&t, "set a 0 0 1\r\n1\r\nset b 0 0 1\r\n2\r\n");
	kvt_cmd(&t, "get a b c\r\nincr a 1\r\ndecr q 1\r\ndelete b\r\n");
	kvt_cmd(&t, "touch a 0\r\ntouch q 0\r\ncas a 0 0 1 999\r\nx\r\n");
	out = kvt_cmd(&t, "stats\r\n");
	CHECK(strncmp(out, "STAT pid 1\r\n", 12) == 0);
	CHECK(strcmp(out + kvt_out_len(&t) - 5, "END\r\n") == 0);
	CHECK_EQ(stat_of(&t, "cmd_get"), 3);
	CHECK_EQ(stat_of(&t, "get_hits"), 2);
	CHECK_EQ(stat_of(&t, "get_misses"), 1);
	CHECK_EQ(stat_of(&t, "cmd_set"), 3);
	CHECK_EQ(stat_of(&t, "incr_hits"), 1);
	CHECK_EQ(stat_of(&t, "decr_misses"), 1);
	CHECK_EQ(stat_of(&t, "delete_hits"), 1);
	CHECK_EQ(stat_of(&t, "touch_hits"), 1);
	CHECK_EQ(stat_of(&t, "touch_misses"), 1);
	CHECK_EQ(stat_of(&t, "cas_badval"), 1);
	CHECK_EQ(stat_of(&t, "curr_items"), 1);
	CHECK_EQ(stat_of(&t, "total_items"), 2); /* incr wrote in place */
	CHECK_EQ(stat_of(&t, "limit_maxbytes"), 2 * (64u << 20));
	KVT_EXPECT(&t, "stats reset\r\n", "RESET\r\n");
	CHECK_EQ(stat_of(&t, "cmd_get"), 0);
	CHECK_EQ(stat_of(&t, "curr_items"), 1);
	kvt_fini(&t);
}

/* Fill 10x the limit: bytes stay within it, the newest keys and a key
 * read all along survive, the oldest are evicted. */
static void check_eviction(void)
{
	struct kvt_config cfg = { .nshards = 2, .mem_limit = 64 * 1024 };
	struct kvt t;
	char val[101];
	int n = (int)(10 * 2 * cfg.mem_limit / 160);

	memset(val, 'v', 100);
	val[100] = '\0';
	kvt_init(&t, &cfg);
	kvt_cmd(&t, "set hot 0 0 1\r\nh\r\n");
	for (int i = 0; i < n; i++) {
		KVT_EXPECTF(&t, "STORED\r\n", "set key%d 0 0 100\r\n%s\r\n", i,
			    val);
		if (i % 50 == 0)
			KVT_EXPECT(&t, "get hot\r\n",
				   "VALUE hot 0 1\r\nh\r\nEND\r\n");
	}
	for (unsigned i = 0; i < cfg.nshards; i++) {
		struct kv_store_stats st;

		kv_store_get_stats(t.st[i], &st);
		CHECK(st.bytes <= cfg.mem_limit);
		CHECK(st.bytes > cfg.mem_limit / 2);
		CHECK(st.evictions > 0);
	}
	for (int i = n - 100; i < n; i++)
		CHECK(strncmp(kvt_cmdf(&t, "get key%d\r\n", i), "VALUE", 5) == 0);
	KVT_EXPECT(&t, "get key0 key1 key2\r\n", "END\r\n");
	CHECK(kvt_stats(&t).evictions + kvt_stats(&t).curr_items >=
	      (uint64_t)n);

	/* an item bigger than the whole shard cannot be stored */
	kvt_fini(&t);
	cfg.nshards = 1;
	cfg.mem_limit = 1000;
	kvt_init(&t, &cfg);
	KVT_EXPECTF(&t, NO_MEMORY, "set big 0 0 1000\r\n%1000d\r\n", 1);
	kvt_fini(&t);
}

/* -M: out of memory instead of evicting; expired items still make room. */
static void check_no_evict(void)
{
	struct kvt_config cfg = { .mem_limit = 16 * 1024, .no_evict = 1 };
	struct kvt t;
	int stored = 0;

	kvt_init(&t, &cfg);
	for (int i = 0; i < 1000; i++) {
		const char *got = kvt_cmdf(&t, "set k%d 0 100 100\r\n%100d\r\n",
					   i, i);

		if (strcmp(got, "STORED\r\n") != 0) {
			CHECK(strcmp(got, NO_MEMORY) == 0);
			break;
		}
		stored++;
	}
	CHECK(stored > 50 && stored < 1000);
	CHECK_EQ(kvt_stats(&t).evictions, 0);
	CHECK(strncmp(kvt_cmd(&t, "get k0\r\n"), "VALUE", 5) == 0);
	/* a failed set removes the value it would have replaced */
	KVT_EXPECT(&t, "set k0 0 0 1000\r\n", "");
	kvt_cmdf(&t, "%1000d\r\n", 0);
	CHECK(strcmp(t.out.p, NO_MEMORY) == 0);
	KVT_EXPECT(&t, "get k0\r\n", "END\r\n");
	/* expired items are reclaimed for new ones */
	t.now += 100;
	for (int i = 0; i < stored; i++)
		KVT_EXPECTF(&t, "STORED\r\n", "set n%d 0 0 100\r\n%100d\r\n", i,
			    i);
	CHECK(kvt_stats(&t).reclaimed > 0);
	kvt_fini(&t);
}

/* 200k keys in one shard: the table grows (incrementally) and every key
 * stays reachable while it does. */
static void check_growth(void)
{
	struct kvt t;
	int n = (int)test_scale(200000);

	kvt_init(&t, NULL);
	for (int i = 0; i < n; i++) {
		kvt_cmdf(&t, "set key:%d 0 0 1\r\nx\r\n", i);
		if (i % 997 == 0)
			KVT_EXPECTF(&t, "VALUE key:0 0 1\r\nx\r\nEND\r\n",
				    "get key:%d\r\n", 0);
	}
	for (int i = 0; i < n; i++)
		CHECK(strncmp(kvt_cmdf(&t, "get key:%d\r\n", i), "VALUE", 5) ==
		      0);
	CHECK_EQ(kvt_stats(&t).curr_items, n);
	CHECK(kvt_stats(&t).hash_buckets >= (uint64_t)n / 2);
	for (int i = 0; i < n; i += 2)
		kvt_cmdf(&t, "delete key:%d\r\n", i);
	CHECK_EQ(kvt_stats(&t).curr_items, n / 2);
	KVT_EXPECT(&t, "get key:1 key:2\r\n", "VALUE key:1 0 1\r\nx\r\nEND\r\n");
	kvt_fini(&t);
}

int main(void)
{
	check_values();
	check_cas();
	check_incr_decr();
	check_expiry();
	check_flush();
	check_counters();
	check_eviction();
	check_no_evict();
	check_growth();
	return TEST_PASS;
}
