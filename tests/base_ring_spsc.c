/* base_ring_spsc.c - single-threaded unit test of the SPSC ring: init and
 * attach checks, full/empty edges, wraparound, batches, zero-copy. */
#include <errno.h>
#include <stdalign.h>

#include <atoll/ring.h>

#include "harness.h"

#define NSLOTS 8u

/* Backing memory for the ring under test: 64-byte aligned, with room for
 * a deliberately misaligned copy. */
static alignas(CACHE_LINE) unsigned char mem[RING_HDR_SIZE +
					      (NSLOTS + 2) * RING_SLOT_SIZE];

static void fill(unsigned char *msg, uint64_t v)
{
	for (unsigned int i = 0; i < RING_SPSC_MSG_SIZE; i++)
		msg[i] = (unsigned char)(v * 31 + i);
	memcpy(msg, &v, sizeof(v));
}

/* The message carries v in its first bytes and a pattern in the rest. */
static void check_msg(const unsigned char *msg, uint64_t v)
{
	unsigned char want[RING_SPSC_MSG_SIZE];

	fill(want, v);
	CHECK(memcmp(msg, want, sizeof(want)) == 0);
}

static void test_size_init(void)
{
	struct ring_spsc *r = (struct ring_spsc *)mem;
	size_t sz = ring_spsc_size(NSLOTS);

	CHECK_EQ(sz, RING_HDR_SIZE + NSLOTS * RING_SLOT_SIZE);
	CHECK_EQ(ring_spsc_size(0), 0);
	CHECK_EQ(ring_spsc_size(1), 0);
	CHECK_EQ(ring_spsc_size(3), 0);
	CHECK_EQ(ring_spsc_size(12), 0);
	CHECK_EQ(ring_spsc_size(RING_MAX_SLOTS * 2u), 0);
	CHECK_EQ(ring_spsc_size(2), RING_HDR_SIZE + 2 * RING_SLOT_SIZE);

	CHECK_EQ(ring_spsc_init(NULL, sz, NSLOTS), -EINVAL);
	CHECK_EQ(ring_spsc_init(r, sz, 0), -EINVAL);
	CHECK_EQ(ring_spsc_init(r, sz, 1), -EINVAL);
	CHECK_EQ(ring_spsc_init(r, sz, 6), -EINVAL);
	CHECK_EQ(ring_spsc_init(r, sz - 1, NSLOTS), -EINVAL);
	CHECK_EQ(ring_spsc_init((struct ring_spsc *)(mem + 8), sz, NSLOTS),
		 -EINVAL);
	CHECK_EQ(ring_spsc_init(r, sz, NSLOTS), 0);
	CHECK_EQ(ring_spsc_nslots(r), NSLOTS);
	CHECK(ring_spsc_empty(r));
	CHECK_EQ(ring_spsc_count(r), 0);
	CHECK_EQ(ring_spsc_full_count(r), 0);
}

