# Order events on Amazon EventBridge: the bus both programs publish to
# (EVENT_BUS_NAME), an archive for replay, and one subscriber to show the
# shape of a consumer: a rule that sends every `order.*` event from
# `order-service` to a `notifications` SQS queue.
#
# Decisions:
# - A custom bus, not the default one: PutEvents is granted on this bus only
#   (iam.tf), and other teams subscribe with their own rules on it.
# - The notifications queue has its own DLQ for consumers that fail
#   (redrive), and the same DLQ is the rule target's dead-letter queue for
#   events EventBridge could not deliver after its retries; both queue
#   policies let events.amazonaws.com send only for this rule (aws:SourceArn).
# - Delivery is at least once: consumers deduplicate by the event's `id`.

locals {
  event_source = "order-service"
}

resource "aws_cloudwatch_event_bus" "orders" {
  name = "${var.name}-orders"
}

resource "aws_cloudwatch_event_archive" "orders" {
  name             = "${var.name}-orders"
  description      = "Every event order-service puts on ${aws_cloudwatch_event_bus.orders.name}, for replay"
  event_source_arn = aws_cloudwatch_event_bus.orders.arn
  retention_days   = var.event_archive_retention_days
  event_pattern    = jsonencode({ source = [local.event_source] })
}

resource "aws_cloudwatch_event_rule" "notifications" {
  name           = "${var.name}-order-notifications"
  description    = "order.* events from ${local.event_source} to the notifications queue"
  event_bus_name = aws_cloudwatch_event_bus.orders.name
  event_pattern = jsonencode({
    source        = [local.event_source]
    "detail-type" = [{ prefix = "order." }]
  })
}

resource "aws_cloudwatch_event_target" "notifications" {
  rule           = aws_cloudwatch_event_rule.notifications.name
  event_bus_name = aws_cloudwatch_event_bus.orders.name
  target_id      = "notifications-queue"
  arn            = aws_sqs_queue.notifications.arn

  retry_policy {
    maximum_event_age_in_seconds = 86400
    maximum_retry_attempts       = 185
  }

  dead_letter_config {
    arn = aws_sqs_queue.notifications_dlq.arn
  }
}

# ---------------------------------------------------------------- notifications queue

resource "aws_sqs_queue" "notifications_dlq" {
  name                      = "${var.name}-notifications-dlq"
  message_retention_seconds = 1209600 # 14 days, the maximum
  sqs_managed_sse_enabled   = true
}

resource "aws_sqs_queue" "notifications" {
  name                       = "${var.name}-notifications"
  visibility_timeout_seconds = 30
  message_retention_seconds  = 345600 # 4 days
  receive_wait_time_seconds  = 20
  sqs_managed_sse_enabled    = true

  redrive_policy = jsonencode({
    deadLetterTargetArn = aws_sqs_queue.notifications_dlq.arn
    maxReceiveCount     = var.sqs_max_receive_count
  })
}

resource "aws_sqs_queue_redrive_allow_policy" "notifications_dlq" {
  queue_url = aws_sqs_queue.notifications_dlq.id

  redrive_allow_policy = jsonencode({
    redrivePermission = "byQueue"
    sourceQueueArns   = [aws_sqs_queue.notifications.arn]
  })
}

data "aws_iam_policy_document" "notifications_queue" {
  for_each = {
    notifications     = aws_sqs_queue.notifications.arn
    notifications_dlq = aws_sqs_queue.notifications_dlq.arn
  }

  statement {
    sid       = "EventBridgeRuleOnly"
    actions   = ["sqs:SendMessage"]
    resources = [each.value]
    principals {
      type        = "Service"
      identifiers = ["events.amazonaws.com"]
    }
    condition {
      test     = "ArnEquals"
      variable = "aws:SourceArn"
      values   = [aws_cloudwatch_event_rule.notifications.arn]
    }
  }

  statement {
    sid       = "DenyInsecureTransport"
    effect    = "Deny"
    actions   = ["sqs:*"]
    resources = [each.value]
    principals {
      type        = "*"
      identifiers = ["*"]
    }
    condition {
      test     = "Bool"
      variable = "aws:SecureTransport"
      values   = ["false"]
    }
  }
}

resource "aws_sqs_queue_policy" "notifications" {
  for_each = {
    notifications     = aws_sqs_queue.notifications.id
    notifications_dlq = aws_sqs_queue.notifications_dlq.id
  }

  queue_url = each.value
  policy    = data.aws_iam_policy_document.notifications_queue[each.key].json
}
