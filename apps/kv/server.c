/* server.c - atoll-kv: a memcached-compatible server on the Atoll runtime.
 *
 *   atoll-kv [-p PORT] [-l ADDR] [-m MB] [-c CONNS] [-t VCORES] [-I SIZE]
 *            [-M] [-C] [-v]
 *
 * A fos-style fleet inside one many-core process: the key space is cut into
 * one shard per vcore, and a shard is touched only by its owner. Each
 * connection is a uthread (net.h); it parses requests with the engine
 * (engine/kv.h) and reaches a key's shard through the router below, which
 * posts the work to the event queue bound to the owner vcore and sleeps
 * until the owner ran it. No lock guards the data: the event queue is the
 * channel, and the owner's event handler is the only code that touches its
 * shard. (While a vcore is revoked, vcore 0 runs its handlers, still one at
 * a time: see event.h.)
 *
 * Under atolld (ATOLL_CELL set) the runtime registers the process as an MCP
 * and the vcores come and go with the cell; the shards stay, and the
 * latency of every request batch is published for the cell's latency
 * controller (latency.h).
 *
 * Exit status: 0 after SIGINT/SIGTERM, 1 when it cannot run, 2 for bad
 * usage.
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include <atoll/clock.h>
#include <atoll/event.h>
#include <atoll/latency.h>
#include <atoll/net.h>
#include <atoll/rt.h>
#include <atoll/sync.h>
#include <atoll/sys.h>
#include <atoll/uthread.h>
#include <atoll/vcore.h>

#include "kv.h"

#define NAME "atoll-kv"
#define DEFAULT_PORT 11211
#define DEFAULT_MEM_MB 64
#define DEFAULT_MAX_CONNS 1024
#define SHARD_QUEUE_SLOTS 4096
#define POST_BACKOFF_NS 20000ull
#define IN_BUF_MIN (16u * 1024u)
#define OUT_BUF_KEEP (64u * 1024u)  /* larger output buffers are freed */
#define CONN_STACK (64u * 1024u)
#define EV_SHARD_CALL 1

struct options {
	const char *addr;
	long port;
	unsigned long long mem_bytes;
	unsigned max_conns;
	unsigned nr_vcores;
	size_t item_max;
	int no_evict, no_cas;
	unsigned verbosity;
};

struct shard {
	struct kv_store *store;
	struct ev_queue *queue;     /* bound to the owner vcore */
	/* Written by the owner only (relaxed atomics: stats reads them). */
	uint64_t local_calls;       /* ran in place on the owner */
	uint64_t forwarded_calls;   /* came through the queue */
};

struct server {
	struct kv_router router;    /* first: the engine hands it back */
	struct options opt;
	struct kv_session_config scfg;
	struct shard *shards;
	unsigned nshards;
	struct net_counters conns;
	time_t started;
	unsigned verbosity;         /* atomic */
	int lfd;
};

/* One request for a shard, on the requesting uthread's stack: it sleeps
 * on done until the owner has run fn. */
struct shard_call {
	void (*fn)(struct kv_store *s, void *arg);
	void *arg;
	struct shard *shard;
	struct uth_sem done;
};

/* ---- the router ----------------------------------------------------------- */

static void count(uint64_t *counter)
{
	__atomic_store_n(counter, *counter + 1, __ATOMIC_RELAXED);
}

static void shard_call_run(void *arg)
{
	struct shard_call *call = arg;

	call->fn(call->shard->store, call->arg);
	count(&call->shard->local_calls);
}

/* Vcore context, on the shard's owner. */
static void shard_handler(const struct event *ev, void *arg)
{
	struct shard_call *call;

	(void)arg;
	memcpy(&call, ev->payload, sizeof(call));
	call->fn(call->shard->store, call->arg);
	count(&call->shard->forwarded_calls);
	uth_sem_up(&call->done);
}

static void route(struct kv_router *r, unsigned shard,
		  void (*fn)(struct kv_store *s, void *arg), void *arg)
{
	struct server *srv = (struct server *)r;
	struct shard *sh = &srv->shards[shard];
	struct shard_call call = { .fn = fn, .arg = arg, .shard = sh };
	struct shard_call *p = &call;

	/* Already on the owner: run it here, as its handler would. */
	if (ev_queue_run_local(sh->queue, shard_call_run, &call) == 0)
		return;
	uth_sem_init(&call.done, 0);
	/* A full queue means the owner is far behind: give it time rather
	 * than spin on its ring. */
	while (ev_post(sh->queue, EV_SHARD_CALL, &p, sizeof(p)) == -EAGAIN)
		sys_timeout(POST_BACKOFF_NS);
	uth_sem_down(&call.done);
}

