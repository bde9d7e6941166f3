/* mbox.c - mailboxes: capabilities, addresses, the in-process (LOCAL) and
 * same-node (NODE) transports, and the per-process listener thread.
 *
 * Design note.
 *
 * Rings and messages. Every queue is an MPSC ring of ring.h: the
 * mailbox's own (LOCAL senders) and one per NODE connection, in a memfd
 * the receiver creates and hands to that sender. A message is one header
 * slot (struct slot_hdr + MBOX_INLINE_MAX bytes) and, past that, whole
 * continuation slots of RING_MPSC_MSG_SIZE bytes. A sender claims all of a
 * message's slots with one CAS on the tail (claim_exact: the last of them
 * must be free, which means all are, since the consumer frees in order),
 * writes the continuation slots, then the header slot, each published by
 * its own release store of seq. The receiver takes a message only when
 * every slot of it is ready (take_msg), so a message is delivered whole.
 * The receiver keeps its read position privately (a NODE sender could
 * scribble on the ring's head) and validates each header: an impossible
 * length cuts the connection off; a reserved type is dropped and counted.
 *
 * Waking the receiver. The receiver polls for a while, then publishes
 * that it will sleep (mb->rx_wait = 1 for a uthread, 2 for a plain thread,
 * and ctl->rx_sleeping = 1 in each NODE connection's shared control
 * block), issues a full fence and looks at every ring once more before it
 * sleeps. A sender pushes, issues a full fence and reads the flag; the
 * side whose fence comes second sees the other's store, so the wake-up is
 * never lost (the Dekker handshake vcore parking uses). The sender that
 * clears the flag (exchange) wakes: a LOCAL sender running in the
 * runtime ups mb->sem (uthread receiver); every other waker (a plain
 * thread, the listener, a proxy, a NODE sender in another process, or any
 * waker of a plain-thread receiver) writes the eventfd. A sleeping uthread
 * receiver puts an io_uring poll on the eventfd (mb->poll_sc), whose
 * completion, on a vcore, drains the eventfd and ups mb->sem: no thread
 * outside the runtime ever calls into its scheduler. Woken another way
 * (a sem_up, a timeout), the receiver retires its poll before going on
 * (it rings the eventfd itself and waits for the completion), so no poll
 * outlives mbox_recv, or the runtime it was submitted in. The
 * semaphore may keep a stale unit (a sender woke a receiver that had just
 * found a message): the receiver then wakes once for nothing and looks
 * again, which is harmless.
 *
 * Connections. The listener thread (one per process, started by the first
 * mailbox that allows other processes) accepts SOCK_SEQPACKET connections
 * on the abstract socket "\0atoll-mbox.<pid>.<incarnation>", checks the
 * request's token under mb->lock, creates the connection's memfd and
 * replies with it and the mailbox's eventfd (SCM_RIGHTS). It then watches
 * the socket: the peer's close (sender exit) marks the connection hup.
 * A connection (struct mbox_conn) is shared by the listener (until it
 * closes the socket) and the receiver (from when it picks the connection
 * up, through mb->conn_gen, until it drops it); each holds a reference.
 * mb->conns lists every live connection under mb->lock, for revocation and
 * destruction, which mark the shared control block and shut the socket
 * down (the sender sees the state at its next send, the listener sees the
 * shutdown as hup). conn->fd is changed only under mb->lock, so a shutdown
 * never hits a descriptor number the listener has already closed.
 *
 * Lifetimes. A mailbox is reference counted: its owner, each LOCAL
 * sender, each connection. mbox_destroy() drops the owner's reference
 * after unlisting it and cutting the connections off; the memory goes
 * with the last reference. Lock order: g.lmu (the listener's) -> g.lock
 * (registry) -> mb->lock. None is held across anything that blocks, except
 * g.lmu, which only the listener and fork hold.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <atoll/atomic.h>
#include <atoll/clock.h>
#include <atoll/hash.h>
#include <atoll/lock.h>
#include <atoll/mbox.h>
#include <atoll/ring.h>
#include <atoll/rt.h>
#include <atoll/sync.h>
#include <atoll/sys.h>
#include <atoll/uthread.h>
#include <atoll/vcore.h>

#include "mbox_internal.h"

#define MBOX_DEFAULT_NSLOTS 1024u
#define MBOX_DEFAULT_CONN_NSLOTS 256u
#define MBOX_MIN_NSLOTS 128u
#define MBOX_MAX_NSLOTS (1u << 20)
#define MBOX_DEFAULT_POLL_NS 20000ull
#define MBOX_MAX_CONNS 1024u          /* NODE connections per mailbox */
#define MBOX_REVOKED_KEEP 8u
#define LISTEN_MAX_PENDING 256u
#define LISTEN_PENDING_NS 2000000000ull /* a handshake must come in 2 s */

#define SHM_MAGIC 0x584d7441u         /* "AtMX" */
#define HS_MAGIC 0x534d7441u          /* "AtMS" */
#define MBOX_PROTO_VERSION 1u

/* The first 8 bytes of a message's first slot. */
struct slot_hdr {
	uint32_t sender;
	uint16_t type;
	uint16_t len;
};

BUILD_ASSERT(sizeof(struct slot_hdr) + MBOX_INLINE_MAX == RING_MPSC_MSG_SIZE);

/* Slots a message of len payload bytes takes. */
static inline unsigned msg_slots(size_t len)
{
	if (len <= MBOX_INLINE_MAX)
		return 1;
	return 1 + (unsigned)((len - MBOX_INLINE_MAX + RING_MPSC_MSG_SIZE - 1) /
			      RING_MPSC_MSG_SIZE);
}

#define MBOX_MAX_MSG_SLOTS (1 + (MBOX_MSG_MAX - MBOX_INLINE_MAX + \
				 RING_MPSC_MSG_SIZE - 1) / RING_MPSC_MSG_SIZE)
BUILD_ASSERT(MBOX_MAX_MSG_SLOTS < MBOX_MIN_NSLOTS);

/* Shared control block at the start of a NODE connection's memfd; the
 * ring follows at SHM_CTL_SIZE. */
enum { CONN_OPEN = 0, CONN_REVOKED = 1, CONN_CLOSED = 2 };

struct shm_ctl {
	/* Line 0: written by the receiver only. */
	uint32_t magic;
	uint32_t version;
	uint32_t state;             /* CONN_*, atomic */
	uint32_t sender_id;
	uint64_t ring_off;
	uint64_t ring_size;
	uint32_t nslots;
	uint32_t reserved;
	/* Line 1: both sides. */
	CACHE_ALIGNED uint32_t rx_sleeping; /* atomic */
} CACHE_ALIGNED;

#define SHM_CTL_SIZE ((uint64_t)sizeof(struct shm_ctl))
BUILD_ASSERT(sizeof(struct shm_ctl) == 2 * CACHE_LINE);

/* The NODE handshake, on a SOCK_SEQPACKET socket (native endian: the
 * peers share a machine). */
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
	int32_t status;             /* 0 or -errno */
	uint32_t sender_id;
	uint32_t nslots;
	uint64_t map_size;
};

struct mbox;

struct mbox_conn {
	uint32_t refs;              /* atomic */
	struct mbox *mb;            /* holds a reference to it */
	int fd;                     /* under mb->lock; -1 once closed */
	uint32_t sender_id;
	void *map;
	size_t map_size;
	struct shm_ctl *ctl;
	struct ring_mpsc *ring;
	uint32_t hup;               /* atomic: the socket closed */
	uint32_t revoked;           /* atomic: revoked or cut off */
	bool counted;               /* in senders_remote; under mb->lock */
	bool rx_held;               /* the receiver has it; under mb->lock */
	bool linked;                /* on mb->conns; under mb->lock */
	struct mbox_conn *next;     /* on mb->conns */
	/* Receiver only. */
	uint64_t head;
};

struct mbox {
	uint32_t refs;              /* atomic */
	char name[MBOX_NAME_MAX + 1];
	struct mbox_addr addr;
	unsigned flags;
	uint32_t conn_nslots;
	uint64_t poll_ns;

	struct spinlock lock;       /* guards the fields below it up to rx */
	struct mbox_cap cap;
	bool cap_valid;
	struct mbox_cap revoked[MBOX_REVOKED_KEEP];
	unsigned nrevoked;          /* total ever; index = n % KEEP */
	struct mbox_conn *conns;
	unsigned nconns;
	uint32_t conn_gen;          /* atomic; bumped when a conn is added */
	uint32_t epoch;             /* atomic; bumped by revoke */
	uint32_t closed;            /* atomic; set by destroy */
	struct mbox *reg_next;      /* registry; under g.lock */

	/* Shared with senders. */
	CACHE_ALIGNED uint32_t rx_wait;  /* 0, RX_UTH or RX_THREAD; atomic */
	uint32_t next_sender;            /* atomic */
	struct uth_sem sem;
	int efd;                         /* eventfd doorbell, nonblocking */
	struct ring_mpsc *lring;

	/* Receiver only. */
	CACHE_ALIGNED uint32_t receiving;  /* atomic; -EBUSY guard */
	uint64_t lhead;
	uint32_t rx_gen;
	struct mbox_conn **rx;
	unsigned rx_n;
	unsigned rx_next;
	bool rx_compact;
	uint32_t poll_busy;                /* atomic: our poll is in flight
					    * or its done() still runs */
	uint32_t poll_fired;               /* atomic: its done() began */
	struct syscall poll_sc;

