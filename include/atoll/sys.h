/* sys.h - system calls that never block a vcore.
 *
 * Each vcore has its own io_uring. A uthread calling sys_read() & co. queues
 * the request on its vcore's ring and blocks; the vcore runs other uthreads
 * and submits queued requests in batches (when it runs out of work, before
 * parking, or after a few switches); completions are reaped between
 * switches and while idle, and make the caller runnable again. A parked
 * vcore sleeps in io_uring_enter, so a completion wakes it directly.
 *
 * Raw interface: event-driven code fills a struct syscall and calls
 * sys_submit(); its done() callback runs later, in vcore context on the
 * submitting vcore, with sc->result set. No uthread is needed.
 *
 * What io_uring cannot do (or everything, when io_uring is unavailable:
 * disabled by sysctl or seccomp) runs on a small pool of offload threads
 * (sys_offload()): the calling uthread blocks, its vcore does not. Called
 * from outside the runtime (a plain pthread), these functions simply make
 * the blocking system call.
 *
 * Return values: >= 0 on success (a count, a descriptor), -errno on
 * failure. errno is not set. Context: uthread context (or any thread
 * outside the runtime); sys_submit() also from vcore context.
 */
#ifndef ATOLL_SYS_H
#define ATOLL_SYS_H

#include <poll.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <sys/uio.h>

enum sys_op {
	SYS_OP_READ, SYS_OP_WRITE, SYS_OP_PREAD, SYS_OP_PWRITE,
	SYS_OP_READV, SYS_OP_WRITEV, SYS_OP_OPENAT, SYS_OP_CLOSE,
	SYS_OP_FSYNC, SYS_OP_ACCEPT, SYS_OP_CONNECT, SYS_OP_RECV,
	SYS_OP_SEND, SYS_OP_RECVMSG, SYS_OP_SENDMSG, SYS_OP_POLL,
	SYS_OP_TIMEOUT,
	SYS_OP_COUNT
};

struct syscall {
	enum sys_op op;
	int fd;
	/* Arguments by op (unused ones are ignored):
	 *  READ/WRITE/RECV/SEND: buf, len, (flags for RECV/SEND)
	 *  PREAD/PWRITE: buf, len, offset
	 *  READV/WRITEV: iov, iovcnt, offset (-1 = current position)
	 *  OPENAT: path, flags, mode (fd = dirfd)
	 *  FSYNC: flags (IORING_FSYNC_DATASYNC or 0)
	 *  ACCEPT: addr, addrlen (socklen_t *), flags
	 *  CONNECT: addr, addrlen
	 *  RECVMSG/SENDMSG: msghdr, flags
	 *  POLL: events (returns revents)
	 *  TIMEOUT: ns (returns 0 when the time passed) */
	uint64_t arg[3];
	int64_t result;                  /* filled before done() runs */
	void (*done)(struct syscall *sc);
	void *data;                      /* the caller's */
	uint32_t flags_;                 /* internal */
	uint64_t ts_[2];                 /* internal (timeout storage) */
};

/* Queue sc on the calling vcore's ring (or the offload pool). Returns 0,
 * or -EINVAL for a bad op, -EPERM outside the runtime. */
int sys_submit(struct syscall *sc);

/* Run fn(arg) on an offload thread and block the calling uthread until it
 * returns; returns fn's result. For calls io_uring cannot make (DNS, stat
 * on old kernels, blocking library code). */
long sys_offload(long (*fn)(void *arg), void *arg);

ssize_t sys_read(int fd, void *buf, size_t len);
ssize_t sys_write(int fd, const void *buf, size_t len);
ssize_t sys_pread(int fd, void *buf, size_t len, off_t off);
ssize_t sys_pwrite(int fd, const void *buf, size_t len, off_t off);
ssize_t sys_readv(int fd, const struct iovec *iov, int iovcnt);
ssize_t sys_writev(int fd, const struct iovec *iov, int iovcnt);
int sys_openat(int dirfd, const char *path, int flags, mode_t mode);
int sys_close(int fd);
int sys_fsync(int fd);
int sys_accept(int fd, struct sockaddr *addr, socklen_t *addrlen, int flags);
int sys_connect(int fd, const struct sockaddr *addr, socklen_t addrlen);
ssize_t sys_recv(int fd, void *buf, size_t len, int flags);
ssize_t sys_send(int fd, const void *buf, size_t len, int flags);
ssize_t sys_recvmsg(int fd, struct msghdr *msg, int flags);
ssize_t sys_sendmsg(int fd, const struct msghdr *msg, int flags);
/* Wait until fd has one of events; returns the revents. */
int sys_poll(int fd, short events);
/* Block the calling uthread for ns (0 on expiry). */
int sys_timeout(uint64_t ns);

/* Whether this process's vcores use io_uring (else the offload pool). */
int sys_uses_io_uring(void);

#endif /* ATOLL_SYS_H */
