/* ring.h - bounded lock-free rings of fixed-size slots, shareable between
 * processes.
 *
 * Owns: nothing but the memory the caller hands to ring_*_init(). The
 * library never allocates. The ring structure holds no pointers, only
 * indices, so it works unchanged in memory that two processes map at
 * different addresses (a memfd mapped MAP_SHARED). The caller's pointer to
 * that memory is the handle.
 *
 * Two kinds:
 *
 *   struct ring_spsc  one producer, one consumer. Slots are RING_SLOT_SIZE
 *                     (64) bytes, all payload. Producer and consumer each
 *                     keep a cached copy of the other's index and touch
 *                     the other's cache line only when that copy says the
 *                     ring is full (resp. empty). Batches and zero-copy
 *                     reserve/commit, peek/release publish once per batch.
 *   struct ring_mpsc  many producers, one consumer. Each 64-byte slot holds
 *                     an 8-byte sequence number and RING_MPSC_MSG_SIZE (56)
 *                     bytes of payload (a bounded queue in Vyukov's style:
 *                     producers claim positions with a CAS on the tail, the
 *                     sequence number says whether a slot is free, full or
 *                     being written).
 *
 * Thread safety:
 *   SPSC: at any time at most one producer (thread or process) calls the
 *   producer functions (push, push_batch, reserve, commit) and at most one
 *   consumer calls the consumer functions (pop, pop_batch, peek, release).
 *   Handing a role to another thread needs the caller's own synchronisation
 *   (a lock, a join, a process exit observed through wait()).
 *   MPSC: any number of producers concurrently; at most one consumer, as
 *   above.
 *   ring_*_count(), ring_*_empty() and ring_*_full_count() may be called by
 *   anyone at any time; they return a snapshot that may already be stale.
 *   ring_*_init() must not run concurrently with any other call on the
 *   same ring. ring_*_attach() may run while the ring is in use.
 * Context: every function is non-blocking and async-signal-safe, callable
 * from any context (vcore, uthread, plain thread, signal handler).
 *
 * Errors: negative errno, never errno itself.
 *   -EINVAL  bad argument (size, alignment, slot count)
 *   -EPROTO  attach: the memory does not hold a ring of this kind and
 *            version, or its recorded geometry is inconsistent
 *   -EAGAIN  push: ring full (always counted, see ring_*_full_count());
 *            pop: ring empty (not counted)
 * Batch functions return how many messages they moved (0 .. n); a producer
 * batch that moves fewer than asked counts once as "full".
 *
 * Memory layout (offsets in bytes; all integers native-endian; the memory
 * must be CACHE_LINE (64) aligned, mmap() memory always is):
 *
 *   both kinds, line 0 (offset 0, written by init, read-only after):
 *      0  u32 magic         RING_SPSC_MAGIC or RING_MPSC_MAGIC, stored
 *                           last by init (release), so an attacher that
 *                           sees it sees the whole initialised ring
 *      4  u16 version       RING_VERSION
 *      6  u16 slot_size     RING_SLOT_SIZE
 *      8  u32 nslots        power of two, 2 .. RING_MAX_SLOTS
 *     12  u32 reserved      0
 *     16  u64 total_size    ring_*_size(nslots)
 *
 *   SPSC:
 *     64  producer line: u64 tail (next position to write, free-running),
 *                        u64 head_cache (producer's copy of head),
 *                        u64 full (times the producer found the ring full)
 *    128  consumer line: u64 head (next position to read, free-running),
 *                        u64 tail_cache (consumer's copy of tail)
 *    192  nslots slots of 64 bytes; position p lives in slot p & (nslots-1)
 *
 *   MPSC:
 *     64  producer line: u64 tail (next position to claim, free-running),
 *                        u64 full (times a producer found the ring full)
 *    128  consumer line: u64 head (next position to read; published for
 *                        count() only, possibly once per batch)
 *    192  nslots slots of 64 bytes: u64 seq, then 56 bytes of payload.
 *         seq == p:          slot free for position p
 *         seq == p + 1:      message for position p is ready
 *         seq == p + nslots: consumed, free for position p + nslots
 *
 *   Size: ring_*_size(n) = 192 + 64 * n bytes.
 *   Indices are 64-bit and free-running; they do not wrap in practice.
 */
