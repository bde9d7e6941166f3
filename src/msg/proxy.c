/* proxy.c - the intermachine transport: a sender's TCP connection to a
 * node's proxy, and the proxy that forwards into that node's mailboxes.
 *
 * Design note. fos sends intermachine messages through a proxy server on
 * each machine. Here a TCP sender connects to the proxy of the mailbox's
 * node (the address's proxy_host:proxy_port), presents the address and the
 * capability, and streams framed messages; the proxy opens the mailbox
 * with an ordinary mbox_open() (LOCAL if the mailbox lives in the proxy's
 * process, NODE otherwise), so the capability is checked exactly as for a
 * local sender, and forwards each frame with mbox_send(). One thread per
 * connection: a full mailbox stalls only its own connection, and TCP's
 * flow control carries the back-pressure to the sender. The proxy does not
 * route further: an address of another node is refused (-EHOSTUNREACH);
 * routing between proxies comes with the multi-machine work.
 *
 * Wire format (all integers little-endian; status values are negative
 * Linux errno numbers):
 *
 *   open, sender -> proxy, 56 bytes:
 *      0 u32 magic 0x544d7441 ("AtMT")   4 u16 version (1)  6 u16 0
 *      8 u64 node   16 u64 incarnation   24 u64 mailbox id
 *     32 u32 pid    36 u32 0             40 16 bytes capability
 *   open reply, proxy -> sender, 12 bytes:
 *      0 u32 magic   4 i32 status (0 or -errno)   8 u32 sender id
 *   then frames, sender -> proxy:
 *      0 u16 type   2 u16 len (<= MBOX_MSG_MAX)   4 u32 0   8 payload
 *   and at most one error, proxy -> sender, after which it closes:
 *      0 u32 magic 0x454d7441 ("AtME")   4 i32 status
 *
 * A malformed open or frame (bad magic or version, a length over
 * MBOX_MSG_MAX, a reserved type) gets -EPROTO and the connection closes.
 * The sender learns of a failure (revocation, the mailbox's end) from the
 * error message, which it looks for before each send: messages it sent
 * after the failure and before noticing it are lost, as they would be in
 * flight to any receiver that goes away.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atoll/atomic.h>
#include <atoll/mbox.h>
#include <atoll/sys.h>
#include <atoll/uthread.h>

#include "mbox_internal.h"

#define TCP_OPEN_MAGIC 0x544d7441u
#define TCP_ERR_MAGIC 0x454d7441u
#define TCP_VERSION 1u
#define TCP_OPEN_SIZE 56u
#define TCP_REPLY_SIZE 12u
#define TCP_FRAME_HDR 8u
#define TCP_ERR_SIZE 8u
#define TCP_HANDSHAKE_TIMEOUT_S 5

static void put16(unsigned char *p, uint16_t v)
{
	p[0] = (unsigned char)v;
	p[1] = (unsigned char)(v >> 8);
}

static void put32(unsigned char *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (unsigned char)(v >> (8 * i));
}

static void put64(unsigned char *p, uint64_t v)
{
	for (int i = 0; i < 8; i++)
		p[i] = (unsigned char)(v >> (8 * i));
}

static uint16_t get16(const unsigned char *p)
{
	return (uint16_t)(p[0] | p[1] << 8);
}

static uint32_t get32(const unsigned char *p)
{
	uint32_t v = 0;

	for (int i = 3; i >= 0; i--)
		v = v << 8 | p[i];
	return v;
}

static uint64_t get64(const unsigned char *p)
{
	uint64_t v = 0;

	for (int i = 7; i >= 0; i--)
		v = v << 8 | p[i];
	return v;
}

/* Send or receive exactly len bytes (sys.h: a uthread blocks alone).
 * 0, -EPIPE on a closed connection, or -errno. */
