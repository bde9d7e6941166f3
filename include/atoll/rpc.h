/* rpc.h - message types declared once, marshalling generated from them,
 * and the RPC layer over mailboxes: servers that run each request in a
 * uthread of its own (fos's cooperative dispatcher), typed client calls
 * that sleep until the reply, a timeout or a cancellation. docs/rpc.md
 * has the design and the wire format.
 *
 * Owns: the generated codec (pure functions), each server (its mailbox,
 * dispatcher uthread, handler uthreads, reply senders) and each client
 * (its reply mailbox, receiver uthread, connections, pending calls).
 *
 * DECLARING MESSAGES. A protocol is an X-macro table. Each entry names a
 * message type, a stem for the generated identifiers, the request's
 * fields and the reply's:
 *
 *	#define KV_MSGS(M)                                                 \
 *		M(KV_GET, kv_get, F_STR(key, 250),                          \
 *		  F_U64(cas) F_BYTES(val, 1024))                            \
 *		M(KV_PUT, kv_put, F_STR(key, 250) F_BYTES(val, 1024),       \
 *		  F_U64(cas))                                               \
 *		M(KV_PING, kv_ping, F_NONE, F_NONE)
 *
 *	RPC_DECLARE(kv, KV_MSGS);  in a header: types, enum, prototypes, stubs
 *	RPC_DEFINE(kv, KV_MSGS);   in one .c file, after RPC_DECLARE
 *
 * Fields (in wire order; all integers little-endian):
 *	F_U8(n) F_U16(n) F_U32(n) F_U64(n) F_I32(n) F_I64(n)
 *	F_STR(n, max)    C string: char n[max + 1], NUL-terminated; on the
 *	                 wire a u32 length (<= max) and the bytes, no NUL;
 *	                 a string with an embedded NUL is refused on decode
 *	F_BYTES(n, max)  uint32_t n_len; uint8_t n[max]; on the wire a u32
 *	                 length (<= max) and the bytes
 *	F_NONE           no fields
 * max must be an integer constant expression.
 *
 * Generated for each entry M(ID, stem, req, rep):
 *  - the enumerator ID in enum proto_type: the message's wire type,
 *    numbered from 1 in table order (0 is never a valid type);
 *  - struct stem_req, struct stem_rep: one member per field;
 *  - int stem_req_encode(const struct stem_req *, void *buf, size_t cap)
 *    and stem_rep_encode: the encoded length, -EINVAL when a field is out
 *    of its bounds (a string not terminated within max + 1 bytes, a byte
 *    length above max), -EMSGSIZE when cap is too small (nothing is
 *    written past cap);
 *  - int stem_req_decode(struct stem_req *, const void *buf, size_t len)
 *    and stem_rep_decode: 0, or -EBADMSG when the bytes are not exactly
 *    one well-formed encoding (short, a length above its field's max, an
 *    embedded NUL, trailing bytes). Even on error every string member is
 *    terminated and every byte length is <= its max;
 *  - a compile-time check that the largest encoding fits in RPC_BODY_MAX
 *    (one mailbox message with the RPC header);
 *  - const struct rpc_msg_desc stem_desc, and the typed stubs
 *    rpc_serve_stem(), rpc_call_stem(), rpc_start_stem() and the handler
 *    type stem_handler_fn (see below).
 * And per protocol: const struct rpc_proto proto_rpc.
 *
 * Context: the codec functions are pure: any thread, any context. The
 * server and client functions: see their sections.
 */
#ifndef ATOLL_RPC_H
#define ATOLL_RPC_H

#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <atoll/mbox.h>
#include <atoll/sync.h>

struct name_client;

/* ---- limits ------------------------------------------------------------- */

/* Largest frame (header + body): one mailbox message. */
#define RPC_FRAME_MAX MBOX_MSG_MAX
/* Size of the RPC header in front of every body (docs/rpc.md). */
#define RPC_HDR_SIZE 24u
/* Largest encoded body of any message. */
#define RPC_BODY_MAX (RPC_FRAME_MAX - RPC_HDR_SIZE)

