/* rt_echo.c - a TCP echo server on the runtime (one uthread per
 * connection, as examples/echo.c) under 200+ concurrent clients: uthread
 * clients and a few plain-thread clients (the blocking fallback) send
 * messages of random length and check every byte that comes back; some
 * disconnect mid-message (a close, or a reset) or right after connecting.
 * Afterwards no connection uthread is left and the process holds exactly
 * the descriptors it held before. */
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atoll/clock.h>
#include <atoll/rt.h>
#include <atoll/sys.h>
#include <atoll/uthread.h>
#include <atoll/vcore.h>

#include "harness.h"

#define NR_CLIENTS 256          /* uthread clients, all at once */
#define NR_THREAD_CLIENTS 4     /* plain pthread clients */
#define MAX_MSG (24 * 1024)
#define SERVER_BUF 4096

/* ---- the server ----------------------------------------------------------- */

struct server {
	int lfd;
	int stopping;           /* atomic */
	int accepted;           /* atomic */
	int live;               /* atomic: connection uthreads running */
	int peak;               /* atomic: most live at once */
	struct uthread *acceptor;
};

struct conn {
	struct server *srv;
	int fd;
};

static int send_all(int fd, const char *p, size_t n)
{
	while (n) {
		ssize_t r = sys_send(fd, p, n, MSG_NOSIGNAL);

		if (r < 0)
			return (int)r;
		CHECK(r > 0);
		p += r;
		n -= (size_t)r;
	}
	return 0;
}

static void *conn_main(void *arg)
{
	struct conn *c = arg;
	struct server *srv = c->srv;
	char buf[SERVER_BUF];
	ssize_t n;
	int fd = c->fd;

	free(c);
	while ((n = sys_recv(fd, buf, sizeof(buf), 0)) > 0)
		if (send_all(fd, buf, (size_t)n))
			break;
	/* A reset or broken pipe from a client that left: just as final. */
	CHECK(n >= 0 || n == -ECONNRESET || n == -EPIPE || n == -ETIMEDOUT);
	CHECK_EQ(sys_close(fd), 0);
	/* Release: our close before the main uthread's fd count. */
	__atomic_fetch_sub(&srv->live, 1, __ATOMIC_RELEASE);
	return NULL;
}

static void *acceptor_main(void *arg)
{
	struct server *srv = arg;
	struct uthread_attr cattr = { .detached = 1, .name = "conn" };

	for (;;) {
		int fd = sys_accept(srv->lfd, NULL, NULL, SOCK_CLOEXEC);
		struct conn *c;
		int live, peak;

		if (fd < 0) {
			if (__atomic_load_n(&srv->stopping, __ATOMIC_ACQUIRE))
				break;
			CHECK(fd == -ECONNABORTED || fd == -EINTR);
			continue;
		}
		c = malloc(sizeof(*c));
		CHECK(c != NULL);
		c->srv = srv;
		c->fd = fd;
		live = __atomic_add_fetch(&srv->live, 1, __ATOMIC_RELAXED);
		peak = __atomic_load_n(&srv->peak, __ATOMIC_RELAXED);
		while (live > peak &&
		       !__atomic_compare_exchange_n(&srv->peak, &peak, live, 0,
						    __ATOMIC_RELAXED,
						    __ATOMIC_RELAXED))
			;
		__atomic_fetch_add(&srv->accepted, 1, __ATOMIC_RELAXED);
		CHECK_OK(uthread_create(NULL, &cattr, conn_main, c));
	}
	return NULL;
}

