/* sync.c - uthread mutex, condition variable, semaphore, rwlock, barrier
 * and spin-PDR (include/atoll/sync.h).
 *
 * Design note: waiting without holding a spinlock across the switch.
 *
 * Akaros's parlib locks the wait queue's spinlock in uthread context and
 * releases it in the post-switch callback, after the uthread is queued.
 * Here that would deadlock: uth_block() picks the next uthread before the
 * switch (uth_next), and picking runs expired timers, whose callbacks (a
 * timed wait's) take wait-queue locks - possibly the very one held. So a
 * waiter queues a `struct uth_waiter` (on its own stack) under the object's
 * spinlock, drops the lock, and only then blocks; the wake-up that may come
 * in between is resolved by a two-party handshake on waiter->wake:
 *
 *    waiter's post callback:  CAS(wake, WAITING -> PARKED); failed: resume.
 *    waker (after dequeuing): xchg(wake, WOKEN); it was PARKED: resume.
 *
 * Whichever comes second sees the other and makes the uthread runnable,
 * exactly once; the uthread is never resumed before its post callback
 * ran, so its registers are saved (uthread.c's rule). A waker
 * dequeues under the lock (waiter->queued goes false), so only one waker
 * ever owns a waiter; its xchg is its last access to the waiter, whose
 * memory is the waiter's stack and is gone once the uthread returns.
 *
 * Hand-off: what a release gives (the mutex, a semaphore unit, the rwlock)
 * is assigned to the dequeued waiter under the lock, before the wake-up;
 * the waiter returns owning it. The waker's xchg is a release and the
 * waiter's final load of wake an acquire, so the releaser's critical
 * section happens before the waiter's.
 *
 * Timed waits: the timer is armed after the waiter is queued (it may fire
 * at once, even inside our own uth_block: fine, the handshake absorbs it).
 * Its callback takes the lock and, if the waiter is still queued, dequeues
 * it with result -ETIMEDOUT and wakes it; if a signal got there first, the
 * callback does nothing. The signal and the timeout thus count exactly
 * once. A waiter woken by a signal cancels the timer; timer_cancel()
 * returning false means the callback was already taken off the heap and
 * may still be running, touching the waiter, so the waiter waits for its
 * last store (cb_done) before its stack frame goes away.
 */
#include <errno.h>
#include <sched.h>

#include <atoll/sync.h>
#include <atoll/vcore.h>

#include "internal.h"

/* ---- waiters and wait queues ---------------------------------------------- */

enum {
	WAKE_WAITING = 0, /* queued, neither side done */
	WAKE_PARKED = 1,  /* the post callback ran: the uthread is off-CPU */
	WAKE_WOKEN = 2,   /* a waker dequeued it */
};

struct uth_waiter {
	struct uth_waiter *next, *prev; /* in a uth_waitq; under its lock */
	struct uthread *uth;
	bool queued;                    /* under the queue's lock */
	int result;                     /* set by the waker before waking */
	uint32_t wake;                  /* WAKE_*, atomic */
};

static void waiter_init(struct uth_waiter *w)
{
	w->next = w->prev = NULL;
	w->uth = uthread_self();
	BUG_ON(!w->uth); /* blocking needs uthread context */
	w->queued = false;
	w->result = 0;
	w->wake = WAKE_WAITING;
}

static bool waitq_empty(const struct uth_waitq *q)
{
	return q->head == NULL;
}

/* Append w. Caller holds the lock guarding q. */
static void waitq_push_locked(struct uth_waitq *q, struct uth_waiter *w)
{
	w->next = NULL;
	w->prev = q->tail;
	if (q->tail)
		q->tail->next = w;
	else
		q->head = w;
	q->tail = w;
	w->queued = true;
}

/* Unlink w, which is on q. Caller holds the lock guarding q. */
static void waitq_del_locked(struct uth_waitq *q, struct uth_waiter *w)
{
	if (w->prev)
		w->prev->next = w->next;
	else
		q->head = w->next;
	if (w->next)
		w->next->prev = w->prev;
	else
		q->tail = w->prev;
	w->next = w->prev = NULL;
	w->queued = false;
}