/* ---- field constructors (used in message tables) ------------------------ */

#define F_U8(n) (rpc__u8, n, 0)
#define F_U16(n) (rpc__u16, n, 0)
#define F_U32(n) (rpc__u32, n, 0)
#define F_U64(n) (rpc__u64, n, 0)
#define F_I32(n) (rpc__i32, n, 0)
#define F_I64(n) (rpc__i64, n, 0)
#define F_STR(n, max) (rpc__str, n, max)
#define F_BYTES(n, max) (rpc__bytes, n, max)
#define F_NONE

/* ---- encoding helpers (used by the generated code) ---------------------- */

/* A writer with a sticky error: after a failure every write is a no-op
 * and rpc__w_end() returns the first error. */
struct rpc__wr {
	uint8_t *p, *end;
	int err;
	const uint8_t *start;
};

/* A reader with a sticky error (-EBADMSG). */
struct rpc__rd {
	const uint8_t *p, *end;
	int err;
};

static inline void rpc__w_init(struct rpc__wr *w, void *buf, size_t cap)
{
	w->start = w->p = (uint8_t *)buf;
	w->end = w->p + cap;
	w->err = 0;
}

static inline void rpc__w_le(struct rpc__wr *w, uint64_t v, unsigned n)
{
	if (w->err)
		return;
	if ((size_t)(w->end - w->p) < n) {
		w->err = -EMSGSIZE;
		return;
	}
	for (unsigned i = 0; i < n; i++)
		w->p[i] = (uint8_t)(v >> (8 * i));
	w->p += n;
}

/* Length-prefixed bytes; len <= max or -EINVAL. */
void rpc__w_bytes(struct rpc__wr *w, const void *src, uint32_t len,
		  uint32_t max);
/* A string terminated within max + 1 bytes, else -EINVAL. */
void rpc__w_str(struct rpc__wr *w, const char *s, uint32_t max);

static inline int rpc__w_end(const struct rpc__wr *w)
{
	return w->err ? w->err : (int)(w->p - w->start);
}

static inline void rpc__r_init(struct rpc__rd *r, const void *buf, size_t len)
{
	r->p = (const uint8_t *)buf;
	r->end = r->p + len;
	r->err = 0;
}

static inline uint64_t rpc__r_le(struct rpc__rd *r, unsigned n)
{
	uint64_t v = 0;

	if (r->err)
		return 0;
	if ((size_t)(r->end - r->p) < n) {
		r->err = -EBADMSG;
		return 0;
	}
	for (unsigned i = 0; i < n; i++)
		v |= (uint64_t)r->p[i] << (8 * i);
	r->p += n;
	return v;
}

/* Length-prefixed bytes into dst[max]; *len gets the length (0 after an
 * error). */
void rpc__r_bytes(struct rpc__rd *r, void *dst, uint32_t *len, uint32_t max);
/* A string into dst[max + 1], always terminated (empty after an error). */
void rpc__r_str(struct rpc__rd *r, char *dst, uint32_t max);

/* 0 when everything was read and nothing is left over. */
static inline int rpc__r_end(const struct rpc__rd *r)
{
	if (r->err)
		return r->err;
	return r->p == r->end ? 0 : -EBADMSG;
}

/* ---- the generator ------------------------------------------------------ *
 *
 * A field list is a sequence of tuples (kind, name, max). Each operation
 * walks it with a pair of macros that call each other (A, B, A, ...): each
 * consumes one tuple and leaves its partner's name, which the next tuple's
 * parentheses invoke. The walk ends with a bare A or B, pasted with _END
 * into an empty macro. Each operation has its own pair, so operations may
 * be used inside one another's expansions.
 */
