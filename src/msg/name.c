/* name.c - the name service: name syntax, the server (its table, its line
 * protocol, its event loop) and the client with its cache.
 *
 * Design note.
 *
 * Server. One thread, one epoll set: the listening UNIX socket, every
 * client connection, and an eventfd that stops it. Every socket is
 * nonblocking; a client's bytes are cut into lines (at most NS_LINE_MAX;
 * a longer one is answered with E2BIG and skipped to its newline), each
 * line is one request, executed at once and answered in order into the
 * client's output buffer (a client that lets NS_OUT_MAX bytes of answers
 * pile up is disconnected). Each request is parsed and checked in full
 * before anything changes (docs/names-protocol.md lists the requests).
 *
 * Table. Services hang in NS_BUCKETS hash chains; the chain index is also
 * the service's generation bucket. A service holds an array of member
 * pointers (order irrelevant: round-robin walks it with a counter). Every
 * member is also on its owner client's list, so a closing connection drops
 * its members in O(own members). Any change to a service's membership or
 * policy bumps gen[bucket] (store_release) before the answer goes out.
 *
 * Generation table. A memfd of NS_BUCKETS u64 counters the server maps
 * read-write and seals against growing, shrinking and further writable
 * mappings (F_SEAL_FUTURE_WRITE), then hands to each client (request
 * "gentab") which maps it read-only. Where that seal is missing, the
 * client gets a read-only descriptor of it from /proc/self/fd instead.
 *
 * Client. Requests on one client are serialised by a small lock (a uthread
 * waiting for it yields, a thread sleeps: it is held across the round trip
 * to the server, which sys.h makes uthread-friendly). The cache is a
 * direct-mapped table under a spinlock held only to copy an entry. A
 * cached answer is good while gen[its bucket] equals the generation the
 * server answered with.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <atoll/atomic.h>
#include <atoll/hash.h>
#include <atoll/lock.h>
#include <atoll/mbox.h>
#include <atoll/name.h>
#include <atoll/sys.h>
#include <atoll/uthread.h>

#include "mbox_internal.h"

#define NS_LINE_MAX 1024u        /* request line, without the newline */
#define NS_REPLY_MAX 2048u       /* answer line the client accepts */
#define NS_BUCKETS 1024u         /* generation buckets (power of two) */
#define NS_MAX_CLIENTS 1024u
#define NS_MAX_SERVICES 4096u
#define NS_MAX_MEMBERS 256u      /* per service */
#define NS_MAX_REGS 1024u        /* per client connection */
#define NS_OUT_MAX 65536u        /* unread answers before disconnect */
#define NS_MAX_TOKENS 8

/* ---- names ---------------------------------------------------------------- */

static bool seg_char_ok(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	       (c >= '0' && c <= '9') || c == '.' || c == '_' || c == '-';
}

int name_check(const char *name, uint32_t *index)
{
	const char *p, *last = NULL;
	size_t len;
	unsigned depth = 0;
	bool digits = false;

	if (!name)
		return -EINVAL;
	len = strnlen(name, NAME_MAX_LEN + 1);
	if (len > NAME_MAX_LEN)
		return -ENAMETOOLONG;
	if (name[0] != '/')
		return -EINVAL;
	p = name + 1;
	for (;;) {
		const char *seg = p;
		size_t sl;

		digits = true;
		while (*p && *p != '/') {
			if (!seg_char_ok(*p))
				return -EINVAL;
			if (*p < '0' || *p > '9')
				digits = false;
			p++;
		}
		sl = (size_t)(p - seg);
		if (sl == 0)
			return -EINVAL;
		if (sl > NAME_SEG_MAX)
			return -ENAMETOOLONG;
		if ((sl == 1 && seg[0] == '.') ||
		    (sl == 2 && seg[0] == '.' && seg[1] == '.'))
			return -EINVAL;
		if (++depth > NAME_MAX_DEPTH)
			return -ENAMETOOLONG;
		last = seg;
		if (!*p)
			break;
		p++;
	}
	if (!digits)
		return 0;
	/* A member: an index below a service, canonical decimal. */
	size_t il = (size_t)(p - last);
	uint64_t v = 0;

	if (depth < 2 || il > 10 || (il > 1 && last[0] == '0'))
		return -EINVAL;
	for (size_t i = 0; i < il; i++)
		v = v * 10 + (uint64_t)(last[i] - '0');
	if (v > UINT32_MAX)
		return -EINVAL;
	if (index)
		*index = (uint32_t)v;
	return 1;
}

/* The service part of a member name (into buf, NAME_MAX_LEN + 1 bytes). */
static void member_service(const char *member, char *buf)
{
	const char *slash = strrchr(member, '/');
	size_t n = slash ? (size_t)(slash - member) : 0;

	memcpy(buf, member, n);
	buf[n] = '\0';
}

static uint32_t name_bucket(const char *service)
{
	return (uint32_t)(hash64(service, strlen(service), 0) &
			  (NS_BUCKETS - 1));
}

/* ---- errno names on the wire ---------------------------------------------- */

static const struct {
	int err;
	const char *name;
} err_names[] = {
	{ EINVAL, "EINVAL" }, { ENAMETOOLONG, "ENAMETOOLONG" },
	{ ENOENT, "ENOENT" }, { EACCES, "EACCES" }, { EEXIST, "EEXIST" },
	{ ENOSPC, "ENOSPC" }, { EPROTO, "EPROTO" }, { E2BIG, "E2BIG" },
	{ ENOMEM, "ENOMEM" }, { EBUSY, "EBUSY" }, { EIO, "EIO" },
};

static const char *err_name(int err)
{
	for (size_t i = 0; i < ARRAY_SIZE(err_names); i++)
		if (err_names[i].err == err)
			return err_names[i].name;
	return "EIO";
}

static int err_from_name(const char *s)
{
	for (size_t i = 0; i < ARRAY_SIZE(err_names); i++)
		if (!strcmp(err_names[i].name, s))
			return err_names[i].err;
	return EPROTO;
}

static const char *policy_names[] = { "rr", "hash", "least" };

static int policy_parse(const char *s)
{
	for (size_t i = 0; i < ARRAY_SIZE(policy_names); i++)
		if (!strcmp(policy_names[i], s))
			return (int)i;
	return -1;
}

/* Split line (modified) at single spaces into at most max tokens.
 * Returns the count, or -1 for empty tokens or too many. */
static int tokenize(char *line, char **tok, int max)
{
	int n = 0;
	char *p = line;

	if (!*p)
		return 0;
	for (;;) {
		char *sp = strchr(p, ' ');

		if (n == max)
			return -1;
		tok[n++] = p;
		if (!sp)
			break;
		*sp = '\0';
		if (sp == p)
			return -1;
		p = sp + 1;
		if (!*p)
			return -1;
	}
	for (int i = 0; i < n; i++)
		if (!*tok[i])
			return -1;
	return n;
}

static int parse_u32(const char *s, uint32_t *v)
{
	uint64_t x = 0;

	if (!*s || strlen(s) > 10)
		return -EINVAL;
	for (; *s; s++) {
		if (*s < '0' || *s > '9')
			return -EINVAL;
		x = x * 10 + (uint64_t)(*s - '0');
	}
	if (x > UINT32_MAX)
		return -EINVAL;
	*v = (uint32_t)x;
	return 0;
}