static void test_attach(void)
{
	struct ring_spsc *r = (struct ring_spsc *)mem;
	size_t sz = ring_spsc_size(NSLOTS);
	struct ring_geom saved;

	CHECK_EQ(ring_spsc_init(r, sz, NSLOTS), 0);
	CHECK_EQ(ring_spsc_attach(r, sz), 0);
	CHECK_EQ(ring_spsc_attach(r, sz + 4096), 0);
	CHECK_EQ(ring_spsc_attach(NULL, sz), -EINVAL);
	CHECK_EQ(ring_spsc_attach(r, 100), -EINVAL);
	CHECK_EQ(ring_spsc_attach((struct ring_spsc *)(mem + 64), sz),
		 -EPROTO);
	/* Mapping smaller than the ring says it is. */
	CHECK_EQ(ring_spsc_attach(r, sz - RING_SLOT_SIZE), -EPROTO);
	/* An MPSC ring is not an SPSC ring. */
	CHECK_EQ(ring_mpsc_attach((struct ring_mpsc *)mem, sz), -EPROTO);

	saved = r->geom;
	r->geom.magic ^= 1;
	CHECK_EQ(ring_spsc_attach(r, sz), -EPROTO);
	r->geom = saved;
	r->geom.version++;
	CHECK_EQ(ring_spsc_attach(r, sz), -EPROTO);
	r->geom = saved;
	r->geom.slot_size = 128;
	CHECK_EQ(ring_spsc_attach(r, sz), -EPROTO);
	r->geom = saved;
	r->geom.nslots = 6;
	CHECK_EQ(ring_spsc_attach(r, sz), -EPROTO);
	r->geom = saved;
	r->geom.nslots = NSLOTS / 2;	/* disagrees with total_size */
	CHECK_EQ(ring_spsc_attach(r, sz), -EPROTO);
	r->geom = saved;
	r->geom.total_size += RING_SLOT_SIZE;
	CHECK_EQ(ring_spsc_attach(r, sz + RING_SLOT_SIZE), -EPROTO);
	r->geom = saved;
	r->geom.reserved = 1;
	CHECK_EQ(ring_spsc_attach(r, sz), -EPROTO);
	r->geom = saved;
	CHECK_EQ(ring_spsc_attach(r, sz), 0);
	/* Init over garbage leaves a valid ring. */
	memset(mem, 0xa5, sizeof(mem));
	CHECK_EQ(ring_spsc_attach(r, sz), -EPROTO);
	CHECK_EQ(ring_spsc_init(r, sz, NSLOTS), 0);
	CHECK_EQ(ring_spsc_attach(r, sz), 0);
	CHECK(ring_spsc_empty(r));
}

/* Fill to the brim, overflow, drain, underflow; several laps so indices
 * wrap around the slot array. */
static void test_edges_wrap(void)
{
	struct ring_spsc *r = (struct ring_spsc *)mem;
	unsigned char msg[RING_SPSC_MSG_SIZE];
	uint64_t next_in = 0, next_out = 0;

	CHECK_EQ(ring_spsc_init(r, sizeof(mem), NSLOTS), 0);
	CHECK_EQ(ring_spsc_pop(r, msg), -EAGAIN);
	for (unsigned int i = 0; i < NSLOTS; i++) {
		fill(msg, next_in++);
		CHECK_EQ(ring_spsc_push(r, msg), 0);
		CHECK_EQ(ring_spsc_count(r), i + 1);
	}
	fill(msg, 999);
	CHECK_EQ(ring_spsc_push(r, msg), -EAGAIN);
	CHECK_EQ(ring_spsc_full_count(r), 1);
	CHECK_EQ(ring_spsc_push(r, msg), -EAGAIN);
	CHECK_EQ(ring_spsc_full_count(r), 2);
	CHECK_EQ(ring_spsc_count(r), NSLOTS);
	for (unsigned int i = 0; i < NSLOTS; i++) {
		CHECK_EQ(ring_spsc_pop(r, msg), 0);
		check_msg(msg, next_out++);
	}
	CHECK_EQ(ring_spsc_pop(r, msg), -EAGAIN);
	CHECK(ring_spsc_empty(r));

	/* Lap with an odd stride (3 in, 3 out) across many wraps, with one
	 * slot kept occupied so head and tail never line up on a lap. */
	fill(msg, next_in++);
	CHECK_EQ(ring_spsc_push(r, msg), 0);
	for (unsigned int lap = 0; lap < 10 * NSLOTS; lap++) {
		for (int j = 0; j < 3; j++) {
			fill(msg, next_in++);
			CHECK_EQ(ring_spsc_push(r, msg), 0);
		}
		CHECK_EQ(ring_spsc_count(r), 4);
		for (int j = 0; j < 3; j++) {
			CHECK_EQ(ring_spsc_pop(r, msg), 0);
			check_msg(msg, next_out++);
		}
	}
	CHECK_EQ(ring_spsc_pop(r, msg), 0);
	check_msg(msg, next_out++);
	CHECK_EQ(next_in, next_out);
	CHECK(ring_spsc_empty(r));
	CHECK_EQ(ring_spsc_full_count(r), 2);
}

