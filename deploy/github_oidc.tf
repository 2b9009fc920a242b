# The delivery pipeline's identity: GitHub Actions exchanges its OIDC token
# for this role (no long-lived AWS keys anywhere), only when var.github_repository
# is set.
#
# Decisions:
# - Trust: the token must be for sts.amazonaws.com and its subject must be
#   repo:<github_repository>:ref:refs/tags/v*, i.e. a run on a version tag of
#   that repository: a tag push, or a manual dispatch started on such a tag
#   (re-deploying or rolling back to a release). Runs on branches, pull
#   requests and forks get nothing. Protect who may create v* tags with a
#   repository ruleset. (A job that names a GitHub environment gets the
#   subject repo:<repo>:environment:<name> instead, which this role does not
#   trust: deploy.yml names none.)
# - Permissions, all scoped to this stack: push to the two ECR repositories;
#   register task definition revisions (no resource-level permission exists
#   for that, nor for describing them); update and describe the two services;
#   run the migrate task definition family, in this cluster only, and describe
#   tasks in this cluster; pass only the execution and task roles, and only
#   to ECS tasks. Nothing else: no Terraform state, no IAM, no deletes.
# - The account's OIDC provider for token.actions.githubusercontent.com is
#   created here unless one exists already (there can be only one per URL in
#   an account): then set create_github_oidc_provider = false and
#   github_oidc_provider_arn.

locals {
  create_deploy_role = var.github_repository != null
  github_oidc_url    = "token.actions.githubusercontent.com"

  github_oidc_provider_arn = (var.create_github_oidc_provider
    ? one(aws_iam_openid_connect_provider.github[*].arn)
  : var.github_oidc_provider_arn)

  task_definition_arn_prefix = "arn:${data.aws_partition.current.partition}:ecs:${data.aws_region.current.name}:${data.aws_caller_identity.current.account_id}:task-definition"
}

# AWS validates GitHub's certificate against its own trusted CAs, so no
# thumbprint is configured (optional since provider 5.81).
resource "aws_iam_openid_connect_provider" "github" {
  count = local.create_deploy_role && var.create_github_oidc_provider ? 1 : 0

  url            = "https://${local.github_oidc_url}"
  client_id_list = ["sts.amazonaws.com"]
}

data "aws_iam_policy_document" "github_deploy_assume" {
  count = local.create_deploy_role ? 1 : 0

  statement {
    actions = ["sts:AssumeRoleWithWebIdentity"]
    principals {
      type        = "Federated"
      identifiers = [local.github_oidc_provider_arn]
    }
    condition {
      test     = "StringEquals"
      variable = "${local.github_oidc_url}:aud"
      values   = ["sts.amazonaws.com"]
    }
    condition {
      test     = "StringLike"
      variable = "${local.github_oidc_url}:sub"
      values   = ["repo:${var.github_repository}:ref:refs/tags/v*"]
    }
  }

  lifecycle {
    precondition {
      condition     = var.create_github_oidc_provider || var.github_oidc_provider_arn != null
      error_message = "Set github_oidc_provider_arn when create_github_oidc_provider is false."
    }
  }
}

resource "aws_iam_role" "github_deploy" {
  count = local.create_deploy_role ? 1 : 0

  name                 = "${var.name}-github-deploy"
  description          = "GitHub Actions deploy of ${var.github_repository} (v* tags): ECR push, ECS task definitions and service updates, migrate task"
  assume_role_policy   = data.aws_iam_policy_document.github_deploy_assume[0].json
  max_session_duration = 3600
}

data "aws_iam_policy_document" "github_deploy" {
  count = local.create_deploy_role ? 1 : 0

  statement {
    sid = "EcrAuthToken"
    # GetAuthorizationToken has no resource-level permissions.
    actions   = ["ecr:GetAuthorizationToken"]
    resources = ["*"]
  }

  statement {
    sid = "EcrPush"
    actions = [
      "ecr:BatchCheckLayerAvailability",
      "ecr:InitiateLayerUpload",
      "ecr:UploadLayerPart",
      "ecr:CompleteLayerUpload",
      "ecr:PutImage",
      "ecr:BatchGetImage",
      "ecr:DescribeImages",
    ]
    resources = [for repo in aws_ecr_repository.this : repo.arn]
  }

  statement {
    sid = "TaskDefinitions"
    # Neither action supports resource-level permissions.
    actions   = ["ecs:RegisterTaskDefinition", "ecs:DescribeTaskDefinition"]
    resources = ["*"]
  }

  statement {
    sid       = "Services"
    actions   = ["ecs:UpdateService", "ecs:DescribeServices"]
    resources = [aws_ecs_service.api.id, aws_ecs_service.worker.id]
  }

  statement {
    sid       = "RunMigrate"
    actions   = ["ecs:RunTask"]
    resources = ["${local.task_definition_arn_prefix}/${aws_ecs_task_definition.migrate.family}:*"]
    condition {
      test     = "ArnEquals"
      variable = "ecs:cluster"
      values   = [aws_ecs_cluster.this.arn]
    }
  }

  statement {
    sid       = "DescribeTasks"
    actions   = ["ecs:DescribeTasks"]
    resources = ["arn:${data.aws_partition.current.partition}:ecs:${data.aws_region.current.name}:${data.aws_caller_identity.current.account_id}:task/${aws_ecs_cluster.this.name}/*"]
  }

  statement {
    sid     = "PassTaskRoles"
    actions = ["iam:PassRole"]
    resources = [
      aws_iam_role.execution.arn,
      aws_iam_role.api_task.arn,
      aws_iam_role.worker_task.arn,
      aws_iam_role.migrate_task.arn,
    ]
    condition {
      test     = "StringEquals"
      variable = "iam:PassedToService"
      values   = ["ecs-tasks.amazonaws.com"]
    }
  }
}

resource "aws_iam_role_policy" "github_deploy" {
  count = local.create_deploy_role ? 1 : 0

  name   = "deploy"
  role   = aws_iam_role.github_deploy[0].id
  policy = data.aws_iam_policy_document.github_deploy[0].json
}
