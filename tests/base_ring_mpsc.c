/* base_ring_mpsc.c - single-threaded unit test of the MPSC ring: init and
 * attach checks, full/empty edges, wraparound, batches, a slot claimed but
 * not yet written. */
#include <errno.h>
#include <stdalign.h>

#include <atoll/ring.h>

#include "harness.h"

#define NSLOTS 8u

static alignas(CACHE_LINE) unsigned char mem[RING_HDR_SIZE +
					      (NSLOTS + 2) * RING_SLOT_SIZE];

static void fill(unsigned char *msg, uint64_t v)
{
	for (unsigned int i = 0; i < RING_MPSC_MSG_SIZE; i++)
		msg[i] = (unsigned char)(v * 17 + i);
	memcpy(msg, &v, sizeof(v));
}

static void check_msg(const unsigned char *msg, uint64_t v)
{
	unsigned char want[RING_MPSC_MSG_SIZE];

	fill(want, v);
	CHECK(memcmp(msg, want, sizeof(want)) == 0);
}

static void test_size_init(void)
{
	struct ring_mpsc *r = (struct ring_mpsc *)mem;
	size_t sz = ring_mpsc_size(NSLOTS);

	BUILD_ASSERT(RING_MPSC_MSG_SIZE == 56);
	CHECK_EQ(sz, RING_HDR_SIZE + NSLOTS * RING_SLOT_SIZE);
	CHECK_EQ(ring_mpsc_size(0), 0);
	CHECK_EQ(ring_mpsc_size(1), 0);
	CHECK_EQ(ring_mpsc_size(24), 0);
	CHECK_EQ(ring_mpsc_size(RING_MAX_SLOTS), RING_HDR_SIZE +
		 (size_t)RING_MAX_SLOTS * RING_SLOT_SIZE);

	CHECK_EQ(ring_mpsc_init(NULL, sz, NSLOTS), -EINVAL);
	CHECK_EQ(ring_mpsc_init(r, sz, 1), -EINVAL);
	CHECK_EQ(ring_mpsc_init(r, sz, 5), -EINVAL);
	CHECK_EQ(ring_mpsc_init(r, sz, 16), -EINVAL);	/* too small */
	CHECK_EQ(ring_mpsc_init((struct ring_mpsc *)(mem + 32), sz, NSLOTS),
		 -EINVAL);
	CHECK_EQ(ring_mpsc_init(r, sz, NSLOTS), 0);
	CHECK_EQ(ring_mpsc_nslots(r), NSLOTS);
	for (uint32_t i = 0; i < NSLOTS; i++)
		CHECK_EQ(r->slots[i].seq, i);
	CHECK(ring_mpsc_empty(r));
	CHECK_EQ(ring_mpsc_full_count(r), 0);
}

static void test_attach(void)
{
	struct ring_mpsc *r = (struct ring_mpsc *)mem;
	size_t sz = ring_mpsc_size(NSLOTS);
	struct ring_geom saved;

	CHECK_EQ(ring_mpsc_init(r, sz, NSLOTS), 0);
	CHECK_EQ(ring_mpsc_attach(r, sz), 0);
	CHECK_EQ(ring_mpsc_attach(NULL, sz), -EINVAL);
	CHECK_EQ(ring_mpsc_attach((struct ring_mpsc *)(mem + 1), sz),
		 -EINVAL);
	CHECK_EQ(ring_mpsc_attach(r, RING_HDR_SIZE - 1), -EINVAL);
	CHECK_EQ(ring_mpsc_attach(r, sz - 1), -EPROTO);
	CHECK_EQ(ring_spsc_attach((struct ring_spsc *)mem, sz), -EPROTO);

	saved = r->geom;
	r->geom.magic = RING_SPSC_MAGIC;
	CHECK_EQ(ring_mpsc_attach(r, sz), -EPROTO);
	r->geom = saved;
	r->geom.version = RING_VERSION + 1;
	CHECK_EQ(ring_mpsc_attach(r, sz), -EPROTO);
	r->geom = saved;
	r->geom.slot_size = 32;
	CHECK_EQ(ring_mpsc_attach(r, sz), -EPROTO);
	r->geom = saved;
	r->geom.nslots = 0;
	CHECK_EQ(ring_mpsc_attach(r, sz), -EPROTO);
	r->geom = saved;
	r->geom.nslots = NSLOTS * 2;
	CHECK_EQ(ring_mpsc_attach(r, sizeof(mem) * 4), -EPROTO);
	r->geom = saved;
	r->geom.total_size = 0;
	CHECK_EQ(ring_mpsc_attach(r, sz), -EPROTO);
	r->geom = saved;
	CHECK_EQ(ring_mpsc_attach(r, sz), 0);
}

