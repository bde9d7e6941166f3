/* base_lock_stress.c - mutual exclusion under contention: NTHREADS threads
 * update plain (non-atomic) shared state under the spinlock, then under the
 * MCS lock. Inside the critical section two fields must be equal on entry
 * (a writer that overlapped us would leave them apart) and the final counts
 * must be exact. Under TSan the race detector checks the same thing: any
 * overlap of two critical sections is a reported data race. A quarter of
 * the acquisitions go through trylock to exercise it under contention. */
#include <pthread.h>
#include <sched.h>
#include <stdint.h>

#include <atoll/clock.h>
#include <atoll/lock.h>

#include "harness.h"

#define NTHREADS 4
#define SPIN_ITERS 500000
/* MCS hands over in FIFO order. With more threads than cores, the next
 * waiter is often preempted and everyone waits for it to run again (a
 * spin budget plus a context switch: ~10-30 us per handoff on a loaded
 * 2-core VM), so this phase gets fewer rounds to stay fast. */
#define MCS_ITERS 20000

/* Guarded by whichever lock the current phase uses; plain on purpose. */
static struct {
	uint64_t a, b;   /* a == b outside any critical section */
	uint64_t count;  /* total critical sections */
	uint64_t per_thread[NTHREADS];
	int last;        /* thread that last held the lock */
	uint64_t switches; /* times the lock changed hands */
} shared;

static struct spinlock spin = SPINLOCK_INIT;
static struct mcs_lock mcs = MCS_LOCK_INIT;
static uint32_t ready; /* threads at the start line */
static uint64_t iters; /* per thread, this phase */

/* Start together: a pthread barrier wakes threads one by one, and the first
 * could finish its loop before the last is scheduled. Spinning until all
 * have arrived means they are all on a CPU (or just yielded) at the start. */
static void start_line(void)
{
	fetch_add_relaxed(&ready, 1);
	while (load_relaxed(&ready) < NTHREADS)
		sched_yield();
}

/* The critical section: short, but long enough for an overlapping writer
 * to be caught between the two increments. */
static void critical(int id)
{
	CHECK_EQ(shared.a, shared.b);
	shared.a++;
	compiler_barrier();
	shared.count++;
	shared.per_thread[id]++;
	if (shared.last != id) {
		shared.switches++;
		shared.last = id;
	}
	compiler_barrier();
	shared.b++;
}

/* Outside the lock, now and then: on a loaded machine a thread could run
 * its whole loop inside one time slice and never meet the others. */
static void interleave(uint64_t i)
{
	if ((i & 255) == 255)
		sched_yield();
}

static void *spin_worker(void *arg)
{
	int id = (int)(intptr_t)arg;

	start_line();
	for (uint64_t i = 0; i < iters; i++) {
		if ((i & 3) == 0) {
			while (!spin_trylock(&spin))
				cpu_relax();
		} else {
			spin_lock(&spin);
		}
		CHECK(spin_lock_held(&spin));
		critical(id);
		spin_unlock(&spin);
		interleave(i);
	}
	return NULL;
}

static void *mcs_worker(void *arg)
{
	int id = (int)(intptr_t)arg;

	start_line();
	for (uint64_t i = 0; i < iters; i++) {
		struct mcs_node node; /* fresh stack slot each time */

		if ((i & 3) == 0) {
			if (!mcs_trylock(&mcs, &node))
				mcs_lock(&mcs, &node);
		} else {
			mcs_lock(&mcs, &node);
		}
		CHECK(mcs_lock_held(&mcs));
		critical(id);
		mcs_unlock(&mcs, &node);
		interleave(i);
	}
	return NULL;
}

static void run(const char *name, void *(*worker)(void *))
{
	pthread_t t[NTHREADS];
	uint64_t t0 = now_ns();

	shared.a = shared.b = shared.count = shared.switches = 0;
	shared.last = -1;
	for (int i = 0; i < NTHREADS; i++)
		shared.per_thread[i] = 0;

	store_relaxed(&ready, 0);
	for (int i = 0; i < NTHREADS; i++)
		CHECK_OK(-pthread_create(&t[i], NULL, worker,
					 (void *)(intptr_t)i));
	for (int i = 0; i < NTHREADS; i++)
		CHECK_OK(-pthread_join(t[i], NULL));

	CHECK_EQ(shared.count, NTHREADS * iters);
	CHECK_EQ(shared.a, NTHREADS * iters);
	CHECK_EQ(shared.b, NTHREADS * iters);
	for (int i = 0; i < NTHREADS; i++)
		CHECK_EQ(shared.per_thread[i], iters);
	printf("%s: %d threads x %llu: %.1f ms, lock changed hands %llu times\n",
	       name, NTHREADS, (unsigned long long)iters,
	       (double)ns_since(t0) / 1e6,
	       (unsigned long long)shared.switches);
}

int main(void)
{
	iters = test_scale(SPIN_ITERS);
	run("spinlock", spin_worker);
	CHECK(!spin_lock_held(&spin));
	iters = test_scale(MCS_ITERS);
	run("mcs", mcs_worker);
	CHECK(!mcs_lock_held(&mcs));
	return TEST_PASS;
}
