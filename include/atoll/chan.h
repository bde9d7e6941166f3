/* chan.h - channels: rings of cache-line message slots in memory that may
 * be shared between processes (fos's user-space channels, URPC style), and
 * RainForest's RFcom interface between cells (open, close, read, write,
 * map, unmap).
 *
 * Owns: each endpoint (struct chan, process-private) and, with the other
 * endpoint, the channel's shared region (a sealed memfd, mapped
 * MAP_SHARED), its four eventfd doorbells and, for channels between
 * processes, the UNIX socket that links the two endpoints.
 *
 * A channel has two endpoints and two one-way *lanes*: lane 0 carries
 * messages from endpoint 0 to endpoint 1, lane 1 the other way. Each lane
 * is a ring_spsc (ring.h) of 64-byte slots plus an optional data buffer
 * for payloads that do not fit in a slot. A one-way user simply writes on
 * one endpoint and reads on the other. Endpoints come from chan_pair()
 * (both ends, in this process) or from the RFcom rendezvous: one cell
 * calls chan_listen() + chan_accept(), the other chan_open(peer).
 *
 * Messages. A message is 0 .. CHAN_INLINE_MAX (56) bytes, carried inline
 * in its slot, or larger, up to the lane's data buffer size, carried by
 * reference: the writer copies the payload into the shared data buffer
 * and the slot holds its offset. The reader copies it out (chan_read) or
 * reads it in place (chan_peek, then chan_consume). Messages of one lane
 * arrive in order, each exactly once.
 *
 * Waiting. A reader with nothing to read, or a writer with no room, first
 * polls: a tight loop of up to 256 pause-and-retry rounds (a few
 * microseconds; skipped when poll_ns is below 10 us), then for poll_ns
 * more (chan_config.poll_ns, default CHAN_DEFAULT_POLL_NS; in a uthread
 * it yields to other runnable uthreads every 64 rounds), then it sleeps on
 * its eventfd doorbell:
 *  - a uthread blocks through sys_poll(): its vcore's io_uring polls the
 *    doorbell and the vcore runs other uthreads (or parks) meanwhile;
 *  - a plain thread (outside the runtime) blocks in poll(2).
 * The other side rings the doorbell (one eventfd write) only when the
 * sleeper announced itself in the lane's shared "waiting" word, so while
 * both sides are busy no system call is made. The fast path takes no
 * lock: one ring push or pop, one full fence, one load of the waiting word.
 *
 * Errors (negative errno; errno itself is never set):
 *   -EAGAIN      CHAN_DONTWAIT (or vcore context) and nothing to read / no
 *                room to write
 *   -EPIPE       the peer closed the channel with chan_close(). A reader
 *                gets it only after reading every message sent before the
 *                close; a writer at once (the message is not sent).
 *   -ECONNRESET  the peer's process died (or dropped its endpoint without
 *                chan_close()). As -EPIPE: a reader first gets every
 *                message that was completely written.
 *   -EMSGSIZE    write: the payload is larger than the lane's data buffer
 *                (or than CHAN_INLINE_MAX when it has none); read: the
 *                next message does not fit the caller's buffer (it stays
 *                queued; chan_peek() tells its length)
 *   -EBADMSG     read: the next message was malformed (bad kind, a length
 *                larger than its slot or the data buffer, a reference
 *                outside the buffer or not where the next payload must
 *                be). It is dropped and counted; later messages can still
 *                be read.
 *   -EPROTO      the shared region is corrupt (the peer overwrote the
 *                ring geometry or published an impossible buffer index);
 *                the channel is unusable, close it
 *   -EINVAL      bad argument or configuration
 *   -EBUSY       chan_read while a chan_peek is not yet consumed
 *   -EACCES      chan_open/chan_accept: the supervisor refused the channel
 *                (a cell does not allow the other, $ATOLL_CELL unset, or
 *                atolld at $ATOLL_SOCKET did not answer)
 *   -ENOENT, -ECONNREFUSED  chan_open: nobody listens under that name
 *   -ETIMEDOUT   chan_open/chan_accept: the other side did not complete
 *                the handshake within CHAN_OPEN_TIMEOUT_MS
 *
 * Peer death (cross-process): each endpoint of a channel from chan_open()
 * holds one end of a UNIX socket connecting the two processes. The kernel
 * closes it when the process dies, which the survivor sees as end-of-file:
 * a sleeping survivor waits on an epoll set holding its doorbell AND the
 * socket, so it wakes at once; a polling survivor checks the socket once
 * per millisecond of polling. The shared "closed" flags tell an orderly
 * chan_close() (-EPIPE) from death (-ECONNRESET). Endpoints of chan_pair()
 * have no socket: they are meant for one process (see chan_pair()).
 *
 * Thread safety: per endpoint, at most one reader (chan_read*, chan_peek,
 * chan_consume) and at most one writer (chan_write*) at a time; they may
 * run concurrently with each other (different uthreads, threads or
 * processes). Several readers or writers of one endpoint must serialise
 * themselves (e.g. a uth_mutex). chan_close() and chan_forget() must not
 * run concurrently with any other call on that endpoint; the peer may be
 * doing anything. chan_stats(), chan_info() any time.
 *
 * Calling context: every function works in uthread context and on a plain
 * thread outside the runtime. In the vcore loop (rt_active() and no
 * current uthread) the read/write functions never block: they act as with
 * CHAN_DONTWAIT. Event handlers and timer callbacks must pass
 * CHAN_DONTWAIT themselves: they may run while a uthread is switching
 * away, where uthread_self() still names that uthread and the runtime
 * offers no way to tell (a blocking call there would block the uthread
 * from inside the handler). Opening, accepting and closing may block
 * briefly (system calls; the handshake runs on an offload thread when
 * called from a uthread).
 *
 * Trust: a peer is another cell, so everything read from the shared region
 * is checked before use; a malformed message is an error, never a crash.
 * One gap remains, in ring.h: its inline functions read the ring's slot
 * count from shared memory on every call. chan checks it against the count
 * validated at open before each operation, but a peer that rewrites it
 * between that check and ring.h's use could make this process read or
 * write outside the ring. Closing that gap needs a ring_spsc variant that
 * takes the count from the caller.
 *
 * ---- Shared region layout (version CHAN_VERSION) --------------------------
 * All integers native-endian; offsets in bytes from the start of the memfd;
 * no pointers anywhere. The creator (chan_pair, or the opener) initialises
 * everything before the other side maps it; the acceptor checks every
 * field below against the layout it computes itself from nslots,
 * data_size and map_size, and refuses the channel on any difference.
 *
 *      0  struct chan_region_hdr (64 bytes, read-only after creation)
 *           u32 magic      CHAN_MAGIC
 *           u16 version    CHAN_VERSION
 *           u16 hdr_size   64
 *           u32 nslots     slots per lane (power of two)
 *           u32 data_size  data buffer bytes per lane (0 or a power of two)
 *           u64 lane_off[2]  offset of lane 0 and lane 1
 *           u64 lane_size  bytes per lane
 *           u64 map_off    offset of the chan_map() area (page aligned)
 *           u64 map_size   its size (0 = none; a multiple of the page size)
 *           u64 total_size size of the memfd
 *     64  struct chan_region_state (64 bytes)
 *           u32 closed[2]  endpoint i called chan_close(): 0 -> 1, once
 *           u32 pid[2]     process id of endpoint i (informative)
 *    128  lane 0, then lane 1 at 128 + lane_size. A lane:
 *           +0    struct chan_lane_wr (64 bytes, written by the writer)
 *                   u32 waiting    1: the writer sleeps for room
 *                   u32 reserved
 *                   u64 data_tail  payload bytes allocated (informative)
 *           +64   struct chan_lane_rd (64 bytes, written by the reader)
 *                   u32 waiting    1: the reader sleeps for a message
 *                   u32 reserved
 *                   u64 data_head  payload bytes released by the reader
 *           +128  struct ring_spsc of nslots slots (ring.h's layout),
 *                 ring_spsc_size(nslots) bytes
 *           +128 + ring_spsc_size(nslots)   data buffer, data_size bytes
 *         lane_size = 128 + ring_spsc_size(nslots) + data_size
 *    map_off = 128 + 2 * lane_size rounded up to the page size
 *    total_size = map_off + map_size
 *
 * A slot (64 bytes, struct chan_slot):
 *      0  u32 len      payload bytes
 *      4  u16 kind     CHAN_KIND_INLINE (1) or CHAN_KIND_REF (2)
 *      6  u16 reserved 0
 *      8  INLINE: len <= 56 payload bytes
 *         REF:    u64 off, the payload's offset in the lane's data buffer
 * Data buffer: a byte ring of data_size bytes. The writer allocates each
 * payload at the next 64-byte aligned position (free-running counter
 * data_tail, position data_tail mod data_size); a payload that would cross
 * the end starts at offset 0 instead, the skipped tail counting as used
 * (data_tail advances by the skip plus the payload). The reader recomputes
 * that position itself and rejects any other offset. It releases a
 * payload when it has read it (data_head += the same amount,
 * store-release). The writer allocates while data_tail - data_head plus
 * the new amount stays within data_size, or at any time when nothing is
 * unread (data_head == data_tail); so data_tail - data_head never exceeds
 * 2 * data_size, and a larger distance is corruption (-EPROTO).
 *
 * Doorbells: four eventfds, lane L's "message" bell (rung by L's writer
 * when L's rd.waiting was 1) and "room" bell (rung by L's reader when L's
 * wr.waiting was 1). The waker clears the waiting word with an exchange,
 * so one sleep costs at most one eventfd write. chan_close() rings both of
 * the peer's bells unconditionally.
 *
 * ---- Rendezvous (chan_open / chan_accept) -------------------------------
 * A listener binds a SOCK_SEQPACKET UNIX socket at the rendezvous path of
 * its name (chan_rendezvous_path()). The opener creates the region and the
 * eventfds, connects, and sends one struct chan_open_req with SCM_RIGHTS
 * carrying, in order: the memfd, lane 0 message bell, lane 0 room bell,
 * lane 1 message bell, lane 1 room bell. The opener is endpoint 0. The
 * acceptor validates the request, the descriptors (a memfd sealed against
 * shrinking and growing, of total_size bytes; eventfds) and the region,
 * asks the supervisor hook, and answers with one struct chan_open_rep. The
 * connection then stays open as the liveness link; nothing more is sent
 * on it.
 */
