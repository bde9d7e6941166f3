/* echo.c - a TCP echo server on the Atoll runtime: one uthread per
 * connection, all I/O through sys_accept/sys_recv/sys_send.
 *
 *   echo [-p PORT] [-l ADDR] [-t VCORES]
 *
 * Listens on ADDR (default 127.0.0.1; IPv4 or IPv6) port PORT (default
 * 7007; 0 picks a free one) and prints "listening on ADDR:PORT" once bound,
 * so a script can start it on port 0 and read the port back. VCORES is the
 * number of vcores (default: one per cpu). SIGINT or SIGTERM stops it.
 * Exit status: 0 after a signal, 1 when it cannot run, 2 for bad usage.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atoll/rt.h>
#include <atoll/sys.h>
#include <atoll/uthread.h>

#define DEFAULT_PORT 7007
#define CONN_BUF 8192
#define CONN_STACK (64u * 1024u)
#define ACCEPT_BACKOFF_NS (10ull * 1000 * 1000)

struct server {
	int lfd;
	int sigfd;
	int stopping;           /* atomic: a signal came */
	uint64_t served;        /* atomic: connections accepted */
	uint64_t live;          /* atomic: connection uthreads running */
};

static void usage(FILE *f)
{
	fprintf(f, "usage: echo [-p PORT] [-l ADDR] [-t VCORES]\n"
		   "  -p PORT    TCP port, 0 for any free one (default %d)\n"
		   "  -l ADDR    address to listen on (default 127.0.0.1)\n"
		   "  -t VCORES  vcores to run on (default: one per cpu)\n",
		DEFAULT_PORT);
}

/* A whole decimal number in [lo, hi], or -1. */
static long parse_num(const char *s, long lo, long hi)
{
	char *end;
	long v;

	if (!*s || *s == '-' || *s == '+')
		return -1;
	errno = 0;
	v = strtol(s, &end, 10);
	if (errno || *end || v < lo || v > hi)
		return -1;
	return v;
}

static int send_all(int fd, const char *p, size_t n)
{
	while (n) {
		ssize_t r = sys_send(fd, p, n, MSG_NOSIGNAL);

		if (r < 0)
			return (int)r;
		p += r;
		n -= (size_t)r;
	}
	return 0;
}

struct conn {
	struct server *srv;
	int fd;
};

static void *conn_main(void *arg)
{
	struct conn c = *(struct conn *)arg;
	char buf[CONN_BUF];
	ssize_t n;

	free(arg);
	/* Until the peer closes or the connection fails (reset, timeout):
	 * either way it is over, quietly. */
	while ((n = sys_recv(c.fd, buf, sizeof(buf), 0)) > 0)
		if (send_all(c.fd, buf, (size_t)n))
			break;
	sys_close(c.fd);
	__atomic_fetch_sub(&c.srv->live, 1, __ATOMIC_RELAXED);
	return NULL;
}

/* Waits for SIGINT/SIGTERM, then makes the accept loop end. */
static void *signal_main(void *arg)
{
	struct server *srv = arg;
	struct signalfd_siginfo si;

	if (sys_read(srv->sigfd, &si, sizeof(si)) != sizeof(si))
		return NULL;
	fprintf(stderr, "echo: %s, stopping\n", strsignal((int)si.ssi_signo));
	__atomic_store_n(&srv->stopping, 1, __ATOMIC_RELEASE);
	/* A pending accept on a shut-down listener fails at once. */
	shutdown(srv->lfd, SHUT_RDWR);
	return NULL;
}

static int server_main(void *arg)
{
	struct server *srv = arg;
	struct uthread_attr cattr = { .detached = 1, .stack_size = CONN_STACK,
				      .name = "conn" };
	struct uthread_attr sattr = { .detached = 1, .name = "signals" };
	int warned = 0, err;

	err = uthread_create(NULL, &sattr, signal_main, srv);
	if (err) {
		fprintf(stderr, "echo: cannot start: %s\n", strerror(-err));
		return 1;
	}
	for (;;) {
		struct conn *c;
		int fd = sys_accept(srv->lfd, NULL, NULL, SOCK_CLOEXEC);

		if (fd < 0) {
			if (__atomic_load_n(&srv->stopping, __ATOMIC_ACQUIRE))
				break;
			switch (-fd) {
			case EMFILE: case ENFILE: case ENOBUFS: case ENOMEM:
				/* Out of descriptors or memory: wait for some
				 * connections to end. */
				if (!warned++)
					fprintf(stderr, "echo: cannot accept "
						"more connections: %s\n",
						strerror(-fd));
				sys_timeout(ACCEPT_BACKOFF_NS);
				continue;
			case ECONNABORTED: case EINTR: case EAGAIN: case EPROTO:
			case EPERM:
				continue; /* that connection only */
			default:
				fprintf(stderr, "echo: accept failed: %s\n",
					strerror(-fd));
				return 1;
			}
		}
		warned = 0;
		c = malloc(sizeof(*c));
		if (!c) {
			sys_close(fd);
			continue;
		}
		c->srv = srv;
		c->fd = fd;
		__atomic_fetch_add(&srv->live, 1, __ATOMIC_RELAXED);
		err = uthread_create(NULL, &cattr, conn_main, c);
		if (err) {
			__atomic_fetch_sub(&srv->live, 1, __ATOMIC_RELAXED);
			free(c);
			sys_close(fd);
			continue;
		}
		__atomic_fetch_add(&srv->served, 1, __ATOMIC_RELAXED);
	}
	fprintf(stderr, "echo: served %llu connections (%llu still open)\n",
		(unsigned long long)__atomic_load_n(&srv->served,
						    __ATOMIC_RELAXED),
		(unsigned long long)__atomic_load_n(&srv->live,
						    __ATOMIC_RELAXED));
	return 0;
}

