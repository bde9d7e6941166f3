/* msg_mbox_tcp.c - the intermachine transport over loopback: a proxy in
 * this process, TCP senders (forced, and chosen automatically for an
 * address of "another node"), per-sender order and content for every size
 * class from concurrent uthread senders and a plain thread, the capability
 * checked at the far end (wrong: -EACCES at open), revocation and destroy
 * reported back (-EKEYREVOKED, -EPIPE), MBOX_NONBLOCK, a stopped proxy,
 * an address without a proxy, and malformed bytes sent to the proxy. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atoll/mbox.h>
#include <atoll/rt.h>
#include <atoll/uthread.h>

#include "harness.h"

#define NUTH 3

static struct mbox *mb;
static struct mbox_addr addr;
static struct mbox_cap cap;
static uint32_t per_sender;
static const struct mbox_open_opts tcp = { .transport = MBOX_TRANSPORT_TCP };

static size_t len_of(uint32_t who, uint32_t seq)
{
	static const size_t sz[] = { 8, 48, 49, 300, 1000, MBOX_MSG_MAX };

	return sz[(seq + who) % ARRAY_SIZE(sz)];
}

static void send_seq(uint32_t who, bool nonblock)
{
	unsigned char *b = malloc(MBOX_MSG_MAX);
	struct mbox_sender *s;

	CHECK(b);
	CHECK_OK(mbox_open(&addr, &cap, &tcp, &s));
	CHECK_EQ(mbox_sender_transport(s), MBOX_TRANSPORT_TCP);
	for (uint32_t seq = 0; seq < per_sender; seq++) {
		size_t len = len_of(who, seq);
		int r;

		memcpy(b, &who, 4);
		memcpy(b + 4, &seq, 4);
		for (size_t i = 8; i < len; i++)
			b[i] = (unsigned char)(who * 5 + seq + i);
		while ((r = mbox_send(s, 2, b, len,
				      nonblock ? MBOX_NONBLOCK : 0)) == -EAGAIN)
			CHECK(nonblock);
		CHECK_OK(r);
	}
	mbox_close(s);
	free(b);
}

static void *uth_send(void *arg)
{
	send_seq((uint32_t)(uintptr_t)arg, false);
	return NULL;
}

static void *thr_send(void *arg)
{
	send_seq((uint32_t)(uintptr_t)arg, true);
	return NULL;
}

static int rt_body(void *arg)
{
	struct uthread *u[NUTH];
	pthread_t th;
	uint32_t next[NUTH + 1] = { 0 };
	unsigned char *b = malloc(MBOX_MSG_MAX);
	uint64_t total = (uint64_t)per_sender * (NUTH + 1);

	(void)arg;
	CHECK(b);
	for (uint32_t i = 0; i < NUTH; i++)
		CHECK_OK(uthread_create(&u[i], NULL, uth_send,
					(void *)(uintptr_t)i));
	CHECK_EQ(pthread_create(&th, NULL, thr_send, (void *)(uintptr_t)NUTH),
		 0);
	for (uint64_t k = 0; k < total; k++) {
		struct mbox_hdr h;
		uint32_t who, seq;
		int n = mbox_recv(mb, &h, b, MBOX_MSG_MAX, 20000000000ull);

		CHECK(n >= 8);
		CHECK_EQ(h.type, 2);
		memcpy(&who, b, 4);
		memcpy(&seq, b + 4, 4);
		CHECK(who <= NUTH);
		CHECK_EQ(seq, next[who]);
		CHECK_EQ((size_t)n, len_of(who, seq));
		for (size_t i = 8; i < (size_t)n; i++)
			CHECK_EQ(b[i], (unsigned char)(who * 5 + seq + i));
		next[who]++;
	}
	for (uint32_t i = 0; i < NUTH; i++)
		CHECK_OK(uthread_join(u[i], NULL));
	CHECK_EQ(pthread_join(th, NULL), 0);
	free(b);
	return 0;
}

/* Send until the far end's verdict arrives (messages sent after it are
 * lost, as documented); returns that error. */
