## REQUIRED VARIABLES

variable "coordinator_url" {
  description = "URL the nodes join (`--coordinator`): a coordinator reachable from the pods over plain HTTP/2 (e.g. http://nexus-coordinator.nexus.svc:8080 or the coordinator module's node_endpoint across a peering)."
  type        = string

  validation {
    condition     = can(regex("^https?://", var.coordinator_url))
    error_message = "The coordinator URL must start with http:// or https://."
  }
}

## OPTIONAL VARIABLES

variable "node_token" {
  description = "The cluster's join token (the coordinator's node-token), stored in a Kubernetes secret the module creates. Leave empty and set existing_secret_name to manage the secret yourself (e.g. with External Secrets)."
  type        = string
  default     = ""
  sensitive   = true
}

variable "kv_url" {
  description = "NEXUS_KV: the key-value store shared by the cluster (`redis://…` or `postgres://…`), stored in the module's secret. Empty leaves the runtime's default (memory)."
  type        = string
  default     = ""
  sensitive   = true
}

variable "kv_cache_url" {
  description = "NEXUS_KV_CACHE: a `redis://…` cache in front of a `postgres://…` kv_url, stored in the module's secret."
  type        = string
  default     = ""
  sensitive   = true
}

variable "existing_secret_name" {
  description = "A secret in the namespace holding NEXUS_NODE_TOKEN (and optionally NEXUS_KV, NEXUS_KV_CACHE) instead of the module's. Empty creates one from node_token, kv_url and kv_cache_url."
  type        = string
  default     = ""
}

variable "name" {
  description = "Name of the deployment, its service account, secret, autoscaler and disruption budget."
  type        = string
  default     = "nexus-edge"

  validation {
    condition     = can(regex("^[a-z0-9]([-a-z0-9]{0,51}[a-z0-9])?$", var.name))
    error_message = "The name must be a DNS label of at most 53 characters."
  }
}

variable "namespace" {
  description = "Namespace of the fleet (never `default`)."
  type        = string
  default     = "nexus-edge"

  validation {
    condition     = var.namespace != "default" && can(regex("^[a-z0-9]([-a-z0-9]*[a-z0-9])?$", var.namespace))
    error_message = "The namespace must be a DNS label other than default."
  }
}

variable "create_namespace" {
  description = "Create the namespace, labelled to enforce the restricted Pod Security Standard."
  type        = bool
  default     = true
}

variable "image_repository" {
  description = "Image repository of nexus-edge (the binary is the image's entrypoint)."
  type        = string
  default     = "ghcr.io/sirsinexus/nexus-edge"
}

variable "image_version" {
  description = "Image tag (a release version) or digest (sha256:…) of nexus-edge."
  type        = string
  default     = "0.1.0"

  validation {
    condition     = var.image_version != "" && var.image_version != "latest"
    error_message = "Pin the image to a release version or digest, not latest."
  }
}

variable "node_region" {
  description = "The nodes' region (`--region`), matched against functions' placement and the coordinator's NEXUS_REGION."
  type        = string
  default     = "default"
}

variable "node_labels" {
  description = "Labels of every node (`--label key=value`), used by placement policies."
  type        = map(string)
  default     = {}
}

variable "instance_slots" {
  description = "Invocations a node runs at once (`--instance-slots`). 0 keeps the runtime's default."
  type        = number
  default     = 0
}

variable "log_level" {
  description = "The node's tracing filter (RUST_LOG)."
  type        = string
  default     = "info"
}

variable "min_replicas" {
  description = "Minimum number of nodes (pods)."
  type        = number
  default     = 2
}

variable "max_replicas" {
  description = "Maximum number of nodes (pods)."
  type        = number
  default     = 10
}

variable "target_cpu_utilization" {
  description = "Average CPU utilization (percent of the request) the autoscaler keeps the pods at."
  type        = number
  default     = 70
}

variable "max_unavailable" {
  description = "Pods a voluntary disruption (drain, upgrade) may take down at once."
  type        = number
  default     = 1
}

variable "cpu_request" {
  description = "CPU request of a node (the autoscaler's 100%)."
  type        = string
  default     = "500m"
}

variable "memory_request" {
  description = "Memory request of a node."
  type        = string
  default     = "512Mi"
}

variable "cpu_limit" {
  description = "CPU limit of a node."
  type        = string
  default     = "2"
}

variable "memory_limit" {
  description = "Memory limit of a node. WebAssembly instances live in it: size it for instance_slots times the functions' memory."
  type        = string
  default     = "2Gi"
}

variable "state_size_limit" {
  description = "Size limit of the node's state directory (an emptyDir: components, compiled code, SQLite databases)."
  type        = string
  default     = "5Gi"
}

variable "run_as_user" {
  description = "Numeric, non-root user (and group) the node runs as."
  type        = number
  default     = 65532

  validation {
    condition     = var.run_as_user > 0
    error_message = "The node must not run as root (uid 0)."
  }
}

variable "node_selector" {
  description = "Node selector of the pods."
  type        = map(string)
  default     = {}
}

variable "tolerations" {
  description = "Tolerations of the pods."
  type = list(object({
    key      = string
    operator = optional(string, "Equal")
    value    = optional(string)
    effect   = optional(string)
  }))
  default = []
}

variable "ingress_from" {
  description = "Who may reach the pods on 7070 (the coordinator's invocations, Prometheus): CIDR blocks and namespace labels. Null leaves the pods without a NetworkPolicy."
  type = object({
    cidr_blocks      = optional(list(string), [])
    namespace_labels = optional(list(map(string)), [])
  })
  default = null
}

variable "labels" {
  description = "Labels added to every object the module creates."
  type        = map(string)
  default     = {}
}
