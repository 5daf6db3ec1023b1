# A whole SirsiNexus on AWS: the coordinator on ECS Fargate (Aurora PostgreSQL, ElastiCache
# Redis, EFS), an autoscaling fleet of edge nodes joining it, and a Lambda function the
# coordinator may place functions on.

module "coordinator" {
  source = "../../modules/coordinator"

  name               = var.name
  vpc_id             = var.vpc_id
  private_subnet_ids = var.private_subnet_ids
  alb_subnet_ids     = var.public_subnet_ids
  certificate_arn    = var.certificate_arn
  domain_name        = var.domain_name
  image              = var.coordinator_image
  nexus_region       = var.region

  deletion_protection = var.deletion_protection

  # The coordinator invokes the Lambda target, and nothing else.
  task_role_policy_jsons = [module.lambda_target.invoke_policy_json]

  # The edge nodes keep their Spin key-value data in the same Redis.
  redis_client_security_group_ids = [module.edge_fleet.security_group_id]

  tags = var.tags
}

module "edge_fleet" {
  source = "../../modules/edge-fleet/aws"

  name          = "${var.name}-edge"
  vpc_id        = var.vpc_id
  subnet_ids    = var.private_subnet_ids
  instance_type = var.edge_instance_type
  binary_url    = var.edge_binary_url
  binary_sha256 = var.edge_binary_sha256
  node_region   = var.region
  node_labels   = { fleet = "aws" }

  coordinator_url       = module.coordinator.node_endpoint
  node_token_secret_arn = module.coordinator.node_token_secret_arn
  secret_environment    = { NEXUS_KV = module.coordinator.redis_url_secret_arn }
  secrets_kms_key_arns  = [module.coordinator.kms_key_arn]

  coordinator_security_group_ids          = [module.coordinator.task_security_group_id]
  coordinator_endpoint_security_group_ids = [module.coordinator.node_endpoint_security_group_id]
  additional_egress_rules = [
    {
      description       = "Redis (key-value store)"
      port              = 6379
      security_group_id = module.coordinator.redis_security_group_id
    },
  ]

  tags = var.tags
}

module "lambda_target" {
  source = "../../modules/aws-lambda-function"

  name    = "${var.name}-functions"
  package = { filename = var.lambda_package_path }

  tags = var.tags
}
