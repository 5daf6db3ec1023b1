resource "aws_lambda_function" "this" {
  #checkov:skip=CKV_AWS_117:VPC placement is opt-in through var.vpc_config: the runtime serves WASI HTTP components whose outbound calls usually go to the internet, which from a VPC costs a NAT gateway.
  #checkov:skip=CKV_AWS_272:Code signing is opt-in through var.code_signing_config_arn: it needs an AWS Signer profile and a package signed into S3 by the release pipeline, which a local zip cannot satisfy.
  function_name = var.name
  description   = "SirsiNexus edge runtime (nexus-edge lambda) serving a nexus bundle"
  role          = aws_iam_role.this.arn

  # A custom runtime: Lambda runs the zip's `bootstrap` executable, which is nexus-edge; it
  # serves the bundle unpacked next to it (LAMBDA_TASK_ROOT) and compiles into /tmp.
  runtime       = "provided.al2023"
  handler       = "bootstrap"
  architectures = [var.architecture]

  filename          = var.package.filename
  source_code_hash  = var.package.filename == null ? var.package.source_code_hash : coalesce(var.package.source_code_hash, filebase64sha256(var.package.filename))
  s3_bucket         = var.package.s3_bucket
  s3_key            = var.package.s3_key
  s3_object_version = var.package.s3_object_version

  memory_size                    = var.memory_size
  timeout                        = var.timeout
  reserved_concurrent_executions = var.reserved_concurrent_executions
  code_signing_config_arn        = var.code_signing_config_arn
  kms_key_arn                    = local.kms_key_arn

  environment {
    variables = merge({ RUST_LOG = var.log_level }, var.environment)
  }

  tracing_config {
    mode = "Active"
  }

  logging_config {
    log_format = "Text"
    log_group  = aws_cloudwatch_log_group.this.name
  }

  dynamic "dead_letter_config" {
    for_each = local.dead_letter_service == "" ? [] : [local.dead_letter_target_arn]

    content {
      target_arn = dead_letter_config.value
    }
  }

  dynamic "vpc_config" {
    for_each = var.vpc_config == null ? [] : [var.vpc_config]

    content {
      subnet_ids         = vpc_config.value.subnet_ids
      security_group_ids = vpc_config.value.security_group_ids
    }
  }

  tags = var.tags

  lifecycle {
    precondition {
      condition     = !(var.create_dead_letter_queue && var.dead_letter_target_arn != "")
      error_message = "Set create_dead_letter_queue = false to use dead_letter_target_arn."
    }
  }

  # The first invocation must find its permissions and its log group in place.
  depends_on = [
    aws_iam_role_policy.this,
    aws_iam_role_policy_attachment.vpc_access,
  ]
}

resource "aws_lambda_function_url" "this" {
  count = var.create_function_url ? 1 : 0

  function_name      = aws_lambda_function.this.function_name
  authorization_type = var.function_url_auth_type
  invoke_mode        = var.function_url_invoke_mode
}
