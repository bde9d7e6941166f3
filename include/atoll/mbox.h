/* mbox.h - mailboxes: many senders, one receiver, sending needs a
 * capability (fos's messaging layer, in user space).
 *
 * Owns: each mailbox (its in-process ring, the per-sender shared-memory
 * rings of senders in other processes, its eventfd doorbell) and each
 * sender handle. One background thread per process (the "mbox listener",
 * started by the first mailbox that is not MBOX_F_LOCAL_ONLY) accepts the
 * handshakes of senders in other processes on a UNIX socket.
 *
 * A mailbox is created with a name (informational; publishing it is the
 * name service's job, name.h) and a capability: an unguessable 128-bit
 * token from getrandom(). Whoever holds the mailbox's address and
 * capability may open a sender to it; opening with a wrong token fails.
 * The receiver may revoke the capability at any time (mbox_revoke), after
 * which every sender opened with it fails with -EKEYREVOKED.
 *
 * Transports, chosen by mbox_open() from the address (fos's three):
 *  - LOCAL: the mailbox lives in this process. Senders push straight into
 *    the mailbox's MPSC ring (ring.h).
 *  - NODE: another process on this node (same node id). The sender
 *    connects to the owner's listener socket (abstract UNIX namespace,
 *    "\0atoll-mbox.<pid>.<incarnation>"), presents the token, and gets
 *    back over SCM_RIGHTS a memfd holding a ring for its own use and the
 *    mailbox's eventfd doorbell. The socket stays open: it carries the
 *    end of the relationship both ways (revocation, either side's death).
 *  - TCP: another node. The sender connects to that node's proxy
 *    (address's proxy_host:proxy_port, see mbox_proxy_start), which opens
 *    the mailbox on its node with the token and forwards framed messages.
 *    The wire format is in src/msg/proxy.c.
 *
 * Where the capability is enforced. fos checks the capability on every
 * message in the kernel. Here a sender in another process has its ring
 * mapped and can write anything into it, so the token is checked once,
 * when the sender opens (handshake); the receiver then trusts the
 * connection, not the bytes: every message read from a cross-process ring
 * is validated (length, reserved types), its sender id is taken from the
 * connection (not from the sender's bytes), and invalid ones are dropped
 * and counted (mbox_stats.bad). A ring whose contents cannot be parsed
 * (impossible length) cuts that sender off. Revocation takes effect by the
 * receiver refusing: it marks each cross-process sender's ring revoked,
 * shuts its socket, and stops reading it; what such a sender had queued
 * but the receiver had not yet taken is discarded (counted in
 * mbox_stats.dropped). In-process senders are checked on every send
 * (one load). No send that starts after mbox_revoke() returns succeeds.
 *
 * Messages: a 16-bit type (0 .. MBOX_TYPE_USER_MAX; higher values are
 * reserved), up to MBOX_MSG_MAX bytes of payload, and the sender id the
 * mailbox gave the sender at open (unique among the mailbox's open
 * senders; > 0). A message takes one 64-byte ring slot for up to
 * MBOX_INLINE_MAX bytes of payload and one more slot per further 56 bytes:
 * large messages are split over consecutive slots claimed at once, never
 * interleaved with others, and delivered whole or not at all. Larger data:
 * pass it by reference (a pointer within a process; shared memory of the
 * application's own between processes).
 *
 * Order and loss: the messages of one sender handle are received in the
 * order its sends returned 0 (for concurrent sends on one handle, in the
 * order they claimed slots); messages of different senders interleave.
 * A send that returned 0 is received unless the mailbox is destroyed or
 * revoked first, or the receiver process dies (for TCP: or the proxy's
 * connection breaks; sends between a failure at the far end and the
 * sender noticing it are lost).
 *
 * Full mailbox: mbox_send() blocks until there is room (polling with
 * backoff: a yield, then sleeps growing to 100 us; in a uthread only the
 * uthread waits), or with MBOX_NONBLOCK returns -EAGAIN at once without
 * having queued anything. While it waits, a NODE sender watches its
 * socket: the receiver's death or revocation ends the wait with an error,
 * never a hang.
 *
 * Receiving: mbox_recv() polls briefly (mbox_opts.poll_ns), then blocks:
 * a uthread blocks as a uthread (its vcore runs others; senders running
 * in the runtime wake it directly, every other waker - a plain thread, a
 * proxy, another process - through the mailbox's eventfd, which an
 * io_uring poll watches); a plain thread blocks in poll(2) on the
 * eventfd.
 *
 * Thread safety and context:
 *  - mbox_create/destroy/revoke, addr/cap/stats, open/close: any thread
 *    (uthread or plain pthread), not vcore context (they may block).
 *  - mbox_recv: one receiver at a time per mailbox (-EBUSY otherwise),
 *    uthread or plain thread.
 *  - mbox_send: any number of threads and uthreads concurrently, on one
 *    handle or many. A TCP handle serialises its sends. From vcore
 *    context (an event handler) only with MBOX_NONBLOCK: a blocking send
 *    would stall the vcore.
 *  - mbox_destroy must not race with mbox_recv on the same mailbox; open
 *    senders survive it and get -EPIPE.
 *  - After fork() the child must not use mailboxes or senders that existed
 *    before the fork (they belong to the parent); it may create new ones.
 *    A child reaches the parent's mailboxes as a NODE sender.
 *
 * Errors: negative errno, never errno itself.
 *   -EINVAL       bad argument (NULL, name too long, bad options)
 *   -EMSGSIZE     payload longer than MBOX_MSG_MAX
 *   -EAGAIN       MBOX_NONBLOCK send to a full mailbox; recv with timeout 0
 *                 on an empty one
 *   -ETIMEDOUT    recv: nothing arrived in time
 *   -EACCES       open: wrong capability
 *   -EKEYREVOKED  open: a capability this mailbox revoked; send: the
 *                 capability the handle was opened with was revoked
 *   -ENOENT       open: no such mailbox (destroyed, or never existed)
 *   -EPIPE        send: the mailbox was destroyed, or its process died
 *   -ECONNREFUSED open: nobody listens at the address (process gone,
 *                 LOCAL_ONLY mailbox, other network namespace)
 *   -EHOSTUNREACH open: another node's address without a proxy endpoint
 *   -EBUSY        recv: another receiver is in mbox_recv
 *   -ENOMEM, -EMFILE, ...  resources
 */
