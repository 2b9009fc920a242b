# ---------------------------------------------------------------- general

variable "region" {
  description = "AWS region to deploy into."
  type        = string
  default     = "us-east-1"
}

variable "name" {
  description = "Name prefix for every resource (lowercase letters, digits and hyphens)."
  type        = string
  default     = "order-service"

  validation {
    condition     = length(var.name) <= 23 && can(regex("^[a-z]([a-z0-9]|-[a-z0-9])+$", var.name))
    error_message = "name must be 2-23 characters: lowercase letters, digits and single hyphens, starting with a letter and not ending with a hyphen (it is used in RDS identifiers and in ALB and target group names, which are limited to 32 characters)."
  }
}

variable "environment" {
  description = "Environment name, used in tags only."
  type        = string
  default     = "dev"
}

variable "tags" {
  description = "Extra tags added to every resource."
  type        = map(string)
  default     = {}
}

variable "create_kms_key" {
  description = "Create a customer managed KMS key (with rotation) for ECR, CloudWatch Logs, RDS storage, Performance Insights and the RDS master password secret. When false, AWS managed encryption is used everywhere."
  type        = bool
  default     = true
}

# ---------------------------------------------------------------- network

variable "vpc_id" {
  description = "Use this existing VPC instead of creating one. When set, public_subnet_ids and private_subnet_ids must be set too and no network resources are created."
  type        = string
  default     = null
}

variable "public_subnet_ids" {
  description = "Existing public subnets (at least 2 AZs) for the ALB. Only used with vpc_id."
  type        = list(string)
  default     = []
}

variable "private_subnet_ids" {
  description = "Existing private subnets (at least 2 AZs, with a NAT or VPC endpoints for ECR, Logs, SQS, Secrets Manager) for the tasks and RDS. Only used with vpc_id."
  type        = list(string)
  default     = []
}

variable "vpc_cidr" {
  description = "CIDR of the VPC created when vpc_id is not set."
  type        = string
  default     = "10.40.0.0/16"
}

variable "availability_zones" {
  description = "The two AZs for the VPC created here (e.g. [\"us-east-1a\", \"us-east-1b\"]); empty picks the first two available ones."
  type        = list(string)
  default     = []

  validation {
    condition     = length(var.availability_zones) == 0 || length(var.availability_zones) == 2
    error_message = "availability_zones must be empty or list exactly two zones."
  }
}

variable "single_nat_gateway" {
  description = "One NAT gateway shared by both private subnets (cheaper) instead of one per AZ (survives an AZ outage)."
  type        = bool
  default     = true
}

variable "flow_logs_retention_days" {
  description = "Retention of the VPC flow logs (only for the VPC created here)."
  type        = number
  default     = 30
}

# ---------------------------------------------------------------- images

variable "image_tag" {
  description = "Tag of the order-api and order-worker images in ECR to deploy (tags are immutable: use a new tag, e.g. the git SHA, for every release)."
  type        = string
  default     = "0.1.0"
}

variable "ecr_force_delete" {
  description = "Allow terraform destroy to delete the ECR repositories even when they contain images."
  type        = bool
  default     = false
}

# ---------------------------------------------------------------- api

variable "api_port" {
  description = "Port order-api listens on in the container (PORT)."
  type        = number
  default     = 8080
}

variable "api_cpu" {
  description = "Fargate CPU units for an api task (256 = 0.25 vCPU)."
  type        = number
  default     = 256
}

variable "api_memory" {
  description = "Fargate memory (MiB) for an api task."
  type        = number
  default     = 512
}

variable "api_desired_count" {
  description = "Initial number of api tasks (auto scaling adjusts it between api_min_count and api_max_count)."
  type        = number
  default     = 2
}

variable "api_min_count" {
  description = "Minimum number of api tasks."
  type        = number
  default     = 2
}

variable "api_max_count" {
  description = "Maximum number of api tasks."
  type        = number
  default     = 6
}

variable "api_cpu_target" {
  description = "Target average CPU utilization (%) of the api service for auto scaling."
  type        = number
  default     = 60
}

variable "certificate_arn" {
  description = "ACM certificate ARN for the ALB. When set, the ALB listens on HTTPS 443 (and redirects 80 to 443); when null it listens on plain HTTP 80 only (no certificate can be issued without a domain you own)."
  type        = string
  default     = null
}

variable "alb_ingress_cidrs" {
  description = "CIDR blocks allowed to reach the ALB."
  type        = list(string)
  default     = ["0.0.0.0/0"]
}