#ifndef ATOLL_RING_H
#define ATOLL_RING_H

#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <atoll/atomic.h>
#include <atoll/compiler.h>

#define RING_SLOT_SIZE CACHE_LINE
#define RING_SPSC_MSG_SIZE RING_SLOT_SIZE		/* 64 bytes */
#define RING_MPSC_MSG_SIZE (RING_SLOT_SIZE - 8)		/* 56 bytes */
#define RING_MIN_SLOTS 2u
#define RING_MAX_SLOTS (1u << 28)
#define RING_HDR_SIZE (3 * CACHE_LINE)

#define RING_SPSC_MAGIC 0x53527441u	/* "AtRS" */
#define RING_MPSC_MAGIC 0x4d527441u	/* "AtRM" */
#define RING_VERSION 1

/* Line 0 of both kinds: identity and geometry, read-only after init. */
struct ring_geom {
	uint32_t magic;
	uint16_t version;
	uint16_t slot_size;
	uint32_t nslots;
	uint32_t reserved;
	uint64_t total_size;
} CACHE_ALIGNED;

/* ---- SPSC --------------------------------------------------------------- */

struct ring_slot {
	unsigned char data[RING_SLOT_SIZE];
} CACHE_ALIGNED;

/* Written only by the producer; tail is read by the consumer. */
struct ring_spsc_prod {
	uint64_t tail;
	uint64_t head_cache;
	uint64_t full;
} CACHE_ALIGNED;

/* Written only by the consumer; head is read by the producer. */
struct ring_spsc_cons {
	uint64_t head;
	uint64_t tail_cache;
} CACHE_ALIGNED;

struct ring_spsc {
	struct ring_geom geom;
	struct ring_spsc_prod prod;
	struct ring_spsc_cons cons;
	struct ring_slot slots[];
};

BUILD_ASSERT(sizeof(struct ring_slot) == RING_SLOT_SIZE);
BUILD_ASSERT(offsetof(struct ring_spsc, prod) == 64);
BUILD_ASSERT(offsetof(struct ring_spsc, cons) == 128);
BUILD_ASSERT(offsetof(struct ring_spsc, slots) == RING_HDR_SIZE);

/* Bytes needed for a ring of nslots slots, or 0 if nslots is not a power of
 * two in [RING_MIN_SLOTS, RING_MAX_SLOTS]. Any context. */
size_t ring_spsc_size(uint32_t nslots);

/* Initialise an empty ring in the caller's memory r (CACHE_LINE aligned,
 * memsize bytes, at least ring_spsc_size(nslots)). Returns 0 or -EINVAL.
 * No other call may use the ring meanwhile. */
int ring_spsc_init(struct ring_spsc *r, size_t memsize, uint32_t nslots);

/* Check that the memsize bytes at r hold an initialised SPSC ring of this
 * version that fits in them (e.g. in a second process mapping the same
 * memfd). Returns 0, -EINVAL (NULL, misaligned, memsize smaller than the
 * header) or -EPROTO (wrong magic, version or geometry). */
int ring_spsc_attach(const struct ring_spsc *r, size_t memsize);

/* Number of slots. Any context. */
static inline uint32_t ring_spsc_nslots(const struct ring_spsc *r)
{
	return r->geom.nslots;
}

/* Free slots as the producer sees them, refreshing its copy of head when
 * that copy shows fewer than want. Producer only. */
static inline uint32_t ring_spsc__free(struct ring_spsc *r, uint64_t tail,
				       uint32_t want)
{
	uint32_t n = r->geom.nslots;
	uint32_t nfree = n - (uint32_t)(tail - r->prod.head_cache);

	if (nfree < want) {
		/* Acquire pairs with the consumer's store_release of head
		 * (pop/pop_batch/release): its reads of the slots it freed
		 * happen before we overwrite them. */
		r->prod.head_cache = load_acquire(&r->cons.head);
		nfree = n - (uint32_t)(tail - r->prod.head_cache);
	}
	return nfree;
}

