/* chan.c - channels: two one-way lanes of 64-byte slots (ring_spsc) plus
 * data buffers, in a sealed memfd; eventfd doorbells (include/atoll/chan.h).
 *
 * Design note.
 *
 * Fast path. A write reserves one slot (ring_spsc_reserve), fills it (and,
 * for a large payload, a run of the lane's data buffer), publishes it with
 * one store-release of the ring's tail (ring_spsc_commit) and then runs
 * doorbell_ring(): a full fence and one load of the reader's "waiting"
 * word, which stays in the writer's cache as long as the reader does not
 * sleep. A read peeks, validates, copies out, releases the slot (one
 * store-release of head), publishes the data buffer's new head if a
 * payload was freed, and rings the writer's doorbell the same way. No
 * lock, no system call. Batches publish once and ring once.
 *
 * Polling comes in two stretches. First a tight loop, inline in the
 * caller: a pause and another attempt, up to CHAN_HOT_SPINS times (a few
 * microseconds), with no call and no clock read. Then the general step:
 * the clock every few rounds (poll_ns), a liveness check every
 * millisecond, a yield to other uthreads every 64 rounds, and at the end
 * the doorbell. Measured on a 2-cpu VM (bench/msg.c), a loop that also
 * read the clock or made a call every 8 rounds from the start answered a
 * ping-pong about 40% slower (1050 against 750 ns round trip), so the
 * short waits of a busy channel never pay for the long ones. A poll_ns
 * below CHAN_HOT_MIN_POLL_NS skips the tight stretch.
 *
 * Waiting: see doorbell_*() in internal.h for the handshake. A reader
 * sleeps when its lane is empty and the peer has not left; a writer when
 * its lane has no slot or no buffer room for the message at hand. Each
 * endpoint has one eventfd per role (reader, writer), so the two roles of
 * one endpoint never drain each other's wake-up. With a liveness socket,
 * each role sleeps on an epoll set of {its eventfd, the socket}: the
 * socket becomes readable (end of file) when the peer process dies.
 *
 * Trust: the peer can write anything into the shared region at any time.
 * We keep our own copies of the geometry and of our own indices into the
 * data buffer; every field read from a slot is loaded once (relaxed
 * atomic loads: the compiler may not re-read them) and checked before it
 * is used; an impossible index published by the peer is -EPROTO.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atoll/chan.h>
#include <atoll/clock.h>
#include <atoll/rt.h>
#include <atoll/sys.h>
#include <atoll/uthread.h>

#include "internal.h"

#define CHAN_LIVE_CHECK_NS NSEC_PER_MSEC
#define CHAN_HOT_SPINS 256u	/* the tight first stretch of a wait */
#define CHAN_HOT_MIN_POLL_NS (10 * NSEC_PER_USEC)
#define CHAN_POLL_CHECK_MASK 7u	/* then look at the clock every 8 spins */
#define CHAN_POLL_YIELD_MASK 63u	/* yield to other uthreads every 64 */

/* ---- doorbells ---------------------------------------------------------- */

bool doorbell_kick(int efd)
{
	uint64_t one = 1;

	/* A full count (2^64 - 2) would give EAGAIN: the sleeper is awake
	 * anyway. */
	return write(efd, &one, sizeof(one)) == (ssize_t)sizeof(one);
}

int doorbell_sleep(int wait_fd, int efd)
{
	uint64_t v;
	int r;

	if (uthread_self()) {
		r = sys_poll(wait_fd, POLLIN);
	} else {
		struct pollfd p = { .fd = wait_fd, .events = POLLIN };

		r = poll(&p, 1, -1);
		if (r < 0)
			r = -errno;
	}
	/* Reset the count (non-blocking; nothing to read is fine). */
	if (read(efd, &v, sizeof(v)) < 0) {
		/* EAGAIN: woken by the socket, or a spurious wake-up. */
	}
	return r < 0 ? r : 0;
}

/* ---- configuration and layout -------------------------------------------- */

static uint64_t page_size(void)
{
	long p = sysconf(_SC_PAGESIZE);

	return p > 0 ? (uint64_t)p : 4096;
}

int chan__config(const struct chan_config *cfg, uint32_t *nslots,
		 uint32_t *data_size, uint64_t *map_size, uint64_t *poll_ns)
{
	uint32_t n = cfg && cfg->nslots ? cfg->nslots : CHAN_DEFAULT_SLOTS;
	uint32_t d = cfg && cfg->data_size ? cfg->data_size : CHAN_DEFAULT_DATA;
	uint64_t m = cfg ? cfg->map_size : 0;

	if (!IS_POW2(n) || n < RING_MIN_SLOTS || n > CHAN_MAX_SLOTS)
		return -EINVAL;
	if (d == CHAN_NO_DATA)
		d = 0;
	else if (!IS_POW2(d) || d < CHAN_MIN_DATA || d > CHAN_MAX_DATA)
		return -EINVAL;
	if (m > CHAN_MAX_MAP)
		return -EINVAL;
	*nslots = n;
	*data_size = d;
	*map_size = ALIGN_UP(m, page_size());
	*poll_ns = cfg && cfg->poll_ns ? cfg->poll_ns : CHAN_DEFAULT_POLL_NS;
	return 0;
}

