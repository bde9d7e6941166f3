/* procinfo.h - the pages atolld shares with a registered many-core process
 * (MCP): procinfo (supervisor -> process) and procdata (process ->
 * supervisor). docs/supervisor-protocol.md ("MCP registration") is the
 * specification; this is its layout.
 *
 * Owns: nothing (layout only). Header only.
 *
 * One memfd of PROCINFO_MAP_SIZE bytes, passed with SCM_RIGHTS in the reply
 * to "mcp.register": procinfo at offset 0 (PROCINFO_PAGE_SIZE bytes; the
 * process maps it read-only), procdata at PROCDATA_OFFSET (the process maps
 * it read-write; atolld trusts nothing in it beyond what it uses as hints:
 * tids, states, demand, latencies). Plain structs, fixed-width integers, no
 * pointers: the two sides may map at different addresses.
 *
 * Layout (version 2; docs/supervisor-protocol.md has the same table):
 *
 *     offset            size            what
 *          0            4 KiB           struct procinfo (atolld writes)
 *       4096            4 KiB           struct procdata (the process writes)
 *       8192            64 x 32 KiB     one struct hist per vcore slot
 *                                       (PROCDATA_HIST_STRIDE apart)
 *
 * 2 MiB + 8 KiB in all, but a memfd is sparse: only the pages a process
 * touches hold memory (a histogram is 8 pages, written once used).
 *
 * Latency histograms (RainForest's latency controller, atoll/latency.h):
 * vcore i's histogram is written by vcore i only (hist.h's one writer);
 * the vcore hist_init()s it on first use and then sets procdata
 * vc[i].hist_on with release, so a reader that loads hist_on with acquire
 * sees an initialised histogram. Readers (atolld, rt_latency_snapshot)
 * merge the live histograms with hist_merge(): counts are cumulative and
 * never reset while the process is registered, so atolld gets a window's
 * samples as the difference of two snapshots. atolld checks each
 * histogram's magic and nbuckets and treats the counts as untrusted hints.
 *
 * Every field shared between the processes is accessed with the atomics of
 * atoll/atomic.h (32- or 64-bit, naturally aligned).
 *
 * Grant protocol (atolld writes, the process reads):
 *   - a slot change is: write the slot's fields, bump slot.seq, then bump
 *     procinfo.generation (release) and FUTEX_WAKE on &generation (a shared
 *     futex: the word lives in the memfd, so the wake crosses processes);
 *   - the process loads generation (acquire) and then reads the slots; it
 *     re-reads when generation moved meanwhile;
 *   - grant: granted = 1, cpu = the core, preempt_pending = 0;
 *   - revoke: preempt_pending = deadline (CLOCK_MONOTONIC ns), preempt_sent++;
 *     the vcore gives its core back at its next scheduling point and
 *     publishes PROCDATA_VC_OFF; atolld then writes granted = 0,
 *     preempt_done++;
 *   - force: at the deadline, atolld writes granted = 0, forced++ and moves
 *     the vcore's kernel thread (procdata tid) off the core with
 *     sched_setaffinity; the runtime reports the vcore to its 2LS as
 *     preempted (vcore_preempted) so the uthreads queued on it move to
 *     siblings; the uthread it was running keeps its kernel thread, which
 *     now shares the process's remaining cores, until its next scheduling
 *     point, where the vcore parks.
 */
#ifndef ATOLL_PROCINFO_H
#define ATOLL_PROCINFO_H

#include <linux/futex.h>
#include <stdint.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <atoll/atomic.h>
#include <atoll/hist.h>

#define PROCINFO_MAGIC 0x4f464e49504c5441ull   /* "ATLPINFO" */
#define PROCDATA_MAGIC 0x415441444c544154ull   /* "TATLDATA" */
#define PROCINFO_VERSION 2

/* Most vcore slots a process can hold. */
#define PROCINFO_MAX_VCORES 64

#define PROCINFO_PAGE_SIZE 4096ull

struct procinfo_vcore {
	uint32_t seq;              /* bumped by atolld at each change */
	int32_t cpu;               /* the core; -1 when never granted */
	uint32_t granted;          /* 1: the vcore may run on cpu */
	uint32_t pad0;
	uint64_t preempt_pending;  /* 0, or give the core back by this ns */
	uint64_t preempt_sent;     /* revocations asked */
	uint64_t preempt_done;     /* revocations completed (yielded or forced) */
	uint64_t forced;           /* of which taken by force at the deadline */
	uint64_t granted_at;       /* ns (CLOCK_MONOTONIC) of the last grant */
};

struct procinfo {
	uint64_t magic;            /* PROCINFO_MAGIC */
	uint32_t version;          /* PROCINFO_VERSION */
	uint32_t generation;       /* futex word: bumped after every change */
	uint32_t nr_slots;         /* max of the registration, <= MAX_VCORES */
	uint32_t provisioned;      /* the registration's min (guaranteed) */
	uint32_t allocated;        /* slots with granted = 1 */
	uint32_t pad0;
	uint64_t grace_ns;         /* deadline - request time of revocations */
	uint64_t pad1[4];
	struct procinfo_vcore vc[PROCINFO_MAX_VCORES];
};