	/* Statistics, atomic. */
	CACHE_ALIGNED uint64_t received;
	uint64_t bad;
	uint64_t dropped;
	uint32_t senders_local;
	uint32_t senders_remote;
	uint32_t revocations;
};

enum { RX_NONE = 0, RX_UTH = 1, RX_THREAD = 2 };

struct mbox_sender {
	enum mbox_transport transport;
	uint32_t id;
	uint32_t failed;            /* atomic: 0 or a positive errno */
	/* LOCAL */
	struct mbox *mb;
	uint32_t epoch;
	/* NODE */
	int fd;
	int efd;
	void *map;
	size_t map_size;
	struct shm_ctl *ctl;
	struct ring_mpsc *ring;
	/* TCP */
	struct mbox_tcp *tcp;
};

/* ---- process-wide state ------------------------------------------------ */

enum { LE_LISTEN, LE_PENDING, LE_CONN };

struct lentry {
	int kind;
	int fd;
	uint64_t since;             /* LE_PENDING: accept time */
	struct mbox_conn *conn;     /* LE_CONN */
	struct lentry *next, *prev;
};

static struct {
	struct spinlock lock;       /* identity, registry, proxy endpoint */
	bool ident_ok;
	uint32_t pid;
	uint64_t incarnation;
	uint64_t next_id;
	struct mbox *registry;
	bool proxy_init;
	char proxy_host[64];
	uint16_t proxy_port;

	/* The listener. lmu is held by the listener thread while it handles
	 * events, by its start-up, and across fork(). */
	pthread_mutex_t lmu;
	bool lstarted;
	int lfd;
	int epfd;
	struct lentry *lentries;
	unsigned npending;
} g = {
	.lock = SPINLOCK_INIT,
	.lmu = PTHREAD_MUTEX_INITIALIZER,
	.lfd = -1,
	.epfd = -1,
};

static pthread_once_t atfork_once = PTHREAD_ONCE_INIT;

static void atfork_prepare(void)
{
	pthread_mutex_lock(&g.lmu);
	spin_lock(&g.lock);
}

static void atfork_parent(void)
{
	spin_unlock(&g.lock);
	pthread_mutex_unlock(&g.lmu);
}

/* The child has only the forking thread: no listener. Whatever belonged to
 * the parent's mailboxes is forgotten (and its sockets closed, so the
 * parent's peers still see the parent's death as a hang-up). */
static void atfork_child(void)
{
	struct lentry *e = g.lentries;

	while (e) {
		close(e->fd);
		e = e->next;
	}
	if (g.epfd >= 0)
		close(g.epfd);
	g.lentries = NULL;
	g.npending = 0;
	g.lfd = -1;
	g.epfd = -1;
	g.lstarted = false;
	g.ident_ok = false;
	g.registry = NULL;
	spin_lock_init(&g.lock);
	pthread_mutex_init(&g.lmu, NULL);
}

static void atfork_register(void)
{
	pthread_atfork(atfork_prepare, atfork_parent, atfork_child);
}

/* ---- small helpers ----------------------------------------------------- */

static bool in_uthread(void)
{
	return uthread_self() != NULL;
}

void mbox__backoff(struct mbox_backoff *b)
{
	unsigned r = b->round++;

	if (r < 4) {
		if (in_uthread())
			uthread_yield();
		else
			sched_yield();
		return;
	}
	uint64_t ns = 1000ull << (r - 4 < 7 ? r - 4 : 7);

	if (ns > 100000)
		ns = 100000;
	if (in_uthread()) {
		uthread_sleep_ns(ns);
	} else {
		struct timespec ts = { 0, (long)ns };

		nanosleep(&ts, NULL);
	}
}

static void efd_ring(int fd)
{
	uint64_t one = 1;

	/* Nonblocking; fails only when the counter would overflow, and then
	 * it is non-zero already, which is all a wake-up needs. */
	if (write(fd, &one, sizeof(one)) < 0) {
		/* nothing to do */
	}
}

static void efd_drain(int fd)
{
	uint64_t v;

	if (read(fd, &v, sizeof(v)) < 0) {
		/* EAGAIN: already empty */
	}
}

static int getrandom_all(void *buf, size_t len)
{
	unsigned char *p = buf;
	size_t done = 0;

	while (done < len) {
		ssize_t n = getrandom(p + done, len - done, 0);

		if (n < 0) {
			int e = errno;

			if (e == EINTR)
				continue;
			return -e;
		}
		done += (size_t)n;
	}
	return 0;
}

static int ident_ensure(void)
{
	uint64_t inc = 0;
	int err;

	pthread_once(&atfork_once, atfork_register);
	spin_lock(&g.lock);
	if (g.ident_ok) {
		spin_unlock(&g.lock);
		return 0;
	}
	spin_unlock(&g.lock);
	do {
		err = getrandom_all(&inc, sizeof(inc));
		if (err)
			return err;
	} while (inc == 0);
	spin_lock(&g.lock);
	if (!g.ident_ok) {
		g.pid = (uint32_t)getpid();
		g.incarnation = inc;
		g.ident_ok = true;
	}
	spin_unlock(&g.lock);
	return 0;
}

static void listen_name(struct sockaddr_un *sa, socklen_t *len, uint32_t pid,
			uint64_t inc)
{
	int n;

	memset(sa, 0, sizeof(*sa));
	sa->sun_family = AF_UNIX;
	/* Abstract namespace: sun_path[0] is NUL, the name is not
	 * NUL-terminated and its length is part of the address. */
	n = snprintf(sa->sun_path + 1, sizeof(sa->sun_path) - 1,
		     "atoll-mbox.%" PRIu32 ".%016" PRIx64, pid, inc);
	*len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + 1 +
			   (size_t)n);
}

/* ---- capabilities, addresses, node id ----------------------------------- */

int mbox_cap_generate(struct mbox_cap *cap)
{
	if (!cap)
		return -EINVAL;
	return getrandom_all(cap->b, sizeof(cap->b));
}

bool mbox_cap_equal(const struct mbox_cap *a, const struct mbox_cap *b)
{
	unsigned char d = 0;

	for (size_t i = 0; i < sizeof(a->b); i++)
		d |= (unsigned char)(a->b[i] ^ b->b[i]);
	return d == 0;
}

void mbox_cap_format(const struct mbox_cap *cap, char *buf)
{
	static const char hex[] = "0123456789abcdef";

	for (size_t i = 0; i < sizeof(cap->b); i++) {
		buf[2 * i] = hex[cap->b[i] >> 4];
		buf[2 * i + 1] = hex[cap->b[i] & 15];
	}
	buf[2 * sizeof(cap->b)] = '\0';
}

int mbox_cap_parse(const char *s, struct mbox_cap *cap)
{
	struct mbox_cap c;

	if (!s || !cap)
		return -EINVAL;
	if (msg__hex_decode(s, sizeof(c.b), c.b) ||
	    s[2 * sizeof(c.b)] != '\0')
		return -EINVAL;
	*cap = c;
	return 0;
}

int mbox_addr_format(const struct mbox_addr *a, char *buf, size_t size)
{
	int n;

	if (!a || !buf)
		return -EINVAL;
	if (a->proxy_port && a->proxy_host[0]) {
		bool v6 = strchr(a->proxy_host, ':') != NULL;

		n = snprintf(buf, size, "%016" PRIx64 ".%" PRIu32 ".%016"
			     PRIx64 ".%" PRIu64 "@%s%.64s%s:%u", a->node,
			     a->pid, a->incarnation, a->id, v6 ? "[" : "",
			     a->proxy_host, v6 ? "]" : "",
			     (unsigned)a->proxy_port);
	} else {
		n = snprintf(buf, size, "%016" PRIx64 ".%" PRIu32 ".%016"
			     PRIx64 ".%" PRIu64, a->node, a->pid,
			     a->incarnation, a->id);
	}
	if (n < 0 || (size_t)n >= size)
		return -ENOSPC;
	return n;
}

/* Parse exactly ndigits..max hex/decimal digits from *s into *v. */
static int parse_u64(const char **sp, int base, unsigned maxdigits,
		     uint64_t *v)
{
	const char *s = *sp;
	uint64_t x = 0;
	unsigned n = 0;

	for (;;) {
		int d = msg__hexval(*s);

		if (d < 0 || d >= base)
			break;
		if (++n > maxdigits)
			return -EINVAL;
		if (x > (UINT64_MAX - (uint64_t)d) / (uint64_t)base)
			return -EINVAL;
		x = x * (uint64_t)base + (uint64_t)d;
		s++;
	}
	if (n == 0)
		return -EINVAL;
	*sp = s;
	*v = x;
	return 0;
}

static bool host_char_ok(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	       (c >= '0' && c <= '9') || c == '.' || c == '-' || c == ':' ||
	       c == '_' || c == '%';
}

