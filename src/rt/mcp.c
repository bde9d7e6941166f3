/* mcp.c - the runtime under atolld: registration as a many-core process
 * (MCP), the procinfo/procdata mapping, and the watcher that turns
 * atolld's grants and revocations into vcore_grant()/vcore_revoke() calls.
 *
 * When: rt_main() registers only if ATOLL_CELL is set and the control
 * socket ($ATOLL_SOCKET, else /run/atoll/atolld.sock) exists; otherwise,
 * or if the registration fails (logged), the runtime stays in standalone
 * mode, unchanged.
 *
 * Design note. atolld changes a slot of procinfo, bumps the generation and
 * wakes the generation futex (include/atoll/procinfo.h). Two things apply
 * changes, under m.lock (a trylock: whoever holds it re-reads the
 * generation before leaving, so nothing is lost):
 *   - a polling vcore (idle, before it parks) sees the generation move with
 *     one load per loop turn (mcp_poll() in internal.h): no kernel wake on
 *     the path when some vcore is polling;
 *   - the watcher thread waits on the futex for when every vcore is busy or
 *     parked; every MCP_RESYNC_MS it also re-applies the whole page, which
 *     repairs any vcore left out of step by a grant racing a give-back.
 * Vcores publish their state in procdata (mcp_publish() in internal.h).
 * A slot atolld took by force (granted = 0 while our vcore still holds it)
 * goes to vcore_taken(): the 2LS hears vcore_preempted and the vcore parks
 * at its next scheduling point.
 *
 * The registration's socket stays open for the life of rt_main(): closing
 * it (or exiting) deregisters the process and atolld takes the cores back.
 */
#include <errno.h>
#include <linux/futex.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <atoll/log.h>
#include <atoll/proto.h>
#include <atoll/procinfo.h>
#include <atoll/vcore.h>

#include "internal.h"

#define MCP_RESYNC_MS 50

static struct {
	struct spinlock lock;       /* serialises mcp_apply() */
	int sock;                   /* registration; -1 when none */
	int preset_fd;              /* rt_mcp_use_fd(); -1 when none */
	void *map;
	unsigned nslots;            /* min(procinfo nr_slots, rt.nr_vcores) */
	pthread_t watcher;
	bool watcher_on;
	cpu_set_t cpus;             /* the process's affinity at registration */
	uint32_t stop;              /* atomic: the watcher must exit */
} m = { .lock = SPINLOCK_INIT, .sock = -1, .preset_fd = -1 };

void rt_mcp_use_fd(int fd)
{
	m.preset_fd = fd;
}

static const char *socket_path(void)
{
	const char *p = getenv(PROTO_SOCKET_ENV);

	return p && *p ? p : PROTO_SOCKET_DEFAULT;
}

bool mcp_wanted(void)
{
	const char *cell = getenv("ATOLL_CELL");
	struct stat st;

	if (m.preset_fd >= 0)
		return true;
	return cell && *cell && !stat(socket_path(), &st) && S_ISSOCK(st.st_mode);
}

/* Send the request, read the one-line reply and the memfd it carries. */
static int do_register(unsigned max, int *memfd)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	char req[256], reply[1024];
	union {
		char buf[CMSG_SPACE(sizeof(int))];
		struct cmsghdr align;
	} cm;
	const char *path = socket_path(), *cell = getenv("ATOLL_CELL");
	size_t len = 0;
	int fd, n;

	*memfd = -1;
	if (strlen(path) >= sizeof(sa.sun_path) || strlen(cell) > PROTO_NAME_MAX)
		return -ENAMETOOLONG;
	for (const char *c = cell; *c; c++) /* the name goes into JSON as is */
		if (!((*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') ||
		      (*c >= '0' && *c <= '9') || *c == '-' || *c == '_'))
			return -EINVAL;
	strcpy(sa.sun_path, path);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)))
		goto fail;
	n = snprintf(req, sizeof(req),
		     "{\"op\":\"mcp.register\",\"cell\":\"%s\",\"min\":1,\"max\":%u,\"class\":\"ll\"}\n",
		     cell, max);
	if (send(fd, req, (size_t)n, MSG_NOSIGNAL) != n)
		goto fail;
	while (len < sizeof(reply) - 1 && !memchr(reply, '\n', len)) {
		struct iovec iov = { reply + len, sizeof(reply) - 1 - len };
		struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1,
				     .msg_control = cm.buf,
				     .msg_controllen = sizeof(cm.buf) };
		ssize_t r = recvmsg(fd, &mh, MSG_CMSG_CLOEXEC);
		struct cmsghdr *ch;

		if (r <= 0) {
			if (r < 0 && errno == EINTR)
				continue;
			errno = r ? errno : ECONNRESET;
			goto fail;
		}
		for (ch = CMSG_FIRSTHDR(&mh); ch; ch = CMSG_NXTHDR(&mh, ch))
			if (ch->cmsg_level == SOL_SOCKET &&
			    ch->cmsg_type == SCM_RIGHTS && *memfd < 0)
				memcpy(memfd, CMSG_DATA(ch), sizeof(int));
		len += (size_t)r;
	}
	reply[len] = 0;
	if (!strstr(reply, "\"ok\":true") || *memfd < 0) {
		char *nl = strchr(reply, '\n');

		if (nl)
			*nl = 0;
		LOG_WARN("atolld refused the registration of cell '%s': %s",
			 cell, reply);
		if (*memfd >= 0)
			close(*memfd);
		*memfd = -1;
		close(fd);
		return -EPERM;
	}
	return fd;