variable "alb_deletion_protection" {
  description = "Enable deletion protection on the ALB (set false before terraform destroy)."
  type        = bool
  default     = true
}

variable "alb_access_logs_bucket" {
  description = "Existing S3 bucket (with the ELB log delivery bucket policy) for ALB access logs; null disables access logs."
  type        = string
  default     = null
}

# ---------------------------------------------------------------- worker

variable "worker_cpu" {
  description = "Fargate CPU units for a worker task."
  type        = number
  default     = 256
}

variable "worker_memory" {
  description = "Fargate memory (MiB) for a worker task."
  type        = number
  default     = 512
}

variable "worker_min_count" {
  description = "Minimum number of worker tasks (>= 1: the backlog-per-task metric divides by the running task count)."
  type        = number
  default     = 1

  validation {
    condition     = var.worker_min_count >= 1
    error_message = "worker_min_count must be at least 1."
  }
}

variable "worker_max_count" {
  description = "Maximum number of worker tasks."
  type        = number
  default     = 10
}

variable "worker_backlog_per_task_target" {
  description = "Target number of visible SQS messages per running worker task. A good value is (acceptable latency in s) / (processing time per message in s) x concurrency per task; with a 2 s payment and up to 1000 in flight per task, 500 keeps the backlog under about a second per task."
  type        = number
  default     = 500
}

variable "payment_delay_ms" {
  description = "Simulated payment time in the worker (PAYMENT_DELAY_MS)."
  type        = number
  default     = 2000
}

variable "worker_max_in_flight" {
  description = "Maximum number of messages a worker task processes at once (WORKER_MAX_IN_FLIGHT; the program's default, 5000, is sized for 2000 orders/s with a 2 s payment). With the http payment provider this is also the bound on concurrent calls to the provider per task."
  type        = number
  default     = 5000
}

variable "worker_shutdown_grace_ms" {
  description = "How long a worker drains in-flight messages after SIGTERM (WORKER_SHUTDOWN_GRACE_MS); must stay below the 30 s stopTimeout."
  type        = number
  default     = 25000

  validation {
    condition     = var.worker_shutdown_grace_ms < 30000
    error_message = "worker_shutdown_grace_ms must be below the container stopTimeout of 30 s."
  }
}

variable "metrics_port" {
  description = "Port of the Prometheus /metrics endpoint of both programs (METRICS_PORT). Never opened in a security group nor registered with the target group: only the task itself reaches it."
  type        = number
  default     = 9100

  validation {
    condition     = var.metrics_port >= 1 && var.metrics_port <= 65535
    error_message = "metrics_port must be a TCP port (1-65535)."
  }
}

variable "log_level" {
  description = "LOG_LEVEL for both programs."
  type        = string
  default     = "info"
}

# ---------------------------------------------------------------- sqs

variable "sqs_visibility_timeout_seconds" {
  description = "Visibility timeout of the orders queue: longer than the worst-case processing time of one message (payment + DB update + retries)."
  type        = number
  default     = 60
}

variable "sqs_max_receive_count" {
  description = "Receives of a message before SQS moves it to the dead-letter queue."
  type        = number
  default     = 5
}

variable "sqs_message_retention_seconds" {
  description = "Retention of the orders queue (the DLQ keeps messages 14 days)."
  type        = number
  default     = 345600
}

# ---------------------------------------------------------------- rds

variable "db_instance_class" {
  description = "RDS instance class."
  type        = string
  default     = "db.t4g.micro"
}

variable "db_engine_version" {
  description = "PostgreSQL engine version (major 15; a major version lets RDS pick the latest minor)."
  type        = string
  default     = "15"
}

variable "db_allocated_storage" {
  description = "Initial storage (GiB, gp3)."
  type        = number
  default     = 20
}

variable "db_max_allocated_storage" {
  description = "Storage autoscaling limit (GiB)."
  type        = number
  default     = 100
}

variable "db_name" {
  description = "Database name."
  type        = string
  default     = "orders"
}

variable "db_username" {
  description = "Master user name; its password is generated by RDS into Secrets Manager (manage_master_user_password)."
  type        = string
  default     = "orders_admin"
}

variable "db_multi_az" {
  description = "Run RDS Multi-AZ (standby in the second AZ; doubles the instance price)."
  type        = bool
  default     = false
}

variable "db_backup_retention_days" {
  description = "Automated backup retention (days, 1-35)."
  type        = number
  default     = 7
}

