/* sys.c - asynchronous system calls on a per-vcore io_uring.
 *
 * Design note. A uthread's call builds a struct syscall on its own stack
 * and blocks; the post-switch callback (on the same vcore) turns it into an
 * SQE on that vcore's ring, so the request cannot complete, and wake the
 * uthread, before the uthread is off its stack. Submission is batched: the
 * vcore flushes when it has nothing to run, before parking, when SYS_BATCH
 * requests are waiting, after SYS_FLUSH_SWITCHES switches with any
 * waiting, or when its run queue is empty (sys_maybe_flush), which bounds
 * the delay a busy vcore adds and lets a uthread that polls for a raw
 * completion with uthread_yield() see it. Completions are reaped by the
 * ring's vcore between switches, in its loop and after each park; done()
 * runs there.
 *
 * Each ring also carries a read on the vcore's eventfd, so a parked vcore
 * (blocked in io_uring_enter) wakes for a completion, a timer (the wait's
 * timeout) or another thread's kick alike. The read's completion is reaped
 * after every park, so the read is re-armed before the next one (a CQE
 * left in the ring would make every later park return at once).
 *
 * What the ring cannot take (io_uring refused, reads and writes at the
 * current file position on kernels without IORING_FEAT_RW_CUR_POS, a full
 * SQ that will not drain) runs as a plain blocking call on the offload
 * pool. A uthread's call is then woken by the worker directly; a raw
 * request's done() must run on its vcore, so the worker pushes it on the
 * vcore's offload_done stack and kicks the vcore, which completes it in
 * sys_reap(). Without io_uring, parking waits in poll() on the eventfd.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include <atoll/log.h>
#include <atoll/sys.h>

#include "internal.h"

#define SYS_BATCH 16u
#define SYS_WAKE_TAG 1ull       /* user_data of the eventfd read */
/* The kernel caps one read or write at MAX_RW_COUNT (INT_MAX rounded down
 * to a page): a longer request is a short transfer anyway, and a length
 * passed on to the SQE's 32-bit field must not wrap (4 GiB would read as 0,
 * which looks like end of file). */
#define SYS_MAX_RW 0x7ffff000u
/* How long a park may sleep when its wake-up read could not be armed (SQ
 * full): kicks are then noticed by polling at this period. */
#define SYS_PARK_UNARMED_NS (1000ull * 1000ull)

/* flags_ of a struct syscall */
#define SC_OFFLOADED 1u         /* runs on the offload pool */
#define SC_DIRECT 2u            /* offloaded; done() may run on the worker */
#define SC_VCORE_SHIFT 16       /* raw offloaded: the submitting vcore's id */

/* A raw request on the offload pool keeps its owner's done() in ts_[0]
 * and links into its vcore's offload_done stack through ts_[1]. */
#define SC_SAVED_DONE 0
#define SC_LINK 1

static int ring_refused;        /* io_uring unavailable in this process */
/* Whether rings take offset -1 as "the current position"; written before
 * the vcore threads start (sys_vcore_init runs in rt_main). */
static bool ring_cur_pos;

int sys_uses_io_uring(void)
{
	struct vcore *vc = vcore_self();

	return vc ? vc->ring_ok : !load_relaxed(&ring_refused);
}

int sys_vcore_init(struct vcore *vc)
{
	unsigned cq_entries = rt.ring_entries * 8 > 4096
		? rt.ring_entries * 8 : 4096;
	struct io_uring_params p;
	int err;

	vc->offload_done = NULL;
	/* A blocking eventfd: on kernels whose eventfd lacks FMODE_NOWAIT,
	 * io_uring completes a read of an O_NONBLOCK one at once with
	 * -EAGAIN instead of waiting, and a park would never sleep. Only the
	 * owner reads it, after the ring or poll() said it is readable. */
	vc->wake_fd = eventfd(0, EFD_CLOEXEC);
	if (vc->wake_fd < 0)
		return -errno;
	/* A CQ deeper than twice the SQ: one entry per uthread blocked on
	 * this vcore, and a connection server has many. The kernel keeps
	 * what overflows (IORING_FEAT_NODROP), at a cost. */
	memset(&p, 0, sizeof(p));
	p.flags = IORING_SETUP_CQSIZE;
	p.cq_entries = cq_entries;
	/* Cooperative task work: a completion does not interrupt the running
	 * vcore with an IPI; the kernel flags IORING_SQ_TASKRUN instead and
	 * the next peek (liburing enters when the flag is up) or park runs it.
	 * A vcore polls its CQ between switches anyway, so the interrupt only
	 * cost time: it cut echo p99 by a factor of five at 100k req/s. */
	p.flags |= IORING_SETUP_COOP_TASKRUN | IORING_SETUP_TASKRUN_FLAG;
	err = io_uring_queue_init_params(rt.ring_entries, &vc->ring, &p);
	if (err == -EINVAL) {   /* kernel older than 5.19 */
		p.flags &= ~(IORING_SETUP_COOP_TASKRUN |
			     IORING_SETUP_TASKRUN_FLAG);
		err = io_uring_queue_init_params(rt.ring_entries, &vc->ring,
						 &p);
	}
	if (err == -EINVAL) {
		memset(&p, 0, sizeof(p));
		err = io_uring_queue_init_params(rt.ring_entries, &vc->ring, &p);
	}
	if (err) {
		if (!xchg_acq_rel(&ring_refused, 1))
			LOG_WARN("io_uring is unavailable (%s); system calls "
				 "run on offload threads instead",
				 strerror(-err));
		vc->ring_ok = false;
		return 0;
	}
	ring_cur_pos = p.features & IORING_FEAT_RW_CUR_POS;
	vc->ring_ok = true;
	return 0;
}

