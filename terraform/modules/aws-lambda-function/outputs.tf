output "function_arn" {
  description = "ARN of the Lambda function."
  value       = aws_lambda_function.this.arn
}

output "function_name" {
  description = "Name of the Lambda function."
  value       = aws_lambda_function.this.function_name
}

output "invoke_arn" {
  description = "ARN to use as an API Gateway integration URI."
  value       = aws_lambda_function.this.invoke_arn
}

output "function_url" {
  description = "The function URL (https://…/), or null when create_function_url is false."
  value       = one(aws_lambda_function_url.this[*].function_url)
}

output "role_arn" {
  description = "ARN of the function's execution role."
  value       = aws_iam_role.this.arn
}

output "role_name" {
  description = "Name of the function's execution role, to attach more policies (e.g. access to a data store)."
  value       = aws_iam_role.this.name
}

output "log_group_name" {
  description = "The function's CloudWatch log group."
  value       = aws_cloudwatch_log_group.this.name
}

output "kms_key_arn" {
  description = "The KMS key encrypting the logs, the environment and the dead-letter queue."
  value       = local.kms_key_arn
}

output "dead_letter_target_arn" {
  description = "Where failed asynchronous invocations go (the module's queue or var.dead_letter_target_arn), or null."
  value       = local.dead_letter_service == "" ? null : local.dead_letter_target_arn
}

output "alarm_arns" {
  description = "ARNs of the Errors, Throttles and Duration p99 alarms, by name."
  value = merge(
    { for key, alarm in aws_cloudwatch_metric_alarm.this : key => alarm.arn },
    { duration_p99 = aws_cloudwatch_metric_alarm.duration_p99.arn },
  )
}

output "invoke_policy_json" {
  description = "IAM policy JSON granting lambda:InvokeFunction (and lambda:InvokeFunctionUrl with AWS_IAM) on this function only: attach it to the coordinator's task role."
  value       = data.aws_iam_policy_document.invoke.json
}
