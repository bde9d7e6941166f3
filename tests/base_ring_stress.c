/* base_ring_stress.c - threaded stress of the rings: SPSC with one producer
 * and one consumer, MPSC with three producers and one consumer. Every
 * message carries its sequence number and a checksum of its payload; the
 * consumer checks order, loss and content. Producers and consumers mix
 * single, batch and zero-copy calls. */
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdalign.h>
#include <time.h>

#include <atoll/ring.h>

#include "harness.h"

#define SPSC_SLOTS 256u
#define MPSC_SLOTS 128u
#define MPSC_PRODUCERS 3
#define BATCH_MAX 16u
#define STALL_SECONDS 20

/* Spinning threads oversubscribe a 2-core box: relax a while, then let
 * the other side run. A thread that sees no progress for STALL_SECONDS
 * fails the test rather than hang it (a lost message stalls the consumer).
 * fails counts attempts since the last progress; the caller resets it. */
static void backoff(unsigned int *fails)
{
	static _Thread_local time_t since;

	if (*fails == 0)
		since = time(NULL);
	if (++*fails < 256) {
		cpu_relax();
		return;
	}
	sched_yield();
	if (*fails % 4096 == 0 && time(NULL) - since > STALL_SECONDS) {
		fprintf(stderr, "FAIL: no progress for %d s\n",
			STALL_SECONDS);
		exit(TEST_FAIL);
	}
}

static uint64_t mix64(uint64_t x)
{
	x += 0x9e3779b97f4a7c15ull;
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
	x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
	return x ^ (x >> 31);
}

/* FNV-1a over len bytes. */
static uint64_t checksum(const unsigned char *p, size_t len)
{
	uint64_t h = 0xcbf29ce484222325ull;

	for (size_t i = 0; i < len; i++)
		h = (h ^ p[i]) * 0x100000001b3ull;
	return h;
}

/* A message: who sent it, its number, a checksum of the payload, and a
 * payload that depends on both. */
struct msg_hdr {
	uint64_t id;
	uint64_t seq;
	uint64_t csum;
};

static void msg_make(unsigned char *m, size_t size, uint64_t id,
		     uint64_t seq)
{
	struct msg_hdr h = { .id = id, .seq = seq };
	unsigned char *pl = m + sizeof(h);
	size_t plen = size - sizeof(h);
	uint64_t x = mix64(seq ^ (id << 56));

	for (size_t i = 0; i < plen; i += 8) {
		memcpy(pl + i, &x, plen - i < 8 ? plen - i : 8);
		x = mix64(x);
	}
	h.csum = checksum(pl, plen);
	memcpy(m, &h, sizeof(h));
}

/* Check a message's checksum and return its header. */
static struct msg_hdr msg_check(const unsigned char *m, size_t size)
{
	struct msg_hdr h;

	memcpy(&h, m, sizeof(h));
	if (checksum(m + sizeof(h), size - sizeof(h)) != h.csum) {
		fprintf(stderr, "FAIL: checksum of message %" PRIu64
			" from %" PRIu64 "\n", h.seq, h.id);
		exit(TEST_FAIL);
	}
	return h;
}

/* ---- SPSC --------------------------------------------------------------- */

static alignas(CACHE_LINE) unsigned char spsc_mem[RING_HDR_SIZE +
						   SPSC_SLOTS * RING_SLOT_SIZE];
static uint64_t spsc_total;

