/* store.c - one atoll-kv shard: items in a growing hash table, an LRU list.
 *
 * Design note. A store is touched only by its owner, so nothing here locks
 * or counts references: an item is one malloc holding its header, key and
 * value followed by "\r\n", so a hit is answered with one copy of value and
 * CRLF together. Items are chained in a power-of-two hash table indexed by
 * the key's XXH64 (the session hashes once, for the shard and the bucket).
 * When the table gets 1.5 items per bucket a table twice the size is made
 * and every later operation moves a few buckets to it (buckets of the old
 * table below rehash_pos have moved), so no single request pays for
 * rehashing millions of items, which would show in the tail latency.
 *
 * Memory: each item charges sizeof(struct kv_item) + key + value + 2 to
 * the shard's mem_limit (malloc's own overhead is not counted). Making
 * room looks at the 5 least recently used items for an expired one to
 * reclaim, else evicts the least recently used (or, with no_evict, fails).
 * A store puts the item at the head of the LRU list; a hit only marks it
 * active, and eviction moves active items from the tail back to the head
 * instead of dropping them (a second chance, memcached's ITEM_ACTIVE).
 * Moving on every hit would touch both neighbours' cache lines: two more
 * cache misses per get on a large store.
 *
 * Time: now() is read once per operation. An item is live while exptime is
 * 0 or later than now; expired items are dropped when met (lazily) or
 * reclaimed for room. A delayed flush_all is a deadline checked at the
 * start of every operation: the first one at or after it drops everything
 * that was stored before, which is what memcached's oldest_live gives.
 */
#include <errno.h>
#include <stdlib.h>

#include <atoll/hash.h>
#include <atoll/list.h>

#include "internal.h"

/* memcached: expiry times up to 30 days are relative, larger ones are unix
 * times. */
#define REALTIME_MAXDELTA (60 * 60 * 24 * 30)

#define HASH_SEED 0x61746f6c6c2d6b76ull /* "atoll-kv" */
#define TABLE_MIN_BUCKETS 1024
#define REHASH_BUCKETS_PER_OP 16
#define EVICT_SEARCH 5 /* LRU tail items looked at for an expired one */
#define EVICT_RESCUES 64 /* active items moved to the head per eviction */

struct kv_item {
	struct kv_item *hnext;  /* hash chain */
	struct list_head lru;   /* head of store->lru = most recently used */
	uint64_t hash;
	uint64_t cas;
	uint32_t exptime;       /* unix seconds; 0 = never */
	uint32_t flags;
	uint32_t nbytes;        /* value length, without the CRLF */
	uint8_t nkey;
	bool fetched;           /* ever read: for the *_unfetched counters */
	bool active;            /* read since it last moved in the LRU */
	char data[];            /* key, value, "\r\n" */
};

struct kv_table {
	struct kv_item **b;
	size_t mask;            /* buckets - 1 */
};

struct kv_store {
	struct kv_table t[2];   /* t[1]: the bigger table while rehashing */
	size_t rehash_pos;      /* buckets of t[0] below this are in t[1] */
	bool rehashing;
	size_t count;
	size_t bytes;           /* charged to items, <= cfg.mem_limit */
	struct list_head lru;
	uint32_t now;           /* the time of the current operation */
	uint32_t flush_at;      /* pending delayed flush_all; 0 = none */
	uint64_t cas_seq;
	struct kv_store_config cfg;
	struct kv_store_stats st; /* counters; totals filled on read */
};

uint64_t kv_key_hash(const char *key, size_t len)
{
	return hash64(key, len, HASH_SEED);
}

unsigned kv_shard_of(const char *key, size_t len, unsigned nshards)
{
	return kv_shard_of_hash(kv_key_hash(key, len), nshards);
}

/* ---- items ---------------------------------------------------------------- */

static inline char *item_val(struct kv_item *it)
{
	return it->data + it->nkey;
}

static inline size_t item_charge_for(size_t nkey, size_t nbytes)
{
	return sizeof(struct kv_item) + nkey + nbytes + 2;
}

