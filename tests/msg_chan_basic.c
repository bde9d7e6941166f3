/* msg_chan_basic.c - channel basics on plain threads: inline and
 * by-reference messages, data-buffer wrap, both directions, batches,
 * zero-copy peek, oversized payloads, small buffers, full and empty
 * lanes without waiting, close (-EPIPE after draining), map/unmap,
 * configuration errors. */
#include <errno.h>
#include <stdint.h>
#include <string.h>
#include <sys/uio.h>

#include <atoll/chan.h>

#include "harness.h"

static unsigned char pattern(uint64_t seq, size_t i)
{
	return (unsigned char)(seq * 131 + i * 7 + 1);
}

static void fill(unsigned char *p, size_t len, uint64_t seq)
{
	for (size_t i = 0; i < len; i++)
		p[i] = pattern(seq, i);
}

static void check_fill(const unsigned char *p, size_t len, uint64_t seq)
{
	for (size_t i = 0; i < len; i++)
		if (p[i] != pattern(seq, i)) {
			fprintf(stderr, "FAIL: message %llu byte %zu: %u\n",
				(unsigned long long)seq, i, p[i]);
			exit(TEST_FAIL);
		}
}

static void test_config(void)
{
	struct chan *a, *b;
	struct chan_config cfg = { 0 };

	cfg.nslots = 3;
	CHECK_EQ(chan_pair(&a, &b, &cfg), -EINVAL);
	cfg.nslots = 1;
	CHECK_EQ(chan_pair(&a, &b, &cfg), -EINVAL);
	cfg.nslots = CHAN_MAX_SLOTS * 2;
	CHECK_EQ(chan_pair(&a, &b, &cfg), -EINVAL);
	cfg.nslots = 8;
	cfg.data_size = 1000;
	CHECK_EQ(chan_pair(&a, &b, &cfg), -EINVAL);
	cfg.data_size = 2048; /* below CHAN_MIN_DATA */
	CHECK_EQ(chan_pair(&a, &b, &cfg), -EINVAL);
	cfg.data_size = 0;
	cfg.map_size = CHAN_MAX_MAP + 1;
	CHECK_EQ(chan_pair(&a, &b, &cfg), -EINVAL);
	CHECK_EQ(chan_pair(NULL, &b, NULL), -EINVAL);
}

static void test_inline_and_ref(void)
{
	struct chan_config cfg = { .nslots = 8, .data_size = 4096 };
	unsigned char out[4096], in[4096];
	struct chan *a, *b;
	struct chan_info info;
	uint64_t seq = 0;

	CHECK_OK(chan_pair(&a, &b, &cfg));
	chan_info(a, &info);
	CHECK_EQ(info.id, 0);
	CHECK_EQ(info.nslots, 8);
	CHECK_EQ(info.data_size, 4096);
	chan_info(b, &info);
	CHECK_EQ(info.id, 1);

	/* Every size from 0 to 300, then big ones: inline up to 56, by
	 * reference above, many wraps of the 4 KiB buffer. */
	for (int round = 0; round < 3; round++) {
		for (size_t len = 0; len <= 300; len++, seq++) {
			fill(out, len, seq);
			CHECK_EQ(chan_write(a, out, len, 0), (long long)len);
			memset(in, 0, sizeof(in));
			CHECK_EQ(chan_read(b, in, sizeof(in), 0),
				 (long long)len);
			check_fill(in, len, seq);
		}
	}
	for (size_t len = 1000; len <= 4096; len += 517, seq++) {
		fill(out, len, seq);
		CHECK_EQ(chan_write(a, out, len, 0), (long long)len);
		CHECK_EQ(chan_read(b, in, sizeof(in), 0), (long long)len);
		check_fill(in, len, seq);
	}
	/* The full buffer in one message. */
	fill(out, 4096, seq);
	CHECK_EQ(chan_write(a, out, 4096, 0), 4096);
	CHECK_EQ(chan_read(b, in, sizeof(in), 0), 4096);
	check_fill(in, 4096, seq++);

	/* Oversized: larger than the data buffer. */
	CHECK_EQ(chan_write(a, out, 4097, 0), -EMSGSIZE);

	/* The other direction works the same. */
	fill(out, 100, seq);
	CHECK_EQ(chan_write(b, out, 100, 0), 100);
	CHECK_EQ(chan_read(a, in, sizeof(in), 0), 100);
	check_fill(in, 100, seq++);

	/* Queue several refs, then read them: the buffer fills up. A fresh
	 * channel, so the buffer starts at offset 0. */
	chan_close(a);
	chan_close(b);
	CHECK_OK(chan_pair(&a, &b, &cfg));
	for (int i = 0; i < 3; i++) {
		fill(out, 1200, seq + (uint64_t)i);
		CHECK_EQ(chan_write(a, out, 1200, CHAN_DONTWAIT), 1200);
	}
	/* 3 x 1216 used of 4096: a fourth does not fit. */
	CHECK_EQ(chan_write(a, out, 1200, CHAN_DONTWAIT), -EAGAIN);
	/* An inline message still does (slots are free). */
	CHECK_EQ(chan_write(a, out, 10, CHAN_DONTWAIT), 10);
	for (int i = 0; i < 3; i++) {
		CHECK_EQ(chan_read(b, in, sizeof(in), 0), 1200);
		check_fill(in, 1200, seq + (uint64_t)i);
	}
	CHECK_EQ(chan_read(b, in, sizeof(in), 0), 10);
	seq += 3;

	/* A small buffer: -EMSGSIZE and the message stays. */
	fill(out, 40, seq);
	CHECK_EQ(chan_write(a, out, 40, 0), 40);
	CHECK_EQ(chan_read(b, in, 39, 0), -EMSGSIZE);
	CHECK_EQ(chan_read(b, in, 40, 0), 40);
	check_fill(in, 40, seq++);

	/* Empty, not waiting. */
	CHECK_EQ(chan_read(b, in, sizeof(in), CHAN_DONTWAIT), -EAGAIN);

	/* Full ring, not waiting: 8 slots. */
	for (int i = 0; i < 8; i++)
		CHECK_EQ(chan_write(a, &i, sizeof(i), CHAN_DONTWAIT),
			 (long long)sizeof(i));
	CHECK_EQ(chan_write(a, out, 1, CHAN_DONTWAIT), -EAGAIN);
	for (int i = 0; i < 8; i++) {
		int v = -1;

		CHECK_EQ(chan_read(b, &v, sizeof(v), 0), (long long)sizeof(v));
		CHECK_EQ(v, i);
	}
	{
		struct chan_stats st;

		chan_stats(a, &st);
		CHECK_EQ(st.sent, 13);
		CHECK_EQ(st.full, 2);
		chan_stats(b, &st);
		CHECK_EQ(st.received, 13);
		CHECK_EQ(st.bad, 0);
	}
	CHECK_OK(chan_close(a));
	CHECK_OK(chan_close(b));
}

