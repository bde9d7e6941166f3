/* rpc.c - the codec helpers, the dispatcher (servers) and RPC calls
 * (clients) of include/atoll/rpc.h, over mailboxes (mbox.h).
 *
 * Design note. The wire format is in docs/rpc.md. Every frame is one
 * mailbox message; the mailbox type says what it is (hello, request,
 * reply, cancel, bye) and the payload starts with a 24-byte header.
 *
 * Who replies where. A client has its own reply mailbox. Before its first
 * request on a sender handle it sends a hello carrying that mailbox's
 * address and capability; the server opens a sender to it and files it as
 * a *peer* under the mailbox sender id of the handle the hello came on.
 * The sender id is given by the mailbox per connection, not written by
 * the sender, so a client cannot make replies go to someone else's peer.
 * One handle's messages arrive in order, so a request always finds its
 * hello's peer. A request from a sender id with no peer cannot be
 * answered: it is dropped and counted.
 *
 * Server. One dispatcher uthread receives, validates the header, decodes
 * the body into a freshly allocated request context and hands it to a
 * handler uthread: an idle one that finished an earlier request, else a
 * new detached one. A finished worker goes back on the idle list unless
 * idle_max wait there already (then it exits): a burst's uthreads do not
 * linger, and a steady load creates none (under TSan, where each uthread
 * is a fiber with a costly thread state, this matters most). Bad frames
 * are answered by the dispatcher (non-blocking send: a client that does
 * not drain its mailbox cannot stall the dispatcher) or dropped. A semaphore of max_inflight units
 * bounds the handler uthreads: when none is left the dispatcher stops
 * receiving, and the senders feel it as a full mailbox.
 *
 * Peers are shared by the dispatcher (which owns the table: only it
 * inserts and removes) and the handlers of their requests: a reference
 * count, the table holding one. The last put closes the sender.
 *
 * In-flight requests are in a hash table (by peer and call id) under a
 * spinlock, so a cancel frame can mark its request; a cancelled request's
 * reply is not sent.
 *
 * Client. Calls wait in a hash table by id (under a spinlock). A call is
 * entered before its request is sent, so the reply always finds it. Who
 * takes a call out of the table - the receiver uthread with its reply,
 * rpc_cancel(), or the caller itself on timeout - owns its completion:
 * the first two set its status and up its semaphore; a caller whose timed
 * wait expired but finds its call already taken waits for that up (it is
 * on its way) before its stack frame, which may hold the call, goes.
 * Replies that find no call are late (the id was issued) or stray (never
 * issued), dropped and counted.
 *
 * Connections (senders to server mailboxes) are cached per client; one
 * found dead (-EPIPE, -EKEYREVOKED) is retired - kept until the client
 * closes, since a call in flight may still point to it - and, for a name
 * client, the name is invalidated and the call resolved again, once.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <atoll/atomic.h>
#include <atoll/clock.h>
#include <atoll/compiler.h>
#include <atoll/hash.h>
#include <atoll/lock.h>
#include <atoll/mbox.h>
#include <atoll/name.h>
#include <atoll/rpc.h>
#include <atoll/sync.h>
#include <atoll/uthread.h>

/* ---- codec helpers ------------------------------------------------------ */

void rpc__w_bytes(struct rpc__wr *w, const void *src, uint32_t len,
		  uint32_t max)
{
	if (w->err)
		return;
	if (len > max) {
		w->err = -EINVAL;
		return;
	}
	rpc__w_le(w, len, 4);
	if (w->err)
		return;
	if ((size_t)(w->end - w->p) < len) {
		w->err = -EMSGSIZE;
		return;
	}
	if (len)
		memcpy(w->p, src, len);
	w->p += len;
}

void rpc__w_str(struct rpc__wr *w, const char *s, uint32_t max)
{
	size_t len = strnlen(s, (size_t)max + 1);

	if (len > max) {
		if (!w->err)
			w->err = -EINVAL;
		return;
	}
	rpc__w_bytes(w, s, (uint32_t)len, max);
}

void rpc__r_bytes(struct rpc__rd *r, void *dst, uint32_t *len, uint32_t max)
{
	uint32_t n = (uint32_t)rpc__r_le(r, 4);

	*len = 0;
	if (r->err)
		return;
	if (n > max || (size_t)(r->end - r->p) < n) {
		r->err = -EBADMSG;
		return;
	}
	if (n)
		memcpy(dst, r->p, n);
	r->p += n;
	*len = n;
}

void rpc__r_str(struct rpc__rd *r, char *dst, uint32_t max)
{
	uint32_t n;

	rpc__r_bytes(r, dst, &n, max);
	dst[n] = '\0';
	if (!r->err && memchr(dst, '\0', n)) {
		r->err = -EBADMSG; /* an embedded NUL */
		dst[0] = '\0';
	}
}

/* ---- wire --------------------------------------------------------------- */

/* Mailbox types of RPC frames (docs/rpc.md). */
enum {
	RPC_K_HELLO = 0x5248,   /* "RH" */
	RPC_K_REQ = 0x5251,     /* "RQ" */
	RPC_K_REP = 0x5250,     /* "RP" */
	RPC_K_CANCEL = 0x5243,  /* "RC" */
	RPC_K_BYE = 0x5242,     /* "RB" */
	RPC_K_STOP = 0x5253,    /* "RS": from the owner's own sender only */
};

#define RPC_VERSION 1u
#define RPC_HELLO_FIXED 28u     /* tag, version, cap, address length */
#define RPC_CANCEL_SIZE 16u

/* The 24-byte header of requests and replies. */
struct rpc_wire {
	uint32_t tag;           /* protocol tag */
	uint32_t type;          /* message type */
	uint64_t id;            /* call id */
	uint32_t word;          /* request: timeout in us (0: none);
				 * reply: status (int32) */
	uint32_t body_len;
};

