/* rt_sys_ops.c - every sys_* call works and fails with -errno: file calls
 * on a temp file, socket calls over loopback TCP and a socketpair, poll,
 * timeout, the raw interface (struct syscall + done() on the submitting
 * vcore, no uthread blocked), the blocking fallback outside the runtime,
 * and many uthreads doing checked I/O at once on 4 vcores. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <poll.h>
#include <pthread.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#include <atoll/clock.h>
#include <atoll/rt.h>
#include <atoll/sys.h>
#include <atoll/uthread.h>
#include <atoll/vcore.h>

#include "harness.h"

#ifndef IORING_FSYNC_DATASYNC
#define IORING_FSYNC_DATASYNC 1u
#endif

static char tmpdir[256];

static int count_fds(void)
{
	DIR *d = opendir("/proc/self/fd");
	struct dirent *e;
	int n = 0;

	CHECK(d != NULL);
	while ((e = readdir(d)))
		if (e->d_name[0] != '.')
			n++;
	closedir(d);
	return n - 1; /* the directory's own descriptor */
}

static void read_full(int fd, void *buf, size_t n, int sock)
{
	size_t got = 0;

	while (got < n) {
		ssize_t r = sock ? sys_recv(fd, (char *)buf + got, n - got, 0)
				 : sys_read(fd, (char *)buf + got, n - got);

		CHECK(r > 0);
		got += (size_t)r;
	}
}

static void write_full(int fd, const void *buf, size_t n, int sock)
{
	size_t put = 0;

	while (put < n) {
		ssize_t r = sock ? sys_send(fd, (const char *)buf + put,
					    n - put, MSG_NOSIGNAL)
				 : sys_write(fd, (const char *)buf + put,
					     n - put);

		CHECK(r > 0);
		put += (size_t)r;
	}
}

/* ---- the blocking fallback (no runtime, or a plain pthread) ------------- */

static long times_two(void *arg)
{
	return 2 * (long)arg;
}

static void never_done(struct syscall *sc)
{
	(void)sc;
	abort();
}

static void outside_runtime(void)
{
	struct syscall sc = { .op = SYS_OP_READ, .done = never_done };
	int p[2], sv[2];
	char buf[16];
	uint64_t t0;

	CHECK(!rt_active());
	CHECK(uthread_self() == NULL);
	CHECK_OK(pipe(p));
	CHECK_EQ(sys_write(p[1], "outside", 7), 7);
	CHECK_EQ(sys_poll(p[0], POLLIN) & POLLIN, POLLIN);
	CHECK_EQ(sys_read(p[0], buf, sizeof(buf)), 7);
	CHECK(memcmp(buf, "outside", 7) == 0);
	CHECK_EQ(sys_read(-1, buf, 1), -EBADF);
	CHECK_EQ(sys_write(p[0], "x", 1), -EBADF);
	CHECK_EQ(sys_poll(-1, POLLIN), -EBADF);
	CHECK_EQ(sys_close(p[0]), 0);
	CHECK_EQ(sys_close(p[0]), -EBADF);
	CHECK_EQ(sys_close(p[1]), 0);
	CHECK_OK(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv));
	CHECK_EQ(sys_send(sv[0], "abc", 3, MSG_NOSIGNAL), 3);
	CHECK_EQ(sys_recv(sv[1], buf, sizeof(buf), 0), 3);
	CHECK_EQ(sys_recv(sv[1], buf, sizeof(buf), MSG_DONTWAIT), -EAGAIN);
	CHECK_EQ(sys_recv(-1, buf, 1, 0), -EBADF);
	close(sv[0]);
	close(sv[1]);
	t0 = now_ns();
	CHECK_EQ(sys_timeout(5 * NSEC_PER_MSEC), 0);
	CHECK(now_ns() - t0 >= 5 * NSEC_PER_MSEC);
	CHECK_EQ(sys_offload(times_two, (void *)21L), 42);
	CHECK_EQ(sys_submit(&sc), -EPERM);
	CHECK_EQ(sys_pread(0, buf, 1, -1), -EINVAL);
}

