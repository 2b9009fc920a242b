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
  description = "Task definition (family:revision) of the one-off migration."
  value       = "${aws_ecs_task_definition.migrate.family}:${aws_ecs_task_definition.migrate.revision}"
}

output "migrate_command" {
  description = "Runs `order-api migrate` once as a Fargate task in the private subnets."
  value = join(" ", [
    "aws ecs run-task",
    "--region ${data.aws_region.current.name}",
    "--cluster ${aws_ecs_cluster.this.name}",
    "--launch-type FARGATE",
    "--task-definition ${aws_ecs_task_definition.migrate.family}:${aws_ecs_task_definition.migrate.revision}",
    "--started-by migrate",
    "--network-configuration '${local.migrate_network_configuration}'",
    "--query 'tasks[0].taskArn' --output text",
  ])
}
