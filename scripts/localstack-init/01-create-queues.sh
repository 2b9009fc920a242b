#!/bin/bash
# LocalStack READY hook (mounted into /etc/localstack/init/ready.d by
# compose.yaml): creates the dead-letter queue, then the orders queue with a
# redrive policy pointing at it. Idempotent (create-queue with the same
# attributes returns the existing queue).
#
# Env (set on the localstack service):
#   ORDERS_QUEUE_NAME       (orders)
#   ORDERS_DLQ_NAME         (orders-dlq)
#   SQS_MAX_RECEIVE_COUNT   (5)   receives before a message moves to the DLQ
#   SQS_VISIBILITY_TIMEOUT  (30)  seconds; > the worker's payment time
set -euo pipefail

QUEUE="${ORDERS_QUEUE_NAME:-orders}"
DLQ="${ORDERS_DLQ_NAME:-orders-dlq}"
MAX_RECEIVE="${SQS_MAX_RECEIVE_COUNT:-5}"
VISIBILITY="${SQS_VISIBILITY_TIMEOUT:-30}"

dlq_url="$(awslocal sqs create-queue --queue-name "$DLQ" \
  --attributes MessageRetentionPeriod=1209600 --query QueueUrl --output text)"
dlq_arn="$(awslocal sqs get-queue-attributes --queue-url "$dlq_url" \
  --attribute-names QueueArn --query Attributes.QueueArn --output text)"

# RedrivePolicy is a JSON document embedded as a string in the attributes map.
attrs='{"VisibilityTimeout":"'"$VISIBILITY"'","ReceiveMessageWaitTimeSeconds":"20",'
attrs+='"RedrivePolicy":"{\"deadLetterTargetArn\":\"'"$dlq_arn"'\",\"maxReceiveCount\":\"'"$MAX_RECEIVE"'\"}"}'
queue_url="$(awslocal sqs create-queue --queue-name "$QUEUE" --attributes "$attrs" \
  --query QueueUrl --output text)"

echo "localstack-init: queue ${queue_url} (DLQ ${dlq_arn}, maxReceiveCount ${MAX_RECEIVE})"