variable "db_deletion_protection" {
  description = "Enable RDS deletion protection (set false before terraform destroy)."
  type        = bool
  default     = true
}

variable "db_skip_final_snapshot" {
  description = "Skip the final snapshot when the database is destroyed."
  type        = bool
  default     = false
}

variable "db_performance_insights_enabled" {
  description = "Enable Performance Insights (7 days of retention is free)."
  type        = bool
  default     = false
}

variable "db_monitoring_interval" {
  description = "Enhanced Monitoring interval in seconds (0 disables it; 1, 5, 10, 15, 30, 60)."
  type        = number
  default     = 60
}

# ---------------------------------------------------------------- logs and alarms

variable "log_retention_days" {
  description = "Retention of the ECS CloudWatch log groups (days)."
  type        = number
  default     = 30
}

variable "alarm_actions" {
  description = "Extra ARNs (e.g. an existing SNS topic) notified when an alarm fires or recovers, in addition to the alarms topic created here."
  type        = list(string)
  default     = []
}

variable "alarm_email" {
  description = "E-mail address subscribed to the alarms SNS topic (AWS sends a confirmation mail first); null subscribes nobody."
  type        = string
  default     = null

  validation {
    condition     = var.alarm_email == null || can(regex("^[^@\\s]+@[^@\\s]+\\.[^@\\s]+$", var.alarm_email))
    error_message = "alarm_email must be null or an e-mail address."
  }
}

variable "metrics_namespace" {
  description = "CloudWatch namespace of the programs' Embedded Metric Format metrics (METRICS_NAMESPACE); the dashboard and alarms read it."
  type        = string
  default     = "OrderService"

  validation {
    condition     = can(regex("^[A-Za-z0-9._/#:-]{1,255}$", var.metrics_namespace)) && !startswith(var.metrics_namespace, "AWS/")
    error_message = "metrics_namespace must be 1-255 characters of letters, digits and . _ / # : - and must not start with AWS/."
  }
}

variable "outbox_age_alarm_threshold_seconds" {
  description = "Alarm when the oldest unsent outbox row (OutboxOldestAge) is older than this: orders are accepted but not reaching SQS."
  type        = number
  default     = 60
}

variable "payment_failure_ratio_threshold" {
  description = "Alarm when OrdersFailed / (OrdersProcessed + OrdersFailed) over 5 minutes is above this (0-1). Declines are normal business; pick it above your usual decline rate."
  type        = number
  default     = 0.1

  validation {
    condition     = var.payment_failure_ratio_threshold > 0 && var.payment_failure_ratio_threshold < 1
    error_message = "payment_failure_ratio_threshold must be between 0 and 1 (exclusive)."
  }
}

variable "api_5xx_ratio_threshold" {
  description = "Alarm when Http5xx / HttpRequests of order-api over 5 minutes is above this (0-1)."
  type        = number
  default     = 0.01

  validation {
    condition     = var.api_5xx_ratio_threshold > 0 && var.api_5xx_ratio_threshold < 1
    error_message = "api_5xx_ratio_threshold must be between 0 and 1 (exclusive)."
  }
}

variable "api_p99_latency_threshold_ms" {
  description = "Alarm when the p99 of order-api's HttpLatency over 5 minutes is above this many milliseconds."
  type        = number
  default     = 500
}

variable "queue_age_alarm_threshold_seconds" {
  description = "Alarm when the oldest message in the orders queue is older than this."
  type        = number
  default     = 300
}

# ---------------------------------------------------------------- authentication (issue 11)

variable "auth_issuer" {
  description = "Bring your own OIDC issuer: its exact `iss` (AUTH_ISSUER). When null, a Cognito user pool is created and its issuer is used. Set together with auth_audience."
  type        = string
  default     = null

  validation {
    condition     = var.auth_issuer == null || can(regex("^https://[^\\s]+$", var.auth_issuer))
    error_message = "auth_issuer must be null or an https:// URL."
  }
}

variable "auth_audience" {
  description = "With auth_issuer: the accepted audiences (AUTH_AUDIENCE, matched against `aud`, or `client_id` when the token has no `aud`)."
  type        = list(string)
  default     = []
}

