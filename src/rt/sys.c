/* sys.c - asynchronous system calls on a per-vcore io_uring.
 *
 * Design note. A uthread's call builds a struct syscall on its own stack
 * and blocks; the post-switch callback (on the same vcore) turns it into an
 * SQE on that vcore's ring, so the request cannot complete, and wake the
 * uthread, before the uthread is off its stack. Submission is batched: the
 * vcore flushes when it has nothing to run, before parking, when SYS_BATCH
 * requests are waiting, or after SYS_FLUSH_SWITCHES switches with any
 * waiting, which bounds the delay a busy vcore adds. Completions are reaped
 * by the ring's vcore between switches and in its loop; done() runs there.
 *
 * Each ring also carries a read on the vcore's eventfd, so a parked vcore
 * (blocked in io_uring_enter) wakes for a completion, a timer (the wait's
 * timeout) or another thread's kick alike.
 *
 * Without io_uring (ring setup refused), requests run as plain blocking
 * calls on the offload pool and parking waits in poll() on the eventfd.
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
#define SC_OFFLOADED 1u         /* flags_: runs on the offload pool */

static int ring_refused;        /* io_uring unavailable in this process */

int sys_uses_io_uring(void)
{
	struct vcore *vc = vcore_self();

	return vc ? vc->ring_ok : !load_relaxed(&ring_refused);
}

int sys_vcore_init(struct vcore *vc)
{
	int err;

	vc->wake_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (vc->wake_fd < 0)
		return -errno;
	err = io_uring_queue_init(rt.ring_entries, &vc->ring, 0);
	if (err) {
		if (!xchg_acq_rel(&ring_refused, 1))
			LOG_WARN("io_uring is unavailable (%s); system calls "
				 "run on offload threads instead",
				 strerror(-err));
		vc->ring_ok = false;
		return 0;
	}
	vc->ring_ok = true;
	return 0;
}

void sys_vcore_fini(struct vcore *vc)
{
	if (vc->ring_ok)
		io_uring_queue_exit(&vc->ring);
	vc->ring_ok = false;
	if (vc->wake_fd >= 0)
		close(vc->wake_fd);
	vc->wake_fd = -1;
}

void sys_flush(struct vcore *vc)
{
	int r;

	if (!vc->sq_unsubmitted)
		return;
	vc->flush_mark = vc->stats.switches;
	r = io_uring_submit(&vc->ring);
	if (r >= 0)
		vc->sq_unsubmitted = 0;
	/* -EAGAIN/-EBUSY: the kernel is short of resources or the CQ is
	 * full; the next reap makes room and the next flush retries. */
}

static void sys_complete(struct syscall *sc, int64_t res)
{
	sc->result = res;
	sc->done(sc);
}

unsigned sys_reap(struct vcore *vc)
{
	struct io_uring_cqe *cqe;
	unsigned n = 0;

	if (!vc->ring_ok)
		return 0;
	while (io_uring_peek_cqe(&vc->ring, &cqe) == 0) {
		uint64_t tag = cqe->user_data;
		int64_t res = cqe->res;

		/* Consume before calling out: done() may queue new SQEs. */
		io_uring_cqe_seen(&vc->ring, cqe);
		n++;
		if (tag == SYS_WAKE_TAG) {
			vc->wake_armed = false;
			continue;
		}
		vc->inflight--;
		sys_complete((struct syscall *)(uintptr_t)tag, res);
	}
	return n;
}

static struct io_uring_sqe *sqe_get(struct vcore *vc)
{
	struct io_uring_sqe *sqe = io_uring_get_sqe(&vc->ring);

	if (!sqe) {
		/* SQ full: push what is queued to the kernel and retry. */
		vc->sq_unsubmitted = 1;
		sys_flush(vc);
		sqe = io_uring_get_sqe(&vc->ring);
	}
	if (sqe)
		vc->sq_unsubmitted++;
	return sqe;
}

