/* offload.c - a pool of kernel threads for calls io_uring cannot make.
 *
 * The calling uthread blocks; a worker runs the function (blocking in the
 * kernel if it must) and then makes the uthread runnable again through the
 * 2LS, from outside the runtime, which kicks the uthread's vcore if it is
 * parked. The queue is a mutex and condition variable: workers are plain
 * threads that may sleep, unlike vcores.
 *
 * Workers start on demand: a job that finds no idle worker starts one, up
 * to OFFLOAD_MAX_WORKERS. A fixed small pool would deadlock as soon as its
 * workers all block on something (a pipe read) that a queued job would
 * provide (the write). They stay until shutdown.
 *
 * Shutdown (rt_main's teardown) may find workers still inside a function
 * whose uthread is abandoned, possibly blocked for good. It bumps the pool's
 * generation, joins the idle workers and detaches the busy ones; a worker
 * whose function returns after that drops the result and exits. Results are
 * delivered (sc->done) under the pool lock, so once offload_shutdown() has
 * returned no worker touches a uthread, a stack or the runtime again.
 */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>

#include <atoll/sys.h>

#include "internal.h"

#define OFFLOAD_MAX_WORKERS 64

struct offload_job {
	struct snode link;
	long (*fn)(void *);
	void *arg;
	struct syscall *sc;     /* completed with fn's result */
};

struct offload_worker {
	pthread_t thread;
	bool busy;              /* running a job */
};

static struct {
	pthread_mutex_t lock;   /* protects everything below */
	pthread_cond_t cond;    /* a job was queued, or shutdown */
	struct squeue jobs;
	struct offload_worker workers[OFFLOAD_MAX_WORKERS];
	unsigned nr_workers;
	unsigned nr_idle;       /* workers waiting on cond */
	unsigned gen;           /* bumped by each shutdown */
} pool = { .lock = PTHREAD_MUTEX_INITIALIZER, .cond = PTHREAD_COND_INITIALIZER };

static void *offload_worker(void *p)
{
	/* Index and generation packed into the pointer (see
	 * offload_spawn_locked): nothing to free if the thread cannot
	 * start. */
	uintptr_t v = (uintptr_t)p;
	unsigned idx = (unsigned)(v & 0xffu), gen = (unsigned)(v >> 8);

	pthread_mutex_lock(&pool.lock);
	while (pool.gen == gen) {
		struct snode *n = squeue_pop(&pool.jobs);
		struct offload_job *job;
		long res;

		if (!n) {
			pool.nr_idle++;
			pthread_cond_wait(&pool.cond, &pool.lock);
			if (pool.gen != gen)
				break; /* shutdown reset the counts */
			pool.nr_idle--;
			continue;
		}
		pool.workers[idx].busy = true;
		pthread_mutex_unlock(&pool.lock);
		job = container_of(n, struct offload_job, link);
		res = job->fn(job->arg);
		pthread_mutex_lock(&pool.lock);
		if (pool.gen == gen) {
			pool.workers[idx].busy = false;
			job->sc->result = res;
			job->sc->done(job->sc);
		}
		/* else: the caller was abandoned at shutdown; so is res. */
		free(job);
	}
	pthread_mutex_unlock(&pool.lock);
	return NULL;
}

/* Start a worker; pool.lock held. 0 or -errno. */
static int offload_spawn_locked(void)
{
	unsigned idx = pool.nr_workers;
	uintptr_t v = ((uintptr_t)pool.gen << 8) | idx;
	int err;

	err = pthread_create(&pool.workers[idx].thread, NULL, offload_worker,
			     (void *)v);
	if (err)
		return -err;
	pool.workers[idx].busy = false;
	pool.nr_workers++;
	return 0;
}

/* Queue fn(arg) for a worker; sc->done(sc) runs on the worker when fn has
 * returned, with sc->result = fn's result. 0, or -ENOMEM / -EAGAIN when no
 * worker can be had. */
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
	/* Each idle worker will take one queued job; start another if none
	 * is left for this one. */
	if (pool.jobs.len >= pool.nr_idle &&
	    pool.nr_workers < OFFLOAD_MAX_WORKERS) {
		err = offload_spawn_locked();
		if (err && pool.nr_workers)
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
	pthread_t idle[OFFLOAD_MAX_WORKERS];
	unsigned n = 0;

	pthread_mutex_lock(&pool.lock);
	pool.gen++;
	for (unsigned i = 0; i < pool.nr_workers; i++) {
		if (pool.workers[i].busy)
			pthread_detach(pool.workers[i].thread);
		else
			idle[n++] = pool.workers[i].thread;
	}
	/* Jobs not started belong to abandoned uthreads. */
	for (struct snode *s; (s = squeue_pop(&pool.jobs));)
		free(container_of(s, struct offload_job, link));
	pool.nr_workers = 0;
	pool.nr_idle = 0;
	pthread_cond_broadcast(&pool.cond);
	pthread_mutex_unlock(&pool.lock);
	for (unsigned i = 0; i < n; i++)
		pthread_join(idle[i], NULL);
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
