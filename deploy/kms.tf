# One customer managed key for the service's data at rest: ECR images,
# CloudWatch log groups (also WAF's), RDS storage and Performance Insights,
# the Secrets Manager secrets (RDS master password, Cognito client, payment
# provider) and the alarms SNS topic. Optional (var.create_kms_key); without
# it AWS managed keys are used (and the alarms topic is not encrypted, see
# monitoring.tf).

locals {
  kms_key_arn = var.create_kms_key ? aws_kms_key.this[0].arn : null
}

data "aws_iam_policy_document" "kms" {
  #checkov:skip=CKV_AWS_111:This is a KMS key policy: "*" as resource means "this key" and the account-root statement is the standard default key policy.
  #checkov:skip=CKV_AWS_356:Key policy: resources = "*" refers to the key the policy is attached to only.
  #checkov:skip=CKV_AWS_109:Key policy: account administrators (IAM-controlled) must be able to manage the key, as in AWS's default key policy.
  # Account administrators manage the key; services used through IAM
  # principals of this account (ECR, RDS, Secrets Manager) get access through
  # grants created on the principal's behalf.
  statement {
    sid       = "AccountAdministration"
    actions   = ["kms:*"]
    resources = ["*"]
    principals {
      type        = "AWS"
      identifiers = ["arn:${data.aws_partition.current.partition}:iam::${data.aws_caller_identity.current.account_id}:root"]
    }
  }

  # CloudWatch Logs encrypts log groups of this account and region only.
  statement {
    sid = "CloudWatchLogs"
    actions = [
      "kms:Encrypt*",
      "kms:Decrypt*",
      "kms:ReEncrypt*",
      "kms:GenerateDataKey*",
      "kms:Describe*",
    ]
    resources = ["*"]
    principals {
      type        = "Service"
      identifiers = ["logs.${data.aws_region.current.name}.amazonaws.com"]
    }
    condition {
      test     = "ArnLike"
      variable = "kms:EncryptionContext:aws:logs:arn"
      values   = ["arn:${data.aws_partition.current.partition}:logs:${data.aws_region.current.name}:${data.aws_caller_identity.current.account_id}:log-group:*"]
    }
  }

  # CloudWatch alarms publish to the KMS-encrypted alarms SNS topic.
  statement {
    sid       = "CloudWatchAlarmsToSns"
    actions   = ["kms:Decrypt", "kms:GenerateDataKey*"]
    resources = ["*"]
    principals {
      type        = "Service"
      identifiers = ["cloudwatch.amazonaws.com"]
    }
  }
}

resource "aws_kms_key" "this" {
  count = var.create_kms_key ? 1 : 0

  description             = "${var.name}: ECR, CloudWatch Logs, RDS, Secrets Manager secrets, alarms SNS topic"
  enable_key_rotation     = true
  deletion_window_in_days = 30
  policy                  = data.aws_iam_policy_document.kms.json
}

resource "aws_kms_alias" "this" {
  count = var.create_kms_key ? 1 : 0

  name          = "alias/${var.name}"
  target_key_id = aws_kms_key.this[0].key_id
}
