#!/usr/bin/env bash
# Runs `make test` N times in a row (default 3) while two CPU-burning processes run beside it:
# the test suite must pass on a loaded machine (tests synchronise on events, not on sleeps).
# Usage: scripts/flake-proof.sh [runs]
set -euo pipefail
runs="${1:-3}"
burners=()
for _ in 1 2; do
  ( while :; do :; done ) &
  burners+=($!)
done
trap 'kill "${burners[@]}" 2>/dev/null || true' EXIT
for run in $(seq 1 "$runs"); do
  echo "=== flake-proof run $run of $runs (2 CPU burners running) ==="
  make test
done
echo "=== flake-proof: $runs of $runs runs passed under load ==="
