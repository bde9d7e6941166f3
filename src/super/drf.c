/* drf.c - the Dominant Resource Fairness choice of lend.c: which cell
 * gets the next spare core. Pure (no atolld state), so a unit test calls
 * it alone (tests/super_drf.c).
 *
 * Design note. A cell's dominant share is the larger of its core share
 * (cores held / cores managed) and its memory share (memory limit / node
 * memory); the next core goes to the lowest (Ghodsi et al., as Akaros
 * 2.6 proposes). Shares are compared exactly, as integers over the
 * common denominator managed * mem_total.
 * Memory shares: a cell without a memory limit counts 0 for memory. Its
 * use is not bounded, but it is not guaranteed anything either, and
 * counting it as the whole node would starve every unlimited cell behind
 * limited ones; set a limit to make memory weigh.
 */
#include "internal.h"

#include <string.h>

/* Dominant share numerator over the common denominator managed *
 * mem_total: comparing these compares the shares exactly. */
static unsigned __int128 dominant(const struct drf_cand *c, int managed,
				  uint64_t mem_total)
{
	unsigned __int128 cores = (unsigned __int128)(unsigned)c->held *
				  mem_total;
	unsigned __int128 mem = (unsigned __int128)c->mem * (unsigned)managed;

	return cores > mem ? cores : mem;
}

int drf_pick(const struct drf_cand *c, int n, int managed,
	     uint64_t mem_total)
{
	unsigned __int128 best_share = 0;
	int best = -1;

	if (mem_total == 0) /* no memory figure: cores alone */
		mem_total = 1;
	for (int i = 0; i < n; i++) {
		unsigned __int128 share;

		if (c[i].held >= c[i].want)
			continue;
		share = dominant(&c[i], managed, mem_total);
		if (best >= 0) {
			if (share != best_share) {
				if (share > best_share)
					continue;
			} else if (c[i].priority != c[best].priority) {
				if (c[i].priority < c[best].priority)
					continue;
			} else if (strcmp(c[i].name, c[best].name) >= 0) {
				continue;
			}
		}
		best = i;
		best_share = share;
	}
	return best;
}