/* Dequeue the first waiter, or NULL. Caller holds the lock guarding q. */
static struct uth_waiter *waitq_pop_locked(struct uth_waitq *q)
{
	struct uth_waiter *w = q->head;

	if (w)
		waitq_del_locked(q, w);
	return w;
}

/* Dequeue every waiter; returns them as a list linked by ->next (the
 * links stay valid: nobody else touches a dequeued waiter). Caller holds
 * the lock guarding q. */
static struct uth_waiter *waitq_take_all_locked(struct uth_waitq *q)
{
	struct uth_waiter *first = q->head;

	for (struct uth_waiter *w = first; w; w = w->next)
		w->queued = false;
	q->head = q->tail = NULL;
	return first;
}

static void post_park(struct uthread *uth, void *arg)
{
	struct uth_waiter *w = arg;
	uint32_t expected = WAKE_WAITING;

	uth_note_blocked(uth, UTH_BLOCK_MUTEX);
	/* Acq_rel: pairs with waiter_wake()'s exchange; the second of the
	 * two sees the first and resumes uth. A CAS, not an exchange: WOKEN
	 * must stay, waiter_sleep() checks it. */
	if (!cas_acq_rel(&w->wake, &expected, WAKE_PARKED))
		uth_make_runnable(uth);
}

/* Resume w's uthread. The caller dequeued w (under the lock) and set what
 * it hands over; this is its last access to *w. Any context, no lock
 * held. */
static void waiter_wake(struct uth_waiter *w)
{
	struct uthread *uth = w->uth;

	/* Acq_rel: release orders the hand-off before the waiter's acquire
	 * in waiter_sleep(); pairs with post_park()'s exchange for who
	 * resumes the uthread. */
	if (xchg_acq_rel(&w->wake, WAKE_WOKEN) == WAKE_PARKED)
		uth_make_runnable(uth);
}

/* Wake a list returned by waitq_take_all_locked(). No lock held. */
static void waiter_wake_list(struct uth_waiter *w)
{
	while (w) {
		struct uth_waiter *next = w->next; /* read before w dies */

		waiter_wake(w);
		w = next;
	}
}

/* Block until a waker has dequeued and woken w (queued beforehand, the
 * lock dropped). Uthread context. */
static void waiter_sleep(struct uth_waiter *w)
{
	/* Acquire: pairs with waiter_wake(); already woken = no switch. */
	if (load_acquire(&w->wake) != WAKE_WOKEN)
		uth_block(post_park, w);
	/* Acquire: pairs with waiter_wake()'s release, so what the waker
	 * handed over (and did before) is visible. */
	BUG_ON(load_acquire(&w->wake) != WAKE_WOKEN);
}

/* ---- timed waits ---------------------------------------------------------- */

struct timed_waiter {
	struct uth_waiter w;
	struct rt_timer timer;
	struct spinlock *lock;          /* guards q */
	struct uth_waitq *q;
	uint32_t cb_done;               /* 1 once the callback is done with us */
	bool armed;                     /* the timer was armed */
};

static void timed_fire(struct rt_timer *t)
{
	struct timed_waiter *tw = container_of(t, struct timed_waiter, timer);
	bool mine;

	spin_lock(tw->lock);
	mine = tw->w.queued;
	if (mine) {
		waitq_del_locked(tw->q, &tw->w);
		tw->w.result = -ETIMEDOUT;
	}
	spin_unlock(tw->lock);
	if (mine)
		waiter_wake(&tw->w); /* last access to *tw */
	else
		/* Release: pairs with timed_finish()'s acquire; last access
		 * to *tw. */
		store_release(&tw->cb_done, 1);
}

static void timed_init(struct timed_waiter *tw, struct spinlock *lock,
		       struct uth_waitq *q)
{
	waiter_init(&tw->w);
	tw->timer.heap_idx = -1;
	tw->lock = lock;
	tw->q = q;
	tw->cb_done = 0;
	tw->armed = false;
}