/* Messages ready as the consumer sees them, refreshing its copy of tail
 * when that copy shows fewer than want. Consumer only. */
static inline uint32_t ring_spsc__avail(struct ring_spsc *r, uint64_t head,
					uint32_t want)
{
	uint32_t avail = (uint32_t)(r->cons.tail_cache - head);

	if (avail < want) {
		/* Acquire pairs with the producer's store_release of tail
		 * (push/push_batch/commit): the slot contents it wrote are
		 * visible before we read them. */
		r->cons.tail_cache = load_acquire(&r->prod.tail);
		avail = (uint32_t)(r->cons.tail_cache - head);
	}
	return avail;
}

/* Count a full ring. Producer only; others read it with a relaxed load. */
static inline void ring_spsc__count_full(struct ring_spsc *r)
{
	store_relaxed(&r->prod.full, load_relaxed(&r->prod.full) + 1);
}

/* Copy one message (RING_SPSC_MSG_SIZE bytes at msg) in and publish it.
 * Returns 0, or -EAGAIN if the ring is full (counted). Producer only. */
static inline int ring_spsc_push(struct ring_spsc *r, const void *msg)
{
	uint64_t tail = load_relaxed(&r->prod.tail);	/* our own index */

	if (unlikely(ring_spsc__free(r, tail, 1) == 0)) {
		ring_spsc__count_full(r);
		return -EAGAIN;
	}
	memcpy(&r->slots[tail & (r->geom.nslots - 1)], msg, RING_SLOT_SIZE);
	/* Release pairs with the consumer's load_acquire of tail in
	 * ring_spsc__avail(): the slot is written before it is published. */
	store_release(&r->prod.tail, tail + 1);
	return 0;
}

/* Copy up to n messages (an array of n * RING_SPSC_MSG_SIZE bytes) in and
 * publish them with one store. Returns how many were pushed (0 .. n); fewer
 * than n counts once as full. Producer only. */
static inline unsigned int ring_spsc_push_batch(struct ring_spsc *r,
						const void *msgs,
						unsigned int n)
{
	const unsigned char *src = msgs;
	uint64_t tail = load_relaxed(&r->prod.tail);	/* our own index */
	uint32_t mask = r->geom.nslots - 1;
	uint32_t nfree = ring_spsc__free(r, tail, n);
	unsigned int k = n < nfree ? n : nfree;

	for (unsigned int i = 0; i < k; i++)
		memcpy(&r->slots[(tail + i) & mask], src + (size_t)i *
		       RING_SLOT_SIZE, RING_SLOT_SIZE);
	if (k)
		/* Release pairs with the consumer's load_acquire of tail in
		 * ring_spsc__avail(): all k slots are written first. */
		store_release(&r->prod.tail, tail + k);
	if (k < n)
		ring_spsc__count_full(r);
	return k;
}

/* Zero-copy produce, step 1. *n says how many slots the caller wants; on
 * return it says how many contiguous free slots start at the returned
 * pointer (1 .. want), or 0 with NULL if the ring is full (counted; not
 * counted when want is 0). A run stops at the end of the slot array, so a
 * wrapping batch takes two reserve/commit rounds. Reserving again before
 * commit returns the same slots. Producer only. */
static inline struct ring_slot *ring_spsc_reserve(struct ring_spsc *r,
						  unsigned int *n)
{
	uint64_t tail = load_relaxed(&r->prod.tail);	/* our own index */
	uint32_t nslots = r->geom.nslots;
	uint32_t idx = (uint32_t)tail & (nslots - 1);
	uint32_t nfree = ring_spsc__free(r, tail, *n);
	uint32_t k = *n < nfree ? *n : nfree;

	if (k > nslots - idx)
		k = nslots - idx;
	if (k == 0 && *n > 0)
		ring_spsc__count_full(r);
	*n = k;
	if (k == 0)
		return NULL;
	return &r->slots[idx];
}

/* Zero-copy produce, step 2: publish the first n slots of the last
 * reservation (n <= the count it returned) with one store. Producer only. */
