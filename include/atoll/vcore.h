/* vcore.h - the cores a many-core process holds.
 *
 * A vcore is one kernel thread pinned to one core. While granted and busy it
 * runs the process's scheduler and uthreads; with no work it polls for a
 * short while (rt_config.idle_poll_ns) and then parks, blocked in the
 * kernel, until work or a completion arrives.
 *
 * Who grants cores: in standalone mode the runtime itself, up to the count
 * chosen at rt_main(); under the supervisor (later), atolld, through the
 * same seam: vcore_grant() brings a vcore online on a core, vcore_revoke()
 * asks it to give the core back by a deadline (it yields at its next
 * scheduling point, hands its uthreads to siblings through the 2LS's
 * preempt_pending hook and parks), and a vcore taken by force is reported
 * to the 2LS through vcore_preempted so its uthreads are recovered.
 *
 * Context: vcore_id() from uthread or vcore context (a uthread's answer can
 * change after any blocking call); the others from any runtime context.
 */
#ifndef ATOLL_VCORE_H
#define ATOLL_VCORE_H

#include <stdbool.h>
#include <stdint.h>

/* The vcore the caller runs on; -1 outside the runtime. */
int vcore_id(void);

/* Vcores currently granted and not parked. */
unsigned num_vcores(void);

/* Most vcores this process may hold. */
unsigned max_vcores(void);

/* Ask for n vcores in all (post then poke: the wanted count is recorded and
 * parked vcores are woken up to it). Returns how many are granted now, or
 * -EINVAL when n is 0 or above max_vcores(). */
int vcore_request(unsigned n);

/* From vcore context: give the calling vcore's core back (park) unless
 * work is pending; returns when the vcore is granted again. */
void vcore_yield(void);

/* The supervisor seam (also used by standalone mode and tests). */

/* Grant vcore id on cpu (any thread). -EINVAL for a bad id; -EBUSY when
 * it is already granted. */
int vcore_grant(unsigned id, int cpu);

/* Ask vcore id to give its core back by deadline_ns (CLOCK_MONOTONIC). It
 * yields at its next scheduling point. -EINVAL for a bad id or vcore 0
 * (which carries the process's first uthread in standalone mode). */
int vcore_revoke(unsigned id, uint64_t deadline_ns);

/* Whether vcore id has a revocation pending. */
bool vcore_preempt_pending(unsigned id);

#endif /* ATOLL_VCORE_H */