static void test_edges_wrap(void)
{
	struct ring_mpsc *r = (struct ring_mpsc *)mem;
	unsigned char msg[RING_MPSC_MSG_SIZE];
	uint64_t next_in = 0, next_out = 0;

	CHECK_EQ(ring_mpsc_init(r, sizeof(mem), NSLOTS), 0);
	CHECK_EQ(ring_mpsc_pop(r, msg), -EAGAIN);
	for (unsigned int i = 0; i < NSLOTS; i++) {
		fill(msg, next_in++);
		CHECK_EQ(ring_mpsc_push(r, msg), 0);
		CHECK_EQ(ring_mpsc_count(r), i + 1);
	}
	CHECK_EQ(ring_mpsc_push(r, msg), -EAGAIN);
	CHECK_EQ(ring_mpsc_push(r, msg), -EAGAIN);
	CHECK_EQ(ring_mpsc_full_count(r), 2);
	CHECK_EQ(ring_mpsc_count(r), NSLOTS);

	/* One pop frees exactly one slot. */
	CHECK_EQ(ring_mpsc_pop(r, msg), 0);
	check_msg(msg, next_out++);
	fill(msg, next_in++);
	CHECK_EQ(ring_mpsc_push(r, msg), 0);
	CHECK_EQ(ring_mpsc_push(r, msg), -EAGAIN);
	CHECK_EQ(ring_mpsc_full_count(r), 3);

	while (ring_mpsc_pop(r, msg) == 0)
		check_msg(msg, next_out++);
	CHECK_EQ(next_in, next_out);
	CHECK(ring_mpsc_empty(r));

	/* Many laps at an odd stride. */
	for (unsigned int lap = 0; lap < 10 * NSLOTS; lap++) {
		for (int j = 0; j < 5; j++) {
			fill(msg, next_in++);
			CHECK_EQ(ring_mpsc_push(r, msg), 0);
		}
		for (int j = 0; j < 5; j++) {
			CHECK_EQ(ring_mpsc_pop(r, msg), 0);
			check_msg(msg, next_out++);
		}
	}
	CHECK_EQ(ring_mpsc_pop(r, msg), -EAGAIN);
	CHECK_EQ(ring_mpsc_full_count(r), 3);
}

