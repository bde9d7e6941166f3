#!/usr/bin/env bash
# demo.sh - `make demo`: build the release configuration and run the demo.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/deps.sh
dir=build/release
[ -f "$dir/build.ninja" ] || meson setup "$dir" -Dbuildtype=release -Doptimization=2 >/dev/null
ninja -C "$dir" >/dev/null
exec "$dir/examples/atoll-demo"
