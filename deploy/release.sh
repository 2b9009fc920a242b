#!/usr/bin/env bash
# Rolls pushed images out to ECS: the one-off migration first, then both
# services. The deploy workflow (.github/workflows/deploy.yml) runs it; a
# person can run it too, with AWS credentials and the same variables.
#
# Decisions:
# - Each new revision is a copy of its family's latest ACTIVE revision with
#   only the image changed, so configuration Terraform wrote into a task
#   definition (environment, secrets, CPU, memory, roles) is kept and goes
#   out with the release.
# - The services are only touched once the migration task has stopped with
#   exit code 0; any other outcome fails the release with nothing rolled.
# - Rollback is the ECS deployment circuit breaker's job (enabled with
#   rollback in deploy/ecs.tf): when the new tasks fail to start or stay
#   unhealthy, ECS returns the service to the last completed deployment. This
#   script waits for the services to be stable and then fails unless the
#   revision it registered is the one that completed, so a rolled-back
#   release is reported as a failure.
#
# Usage: deploy/release.sh API_IMAGE WORKER_IMAGE
#   (full image references, e.g. <account>.dkr.ecr.<region>.amazonaws.com/order-service/order-api:<git sha>)
# Environment (values: `terraform output github_actions_variables`):
#   AWS_REGION, ECS_CLUSTER, ECS_API_SERVICE, ECS_WORKER_SERVICE,
#   ECS_API_FAMILY, ECS_WORKER_FAMILY, ECS_MIGRATE_FAMILY,
#   MIGRATE_SUBNETS, MIGRATE_SECURITY_GROUPS (comma-separated ids)
#   MIGRATE_TIMEOUT_MIN (default 30), STABLE_TIMEOUT_MIN (default 30)
# Needs: aws (CLI v2), jq.
# Exit status: 0 when the migration succeeded and both services completed a
# deployment of the new images; 1 otherwise; 2 for a usage/configuration error.
set -euo pipefail

# Container names, as in deploy/ecs.tf.
API_CONTAINER=order-api
WORKER_CONTAINER=order-worker
MIGRATE_CONTAINER=migrate

log() { printf '[release] %s\n' "$*" >&2; }
die() { printf '[release] ERROR: %s\n' "$*" >&2; exit 1; }
usage_error() { printf '[release] %s\n' "$*" >&2; exit 2; }

