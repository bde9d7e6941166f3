/* vcore.c - vcore threads, the vcore loop, idle polling and parking, the
 * grant/revoke seam, and rt_main().
 *
 * Design note. Each vcore is a kernel thread pinned to a cpu. Its loop (in
 * vcore context, on the thread's own stack) reaps syscall completions, runs
 * expired timers, asks the 2LS for a uthread and runs it. With nothing to
 * do it polls for rt.idle_poll_ns, then parks: it blocks in io_uring_enter
 * waiting for a completion, its wake-up eventfd, or its next timer.
 *
 * Parking handshake (no lost wake-up): the parker stores parked = 1, issues
 * a full fence, then looks for work; a waker queues work, issues a full
 * fence, then reads parked and, if set, writes the eventfd. Whichever fence
 * comes second sees the other side's store.
 *
 * Revocation: vcore_revoke() sets revoke_deadline; the vcore notices at its
 * next scheduling point (uth_next returns NULL), comes back to this loop,
 * lets the 2LS move its queued uthreads away (preempt_pending), drops its
 * grant and parks until granted again. Taking a core by force when the
 * deadline passes is the supervisor's job: atolld moves the vcore's thread
 * off the core and marks the slot taken; mcp.c then calls vcore_taken().
 *
 * Under atolld (mcp.c) the hooks below are the whole integration: vcores
 * publish their state in procdata (mcp_publish) and a polling vcore looks
 * for new grants (mcp_poll). Both are one never-taken branch standalone.
 */
#include <errno.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <atoll/clock.h>
#include <atoll/log.h>
#include <atoll/vcore.h>

#include "internal.h"

struct rt_state rt = { .lock = SPINLOCK_INIT };
__thread struct vcore *rt_this_vcore;

int rt_active(void)
{
	return vcore_self() != NULL;
}

/* ---- queries -------------------------------------------------------------- */

int vcore_id(void)
{
	struct vcore *vc = vcore_self();

	return vc ? (int)vc->id : -1;
}

unsigned num_vcores(void)
{
	unsigned n = 0;

	for (unsigned i = 0; i < rt.nr_vcores; i++) {
		struct vcore *vc = vcore_get(i);

		if (load_relaxed(&vc->granted) && !load_relaxed(&vc->parked))
			n++;
	}
	return n;
}

unsigned max_vcores(void)
{
	return rt.nr_vcores;
}

int sched_vcore_stats(unsigned id, struct sched_vcore_stats *st)
{
	if (id >= rt.nr_vcores || !st)
		return -EINVAL;
	const struct sched_vcore_stats *c = &vcore_get(id)->stats;

	/* Relaxed: counters, not synchronisation; a copy taken from another
	 * thread may be a few events stale. */
	st->switches = load_relaxed(&c->switches);
	st->runs = load_relaxed(&c->runs);
	st->steals = load_relaxed(&c->steals);
	st->parks = load_relaxed(&c->parks);
	st->wakeups = load_relaxed(&c->wakeups);
	return 0;
}

/* ---- waking and parking ------------------------------------------------------ */

void vcore_kick(struct vcore *vc)
{
	static const uint64_t one = 1;

	/* Pairs with the fence in vcore_park(): the work our caller queued is
	 * visible to the parker, or we see its parked flag. */
	fence_seq_cst();
	if (load_relaxed(&vc->parked) && vc != vcore_self()) {
		ssize_t r = write(vc->wake_fd, &one, sizeof(one));
		(void)r; /* EAGAIN: the counter is saturated, a wake is pending */
	}
}

void sched_poke_idle_vcore(void)
{
	/* A hint for parallelism, not needed for correctness: the vcore
	 * that queued the work runs it itself if no one else does. */
	if (!load_relaxed(&rt.nr_parked))
		return;
	for (unsigned i = 0; i < rt.nr_vcores; i++) {
		struct vcore *vc = vcore_get(i);

		if (load_relaxed(&vc->parked) && vcore_takes_work(vc)) {
			vcore_kick(vc);
			return;
		}
	}
}