static void *outside_thread(void *arg)
{
	(void)arg;
	outside_runtime();
	return NULL;
}

static long join_thread(void *arg)
{
	return -pthread_join(*(pthread_t *)arg, NULL);
}

/* ---- files --------------------------------------------------------------- */

static void check_file(int fd, const char *model, size_t len)
{
	char buf[128];

	CHECK(len <= sizeof(buf));
	CHECK_EQ(sys_pread(fd, buf, sizeof(buf), 0), len);
	CHECK(memcmp(buf, model, len) == 0);
}

static void file_ops(void)
{
	char path[512], name[64], model[128], buf[128];
	struct iovec iov[3];
	char a[5], b[5], c[6];
	int fd, rfd, dfd;

	snprintf(name, sizeof(name), "sys-ops-%d", (int)getpid());
	snprintf(path, sizeof(path), "%s/%s", tmpdir, name);
	fd = sys_openat(AT_FDCWD, path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC,
			0600);
	CHECK_OK(fd);
	CHECK_EQ(sys_openat(AT_FDCWD, path, O_RDWR | O_CREAT | O_EXCL, 0600),
		 -EEXIST);
	CHECK_EQ(sys_openat(AT_FDCWD, "/nonexistent-atoll/x", O_RDONLY, 0),
		 -ENOENT);

	/* Writes at the current position advance it. */
	CHECK_EQ(sys_write(fd, "0123456789", 10), 10);
	CHECK_EQ(sys_write(fd, "abcdef", 6), 6);
	memcpy(model, "0123456789abcdef", 16);
	check_file(fd, model, 16);
	CHECK_EQ(lseek(fd, 0, SEEK_CUR), 16);

	CHECK_EQ(sys_pwrite(fd, "XY", 2, 4), 2);
	memcpy(model + 4, "XY", 2);
	check_file(fd, model, 16);
	CHECK_EQ(lseek(fd, 0, SEEK_CUR), 16); /* pwrite moved nothing */

	/* Reads at the current position advance it too. */
	CHECK_EQ(lseek(fd, 0, SEEK_SET), 0);
	CHECK_EQ(sys_read(fd, buf, 4), 4);
	CHECK(memcmp(buf, "0123", 4) == 0);
	CHECK_EQ(sys_read(fd, buf, 4), 4);
	CHECK(memcmp(buf, "XY67", 4) == 0);
	CHECK_EQ(lseek(fd, 0, SEEK_CUR), 8);

	/* writev at the current position (8), then readv from 0. */
	iov[0] = (struct iovec){ (char *)"AB", 2 };
	iov[1] = (struct iovec){ (char *)"CDE", 3 };
	iov[2] = (struct iovec){ (char *)"FGHIJ", 5 };
	CHECK_EQ(sys_writev(fd, iov, 3), 10);
	memcpy(model + 8, "ABCDEFGHIJ", 10);
	CHECK_EQ(lseek(fd, 0, SEEK_CUR), 18);
	check_file(fd, model, 18);
	CHECK_EQ(lseek(fd, 0, SEEK_SET), 0);
	iov[0] = (struct iovec){ a, sizeof(a) };
	iov[1] = (struct iovec){ b, sizeof(b) };
	iov[2] = (struct iovec){ c, sizeof(c) };
	CHECK_EQ(sys_readv(fd, iov, 3), 16);
	CHECK(memcmp(a, model, 5) == 0);
	CHECK(memcmp(b, model + 5, 5) == 0);
	CHECK(memcmp(c, model + 10, 6) == 0);
	CHECK_EQ(sys_readv(fd, iov, 3), 2);     /* the last 2 bytes */
	CHECK_EQ(sys_read(fd, buf, sizeof(buf)), 0); /* end of file */
	CHECK_EQ(sys_pread(fd, buf, 4, 1000), 0);
	CHECK_EQ(sys_read(fd, buf, 0), 0);

	CHECK_EQ(sys_fsync(fd), 0);

	/* Errors. */
	CHECK_EQ(sys_pread(fd, buf, 4, -5), -EINVAL);
	CHECK_EQ(sys_pwrite(fd, buf, 4, -1), -EINVAL);
	CHECK_EQ(sys_readv(fd, iov, -1), -EINVAL);
	CHECK_EQ(sys_read(-1, buf, 1), -EBADF);
	CHECK_EQ(sys_write(-1, buf, 1), -EBADF);
	CHECK_EQ(sys_pread(-1, buf, 1, 0), -EBADF);
	CHECK_EQ(sys_pwrite(-1, buf, 1, 0), -EBADF);
	CHECK_EQ(sys_readv(-1, iov, 1), -EBADF);
	CHECK_EQ(sys_writev(-1, iov, 1), -EBADF);
	CHECK_EQ(sys_fsync(-1), -EBADF);
	CHECK_EQ(sys_close(-1), -EBADF);

	/* A read-only descriptor refuses writes; a directory refuses reads.
	 * openat relative to a directory descriptor. */
	dfd = sys_openat(AT_FDCWD, tmpdir, O_RDONLY | O_DIRECTORY | O_CLOEXEC, 0);
	CHECK_OK(dfd);
	CHECK_EQ(sys_read(dfd, buf, 1), -EISDIR);
	rfd = sys_openat(dfd, name, O_RDONLY | O_CLOEXEC, 0);
	CHECK_OK(rfd);
	CHECK_EQ(sys_write(rfd, "x", 1), -EBADF);
	CHECK_EQ(sys_pwrite(rfd, "x", 1, 0), -EBADF);
	CHECK_EQ(sys_read(rfd, buf, 4), 4);
	CHECK(memcmp(buf, model, 4) == 0);
	CHECK_EQ(sys_openat(dfd, "no-such-file", O_RDONLY, 0), -ENOENT);

	CHECK_EQ(sys_close(rfd), 0);
	CHECK_EQ(sys_close(rfd), -EBADF);
	CHECK_EQ(sys_close(dfd), 0);
	CHECK_EQ(sys_close(fd), 0);
	CHECK_EQ(sys_read(fd, buf, 1), -EBADF);
	CHECK_OK(unlink(path));
}

