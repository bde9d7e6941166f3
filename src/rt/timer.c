/* timer.c - per-vcore timers (a binary min-heap by deadline) and sleep.
 *
 * A timer is armed on the heap of the vcore that arms it and fired by that
 * vcore: from its loop, between uthread switches, or when its park times
 * out at the earliest deadline. Each heap has its own lock because a timer
 * may be cancelled from another vcore (a uthread woken early that moved),
 * and because a vcore that gives its core back hands its armed timers to a
 * vcore that stays (timer_migrate).
 * next_deadline is a copy of the root's deadline, read without the lock as
 * a hint ("is anything due?").
 */
#include <errno.h>
#include <stdlib.h>
#include <time.h>

#include "internal.h"

int timer_heap_init(struct timer_heap *h)
{
	spin_lock_init(&h->lock);
	h->cap = 64;
	h->len = 0;
	h->slots = malloc(sizeof(*h->slots) * h->cap);
	h->next_deadline = UINT64_MAX;
	return h->slots ? 0 : -ENOMEM;
}

void timer_heap_destroy(struct timer_heap *h)
{
	free(h->slots);
	h->slots = NULL;
	h->len = h->cap = 0;
}

static void heap_set(struct timer_heap *h, unsigned i, struct rt_timer *t)
{
	h->slots[i] = t;
	t->heap_idx = (int)i;
}

static void sift_up_locked(struct timer_heap *h, unsigned i)
{
	struct rt_timer *t = h->slots[i];

	while (i > 0) {
		unsigned parent = (i - 1) / 2;

		if (h->slots[parent]->deadline <= t->deadline)
			break;
		heap_set(h, i, h->slots[parent]);
		i = parent;
	}
	heap_set(h, i, t);
}

static void sift_down_locked(struct timer_heap *h, unsigned i)
{
	struct rt_timer *t = h->slots[i];

	for (;;) {
		unsigned c = 2 * i + 1;

		if (c >= h->len)
			break;
		if (c + 1 < h->len &&
		    h->slots[c + 1]->deadline < h->slots[c]->deadline)
			c++;
		if (t->deadline <= h->slots[c]->deadline)
			break;
		heap_set(h, i, h->slots[c]);
		i = c;
	}
	heap_set(h, i, t);
}

static void update_next_locked(struct timer_heap *h)
{
	store_relaxed(&h->next_deadline,
		      h->len ? h->slots[0]->deadline : UINT64_MAX);
}

static void remove_locked(struct timer_heap *h, struct rt_timer *t)
{
	unsigned i = (unsigned)t->heap_idx;
	struct rt_timer *last = h->slots[--h->len];

	t->heap_idx = -1;
	if (last != t) {
		heap_set(h, i, last);
		if (i > 0 && h->slots[(i - 1) / 2]->deadline > last->deadline)
			sift_up_locked(h, i);
		else
			sift_down_locked(h, i);
	}
	update_next_locked(h);
}

int timer_arm(struct rt_timer *t, uint64_t deadline, rt_timer_fn fn)
{
	struct vcore *vc = vcore_self();
	struct timer_heap *h;

	if (!vc)
		return -EPERM;
	h = &vc->timers;
	t->deadline = deadline;
	t->fn = fn;
	t->vcore = vc->id;
	spin_lock(&h->lock);
	if (h->len == h->cap) {
		struct rt_timer **s = realloc(h->slots, sizeof(*s) * h->cap * 2);

		if (!s) {
			spin_unlock(&h->lock);
			return -ENOMEM;
		}
		h->slots = s;
		h->cap *= 2;
	}
	h->slots[h->len] = t;
	sift_up_locked(h, h->len++);
	update_next_locked(h);
	spin_unlock(&h->lock);
	return 0;
}

bool timer_cancel(struct rt_timer *t)
{
	for (;;) {
		unsigned id = load_acquire(&t->vcore); /* pairs with migrate */
		struct timer_heap *h = &vcore_get(id)->timers;
		bool armed;

		spin_lock(&h->lock);
		if (load_relaxed(&t->vcore) != id) {
			/* Moved to another heap meanwhile: follow it. */
			spin_unlock(&h->lock);
			continue;
		}
		armed = t->heap_idx >= 0;
		if (armed)
			remove_locked(h, t);
		spin_unlock(&h->lock);
		return armed;
	}
}

int timer_migrate(struct vcore *from, struct vcore *to)
{
	struct timer_heap *src = &from->timers, *dst = &to->timers;
	struct timer_heap *first = from->id < to->id ? src : dst;
	struct timer_heap *second = first == src ? dst : src;
	int err = 0;

	if (from == to)
		return 0;
	/* Two heap locks at once only here, always in vcore-id order. */
	spin_lock(&first->lock);
	spin_lock(&second->lock);
	while (src->len) {
		struct rt_timer *t = src->slots[0];

		if (dst->len == dst->cap) {
			struct rt_timer **s = realloc(dst->slots,
						      sizeof(*s) * dst->cap * 2);

			if (!s) {
				err = -ENOMEM;
				break;
			}
			dst->slots = s;
			dst->cap *= 2;
		}
		remove_locked(src, t);
		/* Release: pairs with timer_cancel's acquire re-check. */
		store_release(&t->vcore, to->id);
		dst->slots[dst->len] = t;
		sift_up_locked(dst, dst->len++);
	}
	update_next_locked(dst);
	spin_unlock(&second->lock);
	spin_unlock(&first->lock);
	vcore_kick(to);
	return err;
}

unsigned timer_run_expired(struct vcore *vc, uint64_t now)
{
	struct timer_heap *h = &vc->timers;
	unsigned n = 0;

	for (;;) {
		struct rt_timer *t = NULL;

		spin_lock(&h->lock);
		if (h->len && h->slots[0]->deadline <= now) {
			t = h->slots[0];
			remove_locked(h, t);
		}
		spin_unlock(&h->lock);
		if (!t)
			return n;
		/* Unlocked: the callback may arm timers or take other locks. */
		t->fn(t);
		n++;
	}
}

/* ---- sleep ---------------------------------------------------------------- */

struct sleeper {
	struct rt_timer timer;
	struct uthread *uth;
	uint64_t deadline;
};

static void sleeper_fire(struct rt_timer *t)
{
	uth_make_runnable(container_of(t, struct sleeper, timer)->uth);
}

static void post_sleep(struct uthread *uth, void *arg)
{
	struct sleeper *s = arg;

	uth_note_blocked(uth, UTH_BLOCK_SLEEP);
	/* Armed only now that uth is off its stack: the timer may fire on
	 * this vcore at once, and so may resume uth anywhere. */
	if (timer_arm(&s->timer, s->deadline, sleeper_fire))
		uth_make_runnable(uth); /* no memory: wake early, not never */
}

void uthread_sleep_ns(uint64_t ns)
{
	struct sleeper s = {
		.timer = { .heap_idx = -1 },
		.uth = uthread_self(),
		.deadline = fast_ns() + ns,
	};

	if (!s.uth) {
		struct timespec ts = { (time_t)(ns / NSEC_PER_SEC),
				       (long)(ns % NSEC_PER_SEC) };

		while (nanosleep(&ts, &ts) && errno == EINTR)
			;
		return;
	}
	/* Re-block after an early wake (timer_arm out of memory). */
	do
		uth_block(post_sleep, &s);
	while (fast_ns() < s.deadline);
}
