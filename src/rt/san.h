/* san.h - telling ASan and TSan about stack switches.
 *
 * Without these calls a sanitized run of the runtime means nothing: ASan
 * would see one thread jump between stacks (false stack-overflow and
 * use-after-return reports, missed real ones) and TSan would mix the
 * histories of every uthread run by one kernel thread. Each context
 * (uthread or vcore loop) has a struct san_ctx. Compiled to nothing in
 * builds without sanitizers.
 */
#ifndef ATOLL_RT_SAN_H
#define ATOLL_RT_SAN_H

#include <stddef.h>

#include <atoll/compiler.h>

#ifdef ATOLL_ASAN
#include <sanitizer/common_interface_defs.h>
#endif
#ifdef ATOLL_TSAN
#include <sanitizer/tsan_interface.h>
#endif

struct san_ctx {
#ifdef ATOLL_ASAN
	void *fake_stack;       /* ASan's fake stack of this context */
	const void *stack_lo;   /* lowest usable stack address */
	size_t stack_size;
#endif
#ifdef ATOLL_TSAN
	void *fiber;            /* TSan's fiber for this context */
#endif
	char unused_;           /* keeps the struct non-empty */
};

/* A context for the current kernel thread's own stack (a vcore loop). */
static inline void san_ctx_init_thread(struct san_ctx *c, const void *lo,
				       size_t size)
{
#ifdef ATOLL_ASAN
	c->fake_stack = NULL;
	c->stack_lo = lo;
	c->stack_size = size;
#endif
#ifdef ATOLL_TSAN
	c->fiber = __tsan_get_current_fiber();
#endif
	(void)c, (void)lo, (void)size;
}

/* TSan fibers live with the stacks and are recycled with them: creating
 * one costs hundreds of page faults, and a recycled stack's next uthread
 * is ordered after its previous one anyway (the stack was freed first). */
static inline void *san_fiber_create(void)
{
#ifdef ATOLL_TSAN
	return __tsan_create_fiber(0);
#else
	return NULL;
#endif
}

static inline void san_fiber_destroy(void *fiber)
{
#ifdef ATOLL_TSAN
	if (fiber)
		__tsan_destroy_fiber(fiber);
#endif
	(void)fiber;
}

/* A context for a uthread starting on a stack [lo, lo + size) whose TSan
 * fiber (san_fiber_create) is `fiber`. */
static inline void san_ctx_init_fiber(struct san_ctx *c, const void *lo,
				      size_t size, void *fiber)
{
#ifdef ATOLL_ASAN
	c->fake_stack = NULL;
	c->stack_lo = lo;
	c->stack_size = size;
#endif
#ifdef ATOLL_TSAN
	c->fiber = fiber;
#endif
	(void)c, (void)lo, (void)size, (void)fiber;
}

/* Just before ctx_switch from `from` to `to`. from_dying: from's stack
 * will never run again (its fake stack can be dropped). */
static inline void san_switch_begin(struct san_ctx *from, struct san_ctx *to,
				    int from_dying)
{
#ifdef ATOLL_ASAN
	__sanitizer_start_switch_fiber(from_dying ? NULL : &from->fake_stack,
				       to->stack_lo, to->stack_size);
#endif
#ifdef ATOLL_TSAN
	/* flags 0: the switch orders everything before it in `from` before
	 * everything after it in `to`, as the hand-off of a vcore does. */
	__tsan_switch_to_fiber(to->fiber, 0);
#endif
	(void)from, (void)to, (void)from_dying;
}

/* First thing on `cur`'s stack after a switch into it. */
static inline void san_switch_end(struct san_ctx *cur)
{
#ifdef ATOLL_ASAN
	__sanitizer_finish_switch_fiber(cur->fake_stack, NULL, NULL);
#endif
	(void)cur;
}

#endif /* ATOLL_RT_SAN_H */
