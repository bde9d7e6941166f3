/* net.c - a TCP server on the runtime (net.h). */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atoll/clock.h>
#include <atoll/list.h>
#include <atoll/net.h>
#include <atoll/sync.h>
#include <atoll/sys.h>
#include <atoll/uthread.h>

#define ACCEPT_BACKOFF_NS (10ull * NSEC_PER_MSEC)
#define DRAIN_POLL_NS (1ull * NSEC_PER_MSEC)
#define DRAIN_LIMIT_NS (5ull * NSEC_PER_SEC)
#define CONN_STACK_DEFAULT (64u * 1024u)

int net_block_stop_signals(void)
{
	sigset_t sigs;

	signal(SIGPIPE, SIG_IGN);
	sigemptyset(&sigs);
	sigaddset(&sigs, SIGINT);
	sigaddset(&sigs, SIGTERM);
	return -pthread_sigmask(SIG_BLOCK, &sigs, NULL);
}

/* Fill ss from an IPv4 or IPv6 literal; returns the length or 0. */
static socklen_t addr_parse(const char *addr, int port,
			    struct sockaddr_storage *ss)
{
	struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)ss;
	struct sockaddr_in *s4 = (struct sockaddr_in *)ss;

	memset(ss, 0, sizeof(*ss));
	if (inet_pton(AF_INET, addr, &s4->sin_addr) == 1) {
		s4->sin_family = AF_INET;
		s4->sin_port = htons((uint16_t)port);
		return sizeof(*s4);
	}
	if (inet_pton(AF_INET6, addr, &s6->sin6_addr) == 1) {
		s6->sin6_family = AF_INET6;
		s6->sin6_port = htons((uint16_t)port);
		return sizeof(*s6);
	}
	return 0;
}

int net_addr_valid(const char *addr)
{
	struct sockaddr_storage ss;

	return addr_parse(addr, 0, &ss) != 0;
}

static void addr_show(const struct sockaddr_storage *ss, char *out,
		      size_t len)
{
	char host[INET6_ADDRSTRLEN];

	if (ss->ss_family == AF_INET6) {
		const struct sockaddr_in6 *s6 = (const void *)ss;

		inet_ntop(AF_INET6, &s6->sin6_addr, host, sizeof(host));
		snprintf(out, len, "[%s]:%u", host, ntohs(s6->sin6_port));
	} else {
		const struct sockaddr_in *s4 = (const void *)ss;

		inet_ntop(AF_INET, &s4->sin_addr, host, sizeof(host));
		snprintf(out, len, "%s:%u", host, ntohs(s4->sin_port));
	}
}

/* Thousands of connections need thousands of descriptors. */
static void raise_fd_limit(void)
{
	struct rlimit rl;

	if (!getrlimit(RLIMIT_NOFILE, &rl) && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
}

int net_listen(const char *addr, int port, char *shown, size_t shown_len)
{
	struct sockaddr_storage ss;
	socklen_t len = addr_parse(addr, port, &ss);
	int one = 1, fd, err;

	if (!len || port < 0 || port > 65535)
		return -EINVAL;
	raise_fd_limit();
	fd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(fd, (struct sockaddr *)&ss, len) || listen(fd, SOMAXCONN)) {
		err = -errno;
		close(fd);
		return err;
	}
	if (shown) {
		len = sizeof(ss);
		getsockname(fd, (struct sockaddr *)&ss, &len);
		addr_show(&ss, shown, shown_len);
	}
	return fd;
}

int net_send_all(int fd, const void *buf, size_t len)
{
	const char *p = buf;

	while (len) {
		ssize_t r = sys_send(fd, p, len, MSG_NOSIGNAL);

		if (r < 0)
			return (int)r;
		p += r;
		len -= (size_t)r;
	}
	return 0;
}

/* ---- the server ----------------------------------------------------------- */

struct server {
	const struct net_serve_config *cfg;
	struct net_counters *ctr;
	struct net_counters own_ctr;   /* when the caller passed none */
	int sigfd;
	int stopping;                  /* atomic: a stop signal came */
	int failed;                    /* atomic: accept failed for good */
	struct spin_pdr lock;          /* guards conns */
	struct list_head conns;
};

struct conn {
	struct list_head link;         /* in server.conns */
	struct server *srv;
	int fd;
};

static void *conn_main(void *arg)
{
	struct conn *c = arg;
	struct server *srv = c->srv;

	srv->cfg->conn(c->fd, srv->cfg->arg);
	/* Off the list before the close, so a stop never shuts down a
	 * descriptor number that was reused meanwhile. */
	spin_pdr_lock(&srv->lock);
	list_del(&c->link);
	spin_pdr_unlock(&srv->lock);
	sys_close(c->fd);
	__atomic_fetch_sub(&srv->ctr->live, 1, __ATOMIC_RELEASE);
	free(c);
	return NULL;
}

/* Waits for SIGINT/SIGTERM, then makes the accept loop end. */
static void *signal_main(void *arg)
{
	struct server *srv = arg;
	struct signalfd_siginfo si;

	if (sys_read(srv->sigfd, &si, sizeof(si)) != sizeof(si) ||
	    __atomic_load_n(&srv->failed, __ATOMIC_ACQUIRE))
		return NULL;
	fprintf(stderr, "%s: %s, stopping\n", srv->cfg->name,
		strsignal((int)si.ssi_signo));
	__atomic_store_n(&srv->stopping, 1, __ATOMIC_RELEASE);
	/* A pending accept on a shut-down listener fails at once. */
	shutdown(srv->cfg->lfd, SHUT_RDWR);
	return NULL;
}