static int send_until_error(struct mbox_sender *s)
{
	for (int i = 0; i < 100000; i++) {
		int r = mbox_send(s, 1, &i, sizeof(i), 0);

		if (r)
			return r;
		usleep(100);
	}
	return 0;
}

static void raw_garbage(uint16_t port)
{
	struct sockaddr_in sa = { .sin_family = AF_INET,
				  .sin_port = htons(port) };
	unsigned char junk[56], rep[12];
	int fd;

	inet_pton(AF_INET, "127.0.0.1", &sa.sin_addr);
	/* A bad open: refused with -EPROTO, then closed. */
	fd = socket(AF_INET, SOCK_STREAM, 0);
	CHECK(fd >= 0);
	CHECK_EQ(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	memset(junk, 0x5a, sizeof(junk));
	CHECK_EQ(send(fd, junk, sizeof(junk), MSG_NOSIGNAL), sizeof(junk));
	CHECK_EQ(recv(fd, rep, sizeof(rep), MSG_WAITALL), sizeof(rep));
	CHECK_EQ((int32_t)(rep[4] | rep[5] << 8 | rep[6] << 16 |
			   (uint32_t)rep[7] << 24), -EPROTO);
	CHECK_EQ(recv(fd, rep, sizeof(rep), 0), 0);
	close(fd);
	/* Connect and close at once; connect, half an open, close. */
	fd = socket(AF_INET, SOCK_STREAM, 0);
	CHECK_EQ(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	close(fd);
	fd = socket(AF_INET, SOCK_STREAM, 0);
	CHECK_EQ(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	CHECK_EQ(send(fd, junk, 10, MSG_NOSIGNAL), 10);
	close(fd);
}

/* A valid open followed by a frame with an impossible length. */
static void raw_bad_frame(uint16_t port)
{
	struct sockaddr_in sa = { .sin_family = AF_INET,
				  .sin_port = htons(port) };
	unsigned char open[56] = { 0 }, rep[12], frame[8] = { 0 };
	int fd;

	inet_pton(AF_INET, "127.0.0.1", &sa.sin_addr);
	open[0] = 0x41; open[1] = 0x74; open[2] = 0x4d; open[3] = 0x54;
	open[4] = 1;
	for (int i = 0; i < 8; i++) {
		open[8 + i] = (unsigned char)(addr.node >> (8 * i));
		open[16 + i] = (unsigned char)(addr.incarnation >> (8 * i));
		open[24 + i] = (unsigned char)(addr.id >> (8 * i));
	}
	for (int i = 0; i < 4; i++)
		open[32 + i] = (unsigned char)(addr.pid >> (8 * i));
	memcpy(open + 40, cap.b, 16);
	fd = socket(AF_INET, SOCK_STREAM, 0);
	CHECK_EQ(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	CHECK_EQ(send(fd, open, sizeof(open), MSG_NOSIGNAL), sizeof(open));
	CHECK_EQ(recv(fd, rep, sizeof(rep), MSG_WAITALL), sizeof(rep));
	CHECK_EQ(rep[4] | rep[5] | rep[6] | rep[7], 0); /* status 0 */
	frame[2] = 0xff; frame[3] = 0xff;   /* len 65535 */
	CHECK_EQ(send(fd, frame, sizeof(frame), MSG_NOSIGNAL), sizeof(frame));
	CHECK_EQ(recv(fd, rep, 8, MSG_WAITALL), 8);
	CHECK_EQ((int32_t)(rep[4] | rep[5] << 8 | rep[6] << 16 |
			   (uint32_t)rep[7] << 24), -EPROTO);
	close(fd);
}

int main(void)
{
	struct rt_config cfg = { .nr_vcores = 2, .no_pin = 1 };
	struct mbox_proxy *px;
	struct mbox_sender *s;
	struct mbox_cap bad, newcap;
	struct mbox_addr far, noproxy;
	struct mbox_hdr h;
	char b[64];

	signal(SIGPIPE, SIG_IGN);
	per_sender = (uint32_t)test_scale(4000);
	CHECK_EQ(mbox_proxy_start("no-such-address", 0, &px), -EINVAL);
	CHECK_OK(mbox_proxy_start("127.0.0.1", 0, &px));
	CHECK(mbox_proxy_port(px) != 0);
	CHECK_OK(mbox_create("tcp", &(struct mbox_opts){ .nslots = 256 },
			     &mb));
	mbox_addr(mb, &addr);
	mbox_cap(mb, &cap);
	/* The proxy made itself this process's endpoint. */
	CHECK(!strcmp(addr.proxy_host, "127.0.0.1"));
	CHECK_EQ(addr.proxy_port, mbox_proxy_port(px));

	CHECK_EQ(rt_main(&cfg, rt_body, NULL), 0);

	/* The capability is checked at the far end. */
	bad = cap;
	bad.b[7] ^= 2;
	CHECK_EQ(mbox_open(&addr, &bad, &tcp, &s), -EACCES);
	/* An address of another node goes to TCP by itself; this proxy
	 * does not route further. */
	far = addr;
	far.node ^= 0x5555;
	CHECK_EQ(mbox_open(&far, &cap, NULL, &s), -EHOSTUNREACH);
	noproxy = far;
	noproxy.proxy_port = 0;
	CHECK_EQ(mbox_open(&noproxy, &cap, NULL, &s), -EHOSTUNREACH);

	/* Non-blocking sends and the id the far end gave us. */
	CHECK_OK(mbox_open(&addr, &cap, &tcp, &s));
	CHECK(mbox_sender_id(s) > 0);
	CHECK_OK(mbox_send(s, 3, "xyz", 3, MBOX_NONBLOCK));
	CHECK_EQ(mbox_recv(mb, &h, b, sizeof(b), 5000000000ull), 3);
	CHECK_EQ(h.type, 3);
	CHECK_EQ(h.sender, mbox_sender_id(s));
	CHECK_OK(mbox_sender_check(s));
	CHECK_EQ(mbox_send(s, 3, b, MBOX_MSG_MAX + 1, 0), -EMSGSIZE);

	/* Revocation travels back. */
	CHECK_OK(mbox_revoke(mb, &newcap));
	CHECK_EQ(send_until_error(s), -EKEYREVOKED);
	CHECK_EQ(mbox_send(s, 1, "a", 1, 0), -EKEYREVOKED);
	CHECK_EQ(mbox_sender_check(s), -EKEYREVOKED);
	mbox_close(s);
	CHECK_EQ(mbox_open(&addr, &cap, &tcp, &s), -EKEYREVOKED);
	cap = newcap;
	while (mbox_recv(mb, &h, b, sizeof(b), 0) >= 0)
		;

	raw_garbage(mbox_proxy_port(px));
	raw_bad_frame(mbox_proxy_port(px));

	/* Destroy travels back. */
	CHECK_OK(mbox_open(&addr, &cap, &tcp, &s));
	CHECK_OK(mbox_send(s, 1, "a", 1, 0));
	CHECK_EQ(mbox_recv(mb, &h, b, sizeof(b), 5000000000ull), 1);
	mbox_destroy(mb);
	CHECK_EQ(send_until_error(s), -EPIPE);
	mbox_close(s);

	/* A stopped proxy: its senders get -EPIPE; opens are refused. */
	CHECK_OK(mbox_create("tcp2", NULL, &mb));
	mbox_addr(mb, &addr);
	mbox_cap(mb, &cap);
	CHECK_OK(mbox_open(&addr, &cap, &tcp, &s));
	CHECK_OK(mbox_send(s, 1, "a", 1, 0));
	CHECK_EQ(mbox_recv(mb, &h, b, sizeof(b), 5000000000ull), 1);
	mbox_proxy_stop(px);
	CHECK_EQ(send_until_error(s), -EPIPE);
	mbox_close(s);
	CHECK_EQ(mbox_open(&addr, &cap, &tcp, &s), -ECONNREFUSED);
	mbox_destroy(mb);
	printf("ok\n");
	return 0;
}
