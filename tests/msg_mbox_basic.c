/* msg_mbox_basic.c - mailboxes in one process: capabilities and addresses
 * (text forms), LOCAL send/receive of every size class, truncation,
 * timeouts, a full mailbox (-EAGAIN without loss, then blocking senders
 * that lose nothing), wrong and revoked capabilities, destroy; receivers
 * blocked as uthreads woken by uthreads and by plain threads; -EBUSY for a
 * second receiver; the NODE transport forced within one process. */
#include <errno.h>
#include <pthread.h>
#include <string.h>
#include <unistd.h>

#include <atoll/mbox.h>
#include <atoll/rt.h>
#include <atoll/uthread.h>

#include "harness.h"

static void fill(unsigned char *p, size_t len, unsigned seed)
{
	for (size_t i = 0; i < len; i++)
		p[i] = (unsigned char)(seed * 31 + i * 7);
}

static int same(const unsigned char *p, size_t len, unsigned seed)
{
	for (size_t i = 0; i < len; i++)
		if (p[i] != (unsigned char)(seed * 31 + i * 7))
			return 0;
	return 1;
}

static void test_text_forms(void)
{
	struct mbox_cap c, d;
	struct mbox_addr a = { 0 }, b;
	char buf[MBOX_ADDR_STR_MAX], cs[MBOX_CAP_STR_LEN + 1];

	CHECK_OK(mbox_cap_generate(&c));
	mbox_cap_format(&c, cs);
	CHECK_EQ(strlen(cs), 32);
	CHECK_OK(mbox_cap_parse(cs, &d));
	CHECK(mbox_cap_equal(&c, &d));
	d.b[15] ^= 1;
	CHECK(!mbox_cap_equal(&c, &d));
	CHECK_EQ(mbox_cap_parse("0123", &d), -EINVAL);
	CHECK_EQ(mbox_cap_parse("0123456789abcdef0123456789abcdeg", &d),
		 -EINVAL);
	CHECK_EQ(mbox_cap_parse("0123456789abcdef0123456789abcdef0", &d),
		 -EINVAL);
	CHECK_OK(mbox_cap_parse("0123456789ABCDEF0123456789abcdef", &d));

	a.node = 0x1234abcdull;
	a.pid = 4242;
	a.incarnation = 0xfeedfacecafebeefull;
	a.id = 17;
	CHECK(mbox_addr_format(&a, buf, sizeof(buf)) > 0);
	CHECK_OK(mbox_addr_parse(buf, &b));
	CHECK(mbox_addr_same(&a, &b));
	CHECK_EQ(b.proxy_port, 0);
	strcpy(a.proxy_host, "10.1.2.3");
	a.proxy_port = 7070;
	CHECK(mbox_addr_format(&a, buf, sizeof(buf)) > 0);
	CHECK(strstr(buf, "@10.1.2.3:7070") != NULL);
	CHECK_OK(mbox_addr_parse(buf, &b));
	CHECK(!strcmp(b.proxy_host, "10.1.2.3"));
	CHECK_EQ(b.proxy_port, 7070);
	strcpy(a.proxy_host, "::1");
	CHECK(mbox_addr_format(&a, buf, sizeof(buf)) > 0);
	CHECK(strstr(buf, "@[::1]:7070") != NULL);
	CHECK_OK(mbox_addr_parse(buf, &b));
	CHECK(!strcmp(b.proxy_host, "::1"));
	CHECK_EQ(mbox_addr_format(&a, buf, 10), -ENOSPC);
	CHECK_EQ(mbox_addr_parse("", &b), -EINVAL);
	CHECK_EQ(mbox_addr_parse("1.2.3", &b), -EINVAL);
	CHECK_EQ(mbox_addr_parse("1.2.3.4x", &b), -EINVAL);
	CHECK_EQ(mbox_addr_parse("1.99999999999.3.4", &b), -EINVAL);
	CHECK_EQ(mbox_addr_parse("1.2.3.4@host", &b), -EINVAL);
	CHECK_EQ(mbox_addr_parse("1.2.3.4@h:0", &b), -EINVAL);
	CHECK_EQ(mbox_addr_parse("1.2.3.4@h:65536", &b), -EINVAL);
	CHECK_EQ(mbox_addr_parse("1.2.3.4@h o:80", &b), -EINVAL);
	CHECK_EQ(mbox_addr_parse("11111111111111111.2.3.4", &b), -EINVAL);
	CHECK_OK(mbox_addr_parse("1.2.3.4@localhost:80", &b));
	CHECK(mbox_node_id() != 0);
}

