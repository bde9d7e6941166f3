/* event.h - event queues: many posters, one consumer, bound to a vcore.
 *
 * Owns: each queue and its ring (an MPSC ring from ring.h, in memory the
 * runtime allocates). An event is a type and a small payload
 * (EV_PAYLOAD_SIZE bytes), copied in by the poster and out by the consumer.
 *
 * Two ways to consume a queue, chosen at creation:
 *  - with a handler: the queue is bound to a vcore, and that vcore runs
 *    handler(ev, arg) for each event, in vcore context, at its next
 *    scheduling point (its loop, or between two uthreads). A poster rings
 *    the vcore's doorbell and wakes it if parked, so a handler on a
 *    dedicated vcore gets its events with low latency. A vcore with no
 *    events pending pays one relaxed load per scheduling point.
 *  - without a handler (NULL): events wait in the queue until a uthread
 *    takes them with ev_wait() (blocking) or ev_trywait(). The poster wakes
 *    the waiting uthread itself; the queue is not drained by its vcore.
 *
 * Order and loss: events of one poster are delivered in the order it posted
 * them, each exactly once. A full queue refuses the event with -EAGAIN and
 * counts it (ev_queue_stats().full); nothing is dropped silently.
 *
 * Handlers: run on the bound vcore (vcore_id() is that vcore) with the
 * vcore's event lock held, on whatever stack the vcore is on (the loop's or
 * a uthread that is switching away; uthread_self() means nothing there).
 * While the bound vcore is revoked (it gave its core back), vcore 0, which
 * is never revoked, runs its handlers instead; once granted again, it runs
 * them itself. Handlers must not block, yield or switch, and must not
 * create or destroy queues (-EDEADLK); they may post to any queue, wake
 * uthreads, arm timers, create uthreads.
 *
 * Thread safety: ev_post() from any thread, concurrently (uthread, vcore,
 * plain pthread, even a signal handler when the queue has a handler). The
 * consumer side of a handler-less queue is one uthread at a time (-EBUSY
 * otherwise). Creating and destroying: runtime context; no post may race
 * with ev_queue_destroy(), and queues must be destroyed before rt_main's
 * main function returns (events still pending at shut-down are dropped).
 *
 * Errors: negative errno, never errno itself.
 */
#ifndef ATOLL_EVENT_H
#define ATOLL_EVENT_H

#include <stddef.h>
#include <stdint.h>

#define EV_PAYLOAD_SIZE 48

/* One event, as handed to a handler or returned by ev_wait(). Bytes of
 * payload past len are zero. */
struct event {
	uint32_t type;
	uint32_t len;                           /* payload bytes used */
	unsigned char payload[EV_PAYLOAD_SIZE];
};

struct ev_queue;

/* Counters of one queue; a snapshot. */
struct ev_queue_stats {
	uint64_t delivered;  /* events handed to the handler or a waiter */
	uint64_t full;       /* posts refused because the queue was full */
	uint32_t pending;    /* events posted but not yet delivered */
};

/* Create a queue of nslots slots (a power of two, 2 .. 2^20) and store it
 * in *out. With a handler, bind it to vcore `vcore`, which then runs
 * handler(ev, arg) for each event; with handler NULL, vcore must still be
 * valid but only names the queue's home, and events are taken by
 * ev_wait()/ev_trywait(). Returns 0, -EINVAL (bad nslots or vcore, or out
 * NULL), -ENOMEM, -EPERM (outside the runtime) or -EDEADLK (from a
 * handler). Uthread or vcore context. */
int ev_queue_create(struct ev_queue **out, uint32_t nslots, unsigned vcore,
		    void (*handler)(const struct event *ev, void *arg),
		    void *arg);

/* Unbind and free q. Events not yet delivered are dropped; returns how
 * many (>= 0), or -EBUSY when a uthread waits on q, -EDEADLK from a
 * handler. No post may run concurrently or later. Uthread or vcore
 * context. */
int ev_queue_destroy(struct ev_queue *q);

/* Post an event: type and len bytes of payload (len <= EV_PAYLOAD_SIZE;
 * payload may be NULL when len is 0). Returns 0, -EAGAIN when the queue is
 * full (counted), or -EMSGSIZE. Any thread; never blocks. */
int ev_post(struct ev_queue *q, uint32_t type, const void *payload,
	    size_t len);

/* Run fn(arg) here and now, in place of posting it to q as an event, when
 * the caller runs on q's bound vcore: under the vcore's event lock, so no
 * handler of that vcore's queues runs meanwhile (here or on vcore 0), as
 * if fn were one more handler. Saves the round trip through the ring and
 * the scheduler for work that is already where it belongs. fn follows the
 * handlers' rules (no blocking, yielding or switching). Returns 0 after fn
 * ran; -EXDEV when the caller is on another vcore, or -EBUSY when the
 * event lock is taken (a drain or a queue being created): post instead;
 * -EINVAL for a handler-less q. Uthread context. */
int ev_queue_run_local(struct ev_queue *q, void (*fn)(void *arg), void *arg);

/* Take the next event of a handler-less queue into *ev, blocking the
 * calling uthread until one arrives. Returns 0, -EINVAL (q has a handler),
 * -EBUSY (another uthread consumes q) or -EPERM (not in uthread context).
 * Uthread context. */
int ev_wait(struct ev_queue *q, struct event *ev);

/* As ev_wait() but never blocks: -EAGAIN when no event is ready. Uthread,
 * vcore or plain-thread context (one consumer at a time). */
int ev_trywait(struct ev_queue *q, struct event *ev);

/* Copy q's counters into *st. Any thread. */
void ev_queue_stats(const struct ev_queue *q, struct ev_queue_stats *st);

#endif /* ATOLL_EVENT_H */
