/* internal.h - private declarations of the runtime (src/rt).
 *
 * The map of the runtime:
 *   arch/ARCH.S, ctx.h    context switch and first frames
 *   san.h                 sanitizer fiber annotations
 *   stack.c               uthread stacks: mmap + guard page, per-vcore cache
 *   uthread.c             uthread life cycle, switching, blocking, join
 *   vcore.c               vcore threads, the vcore loop, idle and parking,
 *                         grant/revoke, rt_main
 *   sched.c               the default 2LS
 *   timer.c               per-vcore timer heap, sleep
 *   sys.c                 per-vcore io_uring, asynchronous syscalls
 *   offload.c             the pool for calls io_uring cannot make
 *   event.c               MPSC event queues with handlers
 *   sync.c                mutex, condvar, semaphore, rwlock, barrier, spin-PDR
 *   mcp.c                 under atolld: registration, procinfo/procdata,
 *                         the watcher applying grants and revocations
 *   latency.c             request latencies into procdata (latency.h)
 *   net.c                 the TCP server scaffold (net.h)
 *
 * Locking: each vcore's run queues and timer heap have their own spinlock
 * (sched.c, timer.c); rt.lock guards only start-up and shut-down. Lock
 * order: a sync.h wait-queue lock may be held while taking a run-queue
 * lock (a wake-up), never the reverse. docs/locking.md has the full order.
 */
#ifndef ATOLL_RT_INTERNAL_H
#define ATOLL_RT_INTERNAL_H

#include <liburing.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include <atoll/atomic.h>
#include <atoll/clock.h>
#include <atoll/compiler.h>
#include <atoll/list.h>
#include <atoll/lock.h>
#include <atoll/procinfo.h>
#include <atoll/rt.h>
#include <atoll/sched.h>
#include <atoll/uthread.h>

#include "san.h"

struct vcore;
struct syscall;

/* ---- stacks (stack.c) --------------------------------------------------- */

/* Lives at the top of its own mapping; the usable stack is below it and a
 * PROT_NONE guard page below that. */
struct rt_stack {
	struct rt_stack *next;  /* in a vcore's cache */
	void *map;              /* start of the mapping (the guard page) */
	size_t map_size;
	size_t size;            /* usable bytes between guard and header */
	void *san_fiber;        /* TSan's fiber for code on this stack */
};

struct rt_stack *stack_get(struct vcore *vc, size_t size);
void stack_put(struct vcore *vc, struct rt_stack *st);
void stack_cache_drain(struct vcore *vc);
static inline void *stack_top(struct rt_stack *st)
{
	return st;
}
static inline void *stack_lo(struct rt_stack *st)
{
	return (char *)st - st->size;
}

/* ---- uthreads (uthread.c) ----------------------------------------------- */

enum uth_state {
	UTH_CREATED,   /* never ran: no stack yet */
	UTH_RUNNABLE,  /* handed to the 2LS */
	UTH_RUNNING,
	UTH_BLOCKED,
	UTH_EXITED,
};

/* join_state values: a three-way handshake between exit and join. */
#define UTH_JOIN_NONE 0u    /* nobody waits, still running */
#define UTH_JOIN_WAITING 1u /* a joiner sleeps in ->joiner */
#define UTH_JOIN_EXITED 2u  /* the uthread has exited */
#define UTH_JOIN_DETACHED 3u

struct uthread {
	/* Switch state: touched on every switch. */
	void *sp;                   /* saved stack pointer when not running */
	struct snode link;          /* 2LS queue or wait queue */
	int saved_errno;
	uint8_t state;              /* enum uth_state; owned by whoever runs it */
	uint8_t prio;               /* enum uthread_prio */
	uint16_t flags;
	unsigned last_vcore;

	struct rt_stack *stack;     /* NULL until the first run */
	size_t stack_size;
	void *(*fn)(void *);
	void *arg;
	void *retval;

	uint32_t join_state;        /* UTH_JOIN_*, atomic */
	struct uthread *joiner;     /* set before join_state = WAITING */

	void *local;                /* uthread_set_local */
	uint64_t id;
	const char *name;
	unsigned home_vcore;        /* whose all_list holds it */
	struct list_head all_link;  /* home vcore's list of live uthreads */
	struct san_ctx san;
};

/* A callback run right after a uthread has switched away, on the next
 * context's stack: the uthread's registers are saved by then, so the
 * callback may publish it (enqueue it, wake it, free its stack). This is
 * Akaros's "yield with a callback", the base of every blocking operation. */
typedef void (*uth_post_fn)(struct uthread *uth, void *arg);

/* Stop the calling uthread and run post(uth, arg) once it is off its
 * stack. Whoever post hands the uthread to must later make it runnable
 * (uth_make_runnable). Uthread context. */
