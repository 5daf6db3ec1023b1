## REQUIRED VARIABLES

variable "region" {
  description = "AWS region of the deployment, e.g. eu-west-1; also the edge nodes' --region and the coordinator's NEXUS_REGION."
  type        = string
}

variable "vpc_id" {
  description = "An existing VPC with public and private subnets and a NAT gateway (the tasks and nodes pull images, binaries and reach AWS APIs through it)."
  type        = string
}

variable "private_subnet_ids" {
  description = "Private subnets (two or more availability zones): coordinator tasks, database, Redis, EFS, node endpoint, edge nodes."
  type        = list(string)
}

variable "public_subnet_ids" {
  description = "Public subnets of the internet-facing API load balancer."
  type        = list(string)
}

variable "certificate_arn" {
  description = "ACM certificate for domain_name, in this region."
  type        = string
}

variable "edge_binary_url" {
  description = "https:// or s3:// URL of the nexus-edge executable for the edge instances' architecture (arm64 by default)."
  type        = string
}

variable "lambda_package_path" {
  description = "Local zip of the Lambda target: a `nexus bundle --for lambda` directory, zipped (its `bootstrap` is nexus-edge for arm64)."
  type        = string
}

## OPTIONAL VARIABLES

variable "name" {
  description = "Name of the deployment: prefixes every resource."
  type        = string
  default     = "nexus"
}

variable "domain_name" {
  description = "DNS name of the API (create a record pointing at the alb_dns_name output). Empty uses the load balancer's name."
  type        = string
  default     = ""
}

variable "coordinator_image" {
  description = "Container image of the coordinator."
  type        = string
  default     = "ghcr.io/sirsinexus/nexus:0.1.0"
}

variable "edge_binary_sha256" {
  description = "SHA-256 of the nexus-edge executable; instances refuse another binary. Empty skips the check."
  type        = string
  default     = ""
}

variable "edge_instance_type" {
  description = "Instance type of the edge nodes (Graviton by default: the binary must be aarch64)."
  type        = string
  default     = "t4g.medium"
}

variable "deletion_protection" {
  description = "Protect the load balancers and the database from deletion. Set false before `terraform destroy`."
  type        = bool
  default     = true
}

variable "tags" {
  description = "Tags for every resource."
  type        = map(string)
  default     = {}
}
