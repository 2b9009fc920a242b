#!/usr/bin/env bash
# Builds the libFuzzer targets with clang (build-fuzz/) and runs each one for a
# bounded time over its seed corpus. A crash, leak or sanitizer report fails.
# Usage: scripts/fuzz.sh [seconds per target, default 30]
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)"
cd "$ROOT"
secs="${1:-30}"
CC=clang cmake -S . -B build-fuzz -G Ninja -DORDER_FUZZ=ON -DORDER_TESTS=OFF \
  -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build-fuzz --target fuzz_order fuzz_sqs fuzz_sqs_entry fuzz_events fuzz_jwt fuzz_jwks \
  fuzz_payment
for t in order sqs sqs_entry events jwt jwks payment; do
  work="build-fuzz/corpus-$t"
  mkdir -p "$work"
  echo "fuzz: fuzz_$t for ${secs}s" >&2
  build-fuzz/tests/fuzz/fuzz_$t -max_total_time="$secs" -max_len=70000 -timeout=10 \
    -artifact_prefix=build-fuzz/ "$work" "tests/fuzz/corpus/$t" 2>&1 | tail -n 3
done