int chan__layout(struct chan_region_hdr *h, uint32_t nslots,
		 uint32_t data_size, uint64_t map_size)
{
	size_t ring = ring_spsc_size(nslots);
	uint64_t lane, end;

	if (!ring || nslots > CHAN_MAX_SLOTS || data_size > CHAN_MAX_DATA ||
	    (data_size && (!IS_POW2(data_size) || data_size < CHAN_MIN_DATA)) ||
	    map_size > CHAN_MAX_MAP || map_size % page_size())
		return -EINVAL;
	lane = CHAN_LANE_RING_OFF + (uint64_t)ring + data_size;
	end = CHAN_REGION_LANES_OFF + 2 * lane;
	memset(h, 0, sizeof(*h));
	h->hdr_size = sizeof(*h);
	h->nslots = nslots;
	h->data_size = data_size;
	h->lane_off[0] = CHAN_REGION_LANES_OFF;
	h->lane_off[1] = CHAN_REGION_LANES_OFF + lane;
	h->lane_size = lane;
	h->map_off = ALIGN_UP(end, page_size());
	h->map_size = map_size;
	h->total_size = h->map_off + map_size;
	return 0;
}

/* Compare a header read from a region with the layout computed from its
 * own parameters. Returns 0 or -EPROTO with a reason. */
static int chan__hdr_check(const struct chan_region_hdr *got,
			   char *reason, size_t rlen)
{
	struct chan_region_hdr want;

	if (got->magic != CHAN_MAGIC || got->version != CHAN_VERSION) {
		snprintf(reason, rlen, "the region is not an Atoll channel of "
			 "version %d (magic 0x%08x, version %u)", CHAN_VERSION,
			 got->magic, got->version);
		return -EPROTO;
	}
	if (chan__layout(&want, got->nslots, got->data_size,
			 got->map_size)) {
		snprintf(reason, rlen, "the region's geometry is invalid "
			 "(%u slots, %u data bytes, %llu map bytes)",
			 got->nslots, got->data_size,
			 (unsigned long long)got->map_size);
		return -EPROTO;
	}
	want.magic = got->magic;
	want.version = got->version;
	if (memcmp(&want, got, sizeof(want))) {
		snprintf(reason, rlen, "the region's header does not match "
			 "the layout of %u slots, %u data bytes and %llu map "
			 "bytes", got->nslots, got->data_size,
			 (unsigned long long)got->map_size);
		return -EPROTO;
	}
	return 0;
}

static int read_hdr(int memfd, struct chan_region_hdr *h)
{
	ssize_t n = pread(memfd, h, sizeof(*h), 0);

	if (n < 0)
		return -errno;
	return n == (ssize_t)sizeof(*h) ? 0 : -EPROTO;
}

int chan__region_create(const struct chan_region_hdr *layout)
{
	struct chan_region_hdr *h;
	unsigned char *base;
	int fd, err;

	fd = memfd_create("atoll-chan", MFD_CLOEXEC | MFD_ALLOW_SEALING);
	if (fd < 0)
		return -errno;
	if (ftruncate(fd, (off_t)layout->total_size)) {
		err = -errno;
		goto fail;
	}
	base = mmap(NULL, layout->map_off, PROT_READ | PROT_WRITE, MAP_SHARED,
		    fd, 0);
	if (base == MAP_FAILED) {
		err = -errno;
		goto fail;
	}
	h = (struct chan_region_hdr *)base;
	*h = *layout;
	for (int i = 0; i < 2; i++) {
		struct ring_spsc *r = (struct ring_spsc *)(base +
			layout->lane_off[i] + CHAN_LANE_RING_OFF);

		err = ring_spsc_init(r, ring_spsc_size(layout->nslots),
				     layout->nslots);
		BUG_ON(err); /* the layout was checked */
	}
	h->version = CHAN_VERSION;
	/* Release: the region is complete before it reads as a channel.
	 * Nobody else maps it yet; this orders it for any future reader
	 * (pairs with nothing in this process, with the peer's receipt of
	 * the memfd in another). */
	store_release(&h->magic, CHAN_MAGIC);
	munmap(base, layout->map_off);
	/* Sealed: the peer relies on the size never changing (a shrunk
	 * memfd would fault it with SIGBUS). */
	if (fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL)) {
		err = -errno;
		goto fail;
	}
	return fd;
fail:
	close(fd);
	return err;
}

int chan__region_check(int memfd, uint64_t total_size, char *reason,
		       size_t reason_len)
{
	struct chan_region_hdr h;
	struct stat sb;
	int seals, err;

	seals = fcntl(memfd, F_GET_SEALS);
	if (seals < 0 || fstat(memfd, &sb)) {
		snprintf(reason, reason_len, "the region descriptor is not a "
			 "memfd (%s)", strerror(errno));
		return -EPROTO;
	}
	if (!S_ISREG(sb.st_mode)) {
		snprintf(reason, reason_len, "the region descriptor is not a "
			 "memfd");
		return -EPROTO;
	}
	if ((seals & (F_SEAL_SHRINK | F_SEAL_GROW)) !=
	    (F_SEAL_SHRINK | F_SEAL_GROW)) {
		snprintf(reason, reason_len, "the region memfd is not sealed "
			 "against shrinking and growing");
		return -EPROTO;
	}
	if ((uint64_t)sb.st_size != total_size) {
		snprintf(reason, reason_len, "the region memfd holds %lld "
			 "bytes, the request said %llu", (long long)sb.st_size,
			 (unsigned long long)total_size);
		return -EPROTO;
	}
	err = read_hdr(memfd, &h);
	if (err) {
		snprintf(reason, reason_len, "cannot read the region header");
		return -EPROTO;
	}
	err = chan__hdr_check(&h, reason, reason_len);
	if (err)
		return err;
	if (h.total_size != total_size) {
		snprintf(reason, reason_len, "the region header says %llu "
			 "bytes, the memfd holds %llu",
			 (unsigned long long)h.total_size,
			 (unsigned long long)total_size);
		return -EPROTO;
	}
	return 0;
}