int mbox_addr_parse(const char *s, struct mbox_addr *out)
{
	struct mbox_addr a;
	uint64_t v;

	if (!s || !out)
		return -EINVAL;
	memset(&a, 0, sizeof(a));
	if (parse_u64(&s, 16, 16, &a.node) || *s++ != '.')
		return -EINVAL;
	if (parse_u64(&s, 10, 10, &v) || v > UINT32_MAX || *s++ != '.')
		return -EINVAL;
	a.pid = (uint32_t)v;
	if (parse_u64(&s, 16, 16, &a.incarnation) || *s++ != '.')
		return -EINVAL;
	if (parse_u64(&s, 10, 20, &a.id))
		return -EINVAL;
	if (*s == '@') {
		const char *h = ++s, *end;
		size_t hl;

		if (*h == '[') {
			h++;
			end = strchr(h, ']');
			if (!end || end[1] != ':')
				return -EINVAL;
			s = end + 2;
		} else {
			end = strrchr(h, ':');
			if (!end)
				return -EINVAL;
			s = end + 1;
		}
		hl = (size_t)(end - h);
		if (hl == 0 || hl >= sizeof(a.proxy_host))
			return -EINVAL;
		for (size_t i = 0; i < hl; i++)
			if (!host_char_ok(h[i]))
				return -EINVAL;
		memcpy(a.proxy_host, h, hl);
		if (parse_u64(&s, 10, 5, &v) || v == 0 || v > 65535)
			return -EINVAL;
		a.proxy_port = (uint16_t)v;
	}
	if (*s != '\0')
		return -EINVAL;
	*out = a;
	return 0;
}

bool mbox_addr_same(const struct mbox_addr *a, const struct mbox_addr *b)
{
	return a->node == b->node && a->pid == b->pid &&
	       a->incarnation == b->incarnation && a->id == b->id;
}

static uint64_t node_id_val;
static pthread_once_t node_once = PTHREAD_ONCE_INIT;

static void node_id_init(void)
{
	const char *env = getenv("ATOLL_NODE_ID");
	char buf[64];
	ssize_t n;
	int fd;

	if (env && *env) {
		char *end;
		unsigned long long v = strtoull(env, &end, 0);

		if (*end == '\0' && v != 0) {
			node_id_val = v;
			return;
		}
	}
	fd = open("/proc/sys/kernel/random/boot_id", O_RDONLY | O_CLOEXEC);
	if (fd >= 0) {
		n = read(fd, buf, sizeof(buf));
		close(fd);
		if (n > 0) {
			node_id_val = hash64(buf, (size_t)n, 0x41746f6c6cull);
			if (node_id_val)
				return;
		}
	}
	/* No boot id: a host-name hash is still unique per machine. */
	if (gethostname(buf, sizeof(buf)) == 0) {
		buf[sizeof(buf) - 1] = '\0';
		node_id_val = hash64(buf, strlen(buf), 0x41746f6c6cull);
	}
	if (!node_id_val)
		node_id_val = 1;
}

uint64_t mbox_node_id(void)
{
	pthread_once(&node_once, node_id_init);
	return node_id_val;
}

/* ---- proxy endpoint ---------------------------------------------------- */

/* Caller holds g.lock. */
static void proxy_init_locked(void)
{
	const char *env;
	const char *colon;

	if (g.proxy_init)
		return;
	g.proxy_init = true;
	env = getenv("ATOLL_MBOX_PROXY");
	if (!env || !*env)
		return;
	colon = strrchr(env, ':');
	if (!colon || colon == env ||
	    (size_t)(colon - env) >= sizeof(g.proxy_host))
		return;
	unsigned long port = strtoul(colon + 1, NULL, 10);

	if (port == 0 || port > 65535)
		return;
	memcpy(g.proxy_host, env, (size_t)(colon - env));
	g.proxy_host[colon - env] = '\0';
	g.proxy_port = (uint16_t)port;
}

int mbox_set_proxy(const char *host, uint16_t port)
{
	if (host && (strlen(host) >= sizeof(g.proxy_host) || !*host ||
		     port == 0))
		return -EINVAL;
	if (host)
		for (const char *p = host; *p; p++)
			if (!host_char_ok(*p))
				return -EINVAL;
	spin_lock(&g.lock);
	g.proxy_init = true;
	if (host) {
		strcpy(g.proxy_host, host);
		g.proxy_port = port;
	} else {
		g.proxy_host[0] = '\0';
		g.proxy_port = 0;
	}
	spin_unlock(&g.lock);
	return 0;
}

void mbox__set_proxy_if_unset(const char *host, uint16_t port)
{
	spin_lock(&g.lock);
	proxy_init_locked();
	if (!g.proxy_port && strlen(host) < sizeof(g.proxy_host)) {
		strcpy(g.proxy_host, host);
		g.proxy_port = port;
	}
	spin_unlock(&g.lock);
}

/* ---- rings: claiming and taking whole messages -------------------------- */

/* Claim exactly k consecutive positions, or none: UINT64_MAX when the
 * ring has fewer than k free slots. Producers, concurrently. */
static uint64_t claim_exact(struct ring_mpsc *r, unsigned k)
{
	uint32_t mask = r->geom.nslots - 1;
	uint64_t pos = load_relaxed(&r->prod.tail);

	for (;;) {
		uint64_t last = pos + k - 1;
		/* Acquire pairs with the consumer's store_release of seq in
		 * take_msg(): it has read the old message of this slot and,
		 * freeing in order, of every slot before it. */
		uint64_t seq = load_acquire(&r->slots[last & mask].seq);
		int64_t diff = (int64_t)(seq - last);

		if (diff == 0) {
			/* Relaxed: the CAS hands out positions only; the
			 * contents are ordered by each slot's seq. */
			if (cas_relaxed(&r->prod.tail, &pos, pos + k)) {
				/* The consumer freed the earlier slots
				 * before the last one, so the acquire above
				 * covers them. Acquire each anyway: when the
				 * consumer is another process, TSan sees
				 * only this process's last writer of each
				 * slot, and this gives it that edge. */
				for (unsigned i = 0; i + 1 < k; i++)
					(void)load_acquire(
						&r->slots[(pos + i) & mask].seq);
				return pos;
			}
		} else if (diff < 0) {
			return UINT64_MAX;
		} else {
			pos = load_relaxed(&r->prod.tail);
		}
	}
}

/* Write a message into the k slots claimed at pos: continuation slots
 * first, the header slot last, so a consumer that sees the header ready
 * mostly finds the rest ready too. */
static void fill_msg(struct ring_mpsc *r, uint64_t pos, unsigned k,
		     uint32_t sender, uint16_t type, const void *data,
		     size_t len)
{
	uint32_t mask = r->geom.nslots - 1;
	const unsigned char *src = data;
	struct ring_mpsc_slot *s0 = &r->slots[pos & mask];
	struct slot_hdr h = { .sender = sender, .type = type,
			      .len = (uint16_t)len };
	size_t first = len < MBOX_INLINE_MAX ? len : MBOX_INLINE_MAX;

	for (unsigned i = 1; i < k; i++) {
		struct ring_mpsc_slot *s = &r->slots[(pos + i) & mask];
		size_t off = MBOX_INLINE_MAX + (size_t)(i - 1) *
			     RING_MPSC_MSG_SIZE;
		size_t n = len - off < RING_MPSC_MSG_SIZE ? len - off :
			   RING_MPSC_MSG_SIZE;

		memcpy(s->data, src + off, n);
		/* Release pairs with the consumer's load_acquire of seq in
		 * take_msg(): the payload is written before the slot reads
		 * as ready. */
		store_release(&s->seq, pos + i + 1);
	}
	memcpy(s0->data, &h, sizeof(h));
	if (first)
		memcpy(s0->data + sizeof(h), src, first);
	/* Release: as above, for the header slot. */
	store_release(&s0->seq, pos + 1);
}

enum { TAKE_NONE = 0, TAKE_OK = 1, TAKE_BAD = -1 };

/* Take the message at *head if all its slots are ready: header into *h,
 * payload (up to size bytes) into buf; frees its slots and advances *head.
 * TAKE_NONE: not (yet) there; TAKE_BAD: the header's length is
 * impossible (nothing consumed). Consumer only. The ring may be written by
 * an untrusted process: every index is masked, every length checked. */
static int take_msg(struct ring_mpsc *r, uint64_t *headp, struct slot_hdr *h,
		    void *buf, size_t size)
{
	uint32_t nslots = r->geom.nslots;
	uint32_t mask = nslots - 1;
	uint64_t head = *headp;
	struct ring_mpsc_slot *s0 = &r->slots[head & mask];
	unsigned char *dst = buf;
	unsigned k;
	size_t first;

	/* Acquire pairs with the producer's store_release of seq in
	 * fill_msg(): the payload is visible. */
	if (load_acquire(&s0->seq) != head + 1)
		return TAKE_NONE;
	memcpy(h, s0->data, sizeof(*h));
	if (h->len > MBOX_MSG_MAX)
		return TAKE_BAD;
	k = msg_slots(h->len);
	for (unsigned i = 1; i < k; i++)
		/* Acquire: as above, for each continuation slot. */
		if (load_acquire(&r->slots[(head + i) & mask].seq) !=
		    head + i + 1)
			return TAKE_NONE;
	first = h->len < MBOX_INLINE_MAX ? h->len : MBOX_INLINE_MAX;
	if (first > size)
		first = size;
	if (first)
		memcpy(dst, s0->data + sizeof(*h), first);
	for (unsigned i = 1; i < k; i++) {
		size_t off = MBOX_INLINE_MAX + (size_t)(i - 1) *
			     RING_MPSC_MSG_SIZE;
		size_t n = h->len - off < RING_MPSC_MSG_SIZE ? h->len - off :
			   RING_MPSC_MSG_SIZE;

		if (off >= size)
			break;
		if (n > size - off)
			n = size - off;
		memcpy(dst + off, r->slots[(head + i) & mask].data, n);
	}
	for (unsigned i = 0; i < k; i++)
		/* Release pairs with the producers' load_acquire of seq in
		 * claim_exact(): our reads are done before reuse. */
		store_release(&r->slots[(head + i) & mask].seq,
			      head + i + nslots);
	*headp = head + k;
	/* Relaxed: published for count() only. */
	store_relaxed(&r->cons.head, head + k);
	return TAKE_OK;
}

