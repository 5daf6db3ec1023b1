# One customer managed key for everything the coordinator stores: logs, secrets, the database,
# its Performance Insights, the cache, the file system and ECS Exec sessions.
resource "aws_kms_key" "this" {
  count = var.create_kms_key ? 1 : 0

  description             = "SirsiNexus coordinator ${var.name}"
  enable_key_rotation     = true
  deletion_window_in_days = 30

  # A key policy, not an identity policy: its Resource "*" means this key. The account
  # administers it through IAM (as the default key policy does; the roles in iam.tf get narrow
  # grants) and CloudWatch Logs may use it for this coordinator's log groups only. RDS,
  # ElastiCache, EFS and Secrets Manager use it through grants made on the caller's behalf.
  policy = jsonencode({
    Version = "2012-10-17"
    Statement = [
      {
        Sid       = "AccountAdministration"
        Effect    = "Allow"
        Principal = { AWS = "arn:${local.partition}:iam::${local.account_id}:root" }
        Action    = "kms:*"
        Resource  = "*"
      },
      {
        Sid       = "CloudWatchLogs"
        Effect    = "Allow"
        Principal = { Service = "logs.${local.region}.amazonaws.com" }
        Action = [
          "kms:Encrypt",
          "kms:Decrypt",
          "kms:ReEncrypt*",
          "kms:GenerateDataKey*",
          "kms:Describe*",
        ]
        Resource = "*"
        Condition = {
          ArnLike = {
            "kms:EncryptionContext:aws:logs:arn" = [
              "${local.log_group_arn_prefix}:/ecs/${var.name}",
              "${local.log_group_arn_prefix}:/ecs/${var.name}/*",
              "${local.log_group_arn_prefix}:/aws/rds/cluster/${var.name}-db/*",
              "${local.log_group_arn_prefix}:/elasticache/${var.name}/*",
              "${local.log_group_arn_prefix}:aws-waf-logs-${var.name}",
            ]
          }
        }
      },
    ]
  })

  tags = var.tags
}

resource "aws_kms_alias" "this" {
  count = var.create_kms_key ? 1 : 0

  name          = "alias/nexus/${var.name}"
  target_key_id = aws_kms_key.this[0].key_id
}

locals {
  kms_key_arn = var.create_kms_key ? aws_kms_key.this[0].arn : var.kms_key_arn
}