void uth_block(uth_post_fn post, void *arg);

/* Make a blocked or new uthread runnable. Any context. */
void uth_make_runnable(struct uthread *uth);

/* Tell the 2LS why a uthread blocked (for post callbacks). */
void uth_note_blocked(struct uthread *uth, enum uth_block_reason r);

/* Run uth on the calling vcore, from vcore context; returns when the vcore
 * context is switched back to. */
void uth_run_from_vcore(struct vcore *vc, struct uthread *uth);

/* Release a uthread that can never run again (shutdown). */
void uth_free_abandoned(struct vcore *vc, struct uthread *uth);

/* ---- timers (timer.c) --------------------------------------------------- */

struct rt_timer;
typedef void (*rt_timer_fn)(struct rt_timer *t);

struct rt_timer {
	uint64_t deadline;          /* fast_ns() clock */
	rt_timer_fn fn;
	unsigned vcore;             /* whose heap holds it */
	int heap_idx;               /* -1 when not armed */
};

struct timer_heap {
	struct spinlock lock;       /* protects everything below */
	struct rt_timer **slots;
	unsigned len, cap;
	uint64_t next_deadline;     /* UINT64_MAX when empty; read unlocked */
};

int timer_heap_init(struct timer_heap *h);
void timer_heap_destroy(struct timer_heap *h);
/* Arm t on vcore vc (the caller's vcore when in the runtime). */
int timer_arm(struct rt_timer *t, uint64_t deadline, rt_timer_fn fn);
/* Disarm; true if it was armed (its callback will not run). */
bool timer_cancel(struct rt_timer *t);
/* Move every timer armed on `from` to `to` (a vcore giving its core back
 * must not strand sleepers). 0, or -ENOMEM with some timers left. */
int timer_migrate(struct vcore *from, struct vcore *to);
/* Run the expired timers of vc; returns how many ran. */
unsigned timer_run_expired(struct vcore *vc, uint64_t now);

/* ---- vcores (vcore.c) --------------------------------------------------- */

struct vcore {
	/* Owner-only hot state. */
	struct uthread *current;    /* running uthread, NULL in vcore ctx */
	void *sched_sp;             /* saved sp of the vcore loop */
	uth_post_fn post_fn;        /* pending post-switch callback */
	struct uthread *post_uth;
	void *post_arg;
	unsigned id;
	int cpu;
	uint64_t idle_since;
	struct san_ctx san;         /* the vcore loop's own stack */

	/* Caches, owner only. */
	struct rt_stack *stack_cache;
	unsigned nr_stacks_cached;

	/* Asynchronous syscalls (sys.c), owner only. */
	struct io_uring ring;
	bool ring_ok;
	unsigned sq_unsubmitted;
	unsigned inflight;
	uint64_t flush_mark;        /* stats.switches at the last flush */
	int wake_fd;                /* eventfd that wakes a parked vcore */
	uint64_t wake_buf;
	bool wake_armed;
	/* Raw requests finished on the offload pool, newest first: pushed by
	 * workers (release CAS), taken by the owner (acquire xchg). */
	struct syscall *offload_done;

	struct timer_heap timers;

	/* Shared state, each on its own line. */
	CACHE_ALIGNED uint32_t parked;  /* 1 while blocked in the kernel */
	uint32_t granted;               /* may run (grant/revoke seam) */
	uint64_t revoke_deadline;       /* 0 = none; else pending revoke */
	uint32_t ev_doorbell;           /* 1: a bound event queue has work */

	/* Event queues bound to this vcore (event.c). */
	CACHE_ALIGNED struct spinlock evq_lock; /* protects evq_list */
	struct ev_queue *evq_list;
	bool ev_draining;               /* owner only: in ev_drain() */

	CACHE_ALIGNED struct spinlock all_lock; /* protects all_list */
	struct list_head all_list;

	CACHE_ALIGNED struct sched_vcore_stats stats; /* owner writes */
	pthread_t thread;
};

struct rt_state {
	struct spinlock lock;
	bool running;
	uint32_t shutdown;          /* atomic: main uthread returned */
	unsigned nr_vcores;
	struct vcore *vcores;       /* array of nr_vcores */
	const struct sched_ops *ops;
	uint64_t idle_poll_ns;
	size_t stack_size;
	unsigned ring_entries;
	uint32_t nr_parked;         /* atomic */
	uint32_t nr_granted;        /* atomic */
	uint32_t outside_wakes;     /* atomic: wake-ups in flight from plain threads */
	uint64_t next_uth_id;       /* atomic */
	int main_ret;
	/* Under atolld (mcp.c); NULL in standalone mode. */
	struct procinfo *mcp_pi;
	struct procdata *mcp_pd;
	uint32_t mcp_gen_seen;      /* atomic: procinfo generation applied */
};

