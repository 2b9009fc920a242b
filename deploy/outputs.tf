locals {
  api_url = "${var.certificate_arn != null ? "https" : "http"}://${aws_lb.api.dns_name}"

  migrate_network_configuration = "awsvpcConfiguration={subnets=[${join(",", local.private_subnet_ids)}],securityGroups=[${aws_security_group.migrate.id}],assignPublicIp=DISABLED}"
}

output "api_url" {
  description = "Base URL of the API (ALB DNS name; point a CNAME/alias of your domain at it when using HTTPS)."
  value       = local.api_url
}

output "queue_url" {
  description = "URL of the orders queue (SQS_QUEUE_URL)."
  value       = aws_sqs_queue.orders.url
}

output "dlq_url" {
  description = "URL of the orders dead-letter queue."
  value       = aws_sqs_queue.dlq.url
}

output "ecr_api_repository_url" {
  description = "Push order-api images here (tag = var.image_tag)."
  value       = aws_ecr_repository.this["api"].repository_url
}

output "ecr_worker_repository_url" {
  description = "Push order-worker images here (tag = var.image_tag)."
  value       = aws_ecr_repository.this["worker"].repository_url
}

output "cluster_name" {
  description = "ECS cluster name."
  value       = aws_ecs_cluster.this.name
}

output "api_service_name" {
  description = "ECS service of the API."
  value       = aws_ecs_service.api.name
}

output "worker_service_name" {
  description = "ECS service of the workers."
  value       = aws_ecs_service.worker.name
}

output "db_endpoint" {
  description = "RDS endpoint (host:port)."
  value       = aws_db_instance.this.endpoint
}

output "db_master_secret_arn" {
  description = "Secrets Manager secret holding the generated master password (JSON keys username, password)."
  value       = local.db_secret_arn
}

output "migrate_task_definition" {
  description = "Task definition family of the one-off migration (releases add revisions to it; the family name alone means its latest ACTIVE revision)."
  value       = aws_ecs_task_definition.migrate.family
}

output "migrate_command" {
  description = "Runs `order-api migrate` once as a Fargate task in the private subnets, with the migrate family's latest revision (the last release's image)."
  value = join(" ", [
    "aws ecs run-task",
    "--region ${data.aws_region.current.name}",
    "--cluster ${aws_ecs_cluster.this.name}",
    "--launch-type FARGATE",
    "--task-definition ${aws_ecs_task_definition.migrate.family}",
    "--started-by migrate",
    "--network-configuration '${local.migrate_network_configuration}'",
    "--query 'tasks[0].taskArn' --output text",
  ])
}

# ---------------------------------------------------------------- authentication

output "auth_issuer" {
  description = "AUTH_ISSUER given to order-api (the Cognito user pool's issuer, or var.auth_issuer)."
  value       = local.auth_issuer
}

output "auth_audience" {
  description = "AUTH_AUDIENCE given to order-api (the Cognito app client id, or var.auth_audience)."
  value       = join(",", local.auth_audience)
}

output "cognito_token_endpoint" {
  description = "OAuth 2.0 token endpoint of the Cognito domain (client-credentials grant); null with your own issuer."
  value       = local.cognito_token_endpoint
}

output "cognito_client_secret_arn" {
  description = "Secrets Manager secret with the Cognito app client's client_id, client_secret, token_endpoint and scope (the secret itself is never an output)."
  value       = one(aws_secretsmanager_secret.cognito_client[*].arn)
}

output "waf_web_acl_arn" {
  description = "WAF web ACL attached to the ALB."
  value       = aws_wafv2_web_acl.api.arn
}

# ---------------------------------------------------------------- events

output "event_bus_name" {
  description = "EventBridge bus the API publishes order events to (EVENT_BUS_NAME)."
  value       = aws_cloudwatch_event_bus.orders.name
}

output "event_archive_name" {
  description = "Archive of the bus (replay with aws events start-replay)."
  value       = aws_cloudwatch_event_archive.orders.name
}

output "notifications_queue_url" {
  description = "SQS queue receiving every order.* event (the example subscriber)."
  value       = aws_sqs_queue.notifications.url
}

output "notifications_dlq_url" {
  description = "Dead-letter queue of the notifications queue and of the rule's target."
  value       = aws_sqs_queue.notifications_dlq.url
}

# ---------------------------------------------------------------- monitoring

output "alarms_topic_arn" {
  description = "SNS topic every alarm notifies (subscribe more endpoints to it)."
  value       = aws_sns_topic.alarms.arn
}

output "dashboard_url" {
  description = "The CloudWatch dashboard."
  value       = "https://${data.aws_region.current.name}.console.aws.amazon.com/cloudwatch/home?region=${data.aws_region.current.name}#dashboards/dashboard/${aws_cloudwatch_dashboard.orders.dashboard_name}"
}

# ---------------------------------------------------------------- delivery pipeline

output "github_deploy_role_arn" {
  description = "Role the deploy workflow assumes through GitHub's OIDC provider (null without github_repository)."
  value       = one(aws_iam_role.github_deploy[*].arn)
}

output "github_actions_variables" {
  description = "Repository variables (not secrets: no value here is confidential) the deploy workflow and deploy/release.sh read; set them with `gh variable set`."
  value = {
    AWS_REGION              = data.aws_region.current.name
    AWS_DEPLOY_ROLE_ARN     = one(aws_iam_role.github_deploy[*].arn)
    ECR_API_REPOSITORY      = aws_ecr_repository.this["api"].repository_url
    ECR_WORKER_REPOSITORY   = aws_ecr_repository.this["worker"].repository_url
    ECS_CLUSTER             = aws_ecs_cluster.this.name
    ECS_API_SERVICE         = aws_ecs_service.api.name
    ECS_WORKER_SERVICE      = aws_ecs_service.worker.name
    ECS_API_FAMILY          = aws_ecs_task_definition.api.family
    ECS_WORKER_FAMILY       = aws_ecs_task_definition.worker.family
    ECS_MIGRATE_FAMILY      = aws_ecs_task_definition.migrate.family
    MIGRATE_SUBNETS         = join(",", local.private_subnet_ids)
    MIGRATE_SECURITY_GROUPS = aws_security_group.migrate.id
  }
}