static int parse_u64_dec(const char *s, uint64_t *v)
{
	uint64_t x = 0;

	if (!*s || strlen(s) > 20)
		return -EINVAL;
	for (; *s; s++) {
		if (*s < '0' || *s > '9')
			return -EINVAL;
		if (x > (UINT64_MAX - (uint64_t)(*s - '0')) / 10)
			return -EINVAL;
		x = x * 10 + (uint64_t)(*s - '0');
	}
	*v = x;
	return 0;
}

/* ---- server: table ------------------------------------------------------- */

struct ns_client;
struct ns_service;

struct ns_member {
	struct ns_service *svc;
	uint32_t index;
	struct mbox_addr addr;
	struct mbox_cap cap;
	bool has_cap;
	unsigned flags;
	uint32_t uid;               /* the registrant's */
	struct mbox_cap lease;
	uint32_t load;
	struct ns_client *owner;
	struct ns_member *onext, *oprev;
};

struct ns_service {
	char name[NAME_MAX_LEN + 1];
	uint32_t bucket;
	enum name_policy policy;
	uint32_t next_index;
	uint64_t rr;
	struct ns_member *m[NS_MAX_MEMBERS];
	unsigned n;
	struct ns_service *hnext;
};

struct ns_client {
	int fd;
	uint32_t uid;
	char in[NS_LINE_MAX + 1];
	size_t inlen;
	bool discarding;            /* skipping the rest of a long line */
	bool bad_byte;              /* the current line holds a NUL */
	char *out;
	size_t outlen, outcap;
	bool want_out;              /* EPOLLOUT armed */
	bool dead;
	struct ns_member *regs;
	unsigned nregs;
	struct ns_client *next, *prev;
};

struct name_server {
	int lfd;
	int epfd;
	int stop_efd;
	char path[sizeof(((struct sockaddr_un *)0)->sun_path)];
	int genfd;                  /* what clients get (read-only use) */
	int genfd_rw;
	uint64_t *gen;
	struct ns_service *tab[NS_BUCKETS];
	unsigned nservices;
	struct ns_client *clients;
	unsigned nclients;
	pthread_t th;
	uint32_t stop;              /* atomic (name_server_stop) */
};

static void gen_bump(struct name_server *ns, uint32_t bucket)
{
	/* Release pairs with the clients' load_acquire in cache_get(): a
	 * client that sees the new value sees it before our next answer. */
	store_release(&ns->gen[bucket], ns->gen[bucket] + 1);
}

static struct ns_service *svc_find(struct name_server *ns, const char *name)
{
	for (struct ns_service *s = ns->tab[name_bucket(name)]; s;
	     s = s->hnext)
		if (!strcmp(s->name, name))
			return s;
	return NULL;
}

static struct ns_member *member_find(struct name_server *ns,
				     const char *member)
{
	char svc[NAME_MAX_LEN + 1];
	uint32_t index;
	struct ns_service *s;

	if (name_check(member, &index) != 1)
		return NULL;
	member_service(member, svc);
	s = svc_find(ns, svc);
	if (!s)
		return NULL;
	for (unsigned i = 0; i < s->n; i++)
		if (s->m[i]->index == index)
			return s->m[i];
	return NULL;
}

static void owner_link(struct ns_client *c, struct ns_member *m)
{
	m->owner = c;
	m->oprev = NULL;
	m->onext = c->regs;
	if (c->regs)
		c->regs->oprev = m;
	c->regs = m;
	c->nregs++;
}

static void owner_unlink(struct ns_member *m)
{
	struct ns_client *c = m->owner;

	if (m->oprev)
		m->oprev->onext = m->onext;
	else
		c->regs = m->onext;
	if (m->onext)
		m->onext->oprev = m->oprev;
	c->nregs--;
	m->owner = NULL;
}

/* Remove m from its service (and the service if it empties) and free it. */
static void member_remove(struct name_server *ns, struct ns_member *m)
{
	struct ns_service *s = m->svc;

	owner_unlink(m);
	for (unsigned i = 0; i < s->n; i++)
		if (s->m[i] == m) {
			s->m[i] = s->m[--s->n];
			break;
		}
	gen_bump(ns, s->bucket);
	free(m);
	if (s->n == 0) {
		struct ns_service **pp = &ns->tab[s->bucket];

		while (*pp != s)
			pp = &(*pp)->hnext;
		*pp = s->hnext;
		ns->nservices--;
		free(s);
	}
}

/* ---- server: requests ---------------------------------------------------- */

/* An answer being built. */
struct reply {
	char buf[NS_REPLY_MAX];
	int len;
	int fd;                     /* to pass along with it, or -1 */
};