static uint64_t deadline_after(uint64_t timeout_ns)
{
	uint64_t now = fast_ns();

	return timeout_ns < UINT64_MAX - 1 - now ? now + timeout_ns
						 : UINT64_MAX - 1;
}

/* Arm tw's timer, tw being queued and the lock dropped. On failure
 * dequeue tw again: -ENOMEM, or 0 when a waker dequeued it first (it is
 * then woken, and the caller sleeps as usual). Uthread context. */
static int timed_arm(struct timed_waiter *tw, uint64_t timeout_ns)
{
	int err = timer_arm(&tw->timer, deadline_after(timeout_ns), timed_fire);
	bool was_queued;

	if (!err) {
		tw->armed = true;
		return 0;
	}
	spin_lock(tw->lock);
	was_queued = tw->w.queued;
	if (was_queued)
		waitq_del_locked(tw->q, &tw->w);
	spin_unlock(tw->lock);
	return was_queued ? err : 0;
}

/* After waiter_sleep(): make sure the timer callback no longer touches tw.
 * Returns the wait's result (0 or -ETIMEDOUT). */
static int timed_finish(struct timed_waiter *tw)
{
	if (tw->w.result == -ETIMEDOUT)
		return -ETIMEDOUT; /* the callback woke us: done with tw */
	if (!tw->armed || timer_cancel(&tw->timer))
		return 0;
	/* Acquire: pairs with timed_fire()'s release. The callback is off
	 * the heap and on its way out; it runs on another vcore (or ran on
	 * ours before we resumed), so yielding lets it finish. */
	while (!load_acquire(&tw->cb_done)) {
		cpu_relax();
		uthread_yield();
	}
	return 0;
}

/* ---- mutex ------------------------------------------------------------------ */

/* Spins before queueing, while the holder may be about to release. Only
 * worth it with other vcores: on one vcore the holder cannot run. */
#define MUTEX_SPIN 128u

void uth_mutex_init(struct uth_mutex *m)
{
	spin_lock_init(&m->lock);
	m->wq.head = m->wq.tail = NULL;
	store_relaxed(&m->state, 0);
}

bool uth_mutex_trylock(struct uth_mutex *m)
{
	uint32_t expected = 0;

	/* Acquire: pairs with the release CAS in uth_mutex_unlock(). */
	return load_relaxed(&m->state) == 0 &&
	       cas_acquire(&m->state, &expected, 1);
}

static NOINLINE void uth_mutex_lock_slow(struct uth_mutex *m)
{
	struct uth_waiter w;
	uint32_t s;

	if (rt.nr_vcores > 1) {
		for (unsigned i = 0; i < MUTEX_SPIN; i++) {
			s = load_relaxed(&m->state);
			if (s == 2)
				break; /* waiters queued: it will be handed on */
			/* Acquire: pairs with uth_mutex_unlock()'s release. */
			if (s == 0 && cas_acquire(&m->state, &s, 1))
				return;
			cpu_relax();
		}
	}

	waiter_init(&w);
	spin_lock(&m->lock);
	for (;;) {
		s = load_relaxed(&m->state);
		if (s == 0) {
			/* Acquire: pairs with uth_mutex_unlock()'s release. */
			if (cas_acquire(&m->state, &s, 1)) {
				spin_unlock(&m->lock);
				return;
			}
			continue;
		}
		/* Mark it contended so the holder's unlock takes the lock
		 * and finds us; it may race the holder's 1 -> 0 CAS, in
		 * which case we retry. Ordering comes from the hand-off. */
		if (s == 2 || cas_relaxed(&m->state, &s, 2))
			break;
	}
	waitq_push_locked(&m->wq, &w);
	spin_unlock(&m->lock);
	waiter_sleep(&w); /* returns owning m: uth_mutex_unlock handed it */
}

void uth_mutex_lock(struct uth_mutex *m)
{
	uint32_t expected = 0;

	/* Acquire: pairs with the release CAS in uth_mutex_unlock(). */
	if (likely(cas_acquire(&m->state, &expected, 1)))
		return;
	uth_mutex_lock_slow(m);
}

