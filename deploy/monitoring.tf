# What an operator looks at: the alarms SNS topic (alarms.tf publishes to it)
# and one CloudWatch dashboard for the whole order flow.
#
# Decisions:
# - The order metrics come from the programs themselves as Embedded Metric
#   Format lines (namespace var.metrics_namespace, dimension Service =
#   order-api | order-worker; names fixed in the README's metrics table), next
#   to AWS's own SQS, ALB and Container Insights metrics. Metric names are
#   written out literally here and in alarms.tf so a test can check each one
#   against what the programs emit.
# - The topic is encrypted with the stack's KMS key, whose policy lets
#   CloudWatch use it (kms.tf). Without create_kms_key the topic is not
#   encrypted: the AWS managed key alias/aws/sns cannot be used here, because
#   its key policy cannot be changed to admit CloudWatch alarms.

resource "aws_sns_topic" "alarms" {
  name              = "${var.name}-alarms"
  kms_master_key_id = local.kms_key_arn
}

resource "aws_sns_topic_subscription" "alarm_email" {
  count = var.alarm_email != null ? 1 : 0

  topic_arn = aws_sns_topic.alarms.arn
  protocol  = "email"
  endpoint  = var.alarm_email
}

locals {
  alarm_actions = concat([aws_sns_topic.alarms.arn], var.alarm_actions)

  ns     = var.metrics_namespace
  region = data.aws_region.current.name

  api    = ["Service", "order-api"]
  worker = ["Service", "order-worker"]

  dashboard_widgets = [
    {
      title = "Orders per minute"
      stat  = "Sum"
      metrics = [
        concat([local.ns, "OrdersAccepted"], local.api, [{ label = "accepted (api)" }]),
        concat([local.ns, "OrdersRejected"], local.api, [{ label = "rejected (api)" }]),
        concat([local.ns, "OrdersPublished"], local.api, [{ label = "published to SQS (api)" }]),
        concat([local.ns, "OrdersProcessed"], local.worker, [{ label = "processed (worker)" }]),
        concat([local.ns, "OrdersFailed"], local.worker, [{ label = "failed (worker)" }]),
        concat([local.ns, "OrdersCanceled"], local.api, [{ label = "canceled (api)" }]),
      ]
    },
    {
      title = "API latency (ms)"
      stat  = "p99"
      metrics = [
        concat([local.ns, "HttpLatency"], local.api, [{ stat = "p50", label = "p50" }]),
        concat([local.ns, "HttpLatency"], local.api, [{ stat = "p99", label = "p99" }]),
      ]
    },
    {
      title = "Outbox: unsent rows and oldest unsent age (s)"
      stat  = "Maximum"
      metrics = [
        concat([local.ns, "OutboxBacklog"], local.api, [{ label = "backlog (rows)" }]),
        concat([local.ns, "OutboxOldestAge"], local.api, [{ label = "oldest unsent (s)", yAxis = "right" }]),
        concat([local.ns, "Overloaded"], local.api, [{ stat = "Sum", label = "503 overloaded" }]),
      ]
    },
    {
      title = "Worker: throughput per minute and in flight"
      stat  = "Sum"
      metrics = [
        concat([local.ns, "OrdersProcessed"], local.worker, [{ label = "processed / min" }]),
        concat([local.ns, "InFlight"], local.worker, [{ label = "in flight (all tasks)", yAxis = "right" }]),
        concat([local.ns, "DlqBound"], local.worker, [{ label = "DLQ-bound / min" }]),
      ]
    },
    {
      title = "Orders queue: depth and oldest message age (s)"
      stat  = "Maximum"
      metrics = [
        ["AWS/SQS", "ApproximateNumberOfMessagesVisible", "QueueName", aws_sqs_queue.orders.name, { label = "visible" }],
        ["AWS/SQS", "ApproximateNumberOfMessagesNotVisible", "QueueName", aws_sqs_queue.orders.name, { label = "in flight" }],
        ["AWS/SQS", "ApproximateAgeOfOldestMessage", "QueueName", aws_sqs_queue.orders.name, { label = "oldest (s)", yAxis = "right" }],
      ]
    },
    {
      title = "Dead-letter queues"
      stat  = "Maximum"
      metrics = [
        ["AWS/SQS", "ApproximateNumberOfMessagesVisible", "QueueName", aws_sqs_queue.dlq.name, { label = "orders DLQ" }],
        ["AWS/SQS", "ApproximateNumberOfMessagesVisible", "QueueName", aws_sqs_queue.notifications_dlq.name, { label = "notifications DLQ" }],
      ]
    },
    {
      title = "HTTP 5xx per minute"
      stat  = "Sum"
      metrics = [
        ["AWS/ApplicationELB", "HTTPCode_ELB_5XX_Count", "LoadBalancer", aws_lb.api.arn_suffix, { label = "ALB 5xx (no healthy target, timeouts)" }],
        ["AWS/ApplicationELB", "HTTPCode_Target_5XX_Count", "LoadBalancer", aws_lb.api.arn_suffix, { label = "api 5xx seen by the ALB" }],
        concat([local.ns, "Http5xx"], local.api, [{ label = "api 5xx (EMF)" }]),
      ]
    },
    {
      title = "ECS tasks"
      stat  = "Average"
      metrics = [
        ["ECS/ContainerInsights", "RunningTaskCount", "ClusterName", aws_ecs_cluster.this.name, "ServiceName", aws_ecs_service.api.name, { label = "api running" }],
        ["ECS/ContainerInsights", "DesiredTaskCount", "ClusterName", aws_ecs_cluster.this.name, "ServiceName", aws_ecs_service.api.name, { label = "api desired" }],
        ["ECS/ContainerInsights", "RunningTaskCount", "ClusterName", aws_ecs_cluster.this.name, "ServiceName", aws_ecs_service.worker.name, { label = "worker running" }],
        ["ECS/ContainerInsights", "DesiredTaskCount", "ClusterName", aws_ecs_cluster.this.name, "ServiceName", aws_ecs_service.worker.name, { label = "worker desired" }],
      ]
    },
    {
      title = "Errors per minute"
      stat  = "Sum"
      metrics = [
        concat([local.ns, "PublishErrors"], local.api, [{ label = "SQS publish errors (api)" }]),
        concat([local.ns, "EventPublishErrors"], local.api, [{ label = "event publish errors (api)" }]),
        concat([local.ns, "EventPublishErrors"], local.worker, [{ label = "event publish errors (worker)" }]),
        concat([local.ns, "PaymentErrors"], local.worker, [{ label = "payment provider errors" }]),
        concat([local.ns, "ReceiveErrors"], local.worker, [{ label = "SQS receive errors" }]),
        concat([local.ns, "AuthFailures"], local.api, [{ label = "auth failures (401/403)" }]),
        concat([local.ns, "RateLimited"], local.api, [{ label = "rate limited (429)" }]),
      ]
    },
    {
      title = "Payment latency (ms) and events published per minute"
      stat  = "p99"
      metrics = [
        concat([local.ns, "PaymentLatency"], local.worker, [{ stat = "p50", label = "payment p50" }]),
        concat([local.ns, "PaymentLatency"], local.worker, [{ stat = "p99", label = "payment p99" }]),
        concat([local.ns, "EventsPublished"], local.api, [{ stat = "Sum", label = "events (api)", yAxis = "right" }]),
        concat([local.ns, "EventsPublished"], local.worker, [{ stat = "Sum", label = "events (worker)", yAxis = "right" }]),
      ]
    },
  ]
}

resource "aws_cloudwatch_dashboard" "orders" {
  dashboard_name = var.name
  dashboard_body = jsonencode({
    widgets = [
      for i, w in local.dashboard_widgets : {
        type   = "metric"
        x      = (i % 2) * 12
        y      = floor(i / 2) * 6
        width  = 12
        height = 6
        properties = {
          title   = w.title
          region  = local.region
          view    = "timeSeries"
          stacked = false
          period  = 60
          stat    = w.stat
          metrics = w.metrics
        }
      }
    ]
  })
}
