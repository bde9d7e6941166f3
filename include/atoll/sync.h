/* sync.h - blocking synchronisation for uthreads: mutex, condition
 * variable, counting semaphore, reader-writer lock, barrier, and a spinlock
 * with preemption detection and recovery (spin-PDR).
 *
 * Owns: the lock words and wait queues embedded in each object. Nothing
 * here allocates; every object is caller-allocated, needs no destructor
 * (destroy it only when no uthread waits on it or holds it), and can be
 * initialised statically with the *_INIT macro or at run time with *_init().
 *
 * Blocking: a uthread that must wait is queued on the object's wait queue
 * and stops (uth_block, see src/rt/uthread.c); its vcore runs other
 * uthreads meanwhile. Waiting is FIFO everywhere, and a release hands what
 * it releases (the mutex, a semaphore unit, the rwlock) straight to the
 * first waiter, so a waiter cannot be overtaken by a late arrival and no
 * waiter starves. The price is a hand-off convoy under heavy contention:
 * the lock stays owned by a woken uthread until its vcore runs it.
 *
 * Locking inside: each object has one spinlock guarding its wait queue(s)
 * and counters, held only for a few instructions and never across a switch
 * (see the design note in src/rt/sync.c). Lock order: that spinlock may be
 * held while a run-queue lock is taken (a wake-up), never the reverse.
 *
 * Calling context: functions that may block (lock, wait, down, timed
 * variants) are for uthread context only. The non-blocking release side of
 * the condition variable and the semaphore (uth_cond_signal,
 * uth_cond_broadcast, uth_sem_up) may be called from any runtime context,
 * uthread or vcore (event handlers, timer callbacks). A mutex or rwlock is
 * released by its holder, in uthread context. The try* functions never
 * block; they return true when they took the object.
 *
 * Timeouts are relative, in nanoseconds, and measured on fast_ns() (the
 * CLOCK_MONOTONIC timeline, clock.h). A timed wait returns no earlier than
 * the timeout; how much later depends on when the arming vcore next
 * reaches a scheduling point.
 *
 * Errors are negative errno values (-ETIMEDOUT, -ENOMEM, -EINVAL).
 */
#ifndef ATOLL_SYNC_H
#define ATOLL_SYNC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <atoll/lock.h>

/* A queued waiter: private to sync.c, lives on the waiting uthread's
 * stack for the duration of the wait. */
struct uth_waiter;

/* FIFO of waiters, doubly linked so a timed-out waiter leaves in O(1).
 * Guarded by the spinlock of the object that embeds it. All zeroes is an
 * empty queue. */
struct uth_waitq {
	struct uth_waiter *head;
	struct uth_waiter *tail;
};

#define UTH_WAITQ_INIT { NULL, NULL }

/* ---- mutex ------------------------------------------------------------- */

/* A sleeping mutex. Owns: state and the waiters.
 * Locking: state is atomic; lock/unlock with no contention is one
 * compare-and-swap each. The spinlock guards wq and every change of state
 * to or from "contended" (2).
 * Policy: a brief spin, then FIFO queueing; unlock with waiters queued
 * hands the mutex straight to the first (it returns from uth_mutex_lock
 * owning it), so no late arrival can barge past a queued waiter. A late
 * arrival may take a free mutex only while nobody is queued.
 * Not recursive; unlock by the holder only. */
struct uth_mutex {
	uint32_t state;          /* 0 free, 1 held, 2 held and waiters queued */
	struct spinlock lock;    /* guards wq, and state's 1 <-> 2 moves */
	struct uth_waitq wq;
};

#define UTH_MUTEX_INIT { 0, SPINLOCK_INIT, UTH_WAITQ_INIT }

void uth_mutex_init(struct uth_mutex *m);
/* Take m, blocking while someone else holds it. Uthread context. */
void uth_mutex_lock(struct uth_mutex *m);
/* Take m if it is free; true when taken. Never blocks. Uthread context. */
bool uth_mutex_trylock(struct uth_mutex *m);
/* Release m (held by the caller), handing it to the first waiter if any.
 * Uthread context. */
