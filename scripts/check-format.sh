#!/usr/bin/env bash
# Checks that every tracked C source and header is formatted as .clang-format
# (at the root) says: clang-format --dry-run --Werror, which changes nothing and
# names each file and line that differs. Fix with: clang-format -i FILE. The
# test command runs it as the suite "format"; clang-format comes with
# scripts/bootstrap.sh --with-tests.
#
# Usage: scripts/check-format.sh
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)"
cd "$ROOT"

command -v clang-format >/dev/null || { echo "format: clang-format missing: scripts/bootstrap.sh --with-tests" >&2; exit 1; }
files=()
while IFS= read -r -d '' f; do [[ -f "$f" ]] && files+=("$f"); done < <(git ls-files -z -- '*.c' '*.h')
((${#files[@]})) || { echo "format: no C files found" >&2; exit 1; }
if clang-format --dry-run --Werror "${files[@]}"; then
  echo "format: ${#files[@]} C files formatted as .clang-format says" >&2
else
  echo "format: the files above differ from .clang-format (fix: clang-format -i FILE)" >&2
  exit 1
fi
