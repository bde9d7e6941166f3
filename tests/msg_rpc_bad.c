/* msg_rpc_bad.c - bad input on both sides, written by hand from the wire
 * format of docs/rpc.md: truncated and forged frames (unknown kinds and
 * types, bad lengths, wrong protocol tag, wrong capabilities, oversized
 * payloads, fields beyond their bounds, replies to calls never made or
 * malformed replies to real ones, random bytes) give errors or are
 * dropped and counted; the server and the client never crash and go on
 * serving. */
#include <errno.h>

#include <atoll/clock.h>
#include <atoll/mbox.h>
#include <atoll/rpc.h>
#include <atoll/rt.h>
#include <atoll/uthread.h>

#include "harness.h"

#define X_MSGS(M)                                                            \
	M(X_ADD, x_add, F_U64(a) F_U64(b), F_U64(sum))                       \
	M(X_PUT, x_put, F_STR(key, 32) F_BYTES(val, 512), F_U32(n))          \
	M(X_SLEEP, x_sleep, F_U64(ns), F_NONE)

RPC_DECLARE(x, X_MSGS);
RPC_DEFINE(x, X_MSGS);

/* Frame kinds (mailbox types) and the header, from docs/rpc.md. */
enum { K_HELLO = 0x5248, K_REQ = 0x5251, K_REP = 0x5250, K_CANCEL = 0x5243,
       K_BYE = 0x5242, K_STOP = 0x5253 };
#define HDR 24

static uint32_t tag_of(const char *name)
{
	uint32_t h = 2166136261u;

	for (; *name; name++)
		h = (h ^ (uint8_t)*name) * 16777619u;
	return h;
}