#ifndef ATOLL_CHAN_H
#define ATOLL_CHAN_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <sys/uio.h>

#include <atoll/compiler.h>
#include <atoll/ring.h>

#define CHAN_SLOT_SIZE RING_SPSC_MSG_SIZE	/* 64 */
#define CHAN_INLINE_MAX (CHAN_SLOT_SIZE - 8)	/* 56 */

#define CHAN_DEFAULT_SLOTS 256u
#define CHAN_MAX_SLOTS (1u << 20)
#define CHAN_DEFAULT_DATA (256u * 1024u)
#define CHAN_MIN_DATA 4096u
#define CHAN_MAX_DATA (1u << 30)
#define CHAN_NO_DATA UINT32_MAX		/* chan_config.data_size: none */
#define CHAN_MAX_MAP (1ull << 30)
#define CHAN_DEFAULT_POLL_NS 20000ull	/* 20 us */
#define CHAN_POLL_FOREVER UINT64_MAX	/* chan_config.poll_ns: never sleep */
#define CHAN_OPEN_TIMEOUT_MS 5000
#define CHAN_NAME_MAX 64		/* cell and listener names */

/* Flags of the read and write functions. */
#define CHAN_DONTWAIT 0x1		/* never wait: -EAGAIN instead */

#define CHAN_MAGIC 0x68437441u		/* "AtCh" */
#define CHAN_VERSION 1
#define CHAN_KIND_INLINE 1
#define CHAN_KIND_REF 2

