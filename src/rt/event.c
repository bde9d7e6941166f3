/* event.c - event queues with handlers, drained by their vcore.
 *
 * Design note. A queue is an MPSC ring (ring.h) right behind its header in
 * one runtime allocation; a struct event is exactly one ring message.
 *
 * Handler queues sit on their vcore's list (evq_list, under evq_lock). A
 * poster pushes, then sets the vcore's doorbell (store_release) and kicks
 * it. The vcore checks the doorbell with one relaxed load at each
 * scheduling point (uth_next, vcore_loop) and in vcore_has_work(), so it
 * neither parks nor keeps running uthreads with events waiting. ev_drain()
 * clears the doorbell first (an atomic exchange), then pops every bound
 * queue: an event pushed after the exchange rings again and is seen by the
 * next drain. A drain takes at most EV_DRAIN_BATCH events per queue and
 * re-rings the doorbell if it left some, so a flood cannot starve the
 * vcore's uthreads. No lost wake-up: the doorbell plays the part of queued
 * work in vcore.c's parking handshake (store, full fence in vcore_kick,
 * read parked; parker: store parked, fence, read the doorbell).
 *
 * Revoked vcores: a vcore that gave its core back runs nothing, so vcore 0
 * (never revoked) stands in. A poster that finds the bound vcore not
 * granted rings vcore 0's doorbell instead of kicking it; vcore 0's drain
 * also takes the doorbell of every vcore that is not granted and drains
 * its queues (under that vcore's evq_lock, so there is still one consumer
 * at a time). The hand-over is a store-buffering handshake like parking:
 * the poster stores the doorbell, issues a full fence (in vcore_kick) and
 * re-reads granted; the giving-back vcore clears granted, issues a full
 * fence (in vcore_park) and reads its doorbell. If the poster still saw it
 * granted, the vcore sees the doorbell, stays up and drains it itself.
 *
 * Handlers run with evq_lock held, which is what makes ev_queue_destroy()
 * safe: once it has unlinked the queue under the lock, no drain can be
 * inside it. That is also why handlers may not create or destroy queues
 * (vc->ev_draining catches it on the handler's own vcore; on another vcore
 * it could deadlock against that vcore's drain).
 *
 * Handler-less queues: one consumer uthread at a time (cons_busy). A waiter
 * that finds the ring empty blocks; its post-switch callback publishes it in
 * q->waiter, issues a full fence and looks at the ring again; a poster
 * pushes, issues a full fence and takes q->waiter. Whichever fence comes
 * second sees the other side's store, and the exchange on q->waiter makes
 * sure exactly one side makes the waiter runnable. A poster may wake the
 * waiter while its callback still reads q; the waiter does not leave
 * ev_wait() (after which q may be destroyed) until the callback has said
 * it is done (in_post).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <atoll/event.h>
#include <atoll/ring.h>

#include "internal.h"

#define EV_MAX_SLOTS (1u << 20)
#define EV_DRAIN_BATCH 64u

BUILD_ASSERT(sizeof(struct event) == RING_MPSC_MSG_SIZE);

struct ev_queue {
	/* Read-only after creation. */
	struct ring_mpsc *ring;
	void (*handler)(const struct event *ev, void *arg);
	void *arg;
	unsigned vcore;

	/* Consumer side. */
	struct ev_queue *next;      /* on the vcore's list, under evq_lock */
	uint64_t delivered;         /* written by the consumer only */
	uint32_t cons_busy;         /* handler-less: a consumer is inside */
	uint32_t in_post;           /* post_ev_wait() still reads q; atomic */

	/* Handler-less: the uthread blocked in ev_wait(), or NULL. Written
	 * by the waiter and by posters, so on a line of its own. */
	CACHE_ALIGNED struct uthread *waiter;
} CACHE_ALIGNED;

/* ---- creation and destruction --------------------------------------------- */