void uth_mutex_unlock(struct uth_mutex *m);

/* ---- condition variable ------------------------------------------------ */

/* Owns: its waiters. Locking: the spinlock guards wq. The associated
 * mutex is the caller's: wait/timedwait must be called holding it;
 * signal/broadcast may be called with or without it (holding it is what
 * makes "check predicate, then wait" race-free for the waiter).
 * Wake-ups are FIFO. There are no spurious wake-ups, but a woken waiter
 * must still re-check its predicate: another uthread may take the mutex
 * (and consume the state) between the signal and the waiter's relock.
 * Broadcast wakes every waiter; they then contend for the mutex (no wait
 * morphing). */
struct uth_cond {
	struct spinlock lock;    /* guards wq */
	struct uth_waitq wq;
};

#define UTH_COND_INIT { SPINLOCK_INIT, UTH_WAITQ_INIT }

void uth_cond_init(struct uth_cond *c);
/* Atomically release m and wait for a signal; m is held again on return.
 * Uthread context. */
void uth_cond_wait(struct uth_cond *c, struct uth_mutex *m);
/* As uth_cond_wait, for at most timeout_ns. Returns 0 when signalled,
 * -ETIMEDOUT when the timeout passed first, -ENOMEM when no timer could be
 * armed (it then did not wait). m is held again on return in every case.
 * A signal and the timeout never both count: a waiter that times out was
 * not dequeued by a signal, so that signal wakes another. Uthread
 * context. */
int uth_cond_timedwait(struct uth_cond *c, struct uth_mutex *m,
		       uint64_t timeout_ns);
/* Wake the longest waiter, if any. Any runtime context. */
void uth_cond_signal(struct uth_cond *c);
/* Wake every waiter. Any runtime context. */
void uth_cond_broadcast(struct uth_cond *c);

/* ---- counting semaphore ------------------------------------------------ */

/* Owns: count and its waiters. Locking: the spinlock guards both.
 * Policy: FIFO; up() with waiters queued gives the unit straight to the
 * first (count stays 0), so a trydown cannot take a unit a sleeper waits
 * for. */
struct uth_sem {
	struct spinlock lock;    /* guards count and wq */
	uint32_t count;          /* free units; 0 whenever wq is non-empty */
	struct uth_waitq wq;
};

#define UTH_SEM_INIT(n) { SPINLOCK_INIT, (n), UTH_WAITQ_INIT }

void uth_sem_init(struct uth_sem *s, uint32_t count);
/* Take a unit, blocking until one is free. Uthread context. */
void uth_sem_down(struct uth_sem *s);
/* Take a unit if one is free; true when taken. Any runtime context. */
bool uth_sem_trydown(struct uth_sem *s);
/* Take a unit, waiting at most timeout_ns: 0, -ETIMEDOUT, or -ENOMEM (no
 * timer: it did not wait). Uthread context. */
int uth_sem_timeddown(struct uth_sem *s, uint64_t timeout_ns);
/* Return a unit (to the first waiter if any). 0, or -EOVERFLOW when count
 * is already UINT32_MAX. Any runtime context. */
int uth_sem_up(struct uth_sem *s);

/* ---- reader-writer lock ------------------------------------------------ */

/* Owns: the reader count, the writer flag and two wait queues.
 * Locking: the spinlock guards everything.
 * Policy (phase-fair): a reader arriving while a writer holds the lock OR
 * waits for it queues, so a stream of readers cannot starve writers; the
 * last reader out hands the lock to the first queued writer. A writer
 * releasing the lock admits every reader queued at that moment if there
 * is one, else hands it to the next writer, so a stream of writers
 * cannot starve readers either. Not recursive: a reader that takes the
 * read lock again while a writer waits deadlocks. */
struct uth_rwlock {
	struct spinlock lock;    /* guards everything below */
	uint32_t readers;        /* readers holding the lock */
	uint32_t writer;         /* 1 while a writer holds it */
	struct uth_waitq rq;     /* waiting readers */
	struct uth_waitq wq;     /* waiting writers */
};

