/* sched.c - the default two-level scheduler: per-vcore FIFO run queues with
 * two priority levels and work stealing.
 *
 * Each vcore's queue pair sits under its own spinlock. A uthread made
 * runnable by a vcore goes on that vcore's queue (its data is warm there);
 * one made runnable from outside the runtime (an offload worker) goes back
 * to the vcore it last ran on, which is kicked if parked. A vcore whose
 * queues are empty steals: the first high-priority uthread it finds, else
 * half of a victim's normal queue. Never two queue locks at once: stolen
 * uthreads are carried in a local list between the two critical sections.
 * Revoked vcores take no new work; their queues are emptied into the
 * vcores that stay (preempt_pending, vcore_preempted).
 */
#include <errno.h>
#include <stdlib.h>

#include "internal.h"

struct runq {
	struct spinlock lock;       /* protects q[] */
	struct squeue q[2];         /* [UTH_PRIO_NORMAL], [UTH_PRIO_HIGH] */
	size_t len;                 /* q[0].len + q[1].len; read unlocked */
} CACHE_ALIGNED;

static struct runq *runqs;
static unsigned nr_runqs;

static int dflt_init(unsigned n)
{
	runqs = aligned_alloc(CACHE_LINE, sizeof(*runqs) * n);
	if (!runqs)
		return -ENOMEM;
	for (unsigned i = 0; i < n; i++) {
		spin_lock_init(&runqs[i].lock);
		squeue_init(&runqs[i].q[0]);
		squeue_init(&runqs[i].q[1]);
		runqs[i].len = 0;
	}
	nr_runqs = n;
	return 0;
}

static void dflt_fini(void)
{
	free(runqs);
	runqs = NULL;
	nr_runqs = 0;
}

static void runq_push_locked(struct runq *rq, struct uthread *uth)
{
	assert_spin_lock_held(&rq->lock);
	squeue_push(&rq->q[uth->prio ? 1 : 0], &uth->link);
	store_relaxed(&rq->len, rq->len + 1);
}

static struct uthread *runq_pop_locked(struct runq *rq)
{
	struct snode *n;

	assert_spin_lock_held(&rq->lock);
	n = squeue_pop(&rq->q[1]);
	if (!n)
		n = squeue_pop(&rq->q[0]);
	if (!n)
		return NULL;
	store_relaxed(&rq->len, rq->len - 1);
	return container_of(n, struct uthread, link);
}

/* A vcore that takes work, starting the search at `from`. */
static unsigned pick_target(unsigned from)
{
	for (unsigned i = 0; i < nr_runqs; i++) {
		unsigned id = (from + i) % nr_runqs;

		if (vcore_takes_work(vcore_get(id)))
			return id;
	}
	return 0; /* vcore 0 is never revoked */
}

static void dflt_thread_runnable(struct uthread *uth)
{
	struct vcore *self = vcore_self();
	unsigned target;
	size_t len;

	if (self && vcore_takes_work(self))
		target = self->id;
	else
		target = pick_target(uth->last_vcore);
	spin_lock(&runqs[target].lock);
	runq_push_locked(&runqs[target], uth);
	len = runqs[target].len;
	spin_unlock(&runqs[target].lock);

	if (!self || self->id != target)
		vcore_kick(vcore_get(target));
	else if (len > 1)
		sched_poke_idle_vcore();
}

/* Take work from another vcore's queues into ours; returns one to run. */
static struct uthread *steal(unsigned id)
{
	struct squeue loot;
	struct uthread *first = NULL;

	squeue_init(&loot);
	for (unsigned i = 1; i < nr_runqs && !first; i++) {
		struct runq *v = &runqs[(id + i) % nr_runqs];
		size_t take;

		if (!load_relaxed(&v->len) || !spin_trylock(&v->lock))
			continue;
		if (!squeue_empty(&v->q[1])) {
			first = runq_pop_locked(v);
		} else {
			take = (v->q[0].len + 1) / 2;
			for (size_t k = 0; k < take; k++) {
				struct uthread *u = runq_pop_locked(v);

				if (!first)
					first = u;
				else
					squeue_push(&loot, &u->link);
			}
		}
		spin_unlock(&v->lock);
	}
	if (!first)
		return NULL;
	STAT_ADD(vcore_get(id), steals, 1 + loot.len);
	if (!squeue_empty(&loot)) {
		struct runq *rq = &runqs[id];

		spin_lock(&rq->lock);
		store_relaxed(&rq->len, rq->len + loot.len);
		squeue_concat(&rq->q[0], &loot);
		spin_unlock(&rq->lock);
	}
	return first;
}

static struct uthread *dflt_pick_next(unsigned id)
{
	struct runq *rq = &runqs[id];
	struct uthread *uth = NULL;

	if (load_relaxed(&rq->len)) {
		spin_lock(&rq->lock);
		uth = runq_pop_locked(rq);
		spin_unlock(&rq->lock);
	}
	if (!uth && nr_runqs > 1 && vcore_takes_work(vcore_get(id)))
		uth = steal(id);
	return uth;
}

static size_t dflt_nr_runnable(unsigned id)
{
	return load_relaxed(&runqs[id].len);
}

/* Hand every uthread queued on vcore id to vcores that take work. */
static void dflt_drain(unsigned id)
{
	struct runq *rq = &runqs[id];
	struct squeue all;

	squeue_init(&all);
	spin_lock(&rq->lock);
	squeue_concat(&all, &rq->q[1]);
	squeue_concat(&all, &rq->q[0]);
	store_relaxed(&rq->len, 0);
	spin_unlock(&rq->lock);

	for (struct snode *n; (n = squeue_pop(&all));) {
		struct uthread *uth = container_of(n, struct uthread, link);
		unsigned target = pick_target(id + 1);

		spin_lock(&runqs[target].lock);
		runq_push_locked(&runqs[target], uth);
		spin_unlock(&runqs[target].lock);
		vcore_kick(vcore_get(target));
	}
}

const struct sched_ops sched_default_ops = {
	.name = "default",
	.init = dflt_init,
	.fini = dflt_fini,
	.thread_runnable = dflt_thread_runnable,
	.pick_next = dflt_pick_next,
	.nr_runnable = dflt_nr_runnable,
	.preempt_pending = dflt_drain,
	.vcore_preempted = dflt_drain,
};
