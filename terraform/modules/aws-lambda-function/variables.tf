## REQUIRED VARIABLES

variable "name" {
  description = "Name of the Lambda function; also names its role, log group (/aws/lambda/<name>), queue and alarms."
  type        = string

  validation {
    condition     = can(regex("^[A-Za-z0-9_-]{1,56}$", var.name))
    error_message = "The name must be 1 to 56 letters, digits, hyphens or underscores (the role name appends a suffix)."
  }
}

variable "package" {
  description = <<-EOT
    The deployment zip: a bundle written by `nexus bundle --for lambda --edge-binary …` (its
    `bootstrap` is nexus-edge, which serves the bundle's app from the task root). Either
    `filename` (a local zip; its hash is computed unless `source_code_hash` is given) or
    `s3_bucket` + `s3_key` (optionally `s3_object_version`).
  EOT
  type = object({
    filename          = optional(string)
    source_code_hash  = optional(string)
    s3_bucket         = optional(string)
    s3_key            = optional(string)
    s3_object_version = optional(string)
  })

  validation {
    condition     = (var.package.filename != null) != (var.package.s3_bucket != null && var.package.s3_key != null)
    error_message = "Set either package.filename or both package.s3_bucket and package.s3_key, not both."
  }
}

## OPTIONAL VARIABLES

variable "architecture" {
  description = "Instruction set of the bootstrap binary: arm64 (Graviton, the default) or x86_64."
  type        = string
  default     = "arm64"

  validation {
    condition     = contains(["arm64", "x86_64"], var.architecture)
    error_message = "The architecture must be arm64 or x86_64."
  }
}

variable "memory_size" {
  description = "Memory in MiB (also scales the CPU share)."
  type        = number
  default     = 512

  validation {
    condition     = var.memory_size >= 128 && var.memory_size <= 10240
    error_message = "The memory size must be between 128 and 10240 MiB."
  }
}

variable "timeout" {
  description = "Maximum run time of one invocation, in seconds."
  type        = number
  default     = 30

  validation {
    condition     = var.timeout >= 1 && var.timeout <= 900
    error_message = "The timeout must be between 1 and 900 seconds."
  }
}

variable "reserved_concurrent_executions" {
  description = "Concurrency reserved for (and capping) this function, so one function cannot starve the account's other functions. The account must keep at least 10 unreserved (new accounts start with a quota of 10 in all: raise it first). -1 reserves nothing; 0 would throttle every invocation."
  type        = number
  default     = 50

  validation {
    condition     = var.reserved_concurrent_executions == -1 || var.reserved_concurrent_executions >= 1
    error_message = "The reserved concurrency must be -1 (no reservation) or at least 1."
  }
}

variable "environment" {
  description = "Extra environment variables, e.g. SPIN_VARIABLE_* application variables or NEXUS_KV (the shared key-value store agents' context lives in). No secrets: they are visible to anyone who can read the function configuration. RUST_LOG comes from log_level."
  type        = map(string)
  default     = {}
}

variable "log_level" {
  description = "The runtime's tracing filter (RUST_LOG)."
  type        = string
  default     = "info"
}

variable "create_function_url" {
  description = "Whether to create a function URL."
  type        = bool
  default     = true
}

variable "function_url_auth_type" {
  description = "Authorization of the function URL: AWS_IAM (callers sign with SigV4, the default) or NONE (public)."
  type        = string
  default     = "AWS_IAM"

  validation {
    condition     = contains(["AWS_IAM", "NONE"], var.function_url_auth_type)
    error_message = "The function URL auth type must be AWS_IAM or NONE."
  }
}

variable "function_url_invoke_mode" {
  description = "BUFFERED (the default) or RESPONSE_STREAM."
  type        = string
  default     = "BUFFERED"

  validation {
    condition     = contains(["BUFFERED", "RESPONSE_STREAM"], var.function_url_invoke_mode)
    error_message = "The invoke mode must be BUFFERED or RESPONSE_STREAM."
  }
}

variable "log_retention_in_days" {
  description = "Retention of the function's log group."
  type        = number
  default     = 365

  validation {
    condition     = contains([1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653], var.log_retention_in_days)
    error_message = "The retention must be one of the values CloudWatch Logs accepts (1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653)."
  }
}

variable "create_kms_key" {
  description = "Create a customer managed KMS key (with rotation) for the log group, the environment and the dead-letter queue. False uses kms_key_arn."
  type        = bool
  default     = true
}

variable "kms_key_arn" {
  description = "The customer managed KMS key to use when create_kms_key is false. Its policy must let CloudWatch Logs use it."
  type        = string
  default     = ""
}

variable "create_dead_letter_queue" {
  description = "Create an encrypted SQS queue for asynchronous invocations that fail every retry. Set false to use dead_letter_target_arn (or no dead-letter target)."
  type        = bool
  default     = true
}

variable "dead_letter_target_arn" {
  description = "An existing SQS queue or SNS topic ARN for failed asynchronous invocations, used when create_dead_letter_queue is false."
  type        = string
  default     = ""

  validation {
    condition     = var.dead_letter_target_arn == "" || can(regex("^arn:[^:]+:(sqs|sns):", var.dead_letter_target_arn))
    error_message = "The dead-letter target must be an SQS queue or SNS topic ARN."
  }
}

variable "vpc_config" {
  description = "Run the function in these private subnets with these security groups (outbound internet then needs a NAT gateway). Null runs it outside any VPC."
  type = object({
    subnet_ids         = list(string)
    security_group_ids = list(string)
  })
  default = null
}

variable "code_signing_config_arn" {
  description = "An AWS Signer code signing configuration the package must satisfy. Null accepts unsigned packages."
  type        = string
  default     = null
}

variable "alarm_sns_topic_arn" {
  description = "SNS topic notified when an alarm fires or recovers. Null creates the alarms without actions."
  type        = string
  default     = null
}

variable "alarm_period_seconds" {
  description = "Period over which each alarm aggregates its metric."
  type        = number
  default     = 300
}

variable "errors_alarm_threshold" {
  description = "Errors in one period that raise the Errors alarm."
  type        = number
  default     = 1
}

variable "throttles_alarm_threshold" {
  description = "Throttled invocations in one period that raise the Throttles alarm."
  type        = number
  default     = 1
}

variable "duration_p99_alarm_threshold_ms" {
  description = "p99 duration (milliseconds) that raises the Duration alarm. Null uses 80% of the timeout."
  type        = number
  default     = null
}

variable "tags" {
  description = "Tags for every resource the module creates."
  type        = map(string)
  default     = {}
}
