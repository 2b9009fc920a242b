#!/usr/bin/env bash
# shellcheck disable=SC2317  # cleanup helpers run from the EXIT trap
# End-to-end test of the container images, without a container engine daemon:
#
#   1. installs podman, buildah, debootstrap, runc (Debian, root) when
#      missing; everything runs in the private podman storage of
#      scripts/container-env.sh (.local/containers/), never the machine's;
#   2. makes or verifies the debian:bookworm / debian:bookworm-slim base
#      images (scripts/make-base-images.sh: an image under those tags is used
#      only when it is the one recorded there from the current rootfs,
#      otherwise it is re-imported) - nothing is pulled. It proves the point
#      by tagging a foreign image with forged labels as debian:bookworm-slim
#      and checking it is refused and replaced;
#   3. builds Dockerfile.api and Dockerfile.worker unchanged with
#      `podman build --isolation chroot --network host --pull=never`, checks
#      each stage was built on the verified base (its first layer is the
#      rootfs digest) and each runtime image is under 120 MB;
#   4. starts PostgreSQL and LocalStack on the host (scripts/services.sh,
#      which writes .local/env), creates a queue of its own, and runs INSIDE
#      the images (buildah from + buildah run --isolation chroot --network
#      host; `podman run` cannot set rlimits here): `order-api migrate`, the
#      API on a free port, two workers (PAYMENT_DELAY_MS=500);
#   5. checks the images' HEALTHCHECK commands (order-api healthcheck, the
#      worker's /metrics probe) inside the containers, POSTs orders and waits
#      for each to reach "status":"PROCESSED", then SIGTERMs API and workers
#      and expects exit status 0 (graceful drain).
# Everything it started is stopped on exit. Bounded in time: builds are
# limited by BUILD_TIMEOUT, every wait loop has its own deadline.
#
# Usage: scripts/container-test.sh
# Env:   ORDERS (5), API_PORT (first free from 18080), METRICS_PORT_BASE (first
#        free from 19101; the two workers take the first two free from it),
#        BUILD_TIMEOUT (1200 s),
#        PROCESS_TIMEOUT (90 s), KEEP_SERVICES=1 (leave PostgreSQL/LocalStack
#        running), KEEP_LOGS (logs are in .local/container-test/ anyway)
# Last line: "container-test: N passed, M failed"; exit status non-zero on
# any failure.
set -uo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT" || exit 1
# shellcheck source=scripts/container-env.sh disable=SC1091
. scripts/container-env.sh

ORDERS="${ORDERS:-5}"
BUILD_TIMEOUT="${BUILD_TIMEOUT:-1200}"
PROCESS_TIMEOUT="${PROCESS_TIMEOUT:-90}"
MAX_IMAGE_BYTES=$((120 * 1000 * 1000))
WORK="$ROOT/.local/container-test"
API_IMAGE="order-api:test"
WORKER_IMAGE="order-worker:test"
RUN_ID="ct$$"