void uth_mutex_unlock(struct uth_mutex *m)
{
	struct uth_waiter *w;
	uint32_t s = 1;

	/* Release: pairs with the acquire CAS of the next lock/trylock. */
	if (likely(cas_release(&m->state, &s, 0)))
		return;
	BUG_ON(s != 2); /* unlocking a free mutex */
	spin_lock(&m->lock);
	/* State 2 is set under the lock by a waiter that then queues before
	 * unlocking, and reset under it when the queue empties: so there is
	 * a waiter. It gets the mutex: state stays held. */
	w = waitq_pop_locked(&m->wq);
	BUG_ON(!w);
	if (waitq_empty(&m->wq))
		store_relaxed(&m->state, 1);
	spin_unlock(&m->lock);
	waiter_wake(w); /* release: our critical section before w's */
}

/* ---- condition variable ----------------------------------------------------- */

void uth_cond_init(struct uth_cond *c)
{
	spin_lock_init(&c->lock);
	c->wq.head = c->wq.tail = NULL;
}

void uth_cond_wait(struct uth_cond *c, struct uth_mutex *m)
{
	struct uth_waiter w;

	waiter_init(&w);
	/* Queued before m is released: a signal sent after the caller saw
	 * its predicate false (under m) finds us. */
	spin_lock(&c->lock);
	waitq_push_locked(&c->wq, &w);
	spin_unlock(&c->lock);
	uth_mutex_unlock(m);
	waiter_sleep(&w);
	uth_mutex_lock(m);
}

int uth_cond_timedwait(struct uth_cond *c, struct uth_mutex *m,
		       uint64_t timeout_ns)
{
	struct timed_waiter tw;
	int ret;

	timed_init(&tw, &c->lock, &c->wq);
	spin_lock(&c->lock);
	waitq_push_locked(&c->wq, &tw.w);
	spin_unlock(&c->lock);
	ret = timed_arm(&tw, timeout_ns);
	if (ret)
		return ret; /* not queued, m never released */
	uth_mutex_unlock(m);
	waiter_sleep(&tw.w);
	ret = timed_finish(&tw);
	uth_mutex_lock(m);
	return ret;
}

void uth_cond_signal(struct uth_cond *c)
{
	struct uth_waiter *w;

	spin_lock(&c->lock);
	w = waitq_pop_locked(&c->wq);
	spin_unlock(&c->lock);
	if (w)
		waiter_wake(w);
}

void uth_cond_broadcast(struct uth_cond *c)
{
	struct uth_waiter *list;

	spin_lock(&c->lock);
	list = waitq_take_all_locked(&c->wq);
	spin_unlock(&c->lock);
	waiter_wake_list(list);
}

/* ---- semaphore -------------------------------------------------------------- */

void uth_sem_init(struct uth_sem *s, uint32_t count)
{
	spin_lock_init(&s->lock);
	s->count = count;
	s->wq.head = s->wq.tail = NULL;
}

bool uth_sem_trydown(struct uth_sem *s)
{
	bool got = false;

	spin_lock(&s->lock);
	if (s->count) {
		s->count--;
		got = true;
	}
	spin_unlock(&s->lock);
	return got;
}

void uth_sem_down(struct uth_sem *s)
{
	struct uth_waiter w;

	spin_lock(&s->lock);
	if (s->count) {
		s->count--;
		spin_unlock(&s->lock);
		return;
	}
	waiter_init(&w);
	waitq_push_locked(&s->wq, &w);
	spin_unlock(&s->lock);
	waiter_sleep(&w); /* uth_sem_up() gave us its unit */
}

int uth_sem_timeddown(struct uth_sem *s, uint64_t timeout_ns)
{
	struct timed_waiter tw;
	int ret;

	spin_lock(&s->lock);
	if (s->count) {
		s->count--;
		spin_unlock(&s->lock);
		return 0;
	}
	timed_init(&tw, &s->lock, &s->wq);
	waitq_push_locked(&s->wq, &tw.w);
	spin_unlock(&s->lock);
	ret = timed_arm(&tw, timeout_ns);
	if (ret)
		return ret;
	waiter_sleep(&tw.w);
	return timed_finish(&tw);
}

