/* uthread.c - uthread life cycle: create, switch, block, exit, join.
 *
 * Design note. Every stop of a uthread goes through one path: pick the next
 * context (a runnable uthread, or the vcore loop when there is none), record
 * a post-switch callback, switch. The callback runs first thing on the next
 * context's stack, when the stopped uthread's registers are saved; only then
 * may the stopped uthread be published anywhere (a run queue, a wait queue,
 * a timer), so no other vcore can ever resume a uthread whose registers are
 * still being written. This is Akaros's "yield with a callback"; here the
 * callback runs on whichever context comes next, so a uthread-to-uthread
 * switch does not detour through the vcore's stack.
 *
 * A thread's TLS (the vcore's) can change across ctx_switch. GCC treats the
 * address of a TLS variable, and glibc's __errno_location(), as constant
 * within a function, so after a switch we reach TLS only through the
 * out-of-line helpers vcore_self() and errno_restore().
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "arch/ctx.h"
#include "internal.h"

#define NOIPA __attribute__((noipa))

/* The calling thread's vcore; out of line on purpose, see the top note. */
NOIPA struct vcore *vcore_self(void)
{
	return rt_this_vcore;
}

static NOIPA int errno_save(void)
{
	return errno;
}

static NOIPA void errno_restore(int v)
{
	errno = v;
}

/* Run the callback the previous context left, on the now-current stack. */
static void finish_switch(struct vcore *vc, struct san_ctx *cur)
{
	uth_post_fn fn = vc->post_fn;

	san_switch_end(cur);
	if (fn) {
		vc->post_fn = NULL;
		fn(vc->post_uth, vc->post_arg);
	}
}

static void uth_entry(void *arg) __attribute__((noreturn));
static void uth_entry(void *arg)
{
	struct uthread *uth = arg;

	finish_switch(vcore_self(), &uth->san);
	uthread_exit(uth->fn(uth->arg));
}

/* Make `to` the current uthread of vc, giving it a stack on its first run.
 * Returns the stack pointer to switch to. */
static void *uth_prepare(struct vcore *vc, struct uthread *to)
{
	if (unlikely(!to->stack)) {
		to->stack = stack_get(vc, to->stack_size);
		/* Out of memory for a stack: nothing sane can continue. */
		BUG_ON(!to->stack);
		san_ctx_init_fiber(&to->san, stack_lo(to->stack),
				   to->stack->size, to->stack->san_fiber);
		to->sp = ctx_init(stack_top(to->stack), uth_entry, to);
	}
	to->state = UTH_RUNNING;
	to->last_vcore = vc->id;
	vc->current = to;
	STAT_INC(vc, runs);
	return to->sp;
}

/* Switch from the running uthread `from` to `to`, or to vc's loop when to
 * is NULL. Returns when `from` is resumed, possibly on another vcore. */
static void uth_switch(struct vcore *vc, struct uthread *from,
		       struct uthread *to, int dying)
{
	struct san_ctx *to_san;
	void *sp;

	if (to) {
		sp = uth_prepare(vc, to);
		to_san = &to->san;
	} else {
		vc->current = NULL;
		sp = vc->sched_sp;
		to_san = &vc->san;
	}
	STAT_INC(vc, switches);
	from->saved_errno = errno_save();
	san_switch_begin(&from->san, to_san, dying);
	ctx_switch(&from->sp, sp);
	/* Resumed. */
	finish_switch(vcore_self(), &from->san);
	errno_restore(from->saved_errno);
}

void uth_run_from_vcore(struct vcore *vc, struct uthread *uth)
{
	void *sp = uth_prepare(vc, uth);

	san_switch_begin(&vc->san, &uth->san, 0);
	ctx_switch(&vc->sched_sp, sp);
	finish_switch(vc, &vc->san);
}

/* The next uthread for vc, or NULL to go to the vcore loop: when nothing is
 * runnable, or the loop must act (revocation, shutdown). Reaps syscall
 * completions and expired timers on the way, so a vcore busy with
 * uthread-to-uthread switches still notices them. */
