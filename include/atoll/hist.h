/* hist.h - fixed-size log-linear latency histogram (HDR-style).
 *
 * Owns: struct hist, a plain struct of integers (no pointers) that the
 * caller places anywhere: on the stack, in a static, or in a page shared
 * with another process (a supervisor reads an MCP's published histogram).
 * Nothing here allocates; the functions touch only the struct given.
 *
 * Thread safety: ONE WRITER per histogram. hist_record(), hist_record_n(),
 * hist_merge() (into dst), hist_init() and hist_reset() must be serialised
 * by the caller, normally by owning the histogram per thread/vcore; to
 * combine per-thread histograms, hist_merge() them into one. Readers in
 * other threads or processes may run hist_merge()/hist_copy() (as src),
 * hist_count() and the other getters against a live histogram: every field
 * is written and read as one atomic 64-bit access, so no value is torn,
 * but a read is not a consistent cut (see "Reading a live histogram").
 * hist_record_atomic() is the one multi-writer entry point; a histogram
 * written through it must be written through it only.
 *
 * Calling context: any thread, any context (no locks, no syscalls, no
 * allocation). hist_print() does stdio.
 *
 * Buckets. Values are unsigned 64-bit, meant as nanoseconds. 0..255 get
 * one bucket each (exact). Above that, each power of two [2^k, 2^(k+1)),
 * k >= 8, is split into 128 equal sub-buckets of width 2^(k-7), so a
 * bucket's width is at most 1/128 of its lower bound (<= 0.78%). Index:
 *
 *     shift = msb(v | 255) - 7;  idx = shift * 128 + (v >> shift)
 *
 * (one clz, two shifts, an add; no loop, no division). The range is
 * 0 .. HIST_MAX_NS = 100 s; a larger value is clamped to HIST_MAX_NS,
 * lands in the top bucket and is also counted in `overflow`. Its true
 * value still goes into sum, min and max, which stay exact.
 *
 * Percentiles. hist_percentile(h, p) uses the nearest-rank definition:
 * rank = ceil(p/100 * count) clamped to [1, count], and returns a value
 * representing the bucket holding the rank-th smallest sample: the bucket
 * midpoint, lo + (width - 1) / 2, then clamped to [min, max]. Its error
 * versus the exact sample quantile is at most half a bucket width, i.e.
 * <= 1/256 (0.39%) relative; exact below 256. p = 0 gives min, p = 100
 * gives max, exactly. A quantile that falls among overflowed samples
 * reports ~100 s (the top bucket), not the true value; hist_max() has it.
 *
 * Layout (this is an ABI once a page is shared; bump HIST_MAGIC on any
 * change). Little-endian host order, 8-byte aligned, no padding holes:
 *
 *     offset  size  field
 *          0     4  magic     HIST_MAGIC once hist_init() has run
 *          4     4  nbuckets  HIST_NBUCKETS
 *          8     8  count     samples recorded, overflow included
 *         16     8  overflow  samples > HIST_MAX_NS
 *         24     8  sum       sum of true values, modulo 2^64
 *         32     8  min       UINT64_MAX while empty
 *         40     8  max       0 while empty
 *         48    16  reserved  zero
 *         64  8*N   buckets   N = HIST_NBUCKETS = 3899 counts
 *
 * sizeof(struct hist) = HIST_SIZE = 31256 bytes (~30.5 KiB, 8 pages of
 * 4 KiB). sum wraps after 2^64 ns in total (584 years of latency, or
 * 1.8e8 samples of 100 s); hist_mean() is then wrong, nothing else.
 *
 * Reading a live histogram. The writer bumps a bucket, then publishes
 * count with a release store; readers load count with acquire first and
 * the buckets after, so the bucket counts a reader sees always add up to
 * at least the count it saw. sum/min/max/overflow are relaxed and may lag
 * or lead count by the samples in flight. For anything beyond one getter,
 * hist_copy() the live histogram into a private one and read that.
 */
#ifndef ATOLL_HIST_H
#define ATOLL_HIST_H

#include <stdint.h>
#include <stdio.h>

#include <atoll/atomic.h>
#include <atoll/compiler.h>

#define HIST_SUB_BITS 7
#define HIST_SUB (1u << HIST_SUB_BITS)		/* sub-buckets per octave */
#define HIST_MAX_NS 100000000000ull		/* 100 s */
/* Index of HIST_MAX_NS's bucket, + 1: 1e11 has msb 36, so shift = 29 and
 * idx = 29 * 128 + (1e11 >> 29) = 3712 + 186 = 3898. base_hist checks it. */
#define HIST_NBUCKETS 3899u
#define HIST_MAGIC 0x48495331u			/* "HIS1" */
#define HIST_SIZE 31256u

struct hist {
	uint32_t magic;
	uint32_t nbuckets;
	uint64_t count;
	uint64_t overflow;
	uint64_t sum;
	uint64_t min;
	uint64_t max;
	uint64_t reserved[2];
	uint64_t buckets[HIST_NBUCKETS];
};

/* Bucket index of a value already clamped to <= HIST_MAX_NS. */
static ALWAYS_INLINE unsigned hist_bucket(uint64_t v)
{
	unsigned shift = 63u - (unsigned)__builtin_clzll(v | 255u) -
			 HIST_SUB_BITS;

	return (shift << HIST_SUB_BITS) + (unsigned)(v >> shift);
}