#define RPC__CAT(a, b) RPC__CAT_(a, b)
#define RPC__CAT_(a, b) a##b

/* struct members */
#define RPC__MEM(k, n, m) RPC__CAT(RPC__MEM_, k)(n, m)
#define RPC__MEM_rpc__u8(n, m) uint8_t n;
#define RPC__MEM_rpc__u16(n, m) uint16_t n;
#define RPC__MEM_rpc__u32(n, m) uint32_t n;
#define RPC__MEM_rpc__u64(n, m) uint64_t n;
#define RPC__MEM_rpc__i32(n, m) int32_t n;
#define RPC__MEM_rpc__i64(n, m) int64_t n;
#define RPC__MEM_rpc__str(n, m) char n[(m) + 1];
#define RPC__MEM_rpc__bytes(n, m) uint32_t n##_len; uint8_t n[(m)];
#define RPC__MEM_A(k, n, m) RPC__MEM(k, n, m) RPC__MEM_B
#define RPC__MEM_B(k, n, m) RPC__MEM(k, n, m) RPC__MEM_A
#define RPC__MEM_A_END
#define RPC__MEM_B_END
#define RPC__MEMBERS(seq) RPC__CAT(RPC__MEM_A seq, _END)

/* largest encoding, as "+ n + n ..." */
#define RPC__MAX(k, n, m) + RPC__CAT(RPC__MAX_, k)(m)
#define RPC__MAX_rpc__u8(m) 1u
#define RPC__MAX_rpc__u16(m) 2u
#define RPC__MAX_rpc__u32(m) 4u
#define RPC__MAX_rpc__u64(m) 8u
#define RPC__MAX_rpc__i32(m) 4u
#define RPC__MAX_rpc__i64(m) 8u
#define RPC__MAX_rpc__str(m) (4u + (uint64_t)(m))
#define RPC__MAX_rpc__bytes(m) (4u + (uint64_t)(m))
#define RPC__MAX_A(k, n, m) RPC__MAX(k, n, m) RPC__MAX_B
#define RPC__MAX_B(k, n, m) RPC__MAX(k, n, m) RPC__MAX_A
#define RPC__MAX_A_END
#define RPC__MAX_B_END
#define RPC__MAXSIZE(seq) (0u RPC__CAT(RPC__MAX_A seq, _END))

/* encode one field of *s into writer w */
#define RPC__ENC(k, n, m) RPC__CAT(RPC__ENC_, k)(n, m)
#define RPC__ENC_rpc__u8(n, m) rpc__w_le(&w, s->n, 1);
#define RPC__ENC_rpc__u16(n, m) rpc__w_le(&w, s->n, 2);
#define RPC__ENC_rpc__u32(n, m) rpc__w_le(&w, s->n, 4);
#define RPC__ENC_rpc__u64(n, m) rpc__w_le(&w, s->n, 8);
#define RPC__ENC_rpc__i32(n, m) rpc__w_le(&w, (uint32_t)s->n, 4);
#define RPC__ENC_rpc__i64(n, m) rpc__w_le(&w, (uint64_t)s->n, 8);
#define RPC__ENC_rpc__str(n, m) rpc__w_str(&w, s->n, (m));
#define RPC__ENC_rpc__bytes(n, m) rpc__w_bytes(&w, s->n, s->n##_len, (m));
#define RPC__ENC_A(k, n, m) RPC__ENC(k, n, m) RPC__ENC_B
#define RPC__ENC_B(k, n, m) RPC__ENC(k, n, m) RPC__ENC_A
#define RPC__ENC_A_END
#define RPC__ENC_B_END
#define RPC__ENCODE(seq) RPC__CAT(RPC__ENC_A seq, _END)

