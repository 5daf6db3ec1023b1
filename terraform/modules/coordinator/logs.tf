resource "aws_cloudwatch_log_group" "coordinator" {
  name              = "/ecs/${var.name}"
  retention_in_days = var.log_retention_in_days
  kms_key_id        = local.kms_key_arn

  tags = var.tags

  lifecycle {
    precondition {
      condition     = var.create_kms_key || var.kms_key_arn != ""
      error_message = "Set kms_key_arn when create_kms_key is false."
    }
  }
}

resource "aws_cloudwatch_log_group" "exec" {
  name              = "/ecs/${var.name}/exec"
  retention_in_days = var.log_retention_in_days
  kms_key_id        = local.kms_key_arn

  tags = var.tags
}

# Created before the cluster so the exported PostgreSQL log has a retention and the module key
# (RDS would otherwise create it unencrypted and kept forever).
resource "aws_cloudwatch_log_group" "database" {
  name              = "/aws/rds/cluster/${var.name}-db/postgresql"
  retention_in_days = var.log_retention_in_days
  kms_key_id        = local.kms_key_arn

  tags = var.tags
}

resource "aws_cloudwatch_log_group" "redis" {
  for_each = toset(["slow-log", "engine-log"])

  name              = "/elasticache/${var.name}/${each.key}"
  retention_in_days = var.log_retention_in_days
  kms_key_id        = local.kms_key_arn

  tags = var.tags
}