/* Positions claimed and not consumed, as the receiver sees them. */
static uint64_t ring_backlog(const struct ring_mpsc *r, uint64_t head)
{
	uint64_t tail = load_relaxed(&r->prod.tail);
	uint64_t n = tail - head;

	return n > r->geom.nslots ? r->geom.nslots : n;
}

/* ---- mailbox references and the registry -------------------------------- */

static void mbox_get(struct mbox *mb)
{
	fetch_add_relaxed(&mb->refs, 1);
}

static void mbox_put(struct mbox *mb)
{
	/* Acq_rel: every holder's accesses happen before the free. */
	if (fetch_sub_acq_rel(&mb->refs, 1) != 1)
		return;
	if (mb->efd >= 0)
		close(mb->efd);
	free(mb->lring);
	free(mb->rx);
	free(mb);
}

static void conn_get(struct mbox_conn *c)
{
	fetch_add_relaxed(&c->refs, 1);
}

static void conn_put(struct mbox_conn *c)
{
	struct mbox *mb = c->mb;

	/* Acq_rel: as mbox_put. */
	if (fetch_sub_acq_rel(&c->refs, 1) != 1)
		return;
	spin_lock(&mb->lock);
	if (c->linked) {
		struct mbox_conn **pp = &mb->conns;

		while (*pp != c)
			pp = &(*pp)->next;
		*pp = c->next;
		c->linked = false;
		mb->nconns--;
	}
	if (c->counted) {
		c->counted = false;
		fetch_sub_acq_rel(&mb->senders_remote, 1);
	}
	spin_unlock(&mb->lock);
	munmap(c->map, c->map_size);
	free(c);
	mbox_put(mb);
}

/* Find a live mailbox of this process by id; takes a reference. */
static struct mbox *registry_get(uint64_t id, uint64_t inc)
{
	struct mbox *mb;

	spin_lock(&g.lock);
	if (!g.ident_ok || inc != g.incarnation) {
		spin_unlock(&g.lock);
		return NULL;
	}
	for (mb = g.registry; mb; mb = mb->reg_next)
		if (mb->addr.id == id)
			break;
	if (mb)
		mbox_get(mb);
	spin_unlock(&g.lock);
	return mb;
}

/* Check cap against mb's current and revoked tokens. Caller holds
 * mb->lock. */
static int cap_check_locked(struct mbox *mb, const struct mbox_cap *cap)
{
	unsigned n;

	if (load_relaxed(&mb->closed))
		return -ENOENT;
	if (mb->cap_valid && mbox_cap_equal(&mb->cap, cap))
		return 0;
	n = mb->nrevoked < MBOX_REVOKED_KEEP ? mb->nrevoked : MBOX_REVOKED_KEEP;
	for (unsigned i = 0; i < n; i++)
		if (mbox_cap_equal(&mb->revoked[i], cap))
			return -EKEYREVOKED;
	return -EACCES;
}

/* Wake the receiver if it sleeps (after a push and a full fence). */
static void rx_kick(struct mbox *mb)
{
	uint32_t w;

	if (!load_relaxed(&mb->rx_wait))
		return;
	w = xchg_acq_rel(&mb->rx_wait, RX_NONE);
	/* Only runtime code touches the runtime: a plain thread (a sender
	 * outside the runtime, the listener, a proxy) rings the eventfd,
	 * which the sleeping uthread's io_uring poll watches, so no outside
	 * thread is ever inside the scheduler when rt_main tears it down. */
	if (w == RX_UTH && vcore_id() >= 0)
		uth_sem_up(&mb->sem);
	else if (w != RX_NONE)
		efd_ring(mb->efd);
}

/* ---- the listener ------------------------------------------------------ */

static void lentry_add(struct lentry *e)
{
	e->prev = NULL;
	e->next = g.lentries;
	if (g.lentries)
		g.lentries->prev = e;
	g.lentries = e;
}

static void lentry_del(struct lentry *e)
{
	if (e->prev)
		e->prev->next = e->next;
	else
		g.lentries = e->next;
	if (e->next)
		e->next->prev = e->prev;
}

/* Close a listener entry. Caller holds g.lmu. */
static void lentry_close(struct lentry *e)
{
	epoll_ctl(g.epfd, EPOLL_CTL_DEL, e->fd, NULL);
	lentry_del(e);
	if (e->kind == LE_PENDING)
		g.npending--;
	if (e->kind == LE_CONN) {
		struct mbox_conn *c = e->conn;
		struct mbox *mb = c->mb;

		spin_lock(&mb->lock);
		c->fd = -1;
		if (c->counted) {
			c->counted = false;
			fetch_sub_acq_rel(&mb->senders_remote, 1);
		}
		spin_unlock(&mb->lock);
		/* Release pairs with the receiver's load_acquire of hup in
		 * take_conn(). */
		store_release(&c->hup, 1);
		conn_put(c);
	}
	close(e->fd);
	free(e);
}

/* Create the memfd and ring of a new connection to mb. Returns the conn
 * (one reference, the listener's) and the memfd in *memfd. */
static struct mbox_conn *conn_create(struct mbox *mb, int *memfd, int *err)
{
	uint32_t nslots = mb->conn_nslots;
	uint64_t ring_size = ring_mpsc_size(nslots);
	size_t map_size = ALIGN_UP((size_t)(SHM_CTL_SIZE + ring_size),
				   (size_t)4096);
	struct mbox_conn *c = calloc(1, sizeof(*c));
	int fd;

	if (!c) {
		*err = -ENOMEM;
		return NULL;
	}
	fd = memfd_create("atoll-mbox", MFD_CLOEXEC);
	if (fd < 0) {
		*err = -errno;
		free(c);
		return NULL;
	}
	if (ftruncate(fd, (off_t)map_size) < 0) {
		*err = -errno;
		goto fail;
	}
	c->map = mmap(NULL, map_size, PROT_READ | PROT_WRITE, MAP_SHARED, fd,
		      0);
	if (c->map == MAP_FAILED) {
		*err = -errno;
		goto fail;
	}
	c->map_size = map_size;
	c->ctl = c->map;
	c->ring = (struct ring_mpsc *)((char *)c->map + SHM_CTL_SIZE);
	if (ring_mpsc_init(c->ring, map_size - SHM_CTL_SIZE, nslots)) {
		*err = -EINVAL;
		munmap(c->map, map_size);
		goto fail;
	}
	c->sender_id = fetch_add_relaxed(&mb->next_sender, 1) + 1;
	c->ctl->version = MBOX_PROTO_VERSION;
	c->ctl->state = CONN_OPEN;
	c->ctl->sender_id = c->sender_id;
	c->ctl->ring_off = SHM_CTL_SIZE;
	c->ctl->ring_size = ring_size;
	c->ctl->nslots = nslots;
	/* The receiver may already sleep: the first message rings. */
	c->ctl->rx_sleeping = 1;
	/* Release: the whole block before the magic (the peer maps it only
	 * after our reply, but say it anyway). */
	store_release(&c->ctl->magic, SHM_MAGIC);
	c->refs = 1;
	c->fd = -1;
	c->mb = mb;
	mbox_get(mb);
	*memfd = fd;
	return c;
fail:
	close(fd);
	free(c);
	return NULL;
}

static void hs_reply(int fd, const struct hs_rep *rep, int memfd, int efd)
{
	struct iovec iov = { (void *)rep, sizeof(*rep) };
	union {
		struct cmsghdr h;
		char buf[CMSG_SPACE(2 * sizeof(int))];
	} cm;
	struct msghdr msg = { .msg_iov = &iov, .msg_iovlen = 1 };

	if (memfd >= 0) {
		struct cmsghdr *ch;
		int fds[2] = { memfd, efd };

		memset(&cm, 0, sizeof(cm));
		msg.msg_control = cm.buf;
		msg.msg_controllen = sizeof(cm.buf);
		ch = CMSG_FIRSTHDR(&msg);
		ch->cmsg_level = SOL_SOCKET;
		ch->cmsg_type = SCM_RIGHTS;
		ch->cmsg_len = CMSG_LEN(sizeof(fds));
		memcpy(CMSG_DATA(ch), fds, sizeof(fds));
	}
	/* A fresh socket's buffer is empty: this does not block. */
	if (sendmsg(fd, &msg, MSG_DONTWAIT | MSG_NOSIGNAL) < 0) {
		/* the peer is gone; its entry closes on hup */
	}
}

