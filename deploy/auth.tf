# Who may call the API: the issuer and audience order-api checks bearer
# tokens against (AUTH_ISSUER, AUTH_AUDIENCE).
#
# Decision: a team that already has an OIDC issuer sets auth_issuer and
# auth_audience and nothing here is created (every resource has count 0).
# Otherwise an Amazon Cognito user pool is the issuer: a resource server
# `orders` with the scopes read, write and admin (the API's AUTH_SCOPE_PREFIX
# `orders/`), a hosted domain that serves the OAuth 2.0 token endpoint, and one
# confidential app client for the client-credentials grant (machine callers).
# Its access tokens carry no `aud`, only `client_id`, which is why
# AUTH_AUDIENCE is the client id. The client secret goes to Secrets Manager
# only; no output prints it (it is in the Terraform state, as every generated
# secret is: keep the state in an encrypted, access-controlled backend).

locals {
  create_cognito = var.auth_issuer == null

  cognito_domain_prefix = coalesce(var.cognito_domain_prefix, "${var.name}-${data.aws_caller_identity.current.account_id}")

  auth_issuer = (local.create_cognito
    ? "https://cognito-idp.${data.aws_region.current.name}.amazonaws.com/${aws_cognito_user_pool.this[0].id}"
  : var.auth_issuer)
  auth_audience = local.create_cognito ? [aws_cognito_user_pool_client.orders[0].id] : var.auth_audience

  cognito_token_endpoint = (local.create_cognito
    ? "https://${local.cognito_domain_prefix}.auth.${data.aws_region.current.name}.amazoncognito.com/oauth2/token"
  : null)
}

resource "aws_cognito_user_pool" "this" {
  count = local.create_cognito ? 1 : 0

  name                = var.name
  deletion_protection = var.cognito_deletion_protection ? "ACTIVE" : "INACTIVE"

  # Only machine clients (client credentials) use this pool; nobody signs up.
  admin_create_user_config {
    allow_admin_create_user_only = true
  }

  password_policy {
    minimum_length                   = 14
    require_lowercase                = true
    require_uppercase                = true
    require_numbers                  = true
    require_symbols                  = true
    temporary_password_validity_days = 1
  }

  lifecycle {
    precondition {
      condition     = length(var.auth_audience) == 0
      error_message = "auth_audience is only used with auth_issuer; set both (your own issuer) or neither (Cognito)."
    }
  }
}

resource "aws_cognito_resource_server" "orders" {
  count = local.create_cognito ? 1 : 0

  user_pool_id = aws_cognito_user_pool.this[0].id
  identifier   = "orders"
  name         = "order-api"

  scope {
    scope_name        = "read"
    scope_description = "Read the caller's orders (GET)"
  }

  scope {
    scope_name        = "write"
    scope_description = "Create and cancel the caller's orders"
  }

  scope {
    scope_name        = "admin"
    scope_description = "Act on every customer's orders"
  }
}

resource "aws_cognito_user_pool_domain" "this" {
  count = local.create_cognito ? 1 : 0

  domain       = local.cognito_domain_prefix
  user_pool_id = aws_cognito_user_pool.this[0].id
}

resource "aws_cognito_user_pool_client" "orders" {
  count = local.create_cognito ? 1 : 0

  name         = "${var.name}-client-credentials"
  user_pool_id = aws_cognito_user_pool.this[0].id

  generate_secret                      = true
  allowed_oauth_flows_user_pool_client = true
  allowed_oauth_flows                  = ["client_credentials"]
  allowed_oauth_scopes                 = [for s in var.cognito_client_scopes : "${aws_cognito_resource_server.orders[0].identifier}/${s}"]
  supported_identity_providers         = ["COGNITO"]
  # no user sign-in flows: the client-credentials grant needs none
  explicit_auth_flows = ["ALLOW_REFRESH_TOKEN_AUTH"]

  access_token_validity = var.cognito_access_token_validity_minutes
  token_validity_units {
    access_token = "minutes"
  }
  enable_token_revocation       = true
  prevent_user_existence_errors = "ENABLED"

  # the scopes must exist before a client may be granted them
  depends_on = [aws_cognito_resource_server.orders]
}

# client_id, client_secret and token_endpoint in one JSON secret, so a caller
# needs exactly one secretsmanager:GetSecretValue to get a token.
resource "aws_secretsmanager_secret" "cognito_client" {
  #checkov:skip=CKV2_AWS_57:Secrets Manager cannot rotate a Cognito app client secret by itself (it needs a rotation Lambda that creates a new client); rotate by replacing the client (terraform apply -replace=aws_cognito_user_pool_client.orders[0]).
  count = local.create_cognito ? 1 : 0

  name_prefix             = "${var.name}/cognito-client-"
  description             = "${var.name}: client id and secret of the Cognito client-credentials app client, and the token endpoint"
  kms_key_id              = local.kms_key_arn
  recovery_window_in_days = 7
}

resource "aws_secretsmanager_secret_version" "cognito_client" {
  count = local.create_cognito ? 1 : 0

  secret_id = aws_secretsmanager_secret.cognito_client[0].id
  secret_string = jsonencode({
    client_id      = aws_cognito_user_pool_client.orders[0].id
    client_secret  = aws_cognito_user_pool_client.orders[0].client_secret
    token_endpoint = local.cognito_token_endpoint
    scope          = join(" ", aws_cognito_user_pool_client.orders[0].allowed_oauth_scopes)
  })
}