static inline size_t item_charge(const struct kv_item *it)
{
	return item_charge_for(it->nkey, it->nbytes);
}

static inline bool item_live(const struct kv_store *s,
			     const struct kv_item *it)
{
	return it->exptime == 0 || it->exptime > s->now;
}

static inline bool item_is(const struct kv_item *it, const struct kv_key *k)
{
	return it->hash == k->hash && it->nkey == k->len &&
	       memcmp(it->data, k->p, k->len) == 0;
}

static uint64_t next_cas(struct kv_store *s)
{
	if (s->cfg.no_cas)
		return 0;
	return ++s->cas_seq * s->cfg.nshards + s->cfg.shard;
}

/* memcached's realtime(): the absolute expiry for a client's exptime. */
static uint32_t expiry_time(const struct kv_store *s, int32_t exptime)
{
	if (exptime == 0)
		return 0;
	if (exptime < 0)
		return 1; /* expired already: now is always later */
	if (exptime > REALTIME_MAXDELTA)
		return (uint32_t)exptime;
	return s->now + (uint32_t)exptime;
}

/* A new unlinked item for key with room for an nbytes value (the CRLF is
 * written here), or NULL. */
static struct kv_item *item_alloc(const struct kv_key *k, uint32_t nbytes)
{
	struct kv_item *it = malloc(item_charge_for(k->len, nbytes));

	if (!it)
		return NULL;
	it->hash = k->hash;
	it->nkey = k->len;
	it->nbytes = nbytes;
	it->fetched = false;
	it->active = false;
	memcpy(it->data, k->p, k->len);
	memcpy(item_val(it) + nbytes, "\r\n", 2);
	return it;
}

/* ---- hash table ----------------------------------------------------------- */

static int table_init(struct kv_table *t, size_t buckets)
{
	t->b = calloc(buckets, sizeof(*t->b));
	if (!t->b)
		return -ENOMEM;
	t->mask = buckets - 1;
	return 0;
}

/* The chain a hash lives in now: the new table once its old bucket moved. */
static struct kv_item **bucket_of(struct kv_store *s, uint64_t hash)
{
	size_t i = hash & s->t[0].mask;

	if (s->rehashing && i < s->rehash_pos)
		return &s->t[1].b[hash & s->t[1].mask];
	return &s->t[0].b[i];
}

/* The link pointing at key's item, or at the chain's final NULL. */
static struct kv_item **find_slot(struct kv_store *s, const struct kv_key *k)
{
	struct kv_item **slot = bucket_of(s, k->hash);

	while (*slot && !item_is(*slot, k))
		slot = &(*slot)->hnext;
	return slot;
}

static struct kv_item **slot_of_item(struct kv_store *s,
				     const struct kv_item *it)
{
	struct kv_item **slot = bucket_of(s, it->hash);

	while (*slot != it)
		slot = &(*slot)->hnext;
	return slot;
}

static void rehash_step(struct kv_store *s)
{
	for (int n = 0; n < REHASH_BUCKETS_PER_OP; n++) {
		struct kv_item *it = s->t[0].b[s->rehash_pos], *next;

		for (; it; it = next) {
			struct kv_item **dst = &s->t[1].b[it->hash &
							  s->t[1].mask];

			next = it->hnext;
			it->hnext = *dst;
			*dst = it;
		}
		s->t[0].b[s->rehash_pos] = NULL;
		if (++s->rehash_pos > s->t[0].mask) {
			free(s->t[0].b);
			s->t[0] = s->t[1];
			s->t[1].b = NULL;
			s->rehashing = false;
			return;
		}
	}
}

/* Start growing when chains average 1.5; without memory for a bigger table
 * chains just get longer. */
static void maybe_grow(struct kv_store *s)
{
	size_t buckets = s->t[0].mask + 1;

	if (s->rehashing || s->count <= buckets + buckets / 2)
		return;
	if (buckets > SIZE_MAX / 2 / sizeof(*s->t[0].b) ||
	    table_init(&s->t[1], buckets * 2))
		return;
	s->rehash_pos = 0;
	s->rehashing = true;
}

/* ---- linking -------------------------------------------------------------- */