/* ---- shared layout (see the top of this file) ---------------------------- */

struct chan_region_hdr {
	uint32_t magic;
	uint16_t version;
	uint16_t hdr_size;
	uint32_t nslots;
	uint32_t data_size;
	uint64_t lane_off[2];
	uint64_t lane_size;
	uint64_t map_off;
	uint64_t map_size;
	uint64_t total_size;
} CACHE_ALIGNED;

struct chan_region_state {
	uint32_t closed[2];
	uint32_t pid[2];
} CACHE_ALIGNED;

struct chan_lane_wr {
	uint32_t waiting;
	uint32_t reserved;
	uint64_t data_tail;
} CACHE_ALIGNED;

struct chan_lane_rd {
	uint32_t waiting;
	uint32_t reserved;
	uint64_t data_head;
} CACHE_ALIGNED;

/* The head of a lane; the ring follows at CHAN_LANE_RING_OFF. */
struct chan_lane {
	struct chan_lane_wr wr;
	struct chan_lane_rd rd;
};

struct chan_slot {
	uint32_t len;
	uint16_t kind;
	uint16_t reserved;
	union {
		unsigned char inline_data[CHAN_INLINE_MAX];
		uint64_t off;
	} u;
};

#define CHAN_REGION_LANES_OFF 128u
#define CHAN_LANE_RING_OFF 128u