static void test_batch(void)
{
	struct ring_spsc *r = (struct ring_spsc *)mem;
	unsigned char buf[NSLOTS * 2][RING_SPSC_MSG_SIZE];
	uint64_t next_in = 0, next_out = 0;

	CHECK_EQ(ring_spsc_init(r, sizeof(mem), NSLOTS), 0);
	CHECK_EQ(ring_spsc_push_batch(r, buf, 0), 0);
	CHECK_EQ(ring_spsc_full_count(r), 0);
	CHECK_EQ(ring_spsc_pop_batch(r, buf, 4), 0);

	/* 5 fit, then only 3 of 5: partial batch counted once as full. */
	for (int i = 0; i < 5; i++)
		fill(buf[i], next_in++);
	CHECK_EQ(ring_spsc_push_batch(r, buf, 5), 5);
	for (int i = 0; i < 5; i++)
		fill(buf[i], next_in + (uint64_t)i);
	CHECK_EQ(ring_spsc_push_batch(r, buf, 5), 3);
	next_in += 3;
	CHECK_EQ(ring_spsc_full_count(r), 1);
	CHECK_EQ(ring_spsc_push_batch(r, buf, 1), 0);
	CHECK_EQ(ring_spsc_full_count(r), 2);
	CHECK_EQ(ring_spsc_count(r), NSLOTS);

	/* Pop 6, ask for 16 and get the 2 left. */
	CHECK_EQ(ring_spsc_pop_batch(r, buf, 6), 6);
	for (int i = 0; i < 6; i++)
		check_msg(buf[i], next_out++);
	CHECK_EQ(ring_spsc_pop_batch(r, buf, 16), 2);
	for (int i = 0; i < 2; i++)
		check_msg(buf[i], next_out++);
	CHECK(ring_spsc_empty(r));

	/* Batches that straddle the end of the slot array. */
	for (int round = 0; round < 20; round++) {
		unsigned int n = 1 + (unsigned int)round % 7;

		for (unsigned int i = 0; i < n; i++)
			fill(buf[i], next_in + i);
		CHECK_EQ(ring_spsc_push_batch(r, buf, n), n);
		next_in += n;
		memset(buf, 0, sizeof(buf));
		CHECK_EQ(ring_spsc_pop_batch(r, buf, NSLOTS * 2), n);
		for (unsigned int i = 0; i < n; i++)
			check_msg(buf[i], next_out++);
	}
	CHECK_EQ(next_in, next_out);
}

