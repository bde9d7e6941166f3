#!/usr/bin/env bash
# demo.sh - `make demo`: build everything (release, -O2), then show Atoll's
# point in under a minute: atoll-kv's tail latency beside batch work, in a
# cell and on plain Linux. It is the short version of
# `make bench B=colocation` (BENCH_QUICK=1), with its results kept out of
# bench/results/. Where that cannot run (not root, no cgroups, one CPU), it
# says why and runs the runtime tour (examples/atoll-demo) instead.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/deps.sh
dir=build/release
mkdir -p build
log=build/release-demo.log
echo "Building everything (release) in $dir ..."
# Quiet when all is well; the whole log when something fails.
if [ ! -f "$dir/build.ninja" ]; then
  meson setup "$dir" -Dbuildtype=release -Doptimization=2 >"$log" 2>&1 || {
    cat "$log" >&2; echo "demo.sh: configuring $dir failed (log: $log)" >&2; exit 1; }
fi
ninja -C "$dir" >"$log" 2>&1 || {
  cat "$log" >&2; echo "demo.sh: building $dir failed (log: $log)" >&2; exit 1; }

out=$(mktemp -d /tmp/atoll-demo.XXXXXX)
trap 'rm -rf "$out"' EXIT

cat <<'EOF'

atoll-kv (a memcached-compatible server on Atoll's runtime, one core) serves
a fixed open-loop load while batch work (stress-ng cpu, cache, memory, and a
gcc compile loop) runs beside it, in turn:
  - in a cell:   atolld gives atoll-kv a core of its own (an LL cell) and
                 confines the batch work to the other one (a CG cell);
  - plain Linux: the same two programs, no cells; the default scheduler
                 places them and the batch work may use both cores.
Its p99 latency alone and beside each antagonist, about 30 seconds:

EOF

status=0
BENCH_QUICK=1 BENCH_OUT="$out" BENCH_CMD="make demo" \
  "$dir/bench/bench-colocation" >"$out/stdout" || status=$?

if [ "$status" -eq 77 ]; then
  sed 's/^SKIP: /The co-location demo cannot run here: /' "$out/stdout"
  echo "Showing the runtime tour instead."
  echo
  exec "$dir/examples/atoll-demo"
fi
if [ "$status" -ne 0 ]; then
  cat "$out/stdout"
  echo "demo.sh: the co-location run failed (exit status $status)." >&2
  exit 1
fi

# The bench's own summary: from its title to the late-send lines.
sed -n '/^atoll-kv at /,/would throttle it)/p' "$out/stdout"
cat <<'EOF'

How to read it: slowdown = p99 beside the antagonist / p99 alone - 1, in
the same setup. In its cell atoll-kv keeps a core to itself, so what can
still reach it is what cores do not partition (shared caches, memory
bandwidth, the kernel); on plain Linux it also waits for a CPU behind the
batch work. "batch work cell/plain" is how much the batch work got done in
its one-core cell (shared with the load generator) against two cores on
plain Linux: the price of the isolation. The load generator runs outside
the cells at real-time priority, so the batch work cannot delay its sends;
the late-send lines check that.

This was one short run on whatever else this machine is doing. The full
experiment, several interleaved runs with p99.9: make bench B=colocation
(results in bench/results/colocation.md).
EOF