static void test_no_data(void)
{
	struct chan_config cfg = { .nslots = 4, .data_size = CHAN_NO_DATA };
	unsigned char buf[64] = { 0 };
	struct chan *a, *b;
	struct chan_info info;

	CHECK_OK(chan_pair(&a, &b, &cfg));
	chan_info(a, &info);
	CHECK_EQ(info.data_size, 0);
	CHECK_EQ(chan_write(a, buf, CHAN_INLINE_MAX, 0), CHAN_INLINE_MAX);
	CHECK_EQ(chan_write(a, buf, CHAN_INLINE_MAX + 1, 0), -EMSGSIZE);
	CHECK_EQ(chan_read(b, buf, sizeof(buf), 0), CHAN_INLINE_MAX);
	chan_close(a);
	chan_close(b);
}

static void test_batches(void)
{
	struct chan_config cfg = { .nslots = 16, .data_size = 8192 };
	unsigned char out[40][300], in[40][300];
	struct iovec wv[40], rv[40];
	struct chan *a, *b;
	uint64_t rseq = 0, wseq = 0;

	CHECK_OK(chan_pair(&a, &b, &cfg));
	for (int round = 0; round < 50; round++) {
		unsigned n = 1 + (unsigned)(round * 7) % 16;
		int got = 0;

		for (unsigned i = 0; i < n; i++) {
			size_t len = (round + i) % 3 == 0 ? 200 : (i * 5) % 57;

			fill(out[i], len, wseq + i);
			wv[i].iov_base = out[i];
			wv[i].iov_len = len;
		}
		CHECK_EQ(chan_write_batch(a, wv, n, 0), (long long)n);
		wseq += n;
		while ((uint64_t)got < n) {
			int k;

			for (int i = 0; i < 40; i++) {
				rv[i].iov_base = in[i];
				rv[i].iov_len = sizeof(in[i]);
			}
			k = chan_read_batch(b, rv, 40, 0);
			CHECK(k > 0);
			for (int i = 0; i < k; i++)
				check_fill(in[i], rv[i].iov_len, rseq++);
			got += k;
		}
		CHECK_EQ(got, n);
	}
	/* DONTWAIT batch into a lane with room for 16: 16 of 20 go. */
	for (unsigned i = 0; i < 20; i++) {
		wv[i].iov_base = out[i];
		wv[i].iov_len = 8;
	}
	CHECK_EQ(chan_write_batch(a, wv, 20, CHAN_DONTWAIT), 16);
	CHECK_EQ(chan_write_batch(a, wv, 1, CHAN_DONTWAIT), -EAGAIN);
	/* Reading stops before a message that does not fit. */
	for (int i = 0; i < 16; i++) {
		rv[i].iov_base = in[i];
		rv[i].iov_len = i == 3 ? 4 : 8;
	}
	CHECK_EQ(chan_read_batch(b, rv, 16, 0), 3);
	CHECK_EQ(chan_read_batch(b, &rv[3], 1, 0), -EMSGSIZE);
	rv[3].iov_len = 8;
	CHECK_EQ(chan_read_batch(b, &rv[3], 13, 0), 13);
	CHECK_EQ(chan_read_batch(b, rv, 1, CHAN_DONTWAIT), -EAGAIN);
	/* Oversized in a batch: nothing written. */
	wv[1].iov_len = 9000;
	CHECK_EQ(chan_write_batch(a, wv, 3, 0), -EMSGSIZE);
	CHECK_EQ(chan_read(b, in[0], 8, CHAN_DONTWAIT), -EAGAIN);
	chan_close(a);
	chan_close(b);
}

