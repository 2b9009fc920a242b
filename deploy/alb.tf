# Internet-facing ALB in the public subnets in front of the api tasks (AWS
# WAF web ACL attached in waf.tf). The target group is the api port only:
# the tasks' metrics port (METRICS_PORT) is never a target.
#
# With var.certificate_arn: HTTPS on 443 (TLS 1.2+ policy) and 80 redirects
# to 443. Without it: plain HTTP on 80. The reason for that fallback: an ACM
# certificate needs a domain name you control (DNS validation), which this
# stack cannot create for you; set certificate_arn for anything beyond a
# first test deployment.

resource "aws_lb" "api" {
  #checkov:skip=CKV2_AWS_76:The web ACL has AWSManagedRulesKnownBadInputsRuleSet (the Log4j rules) but deliberately not AWSManagedRulesAnonymousIpList, which the check also demands: it blocks hosting-provider IPs, where the API's machine callers (client-credentials tokens) run.
  #checkov:skip=CKV2_AWS_20:80 redirects to 443 whenever certificate_arn is set (aws_lb_listener.http_redirect); without a certificate there is no HTTPS to redirect to.
  name               = "${var.name}-api"
  load_balancer_type = "application"
  internal           = false
  subnets            = local.public_subnet_ids
  security_groups    = [aws_security_group.alb.id]

  drop_invalid_header_fields = true
  enable_deletion_protection = var.alb_deletion_protection
  idle_timeout               = 60

  dynamic "access_logs" {
    for_each = var.alb_access_logs_bucket != null ? [var.alb_access_logs_bucket] : []
    content {
      bucket  = access_logs.value
      prefix  = var.name
      enabled = true
    }
  }
}

resource "aws_lb_target_group" "api" {
  #checkov:skip=CKV_AWS_378:TLS terminates at the ALB; ALB to task traffic stays inside the VPC's private subnets and order-api serves plain HTTP.
  name                 = "${var.name}-api"
  port                 = var.api_port
  protocol             = "HTTP"
  target_type          = "ip"
  vpc_id               = local.vpc_id
  deregistration_delay = 30

  health_check {
    enabled             = true
    path                = "/healthz"
    port                = "traffic-port"
    protocol            = "HTTP"
    matcher             = "200"
    interval            = 15
    timeout             = 5
    healthy_threshold   = 2
    unhealthy_threshold = 3
  }
}

resource "aws_lb_listener" "https" {
  count = var.certificate_arn != null ? 1 : 0

  load_balancer_arn = aws_lb.api.arn
  port              = 443
  protocol          = "HTTPS"
  ssl_policy        = "ELBSecurityPolicy-TLS13-1-2-2021-06"
  certificate_arn   = var.certificate_arn

  default_action {
    type             = "forward"
    target_group_arn = aws_lb_target_group.api.arn
  }
}

resource "aws_lb_listener" "http_redirect" {
  count = var.certificate_arn != null ? 1 : 0

  load_balancer_arn = aws_lb.api.arn
  port              = 80
  protocol          = "HTTP"

  default_action {
    type = "redirect"
    redirect {
      port        = "443"
      protocol    = "HTTPS"
      status_code = "HTTP_301"
    }
  }
}

resource "aws_lb_listener" "http" {
  #checkov:skip=CKV_AWS_103:Same listener: plain HTTP only without a certificate, so there is no TLS policy to set.
  count = var.certificate_arn == null ? 1 : 0

  load_balancer_arn = aws_lb.api.arn
  port              = 80
  protocol          = "HTTP"

  default_action {
    type             = "forward"
    target_group_arn = aws_lb_target_group.api.arn
  }
}
