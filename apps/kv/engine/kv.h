/* kv.h - the atoll-kv engine: memcached's text protocol over sharded stores.
 *
 * Owns: the per-shard stores (struct kv_store), the per-connection protocol
 * state (struct kv_session) and the output buffers they append to.
 *
 * Threads and locking: none inside. A kv_store is single-threaded: only its
 * owner (one vcore in the server, the test's thread in tests) calls into it,
 * which the router guarantees (struct kv_router). A kv_session belongs to
 * one connection and is used by one thread at a time. The engine never
 * blocks, sleeps or takes a lock, and uses no runtime: it can be tested
 * single-threaded and fuzzed.
 *
 * Protocol: memcached 1.6's text protocol, answered byte for byte as
 * memcached 1.6.18 answers (checked against it): get gets gat gats set add
 * replace append prepend cas delete incr decr touch flush_all version stats
 * ("stats settings|items|slabs|sizes|conns" answer a minimal set, then END;
 * "stats reset" RESET; other groups ERROR) verbosity quit shutdown bget,
 * `noreply` wherever memcached takes it. Of
 * the meta commands only mn ("MN") is implemented; mg ms md ma me answer
 * "ERROR" as a memcached without meta commands (before 1.5.19) does (an
 * ms value line then gets its own ERROR, as there).
 * Where this differs from memcached on purpose:
 *  - a NUL byte in a command line is an ordinary byte (memcached stops the
 *    line there), so it makes the line malformed rather than shorter;
 *  - a command line over 2048 bytes that is not get/gets/gat/gats closes
 *    the connection (silently, as memcached does) even when its newline
 *    came in the same read (memcached closes only when it reads
 *    2048 bytes without one), so the answer does not depend on how input
 *    is split; a get line may be as long as the largest storage request
 *    (memcached: unbounded);
 *  - a get with a bad key answers only the CLIENT_ERROR line but keeps the
 *    earlier answers of the same read (memcached drops them);
 *  - a value too large for -I is answered at once, before its bytes have
 *    been skipped (memcached answers after).
 * Time is unix seconds from kv_store_config.now; expiry follows memcached:
 * 0 never, up to 30 days relative, above that an absolute unix time, and
 * a negative one has already expired.
 */
#ifndef ATOLL_KV_H
#define ATOLL_KV_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* What "version" answers, unless the session config says otherwise. The
 * 1.6.18 prefix keeps clients that parse it happy. */
#define KV_VERSION "1.6.18-atoll"

#define KV_KEY_MAX 250               /* longest key, as memcached */
#define KV_ITEM_MAX_DEFAULT (1u << 20) /* memcached's -I default */
#define KV_ITEM_MAX_LIMIT (1u << 30)   /* the largest -I memcached takes */

/* ---- output buffer ---------------------------------------------------- */

/* A growable byte buffer responses are appended to. Zero-initialise it;
 * the owner may reset len to 0 and keep the memory. */
struct kv_buf {
	char *p;
	size_t len, cap;
};

/* Make room for `more` bytes after len (p[len .. len+more) writable).
 * Returns 0 or -ENOMEM (the buffer is unchanged then). Any thread that
 * owns the buffer. */
int kv_buf_reserve(struct kv_buf *b, size_t more);

/* Free the buffer's memory and zero it. */
void kv_buf_free(struct kv_buf *b);

/* ---- store: one shard --------------------------------------------------- */

struct kv_store;

struct kv_store_config {
	size_t mem_limit;  /* bytes for this shard's items (-m / nshards);
			      each item counts header + key + value */
	size_t item_max;   /* -I (0 = 1 MiB, at most 1 GiB): the largest item
			      as memcached sizes it (48-byte header, key,
			      value, CAS), so values a little under it */
	int no_evict;      /* -M: answer "SERVER_ERROR out of memory storing
			      object" instead of evicting */
	int no_cas;        /* -C: no CAS uniques (gets shows 0) */
	/* This store's index and the router's shard count: CAS uniques are
	 * counter * nshards + shard, so they are unique across shards.
	 * nshards 0 is taken as 1. */
	unsigned shard, nshards;
	/* The current unix time in seconds (server: the real clock, cached
	 * per event-loop pass is fine; tests: a settable one). Called only on
	 * the shard's owner. */
	uint32_t (*now)(void *clock_arg);
	void *clock_arg;
};

/* Per-shard counters, memcached's names. Read on the owner only. */
struct kv_store_stats {
	uint64_t cmd_get, cmd_set, cmd_flush, cmd_touch;
	uint64_t get_hits, get_misses, get_expired, get_flushed;
	uint64_t delete_hits, delete_misses;
	uint64_t incr_hits, incr_misses, decr_hits, decr_misses;
	uint64_t cas_hits, cas_misses, cas_badval;
	uint64_t touch_hits, touch_misses;
	uint64_t store_too_large, store_no_memory;
	uint64_t curr_items, total_items;
	uint64_t bytes;          /* memory charged to items now */
	uint64_t limit_maxbytes; /* mem_limit */
	uint64_t evictions;      /* live items dropped for room */
	uint64_t reclaimed;      /* expired items whose room was reused */
	uint64_t expired_unfetched, evicted_unfetched;
	uint64_t hash_buckets;   /* current hash table size */
};