static void *spsc_producer(void *arg)
{
	struct ring_spsc *r = arg;
	unsigned char buf[BATCH_MAX][RING_SPSC_MSG_SIZE];
	uint64_t seq = 0;
	unsigned int fails = 0;

	while (seq < spsc_total) {
		unsigned int mode = (unsigned int)(seq >> 10) % 3;
		uint64_t left = spsc_total - seq;
		unsigned int n = 1 + (unsigned int)(mix64(seq) % BATCH_MAX);
		unsigned int done;

		if (n > left)
			n = (unsigned int)left;
		if (mode == 0) {
			msg_make(buf[0], sizeof(buf[0]), 0, seq);
			done = ring_spsc_push(r, buf[0]) == 0;
		} else if (mode == 1) {
			for (unsigned int i = 0; i < n; i++)
				msg_make(buf[i], sizeof(buf[i]), 0, seq + i);
			done = ring_spsc_push_batch(r, buf, n);
		} else {
			struct ring_slot *s = ring_spsc_reserve(r, &n);

			for (unsigned int i = 0; i < n; i++)
				msg_make(s[i].data, RING_SLOT_SIZE, 0,
					 seq + i);
			if (n)
				ring_spsc_commit(r, n);
			done = n;
		}
		seq += done;
		if (done)
			fails = 0;
		else
			backoff(&fails);
	}
	return NULL;
}

static void spsc_expect(const unsigned char *m, uint64_t *next)
{
	struct msg_hdr h = msg_check(m, RING_SPSC_MSG_SIZE);

	CHECK_EQ(h.id, 0);
	CHECK_EQ(h.seq, *next);
	(*next)++;
}

static void *spsc_consumer(void *arg)
{
	struct ring_spsc *r = arg;
	unsigned char buf[BATCH_MAX][RING_SPSC_MSG_SIZE];
	uint64_t next = 0, calls = 0;
	unsigned int fails = 0;

	while (next < spsc_total) {
		unsigned int mode = (unsigned int)(calls++ >> 8) % 3;
		unsigned int n = 1 + (unsigned int)(mix64(calls) % BATCH_MAX);
		unsigned int got;

		if (mode == 0) {
			got = ring_spsc_pop(r, buf[0]) == 0;
			if (got)
				spsc_expect(buf[0], &next);
		} else if (mode == 1) {
			got = ring_spsc_pop_batch(r, buf, n);
			for (unsigned int i = 0; i < got; i++)
				spsc_expect(buf[i], &next);
		} else {
			const struct ring_slot *s = ring_spsc_peek(r, &n);

			for (unsigned int i = 0; i < n; i++)
				spsc_expect(s[i].data, &next);
			if (n)
				ring_spsc_release(r, n);
			got = n;
		}
		if (got)
			fails = 0;
		else
			backoff(&fails);
	}
	return NULL;
}

static void test_spsc(void)
{
	struct ring_spsc *r = (struct ring_spsc *)spsc_mem;
	unsigned char m[RING_SPSC_MSG_SIZE];
	pthread_t prod, cons;

	spsc_total = test_scale(4000000);
	CHECK_EQ(ring_spsc_init(r, sizeof(spsc_mem), SPSC_SLOTS), 0);
	CHECK_EQ(pthread_create(&cons, NULL, spsc_consumer, r), 0);
	CHECK_EQ(pthread_create(&prod, NULL, spsc_producer, r), 0);
	CHECK_EQ(pthread_join(prod, NULL), 0);
	CHECK_EQ(pthread_join(cons, NULL), 0);
	/* Nothing extra arrived. */
	CHECK_EQ(ring_spsc_pop(r, m), -EAGAIN);
	CHECK(ring_spsc_empty(r));
	printf("spsc: %" PRIu64 " messages, ring full %" PRIu64 " times\n",
	       spsc_total, ring_spsc_full_count(r));
}

/* ---- MPSC --------------------------------------------------------------- */

static alignas(CACHE_LINE) unsigned char mpsc_mem[RING_HDR_SIZE +
						   MPSC_SLOTS * RING_SLOT_SIZE];
static uint64_t mpsc_per_producer;

struct mpsc_producer {
	struct ring_mpsc *r;
	uint64_t id;
	pthread_t thread;
};

