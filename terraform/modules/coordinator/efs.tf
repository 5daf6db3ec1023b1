# The coordinator's state directory (uploaded components), shared by every replica.

resource "aws_efs_file_system" "state" {
  creation_token   = "${var.name}-state"
  encrypted        = true
  kms_key_id       = local.kms_key_arn
  performance_mode = "generalPurpose"
  throughput_mode  = "elastic"

  lifecycle_policy {
    transition_to_ia = "AFTER_30_DAYS"
  }

  tags = merge(var.tags, { Name = "${var.name}-state" })
}

resource "aws_efs_backup_policy" "state" {
  file_system_id = aws_efs_file_system.state.id

  backup_policy {
    status = "ENABLED"
  }
}

resource "aws_efs_mount_target" "state" {
  count = length(var.private_subnet_ids)

  file_system_id  = aws_efs_file_system.state.id
  subnet_id       = var.private_subnet_ids[count.index]
  security_groups = [aws_security_group.efs.id]
}

# Every access goes through this access point: it pins the user to the coordinator's and roots
# it at /nexus, created on first mount with the coordinator as owner.
resource "aws_efs_access_point" "state" {
  file_system_id = aws_efs_file_system.state.id

  posix_user {
    uid = var.container_uid
    gid = var.container_gid
  }

  root_directory {
    path = "/nexus"

    creation_info {
      owner_uid   = var.container_uid
      owner_gid   = var.container_gid
      permissions = "0750"
    }
  }

  tags = merge(var.tags, { Name = "${var.name}-state" })
}

resource "aws_efs_file_system_policy" "state" {
  file_system_id = aws_efs_file_system.state.id

  policy = jsonencode({
    Version = "2012-10-17"
    Statement = [
      {
        Sid       = "CoordinatorThroughAccessPoint"
        Effect    = "Allow"
        Principal = { AWS = aws_iam_role.task.arn }
        Action    = ["elasticfilesystem:ClientMount", "elasticfilesystem:ClientWrite"]
        Resource  = aws_efs_file_system.state.arn
        Condition = {
          StringEquals = { "elasticfilesystem:AccessPointArn" = aws_efs_access_point.state.arn }
          Bool         = { "elasticfilesystem:AccessedViaMountTarget" = "true" }
        }
      },
      {
        Sid       = "DenyUnencryptedTransport"
        Effect    = "Deny"
        Principal = { AWS = "*" }
        Action    = "*"
        Resource  = aws_efs_file_system.state.arn
        Condition = {
          Bool = { "aws:SecureTransport" = "false" }
        }
      },
    ]
  })
}
