data "aws_partition" "current" {}

data "aws_region" "current" {}

# The public parameter AWS keeps pointing at the latest Amazon Linux 2023 image.
data "aws_ssm_parameter" "al2023" {
  count = var.ami_id == "" ? 1 : 0

  name = "/aws/service/ami-amazon-linux-latest/al2023-ami-kernel-default-${var.architecture}"
}

locals {
  partition = data.aws_partition.current.partition
  region    = data.aws_region.current.name

  ami_id      = var.ami_id != "" ? var.ami_id : data.aws_ssm_parameter.al2023[0].insecure_value
  node_region = var.node_region != "" ? var.node_region : local.region
  listen_port = 7070

  # Every secret a node reads at start: its join token and var.secret_environment.
  secret_environment = merge(var.secret_environment, { NEXUS_NODE_TOKEN = var.node_token_secret_arn })
  ssm_parameter_arns = [for arn in values(local.secret_environment) : arn if split(":", arn)[2] == "ssm"]
  secrets_manager_arns = [
    for arn in values(local.secret_environment) : arn if split(":", arn)[2] == "secretsmanager"
  ]

  binary_from_s3 = startswith(var.binary_url, "s3://")
  # s3://bucket/key -> arn:aws:s3:::bucket/key
  binary_object_arn = local.binary_from_s3 ? "arn:${local.partition}:s3:::${trimprefix(var.binary_url, "s3://")}" : ""

  user_data = templatefile("${path.module}/templates/user-data.sh.tftpl", {
    binary_url         = var.binary_url
    binary_from_s3     = local.binary_from_s3
    binary_sha256      = var.binary_sha256
    coordinator_url    = var.coordinator_url
    node_region        = local.node_region
    node_labels        = var.node_labels
    listen_port        = local.listen_port
    instance_slots     = var.instance_slots
    log_level          = var.log_level
    secret_environment = local.secret_environment
  })
}