static void lru_to_head(struct kv_store *s, struct kv_item *it)
{
	list_del(&it->lru);
	list_add(&s->lru, &it->lru);
}

static void item_link(struct kv_store *s, struct kv_item *it)
{
	struct kv_item **slot = bucket_of(s, it->hash);

	it->hnext = *slot;
	*slot = it;
	list_add(&s->lru, &it->lru);
	s->bytes += item_charge(it);
	s->count++;
	s->st.total_items++;
	maybe_grow(s);
}

static void item_unlink_at(struct kv_store *s, struct kv_item **slot)
{
	struct kv_item *it = *slot;

	*slot = it->hnext;
	list_del(&it->lru);
	s->bytes -= item_charge(it);
	s->count--;
	free(it);
}

/* Put nu where old is (same key), old is freed. */
static void item_replace(struct kv_store *s, struct kv_item *old,
			 struct kv_item *nu)
{
	struct kv_item **slot = slot_of_item(s, old);

	nu->hnext = old->hnext;
	*slot = nu;
	list_del(&old->lru);
	list_add(&s->lru, &nu->lru);
	s->bytes += item_charge(nu);
	s->bytes -= item_charge(old);
	s->st.total_items++;
	free(old);
}

/* The link to key's item if it is live, else NULL; an expired item is
 * dropped on the way (*expired). */
static struct kv_item **find_live_slot(struct kv_store *s,
				       const struct kv_key *k, bool *expired)
{
	struct kv_item **slot = find_slot(s, k);

	*expired = false;
	if (!*slot)
		return NULL;
	if (likely(item_live(s, *slot)))
		return slot;
	*expired = true;
	item_unlink_at(s, slot);
	return NULL;
}

static struct kv_item *find(struct kv_store *s, const struct kv_key *k)
{
	bool expired;
	struct kv_item **slot = find_live_slot(s, k, &expired);

	return slot ? *slot : NULL;
}

/* ---- memory --------------------------------------------------------------- */

static struct kv_item *lru_tail(struct kv_store *s)
{
	return list_last_entry(&s->lru, struct kv_item, lru);
}

/* An expired item among the LRU tail's first few (never keep), or NULL. */
static struct kv_item *find_expired(struct kv_store *s,
				    const struct kv_item *keep)
{
	struct list_head *pos = s->lru.prev;

	for (int n = 0; pos != &s->lru && n < EVICT_SEARCH;
	     pos = pos->prev, n++) {
		struct kv_item *it = list_entry(pos, struct kv_item, lru);

		if (it != keep && !item_live(s, it))
			return it;
	}
	return NULL;
}

/* The least recently used item, never keep: active items at the tail go
 * back to the head, inactive, a bounded number of times. NULL if keep is
 * all there is. */
static struct kv_item *find_lru(struct kv_store *s, const struct kv_item *keep)
{
	for (int n = 0; n < EVICT_RESCUES && !list_empty(&s->lru); n++) {
		struct kv_item *it = lru_tail(s);

		if (it != keep && !it->active)
			return it;
		it->active = false;
		lru_to_head(s, it);
	}
	if (list_empty(&s->lru) || lru_tail(s) == keep)
		return NULL;
	return lru_tail(s);
}

/* The item to drop for room, never `keep`: an expired one, else (when
 * evicting is allowed) the least recently used. */
static struct kv_item *pick_victim(struct kv_store *s,
				   const struct kv_item *keep, bool *expired)
{
	struct kv_item *it = find_expired(s, keep);

	*expired = it != NULL;
	if (it || s->cfg.no_evict)
		return it;
	return find_lru(s, keep);
}

/* Make bytes + need fit mem_limit. Returns false if it cannot. */
static bool make_room(struct kv_store *s, size_t need,
		      const struct kv_item *keep)
{
	while (s->bytes + need > s->cfg.mem_limit) {
		bool expired;
		struct kv_item *victim = pick_victim(s, keep, &expired);

		if (!victim)
			return false;
		if (expired) {
			s->st.reclaimed++;
			s->st.expired_unfetched += !victim->fetched;
		} else {
			s->st.evictions++;
			s->st.evicted_unfetched += !victim->fetched;
		}
		item_unlink_at(s, slot_of_item(s, victim));
	}
	return true;
}

