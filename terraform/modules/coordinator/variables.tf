## REQUIRED VARIABLES

variable "name" {
  description = "Name prefix of every resource (ECS cluster and service, load balancers, database, cache, secrets). Lowercase, at most 20 characters so derived names stay within AWS limits."
  type        = string

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{0,19}$", var.name))
    error_message = "The name must start with a lowercase letter and have at most 20 lowercase letters, digits or hyphens."
  }
}

variable "vpc_id" {
  description = "VPC the coordinator runs in."
  type        = string
}

variable "private_subnet_ids" {
  description = "Private subnets (at least two, in different availability zones) for the tasks, the database, the cache, the file system and the internal node endpoint. The tasks pull their image and reach AWS APIs through them, so they need a NAT gateway or VPC endpoints."
  type        = list(string)

  validation {
    condition     = length(var.private_subnet_ids) >= 2
    error_message = "Give at least two private subnets in different availability zones."
  }
}

variable "alb_subnet_ids" {
  description = "Subnets of the API load balancer: public subnets for an internet-facing one, private ones when alb_internal is true."
  type        = list(string)

  validation {
    condition     = length(var.alb_subnet_ids) >= 2
    error_message = "Give at least two subnets in different availability zones."
  }
}

variable "certificate_arn" {
  description = "ACM certificate of the HTTPS listener (it must cover domain_name when one is given)."
  type        = string
}

## OPTIONAL VARIABLES

variable "image" {
  description = "Container image of the coordinator (infra/docker/Dockerfile, target nexus: entrypoint /usr/local/bin/nexus, user 65532). Pin a release tag or a digest."
  type        = string
  default     = "ghcr.io/sirsinexus/nexus:0.1.0"

  validation {
    condition     = !endswith(var.image, ":latest")
    error_message = "Pin the image to a release tag or digest, not :latest."
  }
}

variable "init_image" {
  description = "Small image with a POSIX shell that writes the signing key and the join token from Secrets Manager into files before the coordinator starts (the coordinator reads them from files)."
  type        = string
  default     = "public.ecr.aws/docker/library/busybox:1.37"
}

variable "cpu_architecture" {
  description = "ARM64 or X86_64; must match the image."
  type        = string
  default     = "ARM64"

  validation {
    condition     = contains(["ARM64", "X86_64"], var.cpu_architecture)
    error_message = "The CPU architecture must be ARM64 or X86_64."
  }
}

variable "cpu" {
  description = "CPU units of one task (1024 = 1 vCPU)."
  type        = number
  default     = 1024
}

variable "memory" {
  description = "Memory of one task in MiB."
  type        = number
  default     = 2048
}

variable "desired_count" {
  description = "Coordinator replicas. They share the database, Redis and the EFS state directory, so any count works."
  type        = number
  default     = 2

  validation {
    condition     = var.desired_count >= 1
    error_message = "Run at least one replica."
  }
}

variable "container_uid" {
  description = "Numeric user the coordinator runs as (non-root; the image's `nonroot` user by default); also the owner of its directory on EFS."
  type        = number
  default     = 65532

  validation {
    condition     = var.container_uid > 0
    error_message = "The coordinator must not run as root (uid 0)."
  }
}

variable "container_gid" {
  description = "Numeric group the coordinator runs as."
  type        = number
  default     = 65532
}

variable "nexus_region" {
  description = "NEXUS_REGION: the edge-node region the scheduler prefers. Empty leaves it unset."
  type        = string
  default     = ""
}

variable "log_level" {
  description = "The coordinator's tracing filter (RUST_LOG)."
  type        = string
  default     = "info"
}

variable "extra_environment" {
  description = "More environment variables for the coordinator container (no secrets)."
  type        = map(string)
  default     = {}
}

variable "task_role_policy_jsons" {
  description = "IAM policy documents (JSON) attached to the task role, e.g. the invoke_policy_json output of aws-lambda-function for each Lambda target."
  type        = list(string)
  default     = []
}

variable "enable_execute_command" {
  description = "Allow `aws ecs execute-command` into the tasks (sessions encrypted with the module key and logged)."
  type        = bool
  default     = false
}

variable "create_kms_key" {
  description = "Create a customer managed KMS key (with rotation) for logs, secrets, the database, the cache and the file system. False uses kms_key_arn."
  type        = bool
  default     = true
}

variable "kms_key_arn" {
  description = "The customer managed KMS key to use when create_kms_key is false. Its policy must let CloudWatch Logs use it."
  type        = string
  default     = ""
}

variable "log_retention_in_days" {
  description = "Retention of every log group the module creates."
  type        = number
  default     = 365

  validation {
    condition     = contains([1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653], var.log_retention_in_days)
    error_message = "The retention must be one of the values CloudWatch Logs accepts."
  }
}

variable "domain_name" {
  description = "DNS name that points at the load balancer (you create the record, e.g. a Route 53 alias to alb_dns_name). Empty reports the load balancer's own name as the URL."
  type        = string
  default     = ""
}

