# Aurora PostgreSQL (Serverless v2): the coordinator's record. Encrypted with the module key,
# reachable only from the coordinator tasks, TLS enforced, backed up, logged and monitored.

resource "aws_db_subnet_group" "this" {
  name        = "${var.name}-db"
  description = "SirsiNexus coordinator ${var.name}"
  subnet_ids  = var.private_subnet_ids

  tags = var.tags
}

resource "aws_rds_cluster_parameter_group" "this" {
  name        = "${var.name}-db"
  family      = "aurora-postgresql${split(".", var.db_engine_version)[0]}"
  description = "SirsiNexus coordinator ${var.name}: TLS only, DDL and slow statements logged"

  parameter {
    name  = "rds.force_ssl"
    value = "1"
  }

  parameter {
    name  = "log_statement"
    value = "ddl"
  }

  parameter {
    name  = "log_min_duration_statement"
    value = "1000"
  }

  tags = var.tags
}

resource "aws_rds_cluster" "this" {
  #checkov:skip=CKV2_AWS_8:Backups are Aurora's own (continuous, var.db_backup_retention_days of point-in-time recovery, a final snapshot on delete); AWS Backup plans and vaults are an account-level policy this module does not own.
  cluster_identifier = "${var.name}-db"
  engine             = "aurora-postgresql"
  engine_mode        = "provisioned"
  engine_version     = var.db_engine_version

  database_name   = var.db_name
  master_username = var.db_username
  master_password = random_password.database.result
  port            = 5432

  db_subnet_group_name            = aws_db_subnet_group.this.name
  vpc_security_group_ids          = [aws_security_group.database.id]
  db_cluster_parameter_group_name = aws_rds_cluster_parameter_group.this.name

  storage_encrypted                   = true
  kms_key_id                          = local.kms_key_arn
  iam_database_authentication_enabled = true
  enabled_cloudwatch_logs_exports     = ["postgresql"]

  backup_retention_period      = var.db_backup_retention_days
  preferred_backup_window      = "03:00-04:00"
  preferred_maintenance_window = "sun:04:30-sun:05:30"
  copy_tags_to_snapshot        = true
  deletion_protection          = var.deletion_protection
  skip_final_snapshot          = false
  final_snapshot_identifier    = "${var.name}-db-final"

  serverlessv2_scaling_configuration {
    min_capacity = var.db_min_capacity
    max_capacity = var.db_max_capacity
  }

  tags = var.tags

  depends_on = [aws_cloudwatch_log_group.database]
}

resource "aws_rds_cluster_instance" "this" {
  count = var.db_instance_count

  identifier         = "${var.name}-db-${count.index}"
  cluster_identifier = aws_rds_cluster.this.id
  instance_class     = "db.serverless"
  engine             = aws_rds_cluster.this.engine
  engine_version     = aws_rds_cluster.this.engine_version

  publicly_accessible        = false
  auto_minor_version_upgrade = true
  ca_cert_identifier         = "rds-ca-rsa2048-g1"
  copy_tags_to_snapshot      = true

  monitoring_interval = 30
  monitoring_role_arn = aws_iam_role.rds_monitoring.arn

  performance_insights_enabled          = true
  performance_insights_kms_key_id       = local.kms_key_arn
  performance_insights_retention_period = 7

  tags = var.tags
}
