/* clock.c - monotonic time, cycle-counter calibration, busy-wait delays.
 *
 * Calibration design note. We want ns = cycles * (ns per cycle) without a
 * division, so the ratio is kept as a 32.32 fixed-point multiplier and the
 * conversion is a 64x64->128 multiply and a shift (cycles_to_ns() in
 * clock.h). It is measured by pairing cycle-counter readings with
 * CLOCK_MONOTONIC readings:
 *
 *  - A "sample" reads cycles, then the clock, then cycles again, and keeps
 *    the clock reading with the midpoint of the two counter readings. Of
 *    several tries it keeps the narrowest bracket, so a sample interrupted
 *    by preemption or a VM exit (a wide bracket) is thrown away.
 *  - Samples are taken CALIB_ROUNDS + 1 times, CALIB_ROUND_NS apart
 *    (sleeping in between: both counters keep ticking while we sleep), which
 *    gives CALIB_ROUNDS back-to-back rounds, each with its own ratio.
 *  - The rounds must agree: at least CALIB_MIN_GOOD of them within
 *    CALIB_TOL_PPM of the median, and the median must be a plausible clock
 *    rate. Otherwise the measurement is called inconsistent (-EIO).
 *  - The final ratio spans from the start of the first agreeing round to
 *    the end of the last, ~15 ms, so a ~100 ns sampling error costs under
 *    ten parts per million.
 *
 * The result is written into clock__calib by the one thread that won the
 * UNSET -> BUSY CAS, then published with a release store of DONE; readers
 * check state with an acquire load before touching the other fields, which
 * never change afterwards.
 */
#include <errno.h>
#include <time.h>

#include <atoll/atomic.h>
#include <atoll/clock.h>

#define CALIB_ROUNDS 5
#define CALIB_MIN_GOOD 3
#define CALIB_ROUND_NS (3 * NSEC_PER_MSEC)
#define CALIB_TOL_PPM 2000   /* rounds must agree within 0.2% */
#define CALIB_SAMPLE_TRIES 8

/* Plausible counter rates, in cycles per ns: 100 kHz .. 16 GHz. */
#define CALIB_MIN_N2C ((1ull << CLOCK_SHIFT) / 10000)
#define CALIB_MAX_N2C (16ull << CLOCK_SHIFT)

struct clock__calib clock__calib = {
	.state = CLOCK__UNSET,
	.c2n_mult = 1ull << CLOCK_SHIFT,
	.n2c_mult = 1ull << CLOCK_SHIFT,
};

/* Set with the rest of clock__calib, before state becomes DONE. */
static bool clock_use_tsc;
static bool clock_ratio_ok;

uint64_t now_ns(void)
{
	struct timespec ts;

	(void)clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * NSEC_PER_SEC + (uint64_t)ts.tv_nsec;
}

struct calib_sample {
	uint64_t cycles;
	uint64_t ns;
};

static struct calib_sample clock__sample(void)
{
	struct calib_sample s = { 0, 0 };
	uint64_t best = UINT64_MAX;

	for (int i = 0; i < CALIB_SAMPLE_TRIES; i++) {
		uint64_t c0 = arch_cycles_ordered();
		uint64_t t = now_ns();
		uint64_t c1 = arch_cycles_ordered();

		if (c1 - c0 < best) {
			best = c1 - c0;
			s.cycles = c0 + (c1 - c0) / 2;
			s.ns = t;
		}
	}
	return s;
}

/* Cycles per ns << CLOCK_SHIFT between two samples; 0 if unusable. */
static uint64_t clock__n2c(struct calib_sample a, struct calib_sample b)
{
	uint64_t dc = b.cycles - a.cycles, dt = b.ns - a.ns;

	if (b.cycles <= a.cycles || b.ns <= a.ns)
		return 0;
	return (uint64_t)(((unsigned __int128)dc << CLOCK_SHIFT) / dt);
}

static void clock__sleep(uint64_t ns)
{
	struct timespec ts = {
		.tv_sec = (time_t)(ns / NSEC_PER_SEC),
		.tv_nsec = (long)(ns % NSEC_PER_SEC),
	};

	/* An early wake-up (EINTR) just makes a shorter round. */
	(void)clock_nanosleep(CLOCK_MONOTONIC, 0, &ts, NULL);
}

static void sort_u64(uint64_t *v, int n)
{
	for (int i = 1; i < n; i++)
		for (int j = i; j > 0 && v[j - 1] > v[j]; j--) {
			uint64_t t = v[j];

			v[j] = v[j - 1];
			v[j - 1] = t;
		}
}

