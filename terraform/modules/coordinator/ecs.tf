resource "aws_ecs_cluster" "this" {
  name = var.name

  setting {
    name  = "containerInsights"
    value = "enabled"
  }

  configuration {
    execute_command_configuration {
      kms_key_id = local.kms_key_arn
      logging    = "OVERRIDE"

      log_configuration {
        cloud_watch_encryption_enabled = true
        cloud_watch_log_group_name     = aws_cloudwatch_log_group.exec.name
      }
    }
  }

  tags = var.tags
}

locals {
  secret_arns = { for key, secret in aws_secretsmanager_secret.this : key => secret.arn }

  log_configuration = {
    logDriver = "awslogs"
    options = {
      awslogs-group         = aws_cloudwatch_log_group.coordinator.name
      awslogs-region        = local.region
      awslogs-stream-prefix = "coordinator"
    }
  }

  # Runs first, as root, and exits: the coordinator reads its signing key and join token from
  # files, and ECS can only hand secrets over as environment variables. It writes them to a
  # task-local volume readable by the coordinator's user alone, and makes /tmp writable.
  init_container = {
    name                   = "secrets-init"
    image                  = var.init_image
    essential              = false
    readonlyRootFilesystem = true
    privileged             = false
    user                   = "0"
    entryPoint             = ["sh", "-c"]
    command = [join(" && ", [
      "umask 077",
      "printf '%s' \"$SIGNING_KEY\" > ${local.secrets_dir}/signing-key",
      "printf '%s' \"$NODE_TOKEN\" > ${local.secrets_dir}/node-token",
      "chown -R ${var.container_uid}:${var.container_gid} ${local.secrets_dir}",
      "chmod 1777 /scratch",
    ])]
    secrets = [
      { name = "SIGNING_KEY", valueFrom = local.secret_arns["signing-key"] },
      { name = "NODE_TOKEN", valueFrom = local.secret_arns["node-token"] },
    ]
    mountPoints = [
      { sourceVolume = "secrets", containerPath = local.secrets_dir, readOnly = false },
      { sourceVolume = "tmp", containerPath = "/scratch", readOnly = false },
    ]
    logConfiguration = local.log_configuration
  }

  coordinator_container = {
    name                   = local.container_name
    image                  = var.image
    essential              = true
    readonlyRootFilesystem = true
    privileged             = false
    user                   = "${var.container_uid}:${var.container_gid}"
    command                = ["coordinator", "--cluster", "--listen", "0.0.0.0:${local.container_port}"]
    portMappings = [
      { name = "http", containerPort = local.container_port, protocol = "tcp" },
    ]
    environment = [
      for key, value in merge(
        { RUST_LOG = var.log_level, TMPDIR = "/tmp" },
        var.extra_environment,
        var.nexus_region == "" ? {} : { NEXUS_REGION = var.nexus_region },
        {
          NEXUS_STATE_DIR        = local.state_dir
          NEXUS_SIGNING_KEY_FILE = "${local.secrets_dir}/signing-key"
          NEXUS_NODE_TOKEN_FILE  = "${local.secrets_dir}/node-token"
        },
      ) : { name = key, value = value }
    ]
    secrets = concat(
      [
        { name = "DATABASE_URL", valueFrom = local.secret_arns["database-url"] },
        { name = "NEXUS_EVENT_BUS", valueFrom = local.secret_arns["redis-url"] },
        { name = "NEXUS_INVOCATION_QUEUE", valueFrom = local.secret_arns["redis-url"] },
      ],
      var.redis_as_kv ? [{ name = "NEXUS_KV", valueFrom = local.secret_arns["redis-url"] }] : [],
    )
    mountPoints = [
      { sourceVolume = "state", containerPath = local.state_dir, readOnly = false },
      { sourceVolume = "secrets", containerPath = local.secrets_dir, readOnly = true },
      { sourceVolume = "tmp", containerPath = "/tmp", readOnly = false },
    ]
    dependsOn = [
      { containerName = local.init_container.name, condition = "SUCCESS" },
    ]
    # In-flight requests get this long to finish after SIGTERM.
    stopTimeout = 60
    ulimits = [
      { name = "nofile", softLimit = 65536, hardLimit = 65536 },
    ]
    linuxParameters = {
      initProcessEnabled = true
    }
    logConfiguration = local.log_configuration
  }
}

resource "aws_ecs_task_definition" "coordinator" {
  family                   = var.name
  requires_compatibilities = ["FARGATE"]
  network_mode             = "awsvpc"
  cpu                      = var.cpu
  memory                   = var.memory
  execution_role_arn       = aws_iam_role.execution.arn
  task_role_arn            = aws_iam_role.task.arn

  runtime_platform {
    operating_system_family = "LINUX"
    cpu_architecture        = var.cpu_architecture
  }

  volume {
    name = "state"

    efs_volume_configuration {
      file_system_id     = aws_efs_file_system.state.id
      transit_encryption = "ENABLED"

      authorization_config {
        access_point_id = aws_efs_access_point.state.id
        iam             = "ENABLED"
      }
    }
  }

  # Task-local scratch volumes (Fargate ephemeral storage): the root filesystem stays read-only.
  volume {
    name = "secrets"
  }

  volume {
    name = "tmp"
  }

  container_definitions = jsonencode([local.init_container, local.coordinator_container])

  tags = var.tags
}

resource "aws_ecs_service" "coordinator" {
  name             = "coordinator"
  cluster          = aws_ecs_cluster.this.id
  task_definition  = aws_ecs_task_definition.coordinator.arn
  desired_count    = var.desired_count
  launch_type      = "FARGATE"
  platform_version = "LATEST"

  enable_execute_command            = var.enable_execute_command
  enable_ecs_managed_tags           = true
  propagate_tags                    = "SERVICE"
  health_check_grace_period_seconds = 60

  deployment_minimum_healthy_percent = 100
  deployment_maximum_percent         = 200

  deployment_circuit_breaker {
    enable   = true
    rollback = true
  }

  network_configuration {
    subnets          = var.private_subnet_ids
    security_groups  = [aws_security_group.tasks.id]
    assign_public_ip = false
  }

  load_balancer {
    target_group_arn = aws_lb_target_group.api.arn
    container_name   = local.container_name
    container_port   = local.container_port
  }

  dynamic "load_balancer" {
    for_each = aws_lb_target_group.nodes

    content {
      target_group_arn = load_balancer.value.arn
      container_name   = local.container_name
      container_port   = local.container_port
    }
  }

  tags = var.tags

  # The first tasks must find their listeners, secrets and mount targets in place.
  depends_on = [
    aws_lb_listener.https,
    aws_lb_listener.nodes,
    aws_secretsmanager_secret_version.this,
    aws_efs_mount_target.state,
    aws_iam_role_policy.execution,
    aws_iam_role_policy.task,
  ]
}
