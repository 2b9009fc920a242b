#!/usr/bin/env bash
# shellcheck disable=SC2317  # cleanup helpers run from the EXIT trap
# End-to-end test of compose.yaml with `docker compose` and podman as the
# engine: the file is run unchanged, as a Docker user runs it, and what is
# tested is its wiring - health checks, init hooks, environment, ports, start
# order, scaling - with an order going PENDING -> PROCESSED through it.
#
#   1. installs what is missing (Debian, root): podman, buildah, debootstrap,
#      runc, netavark, aardvark-dns; the Docker CLI from Debian's docker.io
#      package when `docker` is missing (only the client binary is unpacked
#      into .local/tools/bin: no daemon is installed or started); Docker
#      Compose v2.29.7, built once with `go install` (about 3 min on 2 cores)
#      and kept in .local/tools/bin, installed as the CLI plugin of a private
#      DOCKER_CONFIG (the user's ~/.docker is neither read nor changed);
#   2. runs `podman system service` on a socket of its own, over the private
#      storage of scripts/container-env.sh, and points DOCKER_HOST at it;
#   3. builds the images compose.yaml names but cannot be pulled here, as
#      local STAND-INS tagged with those names (scripts/standin/: PostgreSQL 15
#      from Debian, LocalStack 4.9.2 from PyPI, both on the verified base
#      images of scripts/make-base-images.sh). They are a test device only:
#      compose.yaml uses the official images;
#   4. `docker compose up -d --build --scale worker=2`, then checks: every
#      service healthy, migrate exited 0, start order (migrate after
#      PostgreSQL was ready, api and workers after migrate and after the
#      LocalStack init hooks), ports on 127.0.0.1 only, the environment and the
#      read-only JWKS mount inside the api, the init hooks (queues, DLQ
#      redrive, the EventBridge bus `orders` whose rule `order-events` routes
#      events of source order-service to the queue `order-events`, proved by
#      sending one), orders PENDING -> PROCESSED, the app images built on the
#      verified base, a graceful `docker compose stop` (api and workers exit
#      0) and `docker compose down -v` leaving nothing behind.
#
# Health checks: podman 4.3 runs HEALTHCHECKs from systemd timers, and there
# is no systemd here, so no container would ever turn healthy and
# `depends_on: condition: service_healthy` would wait forever. This script
# runs `podman healthcheck run` every second for each running container that
# has a health check (what the timer would do); see health_poller.
#
# Auth is on in compose.yaml, as for a Docker user: `scripts/token.sh --init`
# makes .local/auth/jwks.json (mounted read-only into the api) and requests
# carry `Authorization: Bearer $(scripts/token.sh --customer c-compose)`; a
# request without one must get 401. An order's events must reach the queue
# order-events through the bus orders (the API's relay publishes them).
#
# Bounded: every step has its own timeout, and the whole run TOTAL_TIMEOUT.
# On any exit (failure, Ctrl-C, SIGTERM) it removes the project's containers,
# network and volume and stops the podman service it started.
#
# Usage: scripts/compose-test.sh
# Env:   PG_PORT (25442), LS_PORT (4576), API_PORT (8190), API_METRICS_PORT
#        (9190): preferred host ports, the next free one is used when taken;
#        ORDERS (4), PROCESS_TIMEOUT (90 s), BUILD_TIMEOUT (1200 s, each
#        build step), TOTAL_TIMEOUT (1800 s, the whole run; about 10 min cold
#        with the Compose build, about 1 min warm, on 2 cores)
# Last line: "compose-test: N passed, M failed"; exit status non-zero on any
# failure. Logs: .local/compose-test/.
set -uo pipefail
trap '' PIPE # a closed stdout must not kill the cleanup

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT" || exit 1
# shellcheck source=scripts/container-env.sh disable=SC1091
. scripts/container-env.sh

COMPOSE_VERSION=v2.29.7
ORDERS="${ORDERS:-4}"
PROCESS_TIMEOUT="${PROCESS_TIMEOUT:-90}"
BUILD_TIMEOUT="${BUILD_TIMEOUT:-1200}"
TOTAL_TIMEOUT="${TOTAL_TIMEOUT:-1800}"
WORK="$ROOT/.local/compose-test"
TOOLS="$ROOT/.local/tools" # built/unpacked tools, kept between runs (as check-deploy.sh)
PROJECT=order-service # compose.yaml's `name:`
CUSTOMER=c-compose

