## REQUIRED VARIABLES

variable "subscription_id" {
  description = "Azure subscription to deploy into."
  type        = string
}

variable "name" {
  description = "Globally unique name of the function app (<name>.azurewebsites.net)."
  type        = string
}

variable "package_path" {
  description = "Local deployment zip: a `nexus bundle --for azure` directory (nexus-edge for Linux x86_64), zipped."
  type        = string
}

## OPTIONAL VARIABLES

variable "location" {
  description = "Azure region."
  type        = string
  default     = "westeurope"
}

variable "resource_group_name" {
  description = "Resource group to create. Empty uses rg-<name>."
  type        = string
  default     = ""
}

variable "sku_name" {
  description = "Y1 (Consumption), EP1-EP3 (Elastic Premium) or P*v3."
  type        = string
  default     = "Y1"
}

variable "tags" {
  description = "Tags for every resource."
  type        = map(string)
  default     = {}
}
