/* hist.c - log-linear latency histogram: merge, percentiles, output.
 *
 * Design note. Recording is inline in hist.h; this file holds the slow
 * paths. The invariant readers rely on: a writer makes a sample's bucket
 * increment visible before the count that includes it (release store or
 * RMW on count), and a reader loads count with acquire before it walks
 * the buckets, so the buckets it sees add up to at least that count. A
 * percentile walk therefore always finds its rank (the fall-through to
 * max is only a guard). sum/min/max/overflow are not ordered with count:
 * a live read may show them a few samples ahead or behind.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <atoll/atomic.h>
#include <atoll/compiler.h>
#include <atoll/hist.h>

BUILD_ASSERT(sizeof(struct hist) == HIST_SIZE);
BUILD_ASSERT(offsetof(struct hist, count) == 8);
BUILD_ASSERT(offsetof(struct hist, buckets) == 64);
/* The top bucket holds exactly HIST_MAX_NS: 1e11 >> 29 == 186. */
BUILD_ASSERT((HIST_MAX_NS >> 29) == 186 && (HIST_MAX_NS >> 36) == 1);
BUILD_ASSERT(HIST_NBUCKETS == 29 * HIST_SUB + 186 + 1);

void hist_init(struct hist *h)
{
	unsigned i;

	/* Field by field with atomic stores, not memset: a reader of a
	 * published histogram may be looking while we wipe it. */
	store_relaxed(&h->count, 0);
	for (i = 0; i < HIST_NBUCKETS; i++)
		store_relaxed(&h->buckets[i], 0);
	store_relaxed(&h->overflow, 0);
	store_relaxed(&h->sum, 0);
	store_relaxed(&h->min, UINT64_MAX);
	store_relaxed(&h->max, 0);
	store_relaxed(&h->reserved[0], 0);
	store_relaxed(&h->reserved[1], 0);
	store_relaxed(&h->nbuckets, HIST_NBUCKETS);
	/* Release: a reader that checks magic with acquire sees the fields
	 * above initialised. */
	store_release(&h->magic, HIST_MAGIC);
}

void hist_reset(struct hist *h)
{
	hist_init(h);
}

void hist_record_atomic(struct hist *h, uint64_t ns)
{
	uint64_t v = ns;
	uint64_t cur;

	if (unlikely(v > HIST_MAX_NS)) {
		v = HIST_MAX_NS;
		fetch_add_relaxed(&h->overflow, 1);
	}
	fetch_add_relaxed(&h->buckets[hist_bucket(v)], 1);
	fetch_add_relaxed(&h->sum, ns);

	cur = load_relaxed(&h->min);
	while (ns < cur && !cas_relaxed(&h->min, &cur, ns))
		;
	cur = load_relaxed(&h->max);
	while (ns > cur && !cas_relaxed(&h->max, &cur, ns))
		;

	/* Release half: the bucket increment above is visible before this
	 * count; pairs with the load_acquire of count in readers. */
	fetch_add_acq_rel(&h->count, 1);
}

void hist_merge(struct hist *dst, const struct hist *src)
{
	uint64_t n, v;
	unsigned i;

	BUG_ON(dst == src);
	/* Acquire: pairs with the release on count in hist_record_n() and
	 * hist_record_atomic(); the buckets read below hold >= n samples. */
	n = load_acquire(&src->count);
	if (n == 0)
		return;

	for (i = 0; i < HIST_NBUCKETS; i++) {
		v = load_relaxed(&src->buckets[i]);
		if (v)
			store_relaxed(&dst->buckets[i], dst->buckets[i] + v);
	}
	v = load_relaxed(&src->overflow);
	store_relaxed(&dst->overflow, dst->overflow + v);
	v = load_relaxed(&src->sum);
	store_relaxed(&dst->sum, dst->sum + v);
	v = load_relaxed(&src->min);
	if (v < dst->min)
		store_relaxed(&dst->min, v);
	v = load_relaxed(&src->max);
	if (v > dst->max)
		store_relaxed(&dst->max, v);
	/* Release: dst's buckets before its count, for dst's own readers;
	 * pairs with their load_acquire of count. */
	store_release(&dst->count, dst->count + n);
}

void hist_copy(struct hist *dst, const struct hist *src)
{
	hist_init(dst);
	hist_merge(dst, src);
}

