/* keys.c - key popularity (uniform, Zipf) and key names for loadgen. */
#include "keys.h"

#include <errno.h>
#include <math.h>

/*
 * Rejection-inversion (see keys.h). With h(x) = x^-theta, the hat's
 * integral is H(x) = (x^(1-theta) - 1) / (1 - theta), log(x) at theta 1;
 * both are written through log1p/expm1 so they stay accurate as theta
 * approaches 1 from either side.
 */

/* expm1(t) / t, 1 at t == 0. */
static double expm1_over(double t)
{
	return fabs(t) > 1e-8 ? expm1(t) / t : 1.0 + t / 2;
}

/* log1p(t) / t, 1 at t == 0. */
static double log1p_over(double t)
{
	return fabs(t) > 1e-8 ? log1p(t) / t : 1.0 - t / 2;
}

static double zipf_h(double theta, double x)
{
	return exp(-theta * log(x));
}

static double zipf_hint(double theta, double x)
{
	double lx = log(x);

	return expm1_over((1.0 - theta) * lx) * lx;
}

static double zipf_hint_inv(double theta, double y)
{
	double t = y * (1.0 - theta);

	if (t < -1.0)	/* rounding at the far end of the range */
		t = -1.0;
	return exp(log1p_over(t) * y);
}

int keygen_init(struct keygen *kg, uint64_t n, double theta)
{
	if (n == 0 || !(theta >= 0 && theta <= KEYGEN_THETA_MAX))
		return -EINVAL;
	*kg = (struct keygen){ .n = n, .theta = theta };
	if (theta == 0)
		return 0;
	kg->h_x1 = zipf_hint(theta, 1.5) - 1.0;
	kg->h_n = zipf_hint(theta, (double)n + 0.5);
	kg->s = 2.0 - zipf_hint_inv(theta, zipf_hint(theta, 2.5) -
					   zipf_h(theta, 2.0));
	return 0;
}

uint64_t keygen_next(const struct keygen *kg, struct rng *r)
{
	if (kg->theta == 0)
		return rng_below(r, kg->n);
	for (;;) {
		double u = kg->h_n + rng_unit(r) * (kg->h_x1 - kg->h_n);
		double x = zipf_hint_inv(kg->theta, u);
		double k = floor(x + 0.5);

		if (k < 1)
			k = 1;
		else if (k > (double)kg->n)
			k = (double)kg->n;
		if (k - x <= kg->s ||
		    u >= zipf_hint(kg->theta, k + 0.5) -
			 zipf_h(kg->theta, k))
			return (uint64_t)k - 1;
	}
}

unsigned keygen_digits(const struct keygen *kg)
{
	unsigned d = 1;

	for (uint64_t v = kg->n - 1; v >= 10; v /= 10)
		d++;
	return d;
}

void key_name(char *dst, unsigned len, uint64_t idx)
{
	dst[0] = 'k';
	for (unsigned i = len - 1; i >= 1; i--) {
		dst[i] = (char)('0' + idx % 10);
		idx /= 10;
	}
}
