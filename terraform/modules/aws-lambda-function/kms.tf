# One customer managed key per function unless the caller brings one: it encrypts the log group,
# the environment variables and the dead-letter queue.
resource "aws_kms_key" "this" {
  count = var.create_kms_key ? 1 : 0

  description             = "Lambda function ${var.name}: logs, environment and dead-letter queue"
  enable_key_rotation     = true
  deletion_window_in_days = 30

  # A key policy, not an identity policy: its Resource "*" means this key. The account
  # administers the key through IAM (as with the default key policy; the function's role gets
  # its narrower grant in iam.tf) and CloudWatch Logs may use it for this log group only.
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
          ArnEquals = { "kms:EncryptionContext:aws:logs:arn" = local.log_group_arn }
        }
      },
    ]
  })

  tags = var.tags
}

resource "aws_kms_alias" "this" {
  count = var.create_kms_key ? 1 : 0

  name          = "alias/lambda/${var.name}"
  target_key_id = aws_kms_key.this[0].key_id
}

locals {
  kms_key_arn = var.create_kms_key ? aws_kms_key.this[0].arn : var.kms_key_arn
}