bool chan__is_eventfd(int fd)
{
	char path[64], link[64];
	ssize_t n;

	snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	n = readlink(path, link, sizeof(link) - 1);
	if (n < 0)
		return fcntl(fd, F_GETFD) >= 0; /* no /proc: trust it */
	link[n] = '\0';
	return strcmp(link, "anon_inode:[eventfd]") == 0;
}

/* ---- endpoints -------------------------------------------------------------- */

static int epoll_pair(int efd, int sock)
{
	struct epoll_event ev = { .events = EPOLLIN };
	int ep = epoll_create1(EPOLL_CLOEXEC);

	if (ep < 0)
		return -errno;
	ev.data.fd = efd;
	if (epoll_ctl(ep, EPOLL_CTL_ADD, efd, &ev))
		goto fail;
	ev.events = EPOLLIN | EPOLLRDHUP;
	ev.data.fd = sock;
	if (epoll_ctl(ep, EPOLL_CTL_ADD, sock, &ev))
		goto fail;
	return ep;
fail:
	{
		int err = -errno;

		close(ep);
		return err;
	}
}

static void close_fd(int fd)
{
	if (fd >= 0)
		close(fd);
}

int chan__endpoint(struct chan **out, unsigned id, int memfd,
		   const int efds[4], int sock, uint64_t poll_ns)
{
	struct chan_region_hdr h;
	unsigned out_lane = id, in_lane = 1 - id;
	char reason[CHAN_REASON_MAX];
	struct chan *c;
	int err;

	c = aligned_alloc(CACHE_LINE, ALIGN_UP(sizeof(*c), CACHE_LINE));
	if (!c) {
		err = -ENOMEM;
		goto fail_fds;
	}
	memset(c, 0, sizeof(*c));
	c->id = id;
	c->memfd = memfd;
	c->sock = sock;
	c->efd_rx = efds[2 * in_lane];
	c->efd_tx = efds[2 * out_lane + 1];
	c->efd_peer_rx = efds[2 * out_lane];
	c->efd_peer_tx = efds[2 * in_lane + 1];
	c->wait_rx = c->efd_rx;
	c->wait_tx = c->efd_tx;
	c->poll_ns = poll_ns ? poll_ns : CHAN_DEFAULT_POLL_NS;

	err = read_hdr(memfd, &h);
	if (!err)
		err = chan__hdr_check(&h, reason, sizeof(reason));
	if (err)
		goto fail;
	c->nslots = h.nslots;
	c->data_size = h.data_size;
	c->map_off = h.map_off;
	c->map_size = h.map_size;
	c->base_len = h.map_off;
	c->base = mmap(NULL, c->base_len, PROT_READ | PROT_WRITE, MAP_SHARED,
		       memfd, 0);
	if (c->base == MAP_FAILED) {
		err = -errno;
		c->base = NULL;
		goto fail;
	}
	c->st = (struct chan_region_state *)(c->base + sizeof(h));
	for (unsigned l = 0; l < 2; l++) {
		struct chan_lane_view *v = l == out_lane ? &c->w.v : &c->r.v;
		unsigned char *lane = c->base + h.lane_off[l];

		v->lane = (struct chan_lane *)lane;
		v->ring = (struct ring_spsc *)(lane + CHAN_LANE_RING_OFF);
		v->data = h.data_size ? lane + CHAN_LANE_RING_OFF +
			  ring_spsc_size(h.nslots) : NULL;
		err = ring_spsc_attach(v->ring, ring_spsc_size(h.nslots));
		if (!err && v->ring->geom.nslots != h.nslots)
			err = -EPROTO;
		if (err)
			goto fail;
	}
	if (sock >= 0) {
		c->wait_rx = epoll_pair(c->efd_rx, sock);
		if (c->wait_rx < 0) {
			err = c->wait_rx;
			c->wait_rx = -1;
			goto fail;
		}
		c->wait_tx = epoll_pair(c->efd_tx, sock);
		if (c->wait_tx < 0) {
			err = c->wait_tx;
			c->wait_tx = -1;
			goto fail;
		}
	}
	store_relaxed(&c->st->pid[id], (uint32_t)getpid()); /* informative */
	*out = c;
	return 0;
fail:
	chan_forget(c);
	return err;
fail_fds:
	close_fd(memfd);
	close_fd(sock);
	for (int i = 0; i < 4; i++)
		close_fd(efds[i]);
	return err;
}

