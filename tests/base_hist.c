/* base_hist: bucket math, percentiles against exact sorted quantiles for
 * several distributions, overflow, merge, JSON/print output, and the
 * concurrent-writer / live-reader paths. */
#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include <atoll/atomic.h>
#include <atoll/hist.h>

#include "harness.h"

/* ---- helpers ---------------------------------------------------------- */

static uint64_t rng_state = 0x2545f4914f6cdd1dull;

static uint64_t rng(void)	/* xorshift64* */
{
	rng_state ^= rng_state >> 12;
	rng_state ^= rng_state << 25;
	rng_state ^= rng_state >> 27;
	return rng_state * 0x2545f4914f6cdd1dull;
}

/* Natural log for x in (0, 1], enough for sampling (no libm). */
static double ln01(double x)
{
	double t, t2, term, s = 0.0;
	int k = 0;

	while (x < 0.70710678118654752) {
		x *= 2.0;
		k++;
	}
	t = (x - 1.0) / (x + 1.0);
	t2 = t * t;
	term = t;
	for (int i = 1; i < 41; i += 2) {
		s += term / i;
		term *= t2;
	}
	return 2.0 * s - k * 0.69314718055994531;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

static uint64_t absdiff(uint64_t a, uint64_t b)
{
	return a > b ? a - b : b - a;
}

/* Histograms are ~31 KB; keep them out of the stack. */
static struct hist h_a, h_b, h_c, h_shard[4];

#define MAXN 400000
static uint64_t samples[MAXN], sorted[MAXN];

/* The percentile at p1000 thousandths of a percent of h_a against the
 * exact nearest-rank quantile of sorted[0..n). */
static void check_quantile(const char *name, size_t n, uint64_t p1000)
{
	uint64_t rank, exact, got;

	rank = (p1000 * n + 99999) / 100000;	/* ceil(p/100 * n) */
	if (rank < 1)
		rank = 1;
	if (rank > n)
		rank = n;
	exact = sorted[rank - 1];
	got = hist_percentile(&h_a, (double)p1000 / 1000.0);
	if ((exact < 256 && got != exact) ||
	    absdiff(got, exact) * 256 > exact ||
	    absdiff(got, exact) * 100 > exact) {
		fprintf(stderr, "FAIL %s: p%.3f got %" PRIu64 " exact %" PRIu64
			" (rank %" PRIu64 " of %zu)\n", name,
			(double)p1000 / 1000.0, got, exact, rank, n);
		exit(TEST_FAIL);
	}
}

/*
 * Record samples[0..n) into a fresh histogram and compare every reported
 * percentile with the exact nearest-rank quantile of the sorted samples:
 * exact below 256, else within 1/256 (and so within the 1% promise).
 * p is swept in steps of 0.1 plus the tail points; p is given in
 * thousandths of a percent so the exact rank is integer arithmetic.
 */
static void check_dist(const char *name, size_t n)
{
	static const uint64_t tail[] = { 0, 1, 10, 100, 99000, 99500, 99900,
					 99950, 99990, 99999, 100000 };
	uint64_t sum = 0;	/* < 2^64: n * 1e11 at most */
	size_t t;

	hist_init(&h_a);
	for (size_t i = 0; i < n; i++) {
		hist_record(&h_a, samples[i]);
		sum += samples[i];
	}
	memcpy(sorted, samples, n * sizeof(sorted[0]));
	qsort(sorted, n, sizeof(sorted[0]), cmp_u64);

	CHECK_EQ(hist_count(&h_a), n);
	CHECK_EQ(hist_overflow(&h_a), 0);
	CHECK_EQ(hist_min(&h_a), sorted[0]);
	CHECK_EQ(hist_max(&h_a), sorted[n - 1]);
	{
		double exact = (double)sum / (double)n;
		double d = hist_mean(&h_a) - exact;

		CHECK(d <= exact * 1e-12 && -d <= exact * 1e-12);
	}

	for (t = 0; t < 1001 + ARRAY_SIZE(tail); t++) {
		uint64_t p1000 = t <= 1000 ? 100 * t : tail[t - 1001];

		check_quantile(name, n, p1000);
	}
	CHECK_EQ(hist_percentile(&h_a, 0.0), sorted[0]);
	CHECK_EQ(hist_percentile(&h_a, 100.0), sorted[n - 1]);
	printf("%-12s n=%-7zu p50=%-12" PRIu64 " p99=%-12" PRIu64
	       " p99.99=%" PRIu64 "\n", name, n, hist_percentile(&h_a, 50),
	       hist_percentile(&h_a, 99), hist_percentile(&h_a, 99.99));
}

/* ---- tests ------------------------------------------------------------ */

static void test_layout_and_buckets(void)
{
	CHECK_EQ(sizeof(struct hist), HIST_SIZE);
	CHECK_EQ(sizeof(struct hist), 64 + 8 * HIST_NBUCKETS);
	CHECK_EQ(hist_bucket(HIST_MAX_NS), HIST_NBUCKETS - 1);
	CHECK(hist_bucket_lo(HIST_NBUCKETS - 1) <= HIST_MAX_NS);
	CHECK(HIST_MAX_NS < hist_bucket_lo(HIST_NBUCKETS - 1) +
			    hist_bucket_width(HIST_NBUCKETS - 1));
	CHECK_EQ(hist_bucket(0), 0);
	CHECK_EQ(hist_bucket(1), 1);
	CHECK_EQ(hist_bucket(255), 255);
	CHECK_EQ(hist_bucket(256), 256);
	CHECK_EQ(hist_bucket(257), 256);

	for (unsigned i = 0; i < HIST_NBUCKETS; i++) {
		uint64_t lo = hist_bucket_lo(i), w = hist_bucket_width(i);

		CHECK_EQ(hist_bucket(lo), i);
		CHECK_EQ(hist_bucket(lo + w - 1), i);
		if (i + 1 < HIST_NBUCKETS)
			CHECK_EQ(hist_bucket_lo(i + 1), lo + w);
		if (lo >= 256)
			CHECK(w * 128 <= lo);	/* width <= 0.78% of lo */
		else
			CHECK_EQ(w, 1);
	}
	for (int i = 0; i < 100000; i++) {
		uint64_t v = rng() % (HIST_MAX_NS + 1);
		unsigned b = hist_bucket(v);

		CHECK(b < HIST_NBUCKETS);
		CHECK(hist_bucket_lo(b) <= v &&
		      v < hist_bucket_lo(b) + hist_bucket_width(b));
	}

	hist_init(&h_a);
	CHECK_EQ(h_a.magic, HIST_MAGIC);
	CHECK_EQ(h_a.nbuckets, HIST_NBUCKETS);
}

static void test_empty(void)
{
	char buf[512];

	hist_init(&h_a);
	CHECK_EQ(hist_count(&h_a), 0);
	CHECK_EQ(hist_min(&h_a), 0);
	CHECK_EQ(hist_max(&h_a), 0);
	CHECK(hist_mean(&h_a) == 0.0);
	CHECK_EQ(hist_percentile(&h_a, 50), 0);
	CHECK_EQ(hist_percentile(&h_a, 100), 0);
	CHECK_OK(hist_to_json(&h_a, buf, sizeof(buf)));
	CHECK(strstr(buf, "\"count\":0,") != NULL);
}

static void test_distributions(void)
{
	size_t n, i;

	/* uniform 1..N, shuffled */
	n = MAXN;
	for (i = 0; i < n; i++)
		samples[i] = i + 1;
	for (i = n - 1; i > 0; i--) {
		size_t j = rng() % (i + 1);
		uint64_t t = samples[i];

		samples[i] = samples[j];
		samples[j] = t;
	}
	check_dist("uniform", n);

	/* small uniform: every value exact */
	for (i = 0; i < 1000; i++)
		samples[i] = 1 + rng() % 200;
	check_dist("uniform200", 1000);

	/* exponential, mean 50 us */
	n = 200000;
	for (i = 0; i < n; i++) {
		double u = (double)((rng() >> 11) + 1) * 0x1p-53;

		samples[i] = (uint64_t)(-ln01(u) * 50000.0);
	}
	check_dist("exponential", n);

	/* log-uniform over 1 ns .. 100 s: every octave populated */
	for (i = 0; i < n; i++) {
		unsigned k = (unsigned)(rng() % 37);
		uint64_t v = (1ull << k) + rng() % (1ull << k);

		samples[i] = v > HIST_MAX_NS ? HIST_MAX_NS : v;
	}
	check_dist("log-uniform", n);

	/* bucket edges: lowest and highest value of every 3rd bucket */
	n = 0;
	for (unsigned b = 0; b < HIST_NBUCKETS; b += 3) {
		uint64_t lo = hist_bucket_lo(b), w = hist_bucket_width(b);

		samples[n++] = lo;
		samples[n++] = lo + w - 1;
		if (lo + w <= HIST_MAX_NS)
			samples[n++] = lo + w;	/* first of the next */
	}
	check_dist("edges", n);

	/* extremes: 1 ns and exactly 100 s */
	for (i = 0; i < 100; i++)
		samples[i] = i < 50 ? 1 : HIST_MAX_NS;
	check_dist("1ns+100s", 100);
	samples[0] = 1;
	check_dist("1ns", 1);
	samples[0] = HIST_MAX_NS;
	check_dist("100s", 1);
	CHECK_EQ(hist_percentile(&h_a, 50), HIST_MAX_NS);
	CHECK_EQ(hist_overflow(&h_a), 0);

	/* bimodal: cache hits vs misses */
	n = 100000;
	for (i = 0; i < n; i++)
		samples[i] = (rng() % 100 < 95) ? 80 + rng() % 40
						: 2000000 + rng() % 1000000;
	check_dist("bimodal", n);
}

static void test_overflow(void)
{
	uint64_t p99;

	hist_init(&h_a);
	for (int i = 0; i < 95; i++)
		hist_record(&h_a, 1000);
	for (int i = 0; i < 5; i++)
		hist_record(&h_a, 200000000000ull);	/* 200 s */
	CHECK_EQ(hist_count(&h_a), 100);
	CHECK_EQ(hist_overflow(&h_a), 5);
	CHECK_EQ(hist_min(&h_a), 1000);
	CHECK_EQ(hist_max(&h_a), 200000000000ull);	/* true value */
	CHECK_EQ(h_a.buckets[HIST_NBUCKETS - 1], 5);	/* top bucket */
	/* mean from the true values: (95 * 1000 + 5 * 2e11) / 100 */
	CHECK(hist_mean(&h_a) == (95.0 * 1000 + 5 * 2e11) / 100);
	CHECK(absdiff(hist_percentile(&h_a, 95), 1000) * 256 <= 1000);
	/* a quantile among overflowed samples saturates at ~100 s */
	p99 = hist_percentile(&h_a, 99);
	CHECK(absdiff(p99, HIST_MAX_NS) * 256 <= HIST_MAX_NS);
	CHECK_EQ(hist_percentile(&h_a, 100), 200000000000ull);

	hist_record(&h_a, UINT64_MAX);
	CHECK_EQ(hist_overflow(&h_a), 6);
	CHECK_EQ(hist_max(&h_a), UINT64_MAX);
	CHECK_EQ(h_a.buckets[HIST_NBUCKETS - 1], 6);
}

static void test_record_n_and_merge(void)
{
	size_t n = 100000;

	/* record_n(v, k) == k x record(v); record_n(v, 0) is a no-op */
	hist_init(&h_a);
	hist_init(&h_b);
	hist_record_n(&h_a, 12345, 0);
	CHECK(memcmp(&h_a, &h_b, sizeof(h_a)) == 0);
	hist_record_n(&h_a, 12345, 7);
	hist_record_n(&h_a, 300000000000ull, 2);
	for (int i = 0; i < 7; i++)
		hist_record(&h_b, 12345);
	hist_record(&h_b, 300000000000ull);
	hist_record(&h_b, 300000000000ull);
	CHECK(memcmp(&h_a, &h_b, sizeof(h_a)) == 0);

	/* merge of 4 shards == everything recorded into one */
	for (size_t i = 0; i < n; i++) {
		unsigned k = (unsigned)(rng() % 40);

		samples[i] = rng() % (1ull << k);
		if (i % 997 == 0)
			samples[i] = HIST_MAX_NS + 1 + i;	/* overflow */
	}
	hist_init(&h_a);
	for (unsigned s = 0; s < 4; s++)
		hist_init(&h_shard[s]);
	for (size_t i = 0; i < n; i++) {
		hist_record(&h_a, samples[i]);
		hist_record(&h_shard[rng() % 3], samples[i]);	/* 3: empty */
	}
	hist_init(&h_b);
	for (unsigned s = 0; s < 4; s++)
		hist_merge(&h_b, &h_shard[s]);
	CHECK(memcmp(&h_a, &h_b, sizeof(h_a)) == 0);
	CHECK(hist_overflow(&h_b) > 0);

	hist_copy(&h_c, &h_a);
	CHECK(memcmp(&h_a, &h_c, sizeof(h_a)) == 0);
	hist_reset(&h_c);
	hist_init(&h_b);
	CHECK(memcmp(&h_b, &h_c, sizeof(h_b)) == 0);
}

/* Balanced braces/brackets outside strings, one object, even quotes. */
static void check_json_shape(const char *s)
{
	int brace = 0, bracket = 0;
	bool in_str = false;
	size_t len = strlen(s);

	CHECK(len >= 2 && s[0] == '{' && s[len - 1] == '}');
	for (size_t i = 0; i < len; i++) {
		char c = s[i];

		if (c == '"')
			in_str = !in_str;
		if (in_str)
			continue;
		brace += (c == '{') - (c == '}');
		bracket += (c == '[') - (c == ']');
		CHECK(brace >= 0 && bracket >= 0);
		CHECK(brace > 0 || i == len - 1);
	}
	CHECK(!in_str && brace == 0 && bracket == 0);
}

static uint64_t json_u64(const char *s, const char *key)
{
	char pat[32];
	const char *p;

	snprintf(pat, sizeof(pat), "\"%s\":", key);
	p = strstr(s, pat);
	if (!p) {
		fprintf(stderr, "FAIL: key %s missing in %s\n", key, s);
		exit(TEST_FAIL);
	}
	return strtoull(p + strlen(pat), NULL, 10);
}

static void test_json(void)
{
	static const char *keys[] = { "count", "overflow", "mean", "min",
				      "max", "p50", "p90", "p99", "p999",
				      "p9999" };
	static char big[128 * 1024];
	char buf[512];
	int r, rb;
	unsigned nonzero = 0, pairs = 0;

	hist_init(&h_a);
	for (uint64_t v = 1; v <= 100000; v++)
		hist_record(&h_a, v * 37);
	hist_record(&h_a, 500000000000ull);

	r = hist_to_json(&h_a, buf, sizeof(buf));
	CHECK(r > 0);
	CHECK_EQ(r, strlen(buf));
	check_json_shape(buf);
	for (size_t i = 0; i < ARRAY_SIZE(keys); i++)
		(void)json_u64(buf, keys[i]);
	CHECK_EQ(json_u64(buf, "count"), 100001);
	CHECK_EQ(json_u64(buf, "overflow"), 1);
	CHECK_EQ(json_u64(buf, "min"), 37);
	CHECK_EQ(json_u64(buf, "max"), 500000000000ull);
	CHECK_EQ(json_u64(buf, "p50"), hist_percentile(&h_a, 50));
	CHECK_EQ(json_u64(buf, "p99"), hist_percentile(&h_a, 99));
	CHECK_EQ(json_u64(buf, "p999"), hist_percentile(&h_a, 99.9));
	CHECK_EQ(json_u64(buf, "p9999"), hist_percentile(&h_a, 99.99));
	CHECK(strstr(buf, "buckets") == NULL);

	/* exactly fitting needs room for the NUL */
	CHECK_EQ(hist_to_json(&h_a, buf, (size_t)r), -ENOSPC);
	CHECK_EQ(hist_to_json(&h_a, buf, (size_t)r + 1), r);
	CHECK_EQ(hist_to_json(&h_a, buf, 10), -ENOSPC);
	CHECK(strlen(buf) < 10);
	CHECK_EQ(hist_to_json(&h_a, NULL, 0), -ENOSPC);

	rb = hist_to_json_buckets(&h_a, big, sizeof(big));
	CHECK(rb > r);
	CHECK_EQ(rb, strlen(big));
	check_json_shape(big);
	CHECK(strstr(big, "\"buckets\":[[") != NULL);
	for (unsigned i = 0; i < HIST_NBUCKETS; i++)
		nonzero += h_a.buckets[i] != 0;
	for (const char *p = strstr(big, "\"buckets\""); *p; p++)
		pairs += *p == '[';
	CHECK_EQ(pairs, nonzero + 1);
	CHECK_EQ(hist_to_json_buckets(&h_a, big, (size_t)rb), -ENOSPC);
	CHECK_EQ(hist_to_json_buckets(&h_a, big, (size_t)r + 20), -ENOSPC);
}

static void test_print(void)
{
	char out[2048], want[32];
	size_t n;
	FILE *f = tmpfile();

	if (!f)
		test_skip("tmpfile() failed, cannot check hist_print");
	hist_init(&h_a);
	for (uint64_t v = 1; v <= 1000; v++)
		hist_record(&h_a, v * 1000);
	hist_record(&h_a, 150000000000ull);
	CHECK_EQ(hist_print(&h_a, f, "rpc latency", "us"), 0);
	CHECK_EQ(hist_print(&h_a, f, "raw", NULL), 0);
	CHECK_EQ(hist_print(&h_a, f, "batch", "items"), 0);
	rewind(f);
	n = fread(out, 1, sizeof(out) - 1, f);
	out[n] = '\0';
	fclose(f);
	fputs(out, stdout);
	CHECK(strstr(out, "rpc latency (us)") != NULL);
	CHECK(strstr(out, "raw (ns)") != NULL);
	CHECK(strstr(out, "batch (items)") != NULL);
	CHECK(strstr(out, "p99 ") != NULL && strstr(out, "p99.99") != NULL);
	CHECK(strstr(out, "1001") != NULL);		/* count */
	snprintf(want, sizeof(want), " %.3f ",
		 (double)hist_percentile(&h_a, 50) / 1e3);
	CHECK(strstr(out, want) != NULL);		/* p50 in us */
	CHECK(strstr(out, "samples above 100 s") != NULL);
}

/* ---- concurrency ------------------------------------------------------ */

#define NWRITERS 4
static struct hist h_live;
static uint64_t n_per_writer;
static int writers_done;

static void *atomic_writer(void *arg)
{
	uint64_t id = (uint64_t)(uintptr_t)arg;

	for (uint64_t i = 0; i < n_per_writer; i++)
		hist_record_atomic(&h_live, 1 + id + NWRITERS * i);
	return NULL;
}

static void test_atomic_writers(void)
{
	pthread_t t[NWRITERS];
	uint64_t total = 0, n, sum;

	n_per_writer = test_scale(200000);
	n = NWRITERS * n_per_writer;
	hist_init(&h_live);
	for (uintptr_t i = 0; i < NWRITERS; i++)
		CHECK_EQ(pthread_create(&t[i], NULL, atomic_writer,
					(void *)i), 0);
	for (int i = 0; i < NWRITERS; i++)
		CHECK_EQ(pthread_join(t[i], NULL), 0);
	for (unsigned i = 0; i < HIST_NBUCKETS; i++)
		total += h_live.buckets[i];
	/* values are exactly 1..n, each once */
	sum = n * (n + 1) / 2;
	CHECK_EQ(hist_count(&h_live), n);
	CHECK_EQ(total, n);
	CHECK_EQ(hist_min(&h_live), 1);
	CHECK_EQ(hist_max(&h_live), n);
	CHECK_EQ(h_live.sum, sum);
	CHECK(absdiff(hist_percentile(&h_live, 50), n / 2) * 100 <= n / 2);
}

static void *live_writer(void *arg)
{
	(void)arg;
	for (uint64_t i = 1; i <= n_per_writer; i++)
		hist_record(&h_live, i);
	/* Release: the records above before the flag; pairs with the
	 * reader's load_acquire of writers_done. */
	store_release(&writers_done, 1);
	return NULL;
}

/* One writer with hist_record(), one reader snapshotting it meanwhile:
 * each snapshot's buckets hold at least its count, and counts only grow. */
static void test_live_reader(void)
{
	pthread_t t;
	uint64_t last = 0, snaps = 0;

	n_per_writer = test_scale(1000000);
	hist_init(&h_live);
	store_relaxed(&writers_done, 0);
	CHECK_EQ(pthread_create(&t, NULL, live_writer, NULL), 0);
	for (;;) {
		int done = load_acquire(&writers_done);
		uint64_t total = 0, c;

		hist_copy(&h_c, &h_live);
		c = hist_count(&h_c);
		for (unsigned i = 0; i < HIST_NBUCKETS; i++)
			total += h_c.buckets[i];
		CHECK(total >= c);
		CHECK(c >= last);
		if (c)
			CHECK(hist_percentile(&h_c, 50) <= n_per_writer);
		last = c;
		snaps++;
		if (done)
			break;
	}
	CHECK_EQ(pthread_join(t, NULL), 0);
	CHECK_EQ(last, n_per_writer);
	printf("live reader: %" PRIu64 " snapshots\n", snaps);
}

int main(void)
{
	test_layout_and_buckets();
	test_empty();
	test_distributions();
	test_overflow();
	test_record_n_and_merge();
	test_json();
	test_print();
	test_atomic_writers();
	test_live_reader();
	printf("base_hist: ok\n");
	return TEST_PASS;
}
