/* msg_rpc_codec.c - marshalling generated from an X-macro table: every
 * field kind round-trips; encode refuses out-of-bounds fields and short
 * buffers; decode refuses every truncation, trailing bytes, lengths above
 * a field's max, embedded NULs, and survives random and mutated bytes with
 * strings always terminated. */
#include <errno.h>

#include <atoll/rpc.h>

#include "harness.h"

#define T_MSGS(M)                                                            \
	M(T_ALL, t_all,                                                      \
	  F_U8(a) F_U16(b) F_U32(c) F_U64(d) F_I32(e) F_I64(f)               \
	  F_STR(s, 16) F_BYTES(blob, 40),                                    \
	  F_STR(s, 8))                                                       \
	M(T_NONE, t_none, F_NONE, F_NONE)                                    \
	M(T_BIG, t_big, F_BYTES(data, 4000), F_U32(n))

RPC_DECLARE(t, T_MSGS);
RPC_DEFINE(t, T_MSGS);

/* The largest encodings are compile-time constants. */
BUILD_ASSERT(RPC__MAXSIZE(F_U8(a) F_STR(s, 16)) == 1 + 4 + 16);

static uint64_t rng = 0x9e3779b97f4a7c15ull;

static uint64_t rnd(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return rng;
}

static void fill(struct t_all_req *r)
{
	memset(r, 0, sizeof(*r));
	r->a = 0xab;
	r->b = 0xbeef;
	r->c = 0xdeadbeef;
	r->d = 0x0123456789abcdefull;
	r->e = -5;
	r->f = INT64_MIN + 7;
	strcpy(r->s, "sixteen-chars-ok");
	r->blob_len = 40;
	for (int i = 0; i < 40; i++)
		r->blob[i] = (uint8_t)(i * 7);
}

static void check_same(const struct t_all_req *x, const struct t_all_req *y)
{
	CHECK_EQ(x->a, y->a);
	CHECK_EQ(x->b, y->b);
	CHECK_EQ(x->c, y->c);
	CHECK(x->d == y->d);
	CHECK_EQ(x->e, y->e);
	CHECK(x->f == y->f);
	CHECK(strcmp(x->s, y->s) == 0);
	CHECK_EQ(x->blob_len, y->blob_len);
	CHECK(memcmp(x->blob, y->blob, x->blob_len) == 0);
}

/* Every string member of a decoded struct must be terminated. */
static void check_terminated(const struct t_all_req *r)
{
	CHECK(memchr(r->s, '\0', sizeof(r->s)) != NULL);
	CHECK(r->blob_len <= 40);
}

static void test_roundtrip(void)
{
	struct t_all_req in, out;
	uint8_t buf[256];
	int n;

	fill(&in);
	n = t_all_req_encode(&in, buf, sizeof(buf));
	CHECK_EQ(n, 1 + 2 + 4 + 8 + 4 + 8 + 4 + 16 + 4 + 40);
	/* little-endian on the wire */
	CHECK_EQ(buf[0], 0xab);
	CHECK_EQ(buf[1], 0xef);
	CHECK_EQ(buf[2], 0xbe);
	CHECK_EQ(buf[3], 0xef);
	CHECK_EQ(buf[7], 0xef);
	CHECK_EQ(buf[14], 0x01);
	memset(&out, 0x55, sizeof(out));
	CHECK_EQ(t_all_req_decode(&out, buf, (size_t)n), 0);
	check_same(&in, &out);

	/* empty strings and blobs */
	in.s[0] = '\0';
	in.blob_len = 0;
	n = t_all_req_encode(&in, buf, sizeof(buf));
	CHECK_EQ(n, 1 + 2 + 4 + 8 + 4 + 8 + 4 + 4);
	CHECK_EQ(t_all_req_decode(&out, buf, (size_t)n), 0);
	check_same(&in, &out);

	/* a message without fields encodes to nothing */
	{
		struct t_none_req z;

		CHECK_EQ(t_none_req_encode(&z, buf, 0), 0);
		CHECK_EQ(t_none_req_decode(&z, buf, 0), 0);
		CHECK_EQ(t_none_req_decode(&z, buf, 1), -EBADMSG);
	}
}

static void test_encode_bounds(void)
{
	struct t_all_req in;
	uint8_t buf[256];
	int full;

	fill(&in);
	full = t_all_req_encode(&in, buf, sizeof(buf));
	/* every short buffer: -EMSGSIZE, never a write past cap */
	for (int cap = 0; cap < full; cap++) {
		memset(buf, 0xcc, sizeof(buf));
		CHECK_EQ(t_all_req_encode(&in, buf, (size_t)cap), -EMSGSIZE);
		for (size_t i = (size_t)cap; i < sizeof(buf); i++)
			CHECK_EQ(buf[i], 0xcc);
	}
	/* a string not terminated within max + 1 bytes */
	memset(in.s, 'x', sizeof(in.s));
	CHECK_EQ(t_all_req_encode(&in, buf, sizeof(buf)), -EINVAL);
	fill(&in);
	in.blob_len = 41;
	CHECK_EQ(t_all_req_encode(&in, buf, sizeof(buf)), -EINVAL);
	in.blob_len = UINT32_MAX;
	CHECK_EQ(t_all_req_encode(&in, buf, sizeof(buf)), -EINVAL);

	/* the reply's string has its own max (8) */
	{
		struct t_all_rep rep;

		strcpy(rep.s, "12345678");
		CHECK_EQ(t_all_rep_encode(&rep, buf, sizeof(buf)), 12);
	}
}