void sys_vcore_fini(struct vcore *vc)
{
	if (vc->ring_ok)
		io_uring_queue_exit(&vc->ring);
	vc->ring_ok = false;
	vc->sq_unsubmitted = 0;
	vc->inflight = 0;
	vc->wake_armed = false;
	/* Raw requests the pool finished after the last reap belong to
	 * abandoned callers: dropped, as in-flight ring requests are. */
	store_relaxed(&vc->offload_done, NULL);
	if (vc->wake_fd >= 0)
		close(vc->wake_fd);
	vc->wake_fd = -1;
}

/* Hand the SQ to the kernel. On failure (-EAGAIN/-EBUSY: the kernel is
 * short of memory or holds overflowed completions) the entries stay
 * queued; the next reap makes room and the next flush retries. */
static void ring_submit(struct vcore *vc)
{
	vc->flush_mark = vc->stats.switches;
	io_uring_submit(&vc->ring);
	vc->sq_unsubmitted = io_uring_sq_ready(&vc->ring);
}

void sys_flush(struct vcore *vc)
{
	if (vc->sq_unsubmitted)
		ring_submit(vc);
}

static void sys_complete(struct syscall *sc, int64_t res)
{
	sc->result = res;
	sc->done(sc);
}

/* Complete the raw requests the offload pool finished for vc, oldest
 * first. Owner only. */
static unsigned reap_offloaded(struct vcore *vc)
{
	/* Acquire: pairs with the release CAS in offload_raw_done; the
	 * results the workers stored are visible. */
	struct syscall *sc = xchg_acquire(&vc->offload_done, NULL);
	struct syscall *fifo = NULL;
	unsigned n = 0;

	while (sc) {    /* the stack is newest first: reverse it */
		struct syscall *next = (void *)(uintptr_t)sc->ts_[SC_LINK];

		sc->ts_[SC_LINK] = (uint64_t)(uintptr_t)fifo;
		fifo = sc;
		sc = next;
	}
	while (fifo) {
		sc = fifo;
		fifo = (void *)(uintptr_t)sc->ts_[SC_LINK];
		sc->done = (void (*)(struct syscall *))(uintptr_t)
			sc->ts_[SC_SAVED_DONE];
		sc->flags_ = 0;
		vc->inflight--;
		n++;
		sc->done(sc);
	}
	return n;
}

unsigned sys_reap(struct vcore *vc)
{
	struct io_uring_cqe *cqe;
	unsigned n = 0;

	if (load_relaxed(&vc->offload_done))
		n += reap_offloaded(vc);
	if (!vc->ring_ok)
		return n;
	while (io_uring_peek_cqe(&vc->ring, &cqe) == 0) {
		uint64_t tag = cqe->user_data;
		int64_t res = cqe->res;
		struct syscall *sc;

		/* Consume before calling out: done() may queue new SQEs. */
		io_uring_cqe_seen(&vc->ring, cqe);
		n++;
		if (tag == SYS_WAKE_TAG) {
			vc->wake_armed = false;
			continue;
		}
		vc->inflight--;
		sc = (struct syscall *)(uintptr_t)tag;
		/* An expired timeout is the success of SYS_OP_TIMEOUT. */
		if (sc->op == SYS_OP_TIMEOUT && res == -ETIME)
			res = 0;
		sys_complete(sc, res);
	}
	return n;
}

