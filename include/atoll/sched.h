/* sched.h - the two-level scheduler (2LS) interface.
 *
 * The runtime owns the mechanism (context switches, the vcore loop, idle
 * polling and parking, syscall completions, timers); the 2LS owns the
 * policy: which runnable uthread runs next on which vcore. An application
 * plugs its own policy in with rt_config.sched.
 *
 * Contract for a struct sched_ops:
 *  - thread_runnable may be called from any vcore or from a plain thread
 *    (an offload worker), concurrently: the 2LS does its own locking.
 *  - pick_next is called on vcore `vc` only, by that vcore, from uthread
 *    context (a uthread that yields or blocks and switches directly to the
 *    next) or vcore context; it must not block or switch.
 *  - the notification hooks (thread_paused ... vcore_preempted) may be NULL.
 *  - A uthread handed to the 2LS is not running yet everywhere: its stack
 *    may still be in use for a few instructions; the runtime waits for that
 *    before running it, so the 2LS never has to.
 *
 * The default 2LS (sched_default_ops): per-vcore FIFO run queues with two
 * priority levels (UTH_PRIO_HIGH first), each under its own spinlock;
 * uthreads woken by a vcore go on that vcore's queue (cache warm), those
 * woken from outside go to the vcore they last ran on; an idle vcore steals
 * half of the longest normal queue it finds (high-priority uthreads are
 * stolen one at a time first).
 */
#ifndef ATOLL_SCHED_H
#define ATOLL_SCHED_H

#include <stddef.h>
#include <stdint.h>

struct uthread;

/* Why a uthread stopped outside the 2LS (thread_has_blocked). */
enum uth_block_reason {
	UTH_BLOCK_MUTEX,   /* a sync.h wait queue */
	UTH_BLOCK_JOIN,
	UTH_BLOCK_SLEEP,
	UTH_BLOCK_EVENT,
	UTH_BLOCK_OFFLOAD,
};

struct sched_ops {
	const char *name;
	/* Set up for up to nr_vcores vcores; 0 or -errno. Called once by
	 * rt_main before any uthread exists. */
	int (*init)(unsigned nr_vcores);
	/* Release what init allocated (all uthreads are gone). */
	void (*fini)(void);
	/* uth (new, woken, yielded or resumed) may run. Any context. */
	void (*thread_runnable)(struct uthread *uth);
	/* The next uthread for vcore vc, or NULL. May steal. */
	struct uthread *(*pick_next)(unsigned vc);
	/* Runnable uthreads queued on vcore vc (a hint: demand, idling). */
	size_t (*nr_runnable)(unsigned vc);
	/* uth was stopped involuntarily (its vcore was revoked) and must be
	 * resumed elsewhere. NULL = thread_runnable. */
	void (*thread_paused)(struct uthread *uth);
	/* uth blocked on an asynchronous syscall (notification). */
	void (*thread_blockon_sysc)(struct uthread *uth, void *sysc);
	/* uth blocked outside the 2LS (notification). */
	void (*thread_has_blocked)(struct uthread *uth, enum uth_block_reason r);
	/* uth exited (notification, before its descriptor is released). */
	void (*thread_exited)(struct uthread *uth);
	/* Vcore vc enters its loop: when it starts and whenever it is granted
	 * again after a revocation (per-vcore set-up). On vc, vcore context. */
	void (*vcore_entry)(unsigned vc);
	/* Vcore vc must give its core back soon: move its queued uthreads to
	 * vcores that stay. Called on vc, in vcore context. */
	void (*preempt_pending)(unsigned vc);
	/* Vcore vc lost its core (it parks now, or was taken): whatever is
	 * still queued there must go elsewhere. Any context. */
	void (*vcore_preempted)(unsigned vc);
};

extern const struct sched_ops sched_default_ops;

/* For schedulers: the vcore a uthread last ran on, and its priority. */
unsigned sched_uthread_last_vcore(const struct uthread *uth);

/* For schedulers: an intrusive link each uthread carries for the 2LS's
 * own queues (one queue at a time). */
struct snode *sched_uthread_link(struct uthread *uth);
struct uthread *sched_link_uthread(struct snode *link);

/* For schedulers: wake a parked vcore when work is queued that no running
 * vcore may take soon (post then poke; cheap when none is parked). */
void sched_poke_idle_vcore(void);

/* Per-vcore counters the runtime keeps (tests, benchmarks, atoll top). */
struct sched_vcore_stats {
	uint64_t switches;   /* uthread switches on this vcore */
	uint64_t runs;       /* uthreads started or resumed here */
	uint64_t steals;     /* uthreads this vcore stole */
	uint64_t parks;      /* times it parked */
	uint64_t wakeups;    /* times it was woken from parking */
};

/* Copy vcore vc's counters into *st; -EINVAL for a bad vc. Any context. */
int sched_vcore_stats(unsigned vc, struct sched_vcore_stats *st);

#endif /* ATOLL_SCHED_H */
