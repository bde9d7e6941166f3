/* arch.h - the few architecture-specific primitives, chosen at build time.
 *
 * Each arch/<name>.h provides, as static inline functions:
 *   cpu_relax()      hint to the core that we are spinning;
 *   arch_cycles()    a cheap, monotonic per-core cycle counter (x86: TSC);
 *   arch_has_invariant_cycles()  whether arch_cycles() ticks at a constant
 *                    rate across cores and power states, so it can be
 *                    calibrated to nanoseconds once.
 * Adding an architecture means adding one small file here and one context
 * switch file under src/rt/arch/.
 */
#ifndef ATOLL_ARCH_H
#define ATOLL_ARCH_H

#if defined(__x86_64__)
#include <atoll/arch/x86_64.h>
#elif defined(__aarch64__)
#include <atoll/arch/aarch64.h>
#else
#error "Atoll supports x86-64 and arm64 only"
#endif

#endif /* ATOLL_ARCH_H */