/* A pending connection sent its request (or went away). Caller holds
 * g.lmu. */
static void handle_pending(struct lentry *e)
{
	struct hs_req req;
	struct hs_rep rep = { .magic = HS_MAGIC };
	struct mbox_conn *c = NULL;
	struct mbox *mb;
	struct mbox_cap cap;
	int memfd = -1;
	ssize_t n;
	int err;

	n = recv(e->fd, &req, sizeof(req), MSG_DONTWAIT | MSG_TRUNC);
	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return;
	if (n != (ssize_t)sizeof(req) || req.magic != HS_MAGIC ||
	    req.version != MBOX_PROTO_VERSION) {
		if (n > 0) {
			rep.status = -EPROTO;
			hs_reply(e->fd, &rep, -1, -1);
		}
		lentry_close(e);
		return;
	}
	memcpy(cap.b, req.cap, sizeof(cap.b));
	mb = registry_get(req.id, req.incarnation);
	if (!mb) {
		rep.status = -ENOENT;
		goto refuse;
	}
	if (mb->flags & MBOX_F_LOCAL_ONLY) {
		rep.status = -ECONNREFUSED;
		goto refuse;
	}
	spin_lock(&mb->lock);
	err = cap_check_locked(mb, &cap);
	spin_unlock(&mb->lock);
	if (err) {
		rep.status = err;
		goto refuse;
	}
	c = conn_create(mb, &memfd, &err);
	if (!c) {
		rep.status = err;
		goto refuse;
	}
	/* Check again and publish under one hold of the lock: a revoke
	 * between the two would otherwise miss this connection. */
	spin_lock(&mb->lock);
	err = cap_check_locked(mb, &cap);
	if (!err && mb->nconns >= MBOX_MAX_CONNS)
		err = -EMFILE;
	if (!err) {
		c->fd = e->fd;
		c->next = mb->conns;
		mb->conns = c;
		c->linked = true;
		c->counted = true;
		mb->nconns++;
		fetch_add_relaxed(&mb->senders_remote, 1);
		/* Release pairs with the receiver's load_acquire of
		 * conn_gen in rx_take(). */
		store_release(&mb->conn_gen, mb->conn_gen + 1);
	}
	spin_unlock(&mb->lock);
	if (err) {
		rep.status = err;
		close(memfd);
		conn_put(c);
		goto refuse;
	}
	rep.sender_id = c->sender_id;
	rep.nslots = mb->conn_nslots;
	rep.map_size = c->map_size;
	hs_reply(e->fd, &rep, memfd, mb->efd);
	close(memfd);
	/* A receiver asleep without this connection's flag must look. */
	fence_seq_cst(); /* pairs with the receiver's fence in rx_wait */
	rx_kick(mb);
	mbox_put(mb);
	e->kind = LE_CONN;
	e->conn = c;
	g.npending--;
	return;
refuse:
	hs_reply(e->fd, &rep, -1, -1);
	if (mb)
		mbox_put(mb);
	lentry_close(e);
}

static void handle_listen(void)
{
	for (;;) {
		int fd = accept4(g.lfd, NULL, NULL, SOCK_NONBLOCK |
				 SOCK_CLOEXEC);
		struct lentry *e;
		struct epoll_event ev;

		if (fd < 0)
			return;
		if (g.npending >= LISTEN_MAX_PENDING ||
		    !(e = calloc(1, sizeof(*e)))) {
			close(fd);
			continue;
		}
		e->kind = LE_PENDING;
		e->fd = fd;
		e->since = now_ns();
		ev.events = EPOLLIN | EPOLLRDHUP;
		ev.data.ptr = e;
		if (epoll_ctl(g.epfd, EPOLL_CTL_ADD, fd, &ev) < 0) {
			close(fd);
			free(e);
			continue;
		}
		lentry_add(e);
		g.npending++;
	}
}

static void *listener_main(void *arg)
{
	struct epoll_event evs[32];
	uint64_t last_sweep = 0;

	(void)arg;
	for (;;) {
		int n = epoll_wait(g.epfd, evs, 32, 1000);
		uint64_t now;

		pthread_mutex_lock(&g.lmu);
		for (int i = 0; i < n; i++) {
			struct lentry *e = evs[i].data.ptr;

			if (!e)
				handle_listen();
			else if (e->kind == LE_PENDING)
				handle_pending(e);
			else
				lentry_close(e); /* data or hang-up */
		}
		/* Drop handshakes that never came (a sweep at most every
		 * half second). */
		now = now_ns();
		if (g.npending && now - last_sweep > LISTEN_PENDING_NS / 4) {
			last_sweep = now;
			for (struct lentry *e = g.lentries, *next; e;
			     e = next) {
				next = e->next;
				if (e->kind == LE_PENDING &&
				    now - e->since > LISTEN_PENDING_NS)
					lentry_close(e);
			}
		}
		pthread_mutex_unlock(&g.lmu);
	}
	return NULL;
}

/* Start the listener if it is not running. */
static int listener_ensure(void)
{
	struct sockaddr_un sa;
	socklen_t salen;
	struct epoll_event ev = { .events = EPOLLIN, .data.ptr = NULL };
	sigset_t all, old;
	pthread_t th;
	int err = 0;

	pthread_mutex_lock(&g.lmu);
	if (g.lstarted)
		goto out;
	spin_lock(&g.lock);
	listen_name(&sa, &salen, g.pid, g.incarnation);
	spin_unlock(&g.lock);
	g.lfd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_NONBLOCK | SOCK_CLOEXEC,
		       0);
	if (g.lfd < 0) {
		err = -errno;
		goto out;
	}
	if (bind(g.lfd, (struct sockaddr *)&sa, salen) < 0 ||
	    listen(g.lfd, 128) < 0) {
		err = -errno;
		goto fail;
	}
	g.epfd = epoll_create1(EPOLL_CLOEXEC);
	if (g.epfd < 0) {
		err = -errno;
		goto fail;
	}
	if (epoll_ctl(g.epfd, EPOLL_CTL_ADD, g.lfd, &ev) < 0) {
		err = -errno;
		goto fail;
	}
	/* The listener takes no signals: they are the application's. */
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	err = -pthread_create(&th, NULL, listener_main, NULL);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (err)
		goto fail;
	pthread_detach(th);
	g.lstarted = true;
	goto out;
fail:
	if (g.epfd >= 0)
		close(g.epfd);
	close(g.lfd);
	g.epfd = g.lfd = -1;
out:
	pthread_mutex_unlock(&g.lmu);
	return err;
}

/* ---- mailboxes ---------------------------------------------------------- */

int mbox_create(const char *name, const struct mbox_opts *opts,
		struct mbox **out)
{
	struct mbox_opts o = { 0 };
	struct mbox *mb;
	size_t rsize;
	int err;

	if (!name || !out || strlen(name) > MBOX_NAME_MAX)
		return -EINVAL;
	if (opts)
		o = *opts;
	if (!o.nslots)
		o.nslots = MBOX_DEFAULT_NSLOTS;
	if (!o.conn_nslots)
		o.conn_nslots = MBOX_DEFAULT_CONN_NSLOTS;
	if (!o.poll_ns)
		o.poll_ns = MBOX_DEFAULT_POLL_NS;
	if (!IS_POW2(o.nslots) || o.nslots < MBOX_MIN_NSLOTS ||
	    o.nslots > MBOX_MAX_NSLOTS || !IS_POW2(o.conn_nslots) ||
	    o.conn_nslots < MBOX_MIN_NSLOTS ||
	    o.conn_nslots > MBOX_MAX_NSLOTS || (o.flags & ~MBOX_F_LOCAL_ONLY))
		return -EINVAL;
	err = ident_ensure();
	if (err)
		return err;
	if (!(o.flags & MBOX_F_LOCAL_ONLY)) {
		err = listener_ensure();
		if (err)
			return err;
	}
	mb = calloc(1, sizeof(*mb));
	if (!mb)
		return -ENOMEM;
	mb->efd = -1;
	rsize = ring_mpsc_size(o.nslots);
	mb->lring = aligned_alloc(CACHE_LINE, rsize);
	if (!mb->lring) {
		err = -ENOMEM;
		goto fail;
	}
	ring_mpsc_init(mb->lring, rsize, o.nslots);
	mb->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (mb->efd < 0) {
		err = -errno;
		goto fail;
	}
	err = mbox_cap_generate(&mb->cap);
	if (err)
		goto fail;
	mb->cap_valid = true;
	mb->refs = 1;
	strcpy(mb->name, name);
	mb->flags = o.flags;
	mb->conn_nslots = o.conn_nslots;
	mb->poll_ns = o.poll_ns;
	spin_lock_init(&mb->lock);
	uth_sem_init(&mb->sem, 0);
	mb->addr.node = mbox_node_id();
	spin_lock(&g.lock);
	proxy_init_locked();
	mb->addr.pid = g.pid;
	mb->addr.incarnation = g.incarnation;
	mb->addr.id = ++g.next_id;
	if (g.proxy_port) {
		strcpy(mb->addr.proxy_host, g.proxy_host);
		mb->addr.proxy_port = g.proxy_port;
	}
	mb->reg_next = g.registry;
	g.registry = mb;
	spin_unlock(&g.lock);
	*out = mb;
	return 0;
fail:
	if (mb->efd >= 0)
		close(mb->efd);
	free(mb->lring);
	free(mb);
	return err;
}

