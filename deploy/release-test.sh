#!/usr/bin/env bash
# Tests deploy/release.sh without AWS: a stub `aws` on PATH answers the ECS
# calls the script makes (behaviour chosen per scenario through STUB_*
# variables) and records them, and each scenario asserts the exit status and
# which calls were or were not made.
#
# Decision: the stub answers with the JSON shapes the AWS CLI returns for
# these calls (describe-task-definition, run-task, describe-tasks,
# describe-services), so the jq in release.sh is exercised for real; only
# the waiters are no-ops.
#
# Usage: deploy/release-test.sh   (needs jq). Last line: "release-test: N passed, M failed"
set -uo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/bin"

cat >"$work/bin/aws" <<'STUB'
#!/usr/bin/env bash
# Stub AWS CLI for release-test.sh.
echo "aws $*" >>"$STUB_DIR/calls"
container_of() {
  case $1 in
    *-api) echo order-api ;;
    *-worker) echo order-worker ;;
    *) echo migrate ;;
  esac
}
case "$1 $2" in
  "ecs describe-task-definition")
    family=$4
    jq -n --arg f "$family" --arg c "$(container_of "$family")" '{
      taskDefinitionArn: "arn:aws:ecs:us-east-1:1:task-definition/\($f):7", family: $f, revision: 7,
      status: "ACTIVE", taskRoleArn: "arn:aws:iam::1:role/task", executionRoleArn: "arn:aws:iam::1:role/exec",
      networkMode: "awsvpc", cpu: "256", memory: "512", requiresCompatibilities: ["FARGATE"],
      runtimePlatform: {cpuArchitecture: "X86_64", operatingSystemFamily: "LINUX"},
      containerDefinitions: [{name: $c, image: "repo:old", environment: [{name: "KEEP", value: "1"}]}],
      volumes: [], placementConstraints: [], requiresAttributes: [{name: "ecs.capability.x"}],
      compatibilities: ["EC2", "FARGATE"], registeredAt: "2026-01-01T00:00:00Z", registeredBy: "arn:me"}' ;;
  "ecs register-task-definition")
    file=${4#file://}
    family=$(jq -r .family "$file")
    cp "$file" "$STUB_DIR/registered-$family.json"
    echo "arn:aws:ecs:us-east-1:1:task-definition/$family:8" ;;
  "ecs run-task")
    if [[ "${STUB_RUN_FAILS:-0}" == 1 ]]; then
      echo '{"tasks": [], "failures": [{"reason": "RESOURCE:ENI"}]}'
    else
      echo '{"tasks": [{"taskArn": "arn:aws:ecs:us-east-1:1:task/c/abc"}], "failures": []}'
    fi ;;
  "ecs wait") exit 0 ;;
  "ecs describe-tasks")
    jq -n --argjson code "${STUB_MIGRATE_EXIT:-0}" \
      '{tasks: [{stoppedReason: "Essential container in task exited", containers: [{name: "migrate", exitCode: $code}]}]}' ;;
  "ecs update-service") echo "arn:aws:ecs:us-east-1:1:service/c/$6" ;;
  "ecs describe-services")
    jq -n --arg w "${STUB_WORKER_PRIMARY:-arn:aws:ecs:us-east-1:1:task-definition/o-worker:8}" '{services: [
      {serviceName: "o-api", deployments: [{status: "PRIMARY", rolloutState: "COMPLETED",
        taskDefinition: "arn:aws:ecs:us-east-1:1:task-definition/o-api:8"}]},
      {serviceName: "o-worker", deployments: [{status: "PRIMARY", rolloutState: "COMPLETED", taskDefinition: $w}]}]}' ;;
  *) echo "stub aws: unexpected call: $*" >&2; exit 9 ;;
esac
STUB
chmod +x "$work/bin/aws"

passed=0
failed=0
check() { # check NAME CONDITION-COMMAND...
  local name=$1
  shift
  if "$@"; then
    passed=$((passed + 1))
  else
    failed=$((failed + 1))
    echo "FAIL: $name" >&2
  fi
}