static void *mpsc_producer(void *arg)
{
	struct mpsc_producer *p = arg;
	unsigned char buf[BATCH_MAX][RING_MPSC_MSG_SIZE];
	uint64_t seq = 0;
	unsigned int fails = 0;

	while (seq < mpsc_per_producer) {
		uint64_t left = mpsc_per_producer - seq;
		unsigned int n = 1 + (unsigned int)(mix64(seq + p->id) %
						    BATCH_MAX);
		unsigned int done;

		if (n > left)
			n = (unsigned int)left;
		if (((seq >> 9) + p->id) % 2 == 0) {
			msg_make(buf[0], sizeof(buf[0]), p->id, seq);
			done = ring_mpsc_push(p->r, buf[0]) == 0;
		} else {
			for (unsigned int i = 0; i < n; i++)
				msg_make(buf[i], sizeof(buf[i]), p->id,
					 seq + i);
			done = ring_mpsc_push_batch(p->r, buf, n);
		}
		seq += done;
		if (done)
			fails = 0;
		else
			backoff(&fails);
	}
	return NULL;
}

static void mpsc_expect(const unsigned char *m, uint64_t *next)
{
	struct msg_hdr h = msg_check(m, RING_MPSC_MSG_SIZE);

	CHECK(h.id < MPSC_PRODUCERS);
	CHECK_EQ(h.seq, next[h.id]);
	next[h.id]++;
}

static void *mpsc_consumer(void *arg)
{
	struct ring_mpsc *r = arg;
	unsigned char buf[BATCH_MAX][RING_MPSC_MSG_SIZE];
	uint64_t next[MPSC_PRODUCERS] = { 0 };
	uint64_t total = MPSC_PRODUCERS * mpsc_per_producer, got_all = 0;
	uint64_t calls = 0;
	unsigned int fails = 0;

	while (got_all < total) {
		unsigned int got;

		if ((calls++ >> 8) % 2 == 0) {
			got = ring_mpsc_pop(r, buf[0]) == 0;
			if (got)
				mpsc_expect(buf[0], next);
		} else {
			got = ring_mpsc_pop_batch(r, buf, BATCH_MAX);
			for (unsigned int i = 0; i < got; i++)
				mpsc_expect(buf[i], next);
		}
		got_all += got;
		if (got)
			fails = 0;
		else
			backoff(&fails);
	}
	for (int i = 0; i < MPSC_PRODUCERS; i++)
		CHECK_EQ(next[i], mpsc_per_producer);
	return NULL;
}

static void test_mpsc(void)
{
	struct ring_mpsc *r = (struct ring_mpsc *)mpsc_mem;
	struct mpsc_producer prod[MPSC_PRODUCERS];
	unsigned char m[RING_MPSC_MSG_SIZE];
	pthread_t cons;

	mpsc_per_producer = test_scale(1000000);
	CHECK_EQ(ring_mpsc_init(r, sizeof(mpsc_mem), MPSC_SLOTS), 0);
	CHECK_EQ(pthread_create(&cons, NULL, mpsc_consumer, r), 0);
	for (int i = 0; i < MPSC_PRODUCERS; i++) {
		prod[i].r = r;
		prod[i].id = (uint64_t)i;
		CHECK_EQ(pthread_create(&prod[i].thread, NULL, mpsc_producer,
					&prod[i]), 0);
	}
	for (int i = 0; i < MPSC_PRODUCERS; i++)
		CHECK_EQ(pthread_join(prod[i].thread, NULL), 0);
	CHECK_EQ(pthread_join(cons, NULL), 0);
	CHECK_EQ(ring_mpsc_pop(r, m), -EAGAIN);
	CHECK(ring_mpsc_empty(r));
	printf("mpsc: %d x %" PRIu64 " messages, ring full %" PRIu64
	       " times\n", MPSC_PRODUCERS, mpsc_per_producer,
	       ring_mpsc_full_count(r));
}

int main(void)
{
	test_spsc();
	test_mpsc();
	return TEST_PASS;
}
