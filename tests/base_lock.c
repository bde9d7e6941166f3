/* base_lock.c - spinlock and MCS lock unit checks: static and dynamic
 * initialisation, trylock on a held lock, the held query, a waiter that
 * blocks until release, and the MCS unlock that races with an arriving
 * successor (driven by hand, so the rare path runs every time). */
#include <pthread.h>
#include <stdint.h>
#include <string.h>
#include <time.h>

#include <atoll/lock.h>

#include "harness.h"

static DEFINE_SPINLOCK(static_spin);
static DEFINE_MCS_LOCK(static_mcs);

static uint32_t waiter_state; /* 0 not started, 1 waiting, 2 got the lock */

static void sleep_ms(long ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };

	nanosleep(&ts, NULL);
}

static void *spin_waiter(void *arg)
{
	struct spinlock *l = arg;

	store_relaxed(&waiter_state, 1);
	spin_lock(l);
	CHECK(spin_lock_held(l));
	CHECK(!spin_trylock(l));
	store_relaxed(&waiter_state, 2);
	spin_unlock(l);
	return NULL;
}

static void *mcs_waiter(void *arg)
{
	struct mcs_lock *l = arg;
	struct mcs_node node, other;

	store_relaxed(&waiter_state, 1);
	mcs_lock(l, &node);
	CHECK(mcs_lock_held(l));
	CHECK(!mcs_trylock(l, &other));
	store_relaxed(&waiter_state, 2);
	mcs_unlock(l, &node);
	return NULL;
}

/* Start fn, let it reach the held lock, check it does not get in, release,
 * check it gets in. */
static void check_waiter_blocks(void *(*fn)(void *), void *lock,
				void (*release)(void *))
{
	pthread_t t;

	store_relaxed(&waiter_state, 0);
	CHECK_OK(-pthread_create(&t, NULL, fn, lock));
	while (load_relaxed(&waiter_state) == 0)
		sleep_ms(1);
	sleep_ms(20);
	CHECK_EQ(load_relaxed(&waiter_state), 1);
	release(lock);
	CHECK_OK(-pthread_join(t, NULL));
	CHECK_EQ(load_relaxed(&waiter_state), 2);
}

static void release_spin(void *l)
{
	spin_unlock(l);
}

static struct mcs_node main_node;

static void release_mcs(void *l)
{
	mcs_unlock(l, &main_node);
}

static void test_spinlock(void)
{
	struct spinlock l;

	/* Static initialiser. */
	CHECK(!spin_lock_held(&static_spin));
	CHECK(spin_trylock(&static_spin));
	CHECK(spin_lock_held(&static_spin));
	CHECK(!spin_trylock(&static_spin));
	spin_unlock(&static_spin);
	CHECK(!spin_lock_held(&static_spin));

	/* Dynamic init over garbage. */
	memset(&l, 0xa5, sizeof(l));
	spin_lock_init(&l);
	CHECK(!spin_lock_held(&l));
	spin_lock(&l);
	CHECK(spin_lock_held(&l));
	assert_spin_lock_held(&l);
	CHECK(!spin_trylock(&l));
	spin_unlock(&l);
	CHECK(spin_trylock(&l));
	spin_unlock(&l);
	CHECK(!spin_lock_held(&l));

	/* A second thread waits while we hold it. */
	spin_lock(&l);
	check_waiter_blocks(spin_waiter, &l, release_spin);
	CHECK(!spin_lock_held(&l));
}

/* Drive mcs_unlock() into the window where a successor has swapped itself
 * into the tail but not yet linked: the unlocker must wait for the link and
 * then hand over, not free the lock. */
static struct mcs_lock race_lock = MCS_LOCK_INIT;
static struct mcs_node race_holder, race_succ;
static uint32_t race_unlocked;

static void *race_unlocker(void *arg)
{
	(void)arg;
	mcs_unlock(&race_lock, &race_holder);
	store_release(&race_unlocked, 1); /* pairs with main's acquire */
	return NULL;
}

static void test_mcs_handoff_race(void)
{
	pthread_t t;

	CHECK(mcs_trylock(&race_lock, &race_holder));
	/* What mcs_lock() does for the successor up to (not including) its
	 * link: initialise the node and swap it into the tail. */
	store_relaxed(&race_succ.next, (struct mcs_node *)NULL);
	store_relaxed(&race_succ.locked, 1);
	CHECK(xchg_acq_rel(&race_lock.tail, &race_succ) == &race_holder);

	CHECK_OK(-pthread_create(&t, NULL, race_unlocker, NULL));
	sleep_ms(20);
	/* The unlocker must still be waiting for the link. */
	CHECK_EQ(load_acquire(&race_unlocked), 0);
	CHECK_EQ(load_acquire(&race_succ.locked), 1);
	CHECK(load_relaxed(&race_lock.tail) == &race_succ);

	/* Link, as mcs_lock() would; the unlocker hands over. */
	store_release(&race_holder.next, &race_succ);
	CHECK_OK(-pthread_join(t, NULL));
	CHECK_EQ(load_acquire(&race_unlocked), 1);
	CHECK_EQ(load_acquire(&race_succ.locked), 0);
	/* The successor now holds the lock: it stayed taken throughout. */
	CHECK(mcs_lock_held(&race_lock));
	mcs_unlock(&race_lock, &race_succ);
	CHECK(!mcs_lock_held(&race_lock));
}

static void test_mcs(void)
{
	struct mcs_lock l;
	struct mcs_node a, b;

	/* Static initialiser. */
	CHECK(!mcs_lock_held(&static_mcs));
	CHECK(mcs_trylock(&static_mcs, &a));
	CHECK(mcs_lock_held(&static_mcs));
	CHECK(!mcs_trylock(&static_mcs, &b));
	mcs_unlock(&static_mcs, &a);
	CHECK(!mcs_lock_held(&static_mcs));

	/* Dynamic init over garbage; nodes need no initialisation either. */
	memset(&l, 0xa5, sizeof(l));
	memset(&a, 0xa5, sizeof(a));
	memset(&b, 0xa5, sizeof(b));
	mcs_lock_init(&l);
	CHECK(!mcs_lock_held(&l));
	mcs_lock(&l, &a);
	CHECK(mcs_lock_held(&l));
	assert_mcs_lock_held(&l);
	CHECK(!mcs_trylock(&l, &b));
	mcs_unlock(&l, &a);
	CHECK(!mcs_lock_held(&l));

	/* Sequences reusing nodes, mixing lock and trylock. */
	for (int i = 0; i < 100; i++) {
		struct mcs_node *n = (i & 1) ? &a : &b;

		if (i % 3)
			mcs_lock(&l, n);
		else
			CHECK(mcs_trylock(&l, n));
		CHECK(!mcs_trylock(&l, (i & 1) ? &b : &a));
		mcs_unlock(&l, n);
	}
	CHECK(!mcs_lock_held(&l));

	/* A second thread queues while we hold it and gets it on release. */
	mcs_lock(&l, &main_node);
	check_waiter_blocks(mcs_waiter, &l, release_mcs);
	CHECK(!mcs_lock_held(&l));

	test_mcs_handoff_race();
}

int main(void)
{
	test_spinlock();
	test_mcs();
	return TEST_PASS;
}