static void rep_printf(struct reply *r, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
static void rep_printf(struct reply *r, const char *fmt, ...)
{
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(r->buf, sizeof(r->buf) - 1, fmt, ap);
	va_end(ap);
	if (n < 0 || n >= (int)sizeof(r->buf) - 1)
		n = snprintf(r->buf, sizeof(r->buf) - 1,
			     "err EIO the answer did not fit in a line");
	r->buf[n] = '\n';
	r->len = n + 1;
}

#define REP_ERR(r, e, ...)                                              \
	do {                                                            \
		char msg_[512];                                         \
		snprintf(msg_, sizeof(msg_), __VA_ARGS__);              \
		rep_printf((r), "err %s %s", err_name(e), msg_);        \
	} while (0)

/* Check a name argument; on error fill the reply. want: 0 service, 1
 * member. */
static int arg_name(struct reply *r, const char *name, int want,
		    uint32_t *index)
{
	int k = name_check(name, index);

	if (k == -ENAMETOOLONG) {
		REP_ERR(r, ENAMETOOLONG, "a name has at most %u bytes, %u "
			"segments of at most %u bytes each", NAME_MAX_LEN,
			NAME_MAX_DEPTH, NAME_SEG_MAX);
		return -1;
	}
	if (k < 0) {
		REP_ERR(r, EINVAL, "'%.300s' is not a valid name", name);
		return -1;
	}
	if (want >= 0 && k != want) {
		REP_ERR(r, EINVAL, "'%.300s' is a %s name, a %s name is "
			"expected here", name, k ? "member" : "service",
			want ? "member" : "service");
		return -1;
	}
	return k;
}

static int arg_cap(struct reply *r, const char *s, struct mbox_cap *cap,
		   bool *has, const char *what)
{
	if (has && !strcmp(s, "-")) {
		*has = false;
		return 0;
	}
	if (mbox_cap_parse(s, cap)) {
		REP_ERR(r, EINVAL, "the %s must be 32 hex digits", what);
		return -1;
	}
	if (has)
		*has = true;
	return 0;
}

/* Find the member named by tok and check the lease; on error fill r. */
static struct ns_member *arg_owned(struct name_server *ns, struct reply *r,
				   const char *member, const char *lease_s)
{
	struct mbox_cap lease;
	struct ns_member *m;

	if (arg_name(r, member, 1, NULL) < 0 ||
	    arg_cap(r, lease_s, &lease, NULL, "lease") < 0)
		return NULL;
	m = member_find(ns, member);
	if (!m) {
		REP_ERR(r, ENOENT, "no member '%.300s' is registered", member);
		return NULL;
	}
	if (!mbox_cap_equal(&m->lease, &lease)) {
		REP_ERR(r, EACCES, "the lease does not match member "
			"'%.300s'", member);
		return NULL;
	}
	return m;
}

static void do_register(struct name_server *ns, struct ns_client *c,
			char **tok, int n, struct reply *r)
{
	struct mbox_addr addr;
	struct mbox_cap cap, lease;
	struct ns_service *s;
	struct ns_member *m;
	bool has_cap;
	uint32_t flags;
	char lbuf[MBOX_CAP_STR_LEN + 1];

	if (n != 5) {
		REP_ERR(r, EINVAL, "usage: register <service> <address> "
			"<capability|-> <flags>");
		return;
	}
	if (arg_name(r, tok[1], 0, NULL) < 0)
		return;
	if (mbox_addr_parse(tok[2], &addr)) {
		REP_ERR(r, EINVAL, "'%.200s' is not a mailbox address",
			tok[2]);
		return;
	}
	if (arg_cap(r, tok[3], &cap, &has_cap, "capability") < 0)
		return;
	if (parse_u32(tok[4], &flags) || (flags & ~(NAME_F_PUBLIC |
						    NAME_F_NOCAP)) ||
	    flags == (NAME_F_PUBLIC | NAME_F_NOCAP)) {
		REP_ERR(r, EINVAL, "flags must be 0, 1 (public) or 2 (no "
			"capability)");
		return;
	}
	if (!has_cap && !(flags & NAME_F_NOCAP))
		flags |= NAME_F_NOCAP;
	if (c->nregs >= NS_MAX_REGS) {
		REP_ERR(r, ENOSPC, "a connection holds at most %u "
			"registrations", NS_MAX_REGS);
		return;
	}
	s = svc_find(ns, tok[1]);
	if (!s && ns->nservices >= NS_MAX_SERVICES) {
		REP_ERR(r, ENOSPC, "the server holds at most %u services",
			NS_MAX_SERVICES);
		return;
	}
	if (s && s->n >= NS_MAX_MEMBERS) {
		REP_ERR(r, ENOSPC, "service '%s' has its maximum of %u "
			"members", s->name, NS_MAX_MEMBERS);
		return;
	}
	if (s && s->next_index == UINT32_MAX) {
		REP_ERR(r, ENOSPC, "service '%s' has used every member index",
			s->name);
		return;
	}
	if (mbox_cap_generate(&lease)) {
		REP_ERR(r, EIO, "no random bytes for a lease");
		return;
	}
	m = calloc(1, sizeof(*m));
	if (!m) {
		REP_ERR(r, ENOMEM, "out of memory");
		return;
	}
	if (!s) {
		s = calloc(1, sizeof(*s));
		if (!s) {
			free(m);
			REP_ERR(r, ENOMEM, "out of memory");
			return;
		}
		strcpy(s->name, tok[1]);
		s->bucket = name_bucket(s->name);
		s->policy = NAME_POLICY_RR;
		s->next_index = 1;
		s->hnext = ns->tab[s->bucket];
		ns->tab[s->bucket] = s;
		ns->nservices++;
	}
	m->svc = s;
	m->index = s->next_index++;
	m->addr = addr;
	m->cap = cap;
	m->has_cap = has_cap && !(flags & NAME_F_NOCAP);
	m->flags = flags;
	m->uid = c->uid;
	m->lease = lease;
	s->m[s->n++] = m;
	owner_link(c, m);
	gen_bump(ns, s->bucket);
	mbox_cap_format(&lease, lbuf);
	rep_printf(r, "ok %s/%" PRIu32 " %" PRIu32 " %s %" PRIu32 " %" PRIu64,
		   s->name, m->index, m->index, lbuf, s->bucket,
		   ns->gen[s->bucket]);
}

static void do_unregister(struct name_server *ns, char **tok, int n,
			  struct reply *r)
{
	struct ns_member *m;
	uint32_t bucket;

	if (n != 3) {
		REP_ERR(r, EINVAL, "usage: unregister <member> <lease>");
		return;
	}
	m = arg_owned(ns, r, tok[1], tok[2]);
	if (!m)
		return;
	bucket = m->svc->bucket;
	member_remove(ns, m);
	rep_printf(r, "ok %" PRIu32 " %" PRIu64, bucket, ns->gen[bucket]);
}

static void do_move(struct name_server *ns, struct ns_client *c, char **tok,
		    int n, struct reply *r)
{
	struct mbox_addr addr;
	struct mbox_cap cap;
	struct ns_member *m;
	bool has_cap;

	if (n != 5) {
		REP_ERR(r, EINVAL, "usage: move <member> <lease> <address> "
			"<capability|->");
		return;
	}
	m = arg_owned(ns, r, tok[1], tok[2]);
	if (!m)
		return;
	if (mbox_addr_parse(tok[3], &addr)) {
		REP_ERR(r, EINVAL, "'%.200s' is not a mailbox address",
			tok[3]);
		return;
	}
	if (arg_cap(r, tok[4], &cap, &has_cap, "capability") < 0)
		return;
	if (m->owner != c && c->nregs >= NS_MAX_REGS) {
		REP_ERR(r, ENOSPC, "a connection holds at most %u "
			"registrations", NS_MAX_REGS);
		return;
	}
	m->addr = addr;
	if (has_cap) {
		m->cap = cap;
		m->has_cap = !(m->flags & NAME_F_NOCAP);
	}
	if (m->owner != c) {
		owner_unlink(m);
		owner_link(c, m);
	}
	gen_bump(ns, m->svc->bucket);
	rep_printf(r, "ok %" PRIu32 " %" PRIu64, m->svc->bucket,
		   ns->gen[m->svc->bucket]);
}

static void do_policy(struct name_server *ns, char **tok, int n,
		      struct reply *r)
{
	struct ns_member *m;
	int p;

	if (n != 4) {
		REP_ERR(r, EINVAL, "usage: policy <member> <lease> "
			"<rr|hash|least>");
		return;
	}
	m = arg_owned(ns, r, tok[1], tok[2]);
	if (!m)
		return;
	p = policy_parse(tok[3]);
	if (p < 0) {
		REP_ERR(r, EINVAL, "the policy must be rr, hash or least");
		return;
	}
	m->svc->policy = (enum name_policy)p;
	gen_bump(ns, m->svc->bucket);
	rep_printf(r, "ok %" PRIu32 " %" PRIu64, m->svc->bucket,
		   ns->gen[m->svc->bucket]);
}

static void do_load(struct name_server *ns, char **tok, int n,
		    struct reply *r)
{
	struct ns_member *m;
	uint32_t load;

	if (n != 4) {
		REP_ERR(r, EINVAL, "usage: load <member> <lease> <load>");
		return;
	}
	m = arg_owned(ns, r, tok[1], tok[2]);
	if (!m)
		return;
	if (parse_u32(tok[3], &load)) {
		REP_ERR(r, EINVAL, "the load must be a decimal number below "
			"2^32");
		return;
	}
	m->load = load;
	rep_printf(r, "ok");
}

/* Pick a member of s by its policy. */
static struct ns_member *pick(struct ns_service *s, const uint8_t *key,
			      size_t keylen)
{
	struct ns_member *best = NULL;

	switch (s->policy) {
	case NAME_POLICY_HASH: {
		uint64_t kh = hash64(key, keylen, 0);
		uint64_t best_score = 0;

		/* Rendezvous hashing: the highest score wins; a member's
		 * score does not depend on the others. */
		for (unsigned i = 0; i < s->n; i++) {
			uint64_t sc = hash64_u64(kh ^
						 hash64_u64(s->m[i]->index));

			if (!best || sc > best_score ||
			    (sc == best_score &&
			     s->m[i]->index < best->index)) {
				best = s->m[i];
				best_score = sc;
			}
		}
		return best;
	}
	case NAME_POLICY_LEAST: {
		uint32_t min = UINT32_MAX;
		unsigned ties = 0, want;

		for (unsigned i = 0; i < s->n; i++)
			if (s->m[i]->load < min)
				min = s->m[i]->load;
		for (unsigned i = 0; i < s->n; i++)
			ties += s->m[i]->load == min;
		/* Round-robin among the least loaded. */
		want = (unsigned)(s->rr++ % ties);
		for (unsigned i = 0; i < s->n; i++)
			if (s->m[i]->load == min && want-- == 0)
				return s->m[i];
		return NULL;
	}
	default:
		return s->m[s->rr++ % s->n];
	}
}

static void do_resolve(struct name_server *ns, struct ns_client *c,
		       char **tok, int n, struct reply *r)
{
	uint8_t key[NAME_KEY_MAX];
	size_t keylen = 0;
	struct ns_member *m;
	bool give_cap;
	char abuf[MBOX_ADDR_STR_MAX], cbuf[MBOX_CAP_STR_LEN + 1];
	int k;

	if (n != 2 && n != 3) {
		REP_ERR(r, EINVAL, "usage: resolve <name> [<key in hex>]");
		return;
	}
	k = arg_name(r, tok[1], -1, NULL);
	if (k < 0)
		return;
	if (n == 3) {
		size_t hl = strlen(tok[2]);

		if (hl % 2 || hl / 2 > NAME_KEY_MAX) {
			REP_ERR(r, EINVAL, "the key must be an even number of "
				"hex digits, at most %u bytes", NAME_KEY_MAX);
			return;
		}
		if (msg__hex_decode(tok[2], hl / 2, key)) {
			REP_ERR(r, EINVAL, "the key must be hex digits");
			return;
		}
		keylen = hl / 2;
	}
	if (k == 1) {
		m = member_find(ns, tok[1]);
		if (!m) {
			REP_ERR(r, ENOENT, "no member '%.300s' is registered",
				tok[1]);
			return;
		}
	} else {
		struct ns_service *s = svc_find(ns, tok[1]);

		if (!s) {
			REP_ERR(r, ENOENT, "no service '%.300s' is registered",
				tok[1]);
			return;
		}
		m = pick(s, key, keylen);
		if (!m) { /* a service always has a member; be safe */
			REP_ERR(r, ENOENT, "service '%.300s' has no members",
				tok[1]);
			return;
		}
	}
	give_cap = m->has_cap && ((m->flags & NAME_F_PUBLIC) ||
				  c->uid == m->uid || c->uid == 0);
	mbox_addr_format(&m->addr, abuf, sizeof(abuf));
	if (give_cap)
		mbox_cap_format(&m->cap, cbuf);
	rep_printf(r, "ok %s/%" PRIu32 " %" PRIu32 " %s %s %" PRIu32 " %"
		   PRIu64, m->svc->name, m->index, m->index, abuf,
		   give_cap ? cbuf : "-", m->svc->bucket,
		   ns->gen[m->svc->bucket]);
}

static void do_list(struct name_server *ns, char **tok, int n,
		    struct reply *r)
{
	struct ns_service *s;
	char buf[NS_REPLY_MAX - 64];
	size_t off = 0;

	if (n != 2) {
		REP_ERR(r, EINVAL, "usage: list <service>");
		return;
	}
	if (arg_name(r, tok[1], 0, NULL) < 0)
		return;
	s = svc_find(ns, tok[1]);
	if (!s) {
		REP_ERR(r, ENOENT, "no service '%.300s' is registered", tok[1]);
		return;
	}
	buf[0] = '\0';
	for (unsigned i = 0; i < s->n && off + 24 < sizeof(buf); i++)
		off += (size_t)snprintf(buf + off, sizeof(buf) - off,
					" %" PRIu32 ":%" PRIu32,
					s->m[i]->index, s->m[i]->load);
	rep_printf(r, "ok %s %" PRIu32 " %" PRIu64 " %u%s",
		   policy_names[s->policy], s->bucket, ns->gen[s->bucket],
		   s->n, buf);
}

/* Execute one request line (NUL-terminated, no newline). */
static void ns_request(struct name_server *ns, struct ns_client *c,
		       char *line, struct reply *r)
{
	char *tok[NS_MAX_TOKENS];
	int n;

	r->fd = -1;
	for (const char *p = line; *p; p++)
		if ((unsigned char)*p < 0x20 || (unsigned char)*p > 0x7e) {
			REP_ERR(r, EINVAL, "a request is one line of "
				"printable ASCII");
			return;
		}
	n = tokenize(line, tok, NS_MAX_TOKENS);
	if (n <= 0) {
		REP_ERR(r, EINVAL, "a request is words separated by single "
			"spaces");
		return;
	}
	if (!strcmp(tok[0], "resolve"))
		do_resolve(ns, c, tok, n, r);
	else if (!strcmp(tok[0], "register"))
		do_register(ns, c, tok, n, r);
	else if (!strcmp(tok[0], "unregister"))
		do_unregister(ns, tok, n, r);
	else if (!strcmp(tok[0], "move"))
		do_move(ns, c, tok, n, r);
	else if (!strcmp(tok[0], "policy"))
		do_policy(ns, tok, n, r);
	else if (!strcmp(tok[0], "load"))
		do_load(ns, tok, n, r);
	else if (!strcmp(tok[0], "list"))
		do_list(ns, tok, n, r);
	else if (!strcmp(tok[0], "ping") && n == 1)
		rep_printf(r, "ok pong");
	else if (!strcmp(tok[0], "gentab") && n == 1) {
		rep_printf(r, "ok %u", NS_BUCKETS);
		r->fd = ns->genfd;
	} else
		REP_ERR(r, EINVAL, "unknown request '%.32s'", tok[0]);
}

/* ---- server: connections -------------------------------------------------- */

static void client_close(struct name_server *ns, struct ns_client *c)
{
	while (c->regs)
		member_remove(ns, c->regs);
	epoll_ctl(ns->epfd, EPOLL_CTL_DEL, c->fd, NULL);
	close(c->fd);
	if (c->prev)
		c->prev->next = c->next;
	else
		ns->clients = c->next;
	if (c->next)
		c->next->prev = c->prev;
	ns->nclients--;
	free(c->out);
	free(c);
}

static void client_arm_out(struct name_server *ns, struct ns_client *c,
			   bool want)
{
	struct epoll_event ev = { .events = EPOLLIN | (want ? EPOLLOUT : 0u),
				  .data.ptr = c };

	if (c->want_out == want)
		return;
	c->want_out = want;
	epoll_ctl(ns->epfd, EPOLL_CTL_MOD, c->fd, &ev);
}

/* Write what is buffered; mark the client dead on error. */
static void client_flush(struct name_server *ns, struct ns_client *c)
{
	size_t off = 0;

	while (off < c->outlen) {
		ssize_t n = send(c->fd, c->out + off, c->outlen - off,
				 MSG_DONTWAIT | MSG_NOSIGNAL);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno != EAGAIN && errno != EWOULDBLOCK)
				c->dead = true;
			break;
		}
		off += (size_t)n;
	}
	if (off && off < c->outlen)
		memmove(c->out, c->out + off, c->outlen - off);
	c->outlen -= off;
	if (!c->dead)
		client_arm_out(ns, c, c->outlen > 0);
}