/* Whether any vcore could find work to run now. */
static bool vcore_has_work(struct vcore *vc)
{
	if (load_relaxed(&rt.shutdown) || load_relaxed(&vc->revoke_deadline) ||
	    load_relaxed(&vc->ev_doorbell))
		return true;
	if (!load_relaxed(&vc->granted))
		return false;
	for (unsigned i = 0; i < rt.nr_vcores; i++) {
		size_t n = rt.ops->nr_runnable(i);

		/* Our own queue, or work another vcore could share. */
		if ((i == vc->id && n) || n > 1)
			return true;
	}
	return false;
}

static void vcore_park(struct vcore *vc)
{
	uint64_t timeout = UINT64_MAX, next;

	store_relaxed(&vc->parked, 1);
	fetch_add_acq_rel(&rt.nr_parked, 1);
	/* Under atolld: an ungranted vcore said OFF in vcore_give_back(). */
	if (load_relaxed(&vc->granted))
		mcp_publish(vc, PROCDATA_VC_IDLE);
	/* Pairs with vcore_kick(): see the top note. */
	fence_seq_cst();
	if (!vcore_has_work(vc)) {
		next = load_relaxed(&vc->timers.next_deadline);
		if (next != UINT64_MAX) {
			uint64_t now = fast_ns();

			timeout = next > now ? next - now : 0;
		}
		STAT_INC(vc, parks);
		sys_park(vc, timeout);
		STAT_INC(vc, wakeups);
	}
	fetch_sub_acq_rel(&rt.nr_parked, 1);
	store_relaxed(&vc->parked, 0);
	if (load_relaxed(&vc->granted))
		mcp_publish(vc, PROCDATA_VC_RUNNING);
	vc->idle_since = fast_ns();
}

/* ---- grant and revoke ------------------------------------------------------------ */

static void vcore_pin(struct vcore *vc)
{
	cpu_set_t set;

	if (vc->cpu < 0)
		return;
	CPU_ZERO(&set);
	CPU_SET(vc->cpu, &set);
	if (pthread_setaffinity_np(vc->thread, sizeof(set), &set))
		LOG_WARN("vcore %u: cannot pin to cpu %d; it runs unpinned",
			 vc->id, vc->cpu);
}

int vcore_grant(unsigned id, int cpu)
{
	struct vcore *vc;

	if (id >= rt.nr_vcores)
		return -EINVAL;
	vc = vcore_get(id);
	if (load_relaxed(&vc->granted) && !load_relaxed(&vc->revoke_deadline))
		return -EBUSY;
	if (cpu >= 0 && cpu != vc->cpu) {
		vc->cpu = cpu;
		vcore_pin(vc);
	}
	store_relaxed(&vc->revoke_deadline, 0);
	if (!xchg_acq_rel(&vc->granted, 1))
		fetch_add_acq_rel(&rt.nr_granted, 1);
	vcore_kick(vc);
	return 0;
}

int vcore_revoke(unsigned id, uint64_t deadline_ns)
{
	struct vcore *vc;

	if (id == 0 || id >= rt.nr_vcores)
		return -EINVAL;
	vc = vcore_get(id);
	if (!load_relaxed(&vc->granted))
		return 0;
	store_release(&vc->revoke_deadline, deadline_ns ? deadline_ns : 1);
	vcore_kick(vc);
	return 0;
}

bool vcore_preempt_pending(unsigned id)
{
	return id < rt.nr_vcores &&
	       load_relaxed(&vcore_get(id)->revoke_deadline) != 0;
}

int vcore_request(unsigned n)
{
	if (n == 0 || n > rt.nr_vcores)
		return -EINVAL;
	for (unsigned i = 0; i < rt.nr_vcores; i++) {
		if (i < n)
			vcore_grant(i, -1);
		else
			vcore_revoke(i, now_ns() + NSEC_PER_MSEC);
	}
	return (int)load_relaxed(&rt.nr_granted);
}

