/* lock.c - contended paths of the spinlock and the MCS queue lock.
 *
 * MCS design note. The lock word is a pointer to the last queued node (the
 * tail). To acquire, a thread swaps its node into the tail. A NULL previous
 * tail means the lock was free and is now ours. Otherwise the previous tail
 * is our predecessor: we link ourselves behind it (pred->next = node) and
 * spin on our own node->locked until the predecessor clears it.
 *
 * To release, the holder looks at node->next. If a successor is linked, it
 * clears the successor's locked flag, handing the lock over directly (the
 * lock word stays non-NULL throughout). If node->next is NULL, either nobody
 * is waiting or a successor has swapped itself into the tail but not yet
 * written node->next (the window between its swap and its link). A CAS of
 * the tail from node back to NULL tells the two apart: it succeeds only if
 * node is still the tail, i.e. nobody arrived, and the lock is free. If it
 * fails, a successor exists and is about to link; we wait for node->next to
 * appear and then hand over. The holder must not return (and free its node)
 * before that, since the successor is about to write into it.
 *
 * Every field a second thread may touch (tail, node->next, node->locked) is
 * accessed only through atomic.h, so TSan sees no plain races.
 */
#include <sched.h>

#include <atoll/lock.h>

/* One wait step: cpu_relax() for the first LOCK_SPIN_LIMIT rounds, then give
 * the CPU away each round, in case the holder (or, for MCS, the predecessor
 * that must hand over to us) has been preempted. See lock.h. */
static inline void lock__wait(uint32_t *rounds)
{
	if (likely(*rounds < LOCK_SPIN_LIMIT)) {
		(*rounds)++;
		cpu_relax();
	} else {
		sched_yield();
	}
}

void spin_lock__slow(struct spinlock *l)
{
	uint32_t rounds = 0;

	for (;;) {
		/* Test: wait with plain reads, so waiters share the line
		 * instead of bouncing it between them with exchanges. */
		while (load_relaxed(&l->locked))
			lock__wait(&rounds);
		/* Test-and-set. Acquire: pairs with the release in
		 * spin_unlock(). */
		if (xchg_acquire(&l->locked, 1) == 0)
			return;
	}
}

void mcs_lock(struct mcs_lock *l, struct mcs_node *node)
{
	struct mcs_node *pred;
	uint32_t rounds = 0;

	store_relaxed(&node->next, (struct mcs_node *)NULL);
	store_relaxed(&node->locked, 1);

	/* Release: publishes the node's initialisation above to whoever next
	 * reads the tail (a successor that will write node->next, or an
	 * mcs_unlock() CAS). Acquire: if the lock was free, pairs with the
	 * release CAS in the previous holder's mcs_unlock(), so its critical
	 * section happens before ours. */
	pred = xchg_acq_rel(&l->tail, node);
	if (!pred)
		return;

	/* Link behind the predecessor. Release: pairs with the acquire load
	 * of node->next in its mcs_unlock(); orders our node's initialisation
	 * (locked = 1) before it can clear that flag. */
	store_release(&pred->next, node);

	/* Acquire: pairs with the release store in the predecessor's
	 * mcs_unlock() that hands us the lock, so its critical section
	 * happens before ours. */
	while (load_acquire(&node->locked))
		lock__wait(&rounds);
}

bool mcs_trylock(struct mcs_lock *l, struct mcs_node *node)
{
	struct mcs_node *expected = NULL;

	if (load_relaxed(&l->tail))
		return false;
	store_relaxed(&node->next, (struct mcs_node *)NULL);
	store_relaxed(&node->locked, 0);
	/* Acquire on success: pairs with the release CAS in the previous
	 * holder's mcs_unlock(). Release: publishes node->next = NULL to the
	 * next acquirer, who will overwrite it with its link. */
	return cas_acq_rel(&l->tail, &expected, node);
}

void mcs_unlock(struct mcs_lock *l, struct mcs_node *node)
{
	/* Acquire: pairs with the successor's release store of the link in
	 * mcs_lock(), so we see its node initialised before we write it. */
	struct mcs_node *next = load_acquire(&node->next);
	uint32_t rounds = 0;

	if (!next) {
		struct mcs_node *expected = node;

		/* Nobody linked: free the lock if nobody has arrived either.
		 * Release: orders our critical section before the lock
		 * becomes free; pairs with the acquire exchange (or CAS) of
		 * the next mcs_lock()/mcs_trylock(). */
		if (cas_release(&l->tail, &expected, (struct mcs_node *)NULL))
			return;
		/* A successor swapped itself in but has not linked yet: wait
		 * for the link. Acquire: pairs with its release store. */
		while (!(next = load_acquire(&node->next)))
			lock__wait(&rounds);
	}
	/* Hand over. Release: orders our critical section before the waiter
	 * sees locked == 0; pairs with its acquire load in mcs_lock(). After
	 * this store the successor owns its node again: do not touch it. */
	store_release(&next->locked, 0);
}