# run_release [VAR=value...]: runs release.sh in a fresh stub directory; sets rc
run_release() {
  export STUB_DIR="$work/run"
  rm -rf "$STUB_DIR"
  mkdir -p "$STUB_DIR"
  touch "$STUB_DIR/calls"
  env PATH="$work/bin:$PATH" AWS_REGION=us-east-1 ECS_CLUSTER=c \
    ECS_API_SERVICE=o-api ECS_WORKER_SERVICE=o-worker ECS_API_FAMILY=o-api \
    ECS_WORKER_FAMILY=o-worker ECS_MIGRATE_FAMILY=o-migrate \
    MIGRATE_SUBNETS=subnet-a,subnet-b MIGRATE_SECURITY_GROUPS=sg-1 "$@" \
    "$HERE/release.sh" repo/api:sha1 repo/worker:sha1 >"$STUB_DIR/out" 2>&1
  rc=$?
}
called() { grep -q -- "$1" "$STUB_DIR/calls"; }
not_called() { ! called "$1"; }

# A clean release: migrate first, both services updated to the new revisions.
run_release
check "clean release exits 0" test "$rc" -eq 0
check "migrate ran with the new migrate revision" called "run-task --cluster c --launch-type FARGATE --task-definition arn:aws:ecs:us-east-1:1:task-definition/o-migrate:8"
check "network configuration passed" called "subnets=\[subnet-a,subnet-b\],securityGroups=\[sg-1\],assignPublicIp=DISABLED"
check "api updated to its new revision" called "update-service --cluster c --service o-api --task-definition arn:aws:ecs:us-east-1:1:task-definition/o-api:8"
check "worker updated to its new revision" called "update-service --cluster c --service o-worker --task-definition arn:aws:ecs:us-east-1:1:task-definition/o-worker:8"
check "migration before the first service update" test \
  "$(grep -n 'run-task' "$STUB_DIR/calls" | cut -d: -f1)" -lt "$(grep -n 'update-service' "$STUB_DIR/calls" | head -n 1 | cut -d: -f1)"
check "waited for stable services" called "wait services-stable --cluster c --services o-api o-worker"
check "only the image changed in the worker revision" test \
  "$(jq -c '[.containerDefinitions[0].image, .containerDefinitions[0].environment[0].name, .cpu, .taskRoleArn]' "$STUB_DIR/registered-o-worker.json")" \
  = '["repo/worker:sha1","KEEP","256","arn:aws:iam::1:role/task"]'
check "fields ECS adds are not sent back" test \
  "$(jq -c '[has("revision"), has("status"), has("requiresAttributes"), has("compatibilities"), has("registeredAt"), has("taskDefinitionArn")]' "$STUB_DIR/registered-o-api.json")" \
  = '[false,false,false,false,false,false]'

# A failed migration: the services are not touched.
run_release STUB_MIGRATE_EXIT=3
check "failed migration exits 1" test "$rc" -eq 1
check "failed migration updates no service" not_called "update-service"
check "failed migration says so" grep -q "migration failed (exit code 3)" "$STUB_DIR/out"

# The migrate task cannot start.
run_release STUB_RUN_FAILS=1
check "unstartable migrate task exits 1" test "$rc" -eq 1
check "unstartable migrate task updates no service" not_called "update-service"
check "run-task failure reason shown" grep -q "RESOURCE:ENI" "$STUB_DIR/out"

# The circuit breaker rolled the worker back: stable, but a failed release.
run_release STUB_WORKER_PRIMARY=arn:aws:ecs:us-east-1:1:task-definition/o-worker:7
check "rolled-back release exits 1" test "$rc" -eq 1
check "rollback reported" grep -q "o-worker: wanted .*o-worker:8.*rolled back by the circuit breaker" "$STUB_DIR/out"

# Configuration errors exit 2 and call nothing.
run_release ECS_CLUSTER=
check "missing variable exits 2" test "$rc" -eq 2
check "missing variable named" grep -q "ECS_CLUSTER is not set" "$STUB_DIR/out"
check "missing variable calls nothing" test ! -s "$STUB_DIR/calls"

echo "release-test: $passed passed, $failed failed"
((failed == 0))
