# Alarms, each to the alarms SNS topic (monitoring.tf) plus var.alarm_actions.
# Every alarm says in its description what it means and what to do first;
# deploy/README.md ("Alarms: an operator's guide") says more.
#
# Decision: the order metrics alarm on the [Service] dimension set the
# programs emit (EMF); missing data is "not breaching" for them, because a
# program that emits nothing is caught by the ECS task counts, the ALB and the
# queue-age alarm, not by these ratios.

# ---------------------------------------------------------------- SQS

resource "aws_cloudwatch_metric_alarm" "dlq_not_empty" {
  alarm_name          = "${var.name}-orders-dlq-not-empty"
  alarm_description   = "Messages in ${aws_sqs_queue.dlq.name}: orders failed ${var.sqs_max_receive_count} times. Inspect them, fix the cause, then redrive (aws sqs start-message-move-task)."
  namespace           = "AWS/SQS"
  metric_name         = "ApproximateNumberOfMessagesVisible"
  dimensions          = { QueueName = aws_sqs_queue.dlq.name }
  statistic           = "Maximum"
  period              = 60
  evaluation_periods  = 1
  comparison_operator = "GreaterThanThreshold"
  threshold           = 0
  treat_missing_data  = "notBreaching"
  alarm_actions       = local.alarm_actions
  ok_actions          = local.alarm_actions
}

resource "aws_cloudwatch_metric_alarm" "notifications_dlq_not_empty" {
  alarm_name          = "${var.name}-notifications-dlq-not-empty"
  alarm_description   = "Messages in ${aws_sqs_queue.notifications_dlq.name}: order events EventBridge could not deliver to the notifications queue, or a consumer failed ${var.sqs_max_receive_count} times. Inspect them, fix the consumer or the queue policy, then redrive or replay from the archive."
  namespace           = "AWS/SQS"
  metric_name         = "ApproximateNumberOfMessagesVisible"
  dimensions          = { QueueName = aws_sqs_queue.notifications_dlq.name }
  statistic           = "Maximum"
  period              = 60
  evaluation_periods  = 1
  comparison_operator = "GreaterThanThreshold"
  threshold           = 0
  treat_missing_data  = "notBreaching"
  alarm_actions       = local.alarm_actions
  ok_actions          = local.alarm_actions
}

resource "aws_cloudwatch_metric_alarm" "queue_age" {
  alarm_name          = "${var.name}-orders-oldest-message-age"
  alarm_description   = "The oldest message in ${aws_sqs_queue.orders.name} is older than ${var.queue_age_alarm_threshold_seconds} s: workers are not keeping up or not running. Check the worker task count and logs, and worker_max_count."
  namespace           = "AWS/SQS"
  metric_name         = "ApproximateAgeOfOldestMessage"
  dimensions          = { QueueName = aws_sqs_queue.orders.name }
  statistic           = "Maximum"
  period              = 60
  evaluation_periods  = 5
  datapoints_to_alarm = 3
  comparison_operator = "GreaterThanThreshold"
  threshold           = var.queue_age_alarm_threshold_seconds
  treat_missing_data  = "notBreaching"
  alarm_actions       = local.alarm_actions
  ok_actions          = local.alarm_actions
}

# ---------------------------------------------------------------- order-api

resource "aws_cloudwatch_metric_alarm" "outbox_age" {
  alarm_name          = "${var.name}-outbox-oldest-unsent-age"
  alarm_description   = "The oldest accepted order not yet sent to SQS is older than ${var.outbox_age_alarm_threshold_seconds} s: SQS is failing or throttling the API's publisher (PublishErrors), or the backlog grows faster than it drains. Orders are safe in PostgreSQL; at OUTBOX_MAX_BACKLOG the API answers 503 overloaded."
  namespace           = var.metrics_namespace
  metric_name         = "OutboxOldestAge"
  dimensions          = { Service = "order-api" }
  statistic           = "Maximum"
  period              = 60
  evaluation_periods  = 3
  datapoints_to_alarm = 2
  comparison_operator = "GreaterThanThreshold"
  threshold           = var.outbox_age_alarm_threshold_seconds
  treat_missing_data  = "notBreaching"
  alarm_actions       = local.alarm_actions
  ok_actions          = local.alarm_actions
}