/* Wait until no io_uring poll of ours is in flight or completing (its
 * completion touches mb). A poll lives only inside mbox_recv (rx_sleep
 * retires it), so one is left only by a receiver abandoned in mbox_recv
 * when its runtime stopped: called from outside the runtime, this takes
 * that runtime as gone (see mbox_destroy in mbox.h), its rings and their
 * requests with it. */
static void poll_quiesce(struct mbox *mb)
{
	if (!load_acquire(&mb->poll_busy))
		return;
	efd_ring(mb->efd);
	/* Acquire pairs with the fetch_sub in poll_done(). */
	while (load_acquire(&mb->poll_busy) && rt_active()) {
		if (in_uthread())
			uthread_yield();
		else
			sched_yield();
	}
}

void mbox_destroy(struct mbox *mb)
{
	struct mbox **pp;

	if (!mb)
		return;
	spin_lock(&g.lock);
	for (pp = &g.registry; *pp; pp = &(*pp)->reg_next)
		if (*pp == mb) {
			*pp = mb->reg_next;
			break;
		}
	spin_unlock(&g.lock);
	spin_lock(&mb->lock);
	store_release(&mb->closed, 1);
	mb->cap_valid = false;
	for (struct mbox_conn *c = mb->conns; c; c = c->next) {
		store_release(&c->revoked, 1);
		/* Release: senders read the state with acquire. */
		store_release(&c->ctl->state, CONN_CLOSED);
		if (c->fd >= 0)
			shutdown(c->fd, SHUT_RDWR);
	}
	spin_unlock(&mb->lock);
	poll_quiesce(mb);
	fetch_add_relaxed(&mb->dropped, ring_backlog(mb->lring, mb->lhead));
	for (unsigned i = 0; i < mb->rx_n; i++) {
		struct mbox_conn *c = mb->rx[i];

		if (!c)
			continue;   /* already dropped, awaiting compaction */
		fetch_add_relaxed(&mb->dropped, ring_backlog(c->ring, c->head));
		conn_put(c);
	}
	mb->rx_n = 0;
	mbox_put(mb);
}

const char *mbox_name(const struct mbox *mb)
{
	return mb->name;
}

void mbox_addr(const struct mbox *mb, struct mbox_addr *out)
{
	*out = mb->addr;
}

void mbox_cap(const struct mbox *mb, struct mbox_cap *out)
{
	struct mbox *m = (struct mbox *)mb;

	spin_lock(&m->lock);
	*out = m->cap;
	spin_unlock(&m->lock);
}

int mbox_revoke(struct mbox *mb, struct mbox_cap *newcap)
{
	struct mbox_cap fresh;
	int err;

	if (!mb)
		return -EINVAL;
	if (newcap) {
		err = mbox_cap_generate(&fresh);
		if (err)
			return err;
	}
	spin_lock(&mb->lock);
	if (mb->cap_valid) {
		mb->revoked[mb->nrevoked % MBOX_REVOKED_KEEP] = mb->cap;
		mb->nrevoked++;
	}
	if (newcap) {
		mb->cap = fresh;
		mb->cap_valid = true;
	} else {
		mb->cap_valid = false;
	}
	/* Release pairs with the LOCAL senders' load_acquire of epoch. */
	store_release(&mb->epoch, mb->epoch + 1);
	for (struct mbox_conn *c = mb->conns; c; c = c->next) {
		if (load_relaxed(&c->revoked))
			continue;
		store_release(&c->revoked, 1);
		/* Release: NODE senders read the state with acquire. */
		store_release(&c->ctl->state, CONN_REVOKED);
		if (c->fd >= 0)
			shutdown(c->fd, SHUT_RDWR);
		if (c->counted) {
			c->counted = false;
			fetch_sub_acq_rel(&mb->senders_remote, 1);
		}
	}
	fetch_add_relaxed(&mb->revocations, 1);
	spin_unlock(&mb->lock);
	if (newcap)
		*newcap = fresh;
	return 0;
}

void mbox_stats(const struct mbox *mb, struct mbox_stats *st)
{
	st->received = load_relaxed(&mb->received);
	st->bad = load_relaxed(&mb->bad);
	st->dropped = load_relaxed(&mb->dropped);
	st->full = ring_mpsc_full_count(mb->lring);
	st->senders_local = load_relaxed(&mb->senders_local);
	st->senders_remote = load_relaxed(&mb->senders_remote);
	st->revocations = load_relaxed(&mb->revocations);
}

/* ---- receiving ---------------------------------------------------------- */

/* Pick up connections the listener added. Receiver only. */
static void rx_refresh(struct mbox *mb)
{
	if (!mb->rx) {
		mb->rx = calloc(MBOX_MAX_CONNS, sizeof(*mb->rx));
		if (!mb->rx)
			return; /* try again next time */
	}
	spin_lock(&mb->lock);
	for (struct mbox_conn *c = mb->conns; c; c = c->next) {
		if (c->rx_held || mb->rx_n >= MBOX_MAX_CONNS)
			continue;
		c->rx_held = true;
		conn_get(c);
		c->head = 0;
		mb->rx[mb->rx_n++] = c;
	}
	mb->rx_gen = mb->conn_gen;
	spin_unlock(&mb->lock);
}

/* Drop the connections marked for it (rx[i] == NULL). Receiver only. */
static void rx_compact(struct mbox *mb)
{
	unsigned j = 0;

	for (unsigned i = 0; i < mb->rx_n; i++)
		if (mb->rx[i])
			mb->rx[j++] = mb->rx[i];
	mb->rx_n = j;
	mb->rx_compact = false;
}

/* Let go of connection rx[i], discarding what it still holds. */
static void rx_drop(struct mbox *mb, unsigned i)
{
	struct mbox_conn *c = mb->rx[i];

	fetch_add_relaxed(&mb->dropped, ring_backlog(c->ring, c->head));
	spin_lock(&mb->lock);
	if (c->fd >= 0)
		shutdown(c->fd, SHUT_RDWR);
	spin_unlock(&mb->lock);
	mb->rx[i] = NULL;
	mb->rx_compact = true;
	conn_put(c);
}

/* Cut a connection off whose ring cannot be parsed. */
static void rx_cut(struct mbox *mb, unsigned i)
{
	struct mbox_conn *c = mb->rx[i];

	fetch_add_relaxed(&mb->bad, 1);
	store_release(&c->revoked, 1);
	/* Release: the sender reads the state with acquire. */
	store_release(&c->ctl->state, CONN_CLOSED);
	rx_drop(mb, i);
}

static int deliver(struct mbox *mb, const struct slot_hdr *sh,
		   struct mbox_hdr *hdr, uint32_t sender, size_t size)
{
	hdr->sender = sender;
	hdr->type = sh->type;
	hdr->len = sh->len;
	fetch_add_relaxed(&mb->received, 1);
	return sh->len > size ? -EMSGSIZE : (int)sh->len;
}

/* Take from connection rx[i]. -EAGAIN when it has nothing ready. */
static int take_conn(struct mbox *mb, unsigned i, struct mbox_hdr *hdr,
		     void *buf, size_t size)
{
	struct mbox_conn *c = mb->rx[i];
	struct slot_hdr sh;
	int r;

	for (;;) {
		/* Acquire pairs with the release stores of revoked. */
		if (load_acquire(&c->revoked)) {
			rx_drop(mb, i);
			return -EAGAIN;
		}
		r = take_msg(c->ring, &c->head, &sh, buf, size);
		if (r == TAKE_NONE) {
			/* Acquire pairs with lentry_close's store_release:
			 * the sender's last messages came before its
			 * close; look once more, then let the conn go. */
			if (!load_acquire(&c->hup))
				return -EAGAIN;
			r = take_msg(c->ring, &c->head, &sh, buf, size);
			if (r == TAKE_NONE) {
				rx_drop(mb, i);
				return -EAGAIN;
			}
		}
		if (r == TAKE_BAD) {
			rx_cut(mb, i);
			return -EAGAIN;
		}
		if (sh.type > MBOX_TYPE_USER_MAX) {
			fetch_add_relaxed(&mb->bad, 1);
			continue;
		}
		return deliver(mb, &sh, hdr, c->sender_id, size);
	}
}

/* One pass over every source, starting after the last that delivered.
 * -EAGAIN when none had a message. Receiver only. */
static int rx_take(struct mbox *mb, struct mbox_hdr *hdr, void *buf,
		   size_t size)
{
	unsigned nsrc;

	if (mb->rx_compact)
		rx_compact(mb);
	/* Acquire pairs with the listener's store_release of conn_gen. */
	if (load_acquire(&mb->conn_gen) != mb->rx_gen)
		rx_refresh(mb);
	nsrc = 1 + mb->rx_n;
	for (unsigned k = 0; k < nsrc; k++) {
		unsigned idx = (mb->rx_next + k) % nsrc;
		int r;

		if (idx == 0) {
			struct slot_hdr sh;

			if (take_msg(mb->lring, &mb->lhead, &sh, buf, size) !=
			    TAKE_OK)
				continue;
			r = deliver(mb, &sh, hdr, sh.sender, size);
		} else if (mb->rx[idx - 1]) {
			r = take_conn(mb, idx - 1, hdr, buf, size);
			if (r == -EAGAIN)
				continue;
		} else {
			continue;
		}
		mb->rx_next = idx + 1;
		return r;
	}
	return -EAGAIN;
}

