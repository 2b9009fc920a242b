#!/usr/bin/env bash
# Runs the local backing services for order-api / order-worker:
#   - PostgreSQL: a private cluster in .local/pg (binaries from
#     /usr/lib/postgresql/<version>/bin), listening on 127.0.0.1:$PGPORT_LOCAL
#     (default 55432), database "orders" owned by role "orders", trust auth on
#     loopback only.
#   - LocalStack (SQS only) from .venv, listening on 127.0.0.1:$SQS_PORT_LOCAL
#     (default 4566), with queues $SQS_DLQ_NAME (default orders-dlq) and
#     $SQS_QUEUE_NAME (default orders; VisibilityTimeout $SQS_VISIBILITY_TIMEOUT,
#     default 30; RedrivePolicy to the DLQ with maxReceiveCount
#     $SQS_MAX_RECEIVE_COUNT, default 5). Queue URLs are path-style:
#     http://127.0.0.1:4566/queue/us-east-1/000000000000/orders
# Everything lives under .local/ (git-ignored) and binds to 127.0.0.1 only.
# Nothing reaches the internet (no telemetry, DNS server or certificate download).
#
# Usage: scripts/services.sh COMMAND
#   start        start PostgreSQL and LocalStack, create the database and the queues,
#                write .local/env (idempotent: running services are left alone)
#   stop         stop both (data in .local/pg is kept; SQS is in-memory)
#   restart      stop, then start
#   status       show state; exit 0 if both are up, 3 otherwise
#   start-pg | stop-pg | restart-pg      PostgreSQL only (outage tests)
#   start-sqs | stop-sqs | restart-sqs   LocalStack only; start-sqs re-creates the
#                queues (same URLs); messages do not survive stop-sqs
#   env          print the sourceable environment file (.local/env)
#   logs         show the last lines of both logs
#   reset        stop both and delete their state (cluster, logs, env)
# Files: .local/env, .local/pg/, .local/pg.log, .local/localstack.log,
#        .local/localstack.pid, .local/localstack/
# Prerequisite: scripts/bootstrap.sh (Debian packages and .venv).
# Environment: PGPORT_LOCAL, SQS_PORT_LOCAL, SQS_QUEUE_NAME, SQS_DLQ_NAME,
#   SQS_MAX_RECEIVE_COUNT, SQS_VISIBILITY_TIMEOUT, PG_BINDIR, PG_START_TIMEOUT (60),
#   SQS_START_TIMEOUT (90), LOCALSTACK_LOG_LEVEL (info; warn for load tests),
#   LOCALSTACK_DEBUG (0).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)"
LOCAL="$ROOT/.local"
VENV="$ROOT/.venv"

PGPORT_LOCAL="${PGPORT_LOCAL:-55432}"
SQS_PORT_LOCAL="${SQS_PORT_LOCAL:-4566}"
SQS_QUEUE_NAME="${SQS_QUEUE_NAME:-orders}"
SQS_DLQ_NAME="${SQS_DLQ_NAME:-orders-dlq}"
SQS_MAX_RECEIVE_COUNT="${SQS_MAX_RECEIVE_COUNT:-5}"
SQS_VISIBILITY_TIMEOUT="${SQS_VISIBILITY_TIMEOUT:-30}"
PG_START_TIMEOUT="${PG_START_TIMEOUT:-60}"
SQS_START_TIMEOUT="${SQS_START_TIMEOUT:-90}"
SQS_STOP_TIMEOUT="${SQS_STOP_TIMEOUT:-15}"

BIND_HOST=127.0.0.1
AWS_REGION_LOCAL=us-east-1
AWS_ACCOUNT_LOCAL=000000000000 # LocalStack's account for access key "test"
PG_OS_USER=orderpg             # PostgreSQL refuses to run as root
DB_NAME=orders
DB_ROLE=orders
DB_SUPERUSER=postgres

PGDATA_DIR="$LOCAL/pg"
PG_LOG="$LOCAL/pg.log"
LS_DIR="$LOCAL/localstack"
LS_LOG="$LOCAL/localstack.log"
LS_PID_FILE="$LOCAL/localstack.pid"
ENV_FILE="$LOCAL/env"
SQS_ENDPOINT="http://$BIND_HOST:$SQS_PORT_LOCAL"

# Settings from the caller's environment that would redirect our own psql calls.
unset PGSERVICE PGOPTIONS PGSSLMODE PGHOSTADDR PGDATABASE PGUSER PGHOST PGPORT PGPASSWORD