static struct uthread *uth_next(struct vcore *vc)
{
	if (unlikely(load_relaxed(&vc->revoke_deadline) ||
		     load_relaxed(&rt.shutdown)))
		return NULL;
	if (vc->inflight) {
		sys_maybe_flush(vc);
		sys_reap(vc);
	}
	if (load_relaxed(&vc->timers.next_deadline) != UINT64_MAX)
		timer_run_expired(vc, fast_ns());
	if (load_relaxed(&vc->ev_doorbell))
		ev_drain(vc);
	return rt.ops->pick_next(vc->id);
}

void uth_block(uth_post_fn post, void *arg)
{
	struct vcore *vc = vcore_self();
	struct uthread *self = vc->current;

	self->state = UTH_BLOCKED;
	vc->post_fn = post;
	vc->post_uth = self;
	vc->post_arg = arg;
	uth_switch(vc, self, uth_next(vc), 0);
}

void uth_make_runnable(struct uthread *uth)
{
	if (likely(vcore_self())) {
		uth->state = UTH_RUNNABLE;
		rt.ops->thread_runnable(uth);
		return;
	}
	/* From outside the runtime (an offload worker, an application
	 * thread): the woken uthread may end main and start the shutdown
	 * before our kick has written its vcore's eventfd; rt_teardown waits
	 * for outside_wakes to drain before closing anything. */
	fetch_add_acq_rel(&rt.outside_wakes, 1);
	uth->state = UTH_RUNNABLE;
	rt.ops->thread_runnable(uth);
	fetch_sub_acq_rel(&rt.outside_wakes, 1);
}

void uth_note_blocked(struct uthread *uth, enum uth_block_reason r)
{
	if (rt.ops->thread_has_blocked)
		rt.ops->thread_has_blocked(uth, r);
}

static void post_yield(struct uthread *uth, void *arg)
{
	(void)arg;
	uth_make_runnable(uth);
}

void uthread_yield(void)
{
	struct vcore *vc = vcore_self();
	struct uthread *self = vc->current;
	struct uthread *next = uth_next(vc);

	if (!next && !load_relaxed(&vc->revoke_deadline) &&
	    !load_relaxed(&rt.shutdown))
		return; /* nobody else to run */
	self->state = UTH_RUNNABLE;
	vc->post_fn = post_yield;
	vc->post_uth = self;
	vc->post_arg = NULL;
	uth_switch(vc, self, next, 0);
}

/* ---- creation and release ------------------------------------------------ */

int uthread_create(struct uthread **out, const struct uthread_attr *attr,
		   void *(*fn)(void *), void *arg)
{
	struct vcore *vc = vcore_self();
	struct uthread *uth;

	if (!fn)
		return -EINVAL;
	if (!vc)
		return -EPERM;
	if (attr && attr->prio != UTH_PRIO_NORMAL && attr->prio != UTH_PRIO_HIGH)
		return -EINVAL;
	uth = calloc(1, sizeof(*uth));
	if (!uth)
		return -ENOMEM;
	uth->fn = fn;
	uth->arg = arg;
	uth->stack_size = attr && attr->stack_size ? attr->stack_size
						     : rt.stack_size;
	uth->prio = attr ? (uint8_t)attr->prio : UTH_PRIO_NORMAL;
	uth->name = attr ? attr->name : NULL;
	uth->join_state = attr && attr->detached ? UTH_JOIN_DETACHED
						 : UTH_JOIN_NONE;
	uth->id = fetch_add_relaxed(&rt.next_uth_id, 1);
	uth->last_vcore = vc->id;
	uth->home_vcore = vc->id;
	uth->state = UTH_CREATED;

	spin_lock(&vc->all_lock);
	list_add_tail(&vc->all_list, &uth->all_link);
	spin_unlock(&vc->all_lock);

	if (out)
		*out = uth;
	rt.ops->thread_runnable(uth);
	return 0;
}

static void uth_free(struct uthread *uth)
{
	struct vcore *home = vcore_get(uth->home_vcore);

	spin_lock(&home->all_lock);
	list_del(&uth->all_link);
	spin_unlock(&home->all_lock);
	free(uth);
}