/* decode one field from reader r into *s */
#define RPC__DEC(k, n, m) RPC__CAT(RPC__DEC_, k)(n, m)
#define RPC__DEC_rpc__u8(n, m) s->n = (uint8_t)rpc__r_le(&r, 1);
#define RPC__DEC_rpc__u16(n, m) s->n = (uint16_t)rpc__r_le(&r, 2);
#define RPC__DEC_rpc__u32(n, m) s->n = (uint32_t)rpc__r_le(&r, 4);
#define RPC__DEC_rpc__u64(n, m) s->n = rpc__r_le(&r, 8);
#define RPC__DEC_rpc__i32(n, m) s->n = (int32_t)(uint32_t)rpc__r_le(&r, 4);
#define RPC__DEC_rpc__i64(n, m) s->n = (int64_t)rpc__r_le(&r, 8);
#define RPC__DEC_rpc__str(n, m) rpc__r_str(&r, s->n, (m));
#define RPC__DEC_rpc__bytes(n, m) rpc__r_bytes(&r, s->n, &s->n##_len, (m));
#define RPC__DEC_A(k, n, m) RPC__DEC(k, n, m) RPC__DEC_B
#define RPC__DEC_B(k, n, m) RPC__DEC(k, n, m) RPC__DEC_A
#define RPC__DEC_A_END
#define RPC__DEC_B_END
#define RPC__DECODE(seq) RPC__CAT(RPC__DEC_A seq, _END)

/* Per-message declarations. */
#define RPC__ENUM(ID, stem, req, rep) ID,
#define RPC__DECL(ID, stem, req, rep)                                        \
	struct stem##_req {                                                  \
		RPC__MEMBERS(req)                                            \
	};                                                                   \
	struct stem##_rep {                                                  \
		RPC__MEMBERS(rep)                                            \
	};                                                                   \
	_Static_assert(RPC__MAXSIZE(req) <= RPC_BODY_MAX,                    \
		       #stem ": request can exceed RPC_BODY_MAX");           \
	_Static_assert(RPC__MAXSIZE(rep) <= RPC_BODY_MAX,                    \
		       #stem ": reply can exceed RPC_BODY_MAX");             \
	int stem##_req_encode(const struct stem##_req *s, void *buf,         \
			      size_t cap);                                   \
	int stem##_rep_encode(const struct stem##_rep *s, void *buf,         \
			      size_t cap);                                   \
	int stem##_req_decode(struct stem##_req *s, const void *buf,         \
			      size_t len);                                   \
	int stem##_rep_decode(struct stem##_rep *s, const void *buf,         \
			      size_t len);                                   \
	RPC__DECL_STUBS(ID, stem)

/* Per-message definitions. */
#define RPC__DEF(ID, stem, req, rep)                                         \
	int stem##_req_encode(const struct stem##_req *s, void *buf,         \
			      size_t cap)                                    \
	{                                                                    \
		struct rpc__wr w;                                            \
		rpc__w_init(&w, buf, cap);                                   \
		(void)s;                                                     \
		RPC__ENCODE(req)                                             \
		return rpc__w_end(&w);                                       \
	}                                                                    \
	int stem##_rep_encode(const struct stem##_rep *s, void *buf,         \
			      size_t cap)                                    \
	{                                                                    \
		struct rpc__wr w;                                            \
		rpc__w_init(&w, buf, cap);                                   \
		(void)s;                                                     \
		RPC__ENCODE(rep)                                             \
		return rpc__w_end(&w);                                       \
	}                                                                    \
	int stem##_req_decode(struct stem##_req *s, const void *buf,         \
			      size_t len)                                    \
	{                                                                    \
		struct rpc__rd r;                                            \
		rpc__r_init(&r, buf, len);                                   \
		(void)s;                                                     \
		RPC__DECODE(req)                                             \
		return rpc__r_end(&r);                                       \
	}                                                                    \
	int stem##_rep_decode(struct stem##_rep *s, const void *buf,         \
			      size_t len)                                    \
	{                                                                    \
		struct rpc__rd r;                                            \
		rpc__r_init(&r, buf, len);                                   \
		(void)s;                                                     \
		RPC__DECODE(rep)                                             \
		return rpc__r_end(&r);                                       \
	}                                                                    \
	RPC__DEF_STUBS(ID, stem)

