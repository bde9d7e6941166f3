/* lock.h - spinning mutual exclusion: a test-and-test-and-set spinlock and
 * an MCS queue lock.
 *
 * Owns: the lock words only. Both locks are caller-allocated, need no
 * destructor and never allocate. struct mcs_node is provided by each
 * acquirer (normally on its stack) and must stay alive and unmoved from
 * mcs_lock()/mcs_trylock() until the matching mcs_unlock() returns.
 *
 * Thread safety: every function may be called concurrently from any thread
 * (or any vcore) on the same lock. Locks are not recursive; unlocking a lock
 * you do not hold is a bug. Neither lock records an owner: spin_lock_held()
 * and mcs_lock_held() say "someone holds it", which is what
 * assert_spin_lock_held()-style precondition checks need.
 *
 * Calling context: any thread. Not async-signal-safe (a signal handler that
 * takes a lock its interrupted thread holds deadlocks).
 *
 * Choosing: the spinlock is one word and the cheapest when contention is
 * rare; all waiters spin on the same cache line, so under heavy contention
 * every release causes a storm of misses and there is no fairness. The MCS
 * lock is FIFO-fair and each waiter spins on its own node, so a release
 * touches only the next waiter's line; it costs a node per acquirer and a
 * few more atomics.
 *
 * Spinning and preemption: these are spin locks, meant for short critical
 * sections on dedicated cores where the holder is never descheduled. When
 * threads outnumber cores (tests, laptops, oversubscribed VMs) the holder
 * can be preempted and a pure spinner would burn its whole time slice
 * waiting for it. So a waiter spins with cpu_relax() for LOCK_SPIN_LIMIT
 * rounds and then, deliberately, calls sched_yield() between further checks.
 * On a dedicated core the limit is never reached in a well-behaved program.
 * Never hold a lock across anything that blocks or switches uthreads.
 */
#ifndef ATOLL_LOCK_H
#define ATOLL_LOCK_H

#include <assert.h>
#include <stdbool.h>
#include <stdint.h>

#include <atoll/atomic.h>
#include <atoll/compiler.h>

/* cpu_relax() rounds a waiter spins before it starts yielding the CPU:
 * about 2-20 us (a pause costs ~10-140 cycles depending on the core). Far
 * longer than a well-behaved critical section, short enough that an MCS
 * handoff to a preempted waiter (every waiter behind it must wait for that
 * one to run again) costs little more than a context switch. Past the
 * limit, yielding on an otherwise idle core is one cheap system call per
 * check. Only lock.c uses it; a build may override it with -D. */
#ifndef LOCK_SPIN_LIMIT
#define LOCK_SPIN_LIMIT 256u
#endif

/* ---- spinlock ----------------------------------------------------------- */

struct spinlock {
	uint32_t locked; /* 0 free, 1 held */
};

#define SPINLOCK_INIT { 0 }
#define DEFINE_SPINLOCK(name) struct spinlock name = SPINLOCK_INIT

static inline void spin_lock_init(struct spinlock *l)
{
	store_relaxed(&l->locked, 0);
}

/* Contended path of spin_lock(), out of line (lock.c). */
void spin_lock__slow(struct spinlock *l);

/* Try once to take l. Returns true if the caller now holds it. Any thread. */
static inline bool spin_trylock(struct spinlock *l)
{
	/* Read first so a failing trylock does not take the line exclusive. */
	if (load_relaxed(&l->locked))
		return false;
	/* Acquire: pairs with the release in spin_unlock() of the previous
	 * holder, so its critical section happens before ours. */
	return xchg_acquire(&l->locked, 1) == 0;
}

/* Take l, spinning (then yielding, see above) until it is free. */
static inline void spin_lock(struct spinlock *l)
{
	/* Acquire: pairs with the release in spin_unlock(). */
	if (likely(xchg_acquire(&l->locked, 1) == 0))
		return;
	spin_lock__slow(l);
}

/* Release l, which the caller holds. */
static inline void spin_unlock(struct spinlock *l)
{
	/* Release: orders our critical section before the store; pairs with
	 * the acquire exchange of the next spin_lock()/spin_trylock(). */
	store_release(&l->locked, 0);
}

/* Whether anyone holds l. Only meaningful as an assertion by the holder
 * (it cannot become false under the holder's feet); a racy hint otherwise. */
static inline bool spin_lock_held(const struct spinlock *l)
{
	return load_relaxed(&l->locked) != 0;
}

#define assert_spin_lock_held(l) assert(spin_lock_held(l))

/* ---- MCS queue lock ----------------------------------------------------- */

/* One per acquisition, owned by the acquirer. Fields are private. */
struct mcs_node {
	struct mcs_node *next; /* successor in the queue, set by it */
	uint32_t locked;       /* 1 while waiting, 0 once handed the lock */
};

struct mcs_lock {
	struct mcs_node *tail; /* last node in the queue; NULL when free */
};

#define MCS_LOCK_INIT { NULL }
#define DEFINE_MCS_LOCK(name) struct mcs_lock name = MCS_LOCK_INIT

static inline void mcs_lock_init(struct mcs_lock *l)
{
	store_relaxed(&l->tail, (struct mcs_node *)NULL);
}

/* Take l, queueing behind earlier acquirers in FIFO order. node is the
 * caller's; it needs no initialisation and must not be in use elsewhere. */
void mcs_lock(struct mcs_lock *l, struct mcs_node *node);

/* Take l only if it is free. Returns true if the caller now holds it (then
 * release with mcs_unlock(l, node)); false leaves node unused. */
bool mcs_trylock(struct mcs_lock *l, struct mcs_node *node);

/* Release l, taken with the same node. Hands the lock straight to the next
 * waiter if there is one. node may be reused once this returns. */
void mcs_unlock(struct mcs_lock *l, struct mcs_node *node);

/* Whether anyone holds (or is queued on) l. Assertion use only, as for
 * spin_lock_held(). */
static inline bool mcs_lock_held(const struct mcs_lock *l)
{
	return load_relaxed(&l->tail) != NULL;
}

#define assert_mcs_lock_held(l) assert(mcs_lock_held(l))

#endif /* ATOLL_LOCK_H */
