/* compiler.h - compiler helpers shared by every Atoll module.
 *
 * Owns: branch hints, cache-line alignment, container_of, the always-on
 * BUG_ON check. Header only, no state, safe from any context.
 */
#ifndef ATOLL_COMPILER_H
#define ATOLL_COMPILER_H

#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>

/* One cache line on every machine we target (x86-64, arm64 Neoverse). */
#define CACHE_LINE 64
#define CACHE_ALIGNED __attribute__((aligned(CACHE_LINE)))

/* Round x up to a multiple of the power of two a. */
#define ALIGN_UP(x, a) (((x) + ((a) - 1)) & ~((__typeof__(x))(a) - 1))
#define IS_POW2(x) ((x) != 0 && ((x) & ((x) - 1)) == 0)

#define likely(x) __builtin_expect(!!(x), 1)
#define unlikely(x) __builtin_expect(!!(x), 0)

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

#define container_of(ptr, type, member) \
	((type *)(void *)((char *)(ptr) - offsetof(type, member)))

#define NOINLINE __attribute__((noinline))
#define ALWAYS_INLINE inline __attribute__((always_inline))

/* Pad a struct member out to its own cache line, to keep writers of
 * neighbouring fields from sharing a line (false sharing). */
#define CACHE_PAD(n) char pad_##n[CACHE_LINE]

/*
 * BUG_ON: an always-on check for invariants whose violation means memory is
 * already corrupt or the program is wrong; continuing would be worse than
 * stopping. Use assert() for checks that only debug builds pay for.
 */
#define BUG_ON(cond)                                                        \
	do {                                                                \
		if (unlikely(cond)) {                                       \
			fprintf(stderr, "atoll: BUG at %s:%d: %s\n",        \
				__FILE__, __LINE__, #cond);                 \
			abort();                                            \
		}                                                           \
	} while (0)

#define BUILD_ASSERT(cond) _Static_assert(cond, #cond)

/* Which sanitizer this translation unit is built with (GCC defines the
 * __SANITIZE_* macros, Clang answers __has_feature). */
#ifndef __has_feature
#define __has_feature(x) 0
#endif
#if defined(__SANITIZE_THREAD__) || __has_feature(thread_sanitizer)
#define ATOLL_TSAN 1
#endif
#if defined(__SANITIZE_ADDRESS__) || __has_feature(address_sanitizer)
#define ATOLL_ASAN 1
#endif

#endif /* ATOLL_COMPILER_H */