int ev_queue_create(struct ev_queue **out, uint32_t nslots, unsigned vcore,
		    void (*handler)(const struct event *ev, void *arg),
		    void *arg)
{
	struct vcore *self = vcore_self();
	size_t rsize = ring_mpsc_size(nslots);
	struct ev_queue *q;
	struct vcore *vc;

	if (!self)
		return -EPERM;
	if (!out || !rsize || nslots > EV_MAX_SLOTS || vcore >= rt.nr_vcores)
		return -EINVAL;
	if (self->ev_draining)
		return -EDEADLK;
	q = aligned_alloc(CACHE_LINE, sizeof(*q) + rsize);
	if (!q)
		return -ENOMEM;
	memset(q, 0, sizeof(*q));
	q->ring = (struct ring_mpsc *)(q + 1);
	if (ring_mpsc_init(q->ring, rsize, nslots)) {
		free(q);
		return -EINVAL;
	}
	q->handler = handler;
	q->arg = arg;
	q->vcore = vcore;
	if (handler) {
		vc = vcore_get(vcore);
		/* The lock publishes q to the drainer (its acquire pairs with
		 * our release here). */
		spin_lock(&vc->evq_lock);
		q->next = vc->evq_list;
		vc->evq_list = q;
		spin_unlock(&vc->evq_lock);
	}
	*out = q;
	return 0;
}

int ev_queue_destroy(struct ev_queue *q)
{
	struct vcore *self = vcore_self();
	struct event ev;
	int dropped = 0;

	if (!self)
		return -EPERM;
	if (self->ev_draining)
		return -EDEADLK;
	if (q->handler) {
		struct vcore *vc = vcore_get(q->vcore);
		struct ev_queue **pp;

		spin_lock(&vc->evq_lock);
		for (pp = &vc->evq_list; *pp != q; pp = &(*pp)->next)
			BUG_ON(!*pp);
		*pp = q->next;
		spin_unlock(&vc->evq_lock);
		/* No drain runs inside q any more: we are its consumer. */
	} else if (xchg_acquire(&q->cons_busy, 1)) {
		/* A consumer (maybe a blocked waiter) is inside. The acquire
		 * pairs with the last consumer's release of cons_busy: its
		 * pops are done before ours. */
		return -EBUSY;
	}
	while (ring_mpsc_pop(q->ring, &ev) == 0)
		dropped++;
	free(q);
	return dropped;
}

/* ---- posting ---------------------------------------------------------------- */

/* Tell vc that a queue it drains has events, waking it if parked. */
static void ev_ring(struct vcore *vc)
{
	/* Release pairs with the exchange in ev_drain(). */
	store_release(&vc->ev_doorbell, 1);
	vcore_kick(vc);
}

int ev_post(struct ev_queue *q, uint32_t type, const void *payload,
	    size_t len)
{
	struct event ev;
	struct uthread *w;
	int err;

	if (len > EV_PAYLOAD_SIZE)
		return -EMSGSIZE;
	ev.type = type;
	ev.len = (uint32_t)len;
	if (len)
		memcpy(ev.payload, payload, len);
	memset(ev.payload + len, 0, EV_PAYLOAD_SIZE - len);
	err = ring_mpsc_push(q->ring, &ev); /* counts a full ring itself */
	if (err)
		return err;

	if (q->handler) {
		struct vcore *vc = vcore_get(q->vcore);

		/* Release pairs with the exchange in ev_drain(): a drain
		 * that takes this doorbell finds our event. */
		store_release(&vc->ev_doorbell, 1);
		if (likely(load_relaxed(&vc->granted))) {
			/* vcore_kick's full fence orders the doorbell before
			 * the re-read of granted: see the top note. */
			vcore_kick(vc);
			if (likely(load_relaxed(&vc->granted)))
				return 0;
		}
		ev_ring(vcore_get(0)); /* it stands in for a revoked vcore */
		return 0;
	}
	/* Pairs with the fence in post_ev_wait(): either the waiter sees our
	 * event, or we see the waiter. */
	fence_seq_cst();
	if (load_relaxed(&q->waiter)) {
		/* Acq_rel: exactly one of us and the waiter's own re-check
		 * takes it (pairs with its exchange and its publication). */
		w = xchg_acq_rel(&q->waiter, (struct uthread *)NULL);
		if (w)
			uth_make_runnable(w);
	}
	return 0;
}

/* ---- handler queues: the drain ------------------------------------------- */

/* Run the handlers of owner's queues on self (owner itself, or vcore 0
 * standing in for it). The caller has taken owner's doorbell. */