static struct io_uring_sqe *sqe_get(struct vcore *vc)
{
	struct io_uring_sqe *sqe = io_uring_get_sqe(&vc->ring);

	if (!sqe) {
		/* SQ full: push what is queued to the kernel and retry. */
		ring_submit(vc);
		sqe = io_uring_get_sqe(&vc->ring);
	}
	if (sqe)
		vc->sq_unsubmitted++;
	return sqe;
}

void sys_park(struct vcore *vc, uint64_t timeout_ns)
{
	struct __kernel_timespec ts;
	struct io_uring_cqe *cqe;

	/* vcore_park() has published parked = 1 and issued its full fence:
	 * a worker that pushed a raw completion without seeing parked did
	 * so before the fence, and we see its push here. */
	if (load_relaxed(&vc->offload_done)) {
		sys_reap(vc);
		return;
	}
	if (!vc->ring_ok) {
		struct pollfd p = { .fd = vc->wake_fd, .events = POLLIN };
		uint64_t v;
		ssize_t r;
		int ms = timeout_ns == UINT64_MAX ? -1
			: timeout_ns >= (uint64_t)INT32_MAX * NSEC_PER_MSEC
			? INT32_MAX
			: (int)((timeout_ns + NSEC_PER_MSEC - 1) / NSEC_PER_MSEC);

		if (poll(&p, 1, ms) > 0 && (p.revents & POLLIN)) {
			r = read(vc->wake_fd, &v, sizeof(v));
			(void)r; /* consumed the kicks; nothing else to do */
		}
		sys_reap(vc);
		return;
	}
	if (!vc->wake_armed) {
		struct io_uring_sqe *sqe = sqe_get(vc);

		if (sqe) {
			io_uring_prep_read(sqe, vc->wake_fd, &vc->wake_buf,
					   sizeof(vc->wake_buf), 0);
			io_uring_sqe_set_data64(sqe, SYS_WAKE_TAG);
			vc->wake_armed = true;
		} else if (timeout_ns > SYS_PARK_UNARMED_NS) {
			timeout_ns = SYS_PARK_UNARMED_NS;
		}
	}
	ts.tv_sec = (long long)(timeout_ns / NSEC_PER_SEC);
	ts.tv_nsec = (long long)(timeout_ns % NSEC_PER_SEC);
	vc->flush_mark = vc->stats.switches;
	io_uring_submit_and_wait_timeout(&vc->ring, &cqe, 1,
					 timeout_ns == UINT64_MAX ? NULL : &ts,
					 NULL);
	vc->sq_unsubmitted = io_uring_sq_ready(&vc->ring);
	/* Consume what woke us, the eventfd read included, so it is
	 * re-armed before the next park (and an unreaped CQE cannot make
	 * parks return at once). */
	sys_reap(vc);
}

/* ---- blocking calls on any thread (fallback and outside the runtime) --- */

