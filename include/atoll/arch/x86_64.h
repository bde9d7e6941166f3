/* arch/x86_64.h - x86-64 spin hint and cycle counter. Include <atoll/arch.h>. */
#ifndef ATOLL_ARCH_X86_64_H
#define ATOLL_ARCH_X86_64_H

#include <stdbool.h>
#include <stdint.h>

static inline void cpu_relax(void)
{
	__builtin_ia32_pause();
}

/* rdtsc is not ordered against earlier loads; callers that time a short
 * section use arch_cycles_ordered() at its start. */
static inline uint64_t arch_cycles(void)
{
	uint32_t lo, hi;
	__asm__ volatile("rdtsc" : "=a"(lo), "=d"(hi));
	return ((uint64_t)hi << 32) | lo;
}

/* rdtscp waits for earlier instructions to retire before reading. */
static inline uint64_t arch_cycles_ordered(void)
{
	uint32_t lo, hi, aux;
	__asm__ volatile("rdtscp" : "=a"(lo), "=d"(hi), "=c"(aux) : : "memory");
	return ((uint64_t)hi << 32) | lo;
}

/* CPUID leaf 0x80000007, EDX bit 8: the TSC runs at a constant rate in all
 * power states and is synchronised across cores (Linux: constant_tsc +
 * nonstop_tsc). */
static inline bool arch_has_invariant_cycles(void)
{
	uint32_t eax = 0x80000000u, ebx, ecx, edx;
	__asm__ volatile("cpuid" : "+a"(eax), "=b"(ebx), "=c"(ecx), "=d"(edx));
	if (eax < 0x80000007u)
		return false;
	eax = 0x80000007u;
	ecx = 0;
	__asm__ volatile("cpuid" : "+a"(eax), "=b"(ebx), "+c"(ecx), "=d"(edx));
	return (edx >> 8) & 1;
}

#endif /* ATOLL_ARCH_X86_64_H */