/* Lowest value that falls in bucket idx (idx < HIST_NBUCKETS). */
static inline uint64_t hist_bucket_lo(unsigned idx)
{
	unsigned shift;

	if (idx < 2 * HIST_SUB)
		return idx;
	shift = (idx >> HIST_SUB_BITS) - 1;
	return (uint64_t)((idx & (HIST_SUB - 1)) + HIST_SUB) << shift;
}

/* Width (number of distinct values) of bucket idx. */
static inline uint64_t hist_bucket_width(unsigned idx)
{
	if (idx < 2 * HIST_SUB)
		return 1;
	return 1ull << ((idx >> HIST_SUB_BITS) - 1);
}

/* Initialise (or wipe) h: no samples, magic and nbuckets set. One writer. */
void hist_init(struct hist *h);
/* Same as hist_init(); reads better where h was in use. */
void hist_reset(struct hist *h);

/*
 * Record count samples of value ns (nanoseconds by convention). Values
 * above HIST_MAX_NS are clamped into the top bucket and counted as
 * overflow. Single writer. Inline: a clz, shifts, and a few stores.
 */
static ALWAYS_INLINE void hist_record_n(struct hist *h, uint64_t ns,
					uint64_t count)
{
	uint64_t v = ns;
	unsigned idx;

	if (unlikely(count == 0))
		return;
	if (unlikely(v > HIST_MAX_NS)) {
		v = HIST_MAX_NS;
		store_relaxed(&h->overflow, h->overflow + count);
	}
	idx = hist_bucket(v);
	/* The single writer reads its own fields plainly; stores are atomic
	 * so that concurrent readers never see a torn value. */
	store_relaxed(&h->buckets[idx], h->buckets[idx] + count);
	store_relaxed(&h->sum, h->sum + ns * count);
	if (ns < h->min)
		store_relaxed(&h->min, ns);
	if (ns > h->max)
		store_relaxed(&h->max, ns);
	/* Release: orders the bucket store above before count; pairs with
	 * the load_acquire of count in readers (hist_merge, percentile). */
	store_release(&h->count, h->count + count);
}

/* Record one sample. Single writer. */
static ALWAYS_INLINE void hist_record(struct hist *h, uint64_t ns)
{
	hist_record_n(h, ns, 1);
}

/*
 * Record one sample from any number of concurrent writers (atomic RMWs,
 * a CAS loop for min/max). Several times the cost of hist_record(); every
 * writer of such a histogram must use this. hist_reset()/hist_merge()
 * into it still need the writers quiesced.
 */
void hist_record_atomic(struct hist *h, uint64_t ns);

/*
 * Add src's samples to dst. dst: single writer (the caller). src may be
 * live (written concurrently, even from another process); it is read
 * field by field, count first, so the result may include a few samples
 * beyond src's count in buckets. dst == src is not allowed.
 */
void hist_merge(struct hist *dst, const struct hist *src);

/* dst = a snapshot of src (hist_init + hist_merge). Same rules. */
void hist_copy(struct hist *dst, const struct hist *src);

/*
 * Value at percentile p (0..100, clamped; NaN counts as 0) by nearest
 * rank, as the holding bucket's midpoint clamped to [min, max]: within
 * 0.39% of the exact sample quantile (see top). 0 if h is empty.
 */
uint64_t hist_percentile(const struct hist *h, double p);

/* Number of samples, overflow included. */
uint64_t hist_count(const struct hist *h);
/* Samples above HIST_MAX_NS. */
uint64_t hist_overflow(const struct hist *h);
/* Mean of the true values (sum / count); 0.0 if empty. */
double hist_mean(const struct hist *h);
/* Exact smallest / largest recorded value; 0 if empty. */
uint64_t hist_min(const struct hist *h);
uint64_t hist_max(const struct hist *h);

/*
 * Print a one-row table: count, mean, min, p50, p90, p99, p99.9, p99.99,
 * max (and overflow if any), under a header line naming title. unit:
 * "ns" (or NULL), "us", "ms" or "s" scale the nanosecond values for
 * display; any other string is printed as the label of unscaled values.
 * Returns 0, or -EIO if writing to f failed.
 */
int hist_print(const struct hist *h, FILE *f, const char *title,
	       const char *unit);

/*
 * Write a JSON object into buf:
 *   {"count":N,"overflow":N,"mean":X,"min":N,"max":N,
 *    "p50":N,"p90":N,"p99":N,"p999":N,"p9999":N}
 * integers in recorded units (ns), mean with 3 decimals. Returns the
 * length written (without the NUL, which is always stored), or -ENOSPC
 * if the text and its NUL do not fit in len bytes; buf then holds a
 * truncated, NUL-terminated (if len > 0) prefix that is not valid JSON.
 */
int hist_to_json(const struct hist *h, char *buf, size_t len);

/*
 * As hist_to_json(), with one more key before the closing brace:
 *   "buckets":[[lo,count],...]  for every nonzero bucket, lo its lowest
 * value. Up to ~100 KB for a fully spread histogram.
 */
int hist_to_json_buckets(const struct hist *h, char *buf, size_t len);

#endif /* ATOLL_HIST_H */
