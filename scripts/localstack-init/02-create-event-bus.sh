#!/bin/bash
# LocalStack READY hook (mounted into /etc/localstack/init/ready.d by
# compose.yaml, run after 01-create-queues.sh): the local EventBridge wiring
# the programs publish to: the bus `orders`, the rule `order-events` matching every
# event whose source is `order-service`, and its target, the SQS queue
# `order-events`, with the queue policy that lets EventBridge (that rule only)
# send to it, as AWS requires. Idempotent: the bus is created only when
# missing; put-rule, put-targets and set-queue-attributes overwrite.
#
# Env (set on the localstack service):
#   EVENT_BUS_NAME    (orders)
#   EVENT_RULE_NAME   (order-events)
#   EVENT_QUEUE_NAME  (order-events)
#   EVENT_SOURCE      (order-service)
set -euo pipefail

BUS="${EVENT_BUS_NAME:-orders}"
RULE="${EVENT_RULE_NAME:-order-events}"
QUEUE="${EVENT_QUEUE_NAME:-order-events}"
SOURCE="${EVENT_SOURCE:-order-service}"

queue_url="$(awslocal sqs create-queue --queue-name "$QUEUE" --query QueueUrl --output text)"
queue_arn="$(awslocal sqs get-queue-attributes --queue-url "$queue_url" \
  --attribute-names QueueArn --query Attributes.QueueArn --output text)"

if ! awslocal events describe-event-bus --name "$BUS" >/dev/null 2>&1; then
  awslocal events create-event-bus --name "$BUS" >/dev/null
fi
rule_arn="$(awslocal events put-rule --name "$RULE" --event-bus-name "$BUS" \
  --event-pattern "{\"source\":[\"$SOURCE\"]}" --state ENABLED --query RuleArn --output text)"

# The queue policy is a JSON document embedded as a string in the attributes map.
policy='{"Version":"2012-10-17","Statement":[{"Sid":"events-to-queue","Effect":"Allow",'
policy+='"Principal":{"Service":"events.amazonaws.com"},"Action":"sqs:SendMessage",'
policy+='"Resource":"'"$queue_arn"'","Condition":{"ArnEquals":{"aws:SourceArn":"'"$rule_arn"'"}}}]}'
attrs="$(printf '{"Policy":%s}' "$(printf '%s' "$policy" | sed 's/"/\\"/g; s/^/"/; s/$/"/')")"
awslocal sqs set-queue-attributes --queue-url "$queue_url" --attributes "$attrs"

failed="$(awslocal events put-targets --rule "$RULE" --event-bus-name "$BUS" \
  --targets "Id=$QUEUE,Arn=$queue_arn" --query FailedEntryCount --output text)"
if [[ "$failed" != 0 ]]; then
  echo "localstack-init: put-targets on rule ${RULE} failed for ${failed} target(s)" >&2
  exit 1
fi

echo "localstack-init: event bus ${BUS}, rule ${RULE} (source ${SOURCE}) -> ${queue_arn}"
