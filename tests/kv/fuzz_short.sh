#!/bin/sh
# fuzz_short.sh - the kv_fuzz_short test: run the libFuzzer build of
# fuzz_session.c for a few seconds from the seed corpus.
# Arguments: FUZZER (empty when this build has none) CORPUS SECONDS
# ARTIFACT_DIR (where a crashing input is kept).
set -eu
fuzzer=$1 corpus=$2 seconds=$3 artifacts=$4
if [ -z "$fuzzer" ]; then
	echo "SKIP: no clang with libFuzzer (clang -fsanitize=fuzzer) was" \
	     "found when this build was configured"
	exit 77
fi
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
# New inputs go to $work (the first corpus directory), never the source
# tree. libFuzzer's default failure exit code is 77, which means skip here.
exec "$fuzzer" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 \
	-error_exitcode=1 -timeout_exitcode=1 -print_final_stats=1 \
	-artifact_prefix="$artifacts/" "$work" "$corpus"