static void test_zero_copy(void)
{
	struct ring_spsc *r = (struct ring_spsc *)mem;
	unsigned char msg[RING_SPSC_MSG_SIZE];
	struct ring_slot *w;
	const struct ring_slot *rd;
	unsigned int n;

	CHECK_EQ(ring_spsc_init(r, sizeof(mem), NSLOTS), 0);

	/* Nothing to peek. */
	n = 4;
	CHECK(ring_spsc_peek(r, &n) == NULL);
	CHECK_EQ(n, 0);

	/* Reserve 0: NULL, not counted. */
	n = 0;
	CHECK(ring_spsc_reserve(r, &n) == NULL);
	CHECK_EQ(ring_spsc_full_count(r), 0);

	/* Reserve 5 at slot 0, commit 3 (2 left unpublished). */
	n = 5;
	w = ring_spsc_reserve(r, &n);
	CHECK(w == &r->slots[0]);
	CHECK_EQ(n, 5);
	for (unsigned int i = 0; i < 5; i++)
		fill(w[i].data, i);
	CHECK_EQ(ring_spsc_count(r), 0);
	ring_spsc_commit(r, 3);
	CHECK_EQ(ring_spsc_count(r), 3);

	/* Next reservation starts at slot 3 and stops at the array's end. */
	n = 100;
	w = ring_spsc_reserve(r, &n);
	CHECK(w == &r->slots[3]);
	CHECK_EQ(n, NSLOTS - 3);
	for (unsigned int i = 0; i < n; i++)
		fill(w[i].data, 3 + i);
	ring_spsc_commit(r, n);
	CHECK_EQ(ring_spsc_count(r), NSLOTS);
	n = 1;
	CHECK(ring_spsc_reserve(r, &n) == NULL);
	CHECK_EQ(n, 0);
	CHECK_EQ(ring_spsc_full_count(r), 1);

	/* Peek 2, release 1; peek again sees the second one first. */
	n = 2;
	rd = ring_spsc_peek(r, &n);
	CHECK(rd == &r->slots[0]);
	CHECK_EQ(n, 2);
	check_msg(rd[0].data, 0);
	check_msg(rd[1].data, 1);
	ring_spsc_release(r, 1);
	n = 100;
	rd = ring_spsc_peek(r, &n);
	CHECK(rd == &r->slots[1]);
	CHECK_EQ(n, NSLOTS - 1);
	for (unsigned int i = 0; i < n; i++)
		check_msg(rd[i].data, 1 + i);
	ring_spsc_release(r, n - 1);	/* keep the last one */

	/* Reserve across the wrap: first the freed slots at the start. */
	n = NSLOTS;
	w = ring_spsc_reserve(r, &n);
	CHECK(w == &r->slots[0]);
	CHECK_EQ(n, NSLOTS - 1);
	fill(w[0].data, NSLOTS);
	ring_spsc_commit(r, 1);

	/* The consumer sees the last slot, then the wrapped one; pop mixes
	 * with peek. */
	n = 8;
	rd = ring_spsc_peek(r, &n);
	CHECK(rd == &r->slots[NSLOTS - 1]);
	CHECK_EQ(n, 1);
	check_msg(rd[0].data, NSLOTS - 1);
	ring_spsc_release(r, 1);
	CHECK_EQ(ring_spsc_pop(r, msg), 0);
	check_msg(msg, NSLOTS);
	CHECK(ring_spsc_empty(r));
	n = 1;
	CHECK(ring_spsc_peek(r, &n) == NULL);
}

/* Runs stop at the end of the slot array even when more is free/ready. */
static void test_zero_copy_runs(void)
{
	struct ring_spsc *r = (struct ring_spsc *)mem;
	unsigned char msg[RING_SPSC_MSG_SIZE];
	struct ring_slot *w;
	const struct ring_slot *rd;
	unsigned int n;

	CHECK_EQ(ring_spsc_init(r, sizeof(mem), NSLOTS), 0);
	for (int i = 0; i < 6; i++) {
		CHECK_EQ(ring_spsc_push(r, msg), 0);
		CHECK_EQ(ring_spsc_pop(r, msg), 0);
	}
	n = NSLOTS;
	w = ring_spsc_reserve(r, &n);
	CHECK(w == &r->slots[6]);
	CHECK_EQ(n, 2);
	fill(w[0].data, 6);
	fill(w[1].data, 7);
	ring_spsc_commit(r, 2);
	n = NSLOTS;
	w = ring_spsc_reserve(r, &n);
	CHECK(w == &r->slots[0]);
	CHECK_EQ(n, 6);
	for (unsigned int i = 0; i < n; i++)
		fill(w[i].data, 8 + i);
	ring_spsc_commit(r, n);
	CHECK_EQ(ring_spsc_count(r), NSLOTS);

	n = NSLOTS;
	rd = ring_spsc_peek(r, &n);
	CHECK(rd == &r->slots[6]);
	CHECK_EQ(n, 2);
	check_msg(rd[0].data, 6);
	check_msg(rd[1].data, 7);
	ring_spsc_release(r, n);
	n = NSLOTS;
	rd = ring_spsc_peek(r, &n);
	CHECK(rd == &r->slots[0]);
	CHECK_EQ(n, 6);
	for (unsigned int i = 0; i < n; i++)
		check_msg(rd[i].data, 8 + i);
	ring_spsc_release(r, n);
	CHECK(ring_spsc_empty(r));
	CHECK_EQ(ring_spsc_full_count(r), 0);
}

int main(void)
{
	test_size_init();
	test_attach();
	test_edges_wrap();
	test_batch();
	test_zero_copy();
	test_zero_copy_runs();
	printf("base_ring_spsc: ok\n");
	return TEST_PASS;
}
