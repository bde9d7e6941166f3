/* internal.h - private declarations shared by the atoll-kv engine's files.
 *
 * buf.c: appending to struct kv_buf. num.c: memcached's number rules.
 * store.c: the operations a session runs on a shard's owner (through the
 * router), each named kv_store_<verb>; all must run on the owner only.
 */
#ifndef ATOLL_KV_INTERNAL_H
#define ATOLL_KV_INTERNAL_H

#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include <atoll/compiler.h>

#include "kv.h"

/* A command line longer than this (without its newline) that is not a
 * get or gets closes the connection, as in memcached. */
#define KV_LINE_MAX 2048

/* Room for a decimal uint64_t. */
#define KV_U64_DIGITS 20

/* ---- buf.c -------------------------------------------------------------- */

/* Append len bytes; 0 or -ENOMEM. */
int kv_buf_append(struct kv_buf *b, const void *p, size_t len);

/* Write x in decimal at dst (room for KV_U64_DIGITS), return its length. */
size_t kv_u64_to_dec(char *dst, uint64_t x);

/* Append without checking room: the caller reserved it. */
static inline void kv_buf_put(struct kv_buf *b, const void *p, size_t len)
{
	memcpy(b->p + b->len, p, len);
	b->len += len;
}

static inline void kv_buf_put_u64(struct kv_buf *b, uint64_t x)
{
	b->len += kv_u64_to_dec(b->p + b->len, x);
}

/* Append a string literal. */
#define kv_buf_put_lit(b, s) kv_buf_put((b), (s), sizeof(s) - 1)

/* ---- num.c: numbers as memcached's safe_strto* read them ----------------- */

/* The number at p[0..len) by strtoull's rules (leading whitespace, a sign,
 * decimal digits) ending at len or at a whitespace byte; a negative result
 * is refused. Returns false when memcached's safe_strtoull would. */
bool kv_parse_u64(const char *p, size_t len, uint64_t *out);

/* safe_strtoul: as kv_parse_u64 on a 64-bit long, then cut to 32 bits
 * (flags 4294967296 are 0, as in memcached). */
bool kv_parse_u32(const char *p, size_t len, uint32_t *out);

/* safe_strtol: a signed 64-bit number (out of range refused), then cut to
 * 32 bits as memcached does for exptime and value lengths. */
bool kv_parse_i32(const char *p, size_t len, int32_t *out);

/* ---- store.c: operations on one shard, run on its owner ----------------- */

/* A key as the session hands it to a shard: validated, hashed once. */
struct kv_key {
	const char *p;
	uint64_t hash;
	uint8_t len;
	unsigned shard;
};

/* XXH64 of the key with the engine's fixed seed (kv_shard_of uses it). */
uint64_t kv_key_hash(const char *key, size_t len);

/* Which shard a hash belongs to. */
static inline unsigned kv_shard_of_hash(uint64_t hash, unsigned nshards)
{
	return (unsigned)(((hash >> 32) * nshards) >> 32);
}

/* Whether memcached would call an item of this size "too large for cache"
 * with this -I: its item header (48 bytes), key + NUL, value + CRLF, the
 * CAS field and, for non-zero flags, the flags. */
static inline bool kv_item_too_large(size_t nkey, uint32_t flags,
				     uint64_t vlen, bool cas, size_t item_max)
{
	uint64_t total = 48 + nkey + 1 + vlen + 2 + (cas ? 8 : 0) +
			 (flags ? 4 : 0);

	return total > item_max;
}

enum kv_store_result {
	KV_STORED,
	KV_NOT_STORED,
	KV_EXISTS,
	KV_NOT_FOUND,
	KV_DELETED,
	KV_TOUCHED,
	KV_DELTA_OK,     /* incr/decr: the new value is in *value */
	KV_NON_NUMERIC,
	KV_TOO_LARGE,
	KV_NO_MEMORY,
};

enum kv_update_mode {
	KV_SET,
	KV_ADD,
	KV_REPLACE,
	KV_APPEND,
	KV_PREPEND,
	KV_CAS,
};

/* A storage command whose value (vlen bytes, CRLF checked) is at val. */
struct kv_update {
	enum kv_update_mode mode;
	uint32_t flags;
	int32_t exptime;    /* as the client sent it */
	uint64_t cas;       /* KV_CAS only */
	const char *val;
	size_t vlen;
};

/* The VALUE line + data block for key into out if the key is live; a get
 * with touch sets the expiry first (gat/gats). Returns 1 hit, 0 miss,
 * -ENOMEM. */
int kv_store_get(struct kv_store *s, const struct kv_key *k, bool with_cas,
		 bool touch, int32_t exptime, struct kv_buf *out);

enum kv_store_result kv_store_update(struct kv_store *s,
				     const struct kv_key *k,
				     const struct kv_update *u);

/* A storage command the session refused as too large: count it and, for a
 * set (drop), remove the old value so no stale one is served, as in
 * memcached. */
void kv_store_refuse_too_large(struct kv_store *s, const struct kv_key *k,
			       bool drop);

enum kv_store_result kv_store_delete(struct kv_store *s,
				     const struct kv_key *k);

/* incr (incr true) or decr by delta; *value gets the result. */
enum kv_store_result kv_store_delta(struct kv_store *s,
				    const struct kv_key *k, bool incr,
				    uint64_t delta, uint64_t *value);

enum kv_store_result kv_store_touch(struct kv_store *s,
				    const struct kv_key *k, int32_t exptime);

/* flush_all: delay <= 0 drops every item now; otherwise at that time
 * (memcached's expiry rules), replacing any earlier pending flush. count:
 * whether this shard counts the command in cmd_flush (one shard does). */
void kv_store_flush(struct kv_store *s, int32_t delay, bool count);

/* "stats reset": zero the counters (not the item counts and bytes). */
void kv_store_reset_stats(struct kv_store *s);

/* The store's -I and -C, for "stats settings". */
size_t kv_store_item_max(const struct kv_store *s);
bool kv_store_uses_cas(const struct kv_store *s);
bool kv_store_evicts(const struct kv_store *s);

#endif /* ATOLL_KV_INTERNAL_H */
