## REQUIRED VARIABLES

variable "name" {
  description = "Name of the fleet: prefixes the autoscaling group, launch template, role and security group."
  type        = string

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{0,31}$", var.name))
    error_message = "The name must start with a lowercase letter and have at most 32 lowercase letters, digits or hyphens."
  }
}

variable "vpc_id" {
  description = "VPC the nodes run in."
  type        = string
}

variable "subnet_ids" {
  description = "Private subnets of the nodes (spread over availability zones). The nodes get no public address: they reach AWS APIs, the binary and the internet through a NAT gateway or VPC endpoints."
  type        = list(string)

  validation {
    condition     = length(var.subnet_ids) >= 1
    error_message = "Give at least one subnet."
  }
}

variable "coordinator_url" {
  description = "URL the nodes join (`--coordinator`), e.g. the coordinator module's node_endpoint (http://…:8080)."
  type        = string

  validation {
    condition     = can(regex("^https?://", var.coordinator_url))
    error_message = "The coordinator URL must start with http:// or https://."
  }
}

variable "node_token_secret_arn" {
  description = "ARN of the cluster's join token: a Secrets Manager secret or an SSM SecureString parameter. Each node reads it when its service starts; it never appears in user data."
  type        = string

  validation {
    condition     = can(regex("^arn:[^:]+:(secretsmanager|ssm):", var.node_token_secret_arn))
    error_message = "The join token must be a Secrets Manager secret ARN or an SSM parameter ARN."
  }
}

variable "binary_url" {
  description = "Where the nodes download the nexus-edge executable for their architecture: an https:// URL or an s3:// object (read through the instance role)."
  type        = string

  validation {
    condition     = can(regex("^(https|s3)://", var.binary_url))
    error_message = "The binary URL must start with https:// or s3://."
  }
}

## OPTIONAL VARIABLES

variable "binary_sha256" {
  description = "SHA-256 (hex) the downloaded binary must match; a node with a different binary fails to boot. Empty skips the check."
  type        = string
  default     = ""

  validation {
    condition     = var.binary_sha256 == "" || can(regex("^[0-9a-f]{64}$", var.binary_sha256))
    error_message = "The SHA-256 must be 64 lowercase hex digits."
  }
}

variable "architecture" {
  description = "arm64 (Graviton, the default) or x86_64; picks the Amazon Linux 2023 image and must match the binary and the instance type."
  type        = string
  default     = "arm64"

  validation {
    condition     = contains(["arm64", "x86_64"], var.architecture)
    error_message = "The architecture must be arm64 or x86_64."
  }
}

variable "instance_type" {
  description = "EC2 instance type of the nodes."
  type        = string
  default     = "t4g.medium"
}

variable "ami_id" {
  description = "AMI of the nodes (a systemd distribution with the AWS CLI, curl and useradd). Empty uses the latest Amazon Linux 2023, which rolls the fleet whenever a new image is published."
  type        = string
  default     = ""
}

variable "min_size" {
  description = "Minimum number of nodes."
  type        = number
  default     = 1
}

variable "max_size" {
  description = "Maximum number of nodes."
  type        = number
  default     = 4
}

variable "desired_capacity" {
  description = "Nodes to start with (then the CPU target tracking policy decides)."
  type        = number
  default     = 2
}

variable "target_cpu_utilization" {
  description = "Average CPU utilization (percent) the autoscaling group keeps the fleet at."
  type        = number
  default     = 60
}

variable "node_region" {
  description = "The nodes' region (`--region`), matched against functions' placement and the coordinator's NEXUS_REGION. Empty uses the AWS region."
  type        = string
  default     = ""

  validation {
    condition     = can(regex("^[A-Za-z0-9._-]*$", var.node_region))
    error_message = "The region may only contain letters, digits and . _ -."
  }
}

variable "node_labels" {
  description = "Labels of every node (`--label key=value`), used by placement policies."
  type        = map(string)
  default     = {}

  validation {
    condition     = alltrue([for key, value in var.node_labels : can(regex("^[A-Za-z0-9._/-]+$", key)) && can(regex("^[A-Za-z0-9._/:-]*$", value))])
    error_message = "Label keys and values may only contain letters, digits and . _ / - (and : in values)."
  }
}

variable "secret_environment" {
  description = "More environment variables read from secrets when the service starts, name => ARN (Secrets Manager secret or SSM SecureString), e.g. { NEXUS_KV = <coordinator redis_url_secret_arn> }."
  type        = map(string)
  default     = {}

  validation {
    condition     = alltrue([for arn in values(var.secret_environment) : can(regex("^arn:[^:]+:(secretsmanager|ssm):", arn))])
    error_message = "Each value must be a Secrets Manager secret ARN or an SSM parameter ARN."
  }
}

variable "secrets_kms_key_arns" {
  description = "Customer managed KMS keys encrypting the secrets above (e.g. the coordinator module's kms_key_arn); the nodes may decrypt through Secrets Manager or SSM only."
  type        = list(string)
  default     = []
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

variable "coordinator_security_group_ids" {
  description = "Security groups of coordinator tasks (coordinator module: task_security_group_id). The coordinator dials the nodes on 7070: the module adds the rule to both sides. A list so its length is known before the groups exist."
  type        = list(string)
  default     = []
}

variable "coordinator_endpoint_security_group_ids" {
  description = "Security groups of endpoints the nodes join through (coordinator module: node_endpoint_security_group_id). The nodes reach them on coordinator_endpoint_port: the module adds the rule to both sides."
  type        = list(string)
  default     = []
}

variable "coordinator_endpoint_port" {
  description = "Port of the coordinator endpoint."
  type        = number
  default     = 8080
}

variable "outbound_ports" {
  description = "TCP ports the nodes may open to any address: AWS APIs and the binary (443), and the outbound HTTP of the functions they run."
  type        = list(number)
  default     = [80, 443]
}

variable "additional_egress_rules" {
  description = "More egress, e.g. to the key-value store: each with a description, a TCP port and either a cidr_ipv4 or a security_group_id."
  type = list(object({
    description       = string
    port              = number
    cidr_ipv4         = optional(string)
    security_group_id = optional(string)
  }))
  default = []
}

variable "metrics_cidr_blocks" {
  description = "CIDR blocks allowed to scrape /metrics (and probe /healthz, /readyz) on 7070."
  type        = list(string)
  default     = []
}

variable "root_volume_size" {
  description = "Size of the encrypted root volume in GiB (it holds the state directory: components, compiled code, SQLite databases)."
  type        = number
  default     = 30
}

variable "ebs_kms_key_arn" {
  description = "Customer managed KMS key of the root volume. Empty uses the account's default EBS key."
  type        = string
  default     = ""
}

variable "enable_ssm_session_manager" {
  description = "Attach AmazonSSMManagedInstanceCore so operators reach the nodes through Session Manager (there is no SSH)."
  type        = bool
  default     = true
}

variable "tags" {
  description = "Tags for every resource the module creates, propagated to the instances and volumes."
  type        = map(string)
  default     = {}
}
