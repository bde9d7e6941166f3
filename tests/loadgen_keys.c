/* loadgen_keys.c - loadgen's key popularity and key names
 * (bench/loadgen/keys.h): draws stay in range, uniform is flat, Zipf's
 * head has the frequencies 1 / (rank^theta * zeta(n, theta)) it should,
 * and names are fixed-width. */
#include <errno.h>
#include <math.h>
#include <string.h>

#include "harness.h"
#include "keys.h"

#define DRAWS 2000000

/* zeta(n, theta), the normalising sum, for the expected counts. */
static double zeta_exact(uint64_t n, double theta)
{
	double s = 0;

	for (uint64_t i = n; i >= 1; i--)
		s += pow((double)i, -theta);
	return s;
}

static void test_names(void)
{
	struct keygen kg;
	char name[16];

	CHECK_OK(keygen_init(&kg, 100000, 0));
	CHECK_EQ(keygen_digits(&kg), 5);	/* 99999 */
	key_name(name, 8, 42);
	CHECK(!memcmp(name, "k0000042", 8));
	key_name(name, 6, 99999);
	CHECK(!memcmp(name, "k99999", 6));
	CHECK_OK(keygen_init(&kg, 1, 0));
	CHECK_EQ(keygen_digits(&kg), 1);
	CHECK_OK(keygen_init(&kg, 11, 0));
	CHECK_EQ(keygen_digits(&kg), 2);
}

static void test_bad_params(void)
{
	struct keygen kg;

	CHECK_EQ(keygen_init(&kg, 0, 0), -EINVAL);
	CHECK_EQ(keygen_init(&kg, 10, KEYGEN_THETA_MAX + 0.5), -EINVAL);
	CHECK_EQ(keygen_init(&kg, 10, -0.1), -EINVAL);
	CHECK_EQ(keygen_init(&kg, 10, NAN), -EINVAL);
}

static void test_uniform(void)
{
	enum { N = 100 };
	static uint64_t count[N];
	struct rng r = { 7 };
	struct keygen kg;

	CHECK_OK(keygen_init(&kg, N, 0));
	for (int i = 0; i < DRAWS; i++) {
		uint64_t k = keygen_next(&kg, &r);

		CHECK(k < N);
		count[k]++;
	}
	/* Each bucket expects 20000 (sd ~140): 10% is > 10 sd. */
	for (int i = 0; i < N; i++)
		CHECK(count[i] > DRAWS / N * 9 / 10 &&
		      count[i] < DRAWS / N * 11 / 10);
}

static void check_zipf(uint64_t n, double theta)
{
	static uint64_t count[8];
	struct rng r = { 11 };
	struct keygen kg;
	double z = zeta_exact(n, theta);
	uint64_t tail = 0;

	memset(count, 0, sizeof(count));
	CHECK_OK(keygen_init(&kg, n, theta));
	for (int i = 0; i < DRAWS; i++) {
		uint64_t k = keygen_next(&kg, &r);

		CHECK(k < n);
		if (k < 8)
			count[k]++;
		else
			tail++;
	}
	/* Rejection-inversion is exact: each of the head's counts is
	 * within 3% (many standard deviations) of its expectation. */
	for (unsigned k = 0; k < 8 && k < n; k++) {
		double want = DRAWS * pow(k + 1.0, -theta) / z;

		if (fabs((double)count[k] - want) > 0.03 * want + 50) {
			fprintf(stderr, "FAIL: zipf n=%llu theta=%.2f rank %u: "
				"%llu draws, expected %.0f\n",
				(unsigned long long)n, theta, k,
				(unsigned long long)count[k], want);
			exit(TEST_FAIL);
		}
	}
	if (n > 8)
		CHECK(tail > 0);
}

static void test_zipf(void)
{
	check_zipf(1000, 0.99);
	check_zipf(1000, 0.5);
	check_zipf(100000, 0.99);
	check_zipf(100000, 1.0);	/* the hat's formulas turn into logs */
	check_zipf(100000, 1.3);
	check_zipf(5000000, 0.99);
	check_zipf(2, 0.99);
	check_zipf(1, 0.99);
}

int main(void)
{
	test_names();
	test_bad_params();
	test_uniform();
	test_zipf();
	printf("loadgen_keys: ok\n");
	return TEST_PASS;
}
