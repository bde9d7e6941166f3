/* hash.c - XXH64, from the xxHash algorithm description.
 *
 * Design note. XXH64 keeps four 64-bit accumulators ("lanes") while at
 * least 32 bytes remain, each eating one 8-byte word per 32-byte stripe
 * with the round function (acc += w * P2; acc = rotl(acc, 31) * P1). The
 * lanes are then folded into one (rotations 1, 7, 12, 18, and each lane
 * merged back in through another round). Short inputs start from
 * seed + P5 instead. The length is added, the tail is consumed as 8-byte,
 * then 4-byte, then single-byte pieces, each with its own mixing step, and
 * a final avalanche (xor-shift 33, * P2, xor-shift 29, * P3, xor-shift 32)
 * spreads every input bit over the output. Words are read little-endian
 * through memcpy, so any alignment works and the compiler emits one load.
 */
#include <stdint.h>
#include <string.h>

#include <atoll/hash.h>

#define P1 0x9e3779b185ebca87ull
#define P2 0xc2b2ae3d27d4eb4full
#define P3 0x165667b19e3779f9ull
#define P4 0x85ebca77c2b2ae63ull
#define P5 0x27d4eb2f165667c5ull

static inline uint64_t rotl64(uint64_t x, unsigned r)
{
	return (x << r) | (x >> (64 - r));
}

static inline uint64_t read64(const unsigned char *p)
{
	uint64_t v;

	memcpy(&v, p, sizeof(v));
#if __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
	v = __builtin_bswap64(v);
#endif
	return v;
}

static inline uint32_t read32(const unsigned char *p)
{
	uint32_t v;

	memcpy(&v, p, sizeof(v));
#if __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
	v = __builtin_bswap32(v);
#endif
	return v;
}

static inline uint64_t xxh_round(uint64_t acc, uint64_t word)
{
	acc += word * P2;
	acc = rotl64(acc, 31);
	return acc * P1;
}

static inline uint64_t xxh_merge(uint64_t acc, uint64_t lane)
{
	acc ^= xxh_round(0, lane);
	return acc * P1 + P4;
}

uint64_t hash64(const void *data, size_t len, uint64_t seed)
{
	const unsigned char *p = data;
	size_t n = len;		/* bytes left at p; no end pointer, as data
				 * may be NULL when len is 0 */
	uint64_t acc;

	if (n >= 32) {
		uint64_t v1 = seed + P1 + P2;
		uint64_t v2 = seed + P2;
		uint64_t v3 = seed;
		uint64_t v4 = seed - P1;

		do {
			v1 = xxh_round(v1, read64(p));
			v2 = xxh_round(v2, read64(p + 8));
			v3 = xxh_round(v3, read64(p + 16));
			v4 = xxh_round(v4, read64(p + 24));
			p += 32;
			n -= 32;
		} while (n >= 32);

		acc = rotl64(v1, 1) + rotl64(v2, 7) + rotl64(v3, 12) +
		      rotl64(v4, 18);
		acc = xxh_merge(acc, v1);
		acc = xxh_merge(acc, v2);
		acc = xxh_merge(acc, v3);
		acc = xxh_merge(acc, v4);
	} else {
		acc = seed + P5;
	}

	acc += (uint64_t)len;

	while (n >= 8) {
		acc ^= xxh_round(0, read64(p));
		acc = rotl64(acc, 27) * P1 + P4;
		p += 8;
		n -= 8;
	}
	if (n >= 4) {
		acc ^= (uint64_t)read32(p) * P1;
		acc = rotl64(acc, 23) * P2 + P3;
		p += 4;
		n -= 4;
	}
	while (n > 0) {
		acc ^= (uint64_t)*p * P5;
		acc = rotl64(acc, 11) * P1;
		p++;
		n--;
	}

	acc ^= acc >> 33;
	acc *= P2;
	acc ^= acc >> 29;
	acc *= P3;
	acc ^= acc >> 32;
	return acc;
}