BUILD_ASSERT(sizeof(struct chan_region_hdr) == 64);
BUILD_ASSERT(sizeof(struct chan_region_state) == 64);
BUILD_ASSERT(sizeof(struct chan_lane) == CHAN_LANE_RING_OFF);
BUILD_ASSERT(sizeof(struct chan_slot) == CHAN_SLOT_SIZE);
BUILD_ASSERT(offsetof(struct chan_slot, u) == 8);

/* Rendezvous wire format: one datagram each way. */
#define CHAN_OPEN_MAGIC 0x6f437441u	/* "AtCo" */
#define CHAN_OPEN_NFDS 5
#define CHAN_REASON_MAX 160

struct chan_open_req {
	uint32_t magic;			/* CHAN_OPEN_MAGIC */
	uint16_t version;		/* CHAN_VERSION */
	uint16_t size;			/* sizeof(struct chan_open_req) */
	uint64_t region_size;		/* == the header's total_size */
	char from_cell[CHAN_NAME_MAX + 1];	/* the opener's cell */
	char to_name[CHAN_NAME_MAX + 1];	/* the name it asked for */
	uint16_t reserved;
};

struct chan_open_rep {
	uint32_t magic;			/* CHAN_OPEN_MAGIC */
	uint16_t version;
	uint16_t size;			/* sizeof(struct chan_open_rep) */
	int32_t status;			/* 0, or a negative errno */
	char cell[CHAN_NAME_MAX + 1];	/* the acceptor's cell */
	char reason[CHAN_REASON_MAX];	/* a sentence when status < 0 */
};

/* ---- API ----------------------------------------------------------------- */

struct chan;
struct chan_listener;

struct chan_config {
	/* Slots per lane: a power of two in [2, CHAN_MAX_SLOTS]; 0 =
	 * CHAN_DEFAULT_SLOTS. */
	uint32_t nslots;
	/* Data buffer per lane for payloads above CHAN_INLINE_MAX: a power
	 * of two in [CHAN_MIN_DATA, CHAN_MAX_DATA]; 0 = CHAN_DEFAULT_DATA;
	 * CHAN_NO_DATA = none (inline messages only). */
	uint32_t data_size;
	/* Size of the region chan_map() shares (0 = none), rounded up to
	 * the page size; at most CHAN_MAX_MAP. */
	uint64_t map_size;
	/* How long a reader or writer polls before sleeping on its
	 * doorbell; 0 = CHAN_DEFAULT_POLL_NS, CHAN_POLL_FOREVER = never
	 * sleep. Process-local: each endpoint has its own (chan_set_poll_ns). */
	uint64_t poll_ns;
};

/* Counters of one endpoint (a snapshot; each counter is written by one
 * role: the writer's or the reader's). */
struct chan_stats {
	uint64_t sent;		/* messages written */
	uint64_t received;	/* messages read (chan_read*, chan_consume) */
	uint64_t full;		/* writes that found no room (once each) */
	uint64_t tx_sleeps;	/* times the writer slept on its doorbell */
	uint64_t rx_sleeps;	/* times the reader slept on its doorbell */
	uint64_t bells;		/* doorbells this endpoint rang */
	uint64_t bad;		/* malformed messages dropped (-EBADMSG) */
};

