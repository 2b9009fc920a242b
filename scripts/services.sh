#!/usr/bin/env bash
# Runs the local backing services for order-api / order-worker:
#   - PostgreSQL: a private cluster in .local/pg (binaries from
#     /usr/lib/postgresql/<version>/bin), listening on 127.0.0.1:$PGPORT_LOCAL
#     (default 55432), database "orders" owned by role "orders", trust auth on
#     loopback only.
#   - LocalStack (SQS and EventBridge) from .venv, listening on
#     127.0.0.1:$SQS_PORT_LOCAL (default 4566), with queues $SQS_DLQ_NAME (default
#     orders-dlq) and $SQS_QUEUE_NAME (default orders; VisibilityTimeout
#     $SQS_VISIBILITY_TIMEOUT, default 30; RedrivePolicy to the DLQ with
#     maxReceiveCount $SQS_MAX_RECEIVE_COUNT, default 5), and the event bus
#     "orders" whose rule "order-events" (source order-service) delivers every
#     order event to the queue "order-events" (watch it: scripts/events.sh).
#     Queue URLs are path-style:
#     http://127.0.0.1:4566/queue/us-east-1/000000000000/orders
# Everything lives under .local/ (git-ignored) and binds to 127.0.0.1 only.
# Nothing reaches the internet (no telemetry, DNS server or certificate download).
# The settings `start` used are recorded (.local/services.state): while a service
# it started runs, later commands (status, stop, restart-*) use them unless the
# environment says otherwise.
#
# Usage: scripts/services.sh COMMAND
#   start        start PostgreSQL and LocalStack, create the database, the queues and
#                the event bus, write .local/env (idempotent: running services are
#                left alone)
#   stop         stop both (data in .local/pg is kept; SQS and events are in-memory)
#   restart      stop, then start
#   status       show what runs, on which ports; exit 0 if both are up, 3 otherwise
#   start-pg | stop-pg | restart-pg      PostgreSQL only (outage tests)
#   start-sqs | stop-sqs | restart-sqs   LocalStack only; start-sqs re-creates the
#                queues and the event bus (same URLs); messages do not survive stop-sqs
#   env          print the sourceable environment file (.local/env)
#   logs         show the last lines of both logs
#   reset        stop both and delete their state (cluster, logs, env)
# status also shows scripts/up.sh's programs while it runs (.local/up.state).
# Files: .local/env, .local/services.state, .local/pg/, .local/pg.log,
#        .local/localstack.log, .local/localstack.pid, .local/localstack/
# Prerequisite: scripts/bootstrap.sh (Debian packages and .venv).
# Environment: PGPORT_LOCAL, SQS_PORT_LOCAL, SQS_QUEUE_NAME, SQS_DLQ_NAME,
#   SQS_MAX_RECEIVE_COUNT, SQS_VISIBILITY_TIMEOUT, PG_BINDIR, PG_START_TIMEOUT (60),
#   PG_STOP_TIMEOUT (5), SQS_START_TIMEOUT (90), SQS_STOP_TIMEOUT (3),
#   LOCALSTACK_LOG_LEVEL (info; warn for load tests), LOCALSTACK_DEBUG (0),
#   ORDER_LOCAL_DIR (.local: where all of the above lives), ORDER_VENV (.venv).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)"
LIB_TAG=services
# shellcheck source=SCRIPTDIR/lib.sh
source "$ROOT/scripts/lib.sh"
LOCAL="${ORDER_LOCAL_DIR:-$ROOT/.local}"
VENV="${ORDER_VENV:-$ROOT/.venv}"
[[ "$LOCAL" == /* ]] || die "ORDER_LOCAL_DIR must be an absolute path, got '$LOCAL'"
[[ "$VENV" == /* ]] || die "ORDER_VENV must be an absolute path, got '$VENV'"

BIND_HOST=127.0.0.1
AWS_REGION_LOCAL=us-east-1
AWS_ACCOUNT_LOCAL=000000000000 # LocalStack's account for access key "test"
PG_OS_USER=orderpg             # PostgreSQL refuses to run as root
DB_NAME=orders
DB_ROLE=orders
DB_SUPERUSER=postgres

# The local EventBridge set-up (names shared with the programs and the tests).
EVENT_BUS=orders
EVENT_SOURCE_LOCAL=order-service
EVENTS_RULE=order-events
EVENTS_QUEUE=order-events

PGDATA_DIR="$LOCAL/pg"
PG_LOG="$LOCAL/pg.log"
LS_DIR="$LOCAL/localstack"
LS_LOG="$LOCAL/localstack.log"
LS_PID_FILE="$LOCAL/localstack.pid"
ENV_FILE="$LOCAL/env"
STATE_FILE="$LOCAL/services.state"
RECORDED=(PGPORT_LOCAL SQS_PORT_LOCAL SQS_QUEUE_NAME SQS_DLQ_NAME SQS_MAX_RECEIVE_COUNT
  SQS_VISIBILITY_TIMEOUT)

pg_postmaster_pid() { # the running postmaster of our cluster, from its own pid file
  local pid
  pid="$(head -n 1 "$PGDATA_DIR/postmaster.pid" 2>/dev/null || true)"
  pid_alive "$pid" || return 1
  printf '%s\n' "$pid"
}
ls_pid() { pid_from_file "$LS_PID_FILE" localstack; }

# Settings the environment does not give come from the state `start` recorded,
# while a service it started still runs; then from the defaults.
load_recorded_state() {
  [[ -f "$STATE_FILE" ]] || return 0
  pg_postmaster_pid >/dev/null || ls_pid >/dev/null || return 0
  local k v r
  while IFS='=' read -r k v; do
    for r in "${RECORDED[@]}"; do
      if [[ "$k" == "$r" && -z "${!k:-}" ]]; then printf -v "$k" '%s' "$v"; fi
    done
  done <"$STATE_FILE"
}
load_recorded_state

PGPORT_LOCAL="${PGPORT_LOCAL:-55432}"
SQS_PORT_LOCAL="${SQS_PORT_LOCAL:-4566}"
SQS_QUEUE_NAME="${SQS_QUEUE_NAME:-orders}"
SQS_DLQ_NAME="${SQS_DLQ_NAME:-orders-dlq}"
SQS_MAX_RECEIVE_COUNT="${SQS_MAX_RECEIVE_COUNT:-5}"
SQS_VISIBILITY_TIMEOUT="${SQS_VISIBILITY_TIMEOUT:-30}"
PG_START_TIMEOUT="${PG_START_TIMEOUT:-60}"
PG_STOP_TIMEOUT="${PG_STOP_TIMEOUT:-5}"
SQS_START_TIMEOUT="${SQS_START_TIMEOUT:-90}"
SQS_STOP_TIMEOUT="${SQS_STOP_TIMEOUT:-3}"
SQS_ENDPOINT="http://$BIND_HOST:$SQS_PORT_LOCAL"

record_state() {
  local k
  mkdir -p "$LOCAL"
  {
    printf '# Written by scripts/services.sh start: the settings of the running services.\n'
    for k in "${RECORDED[@]}"; do printf '%s=%s\n' "$k" "${!k}"; done
  } >"$STATE_FILE.tmp"
  mv -f "$STATE_FILE.tmp" "$STATE_FILE"
}

# Settings from the caller's environment that would redirect our own psql calls.
unset PGSERVICE PGOPTIONS PGSSLMODE PGHOSTADDR PGDATABASE PGUSER PGHOST PGPORT PGPASSWORD

for v in PGPORT_LOCAL SQS_PORT_LOCAL; do
  valid_port "${!v}" || die "$v must be a port number, got '${!v}'"
done
for v in SQS_MAX_RECEIVE_COUNT SQS_VISIBILITY_TIMEOUT PG_START_TIMEOUT PG_STOP_TIMEOUT \
  SQS_START_TIMEOUT SQS_STOP_TIMEOUT; do
  [[ "${!v}" =~ ^[0-9]+$ ]] || die "$v must be a number, got '${!v}'"
done
for v in SQS_QUEUE_NAME SQS_DLQ_NAME; do
  [[ "${!v}" =~ ^[A-Za-z0-9_-]{1,80}$ ]] || die "$v is not a valid SQS queue name: '${!v}'"
done


# ============================================================== PostgreSQL
pg_bindir() {
  if [[ -n "${PG_BINDIR:-}" ]]; then
    printf '%s\n' "$PG_BINDIR"
    return
  fi
  # An existing cluster needs the binaries of its own major version.
  if [[ -f "$PGDATA_DIR/PG_VERSION" ]]; then
    printf '/usr/lib/postgresql/%s/bin\n' "$(cat "$PGDATA_DIR/PG_VERSION")"
    return
  fi
  if [[ -x /usr/lib/postgresql/15/bin/pg_ctl ]]; then
    printf '/usr/lib/postgresql/15/bin\n'
    return
  fi
  local d
  d="$(find /usr/lib/postgresql -mindepth 2 -maxdepth 2 -name bin -type d 2>/dev/null | sort -V | tail -n 1)"
  [[ -n "$d" ]] || die "no PostgreSQL server binaries in /usr/lib/postgresql/*/bin; run scripts/bootstrap.sh"
  printf '%s\n' "$d"
}

PGBIN=""
init_pgbin() {
  [[ -n "$PGBIN" ]] && return
  PGBIN="$(pg_bindir)"
  [[ -x "$PGBIN/pg_ctl" ]] || die "$PGBIN/pg_ctl not found; run scripts/bootstrap.sh"
}

# Unix sockets are limited to ~107 bytes of path; fall back to /tmp for deep trees.
pg_socket_dir() {
  local d="$LOCAL/pgsock"
  if ((${#d} + 20 > 100)); then
    d="/tmp/orderpg-$(printf '%s' "$LOCAL" | sha256sum | cut -c1-12)"
  fi
  printf '%s\n' "$d"
}

as_pg() { # run a PostgreSQL server command as the cluster owner
  if [[ $EUID -eq 0 ]]; then
    (cd / && runuser -u "$PG_OS_USER" -- "$@")
  else
    "$@"
  fi
}

ensure_pg_os_user() {
  [[ $EUID -eq 0 ]] || return 0
  id -u "$PG_OS_USER" >/dev/null 2>&1 && return 0
  log "creating system user $PG_OS_USER to own the PostgreSQL cluster"
  useradd --system --user-group --no-create-home --home-dir /nonexistent \
    --shell /usr/sbin/nologin --comment "order-processing local PostgreSQL" "$PG_OS_USER" ||
    die "useradd $PG_OS_USER failed"
}

# The cluster owner must be able to reach .local (e.g. under /root or a 0700 tmp dir).
ensure_traversable() {
  [[ $EUID -eq 0 ]] || return 0
  runuser -u "$PG_OS_USER" -- test -x "$LOCAL" 2>/dev/null && return 0
  local d="$LOCAL"
  local -a dirs=()
  while [[ "$d" != / && -n "$d" ]]; do
    dirs=("$d" "${dirs[@]}")
    d="$(dirname "$d")"
  done
  for d in "${dirs[@]}"; do
    if ! runuser -u "$PG_OS_USER" -- test -x "$d" 2>/dev/null; then
      log "chmod o+x $d (so that $PG_OS_USER can reach $PGDATA_DIR)"
      chmod o+x "$d"
    fi
  done
  runuser -u "$PG_OS_USER" -- test -x "$LOCAL" || die "$PG_OS_USER cannot traverse to $LOCAL"
}

pg_is_running() {
  [[ -f "$PGDATA_DIR/PG_VERSION" ]] || return 1
  as_pg "$PGBIN/pg_ctl" -D "$PGDATA_DIR" status >/dev/null 2>&1
}

pg_conf_quote() { printf "'%s'" "${1//\'/\'\'}"; }

pg_write_conf() {
  local sock tmp
  sock="$(pg_socket_dir)"
  tmp="$PGDATA_DIR/services_local.conf.tmp"
  cat >"$tmp" <<EOF
# Written by scripts/services.sh on every start; do not edit.
listen_addresses = '$BIND_HOST'
port = $PGPORT_LOCAL
unix_socket_directories = $(pg_conf_quote "$sock")
max_connections = 200
fsync = on
timezone = 'UTC'
log_timezone = 'UTC'
log_line_prefix = '%m [%p] %q%u@%d '
logging_collector = off
EOF
  mv -f "$tmp" "$PGDATA_DIR/services_local.conf"
  if [[ $EUID -eq 0 ]]; then chown "$PG_OS_USER:" "$PGDATA_DIR/services_local.conf"; fi
}

pg_init() {
  [[ -f "$PGDATA_DIR/PG_VERSION" ]] && return 0
  log "initialising PostgreSQL cluster in $PGDATA_DIR ($PGBIN)"
  rm -rf "$PGDATA_DIR"
  mkdir -p "$PGDATA_DIR"
  chmod 700 "$PGDATA_DIR"
  if [[ $EUID -eq 0 ]]; then chown "$PG_OS_USER:" "$PGDATA_DIR"; fi
  # -A trust applies to the local socket and the 127.0.0.1/::1 host lines only;
  # the server listens on 127.0.0.1 only.
  if ! as_pg "$PGBIN/initdb" -D "$PGDATA_DIR" -U "$DB_SUPERUSER" -A trust \
    --encoding=UTF8 --locale=C --no-instructions >"$LOCAL/initdb.log" 2>&1; then
    tail_log "$LOCAL/initdb.log"
    rm -rf "$PGDATA_DIR"
    die "initdb failed"
  fi
  printf "\ninclude_if_exists = 'services_local.conf'\n" >>"$PGDATA_DIR/postgresql.conf"
}

psql_admin() {
  "$PGBIN/psql" -X -q -v ON_ERROR_STOP=1 \
    "host=$BIND_HOST port=$PGPORT_LOCAL user=$DB_SUPERUSER dbname=postgres sslmode=disable connect_timeout=10" "$@"
}

pg_ensure_db() {
  local r
  r="$(psql_admin -tAc "SELECT 1 FROM pg_roles WHERE rolname = '$DB_ROLE'")" || die "psql failed"
  if [[ "$r" != 1 ]]; then
    psql_admin -c "CREATE ROLE \"$DB_ROLE\" LOGIN CREATEDB" -c "GRANT pg_signal_backend, pg_read_all_stats TO \"$DB_ROLE\"" ||
      die "creating role $DB_ROLE failed"
  fi
  r="$(psql_admin -tAc "SELECT 1 FROM pg_database WHERE datname = '$DB_NAME'")" || die "psql failed"
  if [[ "$r" != 1 ]]; then
    psql_admin -c "CREATE DATABASE \"$DB_NAME\" OWNER \"$DB_ROLE\"" || die "creating database $DB_NAME failed"
  fi
}

pg_start() {
  init_pgbin
  mkdir -p "$LOCAL"
  ensure_pg_os_user
  ensure_traversable
  pg_init
  if pg_is_running; then
    local port
    port="$(sed -n 4p "$PGDATA_DIR/postmaster.pid" 2>/dev/null || true)"
    if [[ -n "$port" && "$port" != "$PGPORT_LOCAL" ]]; then
      die "PostgreSQL is already running on port $port, not $PGPORT_LOCAL; run '$0 stop-pg' first"
    fi
  else
    local sock
    sock="$(pg_socket_dir)"
    mkdir -p "$sock"
    touch "$PG_LOG"
    if [[ $EUID -eq 0 ]]; then chown "$PG_OS_USER:" "$sock" "$PG_LOG"; fi
    pg_write_conf
    log "starting PostgreSQL on $BIND_HOST:$PGPORT_LOCAL (log: $PG_LOG)"
    if ! (close_lock_fd && as_pg "$PGBIN/pg_ctl" -D "$PGDATA_DIR" -l "$PG_LOG" -w -t "$PG_START_TIMEOUT" start >/dev/null); then
      tail_log "$PG_LOG"
      die "PostgreSQL failed to start (or was not ready within ${PG_START_TIMEOUT}s); see $PG_LOG"
    fi
  fi
  local deadline=$((SECONDS + PG_START_TIMEOUT))
  until "$PGBIN/pg_isready" -q -h "$BIND_HOST" -p "$PGPORT_LOCAL" -t 2; do
    if ((SECONDS >= deadline)); then
      tail_log "$PG_LOG"
      die "PostgreSQL on $BIND_HOST:$PGPORT_LOCAL is not accepting connections after ${PG_START_TIMEOUT}s"
    fi
    sleep 0.2
  done
  pg_ensure_db
}

pg_stop() {
  init_pgbin
  if ! pg_is_running; then
    log "PostgreSQL is not running"
    return 0
  fi
  local pid port
  pid="$(pg_postmaster_pid || true)"
  port="$(sed -n 4p "$PGDATA_DIR/postmaster.pid" 2>/dev/null || true)"
  log "stopping PostgreSQL${pid:+ (pid $pid)}"
  # Fast mode (disconnect clients, then a shutdown checkpoint) takes well under a
  # second; immediate mode (crash recovery at the next start) only if that hangs.
  if ! as_pg "$PGBIN/pg_ctl" -D "$PGDATA_DIR" -m fast -w -t "$PG_STOP_TIMEOUT" stop >/dev/null 2>&1; then
    log "PostgreSQL did not stop within ${PG_STOP_TIMEOUT}s; stopping it in immediate mode"
    as_pg "$PGBIN/pg_ctl" -D "$PGDATA_DIR" -m immediate -w -t 5 stop >/dev/null 2>&1 ||
      { [[ -n "$pid" ]] && stop_pids 1000 PostgreSQL "$pid"; }
  fi
  if [[ -n "$pid" ]] && ! wait_gone 3000 "$pid"; then
    tail_log "$PG_LOG"
    die "PostgreSQL (pid $pid) did not stop"
  fi
  if valid_port "$port" && ! wait_port_free "$BIND_HOST" "$port" 3000; then
    die "port $port still in use after stopping PostgreSQL"
  fi
}

# ============================================================== LocalStack
ls_port_in_use() { port_in_use "$BIND_HOST" "$1"; }

ls_health() { # prints "sqs-state events-state" (available/running/...), "-" when unknown
  curl -s --max-time 2 "$SQS_ENDPOINT/_localstack/health" 2>/dev/null |
    jq -r '"\(.services.sqs // "-") \(.services.events // "-")"' 2>/dev/null || true
}
ls_service_up() { [[ "$1" == running || "$1" == available ]]; }

# Runs LocalStack's runtime (normally the entrypoint of its Docker image) on the host.
write_ls_launcher() {
  cat >"$LS_DIR/launcher.py" <<'EOF'
# Written by scripts/services.sh: runs LocalStack's runtime on the host.
import logging
import os
import runpy
import sys
import traceback

from twisted.internet import endpoints

_HOST = os.environ.get("LOCALSTACK_BIND_HOST", "127.0.0.1")


class _LoopbackTCP4ServerEndpoint(endpoints.TCP4ServerEndpoint):
    """LocalStack's twisted gateway ignores the host of GATEWAY_LISTEN and binds all
    interfaces; bind the configured address only."""

    def __init__(self, reactor, port, backlog=50, interface=""):
        super().__init__(reactor, port, backlog, interface or _HOST)


endpoints.TCP4ServerEndpoint = _LoopbackTCP4ServerEndpoint

code = 0
try:
    runpy.run_module("localstack.runtime.main", run_name="__main__", alter_sys=True)
except SystemExit as e:
    code = e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
except BaseException:
    traceback.print_exc()
    code = 1
# The runtime has shut itself down by now; do not wait for idle worker threads.
logging.shutdown()
sys.stdout.flush()
sys.stderr.flush()
os._exit(code)
EOF
}

ls_launch() { # starts LocalStack in the background unless it is running already
  [[ -x "$VENV/bin/python" ]] || die "$VENV is missing; run scripts/bootstrap.sh first"
  need_cmd curl "run scripts/bootstrap.sh"
  need_cmd jq "run scripts/bootstrap.sh"
  need_cmd setsid "run scripts/bootstrap.sh"
  local pid port
  if pid="$(ls_pid)"; then
    port="$(sed -n 2p "$LS_PID_FILE")"
    [[ -z "$port" || "$port" == "$SQS_PORT_LOCAL" ]] ||
      die "LocalStack is already running on port $port, not $SQS_PORT_LOCAL; run '$0 stop-sqs' first"
    return 0
  fi
  rm -f "$LS_PID_FILE"
  if ls_port_in_use "$SQS_PORT_LOCAL"; then
    die "port $BIND_HOST:$SQS_PORT_LOCAL is already in use by another process (not ours: no live $LS_PID_FILE); stop it or set SQS_PORT_LOCAL"
  fi
  mkdir -p "$LS_DIR/home" "$LS_DIR/fs"
  write_ls_launcher
  # Keep one previous log; this one starts fresh.
  if [[ -f "$LS_LOG" ]]; then mv -f "$LS_LOG" "$LS_LOG.1"; fi
  log "starting LocalStack (SQS, EventBridge) on $SQS_ENDPOINT (log: $LS_LOG)"
  (
    close_lock_fd
    cd "$LS_DIR"
    exec setsid env -i \
      PATH="$VENV/bin:/usr/local/bin:/usr/bin:/bin" \
      HOME="$LS_DIR/home" \
      LANG=C.UTF-8 \
      PYTHONUNBUFFERED=1 \
      PYTHONWARNINGS=ignore \
      GATEWAY_LISTEN="$BIND_HOST:$SQS_PORT_LOCAL" \
      LOCALSTACK_HOST="$BIND_HOST:$SQS_PORT_LOCAL" \
      LOCALSTACK_BIND_HOST="$BIND_HOST" \
      SERVICES=sqs,events \
      STRICT_SERVICE_LOADING=1 \
      EAGER_SERVICE_LOADING=1 \
      SQS_ENDPOINT_STRATEGY=path \
      SQS_DISABLE_CLOUDWATCH_METRICS=1 \
      PERSISTENCE=0 \
      OVERRIDE_IN_DOCKER=0 \
      FILESYSTEM_ROOT="$LS_DIR/fs" \
      DNS_ADDRESS=0 \
      SKIP_SSL_CERT_DOWNLOAD=1 \
      DISABLE_EVENTS=1 \
      LOCALSTACK_TELEMETRY=0 \
      DO_NOT_TRACK=1 \
      LS_LOG="${LOCALSTACK_LOG_LEVEL:-info}" \
      DEBUG="${LOCALSTACK_DEBUG:-0}" \
      "$VENV/bin/python" "$LS_DIR/launcher.py"
  ) </dev/null >>"$LS_LOG" 2>&1 &
  printf '%s\n%s\n' "$!" "$SQS_PORT_LOCAL" >"$LS_PID_FILE" # pid, port
}

ls_wait_ready() {
  local deadline=$((SECONDS + SQS_START_TIMEOUT)) state="" pid
  pid="$(head -n 1 "$LS_PID_FILE" 2>/dev/null || true)"
  [[ "$pid" =~ ^[0-9]+$ ]] || die "no LocalStack pid in $LS_PID_FILE"
  while :; do
    # (not ls_pid: right after launch the process may not have exec'd python yet)
    if ! pid_alive "$pid"; then
      tail_log "$LS_LOG"
      rm -f "$LS_PID_FILE"
      die "LocalStack exited during startup"
    fi
    state="$(ls_health)"
    if ls_service_up "${state% *}" && ls_service_up "${state#* }" &&
      sqs_call ListQueues '{}' >/dev/null 2>&1; then
      return 0
    fi
    if [[ " $state " == *" error "* ]]; then
      tail_log "$LS_LOG"
      kill -KILL -- "-$pid" 2>/dev/null || kill -KILL "$pid" 2>/dev/null || true
      rm -f "$LS_PID_FILE"
      die "LocalStack could not load a service (health of sqs, events: '$state'; EventBridge needs moto-ext: run scripts/bootstrap.sh); killed it"
    fi
    if ((SECONDS >= deadline)); then
      tail_log "$LS_LOG"
      kill -KILL -- "-$pid" 2>/dev/null || kill -KILL "$pid" 2>/dev/null || true
      rm -f "$LS_PID_FILE"
      die "LocalStack not ready after ${SQS_START_TIMEOUT}s (health of sqs, events: '${state:-no answer}'); killed it"
    fi
    sleep 0.2
  done
}

sqs_call() { sqs_json_call "$SQS_ENDPOINT" "$AWS_REGION_LOCAL" "$@"; }       # Action body
events_call() { events_json_call "$SQS_ENDPOINT" "$AWS_REGION_LOCAL" "$@"; } # Action body

queue_url() { printf 'http://%s:%s/queue/%s/%s/%s\n' "$BIND_HOST" "$SQS_PORT_LOCAL" "$AWS_REGION_LOCAL" "$AWS_ACCOUNT_LOCAL" "$1"; }
queue_arn() { printf 'arn:aws:sqs:%s:%s:%s\n' "$AWS_REGION_LOCAL" "$AWS_ACCOUNT_LOCAL" "$1"; }

create_queue() { # name -> prints the queue URL
  local resp url
  resp="$(sqs_call CreateQueue "$(jq -nc --arg n "$1" '{QueueName: $n}')")" ||
    die "CreateQueue $1 failed: $resp"
  url="$(jq -r '.QueueUrl // empty' <<<"$resp")"
  [[ "$url" == "$(queue_url "$1")" ]] ||
    die "queue $1 has URL '$url', expected '$(queue_url "$1")'"
  printf '%s\n' "$url"
}

ensure_queues() {
  local dlq_url q_url resp dlq_arn redrive attrs
  dlq_url="$(create_queue "$SQS_DLQ_NAME")"
  resp="$(sqs_call GetQueueAttributes "$(jq -nc --arg u "$dlq_url" '{QueueUrl: $u, AttributeNames: ["QueueArn"]}')")" ||
    die "GetQueueAttributes $SQS_DLQ_NAME failed: $resp"
  dlq_arn="$(jq -r '.Attributes.QueueArn // empty' <<<"$resp")"
  [[ -n "$dlq_arn" ]] || die "no QueueArn for $SQS_DLQ_NAME: $resp"
  q_url="$(create_queue "$SQS_QUEUE_NAME")"
  # Set (rather than pass to CreateQueue) so that changed settings converge.
  redrive="$(jq -nc --arg arn "$dlq_arn" --argjson n "$SQS_MAX_RECEIVE_COUNT" \
    '{deadLetterTargetArn: $arn, maxReceiveCount: $n}')"
  attrs="$(jq -nc --arg u "$q_url" --arg vt "$SQS_VISIBILITY_TIMEOUT" --arg rp "$redrive" \
    '{QueueUrl: $u, Attributes: {VisibilityTimeout: $vt, RedrivePolicy: $rp}}')"
  resp="$(sqs_call SetQueueAttributes "$attrs")" || die "SetQueueAttributes $SQS_QUEUE_NAME failed: $resp"
}

# The bus, its rule for the programs' events and the queue the rule delivers
# to, so that a user (scripts/events.sh) or a test can watch the events arrive.
# Every step converges: re-running it changes nothing.
ensure_events() {
  local resp q_url q_arn rule_arn pattern policy
  q_url="$(create_queue "$EVENTS_QUEUE")"
  q_arn="$(queue_arn "$EVENTS_QUEUE")"
  if ! events_call DescribeEventBus "$(jq -nc --arg n "$EVENT_BUS" '{Name: $n}')" >/dev/null 2>&1; then
    resp="$(events_call CreateEventBus "$(jq -nc --arg n "$EVENT_BUS" '{Name: $n}')")" ||
      die "CreateEventBus $EVENT_BUS failed: ${resp:0:300} (LocalStack's EventBridge needs moto-ext: run scripts/bootstrap.sh)"
  fi
  pattern="$(jq -nc --arg s "$EVENT_SOURCE_LOCAL" '{source: [$s]}')"
  resp="$(events_call PutRule "$(jq -nc --arg n "$EVENTS_RULE" --arg b "$EVENT_BUS" --arg p "$pattern" \
    '{Name: $n, EventBusName: $b, EventPattern: $p, State: "ENABLED",
      Description: "every order event, to the order-events queue"}')")" ||
    die "PutRule $EVENTS_RULE failed: ${resp:0:300}"
  rule_arn="$(jq -r '.RuleArn // empty' <<<"$resp")"
  [[ -n "$rule_arn" ]] || die "PutRule $EVENTS_RULE: no RuleArn in ${resp:0:300}"
  # As on AWS: the queue accepts messages from EventBridge for this rule only.
  policy="$(jq -nc --arg q "$q_arn" --arg r "$rule_arn" '{Version: "2012-10-17", Statement: [{
      Sid: "events-to-queue", Effect: "Allow", Principal: {Service: "events.amazonaws.com"},
      Action: "sqs:SendMessage", Resource: $q, Condition: {ArnEquals: {"aws:SourceArn": $r}}}]}')"
  resp="$(sqs_call SetQueueAttributes "$(jq -nc --arg u "$q_url" --arg p "$policy" \
    '{QueueUrl: $u, Attributes: {Policy: $p}}')")" ||
    die "SetQueueAttributes $EVENTS_QUEUE (policy) failed: ${resp:0:300}"
  resp="$(events_call PutTargets "$(jq -nc --arg r "$EVENTS_RULE" --arg b "$EVENT_BUS" --arg a "$q_arn" \
    '{Rule: $r, EventBusName: $b, Targets: [{Id: "order-events-queue", Arn: $a}]}')")" ||
    die "PutTargets $EVENTS_RULE failed: ${resp:0:300}"
  [[ "$(jq -r '.FailedEntryCount // 0' <<<"$resp")" == 0 ]] ||
    die "PutTargets $EVENTS_RULE: a target was refused: ${resp:0:300}"
}

ls_start() {
  mkdir -p "$LOCAL"
  ls_launch
  ls_wait_ready
  ensure_queues
  ensure_events
}

ls_stop() {
  local pid port
  if ! pid="$(ls_pid)"; then
    rm -f "$LS_PID_FILE"
    log "LocalStack is not running"
    return 0
  fi
  port="$(sed -n 2p "$LS_PID_FILE" 2>/dev/null || true)"
  valid_port "$port" || port="$SQS_PORT_LOCAL"
  log "stopping LocalStack (pid $pid)"
  # Its own session (setsid): stop_pids signals the whole group. Nothing is
  # persisted (PERSISTENCE=0), so a SIGKILL after a short wait loses nothing.
  stop_pids "$((SQS_STOP_TIMEOUT * 1000))" LocalStack "$pid"
  rm -f "$LS_PID_FILE"
  wait_port_free "$BIND_HOST" "$port" 3000 || die "port $port still in use after stopping LocalStack"
}

# ============================================================== env file
env_file_content() {
  q() { printf 'export %s=%q\n' "$1" "$2"; }
  printf '# Written by scripts/services.sh; source it: . .local/env\n'
  q DATABASE_URL "postgresql://$DB_ROLE@$BIND_HOST:$PGPORT_LOCAL/$DB_NAME"
  q DATABASE_ADMIN_URL "postgresql://$DB_SUPERUSER@$BIND_HOST:$PGPORT_LOCAL/postgres"
  q PGPORT_LOCAL "$PGPORT_LOCAL"
  q AWS_REGION "$AWS_REGION_LOCAL"
  q AWS_DEFAULT_REGION "$AWS_REGION_LOCAL"
  q AWS_ENDPOINT_URL_SQS "$SQS_ENDPOINT"
  q AWS_ACCESS_KEY_ID test
  q AWS_SECRET_ACCESS_KEY test
  q SQS_PORT_LOCAL "$SQS_PORT_LOCAL"
  q SQS_QUEUE_NAME "$SQS_QUEUE_NAME"
  q SQS_DLQ_NAME "$SQS_DLQ_NAME"
  q SQS_QUEUE_URL "$(queue_url "$SQS_QUEUE_NAME")"
  q SQS_DLQ_URL "$(queue_url "$SQS_DLQ_NAME")"
  q SQS_DLQ_ARN "$(queue_arn "$SQS_DLQ_NAME")"
  q SQS_MAX_RECEIVE_COUNT "$SQS_MAX_RECEIVE_COUNT"
  q SQS_VISIBILITY_TIMEOUT "$SQS_VISIBILITY_TIMEOUT"
  q AWS_ENDPOINT_URL_EVENTS "$SQS_ENDPOINT"
  q EVENT_BUS_NAME "$EVENT_BUS"
  q EVENTS_QUEUE_URL "$(queue_url "$EVENTS_QUEUE")"
}

write_env() {
  mkdir -p "$LOCAL"
  env_file_content >"$ENV_FILE.tmp"
  mv -f "$ENV_FILE.tmp" "$ENV_FILE"
}

# ============================================================== commands
# What runs, on the ports the running processes recorded (PostgreSQL's own
# postmaster.pid, our localstack.pid), whatever today's defaults are.
status() {
  local rc=0 pid state n port bus
  init_pgbin
  if [[ ! -f "$PGDATA_DIR/PG_VERSION" ]]; then
    echo "postgresql: not initialised ($PGDATA_DIR)"
    rc=3
  elif pg_is_running; then
    pid="$(head -n 1 "$PGDATA_DIR/postmaster.pid" 2>/dev/null || true)"
    port="$(sed -n 4p "$PGDATA_DIR/postmaster.pid" 2>/dev/null || true)"
    valid_port "$port" || port="$PGPORT_LOCAL"
    if "$PGBIN/pg_isready" -q -h "$BIND_HOST" -p "$port" -t 2; then
      echo "postgresql: running, accepting connections on $BIND_HOST:$port (pid $pid)"
    else
      echo "postgresql: running (pid $pid) but not accepting connections on $BIND_HOST:$port"
      rc=3
    fi
  else
    echo "postgresql: stopped"
    rc=3
  fi
  if pid="$(ls_pid)"; then
    port="$(sed -n 2p "$LS_PID_FILE" 2>/dev/null || true)"
    valid_port "$port" || port="$SQS_PORT_LOCAL"
    local SQS_ENDPOINT="http://$BIND_HOST:$port" # for ls_health, sqs_call, events_call
    state="$(ls_health)"
    n="$(sqs_call ListQueues '{}' 2>/dev/null | jq -r '(.QueueUrls // []) | length' 2>/dev/null || true)"
    bus="missing"
    if events_call DescribeEventBus "$(jq -nc --arg n "$EVENT_BUS" '{Name: $n}')" >/dev/null 2>&1; then
      bus="$EVENT_BUS"
    fi
    state="${state:-no-answer no-answer}"
    echo "localstack: running (pid $pid) on $SQS_ENDPOINT, sqs: ${state% *}, events: ${state#* }, queues: ${n:-?}, event bus: $bus"
    if ! ls_service_up "${state% *}" || ! ls_service_up "${state#* }"; then rc=3; fi
  else
    if ls_port_in_use "$SQS_PORT_LOCAL"; then
      echo "localstack: stopped (but something else listens on $BIND_HOST:$SQS_PORT_LOCAL)"
    else
      echo "localstack: stopped"
    fi
    rc=3
  fi
  up_status
  return "$rc"
}

# What scripts/up.sh recorded (up.state: its pid and start time, ports): shown
# when it runs; it does not change the exit status, which is the services'.
up_status() {
  local f="$LOCAL/up.state" k v up="" port="" mports="" logs=""
  [[ -f "$f" ]] || return 0
  while IFS='=' read -r k v; do
    case "$k" in
      UP) up="$v" ;;
      PORT) port="$v" ;;
      METRICS_PORTS) mports="$v" ;;
      LOGS) logs="$v" ;;
    esac
  done <"$f"
  local pid="${up%%:*}"
  if pid_alive "$pid" && [[ "$(pid_start_time "$pid")" == "${up#*:}" ]]; then
    echo "up.sh: running (pid $pid): order-api on $BIND_HOST:$port, metrics on ${mports// /, }, logs in $logs"
  else
    echo "up.sh: not running (its state file $f is stale; the next scripts/up.sh cleans it up)"
  fi
}