[[ $# -eq 2 ]] || usage_error "usage: deploy/release.sh API_IMAGE WORKER_IMAGE"
api_image=$1
worker_image=$2

for var in AWS_REGION ECS_CLUSTER ECS_API_SERVICE ECS_WORKER_SERVICE ECS_API_FAMILY \
  ECS_WORKER_FAMILY ECS_MIGRATE_FAMILY MIGRATE_SUBNETS MIGRATE_SECURITY_GROUPS; do
  [[ -n "${!var:-}" ]] || usage_error "$var is not set"
done
for tool in aws jq; do
  command -v "$tool" >/dev/null || usage_error "$tool is not installed"
done
migrate_timeout_min=${MIGRATE_TIMEOUT_MIN:-30}
stable_timeout_min=${STABLE_TIMEOUT_MIN:-30}
[[ "$migrate_timeout_min" =~ ^[1-9][0-9]*$ ]] || usage_error "MIGRATE_TIMEOUT_MIN must be a positive integer"
[[ "$stable_timeout_min" =~ ^[1-9][0-9]*$ ]] || usage_error "STABLE_TIMEOUT_MIN must be a positive integer"
export AWS_REGION AWS_PAGER=""

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# register_revision FAMILY CONTAINER IMAGE: prints the new revision's ARN.
register_revision() {
  local family=$1 container=$2 image=$3 current="$work/$1.json" next="$work/$1.next.json"
  aws ecs describe-task-definition --task-definition "$family" \
    --query taskDefinition --output json >"$current"
  jq -e --arg c "$container" 'any(.containerDefinitions[]; .name == $c)' "$current" >/dev/null ||
    die "task definition family $family has no container named $container"
  # Keep what RegisterTaskDefinition accepts; drop what ECS adds
  # (ARN, revision, status, registeredAt/By, requiresAttributes, compatibilities).
  jq --arg c "$container" --arg image "$image" '
    (.containerDefinitions[] | select(.name == $c) | .image) = $image
    | {family, taskRoleArn, executionRoleArn, networkMode, containerDefinitions, volumes,
       placementConstraints, requiresCompatibilities, cpu, memory, pidMode, ipcMode,
       proxyConfiguration, inferenceAccelerators, ephemeralStorage, runtimePlatform}
    | with_entries(select(.value != null))' "$current" >"$next"
  aws ecs register-task-definition --cli-input-json "file://$next" \
    --query taskDefinition.taskDefinitionArn --output text
}

# wait_for MINUTES COMMAND...: repeats an AWS CLI waiter (which gives up on
# its own after about 10 minutes) until it succeeds or MINUTES have passed.
wait_for() {
  local deadline=$((SECONDS + $1 * 60))
  shift
  until "$@"; do
    ((SECONDS < deadline)) || return 1
    log "still waiting ($(((deadline - SECONDS + 59) / 60)) min left)"
  done
}

# ---------------------------------------------------------------- migration

log "registering $ECS_MIGRATE_FAMILY with $api_image"
migrate_td=$(register_revision "$ECS_MIGRATE_FAMILY" "$MIGRATE_CONTAINER" "$api_image")
log "running $migrate_td"
run_out="$work/run-task.json"
aws ecs run-task --cluster "$ECS_CLUSTER" --launch-type FARGATE \
  --task-definition "$migrate_td" --started-by release \
  --network-configuration "awsvpcConfiguration={subnets=[$MIGRATE_SUBNETS],securityGroups=[$MIGRATE_SECURITY_GROUPS],assignPublicIp=DISABLED}" \
  --output json >"$run_out"
task_arn=$(jq -r '.tasks[0].taskArn // empty' "$run_out")
if [[ -z "$task_arn" ]]; then
  jq -r '.failures[]? | "run-task failure: \(.arn // "-") \(.reason // "") \(.detail // "")"' "$run_out" >&2
  die "the migrate task did not start"
fi
log "waiting for $task_arn to stop (up to $migrate_timeout_min min)"
wait_for "$migrate_timeout_min" \
  aws ecs wait tasks-stopped --cluster "$ECS_CLUSTER" --tasks "$task_arn" ||
  die "the migrate task $task_arn has not stopped after $migrate_timeout_min min (it keeps running; services untouched)"
task_out="$work/migrate-task.json"
aws ecs describe-tasks --cluster "$ECS_CLUSTER" --tasks "$task_arn" --output json >"$task_out"
exit_code=$(jq -r --arg c "$MIGRATE_CONTAINER" \
  '.tasks[0].containers[] | select(.name == $c) | .exitCode // "none"' "$task_out")
if [[ "$exit_code" != "0" ]]; then
  jq -r --arg c "$MIGRATE_CONTAINER" '.tasks[0] | "stopped: \(.stoppedReason // "-"); container: \(.containers[] | select(.name == $c) | .reason // "-")"' \
    "$task_out" >&2
  die "migration failed (exit code $exit_code); services untouched. Logs: aws logs tail <api log group> --log-stream-name-prefix migrate"
fi
log "migration succeeded"

# ---------------------------------------------------------------- services

log "registering $ECS_API_FAMILY with $api_image"
api_td=$(register_revision "$ECS_API_FAMILY" "$API_CONTAINER" "$api_image")
log "registering $ECS_WORKER_FAMILY with $worker_image"
worker_td=$(register_revision "$ECS_WORKER_FAMILY" "$WORKER_CONTAINER" "$worker_image")

log "updating $ECS_API_SERVICE to $api_td"
aws ecs update-service --cluster "$ECS_CLUSTER" --service "$ECS_API_SERVICE" \
  --task-definition "$api_td" --query service.serviceArn --output text >/dev/null
log "updating $ECS_WORKER_SERVICE to $worker_td"
aws ecs update-service --cluster "$ECS_CLUSTER" --service "$ECS_WORKER_SERVICE" \
  --task-definition "$worker_td" --query service.serviceArn --output text >/dev/null

log "waiting for both services to be stable (up to $stable_timeout_min min)"
wait_for "$stable_timeout_min" \
  aws ecs wait services-stable --cluster "$ECS_CLUSTER" --services "$ECS_API_SERVICE" "$ECS_WORKER_SERVICE" ||
  die "services not stable after $stable_timeout_min min; the circuit breaker rolls back a failing deployment on its own"

# Stable can also mean "rolled back": check what completed.
services_out="$work/services.json"
aws ecs describe-services --cluster "$ECS_CLUSTER" \
  --services "$ECS_API_SERVICE" "$ECS_WORKER_SERVICE" --output json >"$services_out"
failed=0
for pair in "$ECS_API_SERVICE=$api_td" "$ECS_WORKER_SERVICE=$worker_td"; do
  service=${pair%%=*}
  want=${pair#*=}
  got="" state=""
  read -r got state < <(jq -r --arg s "$service" '.services[] | select(.serviceName == $s)
    | .deployments[] | select(.status == "PRIMARY") | "\(.taskDefinition) \(.rolloutState // "-")"' "$services_out") || true
  if [[ "$got" == "$want" && "$state" == "COMPLETED" ]]; then
    log "$service: $want COMPLETED"
  else
    log "$service: wanted $want, the primary deployment is ${got:-none} (${state:-?}): rolled back by the circuit breaker"
    failed=1
  fi
done
((failed == 0)) || die "release failed; see the services' events: aws ecs describe-services --cluster $ECS_CLUSTER --services <service> --query 'services[0].events[:10]'"
log "released $api_image and $worker_image"