static void client_reply(struct name_server *ns, struct ns_client *c,
			 const struct reply *r)
{
	size_t skip = 0;

	if (r->fd >= 0 && c->outlen == 0) {
		/* The descriptor travels with the answer's first byte. */
		struct iovec iov = { (void *)r->buf, (size_t)r->len };
		union {
			struct cmsghdr h;
			char b[CMSG_SPACE(sizeof(int))];
		} cm;
		struct msghdr msg = { .msg_iov = &iov, .msg_iovlen = 1,
				      .msg_control = cm.b,
				      .msg_controllen = sizeof(cm.b) };
		struct cmsghdr *ch;
		ssize_t n;

		memset(&cm, 0, sizeof(cm));
		ch = CMSG_FIRSTHDR(&msg);
		ch->cmsg_level = SOL_SOCKET;
		ch->cmsg_type = SCM_RIGHTS;
		ch->cmsg_len = CMSG_LEN(sizeof(int));
		memcpy(CMSG_DATA(ch), &r->fd, sizeof(int));
		n = sendmsg(c->fd, &msg, MSG_DONTWAIT | MSG_NOSIGNAL);
		if (n < 0) {
			if (errno != EAGAIN && errno != EWOULDBLOCK)
				c->dead = true;
			return;
		}
		skip = (size_t)n;
	} else if (r->fd >= 0) {
		/* Answers are pending: say so rather than queue a
		 * descriptor behind them. */
		struct reply e;

		REP_ERR(&e, EBUSY, "gentab must not be pipelined behind other "
			"requests");
		client_reply(ns, c, &e);
		return;
	}
	if (skip == (size_t)r->len)
		return;
	if (c->outlen + (size_t)r->len - skip > NS_OUT_MAX) {
		c->dead = true;  /* it does not read its answers */
		return;
	}
	if (c->outlen + (size_t)r->len - skip > c->outcap) {
		size_t cap = c->outcap ? c->outcap * 2 : 4096;
		char *p;

		while (cap < c->outlen + (size_t)r->len - skip)
			cap *= 2;
		p = realloc(c->out, cap);
		if (!p) {
			c->dead = true;
			return;
		}
		c->out = p;
		c->outcap = cap;
	}
	memcpy(c->out + c->outlen, r->buf + skip, (size_t)r->len - skip);
	c->outlen += (size_t)r->len - skip;
}

