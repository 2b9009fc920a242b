# Container logs (JSON lines on stdout, awslogs driver). The migrate task
# writes into the api group under the "migrate" stream prefix.

resource "aws_cloudwatch_log_group" "ecs" {
  #checkov:skip=CKV_AWS_338:Retention is a variable (log_retention_days, default 30 days for cost); raise it to 365+ where compliance requires.
  for_each = toset(["api", "worker"])

  name              = "/ecs/${var.name}/${each.key}"
  retention_in_days = var.log_retention_days
  kms_key_id        = local.kms_key_arn
}