static void test_batch(void)
{
	struct ring_mpsc *r = (struct ring_mpsc *)mem;
	unsigned char buf[NSLOTS * 2][RING_MPSC_MSG_SIZE];
	uint64_t next_in = 0, next_out = 0;

	CHECK_EQ(ring_mpsc_init(r, sizeof(mem), NSLOTS), 0);
	CHECK_EQ(ring_mpsc_push_batch(r, buf, 0), 0);
	CHECK_EQ(ring_mpsc_pop_batch(r, buf, 3), 0);
	CHECK_EQ(ring_mpsc_full_count(r), 0);

	for (int i = 0; i < 6; i++)
		fill(buf[i], next_in++);
	CHECK_EQ(ring_mpsc_push_batch(r, buf, 6), 6);
	/* Only 2 free: a 5-batch shrinks to what fits, counted once. */
	for (int i = 0; i < 5; i++)
		fill(buf[i], next_in + (uint64_t)i);
	CHECK_EQ(ring_mpsc_push_batch(r, buf, 5), 2);
	next_in += 2;
	CHECK_EQ(ring_mpsc_full_count(r), 1);
	CHECK_EQ(ring_mpsc_push_batch(r, buf, 3), 0);
	CHECK_EQ(ring_mpsc_full_count(r), 2);

	/* Pop 3 and batch 3 more in; 1 free left, asked for 7 gets 1. */
	CHECK_EQ(ring_mpsc_pop_batch(r, buf, 3), 3);
	for (int i = 0; i < 3; i++)
		check_msg(buf[i], next_out++);
	CHECK_EQ(ring_mpsc_count(r), NSLOTS - 3);
	for (int i = 0; i < 7; i++)
		fill(buf[i], next_in + (uint64_t)i);
	CHECK_EQ(ring_mpsc_push_batch(r, buf, 2), 2);
	next_in += 2;
	for (int i = 0; i < 7; i++)
		fill(buf[i], next_in + (uint64_t)i);
	CHECK_EQ(ring_mpsc_push_batch(r, buf, 7), 1);
	next_in += 1;
	CHECK_EQ(ring_mpsc_full_count(r), 3);
	CHECK_EQ(ring_mpsc_count(r), NSLOTS);

	/* Batch larger than the ring: capped at nslots. */
	CHECK_EQ(ring_mpsc_pop_batch(r, buf, NSLOTS * 2), NSLOTS);
	for (unsigned int i = 0; i < NSLOTS; i++)
		check_msg(buf[i], next_out++);
	CHECK(ring_mpsc_empty(r));
	for (unsigned int i = 0; i < NSLOTS * 2; i++)
		fill(buf[i], next_in + i);
	CHECK_EQ(ring_mpsc_push_batch(r, buf, NSLOTS * 2), NSLOTS);
	next_in += NSLOTS;
	CHECK_EQ(ring_mpsc_pop_batch(r, buf, NSLOTS * 2), NSLOTS);
	for (unsigned int i = 0; i < NSLOTS; i++)
		check_msg(buf[i], next_out++);

	/* Straddling batches. */
	for (int round = 0; round < 25; round++) {
		unsigned int n = 1 + (unsigned int)round % 5;

		for (unsigned int i = 0; i < n; i++)
			fill(buf[i], next_in + i);
		CHECK_EQ(ring_mpsc_push_batch(r, buf, n), n);
		next_in += n;
		CHECK_EQ(ring_mpsc_pop_batch(r, buf, NSLOTS), n);
		for (unsigned int i = 0; i < n; i++)
			check_msg(buf[i], next_out++);
	}
	CHECK_EQ(next_in, next_out);
}

/* A producer that claimed a position but has not written it holds back
 * the consumer, even if later positions are ready. */
static void test_claimed_unwritten(void)
{
	struct ring_mpsc *r = (struct ring_mpsc *)mem;
	unsigned char msg[RING_MPSC_MSG_SIZE];
	unsigned int k = 1;
	uint64_t pos;

	CHECK_EQ(ring_mpsc_init(r, sizeof(mem), NSLOTS), 0);
	pos = ring_mpsc__claim(r, &k);	/* the slow producer */
	CHECK_EQ(k, 1);
	CHECK_EQ(pos, 0);
	fill(msg, 1);
	CHECK_EQ(ring_mpsc_push(r, msg), 0);
	CHECK_EQ(ring_mpsc_count(r), 2);
	CHECK_EQ(ring_mpsc_pop(r, msg), -EAGAIN);
	fill(msg, 0);
	ring_mpsc__fill(r, pos, msg);
	CHECK_EQ(ring_mpsc_pop(r, msg), 0);
	check_msg(msg, 0);
	CHECK_EQ(ring_mpsc_pop(r, msg), 0);
	check_msg(msg, 1);
	CHECK(ring_mpsc_empty(r));
}

int main(void)
{
	test_size_init();
	test_attach();
	test_edges_wrap();
	test_batch();
	test_claimed_unwritten();
	printf("base_ring_mpsc: ok\n");
	return TEST_PASS;
}