/* Append one "STAT name value" line. */
static int stat_str(struct kv_buf *out, const char *name, const char *val)
{
	size_t need = strlen(name) + strlen(val) + 8;
	int err = kv_buf_reserve(out, need + 1);

	if (err)
		return err;
	out->len += (size_t)snprintf(out->p + out->len, need + 1,
				     "STAT %s %s\r\n", name, val);
	return 0;
}

static int stat_num(struct kv_buf *out, const char *name,
		    unsigned long long v)
{
	char val[24];

	snprintf(val, sizeof(val), "%llu", v);
	return stat_str(out, name, val);
}

static unsigned long long tv_us(const struct timeval *tv)
{
	return (unsigned long long)tv->tv_sec * 1000000ull +
	       (unsigned long long)tv->tv_usec;
}

/* How shard work reached its owner: in place, or through its queue. */
static int stats_shard_calls(struct server *srv, struct kv_buf *out)
{
	unsigned long long local = 0, fwd = 0;

	for (unsigned i = 0; i < srv->nshards; i++) {
		local += __atomic_load_n(&srv->shards[i].local_calls,
					 __ATOMIC_RELAXED);
		fwd += __atomic_load_n(&srv->shards[i].forwarded_calls,
				       __ATOMIC_RELAXED);
	}
	return stat_num(out, "shard_local_calls", local) ?:
	       stat_num(out, "shard_forwarded_calls", fwd);
}

static int stats_general(struct server *srv, struct kv_buf *out)
{
	struct rusage ru;
	time_t now = time(NULL);
	int err;

	getrusage(RUSAGE_SELF, &ru);
	err = stat_num(out, "pid", (unsigned long long)getpid());
	err = err ?: stat_num(out, "uptime",
			      (unsigned long long)(now - srv->started));
	err = err ?: stat_num(out, "time", (unsigned long long)now);
	err = err ?: stat_str(out, "version", KV_VERSION);
	err = err ?: stat_num(out, "pointer_size", sizeof(void *) * 8);
	err = err ?: stat_num(out, "rusage_user_us", tv_us(&ru.ru_utime));
	err = err ?: stat_num(out, "rusage_system_us", tv_us(&ru.ru_stime));
	err = err ?: stat_num(out, "max_connections", srv->opt.max_conns);
	err = err ?: stat_num(out, "curr_connections",
			      __atomic_load_n(&srv->conns.live,
					      __ATOMIC_RELAXED));
	err = err ?: stat_num(out, "total_connections",
			      __atomic_load_n(&srv->conns.accepted,
					      __ATOMIC_RELAXED));
	err = err ?: stat_num(out, "rejected_connections",
			      __atomic_load_n(&srv->conns.refused,
					      __ATOMIC_RELAXED));
	err = err ?: stat_num(out, "threads", max_vcores());
	err = err ?: stat_num(out, "shards", srv->nshards);
	return err ?: stats_shard_calls(srv, out);
}

static int stats_settings(struct server *srv, struct kv_buf *out)
{
	int err = stat_num(out, "maxbytes", srv->opt.mem_bytes);

	err = err ?: stat_num(out, "maxconns", srv->opt.max_conns);
	err = err ?: stat_num(out, "tcpport",
			      (unsigned long long)srv->opt.port);
	err = err ?: stat_num(out, "udpport", 0);
	err = err ?: stat_str(out, "inter", srv->opt.addr);
	err = err ?: stat_num(out, "verbosity",
			      __atomic_load_n(&srv->verbosity,
					      __ATOMIC_RELAXED));
	err = err ?: stat_str(out, "evictions",
			      srv->opt.no_evict ? "off" : "on");
	err = err ?: stat_num(out, "num_threads", max_vcores());
	err = err ?: stat_str(out, "cas_enabled",
			      srv->opt.no_cas ? "no" : "yes");
	return err ?: stat_num(out, "item_size_max", srv->opt.item_max);
}

static int server_stats(struct kv_router *r, const char *group,
			struct kv_buf *out)
{
	struct server *srv = (struct server *)r;

