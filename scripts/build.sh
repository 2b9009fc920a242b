#!/usr/bin/env bash
# Builds the programs and unit tests: build/ (release with debug info) and,
# with --asan, build-asan/ (AddressSanitizer + UndefinedBehaviorSanitizer).
# Usage: scripts/build.sh [--asan]
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)"
cd "$ROOT"
if [[ "${1:-}" == "--asan" ]]; then
  cmake -S . -B build-asan -G Ninja -DCMAKE_BUILD_TYPE=Debug -DORDER_SANITIZE=ON >/dev/null
  cmake --build build-asan
else
  cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
  cmake --build build
fi
