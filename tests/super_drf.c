/* super_drf.c - the Dominant Resource Fairness choice of best-effort
 * sharing (src/super/drf.c, compiled in): which cell gets the next spare
 * core. Checked, on a node of 8 cores and 64 GiB:
 *   - only cells below their want take part; none: -1;
 *   - the lowest dominant share, max(cores / 8, mem limit / 64 GiB), wins,
 *     memory dominating for a cell with a big limit, cores otherwise; no
 *     limit counts 0 for memory;
 *   - ties: the higher priority, then the smaller name; shares compared
 *     exactly (1/8 of the cores equals 8 GiB of 64);
 *   - handing out cores one at a time converges to DRF's allocation.
 * Needs nothing from the machine. */
#include "../src/super/drf.c"

#include "harness.h"

#define GIB (1ull << 30)
#define MANAGED 8
#define MEM (64 * GIB)

static int pick(const struct drf_cand *c, int n)
{
	return drf_pick(c, n, MANAGED, MEM);
}

static void check_wants(void)
{
	struct drf_cand c[] = {
		{ "a", 2, 2, 0, 0 },      /* has what it wants */
		{ "b", 3, 1, 0, 0 },      /* holds more than it wants */
	};

	CHECK_EQ(pick(c, 2), -1);
	CHECK_EQ(pick(c, 0), -1);
	c[1].want = 4;
	CHECK_EQ(pick(c, 2), 1);
	printf("only cells below their want\n");
}

static void check_dominant(void)
{
	struct drf_cand c[] = {
		{ "cores", 3, 8, 0, 0 },          /* 3/8 cores, no limit: 3/8 */
		{ "memory", 1, 8, 32 * GIB, 0 },  /* memory dominates: 1/2 */
		{ "small", 2, 8, 8 * GIB, 0 },    /* 2/8 vs 1/8: 1/4 */
	};

	CHECK_EQ(pick(c, 3), 2);
	c[2].held = 4;                            /* 1/2 */
	CHECK_EQ(pick(c, 3), 0);
	c[0].held = 5;                            /* 5/8 */
	/* memory and small tie at 1/2: priorities 0, names */
	CHECK_EQ(pick(c, 3), 1);
	c[2].priority = 3;
	CHECK_EQ(pick(c, 3), 2);
	printf("lowest dominant share, memory or cores\n");
}

static void check_ties(void)
{
	struct drf_cand c[] = {
		{ "zeta", 1, 4, 8 * GIB, 5 },     /* 1/8 both ways */
		{ "beta", 1, 4, 0, 5 },           /* 1/8 cores */
		{ "alpha", 1, 4, 4 * GIB, 2 },    /* 1/8, lower priority */
	};

	CHECK_EQ(pick(c, 3), 1);                  /* exact tie: name */
	c[0].priority = 6;
	CHECK_EQ(pick(c, 3), 0);                  /* priority first */
	c[0].mem = 8 * GIB + 1;                   /* a byte more: not a tie */
	CHECK_EQ(pick(c, 3), 1);
	c[1].priority = 0;
	CHECK_EQ(pick(c, 3), 2);
	printf("ties: priority, then name; exact comparison\n");
}

/* One core at a time, the way lend_settle() hands them out. */
static void check_converges(void)
{
	struct drf_cand c[] = {
		{ "a", 0, 8, 32 * GIB, 0 },       /* memory-heavy: 1/2 at once */
		{ "b", 0, 8, 0, 0 },
		{ "c", 0, 2, 0, 0 },              /* wants only 2 */
	};
	int spare = MANAGED, i;

	while (spare > 0 && (i = pick(c, 3)) >= 0) {
		c[i].held++;
		spare--;
	}
	/* b and c level up to c's want; a joins once b reaches 1/2 */
	CHECK_EQ(c[2].held, 2);
	CHECK_EQ(c[0].held + c[1].held, 6);
	CHECK_EQ(c[1].held, 4);
	CHECK_EQ(c[0].held, 2);
	printf("one core at a time: a=%d b=%d c=%d\n", c[0].held, c[1].held,
	       c[2].held);
}

int main(void)
{
	check_wants();
	check_dominant();
	check_ties();
	check_converges();
	printf("ok\n");
	return TEST_PASS;
}
