## REQUIRED VARIABLES

variable "name" {
  description = "Name of the function app (globally unique: it becomes <name>.azurewebsites.net); also prefixes the plan, the monitoring resources and, by default, the storage account."
  type        = string

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{1,30}[a-z0-9]$", var.name))
    error_message = "The name must be 3 to 32 lowercase letters, digits or hyphens, starting with a letter."
  }
}

variable "location" {
  description = "Azure region, e.g. westeurope."
  type        = string
}

variable "resource_group_name" {
  description = "Resource group of everything the module creates; created unless create_resource_group is false."
  type        = string
}

variable "package_path" {
  description = "Local path of the deployment zip: a bundle written by `nexus bundle --for azure --edge-binary …` (host.json, nexus/function.json, the nexus-edge executable for Linux x86_64, the app), zipped. Uploaded to the module's storage and run from there."
  type        = string

  validation {
    condition     = endswith(var.package_path, ".zip")
    error_message = "The package must be a .zip file."
  }
}

## OPTIONAL VARIABLES

variable "create_resource_group" {
  description = "Create resource_group_name; false uses an existing group of that name."
  type        = bool
  default     = true
}

variable "sku_name" {
  description = "Plan of the function app: Y1 (Consumption, the default), EP1/EP2/EP3 (Elastic Premium: no cold starts, VNet integration) or a dedicated P*v3 plan."
  type        = string
  default     = "Y1"

  validation {
    condition     = contains(["Y1", "EP1", "EP2", "EP3", "P0v3", "P1v3", "P2v3", "P3v3"], var.sku_name)
    error_message = "The SKU must be Y1, EP1, EP2, EP3, P0v3, P1v3, P2v3 or P3v3."
  }
}

variable "worker_count" {
  description = "Instances kept running on an Elastic Premium or dedicated plan (at least 3 with zone_balancing_enabled). Ignored on Consumption."
  type        = number
  default     = 1
}

variable "zone_balancing_enabled" {
  description = "Spread an Elastic Premium or dedicated plan over availability zones (needs worker_count >= 3). Ignored on Consumption."
  type        = bool
  default     = false
}

variable "storage_account_name" {
  description = "Name of the storage account the Functions host and the package live in (3-24 lowercase letters and digits, globally unique). Empty derives it from name."
  type        = string
  default     = ""

  validation {
    condition     = var.storage_account_name == "" || can(regex("^[a-z0-9]{3,24}$", var.storage_account_name))
    error_message = "The storage account name must be 3 to 24 lowercase letters and digits."
  }
}

variable "storage_replication_type" {
  description = "Replication of the storage account: GZRS (zone- and geo-redundant, the default), RAGZRS, GRS or RAGRS; ZRS or LRS where geo-replication is not wanted."
  type        = string
  default     = "GZRS"

  validation {
    condition     = contains(["LRS", "ZRS", "GRS", "GZRS", "RAGRS", "RAGZRS"], var.storage_replication_type)
    error_message = "The replication type must be LRS, ZRS, GRS, GZRS, RAGRS or RAGZRS."
  }
}

variable "grant_deployer_blob_access" {
  description = "Give the identity running Terraform 'Storage Blob Data Contributor' on the storage account, so it can upload the package with shared keys disabled (the provider needs storage_use_azuread = true)."
  type        = bool
  default     = true
}

variable "log_retention_in_days" {
  description = "Retention of the Log Analytics workspace behind Application Insights."
  type        = number
  default     = 90

  validation {
    condition     = var.log_retention_in_days >= 30 && var.log_retention_in_days <= 730
    error_message = "The retention must be between 30 and 730 days."
  }
}

variable "log_level" {
  description = "The handler's tracing filter (RUST_LOG)."
  type        = string
  default     = "info"
}

variable "invoke_token" {
  description = "NEXUS_INVOKE_TOKEN: the token the coordinator sends (nexus-invoke-token header) to invoke the app directly. Empty: the handler takes no direct invocations. Stored as an app setting; to keep it in Key Vault, leave this empty and pass NEXUS_INVOKE_TOKEN as a @Microsoft.KeyVault(SecretUri=…) reference in app_settings."
  type        = string
  default     = ""
  sensitive   = true
}

variable "app_settings" {
  description = "More app settings (environment of the handler), e.g. SPIN_VARIABLE_* application variables or NEXUS_KV. No secrets: use Key Vault references (@Microsoft.KeyVault(…)) for those."
  type        = map(string)
  default     = {}
}

variable "tags" {
  description = "Tags for every resource the module creates."
  type        = map(string)
  default     = {}
}
