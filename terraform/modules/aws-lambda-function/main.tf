data "aws_caller_identity" "current" {}

data "aws_partition" "current" {}

data "aws_region" "current" {}

locals {
  account_id = data.aws_caller_identity.current.account_id
  partition  = data.aws_partition.current.partition
  region     = data.aws_region.current.name

  # The log group Lambda writes to by default; created here so it has a retention and a key.
  log_group_name = "/aws/lambda/${var.name}"
  log_group_arn  = "arn:${local.partition}:logs:${local.region}:${local.account_id}:log-group:${local.log_group_name}"

  dead_letter_target_arn = var.create_dead_letter_queue ? aws_sqs_queue.dead_letter[0].arn : var.dead_letter_target_arn
  # Known at plan time when the module's queue does not exist yet.
  dead_letter_service = (
    var.create_dead_letter_queue ? "sqs" :
    var.dead_letter_target_arn != "" ? split(":", var.dead_letter_target_arn)[2] : ""
  )

  alarm_actions = var.alarm_sns_topic_arn == null ? [] : [var.alarm_sns_topic_arn]

  duration_p99_threshold_ms = coalesce(var.duration_p99_alarm_threshold_ms, var.timeout * 800)
}