#ifndef ATOLL_MBOX_H
#define ATOLL_MBOX_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Largest payload of one message, in bytes. */
#define MBOX_MSG_MAX 4096u
/* Payload that fits in the first slot (the rest of it is the header). */
#define MBOX_INLINE_MAX 48u
/* Types above this are reserved for the transports. */
#define MBOX_TYPE_USER_MAX 0xfeffu
/* Longest mailbox name (informational), without the NUL. */
#define MBOX_NAME_MAX 255u
/* mbox_recv timeout: wait forever. */
#define MBOX_FOREVER UINT64_MAX

/* ---- capabilities and addresses ---------------------------------------- */

/* An unguessable 128-bit token. Compare with mbox_cap_equal (constant
 * time), not memcmp. */
struct mbox_cap {
	uint8_t b[16];
};

/* Text form: 32 lowercase hex digits. */
#define MBOX_CAP_STR_LEN 32u

/* Where a mailbox lives. Plain data: it may be copied, stored, sent in a
 * message (the struct's bytes are native-endian; use the text form,
 * mbox_addr_format/parse, between machines). It does not include the
 * capability. */
struct mbox_addr {
	uint64_t node;          /* node id (mbox_node_id()) */
	uint64_t incarnation;   /* random per process start, tells pid reuse */
	uint64_t id;            /* mailbox number in its process, never reused */
	uint32_t pid;           /* owning process */
	uint16_t proxy_port;    /* the node's TCP proxy; 0: none known */
	uint16_t reserved;      /* 0 */
	char proxy_host[64];    /* numeric IPv4/IPv6 or host name; NUL-ended */
};

/* Text form:
 *   "<node:16 hex>.<pid>.<incarnation:16 hex>.<id>" [ "@" host ":" port ]
 * with an IPv6 host in brackets ("@[::1]:7070"). At most this long: */
#define MBOX_ADDR_STR_MAX 128u

/* Fill *cap from getrandom(). 0 or -errno (-ENOSYS, -EIO). */
int mbox_cap_generate(struct mbox_cap *cap);
/* Constant-time comparison. */
bool mbox_cap_equal(const struct mbox_cap *a, const struct mbox_cap *b);
/* Write the 32 hex digits and a NUL to buf (>= MBOX_CAP_STR_LEN + 1). */
void mbox_cap_format(const struct mbox_cap *cap, char *buf);
/* Parse exactly 32 hex digits (either case). 0 or -EINVAL. */
int mbox_cap_parse(const char *s, struct mbox_cap *cap);