/* In vcore context: the revocation of vc takes effect. */
static void vcore_give_back(struct vcore *vc)
{
	if (rt.ops->preempt_pending)
		rt.ops->preempt_pending(vc->id);
	if (xchg_acq_rel(&vc->granted, 0))
		fetch_sub_acq_rel(&rt.nr_granted, 1);
	store_release(&vc->revoke_deadline, 0);
	/* Sleepers and timeouts armed here fire on vcore 0, which is never
	 * revoked; a parked, ungranted vcore runs no timers. */
	if (timer_migrate(vc, vcore_get(0)))
		LOG_ERROR("vcore %u: out of memory moving timers; some "
			  "sleepers wait until it is granted again", vc->id);
	/* Anything queued here between the hand-off and the flag going down
	 * goes too. */
	if (rt.ops->vcore_preempted)
		rt.ops->vcore_preempted(vc->id);
	mcp_publish(vc, PROCDATA_VC_OFF); /* the revocation is complete */
}

void vcore_move(unsigned id, int cpu)
{
	struct vcore *vc;

	if (id >= rt.nr_vcores || cpu < 0)
		return;
	vc = vcore_get(id);
	store_relaxed(&vc->cpu, cpu);
	vcore_pin(vc);
}

void vcore_taken(unsigned id)
{
	struct vcore *vc;

	if (id == 0 || id >= rt.nr_vcores)
		return;
	vc = vcore_get(id);
	if (xchg_acq_rel(&vc->granted, 0))
		fetch_sub_acq_rel(&rt.nr_granted, 1);
	/* atolld moved its thread: pin again at the next grant. */
	store_relaxed(&vc->cpu, -1);
	/* The vcore gives back (and parks) at its next scheduling point. */
	store_release(&vc->revoke_deadline, 1);
	if (rt.ops->vcore_preempted)
		rt.ops->vcore_preempted(id);
	vcore_kick(vc);
}

void vcore_yield(void)
{
	struct vcore *vc = vcore_self();

	if (!vc || vc->current || vcore_has_work(vc))
		return;
	vcore_park(vc);
}

/* ---- the vcore loop ------------------------------------------------------------------ */

static void vcore_loop(struct vcore *vc)
{
	struct uthread *uth;
	bool entered = false;

	vc->idle_since = fast_ns();
	while (!load_acquire(&rt.shutdown)) { /* pairs with main_trampoline */
		if (!entered && load_relaxed(&vc->granted)) {
			entered = true;
			mcp_publish(vc, PROCDATA_VC_RUNNING);
			if (rt.ops->vcore_entry)
				rt.ops->vcore_entry(vc->id);
		}
		if (load_relaxed(&vc->ev_doorbell))
			ev_drain(vc);
		if (load_relaxed(&vc->revoke_deadline)) {
			vcore_give_back(vc);
			entered = false;
			continue;
		}
		if (!load_relaxed(&vc->granted)) {
			vcore_park(vc);
			continue;
		}
		if (vc->inflight)
			sys_reap(vc);
		if (load_relaxed(&vc->timers.next_deadline) != UINT64_MAX)
			timer_run_expired(vc, fast_ns());
		uth = rt.ops->pick_next(vc->id);
		if (uth) {
			uth_run_from_vcore(vc, uth);
			vc->idle_since = fast_ns();
			continue;
		}
		if (vc->sq_unsubmitted)
			sys_flush(vc);
		if (fast_ns() - vc->idle_since < rt.idle_poll_ns) {
			mcp_poll();
			cpu_relax();
			continue;
		}
		vcore_park(vc);
	}
}

static void vcore_san_init(struct vcore *vc)
{
	pthread_attr_t attr;
	void *lo = NULL;
	size_t size = 0;

	if (!pthread_getattr_np(pthread_self(), &attr)) {
		pthread_attr_getstack(&attr, &lo, &size);
		pthread_attr_destroy(&attr);
	}
	san_ctx_init_thread(&vc->san, lo, size);
}

static void *vcore_thread(void *arg)
{
	struct vcore *vc = arg;

	rt_this_vcore = vc;
	vcore_san_init(vc);
	mcp_vcore_started(vc);
	vcore_loop(vc);
	rt_this_vcore = NULL;
	return NULL;
}

/* ---- rt_main ------------------------------------------------------------------------- */

struct main_args {
	int (*fn)(void *);
	void *arg;
};