mkdir -p "$WORK" "$TOOLS/bin" || exit 1
rm -f "$WORK"/*.log

passed=0
failed=0
# fds 7 and 8: the run's own stdout and stderr, which the verdicts and the
# trap reach even from inside a step whose output goes to a log file
exec 7>&1 8>&2
log() { printf '[compose-test +%ss] %s\n' "$SECONDS" "$*" >&8; }
pass() { passed=$((passed + 1)); log "PASS: $*"; }
fail() { failed=$((failed + 1)); log "FAIL: $*"; }
finish() {
  echo "compose-test: $passed passed, $failed failed" >&7
  [[ $failed -eq 0 && $passed -gt 0 ]] && exit 0
  exit 1
}
abort() { fail "$*"; finish; }

# ------------------------------------------------------------------ cleanup

SERVICE_PID=""
POLLER_PID=""
WATCHDOG_PID=""
STEP_PID=""
SOCK_DIR=""
STARTED_STACK=0

descendants() {
  local child
  for child in $(ps -o pid= --ppid "$1" 2>/dev/null); do
    echo "$child"
    descendants "$child"
  done
}
stop_tree() { # stop_tree PID: TERM the process and its descendants, then KILL
  local tree p
  mapfile -t tree < <(descendants "$1")
  kill -TERM "$1" "${tree[@]}" 2>/dev/null
  for _ in 1 2 3 4 5 6 7 8 9 10; do
    kill -0 "$1" 2>/dev/null || break
    sleep 0.5
  done
  for p in "$1" "${tree[@]}"; do kill -KILL "$p" 2>/dev/null; done
  wait "$1" 2>/dev/null
  return 0
}

project_ids() { # ids of every container of the project, running or not
  podman ps -a --filter "label=com.docker.compose.project=$PROJECT" --format '{{.ID}}' 2>/dev/null
}

cleanup() {
  trap '' INT TERM HUP # a second Ctrl-C must not cut the cleanup short
  local ids=() p
  [[ -n "$WATCHDOG_PID" ]] && stop_tree "$WATCHDOG_PID"
  [[ -n "$STEP_PID" ]] && stop_tree "$STEP_PID"
  # health checks first, so no exec session races the containers' stop
  [[ -n "$POLLER_PID" ]] && stop_tree "$POLLER_PID"
  if [[ -n "$SERVICE_PID" ]] && kill -0 "$SERVICE_PID" 2>/dev/null; then
    if [[ $STARTED_STACK == 1 ]]; then
      # its own session: a Ctrl-C on the terminal does not reach it
      setsid -w timeout 120 "$DOCKER_BIN" compose "${COMPOSE_ARGS[@]}" down -v --remove-orphans \
        -t 10 >>"$WORK/down.log" 2>&1
    fi
  fi
  # whatever compose could not remove (engine gone, timeout)
  mapfile -t ids < <(project_ids)
  [[ ${#ids[@]} -gt 0 ]] && timeout 60 podman rm -f -t 5 "${ids[@]}" >>"$WORK/down.log" 2>&1
  timeout 30 podman volume rm -f "${PROJECT}_pgdata" >/dev/null 2>&1
  timeout 30 podman network rm -f "${PROJECT}_default" >/dev/null 2>&1
  [[ -n "$SERVICE_PID" ]] && stop_tree "$SERVICE_PID"
  # exec sessions' conmon of this project's containers (they wait for
  # exit_command_delay before they exit)
  for p in $(pgrep -x conmon 2>/dev/null); do
    if tr '\0' ' ' <"/proc/$p/cmdline" 2>/dev/null | grep -qF -- "$CT_HOME/" &&
       tr '\0' ' ' <"/proc/$p/cmdline" 2>/dev/null | grep -qF -- "-n ${PROJECT}-"; then
      kill -KILL "$p" 2>/dev/null
    fi
  done
  [[ -n "$SOCK_DIR" ]] && rm -rf "$SOCK_DIR"
}
trap cleanup EXIT
trap 'fail "interrupted"; echo "compose-test: $passed passed, $failed failed" >&7; exit 130' INT TERM HUP

# step CMD...: a long step (install, build, up, stop, down), run in the
# background and waited for, so that a TERM or Ctrl-C reaching this shell runs
# its trap at once (bash defers a trap until a foreground command ends, and a
# TERM from `timeout --foreground` reaches this shell only); the cleanup then
# stops the step's whole tree.
step() {
  "$@" 9>&- &
  STEP_PID=$!
  wait "$STEP_PID"
  local rc=$?
  STEP_PID=""
  return "$rc"
}

if [[ $(id -u) -ne 0 ]]; then
  abort "must run as root (rootful podman with a private storage)"
fi

# one run at a time in this tree (fd 9 is closed for every long-lived child)
exec 9>"$WORK/lock"
flock -n 9 || abort "another compose-test.sh is running in $ROOT"

# the whole run is bounded: TERM this shell and its current foreground step.
# Not the shell's INT/TERM trap: the cleanup (or a Ctrl-C) ends the watchdog
# at once, and a killed sleep fires nothing.
(
  trap - INT TERM HUP
  sleep "$TOTAL_TIMEOUT" || exit 0
  log "TOTAL_TIMEOUT ($TOTAL_TIMEOUT s) reached"
  pkill -TERM -P $$
  kill -TERM $$
) 9>&- &
WATCHDOG_PID=$!

# ------------------------------------------------------------------ 1. tools

ensure_packages() {
  local missing=() pkg
  command -v podman >/dev/null || missing+=(podman)
  command -v buildah >/dev/null || missing+=(buildah)
  command -v debootstrap >/dev/null || missing+=(debootstrap)
  command -v runc >/dev/null || missing+=(runc)
  command -v curl >/dev/null || missing+=(curl)
  command -v python3 >/dev/null || missing+=(python3)
  for pkg in netavark aardvark-dns iptables; do
    dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg")
  done
  [[ ${#missing[@]} -eq 0 ]] && return 0
  log "installing ${missing[*]}"
  DEBIAN_FRONTEND=noninteractive apt-get update -qq >"$WORK/apt.log" 2>&1 &&
    DEBIAN_FRONTEND=noninteractive timeout 900 apt-get install -y -qq --no-install-recommends \
      "${missing[@]}" >>"$WORK/apt.log" 2>&1
}

# The Docker CLI: the one on PATH, else the client binary of Debian's docker.io
# package, unpacked into .local/tools/bin as `scripts/bootstrap.sh
# --with-containers` does on bookworm (installing the package would also
# install and start dockerd and containerd, which this test does not want).
DOCKER_BIN=""
ensure_docker_cli() {
  if DOCKER_BIN="$(command -v docker)"; then return 0; fi
  DOCKER_BIN="$TOOLS/bin/docker"
  [[ -x "$DOCKER_BIN" ]] && return 0
  log "unpacking the Docker CLI from Debian's docker.io into $TOOLS/bin"
  local tmp
  tmp="$(mktemp -d)" || return 1
  (
    cd "$tmp" &&
      DEBIAN_FRONTEND=noninteractive apt-get update -qq &&
      timeout 600 apt-get download -qq -o APT::Sandbox::User=root docker.io &&
      dpkg-deb -x docker.io_*.deb unpacked &&
      install -m 0755 unpacked/usr/bin/docker "$DOCKER_BIN"
  ) >>"$WORK/apt.log" 2>&1
  local rc=$?
  rm -rf "$tmp"
  return "$rc"
}

# Docker Compose v2 as a CLI plugin, built from its Go module once.
COMPOSE_BIN="$TOOLS/bin/docker-compose-$COMPOSE_VERSION"
ensure_compose() {
  if [[ ! -x "$COMPOSE_BIN" ]]; then
    command -v go >/dev/null || { log "go is missing (needed to build Docker Compose once)"; return 1; }
    log "building Docker Compose $COMPOSE_VERSION with go install (once; cached as $COMPOSE_BIN)"
    local gobin
    gobin="$(mktemp -d "$TOOLS/gobin.XXXXXX")" || return 1
    if ! (cd / && GOBIN="$gobin" GOFLAGS=-mod=mod timeout "$BUILD_TIMEOUT" nice go install -trimpath \
          -ldflags "-s -w -X github.com/docker/compose/v2/internal.Version=$COMPOSE_VERSION" \
          "github.com/docker/compose/v2/cmd@$COMPOSE_VERSION") >"$WORK/compose-build.log" 2>&1; then
      rm -rf "$gobin"
      return 1
    fi
    mv "$gobin/cmd" "$COMPOSE_BIN" && rm -rf "$gobin"
  fi
  mkdir -p "$WORK/docker/cli-plugins" &&
    ln -sfn "$COMPOSE_BIN" "$WORK/docker/cli-plugins/docker-compose"
}

step ensure_packages || abort "installing podman/buildah/debootstrap/runc/netavark (see $WORK/apt.log)"
ensure_docker_cli || abort "Docker CLI (see $WORK/apt.log)"
step ensure_compose || abort "Docker Compose $COMPOSE_VERSION (see $WORK/compose-build.log)"
PATH="$(dirname "$DOCKER_BIN"):$PATH"

# Only this test's settings reach docker and compose.
unset DOCKER_CONTEXT DOCKER_TLS_VERIFY DOCKER_CERT_PATH COMPOSE_FILE COMPOSE_PROJECT_NAME \
  COMPOSE_PROFILES COMPOSE_ENV_FILES
export DOCKER_CONFIG="$WORK/docker"
# podman's API has no BuildKit: compose uses the engine's classic /build
export DOCKER_BUILDKIT=0
# no .env file of the tree is read: the environment below is the whole input
COMPOSE_ARGS=(--project-directory "$ROOT" -f "$ROOT/compose.yaml" --env-file /dev/null)
version="$(docker compose version --short 2>/dev/null)"
if [[ "v${version#v}" == "$COMPOSE_VERSION" ]]; then
  pass "docker compose $COMPOSE_VERSION as a CLI plugin ($("$DOCKER_BIN" --version))"
else
  abort "docker compose version is '$version', expected $COMPOSE_VERSION"
fi

# ------------------------------------------------------------------ 2. images

container_env_init || abort "writing the private podman configuration under .local/containers"
log "base images: scripts/make-base-images.sh (verified, or made and recorded)"
if ! step timeout "$BUILD_TIMEOUT" scripts/make-base-images.sh >"$WORK/base-images.log" 2>&1 ||
   ! scripts/make-base-images.sh --check >>"$WORK/base-images.log" 2>&1; then
  abort "base images (see $WORK/base-images.log)"
fi
SLIM_DIGEST="sha256:$(sha256sum <.local/base-images/bookworm-slim.tar | cut -d' ' -f1)"
first_layer() { podman image inspect "$1" --format '{{index .RootFS.Layers 0}}' 2>/dev/null; }

# Every package both the stand-in and the project's venv pin has one version.
if python3 - scripts/standin/localstack/requirements.txt scripts/requirements.txt >"$WORK/pins.log" 2>&1 <<'EOF'
import re, sys
def pins(path):
    out = {}
    for line in open(path):
        m = re.match(r"^([A-Za-z0-9_.-]+)(\[[^]]*\])?==(\S+)", line)
        if m:
            out[re.sub(r"[-_.]+", "-", m.group(1)).lower()] = m.group(3)
    return out
a, b = pins(sys.argv[1]), pins(sys.argv[2])
bad = sorted(f"{k}: {a[k]} vs {b[k]}" for k in a.keys() & b.keys() if a[k] != b[k])
print("\n".join(bad) or f"{len(a.keys() & b.keys())} shared pins agree")
sys.exit(1 if bad or not a.keys() & b.keys() else 0)
EOF
then
  pass "LocalStack stand-in pins agree with scripts/requirements.txt ($(tail -1 "$WORK/pins.log"))"
else
  fail "LocalStack stand-in pins differ from scripts/requirements.txt: $(tr '\n' ';' <"$WORK/pins.log")"
fi

# The images compose.yaml names, fully qualified as the engine resolves them.
docker compose "${COMPOSE_ARGS[@]}" config --format json >"$WORK/config.json" 2>"$WORK/config.log" ||
  abort "docker compose config (see $WORK/config.log)"
compose_image() {
  python3 -c '
import json, sys
img = json.load(open(sys.argv[1]))["services"][sys.argv[2]]["image"]
first = img.split("/")[0]
if "/" not in img:
    img = "docker.io/library/" + img
elif "." not in first and ":" not in first and first != "localhost":
    img = "docker.io/" + img
print(img)' "$WORK/config.json" "$1"
}

# build_standin SERVICE: builds scripts/standin/SERVICE, tags it with the name
# compose.yaml gives the service, checks it imitates that very image and
# stands on the verified base.
build_standin() {
  local svc=$1 name for_ args=()
  name="$(compose_image "$svc")" || { fail "no image name for $svc in compose.yaml"; return 1; }
  # HTTPS through a proxy with its own CA (as on these machines) needs the
  # host's bundle during the build; it is mounted, not copied
  if [[ -s /etc/ssl/certs/ca-certificates.crt ]]; then
    args+=(--volume /etc/ssl/certs/ca-certificates.crt:/run/host-ca.crt:ro
      --build-arg PIP_CERT=/run/host-ca.crt)
  fi
  log "stand-in for $name: podman build scripts/standin/$svc (log: $WORK/standin-$svc.log)"
  if ! step timeout "$BUILD_TIMEOUT" podman build --isolation chroot --network host --pull=never \
      "${args[@]}" -t "$name" "scripts/standin/$svc" >"$WORK/standin-$svc.log" 2>&1; then
    tail -20 "$WORK/standin-$svc.log" >&2
    fail "building the $svc stand-in (see $WORK/standin-$svc.log)"
    return 1
  fi
  for_="$(podman image inspect "$name" --format '{{index .Labels "org.order-service.standin.for"}}')"
  if [[ "$for_" != "$name" ]]; then
    fail "compose.yaml names $name for $svc, but scripts/standin/$svc imitates '$for_'"
    return 1
  fi
  if [[ "$(first_layer "$name")" != "$SLIM_DIGEST" ]]; then
    fail "the $svc stand-in is not built on the verified debian:bookworm-slim"
    return 1
  fi
  pass "stand-in $name built (test device, on the verified base)"
}
build_standin postgres || finish
build_standin localstack || finish

# ------------------------------------------------------------------ 3. engine

SOCK_DIR="$(mktemp -d /tmp/compose-test.XXXXXX)" || abort "mktemp"
SOCK="$SOCK_DIR/podman.sock"
# own session: a Ctrl-C on the terminal reaches this script, whose cleanup
# still needs the engine to take the stack down
setsid podman system service --time=0 "unix://$SOCK" >"$WORK/podman-service.log" 2>&1 9>&- 7>&- 8>&- &
SERVICE_PID=$!
export DOCKER_HOST="unix://$SOCK"
deadline=$((SECONDS + 30))
until docker version >/dev/null 2>&1; do
  if ((SECONDS >= deadline)) || ! kill -0 "$SERVICE_PID" 2>/dev/null; then
    tail -20 "$WORK/podman-service.log" >&2
    abort "podman system service did not answer on $SOCK within 30 s"
  fi
  sleep 0.5
done
pass "podman system service answers the Docker API on $SOCK (engine $(docker version --format '{{.Server.Version}}'))"
# a stack left by a killed run (its cleanup never ran) would skew every check
if [[ -n "$(project_ids)" ]]; then
  log "removing containers left by an earlier run"
  STARTED_STACK=1
  step timeout 120 docker compose "${COMPOSE_ARGS[@]}" down -v --remove-orphans -t 5 >>"$WORK/down.log" 2>&1
fi

# Podman 4.3 runs HEALTHCHECKs from systemd timers; there is no systemd here,
# so without this loop no container turns healthy and compose's
# `depends_on: condition: service_healthy` waits forever. Every second it
# runs `podman healthcheck run` for each running container of the project
# that has a health check (podman shows its state in the status), as the
# timer would.
health_poller() {
  local id status
  while :; do
    while read -r id status; do
      case "$status" in
        *"(starting)"* | *"(healthy)"* | *"(unhealthy)"*)
          timeout 30 podman healthcheck run "$id" >/dev/null 2>&1 &
          ;;
      esac
    done < <(podman ps --filter "label=com.docker.compose.project=$PROJECT" \
      --filter status=running --format '{{.ID}} {{.Status}}' 2>/dev/null)
    wait
    sleep 1
  done
}
health_poller 9>&- 7>&- 8>&- &
POLLER_PID=$!

# ------------------------------------------------------------------ 4. up

# A port is free when it can be bound without SO_REUSEADDR (an outgoing
# connection's ephemeral port blocks the engine's listener as well).
free_port() {
  python3 -c '
import socket, sys
p, taken = int(sys.argv[1]), set(sys.argv[2:])
for port in range(p, p + 200):
    if str(port) in taken:
        continue
    s = socket.socket()
    try:
        s.bind(("127.0.0.1", port))
    except OSError:
        continue
    finally:
        s.close()
    print(port)
    break
else:
    sys.exit(1)' "$@"
}
PG_HOST_PORT=$(free_port "${PG_PORT:-25442}") || abort "no free port near ${PG_PORT:-25442}"
LS_HOST_PORT=$(free_port "${LS_PORT:-4576}" "$PG_HOST_PORT") || abort "no free port near ${LS_PORT:-4576}"
API_HOST_PORT=$(free_port "${API_PORT:-8190}" "$PG_HOST_PORT" "$LS_HOST_PORT") ||
  abort "no free port near ${API_PORT:-8190}"
METRICS_HOST_PORT=$(free_port "${API_METRICS_PORT:-9190}" "$PG_HOST_PORT" "$LS_HOST_PORT" "$API_HOST_PORT") ||
  abort "no free port near ${API_METRICS_PORT:-9190}"
export POSTGRES_HOST_PORT=$PG_HOST_PORT LOCALSTACK_HOST_PORT=$LS_HOST_PORT \
  API_HOST_PORT API_METRICS_HOST_PORT=$METRICS_HOST_PORT PAYMENT_DELAY_MS=500
unset AUTH_JWKS_HOST_FILE LOG_LEVEL WORKER_MAX_IN_FLIGHT SQS_MAX_RECEIVE_COUNT SQS_VISIBILITY_TIMEOUT
log "host ports: postgres $PG_HOST_PORT, localstack $LS_HOST_PORT, api $API_HOST_PORT, api metrics $METRICS_HOST_PORT"

# The local issuer compose.yaml's api trusts (AUTH_ISSUER, AUTH_AUDIENCE are
# token.sh's defaults); the token is never printed.
timeout 120 scripts/token.sh --init >"$WORK/token.log" 2>&1 ||
  abort "scripts/token.sh --init (see $WORK/token.log)"
[[ -s .local/auth/jwks.json ]] || abort "scripts/token.sh --init made no .local/auth/jwks.json"
token="$(timeout 60 scripts/token.sh --customer "$CUSTOMER" 2>>"$WORK/token.log")" ||
  abort "scripts/token.sh --customer $CUSTOMER (see $WORK/token.log)"
AUTH=(-H "Authorization: Bearer $token")
log "auth: scripts/token.sh --init, requests carry a bearer token for $CUSTOMER"

# Every published port binds 127.0.0.1 only (api metrics included).
if python3 -c '
import json, sys
bad = ["%s:%s" % (n, p.get("published")) for n, s in json.load(open(sys.argv[1]))["services"].items()
       for p in s.get("ports", []) if p.get("host_ip") != "127.0.0.1"]
print(" ".join(bad)); sys.exit(1 if bad else 0)' "$WORK/config.json" >"$WORK/ports.log"; then
  pass "compose.yaml publishes every port on 127.0.0.1 only"
else
  fail "ports published beyond 127.0.0.1: $(cat "$WORK/ports.log")"
fi

log "docker compose up -d --build --scale worker=2 (log: $WORK/up.log)"
STARTED_STACK=1
up_start=$SECONDS
if step timeout "$BUILD_TIMEOUT" docker compose "${COMPOSE_ARGS[@]}" up -d --build --scale worker=2 \
     >"$WORK/up.log" 2>&1; then
  pass "docker compose up -d --build --scale worker=2 ($((SECONDS - up_start)) s)"
else
  tail -20 "$WORK/up.log" >&2
  abort "docker compose up (see $WORK/up.log, $WORK/podman-service.log)"
fi

# ps_state: one line per container: service, name, state, health, exit code
ps_state() {
  docker compose "${COMPOSE_ARGS[@]}" ps -a --format json 2>/dev/null | python3 -c '
import json, sys
text = sys.stdin.read().strip()
rows = json.loads(text) if text.startswith("[") else [json.loads(l) for l in text.splitlines() if l]
for r in rows:
    print(r["Service"], r["Name"], r["State"], r.get("Health") or "-", r.get("ExitCode", 0))'
}
all_healthy() {
  local state
  state="$(ps_state)"
  printf '%s\n' "$state" >"$WORK/ps.txt"
  [[ $(grep -c '^worker .* running healthy ' <<<"$state") -eq 2 ]] &&
    grep -q '^api .* running healthy ' <<<"$state" &&
    grep -q '^postgres .* running healthy ' <<<"$state" &&
    grep -q '^localstack .* running healthy ' <<<"$state" &&
    grep -qE '^migrate \S+ exited \S+ 0$' <<<"$state"
}
deadline=$((SECONDS + 180))
until all_healthy; do
  if ((SECONDS >= deadline)); then
    cat "$WORK/ps.txt" >&2
    abort "not every service healthy within 180 s (state above; logs: docker compose logs)"
  fi
  sleep 1
done
pass "postgres, localstack, api and 2 workers healthy; migrate exited 0"
docker compose "${COMPOSE_ARGS[@]}" logs -t --no-color >"$WORK/compose-logs.txt" 2>&1

# Start order, from the engine's timestamps and the services' own log lines:
# migrate after PostgreSQL accepted connections (service_healthy), api and
# workers after migrate finished (service_completed_successfully) and after
# the last LocalStack init hook (service_healthy).
mapfile -t ids < <(project_ids)
podman inspect "${ids[@]}" >"$WORK/inspect.json" 2>/dev/null
if python3 - "$WORK/inspect.json" "$WORK/compose-logs.txt" >"$WORK/order.log" 2>&1 <<'EOF'
import json, re, sys
from datetime import datetime

TS = re.compile(r"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.(\d+))?(Z|[+-]\d\d:?\d\d)")

def ts(text):
    m = TS.search(text)
    if not m:
        raise ValueError(f"no timestamp in {text!r}")
    frac = (m.group(2) or "0")[:6].ljust(6, "0")
    zone = "+00:00" if m.group(3) == "Z" else m.group(3)
    return datetime.fromisoformat(f"{m.group(1)}.{frac}{zone}")

ctrs = {c["Config"]["Labels"]["com.docker.compose.service"] + "-" +
        c["Config"]["Labels"]["com.docker.compose.container-number"]: c
        for c in json.load(open(sys.argv[1]))}
started = {k: ts(c["State"]["StartedAt"]) for k, c in ctrs.items()}
migrate_done = ts(ctrs["migrate-1"]["State"]["FinishedAt"])

def first_line(prefix, needle):
    for line in open(sys.argv[2], errors="replace"):
        if line.startswith(prefix) and needle in line:
            return ts(line.split("|", 1)[1])
    raise SystemExit(f"no {needle!r} in the logs of {prefix}")

pg_ready = first_line("postgres-1", "ready to accept connections")
ls_ready = first_line("localstack-1", "localstack-init: event bus")
checks = [("migrate started after PostgreSQL was ready", started["migrate-1"] > pg_ready)]
for k in sorted(started):
    if k.startswith(("api-", "worker-")):
        checks.append((f"{k} started after migrate finished", started[k] >= migrate_done))
        checks.append((f"{k} started after the LocalStack init hooks", started[k] > ls_ready))
bad = [name for name, ok in checks if not ok]
print(f"{len(checks)} checks; " + ("; ".join(bad) if bad else "all in order"))
sys.exit(1 if bad else 0)
EOF
then
  pass "start order: $(cat "$WORK/order.log")"
else
  fail "start order: $(tr '\n' ' ' <"$WORK/order.log")"
fi

# Ports: published where asserted, on 127.0.0.1.
for pair in "api 8080 $API_HOST_PORT" "api 9100 $METRICS_HOST_PORT" \
            "postgres 5432 $PG_HOST_PORT" "localstack 4566 $LS_HOST_PORT"; do
  read -r svc cport hport <<<"$pair"
  got="$(docker compose "${COMPOSE_ARGS[@]}" port "$svc" "$cport" 2>/dev/null)"
  if [[ "$got" == "127.0.0.1:$hport" ]]; then
    pass "$svc:$cport published on 127.0.0.1:$hport"
  else
    fail "$svc:$cport published on '$got', expected 127.0.0.1:$hport"
  fi
done
if (exec 3<>"/dev/tcp/127.0.0.1/$PG_HOST_PORT") 2>/dev/null; then
  pass "PostgreSQL reachable on 127.0.0.1:$PG_HOST_PORT"
else
  fail "PostgreSQL not reachable on 127.0.0.1:$PG_HOST_PORT"
fi

# Environment inside the containers, and the JWKS mount (read-only, readable
# by the API's non-root user).
api_env="$(docker compose "${COMPOSE_ARGS[@]}" exec -T api env 2>&1)"
missing=()
for kv in AUTH_ISSUER=https://order-service.local AUTH_AUDIENCE=order-api \
          AUTH_JWKS_FILE=/etc/order-service/jwks.json METRICS_PORT=9100 PORT=8080 \
          EVENT_BUS_NAME=orders AWS_ENDPOINT_URL_EVENTS=http://localstack:4566 \
          AWS_ENDPOINT_URL_SQS=http://localstack:4566 PGPASSWORD=orders \
          SQS_QUEUE_URL=http://localstack:4566/000000000000/orders; do
  grep -qxF "$kv" <<<"$api_env" || missing+=("$kv")
done
if [[ ${#missing[@]} -eq 0 ]]; then
  pass "api environment: AUTH_*, METRICS_PORT, EVENT_BUS_NAME, endpoints, queue URL"
else
  fail "api environment lacks ${missing[*]}"
fi
worker_env="$(docker compose "${COMPOSE_ARGS[@]}" exec -T --index 2 worker env 2>&1)"
if grep -qxF PAYMENT_DELAY_MS=500 <<<"$worker_env" && grep -qxF METRICS_PORT=9100 <<<"$worker_env" &&
   ! grep -q '^WORKER_MAX_IN_FLIGHT=.' <<<"$worker_env"; then
  pass "worker environment: PAYMENT_DELAY_MS from the caller, METRICS_PORT, in-flight bound left to the program"
else
  fail "worker environment: $(grep -E '^(PAYMENT_DELAY_MS|METRICS_PORT|EVENT_BUS_NAME|WORKER_MAX_IN_FLIGHT)=' <<<"$worker_env" | tr '\n' ' ')"
fi
jwks_in="$(docker compose "${COMPOSE_ARGS[@]}" exec -T api cat /etc/order-service/jwks.json 2>&1)"
jwks_host="$(cat .local/auth/jwks.json)"
jwks_mount="$(docker compose "${COMPOSE_ARGS[@]}" exec -T api grep ' /etc/order-service/jwks.json ' /proc/mounts 2>&1)"
if [[ -n "$jwks_in" && "$jwks_in" == "$jwks_host" ]] &&
   [[ "$(awk '{print $4}' <<<"$jwks_mount")" =~ ^ro(,|$) ]]; then
  pass "JWKS mounted read-only at /etc/order-service/jwks.json, readable by the api's user"
else
  fail "JWKS mount '$jwks_mount': inside '${jwks_in:0:80}' vs host '${jwks_host:0:80}'"
fi

# ------------------------------------------------------------------ init hooks

LS_URL="http://127.0.0.1:$LS_HOST_PORT"
aws_json() { # aws_json SERVICE TARGET JSON-VERSION BODY: LocalStack checks no signature
  curl -sS --max-time 15 -X POST "$LS_URL/" -H "Content-Type: application/x-amz-json-$3" \
    -H "X-Amz-Target: $2" -d "$4" \
    -H "Authorization: AWS4-HMAC-SHA256 Credential=test/20240101/us-east-1/$1/aws4_request, SignedHeaders=host, Signature=0"
}
sqs() { aws_json sqs "AmazonSQS.$1" 1.0 "$2"; }
events() { aws_json events "AWSEvents.$1" 1.1 "$2"; }
jq_py() { python3 -c "import json,sys; d=json.load(sys.stdin); print($1)" 2>/dev/null; }

queue_url() { sqs GetQueueUrl "{\"QueueName\":\"$1\"}" | jq_py 'd["QueueUrl"]'; }
orders_q="$(queue_url orders)"
dlq_q="$(queue_url orders-dlq)"
events_q="$(queue_url order-events)"
dlq_arn="$(sqs GetQueueAttributes "{\"QueueUrl\":\"$dlq_q\",\"AttributeNames\":[\"QueueArn\"]}" |
  jq_py 'd["Attributes"]["QueueArn"]')"
redrive="$(sqs GetQueueAttributes "{\"QueueUrl\":\"$orders_q\",\"AttributeNames\":[\"RedrivePolicy\"]}" |
  jq_py 'd["Attributes"]["RedrivePolicy"]')"
if [[ -n "$orders_q" && -n "$dlq_arn" ]] &&
   python3 -c 'import json,sys; r=json.loads(sys.argv[1]); sys.exit(0 if r["deadLetterTargetArn"]==sys.argv[2] and str(r["maxReceiveCount"])=="5" else 1)' \
     "$redrive" "$dlq_arn" 2>/dev/null; then
  pass "init hook: queue orders with redrive to orders-dlq after 5 receives"
else
  fail "init hook: orders queue '$orders_q', redrive '$redrive', DLQ '$dlq_arn'"
fi
events_arn="$(sqs GetQueueAttributes "{\"QueueUrl\":\"$events_q\",\"AttributeNames\":[\"QueueArn\"]}" |
  jq_py 'd["Attributes"]["QueueArn"]')"
rule="$(events DescribeRule '{"Name":"order-events","EventBusName":"orders"}')"
targets="$(events ListTargetsByRule '{"Rule":"order-events","EventBusName":"orders"}' |
  jq_py '" ".join(t["Arn"] for t in d["Targets"])')"
if [[ -n "$events_arn" && "$targets" == "$events_arn" ]] &&
   jq_py 'json.loads(d["EventPattern"])["source"] == ["order-service"] and d["State"] == "ENABLED"' \
     <<<"$rule" | grep -qx True; then
  pass "init hook: bus orders, rule order-events (source order-service) -> queue order-events"
else
  fail "init hook: rule '$(tr -d '\n' <<<"$rule" | cut -c1-200)', targets '$targets', queue '$events_arn'"
fi

# One event through the rule: order-service's arrives, another source's not.
probe="probe-$$-$RANDOM"
put="$(events PutEvents "{\"Entries\":[
  {\"EventBusName\":\"orders\",\"Source\":\"someone-else\",\"DetailType\":\"order.created\",\"Detail\":\"{\\\"probe\\\":\\\"$probe-other\\\"}\"},
  {\"EventBusName\":\"orders\",\"Source\":\"order-service\",\"DetailType\":\"order.created\",\"Detail\":\"{\\\"probe\\\":\\\"$probe\\\"}\"}]}")"
got=""
deadline=$((SECONDS + 20))
while ((SECONDS < deadline)); do
  got+="$(sqs ReceiveMessage "{\"QueueUrl\":\"$events_q\",\"MaxNumberOfMessages\":10,\"WaitTimeSeconds\":2}" |
    jq_py '" ".join(m["Body"] for m in d.get("Messages", []))')"
  [[ "$got" == *"\"$probe\""* ]] && break
done
sleep 1
got+="$(sqs ReceiveMessage "{\"QueueUrl\":\"$events_q\",\"MaxNumberOfMessages\":10,\"WaitTimeSeconds\":1}" |
  jq_py '" ".join(m["Body"] for m in d.get("Messages", []))')"
if [[ "$got" == *"\"$probe\""* && "$got" != *"$probe-other"* ]]; then
  pass "EventBridge: an order-service event on bus orders reaches queue order-events, another source's does not"
else
  fail "EventBridge routing: PutEvents '$(cut -c1-120 <<<"$put")', received '$(cut -c1-200 <<<"$got")'"
fi

# ------------------------------------------------------------------ orders

API_URL="http://127.0.0.1:$API_HOST_PORT"
API_IMAGE="$(compose_image api)"
WORKER_IMAGE="$(compose_image worker)"
# the variables the images' programs know (their --help), from the very
# containers compose started
help_of() { docker compose "${COMPOSE_ARGS[@]}" exec -T "$1" "/usr/local/bin/order-$1" --help 2>&1; }
api_help="$(help_of api)"
worker_help="$(help_of worker)"
printf '%s\n--- worker\n%s\n' "$api_help" "$worker_help" >"$WORK/help.txt"
[[ "$api_help" == *"usage: order-api"* && "$worker_help" == *"usage: order-worker"* ]] ||
  fail "order-api/order-worker --help inside the containers (see $WORK/help.txt)"

code="$(curl -s -o /dev/null -w '%{http_code}' --max-time 10 -X POST "$API_URL/orders" \
  -H 'Content-Type: application/json' -d '{}')"
if [[ "$code" == 401 ]]; then
  pass "POST /orders without a token answers 401 (JWT auth wired to the local issuer)"
else
  fail "POST /orders without a token answered $code, expected 401"
fi

ORDER_IDS=()
for i in $(seq 1 "$ORDERS"); do
  body="{\"customer_id\":\"$CUSTOMER\",\"currency\":\"BRL\",\"items\":[{\"product_id\":\"p-$i\",\"quantity\":$i,\"unit_price_cents\":1500}]}"
  resp="$(curl -sS --max-time 10 -w '\n%{http_code}' -X POST "$API_URL/orders" "${AUTH[@]}" \
    -H 'Content-Type: application/json' -H "Idempotency-Key: compose-$$-$i" -d "$body")"
  code="${resp##*$'\n'}"
  json="${resp%$'\n'*}"
  id="$(jq_py 'd["id"] if d.get("status") == "PENDING" else ""' <<<"$json")"
  if [[ "$code" == 201 && -n "$id" ]]; then
    ORDER_IDS+=("$id")
  else
    fail "POST /orders #$i: HTTP $code $(cut -c1-200 <<<"$json")"
  fi
done
[[ ${#ORDER_IDS[@]} -eq "$ORDERS" ]] && pass "POST /orders: $ORDERS orders created, 201 PENDING"

deadline=$((SECONDS + PROCESS_TIMEOUT))
pending=("${ORDER_IDS[@]}")
while ((${#pending[@]} > 0 && SECONDS < deadline)); do
  still=()
  for id in "${pending[@]}"; do
    st="$(curl -s --max-time 5 "${AUTH[@]}" "$API_URL/orders/$id" | jq_py 'd.get("status", "")')"
    [[ "$st" == PROCESSED ]] || still+=("$id")
  done
  pending=("${still[@]}")
  ((${#pending[@]} > 0)) && sleep 1
done
if ((${#ORDER_IDS[@]} > 0 && ${#pending[@]} == 0)); then
  pass "all ${#ORDER_IDS[@]} orders went PENDING -> PROCESSED through the compose stack"
else
  fail "${#pending[@]} of ${#ORDER_IDS[@]} orders not PROCESSED within ${PROCESS_TIMEOUT} s"
fi

code="$(curl -sS --max-time 10 -o "$WORK/metrics.txt" -w '%{http_code}' \
  "http://127.0.0.1:$METRICS_HOST_PORT/metrics" 2>"$WORK/metrics.err")"
if [[ "$code" == 200 ]] && grep -q '^# TYPE ' "$WORK/metrics.txt"; then
  pass "api /metrics on its own port, published on 127.0.0.1:$METRICS_HOST_PORT"
else
  fail "api /metrics on 127.0.0.1:$METRICS_HOST_PORT: HTTP $code $(head -c 200 "$WORK/metrics.err" "$WORK/metrics.txt" | tr '\n' ' ')"
fi
if ((${#ORDER_IDS[@]} > 0)); then
  got=""
  deadline=$((SECONDS + 30))
  while ((SECONDS < deadline)) && [[ "$got" != *"${ORDER_IDS[0]}"* ]]; do
    got+="$(sqs ReceiveMessage "{\"QueueUrl\":\"$events_q\",\"MaxNumberOfMessages\":10,\"WaitTimeSeconds\":2}" |
      jq_py '" ".join(m["Body"] for m in d.get("Messages", []))')"
  done
  if [[ "$got" == *"${ORDER_IDS[0]}"* ]]; then
    pass "the order's events reach queue order-events through bus orders"
  else
    fail "no event of order ${ORDER_IDS[0]} in queue order-events within 30 s"
  fi
fi

for img in "$API_IMAGE" "$WORKER_IMAGE"; do
  if [[ "$(first_layer "$img")" == "$SLIM_DIGEST" ]]; then
    pass "$img (built by compose) stands on the verified debian:bookworm-slim"
  else
    fail "$img's first layer $(first_layer "$img") is not the verified slim rootfs"
  fi
done

# ------------------------------------------------------------------ down

# Graceful stop: SIGTERM, the programs drain and exit 0.
stop_start=$SECONDS
step timeout 120 docker compose "${COMPOSE_ARGS[@]}" stop -t 30 >"$WORK/stop.log" 2>&1
state="$(ps_state)"
printf '%s\n' "$state" >"$WORK/ps-stopped.txt"
if [[ $(grep -cE '^(api|worker) \S+ exited \S+ 0$' <<<"$state") -eq 3 ]]; then
  pass "docker compose stop: api and both workers exit 0 on SIGTERM ($((SECONDS - stop_start)) s)"
else
  fail "docker compose stop: $(grep -E '^(api|worker) ' <<<"$state" | tr '\n' ';')"
fi
stop_tree "$POLLER_PID"
POLLER_PID=""
if step timeout 120 docker compose "${COMPOSE_ARGS[@]}" down -v -t 10 >>"$WORK/down.log" 2>&1 &&
   [[ -z "$(project_ids)" ]] &&
   ! podman volume exists "${PROJECT}_pgdata" && ! podman network exists "${PROJECT}_default"; then
  STARTED_STACK=0
  pass "docker compose down -v removes the containers, the volume and the network"
else
  fail "docker compose down -v left something (see $WORK/down.log)"
fi

finish
