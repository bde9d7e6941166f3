/* hello.c - uthreads saying hello from every vcore.
 *
 * Starts the runtime with one vcore per cpu (or ATOLL_VCORES), spawns a few
 * uthreads per vcore, and each prints where it runs, yields, and prints
 * again: a uthread may resume on another vcore after a yield.
 */
#include <stdio.h>
#include <stdlib.h>

#include <atoll/rt.h>
#include <atoll/uthread.h>
#include <atoll/vcore.h>

static void *hello(void *arg)
{
	long n = (long)arg;
	int before = vcore_id();

	uthread_yield();
	printf("hello from uthread %ld: vcore %d, then vcore %d\n", n, before,
	       vcore_id());
	return NULL;
}

static int hello_main(void *arg)
{
	unsigned n = max_vcores() * 3;
	struct uthread **uths = calloc(n, sizeof(*uths));

	(void)arg;
	if (!uths)
		return 1;
	printf("runtime up: %u vcores\n", max_vcores());
	for (unsigned i = 0; i < n; i++)
		if (uthread_create(&uths[i], NULL, hello, (void *)(long)i))
			return 1;
	for (unsigned i = 0; i < n; i++)
		uthread_join(uths[i], NULL);
	free(uths);
	return 0;
}

int main(void)
{
	struct rt_config cfg = { 0 };
	const char *v = getenv("ATOLL_VCORES");
	int r;

	if (v)
		cfg.nr_vcores = (unsigned)atoi(v);
	r = rt_main(&cfg, hello_main, NULL);
	if (r < 0)
		fprintf(stderr, "hello: the runtime did not start (error %d)\n", r);
	return r ? 1 : 0;
}
