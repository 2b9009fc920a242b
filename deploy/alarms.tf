# Alarms: anything in the DLQ (an order failed maxReceiveCount times) and a
# growing queue age (workers stuck, crashing or under-scaled).

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
  alarm_actions       = var.alarm_actions
  ok_actions          = var.alarm_actions
}

resource "aws_cloudwatch_metric_alarm" "queue_age" {
  alarm_name          = "${var.name}-orders-oldest-message-age"
  alarm_description   = "The oldest message in ${aws_sqs_queue.orders.name} is older than ${var.queue_age_alarm_threshold_seconds} s: workers are not keeping up or not running."
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
  alarm_actions       = var.alarm_actions
  ok_actions          = var.alarm_actions
}
