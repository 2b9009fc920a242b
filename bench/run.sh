#!/usr/bin/env bash
# The "fast and frugal" benchmark: one command, see bench/README.md.
#
# Usage: bench/run.sh [options]
#   --sqs localstack|elasticmq|both   SQS-compatible server(s) to measure against (both)
#   --orders N            orders per end-to-end run (20000; the figures in
#                         RESULTS.md are meant for N >= 20000)
#   --duration S          seconds per API load level (15)
#   --levels L            API load concurrency levels, comma-separated (16,64,256)
#   --workers L           worker counts of the end-to-end runs (1,2,4)
#   --frugal-orders N     orders of the 1-worker/1000-in-flight memory run (5000)
#   --no-profile          skip the perf profile of the API
#   --quick               smoke test: --orders 2000 --duration 3 --frugal-orders 1000
#                         --no-profile, report to .local/bench/<run>/RESULTS.md
#   --out FILE            where to write the report (bench/RESULTS.md)
#   -h, --help            this help
# It runs scripts/bootstrap.sh and scripts/build.sh, starts PostgreSQL and
# LocalStack (scripts/services.sh) unless they are running already, and
# ElasticMQ (bench/elasticmq.sh); it stops on exit exactly what it started.
# Work files and logs: .local/bench/<run id>/.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)"
cd "$ROOT"
CMDLINE="bench/run.sh${*:+ $*}"
T_START=$SECONDS

LIB_TAG=run.sh LIB_LOG_CLOCK=1
# shellcheck source=SCRIPTDIR/../scripts/lib.sh
source "$ROOT/scripts/lib.sh"

sqs=both orders=20000 duration=15 levels=16,64,256 workers=1,2,4 frugal=5000 profile=8
out="$ROOT/bench/RESULTS.md" quick=0
while (($#)); do
  case "$1" in
    --sqs) sqs="${2:?--sqs needs a value}"; shift ;;
    --sqs=*) sqs="${1#*=}" ;;
    --orders) orders="${2:?}"; shift ;;
    --orders=*) orders="${1#*=}" ;;
    --duration) duration="${2:?}"; shift ;;
    --levels) levels="${2:?}"; shift ;;
    --workers) workers="${2:?}"; shift ;;
    --frugal-orders) frugal="${2:?}"; shift ;;
    --no-profile) profile=0 ;;
    --quick) quick=1 ;;
    --out) out="${2:?}"; shift ;;
    -h | --help) usage; exit 0 ;;
    *) usage >&2; die "unknown argument: $1" ;;
  esac
  shift
done
case "$sqs" in
  localstack) servers=(localstack) ;;
  elasticmq) servers=(elasticmq) ;;
  both) servers=(localstack elasticmq) ;;
  *) die "--sqs must be localstack, elasticmq or both" ;;
esac
RUN_ID="$(date -u +%Y%m%d%H%M%S)-$$"
WORK="$ROOT/.local/bench/$RUN_ID"
if ((quick)); then
  orders=2000 duration=3 frugal=1000 profile=0
  [[ "$out" == "$ROOT/bench/RESULTS.md" ]] && out="$WORK/RESULTS.md"
fi
for v in orders duration frugal; do
  [[ "${!v}" =~ ^[0-9]+$ ]] || die "$v must be a number"
done
[[ "$levels" =~ ^[0-9]+(,[0-9]+)*$ ]] || die "--levels must be numbers separated by commas"
[[ "$workers" =~ ^[0-9]+(,[0-9]+)*$ ]] || die "--workers must be numbers separated by commas"
((orders >= 20000)) || log "note: --orders $orders is below 20000; the end-to-end figures are less steady"

mkdir -p "$WORK"
exec > >(tee -a "$WORK/run.log") 2>&1

