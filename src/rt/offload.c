/* offload.c - a small pool of kernel threads for calls io_uring cannot make.
 *
 * The calling uthread blocks; a worker runs the function (blocking in the
 * kernel if it must) and then makes the uthread runnable again through the
 * 2LS, from outside the runtime, which kicks the uthread's vcore if it is
 * parked. Workers start on first use (OFFLOAD_WORKERS of them) and stop at
 * shutdown. The queue is a mutex and condition variable: workers are plain
 * threads that may sleep, unlike vcores.
 */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>

#include <atoll/sys.h>

#include "internal.h"

#define OFFLOAD_WORKERS 4

struct offload_job {
	struct snode link;
	long (*fn)(void *);
	void *arg;
	struct syscall *sc;     /* completed with fn's result */
};

static struct {
	pthread_mutex_t lock;   /* protects everything below */
	pthread_cond_t cond;
	struct squeue jobs;
	pthread_t threads[OFFLOAD_WORKERS];
	unsigned nr_threads;
	bool stopping;
} pool = { .lock = PTHREAD_MUTEX_INITIALIZER, .cond = PTHREAD_COND_INITIALIZER };

static void *offload_worker(void *unused)
{
	(void)unused;
	pthread_mutex_lock(&pool.lock);
	for (;;) {
		struct snode *n = squeue_pop(&pool.jobs);
		struct offload_job *job;

		if (!n) {
			if (pool.stopping)
				break;
			pthread_cond_wait(&pool.cond, &pool.lock);
			continue;
		}
		pthread_mutex_unlock(&pool.lock);
		job = container_of(n, struct offload_job, link);
		job->sc->result = job->fn(job->arg);
		job->sc->done(job->sc);
		free(job);
		pthread_mutex_lock(&pool.lock);
	}
	pthread_mutex_unlock(&pool.lock);
	return NULL;
}

/* Queue fn(arg) for a worker; sc->done(sc) runs on the worker when fn has
 * returned, with sc->result = fn's result. */
int offload_submit(long (*fn)(void *), void *arg, struct syscall *sc)
{
	struct offload_job *job = malloc(sizeof(*job));
	int err = 0;

	if (!job)
		return -ENOMEM;
	job->fn = fn;
	job->arg = arg;
	job->sc = sc;
	pthread_mutex_lock(&pool.lock);
	if (pool.nr_threads < OFFLOAD_WORKERS && pool.jobs.len >= pool.nr_threads) {
		err = -pthread_create(&pool.threads[pool.nr_threads], NULL,
				      offload_worker, NULL);
		if (!err)
			pool.nr_threads++;
		else if (pool.nr_threads)
			err = 0; /* the running workers will get to it */
	}
	if (!err) {
		squeue_push(&pool.jobs, &job->link);
		pthread_cond_signal(&pool.cond);
	}
	pthread_mutex_unlock(&pool.lock);
	if (err)
		free(job);
	return err;
}

void offload_shutdown(void)
{
	unsigned n;

	pthread_mutex_lock(&pool.lock);
	pool.stopping = true;
	n = pool.nr_threads;
	pthread_cond_broadcast(&pool.cond);
	pthread_mutex_unlock(&pool.lock);
	for (unsigned i = 0; i < n; i++)
		pthread_join(pool.threads[i], NULL);
	pthread_mutex_lock(&pool.lock);
	/* Jobs left behind belong to abandoned uthreads. */
	for (struct snode *s; (s = squeue_pop(&pool.jobs));)
		free(container_of(s, struct offload_job, link));
	pool.nr_threads = 0;
	pool.stopping = false;
	pthread_mutex_unlock(&pool.lock);
}

static void offload_wake(struct syscall *sc)
{
	uth_make_runnable(sc->data);
}

static void post_offload(struct uthread *uth, void *arg)
{
	struct syscall *sc = arg;
	long (*fn)(void *) = (long (*)(void *))(uintptr_t)sc->arg[0];
	int err;

	uth_note_blocked(uth, UTH_BLOCK_OFFLOAD);
	err = offload_submit(fn, (void *)(uintptr_t)sc->arg[1], sc);
	if (err) {
		sc->result = err;
		uth_make_runnable(uth);
	}
}

long sys_offload(long (*fn)(void *arg), void *arg)
{
	struct uthread *self = uthread_self();
	struct syscall sc = {
		.arg = { (uint64_t)(uintptr_t)fn, (uint64_t)(uintptr_t)arg, 0 },
		.done = offload_wake,
		.data = self,
	};

	if (!self)
		return fn(arg);
	uth_block(post_offload, &sc);
	return (long)sc.result;
}