int chan_pair(struct chan **a, struct chan **b, const struct chan_config *cfg)
{
	struct chan_region_hdr h;
	uint32_t nslots, data;
	uint64_t map, poll_ns;
	int memfd[2] = { -1, -1 }, efd[2][4];
	int err;

	if (!a || !b)
		return -EINVAL;
	err = chan__config(cfg, &nslots, &data, &map, &poll_ns);
	if (!err)
		err = chan__layout(&h, nslots, data, map);
	if (err)
		return err;
	for (int e = 0; e < 2; e++)
		for (int i = 0; i < 4; i++)
			efd[e][i] = -1;
	memfd[0] = chan__region_create(&h);
	if (memfd[0] < 0)
		return memfd[0];
	/* Each endpoint owns its own descriptors (duplicates), so either
	 * can be closed or forgotten alone. */
	memfd[1] = fcntl(memfd[0], F_DUPFD_CLOEXEC, 0);
	if (memfd[1] < 0)
		goto fail_errno;
	for (int i = 0; i < 4; i++) {
		efd[0][i] = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
		if (efd[0][i] < 0)
			goto fail_errno;
		efd[1][i] = fcntl(efd[0][i], F_DUPFD_CLOEXEC, 0);
		if (efd[1][i] < 0)
			goto fail_errno;
	}
	/* chan__endpoint owns what it is given, also when it fails. */
	err = chan__endpoint(a, 0, memfd[0], efd[0], -1, poll_ns);
	if (err) {
		memfd[0] = -1;
		for (int i = 0; i < 4; i++)
			efd[0][i] = -1;
		goto fail;
	}
	err = chan__endpoint(b, 1, memfd[1], efd[1], -1, poll_ns);
	if (err) {
		chan_forget(*a);
		*a = NULL;
		return err;
	}
	return 0;
fail_errno:
	err = -errno;
fail:
	for (int e = 0; e < 2; e++) {
		close_fd(memfd[e]);
		for (int i = 0; i < 4; i++)
			close_fd(efd[e][i]);
	}
	return err;
}

void chan_forget(struct chan *c)
{
	if (!c)
		return;
	if (c->map_addr)
		munmap(c->map_addr, c->map_size);
	if (c->base)
		munmap(c->base, c->base_len);
	if (c->wait_rx != c->efd_rx)
		close_fd(c->wait_rx);
	if (c->wait_tx != c->efd_tx)
		close_fd(c->wait_tx);
	close_fd(c->efd_rx);
	close_fd(c->efd_tx);
	close_fd(c->efd_peer_rx);
	close_fd(c->efd_peer_tx);
	close_fd(c->sock);
	close_fd(c->memfd);
	free(c);
}

int chan_close(struct chan *c)
{
	if (!c)
		return -EINVAL;
	if (c->st) {
		/* Release: pairs with the peer's load_acquire of closed in
		 * chan__peer_gone(): every message we published is visible
		 * to a peer that sees us closed. */
		store_release(&c->st->closed[c->id], 1);
		/* Wake whatever the peer has sleeping, unconditionally (a
		 * stale count costs it one spurious wake-up). */
		doorbell_kick(c->efd_peer_rx);
		doorbell_kick(c->efd_peer_tx);
	}
	chan_forget(c);
	return 0;
}

void chan_set_poll_ns(struct chan *c, uint64_t poll_ns)
{
	store_relaxed(&c->poll_ns, poll_ns ? poll_ns : CHAN_DEFAULT_POLL_NS);
}

void chan_stats(const struct chan *c, struct chan_stats *st)
{
	st->sent = load_relaxed(&c->w.sent);
	st->full = load_relaxed(&c->w.full);
	st->tx_sleeps = load_relaxed(&c->w.sleeps);
	st->received = load_relaxed(&c->r.received);
	st->rx_sleeps = load_relaxed(&c->r.sleeps);
	st->bells = load_relaxed(&c->w.bells) + load_relaxed(&c->r.bells);
	st->bad = load_relaxed(&c->r.bad);
}

void chan_info(const struct chan *c, struct chan_info *info)
{
	memset(info, 0, sizeof(*info));
	info->id = c->id;
	info->nslots = c->nslots;
	info->data_size = c->data_size;
	info->map_size = c->map_size;
	info->peer_pid = c->peer_pid;
	memcpy(info->peer_cell, c->peer_cell, sizeof(info->peer_cell));
}

/* Counters have one writer (their role); others read them relaxed. */
#define STAT_ADD(field, n) store_relaxed(&(field), (field) + (n))

/* ---- peer state ------------------------------------------------------------ */

/* 0 while the peer is there, else the positive errno of its departure. */
static int chan__peer_gone(struct chan *c)
{
	/* Acquire: pairs with the store_release of closed in the peer's
	 * chan_close(): its messages are visible once we see it closed. */
	if (unlikely(load_acquire(&c->st->closed[1 - c->id])))
		return EPIPE;
	if (unlikely(load_relaxed(&c->peer_dead)))
		return ECONNRESET;
	return 0;
}

/* Look at the liveness socket: end of file or an error means the peer
 * process is gone (an orderly close has set its closed flag first). */
static void chan__check_live(struct chan *c)
{
	char b;
	ssize_t n;

	if (c->sock < 0)
		return;
	n = recv(c->sock, &b, 1, MSG_PEEK | MSG_DONTWAIT);
	if (n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK &&
		       errno != EINTR))
		store_relaxed(&c->peer_dead, 1);
}

/* Whether the geometry we validated still holds (the peer could have
 * rewritten it; see "Trust" in chan.h). */
static ALWAYS_INLINE bool chan__geom_ok(const struct chan *c,
					const struct ring_spsc *r)
{
	return likely(load_relaxed(&r->geom.nslots) == c->nslots);
}

/* ---- waiting ------------------------------------------------------------- */

struct chan_waiter {
	uint64_t start;
	uint64_t live_at;
	unsigned spins;
};

/* The vcore loop: in the runtime with no uthread. (Event handlers and
 * timer callbacks run during a uthread's switch look like that uthread;
 * chan.h asks them to pass CHAN_DONTWAIT.) */
static bool in_vcore_context(void)
{
	return !uthread_self() && rt_active();
}

