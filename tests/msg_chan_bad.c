/* msg_chan_bad.c - bad input from a hostile peer: the test plays the
 * opener by hand, from the layout and wire format documented in chan.h,
 * against chan_accept(). Malformed open requests (short, no descriptors,
 * too many, an unsealed or mis-sized memfd, a forged header, a pipe for an
 * eventfd, an unterminated name, a peer that hangs up) are refused with a
 * reason and leak no descriptor. On an accepted channel, forged messages
 * (a length larger than the slot or the buffer, a reference outside the
 * buffer or not where the next payload must be, unknown kinds) give
 * -EBADMSG and later good messages still arrive; a forged ring geometry,
 * ring index or buffer head gives -EPROTO or -EBADMSG, never a crash; and
 * a peer that disappears gives -ECONNRESET. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <atoll/chan.h>

#include "harness.h"

#define NSLOTS 8
#define DATA 4096

static char dir[64];
static struct chan_listener *lst;

static int count_fds(void)
{
	DIR *d = opendir("/proc/self/fd");
	int n = 0;

	if (!d)
		return -1;
	while (readdir(d))
		n++;
	closedir(d);
	return n;
}

/* ---- the hostile opener -------------------------------------------------------- */

struct hostile {
	struct chan_region_hdr h;
	int memfd;
	int efd[4];
	unsigned char *base;
	int sock;
};

/* The layout, computed from chan.h's description alone. */
static void layout(struct chan_region_hdr *h, uint32_t nslots, uint32_t data)
{
	uint64_t page = (uint64_t)sysconf(_SC_PAGESIZE);
	uint64_t lane = 128 + ring_spsc_size(nslots) + data;

	memset(h, 0, sizeof(*h));
	h->magic = CHAN_MAGIC;
	h->version = CHAN_VERSION;
	h->hdr_size = 64;
	h->nslots = nslots;
	h->data_size = data;
	h->lane_off[0] = 128;
	h->lane_off[1] = 128 + lane;
	h->lane_size = lane;
	h->map_off = (128 + 2 * lane + page - 1) / page * page;
	h->map_size = 0;
	h->total_size = h->map_off;
}

static struct ring_spsc *lane_ring(struct hostile *x, int l)
{
	return (struct ring_spsc *)(x->base + x->h.lane_off[l] + 128);
}

static struct chan_lane *lane_head(struct hostile *x, int l)
{
	return (struct chan_lane *)(x->base + x->h.lane_off[l]);
}

static unsigned char *lane_data(struct hostile *x, int l)
{
	return x->base + x->h.lane_off[l] + 128 + ring_spsc_size(NSLOTS);
}

static void hostile_make(struct hostile *x, bool seal)
{
	layout(&x->h, NSLOTS, DATA);
	x->memfd = memfd_create("hostile", MFD_CLOEXEC | MFD_ALLOW_SEALING);
	CHECK(x->memfd >= 0);
	CHECK_OK(ftruncate(x->memfd, (off_t)x->h.total_size));
	x->base = mmap(NULL, x->h.total_size, PROT_READ | PROT_WRITE,
		       MAP_SHARED, x->memfd, 0);
	CHECK(x->base != MAP_FAILED);
	memcpy(x->base, &x->h, sizeof(x->h));
	for (int l = 0; l < 2; l++)
		CHECK_OK(ring_spsc_init(lane_ring(x, l),
					ring_spsc_size(NSLOTS), NSLOTS));
	if (seal)
		CHECK_OK(fcntl(x->memfd, F_ADD_SEALS,
			       F_SEAL_SHRINK | F_SEAL_GROW));
	for (int i = 0; i < 4; i++) {
		x->efd[i] = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
		CHECK(x->efd[i] >= 0);
	}
	x->sock = -1;
}

static void hostile_free(struct hostile *x)
{
	munmap(x->base, x->h.total_size);
	close(x->memfd);
	for (int i = 0; i < 4; i++)
		close(x->efd[i]);
	if (x->sock >= 0)
		close(x->sock);
}

static void good_req(struct chan_open_req *req, const struct hostile *x)
{
	memset(req, 0, sizeof(*req));
	req->magic = CHAN_OPEN_MAGIC;
	req->version = CHAN_VERSION;
	req->size = sizeof(*req);
	req->region_size = x->h.total_size;
	strcpy(req->from_cell, "evil");
	strcpy(req->to_name, "victim");
}

