locals {
  alarms = {
    errors = {
      description = "Invocations of ${var.name} ended in an error (the runtime or the component failed)."
      metric_name = "Errors"
      statistic   = "Sum"
      threshold   = var.errors_alarm_threshold
    }
    throttles = {
      description = "Invocations of ${var.name} were throttled (reserved concurrency ${var.reserved_concurrent_executions} reached)."
      metric_name = "Throttles"
      statistic   = "Sum"
      threshold   = var.throttles_alarm_threshold
    }
  }
}

resource "aws_cloudwatch_metric_alarm" "this" {
  for_each = local.alarms

  alarm_name          = "${var.name}-${each.key}"
  alarm_description   = each.value.description
  namespace           = "AWS/Lambda"
  metric_name         = each.value.metric_name
  statistic           = each.value.statistic
  period              = var.alarm_period_seconds
  evaluation_periods  = 1
  comparison_operator = "GreaterThanOrEqualToThreshold"
  threshold           = each.value.threshold
  treat_missing_data  = "notBreaching"
  actions_enabled     = true
  alarm_actions       = local.alarm_actions
  ok_actions          = local.alarm_actions

  dimensions = {
    FunctionName = aws_lambda_function.this.function_name
  }

  tags = var.tags
}

resource "aws_cloudwatch_metric_alarm" "duration_p99" {
  alarm_name          = "${var.name}-duration-p99"
  alarm_description   = "p99 duration of ${var.name} is above ${local.duration_p99_threshold_ms} ms (timeout ${var.timeout} s)."
  namespace           = "AWS/Lambda"
  metric_name         = "Duration"
  extended_statistic  = "p99"
  period              = var.alarm_period_seconds
  evaluation_periods  = 3
  datapoints_to_alarm = 2
  comparison_operator = "GreaterThanThreshold"
  threshold           = local.duration_p99_threshold_ms
  treat_missing_data  = "notBreaching"
  actions_enabled     = true
  alarm_actions       = local.alarm_actions
  ok_actions          = local.alarm_actions

  dimensions = {
    FunctionName = aws_lambda_function.this.function_name
  }

  tags = var.tags
}