void uth_free_abandoned(struct vcore *vc, struct uthread *uth)
{
	if (uth->stack) {
		stack_put(vc, uth->stack);
	}
	list_del(&uth->all_link);
	free(uth);
}

/* ---- exit and join ---------------------------------------------------------- */

static void post_exit(struct uthread *uth, void *arg)
{
	struct vcore *vc = arg;
	uint32_t old;

	stack_put(vc, uth->stack);
	uth->stack = NULL;
	if (rt.ops->thread_exited)
		rt.ops->thread_exited(uth);
	/* Release: retval and everything the uthread wrote before exiting,
	 * for the joiner's acquire (uthread_join) or its wake-up. */
	old = xchg_acq_rel(&uth->join_state, UTH_JOIN_EXITED);
	if (old == UTH_JOIN_WAITING)
		uth_make_runnable(uth->joiner);
	else if (old == UTH_JOIN_DETACHED)
		uth_free(uth);
}

void uthread_exit(void *ret)
{
	struct vcore *vc = vcore_self();
	struct uthread *self = vc->current;

	self->retval = ret;
	self->state = UTH_EXITED;
	vc->post_fn = post_exit;
	vc->post_uth = self;
	vc->post_arg = vc;
	uth_switch(vc, self, uth_next(vc), 1);
	BUG_ON(1); /* an exited uthread is never resumed */
	__builtin_unreachable();
}

static void post_join(struct uthread *joiner, void *arg)
{
	struct uthread *target = arg;
	uint32_t expected = UTH_JOIN_NONE;

	uth_note_blocked(joiner, UTH_BLOCK_JOIN);
	/* Acq_rel: pairs with post_exit's xchg, whichever comes second sees
	 * the other's state. */
	if (!cas_acq_rel(&target->join_state, &expected, UTH_JOIN_WAITING))
		uth_make_runnable(joiner); /* it exited meanwhile */
}

int uthread_join(struct uthread *uth, void **ret)
{
	struct uthread *self = uthread_self();
	struct uthread *none = NULL;
	uint32_t st;

	if (!uth || uth == self || !self)
		return -EINVAL;
	st = load_acquire(&uth->join_state); /* pairs with post_exit */
	if (st == UTH_JOIN_DETACHED)
		return -EINVAL;
	if (!cas_acq_rel(&uth->joiner, &none, self))
		return -EBUSY;
	if (st != UTH_JOIN_EXITED)
		uth_block(post_join, uth);
	/* Pairs with post_exit's release: retval is visible. */
	BUG_ON(load_acquire(&uth->join_state) != UTH_JOIN_EXITED);
	if (ret)
		*ret = uth->retval;
	uth_free(uth);
	return 0;
}

int uthread_detach(struct uthread *uth)
{
	uint32_t expected = UTH_JOIN_NONE;

	if (!uth)
		return -EINVAL;
	if (cas_acq_rel(&uth->join_state, &expected, UTH_JOIN_DETACHED))
		return 0;
	if (expected == UTH_JOIN_EXITED && !load_relaxed(&uth->joiner)) {
		uth_free(uth); /* already gone: release it now */
		return 0;
	}
	return -EINVAL;
}

/* ---- small accessors ---------------------------------------------------------- */

struct uthread *uthread_self(void)
{
	struct vcore *vc = vcore_self();

	return vc ? vc->current : NULL;
}

uint64_t uthread_id(const struct uthread *uth)
{
	return uth->id;
}

void uthread_set_prio(struct uthread *uth, enum uthread_prio prio)
{
	uth->prio = (uint8_t)prio;
}

enum uthread_prio uthread_get_prio(const struct uthread *uth)
{
	return (enum uthread_prio)uth->prio;
}

void uthread_set_local(void *p)
{
	uthread_self()->local = p;
}

void *uthread_get_local(void)
{
	return uthread_self()->local;
}

unsigned sched_uthread_last_vcore(const struct uthread *uth)
{
	return uth->last_vcore;
}

struct snode *sched_uthread_link(struct uthread *uth)
{
	return &uth->link;
}

struct uthread *sched_link_uthread(struct snode *link)
{
	return container_of(link, struct uthread, link);
}
