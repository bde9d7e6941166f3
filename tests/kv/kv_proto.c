/* kv_proto.c - the text protocol answers as memcached 1.6.18 does, however
 * the input is split.
 *
 * Every request in memcached_answers.h (recorded from memcached) and in
 * deviations[] below is fed to fresh stores: whole, split in two at every
 * byte, one byte at a time, and across 3 shards. Each way must give the
 * recorded answer (split across 3 shards: the answer whole on 3 shards,
 * which differs only in CAS uniques and stats sums). Then pipelining: a thousand mixed
 * requests in one read answer as they do one by one, and a multi-get
 * longer than a normal line works.
 */
#include "harness.h"
#include "kvtest.h"

struct proto_case {
	const char *in;
	const char *want;
	bool closes;
};

#include "memcached_answers.h"

/* Where atoll-kv answers differently on purpose (kv.h says why). */
static const struct proto_case deviations[] = {
	/* earlier answers survive a bad key in a get */
	{ "set a 0 0 1\r\nx\r\nget a "
	  "kkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkk"
	  "kkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkk"
	  "kkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkk"
	  "kkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkk a\r\n",
	  "STORED\r\nCLIENT_ERROR bad command line format\r\n" },
	/* no meta commands but mn: ERROR, as memcached before 1.5.19 */
	{ "mg foo v\r\n", "ERROR\r\n" },
	{ "ms foo 2\r\nhi\r\n", "ERROR\r\nERROR\r\n" },
	{ "md foo\r\nma foo\r\nme foo\r\nmn\r\n",
	  "ERROR\r\nERROR\r\nERROR\r\nMN\r\n" },
	{ "version\r\n", "VERSION " KV_VERSION "\r\n" },
	/* a too large value is refused at once, not after its bytes */
	{ "set a 0 0 2000000\r\n",
	  "SERVER_ERROR object too large for cache\r\n" },
	/* stats: the router's lines, then the engine's, END */
	{ "stats nonsense\r\nstats detail on\r\n", "ERROR\r\nERROR\r\n" },
	{ "stats reset\r\n", "RESET\r\n" },
	{ "stats items\r\nstats sizes\r\nstats conns\r\n",
	  "END\r\nSTAT sizes_status disabled\r\nEND\r\nEND\r\n" },
	{ "set a 0 0 1\r\nx\r\nstats items\r\nstats slabs\r\n",
	  "STORED\r\n"
	  "STAT items:1:number 1\r\n"
	  "STAT items:1:evicted 0\r\n"
	  "STAT items:1:outofmemory 0\r\n"
	  "STAT items:1:reclaimed 0\r\n"
	  "STAT items:1:expired_unfetched 0\r\n"
	  "STAT items:1:evicted_unfetched 0\r\n"
	  "END\r\n"
	  "STAT active_slabs 1\r\n"
	  "STAT total_malloced 60\r\n" /* 56-byte header + 4 */
	  "END\r\n" },
	{ "stats settings\r\n",
	  "STAT maxbytes 67108864\r\n"
	  "STAT evictions on\r\n"
	  "STAT cas_enabled yes\r\n"
	  "STAT item_size_max 1048576\r\n"
	  "END\r\n" },
};

static void expect_answer(const struct proto_case *c, const char *how,
			  const struct kvt *t, const char *got,
			  const char *want)
{
	if (t->closed != c->closes) {
		fprintf(stderr, "FAIL %s: closed %d, want %d for \"%s\"\n",
			how, t->closed, c->closes, c->in);
		exit(TEST_FAIL);
	}
	kvt_expect_eq(__FILE__, __LINE__, c->in, got, kvt_out_len(t), want,
		      strlen(want));
}

/* One case fed every way on t (1 shard) and t3 (3 shards). */
static void check_case(struct kvt *t, struct kvt *t3,
		       const struct proto_case *c)
{
	size_t len = strlen(c->in);
	const char *got;
	char *whole3;

	kvt_reset(t);
	expect_answer(c, "whole", t, kvt_feed(t, c->in, len), c->want);
	for (size_t cut = 1; cut < len; cut++) {
		kvt_reset(t);
		kvt_feed(t, c->in, cut);
		got = kvt_feed_more(t, c->in + cut, len - cut);
		expect_answer(c, "split", t, got, c->want);
	}
	kvt_reset(t);
	expect_answer(c, "bytes", t, kvt_feed_chunked(t, c->in, len, 1),
		      c->want);

	kvt_reset(t3);
	got = kvt_feed(t3, c->in, len);
	whole3 = malloc(kvt_out_len(t3) + 1);
	CHECK(whole3);
	memcpy(whole3, got, kvt_out_len(t3) + 1);
	/* CAS uniques and stats sums depend on the shard count */
	if (!strstr(c->in, "gets") && !strstr(c->in, "gats") &&
	    !strstr(c->in, "stats"))
		expect_answer(c, "3 shards", t3, whole3, c->want);
	kvt_reset(t3);
	got = kvt_feed_chunked(t3, c->in, len, 3);
	expect_answer(c, "3 shards split", t3, got, whole3);
	free(whole3);
}

