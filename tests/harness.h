/* harness.h - the tiny test harness every test program includes.
 *
 * A test is one program (tests/<module>_<case>.c) that exits 0 on pass,
 * 1 on failure and 77 when it must skip (meson's convention, also
 * liburing's). CHECK* macros report file, line and the values involved,
 * then exit 1 at once: a failed check leaves no later check to confuse.
 * meson runs each test in its own process under a timeout.
 */
#ifndef ATOLL_TEST_HARNESS_H
#define ATOLL_TEST_HARNESS_H

#include <inttypes.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <atoll/compiler.h>

#define TEST_PASS 0
#define TEST_FAIL 1
#define TEST_SKIP 77

#define CHECK(cond)                                                        \
	do {                                                               \
		if (!(cond)) {                                             \
			fprintf(stderr, "FAIL %s:%d: %s\n", __FILE__,      \
				__LINE__, #cond);                          \
			exit(TEST_FAIL);                                   \
		}                                                          \
	} while (0)

/* Compare two integers, printing both on failure. */
#define CHECK_EQ(a, b)                                                     \
	do {                                                               \
		long long check_a_ = (long long)(a);                       \
		long long check_b_ = (long long)(b);                       \
		if (check_a_ != check_b_) {                                \
			fprintf(stderr,                                    \
				"FAIL %s:%d: %s == %s (%lld != %lld)\n",   \
				__FILE__, __LINE__, #a, #b, check_a_,      \
				check_b_);                                 \
			exit(TEST_FAIL);                                   \
		}                                                          \
	} while (0)

/* A system call or API returning 0 / -errno (or -1 with errno) must succeed. */
#define CHECK_OK(expr)                                                     \
	do {                                                               \
		long long check_r_ = (long long)(expr);                    \
		if (check_r_ < 0) {                                        \
			fprintf(stderr, "FAIL %s:%d: %s returned %lld\n",  \
				__FILE__, __LINE__, #expr, check_r_);      \
			exit(TEST_FAIL);                                   \
		}                                                          \
	} while (0)

static inline void test_skip(const char *fmt, ...)
	__attribute__((noreturn, format(printf, 1, 2)));
static inline void test_skip(const char *fmt, ...)
{
	va_list ap;

	fputs("SKIP: ", stdout);
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	fputc('\n', stdout);
	exit(TEST_SKIP);
}

/* Stress tests scale their iteration counts down under sanitizers, which
 * cost 5-20x, so the suite stays inside CI's time budget. */
static inline uint64_t test_scale(uint64_t n)
{
#if defined(ATOLL_TSAN)
	return n / 10 ? n / 10 : 1;
#elif defined(ATOLL_ASAN)
	return n / 4 ? n / 4 : 1;
#else
	return n;
#endif
}

#endif /* ATOLL_TEST_HARNESS_H */