/* Rounds of the tight first stretch of a wait (0: skip it). */
static ALWAYS_INLINE unsigned chan__hot_spins(const struct chan *c, int flags)
{
	if ((flags & CHAN_DONTWAIT) ||
	    load_relaxed(&c->poll_ns) < CHAN_HOT_MIN_POLL_NS ||
	    in_vcore_context())
		return 0;
	return CHAN_HOT_SPINS;
}

/* The tight stretch: while r is -EAGAIN, up to chan__hot_spins() rounds
 * of a pause and r = attempt, inline (see the design note). */
#define CHAN_HOT_WAIT(c, flags, r, attempt)                                  \
	do {                                                                  \
		for (unsigned hot_ = chan__hot_spins((c), (flags));           \
		     hot_ && (r) == -EAGAIN; hot_--) {                        \
			cpu_relax();                                          \
			(r) = (attempt);                                      \
		}                                                             \
	} while (0)

/* One polling step; false once the poll time is used up. */
static bool chan__poll_step(struct chan *c, struct chan_waiter *wt)
{
	uint64_t now;

	if (wt->spins++ == 0) {
		wt->start = wt->live_at = fast_ns();
		return true;
	}
	cpu_relax();
	if (wt->spins & CHAN_POLL_CHECK_MASK)
		return true;
	now = fast_ns();
	if (c->sock >= 0 && now - wt->live_at >= CHAN_LIVE_CHECK_NS) {
		wt->live_at = now;
		chan__check_live(c);
	}
	if (!(wt->spins & CHAN_POLL_YIELD_MASK) && uthread_self())
		uthread_yield();
	return now - wt->start < load_relaxed(&c->poll_ns);
}

/* Whether an allocation of adv bytes (skip included) fits a data buffer
 * of size bytes with used bytes between the reader's head and our tail.
 * The usual bound, used + adv <= size, with one exception: when nothing
 * is unread, any payload fits, also one that must skip the buffer's tail
 * end and start at offset 0 (the skipped bytes are counted, so head and
 * tail may then be up to 2 * size apart; the bound stays conservative
 * until the reader has caught up). Without the exception a payload
 * larger than its start offset could never be written. */
static ALWAYS_INLINE bool chan__data_fits(uint64_t size, uint64_t used,
					  uint64_t adv)
{
	return used == 0 || (used <= size && adv <= size - used);
}

/* Room for a message of len bytes in our out lane, as seen now. */
static bool chan__tx_room(struct chan *c, size_t len)
{
	struct chan_wstate *w = &c->w;
	uint64_t size = c->data_size, used, need, pos, adv;

	if (ring_spsc_count(w->v.ring) >= c->nslots)
		return false;
	if (len <= CHAN_INLINE_MAX)
		return true;
	/* Acquire: pairs with the reader's store_release of data_head. */
	used = w->data_tail - load_acquire(&w->v.lane->rd.data_head);
	if (used > 2 * size)
		return true; /* corrupt: let the write report it */
	need = ALIGN_UP((uint64_t)len, CACHE_LINE);
	pos = w->data_tail & (size - 1);
	adv = need <= size - pos ? need : size - pos + need;
	return chan__data_fits(size, used, adv);
}

/* Wait for room after a write found none. 0: try again; else an error. */
static int chan__tx_wait(struct chan *c, struct chan_waiter *wt, int flags,
			 size_t len)
{
	struct chan_wstate *w = &c->w;
	uint32_t *waiting = &w->v.lane->wr.waiting;
	int err = 0;

	if ((flags & CHAN_DONTWAIT) || in_vcore_context())
		return -EAGAIN;
	if (chan__poll_step(c, wt))
		return 0;
	doorbell_arm(waiting);
	if (!chan__tx_room(c, len) && !chan__peer_gone(c)) {
		STAT_ADD(w->sleeps, 1);
		err = doorbell_sleep(c->wait_tx, c->efd_tx);
		chan__check_live(c);
	}
	doorbell_disarm(waiting);
	wt->spins = 0;
	return err == -EINTR ? 0 : err;
}

/* Wait for a message after a read found none. */
static int chan__rx_wait(struct chan *c, struct chan_waiter *wt, int flags)
{
	struct chan_rstate *r = &c->r;
	uint32_t *waiting = &r->v.lane->rd.waiting;
	int err = 0;

	if ((flags & CHAN_DONTWAIT) || in_vcore_context())
		return -EAGAIN;
	if (chan__poll_step(c, wt))
		return 0;
	doorbell_arm(waiting);
	if (ring_spsc_count(r->v.ring) == 0 && !chan__peer_gone(c)) {
		STAT_ADD(r->sleeps, 1);
		err = doorbell_sleep(c->wait_rx, c->efd_rx);
		chan__check_live(c);
	}
	doorbell_disarm(waiting);
	wt->spins = 0;
	return err == -EINTR ? 0 : err;
}

/* ---- writing --------------------------------------------------------------- */

static ALWAYS_INLINE size_t chan__max_msg(const struct chan *c)
{
	return c->data_size ? c->data_size : CHAN_INLINE_MAX;
}

/* Allocate len (> CHAN_INLINE_MAX) bytes in the out lane's data buffer:
 * 0 with the offset and the bytes it uses (skip included), -EAGAIN when
 * there is no room yet, -EPROTO when the reader published an impossible
 * head. Writer role. */