int uth_sem_up(struct uth_sem *s)
{
	struct uth_waiter *w;

	spin_lock(&s->lock);
	w = waitq_pop_locked(&s->wq);
	if (!w) {
		if (s->count == UINT32_MAX) {
			spin_unlock(&s->lock);
			return -EOVERFLOW;
		}
		s->count++;
	}
	spin_unlock(&s->lock);
	if (w)
		waiter_wake(w); /* the unit goes straight to w */
	return 0;
}

/* ---- reader-writer lock ----------------------------------------------------- */

void uth_rwlock_init(struct uth_rwlock *rw)
{
	spin_lock_init(&rw->lock);
	rw->readers = 0;
	rw->writer = 0;
	rw->rq.head = rw->rq.tail = NULL;
	rw->wq.head = rw->wq.tail = NULL;
}

static bool rw_can_read_locked(const struct uth_rwlock *rw)
{
	return !rw->writer && waitq_empty(&rw->wq);
}

static bool rw_can_write_locked(const struct uth_rwlock *rw)
{
	return !rw->writer && !rw->readers;
}

bool uth_rwlock_tryrdlock(struct uth_rwlock *rw)
{
	bool got;

	spin_lock(&rw->lock);
	got = rw_can_read_locked(rw);
	if (got)
		rw->readers++;
	spin_unlock(&rw->lock);
	return got;
}

bool uth_rwlock_trywrlock(struct uth_rwlock *rw)
{
	bool got;

	spin_lock(&rw->lock);
	got = rw_can_write_locked(rw);
	if (got)
		rw->writer = 1;
	spin_unlock(&rw->lock);
	return got;
}

void uth_rwlock_rdlock(struct uth_rwlock *rw)
{
	struct uth_waiter w;

	spin_lock(&rw->lock);
	if (rw_can_read_locked(rw)) {
		rw->readers++;
		spin_unlock(&rw->lock);
		return;
	}
	waiter_init(&w);
	waitq_push_locked(&rw->rq, &w);
	spin_unlock(&rw->lock);
	waiter_sleep(&w); /* the unlocker counted us in readers */
}

void uth_rwlock_wrlock(struct uth_rwlock *rw)
{
	struct uth_waiter w;

	spin_lock(&rw->lock);
	if (rw_can_write_locked(rw)) {
		rw->writer = 1;
		spin_unlock(&rw->lock);
		return;
	}
	waiter_init(&w);
	waitq_push_locked(&rw->wq, &w);
	spin_unlock(&rw->lock);
	waiter_sleep(&w); /* the unlocker made us the writer */
}

void uth_rwlock_unlock(struct uth_rwlock *rw)
{
	struct uth_waiter *wake = NULL;

	spin_lock(&rw->lock);
	if (rw->writer) {
		rw->writer = 0;
		if (!waitq_empty(&rw->rq)) {
			/* Admit every queued reader: a writer phase is
			 * followed by a reader phase. */
			wake = waitq_take_all_locked(&rw->rq);
			for (struct uth_waiter *w = wake; w; w = w->next)
				rw->readers++;
		} else if ((wake = waitq_pop_locked(&rw->wq))) {
			rw->writer = 1;
		}
	} else {
		BUG_ON(!rw->readers); /* unlocking a free rwlock */
		if (--rw->readers == 0 && (wake = waitq_pop_locked(&rw->wq))) {
			rw->writer = 1;
		}
	}
	spin_unlock(&rw->lock);
	waiter_wake_list(wake); /* each woken uthread owns its share */
}

/* ---- barrier ---------------------------------------------------------------- */

int uth_barrier_init(struct uth_barrier *b, uint32_t n)
{
	if (!n)
		return -EINVAL;
	spin_lock_init(&b->lock);
	b->n = n;
	b->arrived = 0;
	b->wq.head = b->wq.tail = NULL;
	return 0;
}