variable "cognito_domain_prefix" {
  description = "Prefix of the Cognito hosted domain (https://<prefix>.auth.<region>.amazoncognito.com, which serves the token endpoint). Must be unique in the region and must not contain aws, amazon or cognito; null uses \"<name>-<account id>\"."
  type        = string
  default     = null

  validation {
    condition     = var.cognito_domain_prefix == null || (can(regex("^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$", var.cognito_domain_prefix)) && !can(regex("aws|amazon|cognito", var.cognito_domain_prefix)))
    error_message = "cognito_domain_prefix must be 1-63 lowercase letters, digits and hyphens, not starting or ending with a hyphen, without aws, amazon or cognito."
  }
}

variable "cognito_deletion_protection" {
  description = "Deletion protection of the Cognito user pool (set false before terraform destroy)."
  type        = bool
  default     = true
}

variable "cognito_access_token_validity_minutes" {
  description = "Lifetime of the access tokens the Cognito app client issues (5-1440 minutes)."
  type        = number
  default     = 60

  validation {
    condition     = var.cognito_access_token_validity_minutes >= 5 && var.cognito_access_token_validity_minutes <= 1440
    error_message = "cognito_access_token_validity_minutes must be between 5 and 1440."
  }
}

variable "cognito_client_scopes" {
  description = "Scopes (of the `orders` resource server) the created client-credentials app client may request: any of read, write, admin."
  type        = list(string)
  default     = ["read", "write"]

  validation {
    condition     = length(var.cognito_client_scopes) > 0 && alltrue([for s in var.cognito_client_scopes : contains(["read", "write", "admin"], s)])
    error_message = "cognito_client_scopes must be a non-empty subset of read, write, admin."
  }
}

# ---------------------------------------------------------------- WAF

variable "waf_rate_limit" {
  description = "WAF rate-based rule: requests one client IP may send in any 5-minute window before WAF blocks it (the API's own per-caller limit, RATE_LIMIT_RPS, is finer; this stops floods before they reach the tasks)."
  type        = number
  default     = 2000

  validation {
    condition     = var.waf_rate_limit >= 100 && var.waf_rate_limit <= 2000000000
    error_message = "waf_rate_limit must be between 100 and 2000000000."
  }
}

variable "waf_log_retention_days" {
  description = "Retention of the WAF log group (aws-waf-logs-<name>)."
  type        = number
  default     = 30
}

# ---------------------------------------------------------------- events and payments (issue 12)

variable "event_archive_retention_days" {
  description = "Days the EventBridge archive keeps order events for replay (0 = forever)."
  type        = number
  default     = 30

  validation {
    condition     = var.event_archive_retention_days >= 0
    error_message = "event_archive_retention_days must be 0 (forever) or more."
  }
}

variable "payment_provider" {
  description = "PAYMENT_PROVIDER of the worker: simulated (PAYMENT_DELAY_MS timer) or http (POST to payment_url)."
  type        = string
  default     = "simulated"

  validation {
    condition     = contains(["simulated", "http"], var.payment_provider)
    error_message = "payment_provider must be simulated or http."
  }
}

variable "payment_url" {
  description = "PAYMENT_URL: the provider's payment endpoint (https://), required when payment_provider is http."
  type        = string
  default     = ""

  validation {
    condition     = var.payment_url == "" || can(regex("^https://[^\\s]+$", var.payment_url))
    error_message = "payment_url must be empty or an https:// URL."
  }
}

variable "payment_auth_header" {
  description = "Value of the Authorization header sent to the payment provider (e.g. \"Bearer sk_live_...\"). Stored in a Secrets Manager secret and injected as PAYMENT_AUTH_HEADER; empty creates no secret. It is kept in the Terraform state: use an encrypted, access-controlled backend."
  type        = string
  default     = ""
  sensitive   = true
}

# ---------------------------------------------------------------- delivery pipeline (issue 13)

variable "github_repository" {
  description = "GitHub repository (owner/name) whose deploy workflow may assume the deploy role, and only for refs/tags/v* runs; null creates no role."
  type        = string
  default     = null

  validation {
    condition     = var.github_repository == null || can(regex("^[A-Za-z0-9-]+/[A-Za-z0-9._-]+$", var.github_repository))
    error_message = "github_repository must be null or owner/name."
  }
}

variable "create_github_oidc_provider" {
  description = "Create the account's IAM OIDC provider for token.actions.githubusercontent.com (there can be only one per account). Set false and github_oidc_provider_arn when it already exists."
  type        = bool
  default     = true
}

variable "github_oidc_provider_arn" {
  description = "ARN of an existing IAM OIDC provider for token.actions.githubusercontent.com (with create_github_oidc_provider = false)."
  type        = string
  default     = null
}
