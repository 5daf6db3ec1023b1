data "aws_iam_policy_document" "assume_role" {
  statement {
    actions = ["sts:AssumeRole"]

    principals {
      type        = "Service"
      identifiers = ["lambda.amazonaws.com"]
    }

    condition {
      test     = "StringEquals"
      variable = "aws:SourceAccount"
      values   = [local.account_id]
    }
  }
}

resource "aws_iam_role" "this" {
  name               = "${var.name}-lambda"
  description        = "Execution role of the Lambda function ${var.name}"
  assume_role_policy = data.aws_iam_policy_document.assume_role.json

  tags = var.tags
}

# Least privilege: write to its own log group, send traces, decrypt its own environment and
# deliver to its own dead-letter target. Nothing else.
data "aws_iam_policy_document" "this" {
  statement {
    sid       = "OwnLogGroup"
    actions   = ["logs:CreateLogStream", "logs:PutLogEvents"]
    resources = ["${aws_cloudwatch_log_group.this.arn}:log-stream:*"]
  }

  statement {
    sid = "XRay"
    # X-Ray has no resource-level permissions for these two actions.
    actions   = ["xray:PutTraceSegments", "xray:PutTelemetryRecords"]
    resources = ["*"]
  }

  statement {
    sid       = "OwnKey"
    actions   = ["kms:Decrypt", "kms:GenerateDataKey"]
    resources = [local.kms_key_arn]
  }

  dynamic "statement" {
    for_each = local.dead_letter_service == "sqs" ? [local.dead_letter_target_arn] : []

    content {
      sid       = "DeadLetterQueue"
      actions   = ["sqs:SendMessage"]
      resources = [statement.value]
    }
  }

  dynamic "statement" {
    for_each = local.dead_letter_service == "sns" ? [local.dead_letter_target_arn] : []

    content {
      sid       = "DeadLetterTopic"
      actions   = ["sns:Publish"]
      resources = [statement.value]
    }
  }
}

resource "aws_iam_role_policy" "this" {
  name   = "runtime"
  role   = aws_iam_role.this.id
  policy = data.aws_iam_policy_document.this.json
}

# Network interfaces in the caller's subnets; only when the function runs in a VPC.
resource "aws_iam_role_policy_attachment" "vpc_access" {
  count = var.vpc_config == null ? 0 : 1

  role       = aws_iam_role.this.name
  policy_arn = "arn:${local.partition}:iam::aws:policy/service-role/AWSLambdaVPCAccessExecutionRole"
}

# What a caller (the coordinator's task role) needs to invoke this function, and nothing more.
data "aws_iam_policy_document" "invoke" {
  statement {
    sid     = "InvokeFunction"
    actions = ["lambda:InvokeFunction"]
    resources = [
      aws_lambda_function.this.arn,
      "${aws_lambda_function.this.arn}:*",
    ]
  }

  dynamic "statement" {
    for_each = var.create_function_url && var.function_url_auth_type == "AWS_IAM" ? [1] : []

    content {
      sid       = "InvokeFunctionUrl"
      actions   = ["lambda:InvokeFunctionUrl"]
      resources = [aws_lambda_function.this.arn]

      condition {
        test     = "StringEquals"
        variable = "lambda:FunctionUrlAuthType"
        values   = ["AWS_IAM"]
      }
    }
  }
}