log() { printf 'services: %s\n' "$*" >&2; }
die() { printf 'services: ERROR: %s\n' "$*" >&2; exit 1; }
usage() { sed -n '2,/^set -euo/{/^set -euo/d;s/^# \{0,1\}//;p}' "${BASH_SOURCE[0]}"; }

for v in PGPORT_LOCAL SQS_PORT_LOCAL SQS_MAX_RECEIVE_COUNT SQS_VISIBILITY_TIMEOUT \
  PG_START_TIMEOUT SQS_START_TIMEOUT SQS_STOP_TIMEOUT; do
  [[ "${!v}" =~ ^[0-9]+$ ]] || die "$v must be a number, got '${!v}'"
done
for v in SQS_QUEUE_NAME SQS_DLQ_NAME; do
  [[ "${!v}" =~ ^[A-Za-z0-9_-]{1,80}$ ]] || die "$v is not a valid SQS queue name: '${!v}'"
done

tail_log() { # file [lines]
  local f="$1" n="${2:-40}"
  if [[ -s "$f" ]]; then
    printf -- '----- last %s lines of %s -----\n' "$n" "$f" >&2
    tail -n "$n" "$f" >&2
    printf -- '-----\n' >&2
  else
    printf -- '(%s is empty or missing)\n' "$f" >&2
  fi
}

need_cmd() { command -v "$1" >/dev/null 2>&1 || die "'$1' not found; run scripts/bootstrap.sh"; }

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
    d="/tmp/orderpg-$(printf '%s' "$ROOT" | sha256sum | cut -c1-12)"
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
  log "stopping PostgreSQL"
  if ! as_pg "$PGBIN/pg_ctl" -D "$PGDATA_DIR" -m fast -w -t 60 stop >/dev/null; then
    tail_log "$PG_LOG"
    die "PostgreSQL did not stop"
  fi
}

# ============================================================== LocalStack (SQS)
ls_pid() { # prints the pid of our LocalStack if it is running
  local pid
  [[ -f "$LS_PID_FILE" ]] || return 1
  pid="$(head -n 1 "$LS_PID_FILE" 2>/dev/null || true)"
  [[ "$pid" =~ ^[0-9]+$ ]] || return 1
  kill -0 "$pid" 2>/dev/null || return 1
  tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -q 'localstack' || return 1
  printf '%s\n' "$pid"
}

port_in_use() { (exec 3<>"/dev/tcp/$BIND_HOST/$1") 2>/dev/null; }

ls_health_sqs() { # prints LocalStack's SQS state (available/running/...) or nothing
  curl -s --max-time 2 "$SQS_ENDPOINT/_localstack/health" 2>/dev/null |
    jq -r '.services.sqs // empty' 2>/dev/null || true
}

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
  need_cmd curl
  need_cmd jq
  need_cmd setsid
  local pid port
  if pid="$(ls_pid)"; then
    port="$(sed -n 2p "$LS_PID_FILE")"
    [[ -z "$port" || "$port" == "$SQS_PORT_LOCAL" ]] ||
      die "LocalStack is already running on port $port, not $SQS_PORT_LOCAL; run '$0 stop-sqs' first"
    return 0
  fi
  rm -f "$LS_PID_FILE"
  if port_in_use "$SQS_PORT_LOCAL"; then
    die "port $BIND_HOST:$SQS_PORT_LOCAL is already in use by another process (not ours: no live $LS_PID_FILE); stop it or set SQS_PORT_LOCAL"
  fi
  mkdir -p "$LS_DIR/home" "$LS_DIR/fs"
  write_ls_launcher
  # Keep one previous log; this one starts fresh.
  if [[ -f "$LS_LOG" ]]; then mv -f "$LS_LOG" "$LS_LOG.1"; fi
  log "starting LocalStack (SQS) on $SQS_ENDPOINT (log: $LS_LOG)"
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
      SERVICES=sqs \
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
    if ! kill -0 "$pid" 2>/dev/null; then
      tail_log "$LS_LOG"
      rm -f "$LS_PID_FILE"
      die "LocalStack exited during startup"
    fi
    state="$(ls_health_sqs)"
    if [[ "$state" == running || "$state" == available ]] && sqs_call ListQueues '{}' >/dev/null 2>&1; then
      return 0
    fi
    if ((SECONDS >= deadline)); then
      tail_log "$LS_LOG"
      kill -KILL -- "-$pid" 2>/dev/null || kill -KILL "$pid" 2>/dev/null || true
      rm -f "$LS_PID_FILE"
      die "LocalStack SQS not ready after ${SQS_START_TIMEOUT}s (health: '${state:-no answer}'); killed it"
    fi
    sleep 0.2
  done
}