static int64_t sys_exec_sync(struct syscall *sc)
{
	void *p = (void *)(uintptr_t)sc->arg[0];
	size_t n = (size_t)sc->arg[1];
	long r;

	switch (sc->op) {
	case SYS_OP_READ: r = read(sc->fd, p, n); break;
	case SYS_OP_WRITE: r = write(sc->fd, p, n); break;
	case SYS_OP_PREAD: r = pread(sc->fd, p, n, (off_t)sc->arg[2]); break;
	case SYS_OP_PWRITE: r = pwrite(sc->fd, p, n, (off_t)sc->arg[2]); break;
	case SYS_OP_READV:
		r = (int64_t)sc->arg[2] == -1 ? readv(sc->fd, p, (int)n)
			: preadv(sc->fd, p, (int)n, (off_t)sc->arg[2]);
		break;
	case SYS_OP_WRITEV:
		r = (int64_t)sc->arg[2] == -1 ? writev(sc->fd, p, (int)n)
			: pwritev(sc->fd, p, (int)n, (off_t)sc->arg[2]);
		break;
	case SYS_OP_OPENAT:
		r = openat(sc->fd, p, (int)n, (mode_t)sc->arg[2]);
		break;
	case SYS_OP_CLOSE: r = close(sc->fd); break;
	case SYS_OP_FSYNC:
		r = sc->arg[0] & IORING_FSYNC_DATASYNC ? fdatasync(sc->fd)
						      : fsync(sc->fd);
		break;
	case SYS_OP_ACCEPT:
		r = accept4(sc->fd, p, (socklen_t *)(uintptr_t)sc->arg[1],
			    (int)sc->arg[2]);
		break;
	case SYS_OP_CONNECT: r = connect(sc->fd, p, (socklen_t)n); break;
	case SYS_OP_RECV: r = recv(sc->fd, p, n, (int)sc->arg[2]); break;
	case SYS_OP_SEND: r = send(sc->fd, p, n, (int)sc->arg[2]); break;
	case SYS_OP_RECVMSG: r = recvmsg(sc->fd, p, (int)n); break;
	case SYS_OP_SENDMSG: r = sendmsg(sc->fd, p, (int)n); break;
	case SYS_OP_POLL: {
		struct pollfd pfd = { .fd = sc->fd, .events = (short)sc->arg[0] };

		/* poll() ignores a negative descriptor and would wait
		 * forever; the ring answers -EBADF, and so do we. */
		if (sc->fd < 0)
			return -EBADF;
		r = poll(&pfd, 1, -1);
		if (r > 0)
			r = pfd.revents;
		/* As io_uring's poll answers a bad descriptor. */
		if (r > 0 && (r & POLLNVAL))
			return -EBADF;
		break;
	}
	case SYS_OP_TIMEOUT: {
		struct timespec ts = { (time_t)(sc->arg[0] / NSEC_PER_SEC),
				       (long)(sc->arg[0] % NSEC_PER_SEC) };
		int e;

		/* The whole interval, as a ring timeout: resume after a
		 * signal handler with what is left. */
		while ((e = clock_nanosleep(CLOCK_MONOTONIC, 0, &ts, &ts)) ==
		       EINTR)
			;
		return -e;
	}
	default:
		return -EINVAL;
	}
	return r < 0 ? -errno : r;
}

/* ---- io_uring submission ------------------------------------------------ */

static unsigned rw_len(uint64_t len)
{
	return len > SYS_MAX_RW ? SYS_MAX_RW : (unsigned)len;
}

static void sqe_prep(struct io_uring_sqe *sqe, struct syscall *sc)
{
	void *p = (void *)(uintptr_t)sc->arg[0];
	unsigned n = rw_len(sc->arg[1]);

	switch (sc->op) {
	case SYS_OP_READ: io_uring_prep_read(sqe, sc->fd, p, n, (uint64_t)-1); break;
	case SYS_OP_WRITE: io_uring_prep_write(sqe, sc->fd, p, n, (uint64_t)-1); break;
	case SYS_OP_PREAD: io_uring_prep_read(sqe, sc->fd, p, n, sc->arg[2]); break;
	case SYS_OP_PWRITE: io_uring_prep_write(sqe, sc->fd, p, n, sc->arg[2]); break;
	case SYS_OP_READV:
		io_uring_prep_readv(sqe, sc->fd, p, (unsigned)sc->arg[1],
				    sc->arg[2]);
		break;
	case SYS_OP_WRITEV:
		io_uring_prep_writev(sqe, sc->fd, p, (unsigned)sc->arg[1],
				     sc->arg[2]);
		break;
	case SYS_OP_OPENAT:
		io_uring_prep_openat(sqe, sc->fd, p, (int)sc->arg[1],
				     (mode_t)sc->arg[2]);
		break;
	case SYS_OP_CLOSE: io_uring_prep_close(sqe, sc->fd); break;
	case SYS_OP_FSYNC:
		io_uring_prep_fsync(sqe, sc->fd,
				    (unsigned)sc->arg[0] & IORING_FSYNC_DATASYNC);
		break;
	case SYS_OP_ACCEPT:
		io_uring_prep_accept(sqe, sc->fd, p,
				     (socklen_t *)(uintptr_t)sc->arg[1],
				     (int)sc->arg[2]);
		break;
	case SYS_OP_CONNECT:
		io_uring_prep_connect(sqe, sc->fd, p, (socklen_t)sc->arg[1]);
		break;
	case SYS_OP_RECV: io_uring_prep_recv(sqe, sc->fd, p, n, (int)sc->arg[2]); break;
	case SYS_OP_SEND: io_uring_prep_send(sqe, sc->fd, p, n, (int)sc->arg[2]); break;
	case SYS_OP_RECVMSG:
		io_uring_prep_recvmsg(sqe, sc->fd, p, (unsigned)sc->arg[1]);
		break;
	case SYS_OP_SENDMSG:
		io_uring_prep_sendmsg(sqe, sc->fd, p, (unsigned)sc->arg[1]);
		break;
	case SYS_OP_POLL:
		io_uring_prep_poll_add(sqe, sc->fd, (unsigned)sc->arg[0]);
		break;
	case SYS_OP_TIMEOUT:
		sc->ts_[0] = sc->arg[0] / NSEC_PER_SEC;
		sc->ts_[1] = sc->arg[0] % NSEC_PER_SEC;
		io_uring_prep_timeout(sqe, (struct __kernel_timespec *)sc->ts_,
				      0, 0);
		break;
	default:
		break; /* rejected by sys_submit */
	}
	io_uring_sqe_set_data64(sqe, (uint64_t)(uintptr_t)sc);
}

