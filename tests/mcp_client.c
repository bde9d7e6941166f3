/* mcp_client.c - a small many-core process for the super_mcp_* tests: it
 * runs the runtime (which registers with atolld when ATOLL_CELL and
 * ATOLL_SOCKET are set) and reports on stdout, one line at a time:
 *
 *   vcores N            num_vcores() changed
 *   hog on 1            (hog mode) the hog uthread runs on vcore 1
 *   hog progressing     (hog mode) the hog still runs after the force
 *   hog resumed on vcore V
 *
 * Modes (argv[1]):
 *   busy  two uthreads keep every granted vcore busy (they yield), so
 *         num_vcores() counts the vcores atolld grants; main samples
 *         num_vcores() every 2 ms;
 *   hog   three candidate uthreads yield until one finds itself on vcore
 *         1 (vcore 1 steals from vcore 0 while its own queue is empty);
 *         that one becomes the hog, the others keep vcore 0 busy. The hog
 *         never yields: it samples num_vcores() itself (plain loads, no
 *         scheduling point) until it sees vcore 1 taken by force, keeps
 *         running 100 ms more (its kernel thread was moved, not stopped),
 *         then yields once and reports the vcore it resumed on. Nothing
 *         else may report in this mode: uthreads queued behind the hog,
 *         or sleeping with a timer on vcore 1, wait for it.
 * It exits after 40 s at most (the tests kill it sooner).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <atoll/atomic.h>
#include <atoll/clock.h>
#include <atoll/rt.h>
#include <atoll/uthread.h>
#include <atoll/vcore.h>

static uint32_t stop, hog_claimed;

static void *spinner(void *arg)
{
	(void)arg;
	while (!load_acquire(&stop))
		uthread_yield();
	return NULL;
}

static void report(unsigned *last)
{
	unsigned n = num_vcores();

	if (n != *last) {
		printf("vcores %u\n", n);
		fflush(stdout);
		*last = n;
	}
}

static void *hog(void *arg)
{
	uint32_t no = 0;
	unsigned last = 0;
	uint64_t forced_at = 0;

	(void)arg;
	for (;;) {
		if (load_acquire(&stop))
			return NULL;
		if (load_acquire(&hog_claimed))
			return spinner(NULL);
		if (vcore_id() == 1 && cas_acq_rel(&hog_claimed, &no, 1))
			break;
		no = 0;
		uthread_yield();
	}
	printf("hog on 1\n");
	fflush(stdout);
	/* Never yields: only a forced revocation takes vcore 1 back. */
	for (;;) {
		report(&last);
		if (!forced_at && vcore_preempt_pending(1) && last == 1)
			forced_at = now_ns();
		if (forced_at && now_ns() - forced_at > 100 * NSEC_PER_MSEC)
			break;
		if (load_acquire(&stop))
			return NULL;
	}
	printf("hog progressing\n");
	fflush(stdout);
	uthread_yield();
	printf("hog resumed on vcore %d\n", vcore_id());
	fflush(stdout);
	return spinner(NULL);
}

static int main_fn(void *arg)
{
	const char *mode = arg;
	struct uthread_attr at = { .detached = 1 };
	bool hogging = !strcmp(mode, "hog");
	unsigned last = 0;
	uint64_t end = now_ns() + 40 * NSEC_PER_SEC;

	for (int i = 0; i < (hogging ? 3 : 2); i++)
		if (uthread_create(NULL, &at, hogging ? hog : spinner, NULL))
			return 1;
	while (now_ns() < end) {
		if (!hogging)
			report(&last);
		uthread_sleep_ns(2 * NSEC_PER_MSEC);
	}
	store_release(&stop, 1);
	return 0;
}

int main(int argc, char **argv)
{
	setvbuf(stdout, NULL, _IOLBF, 0);
	return rt_main(NULL, main_fn, argc > 1 ? argv[1] : (char *)"busy") ? 1 : 0;
}