/*
 * Nearest rank of percentile p among n samples: ceil(p/100 * n) in
 * [1, n]. The product is shrunk by 2^-45 relative before the ceiling, so
 * that a decimal p such as 99.9, not exact in binary, does not round
 * p * n / 100 up past an integer and overshoot by one rank.
 */
static uint64_t hist__rank(double p, uint64_t n)
{
	double r;
	uint64_t rank;

	if (!(p > 0.0))		/* also NaN */
		return 1;
	if (p >= 100.0)
		return n;
	r = p * (double)n / 100.0;
	r -= r * 0x1p-45;
	rank = (uint64_t)r;
	if ((double)rank < r)
		rank++;
	if (rank < 1)
		rank = 1;
	if (rank > n)
		rank = n;
	return rank;
}

/*
 * Fill out[k] with the value at percentile ps[k] for k < np, ps ascending,
 * in one walk over the buckets. Returns the count the walk used.
 */
static uint64_t hist__percentiles(const struct hist *h, const double *ps,
				  uint64_t *out, unsigned np)
{
	uint64_t n, lo, hi, cum, v, rank;
	unsigned i, k;

	/* Acquire: pairs with the release on count by the writer; the
	 * buckets walked below add up to at least n. */
	n = load_acquire(&h->count);
	if (n == 0) {
		for (k = 0; k < np; k++)
			out[k] = 0;
		return 0;
	}
	lo = load_relaxed(&h->min);
	hi = load_relaxed(&h->max);

	cum = 0;
	k = 0;
	for (i = 0; i < HIST_NBUCKETS && k < np; i++) {
		cum += load_relaxed(&h->buckets[i]);
		while (k < np && cum >= (rank = hist__rank(ps[k], n))) {
			/* The first and last samples are known exactly. */
			if (rank == 1)
				v = lo;
			else if (rank == n)
				v = hi;
			else
				v = hist_bucket_lo(i) +
				    (hist_bucket_width(i) - 1) / 2;
			if (v < lo)
				v = lo;
			if (v > hi)
				v = hi;
			out[k++] = v;
		}
	}
	for (; k < np; k++)	/* only if buckets lagged count: see top */
		out[k] = hi;
	return n;
}

uint64_t hist_percentile(const struct hist *h, double p)
{
	uint64_t v;

	hist__percentiles(h, &p, &v, 1);
	return v;
}

uint64_t hist_count(const struct hist *h)
{
	return load_acquire(&h->count); /* pairs with the writer's release */
}

uint64_t hist_overflow(const struct hist *h)
{
	return load_relaxed(&h->overflow);
}

double hist_mean(const struct hist *h)
{
	uint64_t n = load_relaxed(&h->count);

	if (n == 0)
		return 0.0;
	return (double)load_relaxed(&h->sum) / (double)n;
}

uint64_t hist_min(const struct hist *h)
{
	return load_relaxed(&h->count) ? load_relaxed(&h->min) : 0;
}

uint64_t hist_max(const struct hist *h)
{
	return load_relaxed(&h->max);
}

/* The summary every output shows: p50 p90 p99 p99.9 p99.99. */
static const double hist__ps[] = { 50.0, 90.0, 99.0, 99.9, 99.99 };
#define HIST_NPS ARRAY_SIZE(hist__ps)

struct hist__summary {
	uint64_t count, overflow, min, max;
	double mean;
	uint64_t p[HIST_NPS];
};

static void hist__summarise(const struct hist *h, struct hist__summary *s)
{
	s->count = hist__percentiles(h, hist__ps, s->p, HIST_NPS);
	s->overflow = hist_overflow(h);
	s->min = s->count ? load_relaxed(&h->min) : 0;
	s->max = hist_max(h);
	s->mean = s->count ? (double)load_relaxed(&h->sum) / (double)s->count
			   : 0.0;
}

