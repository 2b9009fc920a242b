#!/usr/bin/env bash
# Runs ElasticMQ (an SQS-compatible server on the JVM) for the benchmark, on
# 127.0.0.1:$ELASTICMQ_PORT (default 9324) only.
#
# The server and its dependencies come from Maven Central through Maven
# (`mvn dependency:copy-dependencies` on a small generated pom) into
# .local/elasticmq/lib (git-ignored); this happens once per version.
#
# Usage: bench/elasticmq.sh COMMAND
#   fetch                 download the jars (if not there yet) and exit
#   start                 fetch, start the server in the background, wait until it
#                         answers ListQueues (idempotent: a running server is kept)
#   stop                  stop the server started by `start`
#   status                exit 0 if our server is running and answers, 3 otherwise
#   create-queue NAME     create queue NAME (JSON protocol), print its URL
#   delete-queue URL      delete the queue
#   call ACTION JSON      one SQS JSON-protocol call; print the response body
#   endpoint              print the endpoint URL (for AWS_ENDPOINT_URL_SQS)
# Files: .local/elasticmq/{pom.xml,lib/,elasticmq.conf,logback.xml,elasticmq.log,elasticmq.pid}
# Environment: ELASTICMQ_VERSION (1.6.16), ELASTICMQ_PORT (9324),
#   ELASTICMQ_HEAP (1g), ELASTICMQ_START_TIMEOUT (90), JAVA (java), MVN (mvn).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)"
LIB_TAG=elasticmq
# shellcheck source=SCRIPTDIR/../scripts/lib.sh
source "$ROOT/scripts/lib.sh"
DIR="$ROOT/.local/elasticmq"
ELASTICMQ_VERSION="${ELASTICMQ_VERSION:-1.6.16}"
ELASTICMQ_PORT="${ELASTICMQ_PORT:-9324}"
ELASTICMQ_HEAP="${ELASTICMQ_HEAP:-1g}"
ELASTICMQ_START_TIMEOUT="${ELASTICMQ_START_TIMEOUT:-90}"
JAVA="${JAVA:-java}"
MVN="${MVN:-mvn}"
HOST=127.0.0.1
ENDPOINT="http://$HOST:$ELASTICMQ_PORT"
PID_FILE="$DIR/elasticmq.pid"
LOG="$DIR/elasticmq.log"
LIB="$DIR/lib"

[[ "$ELASTICMQ_PORT" =~ ^[0-9]+$ ]] || die "ELASTICMQ_PORT must be a number"
[[ "$ELASTICMQ_VERSION" =~ ^[0-9A-Za-z.-]+$ ]] || die "bad ELASTICMQ_VERSION"

fetch() {
  [[ -f "$LIB/.version" && "$(cat "$LIB/.version")" == "$ELASTICMQ_VERSION" ]] && return 0
  command -v "$MVN" >/dev/null 2>&1 || die "mvn not found (Debian: apt-get install maven)"
  mkdir -p "$DIR"
  cat >"$DIR/pom.xml" <<EOF
<?xml version="1.0" encoding="UTF-8"?>
<!-- Written by bench/elasticmq.sh: only used to fetch ElasticMQ and its dependencies. -->
<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>local.bench</groupId>
  <artifactId>elasticmq-fetch</artifactId>
  <version>1</version>
  <packaging>pom</packaging>
  <dependencies>
    <dependency>
      <groupId>org.elasticmq</groupId>
      <artifactId>elasticmq-server_2.13</artifactId>
      <version>$ELASTICMQ_VERSION</version>
    </dependency>
  </dependencies>
</project>
EOF
  log "fetching org.elasticmq:elasticmq-server_2.13:$ELASTICMQ_VERSION and its dependencies with Maven"
  rm -rf "$LIB.tmp"
  (cd "$DIR" && "$MVN" -q -B -f pom.xml dependency:copy-dependencies \
    -DincludeScope=runtime -DoutputDirectory="$LIB.tmp") >"$DIR/mvn.log" 2>&1 || {
    tail -n 30 "$DIR/mvn.log" >&2
    die "Maven could not fetch ElasticMQ $ELASTICMQ_VERSION (see $DIR/mvn.log)"
  }
  [[ -f "$LIB.tmp/elasticmq-server_2.13-$ELASTICMQ_VERSION.jar" ]] || die "elasticmq-server jar missing after fetch"
  printf '%s\n' "$ELASTICMQ_VERSION" >"$LIB.tmp/.version"
  rm -rf "$LIB"
  mv "$LIB.tmp" "$LIB"
}

write_config() {
  cat >"$DIR/elasticmq.conf" <<EOF
# Written by bench/elasticmq.sh. Loopback only; no statistics/UI endpoint.
include classpath("application.conf")

node-address {
  protocol = "http"
  host = "$HOST"
  port = $ELASTICMQ_PORT
  context-path = ""
}
rest-sqs {
  enabled = true
  bind-port = $ELASTICMQ_PORT
  bind-hostname = "$HOST"
  sqs-limits = strict
}
rest-stats {
  enabled = false
  bind-port = 9325
  bind-hostname = "$HOST"
}
generate-node-address = false
aws {
  region = "us-east-1"
  accountId = "000000000000"
}
pekko.loglevel = "WARNING"
EOF
  cat >"$DIR/logback.xml" <<'EOF'
<configuration>
  <appender name="STDOUT" class="ch.qos.logback.core.ConsoleAppender">
    <encoder><pattern>%d{HH:mm:ss.SSS} [%thread] %-5level %logger{36} - %msg%n</pattern></encoder>
  </appender>
  <logger name="org.elasticmq" level="WARN"/>
  <root level="WARN"><appender-ref ref="STDOUT"/></root>
</configuration>
EOF
}