static void test_local(void)
{
	struct mbox_opts bad = { .nslots = 100 };
	struct mbox *mb;
	struct mbox_sender *s, *s2;
	struct mbox_addr a;
	struct mbox_cap cap, wrong, newcap, old;
	struct mbox_hdr h;
	struct mbox_stats st;
	static unsigned char out[MBOX_MSG_MAX + 1], in[MBOX_MSG_MAX + 1];
	static const size_t sizes[] = { 0, 1, 47, 48, 49, 104, 105, 1000,
					MBOX_MSG_MAX };

	CHECK_EQ(mbox_create("x", &bad, &mb), -EINVAL);
	bad.nslots = 64;
	CHECK_EQ(mbox_create("x", &bad, &mb), -EINVAL);
	CHECK_EQ(mbox_create(NULL, NULL, &mb), -EINVAL);
	CHECK_OK(mbox_create("/test/basic", NULL, &mb));
	CHECK(!strcmp(mbox_name(mb), "/test/basic"));
	mbox_addr(mb, &a);
	mbox_cap(mb, &cap);
	CHECK_EQ(a.pid, (uint32_t)getpid());
	CHECK_EQ(a.node, mbox_node_id());

	wrong = cap;
	wrong.b[3] ^= 0x40;
	CHECK_EQ(mbox_open(&a, &wrong, NULL, &s), -EACCES);
	CHECK_OK(mbox_open(&a, &cap, NULL, &s));
	CHECK_EQ(mbox_sender_transport(s), MBOX_TRANSPORT_LOCAL);
	CHECK(mbox_sender_id(s) > 0);

	/* Every size class, in order, contents intact. */
	for (size_t i = 0; i < ARRAY_SIZE(sizes); i++) {
		fill(out, sizes[i], (unsigned)i);
		CHECK_OK(mbox_send(s, (uint16_t)(100 + i), out, sizes[i], 0));
	}
	for (size_t i = 0; i < ARRAY_SIZE(sizes); i++) {
		memset(in, 0xee, sizeof(in));
		CHECK_EQ(mbox_recv(mb, &h, in, sizeof(in), 0), sizes[i]);
		CHECK_EQ(h.type, 100 + i);
		CHECK_EQ(h.len, sizes[i]);
		CHECK_EQ(h.sender, mbox_sender_id(s));
		CHECK(same(in, sizes[i], (unsigned)i));
		CHECK_EQ(in[sizes[i]], 0xee);
	}
	CHECK_EQ(mbox_recv(mb, &h, in, sizeof(in), 0), -EAGAIN);
	CHECK_EQ(mbox_recv(mb, &h, in, sizeof(in), 2000000), -ETIMEDOUT);

	/* Bad sends change nothing. */
	CHECK_EQ(mbox_send(s, 1, out, MBOX_MSG_MAX + 1, 0), -EMSGSIZE);
	CHECK_EQ(mbox_send(s, MBOX_TYPE_USER_MAX + 1, out, 1, 0), -EINVAL);
	CHECK_EQ(mbox_send(s, 1, NULL, 5, 0), -EINVAL);
	CHECK_EQ(mbox_send(s, 1, out, 1, 0x80), -EINVAL);
	CHECK_EQ(mbox_recv(mb, &h, in, sizeof(in), 0), -EAGAIN);

	/* Truncation: consumed, first bytes delivered, real length told. */
	fill(out, 300, 9);
	CHECK_OK(mbox_send(s, 7, out, 300, 0));
	CHECK_OK(mbox_send(s, 8, out, 3, 0));
	CHECK_EQ(mbox_recv(mb, &h, in, 100, 0), -EMSGSIZE);
	CHECK_EQ(h.len, 300);
	CHECK(same(in, 100, 9));
	CHECK_EQ(mbox_recv(mb, &h, in, sizeof(in), 0), 3);
	CHECK_EQ(h.type, 8);

	/* Revocation with a new capability. */
	CHECK_OK(mbox_open(&a, &cap, NULL, &s2));
	CHECK(mbox_sender_id(s2) != mbox_sender_id(s));
	CHECK_OK(mbox_send(s2, 1, "a", 1, 0));
	old = cap;
	CHECK_OK(mbox_revoke(mb, &newcap));
	CHECK(!mbox_cap_equal(&old, &newcap));
	mbox_cap(mb, &cap);
	CHECK(mbox_cap_equal(&cap, &newcap));
	CHECK_EQ(mbox_send(s, 1, "b", 1, 0), -EKEYREVOKED);
	CHECK_EQ(mbox_send(s2, 1, "b", 1, MBOX_NONBLOCK), -EKEYREVOKED);
	CHECK_EQ(mbox_sender_check(s), -EKEYREVOKED);
	CHECK_EQ(mbox_open(&a, &old, NULL, &s2 /* unchanged on error */),
		 -EKEYREVOKED);
	CHECK_EQ(mbox_open(&a, &wrong, NULL, &s2), -EACCES);
	/* What was queued before the revocation is still delivered. */
	CHECK_EQ(mbox_recv(mb, &h, in, sizeof(in), 0), 1);
	CHECK_EQ(in[0], 'a');
	mbox_close(s);
	mbox_close(s2);
	CHECK_OK(mbox_open(&a, &newcap, NULL, &s));
	CHECK_OK(mbox_sender_check(s));
	CHECK_OK(mbox_send(s, 2, "c", 1, 0));
	CHECK_EQ(mbox_recv(mb, &h, in, sizeof(in), 0), 1);
	mbox_stats(mb, &st);
	CHECK_EQ(st.senders_local, 1);
	CHECK_EQ(st.revocations, 1);

	/* Revocation without a new capability: nobody may send. */
	CHECK_OK(mbox_revoke(mb, NULL));
	CHECK_EQ(mbox_send(s, 1, "d", 1, 0), -EKEYREVOKED);
	CHECK_EQ(mbox_open(&a, &newcap, NULL, &s2), -EKEYREVOKED);
	mbox_close(s);
	mbox_destroy(mb);

	/* Destroy: open senders get -EPIPE, opens -ENOENT. */
	CHECK_OK(mbox_create("/test/d", NULL, &mb));
	mbox_addr(mb, &a);
	mbox_cap(mb, &cap);
	CHECK_OK(mbox_open(&a, &cap, NULL, &s));
	CHECK_OK(mbox_send(s, 1, "e", 1, 0));
	mbox_destroy(mb);
	CHECK_EQ(mbox_send(s, 1, "f", 1, 0), -EPIPE);
	CHECK_EQ(mbox_sender_check(s), -EPIPE);
	CHECK_EQ(mbox_open(&a, &cap, NULL, &s2), -ENOENT);
	mbox_close(s);
}