static inline void ring_spsc_commit(struct ring_spsc *r, unsigned int n)
{
	uint64_t tail = load_relaxed(&r->prod.tail);	/* our own index */

	/* Release pairs with the consumer's load_acquire of tail in
	 * ring_spsc__avail(): the caller's writes to the slots come first. */
	store_release(&r->prod.tail, tail + n);
}

/* Copy the oldest message out (RING_SPSC_MSG_SIZE bytes to msg) and free
 * its slot. Returns 0 or -EAGAIN if the ring is empty. Consumer only. */
static inline int ring_spsc_pop(struct ring_spsc *r, void *msg)
{
	uint64_t head = load_relaxed(&r->cons.head);	/* our own index */

	if (ring_spsc__avail(r, head, 1) == 0)
		return -EAGAIN;
	memcpy(msg, &r->slots[head & (r->geom.nslots - 1)], RING_SLOT_SIZE);
	/* Release pairs with the producer's load_acquire of head in
	 * ring_spsc__free(): our read of the slot is done before it is
	 * reused. */
	store_release(&r->cons.head, head + 1);
	return 0;
}

/* Copy up to n messages out (to an array of n * RING_SPSC_MSG_SIZE bytes)
 * and free their slots with one store. Returns how many (0 .. n).
 * Consumer only. */
static inline unsigned int ring_spsc_pop_batch(struct ring_spsc *r,
					       void *msgs, unsigned int n)
{
	unsigned char *dst = msgs;
	uint64_t head = load_relaxed(&r->cons.head);	/* our own index */
	uint32_t mask = r->geom.nslots - 1;
	uint32_t avail = ring_spsc__avail(r, head, n);
	unsigned int k = n < avail ? n : avail;

	for (unsigned int i = 0; i < k; i++)
		memcpy(dst + (size_t)i * RING_SLOT_SIZE,
		       &r->slots[(head + i) & mask], RING_SLOT_SIZE);
	if (k)
		/* Release pairs with the producer's load_acquire of head in
		 * ring_spsc__free(): our reads are done before reuse. */
		store_release(&r->cons.head, head + k);
	return k;
}

/* Zero-copy consume, step 1. *n says how many messages the caller wants;
 * on return it says how many contiguous ready slots start at the returned
 * pointer, or 0 with NULL if the ring is empty. Runs stop at the end of the
 * slot array, as for reserve. Consumer only. */
static inline const struct ring_slot *ring_spsc_peek(struct ring_spsc *r,
						     unsigned int *n)
{
	uint64_t head = load_relaxed(&r->cons.head);	/* our own index */
	uint32_t nslots = r->geom.nslots;
	uint32_t idx = (uint32_t)head & (nslots - 1);
	uint32_t avail = ring_spsc__avail(r, head, *n);
	uint32_t k = *n < avail ? *n : avail;

	if (k > nslots - idx)
		k = nslots - idx;
	*n = k;
	return k ? &r->slots[idx] : NULL;
}

/* Zero-copy consume, step 2: free the first n slots of the last peek
 * (n <= the count it returned) with one store. Consumer only. */
static inline void ring_spsc_release(struct ring_spsc *r, unsigned int n)
{
	uint64_t head = load_relaxed(&r->cons.head);	/* our own index */

	/* Release pairs with the producer's load_acquire of head in
	 * ring_spsc__free(): the caller's reads of the slots come first. */
	store_release(&r->cons.head, head + n);
}

/* Messages in the ring (0 .. nslots), a snapshot. Any context. */
static inline uint32_t ring_spsc_count(const struct ring_spsc *r)
{
	/* Acquire keeps the tail load below from moving above this one
	 * (pairs with the consumer's store_release of head); head <= tail
	 * at all times, so tail read later is never behind. */
	uint64_t head = load_acquire(&r->cons.head);
	uint64_t tail = load_relaxed(&r->prod.tail);
	uint64_t n = tail - head;

	return n > r->geom.nslots ? r->geom.nslots : (uint32_t)n;
}

static inline bool ring_spsc_empty(const struct ring_spsc *r)
{
	return ring_spsc_count(r) == 0;
}

/* How many times a producer found the ring full. Any context. */
static inline uint64_t ring_spsc_full_count(const struct ring_spsc *r)
{
	return load_relaxed(&r->prod.full);
}