/* Room for an item of new_charge bytes that replaces old (may be NULL). */
static bool make_room_for(struct kv_store *s, size_t new_charge,
			  const struct kv_item *old)
{
	size_t old_charge = old ? item_charge(old) : 0;

	if (new_charge > s->cfg.mem_limit)
		return false;
	return make_room(s, new_charge > old_charge ? new_charge - old_charge
						    : 0, old);
}

/* ---- operations ----------------------------------------------------------- */

static void flush_now(struct kv_store *s)
{
	struct list_head *pos, *tmp;

	list_for_each_safe(pos, tmp, &s->lru)
		free(list_entry(pos, struct kv_item, lru));
	list_init(&s->lru);
	memset(s->t[0].b, 0, (s->t[0].mask + 1) * sizeof(*s->t[0].b));
	if (s->rehashing)
		memset(s->t[1].b, 0, (s->t[1].mask + 1) * sizeof(*s->t[1].b));
	s->count = 0;
	s->bytes = 0;
	s->flush_at = 0;
}

/* Every operation starts here: read the clock once, run a due flush_all,
 * move a few buckets if the table is growing. */
static void op_begin(struct kv_store *s)
{
	s->now = s->cfg.now(s->cfg.clock_arg);
	if (unlikely(s->flush_at) && s->now >= s->flush_at)
		flush_now(s);
	if (unlikely(s->rehashing))
		rehash_step(s);
}

static int put_value(struct kv_buf *out, const struct kv_item *it,
		     bool with_cas)
{
	size_t need = sizeof("VALUE ") + it->nkey + 2 * (1 + KV_U64_DIGITS) +
		      (with_cas ? 1 + KV_U64_DIGITS : 0) + 2 + it->nbytes + 2;

	if (kv_buf_reserve(out, need))
		return -ENOMEM;
	kv_buf_put_lit(out, "VALUE ");
	kv_buf_put(out, it->data, it->nkey);
	out->p[out->len++] = ' ';
	kv_buf_put_u64(out, it->flags);
	out->p[out->len++] = ' ';
	kv_buf_put_u64(out, it->nbytes);
	if (with_cas) {
		out->p[out->len++] = ' ';
		kv_buf_put_u64(out, it->cas);
	}
	kv_buf_put_lit(out, "\r\n");
	kv_buf_put(out, it->data + it->nkey, it->nbytes + 2);
	return 0;
}

int kv_store_get(struct kv_store *s, const struct kv_key *k, bool with_cas,
		 bool touch, int32_t exptime, struct kv_buf *out)
{
	struct kv_item **slot, *it;
	bool expired;

	op_begin(s);
	slot = find_live_slot(s, k, &expired);
	it = slot ? *slot : NULL;
	if (touch) {
		s->st.cmd_touch++;
		if (!it) {
			s->st.touch_misses++;
			return 0;
		}
		s->st.touch_hits++;
		it->exptime = expiry_time(s, exptime);
	} else {
		s->st.cmd_get++;
		if (!it) {
			s->st.get_misses++;
			s->st.get_expired += expired;
			return 0;
		}
		s->st.get_hits++;
	}
	it->fetched = true;
	it->active = true;
	return put_value(out, it, with_cas) ?: 1;
}

/* Whether mode may store given the live item old (NULL if none); the
 * failure result otherwise, counted. */
static enum kv_store_result update_allowed(struct kv_store *s,
					   const struct kv_item *old,
					   const struct kv_update *u)
{
	switch (u->mode) {
	case KV_SET:
		return KV_STORED;
	case KV_ADD:
		return old ? KV_NOT_STORED : KV_STORED;
	case KV_REPLACE:
	case KV_APPEND:
	case KV_PREPEND:
		return old ? KV_STORED : KV_NOT_STORED;
	case KV_CAS:
		if (!old) {
			s->st.cas_misses++;
			return KV_NOT_FOUND;
		}
		if (old->cas != u->cas) {
			s->st.cas_badval++;
			return KV_EXISTS;
		}
		return KV_STORED;
	}
	return KV_NOT_STORED;
}