	if (!group)
		return stats_general(srv, out);
	if (!strcmp(group, "settings"))
		return stats_settings(srv, out);
	return 0; /* "conns": nothing per connection is kept */
}

static void server_verbosity(struct kv_router *r, unsigned level)
{
	struct server *srv = (struct server *)r;

	__atomic_store_n(&srv->verbosity, level, __ATOMIC_RELAXED);
}

/* memcached's "current time": seconds, coarse is plenty. */
static uint32_t clock_now(void *arg)
{
	struct timespec ts;

	(void)arg;
	clock_gettime(CLOCK_REALTIME_COARSE, &ts);
	return (uint32_t)ts.tv_sec;
}

/* ---- connections ---------------------------------------------------------- */

struct conn_bufs {
	char *in;
	size_t len, cap;
	struct kv_buf out;
};

/* Grow the input buffer to hold at least want bytes. */
static int in_grow(struct conn_bufs *b, size_t want)
{
	size_t cap = b->cap;
	char *p;

	while (cap < want)
		cap *= 2;
	p = realloc(b->in, cap);
	if (!p)
		return -ENOMEM;
	b->in = p;
	b->cap = cap;
	return 0;
}

/* Room for the next read: what the session needs in one piece, or twice
 * the buffer when it is full of a line still without its end (the engine
 * answers over-long lines itself, so this stays bounded). */
static int in_make_room(struct conn_bufs *b, const struct kv_session *sess,
			size_t item_max)
{
	size_t want = kv_session_want(sess);

	if (want > b->cap)
		return in_grow(b, want);
	if (b->len == b->cap) {
		if (b->cap > item_max + IN_BUF_MIN)
			return -EPROTO;
		return in_grow(b, b->cap * 2);
	}
	return 0;
}

static void kv_conn(int fd, void *arg)
{
	struct server *srv = arg;
	struct conn_bufs b = { .cap = IN_BUF_MIN };
	struct kv_session *sess;
	int want_close = 0;

	if (kv_session_create(&sess, &srv->scfg))
		return;
	b.in = malloc(b.cap);
	while (b.in && !want_close) {
		ssize_t n = sys_recv(fd, b.in + b.len, b.cap - b.len, 0);
		uint64_t t0 = fast_ns();

		if (n <= 0)
			break;  /* the peer left, or the connection failed */
		b.len += (size_t)n;
		n = kv_session_feed(sess, &srv->router, b.in, b.len, &b.out,
				    &want_close);
		if (b.out.len && net_send_all(fd, b.out.p, b.out.len))
			break;
		/* From the bytes' arrival to the reply's departure: what the
		 * cell's latency controller steers by. */
		rt_latency_record(fast_ns_since(t0));
		b.out.len = 0;
		if (b.out.cap > OUT_BUF_KEEP)
			kv_buf_free(&b.out);
		if (n < 0)
			break;
		b.len -= (size_t)n;
		memmove(b.in, b.in + n, b.len);
		if (in_make_room(&b, sess, srv->scfg.item_max))
			break;
	}
	free(b.in);
	kv_buf_free(&b.out);
	kv_session_destroy(sess);
}

/* ---- start and stop ------------------------------------------------------- */

static void shards_destroy(struct server *srv)
{
	for (unsigned i = 0; i < srv->nshards; i++) {
		struct shard *sh = &srv->shards[i];

		if (sh->queue)
			ev_queue_destroy(sh->queue);
		kv_store_destroy(sh->store);
	}
	free(srv->shards);
	srv->shards = NULL;
}

/* One shard per vcore the process may ever hold, each bound to its
 * vcore; memory is split evenly. 0 or -errno. */
static int shards_create(struct server *srv)
{
	struct kv_store_config sc = {
		.item_max = srv->opt.item_max,
		.no_evict = srv->opt.no_evict, .no_cas = srv->opt.no_cas,
		.now = clock_now,
	};
	int err;

	srv->nshards = max_vcores();
	srv->shards = calloc(srv->nshards, sizeof(*srv->shards));
	if (!srv->shards)
		return -ENOMEM;
	sc.nshards = srv->nshards;
	sc.mem_limit = srv->opt.mem_bytes / srv->nshards;
	for (unsigned i = 0; i < srv->nshards; i++) {
		struct shard *sh = &srv->shards[i];

		sc.shard = i;
		err = kv_store_create(&sh->store, &sc);
		if (!err)
			err = ev_queue_create(&sh->queue, SHARD_QUEUE_SLOTS, i,
					      shard_handler, NULL);
		if (err) {
			srv->nshards = i + 1;
			shards_destroy(srv);
			return err;
		}
	}
	srv->router.nshards = srv->nshards;
	return 0;
}