static int connect_victim(void)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int s = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);

	CHECK(s >= 0);
	CHECK_OK(chan_rendezvous_path(sa.sun_path, sizeof(sa.sun_path),
				      "victim"));
	CHECK_OK(connect(s, (struct sockaddr *)&sa, sizeof(sa)));
	return s;
}

static void send_req(int s, const void *req, size_t len, const int *fds,
		     int nfds)
{
	union {
		char buf[CMSG_SPACE(sizeof(int) * 8)];
		struct cmsghdr align;
	} u;
	char *cbuf = u.buf;
	struct iovec iov = { (void *)(uintptr_t)req, len };
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1 };

	memset(&u, 0, sizeof(u));
	if (nfds) {
		struct cmsghdr *cm;

		mh.msg_control = cbuf;
		mh.msg_controllen = CMSG_SPACE(sizeof(int) * (size_t)nfds);
		cm = (struct cmsghdr *)(void *)cbuf;
		cm->cmsg_level = SOL_SOCKET;
		cm->cmsg_type = SCM_RIGHTS;
		cm->cmsg_len = CMSG_LEN(sizeof(int) * (size_t)nfds);
		memcpy(CMSG_DATA(cm), fds, sizeof(int) * (size_t)nfds);
	}
	CHECK_EQ(sendmsg(s, &mh, MSG_NOSIGNAL), (long long)len);
}

/* ---- the victim: chan_accept on a thread ------------------------------------- */

struct acc {
	pthread_t th;
	int result;
	struct chan *c;
};

static void *acceptor(void *arg)
{
	struct acc *a = arg;

	a->result = chan_accept(lst, &a->c, NULL);
	return NULL;
}

static void acc_start(struct acc *a)
{
	a->c = NULL;
	CHECK_EQ(pthread_create(&a->th, NULL, acceptor, a), 0);
}

/* Read the victim's reply; returns its status. */
static int read_rep(int s)
{
	struct chan_open_rep rep;
	ssize_t n = recv(s, &rep, sizeof(rep), 0);

	CHECK_EQ(n, (long long)sizeof(rep));
	CHECK_EQ(rep.magic, CHAN_OPEN_MAGIC);
	CHECK(memchr(rep.reason, '\0', sizeof(rep.reason)) != NULL);
	if (rep.status)
		printf("  refused (%d): %s\n", rep.status, rep.reason);
	return rep.status;
}

/* One malformed open: what the victim's chan_accept returns (the reply
 * must say the same). */
enum bad_kind {
	BAD_SHORT, BAD_NOFDS, BAD_TOOMANY, BAD_UNSEALED, BAD_HEADER,
	BAD_SIZE, BAD_PIPE, BAD_NAME, BAD_MAGIC, BAD_HANGUP,
};

static int bad_open(enum bad_kind kind)
{
	struct chan_open_req req;
	struct hostile x;
	struct acc a;
	int fds[8], nfds = CHAN_OPEN_NFDS, pfd[2] = { -1, -1 }, st, s;

	hostile_make(&x, kind != BAD_UNSEALED);
	good_req(&req, &x);
	fds[0] = x.memfd;
	for (int i = 0; i < 4; i++)
		fds[1 + i] = x.efd[i];
	switch (kind) {
	case BAD_NOFDS: nfds = 0; break;
	case BAD_TOOMANY:
		nfds = 7;
		fds[5] = x.efd[0];
		fds[6] = x.efd[1];
		break;
	case BAD_HEADER: {
		struct chan_region_hdr *h = (struct chan_region_hdr *)x.base;

		h->lane_off[1] += 64;
		break;
	}
	case BAD_SIZE: req.region_size += 4096; break;
	case BAD_PIPE:
		CHECK_OK(pipe(pfd));
		fds[3] = pfd[0];
		break;
	case BAD_NAME: memset(req.from_cell, 'a', sizeof(req.from_cell)); break;
	case BAD_MAGIC: req.magic ^= 1; break;
	default: break;
	}
	acc_start(&a);
	s = connect_victim();
	if (kind == BAD_HANGUP) {
		close(s);
		s = -1;
	} else {
		send_req(s, &req, kind == BAD_SHORT ? 10 : sizeof(req), fds,
			 nfds);
	}
	pthread_join(a.th, NULL);
	CHECK(a.c == NULL);
	if (s >= 0) {
		st = read_rep(s);
		CHECK_EQ(st, a.result);
		close(s);
	}
	if (pfd[0] >= 0) {
		close(pfd[0]);
		close(pfd[1]);
	}
	hostile_free(&x);
	return a.result;
}