void sys_park(struct vcore *vc, uint64_t timeout_ns)
{
	struct __kernel_timespec ts = {
		.tv_sec = (long long)(timeout_ns / NSEC_PER_SEC),
		.tv_nsec = (long long)(timeout_ns % NSEC_PER_SEC),
	};
	struct io_uring_cqe *cqe;

	if (!vc->ring_ok) {
		struct pollfd p = { .fd = vc->wake_fd, .events = POLLIN };
		uint64_t v;
		int ms = timeout_ns == UINT64_MAX ? -1
			: (int)((timeout_ns + NSEC_PER_MSEC - 1) / NSEC_PER_MSEC);

		if (poll(&p, 1, ms) > 0 && read(vc->wake_fd, &v, sizeof(v)) < 0)
			return;
		return;
	}
	if (!vc->wake_armed) {
		struct io_uring_sqe *sqe = sqe_get(vc);

		if (sqe) {
			io_uring_prep_read(sqe, vc->wake_fd, &vc->wake_buf,
					   sizeof(vc->wake_buf), 0);
			io_uring_sqe_set_data64(sqe, SYS_WAKE_TAG);
			vc->wake_armed = true;
		}
	}
	io_uring_submit_and_wait_timeout(&vc->ring, &cqe, 1,
					 timeout_ns == UINT64_MAX ? NULL : &ts,
					 NULL);
	vc->sq_unsubmitted = 0;
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
		r = (int64_t)sc->arg[2] < 0 ? readv(sc->fd, p, (int)n)
			: preadv(sc->fd, p, (int)n, (off_t)sc->arg[2]);
		break;
	case SYS_OP_WRITEV:
		r = (int64_t)sc->arg[2] < 0 ? writev(sc->fd, p, (int)n)
			: pwritev(sc->fd, p, (int)n, (off_t)sc->arg[2]);
		break;
	case SYS_OP_OPENAT: r = openat(sc->fd, p, (int)n, (mode_t)sc->arg[2]); break;
	case SYS_OP_CLOSE: r = close(sc->fd); break;
	case SYS_OP_FSYNC: r = n ? fdatasync(sc->fd) : fsync(sc->fd); break;
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

		r = poll(&pfd, 1, -1);
		if (r > 0)
			r = pfd.revents;
		break;
	}
	case SYS_OP_TIMEOUT: {
		struct timespec ts = { (time_t)(sc->arg[0] / NSEC_PER_SEC),
				       (long)(sc->arg[0] % NSEC_PER_SEC) };

		r = nanosleep(&ts, NULL);
		break;
	}
	default:
		return -EINVAL;
	}
	return r < 0 ? -errno : r;
}

/* ---- io_uring submission ------------------------------------------------ */

static void sqe_prep(struct io_uring_sqe *sqe, struct syscall *sc)
{
	void *p = (void *)(uintptr_t)sc->arg[0];
	unsigned n = (unsigned)sc->arg[1];

	switch (sc->op) {
	case SYS_OP_READ: io_uring_prep_read(sqe, sc->fd, p, n, (uint64_t)-1); break;
	case SYS_OP_WRITE: io_uring_prep_write(sqe, sc->fd, p, n, (uint64_t)-1); break;
	case SYS_OP_PREAD: io_uring_prep_read(sqe, sc->fd, p, n, sc->arg[2]); break;
	case SYS_OP_PWRITE: io_uring_prep_write(sqe, sc->fd, p, n, sc->arg[2]); break;
	case SYS_OP_READV: io_uring_prep_readv(sqe, sc->fd, p, n, sc->arg[2]); break;
	case SYS_OP_WRITEV: io_uring_prep_writev(sqe, sc->fd, p, n, sc->arg[2]); break;
	case SYS_OP_OPENAT:
		io_uring_prep_openat(sqe, sc->fd, p, (int)n, (mode_t)sc->arg[2]);
		break;
	case SYS_OP_CLOSE: io_uring_prep_close(sqe, sc->fd); break;
	case SYS_OP_FSYNC: io_uring_prep_fsync(sqe, sc->fd, n); break;
	case SYS_OP_ACCEPT:
		io_uring_prep_accept(sqe, sc->fd, p,
				     (socklen_t *)(uintptr_t)sc->arg[1],
				     (int)sc->arg[2]);
		break;
	case SYS_OP_CONNECT:
		io_uring_prep_connect(sqe, sc->fd, p, (socklen_t)n);
		break;
	case SYS_OP_RECV: io_uring_prep_recv(sqe, sc->fd, p, n, (int)sc->arg[2]); break;
	case SYS_OP_SEND: io_uring_prep_send(sqe, sc->fd, p, n, (int)sc->arg[2]); break;
	case SYS_OP_RECVMSG: io_uring_prep_recvmsg(sqe, sc->fd, p, n); break;
	case SYS_OP_SENDMSG: io_uring_prep_sendmsg(sqe, sc->fd, p, n); break;
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

static long offload_sync(void *arg)
{
	return (long)sys_exec_sync(arg);
}

int sys_submit(struct syscall *sc)
{
	struct vcore *vc = vcore_self();
	struct io_uring_sqe *sqe;

	if ((unsigned)sc->op >= SYS_OP_COUNT || !sc->done)
		return -EINVAL;
	if (!vc)
		return -EPERM;
	if (!vc->ring_ok || !(sqe = sqe_get(vc))) {
		sc->flags_ |= SC_OFFLOADED;
		return offload_submit(offload_sync, sc, sc);
	}
	sqe_prep(sqe, sc);
	vc->inflight++;
	if (vc->sq_unsubmitted >= SYS_BATCH)
		sys_flush(vc);
	return 0;
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
	err = sys_submit(sc);
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
