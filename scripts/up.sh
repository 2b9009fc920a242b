#!/usr/bin/env bash
# Brings the whole system up on this machine: installs what running needs,
# starts PostgreSQL and LocalStack on 127.0.0.1 (scripts/services.sh; queue,
# dead-letter queue, event bus), builds, migrates, creates a local signing key
# (scripts/token.sh --init), then runs order-api with authentication on and two
# order-workers, following their logs on stdout. Ctrl-C (or SIGTERM, SIGHUP, a
# closed terminal or pipe) stops everything it started, in about a second.
#
# Usage: scripts/up.sh
# Environment:
#   PORT (8080)              the API's port
#   METRICS_PORT (9100)      the API's /metrics port; the workers use the next two
#   PAYMENT_DELAY_MS (2000), LOG_LEVEL (info), LOG_FORMAT (text)
#   PGPORT_LOCAL, SQS_PORT_LOCAL  the services' ports (see scripts/services.sh --help)
#   ORDER_LOCAL_DIR (.local) where the state, keys and logs live (absolute path)
#   ORDER_BIN                a directory with built order-api and order-worker: no build
# Files, under ORDER_LOCAL_DIR:
#   up.state     the running instance: its pid, ports and the pids it started. A
#                second up.sh refuses to start while that instance lives; a state
#                file left by a killed run is cleaned up (what it left is stopped)
#   auth/        the local signing key and its JWKS (scripts/token.sh)
#   logs/        api.log, worker-1.log, worker-2.log (one run; the next truncates)
#   up.log       this run's own messages and what its stop did (the stop writes
#                nowhere else: stdout and stderr may be a closed pipe by then)
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)"
CALLER_DIR="$PWD"
cd "$ROOT"
LIB_TAG=up
# shellcheck source=SCRIPTDIR/lib.sh
source "$ROOT/scripts/lib.sh"

case "${1:-}" in
  "") ;;
  -h | --help) usage && exit 0 ;;
  *) log "unknown argument: $1" && usage >&2 && exit 2 ;;
esac

# A closed stdout or stderr (`up.sh | head`, a closed terminal) makes writes fail
# instead of killing this script before it has cleaned up.
trap '' PIPE