/* A thousand requests in one read answer as the same requests one by one
 * (on 1 and on 4 shards). */
static void check_pipelining(unsigned nshards)
{
	struct kvt_config cfg = { .nshards = nshards };
	struct kvt one, all;
	char req[256];
	char *batch = NULL, *expect = NULL;
	size_t blen = 0, elen = 0;

	kvt_init(&one, &cfg);
	kvt_init(&all, &cfg);
	for (int i = 0; i < 1000; i++) {
		const char *got;
		int n;

		switch (i % 5) {
		case 0:
			n = snprintf(req, sizeof(req),
				     "set k%d %d 0 %d\r\nv%d\r\n", i, i,
				     1 + snprintf(NULL, 0, "%d", i), i);
			break;
		case 1:
			n = snprintf(req, sizeof(req), "get k%d k%d k%d\r\n",
				     i - 1, i - 6, i + 100);
			break;
		case 2:
			n = snprintf(req, sizeof(req), "incr k%d 5\r\n", i);
			break;
		case 3:
			n = snprintf(req, sizeof(req), "delete k%d\r\n", i - 3);
			break;
		default:
			n = snprintf(req, sizeof(req), "append k%d 0 0 2 "
				     "noreply\r\nxy\r\nbogus\r\n", i - 4);
			break;
		}
		got = kvt_cmd(&one, req);
		expect = realloc(expect, elen + kvt_out_len(&one));
		batch = realloc(batch, blen + (size_t)n);
		CHECK(expect && batch);
		memcpy(expect + elen, got, kvt_out_len(&one));
		elen += kvt_out_len(&one);
		memcpy(batch + blen, req, (size_t)n);
		blen += (size_t)n;
	}
	kvt_feed(&all, batch, blen);
	kvt_expect_eq(__FILE__, __LINE__, "1000 pipelined requests",
		      all.out.p, kvt_out_len(&all), expect, elen);
	free(batch);
	free(expect);
	kvt_fini(&one);
	kvt_fini(&all);
}

/* memcached leaves multi-get lines unbounded; ours go up to the largest
 * storage request. 1500 keys (4.5 KB) on 2 shards, then a repeated key. */
static void check_long_get(void)
{
	struct kvt_config cfg = { .nshards = 2 };
	struct kvt t;
	char *req = malloc(16 * 1500 + 8), *want = malloc(32 * 1500 + 8);
	size_t rlen = 0, wlen = 0;

	CHECK(req && want);
	kvt_init(&t, &cfg);
	rlen += (size_t)sprintf(req, "get");
	for (int i = 0; i < 1500; i++) {
		char set[64];

		snprintf(set, sizeof(set), "set key%d 0 0 1\r\n%d\r\n", i,
			 i % 10);
		CHECK(strcmp(kvt_cmd(&t, set), "STORED\r\n") == 0);
		rlen += (size_t)sprintf(req + rlen, " key%d", (i * 7) % 1500);
		wlen += (size_t)sprintf(want + wlen, "VALUE key%d 0 1\r\n%d\r\n",
					(i * 7) % 1500, ((i * 7) % 1500) % 10);
	}
	rlen += (size_t)sprintf(req + rlen, "\r\n");
	wlen += (size_t)sprintf(want + wlen, "END\r\n");
	kvt_feed_chunked(&t, req, rlen, 1000);
	kvt_expect_eq(__FILE__, __LINE__, "get of 1500 keys", t.out.p,
		      kvt_out_len(&t), want, wlen);
	free(req);
	free(want);
	kvt_fini(&t);
}

int main(void)
{
	struct kvt_config three = { .nshards = 3 };
	struct kvt t, t3;

	kvt_init(&t, NULL);
	kvt_init(&t3, &three);
	for (size_t i = 0; i < ARRAY_SIZE(memcached_answers); i++)
		check_case(&t, &t3, &memcached_answers[i]);
	for (size_t i = 0; i < ARRAY_SIZE(deviations); i++)
		check_case(&t, &t3, &deviations[i]);
	kvt_fini(&t);
	kvt_fini(&t3);
	check_pipelining(1);
	check_pipelining(4);
	check_long_get();
	return TEST_PASS;
}