# ------------------------------------------------------------------ cleanup
STARTED_PG=0 STARTED_LS=0 STARTED_EMQ=0 BENCH_PID=""
cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  if [[ -n "$BENCH_PID" ]] && kill -0 "$BENCH_PID" 2>/dev/null; then
    log "stopping bench.py (pid $BENCH_PID)"
    stop_pids 60000 bench.py "$BENCH_PID"
  fi
  ((STARTED_EMQ)) && { bench/elasticmq.sh stop || true; }
  ((STARTED_LS)) && { scripts/services.sh stop-sqs || true; }
  ((STARTED_PG)) && { scripts/services.sh stop-pg || true; }
  log "done in $((SECONDS - T_START)) s (exit $rc); logs in $WORK"
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# ------------------------------------------------------------------ prerequisites
log "bootstrap"
scripts/bootstrap.sh --with-tests --packages "maven default-jre-headless linux-perf"
log "build"
scripts/build.sh >"$WORK/build.log" 2>&1 || { tail -n 40 "$WORK/build.log"; die "build failed"; }
# Private copies: a rebuild by someone else during the run does not change what we measure.
mkdir -p "$WORK/bin"
cp build/order-api build/order-worker "$WORK/bin/"
PY="$ROOT/.venv/bin/python"
[[ -x "$PY" ]] || die ".venv is missing (scripts/bootstrap.sh should have made it)"
command -v wrk >/dev/null || die "wrk not found"

# ------------------------------------------------------------------ services
status="$(scripts/services.sh status 2>/dev/null || true)"
if ! grep -q '^postgresql: running, accepting' <<<"$status"; then
  log "starting PostgreSQL"
  STARTED_PG=1
  scripts/services.sh start-pg
else
  log "PostgreSQL is running already: using it, leaving it running"
fi
need_ls=0
for s in "${servers[@]}"; do [[ "$s" == localstack ]] && need_ls=1; done
if ((need_ls)); then
  if ! grep -q '^localstack: running' <<<"$status"; then
    log "starting LocalStack"
    STARTED_LS=1
    LOCALSTACK_LOG_LEVEL=warn scripts/services.sh start-sqs
  else
    log "LocalStack is running already: using it, leaving it running"
  fi
fi
# shellcheck source=/dev/null
DATABASE_URL="$(. "$ROOT/.local/env" && printf '%s' "$DATABASE_URL")"

run_one() { # server
  local s="$1" endpoint pid
  case "$s" in
    localstack)
      # shellcheck source=/dev/null
      endpoint="$(. "$ROOT/.local/env" && printf '%s' "$AWS_ENDPOINT_URL_SQS")"
      pid="$(head -n 1 .local/localstack.pid 2>/dev/null || true)"
      ;;
    elasticmq)
      if ! bench/elasticmq.sh status >/dev/null 2>&1; then
        STARTED_EMQ=1
        bench/elasticmq.sh start
      else
        log "ElasticMQ is running already: using it"
      fi
      endpoint="$(bench/elasticmq.sh endpoint)"
      pid="$(head -n 1 .local/elasticmq/elasticmq.pid 2>/dev/null || true)"
      ;;
  esac
  log "=== $s ($endpoint) ==="
  "$PY" bench/bench.py --sqs-name "$s" --endpoint "$endpoint" --sqs-pid "$pid" \
    --database-url "$DATABASE_URL" --bin-dir "$WORK/bin" --out-dir "$WORK" \
    --run-id "${RUN_ID//-/_}" --orders "$orders" --duration "$duration" --levels "$levels" \
    --workers "$workers" --frugal-orders "$frugal" --profile-s "$profile" &
  BENCH_PID=$!
  wait "$BENCH_PID"
  BENCH_PID=""
  if [[ "$s" == elasticmq ]] && ((STARTED_EMQ)); then
    bench/elasticmq.sh stop
    STARTED_EMQ=0
  fi
}

for s in "${servers[@]}"; do
  run_one "$s"
done

log "writing $out"
ELASTICMQ_VERSION="$(cat .local/elasticmq/lib/.version 2>/dev/null || true)" \
  "$PY" bench/report.py --work "$WORK" --out "$out" --command "$CMDLINE" \
  --seconds "$((SECONDS - T_START))" --servers "${servers[*]}"
log "total $((SECONDS - T_START)) s"