static int chan__data_alloc(struct chan *c, size_t len, uint64_t *off,
			    uint64_t *adv)
{
	struct chan_wstate *w = &c->w;
	uint64_t size = c->data_size;
	uint64_t need = ALIGN_UP((uint64_t)len, CACHE_LINE);
	uint64_t pos = w->data_tail & (size - 1);
	uint64_t used = w->data_tail - w->data_head_cache;

	if (need <= size - pos) {
		*off = pos;
		*adv = need;
	} else {
		*off = 0;
		*adv = size - pos + need;
	}
	if (!chan__data_fits(size, used, *adv)) {
		/* Acquire: pairs with the reader's store_release of
		 * data_head in chan__rx_release(): it has copied those
		 * payloads out before we overwrite them. */
		w->data_head_cache = load_acquire(&w->v.lane->rd.data_head);
		used = w->data_tail - w->data_head_cache;
		if (used > 2 * size)
			return -EPROTO; /* a head ahead of our tail, or lost */
		if (!chan__data_fits(size, used, *adv))
			return -EAGAIN;
	}
	return 0;
}

/* Fill slot s with the message; -EAGAIN / -EPROTO from the data buffer
 * (s is then untouched). Writer role. */
static ALWAYS_INLINE int chan__fill(struct chan *c, struct ring_slot *s,
				    const void *buf, size_t len)
{
	struct chan_slot *cs = (struct chan_slot *)(void *)s;
	struct chan_wstate *w = &c->w;
	uint64_t off, adv;
	int err;

	if (len <= CHAN_INLINE_MAX) {
		cs->len = (uint32_t)len;
		cs->kind = CHAN_KIND_INLINE;
		cs->reserved = 0;
		memcpy(cs->u.inline_data, buf, len);
		return 0;
	}
	err = chan__data_alloc(c, len, &off, &adv);
	if (err)
		return err;
	memcpy(w->v.data + off, buf, len);
	cs->len = (uint32_t)len;
	cs->kind = CHAN_KIND_REF;
	cs->reserved = 0;
	cs->u.off = off;
	w->data_tail += adv;
	/* Informative only (readers of the region, debugging). */
	store_relaxed(&w->v.lane->wr.data_tail, w->data_tail);
	return 0;
}

/* Publish what the slots' fill made ready and wake a sleeping reader. */
static ALWAYS_INLINE void chan__tx_publish(struct chan *c, unsigned k)
{
	struct chan_wstate *w = &c->w;

	/* ring_spsc_commit's store-release of tail pairs with the reader's
	 * load-acquire in ring_spsc_peek(): slots and payloads first. */
	ring_spsc_commit(w->v.ring, k);
	STAT_ADD(w->sent, k);
	if (doorbell_ring(&w->v.lane->rd.waiting, c->efd_peer_rx))
		STAT_ADD(w->bells, 1);
}

/* One attempt: len bytes, or -EAGAIN / -EPIPE / -ECONNRESET / -EPROTO. */
static ALWAYS_INLINE ssize_t chan__try_write(struct chan *c, const void *buf,
					     size_t len)
{
	struct chan_wstate *w = &c->w;
	struct ring_slot *s;
	unsigned n = 1;
	int gone, err;

	gone = chan__peer_gone(c);
	if (unlikely(gone))
		return -gone;
	if (unlikely(!chan__geom_ok(c, w->v.ring)))
		return -EPROTO;
	s = ring_spsc_reserve(w->v.ring, &n);
	if (unlikely(!s))
		return -EAGAIN;
	err = chan__fill(c, s, buf, len);
	if (unlikely(err))
		return err;
	chan__tx_publish(c, 1);
	return (ssize_t)len;
}

ssize_t chan_write(struct chan *c, const void *buf, size_t len, int flags)
{
	struct chan_waiter wt = { 0 };
	ssize_t r;

	if (unlikely(!c || (!buf && len) || len > chan__max_msg(c)))
		return !c || (!buf && len) ? -EINVAL : -EMSGSIZE;
	r = chan__try_write(c, buf, len);
	if (likely(r != -EAGAIN))
		return r;
	STAT_ADD(c->w.full, 1); /* once per wait */
	CHAN_HOT_WAIT(c, flags, r, chan__try_write(c, buf, len));
	while (r == -EAGAIN) {
		r = chan__tx_wait(c, &wt, flags, len);
		if (r)
			return r;
		r = chan__try_write(c, buf, len);
	}
	return r;
}

/* One attempt at a batch: how many went out (> 0), or -EAGAIN, -EPIPE,
 * -ECONNRESET, -EPROTO when none did. */
static ALWAYS_INLINE int chan__try_write_batch(struct chan *c,
						 const struct iovec *msgs,
						 unsigned n)
{
	struct chan_wstate *w = &c->w;
	unsigned total = 0;
	int gone, err = 0;

	gone = chan__peer_gone(c);
	if (unlikely(gone))
		return -gone;
	if (unlikely(!chan__geom_ok(c, w->v.ring)))
		return -EPROTO;
	while (total < n && !err) {
		unsigned want = n - total, k;
		struct ring_slot *s = ring_spsc_reserve(w->v.ring, &want);

		if (!s)
			break;
		for (k = 0; k < want; k++) {
			const struct iovec *m = &msgs[total + k];

			err = chan__fill(c, &s[k], m->iov_base, m->iov_len);
			if (err)
				break;
		}
		if (k) {
			ring_spsc_commit(w->v.ring, k);
			total += k;
		}
		if (k < want)
			break;
	}
	if (total) {
		STAT_ADD(w->sent, total);
		if (doorbell_ring(&w->v.lane->rd.waiting, c->efd_peer_rx))
			STAT_ADD(w->bells, 1);
		return (int)total;
	}
	return err ? err : -EAGAIN;
}