/* Whether the ring cannot make this call: a read or write at the current
 * position (offset -1) needs IORING_FEAT_RW_CUR_POS (Linux 5.6); before
 * it, -1 is taken as an offset. */
static bool ring_cannot(const struct syscall *sc)
{
	switch (sc->op) {
	case SYS_OP_READ:
	case SYS_OP_WRITE:
		return !ring_cur_pos;
	case SYS_OP_READV:
	case SYS_OP_WRITEV:
		return !ring_cur_pos && (int64_t)sc->arg[2] == -1;
	default:
		return false;
	}
}

static long offload_sync(void *arg)
{
	return (long)sys_exec_sync(arg);
}

/* On the offload worker: hand a finished raw request back to the vcore
 * that submitted it, whose sys_reap() runs its done(). */
static void offload_raw_done(struct syscall *sc)
{
	struct vcore *vc = vcore_get(sc->flags_ >> SC_VCORE_SHIFT);
	struct syscall *head = load_relaxed(&vc->offload_done);

	do
		sc->ts_[SC_LINK] = (uint64_t)(uintptr_t)head;
	/* Release: sc->result and the worker's writes, for reap_offloaded's
	 * acquire. */
	while (!cas_release(&vc->offload_done, &head, sc));
	/* Its full fence pairs with vcore_park's: see sys_park. */
	vcore_kick(vc);
}

static int submit_offloaded(struct vcore *vc, struct syscall *sc, bool direct)
{
	int err;

	if (direct) {
		sc->flags_ = SC_OFFLOADED | SC_DIRECT;
		return offload_submit(offload_sync, sc, sc);
	}
	sc->flags_ = SC_OFFLOADED | (vc->id << SC_VCORE_SHIFT);
	sc->ts_[SC_SAVED_DONE] = (uint64_t)(uintptr_t)sc->done;
	sc->done = offload_raw_done;
	err = offload_submit(offload_sync, sc, sc);
	if (err) {
		sc->done = (void (*)(struct syscall *))(uintptr_t)
			sc->ts_[SC_SAVED_DONE];
		sc->flags_ = 0;
		return err;
	}
	/* Owner only, like the completion that undoes it (sys_reap). */
	vc->inflight++;
	return 0;
}

/* Queue sc on vc. direct: done() may run on an offload worker (it only
 * makes a uthread runnable, which any thread may do). */
static int submit_on(struct vcore *vc, struct syscall *sc, bool direct)
{
	struct io_uring_sqe *sqe;

	if ((unsigned)sc->op >= SYS_OP_COUNT || !sc->done)
		return -EINVAL;
	/* A negative offset would read as "the current position". */
	if ((sc->op == SYS_OP_PREAD || sc->op == SYS_OP_PWRITE) &&
	    (int64_t)sc->arg[2] < 0)
		return -EINVAL;
	sc->flags_ = 0;
	if (!vc->ring_ok || ring_cannot(sc) || !(sqe = sqe_get(vc)))
		return submit_offloaded(vc, sc, direct);
	sqe_prep(sqe, sc);
	vc->inflight++;
	if (vc->sq_unsubmitted >= SYS_BATCH)
		sys_flush(vc);
	return 0;
}

int sys_submit(struct syscall *sc)
{
	struct vcore *vc = vcore_self();

	if ((unsigned)sc->op >= SYS_OP_COUNT || !sc->done)
		return -EINVAL;
	if (!vc)
		return -EPERM;
	return submit_on(vc, sc, false);
}

/* ---- uthread-blocking wrappers ---------------------------------------------- */

static void sys_wake(struct syscall *sc)
{
	uth_make_runnable(sc->data);
}

static void post_submit(struct uthread *uth, void *arg)
{
	struct syscall *sc = arg;
	int err;

	if (rt.ops->thread_blockon_sysc)
		rt.ops->thread_blockon_sysc(uth, sc);
	err = submit_on(vcore_self(), sc, true);
	if (err)
		sys_complete(sc, err);
}

