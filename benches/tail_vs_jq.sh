#!/usr/bin/env bash
# `flowtrace tail --filter` against `jq -c 'select(...)'` with the same predicate over the same
# 1,000,000-line flow file, measured in one run; prints both times and the ratio.
# Needs jq (apt-get install jq). Figures in docs/performance.md.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --quiet
flows=target/synthetic/flows.jsonl
[ -f "$flows" ] || cargo run --release --quiet --example synthetic -- target/synthetic 1000000

seconds() { # command... -> wall seconds, output discarded
    local start end
    start=$(date +%s.%N)
    "$@" > /dev/null
    end=$(date +%s.%N)
    echo "$end - $start" | bc -l
}

flowtrace_filter='dst.ns=ns-042 port=443'
jq_filter='select(.dest_namespace == "ns-042" and .dest_port == 443)'
matches_flowtrace=$(target/release/flowtrace tail --source "file:$flows" --filter "$flowtrace_filter" -o json | wc -l)
matches_jq=$(jq -c "$jq_filter" "$flows" | wc -l)
[ "$matches_flowtrace" = "$matches_jq" ] || { echo "different results: $matches_flowtrace vs $matches_jq" >&2; exit 1; }

flowtrace_time=$(seconds target/release/flowtrace tail --source "file:$flows" --filter "$flowtrace_filter" -o json)
jq_time=$(seconds jq -c "$jq_filter" "$flows")
printf 'lines: %s, matching: %s\n' "$(wc -l < "$flows")" "$matches_jq"
printf 'flowtrace tail --filter: %.2f s\njq select:               %.2f s\nratio:                   %.1fx\n' \
    "$flowtrace_time" "$jq_time" "$(echo "$jq_time / $flowtrace_time" | bc -l)"