/* ---- descriptors (what the generic code works from) --------------------- */

struct rpc_ctx;
struct rpc_server;
struct rpc_client;

/* A generic function pointer: handlers are stored as this and called
 * through their own type again by the generated invoke function. */
typedef void (*rpc__fnptr)(void);

#define RPC__UNUSED __attribute__((unused))

/* One message type of a protocol, generated by RPC_DEFINE. */
struct rpc_msg_desc {
	const char *name;               /* the stem */
	uint32_t type;                  /* its wire type (the enum value) */
	uint32_t req_max, rep_max;      /* largest encodings, bytes */
	size_t req_size, rep_size;      /* sizeof the structs */
	int (*req_encode)(const void *s, void *buf, size_t cap);
	int (*rep_encode)(const void *s, void *buf, size_t cap);
	int (*req_decode)(void *s, const void *buf, size_t len);
	int (*rep_decode)(void *s, const void *buf, size_t len);
	int (*invoke)(rpc__fnptr fn, void *arg, const void *req, void *rep,
		      struct rpc_ctx *ctx);
};

/* A protocol: its message types, indexed by wire type (1 .. nr_types). */
struct rpc_proto {
	const char *name;
	uint32_t nr_types;
	const struct rpc_msg_desc *const *msgs;  /* [nr_types + 1], [0] NULL */
};

/* ---- servers (the dispatcher) ------------------------------------------- *
 *
 * A server owns a mailbox (mbox.h) and one dispatcher uthread receiving
 * from it. Each valid request gets a uthread of its own, which runs the
 * handler registered for its type and sends the reply, so a handler is
 * straight-line code that may block (sleep, do syscalls, call other
 * servers) without holding up the others (fos's cooperative dispatcher).
 * A handler uthread whose request is done waits for the next one (up to
 * idle_max of them wait), so a busy server does not create a uthread per
 * request; fresh_uthreads turns that off.
 * Invalid frames never reach a handler: they are answered with an error
 * when the sender can be answered, else dropped, and counted either way.
 *
 * Handlers of one server run concurrently, on any vcore: shared state
 * needs sync.h locks (on one vcore, cooperative scheduling makes code
 * between two blocking calls atomic, as in fos, but the runtime's default
 * scheduler steals work across vcores).
 *
 * A handler returns 0 (the reply struct is sent) or a negative errno (sent
 * as the call's status; the reply struct is ignored). The reply struct
 * starts zeroed. A reply struct whose fields break their bounds is not
 * sent: the caller gets -EPROTO.
 *
 * Context: uthread context for everything (create may also be called from
 * a plain thread, not start). */

struct rpc_server_opts {
	const char *name;               /* mailbox name; NULL: the protocol's */
	struct mbox_opts mbox;          /* the server's mailbox */
	uint32_t max_inflight;          /* handler uthreads at once; 0: 1024.
					 * When all are busy the dispatcher
					 * stops receiving (back-pressure). */
	size_t stack_size;              /* of handler uthreads; 0: default */
	uint32_t idle_max;              /* handler uthreads kept waiting for
					 * the next request once theirs is
					 * done; 0: 64 */
	bool fresh_uthreads;            /* no reuse: a new uthread for each
					 * request (idle_max ignored) */
	enum mbox_transport reply_transport; /* to open clients' mailboxes */
};

