# ECS cluster (Container Insights on: it also provides the RunningTaskCount
# metric the worker auto scaling divides by), Fargate task definitions for
# the api, the worker and the one-off migration, and the two services.
#
# Decision: Terraform creates the services, but after that the delivery
# pipeline (.github/workflows/deploy.yml, deploy/release.sh) owns which task
# definition revision runs: it registers a copy of the family's latest
# revision with the new image and updates the service, so the services
# ignore task_definition here. A change Terraform makes to a task definition
# (an environment variable, CPU, memory) becomes the family's latest revision
# and rolls out with the next release, or at once by re-running the release
# of the current tag (deploy/README.md, "Changing configuration").
# Both programs write their metrics as CloudWatch Embedded Metric Format
# lines to stdout (METRICS_EMF=1), which the awslogs driver ships: no agent.

resource "aws_ecs_cluster" "this" {
  name = var.name

  setting {
    name  = "containerInsights"
    value = "enabled"
  }
}

resource "aws_ecs_cluster_capacity_providers" "this" {
  cluster_name       = aws_ecs_cluster.this.name
  capacity_providers = ["FARGATE"]

  default_capacity_provider_strategy {
    capacity_provider = "FARGATE"
    weight            = 1
  }
}

locals {
  api_image    = "${aws_ecr_repository.this["api"].repository_url}:${var.image_tag}"
  worker_image = "${aws_ecr_repository.this["worker"].repository_url}:${var.image_tag}"

  # DATABASE_URL holds no secret: the password comes from PGPASSWORD (libpq),
  # injected from the RDS-managed secret's "password" JSON key.
  database_url = "postgresql://${var.db_username}@${aws_db_instance.this.address}:${aws_db_instance.this.port}/${var.db_name}?sslmode=require"

  common_environment = [
    { name = "DATABASE_URL", value = local.database_url },
    { name = "AWS_REGION", value = data.aws_region.current.name },
    { name = "SQS_QUEUE_URL", value = aws_sqs_queue.orders.url },
    { name = "LOG_LEVEL", value = var.log_level },
  ]

  # api and worker, not migrate: metrics (EMF on stdout, Prometheus on the
  # task-local METRICS_PORT) and order events.
  service_environment = [
    { name = "METRICS_PORT", value = tostring(var.metrics_port) },
    { name = "METRICS_EMF", value = "1" },
    { name = "METRICS_NAMESPACE", value = var.metrics_namespace },
    { name = "EVENT_BUS_NAME", value = aws_cloudwatch_event_bus.orders.name },
    { name = "EVENT_SOURCE", value = local.event_source },
  ]

  api_environment = concat(local.common_environment, local.service_environment, [
    { name = "PORT", value = tostring(var.api_port) },
    { name = "AUTH_ISSUER", value = local.auth_issuer },
    { name = "AUTH_AUDIENCE", value = join(",", local.auth_audience) },
  ])

  # PAYMENT_URL and PAYMENT_AUTH_HEADER only when configured
  payment_url_environment = var.payment_url != "" ? [{ name = "PAYMENT_URL", value = var.payment_url }] : []
  payment_auth_secrets    = local.payment_auth_enabled ? [{ name = "PAYMENT_AUTH_HEADER", valueFrom = local.payment_auth_secret_arn }] : []

  worker_environment = concat(local.common_environment, local.service_environment, [
    { name = "PAYMENT_PROVIDER", value = var.payment_provider },
    { name = "PAYMENT_DELAY_MS", value = tostring(var.payment_delay_ms) },
    { name = "WORKER_MAX_IN_FLIGHT", value = tostring(var.worker_max_in_flight) },
    { name = "WORKER_SHUTDOWN_GRACE_MS", value = tostring(var.worker_shutdown_grace_ms) },
    # the redrive policy's maxReceiveCount (sqs.tf), for the DlqBound metric
    { name = "WORKER_MAX_RECEIVE_COUNT", value = tostring(var.sqs_max_receive_count) },
  ], local.payment_url_environment)

  worker_secrets = concat(local.db_password_secret, local.payment_auth_secrets)

  db_password_secret = [
    { name = "PGPASSWORD", valueFrom = "${local.db_secret_arn}:password::" },
  ]

  api_log_configuration = {
    logDriver = "awslogs"
    options = {
      awslogs-group         = aws_cloudwatch_log_group.ecs["api"].name
      awslogs-region        = data.aws_region.current.name
      awslogs-stream-prefix = "api"
    }
  }
}

# ---------------------------------------------------------------- api

resource "aws_ecs_task_definition" "api" {
  family                   = "${var.name}-api"
  requires_compatibilities = ["FARGATE"]
  network_mode             = "awsvpc"
  cpu                      = var.api_cpu
  memory                   = var.api_memory
  execution_role_arn       = aws_iam_role.execution.arn
  task_role_arn            = aws_iam_role.api_task.arn

  runtime_platform {
    operating_system_family = "LINUX"
    cpu_architecture        = "X86_64"
  }

  container_definitions = jsonencode([
    {
      name                   = "order-api"
      image                  = local.api_image
      essential              = true
      readonlyRootFilesystem = true
      user                   = "10001:10001"
      # Only the API port is mapped; METRICS_PORT stays inside the task
      # (no security group rule or target group reaches it).
      portMappings = [
        { containerPort = var.api_port, protocol = "tcp" },
      ]
      environment = local.api_environment
      secrets     = local.db_password_secret
      healthCheck = {
        command     = ["CMD", "/usr/local/bin/order-api", "healthcheck"]
        interval    = 15
        timeout     = 5
        retries     = 3
        startPeriod = 10
      }
      stopTimeout      = 30
      logConfiguration = local.api_log_configuration
    },
  ])

  lifecycle {
    precondition {
      condition     = var.metrics_port != var.api_port
      error_message = "metrics_port must differ from api_port: /metrics must not be reachable through the ALB."
    }
    precondition {
      condition     = length(local.auth_audience) > 0
      error_message = "auth_audience must list at least one audience when auth_issuer is set (order-api refuses to start without AUTH_AUDIENCE)."
    }
  }
}

