/* msg_mbox_evil.c - a hostile NODE sender. This test speaks the handshake
 * itself (the layouts below mirror src/msg/mbox.c) and then writes its
 * shared ring by hand: a forged sender id is replaced by the connection's,
 * a reserved type is dropped and counted, later good messages still
 * arrive, an impossible length cuts the connection off (counted, the
 * shared state says closed, the socket is shut) without a crash. Bad
 * handshakes (short, wrong magic, wrong version, oversized) are refused
 * with -EPROTO and closed; a good handshake for an unknown mailbox gets
 * -ENOENT. */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <atoll/atomic.h>
#include <atoll/mbox.h>
#include <atoll/ring.h>

#include "harness.h"

#define HS_MAGIC 0x534d7441u
#define CTL_SIZE 128u
#define CTL_STATE_OFF 8u

struct hs_req {
	uint32_t magic;
	uint16_t version;
	uint16_t reserved;
	uint64_t id;
	uint64_t incarnation;
	uint8_t cap[16];
};

struct hs_rep {
	uint32_t magic;
	int32_t status;
	uint32_t sender_id;
	uint32_t nslots;
	uint64_t map_size;
};

static int dial(const struct mbox_addr *a)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int n, fd = socket(AF_UNIX, SOCK_SEQPACKET, 0);

	CHECK(fd >= 0);
	n = snprintf(sa.sun_path + 1, sizeof(sa.sun_path) - 1,
		     "atoll-mbox.%u.%016llx", (unsigned)a->pid,
		     (unsigned long long)a->incarnation);
	CHECK_EQ(connect(fd, (struct sockaddr *)&sa,
			 (socklen_t)(offsetof(struct sockaddr_un, sun_path) +
				     1 + (size_t)n)), 0);
	return fd;
}

/* Send raw bytes as the request; return the reply's status (and fds). */
static int handshake(const struct mbox_addr *a, const void *req, size_t len,
		     struct hs_rep *rep, int fds[2])
{
	union {
		struct cmsghdr h;
		char b[CMSG_SPACE(2 * sizeof(int))];
	} cm;
	struct iovec iov = { rep, sizeof(*rep) };
	struct msghdr msg = { .msg_iov = &iov, .msg_iovlen = 1,
			      .msg_control = cm.b,
			      .msg_controllen = sizeof(cm.b) };
	struct pollfd p;
	int fd = dial(a);
	ssize_t n;

	CHECK_EQ(send(fd, req, len, MSG_NOSIGNAL), (ssize_t)len);
	p.fd = fd;
	p.events = POLLIN;
	CHECK_EQ(poll(&p, 1, 5000), 1);
	n = recvmsg(fd, &msg, 0);
	CHECK_EQ(n, sizeof(*rep));
	CHECK_EQ(rep->magic, HS_MAGIC);
	fds[0] = fds[1] = -1;
	if (rep->status == 0) {
		struct cmsghdr *ch = CMSG_FIRSTHDR(&msg);

		CHECK(ch && ch->cmsg_type == SCM_RIGHTS);
		memcpy(fds, CMSG_DATA(ch), 2 * sizeof(int));
		return fd;      /* keep the connection */
	}
	/* Refused: the listener closes its end. */
	CHECK_EQ(poll(&p, 1, 5000), 1);
	CHECK_EQ(recv(fd, rep, sizeof(*rep), 0), 0);
	close(fd);
	return rep->status;
}

static struct ring_mpsc_slot *slot(struct ring_mpsc *r, uint64_t pos)
{
	return &r->slots[pos & (r->geom.nslots - 1)];
}

/* Write one single-slot message at position pos by hand. */
static void put_msg(struct ring_mpsc *r, uint64_t pos, uint32_t sender,
		    uint16_t type, uint16_t len, const char *data)
{
	struct ring_mpsc_slot *s = slot(r, pos);

	memcpy(s->data, &sender, 4);
	memcpy(s->data + 4, &type, 2);
	memcpy(s->data + 6, &len, 2);
	if (data)
		memcpy(s->data + 8, data, strlen(data));
	store_release(&s->seq, pos + 1);
	store_relaxed(&r->prod.tail, pos + 1);
}