fail:
	n = -errno;
	if (*memfd >= 0)
		close(*memfd);
	*memfd = -1;
	close(fd);
	return n;
}

int mcp_register(void)
{
	struct procinfo *pi;
	struct procdata *pd;
	int memfd = m.preset_fd, sock = -1;
	void *map;

	m.preset_fd = -1;
	/* Before vcore 0 pins the main thread: the watcher may run on any of
	 * these, not only beside vcore 0 (where it would fight a polling
	 * vcore 0 for the cpu). */
	if (sched_getaffinity(0, sizeof(m.cpus), &m.cpus))
		CPU_ZERO(&m.cpus);
	if (memfd < 0) {
		sock = do_register(rt.nr_vcores, &memfd);
		if (sock < 0)
			return sock;
	}
	/* procinfo read-only, procdata read-write: one reservation, two
	 * mappings of the same memfd side by side. */
	map = mmap(NULL, PROCINFO_MAP_SIZE, PROT_READ, MAP_SHARED, memfd, 0);
	if (map == MAP_FAILED ||
	    mmap((char *)map + PROCDATA_OFFSET, PROCDATA_SIZE,
		 PROT_READ | PROT_WRITE, MAP_SHARED | MAP_FIXED, memfd,
		 PROCDATA_OFFSET) == MAP_FAILED) {
		int e = -errno;

		if (map != MAP_FAILED)
			munmap(map, PROCINFO_MAP_SIZE);
		close(memfd);
		if (sock >= 0)
			close(sock);
		return e;
	}
	close(memfd);
	pi = map;
	pd = (struct procdata *)((char *)map + PROCDATA_OFFSET);
	if (load_acquire(&pi->magic) != PROCINFO_MAGIC ||
	    pi->version != PROCINFO_VERSION || !pi->nr_slots ||
	    pi->nr_slots > PROCINFO_MAX_VCORES) {
		LOG_WARN("atolld's procinfo has an unknown layout; running standalone");
		munmap(map, PROCINFO_MAP_SIZE);
		if (sock >= 0)
			close(sock);
		return -EPROTO;
	}
	m.map = map;
	m.sock = sock;
	m.nslots = pi->nr_slots < rt.nr_vcores ? pi->nr_slots : rt.nr_vcores;
	store_relaxed(&m.stop, 0);
	pd->version = PROCINFO_VERSION;
	pd->nr_vcores = rt.nr_vcores;
	store_release(&pd->magic, PROCDATA_MAGIC);
	rt.mcp_pi = pi;
	rt.mcp_pd = pd;
	LOG_INFO("registered with atolld: %u vcore slots", m.nslots);
	return 0;
}

/* Before the vcore threads start: take the grants procinfo holds now. */
void mcp_setup(void)
{
	struct procinfo *pi = rt.mcp_pi;
	unsigned n = 0;

	store_relaxed(&rt.mcp_gen_seen, load_acquire(&pi->generation));
	for (unsigned i = 0; i < rt.nr_vcores; i++) {
		struct vcore *vc = vcore_get(i);
		const struct procinfo_vcore *s = &pi->vc[i];
		bool g = i == 0 ||
			 (i < m.nslots && load_relaxed(&s->granted) &&
			  !load_relaxed(&s->preempt_pending));

		if (i < m.nslots && load_relaxed(&s->granted) &&
		    load_relaxed(&s->cpu) >= 0)
			vc->cpu = load_relaxed(&s->cpu);
		vc->granted = g;
		n += g;
		if (i < PROCINFO_MAX_VCORES) {
			store_relaxed(&rt.mcp_pd->vc[i].seen_seq,
				      load_relaxed(&s->seq));
			store_relaxed(&rt.mcp_pd->vc[i].state,
				      g ? PROCDATA_VC_RUNNING : PROCDATA_VC_OFF);
		}
	}
	rt.nr_granted = n;
}

