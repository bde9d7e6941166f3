#!/usr/bin/env bash
# deps.sh - install what Atoll's build, tests and benchmarks need, from
# Debian's packages. Idempotent and quiet when everything is present.
set -euo pipefail

packages=(
  gcc make meson ninja-build pkg-config python3
  libasan8 libubsan1 libtsan2
  liburing-dev libhwloc-dev libnuma-dev
  memcached libmemcached-tools python3-pymemcache python3-matplotlib
  stress-ng
)

missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q '^install ok installed$'; then
    missing+=("$p")
  fi
done

[ ${#missing[@]} -eq 0 ] && exit 0

if [ "$(id -u)" -ne 0 ]; then
  echo "deps.sh: these Debian packages are missing: ${missing[*]}" >&2
  echo "deps.sh: run as root (or: sudo apt-get install ${missing[*]})" >&2
  exit 1
fi

echo "deps.sh: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
if ! apt-get install -y -qq --no-install-recommends "${missing[@]}" >/tmp/atoll-deps.log 2>&1; then
  # A fresh machine may have no package lists yet.
  apt-get update -qq >>/tmp/atoll-deps.log 2>&1
  if ! apt-get install -y -qq --no-install-recommends "${missing[@]}" >>/tmp/atoll-deps.log 2>&1; then
    echo "deps.sh: apt-get install failed; see /tmp/atoll-deps.log" >&2
    tail -n 20 /tmp/atoll-deps.log >&2
    exit 1
  fi
fi
