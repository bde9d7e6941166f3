/* kvtest.h - a whole atoll-kv engine in one thread, for the kv tests.
 *
 * struct kvt holds N stores behind a direct router (run() calls fn at
 * once, after checking the shard index), a settable clock, one session and
 * an input buffer that behaves like the server's: bytes the session did
 * not consume are kept and fed again with the next ones. kvt_feed() returns
 * the responses as a NUL-terminated string (valid until the next call).
 */
#ifndef ATOLL_TESTS_KVTEST_H
#define ATOLL_TESTS_KVTEST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "kv.h"

#define KVT_MAX_SHARDS 16
#define KVT_CLOCK_START 1700000000u /* a unix time in 2023 */

struct kvt_config {
	unsigned nshards;       /* 0 = 1 */
	size_t mem_limit;       /* per shard; 0 = 64 MiB */
	size_t item_max;        /* 0 = 1 MiB */
	int no_evict, no_cas;
};

struct kvt {
	struct kv_router r;
	struct kvt_config cfg;
	struct kv_store *st[KVT_MAX_SHARDS];
	uint64_t runs[KVT_MAX_SHARDS];  /* run() calls per shard */
	uint32_t now;                   /* the clock the stores read */
	struct kv_session *sess;
	char *in;                       /* unconsumed input */
	size_t in_len, in_cap;
	struct kv_buf out;
	bool closed;                    /* quit or a close error seen */
	ssize_t last_err;               /* the feed's negative return, or 0 */
};

/* Set up (fails the test on error); cfg may be NULL for the defaults. */
void kvt_init(struct kvt *t, const struct kvt_config *cfg);

/* Free everything; kvt_init again to start over. */
void kvt_fini(struct kvt *t);

/* Start over with empty stores and a new session, same config. */
void kvt_reset(struct kvt *t);

/* Feed len bytes as one read and return the responses to it. Also checks
 * the engine's promises: consumed <= offered, only -EPROTO closes, and
 * kv_session_want() asks for more than it already has. */
const char *kvt_feed(struct kvt *t, const void *in, size_t len);

/* As kvt_feed, but the answer keeps the responses of the calls before. */
const char *kvt_feed_more(struct kvt *t, const void *in, size_t len);

/* kvt_feed of a C string. */
const char *kvt_cmd(struct kvt *t, const char *in);

/* kvt_cmd of a formatted string. */
const char *kvt_cmdf(struct kvt *t, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/* Fail the test unless the answer to the formatted request is want. */
#define KVT_EXPECTF(t, want, ...)                                          \
	do {                                                               \
		const char *kvt_got_ = kvt_cmdf((t), __VA_ARGS__);         \
		kvt_expect_eq(__FILE__, __LINE__, #__VA_ARGS__, kvt_got_,  \
			      kvt_out_len(t), (want), strlen(want));       \
	} while (0)

/* Feed len bytes in pieces of `chunk` (the last may be shorter), returning
 * the concatenated responses. */
const char *kvt_feed_chunked(struct kvt *t, const void *in, size_t len,
			     size_t chunk);

/* Length of the last answer kvt_feed*() returned (it may hold NULs). */
size_t kvt_out_len(const struct kvt *t);

/* The shards' counters, summed. */
struct kv_store_stats kvt_stats(struct kvt *t);

/* Print the strings with C escapes when they differ and fail the test. */
void kvt_expect_eq(const char *file, int line, const char *what,
		   const char *got, size_t got_len, const char *want,
		   size_t want_len);

/* Feed `in` (a C string) and compare all responses with `want`. */
#define KVT_EXPECT(t, in, want)                                            \
	do {                                                               \
		const char *kvt_got_ = kvt_cmd((t), (in));                 \
		kvt_expect_eq(__FILE__, __LINE__, (in), kvt_got_,          \
			      kvt_out_len(t), (want), strlen(want));       \
	} while (0)

#endif /* ATOLL_TESTS_KVTEST_H */
