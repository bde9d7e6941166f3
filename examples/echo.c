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
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <atoll/net.h>
#include <atoll/rt.h>
#include <atoll/sys.h>

#define DEFAULT_PORT 7007
#define CONN_BUF 8192

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

static void echo_conn(int fd, void *arg)
{
	char buf[CONN_BUF];
	ssize_t n;

	(void)arg;
	/* Until the peer closes or the connection fails (reset, timeout):
	 * either way it is over, quietly. */
	while ((n = sys_recv(fd, buf, sizeof(buf), 0)) > 0)
		if (net_send_all(fd, buf, (size_t)n))
			break;
}

static int server_main(void *arg)
{
	struct net_counters ctr = { 0 };
	struct net_serve_config cfg = {
		.lfd = *(int *)arg, .conn = echo_conn, .name = "echo",
		.counters = &ctr,
	};
	int err = net_serve(&cfg);

	fprintf(stderr, "echo: served %llu connections\n",
		(unsigned long long)ctr.accepted);
	return err ? 1 : 0;
}

int main(int argc, char **argv)
{
	struct rt_config cfg = { 0 };
	const char *addr = "127.0.0.1";
	char shown[64];
	long port = DEFAULT_PORT, v;
	int opt, ret, lfd;

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
			if (!net_addr_valid(optarg)) {
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

	/* Before rt_main, so every vcore thread inherits the mask. */
	ret = net_block_stop_signals();
	if (ret) {
		fprintf(stderr, "echo: cannot block signals: %s\n",
			strerror(-ret));
		return 1;
	}
	lfd = net_listen(addr, (int)port, shown, sizeof(shown));
	if (lfd < 0) {
		fprintf(stderr, "echo: cannot listen on %s port %ld: %s\n",
			addr, port, strerror(-lfd));
		return 1;
	}
	printf("listening on %s\n", shown);
	fflush(stdout);
	ret = rt_main(&cfg, server_main, &lfd);
	if (ret < 0) {
		fprintf(stderr, "echo: cannot start the runtime: %s\n",
			strerror(-ret));
		close(lfd);
		return 1;
	}
	return ret;
}