static void client_line_done(struct name_server *ns, struct ns_client *c)
{
	struct reply r;

	if (c->inlen && c->in[c->inlen - 1] == '\r')
		c->inlen--;
	c->in[c->inlen] = '\0';
	if (c->bad_byte) {
		r.fd = -1;
		REP_ERR(&r, EINVAL, "a request is one line of printable "
			"ASCII");
	} else {
		ns_request(ns, c, c->in, &r);
	}
	client_reply(ns, c, &r);
	c->inlen = 0;
	c->bad_byte = false;
}

static void client_input(struct name_server *ns, struct ns_client *c)
{
	char buf[4096];
	ssize_t n = recv(c->fd, buf, sizeof(buf), MSG_DONTWAIT);

	if (n < 0) {
		if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
			c->dead = true;
		return;
	}
	if (n == 0) {
		c->dead = true;
		return;
	}
	for (ssize_t i = 0; i < n && !c->dead; i++) {
		char ch = buf[i];

		if (c->discarding) {
			if (ch == '\n')
				c->discarding = false;
			continue;
		}
		if (ch == '\n') {
			client_line_done(ns, c);
			continue;
		}
		if (c->inlen == NS_LINE_MAX) {
			struct reply r;

			r.fd = -1;
			REP_ERR(&r, E2BIG, "a request line has at most %u "
				"bytes", NS_LINE_MAX);
			client_reply(ns, c, &r);
			c->inlen = 0;
			c->bad_byte = false;
			c->discarding = true;
			continue;
		}
		if (ch == '\0')
			c->bad_byte = true;
		c->in[c->inlen++] = ch;
	}
	client_flush(ns, c);
}

static void ns_accept(struct name_server *ns)
{
	for (;;) {
		int fd = accept4(ns->lfd, NULL, NULL, SOCK_NONBLOCK |
				 SOCK_CLOEXEC);
		struct ucred cred;
		socklen_t cl = sizeof(cred);
		struct ns_client *c;
		struct epoll_event ev;

		if (fd < 0)
			return;
		if (ns->nclients >= NS_MAX_CLIENTS ||
		    getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &cl) < 0 ||
		    !(c = calloc(1, sizeof(*c)))) {
			close(fd);
			continue;
		}
		c->fd = fd;
		c->uid = cred.uid;
		ev.events = EPOLLIN;
		ev.data.ptr = c;
		if (epoll_ctl(ns->epfd, EPOLL_CTL_ADD, fd, &ev) < 0) {
			close(fd);
			free(c);
			continue;
		}
		c->next = ns->clients;
		if (ns->clients)
			ns->clients->prev = c;
		ns->clients = c;
		ns->nclients++;
	}
}

/* The generation table: a sealed memfd, or a read-only reopen of it. */
static int gentab_create(struct name_server *ns)
{
	size_t size = NS_BUCKETS * sizeof(uint64_t);
	int err;
	int fd = memfd_create("atoll-names-gen", MFD_CLOEXEC |
			      MFD_ALLOW_SEALING);

	if (fd < 0)
		return -errno;
	if (ftruncate(fd, (off_t)size) < 0)
		goto fail;
	ns->gen = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (ns->gen == MAP_FAILED) {
		ns->gen = NULL;
		goto fail;
	}
	for (unsigned i = 0; i < NS_BUCKETS; i++)
		ns->gen[i] = 1;
	ns->genfd_rw = fd;
	if (fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW |
		  F_SEAL_FUTURE_WRITE | F_SEAL_SEAL) == 0) {
		ns->genfd = fd;
	} else {
		char p[64];

		snprintf(p, sizeof(p), "/proc/self/fd/%d", fd);
		ns->genfd = open(p, O_RDONLY | O_CLOEXEC);
		if (ns->genfd < 0)
			goto fail;
	}
	return 0;
fail:
	err = errno ? -errno : -EIO;
	if (ns->gen)
		munmap(ns->gen, size);
	ns->gen = NULL;
	close(fd);
	ns->genfd_rw = -1;
	return err;
}

