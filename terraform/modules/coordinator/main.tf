data "aws_caller_identity" "current" {}

data "aws_partition" "current" {}

data "aws_region" "current" {}

locals {
  account_id = data.aws_caller_identity.current.account_id
  partition  = data.aws_partition.current.partition
  region     = data.aws_region.current.name

  log_group_arn_prefix = "arn:${local.partition}:logs:${local.region}:${local.account_id}:log-group"

  container_name = "coordinator"
  container_port = 8080

  # Where the coordinator keeps uploaded components (EFS, shared by the replicas) and where the
  # init container writes the secrets it reads from files.
  state_dir   = "/var/lib/nexus"
  secrets_dir = "/run/nexus"

  url = var.domain_name != "" ? "https://${var.domain_name}" : "https://${aws_lb.api.dns_name}"
}
