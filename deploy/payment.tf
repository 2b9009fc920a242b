# The payment provider's credential: the whole Authorization header value,
# kept in a Secrets Manager secret and injected by ECS into the worker
# container as PAYMENT_AUTH_HEADER (the execution role may read this secret
# and the database secret, nothing else). No secret exists when
# payment_auth_header is empty (the simulated provider needs none).
#
# Decision: the value is a sensitive variable, so `terraform plan` never
# prints it and the variable stays the one source of truth (a new value is
# a new secret version; restart the worker service to pick it up). It is
# stored in the Terraform state like every secret Terraform writes: keep the
# state in an encrypted, access-controlled backend.

locals {
  # Only whether a header is configured leaves the sensitive value (count
  # cannot depend on a sensitive value).
  payment_auth_enabled    = nonsensitive(var.payment_auth_header != "")
  payment_auth_secret_arn = local.payment_auth_enabled ? aws_secretsmanager_secret.payment_auth[0].arn : null
}

resource "aws_secretsmanager_secret" "payment_auth" {
  #checkov:skip=CKV2_AWS_57:The credential is issued by the payment provider; Secrets Manager cannot rotate it without a provider-specific Lambda. Rotate it at the provider, then put-secret-value and restart the worker service.
  count = local.payment_auth_enabled ? 1 : 0

  name_prefix             = "${var.name}/payment-auth-header-"
  description             = "${var.name}: Authorization header value for the payment provider (PAYMENT_AUTH_HEADER of order-worker)"
  kms_key_id              = local.kms_key_arn
  recovery_window_in_days = 7
}

resource "aws_secretsmanager_secret_version" "payment_auth" {
  count = local.payment_auth_enabled ? 1 : 0

  secret_id     = aws_secretsmanager_secret.payment_auth[0].id
  secret_string = var.payment_auth_header
}