/* Create an empty shard. Returns 0 or -EINVAL (no clock, mem_limit 0) or
 * -ENOMEM. Any thread; the store is then used by its owner only. */
int kv_store_create(struct kv_store **out, const struct kv_store_config *cfg);

/* Free the shard and every item in it. Owner only. NULL is allowed. */
void kv_store_destroy(struct kv_store *s);

/* Copy the shard's counters into *out. Owner only. */
void kv_store_get_stats(const struct kv_store *s, struct kv_store_stats *out);

/* Which shard owns key: the same function everywhere (XXH64 with a fixed
 * seed, high bits, so tables inside a shard still spread on the low bits).
 * nshards must be >= 1. Any thread. */
unsigned kv_shard_of(const char *key, size_t len, unsigned nshards);

/* ---- router: how a session reaches the shards --------------------------- */

/* run() must call fn(store, arg) such that calls on one shard never
 * overlap, and return only after fn has returned. fn may append to buffers
 * the caller passed in arg (it may run on another thread: the caller is
 * blocked meanwhile). A session calls run() at most once per shard per
 * request line: a multi-get is grouped by shard (shards in the order the
 * keys first name them); flush_all and stats visit every shard. */
struct kv_router {
	unsigned nshards;
	void (*run)(struct kv_router *r, unsigned shard,
		    void (*fn)(struct kv_store *s, void *arg), void *arg);
	/* Append the server's "STAT name value\r\n" lines for a stats
	 * group: group NULL is plain "stats" (pid, uptime, time, version,
	 * pointer_size, curr_connections, total_connections, threads, ...),
	 * "settings" (maxconns, tcpport, num_threads, ...) or "conns". The
	 * engine then appends its own lines (for plain stats the sums over
	 * shards: cmd_get, get_hits, curr_items, bytes, limit_maxbytes,
	 * evictions, ...; for settings maxbytes, evictions, cas_enabled,
	 * item_size_max) and the final END. May be NULL. Returns 0 or
	 * -ENOMEM. */
	int (*stats)(struct kv_router *r, const char *group,
		     struct kv_buf *out);
	/* "verbosity N": the server's logging level. May be NULL (the command
	 * is acknowledged and ignored). */
	void (*verbosity)(struct kv_router *r, unsigned level);
};

/* ---- session: one connection -------------------------------------------- */

/* item_max and no_cas must be the stores' (the session refuses values too
 * large for -I itself, so it need not buffer them). */
struct kv_session_config {
	size_t item_max;      /* -I (0 = 1 MiB), as in kv_store_config: larger
				 values answer SERVER_ERROR object too large
				 for cache, and their bytes are swallowed */
	int no_cas;           /* -C: items carry no CAS (so fit 8 bytes more) */
	const char *version;  /* "version" answer; NULL = KV_VERSION */
};

struct kv_session;

/* Create a connection's protocol state. Returns 0 or -ENOMEM. Any thread. */
int kv_session_create(struct kv_session **out,
		      const struct kv_session_config *cfg);

/* Free it. NULL is allowed. */
void kv_session_destroy(struct kv_session *s);

/* Parse and execute every complete request in in[0..len), in order,
 * appending responses to out. Returns the bytes consumed: the caller keeps
 * in[ret..len) and calls again with more bytes appended. A storage command
 * is consumed only once its whole value is in `in` (line + value are
 * parsed in place, the value copied once, into the item), so the caller's
 * input buffer must be able to hold kv_session_want() bytes.
 * Returns a negative errno when the connection must be closed: -ENOMEM,
 * -EINVAL (router with no shards), or -EPROTO for input after which
 * memcached closes too (a command line too long, an HTTP request line);
 * responses already in out should still be sent. Sets *want_close to 1
 * after `quit` (out is then complete: close once it is sent), else to 0.
 * Never reads outside in[0..len) (in may be NULL if len is 0), never
 * crashes on any byte sequence. The calling thread is blocked in
 * router->run() while a remote shard works. */
ssize_t kv_session_feed(struct kv_session *s, struct kv_router *r,
			const char *in, size_t len, struct kv_buf *out,
			int *want_close);

/* After a feed: the bytes, counted from the first unconsumed one, the
 * session needs in one piece before it can make progress (a command line
 * plus its whole value; for a get line past 2048 bytes, one more than it
 * has), or 0 when waiting for a line (any buffer over 2048 bytes holds
 * one). The server grows its input buffer to at least this (doubling is
 * wise). */
size_t kv_session_want(const struct kv_session *s);

#endif /* ATOLL_KV_H */