/* ---- sockets ------------------------------------------------------------- */

struct acceptor {
	int lfd;
	int fd;
	struct sockaddr_in peer;
	socklen_t peer_len;
};

static void *accept_one(void *arg)
{
	struct acceptor *ac = arg;

	ac->peer_len = sizeof(ac->peer);
	ac->fd = sys_accept(ac->lfd, (struct sockaddr *)&ac->peer,
			    &ac->peer_len, SOCK_CLOEXEC);
	return NULL;
}

struct poller {
	int fd;
	int revents;
};

static void *poll_in(void *arg)
{
	struct poller *p = arg;

	p->revents = sys_poll(p->fd, POLLIN);
	return NULL;
}

static int tcp_listener(struct sockaddr_in *sa)
{
	socklen_t len = sizeof(*sa);
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	CHECK_OK(fd);
	memset(sa, 0, sizeof(*sa));
	sa->sin_family = AF_INET;
	sa->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	CHECK_OK(bind(fd, (struct sockaddr *)sa, sizeof(*sa)));
	CHECK_OK(listen(fd, 64));
	CHECK_OK(getsockname(fd, (struct sockaddr *)sa, &len));
	return fd;
}

static void tcp_ops(void)
{
	struct sockaddr_in sa, dead;
	struct acceptor ac = { .fd = -1 };
	struct poller pl;
	struct uthread *u;
	struct iovec iov[3];
	struct msghdr mh;
	char buf[64];
	int cfd, sfd, p[2], ufd;

	ac.lfd = tcp_listener(&sa);
	CHECK_OK(uthread_create(&u, NULL, accept_one, &ac));
	cfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	CHECK_OK(cfd);
	CHECK_EQ(sys_connect(cfd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	CHECK_OK(uthread_join(u, NULL));
	sfd = ac.fd;
	CHECK_OK(sfd);
	CHECK_EQ(ac.peer_len, sizeof(struct sockaddr_in));
	CHECK_EQ(ac.peer.sin_family, AF_INET);
	CHECK_EQ(ntohl(ac.peer.sin_addr.s_addr), INADDR_LOOPBACK);

	/* send/recv both ways. */
	CHECK_EQ(sys_send(cfd, "hello", 5, 0), 5);
	read_full(sfd, buf, 5, 1);
	CHECK(memcmp(buf, "hello", 5) == 0);
	CHECK_EQ(sys_send(sfd, "world!", 6, 0), 6);
	read_full(cfd, buf, 6, 1);
	CHECK(memcmp(buf, "world!", 6) == 0);
	CHECK_EQ(sys_recv(sfd, buf, sizeof(buf), MSG_DONTWAIT), -EAGAIN);

	/* sendmsg/recvmsg with scatter-gather. */
	iov[0] = (struct iovec){ (char *)"ab", 2 };
	iov[1] = (struct iovec){ (char *)"cdef", 4 };
	iov[2] = (struct iovec){ (char *)"ghijkl", 6 };
	memset(&mh, 0, sizeof(mh));
	mh.msg_iov = iov;
	mh.msg_iovlen = 3;
	CHECK_EQ(sys_sendmsg(cfd, &mh, 0), 12);
	{
		size_t got = 0;

		while (got < 12) {
			struct iovec riov[2];
			ssize_t r;

			riov[0] = (struct iovec){ buf + got, 4 };
			riov[1] = (struct iovec){ buf + got + 4, 8 };
			memset(&mh, 0, sizeof(mh));
			mh.msg_iov = riov;
			mh.msg_iovlen = 2;
			r = sys_recvmsg(sfd, &mh, 0);
			CHECK(r > 0);
			got += (size_t)r;
		}
		CHECK(memcmp(buf, "abcdefghijkl", 12) == 0);
	}

	/* poll: POLLOUT at once; POLLIN once the peer sends. */
	CHECK_EQ(sys_poll(cfd, POLLOUT) & POLLOUT, POLLOUT);
	pl.fd = sfd;
	pl.revents = -1;
	CHECK_OK(uthread_create(&u, NULL, poll_in, &pl));
	for (int i = 0; i < 20; i++)
		uthread_yield();
	uthread_sleep_ns(5 * NSEC_PER_MSEC);
	CHECK_EQ(pl.revents, -1); /* still waiting */
	CHECK_EQ(sys_send(cfd, "p", 1, 0), 1);
	CHECK_OK(uthread_join(u, NULL));
	CHECK(pl.revents > 0 && (pl.revents & POLLIN));
	CHECK_EQ(sys_recv(sfd, buf, 1, 0), 1);

	/* Errors. */
	CHECK_OK(pipe(p));
	CHECK_EQ(sys_accept(-1, NULL, NULL, 0), -EBADF);
	CHECK_EQ(sys_accept(p[0], NULL, NULL, 0), -ENOTSOCK);
	CHECK_EQ(sys_accept(cfd, NULL, NULL, 0), -EINVAL); /* not listening */
	CHECK_EQ(sys_recv(p[0], buf, 1, 0), -ENOTSOCK);
	CHECK_EQ(sys_send(p[1], "x", 1, 0), -ENOTSOCK);
	CHECK_EQ(sys_recv(-1, buf, 1, 0), -EBADF);
	CHECK_EQ(sys_send(-1, buf, 1, 0), -EBADF);
	CHECK_EQ(sys_poll(-1, POLLIN), -EBADF);
	memset(&mh, 0, sizeof(mh));
	CHECK_EQ(sys_sendmsg(-1, &mh, 0), -EBADF);
	CHECK_EQ(sys_recvmsg(-1, &mh, 0), -EBADF);
	ufd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	CHECK_OK(ufd);
	CHECK_EQ(sys_recv(ufd, buf, 1, 0), -ENOTCONN);
	/* A port nobody listens on any more: refused. */
	close(tcp_listener(&dead));
	CHECK_EQ(sys_connect(ufd, (struct sockaddr *)&dead, sizeof(dead)),
		 -ECONNREFUSED);
	CHECK_EQ(sys_connect(-1, (struct sockaddr *)&sa, sizeof(sa)), -EBADF);
	close(ufd);
	close(p[0]);
	close(p[1]);

	/* Half-close: end of stream; then the peer is gone: EPIPE. */
	CHECK_OK(shutdown(cfd, SHUT_WR));
	CHECK_EQ(sys_recv(sfd, buf, sizeof(buf), 0), 0);
	CHECK_EQ(sys_close(cfd), 0);
	{
		ssize_t r;
		int tries = 0;

		do {
			r = sys_send(sfd, buf, sizeof(buf), MSG_NOSIGNAL);
			if (r > 0)
				uthread_sleep_ns(NSEC_PER_MSEC);
		} while (r > 0 && ++tries < 1000);
		CHECK(r == -EPIPE || r == -ECONNRESET);
	}
	CHECK_EQ(sys_close(sfd), 0);
	CHECK_EQ(sys_close(ac.lfd), 0);
}

/* A socketpair: a descriptor passed with SCM_RIGHTS through sendmsg and
 * recvmsg (control data both ways), and datagram boundaries. */
static void unix_ops(void)
{
	union {
		struct cmsghdr hdr;
		char buf[CMSG_SPACE(sizeof(int))];
	} ctl;
	struct msghdr mh;
	struct iovec iov;
	struct cmsghdr *cm;
	char buf[32];
	int sv[2], p[2], passed;

	CHECK_OK(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv));
	CHECK_OK(pipe(p));
	memset(&ctl, 0, sizeof(ctl));
	memset(&mh, 0, sizeof(mh));
	iov = (struct iovec){ (char *)"fd", 2 };
	mh.msg_iov = &iov;
	mh.msg_iovlen = 1;
	mh.msg_control = ctl.buf;
	mh.msg_controllen = sizeof(ctl.buf);
	cm = CMSG_FIRSTHDR(&mh);
	cm->cmsg_level = SOL_SOCKET;
	cm->cmsg_type = SCM_RIGHTS;
	cm->cmsg_len = CMSG_LEN(sizeof(int));
	memcpy(CMSG_DATA(cm), &p[1], sizeof(int));
	CHECK_EQ(sys_sendmsg(sv[0], &mh, 0), 2);

	memset(&ctl, 0, sizeof(ctl));
	memset(&mh, 0, sizeof(mh));
	iov = (struct iovec){ buf, sizeof(buf) };
	mh.msg_iov = &iov;
	mh.msg_iovlen = 1;
	mh.msg_control = ctl.buf;
	mh.msg_controllen = sizeof(ctl.buf);
	CHECK_EQ(sys_recvmsg(sv[1], &mh, MSG_CMSG_CLOEXEC), 2);
	CHECK(memcmp(buf, "fd", 2) == 0);
	cm = CMSG_FIRSTHDR(&mh);
	CHECK(cm != NULL);
	CHECK_EQ(cm->cmsg_type, SCM_RIGHTS);
	memcpy(&passed, CMSG_DATA(cm), sizeof(int));
	CHECK(passed >= 0 && passed != p[1]);
	CHECK_EQ(sys_write(passed, "via", 3), 3);
	CHECK_EQ(sys_read(p[0], buf, sizeof(buf)), 3);
	CHECK(memcmp(buf, "via", 3) == 0);
	CHECK_EQ(sys_close(passed), 0);
	close(p[0]);
	close(p[1]);
	close(sv[0]);
	close(sv[1]);

	CHECK_OK(socketpair(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0, sv));
	CHECK_EQ(sys_send(sv[0], "one", 3, 0), 3);
	CHECK_EQ(sys_send(sv[0], "three", 5, 0), 5);
	CHECK_EQ(sys_recv(sv[1], buf, sizeof(buf), 0), 3);
	CHECK_EQ(sys_recv(sv[1], buf, sizeof(buf), 0), 5);
	CHECK(memcmp(buf, "three", 5) == 0);
	close(sv[0]);
	close(sv[1]);
}

/* ---- timeouts ------------------------------------------------------------ */

static void timeout_ops(void)
{
	uint64_t t0, dt;

	t0 = now_ns();
	CHECK_EQ(sys_timeout(20 * NSEC_PER_MSEC), 0);
	dt = now_ns() - t0;
	CHECK(dt >= 20 * NSEC_PER_MSEC);
	CHECK(dt < 2 * NSEC_PER_SEC);
	CHECK_EQ(sys_timeout(0), 0);
}

/* ---- the raw interface --------------------------------------------------- */

struct raw {
	struct syscall sc;
	int submit_vcore;
	int done_vcore;
	int calls;              /* atomic */
	char buf[16];
	struct raw *chain;      /* submitted from done() */
};

static void raw_done(struct syscall *sc)
{
	struct raw *r = sc->data;

	r->done_vcore = vcore_id();
	if (r->chain) {
		/* From vcore context (done()), a new request may be queued. */
		r->chain->submit_vcore = vcore_id();
		CHECK_EQ(sys_submit(&r->chain->sc), 0);
	}
	__atomic_fetch_add(&r->calls, 1, __ATOMIC_RELEASE);
}

static void raw_init(struct raw *r, enum sys_op op, int fd)
{
	memset(r, 0, sizeof(*r));
	r->sc.op = op;
	r->sc.fd = fd;
	r->sc.done = raw_done;
	r->sc.data = r;
	r->done_vcore = -1;
}

static void raw_wait(struct raw *r)
{
	/* Poll without blocking the uthread: the vcore must still flush and
	 * reap (nothing else may be runnable here). */
	uint64_t deadline = now_ns() + 10 * NSEC_PER_SEC;

	while (!__atomic_load_n(&r->calls, __ATOMIC_ACQUIRE)) {
		CHECK(now_ns() < deadline);
		uthread_yield();
	}
}

static void raw_submit(struct raw *r)
{
	r->submit_vcore = vcore_id();
	CHECK_EQ(sys_submit(&r->sc), 0);
}

static void *raw_thread(void *arg)
{
	struct raw *r = arg;

	CHECK_EQ(sys_submit(&r->sc), -EPERM);
	return NULL;
}

static void raw_ops(void)
{
	struct raw rd, to, ch, bad, fs;
	struct raw *many;
	int p[2], nmany = 200;
	pthread_t t;
	char path[512];
	int fd;

	CHECK_OK(pipe(p));
	CHECK_EQ(write(p[1], "raw!", 4), 4);

	raw_init(&rd, SYS_OP_READ, p[0]);
	rd.sc.arg[0] = (uintptr_t)rd.buf;
	rd.sc.arg[1] = sizeof(rd.buf);
	raw_submit(&rd);
	raw_wait(&rd);
	CHECK_EQ(rd.calls, 1);
	CHECK_EQ(rd.sc.result, 4);
	CHECK(memcmp(rd.buf, "raw!", 4) == 0);
	CHECK_EQ(rd.done_vcore, rd.submit_vcore);

	/* A timeout whose done() queues a read; the read waits for data. */
	raw_init(&to, SYS_OP_TIMEOUT, -1);
	to.sc.arg[0] = 2 * NSEC_PER_MSEC;
	raw_init(&ch, SYS_OP_READ, p[0]);
	ch.sc.arg[0] = (uintptr_t)ch.buf;
	ch.sc.arg[1] = sizeof(ch.buf);
	to.chain = &ch;
	raw_submit(&to);
	raw_wait(&to);
	CHECK_EQ(to.sc.result, 0); /* an expired timeout is a success */
	CHECK_EQ(to.done_vcore, to.submit_vcore);
	uthread_sleep_ns(5 * NSEC_PER_MSEC);
	CHECK_EQ(__atomic_load_n(&ch.calls, __ATOMIC_ACQUIRE), 0);
	CHECK_EQ(write(p[1], "chain", 5), 5);
	raw_wait(&ch);
	CHECK_EQ(ch.sc.result, 5);
	CHECK(memcmp(ch.buf, "chain", 5) == 0);
	CHECK_EQ(ch.done_vcore, ch.submit_vcore);

	/* Errors come back through done() too. */
	raw_init(&bad, SYS_OP_READ, -1);
	bad.sc.arg[0] = (uintptr_t)bad.buf;
	bad.sc.arg[1] = 1;
	raw_submit(&bad);
	raw_wait(&bad);
	CHECK_EQ(bad.sc.result, -EBADF);

	/* fsync with flags in arg[0]. */
	snprintf(path, sizeof(path), "%s/sys-raw-%d", tmpdir, (int)getpid());
	fd = open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	CHECK_OK(fd);
	CHECK_EQ(write(fd, "d", 1), 1);
	raw_init(&fs, SYS_OP_FSYNC, fd);
	fs.sc.arg[0] = IORING_FSYNC_DATASYNC;
	raw_submit(&fs);
	raw_wait(&fs);
	CHECK_EQ(fs.sc.result, 0);
	close(fd);
	unlink(path);

	/* Refused at submission. */
	raw_init(&bad, SYS_OP_COUNT, 0);
	CHECK_EQ(sys_submit(&bad.sc), -EINVAL);
	raw_init(&bad, SYS_OP_READ, 0);
	bad.sc.done = NULL;
	CHECK_EQ(sys_submit(&bad.sc), -EINVAL);
	raw_init(&bad, SYS_OP_READ, 0);
	CHECK_EQ(pthread_create(&t, NULL, raw_thread, &bad), 0);
	CHECK_OK(sys_offload(join_thread, &t));

	/* Many at once, more than one SQ batch. */
	many = calloc((size_t)nmany, sizeof(*many));
	CHECK(many != NULL);
	for (int i = 0; i < nmany; i++) {
		raw_init(&many[i], SYS_OP_POLL, p[1]);
		many[i].sc.arg[0] = POLLOUT;
		raw_submit(&many[i]);
	}
	for (int i = 0; i < nmany; i++) {
		raw_wait(&many[i]);
		CHECK_EQ(many[i].calls, 1);
		CHECK(many[i].sc.result > 0 && (many[i].sc.result & POLLOUT));
		CHECK_EQ(many[i].done_vcore, many[i].submit_vcore);
	}
	free(many);
	close(p[0]);
	close(p[1]);
}

/* ---- many uthreads doing I/O at once -------------------------------------- */

#define STRESS_PAIRS 64
#define STRESS_REGION 4096

struct stress_pair {
	int fds[2];             /* [0] read end, [1] write end */
	int sock;               /* a socketpair, else a pipe */
	int id;
	int rounds;
	int file_fd;            /* shared temp file, one region per uthread */
};

struct stress_hdr {
	uint32_t pair, seq, len, sum;
};

static uint32_t fill(char *p, uint32_t len, uint32_t seed)
{
	uint32_t sum = 0;

	for (uint32_t i = 0; i < len; i++) {
		seed = seed * 1103515245u + 12345u;
		p[i] = (char)(seed >> 16);
		sum = sum * 31 + (uint8_t)p[i];
	}
	return sum;
}

static void region_io(struct stress_pair *sp, int side, uint32_t seq)
{
	char out[256], in[256];
	off_t off = (off_t)(sp->id * 2 + side) * STRESS_REGION +
		    (off_t)(seq % 16) * (off_t)sizeof(out);

	fill(out, sizeof(out), seq ^ (uint32_t)(sp->id << 8) ^ (uint32_t)side);
	CHECK_EQ(sys_pwrite(sp->file_fd, out, sizeof(out), off), sizeof(out));
	CHECK_EQ(sys_pread(sp->file_fd, in, sizeof(in), off), sizeof(in));
	CHECK(memcmp(in, out, sizeof(in)) == 0);
}

static void *stress_writer(void *arg)
{
	struct stress_pair *sp = arg;
	char buf[2048];

	for (uint32_t seq = 0; seq < (uint32_t)sp->rounds; seq++) {
		struct stress_hdr h;
		uint32_t len = 1 + (seq * 7919u + (uint32_t)sp->id * 31u) %
				       (sizeof(buf) - sizeof(h) - 1);

		h.pair = (uint32_t)sp->id;
		h.seq = seq;
		h.len = len;
		h.sum = fill(buf + sizeof(h), len, seq + h.pair);
		memcpy(buf, &h, sizeof(h));
		write_full(sp->fds[1], buf, sizeof(h) + len, sp->sock);
		if (seq % 8 == 0)
			region_io(sp, 0, seq);
		if (seq % 64 == 0)
			CHECK_EQ(sys_timeout(10000), 0);
	}
	return NULL;
}

static void *stress_reader(void *arg)
{
	struct stress_pair *sp = arg;
	char buf[2048], expect[2048];

	for (uint32_t seq = 0; seq < (uint32_t)sp->rounds; seq++) {
		struct stress_hdr h;

		read_full(sp->fds[0], &h, sizeof(h), sp->sock);
		CHECK_EQ(h.pair, sp->id);
		CHECK_EQ(h.seq, seq); /* in order, none lost */
		CHECK(h.len > 0 && h.len <= sizeof(buf));
		read_full(sp->fds[0], buf, h.len, sp->sock);
		CHECK_EQ(fill(expect, h.len, seq + h.pair), h.sum);
		CHECK(memcmp(buf, expect, h.len) == 0);
		if (seq % 8 == 4)
			region_io(sp, 1, seq);
	}
	return NULL;
}

static void stress(void)
{
	struct stress_pair *sp = calloc(STRESS_PAIRS, sizeof(*sp));
	struct uthread *u[2 * STRESS_PAIRS];
	char path[512];
	int file_fd;
	/* Without io_uring each blocked call holds an offload worker, and
	 * the pool is bounded: fewer pairs. */
	int pairs = sys_uses_io_uring() ? STRESS_PAIRS : 8;

	CHECK(sp != NULL);
	snprintf(path, sizeof(path), "%s/sys-stress-%d", tmpdir, (int)getpid());
	file_fd = sys_openat(AT_FDCWD, path,
			     O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	CHECK_OK(file_fd);
	for (int i = 0; i < pairs; i++) {
		sp[i].id = i;
		sp[i].rounds = (int)test_scale(400);
		sp[i].sock = i % 2;
		sp[i].file_fd = file_fd;
		if (sp[i].sock)
			CHECK_OK(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC,
					    0, sp[i].fds));
		else
			CHECK_OK(pipe2(sp[i].fds, O_CLOEXEC));
	}
	for (int i = 0; i < pairs; i++) {
		CHECK_OK(uthread_create(&u[2 * i], NULL, stress_reader, &sp[i]));
		CHECK_OK(uthread_create(&u[2 * i + 1], NULL, stress_writer,
					&sp[i]));
	}
	for (int i = 0; i < 2 * pairs; i++)
		CHECK_OK(uthread_join(u[i], NULL));
	for (int i = 0; i < pairs; i++) {
		CHECK_EQ(sys_close(sp[i].fds[0]), 0);
		CHECK_EQ(sys_close(sp[i].fds[1]), 0);
	}
	CHECK_EQ(sys_close(file_fd), 0);
	CHECK_OK(unlink(path));
	free(sp);
}

static int ops_main(void *arg)
{
	pthread_t t;
	int fds0;

	(void)arg;
	CHECK_EQ(max_vcores(), 4);
	if (!sys_uses_io_uring())
		printf("note: io_uring unavailable; calls run on the offload "
		       "pool\n");
	fds0 = count_fds();
	file_ops();
	tcp_ops();
	unix_ops();
	timeout_ops();
	raw_ops();
	/* A plain thread inside a running process: blocking calls. */
	CHECK_EQ(pthread_create(&t, NULL, outside_thread, NULL), 0);
	CHECK_OK(sys_offload(join_thread, &t));
	stress();
	CHECK_EQ(count_fds(), fds0);
	return 0;
}

int main(void)
{
	struct rt_config four = { .nr_vcores = 4 }; /* oversubscribed */
	const char *t = getenv("TMPDIR");

	snprintf(tmpdir, sizeof(tmpdir), "%s", t && *t ? t : "/tmp");
	outside_runtime();
	CHECK_EQ(rt_main(&four, ops_main, NULL), 0);
	outside_runtime();
	return TEST_PASS;
}