static void server_start(struct server *srv, struct sockaddr_in *sa)
{
	struct uthread_attr aattr = { .prio = UTH_PRIO_HIGH, .name = "acceptor" };
	socklen_t len = sizeof(*sa);
	int one = 1;

	memset(srv, 0, sizeof(*srv));
	srv->lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	CHECK_OK(srv->lfd);
	CHECK_OK(setsockopt(srv->lfd, SOL_SOCKET, SO_REUSEADDR, &one,
			    sizeof(one)));
	memset(sa, 0, sizeof(*sa));
	sa->sin_family = AF_INET;
	sa->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	CHECK_OK(bind(srv->lfd, (struct sockaddr *)sa, sizeof(*sa)));
	CHECK_OK(listen(srv->lfd, 4096));
	CHECK_OK(getsockname(srv->lfd, (struct sockaddr *)sa, &len));
	CHECK(ntohs(sa->sin_port) != 0);
	CHECK_OK(uthread_create(&srv->acceptor, &aattr, acceptor_main, srv));
}

static void server_stop(struct server *srv)
{
	__atomic_store_n(&srv->stopping, 1, __ATOMIC_RELEASE);
	/* The pending accept fails at once on a shut-down listener. */
	CHECK_OK(shutdown(srv->lfd, SHUT_RDWR));
	CHECK_OK(uthread_join(srv->acceptor, NULL));
	CHECK_EQ(sys_close(srv->lfd), 0);
}

/* ---- clients --------------------------------------------------------------- */

enum client_kind {
	CLIENT_FULL,            /* every message whole, then a clean close */
	CLIENT_CUT,             /* closes in the middle of its last message */
	CLIENT_RESET,           /* resets in the middle of its last message */
	CLIENT_IDLE,            /* connects and closes at once */
};

struct client {
	int id;
	enum client_kind kind;
	int msgs;
	struct sockaddr_in sa;
	uint64_t bytes;         /* echoed and checked */
	int done;
};

static uint64_t rnd(uint64_t *s)
{
	/* xorshift64*: every client its own reproducible stream */
	*s ^= *s >> 12;
	*s ^= *s << 25;
	*s ^= *s >> 27;
	return *s * 2685821657736338717ull;
}

static void recv_all(int fd, char *p, size_t n)
{
	while (n) {
		ssize_t r = sys_recv(fd, p, n, 0);

		CHECK(r > 0);
		p += r;
		n -= (size_t)r;
	}
}

static int client_connect(const struct sockaddr_in *sa)
{
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	int r, one = 1;

	CHECK_OK(fd);
	CHECK_OK(setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one)));
	r = sys_connect(fd, (const struct sockaddr *)sa, sizeof(*sa));
	if (r) {
		fprintf(stderr, "client connect: %s\n", strerror(-r));
		CHECK_EQ(r, 0);
	}
	return fd;
}

static void client_run(struct client *cl)
{
	uint64_t seed = 0x9e3779b97f4a7c15ull * (uint64_t)(cl->id + 1);
	char *out = malloc(MAX_MSG), *in = malloc(MAX_MSG);
	int fd = client_connect(&cl->sa);

	CHECK(out && in);
	for (int m = 0; m < cl->msgs && cl->kind != CLIENT_IDLE; m++) {
		size_t len = 1 + rnd(&seed) % MAX_MSG;
		int last = m == cl->msgs - 1;

		for (size_t i = 0; i < len; i++)
			out[i] = (char)rnd(&seed);
		if (last && cl->kind != CLIENT_FULL) {
			/* Part of a message, then away without reading the
			 * echo. */
			CHECK_EQ(send_all(fd, out, len / 2 + 1), 0);
			if (cl->kind == CLIENT_RESET) {
				struct linger lg = { .l_onoff = 1, .l_linger = 0 };

				CHECK_OK(setsockopt(fd, SOL_SOCKET, SO_LINGER,
						    &lg, sizeof(lg)));
			}
			break;
		}
		CHECK_EQ(send_all(fd, out, len), 0);
		memset(in, 0, len);
		recv_all(fd, in, len);
		CHECK(memcmp(in, out, len) == 0);
		cl->bytes += len;
	}
	if (cl->kind == CLIENT_FULL) {
		/* A clean close: the server sees the end of the stream. */
		char c;

		CHECK_OK(shutdown(fd, SHUT_WR));
		CHECK_EQ(sys_recv(fd, &c, 1, 0), 0);
	}
	CHECK_EQ(sys_close(fd), 0);
	free(out);
	free(in);
	cl->done = 1;
}

