/* demo.c - `make demo`: what Atoll's foundation does, in half a minute.
 *
 * 1. Two kernel threads on different cpus pass messages through a
 *    shared-memory SPSC ring and through a pipe; the one-way latency of
 *    each is shown as a histogram summary.
 * 2. The many-core process runtime: uthreads created and joined, and
 *    uthreads switching on one vcore, beside pthreads doing the same.
 * The full, repeatable measurements are `make bench B=ring` and
 * `make bench B=rt`; this is the short tour.
 */
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <atoll/atomic.h>
#include <atoll/clock.h>
#include <atoll/hash.h>
#include <atoll/hist.h>
#include <atoll/ring.h>
#include <atoll/rt.h>
#include <atoll/uthread.h>
#include <atoll/vcore.h>

#define MSGS 200000
#define RING_SLOTS 1024

struct msg {
	uint64_t sent_cycles;
	char pad[56];
};

static struct ring_spsc *ring;
static int pipe_fd[2];
static int cpu_a, cpu_b;

static void pin(int cpu)
{
	cpu_set_t s;

	CPU_ZERO(&s);
	CPU_SET(cpu, &s);
	pthread_setaffinity_np(pthread_self(), sizeof(s), &s);
}

static void *ring_producer(void *arg)
{
	struct msg m = { 0 };

	(void)arg;
	pin(cpu_b);
	for (int i = 0; i < MSGS; i++) {
		m.sent_cycles = arch_cycles();
		while (ring_spsc_push(ring, &m))
			cpu_relax();
		/* Pace the sender so we measure latency, not queueing. */
		delay_ns(500);
	}
	return NULL;
}

static void *pipe_producer(void *arg)
{
	struct msg m = { 0 };

	(void)arg;
	pin(cpu_b);
	for (int i = 0; i < MSGS / 10; i++) {
		m.sent_cycles = arch_cycles();
		if (write(pipe_fd[1], &m, sizeof(m)) != sizeof(m))
			break;
		delay_ns(5000);
	}
	return NULL;
}

static void measure(const char *title, void *(*producer)(void *), int n,
		    int use_ring, struct hist *h)
{
	pthread_t t;
	struct msg m;

	hist_init(h);
	pin(cpu_a);
	pthread_create(&t, NULL, producer, NULL);
	for (int i = 0; i < n; i++) {
		if (use_ring) {
			while (ring_spsc_pop(ring, &m))
				cpu_relax();
		} else if (read(pipe_fd[0], &m, sizeof(m)) != sizeof(m)) {
			break;
		}
		hist_record(h, cycles_to_ns(arch_cycles() - m.sent_cycles));
	}
	pthread_join(t, NULL);
	printf("  %-28s p50 %7llu ns   p99 %7llu ns   p99.9 %7llu ns\n", title,
	       (unsigned long long)hist_percentile(h, 50),
	       (unsigned long long)hist_percentile(h, 99),
	       (unsigned long long)hist_percentile(h, 99.9));
}

static void *noop(void *arg)
{
	return arg;
}

static void *pingpong(void *arg)
{
	for (long i = 0; i < (long)arg; i++)
		uthread_yield();
	return NULL;
}

static int runtime_tour(void *arg)
{
	enum { N = 20000, YIELDS = 1000000 };
	struct uthread *a, *b;
	uint64_t t0, ns;

	(void)arg;
	t0 = now_ns();
	for (int i = 0; i < N; i++) {
		if (uthread_create(&a, NULL, noop, NULL))
			return 1;
		uthread_join(a, NULL);
	}
	ns = now_ns() - t0;
	printf("  uthread create+join          %7.0f ns each (%d, on %u vcores)\n",
	       (double)ns / N, N, max_vcores());

	vcore_request(1); /* both on one vcore: a pure switch */
	t0 = now_ns();
	uthread_create(&a, NULL, pingpong, (void *)(long)(YIELDS / 2));
	uthread_create(&b, NULL, pingpong, (void *)(long)(YIELDS / 2));
	uthread_join(a, NULL);
	uthread_join(b, NULL);
	ns = now_ns() - t0;
	printf("  uthread yield switch         %7.1f ns each\n",
	       (double)ns / YIELDS);
	return 0;
}

static void pthread_tour(void)
{
	enum { N = 2000 };
	uint64_t t0 = now_ns();
	pthread_t t;

	for (int i = 0; i < N; i++) {
		pthread_create(&t, NULL, noop, NULL);
		pthread_join(t, NULL);
	}
	printf("  pthread_create+join          %7.0f ns each (%d)\n",
	       (double)(now_ns() - t0) / N, N);
}

int main(void)
{
	size_t bytes = ring_spsc_size(RING_SLOTS);
	cpu_set_t set;
	struct hist *h = malloc(sizeof(*h));
	int ncpu = 0, r;

	clock_calibrate();
	sched_getaffinity(0, sizeof(set), &set);
	cpu_a = cpu_b = -1;
	for (int c = 0; c < CPU_SETSIZE; c++) {
		if (!CPU_ISSET(c, &set))
			continue;
		if (ncpu == 0)
			cpu_a = c;
		else if (ncpu == 1)
			cpu_b = c;
		ncpu++;
	}
	if (cpu_b < 0)
		cpu_b = cpu_a;
	ring = aligned_alloc(CACHE_LINE, ALIGN_UP(bytes, CACHE_LINE));
	if (!h || !ring || ring_spsc_init(ring, bytes, RING_SLOTS) ||
	    pipe(pipe_fd)) {
		fprintf(stderr, "demo: cannot set up (out of memory or fds)\n");
		return 1;
	}
	printf("Atoll demo on %d cpus (%s clock)\n\n", ncpu,
	       clock_is_tsc() ? "TSC" : "clock_gettime");
	printf("One-way message latency between cpu %d and cpu %d:\n", cpu_b,
	       cpu_a);
	measure("shared-memory SPSC ring", ring_producer, MSGS, 1, h);
	measure("pipe (kernel wake-up)", pipe_producer, MSGS / 10, 0, h);

	printf("\nThreads:\n");
	/* measure() pinned us; the runtime takes the whole affinity mask. */
	sched_setaffinity(0, sizeof(set), &set);
	r = rt_main(NULL, runtime_tour, NULL);
	pthread_tour();
	printf("\nkey hash: hash64(\"atoll\") = %016llx\n",
	       (unsigned long long)hash64("atoll", 5, 0));
	printf("\nFull measurements: make bench B=ring, make bench B=rt\n");
	free(ring);
	free(h);
	close(pipe_fd[0]);
	close(pipe_fd[1]);
	return r ? 1 : 0;
}
