#!/usr/bin/env bash
# Runs shellcheck on every shell script of the repository: the tracked files
# under scripts/, deploy/, bench/ and .ci/ whose name ends in .sh or whose first
# line is a sh/bash shebang, following what they source (-x). The test command
# runs it as the suite "lint-shell" (scripts/check-deploy.sh leaves deploy/ to
# it). shellcheck comes from Debian: scripts/bootstrap.sh --with-lint.
#
# Usage: scripts/lint-shell.sh [--list]   (--list: print the files, check nothing)
# Exit status: 0 when every file is clean, 1 otherwise (or when shellcheck is missing).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)"
cd "$ROOT"

files=()
while IFS= read -r -d '' f; do
  [[ -f "$f" ]] || continue
  if [[ "$f" == *.sh ]] || head -n 1 "$f" | grep -qE '^#!.*[/ ](ba|da)?sh( |$)'; then files+=("$f"); fi
done < <(git ls-files -z -- scripts deploy bench .ci)
((${#files[@]})) || { echo "lint-shell: no shell scripts found" >&2; exit 1; }

if [[ "${1:-}" == --list ]]; then
  printf '%s\n' "${files[@]}"
  exit 0
fi
command -v shellcheck >/dev/null || { echo "lint-shell: shellcheck missing: scripts/bootstrap.sh --with-lint" >&2; exit 1; }
if shellcheck -x "${files[@]}"; then
  echo "lint-shell: ${#files[@]} scripts clean" >&2
else
  echo "lint-shell: shellcheck found problems (above) in the ${#files[@]} scripts checked" >&2
  exit 1
fi