int chan_write_batch(struct chan *c, const struct iovec *msgs, unsigned n,
		     int flags)
{
	struct chan_waiter wt = { 0 };
	unsigned done = 0;

	if (!c || (!msgs && n) || n > INT32_MAX)
		return -EINVAL;
	for (unsigned i = 0; i < n; i++) {
		if (!msgs[i].iov_base && msgs[i].iov_len)
			return -EINVAL;
		if (msgs[i].iov_len > chan__max_msg(c))
			return -EMSGSIZE;
	}
	while (done < n) {
		int k = chan__try_write_batch(c, msgs + done, n - done);

		if (k == -EAGAIN && wt.spins == 0) {
			STAT_ADD(c->w.full, 1); /* once per wait */
			CHAN_HOT_WAIT(c, flags, k, chan__try_write_batch(c,
					msgs + done, n - done));
		}
		if (k > 0) {
			done += (unsigned)k;
			wt.spins = 0;
			if (flags & CHAN_DONTWAIT)
				break;
			continue;
		}
		if (k == -EAGAIN)
			k = chan__tx_wait(c, &wt, flags, msgs[done].iov_len);
		if (k)
			return done ? (int)done : k;
	}
	return (int)done;
}

/* ---- reading ---------------------------------------------------------------- */

/* Check the slot at the reader's head: 0 with the payload, its length and
 * the data-buffer bytes consuming it releases, or -EBADMSG. Every field
 * is loaded once (atomically, so the compiler cannot load it again after
 * the check). Reader role. */
static ALWAYS_INLINE int chan__parse(struct chan *c,
				     const struct ring_slot *s,
				     const void **payload, uint32_t *lenp,
				     uint64_t *advp)
{
	const struct chan_slot *cs = (const struct chan_slot *)(const void *)s;
	uint32_t len = load_relaxed(&cs->len);
	uint16_t kind = load_relaxed(&cs->kind);
	uint64_t size = c->data_size, off, need, pos, room;

	if (unlikely(load_relaxed(&cs->reserved)))
		return -EBADMSG;
	if (likely(kind == CHAN_KIND_INLINE)) {
		if (unlikely(len > CHAN_INLINE_MAX))
			return -EBADMSG;
		*payload = cs->u.inline_data;
		*lenp = len;
		*advp = 0;
		return 0;
	}
	if (kind != CHAN_KIND_REF || !size || len == 0 || len > size)
		return -EBADMSG;
	off = load_relaxed(&cs->u.off);
	need = ALIGN_UP((uint64_t)len, CACHE_LINE);
	pos = c->r.data_head & (size - 1);
	room = size - pos;
	if (off == pos && need <= room)
		*advp = need;
	else if (off == 0 && need > room)
		*advp = room + need;
	else
		return -EBADMSG;
	*payload = c->r.v.data + off;
	*lenp = len;
	return 0;
}

/* Free k slots (and adv data-buffer bytes, already added to data_head)
 * and wake a writer sleeping for room. Reader role. */
static ALWAYS_INLINE void chan__rx_release(struct chan *c, unsigned k,
					   bool data_moved)
{
	struct chan_rstate *r = &c->r;

	/* ring_spsc_release's store-release of head pairs with the
	 * writer's load-acquire in ring_spsc_reserve(): our copy-out of
	 * the slots is done before they are reused. */
	ring_spsc_release(r->v.ring, k);
	if (data_moved)
		/* Release: pairs with the writer's load_acquire of
		 * data_head in chan__data_alloc() / chan__tx_room(). */
		store_release(&r->v.lane->rd.data_head, r->data_head);
	if (doorbell_ring(&r->v.lane->wr.waiting, c->efd_peer_tx))
		STAT_ADD(r->bells, 1);
}

/* Drop a malformed message at the head. */
static void chan__rx_drop_bad(struct chan *c)
{
	STAT_ADD(c->r.bad, 1);
	chan__rx_release(c, 1, false);
}

static ALWAYS_INLINE ssize_t chan__try_read(struct chan *c, void *buf,
					    size_t cap)
{
	struct chan_rstate *r = &c->r;
	const struct ring_slot *s;
	const void *p;
	uint32_t len;
	uint64_t adv;
	unsigned n = 1;

	if (unlikely(r->zc_pending))
		return -EBUSY;
	if (unlikely(!chan__geom_ok(c, r->v.ring)))
		return -EPROTO;
	s = ring_spsc_peek(r->v.ring, &n);
	if (!s)
		return -EAGAIN;
	if (unlikely(chan__parse(c, s, &p, &len, &adv))) {
		chan__rx_drop_bad(c);
		return -EBADMSG;
	}
	if (unlikely(len > cap))
		return -EMSGSIZE;
	memcpy(buf, p, len);
	r->data_head += adv;
	STAT_ADD(r->received, 1);
	chan__rx_release(c, 1, adv != 0);
	return len;
}

/* After an attempt found nothing: the error to return if the peer has
 * left (after one more attempt, since messages it sent before leaving
 * count), else 0 to wait. */
#define CHAN_RX_GONE_CHECK(c, retry)                                         \
	do {                                                                 \
		int gone_ = chan__peer_gone(c);                              \
		if (unlikely(gone_)) {                                       \
			ssize_t again_ = (retry);                            \
			return again_ != -EAGAIN ? again_ : -gone_;          \
		}                                                            \
	} while (0)

