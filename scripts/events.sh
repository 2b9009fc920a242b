#!/usr/bin/env bash
# Prints the order events arriving in the local EventBridge target: the SQS
# queue "order-events" that scripts/services.sh makes the target of the rule
# "order-events" (source order-service) on the bus "orders". Each event is
# printed as EventBridge delivers it (one JSON object per line, or indented
# with --pretty) and then deleted from the queue, so each shows once.
#
# Usage: scripts/events.sh [--pretty] [--once] [--keep] [--help]
#   --pretty   indent each event (jq .)
#   --once     one long poll (up to 10 events, 5 s), then exit
#   --keep     leave the events in the queue (each shows again after 30 s)
#
# Needs: services started (scripts/services.sh start writes .local/env with
# EVENTS_QUEUE_URL), an order-api with EVENT_BUS_NAME set (scripts/up.sh
# sets it from .local/env), curl and jq. Stop with Ctrl-C.
# Env: ORDER_LOCAL_DIR (.local: where env lives).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)"
LIB_TAG=events
# shellcheck source=SCRIPTDIR/lib.sh
. "$ROOT/scripts/lib.sh"

pretty=0 once=0 keep=0
for a in "$@"; do
  case "$a" in
    --pretty) pretty=1 ;;
    --once) once=1 ;;
    --keep) keep=1 ;;
    -h | --help)
      usage
      exit 0
      ;;
    *) die "unknown argument '$a' (see --help)" ;;
  esac
done
need_cmd curl "run scripts/bootstrap.sh"
need_cmd jq "run scripts/bootstrap.sh"

ENV_FILE="${ORDER_LOCAL_DIR:-$ROOT/.local}/env"
[[ -f "$ENV_FILE" ]] || die "$ENV_FILE not found: run scripts/services.sh start"
# shellcheck source=/dev/null
. "$ENV_FILE"
[[ -n "${EVENTS_QUEUE_URL:-}" ]] || die "EVENTS_QUEUE_URL not in $ENV_FILE: run scripts/services.sh start"
endpoint="${AWS_ENDPOINT_URL_SQS:?}"
region="${AWS_REGION:-us-east-1}"

wait_s=20
((once)) && wait_s=5
log "events on bus ${EVENT_BUS_NAME:-orders} -> $EVENTS_QUEUE_URL (Ctrl-C to stop)"
while :; do
  req="$(jq -nc --arg q "$EVENTS_QUEUE_URL" --argjson w "$wait_s" \
    '{QueueUrl: $q, MaxNumberOfMessages: 10, WaitTimeSeconds: $w}')"
  resp="$(sqs_json_call "$endpoint" "$region" ReceiveMessage "$req")" ||
    die "ReceiveMessage failed: ${resp:0:300}"
  while IFS= read -r m; do
    [[ -n "$m" ]] || continue
    if ((pretty)); then
      jq -r '.Body' <<<"$m" | jq .
    else
      jq -r '.Body' <<<"$m" | jq -c .
    fi
    if ((!keep)); then
      del="$(jq -c --arg q "$EVENTS_QUEUE_URL" '{QueueUrl: $q, ReceiptHandle: .ReceiptHandle}' <<<"$m")"
      sqs_json_call "$endpoint" "$region" DeleteMessage "$del" >/dev/null ||
        log "could not delete a message; it shows again later"
    fi
  done < <(jq -c '.Messages // [] | .[]' <<<"$resp")
  ((once)) && break
done