/* The eventfd poll completed (vcore context). */
static void poll_done(struct syscall *sc)
{
	struct mbox *mb = container_of(sc, struct mbox, poll_sc);

	efd_drain(mb->efd);
	/* Release pairs with rx_sleep()'s acquire: from here on the
	 * receiver waits for poll_busy without sleeping. */
	store_release(&mb->poll_fired, 1);
	uth_sem_up(&mb->sem);
	/* Release pairs with rx_sleep()'s and poll_quiesce()'s acquire: our
	 * last access to mb comes before it. */
	store_release(&mb->poll_busy, 0);
}

/* Announce that the receiver will sleep, or withdraw it. */
static void rx_set_sleeping(struct mbox *mb, uint32_t mode)
{
	store_relaxed(&mb->rx_wait, mode);
	for (unsigned i = 0; i < mb->rx_n; i++)
		if (mb->rx[i])
			store_relaxed(&mb->rx[i]->ctl->rx_sleeping,
				      mode ? 1u : 0u);
}

/* Sleep until a sender wakes us or the deadline passes. */
static void rx_sleep(struct mbox *mb, uint32_t mode, uint64_t deadline)
{
	uint64_t now = fast_ns();

	if (mode == RX_UTH) {
		bool polled;

		memset(&mb->poll_sc, 0, sizeof(mb->poll_sc));
		mb->poll_sc.op = SYS_OP_POLL;
		mb->poll_sc.fd = mb->efd;
		mb->poll_sc.arg[0] = POLLIN;
		mb->poll_sc.done = poll_done;
		mb->poll_sc.data = mb;
		store_relaxed(&mb->poll_fired, 0);
		store_relaxed(&mb->poll_busy, 1);
		polled = sys_submit(&mb->poll_sc) == 0;
		if (!polled) {
			store_relaxed(&mb->poll_busy, 0);
			/* Without the poll an eventfd wake-up would go
			 * unseen: look again every millisecond. */
			if (deadline == UINT64_MAX || deadline - now > 1000000)
				deadline = now + 1000000;
		}
		if (deadline == UINT64_MAX)
			uth_sem_down(&mb->sem);
		else if (now < deadline)
			uth_sem_timeddown(&mb->sem, deadline - now);
		if (!polled)
			return;
		/* Retire the poll before going on, so that none outlives
		 * this call (nor this runtime, whose rings die with it):
		 * ring the eventfd ourselves and wait for the completion.
		 * Acquire pairs with poll_done()'s releases. */
		if (load_acquire(&mb->poll_busy))
			efd_ring(mb->efd);
		while (load_acquire(&mb->poll_busy)) {
			if (!load_acquire(&mb->poll_fired))
				uth_sem_down(&mb->sem); /* its sem_up ends it */
			else
				uthread_yield();        /* a few instructions */
		}
	} else {
		struct pollfd pfd = { .fd = mb->efd, .events = POLLIN };
		int ms = -1;

		if (deadline != UINT64_MAX) {
			uint64_t left = now < deadline ? deadline - now : 0;

			ms = (int)((left + 999999) / 1000000);
			if (ms > 1000000)
				ms = 1000000;
		}
		if (poll(&pfd, 1, ms) > 0)
			efd_drain(mb->efd);
	}
}

static int rx_wait(struct mbox *mb, struct mbox_hdr *hdr, void *buf,
		   size_t size, uint64_t timeout_ns)
{
	uint64_t start = fast_ns();
	uint64_t deadline = timeout_ns == MBOX_FOREVER ? UINT64_MAX :
			    (start + timeout_ns < start ? UINT64_MAX :
			     start + timeout_ns);
	uint32_t mode = in_uthread() ? RX_UTH : RX_THREAD;
	int r;

	for (;;) {
		uint64_t t0 = fast_ns();

		/* Poll. */
		do {
			r = rx_take(mb, hdr, buf, size);
			if (r != -EAGAIN)
				return r;
			if (mode == RX_UTH)
				uthread_yield();
			else
				cpu_relax();
		} while (fast_ns() - t0 < mb->poll_ns && fast_ns() < deadline);
		if (fast_ns() >= deadline)
			return -ETIMEDOUT;
		/* Announce, fence, look again, sleep. */
		rx_set_sleeping(mb, mode);
		/* Full fence pairs with the senders' fence between their push
		 * and their read of rx_wait / rx_sleeping (send_local,
		 * send_node) and with the listener's (handle_pending). */
		fence_seq_cst();
		r = rx_take(mb, hdr, buf, size);
		if (r == -EAGAIN)
			rx_sleep(mb, mode, deadline);
		rx_set_sleeping(mb, RX_NONE);
		if (r != -EAGAIN)
			return r;
	}
}

int mbox_recv(struct mbox *mb, struct mbox_hdr *hdr, void *buf, size_t size,
	      uint64_t timeout_ns)
{
	int r;

	if (!mb || !hdr || (!buf && size))
		return -EINVAL;
	/* Acquire pairs with the release below by the previous receiver. */
	if (xchg_acquire(&mb->receiving, 1))
		return -EBUSY;
	r = rx_take(mb, hdr, buf, size);
	if (r == -EAGAIN && timeout_ns)
		r = rx_wait(mb, hdr, buf, size, timeout_ns);
	store_release(&mb->receiving, 0);
	return r;
}

/* ---- senders ------------------------------------------------------------ */

static int open_local(const struct mbox_addr *addr, const struct mbox_cap *cap,
		      struct mbox_sender *s)
{
	struct mbox *mb = registry_get(addr->id, addr->incarnation);
	int err;

	if (!mb)
		return -ENOENT;
	spin_lock(&mb->lock);
	err = cap_check_locked(mb, cap);
	s->epoch = mb->epoch;
	spin_unlock(&mb->lock);
	if (err) {
		mbox_put(mb);
		return err;
	}
	s->mb = mb;
	s->id = fetch_add_relaxed(&mb->next_sender, 1) + 1;
	fetch_add_relaxed(&mb->senders_local, 1);
	return 0;
}

/* Receive the handshake reply and its descriptors. */
static int hs_recv(int fd, struct hs_rep *rep, int fds[2])
{
	struct iovec iov = { rep, sizeof(*rep) };
	union {
		struct cmsghdr h;
		char buf[CMSG_SPACE(2 * sizeof(int))];
	} cm;
	struct msghdr msg = {
		.msg_iov = &iov, .msg_iovlen = 1,
		.msg_control = cm.buf, .msg_controllen = sizeof(cm.buf),
	};
	ssize_t n;
	int nfds = 0;

	fds[0] = fds[1] = -1;
	memset(&cm, 0, sizeof(cm));
	n = sys_recvmsg(fd, &msg, MSG_CMSG_CLOEXEC);
	if (n < 0)
		return (int)n;
	for (struct cmsghdr *ch = CMSG_FIRSTHDR(&msg); ch;
	     ch = CMSG_NXTHDR(&msg, ch)) {
		if (ch->cmsg_level == SOL_SOCKET &&
		    ch->cmsg_type == SCM_RIGHTS) {
			size_t k = (ch->cmsg_len - CMSG_LEN(0)) / sizeof(int);

			for (size_t i = 0; i < k; i++) {
				int f;

				memcpy(&f, CMSG_DATA(ch) + i * sizeof(int),
				       sizeof(f));
				if (nfds < 2)
					fds[nfds++] = f;
				else
					close(f);
			}
		}
	}
	if (n == 0)
		return -ECONNRESET;
	if (n != (ssize_t)sizeof(*rep) || (msg.msg_flags & MSG_CTRUNC) ||
	    rep->magic != HS_MAGIC)
		return -EPROTO;
	if (rep->status < 0)
		return rep->status;
	if (rep->status > 0 || nfds != 2)
		return -EPROTO;
	return 0;
}

static int open_node(const struct mbox_addr *addr, const struct mbox_cap *cap,
		     struct mbox_sender *s)
{
	struct sockaddr_un sa;
	socklen_t salen;
	struct hs_req req = {
		.magic = HS_MAGIC, .version = MBOX_PROTO_VERSION,
		.id = addr->id, .incarnation = addr->incarnation,
	};
	struct hs_rep rep;
	int fds[2] = { -1, -1 };
	struct stat st;
	struct shm_ctl *ctl;
	int fd, err;
	ssize_t n;