/* A full mailbox refuses MBOX_NONBLOCK sends with -EAGAIN and loses
 * nothing. */
static void test_full_nonblock(void)
{
	struct mbox_opts o = { .nslots = 128 };
	struct mbox *mb;
	struct mbox_sender *s;
	struct mbox_addr a;
	struct mbox_cap cap;
	struct mbox_hdr h;
	struct mbox_stats st;
	unsigned char buf[MBOX_MSG_MAX];
	unsigned n = 0;

	CHECK_OK(mbox_create("full", &o, &mb));
	mbox_addr(mb, &a);
	mbox_cap(mb, &cap);
	CHECK_OK(mbox_open(&a, &cap, NULL, &s));
	for (;;) {
		int r = mbox_send(s, 1, &n, sizeof(n), MBOX_NONBLOCK);

		if (r == -EAGAIN)
			break;
		CHECK_OK(r);
		n++;
	}
	CHECK_EQ(n, 128);
	/* One slot free: a two-slot message still does not fit. */
	CHECK_EQ(mbox_recv(mb, &h, buf, sizeof(buf), 0), sizeof(n));
	CHECK_EQ(mbox_send(s, 2, buf, 100, MBOX_NONBLOCK), -EAGAIN);
	CHECK_OK(mbox_send(s, 3, buf, 10, MBOX_NONBLOCK));
	mbox_stats(mb, &st);
	CHECK(st.full >= 2);
	for (unsigned i = 1; i < 128; i++) {
		unsigned v;

		CHECK_EQ(mbox_recv(mb, &h, &v, sizeof(v), 0), sizeof(v));
		CHECK_EQ(v, i);
	}
	CHECK_EQ(mbox_recv(mb, &h, buf, sizeof(buf), 0), 10);
	CHECK_EQ(h.type, 3);
	CHECK_EQ(mbox_recv(mb, &h, buf, sizeof(buf), 0), -EAGAIN);
	mbox_close(s);
	mbox_destroy(mb);
}

