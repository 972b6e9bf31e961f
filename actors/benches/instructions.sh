#!/usr/bin/env bash
# Instructions executed by the dispatch-path scenario (benches/dispatch_path.rs,
# its --small city) under `valgrind --tool=callgrind`, against the baseline
# committed beside this script. Instruction counts are repeatable on a noisy
# machine where timings are not: a change that makes the live dispatch path
# costlier shows here as a ratio.
#
#   actors/benches/instructions.sh            # measure and compare (fails past +5 %)
#   actors/benches/instructions.sh --update   # measure and write the baseline
set -euo pipefail
cd "$(dirname "$0")/../.."
baseline=actors/benches/dispatch_path.instructions
bin=$(cargo bench -p dispatch-actors --bench dispatch_path --no-run 2>&1 | grep -o 'target/release/deps/dispatch_path-[a-f0-9]*' | head -1)
[ -x "$bin" ] || { echo "instructions: no bench binary built" >&2; exit 1; }
out=$(mktemp)
trap 'rm -f "$out"' EXIT
valgrind --tool=callgrind --callgrind-out-file="$out" "$bin" --small >/dev/null 2>&1
count=$(sed -n 's/^summary: \([0-9]*\).*/\1/p' "$out")
[ -n "$count" ] || { echo "instructions: no summary in the callgrind output" >&2; exit 1; }
if [ "${1:-}" = "--update" ]; then
  echo "$count" > "$baseline"
  echo "instructions: baseline set to $count"
  exit 0
fi
base=$(cat "$baseline")
ratio=$(awk -v c="$count" -v b="$base" 'BEGIN { printf "%.3f", c / b }')
echo "instructions: $count against a baseline of $base: ${ratio}×"
awk -v r="$ratio" 'BEGIN { exit !(r <= 1.05) }' || { echo "instructions: more than 5 % over the baseline" >&2; exit 1; }
