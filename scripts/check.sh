#!/usr/bin/env bash
# check.sh - `make check`: install dependencies, build the normal, the
# ASan+UBSan and the TSan configurations with warnings as errors, run every
# test suite in each, and close with one line "N passed, N failed".
set -uo pipefail
cd "$(dirname "$0")/.."

scripts/deps.sh || exit 1

# name | meson options | timeout multiplier
configs=(
  "debug|-Dbuildtype=debug|1"
  "asan|-Dbuildtype=debugoptimized -Db_sanitize=address,undefined|3"
  "tsan|-Dbuildtype=debugoptimized -Db_sanitize=thread|5"
)

build_failed=0
logs=()
mkdir -p build
for c in "${configs[@]}"; do
  IFS='|' read -r name opts mult <<<"$c"
  dir="build/check-$name"
  echo "== $name: configure and build"
  if [ ! -f "$dir/build.ninja" ]; then
    # shellcheck disable=SC2086
    meson setup "$dir" $opts -Dwerror=true >"$dir.setup.log" 2>&1 || {
      cat "$dir.setup.log"; build_failed=$((build_failed + 1)); continue; }
  fi
  if ! ninja -C "$dir" >"$dir.build.log" 2>&1; then
    cat "$dir.build.log"
    echo "== $name: BUILD FAILED"
    build_failed=$((build_failed + 1))
    continue
  fi
  echo "== $name: test"
  rm -f "$dir/meson-logs/testlog.json"
  meson test -C "$dir" --print-errorlogs --num-processes 2 \
    --timeout-multiplier "$mult" 2>&1 | grep -E '^ *[0-9]+/[0-9]+ |^(Ok|Fail|Skipped|Timeout|Expected Fail|Unexpected Pass):|-{10}|stderr|FAIL|ERROR|SUMMARY|SKIP' 
  logs+=("$dir/meson-logs/testlog.json")
done

python3 - "$build_failed" "${logs[@]}" <<'PY'
import json, sys
build_failed = int(sys.argv[1])
passed = failed = skipped = 0
for path in sys.argv[2:]:
    try:
        lines = open(path).read().splitlines()
    except OSError:
        failed += 1
        print(f"missing test log {path}")
        continue
    cfg = path.split('/')[1].replace('check-', '')
    for line in lines:
        t = json.loads(line)
        r = t["result"]
        if r == "OK":
            passed += 1
        elif r == "SKIP":
            skipped += 1
            out = (t.get("stdout") or "").strip().splitlines()
            reason = next((l for l in out if l.startswith("SKIP")), "SKIP")
            print(f"skipped [{cfg}] {t['name']}: {reason}")
        else:
            failed += 1
            print(f"failed  [{cfg}] {t['name']}: {r}")
failed += build_failed
print(f"{passed} passed, {failed} failed, {skipped} skipped")
sys.exit(1 if failed else 0)
PY