static void *main_trampoline(void *p)
{
	struct main_args *ma = p;

	rt.main_ret = ma->fn(ma->arg);
	/* Release: main's results, for rt_main's caller after the joins. */
	store_release(&rt.shutdown, 1);
	for (unsigned i = 0; i < rt.nr_vcores; i++)
		vcore_kick(vcore_get(i));
	return NULL;
}

static int cpus_of_affinity(int *cpus, int max)
{
	cpu_set_t set;
	int n = 0;

	if (sched_getaffinity(0, sizeof(set), &set))
		return -errno;
	for (int c = 0; c < CPU_SETSIZE && n < max; c++)
		if (CPU_ISSET(c, &set))
			cpus[n++] = c;
	return n;
}

static uint64_t env_u64(const char *name, uint64_t dflt)
{
	const char *s = getenv(name);
	char *end;
	unsigned long long v;

	if (!s || !*s)
		return dflt;
	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno || *end) {
		LOG_WARN("%s=%s is not a number; using %llu", name, s,
			 (unsigned long long)dflt);
		return dflt;
	}
	return v;
}

static int vcore_init(struct vcore *vc, unsigned id, int cpu)
{
	int err;

	memset(vc, 0, sizeof(*vc));
	vc->id = id;
	vc->cpu = cpu;
	vc->granted = 1;
	vc->wake_fd = -1;
	spin_lock_init(&vc->all_lock);
	list_init(&vc->all_list);
	if (timer_heap_init(&vc->timers))
		return -ENOMEM;
	err = sys_vcore_init(vc);
	if (err)
		timer_heap_destroy(&vc->timers);
	return err;
}

static void vcore_fini(struct vcore *vc)
{
	stack_cache_drain(vc);
	timer_heap_destroy(&vc->timers);
}

static void rt_teardown(unsigned nr_init)
{
	/* First: after it no offload worker touches a uthread, a stack or a
	 * vcore (a late completion would wake a freed uthread and kick a
	 * closed eventfd). */
	offload_shutdown();
	/* Pairs with uth_make_runnable: no plain thread is still kicking a
	 * vcore whose eventfd we are about to close. */
	while (load_acquire(&rt.outside_wakes))
		cpu_relax();
	/* Then the rings: in-flight requests of abandoned uthreads point into
	 * their stacks, which must outlive the rings. */
	for (unsigned i = 0; i < nr_init; i++)
		sys_vcore_fini(vcore_get(i));
	/* Abandoned uthreads may sit on any vcore's list; stacks go to the
	 * cache of the vcore freeing them, so drain caches last. */
	for (unsigned i = 0; i < nr_init; i++) {
		struct vcore *vc = vcore_get(i);
		struct list_head *pos, *tmp;

		list_for_each_safe(pos, tmp, &vc->all_list)
			uth_free_abandoned(vcore_get(0),
				list_entry(pos, struct uthread, all_link));
	}
	for (unsigned i = 0; i < nr_init; i++)
		vcore_fini(vcore_get(i));
	if (rt.ops)
		rt.ops->fini();
	free(rt.vcores);
	rt.vcores = NULL;
	rt.nr_vcores = 0;
}

static int rt_configure(const struct rt_config *cfg, int *cpus, int *ncpus)
{
	static const struct rt_config defaults;

	if (!cfg)
		cfg = &defaults;
	*ncpus = cpus_of_affinity(cpus, CPU_SETSIZE);
	if (*ncpus <= 0)
		return *ncpus ? *ncpus : -EINVAL;
	rt.nr_vcores = cfg->nr_vcores ? cfg->nr_vcores : (unsigned)*ncpus;
	/* Under atolld the cell may grow: by default, one vcore per online
	 * cpu (the slots atolld may grant), not per cpu we may use now. */
	if (!cfg->nr_vcores && mcp_wanted()) {
		long on = sysconf(_SC_NPROCESSORS_ONLN);

		if (on > (long)rt.nr_vcores)
			rt.nr_vcores = (unsigned)on;
		if (rt.nr_vcores > PROCINFO_MAX_VCORES)
			rt.nr_vcores = PROCINFO_MAX_VCORES;
	}
	if (rt.nr_vcores > 1024)
		return -EINVAL;
	rt.ops = cfg->sched ? cfg->sched : &sched_default_ops;
	rt.idle_poll_ns = cfg->idle_poll_ns ? cfg->idle_poll_ns
		: env_u64("ATOLL_IDLE_POLL_NS", RT_DEFAULT_IDLE_POLL_NS);
	rt.stack_size = cfg->stack_size ? cfg->stack_size : RT_DEFAULT_STACK_SIZE;
#ifdef ATOLL_ASAN
	rt.stack_size *= 4; /* ASan's redzones make frames much larger */
#endif
	rt.ring_entries = cfg->ring_entries ? cfg->ring_entries : 256;
	if (cfg->no_pin)
		*ncpus = 0;
	return 0;
}

