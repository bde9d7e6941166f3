/* latency.c - request latencies published in procdata for atolld's
 * latency controller (include/atoll/latency.h).
 *
 * Vcore i owns histogram i of procdata (procinfo.h): only vcore i's thread
 * records into it, so recording is hist.h's single-writer path. A uthread
 * cannot change vcores inside rt_latency_record() (there is no scheduling
 * point in it), and a vcore taken by force keeps its own thread, so the
 * rule holds even then. The histogram is initialised by its vcore on first
 * use and announced with procdata vc[i].hist_on.
 */
#include <errno.h>

#include <atoll/latency.h>

#include "internal.h"

void rt_latency_record(uint64_t ns)
{
	/* vcore_self() first: only runtime threads may look at rt.mcp_pd,
	 * which mcp_stop() clears after the vcore threads are joined. */
	struct vcore *vc = vcore_self();
	struct procdata *pd;
	struct hist *h;

	if (!vc)
		return;
	pd = rt.mcp_pd;
	if (likely(!pd) || vc->id >= PROCINFO_MAX_VCORES)
		return;
	h = procdata_hist(pd, vc->id);
	if (unlikely(!load_relaxed(&pd->vc[vc->id].hist_on))) {
		hist_init(h);
		/* Release: the initialised histogram before the flag; pairs
		 * with the load_acquire of hist_on in atolld (mcp.c) and in
		 * rt_latency_snapshot(). */
		store_release(&pd->vc[vc->id].hist_on, 1);
	}
	hist_record(h, ns);
}

int rt_latency_snapshot(struct hist *out)
{
	struct procdata *pd = rt.mcp_pd;
	unsigned n = rt.nr_vcores;

	hist_init(out);
	if (!pd)
		return -ENODEV;
	if (n > PROCINFO_MAX_VCORES)
		n = PROCINFO_MAX_VCORES;
	for (unsigned i = 0; i < n; i++)
		/* Acquire: pairs with the release in rt_latency_record(). */
		if (load_acquire(&pd->vc[i].hist_on))
			hist_merge(out, procdata_hist(pd, i));
	return 0;
}