resource "aws_cloudwatch_metric_alarm" "api_5xx_ratio" {
  alarm_name          = "${var.name}-api-5xx-ratio"
  alarm_description   = "More than ${var.api_5xx_ratio_threshold * 100}% of order-api responses were 5xx over 5 minutes (Http5xx / HttpRequests). Check the api logs (level error), RDS health and recent deployments."
  evaluation_periods  = 2
  datapoints_to_alarm = 2
  comparison_operator = "GreaterThanThreshold"
  threshold           = var.api_5xx_ratio_threshold
  treat_missing_data  = "notBreaching"
  alarm_actions       = local.alarm_actions
  ok_actions          = local.alarm_actions

  metric_query {
    id          = "ratio"
    label       = "5xx ratio"
    expression  = "IF(requests > 0, errors / requests, 0)"
    return_data = true
  }

  metric_query {
    id = "errors"
    metric {
      namespace   = var.metrics_namespace
      metric_name = "Http5xx"
      dimensions  = { Service = "order-api" }
      stat        = "Sum"
      period      = 300
    }
  }

  metric_query {
    id = "requests"
    metric {
      namespace   = var.metrics_namespace
      metric_name = "HttpRequests"
      dimensions  = { Service = "order-api" }
      stat        = "Sum"
      period      = 300
    }
  }
}

resource "aws_cloudwatch_metric_alarm" "api_p99_latency" {
  alarm_name          = "${var.name}-api-p99-latency"
  alarm_description   = "The p99 of order-api's request latency is above ${var.api_p99_latency_threshold_ms} ms over 5 minutes. Check CPU of the api tasks (auto scaling at api_max_count?), RDS load and the outbox backlog."
  namespace           = var.metrics_namespace
  metric_name         = "HttpLatency"
  dimensions          = { Service = "order-api" }
  extended_statistic  = "p99"
  period              = 300
  evaluation_periods  = 3
  datapoints_to_alarm = 2
  comparison_operator = "GreaterThanThreshold"
  threshold           = var.api_p99_latency_threshold_ms
  treat_missing_data  = "notBreaching"
  alarm_actions       = local.alarm_actions
  ok_actions          = local.alarm_actions
}

# ---------------------------------------------------------------- order-worker

resource "aws_cloudwatch_metric_alarm" "payment_failure_ratio" {
  alarm_name          = "${var.name}-payment-failure-ratio"
  alarm_description   = "More than ${var.payment_failure_ratio_threshold * 100}% of payments ended FAILED over 5 minutes (OrdersFailed / (OrdersProcessed + OrdersFailed)). Look at failure_reason of recent orders and PaymentErrors: a provider outage, a rejected credential (PAYMENT_AUTH_HEADER) or a real rise in declines."
  evaluation_periods  = 3
  datapoints_to_alarm = 2
  comparison_operator = "GreaterThanThreshold"
  threshold           = var.payment_failure_ratio_threshold
  treat_missing_data  = "notBreaching"
  alarm_actions       = local.alarm_actions
  ok_actions          = local.alarm_actions

  metric_query {
    id          = "ratio"
    label       = "payment failure ratio"
    expression  = "IF((processed + failed) > 0, failed / (processed + failed), 0)"
    return_data = true
  }

  metric_query {
    id = "processed"
    metric {
      namespace   = var.metrics_namespace
      metric_name = "OrdersProcessed"
      dimensions  = { Service = "order-worker" }
      stat        = "Sum"
      period      = 300
    }
  }

  metric_query {
    id = "failed"
    metric {
      namespace   = var.metrics_namespace
      metric_name = "OrdersFailed"
      dimensions  = { Service = "order-worker" }
      stat        = "Sum"
      period      = 300
    }
  }
}
