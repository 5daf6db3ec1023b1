output "url" {
  description = "HTTPS URL of the coordinator API (https://<domain_name> or the load balancer's name): `nexus --coordinator <url>`."
  value       = local.url
}

output "alb_dns_name" {
  description = "DNS name of the API load balancer, for a CNAME or alias record."
  value       = aws_lb.api.dns_name
}

output "alb_zone_id" {
  description = "Hosted zone of the API load balancer, for a Route 53 alias record."
  value       = aws_lb.api.zone_id
}

output "node_endpoint" {
  description = "URL edge nodes join with (`nexus-edge --coordinator <node_endpoint>`): the internal network load balancer, plain HTTP/2. Null when node_endpoint_enabled is false."
  value       = var.node_endpoint_enabled ? "http://${aws_lb.nodes[0].dns_name}:${local.container_port}" : null
}

output "node_endpoint_security_group_id" {
  description = "Security group of the node endpoint: allow edge nodes in on 8080 (edge-fleet/aws does so given it). Null when node_endpoint_enabled is false."
  value       = one(aws_security_group.nodes_endpoint[*].id)
}

output "task_security_group_id" {
  description = "Security group of the coordinator tasks: edge nodes must accept 7070 from it (the coordinator dials them)."
  value       = aws_security_group.tasks.id
}

output "database_security_group_id" {
  description = "Security group of the database."
  value       = aws_security_group.database.id
}

output "redis_security_group_id" {
  description = "Security group of the Redis replication group."
  value       = aws_security_group.redis.id
}

output "database_endpoint" {
  description = "Writer endpoint of the Aurora cluster."
  value       = aws_rds_cluster.this.endpoint
}

output "redis_endpoint" {
  description = "Primary endpoint of the Redis replication group (TLS on 6379, auth token required)."
  value       = aws_elasticache_replication_group.this.primary_endpoint_address
}

output "database_url_secret_arn" {
  description = "Secrets Manager secret holding DATABASE_URL (postgres://…?sslmode=require)."
  value       = aws_secretsmanager_secret.this["database-url"].arn
}

output "redis_url_secret_arn" {
  description = "Secrets Manager secret holding the rediss:// URL (auth token included); edge nodes may use it as NEXUS_KV."
  value       = aws_secretsmanager_secret.this["redis-url"].arn
}

output "node_token_secret_arn" {
  description = "Secrets Manager secret holding the cluster's join token (NEXUS_NODE_TOKEN of the edge nodes)."
  value       = aws_secretsmanager_secret.this["node-token"].arn
}

output "signing_key_secret_arn" {
  description = "Secrets Manager secret holding the access-token signing key."
  value       = aws_secretsmanager_secret.this["signing-key"].arn
}

output "kms_key_arn" {
  description = "KMS key encrypting the secrets, logs, database, cache and file system; readers of the secrets need kms:Decrypt on it."
  value       = local.kms_key_arn
}

output "ecs_cluster_name" {
  description = "Name of the ECS cluster."
  value       = aws_ecs_cluster.this.name
}

output "ecs_service_name" {
  description = "Name of the coordinator's ECS service."
  value       = aws_ecs_service.coordinator.name
}

output "task_role_name" {
  description = "Name of the coordinator's task role, to attach more permissions."
  value       = aws_iam_role.task.name
}

output "task_role_arn" {
  description = "ARN of the coordinator's task role."
  value       = aws_iam_role.task.arn
}

output "execution_role_name" {
  description = "Name of the task execution role (e.g. to let it pull from a private ECR repository)."
  value       = aws_iam_role.execution.name
}

output "log_group_name" {
  description = "CloudWatch log group of the coordinator containers."
  value       = aws_cloudwatch_log_group.coordinator.name
}

output "efs_file_system_id" {
  description = "EFS file system holding the state directory."
  value       = aws_efs_file_system.state.id
}
