/* arch/aarch64.h - arm64 spin hint and cycle counter. Include <atoll/arch.h>. */
#ifndef ATOLL_ARCH_AARCH64_H
#define ATOLL_ARCH_AARCH64_H

#include <stdbool.h>
#include <stdint.h>

static inline void cpu_relax(void)
{
	__asm__ volatile("yield" ::: "memory");
}

/* The generic timer's virtual count: constant rate, synchronised. */
static inline uint64_t arch_cycles(void)
{
	uint64_t v;
	__asm__ volatile("mrs %0, cntvct_el0" : "=r"(v));
	return v;
}

static inline uint64_t arch_cycles_ordered(void)
{
	uint64_t v;
	__asm__ volatile("isb; mrs %0, cntvct_el0" : "=r"(v) : : "memory");
	return v;
}

static inline bool arch_has_invariant_cycles(void)
{
	return true;
}

#endif /* ATOLL_ARCH_AARCH64_H */