mkdir -p "$WORK"
rm -f "$WORK"/*.log

passed=0
failed=0
log() { printf '[container-test] %s\n' "$*" >&2; }
pass() { passed=$((passed + 1)); log "PASS: $*"; }
fail() { failed=$((failed + 1)); log "FAIL: $*"; }
finish() {
  echo "container-test: $passed passed, $failed failed"
  [[ $failed -eq 0 && $passed -gt 0 ]] && exit 0
  exit 1
}
# a fatal failure: count it, print the summary (cleanup runs from the trap)
abort() { fail "$*"; finish; }

# ------------------------------------------------------------------ cleanup

BG_PIDS=()        # buildah run processes started in the background
CONTAINERS=()     # buildah working containers
FOREIGN_IMAGE=""  # the impostor of step 2, removed on exit
STARTED_SERVICES=0
QUEUE_URLS=()

descendants() {
  local p child
  for child in $(ps -o pid= --ppid "$1" 2>/dev/null); do
    echo "$child"
    descendants "$child"
  done
}

# The program's own process under a `buildah run` (buildah does not forward
# signals: signal the program, its exit status comes back through buildah).
app_pid() {
  local bp=$1 name=$2 p
  for p in $(descendants "$bp"); do
    if [[ "$(ps -o comm= -p "$p" 2>/dev/null)" == "$name" ]]; then
      echo "$p"
      return 0
    fi
  done
  return 1
}

kill_tree() {
  local bp=$1 p
  local tree
  tree="$(descendants "$bp")"
  for p in $tree; do kill -TERM "$p" 2>/dev/null; done
  kill -TERM "$bp" 2>/dev/null
  sleep 1
  for p in $tree; do kill -KILL "$p" 2>/dev/null; done
  kill -KILL "$bp" 2>/dev/null
  wait "$bp" 2>/dev/null
}

cleanup() {
  local bp c q
  for bp in "${BG_PIDS[@]}"; do
    kill -0 "$bp" 2>/dev/null && kill_tree "$bp"
  done
  for c in "${CONTAINERS[@]}"; do
    buildah rm "$c" >/dev/null 2>&1
  done
  [[ -n "$FOREIGN_IMAGE" ]] && podman rmi -f "$FOREIGN_IMAGE" >/dev/null 2>&1
  for q in "${QUEUE_URLS[@]}"; do
    sqs_call DeleteQueue "QueueUrl=$q" >/dev/null 2>&1
  done
  if [[ $STARTED_SERVICES -eq 1 && "${KEEP_SERVICES:-0}" != 1 ]]; then
    scripts/services.sh stop >/dev/null 2>&1
  fi
}
trap cleanup EXIT
trap 'log "interrupted"; exit 130' INT TERM

# ------------------------------------------------------------------ 1. tools

ensure_tools() {
  local missing=()
  command -v podman >/dev/null || missing+=(podman)
  command -v buildah >/dev/null || missing+=(buildah)
  command -v debootstrap >/dev/null || missing+=(debootstrap)
  command -v runc >/dev/null || missing+=(runc)
  command -v curl >/dev/null || missing+=(curl)
  dpkg -s fuse-overlayfs >/dev/null 2>&1 || missing+=(fuse-overlayfs)
  dpkg -s uidmap >/dev/null 2>&1 || missing+=(uidmap)
  [[ ${#missing[@]} -eq 0 ]] && return 0
  if [[ $(id -u) -ne 0 ]] || ! command -v apt-get >/dev/null; then
    log "missing ${missing[*]} and cannot install them (needs root on Debian)"
    return 1
  fi
  log "installing ${missing[*]}"
  DEBIAN_FRONTEND=noninteractive apt-get update -qq >/dev/null &&
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
      "${missing[@]}" >"$WORK/apt.log" 2>&1
}

if [[ $(id -u) -ne 0 ]]; then
  abort "must run as root (rootful podman/buildah with chroot isolation)"
fi
ensure_tools || abort "installing podman/buildah/debootstrap"

# ------------------------------------------------------------------ 2. base images

container_env_init || abort "writing the private podman configuration under .local/containers"
base_images() {  # make or verify; re-imports whatever is not the recorded image
  timeout "$BUILD_TIMEOUT" scripts/make-base-images.sh >>"$WORK/base-images.log" 2>&1
}
log "base images: scripts/make-base-images.sh (debootstrap once, cached under .local/base-images)"
base_images || abort "scripts/make-base-images.sh (see $WORK/base-images.log)"
pass "base images made or verified: $(grep -c 'verified' "$WORK/base-images.log") of 2 tags checked"

# A foreign image under the run stage's tag, carrying the very labels of the
# real one, must be refused and replaced, never built on.
SLIM_TAG=docker.io/library/debian:bookworm-slim
BASE_LABELS=org.order-service.base
printf 'not debian\n' >"$WORK/foreign-file"
tar -C "$WORK" -cf "$WORK/foreign.tar" foreign-file
forged=()
for l in inputs rootfs; do
  v=$(podman image inspect "$SLIM_TAG" --format "{{index .Labels \"$BASE_LABELS.$l\"}}")
  forged+=(--change "LABEL $BASE_LABELS.$l=$v")
done
if FOREIGN_IMAGE=$(podman import -q "${forged[@]}" "$WORK/foreign.tar" "$SLIM_TAG" 2>>"$WORK/base-images.log"); then
  FOREIGN_IMAGE=${FOREIGN_IMAGE#sha256:}
  if scripts/make-base-images.sh --check >>"$WORK/base-images.log" 2>&1; then
    fail "make-base-images.sh --check accepted a foreign image tagged $SLIM_TAG"
  else
    pass "make-base-images.sh --check refuses a foreign image under $SLIM_TAG (forged labels)"
  fi
  base_images || abort "scripts/make-base-images.sh after the foreign image (see $WORK/base-images.log)"
  now=$(podman image inspect "$SLIM_TAG" --format '{{.Id}}')
  if [[ "$now" != "$FOREIGN_IMAGE" ]] && scripts/make-base-images.sh --check >>"$WORK/base-images.log" 2>&1; then
    pass "the foreign image was replaced by the recorded base (${now:0:12})"
  else
    fail "$SLIM_TAG still is ${now:0:12} after make-base-images.sh (see $WORK/base-images.log)"
  fi
  podman rmi -f "$FOREIGN_IMAGE" >/dev/null 2>&1 && FOREIGN_IMAGE=""
else
  fail "podman import of the foreign image (see $WORK/base-images.log)"
fi
scripts/make-base-images.sh --check >>"$WORK/base-images.log" 2>&1 ||
  abort "base images not verified before the build (see $WORK/base-images.log)"
# the digest each stage's first layer must have
rootfs_digest() { echo "sha256:$(sha256sum <".local/base-images/$1.tar" | cut -d' ' -f1)"; }
FULL_DIGEST=$(rootfs_digest bookworm)
SLIM_DIGEST=$(rootfs_digest bookworm-slim)

# ------------------------------------------------------------------ 3. build

# docker format keeps HEALTHCHECK and STOPSIGNAL (the OCI image format has no
# healthcheck field); the Dockerfiles and the build command are unchanged.
export BUILDAH_FORMAT=docker
build_image() {
  local dockerfile=$1 tag=$2 logf="$WORK/build-${2%%:*}.log"
  log "podman build -f $dockerfile -t $tag (log: $logf)"
  if timeout "$BUILD_TIMEOUT" podman build --isolation chroot --network host --pull=never \
       -f "$dockerfile" -t "$tag" . >"$logf" 2>&1; then
    pass "build $dockerfile"
    return 0
  fi
  tail -30 "$logf" >&2
  fail "build $dockerfile (see $logf)"
  return 1
}
build_image Dockerfile.api "$API_IMAGE" || finish
build_image Dockerfile.worker "$WORKER_IMAGE" || finish

# Each stage really stands on the verified base: the runtime images' first
# layer is the slim rootfs, the build stage's (tagged here from the layer
# cache) the full one.
first_layer() { podman image inspect "$1" --format '{{index .RootFS.Layers 0}}'; }
for img in "$API_IMAGE" "$WORKER_IMAGE"; do
  if [[ "$(first_layer "$img")" == "$SLIM_DIGEST" ]]; then
    pass "$img is built on the verified debian:bookworm-slim"
  else
    fail "$img's first layer $(first_layer "$img") is not the verified slim rootfs $SLIM_DIGEST"
  fi
done
if timeout "$BUILD_TIMEOUT" podman build --isolation chroot --network host --pull=never \
     --target build -f Dockerfile.api -t order-build:test . >"$WORK/build-stage.log" 2>&1 &&
   [[ "$(first_layer order-build:test)" == "$FULL_DIGEST" ]]; then
  pass "the build stage is built on the verified debian:bookworm"
else
  fail "the build stage is not on the verified debian:bookworm $FULL_DIGEST (see $WORK/build-stage.log)"
fi
podman rmi order-build:test >/dev/null 2>&1

for img in "$API_IMAGE" "$WORKER_IMAGE"; do
  size=$(podman image inspect "$img" --format '{{.Size}}')
  mb=$(awk -v b="$size" 'BEGIN { printf "%.1f", b / 1000000 }')
  mib=$(awk -v b="$size" 'BEGIN { printf "%.1f", b / 1048576 }')
  if [[ "$size" -lt "$MAX_IMAGE_BYTES" ]]; then
    pass "image $img is $mb MB ($mib MiB) < 120 MB"
  else
    fail "image $img is $mb MB ($mib MiB), over 120 MB"
  fi
done

# ------------------------------------------------------------------ 4. services

if [[ ! -x scripts/services.sh ]]; then
  abort "scripts/services.sh is missing (it starts PostgreSQL and LocalStack and writes .local/env)"
fi
# services.sh needs the project's .venv (LocalStack): bootstrap.sh makes it
if [[ -x scripts/bootstrap.sh ]] && ! scripts/bootstrap.sh --check >/dev/null 2>&1; then
  log "scripts/bootstrap.sh (Debian packages and .venv for LocalStack)"
  timeout 900 scripts/bootstrap.sh >"$WORK/bootstrap.log" 2>&1 ||
    abort "scripts/bootstrap.sh (see $WORK/bootstrap.log)"
fi
if scripts/services.sh status >/dev/null 2>&1; then
  log "PostgreSQL and LocalStack already running: using them, leaving them running"
else
  STARTED_SERVICES=1
fi
log "scripts/services.sh start"
if ! timeout 300 scripts/services.sh start >"$WORK/services.log" 2>&1; then
  tail -20 "$WORK/services.log" >&2
  abort "scripts/services.sh start (see $WORK/services.log)"
fi
[[ -f .local/env ]] || abort ".local/env was not written by scripts/services.sh"
set -a
# shellcheck disable=SC1091
. .local/env
set +a
for v in DATABASE_URL AWS_REGION AWS_ENDPOINT_URL_SQS AWS_ACCESS_KEY_ID AWS_SECRET_ACCESS_KEY; do
  [[ -n "${!v:-}" ]] || abort ".local/env does not set $v"
done

# Minimal SQS query-protocol client for LocalStack (which does not check signatures).
sqs_call() {
  local action=$1; shift
  local args=(--data-urlencode "Action=$action" --data-urlencode "Version=2012-11-05")
  local kv
  for kv in "$@"; do args+=(--data-urlencode "$kv"); done
  curl -sS --max-time 10 -H "Authorization: AWS4-HMAC-SHA256 Credential=test/20240101/${AWS_REGION}/sqs/aws4_request, SignedHeaders=host, Signature=0" \
    "${args[@]}" "$AWS_ENDPOINT_URL_SQS/"
}
xml_value() { sed -n "s:.*<$1>\([^<]*\)</$1>.*:\1:p" | head -1; }

# A queue of its own (with a DLQ), so no other test's messages are involved.
dlq_url=$(sqs_call CreateQueue "QueueName=${RUN_ID}-dlq" | xml_value QueueUrl)
[[ -n "$dlq_url" ]] || abort "CreateQueue ${RUN_ID}-dlq on $AWS_ENDPOINT_URL_SQS"
QUEUE_URLS+=("$dlq_url")
dlq_arn=$(sqs_call GetQueueAttributes "QueueUrl=$dlq_url" "AttributeName.1=QueueArn" |
  sed -n 's|.*<Value>\(arn:[^<]*\)</Value>.*|\1|p' | head -1)
[[ -n "$dlq_arn" ]] || abort "GetQueueAttributes QueueArn of $dlq_url"
queue_url=$(sqs_call CreateQueue "QueueName=${RUN_ID}-orders" \
  "Attribute.1.Name=VisibilityTimeout" "Attribute.1.Value=30" \
  "Attribute.2.Name=RedrivePolicy" \
  "Attribute.2.Value={\"deadLetterTargetArn\":\"$dlq_arn\",\"maxReceiveCount\":\"5\"}" | xml_value QueueUrl)
[[ -n "$queue_url" ]] || abort "CreateQueue ${RUN_ID}-orders"
QUEUE_URLS+=("$queue_url")
log "queue $queue_url (DLQ $dlq_arn)"

# ------------------------------------------------------------------ 5. run inside the images

free_port() {
  local p=$1
  while (echo >"/dev/tcp/127.0.0.1/$p") 2>/dev/null; do p=$((p + 1)); done
  echo "$p"
}
API_PORT="${API_PORT:-$(free_port 18080)}"
METRICS_PORT_1=$(free_port "${METRICS_PORT_BASE:-19101}")
METRICS_PORT_2=$(free_port $((METRICS_PORT_1 + 1)))
API_URL="http://127.0.0.1:$API_PORT"

# -e for every variable of the contract that is set (.local/env + ours)
ENV_ARGS=()
for v in DATABASE_URL PGPASSWORD PGUSER PGHOST PGPORT PGDATABASE PGSSLMODE \
         AWS_REGION AWS_ENDPOINT_URL_SQS AWS_ACCESS_KEY_ID AWS_SECRET_ACCESS_KEY AWS_SESSION_TOKEN; do
  [[ -n "${!v:-}" ]] && ENV_ARGS+=(-e "$v=${!v}")
done
ENV_ARGS+=(-e "SQS_QUEUE_URL=$queue_url" -e "LOG_LEVEL=${LOG_LEVEL:-info}")
# This test is about the images and their wiring, not tokens (the integration
# suite runs with auth on): auth is turned off explicitly, as it must be.
ENV_ARGS+=(-e AUTH_MODE=off)

# sets NEW_CTR (no command substitution: CONTAINERS must be updated in this shell)
new_container() {
  local image=$1 name=$2
  NEW_CTR=$(buildah from --pull-never --name "$name" "$image" 2>"$WORK/buildah-from.log") || return 1
  CONTAINERS+=("$NEW_CTR")
}

new_container "$API_IMAGE" "${RUN_ID}-api" || abort "buildah from $API_IMAGE"
api_ctr=$NEW_CTR
new_container "$WORKER_IMAGE" "${RUN_ID}-worker1" || abort "buildah from $WORKER_IMAGE"
w1_ctr=$NEW_CTR
new_container "$WORKER_IMAGE" "${RUN_ID}-worker2" || abort "buildah from $WORKER_IMAGE"
w2_ctr=$NEW_CTR

# migrate (one-off, like the ECS migrate task)
if timeout 120 buildah run --isolation chroot --network host "${ENV_ARGS[@]}" "$api_ctr" -- \
     /usr/local/bin/order-api migrate >"$WORK/migrate.log" 2>&1; then
  pass "order-api migrate inside the image"
else
  tail -20 "$WORK/migrate.log" >&2
  abort "order-api migrate inside the image (see $WORK/migrate.log)"
fi

# the API
buildah run --isolation chroot --network host "${ENV_ARGS[@]}" -e "PORT=$API_PORT" \
  "$api_ctr" -- /usr/local/bin/order-api >"$WORK/api.log" 2>&1 &
API_BP=$!
BG_PIDS+=("$API_BP")

# two workers; host networking, so each gets its own metrics port
# (started from this shell, not a subshell, so `wait` gets their exit status)
start_worker() {
  local ctr=$1 port=$2 n=$3
  buildah run --isolation chroot --network host "${ENV_ARGS[@]}" \
    -e PAYMENT_DELAY_MS=500 -e "METRICS_PORT=$port" -e WORKER_SHUTDOWN_GRACE_MS=10000 \
    "$ctr" -- /usr/local/bin/order-worker >"$WORK/worker$n.log" 2>&1 &
  LAST_BP=$!
  BG_PIDS+=("$LAST_BP")
}
start_worker "$w1_ctr" "$METRICS_PORT_1" 1
W1_BP=$LAST_BP
start_worker "$w2_ctr" "$METRICS_PORT_2" 2
W2_BP=$LAST_BP

wait_http() {  # wait_http URL SECONDS
  local url=$1 deadline=$((SECONDS + $2))
  while ((SECONDS < deadline)); do
    [[ "$(curl -s -o /dev/null -w '%{http_code}' --max-time 2 "$url")" == 200 ]] && return 0
    sleep 0.5
  done
  return 1
}
if wait_http "$API_URL/healthz" 30; then
  pass "API answers /healthz on port $API_PORT"
else
  tail -20 "$WORK/api.log" >&2
  abort "API did not answer /healthz within 30 s (see $WORK/api.log)"
fi
if wait_http "$API_URL/readyz" 30; then
  pass "API /readyz (database reachable)"
else
  fail "API /readyz"
fi
for port in "$METRICS_PORT_1" "$METRICS_PORT_2"; do
  if wait_http "http://127.0.0.1:$port/metrics" 30; then
    pass "worker /metrics on $port"
  else
    fail "worker /metrics on $port (see $WORK/worker*.log)"
  fi
done

# The images' own HEALTHCHECK commands, run inside the containers.
healthcheck_cmd() {  # prints the HEALTHCHECK test of an image, one argv word per line
  podman image inspect "$1" --format '{{json .Config.Healthcheck.Test}}' |
    python3 -c 'import json,sys; t=json.load(sys.stdin) or []; print("\n".join(t[1:]) if t and t[0]=="CMD" else "")'
}
mapfile -t api_hc < <(healthcheck_cmd "$API_IMAGE")
mapfile -t worker_hc < <(healthcheck_cmd "$WORKER_IMAGE")
if [[ "${api_hc[*]:-}" == "/usr/local/bin/order-api healthcheck" ]] &&
   timeout 20 buildah run --isolation chroot --network host -e "PORT=$API_PORT" "$api_ctr" -- \
     "${api_hc[@]}" >"$WORK/healthcheck.log" 2>&1; then
  pass "API image HEALTHCHECK (${api_hc[*]}) exits 0 inside the container"
else
  fail "API image HEALTHCHECK '${api_hc[*]:-none}' (see $WORK/healthcheck.log)"
fi
# and it must fail when nothing answers
closed_port=$(free_port 18990)
if timeout 20 buildah run --isolation chroot --network host -e "PORT=$closed_port" "$api_ctr" -- \
     /usr/local/bin/order-api healthcheck >>"$WORK/healthcheck.log" 2>&1; then
  fail "order-api healthcheck exits 0 although nothing listens on $closed_port"
else
  pass "order-api healthcheck exits non-zero when nothing listens"
fi
if [[ ${#worker_hc[@]} -gt 0 ]] &&
   timeout 20 buildah run --isolation chroot --network host -e "METRICS_PORT=$METRICS_PORT_1" \
     "$w1_ctr" -- "${worker_hc[@]}" >>"$WORK/healthcheck.log" 2>&1; then
  pass "worker image HEALTHCHECK exits 0 inside the container"
else
  fail "worker image HEALTHCHECK '${worker_hc[*]:-none}' (see $WORK/healthcheck.log)"
fi

# ------------------------------------------------------------------ orders

ORDER_IDS=()
for i in $(seq 1 "$ORDERS"); do
  body="{\"customer_id\":\"container-test-$RUN_ID\",\"currency\":\"BRL\",\"items\":[{\"product_id\":\"p-$i\",\"quantity\":$i,\"unit_price_cents\":1500}]}"
  resp=$(curl -sS --max-time 10 -w '\n%{http_code}' -X POST "$API_URL/orders" \
    -H 'Content-Type: application/json' -H "Idempotency-Key: $RUN_ID-$i" -d "$body")
  code="${resp##*$'\n'}"
  json="${resp%$'\n'*}"
  id=$(printf '%s' "$json" | python3 -c 'import json,sys; print(json.load(sys.stdin).get("id",""))' 2>/dev/null)
  if [[ "$code" == 201 && -n "$id" ]]; then
    ORDER_IDS+=("$id")
  else
    fail "POST /orders #$i: HTTP $code $json"
  fi
done
[[ ${#ORDER_IDS[@]} -eq "$ORDERS" ]] && pass "POST /orders: $ORDERS orders created (201)"

deadline=$((SECONDS + PROCESS_TIMEOUT))
pending=("${ORDER_IDS[@]}")
while ((${#pending[@]} > 0 && SECONDS < deadline)); do
  still=()
  for id in "${pending[@]}"; do
    if curl -s --max-time 5 "$API_URL/orders/$id" | grep -Eq '"status"[[:space:]]*:[[:space:]]*"PROCESSED"'; then
      :
    else
      still+=("$id")
    fi
  done
  pending=("${still[@]}")
  ((${#pending[@]} > 0)) && sleep 1
done
if ((${#ORDER_IDS[@]} > 0 && ${#pending[@]} == 0)); then
  pass "all ${#ORDER_IDS[@]} orders reached PROCESSED through the workers"
else
  for id in "${pending[@]}"; do
    log "not processed: $(curl -s --max-time 5 "$API_URL/orders/$id")"
  done
  fail "${#pending[@]} of ${#ORDER_IDS[@]} orders not PROCESSED within ${PROCESS_TIMEOUT}s (logs: $WORK)"
fi
# both workers took part? (informational: with few orders one may get them all)
for n in 1 2; do
  lines=$(grep -c 'PROCESSED\|processed' "$WORK/worker$n.log" 2>/dev/null || true)
  log "worker$n log lines mentioning processed: ${lines:-0}"
done

# ------------------------------------------------------------------ graceful stop

stop_gracefully() {  # stop_gracefully BUILDAH_PID PROGRAM LABEL
  local bp=$1 name=$2 label=$3 pid rc
  if ! pid=$(app_pid "$bp" "$name"); then
    fail "$label: process $name not found"
    return
  fi
  kill -TERM "$pid"
  local deadline=$((SECONDS + 35))
  while kill -0 "$bp" 2>/dev/null && ((SECONDS < deadline)); do sleep 0.5; done
  if kill -0 "$bp" 2>/dev/null; then
    fail "$label: still running 35 s after SIGTERM"
    return
  fi
  wait "$bp"
  rc=$?
  if [[ $rc -eq 0 ]]; then
    pass "$label exits 0 on SIGTERM"
  else
    fail "$label exited $rc on SIGTERM"
  fi
}
stop_gracefully "$W1_BP" order-worker "worker 1"
stop_gracefully "$W2_BP" order-worker "worker 2"
stop_gracefully "$API_BP" order-api "API"

finish