/* Format addr into buf (size bytes). Returns the length, or -ENOSPC. */
int mbox_addr_format(const struct mbox_addr *addr, char *buf, size_t size);
/* Parse the text form (whole string). 0 or -EINVAL. */
int mbox_addr_parse(const char *s, struct mbox_addr *addr);
/* Whether two addresses name the same mailbox (proxy fields ignored). */
bool mbox_addr_same(const struct mbox_addr *a, const struct mbox_addr *b);

/* This node's id: the environment variable ATOLL_NODE_ID (decimal or
 * 0x-hex, non-zero) if set when first asked, else a hash of the kernel's
 * boot id. Constant for the life of the process. */
uint64_t mbox_node_id(void);

/* ---- mailboxes (receiver side) ----------------------------------------- */

struct mbox;

/* mbox_opts.flags */
#define MBOX_F_LOCAL_ONLY 0x1u  /* no NODE/TCP senders: no listener, no
				 * eventfd traffic; open from outside fails */

struct mbox_opts {
	uint32_t nslots;        /* in-process ring slots, power of two, >= 128;
				 * 0: 1024 */
	uint32_t conn_nslots;   /* each other-process sender's ring, power of
				 * two, >= 128; 0: 256 */
	uint64_t poll_ns;       /* recv polls this long before blocking;
				 * 0: 20 us */
	unsigned flags;         /* MBOX_F_* */
};

/* Counters of one mailbox; a snapshot. */
struct mbox_stats {
	uint64_t received;      /* messages handed to mbox_recv callers */
	uint64_t bad;           /* invalid messages dropped (other processes) */
	uint64_t dropped;       /* queued but discarded: revoked or cut-off
				 * senders, destroy */
	uint64_t full;          /* times a local sender found the ring full */
	uint32_t senders_local; /* open in-process sender handles */
	uint32_t senders_remote;/* open NODE connections (TCP ones arrive
				 * through a proxy's NODE or LOCAL handle) */
	uint32_t revocations;   /* mbox_revoke calls */
};

/* Create a mailbox named name (<= MBOX_NAME_MAX bytes; informational) with
 * a fresh capability. opts may be NULL. Returns 0 and *out, or -EINVAL,
 * -ENOMEM, -EMFILE, or an error starting the listener. Any thread. */
int mbox_create(const char *name, const struct mbox_opts *opts,
		struct mbox **out);

/* Destroy mb: no further opens; open senders fail with -EPIPE from their
 * next send; messages still queued are discarded. The memory of mb lives
 * on until the last in-process sender closes. Must not race with
 * mbox_recv on mb. Any thread; but if a uthread ever received on mb,
 * call it from a uthread of that runtime or after rt_main() returned (a
 * receiving uthread leaves an io_uring poll on the mailbox's eventfd,
 * which destroy waits out inside the runtime and knows dead after it). */
void mbox_destroy(struct mbox *mb);

const char *mbox_name(const struct mbox *mb);
void mbox_addr(const struct mbox *mb, struct mbox_addr *out);
/* The current capability (after mbox_revoke(mb, NULL): the revoked one,
 * which no longer opens anything). */
void mbox_cap(const struct mbox *mb, struct mbox_cap *out);

/* Revoke the current capability: every sender opened with it fails from
 * then on (-EKEYREVOKED), and opening with it is refused (-EKEYREVOKED; the
 * mailbox remembers its last 8 revoked tokens, older ones get -EACCES).
 * If newcap is not NULL a fresh capability is generated, stored in
 * *newcap, and new opens need it; if NULL, the mailbox accepts no sender
 * any more (it can still be drained and destroyed). 0 or -errno
 * (getrandom failure). Any thread. */
int mbox_revoke(struct mbox *mb, struct mbox_cap *newcap);

/* A received message's header. */
struct mbox_hdr {
	uint32_t sender;        /* id given to the sender at open, > 0 */
	uint16_t type;
	uint16_t len;           /* payload bytes */
};