static void conn_start(struct server *srv, int fd)
{
	const struct net_serve_config *cfg = srv->cfg;
	struct uthread_attr attr = {
		.detached = 1, .name = "conn",
		.stack_size = cfg->stack_size ? cfg->stack_size
			: CONN_STACK_DEFAULT,
	};
	struct conn *c;
	int one = 1;

	/* Replies go out when written: with Nagle, a pipelined reply waits
	 * for the peer's delayed ACK (40 ms) behind the previous one. */
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	if (cfg->max_conns &&
	    __atomic_load_n(&srv->ctr->live, __ATOMIC_RELAXED) >=
	    cfg->max_conns)
		goto refuse;
	c = malloc(sizeof(*c));
	if (!c)
		goto refuse;
	c->srv = srv;
	c->fd = fd;
	__atomic_fetch_add(&srv->ctr->live, 1, __ATOMIC_RELAXED);
	/* On the list before it runs: a stop that comes first finds it. */
	spin_pdr_lock(&srv->lock);
	list_add_tail(&srv->conns, &c->link);
	spin_pdr_unlock(&srv->lock);
	if (uthread_create(NULL, &attr, conn_main, c)) {
		spin_pdr_lock(&srv->lock);
		list_del(&c->link);
		spin_pdr_unlock(&srv->lock);
		__atomic_fetch_sub(&srv->ctr->live, 1, __ATOMIC_RELAXED);
		free(c);
		goto refuse;
	}
	__atomic_fetch_add(&srv->ctr->accepted, 1, __ATOMIC_RELAXED);
	return;
refuse:
	__atomic_fetch_add(&srv->ctr->refused, 1, __ATOMIC_RELAXED);
	sys_close(fd);
}

/* Accept until a stop signal; 0, or -errno when accept failed for good. */
static int accept_loop(struct server *srv)
{
	int warned = 0;

	for (;;) {
		int fd = sys_accept(srv->cfg->lfd, NULL, NULL, SOCK_CLOEXEC);

		if (fd >= 0) {
			warned = 0;
			conn_start(srv, fd);
			continue;
		}
		if (__atomic_load_n(&srv->stopping, __ATOMIC_ACQUIRE))
			return 0;
		switch (-fd) {
		case EMFILE: case ENFILE: case ENOBUFS: case ENOMEM:
			/* Out of descriptors or memory: wait for some
			 * connections to end. */
			if (!warned++)
				fprintf(stderr, "%s: cannot accept more "
					"connections: %s\n", srv->cfg->name,
					strerror(-fd));
			sys_timeout(ACCEPT_BACKOFF_NS);
			continue;
		case ECONNABORTED: case EINTR: case EAGAIN: case EPROTO:
		case EPERM:
			continue; /* that connection only */
		default:
			fprintf(stderr, "%s: accept failed: %s\n",
				srv->cfg->name, strerror(-fd));
			return fd;
		}
	}
}

/* Shut every open connection down and wait for their uthreads. */
static void drain(struct server *srv)
{
	uint64_t waited = 0;
	struct list_head *pos;

	spin_pdr_lock(&srv->lock);
	list_for_each(pos, &srv->conns)
		shutdown(list_entry(pos, struct conn, link)->fd, SHUT_RDWR);
	spin_pdr_unlock(&srv->lock);
	while (__atomic_load_n(&srv->ctr->live, __ATOMIC_ACQUIRE)) {
		if (waited >= DRAIN_LIMIT_NS) {
			fprintf(stderr, "%s: %llu connections did not end; "
				"abandoning them\n", srv->cfg->name,
				(unsigned long long)__atomic_load_n(
					&srv->ctr->live, __ATOMIC_RELAXED));
			return;
		}
		sys_timeout(DRAIN_POLL_NS);
		waited += DRAIN_POLL_NS;
	}
}

int net_serve(const struct net_serve_config *cfg)
{
	struct uthread_attr sattr = { .name = "signals" };
	struct server srv = { .cfg = cfg, .ctr = cfg->counters };
	struct uthread *sig_uth;
	sigset_t sigs;
	int err;

	if (!cfg->conn || cfg->lfd < 0 || !cfg->name)
		return -EINVAL;
	if (!srv.ctr)
		srv.ctr = &srv.own_ctr;
	spin_pdr_init(&srv.lock);
	list_init(&srv.conns);
	sigemptyset(&sigs);
	sigaddset(&sigs, SIGINT);
	sigaddset(&sigs, SIGTERM);
	srv.sigfd = signalfd(-1, &sigs, SFD_CLOEXEC);
	if (srv.sigfd < 0)
		return -errno;
	err = uthread_create(&sig_uth, &sattr, signal_main, &srv);
	if (err) {
		close(srv.sigfd);
		return err;
	}
	err = accept_loop(&srv);
	if (err) {
		/* The signal uthread reads srv: wake it (the signal is
		 * blocked everywhere, so it lands in sigfd) before srv goes. */
		__atomic_store_n(&srv.failed, 1, __ATOMIC_RELEASE);
		kill(getpid(), SIGTERM);
	}
	uthread_join(sig_uth, NULL);
	drain(&srv);
	sys_close(cfg->lfd);
	sys_close(srv.sigfd);
	return err;
}
