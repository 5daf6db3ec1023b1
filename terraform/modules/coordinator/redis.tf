# ElastiCache Redis: the event bus and the invocation queue (Redis streams), optionally the edge
# nodes' key-value store. Encrypted at rest and in transit, with an auth token.

resource "aws_elasticache_subnet_group" "this" {
  name        = "${var.name}-redis"
  description = "SirsiNexus coordinator ${var.name}"
  subnet_ids  = var.private_subnet_ids

  tags = var.tags
}

# The invocation queue and the key-value data are not a cache: never evict them.
resource "aws_elasticache_parameter_group" "this" {
  name        = "${var.name}-redis"
  family      = "redis${split(".", var.redis_engine_version)[0]}"
  description = "SirsiNexus coordinator ${var.name}: no eviction"

  parameter {
    name  = "maxmemory-policy"
    value = "noeviction"
  }

  tags = var.tags
}

resource "aws_elasticache_replication_group" "this" {
  replication_group_id = "${var.name}-redis"
  description          = "SirsiNexus coordinator ${var.name}: event bus and invocation queue"

  engine               = "redis"
  engine_version       = var.redis_engine_version
  node_type            = var.redis_node_type
  num_cache_clusters   = var.redis_num_cache_clusters
  port                 = 6379
  parameter_group_name = aws_elasticache_parameter_group.this.name
  subnet_group_name    = aws_elasticache_subnet_group.this.name
  security_group_ids   = [aws_security_group.redis.id]

  at_rest_encryption_enabled = true
  kms_key_id                 = local.kms_key_arn
  transit_encryption_enabled = true
  auth_token                 = random_password.redis.result

  automatic_failover_enabled = var.redis_multi_az
  multi_az_enabled           = var.redis_multi_az

  auto_minor_version_upgrade = true
  snapshot_retention_limit   = var.redis_snapshot_retention_days
  snapshot_window            = "02:00-03:00"
  maintenance_window         = "sun:05:30-sun:06:30"

  dynamic "log_delivery_configuration" {
    for_each = aws_cloudwatch_log_group.redis

    content {
      destination      = log_delivery_configuration.value.name
      destination_type = "cloudwatch-logs"
      log_format       = "json"
      log_type         = log_delivery_configuration.key
    }
  }

  tags = var.tags

  lifecycle {
    precondition {
      condition     = !var.redis_multi_az || var.redis_num_cache_clusters >= 2
      error_message = "redis_multi_az needs redis_num_cache_clusters >= 2."
    }
  }
}