/* The item u would store, filled (value, flags, expiry; not linked), or
 * NULL with *res saying why. append/prepend keep old's flags and expiry. */
static struct kv_item *update_build(struct kv_store *s, const struct kv_key *k,
				    const struct kv_update *u,
				    struct kv_item *old,
				    enum kv_store_result *res)
{
	bool joins = u->mode == KV_APPEND || u->mode == KV_PREPEND;
	uint64_t nbytes = u->vlen + (joins ? old->nbytes : 0);
	uint32_t flags = joins ? old->flags : u->flags;
	struct kv_item *it;
	char *val;

	if (kv_item_too_large(k->len, flags, nbytes, !s->cfg.no_cas,
			      s->cfg.item_max)) {
		/* memcached: a join that outgrows an item is NOT_STORED */
		*res = joins ? KV_NOT_STORED : KV_TOO_LARGE;
		return NULL;
	}
	if (!make_room_for(s, item_charge_for(k->len, nbytes), old) ||
	    !(it = item_alloc(k, (uint32_t)nbytes))) {
		*res = joins ? KV_NOT_STORED : KV_NO_MEMORY;
		return NULL;
	}
	val = item_val(it);
	if (u->mode == KV_APPEND) {
		memcpy(val, item_val(old), old->nbytes);
		memcpy(val + old->nbytes, u->val, u->vlen);
	} else if (u->mode == KV_PREPEND) {
		memcpy(val, u->val, u->vlen);
		memcpy(val + u->vlen, item_val(old), old->nbytes);
	} else {
		memcpy(val, u->val, u->vlen);
	}
	it->flags = flags;
	it->exptime = joins ? old->exptime : expiry_time(s, u->exptime);
	it->cas = next_cas(s);
	return it;
}

enum kv_store_result kv_store_update(struct kv_store *s,
				     const struct kv_key *k,
				     const struct kv_update *u)
{
	enum kv_store_result res;
	struct kv_item *old, *it;

	op_begin(s);
	s->st.cmd_set++;
	old = find(s, k);
	res = update_allowed(s, old, u);
	if (res != KV_STORED)
		return res;
	it = update_build(s, k, u, old, &res);
	if (!it) {
		if (res == KV_TOO_LARGE)
			s->st.store_too_large++;
		if (res == KV_NO_MEMORY)
			s->st.store_no_memory++;
		/* a failed set leaves no stale value (memcached) */
		if (u->mode == KV_SET && old)
			item_unlink_at(s, slot_of_item(s, old));
		return res;
	}
	if (u->mode == KV_CAS)
		s->st.cas_hits++;
	if (old)
		item_replace(s, old, it);
	else
		item_link(s, it);
	return KV_STORED;
}

void kv_store_refuse_too_large(struct kv_store *s, const struct kv_key *k,
			       bool drop)
{
	struct kv_item *old;

	op_begin(s);
	s->st.store_too_large++;
	old = drop ? find(s, k) : NULL;
	if (old)
		item_unlink_at(s, slot_of_item(s, old));
}

enum kv_store_result kv_store_delete(struct kv_store *s,
				     const struct kv_key *k)
{
	struct kv_item **slot;
	bool expired;

	op_begin(s);
	slot = find_live_slot(s, k, &expired);
	if (!slot) {
		s->st.delete_misses++;
		return KV_NOT_FOUND;
	}
	item_unlink_at(s, slot);
	s->st.delete_hits++;
	return KV_DELETED;
}

/* Write the new number into it in place, padded with spaces to the old
 * length as memcached does, or into a new item when it has more digits. */
static enum kv_store_result delta_store(struct kv_store *s,
					const struct kv_key *k,
					struct kv_item *it, uint64_t value)
{
	char digits[KV_U64_DIGITS];
	size_t n = kv_u64_to_dec(digits, value);
	struct kv_item *nu;