static void ns_destroy(struct name_server *ns)
{
	while (ns->clients)
		client_close(ns, ns->clients);
	if (ns->lfd >= 0) {
		close(ns->lfd);
		unlink(ns->path);
	}
	if (ns->epfd >= 0)
		close(ns->epfd);
	if (ns->stop_efd >= 0)
		close(ns->stop_efd);
	if (ns->gen)
		munmap(ns->gen, NS_BUCKETS * sizeof(uint64_t));
	if (ns->genfd >= 0 && ns->genfd != ns->genfd_rw)
		close(ns->genfd);
	if (ns->genfd_rw >= 0)
		close(ns->genfd_rw);
	free(ns);
}

static int ns_create(const char *path, struct name_server **out)
{
	struct name_server *ns;
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	struct epoll_event ev = { .events = EPOLLIN };
	struct stat st;
	int err;

	if (!path || !*path || strlen(path) >= sizeof(sa.sun_path))
		return -EINVAL;
	ns = calloc(1, sizeof(*ns));
	if (!ns)
		return -ENOMEM;
	ns->lfd = ns->epfd = ns->stop_efd = ns->genfd = ns->genfd_rw = -1;
	strcpy(ns->path, path);
	strcpy(sa.sun_path, path);
	err = gentab_create(ns);
	if (err)
		goto fail;
	if (lstat(path, &st) == 0) {
		if (!S_ISSOCK(st.st_mode)) {
			err = -EEXIST;
			goto fail;
		}
		unlink(path);
	}
	ns->lfd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC,
			 0);
	if (ns->lfd < 0) {
		err = -errno;
		goto fail;
	}
	if (bind(ns->lfd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		err = -errno;
		close(ns->lfd);
		ns->lfd = -1;
		goto fail;
	}
	/* Anyone on the node may ask; capabilities guard the mailboxes. */
	chmod(path, 0666);
	if (listen(ns->lfd, 128) < 0) {
		err = -errno;
		goto fail;
	}
	ns->epfd = epoll_create1(EPOLL_CLOEXEC);
	ns->stop_efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (ns->epfd < 0 || ns->stop_efd < 0) {
		err = -errno;
		goto fail;
	}
	ev.data.ptr = &ns->lfd;
	if (epoll_ctl(ns->epfd, EPOLL_CTL_ADD, ns->lfd, &ev) < 0) {
		err = -errno;
		goto fail;
	}
	ev.data.ptr = &ns->stop_efd;
	if (epoll_ctl(ns->epfd, EPOLL_CTL_ADD, ns->stop_efd, &ev) < 0) {
		err = -errno;
		goto fail;
	}
	*out = ns;
	return 0;
fail:
	ns_destroy(ns);
	return err;
}

static void ns_loop(struct name_server *ns, const volatile int *stop)
{
	struct epoll_event evs[64];

	for (;;) {
		int n = epoll_wait(ns->epfd, evs, 64, 100);

		/* Acquire pairs with name_server_stop's release. */
		if (load_acquire(&ns->stop) || (stop && *stop))
			return;
		for (int i = 0; i < n; i++) {
			void *p = evs[i].data.ptr;
			struct ns_client *c;

			if (p == &ns->lfd) {
				ns_accept(ns);
				continue;
			}
			if (p == &ns->stop_efd)
				continue;
			c = p;
			if (evs[i].events & (EPOLLIN | EPOLLHUP | EPOLLERR))
				client_input(ns, c);
			if (!c->dead && (evs[i].events & EPOLLOUT))
				client_flush(ns, c);
			if (c->dead) {
				/* Later events of this batch may name c. */
				for (int j = i + 1; j < n; j++)
					if (evs[j].data.ptr == c)
						evs[j].data.ptr = &ns->stop_efd;
				client_close(ns, c);
			}
		}
	}
}

static void *ns_thread(void *arg)
{
	ns_loop(arg, NULL);
	return NULL;
}

int name_server_start(const char *path, struct name_server **out)
{
	struct name_server *ns;
	sigset_t all, old;
	int err;

	if (!out)
		return -EINVAL;
	err = ns_create(path, &ns);
	if (err)
		return err;
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	err = -pthread_create(&ns->th, NULL, ns_thread, ns);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (err) {
		ns_destroy(ns);
		return err;
	}
	*out = ns;
	return 0;
}

void name_server_stop(struct name_server *ns)
{
	uint64_t one = 1;

	if (!ns)
		return;
	/* Release pairs with ns_loop's load_acquire. */
	store_release(&ns->stop, 1);
	if (write(ns->stop_efd, &one, sizeof(one)) < 0) {
		/* cannot fail short of a bad descriptor */
	}
	pthread_join(ns->th, NULL);
	ns_destroy(ns);
}

int name_server_run(const char *path, const volatile int *stop)
{
	struct name_server *ns;
	int err = ns_create(path, &ns);

	if (err)
		return err;
	ns_loop(ns, stop);
	ns_destroy(ns);
	return 0;
}

/* ---- client ---------------------------------------------------------------- */

struct ncache_ent {
	bool valid;
	uint32_t bucket;
	uint32_t keylen;
	uint8_t key[NAME_KEY_MAX];
	char name[NAME_MAX_LEN + 1];  /* as asked */
	struct name_entry e;
};

struct name_client {
	int fd;
	uint32_t lock;              /* atomic: a request is in flight */
	bool dead;                  /* under lock */
	char rbuf[NS_REPLY_MAX];    /* under lock */
	size_t rlen;
	const uint64_t *gen;
	unsigned nbuckets;
	struct spinlock clock;      /* guards the cache */
	struct ncache_ent *cache;
	unsigned mask;
	bool no_cache;
	uint64_t hits, misses, stale, invalidated;  /* atomic */
};

static void nc_lock(struct name_client *nc)
{
	struct mbox_backoff bo = { 0 };

	/* Acquire pairs with nc_unlock's release. */
	while (xchg_acquire(&nc->lock, 1))
		mbox__backoff(&bo);
}

static void nc_unlock(struct name_client *nc)
{
	store_release(&nc->lock, 0);
}