static void test_peek(void)
{
	struct chan_config cfg = { .nslots = 4, .data_size = 4096 };
	unsigned char out[1000], in[1000];
	const void *p, *p2;
	struct chan *a, *b;

	CHECK_OK(chan_pair(&a, &b, &cfg));
	CHECK_EQ(chan_consume(b), -EINVAL);
	fill(out, 1000, 5);
	CHECK_EQ(chan_write(a, out, 1000, 0), 1000);
	fill(out, 20, 6);
	CHECK_EQ(chan_write(a, out, 20, 0), 20);
	CHECK_EQ(chan_peek(b, &p, 0), 1000);
	check_fill(p, 1000, 5);
	/* Peeking again gives the same message; reading is refused. */
	CHECK_EQ(chan_peek(b, &p2, 0), 1000);
	CHECK(p == p2);
	CHECK_EQ(chan_read(b, in, sizeof(in), 0), -EBUSY);
	CHECK_OK(chan_consume(b));
	CHECK_EQ(chan_peek(b, &p, CHAN_DONTWAIT), 20);
	check_fill(p, 20, 6);
	CHECK_OK(chan_consume(b));
	CHECK_EQ(chan_peek(b, &p, CHAN_DONTWAIT), -EAGAIN);
	/* The buffer space was released: the full size fits again. */
	fill(out, 1000, 7);
	for (int i = 0; i < 4; i++)
		CHECK_EQ(chan_write(a, out, 1000, CHAN_DONTWAIT), 1000);
	for (int i = 0; i < 4; i++)
		CHECK_EQ(chan_read(b, in, sizeof(in), 0), 1000);
	check_fill(in, 1000, 7);
	chan_close(a);
	chan_close(b);
}

static void test_close(void)
{
	struct chan *a, *b;
	int v;

	CHECK_OK(chan_pair(&a, &b, NULL));
	for (int i = 0; i < 5; i++)
		CHECK_EQ(chan_write(a, &i, sizeof(i), 0), (long long)sizeof(i));
	CHECK_OK(chan_close(a));
	/* Everything sent before the close arrives, then -EPIPE. */
	for (int i = 0; i < 5; i++) {
		CHECK_EQ(chan_read(b, &v, sizeof(v), 0), (long long)sizeof(v));
		CHECK_EQ(v, i);
	}
	CHECK_EQ(chan_read(b, &v, sizeof(v), 0), -EPIPE);
	CHECK_EQ(chan_read(b, &v, sizeof(v), CHAN_DONTWAIT), -EPIPE);
	/* Writing to a closed peer. */
	CHECK_EQ(chan_write(b, &v, sizeof(v), 0), -EPIPE);
	CHECK_OK(chan_close(b));
}

static void test_map(void)
{
	struct chan_config cfg = { .map_size = 10000 };
	struct chan *a, *b, *c, *d;
	void *pa, *pb;
	size_t sa, sb;

	CHECK_OK(chan_pair(&a, &b, &cfg));
	CHECK_OK(chan_map(a, &pa, &sa));
	CHECK_OK(chan_map(b, &pb, &sb));
	CHECK_EQ(sa, sb);
	CHECK(sa >= 10000);
	CHECK(pa != pb);
	CHECK_EQ(((unsigned char *)pb)[sa - 1], 0);
	memset(pa, 0x5a, sa);
	CHECK_EQ(((unsigned char *)pb)[sa - 1], 0x5a);
	CHECK_EQ(((unsigned char *)pb)[0], 0x5a);
	/* Mapping again gives the same address. */
	CHECK_OK(chan_map(a, &pb, NULL));
	CHECK(pa == pb);
	CHECK_OK(chan_unmap(a));
	CHECK_EQ(chan_unmap(a), -EINVAL);
	/* Messages still work next to it. */
	CHECK_EQ(chan_write(a, "x", 1, 0), 1);
	CHECK_EQ(chan_read(b, &sa, sizeof(sa), 0), 1);
	chan_close(a);
	chan_close(b); /* unmaps b's mapping */

	CHECK_OK(chan_pair(&c, &d, NULL));
	CHECK_EQ(chan_map(c, &pa, &sa), -ENODEV);
	chan_close(c);
	chan_forget(d);
}

int main(void)
{
	test_config();
	test_inline_and_ref();
	test_no_data();
	test_batches();
	test_peek();
	test_close();
	test_map();
	printf("msg_chan_basic: ok\n");
	return TEST_PASS;
}