static void test_bad_opens(void)
{
	int before = count_fds();

	CHECK_EQ(bad_open(BAD_SHORT), -EPROTO);
	CHECK_EQ(bad_open(BAD_NOFDS), -EPROTO);
	CHECK_EQ(bad_open(BAD_TOOMANY), -EPROTO);
	CHECK_EQ(bad_open(BAD_UNSEALED), -EPROTO);
	CHECK_EQ(bad_open(BAD_HEADER), -EPROTO);
	CHECK_EQ(bad_open(BAD_SIZE), -EPROTO);
	CHECK_EQ(bad_open(BAD_PIPE), -EPROTO);
	CHECK_EQ(bad_open(BAD_NAME), -EPROTO);
	CHECK_EQ(bad_open(BAD_MAGIC), -EPROTO);
	CHECK_EQ(bad_open(BAD_HANGUP), -ECONNRESET);
	/* Every descriptor received with a refused request was closed. */
	CHECK_EQ(count_fds(), before);
}

/* ---- forged traffic on an accepted channel --------------------------------------- */

/* Push a raw slot into lane 0 (we are its writer). */
static void push_raw(struct hostile *x, uint32_t len, uint16_t kind,
		     uint16_t reserved, uint64_t off, const void *inl)
{
	struct chan_slot s;

	memset(&s, 0, sizeof(s));
	s.len = len;
	s.kind = kind;
	s.reserved = reserved;
	if (kind == CHAN_KIND_REF)
		s.u.off = off;
	else if (inl)
		memcpy(s.u.inline_data, inl, len < 56 ? len : 56);
	CHECK_OK(ring_spsc_push(lane_ring(x, 0), &s));
}