int uth_barrier_wait(struct uth_barrier *b)
{
	struct uth_waiter w;
	struct uth_waiter *list;

	spin_lock(&b->lock);
	BUG_ON(!b->n);
	if (++b->arrived == b->n) {
		/* Last of the round: release it; the next round starts
		 * empty, and its arrivals queue on the emptied wq. */
		b->arrived = 0;
		list = waitq_take_all_locked(&b->wq);
		spin_unlock(&b->lock);
		waiter_wake_list(list);
		return 1;
	}
	waiter_init(&w);
	waitq_push_locked(&b->wq, &w);
	spin_unlock(&b->lock);
	waiter_sleep(&w);
	return 0;
}

/* ---- spin-PDR --------------------------------------------------------------- */

/* Spins before a waiter assumes the holder's thread was descheduled by
 * the kernel and yields (see sync.h). */
#define PDR_SPIN_LIMIT 1024u

void spin_pdr_init(struct spin_pdr *l)
{
	store_relaxed(&l->lock, 0);
}

/* The lock word the caller would store. */
static uint32_t pdr_me(void)
{
	int id = vcore_id();

	return id < 0 ? SPIN_PDR_NO_VCORE : (uint32_t)id + 1;
}

bool spin_pdr_trylock(struct spin_pdr *l)
{
	uint32_t expected = 0;

	/* Acquire: pairs with the release store in spin_pdr_unlock(). */
	return load_relaxed(&l->lock) == 0 &&
	       cas_acquire(&l->lock, &expected, pdr_me());
}

/* Whether holder h (a lock word) cannot make progress until the caller,
 * whose word is me, gets out of the way. */
static bool pdr_holder_stalled(uint32_t h, uint32_t me)
{
	struct vcore *vc;

	if (h == SPIN_PDR_NO_VCORE || me == SPIN_PDR_NO_VCORE ||
	    h - 1 >= rt.nr_vcores)
		return false;
	/* A uthread holding it on our vcore is not running: we are. */
	if (h == me)
		return true;
	vc = vcore_get(h - 1);
	return !load_relaxed(&vc->granted) || load_relaxed(&vc->parked) ||
	       load_relaxed(&vc->revoke_deadline);
}

/* Get out of the holder's way: let this vcore run someone else (the
 * holder, if it is queued here or can be stolen), and with cpu too let
 * the kernel run the holder's thread. */
static void pdr_back_off(bool cpu_too)
{
	if (uthread_self())
		uthread_yield();
	else
		cpu_too = true; /* vcore context or a plain thread */
	if (cpu_too)
		sched_yield();
}

static NOINLINE void spin_pdr_lock_slow(struct spin_pdr *l)
{
	unsigned spins = 0;

	for (;;) {
		uint32_t h = load_relaxed(&l->lock);
		uint32_t me = pdr_me(); /* our vcore may change at a yield */

		if (h == 0) {
			/* Acquire: pairs with spin_pdr_unlock()'s release. */
			if (cas_acquire(&l->lock, &h, me))
				return;
			continue;
		}
		if (pdr_holder_stalled(h, me)) {
			pdr_back_off(false);
			spins = 0;
		} else if (++spins >= PDR_SPIN_LIMIT) {
			pdr_back_off(true);
			spins = 0;
		} else {
			cpu_relax();
		}
	}
}

void spin_pdr_lock(struct spin_pdr *l)
{
	uint32_t expected = 0;

	/* Acquire: pairs with the release store in spin_pdr_unlock(). */
	if (likely(cas_acquire(&l->lock, &expected, pdr_me())))
		return;
	spin_pdr_lock_slow(l);
}

void spin_pdr_unlock(struct spin_pdr *l)
{
	BUG_ON(!load_relaxed(&l->lock)); /* unlocking a free lock */
	/* Release: orders the critical section before the store; pairs with
	 * the acquire CAS of the next spin_pdr_lock()/trylock(). */
	store_release(&l->lock, 0);
}

bool spin_pdr_held(const struct spin_pdr *l)
{
	return load_relaxed(&l->lock) != 0;
}
