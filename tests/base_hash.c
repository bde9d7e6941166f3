/* base_hash: hash64() matches XXH64 reference vectors at every length
 * class, ignores alignment, and spreads sequential keys evenly. */
#include <stdint.h>
#include <string.h>

#include <atoll/hash.h>

#include "harness.h"

/* The pattern the vectors were computed over (see pattern()). */
#define SEED_GOLDEN 0x9e3779b97f4a7c15ull
static const uint64_t seeds[3] = { 0, 1, SEED_GOLDEN };

/* Reference XXH64(pattern[0..len), seed) for seeds 0, 1, SEED_GOLDEN,
 * computed once with the reference implementation (python3-xxhash). */
static const struct {
	size_t len;
	uint64_t h[3];
} vectors[] = {
	{    0, { 0xef46db3751d8e999ull, 0xd5afba1336a3be4bull, 0xc4349fc93c010000ull } },
	{    1, { 0x2078e1ad38ad738bull, 0x877218c0886c3aa1ull, 0xa70e4906c54489b3ull } },
	{    3, { 0x634d95fc01a189cdull, 0x4f79f69195dddefeull, 0xbf3ea50ff941639eull } },
	{    4, { 0xeed340908a1ac6c6ull, 0x0ede86208f01287bull, 0x8214ccf4f1ff646eull } },
	{    7, { 0x0da493621d6dc898ull, 0xd3f41c9d91005926ull, 0x97040f7d586ab641ull } },
	{    8, { 0x76f916c7bb523126ull, 0x3f6e32036d62145eull, 0x845c3715dc14d7a4ull } },
	{    9, { 0x2cbf9b87b501b5e6ull, 0xac694a8d596b9a56ull, 0x14bff6a7b9adeb50ull } },
	{   12, { 0x652c1a9326c2043aull, 0xae7793549ca82fc8ull, 0x81e21f1ace2d1da0ull } },
	{   14, { 0x62788dc5f072f4abull, 0x2396fdb5ead59fc5ull, 0x1e4e5501a6a498a8ull } },
	{   15, { 0xc0a094773e7000baull, 0x5d0ec4ed328c6d70ull, 0xe6507db245500cb6ull } },
	{   16, { 0xc764319f6dd95000ull, 0x2a98dea527827caaull, 0x61841bfdbec9770aull } },
	{   31, { 0xba180c5cdd27ad99ull, 0x9c9e0f9b55c27d40ull, 0x0270871ca69673c2ull } },
	{   32, { 0xf40f4b95694fde42ull, 0x9ed4a6463d6c0d58ull, 0x54e058371eed27edull } },
	{   33, { 0x7d3e875dfd87c981ull, 0x2ebf1a2a8f6d77adull, 0x23d88b03de0336c7ull } },
	{   35, { 0x05e25a4c7b3fc651ull, 0xa6a3ad7263355aacull, 0xfe1b7ee5d49f6624ull } },
	{   40, { 0xb5b431087aef83efull, 0xb2fa66f36444bcf5ull, 0x2a0faa0795565581ull } },
	{   63, { 0xc64610327efb4168ull, 0xc7f808dd7dab666dull, 0xe86ba2832c96bdf2ull } },
	{   64, { 0x72afba644577daabull, 0xbf0170ac0f6edda3ull, 0x0c917563a241a92full } },
	{   65, { 0x44a004b21663c659ull, 0x110a77ee8144c36eull, 0x17be735c4d31be03ull } },
	{  100, { 0x71bfb6319c7fcfc1ull, 0x1c04bad954d93cdcull, 0x4b0c5b87a0250f49ull } },
	{  127, { 0xf29b8b84e86d0d1aull, 0x8ef22121f243fa67ull, 0x4b044cca8952bbe8ull } },
	{  128, { 0x01ebe94970653660ull, 0x92e0b66835c27578ull, 0xd17cae4ee5113c25ull } },
	{  257, { 0xf4d0b75ea6c81da1ull, 0xab6b750f3d3c26a0ull, 0x036149a2a3eed277ull } },
	{ 1000, { 0xbb47d67c45e00a6dull, 0xcd80f9c4b3e8b523ull, 0x27fbd307e269d7b7ull } },
};

/* Reference XXH64 of well-known strings, seed 0 and seed 42. */
static const struct {
	const char *s;
	uint64_t h0, h42;
} strings[] = {
	{ "", 0xef46db3751d8e999ull, 0x98b1582b0977e704ull },
	{ "a", 0xd24ec4f1a98c6e5bull, 0x88e4fe59adf7b0ccull },
	{ "abc", 0x44bc2cf5ad770999ull, 0x13c1d910702770e6ull },
	{ "message digest", 0x066ed728fceeb3beull, 0x85fea12f652e06e9ull },
	{ "abcdefghijklmnopqrstuvwxyz", 0xcfe1f278fa89835cull,
	  0xd2adb2b633915fd4ull },
	{ "The quick brown fox jumps over the lazy dog",
	  0x0b242d361fda71bcull, 0xaa9f288a8baa3d3full },
};

#define PATTERN_LEN 1024

