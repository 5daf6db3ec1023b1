output "autoscaling_group_name" {
  description = "Name of the autoscaling group."
  value       = aws_autoscaling_group.this.name
}

output "autoscaling_group_arn" {
  description = "ARN of the autoscaling group."
  value       = aws_autoscaling_group.this.arn
}

output "launch_template_id" {
  description = "ID of the launch template."
  value       = aws_launch_template.this.id
}

output "security_group_id" {
  description = "Security group of the nodes, e.g. to let them reach a key-value store (coordinator module: redis_client_security_group_ids)."
  value       = aws_security_group.this.id
}

output "role_name" {
  description = "Name of the nodes' instance role, to attach more permissions."
  value       = aws_iam_role.this.name
}

output "role_arn" {
  description = "ARN of the nodes' instance role."
  value       = aws_iam_role.this.arn
}

output "listen_port" {
  description = "Port the nodes listen on (gRPC from the coordinator, /healthz, /readyz, /metrics)."
  value       = local.listen_port
}
