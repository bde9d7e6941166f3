/* clock.h - time in nanoseconds: the monotonic clock, a calibrated cycle
 * counter for cheap timestamps, and busy-wait delays.
 *
 * Owns: the process-global calibration of arch_cycles() against
 * CLOCK_MONOTONIC (a fixed-point cycles<->ns ratio and an anchor point).
 *
 * Timeline: now_ns() and fast_ns() both return CLOCK_MONOTONIC nanoseconds,
 * so their values can be compared and subtracted. fast_ns() gets there from
 * the cycle counter: after calibration it is anchored to CLOCK_MONOTONIC and
 * then runs at the calibrated rate, so it drifts from now_ns() by the
 * calibration error (typically tens of parts per million: a few us per
 * second). Use now_ns() for long intervals and for anything compared with
 * another process; fast_ns() for short intervals on hot paths.
 *
 * Thread safety: clock_calibrate() may be called from any thread at any
 * time; the first call measures (~15 ms, it sleeps), concurrent callers wait
 * for it, later calls return the stored result at once. The result is
 * published with release/acquire, so every other function here is safe from
 * any thread at any time. Before calibration has succeeded, fast_ns() is
 * now_ns(); call clock_calibrate() once at startup, before threads time
 * anything, so one thread's timestamps do not switch source mid-interval.
 *
 * Calling context: any thread; none of these take locks or allocate.
 * clock_calibrate() sleeps and so must not be called from a hot path.
 */
#ifndef ATOLL_CLOCK_H
#define ATOLL_CLOCK_H

#include <stdbool.h>
#include <stdint.h>

#include <atoll/arch.h>
#include <atoll/atomic.h>
#include <atoll/compiler.h>

#define NSEC_PER_USEC 1000ull
#define NSEC_PER_MSEC 1000000ull
#define NSEC_PER_SEC 1000000000ull

/* CLOCK_MONOTONIC in nanoseconds (vDSO on Linux: tens of ns). */
uint64_t now_ns(void);

/* Nanoseconds elapsed since t0, a value from now_ns(). */
static inline uint64_t ns_since(uint64_t t0)
{
	return now_ns() - t0;
}

/*
 * Measure arch_cycles() against CLOCK_MONOTONIC (a few rounds over ~15 ms,
 * discarding samples disturbed by preemption) and, if the counter is
 * invariant and the rounds agree, switch fast_ns() to the cycle counter.
 * Returns 0 when fast_ns() is cycle-based, -ENOTSUP when the counter is not
 * invariant (fast_ns() stays on clock_gettime), -EIO when the measurement
 * was inconsistent (same fallback). Idempotent; see thread safety above.
 */
int clock_calibrate(void);

/* Whether fast_ns() reads the cycle counter (calibration succeeded). */
bool clock_is_tsc(void);

/* State written once by clock_calibrate(); read through the inlines below.
 * ns = base_ns + ((cycles - base_cycles) * c2n_mult) >> CLOCK_SHIFT. */
#define CLOCK_SHIFT 32
struct clock__calib {
	uint32_t state;      /* CLOCK__*; release-published, read acquire */
	int result;          /* clock_calibrate()'s return value */
	uint64_t c2n_mult;   /* ns per cycle << CLOCK_SHIFT */
	uint64_t n2c_mult;   /* cycles per ns << CLOCK_SHIFT */
	uint64_t base_cycles;
	uint64_t base_ns;
};
enum { CLOCK__UNSET, CLOCK__BUSY, CLOCK__DONE };
extern struct clock__calib clock__calib;

/* Whether the ratio is known (clock_calibrate() has finished, even if it
 * fell back); the conversions below are 1:1 until then. */
static inline bool clock__ready(void)
{
	/* Acquire: pairs with the release store of state in clock_calibrate(),
	 * so the multipliers and anchor written before it are visible. */
	return load_acquire(&clock__calib.state) == CLOCK__DONE;
}

/* Convert a cycle count (a difference of arch_cycles() values) to ns using
 * the measured ratio: a multiply and a shift. Exact for any input whose
 * result fits in 64 bits. Before calibration, or if the ratio could not be
 * measured, 1 cycle is taken as 1 ns. */
static inline uint64_t cycles_to_ns(uint64_t cycles)
{
	if (unlikely(!clock__ready()))
		return cycles;
	return (uint64_t)(((unsigned __int128)cycles * clock__calib.c2n_mult) >>
			  CLOCK_SHIFT);
}

/* Convert ns to cycles with the measured ratio; the inverse of
 * cycles_to_ns() up to rounding. 1:1 before calibration. */
static inline uint64_t ns_to_cycles(uint64_t ns)
{
	if (unlikely(!clock__ready()))
		return ns;
	return (uint64_t)(((unsigned __int128)ns * clock__calib.n2c_mult) >>
			  CLOCK_SHIFT);
}

/* Cycle-counter ticks per microsecond (rounded), 0 before calibration or if
 * the ratio could not be measured. For reports and benchmark tables. */
uint64_t clock_cycles_per_us(void);

/*
 * Monotonic ns on the CLOCK_MONOTONIC timeline, from the cycle counter when
 * clock_is_tsc() (a few ns: rdtsc/cntvct, a multiply, a shift), else from
 * now_ns(). The counter read is not ordered against earlier instructions;
 * use arch_cycles_ordered() directly to time a handful of instructions.
 */
uint64_t fast_ns(void);

/* Nanoseconds elapsed since t0, a value from fast_ns(). */
static inline uint64_t fast_ns_since(uint64_t t0)
{
	return fast_ns() - t0;
}

/* Busy-wait (cpu_relax(), never sleeps or yields) for at least ns
 * nanoseconds of fast_ns() time. May overshoot if the thread is preempted. */
void delay_ns(uint64_t ns);

#endif /* ATOLL_CLOCK_H */