static void pattern(unsigned char *buf)
{
	for (unsigned i = 0; i < PATTERN_LEN; i++)
		buf[i] = (unsigned char)(((i * 167 + 13) ^ (i >> 3)) & 0xff);
}

#define CHECK_HASH(got, want)                                              \
	do {                                                               \
		uint64_t g_ = (got), w_ = (want);                          \
		if (g_ != w_) {                                            \
			fprintf(stderr, "FAIL %s:%d: %s = %016" PRIx64     \
				", want %016" PRIx64 "\n", __FILE__,       \
				__LINE__, #got, g_, w_);                   \
			exit(TEST_FAIL);                                   \
		}                                                          \
	} while (0)

static void test_vectors(void)
{
	static unsigned char buf[PATTERN_LEN];

	pattern(buf);
	for (size_t i = 0; i < ARRAY_SIZE(vectors); i++)
		for (size_t s = 0; s < ARRAY_SIZE(seeds); s++)
			CHECK_HASH(hash64(buf, vectors[i].len, seeds[s]),
				   vectors[i].h[s]);
	for (size_t i = 0; i < ARRAY_SIZE(strings); i++) {
		size_t n = strlen(strings[i].s);

		CHECK_HASH(hash64(strings[i].s, n, 0), strings[i].h0);
		CHECK_HASH(hash64(strings[i].s, n, 42), strings[i].h42);
	}
	CHECK_HASH(hash64(NULL, 0, 0), 0xef46db3751d8e999ull);
}

/* The same bytes at every offset 0..15 of a buffer hash the same. */
static void test_unaligned(void)
{
	static unsigned char ref[PATTERN_LEN];
	static unsigned char big[PATTERN_LEN + 64];

	pattern(ref);
	for (size_t i = 0; i < ARRAY_SIZE(vectors); i++) {
		for (size_t off = 0; off < 16; off++) {
			memset(big, 0xa5, sizeof(big));
			memcpy(big + off, ref, vectors[i].len);
			CHECK_HASH(hash64(big + off, vectors[i].len, 1),
				   vectors[i].h[1]);
		}
	}
}

/* Every input byte matters: flipping any bit of a 100-byte key changes
 * the hash. */
static void test_bit_flips(void)
{
	unsigned char buf[100];
	uint64_t base;

	memset(buf, 0, sizeof(buf));
	base = hash64(buf, sizeof(buf), 7);
	for (unsigned bit = 0; bit < 8 * sizeof(buf); bit++) {
		buf[bit / 8] ^= (unsigned char)(1u << (bit % 8));
		CHECK(hash64(buf, sizeof(buf), 7) != base);
		buf[bit / 8] ^= (unsigned char)(1u << (bit % 8));
	}
	CHECK(hash64(buf, sizeof(buf), 8) != base);
	CHECK(hash64(buf, sizeof(buf) - 1, 7) != base);
}

/*
 * Low 10 bits of the hashes of keys 0..2^20-1 into 1024 buckets. Uniform
 * hashing gives chi-square ~ 1023 +- 45 (1023 degrees of freedom); accept
 * [800, 1300], about 5 sigma each way. The lower bound catches a hash that
 * passes the key through (the identity would score 0 on sequential keys).
 */
#define NKEYS (1u << 20)
#define NBUCK 1024u

static double chi_square(const uint32_t *cnt)
{
	double expect = (double)NKEYS / NBUCK, chi = 0.0;

	for (unsigned b = 0; b < NBUCK; b++) {
		double d = (double)cnt[b] - expect;

		chi += d * d / expect;
	}
	return chi;
}

static void test_distribution(void)
{
	static uint32_t c64[NBUCK], cmix[NBUCK];
	double chi64, chimix;

	for (uint64_t k = 0; k < NKEYS; k++) {
		unsigned char key[8];

		for (unsigned i = 0; i < 8; i++)
			key[i] = (unsigned char)(k >> (8 * i));
		c64[hash64(key, sizeof(key), 0) & (NBUCK - 1)]++;
		cmix[hash64_u64(k) & (NBUCK - 1)]++;
	}
	chi64 = chi_square(c64);
	chimix = chi_square(cmix);
	printf("chi-square over %u buckets: hash64 %.1f, hash64_u64 %.1f\n",
	       NBUCK, chi64, chimix);
	CHECK(chi64 > 800.0 && chi64 < 1300.0);
	CHECK(chimix > 800.0 && chimix < 1300.0);
}

/* hash64_u64 is a bijection: spot-check that a dense range and the powers
 * of two give distinct values, and that 0 does not map to 0. */
static void test_mixer(void)
{
	uint64_t v[128];
	unsigned n = 0;

	for (unsigned i = 0; i < 64; i++)
		v[n++] = hash64_u64(i);
	for (unsigned i = 6; i < 64; i++)	/* 2^6.. : not in 0..63 */
		v[n++] = hash64_u64(1ull << i);
	for (unsigned i = 0; i < n; i++)
		for (unsigned j = i + 1; j < n; j++)
			CHECK(v[i] != v[j]);
	CHECK(hash64_u64(0) != 0);
}

int main(void)
{
	test_vectors();
	test_unaligned();
	test_bit_flips();
	test_mixer();
	test_distribution();
	printf("base_hash: ok\n");
	return TEST_PASS;
}
