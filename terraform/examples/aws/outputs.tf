output "coordinator_url" {
  description = "The coordinator API: `nexus --coordinator <url> …`."
  value       = module.coordinator.url
}

output "alb_dns_name" {
  description = "Point domain_name at this (CNAME, or a Route 53 alias with alb_zone_id)."
  value       = module.coordinator.alb_dns_name
}

output "alb_zone_id" {
  description = "Hosted zone of the load balancer, for a Route 53 alias."
  value       = module.coordinator.alb_zone_id
}

output "node_endpoint" {
  description = "Where edge nodes join (inside the VPC)."
  value       = module.coordinator.node_endpoint
}

output "node_token_secret_arn" {
  description = "The join token, for edge nodes outside this deployment."
  value       = module.coordinator.node_token_secret_arn
}

output "edge_autoscaling_group_name" {
  description = "Autoscaling group of the edge nodes."
  value       = module.edge_fleet.autoscaling_group_name
}

output "lambda_function_arn" {
  description = "ARN of the Lambda target."
  value       = module.lambda_target.function_arn
}

output "lambda_function_url" {
  description = "URL of the Lambda target (SigV4-signed requests only)."
  value       = module.lambda_target.function_url
}