static void *client_uthread(void *arg)
{
	client_run(arg);
	return NULL;
}

static void *client_pthread(void *arg)
{
	CHECK(!rt_active()); /* the blocking fallback */
	client_run(arg);
	return NULL;
}

static long join_thread(void *arg)
{
	return -pthread_join(*(pthread_t *)arg, NULL);
}

/* ---- the test ---------------------------------------------------------------- */

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

static int echo_main(void *arg)
{
	/* Without io_uring every blocked call holds one of a bounded pool of
	 * offload workers: far fewer connections fit. */
	int nuth = sys_uses_io_uring() ? NR_CLIENTS : 12;
	int nclients = nuth + NR_THREAD_CLIENTS;
	struct client *cl = calloc((size_t)nclients, sizeof(*cl));
	struct uthread **u = calloc(NR_CLIENTS, sizeof(*u));
	pthread_t t[NR_THREAD_CLIENTS];
	struct server srv;
	struct sockaddr_in sa;
	uint64_t deadline, bytes = 0;
	int fds0, full = 0;

	(void)arg;
	CHECK(cl && u);
	fds0 = count_fds();
	server_start(&srv, &sa);
	for (int i = 0; i < nclients; i++) {
		cl[i].id = i;
		cl[i].sa = sa;
		cl[i].msgs = 1 + (int)test_scale(12) + i % 3;
		switch (i % 8) {
		case 3: cl[i].kind = CLIENT_CUT; break;
		case 5: cl[i].kind = CLIENT_RESET; break;
		case 7: cl[i].kind = CLIENT_IDLE; break;
		default: cl[i].kind = CLIENT_FULL; break;
		}
	}
	for (int i = 0; i < nuth; i++)
		CHECK_OK(uthread_create(&u[i], NULL, client_uthread, &cl[i]));
	for (int i = 0; i < NR_THREAD_CLIENTS; i++)
		CHECK_EQ(pthread_create(&t[i], NULL, client_pthread,
					&cl[nuth + i]), 0);
	for (int i = 0; i < nuth; i++)
		CHECK_OK(uthread_join(u[i], NULL));
	for (int i = 0; i < NR_THREAD_CLIENTS; i++)
		CHECK_OK(sys_offload(join_thread, &t[i]));
	for (int i = 0; i < nclients; i++) {
		CHECK(cl[i].done);
		bytes += cl[i].bytes;
		full += cl[i].kind == CLIENT_FULL;
	}
	CHECK(bytes > 0);
	CHECK(full > 0);

	/* Every connection's uthread ends, the cut and reset ones too. */
	deadline = now_ns() + 20 * NSEC_PER_SEC;
	while (__atomic_load_n(&srv.live, __ATOMIC_ACQUIRE) &&
	       now_ns() < deadline)
		uthread_sleep_ns(NSEC_PER_MSEC);
	CHECK_EQ(__atomic_load_n(&srv.live, __ATOMIC_ACQUIRE), 0);
	CHECK_EQ(__atomic_load_n(&srv.accepted, __ATOMIC_RELAXED), nclients);
	/* They were served at once, not one after the other. */
	CHECK(__atomic_load_n(&srv.peak, __ATOMIC_RELAXED) > 1);
	server_stop(&srv);
	CHECK_EQ(count_fds(), fds0);
	printf("%d clients, %llu bytes echoed, at most %d connections at "
	       "once\n", nclients, (unsigned long long)bytes, srv.peak);
	free(cl);
	free(u);
	return 0;
}

int main(void)
{
	struct rt_config four = { .nr_vcores = 4 };

	CHECK_EQ(rt_main(&four, echo_main, NULL), 0);
	return TEST_PASS;
}
