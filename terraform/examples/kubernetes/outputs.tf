output "namespace" {
  description = "Namespace of the fleet."
  value       = module.edge_fleet.namespace
}

output "deployment_name" {
  description = "Deployment running the nodes (`kubectl -n <namespace> rollout status deployment/<name>`)."
  value       = module.edge_fleet.deployment_name
}

output "image" {
  description = "Image the nodes run."
  value       = module.edge_fleet.image
}