int main(void)
{
	struct mbox *mb;
	struct mbox_addr a;
	struct mbox_cap cap;
	struct hs_req req = { .magic = HS_MAGIC, .version = 1 };
	struct hs_rep rep;
	struct mbox_hdr h;
	struct mbox_stats st;
	int fds[2], fd;
	char buf[MBOX_MSG_MAX], big[200];
	void *map;
	struct ring_mpsc *r;
	uint32_t *state;

	CHECK_OK(mbox_create("evil", NULL, &mb));
	mbox_addr(mb, &a);
	mbox_cap(mb, &cap);
	req.id = a.id;
	req.incarnation = a.incarnation;
	memcpy(req.cap, cap.b, 16);

	/* Bad handshakes. */
	CHECK_EQ(handshake(&a, &req, 10, &rep, fds), -EPROTO);
	req.magic = 1;
	CHECK_EQ(handshake(&a, &req, sizeof(req), &rep, fds), -EPROTO);
	req.magic = HS_MAGIC;
	req.version = 7;
	CHECK_EQ(handshake(&a, &req, sizeof(req), &rep, fds), -EPROTO);
	req.version = 1;
	memset(big, 0, sizeof(big));
	memcpy(big, &req, sizeof(req));
	CHECK_EQ(handshake(&a, big, sizeof(big), &rep, fds), -EPROTO);
	req.id += 77;
	CHECK_EQ(handshake(&a, &req, sizeof(req), &rep, fds), -ENOENT);
	req.id = a.id;
	req.cap[5] ^= 1;
	CHECK_EQ(handshake(&a, &req, sizeof(req), &rep, fds), -EACCES);
	req.cap[5] ^= 1;

	/* A good handshake, then a hostile ring. */
	fd = handshake(&a, &req, sizeof(req), &rep, fds);
	CHECK(fd >= 0);
	CHECK(rep.sender_id > 0);
	map = mmap(NULL, rep.map_size, PROT_READ | PROT_WRITE, MAP_SHARED,
		   fds[0], 0);
	CHECK(map != MAP_FAILED);
	close(fds[0]);
	close(fds[1]);
	r = (struct ring_mpsc *)((char *)map + CTL_SIZE);
	state = (uint32_t *)((char *)map + CTL_STATE_OFF);
	CHECK_OK(ring_mpsc_attach(r, rep.map_size - CTL_SIZE));

	put_msg(r, 0, 999999, 1, 5, "hello");               /* forged id */
	put_msg(r, 1, 0, 0xff00, 3, "bad");                 /* reserved */
	put_msg(r, 2, 0, 2, 4, "good");
	CHECK_EQ(mbox_recv(mb, &h, buf, sizeof(buf), 1000000000), 5);
	CHECK_EQ(h.sender, rep.sender_id);
	CHECK_EQ(h.type, 1);
	CHECK(!memcmp(buf, "hello", 5));
	CHECK_EQ(mbox_recv(mb, &h, buf, sizeof(buf), 1000000000), 4);
	CHECK_EQ(h.type, 2);
	mbox_stats(mb, &st);
	CHECK_EQ(st.bad, 1);
	CHECK_EQ(st.senders_remote, 1);

	put_msg(r, 3, 0, 3, 60000, NULL);                   /* impossible */
	put_msg(r, 4, 0, 4, 1, "x");
	CHECK_EQ(mbox_recv(mb, &h, buf, sizeof(buf), 20000000), -ETIMEDOUT);
	mbox_stats(mb, &st);
	CHECK_EQ(st.bad, 2);
	CHECK(st.dropped >= 1);
	CHECK(load_acquire(state) != 0);        /* closed for the sender */
	{
		struct pollfd p = { .fd = fd, .events = POLLIN };

		CHECK_EQ(poll(&p, 1, 5000), 1);  /* shut down */
		CHECK_EQ(recv(fd, buf, 1, 0), 0);
	}
	close(fd);
	munmap(map, rep.map_size);

	/* The mailbox still works for honest senders. */
	{
		struct mbox_sender *s;
		struct mbox_open_opts oo = { .transport = MBOX_TRANSPORT_NODE };

		CHECK_OK(mbox_open(&a, &cap, &oo, &s));
		CHECK_OK(mbox_send(s, 5, "ok", 2, 0));
		CHECK_EQ(mbox_recv(mb, &h, buf, sizeof(buf), 1000000000), 2);
		CHECK_EQ(h.type, 5);
		mbox_close(s);
	}
	for (int i = 0; i < 200; i++) {
		mbox_stats(mb, &st);
		if (st.senders_remote == 0)
			break;
		mbox_recv(mb, &h, buf, sizeof(buf), 0);
		usleep(10000);
	}
	CHECK_EQ(st.senders_remote, 0);
	mbox_destroy(mb);
	printf("ok\n");
	return 0;
}