our_pid() { pid_from_file "$PID_FILE" org.elasticmq.server.Main; } # pid of our running server, or fail

call() { sqs_json_call "$ENDPOINT" us-east-1 "$@"; } # Action JSON -> body on stdout; non-zero on non-2xx

start() {
  local pid
  if pid="$(our_pid)"; then
    log "already running (pid $pid) on $ENDPOINT"
    return 0
  fi
  port_in_use "$HOST" "$ELASTICMQ_PORT" && die "something else listens on $HOST:$ELASTICMQ_PORT"
  command -v "$JAVA" >/dev/null 2>&1 || die "java not found (Debian: apt-get install default-jre-headless)"
  fetch
  write_config
  log "starting ElasticMQ $ELASTICMQ_VERSION on $ENDPOINT (log: $LOG)"
  : >"$LOG"
  # Own session, so that stop can signal the whole group; no stdin.
  setsid "$JAVA" -Djava.net.preferIPv4Stack=true -Xms256m -Xmx"$ELASTICMQ_HEAP" -XX:+UseParallelGC -XX:ParallelGCThreads=2 \
    -Dconfig.file="$DIR/elasticmq.conf" -Dlogback.configurationFile="$DIR/logback.xml" \
    -cp "$LIB/*" org.elasticmq.server.Main </dev/null >>"$LOG" 2>&1 {lock_fd}>&- &
  pid=$!
  printf '%s\n%s\n' "$pid" "$ELASTICMQ_PORT" >"$PID_FILE"
  local deadline=$((SECONDS + ELASTICMQ_START_TIMEOUT))
  until call ListQueues '{}' >/dev/null 2>&1; do
    if ! kill -0 "$pid" 2>/dev/null; then
      tail -n 40 "$LOG" >&2
      rm -f "$PID_FILE"
      die "ElasticMQ exited during start"
    fi
    if ((SECONDS >= deadline)); then
      tail -n 40 "$LOG" >&2
      kill -KILL -- "-$pid" 2>/dev/null || kill -KILL "$pid" 2>/dev/null || true
      rm -f "$PID_FILE"
      die "ElasticMQ not ready after ${ELASTICMQ_START_TIMEOUT}s; killed it"
    fi
    sleep 0.2
  done
  # It must listen on loopback only.
  if command -v ss >/dev/null 2>&1; then
    local bad
    bad="$(ss -Hltnp 2>/dev/null | grep "pid=$pid," | awk '{print $4}' | grep -Ev '^(127\.0\.0\.1|\[::ffff:127\.0\.0\.1\]):' || true)"
    [[ -z "$bad" ]] || { stop; die "ElasticMQ listens on a non-loopback address: $bad"; }
  fi
  log "ready (pid $pid)"
}

stop() {
  local pid
  if ! pid="$(our_pid)"; then
    rm -f "$PID_FILE"
    log "not running"
    return 0
  fi
  log "stopping ElasticMQ (pid $pid)"
  stop_pids 15000 ElasticMQ "$pid" # its own session (setsid): the whole group
  rm -f "$PID_FILE"
}

status() {
  local pid
  if pid="$(our_pid)" && call ListQueues '{}' >/dev/null 2>&1; then
    echo "elasticmq: running (pid $pid) on $ENDPOINT"
    return 0
  fi
  echo "elasticmq: stopped"
  return 3
}

create_queue() {
  local resp url
  [[ "${1:-}" =~ ^[A-Za-z0-9_-]{1,80}$ ]] || die "bad queue name '${1:-}'"
  resp="$(call CreateQueue "$(jq -nc --arg n "$1" '{QueueName: $n, Attributes: {VisibilityTimeout: "30"}}')")" ||
    die "CreateQueue $1 failed: $resp"
  url="$(jq -r '.QueueUrl // empty' <<<"$resp")"
  [[ -n "$url" ]] || die "CreateQueue $1: no QueueUrl in $resp"
  printf '%s\n' "$url"
}

mkdir -p "$DIR"
exec {lock_fd}>"$DIR/.lock"
case "${1:-}" in
  fetch) flock -w 600 "$lock_fd" || die "lock timeout"; fetch ;;
  start) flock -w 600 "$lock_fd" || die "lock timeout"; start ;;
  stop) flock -w 60 "$lock_fd" || die "lock timeout"; stop ;;
  status) status ;;
  create-queue) create_queue "${2:-}" ;;
  delete-queue) call DeleteQueue "$(jq -nc --arg u "${2:-}" '{QueueUrl: $u}')" >/dev/null ;;
  call) call "${2:?action}" "${3:-{\}}" ;;
  endpoint) printf '%s\n' "$ENDPOINT" ;;
  -h | --help | help) usage ;;
  *) usage >&2; exit 2 ;;
esac