static int64_t sys_call(struct syscall *sc)
{
	struct uthread *self = uthread_self();

	if (!self)
		return sys_exec_sync(sc);
	sc->done = sys_wake;
	sc->data = self;
	uth_block(post_submit, sc);
	return sc->result;
}

#define SC(o, f, a0, a1, a2) \
	{ .op = (o), .fd = (f), .arg = { (uint64_t)(a0), (uint64_t)(a1), (uint64_t)(a2) } }

ssize_t sys_read(int fd, void *buf, size_t len)
{
	struct syscall sc = SC(SYS_OP_READ, fd, (uintptr_t)buf, len, 0);

	return sys_call(&sc);
}

ssize_t sys_write(int fd, const void *buf, size_t len)
{
	struct syscall sc = SC(SYS_OP_WRITE, fd, (uintptr_t)buf, len, 0);

	return sys_call(&sc);
}

ssize_t sys_pread(int fd, void *buf, size_t len, off_t off)
{
	struct syscall sc = SC(SYS_OP_PREAD, fd, (uintptr_t)buf, len, off);

	return sys_call(&sc);
}

ssize_t sys_pwrite(int fd, const void *buf, size_t len, off_t off)
{
	struct syscall sc = SC(SYS_OP_PWRITE, fd, (uintptr_t)buf, len, off);

	return sys_call(&sc);
}

ssize_t sys_readv(int fd, const struct iovec *iov, int iovcnt)
{
	struct syscall sc = SC(SYS_OP_READV, fd, (uintptr_t)iov, iovcnt, -1);

	return sys_call(&sc);
}

ssize_t sys_writev(int fd, const struct iovec *iov, int iovcnt)
{
	struct syscall sc = SC(SYS_OP_WRITEV, fd, (uintptr_t)iov, iovcnt, -1);

	return sys_call(&sc);
}

int sys_openat(int dirfd, const char *path, int flags, mode_t mode)
{
	struct syscall sc = SC(SYS_OP_OPENAT, dirfd, (uintptr_t)path, flags, mode);

	return (int)sys_call(&sc);
}

int sys_close(int fd)
{
	struct syscall sc = SC(SYS_OP_CLOSE, fd, 0, 0, 0);

	return (int)sys_call(&sc);
}

int sys_fsync(int fd)
{
	struct syscall sc = SC(SYS_OP_FSYNC, fd, 0, 0, 0);

	return (int)sys_call(&sc);
}

int sys_accept(int fd, struct sockaddr *addr, socklen_t *addrlen, int flags)
{
	struct syscall sc = SC(SYS_OP_ACCEPT, fd, (uintptr_t)addr,
			       (uintptr_t)addrlen, flags);

	return (int)sys_call(&sc);
}

int sys_connect(int fd, const struct sockaddr *addr, socklen_t addrlen)
{
	struct syscall sc = SC(SYS_OP_CONNECT, fd, (uintptr_t)addr, addrlen, 0);

	return (int)sys_call(&sc);
}

ssize_t sys_recv(int fd, void *buf, size_t len, int flags)
{
	struct syscall sc = SC(SYS_OP_RECV, fd, (uintptr_t)buf, len, flags);

	return sys_call(&sc);
}

ssize_t sys_send(int fd, const void *buf, size_t len, int flags)
{
	struct syscall sc = SC(SYS_OP_SEND, fd, (uintptr_t)buf, len, flags);

	return sys_call(&sc);
}

ssize_t sys_recvmsg(int fd, struct msghdr *msg, int flags)
{
	struct syscall sc = SC(SYS_OP_RECVMSG, fd, (uintptr_t)msg, flags, 0);

	return sys_call(&sc);
}

ssize_t sys_sendmsg(int fd, const struct msghdr *msg, int flags)
{
	struct syscall sc = SC(SYS_OP_SENDMSG, fd, (uintptr_t)msg, flags, 0);

	return sys_call(&sc);
}

int sys_poll(int fd, short events)
{
	struct syscall sc = SC(SYS_OP_POLL, fd, (uint16_t)events, 0, 0);

	return (int)sys_call(&sc);
}

int sys_timeout(uint64_t ns)
{
	struct syscall sc = SC(SYS_OP_TIMEOUT, -1, ns, 0, 0);
	int64_t r = sys_call(&sc);

	return r == -ETIME ? 0 : (int)r;
}