static void test_forged_traffic(void)
{
	struct chan_open_req req;
	struct chan_stats st;
	struct hostile x;
	struct acc a;
	unsigned char buf[DATA + 64];
	struct iovec v = { buf, sizeof(buf) };
	const void *p;
	int fds[5];
	ssize_t r;

	hostile_make(&x, true);
	good_req(&req, &x);
	fds[0] = x.memfd;
	for (int i = 0; i < 4; i++)
		fds[1 + i] = x.efd[i];
	acc_start(&a);
	x.sock = connect_victim();
	send_req(x.sock, &req, sizeof(req), fds, 5);
	pthread_join(a.th, NULL);
	CHECK_EQ(a.result, 0);
	CHECK_EQ(read_rep(x.sock), 0);

	/* Malformed messages, each dropped with -EBADMSG. */
	push_raw(&x, 57, CHAN_KIND_INLINE, 0, 0, NULL);	/* > slot */
	push_raw(&x, 4, 3, 0, 0, NULL);			/* unknown kind */
	push_raw(&x, 4, 0, 0, 0, NULL);			/* kind 0 */
	push_raw(&x, 4, CHAN_KIND_INLINE, 1, 0, NULL);	/* reserved set */
	push_raw(&x, DATA + 1, CHAN_KIND_REF, 0, 0, NULL);	/* > buffer */
	push_raw(&x, 100, CHAN_KIND_REF, 0, DATA, NULL);	/* outside */
	push_raw(&x, 100, CHAN_KIND_REF, 0, 64, NULL);	/* not at 0 */
	push_raw(&x, 0, CHAN_KIND_REF, 0, 0, NULL);		/* empty ref */
	CHECK_EQ(chan_read(a.c, buf, sizeof(buf), 0), -EBADMSG);
	CHECK_EQ(chan_read(a.c, buf, sizeof(buf), 0), -EBADMSG);
	CHECK_EQ(chan_peek(a.c, &p, 0), -EBADMSG);
	CHECK_EQ(chan_read_batch(a.c, &v, 1, 0), -EBADMSG);
	for (int i = 0; i < 4; i++)
		CHECK_EQ(chan_read(a.c, buf, sizeof(buf), 0), -EBADMSG);
	CHECK_EQ(chan_read(a.c, buf, sizeof(buf), CHAN_DONTWAIT), -EAGAIN);

	/* Good ones still arrive: inline, then by reference at 0, then a
	 * forged offset 0 where the next payload must be at 128, then the
	 * right one. */
	push_raw(&x, 5, CHAN_KIND_INLINE, 0, 0, "hello");
	memset(lane_data(&x, 0), 0xab, 100);
	push_raw(&x, 100, CHAN_KIND_REF, 0, 0, NULL);
	push_raw(&x, 100, CHAN_KIND_REF, 0, 0, NULL);
	memset(lane_data(&x, 0) + 128, 0xcd, 100);
	push_raw(&x, 100, CHAN_KIND_REF, 0, 128, NULL);
	CHECK_EQ(chan_read(a.c, buf, sizeof(buf), 0), 5);
	CHECK(memcmp(buf, "hello", 5) == 0);
	CHECK_EQ(chan_read(a.c, buf, sizeof(buf), 0), 100);
	CHECK_EQ(buf[99], 0xab);
	CHECK_EQ(chan_read(a.c, buf, sizeof(buf), 0), -EBADMSG);
	CHECK_EQ(chan_read(a.c, buf, sizeof(buf), 0), 100);
	CHECK_EQ(buf[0], 0xcd);
	chan_stats(a.c, &st);
	CHECK_EQ(st.bad, 9);
	CHECK_EQ(st.received, 3);
	/* It released what it read: data_head moved by 2 x 128. */
	CHECK_EQ(lane_head(&x, 0)->rd.data_head, 256);

	/* A forged ring geometry: -EPROTO, no access outside the ring. */
	push_raw(&x, 1, CHAN_KIND_INLINE, 0, 0, "z");
	lane_ring(&x, 0)->geom.nslots = 1u << 20;
	CHECK_EQ(chan_read(a.c, buf, sizeof(buf), 0), -EPROTO);
	lane_ring(&x, 0)->geom.nslots = NSLOTS;
	CHECK_EQ(chan_read(a.c, buf, sizeof(buf), 0), 1);
	lane_ring(&x, 1)->geom.nslots = 2;
	CHECK_EQ(chan_write(a.c, buf, 1, 0), -EPROTO);
	lane_ring(&x, 1)->geom.nslots = NSLOTS;

	/* A forged tail: 1000 "messages" in an 8-slot ring. Each read
	 * gives a stale message or -EBADMSG; nothing crashes. */
	lane_ring(&x, 0)->prod.tail += 1000;
	for (int i = 0; i < 1000; i++) {
		r = chan_read(a.c, buf, sizeof(buf), CHAN_DONTWAIT);
		CHECK(r == -EBADMSG || (r >= 0 && r <= DATA));
	}
	CHECK_EQ(chan_read(a.c, buf, sizeof(buf), CHAN_DONTWAIT), -EAGAIN);

	/* A forged data_head from us as lane 1's reader: the victim's
	 * writer finds its buffer full, looks again, sees an impossible
	 * head and says -EPROTO. */
	for (;;) {
		r = chan_write(a.c, buf, 1000, CHAN_DONTWAIT);
		if (r == -EAGAIN)
			break;
		CHECK_EQ(r, 1000);
	}
	lane_head(&x, 1)->rd.data_head = 1ull << 40;
	CHECK_EQ(chan_write(a.c, buf, 1000, CHAN_DONTWAIT), -EPROTO);

	/* The peer disappears without closing: -ECONNRESET. */
	close(x.sock);
	x.sock = -1;
	CHECK_EQ(chan_read(a.c, buf, sizeof(buf), 0), -ECONNRESET);
	chan_close(a.c);
	hostile_free(&x);
}

static void test_oversized(void)
{
	struct chan_config cfg = { .nslots = 4, .data_size = 4096 };
	struct chan *a, *b;
	static unsigned char big[1 << 20];

	CHECK_OK(chan_pair(&a, &b, &cfg));
	CHECK_EQ(chan_write(a, big, 4097, 0), -EMSGSIZE);
	CHECK_EQ(chan_write(a, big, sizeof(big), 0), -EMSGSIZE);
	CHECK_EQ(chan_write(a, big, SIZE_MAX, 0), -EMSGSIZE);
	CHECK_EQ(chan_write(a, NULL, 10, 0), -EINVAL);
	CHECK_EQ(chan_read(b, NULL, 10, 0), -EINVAL);
	CHECK_EQ(chan_read(b, big, 10, CHAN_DONTWAIT), -EAGAIN);
	chan_close(a);
	chan_close(b);
}

int main(void)
{
	char tmpl[] = "/tmp/atoll-chan-bad-XXXXXX";

	CHECK(mkdtemp(tmpl) != NULL);
	snprintf(dir, sizeof(dir), "%s", tmpl);
	setenv("ATOLL_CHAN_DIR", dir, 1);
	unsetenv("ATOLL_SOCKET");
	alarm(50);
	CHECK_OK(chan_listen(&lst, "victim"));
	test_bad_opens();
	test_forged_traffic();
	test_oversized();
	chan_listener_close(lst);
	rmdir(dir);
	printf("msg_chan_bad: ok\n");
	return TEST_PASS;
}