extern struct rt_state rt;

/* The calling thread's vcore, or NULL outside the runtime. Set by the
 * vcore thread; read it only through vcore_self() (see uthread.c). */
extern __thread struct vcore *rt_this_vcore;
struct vcore *vcore_self(void);

static inline struct vcore *vcore_get(unsigned id)
{
	return &rt.vcores[id];
}

/* Per-vcore counters: written only by their vcore, read by anyone, so
 * relaxed atomic accesses (no read-modify-write needed). */
#define STAT_ADD(vc, field, n) \
	store_relaxed(&(vc)->stats.field, load_relaxed(&(vc)->stats.field) + (n))
#define STAT_INC(vc, field) STAT_ADD(vc, field, 1)

/* Wake vc if it is parked (any context). */
void vcore_kick(struct vcore *vc);

/* Whether vc may take new work. */
static inline bool vcore_takes_work(const struct vcore *vc)
{
	return load_relaxed(&vc->granted) && !load_relaxed(&vc->revoke_deadline);
}

/* The supervisor took vcore id's core by force: no more work for it, its
 * queued uthreads go to siblings (vcore_preempted), and it parks at its
 * next scheduling point. Any thread. (vcore.c) */
void vcore_taken(unsigned id);
/* Pin granted vcore id to another cpu (atolld moved its slot). */
void vcore_move(unsigned id, int cpu);

/* ---- under atolld (mcp.c) ----------------------------------------------- */

/* Whether rt_main() should register (ATOLL_CELL and the socket exist). */
bool mcp_wanted(void);
/* Register and map the pages; 0, or -errno (then stay standalone). */
int mcp_register(void);
/* Before the vcore threads start / after / at the end of rt_main(). */
void mcp_setup(void);
void mcp_run(void);
/* The watcher stops before the vcore threads are joined (it pins them);
 * the pages go after (vcores publish into them). */
void mcp_stop_watcher(void);
void mcp_stop(void);
/* Apply procinfo's changes (resync: every slot, changed or not). */
void mcp_apply(bool resync);
void mcp_publish_slow(struct vcore *vc, uint32_t state);
void mcp_vcore_started(struct vcore *vc);

/* Hooks in the vcore loop: one predictable branch in standalone mode. */
static inline void mcp_publish(struct vcore *vc, uint32_t state)
{
	if (unlikely(rt.mcp_pd != NULL) && vc->id < PROCINFO_MAX_VCORES)
		mcp_publish_slow(vc, state);
}

/* From a polling vcore: pick up a grant or revocation without waiting for
 * the watcher thread: one load of procinfo's generation. */
static inline void mcp_poll(void)
{
	if (likely(rt.mcp_pi == NULL))
		return;
	if (load_relaxed(&rt.mcp_pi->generation) !=
	    load_relaxed(&rt.mcp_gen_seen))
		mcp_apply(false);
}

/* ---- event queues (event.c) -------------------------------------------- */

/* Run the handlers of vc's bound queues that have events; called by vc
 * itself at a scheduling point when vc->ev_doorbell is set. */
void ev_drain(struct vcore *vc);

/* ---- syscalls (sys.c) --------------------------------------------------- */

int sys_vcore_init(struct vcore *vc);
void sys_vcore_fini(struct vcore *vc);
/* Reap completions of vc's ring without blocking; returns how many. */
unsigned sys_reap(struct vcore *vc);
/* Submit what is queued on vc's ring (no wait). */
void sys_flush(struct vcore *vc);
/* Park: submit, then sleep in the kernel until a completion, a wake-up or
 * timeout_ns (UINT64_MAX = none). */
void sys_park(struct vcore *vc, uint64_t timeout_ns);

/* Flush if requests have waited SYS_FLUSH_SWITCHES uthread switches: a
 * vcore kept busy by runnable uthreads still submits promptly. Flush too
 * when nothing else is queued here: there is no batch to wait for, and a
 * uthread polling with uthread_yield() (which switches nowhere) would
 * otherwise wait on its own unsubmitted request forever. */
#define SYS_FLUSH_SWITCHES 8u
static inline void sys_maybe_flush(struct vcore *vc)
{
	if (vc->sq_unsubmitted &&
	    (vc->stats.switches - vc->flush_mark >= SYS_FLUSH_SWITCHES ||
	     !rt.ops->nr_runnable(vc->id)))
		sys_flush(vc);
}

/* ---- offload (offload.c) ------------------------------------------------ */

struct syscall;
/* Run fn(arg) on a worker; then sc->result = its result, sc->done(sc) runs
 * on the worker. 0 or -errno. */
int offload_submit(long (*fn)(void *), void *arg, struct syscall *sc);
void offload_shutdown(void);

#endif /* ATOLL_RT_INTERNAL_H */
