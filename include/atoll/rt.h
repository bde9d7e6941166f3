/* rt.h - starting and stopping the many-core process runtime (libatoll).
 *
 * A process using Atoll runs its work as uthreads on vcores (see vcore.h and
 * uthread.h). rt_main() turns the calling pthread into vcore 0, starts the
 * other vcores, runs main_fn as the first uthread and returns when it
 * returns, after every vcore has stopped and every runtime resource (stacks,
 * rings, threads) has been released.
 *
 * Contexts used throughout the runtime's headers:
 *  - uthread context: code running on a uthread's stack (the application);
 *  - vcore context:   the vcore's scheduling loop on the vcore thread's own
 *                     stack (schedulers, event handlers, completion hooks);
 *  - any thread:      also callable from a plain pthread outside the runtime.
 *
 * Standalone mode (no supervisor): the runtime owns its vcores itself, one
 * pinned thread per cpu of the process's affinity mask, or an explicit count
 * (more vcores than cpus is allowed, for tests).
 */
#ifndef ATOLL_RT_H
#define ATOLL_RT_H

#include <stddef.h>
#include <stdint.h>

struct sched_ops;

struct rt_config {
	/* Number of vcores; 0 = one per cpu in the affinity mask. May exceed
	 * the cpu count (vcores then share cpus, round-robin). */
	unsigned nr_vcores;
	/* How long an idle vcore polls for work before parking, in ns.
	 * 0 = the default (RT_DEFAULT_IDLE_POLL_NS), overridable with the
	 * environment variable ATOLL_IDLE_POLL_NS. */
	uint64_t idle_poll_ns;
	/* Default uthread stack size in bytes; 0 = RT_DEFAULT_STACK_SIZE. */
	size_t stack_size;
	/* Do not pin vcore threads to cpus (tests on shared machines). */
	int no_pin;
	/* The two-level scheduler; NULL = the default (sched_default_ops). */
	const struct sched_ops *sched;
	/* Entries of each vcore's io_uring submission queue; 0 = 256. */
	unsigned ring_entries;
};

#define RT_DEFAULT_IDLE_POLL_NS 50000ull
#define RT_DEFAULT_STACK_SIZE (128u * 1024u)

/* Run main_fn(arg) as the first uthread on a fresh runtime, from a plain
 * pthread (not from inside a runtime). Returns main_fn's return value, or a
 * negative errno if the runtime could not start (-EBUSY: a runtime already
 * runs in this process; -ENOMEM; -EINVAL: bad config). cfg may be NULL.
 * Uthreads still blocked when main_fn returns are abandoned and their
 * memory released, as threads are when main() returns. */
int rt_main(const struct rt_config *cfg, int (*main_fn)(void *), void *arg);

/* Whether the caller runs inside the runtime (uthread or vcore context). */
int rt_active(void);

#endif /* ATOLL_RT_H */