/* ---- MPSC --------------------------------------------------------------- */

struct ring_mpsc_slot {
	uint64_t seq;
	unsigned char data[RING_MPSC_MSG_SIZE];
} CACHE_ALIGNED;

/* Shared by all producers (CAS on tail; fetch_add on full). */
struct ring_mpsc_prod {
	uint64_t tail;
	uint64_t full;
} CACHE_ALIGNED;

/* Written only by the consumer. */
struct ring_mpsc_cons {
	uint64_t head;
} CACHE_ALIGNED;

struct ring_mpsc {
	struct ring_geom geom;
	struct ring_mpsc_prod prod;
	struct ring_mpsc_cons cons;
	struct ring_mpsc_slot slots[];
};

BUILD_ASSERT(sizeof(struct ring_mpsc_slot) == RING_SLOT_SIZE);
BUILD_ASSERT(offsetof(struct ring_mpsc_slot, data) == 8);
BUILD_ASSERT(offsetof(struct ring_mpsc, prod) == 64);
BUILD_ASSERT(offsetof(struct ring_mpsc, cons) == 128);
BUILD_ASSERT(offsetof(struct ring_mpsc, slots) == RING_HDR_SIZE);

/* As ring_spsc_size/init/attach, for the MPSC kind. */
size_t ring_mpsc_size(uint32_t nslots);
int ring_mpsc_init(struct ring_mpsc *r, size_t memsize, uint32_t nslots);
int ring_mpsc_attach(const struct ring_mpsc *r, size_t memsize);

static inline uint32_t ring_mpsc_nslots(const struct ring_mpsc *r)
{
	return r->geom.nslots;
}

/* Claim k consecutive positions; returns the first, or UINT64_MAX with
 * *k = 0 when not even one slot is free. *k may shrink when fewer than
 * asked are free. Producers, concurrently. */
static inline uint64_t ring_mpsc__claim(struct ring_mpsc *r, unsigned int *k)
{
	uint32_t mask = r->geom.nslots - 1;
	uint64_t pos = load_relaxed(&r->prod.tail);
	unsigned int want = *k;

	for (;;) {
		uint64_t last = pos + want - 1;
		/* Acquire pairs with the consumer's store_release of seq
		 * (pop/pop_batch): the consumer has read this slot's old
		 * message, and every earlier slot's (it frees in order),
		 * before we overwrite them. */
		uint64_t seq = load_acquire(&r->slots[last & mask].seq);
		int64_t diff = (int64_t)(seq - last);

		if (diff == 0) {
			/* Relaxed: the CAS only hands out positions; the
			 * slot contents are ordered by seq. */
			if (cas_relaxed(&r->prod.tail, &pos, pos + want))
				break;
		} else if (diff < 0) {
			/* The last slot still holds an unread message. */
			if (want == 1) {
				*k = 0;
				return UINT64_MAX;
			}
			want = (want + 1) / 2;
		} else {
			/* Another producer took it; catch up. */
			pos = load_relaxed(&r->prod.tail);
		}
	}
	*k = want;
	return pos;
}

static inline void ring_mpsc__fill(struct ring_mpsc *r, uint64_t pos,
				   const void *msg)
{
	struct ring_mpsc_slot *s = &r->slots[pos & (r->geom.nslots - 1)];

	memcpy(s->data, msg, RING_MPSC_MSG_SIZE);
	/* Release pairs with the consumer's load_acquire of seq: the
	 * payload is written before the slot reads as ready. */
	store_release(&s->seq, pos + 1);
}

/* Copy one message (RING_MPSC_MSG_SIZE bytes at msg) in. Returns 0 or
 * -EAGAIN if the ring is full (counted). Producers, concurrently. */
static inline int ring_mpsc_push(struct ring_mpsc *r, const void *msg)
{
	unsigned int k = 1;
	uint64_t pos = ring_mpsc__claim(r, &k);

	if (unlikely(k == 0)) {
		fetch_add_relaxed(&r->prod.full, 1);	/* statistic only */
		return -EAGAIN;
	}
	ring_mpsc__fill(r, pos, msg);
	return 0;
}