static int send_all(int fd, const void *buf, size_t len)
{
	const char *p = buf;

	while (len) {
		ssize_t n = sys_send(fd, p, len, MSG_NOSIGNAL);

		if (n == -EINTR)
			continue;
		if (n < 0)
			return n == -ECONNRESET ? -EPIPE : (int)n;
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

static int recv_all(int fd, void *buf, size_t len)
{
	char *p = buf;

	while (len) {
		ssize_t n = sys_recv(fd, p, len, 0);

		if (n == -EINTR)
			continue;
		if (n == 0)
			return -EPIPE;
		if (n < 0)
			return n == -ECONNRESET ? -EPIPE : (int)n;
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

/* ---- sender side ---------------------------------------------------------- */

struct mbox_tcp {
	int fd;
	uint32_t lock;      /* atomic: 1 while a send runs */
	int err;            /* under lock: 0 or -errno, sticky */
};

static void tcp_lock(struct mbox_tcp *t)
{
	struct mbox_backoff bo = { 0 };

	/* Acquire pairs with tcp_unlock's release. */
	while (xchg_acquire(&t->lock, 1))
		mbox__backoff(&bo);
}

static void tcp_unlock(struct mbox_tcp *t)
{
	store_release(&t->lock, 0);
}

struct resolve_req {
	const char *host;
	uint16_t port;
	struct sockaddr_storage ss;
	socklen_t len;
};

static long resolve_host(void *arg)
{
	struct resolve_req *r = arg;
	struct addrinfo hints = { .ai_socktype = SOCK_STREAM };
	struct addrinfo *res;
	char port[8];
	int e;

	snprintf(port, sizeof(port), "%u", (unsigned)r->port);
	e = getaddrinfo(r->host, port, &hints, &res);
	if (e)
		return -EHOSTUNREACH;
	memcpy(&r->ss, res->ai_addr, res->ai_addrlen);
	r->len = res->ai_addrlen;
	freeaddrinfo(res);
	return 0;
}

/* Fill r->ss from host:port: numeric addresses directly, names through
 * getaddrinfo (on an offload thread in a uthread). */
static int resolve(struct resolve_req *r)
{
	struct sockaddr_in *v4 = (struct sockaddr_in *)&r->ss;
	struct sockaddr_in6 *v6 = (struct sockaddr_in6 *)&r->ss;

	memset(&r->ss, 0, sizeof(r->ss));
	if (inet_pton(AF_INET, r->host, &v4->sin_addr) == 1) {
		v4->sin_family = AF_INET;
		v4->sin_port = htons(r->port);
		r->len = sizeof(*v4);
		return 0;
	}
	if (inet_pton(AF_INET6, r->host, &v6->sin6_addr) == 1) {
		v6->sin6_family = AF_INET6;
		v6->sin6_port = htons(r->port);
		r->len = sizeof(*v6);
		return 0;
	}
	if (uthread_self())
		return (int)sys_offload(resolve_host, r);
	return (int)resolve_host(r);
}

int mbox__tcp_open(const struct mbox_addr *addr, const struct mbox_cap *cap,
		   struct mbox_tcp **out, uint32_t *sender_id)
{
	struct resolve_req rr = { .host = addr->proxy_host,
				  .port = addr->proxy_port };
	unsigned char req[TCP_OPEN_SIZE] = { 0 };
	unsigned char rep[TCP_REPLY_SIZE];
	struct mbox_tcp *t;
	int one = 1;
	int fd, err;
	int32_t status;

	err = resolve(&rr);
	if (err)
		return err;
	fd = socket(rr.ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	err = sys_connect(fd, (struct sockaddr *)&rr.ss, rr.len);
	if (err < 0)
		goto fail;
	put32(req, TCP_OPEN_MAGIC);
	put16(req + 4, TCP_VERSION);
	put64(req + 8, addr->node);
	put64(req + 16, addr->incarnation);
	put64(req + 24, addr->id);
	put32(req + 32, addr->pid);
	memcpy(req + 40, cap->b, sizeof(cap->b));
	err = send_all(fd, req, sizeof(req));
	if (err)
		goto fail;
	err = recv_all(fd, rep, sizeof(rep));
	if (err)
		goto fail;
	status = (int32_t)get32(rep + 4);
	if (get32(rep) != TCP_OPEN_MAGIC || status > 0 || status < -4095) {
		err = -EPROTO;
		goto fail;
	}
	if (status < 0) {
		err = status;
		goto fail;
	}
	t = calloc(1, sizeof(*t));
	if (!t) {
		err = -ENOMEM;
		goto fail;
	}
	t->fd = fd;
	*sender_id = get32(rep + 8);
	*out = t;
	return 0;
fail:
	close(fd);
	return err;
}

/* Look for the proxy's error message or end of stream without blocking.
 * Caller holds the lock. 0, or the error (then sticky). */
static int tcp_poll_err(struct mbox_tcp *t)
{
	unsigned char buf[TCP_ERR_SIZE];
	ssize_t n;

	if (t->err)
		return t->err;
	n = recv(t->fd, buf, sizeof(buf), MSG_DONTWAIT | MSG_PEEK);
	if (n < 0) {
		int e = errno;

		if (e == EAGAIN || e == EWOULDBLOCK || e == EINTR)
			return 0;
		t->err = -EPIPE;
	} else if (n == 0) {
		t->err = -EPIPE;
	} else if (n < (ssize_t)sizeof(buf)) {
		return 0;       /* the rest is on its way */
	} else {
		int32_t st = (int32_t)get32(buf + 4);

		t->err = get32(buf) == TCP_ERR_MAGIC && st < 0 && st > -4096 ?
			 st : -EPROTO;
	}
	return t->err;
}

int mbox__tcp_send(struct mbox_tcp *t, uint16_t type, const void *data,
		   size_t len, unsigned flags)
{
	unsigned char hdr[TCP_FRAME_HDR] = { 0 };
	struct iovec iov[2] = {
		{ hdr, sizeof(hdr) },
		{ (void *)data, len },
	};
	struct msghdr msg = { .msg_iov = iov, .msg_iovlen = len ? 2 : 1 };
	size_t total = sizeof(hdr) + len, sent = 0;
	int err;

	put16(hdr, type);
	put16(hdr + 2, (uint16_t)len);
	tcp_lock(t);
	err = tcp_poll_err(t);
	if (err)
		goto out;
	if (flags & MBOX_NONBLOCK) {
		ssize_t n = sendmsg(t->fd, &msg, MSG_DONTWAIT | MSG_NOSIGNAL);

		if (n < 0) {
			int e = errno;

			err = e == EAGAIN || e == EWOULDBLOCK ? -EAGAIN : -EPIPE;
			if (err == -EPIPE)
				t->err = tcp_poll_err(t) ? t->err : -EPIPE;
			goto out;
		}
		sent = (size_t)n;
	}
	/* The rest (all of it, when blocking): a frame once begun is
	 * finished, or the stream would lose its framing. */
	while (sent < total) {
		struct iovec rest[2];
		struct msghdr m = { .msg_iov = rest };
		ssize_t n;

		if (sent < sizeof(hdr)) {
			rest[0].iov_base = hdr + sent;
			rest[0].iov_len = sizeof(hdr) - sent;
			rest[1] = iov[1];
			m.msg_iovlen = len ? 2 : 1;
		} else {
			rest[0].iov_base = (char *)data + (sent - sizeof(hdr));
			rest[0].iov_len = total - sent;
			m.msg_iovlen = 1;
		}
		n = sys_sendmsg(t->fd, &m, MSG_NOSIGNAL);
		if (n == -EINTR)
			continue;
		if (n <= 0) {
			/* The proxy may have said why before closing. */
			t->err = 0;
			if (!tcp_poll_err(t))
				t->err = -EPIPE;
			err = t->err;
			goto out;
		}
		sent += (size_t)n;
	}
out:
	tcp_unlock(t);
	return err;
}

int mbox__tcp_check(struct mbox_tcp *t)
{
	int err;

	tcp_lock(t);
	err = tcp_poll_err(t);
	tcp_unlock(t);
	return err;
}

void mbox__tcp_close(struct mbox_tcp *t)
{
	close(t->fd);
	free(t);
}

/* ---- the proxy ------------------------------------------------------------ */

struct pconn {
	int fd;
	pthread_t th;
	struct mbox_proxy *p;
	struct pconn *next;
	uint32_t done;      /* atomic: the thread has finished */
};

struct mbox_proxy {
	int lfd;
	int stop_efd;
	uint16_t port;
	pthread_t th;
	pthread_mutex_t mu;     /* guards conns */
	struct pconn *conns;
	uint32_t stopping;      /* atomic */
};

static void proxy_send_err(int fd, int status)
{
	unsigned char buf[TCP_ERR_SIZE];

	put32(buf, TCP_ERR_MAGIC);
	put32(buf + 4, (uint32_t)status);
	if (send(fd, buf, sizeof(buf), MSG_NOSIGNAL | MSG_DONTWAIT) < 0) {
		/* the sender is gone; nobody to tell */
	}
}

/* Forward one message, waiting while the mailbox is full unless the proxy
 * stops. */
static int forward(struct pconn *pc, struct mbox_sender *s, uint16_t type,
		   const void *data, size_t len)
{
	struct mbox_backoff bo = { 0 };

	for (;;) {
		int r = mbox_send(s, type, data, len, MBOX_NONBLOCK);

		if (r != -EAGAIN)
			return r;
		/* Acquire pairs with mbox_proxy_stop's release. */
		if (load_acquire(&pc->p->stopping))
			return -EPIPE;
		mbox__backoff(&bo);
	}
}

static void *pconn_main(void *arg)
{
	struct pconn *pc = arg;
	unsigned char req[TCP_OPEN_SIZE], rep[TCP_REPLY_SIZE];
	unsigned char hdr[TCP_FRAME_HDR];
	unsigned char *buf = malloc(MBOX_MSG_MAX);
	struct timeval tv = { TCP_HANDSHAKE_TIMEOUT_S, 0 };
	struct mbox_sender *s = NULL;
	struct mbox_addr addr;
	struct mbox_cap cap;
	int status = 0;

	if (!buf)
		goto out;
	/* A peer that connects and says nothing must not hold a thread
	 * forever. */
	setsockopt(pc->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	if (recv_all(pc->fd, req, sizeof(req)))
		goto out;
	if (get32(req) != TCP_OPEN_MAGIC || get16(req + 4) != TCP_VERSION) {
		status = -EPROTO;
	} else {
		memset(&addr, 0, sizeof(addr));
		addr.node = get64(req + 8);
		addr.incarnation = get64(req + 16);
		addr.id = get64(req + 24);
		addr.pid = get32(req + 32);
		memcpy(cap.b, req + 40, sizeof(cap.b));
		if (addr.node != mbox_node_id())
			status = -EHOSTUNREACH;
		else
			status = mbox_open(&addr, &cap, NULL, &s);
	}
	put32(rep, TCP_OPEN_MAGIC);
	put32(rep + 4, (uint32_t)status);
	put32(rep + 8, s ? mbox_sender_id(s) : 0);
	if (send_all(pc->fd, rep, sizeof(rep)) || status)
		goto out;
	tv.tv_sec = 0;
	setsockopt(pc->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	for (;;) {
		uint16_t type, len;

		if (recv_all(pc->fd, hdr, sizeof(hdr)))
			break;
		type = get16(hdr);
		len = get16(hdr + 2);
		if (len > MBOX_MSG_MAX || type > MBOX_TYPE_USER_MAX ||
		    get32(hdr + 4) != 0) {
			proxy_send_err(pc->fd, -EPROTO);
			break;
		}
		if (len && recv_all(pc->fd, buf, len))
			break;
		status = forward(pc, s, type, buf, len);
		if (status) {
			proxy_send_err(pc->fd, status);
			break;
		}
	}
out:
	if (s)
		mbox_close(s);
	free(buf);
	shutdown(pc->fd, SHUT_RDWR);
	/* Release pairs with the reaper's load_acquire. */
	store_release(&pc->done, 1);
	return NULL;
}

/* Join and free finished connection threads (all of them when all is
 * set). */
static void proxy_reap(struct mbox_proxy *p, bool all)
{
	struct pconn *dead = NULL;

	pthread_mutex_lock(&p->mu);
	for (struct pconn **pp = &p->conns; *pp;) {
		struct pconn *pc = *pp;

		/* Acquire pairs with pconn_main's release of done. */
		if (all || load_acquire(&pc->done)) {
			*pp = pc->next;
			pc->next = dead;
			dead = pc;
		} else {
			pp = &pc->next;
		}
	}
	pthread_mutex_unlock(&p->mu);
	while (dead) {
		struct pconn *pc = dead;

		dead = pc->next;
		pthread_join(pc->th, NULL);
		close(pc->fd);
		free(pc);
	}
}

static void *proxy_main(void *arg)
{
	struct mbox_proxy *p = arg;
	struct pollfd pfd[2] = {
		{ .fd = p->lfd, .events = POLLIN },
		{ .fd = p->stop_efd, .events = POLLIN },
	};

	for (;;) {
		struct pconn *pc;
		int fd, one = 1;

		if (poll(pfd, 2, 1000) < 0 && errno != EINTR)
			break;
		/* Acquire pairs with mbox_proxy_stop's release. */
		if (load_acquire(&p->stopping))
			break;
		proxy_reap(p, false);
		if (!(pfd[0].revents & POLLIN))
			continue;
		fd = accept4(p->lfd, NULL, NULL, SOCK_CLOEXEC);
		if (fd < 0)
			continue;
		setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
		pc = calloc(1, sizeof(*pc));
		if (!pc) {
			close(fd);
			continue;
		}
		pc->fd = fd;
		pc->p = p;
		pthread_mutex_lock(&p->mu);
		if (pthread_create(&pc->th, NULL, pconn_main, pc)) {
			pthread_mutex_unlock(&p->mu);
			close(fd);
			free(pc);
			continue;
		}
		pc->next = p->conns;
		p->conns = pc;
		pthread_mutex_unlock(&p->mu);
	}
	return NULL;
}

int mbox_proxy_start(const char *host, uint16_t port, struct mbox_proxy **out)
{
	struct sockaddr_storage ss;
	struct sockaddr_in *v4 = (struct sockaddr_in *)&ss;
	struct sockaddr_in6 *v6 = (struct sockaddr_in6 *)&ss;
	socklen_t len = sizeof(ss);
	struct mbox_proxy *p;
	sigset_t all, old;
	int one = 1, err;

	if (!host || !out)
		return -EINVAL;
	memset(&ss, 0, sizeof(ss));
	if (inet_pton(AF_INET, host, &v4->sin_addr) == 1) {
		v4->sin_family = AF_INET;
		v4->sin_port = htons(port);
		len = sizeof(*v4);
	} else if (inet_pton(AF_INET6, host, &v6->sin6_addr) == 1) {
		v6->sin6_family = AF_INET6;
		v6->sin6_port = htons(port);
		len = sizeof(*v6);
	} else {
		return -EINVAL;
	}
	p = calloc(1, sizeof(*p));
	if (!p)
		return -ENOMEM;
	pthread_mutex_init(&p->mu, NULL);
	p->stop_efd = -1;
	p->lfd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (p->lfd < 0) {
		err = -errno;
		goto fail;
	}
	setsockopt(p->lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(p->lfd, (struct sockaddr *)&ss, len) < 0 ||
	    listen(p->lfd, 64) < 0) {
		err = -errno;
		goto fail;
	}
	len = sizeof(ss);
	if (getsockname(p->lfd, (struct sockaddr *)&ss, &len) < 0) {
		err = -errno;
		goto fail;
	}
	p->port = ntohs(ss.ss_family == AF_INET ? v4->sin_port :
			v6->sin6_port);
	p->stop_efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (p->stop_efd < 0) {
		err = -errno;
		goto fail;
	}
	/* Proxy threads take no signals: they are the application's. */
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	err = -pthread_create(&p->th, NULL, proxy_main, p);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (err)
		goto fail;
	mbox__set_proxy_if_unset(host, p->port);
	*out = p;
	return 0;
fail:
	if (p->stop_efd >= 0)
		close(p->stop_efd);
	if (p->lfd >= 0)
		close(p->lfd);
	pthread_mutex_destroy(&p->mu);
	free(p);
	return err;
}

uint16_t mbox_proxy_port(const struct mbox_proxy *p)
{
	return p->port;
}

void mbox_proxy_stop(struct mbox_proxy *p)
{
	uint64_t one = 1;

	if (!p)
		return;
	/* Release pairs with the threads' load_acquire of stopping. */
	store_release(&p->stopping, 1);
	if (write(p->stop_efd, &one, sizeof(one)) < 0) {
		/* cannot fail short of a bad descriptor */
	}
	pthread_join(p->th, NULL);
	pthread_mutex_lock(&p->mu);
	for (struct pconn *pc = p->conns; pc; pc = pc->next)
		shutdown(pc->fd, SHUT_RDWR);
	pthread_mutex_unlock(&p->mu);
	proxy_reap(p, true);
	close(p->lfd);
	close(p->stop_efd);
	pthread_mutex_destroy(&p->mu);
	free(p);
}