struct rpc_server_stats {
	uint64_t requests;      /* handlers run */
	uint64_t replies;       /* replies sent (handlers' and errors) */
	uint64_t rejected;      /* requests answered with an error without a
				 * handler: bad body, unknown type, no
				 * handler, wrong protocol */
	uint64_t bad;           /* frames dropped: malformed, unknown kind,
				 * request from a sender that sent no hello */
	uint64_t cancelled;     /* cancelled by the client while in flight:
				 * no reply sent */
	uint64_t expired;       /* the caller's timeout passed before the
				 * handler could start: not run, no reply */
	uint64_t send_failed;   /* replies that could not be sent */
	uint32_t peers;         /* clients that said hello */
	uint32_t inflight;      /* handlers running now */
};

/* Create a server for proto with a fresh mailbox. opts may be NULL.
 * Returns 0 and *out, or -EINVAL, -ENOMEM, or mbox_create()'s error. */
int rpc_server_create(struct rpc_server **out, const struct rpc_proto *proto,
		      const struct rpc_server_opts *opts);

/* Register the handler of one message type (use the typed
 * rpc_serve_<stem>()). Before rpc_server_start() only. -EINVAL for a type
 * of another protocol, -EBUSY after start. */
int rpc__serve(struct rpc_server *srv, const struct rpc_msg_desc *desc,
	       rpc__fnptr fn, void *arg);

/* Start the dispatcher uthread. Uthread context. 0, -EBUSY (started),
 * -ENOMEM. */
int rpc_server_start(struct rpc_server *srv);

/* Stop the dispatcher, wait for every running handler to finish, close
 * the server's senders and destroy its mailbox (clients' next sends fail
 * with -EPIPE; their calls in flight time out). Uthread context, not from
 * one of this server's handlers (or any thread if never started). */
void rpc_server_destroy(struct rpc_server *srv);

/* The server's mailbox: its address and capability are what clients need
 * (register it with name_register_mbox()). */
struct mbox *rpc_server_mbox(struct rpc_server *srv);

void rpc_server_stats(const struct rpc_server *srv,
		      struct rpc_server_stats *st);

/* Inside a handler. */
/* Whether the caller cancelled this call (rpc_cancel); a handler doing
 * long work may check it and give up; its reply is not sent anyway. */
bool rpc_ctx_cancelled(const struct rpc_ctx *ctx);
/* The call's deadline on the fast_ns() timeline, from the caller's
 * timeout (UINT64_MAX: none). */
uint64_t rpc_ctx_deadline(const struct rpc_ctx *ctx);
/* The mailbox sender id the request came from (mbox_hdr.sender). */
uint32_t rpc_ctx_sender(const struct rpc_ctx *ctx);
/* The caller's call id. */
uint64_t rpc_ctx_call_id(const struct rpc_ctx *ctx);

/* ---- clients ------------------------------------------------------------- *
 *
 * A client sends requests to one server mailbox (rpc_client_open) or to
 * a service of the name service (rpc_client_open_name; each call resolves
 * the service through the name client's cache with the call's key, so the
 * service's policy picks the member) and receives the replies on a
 * mailbox of its own, served by one receiver uthread that matches them to
 * calls by id. A calling uthread sleeps until its reply, its timeout, or
 * rpc_cancel(), whichever comes first; a reply that arrives after its
 * call gave up is dropped and counted (stats.late).
 *
 * A client may be shared by any number of uthreads. Context: uthread
 * context for everything.
 *
 * Call results: 0; the handler's negative errno; -ETIMEDOUT; -ECANCELED;
 * -EINVAL (a request field out of bounds, a type of another protocol);
 * -EBADMSG (malformed reply); -EPROTO (server: wrong protocol, or its
 * reply broke the bounds); -ENOSYS (server: no handler for the type);
 * the transport's errors (-EPIPE, -EKEYREVOKED, -EACCES, -ENOENT ...);
 * name_resolve()'s errors. */

struct rpc_client_opts {
	uint64_t timeout_ns;            /* default per call; 0: 1 s */
	struct mbox_opts mbox;          /* the reply mailbox */
	enum mbox_transport transport;  /* for the senders it opens */
};