/* Measure the ratio into clock__calib. Returns 0 or -EIO. */
static int clock__measure(void)
{
	struct calib_sample s[CALIB_ROUNDS + 1];
	uint64_t r[CALIB_ROUNDS], sorted[CALIB_ROUNDS], median, tol, n2c, c2n;
	int first = -1, last = -1, good = 0;

	for (int i = 0; i <= CALIB_ROUNDS; i++) {
		if (i)
			clock__sleep(CALIB_ROUND_NS);
		s[i] = clock__sample();
	}
	for (int i = 0; i < CALIB_ROUNDS; i++)
		r[i] = sorted[i] = clock__n2c(s[i], s[i + 1]);
	sort_u64(sorted, CALIB_ROUNDS);
	median = sorted[CALIB_ROUNDS / 2];
	if (median < CALIB_MIN_N2C || median > CALIB_MAX_N2C)
		return -EIO;

	tol = median * CALIB_TOL_PPM / 1000000; /* median <= 2^36: fits */
	for (int i = 0; i < CALIB_ROUNDS; i++) {
		uint64_t d = r[i] > median ? r[i] - median : median - r[i];

		if (r[i] && d <= tol) {
			good++;
			if (first < 0)
				first = i;
			last = i;
		}
	}
	if (good < CALIB_MIN_GOOD)
		return -EIO;

	/* The long span from the first good round's start to the last good
	 * round's end; both endpoints belong to rounds that agreed. */
	n2c = clock__n2c(s[first], s[last + 1]);
	if (n2c < CALIB_MIN_N2C || n2c > CALIB_MAX_N2C)
		return -EIO;
	c2n = (uint64_t)(((unsigned __int128)(s[last + 1].ns - s[first].ns)
			  << CLOCK_SHIFT) /
			 (s[last + 1].cycles - s[first].cycles));
	if (!c2n)
		return -EIO;
	clock__calib.n2c_mult = n2c;
	clock__calib.c2n_mult = c2n;
	return 0;
}

int clock_calibrate(void)
{
	uint32_t st = load_acquire(&clock__calib.state); /* pairs: see below */
	int ret;

	if (st == CLOCK__UNSET &&
	    cas_acq_rel(&clock__calib.state, &st, CLOCK__BUSY)) {
		ret = clock__measure();
		clock_ratio_ok = ret == 0;
		if (ret == 0 && !arch_has_invariant_cycles())
			ret = -ENOTSUP;
		clock_use_tsc = ret == 0;
		if (clock_use_tsc) {
			struct calib_sample a = clock__sample();

			clock__calib.base_cycles = a.cycles;
			clock__calib.base_ns = a.ns;
		}
		clock__calib.result = ret;
		/* Release: publishes every field written above; pairs with
		 * the acquire loads of state in clock__ready(), fast_ns() and
		 * the waiters below. */
		store_release(&clock__calib.state, CLOCK__DONE);
		return ret;
	}
	/* Another thread is measuring (or has). Acquire: pairs with its
	 * release store of DONE. */
	while (load_acquire(&clock__calib.state) != CLOCK__DONE)
		clock__sleep(100 * NSEC_PER_USEC);
	return clock__calib.result;
}

bool clock_is_tsc(void)
{
	return clock__ready() && clock_use_tsc;
}

uint64_t clock_cycles_per_us(void)
{
	if (!clock__ready() || !clock_ratio_ok)
		return 0;
	return (uint64_t)(((unsigned __int128)clock__calib.n2c_mult *
				   NSEC_PER_USEC +
			   (1ull << (CLOCK_SHIFT - 1))) >>
			  CLOCK_SHIFT);
}

uint64_t fast_ns(void)
{
	int64_t d;

	if (unlikely(!clock_is_tsc()))
		return now_ns();
	/* Invariant counters are synchronised across cores, but a reading
	 * taken on another core just after calibration could still sit a few
	 * cycles before the anchor: clamp rather than wrap. */
	d = (int64_t)(arch_cycles() - clock__calib.base_cycles);
	if (unlikely(d < 0))
		d = 0;
	return clock__calib.base_ns + cycles_to_ns((uint64_t)d);
}

void delay_ns(uint64_t ns)
{
	uint64_t t0 = now_ns(), f0 = fast_ns();

	while (fast_ns() - f0 < ns)
		cpu_relax();
	/* fast_ns() may run a few ppm slow; finish against CLOCK_MONOTONIC so
	 * "at least ns" holds on the timeline callers measure with. */
	while (now_ns() - t0 < ns)
		cpu_relax();
}