static int nc_send_all(int fd, const char *p, size_t len)
{
	while (len) {
		ssize_t n = sys_send(fd, p, len, MSG_NOSIGNAL);

		if (n == -EINTR)
			continue;
		if (n <= 0)
			return -EPIPE;
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

/* Read one answer line into line (NUL-terminated, newline stripped);
 * *fd_out (if not NULL) gets a descriptor that came with it. Caller holds
 * the lock. */
static int nc_read_line(struct name_client *nc, char *line, size_t size,
			int *fd_out)
{
	for (;;) {
		char *nl = memchr(nc->rbuf, '\n', nc->rlen);
		ssize_t n;

		if (nl) {
			size_t ll = (size_t)(nl - nc->rbuf);

			if (ll >= size)
				return -EPROTO;
			memcpy(line, nc->rbuf, ll);
			line[ll] = '\0';
			memmove(nc->rbuf, nl + 1, nc->rlen - ll - 1);
			nc->rlen -= ll + 1;
			return 0;
		}
		if (nc->rlen == sizeof(nc->rbuf))
			return -EPROTO;
		if (fd_out) {
			struct iovec iov = { nc->rbuf + nc->rlen,
					     sizeof(nc->rbuf) - nc->rlen };
			union {
				struct cmsghdr h;
				char b[CMSG_SPACE(sizeof(int))];
			} cm;
			struct msghdr msg = { .msg_iov = &iov,
					      .msg_iovlen = 1,
					      .msg_control = cm.b,
					      .msg_controllen = sizeof(cm.b) };

			memset(&cm, 0, sizeof(cm));
			n = sys_recvmsg(nc->fd, &msg, MSG_CMSG_CLOEXEC);
			if (n > 0) {
				struct cmsghdr *ch = CMSG_FIRSTHDR(&msg);

				if (ch && ch->cmsg_level == SOL_SOCKET &&
				    ch->cmsg_type == SCM_RIGHTS &&
				    ch->cmsg_len == CMSG_LEN(sizeof(int))) {
					int f;

					memcpy(&f, CMSG_DATA(ch), sizeof(f));
					if (*fd_out >= 0)
						close(f);
					else
						*fd_out = f;
				}
			}
		} else {
			n = sys_recv(nc->fd, nc->rbuf + nc->rlen,
				     sizeof(nc->rbuf) - nc->rlen, 0);
		}
		if (n == -EINTR)
			continue;
		if (n <= 0)
			return -EPIPE;
		nc->rlen += (size_t)n;
	}
}

/* One round trip: send req (one line, with its newline), read the answer.
 * Returns 0 with the words after "ok" in ans, or the server's -errno. */
static int nc_request(struct name_client *nc, const char *req, char *ans,
		      size_t size, int *fd_out)
{
	char line[NS_REPLY_MAX];
	int err;

	nc_lock(nc);
	if (nc->dead) {
		nc_unlock(nc);
		return -EPIPE;
	}
	err = nc_send_all(nc->fd, req, strlen(req));
	if (!err)
		err = nc_read_line(nc, line, sizeof(line), fd_out);
	if (err)
		nc->dead = true;
	nc_unlock(nc);
	if (err)
		return err;
	if (!strncmp(line, "ok", 2) && (line[2] == '\0' || line[2] == ' ')) {
		size_t l = strlen(line + 2 + (line[2] == ' '));

		if (l >= size)
			return -EPROTO;
		memcpy(ans, line + 2 + (line[2] == ' '), l + 1);
		return 0;
	}
	if (!strncmp(line, "err ", 4)) {
		char name[16];
		size_t i = 0;

		for (const char *p = line + 4; *p && *p != ' ' &&
		     i < sizeof(name) - 1; p++)
			name[i++] = *p;
		name[i] = '\0';
		return -err_from_name(name);
	}
	return -EPROTO;
}

int name_client_open(const char *path, const struct name_client_opts *opts,
		     struct name_client **out)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	struct name_client *nc;
	char ans[64];
	unsigned slots = 256;
	int gfd = -1, err;
	uint32_t nb;
	struct stat st;
	void *map;

	if (!out)
		return -EINVAL;
	if (!path)
		path = getenv(NAME_SOCKET_ENV);
	if (!path || !*path)
		path = NAME_SOCKET_DEFAULT;
	if (strlen(path) >= sizeof(sa.sun_path))
		return -EINVAL;
	strcpy(sa.sun_path, path);
	if (opts && opts->cache_slots) {
		if (opts->cache_slots > (1u << 16))
			return -EINVAL;
		slots = 1;
		while (slots < opts->cache_slots)
			slots <<= 1;
	}
	nc = calloc(1, sizeof(*nc));
	if (!nc)
		return -ENOMEM;
	spin_lock_init(&nc->clock);
	nc->no_cache = opts && opts->no_cache;
	nc->mask = slots - 1;
	nc->cache = calloc(slots, sizeof(*nc->cache));
	if (!nc->cache) {
		free(nc);
		return -ENOMEM;
	}
	nc->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (nc->fd < 0) {
		err = -errno;
		goto fail;
	}
	err = sys_connect(nc->fd, (struct sockaddr *)&sa, sizeof(sa));
	if (err < 0)
		goto fail;
	err = nc_request(nc, "gentab\n", ans, sizeof(ans), &gfd);
	if (err)
		goto fail;
	err = -EPROTO;
	if (gfd < 0 || parse_u32(ans, &nb) || !IS_POW2(nb) || nb > (1u << 20) ||
	    fstat(gfd, &st) < 0 || (uint64_t)st.st_size < nb * 8ull)
		goto fail;
	map = mmap(NULL, nb * sizeof(uint64_t), PROT_READ, MAP_SHARED, gfd, 0);
	if (map == MAP_FAILED) {
		err = -errno;
		goto fail;
	}
	close(gfd);
	nc->gen = map;
	nc->nbuckets = nb;
	*out = nc;
	return 0;
fail:
	if (gfd >= 0)
		close(gfd);
	if (nc->fd >= 0)
		close(nc->fd);
	free(nc->cache);
	free(nc);
	return err;
}

void name_client_close(struct name_client *nc)
{
	if (!nc)
		return;
	close(nc->fd);
	munmap((void *)nc->gen, nc->nbuckets * sizeof(uint64_t));
	free(nc->cache);
	free(nc);
}

/* Parse "<member> <index> <lease> <bucket> <gen>" into reg. */
static int parse_reg(char *ans, struct name_reg *reg)
{
	char *tok[NS_MAX_TOKENS];
	uint32_t index, idx2;

	if (tokenize(ans, tok, NS_MAX_TOKENS) != 5 ||
	    name_check(tok[0], &index) != 1 || parse_u32(tok[1], &idx2) ||
	    idx2 != index || mbox_cap_parse(tok[2], &reg->lease))
		return -EPROTO;
	strcpy(reg->member, tok[0]);
	reg->index = index;
	return 0;
}

int name_register(struct name_client *nc, const char *service,
		  const struct mbox_addr *addr, const struct mbox_cap *cap,
		  unsigned flags, struct name_reg *reg)
{
	char req[NS_LINE_MAX + 2], abuf[MBOX_ADDR_STR_MAX];
	char cbuf[MBOX_CAP_STR_LEN + 1] = "-";
	char ans[NS_REPLY_MAX];
	int k, err;

	if (!nc || !addr || !reg || (!cap && !(flags & NAME_F_NOCAP)) ||
	    (flags & ~(NAME_F_PUBLIC | NAME_F_NOCAP)) ||
	    flags == (NAME_F_PUBLIC | NAME_F_NOCAP))
		return -EINVAL;
	k = name_check(service, NULL);
	if (k < 0)
		return k;
	if (k != 0)
		return -EINVAL;
	err = mbox_addr_format(addr, abuf, sizeof(abuf));
	if (err < 0)
		return -EINVAL;
	if (cap && !(flags & NAME_F_NOCAP))
		mbox_cap_format(cap, cbuf);
	snprintf(req, sizeof(req), "register %s %s %s %u\n", service, abuf,
		 cbuf, flags);
	err = nc_request(nc, req, ans, sizeof(ans), NULL);
	if (err)
		return err;
	return parse_reg(ans, reg);
}

int name_register_mbox(struct name_client *nc, const char *service,
		       const struct mbox *mb, unsigned flags,
		       struct name_reg *reg)
{
	struct mbox_addr addr;
	struct mbox_cap cap;

	if (!mb)
		return -EINVAL;
	mbox_addr(mb, &addr);
	mbox_cap(mb, &cap);
	return name_register(nc, service, &addr, &cap, flags, reg);
}

static int owned_request(struct name_client *nc, const struct name_reg *reg,
			 const char *verb, const char *rest)
{
	char req[NS_LINE_MAX + 2], lbuf[MBOX_CAP_STR_LEN + 1];
	char ans[NS_REPLY_MAX];
	int n;

	if (!nc || !reg || name_check(reg->member, NULL) != 1)
		return -EINVAL;
	mbox_cap_format(&reg->lease, lbuf);
	n = snprintf(req, sizeof(req), "%s %s %s%s%s\n", verb, reg->member,
		     lbuf, rest ? " " : "", rest ? rest : "");
	if (n < 0 || (size_t)n >= sizeof(req))
		return -EINVAL;
	return nc_request(nc, req, ans, sizeof(ans), NULL);
}

int name_unregister(struct name_client *nc, const struct name_reg *reg)
{
	int err = owned_request(nc, reg, "unregister", NULL);

	if (!err)
		name_invalidate(nc, reg->member);
	return err;
}

int name_move(struct name_client *nc, const struct name_reg *reg,
	      const struct mbox_addr *addr, const struct mbox_cap *cap)
{
	char rest[MBOX_ADDR_STR_MAX + MBOX_CAP_STR_LEN + 2];
	char cbuf[MBOX_CAP_STR_LEN + 1] = "-";
	int n;

	if (!addr)
		return -EINVAL;
	n = mbox_addr_format(addr, rest, MBOX_ADDR_STR_MAX);
	if (n < 0)
		return -EINVAL;
	if (cap)
		mbox_cap_format(cap, cbuf);
	snprintf(rest + n, sizeof(rest) - (size_t)n, " %s", cbuf);
	return owned_request(nc, reg, "move", rest);
}

int name_set_policy(struct name_client *nc, const struct name_reg *reg,
		    enum name_policy policy)
{
	if ((unsigned)policy >= ARRAY_SIZE(policy_names))
		return -EINVAL;
	return owned_request(nc, reg, "policy", policy_names[policy]);
}

int name_set_load(struct name_client *nc, const struct name_reg *reg,
		  uint32_t load)
{
	char rest[16];

	snprintf(rest, sizeof(rest), "%" PRIu32, load);
	return owned_request(nc, reg, "load", rest);
}

static unsigned cache_slot(const struct name_client *nc, const char *name,
			   const void *key, size_t keylen)
{
	uint64_t h = hash64(name, strlen(name), 0);

	if (keylen)
		h = hash64(key, keylen, h);
	return (unsigned)(h & nc->mask);
}

static bool cache_get(struct name_client *nc, const char *name,
		      const void *key, size_t keylen, struct name_entry *out)
{
	struct ncache_ent *ce = &nc->cache[cache_slot(nc, name, key, keylen)];
	bool hit = false;

	spin_lock(&nc->clock);
	if (ce->valid && ce->keylen == keylen && !strcmp(ce->name, name) &&
	    (!keylen || !memcmp(ce->key, key, keylen))) {
		/* Acquire pairs with the server's store_release in
		 * gen_bump(). */
		if (load_acquire(&nc->gen[ce->bucket]) == ce->e.gen) {
			*out = ce->e;
			hit = true;
		} else {
			ce->valid = false;
			fetch_add_relaxed(&nc->stale, 1);
		}
	}
	spin_unlock(&nc->clock);
	return hit;
}

static void cache_put(struct name_client *nc, const char *name,
		      const void *key, size_t keylen, uint32_t bucket,
		      const struct name_entry *e)
{
	struct ncache_ent *ce = &nc->cache[cache_slot(nc, name, key, keylen)];

	spin_lock(&nc->clock);
	ce->valid = true;
	ce->bucket = bucket;
	ce->keylen = (uint32_t)keylen;
	if (keylen)
		memcpy(ce->key, key, keylen);
	strcpy(ce->name, name);
	ce->e = *e;
	spin_unlock(&nc->clock);
}

int name_resolve(struct name_client *nc, const char *name, const void *key,
		 size_t keylen, unsigned flags, struct name_entry *out)
{
	char req[NS_LINE_MAX + 2], ans[NS_REPLY_MAX];
	char *tok[NS_MAX_TOKENS];
	struct name_entry e;
	uint32_t index, idx2, bucket;
	int k, n, err;

	if (!nc || !out || (!key && keylen) || keylen > NAME_KEY_MAX ||
	    (flags & ~NAME_RESOLVE_FRESH))
		return -EINVAL;
	k = name_check(name, NULL);
	if (k < 0)
		return k;
	if (!nc->no_cache && !(flags & NAME_RESOLVE_FRESH) &&
	    cache_get(nc, name, key, keylen, out)) {
		fetch_add_relaxed(&nc->hits, 1);
		return 0;
	}
	fetch_add_relaxed(&nc->misses, 1);
	n = snprintf(req, sizeof(req), "resolve %s", name);
	if (keylen) {
		static const char hex[] = "0123456789abcdef";
		const uint8_t *kb = key;

		req[n++] = ' ';
		for (size_t i = 0; i < keylen; i++) {
			req[n++] = hex[kb[i] >> 4];
			req[n++] = hex[kb[i] & 15];
		}
	}
	req[n++] = '\n';
	req[n] = '\0';
	err = nc_request(nc, req, ans, sizeof(ans), NULL);
	if (err)
		return err;
	memset(&e, 0, sizeof(e));
	if (tokenize(ans, tok, NS_MAX_TOKENS) != 6 ||
	    name_check(tok[0], &index) != 1 || parse_u32(tok[1], &idx2) ||
	    idx2 != index || mbox_addr_parse(tok[2], &e.addr) ||
	    parse_u32(tok[4], &bucket) || bucket >= nc->nbuckets ||
	    parse_u64_dec(tok[5], &e.gen))
		return -EPROTO;
	if (strcmp(tok[3], "-")) {
		if (mbox_cap_parse(tok[3], &e.cap))
			return -EPROTO;
		e.has_cap = true;
	}
	strcpy(e.member, tok[0]);
	e.index = index;
	if (!nc->no_cache)
		cache_put(nc, name, key, keylen, bucket, &e);
	*out = e;
	return 0;
}

void name_invalidate(struct name_client *nc, const char *name)
{
	char svc[NAME_MAX_LEN + 1];
	int k;

	if (!nc)
		return;
	k = name_check(name, NULL);
	if (k < 0)
		return;
	spin_lock(&nc->clock);
	for (unsigned i = 0; i <= nc->mask; i++) {
		struct ncache_ent *ce = &nc->cache[i];
		bool drop;

		if (!ce->valid)
			continue;
		if (k == 1) {
			drop = !strcmp(ce->e.member, name);
		} else {
			member_service(ce->e.member, svc);
			drop = !strcmp(svc, name);
		}
		if (drop) {
			ce->valid = false;
			fetch_add_relaxed(&nc->invalidated, 1);
		}
	}
	spin_unlock(&nc->clock);
}

void name_cache_stats(const struct name_client *nc,
		      struct name_cache_stats *st)
{
	st->hits = load_relaxed(&nc->hits);
	st->misses = load_relaxed(&nc->misses);
	st->stale = load_relaxed(&nc->stale);
	st->invalidated = load_relaxed(&nc->invalidated);
}
