/* internal.h - private declarations of src/msg: the doorbell helper
 * (shared by channels and anything else that sleeps on a shared word plus
 * an eventfd) and the endpoint structure chan.c and chan_open.c share.
 *
 * The map of src/msg:
 *   chan.c       channels: endpoints, lanes, read/write, waiting, map
 *   chan_open.c  the RFcom rendezvous: listen, accept, open, the
 *                supervisor hook
 */
#ifndef ATOLL_MSG_INTERNAL_H
#define ATOLL_MSG_INTERNAL_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include <atoll/atomic.h>
#include <atoll/chan.h>
#include <atoll/compiler.h>

/* ---- doorbells ------------------------------------------------------------
 *
 * A doorbell is a 32-bit "waiting" word in (possibly shared) memory and an
 * eventfd (EFD_NONBLOCK). The protocol is the classic store-fence-load
 * handshake, so a sleeper and a publisher can never both miss each other:
 *
 *   sleeper: doorbell_arm(w)     = store w = 1; full fence
 *            re-check its condition (ring non-empty, room, peer closed);
 *            if still false: doorbell_sleep(); then store w = 0
 *   waker:   publish (ring store-release); doorbell_ring(w, efd)
 *                                = full fence; if w: xchg(w, 0) == 1 ->
 *                                  write(efd, 1)
 *
 * Either the sleeper's re-check sees the publication, or the waker's load
 * sees w == 1 (both fences are seq_cst). The exchange makes one sleep cost
 * at most one eventfd write however many publications race with it. A
 * stale eventfd count only causes one spurious wake-up (the sleeper loops
 * and re-checks), never a missed one. One sleeper per eventfd: two
 * sleepers sharing one could drain each other's wake-up.
 *
 * Context: doorbell_ring/kick/arm from any context (no blocking);
 * doorbell_sleep from uthread context or a plain thread, never from vcore
 * context.
 */

/* Announce a sleeper on w. */
static inline void doorbell_arm(uint32_t *w)
{
	store_relaxed(w, 1);
	/* Full fence: orders the store of w before the caller's re-check of
	 * its condition; pairs with the fence in doorbell_ring(). */
	fence_seq_cst();
}

static inline void doorbell_disarm(uint32_t *w)
{
	store_relaxed(w, 0);
}

/* Write the eventfd unconditionally. Returns true if it was written. */
bool doorbell_kick(int efd);

/* After publishing: wake the sleeper announced on w, if any. Returns true
 * if the eventfd was written. */
static inline bool doorbell_ring(uint32_t *w, int efd)
{
	/* Full fence: orders the caller's publication (a store-release of
	 * a ring index) before the load of w; pairs with the fence in
	 * doorbell_arm(). */
	fence_seq_cst();
	if (likely(!load_relaxed(w)))
		return false;
	/* Acq_rel exchange: only one waker takes the 1, so the sleeper is
	 * woken once; pairs with the sleeper's store in doorbell_arm(). */
	if (!xchg_acq_rel(w, 0))
		return false;
	return doorbell_kick(efd);
}

/* Sleep until wait_fd is readable (wait_fd is the eventfd itself, or an
 * epoll set holding it), then reset efd's count. A uthread blocks through
 * its vcore's io_uring; a plain thread in poll(2). Returns 0 or a
 * negative errno from poll. */
int doorbell_sleep(int wait_fd, int efd);

/* ---- endpoints -------------------------------------------------------------
 *
 * A lane as one endpoint sees it. Pointers into this process's mapping;
 * the geometry is the private copy validated at open.
 */
struct chan_lane_view {
	struct chan_lane *lane;
	struct ring_spsc *ring;
	unsigned char *data;
};

/* Writer-role state (this endpoint's out lane). Only the writer touches
 * it, except the counters others read relaxed. */
struct chan_wstate {
	struct chan_lane_view v;
	uint64_t data_tail;        /* payload bytes allocated, free-running */
	uint64_t data_head_cache;  /* our copy of v.lane->rd.data_head */
	uint64_t sent, full, sleeps, bells;
	int err;                   /* a sticky error to report next call */
} CACHE_ALIGNED;

/* Reader-role state (this endpoint's in lane). */
struct chan_rstate {
	struct chan_lane_view v;
	uint64_t data_head;        /* payload bytes released, free-running */
	bool zc_pending;           /* chan_peek'ed, not consumed */
	uint64_t zc_adv;           /* what consuming it adds to data_head */
	uint64_t received, sleeps, bells, bad;
} CACHE_ALIGNED;

struct chan {
	struct chan_wstate w;
	struct chan_rstate r;

	/* Set at creation, read-only after. */
	unsigned id;                 /* 0 or 1 */
	unsigned char *base;         /* our mapping of the lanes part */
	size_t base_len;
	struct chan_region_state *st;
	uint32_t nslots;             /* validated geometry */
	uint32_t data_size;
	uint64_t map_off, map_size;
	int memfd;
	int sock;                    /* liveness link, or -1 */
	int efd_rx;                  /* ours: a message or a close arrived */
	int efd_tx;                  /* ours: room appeared or a close */
	int efd_peer_rx;             /* the peer's, rung after we write */
	int efd_peer_tx;             /* the peer's, rung after we read */
	int wait_rx;                 /* what the reader polls: efd_rx or an epoll */
	int wait_tx;
	pid_t peer_pid;
	char peer_cell[CHAN_NAME_MAX + 1];

	/* Either role. */
	uint64_t poll_ns;            /* relaxed */
	uint32_t peer_dead;          /* 1 once the peer died; relaxed */
	uint64_t live_check_ns;      /* last socket check (reader's) */

	/* chan_map / chan_unmap (not concurrent with each other). */
	void *map_addr;
};

/* Layout of a region with these parameters (data_size 0 = none,
 * map_size already page-rounded). Fills every header field but magic and
 * version. Returns 0 or -EINVAL when the sizes overflow the limits. */
int chan__layout(struct chan_region_hdr *h, uint32_t nslots,
		 uint32_t data_size, uint64_t map_size);

/* Resolve cfg's defaults and check it; *map_size is page-rounded. */
int chan__config(const struct chan_config *cfg, uint32_t *nslots,
		 uint32_t *data_size, uint64_t *map_size, uint64_t *poll_ns);

/* Create a sealed memfd holding an initialised region; returns the fd
 * (>= 0) or a negative errno. */
int chan__region_create(const struct chan_region_hdr *layout);

/* Build endpoint `id` over memfd (of total_size bytes, already checked to
 * hold a valid region when it comes from a peer: see
 * chan__region_check), with efds[4] = lane 0 message, lane 0 room, lane 1
 * message, lane 1 room bells and liveness socket sock (or -1). Takes
 * ownership of every descriptor passed, also on failure. Returns 0 and
 * *out, or a negative errno. */
int chan__endpoint(struct chan **out, unsigned id, int memfd,
		   const int efds[4], int sock, uint64_t poll_ns);

/* Check that memfd holds a region this version can use: sealed against
 * shrinking and growing, total_size bytes, and every header field as
 * chan__layout computes it, both rings attachable. Returns 0 or -EPROTO
 * / -EBADF with a sentence in reason. */
int chan__region_check(int memfd, uint64_t total_size, char *reason,
		       size_t reason_len);

/* Whether fd is an eventfd (false only when we know it is not). */
bool chan__is_eventfd(int fd);

#endif /* ATOLL_MSG_INTERNAL_H */