static void apply_slot(struct procinfo *pi, unsigned i)
{
	const struct procinfo_vcore *s = &pi->vc[i];
	struct vcore *vc = vcore_get(i);
	uint32_t seq = load_relaxed(&s->seq);
	bool granted = load_relaxed(&s->granted);
	uint64_t pp = load_relaxed(&s->preempt_pending);
	bool have = load_relaxed(&vc->granted);
	uint64_t pending = load_relaxed(&vc->revoke_deadline);

	if (granted && !pp) {
		int cpu = load_relaxed(&s->cpu);

		if (!have || pending)
			vcore_grant(i, cpu);
		else if (cpu >= 0 && cpu != load_relaxed(&vc->cpu))
			vcore_move(i, cpu);
	} else if (granted) {
		if (have && !pending && i)
			vcore_revoke(i, pp);
	} else if (have && i) {
		/* atolld took the core at the deadline (or never gave it). */
		vcore_taken(i);
	}
	store_relaxed(&rt.mcp_pd->vc[i].seen_seq, seq);
}

void mcp_apply(bool resync)
{
	struct procinfo *pi = rt.mcp_pi;
	size_t demand = 0;

	if (!pi || !spin_trylock(&m.lock))
		return; /* the holder re-reads the generation before leaving */
	for (;;) {
		uint32_t g = load_acquire(&pi->generation);

		if (g != load_relaxed(&rt.mcp_gen_seen) || resync)
			for (unsigned i = 0; i < m.nslots; i++)
				apply_slot(pi, i);
		store_relaxed(&rt.mcp_gen_seen, g);
		resync = false;
		if (load_acquire(&pi->generation) == g)
			break;
	}
	for (unsigned i = 0; i < rt.nr_vcores; i++)
		demand += rt.ops->nr_runnable(i);
	store_relaxed(&rt.mcp_pd->demand, (uint32_t)demand);
	spin_unlock(&m.lock);
}

static void *watcher_main(void *arg)
{
	struct procinfo *pi = rt.mcp_pi;

	(void)arg;
	while (!load_acquire(&m.stop)) {
		struct timespec ts = { 0, MCP_RESYNC_MS * 1000000L };
		uint32_t seen = load_relaxed(&rt.mcp_gen_seen);
		long r = 0;

		if (load_acquire(&pi->generation) == seen)
			r = syscall(SYS_futex, &pi->generation, FUTEX_WAIT,
				    seen, &ts, NULL, 0);
		if (load_acquire(&m.stop))
			break;
		mcp_apply(r < 0 && errno == ETIMEDOUT);
	}
	return NULL;
}

/* After the vcore threads started (vcore_grant() pins through them). */
void mcp_run(void)
{
	sigset_t all, old;
	pthread_attr_t attr;

	pthread_attr_init(&attr);
	if (CPU_COUNT(&m.cpus))
		pthread_attr_setaffinity_np(&attr, sizeof(m.cpus), &m.cpus);
	/* The watcher takes no signals meant for the process. */
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	if (pthread_create(&m.watcher, &attr, watcher_main, NULL))
		LOG_WARN("cannot start the MCP watcher; grants are applied by polling vcores only");
	else
		m.watcher_on = true;
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	pthread_attr_destroy(&attr);
	mcp_apply(true);
}

void mcp_stop_watcher(void)
{
	if (!rt.mcp_pi)
		return;
	store_release(&m.stop, 1);
	if (m.watcher_on) {
		/* Our own mapping is read-only, but a futex wake needs no
		 * write access; the timeout bounds the wait anyway. */
		syscall(SYS_futex, &rt.mcp_pi->generation, FUTEX_WAKE, 1, NULL,
			NULL, 0);
		pthread_join(m.watcher, NULL);
		m.watcher_on = false;
	}
}

void mcp_stop(void)
{
	if (!rt.mcp_pi)
		return;
	mcp_stop_watcher();
	rt.mcp_pi = NULL;
	rt.mcp_pd = NULL;
	munmap(m.map, PROCINFO_MAP_SIZE);
	m.map = NULL;
	if (m.sock >= 0)
		close(m.sock); /* deregisters: atolld takes the cores back */
	m.sock = -1;
}

void mcp_publish_slow(struct vcore *vc, uint32_t state)
{
	struct procdata_vcore *p = &rt.mcp_pd->vc[vc->id];

	uint64_t now = now_ns();

	if (state == PROCDATA_VC_RUNNING)
		store_relaxed(&p->running_since, now);
	store_relaxed(&p->since, now);
	store_release(&p->state, state);
}

void mcp_vcore_started(struct vcore *vc)
{
	if (rt.mcp_pd && vc->id < PROCINFO_MAX_VCORES)
		store_release(&rt.mcp_pd->vc[vc->id].tid, (int32_t)gettid());
}