variable "alb_internal" {
  description = "Make the API load balancer internal (reachable only from the VPC and its peers)."
  type        = bool
  default     = false
}

variable "alb_ingress_cidr_blocks" {
  description = "IPv4 CIDR blocks allowed to reach the API load balancer on 443 (and on 80, which only redirects to 443)."
  type        = list(string)
  default     = ["0.0.0.0/0"]
}

variable "ssl_policy" {
  description = "TLS policy of the HTTPS listener."
  type        = string
  default     = "ELBSecurityPolicy-TLS13-1-2-2021-06"
}

variable "alb_idle_timeout" {
  description = "Seconds an idle connection stays open: /ws/events WebSockets and streamed responses need it long."
  type        = number
  default     = 3600
}

variable "target_protocol_version" {
  description = "Protocol the API load balancer speaks to the tasks: HTTP1 (REST and WebSocket, the default) or HTTP2 (needed for gRPC clients through the load balancer)."
  type        = string
  default     = "HTTP1"

  validation {
    condition     = contains(["HTTP1", "HTTP2"], var.target_protocol_version)
    error_message = "The target protocol version must be HTTP1 or HTTP2."
  }
}

variable "deletion_protection" {
  description = "Deletion protection of the load balancers and the database."
  type        = bool
  default     = true
}

variable "alb_access_logs_bucket" {
  description = "S3 bucket (SSE-S3, with the ELB log-delivery bucket policy) for the API load balancer's access logs. Empty disables them."
  type        = string
  default     = ""
}

variable "waf_enabled" {
  description = "Protect the API load balancer with a WAF web ACL: a per-IP rate limit and the AWS common, known-bad-inputs (Log4j included) and anonymous-IP rule groups."
  type        = bool
  default     = true
}

variable "waf_rate_limit" {
  description = "Requests per 5 minutes one IP may send before the WAF blocks it."
  type        = number
  default     = 2000
}

variable "node_endpoint_enabled" {
  description = "Create the internal network load balancer edge nodes join through (plain HTTP/2 on 8080: nexus-edge speaks gRPC without TLS, so it must not cross the internet)."
  type        = bool
  default     = true
}

variable "node_cidr_blocks" {
  description = "CIDR blocks of edge nodes outside this module's knowledge (peered VPCs, on-premises): they may reach the node endpoint on 8080 and the coordinator dials them on 7070. Edge fleets in this VPC add their own rules (see edge-fleet/aws)."
  type        = list(string)
  default     = []
}

variable "db_engine_version" {
  description = "Aurora PostgreSQL version."
  type        = string
  default     = "16.6"
}

variable "db_name" {
  description = "Database the coordinator uses."
  type        = string
  default     = "nexus"
}

variable "db_username" {
  description = "Master user of the database (the coordinator connects as it)."
  type        = string
  default     = "nexus"
}

variable "db_instance_count" {
  description = "Aurora instances (one writer, the rest readers in other zones for failover)."
  type        = number
  default     = 2

  validation {
    condition     = var.db_instance_count >= 1
    error_message = "Create at least one instance."
  }
}

variable "db_min_capacity" {
  description = "Minimum Aurora Serverless v2 capacity (ACUs)."
  type        = number
  default     = 0.5
}

variable "db_max_capacity" {
  description = "Maximum Aurora Serverless v2 capacity (ACUs)."
  type        = number
  default     = 4
}

variable "db_backup_retention_days" {
  description = "Days of automated database backups (point-in-time recovery)."
  type        = number
  default     = 14

  validation {
    condition     = var.db_backup_retention_days >= 1 && var.db_backup_retention_days <= 35
    error_message = "The backup retention must be between 1 and 35 days."
  }
}

variable "redis_engine_version" {
  description = "ElastiCache Redis version."
  type        = string
  default     = "7.1"
}

variable "redis_node_type" {
  description = "ElastiCache node type."
  type        = string
  default     = "cache.t4g.small"
}

variable "redis_num_cache_clusters" {
  description = "Redis nodes (a primary and replicas)."
  type        = number
  default     = 2
}

variable "redis_multi_az" {
  description = "Spread Redis over availability zones with automatic failover (needs redis_num_cache_clusters >= 2)."
  type        = bool
  default     = true
}

variable "redis_snapshot_retention_days" {
  description = "Days of Redis snapshots."
  type        = number
  default     = 7
}

variable "redis_as_kv" {
  description = "Also use the Redis replication group as the cluster's Spin key-value store (NEXUS_KV), where agents' context lives; edge nodes then use redis_url_secret_arn as their NEXUS_KV too. False keeps the coordinator without a shared store."
  type        = bool
  default     = true
}

variable "redis_client_security_group_ids" {
  description = "Security groups (besides the coordinator's) allowed to reach Redis, e.g. edge nodes using it as their key-value store."
  type        = list(string)
  default     = []
}

variable "tags" {
  description = "Tags for every resource the module creates."
  type        = map(string)
  default     = {}
}