int hist_print(const struct hist *h, FILE *f, const char *title,
	       const char *unit)
{
	static const char *const names[] = {
		"min", "p50", "p90", "p99", "p99.9", "p99.99", "max",
	};
	struct hist__summary s;
	uint64_t vals[ARRAY_SIZE(names)];
	double div = 0.0;	/* 0: print unscaled integers */
	unsigned i;
	int err = 0;

	if (!unit || !strcmp(unit, "ns"))
		unit = "ns";
	else if (!strcmp(unit, "us"))
		div = 1e3;
	else if (!strcmp(unit, "ms"))
		div = 1e6;
	else if (!strcmp(unit, "s"))
		div = 1e9;

	hist__summarise(h, &s);
	vals[0] = s.min;
	for (i = 0; i < HIST_NPS; i++)
		vals[i + 1] = s.p[i];
	vals[ARRAY_SIZE(names) - 1] = s.max;

	if (fprintf(f, "%s (%s)\n%12s %12s", title ? title : "histogram",
		    unit, "count", "mean") < 0)
		err = -EIO;
	for (i = 0; i < ARRAY_SIZE(names); i++)
		if (fprintf(f, " %12s", names[i]) < 0)
			err = -EIO;
	if (fprintf(f, "\n%12" PRIu64, s.count) < 0)
		err = -EIO;
	if (div == 0.0) {
		if (fprintf(f, " %12.1f", s.mean) < 0)
			err = -EIO;
		for (i = 0; i < ARRAY_SIZE(names); i++)
			if (fprintf(f, " %12" PRIu64, vals[i]) < 0)
				err = -EIO;
	} else {
		if (fprintf(f, " %12.3f", s.mean / div) < 0)
			err = -EIO;
		for (i = 0; i < ARRAY_SIZE(names); i++)
			if (fprintf(f, " %12.3f", (double)vals[i] / div) < 0)
				err = -EIO;
	}
	if (fputc('\n', f) == EOF)
		err = -EIO;
	if (s.overflow &&
	    fprintf(f, "%12" PRIu64 " samples above 100 s, counted as 100 s"
		    " in percentiles\n", s.overflow) < 0)
		err = -EIO;
	return err;
}

/* Append to buf at *off; -ENOSPC once the text no longer fits. */
static int __attribute__((format(printf, 4, 5)))
hist__append(char *buf, size_t len, size_t *off, const char *fmt, ...)
{
	va_list ap;
	int r;

	if (*off >= len)
		return -ENOSPC;
	va_start(ap, fmt);
	r = vsnprintf(buf + *off, len - *off, fmt, ap);
	va_end(ap);
	if (r < 0)
		return -EINVAL;
	if ((size_t)r >= len - *off) {
		*off = len;
		return -ENOSPC;
	}
	*off += (size_t)r;
	return 0;
}

static int hist__json(const struct hist *h, char *buf, size_t len,
		      int with_buckets)
{
	struct hist__summary s;
	size_t off = 0;
	const char *sep = "";
	uint64_t v;
	unsigned i;
	int err;

	if (len > 0)
		buf[0] = '\0';
	hist__summarise(h, &s);
	err = hist__append(buf, len, &off,
			   "{\"count\":%" PRIu64 ",\"overflow\":%" PRIu64
			   ",\"mean\":%.3f,\"min\":%" PRIu64 ",\"max\":%" PRIu64
			   ",\"p50\":%" PRIu64 ",\"p90\":%" PRIu64
			   ",\"p99\":%" PRIu64 ",\"p999\":%" PRIu64
			   ",\"p9999\":%" PRIu64,
			   s.count, s.overflow, s.mean, s.min, s.max,
			   s.p[0], s.p[1], s.p[2], s.p[3], s.p[4]);
	if (err)
		return err;
	if (with_buckets) {
		err = hist__append(buf, len, &off, ",\"buckets\":[");
		for (i = 0; !err && i < HIST_NBUCKETS; i++) {
			v = load_relaxed(&h->buckets[i]);
			if (!v)
				continue;
			err = hist__append(buf, len, &off,
					   "%s[%" PRIu64 ",%" PRIu64 "]", sep,
					   hist_bucket_lo(i), v);
			sep = ",";
		}
		if (!err)
			err = hist__append(buf, len, &off, "]");
		if (err)
			return err;
	}
	err = hist__append(buf, len, &off, "}");
	if (err)
		return err;
	return (int)off;
}

int hist_to_json(const struct hist *h, char *buf, size_t len)
{
	return hist__json(h, buf, len, 0);
}

int hist_to_json_buckets(const struct hist *h, char *buf, size_t len)
{
	return hist__json(h, buf, len, 1);
}