int rt_main(const struct rt_config *cfg, int (*main_fn)(void *), void *arg)
{
	static int cpus[CPU_SETSIZE];
	struct main_args ma = { main_fn, arg };
	struct uthread_attr mattr = { .detached = 1, .name = "main" };
	cpu_set_t saved_affinity;
	unsigned nr_init = 0, nr_started = 1;
	int ncpus, err;

	if (!main_fn)
		return -EINVAL;
	spin_lock(&rt.lock);
	if (rt.running) {
		spin_unlock(&rt.lock);
		return -EBUSY;
	}
	rt.running = true;
	spin_unlock(&rt.lock);

	log_init_from_env();
	clock_calibrate();
	sched_getaffinity(0, sizeof(saved_affinity), &saved_affinity);
	err = rt_configure(cfg, cpus, &ncpus);
	if (err)
		goto out;
	rt.shutdown = 0;
	rt.nr_parked = 0;
	rt.outside_wakes = 0;
	rt.main_ret = 0;
	rt.vcores = aligned_alloc(CACHE_LINE, sizeof(struct vcore) * rt.nr_vcores);
	err = -ENOMEM;
	if (!rt.vcores)
		goto out;
	err = rt.ops->init(rt.nr_vcores);
	if (err)
		goto out_free;
	for (; nr_init < rt.nr_vcores; nr_init++) {
		err = vcore_init(vcore_get(nr_init), nr_init,
				 ncpus ? cpus[nr_init % (unsigned)ncpus] : -1);
		if (err)
			goto out_teardown;
	}
	rt.nr_granted = rt.nr_vcores;
	/* Under atolld: start with the grants procinfo holds (vcore 0 always
	 * runs); standalone mode when atolld is absent or refuses. */
	if (mcp_wanted()) {
		int e = mcp_register();

		if (e)
			LOG_WARN("cannot register with atolld (%s); running standalone",
				 strerror(-e));
		else
			mcp_setup();
	}

	struct vcore *vc0 = vcore_get(0);

	vc0->thread = pthread_self();
	vcore_pin(vc0);
	rt_this_vcore = vc0;
	vcore_san_init(vc0);
	mcp_vcore_started(vc0);
	err = uthread_create(NULL, &mattr, main_trampoline, &ma);
	if (err)
		goto out_teardown;
	for (; nr_started < rt.nr_vcores; nr_started++) {
		struct vcore *vc = vcore_get(nr_started);

		err = pthread_create(&vc->thread, NULL, vcore_thread, vc);
		if (err) {
			err = -err;
			LOG_ERROR("cannot start vcore %u: %s", nr_started,
				  strerror(-err));
			store_release(&rt.shutdown, 1);
			break;
		}
		vcore_pin(vc);
	}
	if (rt.mcp_pi)
		mcp_run();
	vcore_loop(vc0);
	mcp_stop_watcher();
	for (unsigned i = 1; i < nr_started; i++)
		pthread_join(vcore_get(i)->thread, NULL);
	mcp_stop(); /* deregisters */
	if (!err)
		err = rt.main_ret;
out_teardown:
	mcp_stop(); /* no-op unless registered and not yet stopped */
	rt_this_vcore = NULL;
	rt_teardown(nr_init);
	goto out;
out_free:
	free(rt.vcores);
	rt.vcores = NULL;
out:
	sched_setaffinity(0, sizeof(saved_affinity), &saved_affinity);
	rt.ops = NULL;
	spin_lock(&rt.lock);
	rt.running = false;
	spin_unlock(&rt.lock);
	return err;
}