# One SQS call with the JSON protocol; LocalStack does not check the signature.
sqs_call() { # Action JSON-body -> prints the response body; fails on non-2xx
  local out code
  out="$(curl -sS --max-time 15 -X POST "$SQS_ENDPOINT/" \
    -H "X-Amz-Target: AmazonSQS.$1" \
    -H 'Content-Type: application/x-amz-json-1.0' \
    -H "X-Amz-Date: $(date -u +%Y%m%dT%H%M%SZ)" \
    -H "Authorization: AWS4-HMAC-SHA256 Credential=test/$(date -u +%Y%m%d)/$AWS_REGION_LOCAL/sqs/aws4_request, SignedHeaders=host;x-amz-date, Signature=0" \
    --data-binary "$2" -w $'\n%{http_code}')" || return 1
  code="${out##*$'\n'}"
  printf '%s\n' "${out%$'\n'*}"
  [[ "$code" == 2* ]]
}

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

ls_start() {
  mkdir -p "$LOCAL"
  ls_launch
  ls_wait_ready
  ensure_queues
}

ls_stop() {
  local pid port
  if ! pid="$(ls_pid)"; then
    rm -f "$LS_PID_FILE"
    log "LocalStack is not running"
    return 0
  fi
  port="$(sed -n 2p "$LS_PID_FILE" 2>/dev/null || true)"
  port="${port:-$SQS_PORT_LOCAL}"
  log "stopping LocalStack (pid $pid)"
  # It runs in its own session/process group (setsid): signal the whole group.
  kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null || true
  local deadline=$((SECONDS + SQS_STOP_TIMEOUT))
  while kill -0 "$pid" 2>/dev/null; do
    if ((SECONDS >= deadline)); then
      log "LocalStack did not exit within ${SQS_STOP_TIMEOUT}s; killing it"
      kill -KILL -- "-$pid" 2>/dev/null || kill -KILL "$pid" 2>/dev/null || true
      sleep 0.2
      break
    fi
    sleep 0.1
  done
  rm -f "$LS_PID_FILE"
  deadline=$((SECONDS + 10))
  while port_in_use "$port"; do
    ((SECONDS < deadline)) || die "port $port still in use after stopping LocalStack"
    sleep 0.1
  done
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
}

write_env() {
  mkdir -p "$LOCAL"
  env_file_content >"$ENV_FILE.tmp"
  mv -f "$ENV_FILE.tmp" "$ENV_FILE"
}

# ============================================================== commands
status() {
  local rc=0 pid state n
  init_pgbin
  if [[ ! -f "$PGDATA_DIR/PG_VERSION" ]]; then
    echo "postgresql: not initialised ($PGDATA_DIR)"
    rc=3
  elif pg_is_running; then
    if "$PGBIN/pg_isready" -q -h "$BIND_HOST" -p "$PGPORT_LOCAL" -t 2; then
      echo "postgresql: running, accepting connections on $BIND_HOST:$PGPORT_LOCAL (pid $(head -n 1 "$PGDATA_DIR/postmaster.pid"))"
    else
      echo "postgresql: running but not accepting connections on $BIND_HOST:$PGPORT_LOCAL"
      rc=3
    fi
  else
    echo "postgresql: stopped"
    rc=3
  fi
  if pid="$(ls_pid)"; then
    state="$(ls_health_sqs)"
    n="$(sqs_call ListQueues '{}' 2>/dev/null | jq -r '(.QueueUrls // []) | length' 2>/dev/null || true)"
    echo "localstack: running (pid $pid) on $SQS_ENDPOINT, sqs: ${state:-no answer}, queues: ${n:-?}"
    [[ "$state" == running || "$state" == available ]] || rc=3
  else
    if port_in_use "$SQS_PORT_LOCAL"; then
      echo "localstack: stopped (but something else listens on $BIND_HOST:$SQS_PORT_LOCAL)"
    else
      echo "localstack: stopped"
    fi
    rc=3
  fi
  return "$rc"
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
  rm -f "$PG_LOG" "$LOCAL/initdb.log" "$LS_LOG" "$LS_LOG.1" "$LS_PID_FILE" "$ENV_FILE"
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
  ls_launch # boots in the background while PostgreSQL starts
  pg_start
  ls_wait_ready
  ensure_queues
  write_env
  log "ready in $((SECONDS - t0)) s: postgresql $BIND_HOST:$PGPORT_LOCAL, sqs $SQS_ENDPOINT; env: $ENV_FILE"
}
cmd_stop() { ls_stop; pg_stop; }
cmd_start_pg() { pg_start; write_env; }
cmd_start_sqs() { ls_start; write_env; }
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
