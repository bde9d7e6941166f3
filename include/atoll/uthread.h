/* uthread.h - user-level threads scheduled by the process itself.
 *
 * Owns: uthread descriptors and their stacks. A uthread runs on its own
 * mmap'd stack with a guard page below it; the stack is taken from a
 * per-vcore cache when the uthread first runs (a created-but-never-run
 * uthread holds no stack) and returned to it when the uthread exits, so
 * creation is cheap and committed memory follows the live uthreads.
 *
 * Context: every function here is for uthread context unless it says
 * otherwise; uthread_create() may also be called from vcore context.
 *
 * errno and thread-local storage: `__thread` variables (and everything libc
 * keeps in TLS, errno included) belong to the vcore's kernel thread, not to
 * the uthread, as in Arachne and Caladan (Akaros switches TLS per uthread;
 * on Linux that would mean a syscall or wrfsbase and a glibc TCB per
 * uthread on every switch). A uthread can move to another vcore whenever it
 * blocks or yields, so:
 *  - never keep a pointer to a TLS variable across a runtime call that may
 *    block (the compiler may do this for you: GCC treats a TLS address, and
 *    glibc's errno address, as constant within a function);
 *  - errno is carried along: the runtime saves it when a uthread stops and
 *    restores it on the vcore where the uthread resumes, so a function
 *    called after the switch reads the uthread's own errno. Within one
 *    function, read errno right after the libc call that set it, before any
 *    call that may switch. Atoll's own APIs never use errno: they return
 *    -errno.
 * Per-uthread storage is uthread_set_local()/uthread_get_local().
 */
#ifndef ATOLL_UTHREAD_H
#define ATOLL_UTHREAD_H

#include <stddef.h>
#include <stdint.h>

struct uthread;

enum uthread_prio {
	UTH_PRIO_NORMAL = 0,
	/* Latency-critical: scheduled before every normal uthread. */
	UTH_PRIO_HIGH = 1,
};

struct uthread_attr {
	size_t stack_size;     /* 0 = the runtime's default */
	enum uthread_prio prio;
	int detached;          /* exits without a join */
	const char *name;      /* for debugging; not copied */
};

/* Create a uthread running fn(arg) and make it runnable. attr may be NULL.
 * Returns 0 and stores the handle in *out (unless detached and out is
 * NULL), or -ENOMEM / -EINVAL. Uthread or vcore context. */
int uthread_create(struct uthread **out, const struct uthread_attr *attr,
		   void *(*fn)(void *), void *arg);

/* Wait for uth to exit and release it; *ret (if not NULL) gets its return
 * value. -EINVAL if uth is detached or is the caller, -EBUSY if another
 * uthread already joins it. Uthread context. */
int uthread_join(struct uthread *uth, void **ret);

/* Let uth release itself when it exits. -EINVAL if already detached. */
int uthread_detach(struct uthread *uth);

/* Give the vcore to the next runnable uthread; returns at once if there is
 * none. */
void uthread_yield(void);

/* End the calling uthread with return value ret. */
void uthread_exit(void *ret) __attribute__((noreturn));

/* Sleep at least ns nanoseconds; other uthreads run meanwhile. */
void uthread_sleep_ns(uint64_t ns);

/* The calling uthread, or NULL in vcore context or outside the runtime. */
struct uthread *uthread_self(void);

/* A number unique among live uthreads (for logs). */
uint64_t uthread_id(const struct uthread *uth);

void uthread_set_prio(struct uthread *uth, enum uthread_prio prio);
enum uthread_prio uthread_get_prio(const struct uthread *uth);

/* One pointer of per-uthread storage, for the application. */
void uthread_set_local(void *p);
void *uthread_get_local(void);

#endif /* ATOLL_UTHREAD_H */
