## REQUIRED VARIABLES

variable "coordinator_url" {
  description = "Coordinator the nodes join, reachable from the pods over plain HTTP/2 (e.g. the AWS example's node_endpoint across a peering, or an in-cluster service)."
  type        = string
}

variable "node_token" {
  description = "The cluster's join token (the coordinator's node-token, or the AWS example's node_token_secret_arn value)."
  type        = string
  sensitive   = true
}

## OPTIONAL VARIABLES

variable "kubeconfig_path" {
  description = "Kubeconfig of the target cluster."
  type        = string
  default     = "~/.kube/config"
}

variable "kubeconfig_context" {
  description = "Context in the kubeconfig. Empty uses the current one."
  type        = string
  default     = ""
}

variable "node_region" {
  description = "Region of these nodes (--region)."
  type        = string
  default     = "on-prem"
}

variable "image_version" {
  description = "nexus-edge image tag or digest."
  type        = string
  default     = "0.1.0"
}

variable "kv_url" {
  description = "Shared key-value store (NEXUS_KV: redis://… or postgres://…). Empty keeps each node's in-memory store."
  type        = string
  default     = ""
  sensitive   = true
}

variable "coordinator_cidr_blocks" {
  description = "Addresses the coordinator dials the nodes from; with monitoring_namespace_labels they form the pods' NetworkPolicy."
  type        = list(string)
  default     = []
}

variable "monitoring_namespace_labels" {
  description = "Labels of the namespace Prometheus scrapes from."
  type        = map(string)
  default     = { "kubernetes.io/metadata.name" = "monitoring" }
}
