# Least-open security groups:
#   internet (alb_ingress_cidrs) -> ALB :443 (or :80)
#   ALB -> api tasks :api_port
#   api, worker, migrate -> RDS :5432
#   api, worker, migrate -> :443 anywhere (SQS, ECR, CloudWatch Logs, Secrets Manager
#                  through the NAT gateway; DNS to the VPC resolver is not
#                  filtered by security groups)
# The worker and the migrate task accept no inbound traffic at all.

locals {
  alb_listener_port = var.certificate_arn != null ? 443 : 80
}

resource "aws_security_group" "alb" {
  name        = "${var.name}-alb"
  description = "ALB for order-api"
  vpc_id      = local.vpc_id
  tags        = { Name = "${var.name}-alb" }
}

resource "aws_security_group" "api" {
  name        = "${var.name}-api"
  description = "order-api tasks"
  vpc_id      = local.vpc_id
  tags        = { Name = "${var.name}-api" }
}

resource "aws_security_group" "worker" {
  name        = "${var.name}-worker"
  description = "order-worker tasks (no inbound)"
  vpc_id      = local.vpc_id
  tags        = { Name = "${var.name}-worker" }
}

resource "aws_security_group" "migrate" {
  #checkov:skip=CKV2_AWS_5:Attached at run time to the one-off migrate task (aws ecs run-task --network-configuration, see the migrate_command output), not to a service.
  name        = "${var.name}-migrate"
  description = "one-off order-api migrate task (no inbound)"
  vpc_id      = local.vpc_id
  tags        = { Name = "${var.name}-migrate" }
}

resource "aws_security_group" "rds" {
  name        = "${var.name}-rds"
  description = "PostgreSQL, reachable from the api and worker tasks only"
  vpc_id      = local.vpc_id
  tags        = { Name = "${var.name}-rds" }
}

# ---------------------------------------------------------------- ALB

resource "aws_vpc_security_group_ingress_rule" "alb_listener" {
  for_each = toset(var.alb_ingress_cidrs)

  security_group_id = aws_security_group.alb.id
  description       = "Clients to the ALB listener"
  ip_protocol       = "tcp"
  from_port         = local.alb_listener_port
  to_port           = local.alb_listener_port
  cidr_ipv4         = each.value
}

# Port 80 only redirects to HTTPS when a certificate is configured.
resource "aws_vpc_security_group_ingress_rule" "alb_http_redirect" {
  for_each = var.certificate_arn != null ? toset(var.alb_ingress_cidrs) : toset([])

  security_group_id = aws_security_group.alb.id
  description       = "HTTP, redirected to HTTPS"
  ip_protocol       = "tcp"
  from_port         = 80
  to_port           = 80
  cidr_ipv4         = each.value
}

resource "aws_vpc_security_group_egress_rule" "alb_to_api" {
  security_group_id            = aws_security_group.alb.id
  description                  = "ALB to api tasks"
  ip_protocol                  = "tcp"
  from_port                    = var.api_port
  to_port                      = var.api_port
  referenced_security_group_id = aws_security_group.api.id
}

# ---------------------------------------------------------------- api

resource "aws_vpc_security_group_ingress_rule" "api_from_alb" {
  security_group_id            = aws_security_group.api.id
  description                  = "ALB to api tasks"
  ip_protocol                  = "tcp"
  from_port                    = var.api_port
  to_port                      = var.api_port
  referenced_security_group_id = aws_security_group.alb.id
}

# ---------------------------------------------------------------- task egress

resource "aws_vpc_security_group_egress_rule" "tasks_https" {
  for_each = {
    api     = aws_security_group.api.id
    worker  = aws_security_group.worker.id
    migrate = aws_security_group.migrate.id
  }

  security_group_id = each.value
  description       = "HTTPS to AWS APIs (SQS, ECR, CloudWatch Logs, Secrets Manager)"
  ip_protocol       = "tcp"
  from_port         = 443
  to_port           = 443
  cidr_ipv4         = "0.0.0.0/0"
}

resource "aws_vpc_security_group_egress_rule" "tasks_to_rds" {
  for_each = {
    api     = aws_security_group.api.id
    worker  = aws_security_group.worker.id
    migrate = aws_security_group.migrate.id
  }

  security_group_id            = each.value
  description                  = "PostgreSQL"
  ip_protocol                  = "tcp"
  from_port                    = 5432
  to_port                      = 5432
  referenced_security_group_id = aws_security_group.rds.id
}

# ---------------------------------------------------------------- RDS

resource "aws_vpc_security_group_ingress_rule" "rds_from_tasks" {
  for_each = {
    api     = aws_security_group.api.id
    worker  = aws_security_group.worker.id
    migrate = aws_security_group.migrate.id
  }

  security_group_id            = aws_security_group.rds.id
  description                  = "PostgreSQL from ${each.key} tasks"
  ip_protocol                  = "tcp"
  from_port                    = 5432
  to_port                      = 5432
  referenced_security_group_id = each.value
}
