/* atomic.h - thin, explicit wrappers over the C11 memory model.
 *
 * Owns nothing; every function here is safe from any context.
 *
 * Why wrappers: the memory order is part of the name, so a reader sees at
 * the call site what each access orders, and the code never needs
 * `volatile` for synchronisation. They work on plain integer and pointer
 * objects (GCC/Clang __atomic builtins), not on _Atomic types, so structures
 * placed in memory shared between processes keep a plain, documented layout.
 *
 * Rule (STYLE.md): every acquire, release or fence in the tree says in a
 * comment what it pairs with.
 */
#ifndef ATOLL_ATOMIC_H
#define ATOLL_ATOMIC_H

#include <stdbool.h>
#include <stdint.h>

#include <atoll/arch.h>
#include <atoll/compiler.h>

#define load_relaxed(p) __atomic_load_n((p), __ATOMIC_RELAXED)
#define load_acquire(p) __atomic_load_n((p), __ATOMIC_ACQUIRE)
#define store_relaxed(p, v) __atomic_store_n((p), (v), __ATOMIC_RELAXED)
#define store_release(p, v) __atomic_store_n((p), (v), __ATOMIC_RELEASE)

#define fetch_add_relaxed(p, v) __atomic_fetch_add((p), (v), __ATOMIC_RELAXED)
#define fetch_add_acq_rel(p, v) __atomic_fetch_add((p), (v), __ATOMIC_ACQ_REL)
#define fetch_sub_acq_rel(p, v) __atomic_fetch_sub((p), (v), __ATOMIC_ACQ_REL)
#define fetch_or_acq_rel(p, v) __atomic_fetch_or((p), (v), __ATOMIC_ACQ_REL)
#define fetch_and_acq_rel(p, v) __atomic_fetch_and((p), (v), __ATOMIC_ACQ_REL)

#define xchg_acquire(p, v) __atomic_exchange_n((p), (v), __ATOMIC_ACQUIRE)
#define xchg_release(p, v) __atomic_exchange_n((p), (v), __ATOMIC_RELEASE)
#define xchg_acq_rel(p, v) __atomic_exchange_n((p), (v), __ATOMIC_ACQ_REL)

/* Compare-and-swap. On failure *expected receives the current value.
 * Returns true when the swap happened. */
#define cas_acq_rel(p, expected, desired)                                  \
	__atomic_compare_exchange_n((p), (expected), (desired), false,     \
				    __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE)
#define cas_acquire(p, expected, desired)                                  \
	__atomic_compare_exchange_n((p), (expected), (desired), false,     \
				    __ATOMIC_ACQUIRE, __ATOMIC_RELAXED)
#define cas_release(p, expected, desired)                                  \
	__atomic_compare_exchange_n((p), (expected), (desired), false,     \
				    __ATOMIC_RELEASE, __ATOMIC_RELAXED)
#define cas_relaxed(p, expected, desired)                                  \
	__atomic_compare_exchange_n((p), (expected), (desired), false,     \
				    __ATOMIC_RELAXED, __ATOMIC_RELAXED)

/* Full fence: orders earlier stores before later loads (the one reordering
 * x86 allows). Needed for "publish flag, then check the other side's flag"
 * (Dekker-style) handshakes such as park/wake. */
#ifndef ATOLL_TSAN
static ALWAYS_INLINE void fence_seq_cst(void)
{
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
}

static ALWAYS_INLINE void fence_acquire(void)
{
	__atomic_thread_fence(__ATOMIC_ACQUIRE);
}

static ALWAYS_INLINE void fence_release(void)
{
	__atomic_thread_fence(__ATOMIC_RELEASE);
}
#else
/* GCC's TSan rejects fences (it cannot model them). A seq_cst
 * read-modify-write is a full barrier on the hardware (x86: any locked
 * instruction; arm64: the ldaxr/stlxr pair plus dmb GCC emits for it), so
 * TSan builds keep the same ordering. */
static uint64_t atomic__fence_word;

static ALWAYS_INLINE void fence_seq_cst(void)
{
	__atomic_fetch_add(&atomic__fence_word, 0, __ATOMIC_SEQ_CST);
}

static ALWAYS_INLINE void fence_acquire(void)
{
	fence_seq_cst();
}

static ALWAYS_INLINE void fence_release(void)
{
	fence_seq_cst();
}
#endif

/* Stops the compiler, not the CPU, from moving memory accesses across it. */
static ALWAYS_INLINE void compiler_barrier(void)
{
	__asm__ volatile("" ::: "memory");
}

#endif /* ATOLL_ATOMIC_H */
