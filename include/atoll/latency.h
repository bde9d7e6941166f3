/* latency.h - an application's request latencies, published to atolld.
 *
 * Owns: nothing of its own: it writes the per-vcore latency histograms of
 * procdata (include/atoll/procinfo.h), which exist only while the process
 * is registered with atolld as an MCP. atolld merges them and, for a cell
 * with a latency target, moves cores toward the cell when its tail
 * latency is above the target (RainForest's controller, 6.3.2; see
 * docs/supervisor-protocol.md, "The latency controller").
 *
 * A service calls rt_latency_record() once per request with the time it
 * took. Each vcore records into its own histogram (one writer per
 * histogram, no atomic read-modify-write, no lock): a clz, a few shifts
 * and five stores. In standalone mode (no atolld, or not registered) it
 * returns at once and records nothing.
 *
 * Context: uthread or vcore context of a process inside rt_main(). From
 * any other thread rt_latency_record() records nothing (such a thread has
 * no vcore, hence no histogram it may write).
 */
#ifndef ATOLL_LATENCY_H
#define ATOLL_LATENCY_H

#include <stdint.h>

#include <atoll/hist.h>

/* Record one request latency of ns nanoseconds into the calling vcore's
 * histogram. A no-op when standalone or outside the runtime. */
void rt_latency_record(uint64_t ns);

/*
 * Merge every vcore's published histogram into *out (which is initialised
 * first): every sample recorded since registration. Not an atomic cut:
 * samples recorded meanwhile may or may not be in it (hist.h, "Reading a
 * live histogram"). Reads about 31 KiB per vcore that recorded anything.
 * Returns 0, or -ENODEV in standalone mode (out is then empty).
 */
int rt_latency_snapshot(struct hist *out);

#endif /* ATOLL_LATENCY_H */
