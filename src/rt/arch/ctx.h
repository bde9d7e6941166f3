/* arch/ctx.h - building the first frame of a new context, per architecture.
 * Pairs with the frame layout that arch/<arch>.S's ctx_switch pops. */
#ifndef ATOLL_RT_ARCH_CTX_H
#define ATOLL_RT_ARCH_CTX_H

#include <stdint.h>

void ctx_switch(void **save_sp, void *new_sp);
void ctx_trampoline(void);

/* Prepare a stack whose top (highest address, exclusive) is stack_top so
 * that switching to the returned stack pointer calls fn(arg). fn must never
 * return. */
static inline void *ctx_init(void *stack_top, void (*fn)(void *), void *arg)
{
	uintptr_t top = (uintptr_t)stack_top & ~(uintptr_t)15;
#if defined(__x86_64__)
	/* After ctx_switch's `ret`, rsp = top - 16: 16-byte aligned, so the
	 * trampoline's call gives fn the ABI's entry alignment. */
	uint64_t *sp = (uint64_t *)(top - 80);

	sp[0] = 0x1F80ull | (0x037Full << 32); /* default MXCSR, x87 CW */
	sp[1] = 0;                             /* r15 */
	sp[2] = 0;                             /* r14 */
	sp[3] = (uint64_t)(uintptr_t)fn;       /* r13 */
	sp[4] = (uint64_t)(uintptr_t)arg;      /* r12 */
	sp[5] = 0;                             /* rbx */
	sp[6] = 0;                             /* rbp: end of frame chain */
	sp[7] = (uint64_t)(uintptr_t)ctx_trampoline;
	sp[8] = 0;                             /* fake return address */
	sp[9] = 0;
	return sp;
#elif defined(__aarch64__)
	uint64_t *sp = (uint64_t *)(top - 176);

	for (int i = 0; i < 22; i++)
		sp[i] = 0;
	sp[0] = (uint64_t)(uintptr_t)arg;      /* x19 */
	sp[1] = (uint64_t)(uintptr_t)fn;       /* x20 */
	sp[11] = (uint64_t)(uintptr_t)ctx_trampoline; /* x30 */
	return sp;
#else
#error "no context switch for this architecture"
#endif
}

#endif /* ATOLL_RT_ARCH_CTX_H */