resource "aws_ecs_service" "api" {
  name            = "${var.name}-api"
  cluster         = aws_ecs_cluster.this.id
  task_definition = aws_ecs_task_definition.api.arn
  desired_count   = var.api_desired_count
  launch_type     = "FARGATE"

  enable_ecs_managed_tags           = true
  propagate_tags                    = "SERVICE"
  health_check_grace_period_seconds = 30

  deployment_minimum_healthy_percent = 100
  deployment_maximum_percent         = 200

  deployment_circuit_breaker {
    enable   = true
    rollback = true
  }

  network_configuration {
    subnets          = local.private_subnet_ids
    security_groups  = [aws_security_group.api.id]
    assign_public_ip = false
  }

  load_balancer {
    target_group_arn = aws_lb_target_group.api.arn
    container_name   = "order-api"
    container_port   = var.api_port
  }

  # auto scaling owns desired_count and the release pipeline task_definition
  # after creation (see the top of this file)
  lifecycle {
    ignore_changes = [desired_count, task_definition]
  }

  depends_on = [
    aws_lb_listener.http,
    aws_lb_listener.https,
    aws_iam_role_policy.execution,
  ]
}

# ---------------------------------------------------------------- worker

resource "aws_ecs_task_definition" "worker" {
  family                   = "${var.name}-worker"
  requires_compatibilities = ["FARGATE"]
  network_mode             = "awsvpc"
  cpu                      = var.worker_cpu
  memory                   = var.worker_memory
  execution_role_arn       = aws_iam_role.execution.arn
  task_role_arn            = aws_iam_role.worker_task.arn

  runtime_platform {
    operating_system_family = "LINUX"
    cpu_architecture        = "X86_64"
  }

  container_definitions = jsonencode([
    {
      name                   = "order-worker"
      image                  = local.worker_image
      essential              = true
      readonlyRootFilesystem = true
      user                   = "10001:10001"
      environment            = local.worker_environment
      secrets                = local.worker_secrets
      # liveness: the Prometheus endpoint answers 200 (bash /dev/tcp, no curl in the image)
      healthCheck = {
        command = [
          "CMD", "/bin/bash", "-c",
          "exec 3<>/dev/tcp/127.0.0.1/${var.metrics_port} && printf 'GET /metrics HTTP/1.0\\r\\nHost: localhost\\r\\n\\r\\n' >&3 && head -n 1 <&3 | grep -q ' 200 '",
        ]
        interval    = 15
        timeout     = 5
        retries     = 3
        startPeriod = 15
      }
      # SIGTERM, then WORKER_SHUTDOWN_GRACE_MS (25 s) of draining, SIGKILL at 30 s
      stopTimeout = 30
      logConfiguration = {
        logDriver = "awslogs"
        options = {
          awslogs-group         = aws_cloudwatch_log_group.ecs["worker"].name
          awslogs-region        = data.aws_region.current.name
          awslogs-stream-prefix = "worker"
        }
      }
    },
  ])

  lifecycle {
    precondition {
      condition     = var.payment_provider != "http" || var.payment_url != ""
      error_message = "payment_url is required when payment_provider is http."
    }
  }
}

resource "aws_ecs_service" "worker" {
  name            = "${var.name}-worker"
  cluster         = aws_ecs_cluster.this.id
  task_definition = aws_ecs_task_definition.worker.arn
  desired_count   = var.worker_min_count
  launch_type     = "FARGATE"

  enable_ecs_managed_tags = true
  propagate_tags          = "SERVICE"

  deployment_minimum_healthy_percent = 100
  deployment_maximum_percent         = 200

  deployment_circuit_breaker {
    enable   = true
    rollback = true
  }

  network_configuration {
    subnets          = local.private_subnet_ids
    security_groups  = [aws_security_group.worker.id]
    assign_public_ip = false
  }

  lifecycle {
    ignore_changes = [desired_count, task_definition]
  }

  depends_on = [aws_iam_role_policy.execution]
}

# ---------------------------------------------------------------- migration (one-off)

# Same image as the api, command ["migrate"]: applies migrations/*.sql and
# exits. deploy/release.sh runs it (with the new image) before it updates the
# services; by hand, the exact command is the `migrate_command` output.
resource "aws_ecs_task_definition" "migrate" {
  family                   = "${var.name}-migrate"
  requires_compatibilities = ["FARGATE"]
  network_mode             = "awsvpc"
  cpu                      = 256
  memory                   = 512
  execution_role_arn       = aws_iam_role.execution.arn
  task_role_arn            = aws_iam_role.migrate_task.arn

  runtime_platform {
    operating_system_family = "LINUX"
    cpu_architecture        = "X86_64"
  }

  container_definitions = jsonencode([
    {
      name                   = "migrate"
      image                  = local.api_image
      essential              = true
      readonlyRootFilesystem = true
      user                   = "10001:10001"
      command                = ["migrate"]
      environment            = local.common_environment
      secrets                = local.db_password_secret
      logConfiguration = merge(local.api_log_configuration, {
        options = merge(local.api_log_configuration.options, { awslogs-stream-prefix = "migrate" })
      })
    },
  ])
}