/* ---- in the runtime ----------------------------------------------------- */

struct ctx {
	struct mbox *mb;
	struct mbox_addr a;
	struct mbox_cap cap;
	unsigned n;
	enum mbox_transport t;
	int result;
};

static void *late_sender(void *arg)
{
	struct ctx *c = arg;
	struct mbox_open_opts oo = { .transport = c->t };
	struct mbox_sender *s;

	uthread_sleep_ns(3000000);
	CHECK_OK(mbox_open(&c->a, &c->cap, &oo, &s));
	for (unsigned i = 0; i < c->n; i++) {
		CHECK_OK(mbox_send(s, 5, &i, sizeof(i), 0));
		if (i % 16 == 0)
			uthread_sleep_ns(200000);
	}
	mbox_close(s);
	return NULL;
}

static void *thread_sender(void *arg)
{
	struct ctx *c = arg;
	struct mbox_sender *s;
	struct timespec ts = { 0, 3000000 };

	nanosleep(&ts, NULL);
	CHECK_OK(mbox_open(&c->a, &c->cap, NULL, &s));
	for (unsigned i = 0; i < c->n; i++)
		CHECK_OK(mbox_send(s, 6, &i, sizeof(i), 0));
	mbox_close(s);
	return NULL;
}

static void recv_seq(struct mbox *mb, unsigned n, uint16_t type)
{
	struct mbox_hdr h;

	for (unsigned i = 0; i < n; i++) {
		unsigned v;

		CHECK_EQ(mbox_recv(mb, &h, &v, sizeof(v), 5000000000ull),
			 sizeof(v));
		CHECK_EQ(h.type, type);
		CHECK_EQ(v, i);
	}
}

static void *blocked_receiver(void *arg)
{
	struct ctx *c = arg;
	struct mbox_hdr h;
	unsigned v;

	c->result = mbox_recv(c->mb, &h, &v, sizeof(v), MBOX_FOREVER);
	return NULL;
}