static void test_decode_bad(void)
{
	struct t_all_req in, out;
	uint8_t buf[256], bad[256];
	int n;

	fill(&in);
	n = t_all_req_encode(&in, buf, sizeof(buf));
	/* every truncation */
	for (int len = 0; len < n; len++) {
		memset(&out, 0x55, sizeof(out));
		CHECK_EQ(t_all_req_decode(&out, buf, (size_t)len), -EBADMSG);
		check_terminated(&out);
	}
	/* trailing bytes */
	memcpy(bad, buf, (size_t)n);
	bad[n] = 0;
	CHECK_EQ(t_all_req_decode(&out, bad, (size_t)n + 1), -EBADMSG);

	/* string length above its max (16): offset 27 is s's length */
	memcpy(bad, buf, (size_t)n);
	CHECK_EQ(bad[27], 16);
	bad[27] = 17;
	CHECK_EQ(t_all_req_decode(&out, bad, (size_t)n), -EBADMSG);
	check_terminated(&out);
	/* a huge length must not wrap a bounds check */
	bad[27] = 0xff; bad[28] = 0xff; bad[29] = 0xff; bad[30] = 0xff;
	CHECK_EQ(t_all_req_decode(&out, bad, (size_t)n), -EBADMSG);
	check_terminated(&out);
	/* an embedded NUL in a string */
	memcpy(bad, buf, (size_t)n);
	bad[31 + 3] = '\0';
	CHECK_EQ(t_all_req_decode(&out, bad, (size_t)n), -EBADMSG);
	check_terminated(&out);
	CHECK_EQ(out.s[0], '\0');
	/* blob length above its max (40) */
	memcpy(bad, buf, (size_t)n);
	CHECK_EQ(bad[47], 40);
	bad[47] = 41;
	CHECK_EQ(t_all_req_decode(&out, bad, (size_t)n), -EBADMSG);
	CHECK_EQ(out.blob_len, 0);
	/* blob length inside the max but past the end of the message */
	bad[47] = 39;
	CHECK_EQ(t_all_req_decode(&out, bad, (size_t)n), -EBADMSG);
}

/* Random bytes and single-byte mutations of a valid message: decode must
 * give 0 or -EBADMSG, leave strings terminated, and (for 0) re-encode to
 * the same bytes. */
static void test_fuzz(void)
{
	struct t_all_req in, out;
	uint8_t buf[256], m[256], re[256];
	uint64_t iters = test_scale(200000);
	int n, ok = 0;

	fill(&in);
	n = t_all_req_encode(&in, buf, sizeof(buf));
	for (uint64_t i = 0; i < iters; i++) {
		size_t len;
		int r;

		if (i & 1) {
			len = rnd() % sizeof(m);
			for (size_t j = 0; j < len; j++)
				m[j] = (uint8_t)rnd();
		} else {
			len = (size_t)n;
			memcpy(m, buf, len);
			m[rnd() % len] = (uint8_t)rnd();
			if (rnd() % 4 == 0)
				len = rnd() % (len + 8);
		}
		memset(&out, 0x55, sizeof(out));
		r = t_all_req_decode(&out, m, len);
		CHECK(r == 0 || r == -EBADMSG);
		check_terminated(&out);
		if (r == 0) {
			ok++;
			CHECK_EQ(t_all_req_encode(&out, re, sizeof(re)),
				 (long long)len);
			CHECK(memcmp(re, m, len) == 0);
		}
	}
	CHECK(ok > 0);
}

static void test_big(void)
{
	static struct t_big_req in, out;
	static uint8_t buf[RPC_BODY_MAX];

	in.data_len = 4000;
	for (int i = 0; i < 4000; i++)
		in.data[i] = (uint8_t)rnd();
	CHECK_EQ(t_big_req_encode(&in, buf, sizeof(buf)), 4004);
	CHECK_EQ(t_big_req_decode(&out, buf, 4004), 0);
	CHECK(memcmp(in.data, out.data, 4000) == 0);
	CHECK(t_big_desc.req_max == 4004);
	CHECK(t_big_desc.req_max <= RPC_BODY_MAX);
}

static void test_proto(void)
{
	CHECK_EQ(t_rpc.nr_types, 3);
	CHECK(strcmp(t_rpc.name, "t") == 0);
	CHECK(t_rpc.msgs[0] == NULL);
	CHECK(t_rpc.msgs[T_ALL] == &t_all_desc);
	CHECK(t_rpc.msgs[T_NONE] == &t_none_desc);
	CHECK(t_rpc.msgs[T_BIG] == &t_big_desc);
	CHECK_EQ(T_ALL, 1);
	CHECK_EQ(T_BIG, 3);
	CHECK(strcmp(t_all_desc.name, "t_all") == 0);
	CHECK_EQ(t_all_desc.req_max, 1 + 2 + 4 + 8 + 4 + 8 + 20 + 44);
	CHECK_EQ(t_all_desc.rep_max, 12);
	CHECK_EQ(t_all_desc.req_size, sizeof(struct t_all_req));
}

int main(void)
{
	test_roundtrip();
	test_encode_bounds();
	test_decode_bad();
	test_fuzz();
	test_big();
	test_proto();
	printf("msg_rpc_codec: ok\n");
	return TEST_PASS;
}