struct rpc_call_opts {
	uint64_t timeout_ns;            /* 0: the client's default;
					 * UINT64_MAX: none */
	const void *key;                /* for NAME_POLICY_HASH services */
	size_t keylen;
};

struct rpc_client_stats {
	uint64_t calls;         /* started */
	uint64_t ok;            /* finished with status 0 */
	uint64_t failed;        /* finished with an error from the server */
	uint64_t timeouts;
	uint64_t cancelled;
	uint64_t late;          /* replies to calls that had given up */
	uint64_t stray;         /* replies to ids never issued */
	uint64_t bad;           /* malformed frames dropped */
	uint64_t reconnects;    /* connections found dead and replaced */
};

/* One call in flight, caller-allocated (on the stack is fine); owned by
 * the RPC code between rpc_start_<stem>() and the rpc_wait() that returns
 * its result. Fields are private. */
struct rpc_call {
	struct rpc_call *next;          /* pending table, under the lock */
	struct rpc_client *cl;
	const struct rpc_msg_desc *desc;
	void *rep;
	struct rpc__conn *conn;
	uint64_t id;
	uint64_t deadline;              /* fast_ns(); UINT64_MAX: none */
	int status;
	bool pending;                   /* in the table; under the lock */
	struct uth_sem done;            /* upped once the status is final */
};

/* Open a client to the server mailbox at addr with capability cap: opens
 * the sender now (-EACCES: wrong capability) and introduces the client.
 * opts may be NULL. */
int rpc_client_open(struct rpc_client **out, const struct rpc_proto *proto,
		    const struct mbox_addr *addr, const struct mbox_cap *cap,
		    const struct rpc_client_opts *opts);

/* Open a client to the service `service` (name.h) resolved through nc,
 * which must outlive the client. Members are connected on first use. */
int rpc_client_open_name(struct rpc_client **out,
			 const struct rpc_proto *proto,
			 struct name_client *nc, const char *service,
			 const struct rpc_client_opts *opts);

/* Close: no call may be in flight. Says goodbye to the servers. */
void rpc_client_close(struct rpc_client *cl);

void rpc_client_stats(const struct rpc_client *cl,
		      struct rpc_client_stats *st);

/* The reply mailbox (for tests and diagnostics). */
struct mbox *rpc_client_mbox(struct rpc_client *cl);

/* Generic forms of the typed stubs. */
int rpc__start(struct rpc_client *cl, struct rpc_call *call,
	       const struct rpc_msg_desc *desc, const void *req, void *rep,
	       const struct rpc_call_opts *opts);
int rpc__call(struct rpc_client *cl, const struct rpc_msg_desc *desc,
	      const void *req, void *rep, const struct rpc_call_opts *opts);

/* Wait for a call started with success (exactly once): returns its
 * result (see above); *rep (given at start) holds the reply when it is 0.
 * Afterwards call may be reused. Uthread context. */
int rpc_wait(struct rpc_call *call);

/* The id of a started call (for rpc_cancel from another uthread). */
static inline uint64_t rpc_call_id(const struct rpc_call *call)
{
	return call->id;
}

/* Cancel the call with this id: its rpc_wait() returns -ECANCELED, and
 * the server is told (a handler sees rpc_ctx_cancelled(); its reply is not
 * sent). 0, or -ENOENT when no such call is waiting (finished, timed out,
 * never started). Any uthread. */
int rpc_cancel(struct rpc_client *cl, uint64_t call_id);

/* ---- generated stubs ---------------------------------------------------- */

