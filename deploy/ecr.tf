# One repository per image. Tags are immutable (deploy by a new tag, e.g. the
# git SHA), images are scanned on push and encrypted with the service's KMS
# key (AES256 when create_kms_key is false).

locals {
  ecr_repositories = {
    api    = "${var.name}/order-api"
    worker = "${var.name}/order-worker"
  }
}

resource "aws_ecr_repository" "this" {
  for_each = local.ecr_repositories

  name                 = each.value
  image_tag_mutability = "IMMUTABLE"
  force_delete         = var.ecr_force_delete

  image_scanning_configuration {
    scan_on_push = true
  }

  encryption_configuration {
    encryption_type = var.create_kms_key ? "KMS" : "AES256"
    kms_key         = local.kms_key_arn
  }
}

# Keep the last 30 tagged images and drop untagged ones after a week.
resource "aws_ecr_lifecycle_policy" "this" {
  for_each = aws_ecr_repository.this

  repository = each.value.name
  policy = jsonencode({
    rules = [
      {
        rulePriority = 1
        description  = "Expire untagged images after 7 days"
        selection = {
          tagStatus   = "untagged"
          countType   = "sinceImagePushed"
          countUnit   = "days"
          countNumber = 7
        }
        action = { type = "expire" }
      },
      {
        rulePriority = 2
        description  = "Keep the 30 most recent images"
        selection = {
          tagStatus   = "any"
          countType   = "imageCountMoreThan"
          countNumber = 30
        }
        action = { type = "expire" }
      },
    ]
  })
}
