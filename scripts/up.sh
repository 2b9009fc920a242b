#!/usr/bin/env bash
# Brings the whole system up on this machine: installs what is missing, starts
# PostgreSQL and LocalStack on 127.0.0.1 (queue + dead-letter queue with a
# redrive policy), builds, migrates, then runs order-api on :8080 and two
# order-workers in the foreground. Ctrl-C stops everything cleanly.
#
# Usage: scripts/up.sh            (PORT=8080 and PAYMENT_DELAY_MS=2000 may be overridden)
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)"
cd "$ROOT"

scripts/bootstrap.sh
scripts/build.sh
# leave services running that someone else started (a test run, another shell)
started_services=0
scripts/services.sh status >/dev/null 2>&1 || started_services=1
scripts/services.sh start
# shellcheck disable=SC1091
source .local/env
export BIND_ADDRESS=127.0.0.1 PORT="${PORT:-8080}" LOG_LEVEL="${LOG_LEVEL:-info}"
export PAYMENT_DELAY_MS="${PAYMENT_DELAY_MS:-2000}"
# Local signing keys and tokens (scripts/token.sh) are not here yet: until
# they are, the local API runs with authentication explicitly off (it warns
# about it every minute). Deployments keep the default, AUTH_MODE=jwt.
export AUTH_MODE="${AUTH_MODE:-off}"
export MIGRATIONS_DIR="$ROOT/migrations" OPENAPI_PATH="$ROOT/api/openapi.yaml"

pids=()
stopping=0
stop_all() {
  ((stopping)) && return
  stopping=1
  trap '' INT TERM # a second Ctrl-C must not cut the clean stop short
  echo "up: stopping the API and workers..." >&2
  for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  if ((started_services)); then scripts/services.sh stop; fi
  echo "up: stopped." >&2
}
trap stop_all EXIT
trap 'exit 130' INT TERM

build/order-api migrate
build/order-api & pids+=($!)
METRICS_PORT=9101 build/order-worker & pids+=($!)
METRICS_PORT=9102 build/order-worker & pids+=($!)

for _ in $(seq 1 100); do
  curl -fsS "http://127.0.0.1:$PORT/healthz" >/dev/null 2>&1 && break
  sleep 0.1
done
cat >&2 <<MSG

up: order-api on http://127.0.0.1:$PORT, two workers (metrics on :9101 and :9102).
up: try it (the order turns PROCESSED about ${PAYMENT_DELAY_MS} ms later):

  id=\$(curl -s -X POST http://127.0.0.1:$PORT/orders -H 'Content-Type: application/json' \\
        -d '{"customer_id":"c-123","currency":"BRL","items":[{"product_id":"p-1","quantity":2,"unit_price_cents":1500}]}' \\
        | sed -E 's/.*"id":"([^"]+)".*/\1/'); echo "\$id"
  curl -s http://127.0.0.1:$PORT/orders/\$id; sleep 3; curl -s http://127.0.0.1:$PORT/orders/\$id

up: press Ctrl-C to stop everything.
MSG
wait -n "${pids[@]}" || true
echo "up: a program exited; stopping the rest" >&2