static void ev_drain_queues(struct vcore *self, struct vcore *owner)
{
	struct event ev;
	bool more = false;

	if (!spin_trylock(&owner->evq_lock)) {
		/* A queue is being created or destroyed (or another drain
		 * runs): try again at the next scheduling point. */
		more = true;
		goto out;
	}
	self->ev_draining = true;
	for (struct ev_queue *q = owner->evq_list; q; q = q->next) {
		unsigned n = 0;

		while (n < EV_DRAIN_BATCH && ring_mpsc_pop(q->ring, &ev) == 0) {
			q->handler(&ev, q->arg);
			n++;
		}
		if (n)
			store_relaxed(&q->delivered, q->delivered + n);
		if (n == EV_DRAIN_BATCH)
			more = true;
	}
	self->ev_draining = false;
	spin_unlock(&owner->evq_lock);
out:
	if (more) {
		/* Ring again: owner's own, and ours if we stand in. */
		store_relaxed(&owner->ev_doorbell, 1);
		if (owner != self)
			store_relaxed(&self->ev_doorbell, 1);
	}
}

void ev_drain(struct vcore *vc)
{
	/* Acquire pairs with the posters' store_release of the doorbell;
	 * the rings' own seq protocol orders the events themselves. */
	if (!xchg_acquire(&vc->ev_doorbell, 0))
		return;
	ev_drain_queues(vc, vc);
	if (vc->id != 0)
		return;
	/* Vcore 0 stands in for the vcores that gave their cores back. */
	for (unsigned i = 1; i < rt.nr_vcores; i++) {
		struct vcore *v = vcore_get(i);

		if (!load_relaxed(&v->granted) &&
		    load_relaxed(&v->ev_doorbell) &&
		    xchg_acquire(&v->ev_doorbell, 0)) /* as above */
			ev_drain_queues(vc, v);
	}
}

int ev_queue_run_local(struct ev_queue *q, void (*fn)(void *arg), void *arg)
{
	struct vcore *self = vcore_self();

	if (!q->handler)
		return -EINVAL;
	if (!self || self->id != q->vcore)
		return -EXDEV;
	if (self->ev_draining || !spin_trylock(&self->evq_lock))
		return -EBUSY;
	/* As a handler: queue creation from fn is refused, not deadlocked. */
	self->ev_draining = true;
	fn(arg);
	self->ev_draining = false;
	spin_unlock(&self->evq_lock);
	return 0;
}

/* ---- handler-less queues: waiting ----------------------------------------- */

static int ev_take(struct ev_queue *q, struct event *ev)
{
	if (ring_mpsc_pop(q->ring, ev))
		return -EAGAIN;
	store_relaxed(&q->delivered, q->delivered + 1);
	return 0;
}

static void post_ev_wait(struct uthread *uth, void *arg)
{
	struct ev_queue *q = arg;

	uth_note_blocked(uth, UTH_BLOCK_EVENT);
	/* Release pairs with the poster's exchange: what uth and its vcore
	 * wrote before it stopped happens before it is made runnable. */
	store_release(&q->waiter, uth);
	/* Pairs with the fence in ev_post(): see the top note. */
	fence_seq_cst();
	if (!ring_mpsc_empty(q->ring) &&
	    xchg_acq_rel(&q->waiter, (struct uthread *)NULL) == uth)
		uth_make_runnable(uth); /* an event came meanwhile */
	/* Our last touch of q. A poster may have woken uth already, and
	 * once uth leaves ev_wait q may be destroyed: uth waits for this
	 * (release pairs with its acquire). */
	store_release(&q->in_post, 0);
}

int ev_wait(struct ev_queue *q, struct event *ev)
{
	if (q->handler)
		return -EINVAL;
	if (!uthread_self())
		return -EPERM;
	/* Acquire pairs with the previous consumer's release below. */
	if (xchg_acquire(&q->cons_busy, 1))
		return -EBUSY;
	while (ev_take(q, ev)) {
		store_relaxed(&q->in_post, 1);
		uth_block(post_ev_wait, q);
		/* Woken, perhaps before post_ev_wait finished on the vcore
		 * we left: a few instructions at most. */
		while (load_acquire(&q->in_post))
			cpu_relax();
	}
	/* Release: our pops happen before the next consumer's. */
	store_release(&q->cons_busy, 0);
	return 0;
}

int ev_trywait(struct ev_queue *q, struct event *ev)
{
	int err;

	if (q->handler)
		return -EINVAL;
	/* Acquire and release as in ev_wait(). */
	if (xchg_acquire(&q->cons_busy, 1))
		return -EBUSY;
	err = ev_take(q, ev);
	store_release(&q->cons_busy, 0);
	return err;
}

void ev_queue_stats(const struct ev_queue *q, struct ev_queue_stats *st)
{
	st->delivered = load_relaxed(&q->delivered);
	st->full = ring_mpsc_full_count(q->ring);
	st->pending = ring_mpsc_count(q->ring);
}