static int rt_part(void *arg)
{
	struct ctx c = { 0 };
	struct mbox_opts o = { .nslots = 128, .poll_ns = 1000 };
	struct uthread *u, *r;
	pthread_t th;
	struct mbox_hdr h;
	unsigned v;

	(void)arg;
	CHECK_OK(mbox_create("rt", &o, &c.mb));
	mbox_addr(c.mb, &c.a);
	mbox_cap(c.mb, &c.cap);

	/* A uthread receiver blocks; a uthread sender wakes it. */
	c.n = 200;
	c.t = MBOX_TRANSPORT_AUTO;
	CHECK_OK(uthread_create(&u, NULL, late_sender, &c));
	recv_seq(c.mb, c.n, 5);
	CHECK_OK(uthread_join(u, NULL));

	/* A plain thread sender wakes a uthread receiver; it outruns the
	 * receiver, so it also blocks on the full mailbox. */
	c.n = 2000;
	CHECK_EQ(pthread_create(&th, NULL, thread_sender, &c), 0);
	recv_seq(c.mb, c.n, 6);
	CHECK_EQ(pthread_join(th, NULL), 0);

	/* Forced NODE transport within the process: the listener, the
	 * memfd ring, the eventfd doorbell and its io_uring poll. */
	c.n = 300;
	c.t = MBOX_TRANSPORT_NODE;
	CHECK_OK(uthread_create(&u, NULL, late_sender, &c));
	recv_seq(c.mb, c.n, 5);
	CHECK_OK(uthread_join(u, NULL));

	/* One receiver at a time. */
	c.result = 1;
	CHECK_OK(uthread_create(&r, NULL, blocked_receiver, &c));
	uthread_sleep_ns(2000000);
	CHECK_EQ(mbox_recv(c.mb, &h, &v, sizeof(v), 0), -EBUSY);
	{
		struct mbox_sender *s;

		CHECK_OK(mbox_open(&c.a, &c.cap, NULL, &s));
		CHECK_OK(mbox_send(s, 1, &v, sizeof(v), 0));
		mbox_close(s);
	}
	CHECK_OK(uthread_join(r, NULL));
	CHECK_EQ(c.result, sizeof(v));

	/* A timed uthread receive times out. */
	CHECK_EQ(mbox_recv(c.mb, &h, &v, sizeof(v), 3000000), -ETIMEDOUT);
	mbox_destroy(c.mb);
	return 0;
}

/* One mailbox across runtimes: a uthread receiver woken through the
 * eventfd (a plain-thread sender) in one rt_main, again in the next. */
static struct ctx keep;

static int rt_keep(void *arg)
{
	pthread_t th;

	(void)arg;
	CHECK_EQ(pthread_create(&th, NULL, thread_sender, &keep), 0);
	recv_seq(keep.mb, keep.n, 6);
	CHECK_EQ(pthread_join(th, NULL), 0);
	return 0;
}

int main(void)
{
	struct rt_config cfg = { .nr_vcores = 2, .no_pin = 1 };

	test_text_forms();
	test_local();
	test_full_nonblock();
	CHECK_OK(mbox_create("keep", &(struct mbox_opts){ .poll_ns = 1000 },
			     &keep.mb));
	mbox_addr(keep.mb, &keep.a);
	mbox_cap(keep.mb, &keep.cap);
	keep.n = 50;
	for (int i = 0; i < 3; i++)
		CHECK_EQ(rt_main(&cfg, rt_keep, NULL), 0);
	mbox_destroy(keep.mb);
	CHECK_EQ(rt_main(&cfg, rt_part, NULL), 0);
	/* Again outside the runtime, a plain-thread receiver. */
	{
		struct ctx c = { 0 };
		pthread_t th;

		CHECK_OK(mbox_create("plain", NULL, &c.mb));
		mbox_addr(c.mb, &c.a);
		mbox_cap(c.mb, &c.cap);
		c.n = 3000;
		CHECK_EQ(pthread_create(&th, NULL, thread_sender, &c), 0);
		recv_seq(c.mb, c.n, 6);
		CHECK_EQ(pthread_join(th, NULL), 0);
		mbox_destroy(c.mb);
	}
	printf("ok\n");
	return 0;
}
