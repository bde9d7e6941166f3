/* rt_net.c - the TCP server scaffold (net.h): clients on plain threads
 * talk to an echo service under net_serve(); connections over max_conns
 * are closed at once and counted; SIGTERM ends the server, which shuts the
 * idle connections still open down (their clients see end of file) and
 * returns only after every connection uthread ended. Also the argument
 * checks of net_listen(). */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atoll/net.h>
#include <atoll/rt.h>
#include <atoll/sys.h>

#include "harness.h"

#define MAX_CONNS 8
#define NR_IDLE (MAX_CONNS - 1)   /* held open until the stop */
#define NR_ROUNDS 200

struct test {
	int lfd;
	int port;
	struct net_counters ctr;
	int served;                   /* atomic: connection callbacks run */
	int serve_ret;
};

static void echo_conn(int fd, void *arg)
{
	struct test *t = arg;
	char buf[512];
	ssize_t n;

	__atomic_fetch_add(&t->served, 1, __ATOMIC_RELAXED);
	while ((n = sys_recv(fd, buf, sizeof(buf), 0)) > 0)
		if (net_send_all(fd, buf, (size_t)n))
			break;
}

static int connect_to(int port)
{
	struct sockaddr_in sa = { .sin_family = AF_INET,
				  .sin_port = htons((uint16_t)port) };
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	CHECK(fd >= 0);
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	CHECK_OK(connect(fd, (struct sockaddr *)&sa, sizeof(sa)));
	return fd;
}

static void roundtrip(int fd, int i)
{
	char out[32], in[32];
	int n = snprintf(out, sizeof(out), "message %d", i);
	ssize_t got = 0;

	CHECK_EQ(send(fd, out, (size_t)n, MSG_NOSIGNAL), n);
	while (got < n) {
		ssize_t r = recv(fd, in + got, sizeof(in) - (size_t)got, 0);

		CHECK(r > 0);
		got += r;
	}
	CHECK(memcmp(in, out, (size_t)n) == 0);
}

/* Reads until end of file; true when the server closed cleanly. */
static int sees_eof(int fd)
{
	char c;

	return recv(fd, &c, 1, 0) == 0;
}

static void *client_main(void *arg)
{
	struct test *t = arg;
	int idle[NR_IDLE], fd, extra, i;

	for (i = 0; i < NR_IDLE; i++) {
		idle[i] = connect_to(t->port);
		roundtrip(idle[i], i);
	}
	/* The last free slot, used hard, then given back. */
	fd = connect_to(t->port);
	for (i = 0; i < NR_ROUNDS; i++)
		roundtrip(fd, i);
	/* Over the limit: the server takes it and closes it at once. */
	extra = connect_to(t->port);
	CHECK(sees_eof(extra));
	close(extra);
	close(fd);
	/* The slot comes back once the server saw that close. */
	while (__atomic_load_n(&t->ctr.live, __ATOMIC_ACQUIRE) > NR_IDLE)
		usleep(1000);
	fd = connect_to(t->port);
	roundtrip(fd, 0);
	close(fd);

	CHECK_OK(kill(getpid(), SIGTERM));
	for (i = 0; i < NR_IDLE; i++) {
		CHECK(sees_eof(idle[i]));
		close(idle[i]);
	}
	return NULL;
}

static int server_main(void *arg)
{
	struct test *t = arg;
	struct net_serve_config cfg = {
		.lfd = t->lfd, .conn = echo_conn, .arg = t, .name = "rt_net",
		.max_conns = MAX_CONNS, .counters = &t->ctr,
	};

	t->serve_ret = net_serve(&cfg);
	return 0;
}

static void check_listen_args(void)
{
	char shown[64];
	int fd;

	CHECK_EQ(net_listen("localhost", 0, NULL, 0), -EINVAL);
	CHECK_EQ(net_listen("127.0.0.1", 70000, NULL, 0), -EINVAL);
	CHECK_EQ(net_listen("1.2.3", 0, NULL, 0), -EINVAL);
	CHECK(!net_addr_valid("::1::2"));
	CHECK(net_addr_valid("::1"));
	fd = net_listen("::1", 0, shown, sizeof(shown));
	if (fd >= 0) {           /* IPv6 may be off in a container */
		CHECK(strncmp(shown, "[::1]:", 6) == 0);
		close(fd);
	}
}

int main(void)
{
	struct test t = { 0 };
	struct rt_config cfg = { .nr_vcores = 2, .no_pin = 1 };
	pthread_t client;
	char shown[64];

	check_listen_args();
	CHECK_OK(net_block_stop_signals());
	t.lfd = net_listen("127.0.0.1", 0, shown, sizeof(shown));
	CHECK(t.lfd >= 0);
	CHECK(strncmp(shown, "127.0.0.1:", 10) == 0);
	t.port = atoi(shown + 10);
	CHECK(t.port > 0);
	CHECK_OK(pthread_create(&client, NULL, client_main, &t));
	CHECK_EQ(rt_main(&cfg, server_main, &t), 0);
	CHECK_OK(pthread_join(client, NULL));

	CHECK_EQ(t.serve_ret, 0);
	CHECK_EQ(t.ctr.live, 0);
	CHECK_EQ(t.ctr.accepted, NR_IDLE + 2);
	CHECK_EQ(t.ctr.refused, 1);
	CHECK_EQ(t.served, NR_IDLE + 2);
	printf("rt_net: %llu accepted, %llu refused, stopped cleanly\n",
	       (unsigned long long)t.ctr.accepted,
	       (unsigned long long)t.ctr.refused);
	return TEST_PASS;
}