struct chan_info {
	unsigned id;		/* this endpoint: 0 or 1 */
	uint32_t nslots;
	uint32_t data_size;	/* 0 when none */
	uint64_t map_size;
	pid_t peer_pid;		/* 0 when unknown (chan_pair) */
	char peer_cell[CHAN_NAME_MAX + 1];	/* "" when unknown */
};

/* Create a channel and both its endpoints, in this process: *a is
 * endpoint 0, *b endpoint 1. cfg may be NULL (defaults). The endpoints
 * have no liveness socket: use them within one process (a fork()ed child
 * may use one endpoint of a pair created before the fork if each process
 * then calls chan_forget() on the endpoint it does not use, but the death
 * of one process is not detected; use chan_open() between processes).
 * Returns 0, -EINVAL, -ENOMEM, -EMFILE/-ENFILE. Any thread. */
int chan_pair(struct chan **a, struct chan **b, const struct chan_config *cfg);

/* Close the endpoint: mark it closed in the shared region, wake the
 * peer's sleepers (they get -EPIPE, readers after draining), release the
 * mapping, the descriptors and c. Messages this endpoint has not read are
 * dropped. Returns 0. c must not be in use by another call. */
int chan_close(struct chan *c);

/* Release this process's copy of endpoint c (unmap, close descriptors,
 * free) WITHOUT telling the peer: for the copy a fork() left in the
 * process that does not use it. */
void chan_forget(struct chan *c);

/* Write one message of len bytes (0 .. the lane's maximum, see -EMSGSIZE)
 * from buf. Waits (poll, then sleep) while the lane is full, unless
 * CHAN_DONTWAIT. Returns len, or -EAGAIN, -EPIPE, -ECONNRESET, -EMSGSIZE,
 * -EPROTO, -EINVAL. Writer role. */
ssize_t chan_write(struct chan *c, const void *buf, size_t len, int flags);

/* Read the next message into buf (cap bytes). Waits while none is ready,
 * unless CHAN_DONTWAIT. Returns its length, or -EAGAIN, -EPIPE,
 * -ECONNRESET, -EMSGSIZE (it stays queued), -EBADMSG (dropped), -EBUSY,
 * -EPROTO. Reader role. */
ssize_t chan_read(struct chan *c, void *buf, size_t cap, int flags);

/* Write n messages (msgs[i].iov_base, iov_len bytes each), publishing each
 * run of slots with one store and ringing the doorbell at most once per
 * run. Without CHAN_DONTWAIT waits for room until all n are written and
 * returns n; with it, returns how many fitted (1 .. n) or -EAGAIN. On an
 * error after some messages were written, returns that count; the next
 * call reports the error. -EMSGSIZE (nothing written) if any message is
 * too large. Writer role. */
int chan_write_batch(struct chan *c, const struct iovec *msgs, unsigned n,
		     int flags);

/* Read up to n messages: message i goes to msgs[i].iov_base (capacity
 * msgs[i].iov_len, which is set to the message's length). Waits for at
 * least one unless CHAN_DONTWAIT. Stops early before a message that does
 * not fit its buffer or is malformed (reported by the next call when it
 * is first). Returns how many (1 .. n) or an error as chan_read. Reader
 * role. */
int chan_read_batch(struct chan *c, struct iovec *msgs, unsigned n,
		    int flags);

/* Zero-copy read: wait (unless CHAN_DONTWAIT) for the next message and
 * set *payload to it, in place (in its slot or the shared data buffer).
 * Returns its length; the payload stays valid and the message stays
 * queued until chan_consume(). Calling chan_peek again before that
 * returns the same message. The peer may still write into that memory (a
 * hostile one could): validate what you read there, or copy it first.
 * Errors as chan_read (never -EMSGSIZE). Reader role. */
ssize_t chan_peek(struct chan *c, const void **payload, int flags);

/* Release the message chan_peek() returned. 0, or -EINVAL if there is
 * none. Reader role. */
int chan_consume(struct chan *c);

/* Set this endpoint's poll-before-sleep time (see chan_config.poll_ns). */
void chan_set_poll_ns(struct chan *c, uint64_t poll_ns);