static void le(uint8_t *p, uint64_t v, unsigned n)
{
	for (unsigned i = 0; i < n; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static uint64_t get(const uint8_t *p, unsigned n)
{
	uint64_t v = 0;

	for (unsigned i = 0; i < n; i++)
		v |= (uint64_t)p[i] << (8 * i);
	return v;
}

static size_t hdr(uint8_t *p, uint32_t tag, uint32_t type, uint64_t id,
		  uint32_t word, uint32_t body_len)
{
	le(p, tag, 4);
	le(p + 4, type, 4);
	le(p + 8, id, 8);
	le(p + 16, word, 4);
	le(p + 20, body_len, 4);
	return HDR;
}

static int h_add(void *arg, const struct x_add_req *req, struct x_add_rep *rep,
		 struct rpc_ctx *ctx)
{
	(void)arg;
	(void)ctx;
	rep->sum = req->a + req->b;
	return 0;
}

static int h_put(void *arg, const struct x_put_req *req, struct x_put_rep *rep,
		 struct rpc_ctx *ctx)
{
	(void)arg;
	(void)ctx;
	CHECK(strlen(req->key) <= 32);
	CHECK(req->val_len <= 512);
	rep->n = req->val_len;
	return 0;
}

static int h_sleep(void *arg, const struct x_sleep_req *req,
		   struct x_sleep_rep *rep, struct rpc_ctx *ctx)
{
	(void)arg;
	(void)rep;
	(void)ctx;
	uthread_sleep_ns(req->ns);
	return 0;
}

/* A raw peer: our own reply mailbox and a sender to a target. */
struct raw {
	struct mbox *mb;
	struct mbox_sender *to;
};

static void raw_open(struct raw *r, struct mbox *target)
{
	struct mbox_opts mo = { .flags = MBOX_F_LOCAL_ONLY };
	struct mbox_addr addr;
	struct mbox_cap cap;

	CHECK_OK(mbox_create("raw", &mo, &r->mb));
	mbox_addr(target, &addr);
	mbox_cap(target, &cap);
	CHECK_OK(mbox_open(&addr, &cap, NULL, &r->to));
}

static void raw_close(struct raw *r)
{
	mbox_close(r->to);
	mbox_destroy(r->mb);
}

/* A hello for r's mailbox, with the capability given (NULL: the right
 * one). Returns the frame's length. */
static size_t hello(uint8_t *buf, struct raw *r, const struct mbox_cap *cap)
{
	struct mbox_addr addr;
	struct mbox_cap mine;
	int n;

	mbox_addr(r->mb, &addr);
	mbox_cap(r->mb, &mine);
	n = mbox_addr_format(&addr, (char *)buf + 28, MBOX_ADDR_STR_MAX);
	CHECK(n > 0);
	le(buf, tag_of("x"), 4);
	le(buf + 4, 1, 4);
	memcpy(buf + 8, (cap ? cap : &mine)->b, 16);
	le(buf + 24, (uint32_t)n, 4);
	return 28 + (size_t)n;
}

static void send_raw(struct raw *r, uint16_t kind, const void *p, size_t n)
{
	CHECK_OK(mbox_send(r->to, kind, p, n, 0));
}

/* The next reply on r's mailbox: its status, id in *id. */
static int32_t reply(struct raw *r, uint64_t *id, uint8_t *body, size_t *blen)
{
	uint8_t buf[MBOX_MSG_MAX];
	struct mbox_hdr h;
	int n = mbox_recv(r->mb, &h, buf, sizeof(buf), 5 * NSEC_PER_SEC);

	CHECK(n >= HDR);
	CHECK_EQ(h.type, K_REP);
	CHECK_EQ(get(buf + 20, 4), (uint64_t)n - HDR);
	if (id)
		*id = get(buf + 8, 8);
	if (body) {
		memcpy(body, buf + HDR, (size_t)n - HDR);
		*blen = (size_t)n - HDR;
	}
	return (int32_t)get(buf + 16, 4);
}

/* Nothing more arrives on r's mailbox for a while. */
static void no_reply(struct raw *r)
{
	uint8_t buf[MBOX_MSG_MAX];
	struct mbox_hdr h;

	CHECK_EQ(mbox_recv(r->mb, &h, buf, sizeof(buf), 20 * NSEC_PER_MSEC),
		 -ETIMEDOUT);
}

/* Wait until the server has counted `bad` bad frames (the dispatcher
 * works asynchronously). */
static void wait_bad(struct rpc_server *srv, uint64_t bad)
{
	struct rpc_server_stats ss;

	for (int i = 0;; i++) {
		rpc_server_stats(srv, &ss);
		if (ss.bad >= bad)
			break;
		CHECK(i < 5000);
		uthread_sleep_ns(NSEC_PER_MSEC);
	}
	CHECK_EQ(ss.bad, bad);
}

static void check_alive(struct rpc_client *cl)
{
	struct x_add_req q = { 40, 2 };
	struct x_add_rep p;

	CHECK_EQ(rpc_call_x_add(cl, &q, &p, NULL), 0);
	CHECK(p.sum == 42);
}

static void test_server_side(struct rpc_server *srv, struct rpc_client *cl)
{
	static uint8_t f[MBOX_MSG_MAX + 64];
	uint8_t body[MBOX_MSG_MAX];
	struct raw r;
	struct rpc_server_stats ss;
	struct mbox_cap wrong;
	uint32_t tag = tag_of("x");
	uint64_t bad = 0, id;
	size_t n, blen;

	raw_open(&r, rpc_server_mbox(srv));

	/* Before any hello: nobody to answer, dropped. */
	n = hdr(f, tag, X_ADD, 1, 0, 16);
	memset(f + n, 0, 16);
	send_raw(&r, K_REQ, f, n + 16);
	wait_bad(srv, ++bad);
	/* Unknown kinds, and a stop from someone else. */
	send_raw(&r, 0x1234, f, 8);
	send_raw(&r, 0, NULL, 0);
	send_raw(&r, K_STOP, NULL, 0);
	send_raw(&r, K_REP, f, n + 16);
	bad += 4;
	wait_bad(srv, bad);
	check_alive(cl);

	/* Broken hellos: short, wrong version, wrong address length, an
	 * address that does not parse, a wrong capability for our mailbox;
	 * each leaves us without a peer. */
	send_raw(&r, K_HELLO, f, 10);
	n = hello(f, &r, NULL);
	le(f + 4, 2, 4);
	send_raw(&r, K_HELLO, f, n);
	n = hello(f, &r, NULL);
	le(f + 24, (uint32_t)n, 4);
	send_raw(&r, K_HELLO, f, n);
	n = hello(f, &r, NULL);
	memcpy(f + 28, "zz", 2);
	send_raw(&r, K_HELLO, f, n);
	mbox_cap(r.mb, &wrong);
	wrong.b[0] ^= 1;
	n = hello(f, &r, &wrong);
	send_raw(&r, K_HELLO, f, n);
	n = hdr(f, tag, X_ADD, 2, 0, 16);
	send_raw(&r, K_REQ, f, n + 16);
	bad += 6;
	wait_bad(srv, bad);
	no_reply(&r);

	/* A good hello; then every request gets an answer. */
	n = hello(f, &r, NULL);
	send_raw(&r, K_HELLO, f, n);

	/* valid */
	n = hdr(f, tag, X_ADD, 100, 0, 16);
	le(f + n, 5, 8);
	le(f + n + 8, 6, 8);
	send_raw(&r, K_REQ, f, n + 16);
	CHECK_EQ(reply(&r, &id, body, &blen), 0);
	CHECK_EQ(id, 100);
	{
		struct x_add_rep rep;

		CHECK_EQ(x_add_rep_decode(&rep, body, blen), 0);
		CHECK(rep.sum == 11);
	}
	/* body length disagrees with the frame, either way */
	hdr(f, tag, X_ADD, 101, 0, 100);
	send_raw(&r, K_REQ, f, HDR + 16);
	CHECK_EQ(reply(&r, &id, NULL, NULL), -EBADMSG);
	CHECK_EQ(id, 101);
	hdr(f, tag, X_ADD, 102, 0, 8);
	send_raw(&r, K_REQ, f, HDR + 16);
	CHECK_EQ(reply(&r, NULL, NULL, NULL), -EBADMSG);
	/* a truncated header: no id to answer to */
	send_raw(&r, K_REQ, f, HDR - 1);
	send_raw(&r, K_REQ, f, 0);
	bad += 2;
	wait_bad(srv, bad);
	no_reply(&r);
	/* another protocol */
	hdr(f, tag ^ 1, X_ADD, 103, 0, 16);
	send_raw(&r, K_REQ, f, HDR + 16);
	CHECK_EQ(reply(&r, &id, NULL, NULL), -EPROTO);
	CHECK_EQ(id, 103);
	/* unknown types */
	for (uint32_t t = 0; t < 3; t++) {
		uint32_t types[3] = { 0, X_SLEEP + 1, UINT32_MAX };

		hdr(f, tag, types[t], 104 + t, 0, 0);
		send_raw(&r, K_REQ, f, HDR);
		CHECK_EQ(reply(&r, &id, NULL, NULL), -ENOSYS);
		CHECK_EQ(id, 104 + t);
	}
	/* bodies that do not decode: short, long, a string over its max,
	 * an embedded NUL, a length past the end, a huge length */
	{
		struct x_put_req q;
		uint8_t good[600];
		int gl;

		memset(&q, 0, sizeof(q));
		strcpy(q.key, "key");
		q.val_len = 3;
		memcpy(q.val, "abc", 3);
		gl = x_put_req_encode(&q, good, sizeof(good));
		CHECK_EQ(gl, 4 + 3 + 4 + 3);

		for (int len = 0; len < gl; len++) {
			n = hdr(f, tag, X_PUT, 200 + (uint64_t)len, 0,
				(uint32_t)len);
			memcpy(f + n, good, (size_t)len);
			send_raw(&r, K_REQ, f, n + (size_t)len);
			CHECK_EQ(reply(&r, &id, NULL, NULL), -EBADMSG);
			CHECK_EQ(id, 200 + (uint64_t)len);
		}
		n = hdr(f, tag, X_PUT, 300, 0, (uint32_t)gl + 1);
		memcpy(f + n, good, (size_t)gl);
		f[n + (size_t)gl] = 0;
		send_raw(&r, K_REQ, f, n + (size_t)gl + 1);
		CHECK_EQ(reply(&r, NULL, NULL, NULL), -EBADMSG);

		/* key of 33 bytes (max 32) */
		n = hdr(f, tag, X_PUT, 301, 0, 4 + 33 + 4);
		le(f + n, 33, 4);
		memset(f + n + 4, 'k', 33);
		le(f + n + 37, 0, 4);
		send_raw(&r, K_REQ, f, n + 41);
		CHECK_EQ(reply(&r, NULL, NULL, NULL), -EBADMSG);
		/* embedded NUL in the key */
		n = hdr(f, tag, X_PUT, 302, 0, (uint32_t)gl);
		memcpy(f + n, good, (size_t)gl);
		f[n + 5] = 0;
		send_raw(&r, K_REQ, f, n + (size_t)gl);
		CHECK_EQ(reply(&r, NULL, NULL, NULL), -EBADMSG);
		/* val of 513 bytes (max 512), within the frame */
		n = hdr(f, tag, X_PUT, 303, 0, 4 + 3 + 4 + 513);
		memcpy(f + n, good, 7);
		le(f + n + 7, 513, 4);
		memset(f + n + 11, 'v', 513);
		send_raw(&r, K_REQ, f, n + 11 + 513);
		CHECK_EQ(reply(&r, NULL, NULL, NULL), -EBADMSG);
		/* lengths past the end, and huge ones */
		n = hdr(f, tag, X_PUT, 304, 0, (uint32_t)gl);
		memcpy(f + n, good, (size_t)gl);
		le(f + n + 7, 4, 4);
		send_raw(&r, K_REQ, f, n + (size_t)gl);
		CHECK_EQ(reply(&r, NULL, NULL, NULL), -EBADMSG);
		le(f + n, 0xffffffffu, 4);
		send_raw(&r, K_REQ, f, n + (size_t)gl);
		CHECK_EQ(reply(&r, NULL, NULL, NULL), -EBADMSG);
		/* and the good one, for contrast */
		n = hdr(f, tag, X_PUT, 305, 0, (uint32_t)gl);
		memcpy(f + n, good, (size_t)gl);
		send_raw(&r, K_REQ, f, n + (size_t)gl);
		CHECK_EQ(reply(&r, &id, body, &blen), 0);
		CHECK_EQ(id, 305);
		CHECK_EQ(blen, 4);
		CHECK_EQ(get(body, 4), 3);
	}
	/* oversized: the mailbox refuses it before it is sent */
	CHECK_EQ(mbox_send(r.to, K_REQ, f, MBOX_MSG_MAX + 1, 0), -EMSGSIZE);
	/* cancels: malformed ones are bad, unknown ids are ignored */
	send_raw(&r, K_CANCEL, f, 15);
	le(f, tag, 4);
	le(f + 4, 0, 4);
	le(f + 8, 999999, 8);
	send_raw(&r, K_CANCEL, f, 16);
	bad += 1;
	wait_bad(srv, bad);

	/* Random frames of every kind. */
	{
		uint64_t x = 88172645463325252ull;
		uint64_t iters = test_scale(3000);
		uint16_t kinds[] = { K_HELLO, K_REQ, K_REP, K_CANCEL, K_STOP,
				     0x4444 };

		for (uint64_t i = 0; i < iters; i++) {
			size_t len;

			x ^= x << 13, x ^= x >> 7, x ^= x << 17;
			len = x % 200;
			for (size_t j = 0; j < len; j++) {
				x ^= x << 13, x ^= x >> 7, x ^= x << 17;
				f[j] = (uint8_t)x;
			}
			if (len >= HDR && (x & 1)) {
				/* plausible headers, random bodies */
				hdr(f, tag, (uint32_t)(x >> 8) % 3, /* not X_SLEEP */
				    x >> 16, 0, (uint32_t)(len - HDR));
			}
			/* hellos with random bytes would only drop our
			 * peer; keep it */
			send_raw(&r, kinds[(x >> 3) % 6] == K_HELLO
					     ? K_CANCEL
					     : kinds[(x >> 3) % 6],
				 f, len);
			if (i % 64 == 0) {
				/* drain our replies */
				struct mbox_hdr h;

				while (mbox_recv(r.mb, &h, body, sizeof(body),
						 0) >= 0)
					;
			}
		}
	}
	check_alive(cl);
	/* goodbye drops the peer; later requests are dropped */
	send_raw(&r, K_BYE, NULL, 0);
	rpc_server_stats(srv, &ss);
	bad = ss.bad;
	n = hdr(f, tag, X_ADD, 1, 0, 16);
	send_raw(&r, K_REQ, f, n + 16);
	wait_bad(srv, bad + 1);
	raw_close(&r);

	/* A wrong capability does not even open. */
	{
		struct mbox_addr addr;
		struct mbox_cap cap;
		struct mbox_sender *s;

		mbox_addr(rpc_server_mbox(srv), &addr);
		mbox_cap(rpc_server_mbox(srv), &cap);
		cap.b[15] ^= 0x80;
		CHECK_EQ(mbox_open(&addr, &cap, NULL, &s), -EACCES);
	}
	check_alive(cl);
}

/* ---- forged replies to a client ----------------------------------------- */

static void wait_client(struct rpc_client *cl, uint64_t bad, uint64_t stray)
{
	struct rpc_client_stats cs;

	for (int i = 0;; i++) {
		rpc_client_stats(cl, &cs);
		if (cs.bad >= bad && cs.stray >= stray)
			break;
		CHECK(i < 5000);
		uthread_sleep_ns(NSEC_PER_MSEC);
	}
	CHECK_EQ(cs.bad, bad);
	CHECK_EQ(cs.stray, stray);
}

static void test_client_side(struct rpc_client *cl)
{
	static uint8_t f[MBOX_MSG_MAX];
	struct raw r;
	struct rpc_client_stats cs;
	uint32_t tag = tag_of("x");
	uint64_t bad, stray;
	size_t n;

	raw_open(&r, rpc_client_mbox(cl));
	rpc_client_stats(cl, &cs);
	bad = cs.bad;
	stray = cs.stray;

	/* replies to ids never issued */
	n = hdr(f, tag, X_ADD, 1ull << 60, 0, 8);
	send_raw(&r, K_REP, f, n + 8);
	n = hdr(f, tag, X_ADD, 0, 0, 8);
	send_raw(&r, K_REP, f, n + 8);
	stray += 2;
	/* malformed: short, length mismatch, wrong tag, unknown kinds, a
	 * stop from someone else */
	send_raw(&r, K_REP, f, 5);
	hdr(f, tag, X_ADD, 1, 0, 9);
	send_raw(&r, K_REP, f, HDR + 8);
	hdr(f, tag ^ 7, X_ADD, 1, 0, 8);
	send_raw(&r, K_REP, f, HDR + 8);
	send_raw(&r, K_REQ, f, HDR + 8);
	send_raw(&r, 0x7777, f, 3);
	send_raw(&r, K_STOP, NULL, 0);
	bad += 6;
	wait_client(cl, bad, stray);
	check_alive(cl);

	/* A forged reply to a real call in flight: its body does not decode
	 * (and then a positive status, and a status with a body): the call
	 * fails with -EBADMSG at once; the real reply comes later and is
	 * dropped as late. */
	for (int k = 0; k < 3; k++) {
		struct x_sleep_req q = { .ns = 30 * NSEC_PER_MSEC };
		struct x_sleep_rep p;
		struct rpc_call call;
		uint64_t late0;

		rpc_client_stats(cl, &cs);
		late0 = cs.late;
		CHECK_OK(rpc_start_x_sleep(cl, &call, &q, &p, NULL));
		if (k == 0) {
			n = hdr(f, tag, X_SLEEP, rpc_call_id(&call), 0, 1);
			send_raw(&r, K_REP, f, n + 1);
		} else if (k == 1) {
			n = hdr(f, tag, X_SLEEP, rpc_call_id(&call), 5, 0);
			send_raw(&r, K_REP, f, n);
		} else {
			n = hdr(f, tag, X_SLEEP, rpc_call_id(&call),
				(uint32_t)-EIO, 4);
			send_raw(&r, K_REP, f, n + 4);
		}
		CHECK_EQ(rpc_wait(&call), -EBADMSG);
		bad++;
		for (int i = 0;; i++) {
			rpc_client_stats(cl, &cs);
			if (cs.late > late0)
				break;
			CHECK(i < 5000);
			uthread_sleep_ns(NSEC_PER_MSEC);
		}
	}
	/* A reply of the wrong type for its call. */
	{
		struct x_sleep_req q = { .ns = 30 * NSEC_PER_MSEC };
		struct x_sleep_rep p;
		struct rpc_call call;

		CHECK_OK(rpc_start_x_sleep(cl, &call, &q, &p, NULL));
		n = hdr(f, tag, X_ADD, rpc_call_id(&call), 0, 8);
		send_raw(&r, K_REP, f, n + 8);
		CHECK_EQ(rpc_wait(&call), -EBADMSG);
		bad++;
	}
	/* An error status passes through as the call's result. */
	{
		struct x_sleep_req q = { .ns = 30 * NSEC_PER_MSEC };
		struct x_sleep_rep p;
		struct rpc_call call;

		CHECK_OK(rpc_start_x_sleep(cl, &call, &q, &p, NULL));
		n = hdr(f, tag, X_SLEEP, rpc_call_id(&call), (uint32_t)-EIO, 0);
		send_raw(&r, K_REP, f, n);
		CHECK_EQ(rpc_wait(&call), -EIO);
	}
	wait_client(cl, bad, stray);
	check_alive(cl);
	raw_close(&r);
}

static int test_main(void *arg)
{
	struct rpc_server_opts so = { 0 };
	struct rpc_client_opts co = { .timeout_ns = 5 * NSEC_PER_SEC };
	struct rpc_server *srv;
	struct rpc_client *cl;
	struct mbox_addr addr;
	struct mbox_cap cap;

	(void)arg;
	so.mbox.flags = MBOX_F_LOCAL_ONLY;
	co.mbox.flags = MBOX_F_LOCAL_ONLY;
	CHECK_OK(rpc_server_create(&srv, &x_rpc, &so));
	CHECK_OK(rpc_serve_x_add(srv, h_add, NULL));
	CHECK_OK(rpc_serve_x_put(srv, h_put, NULL));
	CHECK_OK(rpc_serve_x_sleep(srv, h_sleep, NULL));
	CHECK_OK(rpc_server_start(srv));
	mbox_addr(rpc_server_mbox(srv), &addr);
	mbox_cap(rpc_server_mbox(srv), &cap);
	CHECK_OK(rpc_client_open(&cl, &x_rpc, &addr, &cap, &co));

	test_server_side(srv, cl);
	test_client_side(cl);

	rpc_client_close(cl);
	rpc_server_destroy(srv);
	return 0;
}

int main(void)
{
	struct rt_config cfg = { .nr_vcores = 2, .no_pin = 1 };

	clock_calibrate();
	CHECK_EQ(rt_main(&cfg, test_main, NULL), 0);
	printf("msg_rpc_bad: ok\n");
	return TEST_PASS;
}