BUILD_ASSERT(RPC_HDR_SIZE == 24);

static void put_le(uint8_t *p, uint64_t v, unsigned n)
{
	for (unsigned i = 0; i < n; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static uint64_t get_le(const uint8_t *p, unsigned n)
{
	uint64_t v = 0;

	for (unsigned i = 0; i < n; i++)
		v |= (uint64_t)p[i] << (8 * i);
	return v;
}

static void wire_put(uint8_t *p, const struct rpc_wire *h)
{
	put_le(p, h->tag, 4);
	put_le(p + 4, h->type, 4);
	put_le(p + 8, h->id, 8);
	put_le(p + 16, h->word, 4);
	put_le(p + 20, h->body_len, 4);
}

/* Parse a request or reply header of a frame of n bytes: -EBADMSG when
 * the frame is shorter than a header or its body length disagrees. */
static int wire_get(const uint8_t *p, size_t n, struct rpc_wire *h)
{
	if (n < RPC_HDR_SIZE)
		return -EBADMSG;
	h->tag = (uint32_t)get_le(p, 4);
	h->type = (uint32_t)get_le(p + 4, 4);
	h->id = get_le(p + 8, 8);
	h->word = (uint32_t)get_le(p + 16, 4);
	h->body_len = (uint32_t)get_le(p + 20, 4);
	if (h->body_len != n - RPC_HDR_SIZE)
		return -EBADMSG;
	return 0;
}

/* The protocol tag: FNV-1a of the protocol's name, so a client of one
 * protocol talking to a server of another is told (-EPROTO). */
static uint32_t proto_tag(const struct rpc_proto *proto)
{
	uint32_t h = 2166136261u;

	for (const char *c = proto->name; *c; c++)
		h = (h ^ (uint8_t)*c) * 16777619u;
	return h;
}

static bool proto_valid(const struct rpc_proto *proto)
{
	if (!proto || !proto->name || !proto->msgs || !proto->nr_types)
		return false;
	for (uint32_t t = 1; t <= proto->nr_types; t++)
		if (!proto->msgs[t] || proto->msgs[t]->type != t)
			return false;
	return true;
}

static bool desc_of(const struct rpc_proto *proto,
		    const struct rpc_msg_desc *desc)
{
	return desc && desc->type >= 1 && desc->type <= proto->nr_types &&
	       proto->msgs[desc->type] == desc;
}

/* A status as it may travel: 0 or a negative errno. */
static bool status_valid(int32_t st)
{
	return st <= 0 && st > -4096;
}

/* Send a hello on s: our reply mailbox mb. */
static int send_hello(struct mbox_sender *s, uint32_t tag, struct mbox *mb,
		      unsigned flags)
{
	uint8_t buf[RPC_HELLO_FIXED + MBOX_ADDR_STR_MAX];
	struct mbox_addr addr;
	struct mbox_cap cap;
	int n;

	mbox_addr(mb, &addr);
	mbox_cap(mb, &cap);
	n = mbox_addr_format(&addr, (char *)buf + RPC_HELLO_FIXED,
			     MBOX_ADDR_STR_MAX);
	if (n < 0)
		return n;
	put_le(buf, tag, 4);
	put_le(buf + 4, RPC_VERSION, 4);
	memcpy(buf + 8, cap.b, 16);
	put_le(buf + 24, (uint32_t)n, 4);
	return mbox_send(s, RPC_K_HELLO, buf, RPC_HELLO_FIXED + (size_t)n,
			 flags);
}

/* ---- server ------------------------------------------------------------- */

#define SRV_PEER_BUCKETS 64u
#define SRV_INFLIGHT_BUCKETS 256u
#define SRV_IDLE_DEFAULT 64u

struct srv_peer {
	struct srv_peer *next;          /* in the peer table (dispatcher) */
	uint32_t sender;                /* mbox sender id of its requests */
	uint32_t refs;                  /* atomic: the table's + requests' */
	struct mbox_sender *snd;        /* to the client's reply mailbox */
};

struct rpc_ctx {
	struct rpc_ctx *next;           /* in-flight table, under srv->lock */
	struct rpc_server *srv;
	struct srv_peer *peer;
	const struct rpc_msg_desc *desc;
	uint64_t id;
	uint64_t deadline;
	uint32_t cancelled;             /* atomic */
	void *req, *rep;
};

struct handler {
	rpc__fnptr fn;
	void *arg;
};

/* A handler uthread: runs one request, then waits on the idle list for
 * the next one, or exits. */
struct srv_worker {
	struct srv_worker *next;        /* idle list, under srv->lock */
	struct rpc_server *srv;
	struct rpc_ctx *ctx;            /* its request; NULL: exit */
	struct uth_sem go;              /* upped when ctx is set */
};

struct rpc_server {
	const struct rpc_proto *proto;
	uint32_t tag;
	struct mbox *mb;
	struct mbox_sender *self;       /* our own: STOP */
	uint32_t self_id;
	struct handler *handlers;       /* [nr_types + 1] */
	struct uthread *dispatcher;
	bool started;
	uint32_t max_inflight;
	size_t stack_size;
	enum mbox_transport reply_transport;
	struct uth_sem slots;           /* free handler slots */

	/* Owned by the dispatcher. */
	struct srv_peer *peers[SRV_PEER_BUCKETS];

	struct spinlock lock;           /* guards inflight, idle, nr_idle */
	struct rpc_ctx *inflight[SRV_INFLIGHT_BUCKETS];
	struct srv_worker *idle;        /* finished workers, newest first */
	uint32_t nr_idle;
	uint32_t idle_max;
	struct uth_sem exited;          /* idle workers let go by destroy */

	struct rpc_server_stats st;     /* atomic counters */
};

#define STAT_INC(p) fetch_add_relaxed(&(p), 1)

static unsigned inflight_bucket(uint32_t sender, uint64_t id)
{
	return (unsigned)(hash64_u64((uint64_t)sender << 32 ^ id) &
			  (SRV_INFLIGHT_BUCKETS - 1));
}

static void srv_stat_add32(uint32_t *p, int d)
{
	fetch_add_relaxed(p, (uint32_t)d);
}

/* Drop one reference; the last closes the sender. Any uthread. */
static void peer_put(struct srv_peer *p)
{
	/* Acq_rel: the last put comes after every other holder's sends. */
	if (fetch_sub_acq_rel(&p->refs, 1) == 1) {
		mbox_close(p->snd);
		free(p);
	}
}

static struct srv_peer **peer_slot(struct rpc_server *srv, uint32_t sender)
{
	struct srv_peer **pp = &srv->peers[sender % SRV_PEER_BUCKETS];

	while (*pp && (*pp)->sender != sender)
		pp = &(*pp)->next;
	return pp;
}

/* Forget the peer of sender, if any. Dispatcher only. */
static void peer_remove(struct rpc_server *srv, uint32_t sender)
{
	struct srv_peer **pp = peer_slot(srv, sender);
	struct srv_peer *p = *pp;

	if (!p)
		return;
	*pp = p->next;
	srv_stat_add32(&srv->st.peers, -1);
	peer_put(p);
}

/* A hello: open a sender to the client's reply mailbox and file it under
 * the sender id the hello came from. Dispatcher only. */
static void srv_hello(struct rpc_server *srv, uint32_t sender,
		      const uint8_t *buf, size_t n)
{
	char text[MBOX_ADDR_STR_MAX + 1];
	struct mbox_open_opts oo = { .transport = srv->reply_transport };
	struct mbox_addr addr;
	struct mbox_cap cap;
	struct srv_peer *p;
	uint32_t alen;

	/* A new hello replaces what the old one said, valid or not. */
	peer_remove(srv, sender);
	if (n < RPC_HELLO_FIXED)
		goto bad;
	alen = (uint32_t)get_le(buf + 24, 4);
	/* The protocol tag is not checked here: a client of another
	 * protocol gets -EPROTO for each request rather than silence. */
	if (get_le(buf + 4, 4) != RPC_VERSION ||
	    alen != n - RPC_HELLO_FIXED || alen > MBOX_ADDR_STR_MAX)
		goto bad;
	memcpy(text, buf + RPC_HELLO_FIXED, alen);
	text[alen] = '\0';
	memcpy(cap.b, buf + 8, 16);
	if (mbox_addr_parse(text, &addr))
		goto bad;
	p = calloc(1, sizeof(*p));
	if (!p)
		goto bad;
	if (mbox_open(&addr, &cap, &oo, &p->snd)) {
		free(p);
		goto bad;
	}
	p->sender = sender;
	p->refs = 1;
	p->next = srv->peers[sender % SRV_PEER_BUCKETS];
	srv->peers[sender % SRV_PEER_BUCKETS] = p;
	srv_stat_add32(&srv->st.peers, 1);
	return;
bad:
	STAT_INC(srv->st.bad);
}

/* Answer a request with an error status, without blocking. */
static void srv_reply_error(struct rpc_server *srv, struct srv_peer *p,
			    const struct rpc_wire *req, int status)
{
	/* The request's tag, even a wrong one: its sender must accept it. */
	struct rpc_wire w = { req->tag, req->type, req->id, (uint32_t)status,
			      0 };
	uint8_t hdr[RPC_HDR_SIZE];

	wire_put(hdr, &w);
	STAT_INC(srv->st.rejected);
	if (mbox_send(p->snd, RPC_K_REP, hdr, sizeof(hdr), MBOX_NONBLOCK))
		STAT_INC(srv->st.send_failed);
	else
		STAT_INC(srv->st.replies);
}

static void inflight_add(struct rpc_server *srv, struct rpc_ctx *c)
{
	unsigned b = inflight_bucket(c->peer->sender, c->id);

	spin_lock(&srv->lock);
	c->next = srv->inflight[b];
	srv->inflight[b] = c;
	spin_unlock(&srv->lock);
}

static void inflight_del(struct rpc_server *srv, struct rpc_ctx *c)
{
	struct rpc_ctx **pp =
		&srv->inflight[inflight_bucket(c->peer->sender, c->id)];

	spin_lock(&srv->lock);
	while (*pp != c)
		pp = &(*pp)->next;
	*pp = c->next;
	spin_unlock(&srv->lock);
}

/* Run one request's handler and send its reply; frees c. */
static void srv_run(struct rpc_ctx *c)
{
	struct rpc_server *srv = c->srv;
	const struct rpc_msg_desc *d = c->desc;
	const struct handler *h = &srv->handlers[d->type];
	uint8_t frame[RPC_FRAME_MAX];
	struct rpc_wire w = { srv->tag, d->type, c->id, 0, 0 };
	int st, n;

	if (c->deadline != UINT64_MAX && fast_ns() > c->deadline) {
		/* The caller has given up already. */
		STAT_INC(srv->st.expired);
		inflight_del(srv, c);
		goto out;
	}
	STAT_INC(srv->st.requests);
	st = d->invoke(h->fn, h->arg, c->req, c->rep, c);
	inflight_del(srv, c);
	/* Acquire: pairs with srv_cancel()'s release store. */
	if (load_acquire(&c->cancelled)) {
		STAT_INC(srv->st.cancelled);
		goto out;
	}
	if (st == 0) {
		n = d->rep_encode(c->rep, frame + RPC_HDR_SIZE, RPC_BODY_MAX);
		if (n < 0)
			st = -EPROTO; /* the handler broke its reply's bounds */
		else
			w.body_len = (uint32_t)n;
	} else if (!status_valid(st)) {
		st = -EPROTO;
	}
	if (st)
		w.body_len = 0;
	w.word = (uint32_t)st;
	wire_put(frame, &w);
	if (mbox_send(c->peer->snd, RPC_K_REP, frame,
		      RPC_HDR_SIZE + w.body_len, 0))
		STAT_INC(srv->st.send_failed);
	else
		STAT_INC(srv->st.replies);
out:
	peer_put(c->peer);
	free(c);
}

/* A handler uthread's life: requests one after the other, each on a
 * fresh stack frame, until the idle list is full or the server goes. */
static void *srv_worker_fn(void *arg)
{
	struct srv_worker *wk = arg;

	for (;;) {
		struct rpc_server *srv;
		bool keep;

		uth_sem_down(&wk->go);
		srv = wk->srv;
		if (!wk->ctx) {
			/* rpc_server_destroy() waits for this. */
			free(wk);
			uth_sem_up(&srv->exited); /* last access to srv */
			return NULL;
		}
		srv_run(wk->ctx);
		wk->ctx = NULL;
		spin_lock(&srv->lock);
		keep = srv->nr_idle < srv->idle_max;
		if (keep) {
			wk->next = srv->idle;
			srv->idle = wk;
			srv->nr_idle++;
		}
		spin_unlock(&srv->lock);
		srv_stat_add32(&srv->st.inflight, -1);
		/* Last access to srv: once every slot is back, destroy may
		 * free it. An idle worker then only touches wk. */
		uth_sem_up(&srv->slots);
		if (!keep)
			break;
	}
	free(wk);
	return NULL;
}

/* Hand c to an idle worker, or to a new one. 0 or -ENOMEM. */
static int srv_spawn(struct rpc_server *srv, struct rpc_ctx *c)
{
	struct uthread_attr attr = { .detached = 1, .name = "rpc-handler",
				     .stack_size = srv->stack_size };
	struct srv_worker *wk;

	spin_lock(&srv->lock);
	wk = srv->idle;
	if (wk) {
		srv->idle = wk->next;
		srv->nr_idle--;
	}
	spin_unlock(&srv->lock);
	if (wk) {
		wk->ctx = c;
		uth_sem_up(&wk->go); /* orders ctx before the worker's read */
		return 0;
	}
	wk = calloc(1, sizeof(*wk));
	if (!wk)
		return -ENOMEM;
	wk->srv = srv;
	wk->ctx = c;
	uth_sem_init(&wk->go, 1);
	if (uthread_create(NULL, &attr, srv_worker_fn, wk)) {
		free(wk);
		return -ENOMEM;
	}
	return 0;
}

/* A request: validate, decode, spawn its uthread. Dispatcher only. */
static void srv_request(struct rpc_server *srv, uint32_t sender,
			const uint8_t *buf, size_t n)
{
	struct srv_peer *p = *peer_slot(srv, sender);
	const struct rpc_msg_desc *d;
	struct rpc_wire w;
	struct rpc_ctx *c;
	size_t req_off, rep_off;

	if (!p || n < RPC_HDR_SIZE) {
		STAT_INC(srv->st.bad); /* nobody to answer, or no id */
		return;
	}
	if (wire_get(buf, n, &w)) {
		srv_reply_error(srv, p, &w, -EBADMSG);
		return;
	}
	if (w.tag != srv->tag) {
		srv_reply_error(srv, p, &w, -EPROTO);
		return;
	}
	if (w.type < 1 || w.type > srv->proto->nr_types ||
	    !srv->handlers[w.type].fn) {
		srv_reply_error(srv, p, &w, -ENOSYS);
		return;
	}
	d = srv->proto->msgs[w.type];
	req_off = ALIGN_UP(sizeof(*c), 16);
	rep_off = req_off + ALIGN_UP(d->req_size, 16);
	c = calloc(1, rep_off + d->rep_size);
	if (!c) {
		srv_reply_error(srv, p, &w, -ENOMEM);
		return;
	}
	c->req = (char *)c + req_off;
	c->rep = (char *)c + rep_off;
	if (d->req_decode(c->req, buf + RPC_HDR_SIZE, w.body_len)) {
		free(c);
		srv_reply_error(srv, p, &w, -EBADMSG);
		return;
	}
	c->srv = srv;
	c->peer = p;
	c->desc = d;
	c->id = w.id;
	c->deadline = w.word ? fast_ns() + (uint64_t)w.word * NSEC_PER_USEC
			     : UINT64_MAX;
	/* The table's reference keeps p alive here; this one is the
	 * handler's. */
	fetch_add_relaxed(&p->refs, 1);
	uth_sem_down(&srv->slots); /* back-pressure */
	srv_stat_add32(&srv->st.inflight, 1);
	inflight_add(srv, c);
	if (srv_spawn(srv, c)) {
		inflight_del(srv, c);
		srv_reply_error(srv, p, &w, -ENOMEM);
		peer_put(p);
		free(c);
		srv_stat_add32(&srv->st.inflight, -1);
		uth_sem_up(&srv->slots);
	}
}

/* A cancel: mark the request if it is still in flight. */
static void srv_cancel(struct rpc_server *srv, uint32_t sender,
		       const uint8_t *buf, size_t n)
{
	uint64_t id;

	if (n != RPC_CANCEL_SIZE || get_le(buf, 4) != srv->tag) {
		STAT_INC(srv->st.bad);
		return;
	}
	id = get_le(buf + 8, 8);
	spin_lock(&srv->lock);
	for (struct rpc_ctx *c = srv->inflight[inflight_bucket(sender, id)];
	     c; c = c->next) {
		if (c->id == id && c->peer->sender == sender) {
			/* Release: pairs with the handler's acquire. */
			store_release(&c->cancelled, 1);
			break;
		}
	}
	spin_unlock(&srv->lock);
	/* Too late (done) is not an error: the reply crossed the cancel. */
}

static void *srv_dispatch(void *arg)
{
	struct rpc_server *srv = arg;
	uint8_t buf[RPC_FRAME_MAX];

	for (;;) {
		struct mbox_hdr mh;
		int n = mbox_recv(srv->mb, &mh, buf, sizeof(buf), MBOX_FOREVER);

		if (n < 0) {
			if (n == -EMSGSIZE)
				STAT_INC(srv->st.bad);
			else if (n != -ETIMEDOUT && n != -EAGAIN)
				uthread_sleep_ns(NSEC_PER_MSEC); /* no spin */
			continue;
		}
		switch (mh.type) {
		case RPC_K_REQ:
			srv_request(srv, mh.sender, buf, (size_t)n);
			break;
		case RPC_K_HELLO:
			srv_hello(srv, mh.sender, buf, (size_t)n);
			break;
		case RPC_K_CANCEL:
			srv_cancel(srv, mh.sender, buf, (size_t)n);
			break;
		case RPC_K_BYE:
			peer_remove(srv, mh.sender);
			break;
		case RPC_K_STOP:
			if (mh.sender == srv->self_id)
				return NULL;
			STAT_INC(srv->st.bad);
			break;
		default:
			STAT_INC(srv->st.bad);
			break;
		}
	}
}

/* Open a LOCAL sender to our own mailbox (to stop its receiver). */
static int open_self(struct mbox *mb, struct mbox_sender **out, uint32_t *id)
{
	struct mbox_open_opts oo = { .transport = MBOX_TRANSPORT_LOCAL };
	struct mbox_addr addr;
	struct mbox_cap cap;
	int err;

	mbox_addr(mb, &addr);
	mbox_cap(mb, &cap);
	err = mbox_open(&addr, &cap, &oo, out);
	if (!err)
		*id = mbox_sender_id(*out);
	return err;
}

int rpc_server_create(struct rpc_server **out, const struct rpc_proto *proto,
		      const struct rpc_server_opts *opts)
{
	struct rpc_server *srv;
	int err = -ENOMEM;

	if (!out || !proto_valid(proto))
		return -EINVAL;
	srv = calloc(1, sizeof(*srv));
	if (!srv)
		return -ENOMEM;
	srv->proto = proto;
	srv->tag = proto_tag(proto);
	srv->handlers = calloc(proto->nr_types + 1, sizeof(*srv->handlers));
	if (!srv->handlers)
		goto fail_free;
	srv->max_inflight = opts && opts->max_inflight ? opts->max_inflight
						       : 1024;
	srv->stack_size = opts ? opts->stack_size : 0;
	srv->idle_max = !opts ? SRV_IDLE_DEFAULT
		: opts->fresh_uthreads ? 0
		: opts->idle_max ? opts->idle_max : SRV_IDLE_DEFAULT;
	srv->reply_transport = opts ? opts->reply_transport
				    : MBOX_TRANSPORT_AUTO;
	uth_sem_init(&srv->slots, srv->max_inflight);
	uth_sem_init(&srv->exited, 0);
	spin_lock_init(&srv->lock);
	err = mbox_create(opts && opts->name ? opts->name : proto->name,
			  opts ? &opts->mbox : NULL, &srv->mb);
	if (err)
		goto fail_free;
	err = open_self(srv->mb, &srv->self, &srv->self_id);
	if (err)
		goto fail_mbox;
	*out = srv;
	return 0;

fail_mbox:
	mbox_destroy(srv->mb);
fail_free:
	free(srv->handlers);
	free(srv);
	return err;
}

int rpc__serve(struct rpc_server *srv, const struct rpc_msg_desc *desc,
	       rpc__fnptr fn, void *arg)
{
	if (!srv || !fn || !desc_of(srv->proto, desc))
		return -EINVAL;
	if (srv->started)
		return -EBUSY;
	srv->handlers[desc->type].fn = fn;
	srv->handlers[desc->type].arg = arg;
	return 0;
}

int rpc_server_start(struct rpc_server *srv)
{
	struct uthread_attr attr = { .name = "rpc-dispatcher" };
	int err;

	if (!srv)
		return -EINVAL;
	if (srv->started)
		return -EBUSY;
	err = uthread_create(&srv->dispatcher, &attr, srv_dispatch, srv);
	if (err)
		return err;
	srv->started = true;
	return 0;
}

void rpc_server_destroy(struct rpc_server *srv)
{
	uint32_t nr;

	if (!srv)
		return;
	if (srv->started) {
		BUG_ON(mbox_send(srv->self, RPC_K_STOP, NULL, 0, 0));
		BUG_ON(uthread_join(srv->dispatcher, NULL));
		/* Every worker gives its slot back as its last act. */
		for (uint32_t i = 0; i < srv->max_inflight; i++)
			uth_sem_down(&srv->slots);
		/* Now the idle workers are all there is: let them go, and
		 * wait until none touches srv any more. */
		nr = 0;
		while (srv->idle) {
			struct srv_worker *wk = srv->idle;

			srv->idle = wk->next; /* read before wk goes */
			wk->ctx = NULL;
			uth_sem_up(&wk->go);
			nr++;
		}
		while (nr--)
			uth_sem_down(&srv->exited);
	}
	for (unsigned b = 0; b < SRV_PEER_BUCKETS; b++) {
		while (srv->peers[b]) {
			struct srv_peer *p = srv->peers[b];

			srv->peers[b] = p->next;
			peer_put(p);
		}
	}
	mbox_close(srv->self);
	mbox_destroy(srv->mb);
	free(srv->handlers);
	free(srv);
}

struct mbox *rpc_server_mbox(struct rpc_server *srv)
{
	return srv->mb;
}

void rpc_server_stats(const struct rpc_server *srv, struct rpc_server_stats *st)
{
	st->requests = load_relaxed(&srv->st.requests);
	st->replies = load_relaxed(&srv->st.replies);
	st->rejected = load_relaxed(&srv->st.rejected);
	st->bad = load_relaxed(&srv->st.bad);
	st->cancelled = load_relaxed(&srv->st.cancelled);
	st->expired = load_relaxed(&srv->st.expired);
	st->send_failed = load_relaxed(&srv->st.send_failed);
	st->peers = load_relaxed(&srv->st.peers);
	st->inflight = load_relaxed(&srv->st.inflight);
}

bool rpc_ctx_cancelled(const struct rpc_ctx *ctx)
{
	return load_acquire(&ctx->cancelled) != 0;
}

uint64_t rpc_ctx_deadline(const struct rpc_ctx *ctx)
{
	return ctx->deadline;
}

uint32_t rpc_ctx_sender(const struct rpc_ctx *ctx)
{
	return ctx->peer->sender;
}

uint64_t rpc_ctx_call_id(const struct rpc_ctx *ctx)
{
	return ctx->id;
}

/* ---- client ------------------------------------------------------------- */

#define CL_PENDING_BUCKETS 256u
#define CL_DEFAULT_TIMEOUT_NS NSEC_PER_SEC

struct rpc__conn {
	struct rpc__conn *next;         /* conns or retired; conn_lock */
	struct mbox_addr addr;
	struct mbox_cap cap;
	char member[NAME_MAX_LEN + 1];  /* name client: the member's name */
	struct mbox_sender *snd;
	bool dead;                      /* retired; conn_lock */
};

struct rpc_client {
	const struct rpc_proto *proto;
	uint32_t tag;
	struct mbox *mb;                /* replies */
	struct mbox_sender *self;       /* our own: STOP */
	uint32_t self_id;
	struct uthread *receiver;
	uint64_t timeout_ns;
	enum mbox_transport transport;
	struct name_client *nc;         /* NULL: fixed server */
	char service[NAME_MAX_LEN + 1];

	struct uth_mutex conn_lock;     /* guards conns (changes; a fixed
					 * client reads it without), retired,
					 * ->dead */
	struct rpc__conn *conns;
	struct rpc__conn *retired;

	struct spinlock lock;           /* guards pending, ->pending, next_id */
	struct rpc_call *pending[CL_PENDING_BUCKETS];
	uint64_t next_id;               /* last id issued */

	struct rpc_client_stats st;     /* atomic counters */
};

/* Take the call with this id out of the table, or NULL. Caller holds
 * cl->lock. */
static struct rpc_call *pending_take_locked(struct rpc_client *cl,
					    uint64_t id)
{
	struct rpc_call **pp = &cl->pending[id % CL_PENDING_BUCKETS];

	for (; *pp; pp = &(*pp)->next) {
		struct rpc_call *call = *pp;

		if (call->id == id) {
			*pp = call->next;
			call->pending = false;
			return call;
		}
	}
	return NULL;
}

/* Enter call with a fresh id. */
static void pending_add(struct rpc_client *cl, struct rpc_call *call)
{
	spin_lock(&cl->lock);
	call->id = ++cl->next_id;
	call->next = cl->pending[call->id % CL_PENDING_BUCKETS];
	cl->pending[call->id % CL_PENDING_BUCKETS] = call;
	call->pending = true;
	spin_unlock(&cl->lock);
}

/* Take call out of the table if it is still there; false when someone
 * else took it (its completion is then on its way: wait for it). */
static bool pending_withdraw(struct rpc_client *cl, struct rpc_call *call)
{
	bool mine;

	spin_lock(&cl->lock);
	mine = call->pending;
	if (mine)
		pending_take_locked(cl, call->id);
	spin_unlock(&cl->lock);
	return mine;
}

/* The receiver: match replies to calls. */
static void *cl_receive(void *arg)
{
	struct rpc_client *cl = arg;
	uint8_t buf[RPC_FRAME_MAX];

	for (;;) {
		struct mbox_hdr mh;
		struct rpc_call *call;
		struct rpc_wire w;
		bool issued;
		int32_t st;
		int n = mbox_recv(cl->mb, &mh, buf, sizeof(buf), MBOX_FOREVER);

		if (n < 0) {
			if (n == -EMSGSIZE)
				STAT_INC(cl->st.bad);
			else if (n != -ETIMEDOUT && n != -EAGAIN)
				uthread_sleep_ns(NSEC_PER_MSEC); /* no spin */
			continue;
		}
		if (mh.type == RPC_K_STOP && mh.sender == cl->self_id)
			return NULL;
		if (mh.type != RPC_K_REP || wire_get(buf, (size_t)n, &w) ||
		    w.tag != cl->tag) {
			STAT_INC(cl->st.bad);
			continue;
		}
		spin_lock(&cl->lock);
		call = pending_take_locked(cl, w.id);
		issued = w.id != 0 && w.id <= cl->next_id;
		spin_unlock(&cl->lock);
		if (!call) {
			if (issued)
				STAT_INC(cl->st.late);
			else
				STAT_INC(cl->st.stray);
			continue;
		}
		/* Ours now: nobody else touches call until the up. */
		st = (int32_t)w.word;
		if (w.type != call->desc->type || !status_valid(st) ||
		    (st && w.body_len)) {
			STAT_INC(cl->st.bad);
			st = -EBADMSG;
		} else if (st == 0 &&
			   call->desc->rep_decode(call->rep,
						  buf + RPC_HDR_SIZE,
						  w.body_len)) {
			STAT_INC(cl->st.bad);
			st = -EBADMSG;
		}
		call->status = st;
		uth_sem_up(&call->done); /* last access to call */
	}
}

/* Open a sender to addr and introduce ourselves on it. */
static int conn_open(struct rpc_client *cl, const struct mbox_addr *addr,
		     const struct mbox_cap *cap, const char *member,
		     struct rpc__conn **out)
{
	struct mbox_open_opts oo = { .transport = cl->transport };
	struct rpc__conn *c = calloc(1, sizeof(*c));
	int err;

	if (!c)
		return -ENOMEM;
	c->addr = *addr;
	c->cap = *cap;
	if (member)
		strncpy(c->member, member, NAME_MAX_LEN);
	err = mbox_open(addr, cap, &oo, &c->snd);
	if (err) {
		free(c);
		return err;
	}
	err = send_hello(c->snd, cl->tag, cl->mb, 0);
	if (err) {
		mbox_close(c->snd);
		free(c);
		return err;
	}
	*out = c;
	return 0;
}

/* The connection a call goes on: the fixed one, or the member the name
 * service picks for this key. */
static int conn_get(struct rpc_client *cl, const struct rpc_call_opts *opts,
		    struct rpc__conn **out)
{
	struct name_entry e;
	struct rpc__conn *c;
	int err;

	if (!cl->nc) {
		/* Acquire: pairs with conn_retire()'s release; c itself stays
		 * valid until the client closes. */
		c = load_acquire(&cl->conns);
		if (!c)
			return -EPIPE; /* the server is gone */
		*out = c;
		return 0;
	}
	err = name_resolve(cl->nc, cl->service, opts ? opts->key : NULL,
			   opts ? opts->keylen : 0, 0, &e);
	if (err)
		return err;
	if (!e.has_cap)
		return -EACCES;
	uth_mutex_lock(&cl->conn_lock);
	for (c = cl->conns; c; c = c->next)
		if (mbox_addr_same(&c->addr, &e.addr) &&
		    mbox_cap_equal(&c->cap, &e.cap))
			break;
	if (!c) {
		err = conn_open(cl, &e.addr, &e.cap, e.member, &c);
		if (!err) {
			c->next = cl->conns;
			cl->conns = c;
		}
	}
	uth_mutex_unlock(&cl->conn_lock);
	*out = c;
	return err;
}

/* c failed for good: keep it (calls may point at it) but stop using it. */
static void conn_retire(struct rpc_client *cl, struct rpc__conn *c)
{
	bool was_live;

	uth_mutex_lock(&cl->conn_lock);
	was_live = !c->dead;
	if (was_live) {
		struct rpc__conn **pp = &cl->conns;

		while (*pp != c)
			pp = &(*pp)->next;
		/* Release: pairs with the lock-free read in conn_get(). */
		store_release(pp, c->next);
		c->dead = true;
		c->next = cl->retired;
		cl->retired = c;
		STAT_INC(cl->st.reconnects);
	}
	uth_mutex_unlock(&cl->conn_lock);
	if (was_live && cl->nc && c->member[0])
		name_invalidate(cl->nc, c->member);
}

static int client_new(struct rpc_client **out, const struct rpc_proto *proto,
		      const struct rpc_client_opts *opts)
{
	struct uthread_attr attr = { .name = "rpc-receiver" };
	struct rpc_client *cl;
	int err;

	if (!out || !proto_valid(proto))
		return -EINVAL;
	if (!uthread_self())
		return -EPERM;
	cl = calloc(1, sizeof(*cl));
	if (!cl)
		return -ENOMEM;
	cl->proto = proto;
	cl->tag = proto_tag(proto);
	cl->timeout_ns = opts && opts->timeout_ns ? opts->timeout_ns
						  : CL_DEFAULT_TIMEOUT_NS;
	cl->transport = opts ? opts->transport : MBOX_TRANSPORT_AUTO;
	uth_mutex_init(&cl->conn_lock);
	spin_lock_init(&cl->lock);
	err = mbox_create("rpc-client", opts ? &opts->mbox : NULL, &cl->mb);
	if (err)
		goto fail_free;
	err = open_self(cl->mb, &cl->self, &cl->self_id);
	if (err)
		goto fail_mbox;
	err = uthread_create(&cl->receiver, &attr, cl_receive, cl);
	if (err)
		goto fail_self;
	*out = cl;
	return 0;

fail_self:
	mbox_close(cl->self);
fail_mbox:
	mbox_destroy(cl->mb);
fail_free:
	free(cl);
	return err;
}

int rpc_client_open(struct rpc_client **out, const struct rpc_proto *proto,
		    const struct mbox_addr *addr, const struct mbox_cap *cap,
		    const struct rpc_client_opts *opts)
{
	struct rpc_client *cl;
	int err;

	if (!addr || !cap)
		return -EINVAL;
	err = client_new(&cl, proto, opts);
	if (err)
		return err;
	err = conn_open(cl, addr, cap, NULL, &cl->conns);
	if (err) {
		rpc_client_close(cl);
		return err;
	}
	*out = cl;
	return 0;
}

int rpc_client_open_name(struct rpc_client **out,
			 const struct rpc_proto *proto,
			 struct name_client *nc, const char *service,
			 const struct rpc_client_opts *opts)
{
	struct rpc_client *cl;
	int err;

	if (!nc || !service)
		return -EINVAL;
	err = name_check(service, NULL);
	if (err < 0)
		return err;
	err = client_new(&cl, proto, opts);
	if (err)
		return err;
	cl->nc = nc;
	strncpy(cl->service, service, NAME_MAX_LEN);
	*out = cl;
	return 0;
}

static void conn_bye_close(struct rpc__conn *c)
{
	if (!c->dead)
		(void)mbox_send(c->snd, RPC_K_BYE, NULL, 0, MBOX_NONBLOCK);
	mbox_close(c->snd);
	free(c);
}

void rpc_client_close(struct rpc_client *cl)
{
	struct rpc__conn *lists[2];

	if (!cl)
		return;
	BUG_ON(mbox_send(cl->self, RPC_K_STOP, NULL, 0, 0));
	BUG_ON(uthread_join(cl->receiver, NULL));
	lists[0] = cl->conns;
	lists[1] = cl->retired;
	for (int i = 0; i < 2; i++) {
		while (lists[i]) {
			struct rpc__conn *c = lists[i];

			lists[i] = c->next;
			conn_bye_close(c);
		}
	}
	mbox_close(cl->self);
	mbox_destroy(cl->mb);
	free(cl);
}

void rpc_client_stats(const struct rpc_client *cl, struct rpc_client_stats *st)
{
	st->calls = load_relaxed(&cl->st.calls);
	st->ok = load_relaxed(&cl->st.ok);
	st->failed = load_relaxed(&cl->st.failed);
	st->timeouts = load_relaxed(&cl->st.timeouts);
	st->cancelled = load_relaxed(&cl->st.cancelled);
	st->late = load_relaxed(&cl->st.late);
	st->stray = load_relaxed(&cl->st.stray);
	st->bad = load_relaxed(&cl->st.bad);
	st->reconnects = load_relaxed(&cl->st.reconnects);
}

struct mbox *rpc_client_mbox(struct rpc_client *cl)
{
	return cl->mb;
}

/* The timeout's deadline on fast_ns(), and the microseconds the request
 * tells the server (0: none). */
static void call_deadline(uint64_t timeout, uint64_t *deadline,
			  uint32_t *us)
{
	uint64_t now = fast_ns();

	if (timeout == UINT64_MAX) {
		*deadline = UINT64_MAX;
		*us = 0;
		return;
	}
	*deadline = timeout < UINT64_MAX - 1 - now ? now + timeout
						   : UINT64_MAX - 1;
	timeout = (timeout + NSEC_PER_USEC - 1) / NSEC_PER_USEC;
	*us = timeout > UINT32_MAX ? 0 : (uint32_t)(timeout ? timeout : 1);
}

int rpc__start(struct rpc_client *cl, struct rpc_call *call,
	       const struct rpc_msg_desc *desc, const void *req, void *rep,
	       const struct rpc_call_opts *opts)
{
	uint8_t frame[RPC_FRAME_MAX];
	struct rpc_wire w;
	uint32_t us;
	int n, err = 0;

	if (!cl || !call || !req || !rep || !desc_of(cl->proto, desc))
		return -EINVAL;
	n = desc->req_encode(req, frame + RPC_HDR_SIZE, RPC_BODY_MAX);
	if (n < 0)
		return n;
	call->cl = cl;
	call->desc = desc;
	call->rep = rep;
	call->status = 0;
	call->pending = false;
	uth_sem_init(&call->done, 0);
	call_deadline(opts && opts->timeout_ns ? opts->timeout_ns
					       : cl->timeout_ns,
		      &call->deadline, &us);
	/* A dead member is retired and the name resolved again, once. */
	for (int attempt = 0; attempt < 2; attempt++) {
		struct rpc__conn *c;

		err = conn_get(cl, opts, &c);
		if (err)
			return err;
		call->conn = c;
		pending_add(cl, call); /* before the send: the reply finds it */
		w = (struct rpc_wire){ cl->tag, desc->type, call->id, us,
				       (uint32_t)n };
		wire_put(frame, &w);
		err = mbox_send(c->snd, RPC_K_REQ, frame,
				RPC_HDR_SIZE + (size_t)n, 0);
		if (!err) {
			STAT_INC(cl->st.calls);
			return 0;
		}
		if (!pending_withdraw(cl, call))
			uth_sem_down(&call->done); /* a forged reply took it */
		if (err != -EPIPE && err != -EKEYREVOKED)
			break;
		conn_retire(cl, c);
		if (!cl->nc)
			break;
	}
	return err;
}

int rpc_wait(struct rpc_call *call)
{
	struct rpc_client *cl = call->cl;
	int r = 0;

	if (call->deadline == UINT64_MAX) {
		uth_sem_down(&call->done);
	} else {
		uint64_t now = fast_ns();

		if (now < call->deadline)
			r = uth_sem_timeddown(&call->done,
					      call->deadline - now);
		else if (!uth_sem_trydown(&call->done))
			r = -ETIMEDOUT;
	}
	if (r) {
		if (pending_withdraw(cl, call)) {
			if (r == -ETIMEDOUT)
				STAT_INC(cl->st.timeouts);
			call->status = r;
			return r;
		}
		/* Taken by the receiver or rpc_cancel(): it is about to up. */
		uth_sem_down(&call->done);
	}
	if (call->status == 0)
		STAT_INC(cl->st.ok);
	else if (call->status != -ECANCELED)
		STAT_INC(cl->st.failed);
	return call->status;
}

int rpc__call(struct rpc_client *cl, const struct rpc_msg_desc *desc,
	      const void *req, void *rep, const struct rpc_call_opts *opts)
{
	struct rpc_call call;
	int err = rpc__start(cl, &call, desc, req, rep, opts);

	return err ? err : rpc_wait(&call);
}

int rpc_cancel(struct rpc_client *cl, uint64_t call_id)
{
	uint8_t buf[RPC_CANCEL_SIZE];
	struct rpc_call *call;
	struct rpc__conn *c;

	spin_lock(&cl->lock);
	call = pending_take_locked(cl, call_id);
	spin_unlock(&cl->lock);
	if (!call)
		return -ENOENT;
	c = call->conn;
	call->status = -ECANCELED;
	uth_sem_up(&call->done); /* last access to call */
	STAT_INC(cl->st.cancelled);
	/* Tell the server, best effort: c lives until the client closes. */
	put_le(buf, cl->tag, 4);
	put_le(buf + 4, 0, 4);
	put_le(buf + 8, call_id, 8);
	(void)mbox_send(c->snd, RPC_K_CANCEL, buf, sizeof(buf), MBOX_NONBLOCK);
	return 0;
}
