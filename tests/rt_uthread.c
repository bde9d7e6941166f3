/* rt_uthread.c - uthread basics: create/join return values, yield order
 * on one vcore, detach, errno carried across switches, self/local. */
#include <errno.h>

#include <atoll/rt.h>
#include <atoll/uthread.h>
#include <atoll/vcore.h>

#include "harness.h"

static int trace[16];
static int trace_len;

static void *yielder(void *arg)
{
	long id = (long)arg;

	for (int i = 0; i < 3; i++) {
		trace[trace_len++] = (int)id;
		uthread_yield();
	}
	return (void *)(id * 10);
}

/* errno is read through a fresh call after each switch, as uthread.h
 * requires (a read of the address cached before the switch would see the
 * old vcore's errno). */
static __attribute__((noipa)) int errno_now(void)
{
	return errno;
}

static __attribute__((noipa)) void errno_set(int v)
{
	errno = v;
}

static void *errno_keeper(void *arg)
{
	errno_set((int)(long)arg);
	for (int i = 0; i < 50; i++) {
		uthread_yield();
		if (errno_now() != (int)(long)arg)
			return (void *)1;
	}
	return NULL;
}

static int detached_ran;

static void *detached(void *arg)
{
	(void)arg;
	__atomic_store_n(&detached_ran, 1, __ATOMIC_RELEASE);
	return NULL;
}

static void *local_user(void *arg)
{
	uthread_set_local(arg);
	uthread_yield();
	return uthread_get_local() == arg && uthread_self() ? arg : NULL;
}

static int single_vcore_main(void *arg)
{
	struct uthread *a, *b;
	void *ra, *rb;
	struct uthread_attr dattr = { .detached = 1 };

	(void)arg;
	CHECK_EQ(max_vcores(), 1);
	CHECK_EQ(vcore_id(), 0);
	CHECK(uthread_self() != NULL);
	CHECK_OK(uthread_create(&a, NULL, yielder, (void *)1L));
	CHECK_OK(uthread_create(&b, NULL, yielder, (void *)2L));
	CHECK_OK(uthread_join(a, &ra));
	CHECK_OK(uthread_join(b, &rb));
	CHECK_EQ((long)ra, 10);
	CHECK_EQ((long)rb, 20);
	/* FIFO on one vcore: the two alternate. */
	CHECK_EQ(trace_len, 6);
	for (int i = 0; i < 6; i++)
		CHECK_EQ(trace[i], 1 + i % 2);

	/* Joining self or a detached uthread is refused. */
	CHECK_EQ(uthread_join(uthread_self(), NULL), -EINVAL);
	CHECK_OK(uthread_create(NULL, &dattr, detached, NULL));
	while (!__atomic_load_n(&detached_ran, __ATOMIC_ACQUIRE))
		uthread_yield();
	CHECK_EQ(uthread_create(NULL, NULL, NULL, NULL), -EINVAL);
	return 0;
}

static int multi_vcore_main(void *arg)
{
	struct uthread *u[8];
	void *r;

	(void)arg;
	CHECK_EQ(max_vcores(), 4);
	for (long i = 0; i < 8; i++)
		CHECK_OK(uthread_create(&u[i], NULL, errno_keeper,
					(void *)(i + 100)));
	for (int i = 0; i < 8; i++) {
		CHECK_OK(uthread_join(u[i], &r));
		CHECK(r == NULL);
	}
	for (long i = 0; i < 8; i++)
		CHECK_OK(uthread_create(&u[i], NULL, local_user, (void *)(i + 1)));
	for (long i = 0; i < 8; i++) {
		CHECK_OK(uthread_join(u[i], &r));
		CHECK_EQ((long)r, i + 1);
	}
	return 42;
}

int main(void)
{
	struct rt_config one = { .nr_vcores = 1 };
	struct rt_config four = { .nr_vcores = 4 }; /* oversubscribed */

	CHECK_EQ(rt_main(&one, single_vcore_main, NULL), 0);
	CHECK(!rt_active());
	/* A second runtime in the same process after the first ended. */
	CHECK_EQ(rt_main(&four, multi_vcore_main, NULL), 42);
	CHECK_EQ(rt_main(NULL, NULL, NULL), -EINVAL);
	return TEST_PASS;
}