static int server_main(void *arg)
{
	struct server *srv = arg;
	struct net_serve_config ncfg = {
		.lfd = srv->lfd, .conn = kv_conn, .arg = srv,
		.stack_size = CONN_STACK, .max_conns = srv->opt.max_conns,
		.name = NAME, .counters = &srv->conns,
	};
	int err = shards_create(srv);

	if (err) {
		fprintf(stderr, NAME ": cannot create the shards: %s\n",
			strerror(-err));
		return 1;
	}
	if (srv->opt.verbosity)
		fprintf(stderr, NAME ": %u shards over %u vcores, %llu MiB\n",
			srv->nshards, num_vcores(),
			srv->opt.mem_bytes >> 20);
	err = net_serve(&ncfg);
	shards_destroy(srv);
	return err ? 1 : 0;
}

/* ---- options -------------------------------------------------------------- */

static void usage(FILE *f)
{
	fprintf(f,
"usage: " NAME " [options]\n"
"  -p, --port PORT          TCP port, 0 for any free one (default %d)\n"
"  -l, --listen ADDR        IPv4 or IPv6 address (default 127.0.0.1)\n"
"  -m, --memory-limit MB    item memory in MiB (default %d)\n"
"  -c, --conn-limit N       most simultaneous connections (default %d)\n"
"  -t, --threads N          vcores (default: one per cpu); one shard each\n"
"  -I, --max-item-size SIZE largest value, e.g. 1m or 512k (default 1m)\n"
"  -M, --disable-evictions  answer out of memory instead of evicting\n"
"  -C, --disable-cas        no CAS uniques\n"
"  -U, --udp-port 0         accepted for compatibility; UDP is not served\n"
"  -v, --verbose            more messages (repeat for more)\n"
"  -V, --version            print the version and exit\n"
"  -h, --help               this text\n"
"Prints \"listening on ADDR:PORT\" once bound. Under atolld, run it in a\n"
"cell with ATOLL_CELL=<cell> to get its vcores from the supervisor.\n",
		DEFAULT_PORT, DEFAULT_MEM_MB, DEFAULT_MAX_CONNS);
}

/* A whole decimal number in [lo, hi] with an optional k/m/g suffix when
 * unit is set, or -1. */
static long long parse_size(const char *s, long long lo, long long hi,
			    int unit)
{
	char *end;
	long long v;

	if (!*s || *s == '-' || *s == '+')
		return -1;
	errno = 0;
	v = strtoll(s, &end, 10);
	if (errno)
		return -1;
	if (unit && *end && !end[1]) {
		int shift = *end == 'k' || *end == 'K' ? 10
			  : *end == 'm' || *end == 'M' ? 20
			  : *end == 'g' || *end == 'G' ? 30 : -1;

		if (shift < 0 || v > (hi >> shift))
			return -1;
		v <<= shift;
		end++;
	}
	if (*end || v < lo || v > hi)
		return -1;
	return v;
}

static int bad_value(char opt, const char *arg, const char *expected)
{
	fprintf(stderr, NAME ": bad value '%s' for -%c: expected %s\n", arg,
		opt, expected);
	return 2;
}

