/* hash.h - fast non-cryptographic 64-bit hashing for table keys.
 *
 * Owns: nothing (pure functions, no state). Thread-safe; callable from any
 * context, including signal handlers.
 *
 * hash64() is XXH64 (xxHash, 64-bit variant), written from its published
 * algorithm description and checked against reference vectors in
 * tests/base_hash.c: results are bit-identical to XXH64(data, len, seed),
 * so hashes agree with other XXH64 implementations (tools, other
 * languages). Input needs no alignment. It is NOT collision resistant
 * against an adversary who knows the seed: use a random seed for tables
 * fed by untrusted keys.
 *
 * hash64_u64() is a bijective 64-bit integer mixer (the SplitMix64 output
 * function: add the golden-ratio increment, then xor-shift-multiply
 * twice) for integer keys and for combining hashes; it is much cheaper
 * than hash64(&x, 8, seed) and gives different values.
 */
#ifndef ATOLL_HASH_H
#define ATOLL_HASH_H

#include <stddef.h>
#include <stdint.h>

/* XXH64 of len bytes at data (any alignment; data may be NULL if len is
 * 0) with the given seed. */
uint64_t hash64(const void *data, size_t len, uint64_t seed);

/* Mix a 64-bit integer into a well-spread 64-bit hash; a bijection, so
 * distinct inputs never collide. */
static inline uint64_t hash64_u64(uint64_t x)
{
	x += 0x9e3779b97f4a7c15ull;
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
	x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
	return x ^ (x >> 31);
}

#endif /* ATOLL_HASH_H */
