/* super_latctl_mcp.c - a many-core process for the super_latctl test: it
 * publishes synthetic request latencies with rt_latency_record() and
 * reports on stdout, one line at a time:
 *
 *   vcores N              num_vcores() changed
 *   recorded on vcore V   a sample was recorded on vcore V > 0 (once,
 *                         after "vcores 2" or more)
 *   latency high|low      the latency it records changed (a signal)
 *   snapshot ok           rt_latency_snapshot() holds what was recorded
 *   standalone ok         (without atolld) recording is a no-op and
 *                         rt_latency_snapshot() says -ENODEV
 *
 * Three uthreads each record SAMPLES_PER_MS samples every millisecond: of
 * LAT_HIGH_NS until SIGUSR1, then LAT_LOW_NS; SIGUSR2 switches back. Two
 * more uthreads only yield, so that every granted vcore stays busy (and
 * num_vcores() counts the vcores atolld grants). It exits after 40 s at
 * most.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>

#include <atoll/atomic.h>
#include <atoll/clock.h>
#include <atoll/latency.h>
#include <atoll/rt.h>
#include <atoll/uthread.h>
#include <atoll/vcore.h>

#define LAT_HIGH_NS (5 * NSEC_PER_MSEC)
#define LAT_LOW_NS (100 * NSEC_PER_USEC)
#define SAMPLES_PER_MS 5
#define RECORDERS 3
#define SPINNERS 2

static uint32_t high = 1;           /* set by the signal handlers */
static uint32_t stop, seen_vcore;  /* a vcore > 0 that recorded */

static void on_usr(int sig)
{
	store_relaxed(&high, sig == SIGUSR2);
}

static void *spinner(void *arg)
{
	(void)arg;
	while (!load_acquire(&stop))
		uthread_yield();
	return NULL;
}

static void *recorder(void *arg)
{
	(void)arg;
	while (!load_acquire(&stop)) {
		uint64_t ns = load_relaxed(&high) ? LAT_HIGH_NS : LAT_LOW_NS;

		for (int i = 0; i < SAMPLES_PER_MS; i++)
			rt_latency_record(ns);
		if (vcore_id() > 0 && !load_relaxed(&seen_vcore))
			store_relaxed(&seen_vcore, (uint32_t)vcore_id());
		uthread_sleep_ns(NSEC_PER_MSEC);
	}
	return NULL;
}

/* Standalone: nothing to record into, nothing to snapshot. */
static int standalone_check(void)
{
	static struct hist h;

	rt_latency_record(LAT_HIGH_NS);
	if (rt_latency_snapshot(&h) != -ENODEV || hist_count(&h) != 0)
		return 1;
	printf("standalone ok\n");
	return 0;
}

static int main_fn(void *arg)
{
	static struct hist h;
	struct uthread_attr at = { .detached = 1 };
	uint64_t end = now_ns() + 40 * NSEC_PER_SEC;
	unsigned last = 0;
	uint32_t was_high = 1;
	bool snap_done = false, seen_said = false, had_2 = false;

	if (!strcmp(arg, "standalone"))
		return standalone_check();
	for (int i = 0; i < SPINNERS; i++)
		if (uthread_create(NULL, &at, spinner, NULL))
			return 1;
	for (int i = 0; i < RECORDERS; i++)
		if (uthread_create(NULL, &at, recorder, NULL))
			return 1;
	while (now_ns() < end) {
		unsigned n = num_vcores();
		uint32_t hi = load_relaxed(&high);

		if (n != last) {
			printf("vcores %u\n", n);
			last = n;
			had_2 |= n >= 2;
		}
		if (had_2 && !seen_said && load_relaxed(&seen_vcore)) {
			printf("recorded on vcore %u\n", load_relaxed(&seen_vcore));
			seen_said = true;
		}
		if (hi != was_high) {
			printf("latency %s\n", hi ? "high" : "low");
			was_high = hi;
		}
		if (!snap_done && !rt_latency_snapshot(&h) &&
		    hist_count(&h) >= 100) {
			/* Only high samples so far: the tail is LAT_HIGH_NS
			 * within a bucket (1/128). */
			uint64_t p99 = hist_percentile(&h, 99.0);

			snap_done = true;
			if (p99 > LAT_HIGH_NS + LAT_HIGH_NS / 100 ||
			    p99 < LAT_HIGH_NS - LAT_HIGH_NS / 100)
				return 1;
			printf("snapshot ok\n");
		}
		uthread_sleep_ns(2 * NSEC_PER_MSEC);
	}
	store_release(&stop, 1);
	return 0;
}

int main(int argc, char **argv)
{
	struct sigaction sa;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_usr;
	sa.sa_flags = SA_RESTART;
	sigaction(SIGUSR1, &sa, NULL);
	sigaction(SIGUSR2, &sa, NULL);
	setvbuf(stdout, NULL, _IOLBF, 0);
	return rt_main(NULL, main_fn, argc > 1 ? argv[1] : (char *)"run") ? 1 : 0;
}