/* 0, or the exit status for bad usage (2) or help (-1). */
static int parse_options(int argc, char **argv, struct options *o)
{
	static const struct option longs[] = {
		{ "port", required_argument, NULL, 'p' },
		{ "listen", required_argument, NULL, 'l' },
		{ "memory-limit", required_argument, NULL, 'm' },
		{ "conn-limit", required_argument, NULL, 'c' },
		{ "threads", required_argument, NULL, 't' },
		{ "max-item-size", required_argument, NULL, 'I' },
		{ "disable-evictions", no_argument, NULL, 'M' },
		{ "disable-cas", no_argument, NULL, 'C' },
		{ "udp-port", required_argument, NULL, 'U' },
		{ "verbose", no_argument, NULL, 'v' },
		{ "version", no_argument, NULL, 'V' },
		{ "help", no_argument, NULL, 'h' },
		{ 0 }
	};
	long long v;
	int c;

	while ((c = getopt_long(argc, argv, "p:l:m:c:t:I:MCU:vVh", longs,
				NULL)) != -1) {
		switch (c) {
		case 'p':
			if ((o->port = parse_size(optarg, 0, 65535, 0)) < 0)
				return bad_value('p', optarg,
						 "a port from 0 to 65535");
			break;
		case 'l':
			if (!net_addr_valid(optarg))
				return bad_value('l', optarg,
						 "an IPv4 or IPv6 address");
			o->addr = optarg;
			break;
		case 'm':
			if ((v = parse_size(optarg, 1, 1 << 20, 0)) < 0)
				return bad_value('m', optarg, "MiB from 1 to "
						 "1048576");
			o->mem_bytes = (unsigned long long)v << 20;
			break;
		case 'c':
			if ((v = parse_size(optarg, 1, 1 << 20, 0)) < 0)
				return bad_value('c', optarg, "a count from 1 "
						 "to 1048576");
			o->max_conns = (unsigned)v;
			break;
		case 't':
			if ((v = parse_size(optarg, 1, 1024, 0)) < 0)
				return bad_value('t', optarg, "a vcore count "
						 "from 1 to 1024");
			o->nr_vcores = (unsigned)v;
			break;
		case 'I':
			if ((v = parse_size(optarg, 1024, 1 << 30, 1)) < 0)
				return bad_value('I', optarg, "a size from 1k "
						 "to 1g");
			o->item_max = (size_t)v;
			break;
		case 'M': o->no_evict = 1; break;
		case 'C': o->no_cas = 1; break;
		case 'U':
			if (strcmp(optarg, "0"))
				return bad_value('U', optarg, "0 (UDP is not "
						 "served)");
			break;
		case 'v': o->verbosity++; break;
		case 'V': printf(NAME " %s\n", KV_VERSION); return -1;
		case 'h': usage(stdout); return -1;
		default: usage(stderr); return 2;
		}
	}
	if (optind < argc) {
		fprintf(stderr, NAME ": unexpected argument '%s'\n",
			argv[optind]);
		usage(stderr);
		return 2;
	}
	if (o->item_max > o->mem_bytes) {
		fprintf(stderr, NAME ": the largest item (-I %zu bytes) cannot "
			"exceed the memory limit (-m %llu MiB)\n", o->item_max,
			o->mem_bytes >> 20);
		return 2;
	}
	return 0;
}

int main(int argc, char **argv)
{
	static struct server srv = {
		.router = { .run = route, .stats = server_stats,
			    .verbosity = server_verbosity },
		.opt = { .addr = "127.0.0.1", .port = DEFAULT_PORT,
			 .mem_bytes = (unsigned long long)DEFAULT_MEM_MB << 20,
			 .max_conns = DEFAULT_MAX_CONNS,
			 .item_max = KV_ITEM_MAX_DEFAULT },
	};
	struct rt_config cfg = { 0 };
	char shown[64];
	int ret = parse_options(argc, argv, &srv.opt);

	if (ret)
		return ret < 0 ? 0 : ret;
	srv.scfg.item_max = srv.opt.item_max;
	srv.verbosity = srv.opt.verbosity;
	srv.started = time(NULL);
	cfg.nr_vcores = srv.opt.nr_vcores;
	/* Before rt_main, so every vcore thread inherits the mask. */
	ret = net_block_stop_signals();
	if (ret) {
		fprintf(stderr, NAME ": cannot block signals: %s\n",
			strerror(-ret));
		return 1;
	}
	srv.lfd = net_listen(srv.opt.addr, (int)srv.opt.port, shown,
			     sizeof(shown));
	if (srv.lfd < 0) {
		fprintf(stderr, NAME ": cannot listen on %s port %ld: %s\n",
			srv.opt.addr, srv.opt.port, strerror(-srv.lfd));
		return 1;
	}
	printf("listening on %s\n", shown);
	fflush(stdout);
	ret = rt_main(&cfg, server_main, &srv);
	if (ret < 0) {
		fprintf(stderr, NAME ": cannot start the runtime: %s\n",
			strerror(-ret));
		close(srv.lfd);
		return 1;
	}
	return ret;
}