#define RPC__DECL_STUBS(ID, stem)                                            \
	extern const struct rpc_msg_desc stem##_desc;                       \
	typedef int (*stem##_handler_fn)(void *arg,                          \
					 const struct stem##_req *req,       \
					 struct stem##_rep *rep,             \
					 struct rpc_ctx *ctx);               \
	static inline RPC__UNUSED int rpc_serve_##stem(                      \
		struct rpc_server *srv, stem##_handler_fn fn, void *arg)     \
	{                                                                    \
		return rpc__serve(srv, &stem##_desc, (rpc__fnptr)fn, arg);  \
	}                                                                    \
	static inline RPC__UNUSED int rpc_call_##stem(                       \
		struct rpc_client *cl, const struct stem##_req *req,         \
		struct stem##_rep *rep, const struct rpc_call_opts *opts)    \
	{                                                                    \
		return rpc__call(cl, &stem##_desc, req, rep, opts);         \
	}                                                                    \
	static inline RPC__UNUSED int rpc_start_##stem(                      \
		struct rpc_client *cl, struct rpc_call *call,                \
		const struct stem##_req *req, struct stem##_rep *rep,        \
		const struct rpc_call_opts *opts)                            \
	{                                                                    \
		return rpc__start(cl, call, &stem##_desc, req, rep, opts);  \
	}

#define RPC__DEF_STUBS(ID, stem)                                             \
	static int stem##__req_enc_v(const void *s, void *b, size_t c)       \
	{                                                                    \
		return stem##_req_encode((const struct stem##_req *)s, b, c);\
	}                                                                    \
	static int stem##__rep_enc_v(const void *s, void *b, size_t c)       \
	{                                                                    \
		return stem##_rep_encode((const struct stem##_rep *)s, b, c);\
	}                                                                    \
	static int stem##__req_dec_v(void *s, const void *b, size_t l)       \
	{                                                                    \
		return stem##_req_decode((struct stem##_req *)s, b, l);      \
	}                                                                    \
	static int stem##__rep_dec_v(void *s, const void *b, size_t l)       \
	{                                                                    \
		return stem##_rep_decode((struct stem##_rep *)s, b, l);      \
	}                                                                    \
	static int stem##__invoke(rpc__fnptr fn, void *arg, const void *req, \
				  void *rep, struct rpc_ctx *ctx)            \
	{                                                                    \
		return ((stem##_handler_fn)fn)(                              \
			arg, (const struct stem##_req *)req,                 \
			(struct stem##_rep *)rep, ctx);                      \
	}

#define RPC__DESC(ID, stem, req, rep)                                        \
	const struct rpc_msg_desc stem##_desc = {                           \
		#stem, ID, (uint32_t)RPC__MAXSIZE(req),                      \
		(uint32_t)RPC__MAXSIZE(rep), sizeof(struct stem##_req),      \
		sizeof(struct stem##_rep), stem##__req_enc_v,                \
		stem##__rep_enc_v, stem##__req_dec_v, stem##__rep_dec_v,     \
		stem##__invoke,                                              \
	};
#define RPC__DESC_PTR(ID, stem, req, rep) [ID] = &stem##_desc,

/* In a header (or at the top of the one .c file): the types, the enum,
 * the prototypes and the typed stubs. Ends with a declaration: write a
 * semicolon after it. */
#define RPC_DECLARE(proto, TABLE)                                            \
	enum proto##_type {                                                  \
		proto##__type_none_ = 0,                                     \
		TABLE(RPC__ENUM)                                             \
		proto##__type_end_                                           \
	};                                                                   \
	TABLE(RPC__DECL)                                                     \
	extern const struct rpc_proto proto##_rpc

/* In exactly one .c file, after RPC_DECLARE: the codec functions, the
 * descriptors and the protocol proto_rpc. Write a semicolon after it. */
#define RPC_DEFINE(proto, TABLE)                                             \
	TABLE(RPC__DEF)                                                      \
	TABLE(RPC__DESC)                                                     \
	static const struct rpc_msg_desc *const                              \
		proto##__msgs[proto##__type_end_] = { TABLE(RPC__DESC_PTR) };\
	const struct rpc_proto proto##_rpc = {                               \
		#proto, proto##__type_end_ - 1, proto##__msgs,               \
	}

#endif /* ATOLL_RPC_H */