void chan_stats(const struct chan *c, struct chan_stats *st);
void chan_info(const struct chan *c, struct chan_info *info);

/* ---- RFcom: channels between cells ---------------------------------------- */

/* Map the channel's shared region (chan_config.map_size bytes, the same
 * memory on both endpoints, zero-filled at creation) and return it in
 * *addr and *size. No locking or ordering is implied: the two sides
 * synchronise through messages or their own atomics. Mapping again
 * returns the existing mapping. Returns 0, -ENODEV (the channel has no
 * map region) or -ENOMEM. Any thread, not concurrently with chan_unmap or
 * chan_close on this endpoint. */
int chan_map(struct chan *c, void **addr, size_t *size);

/* Unmap what chan_map() mapped (the peer's mapping is unaffected).
 * 0, or -EINVAL if nothing is mapped. chan_close() unmaps too. */
int chan_unmap(struct chan *c);

/* Write the rendezvous path of name into buf (len bytes): name itself if
 * it contains a '/', else DIR/<name>.chan where DIR is $ATOLL_CHAN_DIR,
 * else $XDG_RUNTIME_DIR/atoll, else /tmp/atoll-<uid>. A bare name is 1 ..
 * CHAN_NAME_MAX characters of [A-Za-z0-9._-], not starting with '.'.
 * Returns 0, -EINVAL (bad name) or -ENAMETOOLONG (too long for a UNIX
 * socket address or for buf). */
int chan_rendezvous_path(char *buf, size_t len, const char *name);

/* Listen for channels opened to name (see chan_rendezvous_path; the
 * directory is created, mode 0700, if missing; a stale socket left by a
 * dead listener is replaced, a live one gives -EADDRINUSE). Returns 0
 * and the listener in *out, or a negative errno. Any thread. */
int chan_listen(struct chan_listener **out, const char *name);

/* Wait for the next open on l, validate it, ask the supervisor hook, and
 * return the accepted endpoint (endpoint 1) in *out. The accepting side
 * uses cfg->poll_ns (cfg may be NULL); the geometry is the opener's. A
 * refused or malformed open is answered with the reason and reported to
 * the caller as its error (-EPROTO, -EACCES, -ETIMEDOUT, ...); the
 * listener stays usable. Blocks the calling uthread (or thread). */
int chan_accept(struct chan_listener *l, struct chan **out,
		const struct chan_config *cfg);

/* Stop listening: close the socket and remove its path. Channels already
 * accepted are unaffected. */
void chan_listener_close(struct chan_listener *l);

/* The listening socket, e.g. to wait for opens in an event loop. */
int chan_listener_fd(const struct chan_listener *l);

/* Open a channel to the cell listening under peer (a name or a path, see
 * chan_rendezvous_path) with geometry cfg (NULL: defaults). Our cell's
 * name is $ATOLL_CELL (default "standalone"). Returns 0 and endpoint 0 in
 * *out, or a negative errno (the peer's refusal reason is logged).
 * Opening is explicit on both sides (the supervisor hook in
 * src/msg/chan_open.c). When $ATOLL_SOCKET names an existing socket
 * (atolld runs), $ATOLL_CELL is required on both sides (-EACCES without
 * it) and atolld is asked "chan.check" {"from":opener cell,"to":acceptor
 * cell}, which passes only if each cell allows the other (atoll cell
 * allow A B and atoll cell allow B A) and each process runs in the cell
 * it names (atolld checks the peer's SO_PEERCRED pid, passed as
 * from_pid / to_pid): the acceptor asks after reading
 * the request (which carries the opener's cell) and answers a refusal
 * with -EACCES; the opener asks again once the reply names the
 * acceptor's cell (peer stays a plain rendezvous name: the target cell
 * is learned in the handshake, not encoded in it). A refusal or a
 * supervisor that does not answer is -EACCES. With $ATOLL_SOCKET unset or
 * naming nothing (no atolld) it logs "no supervisor: opening directly"
 * once and relies on the rendezvous socket's file permissions. Blocks
 * the calling uthread (or thread). */
int chan_open(struct chan **out, const char *peer,
	      const struct chan_config *cfg);

#endif /* ATOLL_CHAN_H */