/* The receive side's wait, once attempt gave -EAGAIN: spin hot, then
 * check the peer, sleep on the doorbell and retry until attempt gives
 * anything else, which is returned (as is a wait's error). */
#define CHAN_RX_WAIT_FOR(c, flags, r, attempt)                               \
	do {                                                                 \
		struct chan_waiter wt_ = { 0 };                              \
		int werr_;                                                   \
		CHAN_HOT_WAIT(c, flags, r, attempt);                         \
		while ((r) == -EAGAIN) {                                     \
			CHAN_RX_GONE_CHECK(c, attempt);                      \
			werr_ = chan__rx_wait(c, &wt_, flags);               \
			if (werr_)                                           \
				return werr_;                                \
			(r) = (attempt);                                     \
		}                                                            \
		return (r);                                                  \
	} while (0)

ssize_t chan_read(struct chan *c, void *buf, size_t cap, int flags)
{
	ssize_t r;

	if (unlikely(!c || (!buf && cap)))
		return -EINVAL;
	r = chan__try_read(c, buf, cap);
	if (likely(r != -EAGAIN))
		return r;
	CHAN_RX_WAIT_FOR(c, flags, r, chan__try_read(c, buf, cap));
}

static ALWAYS_INLINE int chan__try_read_batch(struct chan *c,
						struct iovec *msgs, unsigned n)
{
	struct chan_rstate *r = &c->r;
	unsigned got = 0;
	int err = 0;

	if (unlikely(r->zc_pending))
		return -EBUSY;
	if (unlikely(!chan__geom_ok(c, r->v.ring)))
		return -EPROTO;
	while (got < n && !err) {
		unsigned want = n - got, k;
		const struct ring_slot *s = ring_spsc_peek(r->v.ring, &want);
		bool moved = false;

		if (!s)
			break;
		for (k = 0; k < want; k++) {
			struct iovec *m = &msgs[got + k];
			const void *p;
			uint32_t len;
			uint64_t adv;

			if (chan__parse(c, &s[k], &p, &len, &adv)) {
				err = -EBADMSG;
				break;
			}
			if (len > m->iov_len) {
				err = -EMSGSIZE;
				break;
			}
			memcpy(m->iov_base, p, len);
			m->iov_len = len;
			r->data_head += adv;
			moved |= adv != 0;
		}
		if (k) {
			got += k;
			chan__rx_release(c, k, moved);
		}
		if (k < want)
			break;
	}
	if (got) {
		STAT_ADD(r->received, got);
		return (int)got;
	}
	if (err == -EBADMSG)
		chan__rx_drop_bad(c);
	return err ? err : -EAGAIN;
}

int chan_read_batch(struct chan *c, struct iovec *msgs, unsigned n,
		    int flags)
{
	int r;

	if (!c || !msgs || n == 0 || n > INT32_MAX)
		return -EINVAL;
	r = chan__try_read_batch(c, msgs, n);
	if (likely(r != -EAGAIN))
		return r;
	CHAN_RX_WAIT_FOR(c, flags, r, chan__try_read_batch(c, msgs, n));
}

static ssize_t chan__try_peek(struct chan *c, const void **payload)
{
	struct chan_rstate *r = &c->r;
	const struct ring_slot *s;
	uint32_t len;
	uint64_t adv;
	unsigned n = 1;

	if (!chan__geom_ok(c, r->v.ring))
		return -EPROTO;
	s = ring_spsc_peek(r->v.ring, &n);
	if (!s)
		return -EAGAIN;
	if (chan__parse(c, s, payload, &len, &adv)) {
		chan__rx_drop_bad(c);
		return -EBADMSG;
	}
	r->zc_pending = true;
	r->zc_adv = adv;
	return len;
}

ssize_t chan_peek(struct chan *c, const void **payload, int flags)
{
	ssize_t r;

	if (!c || !payload)
		return -EINVAL;
	if (c->r.zc_pending) {
		/* The same message again (re-parsed: still at the head). */
		c->r.zc_pending = false;
		return chan__try_peek(c, payload);
	}
	r = chan__try_peek(c, payload);
	CHAN_RX_WAIT_FOR(c, flags, r, chan__try_peek(c, payload));
}

int chan_consume(struct chan *c)
{
	struct chan_rstate *r;

	if (!c || !c->r.zc_pending)
		return -EINVAL;
	r = &c->r;
	r->zc_pending = false;
	r->data_head += r->zc_adv;
	STAT_ADD(r->received, 1);
	chan__rx_release(c, 1, r->zc_adv != 0);
	return 0;
}

/* ---- map / unmap ------------------------------------------------------------ */

int chan_map(struct chan *c, void **addr, size_t *size)
{
	void *p;

	if (!c || !addr)
		return -EINVAL;
	if (!c->map_size)
		return -ENODEV;
	if (!c->map_addr) {
		p = mmap(NULL, c->map_size, PROT_READ | PROT_WRITE, MAP_SHARED,
			 c->memfd, (off_t)c->map_off);
		if (p == MAP_FAILED)
			return -errno;
		c->map_addr = p;
	}
	*addr = c->map_addr;
	if (size)
		*size = c->map_size;
	return 0;
}

int chan_unmap(struct chan *c)
{
	if (!c || !c->map_addr)
		return -EINVAL;
	munmap(c->map_addr, c->map_size);
	c->map_addr = NULL;
	return 0;
}
