/* base_atomic.c - atomic wrappers: values, CAS failure reporting, and a
 * two-thread message-passing check that fails if release/acquire do not
 * order the payload before the flag. */
#include <pthread.h>
#include <stdint.h>

#include <atoll/atomic.h>

#include "harness.h"

#define ROUNDS 200000

static uint64_t payload;
static uint32_t flag;

static void *writer(void *arg)
{
	(void)arg;
	for (uint64_t i = 1; i <= test_scale(ROUNDS); i++) {
		/* Wait for the reader to consume the last round. */
		while (load_acquire(&flag) != 0) /* pairs with reader's release */
			cpu_relax();
		payload = i;
		store_release(&flag, 1); /* pairs with reader's acquire */
	}
	return NULL;
}

int main(void)
{
	uint64_t v = 5, expected = 4;
	pthread_t t;

	CHECK(!cas_acq_rel(&v, &expected, 9));
	CHECK_EQ(expected, 5);
	CHECK(cas_acq_rel(&v, &expected, 9));
	CHECK_EQ(load_relaxed(&v), 9);
	CHECK_EQ(fetch_add_relaxed(&v, 1), 9);
	CHECK_EQ(xchg_acq_rel(&v, 3), 10);
	CHECK_EQ(fetch_or_acq_rel(&v, 4), 3);
	CHECK_EQ(fetch_and_acq_rel(&v, 6), 7);
	CHECK_EQ(load_acquire(&v), 6);
	CHECK(IS_POW2(64) && !IS_POW2(48) && !IS_POW2(0));
	CHECK_EQ(ALIGN_UP(65, 64), 128);

	CHECK_OK(-pthread_create(&t, NULL, writer, NULL));
	for (uint64_t i = 1; i <= test_scale(ROUNDS); i++) {
		while (load_acquire(&flag) != 1) /* pairs with writer's release */
			cpu_relax();
		CHECK_EQ(payload, i);
		store_release(&flag, 0); /* pairs with writer's acquire */
	}
	pthread_join(t, NULL);
	return TEST_PASS;
}