show_logs() {
  tail_log "$PG_LOG" "${1:-30}"
  tail_log "$LS_LOG" "${1:-30}"
}

reset_state() {
  ls_stop
  if [[ -f "$PGDATA_DIR/PG_VERSION" ]]; then pg_stop; fi
  log "deleting service state under $LOCAL"
  rm -rf "$PGDATA_DIR" "$LS_DIR" "$(pg_socket_dir)"
  rm -f "$PG_LOG" "$LOCAL/initdb.log" "$LS_LOG" "$LS_LOG.1" "$LS_PID_FILE" "$ENV_FILE" "$STATE_FILE"
}

# Serialises state-changing commands (e.g. "up" and "test" started together).
LOCK_FD=""
with_lock() {
  mkdir -p "$LOCAL"
  exec {LOCK_FD}>"$LOCAL/.services.lock"
  flock -w 300 "$LOCK_FD" || die "timed out waiting for another services.sh run (lock $LOCAL/.services.lock)"
  "$@"
}
# Daemons must not inherit the lock's file descriptor, or they would hold the lock.
close_lock_fd() {
  if [[ -n "$LOCK_FD" ]]; then exec {LOCK_FD}>&-; fi
}

cmd_start() {
  local t0=$SECONDS
  record_state
  ls_launch # boots in the background while PostgreSQL starts
  pg_start
  ls_wait_ready
  ensure_queues
  ensure_events
  write_env
  log "ready in $((SECONDS - t0)) s: postgresql $BIND_HOST:$PGPORT_LOCAL, sqs and events $SQS_ENDPOINT; env: $ENV_FILE"
}
# Both at once (each is bounded): an idle stop takes about a second.
cmd_stop() {
  local ls_job pg_job rc=0
  (ls_stop) &
  ls_job=$!
  (pg_stop) &
  pg_job=$!
  wait "$ls_job" || rc=1
  wait "$pg_job" || rc=1
  ((rc == 0)) || die "stop failed (see the messages above)"
  rm -f "$STATE_FILE"
}
cmd_start_pg() { record_state; pg_start; write_env; }
cmd_start_sqs() { record_state; ls_start; write_env; }
cmd_restart() { cmd_stop; cmd_start; }
cmd_restart_pg() { pg_stop; cmd_start_pg; }
cmd_restart_sqs() { ls_stop; cmd_start_sqs; }

main() {
  local cmd="${1:-}"
  case "$cmd" in
    start) with_lock cmd_start ;;
    stop) with_lock cmd_stop ;;
    restart) with_lock cmd_restart ;;
    status) status ;;
    start-pg) with_lock cmd_start_pg ;;
    stop-pg) with_lock pg_stop ;;
    restart-pg) with_lock cmd_restart_pg ;;
    start-sqs) with_lock cmd_start_sqs ;;
    stop-sqs) with_lock ls_stop ;;
    restart-sqs) with_lock cmd_restart_sqs ;;
    env)
      [[ -f "$ENV_FILE" ]] || write_env
      cat "$ENV_FILE" ;;
    logs) show_logs "${2:-30}" ;;
    reset) with_lock reset_state ;;
    -h | --help | help) usage ;;
    "") usage >&2; exit 2 ;;
    *) log "unknown command: $cmd"; usage >&2; exit 2 ;;
  esac
}

main "$@"
