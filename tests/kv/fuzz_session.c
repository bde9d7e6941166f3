/* fuzz_session.c - libFuzzer target: any bytes through a session.
 *
 * Input: byte 0 picks the shard count (1..4), the memory limit and -M;
 * byte 1 seeds the read sizes; the rest is what a client sends. It is fed
 * to fresh stores twice, as one read and in pseudo-random pieces (1..300
 * bytes), through kvtest's server-like input buffer, which checks that a
 * feed consumes at most what it got, closes only with -EPROTO and asks
 * (kv_session_want) for more than it has. Then: both ways answer the same
 * bytes and close the same way, every answer ends in CRLF, and no shard
 * holds more than its memory limit. A failed check exits, which libFuzzer
 * reports with the input.
 *
 * Built with clang -fsanitize=fuzzer,address,undefined for kv_fuzz_short,
 * and with fuzz_main.c as an ordinary program (kv_fuzz_replay).
 */
#include "harness.h"
#include "kvtest.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_shards(struct kvt *t)
{
	for (unsigned sh = 0; sh < t->cfg.nshards; sh++) {
		struct kv_store_stats st;

		kv_store_get_stats(t->st[sh], &st);
		CHECK(st.bytes <= t->cfg.mem_limit);
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct kvt_config cfg = { 0 };
	struct kvt t;
	uint32_t seed;
	char *whole;
	size_t whole_len;
	bool whole_closed;
	const char *in;

	if (size < 2)
		return 0;
	cfg.nshards = 1 + data[0] % 4;
	cfg.mem_limit = 4096u << (data[0] >> 2 & 3);
	cfg.item_max = 1024;
	cfg.no_evict = data[0] >> 4 & 1;
	seed = data[1] | 0x100u;
	in = (const char *)data + 2;
	size -= 2;

	kvt_init(&t, &cfg);
	kvt_feed(&t, in, size);
	check_shards(&t);
	whole_len = kvt_out_len(&t);
	whole_closed = t.closed;
	whole = malloc(whole_len + 1);
	CHECK(whole);
	memcpy(whole, t.out.p, whole_len);
	CHECK(whole_len == 0 || (whole_len >= 2 && whole[whole_len - 2] == '\r'
				 && whole[whole_len - 1] == '\n'));

	kvt_reset(&t);
	t.out.len = 0;
	for (size_t off = 0; off < size && !t.closed;) {
		size_t n;

		seed = seed * 1103515245u + 12345u;
		n = 1 + (seed >> 16) % 300;
		n = n < size - off ? n : size - off;
		kvt_feed_more(&t, in + off, n);
		off += n;
	}
	check_shards(&t);
	CHECK(t.closed == whole_closed);
	kvt_expect_eq(__FILE__, __LINE__, "the fuzz input in pieces",
		      t.out.p, kvt_out_len(&t), whole, whole_len);
	free(whole);
	kvt_fini(&t);
	return 0;
}