#define UTH_RWLOCK_INIT { SPINLOCK_INIT, 0, 0, UTH_WAITQ_INIT, UTH_WAITQ_INIT }

void uth_rwlock_init(struct uth_rwlock *rw);
/* Take rw shared. Uthread context. */
void uth_rwlock_rdlock(struct uth_rwlock *rw);
/* Take rw exclusive. Uthread context. */
void uth_rwlock_wrlock(struct uth_rwlock *rw);
/* Non-blocking variants, same policy (tryrdlock fails while a writer
 * waits); true when taken. Uthread context. */
bool uth_rwlock_tryrdlock(struct uth_rwlock *rw);
bool uth_rwlock_trywrlock(struct uth_rwlock *rw);
/* Release rw, held shared or exclusive by the caller. Uthread context. */
void uth_rwlock_unlock(struct uth_rwlock *rw);

/* ---- barrier ----------------------------------------------------------- */

/* Owns: the arrival count of the current round and its waiters.
 * Locking: the spinlock guards all fields but n (constant after init).
 * Reusable: the last arrival of a round releases the others and resets the
 * count, so a uthread may enter the next round at once. */
struct uth_barrier {
	struct spinlock lock;    /* guards arrived and wq */
	uint32_t n;              /* uthreads per round, >= 1 */
	uint32_t arrived;        /* in the current round */
	struct uth_waitq wq;
};

#define UTH_BARRIER_INIT(nr) { SPINLOCK_INIT, (nr), 0, UTH_WAITQ_INIT }

/* -EINVAL when n is 0. */
int uth_barrier_init(struct uth_barrier *b, uint32_t n);
/* Wait until n uthreads have arrived in this round. Returns 1 to exactly
 * one of them (the last to arrive, the "serial" one), 0 to the others.
 * Uthread context. */
int uth_barrier_wait(struct uth_barrier *b);

/* ---- spin-PDR ---------------------------------------------------------- */

/* A spinlock that knows its holder's vcore, for short critical sections
 * shared between uthreads and vcore context (2LS-style code).
 *
 * Akaros's idea, preemption detection and recovery: a plain spinlock is
 * fatal when the kernel preempts the holder's core, since every waiter
 * spins until the holder runs again. Akaros's spin_pdr records the holder's
 * vcore; a waiter that sees that vcore preempted stops spinning and asks
 * the kernel to run the holder's vcore in its place (change-to-vcore), so
 * the holder finishes its critical section.
 *
 * Hosted, no process can run another's kernel thread, so the recovery is
 * to get out of the way: the waiter stops spinning and, in uthread
 * context, yields its vcore (uthread_yield) so the scheduler can run the
 * holder if it was moved to a queue. A waiter stops spinning when
 *  - the holder's vcore is not running: parked, not granted, or with a
 *    revocation pending (its uthreads are being handed to other vcores);
 *  - the holder's vcore is the waiter's own: the holder, a uthread, is
 *    then not running (it switched away inside its critical section);
 *  - it has spun too long (the kernel may have descheduled the holder's
 *    thread, which the runtime cannot see): it yields its vcore and
 *    then its cpu (sched_yield).
 * Holding a spin-PDR across a switch is allowed but slow.
 *
 * Owns: the lock word only. Context: any runtime context (vcore context
 * spins and yields the cpu instead of the vcore); a plain thread outside
 * the runtime may also use it (recorded as "no vcore"). Not recursive. */
struct spin_pdr {
	uint32_t lock;           /* 0 free, else holder's vcore id + 1 */
};

#define SPIN_PDR_INIT { 0 }
/* Lock word of a holder outside the runtime. */
#define SPIN_PDR_NO_VCORE UINT32_MAX

void spin_pdr_init(struct spin_pdr *l);
void spin_pdr_lock(struct spin_pdr *l);
/* True when taken. */
bool spin_pdr_trylock(struct spin_pdr *l);
void spin_pdr_unlock(struct spin_pdr *l);
/* Whether someone holds l (assertion by the holder; a hint otherwise). */
bool spin_pdr_held(const struct spin_pdr *l);

#endif /* ATOLL_SYNC_H */