LOCAL="${ORDER_LOCAL_DIR:-$ROOT/.local}"
[[ "$LOCAL" == /* ]] || die "ORDER_LOCAL_DIR must be an absolute path, got '$LOCAL'"
export ORDER_LOCAL_DIR="$LOCAL" # scripts/services.sh keeps its state there too
STATE_FILE="$LOCAL/up.state"
LOG_DIR="$LOCAL/logs"
RUN_LOG="$LOCAL/up.log"
run_log=0 # 1 once this run owns up.log
# Messages go to stderr (lib.sh: a failed write is ignored) and to up.log, so
# why a run ended is known even when nobody read its output.
log() {
  printf 'up: %s\n' "$*" >&2 2>/dev/null || true
  if ((run_log)); then printf '%(%F %T)T up: %s\n' -1 "$*" >>"$RUN_LOG" 2>/dev/null || true; fi
  return 0
}
AUTH_DIR="$LOCAL/auth"

export BIND_ADDRESS=127.0.0.1 PORT="${PORT:-8080}" METRICS_PORT="${METRICS_PORT:-9100}"
export LOG_LEVEL="${LOG_LEVEL:-info}" LOG_FORMAT="${LOG_FORMAT:-text}"
export PAYMENT_DELAY_MS="${PAYMENT_DELAY_MS:-2000}"
for v in PORT METRICS_PORT; do
  valid_port "${!v}" || die "$v must be a port number, got '${!v}'"
done
((METRICS_PORT <= 65533)) || die "METRICS_PORT must leave room for the workers' two ports above it"
PORTS=("$PORT" "$METRICS_PORT" $((METRICS_PORT + 1)) $((METRICS_PORT + 2)))

# ------------------------------------------------------------------ state
# A process is recorded as pid:start-time, so a pid reused by another program
# is never taken for one of ours.
proc_id() { printf '%s:%s' "$1" "$(pid_start_time "$1")"; }
proc_is() { pid_alive "${1%%:*}" && [[ "$(pid_start_time "${1%%:*}")" == "${1#*:}" ]]; }

declare -A ST=()
read_state() {
  ST=()
  [[ -f "$STATE_FILE" ]] || return 1
  local k v
  while IFS='=' read -r k v; do
    [[ "$k" =~ ^[A-Z_]+$ ]] && ST[$k]="$v"
  done <"$STATE_FILE"
  [[ -n "${ST[UP]:-}" ]]
}

SELF="$(proc_id $$)"
started_services=0
api_pid=() worker_pids=() follower_pid=() # empty until started
up_ready=0 # 1 once everything runs and the banner is out
write_state() {
  local p ids=""
  for p in "${api_pid[@]}" "${worker_pids[@]}" "${follower_pid[@]}"; do
    pid_alive "$p" && ids+="$(proc_id "$p") " # the follower ends early when stdout is closed
  done
  {
    echo "# Written by scripts/up.sh while it runs; removed when it stops."
    echo "UP=$SELF"
    echo "PORT=$PORT"
    echo "METRICS_PORTS=${PORTS[*]:1}"
    echo "PIDS=${ids% }"
    echo "SERVICES=$started_services"
    echo "LOGS=$LOG_DIR"
    echo "READY=$up_ready"
  } >"$STATE_FILE.tmp"
  mv -f "$STATE_FILE.tmp" "$STATE_FILE"
}

# Refuses to start while another up.sh runs on this state directory; cleans up
# after one that was killed (SIGKILL, a crash) and left its state file behind.
claim_state() {
  local lock_fd p
  local -a left=()
  mkdir -p "$LOCAL"
  exec {lock_fd}>"$LOCAL/.up.lock"
  flock -w 10 "$lock_fd" || die "another scripts/up.sh is starting in $LOCAL"
  if read_state && proc_is "${ST[UP]}"; then
    log "already running (pid ${ST[UP]%%:*}): order-api on http://127.0.0.1:${ST[PORT]:-?}, logs in ${ST[LOGS]:-$LOG_DIR}"
    log "stop it with Ctrl-C in its terminal, or: kill ${ST[UP]%%:*}"
    exit 1
  fi
  : >"$RUN_LOG" # this run's from here on
  run_log=1
  if [[ -f "$STATE_FILE" ]]; then
    for p in ${ST[PIDS]:-}; do proc_is "$p" && left+=("${p%%:*}"); done
    log "a previous scripts/up.sh (pid ${ST[UP]%%:*}) ended without stopping; cleaning up after it${left[*]:+ (stopping pids ${left[*]})}"
    ((${#left[@]} == 0)) || stop_pids 10000 "the previous run's programs" "${left[@]}"
    # the services it started are this run's to stop now
    [[ "${ST[SERVICES]:-0}" == 1 ]] && started_services=1
    rm -f "$STATE_FILE"
  fi
  write_state
  exec {lock_fd}>&-
}

# ------------------------------------------------------------------ stop
stopping=0
# shellcheck disable=SC2317 # run by the EXIT trap
cleanup() {
  local rc=$? tty="" t0 p
  ((stopping)) && return
  stopping=1
  set +e # every step runs, whatever the one before did
  trap - ERR
  trap '' INT TERM HUP PIPE # a second Ctrl-C must not cut the stop short
  t0=$(now_ms)
  # From here on nothing writes to stdout or stderr, which may be a closed pipe
  # or terminal: the stop's messages go to its log, plus a line on stderr when
  # that is a terminal or a file.
  if [[ -t 2 || -f /dev/fd/2 ]]; then exec {tty}>&2; fi
  mkdir -p "$LOCAL" 2>/dev/null
  exec >>"$RUN_LOG" 2>&1 || exec >/dev/null 2>&1
  run_log=0 # stderr is up.log now
  [[ -n "$tty" ]] && printf '\nup: stopping (details: %s)\n' "$RUN_LOG" 1>&"$tty"
  log "stopping at $(date -u +%FT%TZ) (exit status $rc)"
  ((${#follower_pid[@]} == 0)) || stop_pids 1000 "log follower" "${follower_pid[@]}"
  # Both programs stop at once when idle; held orders and in-flight requests get
  # their grace (WORKER_SHUTDOWN_GRACE_MS, API_SHUTDOWN_GRACE_MS) before SIGKILL.
  local -a progs=("${api_pid[@]}" "${worker_pids[@]}")
  ((${#progs[@]} == 0)) || stop_pids 30000 "order-api and order-workers" "${progs[@]}"
  wait 2>/dev/null
  if ((started_services)); then
    "$ROOT/scripts/services.sh" stop || log "scripts/services.sh stop failed"
  fi
  if read_state && [[ "${ST[UP]}" == "$SELF" ]]; then rm -f "$STATE_FILE"; fi
  log "stopped in $(($(now_ms) - t0)) ms"
  [[ -n "$tty" ]] && printf 'up: stopped in %s ms\n' "$(($(now_ms) - t0))" 1>&"$tty"
  exit "$rc"
}

# ------------------------------------------------------------------ start
claim_state
trap cleanup EXIT
set -E # the ERR trap below also fires inside functions
trap 'log "failed (status $?) at line $LINENO: $BASH_COMMAND"' ERR
trap 'exit 130' INT
trap 'exit 143' TERM
trap 'exit 129' HUP

for p in "${PORTS[@]}"; do
  port_in_use 127.0.0.1 "$p" &&
    die "127.0.0.1:$p is in use (the API uses PORT=$PORT, its metrics and the workers' METRICS_PORT=$METRICS_PORT and the next two); choose others, e.g. PORT=8081 METRICS_PORT=9110 scripts/up.sh"
done

t_start=$SECONDS
"$ROOT/scripts/bootstrap.sh" || die "scripts/bootstrap.sh failed"
if [[ -n "${ORDER_BIN:-}" ]]; then
  BIN="$ORDER_BIN"
else
  "$ROOT/scripts/build.sh" || die "scripts/build.sh failed"
  BIN="$ROOT/build"
fi
[[ -x "$BIN/order-api" && -x "$BIN/order-worker" ]] || die "no order-api and order-worker in $BIN"

# leave services running that someone else started (a test run, another shell)
if ! "$ROOT/scripts/services.sh" status >/dev/null 2>&1; then started_services=1; fi
write_state
"$ROOT/scripts/services.sh" start ||
  die "scripts/services.sh start failed (its messages above; logs: $LOCAL/pg.log, $LOCAL/localstack.log)"
# shellcheck disable=SC1091
source "$LOCAL/env"

# Authentication on, as deployed: tokens from scripts/token.sh, signed by the
# local key, verified against its JWKS.
if [[ ! -f "$AUTH_DIR/signing-key.pem" || ! -f "$AUTH_DIR/jwks.json" ]]; then
  "$ROOT/scripts/token.sh" --init --dir "$AUTH_DIR" 2>/dev/null || die "scripts/token.sh --init failed"
  log "created a local signing key and its JWKS in $AUTH_DIR (scripts/token.sh)"
fi
unset AUTH_JWKS_URL
export AUTH_MODE=jwt AUTH_ISSUER=https://order-service.local AUTH_AUDIENCE=order-api
export AUTH_JWKS_FILE="$AUTH_DIR/jwks.json"
export MIGRATIONS_DIR="$ROOT/migrations" OPENAPI_PATH="$ROOT/api/openapi.yaml"

mkdir -p "$LOG_DIR"
for f in api worker-1 worker-2; do : >"$LOG_DIR/$f.log"; done
if ! "$BIN/order-api" migrate >>"$LOG_DIR/api.log" 2>&1; then
  tail_log "$LOG_DIR/api.log"
  die "order-api migrate failed"
fi
"$BIN/order-api" >>"$LOG_DIR/api.log" 2>&1 &
api_pid=($!)
METRICS_PORT=$((METRICS_PORT + 1)) "$BIN/order-worker" >>"$LOG_DIR/worker-1.log" 2>&1 &
worker_pids+=($!)
METRICS_PORT=$((METRICS_PORT + 2)) "$BIN/order-worker" >>"$LOG_DIR/worker-2.log" 2>&1 &
worker_pids+=($!)
write_state

# up to 60 s: a loaded machine (a CI runner, the test suite beside it) can take
# its time to migrate and load the keys; a dead API ends the wait at once
ready=0
ready_deadline=$((SECONDS + 60))
while ((SECONDS < ready_deadline)); do
  if curl -fsS --max-time 1 "http://127.0.0.1:$PORT/readyz" >/dev/null 2>&1; then
    ready=1
    break
  fi
  pid_alive "${api_pid[0]}" || break
  sleep 0.1
done
if ((!ready)); then
  tail_log "$LOG_DIR/api.log"
  die "order-api is not ready on 127.0.0.1:$PORT (log: $LOG_DIR/api.log)"
fi

# How the user calls the scripts from where they started this one.
token_cmd=scripts/token.sh
[[ "$CALLER_DIR" == "$ROOT" ]] || token_cmd="$ROOT/scripts/token.sh"
token_cmd+=" --customer c-123"
[[ "$LOCAL" == "$ROOT/.local" ]] || token_cmd+=" --dir $AUTH_DIR"
api="http://127.0.0.1:$PORT"
{
  cat <<MSG

up: ready in $((SECONDS - t_start)) s: order-api on $api (authentication on), two order-workers;
up: /metrics on :$METRICS_PORT (API), :$((METRICS_PORT + 1)) and :$((METRICS_PORT + 2)) (workers).
up: logs: $LOG_DIR/{api,worker-1,worker-2}.log (followed below on stdout; LOG_FORMAT=$LOG_FORMAT)
up: try it (the order turns PROCESSED about ${PAYMENT_DELAY_MS} ms later):

  TOKEN=\$($token_cmd)
  id=\$(curl -s -X POST $api/orders -H "Authorization: Bearer \$TOKEN" -H 'Content-Type: application/json' \\
        -d '{"customer_id":"c-123","currency":"BRL","items":[{"product_id":"p-1","quantity":2,"unit_price_cents":1500}]}' \\
        | sed -E 's/.*"id":"([^"]+)".*/\1/'); echo "\$id"
  curl -s -H "Authorization: Bearer \$TOKEN" $api/orders/\$id
  sleep 3; curl -s -H "Authorization: Bearer \$TOKEN" $api/orders/\$id/events

up: the last call is the order's timeline (RECEIVED ... PROCESSED); scripts/services.sh status shows what runs.
up: press Ctrl-C to stop everything (from another shell: kill $$).
MSG
} >&2 2>/dev/null || true

# The logs, followed on stdout in a session of their own (the stop ends tail
# and sed as one group); tail also ends by itself when this script is gone, and
# a closed stdout ends it without touching the programs.
colour=0
[[ -t 1 ]] && colour=1
# shellcheck disable=SC2016 # the inner script's own variables
setsid bash -c '
  if (($1)); then
    tail -q -n +1 -F --pid="$2" "${@:3}" 2>/dev/null |
      sed -u -E "s/^([^ ]+) (debug) /\1 \x1b[2m\2\x1b[0m /; s/^([^ ]+) (warn) /\1 \x1b[33m\2\x1b[0m /; s/^([^ ]+) (error) /\1 \x1b[31m\2\x1b[0m /"
  else
    exec tail -q -n +1 -F --pid="$2" "${@:3}" 2>/dev/null
  fi' up-logs "$colour" $$ "$LOG_DIR/api.log" "$LOG_DIR/worker-1.log" "$LOG_DIR/worker-2.log" &
follower_pid=($!)
up_ready=1
write_state

# Until a program exits. wait -n also returns when another child ends (the log
# follower, once stdout is closed): only a program's end stops the rest.
while :; do
  wait -n "${api_pid[0]}" "${worker_pids[@]}" || true
  for p in "${api_pid[@]}" "${worker_pids[@]}"; do
    pid_alive "$p" || break 2
  done
done
log "a program exited (pid $p; see $LOG_DIR); stopping the rest"
exit 1
