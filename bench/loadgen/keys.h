/* keys.h - what the load generator asks for: a fast random number
 * generator, key popularity (uniform or Zipf) and key names.
 *
 * Owns: nothing global. A struct rng belongs to one thread; a struct
 * keygen is read-only once keygen_init() has returned, so sender threads
 * share one.
 *
 * Zipf. Key i (0-based rank) is drawn with probability proportional to
 * 1 / (i + 1)^theta, exactly, by rejection-inversion (Hoermann and
 * Derflinger, "Rejection-inversion to generate variates from monotone
 * discrete distributions", ACM TOMACS 1996): invert the integral of
 * x^-theta over a continuous hat, round to the nearest rank, and accept
 * unless the point falls in the sliver between hat and histogram; most
 * draws are accepted at once, each costing a few exp/log. No set-up over
 * the key space, any n, any theta > 0. Rank 0, the most popular key, is
 * key 0.
 */
#ifndef LOADGEN_KEYS_H
#define LOADGEN_KEYS_H

#include <stdint.h>

/* splitmix64: one add and three xor-shift-multiplies per number; plenty
 * for choosing keys and arrival gaps, and any seed (even 0) is good. */
struct rng {
	uint64_t s;
};

static inline uint64_t rng_next(struct rng *r)
{
	uint64_t z = (r->s += 0x9e3779b97f4a7c15ull);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

/* Uniform in (0, 1]: never 0, so -log() of it is finite. */
static inline double rng_unit(struct rng *r)
{
	return (double)((rng_next(r) >> 11) + 1) * 0x1p-53;
}

/* Uniform integer in [0, n) (Lemire's multiply-shift; bias < n / 2^64). */
static inline uint64_t rng_below(struct rng *r, uint64_t n)
{
	return (uint64_t)(((unsigned __int128)rng_next(r) * n) >> 64);
}

struct keygen {
	uint64_t n;		/* keys 0 .. n-1 */
	double theta;		/* 0: uniform */
	double h_x1;		/* H(1.5) - 1: the hat's integral at rank 1 */
	double h_n;		/* H(n + 0.5) */
	double s;		/* the squeeze: accept at once if k - x <= s */
};

/* Set up n keys (n >= 1), uniform when theta == 0, else Zipf with
 * 0 < theta <= KEYGEN_THETA_MAX. Returns 0, or -EINVAL for n == 0 or
 * theta out of range. */
#define KEYGEN_THETA_MAX 2.0
int keygen_init(struct keygen *kg, uint64_t n, double theta);

/* Draw one key index in [0, n). Any thread, with its own rng. */
uint64_t keygen_next(const struct keygen *kg, struct rng *r);

/* Digits of the largest key index, n - 1 (at least 1). */
unsigned keygen_digits(const struct keygen *kg);

/* Write key `idx` as exactly `len` bytes: 'k' and the index in decimal,
 * zero-padded to len - 1 digits (no NUL). The caller has checked that
 * len - 1 >= keygen_digits(). */
void key_name(char *dst, unsigned len, uint64_t idx);

#endif /* LOADGEN_KEYS_H */