	if (n <= it->nbytes) {
		memcpy(item_val(it), digits, n);
		memset(item_val(it) + n, ' ', it->nbytes - n);
		it->cas = next_cas(s);
		it->active = true;
		return KV_DELTA_OK;
	}
	if (!make_room_for(s, item_charge_for(k->len, n), it) ||
	    !(nu = item_alloc(k, (uint32_t)n)))
		return KV_NO_MEMORY;
	memcpy(item_val(nu), digits, n);
	nu->flags = it->flags;
	nu->exptime = it->exptime;
	nu->cas = next_cas(s);
	item_replace(s, it, nu);
	return KV_DELTA_OK;
}

enum kv_store_result kv_store_delta(struct kv_store *s,
				    const struct kv_key *k, bool incr,
				    uint64_t delta, uint64_t *value)
{
	struct kv_item *it;
	uint64_t v;

	op_begin(s);
	it = find(s, k);
	if (!it) {
		if (incr)
			s->st.incr_misses++;
		else
			s->st.decr_misses++;
		return KV_NOT_FOUND;
	}
	if (it->nbytes == 0 || !kv_parse_u64(item_val(it), it->nbytes, &v))
		return KV_NON_NUMERIC;
	if (incr) {
		v += delta; /* wraps, as memcached's 64-bit counters do */
		s->st.incr_hits++;
	} else {
		v = delta > v ? 0 : v - delta;
		s->st.decr_hits++;
	}
	*value = v;
	return delta_store(s, k, it, v);
}

enum kv_store_result kv_store_touch(struct kv_store *s,
				    const struct kv_key *k, int32_t exptime)
{
	struct kv_item *it;

	op_begin(s);
	s->st.cmd_touch++;
	it = find(s, k);
	if (!it) {
		s->st.touch_misses++;
		return KV_NOT_FOUND;
	}
	it->exptime = expiry_time(s, exptime);
	it->active = true;
	s->st.touch_hits++;
	return KV_TOUCHED;
}

void kv_store_flush(struct kv_store *s, int32_t delay, bool count)
{
	op_begin(s);
	s->st.cmd_flush += count;
	if (delay > 0)
		s->flush_at = expiry_time(s, delay);
	if (delay <= 0 || s->flush_at <= s->now)
		flush_now(s);
}

void kv_store_reset_stats(struct kv_store *s)
{
	memset(&s->st, 0, sizeof(s->st));
}

size_t kv_store_item_max(const struct kv_store *s)
{
	return s->cfg.item_max;
}

bool kv_store_uses_cas(const struct kv_store *s)
{
	return !s->cfg.no_cas;
}

bool kv_store_evicts(const struct kv_store *s)
{
	return !s->cfg.no_evict;
}

void kv_store_get_stats(const struct kv_store *s, struct kv_store_stats *out)
{
	*out = s->st;
	out->curr_items = s->count;
	out->bytes = s->bytes;
	out->limit_maxbytes = s->cfg.mem_limit;
	out->hash_buckets = s->t[0].mask + 1 +
			    (s->rehashing ? s->t[1].mask + 1 : 0);
}

/* ---- life ------------------------------------------------------------------ */

int kv_store_create(struct kv_store **out, const struct kv_store_config *cfg)
{
	struct kv_store *s;

	if (!cfg->now || cfg->mem_limit == 0 || cfg->item_max > KV_ITEM_MAX_LIMIT)
		return -EINVAL;
	s = calloc(1, sizeof(*s));
	if (!s)
		return -ENOMEM;
	if (table_init(&s->t[0], TABLE_MIN_BUCKETS)) {
		free(s);
		return -ENOMEM;
	}
	s->cfg = *cfg;
	if (s->cfg.nshards == 0)
		s->cfg.nshards = 1;
	if (s->cfg.item_max == 0)
		s->cfg.item_max = KV_ITEM_MAX_DEFAULT;
	list_init(&s->lru);
	*out = s;
	return 0;
}

void kv_store_destroy(struct kv_store *s)
{
	if (!s)
		return;
	flush_now(s);
	free(s->t[0].b);
	free(s->t[1].b);
	free(s);
}