/* procdata vcore states. */
#define PROCDATA_VC_UNKNOWN 0
#define PROCDATA_VC_RUNNING 1      /* granted, running or polling */
#define PROCDATA_VC_IDLE 2         /* granted, parked for lack of work */
#define PROCDATA_VC_OFF 3          /* gave its core back, parked */

struct procdata_vcore {
	uint32_t state;            /* PROCDATA_VC_* */
	int32_t tid;               /* the vcore's kernel thread */
	uint64_t since;            /* ns (CLOCK_MONOTONIC) of the last change */
	uint32_t seen_seq;         /* procinfo slot seq last acted upon */
	uint32_t hist_on;          /* 1: this vcore's histogram is in use */
	uint64_t running_since;    /* ns of the last change to RUNNING */
};

struct procdata {
	uint64_t magic;            /* PROCDATA_MAGIC, written by the process */
	uint32_t version;
	uint32_t nr_vcores;        /* the process's vcores */
	uint32_t demand;           /* runnable uthreads, sampled */
	uint32_t pad0;
	uint64_t pad1;
	struct procdata_vcore vc[PROCINFO_MAX_VCORES];
};

#define PROCDATA_OFFSET PROCINFO_PAGE_SIZE
#define PROCDATA_HIST_OFFSET (PROCDATA_OFFSET + PROCINFO_PAGE_SIZE)
/* A histogram rounded up to whole pages. */
#define PROCDATA_HIST_STRIDE \
	((sizeof(struct hist) + PROCINFO_PAGE_SIZE - 1) & ~(PROCINFO_PAGE_SIZE - 1))
#define PROCDATA_SIZE \
	(PROCINFO_PAGE_SIZE + PROCINFO_MAX_VCORES * PROCDATA_HIST_STRIDE)
#define PROCINFO_MAP_SIZE (PROCDATA_OFFSET + PROCDATA_SIZE)

_Static_assert(sizeof(struct procinfo) <= PROCINFO_PAGE_SIZE,
	       "procinfo must fit its page");
_Static_assert(sizeof(struct procdata) <= PROCINFO_PAGE_SIZE,
	       "procdata's header must fit its page");
_Static_assert(PROCDATA_HIST_STRIDE == 8 * PROCINFO_PAGE_SIZE,
	       "the documented layout has 32 KiB per histogram");

/* Vcore slot i's latency histogram; pd is the procdata mapping (which the
 * histograms follow in the memfd and in every mapping of it). */
static inline struct hist *procdata_hist(struct procdata *pd, unsigned i)
{
	return (struct hist *)((char *)pd + PROCINFO_PAGE_SIZE +
			       (size_t)i * PROCDATA_HIST_STRIDE);
}

/* ---- the supervisor's side of a slot change (atolld; benchmarks) ---- */

/* Publish a change made to slot vc: bump its seq, then the generation
 * (release: the slot's fields before it), then wake whoever waits on the
 * generation word (a shared futex, so it crosses processes). */
static inline void procinfo_publish(struct procinfo *pi,
				    struct procinfo_vcore *vc)
{
	store_relaxed(&vc->seq, load_relaxed(&vc->seq) + 1);
	fetch_add_acq_rel(&pi->generation, 1);
	syscall(SYS_futex, &pi->generation, FUTEX_WAKE, 1 << 30, NULL, NULL, 0);
}

static inline void procinfo_grant(struct procinfo *pi, unsigned slot, int cpu,
				  uint64_t now)
{
	struct procinfo_vcore *vc = &pi->vc[slot];

	store_relaxed(&vc->cpu, cpu);
	store_relaxed(&vc->preempt_pending, 0);
	store_relaxed(&vc->granted_at, now);
	if (!load_relaxed(&vc->granted))
		store_relaxed(&pi->allocated, load_relaxed(&pi->allocated) + 1);
	store_relaxed(&vc->granted, 1);
	procinfo_publish(pi, vc);
}

static inline void procinfo_revoke(struct procinfo *pi, unsigned slot,
				   uint64_t deadline)
{
	struct procinfo_vcore *vc = &pi->vc[slot];

	store_relaxed(&vc->preempt_sent, load_relaxed(&vc->preempt_sent) + 1);
	store_relaxed(&vc->preempt_pending, deadline);
	procinfo_publish(pi, vc);
}

/* The revocation completed (forced: taken at the deadline). */
static inline void procinfo_taken(struct procinfo *pi, unsigned slot,
				  int forced)
{
	struct procinfo_vcore *vc = &pi->vc[slot];

	if (load_relaxed(&vc->granted))
		store_relaxed(&pi->allocated, load_relaxed(&pi->allocated) - 1);
	store_relaxed(&vc->granted, 0);
	store_relaxed(&vc->preempt_pending, 0);
	store_relaxed(&vc->preempt_done, load_relaxed(&vc->preempt_done) + 1);
	if (forced)
		store_relaxed(&vc->forced, load_relaxed(&vc->forced) + 1);
	procinfo_publish(pi, vc);
}

/* For tests and benchmarks that play the supervisor themselves: make the
 * next rt_main() of this process use the procinfo/procdata memfd fd (laid
 * out as above, procinfo initialised) instead of registering with atolld.
 * The runtime takes ownership of fd. Call before rt_main(). */
void rt_mcp_use_fd(int fd);

#endif /* ATOLL_PROCINFO_H */