/* Take the next message: its header into *hdr, its payload into buf (size
 * bytes). Waits up to timeout_ns (0: do not wait, MBOX_FOREVER: no limit).
 * Returns the payload length (>= 0); -EMSGSIZE when it did not fit (the
 * message is consumed, buf holds its first size bytes, hdr->len the full
 * length); -EAGAIN (timeout 0) or -ETIMEDOUT when nothing came; -EBUSY
 * when another thread is receiving. Uthread or plain thread. */
int mbox_recv(struct mbox *mb, struct mbox_hdr *hdr, void *buf, size_t size,
	      uint64_t timeout_ns);

void mbox_stats(const struct mbox *mb, struct mbox_stats *st);

/* ---- senders ------------------------------------------------------------ */

struct mbox_sender;

enum mbox_transport {
	MBOX_TRANSPORT_AUTO = 0, /* choose from the address (the default) */
	MBOX_TRANSPORT_LOCAL,    /* same process: direct ring */
	MBOX_TRANSPORT_NODE,     /* same node: shared-memory ring + socket */
	MBOX_TRANSPORT_TCP,      /* other node: through its proxy */
};

struct mbox_open_opts {
	/* Force a transport (tests, benchmarks): NODE works for a mailbox of
	 * this process too (through its own listener), TCP for any address
	 * with a proxy endpoint. LOCAL for another process: -EINVAL. */
	enum mbox_transport transport;
};

/* Open a sender to the mailbox at addr, presenting cap. opts may be NULL.
 * Returns 0 and *out, or -errno (see the top). Uthread or plain thread:
 * NODE and TCP opens do socket I/O (blocking only the calling uthread). */
int mbox_open(const struct mbox_addr *addr, const struct mbox_cap *cap,
	      const struct mbox_open_opts *opts, struct mbox_sender **out);

/* mbox_send flags */
#define MBOX_NONBLOCK 0x1u

/* Send a message of type type (<= MBOX_TYPE_USER_MAX) and len bytes of
 * payload (<= MBOX_MSG_MAX; data may be NULL when len is 0). Returns 0
 * when queued; -EAGAIN (MBOX_NONBLOCK, full: nothing queued), -EMSGSIZE,
 * -EINVAL, -EKEYREVOKED, -EPIPE. After -EKEYREVOKED or -EPIPE the handle
 * stays failed; close it. Any thread, uthread or plain. */
int mbox_send(struct mbox_sender *s, uint16_t type, const void *data,
	      size_t len, unsigned flags);

/* Whether the mailbox can still be reached: 0, -EKEYREVOKED or -EPIPE.
 * Costs a system call for NODE and TCP handles (poll of the socket):
 * for a sender that waited on a reply in vain. Any thread. */
int mbox_sender_check(struct mbox_sender *s);

enum mbox_transport mbox_sender_transport(const struct mbox_sender *s);
/* The sender id the mailbox gave this handle (as seen in mbox_hdr.sender
 * for LOCAL and NODE handles; for TCP, the proxy's connection's id). */
uint32_t mbox_sender_id(const struct mbox_sender *s);

/* Close the handle. No send may run on it concurrently or later. */
void mbox_close(struct mbox_sender *s);

/* ---- the TCP proxy (intermachine transport) ---------------------------- */

struct mbox_proxy;

/* Start this node's proxy in the calling process: a listener thread on
 * host:port (numeric address; port 0 picks one) and one thread per
 * connection that forwards to mailboxes on this node. If no proxy
 * endpoint is set yet (mbox_set_proxy), the new one becomes this
 * process's. Returns 0 and *out, or -errno. Any thread. */
int mbox_proxy_start(const char *host, uint16_t port,
		     struct mbox_proxy **out);

/* The port the proxy listens on. */
uint16_t mbox_proxy_port(const struct mbox_proxy *p);

/* Stop it: close the listener and every connection (their senders get
 * -EPIPE), join its threads. Any thread, not from a proxy thread. */
void mbox_proxy_stop(struct mbox_proxy *p);

/* Set the proxy endpoint stamped into the addresses of mailboxes created
 * from now on (the node's proxy, which may run in another process).
 * host NULL clears it. The environment variable ATOLL_MBOX_PROXY
 * ("host:port") sets the initial value. 0 or -EINVAL. Any thread. */
int mbox_set_proxy(const char *host, uint16_t port);

#endif /* ATOLL_MBOX_H */
