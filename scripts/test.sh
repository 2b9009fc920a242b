#!/usr/bin/env bash
# Runs every test, doing its own set-up on a fresh Debian/Ubuntu machine:
#   static checks (every shell script with shellcheck, every C file with
#   clang-format), unit tests (cmocka, every SigV4 vector) in a normal and an
#   ASan+UBSan build,
#   integration tests against real PostgreSQL and LocalStack with both builds,
#   bounded libFuzzer runs, Terraform/Dockerfile checks, the container test and,
#   last, compose.yaml run with Docker Compose on podman (scripts/compose-test.sh).
# It starts the services it needs and stops them on exit. The last line reads
# "all: N passed, M failed" (one entry per suite).
#
# Usage: scripts/test.sh [--quick]   (--quick: skip the ASan integration run,
#                                     fuzzing, deploy checks and containers)
set -uo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)"
cd "$ROOT" || exit 1
quick=0
[[ "${1:-}" == "--quick" ]] && quick=1

passed=0 failed=0 failures=()
suite() {
  local name=$1; shift
  echo "=== $name" >&2
  local t0=$SECONDS
  if "$@"; then
    passed=$((passed + 1)); echo "=== $name: passed ($((SECONDS - t0)) s)" >&2
  else
    failed=$((failed + 1)); failures+=("$name"); echo "=== $name: FAILED ($((SECONDS - t0)) s)" >&2
  fi
}

# --with-tests: pytest, psycopg and Schemathesis in .venv, clang, valgrind, wrk
boot=(--with-tests)
((quick)) || boot+=(--with-containers)
scripts/bootstrap.sh "${boot[@]}" || exit 1
scripts/build.sh || exit 1
scripts/build.sh --asan || exit 1

# static checks: every shell script (shellcheck), every C file (clang-format)
suite lint-shell scripts/lint-shell.sh
suite format scripts/check-format.sh

export CMOCKA_MESSAGE_OUTPUT=stdout
suite unit ctest --test-dir build --output-on-failure
suite unit-asan ctest --test-dir build-asan --output-on-failure
# valgrind sees what the sanitizers cannot: uninitialised reads (MSan needs an
# instrumented libc) and leaks in the uninstrumented release build
# shellcheck disable=SC2317 # run by suite
unit_valgrind() {
  local t rc=0
  for t in build/tests/unit/test_*; do
    valgrind -q --error-exitcode=1 --leak-check=full --errors-for-leak-kinds=definite \
      "$t" >/dev/null || { echo "valgrind: $t failed" >&2; rc=1; }
  done
  return "$rc"
}
((quick)) || suite unit-valgrind unit_valgrind

# stop at the end only the services this run started
started_services=0
scripts/services.sh status >/dev/null 2>&1 || started_services=1
scripts/services.sh start || exit 1
if ((started_services)); then trap 'scripts/services.sh stop >/dev/null 2>&1 || true' EXIT; fi
PYTEST=(.venv/bin/python -m pytest -p no:cacheprovider tests/integration -q)
suite integration env ORDER_BIN="$ROOT/build" "${PYTEST[@]}"
if ((!quick)); then
  suite integration-asan env ORDER_BIN="$ROOT/build-asan" ORDER_SANITIZED=1 "${PYTEST[@]}"
  suite fuzz scripts/fuzz.sh 30
  suite deploy-checks scripts/check-deploy.sh
  suite containers scripts/container-test.sh
  # last: compose.yaml with Docker Compose on podman (own engine and ports);
  # bounded by its TOTAL_TIMEOUT and, should that fail, by timeout(1), whose
  # TERM still lets the script's trap take the stack down (--foreground: a
  # Ctrl-C on the terminal reaches it too, and its cleanup runs)
  suite compose env TOTAL_TIMEOUT=1800 timeout --foreground -k 300 2100 scripts/compose-test.sh
fi

((failed)) && echo "failed suites: ${failures[*]}" >&2
echo "all: $passed passed, $failed failed"
exit $((failed > 0))
