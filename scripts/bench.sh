#!/usr/bin/env bash
# bench.sh - `make bench B=<name>`: build the release configuration (-O2)
# and run bench/<name> per DESIGN.md's benchmark contract. Results go to
# bench/results/<name>.{json,md}. BENCH_QUICK=1 runs a few-second version.
# Without a name, runs every benchmark.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/deps.sh
dir=build/release
[ -f "$dir/build.ninja" ] || meson setup "$dir" -Dbuildtype=release -Doptimization=2 >/dev/null
ninja -C "$dir" >/dev/null

names=("$@")
if [ ${#names[@]} -eq 0 ] || [ -z "${names[0]}" ]; then
  names=()
  for f in "$dir"/bench/bench-*; do names+=("${f##*/bench-}"); done
fi

export BENCH_OUT="${BENCH_OUT:-$PWD/bench/results}"
for b in "${names[@]}"; do
  exe="$dir/bench/bench-$b"
  if [ ! -x "$exe" ]; then
    echo "bench.sh: no benchmark named '$b' (have: $(ls "$dir"/bench | sed -n 's/^bench-//p' | tr '\n' ' '))" >&2
    exit 2
  fi
  BENCH_CMD="make bench B=$b${BENCH_QUICK:+ BENCH_QUICK=$BENCH_QUICK}" "$exe"
done