/* Copy up to n messages (an array of n * RING_MPSC_MSG_SIZE bytes) in,
 * claiming their positions with one CAS. They stay consecutive in the ring.
 * Returns how many (0 .. n); fewer than n counts once as full. Producers,
 * concurrently. */
static inline unsigned int ring_mpsc_push_batch(struct ring_mpsc *r,
						const void *msgs,
						unsigned int n)
{
	const unsigned char *src = msgs;
	unsigned int k = n < r->geom.nslots ? n : r->geom.nslots;
	uint64_t pos;

	if (k == 0)
		return 0;
	pos = ring_mpsc__claim(r, &k);
	for (unsigned int i = 0; i < k; i++)
		ring_mpsc__fill(r, pos + i, src + (size_t)i *
				RING_MPSC_MSG_SIZE);
	if (k < n)
		fetch_add_relaxed(&r->prod.full, 1);	/* statistic only */
	return k;
}

/* Copy out the message at position head and free its slot; false if it is
 * not ready. Consumer only. */
static inline bool ring_mpsc__take(struct ring_mpsc *r, uint64_t head,
				   void *msg)
{
	uint32_t nslots = r->geom.nslots;
	struct ring_mpsc_slot *s = &r->slots[head & (nslots - 1)];

	/* Acquire pairs with the producer's store_release of seq in
	 * ring_mpsc__fill(): the payload is visible. */
	if (load_acquire(&s->seq) != head + 1)
		return false;
	memcpy(msg, s->data, RING_MPSC_MSG_SIZE);
	/* Release pairs with the producers' load_acquire of seq in
	 * ring_mpsc__claim(): our read is done before the slot is reused. */
	store_release(&s->seq, head + nslots);
	return true;
}

/* Copy the oldest message out (RING_MPSC_MSG_SIZE bytes to msg). Returns 0
 * or -EAGAIN if it is not ready: the ring is empty, or the producer that
 * claimed the next position has not finished writing it (messages behind
 * it wait, even if written). Consumer only. */
static inline int ring_mpsc_pop(struct ring_mpsc *r, void *msg)
{
	uint64_t head = load_relaxed(&r->cons.head);	/* our own index */

	if (!ring_mpsc__take(r, head, msg))
		return -EAGAIN;
	/* Relaxed: head is published for count() only; seq carries the
	 * synchronisation with producers. */
	store_relaxed(&r->cons.head, head + 1);
	return 0;
}

/* Copy up to n messages out (to an array of n * RING_MPSC_MSG_SIZE bytes),
 * publishing head once. Returns how many (0 .. n). Consumer only. */
static inline unsigned int ring_mpsc_pop_batch(struct ring_mpsc *r,
					       void *msgs, unsigned int n)
{
	unsigned char *dst = msgs;
	uint64_t head = load_relaxed(&r->cons.head);	/* our own index */
	unsigned int k = 0;

	while (k < n && ring_mpsc__take(r, head + k, dst + (size_t)k *
					RING_MPSC_MSG_SIZE))
		k++;
	if (k)
		/* Relaxed: for count() only, as in ring_mpsc_pop(). */
		store_relaxed(&r->cons.head, head + k);
	return k;
}

/* Positions claimed but not yet consumed (0 .. nslots), a snapshot; it
 * includes messages still being written. Any context. */
static inline uint32_t ring_mpsc_count(const struct ring_mpsc *r)
{
	/* Acquire only orders the two loads (head first: head <= tail
	 * always); head's store is relaxed, so it pairs with nothing. */
	uint64_t head = load_acquire(&r->cons.head);
	uint64_t tail = load_relaxed(&r->prod.tail);
	uint64_t n = tail - head;

	return n > r->geom.nslots ? r->geom.nslots : (uint32_t)n;
}

static inline bool ring_mpsc_empty(const struct ring_mpsc *r)
{
	return ring_mpsc_count(r) == 0;
}

/* How many times a producer found the ring full. Any context. */
static inline uint64_t ring_mpsc_full_count(const struct ring_mpsc *r)
{
	return load_relaxed(&r->prod.full);
}

#endif /* ATOLL_RING_H */