	memcpy(req.cap, cap->b, sizeof(req.cap));
	listen_name(&sa, &salen, addr->pid, addr->incarnation);
	fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	err = sys_connect(fd, (struct sockaddr *)&sa, salen);
	if (err < 0) {
		/* No such abstract name: the process or its listener is
		 * gone. */
		goto fail;
	}
	n = sys_send(fd, &req, sizeof(req), MSG_NOSIGNAL);
	if (n != (ssize_t)sizeof(req)) {
		err = n < 0 ? (int)n : -EPROTO;
		goto fail;
	}
	err = hs_recv(fd, &rep, fds);
	if (err)
		goto fail;
	err = -EPROTO;
	if (fstat(fds[0], &st) < 0 || (uint64_t)st.st_size != rep.map_size ||
	    rep.map_size > (1ull << 30) || !IS_POW2(rep.nslots) ||
	    rep.nslots < MBOX_MIN_NSLOTS || rep.nslots > MBOX_MAX_NSLOTS ||
	    rep.map_size < SHM_CTL_SIZE + ring_mpsc_size(rep.nslots))
		goto fail;
	s->map = mmap(NULL, rep.map_size, PROT_READ | PROT_WRITE, MAP_SHARED,
		      fds[0], 0);
	if (s->map == MAP_FAILED) {
		s->map = NULL;
		err = -errno;
		goto fail;
	}
	s->map_size = rep.map_size;
	ctl = s->map;
	/* Acquire pairs with conn_create()'s store_release of magic. */
	if (load_acquire(&ctl->magic) != SHM_MAGIC ||
	    ctl->version != MBOX_PROTO_VERSION ||
	    ctl->ring_off != SHM_CTL_SIZE || ctl->nslots != rep.nslots ||
	    ring_mpsc_attach((struct ring_mpsc *)((char *)s->map +
						  SHM_CTL_SIZE),
			     rep.map_size - SHM_CTL_SIZE) ||
	    ((struct ring_mpsc *)((char *)s->map + SHM_CTL_SIZE))->geom.nslots
	    != rep.nslots) {
		err = -EPROTO;
		goto fail;
	}
	s->ctl = ctl;
	s->ring = (struct ring_mpsc *)((char *)s->map + SHM_CTL_SIZE);
	close(fds[0]);
	s->fd = fd;
	s->efd = fds[1];
	s->id = rep.sender_id;
	return 0;
fail:
	if (s->map)
		munmap(s->map, s->map_size);
	s->map = NULL;
	for (int i = 0; i < 2; i++)
		if (fds[i] >= 0)
			close(fds[i]);
	close(fd);
	return err;
}

int mbox_open(const struct mbox_addr *addr, const struct mbox_cap *cap,
	      const struct mbox_open_opts *opts, struct mbox_sender **out)
{
	enum mbox_transport t = opts ? opts->transport : MBOX_TRANSPORT_AUTO;
	struct mbox_sender *s;
	bool self;
	int err;

	if (!addr || !cap || !out || (unsigned)t > MBOX_TRANSPORT_TCP)
		return -EINVAL;
	err = ident_ensure();
	if (err)
		return err;
	spin_lock(&g.lock);
	self = addr->node == mbox_node_id() && addr->pid == g.pid &&
	       addr->incarnation == g.incarnation;
	spin_unlock(&g.lock);
	if (t == MBOX_TRANSPORT_AUTO) {
		if (self)
			t = MBOX_TRANSPORT_LOCAL;
		else if (addr->node == mbox_node_id())
			t = MBOX_TRANSPORT_NODE;
		else
			t = MBOX_TRANSPORT_TCP;
	}
	if (t == MBOX_TRANSPORT_LOCAL && !self)
		return -EINVAL;
	s = calloc(1, sizeof(*s));
	if (!s)
		return -ENOMEM;
	s->transport = t;
	s->fd = s->efd = -1;
	switch (t) {
	case MBOX_TRANSPORT_LOCAL:
		err = open_local(addr, cap, s);
		break;
	case MBOX_TRANSPORT_NODE:
		if (addr->node != mbox_node_id())
			err = -EHOSTUNREACH;
		else
			err = open_node(addr, cap, s);
		break;
	default:
		if (!addr->proxy_port || !addr->proxy_host[0])
			err = -EHOSTUNREACH;
		else
			err = mbox__tcp_open(addr, cap, &s->tcp, &s->id);
		break;
	}
	if (err) {
		free(s);
		return err;
	}
	*out = s;
	return 0;
}

static int send_local(struct mbox_sender *s, uint16_t type, const void *data,
		      size_t len, unsigned k)
{
	struct mbox *mb = s->mb;
	uint64_t pos;

	/* Acquire pairs with destroy's/revoke's release stores. */
	if (load_acquire(&mb->closed))
		return -EPIPE;
	if (load_acquire(&mb->epoch) != s->epoch)
		return -EKEYREVOKED;
	pos = claim_exact(mb->lring, k);
	if (pos == UINT64_MAX) {
		fetch_add_relaxed(&mb->lring->prod.full, 1); /* statistic */
		return -EAGAIN;
	}
	fill_msg(mb->lring, pos, k, s->id, type, data, len);
	/* Full fence pairs with the receiver's in rx_wait(): either it sees
	 * our message or we see its rx_wait. */
	fence_seq_cst();
	rx_kick(mb);
	return 0;
}

static int node_state_err(const struct mbox_sender *s)
{
	/* Acquire pairs with the receiver's release of state. */
	uint32_t st = load_acquire(&s->ctl->state);

	if (st == CONN_REVOKED)
		return -EKEYREVOKED;
	if (st != CONN_OPEN)
		return -EPIPE;
	return 0;
}

static int send_node(struct mbox_sender *s, uint16_t type, const void *data,
		     size_t len, unsigned k)
{
	uint64_t pos;
	int err = node_state_err(s);

	if (err)
		return err;
	pos = claim_exact(s->ring, k);
	if (pos == UINT64_MAX) {
		fetch_add_relaxed(&s->ring->prod.full, 1); /* statistic */
		return -EAGAIN;
	}
	/* The receiver overwrites the sender id with the connection's. */
	fill_msg(s->ring, pos, k, s->id, type, data, len);
	/* Full fence: pairs with the receiver's, as in send_local. */
	fence_seq_cst();
	if (load_relaxed(&s->ctl->rx_sleeping) &&
	    xchg_acq_rel(&s->ctl->rx_sleeping, 0))
		efd_ring(s->efd);
	return 0;
}

/* Whether the NODE peer closed the socket: 0 or -EPIPE/-EKEYREVOKED. */
static int node_check(struct mbox_sender *s)
{
	struct pollfd pfd = { .fd = s->fd, .events = POLLIN | POLLRDHUP };
	int err = node_state_err(s);

	if (err)
		return err;
	if (poll(&pfd, 1, 0) > 0 && pfd.revents) {
		err = node_state_err(s);
		return err ? err : -EPIPE;
	}
	return 0;
}

int mbox_send(struct mbox_sender *s, uint16_t type, const void *data,
	      size_t len, unsigned flags)
{
	struct mbox_backoff bo = { 0 };
	uint32_t failed;
	unsigned k;
	int r;

	if (!s || (!data && len) || type > MBOX_TYPE_USER_MAX ||
	    (flags & ~MBOX_NONBLOCK))
		return -EINVAL;
	if (len > MBOX_MSG_MAX)
		return -EMSGSIZE;
	failed = load_relaxed(&s->failed);
	if (failed)
		return -(int)failed;
	if (s->transport == MBOX_TRANSPORT_TCP) {
		r = mbox__tcp_send(s->tcp, type, data, len, flags);
		goto out;
	}
	k = msg_slots(len);
	for (;;) {
		if (s->transport == MBOX_TRANSPORT_LOCAL)
			r = send_local(s, type, data, len, k);
		else
			r = send_node(s, type, data, len, k);
		if (r != -EAGAIN || (flags & MBOX_NONBLOCK))
			break;
		if (s->transport == MBOX_TRANSPORT_NODE && bo.round >= 4) {
			r = node_check(s);
			if (r)
				break;
		}
		mbox__backoff(&bo);
	}
out:
	if (r == -EPIPE || r == -EKEYREVOKED)
		store_relaxed(&s->failed, (uint32_t)-r);
	return r;
}

int mbox_sender_check(struct mbox_sender *s)
{
	uint32_t failed;
	int r = 0;

	if (!s)
		return -EINVAL;
	failed = load_relaxed(&s->failed);
	if (failed)
		return -(int)failed;
	switch (s->transport) {
	case MBOX_TRANSPORT_LOCAL:
		if (load_acquire(&s->mb->closed))
			r = -EPIPE;
		else if (load_acquire(&s->mb->epoch) != s->epoch)
			r = -EKEYREVOKED;
		break;
	case MBOX_TRANSPORT_NODE:
		r = node_check(s);
		break;
	default:
		r = mbox__tcp_check(s->tcp);
		break;
	}
	if (r == -EPIPE || r == -EKEYREVOKED)
		store_relaxed(&s->failed, (uint32_t)-r);
	return r;
}

enum mbox_transport mbox_sender_transport(const struct mbox_sender *s)
{
	return s->transport;
}

uint32_t mbox_sender_id(const struct mbox_sender *s)
{
	return s->id;
}

void mbox_close(struct mbox_sender *s)
{
	if (!s)
		return;
	switch (s->transport) {
	case MBOX_TRANSPORT_LOCAL:
		fetch_sub_acq_rel(&s->mb->senders_local, 1);
		mbox_put(s->mb);
		break;
	case MBOX_TRANSPORT_NODE:
		munmap(s->map, s->map_size);
		close(s->efd);
		close(s->fd);
		break;
	default:
		mbox__tcp_close(s->tcp);
		break;
	}
	free(s);
}
