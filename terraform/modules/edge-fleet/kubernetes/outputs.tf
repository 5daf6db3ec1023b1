output "namespace" {
  description = "Namespace of the fleet."
  value       = local.namespace
}

output "deployment_name" {
  description = "Name of the nexus-edge deployment."
  value       = kubernetes_deployment_v1.this.metadata[0].name
}

output "secret_name" {
  description = "Secret the nodes read NEXUS_NODE_TOKEN (and NEXUS_KV, NEXUS_KV_CACHE) from."
  value       = local.secret_name
}

output "service_account_name" {
  description = "Service account of the pods (no API token mounted)."
  value       = kubernetes_service_account_v1.this.metadata[0].name
}

output "image" {
  description = "Image the pods run."
  value       = local.image
}

output "listen_port" {
  description = "Port the pods listen on (gRPC from the coordinator, /healthz, /readyz, /metrics)."
  value       = local.listen_port
}