/* Bind and listen; prints the address. 0, or 1 with a message. */
static int open_listener(struct server *srv, const char *addr, int port)
{
	struct sockaddr_storage ss;
	socklen_t len;
	char shown[INET6_ADDRSTRLEN];
	int one = 1, family;

	memset(&ss, 0, sizeof(ss));
	if (strchr(addr, ':')) {
		struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;

		family = s6->sin6_family = AF_INET6;
		s6->sin6_port = htons((uint16_t)port);
		inet_pton(AF_INET6, addr, &s6->sin6_addr);
		len = sizeof(*s6);
	} else {
		struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;

		family = s4->sin_family = AF_INET;
		s4->sin_port = htons((uint16_t)port);
		inet_pton(AF_INET, addr, &s4->sin_addr);
		len = sizeof(*s4);
	}
	srv->lfd = socket(family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (srv->lfd < 0) {
		fprintf(stderr, "echo: cannot create a socket: %s\n",
			strerror(errno));
		return 1;
	}
	setsockopt(srv->lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(srv->lfd, (struct sockaddr *)&ss, len) ||
	    listen(srv->lfd, SOMAXCONN)) {
		fprintf(stderr, "echo: cannot listen on %s port %d: %s\n",
			addr, port, strerror(errno));
		return 1;
	}
	len = sizeof(ss);
	getsockname(srv->lfd, (struct sockaddr *)&ss, &len);
	if (family == AF_INET6) {
		struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;

		inet_ntop(AF_INET6, &s6->sin6_addr, shown, sizeof(shown));
		printf("listening on [%s]:%u\n", shown, ntohs(s6->sin6_port));
	} else {
		struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;

		inet_ntop(AF_INET, &s4->sin_addr, shown, sizeof(shown));
		printf("listening on %s:%u\n", shown, ntohs(s4->sin_port));
	}
	fflush(stdout);
	return 0;
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

int main(int argc, char **argv)
{
	struct server srv = { .lfd = -1, .sigfd = -1 };
	struct rt_config cfg = { 0 };
	const char *addr = "127.0.0.1";
	unsigned char probe[sizeof(struct in6_addr)];
	sigset_t sigs;
	long port = DEFAULT_PORT, v;
	int opt, ret;

	while ((opt = getopt(argc, argv, "p:l:t:h")) != -1) {
		switch (opt) {
		case 'p':
			port = parse_num(optarg, 0, 65535);
			if (port < 0) {
				fprintf(stderr, "echo: bad port '%s': expected "
					"a number from 0 to 65535\n", optarg);
				return 2;
			}
			break;
		case 'l':
			if (inet_pton(AF_INET, optarg, probe) != 1 &&
			    inet_pton(AF_INET6, optarg, probe) != 1) {
				fprintf(stderr, "echo: bad address '%s': "
					"expected an IPv4 or IPv6 address\n",
					optarg);
				return 2;
			}
			addr = optarg;
			break;
		case 't':
			v = parse_num(optarg, 1, 1024);
			if (v < 0) {
				fprintf(stderr, "echo: bad vcore count '%s': "
					"expected a number from 1 to 1024\n",
					optarg);
				return 2;
			}
			cfg.nr_vcores = (unsigned)v;
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "echo: unexpected argument '%s'\n", argv[optind]);
		usage(stderr);
		return 2;
	}

	raise_fd_limit();
	signal(SIGPIPE, SIG_IGN); /* a peer gone mid-send is an error return */
	/* Blocked here, so in every thread the runtime starts: they arrive
	 * only through the signalfd. */
	sigemptyset(&sigs);
	sigaddset(&sigs, SIGINT);
	sigaddset(&sigs, SIGTERM);
	pthread_sigmask(SIG_BLOCK, &sigs, NULL);
	srv.sigfd = signalfd(-1, &sigs, SFD_CLOEXEC);
	if (srv.sigfd < 0) {
		fprintf(stderr, "echo: cannot create a signalfd: %s\n",
			strerror(errno));
		return 1;
	}
	if (open_listener(&srv, addr, (int)port))
		return 1;
	ret = rt_main(&cfg, server_main, &srv);
	if (ret < 0) {
		fprintf(stderr, "echo: cannot start the runtime: %s\n",
			strerror(-ret));
		return 1;
	}
	close(srv.lfd);
	close(srv.sigfd);
	return ret;
}
