#!/usr/bin/env bash
# bench.sh - `make bench B=<name>`: build the release configuration (-O2)
# and run bench/<name> per DESIGN.md's benchmark contract. Results go to
# bench/results/<name>.{json,md}. BENCH_QUICK=1 runs a few-second version.
# Without a name, runs every benchmark.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/deps.sh
dir=build/release
mkdir -p build
log=build/release-bench.log
# Quiet when all is well; the whole log when something fails.
if [ ! -f "$dir/build.ninja" ]; then
  meson setup "$dir" -Dbuildtype=release -Doptimization=2 >"$log" 2>&1 || {
    cat "$log" >&2; echo "bench.sh: configuring $dir failed (log: $log)" >&2; exit 1; }
fi

names=("$@")
if [ ${#names[@]} -eq 0 ] || [ -z "${names[0]}" ]; then
  targets=()
else
  # Only the benchmarks asked for, so unrelated work in progress elsewhere
  # in the tree does not stop them.
  targets=("${names[@]/#/bench/bench-}")
fi
if ! ninja -C "$dir" "${targets[@]}" >"$log" 2>&1; then
  bad=$(sed -n "s|.*unknown target 'bench/bench-\([^']*\)'.*|\1|p" "$log" | head -n 1)
  if [ -n "$bad" ]; then
    have=$(ninja -C "$dir" -t targets all 2>/dev/null | sed -n 's|^bench/bench-\([^:/]*\): .*|\1|p' | sort -u | tr '\n' ' ')
    echo "bench.sh: no benchmark named '$bad' (have: $have)" >&2
    exit 2
  fi
  cat "$log" >&2; echo "bench.sh: building in $dir failed (log: $log)" >&2; exit 1
fi

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
